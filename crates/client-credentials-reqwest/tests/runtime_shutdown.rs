//! A refresh handed to a spawned task that never runs (its runtime shut down first) is
//! reported abandoned, so that a caller in another runtime refreshes at once instead of
//! waiting for the session's `request_timeout` backstop (30 s).
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

use std::time::{Duration, Instant};

use client_credentials_reqwest::{Client, Config};
use client_credentials_testkit::{Router, TestServer, TokenEndpoint};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn refresh_dropped_unpolled_with_its_runtime_is_abandoned() {
    let server = TestServer::start(Router::new().route("/token", TokenEndpoint::new()));
    let config = Config::builder()
        .token_url(server.url("/token"))
        .client_id("my-service")
        .client_secret("s3cr3t")
        .build()
        .unwrap();
    let client = Client::builder(config).seed(1).build().unwrap();

    let first = runtime();
    let token = first.block_on(client.token()).unwrap();
    assert_eq!(token.access_token().expose_secret(), "token-1");
    client.force_refresh();
    // The cached token comes back at once and the refresh is spawned; `block_on` returns
    // as soon as its own future is ready, so on this current-thread runtime the refresh
    // task is never polled, and dropping the runtime drops it.
    let still = first.block_on(client.token()).unwrap();
    assert_eq!(still.access_token().expose_secret(), "token-1");
    drop(first);
    assert_eq!(server.count("/token"), 1, "the refresh task ran after all");
    assert_eq!(client.counters().fetches_abandoned, 1);

    // Another runtime's caller starts the refresh again: it lands well before the 30 s
    // backstop would have freed the session.
    let second = runtime();
    second.block_on(async {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let token = client.token().await.unwrap();
            if token.access_token().expose_secret() == "token-2" {
                break;
            }
            assert!(Instant::now() < deadline, "the refresh never happened");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });
    assert_eq!(server.count("/token"), 2);
}
