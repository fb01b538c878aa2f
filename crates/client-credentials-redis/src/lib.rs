//! Shares OAuth 2.0 client credentials tokens across a fleet through Redis, with one token
//! request per refresh period for the whole fleet where each process would make its own,
//! and never worse than no Redis.
//!
//! ```no_run
//! use client_credentials::redis::{EncryptionKey, RedisStore};
//! use client_credentials::ureq::{Client, Config};
//!
//! let store = RedisStore::builder("redis://redis.internal:6379/")
//!     .prefix("billing")
//!     .encryption_key(EncryptionKey::new("2026-01", [0x42; 32])?) // from your secret store
//!     .build()?;
//! let config = Config::builder()
//!     .token_url("https://auth.example.com/oauth2/token")
//!     .client_id("billing-service")
//!     .client_secret(std::env::var("CLIENT_SECRET")?)
//!     .build()?;
//! // Blocking (feature `ureq`); the async client (feature `reqwest`) takes the same store:
//! // `client_credentials::reqwest::Client::builder(config).shared_store(store).build()?`.
//! let client = Client::builder(config).shared_store(store).build();
//! let token = client.token()?; // from Redis if another replica fetched it, else fetched and shared
//! # let _ = token;
//! # Ok::<_, Box<dyn std::error::Error>>(())
//! ```
//!
//! # Set an encryption key
//!
//! Without an [`EncryptionKey`], stored tokens are plain JSON: whoever can read the Redis
//! keys can use the fleet's tokens, and whoever can **write** them can hand every process
//! of the fleet an access token of their choosing, which it then sends to your resource
//! servers. Set a key ([`RedisStoreBuilder::encryption_key`]) unless only the fleet itself
//! can read and write that Redis: the seal both hides the token and authenticates it.
//! Whatever the key, a stored token is checked as a token endpoint's answer would be
//! before it is adopted, by the core's one rule for stored tokens
//! ([`Config::check_stored`](client_credentials_core::Config::check_stored)): its type must
//! be one the configuration accepts, it must expire unless the configuration keeps tokens
//! without an expiry, its lifetime is capped at the parser's
//! [`MAX_LIFETIME`](client_credentials_core::MAX_LIFETIME), and its usable life must not be
//! over.
//!
//! A [`RedisStore`] is the `SharedStore` of both clients: `client-credentials-ureq` (feature
//! `ureq`) and `client-credentials-reqwest` (feature `reqwest`). With Redis unreachable it
//! changes nothing, as this runnable example shows:
//!
//! ```
//! # #[cfg(feature = "ureq")] {
//! # use client_credentials_testkit::{TestServer, TokenEndpoint, refused_url};
//! # let server = TestServer::start(TokenEndpoint::new());
//! use client_credentials::redis::RedisStore;
//! use client_credentials::ureq::{Client, Config};
//!
//! // Nothing listens there: the client fetches as it would without a store.
//! let port = refused_url("/").rsplit(':').next().unwrap().trim_end_matches('/').to_owned();
//! let store = RedisStore::new(&format!("redis://127.0.0.1:{port}/"))?;
//! let config = Config::builder()
//!     .token_url(server.url("/token"))
//!     .client_id("c")
//!     .client_secret("s")
//!     .build()?;
//! let client = Client::builder(config).shared_store(store.clone()).build();
//! assert!(client.token().is_ok());
//! assert!(store.is_unavailable());
//! # }
//! # Ok::<_, Box<dyn std::error::Error>>(())
//! ```
//!
//! # The protocol
//!
//! Within a process, the client's session already makes one request per token for all its
//! threads or tasks. When that one caller is about to fetch (no valid token, or the refresh
//! point has come), it asks the store first:
//!
//! 1. Read the token (`GETRANGE`, at most 64 KiB). If the session takes it
//!    ([`StoreQuery::accepts`](client_credentials_core::StoreQuery::accepts): it passes the
//!    rule above, expires later than the token the session holds, and is not one it saw
//!    rejected), nothing is sent.
//! 2. Otherwise take the fleet's fetch lock: in effect `SET <lock> <128 random bits> NX PX
//!    <lock_ttl>`, as a script that also counts a lock already holding this process's value
//!    as taken (so a retry after a lost reply does not wait on its own lock). Read again
//!    (the token may have just landed: then release the lock and take it); if it is still
//!    missing or stale, fetch, hand the token to the local callers, then write it
//!    (`SET <token> <value> PX <ttl>`, the time the core gives) and release the lock with a
//!    compare-and-delete script, so that only its owner deletes it. A failed fetch
//!    releases the lock without writing.
//! 3. If another process holds the lock, read the token every `poll_interval` (50 ms) and
//!    take it as soon as it lands; if the lock is released or expires without a token (its
//!    holder failed or died), take the lock over and fetch. After `max_wait` (by default a
//!    tenth longer than `lock_ttl`, plus up to a tenth of random jitter), fetch locally.
//!
//! `lock_ttl` is 20 s by default: the adapters' default request timeout (15 s) and a
//! margin, so that a holder whose token endpoint is slow keeps the lock until its own
//! request gives up, rather than every waiter fetching at once when the lock expires. With
//! a longer client timeout, raise `lock_ttl` to match. The price: a holder that dies
//! without releasing the lock (its release is a `Drop`, so only a killed process does)
//! makes a cold start elsewhere wait up to `lock_ttl`; processes that hold a valid token
//! never wait.
//!
//! A refresh ahead of expiry goes through the same steps in the background, while callers
//! keep the still-valid token, so only a cold start ever waits for another process.
//!
//! These steps are one state machine without I/O, which is told each Redis reply and the
//! time and says the next command, how long to sleep, or the answer; the blocking store
//! (a synchronous connection) and the async store (a tokio connection) only carry its steps
//! out, so both behave alike.
//!
//! # Keys and values
//!
//! `<prefix>:token:<digest>` and `<prefix>:lock:<digest>`, where the digest is the hex
//! SHA-256 of the core's [`CacheKey`](client_credentials_core::CacheKey): the token
//! endpoint, client id, authentication method, body format, scopes, audience, resources and
//! extra parameters, never the secret. Different scopes never share a token. The value is
//! the core's token record ([`Token::storable`](client_credentials_core::Token::storable):
//! JSON with a version, the token, its type, `issued_at_ms` and `lifetime_ms`, so its
//! absolute expiry), or, with an [`EncryptionKey`], that record sealed with
//! ChaCha20-Poly1305 under a random 96-bit nonce, with the key id in clear beside it and the
//! Redis key as associated data (a value cannot be moved to another key):
//! `{"v":1,"alg":"chacha20poly1305","kid":"…","nonce":"…","ct":"…"}`.
//! The seal also authenticates: without a key, whoever can write to Redis can hand the fleet
//! a token of their choosing, so set one unless only the fleet can write there (see
//! [above](#set-an-encryption-key)).
//!
//! An entry lives for the time the core gives it
//! ([`Policy::store_ttl`](client_credentials_core::Policy::store_ttl)): as long as the
//! fleet's sessions take the token (its lifetime less the expiry margin), always ending
//! before the token expires (by at least a tenth of the lifetime, at most 10 s). A token
//! without an expiry is kept for an hour
//! ([`NO_EXPIRY_STORE_TTL`](client_credentials_core::NO_EXPIRY_STORE_TTL)).
//!
//! # Failure rules
//!
//! The store never makes things worse than no store:
//! - Every Redis call has a bounded time (connect 500 ms, response 500 ms by default). A
//!   failure (unreachable, timed out, dropped, refused) makes the client fetch locally at
//!   once, and the store leaves Redis alone for `retry_after_failure` (5 s), so a dead Redis
//!   costs nothing on the fetch path. One log line when Redis becomes unavailable, one when
//!   it is back.
//! - A value that is not a readable record (garbage, too large, a wrong type, another
//!   key's, clear text where encryption is on) is a miss: the process fetches and overwrites
//!   it. At most one log line a minute.
//! - A lock holder that dies leaves a lock that expires after `lock_ttl` (20 s); the next
//!   process takes it over.
//! - A value that is a readable record of a token this client would refuse from its token
//!   endpoint (a token type the configuration does not accept, no expiry where the
//!   configuration gives one) is a miss too, and so is a stale one.
//! - A Redis failure after this process took the lock (on the re-read, the write or the
//!   release) leaves the lock to expire by itself; a failed re-read means fetching
//!   locally.
//! - Nothing from Redis can make the client return an error, or panic.
//!
//! Logs and `Debug` never show a token, a key or the Redis URL (it may hold a password).
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]
#![cfg_attr(
    not(any(feature = "ureq", feature = "reqwest")),
    allow(
        dead_code,
        reason = "without a client feature, nothing drives the protocol"
    )
)]

#[cfg(feature = "ureq")]
mod blocking;
#[cfg(feature = "reqwest")]
mod nonblocking;
mod protocol;
mod record;
mod store;

pub use record::EncryptionKey;
#[doc(hidden)]
pub use record::open_record;
pub use store::{DEFAULT_PREFIX, RedisStore, RedisStoreBuilder};

/// Why a store could not be built.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The Redis URL cannot be used (not `redis://` or `redis+unix://`, or malformed). The
    /// URL itself is left out: it may hold a password.
    #[error("invalid Redis URL (redis://[:password@]host[:port][/db] or redis+unix:///path)")]
    InvalidUrl,
    /// An encryption key id is empty, longer than 32 characters, or has characters other
    /// than `A–Z a–z 0–9 . _ -`.
    #[error("invalid encryption key id: 1 to 32 characters among A-Z a-z 0-9 . _ -")]
    InvalidKeyId,
    /// A setting that must be positive is zero; the name says which.
    #[error("invalid store setting: {0} must be positive")]
    InvalidSetting(&'static str),
}
