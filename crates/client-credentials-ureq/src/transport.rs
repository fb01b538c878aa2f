//! One exchange over ureq: agent configuration, the send, the capped body read, and the
//! mapping of ureq errors into the core's [`TransportError`]. Everything here is specific to
//! ureq; what to do with the answer is the core's ([`driver`]).

use std::io::Read as _;

use client_credentials_core::driver::{Exchange, Reply, Timeouts};
use client_credentials_core::{
    BodyBuffer, Failure, HttpRequest, TokenError, TransportError, TransportErrorKind,
};

/// An agent configured for token requests: statuses are not errors (error bodies reach the
/// parser), no redirect is followed, connect and global timeouts are set, TLS is ureq's
/// default (rustls with the webpki roots). The proxy is ureq's default (from the
/// environment); [`send`] turns it off for every `http://` request.
///
/// Its resolver is [`BoundedResolver`](crate::resolve::BoundedResolver): an IP address is
/// answered on the caller's thread, a name by a lookup thread of a small pool, waited for
/// no longer than the request's remaining timeout. ureq's own resolver would start a thread
/// for every request under a timeout.
pub(crate) fn default_agent(timeouts: Timeouts) -> ureq::Agent {
    let config = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_connect(Some(timeouts.connect))
        .timeout_global(Some(timeouts.overall))
        .build();
    ureq::Agent::with_parts(
        config,
        ureq::unversioned::transport::DefaultConnector::default(),
        crate::resolve::BoundedResolver::new(),
    )
}

/// Sends `request` (a token, revocation or introspection request) on `agent` and reads the
/// answer, the body through a [`BodyBuffer`] of `cap` bytes.
///
/// Whatever the agent's own configuration, this request does not treat statuses as errors
/// and follows no redirect; the timeouts are applied on the request, so a caller-supplied
/// agent gets them too. The body is sent from the core's zeroizing buffer, never copied.
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
) -> Exchange {
    let cleartext = is_cleartext(request.uri());
    let (parts, body) = request.into_parts();
    let mut config = agent
        .configure_request(http::Request::from_parts(parts, body.as_bytes()))
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_connect(Some(timeouts.connect))
        .timeout_global(Some(timeouts.overall));
    if cleartext {
        config = config.proxy(None);
    }
    let response = agent
        .run(config.build())
        .map_err(|e| Failure::Transport(transport_error(e)))?;
    let (parts, mut body) = response.into_parts();
    match read_capped(&mut body, cap) {
        Ok(Some(body)) => Ok(Reply {
            status: parts.status,
            headers: parts.headers,
            body,
        }),
        Ok(None) => Err(Failure::Error(TokenError::TooLarge {
            status: Some(parts.status),
            limit: cap,
        })),
        Err(e) => Err(Failure::Transport(transport_error(ureq::Error::from(e)))),
    }
}

/// Sends a request to a resource server on `agent`, with the agent's own configuration
/// except that a status is never an error (the caller, and the core's verdict, need the
/// status and the `WWW-Authenticate` header of a 401).
pub(crate) fn send_resource<B: ureq::AsSendBody>(
    agent: &ureq::Agent,
    request: http::Request<B>,
) -> Result<http::Response<ureq::Body>, ureq::Error> {
    let request = agent
        .configure_request(request)
        .http_status_as_error(false)
        .build();
    agent.run(request)
}

/// [`send`] for an exchange outside the token cache (revocation, introspection), with its
/// duration logged.
pub(crate) fn exchange(
    agent: &ureq::Agent,
    request: HttpRequest,
    timeouts: Timeouts,
    cap: usize,
) -> Exchange {
    let started = std::time::Instant::now();
    let exchange = send(agent, request, timeouts, cap);
    log_received(started, &exchange);
    exchange
}

/// Logs the end of an exchange at DEBUG: its status or its failure, and how long it took.
/// The core's verdict on it is logged separately, once.
pub(crate) fn log_received(started: std::time::Instant, exchange: &Exchange) {
    let elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    match exchange {
        Ok(reply) => {
            tracing::debug!(
                status = reply.status.as_u16(),
                elapsed_ms,
                "response received"
            );
        }
        Err(failure) => tracing::debug!(elapsed_ms, ?failure, "no usable response"),
    }
}

/// Whether `uri` is sent unencrypted (`http://`): such a request must not reach a proxy.
fn is_cleartext(uri: &http::Uri) -> bool {
    uri.scheme() != Some(&http::uri::Scheme::HTTPS)
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
        tracing::debug!(len, cap, "announced response body exceeds the cap");
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
            tracing::debug!(cap, "response body exceeds the cap");
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
