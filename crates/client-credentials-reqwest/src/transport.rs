//! One token request over reqwest: client configuration, the send, the capped body read,
//! and the mapping of reqwest errors into the core's [`TransportError`].

use std::time::Duration;

use client_credentials_core::driver::{Exchange, Reply, Timeouts};
use client_credentials_core::{
    BodyBuffer, ClientIdentity, Failure, HttpRequest, TokenError, TransportError,
    TransportErrorKind,
};

/// Applies what token requests need on top of whatever the caller configured: no redirect
/// is ever followed (a redirect could carry the credentials to another host), connect and
/// overall timeouts. TLS is rustls, as the crate's reqwest features select.
///
/// With a `cleartext` endpoint (an `http://` URL, which the core allows only on loopback),
/// no proxy at all, neither the caller's nor the system's (`HTTP_PROXY`…): a proxy would see
/// the client credentials and the token in cleartext. reqwest's proxies are per client, not
/// per request, so this holds for every endpoint of the configuration.
///
/// With an `identity` (RFC 8705), every TLS connection of the client presents it.
pub(crate) fn configure(
    builder: reqwest::ClientBuilder,
    timeouts: Timeouts,
    cleartext: bool,
    identity: Option<&ClientIdentity>,
) -> Result<reqwest::ClientBuilder, reqwest::Error> {
    let builder = match identity {
        Some(identity) => builder.identity(identity.with_pem(reqwest::Identity::from_pem)?),
        None => builder,
    };
    let builder = builder
        .redirect(reqwest::redirect::Policy::none())
        .referer(false)
        .connect_timeout(timeouts.connect)
        .timeout(timeouts.overall);
    Ok(if cleartext {
        builder.no_proxy()
    } else {
        builder
    })
}

/// Whether any endpoint of `config` (token, revocation, introspection) is plain `http://`.
pub(crate) fn has_cleartext_endpoint(config: &client_credentials_core::Config) -> bool {
    std::iter::once(config.token_url())
        .chain(config.revocation_url())
        .chain(config.introspection_url())
        .any(|uri| uri.scheme() != Some(&http::uri::Scheme::HTTPS))
}

/// Sends `request` and reads the answer, the body through a [`BodyBuffer`] of `cap` bytes,
/// all within `overall` (reqwest's own timeout covers the same span; this one also bounds a
/// caller-supplied client builder's settings and any slip in them). A body over the cap is
/// the core's [`TokenError::TooLarge`], with the status: announced by `Content-Length`, it
/// is not read at all; otherwise reading stops at the chunk that crosses the cap.
///
/// Needs a tokio runtime (the caller checks).
pub(crate) async fn send(
    client: &reqwest::Client,
    request: HttpRequest,
    overall: Duration,
    cap: usize,
) -> Exchange {
    // The call's own timeout (`TokenParams::timeout`) only ever shortens the client's.
    let overall = request.timeout_within(overall);
    match tokio::time::timeout(overall, send_inner(client, request, overall, cap)).await {
        Ok(exchange) => exchange,
        Err(elapsed) => Err(Failure::Transport(TransportError::new(
            TransportErrorKind::Timeout,
            elapsed,
        ))),
    }
}

async fn send_inner(
    client: &reqwest::Client,
    request: HttpRequest,
    overall: Duration,
    cap: usize,
) -> Exchange {
    let (parts, body) = request.into_parts();
    // reqwest's body must own its bytes: from here on they are reqwest's to drop.
    let mut request = reqwest::Request::try_from(http::Request::from_parts(parts, body.into_vec()))
        .map_err(transport_error)?;
    *request.timeout_mut() = Some(overall);
    let mut response = client.execute(request).await.map_err(transport_error)?;
    let status = response.status();
    let too_large = || {
        Failure::Error(TokenError::TooLarge {
            status: Some(status),
            limit: cap,
        })
    };
    let mut buffer = BodyBuffer::new(cap);
    // No decompression feature is enabled, so this is the length on the wire, exactly what
    // will be read.
    if let Some(len) = response.content_length() {
        buffer.expect_len(len).map_err(|_| too_large())?;
    }
    // The buffer is the limit, checked on every chunk, so at most `cap` bytes plus one chunk
    // are ever held.
    while let Some(chunk) = response.chunk().await.map_err(transport_error)? {
        buffer.push(&chunk).map_err(|_| too_large())?;
    }
    Ok(Reply {
        status,
        headers: std::mem::take(response.headers_mut()),
        body: buffer.into_bytes(),
    })
}

/// Maps a reqwest error to the core's transport error, keeping it as the source (reqwest's
/// messages name the failure and the URL, never a body or a header value).
fn transport_error(error: reqwest::Error) -> Failure {
    Failure::Transport(TransportError::new(transport_kind(&error), error))
}

fn transport_kind(error: &reqwest::Error) -> TransportErrorKind {
    if is_tls(error) || closed_during_tls_handshake(error) {
        TransportErrorKind::Tls
    } else if error.is_timeout() {
        TransportErrorKind::Timeout
    } else if error.is_connect() {
        TransportErrorKind::Connect
    } else if error.is_builder() || error.is_redirect() {
        TransportErrorKind::Other
    } else {
        TransportErrorKind::Io
    }
}

/// A connection to an `https` URL that the peer closed while connecting: after TCP, the only
/// reads of the connect phase are the TLS handshake's (tokio-rustls reports "tls handshake
/// eof"), so the peer does not speak TLS there or refused the handshake.
fn closed_during_tls_handshake(error: &reqwest::Error) -> bool {
    error.is_connect()
        && error.url().is_some_and(|url| url.scheme() == "https")
        && io_kinds(error).any(|kind| kind == std::io::ErrorKind::UnexpectedEof)
}

/// The kinds of the `io::Error`s in the chain, looking inside wrapped ones.
fn io_kinds<'a>(
    error: &'a (dyn std::error::Error + 'static),
) -> impl Iterator<Item = std::io::ErrorKind> + 'a {
    let mut next = Some(error);
    std::iter::from_fn(move || {
        while let Some(e) = next {
            let io = e.downcast_ref::<std::io::Error>();
            next = io
                .and_then(std::io::Error::get_ref)
                .map(|inner| inner as &(dyn std::error::Error + 'static))
                .or_else(|| e.source());
            if let Some(io) = io {
                return Some(io.kind());
            }
        }
        None
    })
}

/// Whether a rustls error is anywhere in the chain (hyper-rustls wraps it in an
/// `io::Error`, whose own `source` skips the wrapped error, so that is looked into too).
fn is_tls(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(error);
    while let Some(e) = next {
        if e.is::<rustls::Error>() {
            return true;
        }
        if let Some(inner) = e
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref)
            && is_tls(inner)
        {
            return true;
        }
        next = e.source();
    }
    false
}

/// `http` with the client assertion read from the config's
/// [`AssertionSource`](client_credentials_core::AssertionSource), if it has one: read for
/// this request, because it rotates. A file or blocking function runs on tokio's blocking
/// pool and an async function is awaited, each for no longer than `limit` (the request's
/// own timeout): a hung mount or identity service fails the fetch instead of holding it.
pub(crate) async fn with_assertion(
    config: &client_credentials_core::Config,
    http: HttpRequest,
    limit: Duration,
) -> Result<HttpRequest, TokenError> {
    use client_credentials_core::federated::{Plan, Read};
    let Some(source) = config.assertion_source() else {
        return Ok(http);
    };
    let read = match source.plan() {
        Plan::Env(name) => Read::Env(std::env::var_os(name)),
        Plan::Async(read) => match tokio::time::timeout(limit, read()).await {
            Ok(answer) => Read::Function(answer),
            Err(_) => source.unanswered(limit),
        },
        _ => {
            let owned = config.clone();
            let blocking = tokio::task::spawn_blocking(move || read_blocking(&owned));
            match tokio::time::timeout(limit, blocking).await {
                Ok(Ok(read)) => read,
                // Not the panic's message: it is the user's, and may quote anything.
                Ok(Err(_)) => Read::Function(Err("the assertion reader panicked".into())),
                Err(_) => source.unanswered(limit),
            }
        }
    };
    let assertion = source.accept(read).map_err(TokenError::Assertion)?;
    Ok(client_credentials_core::driver::attach_assertion(
        config, http, &assertion,
    ))
}

/// Reads a file source (at most one byte past the core's cap) or calls a blocking function,
/// on a blocking-pool thread.
fn read_blocking(
    config: &client_credentials_core::Config,
) -> client_credentials_core::federated::Read {
    use client_credentials_core::federated::{Plan, Read, read_capped};
    let plan = config
        .assertion_source()
        .map(client_credentials_core::AssertionSource::plan);
    match plan {
        Some(Plan::File(path)) => Read::File(std::fs::File::open(path).and_then(read_capped)),
        Some(Plan::Blocking(read)) => Read::Function(read()),
        _ => Read::Env(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_rustls_errors_inside_io_errors() {
        let tls = std::io::Error::other(rustls::Error::DecryptError);
        assert!(is_tls(&tls));
        let wrapped = std::io::Error::other(tls);
        assert!(is_tls(&wrapped));
        assert!(!is_tls(&std::io::Error::from(
            std::io::ErrorKind::ConnectionReset
        )));
    }

    #[test]
    fn io_kinds_are_found_inside_wrapped_io_errors() {
        let eof = std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "tls handshake eof");
        let wrapped = std::io::Error::other(eof);
        let kinds: Vec<_> = io_kinds(&wrapped).collect();
        assert_eq!(
            kinds,
            [std::io::ErrorKind::Other, std::io::ErrorKind::UnexpectedEof]
        );
    }
}
