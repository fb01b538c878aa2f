//! The thread-safe client and its driver: a mutex around the core's [`Cache`], a condition
//! variable for the callers who wait, and the threads that send. Every decision is the
//! cache's; this file only locks, sends, reports and wakes.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use client_credentials_core::driver::{self, Exchange, KeyDigest, Publish, Timeouts};
use client_credentials_core::{
    AccessToken, Action, Cache, CacheKey, Config, Event, Failure, HttpRequest, Lookup, RequestId,
    Token, TokenParams, TokenRequest,
};

use crate::builder::ClientBuilder;
use crate::error::Error;
use crate::snapshot::SnapshotTimer;
use crate::store::{FetchPermit, SharedStore};
use crate::transport;

/// The shortest wait on the condition variable: a guard against a deadline that is already
/// due (the cache promises strictly future deadlines; this keeps a slip from spinning).
pub(crate) const MIN_WAIT: Duration = Duration::from_millis(1);

/// A blocking OAuth 2.0 client credentials client: it fetches tokens, caches them per
/// request shape, refreshes them ahead of expiry, and shares one fetch between every thread
/// that needs it.
///
/// `Client` is `Send + Sync` and cheap to clone (an [`Arc`] inside): clone it into every
/// thread rather than building several, so that they share one cache.
///
/// # How callers wait
///
/// The hit on the default request shape takes no lock, reads no clock and writes nothing
/// shared: the cache publishes the token it serves for that shape into a sharded
/// [`TokenSlot`](client_credentials_core::TokenSlot) on every state change, and
/// [`Client::token`] / [`Client::with_token`] read it without a lock (a generation check
/// and the thread's remembered token). A slot never holds a token longer than the cache
/// would serve it: one thread per client (`client-credentials-snapshot`, parked between
/// deadlines) acts when the cache's [`snapshot_timeout`](Cache::snapshot_timeout) passes:
/// when the token is due for refresh, the next caller (one) takes the path below and starts
/// the refresh while every other caller keeps the token; when it stops being usable, it is
/// withdrawn and callers take the path below. The thread
/// stops when the last clone of the client is dropped; if it cannot be spawned, no slot is
/// attached and every call takes the locked path.
///
/// Everything else lives in the core's [`Cache`] behind one mutex, held only to poll or feed
/// the cache, never during I/O, a clock read or a call into the shared store. A call that
/// misses the slot polls the cache for its request shape and does what the cache says:
///
/// - *Ready*: a valid token is cached; it is returned at once. This includes the time while
///   a refresh is in flight: callers never wait while a valid token exists.
/// - *Send, no valid token* (cold cache, or the token expired): this thread is the one that
///   sends. It releases the lock, performs the request, hands the response to the cache,
///   and wakes every waiter.
/// - *Send, with the still-valid token* (time to refresh ahead of expiry): the caller gets the
///   valid token back at once, and the refresh runs on a short-lived background thread,
///   which feeds the cache and wakes waiters when it is done. No caller pays for a
///   refresh.
/// - *Wait*: another thread's request is in flight and there is no valid token; this thread
///   sleeps on the condition variable until the cache changes or its deadline passes, then
///   polls again.
/// - *Failed*: the last fetch failed and no valid token exists (the cache is backing off or
///   cooling down); the shared error is returned without a request. All waiters of one fetch
///   get the same outcome.
///
/// Waiters are woken only when an input changed something (the core says so). A sender
/// that panics or is unwound still reports its request abandoned, so that another caller
/// can send; the policy's `request_timeout` is the last backstop.
///
/// With a [`SharedStore`] ([`ClientBuilder::shared_store`]), the thread that is to send asks
/// the store first: a token another process fetched is taken without a request, and a token
/// this process fetches is handed to the store after the local callers got it.
#[derive(Clone)]
pub struct Client {
    pub(crate) shared: Arc<Shared>,
}

/// What every clone of a [`Client`] shares.
pub(crate) struct Shared {
    pub(crate) config: Config,
    pub(crate) default_request: TokenRequest,
    pub(crate) agent: ureq::Agent,
    pub(crate) timeouts: Timeouts,
    cache: Mutex<Cache>,
    changed: Condvar,
    /// Callers sleeping on `changed`, counted under the cache's lock: a notification is a
    /// system call even when nobody waits, and most inputs have nobody to wake.
    waiting: AtomicUsize,
    store: Option<Arc<dyn SharedStore>>,
    /// The default request's published token, read without the lock, and its timer.
    pub(crate) snapshot: SnapshotTimer,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("config", &self.shared.config)
            .field("connect_timeout", &self.shared.timeouts.connect)
            .field("timeout", &self.shared.timeouts.overall)
            .field("shared_store", &self.shared.store.is_some())
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client with the default agent, timeouts and policy.
    #[must_use]
    pub fn new(config: Config) -> Self {
        Self::builder(config).build()
    }

    /// A builder, to set timeouts, an agent, the policy, the seed or a shared store.
    pub fn builder(config: Config) -> ClientBuilder {
        ClientBuilder::new(config)
    }

    /// The client of a built cache (from [`ClientBuilder::build`]).
    pub(crate) fn from_parts(
        config: Config,
        agent: ureq::Agent,
        timeouts: Timeouts,
        cache: Cache,
        store: Option<Arc<dyn SharedStore>>,
    ) -> Self {
        let shared = Arc::new(Shared {
            default_request: config.default_request(),
            config,
            agent,
            timeouts,
            cache: Mutex::new(cache),
            changed: Condvar::new(),
            waiting: AtomicUsize::new(0),
            store,
            snapshot: SnapshotTimer::new(),
        });
        shared.start_snapshot_timer();
        Self { shared }
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &Config {
        &self.shared.config
    }

    /// The agent that sends token requests (and, by default, the requests of
    /// [`Client::send_authorized`]).
    #[must_use]
    pub fn agent(&self) -> &ureq::Agent {
        &self.shared.agent
    }

    /// A valid token for the configured defaults (scopes, audience, resources), from the
    /// cache or fetched now. See [the type docs](Client#how-callers-wait) for who waits.
    ///
    /// # Errors
    /// [`Error::Token`] when the last fetch failed and no valid token exists.
    pub fn token(&self) -> Result<Arc<Token>, Error> {
        match self.shared.snapshot.slot.get() {
            Some(token) => Ok(token),
            None => self.shared.token(&self.shared.default_request),
        }
    }

    /// Calls `f` with a valid token for the configured defaults, lent rather than handed
    /// over: the form of [`Client::token`] that scales across cores, since a cache hit then
    /// writes no shared reference count. Keep `f` short (build a header value, say); it runs
    /// with no lock held.
    ///
    /// ```no_run
    /// # fn demo(client: &client_credentials_ureq::Client) -> Result<(), client_credentials_ureq::Error> {
    /// let header = client.with_token(|token| token.authorization_header())?;
    /// # let _ = header; Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`Client::token`].
    pub fn with_token<R>(&self, f: impl FnOnce(&Token) -> R) -> Result<R, Error> {
        match self.shared.snapshot.slot.with(f) {
            Ok(result) => Ok(result),
            Err(f) => Ok(f(&*self.shared.token(&self.shared.default_request)?)),
        }
    }

    /// A valid token for these parameters. Each distinct request shape (scopes, audience,
    /// resources, extra parameters) has its own cache entry; different shapes never share a
    /// token. The cache is bounded ([`Policy::max_keys`](crate::Policy::max_keys),
    /// [`Policy::idle_eviction`](crate::Policy::idle_eviction)), so shapes built from
    /// request input (a scope per tenant) cannot grow it without limit.
    ///
    /// # Errors
    /// [`Error::Config`] when the parameters are invalid (nothing is sent), or
    /// [`Error::Token`] as for [`Client::token`].
    pub fn token_for(&self, params: &TokenParams) -> Result<Arc<Token>, Error> {
        let request = self.shared.config.request(params)?;
        self.shared.token(&request)
    }

    /// Restores a token saved earlier (simple-oauth2's `createToken`): one this process
    /// fetched before a restart, kept with [`Token::storable`] in a file or a secret store,
    /// for the default request shape. While it is usable, calls are served from it without
    /// a request, and it is refreshed ahead of expiry like a fetched token.
    ///
    /// Returns `Ok(true)` when the cache serves it from now on, `Ok(false)` when the cache
    /// holds a token that lives longer already (which it keeps serving).
    ///
    /// ```no_run
    /// # fn demo(client: &client_credentials_ureq::Client) -> Result<(), Box<dyn std::error::Error>> {
    /// use client_credentials::ureq::Token;
    ///
    /// // Before shutting down:
    /// std::fs::write("token.json", serde_json::to_vec(&client.token()?.storable())?)?;
    /// // After the restart:
    /// let stored: Token = serde_json::from_slice(&std::fs::read("token.json")?)?;
    /// match client.restore(stored) {
    ///     Ok(_) => {}
    ///     Err(e) => eprintln!("fetching a new token: {e}"), // expired, say
    /// }
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::Stored`] when the configuration does not take the token (another token
    /// type, no expiry, or its usable life is over); nothing changes.
    pub fn restore(&self, token: impl Into<Arc<Token>>) -> Result<bool, Error> {
        self.shared
            .restore(&self.shared.default_request, token.into())
    }

    /// [`Client::restore`] for the token of these parameters.
    ///
    /// # Errors
    /// [`Error::Config`] when the parameters are invalid, [`Error::Stored`] as for
    /// [`Client::restore`].
    pub fn restore_for(
        &self,
        params: &TokenParams,
        token: impl Into<Arc<Token>>,
    ) -> Result<bool, Error> {
        let request = self.shared.config.request(params)?;
        self.shared.restore(&request, token.into())
    }

    /// Forgets every cached token, of every request shape (@schematize's `signout()`): the
    /// next call fetches a new one. A fetch in flight is forgotten too; its answer is
    /// dropped when it arrives. Returns how many request shapes were dropped.
    pub fn clear(&self) -> usize {
        self.shared.input(|cache, _| {
            let dropped = cache.clear();
            (dropped, dropped > 0)
        })
    }

    /// Drops the cached token if it is `rejected` (a resource server answered 401 to it),
    /// whichever request shape holds it, so that the next call fetches a new one. A token
    /// that was already replaced is left alone: many threads may report the same rejection,
    /// and only the first causes a fetch. Returns whether a cached token was dropped.
    /// [`Client::send_authorized`] does this for you.
    pub fn invalidate(&self, rejected: &AccessToken) -> bool {
        self.shared.input(|cache, now| {
            let dropped = cache.invalidate(now, rejected);
            (dropped, dropped)
        })
    }

    /// Makes the next call for the default request shape start fetching a new token, even
    /// if the cached one is valid. It does not block: while the cached token is valid,
    /// callers keep getting it and the fetch runs in the background. It does not cut a
    /// backoff short (a server's `Retry-After` outranks it), and it does nothing for a shape
    /// that holds no token yet.
    pub fn force_refresh(&self) {
        self.shared
            .force_refresh(self.shared.default_request.cache_key());
    }

    /// [`Client::force_refresh`] for the token of these parameters. Creates no cache entry.
    ///
    /// # Errors
    /// [`Error::Config`] when the parameters are invalid.
    pub fn force_refresh_for(&self, params: &TokenParams) -> Result<(), Error> {
        let request = self.shared.config.request(params)?;
        self.shared.force_refresh(request.cache_key());
        Ok(())
    }
}

/// Logs an event of the cache, as the core describes it ([`driver::event_log`]).
fn log_event(event: &Event) {
    let log = driver::event_log(event);
    let (key, id, error) = (
        log.key,
        log.request_id,
        log.error.map(tracing::field::display),
    );
    if log.warn {
        tracing::warn!(%key, id, error, "{}", log.message);
    } else {
        tracing::debug!(%key, id, error, "{}", log.message);
    }
}

/// Drains the events after an input, under the lock; returns the token to publish for
/// request `own` (sent by this thread, which holds the store's permit).
fn drain(cache: &mut Cache, own: Option<RequestId>) -> Option<Publish> {
    driver::drain_events(cache, own, log_event)
}

impl Shared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, Cache> {
        // The lock is never held across I/O or a call into the shared store (only the cache's
        // events are logged under it); a panic while it was held is a bug in the cache, and
        // the state it left is the best there is.
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs an input under the lock, drains the events, and wakes the waiters (and the
    /// snapshot timer) if the input says it changed something (the `bool` that `input`
    /// returns beside its value). The clock is read before the lock is taken.
    pub(crate) fn input<T>(&self, input: impl FnOnce(&mut Cache, Instant) -> (T, bool)) -> T {
        let now = Instant::now();
        let mut cache = self.lock();
        let (value, changed) = input(&mut cache, now);
        drain(&mut cache, None);
        self.unlock(cache, changed);
        value
    }

    /// Releases the lock after an input; then wakes the waiting callers if the input
    /// `changed` something, and the snapshot timer if the published token's window now ends
    /// before the timer was going to look (most inputs move it later or withdraw the token,
    /// and leave the timer asleep).
    fn unlock(&self, cache: MutexGuard<'_, Cache>, changed: bool) {
        let timer = self.snapshot.ends_earlier(&cache);
        let waiters = changed && self.waiting.load(Ordering::Relaxed) > 0;
        drop(cache);
        if waiters {
            self.changed.notify_all();
        }
        if timer {
            self.snapshot.wake();
        }
    }

    fn restore(&self, request: &TokenRequest, token: Arc<Token>) -> Result<bool, Error> {
        self.input(|cache, now| match cache.restore(now, request, token) {
            Ok(taken) => (Ok(taken), taken),
            Err(problem) => (Err(Error::Stored(problem)), false),
        })
    }

    fn force_refresh(&self, key: &CacheKey) {
        self.input(|cache, now| ((), cache.force_refresh(now, key)));
    }

    /// The driver loop of one caller: poll, and wait, send or return as the cache says. The
    /// clock is read before each lock.
    pub(crate) fn token(self: &Arc<Self>, request: &TokenRequest) -> Result<Arc<Token>, Error> {
        // Only the default request's shape is published; a poll of it may change what is.
        let published = std::ptr::eq(request, &self.default_request);
        let mut call = driver::Call::default();
        loop {
            let now = Instant::now();
            let mut cache = self.lock();
            let action = cache.poll(now, request);
            call.observe(&mut cache, now, &action);
            if let Action::Ready(token) = action {
                // The hit: a poll that serves a token queues no event; of the default shape,
                // it may have published the token again.
                if published {
                    self.unlock(cache, false);
                } else {
                    drop(cache);
                }
                return Ok(token);
            }
            drain(&mut cache, None);
            if published && self.snapshot.ends_earlier(&cache) {
                self.snapshot.wake();
            }
            match action {
                Action::Ready(token) => return Ok(token),
                Action::Failed(error) => return Err(Error::Token(error)),
                Action::Wait(until) => {
                    let wait = until.saturating_duration_since(now).max(MIN_WAIT);
                    self.waiting.fetch_add(1, Ordering::Relaxed);
                    let (cache, _) = self
                        .changed
                        .wait_timeout(cache, wait)
                        .unwrap_or_else(PoisonError::into_inner);
                    self.waiting.fetch_sub(1, Ordering::Relaxed);
                    drop(cache);
                }
                Action::Send {
                    id,
                    request: http,
                    current: Some(token),
                } => {
                    drop(cache);
                    self.refresh_in_background(request.cache_key(), id, http);
                    return Ok(token);
                }
                Action::Send {
                    id,
                    request: http,
                    current: None,
                } => {
                    drop(cache);
                    InFlight::new(self, id).fetch(request.cache_key(), http);
                }
            }
        }
    }

    fn refresh_in_background(self: &Arc<Self>, key: &CacheKey, id: RequestId, http: HttpRequest) {
        let flight = InFlight::new(self, id);
        let key = key.clone();
        let spawned = thread::Builder::new()
            .name("client-credentials-refresh".to_owned())
            .spawn(move || flight.fetch(&key, http));
        if let Err(e) = spawned {
            // The closure, and the flight in it, were dropped unsent: the refresh is reported
            // abandoned, so that a later caller can try again (or, once the token expired,
            // send it itself).
            tracing::warn!(error = %e, "could not start a token refresh thread");
        }
    }
}

/// What the shared store decided about a request about to be sent.
enum StoreAnswer {
    /// A token from the store answered it: nothing to send.
    Answered,
    /// Send it; share the token through the permit, if any.
    Send(Option<Box<dyn FetchPermit>>),
}

/// A request in flight. Completing it hands the outcome to the cache; dropping it
/// uncompleted (a panic in the transport or the store, a thread that never started)
/// reports it abandoned. Either way the waiters wake.
struct InFlight {
    shared: Arc<Shared>,
    id: RequestId,
    done: bool,
}

impl InFlight {
    fn new(shared: &Arc<Shared>, id: RequestId) -> Self {
        Self {
            shared: Arc::clone(shared),
            id,
            done: false,
        }
    }

    /// Performs the token request (unless the shared store answers it), reports it, and
    /// publishes the token through the store's permit after the local callers were woken.
    fn fetch(mut self, key: &CacheKey, http: HttpRequest) {
        let shared = Arc::clone(&self.shared);
        let config = &shared.config;
        let span = client_credentials_core::__exchange_span!(
            "token_fetch",
            config.token_url(),
            token_url = %config.token_url(),
            client_id = config.client_id(),
            key = %KeyDigest::of(key),
        );
        let _entered = span.enter();
        let permit = match self.consult_store() {
            StoreAnswer::Answered => return,
            StoreAnswer::Send(permit) => permit,
        };
        let http = match transport::with_assertion(config, http, shared.timeouts.overall) {
            Ok(http) => http,
            Err(error) => {
                tracing::warn!(error = %error, "token request not sent");
                let _unpublished = self.complete(Err(Failure::Error(error)));
                return;
            }
        };
        let started = Instant::now();
        tracing::debug!("sending token request");
        let exchange = transport::send(&shared.agent, http, shared.timeouts, config.max_body());
        transport::log_received(started, &exchange);
        let publish = self.complete(exchange);
        // A permit dropped without a token (the fetch failed) releases.
        if let (Some(permit), Some(Publish { token, ttl })) = (permit, publish) {
            permit.publish(&token, ttl);
        }
    }

    /// Asks the shared store, if there is one, before the request is sent: a token another
    /// process fetched answers it, or this process sends (with a permit to share the
    /// result, or alone). The store is called without the lock.
    fn consult_store(&mut self) -> StoreAnswer {
        let Some(store) = &self.shared.store else {
            return StoreAnswer::Send(None);
        };
        let now = Instant::now();
        let Some(query) = self.shared.lock().store_query(now, self.id) else {
            return StoreAnswer::Send(None);
        };
        match store.before_fetch(&query) {
            Lookup::Shared(token) => {
                let taken = self.shared.input(|cache, now| {
                    let taken = cache.handle_shared_token(now, self.id, token);
                    (taken, taken)
                });
                self.done = taken;
                if taken {
                    return StoreAnswer::Answered;
                }
                tracing::debug!("the shared store's token is not usable here, sending");
                StoreAnswer::Send(None)
            }
            Lookup::Fetch(permit) => StoreAnswer::Send(Some(permit)),
            // `FetchLocally`, and any answer a later core adds: send as without a store.
            _ => StoreAnswer::Send(None),
        }
    }

    /// Hands the exchange to the cache, drains the events and wakes the waiters if anything
    /// changed; returns the token to publish, if the cache says so.
    fn complete(&mut self, exchange: Exchange) -> Option<Publish> {
        let now = Instant::now();
        let mut cache = self.shared.lock();
        let outcome = driver::handle_exchange(&mut cache, now, self.id, exchange);
        let publish = drain(&mut cache, Some(self.id));
        self.done = true;
        self.shared.unlock(cache, outcome.changed());
        publish
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if !self.done {
            let _unpublished = self.complete(Err(Failure::Abandoned));
        }
    }
}
