//! `client-credentials token` against scripted servers on 127.0.0.1: output, every exit code,
//! the `--json` shapes, where the secret comes from, and that it never shows.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use client_credentials_testkit::{Reply, RetryAfter, TestServer, TokenEndpoint, refused_url};
use common::{Cli, TempDir};
use serde_json::json;

const ID: &str = "svc";
/// Has characters that Basic's form-encoding changes, and is long and token-like.
const SECRET: &str = "S3cr3t+with/odd:chars%and-some-length-0123456789";

fn cli(server: &TestServer) -> Cli {
    Cli::new()
        .args(["token"])
        .env("CC_TOKEN_URL", server.url("/token"))
        .env("CC_CLIENT_ID", ID)
        .env("CC_CLIENT_SECRET", SECRET)
}

fn endpoint() -> TestServer {
    TestServer::start(TokenEndpoint::new().client(ID, SECRET))
}

#[test]
fn prints_the_bare_token_and_nothing_else() {
    let server = endpoint();
    let run = cli(&server).output();
    run.assert_code(0).assert_hides(SECRET);
    assert_eq!(run.stdout, "token-1\n");
    assert_eq!(run.stderr, "");
    assert_eq!(server.count("/token"), 1);
    let sent = server.last_request().unwrap();
    assert_eq!(sent.basic_auth(), Some((ID.into(), SECRET.into())));
    assert_eq!(
        sent.param("grant_type").as_deref(),
        Some("client_credentials")
    );
    assert!(!sent.body_text().contains("client_secret"));
}

#[test]
fn json_success_shape() {
    let server = TestServer::start(
        TokenEndpoint::new()
            .client(ID, SECRET)
            .lifetime(Duration::from_secs(3600))
            .extra("id_token", json!("eyJ.fake.jwt"))
            .extra("ext_expires_in", json!(7200)),
    );
    let before = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let run = cli(&server)
        .args(["--json", "--scope", "read write"])
        .output();
    run.assert_code(0).assert_hides(SECRET);
    let v = run.json();
    assert_eq!(v["access_token"], "token-1");
    assert_eq!(v["token_type"], "Bearer");
    let expires_in = v["expires_in"].as_u64().unwrap();
    assert!((3590..=3600).contains(&expires_in), "{v}");
    let unix = v["expires_at_unix"].as_u64().unwrap();
    assert!(unix >= before + 3590 && unix <= before + 3610, "{v}");
    let at = v["expires_at"].as_str().unwrap();
    assert_eq!(at.len(), 20, "{at}");
    assert!(at.ends_with('Z') && at.as_bytes()[10] == b'T', "{at}");
    assert!(v["issued_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(v["scope"], "read write");
    assert_eq!(v["scopes"], json!(["read", "write"]));
    assert_eq!(v["scope_source"], "granted");
    assert_eq!(v["extra"]["id_token"], "eyJ.fake.jwt");
    assert_eq!(v["extra"]["ext_expires_in"], 7200);
    assert_eq!(v["deviations"], json!([]));
    assert_eq!(v["from_cache"], false);
    assert_eq!(
        server.last_request().unwrap().param("scope").as_deref(),
        Some("read write")
    );
}

#[test]
fn json_reports_tolerated_deviations() {
    // A form body labelled text/plain, lower-case bearer, expires_in as a string.
    let server = TestServer::start(Reply::text(
        200,
        "text/plain",
        "access_token=abc123&token_type=bearer&expires_in=120",
    ));
    let run = cli(&server).args(["--json", "-v"]).output();
    run.assert_code(0);
    let v = run.json();
    assert_eq!(v["access_token"], "abc123");
    assert_eq!(v["token_type"], "Bearer");
    let deviations = v["deviations"].as_array().unwrap();
    assert!(deviations.contains(&json!("form_body")), "{v}");
    assert!(deviations.contains(&json!("token_type_case")), "{v}");
    assert_eq!(v["scope_source"], "requested");
    assert!(v["scope"].is_null());
    assert!(run.stderr.contains("deviated"), "{run:?}");
}

#[test]
fn exit_2_without_a_token_url() {
    let run = Cli::new()
        .args(["token", "--client-id", ID])
        .env("CC_CLIENT_SECRET", SECRET)
        .output();
    run.assert_code(2)
        .assert_one_line_error()
        .assert_hides(SECRET);
    assert!(run.stderr.contains("CC_TOKEN_URL"), "{run:?}");
    assert_eq!(run.stdout, "");

    let run = Cli::new()
        .args(["token", "--client-id", ID, "--json"])
        .output();
    run.assert_code(2);
    let e = run.error();
    assert_eq!(e["kind"], "config");
    assert_eq!(e["exit_code"], 2);
    assert!(e["http_status"].is_null());
}

#[test]
fn exit_2_for_a_bad_scope_or_parameter_and_nothing_is_sent() {
    let server = endpoint();
    for args in [
        vec!["--scope", r"bad\scope", "--json"],
        vec!["--scope", "bad\"scope", "--json"],
        vec!["--param", "grant_type=password", "--json"],
        vec!["--resource", "not-absolute", "--json"],
    ] {
        let run = cli(&server).args(&args).output();
        run.assert_code(2).assert_hides(SECRET);
        assert_eq!(run.error()["kind"], "config", "{args:?}");
    }
    assert_eq!(server.request_count(), 0);
}

#[test]
fn exit_2_for_http_on_a_non_loopback_host() {
    let run = Cli::new()
        .args([
            "token",
            "--token-url",
            "http://auth.example.com/token",
            "--client-id",
            ID,
        ])
        .env("CC_CLIENT_SECRET", SECRET)
        .output();
    run.assert_code(2)
        .assert_one_line_error()
        .assert_hides(SECRET);
    assert!(run.stderr.contains("https"), "{run:?}");
}

#[test]
fn exit_2_for_command_line_mistakes_with_json_too() {
    // There is no flag that takes the secret itself.
    let run = Cli::new()
        .args(["token", "--client-secret", SECRET, "--json"])
        .output();
    run.assert_code(2);
    assert_eq!(run.error()["kind"], "usage");
    assert!(!run.stdout.contains(SECRET), "{run:?}");

    let run = Cli::new().args(["token", "--timeout", "soon"]).output();
    run.assert_code(2);
    assert!(run.stderr.contains("--timeout"), "{run:?}");
    assert_eq!(run.stdout, "");

    let run = Cli::new()
        .args(["token", "--json", "--auth-method", "magic"])
        .output();
    run.assert_code(2);
    let e = run.error();
    assert_eq!(e["kind"], "usage");
    assert!(e["message"].as_str().unwrap().contains("magic"), "{e}");

    let run = Cli::new().output();
    run.assert_code(2);
    assert!(run.stderr.contains("Usage"), "{run:?}");
}

#[test]
fn exit_2_when_the_secret_is_missing_unreadable_or_empty() {
    let server = endpoint();
    let base = || {
        Cli::new()
            .args(["token"])
            .env("CC_TOKEN_URL", server.url("/token"))
            .env("CC_CLIENT_ID", ID)
    };
    let run = base().args(["--auth-method", "basic"]).output();
    run.assert_code(2).assert_one_line_error();
    assert!(run.stderr.contains("CC_CLIENT_SECRET"), "{run:?}");

    let run = base()
        .args(["--client-secret-file", "/nonexistent/secret"])
        .output();
    run.assert_code(2).assert_one_line_error();

    let dir = TempDir::new("secret");
    let empty = dir.path().join("empty");
    std::fs::write(&empty, "\n").unwrap();
    let run = base()
        .args(["--client-secret-file"])
        .arg_path(&empty)
        .output();
    run.assert_code(2).assert_one_line_error();
    assert!(run.stderr.contains("empty"), "{run:?}");
    assert_eq!(server.request_count(), 0);
}

/// stderr names the three places a secret can come from.
fn names_the_three_secret_sources(run: &common::Run) {
    for source in [
        "CC_CLIENT_SECRET",
        "--client-secret-file",
        "--client-secret-stdin",
    ] {
        assert!(run.stderr.contains(source), "no {source}: {run:?}");
    }
}

#[test]
fn a_missing_secret_is_exit_2_before_any_request_for_every_method_that_needs_one() {
    let server = endpoint();
    let base = || {
        Cli::new()
            .env("CC_TOKEN_URL", server.url("/token"))
            .env("CC_CLIENT_ID", ID)
    };
    // No --auth-method at all: the default (basic) needs a secret, so a forgotten
    // CC_CLIENT_SECRET is not sent as a public-client request.
    let methods: [&[&str]; 6] = [
        &[],
        &["--auth-method", "basic"],
        &["--auth-method", "client_secret_basic"],
        &["--auth-method", "basic-raw"],
        &["--auth-method", "post"],
        &["--auth-method", "client_secret_post"],
    ];
    for method in methods {
        let run = base().args(["token"]).args(method).output();
        run.assert_code(2).assert_one_line_error();
        names_the_three_secret_sources(&run);
        assert!(run.stderr.contains("--auth-method none"), "{run:?}");
        assert_eq!(run.stdout, "", "{method:?}");

        let run = base().args(["token", "--json"]).args(method).output();
        run.assert_code(2);
        let e = run.error();
        assert_eq!(e["exit_code"], 2, "{method:?}");
        assert!(e["http_status"].is_null(), "{method:?}");
    }
    // The method from the environment, and an empty CC_CLIENT_SECRET.
    let run = base()
        .args(["token"])
        .env("CC_AUTH_METHOD", "post")
        .env("CC_CLIENT_SECRET", "")
        .output();
    run.assert_code(2).assert_one_line_error();
    names_the_three_secret_sources(&run);
    assert!(run.stderr.contains("--auth-method post"), "{run:?}");
    // revoke and introspect authenticate the same way.
    for (command, flag) in [
        ("revoke", "--revocation-url"),
        ("introspect", "--introspection-url"),
    ] {
        let run = base()
            .args([command, flag, &server.url("/other")])
            .env("CC_ACCESS_TOKEN", "some-token")
            .output();
        run.assert_code(2).assert_one_line_error();
        names_the_three_secret_sources(&run);
    }
    assert_eq!(server.request_count(), 0);
}

#[test]
fn a_public_client_needs_no_secret_with_auth_method_none() {
    let server = TestServer::start(TokenEndpoint::new().public_client("public-app"));
    let run = Cli::new()
        .env("CC_TOKEN_URL", server.url("/token"))
        .args([
            "token",
            "--client-id",
            "public-app",
            "--auth-method",
            "none",
        ])
        .output();
    run.assert_code(0);
    assert_eq!(run.stdout, "token-1\n");
    let run = Cli::new()
        .env("CC_TOKEN_URL", server.url("/token"))
        .env("CC_CLIENT_ID", "public-app")
        .env("CC_AUTH_METHOD", "none")
        .args(["token", "--json"])
        .output();
    run.assert_code(0);
    assert_eq!(run.json()["access_token"], "token-2");
    assert_eq!(server.count("/token"), 2);
    for sent in server.requests() {
        assert!(sent.basic_auth().is_none());
        assert_eq!(sent.param("client_id").as_deref(), Some("public-app"));
        assert!(sent.param("client_secret").is_none());
    }
}

trait ArgPath {
    fn arg_path(self, path: &std::path::Path) -> Self;
}

impl ArgPath for Cli {
    fn arg_path(self, path: &std::path::Path) -> Self {
        self.args([path])
    }
}

#[test]
fn exit_3_when_the_server_rejects_the_client() {
    let server = endpoint();
    let run = cli(&server)
        .env("CC_CLIENT_SECRET", "the-wrong-secret")
        .args(["--json"])
        .output();
    run.assert_code(3)
        .assert_one_line_error()
        .assert_hides("the-wrong-secret");
    let e = run.error();
    assert_eq!(e["kind"], "rejected");
    assert_eq!(e["exit_code"], 3);
    assert_eq!(e["http_status"], 401);
    assert_eq!(e["oauth_error"], "invalid_client");
    assert_eq!(e["oauth_error_description"], "client authentication failed");
    assert_eq!(e["retryable"], false);
    assert!(e["retry_after"].is_null());
    assert!(run.stderr.contains("invalid_client"), "{run:?}");
    assert_eq!(server.count("/token"), 1);
}

#[test]
fn exit_3_for_invalid_scope_without_json() {
    let server = TestServer::start(Reply::oauth_error(
        400,
        "invalid_scope",
        Some("scope admin is not allowed"),
    ));
    let run = cli(&server).args(["--scope", "admin"]).output();
    run.assert_code(3).assert_one_line_error();
    assert_eq!(run.stdout, "");
    assert!(
        run.stderr
            .contains("invalid_scope: scope admin is not allowed"),
        "{run:?}"
    );
}

#[test]
fn exit_4_when_rate_limited_with_retry_after() {
    let server = TestServer::start(Reply::rate_limited(RetryAfter::Seconds(30)));
    let run = cli(&server).args(["--json"]).output();
    run.assert_code(4).assert_one_line_error();
    let e = run.error();
    assert_eq!(e["kind"], "rate_limited");
    assert_eq!(e["http_status"], 429);
    assert_eq!(e["retry_after"], 30);
    assert_eq!(e["retryable"], true);
    assert_eq!(e["exit_code"], 4);
    assert!(run.stderr.contains("retry after 30s"), "{run:?}");
    assert_eq!(server.count("/token"), 1, "one invocation, one request");
}

#[test]
fn exit_4_when_the_server_fails() {
    let server = TestServer::start(Reply::html(
        503,
        "<html><body>Service Unavailable</body></html>",
    ));
    let run = cli(&server).args(["--json"]).output();
    run.assert_code(4).assert_one_line_error();
    let e = run.error();
    assert_eq!(e["kind"], "server_error");
    assert_eq!(e["http_status"], 503);
    assert_eq!(e["retryable"], true);
    assert!(e["oauth_error"].is_null());
    assert_eq!(server.count("/token"), 1);

    let server = TestServer::start(
        Reply::oauth_error(503, "temporarily_unavailable", None).header("retry-after", "7"),
    );
    let run = cli(&server).args(["--json"]).output();
    run.assert_code(4);
    let e = run.error();
    assert_eq!(e["oauth_error"], "temporarily_unavailable");
    assert_eq!(e["retry_after"], 7);
}

#[test]
fn exit_5_when_the_connection_is_refused() {
    let run = Cli::new()
        .args(["token", "--json", "--client-id", ID, "--token-url"])
        .args([refused_url("/token")])
        .env("CC_CLIENT_SECRET", SECRET)
        .output();
    run.assert_code(5)
        .assert_one_line_error()
        .assert_hides(SECRET);
    let e = run.error();
    assert_eq!(e["kind"], "transport");
    assert_eq!(e["transport"], "connect");
    assert!(e["http_status"].is_null());
    assert_eq!(e["retryable"], true);
}

#[test]
fn exit_5_for_an_html_page_with_status_200() {
    let server = TestServer::start(Reply::html(200, "<html><body>Please log in</body></html>"));
    let run = cli(&server).args(["--json"]).output();
    run.assert_code(5).assert_one_line_error();
    let e = run.error();
    assert_eq!(e["kind"], "invalid_response");
    assert_eq!(e["http_status"], 200);
    assert_eq!(e["retryable"], false);
    assert!(e["content_type"].as_str().unwrap().starts_with("text/html"));
    // And without --json, nothing at all on stdout.
    let run = cli(&server).output();
    run.assert_code(5);
    assert_eq!(run.stdout, "");
}

#[test]
fn exit_5_on_timeout_within_the_limit() {
    let server = TestServer::start(Reply::token("late", None).delay(Duration::from_secs(10)));
    let started = Instant::now();
    let run = cli(&server).args(["--json", "--timeout", "500ms"]).output();
    run.assert_code(5);
    assert_eq!(run.error()["transport"], "timeout");
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn the_secret_never_shows_even_when_the_server_echoes_it() {
    // Every reply quotes the secret it received, in every place a server could.
    let echo = |request: &client_credentials_testkit::Request| {
        let secret = request.basic_auth().map(|(_, s)| s).unwrap_or_default();
        match request.param("scope").as_deref() {
            Some("error") => Reply::oauth_error(
                401,
                "invalid_client",
                Some(&format!("wrong secret {secret}")),
            )
            .header("www-authenticate", &format!("Basic realm=\"{secret}\"")),
            Some("html") => Reply::html(500, &format!("<p>secret was {secret}</p>")),
            Some("html200") => Reply::html(200, &format!("<p>secret was {secret}</p>")),
            Some("unknown") => {
                Reply::json(400, &json!({"error": secret, "error_description": secret}))
            }
            _ => Reply::json(
                200,
                &json!({
                    "access_token": "tok-1",
                    "token_type": "Bearer",
                    "expires_in": 60,
                    "echo": secret,
                    "nested": {"list": [secret.clone()], (secret.clone()): 1},
                }),
            ),
        }
    };
    let server = TestServer::start(echo);
    for scope in ["ok", "error", "html", "html200", "unknown"] {
        for json in [false, true] {
            let mut args = vec!["--scope", scope, "-v"];
            if json {
                args.push("--json");
            }
            let run = cli(&server).args(&args).output();
            run.assert_hides(SECRET);
            assert_eq!(run.code == 0, scope == "ok", "{scope}: {run:?}");
        }
    }
    let run = cli(&server).args(["--json"]).output();
    let v = run.json();
    assert_eq!(v["extra"]["echo"], "[redacted]");
    assert_eq!(v["extra"]["nested"]["list"][0], "[redacted]");
}

#[test]
fn the_secret_comes_from_env_file_or_stdin() {
    let server = endpoint();
    let base = || {
        Cli::new()
            .args(["token"])
            .env("CC_TOKEN_URL", server.url("/token"))
            .env("CC_CLIENT_ID", ID)
    };
    // Environment.
    base()
        .env("CC_CLIENT_SECRET", SECRET)
        .output()
        .assert_code(0);
    // A file, with the newline `echo` leaves; the flag wins over the environment.
    let dir = TempDir::new("secret");
    let file = dir.path().join("secret");
    std::fs::write(&file, format!("{SECRET}\n")).unwrap();
    let run = base()
        .env("CC_CLIENT_SECRET", "not-this-one")
        .args(["--client-secret-file"])
        .arg_path(&file)
        .output();
    run.assert_code(0).assert_hides(SECRET);
    // The file named by the environment.
    base()
        .env("CC_CLIENT_SECRET_FILE", &file)
        .output()
        .assert_code(0);
    // Standard input, with a CRLF.
    let run = base()
        .args(["--client-secret-stdin"])
        .stdin(&format!("{SECRET}\r\n"))
        .output();
    run.assert_code(0).assert_hides(SECRET);
    assert_eq!(server.count("/token"), 4);
    for r in server.requests() {
        assert_eq!(r.basic_auth(), Some((ID.into(), SECRET.into())));
    }
}

#[test]
fn request_options_reach_the_server() {
    let server = TestServer::start(TokenEndpoint::new());
    let run = Cli::new()
        .env("CC_TOKEN_URL", server.url("/token"))
        .env("CC_CLIENT_ID", ID)
        .env("CC_CLIENT_SECRET", SECRET)
        .env("CC_SCOPE", "a b")
        .env("CC_PARAMS", "tenant=acme&note=x%20y")
        .args([
            "token",
            "--auth-method",
            "post",
            "--audience",
            "https://api.example.com",
            "--resource",
            "https://r1.example.com/",
            "--resource",
            "https://r2.example.com/",
        ])
        .output();
    run.assert_code(0);
    let sent = server.last_request().unwrap();
    assert!(sent.basic_auth().is_none());
    assert_eq!(sent.param("client_id").as_deref(), Some(ID));
    assert_eq!(sent.param("client_secret").as_deref(), Some(SECRET));
    assert_eq!(sent.param("scope").as_deref(), Some("a b"));
    assert_eq!(
        sent.param("audience").as_deref(),
        Some("https://api.example.com")
    );
    assert_eq!(
        sent.params("resource"),
        ["https://r1.example.com/", "https://r2.example.com/"]
    );
    assert_eq!(sent.param("tenant").as_deref(), Some("acme"));
    assert_eq!(sent.param("note").as_deref(), Some("x y"));

    // JSON bodies, a --param that replaces CC_PARAMS, and a public client.
    let run = Cli::new()
        .env("CC_TOKEN_URL", server.url("/token"))
        .env("CC_PARAMS", "tenant=acme")
        .args([
            "token",
            "--client-id",
            "public-app",
            "--auth-method",
            "none",
            "--body-format",
            "json",
            "--param",
            "x=1",
        ])
        .output();
    run.assert_code(0);
    let sent = server.last_request().unwrap();
    assert!(sent.is_json());
    let body = sent.json().unwrap();
    assert_eq!(body["client_id"], "public-app");
    assert_eq!(body["x"], "1");
    assert!(body.get("tenant").is_none());
    assert!(sent.basic_auth().is_none());
}

#[test]
fn a_token_that_expired_on_arrival_is_refused_after_one_request() {
    let server = TestServer::start(Reply::token("short", Some(Duration::ZERO)));
    let run = cli(&server).args(["--json"]).output();
    run.assert_code(5).assert_one_line_error();
    assert_eq!(run.error()["kind"], "invalid_response");
    assert_eq!(server.count("/token"), 1, "no request loop");
}

#[test]
fn a_closed_stdout_is_not_a_panic() {
    use std::process::{Command, Stdio};
    let server = endpoint();
    let mut child = Command::new(common::bin())
        .env_clear()
        .env("CC_TOKEN_URL", server.url("/token"))
        .env("CC_CLIENT_ID", ID)
        .env("CC_CLIENT_SECRET", SECRET)
        .arg("token")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let run = common::wait(child, common::RUN_LIMIT);
    assert!(!run.stderr.contains("panicked"), "{run:?}");
    assert!(run.code == 0 || run.code == 1, "{run:?}");
}

#[test]
fn a_very_short_secret_does_not_garble_the_output() {
    let run = Cli::new()
        .args(["token", "--json", "--client-id", ID, "--token-url"])
        .args([refused_url("/token")])
        .env("CC_CLIENT_SECRET", "x")
        .output();
    run.assert_code(5);
    let e = run.error();
    assert_eq!(e["exit_code"], 5, "{run:?}");
    assert!(!run.stdout.contains("[redacted]"), "{run:?}");
}

/// clap quotes a refused value in its message; a `--client` value holds a secret, so `serve`
/// must refuse it without quoting it.
#[test]
fn a_refused_client_flag_does_not_echo_its_secret() {
    for value in [":s3cr3t-in-flag", "nocolon-s3cr3t-in-flag"] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_client-credentials"))
            .args(["serve", "--json", "--client", value])
            .env_clear()
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{value}");
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!all.contains("s3cr3t-in-flag"), "{all}");
        assert!(
            all.contains("--client"),
            "the message names the flag: {all}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Signed client assertions

const KEY: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../client-credentials-core/tests/keys/ec-p256.pem"
);

/// The decoded header and claims of the request's `client_assertion`.
fn assertion_parts(
    sent: &client_credentials_testkit::Request,
) -> (serde_json::Value, serde_json::Value) {
    use base64::Engine as _;
    let jwt = sent
        .param("client_assertion")
        .expect("an assertion was sent");
    let part = |i: usize| -> serde_json::Value {
        let segment = jwt.split('.').nth(i).unwrap();
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(segment)
            .unwrap();
        serde_json::from_slice(&bytes).unwrap()
    };
    assert_eq!(
        sent.param("client_assertion_type").as_deref(),
        Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
    );
    (part(0), part(1))
}

#[test]
fn private_key_signs_a_private_key_jwt_assertion_without_a_secret() {
    // The testkit's endpoint checks no assertion: the client is public there.
    let server = TestServer::start(TokenEndpoint::new().public_client(ID));
    let run = Cli::new()
        .args(["token", "--private-key", KEY, "--key-id", "k-2026"])
        .env("CC_TOKEN_URL", server.url("/token"))
        .env("CC_CLIENT_ID", ID)
        .output();
    run.assert_code(0);
    assert_eq!(run.stdout, "token-1\n");
    let sent = server.last_request().unwrap();
    assert!(sent.header("authorization").is_none());
    assert_eq!(sent.param("client_id").as_deref(), Some(ID));
    assert!(sent.param("client_secret").is_none());
    let (header, claims) = assertion_parts(&sent);
    assert_eq!(header["alg"], "ES256");
    assert_eq!(header["kid"], "k-2026");
    assert_eq!(claims["iss"], ID);
    assert_eq!(claims["sub"], ID);
    assert_eq!(claims["aud"], server.url("/token"));
}

#[test]
fn jwt_alg_hs256_signs_with_the_secret_and_sends_it_not() {
    let server = TestServer::start(TokenEndpoint::new().public_client(ID));
    let run = cli(&server).args(["--jwt-alg", "HS256"]).output();
    run.assert_code(0).assert_hides(SECRET);
    let sent = server.last_request().unwrap();
    assert!(!sent.body_text().contains("S3cr3t"));
    assert!(sent.header("authorization").is_none());
    assert_eq!(assertion_parts(&sent).0["alg"], "HS256");
}

#[test]
fn unusable_keys_and_contradictions_exit_2_before_sending() {
    let server = TestServer::start(TokenEndpoint::new().public_client(ID));
    let base = || {
        Cli::new()
            .args(["token"])
            .env("CC_TOKEN_URL", server.url("/token"))
            .env("CC_CLIENT_ID", ID)
    };
    let missing = base()
        .args(["--private-key", "/nonexistent/key.pem"])
        .output();
    missing.assert_code(2).assert_one_line_error();
    assert!(
        missing.stderr.contains("/nonexistent/key.pem"),
        "{}",
        missing.stderr
    );
    let not_a_key = base()
        .args([
            "--private-key",
            concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"),
        ])
        .output();
    not_a_key.assert_code(2);
    assert!(
        not_a_key.stderr.contains("Cargo.toml"),
        "{}",
        not_a_key.stderr
    );
    let wrong_alg = base()
        .args(["--private-key", KEY, "--jwt-alg", "PS256"])
        .output();
    wrong_alg.assert_code(2);
    assert!(wrong_alg.stderr.contains("PS256"), "{}", wrong_alg.stderr);
    let both = base()
        .args(["--private-key", KEY, "--auth-method", "post"])
        .output();
    both.assert_code(2);
    let keyless = base().args(["--auth-method", "private-key-jwt"]).output();
    keyless.assert_code(2);
    assert!(
        keyless.stderr.contains("--private-key"),
        "{}",
        keyless.stderr
    );
    let no_secret = base().args(["--jwt-alg", "HS256"]).output();
    no_secret.assert_code(2);
    assert!(
        no_secret.stderr.contains("client-secret-jwt"),
        "{}",
        no_secret.stderr
    );
    assert_eq!(server.count("/token"), 0, "nothing was sent");
}

#[test]
fn client_assertion_file_sends_what_the_file_holds_and_a_missing_file_sends_nothing() {
    let server = TestServer::start(TokenEndpoint::new().public_client(ID));
    let dir = TempDir::new("assertion");
    let file = dir.path().join("token.jwt");
    let jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ3b3JrbG9hZCJ9.c2lnbmF0dXJl";
    std::fs::write(&file, format!("{jwt}\n")).unwrap();
    let base = || {
        Cli::new()
            .args(["token"])
            .env("CC_TOKEN_URL", server.url("/token"))
            .env("CC_CLIENT_ID", ID)
    };
    let run = base()
        .args(["--client-assertion-file", file.to_str().unwrap()])
        .output();
    run.assert_code(0).assert_hides(jwt);
    let sent = server.last_request().unwrap();
    assert_eq!(sent.param("client_assertion").as_deref(), Some(jwt));
    assert_eq!(
        sent.param("client_assertion_type").as_deref(),
        Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
    );
    assert_eq!(sent.param("client_id").as_deref(), Some(ID));
    assert!(sent.header("authorization").is_none());

    std::fs::write(&file, "").unwrap();
    let empty = base()
        .args(["--json", "--client-assertion-file", file.to_str().unwrap()])
        .output();
    empty.assert_code(2);
    let error: serde_json::Value = serde_json::from_str(&empty.stdout).unwrap();
    assert_eq!(error["error"]["kind"], "config", "{error}");
    assert!(
        error.to_string().contains("token.jwt") && error.to_string().contains("is empty"),
        "{error}"
    );
    let missing = dir.path().join("absent.jwt");
    let absent = base()
        .args(["--client-assertion-file", missing.to_str().unwrap()])
        .output();
    absent.assert_code(2).assert_one_line_error();
    assert!(absent.stderr.contains("absent.jwt"), "{}", absent.stderr);
    let with_key = base()
        .args(["--client-assertion-file", file.to_str().unwrap()])
        .args(["--private-key", KEY])
        .output();
    with_key.assert_code(2);
    assert_eq!(
        server.count("/token"),
        1,
        "only the first run sent anything"
    );
}

/// The RFC 7638 thumbprint of a P-256 or Ed25519 public JWK.
fn jwk_thumbprint(jwk: &serde_json::Value) -> String {
    use base64::Engine as _;
    use sha2::Digest as _;
    let canonical = match jwk["kty"].as_str() {
        Some("EC") => format!(
            r#"{{"crv":"{}","kty":"EC","x":"{}","y":"{}"}}"#,
            jwk["crv"].as_str().unwrap(),
            jwk["x"].as_str().unwrap(),
            jwk["y"].as_str().unwrap()
        ),
        _ => format!(
            r#"{{"crv":"{}","kty":"OKP","x":"{}"}}"#,
            jwk["crv"].as_str().unwrap(),
            jwk["x"].as_str().unwrap()
        ),
    };
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(canonical))
}

#[test]
fn dpop_binds_the_token_to_a_key_whose_thumbprint_json_prints() {
    use client_credentials_testkit::conformance::dpop::{dpop_token_server, proof_claims};
    let server = dpop_token_server();
    let proof_header = |sent: &client_credentials_testkit::Request| {
        let header = sent
            .header("dpop")
            .expect("a DPoP proof")
            .split('.')
            .next()
            .unwrap();
        use base64::Engine as _;
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(header)
            .unwrap();
        serde_json::from_slice::<serde_json::Value>(&bytes).unwrap()
    };
    // A key made for the run: a new one every run.
    let mut jkts = Vec::new();
    for _ in 0..2 {
        let run = cli(&server).args(["--dpop", "--json"]).output();
        run.assert_code(0).assert_hides(SECRET);
        let v = run.json();
        assert_eq!(v["token_type"], "DPoP");
        let sent = server.last_request().unwrap();
        let header = proof_header(&sent);
        assert_eq!(header["typ"], "dpop+jwt");
        assert_eq!(header["alg"], "ES256");
        assert_eq!(v["dpop_jkt"], jwk_thumbprint(&header["jwk"]));
        assert_eq!(proof_claims(&sent).unwrap()["htu"], server.url("/token"));
        jkts.push(v["dpop_jkt"].as_str().unwrap().to_owned());
    }
    assert_ne!(jkts[0], jkts[1]);
    // A supplied key (Ed25519 here), and without --json only the token.
    let ed = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../client-credentials-core/tests/keys/ed25519.pem"
    );
    let run = cli(&server).args(["--dpop-key", ed, "--json"]).output();
    run.assert_code(0);
    let header = proof_header(&server.last_request().unwrap());
    assert_eq!(header["alg"], "EdDSA");
    assert_eq!(run.json()["dpop_jkt"], jwk_thumbprint(&header["jwk"]));
    let run = cli(&server).args(["--dpop-key", ed]).output();
    run.assert_code(0);
    assert!(run.stdout.starts_with("token-") && run.stdout.lines().count() == 1);
    // A file that is no key: exit 2, the file named, nothing sent.
    let sent = server.request_count();
    let bad = cli(&server)
        .args([
            "--dpop-key",
            concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"),
        ])
        .output();
    bad.assert_code(2).assert_one_line_error();
    assert!(bad.stderr.contains("Cargo.toml"), "{}", bad.stderr);
    assert!(!bad.stderr.contains("[package]"));
    assert_eq!(server.request_count(), sent);
}

const CERTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/interop/certs/");

/// `--cert` and `--key` select tls_client_auth when no secret is given: the body names the
/// client and carries no secret, and no `Authorization` goes out (the certificate is
/// presented on TLS connections; this endpoint is loopback HTTP).
#[test]
fn cert_and_key_authenticate_with_mutual_tls_and_no_secret() {
    let server = TestServer::start(TokenEndpoint::new().public_client(ID));
    let base = || {
        Cli::new()
            .args(["token"])
            .env("CC_TOKEN_URL", server.url("/token"))
            .env("CC_CLIENT_ID", ID)
    };
    let (cert, key) = (format!("{CERTS}client.pem"), format!("{CERTS}client.key"));
    let run = base().args(["--cert", &cert, "--key", &key]).output();
    run.assert_code(0);
    assert_eq!(run.stdout, "token-1\n");
    let sent = server.last_request().unwrap();
    assert!(sent.header("authorization").is_none());
    assert_eq!(sent.param("client_id").as_deref(), Some(ID));
    assert!(sent.param("client_secret").is_none());
    let self_signed = base()
        .args([
            "--auth-method",
            "self-signed-tls-client-auth",
            "--cert",
            &format!("{CERTS}self-signed.pem"),
            "--key",
            &format!("{CERTS}self-signed.key"),
        ])
        .output();
    self_signed.assert_code(0);

    // Mistakes exit 2 before anything is sent, naming the file, never its contents.
    let sent = server.request_count();
    let no_cert = base().args(["--auth-method", "tls-client-auth"]).output();
    no_cert.assert_code(2).assert_one_line_error();
    assert!(no_cert.stderr.contains("--cert"), "{}", no_cert.stderr);
    let not_a_cert = base().args(["--cert", &key, "--key", &key]).output();
    not_a_cert.assert_code(2).assert_one_line_error();
    assert!(
        not_a_cert.stderr.contains("client.key"),
        "{}",
        not_a_cert.stderr
    );
    assert!(!not_a_cert.stderr.contains("PRIVATE KEY"));
    let no_key = base().args(["--cert", &cert]).output();
    no_key.assert_code(2).assert_one_line_error();
    let someone_elses_key = base()
        .args(["--cert", &cert, "--key", &format!("{CERTS}self-signed.key")])
        .output();
    someone_elses_key.assert_code(2).assert_one_line_error();
    assert!(
        someone_elses_key.stderr.contains("does not belong"),
        "{}",
        someone_elses_key.stderr
    );
    let bad_ca = base()
        .args(["--cert", &cert, "--key", &key, "--ca-cert", &key])
        .output();
    bad_ca.assert_code(2).assert_one_line_error();
    assert!(
        bad_ca.stderr.contains("no PEM certificate"),
        "{}",
        bad_ca.stderr
    );
    let key_alone = base().args(["--key", &key]).output();
    key_alone.assert_code(2);
    assert_eq!(server.request_count(), sent);
}

/// End to end over HTTPS: the embedded server with a client CA authenticates the CLI by
/// its certificate alone (`--cert`, `--key`, the server trusted through `--ca-cert`), and
/// the token is bound to it; another certificate with the same subject is refused (exit 3).
#[test]
fn cert_authenticates_over_https_and_binds_the_token() {
    use client_credentials_server::EmbeddedServer;
    let read = |name: &str| std::fs::read_to_string(format!("{CERTS}{name}")).unwrap();
    let server = EmbeddedServer::builder()
        .tls(read("server.pem"), read("server.key"))
        .client_ca(read("ca.pem"))
        .registered_client(
            client_credentials_core::server::RegisteredClient::tls_client_auth(
                ID,
                "CN=mtls-client",
            )
            .scopes(["read"]),
        )
        .jwt_access_tokens()
        .start()
        .unwrap();
    let run_with = |cert: &str, key: &str| {
        Cli::new()
            .args(["token", "--json", "--cert", cert, "--key", key])
            .args(["--ca-cert", &format!("{CERTS}ca.pem")])
            .env("CC_TOKEN_URL", server.token_url())
            .env("CC_CLIENT_ID", ID)
            .output()
    };
    let run = run_with(&format!("{CERTS}client.pem"), &format!("{CERTS}client.key"));
    run.assert_code(0);
    let token = run.json()["access_token"].as_str().unwrap().to_owned();
    let claims = {
        use base64::Engine as _;
        let payload = token.split('.').nth(1).unwrap();
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap();
        serde_json::from_slice::<serde_json::Value>(&bytes).unwrap()
    };
    let identity =
        client_credentials_core::ClientIdentity::from_pem(read("client.pem"), read("client.key"))
            .unwrap();
    assert_eq!(claims["cnf"]["x5t#S256"], identity.x5t_s256());

    let refused = run_with(&format!("{CERTS}other.pem"), &format!("{CERTS}other.key"));
    refused.assert_code(3).assert_one_line_error();
    assert!(
        refused.stderr.contains("invalid_client"),
        "{}",
        refused.stderr
    );
}
