//! The token endpoint over real HTTP on 127.0.0.1, driven the way `curl` or another
//! language's client would drive it, and a round trip with our own client.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests: a panic is a failure report.

mod common;

use std::time::{Duration, SystemTime};

use client_credentials_core::server::{ClientAuthMethod, RegisteredClient};
use client_credentials_core::{AuthMethod, BodyFormat, Config, ErrorCode, TokenParams};
use client_credentials_server::{EmbeddedServer, Route};
use common::{FORM, basic, basic_encoded, get, post_form, send, send_http, send_raw};

const SPECIAL: &str = "a+b/c:d%e f";

fn server() -> EmbeddedServer {
    EmbeddedServer::builder()
        .client("s6BhdRkqt3", "gX1fBat3bV", ["read", "write"])
        .client("special", SPECIAL, ["read"])
        .scope("read", "Read things")
        .scope("write", "Write things")
        .scope("admin", "Administer")
        .start()
        .unwrap()
}

fn assert_no_store(reply: &common::Reply) {
    assert_eq!(reply.header("cache-control"), Some("no-store"), "{reply:?}");
    assert_eq!(reply.header("pragma"), Some("no-cache"), "{reply:?}");
    assert_eq!(
        reply.header("content-type"),
        Some("application/json"),
        "{reply:?}"
    );
}

#[test]
fn rfc6749_4_4_2_request() {
    let server = server();
    assert!(server.addr().ip().is_loopback());
    let reply = post_form(
        server.addr(),
        "/token",
        &[("authorization", "Basic czZCaGRSa3F0MzpnWDFmQmF0M2JW")],
        "grant_type=client_credentials",
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_no_store(&reply);
    let body = reply.json();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    assert_eq!(body["scope"], "read write");
    let token = body["access_token"].as_str().unwrap();
    assert_eq!(token.len(), 43);
    assert_eq!(server.requests(Route::Token), 1);
    assert_eq!(server.active_tokens(), 1);
}

#[test]
fn basic_encoding_is_strict_by_default() {
    let server = server();
    let addr = server.addr();
    let ok = post_form(
        addr,
        "/token",
        &[("authorization", &basic_encoded("special", SPECIAL))],
        "grant_type=client_credentials",
    );
    assert_eq!(ok.status, 200, "{}", ok.text());

    // `curl -u special:'a+b/c:d%e f'` does not encode: refused, as oidc-provider refuses it.
    let raw = post_form(
        addr,
        "/token",
        &[("authorization", &basic("special", SPECIAL))],
        "grant_type=client_credentials",
    );
    assert_eq!(raw.status, 401);
    assert_eq!(
        raw.header("www-authenticate"),
        Some(r#"Basic realm="token""#)
    );
    assert_eq!(raw.json()["error"], "invalid_client");
    assert_no_store(&raw);

    let lenient = EmbeddedServer::builder()
        .client("special", SPECIAL, ["read"])
        .accept_unencoded_basic(true)
        .start()
        .unwrap();
    let raw = post_form(
        lenient.addr(),
        "/token",
        &[("authorization", &basic("special", SPECIAL))],
        "grant_type=client_credentials",
    );
    assert_eq!(raw.status, 200, "{}", raw.text());
}

#[test]
fn post_credentials_json_bodies_and_scopes() {
    let server = server();
    let addr = server.addr();
    let post = post_form(
        addr,
        "/token",
        &[],
        "grant_type=client_credentials&client_id=s6BhdRkqt3&client_secret=gX1fBat3bV&scope=read%20write",
    );
    assert_eq!(post.status, 200, "{}", post.text());
    assert_eq!(post.json()["scope"], "read write");

    let json = send(
        addr,
        "POST",
        "/token",
        &[("content-type", "application/json")],
        br#"{"grant_type":"client_credentials","client_id":"special","client_secret":"a+b/c:d%e f","scope":"read"}"#,
    );
    assert_eq!(json.status, 200, "{}", json.text());
    assert_eq!(json.json()["scope"], "read");

    let plus = post_form(
        addr,
        "/token",
        &[("authorization", "Basic czZCaGRSa3F0MzpnWDFmQmF0M2JW")],
        "grant_type=client_credentials&scope=write+read",
    );
    assert_eq!(plus.json()["scope"], "write read");
}

#[test]
fn refusals_over_the_wire() {
    let server = server();
    let addr = server.addr();
    let rfc = ("authorization", "Basic czZCaGRSa3F0MzpnWDFmQmF0M2JW");
    let cases: Vec<(&str, common::Reply, u16, &str)> = vec![
        ("GET", get(addr, "/token", &[rfc]), 405, "invalid_request"),
        (
            "text/plain",
            send(
                addr,
                "POST",
                "/token",
                &[rfc, ("content-type", "text/plain")],
                b"grant_type=client_credentials",
            ),
            400,
            "invalid_request",
        ),
        (
            "no grant_type",
            post_form(addr, "/token", &[rfc], "scope=read"),
            400,
            "invalid_request",
        ),
        (
            "repeated grant_type",
            post_form(
                addr,
                "/token",
                &[rfc],
                "grant_type=client_credentials&grant_type=client_credentials",
            ),
            400,
            "invalid_request",
        ),
        (
            "header and body credentials",
            post_form(
                addr,
                "/token",
                &[rfc],
                "grant_type=client_credentials&client_id=s6BhdRkqt3&client_secret=gX1fBat3bV",
            ),
            400,
            "invalid_request",
        ),
        (
            "two Authorization headers",
            post_form(addr, "/token", &[rfc, rfc], "grant_type=client_credentials"),
            400,
            "invalid_request",
        ),
        (
            "password grant",
            post_form(addr, "/token", &[rfc], "grant_type=password"),
            400,
            "unsupported_grant_type",
        ),
        (
            "unknown scope",
            post_form(
                addr,
                "/token",
                &[rfc],
                "grant_type=client_credentials&scope=delete",
            ),
            400,
            "invalid_scope",
        ),
        (
            "scope not allowed",
            post_form(
                addr,
                "/token",
                &[rfc],
                "grant_type=client_credentials&scope=admin",
            ),
            400,
            "invalid_scope",
        ),
        (
            "no credentials",
            post_form(addr, "/token", &[], "grant_type=client_credentials"),
            401,
            "invalid_client",
        ),
        (
            "wrong secret",
            post_form(
                addr,
                "/token",
                &[("authorization", &basic("s6BhdRkqt3", "nope"))],
                "grant_type=client_credentials",
            ),
            401,
            "invalid_client",
        ),
        (
            "unknown client",
            post_form(
                addr,
                "/token",
                &[("authorization", &basic("ghost", "nope"))],
                "grant_type=client_credentials",
            ),
            401,
            "invalid_client",
        ),
        (
            "garbage Basic",
            post_form(
                addr,
                "/token",
                &[("authorization", "Basic %%%")],
                "grant_type=client_credentials",
            ),
            401,
            "invalid_client",
        ),
        (
            "malformed JSON",
            send(
                addr,
                "POST",
                "/token",
                &[rfc, ("content-type", "application/json")],
                b"{\"grant_type\":",
            ),
            400,
            "invalid_request",
        ),
    ];
    for (name, reply, status, code) in cases {
        assert_eq!(reply.status, status, "{name}: {}", reply.text());
        assert_eq!(reply.json()["error"], code, "{name}");
        assert_no_store(&reply);
        assert_eq!(
            reply.header("www-authenticate").is_some(),
            status == 401,
            "{name}"
        );
        assert!(!reply.text().contains("gX1fBat3bV"), "{name}");
    }
    let get = get(addr, "/token", &[rfc]);
    assert_eq!(get.header("allow"), Some("POST"));
    assert_eq!(server.requests(Route::Token), 15);
}

#[test]
fn oversized_bodies_are_refused() {
    let server = server();
    let big = format!(
        "grant_type=client_credentials&pad={}",
        "x".repeat(70 * 1024)
    );
    let reply = post_form(
        server.addr(),
        "/token",
        &[("authorization", "Basic czZCaGRSa3F0MzpnWDFmQmF0M2JW")],
        &big,
    );
    assert_eq!(reply.status, 400);
    assert_eq!(reply.json()["error"], "invalid_request");
    assert_eq!(
        reply.json()["error_description"],
        "request body is too large"
    );

    // A chunked body with no declared length is capped as it streams.
    let mut raw = format!(
        "POST /token HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-type: {FORM}\r\ntransfer-encoding: chunked\r\n\r\n"
    )
    .into_bytes();
    for _ in 0..80 {
        raw.extend_from_slice(format!("400\r\n{}\r\n", "y".repeat(1024)).as_bytes());
    }
    raw.extend_from_slice(b"0\r\n\r\n");
    let reply = send_raw(server.addr(), &raw);
    assert_eq!(reply.status, 400);
    assert_eq!(
        reply.json()["error_description"],
        "request body is too large"
    );
}

#[test]
fn client_restrictions() {
    let server = EmbeddedServer::builder()
        .registered_client(
            RegisteredClient::new("basic-only", "pw")
                .scopes(["read"])
                .auth_methods([ClientAuthMethod::ClientSecretBasic]),
        )
        .registered_client(RegisteredClient::new("no-cc", "pw").client_credentials_allowed(false))
        .registered_client(
            RegisteredClient::new("short", "pw").token_lifetime(Duration::from_secs(5)),
        )
        .start()
        .unwrap();
    let addr = server.addr();
    let post = post_form(
        addr,
        "/token",
        &[],
        "grant_type=client_credentials&client_id=basic-only&client_secret=pw",
    );
    assert_eq!(post.status, 401);
    assert_eq!(post.json()["error"], "invalid_client");
    let no_cc = post_form(
        addr,
        "/token",
        &[("authorization", &basic("no-cc", "pw"))],
        "grant_type=client_credentials",
    );
    assert_eq!(no_cc.status, 400);
    assert_eq!(no_cc.json()["error"], "unauthorized_client");
    let short = post_form(
        addr,
        "/token",
        &[("authorization", &basic("short", "pw"))],
        "grant_type=client_credentials",
    );
    assert_eq!(short.json()["expires_in"], 5);
    assert!(short.json().get("scope").is_none(), "no scope granted");

    let post_only = EmbeddedServer::builder()
        .client("app", "pw", ["read"])
        .auth_methods([ClientAuthMethod::ClientSecretPost])
        .accept_json(false)
        .start()
        .unwrap();
    let basic_reply = post_form(
        post_only.addr(),
        "/token",
        &[("authorization", &basic("app", "pw"))],
        "grant_type=client_credentials",
    );
    assert_eq!(basic_reply.status, 401);
    let json = send(
        post_only.addr(),
        "POST",
        "/token",
        &[("content-type", "application/json")],
        br#"{"grant_type":"client_credentials","client_id":"app","client_secret":"pw"}"#,
    );
    assert_eq!(json.status, 400);
    assert_eq!(json.json()["error"], "invalid_request");
}

/// Our client, built by the core, against our server: every auth method and body format,
/// then the protected resource with the token.
#[test]
fn round_trip_with_the_core_client() {
    let server = EmbeddedServer::builder()
        .client("svc:1", SPECIAL, ["read", "write"])
        .scope("read", "Read things")
        .scope("write", "Write things")
        .token_lifetime(Duration::from_secs(120))
        .start()
        .unwrap();
    let methods = [
        AuthMethod::ClientSecretBasic,
        AuthMethod::client_secret_post(),
    ];
    let mut fetched = 0;
    for method in methods {
        for format in [BodyFormat::Form, BodyFormat::Json] {
            let config = Config::builder()
                .token_url(server.token_url())
                .client_id("svc:1")
                .client_secret(SPECIAL)
                .auth_method(method.clone())
                .body_format(format)
                .scopes(["read"])
                .build()
                .unwrap();
            for params in [
                TokenParams::new(),
                TokenParams::new().scopes(["read", "write"]),
                TokenParams::new().resource("https://api.example/"),
            ] {
                let request = config.request(&params).unwrap();
                let sent_at = SystemTime::now();
                let reply = send_http(server.addr(), &request.to_http());
                let token = request
                    .parse_response(
                        sent_at,
                        reply.status_code(),
                        &reply.header_map(),
                        &reply.body,
                    )
                    .unwrap_or_else(|e| panic!("{method:?} {format:?}: {e}"));
                fetched += 1;
                assert_eq!(token.scopes(), request.params().scopes());
                assert_eq!(token.lifetime(), Some(Duration::from_secs(120)));
                assert!(token.deviations().is_empty(), "{:?}", token.deviations());

                let auth = token.authorization_header();
                let resource = get(
                    server.addr(),
                    "/resource",
                    &[("authorization", auth.to_str().unwrap())],
                );
                assert_eq!(resource.status, 200, "{}", resource.text());
                assert_eq!(resource.json()["client_id"], "svc:1");
                assert_eq!(resource.json()["scope"], token.scopes().join(" "));
            }
        }
    }
    assert_eq!(server.requests(Route::Token), fetched);
    assert_eq!(server.requests(Route::Resource), fetched);

    // A refusal reaches our client as the typed error.
    let config = Config::builder()
        .token_url(server.token_url())
        .client_id("svc:1")
        .client_secret("wrong")
        .build()
        .unwrap();
    let request = config.default_request();
    let reply = send_http(server.addr(), &request.to_http());
    let err = request
        .parse_response(
            SystemTime::now(),
            reply.status_code(),
            &reply.header_map(),
            &reply.body,
        )
        .unwrap_err();
    assert_eq!(err.oauth_code(), Some(&ErrorCode::InvalidClient));
    assert!(!err.is_retryable());
}
