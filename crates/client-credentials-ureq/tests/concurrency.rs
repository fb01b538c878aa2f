//! Many threads, one client: single flight, refresh without waiting, per-key tokens,
//! invalidation, and the helpers that attach a token.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use client_credentials_testkit::{
    Handler as _, Reply, Request, Router, Script, TestServer, TokenEndpoint,
};
use client_credentials_ureq::{Client, Config, Policy, Token, TokenParams};

fn client(server: &TestServer) -> Client {
    let config = Config::builder()
        .token_url(server.url("/token"))
        .client_id("my-service")
        .client_secret("s3cr3t")
        .build()
        .unwrap();
    Client::builder(config).seed(1).build()
}

fn value(token: &Token) -> &str {
    token.access_token().expose_secret()
}

#[test]
fn sixty_four_threads_on_a_cold_cache_make_one_request() {
    // The answer takes 300 ms, so that every thread arrives while the fetch is in flight.
    let endpoint = Arc::new(TokenEndpoint::new());
    let handler = Arc::clone(&endpoint);
    let server =
        TestServer::start(move |r: &Request| handler.handle(r).delay(Duration::from_millis(300)));
    let client = client(&server);
    let barrier = Arc::new(Barrier::new(64));
    let threads: Vec<_> = (0..64)
        .map(|_| {
            let client = client.clone();
            let barrier = Arc::clone(&barrier);
            thread::spawn(move || {
                barrier.wait();
                client.token().map(|t| value(&t).to_owned())
            })
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().unwrap().unwrap(), "token-1");
    }
    assert_eq!(server.count("/token"), 1);
    assert_eq!(endpoint.issued(), 1);
    let counters = client.counters();
    assert_eq!(counters.fetches_started, 1);
    assert_eq!(counters.fetches_succeeded, 1);
}

#[test]
fn one_failure_is_shared_by_every_waiter() {
    let server = TestServer::start(Reply::new(503).delay(Duration::from_millis(300)));
    let client = client(&server);
    let barrier = Arc::new(Barrier::new(16));
    let threads: Vec<_> = (0..16)
        .map(|_| {
            let client = client.clone();
            let barrier = Arc::clone(&barrier);
            thread::spawn(move || {
                barrier.wait();
                client.token().unwrap_err().to_string()
            })
        })
        .collect();
    for t in threads {
        assert!(t.join().unwrap().contains("503"));
    }
    assert_eq!(server.count("/token"), 1);
}

/// Tokens live 3 s and every answer takes 400 ms. Eight threads ask for tokens for 3.5 s,
/// across one or two refreshes. Once the first token has arrived, a valid token always
/// exists (refreshes start about 2 s into a token's 2.5 s usable life and land 400 ms later),
/// so no call may wait for the server: each must return in well under the 400 ms that
/// waiting would cost, and each must return a token that has not expired.
#[test]
fn across_expiry_under_load_no_caller_waits_while_a_valid_token_exists() {
    const ANSWER: Duration = Duration::from_millis(400);
    let endpoint = TokenEndpoint::new().lifetime(Duration::from_secs(3));
    let server = TestServer::start(move |r: &Request| endpoint.handle(r).delay(ANSWER));
    let config = Config::builder()
        .token_url(server.url("/token"))
        .client_id("my-service")
        .client_secret("s3cr3t")
        .build()
        .unwrap();
    let mut policy = Policy::default();
    policy.expiry_margin = Duration::from_millis(500);
    let client = Client::builder(config).policy(policy).seed(3).build();

    // The cold fetch: this caller waits, as it must.
    let first = client.token().unwrap();
    assert_eq!(value(&first), "token-1");
    let warm = Instant::now();

    let threads: Vec<_> = (0..8)
        .map(|_| {
            let client = client.clone();
            thread::spawn(move || {
                let mut slowest = Duration::ZERO;
                let mut seen = Vec::new();
                while warm.elapsed() < Duration::from_millis(3500) {
                    let started = Instant::now();
                    let token = client.token().unwrap();
                    slowest = slowest.max(started.elapsed());
                    assert!(
                        !token.expires_within(SystemTime::now(), Duration::ZERO),
                        "an expired token was served"
                    );
                    let v = value(&token).to_owned();
                    if seen.last() != Some(&v) {
                        seen.push(v);
                    }
                    thread::sleep(Duration::from_millis(5));
                }
                (slowest, seen)
            })
        })
        .collect();
    for t in threads {
        let (slowest, seen) = t.join().unwrap();
        assert!(
            slowest < ANSWER / 2,
            "a caller waited {slowest:?} while a valid token existed"
        );
        // Tokens only move forward, and the refreshes were picked up.
        assert!(seen.len() >= 2, "{seen:?}");
        let mut sorted = seen.clone();
        sorted.sort_by_key(|v| v.trim_start_matches("token-").parse::<u32>().unwrap());
        assert_eq!(seen, sorted);
    }
    // One request per refresh: 3.9 s of tokens refreshed about 2 s after each request is
    // one or two refreshes, never one per caller.
    let requests = server.count("/token");
    assert!((2..=3).contains(&requests), "{requests} token requests");
    let counters = client.counters();
    assert_eq!(counters.fetches_failed, 0);
    assert_eq!(counters.fetches_timed_out, 0);
}

/// The refresh of a 3 s token (usable 2.5 s) starts after about 2 s and its answer never
/// comes while the test runs. Callers that wait for it would block for seconds; none may.
#[test]
fn callers_never_wait_for_a_refresh_in_flight() {
    let server = TestServer::start(
        Script::new()
            .once(TokenEndpoint::new().lifetime(Duration::from_secs(3)))
            .then(
                Reply::token("token-2", Some(Duration::from_secs(3))).delay(Duration::from_secs(5)),
            ),
    );
    let config = Config::builder()
        .token_url(server.url("/token"))
        .client_id("my-service")
        .client_secret("s3cr3t")
        .build()
        .unwrap();
    let mut policy = Policy::default();
    policy.expiry_margin = Duration::from_millis(500);
    let client = Client::builder(config).policy(policy).seed(9).build();
    let started = Instant::now();
    assert_eq!(value(&client.token().unwrap()), "token-1");

    let threads: Vec<_> = (0..8)
        .map(|_| {
            let client = client.clone();
            thread::spawn(move || {
                let mut slowest = Duration::ZERO;
                while started.elapsed() < Duration::from_millis(2300) {
                    let call = Instant::now();
                    assert_eq!(value(&client.token().unwrap()), "token-1");
                    slowest = slowest.max(call.elapsed());
                    thread::sleep(Duration::from_millis(5));
                }
                slowest
            })
        })
        .collect();
    for t in threads {
        let slowest = t.join().unwrap();
        assert!(
            slowest < Duration::from_secs(1),
            "a caller waited {slowest:?}"
        );
    }
    assert_eq!(server.count("/token"), 2, "the refresh is in flight");
    let counters = client.counters();
    assert_eq!(counters.fetches_started, 2);
    assert_eq!(counters.fetches_succeeded, 1);
}

#[test]
fn different_request_shapes_never_share_a_token() {
    let server = TestServer::start(TokenEndpoint::new());
    let client = client(&server);
    let plain = client.token().unwrap();
    let read = client
        .token_for(&TokenParams::new().scopes(["orders.read"]))
        .unwrap();
    let audience = client
        .token_for(&TokenParams::new().audience("https://api.example.com"))
        .unwrap();
    let resource = client
        .token_for(&TokenParams::new().resource("https://a.example.com/"))
        .unwrap();
    let values = [&plain, &read, &audience, &resource].map(|t| value(t).to_owned());
    let mut unique = values.to_vec();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 4, "{values:?}");
    assert_eq!(server.count("/token"), 4);

    // Each shape is cached on its own; the same scopes in another order are the same shape.
    let again = client
        .token_for(&TokenParams::new().scopes(["orders.read"]))
        .unwrap();
    assert_eq!(value(&again), value(&read));
    assert_eq!(value(&client.token().unwrap()), value(&plain));
    let two = client
        .token_for(&TokenParams::new().scopes(["a", "b"]))
        .unwrap();
    let swapped = client
        .token_for(&TokenParams::new().scopes(["b", "a"]))
        .unwrap();
    assert_eq!(value(&two), value(&swapped));
    assert_eq!(server.count("/token"), 5);

    let sent = server.requests();
    assert_eq!(sent[0].param("scope"), None);
    assert_eq!(sent[1].param("scope").as_deref(), Some("orders.read"));
    assert_eq!(
        sent[2].param("audience").as_deref(),
        Some("https://api.example.com")
    );
    assert_eq!(
        sent[3].param("resource").as_deref(),
        Some("https://a.example.com/")
    );
    let counters = client
        .counters_for(&TokenParams::new().scopes(["orders.read"]))
        .unwrap();
    assert_eq!(counters.fetches_started, 1);
    assert_eq!(counters.fetches_succeeded, 1);
}

#[test]
fn invalidate_drops_only_the_rejected_token() {
    let server = TestServer::start(TokenEndpoint::new());
    let client = client(&server);
    let first = client.token().unwrap();
    assert!(client.invalidate(first.access_token()));
    // Many threads report the same rejection: only the first one counts.
    assert!(!client.invalidate(first.access_token()));
    let second = client.token().unwrap();
    assert_eq!(value(&second), "token-2");
    assert!(!client.invalidate(first.access_token()), "already replaced");
    assert_eq!(value(&client.token().unwrap()), "token-2");
    assert_eq!(server.count("/token"), 2);

    // A token of another shape is found in its own session.
    let scoped = client.token_for(&TokenParams::new().scopes(["x"])).unwrap();
    assert!(client.invalidate(scoped.access_token()));
    assert_eq!(value(&client.token().unwrap()), "token-2");
}

#[test]
fn force_refresh_fetches_a_new_token() {
    let server = TestServer::start(TokenEndpoint::new());
    let client = client(&server);
    let first = client.token().unwrap();
    client.force_refresh();
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut latest = client.token().unwrap();
    while value(&latest) == value(&first) && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(10));
        latest = client.token().unwrap();
    }
    assert_eq!(value(&latest), "token-2");
    assert_eq!(server.count("/token"), 2);
}

#[test]
fn authorize_attaches_the_token() {
    let server = TestServer::start(
        Router::new().route("/token", TokenEndpoint::new()).route(
            "/api",
            Script::new()
                .once(Reply::new(401).header("www-authenticate", "Bearer"))
                .then(Reply::new(204)),
        ),
    );
    let client = client(&server);

    let mut request = http::Request::get(server.url("/api")).body(()).unwrap();
    let token = client.authorize(&mut request).unwrap();
    let header = &request.headers()["authorization"];
    assert_eq!(header, "Bearer token-1");
    assert!(header.is_sensitive());
    assert_eq!(value(&token), "token-1");

    // A ureq request: send it, get the 401, invalidate, try once more.
    let agent = client_credentials_ureq::ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .new_agent();
    let (request, token) = client
        .authorize_ureq(agent.get(server.url("/api")))
        .unwrap();
    let response = request.call().unwrap();
    assert_eq!(response.status(), 401);
    assert!(client.invalidate(token.access_token()));
    let (request, _) = client
        .authorize_ureq(agent.get(server.url("/api")))
        .unwrap();
    assert_eq!(request.call().unwrap().status(), 204);

    let api: Vec<_> = server
        .requests()
        .into_iter()
        .filter(|r| r.path == "/api")
        .collect();
    assert_eq!(api[0].header("authorization"), Some("Bearer token-1"));
    assert_eq!(api[1].header("authorization"), Some("Bearer token-2"));
    assert_eq!(server.count("/token"), 2);
}

#[test]
fn a_failed_refresh_keeps_serving_the_valid_token_until_its_usable_life_ends() {
    let server = TestServer::start(
        Script::new()
            .once(TokenEndpoint::new().lifetime(Duration::from_secs(3)))
            .then(Reply::new(503)),
    );
    let config = Config::builder()
        .token_url(server.url("/token"))
        .client_id("my-service")
        .client_secret("s3cr3t")
        .build()
        .unwrap();
    let mut policy = Policy::default();
    policy.expiry_margin = Duration::from_millis(500);
    policy.initial_backoff = Duration::from_millis(100);
    let client = Client::builder(config).policy(policy).seed(5).build();
    let started = Instant::now();
    assert_eq!(value(&client.token().unwrap()), "token-1");
    // Usable for 2.5 s; the refresh starts after about 2 s and fails, in the background.
    while started.elapsed() < Duration::from_millis(2300) {
        assert_eq!(value(&client.token().unwrap()), "token-1");
        thread::sleep(Duration::from_millis(10));
    }
    assert!(server.count("/token") >= 2, "the refresh was tried");
    // Once the usable life is over, the shared error comes back.
    thread::sleep(Duration::from_millis(400));
    let error = client.token().unwrap_err();
    assert!(error.to_string().contains("503"), "{error}");
    assert!(error.is_retryable());
}

#[test]
fn the_client_is_send_sync_and_cheap_to_clone() {
    fn assert_send_sync_clone<T: Send + Sync + Clone + 'static>() {}
    assert_send_sync_clone::<Client>();
    assert_send_sync_clone::<client_credentials_ureq::Error>();
}
