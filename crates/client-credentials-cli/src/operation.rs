//! `client-credentials revoke` and `client-credentials introspect`: one call about an access
//! token to the revocation (RFC 7009) or introspection (RFC 7662) endpoint, with the client
//! configuration, `--json` and exit codes of `token`.

use std::io::{self, IsTerminal as _, Read as _, Write as _};
use std::path::Path;
use std::time::{Duration, SystemTime};

use client_credentials_core::{AccessToken, Config, Endpoint};
use client_credentials_ureq::Client;
use serde_json::{Value, json};
use zeroize::Zeroizing;

use crate::cache::Lookup;
use crate::cli::{IntrospectArgs, RevokeArgs, TokenArgs, TokenSource};
use crate::exit::{Exit, Failure};
use crate::output::{Redactor, error_json, introspection_json, render};
use crate::secret;
use crate::token::{Ui, build_config_with, open_cache};

/// The longest access token read from stdin or a file.
const MAX_TOKEN: u64 = 64 * 1024;

/// The environment variable that may hold the access token.
const TOKEN_ENV: &str = "CC_ACCESS_TOKEN";

/// Runs `revoke`.
pub(crate) fn revoke(args: &RevokeArgs) -> Exit {
    run(&args.common, |ui| {
        let url = required(
            args.revocation_url.as_deref(),
            "--revocation-url",
            "CC_REVOCATION_URL",
        )?;
        let (client, config) = client(&args.common, ui, |b| b.revocation_url(url))?;
        let (token, cached) = token(&args.token, &args.common, &config, ui)?;
        ui.note(&format!("revoking a token at {url}"));
        client.revoke(&token).map_err(ureq_failure)?;
        if let Some(path) = cached {
            // A revoked token must not be served from the cache again.
            match std::fs::remove_file(&path) {
                Ok(()) => ui.note(&format!("removed the cached token {}", path.display())),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => ui.warn(&format!(
                    "could not remove the cached token {}: {e}",
                    path.display()
                )),
            }
        }
        Ok((json!({ "revoked": true }), None))
    })
}

/// Runs `introspect`.
pub(crate) fn introspect(args: &IntrospectArgs) -> Exit {
    run(&args.common, |ui| {
        let url = required(
            args.introspection_url.as_deref(),
            "--introspection-url",
            "CC_INTROSPECTION_URL",
        )?;
        let (client, config) = client(&args.common, ui, |b| b.introspection_url(url))?;
        let (token, _) = token(&args.token, &args.common, &config, ui)?;
        ui.note(&format!("introspecting a token at {url}"));
        let info = client.introspect(&token).map_err(ureq_failure)?;
        let bare = if info.active { "active" } else { "inactive" };
        Ok((introspection_json(&info, &ui.redactor), Some(bare)))
    })
}

/// What a command prints on success: its JSON object, and its bare line (none: nothing).
type Printed = (Value, Option<&'static str>);

fn run(common: &TokenArgs, body: impl FnOnce(&mut Ui) -> Result<Printed, Failure>) -> Exit {
    let mut ui = Ui {
        redactor: Redactor::default(),
        verbose: common.verbose,
    };
    let pretty = io::stdout().is_terminal();
    let failure = match body(&mut ui) {
        Ok((object, bare)) => {
            let mut out = io::stdout().lock();
            let written = if common.json {
                writeln!(out, "{}", render(&object, pretty))
            } else {
                bare.map_or(Ok(()), |line| writeln!(out, "{line}"))
            };
            match written.and_then(|()| out.flush()) {
                Ok(()) => return Exit::Success,
                Err(e) => Failure::Output(e),
            }
        }
        Err(failure) => failure,
    };
    ui.error(&failure);
    if common.json && !matches!(failure, Failure::Output(_)) {
        let object = error_json(&failure, Some(&ui.redactor));
        let _ = writeln!(io::stdout().lock(), "{}", render(&object, pretty));
    }
    failure.exit()
}

fn required<'a>(value: Option<&'a str>, flag: &str, env: &str) -> Result<&'a str, Failure> {
    value
        .filter(|v| !v.is_empty())
        .ok_or_else(|| Failure::Config(format!("no endpoint: pass {flag} URL or set {env}")))
}

/// The client of the configuration, and the configuration, the secret's scrubbing set up.
fn client(
    common: &TokenArgs,
    ui: &mut Ui,
    endpoint: impl FnOnce(
        client_credentials_core::ConfigBuilder,
    ) -> client_credentials_core::ConfigBuilder,
) -> Result<(Client, Config), Failure> {
    let secret = secret::read(common)?;
    ui.redactor
        .set_secret(secret.clone(), common.client_id.as_deref());
    let config = build_config_with(common, secret, endpoint)?;
    let mut builder = Client::builder(config.clone()).timeout(common.timeout);
    if let Some(roots) = crate::token::root_certificates(common)? {
        builder = builder.root_certificates(roots);
    }
    Ok((builder.build(), config))
}

fn ureq_failure(e: client_credentials_ureq::Error) -> Failure {
    use client_credentials_ureq::Error;
    match e {
        Error::Endpoint(e) => Failure::Token(e.error, e.endpoint),
        Error::Token(t) => Failure::Token(t, Endpoint::Token),
        other => Failure::Config(other.to_string()),
    }
}

/// The token to act on: from stdin, a file or `CC_ACCESS_TOKEN`, else (with `--cache`) the
/// cached token of `config`, with the cache file it came from.
fn token(
    source: &TokenSource,
    common: &TokenArgs,
    config: &Config,
    ui: &Ui,
) -> Result<(AccessToken, Option<std::path::PathBuf>), Failure> {
    if source.token_stdin {
        if common.client_secret_stdin {
            return Err(Failure::Usage(
                "--token-stdin and --client-secret-stdin cannot both read standard input"
                    .to_owned(),
            ));
        }
        if io::stdin().is_terminal() {
            return Err(Failure::Usage(
                "--token-stdin: standard input is a terminal; pipe the token in".to_owned(),
            ));
        }
        return read_token(io::stdin().lock(), "standard input").map(|t| (t, None));
    }
    if let Some(path) = &source.token_file {
        return read_file(path).map(|t| (t, None));
    }
    if let Some(value) = std::env::var_os(TOKEN_ENV) {
        let value = value
            .into_string()
            .map_err(|_| Failure::Config(format!("{TOKEN_ENV} is not valid UTF-8")))?;
        return non_empty(&Zeroizing::new(value), TOKEN_ENV).map(|t| (t, None));
    }
    if common.cache {
        if let Some(cache) = open_cache(common, ui) {
            // The configuration the client was built with: reading the secret again would
            // find standard input drained.
            let request = config.default_request();
            if let Lookup::Hit(token) = cache.load(&request, SystemTime::now(), Duration::ZERO) {
                ui.note("using the cached token");
                return Ok((token.access_token().clone(), Some(cache.path(&request))));
            }
        }
        return Err(Failure::Config(
            "--cache: no cached token for this configuration".to_owned(),
        ));
    }
    Err(Failure::Config(format!(
        "no access token: pass --token-stdin or --token-file PATH, set {TOKEN_ENV}, or use \
         --cache for the cached one"
    )))
}

fn read_file(path: &Path) -> Result<AccessToken, Failure> {
    let what = format!("the token file {}", path.display());
    let file = std::fs::File::open(path)
        .map_err(|e| Failure::Config(format!("cannot read {what}: {e}")))?;
    read_token(file, &what)
}

fn read_token(reader: impl io::Read, what: &str) -> Result<AccessToken, Failure> {
    let mut bytes = Zeroizing::new(Vec::new());
    reader
        .take(MAX_TOKEN + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Failure::Config(format!("cannot read the access token from {what}: {e}")))?;
    if bytes.len() as u64 > MAX_TOKEN {
        return Err(Failure::Config(format!(
            "the access token in {what} is longer than {MAX_TOKEN} bytes"
        )));
    }
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| Failure::Config(format!("the access token in {what} is not valid UTF-8")))?;
    non_empty(&Zeroizing::new(text.to_owned()), what)
}

/// Strips surrounding whitespace (`echo token > file` adds a newline) and refuses an empty
/// token.
fn non_empty(text: &str, what: &str) -> Result<AccessToken, Failure> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(Failure::Config(format!(
            "the access token in {what} is empty"
        )));
    }
    Ok(AccessToken::new(trimmed))
}
