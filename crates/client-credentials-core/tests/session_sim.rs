//! The session driven in virtual time through bursts, expiry, outages, 429 storms and
//! rejections, with the number of token requests counted against the minimum possible.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod session_support;

use std::sync::Arc;
use std::time::Duration;

use client_credentials_core::session::{Action, Cache, Failure, Policy, Session, WallClock};
use client_credentials_core::{AccessToken, MissingLifetime, TokenError};
use session_support::{Outcome, Reply, Sim, deliver, mins, origin, render, request, secs};

/// The smallest number of fetches that can cover `span` with tokens of `lifetime`, and the
/// most that the default policy may use (a refresh at 72 % of the usable life at worst).
fn bounds(span: Duration, lifetime: Duration) -> (usize, usize) {
    let margin = Policy::default().expiry_margin;
    let usable = lifetime.saturating_sub(margin).max(lifetime.min(margin));
    let min = span.as_secs_f64() / lifetime.as_secs_f64();
    let max = span.as_secs_f64() / (usable.as_secs_f64() * 0.72);
    (min.ceil() as usize, max.ceil() as usize + 1)
}

#[test]
fn a_thousand_concurrent_callers_cause_one_request() {
    let mut sim = Sim::new(Policy::default(), 1, |_| Reply::token(3600));
    let outcomes = sim.callers(1000);
    assert_eq!(sim.sends.len(), 1, "single flight");
    assert_eq!(
        outcomes.iter().filter(|o| **o == Outcome::Parked).count(),
        1000
    );
    sim.run_to(secs(1));
    assert_eq!(sim.served, 1000, "one outcome, shared by every waiter");
    assert_eq!(sim.sends.len(), 1);
    let c = sim.session.counters();
    assert_eq!((c.fetches_started, c.fetches_succeeded), (1, 1));
    assert_eq!(c.cache_hits, 1000);
}

#[test]
fn a_day_of_one_hour_tokens_costs_close_to_the_minimum() {
    for background in [false, true] {
        let mut sim = Sim::new(Policy::default(), 2, |_| Reply::token(3600));
        sim.background = background;
        sim.traffic(secs(1), 3, mins(24 * 60));
        let (min, max) = bounds(mins(24 * 60), secs(3600));
        let sent = sim.sends.len();
        assert!(
            (min..=max).contains(&sent),
            "{sent} requests, expected {min}..={max}"
        );
        assert_eq!(sim.failed, 0);
        assert_eq!(
            sim.parked_total, 3,
            "only the first callers ever wait: every refresh happens ahead of expiry"
        );
        assert!(
            sim.gaps().iter().all(|g| *g >= mins(43)),
            "{:?}",
            sim.gaps()
        );
    }
}

#[test]
fn thirty_second_and_day_long_tokens_both_behave() {
    let mut sim = Sim::new(Policy::default(), 3, |_| Reply::token(30));
    sim.traffic(Duration::from_millis(250), 1, mins(60));
    let (min, max) = bounds(mins(60), secs(30));
    assert!(
        (min..=max).contains(&sim.sends.len()),
        "{}",
        sim.sends.len()
    );
    assert_eq!(sim.parked_total, 1);
    assert!(
        sim.gaps()
            .iter()
            .all(|g| *g >= Duration::from_millis(14_400))
    );

    let mut sim = Sim::new(Policy::default(), 4, |_| Reply::token(86_400));
    sim.background = true;
    sim.traffic(mins(1), 1, mins(3 * 24 * 60));
    let (min, max) = bounds(mins(3 * 24 * 60), secs(86_400));
    assert!(
        (min..=max).contains(&sim.sends.len()),
        "{}",
        sim.sends.len()
    );
    assert_eq!(sim.parked_total, 1);
}

#[test]
fn a_token_shorter_than_the_margin_is_used_and_reported() {
    // 5 s tokens against a 10 s margin: served for their whole life, never once expired.
    let mut sim = Sim::new(Policy::default(), 5, |_| Reply::token(5));
    sim.latency = Duration::from_millis(20);
    sim.traffic(Duration::from_millis(100), 1, mins(10));
    assert_eq!(sim.failed, 0);
    assert_eq!(sim.parked_total, 1, "refreshed ahead of expiry even so");
    let c = sim.session.counters();
    assert_eq!(c.short_lifetimes, c.fetches_succeeded);
    let (min, max) = bounds(mins(10), secs(5));
    assert!(
        (min..=max).contains(&sim.sends.len()),
        "{}",
        sim.sends.len()
    );
}

#[test]
fn an_outage_during_the_refresh_window_is_invisible_to_callers() {
    // 1 h tokens; the endpoint fails from 40 to 55 min, while the refresh is due.
    let mut sim = Sim::new(Policy::default(), 6, |ask| {
        if ask.at >= mins(40) && ask.at < mins(55) {
            Reply::status(503)
        } else {
            Reply::token(3600)
        }
    });
    sim.traffic(secs(1), 5, mins(70));
    assert_eq!(sim.failed, 0, "the valid token served throughout");
    assert_eq!(sim.parked_total, 5);
    let during = sim
        .sends
        .iter()
        .filter(|t| **t >= mins(40) && **t < mins(55))
        .count();
    // Backoff ceilings 1, 2, 4 … 60 s with full jitter: about 20 tries in 15 min.
    assert!(
        (5..=45).contains(&during),
        "{during} requests during the outage"
    );
    assert!(sim.gaps().iter().all(|g| *g >= Duration::from_millis(1)));
    let c = sim.session.counters();
    assert_eq!(c.consecutive_failures, 0, "recovered");
    assert!(
        sim.session.last_error().is_some(),
        "the last error is kept after recovery"
    );
}

#[test]
fn a_total_outage_fails_fast_and_shares_each_outcome() {
    // No token at all: the endpoint is down for 10 min.
    let mut sim = Sim::new(Policy::default(), 7, |ask| {
        if ask.at < mins(10) {
            Reply::status(502)
        } else {
            Reply::token(3600)
        }
    });
    sim.traffic(Duration::from_millis(100), 10, mins(10));
    assert_eq!(sim.served, 0);
    assert!(sim.failed > 50_000, "callers fail fast while backing off");
    let sent = sim.sends.len();
    assert!(
        (10..=45).contains(&sent),
        "{sent} requests in a 10 min outage"
    );
    // Every failure is one of the few fetch outcomes: each is shared by many callers.
    let mut distinct: Vec<Duration> = sim.errors.iter().map(|(t, _)| *t).collect();
    distinct.dedup();
    assert!(
        sim.errors
            .iter()
            .all(|(_, e)| e.status().map(|s| s.as_u16()) == Some(502))
    );
    // Recovery within one maximal backoff.
    sim.traffic(Duration::from_millis(100), 10, mins(12));
    let first_served = sim.served;
    assert!(first_served > 0);
    assert_eq!(sim.session.counters().consecutive_failures, 0);
}

#[test]
fn a_429_storm_is_never_answered_early() {
    // 50 callers a second; the endpoint says "Retry-After: 120" for half an hour.
    let mut sim = Sim::new(Policy::default(), 8, |ask| {
        if ask.at < mins(30) {
            Reply::retry_after(429, 120)
        } else {
            Reply::token(3600)
        }
    });
    sim.traffic(Duration::from_millis(20), 1, mins(35));
    let storm: Vec<Duration> = sim
        .sends
        .iter()
        .copied()
        .filter(|t| *t < mins(30))
        .collect();
    assert!(
        storm.windows(2).all(|w| w[1] - w[0] >= secs(120)),
        "{storm:?}"
    );
    assert!(
        storm.len() <= 16,
        "{} requests during the storm",
        storm.len()
    );
    assert!(sim.served > 0, "recovered after the storm");
    assert!(sim.sends.len() <= storm.len() + 1);
}

#[test]
fn a_huge_retry_after_is_capped_without_overflow() {
    // `Retry-After: 18446744073709551615` once used to mean "never again in this process".
    let mut sim = Sim::new(Policy::default(), 9, |_| Reply::Error {
        status: 503,
        retry_after: Some(u64::MAX.to_string()),
        body: "",
    });
    sim.background = true;
    sim.callers(3);
    sim.traffic(secs(10), 1, mins(60));
    // The harness checks that no request goes out before the capped deadline.
    assert_eq!(sim.sends.len(), 6, "one every ten minutes: {:?}", sim.sends);
    for gap in sim.gaps() {
        assert!(gap >= mins(10) && gap <= mins(10) + secs(1), "{gap:?}");
    }
}

#[test]
fn a_year_long_retry_after_stops_the_client_for_ten_minutes_not_a_year() {
    // A load balancer answers 503 with `Retry-After: 31536000` once; the endpoint is fine.
    let mut sim = Sim::new(Policy::default(), 17, |ask| {
        if ask.n == 0 {
            Reply::retry_after(503, 365 * 86_400)
        } else {
            Reply::token(3600)
        }
    });
    sim.callers(1);
    sim.traffic(secs(1), 1, mins(10) - secs(1));
    assert_eq!(sim.sends.len(), 1);
    assert_eq!(sim.served, 0, "every caller meanwhile gets the error");
    sim.traffic(secs(1), 1, mins(11));
    assert_eq!(sim.sends.len(), 2);
    assert!(
        sim.sends[1] >= mins(10) && sim.sends[1] <= mins(10) + secs(1),
        "{:?}",
        sim.sends
    );
    assert!(
        sim.served >= 55,
        "served again from 10 min on: {}",
        sim.served
    );
}

/// One request per millisecond to a resource server that rejects every token (a wrong
/// audience): poll for a token, send it, get a 401, invalidate, poll again.
fn rejected_every_time(seed: u64, every: Duration, until: Duration) -> (Vec<Duration>, u64) {
    let (start, wall) = origin();
    let mut s = Session::new(
        request(),
        Policy::default(),
        WallClock::new(start, wall),
        seed,
    );
    let mut sends = Vec::new();
    let mut failed = 0;
    let mut t = start;
    while t - start < until {
        let token = match s.poll(t) {
            Action::Send { id, .. } => {
                sends.push(t - start);
                deliver(
                    &mut s,
                    t,
                    id,
                    &Reply::token(3600),
                    &format!("t{}", sends.len()),
                );
                let Action::Ready(token) = s.poll(t) else {
                    panic!("the token just fetched")
                };
                token
            }
            Action::Ready(token) => token,
            Action::Failed(e) => {
                assert!(matches!(e, TokenError::RejectedByResource { .. }), "{e:?}");
                failed += 1;
                t += every;
                continue;
            }
            Action::Wait(_) => panic!("nothing else is in flight"),
        };
        assert!(s.invalidate(t, token.access_token()), "the 401 drops it");
        if let Some(next) = s.poll_timeout() {
            assert!(next > t, "busy loop");
        }
        t += every;
    }
    let c = s.counters();
    assert_eq!(c.fetches_started, sends.len() as u64);
    assert_eq!(c.invalidations, sends.len() as u64);
    assert_eq!(
        c.invalidations_throttled,
        sends.len().saturating_sub(3) as u64
    );
    (sends, failed)
}

#[test]
fn a_resource_server_that_rejects_every_token_costs_a_handful_of_token_requests() {
    let mut most = 0;
    for seed in 0..100 {
        // 1000 invalidate-then-poll cycles in one second.
        let (sends, failed) = rejected_every_time(seed, Duration::from_millis(1), secs(1));
        most = most.max(sends.len());
        assert!(
            sends.len() <= 8,
            "seed {seed}: {} requests: {sends:?}",
            sends.len()
        );
        assert_eq!(sends.len() as u64 + failed, 1000);
        // The first four rejections are each answered with a new token at once; from the
        // fourth on, the requests are spaced by the backoff (ceilings 1 s, 2 s, 4 s…).
        let ms = |n: u64| Duration::from_millis(n);
        assert_eq!(sends[..4], [ms(0), ms(1), ms(2), ms(3)], "seed {seed}");
        for (k, gap) in sends[3..].windows(2).map(|w| w[1] - w[0]).enumerate() {
            let ceiling = secs(1 << k) + ms(1);
            assert!(
                gap >= ms(1) && gap <= ceiling,
                "seed {seed}: gap {k} {gap:?}"
            );
        }
    }
    assert!(
        most >= 5,
        "the backoff ends within the second for some seeds"
    );
    // An hour of it: about one token request per half minute (the mean of a 60 s backoff).
    for seed in 0..5 {
        let (sends, _) = rejected_every_time(seed, Duration::from_millis(100), mins(60));
        assert!(sends.len() <= 150, "seed {seed}: {}", sends.len());
        let late: Vec<_> = sends.windows(2).map(|w| w[1] - w[0]).skip(10).collect();
        assert!(late.iter().all(|g| *g <= secs(61)), "{late:?}");
    }
}

#[test]
fn a_token_used_for_a_while_then_rejected_is_replaced_at_once() {
    let mut sim = Sim::new(Policy::default(), 18, |_| Reply::token(3600));
    sim.background = true;
    // A healthy service: a token, a call every second for ten minutes.
    sim.callers(1);
    sim.traffic(secs(1), 1, mins(10));
    let token = sim.session.current_token(sim.now).unwrap().clone();
    // A key rotation: the token is rejected, the next caller fetches at once.
    assert!(sim.session.invalidate(sim.now, token.access_token()));
    assert_eq!(sim.callers(1), vec![Outcome::Parked]);
    assert_eq!(sim.sends.len(), 2);
    assert_eq!(sim.sends[1], mins(10));
    // The resource server had not yet learnt the new key either: still at once.
    sim.run_to(mins(10) + secs(1));
    let fresh = sim.session.current_token(sim.now).unwrap().clone();
    assert!(sim.session.invalidate(sim.now, fresh.access_token()));
    assert_eq!(sim.callers(1), vec![Outcome::Parked]);
    assert_eq!(sim.sends.len(), 3);
    sim.traffic(secs(1), 1, mins(20));
    assert_eq!(sim.failed, 0);
    assert_eq!(sim.session.counters().invalidations_throttled, 0);
}

#[test]
fn reset_backoff_ends_a_backoff_or_cool_down_now() {
    let (start, wall) = origin();
    let mut s = Session::new(
        request(),
        Policy::default(),
        WallClock::new(start, wall),
        16,
    );
    let send = |s: &mut Session, t| match s.poll(t) {
        Action::Send { id, current, .. } => (id, current),
        other => panic!("expected Send, got {other:?}"),
    };
    // A Retry-After of five minutes, ended after one second.
    let (id, _) = send(&mut s, start);
    deliver(&mut s, start, id, &Reply::retry_after(503, 300), "");
    let t = start + secs(1);
    assert!(matches!(s.poll(t), Action::Failed(_)));
    assert!(s.reset_backoff(t));
    assert!(!s.reset_backoff(t), "nothing left to end");
    assert_eq!(s.counters().consecutive_failures, 0);
    assert_eq!(s.next_refresh(), None);
    // A cool-down after invalid_client, ended at once.
    let (id, _) = send(&mut s, t);
    deliver(&mut s, t, id, &Reply::invalid_client(), "");
    assert_eq!(s.poll_timeout(), Some(t + secs(30)));
    assert!(s.reset_backoff(t));
    let (id, _) = send(&mut s, t);
    deliver(&mut s, t, id, &Reply::token(3600), "fresh");
    // Nothing to end: the token keeps being served, nothing is sent.
    assert!(!s.reset_backoff(t));
    assert!(matches!(s.poll(t), Action::Ready(_)));
    // A failed refresh with a valid token held: the refresh goes out again at once.
    s.force_refresh(t);
    let (id, current) = send(&mut s, t);
    assert!(current.is_some());
    deliver(&mut s, t, id, &Reply::retry_after(429, 600), "");
    assert!(matches!(s.poll(t), Action::Ready(_)), "still served");
    assert!(s.reset_backoff(t));
    let (_, current) = send(&mut s, t);
    assert_eq!(current.unwrap().access_token().expose_secret(), "fresh");
    // Resource servers rejecting every token: the reset starts the count over.
    let (start, wall) = origin();
    let mut s = Session::new(
        request(),
        Policy::default(),
        WallClock::new(start, wall),
        19,
    );
    for n in 0..4 {
        let (id, _) = send(&mut s, start);
        deliver(&mut s, start, id, &Reply::token(3600), &format!("r{n}"));
        assert!(s.invalidate(start, &AccessToken::new(format!("r{n}"))));
    }
    assert!(matches!(s.poll(start), Action::Failed(_)));
    assert!(s.reset_backoff(start));
    for n in 4..7 {
        let (id, _) = send(&mut s, start);
        deliver(&mut s, start, id, &Reply::token(3600), &format!("r{n}"));
        assert!(s.invalidate(start, &AccessToken::new(format!("r{n}"))));
    }
    send(&mut s, start);
}

#[test]
fn a_rejection_reaches_every_waiter_and_is_not_retried_before_the_cool_down() {
    let mut sim = Sim::new(Policy::default(), 10, |_| Reply::invalid_client());
    sim.callers(200);
    sim.run_to(secs(1));
    assert_eq!(sim.failed, 200, "one outcome for every waiter");
    let first = &sim.errors[0].1;
    assert!(!first.is_retryable());
    assert!(
        sim.errors
            .iter()
            .all(|(_, e)| e.to_string() == first.to_string())
    );
    sim.traffic(secs(1), 1, mins(5));
    assert!(
        sim.gaps().iter().all(|g| *g >= secs(30)),
        "{:?}",
        sim.gaps()
    );
    assert!(sim.sends.len() <= 11);
}

#[test]
fn a_lost_request_is_replaced_at_its_deadline_and_its_late_answer_ignored() {
    let mut sim = Sim::new(Policy::default(), 11, |ask| {
        if ask.n == 0 {
            Reply::Hang
        } else {
            Reply::token(3600)
        }
    });
    sim.callers(20);
    sim.run_to(secs(29));
    assert_eq!(sim.sends.len(), 1);
    assert_eq!(sim.served, 0, "still waiting for the first request");
    sim.run_to(secs(31));
    assert_eq!(sim.sends.len(), 2, "one new request at the deadline");
    assert_eq!(sim.served, 20);
    assert_eq!(sim.session.counters().fetches_timed_out, 1);
}

#[test]
fn late_and_foreign_reports_change_nothing() {
    let (start, wall) = origin();
    let mut s = Session::new(
        request(),
        Policy::default(),
        WallClock::new(start, wall),
        12,
    );
    let Action::Send { id: first, .. } = s.poll(start) else {
        panic!()
    };
    let t = start + secs(31);
    let Action::Send { id: second, .. } = s.poll(t) else {
        panic!("the deadline passed")
    };
    assert_ne!(first, second);
    deliver(&mut s, t, first, &Reply::token(3600), "late");
    deliver(&mut s, t, first, &Reply::status(500), "late");
    let _ = s.handle_failure(t, first, Failure::Abandoned);
    assert_eq!(s.counters().ignored_reports, 3);
    assert_eq!(s.in_flight(), Some(second));
    assert!(matches!(s.poll(t), Action::Wait(_)));
    deliver(&mut s, t, second, &Reply::token(3600), "fresh");
    let Action::Ready(token) = s.poll(t) else {
        panic!()
    };
    assert_eq!(token.access_token().expose_secret(), "fresh");
    deliver(&mut s, t, second, &Reply::token(3600), "replayed");
    assert_eq!(
        s.current_token(t).unwrap().access_token().expose_secret(),
        "fresh"
    );
}

#[test]
fn an_abandoned_request_is_not_a_failure() {
    let (start, wall) = origin();
    let mut s = Session::new(
        request(),
        Policy::default(),
        WallClock::new(start, wall),
        13,
    );
    let Action::Send { id, .. } = s.poll(start) else {
        panic!()
    };
    assert!(matches!(s.poll(start), Action::Wait(_)));
    let _ = s.handle_failure(start, id, Failure::Abandoned);
    let c = s.counters();
    assert_eq!((c.fetches_abandoned, c.fetches_failed), (1, 0));
    assert!(
        matches!(s.poll(start), Action::Send { .. }),
        "the next caller sends at once"
    );
}

#[test]
fn invalidate_drops_only_the_rejected_token() {
    let mut sim = Sim::new(Policy::default(), 14, |_| Reply::token(3600));
    sim.callers(1);
    sim.run_to(secs(1));
    let old = sim.session.current_token(sim.now).unwrap().clone();
    assert!(
        !sim.session
            .invalidate(sim.now, &AccessToken::new("someone-else"))
    );
    assert!(sim.session.invalidate(sim.now, old.access_token()));
    assert!(sim.session.current_token(sim.now).is_none());
    sim.callers(1);
    sim.run_to(secs(2));
    assert_eq!(sim.sends.len(), 2);
    // A burst of late 401s for the old token leaves the new one alone.
    for _ in 0..100 {
        assert!(!sim.session.invalidate(sim.now, old.access_token()));
    }
    assert!(sim.session.current_token(sim.now).is_some());
    assert_eq!(sim.session.counters().invalidations, 1);
}

#[test]
fn force_refresh_keeps_serving_and_respects_a_backoff() {
    let mut sim = Sim::new(Policy::default(), 15, |ask| match ask.n {
        1 => Reply::retry_after(429, 60),
        _ => Reply::token(3600),
    });
    sim.callers(1);
    sim.run_to(secs(1));
    sim.session.force_refresh(sim.now);
    assert_eq!(sim.callers(5), vec![Outcome::Served; 5]);
    assert_eq!(
        sim.sends.len(),
        2,
        "one refresh, the token served meanwhile"
    );
    sim.run_to(secs(2));
    sim.session.force_refresh(sim.now);
    sim.traffic(secs(1), 1, secs(60));
    assert_eq!(sim.sends.len(), 2, "Retry-After outranks force_refresh");
    sim.traffic(secs(1), 1, secs(64));
    assert_eq!(sim.sends.len(), 3);
    assert_eq!(sim.failed, 0);
}

#[test]
fn adopt_takes_only_newer_tokens() {
    let (start, wall) = origin();
    let clock = WallClock::new(start, wall);
    let req = request();
    let mut s = Session::new(req.clone(), Policy::default(), clock, 16);
    let token = |name: &str, issued_ago: u64, lifetime: u64| {
        let (status, headers, body) = render(&Reply::token(lifetime), name).unwrap();
        let t = start + secs(100);
        let issued = clock.at(t) - secs(issued_ago);
        Arc::new(req.parse_response(issued, status, &headers, &body).unwrap())
    };
    let t = start + secs(100);
    assert!(!s.adopt(t, token("expired", 4000, 3600)));
    assert!(s.adopt(t, token("shared", 600, 3600)));
    let Action::Ready(got) = s.poll(t) else {
        panic!("an adopted token is served without a fetch")
    };
    assert_eq!(got.access_token().expose_secret(), "shared");
    assert!(!s.adopt(t, token("older", 900, 3600)));
    assert!(s.adopt(t, token("newer", 10, 3600)));
    assert_eq!(s.counters().fetches_started, 0);
    assert_eq!(s.counters().tokens_adopted, 2);
    // A token adopted while a fetch is in flight is served meanwhile.
    s.force_refresh(t);
    let Action::Send { id, current, .. } = s.poll(t) else {
        panic!()
    };
    assert!(current.is_some());
    assert!(s.adopt(t, token("meanwhile", 0, 7200)));
    let Action::Ready(got) = s.poll(t) else {
        panic!()
    };
    assert_eq!(got.access_token().expose_secret(), "meanwhile");
    deliver(&mut s, t, id, &Reply::token(3600), "fetched");
    assert_eq!(
        s.current_token(t).unwrap().access_token().expose_secret(),
        "fetched",
        "the fetch that was asked for lands"
    );
}

#[test]
fn a_token_expired_on_arrival_is_a_failure_not_a_request_loop() {
    let mut sim = Sim::new(Policy::default(), 17, |_| Reply::token(0));
    sim.background = true;
    sim.traffic(secs(1), 1, mins(5));
    assert_eq!(sim.served, 0);
    assert!(
        sim.gaps().iter().all(|g| *g >= secs(30)),
        "{:?}",
        sim.gaps()
    );
    let e = sim.session.last_error().cloned().unwrap();
    assert!(matches!(e, TokenError::InvalidResponse { .. }), "{e:?}");
}

#[test]
fn tokens_without_a_lifetime_follow_the_configured_policy() {
    let never = session_support::config(MissingLifetime::NeverExpires).default_request();
    let reply = || Reply::Token {
        lifetime: None,
        refresh_in: None,
    };
    let mut sim = Sim::with_request(never, Policy::default(), 18, move |_| reply());
    sim.background = true;
    sim.traffic(mins(1), 1, mins(60 * 24 * 7));
    assert_eq!(sim.sends.len(), 1, "never expires: one fetch a week");
    assert_eq!(sim.session.poll_timeout(), None);

    // The default assumes five minutes.
    let mut sim = Sim::new(Policy::default(), 19, move |_| Reply::Token {
        lifetime: None,
        refresh_in: None,
    });
    sim.traffic(secs(1), 1, mins(60));
    let sent = sim.sends.len();
    assert!((12..=18).contains(&sent), "{sent}");
}

#[test]
fn refresh_in_is_honoured() {
    let mut sim = Sim::new(Policy::default(), 20, |_| Reply::Token {
        lifetime: Some(7200),
        refresh_in: Some(1800),
    });
    sim.traffic(secs(1), 1, mins(240));
    assert!(
        sim.gaps().iter().all(|g| *g >= mins(27) && *g <= mins(31)),
        "{:?}",
        sim.gaps()
    );
}

#[test]
fn different_keys_never_get_each_others_token() {
    let (start, wall) = origin();
    let mut cache = Cache::new(Policy::default(), WallClock::new(start, wall), 21);
    let shapes = ["a.read", "b.read", "c.write"];
    let requests: Vec<_> = shapes
        .iter()
        .map(|s| session_support::request_with_scope(s))
        .collect();
    let mut ids = Vec::new();
    for r in &requests {
        let Action::Send { id, request, .. } = cache.poll(start, r) else {
            panic!("each key has its own flight")
        };
        assert!(String::from_utf8_lossy(request.body()).contains(r.params().scopes()[0].as_str()));
        ids.push(id);
    }
    assert_eq!(cache.len(), 3);
    // Reports are routed by id: each reaches the shape that sent it, whatever the order.
    for (i, id) in ids.iter().enumerate().rev() {
        let (status, headers, body) =
            render(&Reply::token(3600), &format!("for-{}", shapes[i])).unwrap();
        assert!(
            cache
                .handle_response(start, *id, status, &headers, &body)
                .changed()
        );
    }
    for (i, r) in requests.iter().enumerate() {
        let Action::Ready(t) = cache.poll(start, r) else {
            panic!()
        };
        assert_eq!(
            t.access_token().expose_secret(),
            format!("for-{}", shapes[i])
        );
    }
    // A report for an id that already landed changes nothing.
    let (status, headers, body) = render(&Reply::token(3600), "late").unwrap();
    assert!(
        !cache
            .handle_response(start, ids[0], status, &headers, &body)
            .changed()
    );
    let mut unique = ids.clone();
    unique.sort_by_key(|i| i.as_u64());
    unique.dedup();
    assert_eq!(unique.len(), ids.len(), "ids are unique across keys");
    assert!(cache.poll_timeout().unwrap() > start);
}

#[test]
fn debug_output_never_shows_a_token_or_the_secret() {
    let mut sim = Sim::new(Policy::default(), 22, |_| Reply::token(3600));
    sim.callers(1);
    sim.run_to(secs(1));
    sim.callers(1);
    let text = format!("{:?} {:?}", sim.session, sim.session.counters());
    assert!(!text.contains("tok-0"), "{text}");
    assert!(!text.contains("s3cr3t"), "{text}");
    let action = format!("{:?}", sim.session.poll(sim.now));
    assert!(!action.contains("tok-0"));
}
