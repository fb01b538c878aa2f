//! DPoP (RFC 9449) over real HTTP on 127.0.0.1: the client's proofs get DPoP-bound tokens
//! (`token_type: DPoP`, `cnf.jkt` in the JWT and in introspection), the demo resource takes
//! them only with a fresh proof of the same key, and server nonces are demanded and counted.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests: a panic is a failure report.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use client_credentials_core::dpop::{DpopKey, ProofInput};
use client_credentials_core::server::RegisteredClient;
use client_credentials_core::{AccessToken, AssertionKey, Config};
use client_credentials_server::{EmbeddedServer, Route};
use common::{Reply, get, post_form, send_http};
use http::Method;
use serde_json::Value;

const BODY: &str = "grant_type=client_credentials&client_id=app&client_secret=pw";

fn ec() -> DpopKey {
    DpopKey::new(
        AssertionKey::from_pem(include_str!(
            "../../client-credentials-core/tests/keys/ec-p256.pem"
        ))
        .unwrap(),
    )
}

fn ed() -> DpopKey {
    DpopKey::new(
        AssertionKey::from_pem(include_str!(
            "../../client-credentials-core/tests/keys/ed25519.pem"
        ))
        .unwrap(),
    )
}

/// A fresh proof (a new `jti` each time) made now.
fn proof(
    key: &DpopKey,
    method: Method,
    url: &str,
    nonce: Option<&str>,
    token: Option<&str>,
) -> String {
    static JTI: AtomicU64 = AtomicU64::new(1);
    let token = token.map(AccessToken::new);
    let uri = url.parse().unwrap();
    key.proof(&ProofInput {
        method: &method,
        uri: &uri,
        at: SystemTime::now(),
        nonce: u128::from(JTI.fetch_add(1, Ordering::SeqCst)),
        server_nonce: nonce,
        access_token: token.as_ref(),
    })
    .unwrap()
    .expose_secret()
    .to_owned()
}

fn server(dpop_bound: bool) -> EmbeddedServer {
    EmbeddedServer::builder()
        .scope("read", "Read")
        .registered_client(
            RegisteredClient::new("app", "pw")
                .scopes(["read"])
                .dpop_bound_access_tokens(dpop_bound),
        )
        .jwt_access_tokens()
        .start()
        .unwrap()
}

fn token_with_proof(server: &EmbeddedServer, proof: &str) -> Reply {
    post_form(server.addr(), "/token", &[("dpop", proof)], BODY)
}

fn resource(server: &EmbeddedServer, authorization: &str, proof: Option<&str>) -> Reply {
    let mut headers = vec![("authorization", authorization)];
    if let Some(proof) = proof {
        headers.push(("dpop", proof));
    }
    get(server.addr(), "/resource", &headers)
}

fn jwt_claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

/// The `WWW-Authenticate` of a refusal: a DPoP challenge with this error.
fn assert_dpop_refusal(reply: &Reply, error: &str) {
    assert_eq!(reply.status, 401, "{}", reply.text());
    let challenge = reply.header("www-authenticate").unwrap();
    assert!(
        challenge.starts_with("DPoP ") && challenge.contains(&format!("error=\"{error}\"")),
        "{challenge}"
    );
    assert!(challenge.contains(r#"algs="ES256 EdDSA""#), "{challenge}");
}

#[test]
fn a_proof_gets_a_bound_token_that_the_resource_takes_only_with_a_proof_of_the_same_key() {
    let server = server(true);
    let key = ec();
    // The client's own token request, proof included (`Config::dpop`).
    let config = Config::builder()
        .token_url(server.token_url())
        .client_id("app")
        .client_secret("pw")
        .dpop(ec())
        .build()
        .unwrap();
    let request = config.default_request().to_http_at(SystemTime::now(), 77);
    assert!(request.headers().contains_key("dpop"));
    let reply = send_http(server.addr(), &request);
    assert_eq!(reply.status, 200, "{}", reply.text());
    let body = reply.json();
    assert_eq!(body["token_type"], "DPoP");
    let token = body["access_token"].as_str().unwrap().to_owned();
    assert_eq!(jwt_claims(&token)["cnf"]["jkt"], key.thumbprint());

    // Introspection tells the binding too.
    let reply = post_form(
        server.addr(),
        "/introspect",
        &[],
        &format!("token={token}&client_id=app&client_secret=pw"),
    );
    let body = reply.json();
    assert_eq!(body["active"], true);
    assert_eq!(body["token_type"], "DPoP");
    assert_eq!(body["cnf"]["jkt"], key.thumbprint());

    // The resource, with the token under the DPoP scheme and a proof for the request.
    let url = server.resource_url();
    let authorization = format!("DPoP {token}");
    let good = proof(&key, Method::GET, &url, None, Some(&token));
    let reply = resource(&server, &authorization, Some(&good));
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.json()["client_id"], "app");

    // The same proof again: a replay.
    let reply = resource(&server, &authorization, Some(&good));
    assert_dpop_refusal(&reply, "invalid_dpop_proof");
    // No proof.
    let reply = resource(&server, &authorization, None);
    assert_dpop_refusal(&reply, "invalid_dpop_proof");
    // As a bearer token, with or without a proof.
    let reply = resource(&server, &format!("Bearer {token}"), None);
    assert_dpop_refusal(&reply, "invalid_token");
    let fresh = proof(&key, Method::GET, &url, None, Some(&token));
    let reply = resource(&server, &format!("Bearer {token}"), Some(&fresh));
    assert_dpop_refusal(&reply, "invalid_token");
    // A valid proof of another key: the token is not bound to it.
    let other = proof(&ed(), Method::GET, &url, None, Some(&token));
    let reply = resource(&server, &authorization, Some(&other));
    assert_dpop_refusal(&reply, "invalid_token");
    // A proof of the right key for another request: a token request, or without `ath`.
    let for_token = proof(&key, Method::POST, &server.token_url(), None, Some(&token));
    let reply = resource(&server, &authorization, Some(&for_token));
    assert_dpop_refusal(&reply, "invalid_dpop_proof");
    let without_ath = proof(&key, Method::GET, &url, None, None);
    let reply = resource(&server, &authorization, Some(&without_ath));
    assert_dpop_refusal(&reply, "invalid_dpop_proof");
    // And a fresh proof still works: nothing above spoiled the token.
    let fresh = proof(&key, Method::GET, &url, None, Some(&token));
    assert_eq!(resource(&server, &authorization, Some(&fresh)).status, 200);
    assert_eq!(server.counts().resource_nonce_challenges, 0);
}

#[test]
fn the_token_endpoint_refuses_what_oidc_provider_refuses() {
    let server = server(true);
    let key = ec();
    // A client that requires DPoP, without a proof.
    let reply = post_form(server.addr(), "/token", &[], BODY);
    assert_eq!(reply.status, 400);
    assert_eq!(reply.json()["error"], "invalid_grant");
    // A proof for another URI, a stale one, a replayed one.
    let elsewhere = proof(&key, Method::POST, "http://127.0.0.1:1/token", None, None);
    let reply = token_with_proof(&server, &elsewhere);
    assert_eq!(reply.status, 400);
    assert_eq!(reply.json()["error"], "invalid_dpop_proof");
    let good = proof(&key, Method::POST, &server.token_url(), None, None);
    assert_eq!(token_with_proof(&server, &good).status, 200);
    let reply = token_with_proof(&server, &good);
    assert_eq!(reply.status, 400);
    assert_eq!(reply.json()["error"], "invalid_dpop_proof");
    // Two DPoP headers.
    let a = proof(&key, Method::POST, &server.token_url(), None, None);
    let b = proof(&key, Method::POST, &server.token_url(), None, None);
    let reply = post_form(server.addr(), "/token", &[("dpop", &a), ("dpop", &b)], BODY);
    assert_eq!(reply.status, 400);
    assert_eq!(reply.json()["error"], "invalid_dpop_proof");

    // A client that does not require DPoP gets a bearer token without a proof, which the
    // resource takes as a bearer token.
    let server = self::server(false);
    let reply = post_form(server.addr(), "/token", &[], BODY);
    assert_eq!(reply.status, 200);
    let body = reply.json();
    assert_eq!(body["token_type"], "Bearer");
    let token = body["access_token"].as_str().unwrap();
    assert!(jwt_claims(token).get("cnf").is_none());
    assert_eq!(
        resource(&server, &format!("Bearer {token}"), None).status,
        200
    );
}

#[test]
fn a_nonce_round_trip_at_the_token_endpoint() {
    let server = EmbeddedServer::builder()
        .registered_client(RegisteredClient::new("app", "pw").dpop_bound_access_tokens(true))
        .dpop_require_nonce(true)
        .start()
        .unwrap();
    let key = ec();
    let first = proof(&key, Method::POST, &server.token_url(), None, None);
    let reply = token_with_proof(&server, &first);
    assert_eq!(reply.status, 400, "{}", reply.text());
    assert_eq!(reply.json()["error"], "use_dpop_nonce");
    let nonce = reply.header("dpop-nonce").unwrap().to_owned();
    assert_eq!(nonce, server.dpop_nonce());
    // A wrong nonce is answered the same way.
    let wrong = proof(&key, Method::POST, &server.token_url(), Some("stale"), None);
    let reply = token_with_proof(&server, &wrong);
    assert_eq!(reply.json()["error"], "use_dpop_nonce");
    assert_eq!(reply.header("dpop-nonce"), Some(nonce.as_str()));
    // With the nonce: an (opaque) DPoP token.
    let retry = proof(&key, Method::POST, &server.token_url(), Some(&nonce), None);
    let reply = token_with_proof(&server, &retry);
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.json()["token_type"], "DPoP");
    let counts = server.counts();
    assert_eq!((counts.token, counts.token_nonce_challenges), (3, 2));
}

#[test]
fn the_resource_demands_its_nonce_once_and_counts_it() {
    let server = EmbeddedServer::builder()
        .registered_client(RegisteredClient::new("app", "pw"))
        .dpop_resource_nonce(true)
        .start()
        .unwrap();
    let key = ec();
    // Nonces at the resource only: the token endpoint takes a proof without one.
    let reply = token_with_proof(
        &server,
        &proof(&key, Method::POST, &server.token_url(), None, None),
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
    let token = reply.json()["access_token"].as_str().unwrap().to_owned();
    let authorization = format!("DPoP {token}");
    let url = server.resource_url();
    server.reset_counts();

    let first = proof(&key, Method::GET, &url, None, Some(&token));
    let reply = resource(&server, &authorization, Some(&first));
    assert_dpop_refusal(&reply, "use_dpop_nonce");
    let nonce = reply.header("dpop-nonce").unwrap().to_owned();
    // Exactly one retry, with the nonce.
    let retry = proof(&key, Method::GET, &url, Some(&nonce), Some(&token));
    let reply = resource(&server, &authorization, Some(&retry));
    assert_eq!(reply.status, 200, "{}", reply.text());
    let counts = server.counts();
    assert_eq!(counts.get(Route::Resource), 2);
    assert_eq!(counts.resource_nonce_challenges, 1);
    assert_eq!(counts.token_nonce_challenges, 0);
}

#[test]
fn the_configuration_file_sets_the_dpop_knobs() {
    let server = EmbeddedServer::builder()
        .toml(
            r#"
            dpop_require_nonce = true

            [[clients]]
            id = "app"
            secret = "pw"
            dpop_bound_access_tokens = true
            "#,
        )
        .unwrap()
        .start()
        .unwrap();
    let reply = post_form(server.addr(), "/token", &[], BODY);
    assert_eq!(reply.json()["error"], "invalid_grant");
    let first = proof(&ec(), Method::POST, &server.token_url(), None, None);
    let reply = token_with_proof(&server, &first);
    assert_eq!(reply.json()["error"], "use_dpop_nonce");
    assert!(
        EmbeddedServer::builder()
            .toml("dpop_require_nonce = \"yes\"")
            .is_err()
    );
    // The metadata names the proof algorithms (RFC 9449 §5.1).
    let reply = get(
        server.addr(),
        "/.well-known/oauth-authorization-server",
        &[],
    );
    assert_eq!(
        reply.json()["dpop_signing_alg_values_supported"],
        serde_json::json!(["ES256", "EdDSA"])
    );
}
