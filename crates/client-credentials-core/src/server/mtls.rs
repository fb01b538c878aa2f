//! What a TLS terminator verified about a client's certificate (RFC 8705), handed to the
//! endpoint: the core does no TLS and no X.509 path validation, it decides with the facts.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// The client certificate of a connection, as the server that terminated TLS saw it: the
/// leaf's `x5t#S256` thumbprint and, when its chain verified against the CA the server
/// trusts for `tls_client_auth`, the leaf's subject distinguished name (RFC 4514 string).
///
/// Attach it to a parsed request with
/// [`IncomingRequest::with_client_certificate`](crate::server::IncomingRequest::with_client_certificate);
/// the endpoint then authenticates `tls_client_auth` and `self_signed_tls_client_auth`
/// clients with it, and the [`Grant`](crate::server::Grant) carries the thumbprint for a
/// certificate-bound token (RFC 8705 §3).
///
/// ```
/// use client_credentials::server::PresentedCertificate;
/// let cert = PresentedCertificate::from_der(b"\x30\x03\x02\x01\x01").trusted_subject("CN=svc");
/// assert_eq!(cert.subject_dn(), Some("CN=svc"));
/// assert_eq!(cert.x5t_s256().len(), 43);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PresentedCertificate {
    x5t_s256: String,
    subject_dn: Option<String>,
}

impl PresentedCertificate {
    /// The certificate whose leaf, in DER, is `leaf_der`; its chain not (yet) trusted.
    #[must_use]
    pub fn from_der(leaf_der: &[u8]) -> Self {
        use sha2::Digest as _;
        Self::from_x5t_s256(URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(leaf_der)))
    }

    /// The certificate with this `x5t#S256` thumbprint (base64url of the SHA-256 of the
    /// leaf's DER, no padding).
    #[must_use]
    pub fn from_x5t_s256(x5t_s256: impl Into<String>) -> Self {
        Self {
            x5t_s256: x5t_s256.into(),
            subject_dn: None,
        }
    }

    /// Says that the chain verified against the CA trusted for `tls_client_auth`, and that
    /// the leaf's subject is `subject_dn` (RFC 4514, as registered: `CN=svc,O=Example`).
    #[must_use]
    pub fn trusted_subject(mut self, subject_dn: impl Into<String>) -> Self {
        self.subject_dn = Some(subject_dn.into());
        self
    }

    /// The leaf's `x5t#S256` thumbprint.
    #[must_use]
    pub fn x5t_s256(&self) -> &str {
        &self.x5t_s256
    }

    /// The leaf's subject, when its chain is trusted.
    #[must_use]
    pub fn subject_dn(&self) -> Option<&str> {
        self.subject_dn.as_deref()
    }
}
