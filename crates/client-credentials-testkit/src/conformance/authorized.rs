//! Requests to a resource server on 127.0.0.1 sent with a token (`send_authorized`): the
//! 401 retry rules, counting the requests and the tokens each server saw.

use std::time::Duration;

use client_credentials_core::Config;

use super::{Harness, HarnessErrorKind, HarnessOptions, Outgoing};
use crate::{Reply, Request, Router, TestServer, TokenEndpoint, refused_url};

/// A resource server at `/api` that rejects the tokens in `rejected` with 401 and answers
/// every other token with 200; a request without a token gets 400 (it must never come).
#[must_use]
pub fn resource_server(rejected: &'static [&'static str]) -> TestServer {
    TestServer::start(Router::new().route(
        "/api",
        move |r: &Request| match r.header("authorization") {
            None => Reply::new(400),
            Some(h) if rejected.iter().any(|t| h == format!("Bearer {t}")) => {
                Reply::new(401).header("www-authenticate", r#"Bearer error="invalid_token""#)
            }
            Some(_) => Reply::text(200, "text/plain", "ok"),
        },
    ))
}

/// The `Authorization` headers the resource server saw, in order.
#[must_use]
pub fn tokens_seen(server: &TestServer) -> Vec<Option<String>> {
    server
        .requests()
        .iter()
        .map(|r| r.header("authorization").map(str::to_owned))
        .collect()
}

/// The configuration of the suite's client `my-service` for `token_url`.
pub(crate) fn config(token_url: &str) -> Config {
    Config::builder()
        .token_url(token_url)
        .client_id("my-service")
        .client_secret("s3cr3t")
        .build()
        .unwrap()
}

/// The suite's client of `token_server`, with a 2 s timeout and a fixed seed.
pub(crate) fn tokens<H: Harness>(token_server: &TestServer) -> H {
    H::build(
        config(&token_server.url("/token")),
        &HarnessOptions::new()
            .timeout(Duration::from_secs(2))
            .seed(3),
    )
}

fn bearer(token: &str) -> Option<String> {
    Some(format!("Bearer {token}"))
}

/// A 401 invalidates the token and the request is retried once with a fresh one (its body
/// replayed); a second 401 comes back as it is; a request that cannot be replayed is not
/// retried; a resource server that is down is a request error.
pub fn send_authorized_retries_once<H: Harness>() {
    let token_server = TestServer::start(TokenEndpoint::new());
    let api = resource_server(&["token-1"]);
    let tokens = tokens::<H>(&token_server);
    let response = tokens
        .send_authorized(Outgoing::new(http::Method::PUT, &api.url("/api")).body("again"))
        .unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(response.text(), "ok");
    assert_eq!(tokens_seen(&api), [bearer("token-1"), bearer("token-2")]);
    let bodies: Vec<_> = api.requests().iter().map(Request::body_text).collect();
    assert_eq!(bodies, ["again", "again"], "the body was replayed");
    assert_eq!(tokens.counters().invalidations, 1);

    // A second 401 comes back as it is.
    let api = resource_server(&["token-2", "token-3"]);
    let response = tokens
        .send_authorized(Outgoing::get(&api.url("/api")))
        .unwrap();
    assert_eq!(response.status, 401);
    assert_eq!(
        response.header("www-authenticate"),
        Some(r#"Bearer error="invalid_token""#)
    );
    assert_eq!(tokens_seen(&api), [bearer("token-2"), bearer("token-3")]);
    assert_eq!(token_server.count("/token"), 3);
    // The token a retry was rejected with is kept: no loop of token requests.
    assert_eq!(tokens.counters().invalidations, 2);

    // Not replayable: one request, no retry.
    let api = resource_server(&["token-3"]);
    let response = tokens
        .send_authorized(
            Outgoing::new(http::Method::POST, &api.url("/api"))
                .body("x")
                .streaming(),
        )
        .unwrap();
    assert_eq!(response.status, 401);
    assert_eq!(api.request_count(), 1);
    assert_eq!(api.requests()[0].body_text(), "x");

    // A resource server that is down is a request error, after the token was had.
    let error = tokens
        .send_authorized(Outgoing::get(&refused_url("/api")))
        .unwrap_err();
    assert_eq!(error.kind(), HarnessErrorKind::Request, "{error:?}");
}

/// When no token can be had (the token endpoint is down, or refuses the client), the
/// request is not sent at all.
pub fn send_authorized_sends_nothing_without_a_token<H: Harness>() {
    let api = resource_server(&[]);
    let refusing = TestServer::start(TokenEndpoint::new().client("my-service", "other"));
    // Down, and up but refusing this client.
    for token_url in [refused_url("/token"), refusing.url("/token")] {
        let tokens = H::build(config(&token_url), &HarnessOptions::new());
        let error = tokens
            .send_authorized(Outgoing::get(&api.url("/api")))
            .unwrap_err();
        assert_eq!(error.kind(), HarnessErrorKind::Token, "{error:?}");
        assert!(!error.to_string().contains("s3cr3t"));
    }
    assert_eq!(
        api.request_count(),
        0,
        "an unauthenticated request went out"
    );
    assert_eq!(api.connections(), 0);
}

/// The servers of the adapters' own tests of their native request helpers
/// (`authorize_ureq`, `authorize_reqwest`): a token endpoint at `/token`, and a resource
/// server at `/api` that answers its first request with a 401 and every later one with a
/// 204.
#[derive(Debug)]
pub struct RejectOnce {
    /// Both endpoints, on 127.0.0.1.
    pub server: TestServer,
}

impl RejectOnce {
    /// Starts the server.
    #[must_use]
    pub fn start() -> Self {
        Self {
            server: TestServer::start(
                Router::new().route("/token", TokenEndpoint::new()).route(
                    "/api",
                    crate::Script::new()
                        .once(Reply::new(401).header("www-authenticate", "Bearer"))
                        .then(Reply::new(204)),
                ),
            ),
        }
    }

    /// The configuration of a client of its token endpoint.
    #[must_use]
    pub fn config(&self) -> Config {
        config(&self.server.url("/token"))
    }

    /// The resource server's URL.
    #[must_use]
    pub fn api(&self) -> String {
        self.server.url("/api")
    }

    /// The resource server saw `token-1`, then (after the 401 and an invalidation)
    /// `token-2`, and the token endpoint two requests.
    pub fn assert_retried_with_a_fresh_token(&self) {
        let api: Vec<_> = self
            .server
            .requests()
            .into_iter()
            .filter(|r| r.path == "/api")
            .collect();
        assert_eq!(api[0].header("authorization"), Some("Bearer token-1"));
        assert_eq!(api[1].header("authorization"), Some("Bearer token-2"));
        assert_eq!(self.server.count("/token"), 2);
    }
}
