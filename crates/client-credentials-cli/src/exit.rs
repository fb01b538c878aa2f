//! Exit codes and the failures that lead to them.

use std::process::ExitCode;

use client_credentials_core::{Endpoint, TokenError};

/// The exit codes. They are part of the interface: scripts branch on them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Exit {
    /// 0: the token was printed (or `serve` stopped on a signal).
    Success = 0,
    /// 1: something outside the token exchange failed, such as writing the output.
    Other = 1,
    /// 2: the command line or the configuration is wrong; nothing was sent.
    Usage = 2,
    /// 3: the server refused the request with an OAuth error (`invalid_client`,
    /// `invalid_scope`…); asking again will not help.
    Rejected = 3,
    /// 4: the server was rate limiting (429) or failing (5xx, `temporarily_unavailable`);
    /// asking again later may work (see `retry_after` in `--json`).
    Retryable = 4,
    /// 5: no usable answer: connection refused, timeout, TLS, or a response that is not a
    /// token response (an HTML page, a body over the size cap…).
    Transport = 5,
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> Self {
        Self::from(exit as u8)
    }
}

/// Why a command failed.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The command line is wrong (clap's own errors, conflicting sources).
    Usage(String),
    /// The configuration is missing or invalid (no URL, bad scope, http on a non-loopback
    /// host, unreadable secret file…).
    Config(String),
    /// The token fetch, revocation or introspection failed (the endpoint names it in the
    /// message).
    Token(TokenError, Endpoint),
    /// Writing the output failed.
    Output(std::io::Error),
}

impl Failure {
    /// The exit code.
    pub(crate) fn exit(&self) -> Exit {
        match self {
            Self::Usage(_) | Self::Config(_) => Exit::Usage,
            Self::Token(e, _) => token_exit(e),
            Self::Output(_) => Exit::Other,
        }
    }

    /// The stable `kind` of the `--json` error object.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Self::Usage(_) => "usage",
            Self::Config(_) => "config",
            Self::Output(_) => "output",
            Self::Token(e, _) => match e {
                // --client-assertion-file is missing, empty or not a JWT: nothing was sent.
                TokenError::Assertion(_) => "config",
                TokenError::Rejected { .. } => "rejected",
                TokenError::RateLimited { .. } => "rate_limited",
                TokenError::Server { .. } => "server_error",
                TokenError::InvalidResponse { .. } => "invalid_response",
                TokenError::TooLarge { .. } => "too_large",
                TokenError::Transport(_) => "transport",
                // A variant added to the core later: the closest meaning by retryability.
                _ if e.is_retryable() => "server_error",
                _ => "invalid_response",
            },
        }
    }

    /// One line, without a secret (the core's messages never hold one; the caller also
    /// scrubs the client secret).
    pub(crate) fn message(&self) -> String {
        let text = match self {
            Self::Usage(m) | Self::Config(m) => m.clone(),
            Self::Token(e, endpoint) => e.at(*endpoint).to_string(),
            Self::Output(e) => format!("cannot write the output: {e}"),
        };
        one_line(&text)
    }
}

fn token_exit(error: &TokenError) -> Exit {
    match error {
        TokenError::Assertion(_) => Exit::Usage,
        TokenError::Rejected { .. } if !error.is_retryable() => Exit::Rejected,
        TokenError::RateLimited { .. }
        | TokenError::Server { .. }
        | TokenError::Rejected { .. } => Exit::Retryable,
        _ => Exit::Transport,
    }
}

/// Control characters (newlines included) become spaces, so that an error is one line.
pub(crate) fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}
