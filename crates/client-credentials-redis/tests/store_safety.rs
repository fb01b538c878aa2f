//! The store against a real Redis, where Redis or the network misbehaves: a lock whose
//! `SET NX` reply is lost is still this process's lock, and a plain record written by
//! someone else is adopted only if the client would have taken that token from its token
//! endpoint (its type, its expiry, a lifetime capped at the parser's).
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

mod support;

use std::io::{Read as _, Write as _};
use std::net::{Ipv4Addr, Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use client_credentials_core::MAX_LIFETIME;
use client_credentials_redis::RedisStore;
use client_credentials_testkit::{TestServer, TokenEndpoint};
use client_credentials_ureq::{Client, Config};
use support::RedisServer;

fn config(server: &TestServer) -> Config {
    Config::builder()
        .token_url(server.url("/token"))
        .client_id("fleet")
        .client_secret("s3cr3t")
        .build()
        .unwrap()
}

fn client(server: &TestServer, store: &RedisStore) -> Client {
    Client::builder(config(server))
        .shared_store(store.clone())
        .build()
}

fn raw(redis: &RedisServer, key: &str) -> Option<Vec<u8>> {
    redis::cmd("GET")
        .arg(key)
        .query(&mut redis.connection())
        .unwrap()
}

/// A TCP relay in front of Redis that, once, forwards the first command naming `needle`
/// and then cuts the connection without relaying Redis's answer: the command ran, its
/// reply was lost. Every other byte is relayed as it is.
struct LossyRelay {
    port: u16,
    tripped: Arc<AtomicBool>,
}

impl LossyRelay {
    fn start(redis: &RedisServer, needle: &str) -> Self {
        let upstream: u16 = redis
            .url()
            .trim_start_matches("redis://127.0.0.1:")
            .trim_end_matches('/')
            .parse()
            .unwrap();
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let tripped = Arc::new(AtomicBool::new(false));
        let needle = needle.as_bytes().to_vec();
        let trip = Arc::clone(&tripped);
        thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                let Ok(server) = TcpStream::connect((Ipv4Addr::LOCALHOST, upstream)) else {
                    return;
                };
                relay(client, server, needle.clone(), Arc::clone(&trip));
            }
        });
        Self { port, tripped }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    fn tripped(&self) -> bool {
        self.tripped.load(Ordering::SeqCst)
    }
}

fn relay(mut client: TcpStream, mut server: TcpStream, needle: Vec<u8>, trip: Arc<AtomicBool>) {
    let muted = Arc::new(AtomicBool::new(false));
    let (mut from_server, mut to_client) =
        (server.try_clone().unwrap(), client.try_clone().unwrap());
    let mute = Arc::clone(&muted);
    thread::spawn(move || {
        let mut buf = [0_u8; 16 * 1024];
        while let Ok(n @ 1..) = from_server.read(&mut buf) {
            if mute.load(Ordering::SeqCst) {
                continue; // The lost reply.
            }
            if to_client.write_all(&buf[..n]).is_err() {
                return;
            }
        }
        let _ = to_client.shutdown(Shutdown::Both);
    });
    thread::spawn(move || {
        let mut buf = [0_u8; 16 * 1024];
        while let Ok(n @ 1..) = client.read(&mut buf) {
            let chunk = &buf[..n];
            let hit = chunk.windows(needle.len()).any(|w| w == needle.as_slice());
            if hit && !trip.swap(true, Ordering::SeqCst) {
                // The client sends one command at a time, so nothing else is pending.
                muted.store(true, Ordering::SeqCst);
                let _ = server.write_all(chunk);
                thread::sleep(Duration::from_millis(200));
                let _ = client.shutdown(Shutdown::Both);
                let _ = server.shutdown(Shutdown::Both);
                return;
            }
            if server.write_all(chunk).is_err() {
                return;
            }
        }
        let _ = server.shutdown(Shutdown::Both);
    });
}

/// A lock and a wait far longer than the test may take: before the fix, the process waited
/// on its own lock until it expired.
fn patient_store(url: &str) -> RedisStore {
    RedisStore::builder(url)
        .lock_ttl(Duration::from_secs(60))
        .max_wait(Duration::from_secs(60))
        .build()
        .unwrap()
}

#[test]
#[ignore = "needs redis-server: run cargo xtask test"]
fn a_lock_whose_reply_was_lost_is_still_ours_blocking() {
    let redis = RedisServer::start();
    let server = TestServer::start(TokenEndpoint::new());
    let request = config(&server).default_request();
    let direct = RedisStore::new(&redis.url()).unwrap();
    let relay = LossyRelay::start(&redis, &direct.lock_key(&request));
    let store = patient_store(&relay.url());

    let started = Instant::now();
    let token = client(&server, &store).token().unwrap();
    assert!(relay.tripped(), "the lock command's reply was never cut");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "waited on its own lock"
    );
    assert_eq!(token.access_token().expose_secret(), "token-1");
    assert_eq!(server.count("/token"), 1);
    // Fetched under the lock: shared, and the lock released by its owner.
    assert!(raw(&redis, &direct.token_key(&request)).is_some());
    assert_eq!(raw(&redis, &direct.lock_key(&request)), None);
}

#[tokio::test]
#[ignore = "needs redis-server: run cargo xtask test"]
async fn a_lock_whose_reply_was_lost_is_still_ours_async() {
    let redis = RedisServer::start();
    let server = TestServer::start(TokenEndpoint::new());
    let request = config(&server).default_request();
    let direct = RedisStore::new(&redis.url()).unwrap();
    let relay = LossyRelay::start(&redis, &direct.lock_key(&request));
    let store = patient_store(&relay.url());
    let client = client_credentials_reqwest::Client::builder(config(&server))
        .shared_store(store)
        .build()
        .unwrap();

    let started = Instant::now();
    let token = client.token().await.unwrap();
    assert!(relay.tripped(), "the lock command's reply was never cut");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "waited on its own lock"
    );
    assert_eq!(token.access_token().expose_secret(), "token-1");
    assert_eq!(server.count("/token"), 1);
    // The token is written, and the lock released, in a task of their own.
    let deadline = Instant::now() + Duration::from_secs(10);
    while raw(&redis, &direct.lock_key(&request)).is_some() {
        assert!(Instant::now() < deadline, "the lock was never released");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(raw(&redis, &direct.token_key(&request)).is_some());
}

/// A plain record, as anyone with write access to Redis could write it.
fn forged(token_type: &str, lifetime_ms: Option<u64>) -> Vec<u8> {
    let now_ms = u64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap();
    let mut record = serde_json::json!({
        "v": 1,
        "access_token": "forged",
        "token_type": token_type,
        "issued_at_ms": now_ms,
        "scope_source": "granted",
    });
    if let Some(ms) = lifetime_ms {
        record["lifetime_ms"] = ms.into();
    }
    serde_json::to_vec(&record).unwrap()
}

#[test]
#[ignore = "needs redis-server: run cargo xtask test"]
fn a_stored_token_is_checked_as_an_endpoints_answer_would_be() {
    let redis = RedisServer::start();
    let server = TestServer::start(TokenEndpoint::new());
    let store = RedisStore::new(&redis.url()).unwrap();
    let key = store.token_key(&config(&server).default_request());
    let mut conn = redis.connection();
    let mut put = |value: Vec<u8>| {
        redis::cmd("SET")
            .arg(&key)
            .arg(value)
            .query::<()>(&mut conn)
            .unwrap();
    };

    // The control, and the reason to set an encryption key: a well-formed Bearer record
    // is taken without a request.
    put(forged("Bearer", Some(3_600_000)));
    let taken = client(&server, &store).token().unwrap();
    assert_eq!(taken.access_token().expose_secret(), "forged");
    assert_eq!(server.count("/token"), 0);

    // A token type the configuration does not accept, and no expiry where the
    // configuration gives every token one: misses, fetched and overwritten.
    for (i, value) in [forged("MAC", Some(3_600_000)), forged("Bearer", None)]
        .into_iter()
        .enumerate()
    {
        put(value);
        let token = client(&server, &store).token().unwrap();
        assert_eq!(
            token.access_token().expose_secret(),
            format!("token-{}", i + 1)
        );
    }
    assert_eq!(server.count("/token"), 2);

    // A lifetime beyond the parser's cap is capped.
    put(forged("Bearer", Some(u64::MAX / 2)));
    let capped = client(&server, &store).token().unwrap();
    assert_eq!(capped.access_token().expose_secret(), "forged");
    assert_eq!(capped.lifetime(), Some(MAX_LIFETIME));
    assert!(!store.is_unavailable());
}
