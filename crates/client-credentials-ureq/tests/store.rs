//! The shared-store path of the blocking driver: a token from the store answers without a
//! request, a permit gets the fetched token with its TTL, and a store that panics leaves
//! the request abandoned rather than stuck.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use client_credentials_testkit::{TestServer, TokenEndpoint};
use client_credentials_ureq::core::http::{HeaderMap, StatusCode};
use client_credentials_ureq::{
    Client, Config, FetchPermit, Lookup, SharedStore, StoreQuery, Token,
};

fn config(server: &TestServer) -> Config {
    Config::builder()
        .token_url(server.url("/token"))
        .client_id("my-service")
        .client_secret("s3cr3t")
        .build()
        .unwrap()
}

fn stored_token(config: &Config, value: &str) -> Arc<Token> {
    let body = format!(r#"{{"access_token":"{value}","token_type":"Bearer","expires_in":3600}}"#);
    let token = config
        .default_request()
        .parse_response(
            SystemTime::now(),
            StatusCode::OK,
            &HeaderMap::new(),
            body.as_bytes(),
        )
        .unwrap();
    Arc::new(token)
}

/// A store that always holds `token`.
struct Holding(Arc<Token>);

impl SharedStore for Holding {
    fn before_fetch(&self, query: &StoreQuery) -> Lookup {
        assert!(query.accepts(SystemTime::now(), &self.0));
        Lookup::Shared(Arc::clone(&self.0))
    }
}

#[test]
fn a_token_from_the_store_answers_without_a_request() {
    let server = TestServer::start(TokenEndpoint::new());
    let config = config(&server);
    let store = Holding(stored_token(&config, "from-the-fleet"));
    let client = Client::builder(config).shared_store(store).build();
    let token = client.token().unwrap();
    assert_eq!(token.access_token().expose_secret(), "from-the-fleet");
    assert_eq!(server.request_count(), 0);
    assert_eq!(client.counters().fetches_shared, 1);
}

/// A store that lets this process fetch, and records what it was asked to publish.
#[derive(Clone, Default)]
struct Recording(Arc<Mutex<Vec<(String, Duration)>>>);

struct Permit(Recording);

impl FetchPermit for Permit {
    fn publish(self: Box<Self>, token: &Token, ttl: Duration) {
        let value = token.access_token().expose_secret().to_owned();
        self.0.0.lock().unwrap().push((value, ttl));
    }
}

impl SharedStore for Recording {
    fn before_fetch(&self, _: &StoreQuery) -> Lookup {
        Lookup::Fetch(Box::new(Permit(self.clone())))
    }
}

#[test]
fn a_fetched_token_is_published_through_the_permit() {
    let server = TestServer::start(TokenEndpoint::new());
    let store = Recording::default();
    let client = Client::builder(config(&server))
        .shared_store(store.clone())
        .build();
    let token = client.token().unwrap();
    assert_eq!(server.count("/token"), 1);
    let published = store.0.lock().unwrap().clone();
    assert_eq!(published.len(), 1);
    assert_eq!(published[0].0, token.access_token().expose_secret());
    assert!(
        published[0].1 > Duration::from_secs(3000),
        "{:?}",
        published[0].1
    );
}

/// A store that panics on its first call, and lets this process fetch afterwards.
#[derive(Default)]
struct PanicsOnce(AtomicUsize);

impl SharedStore for PanicsOnce {
    fn before_fetch(&self, _: &StoreQuery) -> Lookup {
        assert!(
            self.0.fetch_add(1, Ordering::Relaxed) > 0,
            "the store panicked"
        );
        Lookup::FetchLocally
    }
}

#[test]
fn a_sender_that_panics_abandons_its_request() {
    let server = TestServer::start(TokenEndpoint::new());
    let client = Client::builder(config(&server))
        .shared_store(PanicsOnce::default())
        .build();
    let panicking = client.clone();
    let joined = std::thread::spawn(move || panicking.token()).join();
    assert!(joined.is_err(), "the sender's thread unwound");
    // The next caller sends at once, without waiting for the request timeout (30 s).
    let started = Instant::now();
    client.token().unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(server.count("/token"), 1);
    let counters = client.counters();
    assert_eq!(counters.fetches_abandoned, 1);
    assert_eq!(counters.fetches_succeeded, 1);
}
