//! `client-credentials`: the OAuth 2.0 Client Credentials grant (RFC 6749 §4.4) for Rust
//! services, with a sans-IO core and pluggable transports.
//!
//! Get a token with the blocking client (feature `ureq`), here from the embedded
//! authorization server (feature `embedded-server`) so that the example runs as it is:
//!
//! ```
//! use client_credentials::embedded::EmbeddedServer;
//! use client_credentials::ureq::{Client, Config};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // A stand-in for your authorization server, on 127.0.0.1 and a free port.
//! let server = EmbeddedServer::builder()
//!     .client("my-service", "s3cr3t", ["orders.read"])
//!     .start()?;
//!
//! let config = Config::builder()
//!     .token_url(server.token_url()) // your server's https:// token endpoint
//!     .client_id("my-service")
//!     .client_secret("s3cr3t") // from your secret store
//!     .scopes(["orders.read"])
//!     .build()?;
//! let client = Client::new(config); // Clone + Send + Sync: share it
//!
//! // Cached, refreshed ahead of expiry, one fetch shared by every thread.
//! let token = client.token()?;
//! assert_eq!(token.token_type(), "Bearer");
//! assert_eq!(token.scopes(), ["orders.read"]);
//! # Ok(())
//! # }
//! ```
//!
//! The async client, [`reqwest::Client`] (feature `reqwest`), has the
//! same methods with `.await`, and [`reqwest::AuthMiddleware`]
//! puts a valid token on every request of a `reqwest-middleware` client.
//!
//! # Features
//!
//! None is on by default: enable `ureq` or `reqwest` for a client.
//!
//! | Feature | What it adds |
//! | --- | --- |
//! | (none) | The sans-IO core: [`Config`], [`TokenRequest`], parsing into [`Token`] or [`TokenError`], the token [`Cache`] and its [`Session`]s. |
//! | `ureq` | [`ureq`]: [`ureq::Client`], a blocking, thread-safe client on ureq 3. |
//! | `reqwest` | [`reqwest`]: [`reqwest::Client`] and [`reqwest::AuthMiddleware`], async, on reqwest 0.13 and tokio. |
//! | `server` | [`server`]: the token endpoint half (parse, authorize, respond) and bearer extraction for resource servers. |
//! | `embedded-server` | [`embedded`]: [`embedded::EmbeddedServer`], an authorization server on 127.0.0.1 for development and tests. |
//! | `redis` | [`redis`]: [`redis::RedisStore`], tokens shared across a fleet, for the `ureq` and `reqwest` clients. |
//! | `metrics` | [`metrics`]: token-health metrics through the `metrics` facade, for any exporter; name a client with `metrics_name` on the `ureq` or `reqwest` client's builder. |
//!
//! # The sans-IO core
//!
//! Without a transport feature, the crate builds token requests and parses the answers, and
//! any HTTP client can send them:
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
//!
//! A transport of your own drives the token [`Cache`] (single flight, refresh ahead of
//! expiry, backoff) in a short loop: [`Cache`] lists its inputs and outputs, and the
//! [`session`] module has the states and the policy defaults.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![doc(test(attr(deny(warnings))))]

pub use client_credentials_core::*;

/// The async transport (feature `reqwest`): a tokio client on reqwest 0.13 that caches and
/// refreshes tokens with one fetch shared by every task, and a `reqwest-middleware` layer
/// that authorizes outgoing requests and retries once on 401.
#[cfg(feature = "reqwest")]
#[doc(inline)]
pub use client_credentials_reqwest as reqwest;

/// A tower layer that authorizes the requests of any tower service, hyper-util's client or
/// a tonic channel (feature `tower`; `tonic` replays unary gRPC calls after a rejected
/// token), with tokens from the async transport.
#[cfg(feature = "tower")]
#[doc(inline)]
pub use client_credentials_reqwest::tower;

/// The blocking transport (feature `ureq`): a thread-safe client on ureq 3 that caches and
/// refreshes tokens with one fetch shared by every thread.
#[cfg(feature = "ureq")]
#[doc(inline)]
pub use client_credentials_ureq as ureq;

/// Shares tokens across a fleet through Redis (feature `redis`): one token request per
/// refresh period for the whole fleet, encrypted at rest if you wish, and never worse than
/// no Redis. A store for the `ureq` and `reqwest` clients.
#[cfg(feature = "redis")]
#[doc(inline)]
pub use client_credentials_redis as redis;

/// An embedded OAuth 2.0 authorization server on 127.0.0.1 (feature `embedded-server`), for
/// development, examples and tests: token endpoint, JWT access tokens, metadata,
/// introspection, revocation, a protected demo resource and fault injection.
#[cfg(feature = "embedded-server")]
#[doc(inline)]
pub use client_credentials_server as embedded;

/// The code blocks of `README.md`, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
