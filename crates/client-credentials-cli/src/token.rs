//! `client-credentials token`: one token fetch (or cache hit), printed.

use std::io::{self, IsTerminal as _, Write as _};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use clap::ValueEnum as _;
use client_credentials_core::{ClientSecret, Config, ConfigBuilder, ConfigError, Endpoint, Token};
use client_credentials_ureq::{Client, Policy};

use crate::cache::{self, Cache, Lookup};
use crate::cli::{AuthMethodArg, JwtAlgArg, TokenArgs, parse_params_env};
use crate::exit::{Exit, Failure, one_line};
use crate::output::{Redactor, error_json, render, token_json};
use crate::secret;

/// The environment variable of extra parameters (form-encoded), used when no `--param` is.
const PARAMS_ENV: &str = "CC_PARAMS";

/// A token and where it came from.
struct Fetched {
    token: Arc<Token>,
    from_cache: bool,
    /// The thumbprint of the DPoP key the token is bound to, with --dpop.
    dpop_jkt: Option<String>,
}

/// Runs `token` and returns the exit code.
pub(crate) fn run(args: &TokenArgs) -> Exit {
    let mut ui = Ui {
        redactor: Redactor::default(),
        verbose: args.verbose,
    };
    let pretty = io::stdout().is_terminal();
    let failure = match fetch(args, &mut ui) {
        Ok(fetched) => match print_token(args, &fetched, &ui, pretty) {
            Ok(()) => return Exit::Success,
            Err(e) => Failure::Output(e),
        },
        Err(failure) => failure,
    };
    ui.error(&failure);
    if args.json && !matches!(failure, Failure::Output(_)) {
        let object = error_json(&failure, Some(&ui.redactor));
        // A closed stdout: the line on stderr already said what failed.
        let _ = writeln!(io::stdout().lock(), "{}", render(&object, pretty));
    }
    failure.exit()
}

fn print_token(args: &TokenArgs, fetched: &Fetched, ui: &Ui, pretty: bool) -> io::Result<()> {
    let mut out = io::stdout().lock();
    if args.json {
        let object = token_json(
            &fetched.token,
            SystemTime::now(),
            fetched.from_cache,
            &ui.redactor,
        );
        let mut object = object;
        if let (Some(jkt), Some(map)) = (&fetched.dpop_jkt, object.as_object_mut()) {
            map.insert("dpop_jkt".into(), jkt.clone().into());
        }
        writeln!(out, "{}", render(&object, pretty))?;
    } else {
        writeln!(out, "{}", fetched.token.access_token().expose_secret())?;
    }
    out.flush()
}

/// Messages on stderr, the client secret scrubbed.
pub(crate) struct Ui {
    pub(crate) redactor: Redactor,
    pub(crate) verbose: bool,
}

impl Ui {
    fn line(&self, text: &str) {
        let text = one_line(&self.redactor.text(text));
        let _ = writeln!(io::stderr().lock(), "client-credentials: {text}");
    }

    pub(crate) fn note(&self, text: &str) {
        if self.verbose {
            self.line(text);
        }
    }

    pub(crate) fn warn(&self, text: &str) {
        self.line(&format!("warning: {text}"));
    }

    pub(crate) fn error(&self, failure: &Failure) {
        self.line(&format!("error: {}", failure.message()));
    }
}

fn fetch(args: &TokenArgs, ui: &mut Ui) -> Result<Fetched, Failure> {
    let secret = secret::read(args)?;
    ui.redactor
        .set_secret(secret.clone(), args.client_id.as_deref());
    let config = build_config(args, secret)?;
    let request = config.default_request();
    let dpop_jkt = config.dpop_key().map(|key| key.thumbprint().to_owned());

    let cache = if args.cache {
        open_cache(args, ui)
    } else {
        None
    };
    if let Some(cache) = &cache {
        let path = cache.path(&request);
        if args.refresh {
            ui.note("--refresh: not reading the cache");
        } else {
            match cache.load(&request, SystemTime::now(), args.min_validity) {
                Lookup::Hit(token) => {
                    ui.note(&format!("using the cached token in {}", path.display()));
                    return Ok(Fetched {
                        token: Arc::new(token),
                        from_cache: true,
                        dpop_jkt,
                    });
                }
                Lookup::Miss => ui.note(&format!("no cached token in {}", path.display())),
                Lookup::Expiring => ui.note(&format!(
                    "the cached token expires within {}s; fetching a new one",
                    args.min_validity.as_secs()
                )),
                Lookup::Ignored(why) => ui.note(&format!(
                    "ignoring the cache file {}: {why}; it will be replaced",
                    path.display()
                )),
            }
        }
    }

    // The session's backstop must not cut a request that the transport still allows.
    let mut policy = Policy::default();
    policy.request_timeout = policy
        .request_timeout
        .max(args.timeout.saturating_add(Duration::from_secs(5)));
    let mut builder = Client::builder(config.clone())
        .timeout(args.timeout)
        .policy(policy);
    if let Some(roots) = root_certificates(args)? {
        builder = builder.root_certificates(roots);
    }
    let client = builder.build();
    let started = Instant::now();
    ui.note(&format!(
        "requesting a token from {} as {}",
        config.token_url(),
        config.client_id()
    ));
    let token = client.token().map_err(|e| match e.token_error() {
        Some(t) => Failure::Token(t.clone(), Endpoint::Token),
        None => Failure::Config(e.to_string()),
    })?;
    ui.note(&format!(
        "token received in {} ms",
        started.elapsed().as_millis()
    ));
    if !token.deviations().is_empty() {
        let list = serde_json::to_string(token.deviations()).unwrap_or_default();
        ui.note(&format!("the server deviated from RFC 6749 §5.1: {list}"));
    }
    if let Some(cache) = &cache {
        let path = cache.path(&request);
        match cache.store(&request, &token) {
            Ok(()) => ui.note(&format!("stored the token in {}", path.display())),
            Err(e) => ui.warn(&format!(
                "could not write the token cache {}: {e}",
                path.display()
            )),
        }
    }
    Ok(Fetched {
        token,
        from_cache: false,
        dpop_jkt,
    })
}

pub(crate) fn open_cache(args: &TokenArgs, ui: &Ui) -> Option<Cache> {
    let Some(dir) = args.cache_dir.clone().or_else(cache::default_dir) else {
        ui.warn(
            "--cache: no cache directory (set CC_CACHE_DIR, XDG_CACHE_HOME or HOME); not caching",
        );
        return None;
    };
    match Cache::open(dir.clone()) {
        Ok(cache) => Some(cache),
        Err(e) => {
            ui.warn(&format!(
                "--cache: cannot use {}: {e}; not caching",
                dir.display()
            ));
            None
        }
    }
}

fn non_empty(values: &[String]) -> Vec<String> {
    values.iter().filter(|v| !v.is_empty()).cloned().collect()
}

/// The method of `args`: `--auth-method`, or the one that `--private-key` or `--jwt-alg
/// HS256` implies, or Basic; a contradiction is a configuration error.
fn auth_method(args: &TokenArgs) -> Result<AuthMethodArg, Failure> {
    let hs256 = args.jwt_alg == Some(JwtAlgArg::Hs256);
    if args.client_assertion_file.is_some() {
        if args.jwt_alg.is_some() || args.key_id.is_some() {
            return Err(Failure::Config(
                "--client-assertion-file sends an assertion made elsewhere: --jwt-alg and \
                 --key-id sign with --private-key"
                    .to_owned(),
            ));
        }
        return match args.auth_method {
            None | Some(AuthMethodArg::PrivateKeyJwt) => Ok(AuthMethodArg::PrivateKeyJwt),
            Some(_) => Err(Failure::Config(
                "--client-assertion-file is sent with private_key_jwt, not another --auth-method"
                    .to_owned(),
            )),
        };
    }
    let method = match (args.private_key.is_some(), args.auth_method) {
        (true, None | Some(AuthMethodArg::PrivateKeyJwt)) if !hs256 => AuthMethodArg::PrivateKeyJwt,
        (true, _) => {
            return Err(Failure::Config(
                "--private-key signs private_key_jwt assertions: it goes with neither another \
                 --auth-method nor --jwt-alg HS256"
                    .to_owned(),
            ));
        }
        (false, None) if hs256 => AuthMethodArg::ClientSecretJwt,
        (false, Some(AuthMethodArg::PrivateKeyJwt)) => {
            return Err(Failure::Config(
                "--auth-method private-key-jwt needs --private-key PATH or \
                 --client-assertion-file PATH"
                    .to_owned(),
            ));
        }
        (false, method) => method.unwrap_or(AuthMethodArg::Basic),
    };
    if args.jwt_alg.is_some()
        && !matches!(
            method,
            AuthMethodArg::PrivateKeyJwt | AuthMethodArg::ClientSecretJwt
        )
    {
        return Err(Failure::Config(
            "--jwt-alg is for signed assertions: --private-key PATH, or HS256 with a secret"
                .to_owned(),
        ));
    }
    Ok(method)
}

/// The file a flag names, as text (`what` names it in the error, as "the private key ");
/// zeroized when dropped, since it may hold a key. The error never shows what it holds.
fn read_pem(path: &std::path::Path, what: &str) -> Result<zeroize::Zeroizing<String>, Failure> {
    std::fs::read_to_string(path)
        .map(zeroize::Zeroizing::new)
        .map_err(|e| cannot_read(path, what, &e))
}

/// [`read_pem`] as bytes, named by its path alone.
fn read_file(path: &std::path::Path) -> Result<zeroize::Zeroizing<Vec<u8>>, Failure> {
    std::fs::read(path)
        .map(zeroize::Zeroizing::new)
        .map_err(|e| cannot_read(path, "", &e))
}

fn cannot_read(path: &std::path::Path, what: &str, e: &std::io::Error) -> Failure {
    Failure::Config(format!("cannot read {what}{}: {e}", path.display()))
}

/// The key of `--private-key`, with `--jwt-alg` and `--key-id`. The errors name the file,
/// never what it holds.
fn assertion_key(args: &TokenArgs) -> Result<client_credentials_core::AssertionKey, Failure> {
    let path = args
        .private_key
        .as_deref()
        .unwrap_or(std::path::Path::new(""));
    let pem = read_pem(path, "the private key ")?;
    let bad = |e: ConfigError| Failure::Config(format!("{}: {e}", path.display()));
    let mut key = client_credentials_core::AssertionKey::from_pem(&pem).map_err(bad)?;
    if let Some(alg) = args.jwt_alg {
        key = key.with_algorithm(alg.into()).map_err(bad)?;
    }
    if let Some(kid) = args.key_id.as_deref().filter(|k| !k.is_empty()) {
        key = key.with_key_id(kid);
    }
    Ok(key)
}

/// The client certificate of `--cert` and `--key`. The errors name the files, never what
/// they hold.
fn client_identity(
    args: &TokenArgs,
) -> Result<Option<client_credentials_core::ClientIdentity>, Failure> {
    let Some(cert) = &args.cert else {
        return Ok(None);
    };
    let certificates = read_file(cert)?;
    let key_path = args.key.as_deref().unwrap_or(cert);
    let key = read_file(key_path)?;
    client_credentials_core::ClientIdentity::from_pem(&*certificates, &*key)
        .map(Some)
        .map_err(|e| {
            let file = match e {
                ConfigError::NoCertificate => cert,
                _ => key_path,
            };
            Failure::Config(format!("{}: {e}", file.display()))
        })
}

/// The CA certificates of `--ca-cert`, for the agent the CLI builds.
pub(crate) fn root_certificates(
    args: &TokenArgs,
) -> Result<Option<Vec<client_credentials_ureq::ureq::tls::Certificate<'static>>>, Failure> {
    let Some(path) = &args.ca_cert else {
        return Ok(None);
    };
    let pem = read_file(path)?;
    let roots: Vec<_> = client_credentials_ureq::ureq::tls::parse_pem(&pem)
        .filter_map(|item| match item {
            Ok(client_credentials_ureq::ureq::tls::PemItem::Certificate(c)) => Some(c.to_owned()),
            _ => None,
        })
        .collect();
    if roots.is_empty() {
        return Err(Failure::Config(format!(
            "{}: no PEM certificate",
            path.display()
        )));
    }
    Ok(Some(roots))
}

/// The DPoP key of `--dpop-key`, or with `--dpop` alone one made for this run. The errors
/// name the file, never what it holds.
fn dpop_key(args: &TokenArgs) -> Result<Option<client_credentials_core::dpop::DpopKey>, Failure> {
    use client_credentials_core::{AssertionAlgorithm, AssertionKey, dpop::DpopKey};
    let key = match (&args.dpop_key, args.dpop) {
        (Some(path), _) => {
            let pem = read_pem(path, "the DPoP key ")?;
            AssertionKey::from_pem(&pem)
                .map_err(|e| Failure::Config(format!("{}: {e}", path.display())))?
        }
        (None, true) => {
            let mut random = zeroize::Zeroizing::new([0_u8; 32]);
            // A P-256 scalar is refused about once in 2^32 draws: draw again.
            (0..4)
                .find_map(|_| {
                    getrandom::fill(&mut *random).ok()?;
                    AssertionKey::from_random(AssertionAlgorithm::Es256, &random).ok()
                })
                .ok_or_else(|| Failure::Config("cannot make a DPoP key".to_owned()))?
        }
        (None, false) => return Ok(None),
    };
    Ok(Some(DpopKey::new(key)))
}

fn build_config(args: &TokenArgs, secret: Option<ClientSecret>) -> Result<Config, Failure> {
    build_config_with(args, secret, |builder| builder)
}

/// The configuration of `args`, with what `more` adds (revocation and introspection URLs).
pub(crate) fn build_config_with(
    args: &TokenArgs,
    secret: Option<ClientSecret>,
    more: impl FnOnce(ConfigBuilder) -> ConfigBuilder,
) -> Result<Config, Failure> {
    let token_url = args.token_url.as_deref().filter(|u| !u.is_empty());
    let issuer = args.issuer.as_deref().filter(|u| !u.is_empty());
    if token_url.is_none() && issuer.is_none() {
        return Err(Failure::Config(
            "no token endpoint: pass --token-url URL (or --issuer URL) or set CC_TOKEN_URL"
                .to_owned(),
        ));
    }
    let client_id = args
        .client_id
        .as_deref()
        .filter(|id| !id.is_empty())
        .ok_or_else(|| {
            Failure::Config("no client id: pass --client-id ID or set CC_CLIENT_ID".to_owned())
        })?;
    // Without --auth-method the client is a confidential one (Basic, or the assertion
    // method that --private-key or --jwt-alg HS256 names): a forgotten secret is a mistake
    // to report here, not a public-client request for the server to refuse.
    let mut method = auth_method(args)?;
    // A certificate and no secret nor other method: the certificate authenticates.
    if args.cert.is_some() && args.auth_method.is_none() && secret.is_none() {
        method = match method {
            AuthMethodArg::Basic => AuthMethodArg::TlsClientAuth,
            other => other,
        };
    }
    if method.is_mutual_tls() && args.cert.is_none() {
        return Err(Failure::Config(
            "mutual TLS (tls_client_auth, self_signed_tls_client_auth) needs --cert PATH \
             (and --key PATH unless the key is in the same file)"
                .to_owned(),
        ));
    }
    if secret.is_none() && method.needs_secret() {
        let named = args
            .auth_method
            .or((method != AuthMethodArg::Basic).then_some(method));
        return Err(Failure::Config(missing_secret_message(named)));
    }
    let mut builder = match issuer {
        Some(issuer) => ConfigBuilder::from_metadata(&discover(issuer)?),
        None => Config::builder(),
    };
    if let Some(token_url) = token_url {
        builder = builder.token_url(token_url);
    }
    builder = builder
        .client_id(client_id)
        .body_format(args.body_format.into());
    // With --issuer, the metadata chose the method unless one was given.
    if issuer.is_none() || args.auth_method.is_some() {
        builder = builder.auth_method(method.into());
    }
    if let Some(secret) = secret {
        builder = builder.client_secret(secret);
    }
    if let Some(file) = &args.client_assertion_file {
        builder = builder.client_assertion(client_credentials_core::AssertionSource::file(file));
    } else if method == AuthMethodArg::PrivateKeyJwt {
        builder = builder.private_key(assertion_key(args)?);
    }
    if let Some(key) = dpop_key(args)? {
        builder = builder.dpop(key);
    }
    if let Some(identity) = client_identity(args)? {
        builder = builder.client_certificate(identity);
    }
    let scopes = non_empty(&args.scopes);
    if !scopes.is_empty() {
        builder = builder.scopes(scopes);
    }
    if let Some(separator) = &args.scope_separator {
        builder = builder.scope_separator(separator.clone());
    }
    if let Some(audience) = &args.audience {
        builder = builder.audience(audience.clone());
    }
    for resource in non_empty(&args.resources) {
        builder = builder.resource(resource);
    }
    let params = if args.params.is_empty() {
        match std::env::var(PARAMS_ENV) {
            Ok(value) => parse_params_env(&value).map_err(Failure::Config)?,
            Err(std::env::VarError::NotPresent) => Vec::new(),
            Err(std::env::VarError::NotUnicode(_)) => {
                return Err(Failure::Config(format!("{PARAMS_ENV} is not valid UTF-8")));
            }
        }
    } else {
        args.params.clone()
    };
    for (name, value) in params {
        builder = builder.extra_param(name, value);
    }
    for token_type in non_empty(&args.accept_token_type) {
        builder = builder.accept_token_type(token_type);
    }
    more(builder)
        .build()
        .map_err(|e| Failure::Config(config_message(&e)))
}

/// The metadata of `issuer` (`--issuer`): a failure of its endpoint is reported as the
/// endpoint's, anything else (a foreign issuer, a bad document) as configuration.
fn discover(issuer: &str) -> Result<client_credentials_core::ServerMetadata, Failure> {
    client_credentials_ureq::discover(issuer).map_err(|e| match e.token_error() {
        Some(t) => Failure::Token(t.clone(), Endpoint::Metadata),
        None => Failure::Config(format!("--issuer: {e}")),
    })
}

/// No secret for a method that needs one (`explicit`: the `--auth-method` given, if any):
/// the three places a secret can come from, and the way out for a public client.
fn missing_secret_message(explicit: Option<AuthMethodArg>) -> String {
    let what = match explicit.and_then(|m| m.to_possible_value()) {
        Some(value) => format!("--auth-method {} needs a client secret", value.get_name()),
        None => "no client secret (the default auth method, basic, needs one)".to_owned(),
    };
    format!(
        "{what}: set {}, or pass --client-secret-file PATH or --client-secret-stdin; a public \
         client, which has no secret, passes --auth-method none",
        secret::SECRET_ENV
    )
}

/// The core's message, with what to do about it where that is not obvious.
fn config_message(error: &ConfigError) -> String {
    match error {
        ConfigError::MissingSecret(method) => format!(
            "auth method {method} needs a client secret: set CC_CLIENT_SECRET, or pass \
             --client-secret-file PATH or --client-secret-stdin (or --auth-method none for a \
             public client)"
        ),
        ConfigError::InsecureUrl(_) => format!(
            "{error} (requests carry the client secret; use https, or a loopback host \
             such as 127.0.0.1 for a local server)"
        ),
        other => format!("invalid configuration: {other}"),
    }
}
