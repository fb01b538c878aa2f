//! What every driver of a [`Cache`] does the same way, whatever its runtime: the timeouts it
//! gives its HTTP client, the shape of a finished exchange and how it is reported, the
//! draining and logging of [`Event`]s, and the end of a revocation or introspection.
//!
//! Nothing here performs I/O or reads a clock: a driver (the blocking and async adapters,
//! or your own transport) sends, sleeps and logs; these functions only say what to send,
//! report or log.
//!
//! ```
//! use std::time::{Duration, Instant, SystemTime};
//! use client_credentials::driver::{self, Reply};
//! use client_credentials::http::{HeaderMap, StatusCode};
//! use client_credentials::{Action, Cache, Config, Policy, WallClock};
//!
//! let config = Config::builder()
//!     .token_url("https://auth.example.com/token")
//!     .client_id("c")
//!     .client_secret("s")
//!     .build()?;
//! let request = config.default_request();
//! let now = Instant::now();
//! let mut cache = Cache::new(Policy::default(), WallClock::new(now, SystemTime::now()), 7)
//!     .with_shared_store();
//! let Action::Send { id, .. } = cache.poll(now, &request) else { unreachable!() };
//! // ... the transport sends the request and reads the body within the cap ...
//! let body = br#"{"access_token":"abc","token_type":"Bearer","expires_in":3600}"#.to_vec();
//! let reply = Reply { status: StatusCode::OK, headers: HeaderMap::new(), body };
//! assert!(driver::handle_exchange(&mut cache, now, id, Ok(reply)).changed());
//! let mut logged = Vec::new();
//! let publish = driver::drain_events(&mut cache, Some(id), |e| logged.push(driver::event_log(e).message));
//! assert_eq!(logged, ["token fetch completed", "token to publish to the shared store"]);
//! assert!(publish.is_some_and(|p| p.ttl > Duration::from_secs(3000)));
//! # Ok::<_, client_credentials_core::ConfigError>(())
//! ```

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use http::{HeaderMap, StatusCode};

use crate::error::{TokenError, TransportError, TransportErrorKind};
use crate::introspection::{Introspection, PendingIntrospection, PendingRevocation};
use crate::request::CacheKey;
use crate::session::{Action, Cache, Event, Failure, Outcome, Policy, RequestId};
use crate::token::Token;

/// `http` (a token request of [`Action::Send`], or a revocation or introspection, of a
/// client whose assertion is made elsewhere,
/// [`Config::assertion_source`](crate::Config::assertion_source)) with the assertion read
/// for it just now. Read the source anew for every request: the assertion rotates. A
/// driver of such a client must do this before every send: the core's request carries
/// `client_assertion_type` alone, which the server refuses. For a client without an
/// assertion source, `http` is returned as it is.
///
/// ```
/// # use client_credentials::{AssertionSource, BodyFormat, Config};
/// # use client_credentials::federated::Read;
/// let config = Config::builder()
///     .token_url("https://as.example.com/token")
///     .client_id("workload")
///     .client_assertion(AssertionSource::env("ID_TOKEN"))
///     .body_format(BodyFormat::Json)
///     .build()?;
/// let jwt = config.assertion_source().unwrap().accept(Read::Env(Some("aGQ.cGw.c2ln".into())))?;
/// let http = client_credentials::driver::attach_assertion(&config, config.default_request().to_http(), &jwt);
/// assert_eq!(
///     std::str::from_utf8(http.body())?,
///     r#"{"grant_type":"client_credentials","client_id":"workload","client_assertion_type":"urn:ietf:params:oauth:client-assertion-type:jwt-bearer","client_assertion":"aGQ.cGw.c2ln"}"#,
/// );
/// # Ok::<_, Box<dyn std::error::Error>>(())
/// ```
#[must_use]
pub fn attach_assertion(
    config: &crate::Config,
    http: crate::HttpRequest,
    assertion: &crate::ClientAssertion,
) -> crate::HttpRequest {
    if config.assertion_source().is_none() {
        return http;
    }
    crate::request::attach_assertion(http, assertion.expose_secret())
}

/// An adapter's `Error`, one definition for both adapters: the variants every adapter has
/// (`Token`, `Endpoint`, `Config`, `Stored`), then the adapter's own (given in braces,
/// after the enum's docs), and the methods that classify it, each asking the
/// [`TokenError`] that the error carries and `false` (or `None`) for an error that is not
/// a failure of an endpoint. Expands to the adapter's `thiserror`.
#[doc(hidden)]
#[macro_export]
macro_rules! __adapter_error {
    ($(#[$attr:meta])* { $($variants:tt)* }) => {
        $(#[$attr])*
        #[derive(Clone, Debug, ::thiserror::Error)]
        #[non_exhaustive]
        pub enum Error {
            /// No token: the token endpoint refused (`invalid_client`, `invalid_scope`…),
            /// throttled or failed, answered something unusable or too large, or could not
            /// be reached (a [`TokenError::Transport`](crate::TokenError::Transport)).
            #[error(transparent)]
            Token(#[from] $crate::TokenError),
            /// A revocation ([`Client::revoke`](crate::Client::revoke)) or an introspection
            /// ([`Client::introspect`](crate::Client::introspect)) failed; the message
            /// names the endpoint.
            #[error(transparent)]
            Endpoint(Box<$crate::EndpointError>),
            /// The per-request parameters
            /// ([`TokenParams`](crate::TokenParams)) are invalid (a bad scope, a reserved
            /// extra parameter or header…); nothing was sent.
            #[error("invalid token request parameters: {0}")]
            Config(#[from] $crate::ConfigError),
            /// A stored token handed to [`Client::restore`](crate::Client::restore) is not
            /// one this client takes: another token type, no expiry, or a usable life that
            /// is over. Nothing changed; the next call fetches a token.
            #[error("stored token not restored: {0}")]
            Stored(#[from] $crate::StoredTokenProblem),
            /// Discovery of an authorization server's metadata ([`discover`](crate::discover))
            /// failed: the issuer or its document is not acceptable, or the metadata
            /// endpoint failed (then [`Error::token_error`] has the endpoint's error).
            #[error(transparent)]
            Discovery(Box<$crate::DiscoveryError>),
            $($variants)*
        }

        impl From<$crate::DiscoveryError> for Error {
            fn from(error: $crate::DiscoveryError) -> Self {
                Self::Discovery(Box::new(error))
            }
        }

        impl Error {
            /// The endpoint's error, if the failure came from a fetch, a revocation, an
            /// introspection or the metadata endpoint of a discovery.
            #[must_use]
            pub fn token_error(&self) -> Option<&$crate::TokenError> {
                match self {
                    Self::Token(error) => Some(error),
                    Self::Endpoint(e) => Some(&e.error),
                    Self::Discovery(e) => e.token_error(),
                    _ => None,
                }
            }

            $crate::__error_classes!();
        }
    };
}

/// The classification methods of [`__adapter_error!`](crate::__adapter_error).
#[doc(hidden)]
#[macro_export]
macro_rules! __error_classes {
    () => {
        /// Whether a later call may succeed where this one did not, as
        /// [`TokenError::is_retryable`](crate::TokenError::is_retryable) says; never for an
        /// error that is not a failure of an
        /// endpoint (invalid parameters, a failed authorized request).
        #[must_use]
        pub fn is_retryable(&self) -> bool {
            self.token_error()
                .is_some_and($crate::TokenError::is_retryable)
        }

        /// How long the endpoint asked to wait before trying again, if it said
        /// ([`TokenError::retry_after`](crate::TokenError::retry_after)).
        #[must_use]
        pub fn retry_after(&self) -> Option<::std::time::Duration> {
            self.token_error()?.retry_after()
        }

        /// Whether client authentication failed: a wrong secret, an unknown client, the
        /// wrong auth method ([`TokenError::is_invalid_client`](crate::TokenError::is_invalid_client)).
        #[must_use]
        pub fn is_invalid_client(&self) -> bool {
            self.token_error()
                .is_some_and($crate::TokenError::is_invalid_client)
        }

        /// Whether a requested scope was refused ([`TokenError::is_invalid_scope`](crate::TokenError::is_invalid_scope)).
        #[must_use]
        pub fn is_invalid_scope(&self) -> bool {
            self.token_error()
                .is_some_and($crate::TokenError::is_invalid_scope)
        }

        /// Whether an audience or resource indicator was refused
        /// ([`TokenError::is_invalid_target`](crate::TokenError::is_invalid_target)).
        #[must_use]
        pub fn is_invalid_target(&self) -> bool {
            self.token_error()
                .is_some_and($crate::TokenError::is_invalid_target)
        }

        /// Whether the client may not use the grant ([`TokenError::is_unauthorized_client`](crate::TokenError::is_unauthorized_client)).
        #[must_use]
        pub fn is_unauthorized_client(&self) -> bool {
            self.token_error()
                .is_some_and($crate::TokenError::is_unauthorized_client)
        }

        /// Whether the endpoint throttled the client, a 429 ([`TokenError::is_rate_limited`](crate::TokenError::is_rate_limited)).
        #[must_use]
        pub fn is_rate_limited(&self) -> bool {
            self.token_error()
                .is_some_and($crate::TokenError::is_rate_limited)
        }

        /// Whether the endpoint could not be reached or the exchange broke off
        /// ([`TokenError::is_transport`](crate::TokenError::is_transport)).
        #[must_use]
        pub fn is_transport(&self) -> bool {
            self.token_error()
                .is_some_and($crate::TokenError::is_transport)
        }

        /// Whether the exchange with the endpoint timed out ([`TokenError::is_timeout`](crate::TokenError::is_timeout)).
        #[must_use]
        pub fn is_timeout(&self) -> bool {
            self.token_error()
                .is_some_and($crate::TokenError::is_timeout)
        }
    };
}

/// An adapter's `Credentials`: what authorizes requests to resource servers, the adapter's
/// client or a [`StaticCredential`](crate::StaticCredential), with the conversions from
/// both. One definition for both adapters; each adds the methods that send. The docs
/// given before the client type are the enum's.
#[doc(hidden)]
#[macro_export]
macro_rules! __credentials {
    ($(#[$attr:meta])* $client:ident) => {
        $(#[$attr])*
        #[derive(Clone, Debug)]
        #[non_exhaustive]
        pub enum Credentials {
            /// Tokens of the client credentials grant.
            Client($client),
            /// A fixed bearer token or API key.
            Static($crate::StaticCredential),
        }

        impl From<$client> for Credentials {
            fn from(client: $client) -> Self {
                Self::Client(client)
            }
        }

        impl From<$crate::StaticCredential> for Credentials {
            fn from(credential: $crate::StaticCredential) -> Self {
                Self::Static(credential)
            }
        }
    };
}

/// The span of an exchange with an endpoint, with the attributes of OpenTelemetry's HTTP
/// client conventions (`http.request.method`, `server.address`, `server.port`, and, once
/// the exchange ended, `http.response.status_code` and `error.type`, which
/// [`__record_exchange!`](crate::__record_exchange) fills in), then the adapter's own
/// fields. One definition for both adapters; it expands to their `tracing`.
#[doc(hidden)]
#[macro_export]
macro_rules! __exchange_span {
    ($name:literal, $uri:expr, $($field:tt)*) => {{
        let (address, port) = $crate::driver::server_address($uri);
        ::tracing::info_span!(
            $name,
            http.request.method = "POST",
            server.address = address,
            server.port = port,
            http.response.status_code = ::tracing::field::Empty,
            error.type = ::tracing::field::Empty,
            $($field)*
        )
    }};
}

/// Records the outcome of `exchange` ([`http_outcome`]) on `span`, one made by
/// [`__exchange_span!`](crate::__exchange_span).
#[doc(hidden)]
#[macro_export]
macro_rules! __record_exchange {
    ($span:expr, $exchange:expr) => {{
        let outcome = $crate::driver::http_outcome($exchange);
        let span = $span;
        span.record("http.response.status_code", outcome.status_code);
        span.record("error.type", outcome.error_type.as_deref());
    }};
}

/// The host and port of `uri`, as OpenTelemetry's `server.address` and `server.port`: the
/// port of the URI, or the scheme's (443 for `https`, 80 otherwise).
///
/// ```
/// let uri: client_credentials::http::Uri = "https://auth.example.com/oauth2/token".parse()?;
/// assert_eq!(client_credentials::driver::server_address(&uri), ("auth.example.com", 443));
/// # Ok::<_, Box<dyn std::error::Error>>(())
/// ```
#[must_use]
pub fn server_address(uri: &http::Uri) -> (&str, u16) {
    let default = if uri.scheme() == Some(&http::uri::Scheme::HTTPS) {
        443
    } else {
        80
    };
    (
        uri.host().unwrap_or_default(),
        uri.port_u16().unwrap_or(default),
    )
}

/// How an exchange ended, in OpenTelemetry's HTTP client terms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpOutcome {
    /// `http.response.status_code`: the status, when a response came.
    pub status_code: Option<u16>,
    /// `error.type`: the status code for a 4xx or 5xx answer; for no usable answer, the
    /// transport failure's kind (`connect`, `timeout`, `tls`, `io`, `other`), `too_large`
    /// for a body over the cap, `abandoned` for a request given up; `None` for success.
    pub error_type: Option<String>,
}

/// The [`HttpOutcome`] of an exchange, for the span of the request.
///
/// ```
/// use client_credentials::driver::{http_outcome, Reply};
/// use client_credentials::http::{HeaderMap, StatusCode};
/// let reply = Reply { status: StatusCode::UNAUTHORIZED, headers: HeaderMap::new(), body: Vec::new() };
/// let outcome = http_outcome(&Ok(reply));
/// assert_eq!((outcome.status_code, outcome.error_type.as_deref()), (Some(401), Some("401")));
/// ```
#[must_use]
pub fn http_outcome(exchange: &Exchange) -> HttpOutcome {
    let (status_code, error_type) = match exchange {
        Ok(reply) => {
            let status = reply.status;
            let failed = status.is_client_error() || status.is_server_error();
            (
                Some(status.as_u16()),
                failed.then(|| status.as_u16().to_string()),
            )
        }
        Err(Failure::Transport(error)) => (None, Some(kind_name(error.kind()).to_owned())),
        Err(Failure::Error(TokenError::TooLarge { status, .. })) => {
            (status.map(|s| s.as_u16()), Some("too_large".to_owned()))
        }
        Err(Failure::Error(error)) => (
            error.status().map(|s| s.as_u16()),
            Some(
                error
                    .status()
                    .map_or_else(|| "error".to_owned(), |s| s.as_u16().to_string()),
            ),
        ),
        Err(Failure::Abandoned) => (None, Some("abandoned".to_owned())),
    };
    HttpOutcome {
        status_code,
        error_type,
    }
}

/// The low-cardinality name of a transport failure, for `error.type`.
fn kind_name(kind: TransportErrorKind) -> &'static str {
    match kind {
        TransportErrorKind::Connect => "connect",
        TransportErrorKind::Timeout => "timeout",
        TransportErrorKind::Tls => "tls",
        TransportErrorKind::Io => "io",
        _ => "other",
    }
}

/// How long connecting (DNS, TCP and TLS) may take by default.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a whole token request (connect, send, response and body) may take by default.
/// Token endpoints answer in milliseconds; a fetch that takes longer than this is better
/// failed and retried with backoff. The policy's `request_timeout` backstop (30 s by
/// default) must be longer; [`Timeouts::new`] clamps this timeout to it.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15);

/// The timeouts a driver gives its HTTP client for token requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// Connecting (DNS, TCP, TLS); never longer than `overall`.
    pub connect: Duration,
    /// The whole request, body included; never longer than [`Policy::request_timeout`], so
    /// that the transport gives up before the session's backstop would send a second
    /// request.
    pub overall: Duration,
}

impl Timeouts {
    /// `overall = min(timeout, policy.request_timeout)` and
    /// `connect = min(connect, overall)`, with [`DEFAULT_TIMEOUT`] and
    /// [`DEFAULT_CONNECT_TIMEOUT`] for what the user did not set.
    ///
    /// ```
    /// use std::time::Duration;
    /// use client_credentials::{Policy, driver::Timeouts};
    ///
    /// let mut policy = Policy::default();
    /// policy.request_timeout = Duration::from_secs(3);
    /// let t = Timeouts::new(None, Some(Duration::from_secs(10)), &policy);
    /// assert_eq!((t.overall, t.connect), (Duration::from_secs(3), Duration::from_secs(3)));
    /// ```
    #[must_use]
    pub fn new(timeout: Option<Duration>, connect: Option<Duration>, policy: &Policy) -> Self {
        let overall = timeout
            .unwrap_or(DEFAULT_TIMEOUT)
            .min(policy.request_timeout);
        Self {
            connect: connect.unwrap_or(DEFAULT_CONNECT_TIMEOUT).min(overall),
            overall,
        }
    }

    /// The timeouts for `request`: the call's own timeout ([`crate::TokenParams::timeout`])
    /// where that is shorter than `overall` ([`crate::HttpRequest::timeout_within`]), and
    /// `connect` no longer than that.
    ///
    /// ```
    /// use std::time::Duration;
    /// use client_credentials::{Config, Policy, TokenParams, driver::Timeouts};
    /// # let config = Config::builder().token_url("https://as.example.com/t").client_id("c").client_secret("s").build()?;
    /// let client = Timeouts::new(None, None, &Policy::default()); // 15 s, connect 5 s
    /// let quick = config.request(&TokenParams::new().timeout(Duration::from_secs(2)))?;
    /// let t = client.for_request(&quick.to_http());
    /// assert_eq!((t.overall, t.connect), (Duration::from_secs(2), Duration::from_secs(2)));
    /// let slow = config.request(&TokenParams::new().timeout(Duration::from_secs(60)))?;
    /// assert_eq!(client.for_request(&slow.to_http()), client);
    /// # Ok::<_, client_credentials::ConfigError>(())
    /// ```
    #[must_use]
    pub fn for_request(self, request: &crate::HttpRequest) -> Self {
        let overall = request.timeout_within(self.overall);
        Self {
            overall,
            connect: self.connect.min(overall),
        }
    }
}

/// A short, stable digest of a request shape for logs: FNV-1a over the [`CacheKey`] (which
/// never holds the secret), shown as 16 hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyDigest(u64);

impl KeyDigest {
    /// The digest of `key`.
    #[must_use]
    pub fn of(key: &CacheKey) -> Self {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in key.as_str().bytes() {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
        Self(hash)
    }
}

impl fmt::Display for KeyDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl fmt::Debug for KeyDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyDigest({self})")
    }
}

/// A whole answer from a server: the status, the headers and the body read within the cap.
/// Its `Debug` leaves the body out (it may hold a token).
pub struct Reply {
    /// The status.
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The body, at most the configuration's body cap.
    pub body: Vec<u8>,
}

impl fmt::Debug for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reply")
            .field("status", &self.status)
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("body_len", &self.body.len())
            .finish()
    }
}

/// What one exchange with a server gave: a [`Reply`], or how it ended without one (a
/// transport error, a body over the cap, an abandoned sender).
pub type Exchange = Result<Reply, Failure>;

/// Reports the exchange of request `id` to the cache: [`Cache::handle_response`] or
/// [`Cache::handle_failure`]. Wake the waiters when the outcome
/// [`changed`](Outcome::changed) anything, after draining the events.
pub fn handle_exchange(
    cache: &mut Cache,
    now: Instant,
    id: RequestId,
    exchange: Exchange,
) -> Outcome {
    match exchange {
        Ok(reply) => cache.handle_response(now, id, reply.status, &reply.headers, &reply.body),
        Err(failure) => cache.handle_failure(now, id, failure),
    }
}

/// One caller's call for a token, as far as the wait metrics go: whether it had to wait (for
/// a fetch in flight, or for the first token, its own fetch), and since when. A driver makes
/// one per call and shows it every [`Action`] its polls return, under the lock; the call that
/// waited is reported to the cache when it gets its answer. Without metrics
/// (the `metrics` module, feature `metrics`) nothing is recorded.
///
/// ```
/// use std::time::{Duration, Instant, SystemTime};
/// use client_credentials::driver::Call;
/// use client_credentials::http::{HeaderMap, StatusCode};
/// use client_credentials::{Action, Cache, Config, Policy, WallClock};
/// # let config = Config::builder().token_url("https://as.example.com/t").client_id("c").client_secret("s").build()?;
/// let request = config.default_request();
/// let now = Instant::now();
/// let mut cache = Cache::new(Policy::default(), WallClock::new(now, SystemTime::now()), 7);
/// let mut call = Call::default();
/// let action = cache.poll(now, &request);
/// call.observe(&mut cache, now, &action); // a `Send` without a token: this call waits
/// let Action::Send { id, .. } = action else { unreachable!() };
/// let body = br#"{"access_token":"abc","token_type":"Bearer","expires_in":3600}"#;
/// let later = now + Duration::from_millis(30);
/// let _ = cache.handle_response(later, id, StatusCode::OK, &HeaderMap::new(), body);
/// let action = cache.poll(later, &request);
/// call.observe(&mut cache, later, &action); // answered: a wait of 30 ms is recorded
/// assert!(matches!(action, Action::Ready(_)));
/// # Ok::<_, client_credentials::ConfigError>(())
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct Call {
    waiting_since: Option<Instant>,
}

impl Call {
    /// Shows the call `action`, what its poll at `now` returned. [`Action::Wait`], and
    /// [`Action::Send`] without a current token, make it wait (from its first poll: the
    /// only poll after which a call can start waiting); any other action answers it, and a
    /// call that waited is reported then: a wait, and not a cache hit, even though the poll
    /// that served it counted one in [`crate::Counters::cache_hits`].
    pub fn observe(&mut self, cache: &mut Cache, now: Instant, action: &Action) {
        let waits = matches!(action, Action::Wait(_) | Action::Send { current: None, .. });
        if waits {
            self.waiting_since.get_or_insert(now);
        } else if let Some(since) = self.waiting_since.take() {
            cache.record_wait(now, since, matches!(action, Action::Ready(_)));
        }
    }
}

/// A token to hand to the shared store, for as long as [`Event::Publish`] says.
#[derive(Clone, Debug)]
pub struct Publish {
    /// The token.
    pub token: Arc<Token>,
    /// How long the store may keep it.
    pub ttl: Duration,
}

/// Drains the cache's events (call it under the lock, after every input), handing each to
/// `log` (see [`event_log`]), and returns the token to publish if an [`Event::Publish`]
/// names request `own`, the one this driver sent and holds the store's permit for. A
/// `Publish` for any other request has no permit here and is only logged.
pub fn drain_events(
    cache: &mut Cache,
    own: Option<RequestId>,
    mut log: impl FnMut(&Event),
) -> Option<Publish> {
    let mut publish = None;
    while let Some(event) = cache.poll_event() {
        log(&event);
        if let Event::Publish { id, token, ttl, .. } = event
            && Some(id) == own
        {
            publish = Some(Publish { token, ttl });
        }
    }
    publish
}

/// How a driver logs an [`Event`] ([`event_log`]): a warning or a debug line, its message,
/// and its fields. None of them holds a secret or a token.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct EventLog<'a> {
    /// A warning (a fetch failed) rather than a debug line.
    pub warn: bool,
    /// What happened, in a few words.
    pub message: &'static str,
    /// The request shape.
    pub key: KeyDigest,
    /// The request concerned, if the event names one.
    pub request_id: Option<u64>,
    /// The error every waiter got, for [`Event::FetchFailed`].
    pub error: Option<&'a TokenError>,
}

/// How to log `event`: a warning for [`Event::FetchFailed`], a debug line for the rest.
#[must_use]
pub fn event_log(event: &Event) -> EventLog<'_> {
    let (message, key, id, error) = match event {
        Event::Fetched { key, id, .. } => ("token fetch completed", key, Some(id), None),
        Event::FetchFailed { key, id, error } => ("token fetch failed", key, Some(id), Some(error)),
        Event::FetchAbandoned { key, id } => {
            ("token fetch abandoned by its sender", key, Some(id), None)
        }
        Event::Publish { key, id, .. } => {
            ("token to publish to the shared store", key, Some(id), None)
        }
        Event::Shared { key, id } => (
            "token taken from the shared store, nothing sent",
            key,
            Some(id),
            None,
        ),
        Event::Invalidated { key } => (
            "cached token invalidated after a rejection",
            key,
            None,
            None,
        ),
        Event::Evicted { key } => ("request shape evicted from the cache", key, None, None),
    };
    EventLog {
        warn: error.is_some(),
        message,
        key: KeyDigest::of(key),
        request_id: id.map(|id| id.as_u64()),
        error,
    }
}

/// The error a caller gets for an exchange that ended without a reply, outside the cache
/// (a revocation, an introspection): the transport error or the transport's own verdict.
#[must_use]
pub fn failure_error(failure: Failure) -> TokenError {
    match failure {
        Failure::Transport(error) => TokenError::Transport(error),
        Failure::Error(error) => error,
        Failure::Abandoned => {
            TokenError::Transport(TransportError::from_kind(TransportErrorKind::Other))
        }
    }
}

/// The end of a revocation: the server's reply ([`PendingRevocation::handle_response`]) or
/// the failure ([`PendingRevocation::handle_failure`]), with the token redacted either way.
/// `now` is wall-clock time (for a `Retry-After` date).
///
/// # Errors
/// The [`TokenError`] the exchange amounts to.
pub fn finish_revocation(
    pending: PendingRevocation,
    now: SystemTime,
    exchange: Exchange,
) -> Result<(), TokenError> {
    match exchange {
        Ok(r) => pending.handle_response(now, r.status, &r.headers, &r.body),
        Err(failure) => Err(pending.handle_failure(failure_error(failure))),
    }
}

/// The end of an introspection, as [`finish_revocation`].
///
/// # Errors
/// The [`TokenError`] the exchange amounts to.
pub fn finish_introspection(
    pending: PendingIntrospection,
    now: SystemTime,
    exchange: Exchange,
) -> Result<Introspection, TokenError> {
    match exchange {
        Ok(r) => pending.handle_response(now, r.status, &r.headers, &r.body),
        Err(failure) => Err(pending.handle_failure(failure_error(failure))),
    }
}
