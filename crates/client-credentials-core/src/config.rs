//! Client configuration: built once with [`ConfigBuilder`], validated once, shared after.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::Uri;

use crate::secret::ClientSecret;

/// Parameters that only the library sets. Extra parameters may not use these names.
pub const RESERVED_PARAMETERS: &[&str] = &[
    "grant_type",
    "scope",
    "client_id",
    "client_secret",
    "client_assertion",
    "client_assertion_type",
    "resource",
    "audience",
];

/// The default cap on a token response body: 1 MiB. Real token responses are a few KiB even
/// with large JWTs; anything bigger is a misbehaving server.
pub const DEFAULT_MAX_BODY: usize = 1024 * 1024;

/// How the client authenticates to the token endpoint (RFC 6749 §2.3).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AuthMethod {
    /// `client_secret_basic`: HTTP Basic with the client id and secret each
    /// `application/x-www-form-urlencoded` before base64, as RFC 6749 §2.3.1 requires.
    /// The default, and what certified servers such as `oidc-provider` expect.
    ClientSecretBasic,
    /// HTTP Basic with the raw client id and secret, not form-urlencoded first. Only for
    /// servers that compare unencoded values; with those, a secret holding `+`, `%`, `:` or a
    /// space fails under [`AuthMethod::ClientSecretBasic`]. The client id may not hold `:`.
    ClientSecretBasicRaw,
    /// `client_secret_post`: the credentials as body parameters.
    ClientSecretPost {
        /// Name of the client id parameter (default `client_id`).
        client_id_param: String,
        /// Name of the client secret parameter (default `client_secret`).
        client_secret_param: String,
    },
    /// `none`: a public client; only `client_id` is sent, in the body.
    None,
    /// `private_key_jwt` (RFC 7523 §2.2, OpenID Connect Core §9): a JWT signed with the
    /// client's private key, [`ConfigBuilder::private_key`] (feature `jwt`). The client id
    /// is in the body too, and no secret is sent.
    PrivateKeyJwt,
    /// `client_secret_jwt` (OpenID Connect Core §9): a JWT signed with HS256, keyed by the
    /// client secret, which itself is never sent (feature `jwt`). The secret must be at
    /// least 32 bytes (RFC 7518 §3.2).
    ClientSecretJwt,
    /// `tls_client_auth` (RFC 8705 §2.1): the client authenticates with its TLS client
    /// certificate, issued by a CA the server trusts and matched against the subject or SAN
    /// the client registered. Needs [`ConfigBuilder::client_certificate`]; the client id is
    /// sent in the body, no secret and no `Authorization` header.
    TlsClientAuth,
    /// `self_signed_tls_client_auth` (RFC 8705 §2.2): as [`AuthMethod::TlsClientAuth`],
    /// with a self-signed certificate that the client registered (its `jwks` or `jwks_uri`).
    SelfSignedTlsClientAuth,
}

impl AuthMethod {
    /// `client_secret_post` with the standard parameter names.
    #[must_use]
    pub fn client_secret_post() -> Self {
        Self::ClientSecretPost {
            client_id_param: "client_id".to_owned(),
            client_secret_param: "client_secret".to_owned(),
        }
    }

    /// The registered name of the method (RFC 7591 §2), `client_secret_basic` for both
    /// Basic variants.
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            Self::ClientSecretBasic | Self::ClientSecretBasicRaw => "client_secret_basic",
            Self::ClientSecretPost { .. } => "client_secret_post",
            Self::None => "none",
            Self::PrivateKeyJwt => "private_key_jwt",
            Self::ClientSecretJwt => "client_secret_jwt",
            Self::TlsClientAuth => "tls_client_auth",
            Self::SelfSignedTlsClientAuth => "self_signed_tls_client_auth",
        }
    }

    /// Whether the method authenticates with the TLS client certificate (RFC 8705 §2):
    /// `tls_client_auth` or `self_signed_tls_client_auth`.
    #[must_use]
    pub fn is_mutual_tls(&self) -> bool {
        matches!(self, Self::TlsClientAuth | Self::SelfSignedTlsClientAuth)
    }

    fn needs_secret(&self) -> bool {
        !matches!(self, Self::None | Self::PrivateKeyJwt) && !self.is_mutual_tls()
    }
}

/// The encoding of the request body.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BodyFormat {
    /// `application/x-www-form-urlencoded`, as RFC 6749 §4.4.2 requires. The default.
    #[default]
    Form,
    /// `application/json`, for servers that take only JSON (some Auth0 set-ups do).
    Json,
}

/// What to do when a token response has no `expires_in` (or `null`).
///
/// RFC 6749 §5.1 makes `expires_in` only RECOMMENDED, so a missing lifetime is legal; it is
/// never read as 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MissingLifetime {
    /// Treat the token as living this long. The default is five minutes: long enough that a
    /// busy service fetches at most a few tokens an hour, short enough that a token which in
    /// fact lives shorter is not served for long after it died (a 401 from the resource server
    /// invalidates it sooner anyway).
    Assume(Duration),
    /// Keep the token until a resource server rejects it (see `invalidate`).
    NeverExpires,
    /// Refuse the response as invalid.
    Reject,
}

impl Default for MissingLifetime {
    fn default() -> Self {
        Self::Assume(Duration::from_secs(300))
    }
}

/// A configuration value that was refused, with what was wrong.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The token endpoint is not an absolute URL.
    #[error("token endpoint is not a valid absolute URL: {0}")]
    InvalidUrl(String),
    /// The token endpoint uses `http://` and its host is not loopback.
    #[error("token endpoint must use https (http is allowed only for loopback hosts): {0}")]
    InsecureUrl(String),
    /// The token endpoint carries user info (`user:pass@host`) or a fragment.
    #[error("token endpoint must not contain user info or a fragment")]
    UrlCredentials,
    /// No token endpoint was set.
    #[error("no token endpoint was set")]
    MissingTokenUrl,
    /// An operation needs an endpoint that was not configured (`revocation`,
    /// `introspection`).
    #[error("no {0} endpoint was configured")]
    MissingEndpoint(&'static str),
    /// The client id is empty or holds control characters.
    #[error("client id is empty or contains control characters")]
    InvalidClientId,
    /// The auth method needs a client secret and none was set.
    #[error("auth method {0} needs a client secret")]
    MissingSecret(&'static str),
    /// The raw Basic variant cannot carry a client id that holds `:` (RFC 7617).
    #[error("raw client_secret_basic cannot carry a client id containing ':'")]
    ColonInClientId,
    /// A parameter name for `client_secret_post` is empty, reserved or used twice.
    #[error("client_secret_post parameter name {0:?} is empty, reserved or duplicated")]
    InvalidCredentialParam(String),
    /// A scope is empty or holds characters RFC 6749 §3.3 does not allow (space, `"`, `\`,
    /// controls).
    #[error("scope {0:?} is not a valid scope token (RFC 6749 §3.3)")]
    InvalidScope(String),
    /// The scope separator is empty.
    #[error("scope separator is empty")]
    EmptyScopeSeparator,
    /// An audience or resource indicator is empty, or a resource is not an absolute URI
    /// without a fragment (RFC 8707 §2).
    #[error("{kind} {value:?} is invalid")]
    InvalidTarget {
        /// `audience` or `resource`.
        kind: &'static str,
        /// The refused value.
        value: String,
    },
    /// An extra parameter would overwrite a parameter that the library sets.
    #[error("extra parameter {0:?} is reserved")]
    ReservedParameter(String),
    /// An extra parameter has an empty name.
    #[error("extra parameter name is empty")]
    EmptyParameterName,
    /// The body cap is zero.
    #[error("response body cap must be greater than zero")]
    ZeroBodyCap,
    /// A token type to accept is empty or not a valid token.
    #[error("token type {0:?} is not a valid token type")]
    InvalidTokenType(String),
    /// A private key or certificate for signed assertions cannot be used: what is wrong,
    /// never the key.
    #[error("the assertion key cannot be used: {0}")]
    InvalidKey(String),
    /// `private_key_jwt` was chosen without a private key ([`ConfigBuilder::private_key`]).
    #[error("private_key_jwt needs a private key")]
    MissingKey,
    /// The HS256 key of `client_secret_jwt` (the client secret) is shorter than the 32
    /// bytes that RFC 7518 §3.2 requires.
    #[error("client_secret_jwt needs a client secret of at least 32 bytes (RFC 7518 §3.2)")]
    WeakSecret,
    /// A header name is not a valid HTTP header name.
    #[error("header name {0:?} is not a valid HTTP header name")]
    InvalidHeader(String),
    /// A header may not be set by the caller: the library sets it, it frames the message,
    /// or it carries credentials ([`crate::RESERVED_HEADERS`]).
    #[error("header {0:?} is reserved: the library sets it or it carries credentials")]
    ReservedHeader(String),
    /// A header value is empty where a value is needed, or holds characters other than
    /// visible ASCII and inner spaces. The value itself is never shown.
    #[error("the value of header {0:?} is empty or not visible ASCII")]
    InvalidHeaderValue(String),
    /// A timeout is zero.
    #[error("a request timeout must be greater than zero")]
    ZeroTimeout,
    /// An [`AssertionSource`](crate::AssertionSource) names nothing: an empty path, or an
    /// empty variable name or one holding `=`.
    #[error("client assertion source {0} names nothing")]
    InvalidAssertionSource(String),
    /// An assertion source was given with a private key or a client secret: a client
    /// authenticates with one credential, and the other would be silently ignored.
    #[error(
        "a client assertion source is the client's only credential: give no private key or secret with it"
    )]
    ConflictingAssertion,
    /// An assertion source was given with a method other than `private_key_jwt`, which is
    /// the method that carries it.
    #[error("a client assertion source is sent with private_key_jwt, not {0}")]
    AssertionSourceMethod(&'static str),
    /// A request that must carry a DPoP proof has no absolute URI (scheme and host): a proof
    /// names the whole target URI (RFC 9449 §4.2). Give the request its full URL. The value
    /// is the URI's path.
    #[error("a DPoP proof needs the request's absolute URI, not the path {0}")]
    DpopTarget(String),
    /// The private key of a [`ClientIdentity`](crate::ClientIdentity) is not the key of its
    /// leaf certificate (feature `jwt`, which the transports enable): every TLS handshake
    /// would fail.
    #[error("the private key does not belong to the client certificate")]
    KeyDoesNotMatchCertificate,
    /// The client certificate PEM of a [`ClientIdentity`](crate::ClientIdentity) holds no
    /// certificate (or a `CERTIFICATE` section that is not DER in base64).
    #[error("the client certificate PEM holds no certificate")]
    NoCertificate,
    /// The private key PEM of a [`ClientIdentity`](crate::ClientIdentity) holds no
    /// private key (`PRIVATE KEY`, `RSA PRIVATE KEY` or `EC PRIVATE KEY`).
    #[error("the client identity PEM holds no private key")]
    NoPrivateKey,
    /// The private key of a [`ClientIdentity`](crate::ClientIdentity) cannot be parsed:
    /// why, never the key.
    #[error("the client identity's private key cannot be used: {0}")]
    InvalidPrivateKey(String),
    /// A mutual-TLS method (`tls_client_auth`, `self_signed_tls_client_auth`) was chosen
    /// without a client certificate ([`ConfigBuilder::client_certificate`]).
    #[error("{0} needs a client certificate")]
    MissingIdentity(&'static str),
    /// A mutual-TLS method was given a client secret or a private key as well: the
    /// certificate is the client's credential, and the other would be silently ignored.
    #[error(
        "{0} authenticates with the client certificate: give no client secret or private key with it"
    )]
    ConflictingIdentity(&'static str),
}

/// A validated client configuration. Cheap to clone (shared behind an [`Arc`]).
///
/// ```
/// use client_credentials::{AuthMethod, Config};
///
/// let config = Config::builder()
///     .token_url("https://auth.example.com/oauth2/token")
///     .client_id("my-service")
///     .client_secret("s3cr3t")
///     .auth_method(AuthMethod::client_secret_post())
///     .scopes(["orders.read", "orders.write"])
///     .build()?;
/// assert_eq!(config.client_id(), "my-service");
/// # Ok::<_, client_credentials_core::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct Config {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) token_url: Uri,
    pub(crate) revocation_url: Option<Uri>,
    pub(crate) introspection_url: Option<Uri>,
    pub(crate) client_id: String,
    pub(crate) client_secret: Option<ClientSecret>,
    pub(crate) auth_method: AuthMethod,
    pub(crate) body_format: BodyFormat,
    pub(crate) scope_separator: String,
    pub(crate) defaults: crate::request::Params,
    pub(crate) max_body: usize,
    pub(crate) missing_lifetime: MissingLifetime,
    /// Lower-case token types accepted besides `bearer`.
    pub(crate) extra_token_types: Vec<String>,
    /// How `private_key_jwt` and `client_secret_jwt` make their assertions.
    #[cfg(feature = "jwt")]
    pub(crate) assertion: Option<crate::assertion::AssertionConfig>,
    /// Where `private_key_jwt` reads an assertion made elsewhere, before every request.
    pub(crate) assertion_source: Option<crate::AssertionSource>,
    /// The key that signs a DPoP proof for every token request (RFC 9449).
    #[cfg(feature = "jwt")]
    pub(crate) dpop: Option<crate::dpop::DpopKey>,
    /// The TLS client certificate and key (RFC 8705), presented by the transport.
    pub(crate) identity: Option<crate::ClientIdentity>,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = &self.inner;
        f.debug_struct("Config")
            .field("token_url", &i.token_url)
            .field("client_id", &i.client_id)
            .field("client_secret", &i.client_secret)
            .field("auth_method", &i.auth_method)
            .field("body_format", &i.body_format)
            .field("defaults", &i.defaults)
            .field("assertion", &self.assertion_debug())
            .field("assertion_source", &i.assertion_source)
            .field("client_identity", &i.identity)
            .field("max_body", &i.max_body)
            .field("missing_lifetime", &i.missing_lifetime)
            .finish_non_exhaustive()
    }
}

impl Config {
    #[cfg(feature = "jwt")]
    fn assertion_debug(&self) -> &dyn fmt::Debug {
        &self.inner.assertion
    }

    #[cfg(not(feature = "jwt"))]
    fn assertion_debug(&self) -> &dyn fmt::Debug {
        &None::<()>
    }

    /// Starts a builder.
    #[must_use]
    pub fn builder() -> ConfigBuilder {
        ConfigBuilder::default()
    }

    /// The token endpoint.
    #[must_use]
    pub fn token_url(&self) -> &Uri {
        &self.inner.token_url
    }

    /// The revocation endpoint (RFC 7009), if configured.
    #[must_use]
    pub fn revocation_url(&self) -> Option<&Uri> {
        self.inner.revocation_url.as_ref()
    }

    /// The introspection endpoint (RFC 7662), if configured.
    #[must_use]
    pub fn introspection_url(&self) -> Option<&Uri> {
        self.inner.introspection_url.as_ref()
    }

    /// The client id.
    #[must_use]
    pub fn client_id(&self) -> &str {
        &self.inner.client_id
    }

    /// The client secret, if one is set.
    #[must_use]
    pub fn client_secret(&self) -> Option<&ClientSecret> {
        self.inner.client_secret.as_ref()
    }

    /// The DPoP key ([`ConfigBuilder::dpop`]), whose
    /// [`thumbprint`](crate::dpop::DpopKey::thumbprint) a server binds the tokens to.
    #[cfg(feature = "jwt")]
    #[must_use]
    pub fn dpop_key(&self) -> Option<&crate::dpop::DpopKey> {
        self.inner.dpop.as_ref()
    }

    /// Whether token requests carry a DPoP proof ([`ConfigBuilder::dpop`]).
    #[must_use]
    pub fn has_dpop(&self) -> bool {
        #[cfg(feature = "jwt")]
        return self.inner.dpop.is_some();
        #[cfg(not(feature = "jwt"))]
        false
    }

    /// The TLS client certificate and key (RFC 8705), if one is set
    /// ([`ConfigBuilder::client_certificate`]). A transport presents it on the connections
    /// of its own HTTP client.
    #[must_use]
    pub fn client_identity(&self) -> Option<&crate::ClientIdentity> {
        self.inner.identity.as_ref()
    }

    /// Where the client assertion is read before every request, if it is made elsewhere
    /// ([`ConfigBuilder::client_assertion`]). A transport reads it, checks it with
    /// [`AssertionSource::accept`](crate::AssertionSource::accept) and adds it with
    /// [`driver::attach_assertion`](crate::driver::attach_assertion).
    #[must_use]
    pub fn assertion_source(&self) -> Option<&crate::AssertionSource> {
        self.inner.assertion_source.as_ref()
    }

    /// The client authentication method.
    #[must_use]
    pub fn auth_method(&self) -> &AuthMethod {
        &self.inner.auth_method
    }

    /// The request body format.
    #[must_use]
    pub fn body_format(&self) -> BodyFormat {
        self.inner.body_format
    }

    /// The cap on response bodies, in bytes.
    #[must_use]
    pub fn max_body(&self) -> usize {
        self.inner.max_body
    }

    /// The policy for responses without `expires_in`.
    #[must_use]
    pub fn missing_lifetime(&self) -> MissingLifetime {
        self.inner.missing_lifetime
    }

    /// Whether a token of this type (compared case-insensitively) is accepted.
    #[must_use]
    pub fn accepts_token_type(&self, token_type: &str) -> bool {
        token_type.eq_ignore_ascii_case("bearer")
            || self
                .inner
                .extra_token_types
                .iter()
                .any(|t| t.eq_ignore_ascii_case(token_type))
    }

    /// The separator that joins scopes in the request.
    #[must_use]
    pub fn scope_separator(&self) -> &str {
        &self.inner.scope_separator
    }

    pub(crate) fn inner(&self) -> &Inner {
        &self.inner
    }

    /// Whether two configurations are the same `Arc` (cheap identity check).
    #[must_use]
    pub fn ptr_eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}

/// Builder for [`Config`]. Every setter is infallible; [`ConfigBuilder::build`] validates.
#[derive(Default)]
pub struct ConfigBuilder {
    pub(crate) token_url: Option<String>,
    pub(crate) revocation_url: Option<String>,
    pub(crate) introspection_url: Option<String>,
    client_id: String,
    client_secret: Option<ClientSecret>,
    auth_method: Option<AuthMethod>,
    body_format: BodyFormat,
    scope_separator: Option<String>,
    defaults: crate::request::TokenParams,
    max_body: Option<usize>,
    missing_lifetime: MissingLifetime,
    extra_token_types: Vec<String>,
    #[cfg(feature = "jwt")]
    private_key: Option<crate::assertion::AssertionKey>,
    #[cfg(feature = "jwt")]
    assertion_audience: crate::assertion::Audience,
    #[cfg(feature = "jwt")]
    assertion_lifetime: Option<std::time::Duration>,
    #[cfg(feature = "jwt")]
    assertion_not_before: bool,
    assertion_source: Option<crate::AssertionSource>,
    #[cfg(feature = "jwt")]
    dpop: Option<crate::dpop::DpopKey>,
    identity: Option<crate::ClientIdentity>,
    /// The discovered endpoints and their mutual-TLS aliases ([`ConfigBuilder::from_metadata`]).
    pub(crate) discovered: Option<crate::discovery::Discovered>,
    /// The discovered `token_endpoint_auth_methods_supported`
    /// ([`ConfigBuilder::from_metadata`]): picks the auth method when none is set.
    pub(crate) server_auth_methods: Option<Vec<String>>,
}

impl fmt::Debug for ConfigBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConfigBuilder")
            .field("token_url", &self.token_url)
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret)
            .field("auth_method", &self.auth_method)
            .field("client_identity", &self.identity)
            .finish_non_exhaustive()
    }
}

impl ConfigBuilder {
    /// The token endpoint. `https` is required unless the host is loopback (`localhost`,
    /// `127.0.0.0/8`, `[::1]`).
    #[must_use]
    pub fn token_url(mut self, url: impl Into<String>) -> Self {
        self.token_url = Some(url.into());
        self
    }

    /// The revocation endpoint (RFC 7009), for [`Config::revocation`]. Same rules
    /// as the token endpoint.
    #[must_use]
    pub fn revocation_url(mut self, url: impl Into<String>) -> Self {
        self.revocation_url = Some(url.into());
        self
    }

    /// The introspection endpoint (RFC 7662), for [`Config::introspection`]. Same
    /// rules as the token endpoint.
    #[must_use]
    pub fn introspection_url(mut self, url: impl Into<String>) -> Self {
        self.introspection_url = Some(url.into());
        self
    }

    /// The client id.
    #[must_use]
    pub fn client_id(mut self, id: impl Into<String>) -> Self {
        self.client_id = id.into();
        self
    }

    /// The client secret.
    #[must_use]
    pub fn client_secret(mut self, secret: impl Into<ClientSecret>) -> Self {
        self.client_secret = Some(secret.into());
        self
    }

    /// The client authentication method (default [`AuthMethod::ClientSecretBasic`], or
    /// [`AuthMethod::None`] when no secret is set).
    #[must_use]
    pub fn auth_method(mut self, method: AuthMethod) -> Self {
        self.auth_method = Some(method);
        self
    }

    /// The request body format (default [`BodyFormat::Form`]).
    #[must_use]
    pub fn body_format(mut self, format: BodyFormat) -> Self {
        self.body_format = format;
        self
    }

    /// Default scopes, sent when a request does not name its own. Empty means no `scope`
    /// parameter.
    #[must_use]
    pub fn scopes<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.defaults = self.defaults.scopes(scopes);
        self
    }

    /// The separator that joins scopes (default one space, per RFC 6749 §3.3; some
    /// providers want a comma).
    #[must_use]
    pub fn scope_separator(mut self, separator: impl Into<String>) -> Self {
        self.scope_separator = Some(separator.into());
        self
    }

    /// Default `audience` parameter (Auth0, Okta and others).
    #[must_use]
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.defaults = self.defaults.audience(audience);
        self
    }

    /// Adds a default resource indicator (RFC 8707); may be called several times.
    #[must_use]
    pub fn resource(mut self, resource: impl Into<String>) -> Self {
        let mut resources = self.defaults.resources.take().unwrap_or_default();
        resources.push(resource.into());
        self.defaults.resources = Some(resources);
        self
    }

    /// Adds an HTTP header sent with every token request ([`TokenParams::header`] has the
    /// rules; a shape's header of the same name replaces it).
    ///
    /// [`TokenParams::header`]: crate::TokenParams::header
    #[must_use]
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.defaults = self.defaults.header(name, value);
        self
    }

    /// Adds an extra body parameter sent with every request. Reserved names
    /// ([`RESERVED_PARAMETERS`]) are refused by [`ConfigBuilder::build`].
    #[must_use]
    pub fn extra_param(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.defaults = self.defaults.extra_param(name, value);
        self
    }

    /// The cap on response bodies in bytes (default [`DEFAULT_MAX_BODY`]).
    #[must_use]
    pub fn max_body(mut self, bytes: usize) -> Self {
        self.max_body = Some(bytes);
        self
    }

    /// The policy for responses without `expires_in` (default: assume five minutes).
    #[must_use]
    pub fn missing_lifetime(mut self, policy: MissingLifetime) -> Self {
        self.missing_lifetime = policy;
        self
    }

    /// Accepts tokens of this type besides `Bearer` (for example `DPoP`, `N_A` or `mac`).
    #[must_use]
    pub fn accept_token_type(mut self, token_type: impl Into<String>) -> Self {
        self.extra_token_types.push(token_type.into());
        self
    }

    /// Asks for DPoP-bound tokens (RFC 9449, feature `jwt`): every token request carries a
    /// `DPoP` proof signed with `key`, and `token_type: DPoP` is accepted. The key's
    /// thumbprint is part of the cache key.
    ///
    /// A token request refused with `use_dpop_nonce` and a `DPoP-Nonce` is sent again once,
    /// at once, with the nonce in a fresh proof, and the latest nonce goes in every later
    /// proof (RFC 9449 §8). Only the token request is done so far: the adapters' `authorize`
    /// and `send_authorized` do not yet sign a proof for the resource request, which a
    /// resource server needs with a DPoP token (sign one with
    /// [`crate::dpop::DpopKey::proof`]).
    #[cfg(feature = "jwt")]
    #[must_use]
    pub fn dpop(mut self, key: crate::dpop::DpopKey) -> Self {
        self.dpop = Some(key);
        self
    }

    /// The TLS client certificate and key (RFC 8705) that the transport presents: on token
    /// requests, and on every request sent through the transport's own HTTP client (so
    /// that certificate-bound tokens are accepted by resource servers). The identity's
    /// thumbprint is part of the cache key.
    ///
    /// It authenticates the client with [`AuthMethod::TlsClientAuth`] or
    /// [`AuthMethod::SelfSignedTlsClientAuth`]; without a method, a secret or a private key,
    /// `tls_client_auth` is chosen (the two send the same request: which one the server
    /// applies is its registration's choice), or the one the discovered metadata lists. It
    /// may also go with another method, to get certificate-bound tokens only (RFC 8705
    /// §3). A transport given an HTTP client of its own (an agent or a client builder the
    /// caller made) does not add the identity to it: see the transport's docs.
    ///
    /// ```
    /// # let cert_pem = include_str!("../tests/keys/mtls-client.pem");
    /// # let key_pem = include_str!("../tests/keys/mtls-client.key");
    /// use client_credentials::{AuthMethod, ClientIdentity, Config};
    ///
    /// let config = Config::builder()
    ///     .token_url("https://mtls.auth.example.com/token")
    ///     .client_id("my-service")
    ///     .client_certificate(ClientIdentity::from_pem(cert_pem, key_pem)?)
    ///     .build()?;
    /// assert_eq!(config.auth_method(), &AuthMethod::TlsClientAuth);
    /// # Ok::<_, client_credentials::ConfigError>(())
    /// ```
    #[must_use]
    pub fn client_certificate(mut self, identity: crate::ClientIdentity) -> Self {
        self.identity = Some(identity);
        self
    }

    pub(crate) fn has_identity(&self) -> bool {
        self.identity.is_some()
    }

    /// Authenticates with `private_key_jwt`, the assertion made elsewhere and read from
    /// `source` before every token request: workload identity federation (a Kubernetes
    /// projected service-account token, `AZURE_FEDERATED_TOKEN_FILE`, a CI identity token).
    /// No key is needed and no feature; [`crate::federated`] has the sources and the
    /// checks.
    #[must_use]
    pub fn client_assertion(mut self, source: crate::AssertionSource) -> Self {
        self.assertion_source = Some(source);
        self.auth_method = Some(AuthMethod::PrivateKeyJwt);
        self
    }

    /// Authenticates with `private_key_jwt`: each token request carries a JWT signed with
    /// `key` (feature `jwt`; [`crate::assertion`] has the claims and the algorithms).
    #[cfg(feature = "jwt")]
    #[must_use]
    pub fn private_key(mut self, key: crate::assertion::AssertionKey) -> Self {
        self.private_key = Some(key);
        self.auth_method = Some(AuthMethod::PrivateKeyJwt);
        self
    }

    /// The `aud` of signed assertions (default: the token endpoint).
    #[cfg(feature = "jwt")]
    #[must_use]
    pub fn assertion_audience(mut self, audience: crate::assertion::Audience) -> Self {
        self.assertion_audience = audience;
        self
    }

    /// How long a signed assertion is valid, `exp - iat` (default
    /// [`DEFAULT_ASSERTION_LIFETIME`](crate::assertion::DEFAULT_ASSERTION_LIFETIME), 120 s;
    /// at least 1 s).
    #[cfg(feature = "jwt")]
    #[must_use]
    pub fn assertion_lifetime(mut self, lifetime: std::time::Duration) -> Self {
        self.assertion_lifetime = Some(lifetime);
        self
    }

    /// Signed assertions also carry `nbf` (equal to `iat`), which some servers require.
    #[cfg(feature = "jwt")]
    #[must_use]
    pub fn assertion_not_before(mut self, on: bool) -> Self {
        self.assertion_not_before = on;
        self
    }

    /// The assertion configuration for `auth_method`, checked by signing one.
    #[cfg(feature = "jwt")]
    fn assertion(
        &self,
        auth_method: &AuthMethod,
    ) -> Result<Option<crate::assertion::AssertionConfig>, ConfigError> {
        use crate::assertion::{AssertionConfig, DEFAULT_ASSERTION_LIFETIME, Signer};
        let signer = match auth_method {
            AuthMethod::PrivateKeyJwt if self.assertion_source.is_some() => return Ok(None),
            AuthMethod::PrivateKeyJwt => {
                Signer::Key(self.private_key.clone().ok_or(ConfigError::MissingKey)?)
            }
            AuthMethod::ClientSecretJwt => {
                let long_enough = self
                    .client_secret
                    .as_ref()
                    .is_some_and(|s| s.expose_secret().len() >= 32);
                if !long_enough {
                    return Err(ConfigError::WeakSecret);
                }
                Signer::Secret
            }
            _ => return Ok(None),
        };
        let config = AssertionConfig {
            signer,
            audience: self.assertion_audience.clone(),
            lifetime: self
                .assertion_lifetime
                .unwrap_or(DEFAULT_ASSERTION_LIFETIME)
                .max(std::time::Duration::from_secs(1)),
            not_before: self.assertion_not_before,
        };
        // A key that cannot sign is refused now, not at the first fetch.
        let secret = self.client_secret.as_ref().map(|s| s.expose_secret());
        config.assertion(
            &self.client_id,
            "probe",
            secret,
            std::time::UNIX_EPOCH,
            "probe",
        )?;
        Ok(Some(config))
    }

    /// Validates everything and builds the configuration.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the first value that was refused.
    pub fn build(mut self) -> Result<Config, ConfigError> {
        crate::discovery::use_mtls_aliases(&mut self);
        let token_url = validate_token_url(self.token_url.as_deref())?;
        let revocation_url = self
            .revocation_url
            .as_deref()
            .map(|u| validate_token_url(Some(u)))
            .transpose()?;
        let introspection_url = self
            .introspection_url
            .as_deref()
            .map(|u| validate_token_url(Some(u)))
            .transpose()?;
        if self.client_id.is_empty() || self.client_id.chars().any(char::is_control) {
            return Err(ConfigError::InvalidClientId);
        }
        let auth_method = match self.auth_method.clone() {
            Some(m) => m,
            None if self.client_secret.is_none() && self.identity.is_some() => {
                crate::discovery::mtls_method(self.server_auth_methods.as_deref())
            }
            None if self.client_secret.is_none() => AuthMethod::None,
            None => crate::discovery::secret_method(
                self.server_auth_methods.as_deref(),
                self.client_secret
                    .as_ref()
                    .map_or(0, |s| s.expose_secret().len()),
            ),
        };
        if auth_method.needs_secret() && self.client_secret.is_none() {
            return Err(ConfigError::MissingSecret(auth_method.name()));
        }
        if auth_method.is_mutual_tls() {
            if self.identity.is_none() {
                return Err(ConfigError::MissingIdentity(auth_method.name()));
            }
            #[cfg(feature = "jwt")]
            let with_key = self.private_key.is_some();
            #[cfg(not(feature = "jwt"))]
            let with_key = false;
            if self.client_secret.is_some() || with_key {
                return Err(ConfigError::ConflictingIdentity(auth_method.name()));
            }
        }
        match &auth_method {
            AuthMethod::ClientSecretBasicRaw if self.client_id.contains(':') => {
                return Err(ConfigError::ColonInClientId);
            }
            AuthMethod::ClientSecretPost {
                client_id_param,
                client_secret_param,
            } => {
                for p in [client_id_param, client_secret_param] {
                    let reserved = RESERVED_PARAMETERS
                        .iter()
                        .filter(|r| !matches!(**r, "client_id" | "client_secret"))
                        .any(|r| r == p);
                    if p.is_empty() || reserved {
                        return Err(ConfigError::InvalidCredentialParam(p.clone()));
                    }
                }
                if client_id_param == client_secret_param {
                    return Err(ConfigError::InvalidCredentialParam(client_id_param.clone()));
                }
            }
            _ => {}
        }
        if let Some(source) = &self.assertion_source {
            source.validate()?;
            #[cfg(feature = "jwt")]
            if self.private_key.is_some() {
                return Err(ConfigError::ConflictingAssertion);
            }
            if self.client_secret.is_some() {
                return Err(ConfigError::ConflictingAssertion);
            }
            if auth_method != AuthMethod::PrivateKeyJwt {
                return Err(ConfigError::AssertionSourceMethod(auth_method.name()));
            }
        }
        #[cfg(feature = "jwt")]
        let assertion = self.assertion(&auth_method)?;
        #[cfg(not(feature = "jwt"))]
        if self.assertion_source.is_none()
            && matches!(
                auth_method,
                AuthMethod::PrivateKeyJwt | AuthMethod::ClientSecretJwt
            )
        {
            return Err(ConfigError::InvalidKey(format!(
                "{} needs the `jwt` feature",
                auth_method.name()
            )));
        }
        let scope_separator = self.scope_separator.unwrap_or_else(|| " ".to_owned());
        if scope_separator.is_empty() {
            return Err(ConfigError::EmptyScopeSeparator);
        }
        let max_body = self.max_body.unwrap_or(DEFAULT_MAX_BODY);
        if max_body == 0 {
            return Err(ConfigError::ZeroBodyCap);
        }
        for t in &self.extra_token_types {
            if t.is_empty() || !t.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(ConfigError::InvalidTokenType(t.clone()));
            }
        }
        #[allow(unused_mut)] // without `jwt`, nothing is added
        let mut extra_token_types = self.extra_token_types;
        #[cfg(feature = "jwt")]
        if self.dpop.is_some()
            && !extra_token_types
                .iter()
                .any(|t| t.eq_ignore_ascii_case("dpop"))
        {
            extra_token_types.push("DPoP".to_owned());
        }
        let defaults =
            crate::request::Params::resolve(&crate::request::Params::EMPTY, &self.defaults)?;
        Ok(Config {
            inner: Arc::new(Inner {
                token_url,
                revocation_url,
                introspection_url,
                client_id: self.client_id,
                client_secret: self.client_secret,
                auth_method,
                body_format: self.body_format,
                scope_separator,
                defaults,
                max_body,
                missing_lifetime: self.missing_lifetime,
                extra_token_types,
                #[cfg(feature = "jwt")]
                assertion,
                assertion_source: self.assertion_source,
                #[cfg(feature = "jwt")]
                dpop: self.dpop,
                identity: self.identity,
            }),
        })
    }
}

pub(crate) fn validate_token_url(url: Option<&str>) -> Result<Uri, ConfigError> {
    let raw = url.ok_or(ConfigError::MissingTokenUrl)?;
    if raw.contains('#') {
        return Err(ConfigError::UrlCredentials);
    }
    let uri: Uri = raw
        .parse()
        .map_err(|_| ConfigError::InvalidUrl(raw.to_owned()))?;
    let authority = uri
        .authority()
        .ok_or_else(|| ConfigError::InvalidUrl(raw.to_owned()))?;
    if authority.as_str().contains('@') {
        return Err(ConfigError::UrlCredentials);
    }
    let host = authority.host();
    if host.is_empty() {
        return Err(ConfigError::InvalidUrl(raw.to_owned()));
    }
    match uri.scheme_str() {
        Some(s) if s.eq_ignore_ascii_case("https") => Ok(uri),
        Some(s) if s.eq_ignore_ascii_case("http") => {
            if is_loopback_host(host) {
                Ok(uri)
            } else {
                Err(ConfigError::InsecureUrl(raw.to_owned()))
            }
        }
        _ => Err(ConfigError::InvalidUrl(raw.to_owned())),
    }
}

/// Whether `host` (as it appears in a URL authority) names the loopback interface: an
/// address in `127.0.0.0/8`, `::1`, or `localhost` (which RFC 6761 §6.3 reserves for
/// loopback and every resolver maps there). Other names under `.localhost` are refused: they
/// go through the system resolver, and nothing guarantees where they lead.
#[must_use]
pub fn is_loopback_host(host: &str) -> bool {
    let host = host.trim_end_matches('.');
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> ConfigBuilder {
        Config::builder()
            .token_url("https://as.example.com/token")
            .client_id("c")
            .client_secret("s")
    }

    #[test]
    fn https_is_required_except_on_loopback() {
        assert!(base().build().is_ok());
        for ok in [
            "http://localhost:8080/token",
            "http://127.0.0.1/token",
            "http://127.1.2.3:9/t",
            "http://[::1]:80/token",
        ] {
            assert!(base().token_url(ok).build().is_ok(), "{ok}");
        }
        for bad in [
            "http://as.example.com/token",
            "http://10.0.0.1/token",
            "http://localhost.example.com/token",
            "http://api.localhost/token",
        ] {
            assert!(
                matches!(
                    base().token_url(bad).build(),
                    Err(ConfigError::InsecureUrl(_))
                ),
                "{bad}"
            );
        }
        assert!(matches!(
            base().token_url("ftp://as.example.com/token").build(),
            Err(ConfigError::InvalidUrl(_))
        ));
        assert!(matches!(
            base().token_url("/token").build(),
            Err(ConfigError::InvalidUrl(_))
        ));
        assert_eq!(
            base()
                .token_url("https://u:p@as.example.com/t")
                .build()
                .err(),
            Some(ConfigError::UrlCredentials)
        );
        assert_eq!(
            base().token_url("https://as.example.com/t#x").build().err(),
            Some(ConfigError::UrlCredentials)
        );
        assert_eq!(
            Config::builder().client_id("c").build().err(),
            Some(ConfigError::MissingTokenUrl)
        );
    }

    #[test]
    fn secrets_and_methods() {
        let no_secret = Config::builder()
            .token_url("https://as.example.com/token")
            .client_id("c");
        assert_eq!(
            no_secret.build().map(|c| c.auth_method().clone()),
            Ok(AuthMethod::None)
        );
        let no_secret = Config::builder()
            .token_url("https://as.example.com/token")
            .client_id("c")
            .auth_method(AuthMethod::ClientSecretBasic);
        assert_eq!(
            no_secret.build().err(),
            Some(ConfigError::MissingSecret("client_secret_basic"))
        );
        assert_eq!(
            base()
                .client_id("a:b")
                .auth_method(AuthMethod::ClientSecretBasicRaw)
                .build()
                .err(),
            Some(ConfigError::ColonInClientId)
        );
        assert!(
            base().client_id("a:b").build().is_ok(),
            "encoded Basic carries ':'"
        );
        assert_eq!(
            base().client_id("").build().err(),
            Some(ConfigError::InvalidClientId)
        );
        let clash = AuthMethod::ClientSecretPost {
            client_id_param: "scope".into(),
            client_secret_param: "secret".into(),
        };
        assert!(matches!(
            base().auth_method(clash).build(),
            Err(ConfigError::InvalidCredentialParam(_))
        ));
        let same = AuthMethod::ClientSecretPost {
            client_id_param: "x".into(),
            client_secret_param: "x".into(),
        };
        assert!(base().auth_method(same).build().is_err());
    }

    #[test]
    fn parameters_are_validated() {
        assert_eq!(
            base().scopes(["a b"]).build().err(),
            Some(ConfigError::InvalidScope("a b".into()))
        );
        assert_eq!(
            base().scopes([""]).build().err(),
            Some(ConfigError::InvalidScope(String::new()))
        );
        assert_eq!(
            base().extra_param("grant_type", "password").build().err(),
            Some(ConfigError::ReservedParameter("grant_type".into()))
        );
        assert_eq!(
            base().extra_param("Client_Secret", "x").build().err(),
            Some(ConfigError::ReservedParameter("Client_Secret".into()))
        );
        assert!(matches!(
            base().resource("relative/path").build(),
            Err(ConfigError::InvalidTarget {
                kind: "resource",
                ..
            })
        ));
        assert!(matches!(
            base().resource("https://api.example.com/#frag").build(),
            Err(ConfigError::InvalidTarget {
                kind: "resource",
                ..
            })
        ));
        assert!(base().resource("https://api.example.com/").build().is_ok());
        assert_eq!(
            base().max_body(0).build().err(),
            Some(ConfigError::ZeroBodyCap)
        );
        assert_eq!(
            base().scope_separator("").build().err(),
            Some(ConfigError::EmptyScopeSeparator)
        );
        assert!(base().accept_token_type("bad type").build().is_err());
    }

    #[test]
    fn debug_hides_the_secret() {
        let c = base().client_secret("very-secret-value").build().unwrap();
        let s = format!("{c:?}");
        assert!(!s.contains("very-secret-value"), "{s}");
        let b = base().client_secret("very-secret-value");
        assert!(!format!("{b:?}").contains("very-secret-value"));
    }

    #[test]
    fn token_types() {
        let c = base().accept_token_type("DPoP").build().unwrap();
        assert!(c.accepts_token_type("bearer"));
        assert!(c.accepts_token_type("BEARER"));
        assert!(c.accepts_token_type("dpop"));
        assert!(!c.accepts_token_type("mac"));
    }

    fn identity(cert: &str) -> crate::ClientIdentity {
        let (cert, key) = match cert {
            "client" => (
                include_str!("../tests/keys/mtls-client.pem"),
                include_str!("../tests/keys/mtls-client.key"),
            ),
            _ => (
                include_str!("../tests/keys/rsa-2048-cert.pem"),
                include_str!("../tests/keys/rsa-2048.pem"),
            ),
        };
        crate::ClientIdentity::from_pem(cert, key).unwrap()
    }

    fn mtls() -> ConfigBuilder {
        Config::builder()
            .token_url("https://mtls.as.example.com/token")
            .client_id("c")
            .client_certificate(identity("client"))
    }

    #[test]
    fn mutual_tls_methods_need_a_certificate_and_nothing_else() {
        for method in [
            AuthMethod::TlsClientAuth,
            AuthMethod::SelfSignedTlsClientAuth,
        ] {
            let name = method.name();
            assert!(method.is_mutual_tls());
            assert_eq!(
                Config::builder()
                    .token_url("https://as.example.com/token")
                    .client_id("c")
                    .auth_method(method.clone())
                    .build()
                    .err(),
                Some(ConfigError::MissingIdentity(name))
            );
            assert_eq!(
                mtls()
                    .client_secret("s")
                    .auth_method(method.clone())
                    .build()
                    .err(),
                Some(ConfigError::ConflictingIdentity(name))
            );
            let c = mtls().auth_method(method.clone()).build().unwrap();
            assert_eq!(c.auth_method(), &method);
            assert_eq!(c.client_identity(), Some(&identity("client")));
        }
        // A certificate alone: tls_client_auth.
        assert_eq!(
            mtls().build().unwrap().auth_method(),
            &AuthMethod::TlsClientAuth
        );
        // A certificate with a secret: the secret authenticates, the certificate binds.
        let bound = mtls().client_secret("s").build().unwrap();
        assert_eq!(bound.auth_method(), &AuthMethod::ClientSecretBasic);
        assert!(bound.client_identity().is_some());
        assert!(!AuthMethod::None.is_mutual_tls());
    }

    #[test]
    fn debug_hides_the_private_key() {
        let c = mtls().build().unwrap();
        let key = include_str!("../tests/keys/mtls-client.key");
        let s = format!("{c:?}{:?}", mtls());
        for line in key.lines().filter(|l| !l.starts_with("-----")) {
            assert!(!s.contains(line), "{s}");
        }
        assert!(
            s.contains("s4hnU4EQXH-WvQo33661wHcGRivPlpIvXjdcL412ka0"),
            "{s}"
        );
    }

    #[test]
    fn the_certificate_is_part_of_the_cache_key() {
        let a = mtls().build().unwrap().default_request();
        let b = mtls()
            .client_certificate(identity("rsa"))
            .build()
            .unwrap()
            .default_request();
        let none = Config::builder()
            .token_url("https://mtls.as.example.com/token")
            .client_id("c")
            .build()
            .unwrap()
            .default_request();
        assert_ne!(a.cache_key(), b.cache_key());
        assert_ne!(a.cache_key(), none.cache_key());
        assert_eq!(
            a.cache_key(),
            mtls().build().unwrap().default_request().cache_key()
        );
        assert!(
            a.cache_key()
                .as_str()
                .contains("s4hnU4EQXH-WvQo33661wHcGRivPlpIvXjdcL412ka0")
        );
    }
}
