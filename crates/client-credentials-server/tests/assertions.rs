//! `private_key_jwt` and `client_secret_jwt` over real HTTP on 127.0.0.1: our own client
//! signs the assertions (RS256, PS256, ES256, EdDSA, HS256), the embedded server verifies
//! them against the registered keys, and a replayed assertion is refused.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests: a panic is a failure report.

mod common;

use std::time::{Duration, SystemTime};

use client_credentials_core::server::{ClientAuthMethod, JwkSet, RegisteredClient};
use client_credentials_core::{
    AssertionAlgorithm, AssertionKey, Audience, AuthMethod, Config, ErrorCode,
};
use client_credentials_server::{EmbeddedServer, Route};
use common::{get, post_form, send_http};
use serde_json::{Value, json};

const HS_SECRET: &str = "a-client-secret-of-at-least-32-bytes";

fn key(pem: &str, kid: &str) -> AssertionKey {
    AssertionKey::from_pem(pem).unwrap().with_key_id(kid)
}

fn rsa() -> AssertionKey {
    key(
        include_str!("../../client-credentials-core/tests/keys/rsa-2048.pem"),
        "rsa-1",
    )
}

fn ec() -> AssertionKey {
    key(
        include_str!("../../client-credentials-core/tests/keys/ec-p256.pem"),
        "ec-1",
    )
}

fn ed() -> AssertionKey {
    key(
        include_str!("../../client-credentials-core/tests/keys/ed25519.pem"),
        "ed-1",
    )
}

fn jwks(keys: &[&AssertionKey]) -> JwkSet {
    let keys: Vec<Value> = keys.iter().map(|k| k.public_jwk()).collect();
    JwkSet::from_value(&json!({ "keys": keys })).unwrap()
}

fn server() -> EmbeddedServer {
    let pss = rsa()
        .with_key_id("rsa-pss")
        .with_algorithm(AssertionAlgorithm::Ps256)
        .unwrap();
    EmbeddedServer::builder()
        .scope("read", "Read things")
        .registered_client(
            RegisteredClient::with_jwks("rsa-client", jwks(&[&rsa(), &pss])).scopes(["read"]),
        )
        .registered_client(
            RegisteredClient::with_jwks("ec-client", jwks(&[&ec()]))
                .scopes(["read"])
                .auth_methods([ClientAuthMethod::PrivateKeyJwt]),
        )
        .registered_client(
            RegisteredClient::with_jwks("ed-client", jwks(&[&ed()])).scopes(["read"]),
        )
        .registered_client(
            RegisteredClient::new("hs-client", HS_SECRET)
                .scopes(["read"])
                .auth_methods([ClientAuthMethod::ClientSecretJwt]),
        )
        .start()
        .unwrap()
}

/// A configuration of our own client for `id`, signing with `key` (or HS256 when `None`).
fn config(server: &EmbeddedServer, id: &str, key: Option<AssertionKey>) -> Config {
    let builder = Config::builder()
        .token_url(server.token_url())
        .client_id(id)
        .scopes(["read"]);
    match key {
        Some(key) => builder.private_key(key),
        None => builder
            .client_secret(HS_SECRET)
            .auth_method(AuthMethod::ClientSecretJwt),
    }
    .build()
    .unwrap()
}

#[test]
fn every_algorithm_gets_a_token_and_a_replay_is_refused() {
    let server = server();
    let pss = rsa()
        .with_key_id("rsa-pss")
        .with_algorithm(AssertionAlgorithm::Ps256)
        .unwrap();
    let cases = [
        ("RS256", "rsa-client", Some(rsa())),
        ("PS256", "rsa-client", Some(pss)),
        ("ES256", "ec-client", Some(ec())),
        ("EdDSA", "ed-client", Some(ed())),
        ("HS256", "hs-client", None),
    ];
    let mut nonce = 1_u128;
    for (alg, id, key) in cases {
        let config = config(&server, id, key);
        let request = config.default_request();
        let sent_at = SystemTime::now();
        nonce += 1;
        let http = request.to_http_at(sent_at, nonce);
        let reply = send_http(server.addr(), &http);
        assert_eq!(reply.status, 200, "{alg}: {}", reply.text());
        let token = request
            .parse_response(
                sent_at,
                reply.status_code(),
                &reply.header_map(),
                &reply.body,
            )
            .unwrap_or_else(|e| panic!("{alg}: {e}"));
        assert_eq!(token.scopes(), ["read"], "{alg}");

        // The token works at the resource.
        let auth = token.authorization_header();
        let resource = get(
            server.addr(),
            "/resource",
            &[("authorization", auth.to_str().unwrap())],
        );
        assert_eq!(resource.status, 200, "{alg}: {}", resource.text());
        assert_eq!(resource.json()["client_id"], id);

        // The very same signed request again: a replay, refused as invalid_client.
        let replay = send_http(server.addr(), &http);
        assert_eq!(replay.status, 401, "{alg}: {}", replay.text());
        assert_eq!(replay.json()["error"], "invalid_client", "{alg}");
        assert_eq!(replay.header("cache-control"), Some("no-store"));
        let err = request
            .parse_response(
                SystemTime::now(),
                replay.status_code(),
                &replay.header_map(),
                &replay.body,
            )
            .unwrap_err();
        assert_eq!(err.oauth_code(), Some(&ErrorCode::InvalidClient), "{alg}");

        // A fresh assertion (a new jti) is accepted again.
        nonce += 1;
        let fresh = send_http(server.addr(), &request.to_http_at(SystemTime::now(), nonce));
        assert_eq!(fresh.status, 200, "{alg}: {}", fresh.text());
    }
    assert_eq!(server.requests(Route::Token), 15);
}

#[test]
fn refusals_over_the_wire() {
    let server = server();
    let now = SystemTime::now();
    let refused = |config: &Config, at: SystemTime| {
        let reply = send_http(server.addr(), &config.default_request().to_http_at(at, 99));
        assert_eq!(reply.status, 401, "{}", reply.text());
        assert_eq!(reply.json()["error"], "invalid_client");
        reply
    };
    // Signed with the EC key, registered for the Ed25519 one.
    refused(
        &config(&server, "ed-client", Some(ec().with_key_id("ed-1"))),
        now,
    );
    // Expired long ago, and issued in the future.
    refused(
        &config(&server, "ec-client", Some(ec())),
        now - Duration::from_secs(3600),
    );
    refused(
        &config(&server, "ec-client", Some(ec())),
        now + Duration::from_secs(3600),
    );
    // An audience that is not this server.
    let elsewhere = Config::builder()
        .token_url(server.token_url())
        .client_id("ec-client")
        .private_key(ec())
        .assertion_audience(Audience::Value("https://elsewhere.example/token".into()))
        .build()
        .unwrap();
    refused(&elsewhere, now);
    // The issuer is an accepted audience too.
    let issuer = Config::builder()
        .token_url(server.token_url())
        .client_id("ec-client")
        .private_key(ec())
        .assertion_audience(Audience::Value(server.issuer().to_owned()))
        .build()
        .unwrap();
    let reply = send_http(server.addr(), &issuer.default_request().to_http_at(now, 7));
    assert_eq!(reply.status, 200, "{}", reply.text());
    // HS256 for a client registered for private_key_jwt only.
    let hs = Config::builder()
        .token_url(server.token_url())
        .client_id("ec-client")
        .client_secret(HS_SECRET)
        .auth_method(AuthMethod::ClientSecretJwt)
        .build()
        .unwrap();
    refused(&hs, now);
    // alg none, and garbage.
    let jbt = "urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer";
    for assertion in [
        "eyJhbGciOiJub25lIn0.eyJzdWIiOiJlYy1jbGllbnQifQ.",
        "eyJhbGciOiJub25lIn0.eyJzdWIiOiJlYy1jbGllbnQifQ.AAAA",
        "not-a-jwt",
    ] {
        let reply = post_form(
            server.addr(),
            "/token",
            &[],
            &format!(
                "grant_type=client_credentials&client_id=ec-client\
                 &client_assertion_type={jbt}&client_assertion={assertion}"
            ),
        );
        assert_eq!(reply.status, 401, "{assertion}: {}", reply.text());
        assert_eq!(reply.json()["error"], "invalid_client");
        assert!(!reply.text().contains("eyJ"), "{}", reply.text());
    }
}

#[test]
fn metadata_lists_the_methods_and_algorithms() {
    let server = server();
    let m = get(
        server.addr(),
        "/.well-known/oauth-authorization-server",
        &[],
    )
    .json();
    assert_eq!(
        m["token_endpoint_auth_methods_supported"],
        json!([
            "client_secret_basic",
            "client_secret_post",
            "private_key_jwt",
            "client_secret_jwt"
        ])
    );
    assert_eq!(
        m["token_endpoint_auth_signing_alg_values_supported"],
        json!(["RS256", "PS256", "ES256", "EdDSA", "HS256"])
    );
    let summary = server.clients();
    let methods = |id: &str| {
        summary
            .iter()
            .find(|c| c.id == id)
            .map(|c| c.auth_methods.clone())
            .unwrap()
    };
    assert_eq!(methods("ec-client"), [ClientAuthMethod::PrivateKeyJwt]);
    assert_eq!(methods("hs-client"), [ClientAuthMethod::ClientSecretJwt]);

    let secrets_only = EmbeddedServer::builder()
        .auth_methods([ClientAuthMethod::ClientSecretBasic])
        .start()
        .unwrap();
    let m = get(
        secrets_only.addr(),
        "/.well-known/oauth-authorization-server",
        &[],
    )
    .json();
    assert_eq!(
        m.get("token_endpoint_auth_signing_alg_values_supported"),
        None
    );
}

#[test]
fn a_configuration_file_registers_keys() {
    let dir = std::env::temp_dir().join(format!("cc-embedded-jwks-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let set = json!({ "keys": [ed().public_jwk()] });
    std::fs::write(dir.join("ed.jwks.json"), set.to_string()).unwrap();
    let inline = json!({ "keys": [ec().public_jwk()] }).to_string();
    std::fs::write(
        dir.join("server.toml"),
        format!(
            r#"
            [[clients]]
            id = "ed-client"
            scopes = ["read"]
            auth_methods = ["private_key_jwt"]
            jwks_file = "ed.jwks.json"

            [[clients]]
            id = "ec-client"
            scopes = ["read"]
            jwks = '{inline}'
            "#
        ),
    )
    .unwrap();
    let server = EmbeddedServer::builder()
        .config_file(dir.join("server.toml"))
        .unwrap()
        .start()
        .unwrap();
    for (id, key) in [("ed-client", ed()), ("ec-client", ec())] {
        let config = config(&server, id, Some(key));
        let reply = send_http(
            server.addr(),
            &config.default_request().to_http_at(SystemTime::now(), 5),
        );
        assert_eq!(reply.status, 200, "{id}: {}", reply.text());
    }
    // A keys-only client cannot get in with an empty secret.
    let empty = post_form(
        server.addr(),
        "/token",
        &[("authorization", "Basic ZWMtY2xpZW50Og==")],
        "grant_type=client_credentials",
    );
    assert_eq!(empty.status, 401, "{}", empty.text());

    let b = EmbeddedServer::builder;
    for (bad, needle) in [
        ("[[clients]]\nid = \"a\"", "needs a secret"),
        (
            "[[clients]]\nid = \"a\"\njwks = { keys = [{ kty = \"oct\", k = \"c2VjcmV0\" }] }",
            "kty",
        ),
        (
            "[[clients]]\nid = \"a\"\njwks = '{}'\njwks_file = \"x.json\"",
            "exclusive",
        ),
    ] {
        let error = b().toml(bad).err().unwrap();
        assert!(error.to_string().contains(needle), "{error}");
    }
    assert!(matches!(
        b().toml("[[clients]]\nid = \"a\"\njwks_file = \"/nonexistent/x.json\""),
        Err(client_credentials_server::ConfigFileError::Read { .. })
    ));
    std::fs::remove_dir_all(&dir).unwrap();
}
