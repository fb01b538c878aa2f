//! The sans-IO core of `client-credentials`: the OAuth 2.0 Client Credentials grant
//! (RFC 6749 §4.4) as plain values. It builds token requests as `http::Request<Vec<u8>>`,
//! parses whatever a real authorization server answers into a [`Token`] or a typed
//! [`TokenError`], and never touches the network, a clock or a thread.
//!
//! ```
//! use std::time::{Duration, SystemTime};
//! use client_credentials_core::{Config, TokenParams};
//! use http::{HeaderMap, StatusCode};
//!
//! let config = Config::builder()
//!     .token_url("https://auth.example.com/oauth2/token")
//!     .client_id("s6BhdRkqt3")
//!     .client_secret("7Fjfp0ZBr1KtDRbnfVdmIw")
//!     .build()?;
//! let request = config.request(&TokenParams::new().scopes(["orders.read"]))?;
//!
//! // 1. Build the request; any HTTP client can send it.
//! let http_request = request.to_http();
//! assert_eq!(http_request.body(), b"grant_type=client_credentials&scope=orders.read");
//!
//! // 2. Hand the answer back, with the time the request was sent.
//! let sent_at = SystemTime::now();
//! let body = br#"{"access_token":"2YotnFZFEjr1zCsicMWpAA","token_type":"Bearer","expires_in":3600}"#;
//! let token = request.parse_response(sent_at, StatusCode::OK, &HeaderMap::new(), body)?;
//! assert_eq!(token.expires_at(), Some(sent_at + Duration::from_secs(3600)));
//! assert!(!token.expires_within(sent_at, Duration::from_secs(60)));
//! # Ok::<_, Box<dyn std::error::Error>>(())
//! ```
//!
//! # The token lifecycle
//!
//! Caching, single flight, refresh ahead of expiry and backoff live in [`Session`], a state
//! machine driven with `now`. A transport is this loop (the adapters add threads or tasks
//! that wait on `Wait`; [`session`] has the details, the states and the policy defaults):
//!
//! ```
//! # use std::time::{Instant, SystemTime};
//! # use client_credentials_core::{Action, Config, Policy, Session, WallClock};
//! # use http::{HeaderMap, StatusCode};
//! # let config = Config::builder().token_url("https://as.example.com/t").client_id("c").client_secret("s").build()?;
//! # let send = |_req: http::Request<Vec<u8>>| -> (StatusCode, HeaderMap, Vec<u8>) {
//! #     (StatusCode::OK, HeaderMap::new(), br#"{"access_token":"t","token_type":"Bearer","expires_in":60}"#.to_vec())
//! # };
//! let clock = WallClock::new(Instant::now(), SystemTime::now());
//! let mut session = Session::new(config.default_request(), Policy::default(), clock, 42);
//! let token = loop {
//!     match session.poll(Instant::now()) {
//!         Action::Ready(token) => break token,
//!         Action::Failed(error) => return Err(error.into()),
//!         Action::Wait(until) => std::thread::sleep(until.saturating_duration_since(Instant::now())),
//!         Action::Send { id, request, .. } => {
//!             let (status, headers, body) = send(request.into_inner()); // your HTTP client
//!             session.handle_response(Instant::now(), id, status, &headers, &body);
//!         }
//!     }
//! };
//! assert_eq!(token.access_token().expose_secret(), "t");
//! # Ok::<_, Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

mod config;
mod error;
mod introspection;
mod request;
mod response;
mod scrub;
mod secret;
pub mod session;
mod token;

#[cfg(feature = "server")]
pub mod server;

pub use config::{
    AuthMethod, BodyFormat, Config, ConfigBuilder, ConfigError, DEFAULT_MAX_BODY, MissingLifetime,
    RESERVED_PARAMETERS, is_loopback_host,
};
pub use error::{
    DescriptionMember, ErrorCode, ErrorDialect, Excerpt, OAuthError, ResponseProblem, TokenError,
    TransportError, TransportErrorKind,
};
pub use introspection::Introspection;
pub use request::{CacheKey, HttpRequest, Params, TokenParams, TokenRequest};
pub use response::{BodyBuffer, MAX_LIFETIME};
pub use scrub::Scrubber;
pub use secret::{AccessToken, ClientSecret, constant_time_eq};
pub use session::{Action, Counters, Policy, RequestId, Session, Sessions, WallClock};
pub use token::{Deviation, ScopeSource, StorableToken, Token};

/// Re-export of the `http` crate whose types appear in this API.
pub use http;
