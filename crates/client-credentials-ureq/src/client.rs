//! The thread-safe client: a mutex around the core's sessions, a condition variable for the
//! callers who wait, and the threads that send.

use std::fmt;
use std::hash::{BuildHasher as _, Hasher as _};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use client_credentials_core::session::{Action, Counters, Policy, RequestId, Sessions, WallClock};
use client_credentials_core::{
    AccessToken, Config, HttpRequest, Introspection, Token, TokenError, TokenParams, TokenRequest,
};
use http::header::AUTHORIZATION;

use crate::error::Error;
use crate::store::{FetchPermit, Lookup, SharedStore, StoreQuery};
use crate::transport::{self, DEFAULT_CONNECT_TIMEOUT, DEFAULT_TIMEOUT, Outcome, Timeouts};

/// The shortest wait on the condition variable: a guard against a deadline that is already
/// due (the session promises strictly future deadlines; this keeps a slip from spinning).
const MIN_WAIT: Duration = Duration::from_millis(1);

/// A blocking OAuth 2.0 client credentials client: it fetches tokens, caches them per
/// request shape, refreshes them ahead of expiry, and shares one fetch between every thread
/// that needs it.
///
/// `Client` is `Send + Sync` and cheap to clone (an [`Arc`] inside): clone it into every
/// thread rather than building several, so that they share one cache.
///
/// # How callers wait
///
/// All state lives in the core's [`Sessions`] behind one mutex, held only to poll or feed a
/// session, never during I/O. A call to [`Client::token`] polls the session for its request
/// shape and does what the session says:
///
/// - *Ready*: a valid token is cached; it is returned at once. This includes the time while
///   a refresh is in flight: callers never wait while a valid token exists.
/// - *Send, no valid token* (cold cache, or the token expired): this thread is the one that
///   sends. It releases the lock, performs the request, hands the response to the session,
///   and wakes every waiter.
/// - *Send, with the still-valid token* (time to refresh ahead of expiry): the caller gets the
///   valid token back at once, and the refresh runs on a short-lived background thread,
///   which feeds the session and wakes waiters when it is done. No caller pays for a
///   refresh.
/// - *Wait*: another thread's request is in flight and there is no valid token; this thread
///   sleeps on the condition variable until the state changes or the session's deadline
///   passes, then polls again.
/// - *Failed*: the last fetch failed and no valid token exists (the session is backing off or
///   cooling down); the shared error is returned without a request. All waiters of one fetch
///   get the same outcome.
///
/// A sender that panics or is unwound still tells the session that its request was
/// abandoned, so that another caller can send; the session's `request_timeout` is the last
/// backstop.
///
/// With a [`SharedStore`] ([`ClientBuilder::shared_store`]), the thread that is to send asks
/// the store first: a token another process fetched is taken without a request, and a token
/// this process fetches is handed to the store after the local callers got it.
#[derive(Clone)]
pub struct Client {
    shared: Arc<Shared>,
}

struct Shared {
    config: Config,
    default_request: TokenRequest,
    agent: ureq::Agent,
    timeouts: Timeouts,
    sessions: Mutex<Sessions>,
    changed: Condvar,
    store: Option<Arc<dyn SharedStore>>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("config", &self.shared.config)
            .field("connect_timeout", &self.shared.timeouts.connect)
            .field("timeout", &self.shared.timeouts.global)
            .field("shared_store", &self.shared.store.is_some())
            .finish_non_exhaustive()
    }
}

/// Builds a [`Client`]: timeouts, a caller-supplied agent, the session policy and the jitter
/// seed.
///
/// ```
/// use std::time::Duration;
/// use client_credentials_ureq::{Client, Config};
///
/// let config = Config::builder()
///     .token_url("https://auth.example.com/oauth2/token")
///     .client_id("my-service")
///     .client_secret("s3cr3t")
///     .build()?;
/// let client = Client::builder(config)
///     .connect_timeout(Duration::from_secs(2))
///     .timeout(Duration::from_secs(5))
///     .build();
/// # let _ = client;
/// # Ok::<_, client_credentials_ureq::ConfigError>(())
/// ```
#[must_use]
pub struct ClientBuilder {
    config: Config,
    agent: Option<ureq::Agent>,
    connect_timeout: Option<Duration>,
    timeout: Option<Duration>,
    policy: Policy,
    seed: Option<u64>,
    store: Option<Arc<dyn SharedStore>>,
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("config", &self.config)
            .field("custom_agent", &self.agent.is_some())
            .field("connect_timeout", &self.connect_timeout)
            .field("timeout", &self.timeout)
            .field("policy", &self.policy)
            .field("shared_store", &self.store.is_some())
            .finish_non_exhaustive()
    }
}

impl ClientBuilder {
    /// Sends with this agent (for a proxy, custom TLS roots, or a shared connection pool).
    ///
    /// Whatever the agent's configuration, token requests never treat an HTTP status as an
    /// error, never follow a redirect, and get this client's timeouts: they are set on each
    /// request. A plain `http://` endpoint (loopback only) is never reached through the
    /// agent's proxy, so that no proxy sees the credentials or a token in cleartext;
    /// `https://` requests use it.
    pub fn agent(mut self, agent: ureq::Agent) -> Self {
        self.agent = Some(agent);
        self
    }

    /// How long connecting (DNS, TCP, TLS) may take. Default
    /// [`DEFAULT_CONNECT_TIMEOUT`](crate::DEFAULT_CONNECT_TIMEOUT), 5 s.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = Some(timeout);
        self
    }

    /// How long a whole token request may take, body included. Default
    /// [`DEFAULT_TIMEOUT`](crate::DEFAULT_TIMEOUT), 15 s, and never more than the policy's
    /// `request_timeout`.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// The session's timing policy: refresh point, expiry margin, backoff, cool-down.
    pub fn policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
        self
    }

    /// The seed of the refresh and backoff jitter (default: random per client). Fix it for
    /// reproducible tests.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Shares tokens with other processes through `store` (for example
    /// `client-credentials-redis`): before fetching, the sending thread asks the store,
    /// which hands over a token another process fetched or lets this process fetch and
    /// share the result. See [`SharedStore`] for the contract; a store that fails makes the
    /// client fetch as it would without one.
    pub fn shared_store(mut self, store: impl SharedStore) -> Self {
        self.store = Some(Arc::new(store));
        self
    }

    /// Builds the client. Nothing is sent until the first token is asked for.
    #[must_use]
    pub fn build(self) -> Client {
        // The transport gives up before the session's backstop would send a second request.
        let global = self
            .timeout
            .unwrap_or(DEFAULT_TIMEOUT)
            .min(self.policy.request_timeout);
        let timeouts = Timeouts {
            connect: self
                .connect_timeout
                .unwrap_or(DEFAULT_CONNECT_TIMEOUT)
                .min(global),
            global,
        };
        let agent = self
            .agent
            .unwrap_or_else(|| transport::default_agent(timeouts));
        let seed = self.seed.unwrap_or_else(random_seed);
        let clock = WallClock::new(Instant::now(), SystemTime::now());
        Client {
            shared: Arc::new(Shared {
                default_request: self.config.default_request(),
                config: self.config,
                agent,
                timeouts,
                sessions: Mutex::new(Sessions::new(self.policy, clock, seed)),
                changed: Condvar::new(),
                store: self.store,
            }),
        }
    }
}

/// A seed that differs between clients and processes, without an RNG dependency: the
/// standard library's randomly keyed hasher.
fn random_seed() -> u64 {
    std::hash::RandomState::new().build_hasher().finish()
}

impl Client {
    /// A client with the default agent, timeouts and policy.
    #[must_use]
    pub fn new(config: Config) -> Self {
        Self::builder(config).build()
    }

    /// A builder, to set timeouts, an agent, the policy or the seed.
    pub fn builder(config: Config) -> ClientBuilder {
        ClientBuilder {
            config,
            agent: None,
            connect_timeout: None,
            timeout: None,
            policy: Policy::default(),
            seed: None,
            store: None,
        }
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &Config {
        &self.shared.config
    }

    /// The agent that sends token requests.
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
        self.shared.token(&self.shared.default_request)
    }

    /// A valid token for these parameters. Each distinct request shape (scopes, audience,
    /// resources, extra parameters) has its own cache entry; different shapes never share a
    /// token.
    ///
    /// # Errors
    /// [`Error::Config`] when the parameters are invalid (nothing is sent), or
    /// [`Error::Token`] as for [`Client::token`].
    pub fn token_for(&self, params: &TokenParams) -> Result<Arc<Token>, Error> {
        let request = self.shared.config.request(params)?;
        self.shared.token(&request)
    }

    /// Drops the cached token if it is `rejected` (a resource server answered 401 to it),
    /// so that the next call fetches a new one. A token that was already replaced is left
    /// alone: many threads may report the same rejection, and only the first causes a fetch.
    /// Returns whether a cached token was dropped.
    pub fn invalidate(&self, rejected: &AccessToken) -> bool {
        let now = Instant::now();
        let dropped = self.shared.lock().invalidate(now, rejected);
        if dropped {
            self.shared.changed.notify_all();
        }
        dropped
    }

    /// Makes the next call for the default request shape start fetching a new token, even
    /// if the cached one is valid. It does not block: while the cached token is valid,
    /// callers keep getting it and the fetch runs in the background. It does not cut a
    /// backoff short (a server's `Retry-After` outranks it).
    pub fn force_refresh(&self) {
        self.shared.force_refresh(&self.shared.default_request);
    }

    /// [`Client::force_refresh`] for the token of these parameters.
    ///
    /// # Errors
    /// [`Error::Config`] when the parameters are invalid.
    pub fn force_refresh_for(&self, params: &TokenParams) -> Result<(), Error> {
        let request = self.shared.config.request(params)?;
        self.shared.force_refresh(&request);
        Ok(())
    }

    /// Sets `Authorization` on an `http` request to a valid token for the default request
    /// shape, replacing any previous value. The header value is marked sensitive. Returns the
    /// token, to pass to [`Client::invalidate`] if the resource server rejects it.
    ///
    /// ```no_run
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let config = client_credentials_ureq::Config::builder()
    /// #     .token_url("https://auth.example.com/token").client_id("c").client_secret("s").build()?;
    /// # let client = client_credentials_ureq::Client::new(config);
    /// let mut request = http::Request::get("https://api.example.com/orders").body(())?;
    /// let token = client.authorize(&mut request)?;
    /// let response = client.agent().run(request)?;
    /// if response.status() == 401 {
    ///     client.invalidate(token.access_token());
    /// }
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// As [`Client::token`].
    pub fn authorize<B>(&self, request: &mut http::Request<B>) -> Result<Arc<Token>, Error> {
        let token = self.token()?;
        request
            .headers_mut()
            .insert(AUTHORIZATION, token.authorization_header());
        Ok(token)
    }

    /// Adds `Authorization` with a valid token for the default request shape to a ureq
    /// request, and returns it with the token (to pass to [`Client::invalidate`] on a 401).
    ///
    /// ```no_run
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let config = client_credentials_ureq::Config::builder()
    /// #     .token_url("https://auth.example.com/token").client_id("c").client_secret("s").build()?;
    /// # let client = client_credentials_ureq::Client::new(config);
    /// let agent = ureq::Agent::new_with_defaults();
    /// let (request, token) = client.authorize_ureq(agent.get("https://api.example.com/orders"))?;
    /// let response = request.call()?;
    /// # let _ = (response, token);
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// As [`Client::token`].
    pub fn authorize_ureq<B>(
        &self,
        request: ureq::RequestBuilder<B>,
    ) -> Result<(ureq::RequestBuilder<B>, Arc<Token>), Error> {
        let token = self.token()?;
        Ok((
            request.header(AUTHORIZATION, token.authorization_header()),
            token,
        ))
    }

    /// The counters of the default request shape's session: fetches started, succeeded and
    /// failed, cache hits, the last error, the next refresh.
    #[must_use]
    pub fn counters(&self) -> Counters {
        self.shared.counters(&self.shared.default_request)
    }

    /// [`Client::counters`] for the session of these parameters.
    ///
    /// # Errors
    /// [`Error::Config`] when the parameters are invalid.
    pub fn counters_for(&self, params: &TokenParams) -> Result<Counters, Error> {
        let request = self.shared.config.request(params)?;
        Ok(self.shared.counters(&request))
    }
}

/// Revocation (RFC 7009) and introspection (RFC 7662): one request each, sent at once, with
/// the same client authentication, agent, timeouts, redirect policy and body cap as token
/// fetches, but outside the token sessions (no single flight, no backoff).
impl Client {
    /// Revokes `token` at the configured revocation endpoint (RFC 7009) and drops it from
    /// the cache, whichever request shape holds it.
    ///
    /// The token is dropped before the request is sent, whatever the outcome: from then
    /// on, no caller is handed a token that is being revoked, and the next call for its
    /// request shape fetches a new one. A server that does not know the token answers
    /// success too (RFC 7009 §2.2).
    ///
    /// ```
    /// # use client_credentials_testkit::{Reply, Router, TestServer, TokenEndpoint};
    /// # let server = TestServer::start(
    /// #     Router::new()
    /// #         .route("/token", TokenEndpoint::new())
    /// #         .route("/revoke", Reply::new(200)),
    /// # );
    /// # let (token_url, revocation_url) = (server.url("/token"), server.url("/revoke"));
    /// use client_credentials_ureq::{Client, Config};
    ///
    /// let config = Config::builder()
    ///     .token_url(token_url)
    ///     .revocation_url(revocation_url)
    ///     .client_id("my-service")
    ///     .client_secret("s3cr3t")
    ///     .build()?;
    /// let client = Client::new(config);
    /// let token = client.token()?;
    /// client.revoke(token.access_token())?;
    /// assert_ne!(client.token()?.access_token(), token.access_token());
    /// # Ok::<_, Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Config`] with [`ConfigError::MissingEndpoint`](crate::ConfigError::MissingEndpoint)
    /// when no revocation endpoint is configured (nothing is sent, nothing is dropped);
    /// [`Error::Token`] when the server refused (`invalid_client`, `unsupported_token_type`…)
    /// or failed, the body was over the cap, or the transport failed.
    pub fn revoke(&self, token: &AccessToken) -> Result<(), Error> {
        let config = &self.shared.config;
        let request = config.revocation_request(token)?;
        let span = tracing::info_span!(
            "token_revoke",
            revocation_url = %request.uri(),
            client_id = config.client_id(),
        );
        let _entered = span.enter();
        let dropped = self.invalidate(token);
        tracing::debug!(dropped, "sending revocation request");
        let result = self
            .shared
            .exchange(request)
            .and_then(|(status, headers, body)| {
                config.parse_revocation_response(SystemTime::now(), status, &headers, &body)
            })
            .map_err(|error| quoted_token_redacted(error, token));
        match &result {
            Ok(()) => tracing::debug!("token revoked"),
            Err(error) => tracing::warn!(%error, "token revocation failed"),
        }
        Ok(result?)
    }

    /// Asks the configured introspection endpoint (RFC 7662) what it knows about `token`:
    /// whether it is active, its client, scopes, expiry… The cache is left as it is, even
    /// for a token reported inactive: pass it to [`Client::invalidate`] if that should
    /// drop it.
    ///
    /// # Errors
    /// [`Error::Config`] with [`ConfigError::MissingEndpoint`](crate::ConfigError::MissingEndpoint)
    /// when no introspection endpoint is configured (nothing is sent); [`Error::Token`] when
    /// the server refused or failed, the answer has no boolean `active`, the body was over
    /// the cap, or the transport failed.
    pub fn introspect(&self, token: &AccessToken) -> Result<Introspection, Error> {
        let config = &self.shared.config;
        let request = config.introspection_request(token)?;
        let span = tracing::info_span!(
            "token_introspect",
            introspection_url = %request.uri(),
            client_id = config.client_id(),
        );
        let _entered = span.enter();
        tracing::debug!("sending introspection request");
        let result = self
            .shared
            .exchange(request)
            .and_then(|(status, headers, body)| {
                config.parse_introspection_response(SystemTime::now(), status, &headers, &body)
            })
            .map_err(|error| quoted_token_redacted(error, token));
        match &result {
            Ok(info) => tracing::debug!(active = info.active, "token introspected"),
            Err(error) => tracing::warn!(%error, "token introspection failed"),
        }
        Ok(result?)
    }
}

/// A revocation or introspection endpoint may quote the token in its error ("unknown token
/// …"): the error is returned and logged without it.
fn quoted_token_redacted(mut error: TokenError, token: &AccessToken) -> TokenError {
    error.redact(token.expose_secret());
    error
}

impl Shared {
    /// Sends a request that is not a token fetch through the same transport, and reads the
    /// whole answer through the body cap.
    fn exchange(&self, request: HttpRequest) -> Result<transport::Parts, TokenError> {
        let started = Instant::now();
        let parts = transport::send(&self.agent, request, self.timeouts, self.config.max_body())
            .into_parts();
        let elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        if let Ok((status, _, _)) = &parts {
            tracing::debug!(status = status.as_u16(), elapsed_ms, "response received");
        }
        parts
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Sessions> {
        // The lock is never held across I/O or user code; a panic while it was held is a bug
        // in the session, and the state it left is the best there is.
        self.sessions.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn token(self: &Arc<Self>, request: &TokenRequest) -> Result<Arc<Token>, Error> {
        let mut sessions = self.lock();
        loop {
            let now = Instant::now();
            match sessions.get_or_insert(request).poll(now) {
                Action::Ready(token) => return Ok(token),
                Action::Failed(error) => return Err(Error::Token(error)),
                Action::Wait(until) => {
                    let wait = until.saturating_duration_since(now).max(MIN_WAIT);
                    sessions = self
                        .changed
                        .wait_timeout(sessions, wait)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0;
                }
                Action::Send {
                    id,
                    request: http,
                    current: Some(token),
                } => {
                    drop(sessions);
                    self.refresh_in_background(request, id, http);
                    return Ok(token);
                }
                Action::Send {
                    id,
                    request: http,
                    current: None,
                } => {
                    drop(sessions);
                    self.fetch(request, id, http);
                    sessions = self.lock();
                }
            }
        }
    }

    fn refresh_in_background(
        self: &Arc<Self>,
        request: &TokenRequest,
        id: RequestId,
        http: HttpRequest,
    ) {
        let shared = Arc::clone(self);
        let owned = request.clone();
        let spawned = thread::Builder::new()
            .name("client-credentials-refresh".to_owned())
            .spawn(move || shared.fetch(&owned, id, http));
        if let Err(e) = spawned {
            // No thread: give the send back, so that a later caller can try again (or, once
            // the token expired, send it itself).
            tracing::warn!(error = %e, "could not start a token refresh thread");
            let mut sessions = self.lock();
            sessions
                .get_or_insert(request)
                .handle_abandoned(Instant::now(), id);
            drop(sessions);
            self.changed.notify_all();
        }
    }

    /// Performs one token request and hands its outcome to the session.
    fn fetch(&self, request: &TokenRequest, id: RequestId, http: HttpRequest) {
        let mut flight = InFlight {
            shared: self,
            request,
            id,
            done: false,
        };
        let config = request.config();
        let span = tracing::info_span!(
            "token_fetch",
            token_url = %config.token_url(),
            client_id = config.client_id(),
            key = %key_digest(request),
        );
        let _entered = span.enter();
        let permit = match self.consult_store(request, id) {
            StoreAnswer::Answered => {
                flight.done = true;
                return;
            }
            StoreAnswer::Send(permit) => permit,
        };
        let started = Instant::now();
        tracing::debug!("sending token request");
        let outcome = transport::send(&self.agent, http, self.timeouts, config.max_body());
        let elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        match &outcome {
            Outcome::Response { status, .. } => {
                tracing::debug!(
                    status = status.as_u16(),
                    elapsed_ms,
                    "token response received"
                );
            }
            // The session's verdict is logged once, as a warning, when it is handed over.
            Outcome::Transport(error) => {
                tracing::debug!(elapsed_ms, %error, "token request failed");
            }
            Outcome::TooLarge(_) => tracing::debug!(elapsed_ms, "token response too large"),
        }
        let fetched = flight.complete(outcome);
        // After the local callers were woken; a permit dropped without a token releases.
        if let (Some(permit), Some(token)) = (permit, fetched) {
            permit.publish(&token);
        }
    }

    /// Asks the shared store, if there is one, before request `id` is sent: a token another
    /// process fetched answers it, or this process sends (with a permit to share the
    /// result, or alone).
    fn consult_store(&self, request: &TokenRequest, id: RequestId) -> StoreAnswer {
        let Some(store) = &self.store else {
            return StoreAnswer::Send(None);
        };
        let key = request.cache_key();
        let accepts = |token: &Token| {
            self.lock()
                .get(key)
                .is_some_and(|session| session.would_adopt(Instant::now(), token))
        };
        let policy = self.lock().policy().clone();
        match store.before_fetch(&StoreQuery::new(request, &policy, &accepts)) {
            Lookup::Shared(token) => {
                let taken = self.lock().get_or_insert(request).handle_shared_token(
                    Instant::now(),
                    id,
                    token,
                );
                if taken {
                    tracing::debug!("token taken from the shared store, nothing sent");
                    self.changed.notify_all();
                    return StoreAnswer::Answered;
                }
                tracing::debug!("the shared store's token is not usable here, sending");
                StoreAnswer::Send(None)
            }
            Lookup::Fetch(permit) => StoreAnswer::Send(Some(permit)),
            Lookup::FetchLocally => StoreAnswer::Send(None),
        }
    }

    fn force_refresh(&self, request: &TokenRequest) {
        self.lock()
            .get_or_insert(request)
            .force_refresh(Instant::now());
        self.changed.notify_all();
    }

    fn counters(&self, request: &TokenRequest) -> Counters {
        self.lock().get_or_insert(request).counters().clone()
    }
}

/// What the shared store decided about a request about to be sent.
enum StoreAnswer {
    /// A token from the store answered it: nothing to send.
    Answered,
    /// Send it; share the token through the permit, if any.
    Send(Option<Box<dyn FetchPermit>>),
}

/// A request in flight. Completing it hands the outcome to the session; dropping it
/// uncompleted (a panic in the transport) reports it abandoned. Either way waiters wake.
struct InFlight<'a> {
    shared: &'a Shared,
    request: &'a TokenRequest,
    id: RequestId,
    done: bool,
}

impl InFlight<'_> {
    /// Hands the outcome to the session and wakes the waiters; returns the token it
    /// produced, if any.
    fn complete(&mut self, outcome: Outcome) -> Option<Arc<Token>> {
        let now = Instant::now();
        let mut sessions = self.shared.lock();
        let session = sessions.get_or_insert(self.request);
        let failed_before = session.counters().fetches_failed;
        let succeeded_before = session.counters().fetches_succeeded;
        match outcome {
            Outcome::Response {
                status,
                headers,
                body,
            } => session.handle_response(now, self.id, status, &headers, &body),
            Outcome::TooLarge(error) => session.handle_error(now, self.id, error),
            Outcome::Transport(error) => session.handle_transport_error(now, self.id, error),
        }
        let counters = session.counters();
        if counters.fetches_failed > failed_before {
            if let Some(error) = &counters.last_error {
                tracing::warn!(%error, "token fetch failed");
            }
        } else {
            tracing::debug!("token fetch completed");
        }
        let fetched = if counters.fetches_succeeded > succeeded_before {
            session.current_token(now).cloned()
        } else {
            None
        };
        self.done = true;
        drop(sessions);
        self.shared.changed.notify_all();
        fetched
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.shared
                .lock()
                .get_or_insert(self.request)
                .handle_abandoned(Instant::now(), self.id);
            self.shared.changed.notify_all();
        }
    }
}

/// A short, stable digest of the request shape for logs: FNV-1a over the cache key (which
/// never holds the secret), as 16 hex digits.
fn key_digest(request: &TokenRequest) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in request.cache_key().as_str().bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{hash:016x}")
}
