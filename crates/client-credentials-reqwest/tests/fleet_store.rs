//! Two async clients, one in-memory fleet store: the first fetches and publishes in a task
//! of its own, the second takes the published token without a request, and a caller
//! cancelled while the store is consulted leaves nothing in flight.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use client_credentials_reqwest::{
    Client, Config, FetchPermit, Lookup, SharedStore, StoreQuery, Token,
};
use client_credentials_testkit::{TestServer, TokenEndpoint};

/// What the fleet shares: the latest token with the TTL it was published with, and how
/// long a lookup takes.
type Published = Option<(Arc<Token>, Duration)>;

#[derive(Clone, Default)]
struct Fleet {
    slot: Arc<Mutex<Published>>,
    lookup_delay: Duration,
}

struct Permit(Fleet);

#[async_trait::async_trait]
impl FetchPermit for Permit {
    async fn publish(self: Box<Self>, token: &Token, ttl: Duration) {
        *self.0.slot.lock().unwrap() = Some((Arc::new(token.clone()), ttl));
    }
}

#[async_trait::async_trait]
impl SharedStore for Fleet {
    async fn before_fetch(&self, query: &StoreQuery) -> Lookup {
        tokio::time::sleep(self.lookup_delay).await;
        let stored = self.slot.lock().unwrap().clone();
        match stored {
            Some((token, _)) if query.accepts(SystemTime::now(), &token) => Lookup::Shared(token),
            _ => Lookup::Fetch(Box::new(Permit(self.clone()))),
        }
    }
}

fn client(server: &TestServer, fleet: &Fleet, seed: u64) -> Client {
    let config = Config::builder()
        .token_url(server.url("/token"))
        .client_id("my-service")
        .client_secret("s3cr3t")
        .build()
        .unwrap();
    Client::builder(config)
        .shared_store(fleet.clone())
        .seed(seed)
        .build()
        .unwrap()
}

#[tokio::test]
async fn one_fetch_serves_the_fleet() {
    let server = TestServer::start(TokenEndpoint::new());
    let fleet = Fleet::default();
    let first = client(&server, &fleet, 1);
    let second = client(&server, &fleet, 2);

    let token = first.token().await.unwrap();
    assert_eq!(token.access_token().expose_secret(), "token-1");
    // Published in a task of its own, with the TTL the core computed.
    let deadline = Instant::now() + Duration::from_secs(5);
    let ttl = loop {
        if let Some((_, ttl)) = fleet.slot.lock().unwrap().clone() {
            break ttl;
        }
        assert!(Instant::now() < deadline, "never published");
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    assert!(
        ttl > Duration::from_secs(3000) && ttl <= Duration::from_secs(3600),
        "{ttl:?}"
    );

    let shared = second.token().await.unwrap();
    assert_eq!(shared.access_token(), token.access_token());
    assert_eq!(server.count("/token"), 1);
    assert_eq!(second.counters().fetches_shared, 1);

    // A token the fleet's store still holds but that a resource server rejected is not
    // taken back: the second client fetches its own.
    assert!(second.invalidate(shared.access_token()));
    let own = second.token().await.unwrap();
    assert_eq!(own.access_token().expose_secret(), "token-2");
    assert_eq!(server.count("/token"), 2);
}

#[tokio::test]
async fn a_caller_cancelled_during_the_lookup_leaves_nothing_in_flight() {
    let server = TestServer::start(TokenEndpoint::new());
    let fleet = Fleet {
        lookup_delay: Duration::from_millis(300),
        ..Fleet::default()
    };
    let client = client(&server, &fleet, 3);
    let gave_up = tokio::time::timeout(Duration::from_millis(50), client.token()).await;
    assert!(gave_up.is_err());
    assert_eq!(client.counters().fetches_abandoned, 1);
    let started = Instant::now();
    let token = client.token().await.unwrap();
    assert_eq!(token.access_token().expose_secret(), "token-1");
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(server.count("/token"), 1);
}
