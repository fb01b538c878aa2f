//! Client assertions at the token endpoint (RFC 7521 §4.2, RFC 7523 §2.2 and §3): the
//! request syntax, the JWS compact serialisation, and why an assertion was refused.
//!
//! This part needs no cryptography, so that an endpoint built without the `jwt` feature can
//! still recognise an assertion and refuse it with the right answer. Verification (keys,
//! signatures, claims, replays) is in [`AssertionVerifier`](crate::server::AssertionVerifier),
//! feature `jwt`.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};

/// The `client_assertion_type` of a JWT client assertion (RFC 7523 §2.2).
pub(crate) const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The largest `client_assertion` accepted: 16 KiB, several times what an RS256 assertion
/// with a certificate thumbprint takes (under 1 KiB), far under what would cost anything to
/// refuse.
pub const MAX_ASSERTION_LEN: usize = 16 * 1024;

/// Why a client assertion was refused. Every one is answered with `invalid_client` (RFC 7521
/// §4.2.1), and none holds any part of the assertion or of a secret: only claim names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AssertionRejection {
    /// `client_assertion_type` is not `urn:ietf:params:oauth:client-assertion-type:jwt-bearer`.
    UnsupportedAssertionType,
    /// The assertion is longer than [`MAX_ASSERTION_LEN`].
    TooLarge {
        /// The cap, in bytes.
        limit: usize,
    },
    /// Not a JWS in compact form: three base64url segments without padding, the first two
    /// JSON objects, the last a signature.
    Malformed,
    /// The `alg` is missing, `none`, or one the endpoint does not verify (it verifies RS256,
    /// PS256, ES256, EdDSA and, for `client_secret_jwt`, HS256).
    UnsupportedAlgorithm,
    /// The `alg` is one the verifier was told not to accept
    /// ([`AssertionVerifier::algorithms`](crate::server::AssertionVerifier::algorithms)).
    AlgorithmNotAllowed,
    /// The header has a `crit` member (RFC 7515 §4.1.11): extensions this endpoint does not
    /// understand, so it must refuse.
    UnsupportedHeader,
    /// The client has no registered key with the header's `kid` (or no keys at all).
    UnknownKey,
    /// The client has keys (with the header's `kid`, if any), but none of the type the `alg`
    /// needs: an ES256 header for an RSA key, say.
    KeyMismatch,
    /// `client_secret_jwt`, but the client has no secret to verify HS256 with, or one shorter
    /// than the 32 bytes RFC 7518 §3.2 requires.
    SecretUnusable,
    /// The signature does not verify with the client's key or secret.
    BadSignature,
    /// A required claim is missing: `iss`, `sub`, `aud`, `exp`, `iat` or `jti`.
    MissingClaim(&'static str),
    /// A claim has the wrong type (a string `exp`, an empty `jti`…).
    InvalidClaim(&'static str),
    /// `iss` is not the client id (RFC 7523 §3).
    IssuerMismatch,
    /// `sub` is not the client id (RFC 7523 §3).
    SubjectMismatch,
    /// `aud` holds neither the token endpoint's URL nor any other accepted audience.
    WrongAudience,
    /// `exp` has passed (beyond the leeway).
    Expired,
    /// `nbf` has not come yet (beyond the leeway).
    NotYetValid,
    /// `iat` is in the future (beyond the leeway).
    IssuedInFuture,
    /// `iat` is older than the longest lifetime allowed.
    TooOld,
    /// `exp - iat` is longer than the longest lifetime allowed.
    LifetimeTooLong,
    /// This client already used this `jti`, and the assertion has not expired: a replay.
    Replayed,
    /// The replay cache is full of unexpired assertions: a flood. Refused rather than
    /// forgetting one that could then be replayed.
    ReplayCacheFull,
    /// The credentials are an assertion, but they were given to
    /// [`TokenEndpoint::authenticate`](crate::server::TokenEndpoint::authenticate), which has
    /// neither the time nor a replay cache: use `authenticate_at` (feature `jwt`).
    NeedsVerifier,
}

impl fmt::Display for AssertionRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnsupportedAssertionType => f.write_str("unsupported client_assertion_type"),
            Self::TooLarge { limit } => write!(f, "client assertion over {limit} bytes"),
            Self::Malformed => f.write_str("client assertion is not a compact JWS"),
            Self::UnsupportedAlgorithm => f.write_str("unsupported or missing alg"),
            Self::AlgorithmNotAllowed => f.write_str("alg not allowed"),
            Self::UnsupportedHeader => f.write_str("critical header extension"),
            Self::UnknownKey => f.write_str("no registered key matches"),
            Self::KeyMismatch => f.write_str("alg does not match the registered key type"),
            Self::SecretUnusable => f.write_str("no client secret usable for HS256"),
            Self::BadSignature => f.write_str("signature does not verify"),
            Self::MissingClaim(claim) => write!(f, "missing claim {claim}"),
            Self::InvalidClaim(claim) => write!(f, "invalid claim {claim}"),
            Self::IssuerMismatch => f.write_str("iss is not the client id"),
            Self::SubjectMismatch => f.write_str("sub is not the client id"),
            Self::WrongAudience => f.write_str("aud is not this endpoint"),
            Self::Expired => f.write_str("assertion expired"),
            Self::NotYetValid => f.write_str("assertion not yet valid (nbf)"),
            Self::IssuedInFuture => f.write_str("iat is in the future"),
            Self::TooOld => f.write_str("iat is too old"),
            Self::LifetimeTooLong => f.write_str("exp - iat is too long"),
            Self::Replayed => f.write_str("jti already used"),
            Self::ReplayCacheFull => f.write_str("replay cache full"),
            Self::NeedsVerifier => f.write_str("assertions need authenticate_at"),
        }
    }
}

/// A compact JWS taken apart: the decoded header and claims, the signature, and the input
/// the signature covers. Decoding only: nothing here is verified.
#[cfg_attr(
    not(feature = "jwt"),
    allow(
        dead_code,
        reason = "the signature is only checked with the jwt feature"
    )
)]
pub(crate) struct Jws<'a> {
    pub(crate) signing_input: &'a str,
    pub(crate) header: Map<String, Value>,
    pub(crate) claims: Map<String, Value>,
    pub(crate) signature: Vec<u8>,
}

impl<'a> Jws<'a> {
    /// Splits and decodes `jwt`, refusing anything over [`MAX_ASSERTION_LEN`].
    pub(crate) fn decode(jwt: &'a str) -> Result<Self, AssertionRejection> {
        if jwt.len() > MAX_ASSERTION_LEN {
            return Err(AssertionRejection::TooLarge {
                limit: MAX_ASSERTION_LEN,
            });
        }
        let mut segments = jwt.split('.');
        let (Some(header), Some(claims), Some(signature), None) = (
            segments.next(),
            segments.next(),
            segments.next(),
            segments.next(),
        ) else {
            return Err(AssertionRejection::Malformed);
        };
        let signing_input = &jwt[..header.len() + 1 + claims.len()];
        let object = |segment: &str| {
            let bytes = URL_SAFE_NO_PAD
                .decode(segment)
                .map_err(|_| AssertionRejection::Malformed)?;
            serde_json::from_slice::<Map<String, Value>>(&bytes)
                .map_err(|_| AssertionRejection::Malformed)
        };
        let header = object(header)?;
        let claims = object(claims)?;
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| AssertionRejection::Malformed)?;
        if signature.is_empty() {
            return Err(AssertionRejection::Malformed);
        }
        Ok(Self {
            signing_input,
            header,
            claims,
            signature,
        })
    }

    /// The header's `alg`, or `None` when it is absent or not a string.
    pub(crate) fn alg(&self) -> Option<&str> {
        self.header.get("alg").and_then(Value::as_str)
    }

    /// A string claim, `None` when absent or not a string.
    pub(crate) fn claim_str(&self, name: &str) -> Option<&str> {
        self.claims.get(name).and_then(Value::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        URL_SAFE_NO_PAD.encode(s)
    }

    #[test]
    fn decoding_refuses_what_is_not_a_compact_jws() {
        let h = b64(r#"{"alg":"RS256"}"#);
        let c = b64(r#"{"sub":"a"}"#);
        let ok = format!("{h}.{c}.AAAA");
        let jws = Jws::decode(&ok).ok().filter(|j| j.alg() == Some("RS256"));
        assert!(jws.is_some());
        assert_eq!(
            jws.map(|j| j.signing_input.len()),
            Some(h.len() + 1 + c.len())
        );
        let huge = "a".repeat(MAX_ASSERTION_LEN + 1);
        for (bad, why) in [
            (String::new(), AssertionRejection::Malformed),
            (format!("{h}.{c}"), AssertionRejection::Malformed),
            (format!("{h}.{c}.AAAA.AAAA"), AssertionRejection::Malformed),
            (format!("{h}.{c}."), AssertionRejection::Malformed),
            (format!("{h}=.{c}.AAAA"), AssertionRejection::Malformed),
            (format!("{h}.{c}.AA+A"), AssertionRejection::Malformed),
            (
                format!("{}.{c}.AAAA", b64("[1]")),
                AssertionRejection::Malformed,
            ),
            (
                format!("{}.{c}.AAAA", b64("{")),
                AssertionRejection::Malformed,
            ),
            (
                format!("{h}.{}.AAAA", b64("\"x\"")),
                AssertionRejection::Malformed,
            ),
            (format!("é.{c}.AAAA"), AssertionRejection::Malformed),
            (
                huge,
                AssertionRejection::TooLarge {
                    limit: MAX_ASSERTION_LEN,
                },
            ),
        ] {
            assert_eq!(Jws::decode(&bad).err(), Some(why), "{bad:.40}");
        }
    }
}
