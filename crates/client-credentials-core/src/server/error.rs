//! RFC 6749 §5.2 error responses, and why each was sent.

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use http::header::{ALLOW, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{HeaderValue, StatusCode};

use crate::error::ErrorCode;
use crate::server::{AssertionRejection, ClientAuthMethod};

/// Why a request was refused: finer than the OAuth error code, for logs and tests. Values
/// named here come from the request but are never secrets (scope names, parameter names).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rejection {
    /// The method was not `POST` (RFC 6749 §3.2). Answered with 405 and `Allow: POST`.
    MethodNotAllowed,
    /// No `Content-Type`.
    MissingContentType,
    /// A `Content-Type` other than a form (or JSON, when accepted).
    UnsupportedContentType,
    /// The body is larger than the endpoint's cap.
    BodyTooLarge {
        /// The cap, in bytes.
        limit: usize,
    },
    /// The body is not a form or not a JSON object.
    MalformedBody,
    /// A parameter is missing.
    MissingParameter(&'static str),
    /// A parameter that may appear once appeared more than once (RFC 6749 §3.2).
    RepeatedParameter(&'static str),
    /// A JSON parameter is not a string (or, where allowed, an array of strings).
    ParameterNotString(&'static str),
    /// More than one `Authorization` header.
    MultipleAuthorizationHeaders,
    /// Credentials both in the `Authorization` header and in the body (RFC 6749 §2.3).
    CredentialsInHeaderAndBody,
    /// The body's `client_id` differs from the one in the `Authorization` header.
    ClientIdMismatch,
    /// The `Authorization` header is Basic, but not base64 of `id:secret`.
    MalformedBasicCredentials,
    /// The `Authorization` header uses a scheme other than Basic.
    UnsupportedAuthScheme,
    /// The request carries no client secret (a public client, or none at all).
    NoClientAuthentication,
    /// The client used a method the endpoint does not accept.
    AuthMethodNotAccepted(ClientAuthMethod),
    /// No client has this id.
    UnknownClient,
    /// The client secret does not match.
    WrongSecret,
    /// The client sent only its id, so a TLS client certificate must prove it (RFC 8705),
    /// and the connection presented none.
    NoClientCertificate,
    /// The presented TLS client certificate is not the client's: for `tls_client_auth`, its
    /// chain is not trusted or its subject is not the registered one; for
    /// `self_signed_tls_client_auth`, its thumbprint is not the registered one; or the client
    /// registered neither.
    CertificateMismatch,
    /// The client assertion was refused (`private_key_jwt`, `client_secret_jwt`): why.
    InvalidAssertion(AssertionRejection),
    /// The client may not use the method it used.
    AuthMethodNotAllowedForClient(ClientAuthMethod),
    /// The client may not use the client credentials grant.
    GrantNotAllowedForClient,
    /// `grant_type` is not `client_credentials`.
    UnsupportedGrantType,
    /// A scope is not a valid scope token (RFC 6749 §3.3).
    MalformedScope,
    /// A scope is not registered at the endpoint.
    UnknownScope(String),
    /// A scope is registered but not allowed for this client.
    ScopeNotAllowed(String),
    /// The request named no scope and the endpoint requires one.
    ScopeRequired,
    /// A resource indicator is not an absolute URI without a fragment (RFC 8707 §2).
    InvalidResource,
    /// The DPoP proof was refused (RFC 9449 §5): `invalid_dpop_proof`, or
    /// `use_dpop_nonce` when it lacks the server's nonce.
    Dpop(crate::server::DpopError),
    /// The client requires DPoP-bound tokens and sent no DPoP proof: `invalid_grant`.
    DpopRequired,
    /// The caller built this error itself (see [`EndpointError::new`]).
    Custom,
}

/// A refused token request, ready to render as an RFC 6749 §5.2 error response.
///
/// Its `Display` and `Debug` show the code, the reason and the description, which never hold
/// a secret.
///
/// ```
/// use client_credentials::ErrorCode;
/// use client_credentials::server::EndpointError;
///
/// let error = EndpointError::new(ErrorCode::TemporarilyUnavailable)
///     .with_description("maintenance")
///     .with_retry_after(std::time::Duration::from_secs(30));
/// let response = error.to_response();
/// assert_eq!(response.status(), 503);
/// assert_eq!(response.headers()["retry-after"], "30");
/// assert_eq!(response.body(), br#"{"error":"temporarily_unavailable","error_description":"maintenance"}"#);
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct EndpointError(Box<Inner>);

#[derive(Clone, PartialEq, Eq)]
struct Inner {
    code: ErrorCode,
    reason: Rejection,
    status: StatusCode,
    description: Option<Cow<'static, str>>,
    uri: Option<String>,
    challenge: Option<String>,
    retry_after: Option<Duration>,
    dpop_nonce: Option<String>,
}

impl EndpointError {
    /// An error with this code, the status RFC 6749 §5.2 gives it (400; 401 for
    /// `invalid_client`, which should then carry a challenge, see
    /// [`EndpointError::with_basic_challenge`]; 500 for `server_error`; 503 for
    /// `temporarily_unavailable`), and no description.
    #[must_use]
    pub fn new(code: ErrorCode) -> Self {
        let status = match code {
            ErrorCode::InvalidClient => StatusCode::UNAUTHORIZED,
            ErrorCode::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::BAD_REQUEST,
        };
        Self(Box::new(Inner {
            code,
            reason: Rejection::Custom,
            status,
            description: None,
            uri: None,
            challenge: None,
            retry_after: None,
            dpop_nonce: None,
        }))
    }

    /// `server_error` (500): the caller's client store or token generator failed.
    #[must_use]
    pub fn server_error() -> Self {
        Self::new(ErrorCode::ServerError)
    }

    pub(crate) fn rejected(code: ErrorCode, reason: Rejection, description: &'static str) -> Self {
        let mut e = Self::new(code);
        e.0.reason = reason;
        e.0.description = Some(Cow::Borrowed(description));
        e
    }

    pub(crate) fn invalid_request(reason: Rejection, description: &'static str) -> Self {
        Self::rejected(ErrorCode::InvalidRequest, reason, description)
    }

    /// `invalid_client`, with a Basic challenge when the endpoint accepts Basic (401), or
    /// 400 when it does not (a 401 must carry a challenge).
    pub(crate) fn invalid_client(reason: Rejection, basic_realm: Option<&str>) -> Self {
        let e = Self::rejected(
            ErrorCode::InvalidClient,
            reason,
            "client authentication failed",
        );
        match basic_realm {
            Some(realm) => e.with_basic_challenge(realm),
            None => e.with_status(StatusCode::BAD_REQUEST),
        }
    }

    /// Sets the `error_description`. Characters RFC 6749 §5.2 does not allow (`"`, `\`,
    /// controls, non-ASCII) are replaced with `?`. Never put a secret in it.
    #[must_use]
    pub fn with_description(mut self, description: impl Into<String>) -> Self {
        let cleaned: String = description
            .into()
            .chars()
            .take(512)
            .map(|c| if is_description_char(c) { c } else { '?' })
            .collect();
        self.0.description = Some(Cow::Owned(cleaned));
        self
    }

    /// Sets the `error_uri` (ignored unless it is visible ASCII without `"` or `\`).
    #[must_use]
    pub fn with_uri(mut self, uri: impl Into<String>) -> Self {
        let uri = uri.into();
        if !uri.is_empty() && uri.chars().all(|c| c != ' ' && is_description_char(c)) {
            self.0.uri = Some(uri);
        }
        self
    }

    /// Sets the HTTP status.
    #[must_use]
    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.0.status = status;
        self
    }

    /// Answers 401 with `WWW-Authenticate: Basic realm="…"` (RFC 6749 §5.2: required when the
    /// client authenticated with the `Authorization` header).
    #[must_use]
    pub fn with_basic_challenge(mut self, realm: &str) -> Self {
        self.0.status = StatusCode::UNAUTHORIZED;
        self.0.challenge = Some(format!("Basic realm={}", quoted(realm)));
        self
    }

    /// Adds `Retry-After` in seconds (for `temporarily_unavailable` or a 429).
    #[must_use]
    pub fn with_retry_after(mut self, after: Duration) -> Self {
        self.0.retry_after = Some(after);
        self
    }

    /// Adds `DPoP-Nonce` (RFC 9449 §8), for a `use_dpop_nonce` answer (ignored unless it
    /// is RFC 9449 `1*NQCHAR`).
    #[must_use]
    pub fn with_dpop_nonce(mut self, nonce: &str) -> Self {
        if crate::server::dpop::is_nonce(nonce) {
            self.0.dpop_nonce = Some(nonce.to_owned());
        }
        self
    }

    /// The `DPoP-Nonce` the response carries, if any.
    #[must_use]
    pub fn dpop_nonce(&self) -> Option<&str> {
        self.0.dpop_nonce.as_deref()
    }

    /// The OAuth error code.
    #[must_use]
    pub fn code(&self) -> &ErrorCode {
        &self.0.code
    }

    /// Why the request was refused.
    #[must_use]
    pub fn reason(&self) -> &Rejection {
        &self.0.reason
    }

    /// The HTTP status.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        self.0.status
    }

    /// The `error_description`.
    #[must_use]
    pub fn description(&self) -> Option<&str> {
        self.0.description.as_deref()
    }

    /// The `WWW-Authenticate` challenge, when the response carries one.
    #[must_use]
    pub fn challenge(&self) -> Option<&str> {
        self.0.challenge.as_deref()
    }

    /// The response body: `{"error":…,"error_description":…,"error_uri":…}`.
    #[must_use]
    pub fn body(&self) -> Vec<u8> {
        let mut out = String::from("{\"error\":");
        out.push_str(&json_string(self.0.code.as_str()));
        if let Some(d) = &self.0.description {
            out.push_str(",\"error_description\":");
            out.push_str(&json_string(d));
        }
        if let Some(u) = &self.0.uri {
            out.push_str(",\"error_uri\":");
            out.push_str(&json_string(u));
        }
        out.push('}');
        out.into_bytes()
    }

    /// The RFC 6749 §5.2 response: the status, a JSON body, `Cache-Control: no-store`,
    /// `Pragma: no-cache`, and `WWW-Authenticate`, `Allow`, `Retry-After` or `DPoP-Nonce`
    /// when they apply.
    #[must_use]
    pub fn to_response(&self) -> http::Response<Vec<u8>> {
        let mut response = json_response(self.0.status, self.body());
        let headers = response.headers_mut();
        if let Some(value) = self.challenge().and_then(|c| HeaderValue::from_str(c).ok()) {
            headers.insert(WWW_AUTHENTICATE, value);
        }
        if self.0.status == StatusCode::METHOD_NOT_ALLOWED {
            headers.insert(ALLOW, HeaderValue::from_static("POST"));
        }
        if let Some(after) = self.0.retry_after {
            headers.insert(RETRY_AFTER, HeaderValue::from(after.as_secs()));
        }
        if let Some(value) = self
            .0
            .dpop_nonce
            .as_deref()
            .and_then(|n| HeaderValue::from_str(n).ok())
        {
            headers.insert(crate::server::DPOP_NONCE, value);
        }
        response
    }

    /// [`EndpointError::to_response`], by value.
    #[must_use]
    pub fn into_response(self) -> http::Response<Vec<u8>> {
        self.to_response()
    }
}

impl fmt::Debug for EndpointError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EndpointError")
            .field("code", &self.0.code)
            .field("reason", &self.0.reason)
            .field("status", &self.0.status.as_u16())
            .field("description", &self.0.description)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for EndpointError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (HTTP {})", self.0.code, self.0.status.as_u16())?;
        if let Some(d) = &self.0.description {
            write!(f, ": {d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for EndpointError {}

/// RFC 6749 §5.2: `error_description` is `1*( %x20-21 / %x23-5B / %x5D-7E )`.
fn is_description_char(c: char) -> bool {
    matches!(c, '\x20'..='\x21' | '\x23'..='\x5B' | '\x5D'..='\x7E')
}

/// A JSON string literal.
pub(crate) fn json_string(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}

/// An RFC 9110 quoted-string: `"` and `\` escaped, controls dropped.
pub(crate) fn quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars().filter(|c| !c.is_control()) {
        if matches!(c, '"' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// A JSON response with the RFC 6749 §5.1 caching headers.
pub(crate) fn json_response(status: StatusCode, body: Vec<u8>) -> http::Response<Vec<u8>> {
    let mut response = http::Response::new(body);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(
        http::header::CACHE_CONTROL,
        HeaderValue::from_static("no-store"),
    );
    headers.insert(http::header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}
