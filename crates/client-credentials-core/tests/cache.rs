//! The cache that owns the protocol: bounded entries, events, the timer input, the resource
//! server's verdict, the shared-store snapshot and restored tokens.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod session_support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use client_credentials_core::http::{HeaderMap, HeaderValue, StatusCode, header};
use client_credentials_core::session::{
    Action, Cache, Event, Failure, Policy, ResourceVerdict, WallClock,
};
use client_credentials_core::{
    ResourceAuth, Token, TokenError, TokenRequest, TransportError, TransportErrorKind,
};
use session_support::{origin, request, request_with_scope, secs};

fn cache(policy: Policy) -> (Cache, Instant) {
    let (start, wall) = origin();
    (Cache::new(policy, WallClock::new(start, wall), 7), start)
}

fn body(token: &str, lifetime: u64) -> Vec<u8> {
    format!(r#"{{"access_token":"{token}","token_type":"Bearer","expires_in":{lifetime}}}"#)
        .into_bytes()
}

/// Polls `request` at `now`, answers the send with `token`, and returns the token served.
fn fetch(cache: &mut Cache, now: Instant, request: &TokenRequest, token: &str) -> Arc<Token> {
    let Action::Send { id, .. } = cache.poll(now, request) else {
        panic!("expected a send")
    };
    let outcome = cache.handle_response(
        now,
        id,
        StatusCode::OK,
        &HeaderMap::new(),
        &body(token, 3600),
    );
    assert!(outcome.changed());
    match cache.poll(now, request) {
        Action::Ready(t) => t,
        other => panic!("{other:?}"),
    }
}

fn drain(cache: &mut Cache) -> Vec<Event> {
    std::iter::from_fn(|| cache.poll_event()).collect()
}

#[test]
fn ten_thousand_shapes_stay_within_the_bound_and_a_used_key_survives() {
    let mut policy = Policy::default();
    policy.max_keys = 64;
    let (mut cache, start) = cache(policy);
    let hot = request();
    let hot_token = fetch(&mut cache, start, &hot, "hot");
    let mut evicted = 0;
    for n in 0..10_000u32 {
        let now = start + Duration::from_millis(u64::from(n));
        let shape = request_with_scope(&format!("tenant-{n}"));
        let _ = fetch(&mut cache, now, &shape, &format!("t-{n}"));
        // The hot key is used between every two new shapes.
        let Action::Ready(t) = cache.poll(now, &hot) else {
            panic!("the used key lost its token at shape {n}")
        };
        assert_eq!(t.access_token(), hot_token.access_token());
        evicted += drain(&mut cache)
            .iter()
            .filter(|e| matches!(e, Event::Evicted { .. }))
            .count();
        assert!(cache.len() <= 64, "{} entries", cache.len());
    }
    assert_eq!(cache.len(), 64);
    assert_eq!(evicted, 10_001 - 64);
    assert_eq!(cache.counters(hot.cache_key()).unwrap().fetches_started, 1);
}

#[test]
fn reads_never_create_an_entry() {
    let (mut cache, start) = cache(Policy::default());
    let shape = request_with_scope("never-polled");
    assert!(cache.counters(shape.cache_key()).is_none());
    assert!(cache.last_error(shape.cache_key()).is_none());
    assert!(cache.next_refresh(shape.cache_key()).is_none());
    assert!(cache.current_token(start, shape.cache_key()).is_none());
    assert!(!cache.force_refresh(start, shape.cache_key()));
    assert_eq!(
        cache.resource_verdict(
            start,
            shape.cache_key(),
            &api(),
            StatusCode::OK,
            &HeaderMap::new(),
            &auth(&bearer("x"))
        ),
        ResourceVerdict::Done
    );
    assert!(cache.is_empty());
}

#[test]
fn idle_entries_are_evicted_by_the_timer_but_never_one_in_flight() {
    let mut policy = Policy::default();
    policy.idle_eviction = secs(60);
    let (mut cache, start) = cache(policy);
    let idle = request_with_scope("idle");
    let busy = request_with_scope("busy");
    let _ = fetch(&mut cache, start, &idle, "idle");
    let Action::Send { id, .. } = cache.poll(start, &busy) else {
        panic!()
    };
    drain(&mut cache);
    let deadline = cache.poll_timeout().unwrap();
    assert!(deadline <= start + secs(60));
    assert!(cache.handle_timeout(start + secs(61)));
    let events = drain(&mut cache);
    assert!(
        matches!(&events[..], [Event::Evicted { key }] if key == idle.cache_key()),
        "{events:?}"
    );
    assert!(cache.session(busy.cache_key()).is_some(), "in flight");
    // The outcome of the request in flight still lands.
    let outcome = cache.handle_response(
        start + secs(61),
        id,
        StatusCode::OK,
        &HeaderMap::new(),
        &body("busy", 3600),
    );
    assert!(outcome.changed());
}

#[test]
fn events_say_what_happened_and_publish_carries_the_store_ttl() {
    let (cache, start) = cache(Policy::default());
    let mut cache = cache.with_shared_store();
    let shape = request();
    let Action::Send { id, .. } = cache.poll(start, &shape) else {
        panic!()
    };
    let _ = cache.handle_response(
        start,
        id,
        StatusCode::OK,
        &HeaderMap::new(),
        &body("a", 3600),
    );
    let events = drain(&mut cache);
    match &events[..] {
        [
            Event::Fetched {
                id: i1, token: t1, ..
            },
            Event::Publish {
                id: i2,
                token: t2,
                ttl,
                ..
            },
        ] => {
            assert_eq!((*i1, *i2), (id, id));
            assert_eq!(t1.access_token(), t2.access_token());
            assert_eq!(*ttl, secs(3590));
        }
        other => panic!("{other:?}"),
    }
    // A failure, then an abandoned request: one event each, and `changed` both times.
    cache.force_refresh(start, shape.cache_key());
    let Action::Send { id, .. } = cache.poll(start, &shape) else {
        panic!()
    };
    let error = TransportError::from_kind(TransportErrorKind::Connect);
    assert!(
        cache
            .handle_failure(start, id, Failure::Transport(error))
            .changed()
    );
    assert!(matches!(
        &drain(&mut cache)[..],
        [Event::FetchFailed {
            error: TokenError::Transport(_),
            ..
        }]
    ));
    assert!(matches!(
        cache.last_error(shape.cache_key()),
        Some(TokenError::Transport(_))
    ));
    // The same id again: nothing changed, no event.
    assert!(
        !cache
            .handle_failure(start, id, Failure::Abandoned)
            .changed()
    );
    assert!(drain(&mut cache).is_empty());
}

#[test]
fn the_timer_input_refreshes_in_the_background_without_counting_hits() {
    let (mut cache, start) = cache(Policy::default());
    let shape = request();
    let token = fetch(&mut cache, start, &shape, "first");
    let hits = cache.counters(shape.cache_key()).unwrap().cache_hits;
    assert!(cache.poll_refresh().is_none());
    // Nothing due before the refresh point.
    let at = cache.poll_timeout().unwrap();
    assert!(!cache.handle_timeout(at - Duration::from_millis(1)));
    assert!(cache.handle_timeout(at));
    let refresh = cache.poll_refresh().expect("a refresh is due");
    assert!(cache.poll_refresh().is_none());
    let c = cache.counters(shape.cache_key()).unwrap();
    assert_eq!(
        (c.cache_hits, c.background_refreshes, c.fetches_started),
        (hits, 1, 2)
    );
    // Callers keep the still-valid token while it is in flight.
    let Action::Ready(t) = cache.poll(at, &shape) else {
        panic!()
    };
    assert_eq!(t.access_token(), token.access_token());
    let _ = cache.handle_response(
        at,
        refresh.id,
        StatusCode::OK,
        &HeaderMap::new(),
        &body("second", 3600),
    );
    let Action::Ready(t) = cache.poll(at, &shape) else {
        panic!()
    };
    assert_eq!(t.access_token().expose_secret(), "second");
    // An empty shape is never fetched by the timer.
    let cold = request_with_scope("cold");
    let Action::Send { id, .. } = cache.poll(at, &cold) else {
        panic!()
    };
    let _ = cache.handle_failure(at, id, Failure::Abandoned);
    assert!(!cache.handle_timeout(at + secs(1)));
    assert!(cache.poll_refresh().is_none());
}

fn challenge(value: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_str(value).unwrap(),
    );
    headers
}

#[test]
fn the_resource_verdict_retries_a_rejected_token_once_and_never_with_it() {
    let (mut cache, start) = cache(Policy::default());
    let shape = request();
    let key = shape.cache_key().clone();
    let used = fetch(&mut cache, start, &shape, "first");
    // Success, a 403 for scope, a 500: done, nothing dropped.
    for (status, headers) in [
        (StatusCode::OK, HeaderMap::new()),
        (
            StatusCode::FORBIDDEN,
            challenge(r#"Bearer error="insufficient_scope", scope="admin""#),
        ),
        (
            StatusCode::UNAUTHORIZED,
            challenge(r#"Bearer error="insufficient_scope""#),
        ),
        (StatusCode::INTERNAL_SERVER_ERROR, HeaderMap::new()),
    ] {
        let verdict = cache.resource_verdict(start, &key, &api(), status, &headers, &auth(&used));
        assert_eq!(verdict, ResourceVerdict::Done, "{status}");
    }
    assert!(cache.current_token(start, &key).is_some());
    // A plain 401: dropped, retry with a fresh token, which is never the rejected one.
    let verdict = cache.resource_verdict(
        start,
        &key,
        &api(),
        StatusCode::UNAUTHORIZED,
        &HeaderMap::new(),
        &auth(&used),
    );
    assert_eq!(verdict, ResourceVerdict::RetryWithFreshToken);
    assert!(matches!(
        &drain(&mut cache)[..],
        [Event::Fetched { .. }, Event::Invalidated { .. }] | [Event::Invalidated { .. }]
    ));
    let fresh = fetch(&mut cache, start, &shape, "second");
    assert_ne!(fresh.access_token(), used.access_token());
    // invalid_token in a challenge counts whatever the status.
    let verdict = cache.resource_verdict(
        start,
        &key,
        &api(),
        StatusCode::BAD_REQUEST,
        &challenge(r#"Bearer realm="api", error="invalid_token""#),
        &auth(&fresh),
    );
    assert_eq!(verdict, ResourceVerdict::RetryWithFreshToken);
    // A burst of 401s for an old token after it was replaced: retry (with the new one),
    // and the new one is not dropped.
    let third = fetch(&mut cache, start, &shape, "third");
    let verdict = cache.resource_verdict(
        start,
        &key,
        &api(),
        StatusCode::UNAUTHORIZED,
        &HeaderMap::new(),
        &auth(&used),
    );
    assert_eq!(verdict, ResourceVerdict::RetryWithFreshToken);
    let Action::Ready(t) = cache.poll(start, &shape) else {
        panic!()
    };
    assert_eq!(t.access_token(), third.access_token());
}

#[test]
fn a_grpc_unauthenticated_status_counts_as_a_401() {
    let (mut cache, start) = cache(Policy::default());
    let shape = request();
    let key = shape.cache_key().clone();
    let grpc = |code: &'static str| {
        let mut headers = HeaderMap::new();
        headers.insert("grpc-status", HeaderValue::from_static(code));
        headers
    };
    let used = fetch(&mut cache, start, &shape, "first");
    // PERMISSION_DENIED (7) and UNAVAILABLE (14) arrive with HTTP 200: not a rejected token.
    for code in ["0", "7", "14"] {
        let verdict = cache.resource_verdict(
            start,
            &key,
            &api(),
            StatusCode::OK,
            &grpc(code),
            &auth(&used),
        );
        assert_eq!(verdict, ResourceVerdict::Done, "grpc-status {code}");
    }
    assert!(cache.current_token(start, &key).is_some());
    // UNAUTHENTICATED (16), in the headers of a trailers-only answer or in the trailers.
    let verdict = cache.resource_verdict(
        start,
        &key,
        &api(),
        StatusCode::OK,
        &grpc("16"),
        &auth(&used),
    );
    assert_eq!(verdict, ResourceVerdict::RetryWithFreshToken);
    assert!(
        cache.current_token(start, &key).is_none(),
        "the token is dropped"
    );
}

#[test]
fn the_resource_verdict_keeps_the_early_rejection_throttle() {
    let (mut cache, start) = cache(Policy::default());
    let shape = request();
    let key = shape.cache_key().clone();
    let mut verdicts = Vec::new();
    for n in 0..4 {
        let t = fetch(&mut cache, start, &shape, &format!("t{n}"));
        verdicts.push(cache.resource_verdict(
            start,
            &key,
            &api(),
            StatusCode::UNAUTHORIZED,
            &HeaderMap::new(),
            &auth(&t),
        ));
    }
    use ResourceVerdict::{Done, RetryWithFreshToken as Retry};
    assert_eq!(verdicts, [Retry, Retry, Retry, Done]);
    assert!(matches!(
        cache.poll(start, &shape),
        Action::Failed(TokenError::RejectedByResource { attempts: 4 })
    ));
}

#[test]
fn the_store_snapshot_accepts_only_what_the_session_would_take() {
    let (mut cache, start) = cache(Policy::default());
    let shape = request();
    let clock = cache.clock();
    let old = fetch(&mut cache, start, &shape, "old");
    let _ = cache.resource_verdict(
        start,
        shape.cache_key(),
        &api(),
        StatusCode::UNAUTHORIZED,
        &HeaderMap::new(),
        &auth(&old),
    );
    let Action::Send { id, .. } = cache.poll(start, &shape) else {
        panic!()
    };
    let query = cache.store_query(start, id).unwrap();
    assert_eq!(query.request().cache_key(), shape.cache_key());
    let now = clock.at(start);
    let parse = |token: &str, lifetime: u64, token_type: &str| {
        let b = format!(
            r#"{{"access_token":"{token}","token_type":"{token_type}","expires_in":{lifetime}}}"#
        );
        let config = session_support::config(client_credentials_core::MissingLifetime::default());
        // Another process's configuration may accept other types; ours decides.
        let config = client_credentials_core::Config::builder()
            .token_url(config.token_url().to_string())
            .client_id("svc")
            .client_secret("s3cr3t")
            .accept_token_type("mac")
            .build()
            .unwrap();
        Arc::new(
            config
                .default_request()
                .parse_response(now, StatusCode::OK, &HeaderMap::new(), b.as_bytes())
                .unwrap(),
        )
    };
    assert!(query.accepts(now, &parse("shared", 3600, "Bearer")));
    assert!(
        !query.accepts(now, &parse("old", 3600, "Bearer")),
        "the rejected token"
    );
    assert!(
        !query.accepts(now, &parse("mac", 3600, "mac")),
        "a type we do not accept"
    );
    assert!(
        !query.accepts(now + secs(3600), &parse("late", 3600, "Bearer")),
        "expired"
    );
    // The session checks again when the store hands a token over.
    assert!(!cache.handle_shared_token(start, id, parse("mac", 3600, "mac")));
    assert!(cache.handle_shared_token(start, id, parse("shared", 3600, "Bearer")));
    assert!(matches!(&drain(&mut cache)[..], [.., Event::Shared { .. }]));
    assert!(
        cache.store_query(start, id).is_none(),
        "no longer in flight"
    );
}

#[test]
fn adopt_restores_a_stored_token_and_clear_forgets_everything() {
    let (mut cache, start) = cache(Policy::default());
    let shape = request();
    let now = cache.clock().at(start);
    let token = shape
        .parse_response(
            now,
            StatusCode::OK,
            &HeaderMap::new(),
            &body("restored", 600),
        )
        .unwrap();
    let stored: Token =
        serde_json::from_str(&serde_json::to_string(&token.storable()).unwrap()).unwrap();
    assert!(cache.adopt(start, &shape, Arc::new(stored)));
    let Action::Ready(t) = cache.poll(start, &shape) else {
        panic!()
    };
    assert_eq!(t.access_token().expose_secret(), "restored");
    // An expired one is refused.
    let expired = shape
        .parse_response(
            now - secs(700),
            StatusCode::OK,
            &HeaderMap::new(),
            &body("expired", 600),
        )
        .unwrap();
    assert!(!cache.adopt(start, &request_with_scope("x"), Arc::new(expired)));
    assert_eq!(cache.clear(), 2);
    assert!(cache.is_empty());
    assert!(matches!(cache.poll(start, &shape), Action::Send { .. }));
}

#[test]
fn the_timer_deadline_never_lies_in_the_past_for_a_shape_without_a_token() {
    // The token endpoint is down at start-up: the shape backs off with no token. Its backoff
    // deadline waits for a caller's poll; a driver sleeping until `poll_timeout` must not
    // wake at once, again and again.
    let (mut cache, start) = cache(Policy::default());
    let shape = request();
    let Action::Send { id, .. } = cache.poll(start, &shape) else {
        panic!()
    };
    let error = TransportError::from_kind(TransportErrorKind::Connect);
    let _ = cache.handle_failure(start, id, Failure::Transport(error));
    let later = start + secs(120);
    assert!(!cache.handle_timeout(later));
    assert!(
        cache.poll_timeout().is_none_or(|at| at > later),
        "{:?}",
        cache.poll_timeout()
    );
}

/// An attached slot serves exactly what `poll` would serve without an input: published on
/// the fetch; at the refresh point (the snapshot timer's) it sends one reader to the lock
/// and keeps serving the others; withdrawn when the token stops being usable, on
/// invalidation, on `clear` and on `detach_all`; its hits are counted, and the attached
/// shape is never evicted for idleness.
#[test]
fn an_attached_slot_publishes_what_poll_serves_and_nothing_longer() {
    use client_credentials_core::TokenSlot;

    let mut policy = Policy::default();
    policy.refresh_jitter = 0.0;
    policy.idle_eviction = secs(60);
    let (mut cache, start) = cache(policy);
    let shape = request();
    let slot = Arc::new(TokenSlot::new(2));
    cache.attach(start, &shape, Arc::clone(&slot));
    assert!(slot.get().is_none(), "nothing is published before a fetch");
    assert_eq!(cache.snapshot_timeout(), None);

    let first = fetch(&mut cache, start, &shape, "first");
    let served = slot.get().expect("published on the fetch");
    assert_eq!(served.access_token(), first.access_token());
    assert_eq!(
        slot.with(|t| t.access_token().expose_secret().len()).ok(),
        Some(5)
    );
    // Two lock-free hits and the one poll of `fetch`.
    assert_eq!(cache.counters(shape.cache_key()).unwrap().cache_hits, 3);

    // 3600 s, 10 s margin, refresh at 80 % of the usable life: 2872 s.
    let refresh_at = cache
        .snapshot_timeout()
        .expect("a published token has an end");
    assert_eq!(refresh_at, start + Duration::from_millis(2_872_000));
    assert_eq!(Some(refresh_at), cache.next_refresh(shape.cache_key()));
    assert!(!cache.handle_snapshot_timeout(refresh_at - Duration::from_millis(1)));
    assert!(slot.get().is_some(), "the window has not ended yet");
    assert!(cache.handle_snapshot_timeout(refresh_at));
    assert!(
        slot.get().is_none(),
        "the first reader after the refresh point is sent to the lock"
    );
    for _ in 0..3 {
        assert_eq!(
            slot.get().map(|t| t.access_token().clone()),
            Some(first.access_token().clone()),
            "every other reader keeps the token, still usable"
        );
    }
    // Nobody polled yet: withdrawn when it stops being usable (3590 s), not before.
    let usable_until = start + secs(3590);
    assert_eq!(cache.snapshot_timeout(), Some(usable_until));

    // The caller who polls starts the refresh and keeps the valid token; the slot serves it
    // again while the refresh is in flight, until the request's deadline at the latest.
    let Action::Send { id, current, .. } = cache.poll(refresh_at, &shape) else {
        panic!("the refresh is due")
    };
    assert!(current.is_some());
    assert_eq!(
        slot.get().map(|t| t.access_token().clone()),
        Some(first.access_token().clone())
    );
    let deadline = cache.snapshot_timeout().unwrap();
    assert!(deadline > refresh_at);
    let outcome = cache.handle_response(
        refresh_at,
        id,
        StatusCode::OK,
        &HeaderMap::new(),
        &body("second", 3600),
    );
    assert!(outcome.changed());
    let second = slot.get().expect("the new token is published");
    assert_eq!(second.access_token().expose_secret(), "second");

    // A rejected token is withdrawn at once; the idle shape stays while attached.
    assert!(cache.invalidate(refresh_at, second.access_token()));
    assert!(slot.get().is_none());
    let later = refresh_at + secs(600);
    let _ = cache.handle_timeout(later);
    assert_eq!(
        cache.len(),
        1,
        "an attached shape is not evicted for idleness"
    );
    let third = fetch(&mut cache, later, &shape, "third");
    assert_eq!(slot.get().unwrap().access_token(), third.access_token());

    // `clear` withdraws; a new entry of the shape publishes into the same slot again.
    assert_eq!(cache.clear(), 1);
    assert!(slot.get().is_none());
    let fourth = fetch(&mut cache, later, &shape, "fourth");
    assert_eq!(slot.get().unwrap().access_token(), fourth.access_token());

    // A driver whose timer stopped detaches: nothing is published from then on.
    cache.detach_all();
    assert!(slot.get().is_none());
    let _ = cache.force_refresh(later, shape.cache_key());
    assert!(slot.get().is_none());
}

/// A refresh point that no reader acts on (a driver whose callers all stopped) leaves the
/// token published only while it is usable.
#[test]
fn a_due_token_nobody_refreshes_is_withdrawn_when_it_stops_being_usable() {
    use client_credentials_core::TokenSlot;

    let mut policy = Policy::default();
    policy.refresh_jitter = 0.0;
    let (mut cache, start) = cache(policy);
    let shape = request();
    let slot = Arc::new(TokenSlot::new(2));
    cache.attach(start, &shape, Arc::clone(&slot));
    let _ = fetch(&mut cache, start, &shape, "first");
    let refresh_at = cache.snapshot_timeout().unwrap();
    assert!(cache.handle_snapshot_timeout(refresh_at));
    let usable_until = cache.snapshot_timeout().unwrap();
    assert_eq!(usable_until, start + secs(3590));
    assert!(!cache.handle_snapshot_timeout(usable_until - Duration::from_millis(1)));
    assert!(cache.handle_snapshot_timeout(usable_until));
    for _ in 0..3 {
        assert!(slot.get().is_none(), "no longer usable: withdrawn");
    }
    assert_eq!(cache.snapshot_timeout(), None);
}

/// Every state in which `poll` serves a token without changing anything is what
/// `Session::serving` reports, with the instant the next poll would differ.
#[test]
fn serving_matches_poll_in_every_state() {
    let mut policy = Policy::default();
    policy.refresh_jitter = 0.0;
    let (mut cache, start) = cache(policy);
    let shape = request();
    let Action::Send { id, .. } = cache.poll(start, &shape) else {
        panic!()
    };
    let session = cache.session(shape.cache_key()).unwrap();
    assert!(
        session.serving(start).is_none(),
        "nothing held while fetching"
    );
    let _ = cache.handle_response(
        start,
        id,
        StatusCode::OK,
        &HeaderMap::new(),
        &body("a", 100),
    );
    let session = cache.session(shape.cache_key()).unwrap();
    let (token, until) = session.serving(start).unwrap();
    assert_eq!(token.access_token().expose_secret(), "a");
    let until = until.unwrap();
    assert!(session.serving(until).is_none());
    assert!(session.serving(until - Duration::from_millis(1)).is_some());
    // At `until`, a poll does something other than a plain hit: it starts the refresh.
    assert!(matches!(
        cache.poll(until, &shape),
        Action::Send {
            current: Some(_),
            ..
        }
    ));
    // Backing off with the valid token: served until the end of the backoff.
    let id = cache
        .session(shape.cache_key())
        .unwrap()
        .in_flight()
        .unwrap();
    let _ = cache.handle_failure(
        until,
        id,
        Failure::Transport(TransportError::new(TransportErrorKind::Connect, "refused")),
    );
    let session = cache.session(shape.cache_key()).unwrap();
    let (_, backoff_end) = session.serving(until).unwrap();
    let backoff_end = backoff_end.unwrap();
    assert!(backoff_end > until);
    assert!(matches!(
        cache.poll(backoff_end, &shape),
        Action::Send { .. }
    ));
}

/// The resource server the verdicts are about.
fn api() -> http::Uri {
    http::Uri::from_static("https://api.example.com/orders")
}

/// What authorized a request with `token` (a bearer token: no proof).
fn auth(token: &Token) -> ResourceAuth {
    ResourceAuth::new(request().config(), token)
}

/// A bearer token `value`, never issued by the cache.
fn bearer(value: &str) -> Token {
    let body = format!(r#"{{"access_token":"{value}","token_type":"Bearer","expires_in":60}}"#);
    let (_, wall) = origin();
    request()
        .parse_response(wall, StatusCode::OK, &HeaderMap::new(), body.as_bytes())
        .unwrap()
}

/// `polls_without_token` counts the callers who wait on the token endpoint: every caller of
/// a cold start, none across a refresh ahead of expiry.
#[test]
fn polls_without_a_token_count_the_callers_who_wait_on_the_endpoint() {
    let mut policy = Policy::default();
    policy.refresh_jitter = 0.0;
    policy.idle_eviction = secs(100_000);
    let (mut cache, start) = cache(policy);
    let shape = request();
    let waiting = |cache: &Cache| {
        cache
            .counters(shape.cache_key())
            .expect("not evicted")
            .polls_without_token
    };

    let Action::Send {
        id, current: None, ..
    } = cache.poll(start, &shape)
    else {
        panic!("a cold start sends")
    };
    for _ in 0..2 {
        assert!(matches!(cache.poll(start, &shape), Action::Wait(_)));
    }
    assert_eq!(waiting(&cache), 3, "the sender and two waiters");
    let _ = cache.handle_response(
        start,
        id,
        StatusCode::OK,
        &HeaderMap::new(),
        &body("first", 3600),
    );
    assert!(matches!(cache.poll(start, &shape), Action::Ready(_)));

    // 3600 s, 10 s margin, refresh at 80 % of the usable life: 2872 s.
    let refresh_at = start + Duration::from_millis(2_872_000);
    let Action::Send {
        id,
        current: Some(_),
        ..
    } = cache.poll(refresh_at, &shape)
    else {
        panic!("the refresh is due")
    };
    assert!(matches!(cache.poll(refresh_at, &shape), Action::Ready(_)));
    let _ = cache.handle_response(
        refresh_at,
        id,
        StatusCode::OK,
        &HeaderMap::new(),
        &body("second", 3600),
    );
    assert_eq!(waiting(&cache), 3, "nobody waited across the refresh");
}
