//! Async transport for `client-credentials` on [reqwest] 0.13 and tokio: an OAuth 2.0
//! client credentials client that caches tokens per request shape, shares one fetch between
//! every task that needs it, refreshes ahead of expiry without making callers wait, and a
//! [`reqwest-middleware`](reqwest_middleware) layer that authorizes outgoing requests.
//!
//! ```
//! use client_credentials::reqwest::{AuthMiddleware, Client, Config, TokenParams};
//! # use client_credentials_testkit::{Reply, Router, TestServer, TokenEndpoint};
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let server = TestServer::start(
//! #     Router::new()
//! #         .route("/token", TokenEndpoint::new().client("my-service", "s3cr3t"))
//! #         .route("/orders", Reply::text(200, "application/json", "[]")),
//! # );
//! # let token_url = server.url("/token");
//! # let orders_url = server.url("/orders");
//!
//! let config = Config::builder()
//!     .token_url(token_url) // https://…, or http:// on loopback
//!     .client_id("my-service")
//!     .client_secret("s3cr3t")
//!     .build()?;
//! let client = Client::new(config)?;
//!
//! // Cached, refreshed ahead of expiry, one fetch shared by every task.
//! let token = client.token().await?;
//! assert_eq!(token.token_type(), "Bearer");
//! let again = client.token().await?;
//! assert_eq!(again.access_token(), token.access_token());
//!
//! // Another request shape is another cache entry.
//! let reports = client.token_for(&TokenParams::new().scopes(["reports.read"])).await?;
//! assert_ne!(reports.access_token(), token.access_token());
//!
//! // Every request through this reqwest client carries a token; a 401 is retried once
//! // with a fresh one.
//! let http = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
//!     .with(AuthMiddleware::new(client.clone()))
//!     .build();
//! let orders = http.get(orders_url).send().await?;
//! assert_eq!(orders.status(), 200);
//! # assert_eq!(server.count("/token"), 2);
//! # assert_eq!(server.last_request().unwrap().header("authorization"), Some("Bearer token-1"));
//! # Ok(())
//! # }
//! ```
//!
//! What this crate does, and what the core does:
//! - The core ([`client_credentials::core`](client_credentials_core)) builds requests, parses responses into tokens or
//!   typed errors, and owns the whole token-cache protocol in its
//!   [`Cache`](client_credentials_core::Cache): one session per request shape, single
//!   flight, refresh ahead, backoff, `Retry-After`, cool-down after rejections, eviction,
//!   the shared-store rules, and the verdict on a resource server's rejection. Time is an
//!   input; it tells the driver what happened through events.
//! - This crate is a thin driver of that cache: lock, poll, unlock; send what it asks for
//!   with a [`reqwest::Client`] configured for the job (no redirects, connect and overall
//!   timeouts, rustls), reading the body in chunks through the core's size cap (refusing an
//!   announced `Content-Length` over it before reading); report the answer, drain the
//!   events (log, publish, wake). It maps reqwest's errors to the core's transport errors
//!   and coordinates tasks: see [`Client`](Client#how-callers-wait) for who sends and who
//!   waits, what happens when a sending task is cancelled, and the optional background
//!   refresh.
//! - [`AuthMiddleware`] and [`Client::send_authorized`] attach tokens to requests for
//!   resource servers, with a single, safe retry when the core says the token was rejected.
//! - [`Client::revoke`] (RFC 7009, which also drops the token from the cache) and
//!   [`Client::introspect`] (RFC 7662) use the same reqwest client, timeouts and body cap.
//! - Mutual TLS (RFC 8705): a client certificate in the configuration
//!   ([`ConfigBuilder::client_certificate`](client_credentials_core::ConfigBuilder::client_certificate))
//!   is the reqwest client's `identity`, so token requests and the resource requests of
//!   [`Client::send_authorized`] and [`Client::http_client`] present it (certificate-bound
//!   tokens need it at the resource server); a `reqwest::Client` you build yourself does
//!   not, unless you give it the identity.
//!
//! A fleet of processes can share tokens, with one fetch for the whole fleet, through a
//! [`SharedStore`] set with [`ClientBuilder::shared_store`]: `client-credentials-redis`
//! implements it on Redis.
//!
//! Every fetch runs in a `tracing` span `token_fetch` with the token endpoint, the client id,
//! a digest of the request shape and the request id (revocations and introspections in
//! `token_revoke` and `token_introspect`, with their endpoint and the client id); the cache's
//! events are logged in it (a failed fetch as a warning). No secret, token or body is ever
//! logged.
//!
//! The API mirrors the blocking `client-credentials-ureq` crate (`Client`, `ClientBuilder`,
//! `token`, `token_for`, `invalidate`, `force_refresh`, `counters`, `last_error`,
//! `next_refresh`, `authorize`, `send_authorized`, one `Error` type), with `async` where a
//! call may wait for the network. `Client::new` and `ClientBuilder::build` return a
//! `Result`, because building a reqwest client can fail (TLS initialisation). Outside a
//! tokio runtime nothing panics: a call that must send returns [`Error::NoRuntime`].
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

mod authorized;
mod background;
mod client;
mod credentials;
mod discovery;
mod driver;
mod error;
mod middleware;
mod revocation;
mod store;
#[cfg(feature = "tower")]
pub mod tower;
mod transport;

pub use client::{Client, ClientBuilder};
pub use credentials::Credentials;
pub use discovery::{discover, discover_with};
pub use error::Error;
pub use middleware::AuthMiddleware;
pub use store::{FetchPermit, Lookup, SharedStore, StoreQuery};

pub use client_credentials_core::driver::{DEFAULT_CONNECT_TIMEOUT, DEFAULT_TIMEOUT};
pub use client_credentials_core::{
    AccessToken, AuthMethod, BodyFormat, Config, ConfigError, Counters, Introspection, Policy,
    StaticCredential, StoredTokenProblem, Token, TokenError, TokenParams,
};

/// Re-export of the core crate.
pub use client_credentials_core as core;
/// Re-exports of the HTTP crates this one is built on: `reqwest` 0.13, and the
/// `reqwest-middleware` version that [`AuthMiddleware`] implements.
pub use {reqwest, reqwest_middleware};
