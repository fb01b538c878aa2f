//! The crate's one error type.

use std::sync::Arc;

use client_credentials_core::{ConfigError, EndpointError, StoredTokenProblem, TokenError};

/// What went wrong in a call of this crate: a token fetch, the parameters of a request
/// shape, building reqwest's client, an authorized request, or a call that had to send
/// outside a tokio runtime.
///
/// A fetch fails in one way only, as [`Error::Token`]: the server's refusal, a bad answer
/// and a transport failure (connect, TLS, timeout, I/O, as [`TokenError::Transport`]) alike,
/// and every task that waited for that fetch gets the same [`TokenError`]. No variant's
/// `Display` holds a secret or a token.
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No token: the token endpoint refused (`invalid_client`, `invalid_scope`…), throttled
    /// or failed, answered something unusable or too large, or could not be reached.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// A revocation ([`Client::revoke`](crate::Client::revoke)) or an introspection
    /// ([`Client::introspect`](crate::Client::introspect)) failed; the message names the
    /// endpoint.
    #[error(transparent)]
    Endpoint(Box<EndpointError>),
    /// A request shape that cannot be sent ([`TokenParams`](client_credentials_core::TokenParams) with a
    /// bad scope or a reserved extra parameter…), refused before anything went out.
    #[error("invalid token request parameters: {0}")]
    Config(#[from] ConfigError),
    /// A stored token handed to [`Client::restore`](crate::Client::restore) is not one
    /// this client takes: another token type, no expiry, or a usable life that is over.
    /// Nothing changed; the next call fetches a token.
    #[error("stored token not restored: {0}")]
    Stored(#[from] StoredTokenProblem),
    /// reqwest could not build the client for token requests (TLS initialisation failed).
    #[error("could not build the HTTP client: {0}")]
    Build(Arc<reqwest::Error>),
    /// reqwest failed to build or send an authorized request to a resource server
    /// ([`Client::send_authorized`](crate::Client::send_authorized)); whatever went out
    /// carried a token.
    #[error("authorized request failed: {0}")]
    Request(Arc<reqwest::Error>),
    /// The call had to send a request (a token fetch, a revocation, an introspection, an
    /// authorized request) and was polled outside a tokio runtime, where reqwest cannot
    /// send: nothing was sent, and a task in a runtime may send instead. A call that a
    /// cached token answers needs no runtime.
    #[error("no tokio runtime to send the request in; call from within a tokio runtime")]
    NoRuntime,
}

impl Error {
    /// The endpoint's error, for [`Error::Token`], and [`Error::Endpoint`].
    #[must_use]
    pub fn token_error(&self) -> Option<&TokenError> {
        match self {
            Self::Token(error) => Some(error),
            Self::Endpoint(e) => Some(&e.error),
            _ => None,
        }
    }

    client_credentials_core::__error_classes!();
}
