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
