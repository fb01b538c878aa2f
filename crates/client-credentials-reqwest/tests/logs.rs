//! What the async client logs through `tracing`, with what only it has: the request id in
//! every `token_fetch` span and the middleware's 401 retry, and never a secret or a token,
//! whatever the outcome (and whatever reqwest and hyper log meanwhile). The log test every
//! client shares is the conformance suite's, run here too: log tests need a process of
//! their own (see `client_credentials_testkit::conformance_suite!`).
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

mod harness;

client_credentials_testkit::conformance_suite!(@logs harness::ReqwestHarness);

use client_credentials_reqwest::{AuthMethod, AuthMiddleware, Client, Config, reqwest};
use client_credentials_testkit::conformance::logs::Capture;
use client_credentials_testkit::{Reply, Router, Script, TestServer, TokenEndpoint, refused_url};

const SECRET: &str = "client-SECRET-9f8e7d";
const TOKEN_PREFIX: &str = "ACCESS-TOKEN-VALUE-";

fn client(url: &str, method: AuthMethod) -> Client {
    let config = Config::builder()
        .token_url(url)
        .client_id("logging-service")
        .client_secret(SECRET)
        .auth_method(method)
        .build()
        .unwrap();
    Client::new(config).unwrap()
}

#[test]
fn fetches_are_traced_without_secrets() {
    let capture = Capture::default();
    let lines = capture.lines();
    // One thread runs the runtime and every task it spawns, so the thread-local subscriber
    // sees them all.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    tracing::subscriber::with_default(capture, || {
        runtime.block_on(async {
            // A success, with the secret in the Authorization header, then a request through
            // the middleware that gets a 401 and is retried.
            let server = TestServer::start(
                Router::new()
                    .route("/token", TokenEndpoint::new().prefix(TOKEN_PREFIX))
                    .route(
                        "/api",
                        Script::new().once(Reply::new(401)).then(Reply::new(200)),
                    ),
            );
            let tokens = client(&server.url("/token"), AuthMethod::ClientSecretBasic);
            tokens.token().await.unwrap();
            let http = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
                .with(AuthMiddleware::new(tokens.clone()))
                .build();
            let response = http.get(server.url("/api")).send().await.unwrap();
            assert_eq!(response.status(), 200);
            // A rejection whose description echoes the secret, with the secret in the body.
            let echo = format!("bad secret {SECRET}");
            let server = TestServer::start(Reply::oauth_error(401, "invalid_client", Some(&echo)));
            client(&server.url("/token"), AuthMethod::client_secret_post())
                .token()
                .await
                .unwrap_err();
            // A server error with an HTML page.
            let server = TestServer::start(Reply::html(500, "<p>down</p>"));
            client(&server.url("/token"), AuthMethod::ClientSecretBasic)
                .token()
                .await
                .unwrap_err();
            // A transport failure.
            client(&refused_url("/token"), AuthMethod::ClientSecretBasic)
                .token()
                .await
                .unwrap_err();
        });
    });
    let lines = lines.lock().unwrap();
    let all = lines.join("\n");
    let spans: Vec<&String> = lines
        .iter()
        .filter(|l| l.starts_with("span token_fetch:"))
        .collect();
    assert_eq!(spans.len(), 5, "{all}");
    for span in spans {
        assert!(span.contains("token_url=http://127.0.0.1:"), "{span}");
        assert!(span.contains("client_id=\"logging-service\""), "{span}");
        assert!(span.contains("key="), "{span}");
        assert!(span.contains("request_id="), "{span}");
    }
    assert!(all.contains("event WARN"), "failures are warnings: {all}");
    assert!(
        all.contains("retrying once"),
        "the 401 retry is logged: {all}"
    );
    assert!(!all.contains(SECRET), "{all}");
    assert!(!all.contains(TOKEN_PREFIX), "{all}");
}
