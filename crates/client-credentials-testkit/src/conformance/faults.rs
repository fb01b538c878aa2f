//! Injected faults against a real server on 127.0.0.1, on a cold cache, counting what
//! reached the server.

use std::thread::sleep;
use std::time::{Duration, Instant, SystemTime};

use client_credentials_core::session::Policy;
use client_credentials_core::{Config, ResponseProblem, TokenError, TransportErrorKind};

use super::{Harness, HarnessOptions};
use crate::{Framing, Reply, RetryAfter, Router, Script, TestServer, TokenEndpoint, refused_url};

const SECRET: &str = "s3cr3t-Value";

fn config(url: &str) -> Config {
    Config::builder()
        .token_url(url)
        .client_id("my-service")
        .client_secret(SECRET)
        .build()
        .unwrap()
}

fn options() -> HarnessOptions {
    HarnessOptions::new().seed(7)
}

fn client<H: Harness>(url: &str) -> H {
    H::build(config(url), &options())
}

fn token_error<H: Harness>(client: &H) -> TokenError {
    client.token().unwrap_err().into_token_error()
}

fn transport_kind(error: &TokenError) -> TransportErrorKind {
    match error {
        TokenError::Transport(t) => t.kind(),
        other => panic!("expected a transport error, got {other:?}"),
    }
}

/// Calls `token()` every 10 ms until it succeeds or `limit` passes; returns how many calls
/// failed before, and whether one succeeded.
fn call_until_ok<H: Harness>(client: &H, limit: Duration) -> (usize, bool) {
    let deadline = Instant::now() + limit;
    let mut failed = 0;
    while Instant::now() < deadline {
        if client.token().is_ok() {
            return (failed, true);
        }
        failed += 1;
        sleep(Duration::from_millis(10));
    }
    (failed, false)
}

/// A 429 with `Retry-After: 1`: every call within the second gets the shared error without
/// a request; the next request comes a second later.
pub fn retry_after_seconds_is_honoured<H: Harness>() {
    let server = TestServer::start(
        Script::new()
            .once(Reply::rate_limited(RetryAfter::Seconds(1)))
            .then(TokenEndpoint::new()),
    );
    let client = client::<H>(&server.url("/token"));
    let started = Instant::now();
    let error = token_error(&client);
    assert!(matches!(error, TokenError::RateLimited { .. }), "{error:?}");
    assert_eq!(error.retry_after(), Some(Duration::from_secs(1)));

    // Within the window: every call gets the shared error, and none reaches the server.
    while started.elapsed() < Duration::from_millis(800) {
        let again = token_error(&client);
        assert!(matches!(again, TokenError::RateLimited { .. }), "{again:?}");
        sleep(Duration::from_millis(20));
    }
    assert_eq!(server.request_count(), 1);

    let (_, ok) = call_until_ok(&client, Duration::from_secs(5));
    assert!(ok);
    assert_eq!(server.request_count(), 2);
    let requests = server.requests();
    let gap = requests[1].received_at - requests[0].received_at;
    assert!(gap >= Duration::from_secs(1), "{gap:?}");
}

/// A 429 with `Retry-After` as an HTTP date.
pub fn retry_after_http_date_is_honoured<H: Harness>() {
    let at = SystemTime::now() + Duration::from_secs(2);
    let server = TestServer::start(
        Script::new()
            .once(Reply::rate_limited(RetryAfter::Date(at)))
            .then(TokenEndpoint::new()),
    );
    let client = client::<H>(&server.url("/token"));
    let error = token_error(&client);
    // An HTTP date has whole seconds: the wait is between one and two seconds.
    let wait = error.retry_after().unwrap();
    assert!(
        wait <= Duration::from_secs(2) && wait >= Duration::from_millis(900),
        "{wait:?}"
    );
    let (failed, ok) = call_until_ok(&client, Duration::from_secs(5));
    assert!(ok && failed > 0);
    assert_eq!(server.request_count(), 2);
    let requests = server.requests();
    assert!(requests[1].received_at - requests[0].received_at >= wait);
}

/// Three 503s, then a token: three failed fetches and one that worked, and every other
/// failed call served the shared error during a backoff.
pub fn server_errors_back_off<H: Harness>() {
    let server = TestServer::start(
        Script::new()
            .times(3, Reply::new(503))
            .then(TokenEndpoint::new()),
    );
    let mut policy = Policy::default();
    policy.initial_backoff = Duration::from_millis(200);
    policy.max_backoff = Duration::from_millis(400);
    let client = H::build(config(&server.url("/token")), &options().policy(policy));
    let (failed, ok) = call_until_ok(&client, Duration::from_secs(5));
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

/// Headers that never come, and a body that stalls halfway, run into the timeout.
pub fn a_stalled_server_times_out<H: Harness>() {
    // Headers never come.
    let server = TestServer::start(Reply::new(200).delay(Duration::from_secs(20)));
    let client = H::build(
        config(&server.url("/token")),
        &options().timeout(Duration::from_millis(500)),
    );
    let started = Instant::now();
    let error = token_error(&client);
    assert_eq!(transport_kind(&error), TransportErrorKind::Timeout);
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(error.is_retryable());

    // The body stalls halfway.
    let server = TestServer::start(
        Reply::token("token-1", Some(Duration::from_secs(60)))
            .stall_after(10, Duration::from_secs(20)),
    );
    let client = H::build(
        config(&server.url("/token")),
        &options().timeout(Duration::from_millis(500)),
    );
    let started = Instant::now();
    let error = token_error(&client);
    assert_eq!(transport_kind(&error), TransportErrorKind::Timeout);
    assert!(started.elapsed() < Duration::from_secs(5));
}

/// Nothing listens: a retryable connect error.
pub fn connection_refused<H: Harness>() {
    let client = client::<H>(&refused_url("/token"));
    let error = token_error(&client);
    assert_eq!(transport_kind(&error), TransportErrorKind::Connect);
    assert!(error.to_string().contains("could not connect"), "{error}");
    assert!(error.is_retryable());
}

/// A reset or a close mid-body, and no answer at all, are I/O errors after one request.
pub fn broken_connections_are_transport_errors<H: Harness>() {
    let token = Reply::token("token-1", Some(Duration::from_secs(60)));
    for reply in [
        token.clone().reset_after(10),
        token.close_after(10),
        Reply::hang_up(),
    ] {
        let server = TestServer::start(reply);
        let client = client::<H>(&server.url("/token"));
        let error = token_error(&client);
        assert_eq!(transport_kind(&error), TransportErrorKind::Io, "{error}");
        assert_eq!(server.request_count(), 1);
    }
}

/// No redirect is followed, and its target gets nothing (not even a connection).
pub fn redirects_are_not_followed_and_the_target_gets_nothing<H: Harness>() {
    for status in [301, 302, 303, 307, 308] {
        let target = TestServer::start(TokenEndpoint::new());
        let server = TestServer::start(
            Router::new().route("/token", Reply::redirect(status, &target.url("/token"))),
        );
        let client = client::<H>(&server.url("/token"));
        let error = token_error(&client);
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

/// 10 MB bodies, announced or not, are refused at the cap; a configured cap applies to
/// error bodies too.
pub fn oversized_bodies_are_refused<H: Harness>() {
    let cases = [
        // 10 MB announced by Content-Length: refused before reading it.
        Reply::large(10 * 1024 * 1024),
        // 10 MB with no length: refused once the cap is crossed.
        Reply::large(10 * 1024 * 1024).framing(Framing::Chunked),
        Reply::large(10 * 1024 * 1024).framing(Framing::Close),
    ];
    for reply in cases {
        let server = TestServer::start(reply);
        let client = client::<H>(&server.url("/token"));
        let started = Instant::now();
        let error = token_error(&client);
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
        let error = token_error(&H::build(config, &HarnessOptions::new()));
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

/// A rejection of the client is not asked again during the cool-down: twenty calls, one
/// request.
pub fn a_rejection_cools_down_without_requests<H: Harness>() {
    let server = TestServer::start(TokenEndpoint::new().client("my-service", "another"));
    let client = client::<H>(&server.url("/token"));
    for _ in 0..20 {
        let error = token_error(&client);
        assert!(matches!(error, TokenError::Rejected { .. }), "{error:?}");
    }
    assert_eq!(server.request_count(), 1);
}
