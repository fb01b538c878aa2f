//! The sans-IO core of `client-credentials`: the OAuth 2.0 Client Credentials grant
//! (RFC 6749 §4.4) as plain values. It builds token requests as `http::Request<Vec<u8>>`,
//! parses whatever a real authorization server answers into a [`Token`] or a typed
//! [`TokenError`], and never touches the network, a clock or a thread.
//!
//! ```
//! use std::time::{Duration, SystemTime};
//! use client_credentials::{Config, TokenParams};
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
//! Caching, single flight, refresh ahead of expiry, backoff, eviction, the shared-store
//! protocol and the verdict on a resource server's 401 live in [`Cache`], a state machine
//! driven with `now` (one [`Session`] per request shape). A transport is this loop (the
//! adapters add the threads or tasks that wait on `Wait`; [`session`] has the states and
//! the policy defaults, [`Cache`] every input and output):
//!
//! ```
//! # use std::time::{Instant, SystemTime};
//! # use client_credentials_core::{Action, Cache, Config, Failure, Policy, WallClock};
//! # use client_credentials_core::http::{HeaderMap, StatusCode};
//! # let config = Config::builder().token_url("https://as.example.com/t").client_id("c").client_secret("s").build()?;
//! # let send = |_req: client_credentials_core::HttpRequest| -> Result<(StatusCode, HeaderMap, Vec<u8>), client_credentials_core::TransportError> {
//! #     Ok((StatusCode::OK, HeaderMap::new(), br#"{"access_token":"t","token_type":"Bearer","expires_in":60}"#.to_vec()))
//! # };
//! let mut cache = Cache::new(Policy::default(), WallClock::new(Instant::now(), SystemTime::now()), 42);
//! let request = config.default_request();
//! let token = loop {
//!     match cache.poll(Instant::now(), &request) {
//!         Action::Ready(token) => break token,
//!         Action::Failed(error) => return Err(error.into()),
//!         Action::Wait(until) => std::thread::sleep(until.saturating_duration_since(Instant::now())),
//!         Action::Send { id, request, .. } => match send(request) { // your HTTP client
//!             Ok((status, headers, body)) => _ = cache.handle_response(Instant::now(), id, status, &headers, &body),
//!             Err(error) => _ = cache.handle_failure(Instant::now(), id, Failure::Transport(error)),
//!         },
//!     }
//! };
//! assert_eq!(token.access_token().expose_secret(), "t");
//! # Ok::<_, Box<dyn std::error::Error>>(())
//! ```
//!
//! A client whose assertion is made elsewhere ([`Config::assertion_source`], see
//! [`federated`]) needs one more step before every send, outside any lock: read the source,
//! check it with [`AssertionSource::accept`] and add it with [`driver::attach_assertion`].
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

#[cfg(feature = "jwt")]
pub mod assertion;
mod config;
mod credential;
mod der;
mod discovery;
#[cfg(feature = "jwt")]
pub mod dpop;
pub mod driver;
mod error;
pub mod federated;
mod identity;
mod introspection;
#[cfg(feature = "metrics")]
pub mod metrics;
mod request;
pub mod resource;
mod response;
mod scrub;
mod secret;
pub mod session;
mod stored;
mod token;

#[cfg(feature = "server")]
pub mod server;

#[cfg(feature = "jwt")]
pub use assertion::{AssertionAlgorithm, AssertionKey, Audience};
pub use config::{
    AuthMethod, BodyFormat, Config, ConfigBuilder, ConfigError, DEFAULT_MAX_BODY, MissingLifetime,
    RESERVED_PARAMETERS, is_loopback_host,
};
pub use credential::StaticCredential;
pub use discovery::{
    Discovery, DiscoveryError, DiscoveryStep, MtlsEndpointAliases, ServerMetadata, WellKnown,
};
pub use error::{
    AtEndpoint, DescriptionMember, Endpoint, EndpointError, ErrorCode, ErrorDialect, Excerpt,
    OAuthError, ResponseProblem, TokenError, TransportError, TransportErrorKind,
};
pub use federated::{AssertionError, AssertionSource, ClientAssertion};
pub use identity::{ClientIdentity, KeyFormat};
pub use introspection::{Introspection, PendingIntrospection, PendingRevocation};
pub use request::{
    CacheKey, HttpRequest, Params, RESERVED_HEADERS, SecretBody, TokenParams, TokenRequest,
};
pub use resource::{DpopTicket, ResourceAuth};
pub use response::{BodyBuffer, MAX_LIFETIME};
pub use scrub::Scrubber;
pub use secret::{AccessToken, ClientSecret, constant_time_eq};
pub use session::{
    Action, Cache, Counters, Event, Failure, Lookup, Outcome, Policy, Refresh, RequestId,
    ResourceVerdict, Session, StoreQuery, TokenSlot, WallClock,
};
pub use stored::{NO_EXPIRY_STORE_TTL, StoredTokenProblem};
pub use token::{Deviation, ScopeSource, StorableToken, Token};

/// Re-export of the `http` crate whose types appear in this API.
pub use http;
