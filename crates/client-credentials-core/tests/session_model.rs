//! Property tests: random operation sequences against a small reference model.
//!
//! The model knows what the session promises, not how it is built: which token it holds,
//! whether a request is in flight, and the window in which a refresh or the end of a backoff
//! may fall (the exact points are jittered, so the model reads them once, checks them
//! against the window, and holds the session to them from then on).
//!
//! Invariants checked after every step: never two requests in flight; never `Ready` with an
//! expired token, nor with any token but the one the model expects; never a `Send` before a
//! backoff or `Retry-After` deadline (a `Retry-After` counts up to `Policy::max_retry_after`,
//! and no further); a backoff after the fourth token in a row rejected early, and only then;
//! outcomes for stale ids change nothing; after a poll, `poll_timeout` is `None` or after
//! `now`; the counters add up. Separately, a healthy endpoint always refreshes before expiry,
//! and different keys never share a token.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod session_support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use client_credentials_core::session::{
    Action, Cache, Counters, Failure, Policy, RequestId, Session, WallClock,
};
use client_credentials_core::{AccessToken, MAX_LIFETIME, TokenError};
use proptest::prelude::*;
use session_support::{Reply, deliver, origin, render, request, request_with_scope};

const TOLERANCE: Duration = Duration::from_millis(2);

#[derive(Clone, Debug)]
enum Op {
    Advance(Duration),
    ToTimeout,
    Poll,
    /// Respond to the request in flight (`None`) or to the k-th oldest id (stale).
    Respond(Option<usize>, Reply),
    Abandon(Option<usize>),
    Invalidate(bool),
    ForceRefresh,
    ResetBackoff,
    Adopt {
        lifetime: u64,
        age: u64,
    },
}

fn lifetime() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(0u64),
        1u64..40,
        40u64..7200,
        Just(86_400u64),
        Just(u64::MAX),
    ]
}

fn reply() -> impl Strategy<Value = Reply> {
    prop_oneof![
        4 => (lifetime(), proptest::option::of(0u64..10_000)).prop_map(|(l, r)| Reply::Token {
            lifetime: Some(l),
            refresh_in: r
        }),
        2 => (prop_oneof![Just(429u16), Just(500), Just(503)], proptest::option::of(prop_oneof![0u64..600, Just(u64::MAX)]))
            .prop_map(|(status, ra)| Reply::Error { status, retry_after: ra.map(|r| r.to_string()), body: "" }),
        1 => Just(Reply::invalid_client()),
        1 => Just(Reply::Transport),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => prop_oneof![
            (0u64..2_000).prop_map(Duration::from_millis),
            (0u64..600).prop_map(Duration::from_secs),
            (0u64..200_000).prop_map(Duration::from_secs),
        ].prop_map(Op::Advance),
        3 => Just(Op::ToTimeout),
        6 => Just(Op::Poll),
        5 => (proptest::option::weighted(0.2, 0usize..4), reply()).prop_map(|(k, r)| Op::Respond(k, r)),
        1 => proptest::option::weighted(0.3, 0usize..4).prop_map(Op::Abandon),
        1 => any::<bool>().prop_map(Op::Invalidate),
        1 => Just(Op::ForceRefresh),
        1 => Just(Op::ResetBackoff),
        1 => (lifetime(), 0u64..10_000).prop_map(|(lifetime, age)| Op::Adopt { lifetime, age }),
    ]
}

/// A token as the model knows it.
#[derive(Clone, Debug)]
struct Known {
    name: String,
    acquired: Instant,
    lifetime: Option<Duration>,
    usable_until: Option<Instant>,
    /// The refresh point lies in `[lo, hi]`; `lo == hi` once read from the session.
    refresh: Option<(Instant, Instant)>,
    /// When the session took it; a rejection within the early-rejection window is early.
    taken: Instant,
    /// Tokens rejected early in a row just before this one was taken.
    streak: u32,
}

struct Model {
    policy: Policy,
    now: Instant,
    ids: Vec<RequestId>,
    in_flight: Option<(RequestId, Instant, Option<Instant>)>,
    latest: Option<Known>,
    /// The end of the current backoff, as read from the session (`Some(None)`: never).
    backoff: Option<(Option<Instant>, String)>,
    failures: u32,
    /// Early rejections in a row, for the next token taken.
    streak: u32,
    names: u64,
}

fn add(t: Instant, d: Duration) -> Option<Instant> {
    t.checked_add(d)
}

impl Model {
    fn usable(&self, k: &Known) -> bool {
        k.usable_until.is_none_or(|u| self.now < u)
    }

    fn latest_usable(&self) -> Option<&Known> {
        self.latest.as_ref().filter(|k| self.usable(k))
    }

    /// What the model knows of a token acquired at `acquired`.
    fn known(
        &self,
        name: String,
        acquired: Instant,
        lifetime: Option<u64>,
        refresh_in: Option<u64>,
    ) -> Known {
        let lifetime = lifetime.map(|l| Duration::from_secs(l).min(MAX_LIFETIME));
        let Some(l) = lifetime else {
            return Known {
                name,
                acquired,
                lifetime,
                usable_until: None,
                refresh: None,
                taken: self.now,
                streak: 0,
            };
        };
        let m = self.policy.expiry_margin;
        let u = l.saturating_sub(m).max(l.min(m));
        let mut base = u.mul_f64(self.policy.refresh_ratio);
        if let Some(r) = refresh_in {
            base = base.min(Duration::from_secs(r).max(u / 4));
        }
        let floor = Duration::from_secs(1).min(u / 2);
        let hi = base.max(floor);
        let lo = base
            .saturating_sub(base.mul_f64(self.policy.refresh_jitter))
            .max(floor);
        let refresh = match (add(acquired, lo), add(acquired, hi)) {
            (Some(lo), Some(hi)) => Some((lo, hi)),
            _ => None,
        };
        Known {
            name,
            acquired,
            lifetime,
            usable_until: add(acquired, u),
            refresh,
            taken: self.now,
            streak: 0,
        }
    }

    /// Reads the exact refresh point from the session and checks it against the window.
    fn pin_refresh(&mut self, s: &Session) {
        let now = self.now;
        let Some(k) = self.latest.as_mut() else {
            return;
        };
        let exact = s.next_refresh();
        match (k.refresh, exact) {
            (Some((lo, hi)), Some(at)) => {
                let in_window = at + TOLERANCE >= lo && at <= hi + TOLERANCE;
                assert!(
                    in_window || (at == now && hi <= now + TOLERANCE),
                    "refresh at {at:?} outside [{lo:?}, {hi:?}]"
                );
                k.refresh = Some((at, at));
            }
            (None, None) => {}
            (window, exact) => panic!("refresh window {window:?} but session says {exact:?}"),
        }
    }

    fn refresh_due(&self, k: &Known) -> Option<bool> {
        match k.refresh {
            None => Some(false),
            Some((_, hi)) if self.now >= hi + TOLERANCE => Some(true),
            Some((lo, _)) if self.now + TOLERANCE < lo => Some(false),
            Some((lo, hi)) if lo == hi => Some(self.now >= lo),
            Some(_) => None,
        }
    }

    fn name(&mut self) -> String {
        self.names += 1;
        format!("m{}", self.names)
    }

    fn check_poll(&mut self, s: &mut Session) {
        let now = self.now;
        let action = s.poll(now);
        let latest = self.latest_usable().cloned();
        if let Some(t) = s.poll_timeout() {
            assert!(t > now, "busy loop: poll_timeout {t:?} <= now {now:?}");
        }
        let active = self.in_flight.filter(|(_, _, d)| d.is_none_or(|d| now < d));
        let name =
            |t: &Arc<client_credentials_core::Token>| t.access_token().expose_secret().to_owned();
        if let Some((_, _, deadline)) = active {
            match (&action, &latest) {
                (Action::Ready(t), Some(k)) => assert_eq!(name(t), k.name),
                (Action::Wait(d), None) => {
                    assert!(*d > now);
                    if let Some(deadline) = deadline {
                        assert_eq!(*d, deadline);
                    }
                }
                (a, k) => panic!("in flight, holding {k:?}: got {a:?}"),
            }
            return;
        }
        // A request past its deadline is over: this poll replaces it or serves `current`.
        self.in_flight = None;
        // Nothing active in flight: a backoff, or idle.
        let backing_off = self
            .backoff
            .as_ref()
            .is_some_and(|(until, _)| until.is_none_or(|u| now < u));
        if backing_off {
            let (_, error) = self.backoff.clone().unwrap();
            match (&action, &latest) {
                (Action::Ready(t), Some(k)) => assert_eq!(name(t), k.name),
                (Action::Failed(e), None) => assert_eq!(e.to_string(), error),
                (a, k) => panic!("backing off, holding {k:?}: got {a:?}"),
            }
            return;
        }
        match (&action, &latest) {
            (Action::Ready(t), Some(k)) => {
                assert_eq!(name(t), k.name);
                assert_ne!(self.refresh_due(k), Some(true), "refresh overdue");
                self.backoff = None;
            }
            (Action::Send { id, current, .. }, k) => {
                match (current, k) {
                    (Some(t), Some(k)) => {
                        assert_eq!(name(t), k.name);
                        assert_ne!(self.refresh_due(k), Some(false), "refresh too early");
                    }
                    (None, None) => {}
                    (c, k) => panic!("Send with current {c:?}, model holds {k:?}"),
                }
                assert!(!self.ids.contains(id), "ids are fresh");
                self.ids.push(*id);
                let timeout = self.policy.request_timeout.max(Duration::from_millis(1));
                self.in_flight = Some((*id, now, add(now, timeout)));
                self.backoff = None;
            }
            (a, k) => panic!("idle, holding {k:?}: got {a:?}"),
        }
    }

    fn respond(&mut self, s: &mut Session, which: Option<usize>, reply: &Reply) {
        let now = self.now;
        let id = match which {
            None => match self.in_flight {
                Some((id, _, _)) => id,
                None => return,
            },
            Some(k) => match self.ids.iter().rev().nth(k + 1) {
                Some(id) => *id,
                None => return,
            },
        };
        let current = self.in_flight.is_some_and(|(i, _, _)| i == id);
        let before = s.counters();
        let timeout_before = s.poll_timeout();
        let name = self.name();
        deliver(s, now, id, reply, &name);
        let after = s.counters();
        if !current {
            assert_eq!(after.ignored_reports, before.ignored_reports + 1);
            assert_eq!(after.fetches_succeeded, before.fetches_succeeded);
            assert_eq!(after.fetches_failed, before.fetches_failed);
            assert_eq!(
                s.poll_timeout(),
                timeout_before,
                "a stale report changed nothing"
            );
            return;
        }
        let (_, sent, _) = self.in_flight.take().unwrap();
        if let Some(k) = &self.latest
            && !self.usable(k)
        {
            self.latest = None;
        }
        if let Reply::Token {
            lifetime,
            refresh_in,
        } = reply
        {
            let mut k = self.known(name.clone(), sent, *lifetime, *refresh_in);
            if self.usable(&k) {
                k.streak = std::mem::take(&mut self.streak);
                assert_eq!(after.fetches_succeeded, before.fetches_succeeded + 1);
                self.latest = Some(k);
                self.failures = 0;
                self.backoff = None;
                self.pin_refresh(s);
                return;
            }
        }
        // A failure: the backoff ends within the window the policy allows.
        assert_eq!(after.fetches_failed, before.fetches_failed + 1);
        self.failures += 1;
        let error = s.last_error().cloned().unwrap();
        let retry = error
            .retry_after()
            .unwrap_or_default()
            .min(self.policy.max_retry_after);
        let ceiling = self
            .policy
            .initial_backoff
            .saturating_mul(1 << (self.failures - 1).min(40))
            .min(self.policy.max_backoff)
            .max(Duration::from_millis(1));
        let floor_wait = if error.is_retryable() {
            Duration::from_millis(1)
        } else {
            self.policy.rejection_cooldown
        };
        let lo = add(now, floor_wait.max(retry));
        let hi = add(now, ceiling.max(floor_wait).max(retry));
        let until = s.next_refresh();
        match (lo, until) {
            (Some(lo), Some(u)) => {
                assert!(u >= lo, "backoff ends {u:?} before {lo:?}");
                if let Some(hi) = hi {
                    assert!(u <= hi, "backoff ends {u:?} after {hi:?}");
                }
            }
            (None, None) => {}
            (lo, u) => panic!("backoff floor {lo:?}, session {u:?}"),
        }
        assert_eq!(
            s.poll_timeout().is_some(),
            until.is_some() || self.latest_usable().is_some()
        );
        self.backoff = Some((until, error.to_string()));
    }

    /// The session just dropped the model's token, rejected by a resource server: the fourth
    /// token in a row rejected early starts a backoff, if nothing else decides when the next
    /// request goes (a request in flight, a backoff).
    fn invalidated(&mut self, s: &Session, throttled_before: u64) {
        let k = self.latest.take().unwrap();
        let early =
            self.now.saturating_duration_since(k.taken) < self.policy.early_rejection_window;
        self.streak = if early { k.streak + 1 } else { 0 };
        let c = s.counters();
        let idle = self.in_flight.is_none() && self.backoff.is_none();
        if !(idle && self.streak > 3) {
            assert_eq!(
                c.invalidations_throttled, throttled_before,
                "no backoff after {} early rejections",
                self.streak
            );
            return;
        }
        assert_eq!(c.invalidations_throttled, throttled_before + 1);
        let error = s.last_error().cloned().unwrap();
        assert!(
            matches!(error, TokenError::RejectedByResource { attempts } if attempts == self.streak),
            "{error:?}"
        );
        let ceiling = self
            .policy
            .initial_backoff
            .saturating_mul(1 << (self.streak - 4).min(40))
            .min(self.policy.max_backoff)
            .max(Duration::from_millis(1));
        let until = s.next_refresh().unwrap();
        assert!(until > self.now && until <= self.now + ceiling, "{until:?}");
        self.backoff = Some((Some(until), error.to_string()));
    }

    fn check_counters(&self, s: &Session) {
        let c = s.counters();
        let in_flight = u64::from(s.in_flight().is_some());
        assert_eq!(
            c.fetches_started,
            c.fetches_succeeded
                + c.fetches_failed
                + c.fetches_abandoned
                + c.fetches_timed_out
                + in_flight,
            "{c:?}"
        );
        assert_eq!(s.in_flight(), self.in_flight.map(|(id, _, _)| id));
        let held = s
            .current_token(self.now)
            .map(|t| t.access_token().expose_secret().to_owned());
        assert_eq!(held, self.latest_usable().map(|k| k.name.clone()));
    }
}

/// Runs `ops` against a fresh session, checking every step; returns its final counters.
fn run(ops: Vec<Op>, seed: u64) -> Counters {
    let (start, wall) = origin();
    let clock = WallClock::new(start, wall);
    let req = request();
    let mut s = Session::new(req.clone(), Policy::default(), clock, seed);
    let mut m = Model {
        policy: Policy::default(),
        now: start,
        ids: Vec::new(),
        in_flight: None,
        latest: None,
        backoff: None,
        failures: 0,
        streak: 0,
        names: 0,
    };
    for op in ops {
        match op {
            Op::Advance(d) => m.now = add(m.now, d).unwrap_or(m.now),
            Op::ToTimeout => {
                if let Some(t) = s.poll_timeout() {
                    m.now = m.now.max(t);
                }
            }
            Op::Poll => m.check_poll(&mut s),
            Op::Respond(which, reply) => m.respond(&mut s, which, &reply),
            Op::Abandon(which) => {
                let current = which.is_none() && m.in_flight.is_some();
                let id = match which {
                    None => m.in_flight.map(|(id, _, _)| id),
                    Some(k) => m.ids.iter().rev().nth(k + 1).copied(),
                };
                if let Some(id) = id {
                    let _ = s.handle_failure(m.now, id, Failure::Abandoned);
                    if current {
                        m.in_flight = None;
                    }
                }
            }
            Op::Invalidate(latest) => {
                let target = match (&m.latest, latest) {
                    (Some(k), true) => k.name.clone(),
                    _ => "not-held".to_owned(),
                };
                let expected = latest && m.latest_usable().is_some();
                let throttled = s.counters().invalidations_throttled;
                assert_eq!(s.invalidate(m.now, &AccessToken::new(target)), expected);
                if expected {
                    m.invalidated(&s, throttled);
                } else {
                    assert_eq!(s.counters().invalidations_throttled, throttled);
                }
            }
            Op::ResetBackoff => {
                let backing_off = m.backoff.is_some();
                assert_eq!(s.reset_backoff(m.now), backing_off);
                m.backoff = None;
                m.failures = 0;
                m.streak = 0;
                if let Some(k) = m.latest.as_mut() {
                    k.streak = 0;
                }
                assert_eq!(s.counters().consecutive_failures, 0);
            }
            Op::ForceRefresh => {
                s.force_refresh(m.now);
                let now = m.now;
                if let Some(k) = m.latest.as_mut() {
                    k.refresh = Some(match k.refresh {
                        Some((lo, hi)) => (lo.min(now), hi.min(now)),
                        None => (now, now),
                    });
                }
            }
            Op::Adopt { lifetime, age } => {
                let name = m.name();
                let (status, headers, body) = render(&Reply::token(lifetime), &name).unwrap();
                let issued = clock.at(m.now) - Duration::from_secs(age);
                let token = req.parse_response(issued, status, &headers, &body).unwrap();
                let Some(acquired) = m.now.checked_sub(Duration::from_secs(age)) else {
                    continue;
                };
                let mut k = m.known(name, acquired, Some(lifetime), None);
                let newer = match m.latest_usable() {
                    None => true,
                    Some(held) => {
                        let exp = |k: &Known| k.lifetime.and_then(|l| add(k.acquired, l));
                        match (exp(&k), exp(held)) {
                            (None, Some(_)) => true,
                            (Some(a), Some(b)) => a > b,
                            _ => false,
                        }
                    }
                };
                let expected = m.usable(&k) && newer;
                assert_eq!(s.adopt(m.now, Arc::new(token)), expected, "adopt {k:?}");
                if expected {
                    k.streak = std::mem::take(&mut m.streak);
                    m.latest = Some(k);
                    // Only in the `Valid` state does `next_refresh` show the refresh point.
                    let idle = m.in_flight.is_none() && m.backoff.is_none();
                    if idle {
                        m.backoff = None;
                        m.pin_refresh(&s);
                    }
                }
            }
        }
        if let Some(k) = &m.latest
            && !m.usable(k)
        {
            m.latest = None;
        }
        m.check_counters(&s);
    }
    s.counters()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn operation_sequences_keep_every_promise(ops in proptest::collection::vec(op(), 1..120), seed in any::<u64>()) {
        run(ops, seed);
    }

    /// A healthy endpoint (always answers with a token, quickly relative to its lifetime),
    /// driven by a background refresher at `poll_timeout` and callers at random times:
    /// after the first fetch, no caller ever waits or fails, and every refresh starts while
    /// the old token is still valid.
    #[test]
    fn a_healthy_endpoint_always_refreshes_before_expiry(
        lifetime in 1u64..200_000,
        refresh_in in proptest::option::of(0u64..200_000),
        latency_permille in 0u64..100,
        callers in proptest::collection::vec(0u64..1_000, 1..200),
        seed in any::<u64>(),
    ) {
        let margin = Policy::default().expiry_margin;
        let l = Duration::from_secs(lifetime);
        let usable = l.saturating_sub(margin).max(l.min(margin));
        // Quick relative to the lifetime, and within the request timeout.
        let latency = (usable * u32::try_from(latency_permille).unwrap() / 1000)
            .min(Duration::from_secs(20));
        let mut sim = session_support::Sim::new(Policy::default(), seed, move |_| Reply::Token {
            lifetime: Some(lifetime),
            refresh_in,
        });
        sim.latency = latency;
        sim.background = true;
        sim.callers(1);
        // Callers spread over about twenty lifetimes, from the first token on.
        let step = (l * 20) / 1_000;
        let mut t = latency + Duration::from_millis(1);
        for c in callers {
            t += step * u32::try_from(c % 50).unwrap();
            sim.run_to(t);
            sim.callers(1);
        }
        sim.run_to(t + l * 3);
        prop_assert_eq!(sim.parked_total, 1, "a caller waited after the first fetch");
        prop_assert_eq!(sim.failed, 0);
        let c = sim.session.counters();
        prop_assert!(c.fetches_succeeded >= 1);
        // Every refresh left the old token serving: no gap between tokens.
        prop_assert!(sim.gaps().iter().all(|g| *g < usable), "{:?}", sim.gaps());
    }

    /// Several keys driven at once: each key's caller only ever receives that key's tokens,
    /// ids never collide, and reports under another key's id are ignored.
    #[test]
    fn keys_never_share_tokens(ops in proptest::collection::vec((0usize..3, 0usize..3, any::<bool>(), 0u64..5_000), 1..150), seed in any::<u64>()) {
        let (start, wall) = origin();
        let mut sessions = Cache::new(Policy::default(), WallClock::new(start, wall), seed);
        let scopes = ["a", "b", "c"];
        let requests: Vec<_> = scopes.iter().map(|s| request_with_scope(s)).collect();
        let mut sent: Vec<(usize, RequestId)> = Vec::new();
        let mut now = start;
        let mut n = 0;
        for (key, report_key, ok, advance) in ops {
            now += Duration::from_millis(advance * 100);
            match sessions.poll(now, &requests[key]) {
                Action::Ready(t) => {
                    let name = t.access_token().expose_secret().to_owned();
                    prop_assert!(name.starts_with(scopes[key]), "{} got {}", scopes[key], name);
                }
                Action::Send { id, .. } => {
                    prop_assert!(sent.iter().all(|(_, i)| *i != id));
                    sent.push((key, id));
                }
                Action::Wait(d) => prop_assert!(d > now),
                Action::Failed(_) => {}
            }
            // Report the latest id of `key` to `report_key`'s session.
            if let Some((_, id)) = sent.iter().rev().find(|(k, _)| *k == key).copied() {
                n += 1;
                let reply = if ok { Reply::token(600) } else { Reply::status(503) };
                // Ids are unique across keys, so the cache routes the report by id alone: it
                // reaches `key`'s session, never `report_key`'s.
                let target_key = requests[report_key].cache_key();
                let owner_key = requests[key].cache_key();
                let owned = sessions.session(target_key).and_then(Session::in_flight) == Some(id);
                let owner_before = sessions.counters(owner_key).unwrap();
                let target_before = sessions.counters(target_key);
                let outcome = match render(&reply, &format!("{}-{n}", scopes[key])) {
                    Some((status, headers, body)) => sessions.handle_response(now, id, status, &headers, &body),
                    None => sessions.handle_failure(now, id, Failure::Abandoned),
                };
                let owner_after = sessions.counters(owner_key).unwrap();
                if report_key != key {
                    prop_assert!(!owned);
                    prop_assert_eq!(sessions.counters(target_key).map(|c| c.fetches_succeeded + c.fetches_failed), target_before.map(|c| c.fetches_succeeded + c.fetches_failed));
                }
                if outcome.changed() {
                    prop_assert_eq!(owner_after.fetches_succeeded + owner_after.fetches_failed + owner_after.fetches_abandoned, owner_before.fetches_succeeded + owner_before.fetches_failed + owner_before.fetches_abandoned + 1);
                }
            }
        }
    }
}

#[test]
fn a_fixed_sequence_through_every_kind_of_operation() {
    // A 429 with Retry-After, polls before and after it, a stale report, a refresh, a
    // failed refresh, a forced refresh and an invalidation, all checked by the model.
    run(
        vec![
            Op::Poll,
            Op::Respond(None, Reply::retry_after(429, 120)),
            Op::Poll,
            Op::Advance(Duration::from_secs(119)),
            Op::Poll,
            Op::Advance(Duration::from_secs(2)),
            Op::Poll,
            Op::Respond(Some(0), Reply::token(3600)),
            Op::Respond(None, Reply::token(3600)),
            Op::Poll,
            Op::ToTimeout,
            Op::Poll,
            Op::Respond(None, Reply::status(503)),
            Op::Poll,
            Op::ForceRefresh,
            Op::Invalidate(true),
            Op::Poll,
        ],
        42,
    );
}

#[test]
fn a_fixed_sequence_of_fresh_tokens_rejected_in_a_row() {
    // Four tokens rejected at once (a backoff), one more after the backoff (a longer one),
    // a reset, then a token that serves past the window (the count starts over).
    let fetch_and_reject = [
        Op::Poll,
        Op::Respond(None, Reply::token(3600)),
        Op::Poll,
        Op::Invalidate(true),
    ];
    let mut ops = Vec::new();
    for _ in 0..4 {
        ops.extend(fetch_and_reject.iter().cloned());
    }
    ops.extend([Op::Poll, Op::ToTimeout]);
    ops.extend(fetch_and_reject.iter().cloned());
    ops.extend([Op::Poll, Op::ResetBackoff]);
    ops.extend(fetch_and_reject.iter().cloned());
    ops.extend([
        Op::Poll,
        Op::Respond(None, Reply::token(3600)),
        Op::Advance(Duration::from_secs(31)),
        Op::Poll,
        Op::Invalidate(true),
        Op::Poll,
    ]);
    let counters = run(ops, 43);
    assert_eq!(counters.invalidations, 7);
    assert_eq!(counters.invalidations_throttled, 2);
}
