//! A proxy never sees a plain `http://` token, revocation or introspection request: such
//! requests (allowed only to loopback) carry the client credentials and the token in
//! cleartext. The proxy is set on a caller-supplied builder, not through `HTTP_PROXY`: tests
//! run in parallel threads and the environment is process-wide.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

use client_credentials_reqwest::{Client, Config, Error};
use client_credentials_testkit::{Reply, Router, TestServer, TokenEndpoint};

const ID: &str = "my-service";
const SECRET: &str = "s3cr3t-Value";

/// A "proxy" that answers anything with a token of its own, so that a request relayed
/// through it would succeed and be noticed.
fn proxy() -> TestServer {
    TestServer::start(Router::new().fallback(Reply::token("from-the-proxy", None)))
}

fn builder_via(proxy: &TestServer) -> reqwest::ClientBuilder {
    reqwest::Client::builder().proxy(reqwest::Proxy::all(proxy.url("")).unwrap())
}

#[tokio::test]
async fn http_loopback_requests_bypass_the_builders_proxy() {
    let proxy = proxy();
    let server = TestServer::start(
        Router::new()
            .route("/token", TokenEndpoint::new().client(ID, SECRET))
            .route("/revoke", Reply::new(200))
            .route(
                "/introspect",
                Reply::json(200, &serde_json::json!({ "active": true })),
            ),
    );
    let config = Config::builder()
        .token_url(server.url("/token"))
        .revocation_url(server.url("/revoke"))
        .introspection_url(server.url("/introspect"))
        .client_id(ID)
        .client_secret(SECRET)
        .build()
        .unwrap();
    let client = Client::builder(config)
        .http_client_builder(builder_via(&proxy))
        .build()
        .unwrap();

    let token = client.token().await.unwrap();
    assert_eq!(token.access_token().expose_secret(), "token-1");
    assert!(
        client
            .introspect(token.access_token())
            .await
            .unwrap()
            .active
    );
    client.revoke(token.access_token()).await.unwrap();

    assert_eq!(server.count("/token"), 1);
    assert_eq!(server.count("/introspect"), 1);
    assert_eq!(server.count("/revoke"), 1);
    assert_eq!(proxy.connections(), 0, "the proxy saw a cleartext request");
}

/// The control: the builder's proxy is really in force, and kept when every endpoint is
/// `https://` (a CONNECT tunnel, TLS end to end). Nothing leaves the machine: the proxy is
/// on loopback and refuses the tunnel.
#[tokio::test]
async fn https_requests_keep_the_builders_proxy() {
    let proxy = proxy();
    let config = Config::builder()
        .token_url("https://auth.example.invalid/token")
        .client_id(ID)
        .client_secret(SECRET)
        .build()
        .unwrap();
    let client = Client::builder(config)
        .http_client_builder(builder_via(&proxy))
        .build()
        .unwrap();
    assert!(matches!(client.token().await, Err(Error::Token(_))));
    assert!(
        proxy.connections() >= 1,
        "the https request skipped the proxy"
    );
}
