//! Signed client assertions: `private_key_jwt` and `client_secret_jwt` (RFC 7523 §2.2,
//! RFC 7521 §4.2, OpenID Connect Core §9), feature `jwt`.
//!
//! The client authenticates with a short-lived JWT in `client_assertion`, instead of a
//! secret on the wire. The JWT has `iss` = `sub` = the client id, `aud` the token endpoint
//! (or the issuer, [`Audience`]), a `jti` unique to each request, `iat` and `exp` (and `nbf`
//! when asked for). It is signed with the client's private key ([`AssertionKey`]: RS256,
//! PS256, ES256 or EdDSA, from PEM or DER in PKCS#8, PKCS#1 or SEC1) or, for
//! `client_secret_jwt`, with HS256 keyed by the client secret.
//!
//! The core stays sans-IO: an assertion is signed for each request as it is sent, from the
//! time and randomness that the session is given ([`TokenRequest::to_http_at`]); a retry
//! signs a new one with a new `jti`. The signing is aws-lc's (through `aws-lc-rs`); nothing
//! here is hand-written cryptography. Keys never appear in `Debug`, in errors or in cache
//! keys (which hold the key's RFC 7638 thumbprint).
//!
//! ```
//! use std::time::{Duration, UNIX_EPOCH};
//! use client_credentials::{AssertionKey, Config};
//!
//! # let pem = include_str!("../tests/keys/ec-p256.pem");
//! let key = AssertionKey::from_pem(pem)?.with_key_id("2026-12");
//! let config = Config::builder()
//!     .token_url("https://auth.example.com/oauth2/token")
//!     .client_id("my-service")
//!     .private_key(key)
//!     .build()?;
//! let request = config.default_request();
//! let http = request.to_http_at(UNIX_EPOCH + Duration::from_secs(1_800_000_000), 7);
//! let body = std::str::from_utf8(http.body()).unwrap();
//! assert!(body.contains("client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer"));
//! assert!(body.contains("&client_assertion=eyJ"));
//! assert!(!format!("{config:?}").contains("PRIVATE"));
//! # Ok::<_, client_credentials::ConfigError>(())
//! ```
//!
//! [`TokenRequest::to_http_at`]: crate::TokenRequest::to_http_at

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::digest;
use aws_lc_rs::hmac;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _, RSA_PKCS1_SHA256,
    RSA_PSS_SHA256, RsaKeyPair,
};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::{Value, json};

use crate::config::ConfigError;

/// The `client_assertion_type` of a JWT assertion (RFC 7523 §2.2).
pub const JWT_BEARER_ASSERTION_TYPE: &str =
    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// How long an assertion is valid by default: 120 s, within the 60–300 s that servers
/// accept (some refuse more than 5 minutes).
pub const DEFAULT_ASSERTION_LIFETIME: Duration = Duration::from_secs(120);

/// The algorithm that signs a client assertion (RFC 7518 §3.1, RFC 8037 §3.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AssertionAlgorithm {
    /// `RS256`: RSASSA-PKCS1-v1_5 with SHA-256. The default for an RSA key, and the one
    /// that every server supports.
    Rs256,
    /// `PS256`: RSASSA-PSS with SHA-256 (required by FAPI profiles), for an RSA key.
    Ps256,
    /// `ES256`: ECDSA on P-256 with SHA-256, for a P-256 key.
    Es256,
    /// `EdDSA` with an Ed25519 key (RFC 8037).
    EdDsa,
    /// `HS256`: HMAC with SHA-256 keyed by the client secret (`client_secret_jwt`).
    Hs256,
}

impl AssertionAlgorithm {
    /// The `alg` name: `"RS256"`, `"PS256"`, `"ES256"`, `"EdDSA"` or `"HS256"`.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Rs256 => "RS256",
            Self::Ps256 => "PS256",
            Self::Es256 => "ES256",
            Self::EdDsa => "EdDSA",
            Self::Hs256 => "HS256",
        }
    }

    /// The algorithm with this `alg` name (exact case, as in a JWT header).
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        [
            Self::Rs256,
            Self::Ps256,
            Self::Es256,
            Self::EdDsa,
            Self::Hs256,
        ]
        .into_iter()
        .find(|a| a.name() == name)
    }
}

impl fmt::Display for AssertionAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The `aud` claim of an assertion. Servers differ: most want the token endpoint (RFC 7523
/// §3), some (and OpenID Connect's newer drafts) the issuer.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Audience {
    /// The token endpoint's URL, as configured. The default.
    #[default]
    TokenEndpoint,
    /// This value: the issuer's identifier, say.
    Value(String),
}

/// The private key of a `private_key_jwt` client, with the header members that name it:
/// `kid`, and for a certificate credential `x5t#S256` (and `x5t`, the SHA-1 thumbprint, for
/// servers such as Microsoft Entra ID that ask for it). Cheap to clone; `Debug` shows the
/// algorithm, the key id and the thumbprint, never the key.
#[derive(Clone)]
pub struct AssertionKey {
    key: Arc<Key>,
    algorithm: AssertionAlgorithm,
    kid: Option<String>,
    x5t_s256: Option<String>,
    x5t: Option<String>,
    /// Also send `x5t` when a certificate is set.
    sha1_thumbprint: bool,
}

enum Key {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair),
    Ed(Ed25519KeyPair),
}

impl fmt::Debug for AssertionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AssertionKey")
            .field("algorithm", &self.algorithm)
            .field("kid", &self.kid)
            .field("thumbprint", &self.thumbprint())
            .field("certificate", &self.x5t_s256.is_some())
            .finish_non_exhaustive()
    }
}

impl PartialEq for AssertionKey {
    fn eq(&self, other: &Self) -> bool {
        self.identity() == other.identity()
    }
}

impl Eq for AssertionKey {}

fn invalid_key(what: &str) -> ConfigError {
    ConfigError::InvalidKey(what.to_owned())
}

impl AssertionKey {
    /// A key from PEM: `PRIVATE KEY` (PKCS#8: RSA, P-256 or Ed25519), `RSA PRIVATE KEY`
    /// (PKCS#1) or `EC PRIVATE KEY` (SEC1, P-256). The algorithm follows the key: RS256,
    /// ES256 or EdDSA ([`AssertionKey::with_algorithm`] picks PS256 for an RSA key).
    ///
    /// # Errors
    /// [`ConfigError::InvalidKey`] when the PEM holds no private key, or one of another kind
    /// or curve, or one that aws-lc refuses (an RSA key under 2048 bits, say). The message
    /// never holds key material.
    pub fn from_pem(pem: &str) -> Result<Self, ConfigError> {
        let der = PrivateKeyDer::from_pem_slice(pem.as_bytes())
            .map_err(|_| invalid_key("no PEM private key (PKCS#8, PKCS#1 or SEC1)"))?;
        Self::from_private_key_der(&der)
    }

    /// A key from DER: PKCS#8, PKCS#1 (RSA) or SEC1 (P-256), tried in that order.
    ///
    /// # Errors
    /// As [`AssertionKey::from_pem`].
    pub fn from_der(der: &[u8]) -> Result<Self, ConfigError> {
        let pkcs8 = PrivateKeyDer::Pkcs8(der.to_vec().into());
        Self::from_private_key_der(&pkcs8)
            .or_else(|_| Self::from_private_key_der(&PrivateKeyDer::Pkcs1(der.to_vec().into())))
            .or_else(|_| Self::from_private_key_der(&PrivateKeyDer::Sec1(der.to_vec().into())))
            .map_err(|_| invalid_key("no private key in the DER (PKCS#8, PKCS#1 or SEC1)"))
    }

    /// A new ES256 (P-256) or EdDSA (Ed25519) key made from 32 random bytes that the
    /// caller draws from a cryptographic source (the core draws no randomness: for example
    /// `getrandom::fill`): an Ed25519 seed, or a P-256 private scalar. For a DPoP key
    /// ([`crate::dpop::DpopKey`]) that lives as long as the process.
    ///
    /// ```
    /// use client_credentials::{AssertionAlgorithm, AssertionKey};
    /// # let random = [7u8; 32]; // use getrandom::fill(&mut random) in real code
    /// let key = AssertionKey::from_random(AssertionAlgorithm::EdDsa, &random)?;
    /// assert_eq!(key.algorithm(), AssertionAlgorithm::EdDsa);
    /// assert_eq!(key, AssertionKey::from_random(AssertionAlgorithm::EdDsa, &random)?);
    /// # Ok::<_, client_credentials::ConfigError>(())
    /// ```
    ///
    /// # Errors
    /// [`ConfigError::InvalidKey`] for another algorithm (RSA keys are not made here), or
    /// for bytes that are not a P-256 scalar (zero, or not below the group order: about one
    /// draw in 2³², draw again).
    pub fn from_random(
        algorithm: AssertionAlgorithm,
        random: &[u8; 32],
    ) -> Result<Self, ConfigError> {
        match algorithm {
            AssertionAlgorithm::EdDsa => {
                let ed = Ed25519KeyPair::from_seed_unchecked(random)
                    .map_err(|_| invalid_key("an Ed25519 seed that aws-lc refuses"))?;
                Ok(Self::new(Key::Ed(ed), algorithm))
            }
            AssertionAlgorithm::Es256 => {
                // RFC 5915 ECPrivateKey { version 1, privateKey, [0] prime256v1 }: aws-lc
                // derives the public point.
                let mut der = zeroize::Zeroizing::new(Vec::with_capacity(51));
                der.extend_from_slice(&[0x30, 0x31, 0x02, 0x01, 0x01, 0x04, 0x20]);
                der.extend_from_slice(random);
                der.extend_from_slice(&[
                    0xa0, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07,
                ]);
                let ec = EcdsaKeyPair::from_private_key_der(&ECDSA_P256_SHA256_FIXED_SIGNING, &der)
                    .map_err(|_| invalid_key("32 bytes that are not a P-256 private key"))?;
                Ok(Self::new(Key::Ec(ec), algorithm))
            }
            other => Err(ConfigError::InvalidKey(format!(
                "only ES256 and EdDSA keys are made from random bytes, not {other}"
            ))),
        }
    }

    fn new(key: Key, algorithm: AssertionAlgorithm) -> Self {
        Self {
            key: Arc::new(key),
            algorithm,
            kid: None,
            x5t_s256: None,
            x5t: None,
            sha1_thumbprint: false,
        }
    }

    fn from_private_key_der(der: &PrivateKeyDer<'_>) -> Result<Self, ConfigError> {
        let bytes = der.secret_der();
        let (key, algorithm) = match der {
            PrivateKeyDer::Pkcs1(_) => (
                Key::Rsa(
                    RsaKeyPair::from_der(bytes)
                        .map_err(|_| invalid_key("an RSA key that aws-lc refuses"))?,
                ),
                AssertionAlgorithm::Rs256,
            ),
            PrivateKeyDer::Sec1(_) => (
                Key::Ec(
                    EcdsaKeyPair::from_private_key_der(&ECDSA_P256_SHA256_FIXED_SIGNING, bytes)
                        .map_err(|_| invalid_key("an EC key that is not on P-256"))?,
                ),
                AssertionAlgorithm::Es256,
            ),
            PrivateKeyDer::Pkcs8(_) => {
                if let Ok(rsa) = RsaKeyPair::from_pkcs8(bytes) {
                    (Key::Rsa(rsa), AssertionAlgorithm::Rs256)
                } else if let Ok(ec) =
                    EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, bytes)
                {
                    (Key::Ec(ec), AssertionAlgorithm::Es256)
                } else if let Ok(ed) = Ed25519KeyPair::from_pkcs8_maybe_unchecked(bytes) {
                    (Key::Ed(ed), AssertionAlgorithm::EdDsa)
                } else {
                    return Err(invalid_key(
                        "a PKCS#8 key that is not RSA (2048 bits or more), P-256 or Ed25519",
                    ));
                }
            }
            _ => return Err(invalid_key("a private key of an unknown kind")),
        };
        Ok(Self::new(key, algorithm))
    }

    /// Signs with `algorithm`: PS256 (or RS256) for an RSA key; the others follow the key.
    ///
    /// # Errors
    /// [`ConfigError::InvalidKey`] when the key cannot sign with `algorithm`.
    pub fn with_algorithm(mut self, algorithm: AssertionAlgorithm) -> Result<Self, ConfigError> {
        let fits = matches!(
            (&*self.key, algorithm),
            (
                Key::Rsa(_),
                AssertionAlgorithm::Rs256 | AssertionAlgorithm::Ps256
            ) | (Key::Ec(_), AssertionAlgorithm::Es256)
                | (Key::Ed(_), AssertionAlgorithm::EdDsa)
        );
        if !fits {
            return Err(ConfigError::InvalidKey(format!(
                "this key cannot sign {algorithm}"
            )));
        }
        self.algorithm = algorithm;
        Ok(self)
    }

    /// The `kid` header member: the key's id as registered with the server.
    #[must_use]
    pub fn with_key_id(mut self, kid: impl Into<String>) -> Self {
        self.kid = Some(kid.into());
        self
    }

    /// The key's certificate (PEM), for a certificate credential: the assertion's header
    /// gets its SHA-256 thumbprint, `x5t#S256` (RFC 7515 §4.1.8).
    ///
    /// # Errors
    /// [`ConfigError::InvalidKey`] when the PEM holds no certificate.
    pub fn with_certificate_pem(mut self, pem: &str) -> Result<Self, ConfigError> {
        let cert = CertificateDer::from_pem_slice(pem.as_bytes())
            .map_err(|_| invalid_key("no PEM certificate"))?;
        let der = cert.as_ref();
        self.x5t_s256 = Some(URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, der)));
        self.x5t =
            Some(URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, der)));
        Ok(self)
    }

    /// Also sends `x5t`, the certificate's SHA-1 thumbprint (RFC 7515 §4.1.7), which
    /// Microsoft Entra ID requires of certificate credentials. Only with a certificate.
    #[must_use]
    pub fn with_sha1_thumbprint(mut self) -> Self {
        self.sha1_thumbprint = true;
        self
    }

    /// The algorithm that signs.
    #[must_use]
    pub fn algorithm(&self) -> AssertionAlgorithm {
        self.algorithm
    }

    /// The key id, if set.
    #[must_use]
    pub fn key_id(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The public key as a JWK (RFC 7517), with `kid`, `alg` and `use: sig`: what a server
    /// registers for the client (its `jwks`).
    #[must_use]
    pub fn public_jwk(&self) -> Value {
        let mut jwk = self.public_members();
        if let Value::Object(map) = &mut jwk {
            if let Some(kid) = &self.kid {
                map.insert("kid".into(), Value::String(kid.clone()));
            }
            map.insert("alg".into(), Value::String(self.algorithm.name().into()));
            map.insert("use".into(), Value::String("sig".into()));
        }
        jwk
    }

    /// The RFC 7638 thumbprint of the public key (SHA-256 of its required members in
    /// lexicographic order, base64url): the key's identity, in cache keys and logs.
    #[must_use]
    pub fn thumbprint(&self) -> String {
        // `serde_json::Map` keeps keys sorted (no `preserve_order`), and `to_string` writes
        // no whitespace: the canonical form of RFC 7638 §3.
        let canonical = self.public_members().to_string();
        URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, canonical.as_bytes()))
    }

    /// The identity of the credential for cache keys: the algorithm, the key's thumbprint
    /// and the header members. No key material.
    pub(crate) fn identity(&self) -> String {
        format!(
            "{}:{}:{}:{}",
            self.algorithm,
            self.thumbprint(),
            self.kid.as_deref().unwrap_or_default(),
            self.header_thumbprints().len()
        )
    }

    /// The required members of the public JWK (RFC 7638 §3.2), in lexicographic order.
    pub(crate) fn public_members(&self) -> Value {
        match &*self.key {
            Key::Rsa(pair) => {
                let (n, e) = rsa_public_components(pair.public_key().as_ref()).unwrap_or_default();
                json!({"e": URL_SAFE_NO_PAD.encode(e), "kty": "RSA", "n": URL_SAFE_NO_PAD.encode(n)})
            }
            Key::Ec(pair) => {
                // An uncompressed point: 0x04 || x || y, 32 bytes each.
                let point = pair.public_key().as_ref();
                let (x, y) = point
                    .get(1..)
                    .unwrap_or_default()
                    .split_at(point.len().saturating_sub(1) / 2);
                json!({"crv": "P-256", "kty": "EC", "x": URL_SAFE_NO_PAD.encode(x), "y": URL_SAFE_NO_PAD.encode(y)})
            }
            Key::Ed(pair) => json!({
                "crv": "Ed25519",
                "kty": "OKP",
                "x": URL_SAFE_NO_PAD.encode(pair.public_key().as_ref()),
            }),
        }
    }

    fn header_thumbprints(&self) -> Vec<(&'static str, &str)> {
        let mut members = Vec::new();
        if let Some(t) = &self.x5t_s256 {
            members.push(("x5t#S256", t.as_str()));
        }
        if self.sha1_thumbprint
            && let Some(t) = &self.x5t
        {
            members.push(("x5t", t.as_str()));
        }
        members
    }

    pub(crate) fn sign(&self, input: &[u8]) -> Result<Vec<u8>, ConfigError> {
        let failed = || invalid_key("aws-lc could not sign with this key");
        match (&*self.key, self.algorithm) {
            (Key::Rsa(pair), algorithm) => {
                let padding: &'static dyn aws_lc_rs::signature::RsaEncoding =
                    if algorithm == AssertionAlgorithm::Ps256 {
                        &RSA_PSS_SHA256
                    } else {
                        &RSA_PKCS1_SHA256
                    };
                let mut signature = vec![0; pair.public_modulus_len()];
                pair.sign(padding, &SystemRandom::new(), input, &mut signature)
                    .map_err(|_| failed())?;
                Ok(signature)
            }
            (Key::Ec(pair), _) => pair
                .sign(&SystemRandom::new(), input)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| failed()),
            (Key::Ed(pair), _) => Ok(pair.sign(input).as_ref().to_vec()),
        }
    }
}

/// The modulus and exponent of a DER `RSAPublicKey` (RFC 8017 A.1.1): a SEQUENCE of two
/// INTEGERs, as aws-lc writes them.
fn rsa_public_components(der: &[u8]) -> Option<(&[u8], &[u8])> {
    use crate::der::read;
    let (body, _) = read(der, 0x30)?;
    let (n, rest) = read(body, 0x02)?;
    let (e, _) = read(rest, 0x02)?;
    let n = n.strip_prefix(&[0]).unwrap_or(n);
    let e = e.strip_prefix(&[0]).unwrap_or(e);
    Some((n, e))
}

/// What signs a client's assertions: its private key, or its secret (HS256).
#[derive(Clone)]
pub(crate) enum Signer {
    Key(AssertionKey),
    Secret,
}

/// How a configuration makes its assertions.
#[derive(Clone)]
pub(crate) struct AssertionConfig {
    pub(crate) signer: Signer,
    pub(crate) audience: Audience,
    pub(crate) lifetime: Duration,
    pub(crate) not_before: bool,
}

impl fmt::Debug for AssertionConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("AssertionConfig");
        match &self.signer {
            Signer::Key(key) => s.field("key", key),
            Signer::Secret => s.field("key", &"the client secret (HS256)"),
        };
        s.field("audience", &self.audience)
            .field("lifetime", &self.lifetime)
            .field("not_before", &self.not_before)
            .finish()
    }
}

impl AssertionConfig {
    /// The identity of the credential for cache keys (never key material).
    pub(crate) fn identity(&self) -> String {
        let signer = match &self.signer {
            Signer::Key(key) => key.identity(),
            Signer::Secret => "HS256".to_owned(),
        };
        let audience = match &self.audience {
            Audience::TokenEndpoint => String::new(),
            Audience::Value(v) => v.clone(),
        };
        format!("{signer}|{audience}")
    }

    /// The signed JWT for `client_id` at `token_url`, issued `at`, with `jti`.
    pub(crate) fn assertion(
        &self,
        client_id: &str,
        token_url: &str,
        secret: Option<&str>,
        at: SystemTime,
        jti: &str,
    ) -> Result<zeroize::Zeroizing<String>, ConfigError> {
        let iat = at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let exp = iat.saturating_add(self.lifetime.as_secs().max(1));
        let algorithm = match &self.signer {
            Signer::Key(key) => key.algorithm(),
            Signer::Secret => AssertionAlgorithm::Hs256,
        };
        // Members in a fixed order, so that an assertion is the same bytes for the same
        // inputs (golden tests, reproducible bugs).
        let mut header = format!(r#"{{"alg":"{}","typ":"JWT""#, algorithm.name());
        if let Signer::Key(key) = &self.signer {
            if let Some(kid) = &key.kid {
                header.push_str(&format!(r#","kid":{}"#, Value::String(kid.clone())));
            }
            for (name, value) in key.header_thumbprints() {
                header.push_str(&format!(r#","{name}":"{value}""#));
            }
        }
        header.push('}');
        let audience = match &self.audience {
            Audience::TokenEndpoint => token_url,
            Audience::Value(v) => v.as_str(),
        };
        let id = Value::String(client_id.to_owned());
        let mut claims = format!(
            r#"{{"iss":{id},"sub":{id},"aud":{},"jti":{},"iat":{iat},"exp":{exp}"#,
            Value::String(audience.to_owned()),
            Value::String(jti.to_owned()),
        );
        if self.not_before {
            claims.push_str(&format!(r#","nbf":{iat}"#));
        }
        claims.push('}');
        let mut jwt = zeroize::Zeroizing::new(format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(claims)
        ));
        let signature = match &self.signer {
            Signer::Key(key) => key.sign(jwt.as_bytes())?,
            Signer::Secret => {
                let secret = secret.unwrap_or_default();
                let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
                hmac::sign(&key, jwt.as_bytes()).as_ref().to_vec()
            }
        };
        jwt.push('.');
        jwt.push_str(&URL_SAFE_NO_PAD.encode(signature));
        Ok(jwt)
    }
}

/// A `jti` from 128 bits: 22 base64url characters.
pub(crate) fn jti(bits: u128) -> String {
    URL_SAFE_NO_PAD.encode(bits.to_be_bytes())
}
