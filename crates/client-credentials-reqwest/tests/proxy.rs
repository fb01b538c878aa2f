//! A proxy never sees a plain `http://` token, revocation or introspection request: such
//! requests (allowed only to loopback) carry the client credentials and the token in
//! cleartext. The proxy is set on a caller-supplied builder, not through `HTTP_PROXY`: tests
//! run in parallel threads and the environment is process-wide.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

use client_credentials_reqwest::{Client, Config, Error, reqwest};
use client_credentials_testkit::conformance::proxy::ProxyCase;

/// A client whose reqwest builder sends everything through the case's proxy.
fn client_via(case: &ProxyCase, config: Config) -> Client {
    let proxy = reqwest::Proxy::all(case.proxy.url("")).unwrap();
    Client::builder(config)
        .http_client_builder(reqwest::Client::builder().proxy(proxy))
        .build()
        .unwrap()
}

#[tokio::test]
async fn http_loopback_requests_bypass_the_builders_proxy() {
    let case = ProxyCase::start();
    let client = client_via(&case, case.loopback_config());
    let token = client.token().await.unwrap();
    assert_eq!(token.access_token().expose_secret(), "token-1");
    let info = client.introspect(token.access_token()).await.unwrap();
    assert!(info.active);
    client.revoke(token.access_token()).await.unwrap();
    case.assert_bypassed();
}

/// The control: the builder's proxy is really in force, and kept when every endpoint is
/// `https://` (a CONNECT tunnel, TLS end to end).
#[tokio::test]
async fn https_requests_keep_the_builders_proxy() {
    let case = ProxyCase::start();
    let client = client_via(&case, case.https_config());
    assert!(matches!(client.token().await, Err(Error::Token(_))));
    case.assert_proxied();
}
