//! The crate's one error type.

use std::sync::Arc;

use client_credentials_core::{ConfigError, EndpointError, StoredTokenProblem, TokenError};

/// Why a token could not be had, or why an authorized request failed.
///
/// Transport failures of a token fetch (connect, TLS, timeout, I/O) come as [`TokenError::Transport`] inside
/// [`Error::Token`], so that every failure of a fetch, whatever its cause, is one
/// [`TokenError`] that the cache shared with every caller who waited for it. The
/// `Display` of every variant names the cause and never holds a secret or a token.
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The fetch failed: the server refused (`invalid_client`, `invalid_scope`…), rate
    /// limited or failed, the response was unusable or too large, or the transport failed.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// A revocation ([`Client::revoke`](crate::Client::revoke)) or an introspection
    /// ([`Client::introspect`](crate::Client::introspect)) failed; the message names the
    /// endpoint.
    #[error(transparent)]
    Endpoint(Box<EndpointError>),
    /// The per-request parameters ([`TokenParams`](client_credentials_core::TokenParams)) are invalid
    /// (a bad scope, a reserved extra parameter…); nothing was sent.
    #[error("invalid token request parameters: {0}")]
    Config(#[from] ConfigError),
    /// A stored token handed to [`Client::restore`](crate::Client::restore) is not one
    /// this client takes: another token type, no expiry, or a usable life that is over.
    /// Nothing changed; the next call fetches a token.
    #[error("stored token not restored: {0}")]
    Stored(#[from] StoredTokenProblem),
    /// An authorized request to a resource server
    /// ([`Client::send_authorized`](crate::Client::send_authorized)) failed in ureq: it could
    /// not be sent, or its answer's head could not be read. It was sent with a token, or not
    /// at all.
    #[error("authorized request failed: {0}")]
    Request(Arc<ureq::Error>),
}

impl Error {
    /// The token error, if the failure came from a fetch, a revocation or an introspection.
    #[must_use]
    pub fn token_error(&self) -> Option<&TokenError> {
        match self {
            Self::Token(e) => Some(e),
            Self::Endpoint(e) => Some(&e.error),
            Self::Config(_) | Self::Stored(_) | Self::Request(_) => None,
        }
    }

    client_credentials_core::__error_classes!();
}
