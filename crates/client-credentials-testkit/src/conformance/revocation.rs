//! `revoke` (RFC 7009) and `introspect` (RFC 7662) against a real server on 127.0.0.1: what
//! is sent, how each class of answer comes back, and the cache after a revocation.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use client_credentials_core::{
    AccessToken, AuthMethod, Config, ConfigError, ErrorCode, ResponseProblem, TokenError,
    TransportErrorKind,
};

use super::{Harness, HarnessError, HarnessErrorKind, HarnessOptions};
use crate::{Reply, RetryAfter, Router, TestServer, TokenEndpoint, refused_url};

const ID: &str = "my-service";
const SECRET: &str = "s3cr3t-Value";

/// A token endpoint at `/token`, `revoke` at `/revoke` and `introspect` at `/introspect`.
fn start(revoke: impl crate::Handler, introspect: Reply) -> TestServer {
    TestServer::start(
        Router::new()
            .route("/token", TokenEndpoint::new().client(ID, SECRET))
            .route("/revoke", revoke)
            .route("/introspect", introspect),
    )
}

fn client<H: Harness>(server: &TestServer, method: AuthMethod) -> H {
    let config = Config::builder()
        .token_url(server.url("/token"))
        .revocation_url(server.url("/revoke"))
        .introspection_url(server.url("/introspect"))
        .client_id(ID)
        .client_secret(SECRET)
        .auth_method(method)
        .build()
        .unwrap();
    H::build(config, &HarnessOptions::new().seed(3))
}

fn token_error<T: std::fmt::Debug>(result: Result<T, HarnessError>) -> TokenError {
    result.unwrap_err().into_token_error()
}

/// What a revocation sends with each client authentication, and the cache after it.
pub fn revoke_sends_the_token_and_drops_it_from_the_cache<H: Harness>() {
    for method in [
        AuthMethod::ClientSecretBasic,
        AuthMethod::client_secret_post(),
    ] {
        let server = start(Reply::new(200), Reply::new(500));
        let client = client::<H>(&server, method.clone());
        let first = client.token().unwrap();
        assert_eq!(first.access_token().expose_secret(), "token-1");
        client.revoke(first.access_token()).unwrap();

        let sent = server.last_request().unwrap();
        assert_eq!(sent.method, "POST");
        assert_eq!(sent.path, "/revoke");
        assert_eq!(
            sent.header("content-type"),
            Some("application/x-www-form-urlencoded")
        );
        assert_eq!(sent.param("token").as_deref(), Some("token-1"));
        assert_eq!(
            sent.param("token_type_hint").as_deref(),
            Some("access_token")
        );
        if method == AuthMethod::ClientSecretBasic {
            assert_eq!(sent.basic_auth(), Some((ID.into(), SECRET.into())));
            assert_eq!(sent.param("client_secret"), None);
        } else {
            assert_eq!(sent.basic_auth(), None);
            assert_eq!(sent.param("client_secret").as_deref(), Some(SECRET));
        }

        // The revoked token is gone: the next call fetches a new one.
        let second = client.token().unwrap();
        assert_eq!(second.access_token().expose_secret(), "token-2");
        assert_eq!(server.count("/token"), 2);
        assert_eq!(client.counters().invalidations, 1);

        // Revoking a token the cache does not hold leaves the cached one alone.
        client.revoke(&AccessToken::new("someone-elses")).unwrap();
        assert_eq!(
            client.token().unwrap().access_token(),
            second.access_token()
        );
        assert_eq!(server.count("/token"), 2);
        assert_eq!(server.count("/revoke"), 2);
    }
}

/// A refused revocation is a typed rejection, and the token is dropped all the same.
pub fn a_failed_revocation_still_drops_the_token<H: Harness>() {
    let server = start(
        Reply::oauth_error(400, "unsupported_token_type", Some("not revocable here")),
        Reply::new(500),
    );
    let client = client::<H>(&server, AuthMethod::ClientSecretBasic);
    let first = client.token().unwrap();
    let error = token_error(client.revoke(first.access_token()));
    match &error {
        TokenError::Rejected { status, error, .. } => {
            assert_eq!(status.as_u16(), 400);
            assert_eq!(
                error.code,
                ErrorCode::Unknown("unsupported_token_type".into())
            );
            assert_eq!(error.description.as_deref(), Some("not revocable here"));
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
    assert!(!error.is_retryable());
    assert_ne!(client.token().unwrap().access_token(), first.access_token());
}

/// How each class of answer of a revocation endpoint comes back.
pub fn revocation_error_shapes<H: Harness>() {
    // The client is refused.
    let server = start(
        Reply::oauth_error(401, "invalid_client", None),
        Reply::new(500),
    );
    let error = token_error(
        client::<H>(&server, AuthMethod::ClientSecretBasic).revoke(&AccessToken::new("t")),
    );
    assert_eq!(error.oauth_code(), Some(&ErrorCode::InvalidClient));
    assert_eq!(error.status().map(|s| s.as_u16()), Some(401));

    // RFC 7009 §2.2.1: 503 with Retry-After.
    let server = start(
        Reply::new(503).header("retry-after", &RetryAfter::Seconds(7).header_value()),
        Reply::new(500),
    );
    let error = token_error(
        client::<H>(&server, AuthMethod::ClientSecretBasic).revoke(&AccessToken::new("t")),
    );
    assert!(matches!(error, TokenError::Server { .. }), "{error:?}");
    assert!(error.is_retryable());
    assert_eq!(error.retry_after(), Some(Duration::from_secs(7)));

    // A gateway's HTML page.
    let server = start(
        Reply::html(502, "<html><body>Bad gateway</body></html>"),
        Reply::new(500),
    );
    let error = token_error(
        client::<H>(&server, AuthMethod::ClientSecretBasic).revoke(&AccessToken::new("t")),
    );
    assert!(matches!(error, TokenError::Server { .. }), "{error:?}");

    // A body over the cap, through the same capped read as token fetches.
    let server = start(Reply::large(10 * 1024 * 1024), Reply::new(500));
    let error = token_error(
        client::<H>(&server, AuthMethod::ClientSecretBasic).revoke(&AccessToken::new("t")),
    );
    assert!(matches!(error, TokenError::TooLarge { .. }), "{error:?}");

    // A redirect is not followed, and its target gets nothing.
    let target = TestServer::start(Reply::new(200));
    let server = start(
        Reply::redirect(307, &target.url("/revoke")),
        Reply::new(500),
    );
    let error = token_error(
        client::<H>(&server, AuthMethod::ClientSecretBasic).revoke(&AccessToken::new("t")),
    );
    assert!(
        matches!(
            error,
            TokenError::InvalidResponse {
                problem: ResponseProblem::UnexpectedStatus,
                ..
            }
        ),
        "{error:?}"
    );
    assert!(!target.wait_for_requests(1, Duration::from_millis(100)));
    assert_eq!(target.connections(), 0);

    // Nothing listens.
    let config = Config::builder()
        .token_url(refused_url("/token"))
        .revocation_url(refused_url("/revoke"))
        .client_id(ID)
        .client_secret(SECRET)
        .build()
        .unwrap();
    let error =
        token_error(H::build(config, &HarnessOptions::new()).revoke(&AccessToken::new("t")));
    match &error {
        TokenError::Transport(t) => assert_eq!(t.kind(), TransportErrorKind::Connect),
        other => panic!("expected a transport error, got {other:?}"),
    }
}

/// A revocation endpoint that never answers runs into the timeout.
pub fn a_stalled_revocation_endpoint_times_out<H: Harness>() {
    let server = start(
        Reply::new(200).delay(Duration::from_secs(20)),
        Reply::new(500),
    );
    let config = Config::builder()
        .token_url(server.url("/token"))
        .revocation_url(server.url("/revoke"))
        .client_id(ID)
        .client_secret(SECRET)
        .build()
        .unwrap();
    let client = H::build(
        config,
        &HarnessOptions::new().timeout(Duration::from_millis(300)),
    );
    let started = std::time::Instant::now();
    let error = token_error(client.revoke(&AccessToken::new("t")));
    match &error {
        TokenError::Transport(t) => assert_eq!(t.kind(), TransportErrorKind::Timeout),
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(5));
}

/// An active token's introspection, what is sent, and the cache untouched.
pub fn introspection_answers<H: Harness>() {
    let exp = SystemTime::now() + Duration::from_secs(600);
    let exp_secs = exp.duration_since(UNIX_EPOCH).unwrap().as_secs();
    let active = Reply::json(
        200,
        &serde_json::json!({
            "active": true,
            "client_id": ID,
            "scope": "orders.read orders.write",
            "token_type": "Bearer",
            "exp": exp_secs,
            "aud": ["https://api.example.com/"],
            "tenant": "blue",
        }),
    );
    let server = start(Reply::new(200), active);
    let client = client::<H>(&server, AuthMethod::client_secret_post());
    let token = client.token().unwrap();
    let info = client.introspect(token.access_token()).unwrap();
    assert!(info.active);
    assert_eq!(info.client_id.as_deref(), Some(ID));
    assert_eq!(info.scopes, ["orders.read", "orders.write"]);
    assert_eq!(info.token_type.as_deref(), Some("Bearer"));
    assert_eq!(
        info.expires_at,
        Some(UNIX_EPOCH + Duration::from_secs(exp_secs))
    );
    assert_eq!(info.audience, ["https://api.example.com/"]);
    assert_eq!(info.extra["tenant"], "blue");

    let sent = server.last_request().unwrap();
    assert_eq!(sent.path, "/introspect");
    assert_eq!(sent.param("token").as_deref(), Some("token-1"));
    assert_eq!(
        sent.param("token_type_hint").as_deref(),
        Some("access_token")
    );
    assert_eq!(sent.param("client_id").as_deref(), Some(ID));
    assert_eq!(sent.param("client_secret").as_deref(), Some(SECRET));

    // Introspection does not touch the cache.
    assert_eq!(client.token().unwrap().access_token(), token.access_token());
    assert_eq!(server.count("/token"), 1);
}

/// How each class of answer of an introspection endpoint comes back.
pub fn introspection_error_shapes<H: Harness>() {
    let inactive = start(
        Reply::new(500),
        Reply::json(200, &serde_json::json!({ "active": false })),
    );
    let info = client::<H>(&inactive, AuthMethod::ClientSecretBasic)
        .introspect(&AccessToken::new("t"))
        .unwrap();
    assert!(!info.active);
    assert_eq!(info.client_id, None);

    let no_active = start(
        Reply::new(500),
        Reply::json(200, &serde_json::json!({ "client_id": ID })),
    );
    let error = token_error(
        client::<H>(&no_active, AuthMethod::ClientSecretBasic).introspect(&AccessToken::new("t")),
    );
    assert!(
        matches!(
            error,
            TokenError::InvalidResponse {
                problem: ResponseProblem::InvalidIntrospection,
                ..
            }
        ),
        "{error:?}"
    );

    let refused = start(
        Reply::new(500),
        Reply::oauth_error(401, "invalid_client", Some("who are you")),
    );
    let error = token_error(
        client::<H>(&refused, AuthMethod::ClientSecretBasic).introspect(&AccessToken::new("t")),
    );
    assert_eq!(error.oauth_code(), Some(&ErrorCode::InvalidClient));

    let limited = start(Reply::new(500), Reply::rate_limited(RetryAfter::Seconds(3)));
    let error = token_error(
        client::<H>(&limited, AuthMethod::ClientSecretBasic).introspect(&AccessToken::new("t")),
    );
    assert!(matches!(error, TokenError::RateLimited { .. }), "{error:?}");
    assert_eq!(error.retry_after(), Some(Duration::from_secs(3)));

    let truncated = start(
        Reply::new(500),
        Reply::text(200, "application/json", r#"{"active":tr"#),
    );
    let error = token_error(
        client::<H>(&truncated, AuthMethod::ClientSecretBasic).introspect(&AccessToken::new("t")),
    );
    assert!(
        matches!(error, TokenError::InvalidResponse { .. }),
        "{error:?}"
    );
}

/// Without the endpoints configured, revocation and introspection are configuration errors and send nothing.
pub fn without_endpoints_nothing_is_sent<H: Harness>() {
    let server = TestServer::start(TokenEndpoint::new());
    let config = Config::builder()
        .token_url(server.url("/token"))
        .client_id(ID)
        .client_secret(SECRET)
        .build()
        .unwrap();
    let client = H::build(config, &HarnessOptions::new());
    let token = client.token().unwrap();
    let error = client.revoke(token.access_token()).unwrap_err();
    assert_eq!(error.kind(), HarnessErrorKind::Config, "{error:?}");
    match error.config_error() {
        Some(ConfigError::MissingEndpoint("revocation")) => {}
        other => panic!("expected MissingEndpoint, got {other:?}"),
    }
    let error = client.introspect(token.access_token()).unwrap_err();
    assert_eq!(error.kind(), HarnessErrorKind::Config, "{error:?}");
    match error.config_error() {
        Some(ConfigError::MissingEndpoint("introspection")) => {}
        other => panic!("expected MissingEndpoint, got {other:?}"),
    }
    assert_eq!(server.request_count(), 1);
    // Nothing was dropped either.
    assert_eq!(client.token().unwrap().access_token(), token.access_token());
    assert_eq!(server.request_count(), 1);
}

/// Revocation and introspection errors are classified as a fetch's are, and their messages
/// name the endpoint that failed, never "token request".
pub fn errors_name_their_endpoint<H: Harness>() {
    let failing = start(
        Reply::json(
            400,
            &serde_json::json!({ "error": "invalid_client", "error_description": "bad secret" }),
        ),
        Reply::json(
            503,
            &serde_json::json!({ "error": "temporarily_unavailable" }),
        ),
    );
    let client = client::<H>(&failing, AuthMethod::ClientSecretBasic);
    let error = client.revoke(&AccessToken::new("t")).unwrap_err();
    assert_eq!(error.kind(), HarnessErrorKind::Token, "{error:?}");
    assert!(
        matches!(error.token_error(), Some(TokenError::Rejected { .. })),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(
        message.starts_with("revocation request rejected (HTTP 400): invalid_client"),
        "{message}"
    );
    let error = client.introspect(&AccessToken::new("t")).unwrap_err();
    assert_eq!(error.kind(), HarnessErrorKind::Token, "{error:?}");
    assert!(
        matches!(error.token_error(), Some(TokenError::Server { .. })),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(
        message.starts_with("introspection endpoint failed (HTTP 503)"),
        "{message}"
    );

    // A transport failure is named for its endpoint too.
    let config = Config::builder()
        .token_url(failing.url("/token"))
        .revocation_url(refused_url("/revoke"))
        .client_id(ID)
        .client_secret(SECRET)
        .build()
        .unwrap();
    let client = H::build(config, &HarnessOptions::new());
    let message = client
        .revoke(&AccessToken::new("t"))
        .unwrap_err()
        .to_string();
    assert!(
        message.starts_with("revocation request failed"),
        "{message}"
    );
}
