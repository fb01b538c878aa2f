//! The two client calls that operators need around tokens: revocation (RFC 7009) and
//! introspection (RFC 7662). Same client authentication as the token request; form bodies, as
//! both RFCs require.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{HeaderMap, StatusCode};
use serde_json::{Map, Value};

use crate::config::{BodyFormat, Config, ConfigError};
use crate::error::{ResponseProblem, TokenError};
use crate::request::{HttpRequest, build_post};
use crate::response::Context;
use crate::secret::AccessToken;

/// What an introspection endpoint says about a token (RFC 7662 §2.2).
///
/// Only `active` is required by the RFC; the other members are `None` or empty when absent.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Introspection {
    /// Whether the token is currently active.
    pub active: bool,
    /// `scope`, split on spaces.
    pub scopes: Vec<String>,
    /// `client_id`: the client the token was issued to.
    pub client_id: Option<String>,
    /// `username`.
    pub username: Option<String>,
    /// `token_type`.
    pub token_type: Option<String>,
    /// `exp`, as an absolute time.
    pub expires_at: Option<SystemTime>,
    /// `iat`, as an absolute time.
    pub issued_at: Option<SystemTime>,
    /// `nbf`, as an absolute time.
    pub not_before: Option<SystemTime>,
    /// `sub`.
    pub subject: Option<String>,
    /// `aud`: a string or an array of strings.
    pub audience: Vec<String>,
    /// `iss`.
    pub issuer: Option<String>,
    /// `jti`.
    pub jwt_id: Option<String>,
    /// Every other member.
    pub extra: Map<String, Value>,
}

/// A revocation request in flight (RFC 7009): it owns the token being revoked, so that
/// whatever the server says back (an error that quotes the token) reaches the caller, logs
/// and `Display` with the token redacted. Made by [`Config::revocation`].
pub struct PendingRevocation {
    config: Config,
    token: AccessToken,
}

/// An introspection request in flight (RFC 7662): it owns the token asked about and redacts
/// it from whatever the server says back. Made by [`Config::introspection`].
pub struct PendingIntrospection {
    config: Config,
    token: AccessToken,
}

impl fmt::Debug for PendingRevocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PendingRevocation")
            .field("token", &self.token)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for PendingIntrospection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PendingIntrospection")
            .field("token", &self.token)
            .finish_non_exhaustive()
    }
}

/// `error` with every trace of `token` redacted.
fn without_token(mut error: TokenError, token: &AccessToken) -> TokenError {
    error.redact(token.expose_secret());
    error
}

impl PendingRevocation {
    /// The token being revoked.
    #[must_use]
    pub fn token(&self) -> &AccessToken {
        &self.token
    }

    /// The server's answer: any 2xx is success, whatever the body (RFC 7009 §2.2: an unknown
    /// or already revoked token is answered 200 too).
    ///
    /// # Errors
    /// The [`TokenError`] that an error response amounts to (`unsupported_token_type` is kept
    /// as an unknown code; a 503 carries its `Retry-After`), with the token redacted.
    pub fn handle_response(
        self,
        now: SystemTime,
        status: StatusCode,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<(), TokenError> {
        self.config
            .parse_revocation_response(now, status, headers, body)
            .map_err(|e| without_token(e, &self.token))
    }

    /// The request ended without a response, or the transport refused the body: the error
    /// to hand the caller, with the token redacted.
    #[must_use]
    pub fn handle_failure(self, error: TokenError) -> TokenError {
        without_token(error, &self.token)
    }
}

impl PendingIntrospection {
    /// The token asked about.
    #[must_use]
    pub fn token(&self) -> &AccessToken {
        &self.token
    }

    /// The server's answer.
    ///
    /// # Errors
    /// The [`TokenError`] that an error response amounts to, or
    /// [`TokenError::InvalidResponse`] when a success body has no boolean `active`, with the
    /// token redacted.
    pub fn handle_response(
        self,
        now: SystemTime,
        status: StatusCode,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Introspection, TokenError> {
        self.config
            .parse_introspection_response(now, status, headers, body)
            .map_err(|e| without_token(e, &self.token))
    }

    /// The request ended without a response, or the transport refused the body: the error
    /// to hand the caller, with the token redacted.
    #[must_use]
    pub fn handle_failure(self, error: TokenError) -> TokenError {
        without_token(error, &self.token)
    }
}

impl Config {
    /// A revocation request for `token` (RFC 7009 §2.1), with `token_type_hint=access_token`,
    /// and the pending half that reads the answer.
    ///
    /// ```
    /// use std::time::SystemTime;
    /// use client_credentials::{AccessToken, Config};
    /// use client_credentials::http::{HeaderMap, StatusCode};
    ///
    /// let config = Config::builder()
    ///     .token_url("https://as.example.com/token")
    ///     .revocation_url("https://as.example.com/revoke")
    ///     .client_id("c")
    ///     .client_secret("s")
    ///     .build()?;
    /// let (request, pending) = config.revocation(&AccessToken::new("abc123xyz"))?;
    /// assert_eq!(request.body(), b"token=abc123xyz&token_type_hint=access_token");
    ///
    /// // A server that quotes the token in its error: the caller never sees it.
    /// let body = br#"{"error":"invalid_request","error_description":"bad token abc123xyz"}"#;
    /// let error = pending
    ///     .handle_response(SystemTime::now(), StatusCode::BAD_REQUEST, &HeaderMap::new(), body)
    ///     .unwrap_err();
    /// assert!(!error.to_string().contains("abc123xyz"));
    /// # Ok::<_, client_credentials_core::ConfigError>(())
    /// ```
    ///
    /// # Errors
    /// [`ConfigError::MissingEndpoint`] when no revocation endpoint is configured.
    pub fn revocation(
        &self,
        token: &AccessToken,
    ) -> Result<(HttpRequest, PendingRevocation), ConfigError> {
        self.revocation_at(token, None)
    }

    /// [`Config::revocation`] for a request sent now: a `private_key_jwt` or
    /// `client_secret_jwt` client authenticates with an assertion signed at `at` (wall-clock
    /// time), its `jti` made of `nonce` (128 bits that must not repeat), as for a token
    /// request ([`TokenRequest::to_http_at`](crate::TokenRequest::to_http_at); the
    /// audience is the same). `None`, or another method: as [`Config::revocation`]. An
    /// assertion read from an [`AssertionSource`](crate::AssertionSource) is added by the
    /// transport ([`crate::driver::attach_assertion`]), as for a fetch.
    ///
    /// # Errors
    /// [`ConfigError::MissingEndpoint`] when no revocation endpoint is configured.
    pub fn revocation_at(
        &self,
        token: &AccessToken,
        signed: Option<(SystemTime, u128)>,
    ) -> Result<(HttpRequest, PendingRevocation), ConfigError> {
        let request = self.revocation_request(token, signed)?;
        let pending = PendingRevocation {
            config: self.clone(),
            token: token.clone(),
        };
        Ok((request, pending))
    }

    /// An introspection request for `token` (RFC 7662 §2.1), with
    /// `token_type_hint=access_token`, and the pending half that reads the answer.
    ///
    /// # Errors
    /// [`ConfigError::MissingEndpoint`] when no introspection endpoint is configured.
    pub fn introspection(
        &self,
        token: &AccessToken,
    ) -> Result<(HttpRequest, PendingIntrospection), ConfigError> {
        self.introspection_at(token, None)
    }

    /// [`Config::introspection`] for a request sent now, with a signed assertion for
    /// `private_key_jwt` and `client_secret_jwt`, as [`Config::revocation_at`] describes.
    ///
    /// # Errors
    /// [`ConfigError::MissingEndpoint`] when no introspection endpoint is configured.
    pub fn introspection_at(
        &self,
        token: &AccessToken,
        signed: Option<(SystemTime, u128)>,
    ) -> Result<(HttpRequest, PendingIntrospection), ConfigError> {
        let request = self.introspection_request(token, signed)?;
        let pending = PendingIntrospection {
            config: self.clone(),
            token: token.clone(),
        };
        Ok((request, pending))
    }

    /// A revocation request for `token`, without the pending half.
    pub(crate) fn revocation_request(
        &self,
        token: &AccessToken,
        signed: Option<(SystemTime, u128)>,
    ) -> Result<HttpRequest, ConfigError> {
        let uri = self
            .revocation_url()
            .ok_or(ConfigError::MissingEndpoint("revocation"))?
            .clone();
        Ok(self.token_operation(uri, token, signed))
    }

    /// An introspection request for `token`, without the pending half.
    pub(crate) fn introspection_request(
        &self,
        token: &AccessToken,
        signed: Option<(SystemTime, u128)>,
    ) -> Result<HttpRequest, ConfigError> {
        let uri = self
            .introspection_url()
            .ok_or(ConfigError::MissingEndpoint("introspection"))?
            .clone();
        Ok(self.token_operation(uri, token, signed))
    }

    fn token_operation(
        &self,
        uri: http::Uri,
        token: &AccessToken,
        signed: Option<(SystemTime, u128)>,
    ) -> HttpRequest {
        let fields = vec![
            ("token", token.expose_secret()),
            ("token_type_hint", "access_token"),
        ];
        build_post(self, uri, fields, BodyFormat::Form, signed)
    }

    /// Parses the answer to a revocation request (without redacting the token).
    pub(crate) fn parse_revocation_response(
        &self,
        now: SystemTime,
        status: StatusCode,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<(), TokenError> {
        if body.len() > self.max_body() {
            return Err(TokenError::TooLarge {
                status: Some(status),
                limit: self.max_body(),
            });
        }
        if status.is_success() {
            return Ok(());
        }
        Err(Context::new(self, &[], now, status, headers, body).error())
    }

    /// Parses the answer to an introspection request (without redacting the token).
    pub(crate) fn parse_introspection_response(
        &self,
        now: SystemTime,
        status: StatusCode,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Introspection, TokenError> {
        if body.len() > self.max_body() {
            return Err(TokenError::TooLarge {
                status: Some(status),
                limit: self.max_body(),
            });
        }
        let mut ctx = Context::new(self, &[], now, status, headers, body);
        if !status.is_success() {
            return Err(ctx.error());
        }
        let Some(mut m) = ctx.take_members() else {
            return Err(ctx.invalid_response(ResponseProblem::Unparseable));
        };
        if m.get("error").is_some_and(|e| !e.is_null()) {
            ctx.put_members(m);
            return Err(ctx.error());
        }
        let active = match m.remove("active") {
            Some(Value::Bool(b)) => b,
            Some(Value::String(s)) if s == "true" || s == "false" => s == "true",
            _ => return Err(ctx.invalid_response(ResponseProblem::InvalidIntrospection)),
        };
        let mut string = |k: &str| match m.remove(k) {
            Some(Value::String(s)) => Some(s),
            _ => None,
        };
        let scopes = string("scope")
            .map(|s| s.split_whitespace().map(str::to_owned).collect())
            .unwrap_or_default();
        let client_id = string("client_id");
        let username = string("username");
        let token_type = string("token_type");
        let subject = string("sub");
        let issuer = string("iss");
        let jwt_id = string("jti");
        let mut time = |k: &str| {
            m.remove(k)
                .and_then(|v| v.as_u64())
                .and_then(|secs| UNIX_EPOCH.checked_add(Duration::from_secs(secs)))
        };
        let expires_at = time("exp");
        let issued_at = time("iat");
        let not_before = time("nbf");
        let audience = match m.remove("aud") {
            Some(Value::String(s)) => vec![s],
            Some(Value::Array(items)) => items
                .into_iter()
                .filter_map(|v| match v {
                    Value::String(s) => Some(s),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        };
        Ok(Introspection {
            active,
            scopes,
            client_id,
            username,
            token_type,
            expires_at,
            issued_at,
            not_before,
            subject,
            audience,
            issuer,
            jwt_id,
            extra: m,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::header::AUTHORIZATION;

    fn config(method: crate::AuthMethod) -> Config {
        Config::builder()
            .token_url("https://as.example.com/token")
            .revocation_url("https://as.example.com/revoke")
            .introspection_url("https://as.example.com/introspect")
            .client_id("s6BhdRkqt3")
            .client_secret("gX1fBat3bV")
            .auth_method(method)
            .body_format(BodyFormat::Json)
            .build()
            .unwrap()
    }

    fn now() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_700_000_000)
    }

    #[test]
    fn requests_use_the_client_authentication_and_form_bodies() {
        let basic = config(crate::AuthMethod::ClientSecretBasic);
        let r = basic
            .revocation_request(&AccessToken::new("45ghiukldjahdnhzdauz"), None)
            .unwrap();
        // RFC 7009 §2.1 example.
        assert_eq!(r.uri(), "https://as.example.com/revoke");
        assert_eq!(
            r.body(),
            b"token=45ghiukldjahdnhzdauz&token_type_hint=access_token"
        );
        assert_eq!(
            r.headers()[AUTHORIZATION],
            "Basic czZCaGRSa3F0MzpnWDFmQmF0M2JW"
        );
        assert_eq!(
            r.headers()[http::header::CONTENT_TYPE],
            "application/x-www-form-urlencoded"
        );
        let post = config(crate::AuthMethod::client_secret_post());
        let r = post
            .introspection_request(&AccessToken::new("mF_9.B5f-4.1JqM"), None)
            .unwrap();
        assert_eq!(r.uri(), "https://as.example.com/introspect");
        assert_eq!(
            r.body(),
            b"token=mF_9.B5f-4.1JqM&token_type_hint=access_token&client_id=s6BhdRkqt3&client_secret=gX1fBat3bV"
        );
        assert!(!r.headers().contains_key(AUTHORIZATION));
        let none = Config::builder()
            .token_url("https://as.example.com/token")
            .client_id("c")
            .client_secret("s")
            .build()
            .unwrap();
        assert_eq!(
            none.revocation_request(&AccessToken::new("x"), None).err(),
            Some(ConfigError::MissingEndpoint("revocation"))
        );
        assert_eq!(
            none.introspection_request(&AccessToken::new("x"), None)
                .err(),
            Some(ConfigError::MissingEndpoint("introspection"))
        );
        assert!(
            Config::builder()
                .token_url("https://as.example.com/token")
                .revocation_url("http://as.example.com/revoke")
                .client_id("c")
                .build()
                .is_err()
        );
    }

    #[test]
    fn revocation_outcomes() {
        let c = config(crate::AuthMethod::ClientSecretBasic);
        let h = HeaderMap::new();
        assert!(
            c.parse_revocation_response(now(), StatusCode::OK, &h, b"")
                .is_ok()
        );
        assert!(
            c.parse_revocation_response(now(), StatusCode::OK, &h, b"<html>")
                .is_ok()
        );
        let e = c
            .parse_revocation_response(
                now(),
                StatusCode::BAD_REQUEST,
                &h,
                br#"{"error":"unsupported_token_type"}"#,
            )
            .unwrap_err();
        assert_eq!(
            e.oauth_code().map(|c| c.as_str()),
            Some("unsupported_token_type")
        );
        let mut retry = HeaderMap::new();
        retry.insert("retry-after", "30".parse().unwrap());
        let e = c
            .parse_revocation_response(now(), StatusCode::SERVICE_UNAVAILABLE, &retry, b"")
            .unwrap_err();
        assert!(e.is_retryable());
        assert_eq!(e.retry_after(), Some(Duration::from_secs(30)));
    }

    #[test]
    fn introspection_outcomes() {
        let c = config(crate::AuthMethod::ClientSecretBasic);
        let h = HeaderMap::new();
        // RFC 7662 §2.2 example.
        let body = br#"{"active":true,"client_id":"l238j323ds-23ij4","username":"jdoe","scope":"read write dolphin","sub":"Z5O3upPC88QrAjx00dis","aud":"https://protected.example.net/resource","iss":"https://server.example.com/","exp":1419356238,"iat":1419350238,"extension_field":"twenty-seven"}"#;
        let i = c
            .parse_introspection_response(now(), StatusCode::OK, &h, body)
            .unwrap();
        assert!(i.active);
        assert_eq!(i.client_id.as_deref(), Some("l238j323ds-23ij4"));
        assert_eq!(i.username.as_deref(), Some("jdoe"));
        assert_eq!(i.scopes, ["read", "write", "dolphin"]);
        assert_eq!(i.audience, ["https://protected.example.net/resource"]);
        assert_eq!(
            i.expires_at,
            Some(UNIX_EPOCH + Duration::from_secs(1_419_356_238))
        );
        assert_eq!(i.extra["extension_field"], "twenty-seven");
        let inactive = c
            .parse_introspection_response(now(), StatusCode::OK, &h, br#"{"active":false}"#)
            .unwrap();
        assert!(!inactive.active);
        let bad = c
            .parse_introspection_response(now(), StatusCode::OK, &h, br#"{"client_id":"x"}"#)
            .unwrap_err();
        assert!(matches!(
            bad,
            TokenError::InvalidResponse {
                problem: ResponseProblem::InvalidIntrospection,
                ..
            }
        ));
        let unauthorized = c
            .parse_introspection_response(
                now(),
                StatusCode::UNAUTHORIZED,
                &h,
                br#"{"error":"invalid_client"}"#,
            )
            .unwrap_err();
        assert_eq!(
            unauthorized.oauth_code(),
            Some(&crate::ErrorCode::InvalidClient)
        );
    }
}
