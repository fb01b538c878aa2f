//! Many callers, one client: single flight, refresh without waiting, per-key tokens,
//! invalidation, forced refresh, and the helper that attaches a token.
//!
//! The stampede tests start their callers with [`Harness::concurrent_tokens`] (threads for a
//! blocking client, tasks for an async one); the tests whose callers loop run them on
//! threads, each calling the blocking harness.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use client_credentials_core::session::Policy;
use client_credentials_core::{Config, Token, TokenParams};

use super::{Harness, HarnessOptions, value};
use crate::{Handler as _, Reply, Request, Router, Script, TestServer, TokenEndpoint};

fn config(server: &TestServer) -> Config {
    Config::builder()
        .token_url(server.url("/token"))
        .client_id("my-service")
        .client_secret("s3cr3t")
        .build()
        .unwrap()
}

fn client<H: Harness>(server: &TestServer) -> H {
    H::build(config(server), &HarnessOptions::new().seed(1))
}

fn number(token: &Token) -> usize {
    value(token).trim_start_matches("token-").parse().unwrap()
}

/// Every caller arrives while the one fetch is in flight (the answer takes 300 ms): one
/// request, one token for all, every waiter served it.
pub fn many_callers_on_a_cold_cache_make_one_request<H: Harness>() {
    let endpoint = Arc::new(TokenEndpoint::new());
    let handler = Arc::clone(&endpoint);
    let server =
        TestServer::start(move |r: &Request| handler.handle(r).delay(Duration::from_millis(300)));
    let client = client::<H>(&server);
    let answers = client.concurrent_tokens(H::CALLERS);
    assert_eq!(answers.len(), H::CALLERS);
    for answer in answers {
        assert_eq!(value(&answer.unwrap()), "token-1");
    }
    assert_eq!(server.count("/token"), 1);
    assert_eq!(endpoint.issued(), 1);
    let counters = client.counters();
    assert_eq!(counters.fetches_started, 1);
    assert_eq!(counters.fetches_succeeded, 1);
    assert!(
        counters.cache_hits >= u64::try_from(H::CALLERS).unwrap() - 1,
        "every waiter was served the one token: {counters:?}"
    );
}

/// One failed fetch (the answer takes 300 ms) is the answer of every caller waiting for it.
///
/// The 503 asks for two minutes of quiet, so that a caller that a loaded machine starts only
/// after the answer came meets that backoff, with the same error, rather than a jittered
/// one that may already be over: one request whatever the scheduling.
pub fn one_failure_is_shared_by_every_waiter<H: Harness>() {
    let server = TestServer::start(
        Reply::new(503)
            .header("retry-after", "120")
            .delay(Duration::from_millis(300)),
    );
    let client = client::<H>(&server);
    for answer in client.concurrent_tokens(H::CALLERS) {
        assert!(answer.unwrap_err().to_string().contains("503"));
    }
    assert_eq!(server.count("/token"), 1);
}

/// Holds the token endpoint's requests until the test lets them through: request `i` (0 is
/// the first) is answered once [`Gate::allow`] was given more than `i`. A refresh is then
/// provably in flight for as long as the test needs, whatever the load on the machine, and a
/// caller that waited for it would block until the test lets it go. Call [`Gate::pass`]
/// with the request's index from the server's handler.
#[derive(Debug)]
pub struct Gate {
    allowed: Mutex<usize>,
    changed: Condvar,
}

impl Gate {
    /// No held request outlives this, so that a failed test cannot hang.
    const LONGEST_HOLD: Duration = Duration::from_secs(20);

    /// A gate that lets the first `allowed` requests through.
    #[must_use]
    pub fn new(allowed: usize) -> Arc<Self> {
        Arc::new(Self {
            allowed: Mutex::new(allowed),
            changed: Condvar::new(),
        })
    }

    /// Lets the first `n` requests through (`usize::MAX`: all).
    pub fn allow(&self, n: usize) {
        *self.allowed.lock().unwrap() = n;
        self.changed.notify_all();
    }

    /// Blocks (a server thread) until the request with this index is allowed through.
    pub fn pass(&self, index: usize) {
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

/// Tokens live 4 s and are usable for 2.5 s (a 1.5 s margin); refreshes start at half the
/// usable life (1.125 s to 1.25 s after each request). Eight callers ask for tokens without
/// pause across two refreshes. The endpoint holds each refresh until the test lets it through:
/// the refresh is then provably in flight while the callers keep calling, and a caller that
/// waited for it would block until the hold ends. The test ends the hold only once every
/// caller has completed several calls, all served the valid token (with a deadline of 1 s,
/// which leaves more than a second of the token's usable life, and is a hundred times what
/// the calls take). Each call must return a token that has not expired, every caller must
/// pick up each refresh, and each refresh must be one request for all callers.
pub fn across_expiry_under_load_no_caller_waits_while_a_valid_token_exists<H: Harness>() {
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
    let mut policy = Policy::default();
    policy.expiry_margin = Duration::from_millis(1500);
    policy.refresh_ratio = 0.5;
    let client = H::build(
        config(&server),
        &HarnessOptions::new().policy(policy).seed(3),
    );

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
pub fn callers_never_wait_for_a_refresh_in_flight<H: Harness>() {
    let server = TestServer::start(
        Script::new()
            .once(TokenEndpoint::new().lifetime(Duration::from_secs(3)))
            .then(
                Reply::token("token-2", Some(Duration::from_secs(3))).delay(Duration::from_secs(5)),
            ),
    );
    let mut policy = Policy::default();
    policy.expiry_margin = Duration::from_millis(500);
    policy.refresh_ratio = 0.5;
    let client = H::build(
        config(&server),
        &HarnessOptions::new().policy(policy).seed(9),
    );
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

/// Scopes, audience and resource each make their own cache entry; the same scopes in
/// another order are the same entry.
pub fn different_request_shapes_never_share_a_token<H: Harness>() {
    let server = TestServer::start(TokenEndpoint::new());
    let client = client::<H>(&server);
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

/// `invalidate` drops the rejected token once, never its replacement, and finds a token of
/// another shape in its own entry.
pub fn invalidate_drops_only_the_rejected_token<H: Harness>() {
    let server = TestServer::start(TokenEndpoint::new());
    let client = client::<H>(&server);
    let first = client.token().unwrap();
    assert!(client.invalidate(first.access_token()));
    // Many callers report the same rejection: only the first one counts.
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

/// A forced refresh fetches a new token while callers keep getting the valid one; invalid
/// parameters are refused.
pub fn force_refresh_fetches_a_new_token_without_making_callers_wait<H: Harness>() {
    let server = TestServer::start(TokenEndpoint::new());
    let client = client::<H>(&server);
    let first = client.token().unwrap();
    client.force_refresh();
    // The refresh runs on its own; this caller still gets the valid token.
    assert_eq!(value(&client.token().unwrap()), value(&first));
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut latest = client.token().unwrap();
    while value(&latest) == value(&first) && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(10));
        latest = client.token().unwrap();
    }
    assert_eq!(value(&latest), "token-2");
    assert_eq!(server.count("/token"), 2);

    client
        .force_refresh_for(&TokenParams::new().scopes(["x"]))
        .unwrap();
    assert!(
        client
            .force_refresh_for(&TokenParams::new().scopes(["has space"]))
            .is_err()
    );
}

/// `authorize` sets a sensitive `Authorization: Bearer` header; after an invalidation, it
/// attaches the fresh token.
pub fn authorize_attaches_the_token<H: Harness>() {
    let server = TestServer::start(
        Router::new().route("/token", TokenEndpoint::new()).route(
            "/api",
            Script::new()
                .once(Reply::new(401).header("www-authenticate", "Bearer"))
                .then(Reply::new(204)),
        ),
    );
    let client = client::<H>(&server);

    let mut request = http::Request::get(server.url("/api")).body(()).unwrap();
    let token = client.authorize(&mut request).unwrap();
    let header = &request.headers()["authorization"];
    assert_eq!(header, "Bearer token-1");
    assert!(header.is_sensitive());
    assert_eq!(token.expose_secret(), "token-1");

    // The resource server rejected it: invalidate, and the next request gets a fresh one.
    assert!(client.invalidate(&token));
    let mut request = http::Request::get(server.url("/api")).body(()).unwrap();
    let fresh = client.authorize(&mut request).unwrap();
    assert_eq!(request.headers()["authorization"], "Bearer token-2");
    assert_eq!(fresh.expose_secret(), "token-2");
    assert_eq!(server.count("/token"), 2);
}

/// A refresh that fails in the background leaves the valid token served until its usable
/// life ends; then the shared error comes back.
pub fn a_failed_refresh_keeps_serving_the_valid_token_until_its_usable_life_ends<H: Harness>() {
    let server = TestServer::start(
        Script::new()
            .once(TokenEndpoint::new().lifetime(Duration::from_secs(3)))
            .then(Reply::new(503)),
    );
    let mut policy = Policy::default();
    policy.expiry_margin = Duration::from_millis(500);
    policy.refresh_ratio = 0.5;
    policy.initial_backoff = Duration::from_millis(100);
    let client = H::build(
        config(&server),
        &HarnessOptions::new().policy(policy).seed(5),
    );
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

/// A service that builds request shapes from its input (a scope per tenant) cannot grow the
/// cache without bound: 10 000 distinct scope sets through `token_for` leave it at the
/// policy's `max_keys`, and the shape used between them all keeps its one token.
pub fn the_cache_stays_bounded_and_a_used_shape_is_never_evicted<H: Harness>() {
    let server = TestServer::start(TokenEndpoint::new());
    let mut policy = Policy::default();
    policy.max_keys = 100;
    let client = H::build(
        config(&server),
        &HarnessOptions::new().seed(3).policy(policy),
    );
    let hot = client.token().unwrap();
    for n in 0..10_000 {
        let params = TokenParams::new().scopes([format!("tenant-{n}")]);
        client.token_for(&params).unwrap();
        assert_eq!(
            value(&client.token().unwrap()),
            value(&hot),
            "after shape {n}"
        );
        assert!(
            client.cached_shapes() <= 100,
            "{} shapes",
            client.cached_shapes()
        );
    }
    assert_eq!(client.cached_shapes(), 100);
    assert_eq!(server.count("/token"), 10_001);
    assert_eq!(client.counters().fetches_started, 1);
}

/// Asking about a shape (counters, a forced refresh) never creates it: with room for one
/// shape, the default one is never evicted by reads of another.
pub fn reads_never_create_a_cache_entry<H: Harness>() {
    let server = TestServer::start(TokenEndpoint::new());
    let mut policy = Policy::default();
    policy.max_keys = 1;
    let client = H::build(
        config(&server),
        &HarnessOptions::new().seed(5).policy(policy),
    );
    let first = client.token().unwrap();
    let other = TokenParams::new().scopes(["reports.read"]);
    assert_eq!(client.counters_for(&other).unwrap().fetches_started, 0);
    client.force_refresh_for(&other).unwrap();
    assert_eq!(client.cached_shapes(), 1);
    assert_eq!(value(&client.token().unwrap()), value(&first));
    assert_eq!(server.count("/token"), 1);
}
