//! The endpoint's configuration: [`TokenEndpoint`] and its builder.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::response::MAX_LIFETIME;

/// A client authentication method that the token endpoint accepts (RFC 6749 §2.3.1, RFC 7523
/// §2.2, OpenID Connect Core §9).
///
/// Client credentials is for confidential clients only (RFC 6749 §4.4), so `none` is not a
/// method the endpoint can accept. The two assertion methods need the `jwt` feature to be
/// verified; without it, the endpoint refuses to be built with them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ClientAuthMethod {
    /// `client_secret_basic`: HTTP Basic, with the client id and secret form-urlencoded
    /// before base64 (RFC 6749 §2.3.1).
    ClientSecretBasic,
    /// `client_secret_post`: `client_id` and `client_secret` as body parameters.
    ClientSecretPost,
    /// `private_key_jwt`: a `client_assertion` JWT signed with the client's private key
    /// (RS256, PS256, ES256 or EdDSA), verified with its registered public keys
    /// ([`RegisteredClient::jwks`](crate::server::RegisteredClient::jwks), feature `jwt`).
    PrivateKeyJwt,
    /// `client_secret_jwt`: a `client_assertion` JWT signed with HS256, keyed by the client
    /// secret, which is not itself sent (feature `jwt`).
    ClientSecretJwt,
    /// `tls_client_auth` (RFC 8705 §2.1): the client's TLS certificate, issued by a CA the
    /// server trusts, with the subject the client registered
    /// ([`ClientRecord::tls_client_auth_subject_dn`](crate::server::ClientRecord::tls_client_auth_subject_dn)).
    /// The request carries `client_id` and no secret; the server that terminates TLS attaches
    /// what it verified ([`IncomingRequest::with_client_certificate`](crate::server::IncomingRequest::with_client_certificate)).
    TlsClientAuth,
    /// `self_signed_tls_client_auth` (RFC 8705 §2.2): the client's TLS certificate, whose
    /// `x5t#S256` thumbprint equals the registered one
    /// ([`ClientRecord::tls_client_certificate_x5t_s256`](crate::server::ClientRecord::tls_client_certificate_x5t_s256)).
    SelfSignedTlsClientAuth,
}

impl ClientAuthMethod {
    /// Every method that needs no TLS client certificate, Basic first, then post,
    /// `private_key_jwt` and `client_secret_jwt`: the endpoint's default.
    pub const ALL: [Self; 4] = [
        Self::ClientSecretBasic,
        Self::ClientSecretPost,
        Self::PrivateKeyJwt,
        Self::ClientSecretJwt,
    ];

    /// The two RFC 8705 methods, which need the server that terminates TLS to attach the
    /// client's certificate: `tls_client_auth`, then `self_signed_tls_client_auth`.
    pub const TLS: [Self; 2] = [Self::TlsClientAuth, Self::SelfSignedTlsClientAuth];

    /// Whether the client proves itself with its TLS certificate (RFC 8705).
    #[must_use]
    pub fn is_tls(self) -> bool {
        matches!(self, Self::TlsClientAuth | Self::SelfSignedTlsClientAuth)
    }

    /// Whether the client proves itself with a signed assertion rather than a secret on the
    /// wire.
    #[must_use]
    pub fn is_assertion(self) -> bool {
        matches!(self, Self::PrivateKeyJwt | Self::ClientSecretJwt)
    }

    /// Whether this build of the endpoint can verify the method: the assertion methods need
    /// the `jwt` feature.
    #[must_use]
    pub fn is_supported(self) -> bool {
        cfg!(feature = "jwt") || !self.is_assertion()
    }

    /// The registered name (RFC 7591 §2, RFC 8414 `token_endpoint_auth_methods_supported`).
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::ClientSecretBasic => "client_secret_basic",
            Self::ClientSecretPost => "client_secret_post",
            Self::PrivateKeyJwt => "private_key_jwt",
            Self::ClientSecretJwt => "client_secret_jwt",
            Self::TlsClientAuth => "tls_client_auth",
            Self::SelfSignedTlsClientAuth => "self_signed_tls_client_auth",
        }
    }

    /// The method with this registered name.
    ///
    /// ```
    /// use client_credentials::server::ClientAuthMethod;
    /// assert_eq!(ClientAuthMethod::from_name("client_secret_post"), Some(ClientAuthMethod::ClientSecretPost));
    /// assert_eq!(ClientAuthMethod::from_name("private_key_jwt"), Some(ClientAuthMethod::PrivateKeyJwt));
    /// assert_eq!(ClientAuthMethod::from_name("tls_client_auth"), Some(ClientAuthMethod::TlsClientAuth));
    /// assert_eq!(ClientAuthMethod::from_name("none"), None);
    /// ```
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .chain(Self::TLS)
            .find(|m| m.name() == name)
    }
}

impl fmt::Display for ClientAuthMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A scope the endpoint knows, with the description shown to people (OpenAPI, metadata).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ScopeInfo {
    name: String,
    description: String,
}

impl ScopeInfo {
    /// The scope token.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The description.
    #[must_use]
    pub fn description(&self) -> &str {
        &self.description
    }
}

/// What the endpoint grants when a request has no `scope` parameter. RFC 6749 §3.3 lets the
/// server either use a pre-defined default or refuse with `invalid_scope`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DefaultScopes {
    /// The client's default scopes (see
    /// [`ClientRecord::default_scopes`](crate::server::ClientRecord::default_scopes)), which
    /// are all of its allowed scopes unless it says otherwise. The default.
    #[default]
    ClientDefaults,
    /// No scope at all: the token carries no scope.
    Empty,
    /// Refuse the request with `invalid_scope`.
    Reject,
}

/// A value that [`TokenEndpointBuilder::build`] refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EndpointConfigError {
    /// The token path does not start with `/`, or holds characters a path cannot hold.
    #[error("token path {0:?} must be an absolute path")]
    InvalidTokenPath(String),
    /// A scope name is not a scope token (RFC 6749 §3.3).
    #[error("scope {0:?} is not a valid scope token (RFC 6749 §3.3)")]
    InvalidScope(String),
    /// A scope was registered twice.
    #[error("scope {0:?} is registered twice")]
    DuplicateScope(String),
    /// No client authentication method is accepted.
    #[error("at least one client authentication method must be accepted")]
    NoAuthMethod,
    /// The token lifetime is under one second or over ten years.
    #[error("token lifetime must be between one second and ten years")]
    InvalidLifetime,
    /// The token type is empty or not a visible-ASCII token.
    #[error("token type {0:?} is not a valid token type")]
    InvalidTokenType(String),
    /// The realm is empty or holds control characters.
    #[error("realm is empty or contains control characters")]
    InvalidRealm,
    /// The body cap is zero.
    #[error("request body cap must be greater than zero")]
    ZeroBodyCap,
    /// An assertion method was accepted in a build without the `jwt` feature, which alone
    /// can verify assertions.
    #[error("{0} needs the jwt feature of client-credentials-core")]
    MethodNeedsJwt(ClientAuthMethod),
}

/// The default cap on a token request body: 64 KiB, far above any real token request
/// (client assertions included) and far below what would hurt.
pub const DEFAULT_MAX_REQUEST_BODY: usize = 64 * 1024;

/// The default access token lifetime: one hour.
pub const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(3600);

/// A configured token endpoint: the rules a token request is checked against. Cheap to clone
/// (shared behind an [`Arc`]).
///
/// The endpoint is driven in three steps, so that the client lookup can be synchronous or
/// asynchronous:
///
/// 1. [`TokenEndpoint::parse`] turns an `http::Request` into an
///    [`IncomingRequest`](crate::server::IncomingRequest) or an
///    [`EndpointError`](crate::server::EndpointError);
/// 2. the caller looks the client up by
///    [`IncomingRequest::client_id`](crate::server::IncomingRequest::client_id) in its own
///    store, awaiting if it must;
/// 3. [`TokenEndpoint::authorize`] checks the secret, the grant and the scopes and returns a
///    [`Grant`](crate::server::Grant), whose
///    [`respond`](crate::server::Grant::respond) renders the RFC 6749 §5.1 answer once the
///    caller has made a token.
///
/// Every error renders itself with
/// [`EndpointError::to_response`](crate::server::EndpointError::to_response).
/// [`TokenEndpoint::handle`] does all three steps for synchronous code.
#[derive(Clone)]
pub struct TokenEndpoint {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) token_path: String,
    pub(crate) scopes: Vec<ScopeInfo>,
    pub(crate) auth_methods: Vec<ClientAuthMethod>,
    pub(crate) lifetime: Duration,
    pub(crate) token_type: String,
    pub(crate) realm: String,
    pub(crate) max_body: usize,
    pub(crate) accept_json: bool,
    pub(crate) accept_unencoded_basic: bool,
    pub(crate) default_scopes: DefaultScopes,
}

impl fmt::Debug for TokenEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = &self.inner;
        f.debug_struct("TokenEndpoint")
            .field("token_path", &i.token_path)
            .field("scopes", &i.scopes)
            .field("auth_methods", &i.auth_methods)
            .field("lifetime", &i.lifetime)
            .field("token_type", &i.token_type)
            .field("realm", &i.realm)
            .field("max_body", &i.max_body)
            .field("accept_json", &i.accept_json)
            .field("accept_unencoded_basic", &i.accept_unencoded_basic)
            .field("default_scopes", &i.default_scopes)
            .finish()
    }
}

impl TokenEndpoint {
    /// Starts a builder.
    #[must_use]
    pub fn builder() -> TokenEndpointBuilder {
        TokenEndpointBuilder::default()
    }

    /// The path the endpoint is served at (for routing, metadata and OpenAPI).
    #[must_use]
    pub fn token_path(&self) -> &str {
        &self.inner.token_path
    }

    /// The registered scopes, in registration order.
    #[must_use]
    pub fn scopes(&self) -> &[ScopeInfo] {
        &self.inner.scopes
    }

    /// Whether `scope` is registered.
    #[must_use]
    pub fn has_scope(&self, scope: &str) -> bool {
        self.inner.scopes.iter().any(|s| s.name == scope)
    }

    /// The accepted client authentication methods.
    #[must_use]
    pub fn auth_methods(&self) -> &[ClientAuthMethod] {
        &self.inner.auth_methods
    }

    /// Whether `method` is accepted.
    #[must_use]
    pub fn accepts(&self, method: ClientAuthMethod) -> bool {
        self.inner.auth_methods.contains(&method)
    }

    /// The default access token lifetime.
    #[must_use]
    pub fn token_lifetime(&self) -> Duration {
        self.inner.lifetime
    }

    /// The token type issued (`Bearer` unless configured otherwise).
    #[must_use]
    pub fn token_type(&self) -> &str {
        &self.inner.token_type
    }

    /// The realm named in `WWW-Authenticate` challenges.
    #[must_use]
    pub fn realm(&self) -> &str {
        &self.inner.realm
    }

    /// The cap on request bodies, in bytes. A transport that streams should read at most
    /// `max_body() + 1` bytes and hand them over: anything over the cap is refused.
    #[must_use]
    pub fn max_body(&self) -> usize {
        self.inner.max_body
    }

    /// Whether JSON request bodies are accepted besides form bodies.
    #[must_use]
    pub fn accepts_json(&self) -> bool {
        self.inner.accept_json
    }

    /// What is granted when a request names no scope.
    #[must_use]
    pub fn default_scopes(&self) -> DefaultScopes {
        self.inner.default_scopes
    }
}

/// Builder for [`TokenEndpoint`]. Setters are infallible; [`TokenEndpointBuilder::build`]
/// validates.
///
/// ```
/// use std::time::Duration;
/// use client_credentials::server::{ClientAuthMethod, TokenEndpoint};
///
/// let endpoint = TokenEndpoint::builder()
///     .token_path("/oauth2/token")
///     .scope("orders.read", "Read orders")
///     .scope("orders.write", "Create and change orders")
///     .auth_methods([ClientAuthMethod::ClientSecretBasic])
///     .token_lifetime(Duration::from_secs(900))
///     .build()?;
/// assert_eq!(endpoint.token_path(), "/oauth2/token");
/// assert!(!endpoint.accepts(ClientAuthMethod::ClientSecretPost));
/// # Ok::<_, client_credentials_core::server::EndpointConfigError>(())
/// ```
#[derive(Clone, Debug)]
pub struct TokenEndpointBuilder {
    token_path: String,
    scopes: Vec<(String, String)>,
    auth_methods: Vec<ClientAuthMethod>,
    lifetime: Duration,
    token_type: String,
    realm: String,
    max_body: usize,
    accept_json: bool,
    accept_unencoded_basic: bool,
    default_scopes: DefaultScopes,
}

impl Default for TokenEndpointBuilder {
    fn default() -> Self {
        Self {
            token_path: "/token".to_owned(),
            scopes: Vec::new(),
            auth_methods: ClientAuthMethod::ALL
                .into_iter()
                .filter(|m| m.is_supported())
                .collect(),
            lifetime: DEFAULT_TOKEN_LIFETIME,
            token_type: "Bearer".to_owned(),
            realm: "token".to_owned(),
            max_body: DEFAULT_MAX_REQUEST_BODY,
            accept_json: true,
            accept_unencoded_basic: false,
            default_scopes: DefaultScopes::default(),
        }
    }
}

impl TokenEndpointBuilder {
    /// The path the endpoint is served at (default `/token`).
    #[must_use]
    pub fn token_path(mut self, path: impl Into<String>) -> Self {
        self.token_path = path.into();
        self
    }

    /// Registers a scope with its description. Requests for unregistered scopes get
    /// `invalid_scope`.
    #[must_use]
    pub fn scope(mut self, name: impl Into<String>, description: impl Into<String>) -> Self {
        self.scopes.push((name.into(), description.into()));
        self
    }

    /// The accepted client authentication methods (default: every one this build can verify,
    /// [`ClientAuthMethod::is_supported`]).
    #[must_use]
    pub fn auth_methods(mut self, methods: impl IntoIterator<Item = ClientAuthMethod>) -> Self {
        self.auth_methods.clear();
        for m in methods {
            if !self.auth_methods.contains(&m) {
                self.auth_methods.push(m);
            }
        }
        self
    }

    /// The default access token lifetime (default one hour; whole seconds on the wire). A
    /// client record may override it.
    #[must_use]
    pub fn token_lifetime(mut self, lifetime: Duration) -> Self {
        self.lifetime = lifetime;
        self
    }

    /// The token type issued (default `Bearer`).
    #[must_use]
    pub fn token_type(mut self, token_type: impl Into<String>) -> Self {
        self.token_type = token_type.into();
        self
    }

    /// The realm named in `WWW-Authenticate: Basic realm="…"` (default `token`).
    #[must_use]
    pub fn realm(mut self, realm: impl Into<String>) -> Self {
        self.realm = realm.into();
        self
    }

    /// The cap on request bodies (default [`DEFAULT_MAX_REQUEST_BODY`]).
    #[must_use]
    pub fn max_body(mut self, bytes: usize) -> Self {
        self.max_body = bytes;
        self
    }

    /// Whether `application/json` request bodies are accepted besides
    /// `application/x-www-form-urlencoded` ones (default `true`).
    #[must_use]
    pub fn accept_json(mut self, accept: bool) -> Self {
        self.accept_json = accept;
        self
    }

    /// Whether a Basic secret that does not match once form-urldecoded may match as sent
    /// (default `false`). Some clients (authlib, requests-oauthlib) skip the RFC 6749 §2.3.1
    /// encoding, and then a secret holding `+` or `%` only matches undecoded. The client id is
    /// always decoded.
    #[must_use]
    pub fn accept_unencoded_basic(mut self, accept: bool) -> Self {
        self.accept_unencoded_basic = accept;
        self
    }

    /// What to grant when a request names no scope (default
    /// [`DefaultScopes::ClientDefaults`]).
    #[must_use]
    pub fn default_scopes(mut self, policy: DefaultScopes) -> Self {
        self.default_scopes = policy;
        self
    }

    /// Validates and builds the endpoint.
    ///
    /// # Errors
    /// An [`EndpointConfigError`] naming the first value refused.
    pub fn build(self) -> Result<TokenEndpoint, EndpointConfigError> {
        let path_ok = self.token_path.starts_with('/')
            && self.token_path.parse::<http::uri::PathAndQuery>().is_ok()
            && !self.token_path.contains(['?', '#']);
        if !path_ok {
            return Err(EndpointConfigError::InvalidTokenPath(self.token_path));
        }
        let mut scopes: Vec<ScopeInfo> = Vec::with_capacity(self.scopes.len());
        for (name, description) in self.scopes {
            if !crate::server::is_scope_token(&name) {
                return Err(EndpointConfigError::InvalidScope(name));
            }
            if scopes.iter().any(|s| s.name == name) {
                return Err(EndpointConfigError::DuplicateScope(name));
            }
            scopes.push(ScopeInfo { name, description });
        }
        if self.auth_methods.is_empty() {
            return Err(EndpointConfigError::NoAuthMethod);
        }
        if let Some(m) = self.auth_methods.iter().find(|m| !m.is_supported()) {
            return Err(EndpointConfigError::MethodNeedsJwt(*m));
        }
        if self.lifetime < Duration::from_secs(1) || self.lifetime > MAX_LIFETIME {
            return Err(EndpointConfigError::InvalidLifetime);
        }
        if self.token_type.is_empty() || !self.token_type.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(EndpointConfigError::InvalidTokenType(self.token_type));
        }
        if self.realm.is_empty() || self.realm.chars().any(char::is_control) {
            return Err(EndpointConfigError::InvalidRealm);
        }
        if self.max_body == 0 {
            return Err(EndpointConfigError::ZeroBodyCap);
        }
        Ok(TokenEndpoint {
            inner: Arc::new(Inner {
                token_path: self.token_path,
                scopes,
                auth_methods: self.auth_methods,
                lifetime: self.lifetime,
                token_type: self.token_type,
                realm: self.realm,
                max_body: self.max_body,
                accept_json: self.accept_json,
                accept_unencoded_basic: self.accept_unencoded_basic,
                default_scopes: self.default_scopes,
            }),
        })
    }
}
