//! DPoP proofs (RFC 9449): a JWT signed with the client's key for each request, which binds a
//! token to that key so that a leaked token is useless without it.
//!
//! The core builds the proof from inputs only: the key, the request's method and URI, the
//! time, a nonce for the `jti`, the server's `DPoP-Nonce` when it gave one, and, for a
//! request to a resource server, the access token (its SHA-256 becomes `ath`). Feature
//! `jwt`; aws-lc signs.
//!
//! A client with a key ([`ConfigBuilder::dpop`](crate::ConfigBuilder::dpop)) sends a proof
//! with every token request, with the server's nonce once it gave one, and the session
//! retries a `use_dpop_nonce` refusal once. With a DPoP-bound token, every resource request
//! that the adapters authorize (`authorize`, `send_authorized`, the middleware, the tower
//! layer) carries `Authorization: DPoP <token>` and its own proof with `ath`
//! ([`crate::ResourceAuth`]); a resource server's `use_dpop_nonce` challenge gets one retry
//! through [`Cache::resource_verdict`](crate::Cache::resource_verdict), and the latest
//! nonce of each origin is remembered ([`Cache::dpop_ticket`](crate::Cache::dpop_ticket)).
//!
//! ```
//! use std::time::{Duration, UNIX_EPOCH};
//! use client_credentials::AssertionKey;
//! use client_credentials::dpop::{DpopKey, ProofInput};
//! use client_credentials::http::{Method, Uri};
//!
//! # let pem = include_str!("../tests/keys/ec-p256.pem");
//! let key = DpopKey::new(AssertionKey::from_pem(pem)?);
//! let uri: Uri = "https://as.example.com/token?ignored=1".parse()?;
//! let proof = key.proof(&ProofInput {
//!     method: &Method::POST,
//!     uri: &uri,
//!     at: UNIX_EPOCH + Duration::from_secs(1_800_000_000),
//!     nonce: 7,
//!     server_nonce: None,
//!     access_token: None,
//! })?;
//! assert_eq!(proof.expose_secret().split('.').count(), 3);
//! assert_eq!(format!("{proof:?}"), "DpopProof([REDACTED])");
//! assert_eq!(key.thumbprint().len(), 43); // the token's `cnf.jkt`
//! # Ok::<_, Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value, json};
use zeroize::Zeroizing;

use crate::assertion::AssertionKey;
use crate::config::ConfigError;
use crate::secret::AccessToken;

/// The key that signs DPoP proofs: any [`AssertionKey`] (ES256 and EdDSA are the usual
/// choices; RS256 and PS256 work too). Its public half goes in every proof's header, and
/// its RFC 7638 thumbprint ([`DpopKey::thumbprint`]) is what a server binds the token to.
#[derive(Clone, Debug)]
pub struct DpopKey {
    key: AssertionKey,
    jwk: Value,
    thumbprint: String,
}

/// What a proof is for ([`DpopKey::proof`]).
#[derive(Clone, Copy, Debug)]
pub struct ProofInput<'a> {
    /// The request's method (`htm`).
    pub method: &'a http::Method,
    /// The request's URI; `htu` is it without query (an `http::Uri` has no fragment).
    pub uri: &'a http::Uri,
    /// When the proof is made (`iat`), wall-clock time.
    pub at: SystemTime,
    /// 128 bits that must not repeat, for the `jti`.
    pub nonce: u128,
    /// The server's latest `DPoP-Nonce`, if it gave one (`nonce`).
    pub server_nonce: Option<&'a str>,
    /// The access token the request carries, to a resource server (`ath`).
    pub access_token: Option<&'a AccessToken>,
}

impl DpopKey {
    /// A DPoP key from a signing key.
    #[must_use]
    pub fn new(key: AssertionKey) -> Self {
        let jwk = key.public_members();
        let thumbprint = key.thumbprint();
        Self {
            key,
            jwk,
            thumbprint,
        }
    }

    /// The RFC 7638 thumbprint of the public key: the `jkt` a server puts in the token's
    /// `cnf` claim, and the `dpop_jkt` of an authorization request.
    #[must_use]
    pub fn thumbprint(&self) -> &str {
        &self.thumbprint
    }

    /// A proof for one request: header `typ: dpop+jwt`, `alg`, the public `jwk`; claims
    /// `jti`, `htm`, `htu`, `iat`, and `nonce` and `ath` when given.
    ///
    /// # Errors
    /// [`ConfigError::InvalidKey`] if aws-lc cannot sign (the key signed when it was made,
    /// so this does not happen with a key that loaded).
    pub fn proof(&self, input: &ProofInput<'_>) -> Result<DpopProof, ConfigError> {
        let header =
            json!({ "typ": "dpop+jwt", "alg": self.key.algorithm().name(), "jwk": self.jwk });
        let mut claims = Map::new();
        claims.insert("jti".into(), crate::assertion::jti(input.nonce).into());
        claims.insert("htm".into(), input.method.as_str().into());
        claims.insert("htu".into(), htu(input.uri).into());
        let iat = input
            .at
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        claims.insert("iat".into(), iat.into());
        if let Some(nonce) = input.server_nonce {
            claims.insert("nonce".into(), nonce.into());
        }
        if let Some(token) = input.access_token {
            let digest = aws_lc_rs::digest::digest(
                &aws_lc_rs::digest::SHA256,
                token.expose_secret().as_bytes(),
            );
            claims.insert("ath".into(), URL_SAFE_NO_PAD.encode(digest).into());
        }
        let mut jwt = Zeroizing::new(format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(Value::Object(claims).to_string())
        ));
        let signature = self.key.sign(jwt.as_bytes())?;
        jwt.push('.');
        jwt.push_str(&URL_SAFE_NO_PAD.encode(signature));
        Ok(DpopProof(jwt))
    }
}

/// `htu` (RFC 9449 §4.2): the URI without query and fragment, normalized as servers compare
/// it (RFC 3986 §6.2.2.1 and §6.2.3): scheme and host in lower case, no default port.
pub(crate) fn htu(uri: &http::Uri) -> String {
    match crate::resource::origin(uri) {
        Some(origin) => format!("{origin}{}", uri.path()),
        None => uri.path().to_owned(),
    }
}

/// A signed DPoP proof, the value of a request's `DPoP` header. A credential for as long as
/// the server accepts its `iat`: `Debug` shows none of it, and it is zeroized when dropped.
#[derive(Clone)]
pub struct DpopProof(Zeroizing<String>);

impl DpopProof {
    /// The compact JWT. Never log it.
    #[must_use]
    pub fn expose_secret(&self) -> &str {
        &self.0
    }

    /// The `DPoP` header value, marked sensitive.
    #[must_use]
    pub fn header_value(&self) -> http::HeaderValue {
        // Base64url and dots only: always a valid header value.
        let mut value = http::HeaderValue::from_str(&self.0)
            .unwrap_or_else(|_| http::HeaderValue::from_static(""));
        value.set_sensitive(true);
        value
    }
}

impl fmt::Debug for DpopProof {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DpopProof([REDACTED])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn htu_drops_the_query() {
        let htu_of = |uri: &str| htu(&uri.parse().unwrap());
        assert_eq!(
            htu_of("https://AS.example.com:8443/a/b?c=d"),
            "https://as.example.com:8443/a/b"
        );
        assert_eq!(
            htu_of("HTTPS://as.example.com:443/t"),
            "https://as.example.com/t"
        );
        assert_eq!(htu_of("http://127.0.0.1:80/t"), "http://127.0.0.1/t");
        assert_eq!(htu_of("http://[::1]:8080/t"), "http://[::1]:8080/t");
    }
}
