//! A virtual-time harness for `Session`: a scripted token endpoint, callers that poll, park
//! on `Wait` and wake on every state change, an optional background refresher, and checks
//! of the session's promises on every step. A day of traffic runs in milliseconds.
#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test support: each test binary uses a part of it"
)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use client_credentials_core::http::{HeaderMap, HeaderValue, StatusCode, header};
use client_credentials_core::session::{Action, Failure, Policy, RequestId, Session, WallClock};
use client_credentials_core::{
    Config, MissingLifetime, Token, TokenError, TokenParams, TokenRequest, TransportError,
    TransportErrorKind,
};

/// One real instant and wall time: the origin of virtual time.
pub fn origin() -> (Instant, SystemTime) {
    #[allow(
        clippy::disallowed_methods,
        reason = "virtual time needs one real origin"
    )]
    let origin = (Instant::now(), SystemTime::now());
    origin
}

pub fn config(missing: MissingLifetime) -> Config {
    Config::builder()
        .token_url("https://as.example.com/oauth2/token")
        .client_id("svc")
        .client_secret("s3cr3t")
        .scopes(["orders.read"])
        .missing_lifetime(missing)
        .build()
        .unwrap()
}

pub fn request() -> TokenRequest {
    config(MissingLifetime::default()).default_request()
}

pub fn request_with_scope(scope: &str) -> TokenRequest {
    config(MissingLifetime::default())
        .request(&TokenParams::new().scopes([scope]))
        .unwrap()
}

/// What the scripted endpoint answers.
#[derive(Clone, Debug)]
pub enum Reply {
    /// A token; `lifetime` in seconds (`None`: no `expires_in`), optional `refresh_in`.
    Token {
        lifetime: Option<u64>,
        refresh_in: Option<u64>,
    },
    /// An error status, optional `Retry-After` (raw header value) and body.
    Error {
        status: u16,
        retry_after: Option<String>,
        body: &'static str,
    },
    /// A transport failure.
    Transport,
    /// Never answers (the driver lost the request).
    Hang,
}

impl Reply {
    pub fn token(lifetime: u64) -> Self {
        Self::Token {
            lifetime: Some(lifetime),
            refresh_in: None,
        }
    }

    pub fn status(status: u16) -> Self {
        Self::Error {
            status,
            retry_after: None,
            body: "",
        }
    }

    pub fn retry_after(status: u16, secs: u64) -> Self {
        Self::Error {
            status,
            retry_after: Some(secs.to_string()),
            body: "",
        }
    }

    pub fn invalid_client() -> Self {
        Self::Error {
            status: 401,
            retry_after: None,
            body: r#"{"error":"invalid_client","error_description":"bad secret"}"#,
        }
    }
}

/// The body, headers and status of a reply; `name` becomes the access token.
pub fn render(reply: &Reply, name: &str) -> Option<(StatusCode, HeaderMap, Vec<u8>)> {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    match reply {
        Reply::Token {
            lifetime,
            refresh_in,
        } => {
            let mut body = serde_json::json!({"access_token": name, "token_type": "Bearer"});
            if let Some(l) = lifetime {
                body["expires_in"] = (*l).into();
            }
            if let Some(r) = refresh_in {
                body["refresh_in"] = (*r).into();
            }
            Some((StatusCode::OK, headers, body.to_string().into_bytes()))
        }
        Reply::Error {
            status,
            retry_after,
            body,
        } => {
            if let Some(r) = retry_after {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_str(r).unwrap());
            }
            Some((
                StatusCode::from_u16(*status).unwrap(),
                headers,
                body.as_bytes().to_vec(),
            ))
        }
        Reply::Transport | Reply::Hang => None,
    }
}

/// Reports `reply` to `session` for request `id` at `now`. Returns `false` for `Hang`.
pub fn deliver(session: &mut Session, now: Instant, id: RequestId, reply: &Reply, name: &str) {
    match reply {
        Reply::Transport => {
            let error = TransportError::from_kind(TransportErrorKind::Connect);
            let _ = session.handle_failure(now, id, Failure::Transport(error));
        }
        Reply::Hang => {}
        other => {
            let (status, headers, body) = render(other, name).unwrap();
            let _ = session.handle_response(now, id, status, &headers, &body);
        }
    }
}

/// What the endpoint is asked: the request number (from 0) and the time since the origin.
#[derive(Clone, Copy, Debug)]
pub struct Ask {
    pub n: usize,
    pub at: Duration,
}

struct InFlight {
    id: RequestId,
    sent: Instant,
    done_at: Instant,
    reply: Reply,
    name: String,
}

/// What happened to one caller's poll.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Served,
    Parked,
    Failed,
}

/// The virtual-time simulation.
pub struct Sim {
    pub start: Instant,
    pub now: Instant,
    pub session: Session,
    server: Box<dyn FnMut(Ask) -> Reply>,
    /// Time from send to response.
    pub latency: Duration,
    /// Whether a background task polls at `poll_timeout`.
    pub background: bool,
    in_flight: Option<InFlight>,
    parked: Vec<Instant>,
    /// Send times, since the origin.
    pub sends: Vec<Duration>,
    pub served: u64,
    pub failed: u64,
    /// Callers that had to park (no token available at their first poll).
    pub parked_total: u64,
    /// Errors handed out as `Failed`, with the time since the origin.
    pub errors: Vec<(Duration, TokenError)>,
    /// Client-view expiry (sent + lifetime) of every token issued, by name.
    issued: HashMap<String, Option<Instant>>,
    /// No send may happen before this (Retry-After up to its cap, cool-down).
    not_before: Option<Instant>,
    pub cooldown: Duration,
    pub max_retry_after: Duration,
    steps: u64,
}

impl Sim {
    pub fn new(policy: Policy, seed: u64, server: impl FnMut(Ask) -> Reply + 'static) -> Self {
        Self::with_request(request(), policy, seed, server)
    }

    pub fn with_request(
        request: TokenRequest,
        policy: Policy,
        seed: u64,
        server: impl FnMut(Ask) -> Reply + 'static,
    ) -> Self {
        let (start, wall) = origin();
        let cooldown = policy.rejection_cooldown;
        let max_retry_after = policy.max_retry_after;
        Self {
            start,
            now: start,
            session: Session::new(request, policy, WallClock::new(start, wall), seed),
            server: Box::new(server),
            latency: Duration::from_millis(150),
            background: false,
            in_flight: None,
            parked: Vec::new(),
            sends: Vec::new(),
            served: 0,
            failed: 0,
            parked_total: 0,
            errors: Vec::new(),
            issued: HashMap::new(),
            not_before: None,
            cooldown,
            max_retry_after,
            steps: 0,
        }
    }

    pub fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    pub fn at(&self, since_start: Duration) -> Instant {
        self.start + since_start
    }

    /// `n` callers ask for a token now.
    pub fn callers(&mut self, n: usize) -> Vec<Outcome> {
        (0..n)
            .map(|_| {
                let outcome = self.poll_once();
                if outcome == Outcome::Parked {
                    self.parked_total += 1;
                }
                outcome
            })
            .collect()
    }

    /// Runs events until `since_start`, then sets the clock there.
    pub fn run_to(&mut self, since_start: Duration) {
        let target = self.at(since_start);
        loop {
            self.steps += 1;
            assert!(self.steps < 50_000_000, "the simulation does not progress");
            let delivery = self
                .in_flight
                .as_ref()
                .filter(|f| !matches!(f.reply, Reply::Hang))
                .map(|f| f.done_at);
            let wake = self.parked.iter().min().copied();
            let background = if self.background {
                self.session.poll_timeout()
            } else {
                None
            };
            let Some(next) = [delivery, wake, background].into_iter().flatten().min() else {
                break;
            };
            if next > target {
                break;
            }
            self.now = self.now.max(next);
            if delivery.is_some_and(|d| d <= self.now) {
                let f = self.in_flight.take().unwrap();
                self.deliver(f);
                self.wake_all();
            } else if wake.is_some_and(|w| w <= self.now) {
                let now = self.now;
                let due = self.parked.iter().filter(|w| **w <= now).count();
                self.parked.retain(|w| *w > now);
                for _ in 0..due {
                    self.poll_once();
                }
            } else {
                self.background_poll();
            }
        }
        self.now = self.now.max(target);
    }

    /// Callers arrive `per_tick` at a time every `every`, until `until` (since the origin).
    pub fn traffic(&mut self, every: Duration, per_tick: usize, until: Duration) {
        let mut t = self.elapsed();
        while t < until {
            self.run_to(t);
            self.callers(per_tick);
            t += every;
        }
        self.run_to(until);
    }

    pub fn is_sending(&self) -> bool {
        self.in_flight.is_some()
    }

    fn deliver(&mut self, f: InFlight) {
        let now = self.now;
        match &f.reply {
            Reply::Token { lifetime, .. } => {
                let expiry = lifetime.map(|l| f.sent + Duration::from_secs(l));
                self.issued.insert(f.name.clone(), expiry);
            }
            Reply::Error {
                status,
                retry_after,
                body,
            } => {
                let retry = retry_after
                    .as_ref()
                    .and_then(|r| r.parse::<u64>().ok())
                    .map(Duration::from_secs)
                    .unwrap_or_default()
                    .min(self.max_retry_after);
                let rejected = *status == 401 || *status == 400 || body.contains("invalid_");
                let wait = if rejected {
                    retry.max(self.cooldown)
                } else {
                    retry
                };
                self.not_before = now.checked_add(wait);
            }
            Reply::Transport | Reply::Hang => {}
        }
        let before = self.session.counters();
        deliver(&mut self.session, now, f.id, &f.reply, &f.name);
        let after = self.session.counters();
        assert_eq!(
            after.fetches_succeeded + after.fetches_failed,
            before.fetches_succeeded + before.fetches_failed + 1,
            "an outcome for the request in flight is never ignored"
        );
    }

    fn wake_all(&mut self) {
        let n = self.parked.len();
        self.parked.clear();
        for _ in 0..n {
            self.poll_once();
        }
    }

    fn background_poll(&mut self) {
        match self.session.poll(self.now) {
            Action::Ready(t) => self.check_token(&t),
            Action::Send { id, current, .. } => {
                if let Some(t) = current {
                    self.check_token(&t);
                }
                self.sent(id);
            }
            Action::Wait(until) => assert!(until > self.now, "Wait deadline not in the future"),
            Action::Failed(_) => {}
        }
        self.check_timeout();
    }

    /// One poll by a caller; a parked caller or a sender without a token parks.
    fn poll_once(&mut self) -> Outcome {
        let outcome = match self.session.poll(self.now) {
            Action::Ready(t) => {
                self.check_token(&t);
                self.served += 1;
                Outcome::Served
            }
            Action::Send { id, current, .. } => {
                let deadline = self.sent(id);
                match current {
                    Some(t) => {
                        self.check_token(&t);
                        self.served += 1;
                        Outcome::Served
                    }
                    None => {
                        self.parked.push(deadline);
                        Outcome::Parked
                    }
                }
            }
            Action::Wait(until) => {
                assert!(until > self.now, "Wait deadline not in the future");
                self.parked.push(until);
                Outcome::Parked
            }
            Action::Failed(e) => {
                self.failed += 1;
                self.errors.push((self.elapsed(), e));
                Outcome::Failed
            }
        };
        self.check_timeout();
        outcome
    }

    /// Records a send; returns the deadline a sender without a token waits for.
    fn sent(&mut self, id: RequestId) -> Instant {
        let now = self.now;
        if let Some(f) = &self.in_flight {
            let deadline = f.sent + self.session.policy().request_timeout;
            assert!(
                now >= deadline,
                "a second request while one is in flight (sent at {:?})",
                f.sent - self.start
            );
        }
        if let Some(nb) = self.not_before {
            assert!(
                now >= nb,
                "sent at {:?}, before the server allowed ({:?})",
                self.elapsed(),
                nb - self.start
            );
        }
        let ask = Ask {
            n: self.sends.len(),
            at: self.elapsed(),
        };
        let reply = (self.server)(ask);
        let name = format!("tok-{}", self.sends.len());
        self.sends.push(self.elapsed());
        self.in_flight = Some(InFlight {
            id,
            sent: now,
            done_at: now + self.latency,
            reply,
            name,
        });
        now + self.session.policy().request_timeout
    }

    /// A token handed out must be one the server issued, and not expired (by the client's
    /// own conservative reckoning: sent time plus lifetime).
    pub fn check_token(&self, token: &Arc<Token>) {
        let name = token.access_token().expose_secret();
        let expiry = self
            .issued
            .get(name)
            .unwrap_or_else(|| panic!("{name} was never issued"));
        if let Some(expiry) = expiry {
            assert!(
                self.now < *expiry,
                "{name} handed out at {:?}, expired at {:?}",
                self.elapsed(),
                *expiry - self.start
            );
        }
    }

    /// After any drain, the next deadline is in the future.
    fn check_timeout(&self) {
        if let Some(t) = self.session.poll_timeout() {
            assert!(
                t > self.now,
                "poll_timeout {:?} is not after now {:?}: busy loop",
                t - self.start,
                self.elapsed()
            );
        }
    }

    /// Gaps between consecutive sends.
    pub fn gaps(&self) -> Vec<Duration> {
        self.sends.windows(2).map(|w| w[1] - w[0]).collect()
    }
}

pub fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

pub fn mins(m: u64) -> Duration {
    Duration::from_secs(60 * m)
}
