//! The token endpoint half of the protocol (feature `server`): client credentials token
//! requests parsed, decided and answered as plain values, and bearer tokens taken from
//! resource requests. It takes and returns `http` types, so it plugs into axum, hyper or any
//! framework, and it never reads a clock or draws randomness: tokens are made by the caller.
//!
//! The flow is *parse → look up → authorise → respond*; only the look-up is yours, and it can
//! be synchronous or `async`:
//!
//! ```
//! use std::time::Duration;
//! use client_credentials::server::{RegisteredClient, TokenEndpoint, opaque_token};
//!
//! let endpoint = TokenEndpoint::builder()
//!     .scope("orders.read", "Read orders")
//!     .token_lifetime(Duration::from_secs(600))
//!     .build()?;
//! let clients = vec![RegisteredClient::new("s6BhdRkqt3", "gX1fBat3bV").scopes(["orders.read"])];
//!
//! // RFC 6749 §4.4.2.
//! let request = http::Request::post("/token")
//!     .header("authorization", "Basic czZCaGRSa3F0MzpnWDFmQmF0M2JW")
//!     .header("content-type", "application/x-www-form-urlencoded")
//!     .body(b"grant_type=client_credentials&scope=orders.read".to_vec())?;
//!
//! let response = match endpoint.parse(&request) {
//!     Err(refused) => refused.to_response(),
//!     Ok(incoming) => {
//!         // Your store, awaited if it must be.
//!         let client = clients.iter().find(|c| c.client_id() == incoming.client_id());
//!         match endpoint.authorize(&incoming, client) {
//!             // Draw the 32 bytes from the operating system's RNG.
//!             Ok(grant) => grant.respond(&opaque_token(&[7; 32])),
//!             Err(refused) => refused.to_response(),
//!         }
//!     }
//! };
//! assert_eq!(response.status(), 200);
//! assert_eq!(response.headers()["cache-control"], "no-store");
//! let body: serde_json::Value = serde_json::from_slice(response.body())?;
//! assert_eq!(body["scope"], "orders.read");
//! assert_eq!(body["expires_in"], 600);
//! # Ok::<_, Box<dyn std::error::Error>>(())
//! ```
//!
//! On the resource server, [`bearer_token`] takes the token from a request and
//! [`BearerChallenge`] renders the `WWW-Authenticate: Bearer` answer when it is missing or
//! not valid.
//!
//! DPoP (RFC 9449, [`DpopVerifier`] with the `jwt` feature): the token endpoint verifies a
//! request's proof with [`TokenEndpoint::verify_dpop`] and binds the token to its key
//! ([`Grant::bind_dpop`]); a resource server takes a DPoP token and its proof with
//! [`dpop_token`] and answers with a [`DpopChallenge`].
//!
//! Secrets stay wrapped: presented client secrets are [`ClientSecret`](crate::ClientSecret)s
//! and tokens [`AccessToken`](crate::AccessToken)s, and no `Debug`, `Display` or error
//! message of this module shows either.

mod assertion;
mod bearer;
pub(crate) mod dpop;
mod endpoint;
mod error;
mod grant;
mod mtls;
mod openapi;
mod parse;
#[cfg(feature = "jwt")]
mod verify;

pub use assertion::{AssertionRejection, MAX_ASSERTION_LEN};
pub use bearer::{BearerChallenge, BearerError, BearerErrorCode, bearer_token};
#[cfg(feature = "jwt")]
pub use dpop::{
    DEFAULT_DPOP_FUTURE_SKEW, DEFAULT_DPOP_MAX_AGE, DpopRequest, DpopVerifier, VerifiedProof,
    dpop_token,
};
pub use dpop::{
    DPOP_NONCE, DpopChallenge, DpopError, DpopErrorCode, MAX_DPOP_JTI_LEN, MAX_DPOP_PROOF_LEN,
};
pub use endpoint::{
    ClientAuthMethod, DEFAULT_MAX_REQUEST_BODY, DEFAULT_TOKEN_LIFETIME, DefaultScopes,
    EndpointConfigError, ScopeInfo, TokenEndpoint, TokenEndpointBuilder,
};
pub use error::{EndpointError, Rejection};
pub use grant::{ClientRecord, Grant, RegisteredClient, opaque_token};
pub use mtls::PresentedCertificate;
pub use parse::{ClientCredentials, ClientRequest, IncomingRequest};
#[cfg(feature = "jwt")]
pub use verify::{
    AssertionVerifier, DEFAULT_ASSERTION_LEEWAY, DEFAULT_MAX_ASSERTION_LIFETIME,
    DEFAULT_REPLAY_CAPACITY, JwkSet, JwksError, MAX_JWKS_KEYS, ReplayCache,
};

/// RFC 6749 §3.3: `scope-token = 1*( %x21 / %x23-5B / %x5D-7E )`.
pub(crate) fn is_scope_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b))
}
