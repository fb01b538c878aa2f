//! RFC 9068 JWT access tokens, signed with an Ed25519 key made at start.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signer as _, SigningKey};
use serde_json::{Value, json};

/// The signing key and its id. `Debug` shows the key id only.
pub(crate) struct JwtSigner {
    key: SigningKey,
    kid: String,
}

impl fmt::Debug for JwtSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtSigner")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl JwtSigner {
    /// A new key from 32 random bytes, and a key id from 12 more.
    pub(crate) fn new(seed: &[u8; 32], kid: &[u8; 12]) -> Self {
        Self {
            key: SigningKey::from_bytes(seed),
            kid: URL_SAFE_NO_PAD.encode(kid),
        }
    }

    /// The public key as a JWK (RFC 8037).
    pub(crate) fn jwk(&self) -> Value {
        json!({
            "kty": "OKP",
            "crv": "Ed25519",
            "x": URL_SAFE_NO_PAD.encode(self.key.verifying_key().as_bytes()),
            "kid": self.kid,
            "use": "sig",
            "alg": "EdDSA",
        })
    }

    /// `{"keys":[…]}`.
    pub(crate) fn jwks(&self) -> Value {
        json!({ "keys": [self.jwk()] })
    }

    /// A compact JWS with `typ: at+jwt` (RFC 9068 §2.1) over `claims`.
    pub(crate) fn sign(&self, claims: &Value) -> String {
        let header = json!({ "alg": "EdDSA", "typ": "at+jwt", "kid": self.kid });
        let mut input = URL_SAFE_NO_PAD.encode(header.to_string());
        input.push('.');
        input.push_str(&URL_SAFE_NO_PAD.encode(claims.to_string()));
        let signature = self.key.sign(input.as_bytes());
        input.push('.');
        input.push_str(&URL_SAFE_NO_PAD.encode(signature.to_bytes()));
        input
    }
}
