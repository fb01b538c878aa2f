//! Async transport for `client-credentials` on [reqwest] 0.13 and tokio: an OAuth 2.0
//! client credentials client that caches tokens per request shape, shares one fetch between
//! every task that needs it, refreshes ahead of expiry without making callers wait, and a
//! [`reqwest-middleware`](reqwest_middleware) layer that authorizes outgoing requests.
//!
//! ```
//! use client_credentials_reqwest::{AuthMiddleware, Client, Config, TokenParams};
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
//! - The core ([`client_credentials_core`]) builds requests, parses responses into tokens or
//!   typed errors, and runs the token lifecycle (refresh point, backoff, `Retry-After`,
//!   cool-down after rejections) as a state machine with time as an input.
//! - This crate sends what the core asks for with a [`reqwest::Client`] configured for the
//!   job (no redirects, connect and overall timeouts, rustls), reads the body in chunks
//!   through the core's size cap (refusing an announced `Content-Length` over it before
//!   reading), maps reqwest's errors to the core's transport errors, and coordinates tasks:
//!   see [`Client`](Client#how-callers-wait) for who sends and who waits, what happens
//!   when a sending task is cancelled, and the optional background refresh.
//! - [`AuthMiddleware`] and [`Client::send_authorized`] attach tokens to requests for
//!   resource servers, with a single, safe retry on 401.
//! - [`Client::revoke`] (RFC 7009, which also drops the token from the cache) and
//!   [`Client::introspect`] (RFC 7662) use the same reqwest client, timeouts and body cap.
//!
//! A fleet of processes can share tokens, with one fetch for the whole fleet, through a
//! [`SharedStore`] set with [`ClientBuilder::shared_store`]: `client-credentials-redis`
//! implements it on Redis.
//!
//! Every fetch runs in a `tracing` span `token_fetch` with the token endpoint, the client id,
//! a digest of the request shape and the request id (revocations and introspections in
//! `token_revoke` and `token_introspect`, with their endpoint and the client id); no secret,
//! token or body is ever logged.
//!
//! The API mirrors the blocking `client-credentials-ureq` crate (`Client`, `ClientBuilder`,
//! `token`, `token_for`, `invalidate`, `force_refresh`, `counters`, `authorize`, one `Error`
//! type), with `async` where a call may wait for the network. `Client::new` and
//! `ClientBuilder::build` return a `Result`, because building a reqwest client can fail
//! (TLS initialisation).
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

mod client;
mod error;
mod middleware;
mod store;
mod transport;

pub use client::{Client, ClientBuilder};
pub use error::Error;
pub use middleware::AuthMiddleware;
pub use store::{FetchPermit, Lookup, SharedStore, StoreQuery};
pub use transport::{DEFAULT_CONNECT_TIMEOUT, DEFAULT_TIMEOUT};

pub use client_credentials_core::session::{Counters, Policy};
pub use client_credentials_core::{
    AccessToken, AuthMethod, BodyFormat, Config, ConfigError, Introspection, Token, TokenError,
    TokenParams,
};

/// Re-export of the core crate.
pub use client_credentials_core as core;
/// Re-export of the `reqwest` version this crate is built on.
pub use reqwest;
/// Re-export of the `reqwest-middleware` version [`AuthMiddleware`] implements.
pub use reqwest_middleware;
