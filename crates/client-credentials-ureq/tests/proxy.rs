//! A proxy never sees a plain `http://` token, revocation or introspection request: such
//! requests (allowed only to loopback) carry the client credentials and the token in
//! cleartext. The proxy is set on a caller-supplied agent, not through `HTTP_PROXY`: tests
//! run in parallel threads and the environment is process-wide.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

use client_credentials_testkit::TestServer;
use client_credentials_testkit::conformance::proxy::ProxyCase;
use client_credentials_ureq::{Client, Error};

fn agent_via(proxy: &TestServer) -> ureq::Agent {
    ureq::Agent::config_builder()
        .proxy(Some(ureq::Proxy::new(&proxy.url("")).unwrap()))
        .build()
        .new_agent()
}

#[test]
fn http_loopback_requests_bypass_the_agents_proxy() {
    let case = ProxyCase::start();
    let agent = agent_via(&case.proxy);
    let client = Client::builder(case.loopback_config()).agent(agent).build();
    let token = client.token().unwrap();
    assert_eq!(token.access_token().expose_secret(), "token-1");
    assert!(client.introspect(token.access_token()).unwrap().active);
    client.revoke(token.access_token()).unwrap();
    case.assert_bypassed();
}

/// The control: the agent's proxy is really in force, and kept, for `https://` (a CONNECT
/// tunnel, TLS end to end).
#[test]
fn https_requests_keep_the_agents_proxy() {
    let case = ProxyCase::start();
    let agent = agent_via(&case.proxy);
    let client = Client::builder(case.https_config()).agent(agent).build();
    assert!(matches!(client.token(), Err(Error::Token(_))));
    case.assert_proxied();
}
