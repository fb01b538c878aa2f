//! The token cache: one [`Session`] per request shape, bounded, with an event queue.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use http::{HeaderMap, StatusCode};

use super::{
    Action, Failure, IdSource, Outcome, Policy, Refresh, RequestId, Session, TokenSlot, WallClock,
    rng,
};
use crate::error::TokenError;
use crate::request::{CacheKey, TokenRequest};
use crate::secret::AccessToken;
use crate::token::Token;

/// Something that happened in the [`Cache`], for the driver to act on: drain the queue with
/// [`Cache::poll_event`] after every input (under the same lock), then log, publish to a
/// shared store, wake waiters. Events never hold a secret in their `Debug` (tokens print
/// redacted).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Event {
    /// Request `id` produced a token, now served for `key`.
    Fetched {
        /// The request shape.
        key: CacheKey,
        /// The request that produced it.
        id: RequestId,
        /// The token.
        token: Arc<Token>,
    },
    /// Request `id` failed; every waiter gets `error`, and the session backs off.
    FetchFailed {
        /// The request shape.
        key: CacheKey,
        /// The request that failed.
        id: RequestId,
        /// The error, as every waiter gets it.
        error: TokenError,
    },
    /// Request `id` ended without an outcome ([`Failure::Abandoned`]).
    FetchAbandoned {
        /// The request shape.
        key: CacheKey,
        /// The request.
        id: RequestId,
    },
    /// Hand `token` to the shared store, to be kept for `ttl` ([`Policy::store_ttl`]).
    /// Emitted, after [`Event::Fetched`], only by a cache built with
    /// [`Cache::with_shared_store`], and only for tokens fetched from the token endpoint
    /// (not for those the store itself handed over).
    Publish {
        /// The request shape.
        key: CacheKey,
        /// The request that produced it: the driver that sent it holds the store's permit.
        id: RequestId,
        /// The token.
        token: Arc<Token>,
        /// How long the store may keep it.
        ttl: Duration,
    },
    /// A token from the shared store answered request `id`: nothing was sent.
    Shared {
        /// The request shape.
        key: CacheKey,
        /// The request that was answered.
        id: RequestId,
    },
    /// The token of `key` was dropped after a resource server rejected it.
    Invalidated {
        /// The request shape.
        key: CacheKey,
    },
    /// The entry of `key` was removed: idle for [`Policy::idle_eviction`], or the least
    /// recently used when a new key would exceed [`Policy::max_keys`].
    Evicted {
        /// The request shape.
        key: CacheKey,
    },
}

/// What to do with a resource server's answer to a request that carried a token
/// ([`Cache::resource_verdict`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
#[non_exhaustive]
pub enum ResourceVerdict {
    /// Hand the response to the caller: it was not a rejection of the token, or a retry
    /// would not help (`insufficient_scope`, or the cache is backing off because resource
    /// servers keep rejecting fresh tokens).
    Done,
    /// The token was rejected and has been dropped: send the request once more with a fresh
    /// token (from the next poll, which never hands out the rejected one), if the request can
    /// be replayed. Never more than once per call.
    RetryWithFreshToken,
    /// The resource server asks for a DPoP proof with a nonce it has just given
    /// (`WWW-Authenticate: DPoP error="use_dpop_nonce"` and a new `DPoP-Nonce`, RFC 9449
    /// §9): the token is fine and kept; send the request once more, with the same token and
    /// a fresh proof ([`Cache::dpop_ticket`] now hands out the new nonce), if the request
    /// can be replayed. Never more than once per call.
    RetryWithNewNonce,
}

/// What a shared store is told about the fetch it is consulted on: an owned snapshot, so
/// that the store can check a stored token without holding the cache's lock.
#[derive(Clone, Debug)]
pub struct StoreQuery {
    request: TokenRequest,
    policy: Policy,
    /// The expiry of the token the session holds, if any (`Some(None)`: one that never
    /// expires).
    held_expiry: Option<Option<SystemTime>>,
    rejected: Option<AccessToken>,
}

impl StoreQuery {
    /// The request shape; its [`cache_key`](TokenRequest::cache_key) names the shared entry
    /// (it never holds the secret).
    #[must_use]
    pub fn request(&self) -> &TokenRequest {
        &self.request
    }

    /// The sessions' policy: [`Policy::store_ttl`] says how long a store may keep a token.
    #[must_use]
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Whether the session would take `token` at `now` (wall-clock time) instead of
    /// fetching: it passes [`crate::Config::check_stored`], it expires later than the token
    /// the session holds, and it is not the token last rejected. A stored token that this
    /// refuses is stale: fetch a new one. The session checks again when it is handed over
    /// ([`Cache::handle_shared_token`]).
    #[must_use]
    pub fn accepts(&self, now: SystemTime, token: &Token) -> bool {
        if self.rejected.as_ref() == Some(token.access_token())
            || self
                .request
                .config()
                .check_stored(&self.policy, now, token)
                .is_err()
        {
            return false;
        }
        match (self.held_expiry, token.expires_at()) {
            (None, _) | (Some(Some(_)), None) => true,
            (Some(Some(held)), Some(new)) => new > held,
            (Some(None), _) => false,
        }
    }
}

#[derive(Debug)]
struct Entry {
    session: Session,
    last_used: Instant,
    /// The slot this shape is published into, if a driver attached one.
    published: Option<Published>,
}

impl Entry {
    /// Brings the published snapshot in line with the session, after any input.
    fn sync(&mut self, now: Instant) {
        if let Some(published) = &mut self.published {
            published.sync(now, &self.session);
        }
    }

    /// The session's counters, with the lock-free hits of the slot.
    fn counters(&self) -> super::Counters {
        let mut counters = self.session.counters();
        if let Some(published) = &self.published {
            counters.cache_hits += published.slot.hits();
            counters.stale_hits += published.own_hits().1;
        }
        counters
    }
}

/// The hits of entries and slots that are gone (evicted, cleared, detached), so that the
/// totals the metrics publish never go back.
#[derive(Debug, Default)]
#[cfg_attr(
    not(feature = "metrics"),
    allow(dead_code, reason = "only the metrics read the totals")
)]
struct Retired {
    hits: u64,
    stale: u64,
}

impl Retired {
    fn entry(&mut self, entry: &Entry) {
        let counters = entry.session.counters();
        self.hits += counters.cache_hits;
        self.stale += counters.stale_hits;
        if let Some(published) = &entry.published {
            self.published(published);
        }
    }

    fn published(&mut self, published: &Published) {
        let (hits, stale) = published.own_hits();
        self.hits += hits;
        self.stale += stale;
    }
}

/// A [`TokenSlot`] attached to an entry, and what it holds now.
#[derive(Debug)]
struct Published {
    slot: Arc<TokenSlot>,
    /// The session's token that the slot holds copies of (compared by pointer), if any.
    token: Option<Arc<Token>>,
    /// Until when the session serves it unchanged (`None`: no end).
    until: Option<Instant>,
    /// The slot's hits when this entry was attached to it (a slot outlives entries).
    base_hits: u64,
    /// The slot's hits when it started serving a stale token, while it does
    /// ([`Session::stale`]).
    stale_from: Option<u64>,
    /// The slot's hits of stale tokens in earlier stale spells.
    stale_hits: u64,
}

impl Published {
    fn new(slot: Arc<TokenSlot>) -> Self {
        slot.withdraw();
        Self {
            base_hits: slot.hits(),
            slot,
            token: None,
            until: None,
            stale_from: None,
            stale_hits: 0,
        }
    }

    /// The slot's hits since this entry was attached, and those of them that served a stale
    /// token. The slot's counts are a lower bound that may dip under contention: saturating.
    fn own_hits(&self) -> (u64, u64) {
        let hits = self.slot.hits();
        let current = self.stale_from.map_or(0, |from| hits.saturating_sub(from));
        (
            hits.saturating_sub(self.base_hits),
            self.stale_hits + current,
        )
    }

    fn sync(&mut self, now: Instant, session: &Session) {
        match session.serving(now) {
            Some((token, until)) => {
                if !self.holds(token) {
                    self.slot.publish(token);
                    self.token = Some(Arc::clone(token));
                } else {
                    // A refresh due earlier has started meanwhile: no reader is owed the lock.
                    self.slot.clear_due();
                }
                self.until = until;
            }
            None => match session.usable(now) {
                // Its refresh is due but it is still usable: it stays published, and the
                // slot hands the next reader (one) to the lock, whose poll starts the
                // refresh, while every other reader keeps it.
                Some((token, usable_until)) if self.holds(token) => {
                    self.slot.mark_due();
                    self.until = usable_until;
                }
                _ => {
                    if self.token.take().is_some() {
                        self.slot.withdraw();
                    }
                    self.until = None;
                }
            },
        }
        let stale = self.token.is_some() && session.stale(now);
        match (stale, self.stale_from) {
            (true, None) => self.stale_from = Some(self.slot.hits()),
            (false, Some(from)) => {
                self.stale_hits += self.slot.hits().saturating_sub(from);
                self.stale_from = None;
            }
            _ => {}
        }
    }

    /// Whether the slot holds copies of the session's `token`.
    fn holds(&self, token: &Arc<Token>) -> bool {
        self.token
            .as_ref()
            .is_some_and(|held| Arc::ptr_eq(held, token))
    }

    /// When the published token must be withdrawn, if one is published.
    fn deadline(&self) -> Option<Instant> {
        self.token.as_ref().and(self.until)
    }
}

impl Drop for Published {
    fn drop(&mut self) {
        // An evicted or cleared entry: the slot must not keep serving its token.
        if self.token.is_some() {
            self.slot.withdraw();
        }
    }
}

/// The token cache that owns the whole protocol: one [`Session`] per request shape
/// ([`CacheKey`]), with single flight, refresh ahead, backoff, shared-store acceptance,
/// eviction, and the verdict on a resource server's answer. A driver (an adapter, or your
/// own transport) holds it behind a lock and never decides anything about OAuth itself.
///
/// # Driving
///
/// Methods by family, as in `quinn-proto`:
/// - **Output per caller**: [`poll`](Self::poll) → [`Action`] (`Ready`, `Send`, `Wait`,
///   `Failed`), exactly as [`Session::poll`], for the request shape given (created on first
///   use, evicting by policy).
/// - **Inputs for a request in flight** (by its plain [`RequestId`]):
///   [`handle_response`](Self::handle_response), [`handle_failure`](Self::handle_failure)
///   (transport error, over-cap body, abandoned sender), and
///   [`handle_shared_token`](Self::handle_shared_token) (a shared store's answer).
/// - **Timer input**: [`handle_timeout`](Self::handle_timeout) at
///   [`poll_timeout`](Self::poll_timeout): evicts idle entries and starts due background
///   refreshes, which [`poll_refresh`](Self::poll_refresh) hands out. Never counts a hit.
/// - **Other inputs**: [`invalidate`](Self::invalidate),
///   [`resource_verdict`](Self::resource_verdict), [`force_refresh`](Self::force_refresh),
///   [`reset_backoff`](Self::reset_backoff), [`adopt`](Self::adopt), [`clear`](Self::clear).
/// - **Lock-free reads** (optional): [`attach`](Self::attach) a [`TokenSlot`] to a request
///   shape and the cache publishes into it, after every input, the token that
///   [`poll`](Self::poll) would serve without a state change; readers on any thread take it
///   with [`TokenSlot::get`] or [`TokenSlot::with`], no lock held. The slot's timer input is
///   [`handle_snapshot_timeout`](Self::handle_snapshot_timeout) at
///   [`snapshot_timeout`](Self::snapshot_timeout), which withdraws what is no longer served
///   (a refresh became due, or the token stopped being usable); [`detach_all`](Self::detach_all)
///   ends it. Attached shapes are never evicted.
/// - **Events**: [`poll_event`](Self::poll_event), drained after every input.
/// - **Metrics** (feature `metrics`): `with_metrics_name` names the cache, which then
///   records its token health into the `metrics` facade (the `metrics` module says what,
///   and when the hit counters are published); nothing changes for the driver.
/// - **Getters** (never create an entry): [`counters`](Self::counters),
///   [`last_error`](Self::last_error), [`next_refresh`](Self::next_refresh),
///   [`current_token`](Self::current_token), [`store_query`](Self::store_query),
///   [`len`](Self::len), [`keys`](Self::keys).
///
/// Every input returns whether anything changed (`bool`, or an [`Outcome`]): wake the
/// waiting callers only then. The loop of a driver, in any runtime:
///
/// ```text
/// lock → poll(now, request) → unlock        Ready(token) | Wait(until) | Send(request)
/// on Send: send, read the capped body (no lock held)
/// lock → handle_response / handle_failure → drain poll_event → unlock
/// events: log, publish to the shared store, wake the waiters
/// ```
///
/// ```
/// use std::time::{Instant, SystemTime};
/// use client_credentials::{Action, Cache, Config, Event, Policy, WallClock};
/// use client_credentials::http::{HeaderMap, StatusCode};
///
/// let config = Config::builder()
///     .token_url("https://auth.example.com/token")
///     .client_id("c")
///     .client_secret("s")
///     .build()?;
/// let request = config.default_request();
/// let now = Instant::now();
/// let mut cache = Cache::new(Policy::default(), WallClock::new(now, SystemTime::now()), 7);
///
/// let Action::Send { id, request: http, .. } = cache.poll(now, &request) else { unreachable!() };
/// # let _ = http;
/// let body = br#"{"access_token":"abc","token_type":"Bearer","expires_in":3600}"#;
/// assert!(cache.handle_response(now, id, StatusCode::OK, &HeaderMap::new(), body).changed());
/// assert!(matches!(cache.poll_event(), Some(Event::Fetched { .. })));
/// assert!(matches!(cache.poll(now, &request), Action::Ready(_)));
/// assert_eq!(cache.counters(request.cache_key()).map(|c| c.cache_hits), Some(1));
/// # Ok::<_, client_credentials_core::ConfigError>(())
/// ```
#[derive(Debug)]
pub struct Cache {
    policy: Policy,
    clock: WallClock,
    seed: u64,
    ids: IdSource,
    entries: HashMap<CacheKey, Entry>,
    flights: HashMap<RequestId, CacheKey>,
    events: VecDeque<Event>,
    refreshes: VecDeque<Refresh>,
    shared_store: bool,
    /// The slots drivers attached, by request shape; they outlive the entries.
    attached: HashMap<CacheKey, Arc<TokenSlot>>,
    retired: Retired,
    /// The `jti` nonces of the assertions of revocations and introspections
    /// ([`Cache::assertion_input`]); fetches draw from their sessions' own streams.
    nonces: super::rng::Rng,
    /// The latest `DPoP-Nonce` of each resource server's origin ([`Cache::dpop_ticket`]).
    dpop_nonces: crate::resource::NonceBook,
    /// Records the metrics, once the cache has a name.
    #[cfg(feature = "metrics")]
    metrics: Option<crate::metrics::Recorder>,
}

impl Cache {
    /// The seed of the session that a cache built with `seed` keeps for `key`: each request
    /// shape draws its own jitter. A model that replays a cache's choices with a lone
    /// [`Session`] seeds it with this.
    #[must_use]
    pub fn session_seed(seed: u64, key: &CacheKey) -> u64 {
        rng::mix(seed ^ rng::fnv1a(key.as_str().as_bytes()))
    }

    /// An empty cache. Every session gets `policy` and `clock`, and a jitter seed derived
    /// from `seed` and its key (give every process a different `seed`).
    #[must_use]
    pub fn new(policy: Policy, clock: WallClock, seed: u64) -> Self {
        Self {
            policy,
            clock,
            seed,
            ids: IdSource::default(),
            entries: HashMap::new(),
            flights: HashMap::new(),
            events: VecDeque::new(),
            refreshes: VecDeque::new(),
            shared_store: false,
            attached: HashMap::new(),
            retired: Retired::default(),
            nonces: super::rng::Rng::new(rng::mix(seed ^ 0x7265_766f_6b65_6e63)),
            dpop_nonces: crate::resource::NonceBook::default(),
            #[cfg(feature = "metrics")]
            metrics: None,
        }
    }

    /// What [`Config::revocation_at`](crate::Config::revocation_at) and
    /// [`Config::introspection_at`](crate::Config::introspection_at) sign an assertion with,
    /// for a request sent at `now`: the wall-clock time of `now`, and a nonce for its `jti`
    /// that no other assertion of this cache uses.
    ///
    /// ```
    /// # use std::time::{Instant, SystemTime};
    /// # use client_credentials::{Cache, Policy, WallClock};
    /// let now = Instant::now();
    /// let mut cache = Cache::new(Policy::default(), WallClock::new(now, SystemTime::UNIX_EPOCH), 7);
    /// let (at, first) = cache.assertion_input(now);
    /// assert_eq!(at, SystemTime::UNIX_EPOCH);
    /// assert_ne!(cache.assertion_input(now).1, first);
    /// ```
    pub fn assertion_input(&mut self, now: Instant) -> (SystemTime, u128) {
        (self.clock.at(now), self.nonces.next_u128())
    }

    /// The inputs of a DPoP proof for a resource request to `uri` sent at `now`
    /// ([`crate::ResourceAuth::prove`]): the wall-clock time of `now`, a `jti` nonce that no
    /// other proof or assertion of this cache uses, and the latest `DPoP-Nonce` that `uri`'s
    /// origin gave ([`Cache::resource_verdict`] and [`Cache::handle_dpop_nonce`] remember
    /// them, per origin). Take it under the lock, sign after releasing it.
    ///
    /// ```
    /// # use std::time::{Instant, SystemTime};
    /// # use client_credentials::{Cache, Policy, WallClock};
    /// # use client_credentials::http::{HeaderMap, HeaderValue, Uri};
    /// let now = Instant::now();
    /// let mut cache = Cache::new(Policy::default(), WallClock::new(now, SystemTime::UNIX_EPOCH), 7);
    /// let api: Uri = "https://api.example.com/orders?page=2".parse()?;
    /// assert_eq!(cache.dpop_ticket(now, &api).server_nonce, None);
    ///
    /// let mut answer = HeaderMap::new();
    /// answer.insert("dpop-nonce", HeaderValue::from_static("n-1"));
    /// assert!(cache.handle_dpop_nonce(&api, &answer));
    /// let other_path: Uri = "https://API.example.com:443/invoices".parse()?;
    /// assert_eq!(cache.dpop_ticket(now, &other_path).server_nonce.as_deref(), Some("n-1"));
    /// # Ok::<_, Box<dyn std::error::Error>>(())
    /// ```
    pub fn dpop_ticket(&mut self, now: Instant, uri: &http::Uri) -> crate::resource::DpopTicket {
        let server_nonce = crate::resource::origin(uri)
            .and_then(|origin| self.dpop_nonces.get(&origin).map(str::to_owned));
        crate::resource::DpopTicket {
            at: self.clock.at(now),
            nonce: self.nonces.next_u128(),
            server_nonce,
        }
    }

    /// A resource server's answer to a request to `uri` carried a `DPoP-Nonce` (RFC 9449
    /// §9: it may send a new one with any answer): remembers it for `uri`'s origin, for the
    /// next proofs. Returns whether it is new. A value that is not a valid nonce (visible
    /// ASCII but `"` and `\`, at most 512 bytes) is ignored. [`Cache::resource_verdict`]
    /// calls it; a driver calls it itself for an answer it gives no verdict on (the answer
    /// to a retry).
    pub fn handle_dpop_nonce(&mut self, uri: &http::Uri, headers: &HeaderMap) -> bool {
        match (
            crate::resource::origin(uri),
            crate::resource::server_nonce(headers),
        ) {
            (Some(origin), Some(nonce)) => self.dpop_nonces.remember(origin, nonce),
            _ => false,
        }
    }

    /// Tokens fetched from the token endpoint are also announced with [`Event::Publish`], for
    /// a driver that shares them through a store.
    #[must_use]
    pub fn with_shared_store(mut self) -> Self {
        self.shared_store = true;
        self
    }

    /// Records this cache's metrics into the `metrics` facade, labelled `client = name`
    /// (feature `metrics`; see [`crate::metrics`] for the metrics and when they are
    /// recorded). Choose a name that tells the client apart (`"orders"`, `"billing-api"`):
    /// it is exported as is, so it must not be a secret. Registers the metrics'
    /// descriptions with the recorder installed now.
    #[cfg(feature = "metrics")]
    #[must_use]
    pub fn with_metrics_name(mut self, name: impl AsRef<str>) -> Self {
        self.metrics = Some(crate::metrics::Recorder::new(name.as_ref()));
        self
    }

    // ---------------------------------------------------------------------------------
    // Getters (none creates an entry)
    // ---------------------------------------------------------------------------------

    /// The policy every session follows.
    #[must_use]
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The clock anchor.
    #[must_use]
    pub fn clock(&self) -> WallClock {
        self.clock
    }

    /// The name this cache's metrics are labelled with ([`Cache::with_metrics_name`]).
    #[cfg(feature = "metrics")]
    #[must_use]
    pub fn metrics_name(&self) -> Option<&str> {
        self.metrics.as_ref().map(crate::metrics::Recorder::name)
    }

    /// The number of request shapes held.
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no request shape is held.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The request shapes held, in no particular order.
    pub fn keys(&self) -> impl Iterator<Item = &CacheKey> {
        self.entries.keys()
    }

    /// The session of `key`, if it exists.
    #[must_use]
    pub fn session(&self, key: &CacheKey) -> Option<&Session> {
        self.entries.get(key).map(|e| &e.session)
    }

    /// The counters of `key`'s session, if it exists.
    ///
    /// `cache_hits` includes the lock-free hits of an attached [`TokenSlot`].
    #[must_use]
    pub fn counters(&self, key: &CacheKey) -> Option<super::Counters> {
        self.entries.get(key).map(Entry::counters)
    }

    /// The counters of every session, added up.
    #[must_use]
    pub fn total_counters(&self) -> super::Counters {
        let mut total = super::Counters::default();
        for entry in self.entries.values() {
            total.add(&entry.counters());
        }
        total
    }

    /// The last error of `key`'s session ([`Session::last_error`]).
    #[must_use]
    pub fn last_error(&self, key: &CacheKey) -> Option<&TokenError> {
        self.session(key).and_then(Session::last_error)
    }

    /// The next refresh of `key`'s session ([`Session::next_refresh`]).
    #[must_use]
    pub fn next_refresh(&self, key: &CacheKey) -> Option<Instant> {
        self.session(key).and_then(Session::next_refresh)
    }

    /// The token of `key` if it is usable at `now`, without counting a hit.
    #[must_use]
    pub fn current_token(&self, now: Instant, key: &CacheKey) -> Option<&Arc<Token>> {
        self.session(key).and_then(|s| s.current_token(now))
    }

    /// The next instant at which something is due without any input: the earliest
    /// [`Session::poll_timeout`] of all sessions, or an idle eviction. Call
    /// [`Cache::handle_timeout`] then. Strictly after the `now` of the last input.
    ///
    /// A session that holds no token is left out (the timer input never fetches for it:
    /// the end of its backoff, or the deadline of its request in flight, waits for a
    /// caller's poll), so that a driver sleeping until this instant never spins.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let idle = self.policy.idle_eviction;
        self.entries
            .values()
            .flat_map(|e| {
                let evict = (e.session.in_flight().is_none() && e.published.is_none())
                    .then(|| e.last_used.checked_add(idle))
                    .flatten();
                let own = e.session.held().and(e.session.poll_timeout());
                [own, evict]
            })
            .flatten()
            .min()
    }

    /// What a shared store is to know about request `id` before it is sent (see
    /// [`StoreQuery`]); `None` when `id` is not in flight.
    #[must_use]
    pub fn store_query(&self, now: Instant, id: RequestId) -> Option<StoreQuery> {
        let key = self.flights.get(&id)?;
        let session = &self.entries.get(key)?.session;
        let held_expiry = session.current_token(now).map(|t| t.expires_at());
        Some(StoreQuery {
            request: session.request().clone(),
            policy: self.policy.clone(),
            held_expiry,
            rejected: session.rejected.clone(),
        })
    }

    // ---------------------------------------------------------------------------------
    // Output per caller
    // ---------------------------------------------------------------------------------

    /// What the calling caller must do to get a token of `request`'s shape; see
    /// [`Action`] and [`Session::poll`]. Creates the entry on first use; a new entry may
    /// evict idle ones and, beyond [`Policy::max_keys`], the least recently used one that has
    /// no request in flight (reported as [`Event::Evicted`]).
    #[must_use = "a `Send` must be sent and reported, or the session waits for its deadline"]
    #[inline]
    pub fn poll(&mut self, now: Instant, request: &TokenRequest) -> Action {
        let key = request.cache_key();
        let entry = match self.entries.get_mut(key) {
            Some(entry) => entry,
            None => self.insert(now, request),
        };
        entry.last_used = entry.last_used.max(now);
        let mut action = entry.session.poll(now);
        entry.sync(now);
        if let Action::Send {
            id, request: http, ..
        } = &mut action
        {
            self.flights.insert(*id, key.clone());
            // Sent on behalf of this call: with its timeout, not the first caller's.
            http.set_timeout(request.params().timeout());
        }
        action
    }

    // ---------------------------------------------------------------------------------
    // Inputs for a request in flight
    // ---------------------------------------------------------------------------------

    /// Reports the response to request `id` ([`Session::handle_response`]); queues
    /// [`Event::Fetched`] (and [`Event::Publish`]) or [`Event::FetchFailed`].
    pub fn handle_response(
        &mut self,
        now: Instant,
        id: RequestId,
        status: StatusCode,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Outcome {
        self.report(now, id, |s| {
            s.handle_response(now, id, status, headers, body)
        })
    }

    /// Reports that request `id` ended without a response ([`Session::handle_failure`]);
    /// queues [`Event::FetchFailed`] or [`Event::FetchAbandoned`].
    pub fn handle_failure(&mut self, now: Instant, id: RequestId, failure: Failure) -> Outcome {
        self.report(now, id, |s| s.handle_failure(now, id, failure))
    }

    /// A shared store's answer to request `id`: `token`, fetched by another process. If the
    /// session takes it ([`Session::handle_shared_token`]), the request ends unsent, every
    /// waiter gets the token, [`Event::Shared`] is queued and `true` returned; otherwise
    /// nothing changes and the caller sends the request as usual.
    pub fn handle_shared_token(&mut self, now: Instant, id: RequestId, token: Arc<Token>) -> bool {
        let Some(key) = self.flights.get(&id).cloned() else {
            return false;
        };
        let Some(entry) = self.entries.get_mut(&key) else {
            return false;
        };
        #[cfg(feature = "metrics")]
        let replaced = entry.session.served_expiry(now);
        let taken = entry.session.handle_shared_token(now, id, token);
        entry.sync(now);
        if taken {
            self.flights.remove(&id);
            self.events.push_back(Event::Shared { key, id });
            #[cfg(feature = "metrics")]
            if let Some(metrics) = &self.metrics {
                metrics.shared_store_hit();
                if let Some(expiry) = replaced {
                    metrics.refresh_lead(expiry.saturating_duration_since(now));
                }
            }
        }
        taken
    }

    // ---------------------------------------------------------------------------------
    // Timer input
    // ---------------------------------------------------------------------------------

    /// The timer input, for a driver with a background task: evicts entries idle for
    /// [`Policy::idle_eviction`], and starts the refresh of every still-valid token that is
    /// due ([`Session::handle_timeout`]); hand those out with [`Cache::poll_refresh`]. Never
    /// counts a cache hit, never fetches for a shape that holds no valid token. Returns
    /// whether anything changed.
    pub fn handle_timeout(&mut self, now: Instant) -> bool {
        let evicted = self.evict_idle(now);
        let mut started = false;
        for (key, entry) in &mut self.entries {
            let refresh = entry.session.handle_timeout(now);
            entry.sync(now);
            if let Some(refresh) = refresh {
                self.flights.insert(refresh.id, key.clone());
                self.refreshes.push_back(refresh);
                started = true;
            }
        }
        evicted || started
    }

    /// The next background refresh to send, started by [`Cache::handle_timeout`].
    #[must_use]
    pub fn poll_refresh(&mut self) -> Option<Refresh> {
        self.refreshes.pop_front()
    }

    /// The next event, oldest first. `None` ends a drain: with metrics (the `metrics`
    /// module), the hit counters are published then.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        let event = self.events.pop_front();
        #[cfg(feature = "metrics")]
        if event.is_none() {
            self.publish_hits();
        }
        event
    }

    /// A caller waited for a token (for a fetch in flight, or for the first token) from
    /// `started` until `now`, when it got its answer, which the cache served (`Ready`, so
    /// that its poll counted a hit) or not: what only the driver can measure, reported
    /// through [`crate::driver::Call`]. With metrics, counts the wait and records its
    /// duration; otherwise it does nothing.
    #[cfg_attr(
        not(feature = "metrics"),
        allow(clippy::unused_self, reason = "records only with metrics")
    )]
    pub(crate) fn record_wait(&mut self, now: Instant, started: Instant, served: bool) {
        #[cfg(feature = "metrics")]
        if let Some(metrics) = &mut self.metrics {
            metrics.wait(now.saturating_duration_since(started), served);
        }
        #[cfg(not(feature = "metrics"))]
        let _ = (now, started, served);
    }

    // ---------------------------------------------------------------------------------
    // Other inputs
    // ---------------------------------------------------------------------------------

    /// A resource server rejected `rejected`: [`Session::invalidate`] on every request shape
    /// (the caller seldom knows which one the token came from). Queues
    /// [`Event::Invalidated`] for each that dropped it, and returns whether any did.
    pub fn invalidate(&mut self, now: Instant, rejected: &AccessToken) -> bool {
        let mut dropped = false;
        for (key, entry) in &mut self.entries {
            let invalidated = entry.session.invalidate(now, rejected);
            entry.sync(now);
            if invalidated {
                dropped = true;
                self.events
                    .push_back(Event::Invalidated { key: key.clone() });
            }
        }
        dropped
    }

    /// The verdict on a resource server's answer (`status`, `headers`) to a request to
    /// `uri` that carried `used`, a token of `key`'s shape:
    ///
    /// - a `DPoP-Nonce` in the answer is remembered for `uri`'s origin
    ///   ([`Cache::handle_dpop_nonce`]); if the challenge says `error="use_dpop_nonce"`
    ///   (RFC 9449 §9) and the request carried a proof, the answer is
    ///   [`ResourceVerdict::RetryWithNewNonce`] when the challenge's nonce is not the one the
    ///   proof carried, and [`ResourceVerdict::Done`] when it is (a retry could only be
    ///   refused again); the token is kept either way;
    /// - a `401`, a gRPC `UNAUTHENTICATED` status (`grpc-status: 16`, in the headers of a
    ///   trailers-only answer, or in the trailers, which a driver passes as `headers` with
    ///   the answer's status), or any answer whose `WWW-Authenticate` challenge says
    ///   `error="invalid_token"` (RFC 6750 §3.1): the token is invalidated
    ///   ([`Cache::invalidate`], so the early-rejection throttle applies), and the answer is
    ///   [`ResourceVerdict::RetryWithFreshToken`], unless the session now backs off (then a
    ///   retry could only fail: [`ResourceVerdict::Done`]);
    /// - `error="insufficient_scope"` (RFC 6750 §3.1), gRPC `PERMISSION_DENIED`, or anything
    ///   else:
    ///   [`ResourceVerdict::Done`], nothing dropped (a new token has the same scopes).
    ///
    /// The next poll never hands out an invalidated token again, so a retry with a fresh
    /// token always carries another one. A driver retries at most once per call, and only a
    /// request it can replay.
    pub fn resource_verdict(
        &mut self,
        now: Instant,
        key: &CacheKey,
        uri: &http::Uri,
        status: StatusCode,
        headers: &HeaderMap,
        used: &crate::resource::ResourceAuth,
    ) -> ResourceVerdict {
        self.handle_dpop_nonce(uri, headers);
        let code = super::challenge::error_code(headers);
        if code.as_deref() == Some("use_dpop_nonce") {
            // Judged against the nonce this proof carried, not the latest one remembered:
            // requests that left together all get their retry.
            let offered = crate::resource::server_nonce(headers);
            let new = offered.is_some_and(|n| used.proof_nonce() != Some(n));
            return if used.has_proof() && new {
                ResourceVerdict::RetryWithNewNonce
            } else {
                ResourceVerdict::Done
            };
        }
        if !Self::rejects(status, headers, code.as_deref()) {
            return ResourceVerdict::Done;
        }
        let used = used.access_token();
        self.invalidate(now, used);
        match self.entries.get(key) {
            Some(entry) if entry.session.backing_off_without_token(now) => ResourceVerdict::Done,
            _ => ResourceVerdict::RetryWithFreshToken,
        }
    }

    /// Whether an answer (`status`, `headers`) rejects the token the request carried: the
    /// part of [`Cache::resource_verdict`] that needs no cache, by the same rules (a `401`,
    /// gRPC's `UNAUTHENTICATED`, or an `invalid_token` challenge; never
    /// `insufficient_scope`). A DPoP `use_dpop_nonce` challenge comes with a 401 and counts
    /// here, although the verdict keeps the token.
    #[must_use]
    pub fn rejects_token(status: StatusCode, headers: &HeaderMap) -> bool {
        Self::rejects(
            status,
            headers,
            super::challenge::error_code(headers).as_deref(),
        )
    }

    /// Whether a driver must take its lock for [`Cache::resource_verdict`] on an answer: it
    /// rejects the token ([`Cache::rejects_token`]) or carries a `DPoP-Nonce` to remember.
    /// A driver asks it first, without its lock: most answers need no verdict.
    #[must_use]
    pub fn needs_verdict(status: StatusCode, headers: &HeaderMap) -> bool {
        headers.contains_key(crate::resource::DPOP_NONCE) || Self::rejects_token(status, headers)
    }

    fn rejects(status: StatusCode, headers: &HeaderMap, code: Option<&str>) -> bool {
        match code {
            Some("insufficient_scope") => false,
            Some("invalid_token") => true,
            _ => {
                status == StatusCode::UNAUTHORIZED
                    || super::challenge::grpc_unauthenticated(headers)
            }
        }
    }

    /// [`Session::force_refresh`] for `key`: returns whether a token was held and marked due.
    /// Creates nothing.
    pub fn force_refresh(&mut self, now: Instant, key: &CacheKey) -> bool {
        self.entries.get_mut(key).is_some_and(|e| {
            let marked = e.session.force_refresh(now);
            e.sync(now);
            marked
        })
    }

    /// For operators: [`Session::reset_backoff`] on every request shape. Returns how many
    /// were backing off.
    pub fn reset_backoff(&mut self, now: Instant) -> usize {
        self.entries
            .values_mut()
            .map(|e| {
                let ended = e.session.reset_backoff(now);
                e.sync(now);
                ended
            })
            .filter(|ended| *ended)
            .count()
    }

    /// Takes over `token`, fetched or stored elsewhere, for `request`'s shape
    /// ([`Session::adopt`], which also applies [`crate::Config::check_stored`] through
    /// [`Session::would_adopt`]). Creates the entry if needed. Returns whether it was taken.
    pub fn adopt(&mut self, now: Instant, request: &TokenRequest, token: Arc<Token>) -> bool {
        let entry = match self.entries.get_mut(request.cache_key()) {
            Some(entry) => entry,
            None => self.insert(now, request),
        };
        entry.last_used = entry.last_used.max(now);
        let adopted = entry.session.would_adopt(now, &token) && entry.session.adopt(now, token);
        entry.sync(now);
        adopted
    }

    /// Restores a token that the application stored (simple-oauth2's `createToken`): the
    /// token of an earlier run, read back from a file or a secret store, for `request`'s
    /// shape, so that the first call needs no request. A refused token creates no entry.
    ///
    /// Returns `Ok(true)` when the cache serves it from now on, and `Ok(false)` when it is
    /// not taken although it is valid: the cache holds a token that lives longer (and keeps
    /// serving that one), or a resource server rejected this very token (and the next poll
    /// fetches a new one).
    ///
    /// ```
    /// # use std::time::{Duration, Instant, SystemTime};
    /// use client_credentials::{Action, Cache, Config, Policy, StoredTokenProblem, Token, WallClock};
    /// # let config = Config::builder().token_url("https://as.example.com/t").client_id("c").client_secret("s").build()?;
    /// # let issued = SystemTime::now() - Duration::from_secs(60);
    /// # let body = br#"{"access_token":"abc","token_type":"Bearer","expires_in":3600}"#;
    /// # let token = config.default_request().parse_response(issued, http::StatusCode::OK, &http::HeaderMap::new(), body)?;
    /// // What an earlier run saved with `serde_json::to_string(&token.storable())`:
    /// # let stored = serde_json::to_string(&token.storable())?;
    /// let token: Token = serde_json::from_str(&stored)?;
    /// let now = Instant::now();
    /// let mut cache = Cache::new(Policy::default(), WallClock::new(now, SystemTime::now()), 7);
    /// let request = config.default_request();
    /// assert_eq!(cache.restore(now, &request, token.clone()), Ok(true));
    /// assert!(matches!(cache.poll(now, &request), Action::Ready(t) if *t == token));
    ///
    /// // A token whose usable life is over is refused, with the reason.
    /// let later = now + Duration::from_secs(3600);
    /// let mut cache = Cache::new(Policy::default(), WallClock::new(later, SystemTime::now() + Duration::from_secs(3600)), 7);
    /// assert_eq!(cache.restore(later, &request, token), Err(StoredTokenProblem::Expired));
    /// assert!(cache.is_empty());
    /// # Ok::<_, Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`StoredTokenProblem`](crate::StoredTokenProblem) when the configuration does not
    /// take the token ([`crate::Config::check_stored`]): another token type, no expiry,
    /// an implausible lifetime, or a usable life that is over.
    pub fn restore(
        &mut self,
        now: Instant,
        request: &TokenRequest,
        token: impl Into<Arc<Token>>,
    ) -> Result<bool, crate::StoredTokenProblem> {
        let token = token.into();
        request
            .config()
            .check_stored(&self.policy, self.clock.at(now), &token)?;
        Ok(self.adopt(now, request, token))
    }

    /// Forgets every cached token and request shape. Requests in flight are forgotten too:
    /// their outcomes are ignored when they arrive. Returns how many shapes were dropped.
    pub fn clear(&mut self) -> usize {
        let dropped = self.entries.len();
        for entry in self.entries.values() {
            self.retired.entry(entry);
        }
        self.entries.clear();
        self.flights.clear();
        self.refreshes.clear();
        dropped
    }

    // ---------------------------------------------------------------------------------
    // The lock-free hit path
    // ---------------------------------------------------------------------------------

    /// Publishes the token of `request`'s shape into `slot` from now on, for the driver's
    /// lock-free hit path ([`TokenSlot`]). The entry is created if needed, and it is never
    /// evicted while the slot is attached (its lock-free hits do not count as use; a
    /// client's default request stays as long as the client).
    ///
    /// The driver promises to call [`Cache::handle_snapshot_timeout`] at
    /// [`Cache::snapshot_timeout`]: without it, a published token would be served past its
    /// refresh point. A driver whose timer stops calls [`Cache::detach_all`].
    pub fn attach(&mut self, now: Instant, request: &TokenRequest, slot: Arc<TokenSlot>) {
        self.attached
            .insert(request.cache_key().clone(), Arc::clone(&slot));
        let entry = match self.entries.get_mut(request.cache_key()) {
            Some(entry) => entry,
            None => self.insert(now, request),
        };
        let old = entry.published.replace(Published::new(slot));
        entry.sync(now);
        if let Some(old) = old {
            self.retired.published(&old);
        }
        // Plans the first publication of the slot's hits by the timer.
        #[cfg(feature = "metrics")]
        self.publish_hits_if_due(now);
    }

    /// Withdraws and forgets every attached slot: their readers take the lock from now on.
    /// For a driver whose timer stopped (its runtime shut down, say).
    pub fn detach_all(&mut self) {
        self.attached.clear();
        for entry in self.entries.values_mut() {
            if let Some(old) = entry.published.take() {
                self.retired.published(&old);
            }
        }
    }

    /// When the next published token must be withdrawn: call
    /// [`Cache::handle_snapshot_timeout`] then. Strictly after the `now` of the last input;
    /// `None` while nothing is published, or nothing published has an end. With metrics
    /// (`with_metrics_name`, feature `metrics`) and a slot attached, also the next
    /// publication of the hit counters, at most `metrics::HITS_PUBLISH_INTERVAL` (5 s)
    /// after the last timer input.
    #[must_use]
    pub fn snapshot_timeout(&self) -> Option<Instant> {
        let withdraw = self
            .attached
            .keys()
            .filter_map(|key| self.entries.get(key)?.published.as_ref()?.deadline())
            .min();
        // With metrics, the slots' hits are published at least this often.
        #[cfg(feature = "metrics")]
        if let Some(at) = self.metrics.as_ref().and_then(|m| m.publish_at())
            && !self.attached.is_empty()
        {
            return Some(withdraw.map_or(at, |w| w.min(at)));
        }
        withdraw
    }

    /// The timer input of the lock-free hit path: withdraws (or republishes) every
    /// published token whose window ended by `now`. Nothing else changes: no refresh starts,
    /// no entry is evicted, no hit is counted (with metrics, the hit counters are published
    /// when due). Returns whether any slot changed.
    pub fn handle_snapshot_timeout(&mut self, now: Instant) -> bool {
        let mut changed = false;
        for entry in self.entries.values_mut() {
            if let Some(published) = &mut entry.published
                && published.deadline().is_some_and(|due| now >= due)
            {
                published.sync(now, &entry.session);
                changed = true;
            }
        }
        #[cfg(feature = "metrics")]
        self.publish_hits_if_due(now);
        changed
    }

    // ---------------------------------------------------------------------------------
    // Internals
    // ---------------------------------------------------------------------------------

    fn report(
        &mut self,
        now: Instant,
        id: RequestId,
        input: impl FnOnce(&mut Session) -> Outcome,
    ) -> Outcome {
        let Some(key) = self.flights.get(&id).cloned() else {
            return Outcome::Ignored;
        };
        let Some(entry) = self.entries.get_mut(&key) else {
            self.flights.remove(&id);
            return Outcome::Ignored;
        };
        #[cfg(feature = "metrics")]
        let before = (entry.session.sent_at(id), entry.session.served_expiry(now));
        let nonce_before = entry.session.dpop_nonce().map(str::to_owned);
        let outcome = input(&mut entry.session);
        entry.sync(now);
        // A nonce that the token endpoint has just given serves every request shape of that
        // server (and never overwrites a newer one with an old one).
        if let Some(nonce) = entry.session.dpop_nonce()
            && nonce_before.as_deref() != Some(nonce)
            && let Some(origin) =
                crate::resource::origin(entry.session.request().config().token_url())
        {
            self.dpop_nonces.remember(origin, nonce);
        }
        if entry.session.in_flight() != Some(id) {
            self.flights.remove(&id);
        }
        match &outcome {
            Outcome::Ignored => {}
            Outcome::Token(token) => {
                self.events.push_back(Event::Fetched {
                    key: key.clone(),
                    id,
                    token: Arc::clone(token),
                });
                if self.shared_store
                    && let Some(ttl) = self.policy.store_ttl(token, self.clock.at(now))
                {
                    self.events.push_back(Event::Publish {
                        key,
                        id,
                        token: Arc::clone(token),
                        ttl,
                    });
                }
            }
            Outcome::Failed(error) => self.events.push_back(Event::FetchFailed {
                key,
                id,
                error: error.clone(),
            }),
            Outcome::Abandoned => self.events.push_back(Event::FetchAbandoned { key, id }),
            Outcome::Retry => {}
        }
        #[cfg(feature = "metrics")]
        if let Some(metrics) = &self.metrics {
            record_outcome(metrics, now, before, &outcome);
        }
        outcome
    }

    /// Publishes the hit totals now (with metrics).
    #[cfg(feature = "metrics")]
    fn publish_hits(&self) {
        let Some(metrics) = &self.metrics else {
            return;
        };
        let (mut hits, mut stale) = (self.retired.hits, self.retired.stale);
        for entry in self.entries.values() {
            let counters = entry.session.counters();
            hits += counters.cache_hits;
            stale += counters.stale_hits;
            if let Some(published) = &entry.published {
                let (slot_hits, slot_stale) = published.own_hits();
                hits += slot_hits;
                stale += slot_stale;
            }
        }
        metrics.publish_hits(hits, stale);
    }

    /// Publishes the hit totals if [`crate::metrics::HITS_PUBLISH_INTERVAL`] passed since the
    /// last time this was due.
    #[cfg(feature = "metrics")]
    #[inline]
    fn publish_hits_if_due(&mut self, now: Instant) {
        if self.metrics.as_mut().is_some_and(|m| m.publish_due(now)) {
            self.publish_hits();
        }
    }

    fn insert(&mut self, now: Instant, request: &TokenRequest) -> &mut Entry {
        self.evict_idle(now);
        if self.entries.len() >= self.policy.max_keys.max(1) {
            self.evict_least_recent();
        }
        let key = request.cache_key().clone();
        let key_seed = Self::session_seed(self.seed, &key);
        let mut session = Session::with_ids(
            request.clone(),
            self.policy.clone(),
            self.clock,
            key_seed,
            self.ids.clone(),
        );
        if request.config().has_dpop()
            && let Some(nonce) = crate::resource::origin(request.config().token_url())
                .and_then(|origin| self.dpop_nonces.get(&origin))
        {
            session.seed_dpop_nonce(nonce);
        }
        let published = self.attached.get(&key).cloned().map(Published::new);
        self.entries.entry(key).or_insert(Entry {
            session,
            last_used: now,
            published,
        })
    }

    /// Removes entries unused for [`Policy::idle_eviction`] with nothing in flight.
    fn evict_idle(&mut self, now: Instant) -> bool {
        let idle = self.policy.idle_eviction;
        let before = self.entries.len();
        let (events, retired) = (&mut self.events, &mut self.retired);
        self.entries.retain(|key, entry| {
            let keep = entry.session.in_flight().is_some()
                || entry.published.is_some()
                || now.saturating_duration_since(entry.last_used) < idle;
            if !keep {
                retired.entry(entry);
                events.push_back(Event::Evicted { key: key.clone() });
            }
            keep
        });
        before != self.entries.len()
    }

    /// Removes the least recently used entry with nothing in flight, if any.
    fn evict_least_recent(&mut self) {
        let oldest = self
            .entries
            .iter()
            .filter(|(_, e)| e.session.in_flight().is_none() && e.published.is_none())
            .min_by_key(|(_, e)| e.last_used)
            .map(|(k, _)| k.clone());
        if let Some(key) = oldest {
            if let Some(entry) = self.entries.remove(&key) {
                self.retired.entry(&entry);
            }
            self.events.push_back(Event::Evicted { key });
        }
    }
}

/// Records how a report ended: the fetch's outcome and latency (from `sent_at`, when the
/// request was in flight), and, for a token that replaced one still served, the lead before
/// that one's expiry.
#[cfg(feature = "metrics")]
fn record_outcome(
    metrics: &crate::metrics::Recorder,
    now: Instant,
    (sent_at, replaced): (Option<Instant>, Option<Instant>),
    outcome: &Outcome,
) {
    let latency = sent_at.map(|at| now.saturating_duration_since(at));
    match outcome {
        // A nonce retry is one fetch, counted when the retry ends.
        Outcome::Ignored | Outcome::Retry => {}
        Outcome::Token(_) => {
            metrics.fetch(crate::metrics::SUCCESS, latency);
            if let Some(expiry) = replaced {
                metrics.refresh_lead(expiry.saturating_duration_since(now));
            }
        }
        Outcome::Failed(error) => metrics.fetch(crate::metrics::outcome(error), latency),
        Outcome::Abandoned => metrics.fetch(crate::metrics::ABANDONED, None),
    }
}

/// A shared store's answer before a fetch, generic over the store's permit type (a boxed
/// blocking or async permit, in the adapters).
#[non_exhaustive]
pub enum Lookup<P> {
    /// A token another process fetched for this request shape: report it with
    /// [`Cache::handle_shared_token`]; if the cache refuses it, send as usual.
    Shared(Arc<Token>),
    /// This process fetches; the permit shares the result ([`Event::Publish`]) and holds,
    /// for example, a lock that keeps the other processes waiting for it. Dropped without a
    /// token (the fetch failed), it releases.
    Fetch(P),
    /// Fetch as a client without a store would: the store is unavailable, or waiting for
    /// another process took too long.
    FetchLocally,
}

impl<P> std::fmt::Debug for Lookup<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Shared(token) => f.debug_tuple("Shared").field(token).finish(),
            Self::Fetch(_) => f.write_str("Fetch(..)"),
            Self::FetchLocally => f.write_str("FetchLocally"),
        }
    }
}
