//! `client-credentials serve` as a child process on an ephemeral port, and `token` against it.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![cfg(unix)]

mod common;

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use common::{Cli, Run, TempDir};

/// How long `serve` may take to print its endpoints.
const START_LIMIT: Duration = Duration::from_secs(20);

/// A running `serve`, killed on drop.
struct Serving {
    child: Option<Child>,
    lines: Receiver<String>,
    stderr: std::thread::JoinHandle<String>,
}

impl Serving {
    fn start(args: &[&str]) -> Self {
        let mut child = Command::new(common::bin())
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .arg("serve")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut stderr = child.stderr.take().unwrap();
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stderr.read_to_string(&mut s);
            s
        });
        Self {
            child: Some(child),
            lines,
            stderr,
        }
    }

    /// The next line on stdout.
    fn line(&self) -> String {
        self.lines
            .recv_timeout(START_LIMIT)
            .expect("serve printed nothing in time")
    }

    /// Lines up to and including the first one that satisfies `stop`.
    fn lines_until(&self, stop: impl Fn(&str) -> bool) -> Vec<String> {
        let mut lines = Vec::new();
        loop {
            let line = self.line();
            let done = stop(&line);
            lines.push(line);
            if done {
                return lines;
            }
        }
    }

    /// The `--json` banner.
    fn endpoints(&self) -> serde_json::Value {
        serde_json::from_str(&self.line()).unwrap()
    }

    /// Sends a signal and returns the exit code, within a few seconds.
    fn stop_with(mut self, signal: &str) -> (i32, String) {
        let mut child = self.child.take().unwrap();
        let status = Command::new("sh")
            .args(["-c", &format!("kill -{signal} {}", child.id())])
            .status()
            .unwrap();
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(10);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("serve did not stop on SIG{signal}");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let stderr = std::mem::replace(&mut self.stderr, std::thread::spawn(String::new));
        (status.code().unwrap_or(-1), stderr.join().unwrap())
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A GET with a bearer token, raw over TCP; the status line and body.
fn get(url: &str, token: &str) -> (String, String) {
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_at(rest.find('/').unwrap());
    let mut tcp = std::net::TcpStream::connect(host).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        tcp,
        "GET {path} HTTP/1.1\r\nhost: {host}\r\nauthorization: Bearer {token}\r\nconnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    tcp.read_to_string(&mut answer).unwrap();
    let status = answer.lines().next().unwrap_or_default().to_owned();
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

fn token(url: &str, id: &str, secret: &str) -> Cli {
    Cli::new()
        .args(["token"])
        .env("CC_TOKEN_URL", url)
        .env("CC_CLIENT_ID", id)
        .env("CC_CLIENT_SECRET", secret)
}

#[test]
fn token_against_serve_then_the_demo_resource_then_sigterm() {
    let serving = Serving::start(&[
        "--port",
        "0",
        "--json",
        "--client",
        "billing:billing-secret:orders.read,orders.write",
    ]);
    let e = serving.endpoints();
    let url = e["token_endpoint"].as_str().unwrap().to_owned();
    assert!(
        url.starts_with("http://127.0.0.1:") && url.ends_with("/token"),
        "{e}"
    );
    for key in [
        "metadata",
        "introspection_endpoint",
        "revocation_endpoint",
        "resource",
    ] {
        assert!(
            e[key].as_str().unwrap().starts_with("http://127.0.0.1:"),
            "{e}"
        );
    }
    assert!(e["jwks_uri"].is_null());
    assert_eq!(e["clients"][0]["client_id"], "billing");
    assert_eq!(
        e["clients"][0]["scopes"],
        serde_json::json!(["orders.read", "orders.write"])
    );

    let run = token(&url, "billing", "billing-secret")
        .args(["--scope", "orders.read", "--json"])
        .output();
    run.assert_code(0).assert_hides("billing-secret");
    let v = run.json();
    assert_eq!(v["scope"], "orders.read");
    assert_eq!(v["token_type"], "Bearer");
    let access = v["access_token"].as_str().unwrap();

    let (status, body) = get(e["resource"].as_str().unwrap(), access);
    assert!(status.contains(" 200 "), "{status} {body}");
    assert!(body.contains("billing"), "{body}");

    // Refusals come back with the documented codes.
    token(&url, "billing", "wrong")
        .output()
        .assert_code(3)
        .assert_hides("wrong");
    token(&url, "billing", "billing-secret")
        .args(["--scope", "admin", "--json"])
        .output()
        .assert_code(3);

    let (code, stderr) = serving.stop_with("TERM");
    assert_eq!(code, 0, "{stderr}");
}

#[test]
fn the_banner_command_works_when_pasted() {
    let serving = Serving::start(&["--jwt"]);
    let lines = serving.lines_until(|l| l.contains("--token-url"));
    let banner = lines.join("\n");
    for what in [
        "token ",
        "metadata ",
        "jwks ",
        "introspection ",
        "revocation ",
        "resource ",
    ] {
        assert!(
            lines
                .iter()
                .any(|l| l.trim_start().starts_with(what) && l.contains("http://127.0.0.1:")),
            "no {what}in {banner}"
        );
    }
    assert!(banner.contains("demo-client"), "{banner}");
    let command = lines.last().unwrap().trim();
    assert!(command.starts_with("CC_CLIENT_SECRET="), "{command}");

    let home = TempDir::new("paste");
    let child = Command::new("sh")
        .args(["-c", command])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let run: Run = common::wait(child, common::RUN_LIMIT);
    run.assert_code(0);
    // A JWT: three base64url parts.
    assert_eq!(run.stdout.trim().split('.').count(), 3, "{run:?}");

    let (code, _) = serving.stop_with("INT");
    assert_eq!(code, 0);
}

#[test]
fn clients_and_scopes_from_a_config_file() {
    let dir = TempDir::new("config");
    let file = dir.path().join("auth.toml");
    std::fs::write(
        &file,
        r#"
token_lifetime = 120

[scopes]
"reports.read" = "Read reports"

[[clients]]
id = "reporter"
secret = "reporter-secret"
scopes = ["reports.read"]
"#,
    )
    .unwrap();
    let serving = Serving::start(&["--json", "--config", file.to_str().unwrap()]);
    let e = serving.endpoints();
    assert_eq!(e["clients"].as_array().unwrap().len(), 1, "{e}");
    assert_eq!(e["clients"][0]["client_id"], "reporter");
    let url = e["token_endpoint"].as_str().unwrap();
    assert!(
        e["token_command"]
            .as_str()
            .unwrap()
            .contains("--client-id reporter"),
        "{e}"
    );

    let run = token(url, "reporter", "reporter-secret")
        .args(["--scope", "reports.read", "--json"])
        .output();
    run.assert_code(0);
    let expires_in = run.json()["expires_in"].as_u64().unwrap();
    assert!((110..=120).contains(&expires_in), "{expires_in}");
    // The demo client is not registered when the file names clients.
    token(url, "demo-client", "demo-secret")
        .output()
        .assert_code(3);
}

#[test]
fn a_busy_port_or_a_bad_config_is_exit_2() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let run = Cli::new().args(["serve", "--port", &port]).output();
    run.assert_code(2).assert_one_line_error();
    assert!(run.stderr.contains("--port"), "{run:?}");

    let dir = TempDir::new("config");
    let file = dir.path().join("bad.toml");
    std::fs::write(&file, "unknown_key = 1\n").unwrap();
    let run = Cli::new()
        .args(["serve", "--config", file.to_str().unwrap()])
        .output();
    run.assert_code(2).assert_one_line_error();

    let run = Cli::new().args(["serve", "--client", "no-secret"]).output();
    run.assert_code(2);
}

#[test]
fn a_client_scope_that_is_not_declared_is_refused() {
    // --port 0 is free: only the scope check can stop it, with exit 2 and before the banner.
    let run = Cli::new()
        .args([
            "serve",
            "--port",
            "0",
            "--scope",
            "orders.read",
            "--client",
            "billing:billing-secret:orders.read,orders.admin",
        ])
        .output();
    run.assert_code(2)
        .assert_one_line_error()
        .assert_hides("billing-secret");
    for needle in ["orders.admin", "billing", "--declare-client-scopes"] {
        assert!(run.stderr.contains(needle), "no {needle}: {run:?}");
    }
    assert_eq!(run.stdout, "");

    // Scopes declared by a configuration file count as declared, for the same check.
    let dir = TempDir::new("config");
    let file = dir.path().join("auth.toml");
    std::fs::write(&file, "[scopes]\n\"reports.read\" = \"Read reports\"\n").unwrap();
    let run = Cli::new()
        .args(["serve", "--config", file.to_str().unwrap(), "--client"])
        .args(["reporter:reporter-secret:reports.read,reports.wirte"])
        .output();
    run.assert_code(2).assert_one_line_error();
    assert!(run.stderr.contains("reports.wirte"), "{run:?}");
    assert!(run.stderr.contains("reporter"), "{run:?}");
}

#[test]
fn declare_client_scopes_declares_them() {
    let serving = Serving::start(&[
        "--json",
        "--scope",
        "orders.read",
        "--declare-client-scopes",
        "--client",
        "billing:billing-secret:orders.read,orders.admin",
    ]);
    let e = serving.endpoints();
    assert_eq!(
        e["clients"][0]["scopes"],
        serde_json::json!(["orders.read", "orders.admin"])
    );
    let url = e["token_endpoint"].as_str().unwrap();
    let run = token(url, "billing", "billing-secret")
        .args(["--scope", "orders.admin", "--json"])
        .output();
    run.assert_code(0);
    assert_eq!(run.json()["scope"], "orders.admin");
    let (code, stderr) = serving.stop_with("TERM");
    assert_eq!(code, 0, "{stderr}");
}

#[test]
fn a_client_whose_scopes_are_all_declared_works() {
    let dir = TempDir::new("config");
    let file = dir.path().join("auth.json");
    std::fs::write(&file, r#"{"scopes": {"reports.read": "Read reports"}}"#).unwrap();
    let serving = Serving::start(&[
        "--json",
        "--config",
        file.to_str().unwrap(),
        "--scope",
        "orders.read",
        "--scope",
        "orders.write=Write orders",
        "--client",
        "billing:billing-secret:orders.read,orders.write,reports.read",
    ]);
    let e = serving.endpoints();
    let url = e["token_endpoint"].as_str().unwrap();
    let run = token(url, "billing", "billing-secret")
        .args(["--scope", "orders.read orders.write reports.read", "--json"])
        .output();
    run.assert_code(0);
    assert_eq!(run.json()["scope"], "orders.read orders.write reports.read");
    // A scope that is neither declared nor the client's is still refused by the server.
    token(url, "billing", "billing-secret")
        .args(["--scope", "orders.admin"])
        .output()
        .assert_code(3);
    let (code, stderr) = serving.stop_with("TERM");
    assert_eq!(code, 0, "{stderr}");
}
