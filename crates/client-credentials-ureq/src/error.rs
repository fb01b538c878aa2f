//! The crate's one error type.

use std::sync::Arc;

client_credentials_core::__adapter_error! {
    /// Why a token could not be had, or why an authorized request failed.
    ///
    /// Transport failures of a token fetch (connect, TLS, timeout, I/O) come as
    /// [`TokenError::Transport`](crate::TokenError::Transport) inside [`Error::Token`], so
    /// that every failure of a fetch, whatever its cause, is one
    /// [`TokenError`](crate::TokenError) that the cache shared with every caller who waited
    /// for it. The `Display` of every variant names the cause and never holds a secret or a
    /// token.
    {
        /// An authorized request to a resource server
        /// ([`Client::send_authorized`](crate::Client::send_authorized)) failed in ureq: it
        /// could not be sent, or its answer's head could not be read. It was sent with a
        /// token, or not at all.
        #[error("authorized request failed: {0}")]
        Request(Arc<ureq::Error>),
    }
}
