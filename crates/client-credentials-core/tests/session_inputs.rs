//! The inputs a transport uses besides responses: errors it decided itself, and invalidation
//! across request shapes.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly

use std::time::{Duration, Instant, SystemTime};

use client_credentials_core::session::{Action, Cache, Failure, Policy, Session, WallClock};
use client_credentials_core::{Config, TokenError, TokenParams};
use http::{HeaderMap, StatusCode};

fn config() -> Config {
    Config::builder()
        .token_url("https://as.example.com/token")
        .client_id("c")
        .client_secret("s")
        .build()
        .unwrap()
}

/// One real instant: the origin of the virtual time these tests step through.
fn origin() -> Instant {
    #[allow(
        clippy::disallowed_methods,
        reason = "virtual time needs one real origin"
    )]
    let origin = Instant::now();
    origin
}

fn ok_body(token: &str) -> Vec<u8> {
    format!(r#"{{"access_token":"{token}","token_type":"Bearer","expires_in":3600}}"#).into_bytes()
}

#[test]
fn a_transport_error_of_its_own_reaches_every_waiter_and_backs_off() {
    let t0 = origin();
    let clock = WallClock::new(
        t0,
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
    );
    let mut session = Session::new(config().default_request(), Policy::default(), clock, 1);
    let Action::Send { id, .. } = session.poll(t0) else {
        panic!("first poll sends")
    };
    assert!(
        matches!(session.poll(t0), Action::Wait(_)),
        "a second caller waits"
    );
    let too_large = TokenError::TooLarge {
        status: Some(StatusCode::OK),
        limit: 1024,
    };
    assert!(
        session
            .handle_failure(t0, id, Failure::Error(too_large))
            .changed()
    );
    match session.poll(t0) {
        Action::Failed(TokenError::TooLarge { limit: 1024, .. }) => {}
        other => panic!("expected the shared TooLarge, got {other:?}"),
    }
    // Not retryable: the cool-down holds, no request goes out before it ends.
    let until = session.poll_timeout().unwrap();
    assert!(until >= t0 + Policy::default().rejection_cooldown);
    assert!(matches!(
        session.poll(t0 + Duration::from_secs(1)),
        Action::Failed(_)
    ));
    assert!(matches!(session.poll(until), Action::Send { .. }));
    assert_eq!(session.counters().fetches_failed, 1);
    // A stale id changes nothing.
    let stale = session.handle_failure(
        until,
        id,
        Failure::Error(TokenError::TooLarge {
            status: None,
            limit: 1,
        }),
    );
    assert!(!stale.changed());
    assert_eq!(session.counters().fetches_failed, 1);
}

#[test]
fn invalidation_reaches_the_shape_that_holds_the_token() {
    let t0 = origin();
    let clock = WallClock::new(
        t0,
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
    );
    let mut sessions = Cache::new(Policy::default(), clock, 9);
    let config = config();
    let a = config.request(&TokenParams::new().scopes(["a"])).unwrap();
    let b = config.request(&TokenParams::new().scopes(["b"])).unwrap();
    let mut fetch = |request: &client_credentials_core::TokenRequest, token: &str| {
        let Action::Send { id, .. } = sessions.poll(t0, request) else {
            panic!("cold session sends")
        };
        let outcome =
            sessions.handle_response(t0, id, StatusCode::OK, &HeaderMap::new(), &ok_body(token));
        assert!(outcome.changed());
        match sessions.poll(t0, request) {
            Action::Ready(t) => t,
            other => panic!("{other:?}"),
        }
    };
    let token_a = fetch(&a, "token-a");
    let token_b = fetch(&b, "token-b");
    assert!(sessions.invalidate(t0, token_b.access_token()));
    assert!(
        !sessions.invalidate(t0, token_b.access_token()),
        "already dropped"
    );
    assert!(
        sessions.current_token(t0, a.cache_key()).is_some(),
        "a is untouched"
    );
    assert!(sessions.current_token(t0, b.cache_key()).is_none());
    assert!(matches!(sessions.poll(t0, &b), Action::Send { .. }));
    assert!(sessions.invalidate(t0, token_a.access_token()));
}

#[test]
fn reset_backoff_ends_the_backoff_of_every_shape() {
    let t0 = origin();
    let clock = WallClock::new(
        t0,
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
    );
    let mut sessions = Cache::new(Policy::default(), clock, 10);
    let config = config();
    let shapes: Vec<_> = ["a", "b", "c"]
        .iter()
        .map(|s| config.request(&TokenParams::new().scopes([*s])).unwrap())
        .collect();
    let mut headers = HeaderMap::new();
    headers.insert("retry-after", "31536000".parse().unwrap());
    for (n, request) in shapes.iter().enumerate() {
        let Action::Send { id, .. } = sessions.poll(t0, request) else {
            panic!("cold session sends")
        };
        // Two shapes are told to come back in a year; the third gets its token.
        let outcome = if n < 2 {
            sessions.handle_response(t0, id, StatusCode::SERVICE_UNAVAILABLE, &headers, b"")
        } else {
            sessions.handle_response(t0, id, StatusCode::OK, &HeaderMap::new(), &ok_body("c"))
        };
        assert!(outcome.changed());
    }
    let t = t0 + Duration::from_secs(5);
    assert_eq!(sessions.reset_backoff(t), 2);
    assert_eq!(sessions.reset_backoff(t), 0);
    for (n, request) in shapes.iter().enumerate() {
        let action = sessions.poll(t, request);
        match (n, action) {
            (0 | 1, Action::Send { current: None, .. }) | (2, Action::Ready(_)) => {}
            (n, other) => panic!("shape {n}: {other:?}"),
        }
    }
}
