//! A credential that needs no token endpoint: a fixed bearer token, or an API key in a
//! header of the caller's choice.

use std::fmt;

use http::header::AUTHORIZATION;
use http::{HeaderName, HeaderValue};

use crate::config::ConfigError;
use crate::request::check_header;

/// Headers an API key may not be sent in: those that frame the message or that the HTTP
/// client sets. `Authorization` is allowed (`Authorization: ApiKey …`).
const RESERVED_FOR_KEYS: &[&str] = &[
    "connection",
    "content-encoding",
    "content-length",
    "content-type",
    "expect",
    "host",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// A fixed credential for requests to resource servers, for the services that hand out
/// API keys or long-lived tokens instead of (or before) the client credentials grant
/// (Avnology's `apiKey` mode): `Authorization: Bearer <token>`, or an API key in a header
/// of your choice. There is no token endpoint, no cache and no refresh; a resource
/// server's 401 is the caller's answer, never a retry.
///
/// The adapters take it wherever they take a client (their `Credentials`, the reqwest
/// middleware). Its `Debug` names the header and the kind, never the value, which is
/// marked sensitive so that HTTP libraries leave it out of their logs.
///
/// ```
/// use client_credentials::StaticCredential;
///
/// let key = StaticCredential::api_key("x-api-key", "k-93f1c2")?;
/// let mut request = http::Request::get("https://api.example.com/orders").body(())?;
/// key.authorize(&mut request);
/// assert_eq!(request.headers()["x-api-key"], "k-93f1c2");
/// assert_eq!(format!("{key:?}"), r#"StaticCredential { kind: "api key", header: "x-api-key", value: "[redacted]" }"#);
///
/// let bearer = StaticCredential::bearer("eyJhbGciOi.long-lived")?;
/// assert_eq!(bearer.header_name(), "authorization");
/// assert!(bearer.header_value().is_sensitive());
/// # Ok::<_, Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct StaticCredential {
    bearer: bool,
    name: HeaderName,
    value: HeaderValue,
}

impl fmt::Debug for StaticCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StaticCredential")
            .field("kind", &if self.bearer { "bearer" } else { "api key" })
            .field("header", &self.name.as_str())
            .field("value", &"[redacted]")
            .finish()
    }
}

impl StaticCredential {
    /// A bearer token sent as `Authorization: Bearer <token>` (RFC 6750 §2.1). Whitespace
    /// around it (the newline at the end of a file) is trimmed.
    ///
    /// # Errors
    /// [`ConfigError::InvalidHeaderValue`] when the token is empty or holds characters
    /// other than visible ASCII (RFC 6750's `b64token` is narrower still).
    pub fn bearer(token: impl Into<String>) -> Result<Self, ConfigError> {
        let raw = zeroize::Zeroizing::new(token.into());
        let token = raw.trim();
        if token.is_empty() || !token.bytes().all(|b| (0x21..=0x7E).contains(&b)) {
            return Err(ConfigError::InvalidHeaderValue(AUTHORIZATION.to_string()));
        }
        let value = zeroize::Zeroizing::new(format!("Bearer {token}"));
        let (name, value) = check_header(AUTHORIZATION.as_str(), &value, &[])?;
        Ok(Self::new(true, name, value))
    }

    /// An API key sent verbatim in `header` (`x-api-key`, `api-key`, or `Authorization`
    /// with a scheme of your own: `ApiKey k-93f1c2`). Whitespace around it is trimmed.
    ///
    /// HTTP clients drop `Authorization` when a redirect leads to another host, but not a
    /// header of your choice: the blocking adapter follows no redirect for a request that
    /// carries a key outside `Authorization` (the 3xx comes back), and a reqwest client
    /// that sends one should be built with `redirect::Policy::none()`.
    ///
    /// # Errors
    /// [`ConfigError::InvalidHeader`] for a name that is not a valid header name,
    /// [`ConfigError::ReservedHeader`] for one that frames the message (`Content-Type`,
    /// `Content-Length`, `Host`…), and [`ConfigError::InvalidHeaderValue`] for an empty key
    /// or one with characters other than visible ASCII and inner spaces.
    pub fn api_key(header: &str, key: impl Into<String>) -> Result<Self, ConfigError> {
        let key = zeroize::Zeroizing::new(key.into());
        let (name, value) = check_header(header, key.trim(), RESERVED_FOR_KEYS)?;
        if value.is_empty() {
            return Err(ConfigError::InvalidHeaderValue(name.to_string()));
        }
        Ok(Self::new(false, name, value))
    }

    /// Whether HTTP clients drop this credential on a redirect to another host: they do for
    /// `Authorization`, not for other headers.
    #[must_use]
    pub fn dropped_on_redirect(&self) -> bool {
        self.name == AUTHORIZATION
    }

    fn new(bearer: bool, name: HeaderName, mut value: HeaderValue) -> Self {
        value.set_sensitive(true);
        Self {
            bearer,
            name,
            value,
        }
    }

    /// Whether this is a bearer token (`Authorization: Bearer …`) rather than an API key.
    #[must_use]
    pub fn is_bearer(&self) -> bool {
        self.bearer
    }

    /// The header the credential is sent in (lower case).
    #[must_use]
    pub fn header_name(&self) -> &HeaderName {
        &self.name
    }

    /// The header's value, marked sensitive. It is the secret: never log it.
    #[must_use]
    pub fn header_value(&self) -> &HeaderValue {
        &self.value
    }

    /// Sets the credential's header on `request`, replacing any value it had.
    pub fn authorize<B>(&self, request: &mut http::Request<B>) {
        request
            .headers_mut()
            .insert(self.name.clone(), self.value.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_values_that_are_not_header_safe_without_echoing_them() {
        for bad in ["", "  ", "two words", "line\nbreak", "caf\u{e9}"] {
            let error = StaticCredential::bearer(bad).unwrap_err();
            assert_eq!(
                error,
                ConfigError::InvalidHeaderValue("authorization".into())
            );
            if !bad.trim().is_empty() {
                assert!(!error.to_string().contains(bad));
            }
        }
        for bad in ["", "   ", "line\nbreak", "caf\u{e9}"] {
            assert!(matches!(
                StaticCredential::api_key("x-api-key", bad),
                Err(ConfigError::InvalidHeaderValue(_))
            ));
        }
    }

    #[test]
    fn refuses_header_names_that_frame_the_message() {
        assert!(matches!(
            StaticCredential::api_key("not a header", "k"),
            Err(ConfigError::InvalidHeader(_))
        ));
        for reserved in [
            "Content-Type",
            "content-length",
            "Host",
            "Transfer-Encoding",
        ] {
            assert!(matches!(
                StaticCredential::api_key(reserved, "k"),
                Err(ConfigError::ReservedHeader(_))
            ));
        }
        let custom_scheme = StaticCredential::api_key("Authorization", "ApiKey k-1").unwrap();
        assert_eq!(custom_scheme.header_value(), "ApiKey k-1");
        assert!(!custom_scheme.is_bearer() && custom_scheme.dropped_on_redirect());
        let from_file = StaticCredential::bearer("eyJ.token\n").unwrap();
        assert_eq!(from_file.header_value(), "Bearer eyJ.token");
        assert!(
            !StaticCredential::api_key("x-api-key", " k\n")
                .unwrap()
                .dropped_on_redirect()
        );
    }

    #[test]
    fn debug_never_shows_the_value() {
        let bearer = StaticCredential::bearer("2YotnFZFEjr1zCsicMWpAA").unwrap();
        let debug = format!("{bearer:?}");
        assert!(!debug.contains("2YotnFZFEjr1zCsicMWpAA"), "{debug}");
        assert!(debug.contains("bearer") && debug.contains("authorization"));
        let mut request = http::Request::new(());
        request
            .headers_mut()
            .insert("x-api-key", HeaderValue::from_static("old"));
        StaticCredential::api_key("X-Api-Key", "new-key")
            .unwrap()
            .authorize(&mut request);
        assert_eq!(request.headers().get_all("x-api-key").iter().count(), 1);
        assert_eq!(request.headers()["x-api-key"], "new-key");
    }
}
