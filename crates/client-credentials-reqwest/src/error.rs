//! The crate's one error type.

use std::sync::Arc;

client_credentials_core::__adapter_error! {
    /// What went wrong in a call of this crate: a token fetch, the parameters of a request
    /// shape, building reqwest's client, an authorized request, or a call that had to send
    /// outside a tokio runtime.
    ///
    /// A fetch fails in one way only, as [`Error::Token`]: the server's refusal, a bad
    /// answer and a transport failure (connect, TLS, timeout, I/O, as
    /// [`TokenError::Transport`](crate::TokenError::Transport)) alike, and every task that
    /// waited for that fetch gets the same [`TokenError`](crate::TokenError). No variant's
    /// `Display` holds a secret or a token.
    {
        /// reqwest could not build the client for token requests (TLS initialisation
        /// failed, or rustls refused the configuration's client certificate).
        #[error("could not build the HTTP client: {0}")]
        Build(Arc<reqwest::Error>),
        /// reqwest failed to build or send an authorized request to a resource server
        /// ([`Client::send_authorized`](crate::Client::send_authorized)); whatever went out
        /// carried a token.
        #[error("authorized request failed: {0}")]
        Request(Arc<reqwest::Error>),
        /// The call had to send a request (a token fetch, a revocation, an introspection,
        /// an authorized request) and was polled outside a tokio runtime, where reqwest
        /// cannot send: nothing was sent, and a task in a runtime may send instead. A call
        /// that a cached token answers needs no runtime.
        #[error("no tokio runtime to send the request in; call from within a tokio runtime")]
        NoRuntime,
    }
}
