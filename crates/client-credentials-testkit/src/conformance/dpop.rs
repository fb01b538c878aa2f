//! DPoP on resource requests (RFC 9449 §7, §9), against servers on 127.0.0.1: a DPoP-bound
//! token goes as `Authorization: DPoP` with a fresh proof of each request, and a resource
//! server's `use_dpop_nonce` challenge gets exactly one retry, with the token kept and the
//! nonce remembered for the origin.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use client_credentials_core::dpop::DpopKey;
use client_credentials_core::{AssertionKey, Config};
use serde_json::Value;
use sha2::Digest as _;

use super::{Harness, HarnessOptions, Outgoing};
use crate::{Reply, Request, Router, TestServer, TokenEndpoint};

const KEY: &str = include_str!("../../../client-credentials-core/tests/keys/ec-p256.pem");

/// The claims of a request's DPoP proof (its signature is the server half's business), or
/// `None` without a readable one.
#[must_use]
pub fn proof_claims(request: &Request) -> Option<Value> {
    let payload = request.header("dpop")?.split('.').nth(1)?;
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()
}

/// A resource server at `/api` that takes a DPoP token with a proof carrying its latest
/// nonce (`n-1`, `n-2`, …): a proof without it gets `401` with `WWW-Authenticate: DPoP
/// error="use_dpop_nonce"` and a new `DPoP-Nonce`. With `rotate`, every proof gets a
/// challenge. A request without a DPoP token and a proof gets 400.
#[must_use]
pub fn nonce_server(rotate: bool) -> TestServer {
    let challenges = AtomicUsize::new(0);
    TestServer::start(Router::new().route("/api", move |r: &Request| {
        let bound = r
            .header("authorization")
            .is_some_and(|a| a.starts_with("DPoP "));
        let Some(claims) = proof_claims(r).filter(|_| bound) else {
            return Reply::new(400);
        };
        let issued = challenges.load(Ordering::SeqCst);
        let wanted = (issued > 0).then(|| format!("n-{issued}"));
        if !rotate && wanted.as_deref().is_some_and(|n| claims["nonce"] == n) {
            return Reply::text(200, "text/plain", "ok");
        }
        let next = challenges.fetch_add(1, Ordering::SeqCst) + 1;
        Reply::new(401)
            .header(
                "www-authenticate",
                r#"DPoP error="use_dpop_nonce", error_description="Resource server requires nonce in DPoP proof""#,
            )
            .header("dpop-nonce", &format!("n-{next}"))
    }))
}

/// A token endpoint at `/token` that issues DPoP tokens (`token-1`, …; it checks no proof).
#[must_use]
pub fn dpop_token_server() -> TestServer {
    TestServer::start(Router::new().route(
        "/token",
        TokenEndpoint::new().extra("token_type", Value::from("DPoP")),
    ))
}

/// The suite's client `my-service` of `token_server` with an ES256 DPoP key.
#[must_use]
pub fn dpop_config(token_server: &TestServer) -> Config {
    let key = AssertionKey::from_pem(KEY).unwrap();
    Config::builder()
        .token_url(token_server.url("/token"))
        .client_id("my-service")
        .client_secret("s3cr3t")
        .dpop(DpopKey::new(key))
        .build()
        .unwrap()
}

fn dpop_client<H: Harness>(token_server: &TestServer) -> H {
    H::build(
        dpop_config(token_server),
        &HarnessOptions::new()
            .timeout(Duration::from_secs(2))
            .seed(11),
    )
}

/// A resource request carries `Authorization: DPoP <token>` and a proof of that request
/// (`htm`, `htu` without the query, `ath`); the server's nonce challenge is answered once,
/// with the same token and a new proof carrying the nonce, which later requests to the
/// origin carry from the start; nothing is invalidated, and no token is fetched again.
pub fn a_resource_nonce_challenge_is_retried_once_with_the_same_token<H: Harness>() {
    let token_server = dpop_token_server();
    let api = nonce_server(false);
    let tokens = dpop_client::<H>(&token_server);
    let url = api.url("/api?page=2");
    let response = tokens
        .send_authorized(Outgoing::new(http::Method::PUT, &url).body("again"))
        .unwrap();
    assert_eq!(response.status, 200);
    let seen = api.requests();
    assert_eq!(seen.len(), 2, "one retry");
    let (first, second) = (
        proof_claims(&seen[0]).unwrap(),
        proof_claims(&seen[1]).unwrap(),
    );
    for (request, claims) in seen.iter().zip([&first, &second]) {
        assert_eq!(request.header("authorization"), Some("DPoP token-1"));
        assert_eq!(claims["htm"], "PUT");
        assert_eq!(claims["htu"], api.url("/api"));
        assert_eq!(
            claims["ath"],
            URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(b"token-1"))
        );
        assert_eq!(request.body_text(), "again");
    }
    assert!(first.get("nonce").is_none());
    assert_eq!(second["nonce"], "n-1");
    assert_ne!(first["jti"], second["jti"], "a proof is never reused");
    assert_eq!(token_server.count("/token"), 1, "the token was kept");
    assert_eq!(tokens.counters().invalidations, 0);

    // The origin's nonce is remembered: the next request needs no challenge.
    let response = tokens.send_authorized(Outgoing::get(&url)).unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(api.request_count(), 3);
    assert_eq!(proof_claims(&api.requests()[2]).unwrap()["nonce"], "n-1");

    // `authorize` sets both headers too.
    let mut request = http::Request::get(api.url("/api")).body(()).unwrap();
    tokens.authorize(&mut request).unwrap();
    assert_eq!(request.headers()["authorization"], "DPoP token-1");
    assert!(request.headers()["dpop"].is_sensitive());
}

/// A server that asks for a new nonce every time gets exactly one retry, and its last
/// answer is the caller's; a body that cannot be replayed is never retried.
pub fn a_nonce_challenge_is_retried_at_most_once<H: Harness>() {
    let token_server = dpop_token_server();
    let tokens = dpop_client::<H>(&token_server);
    let api = nonce_server(true);
    let response = tokens
        .send_authorized(Outgoing::get(&api.url("/api")))
        .unwrap();
    assert_eq!(response.status, 401);
    assert_eq!(response.header("dpop-nonce"), Some("n-2"));
    assert_eq!(api.request_count(), 2, "exactly one retry");

    let api = nonce_server(true);
    let response = tokens
        .send_authorized(
            Outgoing::new(http::Method::POST, &api.url("/api"))
                .body("x")
                .streaming(),
        )
        .unwrap();
    assert_eq!(response.status, 401);
    assert_eq!(api.request_count(), 1, "a streaming body is sent once");
    assert_eq!(token_server.count("/token"), 1);
}
