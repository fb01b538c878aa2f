//! Configuration files (TOML or JSON) for the embedded server.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use client_credentials_core::server::{ClientAuthMethod, JwkSet, RegisteredClient};
use serde::Deserialize;

use crate::{EmbeddedServerBuilder, JwtAlgorithm, TokenFormat};

/// A configuration file that could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigFileError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file's extension is neither `.toml` nor `.json`.
    #[error("{0}: configuration files end in .toml or .json")]
    UnknownFormat(String),
    /// The TOML is invalid or does not match the schema.
    #[error("invalid TOML configuration: {0}")]
    Toml(String),
    /// The JSON is invalid or does not match the schema.
    #[error("invalid JSON configuration: {0}")]
    Json(String),
    /// A value is not allowed (an unknown auth method or token format, a zero lifetime…).
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

/// The file's schema. Unknown keys are refused so that typos do not pass silently. No
/// `Debug`: its clients hold secrets in clear.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    port: Option<u16>,
    token_path: Option<String>,
    /// Seconds.
    token_lifetime: Option<u64>,
    token_format: Option<String>,
    jwt_algorithm: Option<String>,
    auth_methods: Option<Vec<String>>,
    accept_json: Option<bool>,
    accept_unencoded_basic: Option<bool>,
    resource_scope: Option<String>,
    dpop_require_nonce: Option<bool>,
    dpop_resource_nonce: Option<bool>,
    #[serde(default)]
    scopes: BTreeMap<String, String>,
    #[serde(default)]
    clients: Vec<FileClient>,
}

/// No `Debug`: it holds the client's secret in clear.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileClient {
    id: String,
    /// Optional for a client that registers keys (`jwks` or `jwks_file`).
    secret: Option<String>,
    /// The client's public keys: a JWK Set as a table, or as a JSON string.
    jwks: Option<serde_json::Value>,
    /// A file holding the client's JWK Set (JSON), relative to the configuration file.
    jwks_file: Option<String>,
    #[serde(default)]
    scopes: Vec<String>,
    default_scopes: Option<Vec<String>>,
    auth_methods: Option<Vec<String>>,
    /// Seconds.
    token_lifetime: Option<u64>,
    client_credentials: Option<bool>,
    dpop_bound_access_tokens: Option<bool>,
}

fn methods(names: &[String]) -> Result<Vec<ClientAuthMethod>, ConfigFileError> {
    names
        .iter()
        .map(|n| match ClientAuthMethod::from_name(n) {
            // The file cannot set up TLS (certificates, keys): those are the builder's.
            Some(m) if m.is_tls() => Err(ConfigFileError::Invalid(format!(
                "auth method {n:?} needs TLS, which only EmbeddedServerBuilder::tls sets up"
            ))),
            Some(m) => Ok(m),
            None => Err(ConfigFileError::Invalid(format!(
                "unknown auth method {n:?}"
            ))),
        })
        .collect()
}

/// The client's JWK Set, from `jwks` (a table or a JSON string) or `jwks_file` (relative to
/// `base`, the configuration file's directory).
fn client_jwks(
    id: &str,
    inline: Option<serde_json::Value>,
    file: Option<String>,
    base: Option<&Path>,
) -> Result<Option<JwkSet>, ConfigFileError> {
    let bad = |e: client_credentials_core::server::JwksError| {
        ConfigFileError::Invalid(format!("client {id:?}: jwks: {e}"))
    };
    match (inline, file) {
        (None, None) => Ok(None),
        (Some(_), Some(_)) => Err(ConfigFileError::Invalid(format!(
            "client {id:?}: jwks and jwks_file are exclusive"
        ))),
        (Some(serde_json::Value::String(json)), None) => {
            JwkSet::from_json(&json).map(Some).map_err(bad)
        }
        (Some(value), None) => JwkSet::from_value(&value).map(Some).map_err(bad),
        (None, Some(file)) => {
            let path = match base {
                Some(dir) if Path::new(&file).is_relative() => dir.join(&file),
                _ => Path::new(&file).to_path_buf(),
            };
            let text = std::fs::read_to_string(&path).map_err(|source| ConfigFileError::Read {
                path: path.display().to_string(),
                source,
            })?;
            JwkSet::from_json(&text).map(Some).map_err(bad)
        }
    }
}

impl File {
    fn apply(
        self,
        mut b: EmbeddedServerBuilder,
        base: Option<&Path>,
    ) -> Result<EmbeddedServerBuilder, ConfigFileError> {
        if let Some(port) = self.port {
            b = b.port(port);
        }
        if let Some(path) = self.token_path {
            b = b.token_path(path);
        }
        if let Some(secs) = self.token_lifetime {
            b = b.token_lifetime(Duration::from_secs(secs));
        }
        match self.token_format.as_deref() {
            None => {}
            Some("opaque") => b = b.token_format(TokenFormat::Opaque),
            Some("jwt") => b = b.token_format(TokenFormat::Jwt),
            Some(other) => {
                return Err(ConfigFileError::Invalid(format!(
                    "token_format {other:?} is neither \"opaque\" nor \"jwt\""
                )));
            }
        }
        if let Some(name) = &self.jwt_algorithm {
            let algorithm = JwtAlgorithm::from_name(name).ok_or_else(|| {
                ConfigFileError::Invalid(format!(
                    "jwt_algorithm {name:?} is neither \"RS256\" nor \"EdDSA\""
                ))
            })?;
            b = b.jwt_algorithm(algorithm);
        }
        if let Some(names) = &self.auth_methods {
            b = b.auth_methods(methods(names)?);
        }
        if let Some(accept) = self.accept_json {
            b = b.accept_json(accept);
        }
        if let Some(accept) = self.accept_unencoded_basic {
            b = b.accept_unencoded_basic(accept);
        }
        if let Some(scope) = self.resource_scope {
            b = b.resource_scope(scope);
        }
        if let Some(required) = self.dpop_require_nonce {
            b = b.dpop_require_nonce(required);
        }
        if let Some(required) = self.dpop_resource_nonce {
            b = b.dpop_resource_nonce(required);
        }
        for (name, description) in self.scopes {
            b = b.scope(name, description);
        }
        for c in self.clients {
            let jwks = client_jwks(&c.id, c.jwks, c.jwks_file, base)?;
            if c.secret.is_none() && jwks.is_none() {
                return Err(ConfigFileError::Invalid(format!(
                    "client {:?} needs a secret, a jwks or a jwks_file",
                    c.id
                )));
            }
            let mut client =
                RegisteredClient::new(c.id, c.secret.unwrap_or_default()).scopes(c.scopes);
            if let Some(jwks) = jwks {
                client = client.jwks(jwks);
            }
            if let Some(d) = c.default_scopes {
                client = client.default_scopes(d);
            }
            if let Some(names) = &c.auth_methods {
                client = client.auth_methods(methods(names)?);
            }
            if let Some(secs) = c.token_lifetime {
                client = client.token_lifetime(Duration::from_secs(secs));
            }
            if let Some(allowed) = c.client_credentials {
                client = client.client_credentials_allowed(allowed);
            }
            if let Some(required) = c.dpop_bound_access_tokens {
                client = client.dpop_bound_access_tokens(required);
            }
            b = b.registered_client(client);
        }
        Ok(b)
    }
}

impl EmbeddedServerBuilder {
    /// Applies a TOML configuration on top of this builder.
    ///
    /// ```
    /// use client_credentials::embedded::EmbeddedServer;
    ///
    /// let builder = EmbeddedServer::builder().toml(r#"
    ///     token_lifetime = 60          # seconds
    ///     token_format = "jwt"         # or "opaque" (the default)
    ///     jwt_algorithm = "EdDSA"      # or "RS256" (the default)
    ///     auth_methods = ["client_secret_basic", "client_secret_post"]
    ///
    ///     [scopes]
    ///     "orders.read" = "Read orders"
    ///
    ///     [[clients]]
    ///     id = "billing"
    ///     secret = "billing-secret"
    ///     scopes = ["orders.read"]
    /// "#)?;
    /// # let _ = builder;
    /// # Ok::<_, client_credentials_server::ConfigFileError>(())
    /// ```
    ///
    /// Keys: `port`, `token_path`, `token_lifetime` (seconds), `token_format`
    /// (`"opaque"`/`"jwt"`), `jwt_algorithm` (`"RS256"`/`"EdDSA"`, for JWTs), `auth_methods`
    /// (any of `"client_secret_basic"`, `"client_secret_post"`, `"private_key_jwt"`,
    /// `"client_secret_jwt"`; default all four), `accept_json`, `accept_unencoded_basic`,
    /// `resource_scope`, `dpop_require_nonce` and `dpop_resource_nonce` (booleans, see
    /// [`dpop_require_nonce`](Self::dpop_require_nonce)), `[scopes]` (name = description)
    /// and `[[clients]]` with `id`, `scopes`, a `secret` and/or registered public keys, and
    /// optionally `default_scopes`, `auth_methods`, `token_lifetime`, `client_credentials`
    /// (`false` to refuse the grant) and `dpop_bound_access_tokens` (`true` to refuse a
    /// token request without a DPoP proof).
    ///
    /// A `private_key_jwt` client registers its public keys as `jwks`, a JWK Set (a table,
    /// or a string of JSON), or as `jwks_file`, a JSON file (relative to the configuration
    /// file when read by [`config_file`](Self::config_file)); it needs no `secret`. RSA
    /// (RS256, PS256), P-256 (ES256) and Ed25519 (EdDSA) keys are accepted, and a `kid` in
    /// the assertion's header must match the key's. A `client_secret_jwt` client signs with
    /// HS256 keyed by its `secret`, of at least 32 bytes. The server checks `iss` = `sub` =
    /// the client id, `aud` (the token endpoint URL or the issuer), `exp`, `iat`, `nbf` and a
    /// lifetime of at most 5 minutes (30 s of leeway), and refuses a `jti` used before.
    ///
    /// ```
    /// use client_credentials::embedded::{ClientAuthMethod, EmbeddedServer};
    ///
    /// let server = EmbeddedServer::builder().toml(r#"
    ///     [[clients]]
    ///     id = "signer"
    ///     scopes = ["orders.read"]
    ///     auth_methods = ["private_key_jwt"]
    ///     ## Or: jwks_file = "signer.jwks.json", or jwks = '{"keys":[…]}'
    ///
    ///     [[clients.jwks.keys]]
    ///     kty = "OKP"
    ///     crv = "Ed25519"
    ///     kid = "2026-12"
    ///     x = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
    /// "#)?.start()?;
    /// assert_eq!(server.clients()[0].auth_methods, [ClientAuthMethod::PrivateKeyJwt]);
    /// # Ok::<_, Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`ConfigFileError`] when the text is not valid TOML or does not match the schema.
    pub fn toml(self, text: &str) -> Result<Self, ConfigFileError> {
        self.toml_at(text, None)
    }

    fn toml_at(self, text: &str, base: Option<&Path>) -> Result<Self, ConfigFileError> {
        let file: File = toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .map(|span| text[..span.start.min(text.len())].matches('\n').count() + 1);
            let message = redact_values(e.message().trim());
            ConfigFileError::Toml(match line {
                Some(line) => format!("line {line}: {message}"),
                None => message,
            })
        })?;
        file.apply(self, base)
    }

    /// Applies a JSON configuration (the same keys as [`EmbeddedServerBuilder::toml`]).
    ///
    /// # Errors
    /// [`ConfigFileError`] when the text is not valid JSON or does not match the schema.
    pub fn json(self, text: &str) -> Result<Self, ConfigFileError> {
        self.json_at(text, None)
    }

    fn json_at(self, text: &str, base: Option<&Path>) -> Result<Self, ConfigFileError> {
        let file: File = serde_json::from_str(text)
            .map_err(|e| ConfigFileError::Json(redact_values(&e.to_string())))?;
        file.apply(self, base)
    }

    /// Applies a configuration file, TOML or JSON by its extension.
    ///
    /// # Errors
    /// [`ConfigFileError`] when the file cannot be read or is invalid.
    pub fn config_file(self, path: impl AsRef<Path>) -> Result<Self, ConfigFileError> {
        let path = path.as_ref();
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigFileError::Read {
            path: shown.clone(),
            source,
        })?;
        let base = path.parent();
        match path.extension().and_then(|e| e.to_str()) {
            Some(e) if e.eq_ignore_ascii_case("toml") => self.toml_at(&text, base),
            Some(e) if e.eq_ignore_ascii_case("json") => self.json_at(&text, base),
            _ => Err(ConfigFileError::UnknownFormat(shown)),
        }
    }
}

/// Replaces quoted values in a parser message with `…`: a message about an invalid value
/// could otherwise quote a secret. Names in "unknown field"/"missing field" messages stay.
fn redact_values(message: &str) -> String {
    if message.starts_with("unknown field") || message.starts_with("missing field") {
        return message.to_owned();
    }
    let mut out = String::with_capacity(message.len());
    let mut open: Option<char> = None;
    for c in message.chars() {
        match open {
            Some(q) if c == q => {
                out.push('…');
                out.push(c);
                open = None;
            }
            Some(_) => {}
            None => {
                out.push(c);
                if c == '`' || c == '"' {
                    open = Some(c);
                }
            }
        }
    }
    out
}
