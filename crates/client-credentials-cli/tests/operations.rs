//! `client-credentials revoke` and `introspect` against the embedded server and scripted
//! servers on 127.0.0.1, and the secret kept out of every output when a server echoes it in
//! another letter case or encoding.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use base64::Engine as _;
use client_credentials_core::Scrubber;
use client_credentials_server::EmbeddedServer;
use client_credentials_testkit::{Reply, TestServer, refused_url};
use common::{Cli, TempDir};
use serde_json::json;

const ID: &str = "ops-client";
const SECRET: &str = "Ops-Secret/with+odd chars-0123456789";

fn server() -> EmbeddedServer {
    EmbeddedServer::builder()
        .client(ID, SECRET, ["read"])
        .scope("read", "Read")
        .start()
        .unwrap()
}

fn cli(server: &EmbeddedServer, command: &str, home: TempDir) -> Cli {
    Cli::with_home(home)
        .args([command])
        .env("CC_TOKEN_URL", server.token_url())
        .env("CC_REVOCATION_URL", server.revocation_url())
        .env("CC_INTROSPECTION_URL", server.introspection_url())
        .env("CC_CLIENT_ID", ID)
        .env("CC_CLIENT_SECRET", SECRET)
}

fn hides_secret(run: &common::Run) {
    let scrubber = Scrubber::new(SECRET).with_client_id(ID);
    for text in [&run.stdout, &run.stderr] {
        assert!(!scrubber.found_in(text), "the secret shows: {run:?}");
    }
}

#[test]
fn introspect_then_revoke_a_token() {
    let server = server();
    let (run, home) = cli(&server, "token", TempDir::new("ops")).run();
    run.assert_code(0);
    let token = run.stdout.trim().to_owned();

    let (run, home) = cli(&server, "introspect", home)
        .env("CC_ACCESS_TOKEN", &token)
        .run();
    run.assert_code(0);
    hides_secret(&run);
    assert_eq!(run.stdout, "active\n");

    let (run, home) = cli(&server, "introspect", home)
        .args(["--json"])
        .stdin(&format!("{token}\n"))
        .args(["--token-stdin"])
        .run();
    run.assert_code(0);
    let v = run.json();
    assert_eq!(v["active"], true, "{v}");
    assert_eq!(v["client_id"], ID, "{v}");
    assert_eq!(v["scope"], "read", "{v}");
    assert!(v["exp"].as_u64().is_some(), "{v}");

    let file = home.path().join("token.txt");
    std::fs::write(&file, &token).unwrap();
    let (run, home) = cli(&server, "revoke", home)
        .args([std::ffi::OsStr::new("--token-file"), file.as_os_str()])
        .run();
    run.assert_code(0);
    assert_eq!(run.stdout, "", "revoke prints nothing: {run:?}");
    assert_eq!(run.stderr, "");

    let (run, _) = cli(&server, "introspect", home)
        .args(["--json"])
        .env("CC_ACCESS_TOKEN", &token)
        .run();
    run.assert_code(0);
    assert_eq!(run.json()["active"], false, "{run:?}");
}

#[test]
fn with_cache_the_cached_token_is_used_and_revocation_removes_it() {
    let server = server();
    let (run, home) = cli(&server, "token", TempDir::new("ops"))
        .args(["--cache"])
        .run();
    run.assert_code(0);
    let token = run.stdout.trim().to_owned();
    let cached = |home: &TempDir| {
        std::fs::read_dir(home.path().join("cache").join("client-credentials"))
            .map(|d| d.count())
            .unwrap_or(0)
    };
    assert_eq!(cached(&home), 1);

    let (run, home) = cli(&server, "introspect", home)
        .args(["--cache", "--json"])
        .run();
    run.assert_code(0);
    assert_eq!(run.json()["active"], true, "{run:?}");

    let (run, home) = cli(&server, "revoke", home)
        .args(["--cache", "--json"])
        .run();
    run.assert_code(0);
    assert_eq!(run.json(), json!({"revoked": true}));
    assert_eq!(cached(&home), 0, "the revoked token left the cache");

    let (run, home) = cli(&server, "introspect", home)
        .env("CC_ACCESS_TOKEN", &token)
        .run();
    run.assert_code(0);
    assert_eq!(run.stdout, "inactive\n");

    // Nothing cached any more: a configuration error, nothing sent.
    let (run, _) = cli(&server, "revoke", home)
        .args(["--cache", "--json"])
        .run();
    run.assert_code(2).assert_one_line_error();
    assert_eq!(run.error()["kind"], "config");
}

#[test]
fn failures_use_the_exit_codes_of_token() {
    let server = server();
    // A wrong secret: rejected, 3.
    let run = cli(&server, "revoke", TempDir::new("ops"))
        .env("CC_CLIENT_SECRET", "not-the-secret")
        .env("CC_ACCESS_TOKEN", "whatever")
        .args(["--json"])
        .output();
    run.assert_code(3).assert_one_line_error();
    let e = run.error();
    assert_eq!(e["kind"], "rejected", "{e}");
    assert_eq!(e["http_status"], 401, "{e}");
    assert_eq!(e["oauth_error"], "invalid_client", "{e}");
    assert_eq!(e["exit_code"], 3);
    // The message names the endpoint that refused.
    let message = e["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("revocation request rejected (HTTP 401)"),
        "{e}"
    );

    // No endpoint, no token: usage/config errors, 2, nothing sent.
    let run = Cli::new()
        .args(["introspect", "--json"])
        .env("CC_TOKEN_URL", server.token_url())
        .env("CC_CLIENT_ID", ID)
        .env("CC_CLIENT_SECRET", SECRET)
        .env("CC_ACCESS_TOKEN", "t")
        .output();
    run.assert_code(2).assert_one_line_error();
    assert!(run.stderr.contains("--introspection-url"), "{run:?}");
    let run = cli(&server, "revoke", TempDir::new("ops")).output();
    run.assert_code(2).assert_one_line_error();
    assert!(run.stderr.contains("no access token"), "{run:?}");
    let run = cli(&server, "revoke", TempDir::new("ops"))
        .args(["--token-stdin", "--client-secret-stdin"])
        .stdin("x\n")
        .output();
    run.assert_code(2);

    // Unreachable: transport, 5.
    let run = cli(&server, "introspect", TempDir::new("ops"))
        .env("CC_INTROSPECTION_URL", refused_url("/introspect"))
        .env("CC_ACCESS_TOKEN", "t")
        .args(["--json"])
        .output();
    run.assert_code(5).assert_one_line_error();
    assert_eq!(run.error()["kind"], "transport");
    assert!(
        run.stderr.contains("introspection request failed"),
        "{run:?}"
    );

    // A 404 (a wrong path) says so.
    let run = cli(&server, "introspect", TempDir::new("ops"))
        .env("CC_INTROSPECTION_URL", server.url("/no-such-endpoint"))
        .env("CC_ACCESS_TOKEN", "t")
        .args(["--json"])
        .output();
    run.assert_code(5);
    assert!(run.stderr.contains("endpoint not found"), "{run:?}");
}

/// The secret as servers echo it: another case, percent- or JSON-encoded, in Basic's Base64.
fn echoes() -> Vec<String> {
    let form: String = form_urlencoded::byte_serialize(SECRET.as_bytes()).collect();
    vec![
        SECRET.to_uppercase(),
        SECRET.to_lowercase(),
        form.to_lowercase(),
        SECRET.bytes().map(|b| format!("%{b:02x}")).collect(),
        base64::engine::general_purpose::STANDARD.encode(format!("{ID}:{form}")),
    ]
}

#[test]
fn a_server_that_echoes_the_secret_in_any_case_or_encoding_never_gets_it_printed() {
    for echo in echoes() {
        let mut extra = serde_json::Map::new();
        // In a member name (which the parser lower-cases), a value and a nested value.
        extra.insert(echo.clone(), json!("name"));
        extra.insert("echo".into(), json!(echo));
        extra.insert("nested".into(), json!({ "deeper": [echo] }));
        let mut body = json!({"access_token": "tok-1", "token_type": "Bearer", "expires_in": 60});
        body.as_object_mut().unwrap().extend(extra);
        let server = TestServer::start(Reply::json(200, &body));
        let run = Cli::new()
            .args(["token", "--json", "-v"])
            .env("CC_TOKEN_URL", server.url("/token"))
            .env("CC_CLIENT_ID", ID)
            .env("CC_CLIENT_SECRET", SECRET)
            .output();
        run.assert_code(0);
        hides_secret(&run);
        assert_eq!(run.json()["access_token"], "tok-1");

        // And in errors: an RFC description, a vendor message, a body that is no error shape.
        for (status, body) in [
            (
                401,
                json!({"error": "invalid_client", "error_description": format!("bad {echo}")}),
            ),
            (
                401,
                json!({"errorCode": "E0000011", "errorSummary": format!("secret {echo}")}),
            ),
            (400, json!({ echo.clone(): 1 })),
        ] {
            let server = TestServer::start(Reply::json(status, &body));
            let run = Cli::new()
                .args(["token", "--json"])
                .env("CC_TOKEN_URL", server.url("/token"))
                .env("CC_CLIENT_ID", ID)
                .env("CC_CLIENT_SECRET", SECRET)
                .output();
            assert_ne!(run.code, 0);
            hides_secret(&run);
        }
    }
}

#[test]
fn vendor_errors_and_readable_messages_in_json() {
    let server = TestServer::start(Reply::json(
        401,
        &json!({"errorCode": "E0000011", "errorSummary": "Invalid token provided"}),
    ));
    let run = Cli::new()
        .args(["token", "--json"])
        .env("CC_TOKEN_URL", server.url("/token"))
        .env("CC_CLIENT_ID", ID)
        .env("CC_CLIENT_SECRET", SECRET)
        .output();
    run.assert_code(3);
    let e = run.error();
    assert_eq!(e["kind"], "rejected");
    assert_eq!(e["oauth_error"], "E0000011");
    assert_eq!(e["oauth_error_description"], "Invalid token provided");
    assert_eq!(e["oauth_error_dialect"], "error_code_summary");

    let message = "only application/x-www-form-urlencoded content-type bodies are supported";
    let server = TestServer::start(Reply::oauth_error(400, "invalid_request", Some(message)));
    let run = Cli::new()
        .args(["token", "--json"])
        .env("CC_TOKEN_URL", server.url("/token"))
        .env("CC_CLIENT_ID", ID)
        .env("CC_CLIENT_SECRET", SECRET)
        .output();
    run.assert_code(3);
    assert_eq!(run.error()["oauth_error_description"], message);
    assert!(run.error()["oauth_error_dialect"].is_null());
    assert!(run.stderr.contains(message), "{run:?}");
}
