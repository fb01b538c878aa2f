//! Cancellation, which only futures have: a sender whose task is aborted or whose future is
//! dropped by a timeout leaves nothing in flight, and a revocation dropped halfway has
//! already dropped its token.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

use std::time::{Duration, Instant};

use client_credentials_reqwest::{Client, Config, Token};
use client_credentials_testkit::{Reply, Router, Script, TestServer, TokenEndpoint};

fn client(server: &TestServer) -> Client {
    let config = Config::builder()
        .token_url(server.url("/token"))
        .client_id("my-service")
        .client_secret("s3cr3t")
        .build()
        .unwrap();
    Client::builder(config).seed(1).build().unwrap()
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

/// The first sender's request stalls for 20 s. Its task is aborted while another task waits
/// for that very request: the waiter must take over and send, not wait 20 s (or the
/// session's 30 s backstop).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_aborted_sender_hands_over_to_a_waiter() {
    let server = TestServer::start(
        Script::new()
            .once(
                Reply::token("never-delivered", Some(Duration::from_secs(60)))
                    .delay(Duration::from_secs(20)),
            )
            .then(TokenEndpoint::new()),
    );
    let client = client(&server);

    let sender = tokio::spawn({
        let client = client.clone();
        async move { client.token().await }
    });
    until_requests(&server, 1).await;
    let waiter = tokio::spawn({
        let client = client.clone();
        async move { client.token().await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        !waiter.is_finished(),
        "the waiter waits for the request in flight"
    );

    let aborted_at = Instant::now();
    sender.abort();
    assert!(sender.await.unwrap_err().is_cancelled());
    let token = tokio::time::timeout(Duration::from_secs(5), waiter)
        .await
        .expect("the waiter waited for an abandoned request")
        .unwrap()
        .unwrap();
    assert_eq!(value(&token), "token-1");
    assert!(aborted_at.elapsed() < Duration::from_secs(2));
    assert_eq!(server.count("/token"), 2);
    let counters = client.counters();
    assert_eq!(counters.fetches_abandoned, 1);
    assert_eq!(counters.fetches_succeeded, 1);
    assert_eq!(counters.fetches_timed_out, 0);
}

/// A sender whose future is dropped by a timeout (the other common cancellation) leaves no
/// stuck request behind: the next caller, arriving later, sends at once.
#[tokio::test]
async fn a_timed_out_caller_leaves_nothing_in_flight() {
    let server = TestServer::start(
        Script::new()
            .once(
                Reply::token("never-delivered", Some(Duration::from_secs(60)))
                    .delay(Duration::from_secs(20)),
            )
            .then(TokenEndpoint::new()),
    );
    let client = client(&server);
    let gave_up = tokio::time::timeout(Duration::from_millis(200), client.token()).await;
    assert!(gave_up.is_err());
    let started = Instant::now();
    let token = client.token().await.unwrap();
    assert_eq!(value(&token), "token-1");
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(client.counters().fetches_abandoned, 1);
}

/// A token endpoint at `/token`, `revoke` at `/revoke` and `introspect` at `/introspect`.
fn start(revoke: impl client_credentials_testkit::Handler, introspect: Reply) -> TestServer {
    TestServer::start(
        Router::new()
            .route(
                "/token",
                TokenEndpoint::new().client("my-service", "s3cr3t"),
            )
            .route("/revoke", revoke)
            .route("/introspect", introspect),
    )
}

#[tokio::test]
async fn a_cancelled_revocation_has_already_dropped_the_token() {
    let server = start(
        Reply::new(200).delay(Duration::from_secs(20)),
        Reply::new(500),
    );
    let config = Config::builder()
        .token_url(server.url("/token"))
        .revocation_url(server.url("/revoke"))
        .client_id("my-service")
        .client_secret("s3cr3t")
        .build()
        .unwrap();
    let client = Client::builder(config).seed(3).build().unwrap();
    let first = client.token().await.unwrap();
    let revoke = client.revoke(first.access_token());
    assert!(
        tokio::time::timeout(Duration::from_millis(200), revoke)
            .await
            .is_err()
    );
    assert_eq!(server.count("/revoke"), 1);
    assert_ne!(
        client.token().await.unwrap().access_token(),
        first.access_token()
    );
    assert_eq!(server.count("/token"), 2);
}
