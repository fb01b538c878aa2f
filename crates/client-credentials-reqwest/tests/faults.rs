//! Injected faults against a real server on 127.0.0.1, counting what reached the server.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

use std::time::{Duration, Instant, SystemTime};

use client_credentials_core::{ResponseProblem, TransportErrorKind};
use client_credentials_reqwest::{Client, ClientBuilder, Config, Error, Policy, TokenError};
use client_credentials_testkit::{
    Framing, Reply, RetryAfter, Router, Script, TestServer, TokenEndpoint, refused_url,
};

const SECRET: &str = "s3cr3t-Value";

fn builder(url: &str) -> ClientBuilder {
    let config = Config::builder()
        .token_url(url)
        .client_id("my-service")
        .client_secret(SECRET)
        .build()
        .unwrap();
    Client::builder(config).seed(7)
}

fn token_error(result: Result<impl std::fmt::Debug, Error>) -> TokenError {
    match result.unwrap_err() {
        Error::Token(e) => e,
        other => panic!("expected a token error, got {other:?}"),
    }
}

fn transport_kind(error: &TokenError) -> TransportErrorKind {
    match error {
        TokenError::Transport(t) => t.kind(),
        other => panic!("expected a transport error, got {other:?}"),
    }
}

/// Calls `token()` every 10 ms until it succeeds or `limit` passes; returns how many calls
/// failed before, and whether one succeeded.
async fn call_until_ok(client: &Client, limit: Duration) -> (usize, bool) {
    let deadline = Instant::now() + limit;
    let mut failed = 0;
    while Instant::now() < deadline {
        if client.token().await.is_ok() {
            return (failed, true);
        }
        failed += 1;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    (failed, false)
}

#[tokio::test]
async fn retry_after_seconds_is_honoured() {
    let server = TestServer::start(
        Script::new()
            .once(Reply::rate_limited(RetryAfter::Seconds(1)))
            .then(TokenEndpoint::new()),
    );
    let client = builder(&server.url("/token")).build().unwrap();
    let started = Instant::now();
    let error = token_error(client.token().await);
    assert!(matches!(error, TokenError::RateLimited { .. }), "{error:?}");
    assert_eq!(error.retry_after(), Some(Duration::from_secs(1)));

    // Within the window: every call gets the shared error, and none reaches the server.
    while started.elapsed() < Duration::from_millis(800) {
        let again = token_error(client.token().await);
        assert!(matches!(again, TokenError::RateLimited { .. }), "{again:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(server.request_count(), 1);

    let (_, ok) = call_until_ok(&client, Duration::from_secs(5)).await;
    assert!(ok);
    assert_eq!(server.request_count(), 2);
    let requests = server.requests();
    let gap = requests[1].received_at - requests[0].received_at;
    assert!(gap >= Duration::from_secs(1), "{gap:?}");
}

#[tokio::test]
async fn retry_after_http_date_is_honoured() {
    let at = SystemTime::now() + Duration::from_secs(2);
    let server = TestServer::start(
        Script::new()
            .once(Reply::rate_limited(RetryAfter::Date(at)))
            .then(TokenEndpoint::new()),
    );
    let client = builder(&server.url("/token")).build().unwrap();
    let error = token_error(client.token().await);
    // An HTTP date has whole seconds: the wait is between one and two seconds.
    let wait = error.retry_after().unwrap();
    assert!(
        wait <= Duration::from_secs(2) && wait >= Duration::from_millis(900),
        "{wait:?}"
    );
    let (failed, ok) = call_until_ok(&client, Duration::from_secs(5)).await;
    assert!(ok && failed > 0);
    assert_eq!(server.request_count(), 2);
    let requests = server.requests();
    assert!(requests[1].received_at - requests[0].received_at >= wait);
}

#[tokio::test]
async fn server_errors_back_off() {
    let server = TestServer::start(
        Script::new()
            .times(3, Reply::new(503))
            .then(TokenEndpoint::new()),
    );
    let mut policy = Policy::default();
    policy.initial_backoff = Duration::from_millis(200);
    policy.max_backoff = Duration::from_millis(400);
    let client = builder(&server.url("/token"))
        .policy(policy)
        .build()
        .unwrap();
    let (failed, ok) = call_until_ok(&client, Duration::from_secs(5)).await;
    assert!(ok);
    // Three failed fetches, one that worked; every other failed call was served the shared
    // error during a backoff, without a request.
    assert_eq!(server.request_count(), 4);
    assert!(failed >= 3, "{failed}");
    let counters = client.counters();
    assert_eq!(counters.fetches_failed, 3);
    assert_eq!(counters.fetches_succeeded, 1);
    assert!(matches!(
        client.last_error(),
        Some(TokenError::Server { .. })
    ));
}

#[tokio::test]
async fn a_stalled_server_times_out() {
    // Headers never come.
    let server = TestServer::start(Reply::new(200).delay(Duration::from_secs(20)));
    let client = builder(&server.url("/token"))
        .timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    let started = Instant::now();
    let error = token_error(client.token().await);
    assert_eq!(transport_kind(&error), TransportErrorKind::Timeout);
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(error.is_retryable());

    // The body stalls halfway.
    let server = TestServer::start(
        Reply::token("token-1", Some(Duration::from_secs(60)))
            .stall_after(10, Duration::from_secs(20)),
    );
    let client = builder(&server.url("/token"))
        .timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    let started = Instant::now();
    let error = token_error(client.token().await);
    assert_eq!(transport_kind(&error), TransportErrorKind::Timeout);
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn connection_refused() {
    let client = builder(&refused_url("/token")).build().unwrap();
    let error = token_error(client.token().await);
    assert_eq!(transport_kind(&error), TransportErrorKind::Connect);
    assert!(error.to_string().contains("could not connect"), "{error}");
    assert!(error.is_retryable());
}

#[tokio::test]
async fn broken_connections_are_transport_errors() {
    let token = Reply::token("token-1", Some(Duration::from_secs(60)));
    for reply in [
        token.clone().reset_after(10),
        token.close_after(10),
        Reply::hang_up(),
    ] {
        let server = TestServer::start(reply);
        let client = builder(&server.url("/token")).build().unwrap();
        let error = token_error(client.token().await);
        assert_eq!(transport_kind(&error), TransportErrorKind::Io, "{error}");
        assert_eq!(server.request_count(), 1);
    }
}

#[tokio::test]
async fn redirects_are_not_followed_and_the_target_gets_nothing() {
    for status in [301, 302, 303, 307, 308] {
        let target = TestServer::start(TokenEndpoint::new());
        let server = TestServer::start(
            Router::new().route("/token", Reply::redirect(status, &target.url("/token"))),
        );
        let client = builder(&server.url("/token")).build().unwrap();
        let error = token_error(client.token().await);
        assert!(
            matches!(
                &error,
                TokenError::InvalidResponse {
                    problem: ResponseProblem::UnexpectedStatus,
                    ..
                }
            ),
            "{status}: {error:?}"
        );
        assert_eq!(server.request_count(), 1);
        assert!(server.last_request().unwrap().contains(SECRET));
        // Give a (wrongly) followed redirect time to arrive before asserting it did not.
        assert!(!target.wait_for_requests(1, Duration::from_millis(100)));
        assert_eq!(
            target.connections(),
            0,
            "{status}: the target was contacted"
        );
    }
}

#[tokio::test]
async fn oversized_bodies_are_refused() {
    let cases = [
        // 10 MB announced by Content-Length: refused before reading it.
        Reply::large(10 * 1024 * 1024),
        // 10 MB with no length: refused once the cap is crossed.
        Reply::large(10 * 1024 * 1024).framing(Framing::Chunked),
        Reply::large(10 * 1024 * 1024).framing(Framing::Close),
    ];
    for reply in cases {
        let server = TestServer::start(reply);
        let client = builder(&server.url("/token")).build().unwrap();
        let started = Instant::now();
        let error = token_error(client.token().await);
        match &error {
            TokenError::TooLarge { status, limit } => {
                assert_eq!(status.map(|s| s.as_u16()), Some(200));
                assert_eq!(*limit, 1024 * 1024);
            }
            other => panic!("expected TooLarge, got {other:?}"),
        }
        assert!(!error.is_retryable());
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    // A configured cap applies to error bodies too, announced or not.
    for framing in [Framing::ContentLength, Framing::Chunked] {
        let server = TestServer::start(Reply::html(500, &"x".repeat(5000)).framing(framing));
        let config = Config::builder()
            .token_url(server.url("/token"))
            .client_id("c")
            .client_secret("s")
            .max_body(1000)
            .build()
            .unwrap();
        let error = token_error(Client::new(config).unwrap().token().await);
        assert!(
            matches!(
                error,
                TokenError::TooLarge {
                    limit: 1000,
                    status: Some(s)
                } if s.as_u16() == 500
            ),
            "{framing:?}: {error:?}"
        );
    }
}

#[tokio::test]
async fn a_rejection_cools_down_without_requests() {
    let server = TestServer::start(TokenEndpoint::new().client("my-service", "another"));
    let client = builder(&server.url("/token")).build().unwrap();
    for _ in 0..20 {
        let error = token_error(client.token().await);
        assert!(matches!(error, TokenError::Rejected { .. }), "{error:?}");
    }
    assert_eq!(server.request_count(), 1);
}
