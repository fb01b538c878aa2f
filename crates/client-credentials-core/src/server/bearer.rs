//! The resource server's side: bearer token extraction (RFC 6750 §2.1) and
//! `WWW-Authenticate: Bearer` challenges (RFC 6750 §3).

use std::fmt;

use http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use http::{HeaderMap, HeaderValue, StatusCode};

use crate::secret::AccessToken;
use crate::server::error::{json_response, json_string, quoted};

/// Why no bearer token could be taken from a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BearerError {
    /// No `Authorization` header. Answer with a challenge that has no error code (RFC 6750
    /// §3.1).
    Missing,
    /// The `Authorization` header uses another scheme (Basic, DPoP…).
    OtherScheme,
    /// The header says Bearer but the credential is not one `b64token`.
    Malformed,
    /// More than one `Authorization` header.
    Multiple,
}

impl BearerError {
    /// The challenge to answer with: no error code when no bearer token was offered,
    /// `invalid_request` (400) when it was malformed or repeated.
    #[must_use]
    pub fn challenge(&self) -> BearerChallenge {
        match self {
            Self::Missing | Self::OtherScheme => BearerChallenge::new(),
            Self::Malformed | Self::Multiple => BearerChallenge::invalid_request(),
        }
    }
}

impl fmt::Display for BearerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Missing => "no Authorization header",
            Self::OtherScheme => "the Authorization header is not Bearer",
            Self::Malformed => "the bearer token is malformed",
            Self::Multiple => "more than one Authorization header",
        })
    }
}

impl std::error::Error for BearerError {}

/// Takes the bearer token from the `Authorization` header (RFC 6750 §2.1): exactly one
/// header, the scheme `Bearer` in any letter case, one or more spaces, then one `b64token`
/// (`1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`). Trailing spaces and tabs
/// are ignored.
///
/// ```
/// use client_credentials::server::{bearer_token, BearerError};
/// use http::{HeaderMap, HeaderValue};
///
/// let mut headers = HeaderMap::new();
/// headers.insert("authorization", HeaderValue::from_static("bearer mF_9.B5f-4.1JqM"));
/// assert_eq!(bearer_token(&headers)?.expose_secret(), "mF_9.B5f-4.1JqM");
///
/// headers.insert("authorization", HeaderValue::from_static("Bearer two words"));
/// assert_eq!(bearer_token(&headers).unwrap_err(), BearerError::Malformed);
/// # Ok::<_, BearerError>(())
/// ```
///
/// # Errors
/// A [`BearerError`]; [`BearerError::challenge`] says how to answer.
pub fn bearer_token(headers: &HeaderMap) -> Result<AccessToken, BearerError> {
    scheme_token(headers, b"bearer").map_err(|e| match e {
        SchemeTokenError::Missing => BearerError::Missing,
        SchemeTokenError::Multiple => BearerError::Multiple,
        SchemeTokenError::OtherScheme => BearerError::OtherScheme,
        SchemeTokenError::Malformed => BearerError::Malformed,
    })
}

/// Why [`scheme_token`] found no token.
pub(crate) enum SchemeTokenError {
    Missing,
    Multiple,
    OtherScheme,
    Malformed,
}

/// The token of the one `Authorization: <scheme> <token>` header (`scheme` in lower case,
/// compared in any case): one or more spaces, one `b64token` (RFC 6750 §2.1, RFC 9449
/// §7.1), trailing spaces and tabs ignored.
pub(crate) fn scheme_token(
    headers: &HeaderMap,
    scheme_name: &[u8],
) -> Result<AccessToken, SchemeTokenError> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let value = values.next().ok_or(SchemeTokenError::Missing)?;
    if values.next().is_some() {
        return Err(SchemeTokenError::Multiple);
    }
    let bytes = value.as_bytes();
    let (scheme, rest) = match bytes.iter().position(|b| *b == b' ') {
        Some(i) => (&bytes[..i], &bytes[i..]),
        None => (bytes, &b""[..]),
    };
    if !scheme.eq_ignore_ascii_case(scheme_name) {
        return Err(SchemeTokenError::OtherScheme);
    }
    let token = rest.trim_ascii_start();
    let token = token
        .iter()
        .rposition(|b| !matches!(b, b' ' | b'\t'))
        .map_or(&b""[..], |end| &token[..=end]);
    if !is_b64token(token) {
        return Err(SchemeTokenError::Malformed);
    }
    // `is_b64token` admits ASCII only.
    let token = std::str::from_utf8(token).map_err(|_| SchemeTokenError::Malformed)?;
    Ok(AccessToken::new(token))
}

/// RFC 6750 §2.1 `b64token`.
fn is_b64token(token: &[u8]) -> bool {
    let body_len = token.iter().position(|b| *b == b'=').unwrap_or(token.len());
    let (body, padding) = token.split_at(body_len);
    !body.is_empty()
        && body.iter().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/')
        })
        && padding.iter().all(|b| *b == b'=')
}

/// An RFC 6750 §3 error code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BearerErrorCode {
    /// `invalid_request` (400): the request is malformed.
    InvalidRequest,
    /// `invalid_token` (401): the token is expired, revoked, malformed or unknown.
    InvalidToken,
    /// `insufficient_scope` (403): the token lacks a needed scope.
    InsufficientScope,
}

impl BearerErrorCode {
    /// The code as sent.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidToken => "invalid_token",
            Self::InsufficientScope => "insufficient_scope",
        }
    }

    /// The status RFC 6750 §3.1 gives the code.
    #[must_use]
    pub fn status(self) -> StatusCode {
        match self {
            Self::InvalidRequest => StatusCode::BAD_REQUEST,
            Self::InvalidToken => StatusCode::UNAUTHORIZED,
            Self::InsufficientScope => StatusCode::FORBIDDEN,
        }
    }
}

/// A `WWW-Authenticate: Bearer …` challenge (RFC 6750 §3) and the response that carries it.
///
/// ```
/// use client_credentials::server::BearerChallenge;
///
/// let challenge = BearerChallenge::invalid_token()
///     .realm("example")
///     .description("The access token expired");
/// assert_eq!(
///     challenge.header_value(),
///     r#"Bearer realm="example", error="invalid_token", error_description="The access token expired""#
/// );
/// let response = challenge.to_response();
/// assert_eq!(response.status(), 401);
/// assert_eq!(response.headers()["www-authenticate"], challenge.header_value().as_str());
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BearerChallenge {
    realm: Option<String>,
    error: Option<BearerErrorCode>,
    description: Option<String>,
    scope: Vec<String>,
}

impl BearerChallenge {
    /// A challenge without an error code, for requests that offered no token (401).
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// `error="invalid_token"` (401).
    #[must_use]
    pub fn invalid_token() -> Self {
        Self::with_error(BearerErrorCode::InvalidToken)
    }

    /// `error="invalid_request"` (400).
    #[must_use]
    pub fn invalid_request() -> Self {
        Self::with_error(BearerErrorCode::InvalidRequest)
    }

    /// `error="insufficient_scope"` (403) with the scopes the resource needs.
    #[must_use]
    pub fn insufficient_scope<I, S>(needed: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut c = Self::with_error(BearerErrorCode::InsufficientScope);
        c.scope = needed.into_iter().map(Into::into).collect();
        c
    }

    /// A challenge with this error code.
    #[must_use]
    pub fn with_error(code: BearerErrorCode) -> Self {
        Self {
            error: Some(code),
            ..Self::default()
        }
    }

    /// Sets the `realm`.
    #[must_use]
    pub fn realm(mut self, realm: impl Into<String>) -> Self {
        self.realm = Some(realm.into());
        self
    }

    /// Sets the `error_description` (characters RFC 6750 §3 does not allow become `?`).
    #[must_use]
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = Some(
            description
                .into()
                .chars()
                .take(512)
                .map(|c| {
                    if matches!(c, '\x20'..='\x21' | '\x23'..='\x5B' | '\x5D'..='\x7E') {
                        c
                    } else {
                        '?'
                    }
                })
                .collect(),
        );
        self
    }

    /// The error code, if any.
    #[must_use]
    pub fn error(&self) -> Option<BearerErrorCode> {
        self.error
    }

    /// The status to answer with: the code's, or 401 without a code.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        self.error
            .map_or(StatusCode::UNAUTHORIZED, BearerErrorCode::status)
    }

    /// The header value, attributes in the order `realm`, `error`, `error_description`,
    /// `scope`.
    #[must_use]
    pub fn header_value(&self) -> String {
        challenge_header(
            "Bearer",
            self.realm.as_deref(),
            self.error.map(BearerErrorCode::as_str),
            self.description.as_deref(),
            ("scope", &self.scope),
        )
    }

    /// The response: the status, the `WWW-Authenticate` header, and for a challenge with an
    /// error code a JSON body `{"error":…,"error_description":…}` (no body otherwise).
    #[must_use]
    pub fn to_response(&self) -> http::Response<Vec<u8>> {
        challenge_response(
            self.status(),
            self.error.map(BearerErrorCode::as_str),
            self.description.as_deref(),
            &self.header_value(),
        )
    }
}

/// A `WWW-Authenticate` challenge of `scheme` (RFC 9110 §11.6.1): attributes in the order
/// `realm`, `error`, `error_description`, then the scheme's own list (`scope` for Bearer,
/// `algs` for DPoP), space-joined; the scheme alone without any.
pub(crate) fn challenge_header(
    scheme: &str,
    realm: Option<&str>,
    error: Option<&str>,
    description: Option<&str>,
    (list_name, list): (&str, &[String]),
) -> String {
    let mut parts: Vec<String> = Vec::new();
    if let Some(realm) = realm {
        parts.push(format!("realm={}", quoted(realm)));
    }
    if let Some(code) = error {
        parts.push(format!("error=\"{code}\""));
    }
    if let Some(d) = description {
        parts.push(format!("error_description={}", quoted(d)));
    }
    if !list.is_empty() {
        parts.push(format!("{list_name}={}", quoted(&list.join(" "))));
    }
    if parts.is_empty() {
        scheme.to_owned()
    } else {
        format!("{scheme} {}", parts.join(", "))
    }
}

/// The answer that carries a challenge: `status`, `WWW-Authenticate: header`, and with an
/// error code a JSON body `{"error":…,"error_description":…}` (no body otherwise).
pub(crate) fn challenge_response(
    status: StatusCode,
    error: Option<&str>,
    description: Option<&str>,
    header: &str,
) -> http::Response<Vec<u8>> {
    let body = match error {
        Some(code) => {
            let mut body = format!("{{\"error\":{}", json_string(code));
            if let Some(d) = description {
                body.push_str(",\"error_description\":");
                body.push_str(&json_string(d));
            }
            body.push('}');
            body.into_bytes()
        }
        None => Vec::new(),
    };
    let mut response = json_response(status, body);
    if error.is_none() {
        response.headers_mut().remove(http::header::CONTENT_TYPE);
    }
    // Realm and description were cleaned to visible ASCII or quoted; a realm with
    // non-ASCII text is still a valid (opaque) header value.
    if let Ok(value) = HeaderValue::from_str(header) {
        response.headers_mut().insert(WWW_AUTHENTICATE, value);
    }
    response
}
