//! Metadata, JWT access tokens and their JWKS, introspection, revocation, the protected
//! resource and configuration files, over real HTTP on 127.0.0.1.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests: a panic is a failure report.

mod common;

use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::signature::{RSA_PKCS1_2048_8192_SHA256, RsaPublicKeyComponents};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use client_credentials_server::{
    ClientAuthMethod, ConfigFileError, EmbeddedServer, JwtAlgorithm, RegisteredClient, StartError,
    TokenFormat,
};
use common::{basic, get, post_form};
use serde_json::{Value, json};

fn token(addr: SocketAddr, id: &str, secret: &str, extra: &str) -> String {
    let reply = post_form(
        addr,
        "/token",
        &[("authorization", &basic(id, secret))],
        &format!("grant_type=client_credentials{extra}"),
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
    reply.json()["access_token"].as_str().unwrap().to_owned()
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

fn server(format: TokenFormat) -> EmbeddedServer {
    server_signing_with(format, JwtAlgorithm::default())
}

fn server_signing_with(format: TokenFormat, algorithm: JwtAlgorithm) -> EmbeddedServer {
    EmbeddedServer::builder()
        .client("alice", "alice-secret", ["read", "write"])
        .client("bob", "bob-secret", ["read"])
        .scope("read", "Read things")
        .scope("write", "Write things")
        .token_format(format)
        .jwt_algorithm(algorithm)
        .start()
        .unwrap()
}

fn decode(part: &str) -> Value {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

fn b64(value: &Value) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(value.as_str().unwrap()).unwrap()
}

#[test]
fn rfc8414_metadata() {
    for (format, algorithm) in [
        (TokenFormat::Opaque, JwtAlgorithm::Rs256),
        (TokenFormat::Jwt, JwtAlgorithm::Rs256),
        (TokenFormat::Jwt, JwtAlgorithm::EdDsa),
    ] {
        let server = server_signing_with(format, algorithm);
        let reply = get(
            server.addr(),
            "/.well-known/oauth-authorization-server",
            &[],
        );
        assert_eq!(reply.status, 200);
        assert_eq!(reply.header("content-type"), Some("application/json"));
        let m = reply.json();
        assert_eq!(m["issuer"], server.issuer());
        assert_eq!(m["token_endpoint"], server.token_url());
        assert_eq!(m["introspection_endpoint"], server.introspection_url());
        assert_eq!(m["revocation_endpoint"], server.revocation_url());
        assert_eq!(m["grant_types_supported"], json!(["client_credentials"]));
        assert_eq!(m["scopes_supported"], json!(["read", "write"]));
        assert_eq!(
            m["token_endpoint_auth_methods_supported"],
            json!([
                "client_secret_basic",
                "client_secret_post",
                "private_key_jwt",
                "client_secret_jwt"
            ])
        );
        assert_eq!(m["response_types_supported"], json!([]));
        assert_eq!(
            m.get("jwks_uri").and_then(Value::as_str),
            (format == TokenFormat::Jwt)
                .then(|| server.jwks_url())
                .as_deref()
        );
        assert_eq!(
            server.metadata_url(),
            format!("{}/.well-known/oauth-authorization-server", server.issuer())
        );
    }
}

/// Fetches a JWT access token from `server` and checks its header, its signature against
/// the JWKS served over HTTP (with `verify`, which gets the key, the signing input and the
/// signature), and its RFC 9068 §2.2 claims.
fn check_jwt_access_tokens(
    server: &EmbeddedServer,
    alg: &str,
    verify: impl Fn(&Value, &[u8], &[u8]) -> bool,
) {
    let before = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let jwt = token(
        server.addr(),
        "alice",
        "alice-secret",
        "&scope=read&resource=https%3A%2F%2Fapi.example%2F",
    );
    let parts: Vec<&str> = jwt.split('.').collect();
    assert_eq!(parts.len(), 3);
    let header = decode(parts[0]);
    let claims = decode(parts[1]);
    assert_eq!(header["alg"], alg);
    assert_eq!(header["typ"], "at+jwt");

    // The JWKS published over HTTP verifies the signature, and only that one.
    let jwks = get(server.addr(), "/jwks.json", &[]).json();
    assert_eq!(Some(&jwks), server.jwks().as_ref());
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 1);
    let key = &jwks["keys"][0];
    assert_eq!(key["kid"], header["kid"]);
    assert_eq!(key["alg"], alg);
    assert_eq!(key["use"], "sig");
    for private in ["d", "p", "q", "dp", "dq", "qi"] {
        assert!(key.get(private).is_none(), "no private part: {key}");
    }
    let signing_input = format!("{}.{}", parts[0], parts[1]);
    let signature = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
    assert!(verify(key, signing_input.as_bytes(), &signature));
    let mut tampered = signing_input.clone().into_bytes();
    tampered[10] ^= 1;
    assert!(!verify(key, &tampered, &signature));

    // RFC 9068 §2.2 claims.
    assert_eq!(claims["iss"], server.issuer());
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["client_id"], "alice");
    assert_eq!(claims["aud"], "https://api.example/");
    assert_eq!(claims["scope"], "read");
    let iat = claims["iat"].as_u64().unwrap();
    assert!(iat >= before && iat <= before + 5);
    assert_eq!(claims["exp"].as_u64().unwrap(), iat + 3600);
    assert_eq!(b64(&claims["jti"]).len(), 16);

    // Without a resource, the audience is the demo resource; the token works there.
    let other = token(server.addr(), "bob", "bob-secret", "");
    let claims = decode(other.split('.').nth(1).unwrap());
    assert_eq!(claims["aud"], server.resource_url());
    let r = get(
        server.addr(),
        "/resource",
        &[("authorization", &bearer(&other))],
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["client_id"], "bob");
    let audience = token(server.addr(), "bob", "bob-secret", "&audience=urn%3Aorders");
    assert_eq!(
        decode(audience.split('.').nth(1).unwrap())["aud"],
        "urn:orders"
    );
}

#[test]
fn rfc9068_jwt_access_tokens_rs256_by_default() {
    let server = EmbeddedServer::builder()
        .client("alice", "alice-secret", ["read", "write"])
        .client("bob", "bob-secret", ["read"])
        .jwt_access_tokens()
        .start()
        .unwrap();
    assert_eq!(server.jwt_algorithm(), Some(JwtAlgorithm::Rs256));
    check_jwt_access_tokens(&server, "RS256", |key, message, signature| {
        assert_eq!(key["kty"], "RSA");
        let n = b64(&key["n"]);
        let e = b64(&key["e"]);
        // A 2048-bit modulus, unsigned big-endian without a leading zero (RFC 7518 §6.3.1).
        assert_eq!(n.len(), 256, "{key}");
        assert!(n[0] >= 0x80, "{key}");
        assert_eq!(e, [1, 0, 1]);
        assert_eq!(signature.len(), 256);
        RsaPublicKeyComponents { n: &n, e: &e }
            .verify(&RSA_PKCS1_2048_8192_SHA256, message, signature)
            .is_ok()
    });
}

#[test]
fn rfc9068_jwt_access_tokens_eddsa() {
    let server = server_signing_with(TokenFormat::Jwt, JwtAlgorithm::EdDsa);
    assert_eq!(server.jwt_algorithm(), Some(JwtAlgorithm::EdDsa));
    check_jwt_access_tokens(&server, "EdDSA", |key, message, signature| {
        assert_eq!(key["kty"], "OKP");
        assert_eq!(key["crv"], "Ed25519");
        let x: [u8; 32] = b64(&key["x"]).try_into().unwrap();
        let public = ed25519_dalek::VerifyingKey::from_bytes(&x).unwrap();
        let signature: [u8; 64] = signature.try_into().unwrap();
        public
            .verify_strict(message, &ed25519_dalek::Signature::from_bytes(&signature))
            .is_ok()
    });
}

#[test]
fn each_start_makes_a_new_key() {
    let one = server(TokenFormat::Jwt).jwks().unwrap();
    let two = server(TokenFormat::Jwt).jwks().unwrap();
    assert_ne!(one["keys"][0]["n"], two["keys"][0]["n"]);
    assert_ne!(one["keys"][0]["kid"], two["keys"][0]["kid"]);
}

#[test]
fn jwks_is_absent_for_opaque_tokens() {
    let server = server(TokenFormat::Opaque);
    assert_eq!(get(server.addr(), "/jwks.json", &[]).status, 404);
    assert!(server.jwks().is_none());
    assert!(server.jwt_algorithm().is_none());
    assert_eq!(get(server.addr(), "/nowhere", &[]).status, 404);
}

#[test]
fn rfc7662_introspection() {
    for format in [TokenFormat::Opaque, TokenFormat::Jwt] {
        let server = server(format);
        let addr = server.addr();
        let t = token(addr, "alice", "alice-secret", "&scope=read+write");
        let alice = basic("alice", "alice-secret");
        let reply = post_form(
            addr,
            "/introspect",
            &[("authorization", &alice)],
            &format!("token={t}"),
        );
        assert_eq!(reply.status, 200, "{}", reply.text());
        assert_eq!(reply.header("cache-control"), Some("no-store"));
        let info = reply.json();
        assert_eq!(info["active"], true);
        assert_eq!(info["client_id"], "alice");
        assert_eq!(info["scope"], "read write");
        assert_eq!(info["token_type"], "Bearer");
        assert_eq!(info["iss"], server.issuer());
        assert_eq!(
            info["exp"].as_u64().unwrap() - info["iat"].as_u64().unwrap(),
            3600
        );

        // Another registered client (a resource server) may introspect too, with post auth.
        let by_bob = post_form(
            addr,
            "/introspect",
            &[],
            &format!(
                "token={t}&token_type_hint=access_token&client_id=bob&client_secret=bob-secret"
            ),
        );
        assert_eq!(by_bob.json()["active"], true);

        let unknown = post_form(
            addr,
            "/introspect",
            &[("authorization", &alice)],
            "token=nope",
        );
        assert_eq!(unknown.json(), json!({"active": false}));

        let anonymous = post_form(addr, "/introspect", &[], &format!("token={t}"));
        assert_eq!(anonymous.status, 401);
        assert_eq!(anonymous.json()["error"], "invalid_client");
        assert!(anonymous.header("www-authenticate").is_some());

        let missing = post_form(addr, "/introspect", &[("authorization", &alice)], "");
        assert_eq!(missing.status, 400);
        assert_eq!(missing.json()["error"], "invalid_request");
        let twice = post_form(
            addr,
            "/introspect",
            &[("authorization", &alice)],
            "token=a&token=b",
        );
        assert_eq!(twice.status, 400);
        let get_it = get(addr, "/introspect", &[("authorization", &alice)]);
        assert_eq!(get_it.status, 405);
    }
}

#[test]
fn rfc7009_revocation() {
    let server = server(TokenFormat::Opaque);
    let addr = server.addr();
    let alice = basic("alice", "alice-secret");
    let bob = basic("bob", "bob-secret");
    let t = token(addr, "alice", "alice-secret", "");
    let works = |t: &str| get(addr, "/resource", &[("authorization", &bearer(t))]).status;
    assert_eq!(works(&t), 200);

    // Bob cannot revoke Alice's token, and is not told so.
    let reply = post_form(
        addr,
        "/revoke",
        &[("authorization", &bob)],
        &format!("token={t}"),
    );
    assert_eq!(reply.status, 200);
    assert!(reply.body.is_empty());
    assert_eq!(works(&t), 200);

    let reply = post_form(
        addr,
        "/revoke",
        &[("authorization", &alice)],
        &format!("token={t}&token_type_hint=access_token"),
    );
    assert_eq!(reply.status, 200);
    assert_eq!(works(&t), 401);
    let info = post_form(
        addr,
        "/introspect",
        &[("authorization", &alice)],
        &format!("token={t}"),
    );
    assert_eq!(info.json()["active"], false);

    // Unknown tokens: still 200 (RFC 7009 §2.2).
    assert_eq!(
        post_form(
            addr,
            "/revoke",
            &[("authorization", &alice)],
            "token=unknown"
        )
        .status,
        200
    );
    assert_eq!(post_form(addr, "/revoke", &[], "token=unknown").status, 401);
    assert_eq!(
        post_form(addr, "/revoke", &[("authorization", &alice)], "").status,
        400
    );

    // revoke_all, from Rust.
    let t2 = token(addr, "bob", "bob-secret", "");
    assert_eq!(server.active_tokens(), 1);
    assert_eq!(server.revoke_all(), 1);
    assert_eq!(works(&t2), 401);
}

#[test]
fn protected_resource() {
    let server = EmbeddedServer::builder()
        .client("alice", "pw", ["read", "write"])
        .client("bob", "pw", ["write"])
        .resource_scope("read")
        .start()
        .unwrap();
    let addr = server.addr();
    let none = get(addr, "/resource", &[]);
    assert_eq!(none.status, 401);
    assert_eq!(
        none.header("www-authenticate"),
        Some(r#"Bearer realm="resource""#)
    );
    let basic_auth = get(
        addr,
        "/resource",
        &[("authorization", &basic("alice", "pw"))],
    );
    assert_eq!(basic_auth.status, 401);
    assert_eq!(
        basic_auth.header("www-authenticate"),
        Some(r#"Bearer realm="resource""#)
    );
    let malformed = get(addr, "/resource", &[("authorization", "Bearer a b")]);
    assert_eq!(malformed.status, 400);
    assert_eq!(
        malformed.header("www-authenticate"),
        Some(r#"Bearer realm="resource", error="invalid_request""#)
    );
    let unknown = get(
        addr,
        "/resource",
        &[("authorization", "bearer 2YotnFZFEjr1zCsicMWpAA")],
    );
    assert_eq!(unknown.status, 401);
    assert!(
        unknown
            .header("www-authenticate")
            .unwrap()
            .contains(r#"error="invalid_token""#)
    );
    assert_eq!(unknown.json()["error"], "invalid_token");

    let t = token(addr, "alice", "pw", "");
    let ok = get(
        addr,
        "/resource",
        &[("authorization", &format!("BEARER {t}"))],
    );
    assert_eq!(ok.status, 200);
    let body = ok.json();
    assert_eq!(body["client_id"], "alice");
    assert_eq!(body["scopes"], json!(["read", "write"]));
    assert_eq!(body["message"], "Hello, alice!");
    assert!(body["expires_in"].as_u64().unwrap() > 3500);

    let t = token(addr, "bob", "pw", "");
    let forbidden = get(addr, "/resource", &[("authorization", &bearer(&t))]);
    assert_eq!(forbidden.status, 403);
    assert_eq!(
        forbidden.header("www-authenticate"),
        Some(r#"Bearer realm="resource", error="insufficient_scope", scope="read""#)
    );
}

#[test]
fn config_files() {
    let dir = std::env::temp_dir().join(format!("cc-embedded-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let toml_path = dir.join("server.toml");
    std::fs::write(
        &toml_path,
        r#"
token_lifetime = 120
token_format = "jwt"
jwt_algorithm = "EdDSA"
token_path = "/oauth2/token"

[scopes]
"orders.read" = "Read orders"

[[clients]]
id = "billing"
secret = "billing-secret"
scopes = ["orders.read"]
auth_methods = ["client_secret_basic"]
"#,
    )
    .unwrap();
    let server = EmbeddedServer::builder()
        .config_file(&toml_path)
        .unwrap()
        .start()
        .unwrap();
    assert_eq!(
        server.token_url(),
        format!("{}/oauth2/token", server.issuer())
    );
    assert_eq!(server.token_format(), TokenFormat::Jwt);
    assert_eq!(server.jwt_algorithm(), Some(JwtAlgorithm::EdDsa));
    let reply = post_form(
        server.addr(),
        "/oauth2/token",
        &[("authorization", &basic("billing", "billing-secret"))],
        "grant_type=client_credentials",
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.json()["expires_in"], 120);
    assert_eq!(reply.json()["scope"], "orders.read");
    assert_eq!(server.endpoint().scopes()[0].description(), "Read orders");
    let post = post_form(
        server.addr(),
        "/oauth2/token",
        &[],
        "grant_type=client_credentials&client_id=billing&client_secret=billing-secret",
    );
    assert_eq!(post.status, 401, "the client is Basic-only");

    let json_path = dir.join("server.json");
    std::fs::write(
        &json_path,
        r#"{"clients":[{"id":"a","secret":"s","scopes":["x"],"token_lifetime":7,"client_credentials":true}],
            "auth_methods":["client_secret_post"],"accept_json":true}"#,
    )
    .unwrap();
    let server = EmbeddedServer::builder()
        .config_file(&json_path)
        .unwrap()
        .start()
        .unwrap();
    let reply = post_form(
        server.addr(),
        "/token",
        &[],
        "grant_type=client_credentials&client_id=a&client_secret=s",
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.json()["expires_in"], 7);
    assert_eq!(
        reply.json()["scope"],
        "x",
        "client scopes are registered on the fly"
    );

    // Refusals name the problem, never the secret.
    let b = EmbeddedServer::builder;
    assert!(
        matches!(b().toml("colour = 1"), Err(ConfigFileError::Toml(m)) if m.contains("colour"))
    );
    assert!(matches!(
        b().toml("auth_methods = [\"tls_client_auth\"]"),
        Err(ConfigFileError::Invalid(_))
    ));
    assert!(matches!(
        b().toml("token_format = \"paseto\""),
        Err(ConfigFileError::Invalid(_))
    ));
    assert!(matches!(
        b().toml("jwt_algorithm = \"HS256\""),
        Err(ConfigFileError::Invalid(m)) if m.contains("HS256")
    ));
    assert!(matches!(
        b().json("{\"clients\": 3}"),
        Err(ConfigFileError::Json(_))
    ));
    for secret_error in [
        b().toml(
            "[[clients]]\nid = \"a\"\nsecret = \"hunter2-secret\"\nscopes = \"hunter2-secret\"",
        )
        .unwrap_err(),
        b().json(r#"{"clients":[{"id":"a","secret":"hunter2-secret","scopes":"hunter2-secret"}]}"#)
            .unwrap_err(),
    ] {
        let text = format!("{secret_error} {secret_error:?}");
        assert!(!text.contains("hunter2"), "{text}");
    }
    let missing = b().config_file(dir.join("missing.toml")).unwrap_err();
    assert!(matches!(missing, ConfigFileError::Read { .. }));
    std::fs::write(dir.join("server.yaml"), "x: 1").unwrap();
    assert!(matches!(
        b().config_file(dir.join("server.yaml")),
        Err(ConfigFileError::UnknownFormat(_))
    ));
    let zero = b().toml("token_lifetime = 0").unwrap().start().unwrap_err();
    assert!(matches!(zero, StartError::Endpoint(_)), "{zero}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn clients_and_scopes_without_secrets() {
    let builder = EmbeddedServer::builder()
        .toml(
            r#"
            auth_methods = ["client_secret_basic"]
            [scopes]
            "orders.read" = "Read orders"
            [[clients]]
            id = "billing"
            secret = "billing-hunter2"
            scopes = ["orders.read", "orders.write"]
            "#,
        )
        .unwrap()
        .client("zed", "zed-hunter2", ["read"])
        .registered_client(
            RegisteredClient::new("alpha", "alpha-hunter2")
                .auth_methods([ClientAuthMethod::ClientSecretPost]),
        )
        .scope("read", "Read things");
    let listed = builder.clients();
    let ids: Vec<&str> = listed.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, ["billing", "zed", "alpha"], "registration order");
    assert_eq!(listed[0].scopes, ["orders.read", "orders.write"]);
    assert_eq!(
        listed[0].auth_methods,
        [ClientAuthMethod::ClientSecretBasic]
    );
    // Post only, but the endpoint takes Basic only: nothing left.
    assert_eq!(listed[2].auth_methods, []);
    let scopes = [
        ("orders.read", "Read orders"),
        ("read", "Read things"),
        ("orders.write", "orders.write"),
    ]
    .map(|(n, d)| (n.to_owned(), d.to_owned()));
    assert_eq!(builder.scopes(), scopes);
    assert!(!format!("{listed:?} {builder:?}").contains("hunter2"));

    let server = builder.start().unwrap();
    assert_eq!(server.scopes(), scopes);
    let ids: Vec<String> = server.clients().into_iter().map(|c| c.id).collect();
    assert_eq!(ids, ["alpha", "billing", "zed"], "sorted by id");
    server.add_client(RegisteredClient::new("added", "added-hunter2").scopes(["read"]));
    assert!(server.remove_client("zed"));
    let listed = server.clients();
    let ids: Vec<&str> = listed.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, ["added", "alpha", "billing"]);
    assert_eq!(listed[0].scopes, ["read"]);
    assert_eq!(
        listed[0].auth_methods,
        [ClientAuthMethod::ClientSecretBasic]
    );
    assert!(!format!("{listed:?} {server:?}").contains("hunter2"));
}
