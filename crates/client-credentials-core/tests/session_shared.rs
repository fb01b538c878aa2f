//! The inputs a driver uses to share tokens between processes through a store: the stored
//! record, `would_adopt`, `handle_shared_token`, and a rejected token that never comes back.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use client_credentials_core::session::{Action, Failure, Policy, Session, WallClock};
use client_credentials_core::{Config, Token, TokenRequest};
use http::{HeaderMap, StatusCode};

fn request() -> TokenRequest {
    Config::builder()
        .token_url("https://as.example.com/token")
        .client_id("c")
        .client_secret("s")
        .build()
        .unwrap()
        .default_request()
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

const WALL: Duration = Duration::from_secs(1_700_000_000);

/// A token as another process would have fetched it: issued at `issued_at` (wall clock).
fn token(name: &str, issued_at: SystemTime, lifetime_secs: u64) -> Arc<Token> {
    let body = format!(
        r#"{{"access_token":"{name}","token_type":"Bearer","expires_in":{lifetime_secs}}}"#
    );
    let token = request()
        .parse_response(
            issued_at,
            StatusCode::OK,
            &HeaderMap::new(),
            body.as_bytes(),
        )
        .unwrap();
    // Through the stored form, as a store hands it over.
    let stored = serde_json::to_vec(&token.storable()).unwrap();
    Arc::new(serde_json::from_slice(&stored).unwrap())
}

fn session(t0: Instant) -> Session {
    let clock = WallClock::new(t0, UNIX_EPOCH + WALL);
    Session::new(request(), Policy::default(), clock, 7)
}

fn counters_balance(s: &Session) {
    let c = s.counters();
    assert_eq!(
        c.fetches_started,
        c.fetches_succeeded
            + c.fetches_failed
            + c.fetches_abandoned
            + c.fetches_timed_out
            + c.fetches_shared
            + u64::from(s.in_flight().is_some()),
        "{c:?}"
    );
}

#[test]
fn the_stored_record_is_versioned_and_carries_an_absolute_expiry() {
    let issued = UNIX_EPOCH + WALL;
    let t = token("tok-1", issued, 3600);
    let json: serde_json::Value = serde_json::to_value(t.storable()).unwrap();
    assert_eq!(json["v"], 1);
    assert_eq!(json["issued_at_ms"], 1_700_000_000_000_u64);
    assert_eq!(json["lifetime_ms"], 3_600_000);
    assert_eq!(json["access_token"], "tok-1");
    assert_eq!(json["token_type"], "Bearer");
    assert_eq!(t.expires_at(), Some(issued + Duration::from_secs(3600)));
    // A record of a later version is refused rather than misread.
    let mut future = json.clone();
    future["v"] = 2.into();
    assert!(serde_json::from_value::<Token>(future).is_err());
}

#[test]
fn a_shared_token_answers_a_cold_send_and_every_waiter_gets_it() {
    let t0 = origin();
    let mut s = session(t0);
    let Action::Send { id, current, .. } = s.poll(t0) else {
        panic!("a cold session sends")
    };
    assert!(current.is_none());
    assert!(
        matches!(s.poll(t0), Action::Wait(_)),
        "a second caller waits"
    );

    // Fetched by another process a minute ago, for an hour.
    let shared = token("shared", UNIX_EPOCH + WALL - Duration::from_secs(60), 3600);
    assert!(s.would_adopt(t0, &shared));
    assert!(s.handle_shared_token(t0, id, Arc::clone(&shared)));
    assert_eq!(s.in_flight(), None, "the request ends unsent");
    match s.poll(t0) {
        Action::Ready(t) => assert_eq!(t.access_token().expose_secret(), "shared"),
        other => panic!("expected the shared token, got {other:?}"),
    }
    let c = s.counters();
    assert_eq!((c.fetches_shared, c.tokens_adopted), (1, 1));
    assert_eq!((c.fetches_succeeded, c.fetches_abandoned), (0, 0));
    counters_balance(&s);

    // Usable for its remaining life less the margin, counted from its own issue time.
    let usable_left = Duration::from_secs(3600 - 60 - 10);
    assert!(
        s.current_token(t0 + usable_left - Duration::from_millis(1))
            .is_some()
    );
    assert!(s.current_token(t0 + usable_left).is_none());
}

#[test]
fn a_refresh_is_not_answered_by_the_token_already_held() {
    let t0 = origin();
    let mut s = session(t0);
    let first = token("first", UNIX_EPOCH + WALL, 60);
    assert!(s.adopt(t0, Arc::clone(&first)));
    // Past the refresh point (at most 80 % of the 50 s usable life).
    let later = t0 + Duration::from_secs(41);
    let Action::Send { id, current, .. } = s.poll(later) else {
        panic!("the refresh is due")
    };
    assert!(current.is_some());

    // The store still holds the same token: not taken, the request stays in flight.
    assert!(!s.would_adopt(later, &first));
    assert!(!s.handle_shared_token(later, id, Arc::clone(&first)));
    assert_eq!(s.in_flight(), Some(id));
    counters_balance(&s);

    // A token that has already expired for this session is refused too.
    let stale = token("stale", UNIX_EPOCH + WALL - Duration::from_secs(3600), 60);
    assert!(!s.handle_shared_token(later, id, stale));
    assert_eq!(s.in_flight(), Some(id));

    // Another process refreshed meanwhile: its token answers the refresh.
    let newer = token("newer", UNIX_EPOCH + WALL + Duration::from_secs(40), 60);
    assert!(s.handle_shared_token(later, id, newer));
    assert_eq!(s.in_flight(), None);
    match s.poll(later) {
        Action::Ready(t) => assert_eq!(t.access_token().expose_secret(), "newer"),
        other => panic!("expected the newer token, got {other:?}"),
    }
    assert_eq!(s.counters().fetches_shared, 1);
    counters_balance(&s);
}

#[test]
fn a_stale_id_still_offers_the_token() {
    let t0 = origin();
    let mut s = session(t0);
    let Action::Send { id, .. } = s.poll(t0) else {
        panic!("a cold session sends")
    };
    let _ = s.handle_failure(t0, id, Failure::Abandoned);
    let shared = token("shared", UNIX_EPOCH + WALL, 3600);
    assert!(s.handle_shared_token(t0, id, shared));
    let c = s.counters();
    assert_eq!(
        (c.tokens_adopted, c.fetches_shared, c.ignored_reports),
        (1, 0, 1)
    );
    counters_balance(&s);
}

#[test]
fn an_invalidated_token_is_never_adopted_again() {
    let t0 = origin();
    let mut s = session(t0);
    let rejected = token("rejected", UNIX_EPOCH + WALL, 3600);
    assert!(s.adopt(t0, Arc::clone(&rejected)));
    assert!(s.invalidate(t0, rejected.access_token()));

    // A store that still holds it cannot hand it back.
    assert!(!s.would_adopt(t0, &rejected));
    assert!(!s.adopt(t0, Arc::clone(&rejected)));
    let Action::Send { id, .. } = s.poll(t0) else {
        panic!("nothing held: the session sends")
    };
    assert!(!s.handle_shared_token(t0, id, rejected));
    assert_eq!(s.in_flight(), Some(id), "the request is sent after all");

    // A different token is welcome.
    let fresh = token("fresh", UNIX_EPOCH + WALL, 3600);
    assert!(s.handle_shared_token(t0, id, fresh));
}

#[test]
fn another_process_with_its_own_clock_anchor_agrees_on_expiry() {
    // Process B started 100 s after A; both map their instants to the same wall clock.
    let t0 = origin();
    let a = WallClock::new(t0, UNIX_EPOCH + WALL);
    let b_start = t0 + Duration::from_secs(100);
    let b = WallClock::new(b_start, UNIX_EPOCH + WALL + Duration::from_secs(100));
    let mut sb = Session::new(request(), Policy::default(), b, 9);
    // A fetched a 2-minute token at its t0.
    let shared = token("from-a", a.at(t0), 120);
    assert!(sb.would_adopt(b_start, &shared));
    assert!(sb.adopt(b_start, shared));
    // It is usable in B until A's t0 + 110 s, not until B's start + 110 s.
    assert!(sb.current_token(t0 + Duration::from_secs(109)).is_some());
    assert!(sb.current_token(t0 + Duration::from_secs(110)).is_none());
}

#[test]
fn usable_lifetime_is_the_session_schedule() {
    let policy = Policy::default();
    for secs in [1_u64, 5, 10, 15, 20, 30, 3600] {
        let t0 = origin();
        let mut s = session(t0);
        let lifetime = Duration::from_secs(secs);
        assert!(s.adopt(t0, token("t", UNIX_EPOCH + WALL, secs)));
        let usable = policy.usable_lifetime(lifetime);
        assert!(usable <= lifetime && usable > Duration::ZERO);
        assert!(
            s.current_token(t0 + usable - Duration::from_millis(1))
                .is_some()
        );
        assert!(s.current_token(t0 + usable).is_none(), "{secs} s");
    }
}
