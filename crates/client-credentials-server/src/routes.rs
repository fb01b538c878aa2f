//! The HTTP handlers.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use axum::routing::{any, get};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use client_credentials_core::server::{
    AssertionVerifier, BearerChallenge, ClientAuthMethod, ClientRequest, DpopError, DpopRequest,
    DpopVerifier, EndpointError, Grant, PresentedCertificate, RegisteredClient, TokenEndpoint,
    bearer_token, dpop_token, opaque_token,
};
use client_credentials_core::{AccessToken, ErrorCode};
use http::header::{CACHE_CONTROL, CONTENT_TYPE, PRAGMA};
use http::{HeaderValue, StatusCode, Uri};
use rustls::server::danger::ClientCertVerifier;
use serde_json::{Value, json};

use crate::TokenFormat;
use crate::fault::{Counters, Faults, Route};
use crate::jwt::JwtSigner;
use crate::tls::PeerCertificates;

pub(crate) const METADATA_PATH: &str = "/.well-known/oauth-authorization-server";
pub(crate) const JWKS_PATH: &str = "/jwks.json";
pub(crate) const INTROSPECTION_PATH: &str = "/introspect";
pub(crate) const REVOCATION_PATH: &str = "/revoke";
pub(crate) const RESOURCE_PATH: &str = "/resource";
const RESOURCE_REALM: &str = "resource";
/// Expired tokens are dropped from the store once it holds this many.
const PRUNE_AT: usize = 1024;

/// What the server remembers about a token it issued.
#[derive(Clone, Debug)]
pub(crate) struct TokenRecord {
    pub(crate) client_id: String,
    pub(crate) scopes: Vec<String>,
    pub(crate) issued_at: SystemTime,
    pub(crate) expires_at: SystemTime,
    pub(crate) jti: String,
    pub(crate) audience: Option<Value>,
    /// The thumbprint of the DPoP key the token is bound to (`cnf.jkt`), if it is.
    pub(crate) jkt: Option<String>,
    /// The thumbprint of the TLS client certificate the token is bound to
    /// (`cnf.x5t#S256`), if it is.
    pub(crate) x5t: Option<String>,
}

impl TokenRecord {
    /// The `cnf` member (RFC 7800) of a bound token: `jkt` and/or `x5t#S256`.
    fn cnf(&self) -> Option<Value> {
        cnf(self.jkt.as_deref(), self.x5t.as_deref())
    }
}

fn cnf(jkt: Option<&str>, x5t: Option<&str>) -> Option<Value> {
    let mut map = serde_json::Map::new();
    if let Some(jkt) = jkt {
        map.insert("jkt".to_owned(), Value::from(jkt));
    }
    if let Some(x5t) = x5t {
        map.insert("x5t#S256".to_owned(), Value::from(x5t));
    }
    (!map.is_empty()).then_some(Value::Object(map))
}

impl TokenRecord {
    fn active(&self, now: SystemTime) -> bool {
        now < self.expires_at
    }
}

/// State shared by the handlers and the [`crate::EmbeddedServer`] handle.
pub(crate) struct Shared {
    pub(crate) endpoint: TokenEndpoint,
    pub(crate) clients: RwLock<HashMap<String, RegisteredClient>>,
    /// Keyed by the token itself: this is a development server that keeps its tokens in memory.
    pub(crate) tokens: Mutex<HashMap<String, TokenRecord>>,
    pub(crate) counters: Counters,
    pub(crate) faults: Mutex<Faults>,
    /// Client assertions: the accepted audiences (the token endpoint URL and the issuer)
    /// and the `jti`s already used, shared by the token, introspection and revocation
    /// endpoints so that an assertion is good for one request at one of them.
    pub(crate) assertions: Mutex<AssertionVerifier>,
    pub(crate) signer: Option<JwtSigner>,
    pub(crate) format: TokenFormat,
    pub(crate) issuer: String,
    pub(crate) resource_scope: Option<String>,
    /// DPoP proofs: the window, the algorithms and the proofs already used, for the token
    /// endpoint and the resource (a proof names its URI, so neither takes the other's).
    pub(crate) dpop: Mutex<DpopVerifier>,
    pub(crate) dpop_nonce: String,
    pub(crate) dpop_require_nonce: bool,
    pub(crate) dpop_resource_nonce: bool,
    /// Whether the server serves HTTPS (and asks clients for certificates).
    pub(crate) tls: bool,
    /// Verifies `tls_client_auth` chains against the configured client CA.
    pub(crate) client_verifier: Option<Arc<dyn ClientCertVerifier>>,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

pub(crate) fn random<const N: usize>() -> Option<[u8; N]> {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf).ok()?;
    Some(buf)
}

fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs()
}

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route(shared.endpoint.token_path(), any(token))
        .route(METADATA_PATH, get(metadata))
        .route(JWKS_PATH, get(jwks))
        .route(INTROSPECTION_PATH, any(introspect))
        .route(REVOCATION_PATH, any(revoke))
        .route(RESOURCE_PATH, any(resource))
        .fallback(not_found)
        .with_state(shared)
}

fn into_axum(response: http::Response<Vec<u8>>) -> Response {
    response.map(Body::from)
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

impl Shared {
    /// Counts the request and applies the pending fault for `route`, if any: `Some` is the
    /// answer to send instead of the normal one.
    async fn before(&self, route: Route) -> Option<Response> {
        self.counters.hit(route);
        let fault = lock(&self.faults).take(route)?;
        tracing::debug!(?route, ?fault, "injecting fault");
        if let Some(delay) = fault.delay {
            tokio::time::sleep(delay).await;
        }
        let canned = fault.respond?;
        let mut response = Response::new(Body::from(canned.body));
        *response.status_mut() = canned.status;
        for (name, value) in canned.headers {
            response.headers_mut().append(name, value);
        }
        Some(response)
    }

    fn client(&self, id: &str) -> Option<RegisteredClient> {
        self.clients
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(id)
            .cloned()
    }

    /// Reads the body up to the endpoint's cap and parses the client's request.
    async fn client_request(
        &self,
        request: Request,
    ) -> Result<(http::request::Parts, ClientRequest), EndpointError> {
        let (parts, body) = request.into_parts();
        let body = axum::body::to_bytes(body, self.endpoint.max_body())
            .await
            .map_err(|_| self.endpoint.body_too_large())?;
        let request = self
            .endpoint
            .parse_client_request_parts(&parts.method, &parts.headers, &body)?
            .with_client_certificate(self.presented(&parts.extensions));
        let client = self.client(request.client_id());
        self.endpoint.authenticate_at(
            SystemTime::now(),
            request.credentials(),
            client.as_ref(),
            &mut lock(&self.assertions),
        )?;
        Ok((parts, request))
    }

    /// What the connection's client certificate proves, for the endpoint.
    fn presented(&self, extensions: &http::Extensions) -> Option<PresentedCertificate> {
        crate::tls::presented(
            extensions.get::<PeerCertificates>(),
            self.client_verifier.as_ref(),
        )
    }

    fn issue(&self, grant: &Grant) -> Result<AccessToken, EndpointError> {
        let now = SystemTime::now();
        let expires_at = grant.expires_at(now);
        let jti = URL_SAFE_NO_PAD.encode(random::<16>().ok_or_else(EndpointError::server_error)?);
        let audience = match (grant.resources(), grant.audience()) {
            ([one], _) => Some(Value::from(one.as_str())),
            ([], Some(a)) => Some(Value::from(a)),
            ([], None) => None,
            (many, _) => Some(Value::from(many.to_vec())),
        };
        let token = match (&self.format, &self.signer) {
            (TokenFormat::Jwt, Some(signer)) => {
                let mut claims = json!({
                    "iss": self.issuer,
                    "sub": grant.client_id(),
                    "aud": audience.clone().unwrap_or_else(|| Value::from(format!("{}{RESOURCE_PATH}", self.issuer))),
                    "exp": unix(expires_at),
                    "iat": unix(now),
                    "jti": jti,
                    "client_id": grant.client_id(),
                });
                if let (Some(scope), Some(map)) = (grant.scope_string(), claims.as_object_mut()) {
                    map.insert("scope".to_owned(), Value::from(scope));
                }
                if let (Some(cnf), Some(map)) = (
                    cnf(grant.dpop_jkt(), grant.x5t_s256()),
                    claims.as_object_mut(),
                ) {
                    map.insert("cnf".to_owned(), cnf);
                }
                let jwt = signer.sign(&claims).map_err(|_| {
                    tracing::error!("cannot sign a JWT access token");
                    EndpointError::server_error()
                })?;
                AccessToken::new(jwt)
            }
            _ => opaque_token(&random::<32>().ok_or_else(EndpointError::server_error)?),
        };
        let mut tokens = lock(&self.tokens);
        if tokens.len() >= PRUNE_AT {
            tokens.retain(|_, r| r.active(now));
        }
        tokens.insert(
            token.expose_secret().to_owned(),
            TokenRecord {
                client_id: grant.client_id().to_owned(),
                scopes: grant.scopes().to_vec(),
                issued_at: now,
                expires_at,
                jti,
                audience,
                jkt: grant.dpop_jkt().map(str::to_owned),
                x5t: grant.x5t_s256().map(str::to_owned),
            },
        );
        Ok(token)
    }

    /// The absolute URI a client addressed for `path`: what its proofs' `htu` names.
    fn absolute_uri(&self, path: &str) -> Result<Uri, DpopError> {
        format!("{}{path}", self.issuer)
            .parse()
            .map_err(|_| DpopError::UriMismatch)
    }

    fn active_token(&self, token: &str) -> Option<TokenRecord> {
        let now = SystemTime::now();
        lock(&self.tokens)
            .get(token)
            .filter(|r| r.active(now))
            .cloned()
    }
}

async fn token(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    if let Some(faulted) = shared.before(Route::Token).await {
        return faulted;
    }
    let (parts, body) = request.into_parts();
    let endpoint = &shared.endpoint;
    let result = async {
        let body = axum::body::to_bytes(body, endpoint.max_body())
            .await
            .map_err(|_| endpoint.body_too_large())?;
        let incoming = endpoint
            .parse_parts(&parts.method, &parts.headers, &body)?
            .with_client_certificate(shared.presented(&parts.extensions));
        let client = shared.client(incoming.client_id());
        let now = SystemTime::now();
        let grant =
            endpoint.authorize_at(now, &incoming, client.as_ref(), &mut lock(&shared.assertions))?;
        // After client authentication: an unauthenticated request learns nothing of DPoP.
        let uri = shared
            .absolute_uri(endpoint.token_path())
            .map_err(|e| e.to_endpoint_error(None))?;
        let nonce = shared
            .dpop_require_nonce
            .then_some(shared.dpop_nonce.as_str());
        let request = DpopRequest::new(&parts.method, &uri).nonce(nonce);
        let proof = endpoint
            .verify_dpop(now, &parts.headers, &request, client.as_ref(), &mut lock(&shared.dpop))
            .inspect_err(|refused| {
                if refused.dpop_nonce().is_some() {
                    shared.counters.nonce_challenge(false);
                }
            })?;
        let grant = match &proof {
            Some(proof) => grant.bind_dpop(proof),
            None => grant,
        };
        let token = shared.issue(&grant)?;
        tracing::debug!(client_id = grant.client_id(), scopes = ?grant.scopes(), dpop = proof.is_some(), mtls = grant.x5t_s256().is_some(), "token issued");
        Ok::<_, EndpointError>(grant.respond(&token))
    }
    .await;
    into_axum(result.unwrap_or_else(|refused| {
        tracing::debug!(code = %refused.code(), reason = ?refused.reason(), "token request refused");
        refused.into_response()
    }))
}

async fn metadata(State(shared): State<Arc<Shared>>) -> Response {
    if let Some(faulted) = shared.before(Route::Metadata).await {
        return faulted;
    }
    let issuer = &shared.issuer;
    let methods: Vec<&str> = shared
        .endpoint
        .auth_methods()
        .iter()
        .map(|m| m.name())
        .collect();
    let scopes: Vec<&str> = shared.endpoint.scopes().iter().map(|s| s.name()).collect();
    let algorithms = signing_algorithms(&shared.endpoint);
    let dpop_algorithms = lock(&shared.dpop).algorithm_names();
    let mut body = json!({
        "issuer": issuer,
        "token_endpoint": format!("{issuer}{}", shared.endpoint.token_path()),
        "token_endpoint_auth_methods_supported": methods,
        "grant_types_supported": ["client_credentials"],
        "response_types_supported": [],
        "scopes_supported": scopes,
        "introspection_endpoint": format!("{issuer}{INTROSPECTION_PATH}"),
        "introspection_endpoint_auth_methods_supported": methods,
        "revocation_endpoint": format!("{issuer}{REVOCATION_PATH}"),
        "revocation_endpoint_auth_methods_supported": methods,
        "dpop_signing_alg_values_supported": dpop_algorithms,
    });
    if let (false, Some(map)) = (algorithms.is_empty(), body.as_object_mut()) {
        for member in [
            "token_endpoint_auth_signing_alg_values_supported",
            "introspection_endpoint_auth_signing_alg_values_supported",
            "revocation_endpoint_auth_signing_alg_values_supported",
        ] {
            map.insert(member.to_owned(), Value::from(algorithms.clone()));
        }
    }
    if let (Some(_), Some(map)) = (&shared.signer, body.as_object_mut()) {
        map.insert(
            "jwks_uri".to_owned(),
            Value::from(format!("{issuer}{JWKS_PATH}")),
        );
    }
    // RFC 8705 §3.3 and §5: the same endpoints take certificates.
    if let (true, Some(map)) = (shared.tls, body.as_object_mut()) {
        map.insert(
            "tls_client_certificate_bound_access_tokens".to_owned(),
            Value::from(true),
        );
        map.insert(
            "mtls_endpoint_aliases".to_owned(),
            json!({
                "token_endpoint": format!("{issuer}{}", shared.endpoint.token_path()),
                "introspection_endpoint": format!("{issuer}{INTROSPECTION_PATH}"),
                "revocation_endpoint": format!("{issuer}{REVOCATION_PATH}"),
            }),
        );
    }
    let mut response = json_response(StatusCode::OK, &body);
    response.headers_mut().remove(PRAGMA);
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// The `alg`s of client assertions the endpoint verifies (RFC 8414 §2): RS256, PS256,
/// ES256 and EdDSA for `private_key_jwt`, HS256 for `client_secret_jwt`.
fn signing_algorithms(endpoint: &TokenEndpoint) -> Vec<&'static str> {
    let mut algorithms = Vec::new();
    if endpoint.accepts(ClientAuthMethod::PrivateKeyJwt) {
        algorithms.extend(["RS256", "PS256", "ES256", "EdDSA"]);
    }
    if endpoint.accepts(ClientAuthMethod::ClientSecretJwt) {
        algorithms.push("HS256");
    }
    algorithms
}

async fn jwks(State(shared): State<Arc<Shared>>) -> Response {
    if let Some(faulted) = shared.before(Route::Jwks).await {
        return faulted;
    }
    match &shared.signer {
        Some(signer) => {
            let mut response = json_response(StatusCode::OK, &signer.jwks());
            response.headers_mut().remove(PRAGMA);
            response
                .headers_mut()
                .insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            response
        }
        None => not_found().await,
    }
}

async fn introspect(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    if let Some(faulted) = shared.before(Route::Introspection).await {
        return faulted;
    }
    let (_, request) = match shared.client_request(request).await {
        Ok(ok) => ok,
        Err(refused) => return into_axum(refused.into_response()),
    };
    let token = match request.single("token") {
        Ok(Some(token)) => token,
        Ok(None) => return missing_token(),
        Err(refused) => return into_axum(refused.into_response()),
    };
    let body = match shared.active_token(token) {
        None => json!({ "active": false }),
        Some(r) => {
            let token_type = if r.jkt.is_some() {
                "DPoP"
            } else {
                shared.endpoint.token_type()
            };
            let mut body = json!({
                "active": true,
                "client_id": r.client_id,
                "token_type": token_type,
                "exp": unix(r.expires_at),
                "iat": unix(r.issued_at),
                "sub": r.client_id,
                "iss": shared.issuer,
                "jti": r.jti,
            });
            if let Some(map) = body.as_object_mut() {
                if !r.scopes.is_empty() {
                    map.insert("scope".to_owned(), Value::from(r.scopes.join(" ")));
                }
                if let Some(cnf) = r.cnf() {
                    map.insert("cnf".to_owned(), cnf);
                }
                if let Some(aud) = r.audience {
                    map.insert("aud".to_owned(), aud);
                }
            }
            body
        }
    };
    json_response(StatusCode::OK, &body)
}

fn missing_token() -> Response {
    into_axum(
        EndpointError::new(ErrorCode::InvalidRequest)
            .with_description("missing token")
            .into_response(),
    )
}

async fn revoke(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    if let Some(faulted) = shared.before(Route::Revocation).await {
        return faulted;
    }
    let (_, request) = match shared.client_request(request).await {
        Ok(ok) => ok,
        Err(refused) => return into_axum(refused.into_response()),
    };
    let token = match request.single("token") {
        Ok(Some(token)) => token,
        Ok(None) => return missing_token(),
        Err(refused) => return into_axum(refused.into_response()),
    };
    // RFC 7009 §2.2: 200 whether or not the token existed. A token of another client is left
    // alone, and the answer does not tell.
    let mut tokens = lock(&shared.tokens);
    if tokens
        .get(token)
        .is_some_and(|r| r.client_id == request.client_id())
    {
        tokens.remove(token);
        tracing::debug!(client_id = request.client_id(), "token revoked");
    }
    drop(tokens);
    let mut response = Response::new(Body::empty());
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

async fn resource(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    if let Some(faulted) = shared.before(Route::Resource).await {
        return faulted;
    }
    let record = match resource_token(&shared, &request) {
        Ok(record) => record,
        Err(refused) => return refused,
    };
    // RFC 8705 §3: a certificate-bound token only over a connection with that certificate.
    if let Some(bound) = &record.x5t {
        let presented = request
            .extensions()
            .get::<PeerCertificates>()
            .and_then(PeerCertificates::x5t_s256);
        if presented.as_deref() != Some(bound.as_str()) {
            tracing::debug!("certificate-bound token without its certificate");
            return into_axum(
                BearerChallenge::invalid_token()
                    .realm(RESOURCE_REALM)
                    .description("the access token is bound to another TLS client certificate")
                    .to_response(),
            );
        }
    }
    if let Some(needed) = shared
        .resource_scope
        .as_ref()
        .filter(|needed| !record.scopes.contains(needed))
    {
        return into_axum(
            BearerChallenge::insufficient_scope([needed.as_str()])
                .realm(RESOURCE_REALM)
                .to_response(),
        );
    }
    let expires_in = record
        .expires_at
        .duration_since(SystemTime::now())
        .unwrap_or(Duration::ZERO)
        .as_secs();
    json_response(
        StatusCode::OK,
        &json!({
            "message": format!("Hello, {}!", record.client_id),
            "client_id": record.client_id,
            "scope": record.scopes.join(" "),
            "scopes": record.scopes,
            "expires_in": expires_in,
        }),
    )
}

/// The valid token of a resource request, as a bearer token or a DPoP-bound token with its
/// proof (RFC 9449 §7), or the answer that refuses it.
fn resource_token(shared: &Shared, request: &Request) -> Result<TokenRecord, Response> {
    let headers = request.headers();
    let dpop_refusal = |error: DpopError| {
        let mut challenge = lock(&shared.dpop).challenge(&error).realm(RESOURCE_REALM);
        if error.needs_nonce() {
            shared.counters.nonce_challenge(true);
            challenge = challenge.nonce(shared.dpop_nonce.as_str());
        }
        tracing::debug!(reason = %error, "DPoP resource request refused");
        into_axum(challenge.description(error.to_string()).to_response())
    };
    let unknown = || "the access token is unknown, expired or revoked";
    let now = SystemTime::now();
    let uri = shared.absolute_uri(RESOURCE_PATH).map_err(dpop_refusal)?;
    let nonce = shared
        .dpop_resource_nonce
        .then_some(shared.dpop_nonce.as_str());
    let dpop = dpop_token(
        now,
        headers,
        request.method(),
        &uri,
        &mut lock(&shared.dpop),
        nonce,
    );
    match dpop {
        Ok((token, proof)) => {
            let Some(record) = shared.active_token(token.expose_secret()) else {
                let challenge = lock(&shared.dpop)
                    .challenge(&DpopError::KeyBindingMismatch)
                    .realm(RESOURCE_REALM)
                    .description(unknown());
                return Err(into_axum(challenge.to_response()));
            };
            // A bearer token under the DPoP scheme, with a valid proof, is accepted: the
            // proof adds to it. A bound one must be bound to the proof's key.
            if let Some(jkt) = &record.jkt {
                proof.check_binding(jkt).map_err(dpop_refusal)?;
            }
            Ok(record)
        }
        Err(DpopError::NoAuthorization | DpopError::OtherScheme) => {
            let token = match bearer_token(headers) {
                Ok(token) => token,
                Err(e) => return Err(into_axum(e.challenge().realm(RESOURCE_REALM).to_response())),
            };
            let Some(record) = shared.active_token(token.expose_secret()) else {
                return Err(into_axum(
                    BearerChallenge::invalid_token()
                        .realm(RESOURCE_REALM)
                        .description(unknown())
                        .to_response(),
                ));
            };
            if record.jkt.is_some() {
                return Err(dpop_refusal(DpopError::BoundTokenAsBearer));
            }
            Ok(record)
        }
        Err(error) => Err(dpop_refusal(error)),
    }
}

async fn not_found() -> Response {
    json_response(StatusCode::NOT_FOUND, &json!({ "error": "not_found" }))
}
