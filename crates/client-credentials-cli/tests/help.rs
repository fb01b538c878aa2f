//! `--help` of every command at 80 columns: no line is longer, and the hand-made blocks after
//! the options (examples, exit codes, environment) are not wrapped by clap, so no example or
//! comment breaks in the middle.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Cli, Run};

/// Every command, as the arguments before `-h` / `--help`.
const COMMANDS: [&[&str]; 5] = [&[], &["token"], &["revoke"], &["introspect"], &["serve"]];

/// The first line of each command's after-help block.
const AFTER_HELP_STARTS: [&str; 3] = ["Examples:", "Environment:", "Exit codes"];

fn help(command: &[&str], flag: &str, columns: u16) -> Run {
    let run = Cli::new()
        .args(command)
        .arg_str(flag)
        .env("COLUMNS", columns.to_string())
        .output();
    run.assert_code(0);
    assert_eq!(run.stderr, "", "{run:?}");
    run
}

/// The lines from the start of the after-help block to the end.
fn after_help(run: &Run) -> Vec<&str> {
    let lines: Vec<&str> = run.stdout.lines().collect();
    let start = lines
        .iter()
        .position(|l| AFTER_HELP_STARTS.iter().any(|s| l.starts_with(s)))
        .unwrap_or_else(|| panic!("no after-help block: {run:?}"));
    lines[start..].to_vec()
}

#[test]
fn help_fits_in_80_columns() {
    for command in COMMANDS {
        for flag in ["-h", "--help"] {
            let narrow = help(command, flag, 80);
            for line in narrow.stdout.lines() {
                assert!(
                    line.chars().count() <= 80,
                    "{command:?} {flag}: a line of {} characters: {line:?}",
                    line.chars().count()
                );
            }
            // Laid out to fit: a wider terminal shows the same block, so clap wrapped
            // nothing in it at 80 columns.
            let wide = help(command, flag, 100);
            assert_eq!(
                after_help(&narrow),
                after_help(&wide),
                "{command:?} {flag}: the block after the options wraps at 80 columns"
            );
            let examples = narrow.stdout.contains("Examples:");
            assert!(examples, "{command:?} {flag}: no examples");
        }
    }
}

/// The help as one line of words, so that a phrase is found wherever clap wrapped it.
fn words(run: &Run) -> String {
    run.stdout.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[test]
fn the_help_documents_the_secret_and_scope_rules() {
    let token = words(&help(&["token"], "--help", 80));
    assert!(token.contains("--auth-method none"), "{token}");
    assert!(token.contains("without a secret the command stops with exit code 2"));
    let serve = words(&help(&["serve"], "--help", 80));
    assert!(serve.contains("--declare-client-scopes"), "{serve}");
    assert!(serve.contains("When no scope is declared"), "{serve}");
}

trait ArgStr {
    fn arg_str(self, arg: &str) -> Self;
}

impl ArgStr for Cli {
    fn arg_str(self, arg: &str) -> Self {
        self.args([arg])
    }
}
