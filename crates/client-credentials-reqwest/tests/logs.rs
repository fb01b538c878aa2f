//! What the client logs through `tracing`: a `token_fetch` span per fetch with the endpoint,
//! the client id, a key digest and the request id, and never a secret or a token, whatever
//! the outcome (and whatever reqwest and hyper log meanwhile).
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use client_credentials_reqwest::{AuthMethod, AuthMiddleware, Client, Config, reqwest};
use client_credentials_testkit::{Reply, Router, Script, TestServer, TokenEndpoint, refused_url};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

/// A subscriber that writes every span and event, with all their fields, as text.
#[derive(Default)]
struct Capture {
    lines: Arc<Mutex<Vec<String>>>,
    next: AtomicU64,
}

struct Fields<'a>(&'a mut String);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let _ = write!(self.0, " {}={:?}", field.name(), value);
    }
}

impl Subscriber for Capture {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, span: &Attributes<'_>) -> Id {
        let mut line = format!("span {}:", span.metadata().name());
        span.record(&mut Fields(&mut line));
        self.lines.lock().unwrap().push(line);
        Id::from_u64(self.next.fetch_add(1, Ordering::Relaxed) + 1)
    }
    fn record(&self, _: &Id, values: &Record<'_>) {
        let mut line = "record:".to_owned();
        values.record(&mut Fields(&mut line));
        self.lines.lock().unwrap().push(line);
    }
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut line = format!("event {}:", event.metadata().level());
        event.record(&mut Fields(&mut line));
        self.lines.lock().unwrap().push(line);
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

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
    let lines = Arc::clone(&capture.lines);
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
