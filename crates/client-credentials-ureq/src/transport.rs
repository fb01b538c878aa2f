//! One token request over ureq: agent configuration, the send, the capped body read, and
//! the mapping of ureq errors into the core's [`TransportError`].

use std::io::Read as _;
use std::time::Duration;

use client_credentials_core::{
    BodyBuffer, HttpRequest, TokenError, TransportError, TransportErrorKind,
};
use http::{HeaderMap, StatusCode};

/// How long connecting (DNS, TCP and TLS) may take by default.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a whole token request (connect, send, response and body) may take by default.
/// Token endpoints answer in milliseconds; a fetch that takes longer than this is better
/// failed and retried with backoff. The core session's `request_timeout` backstop (30 s by
/// default) must be longer; the client clamps this timeout to it.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15);

/// The timeouts applied to token requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Timeouts {
    pub(crate) connect: Duration,
    pub(crate) global: Duration,
}

/// An agent configured for token requests: statuses are not errors (error bodies reach the
/// parser), no redirect is followed, connect and global timeouts are set, TLS is ureq's
/// default (rustls with the webpki roots). The proxy is ureq's default (from the
/// environment); [`send`] turns it off for every `http://` request.
pub(crate) fn default_agent(timeouts: Timeouts) -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_connect(Some(timeouts.connect))
        .timeout_global(Some(timeouts.global))
        .build()
        .new_agent()
}

/// What came back: a response with its body, or why there is none. No `Debug`: the body may
/// hold a token.
pub(crate) enum Outcome {
    /// A response, with its whole body (within the cap).
    Response {
        status: StatusCode,
        headers: HeaderMap,
        body: Vec<u8>,
    },
    /// The body was over the cap: reading stopped there (announced by `Content-Length`, it
    /// was not read at all). The core's [`TokenError::TooLarge`].
    TooLarge(TokenError),
    /// The request did not complete.
    Transport(TransportError),
}

/// Sends `request` on `agent` and reads the answer, the body through a [`BodyBuffer`] of
/// `cap` bytes.
///
/// Whatever the agent's own configuration, this request does not treat statuses as errors
/// and follows no redirect; the timeouts are applied on the request, so a caller-supplied
/// agent gets them too.
///
/// A plain `http://` request (the core allows it only to a loopback host) never goes through
/// a proxy, whether the agent's came from `HTTP_PROXY` or from its caller: the proxy would
/// see the client credentials and the token in cleartext, and a loopback endpoint needs no
/// proxy. `https://` requests keep the agent's proxy (a CONNECT tunnel: TLS stays end to
/// end).
pub(crate) fn send(
    agent: &ureq::Agent,
    request: HttpRequest,
    timeouts: Timeouts,
    cap: usize,
) -> Outcome {
    let request = request.into_inner();
    let cleartext = is_cleartext(request.uri());
    let mut config = agent
        .configure_request(request)
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_connect(Some(timeouts.connect))
        .timeout_global(Some(timeouts.global));
    if cleartext {
        config = config.proxy(None);
    }
    let request = config.build();
    let response = match agent.run(request) {
        Ok(response) => response,
        Err(e) => return Outcome::Transport(transport_error(e)),
    };
    let (parts, mut body) = response.into_parts();
    match read_capped(&mut body, cap) {
        Ok(Some(body)) => Outcome::Response {
            status: parts.status,
            headers: parts.headers,
            body,
        },
        Ok(None) => Outcome::TooLarge(TokenError::TooLarge {
            status: Some(parts.status),
            limit: cap,
        }),
        Err(e) => Outcome::Transport(transport_error(ureq::Error::from(e))),
    }
}

/// Whether `uri` is sent unencrypted (`http://`): such a request must not reach a proxy.
fn is_cleartext(uri: &http::Uri) -> bool {
    uri.scheme() != Some(&http::uri::Scheme::HTTPS)
}

/// The parts of a whole response: status, headers, body (within the cap).
pub(crate) type Parts = (StatusCode, HeaderMap, Vec<u8>);

impl Outcome {
    /// The response, or the [`TokenError`] that stands for its absence (an over-cap body,
    /// a failed transport). For the calls that do not go through a session (revocation,
    /// introspection): they get the same send and capped read as a token fetch.
    pub(crate) fn into_parts(self) -> Result<Parts, TokenError> {
        match self {
            Self::Response {
                status,
                headers,
                body,
            } => Ok((status, headers, body)),
            Self::TooLarge(error) => Err(error),
            Self::Transport(error) => Err(TokenError::Transport(error)),
        }
    }
}

/// Reads the body through a [`BodyBuffer`]: a `Content-Length` over the cap is refused
/// before reading anything, and every chunk is checked against the cap as it arrives, so at
/// most `cap` bytes plus one chunk are ever read. `None` when the body is over the cap.
/// `as_reader` has no limit of its own; this function is the limit.
fn read_capped(body: &mut ureq::Body, cap: usize) -> std::io::Result<Option<Vec<u8>>> {
    const CHUNK: usize = 8 * 1024;
    let announced = body.content_length();
    let mut buffer = BodyBuffer::new(cap);
    // With `Content-Encoding`, the announced length is the encoded one: a lower bound of
    // the decoded body, so refusing on it is still right, and the decoded bytes are capped
    // below.
    if let Some(len) = announced
        && buffer.expect_len(len).is_err()
    {
        tracing::debug!(len, cap, "announced token response body exceeds the cap");
        return Ok(None);
    }
    let mut reader = body.as_reader();
    let mut chunk = [0u8; CHUNK];
    loop {
        let n = match reader.read(&mut chunk) {
            Ok(0) => return Ok(Some(buffer.into_bytes())),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if buffer.push(&chunk[..n]).is_err() {
            tracing::debug!(cap, "token response body exceeds the cap");
            return Ok(None);
        }
    }
}

/// Maps a ureq error to the core's transport error, keeping it as the source (ureq's
/// messages name the failure and at most the URL, never a body or a header value).
pub(crate) fn transport_error(error: ureq::Error) -> TransportError {
    TransportError::new(transport_kind(&error), error)
}

fn transport_kind(error: &ureq::Error) -> TransportErrorKind {
    use std::io::ErrorKind as Io;
    match error {
        ureq::Error::Timeout(_) => TransportErrorKind::Timeout,
        ureq::Error::Io(e) => match e.kind() {
            Io::TimedOut | Io::WouldBlock => TransportErrorKind::Timeout,
            Io::ConnectionRefused
            | Io::HostUnreachable
            | Io::NetworkUnreachable
            | Io::AddrNotAvailable
            | Io::NetworkDown => TransportErrorKind::Connect,
            _ => TransportErrorKind::Io,
        },
        ureq::Error::HostNotFound
        | ureq::Error::ConnectionFailed
        | ureq::Error::ConnectProxyFailed(_) => TransportErrorKind::Connect,
        ureq::Error::Tls(_)
        | ureq::Error::Pem(_)
        | ureq::Error::Rustls(_)
        | ureq::Error::TlsRequired => TransportErrorKind::Tls,
        ureq::Error::Protocol(_)
        | ureq::Error::LargeResponseHeader(..)
        | ureq::Error::Decompress(..) => TransportErrorKind::Io,
        _ => TransportErrorKind::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds() {
        let io = |k| ureq::Error::Io(std::io::Error::from(k));
        assert_eq!(
            transport_kind(&ureq::Error::Timeout(ureq::Timeout::Connect)),
            TransportErrorKind::Timeout
        );
        assert_eq!(
            transport_kind(&io(std::io::ErrorKind::ConnectionRefused)),
            TransportErrorKind::Connect
        );
        assert_eq!(
            transport_kind(&io(std::io::ErrorKind::TimedOut)),
            TransportErrorKind::Timeout
        );
        assert_eq!(
            transport_kind(&io(std::io::ErrorKind::ConnectionReset)),
            TransportErrorKind::Io
        );
        assert_eq!(
            transport_kind(&ureq::Error::HostNotFound),
            TransportErrorKind::Connect
        );
        assert_eq!(
            transport_kind(&ureq::Error::Tls("bad certificate")),
            TransportErrorKind::Tls
        );
        assert_eq!(
            transport_kind(&ureq::Error::BadUri("x".into())),
            TransportErrorKind::Other
        );
    }
}
