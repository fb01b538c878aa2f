//! The async client: a mutex around the core's sessions (never held across an `.await`), a
//! `tokio::sync::watch` channel that wakes the callers who wait, drop guards that hand an
//! abandoned fetch back, and an optional background task that refreshes ahead of expiry.

use std::fmt;
use std::hash::{BuildHasher as _, Hasher as _};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant, SystemTime};

use client_credentials_core::session::{Action, Counters, Policy, RequestId, Sessions, WallClock};
use client_credentials_core::{
    AccessToken, CacheKey, Config, HttpRequest, Introspection, Token, TokenError, TokenParams,
    TokenRequest,
};
use http::HeaderMap;
use http::header::AUTHORIZATION;
use tokio::sync::{Notify, watch};
use tracing::Instrument as _;

use crate::error::Error;
use crate::store::{FetchPermit, Lookup, SharedStore, StoreQuery};
use crate::transport::{self, DEFAULT_CONNECT_TIMEOUT, DEFAULT_TIMEOUT, Outcome, Timeouts};

/// The shortest wait: a guard against a deadline that is already due (the session promises
/// strictly future deadlines; this keeps a slip from spinning).
const MIN_WAIT: Duration = Duration::from_millis(1);

/// An async OAuth 2.0 client credentials client: it fetches tokens, caches them per request
/// shape, refreshes them ahead of expiry, and shares one fetch between every task that needs
/// it.
///
/// `Client` is `Send + Sync` and cheap to clone (an [`Arc`] inside): clone it into every
/// task rather than building several, so that they share one cache. It needs a tokio
/// runtime, as reqwest does.
///
/// # How callers wait
///
/// All state lives in the core's [`Sessions`] behind one `std` mutex, held only for the
/// session's non-blocking calls and never across an `.await`, so the executor is never
/// blocked. A call to [`Client::token`] polls the session for its request shape and does
/// what the session says:
///
/// - *Ready*: a valid token is cached; it is returned at once. This includes the time while
///   a refresh is in flight: callers never wait while a valid token exists.
/// - *Send, no valid token* (cold cache, or the token expired): this task is the one that
///   sends. It performs the request without the lock, hands the response to the session,
///   and wakes every waiter.
/// - *Send, with the still-valid token* (time to refresh ahead of expiry): the caller gets
///   the valid token back at once, and the refresh runs in a spawned task, which feeds the
///   session and wakes waiters when it is done. No caller pays for a refresh.
/// - *Wait*: another task's request is in flight and there is no valid token; this task
///   waits on a `tokio::sync::watch` channel until the state changes or the session's
///   deadline passes, then polls again. The subscription is taken under the lock, so no
///   wake-up is lost.
/// - *Failed*: the last fetch failed and no valid token exists (the session is backing off
///   or cooling down); the shared error is returned without a request. All waiters of one
///   fetch get the same outcome.
///
/// # Cancellation
///
/// Every future of this type is cancellation-safe. If the task that is sending is dropped
/// (a `select!` lost, a timeout fired, the task was aborted), a drop guard reports the
/// request abandoned to the session and wakes the waiters, and the next one to poll sends
/// instead: nobody waits for a request that nobody will report. The session's
/// `request_timeout` is the last backstop.
///
/// # Sharing tokens across processes
///
/// With a [`SharedStore`] ([`ClientBuilder::shared_store`]), the task that is to send asks
/// the store first: a token another process fetched is taken without a request, and a token
/// this process fetches is handed to the store, in a task of its own, after the local
/// callers got it.
///
/// # Background refresh
///
/// With [`ClientBuilder::background_refresh`], one task per client sleeps until the
/// earliest deadline of all its sessions (a refresh point, the end of a backoff) and starts
/// the fetch then, so that tokens are renewed ahead of expiry even when no caller happens to
/// ask in that window: callers stay off the network across expiry. The task is started on
/// the first call that needs a token, in the caller's runtime (if that runtime shuts down,
/// the next call starts it again in its own). It holds only a weak reference to the client
/// between wake-ups, and ends when the last handle to the client is dropped. It also
/// retries after a failure once the backoff ends, so with a token endpoint that keeps
/// refusing the client, it asks once per [`Policy::rejection_cooldown`].
#[derive(Clone)]
pub struct Client {
    pub(crate) shared: Arc<Shared>,
}

pub(crate) struct Shared {
    config: Config,
    default_request: TokenRequest,
    http: reqwest::Client,
    timeouts: Timeouts,
    sessions: Mutex<Sessions>,
    /// Bumped after every input to a session: waiters subscribe under the lock, then wait.
    changed: watch::Sender<()>,
    background: Option<Background>,
    store: Option<Arc<dyn SharedStore>>,
}

struct Background {
    /// Wakes the background task: the schedule may have changed, or the client is gone.
    wake: Arc<Notify>,
    /// Whether the task runs. Cleared by the task when it ends, including when its runtime
    /// shuts down and drops it, so that a call from another runtime starts it again.
    running: Arc<AtomicBool>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        if let Some(background) = &self.background {
            // The task finds the client gone and ends.
            background.wake.notify_one();
        }
    }
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("config", &self.shared.config)
            .field("connect_timeout", &self.shared.timeouts.connect)
            .field("timeout", &self.shared.timeouts.overall)
            .field("background_refresh", &self.shared.background.is_some())
            .field("shared_store", &self.shared.store.is_some())
            .finish_non_exhaustive()
    }
}

/// Builds a [`Client`]: timeouts, the reqwest client builder, the session policy, background
/// refresh and the jitter seed.
///
/// ```
/// use std::time::Duration;
/// use client_credentials_reqwest::{Client, Config};
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
    http: Option<reqwest::ClientBuilder>,
    connect_timeout: Option<Duration>,
    timeout: Option<Duration>,
    policy: Policy,
    background_refresh: bool,
    seed: Option<u64>,
    store: Option<Arc<dyn SharedStore>>,
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("config", &self.config)
            .field("custom_http_client", &self.http.is_some())
            .field("connect_timeout", &self.connect_timeout)
            .field("timeout", &self.timeout)
            .field("policy", &self.policy)
            .field("background_refresh", &self.background_refresh)
            .field("shared_store", &self.store.is_some())
            .finish_non_exhaustive()
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
    pub fn http_client_builder(mut self, builder: reqwest::ClientBuilder) -> Self {
        self.http = Some(builder);
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

    /// Runs a background task that refreshes every cached token ahead of its expiry and
    /// retries after failures when their backoff ends, even when no caller asks (default
    /// off: refreshes then start on the first call after the refresh point, still without
    /// making that caller wait). See [`Client`](Client#background-refresh).
    pub fn background_refresh(mut self, enabled: bool) -> Self {
        self.background_refresh = enabled;
        self
    }

    /// The seed of the refresh and backoff jitter (default: random per client). Fix it for
    /// reproducible tests.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Shares tokens with other processes through `store` (for example
    /// `client-credentials-redis`): before fetching, the sending task asks the store, which
    /// hands over a token another process fetched or lets this process fetch and share the
    /// result. See [`SharedStore`] for the contract; a store that fails makes the client
    /// fetch as it would without one.
    pub fn shared_store(mut self, store: impl SharedStore) -> Self {
        self.store = Some(Arc::new(store));
        self
    }

    /// Builds the client. Nothing is sent until the first token is asked for.
    ///
    /// # Errors
    /// [`Error::Build`] when reqwest cannot build its client (TLS initialisation failed).
    pub fn build(self) -> Result<Client, Error> {
        // The transport gives up before the session's backstop would send a second request.
        let overall = self
            .timeout
            .unwrap_or(DEFAULT_TIMEOUT)
            .min(self.policy.request_timeout);
        let timeouts = Timeouts {
            connect: self
                .connect_timeout
                .unwrap_or(DEFAULT_CONNECT_TIMEOUT)
                .min(overall),
            overall,
        };
        let cleartext = transport::has_cleartext_endpoint(&self.config);
        let http = transport::configure(self.http.unwrap_or_default(), timeouts, cleartext)
            .build()
            .map_err(|e| Error::Build(Arc::new(e)))?;
        let seed = self.seed.unwrap_or_else(random_seed);
        let clock = WallClock::new(Instant::now(), SystemTime::now());
        let (changed, _) = watch::channel(());
        Ok(Client {
            shared: Arc::new(Shared {
                default_request: self.config.default_request(),
                config: self.config,
                http,
                timeouts,
                sessions: Mutex::new(Sessions::new(self.policy, clock, seed)),
                changed,
                background: self.background_refresh.then(|| Background {
                    wake: Arc::new(Notify::new()),
                    running: Arc::new(AtomicBool::new(false)),
                }),
                store: self.store,
            }),
        })
    }
}

/// A seed that differs between clients and processes, without an RNG dependency: the
/// standard library's randomly keyed hasher.
fn random_seed() -> u64 {
    std::hash::RandomState::new().build_hasher().finish()
}

impl Client {
    /// A client with the default reqwest configuration, timeouts and policy.
    ///
    /// # Errors
    /// As [`ClientBuilder::build`].
    pub fn new(config: Config) -> Result<Self, Error> {
        Self::builder(config).build()
    }

    /// A builder, to set timeouts, the reqwest builder, the policy, background refresh or
    /// the seed.
    pub fn builder(config: Config) -> ClientBuilder {
        ClientBuilder {
            config,
            http: None,
            connect_timeout: None,
            timeout: None,
            policy: Policy::default(),
            background_refresh: false,
            seed: None,
            store: None,
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
    /// [`Error::Token`] when the last fetch failed and no valid token exists.
    pub async fn token(&self) -> Result<Arc<Token>, Error> {
        self.shared.token(&self.shared.default_request).await
    }

    /// A valid token for these parameters. Each distinct request shape (scopes, audience,
    /// resources, extra parameters) has its own cache entry; different shapes never share a
    /// token.
    ///
    /// # Errors
    /// [`Error::Config`] when the parameters are invalid (nothing is sent), or
    /// [`Error::Token`] as for [`Client::token`].
    pub async fn token_for(&self, params: &TokenParams) -> Result<Arc<Token>, Error> {
        let request = self.shared.config.request(params)?;
        self.shared.token(&request).await
    }

    /// Drops the cached token if it is `rejected` (a resource server answered 401 to it),
    /// so that the next call fetches a new one. A token that was already replaced is left
    /// alone: many tasks may report the same rejection, and only the first causes a fetch.
    /// Returns whether a cached token was dropped.
    pub fn invalidate(&self, rejected: &AccessToken) -> bool {
        self.shared.invalidate(rejected)
    }

    /// Makes the next call for the default request shape fetch a new token, even if the
    /// cached one is valid. It does not wait; callers keep getting the cached token until
    /// the new one arrives, if the session says so.
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

    /// Sets `Authorization` on an `http` request to a valid token for the default request
    /// shape, replacing any previous value. The header value is marked sensitive. Returns the
    /// token, to pass to [`Client::invalidate`] if the resource server rejects it.
    ///
    /// # Errors
    /// As [`Client::token`].
    pub async fn authorize<B>(&self, request: &mut http::Request<B>) -> Result<Arc<Token>, Error> {
        let token = self.token().await?;
        set_authorization(request.headers_mut(), &token);
        Ok(token)
    }

    /// Adds `Authorization` with a valid token for the default request shape to a reqwest
    /// request, and returns it with the token (to pass to [`Client::invalidate`] on a 401).
    /// [`Client::send_authorized`] does the 401 handling for you.
    ///
    /// ```no_run
    /// # async fn run(client: client_credentials_reqwest::Client) -> Result<(), Box<dyn std::error::Error>> {
    /// let http = reqwest::Client::new();
    /// let (request, token) = client
    ///     .authorize_reqwest(http.get("https://api.example.com/orders"))
    ///     .await?;
    /// let response = request.send().await?;
    /// if response.status() == reqwest::StatusCode::UNAUTHORIZED {
    ///     client.invalidate(token.access_token());
    /// }
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// As [`Client::token`].
    pub async fn authorize_reqwest(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<(reqwest::RequestBuilder, Arc<Token>), Error> {
        let token = self.token().await?;
        Ok((
            request.header(AUTHORIZATION, token.authorization_header()),
            token,
        ))
    }

    /// Sends a request with a valid token for the default request shape, for users without
    /// `reqwest-middleware`. It behaves as [`AuthMiddleware`](crate::AuthMiddleware): on a
    /// 401 it invalidates the token that was rejected and, if the request can be cloned,
    /// sends it once more with a fresh token; a second 401 is returned as it is. Without a
    /// token, nothing is sent.
    ///
    /// ```no_run
    /// # async fn run(client: client_credentials_reqwest::Client) -> Result<(), client_credentials_reqwest::Error> {
    /// let http = reqwest::Client::new();
    /// let response = client
    ///     .send_authorized(http.get("https://api.example.com/orders"))
    ///     .await?;
    /// # let _ = response;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// [`Error::Token`] when no token could be had (nothing was sent), [`Error::Request`]
    /// when the request could not be built or sent.
    pub async fn send_authorized(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, Error> {
        let (http, request) = request.build_split();
        let request = request.map_err(|e| Error::Request(Arc::new(e)))?;
        let request_shape = &self.shared.default_request;
        let token = self.shared.token(request_shape).await?;
        let retry = request.try_clone();
        let mut request = request;
        set_authorization(request.headers_mut(), &token);
        let response = http
            .execute(request)
            .await
            .map_err(|e| Error::Request(Arc::new(e)))?;
        match self
            .shared
            .after_unauthorized(request_shape, &response, &token, retry)
            .await?
        {
            Some(retry) => {
                drop(response);
                http.execute(retry)
                    .await
                    .map_err(|e| Error::Request(Arc::new(e)))
            }
            None => Ok(response),
        }
    }
}

/// Revocation (RFC 7009) and introspection (RFC 7662): one request each, sent at once, with
/// the same client authentication, reqwest client, timeouts, redirect policy and body cap as
/// token fetches, but outside the token sessions (no single flight, no backoff).
impl Client {
    /// Revokes `token` at the configured revocation endpoint (RFC 7009) and drops it from
    /// the cache, whichever request shape holds it.
    ///
    /// The token is dropped before the request is sent, whatever the outcome (and even if
    /// this future is dropped before it completes): from then on, no caller is handed a
    /// token that is being revoked, and the next call for its request shape fetches a new
    /// one. A server that does not know the token answers success too (RFC 7009 §2.2).
    ///
    /// ```
    /// # use client_credentials_testkit::{Reply, Router, TestServer, TokenEndpoint};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = TestServer::start(
    /// #     Router::new()
    /// #         .route("/token", TokenEndpoint::new())
    /// #         .route("/revoke", Reply::new(200)),
    /// # );
    /// # let (token_url, revocation_url) = (server.url("/token"), server.url("/revoke"));
    /// use client_credentials_reqwest::{Client, Config};
    ///
    /// let config = Config::builder()
    ///     .token_url(token_url)
    ///     .revocation_url(revocation_url)
    ///     .client_id("my-service")
    ///     .client_secret("s3cr3t")
    ///     .build()?;
    /// let client = Client::new(config)?;
    /// let token = client.token().await?;
    /// client.revoke(token.access_token()).await?;
    /// assert_ne!(client.token().await?.access_token(), token.access_token());
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// [`Error::Config`] with [`ConfigError::MissingEndpoint`](crate::ConfigError::MissingEndpoint)
    /// when no revocation endpoint is configured (nothing is sent, nothing is dropped);
    /// [`Error::Token`] when the server refused (`invalid_client`, `unsupported_token_type`…)
    /// or failed, the body was over the cap, or the transport failed.
    pub async fn revoke(&self, token: &AccessToken) -> Result<(), Error> {
        let config = &self.shared.config;
        let request = config.revocation_request(token)?;
        let span = tracing::info_span!(
            "token_revoke",
            revocation_url = %request.uri(),
            client_id = config.client_id(),
        );
        async {
            let dropped = self.shared.invalidate(token);
            tracing::debug!(dropped, "sending revocation request");
            let result = self
                .shared
                .exchange(request)
                .await
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
        .instrument(span)
        .await
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
    pub async fn introspect(&self, token: &AccessToken) -> Result<Introspection, Error> {
        let config = &self.shared.config;
        let request = config.introspection_request(token)?;
        let span = tracing::info_span!(
            "token_introspect",
            introspection_url = %request.uri(),
            client_id = config.client_id(),
        );
        async {
            tracing::debug!("sending introspection request");
            let result = self
                .shared
                .exchange(request)
                .await
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
        .instrument(span)
        .await
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
    async fn exchange(&self, request: HttpRequest) -> Result<transport::Parts, TokenError> {
        let started = Instant::now();
        let parts = transport::send(
            &self.http,
            request,
            self.timeouts.overall,
            self.config.max_body(),
        )
        .await
        .into_parts();
        let elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        if let Ok((status, _, _)) = &parts {
            tracing::debug!(status = status.as_u16(), elapsed_ms, "response received");
        }
        parts
    }
}

/// Sets `Authorization` to the token's sensitive header value, replacing any previous one.
pub(crate) fn set_authorization(headers: &mut HeaderMap, token: &Token) {
    headers.insert(AUTHORIZATION, token.authorization_header());
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Sessions> {
        // The lock is never held across I/O, an `.await` or user code; a panic while it was
        // held is a bug in the session, and the state it left is the best there is.
        self.sessions.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Wakes the tasks waiting for a session to change, and the background task (the
    /// schedule may have moved).
    fn notify(&self) {
        self.changed.send_replace(());
        if let Some(background) = &self.background {
            background.wake.notify_one();
        }
    }

    pub(crate) async fn token(
        self: &Arc<Self>,
        request: &TokenRequest,
    ) -> Result<Arc<Token>, Error> {
        self.start_background();
        loop {
            let now = Instant::now();
            let (action, mut changed) = {
                let mut sessions = self.lock();
                let action = sessions.get_or_insert(request).poll(now);
                // Subscribed under the lock: any input after this poll wakes us.
                let changed = self.changed.subscribe();
                (action, changed)
            };
            match action {
                Action::Ready(token) => return Ok(token),
                Action::Failed(error) => return Err(Error::Token(error)),
                Action::Wait(until) => {
                    let deadline = until.max(now + MIN_WAIT);
                    // Woken by a change, or the deadline passed: poll again either way. The
                    // sender lives in `self`, so `changed()` cannot fail.
                    let _ = tokio::time::timeout_at(deadline.into(), changed.changed()).await;
                }
                Action::Send {
                    id,
                    request: http,
                    current: Some(token),
                } => {
                    self.refresh_in_background(request, id, http);
                    return Ok(token);
                }
                Action::Send {
                    id,
                    request: http,
                    current: None,
                } => {
                    let flight = InFlight::new(self, request, id);
                    self.fetch(request, flight, http).await;
                }
            }
        }
    }

    /// Runs a refresh ahead of expiry in its own task; the caller keeps its valid token.
    fn refresh_in_background(
        self: &Arc<Self>,
        request: &TokenRequest,
        id: RequestId,
        http: HttpRequest,
    ) {
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                // The guard exists before the task: a task dropped before its first poll (the
                // runtime shut down) still reports the request abandoned.
                let flight = InFlight::new(self, request, id);
                let shared = Arc::clone(self);
                let request = request.clone();
                drop(runtime.spawn(async move { shared.fetch(&request, flight, http).await }));
            }
            Err(_) => {
                // Polled outside a tokio runtime (reqwest could not send from here either):
                // give the send back, so that a caller in a runtime can take it.
                tracing::warn!("no tokio runtime to refresh the token in; refresh deferred");
                self.lock()
                    .get_or_insert(request)
                    .handle_abandoned(Instant::now(), id);
                self.notify();
            }
        }
    }

    /// Performs `flight`, the request of `request`'s session, and hands its outcome to the
    /// session. Dropping the future before it completes, polled or not, drops `flight`,
    /// which reports the request abandoned.
    async fn fetch(
        self: &Arc<Self>,
        request: &TokenRequest,
        mut flight: InFlight,
        http: HttpRequest,
    ) {
        let id = flight.id;
        let config = request.config();
        let span = tracing::info_span!(
            "token_fetch",
            token_url = %config.token_url(),
            client_id = config.client_id(),
            key = %key_digest(request.cache_key()),
            request_id = id.as_u64(),
        );
        let permit = match self
            .consult_store(request, id)
            .instrument(span.clone())
            .await
        {
            StoreAnswer::Answered => {
                flight.done = true;
                return;
            }
            StoreAnswer::Send(permit) => permit,
        };
        let cap = config.max_body();
        let overall = self.timeouts.overall;
        let outcome = async {
            tracing::debug!("sending token request");
            let started = Instant::now();
            let outcome = transport::send(&self.http, http, overall, cap).await;
            let elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
            match &outcome {
                Outcome::Response { status, .. } => {
                    tracing::debug!(
                        status = status.as_u16(),
                        elapsed_ms,
                        "token response received"
                    );
                }
                Outcome::TooLarge(_) => {
                    tracing::debug!(elapsed_ms, cap, "token response body over the cap, refused");
                }
                Outcome::Transport(error) => {
                    tracing::warn!(elapsed_ms, %error, "token request failed");
                }
            }
            outcome
        }
        .instrument(span.clone())
        .await;
        let fetched = span.in_scope(|| flight.complete(outcome));
        // In its own task: the caller has its token, and cancelling it must not cut the
        // write short. A permit dropped without a token releases.
        if let (Some(permit), Some(token)) = (permit, fetched) {
            let publish = async move { permit.publish(&token).await }.instrument(span);
            match tokio::runtime::Handle::try_current() {
                Ok(runtime) => drop(runtime.spawn(publish)),
                // Polled outside a runtime (reqwest could not have sent from here either).
                Err(_) => publish.await,
            }
        }
    }

    /// Asks the shared store, if there is one, before request `id` is sent: a token another
    /// process fetched answers it, or this process sends (with a permit to share the
    /// result, or alone).
    async fn consult_store(self: &Arc<Self>, request: &TokenRequest, id: RequestId) -> StoreAnswer {
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
        let lookup = store
            .before_fetch(&StoreQuery::new(request, &policy, &accepts))
            .await;
        match lookup {
            Lookup::Shared(token) => {
                let taken = self.lock().get_or_insert(request).handle_shared_token(
                    Instant::now(),
                    id,
                    token,
                );
                if taken {
                    tracing::debug!("token taken from the shared store, nothing sent");
                    self.notify();
                    return StoreAnswer::Answered;
                }
                tracing::debug!("the shared store's token is not usable here, sending");
                StoreAnswer::Send(None)
            }
            Lookup::Fetch(permit) => StoreAnswer::Send(Some(permit)),
            Lookup::FetchLocally => StoreAnswer::Send(None),
        }
    }

    fn invalidate(&self, rejected: &AccessToken) -> bool {
        let dropped = self.lock().invalidate(Instant::now(), rejected);
        if dropped {
            tracing::debug!("cached token invalidated after a rejection");
            self.notify();
        }
        dropped
    }

    fn force_refresh(&self, request: &TokenRequest) {
        self.lock()
            .get_or_insert(request)
            .force_refresh(Instant::now());
        self.notify();
    }

    fn counters(&self, request: &TokenRequest) -> Counters {
        self.lock().get_or_insert(request).counters().clone()
    }

    /// After a response to a request sent with `used`: on a 401, invalidates `used` and, if
    /// the request could be cloned (`retry`), returns it with a fresh token for one more try.
    /// `None`: return the response as it is (not a 401, not replayable, or the server
    /// handed out the very token that was just rejected).
    pub(crate) async fn after_unauthorized(
        self: &Arc<Self>,
        request: &TokenRequest,
        response: &reqwest::Response,
        used: &Token,
        retry: Option<reqwest::Request>,
    ) -> Result<Option<reqwest::Request>, Error> {
        if response.status() != reqwest::StatusCode::UNAUTHORIZED {
            return Ok(None);
        }
        let dropped = self
            .lock()
            .get_or_insert(request)
            .invalidate(Instant::now(), used.access_token());
        if dropped {
            tracing::debug!("token rejected by the resource server; invalidated");
            self.notify();
        }
        let Some(mut retry) = retry else {
            tracing::debug!(
                "401 from the resource server; the request body cannot be replayed, not retried"
            );
            return Ok(None);
        };
        let fresh = self.token(request).await?;
        if fresh.access_token() == used.access_token() {
            tracing::debug!("401 from the resource server; no newer token to retry with");
            return Ok(None);
        }
        tracing::debug!("401 from the resource server; retrying once with a fresh token");
        set_authorization(retry.headers_mut(), &fresh);
        Ok(Some(retry))
    }

    /// Starts the background refresh task, once, in the caller's runtime.
    fn start_background(self: &Arc<Self>) {
        let Some(background) = &self.background else {
            return;
        };
        // A plain load first: the hot path of every call must not write a shared line.
        if background.running.load(Ordering::Acquire)
            || background.running.swap(true, Ordering::AcqRel)
        {
            return;
        }
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                let running = Running(Arc::clone(&background.running));
                let task = background_refresh(Arc::downgrade(self), Arc::clone(&background.wake));
                drop(runtime.spawn(async move {
                    let _running = running;
                    task.await;
                }));
            }
            // Not in a runtime: try again on the next call.
            Err(_) => background.running.store(false, Ordering::Release),
        }
    }

    /// Polls every session whose deadline has come, starts the fetches they ask for, and
    /// returns the next deadline of all sessions.
    fn refresh_due(self: &Arc<Self>, now: Instant) -> Option<Instant> {
        let mut sends = Vec::new();
        let next = {
            let mut sessions = self.lock();
            let due: Vec<CacheKey> = sessions
                .iter()
                .filter(|(_, s)| s.poll_timeout().is_some_and(|at| at <= now))
                .map(|(k, _)| k.clone())
                .collect();
            for key in due {
                if let Some(session) = sessions.get_mut(&key) {
                    // Ready, Wait and Failed need nothing from us: a new token or a request
                    // in flight will be reported, a backoff has its own deadline.
                    if let Action::Send { id, request, .. } = session.poll(now) {
                        sends.push((session.request().clone(), id, request));
                    }
                }
            }
            sessions.poll_timeout()
        };
        for (request, id, http) in sends {
            // Created before the spawn, as in `refresh_in_background`.
            let flight = InFlight::new(self, &request, id);
            let shared = Arc::clone(self);
            drop(tokio::spawn(async move {
                shared.fetch(&request, flight, http).await
            }));
        }
        next
    }
}

/// Marks the background task as running while it lives; dropped when the task ends or is
/// dropped with its runtime.
struct Running(Arc<AtomicBool>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

/// The background refresh loop: wakes at the earliest session deadline (or when the
/// schedule changes), starts what is due, and ends when the client is gone. Between
/// wake-ups it holds only a weak reference, so it never keeps the client alive.
async fn background_refresh(client: Weak<Shared>, wake: Arc<Notify>) {
    tracing::debug!("background token refresh started");
    loop {
        let Some(shared) = client.upgrade() else {
            tracing::debug!("background token refresh stopped: client dropped");
            return;
        };
        let now = Instant::now();
        let next = shared.refresh_due(now);
        drop(shared);
        match next {
            Some(at) => {
                let deadline = at.max(now + MIN_WAIT);
                // Woken early or at the deadline: look again either way.
                let _ = tokio::time::timeout_at(deadline.into(), wake.notified()).await;
            }
            None => wake.notified().await,
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

/// A request in flight. Completing it hands the outcome to the session; dropping it
/// uncompleted (the sending future was cancelled, or the runtime shut down) reports it
/// abandoned, so that another caller sends. Either way waiters wake.
struct InFlight {
    shared: Arc<Shared>,
    request: TokenRequest,
    id: RequestId,
    done: bool,
}

impl InFlight {
    /// The guard of request `id`, taken from the session for `request`. Create it before the
    /// future that sends exists, so that dropping that future at any point, even unpolled,
    /// reports the request.
    fn new(shared: &Arc<Shared>, request: &TokenRequest, id: RequestId) -> Self {
        Self {
            shared: Arc::clone(shared),
            request: request.clone(),
            id,
            done: false,
        }
    }

    /// Hands the outcome to the session and wakes the waiters; returns the token it
    /// produced, if any.
    fn complete(&mut self, outcome: Outcome) -> Option<Arc<Token>> {
        let now = Instant::now();
        let fetched = {
            let mut sessions = self.shared.lock();
            let session = sessions.get_or_insert(&self.request);
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
                    log_failure(error);
                }
            } else {
                tracing::debug!("token fetch completed");
            }
            if counters.fetches_succeeded > succeeded_before {
                session.current_token(now).cloned()
            } else {
                None
            }
        };
        self.done = true;
        self.shared.notify();
        fetched
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if !self.done {
            tracing::debug!(
                request_id = self.id.as_u64(),
                "token fetch abandoned by its caller"
            );
            self.shared
                .lock()
                .get_or_insert(&self.request)
                .handle_abandoned(Instant::now(), self.id);
            self.shared.notify();
        }
    }
}

fn log_failure(error: &TokenError) {
    tracing::warn!(%error, retryable = error.is_retryable(), "token fetch failed");
}

/// A short, stable digest of the request shape for logs: FNV-1a over the cache key (which
/// never holds the secret), as 16 hex digits.
fn key_digest(key: &CacheKey) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in key.as_str().bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{hash:016x}")
}
