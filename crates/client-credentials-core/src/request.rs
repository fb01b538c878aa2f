//! Building token requests (RFC 6749 §4.4.2) as `http::Request<Vec<u8>>`.

use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderName, HeaderValue, Method};

use crate::config::{AuthMethod, BodyFormat, Config, ConfigError, RESERVED_PARAMETERS};

/// Per-request overrides of the configured defaults: scopes, audience, resources and extra
/// parameters. A field left unset uses the configuration's default.
///
/// ```
/// use client_credentials::TokenParams;
/// let params = TokenParams::new().scopes(["reports.read"]).resource("https://api.example.com/");
/// # let _ = params;
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct TokenParams {
    pub(crate) scopes: Option<Vec<String>>,
    pub(crate) audience: Option<Option<String>>,
    pub(crate) resources: Option<Vec<String>>,
    pub(crate) extra: Vec<(String, String)>,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) timeout: Option<Duration>,
}

impl fmt::Debug for TokenParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let headers: Vec<_> = self
            .headers
            .iter()
            .map(|(name, _)| (name.as_str(), "[redacted]"))
            .collect();
        f.debug_struct("TokenParams")
            .field("scopes", &self.scopes)
            .field("audience", &self.audience)
            .field("resources", &self.resources)
            .field("extra", &self.extra)
            .field("headers", &headers)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl TokenParams {
    /// No overrides: the configuration's defaults.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Replaces the default scopes. An empty list sends no `scope` parameter.
    #[must_use]
    pub fn scopes<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.scopes = Some(scopes.into_iter().map(Into::into).collect());
        self
    }

    /// Replaces the default audience.
    #[must_use]
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audience = Some(Some(audience.into()));
        self
    }

    /// Sends no audience, even if the configuration has one.
    #[must_use]
    pub fn without_audience(mut self) -> Self {
        self.audience = Some(None);
        self
    }

    /// Adds a resource indicator (RFC 8707). The first call replaces the default resources.
    #[must_use]
    pub fn resource(mut self, resource: impl Into<String>) -> Self {
        self.resources
            .get_or_insert_with(Vec::new)
            .push(resource.into());
        self
    }

    /// Replaces the default resources with these (an empty list sends none).
    #[must_use]
    pub fn resources<I, S>(mut self, resources: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.resources = Some(resources.into_iter().map(Into::into).collect());
        self
    }

    /// Adds an extra parameter. A name given here replaces the configuration's values for
    /// that name; giving a name twice sends it twice.
    #[must_use]
    pub fn extra_param(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.extra.push((name.into(), value.into()));
        self
    }

    /// Adds an HTTP header to the token requests of this shape (a tenant or a gateway
    /// header, simple-oauth2's `httpOptions.headers`). A name given here replaces the
    /// configuration's value for that name (names compare without regard to case). The
    /// headers are part of the request shape, as parameters are: two shapes that differ
    /// by a header value have distinct tokens.
    ///
    /// Values are kept as secrets may be (a gateway subscription key): marked sensitive on
    /// the request, shown as `[redacted]` by `Debug`, and only a SHA-256 digest of them is
    /// in the [`CacheKey`]. A value is visible ASCII with inner spaces
    /// ([`ConfigError::InvalidHeaderValue`] otherwise).
    ///
    /// Headers that the library sets or that carry credentials are refused
    /// ([`ConfigError::ReservedHeader`]): `Authorization`, `Content-Type`, the framing
    /// headers, `Cookie`, `DPoP`… (the whole list: [`RESERVED_HEADERS`]). Client
    /// credentials go through the [`AuthMethod`].
    ///
    /// ```
    /// use client_credentials::{Config, ConfigError, TokenParams};
    /// # let config = Config::builder().token_url("https://as.example.com/t").client_id("c").client_secret("s").build()?;
    /// let params = TokenParams::new().header("Ocp-Apim-Subscription-Key", "k-93f1c2");
    /// let request = config.request(&params)?;
    /// let http = request.to_http();
    /// assert_eq!(http.headers()["ocp-apim-subscription-key"], "k-93f1c2");
    /// assert!(http.headers()["ocp-apim-subscription-key"].is_sensitive());
    /// assert!(!format!("{params:?} {request:?}").contains("k-93f1c2"));
    /// assert!(matches!(
    ///     config.request(&TokenParams::new().header("Authorization", "Bearer x")),
    ///     Err(ConfigError::ReservedHeader(_)),
    /// ));
    /// # Ok::<_, ConfigError>(())
    /// ```
    #[must_use]
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Bounds how long the token request sent on behalf of this call may take, connection
    /// included (simple-oauth2's `httpOptions.timeout`). It can only shorten the client's
    /// timeout for token requests (15 s by default), never lengthen it; raise that instead.
    /// It is not part of the request shape: calls with different timeouts share the
    /// shape's token, and a fetch already in flight keeps the timeout it was sent with. A
    /// zero timeout is refused ([`ConfigError::ZeroTimeout`]).
    ///
    /// ```
    /// use std::time::Duration;
    /// use client_credentials::{Config, TokenParams};
    /// # let config = Config::builder().token_url("https://as.example.com/t").client_id("c").client_secret("s").build()?;
    /// let quick = config.request(&TokenParams::new().timeout(Duration::from_secs(2)))?;
    /// assert_eq!(quick.to_http().timeout(), Some(Duration::from_secs(2)));
    /// assert_eq!(quick.cache_key(), config.default_request().cache_key());
    /// # Ok::<_, client_credentials::ConfigError>(())
    /// ```
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }
}

/// Headers that [`TokenParams::header`] and [`ConfigBuilder::header`](crate::ConfigBuilder::header)
/// refuse, compared without regard to case: those the library sets on a token request
/// (`Content-Type`, `Accept`, `Authorization` for `client_secret_basic`), those that frame
/// the message (a wrong one would desynchronise the connection), and those that carry
/// credentials (`Authorization`, `Proxy-Authorization`, `Cookie`, `DPoP`), which must not be
/// set beside the auth method.
pub const RESERVED_HEADERS: &[&str] = &[
    "accept",
    "authorization",
    "connection",
    "content-encoding",
    "content-length",
    "content-type",
    "cookie",
    "dpop",
    "expect",
    "host",
    "keep-alive",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// The SHA-256 of `bytes`, in hex.
fn hex_digest(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes)
        .iter()
        .fold(String::with_capacity(64), |mut out, b| {
            use fmt::Write as _;
            let _ = write!(out, "{b:02x}");
            out
        })
}

/// Validates one header of a token request: a valid name that is not reserved, and a
/// value of visible ASCII and inner spaces.
pub(crate) fn check_header(
    name: &str,
    value: &str,
    reserved: &[&str],
) -> Result<(HeaderName, HeaderValue), ConfigError> {
    let parsed = HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| ConfigError::InvalidHeader(crate::response::bounded(name, 64)))?;
    if reserved.iter().any(|r| parsed.as_str() == *r) {
        return Err(ConfigError::ReservedHeader(parsed.as_str().to_owned()));
    }
    // Visible ASCII and inner spaces: no tab, no obs-text, nothing a server would trim.
    let visible = !value.is_empty()
        && !value.starts_with(' ')
        && !value.ends_with(' ')
        && value
            .bytes()
            .all(|b| b == b' ' || (0x21..=0x7E).contains(&b));
    match HeaderValue::from_str(value) {
        Ok(mut v) if visible => {
            v.set_sensitive(true);
            Ok((parsed, v))
        }
        _ => Err(ConfigError::InvalidHeaderValue(parsed.as_str().to_owned())),
    }
}

/// Validated request parameters, after the per-request overrides were applied.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Params {
    scopes: Vec<String>,
    audience: Option<String>,
    resources: Vec<String>,
    extra: Vec<(String, String)>,
    headers: Vec<(HeaderName, HeaderValue)>,
    timeout: Option<Duration>,
}

impl Params {
    pub(crate) const EMPTY: Params = Params {
        scopes: Vec::new(),
        audience: None,
        resources: Vec::new(),
        extra: Vec::new(),
        headers: Vec::new(),
        timeout: None,
    };

    /// Scopes to request, in the order given, without duplicates.
    #[must_use]
    pub fn scopes(&self) -> &[String] {
        &self.scopes
    }

    /// The `audience` parameter, if any.
    #[must_use]
    pub fn audience(&self) -> Option<&str> {
        self.audience.as_deref()
    }

    /// The resource indicators (RFC 8707).
    #[must_use]
    pub fn resources(&self) -> &[String] {
        &self.resources
    }

    /// Extra parameters, in the order they are sent.
    #[must_use]
    pub fn extra(&self) -> &[(String, String)] {
        &self.extra
    }

    /// Extra HTTP headers of the token request ([`TokenParams::header`]).
    #[must_use]
    pub fn headers(&self) -> &[(HeaderName, HeaderValue)] {
        &self.headers
    }

    /// The timeout of the token request, if this shape has its own ([`TokenParams::timeout`]).
    #[must_use]
    pub fn timeout(&self) -> Option<Duration> {
        self.timeout
    }

    pub(crate) fn resolve(
        defaults: &Params,
        overrides: &TokenParams,
    ) -> Result<Params, ConfigError> {
        let mut scopes: Vec<String> = Vec::new();
        for s in overrides.scopes.as_ref().unwrap_or(&defaults.scopes) {
            if !is_scope_token(s) {
                return Err(ConfigError::InvalidScope(s.clone()));
            }
            if !scopes.contains(s) {
                scopes.push(s.clone());
            }
        }
        let audience = match &overrides.audience {
            Some(a) => a.clone(),
            None => defaults.audience.clone(),
        };
        if let Some(a) = audience
            .as_ref()
            .filter(|a| a.is_empty() || a.chars().any(char::is_control))
        {
            return Err(ConfigError::InvalidTarget {
                kind: "audience",
                value: a.clone(),
            });
        }
        let resources = overrides
            .resources
            .clone()
            .unwrap_or_else(|| defaults.resources.clone());
        for r in &resources {
            if !is_resource_indicator(r) {
                return Err(ConfigError::InvalidTarget {
                    kind: "resource",
                    value: r.clone(),
                });
            }
        }
        for (name, _) in &overrides.extra {
            if name.is_empty() {
                return Err(ConfigError::EmptyParameterName);
            }
            if RESERVED_PARAMETERS
                .iter()
                .any(|r| r.eq_ignore_ascii_case(name))
            {
                return Err(ConfigError::ReservedParameter(name.clone()));
            }
        }
        let mut extra: Vec<(String, String)> = defaults
            .extra
            .iter()
            .filter(|(n, _)| !overrides.extra.iter().any(|(o, _)| o == n))
            .cloned()
            .collect();
        extra.extend(overrides.extra.iter().cloned());
        let mut headers: Vec<(HeaderName, HeaderValue)> = Vec::new();
        for (name, value) in &overrides.headers {
            let (name, value) = check_header(name, value, RESERVED_HEADERS)?;
            // The last value given for a name is the one sent.
            headers.retain(|(n, _)| *n != name);
            headers.push((name, value));
        }
        let mut merged: Vec<(HeaderName, HeaderValue)> = defaults
            .headers
            .iter()
            .filter(|(n, _)| !headers.iter().any(|(o, _)| o == n))
            .cloned()
            .collect();
        merged.extend(headers);
        let timeout = overrides.timeout.or(defaults.timeout);
        if timeout == Some(Duration::ZERO) {
            return Err(ConfigError::ZeroTimeout);
        }
        Ok(Params {
            scopes,
            audience,
            resources,
            extra,
            headers: merged,
            timeout,
        })
    }
}

/// RFC 6749 §3.3: `scope-token = 1*( %x21 / %x23-5B / %x5D-7E )`.
fn is_scope_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b))
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

/// Identifies one shape of token request: everything that shapes the request (endpoint,
/// client id, auth method, body format, scope separator, normalised scopes, audience,
/// resources, extra parameters), and never the secret. Two requests with different keys never
/// share a token.
///
/// The key is a canonical string; [`CacheKey::as_str`] is stable across releases of the same
/// major version, so it can name a shared cache entry (hash it before using it as a store key).
/// Its `Hash` feeds a digest computed once, so a cache lookup does not rehash the string.
#[derive(Clone)]
pub struct CacheKey {
    text: Arc<str>,
    /// FNV-1a of `text`; equality still compares the text, so a collision costs a
    /// comparison, never a wrong token.
    digest: u64,
}

impl PartialEq for CacheKey {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.text, &other.text)
            || (self.digest == other.digest && self.text == other.text)
    }
}

impl Eq for CacheKey {}

impl std::hash::Hash for CacheKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write_u64(self.digest);
    }
}

impl PartialOrd for CacheKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for CacheKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.text.cmp(&other.text)
    }
}

impl CacheKey {
    /// The canonical form.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.text
    }

    fn from_text(text: String) -> Self {
        let digest = text.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
        });
        Self {
            text: Arc::from(text),
            digest,
        }
    }

    fn new(config: &Config, params: &Params) -> Self {
        let i = config.inner();
        let mut scopes = params.scopes.clone();
        scopes.sort();
        let mut resources = params.resources.clone();
        resources.sort();
        resources.dedup();
        let mut extra = params.extra.clone();
        extra.sort();
        // A header value may be a secret: the key holds its digest, never the value.
        let mut headers: Vec<(&str, String)> = params
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), hex_digest(v.as_bytes())))
            .collect();
        headers.sort_unstable();
        let method = match &i.auth_method {
            AuthMethod::ClientSecretBasic => "basic".to_owned(),
            AuthMethod::ClientSecretBasicRaw => "basic-raw".to_owned(),
            AuthMethod::ClientSecretPost {
                client_id_param,
                client_secret_param,
            } => format!("post:{client_id_param}:{client_secret_param}"),
            AuthMethod::None => "none".to_owned(),
            AuthMethod::PrivateKeyJwt | AuthMethod::ClientSecretJwt => assertion_identity(i),
            AuthMethod::TlsClientAuth | AuthMethod::SelfSignedTlsClientAuth => {
                i.auth_method.name().to_owned()
            }
        };
        let format = match i.body_format {
            BodyFormat::Form => "form",
            BodyFormat::Json => "json",
        };
        // A JSON array is an unambiguous encoding of these strings. The tag names the
        // format: keys of another format (stored in Redis or a CLI cache file) never match.
        // cc3: the header digests were added; cc4: the DPoP key's thumbprint; cc5: the TLS
        // client certificate's thumbprint (a token may be bound to it, RFC 8705 §3).
        let canonical = serde_json::json!([
            "cc5",
            i.token_url.to_string(),
            i.client_id,
            method,
            format,
            // "a b" and "a,b" are different requests.
            i.scope_separator,
            scopes,
            params.audience,
            resources,
            extra,
            headers,
            dpop_thumbprint(i),
            i.identity.as_ref().map(crate::ClientIdentity::x5t_s256),
        ]);
        Self::from_text(canonical.to_string())
    }
}

impl fmt::Debug for CacheKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("CacheKey").field(&&*self.text).finish()
    }
}

/// One shape of token request: a configuration with resolved parameters. Cheap to clone.
///
/// ```
/// use client_credentials::{Config, TokenParams};
/// let config = Config::builder()
///     .token_url("https://as.example.com/token")
///     .client_id("c")
///     .client_secret("s")
///     .build()?;
/// let request = config.request(&TokenParams::new().scopes(["a", "b"]))?;
/// let http = request.to_http();
/// assert_eq!(http.body(), b"grant_type=client_credentials&scope=a+b");
/// # Ok::<_, client_credentials_core::ConfigError>(())
/// ```
#[derive(Clone, Debug)]
pub struct TokenRequest {
    config: Config,
    params: Arc<Params>,
    /// The requested scopes, shared by every token that does not name its own.
    scopes: Arc<[String]>,
    key: CacheKey,
    /// The body and `Authorization` value, encoded on the first send and shared by every
    /// clone: a shape's request never changes.
    prepared: Arc<OnceLock<Prepared>>,
}

impl PartialEq for TokenRequest {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}

impl Config {
    /// The request with the configured defaults.
    #[must_use]
    pub fn default_request(&self) -> TokenRequest {
        let params = self.inner().defaults.clone();
        TokenRequest {
            key: CacheKey::new(self, &params),
            scopes: params.scopes().into(),
            params: Arc::new(params),
            config: self.clone(),
            prepared: Arc::default(),
        }
    }

    /// The request with these overrides applied to the defaults.
    ///
    /// # Errors
    /// [`ConfigError`] when an override is invalid (a bad scope, a reserved extra parameter…).
    pub fn request(&self, overrides: &TokenParams) -> Result<TokenRequest, ConfigError> {
        let params = Params::resolve(&self.inner().defaults, overrides)?;
        Ok(TokenRequest {
            key: CacheKey::new(self, &params),
            scopes: params.scopes().into(),
            params: Arc::new(params),
            config: self.clone(),
            prepared: Arc::default(),
        })
    }
}

impl TokenRequest {
    /// The requested scopes, for the tokens that do not name their own.
    pub(crate) fn requested_scopes(&self) -> &Arc<[String]> {
        &self.scopes
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The resolved parameters.
    #[must_use]
    pub fn params(&self) -> &Params {
        &self.params
    }

    /// The cache key of this request shape.
    #[must_use]
    pub fn cache_key(&self) -> &CacheKey {
        &self.key
    }

    /// The scopes joined with the configured separator, or `None` when there are none.
    #[must_use]
    pub fn scope_string(&self) -> Option<String> {
        (!self.params.scopes.is_empty())
            .then(|| self.params.scopes.join(self.config.scope_separator()))
    }

    /// Builds the HTTP request: `POST` to the token endpoint with `Accept: application/json`,
    /// the body in the configured format with parameters in a fixed order (`grant_type`,
    /// `scope`, `audience`, `resource`…, extra parameters, then body credentials), and the
    /// credentials either in a sensitive `Authorization` header or in the body, never both.
    ///
    /// A signed client assertion depends on the time and a fresh `jti`, which this has
    /// neither of: for `private_key_jwt` and `client_secret_jwt` it carries none (the
    /// server refuses it); [`TokenRequest::to_http_at`] signs one, and the session calls it.
    #[must_use]
    pub fn to_http(&self) -> HttpRequest {
        let prepared = self.prepared.get_or_init(|| self.prepare());
        self.finish(assemble(self.config.inner().token_url.clone(), prepared))
    }

    /// Builds the HTTP request as it is sent at `at` (wall-clock time), as
    /// [`TokenRequest::to_http`] does, with a signed client assertion for
    /// `private_key_jwt` and `client_secret_jwt` (feature `jwt`): issued `at`, its `jti`
    /// made of `nonce` (128 bits that must not repeat: the session draws them from its seeded
    /// generator). Other methods ignore both inputs. The assertion is signed anew for every
    /// call, never reused. A client with a DPoP key ([`crate::ConfigBuilder::dpop`]) also
    /// gets a `DPoP` proof header made at `at`.
    #[must_use]
    pub fn to_http_at(&self, at: std::time::SystemTime, nonce: u128) -> HttpRequest {
        self.to_http_sent(at, nonce, None)
    }

    /// [`TokenRequest::to_http_at`], with the token endpoint's latest `DPoP-Nonce` in the
    /// DPoP proof (RFC 9449 §8), for a client with a DPoP key; other clients ignore it.
    #[must_use]
    pub fn to_http_sent(
        &self,
        at: std::time::SystemTime,
        nonce: u128,
        dpop_nonce: Option<&str>,
    ) -> HttpRequest {
        let request = self.signed_at(at, nonce);
        #[cfg(feature = "jwt")]
        if let Some(key) = &self.config.inner().dpop {
            return with_dpop_proof(request, key, at, nonce, dpop_nonce);
        }
        let _ = dpop_nonce;
        request
    }

    fn signed_at(&self, at: std::time::SystemTime, nonce: u128) -> HttpRequest {
        if let Some(signed) = sign_assertion(&self.config, at, nonce) {
            let i = self.config.inner();
            let mut fields = self.fields();
            let scope = self.scope_string();
            if let Some(s) = &scope {
                fields.insert(1, ("scope", s));
            }
            let prepared = prepare(&self.config, fields, i.body_format, Some(&signed));
            return self.finish(assemble(i.token_url.clone(), &prepared));
        }
        self.to_http()
    }

    /// The shape's own fields, after `grant_type` and `scope` and before the credentials:
    /// `audience`, `resource`…, extra parameters.
    fn fields(&self) -> Vec<(&str, &str)> {
        let mut fields: Vec<(&str, &str)> = vec![("grant_type", "client_credentials")];
        if let Some(a) = &self.params.audience {
            fields.push(("audience", a));
        }
        for r in &self.params.resources {
            fields.push(("resource", r));
        }
        for (n, v) in &self.params.extra {
            fields.push((n, v));
        }
        fields
    }

    /// Adds the shape's headers and timeout to a request of this shape.
    fn finish(&self, mut request: HttpRequest) -> HttpRequest {
        for (name, value) in &self.params.headers {
            request.0.headers_mut().insert(name.clone(), value.clone());
        }
        if let Some(timeout) = self.params.timeout {
            request.0.extensions_mut().insert(RequestTimeout(timeout));
        }
        request
    }

    /// Encodes the body and the credentials of this shape once.
    fn prepare(&self) -> Prepared {
        let scope = self.scope_string();
        let mut fields = self.fields();
        if let Some(s) = &scope {
            fields.insert(1, ("scope", s));
        }
        prepare(&self.config, fields, self.config.inner().body_format, None)
    }
}

/// The parts of a POST that do not change between sends: the encoded body (with the
/// credentials, for `client_secret_post`) and the sensitive `Authorization` value.
struct Prepared {
    content_type: &'static str,
    body: zeroize::Zeroizing<Vec<u8>>,
    authorization: Option<HeaderValue>,
}

impl fmt::Debug for Prepared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Prepared")
            .field("content_type", &self.content_type)
            .finish_non_exhaustive()
    }
}

/// A POST to `uri` with `fields` and the client's credentials (in a sensitive `Authorization`
/// header or appended to the body, never both), encoded in `format`.
/// `request` with a `DPoP` proof of it, made at `at`; its `jti` from `nonce`, mixed so that
/// it differs from the client assertion's made of the same nonce.
#[cfg(feature = "jwt")]
fn with_dpop_proof(
    mut request: HttpRequest,
    key: &crate::dpop::DpopKey,
    at: std::time::SystemTime,
    nonce: u128,
    server_nonce: Option<&str>,
) -> HttpRequest {
    let input = crate::dpop::ProofInput {
        method: request.0.method(),
        uri: request.0.uri(),
        at,
        nonce: nonce.rotate_left(64) ^ 0x6470_6f70,
        server_nonce,
        access_token: None,
    };
    // The key signed when it loaded: a failure here is aws-lc's own, and the request goes
    // without a proof, which the server answers with a typed error.
    if let Ok(proof) = key.proof(&input) {
        request
            .0
            .headers_mut()
            .insert(http::HeaderName::from_static("dpop"), proof.header_value());
    }
    request
}

/// A POST of `fields` to `uri` with the client's credentials; for a signed assertion, one
/// signed at `signed` (time and `jti` nonce), if given.
pub(crate) fn build_post<'a>(
    config: &'a Config,
    uri: http::Uri,
    fields: Vec<(&'a str, &'a str)>,
    format: BodyFormat,
    signed: Option<(std::time::SystemTime, u128)>,
) -> HttpRequest {
    let assertion = signed.and_then(|(at, nonce)| sign_assertion(config, at, nonce));
    assemble(
        uri,
        &prepare(
            config,
            fields,
            format,
            assertion.as_ref().map(|a| a.as_str()),
        ),
    )
}

/// The client's signed assertion at `at` with a `jti` made of `nonce`; `None` for a method
/// that signs none (or without the `jwt` feature).
fn sign_assertion(
    config: &Config,
    at: std::time::SystemTime,
    nonce: u128,
) -> Option<zeroize::Zeroizing<String>> {
    #[cfg(feature = "jwt")]
    if let Some(assertion) = &config.inner().assertion {
        let i = config.inner();
        let secret = i.client_secret.as_ref().map(|s| s.expose_secret());
        let token_url = i.token_url.to_string();
        let jti = crate::assertion::jti(nonce);
        // The key signed a probe when the configuration was built: a failure now is
        // aws-lc's own, and the request goes out without an assertion, which the server
        // answers with `invalid_client`, a typed error for the caller.
        let signed = assertion
            .assertion(&i.client_id, &token_url, secret, at, &jti)
            .unwrap_or_default();
        return Some(signed);
    }
    let _ = (config, at, nonce);
    None
}

/// Encodes `fields` and the client's credentials: for a signed assertion, `assertion` (none
/// yet when the request is not being sent, see [`TokenRequest::to_http`]).
fn prepare<'a>(
    config: &'a Config,
    mut fields: Vec<(&'a str, &'a str)>,
    format: BodyFormat,
    assertion: Option<&'a str>,
) -> Prepared {
    let i = config.inner();
    let secret = i.client_secret.as_ref().map(|s| s.expose_secret());
    let mut authorization = None;
    match &i.auth_method {
        AuthMethod::ClientSecretBasic => {
            let id = form_encode(&i.client_id);
            let secret = zeroize::Zeroizing::new(form_encode(secret.unwrap_or_default()));
            authorization = Some(basic(&id, &secret));
        }
        AuthMethod::ClientSecretBasicRaw => {
            authorization = Some(basic(&i.client_id, secret.unwrap_or_default()));
        }
        AuthMethod::ClientSecretPost {
            client_id_param,
            client_secret_param,
        } => {
            fields.push((client_id_param, &i.client_id));
            fields.push((client_secret_param, secret.unwrap_or_default()));
        }
        // RFC 8705 §2: the certificate authenticates, on the connection; the body names the
        // client.
        AuthMethod::None | AuthMethod::TlsClientAuth | AuthMethod::SelfSignedTlsClientAuth => {
            fields.push(("client_id", &i.client_id));
        }
        AuthMethod::PrivateKeyJwt | AuthMethod::ClientSecretJwt => {
            fields.push(("client_id", &i.client_id));
            fields.push((
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ));
            if let Some(assertion) = assertion {
                fields.push(("client_assertion", assertion));
            }
        }
    }
    let (content_type, body) = match format {
        BodyFormat::Form => {
            let mut ser = form_urlencoded::Serializer::new(String::new());
            for (n, v) in &fields {
                ser.append_pair(n, v);
            }
            (
                "application/x-www-form-urlencoded",
                ser.finish().into_bytes(),
            )
        }
        BodyFormat::Json => ("application/json", json_body(&fields)),
    };
    Prepared {
        content_type,
        body: zeroize::Zeroizing::new(body),
        authorization: authorization.map(|mut value| {
            value.set_sensitive(true);
            value
        }),
    }
}

/// The POST of `prepared` to `uri`. Every part is already typed (a parsed `Uri`, header
/// values that are static or base64), so the request is assembled without a fallible
/// builder.
fn assemble(uri: http::Uri, prepared: &Prepared) -> HttpRequest {
    let body = zeroize::Zeroizing::new(prepared.body.to_vec());
    let mut request = http::Request::new(SecretBody(body));
    *request.method_mut() = Method::POST;
    *request.uri_mut() = uri;
    let headers = request.headers_mut();
    headers.reserve(3);
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static(prepared.content_type),
    );
    headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
    if let Some(value) = &prepared.authorization {
        headers.insert(AUTHORIZATION, value.clone());
    }
    HttpRequest(Box::new(request))
}

/// `http` with `client_assertion` added at the end of its body, in the body's format (the
/// core built it, with `client_assertion_type` already in place).
///
/// The assertion is a checked compact JWT (base64url and dots, see
/// [`crate::AssertionSource::accept`]): it needs no escaping in either format. The new body
/// is written into a buffer of its exact size, so that no reallocation leaves an unzeroed
/// copy of the old one (which holds the access token of a revocation) behind.
pub(crate) fn attach_assertion(mut http: HttpRequest, assertion: &str) -> HttpRequest {
    let json = http
        .headers()
        .get(CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    let old = &http.0.body().0;
    let mut body = zeroize::Zeroizing::new(Vec::with_capacity(old.len() + assertion.len() + 24));
    match old.strip_suffix(b"}") {
        // The object the core wrote, never empty (`grant_type` comes first).
        Some(object) if json => {
            body.extend_from_slice(object);
            body.extend_from_slice(b",\"client_assertion\":\"");
            body.extend_from_slice(assertion.as_bytes());
            body.extend_from_slice(b"\"}");
        }
        _ => {
            body.extend_from_slice(old);
            body.extend_from_slice(b"&client_assertion=");
            body.extend_from_slice(assertion.as_bytes());
        }
    }
    *http.0.body_mut() = SecretBody(body);
    http
}

/// The thumbprint of the DPoP key, if the client has one: a token is bound to it.
fn dpop_thumbprint(i: &crate::config::Inner) -> Option<&str> {
    #[cfg(feature = "jwt")]
    return i.dpop.as_ref().map(crate::dpop::DpopKey::thumbprint);
    #[cfg(not(feature = "jwt"))]
    {
        let _ = i;
        None
    }
}

/// The method part of a cache key for a signed assertion: the method, and the identity of
/// the credential (the key's thumbprint and id, the audience; never key material).
fn assertion_identity(i: &crate::config::Inner) -> String {
    #[cfg(feature = "jwt")]
    let identity = i
        .assertion
        .as_ref()
        .map(crate::assertion::AssertionConfig::identity);
    #[cfg(not(feature = "jwt"))]
    let identity: Option<String> = None;
    let identity = identity.or_else(|| i.assertion_source.as_ref().map(|s| s.identity()));
    format!("{}:{}", i.auth_method.name(), identity.unwrap_or_default())
}

fn form_encode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn basic(id: &str, secret: &str) -> HeaderValue {
    let mut raw = zeroize::Zeroizing::new(String::with_capacity(id.len() + secret.len() + 1));
    raw.push_str(id);
    raw.push(':');
    raw.push_str(secret);
    let encoded = zeroize::Zeroizing::new(format!("Basic {}", BASE64.encode(raw.as_bytes())));
    HeaderValue::from_str(&encoded)
        .unwrap_or_else(|_| unreachable!("base64 is a valid header value"))
}

/// A JSON object with the fields in order; repeated names (`resource`, repeated extras) become
/// arrays at the position of their first occurrence.
fn json_body(fields: &[(&str, &str)]) -> Vec<u8> {
    let mut out = String::from("{");
    let mut seen: Vec<&str> = Vec::new();
    for (name, _) in fields {
        if seen.contains(name) {
            continue;
        }
        seen.push(name);
        if out.len() > 1 {
            out.push(',');
        }
        out.push_str(&serde_json::Value::from(*name).to_string());
        out.push(':');
        let values: Vec<&str> = fields
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| *v)
            .collect();
        let always_array = *name == "resource";
        let value = if values.len() == 1 && !always_array {
            serde_json::Value::from(values[0])
        } else {
            serde_json::Value::from(values)
        };
        out.push_str(&value.to_string());
    }
    out.push('}');
    out.into_bytes()
}

/// A request ready to send (a token request, a revocation or an introspection): its `Debug`
/// shows only the method, the URI, the header names and the body length, since the body may
/// hold the client secret (`client_secret_post`) or a token, and the `Authorization` value
/// is marked sensitive. The body is zeroized when dropped.
///
/// There is deliberately no way to get a plain `http::Request<Vec<u8>>`, whose own `Debug`
/// would print the body: a transport reads the getters, or takes
/// [`into_parts`](Self::into_parts), whose body is a [`SecretBody`].
///
/// ```
/// use client_credentials::{AuthMethod, Config};
///
/// let config = Config::builder()
///     .token_url("https://as.example.com/token")
///     .client_id("c")
///     .client_secret("s3cr3t")
///     .auth_method(AuthMethod::client_secret_post())
///     .build()?;
/// let request = config.default_request().to_http();
/// assert!(!format!("{request:?}").contains("s3cr3t"));
/// let (parts, body) = request.into_parts();
/// assert_eq!(parts.method, "POST");
/// assert!(!format!("{body:?}").contains("s3cr3t"));
/// assert!(body.as_bytes().ends_with(b"client_secret=s3cr3t"));
/// # Ok::<_, client_credentials_core::ConfigError>(())
/// ```
pub struct HttpRequest(Box<http::Request<SecretBody>>);

/// The timeout of a request's shape, carried in the request's extensions.
#[derive(Clone, Copy, Debug)]
struct RequestTimeout(Duration);

impl HttpRequest {
    /// The method (`POST`; `GET` for a [`Discovery`](crate::Discovery) request).
    #[must_use]
    pub fn method(&self) -> &Method {
        self.0.method()
    }

    /// The URI.
    #[must_use]
    pub fn uri(&self) -> &http::Uri {
        self.0.uri()
    }

    /// The headers; `Authorization`, when present, is marked sensitive.
    #[must_use]
    pub fn headers(&self) -> &http::HeaderMap {
        self.0.headers()
    }

    /// The timeout of the call this request is sent for ([`TokenParams::timeout`]), for the
    /// transport to apply if it is shorter than its own ([`HttpRequest::timeout_within`]).
    #[must_use]
    pub fn timeout(&self) -> Option<Duration> {
        self.0.extensions().get::<RequestTimeout>().map(|t| t.0)
    }

    /// The overall timeout to send this request with, given the transport's `overall`:
    /// the call's own timeout ([`TokenParams::timeout`]) where that is shorter. A call's
    /// timeout only ever shortens the transport's.
    #[must_use]
    pub fn timeout_within(&self, overall: Duration) -> Duration {
        self.timeout().map_or(overall, |own| own.min(overall))
    }

    /// Sets (or clears) the call's timeout: the cache sends the shape's request on behalf
    /// of whichever call polled.
    pub(crate) fn set_timeout(&mut self, timeout: Option<Duration>) {
        let extensions = self.0.extensions_mut();
        match timeout {
            Some(timeout) => _ = extensions.insert(RequestTimeout(timeout)),
            None => _ = extensions.remove::<RequestTimeout>(),
        }
    }

    /// The body bytes. They may hold the client secret or a token: never log them.
    #[must_use]
    pub fn body(&self) -> &[u8] {
        self.0.body().as_bytes()
    }

    /// The request's head and its body, for a transport to send.
    #[must_use]
    pub fn into_parts(self) -> (http::request::Parts, SecretBody) {
        (*self.0).into_parts()
    }
}

/// A `GET` of `uri` with `Accept: application/json` and no body: a metadata request
/// ([`Discovery`](crate::Discovery)), which carries no credentials.
pub(crate) fn build_get(uri: http::Uri) -> HttpRequest {
    let mut request = http::Request::new(SecretBody(zeroize::Zeroizing::new(Vec::new())));
    *request.method_mut() = Method::GET;
    *request.uri_mut() = uri;
    request
        .headers_mut()
        .insert(ACCEPT, HeaderValue::from_static("application/json"));
    HttpRequest(Box::new(request))
}

/// A request body that may hold a secret: redacted `Debug`, zeroized on drop, no `Display`.
pub struct SecretBody(zeroize::Zeroizing<Vec<u8>>);

impl SecretBody {
    /// The bytes, to send. Never log them.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The length in bytes.
    #[must_use]
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the body is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The bytes as a plain `Vec`, for a transport that must own them (an HTTP client whose
    /// body type takes a `Vec<u8>`). From then on, zeroizing them is the transport's affair;
    /// prefer [`SecretBody::as_bytes`] where the client can send borrowed bytes.
    #[must_use]
    pub fn into_vec(mut self) -> Vec<u8> {
        std::mem::take(&mut *self.0)
    }
}

impl fmt::Debug for SecretBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretBody([redacted; {} bytes])", self.0.len())
    }
}

impl fmt::Debug for HttpRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self
            .0
            .headers()
            .keys()
            .map(http::HeaderName::as_str)
            .collect();
        f.debug_struct("HttpRequest")
            .field("method", self.0.method())
            .field("uri", self.0.uri())
            .field("headers", &names)
            .field("body_len", &self.0.body().len())
            .finish()
    }
}
