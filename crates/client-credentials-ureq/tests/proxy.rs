//! A proxy never sees a plain `http://` token, revocation or introspection request: such
//! requests (allowed only to loopback) carry the client credentials and the token in
//! cleartext. The proxy is set on a caller-supplied agent, not through `HTTP_PROXY`: tests
//! run in parallel threads and the environment is process-wide.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

use client_credentials_testkit::{Reply, Router, TestServer, TokenEndpoint};
use client_credentials_ureq::{Client, Config, Error};

const ID: &str = "my-service";
const SECRET: &str = "s3cr3t-Value";

/// A "proxy" that answers anything with a token of its own, so that a request relayed
/// through it would succeed and be noticed.
fn proxy() -> TestServer {
    TestServer::start(Router::new().fallback(Reply::token("from-the-proxy", None)))
}

fn agent_via(proxy: &TestServer) -> ureq::Agent {
    ureq::Agent::config_builder()
        .proxy(Some(ureq::Proxy::new(&proxy.url("")).unwrap()))
        .build()
        .new_agent()
}

#[test]
fn http_loopback_requests_bypass_the_agents_proxy() {
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
    let client = Client::builder(config).agent(agent_via(&proxy)).build();

    let token = client.token().unwrap();
    assert_eq!(token.access_token().expose_secret(), "token-1");
    assert!(client.introspect(token.access_token()).unwrap().active);
    client.revoke(token.access_token()).unwrap();

    assert_eq!(server.count("/token"), 1);
    assert_eq!(server.count("/introspect"), 1);
    assert_eq!(server.count("/revoke"), 1);
    assert_eq!(proxy.connections(), 0, "the proxy saw a cleartext request");
}

/// The control: the agent's proxy is really in force, and kept, for `https://` (a CONNECT
/// tunnel, TLS end to end). Nothing leaves the machine: the proxy is on loopback and
/// refuses the tunnel.
#[test]
fn https_requests_keep_the_agents_proxy() {
    let proxy = proxy();
    let config = Config::builder()
        .token_url("https://auth.example.invalid/token")
        .client_id(ID)
        .client_secret(SECRET)
        .build()
        .unwrap();
    let client = Client::builder(config).agent(agent_via(&proxy)).build();
    assert!(matches!(client.token(), Err(Error::Token(_))));
    assert!(
        proxy.connections() >= 1,
        "the https request skipped the proxy"
    );
}
