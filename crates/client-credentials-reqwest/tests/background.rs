//! Background refresh, which lives in a tokio task: it keeps callers off the network across
//! expiry, stops with the last client handle, and moves to the next runtime when its own
//! shuts down.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use client_credentials_reqwest::{Client, Config, Policy, Token};
use client_credentials_testkit::conformance::concurrency::Gate;
use client_credentials_testkit::{Handler as _, Request, TestServer, TokenEndpoint};

fn config(server: &TestServer) -> Config {
    Config::builder()
        .token_url(server.url("/token"))
        .client_id("my-service")
        .client_secret("s3cr3t")
        .build()
        .unwrap()
}

/// A policy for tokens of a few seconds: a 500 ms expiry margin (a 3 s token is usable for
/// 2.5 s and refreshed from about 1.8 s on).
fn short_token_policy() -> Policy {
    let mut policy = Policy::default();
    policy.expiry_margin = Duration::from_millis(500);
    policy
}

fn value(token: &Token) -> &str {
    token.access_token().expose_secret()
}

/// Waits (without blocking the runtime) until the server has read `n` requests.
async fn until_requests(server: &TestServer, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while server.request_count() < n {
        assert!(
            Instant::now() < deadline,
            "the server never saw {n} requests"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Lets every held request through when the test ends, failed or not.
struct OpenOnDrop(Arc<Gate>);

impl Drop for OpenOnDrop {
    fn drop(&mut self) {
        self.0.allow(usize::MAX);
    }
}

/// Waits (without blocking the runtime) until `done`, for at most `within`; whether it came.
async fn within(within: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    while !done() {
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    true
}

/// Tokens live 4 s (usable 3.5 s, refreshed from about 2.5 s on) and every answer takes
/// 600 ms. The caller asks only after each token's usable life is over: with background
/// refresh, the token was renewed meanwhile and the call is served from the cache; without,
/// the call has to wait for the server.
///
/// With background refresh, the test first waits, without calling, until the background task
/// has renewed the token, then holds every further request at the endpoint while the caller
/// asks: a call served from the cache returns at once, a call that went to the server would
/// block until the hold ends (20 s), far beyond the 2 s it is given.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn background_refresh_keeps_callers_off_the_network_across_expiry() {
    const ANSWER: Duration = Duration::from_millis(600);
    const USABLE: Duration = Duration::from_millis(3500);
    for background in [true, false] {
        let gate = Gate::new(usize::MAX);
        let _open = OpenOnDrop(Arc::clone(&gate));
        let endpoint = TokenEndpoint::new().lifetime(Duration::from_secs(4));
        let server = TestServer::start({
            let gate = Arc::clone(&gate);
            move |r: &Request| {
                gate.pass(r.index);
                endpoint.handle(r).delay(ANSWER)
            }
        });
        let client = Client::builder(config(&server))
            .policy(short_token_policy())
            .background_refresh(background)
            .seed(11)
            .build()
            .unwrap();
        assert_eq!(value(&client.token().await.unwrap()), "token-1");

        for renewed in 2..=3 {
            // The token being replaced was requested before the server read its request.
            let requested = server.requests()[renewed - 2].received_at;
            if background {
                assert!(
                    within(Duration::from_secs(10), || client
                        .counters()
                        .fetches_succeeded
                        >= renewed as u64)
                    .await,
                    "the background task never fetched token-{renewed}"
                );
                gate.allow(server.request_count());
            } else {
                assert_eq!(
                    server.count("/token"),
                    1,
                    "renewed without background refresh"
                );
            }
            // Past the usable life of the token being replaced.
            tokio::time::sleep_until((requested + USABLE + Duration::from_millis(200)).into())
                .await;
            let call = Instant::now();
            if background {
                let token = tokio::time::timeout(Duration::from_secs(2), client.token())
                    .await
                    .expect("a caller went to the server with background refresh")
                    .unwrap();
                assert_eq!(value(&token), format!("token-{renewed}"));
                assert!(!token.expires_within(SystemTime::now(), Duration::from_secs(1)));
                if renewed < 3 {
                    gate.allow(usize::MAX);
                }
            } else {
                assert_eq!(value(&client.token().await.unwrap()), "token-2");
                let waited = call.elapsed();
                assert!(
                    waited >= ANSWER,
                    "waited only {waited:?} without background refresh"
                );
                break;
            }
        }
        if background {
            // One request per token, none by a caller (the next refresh, if it started, is
            // held).
            let counters = client.counters();
            assert_eq!(counters.fetches_succeeded, 3);
            assert_eq!(counters.fetches_failed, 0);
        }
    }
}

/// The background task holds the client only weakly: once the last handle is dropped, no
/// further refresh is made.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn background_refresh_stops_with_the_last_client_handle() {
    let server = TestServer::start(TokenEndpoint::new().lifetime(Duration::from_secs(2)));
    let mut policy = Policy::default();
    policy.expiry_margin = Duration::from_millis(200);
    let client = Client::builder(config(&server))
        .policy(policy)
        .background_refresh(true)
        .seed(13)
        .build()
        .unwrap();
    let clone = client.clone();
    assert_eq!(value(&client.token().await.unwrap()), "token-1");
    drop(client);
    // One handle left: the task keeps refreshing (every 1.3 s to 1.44 s).
    until_requests(&server, 2).await;
    let at_drop = server.count("/token");
    drop(clone);
    tokio::time::sleep(Duration::from_millis(3000)).await;
    // A task that kept going would refresh twice in these 3 s; a refresh the task had already
    // sent when the handle was dropped may still arrive, however late.
    assert!(
        server.count("/token") <= at_drop + 1,
        "refreshed after the client was dropped: {} requests, {at_drop} at the drop",
        server.count("/token")
    );
}

/// The background task lives in the runtime of the call that started it. When that runtime
/// shuts down, the next call from another runtime starts it again.
#[test]
fn background_refresh_moves_to_the_next_runtime() {
    // Once the new task has renewed the token, every further request is held: a caller that
    // had to fetch would block for as long as the hold lasts (20 s).
    let gate = Gate::new(usize::MAX);
    let _open = OpenOnDrop(Arc::clone(&gate));
    let endpoint = TokenEndpoint::new().lifetime(Duration::from_secs(2));
    let server = TestServer::start({
        let gate = Arc::clone(&gate);
        move |r: &Request| {
            gate.pass(r.index);
            endpoint.handle(r).delay(Duration::from_millis(300))
        }
    });
    let mut policy = Policy::default();
    policy.expiry_margin = Duration::from_millis(200);
    let client = Client::builder(config(&server))
        .policy(policy)
        .background_refresh(true)
        .seed(17)
        .build()
        .unwrap();
    let runtime = || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    };
    let first = runtime().block_on(client.token()).unwrap();
    let received = Instant::now();
    assert_eq!(value(&first), "token-1");
    // That runtime is gone, and its background task with it.
    runtime().block_on(async {
        assert_eq!(value(&client.token().await.unwrap()), "token-1");
        // No caller asks again: only the new background task can fetch token-2 (its refresh
        // starts 1.3 s to 1.44 s after the first request).
        assert!(
            within(Duration::from_secs(10), || client
                .counters()
                .fetches_succeeded
                >= 2)
            .await,
            "the new runtime's background task never refreshed"
        );
        gate.allow(server.request_count());
        // Past the first token's usable life (1.8 s after it was requested).
        tokio::time::sleep_until((received + Duration::from_millis(2000)).into()).await;
        // A cache hit: a fetch would be held far longer than this.
        let token = tokio::time::timeout(Duration::from_secs(2), client.token())
            .await
            .expect("the caller went to the server")
            .unwrap();
        assert_eq!(value(&token), "token-2");
    });
    assert_eq!(client.counters().fetches_succeeded, 2);
}
