//! The token lifecycle as a sans-IO state machine: cache, single flight, refresh ahead and
//! backoff.
//!
//! A [`Session`] owns the token of one request shape (one [`TokenRequest`], one
//! [`crate::CacheKey`]); a [`Cache`] holds one session per shape, bounded, and owns the rest
//! of the protocol (events, eviction, the shared store, the resource server's verdict).
//! Neither reads a clock,
//! sleeps, spawns or draws random numbers: time comes in as `now: Instant` on every call,
//! randomness as a `u64` seed, and I/O goes out as an [`Action::Send`] that the driver (an
//! adapter, or your own transport) performs and reports back. The same session therefore
//! behaves identically under the blocking adapter, the async adapter, a custom transport,
//! and in tests that run a day of token traffic in virtual time.
//!
//! # Driving a session
//!
//! The methods come in families, as in `quinn-proto`: getters on `&self`
//! ([`Session::request`], [`Session::current_token`], [`Session::counters`],
//! [`Session::last_error`], [`Session::next_refresh`], [`Session::poll_timeout`],
//! [`Session::would_adopt`]…); inputs for the request in flight
//! ([`Session::handle_response`], [`Session::handle_failure`] for every way a request ends
//! without a response, [`Session::handle_shared_token`]), which return an [`Outcome`] (or
//! whether the token was taken) so that the driver wakes its waiters only when something
//! changed; the timer input [`Session::handle_timeout`], which starts a due background
//! refresh and never counts a hit; other inputs ([`Session::invalidate`],
//! [`Session::force_refresh`], [`Session::reset_backoff`], [`Session::adopt`]); and one
//! output per caller, [`Session::poll`]. [`Cache`] has the same families over many shapes,
//! plus an event queue ([`Cache::poll_event`]) and the resource-server verdict
//! ([`Cache::resource_verdict`]). A driver calls them in this order:
//!
//! 1. Each caller that wants a token calls [`Session::poll`] and acts on the [`Action`]:
//!    - [`Action::Ready`]: use the token.
//!    - [`Action::Send`]: this caller, and only this one, sends the request. It then reports
//!      the outcome exactly once, with [`Session::handle_response`] or
//!      [`Session::handle_failure`] (a transport error, an error of the transport's own such
//!      as a body over the cap, or [`Failure::Abandoned`] if it gave up). When `current` is
//!      `Some`, this is a refresh ahead of expiry: the caller may use `current` at once and
//!      finish the refresh in the background.
//!    - [`Action::Wait`]: another caller's request is in flight. Sleep until the session
//!      changes (an input whose [`Outcome::changed`]) or until the instant given, then poll
//!      again.
//!    - [`Action::Failed`]: the fetch this caller waited for failed and no valid token is
//!      left (or the session is backing off after resource servers kept rejecting fresh
//!      tokens); the error is the same value every waiter gets.
//! 2. After every input that changed something, wake the waiting callers: they poll again.
//! 3. Optionally, a background task sleeps until [`Session::poll_timeout`] and calls
//!    [`Session::handle_timeout`], so that a refresh starts ahead of expiry even when no
//!    caller happens to ask at that moment.
//!
//! A blocking driver, end to end (the transport here is a stand-in for any HTTP client):
//!
//! ```
//! use std::time::{Instant, SystemTime};
//! use client_credentials::{Config, TokenError, TransportError};
//! use client_credentials::HttpRequest;
//! use client_credentials::session::{Action, Failure, Policy, Session, WallClock};
//! use client_credentials::http::{HeaderMap, StatusCode};
//!
//! // Your HTTP client: send the request, return status, headers and the (capped) body.
//! fn send(_: HttpRequest) -> Result<(StatusCode, HeaderMap, Vec<u8>), TransportError> {
//!     let body = br#"{"access_token":"mF_9.B5f-4.1JqM","token_type":"Bearer","expires_in":3600}"#;
//!     Ok((StatusCode::OK, HeaderMap::new(), body.to_vec()))
//! }
//!
//! let config = Config::builder()
//!     .token_url("https://auth.example.com/oauth2/token")
//!     .client_id("my-service")
//!     .client_secret("s3cr3t")
//!     .build()?;
//! let clock = WallClock::new(Instant::now(), SystemTime::now());
//! let mut session = Session::new(config.default_request(), Policy::default(), clock, 0x5eed);
//!
//! let token = loop {
//!     match session.poll(Instant::now()) {
//!         Action::Ready(token) => break token,
//!         Action::Send { id, request, .. } => {
//!             let outcome = match send(request) {
//!                 Ok((status, headers, body)) => {
//!                     session.handle_response(Instant::now(), id, status, &headers, &body)
//!                 }
//!                 Err(error) => session.handle_failure(Instant::now(), id, Failure::Transport(error)),
//!             };
//!             assert!(outcome.changed()); // a threaded driver wakes its waiters here
//!         }
//!         // Single-threaded here, so nobody else can be fetching; a real driver waits on
//!         // a condition variable with this deadline.
//!         Action::Wait(_until) => unreachable!(),
//!         Action::Failed(error) => return Err(error.into()),
//!     }
//! };
//! assert_eq!(token.access_token().expose_secret(), "mF_9.B5f-4.1JqM");
//! assert_eq!(session.counters().fetches_started, 1);
//! # Ok::<_, Box<dyn std::error::Error>>(())
//! ```
//!
//! # Sharing tokens between processes
//!
//! A fleet shares tokens through a store (Redis, for example) with the same session: the
//! caller that gets [`Action::Send`] first looks in the store. A stored token that
//! [`Session::would_adopt`] accepts (usable, later than the token held, not the one last
//! invalidated) answers the request: report it with [`Session::handle_shared_token`] and
//! nothing is sent. Otherwise the caller sends as usual and writes the token it gets to
//! the store, where it can be kept for [`Policy::usable_lifetime`]. A token is stored with
//! [`Token::storable`] and read back with `serde` (its absolute `issued_at` and lifetime make
//! it meaningful in another process); the store's key is derived from
//! [`crate::CacheKey`], which never holds the secret.
//!
//! # States
//!
//! The state is an enum that owns its data; every deadline is derived from it. `current` is
//! a still-valid token that keeps being served while a refresh is in flight or backing off.
//! A token whose usable life ends is dropped from any state (the transitions to `Empty`, or
//! to `current: None`, are left out below).
//!
//! ```text
//!                            poll: Send { current } at refresh_at
//!                    +--------------------------------------------------+
//!                    |                                                  |
//!                    v                                                  |
//!  +-------+  poll: Send  +-------------------+   response: token   +---------------+
//!  | Empty | -----------> | Fetching          | ------------------> | Valid         |
//!  +-------+              |   id, sent_at,    |                     |   token,      |
//!      ^                  |   deadline,       | ------------------> |   refresh_at, |
//!      |                  |   current         |  abandoned, or      |   usable_until|
//!      |                  +-------------------+  deadline passed,   |   expires_at  |
//!      |                    |   ^     |     ^    current not due    +---------------+
//!      |   error, transport |   |     +-----+                               ^
//!      |   error, token     |   |  deadline passed:                        |
//!      |   expired on       |   |  Send again, new id                      |
//!      |   arrival          v   |                                          |
//!      |                  +-------------------+  poll after until,         |
//!      |                  | BackingOff        |  current not due           |
//!      |                  |   until, error,   | ---------------------------+
//!      |                  |   current         |
//!      |                  +-------------------+
//!      |                    poll after until: Send (with current, if any)
//!      |
//!      +---- from Valid: invalidate(the token), or its usable life is over;
//!            from Fetching: abandoned without a current token;
//!            from BackingOff: reset_backoff without a current token
//! ```
//!
//! Two more edges: `invalidate` of a token rejected early, after three such rejections in a
//! row, goes from `Valid` to `BackingOff` (see [Failures](#failures)); `reset_backoff` goes
//! from `BackingOff` to `Valid` when a token is still held.
//!
//! What [`Session::poll`] returns in each state:
//!
//! | state | valid `current` token | no valid token |
//! | --- | --- | --- |
//! | `Empty` | — | `Send` |
//! | `Valid` | `Ready`, or `Send { current }` from `refresh_at` on | `Send` |
//! | `Fetching` | `Ready`; from `deadline` on, `Send { current }` if the refresh is due | `Wait(deadline)`; from `deadline` on, `Send` |
//! | `BackingOff` | `Ready`; from `until` on, `Send { current }` if the refresh is due | `Failed(error)`; from `until` on, `Send` |
//!
//! # Refresh ahead and expiry
//!
//! Expiry counts from the moment the request was *sent* (`sent_at`), which errs on the safe
//! side. With lifetime `L` and margin `M` ([`Policy::expiry_margin`]), a token is *usable*
//! for `U = max(L − M, min(L, M))` after `sent_at`: the full margin when `L ≥ 2M`, a reduced
//! one when `M < L < 2M` (the usable life never drops below `M`), and no margin at all when
//! `L ≤ M`, so a 5 s token is still served for its 5 s rather than never. Such tokens are
//! counted in [`Counters::short_lifetimes`]. `Ready` never hands out a token past its usable
//! life. A token without a lifetime (the configuration's
//! [`crate::MissingLifetime::NeverExpires`]) is kept until it is invalidated.
//!
//! The refresh starts at `R = U × refresh_ratio` after `sent_at`, or earlier when the server
//! sent `refresh_in` (honoured down to `U / 4`), moved earlier by a random fraction of up to
//! `refresh_jitter` of itself, and never sooner than one second (or `U / 2`, if shorter). The
//! still-valid token keeps being served until the refresh lands; if it fails, until the token's
//! usable life ends. With the defaults:
//!
//! | lifetime | usable | refresh starts between | left for retries |
//! | --- | --- | --- | --- |
//! | 5 s | 5 s | 3.6 s and 4 s | ≥ 1 s |
//! | 30 s | 20 s | 14.4 s and 16 s | ≥ 4 s |
//! | 1 h | 59 min 50 s | 43 min 5 s and 47 min 52 s | ≥ 11 min 58 s |
//! | 24 h | 23 h 59 min 50 s | 17 h 16 min and 19 h 12 min | ≥ 4 h 47 min |
//!
//! # Failures
//!
//! One fetch has one outcome, shared by every caller that waited for it: each gets the same
//! [`TokenError`] as [`Action::Failed`]. The session then backs off until a deadline (see
//! [`Session::poll_timeout`] and [`Session::next_refresh`]); until then, `poll` returns
//! `Ready` with a still-valid token, or the same `Failed` to everyone, and never `Send`.
//!
//! - A retryable error ([`TokenError::is_retryable`]) after `n` consecutive failures waits a
//!   random time in `[1 ms, min(max_backoff, initial_backoff × 2ⁿ⁻¹)]` ("full jitter").
//! - An error that asking again will not fix waits at least [`Policy::rejection_cooldown`].
//! - A `Retry-After` up to [`Policy::max_retry_after`] (10 minutes by default) is never
//!   undercut: the wait is at least what the server asked. A longer one is cut to that cap,
//!   so that one bogus header (a load balancer answering 503 with `Retry-After: 31536000`)
//!   cannot stop the client for a year. The error handed to callers keeps the server's own
//!   value.
//! - A successful response whose token has already expired (its lifetime is shorter than
//!   the time the response took) is a failure: an [`TokenError::InvalidResponse`] with
//!   [`crate::ResponseProblem::ExpiredOnArrival`], which is not retryable, so the cool-down
//!   applies rather than a request loop.
//!
//! [`Session::force_refresh`] and [`Session::invalidate`] do not cut a backoff short either:
//! the server's `Retry-After` outranks the caller's wish for a new token. An operator who
//! knows better (the endpoint is fixed) ends a backoff or cool-down with
//! [`Session::reset_backoff`] (or [`Cache::reset_backoff`] for every key): the next poll
//! sends.
//!
//! A resource server that rejects every token (the wrong audience, say) would turn every call
//! into a token request: [`Session::invalidate`], then a poll that sends at once. So a token
//! rejected within [`Policy::early_rejection_window`] (30 s) of the session taking it counts
//! as rejected *early*, and the count runs across the tokens fetched to replace each other.
//! The first three early rejections in a row are answered with a new token at once (a key
//! rotation, and a middleware's single retry after a 401, rely on that). The fourth and every
//! later one is a failure for backoff purposes: the token is dropped, the session backs off
//! for `initial_backoff`, doubling with each further early rejection up to `max_backoff`
//! (full jitter, as above), and callers meanwhile get
//! [`TokenError::RejectedByResource`] rather than a token request. A rejection of a token
//! older than the window, or a token that lived until a regular refresh replaced it, starts
//! the count over, so a healthy service that sees a 401 now and then always refetches at
//! once.
//!
//! # Policy defaults
//!
//! | field | default | why |
//! | --- | --- | --- |
//! | [`refresh_ratio`](Policy::refresh_ratio) | 0.8 | Leaves a fifth of the usable life (12 min of a 1 h token, 4 s of a 30 s token) for the refresh and its retries, while fetching at most 1.4× as often as the bare minimum. |
//! | [`refresh_jitter`](Policy::refresh_jitter) | 0.1 | Spreads the refreshes of a fleet started together over a tenth of the refresh delay (about 5 min for a 1 h token), so the token endpoint sees no synchronised wave. |
//! | [`expiry_margin`](Policy::expiry_margin) | 10 s | Covers the trip to the resource server and modest clock skew; the same value as Go's `golang.org/x/oauth2` `expiryDelta`. It matters only when refreshes fail, since the refresh starts far earlier. |
//! | [`request_timeout`](Policy::request_timeout) | 30 s | A backstop for a driver that loses a request: transports time out sooner (the adapters use 10–15 s), yet a stuck request holds the single flight for no longer than a short outage. |
//! | [`initial_backoff`](Policy::initial_backoff) | 1 s | Long enough not to hammer a failing endpoint, short enough that a blip costs a caller about half a second on average. |
//! | [`max_backoff`](Policy::max_backoff) | 60 s | Bounds a fleet of 1 000 instances to about 33 requests per second against a down endpoint (one request per key per 30 s on average), while recovery is noticed within a minute. |
//! | [`rejection_cooldown`](Policy::rejection_cooldown) | 30 s | `invalid_client` and friends do not heal by retrying; two requests a minute at most, yet an operator's fix (a re-enabled client, a granted scope) is picked up within half a minute. |
//! | [`max_retry_after`](Policy::max_retry_after) | 10 min | Long enough for every real throttling answer (Entra ID and Auth0 ask for seconds to a few minutes), short enough that a bogus header from a WAF or load balancer (a day, a year) costs at most ten minutes, not the service. |
//! | [`early_rejection_window`](Policy::early_rejection_window) | 30 s | A resource server that will not take a token rejects it at its first use, within a round trip of the fetch: 30 s catches that with a wide margin (a slow first call, a queue). A token that served for longer was evidently accepted, so its rejection is news (a key rotation, a revocation) and is answered with a new token at once. |
//! | [`max_keys`](Policy::max_keys) | 1024 | A [`Cache`] entry costs about a kilobyte with its token; a thousand shapes is more than any real client has (a scope set per downstream API), yet a service that builds shapes from request input stays within a megabyte. |
//! | [`idle_eviction`](Policy::idle_eviction) | 1 h | A shape not used for an hour is likely gone for good (a tenant that left, a one-off job); one used hourly pays one token request per use. |

mod cache;
mod challenge;
mod clock;
mod policy;
mod rng;
mod slot;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use http::{HeaderMap, StatusCode};

use crate::error::{ResponseProblem, TokenError, TransportError};
use crate::request::{HttpRequest, TokenRequest};
use crate::secret::AccessToken;
use crate::token::Token;

pub use cache::{Cache, Event, Lookup, ResourceVerdict, StoreQuery};
pub use clock::WallClock;
pub use policy::Policy;
pub use slot::TokenSlot;

use policy::{FREE_EARLY_REJECTIONS, MIN_DELAY, MIN_REFRESH_DELAY, fraction};
use rng::Rng;

/// Identifies one sent request, so that its outcome can be matched to it. Outcomes reported
/// with an id that is not the one in flight (stale, unknown, or from another session) are
/// ignored. Unique within a [`Session`] and across all sessions of one [`Cache`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RequestId(u64);

impl RequestId {
    /// The id as a number, for logs.
    #[must_use]
    pub fn as_u64(self) -> u64 {
        self.0
    }
}

/// The source of request ids, shared by the sessions of one [`Cache`].
#[derive(Clone, Debug, Default)]
pub(crate) struct IdSource(Arc<AtomicU64>);

impl IdSource {
    fn next(&self) -> RequestId {
        // Only uniqueness matters; `&mut Session` already orders the calls.
        RequestId(self.0.fetch_add(1, Ordering::Relaxed).wrapping_add(1))
    }
}

/// What a caller of [`Session::poll`] must do next.
///
/// Exhaustive on purpose: a driver must handle every output, so a new variant would be a
/// breaking change.
#[derive(Debug)]
#[must_use]
pub enum Action {
    /// A valid token: use it.
    Ready(Arc<Token>),
    /// Send this request and report the outcome, exactly once, with
    /// [`Session::handle_response`] or [`Session::handle_failure`]. No other caller gets a `Send` meanwhile (until the
    /// request's deadline, [`Policy::request_timeout`], passes).
    Send {
        /// The id to report the outcome with.
        id: RequestId,
        /// The request.
        request: HttpRequest,
        /// `Some(still-valid token)` when this is a refresh ahead of expiry: the caller may
        /// use it right away and complete the refresh in the background.
        current: Option<Arc<Token>>,
    },
    /// Another caller's request is in flight and no valid token is held: wait until the
    /// session changes (an outcome is reported) or until this instant (the request's
    /// deadline), whichever comes first, then poll again. Always after the `now` of the
    /// `poll` that returned it.
    Wait(Instant),
    /// The last fetch failed (or resource servers kept rejecting fresh tokens:
    /// [`TokenError::RejectedByResource`]) and no valid token is held. The session backs off
    /// until [`Session::poll_timeout`]; every caller that waited for that fetch, and every
    /// caller until the backoff ends, gets this same error.
    Failed(TokenError),
}

/// How a request ended without a response, reported with [`Session::handle_failure`] (or
/// [`Cache::handle_failure`]): one input for every way a fetch can end unanswered.
#[derive(Debug)]
#[non_exhaustive]
pub enum Failure {
    /// The transport failed: connect, TLS, timeout, I/O.
    Transport(TransportError),
    /// The transport decided on an error of its own, such as [`TokenError::TooLarge`] when it
    /// stopped reading a body at the cap (see [`crate::BodyBuffer`]).
    Error(TokenError),
    /// The sender gave up without an outcome: its future was dropped, its thread unwound,
    /// no thread or task could be started for it. Not a failure: the next poll may send at
    /// once.
    Abandoned,
}

impl From<TransportError> for Failure {
    fn from(error: TransportError) -> Self {
        Self::Transport(error)
    }
}

impl From<TokenError> for Failure {
    fn from(error: TokenError) -> Self {
        Self::Error(error)
    }
}

/// What an input did, returned by [`Session::handle_response`] and
/// [`Session::handle_failure`], so that a driver wakes its waiters only when something
/// changed ([`Outcome::changed`]) and logs the verdict without reading counters.
#[derive(Clone, Debug)]
#[must_use = "wake the waiters when it changed something"]
pub enum Outcome {
    /// The report was for a request that is not in flight (stale, unknown, replaced): nothing
    /// changed.
    Ignored,
    /// A token was fetched and is now served.
    Token(Arc<Token>),
    /// The fetch failed; every waiter gets this error, and the session backs off.
    Failed(TokenError),
    /// The request ended without an outcome ([`Failure::Abandoned`]); the next poll may send.
    Abandoned,
    /// The server asked for the same request again at once: a DPoP client's token request
    /// answered `use_dpop_nonce` with a `DPoP-Nonce` (RFC 9449 §8). The next poll sends it,
    /// with the nonce in a fresh proof; this happens once per fetch.
    Retry,
}

impl Outcome {
    /// Whether the session changed, so that waiting callers should poll again.
    #[must_use]
    pub fn changed(&self) -> bool {
        !matches!(self, Self::Ignored)
    }
}

/// A background refresh to send, from the timer input ([`Session::handle_timeout`],
/// [`Cache::poll_refresh`]). Report its outcome like any other request; the still-valid
/// token keeps being served meanwhile.
#[derive(Debug)]
#[must_use = "a refresh must be sent and reported, or the session waits for its deadline"]
pub struct Refresh {
    /// The id to report the outcome with.
    pub id: RequestId,
    /// The request.
    pub request: HttpRequest,
}

/// Counts, for logs and metrics: plain numbers, `Copy`. Read with [`Session::counters`]; the
/// last error and the next refresh have their own getters ([`Session::last_error`],
/// [`Session::next_refresh`]).
///
/// `fetches_started` equals `fetches_succeeded + fetches_failed + fetches_abandoned +
/// fetches_timed_out + fetches_shared`, plus one while a request is in flight.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Counters {
    /// Requests handed out as [`Action::Send`].
    pub fetches_started: u64,
    /// Requests that produced a token.
    pub fetches_succeeded: u64,
    /// Requests that failed: an error response, a transport error, or a token that had
    /// expired on arrival.
    pub fetches_failed: u64,
    /// Requests whose sender gave up ([`Failure::Abandoned`]); not failures.
    pub fetches_abandoned: u64,
    /// Requests answered, without being sent, by a token another process fetched
    /// ([`Session::handle_shared_token`]).
    pub fetches_shared: u64,
    /// Requests that reached their deadline without any report and were replaced by a new
    /// one. A non-zero value points at a driver that loses requests.
    pub fetches_timed_out: u64,
    /// Polls answered with [`Action::Ready`] from the cache. Through a
    /// [`Cache`], also the reads served by an attached
    /// [`TokenSlot`]; those are counted without a shared write, so under
    /// contention the figure is a lower bound.
    pub cache_hits: u64,
    /// Tokens taken over with [`Session::adopt`].
    pub tokens_adopted: u64,
    /// Tokens dropped by [`Session::invalidate`].
    pub invalidations: u64,
    /// Invalidations that started a backoff because resource servers kept rejecting fresh
    /// tokens ([`TokenError::RejectedByResource`]); also counted in `invalidations`.
    pub invalidations_throttled: u64,
    /// Tokens too short-lived for the full [`Policy::expiry_margin`] (a lifetime under twice
    /// the margin): they were served with a smaller margin, or none. A provider issuing such
    /// tokens costs many token requests.
    pub short_lifetimes: u64,
    /// Outcomes reported with an id that was not the one in flight, and ignored.
    pub ignored_reports: u64,
    /// Failures since the last success (0 when healthy, and after
    /// [`Session::reset_backoff`]); drives the backoff.
    pub consecutive_failures: u32,
    /// Background refreshes started by [`Session::handle_timeout`] (also counted in
    /// `fetches_started`; never in `cache_hits`).
    pub background_refreshes: u64,
    /// Hits (also counted in `cache_hits`) that served a token whose refresh is overdue
    /// because fetches fail: an outage of the token endpoint that the still-valid token
    /// bridges. Through a [`Cache`], also such reads of an attached [`TokenSlot`].
    pub stale_hits: u64,
    /// Token requests sent again at once because the server asked for its DPoP nonce
    /// (`use_dpop_nonce`, RFC 9449 §8); part of the fetch they retry, not counted in
    /// `fetches_started`.
    pub dpop_nonce_retries: u64,
    /// Callers' polls that found no valid token to serve: answered with [`Action::Wait`]
    /// (another caller's request is in flight) or with an [`Action::Send`] that carries no
    /// current token (the caller sends and waits). Each is a caller waiting on the token
    /// endpoint (one that waits long may count more than once); a cold start counts one per
    /// caller, a refresh ahead of expiry none.
    pub polls_without_token: u64,
}

impl Counters {
    /// Adds `other` to these counters, field by field (for totals over request shapes).
    pub fn add(&mut self, other: &Counters) {
        let Counters {
            fetches_started,
            fetches_succeeded,
            fetches_failed,
            fetches_abandoned,
            fetches_shared,
            fetches_timed_out,
            cache_hits,
            tokens_adopted,
            invalidations,
            invalidations_throttled,
            short_lifetimes,
            ignored_reports,
            consecutive_failures,
            background_refreshes,
            stale_hits,
            dpop_nonce_retries,
            polls_without_token,
        } = *other;
        self.fetches_started += fetches_started;
        self.fetches_succeeded += fetches_succeeded;
        self.fetches_failed += fetches_failed;
        self.fetches_abandoned += fetches_abandoned;
        self.fetches_shared += fetches_shared;
        self.fetches_timed_out += fetches_timed_out;
        self.cache_hits += cache_hits;
        self.tokens_adopted += tokens_adopted;
        self.invalidations += invalidations;
        self.invalidations_throttled += invalidations_throttled;
        self.short_lifetimes += short_lifetimes;
        self.ignored_reports += ignored_reports;
        self.consecutive_failures = self.consecutive_failures.max(consecutive_failures);
        self.background_refreshes += background_refreshes;
        self.polls_without_token += polls_without_token;
        self.stale_hits += stale_hits;
        self.dpop_nonce_retries += dpop_nonce_retries;
    }
}

/// A held token with its schedule, all derived once from the lifetime, the policy and the
/// moment the request was sent. `None` means never.
#[derive(Clone, Debug)]
struct Held {
    token: Arc<Token>,
    refresh_at: Option<Instant>,
    usable_until: Option<Instant>,
    expires_at: Option<Instant>,
    /// When the session took the token: a rejection within
    /// [`Policy::early_rejection_window`] of this is early.
    taken_at: Instant,
    /// Early rejections in a row just before this token was taken (it replaces the last
    /// token so rejected); 0 after a regular refresh.
    rejection_streak: u32,
}

impl Held {
    fn usable(&self, now: Instant) -> bool {
        self.usable_until.is_none_or(|until| now < until)
    }

    fn refresh_due(&self, now: Instant) -> bool {
        self.refresh_at.is_some_and(|at| now >= at)
    }

    /// Whether `self` expires strictly later than `other` (never is latest).
    fn outlives(&self, other: &Held) -> bool {
        expires_later(self.expires_at, other.expires_at)
    }
}

/// Whether expiry `a` is strictly later than expiry `b`; `None` is never, the latest.
fn expires_later(a: Option<Instant>, b: Option<Instant>) -> bool {
    match (a, b) {
        (None, Some(_)) => true,
        (Some(a), Some(b)) => a > b,
        (_, None) => false,
    }
}

/// The state of a session; it owns its data, and deadlines are derived from it.
#[derive(Clone, Debug)]
enum State {
    /// No token and nothing in flight.
    Empty,
    /// A request is in flight; `current` is a token still served meanwhile.
    Fetching {
        id: RequestId,
        sent_at: Instant,
        /// After this, the request counts as lost. `None`: beyond representable time.
        deadline: Option<Instant>,
        current: Option<Held>,
    },
    /// A token is held and nothing is in flight.
    Valid(Held),
    /// The last fetch failed, or resource servers kept rejecting fresh tokens; no request
    /// before `until` (`None`: beyond what `Instant` can represent).
    BackingOff {
        until: Option<Instant>,
        error: TokenError,
        current: Option<Held>,
    },
}

/// The token lifecycle of one request shape: cache, single flight, refresh ahead, backoff.
///
/// See the [module documentation](self) for the driving loop, the states and the policy.
/// `Session` is `Send + Sync`; drivers share it behind a mutex and never hold that mutex
/// across I/O.
///
/// Methods, by family:
/// - getters: [`request`](Self::request), [`policy`](Self::policy),
///   [`current_token`](Self::current_token), [`in_flight`](Self::in_flight),
///   [`counters`](Self::counters), [`poll_timeout`](Self::poll_timeout),
///   [`would_adopt`](Self::would_adopt);
/// - inputs: [`handle_response`](Self::handle_response),
///   [`handle_failure`](Self::handle_failure), [`handle_timeout`](Self::handle_timeout),
///   [`handle_shared_token`](Self::handle_shared_token), [`invalidate`](Self::invalidate),
///   [`force_refresh`](Self::force_refresh), [`reset_backoff`](Self::reset_backoff),
///   [`adopt`](Self::adopt);
/// - output: [`poll`](Self::poll).
///
/// `now` may come from different threads and so arrive slightly out of order; the session
/// never panics on that, and every deadline it returns lies after the `now` it was given.
#[derive(Debug)]
pub struct Session {
    request: TokenRequest,
    policy: Policy,
    clock: WallClock,
    rng: Rng,
    /// The `jti`s of signed client assertions: a stream of its own, so that signing leaves
    /// the jitter as it is.
    nonces: Rng,
    ids: IdSource,
    state: State,
    counters: Counters,
    /// The most recent failure, kept after recovery.
    last_error: Option<TokenError>,
    /// The last token dropped by [`Session::invalidate`]: never adopted again, so that a
    /// shared store still holding it cannot hand it back.
    rejected: Option<AccessToken>,
    /// Early rejections in a row, handed to the next token taken (and reset by it).
    rejection_streak: u32,
    /// The token endpoint's latest `DPoP-Nonce` (RFC 9449 §8), put in every later proof.
    dpop_nonce: Option<String>,
    /// Whether the next request sent is the one retry that a `use_dpop_nonce` answer gets
    /// (set by that answer, taken by the next send).
    dpop_retry_next: bool,
    /// Whether the request in flight is that retry. Set by every send, so that a retry
    /// that ends in any way (a failure, a timeout, an adopted token) leaves the next
    /// fetch its own retry.
    dpop_retrying: bool,
}

impl Session {
    /// A session for `request`, with nothing cached. `clock` maps the driver's `Instant`s to
    /// wall-clock time for the tokens' `issued_at`; `seed` drives the jitter (give every
    /// process a different one, for example from the process id and start time, so that a
    /// fleet spreads out).
    #[must_use]
    pub fn new(request: TokenRequest, policy: Policy, clock: WallClock, seed: u64) -> Self {
        Self::with_ids(request, policy, clock, seed, IdSource::default())
    }

    pub(crate) fn with_ids(
        request: TokenRequest,
        policy: Policy,
        clock: WallClock,
        seed: u64,
        ids: IdSource,
    ) -> Self {
        Self {
            request,
            policy,
            clock,
            rng: Rng::new(seed),
            nonces: Rng::new(rng::mix(seed ^ 0x6a74_695f_6e6f_6e63)),
            ids,
            state: State::Empty,
            counters: Counters::default(),
            last_error: None,
            rejected: None,
            rejection_streak: 0,
            dpop_nonce: None,
            dpop_retry_next: false,
            dpop_retrying: false,
        }
    }

    // ---------------------------------------------------------------------------------
    // Getters
    // ---------------------------------------------------------------------------------

    /// The latest `DPoP-Nonce` of the token endpoint, once it gave one.
    pub(crate) fn dpop_nonce(&self) -> Option<&str> {
        self.dpop_nonce.as_deref()
    }

    /// Starts with a nonce that the token endpoint gave another session of the cache.
    pub(crate) fn seed_dpop_nonce(&mut self, nonce: &str) {
        if self.dpop_nonce.is_none() {
            self.dpop_nonce = Some(nonce.to_owned());
        }
    }

    /// The request shape this session fetches tokens for.
    #[must_use]
    pub fn request(&self) -> &TokenRequest {
        &self.request
    }

    /// The timing policy.
    #[must_use]
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The held token if it is still usable at `now`, without counting a cache hit and
    /// without starting anything. For logging, or to serve a caller that must not wait.
    #[must_use]
    pub fn current_token(&self, now: Instant) -> Option<&Arc<Token>> {
        self.held().filter(|h| h.usable(now)).map(|h| &h.token)
    }

    /// The id of the request in flight, if any.
    #[must_use]
    pub fn in_flight(&self) -> Option<RequestId> {
        match &self.state {
            State::Fetching { id, .. } => Some(*id),
            _ => None,
        }
    }

    /// Counters, for logs and metrics.
    #[must_use]
    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// The most recent failure, kept after recovery (a later success does not clear it).
    #[must_use]
    pub fn last_error(&self) -> Option<&TokenError> {
        self.last_error.as_ref()
    }

    /// When the session will next try to get a token: the refresh point of the held token,
    /// or the end of the current backoff. `None` while a request is in flight, when no
    /// token is held (the next poll sends), or when the token never needs refreshing.
    #[must_use]
    pub fn next_refresh(&self) -> Option<Instant> {
        match &self.state {
            State::Empty | State::Fetching { .. } => None,
            State::Valid(h) => h.refresh_at,
            State::BackingOff { until, .. } => *until,
        }
    }

    /// The next instant at which [`Session::poll`] may return something new without any
    /// input: the refresh point or the end of the held token's usable life, the end of a
    /// backoff, or the deadline of the request in flight. `None` when only an input can
    /// change anything (or when nothing is held, so the next poll sends anyway).
    ///
    /// After a `poll(now)`, this is `None` or strictly after `now`: a driver that sleeps
    /// until it never spins.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let usable_until = self.held().and_then(|h| h.usable_until);
        let own = match &self.state {
            State::Empty => None,
            State::Valid(h) => h.refresh_at,
            State::Fetching { deadline, .. } => *deadline,
            State::BackingOff { until, .. } => *until,
        };
        match (own, usable_until) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The token that [`Session::poll`] serves at `now` without changing anything (no state
    /// change, no event, only a hit counted), and the instant until which it keeps doing so
    /// if no input arrives (`None`: no end). `None` when a poll at `now` would do anything
    /// else: send, wait, fail, or start a refresh.
    ///
    /// This is what a [`TokenSlot`] publishes for the lock-free hit path.
    #[must_use]
    pub fn serving(&self, now: Instant) -> Option<(&Arc<Token>, Option<Instant>)> {
        let held = self.held()?;
        // With a token held, `poll_timeout` is the end of its window: its refresh point
        // (`Valid`), the deadline of the request in flight, or the end of the backoff, and
        // never after the end of its usable life.
        let until = self.poll_timeout();
        (held.usable(now) && until.is_none_or(|until| now < until)).then_some((&held.token, until))
    }

    /// The token held at `now` while it is still usable, and until when it is (`None`: no
    /// end), whatever a poll would do with it: with [`Session::serving`] `None`, this is the
    /// token that a poll would still serve while it starts its refresh.
    #[must_use]
    pub(crate) fn usable(&self, now: Instant) -> Option<(&Arc<Token>, Option<Instant>)> {
        let held = self.held()?;
        held.usable(now).then_some((&held.token, held.usable_until))
    }

    /// Whether [`Session::adopt`] would take `token` at `now`: it is usable at `now` (by this
    /// session's [`Policy::expiry_margin`]), it expires later than the token held, and it is
    /// not the token last dropped by [`Session::invalidate`]. A driver that reads a shared
    /// store asks this to decide between taking the stored token and fetching a new one.
    #[must_use]
    pub fn would_adopt(&self, now: Instant, token: &Token) -> bool {
        if self.is_rejected(token)
            || self
                .request
                .config()
                .check_stored(&self.policy, self.clock.at(now), token)
                .is_err()
        {
            return false;
        }
        let (usable_until, expires_at) = match token.lifetime() {
            None => (None, None),
            Some(lifetime) => {
                let elapsed = self.clock.elapsed_since(now, token.issued_at());
                let at = |offset: Duration| match offset.checked_sub(elapsed) {
                    None => Some(now),
                    Some(ahead) => now.checked_add(ahead),
                };
                (at(self.policy.usable_lifetime(lifetime)), at(lifetime))
            }
        };
        let usable = usable_until.is_none_or(|until| now < until);
        let held = self.held().filter(|h| h.usable(now));
        usable && held.is_none_or(|h| expires_later(expires_at, h.expires_at))
    }

    // ---------------------------------------------------------------------------------
    // Inputs
    // ---------------------------------------------------------------------------------

    /// Reports the response to request `id`: status, headers and the whole (capped) body.
    /// Ignored unless `id` is the request in flight; a response that arrives after the
    /// request's deadline is still taken, until a poll has replaced the request. The token's
    /// expiry counts from when the request was sent.
    pub fn handle_response(
        &mut self,
        now: Instant,
        id: RequestId,
        status: StatusCode,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Outcome {
        let Some((sent_at, current)) = self.take_in_flight(now, id) else {
            return Outcome::Ignored;
        };
        let issued_at = self.clock.at(sent_at);
        let parsed = self
            .request
            .parse_response(issued_at, status, headers, body);
        if self.request.config().has_dpop() {
            // A nonce is visible ASCII (RFC 9449 §8: 1*NQCHAR), bounded.
            let fresh = crate::resource::server_nonce(headers)
                .filter(|n| self.dpop_nonce.as_deref() != Some(*n));
            let learned = fresh.is_some();
            if let Some(nonce) = fresh {
                self.dpop_nonce = Some(nonce.to_owned());
            }
            let asks_nonce = matches!(&parsed, Err(e) if e.oauth_code().is_some_and(|c| c.as_str() == "use_dpop_nonce"));
            // Only for a new nonce: the same one again would be refused again.
            let retry = asks_nonce && learned && !self.dpop_retrying;
            if retry {
                self.dpop_retry_next = true;
                self.counters.dpop_nonce_retries += 1;
                // RFC 9449 §8: the server wants its nonce in the proof. One new request at
                // once, with a fresh proof; a second refusal is a failure like any other.
                self.state = current.map_or(State::Empty, State::Valid);
                return Outcome::Retry;
            }
        }
        match parsed {
            Ok(token) => {
                let elapsed = now.saturating_duration_since(sent_at);
                let (held, short) = self.hold(now, elapsed, Arc::new(token));
                if held.usable(now) {
                    self.counters.fetches_succeeded += 1;
                    self.counters.consecutive_failures = 0;
                    self.counters.short_lifetimes += u64::from(short);
                    let held = self.take_streak(held);
                    let token = Arc::clone(&held.token);
                    self.state = State::Valid(held);
                    Outcome::Token(token)
                } else {
                    let error = TokenError::InvalidResponse {
                        status,
                        content_type: crate::response::content_type(headers),
                        problem: ResponseProblem::ExpiredOnArrival,
                        excerpt: None,
                    };
                    self.fail(now, error, current)
                }
            }
            Err(error) => self.fail(now, error, current),
        }
    }

    /// Reports that request `id` ended without a response: see [`Failure`] (a transport
    /// error, an error the transport decided on its own such as a body over the cap, or a
    /// sender that gave up). A transport error or an error is a failure shared by every
    /// waiter, and the backoff follows [`TokenError::is_retryable`] and
    /// [`TokenError::retry_after`]; an abandoned request is not a failure, and the next poll
    /// may send again at once. Ignored unless `id` is the request in flight.
    pub fn handle_failure(&mut self, now: Instant, id: RequestId, failure: Failure) -> Outcome {
        let Some((_, current)) = self.take_in_flight(now, id) else {
            return Outcome::Ignored;
        };
        match failure {
            Failure::Transport(error) => self.fail(now, TokenError::Transport(error), current),
            Failure::Error(error) => self.fail(now, error, current),
            Failure::Abandoned => {
                self.counters.fetches_abandoned += 1;
                self.state = current.map_or(State::Empty, State::Valid);
                Outcome::Abandoned
            }
        }
    }

    /// The timer input, for a driver that refreshes in the background: at or after
    /// [`Session::poll_timeout`], starts the refresh of a still-valid token if it is due, and
    /// returns the request to send (reported like any other). It never counts a cache hit
    /// and never fetches for a session that holds no valid token (no caller is waiting for
    /// one; the next caller's poll sends). `None`: nothing is due.
    pub fn handle_timeout(&mut self, now: Instant) -> Option<Refresh> {
        self.prune(now);
        self.held()?;
        match self.poll_counting(now, false) {
            Action::Send { id, request, .. } => {
                // A nonce retry of a refresh is the same refresh.
                self.counters.background_refreshes += u64::from(!self.dpop_retrying);
                Some(Refresh { id, request })
            }
            Action::Ready(_) | Action::Wait(_) | Action::Failed(_) => None,
        }
    }

    /// Reports that request `id` need not be sent: `token`, fetched by another process for
    /// this request shape (read from a shared store), answers it.
    ///
    /// If the session would adopt the token ([`Session::would_adopt`]), the request ends
    /// unsent, the token is held as with [`Session::adopt`] (every waiter gets it), and
    /// `true` is returned; the request counts in [`Counters::fetches_shared`]. Otherwise
    /// nothing changes and `false` is returned: the request stays in flight, and the caller
    /// sends it as usual. With an `id` that is not the request in flight, this is
    /// [`Session::adopt`].
    ///
    /// The caller is responsible for reporting only tokens fetched for this session's
    /// [`crate::CacheKey`].
    pub fn handle_shared_token(&mut self, now: Instant, id: RequestId, token: Arc<Token>) -> bool {
        if self.in_flight() != Some(id) {
            self.counters.ignored_reports += 1;
            return self.adopt(now, token);
        }
        if !self.would_adopt(now, &token) {
            return false;
        }
        let Some((_, current)) = self.take_in_flight(now, id) else {
            return false;
        };
        self.counters.fetches_shared += 1;
        self.state = current.map_or(State::Empty, State::Valid);
        // Checked above with the same `now`, so this takes it.
        self.adopt(now, token)
    }

    /// A resource server rejected `rejected` (a 401): drops the held token if, and only if,
    /// it is that token and still usable, and returns whether it did. A token that was
    /// already replaced is left alone, so a burst of 401s for an old token does not throw
    /// away the new one. A backoff in progress is not cut short. The session remembers the
    /// dropped token and never adopts it again ([`Session::adopt`]), so that a shared store
    /// that still holds it cannot hand it back.
    ///
    /// Normally the next poll sends. But when this is the fourth token in a row rejected
    /// within [`Policy::early_rejection_window`] of being taken, the session backs off
    /// instead (`initial_backoff`, doubling with each further one, up to `max_backoff`), and
    /// until then polls return [`Action::Failed`] with [`TokenError::RejectedByResource`]: a
    /// resource server that rejects every token costs a handful of token requests, not one
    /// per call. See [Failures](self#failures).
    pub fn invalidate(&mut self, now: Instant, rejected: &AccessToken) -> bool {
        self.prune(now);
        let Some(held) = self.held().filter(|h| h.token.access_token() == rejected) else {
            return false;
        };
        let early =
            now.saturating_duration_since(held.taken_at) < self.policy.early_rejection_window;
        let streak = if early {
            held.rejection_streak.saturating_add(1)
        } else {
            0
        };
        self.counters.invalidations += 1;
        self.rejected = Some(rejected.clone());
        self.rejection_streak = streak;
        match &mut self.state {
            State::Valid(_) if streak > FREE_EARLY_REJECTIONS => {
                self.counters.invalidations_throttled += 1;
                let error = TokenError::RejectedByResource { attempts: streak };
                self.last_error = Some(error.clone());
                let delay = self.backoff(streak - FREE_EARLY_REJECTIONS);
                self.state = State::BackingOff {
                    until: now.checked_add(delay),
                    error,
                    current: None,
                };
            }
            State::Valid(_) => self.state = State::Empty,
            // A request in flight or a backoff already decides when the next request goes.
            State::Fetching { current, .. } | State::BackingOff { current, .. } => {
                *current = None;
            }
            State::Empty => {}
        }
        true
    }

    /// Asks for a new token: the next poll sends (unless a request is already in flight, or
    /// the session is backing off: then when the backoff ends), and the held token keeps
    /// being served meanwhile.
    ///
    /// Returns whether a token was held (and so marked due).
    pub fn force_refresh(&mut self, now: Instant) -> bool {
        self.prune(now);
        let Some(held) = self.held_mut() else {
            return false;
        };
        held.refresh_at = Some(held.refresh_at.map_or(now, |at| at.min(now)));
        true
    }

    /// For operators: ends a backoff or cool-down now, whatever its cause (a `Retry-After`,
    /// a rejection, resource servers rejecting fresh tokens), and returns whether there was
    /// one. The next poll sends, unless a still-valid token is held that needs no refresh
    /// yet (then it is served). The failure history is forgotten too: a new failure backs
    /// off from [`Policy::initial_backoff`] again, and the count of early rejections starts
    /// over. A request in flight is left alone. [`Session::last_error`] keeps the error.
    pub fn reset_backoff(&mut self, now: Instant) -> bool {
        self.prune(now);
        self.counters.consecutive_failures = 0;
        self.rejection_streak = 0;
        if let Some(held) = self.held_mut() {
            held.rejection_streak = 0;
        }
        let state = std::mem::replace(&mut self.state, State::Empty);
        let ended = matches!(state, State::BackingOff { .. });
        self.state = match state {
            State::BackingOff { current, .. } => current.map_or(State::Empty, State::Valid),
            other => other,
        };
        ended
    }

    /// Takes over a token fetched elsewhere (another process, through a shared store) for
    /// this request shape. It is ignored, and `false` returned, if it is not usable at `now`,
    /// does not expire later than the token held, or is the token last dropped by
    /// [`Session::invalidate`] (see [`Session::would_adopt`]). A request in flight stays in
    /// flight; its token replaces the adopted one when it lands (a driver whose request a
    /// shared store answered reports [`Session::handle_shared_token`] instead).
    ///
    /// The caller is responsible for adopting only tokens fetched for this session's
    /// [`crate::CacheKey`].
    pub fn adopt(&mut self, now: Instant, token: Arc<Token>) -> bool {
        self.prune(now);
        let elapsed = self.clock.elapsed_since(now, token.issued_at());
        let (held, short) = self.hold(now, elapsed, token);
        let better = held.usable(now)
            && self.held().is_none_or(|h| held.outlives(h))
            && !self.is_rejected(&held.token);
        if !better {
            return false;
        }
        self.counters.tokens_adopted += 1;
        self.counters.short_lifetimes += u64::from(short);
        let held = self.take_streak(held);
        match &mut self.state {
            State::Empty | State::Valid(_) => self.state = State::Valid(held),
            State::Fetching { current, .. } | State::BackingOff { current, .. } => {
                *current = Some(held);
            }
        }
        true
    }

    // ---------------------------------------------------------------------------------
    // Output
    // ---------------------------------------------------------------------------------

    /// What the calling caller must do to get a token; see [`Action`]. Call it once per
    /// caller that wants a token, again after every wake-up, and from a background task at
    /// [`Session::poll_timeout`].
    #[must_use = "a `Send` must be sent and reported, or the session waits for its deadline"]
    #[inline]
    pub fn poll(&mut self, now: Instant) -> Action {
        // The cache hit, without moving the state out and back: exactly what the general
        // path below does when `serving` says so (`prune` keeps the token, the match hits).
        if let Some(token) = self.serving(now).map(|(token, _)| Arc::clone(token)) {
            self.counters.cache_hits += 1;
            self.counters.stale_hits += u64::from(self.stale(now));
            return Action::Ready(token);
        }
        self.poll_counting(now, true)
    }

    /// [`Session::poll`]'s general path; `count_hits` is false for the timer input, which
    /// serves no caller.
    fn poll_counting(&mut self, now: Instant, count_hits: bool) -> Action {
        self.prune(now);
        let state = std::mem::replace(&mut self.state, State::Empty);
        let (state, action) = match state {
            State::Empty => self.start_fetch(now, None),
            State::Valid(held) if held.refresh_due(now) => self.start_fetch(now, Some(held)),
            State::Valid(held) => {
                let action = self.hit(now, &held, count_hits);
                (State::Valid(held), action)
            }
            State::Fetching {
                deadline, current, ..
            } if deadline.is_some_and(|d| now >= d) => {
                self.counters.fetches_timed_out += 1;
                match current {
                    // A token adopted meanwhile needs no refresh yet.
                    Some(held) if !held.refresh_due(now) => {
                        let action = self.hit(now, &held, count_hits);
                        (State::Valid(held), action)
                    }
                    current => self.start_fetch(now, current),
                }
            }
            State::Fetching {
                id,
                sent_at,
                deadline,
                current,
            } => {
                let action = match &current {
                    Some(held) => self.hit(now, held, count_hits),
                    None => Action::Wait(deadline.unwrap_or_else(|| far_after(now))),
                };
                let state = State::Fetching {
                    id,
                    sent_at,
                    deadline,
                    current,
                };
                (state, action)
            }
            State::BackingOff { until, current, .. } if until.is_some_and(|u| now >= u) => {
                match current {
                    Some(held) if !held.refresh_due(now) => {
                        let action = self.hit(now, &held, count_hits);
                        (State::Valid(held), action)
                    }
                    current => self.start_fetch(now, current),
                }
            }
            State::BackingOff {
                until,
                error,
                current,
            } => {
                let action = match &current {
                    Some(held) => self.hit(now, held, count_hits),
                    None => Action::Failed(error.clone()),
                };
                let state = State::BackingOff {
                    until,
                    error,
                    current,
                };
                (state, action)
            }
        };
        self.state = state;
        if count_hits && matches!(action, Action::Wait(_) | Action::Send { current: None, .. }) {
            self.counters.polls_without_token += 1;
        }
        action
    }

    // ---------------------------------------------------------------------------------
    // Internals
    // ---------------------------------------------------------------------------------

    /// Whether the token served at `now` is stale: usable, but its refresh is overdue and
    /// fetches have failed since ([`Counters::stale_hits`]).
    pub(crate) fn stale(&self, now: Instant) -> bool {
        self.counters.consecutive_failures > 0
            && self
                .held()
                .is_some_and(|h| h.usable(now) && h.refresh_due(now))
    }

    /// When request `id`, if it is the one in flight, was sent.
    #[cfg(feature = "metrics")]
    pub(crate) fn sent_at(&self, id: RequestId) -> Option<Instant> {
        match &self.state {
            State::Fetching {
                id: expected,
                sent_at,
                ..
            } if *expected == id => Some(*sent_at),
            _ => None,
        }
    }

    /// The expiry of the token served at `now` (usable), if it has one: what a new token
    /// replacing it now replaces it ahead of.
    #[cfg(feature = "metrics")]
    pub(crate) fn served_expiry(&self, now: Instant) -> Option<Instant> {
        self.held()
            .filter(|h| h.usable(now))
            .and_then(|h| h.expires_at)
    }

    /// Whether the session backs off with no valid token to serve: a poll now fails.
    fn backing_off_without_token(&self, now: Instant) -> bool {
        match &self.state {
            State::BackingOff { until, current, .. } => {
                until.is_none_or(|u| now < u) && current.as_ref().is_none_or(|h| !h.usable(now))
            }
            _ => false,
        }
    }

    fn is_rejected(&self, token: &Token) -> bool {
        self.rejected
            .as_ref()
            .is_some_and(|r| r == token.access_token())
    }

    /// Hands the count of early rejections to `held`, the token taken next. Whether it is
    /// rejected early in its turn decides whether the count goes on; a token taken after it
    /// (a regular refresh) starts from 0.
    fn take_streak(&mut self, mut held: Held) -> Held {
        held.rejection_streak = std::mem::take(&mut self.rejection_streak);
        held
    }

    fn held(&self) -> Option<&Held> {
        match &self.state {
            State::Empty => None,
            State::Valid(h) => Some(h),
            State::Fetching { current, .. } | State::BackingOff { current, .. } => current.as_ref(),
        }
    }

    fn held_mut(&mut self) -> Option<&mut Held> {
        match &mut self.state {
            State::Empty => None,
            State::Valid(h) => Some(h),
            State::Fetching { current, .. } | State::BackingOff { current, .. } => current.as_mut(),
        }
    }

    /// Drops a held token whose usable life is over, in any state.
    fn prune(&mut self, now: Instant) {
        match &mut self.state {
            State::Valid(h) if !h.usable(now) => self.state = State::Empty,
            State::Fetching { current, .. } | State::BackingOff { current, .. }
                if current.as_ref().is_some_and(|h| !h.usable(now)) =>
            {
                *current = None;
            }
            _ => {}
        }
    }

    fn hit(&mut self, now: Instant, held: &Held, count: bool) -> Action {
        self.counters.cache_hits += u64::from(count);
        self.counters.stale_hits +=
            u64::from(count && self.counters.consecutive_failures > 0 && held.refresh_due(now));
        Action::Ready(Arc::clone(&held.token))
    }

    fn start_fetch(&mut self, now: Instant, current: Option<Held>) -> (State, Action) {
        let id = self.ids.next();
        // A `use_dpop_nonce` retry continues the fetch it retries: one start, one end.
        self.dpop_retrying = std::mem::take(&mut self.dpop_retry_next);
        if !self.dpop_retrying {
            self.counters.fetches_started += 1;
        }
        let action = Action::Send {
            id,
            // The assertion of a signed client authentication is issued now, its `jti`
            // drawn from the session's generator (other methods ignore both).
            request: self.request.to_http_sent(
                self.clock.at(now),
                self.nonces.next_u128(),
                self.dpop_nonce.as_deref(),
            ),
            current: current.as_ref().map(|h| Arc::clone(&h.token)),
        };
        let state = State::Fetching {
            id,
            sent_at: now,
            deadline: now.checked_add(self.policy.request_timeout.max(MIN_DELAY)),
            current,
        };
        (state, action)
    }

    /// If `id` is the request in flight, ends the fetch (leaving `Empty` for the caller to
    /// replace) and returns when it was sent and the still-usable current token.
    fn take_in_flight(&mut self, now: Instant, id: RequestId) -> Option<(Instant, Option<Held>)> {
        match &self.state {
            State::Fetching { id: expected, .. } if *expected == id => {}
            _ => {
                self.counters.ignored_reports += 1;
                return None;
            }
        }
        self.prune(now);
        match std::mem::replace(&mut self.state, State::Empty) {
            State::Fetching {
                sent_at, current, ..
            } => Some((sent_at, current)),
            // Checked just above.
            other => {
                self.state = other;
                None
            }
        }
    }

    fn fail(&mut self, now: Instant, error: TokenError, current: Option<Held>) -> Outcome {
        let failures = self.counters.consecutive_failures.saturating_add(1);
        self.counters.consecutive_failures = failures;
        self.counters.fetches_failed += 1;
        self.last_error = Some(error.clone());
        let mut delay = self.backoff(failures);
        if !error.is_retryable() {
            delay = delay.max(self.policy.rejection_cooldown);
        }
        if let Some(retry_after) = error.retry_after() {
            // Honoured in full up to the cap; a bogus year-long value must not stop the
            // client for a year.
            delay = delay.max(retry_after.min(self.policy.max_retry_after));
        }
        self.state = State::BackingOff {
            until: now.checked_add(delay.max(MIN_DELAY)),
            error: error.clone(),
            current: current.filter(|h| h.usable(now)),
        };
        Outcome::Failed(error)
    }

    /// Full jitter: uniform in `[1 ms, min(max, initial × 2^(failures - 1))]`.
    fn backoff(&mut self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(62);
        let ceiling = self
            .policy
            .initial_backoff
            .checked_mul(1u32 << doublings.min(31))
            .and_then(|d| d.checked_mul(1u32 << doublings.saturating_sub(31)))
            .unwrap_or(Duration::MAX)
            .min(self.policy.max_backoff);
        self.rng.duration_up_to(ceiling).max(MIN_DELAY)
    }

    /// Schedules a token that was requested `elapsed` before `now`. Returns it and whether
    /// its lifetime was too short for the full margin.
    fn hold(&mut self, now: Instant, elapsed: Duration, token: Arc<Token>) -> (Held, bool) {
        let Some(lifetime) = token.lifetime() else {
            let held = Held {
                token,
                refresh_at: None,
                usable_until: None,
                expires_at: None,
                taken_at: now,
                rejection_streak: 0,
            };
            return (held, false);
        };
        let margin = self.policy.expiry_margin;
        let usable = self.policy.usable_lifetime(lifetime);
        let short = !margin.is_zero() && lifetime < margin.saturating_mul(2);
        let mut base = fraction(usable, self.policy.refresh_ratio);
        if let Some(refresh_in) = token.refresh_in() {
            base = base.min(refresh_in.max(usable / 4));
        }
        let jitter = self
            .rng
            .duration_up_to(fraction(base, self.policy.refresh_jitter));
        let refresh = base
            .saturating_sub(jitter)
            .max(MIN_REFRESH_DELAY.min(usable / 2));
        // Offsets from the send, as instants: `now` when already past, `None` when beyond
        // what `Instant` can represent.
        let at = |offset: Duration| match offset.checked_sub(elapsed) {
            None => Some(now),
            Some(ahead) => now.checked_add(ahead),
        };
        let held = Held {
            refresh_at: at(refresh),
            usable_until: at(usable),
            expires_at: at(lifetime),
            token,
            taken_at: now,
            rejection_streak: 0,
        };
        (held, short)
    }
}

/// A wait deadline when the real one is beyond representable time: as far after `now` as
/// can be represented (a day, normally).
fn far_after(now: Instant) -> Instant {
    [
        Duration::from_secs(86_400),
        Duration::from_secs(1),
        Duration::from_nanos(1),
    ]
    .into_iter()
    .find_map(|d| now.checked_add(d))
    .unwrap_or(now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Session>();
        assert_send_sync::<Cache>();
        assert_send_sync::<Action>();
    }

    #[test]
    fn far_after_is_after() {
        #[allow(clippy::disallowed_methods, reason = "a test needs one real instant")]
        let now = Instant::now();
        assert!(far_after(now) > now);
    }
}
