//! The client's TLS identity for mutual-TLS client authentication and certificate-bound
//! tokens (RFC 8705): a certificate chain and its private key, read from PEM once.
//!
//! The core does no TLS: it checks the identity when the configuration is built, names it
//! in cache keys by its `x5t#S256` thumbprint, and hands the PEM or DER to the transport,
//! whose TLS stack presents it.

use std::fmt;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use zeroize::Zeroizing;

use crate::config::ConfigError;
use crate::der;

/// How the private key of a [`ClientIdentity`] is encoded in DER.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeyFormat {
    /// PKCS#8 (`-----BEGIN PRIVATE KEY-----`).
    Pkcs8,
    /// PKCS#1, RSA only (`-----BEGIN RSA PRIVATE KEY-----`).
    Pkcs1,
    /// SEC1, elliptic curves only (`-----BEGIN EC PRIVATE KEY-----`).
    Sec1,
}

impl KeyFormat {
    /// The PEM label of this format (`PRIVATE KEY`, `RSA PRIVATE KEY`, `EC PRIVATE KEY`).
    #[must_use]
    pub fn pem_label(self) -> &'static str {
        match self {
            Self::Pkcs8 => "PRIVATE KEY",
            Self::Pkcs1 => "RSA PRIVATE KEY",
            Self::Sec1 => "EC PRIVATE KEY",
        }
    }
}

/// A client certificate chain with its private key, for mutual TLS (RFC 8705): what the
/// transport's TLS stack presents to the token endpoint (and, through the transport's own
/// HTTP client, to resource servers), and what certificate-bound tokens are bound to.
///
/// Set it with [`ConfigBuilder::client_certificate`](crate::ConfigBuilder::client_certificate).
/// Cheap to clone. The private key is kept in a buffer that is zeroized on drop and never
/// appears in `Debug` or in errors; `Debug` shows the thumbprint and the chain's length.
///
/// ```
/// use client_credentials::{AuthMethod, ClientIdentity, Config};
///
/// # let cert_pem = include_str!("../tests/keys/mtls-client.pem");
/// # let key_pem = include_str!("../tests/keys/mtls-client.key");
/// let identity = ClientIdentity::from_pem(cert_pem, key_pem)?;
/// // base64url(SHA-256(leaf DER)): compare it with a token's `cnf.x5t#S256`.
/// assert_eq!(identity.x5t_s256(), "s4hnU4EQXH-WvQo33661wHcGRivPlpIvXjdcL412ka0");
/// let config = Config::builder()
///     .token_url("https://mtls.auth.example.com/oauth2/token")
///     .client_id("my-service")
///     .auth_method(AuthMethod::TlsClientAuth)
///     .client_certificate(identity)
///     .build()?;
/// let body = config.default_request().to_http().body().to_vec();
/// assert_eq!(body, b"grant_type=client_credentials&client_id=my-service");
/// assert!(!format!("{config:?}").contains("PRIVATE"));
/// # Ok::<_, client_credentials::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct ClientIdentity {
    inner: Arc<Inner>,
}

struct Inner {
    /// The chain, leaf first, in DER.
    chain: Vec<Vec<u8>>,
    key: Zeroizing<Vec<u8>>,
    format: KeyFormat,
    x5t_s256: String,
}

impl fmt::Debug for ClientIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientIdentity")
            .field("x5t#S256", &self.inner.x5t_s256)
            .field("certificates", &self.inner.chain.len())
            .field("key_format", &self.inner.format)
            .finish_non_exhaustive()
    }
}

impl PartialEq for ClientIdentity {
    /// Two identities are equal when they hold the same chain and key.
    fn eq(&self, other: &Self) -> bool {
        self.inner.chain == other.inner.chain
            && crate::secret::constant_time_eq(&self.inner.key, &other.inner.key)
    }
}

impl Eq for ClientIdentity {}

impl ClientIdentity {
    /// An identity from PEM: `certificates` holds the chain, leaf first (every
    /// `CERTIFICATE` section is taken, others are skipped), `key` the leaf's private key
    /// (`PRIVATE KEY`, `RSA PRIVATE KEY` or `EC PRIVATE KEY`, unencrypted). Both may be the
    /// same buffer, a file holding the chain and the key.
    ///
    /// # Errors
    /// - [`ConfigError::NoCertificate`]: `certificates` holds no PEM certificate (or one that
    ///   is not base64).
    /// - [`ConfigError::NoPrivateKey`]: `key` holds no PEM private key.
    /// - [`ConfigError::InvalidPrivateKey`]: the key is not well-formed DER, or (with the
    ///   `jwt` feature, which the transports enable) not an RSA, ECDSA (P-256, P-384,
    ///   P-521) or Ed25519 key that aws-lc can load. The error never holds key material.
    pub fn from_pem(
        certificates: impl AsRef<[u8]>,
        key: impl AsRef<[u8]>,
    ) -> Result<Self, ConfigError> {
        let mut chain = Vec::new();
        for cert in CertificateDer::pem_slice_iter(certificates.as_ref()) {
            let cert = cert.map_err(|_| ConfigError::NoCertificate)?;
            chain.push(cert.as_ref().to_vec());
        }
        let key = PrivateKeyDer::from_pem_slice(key.as_ref()).map_err(|e| match e {
            rustls_pki_types::pem::Error::NoItemsFound => ConfigError::NoPrivateKey,
            _ => ConfigError::InvalidPrivateKey("its PEM is not valid base64".to_owned()),
        })?;
        let format = match &key {
            PrivateKeyDer::Pkcs8(_) => KeyFormat::Pkcs8,
            PrivateKeyDer::Pkcs1(_) => KeyFormat::Pkcs1,
            PrivateKeyDer::Sec1(_) => KeyFormat::Sec1,
            _ => return Err(ConfigError::NoPrivateKey),
        };
        Self::from_der(chain, key.secret_der(), format)
    }

    /// An identity from DER: the chain, leaf first, and the private key in `format`.
    ///
    /// # Errors
    /// As [`ClientIdentity::from_pem`].
    pub fn from_der<C>(
        chain: impl IntoIterator<Item = C>,
        key: &[u8],
        format: KeyFormat,
    ) -> Result<Self, ConfigError>
    where
        C: Into<Vec<u8>>,
    {
        let chain: Vec<Vec<u8>> = chain.into_iter().map(Into::into).collect();
        let leaf = match chain.first() {
            Some(leaf) if der::is_sequence(leaf) => leaf,
            _ => return Err(ConfigError::NoCertificate),
        };
        let public = check_key(key, format)?;
        if let Some(public) = public
            && leaf_public_key(leaf).is_some_and(|bits| bits != public.as_slice())
        {
            return Err(ConfigError::KeyDoesNotMatchCertificate);
        }
        let x5t_s256 = {
            use sha2::Digest as _;
            URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(leaf))
        };
        Ok(Self {
            inner: Arc::new(Inner {
                chain,
                key: Zeroizing::new(key.to_vec()),
                format,
                x5t_s256,
            }),
        })
    }

    /// The `x5t#S256` thumbprint of the leaf certificate (RFC 8705 §3.1): base64url, without
    /// padding, of the SHA-256 of its DER. A certificate-bound token carries it as
    /// `cnf.x5t#S256`; it is also the identity's part of the cache key.
    #[must_use]
    pub fn x5t_s256(&self) -> &str {
        &self.inner.x5t_s256
    }

    /// The certificate chain, leaf first, each in DER.
    pub fn certificates_der(&self) -> impl ExactSizeIterator<Item = &[u8]> {
        self.inner.chain.iter().map(Vec::as_slice)
    }

    /// The encoding of [`ClientIdentity::expose_private_key_der`].
    #[must_use]
    pub fn key_format(&self) -> KeyFormat {
        self.inner.format
    }

    /// The private key in DER: for a transport that hands it to its TLS stack. Never log
    /// it; copies are the caller's to zeroize.
    #[must_use]
    pub fn expose_private_key_der(&self) -> &[u8] {
        &self.inner.key
    }

    /// Calls `f` with the chain and the key as one PEM document (certificates leaf first,
    /// then the key), the form that some TLS stacks take (`reqwest::Identity::from_pem`).
    /// The document is zeroized when `f` returns.
    ///
    /// ```
    /// # let pem = include_str!("../tests/keys/mtls-client.pem");
    /// # let key = include_str!("../tests/keys/mtls-client.key");
    /// let identity = client_credentials::ClientIdentity::from_pem(pem, key)?;
    /// let sections = identity.with_pem(|pem| {
    ///     let pem = std::str::from_utf8(pem).unwrap();
    ///     (pem.matches("BEGIN CERTIFICATE").count(), pem.matches("BEGIN PRIVATE KEY").count())
    /// });
    /// assert_eq!(sections, (1, 1));
    /// # Ok::<_, client_credentials::ConfigError>(())
    /// ```
    pub fn with_pem<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R {
        let i = &*self.inner;
        let size = i
            .chain
            .iter()
            .map(|c| pem_size("CERTIFICATE", c.len()))
            .sum::<usize>()
            + pem_size(i.format.pem_label(), i.key.len());
        let mut pem = Zeroizing::new(Vec::with_capacity(size));
        for cert in &i.chain {
            write_pem(&mut pem, "CERTIFICATE", cert);
        }
        write_pem(&mut pem, i.format.pem_label(), &i.key);
        f(&pem)
    }
}

/// The bytes of a PEM section of `len` bytes of DER: the armour lines and the base64 in
/// lines of 64 characters.
fn pem_size(label: &str, len: usize) -> usize {
    let b64 = len.div_ceil(3) * 4;
    // `-----BEGIN label-----\n` and `-----END label-----\n`.
    2 * label.len() + 32 + b64 + b64.div_ceil(64)
}

/// Appends `der` as a PEM section, without reallocating `out` when it was sized with
/// [`pem_size`] (so that no unzeroed copy of a key is left behind).
fn write_pem(out: &mut Vec<u8>, label: &str, der: &[u8]) {
    let b64 = Zeroizing::new(STANDARD.encode(der));
    out.extend_from_slice(b"-----BEGIN ");
    out.extend_from_slice(label.as_bytes());
    out.extend_from_slice(b"-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.extend_from_slice(line);
        out.push(b'\n');
    }
    out.extend_from_slice(b"-----END ");
    out.extend_from_slice(label.as_bytes());
    out.extend_from_slice(b"-----\n");
}

fn invalid(what: &str) -> ConfigError {
    ConfigError::InvalidPrivateKey(what.to_owned())
}

/// Checks that `key` is a private key the TLS stack can load: well-formed DER, and with
/// aws-lc (feature `jwt`) a key of a kind it knows.
/// Checks that `key` is a private key in `format` that aws-lc loads (feature `jwt`), and
/// returns its public key as a certificate carries it (the `subjectPublicKey` bits: an
/// uncompressed EC point, an `RSAPublicKey`, or the Ed25519 key); `None` without `jwt`.
fn check_key(key: &[u8], format: KeyFormat) -> Result<Option<Vec<u8>>, ConfigError> {
    if !der::is_sequence(key) {
        return Err(invalid("it is not well-formed DER"));
    }
    #[cfg(feature = "jwt")]
    {
        use aws_lc_rs::signature::{
            ECDSA_P256_SHA256_ASN1_SIGNING, ECDSA_P384_SHA384_ASN1_SIGNING,
            ECDSA_P521_SHA512_ASN1_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _, RsaKeyPair,
        };
        let curves = [
            &ECDSA_P256_SHA256_ASN1_SIGNING,
            &ECDSA_P384_SHA384_ASN1_SIGNING,
            &ECDSA_P521_SHA512_ASN1_SIGNING,
        ];
        let ec = |load: &dyn Fn(_) -> Option<EcdsaKeyPair>| {
            curves
                .iter()
                .find_map(load)
                .map(|k| k.public_key().as_ref().to_vec())
        };
        let public = match format {
            KeyFormat::Pkcs1 => RsaKeyPair::from_der(key)
                .ok()
                .map(|k| k.public_key().as_ref().to_vec()),
            KeyFormat::Sec1 => ec(&|c| EcdsaKeyPair::from_private_key_der(c, key).ok()),
            KeyFormat::Pkcs8 => RsaKeyPair::from_pkcs8(key)
                .ok()
                .map(|k| k.public_key().as_ref().to_vec())
                .or_else(|| ec(&|c| EcdsaKeyPair::from_pkcs8(c, key).ok()))
                .or_else(|| {
                    Ed25519KeyPair::from_pkcs8_maybe_unchecked(key)
                        .ok()
                        .map(|k| k.public_key().as_ref().to_vec())
                }),
        };
        match public {
            Some(public) => Ok(Some(public)),
            None => Err(invalid(
                "aws-lc cannot load it (not RSA of 2048 bits or more, ECDSA P-256/P-384/P-521 or Ed25519)",
            )),
        }
    }
    #[cfg(not(feature = "jwt"))]
    {
        let _ = format;
        Ok(None)
    }
}

/// The `subjectPublicKey` bits of a certificate (RFC 5280 §4.1): the seventh field of its
/// `tbsCertificate` (after the optional version). `None` for a certificate this cannot
/// read, which is then left for the TLS stack to judge.
fn leaf_public_key(cert: &[u8]) -> Option<&[u8]> {
    let (0x30, cert, _) = der::tlv(cert)? else {
        return None;
    };
    let (0x30, mut tbs, _) = der::tlv(cert)? else {
        return None;
    };
    if tbs.first() == Some(&0xa0) {
        tbs = der::tlv(tbs)?.2;
    }
    // serialNumber, signature, issuer, validity, subject
    for _ in 0..5 {
        tbs = der::tlv(tbs)?.2;
    }
    let (0x30, spki, _) = der::tlv(tbs)? else {
        return None;
    };
    let (0x03, bits, _) = der::tlv(der::tlv(spki)?.2)? else {
        return None;
    };
    match bits.split_first()? {
        (0, key) => Some(key),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CERT: &str = include_str!("../tests/keys/mtls-client.pem");
    const KEY: &str = include_str!("../tests/keys/mtls-client.key");

    /// A key that is not the certificate's is refused when the identity is made: every
    /// handshake would fail. The certificate's own key, in any format, is taken.
    #[cfg(feature = "jwt")]
    #[test]
    fn a_key_of_another_certificate_is_refused() {
        let other = include_str!("../tests/keys/ec-p256.pem");
        assert_eq!(
            ClientIdentity::from_pem(CERT, other).unwrap_err(),
            ConfigError::KeyDoesNotMatchCertificate
        );
        assert!(ClientIdentity::from_pem(CERT, KEY).is_ok());
        // What a certificate carries: the leaf's key bits, not its whole SPKI.
        let der = CertificateDer::from_pem_slice(CERT.as_bytes()).unwrap();
        let bits = leaf_public_key(der.as_ref()).unwrap();
        assert_eq!(
            (bits.len(), bits[0]),
            (65, 0x04),
            "an uncompressed P-256 point"
        );
        assert_eq!(leaf_public_key(&der.as_ref()[..40]), None);
        assert_eq!(leaf_public_key(b""), None);
    }

    #[test]
    fn thumbprint_is_the_golden_value() {
        // openssl x509 -in tests/keys/mtls-client.pem -outform der \
        //   | openssl dgst -sha256 -binary | openssl base64 -A | tr '+/' '-_' | tr -d '='
        let identity = ClientIdentity::from_pem(CERT, KEY).unwrap();
        assert_eq!(
            identity.x5t_s256(),
            "s4hnU4EQXH-WvQo33661wHcGRivPlpIvXjdcL412ka0"
        );
        assert_eq!(identity.certificates_der().len(), 1);
        assert_eq!(identity.key_format(), KeyFormat::Pkcs8);
    }

    #[test]
    fn one_buffer_may_hold_both() {
        let both = format!("{CERT}{KEY}");
        let a = ClientIdentity::from_pem(&both, &both).unwrap();
        assert_eq!(a, ClientIdentity::from_pem(CERT, KEY).unwrap());
    }

    #[test]
    fn bad_pem_is_a_typed_error() {
        assert_eq!(
            ClientIdentity::from_pem(KEY, KEY).err(),
            Some(ConfigError::NoCertificate)
        );
        assert_eq!(
            ClientIdentity::from_pem("", KEY).err(),
            Some(ConfigError::NoCertificate)
        );
        assert_eq!(
            ClientIdentity::from_pem(CERT, CERT).err(),
            Some(ConfigError::NoPrivateKey)
        );
        let garbage = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
        assert!(matches!(
            ClientIdentity::from_pem(CERT, garbage),
            Err(ConfigError::InvalidPrivateKey(_))
        ));
        let not_base64 = "-----BEGIN PRIVATE KEY-----\n!!!!\n-----END PRIVATE KEY-----\n";
        assert!(matches!(
            ClientIdentity::from_pem(CERT, not_base64),
            Err(ConfigError::InvalidPrivateKey(_))
        ));
        let cert_garbage = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        assert_eq!(
            ClientIdentity::from_pem(cert_garbage, KEY).err(),
            Some(ConfigError::NoCertificate)
        );
    }

    #[cfg(feature = "jwt")]
    #[test]
    fn a_sequence_that_is_no_key_is_refused() {
        // A well-formed SEQUENCE { INTEGER 0 }: DER, but no key.
        let der = [0x30, 0x03, 0x02, 0x01, 0x00];
        let pem = format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            STANDARD.encode(der)
        );
        let e = ClientIdentity::from_pem(CERT, pem).unwrap_err();
        assert!(matches!(e, ConfigError::InvalidPrivateKey(_)), "{e:?}");
    }

    #[test]
    fn the_key_stays_out_of_debug_and_the_pem_round_trips() {
        let identity = ClientIdentity::from_pem(CERT, KEY).unwrap();
        let debug = format!("{identity:?}");
        let key_b64 = KEY.lines().nth(1).unwrap();
        assert!(
            !debug.contains(key_b64) && !debug.contains("PRIVATE"),
            "{debug}"
        );
        identity.with_pem(|pem| {
            let again = ClientIdentity::from_pem(pem, pem).unwrap();
            assert_eq!(again, identity);
            let i = &identity.inner;
            let size =
                pem_size("CERTIFICATE", i.chain[0].len()) + pem_size("PRIVATE KEY", i.key.len());
            assert_eq!(pem.len(), size, "sized exactly: no reallocation");
        });
    }

    #[test]
    fn der_shapes() {
        assert!(der::is_sequence(&[0x30, 0x00]));
        assert!(der::is_sequence(&[0x30, 0x01, 0x05]));
        assert!(!der::is_sequence(&[0x30, 0x02, 0x05]));
        assert!(!der::is_sequence(&[0x31, 0x00]));
        assert!(!der::is_sequence(&[0x30, 0x81]));
        let mut long = vec![0x30, 0x82, 0x01, 0x00];
        long.extend([0u8; 256]);
        assert!(der::is_sequence(&long));
        long.push(0);
        assert!(!der::is_sequence(&long));
    }
}
