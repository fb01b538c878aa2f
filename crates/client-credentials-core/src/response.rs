//! Parsing token responses (RFC 6749 §5.1, §5.2) into a [`Token`] or a [`TokenError`].
//!
//! Tolerant where real servers deviate, strict where safety needs it. Every tolerated
//! deviation is listed on the token ([`Token::deviations`]).

use std::borrow::Cow;
use std::cell::OnceCell;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::header::{CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{HeaderMap, StatusCode};
use serde_json::{Map, Value};

use crate::error::{
    DescriptionMember, ErrorCode, ErrorDialect, Excerpt, OAuthError, ResponseProblem, TokenError,
};
use crate::request::TokenRequest;
use crate::scrub::Scrubber;
use crate::secret::AccessToken;
use crate::token::{Deviation, ScopeSource, Token, access_token_syntax, is_header_safe};
use crate::{Config, MissingLifetime};

mod fast;

/// Lifetimes beyond ten years are capped: no real token lives that long, and the cap keeps
/// time arithmetic far from overflow.
pub const MAX_LIFETIME: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

const MAX_DESCRIPTION: usize = 512;
const MAX_HEADER_EXCERPT: usize = 256;

/// Accumulates a response body up to a cap, for transports that read in chunks.
///
/// ```
/// use client_credentials::BodyBuffer;
/// let mut body = BodyBuffer::new(8);
/// body.push(b"1234")?;
/// assert!(body.push(b"56789").is_err());
/// # Ok::<_, client_credentials_core::TokenError>(())
/// ```
#[derive(Debug)]
pub struct BodyBuffer {
    bytes: Vec<u8>,
    cap: usize,
}

impl BodyBuffer {
    /// An empty buffer that accepts at most `cap` bytes.
    #[must_use]
    pub fn new(cap: usize) -> Self {
        Self {
            bytes: Vec::new(),
            cap,
        }
    }

    /// Checks a declared `Content-Length` before reading: refuses a body announced larger
    /// than the cap, and reserves room for a smaller one.
    ///
    /// # Errors
    /// [`TokenError::TooLarge`] when `len` exceeds the cap.
    pub fn expect_len(&mut self, len: u64) -> Result<(), TokenError> {
        match usize::try_from(len) {
            Ok(len) if len <= self.cap => {
                self.bytes.reserve(len.saturating_sub(self.bytes.len()));
                Ok(())
            }
            _ => Err(self.too_large()),
        }
    }

    /// Appends a chunk.
    ///
    /// # Errors
    /// [`TokenError::TooLarge`] when the body would exceed the cap; the buffer is then
    /// unchanged.
    pub fn push(&mut self, chunk: &[u8]) -> Result<(), TokenError> {
        if self.bytes.len().saturating_add(chunk.len()) > self.cap {
            return Err(self.too_large());
        }
        self.bytes.extend_from_slice(chunk);
        Ok(())
    }

    /// Reads `reader` to its end straight into the buffer, for a blocking transport: at
    /// most one byte more than the room left is read, and nothing is zero-filled or copied
    /// on the way (the bytes land in the room [`BodyBuffer::expect_len`] reserved).
    ///
    /// ```
    /// use client_credentials_core::BodyBuffer;
    ///
    /// let mut body = BodyBuffer::new(8);
    /// assert!(body.read_to_end(&b"1234"[..])?.is_ok());
    /// assert!(body.read_to_end(&b"56789"[..])?.is_err(), "over the cap");
    /// # Ok::<_, std::io::Error>(())
    /// ```
    ///
    /// # Errors
    /// The reader's error; inside it, [`TokenError::TooLarge`] when the body goes over the
    /// cap (the buffer then holds what it held before).
    pub fn read_to_end(
        &mut self,
        reader: impl std::io::Read,
    ) -> std::io::Result<Result<(), TokenError>> {
        let held = self.bytes.len();
        let limit = u64::try_from(self.remaining())
            .unwrap_or(u64::MAX)
            .saturating_add(1);
        let read =
            std::io::Read::read_to_end(&mut std::io::Read::take(reader, limit), &mut self.bytes);
        if let Err(e) = read {
            self.bytes.truncate(held);
            return Err(e);
        }
        if self.bytes.len() > self.cap {
            self.bytes.truncate(held);
            return Ok(Err(self.too_large()));
        }
        Ok(Ok(()))
    }

    /// Room left before the cap, for sizing the next read.
    #[must_use]
    pub fn remaining(&self) -> usize {
        self.cap - self.bytes.len()
    }

    /// The body read so far.
    #[must_use]
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    fn too_large(&self) -> TokenError {
        TokenError::TooLarge {
            status: None,
            limit: self.cap,
        }
    }
}

impl TokenRequest {
    /// Parses the answer to this request. `now` is when the request was sent: the token's
    /// expiry counts from it, and an HTTP-date `Retry-After` is measured against it.
    ///
    /// ```
    /// use std::time::{Duration, SystemTime};
    /// use client_credentials::{Config, TokenError, ErrorCode};
    /// use http::{HeaderMap, StatusCode};
    ///
    /// let config = Config::builder()
    ///     .token_url("https://as.example.com/token")
    ///     .client_id("c")
    ///     .client_secret("s")
    ///     .build()?;
    /// let request = config.default_request();
    /// let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    ///
    /// let ok = br#"{"access_token":"2YotnFZFEjr1zCsicMWpAA","token_type":"example","expires_in":3600}"#;
    /// let err = request.parse_response(now, StatusCode::OK, &HeaderMap::new(), ok).unwrap_err();
    /// assert!(matches!(err, TokenError::InvalidResponse { .. }), "unknown token types are refused");
    ///
    /// let ok = br#"{"access_token":"2YotnFZFEjr1zCsicMWpAA","token_type":"bearer","expires_in":"3600"}"#;
    /// let token = request.parse_response(now, StatusCode::OK, &HeaderMap::new(), ok).unwrap();
    /// assert_eq!(token.expires_at(), Some(now + Duration::from_secs(3600)));
    ///
    /// let bad = br#"{"error":"invalid_client"}"#;
    /// let err = request.parse_response(now, StatusCode::UNAUTHORIZED, &HeaderMap::new(), bad).unwrap_err();
    /// assert_eq!(err.oauth_code(), Some(&ErrorCode::InvalidClient));
    /// assert!(!err.is_retryable());
    /// # Ok::<_, client_credentials_core::ConfigError>(())
    /// ```
    ///
    /// # Errors
    /// The [`TokenError`] that the response amounts to.
    pub fn parse_response(
        &self,
        now: SystemTime,
        status: StatusCode,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Token, TokenError> {
        let cap = self.config().max_body();
        if body.len() > cap {
            return Err(TokenError::TooLarge {
                status: Some(status),
                limit: cap,
            });
        }
        let (config, requested) = (self.config(), self.requested_scopes());
        if let Some(token) = fast::parse(config, requested, now, status, headers, body) {
            return Ok(token);
        }
        let ctx = Context::new(config, requested, now, status, headers, body);
        if status.is_success() {
            ctx.success()
        } else {
            Err(ctx.error())
        }
    }

    /// [`TokenRequest::parse_response`] on an `http::Response`.
    ///
    /// # Errors
    /// As [`TokenRequest::parse_response`].
    pub fn parse_http_response<B: AsRef<[u8]>>(
        &self,
        now: SystemTime,
        response: &http::Response<B>,
    ) -> Result<Token, TokenError> {
        self.parse_response(
            now,
            response.status(),
            response.headers(),
            response.body().as_ref(),
        )
    }

    /// Classifies a response that is known to be an error (any status), without looking for a
    /// token. Revocation and introspection use this for their error answers.
    #[must_use]
    pub fn parse_error_response(
        &self,
        now: SystemTime,
        status: StatusCode,
        headers: &HeaderMap,
        body: &[u8],
    ) -> TokenError {
        let cap = self.config().max_body();
        if body.len() > cap {
            return TokenError::TooLarge {
                status: Some(status),
                limit: cap,
            };
        }
        Context::new(self.config(), &[], now, status, headers, body).error()
    }
}

/// The `Content-Type` of a response as errors report it (bounded), `None` when absent.
pub(crate) fn content_type(headers: &HeaderMap) -> Option<String> {
    headers
        .get(CONTENT_TYPE)
        .map(|v| bounded(&String::from_utf8_lossy(v.as_bytes()), 100))
}

pub(crate) struct Context<'a> {
    config: &'a Config,
    requested: &'a [String],
    now: SystemTime,
    status: StatusCode,
    headers: &'a HeaderMap,
    body: &'a [u8],
    content_type: Option<String>,
    deviations: Vec<Deviation>,
    members: Option<Map<String, Value>>,
    /// A body that is a JSON array (some REST APIs answer errors so); never a token.
    array: Option<Vec<Value>>,
    secret: Option<&'a str>,
    /// Built on first use: only error paths scrub.
    scrubber: OnceCell<Scrubber>,
}

impl<'a> Context<'a> {
    pub(crate) fn new(
        config: &'a Config,
        requested: &'a [String],
        now: SystemTime,
        status: StatusCode,
        headers: &'a HeaderMap,
        body: &'a [u8],
    ) -> Self {
        let content_type = content_type(headers);
        let secret = config
            .client_secret()
            .map(|s| s.expose_secret())
            .filter(|s| !s.is_empty());
        let mut ctx = Self {
            config,
            requested,
            now,
            status,
            headers,
            body,
            content_type,
            deviations: Vec::new(),
            members: None,
            array: None,
            secret,
            scrubber: OnceCell::new(),
        };
        ctx.members = ctx.decode();
        ctx
    }

    /// Decodes the body into members with lower-case names, or `None` when it is neither a
    /// JSON object nor a form.
    fn decode(&mut self) -> Option<Map<String, Value>> {
        let mut body = self.body;
        if let Some(rest) = body.strip_prefix(b"\xEF\xBB\xBF") {
            body = rest;
            self.deviations.push(Deviation::ByteOrderMark);
        }
        let media = self.content_type.as_deref().map(|ct| {
            ct.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        });
        let json_type = media
            .as_deref()
            .is_some_and(|m| m == "application/json" || m.ends_with("+json") || m == "text/json");
        let form_type = media.as_deref() == Some("application/x-www-form-urlencoded");
        let trimmed = body.trim_ascii_start();
        let map = if json_type || (!form_type && trimmed.starts_with(b"{")) {
            let map = match serde_json::from_slice::<Value>(body) {
                Ok(Value::Object(map)) => map,
                Ok(Value::Array(items)) => {
                    self.array = Some(items);
                    return None;
                }
                _ => return None,
            };
            if !json_type {
                self.deviations
                    .push(Deviation::ContentType(media.clone().unwrap_or_default()));
            }
            map
        } else if looks_like_form(trimmed) {
            if !form_type {
                self.deviations
                    .push(Deviation::ContentType(media.clone().unwrap_or_default()));
            }
            self.deviations.push(Deviation::FormBody);
            let mut map = Map::new();
            for (k, v) in form_urlencoded::parse(trimmed.trim_ascii_end()) {
                map.entry(k.into_owned())
                    .or_insert_with(|| Value::String(v.into_owned()));
            }
            map
        } else {
            return None;
        };
        // Members are almost always lower case already: then the map is used as it is.
        if !map
            .keys()
            .any(|k| k.bytes().any(|b| b.is_ascii_uppercase()))
        {
            return Some(map);
        }
        let mut out = Map::new();
        let mut recased = false;
        for (k, v) in map {
            let lower = k.to_ascii_lowercase();
            if lower != k {
                recased = true;
            }
            out.entry(lower).or_insert(v);
        }
        if recased {
            self.deviations.push(Deviation::ParameterCase);
        }
        Some(out)
    }

    fn success(mut self) -> Result<Token, TokenError> {
        let Some(mut members) = self.members.take() else {
            return Err(self.invalid(ResponseProblem::Unparseable, false));
        };
        if members.get("error").is_some_and(|e| !e.is_null())
            || (!members.contains_key("access_token")
                && self
                    .vendor_error(&members)
                    .is_some_and(|e| e.dialect != Some(ErrorDialect::MessageOnly)))
        {
            self.members = Some(members);
            return Err(self.error());
        }
        if self.status != StatusCode::OK {
            self.deviations
                .push(Deviation::SuccessStatus(self.status.as_u16()));
        }
        // RFC 6749 Appendix A.12: `1*VSCHAR`; RFC 6750's `b64token` is narrower, and noted.
        let access_token = match members.remove("access_token") {
            Some(Value::String(t)) => match access_token_syntax(&t) {
                (true, b64) => {
                    if !b64 {
                        self.deviations.push(Deviation::AccessTokenSyntax);
                    }
                    AccessToken::new(t)
                }
                (false, _) => return Err(self.invalid(ResponseProblem::MissingAccessToken, false)),
            },
            _ => return Err(self.invalid(ResponseProblem::MissingAccessToken, false)),
        };
        let token_type = match members.remove("token_type") {
            None | Some(Value::Null) => {
                self.deviations.push(Deviation::TokenTypeMissing);
                Cow::Borrowed("Bearer")
            }
            Some(Value::String(t)) if is_header_safe(&t) => {
                if !self.config.accepts_token_type(&t) {
                    let shown = bounded(&t, 32);
                    return Err(self.invalid(ResponseProblem::UnsupportedTokenType(shown), false));
                }
                if t.eq_ignore_ascii_case("bearer") {
                    if t != "Bearer" {
                        self.deviations.push(Deviation::TokenTypeCase);
                    }
                    Cow::Borrowed("Bearer")
                } else {
                    Cow::Owned(t)
                }
            }
            Some(_) => {
                return Err(self.invalid(
                    ResponseProblem::UnsupportedTokenType("<not a token>".to_owned()),
                    false,
                ));
            }
        };
        let lifetime = self.lifetime(&mut members)?;
        let refresh_in = match members.remove("refresh_in") {
            Some(v) => seconds(&v).map(|(d, _)| d),
            None => None,
        };
        let requested = self.requested;
        let (scopes, scope_source) = match members.remove("scope") {
            Some(Value::String(s)) if !s.trim().is_empty() => (
                split_scopes(&s, self.config.scope_separator()).into(),
                ScopeSource::Granted,
            ),
            Some(Value::Array(items)) if items.iter().all(Value::is_string) => {
                self.deviations.push(Deviation::ScopeArray);
                let scopes = items
                    .into_iter()
                    .filter_map(|v| match v {
                        Value::String(s) => Some(s),
                        _ => None,
                    })
                    .collect::<Vec<_>>();
                (scopes.into(), ScopeSource::Granted)
            }
            // RFC 6749 §5.1: omitted when identical to the requested scope.
            None | Some(Value::Null) => (requested.into(), ScopeSource::Requested),
            Some(Value::String(_)) => (Arc::from([]), ScopeSource::Granted),
            Some(_) => {
                self.deviations.push(Deviation::ScopeUnreadable);
                (requested.into(), ScopeSource::Requested)
            }
        };
        Ok(Token {
            access_token,
            token_type,
            issued_at: self.now,
            lifetime,
            scopes,
            scope_source,
            refresh_in,
            // The known members were removed; an emptied map still holds its node (632
            // bytes for every cached token), a new one holds nothing.
            extra: if members.is_empty() {
                Map::new()
            } else {
                members
            },
            deviations: self.deviations,
            header: crate::token::HeaderCell::default(),
        })
    }

    fn lifetime(
        &mut self,
        members: &mut Map<String, Value>,
    ) -> Result<Option<Duration>, TokenError> {
        let form = self.deviations.contains(&Deviation::FormBody);
        let raw = members.remove("expires_in");
        let parsed = match &raw {
            None => None,
            Some(Value::Null) => None,
            Some(v) => match seconds(v) {
                Some((d, kind)) => {
                    match kind {
                        Seconds::Float => self.deviations.push(Deviation::ExpiresInFloat),
                        Seconds::String if !form => {
                            self.deviations.push(Deviation::ExpiresInString);
                        }
                        _ => {}
                    }
                    Some(d)
                }
                None => return Err(self.invalid(ResponseProblem::InvalidExpiresIn, false)),
            },
        };
        let parsed = match parsed {
            Some(d) => Some(d),
            None => {
                // Entra ID v1 and some gateways send an absolute `expires_on` / `expires_at`.
                let absolute = ["expires_on", "expires_at"]
                    .iter()
                    .find_map(|k| members.get(*k).and_then(seconds))
                    .map(|(d, _)| d);
                match absolute {
                    Some(at) => {
                        self.deviations.push(Deviation::ExpiresOn);
                        let at = UNIX_EPOCH.checked_add(at).unwrap_or(self.now);
                        Some(at.duration_since(self.now).unwrap_or_default())
                    }
                    None => {
                        self.deviations.push(if raw.is_some() {
                            Deviation::ExpiresInNull
                        } else {
                            Deviation::ExpiresInMissing
                        });
                        match self.config.missing_lifetime() {
                            MissingLifetime::Assume(d) => Some(d),
                            MissingLifetime::NeverExpires => return Ok(None),
                            MissingLifetime::Reject => {
                                return Err(self.invalid(ResponseProblem::MissingExpiresIn, false));
                            }
                        }
                    }
                }
            }
        };
        Ok(parsed.map(|d| {
            if d > MAX_LIFETIME {
                self.deviations.push(Deviation::ExpiresInCapped);
                MAX_LIFETIME
            } else {
                d
            }
        }))
    }

    /// The error that a non-success response (or a success body with `error`) amounts to.
    pub(crate) fn error(&self) -> TokenError {
        let status = self.status;
        // A wrong URL, whatever the body says (a framework's `{"error":"Not Found"}`, another
        // tenant's token endpoint): never an OAuth refusal.
        if status == StatusCode::NOT_FOUND {
            return self.invalid(ResponseProblem::EndpointNotFound, true);
        }
        let oauth = match (&self.members, &self.array) {
            (Some(m), _) => self.oauth_error(m).or_else(|| self.vendor_error(m)),
            (None, Some(items)) => self.vendor_array_error(items),
            (None, None) => None,
        };
        let retry_after = self.retry_after();
        if status == StatusCode::TOO_MANY_REQUESTS {
            return TokenError::RateLimited {
                status,
                retry_after,
                error: oauth,
            };
        }
        if status.is_server_error() {
            let excerpt = if oauth.is_none() {
                self.excerpt()
            } else {
                None
            };
            return TokenError::Server {
                status,
                retry_after,
                error: oauth,
                excerpt,
            };
        }
        if !status.is_success() && !status.is_client_error() {
            return self.invalid(ResponseProblem::UnexpectedStatus, true);
        }
        match oauth {
            Some(error) if error.code.is_retryable() => TokenError::Server {
                status,
                retry_after,
                error: Some(error),
                excerpt: None,
            },
            Some(error) => TokenError::Rejected {
                status,
                error,
                www_authenticate: self
                    .headers
                    .get(WWW_AUTHENTICATE)
                    .filter(|_| status == StatusCode::UNAUTHORIZED)
                    .map(|v| {
                        // Scrub the whole value first: a secret cut in two would escape.
                        bounded(
                            &self.scrub(&String::from_utf8_lossy(v.as_bytes())),
                            MAX_HEADER_EXCERPT,
                        )
                    }),
            },
            None => self.invalid(ResponseProblem::NotAnOAuthError, true),
        }
    }

    /// A text from the server, as errors show it: scrubbed and redacted whole, then shortened
    /// (a secret or a token cut in two at the limit would escape both).
    fn text(&self, v: Option<&Value>, max: usize) -> Option<String> {
        match v {
            Some(Value::String(s)) if !s.trim().is_empty() => {
                Some(bounded(&redact_token_runs(&self.scrub(s), true), max))
            }
            _ => None,
        }
    }

    /// The first member of `names` that holds a non-empty string.
    fn first_text<'m>(
        m: &'m Map<String, Value>,
        names: &[&'static str],
    ) -> Option<(&'static str, &'m Value)> {
        names.iter().find_map(|k| match m.get(*k) {
            Some(v @ Value::String(s)) if !s.trim().is_empty() => Some((*k, v)),
            _ => None,
        })
    }

    /// An RFC 6749 §5.2 error (a string `error`), with its description in `error_description`
    /// or, noted, in another member.
    fn oauth_error(&self, m: &Map<String, Value>) -> Option<OAuthError> {
        let Some(Value::String(code)) = m.get("error") else {
            return None;
        };
        // Apigee's {"ErrorCode": "invalid_client", "Error": "<message>"} is not an RFC body.
        if code.trim().is_empty()
            || (m.contains_key("errorcode") && !m.contains_key("error_description"))
        {
            return None;
        }
        let (description, dialect) = match Self::first_text(m, &["error_description"]) {
            Some((_, d)) => (Some(d), None),
            None => {
                use DescriptionMember::{Detail, ErrorMessage, Message, Reason};
                [Message, Reason, ErrorMessage, Detail]
                    .into_iter()
                    .find_map(|member| {
                        Self::first_text(m, &[member.as_str()])
                            .map(|(_, d)| (Some(d), Some(ErrorDialect::DescriptionIn(member))))
                    })
                    .unwrap_or((None, None))
            }
        };
        Some(OAuthError {
            code: self.code(code),
            description: self.text(description, MAX_DESCRIPTION),
            uri: self.text(m.get("error_uri"), MAX_HEADER_EXCERPT),
            dialect,
        })
    }

    /// A vendor's error body that is not RFC 6749 §5.2 ([`ErrorDialect`]), read as an OAuth
    /// error: the vendor's code (or, for shapes without one, nothing but the HTTP status) and
    /// message. Members are lower case here.
    pub(crate) fn vendor_error(&self, m: &Map<String, Value>) -> Option<OAuthError> {
        const CODES: &[&str] = &["code", "error", "status", "type", ".tag", "name"];
        const MESSAGES: &[&str] = &[
            "message",
            "error_description",
            "description",
            "detail",
            "title",
            "errorsummary",
            "error_summary",
        ];
        // {"error": {...}}
        if let Some(Value::Object(inner)) = m.get("error") {
            let description = Self::first_text(inner, MESSAGES)
                .map(|(_, v)| v)
                .or_else(|| {
                    Self::first_text(m, &["error_description", "error_summary"]).map(|(_, v)| v)
                });
            return self.vendor(
                ErrorDialect::NestedError,
                code_of(inner, CODES),
                description,
            );
        }
        // Okta {"errorCode","errorSummary"}; Apigee {"ErrorCode","Error"}.
        if let Some(code) = code_of(m, &["errorcode", "error_code"]) {
            let description = Self::first_text(
                m,
                &["errorsummary", "error", "message", "error_description"],
            )
            .map(|(_, v)| v);
            return self.vendor(ErrorDialect::ErrorCodeSummary, Some(code), description);
        }
        // {"errors": [{...}, ...]}
        if let Some(Value::Array(items)) = m.get("errors") {
            let first = items.iter().find_map(Value::as_object)?;
            let description = Self::first_text(first, MESSAGES).map(|(_, v)| v);
            let code = first_code(
                first,
                &["code", "errorcode", "error", "status", "label", "type"],
            );
            return self.vendor(ErrorDialect::ErrorsArray, code, description);
        }
        let message =
            Self::first_text(m, &["message", "description", "error_message"]).map(|(_, v)| v);
        // {"name", "description" | "message"}
        if let (Some(_), Some(_)) = (code_of(m, &["name"]), message) {
            let code = code_of(m, &["code", "name"]);
            return self.vendor(ErrorDialect::NameDescription, code, message);
        }
        // {"status" | "code", "message"}
        if let (Some(code), Some(_)) = (code_of(m, &["code", "status"]), message) {
            return self.vendor(ErrorDialect::StatusMessage, Some(code), message);
        }
        // {"message"} alone (a gateway's answer); a token response with a message is not one.
        if message.is_some() && m.len() <= 3 && !m.contains_key("access_token") {
            return self.vendor(ErrorDialect::MessageOnly, None, message);
        }
        None
    }

    /// A top-level array of error objects ([`ErrorDialect::TopLevelArray`]).
    fn vendor_array_error(&self, items: &[Value]) -> Option<OAuthError> {
        let first = items.iter().find_map(Value::as_object)?;
        // Member names of array entries were not lower-cased by `decode`.
        let lower: Map<String, Value> = first
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
            .collect();
        let code = first_code(
            &lower,
            &["errorcode", "error_code", "code", "error", "status"],
        );
        let description = Self::first_text(
            &lower,
            &["message", "error_description", "description", "detail"],
        )
        .map(|(_, v)| v);
        if code.is_none() && description.is_none() {
            return None;
        }
        self.vendor(ErrorDialect::TopLevelArray, code, description)
    }

    fn vendor(
        &self,
        dialect: ErrorDialect,
        code: Option<String>,
        description: Option<&Value>,
    ) -> Option<OAuthError> {
        // Shapes without a code of their own are named by the status ("http_401").
        let code = match code {
            // A vendor's code may be anything: redacted like a description.
            Some(code) => match ErrorCode::parse(&code) {
                ErrorCode::Unknown(_) => {
                    ErrorCode::parse(&redact_token_runs(&self.scrub(&code), false))
                }
                known => known,
            },
            None if description.is_some() => {
                ErrorCode::Unknown(format!("http_{}", self.status.as_u16()))
            }
            None => return None,
        };
        Some(OAuthError {
            code,
            description: self.text(description, MAX_DESCRIPTION),
            uri: None,
            dialect: Some(dialect),
        })
    }

    /// The error code: a registered code as it is (scrubbing must not turn `invalid_request`
    /// into something else when the secret is a short string), an unknown one scrubbed.
    fn code(&self, raw: &str) -> ErrorCode {
        match ErrorCode::parse(raw) {
            ErrorCode::Unknown(_) => ErrorCode::parse(&self.scrub(raw)),
            known => known,
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        let raw = self.headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
        if let Ok(secs) = raw.parse::<u64>() {
            return Some(Duration::from_secs(secs));
        }
        let at = httpdate::parse_http_date(raw).ok()?;
        // Rounded up: a client that waits the whole seconds shown must not retry early.
        let wait = at.duration_since(self.now).unwrap_or_default();
        let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        Some(Duration::from_secs(secs))
    }

    /// The decoded members, taken out of the context.
    pub(crate) fn take_members(&mut self) -> Option<Map<String, Value>> {
        self.members.take()
    }

    /// Puts members back, so that [`Context::error`] can read them.
    pub(crate) fn put_members(&mut self, members: Map<String, Value>) {
        self.members = Some(members);
    }

    /// An invalid-response error for a success body (never excerpted).
    pub(crate) fn invalid_response(&self, problem: ResponseProblem) -> TokenError {
        self.invalid(problem, false)
    }

    fn invalid(&self, problem: ResponseProblem, with_excerpt: bool) -> TokenError {
        TokenError::InvalidResponse {
            status: self.status,
            content_type: self.content_type.clone(),
            problem,
            excerpt: if with_excerpt && !self.status.is_success() {
                self.excerpt()
            } else {
                None
            },
        }
    }

    /// An excerpt of a non-success body. Success bodies may hold a token: never excerpted.
    fn excerpt(&self) -> Option<Excerpt> {
        if self.status.is_success() || self.body.is_empty() {
            return None;
        }
        // The excerpt shows at most MAX_CHARS characters (4 bytes at most each); read on far
        // enough that a secret (3 bytes a byte when form-encoded) overlapping them is
        // scrubbed whole before anything is cut.
        // (A secret's character takes at most 12 bytes encoded: 4 UTF-8 bytes as %XX each.)
        let secret_len = self.secret.map_or(0, |s| s.chars().count());
        let head_len = 4 * Excerpt::MAX_CHARS + 12 * secret_len;
        let head = &self.body[..self.body.len().min(head_len)];
        let text = String::from_utf8_lossy(head);
        let text = self.scrub(&text);
        let mut cleaned = String::with_capacity(text.len());
        let mut last_space = false;
        for c in text.chars() {
            let c = if c.is_control() || c.is_whitespace() {
                ' '
            } else {
                c
            };
            if c == ' ' && last_space {
                continue;
            }
            last_space = c == ' ';
            cleaned.push(c);
        }
        let redacted = redact_token_runs(cleaned.trim(), false);
        Some(Excerpt::new(bounded(&redacted, Excerpt::MAX_CHARS)))
    }

    /// Replaces the client secret with `[redacted]`: in any letter case, percent-, form- or
    /// JSON-encoded, and as the Base64 of the Basic credentials ([`Scrubber`]).
    fn scrub(&self, s: &str) -> String {
        let Some(secret) = self.secret else {
            return s.to_owned();
        };
        self.scrubber
            .get_or_init(|| Scrubber::new(secret).with_client_id(self.config.client_id()))
            .scrub(s)
    }
}

/// The first of `names` that holds a non-empty string, else the first that holds a number
/// (Google's `{"code": 401, "status": "UNAUTHENTICATED"}` is named by its status).
fn code_of(m: &Map<String, Value>, names: &[&str]) -> Option<String> {
    names
        .iter()
        .find_map(|k| string_code(m.get(*k)))
        .or_else(|| {
            names.iter().find_map(|k| match m.get(*k) {
                Some(Value::Number(n)) => Some(n.to_string()),
                _ => None,
            })
        })
}

/// The first of `names` that holds a non-empty string or a number (X's `{"code": 99,
/// "label": "…"}` is named by its code).
fn first_code(m: &Map<String, Value>, names: &[&str]) -> Option<String> {
    names.iter().find_map(|k| match m.get(*k) {
        Some(Value::Number(n)) => Some(n.to_string()),
        other => string_code(other),
    })
}

fn string_code(v: Option<&Value>) -> Option<String> {
    match v {
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        _ => None,
    }
}

fn looks_like_form(body: &[u8]) -> bool {
    let body = body.trim_ascii_end();
    !body.is_empty()
        && body.contains(&b'=')
        && body
            .iter()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b'<' | b'>' | b'{' | b'"'))
}

enum Seconds {
    Integer,
    Float,
    String,
}

/// A non-negative number of seconds from a JSON number or a numeric string.
fn seconds(v: &Value) -> Option<(Duration, Seconds)> {
    let (n, kind) = match v {
        Value::Number(n) => match n.as_u64() {
            Some(i) => {
                return Some((
                    Duration::from_secs(i.min(MAX_LIFETIME.as_secs() + 1)),
                    Seconds::Integer,
                ));
            }
            None => (n.as_f64()?, Seconds::Float),
        },
        Value::String(s) => {
            let s = s.trim();
            if let Ok(i) = s.parse::<u64>() {
                return Some((
                    Duration::from_secs(i.min(MAX_LIFETIME.as_secs() + 1)),
                    Seconds::String,
                ));
            }
            (s.parse::<f64>().ok()?, Seconds::String)
        }
        _ => return None,
    };
    if !n.is_finite() || n < 0.0 {
        return None;
    }
    let kind = match kind {
        Seconds::String => Seconds::String,
        _ if n.fract() == 0.0 => Seconds::Integer,
        _ => Seconds::Float,
    };
    let capped = n.floor().min((MAX_LIFETIME.as_secs() + 1) as f64);
    Some((Duration::from_secs(capped as u64), kind))
}

fn split_scopes(s: &str, separator: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for_each_scope(s, separator, |p| {
        if !out.iter().any(|o| o == p) {
            out.push(p.to_owned());
        }
    });
    out
}

/// Calls `f` with each non-empty scope of `s`, duplicates included, in order.
fn for_each_scope(s: &str, separator: &str, mut f: impl FnMut(&str)) {
    let by_space = separator.trim().is_empty();
    for part in s.split(char::is_whitespace) {
        if by_space {
            if !part.is_empty() {
                f(part);
            }
        } else {
            part.split(separator)
                .filter(|p| !p.is_empty())
                .for_each(&mut f);
        }
    }
}

/// The granted scopes of `s`: the requested ones, shared, when they are the same list (the
/// usual answer), else a list of their own.
fn granted_scopes(s: &str, separator: &str, requested: &Arc<[String]>) -> Arc<[String]> {
    // `split_scopes(s) == requested`, without allocating: while they agree, the scopes
    // kept so far are `requested[..matched]`.
    let (mut matched, mut same) = (0, true);
    for_each_scope(s, separator, |p| {
        if !same || requested[..matched].iter().any(|r| r == p) {
            return;
        }
        if requested.get(matched).is_some_and(|r| r == p) {
            matched += 1;
        } else {
            same = false;
        }
    });
    if same && matched == requested.len() {
        Arc::clone(requested)
    } else {
        split_scopes(s, separator).into()
    }
}

/// At most `max` characters of `s`, with `…` when cut.
pub(crate) fn bounded(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        None => s.to_owned(),
        Some((i, _)) => format!("{}…", &s[..i]),
    }
}

/// Replaces runs of 24 or more token-like characters with `[redacted]`, except UUIDs (trace
/// ids are worth keeping) and, when `keep_urls`, runs that start with `//` (the rest of a URL)
/// whose segments are all shorter than a token.
fn redact_token_runs(s: &str, keep_urls: bool) -> String {
    const MIN_RUN: usize = 24;
    let is_tokenish = |c: char| c.is_ascii_alphanumeric() || "-._~+/=".contains(c);
    let mut out = String::with_capacity(s.len());
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        // The rest of a URL is kept (the host may be long), unless one of its path segments
        // is itself token-long (`https://as.example/tokens/<token>`).
        let url = keep_urls
            && run.starts_with("//")
            && run[2..]
                .split('/')
                .skip(1)
                .all(|segment| segment.len() < MIN_RUN);
        let keep = run.len() < MIN_RUN || is_uuid(run) || url || is_words(run);
        out.push_str(if keep { run } else { "[redacted]" });
        run.clear();
    };
    for c in s.chars() {
        if is_tokenish(c) {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            out.push(c);
        }
    }
    flush(&mut run, &mut out);
    out
}

/// Words joined by hyphens, slashes, dots or underscores, or in CamelCase
/// (`application/x-www-form-urlencoded`, `application/vnd.api+json`, `unsupported-grant-type`,
/// `InvalidAuthenticationToken`, `INSUFFICIENT_ACCESS_OR_READONLY`): two or more words, each
/// letters only, lower case after an optional capital (or all capitals), no longer than a long
/// English word, and a capitalised word of three letters or more. Random tokens mix digits
/// and cases within a word.
fn is_words(run: &str) -> bool {
    const MAX_WORD: usize = 20;
    let mut words = 0;
    for piece in run.split(['-', '/', '.', '+', '_']) {
        if piece.is_empty() || piece.len() > 4 * MAX_WORD {
            return false;
        }
        if piece.bytes().all(|b| b.is_ascii_uppercase()) {
            if piece.len() > MAX_WORD {
                return false;
            }
            words += 1;
            continue;
        }
        // CamelCase humps: an optional lower-case head, then capital + lower case letters.
        let bytes = piece.as_bytes();
        let mut start = 0;
        while start < bytes.len() {
            let end = (start + 1..bytes.len())
                .find(|&k| bytes[k].is_ascii_uppercase())
                .unwrap_or(bytes.len());
            let hump = &bytes[start..end];
            let head_ok = hump[0].is_ascii_lowercase() && start == 0;
            let capital_ok = hump[0].is_ascii_uppercase() && (start == 0 || hump.len() >= 3);
            if !(head_ok || capital_ok)
                || hump.len() > MAX_WORD
                || !hump[1..].iter().all(u8::is_ascii_lowercase)
            {
                return false;
            }
            words += 1;
            start = end;
        }
    }
    words >= 2
}

fn is_uuid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn granted_scopes_share_the_requested_list_only_when_they_are_that_list() {
        let requested: Arc<[String]> = Arc::from(["a".to_owned(), "b".to_owned()]);
        let shared =
            |s: &str, sep: &str| Arc::ptr_eq(&granted_scopes(s, sep, &requested), &requested);
        assert!(shared("a b", " "));
        assert!(
            shared("  a   a b b ", " "),
            "duplicates and blanks as split_scopes drops them"
        );
        assert!(shared("a,b", ","));
        for (s, sep) in [
            ("b a", " "),
            ("a", " "),
            ("a b c", " "),
            ("", " "),
            ("a,c", ","),
        ] {
            assert!(!shared(s, sep), "{s:?}");
            assert_eq!(
                &*granted_scopes(s, sep, &requested),
                split_scopes(s, sep),
                "{s:?}"
            );
        }
    }
}
