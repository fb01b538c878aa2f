//! The error a token fetch ends with, and what the caller can do about it.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;

use crate::scrub::Scrubber;

/// An OAuth error code (RFC 6749 §5.2, RFC 8707 §2, and the codes servers send in practice).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// `invalid_request`: the request is malformed.
    InvalidRequest,
    /// `invalid_client`: client authentication failed.
    InvalidClient,
    /// `invalid_grant`: the grant is invalid (rare for client credentials).
    InvalidGrant,
    /// `unauthorized_client`: the client may not use this grant.
    UnauthorizedClient,
    /// `unsupported_grant_type`: the server does not support client credentials.
    UnsupportedGrantType,
    /// `invalid_scope`: a requested scope is invalid or not allowed.
    InvalidScope,
    /// `invalid_target`: a resource indicator is invalid or not allowed (RFC 8707).
    InvalidTarget,
    /// `server_error`: the server failed.
    ServerError,
    /// `temporarily_unavailable`: the server is overloaded or in maintenance.
    TemporarilyUnavailable,
    /// Any other code, kept verbatim (bounded in length).
    Unknown(String),
}

impl ErrorCode {
    /// Parses a code as the server sent it (exact match, as the RFC defines them).
    #[must_use]
    pub fn parse(code: &str) -> Self {
        match code {
            "invalid_request" => Self::InvalidRequest,
            "invalid_client" => Self::InvalidClient,
            "invalid_grant" => Self::InvalidGrant,
            "unauthorized_client" => Self::UnauthorizedClient,
            "unsupported_grant_type" => Self::UnsupportedGrantType,
            "invalid_scope" => Self::InvalidScope,
            "invalid_target" => Self::InvalidTarget,
            "server_error" => Self::ServerError,
            "temporarily_unavailable" => Self::TemporarilyUnavailable,
            other => Self::Unknown(crate::response::bounded(other, 64)),
        }
    }

    /// The code as sent on the wire.
    #[must_use]
    pub fn as_str(&self) -> &str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant => "invalid_grant",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::InvalidScope => "invalid_scope",
            Self::InvalidTarget => "invalid_target",
            Self::ServerError => "server_error",
            Self::TemporarilyUnavailable => "temporarily_unavailable",
            Self::Unknown(s) => s,
        }
    }

    /// Whether the code says that trying again later may succeed. Besides `server_error`
    /// and `temporarily_unavailable`, DPoP's `use_dpop_nonce` (RFC 9449 §8): the server
    /// wants a proof with its newest nonce, which a later request carries.
    #[must_use]
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::ServerError | Self::TemporarilyUnavailable)
            || matches!(self, Self::Unknown(code) if code == "use_dpop_nonce")
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The shape of an error body that is not RFC 6749 §5.2 but was understood as an error
/// response: the provider's dialect, recorded on the [`OAuthError`] so that users can log it
/// (as [`crate::Deviation`]s are recorded on a token). The vendor's own code becomes an
/// [`ErrorCode`] (usually [`ErrorCode::Unknown`]) and its message the description; the status
/// decides the classification (401/403 rejected, 429 rate limited, 5xx server error).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorDialect {
    /// An object under `error`: `{"error":{"code":…,"message":…}}` (Microsoft Graph and
    /// Azure, Google APIs with `status`, Facebook Graph and Stripe with `type`, Dropbox with
    /// `.tag`, Spotify's Web API with a numeric `status`).
    NestedError,
    /// `errorCode` with `errorSummary` (Okta) or with `Error` (Apigee).
    ErrorCodeSummary,
    /// An `errors` array of `{code, message}` (X/Twitter), `{status, title, detail}` (JSON:API)
    /// or `{message}` (GraphQL gateways); the first entry is used.
    ErrorsArray,
    /// A top-level array of `{errorCode, message}` (Salesforce REST); the first entry is used.
    TopLevelArray,
    /// `{status, message}` without `error` (Twitch), or `{code, message}`.
    StatusMessage,
    /// `{name, description}` or `{name, message}` (legacy SDKs, PayPal REST's `name`).
    NameDescription,
    /// Only `message` (or `Message`), as AWS API Gateway and many proxies answer.
    MessageOnly,
    /// An RFC 6749 `error` code with its description in another member than
    /// `error_description` (Zoom's `reason`, Spring Boot's `message`, `error_message`); the
    /// member is named.
    DescriptionIn(DescriptionMember),
}

/// Where [`ErrorDialect::DescriptionIn`] found the description.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DescriptionMember {
    /// `message` (Spring Boot's error attributes).
    Message,
    /// `reason` (Zoom).
    Reason,
    /// `error_message`.
    ErrorMessage,
    /// `detail`.
    Detail,
}

impl DescriptionMember {
    /// The member's name, in lower case.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Message => "message",
            Self::Reason => "reason",
            Self::ErrorMessage => "error_message",
            Self::Detail => "detail",
        }
    }
}

impl ErrorDialect {
    /// A stable name, for logs and the CLI's JSON (`nested_error`, `errors_array`…).
    #[must_use]
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::NestedError => "nested_error",
            Self::ErrorCodeSummary => "error_code_summary",
            Self::ErrorsArray => "errors_array",
            Self::TopLevelArray => "top_level_array",
            Self::StatusMessage => "status_message",
            Self::NameDescription => "name_description",
            Self::MessageOnly => "message_only",
            Self::DescriptionIn(_) => "description_in_other_member",
        }
    }
}

impl fmt::Display for ErrorDialect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::DescriptionIn(member) => write!(f, "description in {:?}", member.as_str()),
            other => f.write_str(other.as_str()),
        }
    }
}

/// An RFC 6749 §5.2 error response body, or a vendor's error body read as one (see
/// [`OAuthError::dialect`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OAuthError {
    /// The `error` code (a vendor's own code for another [`ErrorDialect`]).
    pub code: ErrorCode,
    /// `error_description` (or the vendor's message), bounded in length, with the client
    /// secret and token-like runs scrubbed.
    pub description: Option<String>,
    /// `error_uri`.
    pub uri: Option<String>,
    /// `None` for an RFC 6749 §5.2 body; otherwise the shape the error came in.
    pub dialect: Option<ErrorDialect>,
}

impl OAuthError {
    /// [`TokenError::redact`] for the text of an OAuth error (the RFC codes themselves are
    /// left alone).
    fn redact(&mut self, value: &str) {
        if let ErrorCode::Unknown(code) = &mut self.code {
            redact_in(code, value);
        }
        for text in [&mut self.description, &mut self.uri].into_iter().flatten() {
            redact_in(text, value);
        }
    }
}

/// Replaces `value`, in any letter case and in its encoded forms ([`Scrubber`]), with
/// `[redacted]` in `text`.
fn redact_in(text: &mut String, value: &str) {
    let scrubber = Scrubber::new(value);
    if scrubber.found_in(text) {
        *text = scrubber.scrub(text);
    }
    let encoded: String = form_urlencoded::byte_serialize(value.as_bytes()).collect();
    // Texts from the server were shortened (ending in `…`) before this value was known: a
    // value cut at the limit survives as a prefix just before the `…`.
    if let Some(head) = text.strip_suffix('…') {
        const MIN_PREFIX: usize = 4;
        let cut = [value, encoded.as_str()].iter().find_map(|v| {
            (MIN_PREFIX..v.len())
                .rev()
                .filter(|&n| v.is_char_boundary(n))
                .find(|&n| head.ends_with(&v[..n]))
        });
        if let Some(n) = cut {
            let keep = head.len() - n;
            *text = format!("{}[redacted]…", &head[..keep]);
        }
    }
}

impl fmt::Display for OAuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.code)?;
        if let Some(d) = &self.description {
            write!(f, ": {d}")?;
        }
        if let Some(u) = &self.uri {
            write!(f, " (see {u})")?;
        }
        Ok(())
    }
}

/// A bounded, sanitised excerpt of a response body, for diagnostics.
///
/// It holds at most [`Excerpt::MAX_CHARS`] characters of a non-success body, control
/// characters replaced, the client secret scrubbed, and every run of 24 or more token-like
/// characters (what an access token, a JWT or a secret looks like) replaced by `[redacted]`.
/// Bodies of successful responses are never excerpted.
#[derive(Clone, PartialEq, Eq)]
pub struct Excerpt(String);

impl Excerpt {
    /// The maximum length of an excerpt, in characters.
    pub const MAX_CHARS: usize = 200;

    /// The sanitised text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub(crate) fn new(text: String) -> Self {
        Self(text)
    }
}

impl fmt::Debug for Excerpt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for Excerpt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What was wrong with a response that could not be understood.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResponseProblem {
    /// A success status with a body that is not JSON or a form (HTML, empty, truncated…).
    Unparseable,
    /// The body parsed, but has no usable `access_token` (missing, empty, not a string, or
    /// with characters that cannot go in an HTTP header).
    MissingAccessToken,
    /// The token type is not one the configuration accepts.
    UnsupportedTokenType(String),
    /// `expires_in` is present but not a non-negative number.
    InvalidExpiresIn,
    /// The response has no `expires_in` and the policy is [`crate::MissingLifetime::Reject`].
    MissingExpiresIn,
    /// A non-success status whose body is not an OAuth error.
    NotAnOAuthError,
    /// A status that is neither success nor error (1xx, 3xx: redirects are never followed).
    UnexpectedStatus,
    /// An introspection answer without a boolean `active` (RFC 7662 §2.2).
    InvalidIntrospection,
    /// The token's lifetime had already run out when the response arrived (`expires_in: 0`,
    /// or an answer slower than the lifetime).
    ExpiredOnArrival,
    /// The endpoint answered 404 Not Found, whatever its body said: the URL is most likely
    /// wrong (a missing path, another tenant or realm). Not retryable.
    EndpointNotFound,
}

impl fmt::Display for ResponseProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unparseable => f.write_str("body is neither JSON nor a form"),
            Self::MissingAccessToken => f.write_str("no usable access_token"),
            Self::UnsupportedTokenType(t) => write!(f, "token type {t:?} is not accepted"),
            Self::InvalidExpiresIn => f.write_str("expires_in is not a non-negative number"),
            Self::MissingExpiresIn => f.write_str("expires_in is missing"),
            Self::NotAnOAuthError => f.write_str("error response is not an OAuth error"),
            Self::UnexpectedStatus => f.write_str("unexpected status (redirects are not followed)"),
            Self::InvalidIntrospection => f.write_str("introspection answer has no boolean active"),
            Self::ExpiredOnArrival => f.write_str("the token had expired by the time it arrived"),
            Self::EndpointNotFound => {
                f.write_str("endpoint not found (HTTP 404): check the endpoint URL")
            }
        }
    }
}

/// What kind of transport failure happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TransportErrorKind {
    /// Could not connect (refused, unreachable, DNS).
    Connect,
    /// A connect, read or overall timeout.
    Timeout,
    /// TLS failed.
    Tls,
    /// The connection broke while sending or reading.
    Io,
    /// The transport was misconfigured or refused the request itself.
    Other,
}

/// A transport failure, reported by an adapter. Carries its source error.
#[derive(Clone)]
pub struct TransportError {
    kind: TransportErrorKind,
    source: Option<Arc<dyn std::error::Error + Send + Sync>>,
}

impl TransportError {
    /// A transport error of this kind, caused by `source`. The source's `Display` is shown,
    /// so it must not hold secrets (HTTP clients' errors name the URL, not the body).
    #[must_use]
    pub fn new(
        kind: TransportErrorKind,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Self {
            kind,
            source: Some(Arc::from(source.into())),
        }
    }

    /// A transport error of this kind with no source.
    #[must_use]
    pub fn from_kind(kind: TransportErrorKind) -> Self {
        Self { kind, source: None }
    }

    /// The kind.
    #[must_use]
    pub fn kind(&self) -> TransportErrorKind {
        self.kind
    }
}

impl fmt::Debug for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TransportError")
            .field("kind", &self.kind)
            .field("source", &self.source.as_ref().map(ToString::to_string))
            .finish()
    }
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.kind {
            TransportErrorKind::Connect => "could not connect",
            TransportErrorKind::Timeout => "timed out",
            TransportErrorKind::Tls => "TLS failed",
            TransportErrorKind::Io => "connection failed",
            TransportErrorKind::Other => "transport failed",
        };
        match &self.source {
            Some(s) => write!(f, "{what}: {s}"),
            None => f.write_str(what),
        }
    }
}

impl std::error::Error for TransportError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|s| s as &(dyn std::error::Error + 'static))
    }
}

/// Why a token could not be obtained. Cheap to clone: one outcome is shared by every caller
/// that waited for it.
///
/// Use [`TokenError::is_retryable`] rather than matching on variants to decide whether to
/// try again; the session already does, and honours [`TokenError::retry_after`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum TokenError {
    /// The server refused the request with an OAuth error (RFC 6749 §5.2).
    Rejected {
        /// The HTTP status (a 2xx when an `error` member came in a success body).
        status: StatusCode,
        /// The OAuth error.
        error: OAuthError,
        /// The `WWW-Authenticate` header of a 401, bounded.
        www_authenticate: Option<String>,
    },
    /// The server answered 429 Too Many Requests.
    RateLimited {
        /// The HTTP status (429).
        status: StatusCode,
        /// How long the server asked us to wait (`Retry-After`).
        retry_after: Option<Duration>,
        /// The OAuth error, if the body carried one.
        error: Option<OAuthError>,
    },
    /// The server failed (5xx, or a `server_error` / `temporarily_unavailable` code).
    Server {
        /// The HTTP status.
        status: StatusCode,
        /// How long the server asked us to wait (`Retry-After`), if it said.
        retry_after: Option<Duration>,
        /// The OAuth error, if the body carried one.
        error: Option<OAuthError>,
        /// An excerpt of a body that was not an OAuth error.
        excerpt: Option<Excerpt>,
    },
    /// The response could not be understood.
    InvalidResponse {
        /// The HTTP status.
        status: StatusCode,
        /// The `Content-Type`, bounded.
        content_type: Option<String>,
        /// What was wrong.
        problem: ResponseProblem,
        /// An excerpt of the body (never of a success body).
        excerpt: Option<Excerpt>,
    },
    /// The response body was larger than the configured cap.
    TooLarge {
        /// The HTTP status, when known.
        status: Option<StatusCode>,
        /// The cap, in bytes.
        limit: usize,
    },
    /// The request did not complete: connect, TLS, timeout or I/O.
    Transport(TransportError),
    /// Not an answer of the token endpoint: resource servers kept rejecting tokens as soon as
    /// they were fetched (wrong audience, issuer or signing key), so the session stopped
    /// fetching new ones for a backoff (see [`crate::session::Policy::early_rejection_window`]).
    /// Retryable: the next token is fetched when the backoff ends.
    RejectedByResource {
        /// How many tokens in a row were rejected early.
        attempts: u32,
    },
    /// Not an answer of the token endpoint: the client assertion could not be read from its
    /// [`AssertionSource`](crate::AssertionSource) (a missing or empty file, an unset
    /// variable, a failed function), so nothing was sent. Retryable, except for a source
    /// this client can never read
    /// ([`AssertionError::is_retryable`](crate::AssertionError::is_retryable)): a projected
    /// token may not be written yet.
    Assertion(crate::federated::AssertionError),
}

/// The endpoint that gave an error, as its message names it: a [`TokenError`] by itself is
/// the token endpoint's; [`TokenError::at`] names the revocation (RFC 7009) or
/// introspection (RFC 7662) endpoint instead, which answer with the same classes of error.
///
/// ```
/// use client_credentials::{Endpoint, TokenError};
/// let error = TokenError::TooLarge { status: None, limit: 65_536 };
/// assert_eq!(error.to_string(), "token response body exceeds the 65536-byte cap");
/// assert_eq!(
///     error.at(Endpoint::Introspection).to_string(),
///     "introspection response body exceeds the 65536-byte cap",
/// );
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Endpoint {
    /// The token endpoint (RFC 6749 §3.2).
    Token,
    /// The revocation endpoint (RFC 7009).
    Revocation,
    /// The introspection endpoint (RFC 7662).
    Introspection,
    /// An authorization server's metadata document (RFC 8414, OpenID Connect Discovery),
    /// read by [`Discovery`](crate::Discovery).
    Metadata,
}

impl Endpoint {
    /// What the endpoint's requests and responses are called in messages.
    fn noun(self) -> &'static str {
        match self {
            Self::Token => "token",
            Self::Revocation => "revocation",
            Self::Introspection => "introspection",
            Self::Metadata => "metadata",
        }
    }
}

/// A failure of the revocation or introspection endpoint: the same classification as a
/// fetch's ([`TokenError`]), displayed under the endpoint's name. The adapters return it for
/// `revoke` and `introspect`.
#[derive(Clone, Debug)]
pub struct EndpointError {
    /// The endpoint that failed.
    pub endpoint: Endpoint,
    /// What went wrong, classified as for the token endpoint.
    pub error: TokenError,
}

impl fmt::Display for EndpointError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.error.at(self.endpoint), f)
    }
}

impl std::error::Error for EndpointError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        std::error::Error::source(&self.error)
    }
}

/// A [`TokenError`] displayed for the endpoint that gave it ([`TokenError::at`]).
#[derive(Clone, Copy, Debug)]
pub struct AtEndpoint<'a>(&'a TokenError, Endpoint);

impl fmt::Display for AtEndpoint<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let noun = self.1.noun();
        match self.0 {
            TokenError::Rejected { status, error, .. } => {
                write!(
                    f,
                    "{noun} request rejected (HTTP {}): {error}",
                    status.as_u16()
                )
            }
            TokenError::RateLimited {
                status,
                retry_after,
                error,
            } => write!(
                f,
                "{noun} endpoint rate limited the client (HTTP {}){}{}",
                status.as_u16(),
                fmt_opt_error(error.as_ref()),
                fmt_retry(*retry_after)
            ),
            TokenError::Server {
                status,
                retry_after,
                error,
                ..
            } => write!(
                f,
                "{noun} endpoint failed (HTTP {}){}{}",
                status.as_u16(),
                fmt_opt_error(error.as_ref()),
                fmt_retry(*retry_after)
            ),
            TokenError::InvalidResponse {
                status,
                content_type,
                problem,
                excerpt,
            } => write!(
                f,
                "invalid {noun} response (HTTP {}, content type {}): {problem}{}",
                status.as_u16(),
                content_type.as_deref().unwrap_or("none"),
                fmt_excerpt(excerpt.as_ref())
            ),
            TokenError::TooLarge { limit, .. } => {
                write!(f, "{noun} response body exceeds the {limit}-byte cap")
            }
            TokenError::Transport(e) => write!(f, "{noun} request failed: {e}"),
            TokenError::RejectedByResource { attempts } => write!(
                f,
                "the resource server keeps rejecting fresh tokens ({attempts} in a row)"
            ),
            TokenError::Assertion(e) => write!(f, "{noun} request not sent: {e}"),
        }
    }
}

impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.at(Endpoint::Token), f)
    }
}

impl std::error::Error for TokenError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Transport(e) => Some(e),
            Self::Assertion(e) => Some(e),
            _ => None,
        }
    }
}

impl From<TransportError> for TokenError {
    fn from(error: TransportError) -> Self {
        Self::Transport(error)
    }
}

fn fmt_retry(d: Option<Duration>) -> String {
    d.map(|d| format!(", retry after {}s", d.as_secs()))
        .unwrap_or_default()
}

fn fmt_opt_error(e: Option<&OAuthError>) -> String {
    e.map(|e| format!(": {e}")).unwrap_or_default()
}

fn fmt_excerpt(e: Option<&Excerpt>) -> String {
    e.map(|e| format!("; body starts {:?}", e.as_str()))
        .unwrap_or_default()
}

impl TokenError {
    /// This error as the `endpoint` that gave it names it: "revocation request rejected
    /// (HTTP 400): …" rather than the token endpoint's "token request rejected …". The
    /// classification (and so [`TokenError::is_retryable`]) is the same for every endpoint.
    #[must_use]
    pub fn at(&self, endpoint: Endpoint) -> AtEndpoint<'_> {
        AtEndpoint(self, endpoint)
    }

    /// The HTTP status of the response, if there was one.
    #[must_use]
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Self::Rejected { status, .. }
            | Self::RateLimited { status, .. }
            | Self::Server { status, .. }
            | Self::InvalidResponse { status, .. } => Some(*status),
            Self::TooLarge { status, .. } => *status,
            Self::Transport(_) | Self::RejectedByResource { .. } | Self::Assertion(_) => None,
        }
    }

    /// The OAuth error, if the server sent one.
    #[must_use]
    pub fn oauth_error(&self) -> Option<&OAuthError> {
        match self {
            Self::Rejected { error, .. } => Some(error),
            Self::RateLimited { error, .. } | Self::Server { error, .. } => error.as_ref(),
            _ => None,
        }
    }

    /// The shape of a vendor's error body that was read as an OAuth error; `None` for an RFC
    /// 6749 §5.2 body or no error body.
    #[must_use]
    pub fn error_dialect(&self) -> Option<ErrorDialect> {
        self.oauth_error().and_then(|e| e.dialect)
    }

    /// The OAuth error code, if the server sent one.
    #[must_use]
    pub fn oauth_code(&self) -> Option<&ErrorCode> {
        self.oauth_error().map(|e| &e.code)
    }

    /// How long the server asked the client to wait before trying again.
    #[must_use]
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::RateLimited { retry_after, .. } | Self::Server { retry_after, .. } => {
                *retry_after
            }
            _ => None,
        }
    }

    /// Replaces `value`, as sent and form-urlencoded, with `[redacted]` wherever this error
    /// carries text from the server: the description, the URI and an unknown code of the
    /// OAuth error, `WWW-Authenticate`, the body excerpt.
    ///
    /// For values the parser cannot know: the token a revocation or introspection request
    /// was about, which a server may quote in its error ("unknown token …"). The parser
    /// already scrubs the client secret and every run of 24 or more token-like characters,
    /// but a shorter token (RFC 6749's example `2YotnFZFEjr1zCsicMWpAA` has 22) or a
    /// UUID-shaped one would get through. An empty `value` changes nothing.
    ///
    /// ```
    /// # use std::time::SystemTime;
    /// # use client_credentials_core::{AccessToken, Config};
    /// # use http::{HeaderMap, StatusCode};
    /// # let config = Config::builder().token_url("https://as.example.com/t")
    /// #     .revocation_url("https://as.example.com/revoke").client_id("c").client_secret("s3cr3t-value").build()?;
    /// let token = AccessToken::new("2YotnFZFEjr1zCsicMWpAA");
    /// let body = br#"{"error":"invalid_request","error_description":"unknown token 2YotnFZFEjr1zCsicMWpAA"}"#;
    /// let mut error = config
    ///     .default_request()
    ///     .parse_response(SystemTime::now(), StatusCode::BAD_REQUEST, &HeaderMap::new(), body)
    ///     .unwrap_err();
    /// error.redact(token.expose_secret());
    /// assert_eq!(error.to_string(), "token request rejected (HTTP 400): invalid_request: unknown token [redacted]");
    /// # Ok::<_, client_credentials_core::ConfigError>(())
    /// ```
    pub fn redact(&mut self, value: &str) {
        if value.is_empty() {
            return;
        }
        match self {
            Self::Rejected {
                error,
                www_authenticate,
                ..
            } => {
                error.redact(value);
                if let Some(header) = www_authenticate {
                    redact_in(header, value);
                }
            }
            Self::RateLimited { error, .. } => {
                if let Some(error) = error {
                    error.redact(value);
                }
            }
            Self::Server { error, excerpt, .. } => {
                if let Some(error) = error {
                    error.redact(value);
                }
                if let Some(excerpt) = excerpt {
                    redact_in(&mut excerpt.0, value);
                }
            }
            Self::InvalidResponse { excerpt, .. } => {
                if let Some(excerpt) = excerpt {
                    redact_in(&mut excerpt.0, value);
                }
            }
            Self::TooLarge { .. }
            | Self::Transport(_)
            | Self::RejectedByResource { .. }
            | Self::Assertion(_) => {}
        }
    }

    /// Whether client authentication failed: an `invalid_client` error, or any 401 of the
    /// endpoint (RFC 6749 §5.2 answers a failed authentication with 401 whatever the body
    /// says). A wrong or revoked secret, an unknown client id, the wrong auth method: asking
    /// again gets the same answer.
    ///
    /// ```
    /// # use std::time::SystemTime;
    /// use client_credentials::{Config, TokenError};
    /// use client_credentials::http::{HeaderMap, StatusCode};
    /// # let config = Config::builder().token_url("https://as.example.com/t").client_id("c").client_secret("s").build()?;
    /// let body = br#"{"error":"invalid_client","error_description":"bad secret"}"#;
    /// let error: TokenError = config
    ///     .default_request()
    ///     .parse_response(SystemTime::now(), StatusCode::UNAUTHORIZED, &HeaderMap::new(), body)
    ///     .unwrap_err();
    /// assert!(error.is_invalid_client());
    /// assert!(!error.is_retryable() && !error.is_invalid_scope() && !error.is_rate_limited());
    /// # Ok::<_, Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn is_invalid_client(&self) -> bool {
        self.oauth_code() == Some(&ErrorCode::InvalidClient)
            || matches!(
                self,
                Self::Rejected { status, .. } | Self::InvalidResponse { status, .. }
                    if *status == StatusCode::UNAUTHORIZED
            )
    }

    /// Whether a requested scope is unknown or not granted to this client
    /// (`invalid_scope`).
    #[must_use]
    pub fn is_invalid_scope(&self) -> bool {
        self.oauth_code() == Some(&ErrorCode::InvalidScope)
    }

    /// Whether an audience or resource indicator was refused (`invalid_target`, RFC 8707).
    #[must_use]
    pub fn is_invalid_target(&self) -> bool {
        self.oauth_code() == Some(&ErrorCode::InvalidTarget)
    }

    /// Whether the client may not use the client credentials grant
    /// (`unauthorized_client`), or the server does not offer it (`unsupported_grant_type`).
    /// A 401 is a failed authentication whatever its code (Keycloak answers a wrong
    /// secret with 401 `unauthorized_client`): [`TokenError::is_invalid_client`], not this.
    #[must_use]
    pub fn is_unauthorized_client(&self) -> bool {
        self.status() != Some(StatusCode::UNAUTHORIZED)
            && matches!(
                self.oauth_code(),
                Some(ErrorCode::UnauthorizedClient | ErrorCode::UnsupportedGrantType)
            )
    }

    /// Whether the server throttled the client: a 429, whatever its body. Retryable, after
    /// [`TokenError::retry_after`] if the server said.
    #[must_use]
    pub fn is_rate_limited(&self) -> bool {
        matches!(self, Self::RateLimited { .. })
    }

    /// Whether the request timed out (connect, read or overall): a [`TokenError::Transport`]
    /// of kind [`TransportErrorKind::Timeout`].
    #[must_use]
    pub fn is_timeout(&self) -> bool {
        matches!(self, Self::Transport(e) if e.kind() == TransportErrorKind::Timeout)
    }

    /// Whether the endpoint could not be reached or the exchange broke off (connect, TLS,
    /// timeout, I/O): no answer of the server at all.
    #[must_use]
    pub fn is_transport(&self) -> bool {
        matches!(self, Self::Transport(_))
    }

    /// Whether trying again later may succeed: server errors (5xx), rate limiting (429),
    /// `temporarily_unavailable` / `server_error`, timeouts and transport failures are
    /// retryable; rejections (`invalid_client`, `invalid_scope`, `unauthorized_client`,
    /// `invalid_request`…), unusable success responses and oversized bodies are not, because
    /// asking again gets the same answer. [`TokenError::RejectedByResource`] is retryable: the
    /// resource server may be fixed, and the session already spaces the attempts.
    #[must_use]
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::RateLimited { .. }
            | Self::Server { .. }
            | Self::Transport(_)
            | Self::RejectedByResource { .. } => true,
            Self::Assertion(e) => e.is_retryable(),
            Self::Rejected { error, .. } => error.code.is_retryable(),
            Self::InvalidResponse { status, .. } => {
                status.is_server_error()
                    || *status == StatusCode::REQUEST_TIMEOUT
                    || *status == StatusCode::TOO_MANY_REQUESTS
            }
            Self::TooLarge { .. } => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use http::{HeaderMap, HeaderValue};

    use super::*;
    use crate::Config;

    const TOKEN: &str = "2YotnFZFEjr1zCsicMWpAA";
    const UUID_TOKEN: &str = "3f2b8c1e-9d4a-4e7b-8c2d-1a2b3c4d5e6f";

    fn error(status: u16, headers: &[(&'static str, &str)], body: &str) -> TokenError {
        let config = Config::builder()
            .token_url("https://as.example.com/token")
            .revocation_url("https://as.example.com/revoke")
            .client_id("c")
            .client_secret("a-long-client-secret")
            .build()
            .unwrap();
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        config
            .parse_revocation_response(
                SystemTime::UNIX_EPOCH,
                StatusCode::from_u16(status).unwrap(),
                &map,
                body.as_bytes(),
            )
            .unwrap_err()
    }

    fn shown(error: &TokenError) -> String {
        format!("{error} {error:?}")
    }

    #[test]
    fn predicates_name_the_class_of_each_answer() {
        let bad_secret = error(401, &[], r#"{"error":"invalid_client"}"#);
        assert!(bad_secret.is_invalid_client());
        let bare_401 = error(401, &[], "<html>no</html>");
        assert!(bare_401.is_invalid_client(), "{bare_401:?}");
        let wrong_code_400 = error(400, &[], r#"{"error":"invalid_client"}"#);
        assert!(wrong_code_400.is_invalid_client());
        let scope = error(400, &[], r#"{"error":"invalid_scope"}"#);
        assert!(scope.is_invalid_scope() && !scope.is_invalid_client());
        let target = error(400, &[], r#"{"error":"invalid_target"}"#);
        assert!(target.is_invalid_target() && !target.is_invalid_scope());
        for code in ["unauthorized_client", "unsupported_grant_type"] {
            let e = error(400, &[], &format!(r#"{{"error":"{code}"}}"#));
            assert!(
                e.is_unauthorized_client() && !e.is_invalid_client(),
                "{code}"
            );
        }
        // Keycloak's answer to a wrong secret: an authentication failure, one class only.
        let keycloak = error(401, &[], r#"{"error":"unauthorized_client"}"#);
        assert!(keycloak.is_invalid_client() && !keycloak.is_unauthorized_client());
        let throttled = error(429, &[("retry-after", "7")], "");
        assert!(throttled.is_rate_limited() && throttled.is_retryable());
        assert_eq!(throttled.retry_after(), Some(Duration::from_secs(7)));
        let failed = error(503, &[], "");
        assert!(!failed.is_rate_limited() && !failed.is_invalid_client());
        let timeout = TokenError::from(TransportError::from_kind(TransportErrorKind::Timeout));
        assert!(timeout.is_timeout() && timeout.is_transport());
        let refused = TokenError::from(TransportError::from_kind(TransportErrorKind::Connect));
        assert!(!refused.is_timeout() && refused.is_transport());
        for e in [&bad_secret, &scope, &throttled, &timeout] {
            assert_eq!(
                [
                    e.is_invalid_client(),
                    e.is_invalid_scope(),
                    e.is_rate_limited(),
                    e.is_timeout()
                ]
                .iter()
                .filter(|b| **b)
                .count(),
                1,
                "exactly one class: {e:?}"
            );
        }
    }

    #[test]
    fn redact_removes_a_quoted_token_that_the_heuristics_keep() {
        for token in [TOKEN, UUID_TOKEN] {
            let body = format!(
                r#"{{"error":"invalid_request","error_description":"unknown token {token}","error_uri":"https://as.example.com/e?token={token}"}}"#
            );
            let mut e = error(400, &[], &body);
            assert!(shown(&e).contains(token), "the heuristics keep it: {e}");
            e.redact(token);
            assert!(!shown(&e).contains(token), "{e:?}");
            assert_eq!(e.oauth_code(), Some(&ErrorCode::InvalidRequest));
            assert!(e.to_string().contains("unknown token [redacted]"), "{e}");

            let challenge = format!(r#"Bearer error="invalid_token", token="{token}""#);
            let mut e = error(
                401,
                &[("www-authenticate", &challenge)],
                &format!(r#"{{"error":"{token}"}}"#),
            );
            assert!(shown(&e).contains(token));
            e.redact(token);
            assert!(!shown(&e).contains(token), "{e:?}");

            let mut e = error(
                503,
                &[("retry-after", "5")],
                &format!(r#"{{"error":"temporarily_unavailable","error_description":"{token}"}}"#),
            );
            e.redact(token);
            assert!(!shown(&e).contains(token), "{e:?}");
            assert_eq!(e.retry_after(), Some(Duration::from_secs(5)));

            let mut e = error(500, &[], &format!("<html><p>token={token}</p></html>"));
            assert!(
                matches!(
                    e,
                    TokenError::Server {
                        excerpt: Some(_),
                        ..
                    }
                ),
                "{e:?}"
            );
            e.redact(token);
            assert!(!shown(&e).contains(token), "{e:?}");

            let mut e = error(418, &[], &format!("I am a teapot, not {token}"));
            assert!(matches!(e, TokenError::InvalidResponse { .. }), "{e:?}");
            e.redact(token);
            assert!(!shown(&e).contains(token), "{e:?}");
        }
    }

    #[test]
    fn redact_removes_the_form_encoded_value_and_ignores_an_empty_one() {
        let token = "a+b/c==";
        let mut e = error(
            400,
            &[],
            r#"{"error":"invalid_request","error_description":"token=a%2Bb%2Fc%3D%3D or a+b/c=="}"#,
        );
        let before = e.to_string();
        e.redact("");
        assert_eq!(e.to_string(), before);
        e.redact(token);
        assert_eq!(
            e.oauth_error().unwrap().description.as_deref(),
            Some("token=[redacted] or [redacted]")
        );
    }
}
