//! What authorizes one request to a resource server: the token's `Authorization` header
//! and, for a DPoP-bound token (RFC 9449 §7), a `DPoP` proof for that very request.
//!
//! A driver takes a [`ResourceAuth`] from the token it is lent ([`ResourceAuth::new`]),
//! and, only when [`ResourceAuth::needs_proof`] says so, the proof's inputs from the cache
//! under its lock ([`Cache::dpop_ticket`](crate::Cache::dpop_ticket): the time, a fresh
//! `jti`, and the latest `DPoP-Nonce` of the request's origin), then signs with no lock
//! held ([`ResourceAuth::prove`]) and sets the headers ([`ResourceAuth::apply`]). A bearer
//! token needs neither the lock nor a signature.
//!
//! ```
//! use std::time::{Duration, SystemTime, UNIX_EPOCH};
//! use client_credentials::{Config, ResourceAuth};
//! use client_credentials::http::{HeaderMap, Method, StatusCode, Uri};
//!
//! let config = Config::builder()
//!     .token_url("https://auth.example.com/token")
//!     .client_id("c")
//!     .client_secret("s")
//!     .build()?;
//! let body = br#"{"access_token":"abc","token_type":"Bearer","expires_in":3600}"#;
//! let token = config.default_request().parse_response(
//!     UNIX_EPOCH + Duration::from_secs(1_800_000_000), StatusCode::OK, &HeaderMap::new(), body)?;
//!
//! let auth = ResourceAuth::new(&config, &token);
//! assert!(!auth.needs_proof()); // a bearer token: no lock, no signature
//! let mut headers = HeaderMap::new();
//! auth.apply(&mut headers);
//! assert_eq!(headers["authorization"], "Bearer abc");
//! assert!(headers["authorization"].is_sensitive());
//! assert_eq!(format!("{auth:?}"), "ResourceAuth { dpop: false, .. }");
//! # Ok::<_, Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::time::SystemTime;

use http::header::AUTHORIZATION;
use http::{HeaderMap, HeaderName, HeaderValue};

use crate::config::{Config, ConfigError};
use crate::secret::AccessToken;
use crate::session::ResourceVerdict;
use crate::token::Token;

/// The `DPoP` request header (RFC 9449 §4.1).
pub const DPOP: HeaderName = HeaderName::from_static("dpop");
/// The `DPoP-Nonce` response header (RFC 9449 §8.1, §9).
pub const DPOP_NONCE: HeaderName = HeaderName::from_static("dpop-nonce");

/// The headers that authorize one resource request, and the token they carry (to hand to
/// the verdict on the answer). `Debug` shows neither the token nor the proof.
#[derive(Clone)]
pub struct ResourceAuth {
    authorization: HeaderValue,
    token: AccessToken,
    needs_proof: bool,
    dpop: Option<HeaderValue>,
    /// The server nonce the proof carried: what the verdict compares a challenge's with.
    sent_nonce: Option<String>,
}

/// The inputs of one DPoP proof that only the cache has
/// ([`Cache::dpop_ticket`](crate::Cache::dpop_ticket)): taken under the driver's lock, used
/// after it is released.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct DpopTicket {
    /// When the proof is made (`iat`): the cache's wall clock at the driver's `now`.
    pub at: SystemTime,
    /// The bits of the proof's `jti`, never drawn twice by one cache.
    pub nonce: u128,
    /// The latest `DPoP-Nonce` that the request's origin gave, if any.
    pub server_nonce: Option<String>,
}

impl ResourceAuth {
    /// What `token` needs to authorize a request: its `Authorization` value (marked
    /// sensitive) and whether a proof must go with it, which is when the token is DPoP-bound
    /// (`token_type` `DPoP`) and `config` has the key ([`crate::ConfigBuilder::dpop`]).
    /// Cheap: no signature is made here.
    #[must_use]
    pub fn new(config: &Config, token: &Token) -> Self {
        let needs_proof = config.has_dpop() && token.token_type().eq_ignore_ascii_case("dpop");
        Self {
            authorization: token.authorization_header(),
            token: token.access_token().clone(),
            needs_proof,
            dpop: None,
            sent_nonce: None,
        }
    }

    /// Whether [`ResourceAuth::prove`] must run before the request is sent: the only case
    /// in which a driver takes the cache's lock for a [`DpopTicket`].
    #[must_use]
    pub fn needs_proof(&self) -> bool {
        self.needs_proof && self.dpop.is_none()
    }

    /// Signs the DPoP proof for a `method` request to `uri` with `config`'s key, with the
    /// ticket's time, `jti` and server nonce, and the token's hash (`ath`). Does nothing when
    /// no proof is needed. Make one per request sent, a retry included (a new
    /// [`ResourceAuth`]): a proof is refused the second time.
    ///
    /// # Errors
    /// [`ConfigError::DpopTarget`] when `uri` is not absolute (a proof names the whole
    /// target URI, RFC 9449 §4.2); [`ConfigError::InvalidKey`] when the key cannot sign (it
    /// signed when it was loaded, so this does not happen with a key that loaded). Send
    /// nothing then: a DPoP-bound token without a proof is refused.
    pub fn prove(
        &mut self,
        config: &Config,
        method: &http::Method,
        uri: &http::Uri,
        ticket: &DpopTicket,
    ) -> Result<(), ConfigError> {
        if !self.needs_proof {
            return Ok(());
        }
        // RFC 9449 §4.2: `htu` is the whole target URI; a path alone names no server.
        if origin(uri).is_none() {
            return Err(ConfigError::DpopTarget(uri.path().to_owned()));
        }
        self.sent_nonce.clone_from(&ticket.server_nonce);
        #[cfg(feature = "jwt")]
        if let Some(key) = &config.inner().dpop {
            let proof = key.proof(&crate::dpop::ProofInput {
                method,
                uri,
                at: ticket.at,
                nonce: ticket.nonce,
                server_nonce: ticket.server_nonce.as_deref(),
                access_token: Some(&self.token),
            })?;
            self.dpop = Some(proof.header_value());
        }
        #[cfg(not(feature = "jwt"))]
        let _ = (config, method, uri, ticket);
        Ok(())
    }

    /// Sets `Authorization` (and `DPoP`, when there is a proof) on `headers`, replacing what
    /// they held; a `DPoP` header left from an earlier attempt is removed.
    pub fn apply(&self, headers: &mut HeaderMap) {
        headers.insert(AUTHORIZATION, self.authorization.clone());
        match &self.dpop {
            Some(proof) => {
                headers.insert(DPOP, proof.clone());
            }
            None => {
                headers.remove(DPOP);
            }
        }
    }

    /// The `Authorization` value (sensitive).
    #[must_use]
    pub fn authorization(&self) -> &HeaderValue {
        &self.authorization
    }

    /// The `DPoP` proof's header value (sensitive), once [`ResourceAuth::prove`] made one.
    #[must_use]
    pub fn proof(&self) -> Option<&HeaderValue> {
        self.dpop.as_ref()
    }

    /// Whether this authorization, made for the retry that `verdict` (on the answer to
    /// `used`) called for, may be sent: a retry with a fresh token never carries the
    /// rejected one again (the token endpoint can issue that very token anew), a nonce
    /// retry keeps its token and carries a new proof, and [`ResourceVerdict::Done`] sends
    /// nothing more.
    #[must_use]
    pub fn may_retry(&self, verdict: ResourceVerdict, used: &ResourceAuth) -> bool {
        match verdict {
            ResourceVerdict::RetryWithFreshToken => self.token != used.token,
            ResourceVerdict::RetryWithNewNonce => true,
            _ => false,
        }
    }

    /// Whether a DPoP proof went with the token.
    #[must_use]
    pub fn has_proof(&self) -> bool {
        self.dpop.is_some()
    }

    /// The server nonce that the proof carried, if any.
    #[must_use]
    pub fn proof_nonce(&self) -> Option<&str> {
        self.sent_nonce.as_deref()
    }

    /// The access token the headers carry: what the verdict on the answer needs.
    #[must_use]
    pub fn access_token(&self) -> &AccessToken {
        &self.token
    }

    /// The access token, owned.
    #[must_use]
    pub fn into_access_token(self) -> AccessToken {
        self.token
    }
}

impl fmt::Debug for ResourceAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResourceAuth")
            .field("dpop", &self.needs_proof)
            .finish_non_exhaustive()
    }
}

/// The origin of `uri` as RFC 6454 compares it (scheme and host in lower case, the default
/// port left out): what a `DPoP-Nonce` is remembered by, and the start of a proof's `htu`.
/// `None` without scheme or host.
pub(crate) fn origin(uri: &http::Uri) -> Option<String> {
    let (scheme, authority) = (uri.scheme_str()?, uri.authority()?);
    let scheme = scheme.to_ascii_lowercase();
    let host = authority.host().to_ascii_lowercase();
    Some(match authority.port_u16() {
        Some(port) if !matches!((scheme.as_str(), port), ("https", 443) | ("http", 80)) => {
            format!("{scheme}://{host}:{port}")
        }
        _ => format!("{scheme}://{host}"),
    })
}

/// The longest `DPoP-Nonce` the client remembers and echoes (RFC 9449 sets no limit;
/// servers that encrypt their nonces send a few hundred bytes).
pub const MAX_DPOP_NONCE_LEN: usize = 4096;

/// A `DPoP-Nonce` value that can be echoed (RFC 9449 §8.1: `1*NQCHAR`, visible ASCII but
/// `"` and `\`), at most [`MAX_DPOP_NONCE_LEN`] bytes; anything else is ignored.
pub(crate) fn server_nonce(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(DPOP_NONCE)?.to_str().ok()?;
    let ok = !value.is_empty()
        && value.len() <= MAX_DPOP_NONCE_LEN
        && value
            .bytes()
            .all(|b| (0x21..=0x7e).contains(&b) && b != b'"' && b != b'\\');
    ok.then_some(value)
}

/// The latest `DPoP-Nonce` of each origin that gave one, most recent last; bounded, the
/// oldest forgotten first.
#[derive(Clone, Debug, Default)]
pub(crate) struct NonceBook(Vec<(String, String)>);

impl NonceBook {
    const MAX_ORIGINS: usize = 32;

    pub(crate) fn get(&self, origin: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(o, _)| o == origin)
            .map(|(_, n)| n.as_str())
    }

    /// Remembers `nonce` for `origin`; returns whether it is new for that origin.
    pub(crate) fn remember(&mut self, origin: String, nonce: &str) -> bool {
        let known = self.0.iter().position(|(o, _)| *o == origin);
        let new = known.is_none_or(|i| self.0[i].1 != nonce);
        if let Some(i) = known {
            self.0.remove(i);
        }
        if self.0.len() >= Self::MAX_ORIGINS {
            self.0.remove(0);
        }
        self.0.push((origin, nonce.to_owned()));
        new
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_compare_as_rfc_6454_says() {
        let of = |u: &str| origin(&u.parse().unwrap());
        assert_eq!(
            of("HTTPS://API.example.com:443/a?b").as_deref(),
            Some("https://api.example.com")
        );
        assert_eq!(
            of("http://127.0.0.1:8080/x").as_deref(),
            Some("http://127.0.0.1:8080")
        );
        assert_eq!(of("/relative"), None);
    }

    #[test]
    fn nonces_are_checked_and_bounded() {
        let with = |v: &'static str| {
            let mut h = HeaderMap::new();
            h.insert(DPOP_NONCE, HeaderValue::from_static(v));
            h
        };
        assert_eq!(
            server_nonce(&with("eyJ7S_zG.abc-1")),
            Some("eyJ7S_zG.abc-1")
        );
        assert_eq!(server_nonce(&with("has space")), None);
        assert_eq!(server_nonce(&with("quo\"te")), None);
        assert_eq!(server_nonce(&HeaderMap::new()), None);

        let mut book = NonceBook::default();
        assert!(book.remember("https://a".into(), "n1"));
        assert!(!book.remember("https://a".into(), "n1"));
        assert!(book.remember("https://a".into(), "n2"));
        assert_eq!(book.get("https://a"), Some("n2"));
        for i in 0..NonceBook::MAX_ORIGINS {
            book.remember(format!("https://o{i}"), "x");
        }
        assert_eq!(
            book.get("https://a"),
            None,
            "the oldest origin is forgotten"
        );
        assert_eq!(book.0.len(), NonceBook::MAX_ORIGINS);
    }
}
