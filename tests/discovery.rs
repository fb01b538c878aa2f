//! Discovery against the embedded authorization server's real metadata endpoint
//! (`/.well-known/oauth-authorization-server` on 127.0.0.1), with both transports: the
//! document names the issuer that `EmbeddedServer::issuer()` returns, and the configuration
//! built from it fetches, introspects and revokes tokens.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

use client_credentials::embedded::{ClientAuthMethod, EmbeddedServer, Fault, Route};
use client_credentials::{AuthMethod, ConfigBuilder, DiscoveryError, WellKnown};

fn server(methods: &[ClientAuthMethod]) -> EmbeddedServer {
    EmbeddedServer::builder()
        .client("billing", "s3cr3t", ["orders.read"])
        .auth_methods(methods.iter().copied())
        .start()
        .unwrap()
}

#[test]
fn blocking_discovery_builds_a_config_that_works() {
    let server = server(&ClientAuthMethod::ALL);
    let metadata = client_credentials::ureq::discover(server.issuer()).unwrap();
    assert_eq!(metadata.issuer, server.issuer());
    assert_eq!(metadata.document, WellKnown::OAuthAuthorizationServer);
    assert_eq!(metadata.token_endpoint, server.token_url().as_str());
    assert_eq!(
        metadata.introspection_endpoint.as_ref().unwrap(),
        server.introspection_url().as_str()
    );
    assert_eq!(
        metadata.revocation_endpoint.as_ref().unwrap(),
        server.revocation_url().as_str()
    );
    assert!(metadata.supports_grant_type("client_credentials"));
    assert_eq!(server.requests(Route::Metadata), 1);

    let config = ConfigBuilder::from_metadata(&metadata)
        .client_id("billing")
        .client_secret("s3cr3t")
        .build()
        .unwrap();
    assert_eq!(config.auth_method(), &AuthMethod::ClientSecretBasic);
    let client = client_credentials::ureq::Client::new(config);
    let token = client.token().unwrap();
    assert!(client.introspect(token.access_token()).unwrap().active);
    client.revoke(token.access_token()).unwrap();
    assert_eq!(server.active_tokens(), 0);
}

#[test]
fn the_auth_method_follows_the_servers_list() {
    let server = server(&[ClientAuthMethod::ClientSecretPost]);
    let metadata = client_credentials::ureq::discover(server.issuer()).unwrap();
    assert_eq!(metadata.auth_methods(), ["client_secret_post"]);
    let config = ConfigBuilder::from_metadata(&metadata)
        .client_id("billing")
        .client_secret("s3cr3t")
        .build()
        .unwrap();
    assert_eq!(config.auth_method(), &AuthMethod::client_secret_post());
    client_credentials::ureq::Client::new(config)
        .token()
        .unwrap();
}

#[test]
fn an_issuer_with_a_trailing_slash_is_another_issuer() {
    let server = server(&ClientAuthMethod::ALL);
    let issuer = format!("{}/", server.issuer());
    let error = client_credentials::ureq::discover(&issuer).unwrap_err();
    let client_credentials::ureq::Error::Discovery(error) = error else {
        panic!("{error:?}")
    };
    assert!(
        matches!(*error, DiscoveryError::IssuerMismatch { ref found, .. } if found == server.issuer()),
        "{error:?}"
    );
}

#[test]
fn a_failing_metadata_endpoint_is_retryable() {
    let server = server(&ClientAuthMethod::ALL);
    server.inject(Fault::status(503).on(Route::Metadata).times(1));
    let error = client_credentials::ureq::discover(server.issuer()).unwrap_err();
    assert!(error.is_retryable(), "{error:?}");
    assert!(
        error
            .to_string()
            .contains("metadata endpoint failed (HTTP 503)"),
        "{error}"
    );
    client_credentials::ureq::discover(server.issuer()).unwrap();
}

#[tokio::test]
async fn async_discovery_builds_a_config_that_works() {
    let server = EmbeddedServer::builder()
        .client("billing", "s3cr3t", ["orders.read"])
        .start_async()
        .await
        .unwrap();
    let metadata = client_credentials::reqwest::discover(server.issuer())
        .await
        .unwrap();
    assert_eq!(metadata.issuer, server.issuer());
    let config = ConfigBuilder::from_metadata(&metadata)
        .client_id("billing")
        .client_secret("s3cr3t")
        .build()
        .unwrap();
    let client = client_credentials::reqwest::Client::new(config).unwrap();
    let token = client.token().await.unwrap();
    assert!(
        client
            .introspect(token.access_token())
            .await
            .unwrap()
            .active
    );
}
