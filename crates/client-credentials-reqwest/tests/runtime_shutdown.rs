//! Runtimes: a refresh handed to a spawned task that never runs (its runtime shut down
//! first) is reported abandoned, so that a caller in another runtime refreshes at once
//! instead of waiting for the `request_timeout` backstop (30 s); and a client polled outside
//! any runtime never panics.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

use std::time::{Duration, Instant};

use client_credentials_reqwest::{Client, Config, Error, reqwest};
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

/// Polls `future` to completion on this thread, with no runtime at all: a waker that
/// unparks the thread, as the simplest executor would.
fn block_on_without_runtime<F: std::future::Future>(future: F) -> F::Output {
    use std::task::{Context, Poll, Wake, Waker};

    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: std::sync::Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(std::sync::Arc::new(Unpark(std::thread::current())));
    let mut context = Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut context) {
            return output;
        }
        std::thread::park_timeout(Duration::from_millis(50));
    }
}

#[test]
fn outside_a_runtime_nothing_panics_and_a_send_is_a_typed_error() {
    let server = TestServer::start(Router::new().route("/token", TokenEndpoint::new()));
    let config = Config::builder()
        .token_url(server.url("/token"))
        .client_id("my-service")
        .client_secret("s3cr3t")
        .build()
        .unwrap();
    let client = Client::builder(config)
        .background_refresh(true)
        .seed(2)
        .build()
        .unwrap();

    // A cold cache: the fetch cannot be sent from here, and says why.
    let error = block_on_without_runtime(client.token()).unwrap_err();
    assert!(matches!(error, Error::NoRuntime), "{error:?}");
    assert_eq!(server.count("/token"), 0);
    assert_eq!(client.counters().fetches_abandoned, 1);
    let error = block_on_without_runtime(
        client.send_authorized(reqwest::Client::new().get(server.url("/api"))),
    )
    .unwrap_err();
    assert!(matches!(error, Error::NoRuntime), "{error:?}");

    // In a runtime the send is taken over at once (nothing waits for a backstop).
    let token = runtime().block_on(client.token()).unwrap();
    assert_eq!(token.access_token().expose_secret(), "token-1");
    assert!(client.next_refresh().is_some_and(|at| at > Instant::now()));
    assert!(client.last_error().is_none());

    // A cached token needs no runtime; a refresh that cannot start here is handed back
    // while the caller keeps its token.
    let hit = block_on_without_runtime(client.token()).unwrap();
    assert_eq!(hit.access_token(), token.access_token());
    client.force_refresh();
    let still = block_on_without_runtime(client.token()).unwrap();
    assert_eq!(still.access_token(), token.access_token());
    assert_eq!(server.count("/token"), 1);
    assert_eq!(client.counters().fetches_abandoned, 2);
    let refreshed = runtime().block_on(async {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let token = client.token().await.unwrap();
            if token.access_token().expose_secret() == "token-2" {
                return token;
            }
            assert!(Instant::now() < deadline, "the refresh never happened");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });
    assert_eq!(refreshed.access_token().expose_secret(), "token-2");
}
