//! The command line: every flag, its environment variable and its help.

use std::path::PathBuf;
use std::time::Duration;

use clap::builder::FalseyValueParser;
use clap::{Args, Parser, Subcommand, ValueEnum};
use client_credentials_core::{AuthMethod, BodyFormat};

const ABOUT: &str = "OAuth 2.0 client credentials from the shell: fetch access tokens, or run a \
                     local authorization server for development.";

// The after-help texts are laid out by hand: every line fits in 80 columns, so that clap's
// wrapping (at the terminal width) never breaks an example or its comment. The test
// `help_fits_in_80_columns` (tests/help.rs) holds them to it.
const AFTER_HELP: &str = "\
Examples:
  # Start a local authorization server (it prints a ready-to-paste `token`
  # command):
  client-credentials serve --port 8080 --client demo:demo-secret:read,write

  # Fetch a token; the secret comes from the environment, a file or stdin,
  # never a flag:
  export CC_CLIENT_SECRET=demo-secret
  client-credentials token --token-url http://127.0.0.1:8080/token \\
      --client-id demo --scope read

  # Use it with curl, reusing a still-valid token between runs:
  curl -H \"Authorization: Bearer $(client-credentials token --cache)\" \\
      https://api.example.com/

  # Ask about a token, then revoke it (the cached one here):
  client-credentials introspect --cache \\
      --introspection-url http://127.0.0.1:8080/introspect
  client-credentials revoke --cache \\
      --revocation-url http://127.0.0.1:8080/revoke

Run `client-credentials <command> --help` (token, revoke, introspect, serve)
for every option.";

const TOKEN_ABOUT: &str = "Fetch an access token (client credentials grant) and print it";

const TOKEN_LONG_ABOUT: &str = "\
Fetch an access token with the OAuth 2.0 client credentials grant (RFC 6749 §4.4) and print it \
on stdout: the bare token (for `$(…)`), or with --json the whole token response.

Every option can also come from an environment variable (shown as [env: …]); a flag wins over \
its variable. The client secret is read from CC_CLIENT_SECRET, from a file \
(--client-secret-file) or from standard input (--client-secret-stdin). There is deliberately no \
flag that takes the secret itself: command lines are visible to every user of the machine (ps, \
/proc) and are kept in shell history.

Every auth method but `none` sends the secret, and the default is basic: without a secret the \
command stops with exit code 2 before sending anything. A public client, which has no secret, \
passes --auth-method none.";

const TOKEN_AFTER_HELP: &str = "\
Environment:
  CC_CLIENT_SECRET   the client secret (--client-secret-stdin and
                     --client-secret-file win over it)
  CC_PARAMS          extra parameters when no --param is given,
                     form-encoded: a=1&b=x%20y

Exit codes:
  0  the token was printed
  2  usage or configuration error, such as no client secret for a method
     that needs one (nothing was sent)
  3  the server rejected the request with an OAuth error (invalid_client,
     invalid_scope, ...)
  4  rate limited (429) or server error (5xx): retrying later may work
  5  transport failure (refused, timeout, TLS) or a response that is not a
     token response
  1  anything else (for example stdout was closed)

Output:
  Success: the access token alone on stdout, or with --json one object:
    {\"access_token\", \"token_type\", \"expires_in\" (seconds left),
     \"expires_at\" (RFC 3339), \"expires_at_unix\", \"issued_at\", \"scope\",
     \"scopes\", \"scope_source\", \"extra\", \"deviations\", \"from_cache\"}
  Failure: one line on stderr; with --json also one object on stdout:
    {\"error\": {\"kind\", \"message\", \"exit_code\", \"retryable\",
     \"http_status\", \"oauth_error\", \"oauth_error_description\",
     \"oauth_error_uri\", \"retry_after\", ...}}

Examples:
  export CC_TOKEN_URL=https://auth.example.com/oauth2/token
  export CC_CLIENT_ID=my-service
  # The secret, from the environment (or --client-secret-file PATH):
  export CC_CLIENT_SECRET=...
  client-credentials token --scope orders.read
  client-credentials token --scope 'orders.read orders.write' \\
      --audience https://api.example.com
  pass show my-service |
      client-credentials token --client-secret-stdin --json | jq .expires_at
  # Reuse a still-valid token from ~/.cache/client-credentials:
  client-credentials token --cache
  # A public client, which has no secret:
  client-credentials token --auth-method none --client-id my-cli
  # The endpoints and auth method from the issuer's metadata:
  client-credentials token --issuer https://auth.example.com/tenant-a

  TOKEN=$(client-credentials token --cache) || exit
  curl -H \"Authorization: Bearer $TOKEN\" https://api.example.com/orders";

/// The `client-credentials` command line.
#[derive(Debug, Parser)]
#[command(
    name = "client-credentials",
    version,
    about = ABOUT,
    after_help = AFTER_HELP,
    propagate_version = true,
    arg_required_else_help = true,
    max_term_width = 100
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    #[command(about = TOKEN_ABOUT, long_about = TOKEN_LONG_ABOUT, after_help = TOKEN_AFTER_HELP)]
    Token(TokenArgs),
    #[command(about = REVOKE_ABOUT, long_about = REVOKE_LONG_ABOUT, after_help = OPERATION_AFTER_HELP)]
    Revoke(RevokeArgs),
    #[command(
        about = INTROSPECT_ABOUT,
        long_about = INTROSPECT_LONG_ABOUT,
        after_help = OPERATION_AFTER_HELP
    )]
    Introspect(IntrospectArgs),
    #[command(
        about = crate::serve::ABOUT,
        long_about = crate::serve::LONG_ABOUT,
        after_help = crate::serve::AFTER_HELP
    )]
    Serve(ServeArgs),
}

const REVOKE_ABOUT: &str = "Revoke an access token at the revocation endpoint (RFC 7009)";

const REVOKE_LONG_ABOUT: &str = "\
Revoke an access token at the revocation endpoint (RFC 7009), authenticating as the client \
the same way `token` does (every `token` option applies). Prints nothing on success (with \
--json: {\"revoked\": true}). With --cache and no token given, the cached token of this \
configuration is revoked and removed from the cache.

The token comes from standard input (--token-stdin), a file (--token-file) or CC_ACCESS_TOKEN; \
there is no flag that takes the token itself, since command lines are visible to every user \
of the machine.";

const INTROSPECT_ABOUT: &str = "Ask the introspection endpoint about an access token (RFC 7662)";

const INTROSPECT_LONG_ABOUT: &str = "\
Ask the introspection endpoint (RFC 7662) what it knows about an access token, \
authenticating as the client the same way `token` does (every `token` option applies). Prints \
`active` or `inactive` (exit code 0 either way); with --json the whole answer: {\"active\", \
\"scope\", \"client_id\", \"username\", \"token_type\", \"exp\", \"iat\", \"nbf\", \"sub\", \
\"aud\", \"iss\", \"jti\", \"extra\"} (times in Unix seconds). With --cache and no token given, \
the cached token of this configuration is introspected.

The token comes from standard input (--token-stdin), a file (--token-file) or CC_ACCESS_TOKEN.";

const OPERATION_AFTER_HELP: &str = "\
Exit codes (as for `token`):
  0  done (revoked; introspected, active or not)
  2  usage or configuration error (nothing was sent)
  3  the server rejected the request with an OAuth error (invalid_client,
     ...)
  4  rate limited (429) or server error (5xx): retrying later may work
  5  transport failure (refused, timeout, TLS) or an answer that cannot be
     understood
  1  anything else (for example stdout was closed)

Failure: one line on stderr; with --json also the error object of `token` on
stdout.

Examples:
  client-credentials token --cache > /dev/null
  client-credentials introspect --cache \\
      --introspection-url https://auth.example.com/introspect
  client-credentials revoke --cache \\
      --revocation-url https://auth.example.com/revoke
  printf %s \"$TOKEN\" |
      client-credentials revoke --token-stdin --revocation-url URL";

/// Where `revoke` and `introspect` take the access token from.
#[derive(Debug, Args)]
pub(crate) struct TokenSource {
    /// Read the access token from standard input (surrounding whitespace is ignored)
    #[arg(
        long,
        help_heading = "Access token (or set CC_ACCESS_TOKEN, or use --cache)"
    )]
    pub(crate) token_stdin: bool,

    /// Read the access token from this file (surrounding whitespace is ignored)
    #[arg(
        long,
        value_name = "PATH",
        help_heading = "Access token (or set CC_ACCESS_TOKEN, or use --cache)"
    )]
    pub(crate) token_file: Option<PathBuf>,
}

/// `client-credentials revoke`.
#[derive(Debug, Args)]
pub(crate) struct RevokeArgs {
    /// The revocation endpoint (RFC 7009): https://…, or http:// on a loopback host only
    #[arg(
        long,
        env = "CC_REVOCATION_URL",
        value_name = "URL",
        help_heading = "Client"
    )]
    pub(crate) revocation_url: Option<String>,

    #[command(flatten)]
    pub(crate) token: TokenSource,

    #[command(flatten)]
    pub(crate) common: TokenArgs,
}

/// `client-credentials introspect`.
#[derive(Debug, Args)]
pub(crate) struct IntrospectArgs {
    /// The introspection endpoint (RFC 7662): https://…, or http:// on a loopback host only
    #[arg(
        long,
        env = "CC_INTROSPECTION_URL",
        value_name = "URL",
        help_heading = "Client"
    )]
    pub(crate) introspection_url: Option<String>,

    #[command(flatten)]
    pub(crate) token: TokenSource,

    #[command(flatten)]
    pub(crate) common: TokenArgs,
}

/// `client-credentials token`.
#[derive(Debug, Args)]
pub(crate) struct TokenArgs {
    /// The token endpoint: https://…, or http:// on a loopback host (localhost, 127.0.0.1,
    /// [::1]) only
    #[arg(
        long,
        env = "CC_TOKEN_URL",
        value_name = "URL",
        help_heading = "Client"
    )]
    pub(crate) token_url: Option<String>,

    /// Discover the endpoints from the issuer's metadata (RFC 8414, or OpenID Connect
    /// Discovery) instead of --token-url; the auth method follows what the server lists
    /// unless --auth-method is given
    #[arg(long, env = "CC_ISSUER", value_name = "URL", help_heading = "Client")]
    pub(crate) issuer: Option<String>,

    /// The client id
    #[arg(long, env = "CC_CLIENT_ID", value_name = "ID", help_heading = "Client")]
    pub(crate) client_id: Option<String>,

    /// Read the client secret from this file (trailing newlines are ignored)
    #[arg(
        long,
        env = "CC_CLIENT_SECRET_FILE",
        value_name = "PATH",
        help_heading = "Client secret (or set CC_CLIENT_SECRET)"
    )]
    pub(crate) client_secret_file: Option<PathBuf>,

    /// Read the client secret from standard input (trailing newlines are ignored); stdin must
    /// not be a terminal
    #[arg(long, help_heading = "Client secret (or set CC_CLIENT_SECRET)")]
    pub(crate) client_secret_stdin: bool,

    /// How the client authenticates [default: basic; private-key-jwt with --private-key;
    /// client-secret-jwt with --jwt-alg HS256]. Every method but `none` (a public client)
    /// and `private-key-jwt` needs the client secret: without it nothing is sent and the
    /// exit code is 2
    #[arg(
        long,
        env = "CC_AUTH_METHOD",
        value_enum,
        value_name = "METHOD",
        help_heading = "Request"
    )]
    pub(crate) auth_method: Option<AuthMethodArg>,

    /// Authenticate with private_key_jwt: sign each request's client assertion with this
    /// PEM private key (PKCS#8, PKCS#1 or SEC1; RSA, P-256 or Ed25519). No secret is needed
    #[arg(
        long,
        env = "CC_PRIVATE_KEY_FILE",
        value_name = "PATH",
        help_heading = "Signed client assertions"
    )]
    pub(crate) private_key: Option<PathBuf>,

    /// Authenticate with private_key_jwt, the assertion made elsewhere: read this file for
    /// every request (a Kubernetes projected service-account token,
    /// AZURE_FEDERATED_TOKEN_FILE). A missing or empty file sends nothing; the exit code is 2
    #[arg(
        long,
        env = "CC_CLIENT_ASSERTION_FILE",
        value_name = "PATH",
        conflicts_with = "private_key",
        help_heading = "Signed client assertions"
    )]
    pub(crate) client_assertion_file: Option<PathBuf>,

    /// The assertion's signing algorithm [default: the key's: RS256, ES256 or EdDSA]. PS256
    /// for an RSA key; HS256 signs with the client secret (client_secret_jwt)
    #[arg(
        long,
        env = "CC_JWT_ALG",
        value_enum,
        value_name = "ALG",
        help_heading = "Signed client assertions"
    )]
    pub(crate) jwt_alg: Option<JwtAlgArg>,

    /// Present this client certificate (PEM, leaf first) on every connection, for
    /// tls_client_auth (the default with it and no secret) or self_signed_tls_client_auth,
    /// and certificate-bound tokens (RFC 8705). The key is --key, or in the same file
    #[arg(
        long,
        env = "CC_CLIENT_CERT_FILE",
        value_name = "PATH",
        help_heading = "Mutual TLS"
    )]
    pub(crate) cert: Option<PathBuf>,

    /// The private key of --cert (PEM: PKCS#8, PKCS#1 or SEC1)
    #[arg(
        long,
        env = "CC_CLIENT_KEY_FILE",
        value_name = "PATH",
        requires = "cert",
        help_heading = "Mutual TLS"
    )]
    pub(crate) key: Option<PathBuf>,

    /// Verify the servers against these CA certificates (PEM) instead of the public roots:
    /// a private CA
    #[arg(
        long,
        env = "CC_CA_CERT_FILE",
        value_name = "PATH",
        help_heading = "Mutual TLS"
    )]
    pub(crate) ca_cert: Option<PathBuf>,

    /// Ask for a DPoP-bound token (RFC 9449): every token request carries a proof signed with
    /// a key made for this run (ES256), or with --dpop-key. A DPoP token is useless without
    /// the key: --json prints its thumbprint (`dpop_jkt`, the token's `cnf.jkt`)
    #[arg(long, help_heading = "Sender-constrained tokens (DPoP)")]
    pub(crate) dpop: bool,

    /// The DPoP key, PEM (PKCS#8 or SEC1; P-256 or Ed25519); implies --dpop
    #[arg(
        long,
        env = "CC_DPOP_KEY_FILE",
        value_name = "PATH",
        help_heading = "Sender-constrained tokens (DPoP)"
    )]
    pub(crate) dpop_key: Option<PathBuf>,

    /// The key id (`kid`) that the server knows the private key by
    #[arg(
        long,
        env = "CC_KEY_ID",
        value_name = "KID",
        help_heading = "Signed client assertions"
    )]
    pub(crate) key_id: Option<String>,

    /// The request body encoding
    #[arg(
        long,
        env = "CC_BODY_FORMAT",
        value_enum,
        default_value_t = BodyFormatArg::Form,
        value_name = "FORMAT",
        help_heading = "Request"
    )]
    pub(crate) body_format: BodyFormatArg,

    /// A scope to request; repeat the flag or separate scopes with spaces
    #[arg(
        long = "scope",
        short = 's',
        env = "CC_SCOPE",
        value_delimiter = ' ',
        value_name = "SCOPE",
        help_heading = "Request"
    )]
    pub(crate) scopes: Vec<String>,

    /// What joins scopes in the request, for providers that want a comma [default: a space]
    #[arg(
        long,
        env = "CC_SCOPE_SEPARATOR",
        value_name = "SEP",
        help_heading = "Request"
    )]
    pub(crate) scope_separator: Option<String>,

    /// The `audience` parameter (Auth0, Okta and others)
    #[arg(
        long,
        env = "CC_AUDIENCE",
        value_name = "AUDIENCE",
        help_heading = "Request"
    )]
    pub(crate) audience: Option<String>,

    /// A resource indicator (RFC 8707), an absolute URI; repeat the flag or separate with
    /// spaces
    #[arg(
        long = "resource",
        env = "CC_RESOURCE",
        value_delimiter = ' ',
        value_name = "URI",
        help_heading = "Request"
    )]
    pub(crate) resources: Vec<String>,

    /// An extra body parameter, NAME=VALUE; repeatable. Reserved names (grant_type, scope,
    /// client_id, client_secret, audience, resource, ...) are refused [env: CC_PARAMS, as
    /// a=1&b=2]
    #[arg(
        long = "param",
        short = 'p',
        value_name = "NAME=VALUE",
        value_parser = parse_param,
        help_heading = "Request"
    )]
    pub(crate) params: Vec<(String, String)>,

    /// Also accept tokens of this type besides Bearer (for example DPoP or N_A); repeatable
    #[arg(
        long,
        env = "CC_ACCEPT_TOKEN_TYPE",
        value_delimiter = ' ',
        value_name = "TYPE",
        help_heading = "Request"
    )]
    pub(crate) accept_token_type: Vec<String>,

    /// How long the whole request may take: 15, 15s, 500ms, 1m
    #[arg(
        long,
        env = "CC_TIMEOUT",
        value_name = "DURATION",
        default_value = "15s",
        value_parser = parse_timeout,
        help_heading = "Request"
    )]
    pub(crate) timeout: Duration,

    /// Print the whole token (or the error) as one JSON object on stdout
    #[arg(long, help_heading = "Output")]
    pub(crate) json: bool,

    /// Say on stderr where the token came from and which deviations from RFC 6749 the server
    /// showed
    #[arg(long, short = 'v', help_heading = "Output")]
    pub(crate) verbose: bool,

    /// Reuse a still-valid token from the per-user cache, and store new tokens in it
    #[arg(
        long,
        env = "CC_CACHE",
        value_parser = FalseyValueParser::new(),
        help_heading = "Cache"
    )]
    pub(crate) cache: bool,

    /// Ignore a cached token: fetch a new one (and store it with --cache)
    #[arg(long, help_heading = "Cache")]
    pub(crate) refresh: bool,

    /// The cache directory [default: $XDG_CACHE_HOME/client-credentials, or
    /// ~/.cache/client-credentials]
    #[arg(long, env = "CC_CACHE_DIR", value_name = "DIR", help_heading = "Cache")]
    pub(crate) cache_dir: Option<PathBuf>,

    /// A cached token that expires sooner than this is fetched again
    #[arg(
        long,
        env = "CC_MIN_VALIDITY",
        value_name = "DURATION",
        default_value = "60s",
        value_parser = parse_duration,
        help_heading = "Cache"
    )]
    pub(crate) min_validity: Duration,
}

/// `--auth-method`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum AuthMethodArg {
    /// client_secret_basic: HTTP Basic, id and secret form-encoded first (RFC 6749 §2.3.1)
    #[value(alias = "client_secret_basic")]
    Basic,
    /// HTTP Basic without the form-encoding, for servers that compare raw values
    #[value(name = "basic-raw")]
    BasicRaw,
    /// client_secret_post: client_id and client_secret in the request body
    #[value(alias = "client_secret_post")]
    Post,
    /// A public client: only client_id, in the body
    None,
    /// private_key_jwt: a client assertion signed with --private-key
    #[value(name = "private-key-jwt", alias = "private_key_jwt")]
    PrivateKeyJwt,
    /// client_secret_jwt: a client assertion signed with HS256 by the client secret
    #[value(name = "client-secret-jwt", alias = "client_secret_jwt")]
    ClientSecretJwt,
    /// tls_client_auth (RFC 8705): the --cert certificate, from a CA the server trusts;
    /// client_id in the body, no secret
    #[value(name = "tls-client-auth", alias = "tls_client_auth")]
    TlsClientAuth,
    /// self_signed_tls_client_auth (RFC 8705): the --cert certificate, registered with the
    /// client; client_id in the body, no secret
    #[value(
        name = "self-signed-tls-client-auth",
        alias = "self_signed_tls_client_auth"
    )]
    SelfSignedTlsClientAuth,
}

/// `--jwt-alg`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum JwtAlgArg {
    /// RSASSA-PKCS1-v1_5 with SHA-256 (an RSA key)
    #[value(name = "RS256", alias = "rs256")]
    Rs256,
    /// RSASSA-PSS with SHA-256 (an RSA key)
    #[value(name = "PS256", alias = "ps256")]
    Ps256,
    /// ECDSA P-256 with SHA-256 (a P-256 key)
    #[value(name = "ES256", alias = "es256")]
    Es256,
    /// Ed25519 (an Ed25519 key)
    #[value(name = "EdDSA", alias = "eddsa")]
    EdDsa,
    /// HMAC with SHA-256 keyed by the client secret: client_secret_jwt
    #[value(name = "HS256", alias = "hs256")]
    Hs256,
}

impl From<JwtAlgArg> for client_credentials_core::AssertionAlgorithm {
    fn from(arg: JwtAlgArg) -> Self {
        match arg {
            JwtAlgArg::Rs256 => Self::Rs256,
            JwtAlgArg::Ps256 => Self::Ps256,
            JwtAlgArg::Es256 => Self::Es256,
            JwtAlgArg::EdDsa => Self::EdDsa,
            JwtAlgArg::Hs256 => Self::Hs256,
        }
    }
}

impl AuthMethodArg {
    /// Whether the method needs the client secret (every method but `none` and
    /// `private-key-jwt`).
    pub(crate) fn needs_secret(self) -> bool {
        !matches!(
            self,
            Self::None | Self::PrivateKeyJwt | Self::TlsClientAuth | Self::SelfSignedTlsClientAuth
        )
    }

    /// Whether the method is mutual TLS, which needs --cert.
    pub(crate) fn is_mutual_tls(self) -> bool {
        matches!(self, Self::TlsClientAuth | Self::SelfSignedTlsClientAuth)
    }
}

impl From<AuthMethodArg> for AuthMethod {
    fn from(arg: AuthMethodArg) -> Self {
        match arg {
            AuthMethodArg::Basic => Self::ClientSecretBasic,
            AuthMethodArg::BasicRaw => Self::ClientSecretBasicRaw,
            AuthMethodArg::Post => Self::client_secret_post(),
            AuthMethodArg::None => Self::None,
            AuthMethodArg::PrivateKeyJwt => Self::PrivateKeyJwt,
            AuthMethodArg::ClientSecretJwt => Self::ClientSecretJwt,
            AuthMethodArg::TlsClientAuth => Self::TlsClientAuth,
            AuthMethodArg::SelfSignedTlsClientAuth => Self::SelfSignedTlsClientAuth,
        }
    }
}

/// `--body-format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum BodyFormatArg {
    /// application/x-www-form-urlencoded, as RFC 6749 requires
    Form,
    /// application/json, for servers that take only JSON
    Json,
}

impl From<BodyFormatArg> for BodyFormat {
    fn from(arg: BodyFormatArg) -> Self {
        match arg {
            BodyFormatArg::Form => Self::Form,
            BodyFormatArg::Json => Self::Json,
        }
    }
}

/// `client-credentials serve`.
#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// The port on 127.0.0.1; 0 picks a free one [default: the config file's port, else 0]
    #[arg(long, env = "CC_SERVE_PORT", value_name = "PORT")]
    pub(crate) port: Option<u16>,

    /// A client, ID:SECRET or ID:SECRET:SCOPE,SCOPE…; repeatable. Its scopes must be declared
    /// (--scope, or [scopes] in --config) when any scope is declared, unless
    /// --declare-client-scopes is given; when none is, they define the scope set. Without
    /// scopes the client may ask for every scope. Without any client (and no --config), a
    /// client demo-client:demo-secret is registered
    #[arg(long = "client", short = 'c', value_name = "ID:SECRET[:SCOPES]", value_parser = parse_client)]
    pub(crate) clients: Vec<ClientSpec>,

    /// A scope to declare, NAME or NAME=DESCRIPTION; repeatable [default with no scope
    /// anywhere: read and write]
    #[arg(long = "scope", short = 's', value_name = "NAME[=DESCRIPTION]", value_parser = parse_scope)]
    pub(crate) scopes: Vec<(String, String)>,

    /// Declare the scopes of every --client too, instead of refusing (exit code 2) one that
    /// is not declared with --scope or in --config
    #[arg(long)]
    pub(crate) declare_client_scopes: bool,

    /// A TOML or JSON configuration file (clients, scopes, lifetime, token format…); flags
    /// add to it
    #[arg(long, env = "CC_SERVE_CONFIG", value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,

    /// Issue RFC 9068 JWT access tokens (signed with RS256, key at /jwks.json) instead of
    /// opaque ones
    #[arg(long)]
    pub(crate) jwt: bool,

    /// How long issued tokens live: 3600, 1h, 90s [default: 1h]
    #[arg(long, value_name = "DURATION", value_parser = parse_timeout)]
    pub(crate) token_lifetime: Option<Duration>,

    /// Print the endpoints as one JSON object on stdout instead of the banner
    #[arg(long)]
    pub(crate) json: bool,
}

/// A `--client` value. `Debug` leaves the secret out.
#[derive(Clone)]
pub(crate) struct ClientSpec {
    pub(crate) id: String,
    pub(crate) secret: String,
    /// `None`: every scope of the server.
    pub(crate) scopes: Option<Vec<String>>,
}

impl std::fmt::Debug for ClientSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientSpec")
            .field("id", &self.id)
            .field("secret", &"[redacted]")
            .field("scopes", &self.scopes)
            .finish()
    }
}

fn parse_client(value: &str) -> Result<ClientSpec, String> {
    let (id, rest) = value
        .split_once(':')
        .ok_or_else(|| "expected ID:SECRET or ID:SECRET:SCOPES".to_owned())?;
    let (secret, scopes) = match rest.split_once(':') {
        Some((secret, scopes)) => (secret, Some(scopes)),
        None => (rest, None),
    };
    if id.is_empty() {
        return Err("the client id is empty".to_owned());
    }
    if secret.is_empty() {
        return Err("the client secret is empty".to_owned());
    }
    let scopes = scopes.map(|s| {
        s.split([',', ' '])
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    });
    Ok(ClientSpec {
        id: id.to_owned(),
        secret: secret.to_owned(),
        scopes,
    })
}

fn parse_scope(value: &str) -> Result<(String, String), String> {
    let (name, description) = match value.split_once('=') {
        Some((name, description)) => (name, description),
        None => (value, value),
    };
    if name.is_empty() {
        return Err("the scope name is empty".to_owned());
    }
    Ok((name.to_owned(), description.to_owned()))
}

fn parse_param(value: &str) -> Result<(String, String), String> {
    match value.split_once('=') {
        Some(("", _)) => Err("the parameter name is empty".to_owned()),
        Some((name, value)) => Ok((name.to_owned(), value.to_owned())),
        None => Err("expected NAME=VALUE".to_owned()),
    }
}

/// Parses `CC_PARAMS` (`a=1&b=x%20y`).
pub(crate) fn parse_params_env(value: &str) -> Result<Vec<(String, String)>, String> {
    let params: Vec<(String, String)> = form_urlencoded::parse(value.as_bytes())
        .map(|(n, v)| (n.into_owned(), v.into_owned()))
        .collect();
    if params.iter().any(|(n, _)| n.is_empty()) {
        return Err("CC_PARAMS holds a parameter with an empty name".to_owned());
    }
    Ok(params)
}

/// `15`, `15s`, `1.5s`, `500ms`, `2m`, `1h`.
pub(crate) fn parse_duration(value: &str) -> Result<Duration, String> {
    let value = value.trim();
    let split = value
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(value.len());
    let (number, unit) = value.split_at(split);
    let not_a_duration = || format!("{value:?} is not a duration such as 15s, 500ms or 2m");
    if number.is_empty() {
        return Err(not_a_duration());
    }
    let scale = match unit.trim() {
        "" | "s" | "sec" | "secs" => 1.0,
        "ms" => 0.001,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        other => return Err(format!("unknown unit {other:?} (use ms, s, m or h)")),
    };
    let number: f64 = number.parse().map_err(|_| not_a_duration())?;
    Duration::try_from_secs_f64(number * scale)
        .ok()
        .filter(|d| *d <= Duration::from_secs(10 * 365 * 24 * 3600))
        .ok_or_else(|| format!("{value:?} is out of range"))
}

/// A duration that is not zero.
fn parse_timeout(value: &str) -> Result<Duration, String> {
    match parse_duration(value)? {
        d if d.is_zero() => Err("must be greater than zero".to_owned()),
        d => Ok(d),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use clap::CommandFactory as _;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("15").unwrap(), Duration::from_secs(15));
        assert_eq!(parse_duration("15s").unwrap(), Duration::from_secs(15));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        for bad in ["", "s", "-1", "1x", "1e400", "NaN", "inf", "1.2.3"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert!(parse_timeout("0").is_err());
    }

    #[test]
    fn clients_and_params() {
        let c = parse_client("a:b").unwrap();
        assert_eq!(
            (c.id.as_str(), c.secret.as_str(), c.scopes),
            ("a", "b", None)
        );
        let c = parse_client("a:b:read,orders:write").unwrap();
        assert_eq!(c.scopes.unwrap(), ["read", "orders:write"]);
        assert!(parse_client("a").is_err());
        assert!(parse_client(":b").is_err());
        assert!(parse_client("a:").is_err());
        assert_eq!(parse_param("a=b=c").unwrap(), ("a".into(), "b=c".into()));
        assert!(parse_param("=b").is_err());
        assert!(parse_param("ab").is_err());
        assert_eq!(
            parse_params_env("a=1&b=x%20y").unwrap(),
            [("a".into(), "1".into()), ("b".into(), "x y".into())]
        );
    }
}
