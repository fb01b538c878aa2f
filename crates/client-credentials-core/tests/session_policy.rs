//! One test per policy default: the documented value, and the behaviour it gives.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod session_support;

use std::time::{Duration, Instant};

use client_credentials_core::session::{Action, Policy, RequestId, Session, WallClock};
use client_credentials_core::{AccessToken, TokenError};
use session_support::{Reply, deliver, mins, origin, request, secs};

fn session(policy: Policy, seed: u64) -> (Session, Instant) {
    let (start, wall) = origin();
    (
        Session::new(request(), policy, WallClock::new(start, wall), seed),
        start,
    )
}

fn send(s: &mut Session, now: Instant) -> RequestId {
    match s.poll(now) {
        Action::Send { id, .. } => id,
        other => panic!("expected Send, got {other:?}"),
    }
}

/// A session holding a fresh token of `lifetime` seconds fetched at `start`; returns the
/// instant the refresh starts (found by polling in steps of `step`).
fn refresh_point(policy: &Policy, seed: u64, reply: Reply, step: Duration) -> Duration {
    let (mut s, start) = session(policy.clone(), seed);
    let id = send(&mut s, start);
    deliver(&mut s, start, id, &reply, "t");
    let predicted = s.poll_timeout().unwrap();
    let mut t = start;
    loop {
        t += step;
        match s.poll(t) {
            Action::Ready(_) => {}
            Action::Send { current, .. } => {
                assert!(current.is_some(), "a refresh ahead of expiry");
                assert!(
                    predicted <= t && t - predicted < step,
                    "poll_timeout named it"
                );
                return t - start;
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn defaults_are_the_documented_values() {
    let p = Policy::default();
    assert_eq!(p.refresh_ratio, 0.8);
    assert_eq!(p.refresh_jitter, 0.1);
    assert_eq!(p.expiry_margin, secs(10));
    assert_eq!(p.request_timeout, secs(30));
    assert_eq!(p.initial_backoff, secs(1));
    assert_eq!(p.max_backoff, secs(60));
    assert_eq!(p.rejection_cooldown, secs(30));
    assert_eq!(p.max_retry_after, mins(10));
    assert_eq!(p.early_rejection_window, secs(30));
}

#[test]
fn refresh_ratio_and_jitter_refresh_between_72_and_80_percent_of_the_usable_life() {
    let usable = 3590.0; // a 1 h token less the 10 s margin
    let points: Vec<f64> = (0..200)
        .map(|seed| {
            refresh_point(&Policy::default(), seed, Reply::token(3600), secs(1)).as_secs_f64()
                / usable
        })
        .collect();
    for p in &points {
        assert!((0.719..=0.801).contains(p), "{p}");
    }
    let (lo, hi) = points
        .iter()
        .fold((1.0f64, 0.0f64), |(lo, hi), p| (lo.min(*p), hi.max(*p)));
    assert!(hi - lo > 0.06, "jitter spreads the fleet: {lo}..{hi}");

    let mut policy = Policy::default();
    policy.refresh_jitter = 0.0;
    policy.refresh_ratio = 0.5;
    let t = refresh_point(&policy, 1, Reply::token(3600), Duration::from_millis(100));
    assert!((t.as_secs_f64() - 1795.0).abs() < 0.2, "{t:?}");
}

#[test]
fn expiry_margin_stops_serving_ten_seconds_before_expiry() {
    // The endpoint fails every refresh; the token is served until 3590 s, not 3600 s.
    let (mut s, start) = session(Policy::default(), 3);
    let id = send(&mut s, start);
    deliver(&mut s, start, id, &Reply::token(3600), "t");
    let mut t = start;
    while t < start + secs(3589) {
        t += secs(1);
        match s.poll(t) {
            Action::Ready(_) => {}
            Action::Send { id, current, .. } => {
                assert!(current.is_some());
                deliver(&mut s, t, id, &Reply::status(503), "");
            }
            other => panic!("{other:?} at {:?}", t - start),
        }
    }
    let edge = start + secs(3590);
    assert!(s.current_token(edge - Duration::from_millis(1)).is_some());
    assert!(
        s.current_token(edge).is_none(),
        "usable until 10 s before expiry"
    );
    assert!(!matches!(s.poll(edge), Action::Ready(_)));
}

#[test]
fn expiry_margin_shrinks_for_short_tokens_and_vanishes_below_the_margin() {
    let usable = |lifetime: u64| {
        let (mut s, start) = session(Policy::default(), 4);
        let id = send(&mut s, start);
        deliver(&mut s, start, id, &Reply::token(lifetime), "t");
        let mut t = start;
        while s.current_token(t).is_some() {
            t += Duration::from_millis(10);
        }
        ((t - start).as_millis(), s.counters().short_lifetimes)
    };
    assert_eq!(
        usable(5),
        (5000, 1),
        "shorter than the margin: served to real expiry"
    );
    assert_eq!(usable(10), (10_000, 1));
    assert_eq!(
        usable(15),
        (10_000, 1),
        "reduced margin, never below 10 s of use"
    );
    assert_eq!(usable(20), (10_000, 0));
    assert_eq!(usable(30), (20_000, 0));
    assert_eq!(usable(3600), (3_590_000, 0));
}

#[test]
fn request_timeout_replaces_a_silent_request_after_thirty_seconds() {
    let (mut s, start) = session(Policy::default(), 5);
    let first = send(&mut s, start);
    let before = start + secs(30) - Duration::from_millis(1);
    assert_eq!(s.poll_timeout(), Some(start + secs(30)));
    assert!(matches!(s.poll(before), Action::Wait(d) if d == start + secs(30)));
    let second = send(&mut s, start + secs(30));
    assert_ne!(first, second);
    assert_eq!(s.counters().fetches_timed_out, 1);
}

#[test]
fn backoff_starts_at_one_second_doubles_and_is_capped_at_sixty() {
    // The backoff after the n-th consecutive failure lies in [1 ms, min(60 s, 2^(n-1) s)].
    let mut longest = vec![Duration::ZERO; 10];
    for seed in 0..50 {
        let (mut s, start) = session(Policy::default(), seed);
        let mut t = start;
        for (n, longest) in longest.iter_mut().enumerate() {
            let id = send(&mut s, t);
            deliver(&mut s, t, id, &Reply::status(503), "");
            let until = s.poll_timeout().unwrap();
            let wait = until - t;
            let ceiling = secs(1 << n).min(secs(60));
            assert!(
                wait >= Duration::from_millis(1) && wait <= ceiling,
                "{n}: {wait:?}"
            );
            assert_eq!(s.next_refresh(), Some(until));
            assert!(matches!(
                s.poll(until - Duration::from_nanos(1)),
                Action::Failed(_)
            ));
            *longest = (*longest).max(wait);
            t = until;
        }
    }
    // Full jitter reaches close to each ceiling over 50 seeds.
    assert!(longest[0] > Duration::from_millis(800), "{longest:?}");
    assert!(longest[9] > secs(50), "{longest:?}");
    assert!(longest[9] <= secs(60));
}

#[test]
fn rejection_cooldown_waits_thirty_seconds_after_invalid_client() {
    let (mut s, start) = session(Policy::default(), 6);
    let id = send(&mut s, start);
    deliver(&mut s, start, id, &Reply::invalid_client(), "");
    assert_eq!(s.poll_timeout(), Some(start + secs(30)));
    let Action::Failed(e) = s.poll(start + secs(29)) else {
        panic!()
    };
    assert!(!e.is_retryable());
    send(&mut s, start + secs(30));
}

#[test]
fn retry_after_is_never_undercut_up_to_the_cap() {
    for retry_after in [5, 120, 599, 600] {
        let (mut s, start) = session(Policy::default(), 7);
        let id = send(&mut s, start);
        deliver(&mut s, start, id, &Reply::retry_after(429, retry_after), "");
        assert_eq!(s.poll_timeout(), Some(start + secs(retry_after)));
        let just_before = start + secs(retry_after) - Duration::from_millis(1);
        assert!(matches!(s.poll(just_before), Action::Failed(_)));
        send(&mut s, start + secs(retry_after));
    }
    // Shorter than the backoff: the backoff wins.
    let (mut s, start) = session(Policy::default(), 8);
    let id = send(&mut s, start);
    deliver(&mut s, start, id, &Reply::invalid_client(), "");
    let t = start + secs(30);
    let id = send(&mut s, t);
    deliver(&mut s, t, id, &Reply::retry_after(503, 0), "");
    assert!(s.poll_timeout().unwrap() > t);
}

#[test]
fn max_retry_after_cuts_a_year_long_retry_after_to_ten_minutes() {
    const YEAR: u64 = 365 * 86_400;
    let (start, wall) = origin();
    let date = httpdate::fmt_http_date(wall + secs(YEAR));
    for reply in [
        Reply::retry_after(503, YEAR),
        Reply::Error {
            status: 429,
            retry_after: Some(date),
            body: "",
        },
        Reply::retry_after(503, u64::MAX),
    ] {
        let mut s = Session::new(
            request(),
            Policy::default(),
            WallClock::new(start, wall),
            12,
        );
        let id = send(&mut s, start);
        deliver(&mut s, start, id, &reply, "");
        let Action::Failed(e) = s.poll(start + secs(599)) else {
            panic!("{reply:?}: still backing off")
        };
        assert!(
            e.retry_after().unwrap() >= secs(YEAR - 1),
            "the error keeps what the server said: {e}"
        );
        assert_eq!(s.poll_timeout(), Some(start + mins(10)), "{reply:?}");
        send(&mut s, start + mins(10));
    }
    // A policy may raise the cap; `Duration::MAX` honours anything.
    let mut policy = Policy::default();
    policy.max_retry_after = Duration::MAX;
    let (mut s, start) = session(policy, 12);
    let id = send(&mut s, start);
    deliver(&mut s, start, id, &Reply::retry_after(503, YEAR), "");
    assert_eq!(s.poll_timeout(), Some(start + secs(YEAR)));
}

/// Fetches a one-hour token named `name` at `t`.
fn fetch(s: &mut Session, t: Instant, name: &str) {
    let id = send(s, t);
    deliver(s, t, id, &Reply::token(3600), name);
    assert!(matches!(s.poll(t), Action::Ready(_)));
}

#[test]
fn early_rejection_window_backs_off_from_the_fourth_fresh_token_rejected_in_a_row() {
    let (mut s, start) = session(Policy::default(), 13);
    let mut t = start;
    // Three tokens, each rejected 29 s after it came: each is replaced at once.
    for n in 1..=3 {
        fetch(&mut s, t, &format!("t{n}"));
        t += secs(29);
        assert!(s.invalidate(t, &AccessToken::new(format!("t{n}"))));
    }
    // The fourth: a backoff of at most `initial_backoff`, callers told why.
    fetch(&mut s, t, "t4");
    assert!(s.invalidate(t, &AccessToken::new("t4")));
    let until = s.poll_timeout().unwrap();
    assert!(until > t && until <= t + secs(1), "{:?}", until - t);
    let Action::Failed(e) = s.poll(t) else {
        panic!("backing off")
    };
    assert!(
        matches!(e, TokenError::RejectedByResource { attempts: 4 }),
        "{e:?}"
    );
    assert!(e.is_retryable());
    assert_eq!(
        e.to_string(),
        "the resource server keeps rejecting fresh tokens (4 in a row)"
    );
    let c = s.counters();
    assert_eq!((c.invalidations, c.invalidations_throttled), (4, 1));
    assert_eq!(c.fetches_failed, 0, "no fetch failed");
    // The fifth: the ceiling doubles.
    t = until;
    fetch(&mut s, t, "t5");
    assert!(s.invalidate(t, &AccessToken::new("t5")));
    let until = s.poll_timeout().unwrap();
    assert!(until > t && until <= t + secs(2), "{:?}", until - t);
    // A token that served for the whole window is news: replaced at once, the count starts
    // over, and the next early rejection is replaced at once too.
    t = until;
    fetch(&mut s, t, "t6");
    t += secs(30);
    assert!(s.invalidate(t, &AccessToken::new("t6")));
    fetch(&mut s, t, "t7");
    assert!(s.invalidate(t, &AccessToken::new("t7")));
    send(&mut s, t);
}

#[test]
fn early_rejection_window_counts_only_rejections_in_a_row() {
    // Three early rejections, then a token that lives until its regular refresh: the
    // refreshed token starts from zero.
    let (mut s, start) = session(Policy::default(), 14);
    for n in 1..=3 {
        fetch(&mut s, start, &format!("t{n}"));
        assert!(s.invalidate(start, &AccessToken::new(format!("t{n}"))));
    }
    fetch(&mut s, start, "t4");
    let refresh = s.poll_timeout().unwrap();
    let Action::Send { id, current, .. } = s.poll(refresh) else {
        panic!("a refresh")
    };
    assert!(current.is_some());
    deliver(&mut s, refresh, id, &Reply::token(3600), "t5");
    assert!(s.invalidate(refresh, &AccessToken::new("t5")));
    send(&mut s, refresh);

    // `Duration::ZERO` turns the throttle off.
    let mut policy = Policy::default();
    policy.early_rejection_window = Duration::ZERO;
    let (mut s, start) = session(policy, 15);
    for n in 0..20 {
        fetch(&mut s, start, &format!("t{n}"));
        assert!(s.invalidate(start, &AccessToken::new(format!("t{n}"))));
    }
    send(&mut s, start);
    assert_eq!(s.counters().invalidations_throttled, 0);
}

#[test]
fn refresh_in_is_honoured_down_to_a_quarter_of_the_usable_life() {
    let mut policy = Policy::default();
    policy.refresh_jitter = 0.0;
    let at = |refresh_in| {
        let reply = Reply::Token {
            lifetime: Some(3600),
            refresh_in: Some(refresh_in),
        };
        refresh_point(&policy, 9, reply, Duration::from_millis(100)).as_secs_f64()
    };
    assert!((at(1800) - 1800.0).abs() < 0.2);
    assert!((at(0) - 897.5).abs() < 0.2, "floored at U / 4");
    assert!(
        (at(100_000) - 2872.0).abs() < 0.2,
        "never later than the ratio point"
    );
}

#[test]
fn degenerate_policies_neither_panic_nor_spin() {
    let mut zero = Policy::default();
    zero.refresh_ratio = 0.0;
    zero.refresh_jitter = f64::NAN;
    zero.expiry_margin = Duration::ZERO;
    zero.request_timeout = Duration::ZERO;
    zero.initial_backoff = Duration::ZERO;
    zero.max_backoff = Duration::ZERO;
    zero.rejection_cooldown = Duration::ZERO;
    zero.max_retry_after = Duration::ZERO;
    zero.early_rejection_window = Duration::ZERO;
    let mut huge = Policy::default();
    huge.refresh_ratio = f64::INFINITY;
    huge.refresh_jitter = -3.0;
    huge.expiry_margin = Duration::MAX;
    huge.request_timeout = Duration::MAX;
    huge.initial_backoff = Duration::MAX;
    huge.max_backoff = Duration::MAX;
    huge.rejection_cooldown = Duration::MAX;
    huge.max_retry_after = Duration::MAX;
    huge.early_rejection_window = Duration::MAX;
    for policy in [zero, huge] {
        for reply in [
            Reply::token(3600),
            Reply::token(u64::MAX),
            Reply::status(503),
            Reply::retry_after(503, u64::MAX),
            Reply::invalid_client(),
            Reply::Transport,
        ] {
            let (mut s, start) = session(policy.clone(), 10);
            let mut t = start;
            for _ in 0..50 {
                match s.poll(t) {
                    Action::Send { id, .. } => deliver(&mut s, t, id, &reply, "t"),
                    Action::Wait(d) => assert!(d > t),
                    // Every other token is rejected by a resource server at once.
                    Action::Ready(token) if s.counters().cache_hits % 2 == 0 => {
                        assert!(s.invalidate(t, token.access_token()));
                    }
                    Action::Ready(_) | Action::Failed(_) => {}
                }
                let _ = s.poll(t);
                match s.poll_timeout() {
                    Some(next) => {
                        assert!(next > t, "{policy:?} {reply:?}");
                        t = next.min(t + secs(3600));
                    }
                    None => t += secs(1),
                }
            }
        }
    }
    // With a zero ratio, a refresh still waits a second.
    let mut p = Policy::default();
    p.refresh_ratio = 0.0;
    let t = refresh_point(&p, 11, Reply::token(3600), Duration::from_millis(100));
    assert_eq!(t, secs(1));
}
