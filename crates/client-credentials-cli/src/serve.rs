//! `client-credentials serve`: the embedded authorization server, in the foreground.

use std::collections::{BTreeMap, HashMap};
use std::io::{self, Write as _};
use std::path::Path;

use client_credentials_server::endpoint::RegisteredClient;
use client_credentials_server::{EmbeddedServer, StartError, TokenFormat};
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::json;

use crate::cli::{ClientSpec, ServeArgs};
use crate::exit::{Exit, Failure, one_line};

pub(crate) const ABOUT: &str = "Run a local authorization server on 127.0.0.1 for development";

pub(crate) const LONG_ABOUT: &str = "\
Run an OAuth 2.0 authorization server on 127.0.0.1 for developing and testing any client, in \
any language: a token endpoint (client_secret_basic, client_secret_post, and private_key_jwt \
and client_secret_jwt for clients whose keys a configuration file registers as jwks or \
jwks_file; form and JSON bodies), RFC 8414 metadata, RFC 7662 introspection, RFC 7009 revocation, a protected demo \
resource, and with --jwt RFC 9068 JWT access tokens with their JWKS (signed with RS256, the \
algorithm every resource server supports; `jwt_algorithm = \"EdDSA\"` in a configuration file \
for Ed25519).

Scopes are declared with --scope and in a configuration file's [scopes]. When any scope is \
declared, every scope of a --client must be one of them, so that a typo is not silently a new \
scope: otherwise the command stops with exit code 2, unless --declare-client-scopes declares \
the clients' scopes too. When no scope is declared, the scopes the clients name are the \
server's scopes (read and write when no client names any either). A client without a scope \
list may ask for every scope.

It prints its endpoints and a ready-to-paste `client-credentials token` command, then serves \
until Ctrl-C or SIGTERM. It only ever listens on 127.0.0.1, and keeps tokens in memory.";

/// Laid out by hand within 80 columns, like the after-help texts of `cli.rs`.
pub(crate) const AFTER_HELP: &str = "\
Examples:
  # The client demo-client:demo-secret, with the scopes read and write:
  client-credentials serve
  # No scope declared: the client's scopes are the server's.
  client-credentials serve --port 8080 \\
      --client billing:s3cret:orders.read,orders.write
  # Declared scopes: a --client scope outside them is refused (exit code 2)
  # unless --declare-client-scopes is given.
  client-credentials serve --scope orders.read --scope orders.write \\
      --client billing:s3cret:orders.read,orders.write --client a:a-secret
  client-credentials serve --scope 'orders.read=Read orders' \\
      --client a:a-secret --jwt
  client-credentials serve --config dev-auth.toml

A configuration file (TOML, or JSON with the same keys):
  port = 8080
  token_lifetime = 300          # seconds
  token_format = \"jwt\"          # or \"opaque\"
  jwt_algorithm = \"RS256\"       # or \"EdDSA\"
  [scopes]
  \"orders.read\" = \"Read orders\"
  [[clients]]
  id = \"billing\"
  secret = \"billing-secret\"
  scopes = [\"orders.read\"]

Client secrets given here are printed in the banner: this is a development
server.";

/// The client registered when none is given.
const DEMO_CLIENT: (&str, &str) = ("demo-client", "demo-secret");

/// The scopes registered when none is named anywhere.
const DEMO_SCOPES: [&str; 2] = ["read", "write"];

/// A client as the banner shows it.
struct Shown {
    id: String,
    secret: String,
    scopes: Vec<String>,
}

/// Runs `serve` until a signal and returns the exit code.
pub(crate) fn run(args: &ServeArgs) -> Exit {
    match serve(args) {
        Ok(()) => Exit::Success,
        Err(failure) => {
            let line = one_line(&failure.message());
            let _ = writeln!(io::stderr().lock(), "client-credentials: error: {line}");
            failure.exit()
        }
    }
}

fn serve(args: &ServeArgs) -> Result<(), Failure> {
    let mut builder = EmbeddedServer::builder();
    let mut file = FileContents::default();
    if let Some(path) = &args.config {
        builder = builder
            .config_file(path)
            .map_err(|e| Failure::Config(e.to_string()))?;
        file = FileContents::read(path);
    }
    if !args.declare_client_scopes {
        let declared: Vec<&str> = args
            .scopes
            .iter()
            .map(|(name, _)| name.as_str())
            .chain(file.scopes.keys().map(String::as_str))
            .collect();
        check_client_scopes(&args.clients, &declared)?;
    }
    let mut file_secrets: HashMap<String, String> =
        file.clients.into_iter().map(|c| (c.id, c.secret)).collect();
    if let Some(port) = args.port {
        builder = builder.port(port);
    }
    if let Some(lifetime) = args.token_lifetime {
        builder = builder.token_lifetime(lifetime);
    }
    if args.jwt {
        builder = builder.token_format(TokenFormat::Jwt);
    }

    // Every scope registered anywhere: what a client without a scope list may ask for.
    let mut all_scopes: Vec<String> = Vec::new();
    let add = |all: &mut Vec<String>, s: &str| {
        if !all.iter().any(|x| x == s) {
            all.push(s.to_owned());
        }
    };
    for (name, _) in &args.scopes {
        add(&mut all_scopes, name);
    }
    // The configuration file's, and those its clients name.
    for (name, _) in builder.scopes() {
        add(&mut all_scopes, &name);
    }
    for c in &args.clients {
        c.scopes
            .iter()
            .flatten()
            .for_each(|s| add(&mut all_scopes, s));
    }
    if all_scopes.is_empty() && args.config.is_none() {
        for s in DEMO_SCOPES {
            builder = builder.scope(s, format!("Demo scope {s}"));
            add(&mut all_scopes, s);
        }
    }
    for (name, description) in &args.scopes {
        builder = builder.scope(name.clone(), description.clone());
    }

    // The configuration file's clients, less those that flags replace.
    let mut shown: Vec<Shown> = builder
        .clients()
        .into_iter()
        .filter(|c| !args.clients.iter().any(|f| f.id == c.id))
        .map(|c| Shown {
            secret: file_secrets.remove(&c.id).unwrap_or_default(),
            id: c.id,
            scopes: c.scopes,
        })
        .collect();
    let mut flag_clients: Vec<(String, String, Vec<String>)> = args
        .clients
        .iter()
        .map(|c| {
            let scopes = c.scopes.clone().unwrap_or_else(|| all_scopes.clone());
            (c.id.clone(), c.secret.clone(), scopes)
        })
        .collect();
    if flag_clients.is_empty() && shown.is_empty() {
        let (id, secret) = DEMO_CLIENT;
        flag_clients.push((id.to_owned(), secret.to_owned(), all_scopes.clone()));
    }
    for (id, secret, scopes) in flag_clients {
        builder = builder.registered_client(
            RegisteredClient::new(id.clone(), secret.clone()).scopes(scopes.clone()),
        );
        shown.push(Shown { id, secret, scopes });
    }

    let server = builder.start().map_err(start_failure)?;
    print_banner(args, &server, &shown).map_err(Failure::Output)?;
    wait_for_signal().map_err(|e| Failure::Config(format!("cannot wait for signals: {e}")))?;
    let _ = writeln!(io::stderr().lock(), "client-credentials: stopping");
    server.shutdown();
    Ok(())
}

/// Refuses a `--client` scope that is not among the `declared` ones (`--scope` and the
/// configuration file's `[scopes]`), since a typo would otherwise become a new scope that
/// nothing else knows. With nothing declared the clients' scopes are the scope set, and there
/// is nothing to check.
fn check_client_scopes(clients: &[ClientSpec], declared: &[&str]) -> Result<(), Failure> {
    if declared.is_empty() {
        return Ok(());
    }
    for client in clients {
        let unknown: Vec<&str> = client
            .scopes
            .iter()
            .flatten()
            .map(String::as_str)
            .filter(|s| !declared.contains(s))
            .collect();
        if unknown.is_empty() {
            continue;
        }
        let (what, verb, it) = if unknown.len() == 1 {
            ("scope", "is", "it")
        } else {
            ("scopes", "are", "them")
        };
        let add: Vec<String> = unknown.iter().map(|s| format!("--scope {s}")).collect();
        return Err(Failure::Usage(format!(
            "--client {}: {what} {} {verb} not declared (declared: {}); declare {it} with {}, \
             or pass --declare-client-scopes to declare the scopes of every --client",
            client.id,
            unknown.join(", "),
            declared.join(", "),
            add.join(" "),
        )));
    }
    Ok(())
}

fn start_failure(error: StartError) -> Failure {
    match &error {
        StartError::Bind { port, .. } if *port != 0 => Failure::Config(format!(
            "{error} (is another server on that port? pick another with --port, or --port 0 \
             for any free port)"
        )),
        StartError::Runtime(_) | StartError::Random | StartError::SigningKey => {
            Failure::Output(io::Error::other(error.to_string()))
        }
        _ => Failure::Config(error.to_string()),
    }
}

fn print_banner(args: &ServeArgs, server: &EmbeddedServer, clients: &[Shown]) -> io::Result<()> {
    let jwks = (server.token_format() == TokenFormat::Jwt).then(|| server.jwks_url());
    let program = program_name();
    let command = clients.first().map(|c| token_command(&program, server, c));
    let mut out = io::stdout().lock();
    if args.json {
        let object = json!({
            "issuer": server.issuer(),
            "token_endpoint": server.token_url(),
            "metadata": server.metadata_url(),
            "jwks_uri": jwks,
            "introspection_endpoint": server.introspection_url(),
            "revocation_endpoint": server.revocation_url(),
            "resource": server.resource_url(),
            "clients": clients.iter().map(|c| json!({
                "client_id": c.id,
                "client_secret": c.secret,
                "scopes": c.scopes,
            })).collect::<Vec<_>>(),
            "token_command": command,
        });
        writeln!(out, "{object}")?;
        return out.flush();
    }
    writeln!(
        out,
        "OAuth 2.0 authorization server on {} (Ctrl-C to stop)",
        server.issuer()
    )?;
    writeln!(out)?;
    writeln!(out, "Endpoints:")?;
    writeln!(out, "  token          {}", server.token_url())?;
    writeln!(out, "  metadata       {}", server.metadata_url())?;
    if let (Some(jwks), Some(algorithm)) = (&jwks, server.jwt_algorithm()) {
        writeln!(out, "  jwks           {jwks}  ({algorithm} signing key)")?;
    }
    writeln!(out, "  introspection  {}", server.introspection_url())?;
    writeln!(out, "  revocation     {}", server.revocation_url())?;
    writeln!(
        out,
        "  resource       {}  (demo API: call it with the token as a Bearer)",
        server.resource_url()
    )?;
    writeln!(out)?;
    writeln!(out, "Clients:")?;
    for c in clients {
        let scopes = if c.scopes.is_empty() {
            "(none)".to_owned()
        } else {
            c.scopes.join(" ")
        };
        writeln!(
            out,
            "  {}  secret {}  scopes {scopes}",
            c.id,
            shell_quote(&c.secret)
        )?;
    }
    if let (Some(command), Some(c)) = (&command, clients.first()) {
        writeln!(out)?;
        writeln!(out, "Fetch a token (in another terminal):")?;
        writeln!(out, "  {command}")?;
        writeln!(out)?;
        writeln!(
            out,
            "Or set the environment once, then call the demo resource:"
        )?;
        writeln!(
            out,
            "  export CC_TOKEN_URL={} CC_CLIENT_ID={} CC_CLIENT_SECRET={}",
            shell_quote(&server.token_url()),
            shell_quote(&c.id),
            shell_quote(&c.secret)
        )?;
        writeln!(
            out,
            "  curl -H \"Authorization: Bearer $({program}{})\" {}",
            scope_args(c)
                .map(|s| format!(" token {s}"))
                .unwrap_or_else(|| " token".to_owned()),
            server.resource_url()
        )?;
    }
    out.flush()
}

/// `--scope '…'` for a client's scopes, if it has any.
fn scope_args(client: &Shown) -> Option<String> {
    (!client.scopes.is_empty())
        .then(|| format!("--scope {}", shell_quote(&client.scopes.join(" "))))
}

fn token_command(program: &str, server: &EmbeddedServer, client: &Shown) -> String {
    let mut command = format!(
        "CC_CLIENT_SECRET={} {program} token --token-url {} --client-id {}",
        shell_quote(&client.secret),
        shell_quote(&server.token_url()),
        shell_quote(&client.id)
    );
    if let Some(scopes) = scope_args(client) {
        command.push(' ');
        command.push_str(&scopes);
    }
    command
}

/// How to run this program again: its bare name when it was found on the `PATH`, else the
/// path of the executable.
fn program_name() -> String {
    let invoked = std::env::args_os().next().unwrap_or_default();
    let bare = Path::new(&invoked).components().count() == 1;
    if bare {
        return invoked.to_string_lossy().into_owned();
    }
    match std::env::current_exe() {
        Ok(path) => shell_quote(&path.to_string_lossy()),
        Err(_) => "client-credentials".to_owned(),
    }
}

/// Quotes a value for a POSIX shell when it holds anything but safe characters.
fn shell_quote(value: &str) -> String {
    let safe = !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:@%+=,".contains(c));
    if safe {
        value.to_owned()
    } else {
        format!("'{}'", value.replace('\'', r"'\''"))
    }
}

/// Blocks until Ctrl-C (SIGINT), SIGTERM or SIGHUP.
fn wait_for_signal() -> io::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?;
    runtime.block_on(async {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let mut term = signal(SignalKind::terminate())?;
            let mut hangup = signal(SignalKind::hangup())?;
            tokio::select! {
                r = tokio::signal::ctrl_c() => r,
                _ = term.recv() => Ok(()),
                _ = hangup.recv() => Ok(()),
            }
        }
        #[cfg(not(unix))]
        {
            tokio::signal::ctrl_c().await
        }
    })
}

/// What the CLI needs from a configuration file besides what the server's builder tells: the
/// client secrets, for the banner, and the names of the declared scopes (`[scopes]`), which
/// the builder's `scopes` mixes with those the file's clients only name. The server reads and
/// validates the file itself (`EmbeddedServerBuilder::config_file`); this reads it again,
/// ignoring every other key.
#[derive(Default, Deserialize)]
struct FileContents {
    #[serde(default)]
    clients: Vec<FileClient>,
    #[serde(default)]
    scopes: BTreeMap<String, IgnoredAny>,
}

#[derive(Deserialize)]
struct FileClient {
    id: String,
    /// Empty for a client that registers keys (`jwks`, `jwks_file`) and no secret.
    #[serde(default)]
    secret: String,
}

impl FileContents {
    /// The file's clients and scopes; none when it cannot be read (the server, which read it
    /// first, would have refused it).
    fn read(path: &Path) -> Self {
        let Ok(text) = std::fs::read_to_string(path) else {
            return Self::default();
        };
        let json = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("json"));
        let parsed: Option<Self> = if json {
            serde_json::from_str(&text).ok()
        } else {
            toml::from_str(&text).ok()
        };
        parsed.unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(shell_quote("demo-secret"), "demo-secret");
        assert_eq!(
            shell_quote("http://127.0.0.1:1/token"),
            "http://127.0.0.1:1/token"
        );
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("$(x)"), "'$(x)'");
    }
}
