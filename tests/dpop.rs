//! DPoP end to end: the blocking client with a DPoP key against the embedded server that
//! requires DPoP-bound tokens and its nonce. The client's one `use_dpop_nonce` retry is the
//! server's one nonce challenge, and the token it gets is bound to its key.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

use client_credentials::AssertionKey;
use client_credentials::dpop::DpopKey;
use client_credentials::embedded::{EmbeddedServer, RegisteredClient, Route};
use client_credentials::ureq::{Client, Config};

fn key() -> DpopKey {
    DpopKey::new(
        AssertionKey::from_pem(include_str!(
            "../crates/client-credentials-core/tests/keys/ec-p256.pem"
        ))
        .unwrap(),
    )
}

#[test]
fn the_client_retries_the_nonce_once_and_gets_a_bound_token() {
    let server = EmbeddedServer::builder()
        .registered_client(
            RegisteredClient::new("app", "pw")
                .scopes(["read"])
                .dpop_bound_access_tokens(true),
        )
        .dpop_require_nonce(true)
        .jwt_access_tokens()
        .start()
        .unwrap();
    let config = Config::builder()
        .token_url(server.token_url())
        .client_id("app")
        .client_secret("pw")
        .dpop(key())
        .build()
        .unwrap();
    let client = Client::new(config);
    let token = client.token().unwrap();
    assert_eq!(token.token_type(), "DPoP");
    let claims = token
        .access_token()
        .expose_secret()
        .split('.')
        .nth(1)
        .map(|p| {
            use base64::Engine as _;
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(p)
                .unwrap()
        })
        .unwrap();
    let claims: serde_json::Value = serde_json::from_slice(&claims).unwrap();
    assert_eq!(claims["cnf"]["jkt"], key().thumbprint());
    let counts = server.counts();
    assert_eq!(counts.get(Route::Token), 2, "one request, one retry");
    assert_eq!(counts.token_nonce_challenges, 1);
    // The token is cached: no more requests, no more challenges.
    assert_eq!(
        client.token().unwrap().access_token().expose_secret(),
        token.access_token().expose_secret()
    );
    assert_eq!(server.counts().get(Route::Token), 2);

    // Without its key, the same client is refused: the server requires DPoP.
    let plain = Config::builder()
        .token_url(server.token_url())
        .client_id("app")
        .client_secret("pw")
        .build()
        .unwrap();
    let error = Client::new(plain).token().unwrap_err();
    assert!(error.to_string().contains("invalid_grant"), "{error}");
}

fn resource_server() -> EmbeddedServer {
    EmbeddedServer::builder()
        .registered_client(
            RegisteredClient::new("app", "pw")
                .scopes(["read"])
                .dpop_bound_access_tokens(true),
        )
        .dpop_resource_nonce(true)
        .start()
        .unwrap()
}

fn dpop_config(server: &EmbeddedServer) -> Config {
    Config::builder()
        .token_url(server.token_url())
        .client_id("app")
        .client_secret("pw")
        .dpop(key())
        .build()
        .unwrap()
}

/// The embedded resource server verifies each proof (signature, `htm`, `htu`, `ath`, the
/// key's binding, a `jti` never seen) and wants its nonce: `send_authorized` answers its one
/// challenge with one retry, and the next call carries the nonce from the start.
#[test]
fn send_authorized_answers_the_resource_nonce_challenge_once() {
    let server = resource_server();
    let client = Client::new(dpop_config(&server));
    for _ in 0..2 {
        let request = http::Request::get(server.resource_url()).body(()).unwrap();
        let response = client.send_authorized(request).unwrap();
        assert_eq!(response.status(), 200);
    }
    let counts = server.counts();
    assert_eq!(counts.resource_nonce_challenges, 1);
    assert_eq!(
        counts.get(Route::Resource),
        3,
        "one retry, then the nonce from the start"
    );
    assert_eq!(counts.get(Route::Token), 1);
}

/// The same through the reqwest middleware.
#[tokio::test]
async fn the_middleware_answers_the_resource_nonce_challenge_once() {
    use client_credentials::reqwest::{
        AuthMiddleware, Client as AsyncClient, reqwest, reqwest_middleware,
    };
    let server = resource_server();
    let tokens = AsyncClient::new(dpop_config(&server)).unwrap();
    let http = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(AuthMiddleware::new(tokens))
        .build();
    for _ in 0..2 {
        let response = http.get(server.resource_url()).send().await.unwrap();
        assert_eq!(response.status(), 200);
    }
    let counts = server.counts();
    assert_eq!(counts.resource_nonce_challenges, 1);
    assert_eq!(counts.get(Route::Resource), 3);
}
