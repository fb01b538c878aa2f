//! Verifying client assertions (feature `jwt`): registered public keys ([`JwkSet`]), the
//! signature (aws-lc-rs), the claims, and replays ([`ReplayCache`]).

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::hmac;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED, ED25519, ParsedPublicKey, RSA_PKCS1_2048_8192_SHA256,
    RSA_PSS_2048_8192_SHA256, RsaPublicKeyComponents, UnparsedPublicKey,
};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde_json::Value;

use crate::assertion::AssertionAlgorithm;
use crate::secret::ClientSecret;
use crate::server::ClientAuthMethod;
use crate::server::assertion::{AssertionRejection, Jws};

/// The most keys a [`JwkSet`] holds: a client rotates through two or three.
pub const MAX_JWKS_KEYS: usize = 16;

/// The default clock skew allowed on `exp`, `nbf` and `iat`: 30 seconds.
pub const DEFAULT_ASSERTION_LEEWAY: Duration = Duration::from_secs(30);

/// The default longest assertion lifetime, `exp - iat`: 5 minutes (clients use 1 to 5;
/// this crate's client, 2).
pub const DEFAULT_MAX_ASSERTION_LIFETIME: Duration = Duration::from_secs(300);

/// The default number of `jti`s a [`ReplayCache`] remembers at once.
pub const DEFAULT_REPLAY_CAPACITY: usize = 10_000;

/// The longest `jti` accepted (this crate's client sends 22 characters; UUIDs are 36).
pub(crate) const MAX_JTI_LEN: usize = 256;

/// A registered key set that could not be used. Messages name the key by its position and
/// the member at fault, never key material.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JwksError {
    /// Not JSON, or not a JWK Set (`{"keys":[…]}`) of JSON objects.
    #[error("not a JWK Set ({{\"keys\":[…]}}) of JWK objects")]
    NotAJwkSet,
    /// The set has no keys.
    #[error("the JWK Set has no keys")]
    NoKeys,
    /// The set has more than [`MAX_JWKS_KEYS`] keys.
    #[error("the JWK Set has more than {MAX_JWKS_KEYS} keys")]
    TooManyKeys,
    /// A `kty` other than `RSA`, `EC` and `OKP`.
    #[error("key {index}: unsupported kty (RSA, EC and OKP are)")]
    UnsupportedKeyType {
        /// The key's position in the set.
        index: usize,
    },
    /// A curve other than `P-256` (EC) or `Ed25519` (OKP).
    #[error("key {index}: unsupported crv (P-256 and Ed25519 are)")]
    UnsupportedCurve {
        /// The key's position in the set.
        index: usize,
    },
    /// A member the key type needs is missing or not a string.
    #[error("key {index}: missing member {member}")]
    MissingMember {
        /// The key's position in the set.
        index: usize,
        /// The member.
        member: &'static str,
    },
    /// A member is not unpadded base64url.
    #[error("key {index}: member {member} is not base64url")]
    BadBase64 {
        /// The key's position in the set.
        index: usize,
        /// The member.
        member: &'static str,
    },
    /// An RSA modulus under 2048 or over 8192 bits.
    #[error("key {index}: an RSA modulus must have 2048 to 8192 bits")]
    RsaKeySize {
        /// The key's position in the set.
        index: usize,
    },
    /// aws-lc refuses the key: a point off the curve, a wrong length, an even modulus…
    #[error("key {index}: not a valid public key")]
    InvalidKey {
        /// The key's position in the set.
        index: usize,
    },
    /// The key has private members (`d`, `p`, `q`…): register the public key only.
    #[error("key {index}: holds private key members; register the public key only")]
    PrivateKey {
        /// The key's position in the set.
        index: usize,
    },
    /// An `alg` this endpoint does not verify with this key type (or `none`, or HS256).
    #[error("key {index}: alg is not one this key type can verify")]
    UnsupportedAlgorithm {
        /// The key's position in the set.
        index: usize,
    },
    /// A `use` other than `sig`.
    #[error("key {index}: use is not \"sig\"")]
    NotForSigning {
        /// The key's position in the set.
        index: usize,
    },
}

/// The public keys a `private_key_jwt` client registered (RFC 7517 §5, RFC 7591 `jwks`):
/// RSA (`n`, `e`, 2048 to 8192 bits, for RS256 and PS256), EC on P-256 (`x`, `y`, ES256)
/// and OKP Ed25519 (`x`, EdDSA). Each key is checked by aws-lc when the set is parsed.
/// `kid`, `alg` and `use` are honoured when present.
///
/// ```
/// use client_credentials::AssertionKey;
/// use client_credentials::server::JwkSet;
///
/// # let pem = include_str!("../../tests/keys/ec-p256.pem");
/// let key = AssertionKey::from_pem(pem)?.with_key_id("2026-12");
/// let jwks = JwkSet::from_value(&serde_json::json!({ "keys": [key.public_jwk()] }))?;
/// assert_eq!(jwks.len(), 1);
/// assert!(JwkSet::from_json(r#"{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}"#).is_err());
/// # Ok::<_, Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct JwkSet {
    keys: Vec<PublicJwk>,
}

#[derive(Clone, PartialEq, Eq)]
pub(crate) struct PublicJwk {
    kid: Option<String>,
    pub(crate) alg: Option<AssertionAlgorithm>,
    pub(crate) key: PublicKey,
}

#[derive(Clone, PartialEq, Eq)]
pub(crate) enum PublicKey {
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
    },
    /// The uncompressed point, `04 || x || y`.
    P256(Vec<u8>),
    Ed25519(Vec<u8>),
}

impl PublicKey {
    fn kty(&self) -> &'static str {
        match self {
            Self::Rsa { .. } => "RSA",
            Self::P256(_) => "EC",
            Self::Ed25519(_) => "OKP",
        }
    }

    pub(crate) fn fits(&self, alg: AssertionAlgorithm) -> bool {
        matches!(
            (self, alg),
            (
                Self::Rsa { .. },
                AssertionAlgorithm::Rs256 | AssertionAlgorithm::Ps256
            ) | (Self::P256(_), AssertionAlgorithm::Es256)
                | (Self::Ed25519(_), AssertionAlgorithm::EdDsa)
        )
    }

    pub(crate) fn verify(&self, alg: AssertionAlgorithm, message: &[u8], signature: &[u8]) -> bool {
        match (self, alg) {
            (Self::Rsa { n, e }, AssertionAlgorithm::Rs256 | AssertionAlgorithm::Ps256) => {
                let params = if alg == AssertionAlgorithm::Ps256 {
                    &RSA_PSS_2048_8192_SHA256
                } else {
                    &RSA_PKCS1_2048_8192_SHA256
                };
                RsaPublicKeyComponents { n, e }
                    .verify(params, message, signature)
                    .is_ok()
            }
            (Self::P256(point), AssertionAlgorithm::Es256) => {
                UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point)
                    .verify(message, signature)
                    .is_ok()
            }
            (Self::Ed25519(x), AssertionAlgorithm::EdDsa) => UnparsedPublicKey::new(&ED25519, x)
                .verify(message, signature)
                .is_ok(),
            _ => false,
        }
    }
}

impl PublicKey {
    /// The RFC 7638 thumbprint: SHA-256 of the required members in lexicographic order, no
    /// whitespace, base64url (the `jkt` of RFC 9449). The same canonical form as the
    /// client's [`AssertionKey::thumbprint`](crate::AssertionKey::thumbprint).
    pub(crate) fn thumbprint(&self) -> String {
        let b64 = |bytes: &[u8]| URL_SAFE_NO_PAD.encode(bytes);
        let canonical = match self {
            Self::Rsa { n, e } => format!(r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#, b64(e), b64(n)),
            Self::P256(point) => {
                let (x, y) = point
                    .get(1..)
                    .unwrap_or_default()
                    .split_at(32.min(point.len().saturating_sub(1)));
                format!(
                    r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
                    b64(x),
                    b64(y)
                )
            }
            Self::Ed25519(x) => format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#, b64(x)),
        };
        b64(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, canonical.as_bytes()).as_ref())
    }
}

impl fmt::Debug for JwkSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys: Vec<(&str, Option<&str>)> = self
            .keys
            .iter()
            .map(|k| (k.key.kty(), k.kid.as_deref()))
            .collect();
        f.debug_struct("JwkSet").field("keys", &keys).finish()
    }
}

/// The members of a JWK that matter here; others (`x5c`, `key_ops`…) are ignored.
#[derive(Deserialize)]
pub(crate) struct RawJwk {
    kty: Option<Value>,
    kid: Option<Value>,
    alg: Option<Value>,
    #[serde(rename = "use")]
    use_: Option<Value>,
    crv: Option<Value>,
    n: Option<Value>,
    e: Option<Value>,
    x: Option<Value>,
    y: Option<Value>,
    // Private members (RFC 7518 §6.2.2 and §6.3.2, RFC 8037 §2): their presence alone
    // refuses the key (an `oct` key is refused by its `kty`).
    d: Option<Value>,
    p: Option<Value>,
    q: Option<Value>,
    dp: Option<Value>,
    dq: Option<Value>,
    qi: Option<Value>,
    oth: Option<Value>,
}

#[derive(Deserialize)]
struct RawSet {
    keys: Vec<RawJwk>,
}

impl JwkSet {
    /// Parses a JWK Set, `{"keys":[…]}`.
    ///
    /// # Errors
    /// [`JwksError`] when it is not a JWK Set, or a key cannot be used.
    pub fn from_json(json: &str) -> Result<Self, JwksError> {
        let raw: RawSet = serde_json::from_str(json).map_err(|_| JwksError::NotAJwkSet)?;
        Self::from_raw(raw)
    }

    /// [`JwkSet::from_json`] from a parsed JSON value.
    ///
    /// # Errors
    /// As [`JwkSet::from_json`].
    pub fn from_value(value: &Value) -> Result<Self, JwksError> {
        let raw = RawSet::deserialize(value).map_err(|_| JwksError::NotAJwkSet)?;
        Self::from_raw(raw)
    }

    fn from_raw(raw: RawSet) -> Result<Self, JwksError> {
        if raw.keys.is_empty() {
            return Err(JwksError::NoKeys);
        }
        if raw.keys.len() > MAX_JWKS_KEYS {
            return Err(JwksError::TooManyKeys);
        }
        let keys = raw
            .keys
            .into_iter()
            .enumerate()
            .map(|(index, raw)| PublicJwk::parse(index, raw))
            .collect::<Result<_, _>>()?;
        Ok(Self { keys })
    }

    /// How many keys the set holds.
    #[must_use]
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the set is empty (never, once parsed).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The keys' ids, in order (`None` for a key without `kid`).
    pub fn key_ids(&self) -> impl Iterator<Item = Option<&str>> + '_ {
        self.keys.iter().map(|k| k.kid.as_deref())
    }

    /// The signing algorithms these keys can verify, without duplicates, in the order of
    /// RFC 7518's table (RS256, PS256, ES256, EdDSA).
    #[must_use]
    pub fn algorithms(&self) -> Vec<AssertionAlgorithm> {
        ASYMMETRIC
            .into_iter()
            .filter(|a| {
                self.keys
                    .iter()
                    .any(|k| k.key.fits(*a) && k.alg.is_none_or(|alg| alg == *a))
            })
            .collect()
    }
}

/// The algorithms of `private_key_jwt`.
const ASYMMETRIC: [AssertionAlgorithm; 4] = [
    AssertionAlgorithm::Rs256,
    AssertionAlgorithm::Ps256,
    AssertionAlgorithm::Es256,
    AssertionAlgorithm::EdDsa,
];

impl PublicJwk {
    pub(crate) fn parse(index: usize, raw: RawJwk) -> Result<Self, JwksError> {
        let private = [&raw.d, &raw.p, &raw.q, &raw.dp, &raw.dq, &raw.qi, &raw.oth];
        if private.iter().any(|m| m.is_some()) {
            return Err(JwksError::PrivateKey { index });
        }
        let string = |value: &Option<Value>, member: &'static str| {
            value
                .as_ref()
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or(JwksError::MissingMember { index, member })
        };
        let bytes = |value: &Option<Value>, member: &'static str| {
            let text = string(value, member)?;
            URL_SAFE_NO_PAD
                .decode(text)
                .map_err(|_| JwksError::BadBase64 { index, member })
        };
        let optional = |value: &Option<Value>, member: &'static str| match value {
            None | Some(Value::Null) => Ok(None),
            Some(_) => string(value, member).map(Some),
        };
        let invalid = |_| JwksError::InvalidKey { index };
        let key = match string(&raw.kty, "kty")?.as_str() {
            "RSA" => {
                let n = bytes(&raw.n, "n")?;
                let e = bytes(&raw.e, "e")?;
                let n = strip_zeros(&n).to_vec();
                let e = strip_zeros(&e).to_vec();
                if !(256..=1024).contains(&n.len()) {
                    return Err(JwksError::RsaKeySize { index });
                }
                RsaPublicKeyComponents { n: &n, e: &e }
                    .to_parsed_public_key(&RSA_PKCS1_2048_8192_SHA256)
                    .map_err(invalid)?;
                PublicKey::Rsa { n, e }
            }
            "EC" => {
                if string(&raw.crv, "crv")? != "P-256" {
                    return Err(JwksError::UnsupportedCurve { index });
                }
                let x = bytes(&raw.x, "x")?;
                let y = bytes(&raw.y, "y")?;
                if x.len() != 32 || y.len() != 32 {
                    return Err(JwksError::InvalidKey { index });
                }
                let mut point = Vec::with_capacity(65);
                point.push(0x04);
                point.extend_from_slice(&x);
                point.extend_from_slice(&y);
                ParsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &point).map_err(invalid)?;
                PublicKey::P256(point)
            }
            "OKP" => {
                if string(&raw.crv, "crv")? != "Ed25519" {
                    return Err(JwksError::UnsupportedCurve { index });
                }
                let x = bytes(&raw.x, "x")?;
                if x.len() != 32 {
                    return Err(JwksError::InvalidKey { index });
                }
                ParsedPublicKey::new(&ED25519, &x).map_err(invalid)?;
                PublicKey::Ed25519(x)
            }
            _ => return Err(JwksError::UnsupportedKeyType { index }),
        };
        let alg = match optional(&raw.alg, "alg")? {
            None => None,
            Some(name) => {
                let alg = AssertionAlgorithm::from_name(&name)
                    .filter(|a| key.fits(*a))
                    .ok_or(JwksError::UnsupportedAlgorithm { index })?;
                Some(alg)
            }
        };
        if optional(&raw.use_, "use")?.is_some_and(|u| u != "sig") {
            return Err(JwksError::NotForSigning { index });
        }
        Ok(Self {
            kid: optional(&raw.kid, "kid")?,
            alg,
            key,
        })
    }
}

fn strip_zeros(bytes: &[u8]) -> &[u8] {
    let first = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    &bytes[first..]
}

/// The `jti`s of accepted assertions, each remembered until its assertion could no longer be
/// accepted (its `exp` plus the leeway), so that none is accepted twice (RFC 7523 §3, item 7).
///
/// It is bounded: it holds at most `capacity` entries, drops expired ones as new ones come,
/// and when it is full of unexpired ones it refuses new assertions
/// ([`AssertionRejection::ReplayCacheFull`]) rather than forget one that could then be
/// replayed. Keys are the client id and the `jti`, so clients cannot collide.
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use client_credentials::server::{AssertionRejection, ReplayCache};
///
/// let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
/// let until = now + Duration::from_secs(60);
/// let mut cache = ReplayCache::new(1);
/// assert_eq!(cache.remember(now, "app", "jti-1", until), Ok(()));
/// assert_eq!(cache.remember(now, "app", "jti-1", until), Err(AssertionRejection::Replayed));
/// assert_eq!(cache.remember(now, "app", "jti-2", until), Err(AssertionRejection::ReplayCacheFull));
/// // Once the first has expired, its room is free again.
/// assert_eq!(cache.remember(until, "app", "jti-2", until + Duration::from_secs(60)), Ok(()));
/// ```
#[derive(Clone)]
pub struct ReplayCache {
    capacity: usize,
    seen: HashMap<(String, String), SystemTime>,
    by_expiry: BTreeSet<(SystemTime, String, String)>,
}

impl fmt::Debug for ReplayCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReplayCache")
            .field("len", &self.seen.len())
            .field("capacity", &self.capacity)
            .finish()
    }
}

impl Default for ReplayCache {
    fn default() -> Self {
        Self::new(DEFAULT_REPLAY_CAPACITY)
    }
}

impl ReplayCache {
    /// An empty cache that holds at most `capacity` entries (at least one).
    #[must_use]
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            seen: HashMap::new(),
            by_expiry: BTreeSet::new(),
        }
    }

    /// How many entries it holds (expired ones included until they are dropped).
    #[must_use]
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    /// Whether it holds nothing.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }

    /// The most entries it holds.
    #[must_use]
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Drops the entries whose time has passed at `now`.
    pub fn evict_expired(&mut self, now: SystemTime) {
        while let Some(first) = self.by_expiry.first() {
            if first.0 > now {
                break;
            }
            if let Some((_, client, jti)) = self.by_expiry.pop_first() {
                self.seen.remove(&(client, jti));
            }
        }
    }

    /// Records that `client_id` used `jti` at `now`, to be refused until `until`.
    ///
    /// # Errors
    /// [`AssertionRejection::Replayed`] when the pair is remembered and `until` has not come
    /// for it; [`AssertionRejection::ReplayCacheFull`] when every entry is still unexpired.
    pub fn remember(
        &mut self,
        now: SystemTime,
        client_id: &str,
        jti: &str,
        until: SystemTime,
    ) -> Result<(), AssertionRejection> {
        self.evict_expired(now);
        let key = (client_id.to_owned(), jti.to_owned());
        if self.seen.contains_key(&key) {
            return Err(AssertionRejection::Replayed);
        }
        if self.seen.len() >= self.capacity {
            return Err(AssertionRejection::ReplayCacheFull);
        }
        if until <= now {
            // Nothing to remember: it can no longer be accepted anyway.
            return Ok(());
        }
        self.by_expiry.insert((until, key.0.clone(), key.1.clone()));
        self.seen.insert(key, until);
        Ok(())
    }
}

/// What a token endpoint checks client assertions against, and the state it needs to refuse
/// replays: the accepted audiences, the leeway on times, the longest lifetime, the accepted
/// algorithms, and a [`ReplayCache`]. The caller owns it (one per endpoint, behind a `Mutex`
/// when requests run in parallel) and passes it to
/// [`TokenEndpoint::authorize_at`](crate::server::TokenEndpoint::authorize_at) with the time.
///
/// An assertion is accepted when (RFC 7523 §3): it is a compact JWS of at most
/// [`MAX_ASSERTION_LEN`](crate::server::MAX_ASSERTION_LEN) bytes; its `alg` is RS256, PS256,
/// ES256 or EdDSA verified with one of the client's registered keys (matching the `kid` when
/// the header has one) for `private_key_jwt`, or HS256 keyed by the client secret for
/// `client_secret_jwt` (`none` never is); `iss` and `sub` are the client id; `aud` (a string
/// or an array) holds an accepted audience; `exp` has not passed; `iat` is neither in the
/// future nor older than the longest lifetime; `nbf`, when present, has come; `exp - iat` is
/// at most the longest lifetime; and its `jti` is new for this client. Times allow the
/// leeway.
///
/// ```
/// use std::time::Duration;
/// use client_credentials::server::AssertionVerifier;
///
/// let verifier = AssertionVerifier::new("https://auth.example.com/oauth2/token")
///     .audience("https://auth.example.com")
///     .leeway(Duration::from_secs(10));
/// assert_eq!(verifier.audiences().len(), 2);
/// ```
#[derive(Clone, Debug)]
pub struct AssertionVerifier {
    audiences: Vec<String>,
    leeway: Duration,
    max_lifetime: Duration,
    algorithms: Option<Vec<AssertionAlgorithm>>,
    replay: ReplayCache,
}

impl AssertionVerifier {
    /// A verifier that accepts assertions for `token_endpoint_url` (the `aud` RFC 7523 §3
    /// asks for), with the default leeway, longest lifetime and replay capacity.
    #[must_use]
    pub fn new(token_endpoint_url: impl Into<String>) -> Self {
        Self {
            audiences: vec![token_endpoint_url.into()],
            leeway: DEFAULT_ASSERTION_LEEWAY,
            max_lifetime: DEFAULT_MAX_ASSERTION_LIFETIME,
            algorithms: None,
            replay: ReplayCache::default(),
        }
    }

    /// Accepts this `aud` too: the issuer's identifier, say, which some clients send.
    #[must_use]
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        let audience = audience.into();
        if !self.audiences.contains(&audience) {
            self.audiences.push(audience);
        }
        self
    }

    /// The clock skew allowed on `exp`, `nbf` and `iat` (default
    /// [`DEFAULT_ASSERTION_LEEWAY`]; whole seconds).
    #[must_use]
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// The longest `exp - iat` accepted, and the oldest `iat` (default
    /// [`DEFAULT_MAX_ASSERTION_LIFETIME`]; whole seconds).
    #[must_use]
    pub fn max_lifetime(mut self, lifetime: Duration) -> Self {
        self.max_lifetime = lifetime;
        self
    }

    /// Accepts only these algorithms (default: all five).
    #[must_use]
    pub fn algorithms(mut self, algorithms: impl IntoIterator<Item = AssertionAlgorithm>) -> Self {
        self.algorithms = Some(algorithms.into_iter().collect());
        self
    }

    /// Remembers at most this many `jti`s at once (default [`DEFAULT_REPLAY_CAPACITY`]).
    /// Replaces the replay cache with an empty one.
    #[must_use]
    pub fn replay_capacity(mut self, capacity: usize) -> Self {
        self.replay = ReplayCache::new(capacity);
        self
    }

    /// The accepted audiences.
    #[must_use]
    pub fn audiences(&self) -> &[String] {
        &self.audiences
    }

    /// The replay cache.
    #[must_use]
    pub fn replay_cache(&self) -> &ReplayCache {
        &self.replay
    }

    /// Verifies `assertion` for `client_id` authenticating with `method` at `now`, and
    /// remembers its `jti`. `keys` are the client's registered keys (`private_key_jwt`),
    /// `secret` its secret (`client_secret_jwt`).
    pub(crate) fn verify(
        &mut self,
        now: SystemTime,
        client_id: &str,
        method: ClientAuthMethod,
        assertion: &str,
        keys: Option<&JwkSet>,
        secret: Option<&ClientSecret>,
    ) -> Result<(), AssertionRejection> {
        let jws = Jws::decode(assertion)?;
        if jws.header.contains_key("crit") {
            return Err(AssertionRejection::UnsupportedHeader);
        }
        let alg = jws
            .alg()
            .and_then(AssertionAlgorithm::from_name)
            .ok_or(AssertionRejection::UnsupportedAlgorithm)?;
        let symmetric = alg == AssertionAlgorithm::Hs256;
        match method {
            ClientAuthMethod::PrivateKeyJwt if !symmetric => {}
            ClientAuthMethod::ClientSecretJwt if symmetric => {}
            _ => return Err(AssertionRejection::AlgorithmNotAllowed),
        }
        if self.algorithms.as_ref().is_some_and(|a| !a.contains(&alg)) {
            return Err(AssertionRejection::AlgorithmNotAllowed);
        }
        let message = jws.signing_input.as_bytes();
        if symmetric {
            let secret = secret
                .map(|s| s.expose_secret().as_bytes())
                .filter(|s| s.len() >= 32)
                .ok_or(AssertionRejection::SecretUnusable)?;
            let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
            hmac::verify(&key, message, &jws.signature)
                .map_err(|_| AssertionRejection::BadSignature)?;
        } else {
            let kid = match jws.header.get("kid") {
                None | Some(Value::Null) => None,
                Some(Value::String(kid)) => Some(kid.as_str()),
                Some(_) => return Err(AssertionRejection::Malformed),
            };
            let named: Vec<&PublicJwk> = keys
                .map(|set| set.keys.as_slice())
                .unwrap_or_default()
                .iter()
                .filter(|k| kid.is_none_or(|kid| k.kid.as_deref() == Some(kid)))
                .collect();
            if named.is_empty() {
                return Err(AssertionRejection::UnknownKey);
            }
            let fitting = named
                .into_iter()
                .filter(|k| k.key.fits(alg) && k.alg.is_none_or(|a| a == alg));
            let mut any = false;
            let mut verified = false;
            for key in fitting {
                any = true;
                if key.key.verify(alg, message, &jws.signature) {
                    verified = true;
                    break;
                }
            }
            if !any {
                return Err(AssertionRejection::KeyMismatch);
            }
            if !verified {
                return Err(AssertionRejection::BadSignature);
            }
        }
        let jti = self.check_claims(now, client_id, &jws)?;
        let exp = numeric_date(&jws, "exp")?.unwrap_or_default();
        let until = UNIX_EPOCH + Duration::from_secs(exp.saturating_add(self.leeway.as_secs()));
        self.replay.remember(now, client_id, jti, until)
    }

    /// The claims of a verified assertion; returns its `jti`.
    fn check_claims<'a>(
        &self,
        now: SystemTime,
        client_id: &str,
        jws: &'a Jws<'_>,
    ) -> Result<&'a str, AssertionRejection> {
        let required = |name: &'static str| match jws.claims.get(name) {
            None | Some(Value::Null) => Err(AssertionRejection::MissingClaim(name)),
            Some(Value::String(s)) if !s.is_empty() => Ok(s.as_str()),
            Some(_) => Err(AssertionRejection::InvalidClaim(name)),
        };
        if required("iss")? != client_id {
            return Err(AssertionRejection::IssuerMismatch);
        }
        if required("sub")? != client_id {
            return Err(AssertionRejection::SubjectMismatch);
        }
        let audience_ok = match jws.claims.get("aud") {
            None | Some(Value::Null) => return Err(AssertionRejection::MissingClaim("aud")),
            Some(Value::String(aud)) => self.audiences.contains(aud),
            Some(Value::Array(auds)) => {
                if !auds.iter().all(Value::is_string) {
                    return Err(AssertionRejection::InvalidClaim("aud"));
                }
                auds.iter()
                    .filter_map(Value::as_str)
                    .any(|aud| self.audiences.iter().any(|a| a == aud))
            }
            Some(_) => return Err(AssertionRejection::InvalidClaim("aud")),
        };
        if !audience_ok {
            return Err(AssertionRejection::WrongAudience);
        }
        let now = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let leeway = self.leeway.as_secs();
        let max_lifetime = self.max_lifetime.as_secs();
        let exp = numeric_date(jws, "exp")?.ok_or(AssertionRejection::MissingClaim("exp"))?;
        let iat = numeric_date(jws, "iat")?.ok_or(AssertionRejection::MissingClaim("iat"))?;
        if exp.saturating_add(leeway) <= now {
            return Err(AssertionRejection::Expired);
        }
        if iat > now.saturating_add(leeway) {
            return Err(AssertionRejection::IssuedInFuture);
        }
        if let Some(nbf) = numeric_date(jws, "nbf")?
            && nbf > now.saturating_add(leeway)
        {
            return Err(AssertionRejection::NotYetValid);
        }
        if now.saturating_sub(iat) > max_lifetime.saturating_add(leeway) {
            return Err(AssertionRejection::TooOld);
        }
        if exp < iat {
            return Err(AssertionRejection::InvalidClaim("exp"));
        }
        if exp - iat > max_lifetime {
            return Err(AssertionRejection::LifetimeTooLong);
        }
        let jti = required("jti")?;
        if jti.len() > MAX_JTI_LEN {
            return Err(AssertionRejection::InvalidClaim("jti"));
        }
        Ok(jti)
    }
}

/// A NumericDate claim (RFC 7519 §2): seconds since the epoch, an integer or a fraction
/// (rounded down); `None` when absent.
pub(crate) fn numeric_date(
    jws: &Jws<'_>,
    name: &'static str,
) -> Result<Option<u64>, AssertionRejection> {
    match jws.claims.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => {
            if let Some(secs) = n.as_u64() {
                return Ok(Some(secs));
            }
            match n.as_f64() {
                // Truncation is the intent: fractions of a second round down.
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                Some(f) if (0.0..1.0e15).contains(&f) => Ok(Some(f as u64)),
                _ => Err(AssertionRejection::InvalidClaim(name)),
            }
        }
        Some(_) => Err(AssertionRejection::InvalidClaim(name)),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)] // Tests: a panic is a failure report.

    use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair as _};
    use serde_json::json;

    use super::*;
    use crate::assertion::AssertionKey;
    use crate::server::MAX_ASSERTION_LEN;
    use crate::server::{RegisteredClient, Rejection, TokenEndpoint};
    use crate::{AuthMethod, Config};

    const TOKEN_URL: &str = "https://auth.example.com/token";
    const ISSUER: &str = "https://auth.example.com";
    const HS_SECRET: &str = "a-client-secret-of-32-bytes-or-more!";
    const T0: u64 = 1_800_000_000;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn key(pem: &str, kid: &str) -> AssertionKey {
        AssertionKey::from_pem(pem).unwrap().with_key_id(kid)
    }

    fn rsa() -> AssertionKey {
        key(include_str!("../../tests/keys/rsa-2048.pem"), "rsa")
    }

    /// The RSA key again, registered for PS256 only (its JWK says `alg: PS256`).
    fn rsa_pss() -> AssertionKey {
        key(include_str!("../../tests/keys/rsa-2048.pem"), "rsa-pss")
            .with_algorithm(AssertionAlgorithm::Ps256)
            .unwrap()
    }

    fn ec() -> AssertionKey {
        key(include_str!("../../tests/keys/ec-p256.pem"), "ec")
    }

    fn ed() -> AssertionKey {
        key(include_str!("../../tests/keys/ed25519.pem"), "ed")
    }

    fn jwks(keys: &[&AssertionKey]) -> JwkSet {
        let keys: Vec<Value> = keys.iter().map(|k| k.public_jwk()).collect();
        JwkSet::from_value(&json!({ "keys": keys })).unwrap()
    }

    fn b64(bytes: impl AsRef<[u8]>) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// A JWS over `header` and `claims`, signed by `key`.
    fn signed(key: &AssertionKey, header: &Value, claims: &Value) -> String {
        let input = format!("{}.{}", b64(header.to_string()), b64(claims.to_string()));
        let signature = key.sign(input.as_bytes()).unwrap();
        format!("{input}.{}", b64(signature))
    }

    fn hs256(secret: &str, claims: &Value) -> String {
        let header = json!({"alg": "HS256", "typ": "JWT"});
        let input = format!("{}.{}", b64(header.to_string()), b64(claims.to_string()));
        let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
        format!("{input}.{}", b64(hmac::sign(&key, input.as_bytes())))
    }

    fn claims() -> Value {
        json!({
            "iss": "app", "sub": "app", "aud": TOKEN_URL, "jti": "jti-1",
            "iat": T0, "exp": T0 + 120,
        })
    }

    fn header(key: &AssertionKey) -> Value {
        json!({"alg": key.algorithm().name(), "typ": "JWT", "kid": key.key_id()})
    }

    fn verifier() -> AssertionVerifier {
        AssertionVerifier::new(TOKEN_URL).audience(ISSUER)
    }

    fn client() -> RegisteredClient {
        RegisteredClient::new("app", HS_SECRET)
            .scopes(["read"])
            .jwks(jwks(&[&rsa(), &rsa_pss(), &ec(), &ed()]))
    }

    fn form(assertion: &str) -> http::Request<Vec<u8>> {
        let body = form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "client_credentials")
            .append_pair("client_id", "app")
            .append_pair(
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            )
            .append_pair("client_assertion", assertion)
            .finish();
        http::Request::post("/token")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.into_bytes())
            .unwrap()
    }

    /// The whole endpoint: parse, then authorise at `now`.
    fn outcome(
        verifier: &mut AssertionVerifier,
        now: u64,
        request: &http::Request<Vec<u8>>,
    ) -> Result<(), Rejection> {
        let endpoint = TokenEndpoint::builder()
            .scope("read", "Read")
            .build()
            .unwrap();
        let client = client();
        let result = endpoint.parse(request).and_then(|incoming| {
            endpoint.authorize_at(at(now), &incoming, Some(&client), verifier)
        });
        match result {
            Ok(grant) => {
                assert_eq!(grant.client_id(), "app");
                Ok(())
            }
            Err(e) => {
                assert_eq!(e.code().as_str(), "invalid_client", "{e:?}");
                assert_eq!(e.status(), 401, "{e:?}");
                let shown = format!("{e} {e:?}");
                let assertion = form_urlencoded::parse(request.body())
                    .find(|(n, _)| n == "client_assertion")
                    .map(|(_, v)| v.into_owned())
                    .unwrap_or_default();
                for segment in assertion.split('.').filter(|s| s.len() > 8) {
                    assert!(!shown.contains(segment), "{shown}");
                }
                assert!(!shown.contains(HS_SECRET));
                Err(e.reason().clone())
            }
        }
    }

    /// The request the client built, as a server framework hands it over.
    fn plain(request: crate::HttpRequest) -> http::Request<Vec<u8>> {
        let (parts, body) = request.into_parts();
        http::Request::from_parts(parts, body.as_bytes().to_vec())
    }

    fn refused(why: AssertionRejection) -> Result<(), Rejection> {
        Err(Rejection::InvalidAssertion(why))
    }

    #[test]
    fn assertions_made_by_the_client_are_accepted_once() {
        for (method, key) in [
            (AuthMethod::PrivateKeyJwt, Some(rsa())),
            (AuthMethod::PrivateKeyJwt, Some(rsa_pss())),
            (AuthMethod::PrivateKeyJwt, Some(ec())),
            (AuthMethod::PrivateKeyJwt, Some(ed())),
            (AuthMethod::ClientSecretJwt, None),
        ] {
            let mut builder = Config::builder().token_url(TOKEN_URL).client_id("app");
            builder = match key {
                Some(key) => builder.private_key(key),
                None => builder
                    .client_secret(HS_SECRET)
                    .auth_method(AuthMethod::ClientSecretJwt),
            };
            let config = builder.build().unwrap();
            let request = plain(config.default_request().to_http_at(at(T0), 7));
            let mut verifier = verifier();
            assert_eq!(
                outcome(&mut verifier, T0 + 5, &request),
                Ok(()),
                "{method:?}"
            );
            assert_eq!(verifier.replay_cache().len(), 1);
            assert_eq!(
                outcome(&mut verifier, T0 + 6, &request),
                refused(AssertionRejection::Replayed),
                "{method:?}"
            );
            // A new jti is a new assertion.
            let next = config.default_request().to_http_at(at(T0 + 1), 8);
            assert_eq!(outcome(&mut verifier, T0 + 6, &plain(next)), Ok(()));
        }
    }

    #[test]
    fn every_check_has_its_refusal() {
        let other = Ed25519KeyPair::generate().unwrap();
        let stranger = |claims: &Value| {
            let header = json!({"alg": "EdDSA", "kid": "ed"});
            let input = format!("{}.{}", b64(header.to_string()), b64(claims.to_string()));
            format!("{input}.{}", b64(other.sign(input.as_bytes())))
        };
        let with = |changes: Value| {
            let mut c = claims();
            for (k, v) in changes.as_object().unwrap() {
                if v.is_null() {
                    c.as_object_mut().unwrap().remove(k);
                } else {
                    c[k] = v.clone();
                }
            }
            c
        };
        let ec = ec();
        let good = |claims: &Value| signed(&ec, &header(&ec), claims);
        let none = format!(
            "{}.{}.{}",
            b64(r#"{"alg":"none"}"#),
            b64(claims().to_string()),
            b64("x")
        );
        let mut tampered = good(&claims());
        tampered.insert_str(tampered.rfind('.').unwrap() + 1, "AAAA");
        let es_as_ed = signed(&ec, &json!({"alg": "EdDSA", "kid": "ec"}), &claims());
        use AssertionRejection as R;
        let cases: Vec<(&str, String, R)> = vec![
            ("wrong key", stranger(&claims()), R::BadSignature),
            ("tampered signature", tampered, R::BadSignature),
            (
                "unknown kid",
                signed(&ec, &json!({"alg": "ES256", "kid": "nope"}), &claims()),
                R::UnknownKey,
            ),
            ("alg not the key type", es_as_ed, R::KeyMismatch),
            (
                "wrong aud",
                good(&with(json!({"aud": "https://other.example/token"}))),
                R::WrongAudience,
            ),
            (
                "aud array without us",
                good(&with(json!({"aud": ["x", "y"]}))),
                R::WrongAudience,
            ),
            (
                "aud not a string",
                good(&with(json!({"aud": 7}))),
                R::InvalidClaim("aud"),
            ),
            (
                "no aud",
                good(&with(json!({"aud": null}))),
                R::MissingClaim("aud"),
            ),
            (
                "expired",
                good(&with(json!({"iat": T0 - 200, "exp": T0 - 60}))),
                R::Expired,
            ),
            (
                "iat in the future",
                good(&with(json!({"iat": T0 + 120, "exp": T0 + 240}))),
                R::IssuedInFuture,
            ),
            (
                "nbf in the future",
                good(&with(json!({"nbf": T0 + 100}))),
                R::NotYetValid,
            ),
            (
                "iat too old",
                good(&with(json!({"iat": T0 - 1000, "exp": T0 + 60}))),
                R::TooOld,
            ),
            (
                "lifetime too long",
                good(&with(json!({"exp": T0 + 3600}))),
                R::LifetimeTooLong,
            ),
            (
                "no exp",
                good(&with(json!({"exp": null}))),
                R::MissingClaim("exp"),
            ),
            (
                "string exp",
                good(&with(json!({"exp": "soon"}))),
                R::InvalidClaim("exp"),
            ),
            (
                "no iat",
                good(&with(json!({"iat": null}))),
                R::MissingClaim("iat"),
            ),
            (
                "missing jti",
                good(&with(json!({"jti": null}))),
                R::MissingClaim("jti"),
            ),
            (
                "empty jti",
                good(&with(json!({"jti": ""}))),
                R::InvalidClaim("jti"),
            ),
            (
                "huge jti",
                good(&with(json!({"jti": "j".repeat(300)}))),
                R::InvalidClaim("jti"),
            ),
            (
                "iss not the client",
                good(&with(json!({"iss": "mallory"}))),
                R::IssuerMismatch,
            ),
            (
                "sub not the client",
                good(&with(json!({"sub": "mallory"}))),
                R::SubjectMismatch,
            ),
            (
                "critical header",
                signed(
                    &ec,
                    &json!({"alg": "ES256", "kid": "ec", "crit": ["b64"]}),
                    &claims(),
                ),
                R::UnsupportedHeader,
            ),
            ("alg none", none, R::UnsupportedAlgorithm),
            (
                "unknown alg",
                signed(&ec, &json!({"alg": "ES512"}), &claims()),
                R::UnsupportedAlgorithm,
            ),
            (
                "two segments",
                "eyJhbGciOiJFUzI1NiJ9.e30".to_owned(),
                R::Malformed,
            ),
            (
                "bad base64",
                "eyJhbGciOiJFUzI1NiJ9.!!!.AAAA".to_owned(),
                R::Malformed,
            ),
            ("garbage", "not a jwt".to_owned(), R::Malformed),
            (
                "huge",
                format!(
                    "{}.{}.AAAA",
                    b64(r#"{"alg":"ES256"}"#),
                    "A".repeat(MAX_ASSERTION_LEN)
                ),
                R::TooLarge {
                    limit: MAX_ASSERTION_LEN,
                },
            ),
            (
                "HS256 keyed by another secret",
                hs256("another", &claims()),
                R::BadSignature,
            ),
        ];
        for (name, assertion, why) in cases {
            let mut verifier = verifier();
            assert_eq!(
                outcome(&mut verifier, T0 + 5, &form(&assertion)),
                refused(why),
                "{name}"
            );
            assert!(
                verifier.replay_cache().is_empty(),
                "{name}: nothing remembered"
            );
        }
        // Sanity: the unchanged claims pass, with the issuer as audience too, and within the
        // leeway.
        let mut v = verifier();
        assert_eq!(outcome(&mut v, T0 + 5, &form(&good(&claims()))), Ok(()));
        let issuer_aud = good(&with(json!({"aud": [ISSUER, "x"], "jti": "2"})));
        assert_eq!(outcome(&mut v, T0 + 5, &form(&issuer_aud)), Ok(()));
        let skewed = good(&with(json!({"iat": T0 + 20, "exp": T0 + 140, "jti": "3"})));
        assert_eq!(outcome(&mut v, T0, &form(&skewed)), Ok(()));
        let late = good(&with(json!({"jti": "4"})));
        assert_eq!(outcome(&mut v, T0 + 149, &form(&late)), Ok(()));
        assert_eq!(
            outcome(&mut v, T0 + 150, &form(&good(&with(json!({"jti": "5"}))))),
            refused(R::Expired)
        );
    }

    #[test]
    fn the_method_follows_the_alg_and_the_client_registration() {
        let endpoint = TokenEndpoint::builder()
            .scope("read", "Read")
            .build()
            .unwrap();
        let mut v = verifier();
        // HS256 is client_secret_jwt: keyed by the secret, refused without a usable one.
        let keys_only = RegisteredClient::with_jwks("app", jwks(&[&ec()])).scopes(["read"]);
        let incoming = endpoint.parse(&form(&hs256(HS_SECRET, &claims()))).unwrap();
        assert_eq!(
            incoming.credentials().method(),
            ClientAuthMethod::ClientSecretJwt
        );
        let e = endpoint
            .authorize_at(at(T0), &incoming, Some(&keys_only), &mut v)
            .unwrap_err();
        assert_eq!(
            e.reason(),
            &Rejection::InvalidAssertion(AssertionRejection::SecretUnusable)
        );
        // A secret-only client has no keys for private_key_jwt.
        let ec = ec();
        let secret_only = RegisteredClient::new("app", HS_SECRET).scopes(["read"]);
        let incoming = endpoint
            .parse(&form(&signed(&ec, &header(&ec), &claims())))
            .unwrap();
        assert_eq!(
            incoming.credentials().method(),
            ClientAuthMethod::PrivateKeyJwt
        );
        let e = endpoint
            .authorize_at(at(T0), &incoming, Some(&secret_only), &mut v)
            .unwrap_err();
        assert_eq!(
            e.reason(),
            &Rejection::InvalidAssertion(AssertionRejection::UnknownKey)
        );
        // A client barred from the method is refused after its assertion verified.
        let barred = client().auth_methods([ClientAuthMethod::ClientSecretBasic]);
        let e = endpoint
            .authorize_at(at(T0), &incoming, Some(&barred), &mut v)
            .unwrap_err();
        assert_eq!(
            e.reason(),
            &Rejection::AuthMethodNotAllowedForClient(ClientAuthMethod::PrivateKeyJwt)
        );
        // Without the time and a verifier, an assertion is refused, never waved through.
        let e = endpoint.authorize(&incoming, Some(&client())).unwrap_err();
        assert_eq!(
            e.reason(),
            &Rejection::InvalidAssertion(AssertionRejection::NeedsVerifier)
        );
        // The verifier can narrow the algorithms.
        let mut only_ed = verifier().algorithms([AssertionAlgorithm::EdDsa]);
        let e = endpoint
            .authorize_at(at(T0), &incoming, Some(&client()), &mut only_ed)
            .unwrap_err();
        assert_eq!(
            e.reason(),
            &Rejection::InvalidAssertion(AssertionRejection::AlgorithmNotAllowed)
        );
        // An empty secret never matches a Basic or post request.
        let no_secret = RegisteredClient::with_jwks("app", jwks(&[&ec]));
        let post = http::Request::post("/token")
            .header("content-type", "application/x-www-form-urlencoded")
            .header("authorization", "Basic YXBwOg==")
            .body(b"grant_type=client_credentials".to_vec())
            .unwrap();
        let incoming = endpoint.parse(&post).unwrap();
        let e = endpoint.authorize(&incoming, Some(&no_secret)).unwrap_err();
        assert_eq!(e.reason(), &Rejection::WrongSecret);
    }

    #[test]
    fn request_syntax_of_assertions() {
        let endpoint = TokenEndpoint::builder().build().unwrap();
        let parse = |body: &str, basic: bool| {
            let mut b = http::Request::post("/token")
                .header("content-type", "application/x-www-form-urlencoded");
            if basic {
                b = b.header("authorization", "Basic YXBwOnNlY3JldA==");
            }
            endpoint
                .parse(&b.body(body.as_bytes().to_vec()).unwrap())
                .map(|i| (i.client_id().to_owned(), i.credentials().method()))
                .map_err(|e| (e.code().as_str().to_owned(), e.reason().clone()))
        };
        let ec = ec();
        let jwt = signed(&ec, &header(&ec), &claims());
        let jbt = "urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer";
        let grant = "grant_type=client_credentials";
        assert_eq!(
            parse(
                &format!("{grant}&client_assertion_type={jbt}&client_assertion={jwt}"),
                false
            ),
            Ok(("app".to_owned(), ClientAuthMethod::PrivateKeyJwt)),
            "the client id comes from sub without client_id"
        );
        let incoming = endpoint.parse(&form(&jwt)).unwrap();
        let shown = format!("{incoming:?} {:?}", incoming.credentials());
        for segment in jwt.split('.') {
            assert!(!shown.contains(segment), "{shown}");
        }
        assert_eq!(
            incoming
                .credentials()
                .assertion()
                .map(|a| a.expose_secret()),
            Some(jwt.as_str())
        );
        let invalid_request =
            |p: &'static str| Err(("invalid_request".to_owned(), Rejection::MissingParameter(p)));
        assert_eq!(
            parse(&format!("{grant}&client_assertion={jwt}"), false),
            invalid_request("client_assertion_type")
        );
        assert_eq!(
            parse(&format!("{grant}&client_assertion_type={jbt}"), false),
            invalid_request("client_assertion")
        );
        assert_eq!(
            parse(
                &format!("{grant}&client_assertion_type=saml&client_assertion={jwt}"),
                false
            ),
            Err((
                "invalid_client".to_owned(),
                Rejection::InvalidAssertion(AssertionRejection::UnsupportedAssertionType)
            ))
        );
        let both = Err((
            "invalid_request".to_owned(),
            Rejection::CredentialsInHeaderAndBody,
        ));
        assert_eq!(
            parse(
                &format!("{grant}&client_assertion_type={jbt}&client_assertion={jwt}"),
                true
            ),
            both
        );
        assert_eq!(
            parse(
                &format!(
                    "{grant}&client_secret=s&client_id=app&client_assertion_type={jbt}&client_assertion={jwt}"
                ),
                false
            ),
            both
        );
        let none = format!(
            "{}.{}.AAAA",
            b64(r#"{"alg":"none"}"#),
            b64(claims().to_string())
        );
        assert_eq!(
            parse(
                &format!("{grant}&client_assertion_type={jbt}&client_assertion={none}"),
                false
            ),
            Err((
                "invalid_client".to_owned(),
                Rejection::InvalidAssertion(AssertionRejection::UnsupportedAlgorithm)
            ))
        );
        let secrets_only = TokenEndpoint::builder()
            .auth_methods([ClientAuthMethod::ClientSecretBasic])
            .build()
            .unwrap();
        let e = secrets_only.parse(&form(&jwt)).unwrap_err();
        assert_eq!(
            e.reason(),
            &Rejection::AuthMethodNotAccepted(ClientAuthMethod::PrivateKeyJwt)
        );
    }

    #[test]
    fn jwks_parsing() {
        let ok = JwkSet::from_value(
            &json!({"keys": [rsa().public_jwk(), ec().public_jwk(), ed().public_jwk()]}),
        )
        .unwrap();
        assert_eq!(ok.len(), 3);
        assert_eq!(
            ok.key_ids().collect::<Vec<_>>(),
            [Some("rsa"), Some("ec"), Some("ed")]
        );
        assert_eq!(
            ok.algorithms(),
            [
                AssertionAlgorithm::Rs256,
                AssertionAlgorithm::Es256,
                AssertionAlgorithm::EdDsa
            ]
        );
        let shown = format!("{ok:?}");
        assert_eq!(
            shown,
            r#"JwkSet { keys: [("RSA", Some("rsa")), ("EC", Some("ec")), ("OKP", Some("ed"))] }"#
        );
        let ec = ec().public_jwk();
        let with = |base: &Value, member: &str, value: Value| {
            let mut k = base.clone();
            k[member] = value;
            json!({"keys": [k]})
        };
        let small_rsa = json!({"keys": [{"kty": "RSA", "n": b64([0xc5; 128]), "e": "AQAB"}]});
        let off_curve = with(&ec, "y", Value::from(b64([1; 32])));
        use JwksError as E;
        for (name, set, error) in [
            ("not a set", json!([ec.clone()]), E::NotAJwkSet),
            ("no keys", json!({"keys": []}), E::NoKeys),
            (
                "too many",
                json!({"keys": vec![ec.clone(); 17]}),
                E::TooManyKeys,
            ),
            (
                "oct",
                json!({"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}),
                E::UnsupportedKeyType { index: 0 },
            ),
            (
                "P-384",
                with(&ec, "crv", "P-384".into()),
                E::UnsupportedCurve { index: 0 },
            ),
            (
                "no x",
                with(&ec, "x", Value::Null),
                E::MissingMember {
                    index: 0,
                    member: "x",
                },
            ),
            (
                "padded x",
                with(&ec, "x", format!("{}=", ec["x"].as_str().unwrap()).into()),
                E::BadBase64 {
                    index: 0,
                    member: "x",
                },
            ),
            (
                "short x",
                with(&ec, "x", b64([1; 31]).into()),
                E::InvalidKey { index: 0 },
            ),
            ("off the curve", off_curve, E::InvalidKey { index: 0 }),
            ("1024-bit RSA", small_rsa, E::RsaKeySize { index: 0 }),
            (
                "private",
                with(&ec, "d", b64([1; 32]).into()),
                E::PrivateKey { index: 0 },
            ),
            (
                "alg for another kty",
                with(&ec, "alg", "RS256".into()),
                E::UnsupportedAlgorithm { index: 0 },
            ),
            (
                "alg none",
                with(&ec, "alg", "none".into()),
                E::UnsupportedAlgorithm { index: 0 },
            ),
            (
                "use enc",
                with(&ec, "use", "enc".into()),
                E::NotForSigning { index: 0 },
            ),
            (
                "kid not a string",
                with(&ec, "kid", 7.into()),
                E::MissingMember {
                    index: 0,
                    member: "kid",
                },
            ),
        ] {
            assert_eq!(JwkSet::from_value(&set), Err(error.clone()), "{name}");
            assert_eq!(JwkSet::from_json(&set.to_string()), Err(error), "{name}");
        }
        assert_eq!(JwkSet::from_json("{"), Err(E::NotAJwkSet));
    }

    #[test]
    fn the_replay_cache_is_bounded_and_forgets_expired_entries() {
        let mut cache = ReplayCache::new(3);
        let until = at(T0 + 100);
        for jti in ["a", "b", "c"] {
            assert_eq!(cache.remember(at(T0), "app", jti, until), Ok(()));
        }
        assert_eq!(
            cache.remember(at(T0), "other", "a", until),
            Err(AssertionRejection::ReplayCacheFull)
        );
        assert_eq!(
            cache.remember(at(T0 + 99), "app", "a", until),
            Err(AssertionRejection::Replayed)
        );
        assert_eq!(cache.len(), 3);
        // At `until`, all three are forgotten; the same jti is then too old to be accepted
        // by the verifier anyway.
        assert_eq!(
            cache.remember(at(T0 + 100), "other", "a", at(T0 + 200)),
            Ok(())
        );
        assert_eq!(cache.len(), 1);
        assert_eq!(
            cache.remember(at(T0 + 100), "app", "a", at(T0 + 100)),
            Ok(()),
            "nothing to keep"
        );
        assert_eq!(cache.len(), 1);
        cache.evict_expired(at(T0 + 1000));
        assert!(cache.is_empty());
        assert_eq!(format!("{cache:?}"), "ReplayCache { len: 0, capacity: 3 }");
        assert_eq!(ReplayCache::new(0).capacity(), 1);
    }

    #[test]
    fn a_full_cache_refuses_rather_than_forgets() {
        let ec = ec();
        let mut v = verifier().replay_capacity(1);
        let first = signed(&ec, &header(&ec), &claims());
        let mut c = claims();
        c["jti"] = "jti-2".into();
        let second = signed(&ec, &header(&ec), &c);
        assert_eq!(outcome(&mut v, T0, &form(&first)), Ok(()));
        assert_eq!(
            outcome(&mut v, T0, &form(&second)),
            refused(AssertionRejection::ReplayCacheFull)
        );
        assert_eq!(
            outcome(&mut v, T0 + 60, &form(&first)),
            refused(AssertionRejection::Replayed)
        );
        // Once the first can no longer be accepted (exp + leeway), there is room again.
        assert_eq!(
            outcome(&mut v, T0 + 150, &form(&first)),
            refused(AssertionRejection::Expired)
        );
        let mut c = claims();
        c["jti"] = "jti-3".into();
        c["iat"] = (T0 + 140).into();
        c["exp"] = (T0 + 260).into();
        assert_eq!(
            outcome(&mut v, T0 + 150, &form(&signed(&ec, &header(&ec), &c))),
            Ok(())
        );
    }

    #[test]
    fn an_ed25519_key_from_elsewhere() {
        // A key made outside this crate, registered by its raw JWK members.
        let pair = Ed25519KeyPair::generate().unwrap();
        let set = json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "x": b64(pair.public_key().as_ref())}]});
        let set = JwkSet::from_value(&set).unwrap();
        let header = json!({"alg": "EdDSA"});
        let input = format!("{}.{}", b64(header.to_string()), b64(claims().to_string()));
        let jwt = format!("{input}.{}", b64(pair.sign(input.as_bytes())));
        let mut v = verifier();
        assert_eq!(
            v.verify(
                at(T0),
                "app",
                ClientAuthMethod::PrivateKeyJwt,
                &jwt,
                Some(&set),
                None
            ),
            Ok(())
        );
        assert_eq!(
            v.verify(
                at(T0),
                "app",
                ClientAuthMethod::ClientSecretJwt,
                &jwt,
                Some(&set),
                None
            ),
            Err(AssertionRejection::AlgorithmNotAllowed)
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 256, .. Default::default() })]

        /// No assertion, however malformed, makes the verifier panic; each is a typed
        /// refusal and nothing is remembered.
        #[test]
        fn arbitrary_assertions_are_refused_without_panics(
            header in "[ -~]{0,60}",
            claims in "[ -~]{0,80}",
            signature in "[A-Za-z0-9_-]{0,90}",
            raw in "[ -~]{0,200}",
            alg in proptest::sample::select(vec!["RS256", "PS256", "ES256", "EdDSA", "HS256", "none", "", "rs256"]),
        ) {
            let set = jwks(&[&rsa(), &ec(), &ed()]);
            let secret = ClientSecret::new(HS_SECRET);
            let mut v = verifier();
            let structured = format!(
                "{}.{}.{signature}",
                b64(format!(r#"{{"alg":"{alg}",{header}}}"#)),
                b64(format!(r#"{{"iss":"app","sub":"app",{claims}}}"#)),
            );
            let plain = format!("{}.{}.{signature}", b64(&header), b64(&claims));
            for assertion in [structured, plain, raw] {
                for method in [ClientAuthMethod::PrivateKeyJwt, ClientAuthMethod::ClientSecretJwt] {
                    let result = v.verify(at(T0), "app", method, &assertion, Some(&set), Some(&secret));
                    proptest::prop_assert!(result.is_err());
                    let shown = format!("{:?} {}", result, result.unwrap_err());
                    proptest::prop_assert!(!shown.contains(HS_SECRET));
                }
            }
            proptest::prop_assert!(v.replay_cache().is_empty());
        }

        /// No JWK Set text makes the parser panic.
        #[test]
        fn arbitrary_jwks_are_refused_without_panics(
            text in "[ -~]{0,200}",
            member in "[a-z]{1,3}",
            value in "[A-Za-z0-9_=-]{0,90}",
            kty in proptest::sample::select(vec!["RSA", "EC", "OKP", "oct", ""]),
        ) {
            let _ = JwkSet::from_json(&text);
            let set = json!({"keys": [{"kty": kty, "crv": "P-256", "x": value, "y": value, "n": value, "e": "AQAB", member: value}]});
            let _ = JwkSet::from_value(&set);
        }
    }
}
