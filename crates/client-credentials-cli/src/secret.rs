//! Where the client secret comes from: standard input, a file, or `CC_CLIENT_SECRET`; never
//! the command line.

use std::io::{IsTerminal as _, Read};
use std::path::Path;

use client_credentials_core::ClientSecret;
use zeroize::Zeroizing;

use crate::cli::TokenArgs;
use crate::exit::Failure;

/// The environment variable that holds the secret.
pub(crate) const SECRET_ENV: &str = "CC_CLIENT_SECRET";

/// A secret longer than this is a mistake (a certificate, a whole config file…).
const MAX_SECRET: u64 = 64 * 1024;

/// The secret, from the first source that is set: `--client-secret-stdin`,
/// `--client-secret-file` (or `CC_CLIENT_SECRET_FILE`), then `CC_CLIENT_SECRET`.
///
/// # Errors
/// [`Failure::Config`] when a named source cannot be read or is empty.
pub(crate) fn read(args: &TokenArgs) -> Result<Option<ClientSecret>, Failure> {
    if args.client_secret_stdin {
        let stdin = std::io::stdin();
        if stdin.is_terminal() {
            return Err(Failure::Config(
                "--client-secret-stdin: standard input is a terminal, where the secret would \
                 be echoed; pipe it in instead (for example < secret-file)"
                    .to_owned(),
            ));
        }
        let text = read_capped(stdin.lock(), "standard input")?;
        return non_empty(&text, "the client secret on standard input").map(Some);
    }
    if let Some(path) = &args.client_secret_file {
        let text = read_file(path)?;
        let what = format!("the client secret file {}", path.display());
        return non_empty(&text, &what).map(Some);
    }
    match std::env::var_os(SECRET_ENV) {
        None => Ok(None),
        Some(value) if value.is_empty() => Ok(None),
        Some(value) => match value.into_string() {
            Ok(text) => Ok(Some(ClientSecret::new(text))),
            Err(_) => Err(Failure::Config(format!("{SECRET_ENV} is not valid UTF-8"))),
        },
    }
}

fn read_file(path: &Path) -> Result<Zeroizing<String>, Failure> {
    let file = std::fs::File::open(path).map_err(|e| {
        Failure::Config(format!(
            "cannot read the client secret file {}: {e}",
            path.display()
        ))
    })?;
    read_capped(file, &path.display().to_string())
}

fn read_capped(reader: impl Read, what: &str) -> Result<Zeroizing<String>, Failure> {
    let mut bytes = Zeroizing::new(Vec::new());
    reader
        .take(MAX_SECRET + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Failure::Config(format!("cannot read the client secret from {what}: {e}")))?;
    if bytes.len() as u64 > MAX_SECRET {
        return Err(Failure::Config(format!(
            "the client secret in {what} is longer than {MAX_SECRET} bytes"
        )));
    }
    match std::str::from_utf8(&bytes) {
        Ok(text) => Ok(Zeroizing::new(text.to_owned())),
        Err(_) => Err(Failure::Config(format!(
            "the client secret in {what} is not valid UTF-8"
        ))),
    }
}

/// Strips trailing line ends (`echo secret > file` adds one) and refuses an empty secret.
fn non_empty(text: &str, what: &str) -> Result<ClientSecret, Failure> {
    let trimmed = text.trim_end_matches(['\n', '\r']);
    if trimmed.is_empty() {
        return Err(Failure::Config(format!("{what} is empty")));
    }
    Ok(ClientSecret::new(trimmed))
}
