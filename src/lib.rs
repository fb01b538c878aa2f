//! `client-credentials`: the OAuth 2.0 Client Credentials grant (RFC 6749 §4.4) for Rust
//! services, with a sans-IO core and pluggable transports.
//!
//! ```
//! use client_credentials::{Config, TokenParams};
//!
//! let config = Config::builder()
//!     .token_url("https://auth.example.com/oauth2/token")
//!     .client_id("my-service")
//!     .client_secret("s3cr3t")
//!     .build()?;
//! let request = config.request(&TokenParams::new().scopes(["orders.read"]))?;
//! assert_eq!(request.to_http().method(), "POST");
//! # Ok::<_, client_credentials::ConfigError>(())
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub use client_credentials_core::*;

/// The async transport (feature `reqwest`): a tokio client on reqwest 0.13 that caches and
/// refreshes tokens with one fetch shared by every task, and a `reqwest-middleware` layer
/// that authorizes outgoing requests and retries once on 401. See
/// [`client_credentials_reqwest`].
#[cfg(feature = "reqwest")]
pub use client_credentials_reqwest as reqwest;

/// The blocking transport (feature `ureq`): a thread-safe client on ureq 3 that caches and
/// refreshes tokens with one fetch shared by every thread. See [`client_credentials_ureq`].
#[cfg(feature = "ureq")]
pub use client_credentials_ureq as ureq;

/// Shares tokens across a fleet through Redis (feature `redis`): one token request per
/// refresh period for the whole fleet, encrypted at rest if you wish, and never worse than
/// no Redis. A store for the `ureq` and `reqwest` clients. See [`client_credentials_redis`].
#[cfg(feature = "redis")]
pub use client_credentials_redis as redis;

/// An embedded OAuth 2.0 authorization server on 127.0.0.1 (feature `embedded-server`), for
/// development, examples and tests: token endpoint, JWT access tokens, metadata,
/// introspection, revocation, a protected demo resource and fault injection. See
/// [`client_credentials_server`].
#[cfg(feature = "embedded-server")]
pub use client_credentials_server as embedded;
