//! Parsing token requests: the body (form or JSON), client authentication and the grant.

use std::fmt;

use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use http::header::{AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderMap, Method};
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::Value;

use crate::config::BodyFormat;
use crate::error::ErrorCode;
use crate::secret::{ClientSecret, constant_time_eq};
use crate::server::assertion::{AssertionRejection, JWT_BEARER, Jws};
use crate::server::endpoint::TokenEndpoint;
use crate::server::error::{EndpointError, Rejection};
use crate::server::{ClientAuthMethod, PresentedCertificate, is_scope_token};

/// Base64 that takes padded and unpadded input alike (some clients drop the `=`).
const BASE64_LENIENT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Parameters that may appear at most once (RFC 6749 §3.2). Others (`resource`, unknown
/// names) may repeat.
const SINGLE: &[&str] = &[
    "grant_type",
    "scope",
    "client_id",
    "client_secret",
    "client_assertion",
    "client_assertion_type",
    "audience",
    "token",
    "token_type_hint",
];

/// The credentials a client presented, decoded. `Debug` shows the client id and the method,
/// never the secret.
#[derive(Clone)]
pub struct ClientCredentials {
    id: String,
    /// Empty for the assertion methods.
    secret: ClientSecret,
    /// The `client_assertion` of the assertion methods (a bearer credential: kept redacted).
    assertion: Option<ClientSecret>,
    /// The Basic secret as sent, when it differs from its decoded form and the endpoint
    /// accepts unencoded Basic credentials.
    raw_secret: Option<ClientSecret>,
    method: ClientAuthMethod,
    /// The connection's TLS client certificate, attached by the server after parsing.
    certificate: Option<PresentedCertificate>,
}

impl ClientCredentials {
    /// The client id.
    #[must_use]
    pub fn client_id(&self) -> &str {
        &self.id
    }

    /// The method the client authenticated with.
    #[must_use]
    pub fn method(&self) -> ClientAuthMethod {
        self.method
    }

    /// Whether the presented secret equals `expected`, compared in constant time. When the
    /// endpoint accepts unencoded Basic credentials, the secret as sent is tried too. Always
    /// `false` for the assertion methods, which present no secret, and for an empty
    /// `expected`.
    #[must_use]
    pub fn secret_matches(&self, expected: &ClientSecret) -> bool {
        if self.method.is_assertion() || expected.expose_secret().is_empty() {
            return false;
        }
        let expected = expected.expose_secret().as_bytes();
        let decoded = constant_time_eq(self.secret.expose_secret().as_bytes(), expected);
        let raw = self
            .raw_secret
            .as_ref()
            .is_some_and(|raw| constant_time_eq(raw.expose_secret().as_bytes(), expected));
        decoded | raw
    }

    /// The presented secret, decoded, for stores that keep a hash rather than the secret
    /// (empty for the assertion methods).
    #[must_use]
    pub fn secret(&self) -> &ClientSecret {
        &self.secret
    }

    /// The `client_assertion`, for the assertion methods. A bearer credential: treat it as
    /// a secret.
    #[must_use]
    pub fn assertion(&self) -> Option<&ClientSecret> {
        self.assertion.as_ref()
    }

    /// The connection's TLS client certificate, when the server attached one
    /// ([`IncomingRequest::with_client_certificate`]).
    #[must_use]
    pub fn certificate(&self) -> Option<&PresentedCertificate> {
        self.certificate.as_ref()
    }
}

impl fmt::Debug for ClientCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCredentials")
            .field("client_id", &self.id)
            .field("method", &self.method)
            .field("secret", &self.secret)
            .field("assertion", &self.assertion)
            .field("certificate", &self.certificate)
            .finish()
    }
}

/// A request to an endpoint that authenticates clients (token, introspection, revocation):
/// its decoded body parameters and the client's credentials, not yet checked against a client
/// record.
///
/// `Debug` shows parameter names only: values may be tokens.
#[derive(Clone)]
pub struct ClientRequest {
    credentials: ClientCredentials,
    params: Vec<(String, String)>,
    format: BodyFormat,
}

impl ClientRequest {
    /// Attaches the TLS client certificate the connection presented (RFC 8705), as the
    /// server that terminated TLS verified it; `None` leaves the request as it is.
    #[must_use]
    pub fn with_client_certificate(mut self, certificate: Option<PresentedCertificate>) -> Self {
        if certificate.is_some() {
            self.credentials.certificate = certificate;
        }
        self
    }

    /// The presented credentials.
    #[must_use]
    pub fn credentials(&self) -> &ClientCredentials {
        &self.credentials
    }

    /// The client id.
    #[must_use]
    pub fn client_id(&self) -> &str {
        &self.credentials.id
    }

    /// The body parameters other than the credentials, in order, without empty values
    /// (RFC 6749 §3.2 treats them as omitted). A JSON array value becomes one entry per item.
    #[must_use]
    pub fn params(&self) -> &[(String, String)] {
        &self.params
    }

    /// The value of a parameter that may appear once: `None` when absent.
    ///
    /// # Errors
    /// `invalid_request` when it appears more than once.
    pub fn single(&self, name: &'static str) -> Result<Option<&str>, EndpointError> {
        single(&self.params, name)
    }

    /// Every value of a parameter, in order.
    pub fn values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.params
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body format the client used.
    #[must_use]
    pub fn body_format(&self) -> BodyFormat {
        self.format
    }
}

impl fmt::Debug for ClientRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.params.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("ClientRequest")
            .field("credentials", &self.credentials)
            .field("params", &names)
            .field("format", &self.format)
            .finish()
    }
}

/// A token request that passed every check that needs no client record: `POST`, content type,
/// size, syntax, one client authentication method, `grant_type=client_credentials`, scope
/// syntax. Next: look the client up and call
/// [`TokenEndpoint::authorize`](crate::server::TokenEndpoint::authorize).
#[derive(Clone, Debug)]
pub struct IncomingRequest {
    request: ClientRequest,
    scopes: Option<Vec<String>>,
    audience: Option<String>,
    resources: Vec<String>,
}

impl IncomingRequest {
    /// Attaches the TLS client certificate the connection presented (RFC 8705), as the
    /// server that terminated TLS verified it: the endpoint authenticates the TLS methods
    /// with it, and the grant carries its thumbprint ([`Grant::x5t_s256`](crate::server::Grant::x5t_s256)).
    /// `None` leaves the request as it is.
    #[must_use]
    pub fn with_client_certificate(mut self, certificate: Option<PresentedCertificate>) -> Self {
        self.request = self.request.with_client_certificate(certificate);
        self
    }

    /// The client id to look up.
    #[must_use]
    pub fn client_id(&self) -> &str {
        self.request.client_id()
    }

    /// The presented credentials.
    #[must_use]
    pub fn credentials(&self) -> &ClientCredentials {
        &self.request.credentials
    }

    /// The requested scopes, without duplicates, in order; `None` when the request named none.
    #[must_use]
    pub fn scopes(&self) -> Option<&[String]> {
        self.scopes.as_deref()
    }

    /// The `audience` parameter, if any.
    #[must_use]
    pub fn audience(&self) -> Option<&str> {
        self.audience.as_deref()
    }

    /// The resource indicators (RFC 8707), if any.
    #[must_use]
    pub fn resources(&self) -> &[String] {
        &self.resources
    }

    /// The whole request: every parameter, including ones this crate does not interpret.
    #[must_use]
    pub fn client_request(&self) -> &ClientRequest {
        &self.request
    }
}

impl TokenEndpoint {
    /// Parses a token request (RFC 6749 §4.4.2).
    ///
    /// # Errors
    /// The [`EndpointError`] to answer with: `invalid_request` for a wrong method, content
    /// type, size or syntax, a missing or repeated parameter, or credentials in two places;
    /// `invalid_client` when the client did not authenticate with an accepted method;
    /// `unsupported_grant_type`; `invalid_scope` for a malformed scope; `invalid_target` for a
    /// malformed resource.
    pub fn parse<B: AsRef<[u8]>>(
        &self,
        request: &http::Request<B>,
    ) -> Result<IncomingRequest, EndpointError> {
        self.parse_parts(request.method(), request.headers(), request.body().as_ref())
    }

    /// [`TokenEndpoint::parse`] from the request's parts.
    ///
    /// # Errors
    /// As [`TokenEndpoint::parse`].
    pub fn parse_parts(
        &self,
        method: &Method,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<IncomingRequest, EndpointError> {
        let request = self.parse_client_request_parts(method, headers, body)?;
        match request.single("grant_type")? {
            None => {
                return Err(EndpointError::invalid_request(
                    Rejection::MissingParameter("grant_type"),
                    "missing grant_type",
                ));
            }
            Some("client_credentials") => {}
            Some(_) => {
                return Err(EndpointError::rejected(
                    ErrorCode::UnsupportedGrantType,
                    Rejection::UnsupportedGrantType,
                    "only grant_type=client_credentials is supported",
                ));
            }
        }
        let scopes = match request.single("scope")? {
            None => None,
            Some(raw) => {
                let mut scopes: Vec<String> = Vec::new();
                for s in raw.split(' ').filter(|s| !s.is_empty()) {
                    if !is_scope_token(s) {
                        return Err(EndpointError::rejected(
                            ErrorCode::InvalidScope,
                            Rejection::MalformedScope,
                            "scope is not a space-delimited list of scope tokens",
                        ));
                    }
                    if !scopes.iter().any(|x| x == s) {
                        scopes.push(s.to_owned());
                    }
                }
                // A scope of spaces only is as good as none.
                (!scopes.is_empty()).then_some(scopes)
            }
        };
        let audience = request.single("audience")?.map(str::to_owned);
        let resources: Vec<String> = request.values("resource").map(str::to_owned).collect();
        if !resources.iter().all(|r| is_resource_indicator(r)) {
            return Err(EndpointError::rejected(
                ErrorCode::InvalidTarget,
                Rejection::InvalidResource,
                "resource must be an absolute URI without a fragment",
            ));
        }
        Ok(IncomingRequest {
            request,
            scopes,
            audience,
            resources,
        })
    }

    /// Parses a request to any endpoint that authenticates clients the way the token endpoint
    /// does (RFC 7662 introspection, RFC 7009 revocation): method, content type, size, body
    /// syntax and credentials, with no grant checks.
    ///
    /// # Errors
    /// As [`TokenEndpoint::parse`], without the grant and scope errors.
    pub fn parse_client_request<B: AsRef<[u8]>>(
        &self,
        request: &http::Request<B>,
    ) -> Result<ClientRequest, EndpointError> {
        self.parse_client_request_parts(
            request.method(),
            request.headers(),
            request.body().as_ref(),
        )
    }

    /// [`TokenEndpoint::parse_client_request`] from the request's parts.
    ///
    /// # Errors
    /// As [`TokenEndpoint::parse_client_request`].
    pub fn parse_client_request_parts(
        &self,
        method: &Method,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<ClientRequest, EndpointError> {
        if method != Method::POST {
            return Err(EndpointError::invalid_request(
                Rejection::MethodNotAllowed,
                "the token endpoint takes POST only",
            )
            .with_status(http::StatusCode::METHOD_NOT_ALLOWED));
        }
        let format = self.content_type(headers)?;
        if body.len() > self.max_body() {
            return Err(self.body_too_large());
        }
        let mut params = match format {
            BodyFormat::Json => json_params(body)?,
            _ => form_params(body)?,
        };
        for name in SINGLE {
            single(&params, name)?;
        }
        let credentials = self.credentials(headers, &mut params)?;
        Ok(ClientRequest {
            credentials,
            params,
            format,
        })
    }

    /// The refusal for a body over [`TokenEndpoint::max_body`], for transports that stop
    /// reading at the cap rather than hand over the whole body.
    #[must_use]
    pub fn body_too_large(&self) -> EndpointError {
        EndpointError::invalid_request(
            Rejection::BodyTooLarge {
                limit: self.max_body(),
            },
            "request body is too large",
        )
    }

    fn content_type(&self, headers: &HeaderMap) -> Result<BodyFormat, EndpointError> {
        let mut values = headers.get_all(CONTENT_TYPE).iter();
        let (Some(value), None) = (values.next(), values.next()) else {
            return Err(EndpointError::invalid_request(
                Rejection::MissingContentType,
                "Content-Type must be application/x-www-form-urlencoded",
            ));
        };
        let media = value
            .to_str()
            .ok()
            .and_then(|v| v.split(';').next())
            .map(|m| m.trim().to_ascii_lowercase());
        match media.as_deref() {
            Some("application/x-www-form-urlencoded") => Ok(BodyFormat::Form),
            Some("application/json") if self.accepts_json() => Ok(BodyFormat::Json),
            _ => Err(EndpointError::invalid_request(
                Rejection::UnsupportedContentType,
                if self.accepts_json() {
                    "Content-Type must be application/x-www-form-urlencoded or application/json"
                } else {
                    "Content-Type must be application/x-www-form-urlencoded"
                },
            )),
        }
    }

    fn basic_realm(&self) -> Option<&str> {
        self.accepts(ClientAuthMethod::ClientSecretBasic)
            .then(|| self.realm())
    }

    /// Finds the client's credentials in the header or the body (never both) and removes
    /// them from `params`.
    fn credentials(
        &self,
        headers: &HeaderMap,
        params: &mut Vec<(String, String)>,
    ) -> Result<ClientCredentials, EndpointError> {
        let body_id = take(params, "client_id");
        let body_secret = take(params, "client_secret").map(ClientSecret::new);
        let assertion_type = take(params, "client_assertion_type");
        let assertion = take(params, "client_assertion").map(ClientSecret::new);
        let mut authorizations = headers.get_all(AUTHORIZATION).iter();
        let authorization = authorizations.next();
        if authorizations.next().is_some() {
            return Err(EndpointError::invalid_request(
                Rejection::MultipleAuthorizationHeaders,
                "more than one Authorization header",
            ));
        }
        // A Basic challenge is owed whenever the client tried the Authorization header.
        let realm = self.realm();
        if let Some(value) = authorization {
            let bytes = value.as_bytes();
            let (scheme, rest) = match bytes.iter().position(|b| *b == b' ') {
                Some(i) => (&bytes[..i], &bytes[i..]),
                None => (bytes, &b""[..]),
            };
            if !scheme.eq_ignore_ascii_case(b"basic") {
                return Err(EndpointError::invalid_client(
                    Rejection::UnsupportedAuthScheme,
                    Some(realm),
                ));
            }
            if body_secret.is_some() || assertion_type.is_some() || assertion.is_some() {
                return Err(EndpointError::invalid_request(
                    Rejection::CredentialsInHeaderAndBody,
                    "client credentials in both the Authorization header and the body",
                ));
            }
            if !self.accepts(ClientAuthMethod::ClientSecretBasic) {
                return Err(EndpointError::invalid_client(
                    Rejection::AuthMethodNotAccepted(ClientAuthMethod::ClientSecretBasic),
                    Some(realm),
                ));
            }
            let (id, secret, raw_secret) = decode_basic(rest.trim_ascii()).ok_or_else(|| {
                EndpointError::invalid_client(Rejection::MalformedBasicCredentials, Some(realm))
            })?;
            if body_id.as_ref().is_some_and(|b| *b != id) {
                return Err(EndpointError::invalid_request(
                    Rejection::ClientIdMismatch,
                    "client_id in the body differs from the Authorization header",
                ));
            }
            let raw_secret = raw_secret.filter(|_| self.inner.accept_unencoded_basic);
            return Ok(ClientCredentials {
                id,
                secret,
                assertion: None,
                raw_secret,
                method: ClientAuthMethod::ClientSecretBasic,
                certificate: None,
            });
        }
        if assertion_type.is_some() || assertion.is_some() {
            if body_secret.is_some() {
                return Err(EndpointError::invalid_request(
                    Rejection::CredentialsInHeaderAndBody,
                    "a client_secret and a client_assertion in one request",
                ));
            }
            return self.assertion_credentials(body_id, assertion_type, assertion);
        }
        match (body_id, body_secret) {
            (Some(id), Some(secret)) => {
                if !self.accepts(ClientAuthMethod::ClientSecretPost) {
                    return Err(EndpointError::invalid_client(
                        Rejection::AuthMethodNotAccepted(ClientAuthMethod::ClientSecretPost),
                        self.basic_realm(),
                    ));
                }
                Ok(ClientCredentials {
                    id,
                    secret,
                    assertion: None,
                    raw_secret: None,
                    method: ClientAuthMethod::ClientSecretPost,
                    certificate: None,
                })
            }
            (None, Some(_)) => Err(EndpointError::invalid_request(
                Rejection::MissingParameter("client_id"),
                "client_secret without client_id",
            )),
            // Only the id: a TLS client certificate must prove it (RFC 8705 §2), when the
            // endpoint accepts one. Which of the two methods applies is the registration's
            // choice, decided at authentication.
            (Some(id), None) if ClientAuthMethod::TLS.iter().any(|m| self.accepts(*m)) => {
                let method = if self.accepts(ClientAuthMethod::TlsClientAuth) {
                    ClientAuthMethod::TlsClientAuth
                } else {
                    ClientAuthMethod::SelfSignedTlsClientAuth
                };
                Ok(ClientCredentials {
                    id,
                    secret: ClientSecret::new(String::new()),
                    assertion: None,
                    raw_secret: None,
                    method,
                    certificate: None,
                })
            }
            (_, None) => Err(EndpointError::invalid_client(
                Rejection::NoClientAuthentication,
                self.basic_realm(),
            )),
        }
    }
}

impl TokenEndpoint {
    /// The credentials of `client_assertion_type` and `client_assertion` (RFC 7521 §4.2):
    /// the method is told by the header's `alg` (HS256 is `client_secret_jwt`), the client
    /// id is the body's `client_id` or else the assertion's `sub`. Nothing is verified yet.
    fn assertion_credentials(
        &self,
        body_id: Option<String>,
        assertion_type: Option<String>,
        assertion: Option<ClientSecret>,
    ) -> Result<ClientCredentials, EndpointError> {
        let refuse = |why| {
            EndpointError::invalid_client(Rejection::InvalidAssertion(why), self.basic_realm())
        };
        let Some(assertion_type) = assertion_type else {
            return Err(EndpointError::invalid_request(
                Rejection::MissingParameter("client_assertion_type"),
                "client_assertion without client_assertion_type",
            ));
        };
        let Some(assertion) = assertion else {
            return Err(EndpointError::invalid_request(
                Rejection::MissingParameter("client_assertion"),
                "client_assertion_type without client_assertion",
            ));
        };
        if assertion_type != JWT_BEARER {
            return Err(refuse(AssertionRejection::UnsupportedAssertionType));
        }
        let jws = Jws::decode(assertion.expose_secret()).map_err(refuse)?;
        let method = match jws.alg() {
            Some("HS256") => ClientAuthMethod::ClientSecretJwt,
            Some(alg) if !alg.eq_ignore_ascii_case("none") => ClientAuthMethod::PrivateKeyJwt,
            _ => return Err(refuse(AssertionRejection::UnsupportedAlgorithm)),
        };
        if !self.accepts(method) {
            return Err(EndpointError::invalid_client(
                Rejection::AuthMethodNotAccepted(method),
                self.basic_realm(),
            ));
        }
        let id = match body_id {
            Some(id) => id,
            None => match jws.claim_str("sub") {
                Some(sub) if !sub.is_empty() && !sub.chars().any(char::is_control) => {
                    sub.to_owned()
                }
                _ => {
                    return Err(EndpointError::invalid_request(
                        Rejection::MissingParameter("client_id"),
                        "no client_id, and no sub in the client_assertion",
                    ));
                }
            },
        };
        Ok(ClientCredentials {
            id,
            secret: ClientSecret::new(String::new()),
            assertion: Some(assertion),
            raw_secret: None,
            method,
            certificate: None,
        })
    }
}

/// Removes the (single, already checked) parameter `name` and returns its value.
fn take(params: &mut Vec<(String, String)>, name: &str) -> Option<String> {
    let i = params.iter().position(|(n, _)| n == name)?;
    Some(params.remove(i).1)
}

fn single<'a>(
    params: &'a [(String, String)],
    name: &'static str,
) -> Result<Option<&'a str>, EndpointError> {
    let mut found = params.iter().filter(|(n, _)| n == name);
    let first = found.next();
    if found.next().is_some() {
        return Err(EndpointError::invalid_request(
            Rejection::RepeatedParameter(name),
            "a parameter appears more than once",
        ));
    }
    Ok(first.map(|(_, v)| v.as_str()))
}

/// `application/x-www-form-urlencoded`, empty values dropped.
fn form_params(body: &[u8]) -> Result<Vec<(String, String)>, EndpointError> {
    Ok(form_urlencoded::parse(body)
        .filter(|(n, v)| !n.is_empty() && !v.is_empty())
        .map(|(n, v)| (n.into_owned(), v.into_owned()))
        .collect())
}

/// A JSON object, in order, repeated names kept; string values, `null` as omitted, arrays of
/// strings as repeated parameters (`scope` arrays are joined with spaces).
fn json_params(body: &[u8]) -> Result<Vec<(String, String)>, EndpointError> {
    let malformed = || {
        EndpointError::invalid_request(
            Rejection::MalformedBody,
            "request body is not a JSON object",
        )
    };
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    let pairs: Pairs = serde_json::from_slice(body).map_err(|_| malformed())?;
    let mut out = Vec::with_capacity(pairs.0.len());
    for (name, value) in pairs.0 {
        let known = SINGLE.iter().chain(&["resource"]).find(|k| **k == name);
        let not_string = |k: &&'static str| {
            EndpointError::invalid_request(
                Rejection::ParameterNotString(k),
                "a parameter is not a string",
            )
        };
        match value {
            Value::Null => {}
            Value::String(s) => {
                if !s.is_empty() {
                    out.push((name, s));
                }
            }
            Value::Array(items) if known.is_none_or(|k| *k == "resource" || *k == "scope") => {
                let mut strings = Vec::with_capacity(items.len());
                for item in items {
                    match item {
                        Value::String(s) => strings.push(s),
                        _ => return Err(known.map_or_else(malformed, not_string)),
                    }
                }
                if name == "scope" {
                    let joined = strings.join(" ");
                    if !joined.is_empty() {
                        out.push((name, joined));
                    }
                } else {
                    out.extend(
                        strings
                            .into_iter()
                            .filter(|s| !s.is_empty())
                            .map(|s| (name.clone(), s)),
                    );
                }
            }
            // RFC 6749 §3.2: unrecognised parameters are ignored, whatever their type.
            _ if known.is_none() => {}
            _ => return Err(known.map_or_else(malformed, not_string)),
        }
    }
    Ok(out)
}

/// A JSON object's members in order, duplicates kept (a map would keep only the last).
struct Pairs(Vec<(String, Value)>);

impl<'de> Deserialize<'de> for Pairs {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct PairsVisitor;
        impl<'de> Visitor<'de> for PairsVisitor {
            type Value = Pairs;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Pairs, A::Error> {
                let mut out = Vec::new();
                while let Some(entry) = map.next_entry::<String, Value>()? {
                    out.push(entry);
                }
                Ok(Pairs(out))
            }
        }
        deserializer.deserialize_map(PairsVisitor)
    }
}

/// Decodes `base64(urlencode(id) ":" urlencode(secret))` (RFC 6749 §2.3.1). Returns the
/// decoded id and secret, and the secret as sent when decoding changed it.
fn decode_basic(token: &[u8]) -> Option<(String, ClientSecret, Option<ClientSecret>)> {
    let decoded = zeroize::Zeroizing::new(BASE64_LENIENT.decode(token).ok()?);
    let text = std::str::from_utf8(&decoded).ok()?;
    let (raw_id, raw_secret) = text.split_once(':')?;
    let id = form_decode(raw_id);
    if id.is_empty() || id.chars().any(char::is_control) {
        return None;
    }
    let secret = ClientSecret::new(form_decode(raw_secret));
    let raw = (secret.expose_secret() != raw_secret).then(|| ClientSecret::new(raw_secret));
    Some((id, secret, raw))
}

/// `application/x-www-form-urlencoded` decoding of one component: `+` is a space, `%XX` a
/// byte; a `%` not followed by two hex digits stays as it is (as WHATWG URL parsing does).
pub(crate) fn form_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = zeroize::Zeroizing::new(Vec::with_capacity(bytes.len()));
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes.get(i + 1..i + 3).and_then(|h| {
                    let h = std::str::from_utf8(h).ok()?;
                    u8::from_str_radix(h, 16)
                        .ok()
                        .filter(|_| h.bytes().all(|b| b.is_ascii_hexdigit()))
                });
                match hex {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// RFC 8707 §2: an absolute URI without a fragment.
fn is_resource_indicator(s: &str) -> bool {
    if s.contains('#') || s.chars().any(|c| c.is_control() || c == ' ') {
        return false;
    }
    match s.split_once(':') {
        Some((scheme, rest)) => {
            !rest.is_empty()
                && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_decoding() {
        assert_eq!(form_decode("a+b%2Fc%3Ad%25e%20f"), "a b/c:d%e f");
        assert_eq!(form_decode("100%"), "100%");
        assert_eq!(form_decode("%zz%4"), "%zz%4");
        assert_eq!(form_decode("%+1"), "% 1");
        assert_eq!(form_decode("%C3%A9"), "é");
    }

    #[test]
    fn basic_golden_vector() {
        // oauth2-rs's vector: `aaa/;&` and `bbb/;&`.
        let (id, secret, raw) = decode_basic(b"YWFhJTJGJTNCJTI2OmJiYiUyRiUzQiUyNg==").unwrap();
        assert_eq!(id, "aaa/;&");
        assert_eq!(secret.expose_secret(), "bbb/;&");
        assert_eq!(raw.unwrap().expose_secret(), "bbb%2F%3B%26");
        assert!(decode_basic(b"YWFhJTJGJTNCJTI2OmJiYiUyRiUzQiUyNg").is_some());
        assert!(decode_basic(b"bm9jb2xvbg==").is_none(), "no colon");
        assert!(decode_basic(b"OnNlY3JldA==").is_none(), "empty id");
        assert!(decode_basic(b"!!!").is_none());
    }
}
