//! One fetch against a real server on 127.0.0.1: what is sent for each auth method and body
//! format, and how each class of answer comes back.

use client_credentials_core::{
    AuthMethod, BodyFormat, Config, ErrorCode, ResponseProblem, TokenError, TokenParams,
};

use super::{Harness, HarnessErrorKind, HarnessOptions, value};
use crate::{Reply, Request, TestServer, TokenEndpoint};

const ID: &str = "my-service";
const SECRET: &str = "s3cr3t-Value";

fn config(server: &TestServer, method: AuthMethod, format: BodyFormat) -> Config {
    let builder = Config::builder()
        .token_url(server.url("/token"))
        .client_id(ID)
        .auth_method(method.clone())
        .body_format(format)
        .scopes(["orders.read", "orders.write"]);
    let builder = if method == AuthMethod::None {
        builder
    } else {
        builder.client_secret(SECRET)
    };
    builder.build().unwrap()
}

fn basic<H: Harness>(server: &TestServer) -> H {
    H::build(
        config(server, AuthMethod::ClientSecretBasic, BodyFormat::Form),
        &HarnessOptions::new(),
    )
}

/// The token error of a fetch that must fail with one.
fn token_error<H: Harness>(harness: &H) -> TokenError {
    harness.token().unwrap_err().into_token_error()
}

fn assert_common(sent: &Request, format: BodyFormat) {
    assert_eq!(sent.method, "POST");
    assert_eq!(sent.path, "/token");
    assert_eq!(sent.header("accept"), Some("application/json"));
    let content_type = sent.header("content-type").unwrap();
    match format {
        BodyFormat::Json => assert_eq!(content_type, "application/json"),
        _ => assert_eq!(content_type, "application/x-www-form-urlencoded"),
    }
    assert_eq!(
        sent.param("grant_type").as_deref(),
        Some("client_credentials")
    );
    assert_eq!(
        sent.param("scope").as_deref(),
        Some("orders.read orders.write")
    );
}

/// Every client authentication method with both body formats: what reaches the server.
pub fn every_auth_method_and_body_format<H: Harness>() {
    for format in [BodyFormat::Form, BodyFormat::Json] {
        for method in [
            AuthMethod::ClientSecretBasic,
            AuthMethod::ClientSecretBasicRaw,
            AuthMethod::client_secret_post(),
            AuthMethod::None,
        ] {
            let endpoint = if method == AuthMethod::None {
                TokenEndpoint::new().public_client(ID)
            } else {
                TokenEndpoint::new().client(ID, SECRET)
            };
            let server = TestServer::start(endpoint);
            let client = H::build(
                config(&server, method.clone(), format),
                &HarnessOptions::new(),
            );
            let token = client
                .token()
                .unwrap_or_else(|e| panic!("{method:?} {format:?}: {e}"));
            assert_eq!(value(&token), "token-1");
            assert_eq!(token.token_type(), "Bearer");
            assert_eq!(token.scopes(), ["orders.read", "orders.write"]);

            assert_eq!(server.request_count(), 1);
            let sent = server.last_request().unwrap();
            assert_common(&sent, format);
            match &method {
                AuthMethod::ClientSecretBasic | AuthMethod::ClientSecretBasicRaw => {
                    assert_eq!(sent.basic_auth(), Some((ID.into(), SECRET.into())));
                    assert_eq!(sent.param("client_id"), None, "never both header and body");
                    assert_eq!(sent.param("client_secret"), None);
                }
                AuthMethod::ClientSecretPost { .. } => {
                    assert_eq!(sent.header("authorization"), None);
                    assert_eq!(sent.param("client_id").as_deref(), Some(ID));
                    assert_eq!(sent.param("client_secret").as_deref(), Some(SECRET));
                }
                _ => {
                    assert_eq!(sent.header("authorization"), None);
                    assert_eq!(sent.param("client_id").as_deref(), Some(ID));
                    assert_eq!(sent.param("client_secret"), None);
                }
            }
        }
    }
}

/// The golden vector of RFC 6749 §2.3.1: `aaa/;&` and `bbb/;&` are form-encoded first.
pub fn basic_credentials_are_form_encoded_first<H: Harness>() {
    let server = TestServer::start(TokenEndpoint::new().client("aaa/;&", "bbb/;&"));
    let config = Config::builder()
        .token_url(server.url("/token"))
        .client_id("aaa/;&")
        .client_secret("bbb/;&")
        .build()
        .unwrap();
    H::build(config, &HarnessOptions::new()).token().unwrap();
    let sent = server.last_request().unwrap();
    assert_eq!(
        sent.header("authorization"),
        Some("Basic YWFhJTJGJTNCJTI2OmJiYiUyRiUzQiUyNg==")
    );
}

/// The audience, every resource indicator and the extra parameters are sent.
pub fn audience_resources_and_extra_parameters_are_sent<H: Harness>() {
    let server = TestServer::start(TokenEndpoint::new());
    let config = Config::builder()
        .token_url(server.url("/token"))
        .client_id(ID)
        .client_secret(SECRET)
        .audience("https://api.example.com")
        .resource("https://a.example.com/")
        .resource("https://b.example.com/")
        .extra_param("tenant", "t1")
        .build()
        .unwrap();
    H::build(config, &HarnessOptions::new()).token().unwrap();
    let sent = server.last_request().unwrap();
    assert_eq!(
        sent.param("audience").as_deref(),
        Some("https://api.example.com")
    );
    assert_eq!(
        sent.params("resource"),
        ["https://a.example.com/", "https://b.example.com/"]
    );
    assert_eq!(sent.param("tenant").as_deref(), Some("t1"));
}

/// `invalid_client` is a typed rejection with its status, not a transport error.
pub fn invalid_client_is_a_typed_rejection_not_a_transport_error<H: Harness>() {
    let server = TestServer::start(TokenEndpoint::new().client(ID, "another-secret"));
    let error = token_error(&basic::<H>(&server));
    match &error {
        TokenError::Rejected {
            status,
            error,
            www_authenticate,
        } => {
            assert_eq!(status.as_u16(), 401);
            assert_eq!(error.code, ErrorCode::InvalidClient);
            assert_eq!(
                error.description.as_deref(),
                Some("client authentication failed")
            );
            assert!(www_authenticate.is_some());
        }
        other => panic!("expected Rejected, got {other:?}"),
    }
    assert!(!error.is_retryable());
    let shown = error.to_string();
    assert!(
        shown.contains("invalid_client") && shown.contains("401"),
        "{shown}"
    );
    assert!(!shown.contains(SECRET));
}

/// `invalid_scope` is a typed rejection, not retryable.
pub fn invalid_scope_is_a_typed_rejection<H: Harness>() {
    let server = TestServer::start(Reply::oauth_error(
        400,
        "invalid_scope",
        Some("no such scope"),
    ));
    let error = token_error(&basic::<H>(&server));
    assert_eq!(error.oauth_code(), Some(&ErrorCode::InvalidScope));
    assert_eq!(error.status().map(|s| s.as_u16()), Some(400));
    assert!(!error.is_retryable());
}

/// 5xx answers, with or without an OAuth error body, are retryable server errors.
pub fn server_errors_are_retryable_server_errors<H: Harness>() {
    let server = TestServer::start(Reply::oauth_error(503, "temporarily_unavailable", None));
    let error = token_error(&basic::<H>(&server));
    assert!(matches!(error, TokenError::Server { .. }), "{error:?}");
    assert_eq!(error.oauth_code(), Some(&ErrorCode::TemporarilyUnavailable));
    assert!(error.is_retryable());

    let server = TestServer::start(Reply::new(500));
    let error = token_error(&basic::<H>(&server));
    assert!(matches!(error, TokenError::Server { .. }), "{error:?}");
    assert_eq!(error.status().map(|s| s.as_u16()), Some(500));
}

/// A gateway's error page and a login page answered with 200.
pub fn html_error_pages<H: Harness>() {
    // A gateway's error page: a server error with a readable excerpt.
    let page = "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>";
    let server = TestServer::start(Reply::html(502, page));
    let error = token_error(&basic::<H>(&server));
    match &error {
        TokenError::Server {
            status, excerpt, ..
        } => {
            assert_eq!(status.as_u16(), 502);
            assert!(excerpt.as_ref().unwrap().as_str().contains("Bad Gateway"));
        }
        other => panic!("expected Server, got {other:?}"),
    }

    // A login page answered with 200: an invalid response, not a token.
    let server = TestServer::start(Reply::html(200, "<html><body>Sign in</body></html>"));
    let error = token_error(&basic::<H>(&server));
    assert!(
        matches!(
            &error,
            TokenError::InvalidResponse {
                problem: ResponseProblem::Unparseable,
                ..
            }
        ),
        "{error:?}"
    );
    assert!(error.to_string().contains("text/html"), "{error}");
}

/// An empty 200 and a truncated JSON body are invalid responses, with no excerpt of the
/// success body.
pub fn empty_and_truncated_bodies<H: Harness>() {
    let server = TestServer::start(Reply::new(200));
    let error = token_error(&basic::<H>(&server));
    assert!(
        matches!(error, TokenError::InvalidResponse { .. }),
        "{error:?}"
    );

    // Complete framing, truncated JSON.
    let server = TestServer::start(Reply::text(
        200,
        "application/json",
        r#"{"access_token":"abc","token_ty"#,
    ));
    let error = token_error(&basic::<H>(&server));
    assert!(
        matches!(
            &error,
            TokenError::InvalidResponse {
                problem: ResponseProblem::Unparseable,
                ..
            }
        ),
        "{error:?}"
    );
    assert!(
        !error.to_string().contains("abc"),
        "no excerpt of a success body: {error}"
    );
}

/// Invalid per-request parameters are a configuration error, and nothing is sent.
pub fn per_request_parameters_are_validated_before_sending<H: Harness>() {
    let server = TestServer::start(TokenEndpoint::new());
    let client = basic::<H>(&server);
    let error = client
        .token_for(&TokenParams::new().scopes(["has space"]))
        .unwrap_err();
    assert_eq!(error.kind(), HarnessErrorKind::Config, "{error:?}");
    assert!(error.config_error().is_some(), "{error:?}");
    assert!(!error.is_retryable());
    assert_eq!(server.request_count(), 0);
}

/// Neither the secret nor a token shows in `Debug` or `Display` of the client, its errors,
/// its tokens or its counters.
pub fn nothing_secret_in_debug_or_display<H: Harness>() {
    let server = TestServer::start(TokenEndpoint::new().client(ID, "another-secret"));
    let client = H::build(
        config(&server, AuthMethod::client_secret_post(), BodyFormat::Form),
        &HarnessOptions::new(),
    );
    let error = client.token().unwrap_err();
    let good = TestServer::start(TokenEndpoint::new().prefix("very-secret-token-"));
    let good_client = basic::<H>(&good);
    let token = good_client.token().unwrap();
    for shown in [
        format!("{client:?}"),
        format!("{good_client:?}"),
        format!("{:?}", error.error()),
        format!("{}", error.error()),
        format!("{token:?}"),
        format!("{:?}", good_client.counters()),
    ] {
        assert!(!shown.contains(SECRET), "{shown}");
        assert!(!shown.contains("very-secret-token"), "{shown}");
    }
}
