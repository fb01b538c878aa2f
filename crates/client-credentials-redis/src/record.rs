//! What is stored where: the Redis keys of a request shape, the stored value (the core's
//! token record, encrypted or not), the lock's value and scripts. Whether a stored token is
//! taken, and how long it is kept, are the core's rules ([`Config::check_stored`],
//! [`Policy::store_ttl`](client_credentials_core::Policy::store_ttl)).
//!
//! [`Config::check_stored`]: client_credentials_core::Config::check_stored

use std::fmt;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use client_credentials_core::{MAX_LIFETIME, StoredTokenProblem, Token, TokenRequest};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use zeroize::{Zeroize as _, Zeroizing};

use crate::Error;

/// The largest value read back from Redis; anything longer is not a token record. Reads ask
/// for one byte more than this (`GETRANGE`), so a huge value is never transferred.
pub(crate) const MAX_VALUE: usize = 64 * 1024;

/// The two Redis keys of one request shape.
#[derive(Clone, Debug)]
pub(crate) struct Keys {
    /// Where the token record lives.
    pub(crate) token: String,
    /// The fetch lock of the fleet.
    pub(crate) lock: String,
}

impl Keys {
    pub(crate) fn new(prefix: &str, request: &TokenRequest) -> Self {
        let digest = digest(request);
        Self {
            token: format!("{prefix}:token:{digest}"),
            lock: format!("{prefix}:lock:{digest}"),
        }
    }
}

/// SHA-256, in hex, of a domain tag and the core's cache key: everything that shapes the
/// request (endpoint, client id, auth method, body format, scopes, audience, resources,
/// extra parameters), never the secret.
pub(crate) fn digest(request: &TokenRequest) -> String {
    let mut hash = Sha256::new();
    hash.update(b"client-credentials-redis token v1\n");
    hash.update(request.cache_key().as_str().as_bytes());
    hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// A 256-bit key that encrypts the stored tokens (ChaCha20-Poly1305), with an id that is
/// stored beside each value so that keys can be rotated.
///
/// `Debug` shows the id only; the key is zeroized on drop.
///
/// ```
/// use client_credentials::redis::EncryptionKey;
/// let key = EncryptionKey::new("2026-01", [7; 32])?;
/// assert_eq!(key.id(), "2026-01");
/// assert_eq!(format!("{key:?}"), r#"EncryptionKey { id: "2026-01", key: [redacted] }"#);
/// # Ok::<_, client_credentials_redis::Error>(())
/// ```
#[derive(Clone)]
pub struct EncryptionKey {
    id: String,
    key: Zeroizing<[u8; 32]>,
}

impl EncryptionKey {
    /// A key named `id` (1 to 32 characters among `A–Z a–z 0–9 . _ -`).
    ///
    /// # Errors
    /// [`Error::InvalidKeyId`] when the id is empty, too long or has other characters.
    pub fn new(id: impl Into<String>, key: [u8; 32]) -> Result<Self, Error> {
        let id = id.into();
        let valid = (1..=32).contains(&id.len())
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        let mut key = key;
        let zeroized = Zeroizing::new(key);
        key.zeroize();
        if valid {
            Ok(Self { id, key: zeroized })
        } else {
            Err(Error::InvalidKeyId)
        }
    }

    /// The key's id, stored in clear beside each value it encrypts.
    #[must_use]
    pub fn id(&self) -> &str {
        &self.id
    }

    fn cipher(&self) -> ChaCha20Poly1305 {
        ChaCha20Poly1305::new(&Key::from(*self.key))
    }
}

impl fmt::Debug for EncryptionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EncryptionKey")
            .field("id", &self.id)
            .field("key", &format_args!("[redacted]"))
            .finish()
    }
}

/// The algorithm name stored in encrypted values.
const ALG: &str = "chacha20poly1305";

/// An encrypted value: the token record sealed with a key, bound to the Redis key.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Sealed<'a> {
    v: u32,
    alg: std::borrow::Cow<'a, str>,
    kid: std::borrow::Cow<'a, str>,
    nonce: String,
    ct: String,
}

/// How values are written and read: in clear (the core's token record, JSON) or sealed with
/// the first key; sealed values are opened with any key of the ring whose id matches.
#[derive(Clone, Debug, Default)]
pub(crate) struct Keyring {
    keys: Vec<EncryptionKey>,
}

/// Why a stored value was not taken. Never holds any part of the value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Unreadable {
    /// Longer than [`MAX_VALUE`].
    TooLarge,
    /// Not a record of the expected kind (garbage, or clear text where a key is set).
    Malformed,
    /// Sealed with a key id this store does not have.
    UnknownKey,
    /// Sealed, but the authentication failed (another key with the same id, a value moved
    /// from another Redis key, tampering).
    Forged,
    /// A readable record of a token this client would not have taken from its token
    /// endpoint ([`Config::check_stored`](client_credentials_core::Config::check_stored)): a
    /// token type the configuration does not accept, or no expiry where the configuration
    /// gives every token one. Only a foreign writer stores such a record. (A token whose
    /// usable life is over is stale, not unreadable.)
    NotAccepted(StoredTokenProblem),
}

impl fmt::Display for Unreadable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::TooLarge => "value too large",
            Self::Malformed => "not a token record",
            Self::UnknownKey => "sealed with an unknown key id",
            Self::Forged => "authentication failed",
            Self::NotAccepted(problem) => {
                return write!(f, "a token this client does not accept: {problem}");
            }
        })
    }
}

impl Keyring {
    pub(crate) fn push(&mut self, key: EncryptionKey) {
        self.keys.retain(|k| k.id != key.id);
        self.keys.push(key);
    }

    /// Makes `key` the one that encrypts; the others still decrypt.
    pub(crate) fn push_front(&mut self, key: EncryptionKey) {
        self.keys.retain(|k| k.id != key.id);
        self.keys.insert(0, key);
    }

    pub(crate) fn encrypts(&self) -> bool {
        !self.keys.is_empty()
    }

    /// The value to store for `token` under the Redis key `redis_key`; `None` when no
    /// random nonce could be had (then nothing is stored).
    pub(crate) fn seal(&self, redis_key: &str, token: &Token) -> Option<Vec<u8>> {
        let record = Zeroizing::new(serde_json::to_vec(&token.storable()).ok()?);
        let Some(key) = self.keys.first() else {
            return Some(record.to_vec());
        };
        let mut nonce = [0_u8; 12];
        getrandom::fill(&mut nonce).ok()?;
        let aad = aad(&key.id, redis_key);
        let ct = key
            .cipher()
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: &record,
                    aad: &aad,
                },
            )
            .ok()?;
        serde_json::to_vec(&Sealed {
            v: 1,
            alg: ALG.into(),
            kid: key.id.as_str().into(),
            nonce: URL_SAFE_NO_PAD.encode(nonce),
            ct: URL_SAFE_NO_PAD.encode(ct),
        })
        .ok()
    }

    /// The token stored under `redis_key`, from its value. Never panics, whatever the bytes.
    pub(crate) fn open(&self, redis_key: &str, value: &[u8]) -> Result<Token, Unreadable> {
        if value.len() > MAX_VALUE {
            return Err(Unreadable::TooLarge);
        }
        if !self.encrypts() {
            return decode_record(value);
        }
        let sealed: Sealed<'_> =
            serde_json::from_slice(value).map_err(|_| Unreadable::Malformed)?;
        if sealed.v != 1 || sealed.alg != ALG {
            return Err(Unreadable::Malformed);
        }
        let key = self
            .keys
            .iter()
            .find(|k| k.id == sealed.kid)
            .ok_or(Unreadable::UnknownKey)?;
        let nonce = URL_SAFE_NO_PAD
            .decode(&sealed.nonce)
            .map_err(|_| Unreadable::Malformed)?;
        let ct = URL_SAFE_NO_PAD
            .decode(&sealed.ct)
            .map_err(|_| Unreadable::Malformed)?;
        let nonce = <[u8; 12]>::try_from(nonce.as_slice()).map_err(|_| Unreadable::Malformed)?;
        let aad = aad(&key.id, redis_key);
        let record = Zeroizing::new(
            key.cipher()
                .decrypt(
                    &Nonce::from(nonce),
                    Payload {
                        msg: &ct,
                        aad: &aad,
                    },
                )
                .map_err(|_| Unreadable::Forged)?,
        );
        decode_record(&record)
    }
}

/// Opens `value` as a store with these `keys` opens what it reads under `redis_key` (no
/// keys: values are clear records). For the fuzz targets only; not part of the API.
#[doc(hidden)]
#[must_use]
pub fn open_record(keys: &[EncryptionKey], redis_key: &str, value: &[u8]) -> Option<Token> {
    let mut ring = Keyring::default();
    for key in keys {
        ring.push(key.clone());
    }
    ring.open(redis_key, value).ok()
}

/// The core's token record, read as input like any other: its lifetime and refresh point
/// are capped at the parser's [`MAX_LIFETIME`] here, whatever the core's own reading does,
/// so that no record (a foreign or forged one: without an encryption key, anyone who can
/// write to Redis can write one) hands out a token that lives longer than a token
/// endpoint's answer could.
fn decode_record(record: &[u8]) -> Result<Token, Unreadable> {
    let cap_ms = u64::try_from(MAX_LIFETIME.as_millis()).unwrap_or(u64::MAX);
    let mut fields: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(record).map_err(|_| Unreadable::Malformed)?;
    for name in ["lifetime_ms", "refresh_in_ms"] {
        if let Some(value) = fields.get_mut(name)
            && value.as_u64().is_some_and(|ms| ms > cap_ms)
        {
            *value = serde_json::Value::from(cap_ms);
        }
    }
    // Moved, not copied: the access token's string goes from the map into the token.
    serde_json::from_value(serde_json::Value::Object(fields)).map_err(|_| Unreadable::Malformed)
}

/// The associated data: the format, the key id and the Redis key, so that a value cannot be
/// moved to another key, or passed off as sealed with another key.
fn aad(kid: &str, redis_key: &str) -> Vec<u8> {
    format!("client-credentials-redis v1\0{ALG}\0{kid}\0{redis_key}").into_bytes()
}

/// A value unique to one lock holder: 128 random bits, in hex.
pub(crate) fn lock_value(random: [u8; 16]) -> String {
    random.iter().map(|b| format!("{b:02x}")).collect()
}

/// Takes the lock for `ARGV[1]` for `ARGV[2]` ms if it is free, or already this owner's
/// (a retried acquisition whose first reply was lost). 1: taken; 0: another owner holds it.
pub(crate) const ACQUIRE: &str = "local held = redis.call('GET', KEYS[1]) \
if held == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end \
if held then return 0 end \
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1";

/// Deletes the lock only if it still holds this owner's value.
pub(crate) const RELEASE: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end";

/// Milliseconds for `PX`, at least one.
pub(crate) fn px(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use client_credentials_core::http::{HeaderMap, StatusCode};
    use client_credentials_core::{Config, MissingLifetime, Policy};
    use std::time::UNIX_EPOCH;

    fn request(scope: &str) -> TokenRequest {
        Config::builder()
            .token_url("https://as.example.com/token")
            .client_id("c")
            .client_secret("very-secret")
            .scopes([scope])
            .build()
            .unwrap()
            .default_request()
    }

    fn token(lifetime: u64) -> Token {
        let body = format!(
            r#"{{"access_token":"tok-abc","token_type":"Bearer","expires_in":{lifetime}}}"#
        );
        request("a")
            .parse_response(
                UNIX_EPOCH + Duration::from_secs(1_700_000_000),
                StatusCode::OK,
                &HeaderMap::new(),
                body.as_bytes(),
            )
            .unwrap()
    }

    #[test]
    fn keys_name_the_shape_and_never_the_secret() {
        let a = Keys::new("p", &request("a"));
        let b = Keys::new("p", &request("b"));
        assert_ne!(a.token, b.token);
        assert!(a.token.starts_with("p:token:") && a.lock.starts_with("p:lock:"));
        assert_eq!(a.token.len(), "p:token:".len() + 64);
        assert!(!a.token.contains("very-secret"));
        assert_eq!(a.token, Keys::new("p", &request("a")).token, "stable");
    }

    #[test]
    fn clear_records_round_trip() {
        let ring = Keyring::default();
        let value = ring.seal("k", &token(3600)).unwrap();
        assert!(String::from_utf8_lossy(&value).contains("tok-abc"));
        let back = ring.open("k", &value).unwrap();
        assert_eq!(back.access_token().expose_secret(), "tok-abc");
    }

    #[test]
    fn sealed_records_hide_the_token_and_bind_the_key() {
        let mut ring = Keyring::default();
        ring.push(EncryptionKey::new("k1", [1; 32]).unwrap());
        let value = ring.seal("redis-key", &token(3600)).unwrap();
        assert!(!String::from_utf8_lossy(&value).contains("tok-abc"));
        assert_eq!(
            ring.open("redis-key", &value)
                .unwrap()
                .access_token()
                .expose_secret(),
            "tok-abc"
        );
        assert_eq!(
            ring.open("other-key", &value).err(),
            Some(Unreadable::Forged)
        );
        // Two seals of one token differ (a fresh nonce each time).
        assert_ne!(value, ring.seal("redis-key", &token(3600)).unwrap());
        // A clear record is not taken where a key is set, nor a sealed one without keys.
        let clear = Keyring::default().seal("redis-key", &token(3600)).unwrap();
        assert_eq!(
            ring.open("redis-key", &clear).err(),
            Some(Unreadable::Malformed)
        );
        assert!(Keyring::default().open("redis-key", &value).is_err());
        // Another key with the same id fails authentication; an unknown id is named.
        let mut other = Keyring::default();
        other.push(EncryptionKey::new("k1", [2; 32]).unwrap());
        assert_eq!(
            other.open("redis-key", &value).err(),
            Some(Unreadable::Forged)
        );
        let mut rotated = Keyring::default();
        rotated.push(EncryptionKey::new("k2", [2; 32]).unwrap());
        assert_eq!(
            rotated.open("redis-key", &value).err(),
            Some(Unreadable::UnknownKey)
        );
        rotated.push(EncryptionKey::new("k1", [1; 32]).unwrap());
        assert!(
            rotated.open("redis-key", &value).is_ok(),
            "old keys decrypt"
        );
    }

    #[test]
    fn garbage_never_panics() {
        let mut sealed = Keyring::default();
        sealed.push(EncryptionKey::new("k1", [1; 32]).unwrap());
        let inputs: Vec<Vec<u8>> = vec![
            b"".to_vec(),
            b"garbage".to_vec(),
            b"{}".to_vec(),
            b"\xff\xfe".to_vec(),
            br#"{"v":1,"alg":"chacha20poly1305","kid":"k1","nonce":"","ct":""}"#.to_vec(),
            br#"{"v":1,"alg":"chacha20poly1305","kid":"k1","nonce":"AAAAAAAAAAAAAAAA","ct":"AAAA"}"#
                .to_vec(),
            // (A space is RFC 6749 A.12 VSCHAR; a control character no header can carry.)
            br#"{"v":1,"access_token":"a\u0001b","token_type":"Bearer","issued_at_ms":1,"scope_source":"granted"}"#
                .to_vec(),
            br#"{"v":2,"access_token":"a","token_type":"Bearer","issued_at_ms":18446744073709551615,"scope_source":"granted"}"#
                .to_vec(),
            vec![b'{'; MAX_VALUE + 1],
        ];
        for input in &inputs {
            assert!(Keyring::default().open("k", input).is_err());
            assert!(sealed.open("k", input).is_err());
        }
    }

    #[test]
    fn records_are_read_as_input_capped_and_checked() {
        let record = |token_type: &str, lifetime: Option<u64>| {
            let mut r = serde_json::json!({
                "v": 1, "access_token": "a", "token_type": token_type,
                "issued_at_ms": 1_700_000_000_000_u64, "scope_source": "granted",
                "refresh_in_ms": u64::MAX / 2,
            });
            if let Some(ms) = lifetime {
                r["lifetime_ms"] = ms.into();
            }
            serde_json::to_vec(&r).unwrap()
        };
        let ring = Keyring::default();
        let huge = ring
            .open("k", &record("Bearer", Some(u64::MAX / 2)))
            .unwrap();
        assert_eq!(huge.lifetime(), Some(MAX_LIFETIME));
        // The core's one rule then decides, as for a token endpoint's answer: the capped
        // record passes, a type or a missing expiry the configuration refuses does not.
        let policy = Policy::default();
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_001);
        let config = request("a").config().clone();
        assert_eq!(config.check_stored(&policy, now, &huge), Ok(()));
        let mac = ring.open("k", &record("MAC", Some(60_000))).unwrap();
        assert_eq!(
            config.check_stored(&policy, now, &mac),
            Err(StoredTokenProblem::TokenType)
        );
        let endless = ring.open("k", &record("bearer", None)).unwrap();
        assert_eq!(
            config.check_stored(&policy, now, &endless),
            Err(StoredTokenProblem::NoExpiry)
        );
        let keeps_endless = Config::builder()
            .token_url("https://as.example.com/token")
            .client_id("c")
            .client_secret("s")
            .missing_lifetime(MissingLifetime::NeverExpires)
            .accept_token_type("MAC")
            .build()
            .unwrap();
        assert_eq!(keeps_endless.check_stored(&policy, now, &endless), Ok(()));
        assert_eq!(keeps_endless.check_stored(&policy, now, &mac), Ok(()));
    }

    #[test]
    fn key_ids_are_checked() {
        assert!(EncryptionKey::new("", [0; 32]).is_err());
        assert!(EncryptionKey::new("a:b", [0; 32]).is_err());
        assert!(EncryptionKey::new("x".repeat(33), [0; 32]).is_err());
        assert!(EncryptionKey::new("v1.key_A-2", [0; 32]).is_ok());
    }
}
