//! An OAuth 2.0 authorization server that runs inside your process, on `127.0.0.1`, for
//! developing and testing client credentials clients: no Docker, no account, nothing to
//! install.
//!
//! ```
//! use client_credentials::embedded::{EmbeddedServer, Fault, Route};
//!
//! let server = EmbeddedServer::builder()
//!     .client("demo-client", "demo-secret", ["read"])
//!     .scope("read", "Read things")
//!     .start()?;
//! println!("token endpoint: {}", server.token_url());
//!
//! // Point any OAuth client at `server.token_url()`; here, a hand-made request.
//! let answer = http_post(
//!     &server,
//!     "authorization: Basic ZGVtby1jbGllbnQ6ZGVtby1zZWNyZXQ=\r\n\
//!      content-type: application/x-www-form-urlencoded\r\n",
//!     "grant_type=client_credentials",
//! )?;
//! assert!(answer.starts_with("HTTP/1.1 200"));
//! assert_eq!(server.requests(Route::Token), 1);
//!
//! // Faults for the next requests: one 503, then normal service.
//! server.inject(Fault::status(503).times(1));
//! # let answer = http_post(&server, "content-type: application/x-www-form-urlencoded\r\n", "")?;
//! # assert!(answer.starts_with("HTTP/1.1 503"));
//! # fn http_post(server: &EmbeddedServer, headers: &str, body: &str) -> std::io::Result<String> {
//! #     use std::io::{Read, Write};
//! #     let mut s = std::net::TcpStream::connect(server.addr())?;
//! #     write!(s, "POST /token HTTP/1.1\r\nhost: {}\r\nconnection: close\r\n{headers}content-length: {}\r\n\r\n{body}", server.addr(), body.len())?;
//! #     let mut out = String::new();
//! #     s.read_to_string(&mut out)?;
//! #     Ok(out)
//! # }
//! # Ok::<_, Box<dyn std::error::Error>>(())
//! ```
//!
//! The server stops when the [`EmbeddedServer`] is dropped.
//!
//! # What it serves
//!
//! | Path | What |
//! | --- | --- |
//! | `/token` (configurable) | The token endpoint (RFC 6749 §4.4): `client_secret_basic`, `client_secret_post`, `private_key_jwt` and `client_secret_jwt` (see [Client assertions](#client-assertions)), form and JSON bodies, every RFC 6749 §5.2 error. Built on the sans-IO [`client_credentials::server`](client_credentials_core::server). |
//! | `/.well-known/oauth-authorization-server` | RFC 8414 metadata. |
//! | `/jwks.json` | The signing key, when tokens are JWTs ([`TokenFormat::Jwt`]). |
//! | `/introspect` | RFC 7662 introspection of the tokens it issued (any registered client may ask). |
//! | `/revoke` | RFC 7009 revocation of a client's own tokens. |
//! | `/resource` | A protected demo resource: 200 with the token's client and scopes for a valid bearer token, or a DPoP-bound token with its proof (`Authorization: DPoP`), or a certificate-bound token over its certificate ([Mutual TLS](#mutual-tls)), 401 with `WWW-Authenticate: Bearer …` or `DPoP …` otherwise. |
//!
//! Access tokens are opaque (43 random URL-safe characters) by default, or RFC 9068 JWTs
//! ([`EmbeddedServerBuilder::jwt_access_tokens`]) signed with a key made at start: a 2048-bit
//! RSA key (`alg: RS256`, the algorithm RFC 9068 §4 requires every resource server to
//! support) unless [`EmbeddedServerBuilder::jwt_algorithm`] picks Ed25519 (`alg: EdDSA`).
//! Tokens live in memory.
//!
//! ```
//! use client_credentials::embedded::{EmbeddedServer, JwtAlgorithm};
//!
//! let server = EmbeddedServer::builder()
//!     .client("demo-client", "demo-secret", ["read"])
//!     .jwt_access_tokens()
//!     .start()?;
//! assert_eq!(server.jwt_algorithm(), Some(JwtAlgorithm::Rs256));
//! let jwks = server.jwks().unwrap_or_default();
//! assert_eq!(jwks["keys"][0]["kty"], "RSA");
//! # Ok::<_, client_credentials_server::StartError>(())
//! ```
//!
//! # Client assertions
//!
//! A client can authenticate with a signed JWT instead of a secret on the wire:
//! `private_key_jwt` (RS256, PS256, ES256 or EdDSA, verified with the public keys it
//! registered, [`RegisteredClient::with_jwks`]) or `client_secret_jwt` (HS256 keyed by its
//! secret, at least 32 bytes). The server checks the signature (and the `kid`, when the
//! header has one), `iss` = `sub` = the client id, `aud` (the token endpoint URL or the
//! issuer), `exp`, `iat`, `nbf` and a lifetime of at most 5 minutes, with 30 s of leeway,
//! and refuses a `jti` it has seen before the assertion expired. Every refusal is
//! `invalid_client` (401); the log at `debug` level says why
//! ([`AssertionRejection`](client_credentials_core::server::AssertionRejection)). The
//! metadata lists the methods and `token_endpoint_auth_signing_alg_values_supported`.
//!
//! ```
//! use std::time::SystemTime;
//! use client_credentials::{AssertionKey, Config};
//! use client_credentials::embedded::{EmbeddedServer, RegisteredClient};
//! use client_credentials::server::JwkSet;
//!
//! # let pem = include_str!("../../client-credentials-core/tests/keys/ec-p256.pem");
//! let key = AssertionKey::from_pem(pem)?.with_key_id("2026-12");
//! let jwks = JwkSet::from_value(&serde_json::json!({ "keys": [key.public_jwk()] }))?;
//! let server = EmbeddedServer::builder()
//!     .registered_client(RegisteredClient::with_jwks("signer", jwks).scopes(["read"]))
//!     .start()?;
//!
//! // The client signs an assertion for each request (the `ureq` and `reqwest` clients do it
//! // for you); here the core builds the request.
//! let config = Config::builder()
//!     .token_url(server.token_url())
//!     .client_id("signer")
//!     .private_key(key)
//!     .build()?;
//! let request = config.default_request().to_http_at(SystemTime::now(), 1);
//! assert!(std::str::from_utf8(request.body())?.contains("client_assertion=eyJ"));
//! # use std::io::{Read, Write};
//! # let mut s = std::net::TcpStream::connect(server.addr())?;
//! # write!(s, "POST /token HTTP/1.1\r\nhost: {}\r\nconnection: close\r\ncontent-type: application/x-www-form-urlencoded\r\ncontent-length: {}\r\n\r\n", server.addr(), request.body().len())?;
//! # s.write_all(request.body())?;
//! # let mut answer = String::new();
//! # s.read_to_string(&mut answer)?;
//! # assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
//! # Ok::<_, Box<dyn std::error::Error>>(())
//! ```
//!
//! In a configuration file, a client's keys are its `jwks` or `jwks_file`
//! ([`EmbeddedServerBuilder::toml`]).
//!
//! # DPoP
//!
//! A token request with a `DPoP` proof (RFC 9449) gets a DPoP-bound token:
//! `token_type: DPoP`, and `cnf.jkt`, the thumbprint of the proof's key, in a JWT access
//! token and in the introspection answer. Proofs are ES256 or EdDSA, at most 60 s old, and
//! each is good once. A client registered with
//! [`RegisteredClient::dpop_bound_access_tokens`] that sends no proof gets `400
//! invalid_grant`; [`EmbeddedServerBuilder::dpop_require_nonce`] makes the token endpoint
//! demand the server's nonce (`400 use_dpop_nonce` with `DPoP-Nonce`), as oidc-provider's
//! `requireNonce` does. The demo resource takes a bound token as `Authorization: DPoP` with
//! a proof for the request (its `ath` included) and refuses it as a bearer token, without a
//! proof, with another key or with a replayed proof (401 `WWW-Authenticate: DPoP …`);
//! [`EmbeddedServerBuilder::dpop_resource_nonce`] makes it demand the nonce too, and
//! [`Counts::resource_nonce_challenges`] counts those answers.
//!
//! # Mutual TLS
//!
//! [`EmbeddedServerBuilder::tls`] serves HTTPS (the URLs say `https://127.0.0.1:<port>`)
//! and asks each client for a certificate without requiring one (RFC 8705). Clients
//! registered with [`RegisteredClient::tls_client_auth`] (a subject, the chain verified
//! against [`EmbeddedServerBuilder::client_ca`]) or
//! [`RegisteredClient::self_signed_tls_client_auth`] (a thumbprint) send only their
//! `client_id`; a missing or wrong certificate is `401 invalid_client`. A token issued on a
//! connection that presented a certificate carries `cnf.x5t#S256` (in a JWT and in the
//! introspection answer; `token_type` stays `Bearer`), and the demo resource refuses it
//! (`401 invalid_token`) over a connection without that certificate. The metadata then
//! lists the two methods, `tls_client_certificate_bound_access_tokens` and
//! `mtls_endpoint_aliases`.
//!
//! ```
//! use client_credentials::embedded::{EmbeddedServer, RegisteredClient};
//!
//! # let (cert, key, ca) = (
//! #     include_str!("../../../tests/interop/certs/server.pem"),
//! #     include_str!("../../../tests/interop/certs/server.key"),
//! #     include_str!("../../../tests/interop/certs/ca.pem"),
//! # );
//! let server = EmbeddedServer::builder()
//!     .tls(cert, key) // for IP:127.0.0.1
//!     .client_ca(ca)
//!     .registered_client(RegisteredClient::tls_client_auth("svc", "CN=mtls-client"))
//!     .start()?;
//! assert!(server.token_url().starts_with("https://127.0.0.1:"));
//! # Ok::<_, client_credentials_server::StartError>(())
//! ```
//!
//! # Tests and faults
//!
//! [`EmbeddedServer::requests`] and [`EmbeddedServer::counts`] tell how many requests each
//! [`Route`] received; [`EmbeddedServer::inject`] makes the next requests (or all of them,
//! until [`EmbeddedServer::clear_faults`]) wait, fail with a status, or answer 429 with
//! `Retry-After` ([`Fault`]). [`EmbeddedServer::revoke_all`] makes every issued token
//! invalid, to test what a client does when a resource server rejects its token.
//!
//! # Configuration files
//!
//! Clients and scopes can come from code or from a TOML or JSON file
//! ([`EmbeddedServerBuilder::config_file`]).
//!
//! # Safety
//!
//! It binds `127.0.0.1` only, never another address. Client secrets and tokens do not appear
//! in its `Debug` output or its logs (`tracing`, at `debug` level).
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod config;
mod fault;
mod jwt;
mod routes;
mod tls;

use std::collections::HashMap;
use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use client_credentials_core::server::{
    AssertionVerifier, ClientRecord as _, DpopVerifier, EndpointConfigError, TokenEndpoint,
    TokenEndpointBuilder,
};
use tokio::sync::watch;

/// The sans-IO token endpoint this server is built on (`client_credentials::server`).
pub use client_credentials_core::server::{self as endpoint};
pub use client_credentials_core::server::{ClientAuthMethod, RegisteredClient};
pub use config::ConfigFileError;
pub use fault::{Counts, Fault, Route};
pub use jwt::JwtAlgorithm;
pub use tls::TlsError;

use crate::fault::{Counters, Faults};
use crate::jwt::JwtSigner;
use crate::routes::{
    INTROSPECTION_PATH, JWKS_PATH, METADATA_PATH, RESOURCE_PATH, REVOCATION_PATH, Shared, lock,
};

/// How long a stopping server waits for requests in flight (delayed ones included) before it
/// drops them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);

/// The kind of access token issued.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TokenFormat {
    /// 32 random bytes, URL-safe base64 (43 characters). The default.
    #[default]
    Opaque,
    /// An RFC 9068 JWT (`typ: at+jwt`) with `iss`, `sub`, `aud`, `exp`, `iat`, `jti`,
    /// `client_id` and `scope`, signed with RS256 by default or EdDSA
    /// ([`EmbeddedServerBuilder::jwt_algorithm`]). The key is made at start and published
    /// at `/jwks.json`. `aud` is the requested resource or audience, or the demo resource.
    Jwt,
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The endpoint configuration was refused.
    #[error("invalid token endpoint configuration: {0}")]
    Endpoint(#[from] EndpointConfigError),
    /// The token path holds characters other than letters, digits and `-._~/`, or collides
    /// with another route.
    #[error(
        "token path {0:?} must be made of letters, digits and -._~/ and not collide with the other routes"
    )]
    TokenPath(String),
    /// The port could not be bound on 127.0.0.1.
    #[error("cannot listen on 127.0.0.1:{port}: {source}")]
    Bind {
        /// The port asked for (0: any).
        port: u16,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The runtime or its thread could not be made.
    #[error("cannot start the server's runtime: {0}")]
    Runtime(#[source] std::io::Error),
    /// The operating system's random number generator failed.
    #[error("the operating system's random number generator failed")]
    Random,
    /// The JWT signing key could not be made (a failure inside the cryptographic library).
    #[error("cannot make the JWT signing key")]
    SigningKey,
    /// The TLS certificate, key or client CA was refused
    /// ([`EmbeddedServerBuilder::tls`], [`EmbeddedServerBuilder::client_ca`]).
    #[error("invalid TLS configuration: {0}")]
    Tls(#[from] TlsError),
}

/// A registered client as [`EmbeddedServer::clients`] and [`EmbeddedServerBuilder::clients`]
/// list it: never its secret.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct ClientSummary {
    /// The client id.
    pub id: String,
    /// The scopes it may be granted.
    pub scopes: Vec<String>,
    /// The authentication methods it may use: those the token endpoint accepts that the
    /// client is not barred from, Basic first.
    pub auth_methods: Vec<ClientAuthMethod>,
}

impl ClientSummary {
    fn new(client: &RegisteredClient, endpoint_methods: &[ClientAuthMethod]) -> Self {
        Self {
            id: client.client_id().to_owned(),
            scopes: client.allowed_scopes().to_vec(),
            auth_methods: ClientAuthMethod::ALL
                .into_iter()
                .chain(ClientAuthMethod::TLS)
                .filter(|m| {
                    endpoint_methods.contains(m)
                        && client.allows_auth_method(*m)
                        && has_credential(client, *m)
                })
                .collect(),
        }
    }
}

/// Whether `client` has what `method` needs: a secret (a long enough one for HS256),
/// registered keys for `private_key_jwt`, a subject or a thumbprint for the TLS methods.
fn has_credential(client: &RegisteredClient, method: ClientAuthMethod) -> bool {
    match method {
        ClientAuthMethod::TlsClientAuth => client.tls_client_auth_subject_dn().is_some(),
        ClientAuthMethod::SelfSignedTlsClientAuth => {
            client.tls_client_certificate_x5t_s256().is_some()
        }
        ClientAuthMethod::PrivateKeyJwt => client.assertion_keys().is_some(),
        ClientAuthMethod::ClientSecretJwt => client
            .assertion_secret()
            .is_some_and(|s| s.expose_secret().len() >= 32),
        _ => !client.client_secret().expose_secret().is_empty(),
    }
}

/// Builder for [`EmbeddedServer`]. See the [crate docs](crate) for an example.
#[derive(Clone, Debug)]
pub struct EmbeddedServerBuilder {
    endpoint: TokenEndpointBuilder,
    scopes: Vec<(String, String)>,
    clients: Vec<RegisteredClient>,
    port: u16,
    format: TokenFormat,
    algorithm: JwtAlgorithm,
    /// The endpoint's methods, kept for [`EmbeddedServerBuilder::clients`] (the endpoint
    /// builder does not tell).
    auth_methods: Vec<ClientAuthMethod>,
    /// Whether [`EmbeddedServerBuilder::auth_methods`] chose them (else TLS adds its two).
    auth_methods_chosen: bool,
    tls: Option<tls::TlsPem>,
    client_ca: Option<Vec<u8>>,
    resource_scope: Option<String>,
    token_path: String,
    dpop_require_nonce: bool,
    dpop_resource_nonce: bool,
}

impl Default for EmbeddedServerBuilder {
    fn default() -> Self {
        Self {
            endpoint: TokenEndpoint::builder(),
            scopes: Vec::new(),
            clients: Vec::new(),
            port: 0,
            format: TokenFormat::Opaque,
            algorithm: JwtAlgorithm::default(),
            auth_methods: ClientAuthMethod::ALL.to_vec(),
            auth_methods_chosen: false,
            tls: None,
            client_ca: None,
            resource_scope: None,
            token_path: "/token".to_owned(),
            dpop_require_nonce: false,
            dpop_resource_nonce: false,
        }
    }
}

impl EmbeddedServerBuilder {
    /// Registers a client with its secret and allowed scopes. Scopes not registered with
    /// [`EmbeddedServerBuilder::scope`] are registered with their name as description. A
    /// client with the same id replaces an earlier one.
    #[must_use]
    pub fn client<I, S>(self, id: impl Into<String>, secret: impl Into<String>, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.registered_client(RegisteredClient::new(id.into(), secret.into()).scopes(scopes))
    }

    /// Registers a client described in full (auth methods, lifetime, default scopes…).
    #[must_use]
    pub fn registered_client(mut self, client: RegisteredClient) -> Self {
        self.clients.retain(|c| c.client_id() != client.client_id());
        self.clients.push(client);
        self
    }

    /// Registers a scope with its description (shown in metadata and OpenAPI).
    #[must_use]
    pub fn scope(mut self, name: impl Into<String>, description: impl Into<String>) -> Self {
        let name = name.into();
        self.scopes.retain(|(n, _)| *n != name);
        self.scopes.push((name, description.into()));
        self
    }

    /// The access token lifetime (default one hour; at least one second). Short lifetimes
    /// (`Duration::from_secs(2)`) test refresh.
    #[must_use]
    pub fn token_lifetime(mut self, lifetime: Duration) -> Self {
        self.endpoint = self.endpoint.token_lifetime(lifetime);
        self
    }

    /// Opaque or JWT access tokens (default opaque).
    #[must_use]
    pub fn token_format(mut self, format: TokenFormat) -> Self {
        self.format = format;
        self
    }

    /// Shorthand for [`TokenFormat::Jwt`].
    #[must_use]
    pub fn jwt_access_tokens(self) -> Self {
        self.token_format(TokenFormat::Jwt)
    }

    /// The algorithm that signs JWT access tokens (default [`JwtAlgorithm::Rs256`]). It only
    /// matters with [`TokenFormat::Jwt`]: it does not turn JWTs on.
    ///
    /// ```
    /// use client_credentials::embedded::{EmbeddedServer, JwtAlgorithm};
    ///
    /// let server = EmbeddedServer::builder()
    ///     .jwt_access_tokens()
    ///     .jwt_algorithm(JwtAlgorithm::EdDsa)
    ///     .start()?;
    /// assert_eq!(server.jwks().unwrap_or_default()["keys"][0]["alg"], "EdDSA");
    /// # Ok::<_, client_credentials_server::StartError>(())
    /// ```
    #[must_use]
    pub fn jwt_algorithm(mut self, algorithm: JwtAlgorithm) -> Self {
        self.algorithm = algorithm;
        self
    }

    /// The port to listen on, on 127.0.0.1 (default 0: any free port).
    #[must_use]
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// The token endpoint's path (default `/token`).
    #[must_use]
    pub fn token_path(mut self, path: impl Into<String>) -> Self {
        self.token_path = path.into();
        self
    }

    /// The accepted client authentication methods (default all four: `client_secret_basic`,
    /// `client_secret_post`, `private_key_jwt` and `client_secret_jwt`, and with
    /// [`tls`](Self::tls) also `tls_client_auth` and `self_signed_tls_client_auth`).
    #[must_use]
    pub fn auth_methods(mut self, methods: impl IntoIterator<Item = ClientAuthMethod>) -> Self {
        self.auth_methods_chosen = true;
        self.auth_methods = methods.into_iter().collect();
        self.endpoint = self
            .endpoint
            .auth_methods(self.auth_methods.iter().copied());
        self
    }

    /// Whether JSON token request bodies are accepted (default `true`).
    #[must_use]
    pub fn accept_json(mut self, accept: bool) -> Self {
        self.endpoint = self.endpoint.accept_json(accept);
        self
    }

    /// Whether Basic credentials sent without the RFC 6749 §2.3.1 form-urlencoding are
    /// accepted too (default `false`: the server is strict, as certified servers are).
    #[must_use]
    pub fn accept_unencoded_basic(mut self, accept: bool) -> Self {
        self.endpoint = self.endpoint.accept_unencoded_basic(accept);
        self
    }

    /// A scope the demo resource requires (403 `insufficient_scope` without it). Default:
    /// none, any valid token will do.
    #[must_use]
    pub fn resource_scope(mut self, scope: impl Into<String>) -> Self {
        self.resource_scope = Some(scope.into());
        self
    }

    /// Whether DPoP proofs at the token endpoint must carry the server's nonce (RFC 9449
    /// §8; default `false`): a proof without it, or with a stale one, is answered `400
    /// use_dpop_nonce` with the nonce in `DPoP-Nonce`, as oidc-provider's `requireNonce`
    /// does. The nonce is drawn at start ([`EmbeddedServer::dpop_nonce`]).
    #[must_use]
    pub fn dpop_require_nonce(mut self, required: bool) -> Self {
        self.dpop_require_nonce = required;
        self
    }

    /// Whether DPoP proofs at the demo resource must carry the server's nonce (RFC 9449
    /// §9; default `false`): a proof without it is answered `401 WWW-Authenticate: DPoP
    /// error="use_dpop_nonce"` with `DPoP-Nonce`, and counted
    /// ([`Counts::resource_nonce_challenges`]).
    #[must_use]
    pub fn dpop_resource_nonce(mut self, required: bool) -> Self {
        self.dpop_resource_nonce = required;
        self
    }

    /// Serves HTTPS instead of HTTP, with this certificate chain (PEM, leaf first) and its
    /// private key (PEM: PKCS#8, PKCS#1 or SEC1): the URLs then start with
    /// `https://127.0.0.1:<port>`, so the certificate should name `IP:127.0.0.1`. The
    /// server asks every client for a certificate and requires none: clients with secrets
    /// work as before, and clients registered with
    /// [`RegisteredClient::tls_client_auth`] (chain verified against
    /// [`client_ca`](Self::client_ca)) or [`RegisteredClient::self_signed_tls_client_auth`]
    /// authenticate with theirs (RFC 8705 §2). A token issued on a connection that
    /// presented a certificate is bound to it (`cnf.x5t#S256`, RFC 8705 §3), and the demo
    /// resource takes it only over a connection that presents the same certificate.
    ///
    /// The PEM is checked by [`start`](Self::start) ([`StartError::Tls`]); the key never
    /// appears in `Debug` output or errors.
    #[must_use]
    pub fn tls(mut self, cert_chain_pem: impl AsRef<[u8]>, key_pem: impl AsRef<[u8]>) -> Self {
        self.tls = Some(tls::TlsPem {
            chain: cert_chain_pem.as_ref().to_vec(),
            key: key_pem.as_ref().to_vec(),
        });
        self
    }

    /// The CA certificates (PEM) that issue the certificates of `tls_client_auth` clients
    /// (default none: only `self_signed_tls_client_auth` clients can authenticate with a
    /// certificate). Only matters with [`tls`](Self::tls).
    #[must_use]
    pub fn client_ca(mut self, ca_pem: impl AsRef<[u8]>) -> Self {
        self.client_ca = Some(ca_pem.as_ref().to_vec());
        self
    }

    /// The methods the endpoint will accept.
    fn effective_auth_methods(&self) -> Vec<ClientAuthMethod> {
        let mut methods = self.auth_methods.clone();
        if self.tls.is_some() && !self.auth_methods_chosen {
            methods.extend(ClientAuthMethod::TLS);
        }
        methods
    }

    /// The clients registered so far, in registration order (a client registered again
    /// moves to the end), without their secrets.
    #[must_use]
    pub fn clients(&self) -> Vec<ClientSummary> {
        self.clients
            .iter()
            .map(|c| ClientSummary::new(c, &self.effective_auth_methods()))
            .collect()
    }

    /// The scopes the server will register, as `(name, description)`: those given to
    /// [`scope`](Self::scope) (or a configuration file) in order, then those that only
    /// clients name, described by their name.
    #[must_use]
    pub fn scopes(&self) -> Vec<(String, String)> {
        let mut scopes = self.scopes.clone();
        for client in &self.clients {
            for scope in client.allowed_scopes() {
                if !scopes.iter().any(|(name, _)| name == scope) {
                    scopes.push((scope.clone(), scope.clone()));
                }
            }
        }
        scopes
    }

    fn prepare(self) -> Result<Prepared, StartError> {
        let path_ok = self.token_path.starts_with('/')
            && self.token_path.len() > 1
            && self
                .token_path
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~/".contains(&b))
            && !self.token_path.contains("//")
            && ![
                METADATA_PATH,
                JWKS_PATH,
                INTROSPECTION_PATH,
                REVOCATION_PATH,
                RESOURCE_PATH,
            ]
            .contains(&self.token_path.trim_end_matches('/'));
        if !path_ok {
            return Err(StartError::TokenPath(self.token_path));
        }
        let scopes = self.scopes();
        let tls = match &self.tls {
            Some(pem) => Some(tls::Tls::new(pem, self.client_ca.as_deref())?),
            None => None,
        };
        let methods = self.effective_auth_methods();
        let mut endpoint = self
            .endpoint
            .auth_methods(methods)
            .token_path(self.token_path);
        for (name, description) in scopes {
            endpoint = endpoint.scope(name, description);
        }
        let endpoint = endpoint.build()?;
        let signer = match self.format {
            TokenFormat::Jwt => {
                let seed = routes::random::<32>().ok_or(StartError::Random)?;
                let kid = routes::random::<12>().ok_or(StartError::Random)?;
                let signer = JwtSigner::new(self.algorithm, &seed, &kid)
                    .map_err(|_| StartError::SigningKey)?;
                Some(signer)
            }
            TokenFormat::Opaque => None,
        };
        let clients = self
            .clients
            .into_iter()
            .map(|c| (c.client_id().to_owned(), c))
            .collect::<HashMap<_, _>>();
        let dpop_nonce = URL_SAFE_NO_PAD.encode(routes::random::<16>().ok_or(StartError::Random)?);
        Ok(Prepared {
            endpoint,
            clients,
            signer,
            format: self.format,
            resource_scope: self.resource_scope,
            port: self.port,
            dpop_nonce,
            dpop_require_nonce: self.dpop_require_nonce,
            dpop_resource_nonce: self.dpop_resource_nonce,
            tls,
        })
    }

    /// Starts the server on its own thread, with its own single-threaded tokio runtime, and
    /// returns once it listens. Works from synchronous code and from inside an async runtime
    /// alike. Dropping the handle stops the server (waiting at most a second for requests in
    /// flight).
    ///
    /// # Errors
    /// [`StartError`] when the configuration is refused or the port cannot be bound.
    pub fn start(self) -> Result<EmbeddedServer, StartError> {
        let prepared = self.prepare()?;
        let port = prepared.port;
        let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, port))
            .map_err(|source| StartError::Bind { port, source })?;
        listener
            .set_nonblocking(true)
            .map_err(|source| StartError::Bind { port, source })?;
        let addr = listener
            .local_addr()
            .map_err(|source| StartError::Bind { port, source })?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(StartError::Runtime)?;
        let (shared, acceptor) = prepared.shared(addr);
        let router = routes::router(Arc::clone(&shared));
        let (stop, stopped) = watch::channel(false);
        let thread = std::thread::Builder::new()
            .name(format!("embedded-oauth-{}", addr.port()))
            .spawn(move || {
                runtime.block_on(async move {
                    match (tokio::net::TcpListener::from_std(listener), acceptor) {
                        (Ok(listener), None) => serve(listener, router, stopped).await,
                        (Ok(listener), Some(acceptor)) => {
                            tls::serve_tls(listener, router, acceptor, stopped).await;
                        }
                        (Err(e), _) => {
                            tracing::error!(error = %e, "embedded server cannot listen");
                        }
                    }
                });
            })
            .map_err(StartError::Runtime)?;
        tracing::debug!(%addr, "embedded authorization server started");
        Ok(EmbeddedServer {
            shared,
            addr,
            stop,
            thread: Some(thread),
        })
    }

    /// Starts the server as a task on the current tokio runtime. Dropping the handle stops
    /// it (requests in flight get at most a second).
    ///
    /// # Errors
    /// [`StartError`] when the configuration is refused or the port cannot be bound.
    ///
    /// # Panics
    /// Outside a tokio runtime, as `tokio::spawn` does.
    pub async fn start_async(self) -> Result<EmbeddedServer, StartError> {
        let prepared = self.prepare()?;
        let port = prepared.port;
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, port))
            .await
            .map_err(|source| StartError::Bind { port, source })?;
        let addr = listener
            .local_addr()
            .map_err(|source| StartError::Bind { port, source })?;
        let (shared, acceptor) = prepared.shared(addr);
        let router = routes::router(Arc::clone(&shared));
        let (stop, stopped) = watch::channel(false);
        match acceptor {
            None => drop(tokio::spawn(serve(listener, router, stopped))),
            Some(acceptor) => drop(tokio::spawn(tls::serve_tls(
                listener, router, acceptor, stopped,
            ))),
        }
        tracing::debug!(%addr, "embedded authorization server started");
        Ok(EmbeddedServer {
            shared,
            addr,
            stop,
            thread: None,
        })
    }
}

struct Prepared {
    endpoint: TokenEndpoint,
    clients: HashMap<String, RegisteredClient>,
    signer: Option<JwtSigner>,
    format: TokenFormat,
    resource_scope: Option<String>,
    port: u16,
    dpop_nonce: String,
    dpop_require_nonce: bool,
    dpop_resource_nonce: bool,
    tls: Option<tls::Tls>,
}

impl Prepared {
    /// The shared state, and the TLS acceptor when the server serves HTTPS.
    fn shared(self, addr: SocketAddr) -> (Arc<Shared>, Option<tokio_rustls::TlsAcceptor>) {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        let issuer = format!("{scheme}://{addr}");
        let (acceptor, client_verifier) = match self.tls {
            Some(tls) => (Some(tls.acceptor), tls.client_verifier),
            None => (None, None),
        };
        let token_url = format!("{issuer}{}", self.endpoint.token_path());
        let shared = Arc::new(Shared {
            assertions: Mutex::new(AssertionVerifier::new(token_url).audience(issuer.clone())),
            endpoint: self.endpoint,
            clients: RwLock::new(self.clients),
            tokens: Mutex::new(HashMap::new()),
            counters: Counters::default(),
            faults: Mutex::new(Faults::default()),
            signer: self.signer,
            format: self.format,
            issuer,
            resource_scope: self.resource_scope,
            dpop: Mutex::new(DpopVerifier::new()),
            dpop_nonce: self.dpop_nonce,
            dpop_require_nonce: self.dpop_require_nonce,
            dpop_resource_nonce: self.dpop_resource_nonce,
            tls: acceptor.is_some(),
            client_verifier,
        });
        (shared, acceptor)
    }
}

/// Serves until told to stop, then gives requests in flight [`SHUTDOWN_GRACE`].
async fn serve(
    listener: tokio::net::TcpListener,
    router: axum::Router,
    stopped: watch::Receiver<bool>,
) {
    let mut graceful_signal = stopped.clone();
    let mut force_signal = stopped;
    let graceful = axum::serve(listener, router).with_graceful_shutdown(async move {
        // An error means the handle is gone: stop too.
        let _ = graceful_signal.wait_for(|stop| *stop).await;
    });
    let forced = async move {
        let _ = force_signal.wait_for(|stop| *stop).await;
        tokio::time::sleep(SHUTDOWN_GRACE).await;
    };
    tokio::select! {
        result = graceful => {
            if let Err(e) = result {
                tracing::error!(error = %e, "embedded server failed");
            }
        }
        () = forced => {}
    }
}

/// A running embedded authorization server. Dropping it stops the server.
///
/// URLs: [`token_url`](Self::token_url), [`resource_url`](Self::resource_url),
/// [`metadata_url`](Self::metadata_url), [`jwks_url`](Self::jwks_url),
/// [`introspection_url`](Self::introspection_url),
/// [`revocation_url`](Self::revocation_url). Test controls:
/// [`requests`](Self::requests), [`counts`](Self::counts), [`inject`](Self::inject),
/// [`clear_faults`](Self::clear_faults), [`revoke_all`](Self::revoke_all),
/// [`add_client`](Self::add_client), [`remove_client`](Self::remove_client). What it serves:
/// [`clients`](Self::clients), [`scopes`](Self::scopes), [`token_format`](Self::token_format),
/// [`jwt_algorithm`](Self::jwt_algorithm), [`jwks`](Self::jwks).
pub struct EmbeddedServer {
    shared: Arc<Shared>,
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    thread: Option<JoinHandle<()>>,
}

impl fmt::Debug for EmbeddedServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmbeddedServer")
            .field("addr", &self.addr)
            .field("format", &self.shared.format)
            .field("jwt_algorithm", &self.jwt_algorithm())
            .field("endpoint", &self.shared.endpoint)
            .finish_non_exhaustive()
    }
}

impl EmbeddedServer {
    /// Starts a builder.
    #[must_use]
    pub fn builder() -> EmbeddedServerBuilder {
        EmbeddedServerBuilder::default()
    }

    /// The address it listens on (always 127.0.0.1).
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The port it listens on.
    #[must_use]
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The issuer and base URL: `http://127.0.0.1:<port>`, or `https://…` with
    /// [`EmbeddedServerBuilder::tls`].
    #[must_use]
    pub fn issuer(&self) -> &str {
        &self.shared.issuer
    }

    /// `issuer` followed by `path`.
    #[must_use]
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.shared.issuer)
    }

    /// The token endpoint URL.
    #[must_use]
    pub fn token_url(&self) -> String {
        self.url(self.shared.endpoint.token_path())
    }

    /// The protected demo resource URL.
    #[must_use]
    pub fn resource_url(&self) -> String {
        self.url(RESOURCE_PATH)
    }

    /// The RFC 8414 metadata URL.
    #[must_use]
    pub fn metadata_url(&self) -> String {
        self.url(METADATA_PATH)
    }

    /// The JWKS URL (answers 404 unless tokens are JWTs).
    #[must_use]
    pub fn jwks_url(&self) -> String {
        self.url(JWKS_PATH)
    }

    /// The RFC 7662 introspection URL.
    #[must_use]
    pub fn introspection_url(&self) -> String {
        self.url(INTROSPECTION_PATH)
    }

    /// The RFC 7009 revocation URL.
    #[must_use]
    pub fn revocation_url(&self) -> String {
        self.url(REVOCATION_PATH)
    }

    /// The token endpoint's rules (scopes, methods, lifetime), for example to describe it in
    /// OpenAPI.
    #[must_use]
    pub fn endpoint(&self) -> &TokenEndpoint {
        &self.shared.endpoint
    }

    /// The token format.
    #[must_use]
    pub fn token_format(&self) -> TokenFormat {
        self.shared.format
    }

    /// The algorithm that signs access tokens, when they are JWTs.
    #[must_use]
    pub fn jwt_algorithm(&self) -> Option<JwtAlgorithm> {
        self.shared.signer.as_ref().map(JwtSigner::algorithm)
    }

    /// The JWKS (`{"keys":[…]}`, public keys only), when tokens are JWTs.
    #[must_use]
    pub fn jwks(&self) -> Option<serde_json::Value> {
        self.shared.signer.as_ref().map(JwtSigner::jwks)
    }

    /// The registered clients, sorted by id, without their secrets: those of the builder
    /// and of [`add_client`](Self::add_client), less those removed.
    #[must_use]
    pub fn clients(&self) -> Vec<ClientSummary> {
        let methods = self.shared.endpoint.auth_methods();
        let mut clients: Vec<ClientSummary> = self
            .shared
            .clients
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .map(|c| ClientSummary::new(c, methods))
            .collect();
        clients.sort_by(|a, b| a.id.cmp(&b.id));
        clients
    }

    /// The registered scopes as `(name, description)`, in registration order (see
    /// [`EmbeddedServerBuilder::scopes`]).
    #[must_use]
    pub fn scopes(&self) -> Vec<(String, String)> {
        self.shared
            .endpoint
            .scopes()
            .iter()
            .map(|s| (s.name().to_owned(), s.description().to_owned()))
            .collect()
    }

    /// The `DPoP-Nonce` the server requires when nonces are on
    /// ([`EmbeddedServerBuilder::dpop_require_nonce`],
    /// [`EmbeddedServerBuilder::dpop_resource_nonce`]): drawn at start, the same for the
    /// server's lifetime.
    #[must_use]
    pub fn dpop_nonce(&self) -> &str {
        &self.shared.dpop_nonce
    }

    /// How many requests `route` has received since start or the last
    /// [`reset_counts`](Self::reset_counts), faulted ones included.
    #[must_use]
    pub fn requests(&self, route: Route) -> u64 {
        self.shared.counters.get(route)
    }

    /// Every route's count.
    #[must_use]
    pub fn counts(&self) -> Counts {
        self.shared.counters.snapshot()
    }

    /// Sets every count to zero.
    pub fn reset_counts(&self) {
        self.shared.counters.reset();
    }

    /// Queues a fault (see [`Fault`]).
    pub fn inject(&self, fault: Fault) {
        lock(&self.shared.faults).push(fault);
    }

    /// Drops every pending fault: normal service from the next request on.
    pub fn clear_faults(&self) {
        lock(&self.shared.faults).clear();
    }

    /// How many faults are pending.
    #[must_use]
    pub fn pending_faults(&self) -> usize {
        lock(&self.shared.faults).len()
    }

    /// Forgets every issued token, as if all were revoked; returns how many were live.
    pub fn revoke_all(&self) -> usize {
        let now = SystemTime::now();
        let mut tokens = lock(&self.shared.tokens);
        let live = tokens.values().filter(|r| now < r.expires_at).count();
        tokens.clear();
        live
    }

    /// How many issued tokens are still valid.
    #[must_use]
    pub fn active_tokens(&self) -> usize {
        let now = SystemTime::now();
        lock(&self.shared.tokens)
            .values()
            .filter(|r| now < r.expires_at)
            .count()
    }

    /// Registers (or replaces) a client while running. Its scopes must be registered
    /// already: unregistered ones are refused at the token endpoint with `invalid_scope`.
    pub fn add_client(&self, client: RegisteredClient) {
        self.shared
            .clients
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(client.client_id().to_owned(), client);
    }

    /// Removes a client; its tokens stay valid until they expire. Returns whether it existed.
    pub fn remove_client(&self, id: &str) -> bool {
        self.shared
            .clients
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(id)
            .is_some()
    }

    /// Stops the server now (as dropping it does).
    pub fn shutdown(self) {
        drop(self);
    }
}

impl Drop for EmbeddedServer {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(thread) = self.thread.take() {
            // The thread ends within SHUTDOWN_GRACE of the signal.
            let _ = thread.join();
        }
    }
}
