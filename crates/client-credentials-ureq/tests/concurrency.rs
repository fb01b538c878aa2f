//! Many threads, one client: single flight, refresh without waiting, per-key tokens,
//! invalidation, and the helpers that attach a token.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Condvar, Mutex};
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

/// Holds the token endpoint's requests until the test lets them through: request `i` (0 is
/// the first) is answered once [`Gate::allow`] was given more than `i`. A refresh is then
/// provably in flight for as long as the test needs, whatever the load on the machine, and a
/// caller that waited for it would block until the test lets it go.
struct Gate {
    allowed: Mutex<usize>,
    changed: Condvar,
}

impl Gate {
    /// No held request outlives this, so that a failed test cannot hang.
    const LONGEST_HOLD: Duration = Duration::from_secs(20);

    fn new(allowed: usize) -> Arc<Self> {
        Arc::new(Self {
            allowed: Mutex::new(allowed),
            changed: Condvar::new(),
        })
    }

    fn allow(&self, n: usize) {
        *self.allowed.lock().unwrap() = n;
        self.changed.notify_all();
    }

    /// Blocks the request with this index until it is allowed through.
    fn pass(&self, index: usize) {
        let allowed = self.allowed.lock().unwrap();
        drop(
            self.changed
                .wait_timeout_while(allowed, Self::LONGEST_HOLD, |allowed| index >= *allowed)
                .unwrap(),
        );
    }
}

/// Lets every held request through and stops the callers when the test ends, failed or not.
struct Teardown(Arc<Gate>, Arc<AtomicBool>);

impl Drop for Teardown {
    fn drop(&mut self) {
        self.1.store(true, Ordering::SeqCst);
        self.0.allow(usize::MAX);
    }
}

/// Whether `done` became true within `within`, polling.
fn within(within: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(2));
    }
}

fn number(token: &Token) -> usize {
    value(token).trim_start_matches("token-").parse().unwrap()
}

/// Tokens live 4 s and are usable for 2.5 s (a 1.5 s margin); refreshes start at half the
/// usable life (1.125 s to 1.25 s after each request). Eight threads ask for tokens without
/// pause across two refreshes. The endpoint holds each refresh until the test lets it through:
/// the refresh is then provably in flight while the callers keep calling, and a caller that
/// waited for it would block until the hold ends. The test ends the hold only once every
/// caller has completed several calls, all served the valid token (with a deadline of 1 s,
/// which leaves more than a second of the token's usable life, and is a hundred times what
/// the calls take). Each call must return a token that has not expired, every caller must
/// pick up each refresh, and each refresh must be one request for all callers.
#[test]
fn across_expiry_under_load_no_caller_waits_while_a_valid_token_exists() {
    const CALLERS: usize = 8;
    let endpoint = TokenEndpoint::new().lifetime(Duration::from_secs(4));
    // The cold fetch is answered at once, every refresh is held.
    let gate = Gate::new(1);
    let server = TestServer::start({
        let gate = Arc::clone(&gate);
        move |r: &Request| {
            gate.pass(r.index);
            endpoint.handle(r)
        }
    });
    let config = Config::builder()
        .token_url(server.url("/token"))
        .client_id("my-service")
        .client_secret("s3cr3t")
        .build()
        .unwrap();
    let mut policy = Policy::default();
    policy.expiry_margin = Duration::from_millis(1500);
    policy.refresh_ratio = 0.5;
    let client = Client::builder(config).policy(policy).seed(3).build();

    // The cold fetch: this caller waits, as it must.
    let first = client.token().unwrap();
    assert_eq!(value(&first), "token-1");

    let stop = Arc::new(AtomicBool::new(false));
    let _teardown = Teardown(Arc::clone(&gate), Arc::clone(&stop));
    let calls: Arc<Vec<AtomicUsize>> =
        Arc::new((0..CALLERS).map(|_| AtomicUsize::new(0)).collect());
    let latest: Arc<Vec<AtomicUsize>> =
        Arc::new((0..CALLERS).map(|_| AtomicUsize::new(1)).collect());
    let threads: Vec<_> = (0..CALLERS)
        .map(|i| {
            let (client, stop, calls, latest) = (
                client.clone(),
                Arc::clone(&stop),
                Arc::clone(&calls),
                Arc::clone(&latest),
            );
            thread::spawn(move || {
                let mut seen = Vec::new();
                while !stop.load(Ordering::SeqCst) {
                    let token = client.token().unwrap();
                    assert!(
                        !token.expires_within(SystemTime::now(), Duration::ZERO),
                        "an expired token was served"
                    );
                    let n = number(&token);
                    if seen.last() != Some(&n) {
                        seen.push(n);
                    }
                    latest[i].store(n, Ordering::SeqCst);
                    calls[i].fetch_add(1, Ordering::SeqCst);
                    thread::sleep(Duration::from_millis(5));
                }
                seen
            })
        })
        .collect();

    for refresh in 1..=2 {
        // Request `refresh` is the refresh of token-`refresh`: wait until it is held.
        assert!(
            server.wait_for_requests(refresh + 1, Duration::from_secs(10)),
            "refresh {refresh} never started"
        );
        let before: Vec<usize> = calls.iter().map(|c| c.load(Ordering::SeqCst)).collect();
        let served = within(Duration::from_secs(1), || {
            calls
                .iter()
                .zip(&before)
                .all(|(c, b)| c.load(Ordering::SeqCst) >= b + 3)
        });
        let requests = server.count("/token");
        let tokens: Vec<usize> = latest.iter().map(|l| l.load(Ordering::SeqCst)).collect();
        gate.allow(refresh + 1);
        assert!(
            served,
            "a caller waited for refresh {refresh} while token-{refresh} was valid"
        );
        assert!(tokens.iter().all(|&n| n == refresh), "{tokens:?}");
        // Single flight: eight callers polling while the refresh was due, one request.
        assert_eq!(
            requests,
            refresh + 1,
            "token requests during refresh {refresh}"
        );
        // Every caller picks the new token up (the next refresh is held).
        assert!(
            within(Duration::from_secs(5), || latest
                .iter()
                .all(|l| l.load(Ordering::SeqCst) == refresh + 1)),
            "token-{} was not picked up by every caller",
            refresh + 1
        );
    }
    stop.store(true, Ordering::SeqCst);
    for t in threads {
        // Tokens only move forward, and each caller saw both refreshes.
        assert_eq!(t.join().unwrap(), [1, 2, 3]);
    }
    // The refresh of token-3, if it started, is still held.
    let counters = client.counters();
    assert_eq!(counters.fetches_succeeded, 3);
    assert_eq!(counters.fetches_failed, 0);
    assert_eq!(counters.fetches_timed_out, 0);
}

/// The refresh of a 3 s token (usable 2.5 s) starts at half its usable life (1.125 s to
/// 1.25 s) and its answer stalls for 5 s. Callers keep calling until the refresh is in flight
/// and then some, which ends more than a second before the token's usable life does: a
/// caller that waited for the refresh would block for seconds; none may.
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
    policy.refresh_ratio = 0.5;
    let client = Client::builder(config).policy(policy).seed(9).build();
    assert_eq!(value(&client.token().unwrap()), "token-1");
    let server = Arc::new(server);

    let threads: Vec<_> = (0..8)
        .map(|_| {
            let client = client.clone();
            let server = Arc::clone(&server);
            thread::spawn(move || {
                let deadline = Instant::now() + Duration::from_secs(10);
                let mut slowest = Duration::ZERO;
                let mut after_refresh = 0;
                while after_refresh < 5 {
                    assert!(Instant::now() < deadline, "the refresh never started");
                    let in_flight = server.request_count() >= 2;
                    let call = Instant::now();
                    assert_eq!(value(&client.token().unwrap()), "token-1");
                    slowest = slowest.max(call.elapsed());
                    if in_flight {
                        after_refresh += 1;
                    }
                    thread::sleep(Duration::from_millis(5));
                }
                slowest
            })
        })
        .collect();
    for t in threads {
        let slowest = t.join().unwrap();
        // Waiting for the refresh would cost seconds; a cached call, even on a loaded
        // machine, a few milliseconds.
        assert!(
            slowest < Duration::from_secs(2),
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
    policy.refresh_ratio = 0.5;
    policy.initial_backoff = Duration::from_millis(100);
    let client = Client::builder(config).policy(policy).seed(5).build();
    assert_eq!(value(&client.token().unwrap()), "token-1");
    let received = Instant::now();
    // Usable for 2.5 s; the refresh starts at half of that (1.125 s to 1.25 s) and fails, in
    // the background. Calls go on until it has failed and a few more were served, which
    // ends more than a second before the usable life does.
    let deadline = received + Duration::from_secs(2);
    let mut after_failure = 0;
    while after_failure < 5 {
        assert!(Instant::now() < deadline, "the refresh never failed");
        let failed = client.counters().fetches_failed >= 1;
        assert_eq!(value(&client.token().unwrap()), "token-1");
        if failed {
            after_failure += 1;
        }
        thread::sleep(Duration::from_millis(10));
    }
    assert!(server.count("/token") >= 2, "the refresh was tried");
    // Once the usable life is over (2.5 s after the request, which was sent before
    // `received`), the shared error comes back.
    thread::sleep(
        (received + Duration::from_millis(2700)).saturating_duration_since(Instant::now()),
    );
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
