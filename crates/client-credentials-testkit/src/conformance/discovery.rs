//! Discovery (RFC 8414, with the OpenID Connect fallback) against servers on 127.0.0.1:
//! what is sent, which document is asked when, the configuration built from the metadata,
//! and how each failure comes back. Written once, run against every adapter's `discover`.

use serde_json::json;

use client_credentials_core::{
    AuthMethod, ConfigBuilder, DiscoveryError, ResponseProblem, TokenError, TransportErrorKind,
    WellKnown,
};

use super::{Harness, HarnessError, HarnessOptions};
use crate::{Metadata, Reply, Router, TestServer, TokenEndpoint, refused_url};

const ID: &str = "my-service";
const SECRET: &str = "s3cr3t-Value";
const OAUTH: &str = "/.well-known/oauth-authorization-server";
const OPENID: &str = "/.well-known/openid-configuration";

fn discovery_error(error: &HarnessError) -> &DiscoveryError {
    error
        .discovery_error()
        .unwrap_or_else(|| panic!("expected a discovery error, got {error:?}"))
}

/// The RFC 8414 document is asked first, with a plain GET; the configuration built from it
/// takes its endpoints and auth method, and fetches a token.
pub fn discovery_reads_the_metadata_and_the_config_fetches_a_token<H: Harness>() {
    let server = TestServer::start(
        Router::new()
            .route(
                OAUTH,
                Metadata::new("")
                    .member("revocation_endpoint", json!("{base}/revoke"))
                    .member(
                        "token_endpoint_auth_methods_supported",
                        json!(["private_key_jwt", "client_secret_post"]),
                    )
                    .member("x-vendor", json!(1)),
            )
            .route("/token", TokenEndpoint::new().client(ID, SECRET))
            .route("/revoke", Reply::new(200)),
    );
    let issuer = server.url("");
    let metadata = H::discover(&issuer).unwrap();
    assert_eq!(metadata.document, WellKnown::OAuthAuthorizationServer);
    assert_eq!(metadata.issuer, issuer);
    assert_eq!(metadata.token_endpoint, server.url("/token").as_str());
    assert_eq!(metadata.extra["x-vendor"], json!(1));

    let sent = server.last_request().unwrap();
    assert_eq!(sent.method, "GET");
    assert_eq!(sent.path, OAUTH);
    assert_eq!(sent.header("accept"), Some("application/json"));
    assert_eq!(sent.header("authorization"), None);
    assert!(sent.body.is_empty());
    assert_eq!(server.request_count(), 1);

    let config = ConfigBuilder::from_metadata(&metadata)
        .client_id(ID)
        .client_secret(SECRET)
        .build()
        .unwrap();
    assert_eq!(config.auth_method(), &AuthMethod::client_secret_post());
    assert_eq!(
        config.revocation_url().unwrap(),
        server.url("/revoke").as_str()
    );
    let client = H::build(config, &HarnessOptions::new().seed(5));
    let token = client.token().unwrap();
    let fetch = server.last_request().unwrap();
    assert_eq!(fetch.path, "/token");
    assert_eq!(fetch.param("client_secret").as_deref(), Some(SECRET));
    client.revoke(token.access_token()).unwrap();
}

/// A 404 on the RFC 8414 document (inserted before the issuer's path) asks the OpenID
/// Connect document (appended to it); its metadata is checked the same way.
pub fn a_missing_rfc8414_document_falls_back_to_openid_configuration<H: Harness>() {
    let server = TestServer::start(
        Router::new()
            .route(&format!("/tenant{OPENID}"), Metadata::new("/tenant"))
            .route("/token", TokenEndpoint::new().client(ID, SECRET)),
    );
    let issuer = server.url("/tenant");
    let metadata = H::discover(&issuer).unwrap();
    assert_eq!(metadata.document, WellKnown::OpenIdConfiguration);
    assert_eq!(metadata.issuer, issuer);
    let paths: Vec<String> = server.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(
        paths,
        [format!("{OAUTH}/tenant"), format!("/tenant{OPENID}")]
    );

    let config = ConfigBuilder::from_metadata(&metadata)
        .client_id(ID)
        .client_secret(SECRET)
        .build()
        .unwrap();
    assert_eq!(config.auth_method(), &AuthMethod::ClientSecretBasic);
    let client = H::build(config, &HarnessOptions::new().seed(5));
    client.token().unwrap();
    assert_eq!(server.count("/token"), 1);
}

/// Each failure is typed, says whether to retry, and sends nothing more than it must: no
/// fallback after anything but a 404, no request at all for an invalid issuer, no redirect
/// followed.
pub fn discovery_failures_are_typed<H: Harness>() {
    // A document for another issuer: its endpoints are not trusted.
    let server = TestServer::start(Router::new().route(
        OAUTH,
        Metadata::new("").member("issuer", json!("https://evil.example")),
    ));
    let error = H::discover(&server.url("")).unwrap_err();
    assert!(
        matches!(discovery_error(&error), DiscoveryError::IssuerMismatch { found, .. } if found == "https://evil.example"),
        "{error:?}"
    );
    assert!(!error.is_retryable());
    assert_eq!(server.request_count(), 1);

    // An insecure endpoint in the document.
    let server = TestServer::start(Router::new().route(
        OAUTH,
        Metadata::new("").member("token_endpoint", json!("http://as.example.com/token")),
    ));
    let error = H::discover(&server.url("")).unwrap_err();
    assert!(
        matches!(discovery_error(&error), DiscoveryError::InsecureEndpoint { member, .. } if member == "token_endpoint"),
        "{error:?}"
    );

    // Neither document: both asked, then NotFound.
    let server = TestServer::start(Router::new());
    let error = H::discover(&server.url("/realm")).unwrap_err();
    assert!(matches!(
        discovery_error(&error),
        DiscoveryError::NotFound { .. }
    ));
    assert_eq!(server.request_count(), 2);

    // A server error: retryable, and no fallback.
    let server = TestServer::start(Router::new().route(OAUTH, Reply::new(503)));
    let error = H::discover(&server.url("")).unwrap_err();
    assert!(error.is_retryable(), "{error:?}");
    assert!(matches!(
        error.token_error(),
        Some(TokenError::Server { .. })
    ));
    assert_eq!(server.request_count(), 1);

    // A redirect is not followed: the target gets nothing.
    let target = TestServer::start(Router::new().route(OAUTH, Metadata::new("")));
    let server =
        TestServer::start(Router::new().route(OAUTH, Reply::redirect(302, &target.url(OAUTH))));
    let error = H::discover(&server.url("")).unwrap_err();
    assert!(matches!(
        error.token_error(),
        Some(TokenError::InvalidResponse {
            problem: ResponseProblem::UnexpectedStatus,
            ..
        })
    ));
    assert_eq!(target.request_count(), 0);

    // A body over the cap, and one that is not JSON.
    let server = TestServer::start(Router::new().route(OAUTH, Reply::large(2 * 1024 * 1024)));
    let error = H::discover(&server.url("")).unwrap_err();
    assert!(
        matches!(error.token_error(), Some(TokenError::TooLarge { .. })),
        "{error:?}"
    );
    let server = TestServer::start(Router::new().route(OAUTH, Reply::html(200, "<h1>hi</h1>")));
    let error = H::discover(&server.url("")).unwrap_err();
    assert!(matches!(
        error.token_error(),
        Some(TokenError::InvalidResponse {
            problem: ResponseProblem::Unparseable,
            ..
        })
    ));

    // Nobody listening: a retryable transport error.
    let error = H::discover(&refused_url("")).unwrap_err();
    assert!(error.is_retryable());
    assert!(matches!(
        error.token_error(),
        Some(TokenError::Transport(e)) if e.kind() == TransportErrorKind::Connect
    ));

    // An issuer that is not one: nothing is sent.
    for issuer in [
        "http://as.example.com",
        "https://as.example.com/?a=b",
        "nope",
    ] {
        let error = H::discover(issuer).unwrap_err();
        assert!(
            matches!(
                discovery_error(&error),
                DiscoveryError::InvalidIssuer(_) | DiscoveryError::InsecureIssuer(_)
            ),
            "{issuer}: {error:?}"
        );
    }
}
