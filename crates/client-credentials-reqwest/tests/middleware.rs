//! The reqwest-middleware layer against a token endpoint and a resource server on
//! 127.0.0.1, counting the requests and the tokens each server saw. The same rules through
//! `send_authorized` are in the conformance suite (`conformance.rs`).
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

use std::sync::Arc;
use std::time::Duration;

use client_credentials_reqwest::reqwest::{Body, StatusCode};
use client_credentials_reqwest::reqwest_middleware::{self, ClientWithMiddleware};
use client_credentials_reqwest::{
    AuthMiddleware, Client, Config, Error, StaticCredential, TokenError, TokenParams, reqwest,
};
use client_credentials_testkit::conformance::authorized::{resource_server, tokens_seen};
use client_credentials_testkit::{
    Reply, Request, Router, Script, TestServer, TokenEndpoint, refused_url,
};

fn tokens(token_server: &TestServer) -> Client {
    let config = Config::builder()
        .token_url(token_server.url("/token"))
        .client_id("my-service")
        .client_secret("s3cr3t")
        .build()
        .unwrap();
    Client::builder(config)
        .timeout(Duration::from_secs(2))
        .seed(3)
        .build()
        .unwrap()
}

fn http(tokens: &Client) -> ClientWithMiddleware {
    reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(AuthMiddleware::new(tokens.clone()))
        .build()
}

fn bearer(token: &str) -> Option<String> {
    Some(format!("Bearer {token}"))
}

#[tokio::test]
async fn attaches_the_cached_token_to_every_request() {
    let token_server = TestServer::start(TokenEndpoint::new());
    let api = resource_server(&[]);
    let tokens = tokens(&token_server);
    let http = http(&tokens);
    for _ in 0..3 {
        let response = http.get(api.url("/api")).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
    assert_eq!(tokens_seen(&api), vec![bearer("token-1"); 3]);
    assert_eq!(token_server.count("/token"), 1);
}

#[tokio::test]
async fn a_401_invalidates_the_token_and_retries_exactly_once() {
    let token_server = TestServer::start(TokenEndpoint::new());
    let api = resource_server(&["token-1"]);
    let tokens = tokens(&token_server);
    let http = http(&tokens);
    let response = http
        .post(api.url("/api"))
        .body("replayable")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.text().await.unwrap(), "ok");
    assert_eq!(tokens_seen(&api), [bearer("token-1"), bearer("token-2")]);
    let bodies: Vec<_> = api.requests().iter().map(Request::body_text).collect();
    assert_eq!(
        bodies,
        ["replayable", "replayable"],
        "the body was replayed"
    );
    assert_eq!(token_server.count("/token"), 2);
    assert_eq!(tokens.counters().invalidations, 1);

    // The fresh token is cached: the next request needs no token request.
    let response = http.get(api.url("/api")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(token_server.count("/token"), 2);
    assert_eq!(api.request_count(), 3);
}

#[tokio::test]
async fn a_static_credential_is_attached_as_it_is_and_a_401_is_not_retried() {
    let api = resource_server(&["revoked"]);
    let key = StaticCredential::bearer("long-lived").unwrap();
    let middleware = AuthMiddleware::new(key);
    assert!(middleware.client().is_none());
    assert!(!format!("{middleware:?}").contains("long-lived"));
    let http = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(middleware)
        .build();
    let response = http.get(api.url("/api")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let revoked = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(AuthMiddleware::new(
            StaticCredential::bearer("revoked").unwrap(),
        ))
        .build();
    let response = revoked
        .post(api.url("/api"))
        .body("once")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(tokens_seen(&api), [bearer("long-lived"), bearer("revoked")]);
}

#[tokio::test]
async fn a_second_401_is_returned_as_it_is() {
    let token_server = TestServer::start(TokenEndpoint::new());
    let api = resource_server(&["token-1", "token-2", "token-3"]);
    let tokens = tokens(&token_server);
    let http = http(&tokens);
    let response = http.get(api.url("/api")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        response.headers()["www-authenticate"],
        r#"Bearer error="invalid_token""#
    );
    assert_eq!(tokens_seen(&api), [bearer("token-1"), bearer("token-2")]);
    assert_eq!(token_server.count("/token"), 2);
    // The token a retry was rejected with is kept: no loop of token requests.
    assert_eq!(tokens.counters().invalidations, 1);
}

#[tokio::test]
async fn a_streaming_body_is_never_replayed() {
    let token_server = TestServer::start(TokenEndpoint::new());
    let api = resource_server(&["token-1"]);
    let tokens = tokens(&token_server);
    let http = http(&tokens);
    // A body reqwest cannot clone.
    let body = Body::wrap(String::from("streamed once"));
    let response = http.post(api.url("/api")).body(body).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(tokens_seen(&api), [bearer("token-1")]);
    assert_eq!(api.requests()[0].body_text(), "streamed once");
    // The rejected token was still dropped: the next request gets a fresh one.
    assert_eq!(token_server.count("/token"), 1);
    let response = http.get(api.url("/api")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(tokens_seen(&api)[1], bearer("token-2"));
}

#[tokio::test]
async fn nothing_is_sent_without_a_token() {
    let api = resource_server(&[]);
    let refusing = TestServer::start(TokenEndpoint::new().client("my-service", "other"));
    // Down, and up but refusing this client.
    for token_url in [refused_url("/token"), refusing.url("/token")] {
        let config = Config::builder()
            .token_url(token_url)
            .client_id("my-service")
            .client_secret("s3cr3t")
            .build()
            .unwrap();
        let tokens = Client::new(config).unwrap();
        let http = http(&tokens);
        let error = http.get(api.url("/api")).send().await.unwrap_err();
        assert!(error.is_middleware(), "{error:?}");
        let reqwest_middleware::Error::Middleware(inner) = &error else {
            unreachable!()
        };
        let ours = inner.downcast_ref::<Error>().expect("the crate's error");
        assert!(matches!(ours, Error::Token(_)), "{ours:?}");
        assert!(!error.to_string().contains("s3cr3t"));
    }
    assert_eq!(
        api.request_count(),
        0,
        "an unauthenticated request went out"
    );
    assert_eq!(api.connections(), 0);
}

#[tokio::test]
async fn a_token_endpoint_failure_during_the_retry_is_an_error_and_no_unauthenticated_retry() {
    let token_server = TestServer::start(
        Script::new()
            .once(TokenEndpoint::new())
            .then(Reply::oauth_error(503, "temporarily_unavailable", None)),
    );
    let api = resource_server(&["token-1"]);
    let tokens = tokens(&token_server);
    let error = http(&tokens).get(api.url("/api")).send().await.unwrap_err();
    let reqwest_middleware::Error::Middleware(inner) = &error else {
        panic!("expected a middleware error, got {error:?}")
    };
    let ours = inner.downcast_ref::<Error>().unwrap();
    assert!(
        matches!(ours, Error::Token(TokenError::Server { .. })),
        "{ours:?}"
    );
    assert_eq!(tokens_seen(&api), [bearer("token-1")]);
}

/// Sixteen requests carry the same token and all get a 401: the token is invalidated once
/// and one new token is fetched, not sixteen.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_401s_for_one_token_costs_one_new_token() {
    let token_server = TestServer::start(TokenEndpoint::new());
    let api = TestServer::start(Router::new().route("/api", |r: &Request| {
        match r.header("authorization") {
            // Every request with the first token arrives before any answer.
            Some("Bearer token-1") => Reply::new(401).delay(Duration::from_millis(200)),
            Some(_) => Reply::new(200),
            None => Reply::new(400),
        }
    }));
    let tokens = tokens(&token_server);
    tokens.token().await.unwrap();
    let http = Arc::new(http(&tokens));
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let http = Arc::clone(&http);
            let url = api.url("/api");
            tokio::spawn(async move { http.get(url).send().await.unwrap().status() })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap(), StatusCode::OK);
    }
    assert_eq!(token_server.count("/token"), 2);
    assert_eq!(tokens.counters().invalidations, 1);
    // Each request went out with token-1 and was retried with token-2 (a task scheduled
    // after token-2 arrived sends it straight away); none without a token.
    let seen = tokens_seen(&api);
    let first = seen.iter().filter(|t| **t == bearer("token-1")).count();
    let second = seen.iter().filter(|t| **t == bearer("token-2")).count();
    assert_eq!(second, 16, "{seen:?}");
    assert_eq!(first + second, seen.len(), "{seen:?}");
}

#[tokio::test]
async fn middleware_for_other_parameters_uses_their_token() {
    let token_server = TestServer::start(TokenEndpoint::new());
    let api = resource_server(&[]);
    let tokens = tokens(&token_server);
    let reports =
        AuthMiddleware::with_params(tokens.clone(), &TokenParams::new().scopes(["reports"]))
            .unwrap();
    let http = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(reports)
        .build();
    http.get(api.url("/api")).send().await.unwrap();
    assert_eq!(
        token_server
            .last_request()
            .unwrap()
            .param("scope")
            .as_deref(),
        Some("reports")
    );
    assert!(
        AuthMiddleware::with_params(tokens, &TokenParams::new().scopes(["bad scope"])).is_err()
    );
}

#[tokio::test]
async fn the_challenge_decides_invalid_token_is_retried_insufficient_scope_is_not() {
    let token_server = TestServer::start(TokenEndpoint::new());
    let api = TestServer::start(
        Router::new()
            .route("/invalid", |r: &Request| match r.header("authorization") {
                Some("Bearer token-1") => {
                    Reply::new(403).header("www-authenticate", r#"Bearer error="invalid_token""#)
                }
                Some(_) => Reply::new(200),
                None => Reply::new(400),
            })
            .route("/scope", |_: &Request| {
                Reply::new(401).header(
                    "www-authenticate",
                    r#"Bearer error="insufficient_scope", scope="admin""#,
                )
            }),
    );
    let tokens = tokens(&token_server);
    let http = http(&tokens);
    let response = http.get(api.url("/invalid")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(tokens_seen(&api), [bearer("token-1"), bearer("token-2")]);
    assert_eq!(tokens.counters().invalidations, 1);

    for response in [
        http.get(api.url("/scope")).send().await.unwrap(),
        tokens
            .send_authorized(reqwest::Client::new().get(api.url("/scope")))
            .await
            .unwrap(),
    ] {
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    assert_eq!(api.request_count(), 4, "insufficient_scope was retried");
    assert_eq!(
        tokens_seen(&api)[2..],
        [bearer("token-2"), bearer("token-2")]
    );
    assert_eq!(token_server.count("/token"), 2);
    assert_eq!(tokens.counters().invalidations, 1);
}

/// DPoP (RFC 9449 §9): each request carries its own proof; a resource server's
/// `use_dpop_nonce` challenge is retried exactly once, with the same token and the nonce,
/// and the next request carries the nonce from the start.
#[tokio::test]
async fn a_dpop_nonce_challenge_is_retried_exactly_once() {
    use client_credentials_testkit::conformance::dpop::{
        dpop_config, dpop_token_server, nonce_server, proof_claims,
    };
    let token_server = dpop_token_server();
    let tokens = Client::builder(dpop_config(&token_server))
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let http = http(&tokens);
    let api = nonce_server(false);
    let response = http.get(api.url("/api")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let response = http.get(api.url("/api")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let nonces: Vec<_> = api
        .requests()
        .iter()
        .map(|r| proof_claims(r).unwrap().get("nonce").cloned())
        .collect();
    assert_eq!(nonces, [None, Some("n-1".into()), Some("n-1".into())]);
    assert_eq!(token_server.count("/token"), 1);

    let api = nonce_server(true);
    let response = http.get(api.url("/api")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(api.request_count(), 2, "exactly one retry");
}
