//! `client-credentials`: the command-line tool of the `client-credentials` workspace.
//!
//! - `client-credentials token` fetches an OAuth 2.0 access token with the client credentials
//!   grant (RFC 6749 §4.4) and prints it, bare for `$(…)` or as JSON, with stable exit codes
//!   and an optional per-user cache.
//! - `client-credentials revoke` and `client-credentials introspect` ask the revocation
//!   (RFC 7009) and introspection (RFC 7662) endpoints about a token, with the same
//!   configuration, `--json` and exit codes.
//! - `client-credentials serve` runs the embedded authorization server on 127.0.0.1 for
//!   development, and prints its endpoints and a ready-to-paste `token` command.
//!
//! Run `client-credentials --help` for the details; the crate's README has examples.
//!
//! Output goes through `writeln!` on locked handles rather than `println!`, so that a closed
//! pipe (`client-credentials token | head -c 0`) ends the process with an exit code instead
//! of a panic.
#![forbid(unsafe_code)]

mod cache;
mod cli;
mod exit;
mod operation;
mod output;
mod secret;
mod serve;
mod time;
mod token;

use std::ffi::OsString;
use std::io::Write as _;
use std::process::ExitCode;

use clap::Parser as _;

use crate::cli::{Cli, Command};
use crate::exit::{Exit, Failure};

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().collect();
    if let Some(code) = refuse_secret_flag(&args) {
        return code;
    }
    let cli = match Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(e) => return usage_error(&e, &args),
    };
    let code = match cli.command {
        Command::Token(args) => token::run(&args),
        Command::Revoke(args) => operation::revoke(&args),
        Command::Introspect(args) => operation::introspect(&args),
        Command::Serve(args) => serve::run(&args),
    };
    code.into()
}

/// There is no `--client-secret VALUE`: a command line is visible to every user of the
/// machine and kept in shell history. Someone who tries it gets told where the secret goes,
/// without clap quoting the value back (into a CI log, say).
fn refuse_secret_flag(args: &[OsString]) -> Option<ExitCode> {
    let tried = args.iter().skip(1).take_while(|a| *a != "--").any(|a| {
        let a = a.to_string_lossy();
        a == "--client-secret" || a.starts_with("--client-secret=")
    });
    if !tried {
        return None;
    }
    let failure = Failure::Usage(
        "there is no --client-secret flag, because command lines are visible to other users \
         and kept in shell history: set CC_CLIENT_SECRET, or pass --client-secret-file PATH or \
         --client-secret-stdin"
            .to_owned(),
    );
    let _ = writeln!(
        std::io::stderr().lock(),
        "client-credentials: error: {}",
        failure.message()
    );
    if wants_json(args) {
        let object = output::error_json(&failure, None);
        let _ = writeln!(std::io::stdout().lock(), "{object}");
    }
    Some(Exit::Usage.into())
}

fn wants_json(args: &[OsString]) -> bool {
    args.iter()
        .skip(1)
        .take_while(|a| *a != "--")
        .any(|a| a == "--json")
}

/// Prints clap's message (help and version go to stdout with exit 0; mistakes go to stderr
/// with exit 2) and, for a mistake on a command line that asked for `--json`, a JSON error
/// object on stdout as well, so that scripts parse one shape whatever went wrong.
fn usage_error(error: &clap::Error, args: &[OsString]) -> ExitCode {
    use clap::error::ErrorKind;
    let informational = matches!(
        error.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    );
    // clap quotes a refused value; a `--client` value holds a secret, so it is told without it.
    let secret_arg = error.kind() == ErrorKind::ValueValidation
        && error
            .get(clap::error::ContextKind::InvalidArg)
            .is_some_and(|arg| arg.to_string().starts_with("--client"));
    if secret_arg {
        let reason = std::error::Error::source(error)
            .map_or_else(|| "invalid value".to_owned(), ToString::to_string);
        let message = format!("invalid value for '--client': {reason}");
        let _ = writeln!(std::io::stderr().lock(), "error: {message}");
        if wants_json(args) {
            let object = output::error_json(&Failure::Usage(message), None);
            let _ = writeln!(std::io::stdout().lock(), "{object}");
        }
        return Exit::Usage.into();
    }
    // Printing can only fail on a closed stream; there is nobody left to tell.
    let _ = error.print();
    if informational {
        // `client-credentials` alone prints the help but is still a mistake.
        return if error.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
            Exit::Usage.into()
        } else {
            Exit::Success.into()
        };
    }
    if wants_json(args) {
        let message = error
            .render()
            .to_string()
            .lines()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("invalid command line")
            .trim_start_matches("error: ")
            .to_owned();
        let failure = Failure::Usage(message);
        let object = output::error_json(&failure, None);
        let _ = writeln!(std::io::stdout().lock(), "{object}");
    }
    Exit::Usage.into()
}
