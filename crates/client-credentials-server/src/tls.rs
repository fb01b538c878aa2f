//! HTTPS with client certificates (RFC 8705): the rustls configuration, the verifier that
//! asks for a certificate without requiring one, the accept loop, and the little X.509 the
//! token endpoint needs (a leaf's subject name).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use client_credentials_core::server::PresentedCertificate;
use hyper_util::rt::TokioIo;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme};
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use tower_service::Service as _;

use crate::SHUTDOWN_GRACE;

/// How long a TLS handshake may take before the connection is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the TLS configuration was refused. Never holds key material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// The certificate chain PEM holds no `CERTIFICATE`, or one that is not base64.
    #[error("the TLS certificate chain holds no valid PEM certificate")]
    NoCertificate,
    /// The key PEM holds no private key, or one that is not base64.
    #[error("the TLS key holds no valid PEM private key")]
    NoPrivateKey,
    /// The client CA PEM holds no certificate rustls accepts as a trust anchor.
    #[error("the client CA holds no usable PEM certificate")]
    ClientCa,
    /// rustls refused the certificate and key (a key it cannot use, or one that is not the
    /// certificate's).
    #[error("rustls refused the TLS certificate and key: {0}")]
    Refused(#[source] rustls::Error),
}

/// The PEM the builder was given. `Debug` leaves the key out.
#[derive(Clone)]
pub(crate) struct TlsPem {
    pub(crate) chain: Vec<u8>,
    pub(crate) key: Vec<u8>,
}

impl fmt::Debug for TlsPem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsPem")
            .field("chain_bytes", &self.chain.len())
            .field("key", &"[redacted]")
            .finish()
    }
}

/// A ready TLS setup: the acceptor, and the verifier of `tls_client_auth` chains (the
/// configured client CA), if any.
pub(crate) struct Tls {
    pub(crate) acceptor: TlsAcceptor,
    pub(crate) client_verifier: Option<Arc<dyn ClientCertVerifier>>,
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

impl Tls {
    pub(crate) fn new(pem: &TlsPem, client_ca: Option<&[u8]>) -> Result<Self, TlsError> {
        let provider = provider();
        let chain = CertificateDer::pem_slice_iter(&pem.chain)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| TlsError::NoCertificate)?;
        if chain.is_empty() {
            return Err(TlsError::NoCertificate);
        }
        let key = PrivateKeyDer::from_pem_slice(&pem.key).map_err(|_| TlsError::NoPrivateKey)?;
        let client_verifier = match client_ca {
            None => None,
            Some(ca) => {
                let mut roots = RootCertStore::empty();
                for cert in CertificateDer::pem_slice_iter(ca) {
                    let cert = cert.map_err(|_| TlsError::ClientCa)?;
                    roots.add(cert).map_err(|_| TlsError::ClientCa)?;
                }
                if roots.is_empty() {
                    return Err(TlsError::ClientCa);
                }
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                        .build()
                        .map_err(|_| TlsError::ClientCa)?;
                Some(verifier)
            }
        };
        let handshake = Arc::new(AnyClientCertificate {
            algorithms: provider.signature_verification_algorithms,
        });
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(TlsError::Refused)?
            .with_client_cert_verifier(handshake)
            .with_single_cert(chain, key)
            .map_err(TlsError::Refused)?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Self {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            client_verifier,
        })
    }
}

/// Asks for a client certificate, does not require one, and accepts any at the handshake:
/// the handshake signature is still verified (the client holds the certificate's key).
/// Whether the certificate is a client's is decided by the token endpoint.
#[derive(Debug)]
struct AnyClientCertificate {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for AnyClientCertificate {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// The certificate chain a connection's client presented (DER, leaf first), put in the
/// extensions of each of its requests.
#[derive(Clone, Debug)]
pub(crate) struct PeerCertificates(pub(crate) Arc<[CertificateDer<'static>]>);

impl PeerCertificates {
    /// The leaf's `x5t#S256`.
    pub(crate) fn x5t_s256(&self) -> Option<String> {
        self.0
            .first()
            .map(|leaf| PresentedCertificate::from_der(leaf).x5t_s256().to_owned())
    }
}

/// What the token endpoint is told about a connection's certificate: its thumbprint and,
/// when its chain verifies against the client CA, its subject.
pub(crate) fn presented(
    peer: Option<&PeerCertificates>,
    verifier: Option<&Arc<dyn ClientCertVerifier>>,
) -> Option<PresentedCertificate> {
    let chain = &peer?.0;
    let (leaf, intermediates) = chain.split_first()?;
    let certificate = PresentedCertificate::from_der(leaf);
    let trusted = verifier.is_some_and(|v| {
        v.verify_client_cert(leaf, intermediates, UnixTime::now())
            .is_ok()
    });
    match subject_dn(leaf) {
        Some(subject) if trusted => Some(certificate.trusted_subject(subject)),
        _ => Some(certificate),
    }
}

/// Serves HTTPS until told to stop, then gives requests in flight [`SHUTDOWN_GRACE`].
pub(crate) async fn serve_tls(
    listener: tokio::net::TcpListener,
    router: Router,
    acceptor: TlsAcceptor,
    stopped: watch::Receiver<bool>,
) {
    let mut connections = tokio::task::JoinSet::new();
    let mut stop = stopped.clone();
    loop {
        tokio::select! {
            // An error means the handle is gone: stop too.
            () = stop_signal(&mut stop) => break,
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => {
                    connections.spawn(connection(
                        tcp,
                        acceptor.clone(),
                        router.clone(),
                        stopped.clone(),
                    ));
                }
                Err(e) => {
                    tracing::debug!(error = %e, "embedded server cannot accept");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    let drained = async { while connections.join_next().await.is_some() {} };
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, drained).await;
    // Dropping the set aborts what is left.
}

/// Resolves once the server is told to stop (or its handle is gone).
async fn stop_signal(stopped: &mut watch::Receiver<bool>) {
    let _ = stopped.wait_for(|stop| *stop).await;
}

async fn connection(
    tcp: tokio::net::TcpStream,
    acceptor: TlsAcceptor,
    router: Router,
    mut stopped: watch::Receiver<bool>,
) {
    // A connection still in its handshake when the server stops is simply dropped.
    let handshake = tokio::select! {
        handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)) => handshake,
        () = stop_signal(&mut stopped) => return,
    };
    let stream = match handshake {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "TLS handshake failed");
            return;
        }
        Err(_) => {
            tracing::debug!("TLS handshake timed out");
            return;
        }
    };
    let peer = stream
        .get_ref()
        .1
        .peer_certificates()
        .map(|chain| PeerCertificates(chain.iter().map(|c| c.clone().into_owned()).collect()));
    let service =
        hyper::service::service_fn(move |request: http::Request<hyper::body::Incoming>| {
            let mut request = request.map(axum::body::Body::new);
            if let Some(peer) = &peer {
                request.extensions_mut().insert(peer.clone());
            }
            let mut router = router.clone();
            async move { router.call(request).await }
        });
    let conn =
        hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    tokio::select! {
        result = conn.as_mut() => {
            if let Err(e) = result {
                tracing::debug!(error = %e, "HTTPS connection failed");
            }
        }
        () = stop_signal(&mut stopped) => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

/// One DER element: tag, contents, and what follows. Single-byte tags, definite lengths of
/// at most four bytes.
fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    if tag & 0x1f == 0x1f {
        return None;
    }
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let (bytes, rest) = rest.split_at(n);
        let len = bytes
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, rest)
    };
    if rest.len() < len {
        return None;
    }
    let (contents, rest) = rest.split_at(len);
    Some((tag, contents, rest))
}

/// The subject of a DER certificate as an RFC 4514 string (`CN=mtls-client,O=Example`):
/// RDNs last first, multi-valued ones joined with `+`, the usual attribute names, others as
/// dotted OIDs with `#`-hex values.
pub(crate) fn subject_dn(certificate: &[u8]) -> Option<String> {
    const SEQUENCE: u8 = 0x30;
    let (SEQUENCE, cert, _) = tlv(certificate)? else {
        return None;
    };
    let (SEQUENCE, tbs, _) = tlv(cert)? else {
        return None;
    };
    let mut rest = tbs;
    let (tag, _, after) = tlv(rest)?;
    if tag == 0xa0 {
        rest = after; // version
    }
    // serial, signature, issuer, validity, then the subject.
    for _ in 0..4 {
        rest = tlv(rest)?.2;
    }
    let (SEQUENCE, mut name, _) = tlv(rest)? else {
        return None;
    };
    let mut rdns = Vec::new();
    while !name.is_empty() {
        let (0x31, mut set, after) = tlv(name)? else {
            return None;
        };
        name = after;
        let mut attributes = Vec::new();
        while !set.is_empty() {
            let (SEQUENCE, attribute, after) = tlv(set)? else {
                return None;
            };
            set = after;
            let (0x06, oid, value) = tlv(attribute)? else {
                return None;
            };
            let (value_tag, value_bytes, _) = tlv(value)?;
            let oid = oid_string(oid)?;
            let text = match (attribute_name(&oid), value_tag) {
                (Some(name), 0x0c | 0x13 | 0x16 | 0x14) => std::str::from_utf8(value_bytes)
                    .ok()
                    .map(|v| format!("{name}={}", escape(v))),
                _ => None,
            };
            let text = text.unwrap_or_else(|| {
                let hex: String = value.iter().map(|b| format!("{b:02x}")).collect();
                format!("{oid}=#{hex}")
            });
            attributes.push(text);
        }
        rdns.push(attributes.join("+"));
    }
    rdns.reverse();
    Some(rdns.join(","))
}

fn oid_string(oid: &[u8]) -> Option<String> {
    let mut arcs: Vec<u64> = Vec::new();
    let mut value: u64 = 0;
    for &b in oid {
        value = value.checked_mul(128)? | u64::from(b & 0x7f);
        if b & 0x80 == 0 {
            if arcs.is_empty() {
                let first = (value / 40).min(2);
                arcs.push(first);
                arcs.push(value - first * 40);
            } else {
                arcs.push(value);
            }
            value = 0;
        }
    }
    if arcs.is_empty() {
        return None;
    }
    Some(
        arcs.iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join("."),
    )
}

fn attribute_name(oid: &str) -> Option<&'static str> {
    Some(match oid {
        "2.5.4.3" => "CN",
        "2.5.4.6" => "C",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.9" => "STREET",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "0.9.2342.19200300.100.1.25" => "DC",
        "0.9.2342.19200300.100.1.1" => "UID",
        _ => return None,
    })
}

/// RFC 4514 §2.4 escaping of an attribute value.
fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';')
            || (i == 0 && (c == '#' || c == ' '))
            || (i == last && c == ' ');
        if special {
            out.push('\\');
        }
        if c == '\0' {
            out.push_str("\\00");
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn der(pem: &str) -> Vec<u8> {
        CertificateDer::from_pem_slice(pem.as_bytes())
            .map(|c| c.to_vec())
            .unwrap_or_default()
    }

    #[test]
    fn subjects_of_the_fixtures() {
        let client = der(include_str!("../../../tests/interop/certs/client.pem"));
        assert_eq!(subject_dn(&client).as_deref(), Some("CN=mtls-client"));
        let other = der(include_str!("../../../tests/interop/certs/other.pem"));
        assert_eq!(subject_dn(&other).as_deref(), Some("CN=mtls-client"));
        assert_eq!(subject_dn(b"\x30\x00"), None);
        assert_eq!(subject_dn(&client[..client.len() / 2]), None);
    }

    #[test]
    fn escaping() {
        assert_eq!(escape("a,b"), "a\\,b");
        assert_eq!(escape(" x "), "\\ x\\ ");
        assert_eq!(escape("#1"), "\\#1");
    }
}
