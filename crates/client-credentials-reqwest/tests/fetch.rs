//! One fetch against a real server on 127.0.0.1: what is sent for each auth method and body
//! format, and how each class of answer comes back.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

use std::time::Duration;

use client_credentials_core::{ErrorCode, ResponseProblem, TransportErrorKind};
use client_credentials_reqwest::{
    AuthMethod, BodyFormat, Client, Config, Error, TokenError, TokenParams,
};
use client_credentials_testkit::{Reply, Request, TestServer, TokenEndpoint};

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

fn basic_client(server: &TestServer) -> Client {
    Client::new(config(
        server,
        AuthMethod::ClientSecretBasic,
        BodyFormat::Form,
    ))
    .unwrap()
}

fn token_error(result: Result<impl std::fmt::Debug, Error>) -> TokenError {
    match result.unwrap_err() {
        Error::Token(e) => e,
        other => panic!("expected a token error, got {other:?}"),
    }
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

#[tokio::test]
async fn every_auth_method_and_body_format() {
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
            let client = Client::new(config(&server, method.clone(), format)).unwrap();
            let token = client
                .token()
                .await
                .unwrap_or_else(|e| panic!("{method:?} {format:?}: {e}"));
            assert_eq!(token.access_token().expose_secret(), "token-1");
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

#[tokio::test]
async fn basic_credentials_are_form_encoded_first() {
    // The golden vector: `aaa/;&` and `bbb/;&`.
    let server = TestServer::start(TokenEndpoint::new().client("aaa/;&", "bbb/;&"));
    let config = Config::builder()
        .token_url(server.url("/token"))
        .client_id("aaa/;&")
        .client_secret("bbb/;&")
        .build()
        .unwrap();
    Client::new(config).unwrap().token().await.unwrap();
    let sent = server.last_request().unwrap();
    assert_eq!(
        sent.header("authorization"),
        Some("Basic YWFhJTJGJTNCJTI2OmJiYiUyRiUzQiUyNg==")
    );
}

#[tokio::test]
async fn audience_resources_and_extra_parameters_are_sent() {
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
    Client::new(config).unwrap().token().await.unwrap();
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

#[tokio::test]
async fn invalid_client_is_a_typed_rejection_not_a_transport_error() {
    let server = TestServer::start(TokenEndpoint::new().client(ID, "another-secret"));
    let client = basic_client(&server);
    let error = token_error(client.token().await);
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

#[tokio::test]
async fn invalid_scope_is_a_typed_rejection() {
    let server = TestServer::start(Reply::oauth_error(
        400,
        "invalid_scope",
        Some("no such scope"),
    ));
    let error = token_error(basic_client(&server).token().await);
    assert_eq!(error.oauth_code(), Some(&ErrorCode::InvalidScope));
    assert_eq!(error.status().map(|s| s.as_u16()), Some(400));
    assert!(!error.is_retryable());
}

#[tokio::test]
async fn server_errors_are_retryable_server_errors() {
    let server = TestServer::start(Reply::oauth_error(503, "temporarily_unavailable", None));
    let error = token_error(basic_client(&server).token().await);
    assert!(matches!(error, TokenError::Server { .. }), "{error:?}");
    assert_eq!(error.oauth_code(), Some(&ErrorCode::TemporarilyUnavailable));
    assert!(error.is_retryable());

    let server = TestServer::start(Reply::new(500));
    let error = token_error(basic_client(&server).token().await);
    assert!(matches!(error, TokenError::Server { .. }), "{error:?}");
    assert_eq!(error.status().map(|s| s.as_u16()), Some(500));
}

#[tokio::test]
async fn html_error_pages() {
    // A gateway's error page: a server error with a readable excerpt.
    let page = "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>";
    let server = TestServer::start(Reply::html(502, page));
    let error = token_error(basic_client(&server).token().await);
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
    let error = token_error(basic_client(&server).token().await);
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

#[tokio::test]
async fn empty_and_truncated_bodies() {
    let server = TestServer::start(Reply::new(200));
    let error = token_error(basic_client(&server).token().await);
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
    let error = token_error(basic_client(&server).token().await);
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

#[tokio::test]
async fn per_request_parameters_are_validated_before_sending() {
    let server = TestServer::start(TokenEndpoint::new());
    let client = basic_client(&server);
    let error = client
        .token_for(&TokenParams::new().scopes(["has space"]))
        .await
        .unwrap_err();
    assert!(matches!(error, Error::Config(_)), "{error:?}");
    assert!(!error.is_retryable());
    assert_eq!(server.request_count(), 0);
}

#[tokio::test]
async fn a_caller_supplied_builder_still_follows_no_redirects() {
    // reqwest's default builder follows up to ten redirects; the client turns that off.
    let target = TestServer::start(TokenEndpoint::new());
    let server = TestServer::start(Reply::redirect(307, &target.url("/token")));
    let client = Client::builder(config(
        &server,
        AuthMethod::client_secret_post(),
        BodyFormat::Form,
    ))
    .http_client_builder(
        client_credentials_reqwest::reqwest::Client::builder().user_agent("custom-agent/1"),
    )
    .timeout(Duration::from_secs(2))
    .build()
    .unwrap();
    let error = token_error(client.token().await);
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
    assert_eq!(
        server.last_request().unwrap().header("user-agent"),
        Some("custom-agent/1")
    );
    assert!(!target.wait_for_requests(1, Duration::from_millis(100)));
    assert_eq!(target.connections(), 0);
}

/// A local helper the testkit has no equivalent for: a plain-HTTP server that answers the
/// first connection with `400 Bad Request` as soon as bytes arrive (what an HTTP server does
/// with a TLS ClientHello), then stops. Bounded: it gives up after ten seconds.
fn plain_http_responder() -> String {
    use std::io::{Read as _, Write as _};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let url = format!("https://{}/token", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::time::Instant::now() < deadline {
            match listener.accept() {
                Ok((mut tcp, _)) => {
                    tcp.set_nonblocking(false).unwrap();
                    tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                    let mut hello = [0u8; 512];
                    let _ = tcp.read(&mut hello);
                    let _ = tcp.write_all(
                        b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                    );
                    return;
                }
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
    });
    url
}

#[tokio::test]
async fn https_to_a_plain_http_server_is_a_tls_error() {
    // The testkit closes on the ClientHello; the helper answers it with plain HTTP.
    let server = TestServer::start(TokenEndpoint::new());
    let closes = server.url("/token").replacen("http://", "https://", 1);
    for url in [closes, plain_http_responder()] {
        let config = Config::builder()
            .token_url(&url)
            .client_id(ID)
            .client_secret(SECRET)
            .build()
            .unwrap();
        let error = token_error(Client::new(config).unwrap().token().await);
        match &error {
            TokenError::Transport(t) => {
                assert_eq!(t.kind(), TransportErrorKind::Tls, "{url}: {t:?}");
            }
            other => panic!("expected a transport error, got {other:?}"),
        }
        assert!(error.is_retryable());
        assert!(error.to_string().contains("TLS failed"), "{error}");
    }
    // The secret never went out in the clear: the TLS handshake failed first.
    assert!(server.requests().iter().all(|r| !r.contains(SECRET)));
}

#[tokio::test]
async fn nothing_secret_in_debug_or_display() {
    let server = TestServer::start(TokenEndpoint::new().client(ID, "another-secret"));
    let client = Client::new(config(
        &server,
        AuthMethod::client_secret_post(),
        BodyFormat::Form,
    ))
    .unwrap();
    let error = client.token().await.unwrap_err();
    let good = TestServer::start(TokenEndpoint::new().prefix("very-secret-token-"));
    let good_client = basic_client(&good);
    let token = good_client.token().await.unwrap();
    let builder = Client::builder(config(
        &good,
        AuthMethod::ClientSecretBasic,
        BodyFormat::Form,
    ));
    for shown in [
        format!("{client:?}"),
        format!("{good_client:?}"),
        format!("{builder:?}"),
        format!("{:?}", good_client.middleware()),
        format!("{error:?}"),
        format!("{error}"),
        format!("{token:?}"),
        format!("{:?}", good_client.counters()),
    ] {
        assert!(!shown.contains(SECRET), "{shown}");
        assert!(!shown.contains("very-secret-token"), "{shown}");
    }
}
