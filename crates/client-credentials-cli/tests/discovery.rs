//! `client-credentials token --issuer URL`: the endpoints and the auth method come from the
//! issuer's metadata, `--auth-method` still wins, and a foreign document is refused with
//! the configuration exit code before any token request.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use client_credentials_testkit::{Metadata, Reply, Router, TestServer, TokenEndpoint};
use common::Cli;
use serde_json::json;

const ID: &str = "svc";
const SECRET: &str = "S3cr3t+with/odd:chars%and-some-length-0123456789";
const OAUTH: &str = "/.well-known/oauth-authorization-server";

fn server(metadata: Metadata) -> TestServer {
    TestServer::start(
        Router::new()
            .route(OAUTH, metadata)
            .route("/token", TokenEndpoint::new().client(ID, SECRET)),
    )
}

fn cli(issuer: &str) -> Cli {
    Cli::new()
        .args(["token", "--issuer", issuer])
        .env("CC_CLIENT_ID", ID)
        .env("CC_CLIENT_SECRET", SECRET)
}

#[test]
fn the_issuer_replaces_the_token_url_and_picks_the_auth_method() {
    let server = server(Metadata::new("").member(
        "token_endpoint_auth_methods_supported",
        json!(["client_secret_post"]),
    ));
    let run = cli(&server.url("")).output();
    run.assert_code(0).assert_hides(SECRET);
    assert_eq!(run.stdout, "token-1\n");
    let paths: Vec<String> = server.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(paths, [OAUTH, "/token"]);
    let sent = server.last_request().unwrap();
    assert_eq!(sent.basic_auth(), None);
    assert_eq!(sent.param("client_secret").as_deref(), Some(SECRET));
}

#[test]
fn an_explicit_auth_method_wins() {
    let server = server(Metadata::new("").member(
        "token_endpoint_auth_methods_supported",
        json!(["client_secret_post", "client_secret_basic"]),
    ));
    let run = cli(&server.url(""))
        .args(["--auth-method", "post"])
        .output();
    run.assert_code(0);
    assert_eq!(
        server
            .last_request()
            .unwrap()
            .param("client_secret")
            .as_deref(),
        Some(SECRET)
    );
    let run = cli(&server.url("")).output();
    run.assert_code(0);
    assert_eq!(
        server.last_request().unwrap().basic_auth(),
        Some((ID.into(), SECRET.into()))
    );
}

#[test]
fn a_foreign_issuer_is_a_configuration_error_and_nothing_is_fetched() {
    let server = server(Metadata::new("").member("issuer", json!("https://evil.example")));
    let run = cli(&server.url("")).output();
    run.assert_code(2).assert_hides(SECRET);
    assert!(run.stderr.contains("issuer"), "{run:?}");
    assert_eq!(server.count("/token"), 0);
}

#[test]
fn a_failing_metadata_endpoint_is_reported_as_that_endpoint() {
    let server = TestServer::start(Router::new().route(OAUTH, Reply::new(503)));
    let run = cli(&server.url("")).output();
    assert_ne!(run.code, 0, "{run:?}");
    assert!(run.stderr.contains("metadata endpoint failed"), "{run:?}");
}
