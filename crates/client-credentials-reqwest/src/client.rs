//! The public face of the async client: [`Client`], its [`ClientBuilder`], and the calls
//! that get, drop and inspect tokens. The driving itself lives in `driver.rs`.

use std::fmt;
use std::hash::{BuildHasher as _, Hasher as _};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use client_credentials_core::driver::Timeouts;
use client_credentials_core::{
    AccessToken, Cache, CacheKey, Config, Counters, Policy, Token, TokenError, TokenParams,
    TokenRequest, WallClock,
};

use crate::background::Background;
use crate::driver::Shared;
use crate::error::Error;
use crate::store::SharedStore;
use crate::transport;

/// An async OAuth 2.0 client credentials client: it fetches tokens, caches them per request
/// shape, refreshes them ahead of expiry, and shares one fetch between every task that needs
/// it.
///
/// `Client` is `Send + Sync` and cheap to clone (an [`Arc`] inside): clone it into every
/// task rather than building several, so that they share one cache. It sends with reqwest,
/// so a call that has to send needs a tokio runtime; outside one it returns
/// [`Error::NoRuntime`] rather than panicking, and a cached token is served anywhere.
///
/// # How callers wait
///
/// The hit on the default request shape takes no lock, reads no clock, writes nothing
/// shared and subscribes to nothing: the cache publishes the token it serves for that shape
/// into a sharded [`TokenSlot`](client_credentials_core::TokenSlot) on every state change,
/// and [`Client::token`] / [`Client::with_token`] read it without a lock (a generation
/// check and the thread's remembered token). The client's background task (below) acts
/// when the cache's [`snapshot_timeout`](client_credentials_core::Cache::snapshot_timeout)
/// passes: when a refresh is due, the next caller (one) takes the path below and starts it
/// while every other caller keeps the token; when the token stops being usable, it is
/// withdrawn. So a slot never serves longer than the cache would; the slot is attached
/// while that task runs, and until then every call takes the path below.
///
/// Every decision is taken by the core's [`Cache`](client_credentials_core::Cache), which
/// sits behind one `std` mutex, held only for its non-blocking calls and never across an
/// `.await` or a clock read, so the executor is never blocked. A call that misses the slot
/// polls the cache for its request shape and carries out what it says:
///
/// - *Ready*: a valid token is cached; it is returned at once, with nothing else touched
///   than the lock. This includes the time while a refresh is in flight: callers never wait
///   while a valid token exists.
/// - *Send, no valid token* (cold cache, or the token expired): this task is the one that
///   sends. It performs the request without the lock, reports the response to the cache,
///   and wakes every waiter.
/// - *Send, with the still-valid token* (time to refresh ahead of expiry): the caller gets
///   the valid token back at once, and the refresh runs in a spawned task, which reports to
///   the cache and wakes the waiters when it is done. No caller pays for a refresh.
/// - *Wait*: another task's request is in flight and there is no valid token; only then
///   does this task subscribe to a `tokio::sync::watch` channel (under the lock, so that no
///   wake-up is lost), and it waits until the cache changes or its deadline passes, then
///   polls again.
/// - *Failed*: the last fetch failed and no valid token exists (the cache is backing off or
///   cooling down); the shared error is returned without a request. All waiters of one
///   fetch get the same outcome.
///
/// Waiters are woken only when an input changed the cache (a token, a failure, an
/// abandoned request, an invalidation).
///
/// # Cancellation
///
/// Every future of this type is cancellation-safe. If the task that is sending is dropped
/// (a `select!` lost, a timeout fired, the task was aborted), a drop guard reports the
/// request abandoned and wakes the waiters, and the next one to poll sends instead: nobody
/// waits for a request that nobody will report. The policy's `request_timeout` is the last
/// backstop.
///
/// # Sharing tokens across processes
///
/// With a [`SharedStore`] ([`ClientBuilder::shared_store`]), the task that is to send asks
/// the store first: a token another process fetched is taken without a request, and a token
/// this process fetches is handed to the store, in a task of its own, after the local
/// callers got it, for as long as the core says it may be kept.
///
/// # Background refresh
///
/// One task per client always runs once a call has needed a token: it withdraws the
/// lock-free snapshot on time. With [`ClientBuilder::background_refresh`], the same task
/// also sleeps until the cache's next deadline (a refresh point, an idle shape to evict)
/// and feeds it the timer input then, which starts the refreshes that are due, so that tokens are renewed ahead of expiry
/// even when no caller happens to ask in that window: callers stay off the network across
/// expiry. These refreshes never count as cache hits. The task is started on the first call
/// that needs a token, in the caller's runtime (if that runtime shuts down, the next call
/// starts it again in its own). It holds only a weak reference to the client between
/// wake-ups, and ends when the last handle to the client is dropped. A shape that holds no
/// token (its fetch failed) is left to the next caller's poll.
#[derive(Clone)]
pub struct Client {
    pub(crate) shared: Arc<Shared>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shared = &self.shared;
        f.debug_struct("Client")
            .field("config", &shared.config)
            .field("connect_timeout", &shared.timeouts.connect)
            .field("timeout", &shared.timeouts.overall)
            .field("background_refresh", &shared.background.refreshes())
            .field("shared_store", &shared.store.is_some())
            .finish_non_exhaustive()
    }
}

/// Builds a [`Client`]: timeouts, the reqwest client builder, the cache policy, background
/// refresh, a shared store and the jitter seed.
///
/// ```
/// use std::time::Duration;
/// use client_credentials::reqwest::{Client, Config};
///
/// let config = Config::builder()
///     .token_url("https://auth.example.com/oauth2/token")
///     .client_id("my-service")
///     .client_secret("s3cr3t")
///     .build()?;
/// let client = Client::builder(config)
///     .connect_timeout(Duration::from_secs(2))
///     .timeout(Duration::from_secs(5))
///     .background_refresh(true)
///     .build()?;
/// # let _ = client;
/// # Ok::<_, Box<dyn std::error::Error>>(())
/// ```
#[must_use]
pub struct ClientBuilder {
    config: Config,
    policy: Policy,
    /// Unset: [`DEFAULT_TIMEOUT`](crate::DEFAULT_TIMEOUT) and
    /// [`DEFAULT_CONNECT_TIMEOUT`](crate::DEFAULT_CONNECT_TIMEOUT), see [`Timeouts::new`].
    timeout: Option<Duration>,
    connect_timeout: Option<Duration>,
    http: Option<reqwest::ClientBuilder>,
    store: Option<Arc<dyn SharedStore>>,
    seed: Option<u64>,
    background_refresh: bool,
    #[cfg(feature = "metrics")]
    metrics_name: Option<String>,
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The timeouts as the client will apply them, not as given.
        let timeouts = Timeouts::new(self.timeout, self.connect_timeout, &self.policy);
        f.debug_struct("ClientBuilder")
            .field("config", &self.config)
            .field("policy", &self.policy)
            .field("timeouts", &timeouts)
            .field("custom_http_client", &self.http.is_some())
            .field("shared_store", &self.store.is_some())
            .field("fixed_seed", &self.seed.is_some())
            .field("background_refresh", &self.background_refresh)
            .finish()
    }
}

impl ClientBuilder {
    /// Builds the token client from this reqwest builder (for a proxy, custom TLS roots, a
    /// user agent…).
    ///
    /// Whatever it says, token requests never follow a redirect (a redirect could carry the
    /// credentials to another host) and get this client's timeouts: they are applied on top.
    /// When any configured endpoint is plain `http://` (loopback only), the client is built
    /// with no proxy, this builder's and the system's alike, so that no proxy sees the
    /// credentials or a token in cleartext.
    ///
    /// Mutual TLS: the configuration's client certificate
    /// ([`ConfigBuilder::client_certificate`](client_credentials_core::ConfigBuilder::client_certificate))
    /// is set on this builder as its `identity`, replacing one you set. A private CA of the
    /// server goes here (`tls_certs_merge` or `tls_certs_only`). A `reqwest::Client` you
    /// build yourself for resource requests (rather than [`Client::http_client`] or
    /// [`Client::send_authorized`]) does not get the identity: give it
    /// `reqwest::Identity::from_pem` of
    /// [`ClientIdentity::with_pem`](client_credentials_core::ClientIdentity::with_pem), or a
    /// resource server refuses the certificate-bound token.
    pub fn http_client_builder(self, builder: reqwest::ClientBuilder) -> Self {
        Self {
            http: Some(builder),
            ..self
        }
    }

    /// The connect phase's limit (DNS, TCP, TLS) for token requests; at most the overall
    /// [`timeout`](Self::timeout). Default
    /// [`DEFAULT_CONNECT_TIMEOUT`](crate::DEFAULT_CONNECT_TIMEOUT), 5 s.
    pub fn connect_timeout(self, timeout: Duration) -> Self {
        Self {
            connect_timeout: Some(timeout),
            ..self
        }
    }

    /// The limit of a whole token request, from connect to the last byte of the body.
    /// Default [`DEFAULT_TIMEOUT`](crate::DEFAULT_TIMEOUT), 15 s; it is cut to the policy's
    /// `request_timeout`, so that the transport gives up first.
    pub fn timeout(self, timeout: Duration) -> Self {
        Self {
            timeout: Some(timeout),
            ..self
        }
    }

    /// The cache's timing policy and bounds: refresh point, expiry margin, backoff,
    /// cool-down, early-rejection throttle, how many request shapes are kept and for how
    /// long.
    pub fn policy(self, policy: Policy) -> Self {
        Self { policy, ..self }
    }

    /// Runs a background task that refreshes every cached token ahead of its expiry, even
    /// when no caller asks (default off: a refresh then starts on the first call after the
    /// refresh point, still without making that caller wait). See
    /// [`Client`](Client#background-refresh).
    pub fn background_refresh(self, enabled: bool) -> Self {
        Self {
            background_refresh: enabled,
            ..self
        }
    }

    /// Fixes the seed of the refresh and backoff jitter, for reproducible tests (default:
    /// a different one for every client).
    pub fn seed(self, seed: u64) -> Self {
        Self {
            seed: Some(seed),
            ..self
        }
    }

    /// Shares tokens with other processes through `store` (for example
    /// `client-credentials-redis`): before fetching, the sending task asks the store, which
    /// hands over a token another process fetched or lets this process fetch and share the
    /// result. See [`SharedStore`] for the contract; a store that fails makes the client
    /// fetch as it would without one.
    pub fn shared_store(self, store: impl SharedStore) -> Self {
        Self {
            store: Some(Arc::new(store)),
            ..self
        }
    }

    /// Records this client's token metrics (feature `metrics`), labelled `client = name`:
    /// fetches by outcome, fetch latency, cache hits and waits, refresh lead, stale tokens
    /// served during an outage, shared-store hits, time spent waiting. The core records them
    /// into the `metrics` facade, for whichever exporter the application installs; see
    /// [`client_credentials_core::metrics`] for the list. The name is exported as is: never
    /// a secret. Without it, nothing is recorded. With it, the client's timer of the
    /// lock-free hit path also wakes every
    /// [`HITS_PUBLISH_INTERVAL`](client_credentials_core::metrics::HITS_PUBLISH_INTERVAL)
    /// (5 s) to publish the hit count.
    ///
    /// ```
    /// # let config = client_credentials::reqwest::Config::builder().token_url("https://as.example.com/t").client_id("c").client_secret("s").build()?;
    /// let client = client_credentials::reqwest::Client::builder(config).metrics_name("orders").build()?;
    /// # let _ = client;
    /// # Ok::<_, Box<dyn std::error::Error>>(())
    /// ```
    #[cfg(feature = "metrics")]
    pub fn metrics_name(self, name: impl Into<String>) -> Self {
        Self {
            metrics_name: Some(name.into()),
            ..self
        }
    }

    /// Builds the client. Nothing is sent until the first token is asked for.
    ///
    /// # Errors
    /// [`Error::Build`] when reqwest cannot build its client (TLS initialisation failed).
    pub fn build(self) -> Result<Client, Error> {
        let timeouts = Timeouts::new(self.timeout, self.connect_timeout, &self.policy);
        let cleartext = transport::has_cleartext_endpoint(&self.config);
        let http = transport::configure(
            self.http.unwrap_or_default(),
            timeouts,
            cleartext,
            self.config.client_identity(),
        )
        .and_then(reqwest::ClientBuilder::build)
        .map_err(|e| Error::Build(Arc::new(e)))?;
        // A seed that differs between clients and processes, without an RNG dependency:
        // the standard library's randomly keyed hasher.
        let seed = self
            .seed
            .unwrap_or_else(|| std::hash::RandomState::new().build_hasher().finish());
        let clock = WallClock::new(Instant::now(), SystemTime::now());
        let mut cache = Cache::new(self.policy, clock, seed);
        if self.store.is_some() {
            cache = cache.with_shared_store();
        }
        #[cfg(feature = "metrics")]
        if let Some(name) = &self.metrics_name {
            cache = cache.with_metrics_name(name);
        }
        let background = Background::new(self.background_refresh);
        let shared = Shared::new(self.config, http, timeouts, cache, background, self.store);
        Ok(Client {
            shared: Arc::new(shared),
        })
    }
}

impl Client {
    /// A client with the default reqwest configuration, timeouts and policy.
    ///
    /// # Errors
    /// As [`ClientBuilder::build`].
    pub fn new(config: Config) -> Result<Self, Error> {
        Self::builder(config).build()
    }

    /// A builder, to set timeouts, the reqwest builder, the policy, background refresh, a
    /// shared store or the seed.
    pub fn builder(config: Config) -> ClientBuilder {
        ClientBuilder {
            config,
            policy: Policy::default(),
            timeout: None,
            connect_timeout: None,
            http: None,
            store: None,
            seed: None,
            background_refresh: false,
            #[cfg(feature = "metrics")]
            metrics_name: None,
        }
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &Config {
        &self.shared.config
    }

    /// The reqwest client that sends token requests (it follows no redirect).
    #[must_use]
    pub fn http_client(&self) -> &reqwest::Client {
        &self.shared.http
    }

    /// A valid token for the configured defaults (scopes, audience, resources), from the
    /// cache or fetched now. See [the type docs](Client#how-callers-wait) for who waits.
    ///
    /// # Errors
    /// [`Error::Token`] when the last fetch failed and no valid token exists;
    /// [`Error::NoRuntime`] when a fetch was needed outside a tokio runtime.
    pub async fn token(&self) -> Result<Arc<Token>, Error> {
        match self.shared.background.slot.get() {
            Some(token) => Ok(token),
            None => self.shared.token(&self.shared.default_request).await,
        }
    }

    /// Calls `f` with a valid token for the configured defaults, lent rather than handed
    /// over: the form of [`Client::token`] that scales across cores, since a cache hit then
    /// writes no shared reference count. Keep `f` short (build a header value, say); it runs
    /// with no lock held.
    ///
    /// ```no_run
    /// # async fn demo(client: &client_credentials_reqwest::Client) -> Result<(), client_credentials_reqwest::Error> {
    /// let header = client.with_token(|token| token.authorization_header()).await?;
    /// # let _ = header; Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`Client::token`].
    pub async fn with_token<R>(&self, f: impl FnOnce(&Token) -> R) -> Result<R, Error> {
        match self.shared.background.slot.with(f) {
            Ok(result) => Ok(result),
            Err(f) => Ok(f(&*self.shared.token(&self.shared.default_request).await?)),
        }
    }

    /// A valid token for these parameters. Each request shape (scopes, audience, resources,
    /// extra parameters) is a cache entry of its own, and shapes never share a token. The
    /// cache is bounded by [`Policy::max_keys`] and [`Policy::idle_eviction`], so that
    /// shapes made from request input (a scope per tenant) cannot grow it without limit.
    ///
    /// # Errors
    /// [`Error::Config`] when the parameters are invalid (nothing is sent); otherwise as
    /// [`Client::token`].
    pub async fn token_for(&self, params: &TokenParams) -> Result<Arc<Token>, Error> {
        let request = self.shared.config.request(params)?;
        self.shared.token(&request).await
    }

    /// Restores a token saved earlier (simple-oauth2's `createToken`), for the default
    /// request shape: one fetched before a restart and kept with [`Token::storable`]. While
    /// it is usable, calls are answered from it without a request, and it is refreshed
    /// ahead of expiry like a fetched one. Needs no runtime.
    ///
    /// Returns `Ok(true)` when the cache serves it from now on, `Ok(false)` when the cache
    /// already holds a token that lives longer (and keeps serving that one).
    ///
    /// ```no_run
    /// # async fn demo(client: client_credentials_reqwest::Client) -> Result<(), Box<dyn std::error::Error>> {
    /// let saved = serde_json::to_vec(&client.token().await?.storable())?; // before the restart
    /// let stored: client_credentials::reqwest::Token = serde_json::from_slice(&saved)?;
    /// if let Err(e) = client.restore(stored) {
    ///     tracing::info!("stored token not usable ({e}); the next call fetches one");
    /// }
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::Stored`] when the configuration does not take the token (another token
    /// type, no expiry, or its usable life is over); nothing changes.
    pub fn restore(&self, token: impl Into<Arc<Token>>) -> Result<bool, Error> {
        self.restore_shape(&self.shared.default_request, token.into())
    }

    /// [`Client::restore`] for the token of these parameters.
    ///
    /// # Errors
    /// [`Error::Config`] for invalid parameters, [`Error::Stored`] as [`Client::restore`].
    pub fn restore_for(
        &self,
        params: &TokenParams,
        token: impl Into<Arc<Token>>,
    ) -> Result<bool, Error> {
        self.restore_shape(&self.shared.config.request(params)?, token.into())
    }

    fn restore_shape(&self, request: &TokenRequest, token: Arc<Token>) -> Result<bool, Error> {
        let now = Instant::now();
        let mut cache = self.shared.lock();
        let taken = cache.restore(now, request, token)?;
        if taken {
            drop(cache);
            self.shared.notify();
        }
        Ok(taken)
    }

    /// Forgets the cached tokens of every request shape (@schematize's `signout()`), so
    /// that the next call fetches anew. An answer still in flight is dropped when it
    /// arrives. Returns how many shapes were forgotten.
    pub fn clear(&self) -> usize {
        let forgotten = self.shared.lock().clear();
        if forgotten > 0 {
            self.shared.notify();
        }
        forgotten
    }

    /// Drops the cached token if it is `rejected` (a resource server refused it), in
    /// whichever request shape holds it, so that the next call fetches a new one. A token
    /// that was already replaced is left alone: many tasks may report the same rejection,
    /// and only the first causes a fetch. Returns whether a cached token was dropped.
    /// [`AuthMiddleware`](crate::AuthMiddleware) and [`Client::send_authorized`] call it for
    /// you.
    pub fn invalidate(&self, rejected: &AccessToken) -> bool {
        self.shared.invalidate(rejected)
    }

    /// Asks for a new token of the default request shape, even though the cached one is
    /// valid. It does not wait: callers keep getting the cached token until the new one
    /// arrives, the refresh runs in a task of its own on the next call (or in the
    /// background task), and a backoff is not cut short. A shape without a token is left
    /// alone.
    pub fn force_refresh(&self) {
        self.force_refresh_key(self.shared.default_request.cache_key());
    }

    /// [`Client::force_refresh`] for the token of these parameters; never creates a cache
    /// entry.
    ///
    /// # Errors
    /// [`Error::Config`] when the parameters are invalid.
    pub fn force_refresh_for(&self, params: &TokenParams) -> Result<(), Error> {
        let request = self.shared.config.request(params)?;
        self.force_refresh_key(request.cache_key());
        Ok(())
    }

    fn force_refresh_key(&self, key: &CacheKey) {
        let now = Instant::now();
        let mut cache = self.shared.lock();
        if cache.force_refresh(now, key) {
            // The schedule moved: the background task looks again.
            drop(cache);
            self.shared.notify();
        }
    }

    /// Plain numbers about the default request shape, for logs and metrics: fetches
    /// started, succeeded, failed and abandoned, cache hits, invalidations… (all zero
    /// before the first call). [`Client::last_error`] and [`Client::next_refresh`] tell the
    /// rest.
    #[must_use]
    pub fn counters(&self) -> Counters {
        self.read(None, |cache, key| cache.counters(key))
            .unwrap_or_default()
    }

    /// [`Client::counters`] for the request shape of these parameters (all zero for a
    /// shape not in the cache); never creates a cache entry.
    ///
    /// # Errors
    /// [`Error::Config`] when the parameters are invalid.
    pub fn counters_for(&self, params: &TokenParams) -> Result<Counters, Error> {
        let request = self.shared.config.request(params)?;
        let counters = self.read(Some(request.cache_key()), |cache, key| cache.counters(key));
        Ok(counters.unwrap_or_default())
    }

    /// Why the last failed fetch of the default request shape failed, kept after a later
    /// success; `None` if no fetch ever failed (or the shape is not in the cache).
    #[must_use]
    pub fn last_error(&self) -> Option<TokenError> {
        self.read(None, |cache, key| cache.last_error(key).cloned())
    }

    /// [`Client::last_error`] for the request shape of these parameters; never creates a
    /// cache entry.
    ///
    /// # Errors
    /// [`Error::Config`] when the parameters are invalid.
    pub fn last_error_for(&self, params: &TokenParams) -> Result<Option<TokenError>, Error> {
        let request = self.shared.config.request(params)?;
        Ok(self.read(Some(request.cache_key()), |cache, key| {
            cache.last_error(key).cloned()
        }))
    }

    /// When the default request shape tries next for a token: the refresh point of the
    /// cached token, or the end of a backoff. `None` while a fetch is in flight, when
    /// nothing is cached, or when the token never needs refreshing.
    #[must_use]
    pub fn next_refresh(&self) -> Option<Instant> {
        self.read(None, Cache::next_refresh)
    }

    /// [`Client::next_refresh`] for the request shape of these parameters; never creates a
    /// cache entry.
    ///
    /// # Errors
    /// [`Error::Config`] when the parameters are invalid.
    pub fn next_refresh_for(&self, params: &TokenParams) -> Result<Option<Instant>, Error> {
        let request = self.shared.config.request(params)?;
        Ok(self.read(Some(request.cache_key()), Cache::next_refresh))
    }

    /// A getter of the cache for `key` (the default request shape's when `None`), under
    /// the lock. Getters never create an entry.
    /// How many request shapes the cache holds now: at most the policy's `max_keys`, since
    /// idle and least recently used shapes are evicted.
    #[must_use]
    pub fn cached_shapes(&self) -> usize {
        self.shared.lock().len()
    }

    fn read<T>(&self, key: Option<&CacheKey>, get: impl FnOnce(&Cache, &CacheKey) -> T) -> T {
        let key = key.unwrap_or_else(|| self.shared.default_request.cache_key());
        get(&self.shared.lock(), key)
    }
}
