//! A fleet sharing tokens through Redis (feature `redis`): three replicas, each with its own
//! client and store as separate processes would have, against the embedded authorization
//! server (`client_credentials::embedded`, feature `embedded-server`) on 127.0.0.1, set to
//! issue 3-second tokens. The fleet makes one token request per refresh period where
//! the replicas alone would make three.
//!
//! ```text
//! cargo run --example redis_fleet
//! ```
//!
//! It starts its own `redis-server` on a free loopback port (Debian: `apt-get install
//! redis-server`), and says so and exits if there is none. In a real service, the store
//! points at your Redis and the key comes from your secret store.
#![allow(clippy::print_stdout)] // an example shows what it does on stdout

use std::error::Error;
use std::io;
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use client_credentials::embedded::{EmbeddedServer, Route};
use client_credentials::redis::{EncryptionKey, RedisStore};
use client_credentials::ureq::{Client, Config, Policy};

fn main() -> Result<(), Box<dyn Error>> {
    let Some(redis) = LocalRedis::start()? else {
        println!("redis-server is not installed (Debian: apt-get install redis-server); skipped.");
        return Ok(());
    };
    let server = EmbeddedServer::builder()
        .client("billing-service", "s3cr3t", ["orders.read"])
        .token_lifetime(Duration::from_secs(3))
        .start()?;
    let config = Config::builder()
        .token_url(server.token_url())
        .client_id("billing-service")
        .client_secret("s3cr3t")
        .build()?;
    // Every replica needs the same key; a real one comes from a secret store.
    let mut key = [0_u8; 32];
    getrandom::fill(&mut key)?;
    let key = EncryptionKey::new("example-1", key)?;
    // Short-lived demo tokens: a half-second margin instead of the default ten.
    let mut policy = Policy::default();
    policy.expiry_margin = Duration::from_millis(500);

    let replicas = (0..3)
        .map(|_| {
            let store = RedisStore::builder(&redis.url())
                .prefix("redis-fleet-example")
                .encryption_key(key.clone())
                .build()?;
            Ok(Client::builder(config.clone())
                .policy(policy.clone())
                .shared_store(store)
                .build())
        })
        .collect::<Result<Vec<_>, client_credentials::redis::Error>>()?;

    let run = Duration::from_secs(6);
    println!("3 replicas x 10 threads asking for a token every 50 ms for {run:?}…");
    let started = Instant::now();
    thread::scope(|s| {
        for client in &replicas {
            for _ in 0..10 {
                s.spawn(move || {
                    while started.elapsed() < run {
                        if let Err(e) = client.token() {
                            println!("error: {e}");
                        }
                        thread::sleep(Duration::from_millis(50));
                    }
                });
            }
        }
    });

    for (i, client) in replicas.iter().enumerate() {
        let c = client.counters();
        println!(
            "replica {i}: {} tokens fetched itself, {} taken from Redis, {} cache hits",
            c.fetches_succeeded, c.fetches_shared, c.cache_hits
        );
    }
    println!(
        "token requests at the endpoint: {} (each replica alone would have made about {})",
        server.requests(Route::Token),
        3 * (1 + run.as_millis() / 1900)
    );
    Ok(())
}

/// A `redis-server` on a free loopback port, without persistence, killed on drop.
struct LocalRedis {
    child: Child,
    port: u16,
}

impl LocalRedis {
    /// `None` when `redis-server` is not installed.
    fn start() -> io::Result<Option<Self>> {
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
            .local_addr()?
            .port();
        let spawned = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--loglevel", "warning"])
            .arg("--dir")
            .arg(std::env::temp_dir())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn();
        let child = match spawned {
            Ok(child) => child,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let redis = Self { child, port };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err() {
            if Instant::now() > deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "redis-server did not start",
                ));
            }
            thread::sleep(Duration::from_millis(20));
        }
        Ok(Some(redis))
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }
}

impl Drop for LocalRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
