//! Token-health metrics (feature `metrics`), recorded in one place: the [`Cache`], from the
//! `now` of the inputs it already takes, into the [`metrics`](https://docs.rs/metrics)
//! facade. A cache records only once it has a name ([`Cache::with_metrics_name`]; the
//! adapters' `ClientBuilder::metrics_name`), and that name is the only label it adds besides
//! a fetch's outcome: never a secret, a token, a URL or a client id.
//!
//! # Why the `metrics` facade
//!
//! It is to metrics what `log` is to logging: a library records into it and the application
//! installs one exporter (Prometheus through `metrics-exporter-prometheus`, StatsD,
//! OpenTelemetry through `metrics-exporter-opentelemetry`…). A library that recorded through
//! OpenTelemetry's API directly would pull its SDK and a global meter provider into every
//! service that uses it, whatever that service exports to. With no recorder installed, a
//! recording is a load and a branch. Recording is not I/O: the core stays sans-IO, and
//! every duration below is a difference of the `now` instants handed to the cache.
//!
//! # The metrics
//!
//! Every metric has the label `client`: the name given to the client.
//!
//! | name | type | labels | unit | what |
//! | --- | --- | --- | --- | --- |
//! | `client_credentials_token_fetches_total` | counter | `client`, `outcome` | requests | Token requests that ended, by [`outcome`]: `success` or the error class. A token taken from a shared store is not a fetch (see the shared-store hits). |
//! | `client_credentials_token_fetch_duration_seconds` | histogram | `client` | seconds | From the moment a request was handed out ([`Action::Send`](crate::Action::Send)) to its response or failure; not for an abandoned request. |
//! | `client_credentials_cache_hits_total` | counter | `client` | calls | Calls served a cached token without waiting, lock-free hits included: [`Counters::cache_hits`](crate::Counters::cache_hits) without the polls that answered a call that waited (those are waits). |
//! | `client_credentials_cache_waits_total` | counter | `client` | calls | Calls that had to wait: for a fetch in flight, or for the first token (as the driver reports them, [`driver::Call`](crate::driver::Call)). |
//! | `client_credentials_wait_duration_seconds` | histogram | `client` | seconds | How long each of those calls waited, from its start to its return. |
//! | `client_credentials_refresh_lead_seconds` | histogram | `client` | seconds | When a new token (fetched, or from a shared store) replaces one still served: how long before that token's expiry. Small values mean refreshes run late. |
//! | `client_credentials_stale_tokens_served_total` | counter | `client` | calls | Hits that served a token whose refresh is overdue because fetches fail ([`Counters::stale_hits`](crate::Counters::stale_hits)): an outage that the still-valid token bridges. |
//! | `client_credentials_shared_store_hits_total` | counter | `client` | requests | Fetches answered by a token another process put in the shared store ([`Cache::handle_shared_token`]): nothing was sent. |
//!
//! Outcomes are few and fixed (see [`outcome`]): an unknown OAuth error code is counted as
//! `rejected`, never under the code the server sent, so that a server cannot grow the
//! number of series.
//!
//! # When the hit counters are exact
//!
//! The hit path does not record: a lock-free hit ([`TokenSlot`](crate::TokenSlot)) writes
//! only its own shard's count, and the cache publishes the totals (hits and stale hits) with
//! [`Counter::absolute`](metrics::Counter::absolute), which never lowers a counter. It
//! publishes them whenever the event queue is drained ([`Cache::poll_event`] returning
//! `None`, after every input), so a scrape after any fetch, failure, invalidation or
//! eviction is exact; and otherwise at the snapshot timer of the lock-free path, whose
//! deadline ([`Cache::snapshot_timeout`]) comes at least every [`HITS_PUBLISH_INTERVAL`]
//! while a named cache has a slot attached (both adapters attach one while their timer
//! runs). In steady state (every call a hit, no event) a scrape is therefore at most
//! [`HITS_PUBLISH_INTERVAL`] behind. A driver without a slot publishes at its drains
//! only. Totals survive evictions and [`Cache::clear`].
//!
//! Histograms are recorded in seconds; an exporter decides how to bucket them (the
//! Prometheus exporter renders summaries unless buckets are set, see `examples/prometheus.rs`).
//! Descriptions (units and help texts) are registered, and every series but the fetch
//! outcomes created at zero, when the name is set: install the recorder before building
//! clients to have them exported.
//!
//! ```
//! use std::time::{Duration, Instant, SystemTime};
//! use client_credentials::{Action, Cache, Config, Policy, WallClock};
//! use client_credentials::http::{HeaderMap, StatusCode};
//! use metrics_util::debugging::{DebugValue, DebuggingRecorder};
//!
//! let config = Config::builder()
//!     .token_url("https://auth.example.com/token")
//!     .client_id("c")
//!     .client_secret("s")
//!     .build()?;
//! let request = config.default_request();
//! let recorder = DebuggingRecorder::new();
//! let snapshotter = recorder.snapshotter();
//! metrics::with_local_recorder(&recorder, || {
//!     let now = Instant::now();
//!     let clock = WallClock::new(now, SystemTime::now());
//!     let mut cache = Cache::new(Policy::default(), clock, 7).with_metrics_name("orders");
//!     let Action::Send { id, .. } = cache.poll(now, &request) else { unreachable!() };
//!     let body = br#"{"access_token":"abc","token_type":"Bearer","expires_in":3600}"#;
//!     let later = now + Duration::from_millis(40);
//!     let _ = cache.handle_response(later, id, StatusCode::OK, &HeaderMap::new(), body);
//!     while cache.poll_event().is_some() {}
//! });
//! let fetches = snapshotter.snapshot().into_vec().into_iter().find(|(key, ..)| {
//!     key.key().name() == "client_credentials_token_fetches_total"
//! });
//! let (key, _, _, value) = fetches.expect("recorded");
//! let labels: Vec<_> = key.key().labels().map(|l| (l.key(), l.value())).collect();
//! assert_eq!(labels, [("client", "orders"), ("outcome", "success")]);
//! assert_eq!(value, DebugValue::Counter(1));
//! # Ok::<_, client_credentials::ConfigError>(())
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use ::metrics::{SharedString, Unit};

use crate::error::{ErrorCode, TokenError, TransportErrorKind};
#[cfg(doc)]
use crate::session::Cache;

/// `client_credentials_token_fetches_total{client, outcome}`: token requests that ended.
pub const TOKEN_FETCHES: &str = "client_credentials_token_fetches_total";
/// `client_credentials_token_fetch_duration_seconds{client}`: how long a token request took.
pub const TOKEN_FETCH_DURATION: &str = "client_credentials_token_fetch_duration_seconds";
/// `client_credentials_cache_hits_total{client}`: calls served a cached token.
pub const CACHE_HITS: &str = "client_credentials_cache_hits_total";
/// `client_credentials_cache_waits_total{client}`: calls that waited for a fetch.
pub const CACHE_WAITS: &str = "client_credentials_cache_waits_total";
/// `client_credentials_wait_duration_seconds{client}`: how long those calls waited.
pub const WAIT_DURATION: &str = "client_credentials_wait_duration_seconds";
/// `client_credentials_refresh_lead_seconds{client}`: how long before its expiry a token
/// was replaced.
pub const REFRESH_LEAD: &str = "client_credentials_refresh_lead_seconds";
/// `client_credentials_stale_tokens_served_total{client}`: hits served while the refresh is
/// overdue because fetches fail.
pub const STALE_TOKENS_SERVED: &str = "client_credentials_stale_tokens_served_total";
/// `client_credentials_shared_store_hits_total{client}`: fetches answered by the shared store.
pub const SHARED_STORE_HITS: &str = "client_credentials_shared_store_hits_total";

/// The `outcome` of a token request that produced a token.
pub const SUCCESS: &str = "success";
/// The `outcome` of a token request whose sender gave up ([`crate::Failure::Abandoned`]).
pub const ABANDONED: &str = "abandoned";

/// How stale the published hit counters may be when nothing else happens: see
/// [When the hit counters are exact](self#when-the-hit-counters-are-exact).
pub const HITS_PUBLISH_INTERVAL: Duration = Duration::from_secs(5);

/// The `outcome` label of a failed token request: the class of `error`, from a fixed set.
///
/// | class | errors |
/// | --- | --- |
/// | `invalid_client` | [`TokenError::is_invalid_client`]: `invalid_client`, or any 401 |
/// | `invalid_scope`, `invalid_target`, `invalid_request`, `invalid_grant` | rejections with that code |
/// | `unauthorized_client` | [`TokenError::is_unauthorized_client`] (with `unsupported_grant_type`) |
/// | `rejected` | any other rejection (an unknown code: never the code itself) |
/// | `rate_limited` | a 429 |
/// | `server_error` | a 5xx, `server_error`, `temporarily_unavailable` |
/// | `invalid_response` | an answer that could not be used (not a token, expired on arrival…) |
/// | `too_large` | a body over the cap |
/// | `timeout` | a transport timeout |
/// | `transport` | any other transport failure (connect, TLS, I/O) |
/// | `rejected_by_resource` | resource servers kept rejecting fresh tokens |
/// | `assertion_unavailable` | the client assertion could not be read from its source; nothing was sent |
///
/// Beside these, [`SUCCESS`] and [`ABANDONED`].
///
/// ```
/// use client_credentials::{TokenError, TransportError, TransportErrorKind};
/// use client_credentials::metrics::outcome;
/// let timeout = TokenError::Transport(TransportError::from_kind(TransportErrorKind::Timeout));
/// assert_eq!(outcome(&timeout), "timeout");
/// assert_eq!(outcome(&TokenError::TooLarge { status: None, limit: 1024 }), "too_large");
/// ```
#[must_use]
pub fn outcome(error: &TokenError) -> &'static str {
    match error {
        TokenError::Rejected { .. } | TokenError::InvalidResponse { .. }
            if error.is_invalid_client() =>
        {
            "invalid_client"
        }
        TokenError::Rejected { .. } if error.is_unauthorized_client() => "unauthorized_client",
        TokenError::Rejected { error, .. } => match error.code {
            ErrorCode::InvalidScope => "invalid_scope",
            ErrorCode::InvalidTarget => "invalid_target",
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::InvalidGrant => "invalid_grant",
            ErrorCode::ServerError | ErrorCode::TemporarilyUnavailable => "server_error",
            // `invalid_client` and a 401 are caught above, and so is `unauthorized_client`
            // but with a 401 (Keycloak's wrong secret); an unknown code is never a label.
            ErrorCode::InvalidClient
            | ErrorCode::UnauthorizedClient
            | ErrorCode::UnsupportedGrantType
            | ErrorCode::Unknown(_) => "rejected",
        },
        TokenError::RateLimited { .. } => "rate_limited",
        TokenError::Server { .. } => "server_error",
        TokenError::InvalidResponse { .. } => "invalid_response",
        TokenError::TooLarge { .. } => "too_large",
        TokenError::Transport(e) if e.kind() == TransportErrorKind::Timeout => "timeout",
        TokenError::Transport(_) => "transport",
        TokenError::RejectedByResource { .. } => "rejected_by_resource",
        TokenError::Assertion(_) => "assertion_unavailable",
    }
}

/// What a named cache records with; held by the [`Cache`].
#[derive(Debug)]
pub(crate) struct Recorder {
    client: Arc<str>,
    /// When the hit counters are next published without an event.
    publish_at: Option<Instant>,
    /// Waits answered from the cache: their polls counted hits that the metric leaves out.
    served_waits: u64,
}

impl Recorder {
    /// A recorder for the client named `name`; describes the metrics to the installed
    /// recorder.
    pub(crate) fn new(name: &str) -> Self {
        describe();
        let recorder = Self {
            client: Arc::from(name),
            publish_at: None,
            served_waits: 0,
        };
        // Every series of the client exists from the start, at zero: a dashboard shows "no
        // stale token served" rather than "no data".
        for name in [
            CACHE_HITS,
            CACHE_WAITS,
            STALE_TOKENS_SERVED,
            SHARED_STORE_HITS,
        ] {
            ::metrics::counter!(name, "client" => recorder.label()).increment(0);
        }
        for name in [TOKEN_FETCH_DURATION, WAIT_DURATION, REFRESH_LEAD] {
            drop(::metrics::histogram!(name, "client" => recorder.label()));
        }
        recorder
    }

    pub(crate) fn name(&self) -> &str {
        &self.client
    }

    fn label(&self) -> SharedString {
        SharedString::from(Arc::clone(&self.client))
    }

    /// A token request ended with `outcome` after `latency` (`None`: not measured).
    pub(crate) fn fetch(&self, outcome: &'static str, latency: Option<Duration>) {
        ::metrics::counter!(TOKEN_FETCHES, "client" => self.label(), "outcome" => outcome)
            .increment(1);
        if let Some(latency) = latency {
            ::metrics::histogram!(TOKEN_FETCH_DURATION, "client" => self.label()).record(latency);
        }
    }

    /// A token replaced one still served, `lead` before that one's expiry.
    pub(crate) fn refresh_lead(&self, lead: Duration) {
        ::metrics::histogram!(REFRESH_LEAD, "client" => self.label()).record(lead);
    }

    /// The shared store answered a fetch.
    pub(crate) fn shared_store_hit(&self) {
        ::metrics::counter!(SHARED_STORE_HITS, "client" => self.label()).increment(1);
    }

    /// A caller waited `waited` for a fetch; `served`: then the cache served it (its poll
    /// counted a hit, which is not one for the metrics).
    pub(crate) fn wait(&mut self, waited: Duration, served: bool) {
        self.served_waits += u64::from(served);
        ::metrics::counter!(CACHE_WAITS, "client" => self.label()).increment(1);
        ::metrics::histogram!(WAIT_DURATION, "client" => self.label()).record(waited);
    }

    /// Publishes the hit totals (monotonic: [`metrics::Counter::absolute`]), without the
    /// polls that answered a wait.
    pub(crate) fn publish_hits(&self, hits: u64, stale: u64) {
        let hits = hits.saturating_sub(self.served_waits);
        ::metrics::counter!(CACHE_HITS, "client" => self.label()).absolute(hits);
        ::metrics::counter!(STALE_TOKENS_SERVED, "client" => self.label()).absolute(stale);
    }

    /// Whether the hit totals are due for publication at `now`; if so, the next is planned.
    pub(crate) fn publish_due(&mut self, now: Instant) -> bool {
        let due = self.publish_at.is_none_or(|at| now >= at);
        if due {
            self.publish_at = now.checked_add(HITS_PUBLISH_INTERVAL);
        }
        due
    }

    /// When the hit totals are next published without an event, once planned.
    pub(crate) fn publish_at(&self) -> Option<Instant> {
        self.publish_at
    }
}

/// Registers the unit and help text of every metric with the installed recorder.
fn describe() {
    ::metrics::describe_counter!(
        TOKEN_FETCHES,
        Unit::Count,
        "Token requests that ended, by outcome (success or the error class)."
    );
    ::metrics::describe_histogram!(
        TOKEN_FETCH_DURATION,
        Unit::Seconds,
        "How long a token request took, until its response or failure."
    );
    ::metrics::describe_counter!(CACHE_HITS, Unit::Count, "Calls served a cached token.");
    ::metrics::describe_counter!(
        CACHE_WAITS,
        Unit::Count,
        "Calls that waited for a token fetch (one in flight, or the first token)."
    );
    ::metrics::describe_histogram!(
        WAIT_DURATION,
        Unit::Seconds,
        "How long calls waited for a token fetch."
    );
    ::metrics::describe_histogram!(
        REFRESH_LEAD,
        Unit::Seconds,
        "How long before its expiry a served token was replaced by a new one."
    );
    ::metrics::describe_counter!(
        STALE_TOKENS_SERVED,
        Unit::Count,
        "Hits that served a token whose refresh is overdue because fetches fail."
    );
    ::metrics::describe_counter!(
        SHARED_STORE_HITS,
        Unit::Count,
        "Token fetches answered by the shared store, without a request."
    );
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Arc;
    use std::time::{Duration, Instant, SystemTime};

    use http::{HeaderMap, StatusCode};
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};

    use super::*;
    use crate::session::{Action, Cache, Failure, Policy, TokenSlot, WallClock};
    use crate::{Config, TokenRequest, TransportError};

    const SECRET: &str = "a-long-client-secret-7Fjfp0ZBr1KtDRbnfVdmIw";
    const TOKEN: &str = "2YotnFZFEjr1zCsicMWpAA";

    fn config() -> Config {
        Config::builder()
            .token_url("https://as.example.com/token")
            .client_id("orders-service")
            .client_secret(SECRET)
            .build()
            .unwrap()
    }

    fn token_body(token: &str, expires_in: u64) -> Vec<u8> {
        format!(r#"{{"access_token":"{token}","token_type":"Bearer","expires_in":{expires_in}}}"#)
            .into_bytes()
    }

    fn rejection(status: u16, body: &str) -> TokenError {
        config()
            .default_request()
            .parse_response(
                SystemTime::UNIX_EPOCH,
                StatusCode::from_u16(status).unwrap(),
                &HeaderMap::new(),
                body.as_bytes(),
            )
            .unwrap_err()
    }

    #[test]
    fn every_error_has_its_class() {
        let oauth = |status, code: &str| rejection(status, &format!(r#"{{"error":"{code}"}}"#));
        let transport = |kind| TokenError::Transport(TransportError::from_kind(kind));
        let cases = [
            (oauth(401, "invalid_client"), "invalid_client"),
            (oauth(400, "invalid_client"), "invalid_client"),
            // Keycloak's wrong secret: a 401 whatever the code.
            (oauth(401, "unauthorized_client"), "invalid_client"),
            (rejection(401, "nope"), "invalid_client"),
            (oauth(400, "unauthorized_client"), "unauthorized_client"),
            (oauth(400, "unsupported_grant_type"), "unauthorized_client"),
            (oauth(400, "invalid_scope"), "invalid_scope"),
            (oauth(400, "invalid_target"), "invalid_target"),
            (oauth(400, "invalid_request"), "invalid_request"),
            (oauth(400, "invalid_grant"), "invalid_grant"),
            (oauth(400, "vendor_specific_code"), "rejected"),
            (oauth(429, "slow_down"), "rate_limited"),
            (rejection(429, ""), "rate_limited"),
            (rejection(503, "<html>down</html>"), "server_error"),
            (oauth(400, "temporarily_unavailable"), "server_error"),
            (rejection(200, "not json at all"), "invalid_response"),
            (
                rejection(200, r#"{"token_type":"Bearer"}"#),
                "invalid_response",
            ),
            (
                TokenError::TooLarge {
                    status: Some(StatusCode::OK),
                    limit: 10,
                },
                "too_large",
            ),
            (transport(TransportErrorKind::Timeout), "timeout"),
            (transport(TransportErrorKind::Connect), "transport"),
            (transport(TransportErrorKind::Tls), "transport"),
            (transport(TransportErrorKind::Io), "transport"),
            (transport(TransportErrorKind::Other), "transport"),
            (
                TokenError::RejectedByResource { attempts: 4 },
                "rejected_by_resource",
            ),
            (
                TokenError::Assertion(crate::AssertionError {
                    source: "file /t".to_owned(),
                    problem: crate::federated::AssertionProblem::Empty,
                }),
                "assertion_unavailable",
            ),
        ];
        for (error, class) in cases {
            assert_eq!(outcome(&error), class, "{error:?}");
        }
    }

    /// What was recorded, by metric name and labels (`name{k=v,…}`).
    fn recorded(recorder: &DebuggingRecorder) -> HashMap<String, DebugValue> {
        recorder
            .snapshotter()
            .snapshot()
            .into_vec()
            .into_iter()
            .map(|(key, _, _, value)| {
                let labels: Vec<String> = key
                    .key()
                    .labels()
                    .map(|l| format!("{}={}", l.key(), l.value()))
                    .collect();
                (
                    format!("{}{{{}}}", key.key().name(), labels.join(",")),
                    value,
                )
            })
            .collect()
    }

    fn counter(values: &HashMap<String, DebugValue>, key: &str) -> u64 {
        match values.get(key) {
            Some(DebugValue::Counter(n)) => *n,
            other => panic!("{key}: {other:?} in {values:?}"),
        }
    }

    fn histogram(values: &HashMap<String, DebugValue>, key: &str) -> Vec<f64> {
        match values.get(key) {
            Some(DebugValue::Histogram(v)) => v.iter().map(|f| f.into_inner()).collect(),
            other => panic!("{key}: {other:?} in {values:?}"),
        }
    }

    fn drain(cache: &mut Cache) {
        while cache.poll_event().is_some() {}
    }

    /// Sends the request the poll hands out and answers it with `body`, `after` later.
    fn fetch(
        cache: &mut Cache,
        now: Instant,
        request: &TokenRequest,
        after: Duration,
        answer: Result<Vec<u8>, Failure>,
    ) {
        let id = match cache.poll(now, request) {
            Action::Send { id, .. } => id,
            other => panic!("expected a send, got {other:?}"),
        };
        let later = now + after;
        let _ = match answer {
            Ok(body) => cache.handle_response(later, id, StatusCode::OK, &HeaderMap::new(), &body),
            Err(failure) => cache.handle_failure(later, id, failure),
        };
        drain(cache);
    }

    #[test]
    fn a_named_cache_records_fetches_hits_waits_refreshes_and_outages() {
        let recorder = DebuggingRecorder::new();
        let request = config().default_request();
        let (t0, clock) = start();
        metrics::with_local_recorder(&recorder, || {
            let mut cache = Cache::new(Policy::default(), clock, 7).with_metrics_name("orders");
            assert_eq!(cache.metrics_name(), Some("orders"));
            // One fetch of 40 ms, for which the caller waited 50 ms: a wait, not a hit.
            let mut call = crate::driver::Call::default();
            let action = cache.poll(t0, &request);
            call.observe(&mut cache, t0, &action);
            let Action::Send { id, .. } = action else {
                panic!("expected a send, got {action:?}")
            };
            let body = token_body(TOKEN, 3600);
            let _ =
                cache.handle_response(t0 + ms(40), id, StatusCode::OK, &HeaderMap::new(), &body);
            drain(&mut cache);
            let action = cache.poll(t0 + ms(50), &request);
            call.observe(&mut cache, t0 + ms(50), &action);
            assert!(matches!(action, Action::Ready(_)));
            // Three hits under the lock.
            for _ in 0..3 {
                assert!(matches!(
                    cache.poll(t0 + ms(60), &request),
                    Action::Ready(_)
                ));
            }
            // The refresh point (at most 0.8 × 3590 s) passed: the refresh fails (timeout),
            // and the still-valid token is served stale.
            let late = t0 + Duration::from_secs(2900);
            let timeout = TransportError::from_kind(TransportErrorKind::Timeout);
            fetch(
                &mut cache,
                late,
                &request,
                ms(200),
                Err(Failure::Transport(timeout)),
            );
            for _ in 0..2 {
                assert!(matches!(
                    cache.poll(late + ms(300), &request),
                    Action::Ready(_)
                ));
            }
            // After the backoff, a refresh lands 3000 s into the hour-long token.
            let retry = t0 + Duration::from_secs(3000);
            fetch(
                &mut cache,
                retry,
                &request,
                ms(10),
                Ok(token_body("second-token", 3600)),
            );
            // Healthy again: no stale hit.
            assert!(matches!(
                cache.poll(retry + ms(20), &request),
                Action::Ready(_)
            ));
            drain(&mut cache);
        });
        let values = recorded(&recorder);
        assert_eq!(
            counter(
                &values,
                "client_credentials_token_fetches_total{client=orders,outcome=success}"
            ),
            2
        );
        assert_eq!(
            counter(
                &values,
                "client_credentials_token_fetches_total{client=orders,outcome=timeout}"
            ),
            1
        );
        let durations = histogram(
            &values,
            "client_credentials_token_fetch_duration_seconds{client=orders}",
        );
        assert_eq!(durations, [0.04, 0.2, 0.01]);
        assert_eq!(
            counter(
                &values,
                "client_credentials_cache_hits_total{client=orders}"
            ),
            6
        );
        assert_eq!(
            counter(
                &values,
                "client_credentials_stale_tokens_served_total{client=orders}"
            ),
            2
        );
        assert_eq!(
            counter(
                &values,
                "client_credentials_cache_waits_total{client=orders}"
            ),
            1
        );
        assert_eq!(
            histogram(
                &values,
                "client_credentials_wait_duration_seconds{client=orders}"
            ),
            [0.05]
        );
        // The first token expires 3600 s after its send; replaced at 3000.01 s.
        let lead = histogram(
            &values,
            "client_credentials_refresh_lead_seconds{client=orders}",
        );
        assert_eq!(lead.len(), 1);
        assert!((lead[0] - 599.99).abs() < 1e-6, "{lead:?}");
    }

    #[test]
    fn lock_free_hits_and_shared_store_answers_are_counted() {
        let recorder = DebuggingRecorder::new();
        let request = config().default_request();
        let (t0, clock) = start();
        metrics::with_local_recorder(&recorder, || {
            let mut cache = Cache::new(Policy::default(), clock, 7)
                .with_shared_store()
                .with_metrics_name("billing");
            let slot = Arc::new(TokenSlot::new(2));
            cache.attach(t0, &request, Arc::clone(&slot));
            // A shared store answers the first fetch.
            let Action::Send { id, .. } = cache.poll(t0, &request) else {
                panic!("expected a send")
            };
            let shared = request
                .parse_response(
                    clock.at(t0),
                    StatusCode::OK,
                    &HeaderMap::new(),
                    &token_body(TOKEN, 3600),
                )
                .unwrap();
            assert!(cache.handle_shared_token(t0, id, Arc::new(shared)));
            drain(&mut cache);
            for _ in 0..100 {
                assert!(slot.get().is_some());
            }
            // No event since: the snapshot timer publishes within the interval.
            let due = cache.snapshot_timeout().unwrap();
            assert!(due <= t0 + HITS_PUBLISH_INTERVAL, "{due:?}");
            let _ = cache.handle_snapshot_timeout(due);
        });
        let values = recorded(&recorder);
        assert_eq!(
            counter(
                &values,
                "client_credentials_shared_store_hits_total{client=billing}"
            ),
            1
        );
        assert_eq!(
            counter(
                &values,
                "client_credentials_cache_hits_total{client=billing}"
            ),
            100
        );
        assert!(
            !values
                .keys()
                .any(|k| k.starts_with("client_credentials_token_fetches_total"))
        );
    }

    #[test]
    fn lock_free_hits_of_a_token_whose_refresh_keeps_failing_are_stale() {
        let recorder = DebuggingRecorder::new();
        let request = config().default_request();
        let (t0, clock) = start();
        let slot = Arc::new(TokenSlot::new(1));
        let counters = metrics::with_local_recorder(&recorder, || {
            let mut cache = Cache::new(Policy::default(), clock, 7).with_metrics_name("orders");
            cache.attach(t0, &request, Arc::clone(&slot));
            fetch(&mut cache, t0, &request, ms(5), Ok(token_body(TOKEN, 3600)));
            assert!(slot.get().is_some());
            // The refresh is due and fails: the slot keeps serving the token, stale.
            let late = t0 + Duration::from_secs(2900);
            let refused = Failure::Transport(TransportError::from_kind(TransportErrorKind::Io));
            fetch(&mut cache, late, &request, ms(200), Err(refused));
            for _ in 0..5 {
                assert!(slot.get().is_some());
            }
            // The retry lands: fresh again.
            let retry = late + Duration::from_secs(2);
            fetch(
                &mut cache,
                retry,
                &request,
                ms(10),
                Ok(token_body("second-token", 3600)),
            );
            for _ in 0..3 {
                assert!(slot.get().is_some());
            }
            drain(&mut cache);
            cache.counters(request.cache_key()).unwrap()
        });
        assert_eq!((counters.cache_hits, counters.stale_hits), (9, 5));
        let values = recorded(&recorder);
        assert_eq!(
            counter(
                &values,
                "client_credentials_cache_hits_total{client=orders}"
            ),
            9
        );
        assert_eq!(
            counter(
                &values,
                "client_credentials_stale_tokens_served_total{client=orders}"
            ),
            5
        );
        assert_eq!(
            counter(
                &values,
                "client_credentials_token_fetches_total{client=orders,outcome=transport}"
            ),
            1
        );
    }

    #[test]
    fn hit_totals_never_go_back_after_eviction_or_clear() {
        let recorder = DebuggingRecorder::new();
        let request = config().default_request();
        let (t0, clock) = start();
        metrics::with_local_recorder(&recorder, || {
            let mut cache = Cache::new(Policy::default(), clock, 7).with_metrics_name("orders");
            for round in 0..2 {
                let now = t0 + Duration::from_secs(round);
                fetch(
                    &mut cache,
                    now,
                    &request,
                    ms(1),
                    Ok(token_body(TOKEN, 3600)),
                );
                let _ = cache.poll(now, &request);
                assert_eq!(cache.clear(), 1);
                drain(&mut cache);
            }
        });
        let values = recorded(&recorder);
        assert_eq!(
            counter(
                &values,
                "client_credentials_cache_hits_total{client=orders}"
            ),
            2
        );
    }

    #[test]
    fn a_cache_without_a_name_records_nothing() {
        let recorder = DebuggingRecorder::new();
        let request = config().default_request();
        let (t0, clock) = start();
        metrics::with_local_recorder(&recorder, || {
            let mut cache = Cache::new(Policy::default(), clock, 7);
            fetch(&mut cache, t0, &request, ms(1), Ok(token_body(TOKEN, 3600)));
            let _ = cache.poll(t0, &request);
            cache.record_wait(t0 + ms(5), t0, false);
            drain(&mut cache);
        });
        assert!(recorded(&recorder).is_empty());
    }

    #[test]
    fn no_label_or_description_holds_a_secret_or_token() {
        let recorder = DebuggingRecorder::new();
        let request = config().default_request();
        let (t0, clock) = start();
        metrics::with_local_recorder(&recorder, || {
            let mut cache = Cache::new(Policy::default(), clock, 7).with_metrics_name("orders");
            fetch(&mut cache, t0, &request, ms(1), Ok(token_body(TOKEN, 3600)));
            let _ = cache.poll(t0, &request);
            let _ = cache.force_refresh(t0, request.cache_key());
            let body =
                format!(r#"{{"error":"invalid_client","error_description":"{SECRET} {TOKEN}"}}"#);
            let Action::Send { id, .. } = cache.poll(t0 + ms(2), &request) else {
                panic!("expected a refresh")
            };
            let _ = cache.handle_response(
                t0 + ms(3),
                id,
                StatusCode::UNAUTHORIZED,
                &HeaderMap::new(),
                body.as_bytes(),
            );
            cache.record_wait(t0 + ms(5), t0, false);
            drain(&mut cache);
        });
        let snapshot = recorder.snapshotter().snapshot().into_vec();
        assert!(snapshot.len() >= 5, "{snapshot:?}");
        for (key, unit, description, value) in snapshot {
            let shown = format!("{key:?} {unit:?} {description:?} {value:?}");
            for secret in [SECRET, TOKEN, "orders-service", "as.example.com"] {
                assert!(!shown.contains(secret), "{secret} in {shown}");
            }
            for label in key.key().labels() {
                assert!(["client", "outcome"].contains(&label.key()), "{label:?}");
            }
        }
    }

    /// One real instant, and the clock anchored at it.
    fn start() -> (Instant, WallClock) {
        #[allow(clippy::disallowed_methods, reason = "a test needs one real instant")]
        let now = (Instant::now(), SystemTime::now());
        (now.0, WallClock::new(now.0, now.1))
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }
}
