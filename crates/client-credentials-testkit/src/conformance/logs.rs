//! What the client logs through `tracing`: a `token_fetch` span per fetch with the endpoint,
//! the client id, a key digest and OpenTelemetry's HTTP client attributes, and never a
//! secret or a token.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use client_credentials_core::{AuthMethod, Config};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};
use tracing_core::span::Current;

use super::{Harness, HarnessOptions};
use crate::{Reply, Script, TestServer, TokenEndpoint, refused_url};

/// A subscriber that writes every span and event, with all their fields, as text. Install
/// it for one thread with `tracing::subscriber::with_default`; [`Capture::lines`] shares
/// what it wrote.
#[derive(Debug, Default)]
pub struct Capture {
    lines: Arc<Mutex<Vec<String>>>,
    next: AtomicU64,
    /// The metadata of every span, by id, and the spans entered, innermost last: what
    /// `Span::current()` asks for (the subscriber is used on one thread).
    spans: Mutex<Vec<&'static Metadata<'static>>>,
    entered: Mutex<Vec<Id>>,
}

impl Capture {
    /// The lines written so far, and every later one.
    #[must_use]
    pub fn lines(&self) -> Arc<Mutex<Vec<String>>> {
        Arc::clone(&self.lines)
    }
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
        self.spans.lock().unwrap().push(span.metadata());
        Id::from_u64(self.next.fetch_add(1, Ordering::Relaxed) + 1)
    }
    fn current_span(&self) -> Current {
        let entered = self.entered.lock().unwrap();
        let Some(id) = entered.last() else {
            return Current::none();
        };
        let index = usize::try_from(id.into_u64() - 1).unwrap();
        Current::new(id.clone(), self.spans.lock().unwrap()[index])
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
    fn enter(&self, id: &Id) {
        self.entered.lock().unwrap().push(id.clone());
    }
    fn exit(&self, id: &Id) {
        let mut entered = self.entered.lock().unwrap();
        if let Some(at) = entered.iter().rposition(|e| e == id) {
            entered.remove(at);
        }
    }
}

const SECRET: &str = "client-SECRET-9f8e7d";
const TOKEN_PREFIX: &str = "ACCESS-TOKEN-VALUE-";

fn client<H: Harness>(url: &str, method: AuthMethod) -> H {
    let config = Config::builder()
        .token_url(url)
        .client_id("logging-service")
        .client_secret(SECRET)
        .auth_method(method)
        .build()
        .unwrap();
    // Everything on this thread, so that the thread's subscriber sees it all.
    H::build(config, &HarnessOptions::new().single_threaded())
}

/// A success, a rejection echoing the secret, a server error and a transport failure: one
/// span each with the endpoint, the client id and the key; failures are warnings; no
/// secret, no token.
pub fn fetches_are_traced_without_secrets<H: Harness>() {
    let capture = Capture::default();
    let lines = capture.lines();
    tracing::subscriber::with_default(capture, || {
        // A success, with the secret in the Authorization header.
        let server = TestServer::start(TokenEndpoint::new().prefix(TOKEN_PREFIX));
        client::<H>(&server.url("/token"), AuthMethod::ClientSecretBasic)
            .token()
            .unwrap();
        // A rejection whose description echoes the secret, with the secret in the body.
        let echo = format!("bad secret {SECRET}");
        let server = TestServer::start(Reply::oauth_error(401, "invalid_client", Some(&echo)));
        client::<H>(&server.url("/token"), AuthMethod::client_secret_post())
            .token()
            .unwrap_err();
        // A server error with an HTML page.
        let server = TestServer::start(Script::new().then(Reply::html(500, "<p>down</p>")));
        client::<H>(&server.url("/token"), AuthMethod::ClientSecretBasic)
            .token()
            .unwrap_err();
        // A transport failure.
        client::<H>(&refused_url("/token"), AuthMethod::ClientSecretBasic)
            .token()
            .unwrap_err();
    });
    let lines = lines.lock().unwrap();
    let all = lines.join("\n");
    let spans: Vec<&String> = lines
        .iter()
        .filter(|l| l.starts_with("span token_fetch:"))
        .collect();
    assert_eq!(spans.len(), 4, "{all}");
    for span in spans {
        assert!(span.contains("token_url=http://127.0.0.1:"), "{span}");
        assert!(span.contains("client_id=\"logging-service\""), "{span}");
        assert!(span.contains("key="), "{span}");
        // OpenTelemetry's HTTP client attributes.
        assert!(span.contains("http.request.method=\"POST\""), "{span}");
        assert!(span.contains("server.address=\"127.0.0.1\""), "{span}");
        assert!(span.contains("server.port="), "{span}");
    }
    // And the outcome of each: the status, and `error.type` for the three failures.
    for recorded in [
        "record: http.response.status_code=200",
        "record: http.response.status_code=401",
        "record: error.type=\"401\"",
        "record: error.type=\"500\"",
        "record: error.type=\"connect\"",
    ] {
        assert!(
            lines.iter().any(|l| l == recorded),
            "no `{recorded}` in {all}"
        );
    }
    assert!(all.contains("event WARN"), "failures are warnings: {all}");
    assert!(!all.contains(SECRET), "{all}");
    assert!(!all.contains(TOKEN_PREFIX), "{all}");
}
