//! DPoP on the server side (RFC 9449): why a proof was refused ([`DpopError`]), the answers
//! it owes (`400 invalid_dpop_proof` / `use_dpop_nonce` at the token endpoint,
//! `WWW-Authenticate: DPoP …` at a resource server, [`DpopChallenge`]), and, with the `jwt`
//! feature, the proof verifier ([`DpopVerifier`]), the token endpoint's binding
//! ([`TokenEndpoint::verify_dpop`]) and the resource server's extraction ([`dpop_token`]).
//!
//! Like the rest of the module it is sans-IO: the time, the request's absolute URI (as the
//! client addressed it, scheme and host included) and the nonce the server currently wants
//! are inputs; the server draws and rotates its nonces itself.

use std::fmt;

use http::{HeaderName, HeaderValue, StatusCode};

use crate::error::ErrorCode;
use crate::server::error::{EndpointError, Rejection};

/// The `DPoP-Nonce` response header (RFC 9449 §8), in the lower case HTTP/2 needs.
pub const DPOP_NONCE: HeaderName = HeaderName::from_static("dpop-nonce");

/// The largest `DPoP` header accepted: 8 KiB. An ES256 or EdDSA proof takes under 1 KiB, an
/// RS256 one with its 4096-bit key about 2 KiB.
pub const MAX_DPOP_PROOF_LEN: usize = 8 * 1024;

/// The longest proof `jti` accepted (this crate's client sends 22 characters; UUIDs are 36).
pub const MAX_DPOP_JTI_LEN: usize = 256;

/// An RFC 9449 error code, or one of RFC 6750 that DPoP resource servers answer with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DpopErrorCode {
    /// `invalid_dpop_proof` (RFC 9449 §5 and §7.1): the proof is missing, malformed, or does
    /// not fit the request.
    InvalidDpopProof,
    /// `use_dpop_nonce` (RFC 9449 §8 and §9): the proof lacks the server's current nonce;
    /// the answer carries a fresh one in `DPoP-Nonce`.
    UseDpopNonce,
    /// `invalid_token` (RFC 6750 §3.1, RFC 9449 §7.1): the token is not bound to the proof's
    /// key, or a DPoP-bound token came as a bearer token.
    InvalidToken,
    /// `invalid_request` (RFC 6750 §3.1): the `Authorization` header is malformed or
    /// repeated.
    InvalidRequest,
}

impl DpopErrorCode {
    /// The code as sent.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidDpopProof => "invalid_dpop_proof",
            Self::UseDpopNonce => "use_dpop_nonce",
            Self::InvalidToken => "invalid_token",
            Self::InvalidRequest => "invalid_request",
        }
    }

    /// The status a resource server answers the code with: 400 for `invalid_request`, 401
    /// for the others.
    #[must_use]
    pub fn resource_status(self) -> StatusCode {
        match self {
            Self::InvalidRequest => StatusCode::BAD_REQUEST,
            _ => StatusCode::UNAUTHORIZED,
        }
    }
}

impl fmt::Display for DpopErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a DPoP proof, or a DPoP-bound token, was refused. None holds any part of the proof or
/// of a token: only claim names. [`DpopError::code`] gives the RFC 9449 error code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DpopError {
    /// The request has no `DPoP` header (`invalid_dpop_proof`).
    Missing,
    /// The request has more than one `DPoP` header (RFC 9449 §4.3, check 1;
    /// `invalid_dpop_proof`).
    Multiple,
    /// The `DPoP` header is longer than the limit (`invalid_dpop_proof`).
    TooLarge {
        /// The limit, in bytes ([`MAX_DPOP_PROOF_LEN`]).
        limit: usize,
    },
    /// Not a JWS in compact form: three base64url segments, the first two JSON objects
    /// (`invalid_dpop_proof`).
    Malformed,
    /// The header's `typ` is not `dpop+jwt` (`invalid_dpop_proof`).
    WrongType,
    /// The `alg` is missing, symmetric, `none`, or not one the verifier accepts
    /// (`invalid_dpop_proof`).
    UnsupportedAlgorithm,
    /// The header has a `crit` member: extensions this verifier does not understand
    /// (`invalid_dpop_proof`).
    CriticalHeader,
    /// The header has no `jwk` object (`invalid_dpop_proof`).
    MissingKey,
    /// The header's `jwk` holds private key members (`d`, `p`…) (`invalid_dpop_proof`).
    PrivateKey,
    /// The header's `jwk` is not a usable public key: an unsupported `kty` or curve, a point
    /// off the curve, a short RSA modulus… (`invalid_dpop_proof`).
    InvalidKey,
    /// The `alg` does not fit the `jwk`: ES256 with an RSA key, say (`invalid_dpop_proof`).
    KeyMismatch,
    /// The signature does not verify with the header's `jwk` (`invalid_dpop_proof`).
    BadSignature,
    /// A required claim is missing: `jti`, `htm`, `htu`, `iat`, or `ath` on a resource
    /// request (`invalid_dpop_proof`).
    MissingClaim(&'static str),
    /// A claim has the wrong type, or a `jti` is longer than [`MAX_DPOP_JTI_LEN`]
    /// (`invalid_dpop_proof`).
    InvalidClaim(&'static str),
    /// `htm` is not the request's method (`invalid_dpop_proof`).
    MethodMismatch,
    /// `htu` is not the request's URI without query and fragment (`invalid_dpop_proof`).
    UriMismatch,
    /// `iat` is older than the verifier's window (`invalid_dpop_proof`).
    TooOld,
    /// `iat` is further in the future than the verifier's skew allows (`invalid_dpop_proof`).
    IssuedInFuture,
    /// The server requires a nonce and the proof has none (`use_dpop_nonce`).
    NonceRequired,
    /// The proof's `nonce` is not the one the server requires now (`use_dpop_nonce`).
    WrongNonce,
    /// `ath` is not the hash of the access token the request carries (`invalid_dpop_proof`).
    AccessTokenHashMismatch,
    /// A proof with this `jti` and key was accepted within the window: a replay
    /// (`invalid_dpop_proof`).
    Replayed,
    /// The replay cache is full of unexpired proofs: a flood. Refused rather than forgetting
    /// one that could then be replayed (`invalid_dpop_proof`).
    ReplayCacheFull,
    /// No `Authorization` header: the resource answers with a challenge without an error
    /// code (RFC 6750 §3.1).
    NoAuthorization,
    /// The `Authorization` header uses another scheme than `DPoP` (no error code).
    OtherScheme,
    /// The `Authorization` header says DPoP but its credential is not one `token68`, or
    /// there are several headers (`invalid_request`).
    MalformedAuthorization,
    /// The token is bound to another key than the proof's (RFC 9449 §7.1, `invalid_token`).
    KeyBindingMismatch,
    /// A DPoP-bound token came under the `Bearer` scheme, or without binding information
    /// the resource needs (RFC 9449 §7.2, `invalid_token`).
    BoundTokenAsBearer,
}

impl DpopError {
    /// The error code to answer with; `None` when the request offered no DPoP credentials
    /// at all (a bare challenge, RFC 6750 §3.1).
    #[must_use]
    pub fn code(&self) -> Option<DpopErrorCode> {
        match self {
            Self::NoAuthorization | Self::OtherScheme => None,
            Self::NonceRequired | Self::WrongNonce => Some(DpopErrorCode::UseDpopNonce),
            Self::MalformedAuthorization => Some(DpopErrorCode::InvalidRequest),
            Self::KeyBindingMismatch | Self::BoundTokenAsBearer => {
                Some(DpopErrorCode::InvalidToken)
            }
            _ => Some(DpopErrorCode::InvalidDpopProof),
        }
    }

    /// Whether the answer should carry a fresh `DPoP-Nonce` (a `use_dpop_nonce` refusal).
    #[must_use]
    pub fn needs_nonce(&self) -> bool {
        self.code() == Some(DpopErrorCode::UseDpopNonce)
    }

    /// The resource server's answer (RFC 9449 §7.1): a `WWW-Authenticate: DPoP` challenge
    /// with the error code, if any. Add the accepted algorithms, a realm and, for
    /// `use_dpop_nonce`, the nonce (or use [`DpopVerifier::challenge`], feature `jwt`,
    /// which adds the algorithms).
    #[must_use]
    pub fn challenge(&self) -> DpopChallenge {
        let challenge = DpopChallenge::new();
        match self.code() {
            Some(code) => challenge.with_error(code),
            None => challenge,
        }
    }

    /// The token endpoint's answer (RFC 9449 §5 and §8): 400 with `invalid_dpop_proof`, or
    /// `use_dpop_nonce` and `DPoP-Nonce: <nonce>` when a nonce is missing or stale (a
    /// `nonce` that is not RFC 9449 `1*NQCHAR` is left out).
    #[must_use]
    pub fn to_endpoint_error(&self, nonce: Option<&str>) -> EndpointError {
        let code = match self.code() {
            Some(DpopErrorCode::UseDpopNonce) => "use_dpop_nonce",
            _ => "invalid_dpop_proof",
        };
        let description = if self.needs_nonce() {
            "a DPoP nonce is required"
        } else {
            "the DPoP proof is invalid"
        };
        let error =
            EndpointError::rejected(ErrorCode::parse(code), Rejection::Dpop(*self), description);
        match nonce.filter(|_| self.needs_nonce()) {
            Some(nonce) => error.with_dpop_nonce(nonce),
            None => error,
        }
    }
}

impl fmt::Display for DpopError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Missing => f.write_str("no DPoP proof"),
            Self::Multiple => f.write_str("more than one DPoP header"),
            Self::TooLarge { limit } => write!(f, "DPoP proof over {limit} bytes"),
            Self::Malformed => f.write_str("DPoP proof is not a compact JWS"),
            Self::WrongType => f.write_str("DPoP proof typ is not dpop+jwt"),
            Self::UnsupportedAlgorithm => f.write_str("unsupported or missing alg"),
            Self::CriticalHeader => f.write_str("critical header extension"),
            Self::MissingKey => f.write_str("no jwk in the DPoP proof header"),
            Self::PrivateKey => f.write_str("the jwk holds private key members"),
            Self::InvalidKey => f.write_str("the jwk is not a usable public key"),
            Self::KeyMismatch => f.write_str("alg does not match the jwk"),
            Self::BadSignature => f.write_str("signature does not verify"),
            Self::MissingClaim(claim) => write!(f, "missing claim {claim}"),
            Self::InvalidClaim(claim) => write!(f, "invalid claim {claim}"),
            Self::MethodMismatch => f.write_str("htm is not the request method"),
            Self::UriMismatch => f.write_str("htu is not the request URI"),
            Self::TooOld => f.write_str("iat is too old"),
            Self::IssuedInFuture => f.write_str("iat is in the future"),
            Self::NonceRequired => f.write_str("a DPoP nonce is required"),
            Self::WrongNonce => f.write_str("the DPoP nonce is not the current one"),
            Self::AccessTokenHashMismatch => f.write_str("ath is not the access token's hash"),
            Self::Replayed => f.write_str("DPoP proof already used"),
            Self::ReplayCacheFull => f.write_str("replay cache full"),
            Self::NoAuthorization => f.write_str("no Authorization header"),
            Self::OtherScheme => f.write_str("the Authorization header is not DPoP"),
            Self::MalformedAuthorization => {
                f.write_str("the DPoP Authorization header is malformed")
            }
            Self::KeyBindingMismatch => f.write_str("the token is bound to another key"),
            Self::BoundTokenAsBearer => f.write_str("a DPoP-bound token sent as a bearer token"),
        }
    }
}

impl std::error::Error for DpopError {}

/// RFC 9449 §8: `nonce = 1*NQCHAR`, `NQCHAR = %x21 / %x23-5B / %x5D-7E`.
pub(crate) fn is_nonce(nonce: &str) -> bool {
    !nonce.is_empty()
        && nonce.len() <= 1024
        && nonce
            .bytes()
            .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b))
}

/// A `WWW-Authenticate: DPoP …` challenge (RFC 9449 §7.1) and the response that carries it.
///
/// ```
/// use client_credentials::server::{DpopChallenge, DpopErrorCode};
///
/// let challenge = DpopChallenge::new()
///     .with_error(DpopErrorCode::UseDpopNonce)
///     .algs(["ES256", "EdDSA"])
///     .nonce("eyJ7S_zG.eyJH0-Z.HX4w-7v");
/// assert_eq!(challenge.header_value(), r#"DPoP error="use_dpop_nonce", algs="ES256 EdDSA""#);
/// let response = challenge.to_response();
/// assert_eq!(response.status(), 401);
/// assert_eq!(response.headers()["dpop-nonce"], "eyJ7S_zG.eyJH0-Z.HX4w-7v");
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DpopChallenge {
    realm: Option<String>,
    error: Option<DpopErrorCode>,
    description: Option<String>,
    algs: Vec<String>,
    nonce: Option<String>,
}

impl DpopChallenge {
    /// A challenge without an error code (401), for requests that offered no token.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the error code.
    #[must_use]
    pub fn with_error(mut self, code: DpopErrorCode) -> Self {
        self.error = Some(code);
        self
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
        let cleaned = description
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
            .collect();
        self.description = Some(cleaned);
        self
    }

    /// The accepted proof algorithms (`algs`, RFC 9449 §7.1), in order. Names that are not
    /// visible ASCII without spaces are left out.
    #[must_use]
    pub fn algs<I, S>(mut self, algs: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.algs = algs
            .into_iter()
            .map(Into::into)
            .filter(|a| {
                !a.is_empty()
                    && a.bytes()
                        .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
            })
            .collect();
        self
    }

    /// The nonce sent in `DPoP-Nonce` (ignored unless it is RFC 9449 `1*NQCHAR`).
    #[must_use]
    pub fn nonce(mut self, nonce: impl Into<String>) -> Self {
        let nonce = nonce.into();
        self.nonce = is_nonce(&nonce).then_some(nonce);
        self
    }

    /// The error code, if any.
    #[must_use]
    pub fn error(&self) -> Option<DpopErrorCode> {
        self.error
    }

    /// The status: the code's ([`DpopErrorCode::resource_status`]), or 401 without a code.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        self.error
            .map_or(StatusCode::UNAUTHORIZED, DpopErrorCode::resource_status)
    }

    /// The header value, attributes in the order `realm`, `error`, `error_description`,
    /// `algs`.
    #[must_use]
    pub fn header_value(&self) -> String {
        super::bearer::challenge_header(
            "DPoP",
            self.realm.as_deref(),
            self.error.map(DpopErrorCode::as_str),
            self.description.as_deref(),
            ("algs", &self.algs),
        )
    }

    /// The response: the status, `WWW-Authenticate`, `DPoP-Nonce` when a nonce was set, and
    /// for a challenge with an error code a JSON body `{"error":…}` (no body otherwise).
    #[must_use]
    pub fn to_response(&self) -> http::Response<Vec<u8>> {
        let mut response = super::bearer::challenge_response(
            self.status(),
            self.error.map(DpopErrorCode::as_str),
            self.description.as_deref(),
            &self.header_value(),
        );
        if let Some(value) = self
            .nonce
            .as_deref()
            .and_then(|n| HeaderValue::from_str(n).ok())
        {
            response.headers_mut().insert(DPOP_NONCE, value);
        }
        response
    }
}

#[cfg(feature = "jwt")]
pub use verifier::{
    DEFAULT_DPOP_FUTURE_SKEW, DEFAULT_DPOP_MAX_AGE, DpopRequest, DpopVerifier, VerifiedProof,
    dpop_token,
};

#[cfg(feature = "jwt")]
mod verifier {
    use std::fmt;
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use http::{HeaderMap, Method, Uri};
    use serde::Deserialize as _;
    use serde_json::Value;

    use super::{DpopChallenge, DpopError, MAX_DPOP_JTI_LEN, MAX_DPOP_PROOF_LEN};
    use crate::assertion::AssertionAlgorithm;
    use crate::secret::{AccessToken, constant_time_eq};
    use crate::server::assertion::{AssertionRejection, Jws};
    use crate::server::error::{EndpointError, Rejection};
    use crate::server::verify::{JwksError, PublicJwk, RawJwk, numeric_date};
    use crate::server::{ClientRecord, ReplayCache, TokenEndpoint};

    /// The default oldest `iat` accepted: 60 seconds before `now`.
    pub const DEFAULT_DPOP_MAX_AGE: Duration = Duration::from_secs(60);

    /// The default furthest `iat` accepted in the future: 5 seconds of clock skew.
    pub const DEFAULT_DPOP_FUTURE_SKEW: Duration = Duration::from_secs(5);

    /// The request a proof must fit: its method and absolute URI (as the client addressed
    /// it: scheme, host and port included; the query is ignored), the access token it
    /// carries to a resource server (its hash must be the proof's `ath`), and the nonce the
    /// server requires now, if it requires one.
    #[derive(Clone, Copy, Debug)]
    pub struct DpopRequest<'a> {
        method: &'a Method,
        uri: &'a Uri,
        access_token: Option<&'a AccessToken>,
        nonce: Option<&'a str>,
    }

    impl<'a> DpopRequest<'a> {
        /// A request with this method and absolute URI, no token, no nonce required.
        #[must_use]
        pub fn new(method: &'a Method, uri: &'a Uri) -> Self {
            Self {
                method,
                uri,
                access_token: None,
                nonce: None,
            }
        }

        /// The access token the request carries (a resource request): `ath` is checked.
        #[must_use]
        pub fn access_token(mut self, token: &'a AccessToken) -> Self {
            self.access_token = Some(token);
            self
        }

        /// The nonce the server requires now (`None`: none required).
        #[must_use]
        pub fn nonce(mut self, nonce: Option<&'a str>) -> Self {
            self.nonce = nonce;
            self
        }
    }

    /// An accepted proof: the RFC 7638 thumbprint of its key, the `jkt` a token is bound
    /// to (`cnf.jkt`, RFC 9449 §6).
    #[derive(Clone, PartialEq, Eq)]
    pub struct VerifiedProof {
        jkt: String,
    }

    impl fmt::Debug for VerifiedProof {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            // A thumbprint is public: it identifies the key, it proves nothing.
            f.debug_struct("VerifiedProof")
                .field("jkt", &self.jkt)
                .finish()
        }
    }

    impl VerifiedProof {
        /// The key's thumbprint (base64url of a SHA-256, 43 characters).
        #[must_use]
        pub fn jkt(&self) -> &str {
            &self.jkt
        }

        /// Checks that a token bound to `jkt` (its `cnf.jkt`) may be used with this proof.
        ///
        /// # Errors
        /// [`DpopError::KeyBindingMismatch`] when the token is bound to another key.
        pub fn check_binding(&self, jkt: &str) -> Result<(), DpopError> {
            if constant_time_eq(self.jkt.as_bytes(), jkt.as_bytes()) {
                Ok(())
            } else {
                Err(DpopError::KeyBindingMismatch)
            }
        }
    }

    /// Verifies DPoP proofs (RFC 9449 §4.3) and remembers their `jti`s: one per server
    /// (behind a `Mutex` when requests run in parallel), given the time with each proof.
    ///
    /// A proof is accepted when: the request has exactly one `DPoP` header, of at most
    /// [`MAX_DPOP_PROOF_LEN`] bytes; it is a compact JWS whose header has `typ: dpop+jwt`
    /// (any letter case), an accepted asymmetric `alg` (ES256 and EdDSA by default; RS256
    /// and PS256 on request), no `crit`, and a public `jwk` (no private members) that fits
    /// the `alg` and verifies the signature; its claims have a `jti` of at most
    /// [`MAX_DPOP_JTI_LEN`] characters, `htm` = the method, `htu` = the URI without query
    /// (scheme and host compared in lower case, default ports dropped: the normalisation
    /// the client applies), an `iat` at most the window old and at most the skew ahead, the
    /// required `nonce` when one is required, and, for a resource request, `ath` =
    /// base64url(SHA-256(token)); and its `jti` was not accepted with the same key within
    /// the window.
    ///
    /// ```
    /// use std::time::Duration;
    /// use client_credentials::AssertionAlgorithm;
    /// use client_credentials::server::DpopVerifier;
    ///
    /// let verifier = DpopVerifier::new()
    ///     .max_age(Duration::from_secs(30))
    ///     .algorithms([AssertionAlgorithm::Es256, AssertionAlgorithm::EdDsa, AssertionAlgorithm::Ps256]);
    /// assert_eq!(verifier.algorithm_names(), ["ES256", "EdDSA", "PS256"]);
    /// ```
    #[derive(Clone, Debug)]
    pub struct DpopVerifier {
        max_age: Duration,
        future_skew: Duration,
        algorithms: Vec<AssertionAlgorithm>,
        replay: ReplayCache,
    }

    impl Default for DpopVerifier {
        fn default() -> Self {
            Self::new()
        }
    }

    impl DpopVerifier {
        /// A verifier with the default window ([`DEFAULT_DPOP_MAX_AGE`],
        /// [`DEFAULT_DPOP_FUTURE_SKEW`]), ES256 and EdDSA, and a replay cache of the default
        /// capacity.
        #[must_use]
        pub fn new() -> Self {
            Self {
                max_age: DEFAULT_DPOP_MAX_AGE,
                future_skew: DEFAULT_DPOP_FUTURE_SKEW,
                algorithms: vec![AssertionAlgorithm::Es256, AssertionAlgorithm::EdDsa],
                replay: ReplayCache::default(),
            }
        }

        /// The oldest `iat` accepted, before `now` (whole seconds).
        #[must_use]
        pub fn max_age(mut self, max_age: Duration) -> Self {
            self.max_age = max_age;
            self
        }

        /// The furthest `iat` accepted after `now`, for clock skew (whole seconds).
        #[must_use]
        pub fn future_skew(mut self, skew: Duration) -> Self {
            self.future_skew = skew;
            self
        }

        /// Accepts only these algorithms, in this order in challenges; HS256 is never
        /// accepted (a proof needs a public key).
        #[must_use]
        pub fn algorithms(
            mut self,
            algorithms: impl IntoIterator<Item = AssertionAlgorithm>,
        ) -> Self {
            let mut accepted = Vec::new();
            for a in algorithms {
                if a != AssertionAlgorithm::Hs256 && !accepted.contains(&a) {
                    accepted.push(a);
                }
            }
            self.algorithms = accepted;
            self
        }

        /// Remembers at most this many proofs at once (default
        /// [`DEFAULT_REPLAY_CAPACITY`](crate::server::DEFAULT_REPLAY_CAPACITY)). Replaces the
        /// replay cache with an empty one.
        #[must_use]
        pub fn replay_capacity(mut self, capacity: usize) -> Self {
            self.replay = ReplayCache::new(capacity);
            self
        }

        /// The accepted algorithms' names, for `algs` in challenges and
        /// `dpop_signing_alg_values_supported` in metadata.
        #[must_use]
        pub fn algorithm_names(&self) -> Vec<&'static str> {
            self.algorithms.iter().map(|a| a.name()).collect()
        }

        /// The replay cache (keyed by the key's thumbprint and the `jti`).
        #[must_use]
        pub fn replay_cache(&self) -> &ReplayCache {
            &self.replay
        }

        /// The resource server's challenge for `error`, with this verifier's `algs`.
        #[must_use]
        pub fn challenge(&self, error: &DpopError) -> DpopChallenge {
            error.challenge().algs(self.algorithm_names())
        }

        /// Verifies the one `DPoP` header of a request for `request` at `now`, and
        /// remembers its `jti`.
        ///
        /// # Errors
        /// A [`DpopError`]: [`DpopError::Missing`] without a header,
        /// [`DpopError::Multiple`] with several, or why the proof was refused.
        pub fn verify(
            &mut self,
            now: SystemTime,
            headers: &HeaderMap,
            request: &DpopRequest<'_>,
        ) -> Result<VerifiedProof, DpopError> {
            let proof = single_proof(headers)?.ok_or(DpopError::Missing)?;
            self.verify_proof(now, proof, request)
        }

        /// Verifies one proof (a `DPoP` header's value) for `request` at `now`, and
        /// remembers its `jti`.
        ///
        /// # Errors
        /// A [`DpopError`] that says why the proof was refused.
        pub fn verify_proof(
            &mut self,
            now: SystemTime,
            proof: &str,
            request: &DpopRequest<'_>,
        ) -> Result<VerifiedProof, DpopError> {
            if proof.len() > MAX_DPOP_PROOF_LEN {
                return Err(DpopError::TooLarge {
                    limit: MAX_DPOP_PROOF_LEN,
                });
            }
            let jws = Jws::decode(proof).map_err(|_| DpopError::Malformed)?;
            let typ = jws.header.get("typ").and_then(Value::as_str);
            if !typ.is_some_and(|t| t.eq_ignore_ascii_case("dpop+jwt")) {
                return Err(DpopError::WrongType);
            }
            if jws.header.contains_key("crit") {
                return Err(DpopError::CriticalHeader);
            }
            let alg = jws
                .alg()
                .and_then(AssertionAlgorithm::from_name)
                .filter(|a| self.algorithms.contains(a))
                .ok_or(DpopError::UnsupportedAlgorithm)?;
            let jwk = match jws.header.get("jwk") {
                Some(jwk @ Value::Object(_)) => jwk,
                _ => return Err(DpopError::MissingKey),
            };
            let raw = RawJwk::deserialize(jwk).map_err(|_| DpopError::InvalidKey)?;
            let key = PublicJwk::parse(0, raw).map_err(|e| match e {
                JwksError::PrivateKey { .. } => DpopError::PrivateKey,
                _ => DpopError::InvalidKey,
            })?;
            if !key.key.fits(alg) || key.alg.is_some_and(|a| a != alg) {
                return Err(DpopError::KeyMismatch);
            }
            if !key
                .key
                .verify(alg, jws.signing_input.as_bytes(), &jws.signature)
            {
                return Err(DpopError::BadSignature);
            }
            let (jti, iat) = self.check_claims(now, &jws, request)?;
            let jkt = key.key.thumbprint();
            // Accepted until `iat + max_age` (whole seconds): remembered one second longer.
            let until = UNIX_EPOCH
                .checked_add(Duration::from_secs(
                    iat.saturating_add(self.max_age.as_secs()).saturating_add(1),
                ))
                .unwrap_or(now);
            self.replay
                .remember(now, &jkt, jti, until)
                .map_err(|e| match e {
                    AssertionRejection::Replayed => DpopError::Replayed,
                    _ => DpopError::ReplayCacheFull,
                })?;
            Ok(VerifiedProof { jkt })
        }

        /// The claims of a proof whose signature verified; returns its `jti` and `iat`.
        fn check_claims<'j>(
            &self,
            now: SystemTime,
            jws: &'j Jws<'_>,
            request: &DpopRequest<'_>,
        ) -> Result<(&'j str, u64), DpopError> {
            let required = |name: &'static str| match jws.claims.get(name) {
                None | Some(Value::Null) => Err(DpopError::MissingClaim(name)),
                Some(Value::String(s)) if !s.is_empty() => Ok(s.as_str()),
                Some(_) => Err(DpopError::InvalidClaim(name)),
            };
            let jti = required("jti")?;
            if jti.len() > MAX_DPOP_JTI_LEN {
                return Err(DpopError::InvalidClaim("jti"));
            }
            if required("htm")? != request.method.as_str() {
                return Err(DpopError::MethodMismatch);
            }
            let htu = required("htu")?;
            let claimed = htu.parse::<Uri>().map_err(|_| DpopError::UriMismatch)?;
            // Absolute, and without userinfo, which the comparison below would not see.
            let absolute = claimed.scheme().is_some()
                && claimed
                    .authority()
                    .is_some_and(|a| !a.as_str().contains('@'));
            if !absolute || crate::dpop::htu(&claimed) != crate::dpop::htu(request.uri) {
                return Err(DpopError::UriMismatch);
            }
            let iat = numeric_date(jws, "iat")
                .map_err(|_| DpopError::InvalidClaim("iat"))?
                .ok_or(DpopError::MissingClaim("iat"))?;
            let now = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
            if now.saturating_sub(iat) > self.max_age.as_secs() {
                return Err(DpopError::TooOld);
            }
            if iat.saturating_sub(now) > self.future_skew.as_secs() {
                return Err(DpopError::IssuedInFuture);
            }
            if let Some(expected) = request.nonce {
                match jws.claims.get("nonce") {
                    None | Some(Value::Null) => return Err(DpopError::NonceRequired),
                    Some(Value::String(n))
                        if constant_time_eq(n.as_bytes(), expected.as_bytes()) => {}
                    Some(_) => return Err(DpopError::WrongNonce),
                }
            }
            if let Some(token) = request.access_token {
                let ath = required("ath")?;
                let digest = aws_lc_rs::digest::digest(
                    &aws_lc_rs::digest::SHA256,
                    token.expose_secret().as_bytes(),
                );
                let expected = URL_SAFE_NO_PAD.encode(digest);
                if !constant_time_eq(ath.as_bytes(), expected.as_bytes()) {
                    return Err(DpopError::AccessTokenHashMismatch);
                }
            }
            Ok((jti, iat))
        }
    }

    /// The value of the request's only `DPoP` header, `None` without one.
    fn single_proof(headers: &HeaderMap) -> Result<Option<&str>, DpopError> {
        let mut values = headers.get_all("dpop").iter();
        let Some(value) = values.next() else {
            return Ok(None);
        };
        if values.next().is_some() {
            return Err(DpopError::Multiple);
        }
        if value.len() > MAX_DPOP_PROOF_LEN {
            return Err(DpopError::TooLarge {
                limit: MAX_DPOP_PROOF_LEN,
            });
        }
        value.to_str().map(Some).map_err(|_| DpopError::Malformed)
    }

    /// The resource server's side of DPoP (RFC 9449 §7): takes the access token from the
    /// only `Authorization` header, scheme `DPoP` (any letter case) and one `token68`, and
    /// verifies the request's proof for `method` and `uri` (absolute, as the client
    /// addressed it) with `ath` = the token's hash, and the nonce the resource requires now,
    /// if any. Returns the token and the proof's key; the caller then checks the token
    /// (known, unexpired) and its binding.
    ///
    /// The binding is checked with [`VerifiedProof::check_binding`] and the token's
    /// `cnf.jkt` (from the JWT, or from the resource's own token store):
    ///
    /// ```
    /// use std::time::{Duration, UNIX_EPOCH};
    /// use client_credentials::{AccessToken, AssertionKey};
    /// use client_credentials::dpop::{DpopKey, ProofInput};
    /// use client_credentials::http::{HeaderMap, HeaderValue, Method, Uri};
    /// use client_credentials::server::{DpopErrorCode, DpopVerifier, dpop_token};
    ///
    /// # let pem = include_str!("../../tests/keys/ec-p256.pem");
    /// let key = DpopKey::new(AssertionKey::from_pem(pem)?);
    /// let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    /// let uri: Uri = "https://api.example.com/orders?page=2".parse()?;
    /// let token = AccessToken::new("the-dpop-bound-token");
    ///
    /// // The client's request: the token under the DPoP scheme, and a proof with its `ath`.
    /// let proof = key.proof(&ProofInput {
    ///     method: &Method::GET, uri: &uri, at: now, nonce: 1,
    ///     server_nonce: None, access_token: Some(&token),
    /// })?;
    /// let mut headers = HeaderMap::new();
    /// headers.insert("authorization", HeaderValue::from_static("DPoP the-dpop-bound-token"));
    /// headers.insert("dpop", proof.header_value());
    ///
    /// // The resource server: one verifier (and its replay cache) for all requests.
    /// let mut verifier = DpopVerifier::new();
    /// let (presented, verified) = dpop_token(now, &headers, &Method::GET, &uri, &mut verifier, None)?;
    /// assert_eq!(presented.expose_secret(), "the-dpop-bound-token");
    /// // The token's `cnf.jkt`, looked up by the caller: here the client's key.
    /// verified.check_binding(key.thumbprint())?;
    /// let refused = verified.check_binding("another-key's-thumbprint").unwrap_err();
    /// assert_eq!(refused.code(), Some(DpopErrorCode::InvalidToken));
    ///
    /// // The same proof again is a replay, answered with a DPoP challenge.
    /// let replayed = dpop_token(now, &headers, &Method::GET, &uri, &mut verifier, None).unwrap_err();
    /// let answer = verifier.challenge(&replayed).to_response();
    /// assert_eq!(answer.status(), 401);
    /// assert_eq!(
    ///     answer.headers()["www-authenticate"],
    ///     r#"DPoP error="invalid_dpop_proof", algs="ES256 EdDSA""#
    /// );
    /// # Ok::<_, Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`DpopError::NoAuthorization`] or [`DpopError::OtherScheme`] when the request
    /// offers no DPoP token (answer with a bare challenge, or try
    /// [`bearer_token`](crate::server::bearer_token));
    /// [`DpopError::MalformedAuthorization`]; or why the
    /// proof was refused. [`DpopVerifier::challenge`] renders the answer.
    pub fn dpop_token(
        now: SystemTime,
        headers: &HeaderMap,
        method: &Method,
        uri: &Uri,
        verifier: &mut DpopVerifier,
        nonce: Option<&str>,
    ) -> Result<(AccessToken, VerifiedProof), DpopError> {
        let token = authorization_token(headers)?;
        let request = DpopRequest::new(method, uri)
            .access_token(&token)
            .nonce(nonce);
        let proof = verifier.verify(now, headers, &request)?;
        Ok((token, proof))
    }

    /// `Authorization: DPoP <token68>` (RFC 9449 §7.1).
    fn authorization_token(headers: &HeaderMap) -> Result<AccessToken, DpopError> {
        use crate::server::bearer::{SchemeTokenError, scheme_token};
        scheme_token(headers, b"dpop").map_err(|e| match e {
            SchemeTokenError::Missing => DpopError::NoAuthorization,
            SchemeTokenError::OtherScheme => DpopError::OtherScheme,
            SchemeTokenError::Multiple | SchemeTokenError::Malformed => {
                DpopError::MalformedAuthorization
            }
        })
    }

    impl TokenEndpoint {
        /// The DPoP step of a token request (RFC 9449 §5), after the client authenticated:
        /// verifies the request's proof, if it has one, for `request` (the token
        /// endpoint's absolute URL, and the nonce the server requires now, if it does).
        /// `Some` is the key to bind the token to
        /// ([`Grant::bind_dpop`](crate::server::Grant::bind_dpop)); `None`, no proof, a
        /// bearer token.
        ///
        /// # Errors
        /// `invalid_grant` (400) when the client requires DPoP
        /// ([`ClientRecord::dpop_bound_access_tokens`]) and sent no proof, as
        /// oidc-provider answers; `invalid_dpop_proof` (400) when the proof is refused;
        /// `use_dpop_nonce` (400) with `DPoP-Nonce: <nonce>` when it lacks the required
        /// nonce ([`DpopError::to_endpoint_error`]).
        pub fn verify_dpop<C: ClientRecord + ?Sized>(
            &self,
            now: SystemTime,
            headers: &HeaderMap,
            request: &DpopRequest<'_>,
            client: Option<&C>,
            verifier: &mut DpopVerifier,
        ) -> Result<Option<VerifiedProof>, EndpointError> {
            let proof = single_proof(headers).map_err(|e| e.to_endpoint_error(request.nonce))?;
            let Some(proof) = proof else {
                if client.is_some_and(|c| c.dpop_bound_access_tokens()) {
                    return Err(EndpointError::rejected(
                        crate::error::ErrorCode::InvalidGrant,
                        Rejection::DpopRequired,
                        "this client requires DPoP-bound access tokens: send a DPoP proof",
                    ));
                }
                return Ok(None);
            };
            verifier
                .verify_proof(now, proof, request)
                .map(Some)
                .map_err(|e| e.to_endpoint_error(request.nonce))
        }
    }
}

#[cfg(all(test, feature = "jwt"))]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)] // Tests: a panic is a failure report.

    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use http::{HeaderMap, HeaderValue, Method, Uri};
    use serde_json::{Value, json};

    use super::*;
    use crate::assertion::{AssertionAlgorithm, AssertionKey};
    use crate::dpop::{DpopKey, ProofInput};
    use crate::secret::AccessToken;
    use crate::server::{RegisteredClient, TokenEndpoint};

    const T0: u64 = 1_800_000_000;
    const URI: &str = "https://as.example.com/token";

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn ec() -> AssertionKey {
        AssertionKey::from_pem(include_str!("../../tests/keys/ec-p256.pem")).unwrap()
    }

    fn ed() -> AssertionKey {
        AssertionKey::from_pem(include_str!("../../tests/keys/ed25519.pem")).unwrap()
    }

    fn rsa() -> AssertionKey {
        AssertionKey::from_pem(include_str!("../../tests/keys/rsa-2048.pem")).unwrap()
    }

    fn b64(bytes: impl AsRef<[u8]>) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    fn header(key: &AssertionKey) -> Value {
        json!({"typ": "dpop+jwt", "alg": key.algorithm().name(), "jwk": key.public_members()})
    }

    fn claims() -> Value {
        json!({"jti": "jti-1", "htm": "POST", "htu": URI, "iat": T0})
    }

    /// A proof signed with `key` from any header and claims.
    fn signed(key: &AssertionKey, header: &Value, claims: &Value) -> String {
        let input = format!("{}.{}", b64(header.to_string()), b64(claims.to_string()));
        let signature = key.sign(input.as_bytes()).unwrap();
        format!("{input}.{}", b64(signature))
    }

    fn check(
        v: &mut DpopVerifier,
        now: u64,
        proof: &str,
        request: &DpopRequest<'_>,
    ) -> Result<String, DpopError> {
        v.verify_proof(at(now), proof, request)
            .map(|p| p.jkt().to_owned())
    }

    fn post<'a>(uri: &'a Uri) -> DpopRequest<'a> {
        DpopRequest::new(&Method::POST, uri)
    }

    #[test]
    fn a_client_proof_is_accepted_and_gives_the_key_thumbprint() {
        let uri: Uri = URI.parse().unwrap();
        for key in [ec(), ed()] {
            let dpop = DpopKey::new(key.clone());
            let proof = dpop
                .proof(&ProofInput {
                    method: &Method::POST,
                    uri: &uri,
                    at: at(T0),
                    nonce: 9,
                    server_nonce: None,
                    access_token: None,
                })
                .unwrap();
            let mut headers = HeaderMap::new();
            headers.insert("dpop", proof.header_value());
            let mut v = DpopVerifier::new();
            let verified = v.verify(at(T0), &headers, &post(&uri)).unwrap();
            assert_eq!(verified.jkt(), dpop.thumbprint());
            assert_eq!(verified.jkt(), key.thumbprint());
            assert_eq!(v.replay_cache().len(), 1);
            assert_eq!(
                format!("{verified:?}"),
                format!("VerifiedProof {{ jkt: {:?} }}", dpop.thumbprint())
            );
        }
        // RSA keys only when asked for.
        let rsa = rsa();
        let proof = signed(&rsa, &header(&rsa), &claims());
        let uri: Uri = URI.parse().unwrap();
        assert_eq!(
            check(&mut DpopVerifier::new(), T0, &proof, &post(&uri)),
            Err(DpopError::UnsupportedAlgorithm)
        );
        let mut v =
            DpopVerifier::new().algorithms([AssertionAlgorithm::Rs256, AssertionAlgorithm::Hs256]);
        assert_eq!(v.algorithm_names(), ["RS256"]);
        assert_eq!(check(&mut v, T0, &proof, &post(&uri)), Ok(rsa.thumbprint()));
        // A jwk whose own `alg` is not the header's.
        let mut jwk = rsa.public_members();
        jwk["alg"] = "PS256".into();
        let mut h = header(&rsa);
        h["jwk"] = jwk;
        let mut c = claims();
        c["jti"] = "jti-2".into();
        let proof = signed(&rsa, &h, &c);
        assert_eq!(
            check(&mut v, T0, &proof, &post(&uri)),
            Err(DpopError::KeyMismatch)
        );
    }

    #[test]
    fn every_header_refusal() {
        let uri: Uri = URI.parse().unwrap();
        let ec = ec();
        let ed = ed();
        let with = |member: &str, value: Value| {
            let mut h = header(&ec);
            h[member] = value;
            h
        };
        let mut private = ec.public_members();
        private["d"] = b64([7; 32]).into();
        let mut off_curve = ec.public_members();
        off_curve["y"] = b64([1; 32]).into();
        let mut jwk_alg = ec.public_members();
        jwk_alg["alg"] = "EdDSA".into();
        let mut no_typ = header(&ec);
        no_typ.as_object_mut().unwrap().remove("typ");
        let mut no_jwk = header(&ec);
        no_jwk.as_object_mut().unwrap().remove("jwk");
        let cases = [
            ("typ jwt", with("typ", "jwt".into()), DpopError::WrongType),
            ("typ missing", no_typ, DpopError::WrongType),
            (
                "typ not a string",
                with("typ", 1.into()),
                DpopError::WrongType,
            ),
            (
                "alg none",
                with("alg", "none".into()),
                DpopError::UnsupportedAlgorithm,
            ),
            (
                "alg HS256",
                with("alg", "HS256".into()),
                DpopError::UnsupportedAlgorithm,
            ),
            (
                "alg es256",
                with("alg", "es256".into()),
                DpopError::UnsupportedAlgorithm,
            ),
            (
                "crit",
                with("crit", json!(["exp"])),
                DpopError::CriticalHeader,
            ),
            ("no jwk", no_jwk, DpopError::MissingKey),
            (
                "jwk a string",
                with("jwk", "k".into()),
                DpopError::MissingKey,
            ),
            ("private jwk", with("jwk", private), DpopError::PrivateKey),
            (
                "off the curve",
                with("jwk", off_curve),
                DpopError::InvalidKey,
            ),
            (
                "oct",
                with("jwk", json!({"kty": "oct", "k": "c2VjcmV0"})),
                DpopError::InvalidKey,
            ),
            (
                "jwk of another type",
                with("jwk", ed.public_members()),
                DpopError::KeyMismatch,
            ),
            (
                "jwk alg for another kty",
                with("jwk", jwk_alg),
                DpopError::InvalidKey,
            ),
        ];
        for (name, h, error) in cases {
            let proof = signed(&ec, &h, &claims());
            let mut v = DpopVerifier::new();
            assert_eq!(check(&mut v, T0, &proof, &post(&uri)), Err(error), "{name}");
            assert!(v.replay_cache().is_empty(), "{name}");
            assert_eq!(
                error.code(),
                Some(DpopErrorCode::InvalidDpopProof),
                "{name}"
            );
        }
        // `typ` in any letter case (RFC 9449 §4.3 compares it as a media type).
        let proof = signed(&ec, &with("typ", "DPoP+JWT".into()), &claims());
        assert!(check(&mut DpopVerifier::new(), T0, &proof, &post(&uri)).is_ok());
        // A signature by another key, or over other claims.
        let mut forged = signed(&ec, &header(&ec), &claims());
        let good_signature = forged.rsplit('.').next().unwrap().to_owned();
        let mut c = claims();
        c["htm"] = "GET".into();
        forged = format!(
            "{}.{}.{good_signature}",
            b64(header(&ec).to_string()),
            b64(c.to_string())
        );
        let get = DpopRequest::new(&Method::GET, &uri);
        assert_eq!(
            check(&mut DpopVerifier::new(), T0, &forged, &get),
            Err(DpopError::BadSignature)
        );
        let by_ed_as_ec = {
            let input = format!(
                "{}.{}",
                b64(header(&ec).to_string()),
                b64(claims().to_string())
            );
            format!("{input}.{}", b64(ed.sign(input.as_bytes()).unwrap()))
        };
        assert_eq!(
            check(&mut DpopVerifier::new(), T0, &by_ed_as_ec, &post(&uri)),
            Err(DpopError::BadSignature)
        );
    }

    #[test]
    fn every_claim_refusal() {
        let uri: Uri = URI.parse().unwrap();
        let ec = ec();
        let with = |member: &str, value: Value| {
            let mut c = claims();
            c[member] = value;
            c
        };
        let without = |member: &str| {
            let mut c = claims();
            c.as_object_mut().unwrap().remove(member);
            c
        };
        let cases = [
            ("no jti", without("jti"), DpopError::MissingClaim("jti")),
            (
                "empty jti",
                with("jti", "".into()),
                DpopError::InvalidClaim("jti"),
            ),
            (
                "long jti",
                with("jti", "j".repeat(MAX_DPOP_JTI_LEN + 1).into()),
                DpopError::InvalidClaim("jti"),
            ),
            (
                "jti a number",
                with("jti", 7.into()),
                DpopError::InvalidClaim("jti"),
            ),
            ("no htm", without("htm"), DpopError::MissingClaim("htm")),
            (
                "wrong htm",
                with("htm", "GET".into()),
                DpopError::MethodMismatch,
            ),
            (
                "htm in lower case",
                with("htm", "post".into()),
                DpopError::MethodMismatch,
            ),
            ("no htu", without("htu"), DpopError::MissingClaim("htu")),
            (
                "other path",
                with("htu", "https://as.example.com/token2".into()),
                DpopError::UriMismatch,
            ),
            (
                "other host",
                with("htu", "https://rs.example.com/token".into()),
                DpopError::UriMismatch,
            ),
            (
                "other scheme",
                with("htu", "http://as.example.com/token".into()),
                DpopError::UriMismatch,
            ),
            (
                "other port",
                with("htu", "https://as.example.com:8443/token".into()),
                DpopError::UriMismatch,
            ),
            (
                "userinfo in htu",
                with("htu", "https://user@as.example.com/token".into()),
                DpopError::UriMismatch,
            ),
            (
                "relative htu",
                with("htu", "/token".into()),
                DpopError::UriMismatch,
            ),
            (
                "not a URI",
                with("htu", "https://as example/".into()),
                DpopError::UriMismatch,
            ),
            ("no iat", without("iat"), DpopError::MissingClaim("iat")),
            (
                "string iat",
                with("iat", T0.to_string().into()),
                DpopError::InvalidClaim("iat"),
            ),
            (
                "negative iat",
                with("iat", (-1).into()),
                DpopError::InvalidClaim("iat"),
            ),
            (
                "stale iat",
                with("iat", (T0 - 61).into()),
                DpopError::TooOld,
            ),
            (
                "future iat",
                with("iat", (T0 + 6).into()),
                DpopError::IssuedInFuture,
            ),
            (
                "far future iat",
                with("iat", u64::MAX.into()),
                DpopError::IssuedInFuture,
            ),
        ];
        for (name, c, error) in cases {
            let proof = signed(&ec, &header(&ec), &c);
            let mut v = DpopVerifier::new();
            assert_eq!(check(&mut v, T0, &proof, &post(&uri)), Err(error), "{name}");
            assert!(v.replay_cache().is_empty(), "{name}");
        }
        // The edges of the window, and the normalisation the client applies.
        for (name, c) in [
            ("60 s old", with("iat", (T0 - 60).into())),
            ("5 s ahead", with("iat", (T0 + 5).into())),
            ("a fractional iat", with("iat", json!(T0 as f64 + 0.5))),
            (
                "host in capitals, default port",
                with("htu", "HTTPS://AS.Example.COM:443/token".into()),
            ),
            (
                "a query",
                with("htu", "https://as.example.com/token?x=1".into()),
            ),
        ] {
            let proof = signed(&ec, &header(&ec), &c);
            assert!(
                check(&mut DpopVerifier::new(), T0, &proof, &post(&uri)).is_ok(),
                "{name}"
            );
        }
        // The request's query does not count either, nor its letter case of the host.
        let proof = signed(&ec, &header(&ec), &claims());
        let with_query: Uri = "https://AS.example.com/token?tenant=1".parse().unwrap();
        assert!(check(&mut DpopVerifier::new(), T0, &proof, &post(&with_query)).is_ok());
        // A narrower window.
        let mut v = DpopVerifier::new()
            .max_age(Duration::from_secs(10))
            .future_skew(Duration::ZERO);
        assert_eq!(
            check(&mut v, T0 + 11, &proof, &post(&uri)),
            Err(DpopError::TooOld)
        );
        assert_eq!(
            check(&mut v, T0 - 1, &proof, &post(&uri)),
            Err(DpopError::IssuedInFuture)
        );
        assert!(check(&mut v, T0 + 10, &proof, &post(&uri)).is_ok());
    }

    #[test]
    fn a_replayed_jti_is_refused_within_the_window_and_per_key() {
        let uri: Uri = URI.parse().unwrap();
        let (ec, ed) = (ec(), ed());
        let mut v = DpopVerifier::new();
        let proof = signed(&ec, &header(&ec), &claims());
        assert!(check(&mut v, T0, &proof, &post(&uri)).is_ok());
        assert_eq!(
            check(&mut v, T0 + 30, &proof, &post(&uri)),
            Err(DpopError::Replayed)
        );
        // The same jti with another key is another proof.
        let other = signed(&ed, &header(&ed), &claims());
        assert!(check(&mut v, T0 + 30, &other, &post(&uri)).is_ok());
        // Past the window, the proof is too old anyway, and the next accepted proof drops
        // the entries of the old ones.
        assert_eq!(
            check(&mut v, T0 + 61, &proof, &post(&uri)),
            Err(DpopError::TooOld)
        );
        let mut c = claims();
        c["iat"] = (T0 + 61).into();
        assert!(check(&mut v, T0 + 61, &signed(&ec, &header(&ec), &c), &post(&uri)).is_ok());
        assert_eq!(v.replay_cache().len(), 1);
        // A full cache refuses rather than forgets.
        let mut v = DpopVerifier::new().replay_capacity(1);
        assert!(check(&mut v, T0, &proof, &post(&uri)).is_ok());
        let mut c = claims();
        c["jti"] = "jti-2".into();
        let second = signed(&ec, &header(&ec), &c);
        assert_eq!(
            check(&mut v, T0, &second, &post(&uri)),
            Err(DpopError::ReplayCacheFull)
        );
        assert_eq!(
            DpopError::ReplayCacheFull.code(),
            Some(DpopErrorCode::InvalidDpopProof)
        );
    }

    #[test]
    fn nonces_and_the_answers_they_owe() {
        let uri: Uri = URI.parse().unwrap();
        let ec = ec();
        let no_nonce = signed(&ec, &header(&ec), &claims());
        let mut c = claims();
        c["nonce"] = "n-1".into();
        let old_nonce = signed(&ec, &header(&ec), &c);
        c["nonce"] = "n-2".into();
        c["jti"] = "jti-2".into();
        let current = signed(&ec, &header(&ec), &c);
        c["nonce"] = 2.into();
        c["jti"] = "jti-3".into();
        let numeric = signed(&ec, &header(&ec), &c);
        let wants = post(&uri).nonce(Some("n-2"));
        let mut v = DpopVerifier::new();
        assert_eq!(
            check(&mut v, T0, &no_nonce, &wants),
            Err(DpopError::NonceRequired)
        );
        assert_eq!(
            check(&mut v, T0, &old_nonce, &wants),
            Err(DpopError::WrongNonce)
        );
        assert_eq!(
            check(&mut v, T0, &numeric, &wants),
            Err(DpopError::WrongNonce)
        );
        assert!(
            v.replay_cache().is_empty(),
            "refused proofs are not remembered"
        );
        assert!(check(&mut v, T0, &current, &wants).is_ok());
        // A nonce that the server does not require is ignored.
        assert!(check(&mut v, T0, &old_nonce, &post(&uri)).is_ok());

        for error in [DpopError::NonceRequired, DpopError::WrongNonce] {
            assert_eq!(error.code(), Some(DpopErrorCode::UseDpopNonce));
            assert!(error.needs_nonce());
            let response = error.to_endpoint_error(Some("n-3")).to_response();
            assert_eq!(response.status(), 400);
            assert_eq!(response.headers()["dpop-nonce"], "n-3");
            let body: Value = serde_json::from_slice(response.body()).unwrap();
            assert_eq!(body["error"], "use_dpop_nonce");
            let challenge = DpopVerifier::new()
                .challenge(&error)
                .nonce("n-3")
                .to_response();
            assert_eq!(challenge.status(), 401);
            assert_eq!(
                challenge.headers()["www-authenticate"],
                r#"DPoP error="use_dpop_nonce", algs="ES256 EdDSA""#
            );
            assert_eq!(challenge.headers()["dpop-nonce"], "n-3");
        }
        let response = DpopError::BadSignature
            .to_endpoint_error(Some("n-3"))
            .to_response();
        assert_eq!(response.status(), 400);
        assert!(response.headers().get("dpop-nonce").is_none());
        assert_eq!(
            response.body(),
            br#"{"error":"invalid_dpop_proof","error_description":"the DPoP proof is invalid"}"#
        );
        // A nonce that is not NQCHARs is never put in a header.
        let e = DpopError::NonceRequired.to_endpoint_error(Some("a \"b\""));
        assert_eq!(e.dpop_nonce(), None);
    }

    #[test]
    fn ath_binds_the_proof_to_the_token() {
        let uri: Uri = "https://api.example.com/orders".parse().unwrap();
        let token = AccessToken::new("Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU");
        let other = AccessToken::new("another-token");
        let ec = ec();
        let mut c =
            json!({"jti": "j", "htm": "GET", "htu": "https://api.example.com/orders", "iat": T0});
        let without_ath = signed(&ec, &header(&ec), &c);
        // RFC 9449 §7.1's example token and its `ath`.
        c["ath"] = "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo".into();
        let with_ath = signed(&ec, &header(&ec), &c);
        let get = DpopRequest::new(&Method::GET, &uri);
        let mut v = DpopVerifier::new();
        assert_eq!(
            check(&mut v, T0, &without_ath, &get.access_token(&token)),
            Err(DpopError::MissingClaim("ath"))
        );
        assert_eq!(
            check(&mut v, T0, &with_ath, &get.access_token(&other)),
            Err(DpopError::AccessTokenHashMismatch)
        );
        assert!(check(&mut v, T0, &with_ath, &get.access_token(&token)).is_ok());
    }

    #[test]
    fn the_dpop_header_itself() {
        let uri: Uri = URI.parse().unwrap();
        let ec = ec();
        let proof = signed(&ec, &header(&ec), &claims());
        let mut v = DpopVerifier::new();
        let mut headers = HeaderMap::new();
        assert_eq!(
            v.verify(at(T0), &headers, &post(&uri)).unwrap_err(),
            DpopError::Missing
        );
        headers.append("dpop", HeaderValue::from_str(&proof).unwrap());
        headers.append("dpop", HeaderValue::from_str(&proof).unwrap());
        assert_eq!(
            v.verify(at(T0), &headers, &post(&uri)).unwrap_err(),
            DpopError::Multiple
        );
        let mut headers = HeaderMap::new();
        headers.insert("dpop", HeaderValue::from_bytes(b"\xff.\xfe.a").unwrap());
        assert_eq!(
            v.verify(at(T0), &headers, &post(&uri)).unwrap_err(),
            DpopError::Malformed
        );
        let huge = "a".repeat(MAX_DPOP_PROOF_LEN + 1);
        headers.insert("dpop", HeaderValue::from_str(&huge).unwrap());
        assert_eq!(
            v.verify(at(T0), &headers, &post(&uri)).unwrap_err(),
            DpopError::TooLarge {
                limit: MAX_DPOP_PROOF_LEN
            }
        );
        for garbage in [
            "",
            ".",
            "..",
            "a.b.c",
            "a.b.c.d",
            &format!("{proof}."),
            &format!("{proof}x"),
            &proof.replace('.', ""),
            &format!("{}.{}.", b64("{}"), b64("{}")),
            &format!("{}.{}.AAAA", b64("[]"), b64("{}")),
            "\u{0}",
        ] {
            let result = check(&mut v, T0, garbage, &post(&uri));
            assert!(result.is_err(), "{garbage:?}");
        }
        assert!(v.replay_cache().is_empty());
    }

    #[test]
    fn dpop_tokens_at_a_resource() {
        let uri: Uri = "https://api.example.com/orders".parse().unwrap();
        let ec = ec();
        let dpop = DpopKey::new(ec.clone());
        let token = AccessToken::new("tok.en~1");
        let proof = dpop
            .proof(&ProofInput {
                method: &Method::GET,
                uri: &uri,
                at: at(T0),
                nonce: 1,
                server_nonce: Some("rn"),
                access_token: Some(&token),
            })
            .unwrap();
        let headers_with = |authorization: &[&str]| {
            let mut h = HeaderMap::new();
            for a in authorization {
                h.append("authorization", HeaderValue::from_str(a).unwrap());
            }
            h.insert("dpop", proof.header_value());
            h
        };
        let mut v = DpopVerifier::new();
        for (auth, error) in [
            (&[][..], DpopError::NoAuthorization),
            (&["Bearer tok.en~1"][..], DpopError::OtherScheme),
            (&["DPoP"][..], DpopError::MalformedAuthorization),
            (&["DPoP two words"][..], DpopError::MalformedAuthorization),
            (
                &["DPoP tok.en~1", "DPoP tok.en~1"][..],
                DpopError::MalformedAuthorization,
            ),
            (&["DPoP other"][..], DpopError::AccessTokenHashMismatch),
        ] {
            let e = dpop_token(
                at(T0),
                &headers_with(auth),
                &Method::GET,
                &uri,
                &mut v,
                Some("rn"),
            )
            .unwrap_err();
            assert_eq!(e, error, "{auth:?}");
        }
        assert_eq!(
            DpopError::NoAuthorization
                .challenge()
                .to_response()
                .status(),
            401
        );
        assert_eq!(
            DpopError::NoAuthorization.challenge().header_value(),
            "DPoP"
        );
        assert_eq!(DpopError::MalformedAuthorization.challenge().status(), 400);
        let e = dpop_token(
            at(T0),
            &headers_with(&["dpop tok.en~1"]),
            &Method::GET,
            &uri,
            &mut v,
            Some("other"),
        )
        .unwrap_err();
        assert_eq!(e, DpopError::WrongNonce);
        let (presented, verified) = dpop_token(
            at(T0),
            &headers_with(&["dpop  tok.en~1 "]),
            &Method::GET,
            &uri,
            &mut v,
            Some("rn"),
        )
        .unwrap();
        assert_eq!(presented.expose_secret(), "tok.en~1");
        assert_eq!(verified.check_binding(dpop.thumbprint()), Ok(()));
        assert_eq!(
            verified.check_binding(&ed().thumbprint()),
            Err(DpopError::KeyBindingMismatch)
        );
        assert_eq!(
            DpopError::KeyBindingMismatch.code(),
            Some(DpopErrorCode::InvalidToken)
        );
        let challenge = v
            .challenge(&DpopError::KeyBindingMismatch)
            .realm("api")
            .description("Invalid DPoP key binding");
        assert_eq!(
            challenge.header_value(),
            r#"DPoP realm="api", error="invalid_token", error_description="Invalid DPoP key binding", algs="ES256 EdDSA""#
        );
        let e = dpop_token(
            at(T0),
            &headers_with(&["DPoP tok.en~1"]),
            &Method::GET,
            &uri,
            &mut v,
            Some("rn"),
        )
        .unwrap_err();
        assert_eq!(e, DpopError::Replayed);
        // Nothing shown holds the token or the proof.
        let shown = format!("{e:?} {e} {verified:?} {presented:?} {:?}", v);
        assert!(!shown.contains("tok.en"), "{shown}");
        for segment in proof.expose_secret().split('.') {
            assert!(!shown.contains(segment), "{shown}");
        }
    }

    #[test]
    fn the_token_endpoint_binds_or_refuses() {
        let uri: Uri = URI.parse().unwrap();
        let endpoint = TokenEndpoint::builder()
            .scope("read", "Read")
            .build()
            .unwrap();
        let bound = RegisteredClient::new("app", "pw")
            .scopes(["read"])
            .dpop_bound_access_tokens(true);
        let plain = RegisteredClient::new("app", "pw").scopes(["read"]);
        let request = http::Request::post("/token")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(b"grant_type=client_credentials&client_id=app&client_secret=pw".to_vec())
            .unwrap();
        let incoming = endpoint.parse(&request).unwrap();
        let mut v = DpopVerifier::new();
        let none = HeaderMap::new();
        // No proof: a bearer token, unless the client requires DPoP.
        assert_eq!(
            endpoint.verify_dpop(at(T0), &none, &post(&uri), Some(&plain), &mut v),
            Ok(None)
        );
        let e = endpoint
            .verify_dpop(at(T0), &none, &post(&uri), Some(&bound), &mut v)
            .unwrap_err();
        assert_eq!(e.code().as_str(), "invalid_grant");
        assert_eq!(e.reason(), &Rejection::DpopRequired);
        assert_eq!(e.status(), 400);
        // A proof: the token is bound.
        let ec = ec();
        let mut headers = HeaderMap::new();
        headers.insert(
            "dpop",
            HeaderValue::from_str(&signed(&ec, &header(&ec), &claims())).unwrap(),
        );
        let proof = endpoint
            .verify_dpop(at(T0), &headers, &post(&uri), Some(&bound), &mut v)
            .unwrap()
            .unwrap();
        let grant = endpoint.authorize(&incoming, Some(&bound)).unwrap();
        assert_eq!(grant.token_type(), "Bearer");
        assert_eq!(grant.dpop_jkt(), None);
        let grant = grant.bind_dpop(&proof);
        assert_eq!(grant.dpop_jkt(), Some(ec.thumbprint().as_str()));
        let response = grant.respond(&AccessToken::new("t"));
        let body: Value = serde_json::from_slice(response.body()).unwrap();
        assert_eq!(body["token_type"], "DPoP");
        // Replayed, or without the nonce the server wants.
        let e = endpoint
            .verify_dpop(at(T0), &headers, &post(&uri), Some(&bound), &mut v)
            .unwrap_err();
        assert_eq!(
            (e.code().as_str(), e.reason()),
            ("invalid_dpop_proof", &Rejection::Dpop(DpopError::Replayed))
        );
        let e = endpoint
            .verify_dpop(
                at(T0),
                &headers,
                &post(&uri).nonce(Some("n")),
                Some(&plain),
                &mut v,
            )
            .unwrap_err();
        assert_eq!(e.code().as_str(), "use_dpop_nonce");
        assert_eq!(e.dpop_nonce(), Some("n"));
        assert_eq!(e.to_response().headers()["dpop-nonce"], "n");
        let mut two = headers.clone();
        two.append("dpop", HeaderValue::from_static("x"));
        let e = endpoint
            .verify_dpop(at(T0), &two, &post(&uri), Some(&plain), &mut v)
            .unwrap_err();
        assert_eq!(e.reason(), &Rejection::Dpop(DpopError::Multiple));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 256, .. Default::default() })]

        /// No proof, however malformed, makes the verifier panic; each is a typed refusal and
        /// nothing is remembered.
        #[test]
        fn arbitrary_proofs_are_refused_without_panics(
            header in "[ -~]{0,80}",
            claims in "[ -~]{0,120}",
            signature in "[A-Za-z0-9_-]{0,90}",
            raw in "[ -~]{0,200}",
            alg in proptest::sample::select(vec!["ES256", "EdDSA", "RS256", "HS256", "none", ""]),
        ) {
            let uri: Uri = URI.parse().unwrap();
            let jwk = ec().public_members();
            let mut v = DpopVerifier::new();
            let structured = format!(
                "{}.{}.{signature}",
                b64(format!(r#"{{"typ":"dpop+jwt","alg":"{alg}","jwk":{jwk},{header}}}"#)),
                b64(format!(r#"{{"htm":"POST","htu":"{URI}",{claims}}}"#)),
            );
            let plain = format!("{}.{}.{signature}", b64(&header), b64(&claims));
            for proof in [structured, plain, raw] {
                let result = check(&mut v, T0, &proof, &post(&uri).nonce(Some("n")));
                proptest::prop_assert!(result.is_err());
                if let Err(e) = result {
                    let _ = e.to_endpoint_error(Some("n")).to_response();
                    let _ = v.challenge(&e).to_response();
                }
            }
            proptest::prop_assert!(v.replay_cache().is_empty());
        }
    }
}
