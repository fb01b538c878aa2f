//! Authorization server discovery: the metadata document of an issuer (RFC 8414, with the
//! OpenID Connect Discovery 1.0 document as the fallback), read into a [`ServerMetadata`] from
//! which [`ConfigBuilder::from_metadata`] starts a configuration.
//!
//! [`Discovery`] is the whole protocol as a value: it names the request to send, reads the
//! answer, and says whether the answer was the metadata or a 404 that sends it on to the
//! next document. A transport only sends and hands the answer back:
//!
//! ```
//! use std::time::SystemTime;
//! use client_credentials::{ConfigBuilder, Discovery, DiscoveryStep, WellKnown};
//! use client_credentials::http::{HeaderMap, StatusCode};
//!
//! # let send = |request: client_credentials::HttpRequest| -> (StatusCode, Vec<u8>) {
//! #     if request.uri().path().starts_with("/.well-known/oauth-authorization-server") {
//! #         return (StatusCode::NOT_FOUND, Vec::new());
//! #     }
//! #     (StatusCode::OK, br#"{"issuer":"https://as.example.com/tenant",
//! #         "token_endpoint":"https://as.example.com/tenant/token",
//! #         "token_endpoint_auth_methods_supported":["client_secret_post"]}"#.to_vec())
//! # };
//! let mut discovery = Discovery::new("https://as.example.com/tenant")?;
//! assert_eq!(
//!     discovery.request().uri(),
//!     "https://as.example.com/.well-known/oauth-authorization-server/tenant",
//! );
//! let metadata = loop {
//!     let (status, body) = send(discovery.request()); // your HTTP client, body capped
//!     match discovery.handle_response(SystemTime::now(), status, &HeaderMap::new(), &body)? {
//!         DiscoveryStep::Found(metadata) => break metadata,
//!         // A 404: the same issuer's OpenID Connect document is next.
//!         DiscoveryStep::Next(next) => discovery = *next,
//!     }
//! };
//! assert_eq!(metadata.document, WellKnown::OpenIdConfiguration);
//!
//! let config = ConfigBuilder::from_metadata(&metadata)
//!     .client_id("my-service")
//!     .client_secret("s3cr3t")
//!     .build()?;
//! assert_eq!(config.token_url(), "https://as.example.com/tenant/token");
//! assert_eq!(config.auth_method().name(), "client_secret_post");
//! # Ok::<_, Box<dyn std::error::Error>>(())
//! ```
//!
//! The rules, and where they come from:
//! - The RFC 8414 §3.1 document is tried first: `/.well-known/oauth-authorization-server`
//!   inserted between the host and the issuer's path (its terminating `/` removed). A 404
//!   there, and only a 404, moves on to OpenID Connect Discovery §4's document, the issuer
//!   with `/.well-known/openid-configuration` appended. Any other answer ends discovery.
//! - The document's `issuer` must equal the issuer asked for exactly (RFC 8414 §3.3,
//!   OpenID Connect Discovery §4.3), or it is [`DiscoveryError::IssuerMismatch`]: otherwise a
//!   document could send the client's credentials to endpoints of another server.
//! - The issuer and every endpoint must be absolute `https` URLs, `http` allowed only on a
//!   loopback host: the rule of [`ConfigBuilder::token_url`].
//! - The body is capped ([`Discovery::max_body`], [`DEFAULT_MAX_BODY`] by default), redirects
//!   are never followed (a 3xx is an error), and malformed input is a typed error, never a
//!   panic.
//!
//! The errors are one [`DiscoveryError`] rather than variants of [`TokenError`] or
//! [`ConfigError`]: discovery happens before there is a configuration, and what goes wrong
//! with a metadata document (a foreign issuer, a missing `token_endpoint`) is not something a
//! token fetch can meet. What it shares with every endpoint (transport failures, a body over
//! the cap, 5xx and 429 with `Retry-After`) is a [`TokenError`] inside
//! [`DiscoveryError::Endpoint`], classified as for the token endpoint, so that
//! [`DiscoveryError::is_retryable`] is decided in one place.

use std::collections::BTreeMap;
use std::fmt;
use std::time::SystemTime;

use http::{HeaderMap, StatusCode, Uri};
use serde_json::{Map, Value};

use crate::config::{
    AuthMethod, Config, ConfigBuilder, ConfigError, DEFAULT_MAX_BODY, validate_token_url,
};
use crate::driver::Exchange;
use crate::error::{Endpoint, ResponseProblem, TokenError};
use crate::request::{HttpRequest, build_get};
use crate::response::{Context, bounded, content_type};
use crate::session::Failure;

/// The suffix of the RFC 8414 document, inserted between the issuer's host and path.
const OAUTH_SUFFIX: &str = "/.well-known/oauth-authorization-server";
/// The suffix of the OpenID Connect Discovery document, appended to the issuer.
const OPENID_SUFFIX: &str = "/.well-known/openid-configuration";
/// The longest server-chosen text (an issuer, a member name) that an error quotes.
const MAX_QUOTED: usize = 200;

/// Which metadata document a [`Discovery`] asks for, or where a [`ServerMetadata`] was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum WellKnown {
    /// RFC 8414 §3.1: `/.well-known/oauth-authorization-server`, inserted between the host
    /// and the path of the issuer. Asked for first.
    OAuthAuthorizationServer,
    /// OpenID Connect Discovery 1.0 §4: `/.well-known/openid-configuration`, appended to the
    /// issuer. Asked for when the first answered 404.
    OpenIdConfiguration,
}

impl WellKnown {
    /// The well-known suffix, with its leading `/`.
    #[must_use]
    pub fn suffix(self) -> &'static str {
        match self {
            Self::OAuthAuthorizationServer => OAUTH_SUFFIX,
            Self::OpenIdConfiguration => OPENID_SUFFIX,
        }
    }
}

/// Why discovery failed. Every variant says what to fix or whether to retry
/// ([`DiscoveryError::is_retryable`]); none quotes a body.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum DiscoveryError {
    /// The issuer asked for is not an issuer identifier (RFC 8414 §2): not an absolute
    /// `https` URL, or with user info, a query or a fragment. Nothing was sent.
    InvalidIssuer(String),
    /// The issuer asked for uses `http` and its host is not loopback. Nothing was sent.
    InsecureIssuer(String),
    /// The metadata endpoint failed as any endpoint can: the transport failed, the body was
    /// over the cap, the server failed (5xx) or throttled (429, with `Retry-After`), refused
    /// (another 4xx), redirected (never followed), or answered success with a body that is
    /// not a JSON object. Classified as for the token endpoint.
    Endpoint(Box<TokenError>),
    /// Neither document exists: both the RFC 8414 URL and the OpenID Connect URL answered
    /// 404. The issuer is most likely wrong (a missing tenant or realm path).
    NotFound {
        /// The RFC 8414 URL that was asked first.
        oauth: String,
        /// The OpenID Connect URL that was asked next.
        openid: String,
    },
    /// The document's `issuer` is not the issuer asked for (RFC 8414 §3.3, OpenID Connect
    /// Discovery §4.3): its endpoints are not trusted. Issuers are compared exactly, so a
    /// missing or extra terminating `/` is a mismatch too.
    IssuerMismatch {
        /// The issuer asked for.
        expected: String,
        /// The document's `issuer`, bounded in length.
        found: String,
    },
    /// A member the document must have is missing or `null`: `issuer` or `token_endpoint`.
    MissingMember(&'static str),
    /// A member has the wrong JSON type: an endpoint or `issuer` that is not a string, a
    /// `*_supported` list that is not an array of strings, `mtls_endpoint_aliases` that is
    /// not an object. The member's name, bounded in length.
    InvalidMember(String),
    /// An endpoint is not an absolute URL, or carries user info or a fragment.
    InvalidEndpoint {
        /// The member (`token_endpoint`, `mtls_endpoint_aliases.token_endpoint`…).
        member: String,
        /// Its value, bounded in length.
        url: String,
    },
    /// An endpoint uses `http` and its host is not loopback.
    InsecureEndpoint {
        /// The member (`token_endpoint`, `mtls_endpoint_aliases.token_endpoint`…).
        member: String,
        /// Its value, bounded in length.
        url: String,
    },
}

impl fmt::Display for DiscoveryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidIssuer(issuer) => write!(
                f,
                "issuer {issuer:?} is not an issuer identifier: an absolute https URL without \
                 user info, query or fragment"
            ),
            Self::InsecureIssuer(issuer) => write!(
                f,
                "issuer {issuer:?} must use https (http is allowed only for loopback hosts)"
            ),
            Self::Endpoint(error) => fmt::Display::fmt(&error.at(Endpoint::Metadata), f),
            Self::NotFound { oauth, openid } => write!(
                f,
                "no authorization server metadata at {oauth} nor at {openid} (HTTP 404): \
                 check the issuer"
            ),
            Self::IssuerMismatch { expected, found } => write!(
                f,
                "metadata issuer {found:?} is not the issuer asked for, {expected:?} \
                 (RFC 8414 §3.3)"
            ),
            Self::MissingMember(member) => write!(f, "metadata has no {member}"),
            Self::InvalidMember(member) => {
                write!(f, "metadata member {member:?} has the wrong type")
            }
            Self::InvalidEndpoint { member, url } => {
                write!(f, "metadata {member} is not a valid absolute URL: {url:?}")
            }
            Self::InsecureEndpoint { member, url } => write!(
                f,
                "metadata {member} must use https (http is allowed only for loopback hosts): \
                 {url:?}"
            ),
        }
    }
}

impl std::error::Error for DiscoveryError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Endpoint(error) => Some(&**error),
            _ => None,
        }
    }
}

impl DiscoveryError {
    /// The endpoint's error, for [`DiscoveryError::Endpoint`].
    #[must_use]
    pub fn token_error(&self) -> Option<&TokenError> {
        match self {
            Self::Endpoint(error) => Some(error),
            _ => None,
        }
    }

    /// Whether trying again later may succeed: only for an [`DiscoveryError::Endpoint`]
    /// failure that [`TokenError::is_retryable`] says so of (transport, 5xx, 429). A wrong
    /// or foreign document stays wrong.
    #[must_use]
    pub fn is_retryable(&self) -> bool {
        self.token_error().is_some_and(TokenError::is_retryable)
    }
}

impl From<TokenError> for DiscoveryError {
    fn from(error: TokenError) -> Self {
        Self::Endpoint(Box::new(error))
    }
}

/// Alternative endpoints for mutual-TLS clients (RFC 8705 §5): the endpoint's metadata name
/// (`token_endpoint`, `revocation_endpoint`…) and its URL, each checked as every endpoint.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MtlsEndpointAliases(BTreeMap<String, Uri>);

impl MtlsEndpointAliases {
    /// The alias of the endpoint named `member` (`token_endpoint`…), if the server gave one.
    #[must_use]
    pub fn get(&self, member: &str) -> Option<&Uri> {
        self.0.get(member)
    }

    /// The mutual-TLS token endpoint, if any.
    #[must_use]
    pub fn token_endpoint(&self) -> Option<&Uri> {
        self.get("token_endpoint")
    }

    /// The mutual-TLS revocation endpoint, if any.
    #[must_use]
    pub fn revocation_endpoint(&self) -> Option<&Uri> {
        self.get("revocation_endpoint")
    }

    /// The mutual-TLS introspection endpoint, if any.
    #[must_use]
    pub fn introspection_endpoint(&self) -> Option<&Uri> {
        self.get("introspection_endpoint")
    }

    /// Every alias, by member name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Uri)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Whether the server gave no alias.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// An authorization server's metadata (RFC 8414 §2), checked: the issuer is the one asked
/// for, and every endpoint is an absolute `https` URL (`http` only on loopback).
///
/// A list is `None` when the server did not send it (or sent `null`): RFC 8414 gives some
/// absent lists a default ([`ServerMetadata::auth_methods`],
/// [`ServerMetadata::supports_grant_type`] apply it).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct ServerMetadata {
    /// The document it came from.
    pub document: WellKnown,
    /// `issuer`: equal to the issuer asked for.
    pub issuer: String,
    /// `token_endpoint`.
    pub token_endpoint: Uri,
    /// `revocation_endpoint` (RFC 7009).
    pub revocation_endpoint: Option<Uri>,
    /// `introspection_endpoint` (RFC 7662).
    pub introspection_endpoint: Option<Uri>,
    /// `jwks_uri`: the server's signing keys.
    pub jwks_uri: Option<Uri>,
    /// `token_endpoint_auth_methods_supported`.
    pub token_endpoint_auth_methods_supported: Option<Vec<String>>,
    /// `token_endpoint_auth_signing_alg_values_supported`: the JWS algorithms of client
    /// assertions (`private_key_jwt`, `client_secret_jwt`).
    pub token_endpoint_auth_signing_alg_values_supported: Option<Vec<String>>,
    /// `grant_types_supported`.
    pub grant_types_supported: Option<Vec<String>>,
    /// `scopes_supported`.
    pub scopes_supported: Option<Vec<String>>,
    /// `mtls_endpoint_aliases` (RFC 8705 §5); empty when absent.
    pub mtls_endpoint_aliases: MtlsEndpointAliases,
    /// `dpop_signing_alg_values_supported` (RFC 9449 §5.1).
    pub dpop_signing_alg_values_supported: Option<Vec<String>>,
    /// Every other member, as sent.
    pub extra: Map<String, Value>,
}

impl ServerMetadata {
    /// The token endpoint's client authentication methods, with RFC 8414 §2's default
    /// (`client_secret_basic`) when the server did not list them.
    #[must_use]
    pub fn auth_methods(&self) -> Vec<&str> {
        match &self.token_endpoint_auth_methods_supported {
            Some(methods) => methods.iter().map(String::as_str).collect(),
            None => vec!["client_secret_basic"],
        }
    }

    /// Whether the server says it supports the grant type `grant` (`client_credentials`),
    /// with RFC 8414 §2's default (`authorization_code` and `implicit`) when it did not list
    /// them.
    #[must_use]
    pub fn supports_grant_type(&self, grant: &str) -> bool {
        match &self.grant_types_supported {
            Some(grants) => grants.iter().any(|g| g == grant),
            None => matches!(grant, "authorization_code" | "implicit"),
        }
    }
}

/// The shared-secret method to use when the user chose none: `client_secret_basic` if the
/// server lists it (or lists nothing: RFC 8414 §2's default), else `client_secret_post` if
/// it lists that, else `client_secret_basic` (the server takes only methods this choice
/// does not cover, such as assertions or mutual TLS: set one with
/// [`ConfigBuilder::auth_method`]).
pub(crate) fn secret_method(supported: Option<&[String]>, secret_len: usize) -> AuthMethod {
    let lists = |name: &str| supported.is_some_and(|s| s.iter().any(|m| m == name));
    let plain = lists("client_secret_basic") || lists("client_secret_post");
    if supported.is_some() && !lists("client_secret_basic") && lists("client_secret_post") {
        AuthMethod::client_secret_post()
    } else if cfg!(feature = "jwt")
        && supported.is_some()
        && !plain
        && lists("client_secret_jwt")
        && secret_len >= 32
    {
        // A server that takes a secret only as an HS256 key (RFC 7518 §3.2's 32 bytes).
        AuthMethod::ClientSecretJwt
    } else {
        AuthMethod::ClientSecretBasic
    }
}

/// The mutual-TLS method when the client has a certificate and no other credential:
/// `tls_client_auth` if the server lists it (or lists nothing), else
/// `self_signed_tls_client_auth` if it lists that, else `tls_client_auth`.
pub(crate) fn mtls_method(supported: Option<&[String]>) -> AuthMethod {
    let lists = |name: &str| supported.is_some_and(|s| s.iter().any(|m| m == name));
    if !lists("tls_client_auth") && lists("self_signed_tls_client_auth") {
        AuthMethod::SelfSignedTlsClientAuth
    } else {
        AuthMethod::TlsClientAuth
    }
}

/// The endpoints a builder took from metadata, and their mutual-TLS aliases: applied by
/// [`use_mtls_aliases`] when the client has a certificate.
#[derive(Clone, Debug)]
pub(crate) struct Discovered {
    token_endpoint: String,
    revocation_endpoint: Option<String>,
    introspection_endpoint: Option<String>,
    aliases: MtlsEndpointAliases,
}

/// Points a builder made by [`ConfigBuilder::from_metadata`] at the server's mutual-TLS
/// aliases (RFC 8705 §5) when it has a client certificate: the token endpoint, and the
/// revocation and introspection endpoints, each unless the caller set another URL after
/// discovery, or the server gave no alias for it.
pub(crate) fn use_mtls_aliases(builder: &mut ConfigBuilder) {
    if !builder.has_identity() {
        return;
    }
    let Some(d) = builder.discovered.take() else {
        return;
    };
    let swap = |url: &mut Option<String>, discovered: Option<&String>, member: &str| {
        if let Some(alias) = d.aliases.get(member)
            && url.as_ref() == discovered
            && url.is_some()
        {
            *url = Some(alias.to_string());
        }
    };
    swap(
        &mut builder.token_url,
        Some(&d.token_endpoint),
        "token_endpoint",
    );
    swap(
        &mut builder.revocation_url,
        d.revocation_endpoint.as_ref(),
        "revocation_endpoint",
    );
    swap(
        &mut builder.introspection_url,
        d.introspection_endpoint.as_ref(),
        "introspection_endpoint",
    );
}

impl ConfigBuilder {
    /// A builder with the endpoints of `metadata` (token, revocation, introspection), and
    /// the client authentication method chosen from its
    /// `token_endpoint_auth_methods_supported`: `client_secret_basic` if listed (or if
    /// nothing is listed, RFC 8414 §2's default), else `client_secret_post` if listed, else
    /// `client_secret_jwt` if listed and the secret is at least 32 bytes (feature `jwt`). A
    /// method set with [`ConfigBuilder::auth_method`] always wins, a private key
    /// ([`ConfigBuilder::private_key`]) or an assertion source
    /// ([`ConfigBuilder::client_assertion`]) sets `private_key_jwt`, and without any of
    /// these nor a client secret the client is public ([`AuthMethod::None`]) as with any
    /// builder.
    ///
    /// Mutual TLS (RFC 8705): with a client certificate
    /// ([`ConfigBuilder::client_certificate`]), the endpoints are the server's
    /// `mtls_endpoint_aliases` where it gives them (an endpoint set again on the builder
    /// after this call is kept as set), and without a secret or a key the method is
    /// `tls_client_auth` if listed (or nothing is listed), else `self_signed_tls_client_auth`
    /// if listed.
    ///
    /// ```
    /// # let cert_pem = include_str!("../tests/keys/mtls-client.pem");
    /// # let key_pem = include_str!("../tests/keys/mtls-client.key");
    /// use std::time::SystemTime;
    /// use client_credentials::{AuthMethod, ClientIdentity, ConfigBuilder, Discovery, DiscoveryStep};
    /// use client_credentials::http::{HeaderMap, StatusCode};
    ///
    /// let discovery = Discovery::new("https://as.example.com")?;
    /// let body = br#"{"issuer":"https://as.example.com","token_endpoint":"https://as.example.com/token",
    ///   "token_endpoint_auth_methods_supported":["private_key_jwt","self_signed_tls_client_auth"],
    ///   "mtls_endpoint_aliases":{"token_endpoint":"https://mtls.as.example.com/token"}}"#;
    /// let step = discovery.handle_response(SystemTime::now(), StatusCode::OK, &HeaderMap::new(), body)?;
    /// let DiscoveryStep::Found(metadata) = step else { unreachable!("a 200") };
    /// let config = ConfigBuilder::from_metadata(&metadata)
    ///     .client_id("my-service")
    ///     .client_certificate(ClientIdentity::from_pem(cert_pem, key_pem)?)
    ///     .build()?;
    /// assert_eq!(config.token_url(), "https://mtls.as.example.com/token");
    /// assert_eq!(config.auth_method(), &AuthMethod::SelfSignedTlsClientAuth);
    /// # Ok::<_, Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn from_metadata(metadata: &ServerMetadata) -> Self {
        let mut builder = Config::builder().token_url(metadata.token_endpoint.to_string());
        if let Some(url) = &metadata.revocation_endpoint {
            builder = builder.revocation_url(url.to_string());
        }
        if let Some(url) = &metadata.introspection_endpoint {
            builder = builder.introspection_url(url.to_string());
        }
        builder.server_auth_methods = metadata.token_endpoint_auth_methods_supported.clone();
        builder.discovered = Some(Discovered {
            token_endpoint: metadata.token_endpoint.to_string(),
            revocation_endpoint: metadata.revocation_endpoint.as_ref().map(Uri::to_string),
            introspection_endpoint: metadata.introspection_endpoint.as_ref().map(Uri::to_string),
            aliases: metadata.mtls_endpoint_aliases.clone(),
        });
        builder
    }
}

/// What an answer to a [`Discovery`] request amounts to, when it is not an error.
#[derive(Debug)]
#[must_use]
pub enum DiscoveryStep {
    /// The metadata, checked.
    Found(Box<ServerMetadata>),
    /// The RFC 8414 document does not exist (404): send this discovery's
    /// [`request`](Discovery::request), the OpenID Connect document, next.
    Next(Box<Discovery>),
}

/// Discovery of one issuer's metadata, as a value: [`Discovery::request`] is what to send
/// now, [`Discovery::handle_response`] (or [`Discovery::handle_exchange`]) reads the answer
/// into the [metadata](DiscoveryStep::Found), an error, or the [next
/// step](DiscoveryStep::Next). At most two requests are ever sent; the module docs have the
/// loop and the rules.
#[derive(Clone, Debug)]
pub struct Discovery {
    issuer: String,
    oauth: Uri,
    openid: Uri,
    document: WellKnown,
    max_body: usize,
}

impl Discovery {
    /// Discovery of `issuer`'s metadata, starting with the RFC 8414 document.
    ///
    /// ```
    /// use client_credentials::Discovery;
    ///
    /// let d = Discovery::new("https://as.example.com")?;
    /// assert_eq!(d.request().uri(), "https://as.example.com/.well-known/oauth-authorization-server");
    /// assert_eq!(d.request().method(), "GET");
    /// assert_eq!(d.request().headers()["accept"], "application/json");
    /// # Ok::<_, client_credentials::DiscoveryError>(())
    /// ```
    ///
    /// # Errors
    /// [`DiscoveryError::InvalidIssuer`] or [`DiscoveryError::InsecureIssuer`]: `issuer` is
    /// not an absolute `https` URL (`http` on a loopback host) without user info, query or
    /// fragment.
    pub fn new(issuer: &str) -> Result<Self, DiscoveryError> {
        let invalid = || DiscoveryError::InvalidIssuer(bounded(issuer, MAX_QUOTED));
        let uri = validate_token_url(Some(issuer)).map_err(|e| match e {
            ConfigError::InsecureUrl(_) => {
                DiscoveryError::InsecureIssuer(bounded(issuer, MAX_QUOTED))
            }
            _ => invalid(),
        })?;
        if uri.query().is_some() || issuer.contains('?') {
            return Err(invalid());
        }
        let (scheme, authority) = match (uri.scheme_str(), uri.authority()) {
            (Some(scheme), Some(authority)) => (scheme, authority.as_str()),
            _ => return Err(invalid()),
        };
        let path = uri.path().trim_end_matches('/');
        let oauth = format!("{scheme}://{authority}{OAUTH_SUFFIX}{path}");
        let openid = format!("{scheme}://{authority}{path}{OPENID_SUFFIX}");
        Ok(Self {
            issuer: issuer.to_owned(),
            oauth: oauth.parse().map_err(|_| invalid())?,
            openid: openid.parse().map_err(|_| invalid())?,
            document: WellKnown::OAuthAuthorizationServer,
            max_body: DEFAULT_MAX_BODY,
        })
    }

    /// Caps the metadata body at `bytes` (default [`DEFAULT_MAX_BODY`]); a transport reads
    /// at most this much ([`Discovery::max_body`]).
    #[must_use]
    pub fn with_max_body(mut self, bytes: usize) -> Self {
        self.max_body = bytes;
        self
    }

    /// The issuer, as asked for.
    #[must_use]
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The document asked for now.
    #[must_use]
    pub fn document(&self) -> WellKnown {
        self.document
    }

    /// The URL of the document asked for now.
    #[must_use]
    pub fn url(&self) -> &Uri {
        match self.document {
            WellKnown::OAuthAuthorizationServer => &self.oauth,
            WellKnown::OpenIdConfiguration => &self.openid,
        }
    }

    /// The cap on the body, in bytes.
    #[must_use]
    pub fn max_body(&self) -> usize {
        self.max_body
    }

    /// The request to send now: a `GET` of [`Discovery::url`] with
    /// `Accept: application/json`, no body and no credentials.
    #[must_use]
    pub fn request(&self) -> HttpRequest {
        build_get(self.url().clone())
    }

    /// Reads the answer to [`Discovery::request`]. `now` is wall-clock time, for a
    /// `Retry-After` date.
    ///
    /// # Errors
    /// A [`DiscoveryError`]: the endpoint failed, neither document exists, or the document
    /// is not acceptable metadata for this issuer.
    pub fn handle_response(
        self,
        now: SystemTime,
        status: StatusCode,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<DiscoveryStep, DiscoveryError> {
        if body.len() > self.max_body {
            return Err(TokenError::TooLarge {
                status: Some(status),
                limit: self.max_body,
            }
            .into());
        }
        if status == StatusCode::NOT_FOUND {
            return match self.document {
                WellKnown::OAuthAuthorizationServer => Ok(DiscoveryStep::Next(Box::new(Self {
                    document: WellKnown::OpenIdConfiguration,
                    ..self
                }))),
                WellKnown::OpenIdConfiguration => Err(DiscoveryError::NotFound {
                    oauth: self.oauth.to_string(),
                    openid: self.openid.to_string(),
                }),
            };
        }
        if !status.is_success() {
            return Err(self.endpoint_error(now, status, headers, body));
        }
        let Ok(Value::Object(members)) = serde_json::from_slice::<Value>(body) else {
            return Err(TokenError::InvalidResponse {
                status,
                content_type: content_type(headers),
                problem: ResponseProblem::Unparseable,
                excerpt: None,
            }
            .into());
        };
        self.metadata(members)
            .map(|metadata| DiscoveryStep::Found(Box::new(metadata)))
    }

    /// [`Discovery::handle_response`] for a transport's [`Exchange`]: a reply, or the
    /// failure that ended the request without one.
    ///
    /// # Errors
    /// As [`Discovery::handle_response`]; a failure is [`DiscoveryError::Endpoint`].
    pub fn handle_exchange(
        self,
        now: SystemTime,
        exchange: Exchange,
    ) -> Result<DiscoveryStep, DiscoveryError> {
        match exchange {
            Ok(reply) => self.handle_response(now, reply.status, &reply.headers, &reply.body),
            Err(failure) => Err(Self::handle_failure(failure)),
        }
    }

    /// The error for a request that ended without a response (a transport error, a body
    /// over the cap).
    #[must_use]
    pub fn handle_failure(failure: Failure) -> DiscoveryError {
        crate::driver::failure_error(failure).into()
    }

    /// A non-success answer other than 404, classified as the token endpoint's would be.
    fn endpoint_error(
        &self,
        now: SystemTime,
        status: StatusCode,
        headers: &HeaderMap,
        body: &[u8],
    ) -> DiscoveryError {
        // The classification reads a configuration (the secret to scrub, here none): one for
        // this URL, which was checked as a token URL already.
        let probe = Config::builder()
            .token_url(self.url().to_string())
            .client_id("discovery")
            .max_body(self.max_body.max(1))
            .build();
        let error = match probe {
            Ok(config) => Context::new(&config, &[], now, status, headers, body).error(),
            Err(_) => TokenError::InvalidResponse {
                status,
                content_type: content_type(headers),
                problem: ResponseProblem::UnexpectedStatus,
                excerpt: None,
            },
        };
        error.into()
    }

    /// The checked metadata of a document's members.
    fn metadata(self, mut m: Map<String, Value>) -> Result<ServerMetadata, DiscoveryError> {
        let issuer = match take_string(&mut m, "issuer")? {
            Some(issuer) => issuer,
            None => return Err(DiscoveryError::MissingMember("issuer")),
        };
        if issuer != self.issuer {
            return Err(DiscoveryError::IssuerMismatch {
                expected: self.issuer,
                found: bounded(&issuer, MAX_QUOTED),
            });
        }
        let token_endpoint = endpoint(&mut m, "token_endpoint")?
            .ok_or(DiscoveryError::MissingMember("token_endpoint"))?;
        let revocation_endpoint = endpoint(&mut m, "revocation_endpoint")?;
        let introspection_endpoint = endpoint(&mut m, "introspection_endpoint")?;
        let jwks_uri = endpoint(&mut m, "jwks_uri")?;
        let mut list = |name: &str| take_list(&mut m, name);
        let token_endpoint_auth_methods_supported = list("token_endpoint_auth_methods_supported")?;
        let token_endpoint_auth_signing_alg_values_supported =
            list("token_endpoint_auth_signing_alg_values_supported")?;
        let grant_types_supported = list("grant_types_supported")?;
        let scopes_supported = list("scopes_supported")?;
        let dpop_signing_alg_values_supported = list("dpop_signing_alg_values_supported")?;
        let mtls_endpoint_aliases = aliases(&mut m)?;
        Ok(ServerMetadata {
            document: self.document,
            issuer,
            token_endpoint,
            revocation_endpoint,
            introspection_endpoint,
            jwks_uri,
            token_endpoint_auth_methods_supported,
            token_endpoint_auth_signing_alg_values_supported,
            grant_types_supported,
            scopes_supported,
            mtls_endpoint_aliases,
            dpop_signing_alg_values_supported,
            extra: m,
        })
    }
}

/// A string member: `None` when absent or `null`.
fn take_string(m: &mut Map<String, Value>, name: &str) -> Result<Option<String>, DiscoveryError> {
    match m.remove(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(DiscoveryError::InvalidMember(name.to_owned())),
    }
}

/// An array of strings: `None` when absent or `null`.
fn take_list(
    m: &mut Map<String, Value>,
    name: &str,
) -> Result<Option<Vec<String>>, DiscoveryError> {
    match m.remove(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => items
            .into_iter()
            .map(|item| match item {
                Value::String(s) => Ok(s),
                _ => Err(DiscoveryError::InvalidMember(name.to_owned())),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(_) => Err(DiscoveryError::InvalidMember(name.to_owned())),
    }
}

/// An endpoint member, checked as a token URL: `None` when absent or `null`.
fn endpoint(m: &mut Map<String, Value>, name: &str) -> Result<Option<Uri>, DiscoveryError> {
    take_string(m, name)?
        .map(|url| check_endpoint(name, &url))
        .transpose()
}

/// `url` checked as a token URL; `member` names it in the error.
fn check_endpoint(member: &str, url: &str) -> Result<Uri, DiscoveryError> {
    validate_token_url(Some(url)).map_err(|e| {
        let (member, url) = (bounded(member, MAX_QUOTED), bounded(url, MAX_QUOTED));
        match e {
            ConfigError::InsecureUrl(_) => DiscoveryError::InsecureEndpoint { member, url },
            _ => DiscoveryError::InvalidEndpoint { member, url },
        }
    })
}

/// `mtls_endpoint_aliases`: an object of endpoint URLs, each checked.
fn aliases(m: &mut Map<String, Value>) -> Result<MtlsEndpointAliases, DiscoveryError> {
    const NAME: &str = "mtls_endpoint_aliases";
    let members = match m.remove(NAME) {
        None | Some(Value::Null) => return Ok(MtlsEndpointAliases::default()),
        Some(Value::Object(members)) => members,
        Some(_) => return Err(DiscoveryError::InvalidMember(NAME.to_owned())),
    };
    let mut aliases = BTreeMap::new();
    for (key, value) in members {
        let member = format!("{NAME}.{key}");
        let Value::String(url) = value else {
            return Err(DiscoveryError::InvalidMember(bounded(&member, MAX_QUOTED)));
        };
        aliases.insert(key, check_endpoint(&member, &url)?);
    }
    Ok(MtlsEndpointAliases(aliases))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ISSUER: &str = "https://as.example.com/tenant";

    /// Errors hold a `TokenError`, which has no `PartialEq`: compare their `Debug`.
    macro_rules! assert_error {
        ($got:expr, $want:expr $(,)?) => {
            assert_eq!(format!("{:?}", $got), format!("{:?}", $want))
        };
    }

    fn ok(discovery: Discovery, body: &Value) -> Result<ServerMetadata, DiscoveryError> {
        let body = serde_json::to_vec(body).unwrap();
        match discovery.handle_response(
            SystemTime::UNIX_EPOCH,
            StatusCode::OK,
            &HeaderMap::new(),
            &body,
        )? {
            DiscoveryStep::Found(metadata) => Ok(*metadata),
            DiscoveryStep::Next(_) => panic!("a 200 is never a next step"),
        }
    }

    fn answer(issuer: &str, body: &Value) -> Result<ServerMetadata, DiscoveryError> {
        ok(Discovery::new(issuer).unwrap(), body)
    }

    fn minimal(issuer: &str) -> Value {
        json!({"issuer": issuer, "token_endpoint": format!("{issuer}/token")})
    }

    fn urls(issuer: &str) -> (String, String) {
        let d = Discovery::new(issuer).unwrap();
        let first = d.url().to_string();
        let next = match d.handle_response(
            SystemTime::UNIX_EPOCH,
            StatusCode::NOT_FOUND,
            &HeaderMap::new(),
            b"",
        ) {
            Ok(DiscoveryStep::Next(next)) => next,
            other => panic!("{other:?}"),
        };
        assert_eq!(next.document(), WellKnown::OpenIdConfiguration);
        (first, next.url().to_string())
    }

    #[test]
    fn well_known_urls_with_and_without_a_path() {
        assert_eq!(
            urls("https://as.example.com"),
            (
                "https://as.example.com/.well-known/oauth-authorization-server".into(),
                "https://as.example.com/.well-known/openid-configuration".into()
            )
        );
        assert_eq!(
            urls("https://as.example.com/"),
            (
                "https://as.example.com/.well-known/oauth-authorization-server".into(),
                "https://as.example.com/.well-known/openid-configuration".into()
            )
        );
        assert_eq!(
            urls("https://as.example.com/tenant"),
            (
                "https://as.example.com/.well-known/oauth-authorization-server/tenant".into(),
                "https://as.example.com/tenant/.well-known/openid-configuration".into()
            )
        );
        // RFC 8414 §3.1: a terminating `/` is removed before inserting; OIDC §4 likewise
        // before appending.
        assert_eq!(
            urls("https://as.example.com/realms/a/"),
            (
                "https://as.example.com/.well-known/oauth-authorization-server/realms/a".into(),
                "https://as.example.com/realms/a/.well-known/openid-configuration".into()
            )
        );
        assert_eq!(
            urls("http://127.0.0.1:8080/x").0,
            "http://127.0.0.1:8080/.well-known/oauth-authorization-server/x"
        );
    }

    #[test]
    fn the_request_is_a_plain_get() {
        let request = Discovery::new(ISSUER).unwrap().request();
        assert_eq!(request.method(), http::Method::GET);
        assert_eq!(request.headers()["accept"], "application/json");
        assert!(request.headers().get("authorization").is_none());
        assert!(request.body().is_empty());
    }

    #[test]
    fn issuers_are_checked_before_anything_is_sent() {
        for bad in [
            "as.example.com",
            "/tenant",
            "ftp://as.example.com",
            "https://as.example.com/?tenant=a",
            "https://as.example.com/#a",
            "https://user:pw@as.example.com",
            "",
        ] {
            assert!(
                matches!(Discovery::new(bad), Err(DiscoveryError::InvalidIssuer(_))),
                "{bad}"
            );
        }
        for insecure in ["http://as.example.com", "http://10.0.0.1/x"] {
            assert!(
                matches!(
                    Discovery::new(insecure),
                    Err(DiscoveryError::InsecureIssuer(_))
                ),
                "{insecure}"
            );
        }
        assert!(Discovery::new("http://localhost:9/").is_ok());
        assert!(Discovery::new("http://[::1]:9").is_ok());
    }

    #[test]
    fn every_member_is_read_and_the_rest_kept() {
        let m = answer(
            ISSUER,
            &json!({
                "issuer": ISSUER,
                "token_endpoint": "https://as.example.com/tenant/token",
                "revocation_endpoint": "https://as.example.com/tenant/revoke",
                "introspection_endpoint": "https://as.example.com/tenant/introspect",
                "jwks_uri": "https://as.example.com/tenant/jwks",
                "token_endpoint_auth_methods_supported": ["private_key_jwt", "client_secret_post"],
                "token_endpoint_auth_signing_alg_values_supported": ["RS256", "ES256"],
                "grant_types_supported": ["client_credentials"],
                "scopes_supported": ["a", "b"],
                "mtls_endpoint_aliases": {
                    "token_endpoint": "https://mtls.as.example.com/token",
                    "revocation_endpoint": "https://mtls.as.example.com/revoke"
                },
                "dpop_signing_alg_values_supported": ["ES256"],
                "response_types_supported": [],
                "x-vendor": {"nested": true},
                "introspection_endpoint_auth_methods_supported": null
            }),
        )
        .unwrap();
        assert_eq!(m.document, WellKnown::OAuthAuthorizationServer);
        assert_eq!(m.token_endpoint, "https://as.example.com/tenant/token");
        assert_eq!(
            m.revocation_endpoint.as_ref().unwrap(),
            "https://as.example.com/tenant/revoke"
        );
        assert_eq!(
            m.introspection_endpoint.as_ref().unwrap(),
            "https://as.example.com/tenant/introspect"
        );
        assert_eq!(
            m.jwks_uri.as_ref().unwrap(),
            "https://as.example.com/tenant/jwks"
        );
        assert_eq!(m.auth_methods(), ["private_key_jwt", "client_secret_post"]);
        assert_eq!(
            m.token_endpoint_auth_signing_alg_values_supported
                .as_deref(),
            Some(&["RS256".to_owned(), "ES256".to_owned()][..])
        );
        assert!(m.supports_grant_type("client_credentials"));
        assert!(!m.supports_grant_type("implicit"));
        assert_eq!(m.scopes_supported.as_ref().unwrap().len(), 2);
        assert_eq!(
            m.mtls_endpoint_aliases.token_endpoint().unwrap(),
            "https://mtls.as.example.com/token"
        );
        assert_eq!(
            m.mtls_endpoint_aliases.revocation_endpoint().unwrap(),
            "https://mtls.as.example.com/revoke"
        );
        assert_eq!(m.mtls_endpoint_aliases.introspection_endpoint(), None);
        assert_eq!(
            m.dpop_signing_alg_values_supported.as_deref(),
            Some(&["ES256".to_owned()][..])
        );
        assert_eq!(m.extra["x-vendor"], json!({"nested": true}));
        assert_eq!(m.extra["response_types_supported"], json!([]));
        assert!(
            m.extra
                .contains_key("introspection_endpoint_auth_methods_supported")
        );
        assert!(!m.extra.contains_key("issuer"));
        assert!(!m.extra.contains_key("token_endpoint"));
    }

    #[test]
    fn absent_lists_have_the_rfc_defaults() {
        let m = answer(ISSUER, &minimal(ISSUER)).unwrap();
        assert_eq!(m.token_endpoint_auth_methods_supported, None);
        assert_eq!(m.auth_methods(), ["client_secret_basic"]);
        assert!(m.supports_grant_type("authorization_code"));
        assert!(!m.supports_grant_type("client_credentials"));
        assert!(m.mtls_endpoint_aliases.is_empty());
        assert!(m.extra.is_empty());
    }

    #[test]
    fn the_issuer_must_match_exactly() {
        for other in [
            "https://as.example.com/tenant/",
            "https://as.example.com/other",
            "https://AS.example.com/tenant",
            "https://evil.example/tenant",
        ] {
            let mut body = minimal(ISSUER);
            body["issuer"] = json!(other);
            assert_error!(
                answer(ISSUER, &body).unwrap_err(),
                DiscoveryError::IssuerMismatch {
                    expected: ISSUER.into(),
                    found: other.into()
                }
            );
        }
        let huge = format!("https://as.example.com/{}", "x".repeat(10_000));
        let mut body = minimal(ISSUER);
        body["issuer"] = json!(huge);
        let DiscoveryError::IssuerMismatch { found, .. } = answer(ISSUER, &body).unwrap_err()
        else {
            panic!()
        };
        assert!(found.chars().count() <= MAX_QUOTED + 1);
    }

    #[test]
    fn required_members() {
        assert_error!(
            answer(
                ISSUER,
                &json!({"token_endpoint": "https://as.example.com/t"})
            )
            .unwrap_err(),
            DiscoveryError::MissingMember("issuer")
        );
        assert_error!(
            answer(ISSUER, &json!({"issuer": ISSUER})).unwrap_err(),
            DiscoveryError::MissingMember("token_endpoint")
        );
        assert_error!(
            answer(ISSUER, &json!({"issuer": ISSUER, "token_endpoint": null})).unwrap_err(),
            DiscoveryError::MissingMember("token_endpoint")
        );
        assert_error!(
            answer(
                ISSUER,
                &json!({"issuer": 7, "token_endpoint": "https://a.b/t"})
            )
            .unwrap_err(),
            DiscoveryError::InvalidMember("issuer".into())
        );
    }

    #[test]
    fn endpoints_must_be_https_except_on_loopback() {
        let with = |member: &str, url: &str| {
            let mut body = minimal(ISSUER);
            body[member] = json!(url);
            answer(ISSUER, &body)
        };
        assert_error!(
            with("token_endpoint", "http://as.example.com/token").unwrap_err(),
            DiscoveryError::InsecureEndpoint {
                member: "token_endpoint".into(),
                url: "http://as.example.com/token".into()
            }
        );
        assert!(matches!(
            with("revocation_endpoint", "http://10.1.1.1/revoke"),
            Err(DiscoveryError::InsecureEndpoint { .. })
        ));
        assert!(matches!(
            with("introspection_endpoint", "/relative"),
            Err(DiscoveryError::InvalidEndpoint { .. })
        ));
        assert!(matches!(
            with("jwks_uri", "https://u:p@as.example.com/jwks"),
            Err(DiscoveryError::InvalidEndpoint { .. })
        ));
        assert!(with("token_endpoint", "http://127.0.0.1:8080/token").is_ok());
        let mut body = minimal(ISSUER);
        body["mtls_endpoint_aliases"] = json!({"token_endpoint": "http://mtls.example.com/t"});
        assert_error!(
            answer(ISSUER, &body).unwrap_err(),
            DiscoveryError::InsecureEndpoint {
                member: "mtls_endpoint_aliases.token_endpoint".into(),
                url: "http://mtls.example.com/t".into()
            }
        );
        body["mtls_endpoint_aliases"] = json!({"token_endpoint": 1});
        assert!(matches!(
            answer(ISSUER, &body),
            Err(DiscoveryError::InvalidMember(m)) if m == "mtls_endpoint_aliases.token_endpoint"
        ));
        body["mtls_endpoint_aliases"] = json!(["x"]);
        assert!(matches!(
            answer(ISSUER, &body),
            Err(DiscoveryError::InvalidMember(_))
        ));
    }

    #[test]
    fn lists_must_be_arrays_of_strings() {
        for (member, value) in [
            ("scopes_supported", json!("a b")),
            ("grant_types_supported", json!([1])),
            ("token_endpoint_auth_methods_supported", json!({"a": 1})),
            ("dpop_signing_alg_values_supported", json!(true)),
        ] {
            let mut body = minimal(ISSUER);
            body[member] = value;
            assert_error!(
                answer(ISSUER, &body).unwrap_err(),
                DiscoveryError::InvalidMember(member.into())
            );
        }
    }

    fn respond(status: u16, body: &[u8]) -> Result<DiscoveryStep, DiscoveryError> {
        Discovery::new(ISSUER).unwrap().handle_response(
            SystemTime::UNIX_EPOCH,
            StatusCode::from_u16(status).unwrap(),
            &HeaderMap::new(),
            body,
        )
    }

    #[test]
    fn malformed_and_huge_bodies_are_typed_errors() {
        for body in [
            &b""[..],
            b"<html>metadata</html>",
            b"[1,2]",
            b"\"issuer\"",
            b"{\"issuer\":",
            b"\xff\xfe{}",
        ] {
            let error = respond(200, body).unwrap_err();
            assert!(
                matches!(
                    error.token_error(),
                    Some(TokenError::InvalidResponse {
                        problem: ResponseProblem::Unparseable,
                        ..
                    })
                ),
                "{body:?}: {error:?}"
            );
            assert!(!error.is_retryable());
            assert!(
                error.to_string().starts_with("invalid metadata response"),
                "{error}"
            );
        }
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(respond(200, deep.as_bytes()).is_err());
        let big = vec![b' '; 2048];
        let capped = Discovery::new(ISSUER).unwrap().with_max_body(1024);
        assert_eq!(capped.max_body(), 1024);
        let error = capped
            .handle_response(
                SystemTime::UNIX_EPOCH,
                StatusCode::OK,
                &HeaderMap::new(),
                &big,
            )
            .unwrap_err();
        assert!(matches!(
            error.token_error(),
            Some(TokenError::TooLarge { limit: 1024, .. })
        ));
        assert_eq!(
            error.to_string(),
            "metadata response body exceeds the 1024-byte cap"
        );
    }

    #[test]
    fn statuses() {
        let server = respond(503, b"down").unwrap_err();
        assert!(server.is_retryable(), "{server:?}");
        assert!(
            server
                .to_string()
                .starts_with("metadata endpoint failed (HTTP 503)")
        );
        let throttled = respond(429, b"").unwrap_err();
        assert!(throttled.token_error().unwrap().is_rate_limited());
        let redirect = respond(302, b"").unwrap_err();
        assert!(matches!(
            redirect.token_error(),
            Some(TokenError::InvalidResponse {
                problem: ResponseProblem::UnexpectedStatus,
                ..
            })
        ));
        assert!(!respond(403, b"forbidden").unwrap_err().is_retryable());
        // 404 twice: neither document exists.
        let Ok(DiscoveryStep::Next(next)) = respond(404, b"{}") else {
            panic!()
        };
        let error = next
            .handle_response(
                SystemTime::UNIX_EPOCH,
                StatusCode::NOT_FOUND,
                &HeaderMap::new(),
                b"",
            )
            .unwrap_err();
        assert!(matches!(error, DiscoveryError::NotFound { .. }));
        assert!(
            error
                .to_string()
                .contains("/tenant/.well-known/openid-configuration")
        );
        let failure = Discovery::handle_failure(Failure::Transport(
            crate::TransportError::from_kind(crate::TransportErrorKind::Timeout),
        ));
        assert!(failure.is_retryable());
        assert!(failure.token_error().unwrap().is_timeout());
    }

    #[test]
    fn the_openid_document_is_checked_the_same() {
        let Ok(DiscoveryStep::Next(next)) = respond(404, b"") else {
            panic!()
        };
        let m = ok((*next).clone(), &minimal(ISSUER)).unwrap();
        assert_eq!(m.document, WellKnown::OpenIdConfiguration);
        let mut foreign = minimal(ISSUER);
        foreign["issuer"] = json!("https://as.example.com/other");
        assert!(matches!(
            ok(*next, &foreign),
            Err(DiscoveryError::IssuerMismatch { .. })
        ));
    }

    fn config(
        methods: Option<Value>,
        builder: impl FnOnce(ConfigBuilder) -> ConfigBuilder,
    ) -> Config {
        let mut body = minimal(ISSUER);
        if let Some(methods) = methods {
            body["token_endpoint_auth_methods_supported"] = methods;
        }
        body["revocation_endpoint"] = json!("https://as.example.com/tenant/revoke");
        let metadata = answer(ISSUER, &body).unwrap();
        builder(ConfigBuilder::from_metadata(&metadata).client_id("c"))
            .build()
            .unwrap()
    }

    #[test]
    fn the_auth_method_is_chosen_unless_set() {
        let secret = |b: ConfigBuilder| b.client_secret("s");
        let pick = |methods: Option<Value>| config(methods, secret).auth_method().clone();
        assert_eq!(pick(None), AuthMethod::ClientSecretBasic);
        assert_eq!(
            pick(Some(json!(["client_secret_post", "client_secret_basic"]))),
            AuthMethod::ClientSecretBasic
        );
        assert_eq!(
            pick(Some(json!(["private_key_jwt", "client_secret_post"]))),
            AuthMethod::client_secret_post()
        );
        assert_eq!(
            pick(Some(json!(["private_key_jwt"]))),
            AuthMethod::ClientSecretBasic
        );
        // A server that takes a secret only as an HS256 key gets client_secret_jwt, if the
        // secret is long enough to be one; a short secret stays Basic (the server refuses).
        let long = |b: ConfigBuilder| b.client_secret("a-client-secret-of-at-least-32-bytes");
        let only_jwt = Some(json!(["private_key_jwt", "client_secret_jwt"]));
        let expected = if cfg!(feature = "jwt") {
            AuthMethod::ClientSecretJwt
        } else {
            AuthMethod::ClientSecretBasic
        };
        assert_eq!(config(only_jwt.clone(), long).auth_method(), &expected);
        assert_eq!(
            config(only_jwt.clone(), secret).auth_method(),
            &AuthMethod::ClientSecretBasic
        );
        assert_eq!(
            config(
                Some(json!(["client_secret_basic", "client_secret_jwt"])),
                long
            )
            .auth_method(),
            &AuthMethod::ClientSecretBasic
        );
        // An assertion source (or a private key) is private_key_jwt, whatever is listed.
        let federated = config(only_jwt, |b| {
            b.client_assertion(crate::AssertionSource::file("/var/run/token"))
        });
        assert_eq!(federated.auth_method(), &AuthMethod::PrivateKeyJwt);
        // The user's choice wins, set before or after.
        let chosen = config(Some(json!(["client_secret_post"])), |b| {
            b.auth_method(AuthMethod::ClientSecretBasicRaw)
                .client_secret("s")
        });
        assert_eq!(chosen.auth_method(), &AuthMethod::ClientSecretBasicRaw);
        let chosen = config(Some(json!(["client_secret_basic"])), |b| {
            b.client_secret("s")
                .auth_method(AuthMethod::client_secret_post())
        });
        assert_eq!(chosen.auth_method(), &AuthMethod::client_secret_post());
        // No secret: a public client, as with any builder.
        let public = config(Some(json!(["client_secret_post", "none"])), |b| b);
        assert_eq!(public.auth_method(), &AuthMethod::None);
        // The endpoints are taken; a later setter replaces them.
        let c = config(None, secret);
        assert_eq!(c.token_url(), "https://as.example.com/tenant/token");
        assert_eq!(
            c.revocation_url().unwrap(),
            "https://as.example.com/tenant/revoke"
        );
        assert_eq!(c.introspection_url(), None);
        let c = config(None, |b| {
            secret(b).introspection_url("https://as.example.com/tenant/i")
        });
        assert_eq!(
            c.introspection_url().unwrap(),
            "https://as.example.com/tenant/i"
        );
    }

    fn identity() -> crate::ClientIdentity {
        crate::ClientIdentity::from_pem(
            include_str!("../tests/keys/mtls-client.pem"),
            include_str!("../tests/keys/mtls-client.key"),
        )
        .unwrap()
    }

    fn mtls_metadata(methods: Value) -> ServerMetadata {
        answer(
            ISSUER,
            &json!({
                "issuer": ISSUER,
                "token_endpoint": format!("{ISSUER}/token"),
                "revocation_endpoint": format!("{ISSUER}/revoke"),
                "introspection_endpoint": format!("{ISSUER}/introspect"),
                "token_endpoint_auth_methods_supported": methods,
                "mtls_endpoint_aliases": {
                    "token_endpoint": "https://mtls.as.example.com/tenant/token",
                    "introspection_endpoint": "https://mtls.as.example.com/tenant/introspect"
                }
            }),
        )
        .unwrap()
    }

    #[test]
    fn a_client_with_a_certificate_uses_the_mtls_aliases() {
        let m = mtls_metadata(json!(["client_secret_basic", "tls_client_auth"]));
        let c = ConfigBuilder::from_metadata(&m)
            .client_id("c")
            .client_certificate(identity())
            .build()
            .unwrap();
        assert_eq!(c.token_url(), "https://mtls.as.example.com/tenant/token");
        assert_eq!(
            c.introspection_url().unwrap(),
            "https://mtls.as.example.com/tenant/introspect"
        );
        // No alias for revocation: the plain endpoint.
        assert_eq!(
            c.revocation_url().unwrap(),
            "https://as.example.com/tenant/revoke"
        );
        assert_eq!(c.auth_method(), &AuthMethod::TlsClientAuth);

        // Without a certificate, the aliases are not used.
        let plain = ConfigBuilder::from_metadata(&m)
            .client_id("c")
            .client_secret("s")
            .build()
            .unwrap();
        assert_eq!(plain.token_url(), "https://as.example.com/tenant/token");
        assert_eq!(plain.auth_method(), &AuthMethod::ClientSecretBasic);

        // A secret with a certificate: the secret authenticates, the certificate binds
        // tokens, and the TLS endpoint is the one to reach.
        let bound = ConfigBuilder::from_metadata(&m)
            .client_id("c")
            .client_secret("s")
            .client_certificate(identity())
            .build()
            .unwrap();
        assert_eq!(
            bound.token_url(),
            "https://mtls.as.example.com/tenant/token"
        );
        assert_eq!(bound.auth_method(), &AuthMethod::ClientSecretBasic);

        // An endpoint set after discovery is kept.
        let set = ConfigBuilder::from_metadata(&m)
            .client_id("c")
            .client_certificate(identity())
            .token_url("https://elsewhere.example.com/token")
            .build()
            .unwrap();
        assert_eq!(set.token_url(), "https://elsewhere.example.com/token");
    }

    #[test]
    fn the_mtls_method_follows_the_metadata() {
        let method = |methods: Value| {
            let m = mtls_metadata(methods);
            ConfigBuilder::from_metadata(&m)
                .client_id("c")
                .client_certificate(identity())
                .build()
                .unwrap()
                .auth_method()
                .clone()
        };
        assert_eq!(
            method(json!(["self_signed_tls_client_auth"])),
            AuthMethod::SelfSignedTlsClientAuth
        );
        assert_eq!(
            method(json!(["self_signed_tls_client_auth", "tls_client_auth"])),
            AuthMethod::TlsClientAuth
        );
        assert_eq!(method(Value::Null), AuthMethod::TlsClientAuth);
        // The user's choice wins.
        let m = mtls_metadata(json!(["tls_client_auth"]));
        let chosen = ConfigBuilder::from_metadata(&m)
            .client_id("c")
            .auth_method(AuthMethod::SelfSignedTlsClientAuth)
            .client_certificate(identity())
            .build()
            .unwrap();
        assert_eq!(chosen.auth_method(), &AuthMethod::SelfSignedTlsClientAuth);
    }
}
