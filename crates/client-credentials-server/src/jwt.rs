//! RFC 9068 JWT access tokens, signed with a key made at start: RS256 (a 2048-bit RSA key)
//! or EdDSA (an Ed25519 key).

use std::fmt;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_SHA256, RsaKeyPair};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signer as _, SigningKey};
use serde_json::{Value, json};

/// The algorithm that signs JWT access tokens ([`crate::TokenFormat::Jwt`]), with a key
/// made when the server starts and published at `/jwks.json`.
///
/// RS256 is the default because RFC 9068 §4 requires every resource server to support it:
/// whatever the language of the service under development, its JWT library can verify
/// these tokens.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum JwtAlgorithm {
    /// `RS256`: RSASSA-PKCS1-v1_5 with SHA-256 (RFC 7518 §3.3), with a 2048-bit RSA key.
    /// The JWK has `kty: RSA`, `n` and `e`. The default.
    #[default]
    Rs256,
    /// `EdDSA` with an Ed25519 key (RFC 8037). The JWK has `kty: OKP`, `crv: Ed25519` and
    /// `x`. Smaller tokens, but not every JWT library verifies it.
    EdDsa,
}

impl JwtAlgorithm {
    /// The `alg` name (RFC 7518 §3.1, RFC 8037 §3.1): `"RS256"` or `"EdDSA"`.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Rs256 => "RS256",
            Self::EdDsa => "EdDSA",
        }
    }

    /// The algorithm with this `alg` name (exact case, as in a JWT header).
    ///
    /// ```
    /// use client_credentials::embedded::JwtAlgorithm;
    /// assert_eq!(JwtAlgorithm::from_name("RS256"), Some(JwtAlgorithm::Rs256));
    /// assert_eq!(JwtAlgorithm::from_name("EdDSA"), Some(JwtAlgorithm::EdDsa));
    /// assert_eq!(JwtAlgorithm::from_name("HS256"), None);
    /// ```
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        [Self::Rs256, Self::EdDsa]
            .into_iter()
            .find(|a| a.name() == name)
    }
}

impl fmt::Display for JwtAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The private key.
enum Key {
    Rs256(RsaKeyPair),
    EdDsa(SigningKey),
}

/// The key could not be made, or a token could not be signed (an internal failure of the
/// cryptographic library, or a key it encoded in an unexpected way).
#[derive(Debug)]
pub(crate) struct KeyError;

/// The signing key, its id and its public JWK. `Debug` shows the algorithm and key id only.
pub(crate) struct JwtSigner {
    key: Key,
    kid: String,
    jwk: Value,
}

impl fmt::Debug for JwtSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtSigner")
            .field("alg", &self.algorithm().name())
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl JwtSigner {
    /// A new key for `algorithm`, with a key id from 12 random bytes. An RS256 key is made
    /// by aws-lc (a few tens of milliseconds even in debug builds); an Ed25519 key comes from
    /// 32 random bytes, `ed25519_seed`, which RS256 ignores.
    pub(crate) fn new(
        algorithm: JwtAlgorithm,
        ed25519_seed: &[u8; 32],
        kid: &[u8; 12],
    ) -> Result<Self, KeyError> {
        let kid = URL_SAFE_NO_PAD.encode(kid);
        let (key, public) = match algorithm {
            JwtAlgorithm::Rs256 => {
                let pair = RsaKeyPair::generate(KeySize::Rsa2048).map_err(|_| KeyError)?;
                let (n, e) = rsa_public_components(pair.public_key().as_ref()).ok_or(KeyError)?;
                let public = json!({
                    "kty": "RSA",
                    "n": URL_SAFE_NO_PAD.encode(n),
                    "e": URL_SAFE_NO_PAD.encode(e),
                });
                (Key::Rs256(pair), public)
            }
            JwtAlgorithm::EdDsa => {
                let key = SigningKey::from_bytes(ed25519_seed);
                let public = json!({
                    "kty": "OKP",
                    "crv": "Ed25519",
                    "x": URL_SAFE_NO_PAD.encode(key.verifying_key().as_bytes()),
                });
                (Key::EdDsa(key), public)
            }
        };
        let mut jwk = public;
        if let Some(map) = jwk.as_object_mut() {
            map.insert("kid".to_owned(), Value::from(kid.as_str()));
            map.insert("use".to_owned(), Value::from("sig"));
            map.insert("alg".to_owned(), Value::from(algorithm.name()));
        }
        Ok(Self { key, kid, jwk })
    }

    /// The signing algorithm.
    pub(crate) fn algorithm(&self) -> JwtAlgorithm {
        match self.key {
            Key::Rs256(_) => JwtAlgorithm::Rs256,
            Key::EdDsa(_) => JwtAlgorithm::EdDsa,
        }
    }

    /// `{"keys":[…]}`, the public key only.
    pub(crate) fn jwks(&self) -> Value {
        json!({ "keys": [self.jwk] })
    }

    /// A compact JWS with `typ: at+jwt` (RFC 9068 §2.1) over `claims`.
    pub(crate) fn sign(&self, claims: &Value) -> Result<String, KeyError> {
        let header = json!({ "alg": self.algorithm().name(), "typ": "at+jwt", "kid": self.kid });
        let mut input = URL_SAFE_NO_PAD.encode(header.to_string());
        input.push('.');
        input.push_str(&URL_SAFE_NO_PAD.encode(claims.to_string()));
        let signature = match &self.key {
            Key::Rs256(pair) => {
                let mut signature = vec![0; pair.public_modulus_len()];
                pair.sign(
                    &RSA_PKCS1_SHA256,
                    &SystemRandom::new(),
                    input.as_bytes(),
                    &mut signature,
                )
                .map_err(|_| KeyError)?;
                signature
            }
            Key::EdDsa(key) => key.sign(input.as_bytes()).to_bytes().to_vec(),
        };
        input.push('.');
        input.push_str(&URL_SAFE_NO_PAD.encode(signature));
        Ok(input)
    }
}

/// The modulus and public exponent of a DER `RSAPublicKey` (RFC 8017 §A.1.1:
/// `SEQUENCE { modulus INTEGER, publicExponent INTEGER }`), as unsigned big-endian bytes
/// without leading zeros, as a JWK wants them (RFC 7518 §6.3.1). `None` for anything else.
fn rsa_public_components(der: &[u8]) -> Option<(&[u8], &[u8])> {
    let (sequence, rest) = der_element(der, 0x30)?;
    if !rest.is_empty() {
        return None;
    }
    let (n, rest) = der_element(sequence, 0x02)?;
    let (e, rest) = der_element(rest, 0x02)?;
    if !rest.is_empty() {
        return None;
    }
    Some((unsigned(n)?, unsigned(e)?))
}

/// One DER element with tag `tag` at the start of `input`: its content and what follows.
fn der_element(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (&found, rest) = input.split_first()?;
    if found != tag {
        return None;
    }
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        // Long form: the low bits say how many length bytes follow (at most 4 here).
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 {
            return None;
        }
        let (bytes, after) = rest.split_at_checked(count)?;
        rest = after;
        bytes
            .iter()
            .fold(0usize, |len, &b| (len << 8) | usize::from(b))
    };
    rest.split_at_checked(len)
}

/// A positive DER INTEGER's magnitude: the sign byte (a leading zero) removed.
fn unsigned(integer: &[u8]) -> Option<&[u8]> {
    let magnitude = match integer {
        [0, rest @ ..] => rest,
        [first, ..] if first & 0x80 != 0 => return None,
        other => other,
    };
    match magnitude {
        [] | [0, ..] => None,
        _ => Some(magnitude),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // Tests: a panic is a failure report.

    use super::*;

    #[test]
    fn rsa_public_key_der() {
        // SEQUENCE { INTEGER 0x00c5…, INTEGER 65537 }, short lengths.
        let der = [
            0x30, 0x0a, 0x02, 0x03, 0x00, 0xc5, 0x01, 0x02, 0x03, 0x01, 0x00, 0x01,
        ];
        assert_eq!(
            rsa_public_components(&der),
            Some((&[0xc5, 0x01][..], &[0x01, 0x00, 0x01][..]))
        );
        // Long-form lengths, as a 2048-bit key has.
        let mut long = vec![0x30, 0x82, 0x01, 0x0a, 0x02, 0x82, 0x01, 0x01, 0x00];
        long.extend(std::iter::repeat_n(0xab, 256));
        long.extend([0x02, 0x03, 0x01, 0x00, 0x01]);
        let (n, e) = rsa_public_components(&long).unwrap();
        assert_eq!(n.len(), 256);
        assert_eq!(e, [0x01, 0x00, 0x01]);

        for bad in [
            &[][..],
            &[0x30],
            &[0x30, 0x05, 0x02, 0x01, 0x01], // Truncated.
            &[0x31, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x03], // Not a SEQUENCE.
            &[0x30, 0x06, 0x02, 0x01, 0x81, 0x02, 0x01, 0x03], // Negative modulus.
            &[0x30, 0x06, 0x02, 0x01, 0x00, 0x02, 0x01, 0x03], // Zero modulus.
            &[0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x03, 0x00], // Trailing byte.
            &[0x30, 0x80, 0x02, 0x01, 0x01, 0x02, 0x01, 0x03, 0x00, 0x00], // Indefinite length.
            &[0x30, 0x85, 0xff, 0xff, 0xff, 0xff, 0xff], // Absurd length.
        ] {
            assert_eq!(rsa_public_components(bad), None, "{bad:02x?}");
        }
    }

    #[test]
    fn debug_shows_no_key() {
        for algorithm in [JwtAlgorithm::Rs256, JwtAlgorithm::EdDsa] {
            let signer = JwtSigner::new(algorithm, &[7; 32], &[1; 12]).unwrap();
            assert_eq!(
                format!("{signer:?}"),
                format!(
                    "JwtSigner {{ alg: {:?}, kid: \"AQEBAQEBAQEBAQEB\", .. }}",
                    algorithm.name()
                )
            );
            assert_eq!(signer.jwks()["keys"][0]["alg"], algorithm.name());
            assert!(signer.jwks()["keys"][0].get("d").is_none());
        }
    }
}
