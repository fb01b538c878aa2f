//! Blocking transport for `client-credentials` on [ureq] 3: a thread-safe OAuth 2.0 client
//! credentials client that caches tokens per request shape, shares one fetch between every
//! thread that needs it, and refreshes ahead of expiry without making callers wait.
//!
//! ```
//! use std::time::Duration;
//! use client_credentials::ureq::{Client, Config, TokenParams};
//! # use client_credentials_testkit::{TestServer, TokenEndpoint};
//! # let server = TestServer::start(TokenEndpoint::new().client("my-service", "s3cr3t"));
//! # let token_url = server.url("/token");
//!
//! let config = Config::builder()
//!     .token_url(token_url) // https://…, or http:// on loopback
//!     .client_id("my-service")
//!     .client_secret("s3cr3t")
//!     .build()?;
//! let client = Client::new(config);
//!
//! // Cached, refreshed ahead of expiry, one fetch shared by every thread.
//! let token = client.token()?;
//! assert_eq!(token.token_type(), "Bearer");
//! let again = client.token()?;
//! assert_eq!(again.access_token(), token.access_token());
//!
//! // Another request shape is another cache entry.
//! let reports = client.token_for(&TokenParams::new().scopes(["reports.read"]))?;
//! assert_ne!(reports.access_token(), token.access_token());
//!
//! // Attach the token to a request for a resource server …
//! let mut request = http::Request::get("https://api.example.com/orders").body(())?;
//! let used = client.authorize(&mut request)?;
//! assert!(request.headers()["authorization"].is_sensitive());
//! // … and if the resource server rejects it, drop exactly that token
//! // (`Client::send_authorized` does both, and retries once with a fresh token):
//! client.invalidate(&used);
//! # assert_eq!(server.count("/token"), 2);
//! # Ok::<_, Box<dyn std::error::Error>>(())
//! ```
//!
//! What this crate does, and what the core does:
//! - The core ([`client_credentials::core`](client_credentials_core)) builds requests, parses responses into tokens or
//!   typed errors, and owns the whole token-cache protocol in its
//!   [`Cache`](client_credentials_core::Cache): single flight, refresh ahead of expiry,
//!   backoff and `Retry-After`, the early-rejection throttle, eviction of idle request
//!   shapes, the shared-store protocol, and the verdict on a resource server's 401. Time is
//!   an input; every input says whether anything changed, and an event queue says what
//!   happened.
//! - This crate is a thin transport on it. It sends what the cache asks for with a
//!   [`ureq::Agent`] configured for the job (statuses are not errors so that error bodies
//!   reach the parser, no redirects, connect and overall timeouts, rustls, and a resolver
//!   that bounds a DNS lookup by the same timeout without starting a thread per request),
//!   reads the body through the core's size cap, maps ureq's errors to the core's
//!   transport errors, and coordinates threads with a mutex and a condition variable: see
//!   [`Client`](Client#how-callers-wait) for who sends and who waits. The loop, per caller:
//!
//! ```text
//! lock → cache.poll(now, request) → unlock     Ready(token) | Wait(until) | Send(request)
//! on Send: ask the shared store (if any), send, read the capped body (no lock held)
//! lock → handle_response / handle_failure → drain events (log, token to publish) → unlock
//! wake the waiters if the outcome changed anything; publish through the store's permit
//! ```
//!
//! [`Client::send_authorized`] sends a request to a resource server with a token and, when
//! the core says the token was rejected, drops it and retries once with a fresh one if the
//! body can be replayed ([`AuthorizedBody`]).
//!
//! Mutual TLS (RFC 8705): a client certificate in the configuration
//! ([`ConfigBuilder::client_certificate`](client_credentials_core::ConfigBuilder::client_certificate))
//! is presented on every connection of the agent this crate builds: token requests, and the
//! resource requests of [`Client::send_authorized`] and [`Client::agent`], where
//! certificate-bound tokens need it. An agent of your own ([`ClientBuilder::agent`]) must be
//! given the identity by you.
//!
//! [`Client::revoke`] (RFC 7009, which also drops the token from the cache) and
//! [`Client::introspect`] (RFC 7662) use the same agent, timeouts and body cap.
//!
//! A fleet of processes can share tokens, with one fetch for the whole fleet, through a
//! [`SharedStore`] set with [`ClientBuilder::shared_store`]: `client-credentials-redis`
//! implements it on Redis.
//!
//! Every fetch runs in a `tracing` span `token_fetch` with the token endpoint, the client id
//! and a digest of the request shape (revocations and introspections in `token_revoke` and
//! `token_introspect`, with their endpoint and the client id). The cache's events are logged
//! as the core describes them ([`core::driver::event_log`]): a failed fetch as a warning,
//! the rest at DEBUG. No secret, token or body is ever logged.
//!
//! **ureq itself, at TRACE**: `ureq-proto` logs every byte it sends and receives through the
//! `log` crate at TRACE (target `ureq_proto::util`, as hex and ASCII), the `Authorization`
//! header of a token request and the access token in its response included. ureq's own
//! DEBUG lines redact sensitive headers; this dump cannot be switched off. Keep
//! `ureq_proto` at DEBUG or below wherever logs are kept (for example
//! `RUST_LOG=trace,ureq_proto=debug` with `tracing-subscriber`'s `EnvFilter`).
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

mod authorized;
mod builder;
mod client;
mod credentials;
mod discovery;
mod error;
mod inspect;
mod resolve;
mod revocation;
mod snapshot;
mod store;
mod transport;

pub use authorized::AuthorizedBody;
pub use builder::ClientBuilder;
pub use client::Client;
pub use credentials::Credentials;
pub use discovery::{discover, discover_with};
pub use error::Error;
pub use store::{FetchPermit, Lookup, SharedStore, StoreQuery};

pub use client_credentials_core::driver::{DEFAULT_CONNECT_TIMEOUT, DEFAULT_TIMEOUT};
pub use client_credentials_core::session::{Counters, Policy};
pub use client_credentials_core::{
    AccessToken, AuthMethod, BodyFormat, Config, ConfigError, Introspection, StaticCredential,
    StoredTokenProblem, Token, TokenError, TokenParams,
};

/// Re-export of the core crate.
pub use client_credentials_core as core;
/// Re-export of the `ureq` version this crate is built on.
pub use ureq;
