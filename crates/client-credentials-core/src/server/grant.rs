//! Client records, the authorisation decision and the RFC 6749 §5.1 success response.

use std::fmt;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::StatusCode;
use serde_json::{Map, Value};

use crate::error::ErrorCode;
use crate::secret::{AccessToken, ClientSecret, constant_time_eq};
use crate::server::endpoint::{DefaultScopes, TokenEndpoint};
use crate::server::error::{EndpointError, Rejection, json_response, json_string};
use crate::server::parse::{ClientCredentials, IncomingRequest};
use crate::server::{AssertionRejection, ClientAuthMethod};

/// What the endpoint needs to know about a registered client. Implement it on your own
/// client type, or use [`RegisteredClient`].
pub trait ClientRecord {
    /// Whether the presented credentials are this client's. Compare in constant time:
    /// [`ClientCredentials::secret_matches`] does.
    fn verify(&self, credentials: &ClientCredentials) -> bool;

    /// The scopes this client may be granted.
    fn allowed_scopes(&self) -> &[String];

    /// The scopes granted when a request names none, under
    /// [`DefaultScopes::ClientDefaults`]. Default: all of [`ClientRecord::allowed_scopes`].
    fn default_scopes(&self) -> &[String] {
        self.allowed_scopes()
    }

    /// Whether the client may authenticate with `method`. Default: yes.
    fn allows_auth_method(&self, method: ClientAuthMethod) -> bool {
        let _ = method;
        true
    }

    /// Whether the client may use the client credentials grant. Default: yes.
    fn allows_client_credentials(&self) -> bool {
        true
    }

    /// A lifetime for this client's tokens that overrides the endpoint's. Default: none.
    fn token_lifetime(&self) -> Option<Duration> {
        None
    }

    /// Whether this client's tokens must be DPoP-bound (RFC 9449 §5.2, the
    /// `dpop_bound_access_tokens` client metadata): a token request without a proof is
    /// refused with `invalid_grant`. Default: no.
    fn dpop_bound_access_tokens(&self) -> bool {
        false
    }

    /// The subject distinguished name (RFC 4514 string, `CN=svc,O=Example`) that this
    /// client's certificate must have, its chain trusted, for `tls_client_auth` (RFC 8705
    /// §2.1.2, the `tls_client_auth_subject_dn` client metadata). Default: none.
    fn tls_client_auth_subject_dn(&self) -> Option<&str> {
        None
    }

    /// The `x5t#S256` thumbprint of this client's self-signed certificate, for
    /// `self_signed_tls_client_auth` (RFC 8705 §2.2). Default: none.
    fn tls_client_certificate_x5t_s256(&self) -> Option<&str> {
        None
    }

    /// The public keys that verify this client's `private_key_jwt` assertions (feature
    /// `jwt`). Default: none, and the method is refused.
    #[cfg(feature = "jwt")]
    fn assertion_keys(&self) -> Option<&crate::server::JwkSet> {
        None
    }

    /// The secret that keys this client's `client_secret_jwt` (HS256) assertions (feature
    /// `jwt`): at least 32 bytes. Default: none, and the method is refused.
    #[cfg(feature = "jwt")]
    fn assertion_secret(&self) -> Option<&ClientSecret> {
        None
    }
}

impl<T: ClientRecord + ?Sized> ClientRecord for &T {
    fn verify(&self, credentials: &ClientCredentials) -> bool {
        (**self).verify(credentials)
    }
    fn allowed_scopes(&self) -> &[String] {
        (**self).allowed_scopes()
    }
    fn default_scopes(&self) -> &[String] {
        (**self).default_scopes()
    }
    fn allows_auth_method(&self, method: ClientAuthMethod) -> bool {
        (**self).allows_auth_method(method)
    }
    fn allows_client_credentials(&self) -> bool {
        (**self).allows_client_credentials()
    }
    fn token_lifetime(&self) -> Option<Duration> {
        (**self).token_lifetime()
    }
    fn dpop_bound_access_tokens(&self) -> bool {
        (**self).dpop_bound_access_tokens()
    }
    fn tls_client_auth_subject_dn(&self) -> Option<&str> {
        (**self).tls_client_auth_subject_dn()
    }
    fn tls_client_certificate_x5t_s256(&self) -> Option<&str> {
        (**self).tls_client_certificate_x5t_s256()
    }
    #[cfg(feature = "jwt")]
    fn assertion_keys(&self) -> Option<&crate::server::JwkSet> {
        (**self).assertion_keys()
    }
    #[cfg(feature = "jwt")]
    fn assertion_secret(&self) -> Option<&ClientSecret> {
        (**self).assertion_secret()
    }
}

/// A client kept in memory with its secret: enough for tests, examples and small services.
///
/// ```
/// use client_credentials::server::{ClientAuthMethod, RegisteredClient};
/// let client = RegisteredClient::new("reporting", "s3cr3t")
///     .scopes(["reports.read"])
///     .auth_methods([ClientAuthMethod::ClientSecretBasic]);
/// assert_eq!(client.client_id(), "reporting");
/// assert!(!format!("{client:?}").contains("s3cr3t"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegisteredClient {
    id: String,
    secret: ClientSecret,
    scopes: Vec<String>,
    default_scopes: Option<Vec<String>>,
    auth_methods: Option<Vec<ClientAuthMethod>>,
    client_credentials: bool,
    lifetime: Option<Duration>,
    dpop_bound: bool,
    tls_subject_dn: Option<String>,
    tls_x5t_s256: Option<String>,
    #[cfg(feature = "jwt")]
    jwks: Option<crate::server::JwkSet>,
}

impl RegisteredClient {
    /// A client with this id and secret, no scopes, every method the endpoint accepts. An
    /// empty secret matches nothing: such a client can only use `private_key_jwt`.
    #[must_use]
    pub fn new(id: impl Into<String>, secret: impl Into<ClientSecret>) -> Self {
        Self {
            id: id.into(),
            secret: secret.into(),
            scopes: Vec::new(),
            default_scopes: None,
            auth_methods: None,
            client_credentials: true,
            lifetime: None,
            dpop_bound: false,
            tls_subject_dn: None,
            tls_x5t_s256: None,
            #[cfg(feature = "jwt")]
            jwks: None,
        }
    }

    /// A `tls_client_auth` client (RFC 8705 §2.1): no secret; its TLS certificate must be
    /// issued by a CA the server trusts and have this subject (RFC 4514 string, compared as
    /// written: `CN=mtls-client`).
    ///
    /// ```
    /// use client_credentials::server::{ClientRecord, RegisteredClient};
    /// let client = RegisteredClient::tls_client_auth("svc", "CN=svc").scopes(["read"]);
    /// assert_eq!(client.tls_client_auth_subject_dn(), Some("CN=svc"));
    /// ```
    #[must_use]
    pub fn tls_client_auth(id: impl Into<String>, subject_dn: impl Into<String>) -> Self {
        let mut client = Self::new(id, String::new());
        client.tls_subject_dn = Some(subject_dn.into());
        client
    }

    /// A `self_signed_tls_client_auth` client (RFC 8705 §2.2): no secret; its TLS
    /// certificate's `x5t#S256` thumbprint must be this one (see
    /// [`PresentedCertificate::from_der`](crate::server::PresentedCertificate::from_der) to
    /// compute it from the certificate).
    #[must_use]
    pub fn self_signed_tls_client_auth(id: impl Into<String>, x5t_s256: impl Into<String>) -> Self {
        let mut client = Self::new(id, String::new());
        client.tls_x5t_s256 = Some(x5t_s256.into());
        client
    }

    /// A `private_key_jwt` client: no secret, its public keys (feature `jwt`).
    ///
    /// ```
    /// use client_credentials::AssertionKey;
    /// use client_credentials::server::{ClientAuthMethod, JwkSet, RegisteredClient};
    ///
    /// # let pem = include_str!("../../tests/keys/ed25519.pem");
    /// let key = AssertionKey::from_pem(pem)?;
    /// let jwks = JwkSet::from_value(&serde_json::json!({ "keys": [key.public_jwk()] }))?;
    /// let client = RegisteredClient::with_jwks("signer", jwks)
    ///     .scopes(["read"])
    ///     .auth_methods([ClientAuthMethod::PrivateKeyJwt]);
    /// assert_eq!(client.client_id(), "signer");
    /// # Ok::<_, Box<dyn std::error::Error>>(())
    /// ```
    #[cfg(feature = "jwt")]
    #[must_use]
    pub fn with_jwks(id: impl Into<String>, jwks: crate::server::JwkSet) -> Self {
        Self::new(id, String::new()).jwks(jwks)
    }

    /// Registers the client's public keys, which verify its `private_key_jwt` assertions
    /// (feature `jwt`).
    #[cfg(feature = "jwt")]
    #[must_use]
    pub fn jwks(mut self, jwks: crate::server::JwkSet) -> Self {
        self.jwks = Some(jwks);
        self
    }

    /// The scopes the client may be granted.
    #[must_use]
    pub fn scopes<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.scopes = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// The scopes granted when a request names none (default: all allowed scopes).
    #[must_use]
    pub fn default_scopes<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.default_scopes = Some(scopes.into_iter().map(Into::into).collect());
        self
    }

    /// Restricts the client to these authentication methods.
    #[must_use]
    pub fn auth_methods(mut self, methods: impl IntoIterator<Item = ClientAuthMethod>) -> Self {
        self.auth_methods = Some(methods.into_iter().collect());
        self
    }

    /// Whether the client may use the client credentials grant (default `true`; `false`
    /// makes the endpoint answer `unauthorized_client`).
    #[must_use]
    pub fn client_credentials_allowed(mut self, allowed: bool) -> Self {
        self.client_credentials = allowed;
        self
    }

    /// A token lifetime for this client, overriding the endpoint's.
    #[must_use]
    pub fn token_lifetime(mut self, lifetime: Duration) -> Self {
        self.lifetime = Some(lifetime);
        self
    }

    /// Whether the client's tokens must be DPoP-bound (default `false`; `true` refuses a
    /// token request without a DPoP proof with `invalid_grant`).
    #[must_use]
    pub fn dpop_bound_access_tokens(mut self, required: bool) -> Self {
        self.dpop_bound = required;
        self
    }

    /// The client id.
    #[must_use]
    pub fn client_id(&self) -> &str {
        &self.id
    }

    /// The client secret.
    #[must_use]
    pub fn client_secret(&self) -> &ClientSecret {
        &self.secret
    }
}

impl ClientRecord for RegisteredClient {
    fn verify(&self, credentials: &ClientCredentials) -> bool {
        let id = constant_time_eq(credentials.client_id().as_bytes(), self.id.as_bytes());
        id & credentials.secret_matches(&self.secret)
    }

    fn allowed_scopes(&self) -> &[String] {
        &self.scopes
    }

    fn default_scopes(&self) -> &[String] {
        self.default_scopes.as_deref().unwrap_or(&self.scopes)
    }

    fn allows_auth_method(&self, method: ClientAuthMethod) -> bool {
        self.auth_methods
            .as_ref()
            .is_none_or(|methods| methods.contains(&method))
    }

    fn allows_client_credentials(&self) -> bool {
        self.client_credentials
    }

    fn token_lifetime(&self) -> Option<Duration> {
        self.lifetime
    }

    fn dpop_bound_access_tokens(&self) -> bool {
        self.dpop_bound
    }

    fn tls_client_auth_subject_dn(&self) -> Option<&str> {
        self.tls_subject_dn.as_deref()
    }

    fn tls_client_certificate_x5t_s256(&self) -> Option<&str> {
        self.tls_x5t_s256.as_deref()
    }

    #[cfg(feature = "jwt")]
    fn assertion_keys(&self) -> Option<&crate::server::JwkSet> {
        self.jwks.as_ref()
    }

    #[cfg(feature = "jwt")]
    fn assertion_secret(&self) -> Option<&ClientSecret> {
        Some(&self.secret).filter(|s| !s.expose_secret().is_empty())
    }
}

/// The decision to issue a token: to whom, with which scopes, for how long. Make a token
/// (opaque with [`opaque_token`], or a JWT) and render the answer with [`Grant::respond`].
#[derive(Clone, PartialEq, Eq)]
pub struct Grant {
    client_id: String,
    method: ClientAuthMethod,
    scopes: Vec<String>,
    lifetime: Duration,
    token_type: String,
    audience: Option<String>,
    resources: Vec<String>,
    dpop_jkt: Option<String>,
    x5t_s256: Option<String>,
}

impl fmt::Debug for Grant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Grant")
            .field("client_id", &self.client_id)
            .field("method", &self.method)
            .field("scopes", &self.scopes)
            .field("lifetime", &self.lifetime)
            .field("token_type", &self.token_type)
            .field("audience", &self.audience)
            .field("resources", &self.resources)
            .field("dpop_jkt", &self.dpop_jkt)
            .field("x5t_s256", &self.x5t_s256)
            .finish()
    }
}

/// Response members that [`Grant::respond_with`] sets itself and that extras may not replace.
const RESERVED_RESPONSE: &[&str] = &[
    "access_token",
    "token_type",
    "expires_in",
    "scope",
    "refresh_token",
    "error",
];

impl Grant {
    /// The client the token is for.
    #[must_use]
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// The method the client authenticated with.
    #[must_use]
    pub fn auth_method(&self) -> ClientAuthMethod {
        self.method
    }

    /// The granted scopes, in the order requested (or the default order).
    #[must_use]
    pub fn scopes(&self) -> &[String] {
        &self.scopes
    }

    /// The granted scopes joined with spaces, or `None` when there are none.
    #[must_use]
    pub fn scope_string(&self) -> Option<String> {
        (!self.scopes.is_empty()).then(|| self.scopes.join(" "))
    }

    /// How long the token lives, in whole seconds (the `expires_in` sent).
    #[must_use]
    pub fn lifetime(&self) -> Duration {
        Duration::from_secs(self.lifetime.as_secs())
    }

    /// When a token issued at `now` expires.
    #[must_use]
    pub fn expires_at(&self, now: SystemTime) -> SystemTime {
        now.checked_add(self.lifetime()).unwrap_or(now)
    }

    /// The token type (`Bearer` unless the endpoint says otherwise).
    #[must_use]
    pub fn token_type(&self) -> &str {
        &self.token_type
    }

    /// The requested `audience`, if any.
    #[must_use]
    pub fn audience(&self) -> Option<&str> {
        self.audience.as_deref()
    }

    /// The requested resource indicators (RFC 8707), if any.
    #[must_use]
    pub fn resources(&self) -> &[String] {
        &self.resources
    }

    /// Binds the token to a DPoP key (RFC 9449 §5): `token_type` becomes `DPoP`, and
    /// [`Grant::dpop_jkt`] is the thumbprint to put in the token's `cnf.jkt` (a JWT's
    /// claim, or the introspection answer of an opaque token).
    #[cfg(feature = "jwt")]
    #[must_use]
    pub fn bind_dpop(mut self, proof: &crate::server::VerifiedProof) -> Self {
        self.token_type = "DPoP".to_owned();
        self.dpop_jkt = Some(proof.jkt().to_owned());
        self
    }

    /// The thumbprint of the DPoP key the token is bound to (`cnf.jkt`), if it is bound.
    #[must_use]
    pub fn dpop_jkt(&self) -> Option<&str> {
        self.dpop_jkt.as_deref()
    }

    /// The thumbprint of the TLS client certificate the token is bound to (RFC 8705 §3,
    /// `cnf.x5t#S256`): that of the certificate the request carried
    /// ([`IncomingRequest::with_client_certificate`](crate::server::IncomingRequest::with_client_certificate)),
    /// whatever the client authenticated with. The token type stays `Bearer`.
    #[must_use]
    pub fn x5t_s256(&self) -> Option<&str> {
        self.x5t_s256.as_deref()
    }

    /// The RFC 6749 §5.1 success response: 200, `Content-Type: application/json`,
    /// `Cache-Control: no-store`, `Pragma: no-cache`, and `access_token`, `token_type`,
    /// `expires_in` and (when any scope was granted) `scope`.
    #[must_use]
    pub fn respond(&self, token: &AccessToken) -> http::Response<Vec<u8>> {
        self.respond_with(token, &Map::new())
    }

    /// [`Grant::respond`] with extra members after the standard ones. Extras named like a
    /// standard member (`access_token`, `token_type`, `expires_in`, `scope`, `refresh_token`,
    /// `error`) are left out.
    #[must_use]
    pub fn respond_with(
        &self,
        token: &AccessToken,
        extra: &Map<String, Value>,
    ) -> http::Response<Vec<u8>> {
        let mut body = zeroize::Zeroizing::new(String::from("{\"access_token\":"));
        body.push_str(&json_string(token.expose_secret()));
        body.push_str(",\"token_type\":");
        body.push_str(&json_string(&self.token_type));
        body.push_str(",\"expires_in\":");
        body.push_str(&self.lifetime().as_secs().to_string());
        if let Some(scope) = self.scope_string() {
            body.push_str(",\"scope\":");
            body.push_str(&json_string(&scope));
        }
        for (name, value) in extra {
            if RESERVED_RESPONSE.contains(&name.as_str()) {
                continue;
            }
            body.push(',');
            body.push_str(&json_string(name));
            body.push(':');
            body.push_str(&value.to_string());
        }
        body.push('}');
        json_response(StatusCode::OK, body.as_bytes().to_vec())
    }
}

/// An opaque access token made from 32 bytes of caller-supplied randomness: 43 URL-safe
/// base64 characters, valid RFC 6750 `b64token` syntax. The core has no RNG: draw the bytes
/// from the operating system (for example with the `getrandom` crate).
///
/// ```
/// use client_credentials::server::opaque_token;
/// let token = opaque_token(&[0xAB; 32]);
/// assert_eq!(token.expose_secret().len(), 43);
/// ```
#[must_use]
pub fn opaque_token(entropy: &[u8; 32]) -> AccessToken {
    AccessToken::new(URL_SAFE_NO_PAD.encode(entropy))
}

/// A placeholder compared against when no client matched, so that an unknown client id takes
/// about as long to refuse as a wrong secret.
const DUMMY: &[u8] = b"client-credentials-dummy-secret-for-timing";

impl TokenEndpoint {
    /// Checks `credentials` against the client record found for their id (`None` when the
    /// lookup found nothing).
    ///
    /// The assertion methods cannot be checked here, without the time and a replay cache:
    /// they are refused with [`AssertionRejection::NeedsVerifier`]; use
    /// [`TokenEndpoint::authenticate_at`] (feature `jwt`).
    ///
    /// # Errors
    /// `invalid_client` when there is no such client, the secret does not match, or the
    /// client may not use the method it used.
    pub fn authenticate<C: ClientRecord + ?Sized>(
        &self,
        credentials: &ClientCredentials,
        client: Option<&C>,
    ) -> Result<(), EndpointError> {
        if credentials.method().is_assertion() {
            return Err(EndpointError::invalid_client(
                Rejection::InvalidAssertion(AssertionRejection::NeedsVerifier),
                self.challenge_realm(credentials),
            ));
        }
        if credentials.method().is_tls() {
            return self.authenticate_tls(credentials, client);
        }
        let realm = self
            .accepts(ClientAuthMethod::ClientSecretBasic)
            .then(|| self.realm());
        // The challenge is owed whenever the client used Basic.
        let realm = if credentials.method() == ClientAuthMethod::ClientSecretBasic {
            Some(self.realm())
        } else {
            realm
        };
        let Some(client) = client else {
            let _ = constant_time_eq(credentials.secret().expose_secret().as_bytes(), DUMMY);
            return Err(EndpointError::invalid_client(
                Rejection::UnknownClient,
                realm,
            ));
        };
        if !client.verify(credentials) {
            return Err(EndpointError::invalid_client(Rejection::WrongSecret, realm));
        }
        if !client.allows_auth_method(credentials.method()) {
            return Err(EndpointError::invalid_client(
                Rejection::AuthMethodNotAllowedForClient(credentials.method()),
                realm,
            ));
        }
        Ok(())
    }

    /// Decides a parsed request against the client record found for
    /// [`IncomingRequest::client_id`] (`None` when the lookup found nothing).
    ///
    /// # Errors
    /// `invalid_client` as [`TokenEndpoint::authenticate`]; `unauthorized_client` when the
    /// client may not use this grant; `invalid_scope` when a scope is not registered or not
    /// allowed for the client, or when none was named and the endpoint requires one.
    pub fn authorize<C: ClientRecord + ?Sized>(
        &self,
        request: &IncomingRequest,
        client: Option<&C>,
    ) -> Result<Grant, EndpointError> {
        self.authenticate(request.credentials(), client)?;
        self.grant(request, client)
    }

    /// The TLS method `client` registered for, among those the endpoint accepts:
    /// `tls_client_auth` with a subject, else `self_signed_tls_client_auth` with a
    /// thumbprint.
    fn tls_method<C: ClientRecord + ?Sized>(&self, client: &C) -> Option<ClientAuthMethod> {
        if client.tls_client_auth_subject_dn().is_some()
            && self.accepts(ClientAuthMethod::TlsClientAuth)
        {
            Some(ClientAuthMethod::TlsClientAuth)
        } else if client.tls_client_certificate_x5t_s256().is_some()
            && self.accepts(ClientAuthMethod::SelfSignedTlsClientAuth)
        {
            Some(ClientAuthMethod::SelfSignedTlsClientAuth)
        } else {
            None
        }
    }

    /// RFC 8705 §2: the client sent only its id; the attached certificate must be its own.
    fn authenticate_tls<C: ClientRecord + ?Sized>(
        &self,
        credentials: &ClientCredentials,
        client: Option<&C>,
    ) -> Result<(), EndpointError> {
        let realm = self.challenge_realm(credentials);
        let Some(client) = client else {
            return Err(EndpointError::invalid_client(
                Rejection::UnknownClient,
                realm,
            ));
        };
        let Some(certificate) = credentials.certificate() else {
            return Err(EndpointError::invalid_client(
                Rejection::NoClientCertificate,
                realm,
            ));
        };
        let matches = match self.tls_method(client) {
            Some(ClientAuthMethod::TlsClientAuth) => {
                certificate.subject_dn().is_some()
                    && certificate.subject_dn() == client.tls_client_auth_subject_dn()
            }
            Some(ClientAuthMethod::SelfSignedTlsClientAuth) => {
                client.tls_client_certificate_x5t_s256().is_some_and(|x5t| {
                    constant_time_eq(x5t.as_bytes(), certificate.x5t_s256().as_bytes())
                })
            }
            _ => false,
        };
        if !matches {
            return Err(EndpointError::invalid_client(
                Rejection::CertificateMismatch,
                realm,
            ));
        }
        let method = self.tls_method(client).unwrap_or(credentials.method());
        if !client.allows_auth_method(method) {
            return Err(EndpointError::invalid_client(
                Rejection::AuthMethodNotAllowedForClient(method),
                realm,
            ));
        }
        Ok(())
    }

    /// The realm of the Basic challenge owed with an `invalid_client` answer: always when the
    /// client used Basic, otherwise when the endpoint accepts Basic.
    fn challenge_realm(&self, credentials: &ClientCredentials) -> Option<&str> {
        (credentials.method() == ClientAuthMethod::ClientSecretBasic
            || self.accepts(ClientAuthMethod::ClientSecretBasic))
        .then(|| self.realm())
    }

    /// [`TokenEndpoint::authenticate`] for every method, assertions included (feature
    /// `jwt`): a `private_key_jwt` or `client_secret_jwt` assertion is verified at `now` by
    /// `verifier` (see [`AssertionVerifier`](crate::server::AssertionVerifier)) with the
    /// client's [`ClientRecord::assertion_keys`] or [`ClientRecord::assertion_secret`], and
    /// its `jti` is remembered. The secret methods ignore `now` and `verifier`.
    ///
    /// # Errors
    /// As [`TokenEndpoint::authenticate`]; `invalid_client` with
    /// [`Rejection::InvalidAssertion`] when the assertion is refused.
    #[cfg(feature = "jwt")]
    pub fn authenticate_at<C: ClientRecord + ?Sized>(
        &self,
        now: SystemTime,
        credentials: &ClientCredentials,
        client: Option<&C>,
        verifier: &mut crate::server::AssertionVerifier,
    ) -> Result<(), EndpointError> {
        let method = credentials.method();
        let Some(assertion) = credentials.assertion().filter(|_| method.is_assertion()) else {
            return self.authenticate(credentials, client);
        };
        let realm = self.challenge_realm(credentials);
        let Some(client) = client else {
            return Err(EndpointError::invalid_client(
                Rejection::UnknownClient,
                realm,
            ));
        };
        verifier
            .verify(
                now,
                credentials.client_id(),
                method,
                assertion.expose_secret(),
                client.assertion_keys(),
                client.assertion_secret(),
            )
            .map_err(|why| {
                EndpointError::invalid_client(Rejection::InvalidAssertion(why), realm)
            })?;
        if !client.allows_auth_method(method) {
            return Err(EndpointError::invalid_client(
                Rejection::AuthMethodNotAllowedForClient(method),
                realm,
            ));
        }
        Ok(())
    }

    /// [`TokenEndpoint::authorize`] for every method, assertions included (feature `jwt`):
    /// the client authenticates with [`TokenEndpoint::authenticate_at`].
    ///
    /// ```
    /// use std::time::{Duration, UNIX_EPOCH};
    /// use client_credentials::{AssertionKey, Config};
    /// use client_credentials::server::{AssertionVerifier, JwkSet, RegisteredClient, TokenEndpoint};
    ///
    /// # let pem = include_str!("../../tests/keys/ec-p256.pem");
    /// let key = AssertionKey::from_pem(pem)?.with_key_id("k1");
    /// let jwks = JwkSet::from_value(&serde_json::json!({ "keys": [key.public_jwk()] }))?;
    /// let clients = [RegisteredClient::with_jwks("signer", jwks).scopes(["read"])];
    /// let endpoint = TokenEndpoint::builder().scope("read", "Read").build()?;
    /// let mut verifier = AssertionVerifier::new("https://auth.example.com/token");
    ///
    /// // The client side: a signed assertion in the request body.
    /// let config = Config::builder()
    ///     .token_url("https://auth.example.com/token")
    ///     .client_id("signer")
    ///     .private_key(key)
    ///     .build()?;
    /// let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    /// let request = config.default_request().to_http_at(now, 42);
    ///
    /// let incoming = endpoint.parse_parts(request.method(), request.headers(), request.body())?;
    /// let client = clients.iter().find(|c| c.client_id() == incoming.client_id());
    /// let grant = endpoint.authorize_at(now, &incoming, client, &mut verifier)?;
    /// assert_eq!(grant.scopes(), ["read"]);
    /// // The same assertion again is a replay.
    /// let again = endpoint.authorize_at(now, &incoming, client, &mut verifier).unwrap_err();
    /// assert_eq!(again.code().as_str(), "invalid_client");
    /// # Ok::<_, Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// As [`TokenEndpoint::authorize`] and [`TokenEndpoint::authenticate_at`].
    #[cfg(feature = "jwt")]
    pub fn authorize_at<C: ClientRecord + ?Sized>(
        &self,
        now: SystemTime,
        request: &IncomingRequest,
        client: Option<&C>,
        verifier: &mut crate::server::AssertionVerifier,
    ) -> Result<Grant, EndpointError> {
        self.authenticate_at(now, request.credentials(), client, verifier)?;
        self.grant(request, client)
    }

    /// The grant decision for an authenticated client.
    fn grant<C: ClientRecord + ?Sized>(
        &self,
        request: &IncomingRequest,
        client: Option<&C>,
    ) -> Result<Grant, EndpointError> {
        let Some(client) = client else {
            return Err(EndpointError::server_error());
        };
        if !client.allows_client_credentials() {
            return Err(EndpointError::rejected(
                ErrorCode::UnauthorizedClient,
                Rejection::GrantNotAllowedForClient,
                "the client may not use the client_credentials grant",
            ));
        }
        let allowed = client.allowed_scopes();
        let scopes = match request.scopes() {
            Some(requested) => {
                for s in requested {
                    if !self.has_scope(s) {
                        return Err(EndpointError::rejected(
                            ErrorCode::InvalidScope,
                            Rejection::UnknownScope(crate::response::bounded(s, 64)),
                            "unknown scope",
                        )
                        .with_description(format!(
                            "unknown scope {}",
                            crate::response::bounded(s, 64)
                        )));
                    }
                    if !allowed.contains(s) {
                        return Err(EndpointError::rejected(
                            ErrorCode::InvalidScope,
                            Rejection::ScopeNotAllowed(crate::response::bounded(s, 64)),
                            "scope not allowed",
                        )
                        .with_description(format!(
                            "scope {} is not allowed for this client",
                            crate::response::bounded(s, 64)
                        )));
                    }
                }
                requested.to_vec()
            }
            None => match self.default_scopes() {
                DefaultScopes::ClientDefaults => client
                    .default_scopes()
                    .iter()
                    .filter(|s| self.has_scope(s) && allowed.contains(s))
                    .cloned()
                    .collect(),
                DefaultScopes::Empty => Vec::new(),
                DefaultScopes::Reject => {
                    return Err(EndpointError::rejected(
                        ErrorCode::InvalidScope,
                        Rejection::ScopeRequired,
                        "the request must name a scope",
                    ));
                }
            },
        };
        let method = request.credentials().method();
        let method = if method.is_tls() {
            self.tls_method(client).unwrap_or(method)
        } else {
            method
        };
        Ok(Grant {
            client_id: request.client_id().to_owned(),
            method,
            scopes,
            lifetime: client.token_lifetime().unwrap_or(self.token_lifetime()),
            token_type: self.token_type().to_owned(),
            audience: request.audience().map(str::to_owned),
            resources: request.resources().to_vec(),
            dpop_jkt: None,
            x5t_s256: request
                .credentials()
                .certificate()
                .map(|c| c.x5t_s256().to_owned()),
        })
    }

    /// The whole exchange for synchronous code: parse, look the client up with `lookup`,
    /// authorise, make the token with `issue`, and render the answer (success or error).
    /// Client assertions need the time and a replay cache, which this has not: they are
    /// refused; drive [`TokenEndpoint::authorize_at`] instead (feature `jwt`).
    ///
    /// ```
    /// use client_credentials::server::{RegisteredClient, TokenEndpoint, opaque_token};
    ///
    /// let endpoint = TokenEndpoint::builder().scope("read", "Read").build()?;
    /// let clients = [RegisteredClient::new("app", "pw").scopes(["read"])];
    /// let request = http::Request::post("/token")
    ///     .header("content-type", "application/x-www-form-urlencoded")
    ///     .body(b"grant_type=client_credentials&client_id=app&client_secret=pw".to_vec())?;
    /// let response = endpoint.handle(
    ///     &request,
    ///     |id| clients.iter().find(|c| c.client_id() == id),
    ///     |_grant| Ok(opaque_token(&[1; 32])),
    /// );
    /// assert_eq!(response.status(), 200);
    /// # Ok::<_, Box<dyn std::error::Error>>(())
    /// ```
    pub fn handle<B, C, L, I>(
        &self,
        request: &http::Request<B>,
        lookup: L,
        issue: I,
    ) -> http::Response<Vec<u8>>
    where
        B: AsRef<[u8]>,
        C: ClientRecord,
        L: FnOnce(&str) -> Option<C>,
        I: FnOnce(&Grant) -> Result<AccessToken, EndpointError>,
    {
        let result = self.parse(request).and_then(|incoming| {
            let client = lookup(incoming.client_id());
            let grant = self.authorize(&incoming, client.as_ref())?;
            let token = issue(&grant)?;
            Ok(grant.respond(&token))
        });
        result.unwrap_or_else(EndpointError::into_response)
    }
}
