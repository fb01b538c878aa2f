//! The store against a real Redis, within one process: separate clients stand for separate
//! processes (each has its own sessions, so they share only through Redis). Scopes never
//! share a token, values are encrypted when a key is set and the plain record otherwise,
//! garbage is a miss, and an unreachable or silent Redis changes nothing.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

mod support;

use std::net::{Ipv4Addr, TcpListener};
use std::time::{Duration, Instant};

use client_credentials_redis::{EncryptionKey, RedisStore};
use client_credentials_testkit::{TestServer, TokenEndpoint};
use client_credentials_ureq::{Client, Config, TokenParams};
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

#[test]
#[ignore = "needs redis-server: run cargo xtask test"]
fn another_process_takes_the_shared_token_without_a_request() {
    let redis = RedisServer::start();
    let server = TestServer::start(TokenEndpoint::new());
    let store = RedisStore::new(&redis.url()).unwrap();
    let first = client(&server, &store).token().unwrap();
    let second_client = client(&server, &RedisStore::new(&redis.url()).unwrap());
    let second = second_client.token().unwrap();
    assert_eq!(second.access_token(), first.access_token());
    assert_eq!(server.count("/token"), 1);
    let c = second_client.counters();
    assert_eq!((c.fetches_shared, c.fetches_succeeded), (1, 0));
    // The lock was released by its owner.
    let request = config(&server).default_request();
    assert_eq!(raw(&redis, &store.lock_key(&request)), None);
}

#[test]
#[ignore = "needs redis-server: run cargo xtask test"]
fn different_scopes_never_share_a_token() {
    let redis = RedisServer::start();
    let server = TestServer::start(TokenEndpoint::new());
    let store = RedisStore::new(&redis.url()).unwrap();
    let reports = TokenParams::new().scopes(["reports.read"]);
    let orders = TokenParams::new().scopes(["orders.read"]);

    let a = client(&server, &store).token_for(&reports).unwrap();
    let b = client(&server, &store).token_for(&orders).unwrap();
    assert_ne!(a.access_token(), b.access_token());
    assert_eq!(server.count("/token"), 2);
    assert_eq!(a.scopes(), ["reports.read"]);
    assert_eq!(b.scopes(), ["orders.read"]);

    let cfg = config(&server);
    let key_a = store.token_key(&cfg.request(&reports).unwrap());
    let key_b = store.token_key(&cfg.request(&orders).unwrap());
    assert_ne!(key_a, key_b);
    assert!(raw(&redis, &key_a).is_some() && raw(&redis, &key_b).is_some());

    // A third process asking for one scope gets that scope's token, and only that one.
    let c = client(&server, &store);
    assert_eq!(
        c.token_for(&reports).unwrap().access_token(),
        a.access_token()
    );
    assert_eq!(
        c.token_for(&orders).unwrap().access_token(),
        b.access_token()
    );
    // The default shape (no scope) is yet another entry.
    let d = c.token().unwrap();
    assert!(d.access_token() != a.access_token() && d.access_token() != b.access_token());
    assert_eq!(server.count("/token"), 3);
}

#[test]
#[ignore = "needs redis-server: run cargo xtask test"]
fn the_plain_record_is_the_cores_json() {
    let redis = RedisServer::start();
    let server = TestServer::start(TokenEndpoint::new());
    let store = RedisStore::new(&redis.url()).unwrap();
    let token = client(&server, &store).token().unwrap();
    let key = store.token_key(&config(&server).default_request());
    let value: serde_json::Value = serde_json::from_slice(&raw(&redis, &key).unwrap()).unwrap();
    assert_eq!(value["v"], 1);
    assert_eq!(value["access_token"], token.access_token().expose_secret());
    assert_eq!(value["lifetime_ms"], 3_600_000);
    // Kept while usable: under the lifetime, well over most of it.
    let ttl: i64 = redis::cmd("PTTL")
        .arg(&key)
        .query(&mut redis.connection())
        .unwrap();
    assert!((3_500_000..=3_590_000).contains(&ttl), "{ttl}");
}

#[test]
#[ignore = "needs redis-server: run cargo xtask test"]
fn the_stored_value_is_encrypted_when_a_key_is_set() {
    let redis = RedisServer::start();
    let server = TestServer::start(TokenEndpoint::new());
    let sealed = |key: [u8; 32]| {
        RedisStore::builder(&redis.url())
            .encryption_key(EncryptionKey::new("k1", key).unwrap())
            .build()
            .unwrap()
    };
    let store = sealed([7; 32]);
    let token = client(&server, &store).token().unwrap();
    let key = store.token_key(&config(&server).default_request());
    let value = raw(&redis, &key).unwrap();
    let text = String::from_utf8(value.clone()).unwrap();
    assert!(
        !text.contains(token.access_token().expose_secret()),
        "{text}"
    );
    let envelope: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(envelope["alg"], "chacha20poly1305");
    assert_eq!(envelope["kid"], "k1");
    assert!(envelope.get("access_token").is_none());

    // Another process with the key takes it.
    let same = client(&server, &sealed([7; 32])).token().unwrap();
    assert_eq!(same.access_token(), token.access_token());
    assert_eq!(server.count("/token"), 1);

    // One without the key, or with another key under the same id, cannot read it: a miss,
    // a fetch of its own, never an error.
    let plain = client(&server, &RedisStore::new(&redis.url()).unwrap())
        .token()
        .unwrap();
    assert_ne!(plain.access_token(), token.access_token());
    let wrong = client(&server, &sealed([8; 32])).token().unwrap();
    assert_ne!(wrong.access_token(), token.access_token());
    assert_eq!(server.count("/token"), 3);

    // A value moved to another key does not open there (the key is associated data).
    let other = store.token_key(
        &config(&server)
            .request(&TokenParams::new().scopes(["x"]))
            .unwrap(),
    );
    let current = raw(&redis, &key).unwrap();
    redis::cmd("SET")
        .arg(&other)
        .arg(current)
        .query::<()>(&mut redis.connection())
        .unwrap();
    // (The value was last written by the store with key 8.)
    let moved = client(&server, &sealed([8; 32]))
        .token_for(&TokenParams::new().scopes(["x"]))
        .unwrap();
    assert_eq!(moved.scopes(), ["x"]);
    assert_eq!(server.count("/token"), 4);
}

#[test]
#[ignore = "needs redis-server: run cargo xtask test"]
fn garbage_in_the_key_is_a_miss_and_is_overwritten() {
    let redis = RedisServer::start();
    let server = TestServer::start(TokenEndpoint::new());
    let store = RedisStore::new(&redis.url()).unwrap();
    let key = store.token_key(&config(&server).default_request());
    let mut conn = redis.connection();
    let garbage: [&[u8]; 5] = [
        b"garbage",
        b"{\"v\":1}",
        b"\xff\xfe\x00",
        br#"{"v":1,"access_token":"evil token","token_type":"Bearer","issued_at_ms":0,"scope_source":"granted"}"#,
        &[b'x'; 70_000],
    ];
    for (i, value) in garbage.iter().enumerate() {
        redis::cmd("SET")
            .arg(&key)
            .arg(*value)
            .query::<()>(&mut conn)
            .unwrap();
        let token = client(&server, &store).token().unwrap();
        assert_eq!(
            token.access_token().expose_secret(),
            format!("token-{}", i + 1)
        );
        let stored: serde_json::Value =
            serde_json::from_slice(&raw(&redis, &key).unwrap()).unwrap();
        assert_eq!(stored["access_token"], token.access_token().expose_secret());
    }
    // A key of another type: the read is refused by Redis, the write replaces it.
    redis::cmd("DEL").arg(&key).query::<()>(&mut conn).unwrap();
    redis::cmd("RPUSH")
        .arg(&key)
        .arg("x")
        .query::<()>(&mut conn)
        .unwrap();
    assert!(client(&server, &store).token().is_ok());
    assert!(raw(&redis, &key).is_some());
    assert!(!store.is_unavailable());
}

#[test]
#[ignore = "needs redis-server: run cargo xtask test"]
fn a_rejected_token_is_not_handed_back_by_the_store() {
    let redis = RedisServer::start();
    let server = TestServer::start(TokenEndpoint::new());
    let store = RedisStore::new(&redis.url()).unwrap();
    let a = client(&server, &store);
    let b = client(&server, &store);
    let first = a.token().unwrap();
    assert_eq!(b.token().unwrap().access_token(), first.access_token());
    // A resource server rejects it: b drops it, and the store's copy is not taken back.
    assert!(b.invalidate(first.access_token()));
    let fresh = b.token().unwrap();
    assert_ne!(fresh.access_token(), first.access_token());
    assert_eq!(server.count("/token"), 2);
    // a, at its next refresh, or after its own 401, finds the fresh one.
    assert!(a.invalidate(first.access_token()));
    assert_eq!(a.token().unwrap().access_token(), fresh.access_token());
    assert_eq!(server.count("/token"), 2);
}

#[tokio::test]
#[ignore = "needs redis-server: run cargo xtask test"]
async fn the_async_client_shares_with_the_blocking_one() {
    let redis = RedisServer::start();
    let server = TestServer::start(TokenEndpoint::new());
    let store = RedisStore::new(&redis.url()).unwrap();
    let async_client = client_credentials_reqwest::Client::builder(config(&server))
        .shared_store(store.clone())
        .build()
        .unwrap();
    let token = async_client.token().await.unwrap();
    // The write happens in its own task, after the caller got its token.
    let key = store.token_key(&config(&server).default_request());
    let deadline = Instant::now() + Duration::from_secs(5);
    while raw(&redis, &key).is_none() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let blocking = client(&server, &store);
    let shared = tokio::task::spawn_blocking(move || blocking.token().unwrap())
        .await
        .unwrap();
    assert_eq!(shared.access_token(), token.access_token());
    assert_eq!(server.count("/token"), 1);
}

#[test]
fn an_unreachable_redis_changes_nothing() {
    let port = support::free_port();
    let store = RedisStore::new(&format!("redis://127.0.0.1:{port}/")).unwrap();
    let server = TestServer::start(TokenEndpoint::new());
    let a = client(&server, &store);
    let started = Instant::now();
    assert!(a.token().is_ok());
    assert!(store.is_unavailable());
    // A second client on the same store does not even try while Redis counts as down.
    assert!(client(&server, &store).token().is_ok());
    assert_eq!(server.count("/token"), 2);
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[test]
fn a_silent_redis_costs_at_most_its_timeouts() {
    // Accepts connections (the kernel's backlog) and never answers.
    let silent = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let port = silent.local_addr().unwrap().port();
    let store = RedisStore::builder(&format!("redis://127.0.0.1:{port}/"))
        .connect_timeout(Duration::from_millis(200))
        .response_timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let server = TestServer::start(TokenEndpoint::new());
    let started = Instant::now();
    assert!(client(&server, &store).token().is_ok());
    let took = started.elapsed();
    assert!(took < Duration::from_secs(2), "{took:?}");
    assert!(store.is_unavailable());
    assert_eq!(server.count("/token"), 1);
    drop(silent);
}

#[test]
fn debug_shows_no_secret() {
    let store = RedisStore::builder("redis://:hunter2@127.0.0.1:6379/")
        .encryption_key(EncryptionKey::new("k1", [9; 32]).unwrap())
        .build()
        .unwrap();
    let shown = format!("{store:?}");
    assert!(
        !shown.contains("hunter2") && shown.contains("encrypted: true"),
        "{shown}"
    );
    let error = RedisStore::new("http://:hunter2@nowhere/").unwrap_err();
    assert!(!format!("{error} {error:?}").contains("hunter2"));
}
