//! One exchange over ureq: agent configuration, the send, the capped body read, and the
//! mapping of ureq errors into the core's [`TransportError`]. Everything here is specific to
//! ureq; what to do with the answer is the core's ([`driver`]).

use std::sync::{Arc, OnceLock};

use client_credentials_core::driver::{Exchange, Reply, Timeouts};
use client_credentials_core::{
    BodyBuffer, ClientIdentity, Failure, HttpRequest, TokenError, TransportError,
    TransportErrorKind,
};
use rustls::crypto::CryptoProvider;

/// An agent configured for token requests: statuses are not errors (error bodies reach the
/// parser), no redirect is followed, connect and global timeouts are set. TLS is rustls
/// with the webpki roots; its crypto provider is the process default if one is installed
/// ([`CryptoProvider::install_default`]), aws-lc-rs otherwise (this crate does not enable
/// ureq's `ring` fallback). The proxy is ureq's default (from the environment); [`send`] turns it
/// off for every `http://` request.
///
/// Its resolver is [`BoundedResolver`](crate::resolve::BoundedResolver): an IP address is
/// answered on the caller's thread, a name by a lookup thread of a small pool, waited for
/// no longer than the request's remaining timeout. ureq's own resolver would start a thread
/// for every request under a timeout.
///
/// With an `identity` (RFC 8705), every TLS connection of the agent presents it; with
/// `roots`, servers are verified against them instead of the webpki roots.
pub(crate) fn default_agent(
    timeouts: Timeouts,
    identity: Option<&ClientIdentity>,
    roots: Option<&[ureq::tls::Certificate<'static>]>,
) -> ureq::Agent {
    let provider = CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(aws_lc_rs);
    let mut tls = ureq::tls::TlsConfig::builder()
        .provider(ureq::tls::TlsProvider::Rustls)
        .unversioned_rustls_crypto_provider(provider)
        .client_cert(identity.and_then(client_cert));
    if let Some(roots) = roots {
        tls = tls.root_certs(ureq::tls::RootCerts::new_with_certs(roots));
    }
    let tls = tls.build();
    let config = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_connect(Some(timeouts.connect))
        .timeout_global(Some(timeouts.overall))
        .tls_config(tls)
        .build();
    ureq::Agent::with_parts(
        config,
        ureq::unversioned::transport::DefaultConnector::default(),
        crate::resolve::BoundedResolver::new(),
    )
}

/// The identity as ureq's client certificate: the chain in DER, the key through PEM (ureq
/// names key kinds only when it reads PEM). The core checked the key when the configuration
/// was built, so ureq reads it; if it ever did not, the agent presents no certificate and
/// the server's refusal says so.
fn client_cert(identity: &ClientIdentity) -> Option<ureq::tls::ClientCert> {
    let chain: Vec<_> = identity
        .certificates_der()
        .map(|der| ureq::tls::Certificate::from_der(der).to_owned())
        .collect();
    match identity.with_pem(|pem| ureq::tls::PrivateKey::from_pem(pem)) {
        Ok(key) => Some(ureq::tls::ClientCert::new_with_certs(&chain, key)),
        Err(_) => {
            tracing::warn!(
                x5t_s256 = identity.x5t_s256(),
                "ureq cannot read the client certificate's key: no certificate is presented"
            );
            None
        }
    }
}

/// The aws-lc-rs provider, one `Arc` for the process: requests that share it can share
/// pooled connections.
fn aws_lc_rs() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    Arc::clone(PROVIDER.get_or_init(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider())))
}

/// The agent's TLS configuration with the aws-lc-rs provider, when the agent (one the
/// caller supplied) names no crypto provider and the process installed no default: ureq,
/// built here without its `ring` fallback, would otherwise panic at the handshake. `None`
/// when the agent's own configuration works as it is.
fn with_provider(agent: &ureq::Agent) -> Option<ureq::tls::TlsConfig> {
    let tls = agent.config().tls_config();
    if tls.provider() != ureq::tls::TlsProvider::Rustls
        || tls.unversioned_rustls_crypto_provider().is_some()
        || CryptoProvider::get_default().is_some()
    {
        return None;
    }
    Some(
        ureq::tls::TlsConfig::builder()
            .provider(tls.provider())
            .client_cert(tls.client_cert().cloned())
            .root_certs(tls.root_certs().clone())
            .use_sni(tls.use_sni())
            .disable_verification(tls.disable_verification())
            .unversioned_rustls_crypto_provider(aws_lc_rs())
            .build(),
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
    let timeouts = timeouts.for_request(&request);
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
    if let Some(tls) = with_provider(agent) {
        config = config.tls_config(tls);
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
    redirects: bool,
) -> Result<http::Response<ureq::Body>, ureq::Error> {
    let mut config = agent.configure_request(request).http_status_as_error(false);
    if !redirects {
        config = config.max_redirects(0);
    }
    if let Some(tls) = with_provider(agent) {
        config = config.tls_config(tls);
    }
    agent.run(config.build())
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
    client_credentials_core::__record_exchange!(&tracing::Span::current(), exchange);
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

/// Reads the body into a [`BodyBuffer`]: a `Content-Length` over the cap is refused
/// before reading anything, and at most `cap + 1` bytes are ever read, straight into the
/// buffer. `None` when the body is over the cap. `as_reader` has no limit of its own; this
/// function is the limit.
fn read_capped(body: &mut ureq::Body, cap: usize) -> std::io::Result<Option<Vec<u8>>> {
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
    if buffer.read_to_end(body.as_reader())?.is_err() {
        tracing::debug!(cap, "response body exceeds the cap");
        return Ok(None);
    }
    Ok(Some(buffer.into_bytes()))
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

/// `http` with the client assertion read from the config's
/// [`AssertionSource`](client_credentials_core::AssertionSource), if it has one: read for
/// this request (never under the cache's lock), because it rotates. A file or a function is
/// read on a thread of its own and waited for no longer than `limit`, so that a hung mount,
/// a FIFO or a stuck function fails the fetch instead of holding the caller. A file is read
/// up to one byte past the core's cap, so that a huge file costs no more than that.
pub(crate) fn with_assertion(
    config: &client_credentials_core::Config,
    http: HttpRequest,
    limit: std::time::Duration,
) -> Result<HttpRequest, TokenError> {
    use client_credentials_core::federated::{Plan, Read, read_capped};
    let Some(source) = config.assertion_source() else {
        return Ok(http);
    };
    let read = match source.plan() {
        Plan::Env(name) => Read::Env(std::env::var_os(name)),
        Plan::Async(_) => return Err(TokenError::Assertion(source.unreadable_here())),
        _ => {
            let (sender, receiver) = std::sync::mpsc::sync_channel(1);
            let owned = config.clone();
            let reader = std::thread::Builder::new()
                .name("client-credentials-assertion".to_owned())
                .spawn(move || {
                    let read = match owned.assertion_source().map(|s| s.plan()) {
                        Some(Plan::File(path)) => {
                            Read::File(std::fs::File::open(path).and_then(read_capped))
                        }
                        Some(Plan::Blocking(read)) => Read::Function(read()),
                        _ => Read::Env(None),
                    };
                    // The caller may have stopped waiting: nothing to do then.
                    let _ = sender.send(read);
                });
            match reader.map(|_| receiver.recv_timeout(limit)) {
                Ok(Ok(read)) => read,
                Ok(Err(_)) => source.unanswered(limit),
                // No thread for the read: as if it had failed at once.
                Err(e) if matches!(source.plan(), Plan::File(_)) => Read::File(Err(e)),
                Err(e) => Read::Function(Err(e.into())),
            }
        }
    };
    let assertion = source.accept(read).map_err(TokenError::Assertion)?;
    Ok(client_credentials_core::driver::attach_assertion(
        config, http, &assertion,
    ))
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
