//! `Client::send_authorized`: a request to a resource server carries a token; when the
//! resource server rejects it, the core's verdict decides whether to retry once with a fresh
//! token. One test per rule, against a loopback token endpoint and resource server.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

use std::io::Cursor;

use client_credentials_testkit::{Reply, Router, Script, TestServer, TokenEndpoint};
use client_credentials_ureq::{Client, Config, Error, TokenError};

/// A token endpoint at `/token` and `api` as the resource server at `/api`.
fn start(api: impl client_credentials_testkit::Handler) -> TestServer {
    TestServer::start(
        Router::new()
            .route("/token", TokenEndpoint::new())
            .route("/api", api),
    )
}

fn client(server: &TestServer) -> Client {
    let config = Config::builder()
        .token_url(server.url("/token"))
        .client_id("my-service")
        .client_secret("s3cr3t")
        .build()
        .unwrap();
    Client::builder(config).seed(1).build()
}

fn post(server: &TestServer, body: &'static str) -> http::Request<&'static str> {
    http::Request::post(server.url("/api"))
        .header("content-type", "application/json")
        .body(body)
        .unwrap()
}

/// The `Authorization` header of every request that reached `/api`.
fn api_authorizations(server: &TestServer) -> Vec<String> {
    server
        .requests()
        .into_iter()
        .filter(|r| r.path == "/api")
        .map(|r| r.header("authorization").unwrap().to_owned())
        .collect()
}

fn invalid_token() -> Reply {
    Reply::new(401).header("www-authenticate", r#"Bearer error="invalid_token""#)
}

#[test]
fn a_rejected_token_is_replaced_and_the_request_sent_once_more() {
    let server = start(Script::new().once(invalid_token()).then(Reply::new(200)));
    let client = client(&server);
    let response = client
        .send_authorized(post(&server, r#"{"item":42}"#))
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(server.count("/token"), 2);
    assert_eq!(
        api_authorizations(&server),
        ["Bearer token-1", "Bearer token-2"],
        "the retry carries the fresh token, never the rejected one"
    );
    // The body was sent again, whole.
    let retried = server
        .requests()
        .into_iter()
        .rfind(|r| r.path == "/api")
        .unwrap();
    assert_eq!(retried.body_text(), r#"{"item":42}"#);
    // The fresh token stays cached.
    let token = client.token().unwrap();
    assert_eq!(token.access_token().expose_secret(), "token-2");
    assert_eq!(server.count("/token"), 2);
}

#[test]
fn a_bare_401_counts_as_a_rejection_too() {
    let server = start(Script::new().once(Reply::new(401)).then(Reply::new(204)));
    let client = client(&server);
    let request = http::Request::get(server.url("/api")).body(()).unwrap();
    let response = client.send_authorized(request).unwrap();
    assert_eq!(response.status(), 204);
    assert_eq!(server.count("/api"), 2);
    assert_eq!(server.count("/token"), 2);
}

#[test]
fn a_body_that_cannot_be_replayed_is_not_retried() {
    let server = start(Script::new().once(invalid_token()).then(Reply::new(200)));
    let client = client(&server);
    let mut reader = Cursor::new(b"streamed once".to_vec());
    let request = http::Request::post(server.url("/api"))
        .body(ureq::SendBody::from_reader(&mut reader))
        .unwrap();
    let response = client.send_authorized(request).unwrap();
    assert_eq!(
        response.status(),
        401,
        "the rejection is handed over as it is"
    );
    assert_eq!(server.count("/api"), 1);
    assert_eq!(server.count("/token"), 1);
    // The rejected token was dropped all the same: the next call gets a fresh one.
    let token = client.token().unwrap();
    assert_eq!(token.access_token().expose_secret(), "token-2");
}

#[test]
fn insufficient_scope_is_not_retried_and_keeps_the_token() {
    let forbidden =
        Reply::new(403).header("www-authenticate", r#"Bearer error="insufficient_scope""#);
    let server = start(forbidden);
    let client = client(&server);
    let response = client.send_authorized(post(&server, "{}")).unwrap();
    assert_eq!(response.status(), 403);
    assert_eq!(server.count("/api"), 1);
    assert_eq!(server.count("/token"), 1);
    assert_eq!(
        client.token().unwrap().access_token().expose_secret(),
        "token-1",
        "a new token would have the same scopes: the token is kept"
    );
    assert_eq!(client.counters().invalidations, 0);
}

#[test]
fn other_answers_are_handed_over_without_a_retry() {
    let server = start(Reply::new(500));
    let client = client(&server);
    let response = client.send_authorized(post(&server, "{}")).unwrap();
    assert_eq!(response.status(), 500);
    assert_eq!(server.count("/api"), 1);
    assert_eq!(server.count("/token"), 1);
}

#[test]
fn a_retry_never_carries_the_rejected_token_and_its_answer_is_final() {
    // A resource server that rejects every token: each call tries once and retries once
    // with a token that was not just rejected. The answer to the retry is handed over as it
    // is, and its token kept (no loop of token requests): the next call starts with it.
    let server = start(invalid_token());
    let client = client(&server);
    for _ in 0..2 {
        let response = client.send_authorized(post(&server, "{}")).unwrap();
        assert_eq!(response.status(), 401);
    }
    let sent = api_authorizations(&server);
    assert_eq!(
        sent,
        [
            "Bearer token-1",
            "Bearer token-2",
            "Bearer token-2",
            "Bearer token-3"
        ]
    );
    assert_eq!(server.count("/token"), 3);
}

#[test]
fn repeated_early_rejections_are_throttled() {
    // Every fresh token rejected at once (the wrong audience, say): after the first few,
    // the cache backs off, and calls fail without a token request or a resource request.
    let server = start(Reply::new(401));
    let client = client(&server);
    // Three calls retry with a fresh token; the fourth rejection starts the backoff, so the
    // fourth call gets its 401 without a retry.
    for _ in 0..4 {
        let response = client.send_authorized(post(&server, "{}")).unwrap();
        assert_eq!(response.status(), 401);
    }
    let (tokens, api) = (server.count("/token"), server.count("/api"));
    assert_eq!((tokens, api), (4, 7));
    for _ in 0..5 {
        let error = client.send_authorized(post(&server, "{}")).unwrap_err();
        assert!(
            matches!(error, Error::Token(TokenError::RejectedByResource { .. })),
            "{error:?}"
        );
    }
    assert_eq!(
        server.count("/token"),
        tokens,
        "no token request while throttled"
    );
    assert_eq!(server.count("/api"), api, "nothing sent without a token");
}

#[test]
fn without_a_token_nothing_is_sent() {
    let server = TestServer::start(
        Router::new()
            .route("/token", Reply::oauth_error(401, "invalid_client", None))
            .route("/api", Reply::new(200)),
    );
    let client = client(&server);
    let error = client.send_authorized(post(&server, "{}")).unwrap_err();
    assert!(error.token_error().is_some(), "{error:?}");
    assert_eq!(server.count("/api"), 0);
}

#[test]
fn a_status_is_never_an_error_even_on_an_agent_that_says_so() {
    let server = start(Reply::new(404));
    let client = client(&server);
    let agent = ureq::Agent::new_with_defaults(); // http_status_as_error(true)
    let response = client
        .send_authorized_with(&agent, post(&server, "{}"))
        .unwrap();
    assert_eq!(response.status(), 404);
}

#[test]
fn a_token_endpoint_that_reissues_the_rejected_token_gets_no_retry_with_it() {
    let hour = Some(std::time::Duration::from_secs(3600));
    let server = TestServer::start(
        Router::new()
            .route("/token", Reply::token("same-every-time", hour))
            .route("/api", invalid_token()),
    );
    let client = client(&server);
    let response = client.send_authorized(post(&server, "{}")).unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(server.count("/token"), 2, "a fresh token was asked for");
    assert_eq!(
        server.count("/api"),
        1,
        "the rejected token is never sent twice"
    );
}

/// An API key outside `Authorization` is never carried across a redirect: ureq would keep
/// the header for another host. The 3xx comes back; the other host gets nothing. A key in
/// `Authorization` (which ureq drops on such a redirect) and a replaced header both behave.
#[test]
fn a_static_api_key_is_not_carried_across_a_redirect() {
    use client_credentials_ureq::{Credentials, StaticCredential};

    let elsewhere = TestServer::start(Router::new().route("/steal", |_: &_| Reply::new(200)));
    let target = elsewhere.url("/steal");
    let api =
        TestServer::start(Router::new().route("/api", move |_: &_| Reply::redirect(302, &target)));
    let agent = client_credentials_ureq::ureq::Agent::new_with_defaults(); // follows redirects
    let key = Credentials::from(StaticCredential::api_key("x-api-key", "k-93f1c2").unwrap());
    let request = http::Request::get(api.url("/api"))
        .header("x-api-key", "an-old-value")
        .body(())
        .unwrap();
    let response = key.send_authorized_with(&agent, request).unwrap();
    assert_eq!(response.status(), 302);
    assert_eq!(elsewhere.request_count(), 0, "the key went to another host");
    let sent = api.last_request().unwrap();
    assert_eq!(sent.header("x-api-key"), Some("k-93f1c2"));

    let builder = key
        .authorize_ureq(
            agent
                .get(api.url("/api"))
                .header("x-api-key", "an-old-value"),
        )
        .unwrap();
    let values: Vec<_> = builder
        .headers_ref()
        .unwrap()
        .get_all("x-api-key")
        .iter()
        .collect();
    assert_eq!(values, ["k-93f1c2"], "replaced, not appended");
}
