//! What is particular to reqwest: a caller-supplied `reqwest::ClientBuilder`, TLS errors
//! recognised in reqwest's error chain, attaching a token to a reqwest request, and futures
//! that can be spawned. The behaviour every client shares is in the conformance suite
//! (`conformance.rs`).
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

use std::time::Duration;

use client_credentials_core::{ResponseProblem, TransportErrorKind};
use client_credentials_reqwest::{
    AuthMethod, BodyFormat, Client, Config, Error, TokenError, TokenParams,
};
use client_credentials_testkit::conformance::authorized::RejectOnce;
use client_credentials_testkit::{Reply, TestServer, TokenEndpoint};

const ID: &str = "my-service";
const SECRET: &str = "s3cr3t-Value";

fn config(server: &TestServer, method: AuthMethod) -> Config {
    Config::builder()
        .token_url(server.url("/token"))
        .client_id(ID)
        .client_secret(SECRET)
        .auth_method(method)
        .body_format(BodyFormat::Form)
        .scopes(["orders.read", "orders.write"])
        .build()
        .unwrap()
}

fn token_error(result: Result<impl std::fmt::Debug, Error>) -> TokenError {
    match result.unwrap_err() {
        Error::Token(e) => e,
        other => panic!("expected a token error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_caller_supplied_builder_still_follows_no_redirects() {
    // reqwest's default builder follows up to ten redirects; the client turns that off.
    let target = TestServer::start(TokenEndpoint::new());
    let server = TestServer::start(Reply::redirect(307, &target.url("/token")));
    let client = Client::builder(config(&server, AuthMethod::client_secret_post()))
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

/// The builder and the middleware print no secret and no token (the client, its errors,
/// tokens and counters are checked by the conformance suite).
#[tokio::test]
async fn the_builder_and_the_middleware_print_nothing_secret() {
    let good = TestServer::start(TokenEndpoint::new().prefix("very-secret-token-"));
    let good_client = Client::new(config(&good, AuthMethod::ClientSecretBasic)).unwrap();
    good_client.token().await.unwrap();
    let builder = Client::builder(config(&good, AuthMethod::client_secret_post()));
    for shown in [
        format!("{builder:?}"),
        format!("{:?}", good_client.middleware()),
    ] {
        assert!(!shown.contains(SECRET), "{shown}");
        assert!(!shown.contains("very-secret-token"), "{shown}");
    }
}

#[tokio::test]
async fn authorize_reqwest_attaches_the_token() {
    let case = RejectOnce::start();
    let client = Client::builder(case.config()).seed(1).build().unwrap();
    // A reqwest request: send it, get the 401, invalidate, try once more.
    let http = client_credentials_reqwest::reqwest::Client::new();
    let authorized = client.authorize_reqwest(http.get(case.api())).await;
    let (request, token) = authorized.unwrap();
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 401);
    assert!(client.invalidate(&token));
    let authorized = client.authorize_reqwest(http.get(case.api())).await;
    let response = authorized.unwrap().0.send().await.unwrap();
    assert_eq!(response.status(), 204);
    case.assert_retried_with_a_fresh_token();
}

#[test]
fn the_client_and_its_futures_are_send_sync() {
    fn assert_send_sync_clone<T: Send + Sync + Clone + 'static>() {}
    fn assert_send<T: Send>(_: &T) {}
    assert_send_sync_clone::<Client>();
    assert_send_sync_clone::<client_credentials_reqwest::Error>();
    assert_send_sync_clone::<client_credentials_reqwest::AuthMiddleware>();
    let config = Config::builder()
        .token_url("https://auth.example.com/token")
        .client_id("c")
        .client_secret("s")
        .build()
        .unwrap();
    let client = Client::new(config).unwrap();
    // The futures can be spawned on a multi-threaded runtime.
    assert_send(&client.token());
    assert_send(&client.token_for(&TokenParams::new()));
}

fn federated(server: &TestServer, source: client_credentials_core::AssertionSource) -> Client {
    let config = Config::builder()
        .token_url(server.url("/token"))
        .client_id("workload")
        .client_assertion(source)
        .build()
        .unwrap();
    Client::builder(config)
        .timeout(Duration::from_millis(500))
        .build()
        .unwrap()
}

#[tokio::test]
async fn an_async_assertion_source_is_awaited_for_every_fetch_and_bounded_by_the_timeout() {
    use client_credentials_core::AssertionSource;
    use client_credentials_core::federated::AssertionProblem;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    let server = TestServer::start(TokenEndpoint::new());
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&calls);
    let source = AssertionSource::from_async_fn(move || {
        let n = counted.fetch_add(1, Ordering::SeqCst);
        async move {
            tokio::task::yield_now().await;
            Ok(format!("aGVhZGVy.cGF5bG9hZA{n}.c2ln"))
        }
    });
    let client = federated(&server, source);
    let first = client.token().await.unwrap();
    assert!(client.invalidate(first.access_token()));
    client.token().await.unwrap();
    let sent: Vec<_> = server
        .requests()
        .iter()
        .map(|r| r.param("client_assertion"))
        .collect();
    assert_eq!(
        sent,
        [
            Some("aGVhZGVy.cGF5bG9hZA0.c2ln".to_owned()),
            Some("aGVhZGVy.cGF5bG9hZA1.c2ln".to_owned())
        ]
    );

    // An identity service that never answers fails the fetch within the timeout.
    let hung = AssertionSource::from_async_fn(std::future::pending);
    let error = token_error(federated(&server, hung).token().await);
    let TokenError::Assertion(e) = &error else {
        panic!("expected an assertion error, got {error:?}")
    };
    assert!(
        matches!(&e.problem, AssertionProblem::Function(m) if m.contains("no assertion within 500 ms")),
        "{e:?}"
    );
    assert_eq!(server.request_count(), 2);
}

#[test]
fn every_key_format_of_a_client_certificate_builds_a_client() {
    // reqwest (rustls) takes the core's PEM of the identity: PKCS#8 and PKCS#1 keys.
    let keys = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../client-credentials-core/tests/keys"
    );
    for (cert, key) in [
        ("mtls-client.pem", "mtls-client.key"),
        ("rsa-2048-cert.pem", "rsa-2048-pkcs1.pem"),
    ] {
        let read = |f: &str| std::fs::read(format!("{keys}/{f}")).unwrap();
        let identity =
            client_credentials_core::ClientIdentity::from_pem(read(cert), read(key)).unwrap();
        let config = Config::builder()
            .token_url("https://mtls.as.example.com/token")
            .client_id(ID)
            .client_certificate(identity)
            .build()
            .unwrap();
        Client::builder(config)
            .build()
            .unwrap_or_else(|e| panic!("{key}: {e}"));
    }
}
