//! Drives a token session with arbitrary operation sequences: polls, time jumps (up to
//! decades), responses with any status, `Retry-After` and lifetime (including `u64::MAX`),
//! transport errors, abandoned and stale reports, invalidations, forced refreshes and
//! adopted tokens. It must never panic, and it checks the session's promises on every step:
//! never two requests in flight, never a token past its expiry, never a send before a
//! `Retry-After` or a rejection cool-down, no busy loop, and counters that add up.
#![no_main]

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use client_credentials_core::session::{Action, Failure, Policy, RequestId, Session, WallClock};
use client_credentials_core::{
    AccessToken, Config, TokenRequest, TransportError, TransportErrorKind,
};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use libfuzzer_sys::fuzz_target;

fn request() -> &'static TokenRequest {
    static REQUEST: OnceLock<TokenRequest> = OnceLock::new();
    REQUEST.get_or_init(|| {
        Config::builder()
            .token_url("https://as.example.com/token")
            .client_id("fuzz")
            .client_secret("fuzz-secret")
            .build()
            .expect("valid config")
            .default_request()
    })
}

/// Reads the input a byte (or eight) at a time; zeros once it runs out.
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn u8(&mut self) -> u8 {
        match self.0.split_first() {
            Some((b, rest)) => {
                self.0 = rest;
                *b
            }
            None => 0,
        }
    }

    fn u64(&mut self) -> u64 {
        (0..8).fold(0, |acc, _| (acc << 8) | u64::from(self.u8()))
    }

    /// A duration on a scale the selector byte picks: ms, s, hours, or anything.
    fn duration(&mut self) -> Duration {
        let scale = self.u8();
        let n = u64::from(self.u8());
        match scale % 5 {
            0 => Duration::from_millis(n * 10),
            1 => Duration::from_secs(n),
            2 => Duration::from_secs(n * 60),
            3 => Duration::from_secs(n * 3600),
            _ => Duration::from_nanos(self.u64()),
        }
    }

    fn lifetime(&mut self) -> u64 {
        match self.u8() % 6 {
            0 => 0,
            1 => u64::from(self.u8() % 40),
            2 => u64::from(self.u8()) * 60,
            3 => 86_400,
            4 => u64::MAX,
            _ => self.u64(),
        }
    }
}

struct Driver {
    session: Session,
    clock: WallClock,
    now: Instant,
    timeout: Duration,
    cooldown: Duration,
    /// `Policy::max_retry_after`: a server's `Retry-After` is honoured up to this.
    max_retry_after: Duration,
    ids: Vec<RequestId>,
    /// The request in flight: id, when it was sent, its deadline (`None`: never).
    in_flight: Option<(RequestId, Instant, Option<Instant>)>,
    /// Tokens issued, by name: their expiry as the client reckons it (`None`: never).
    issued: HashMap<String, Option<Instant>>,
    not_before: Option<Instant>,
    never_again: bool,
    names: u64,
}

impl Driver {
    fn check_token(&self, token: &client_credentials_core::Token) {
        let name = token.access_token().expose_secret();
        let expiry = self.issued.get(name).expect("a token that was issued");
        if let Some(expiry) = expiry {
            assert!(self.now < *expiry, "token {name} served after its expiry");
        }
    }

    fn poll(&mut self) {
        let now = self.now;
        match self.session.poll(now) {
            Action::Ready(t) => self.check_token(&t),
            Action::Send { id, current, .. } => {
                if let Some(t) = current {
                    self.check_token(&t);
                }
                if let Some((_, _, deadline)) = self.in_flight {
                    assert!(deadline.is_some_and(|d| now >= d), "two requests in flight");
                }
                assert!(!self.never_again, "sent after an unbounded Retry-After");
                if let Some(nb) = self.not_before {
                    assert!(now >= nb, "sent before the backoff deadline");
                }
                assert!(!self.ids.contains(&id), "a reused id");
                self.ids.push(id);
                self.in_flight = Some((id, now, now.checked_add(self.timeout)));
            }
            Action::Wait(until) => assert!(until > now, "Wait deadline not in the future"),
            Action::Failed(_) => {}
        }
        if let Some(t) = self.session.poll_timeout() {
            assert!(t > now, "busy loop: poll_timeout not after now");
        }
    }

    /// The id to report to: the one in flight, or an older (stale) one.
    fn pick(&self, input: &mut Input<'_>) -> Option<(RequestId, bool)> {
        let k = usize::from(input.u8() % 4);
        if k == 0 {
            return self.in_flight.map(|(id, _, _)| (id, true));
        }
        let id = *self.ids.iter().rev().nth(k)?;
        Some((id, self.in_flight.is_some_and(|(i, _, _)| i == id)))
    }

    fn respond(&mut self, input: &mut Input<'_>) {
        let Some((id, current)) = self.pick(input) else {
            return;
        };
        let now = self.now;
        let before = self.session.counters();
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        self.names += 1;
        let name = format!("t{}", self.names);
        let kind = input.u8() % 6;
        let (status, body, retry_after) = match kind {
            0 | 1 => {
                let lifetime = self.lifetime_body(input);
                (
                    StatusCode::OK,
                    format!(r#"{{"access_token":"{name}","token_type":"Bearer"{lifetime}}}"#),
                    None,
                )
            }
            2 => (
                StatusCode::TOO_MANY_REQUESTS,
                String::new(),
                Some(input.lifetime()),
            ),
            3 => (StatusCode::SERVICE_UNAVAILABLE, String::new(), None),
            4 => (
                StatusCode::UNAUTHORIZED,
                r#"{"error":"invalid_client"}"#.to_owned(),
                None,
            ),
            _ => {
                let error = TransportError::from_kind(TransportErrorKind::Timeout);
                let _ = self
                    .session
                    .handle_failure(now, id, Failure::Transport(error));
                self.after_report(current, &before, None);
                return;
            }
        };
        if let Some(ra) = retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(ra));
        }
        let _ = self
            .session
            .handle_response(now, id, status, &headers, body.as_bytes());
        self.after_report(current, &before, Some((name, status, retry_after)));
    }

    fn lifetime_body(&mut self, input: &mut Input<'_>) -> String {
        let mut out = String::new();
        if input.u8() % 8 != 0 {
            out.push_str(&format!(r#","expires_in":{}"#, input.lifetime()));
        }
        if input.u8() % 4 == 0 {
            out.push_str(&format!(r#","refresh_in":{}"#, input.lifetime()));
        }
        out
    }

    fn after_report(
        &mut self,
        current: bool,
        before: &client_credentials_core::Counters,
        response: Option<(String, StatusCode, Option<u64>)>,
    ) {
        let after = self.session.counters();
        if !current {
            assert_eq!(after.ignored_reports, before.ignored_reports + 1);
            assert_eq!(after.fetches_succeeded, before.fetches_succeeded);
            assert_eq!(after.fetches_failed, before.fetches_failed);
            return;
        }
        let (_, sent, _) = self.in_flight.take().expect("current");
        if after.fetches_succeeded > before.fetches_succeeded {
            let (name, _, _) = response.expect("a success is a response");
            let lifetime = self
                .session
                .current_token(self.now)
                .expect("a token just fetched is usable")
                .lifetime();
            self.issued
                .insert(name, lifetime.and_then(|l| sent.checked_add(l)));
            self.not_before = None;
            self.never_again = false;
            return;
        }
        assert_eq!(after.fetches_failed, before.fetches_failed + 1);
        let error = self
            .session
            .last_error()
            .cloned()
            .expect("a failure is recorded");
        let mut wait = error
            .retry_after()
            .unwrap_or_default()
            .min(self.max_retry_after);
        if !error.is_retryable() {
            wait = wait.max(self.cooldown);
        }
        match self.now.checked_add(wait) {
            Some(t) => self.not_before = Some(t),
            None => self.never_again = true,
        }
    }

    fn adopt(&mut self, input: &mut Input<'_>) {
        let age = input.duration();
        let lifetime = input.lifetime();
        self.names += 1;
        let name = format!("a{}", self.names);
        let body =
            format!(r#"{{"access_token":"{name}","token_type":"Bearer","expires_in":{lifetime}}}"#);
        let Some(issued) = self.clock.at(self.now).checked_sub(age) else {
            return;
        };
        let Ok(token) =
            request().parse_response(issued, StatusCode::OK, &HeaderMap::new(), body.as_bytes())
        else {
            return;
        };
        let Some(acquired) = self.now.checked_sub(age) else {
            return;
        };
        let expiry = token.lifetime().and_then(|l| acquired.checked_add(l));
        if self.session.adopt(self.now, Arc::new(token)) {
            self.issued.insert(name, expiry);
        }
    }

    fn check_counters(&self) {
        let c = self.session.counters();
        let in_flight = u64::from(self.session.in_flight().is_some());
        assert_eq!(
            c.fetches_started,
            c.fetches_succeeded
                + c.fetches_failed
                + c.fetches_abandoned
                + c.fetches_timed_out
                + in_flight
        );
        if let Some(t) = self.session.current_token(self.now) {
            self.check_token(t);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    // One real anchor; everything after it is virtual.
    let (start, wall) = (Instant::now(), SystemTime::now());
    let mut policy = Policy::default();
    if input.u8() % 4 == 0 {
        policy.refresh_ratio = f64::from(input.u8()) / 100.0;
        policy.refresh_jitter = f64::from(input.u8()) / 100.0;
        policy.expiry_margin = input.duration();
        policy.request_timeout = input.duration();
        policy.initial_backoff = input.duration();
        policy.max_backoff = input.duration();
        policy.rejection_cooldown = input.duration();
        policy.max_retry_after = input.duration();
    }
    let clock = WallClock::new(start, wall);
    let mut d = Driver {
        timeout: policy.request_timeout.max(Duration::from_millis(1)),
        cooldown: policy.rejection_cooldown,
        max_retry_after: policy.max_retry_after,
        session: Session::new(request().clone(), policy, clock, input.u64()),
        clock,
        now: start,
        ids: Vec::new(),
        in_flight: None,
        issued: HashMap::new(),
        not_before: None,
        never_again: false,
        names: 0,
    };
    for _ in 0..256 {
        if input.0.is_empty() {
            break;
        }
        match input.u8() % 10 {
            0 | 1 => d.poll(),
            2 => d.now = d.now.checked_add(input.duration()).unwrap_or(d.now),
            3 => {
                if let Some(t) = d.session.poll_timeout() {
                    d.now = d.now.max(t);
                }
            }
            4 | 5 => d.respond(&mut input),
            6 => {
                if let Some((id, current)) = d.pick(&mut input) {
                    let _ = d.session.handle_failure(d.now, id, Failure::Abandoned);
                    if current {
                        d.in_flight = None;
                    }
                }
            }
            7 => {
                let held = d
                    .session
                    .current_token(d.now)
                    .map(|t| t.access_token().clone());
                let target = match (held, input.u8() % 2) {
                    (Some(t), 0) => t,
                    _ => AccessToken::new("not-held"),
                };
                let _ = d.session.invalidate(d.now, &target);
            }
            8 => {
                let _ = d.session.force_refresh(d.now);
            }
            _ => d.adopt(&mut input),
        }
        // A poll past the deadline may end the request without a new one (a fresh adopted
        // token needs none); otherwise the session and the driver agree on what is in flight.
        if d.session.in_flight().is_none() {
            d.in_flight = None;
        }
        assert_eq!(d.session.in_flight(), d.in_flight.map(|(id, _, _)| id));
        d.check_counters();
    }
});
