//! Many tasks, one client: single flight, cancellation, refresh without waiting, background
//! refresh across expiry, per-key tokens, invalidation, and the helpers that attach a token.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant, SystemTime};

use client_credentials_reqwest::{Client, Config, Policy, Token, TokenParams};
use client_credentials_testkit::{
    Handler as _, Reply, Request, Router, Script, TestServer, TokenEndpoint,
};
use tokio::sync::Barrier;

fn config(server: &TestServer) -> Config {
    Config::builder()
        .token_url(server.url("/token"))
        .client_id("my-service")
        .client_secret("s3cr3t")
        .build()
        .unwrap()
}

fn client(server: &TestServer) -> Client {
    Client::builder(config(server)).seed(1).build().unwrap()
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

/// Holds the token endpoint's requests until the test lets them through: request `i` (0 is
/// the first) is answered once [`Gate::allow`] was given more than `i`. While it holds, a
/// call that needed the server would block until the hold ends.
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

    /// Blocks (a server thread) until the request with this index is allowed through.
    fn pass(&self, index: usize) {
        let allowed = self.allowed.lock().unwrap();
        drop(
            self.changed
                .wait_timeout_while(allowed, Self::LONGEST_HOLD, |allowed| index >= *allowed)
                .unwrap(),
        );
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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thousand_tasks_on_a_cold_cache_make_one_request() {
    // The answer takes 300 ms, so that every task arrives while the fetch is in flight.
    let endpoint = Arc::new(TokenEndpoint::new());
    let handler = Arc::clone(&endpoint);
    let server =
        TestServer::start(move |r: &Request| handler.handle(r).delay(Duration::from_millis(300)));
    let client = client(&server);
    let barrier = Arc::new(Barrier::new(1000));
    let tasks: Vec<_> = (0..1000)
        .map(|_| {
            let client = client.clone();
            let barrier = Arc::clone(&barrier);
            tokio::spawn(async move {
                barrier.wait().await;
                client.token().await.map(|t| value(&t).to_owned())
            })
        })
        .collect();
    for task in tasks {
        let token = tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .expect("a task waited forever")
            .unwrap()
            .unwrap();
        assert_eq!(token, "token-1");
    }
    assert_eq!(server.count("/token"), 1);
    assert_eq!(endpoint.issued(), 1);
    let counters = client.counters();
    assert_eq!(counters.fetches_started, 1);
    assert_eq!(counters.fetches_succeeded, 1);
    assert!(
        counters.cache_hits >= 999,
        "every waiter was served the one token"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_failure_is_shared_by_every_waiter() {
    let server = TestServer::start(Reply::new(503).delay(Duration::from_millis(300)));
    let client = client(&server);
    let tasks: Vec<_> = (0..64)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { client.token().await.unwrap_err().to_string() })
        })
        .collect();
    for task in tasks {
        assert!(task.await.unwrap().contains("503"));
    }
    assert_eq!(server.count("/token"), 1);
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

/// The refresh of a 3 s token (usable 2.5 s) starts at half its usable life (1.125 s to
/// 1.25 s) and its answer stalls for 5 s. Callers keep calling until the refresh is in flight
/// and then some, which ends more than a second before the token's usable life does: a
/// caller that waited for the refresh would wait seconds; none may.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callers_never_wait_for_a_refresh_in_flight() {
    let server = TestServer::start(
        Script::new()
            .once(TokenEndpoint::new().lifetime(Duration::from_secs(3)))
            .then(
                Reply::token("token-2", Some(Duration::from_secs(3))).delay(Duration::from_secs(5)),
            ),
    );
    let mut policy = short_token_policy();
    policy.refresh_ratio = 0.5;
    let client = Client::builder(config(&server))
        .policy(policy)
        .seed(9)
        .build()
        .unwrap();
    assert_eq!(value(&client.token().await.unwrap()), "token-1");
    let server = Arc::new(server);

    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let client = client.clone();
            let server = Arc::clone(&server);
            tokio::spawn(async move {
                let deadline = Instant::now() + Duration::from_secs(10);
                let mut slowest = Duration::ZERO;
                let mut after_refresh = 0;
                while after_refresh < 5 {
                    assert!(Instant::now() < deadline, "the refresh never started");
                    let in_flight = server.request_count() >= 2;
                    let call = Instant::now();
                    assert_eq!(value(&client.token().await.unwrap()), "token-1");
                    slowest = slowest.max(call.elapsed());
                    if in_flight {
                        after_refresh += 1;
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                slowest
            })
        })
        .collect();
    for task in tasks {
        let slowest = task.await.unwrap();
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

#[tokio::test]
async fn different_request_shapes_never_share_a_token() {
    let server = TestServer::start(TokenEndpoint::new());
    let client = client(&server);
    let plain = client.token().await.unwrap();
    let read = client
        .token_for(&TokenParams::new().scopes(["orders.read"]))
        .await
        .unwrap();
    let audience = client
        .token_for(&TokenParams::new().audience("https://api.example.com"))
        .await
        .unwrap();
    let resource = client
        .token_for(&TokenParams::new().resource("https://a.example.com/"))
        .await
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
        .await
        .unwrap();
    assert_eq!(value(&again), value(&read));
    assert_eq!(value(&client.token().await.unwrap()), value(&plain));
    let two = client
        .token_for(&TokenParams::new().scopes(["a", "b"]))
        .await
        .unwrap();
    let swapped = client
        .token_for(&TokenParams::new().scopes(["b", "a"]))
        .await
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

#[tokio::test]
async fn invalidate_drops_only_the_rejected_token() {
    let server = TestServer::start(TokenEndpoint::new());
    let client = client(&server);
    let first = client.token().await.unwrap();
    assert!(client.invalidate(first.access_token()));
    // Many tasks report the same rejection: only the first one counts.
    assert!(!client.invalidate(first.access_token()));
    let second = client.token().await.unwrap();
    assert_eq!(value(&second), "token-2");
    assert!(!client.invalidate(first.access_token()), "already replaced");
    assert_eq!(value(&client.token().await.unwrap()), "token-2");
    assert_eq!(server.count("/token"), 2);

    // A token of another shape is found in its own session.
    let scoped = client
        .token_for(&TokenParams::new().scopes(["x"]))
        .await
        .unwrap();
    assert!(client.invalidate(scoped.access_token()));
    assert_eq!(value(&client.token().await.unwrap()), "token-2");
}

#[tokio::test]
async fn force_refresh_fetches_a_new_token_without_making_callers_wait() {
    let server = TestServer::start(TokenEndpoint::new());
    let client = client(&server);
    let first = client.token().await.unwrap();
    client.force_refresh();
    // The refresh runs in its own task; this caller still gets the valid token.
    assert_eq!(value(&client.token().await.unwrap()), value(&first));
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut latest = client.token().await.unwrap();
    while value(&latest) == value(&first) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
        latest = client.token().await.unwrap();
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

#[tokio::test]
async fn authorize_helpers_attach_the_token() {
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
    let token = client.authorize(&mut request).await.unwrap();
    let header = &request.headers()["authorization"];
    assert_eq!(header, "Bearer token-1");
    assert!(header.is_sensitive());
    assert_eq!(value(&token), "token-1");

    // A reqwest request: send it, get the 401, invalidate, try once more.
    let http = client_credentials_reqwest::reqwest::Client::new();
    let (request, token) = client
        .authorize_reqwest(http.get(server.url("/api")))
        .await
        .unwrap();
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 401);
    assert!(client.invalidate(token.access_token()));
    let (request, _) = client
        .authorize_reqwest(http.get(server.url("/api")))
        .await
        .unwrap();
    assert_eq!(request.send().await.unwrap().status(), 204);

    let api: Vec<_> = server
        .requests()
        .into_iter()
        .filter(|r| r.path == "/api")
        .collect();
    assert_eq!(api[0].header("authorization"), Some("Bearer token-1"));
    assert_eq!(api[1].header("authorization"), Some("Bearer token-2"));
    assert_eq!(server.count("/token"), 2);
}

#[tokio::test]
async fn a_failed_refresh_keeps_serving_the_valid_token_until_its_usable_life_ends() {
    let server = TestServer::start(
        Script::new()
            .once(TokenEndpoint::new().lifetime(Duration::from_secs(3)))
            .then(Reply::new(503)),
    );
    let mut policy = short_token_policy();
    policy.refresh_ratio = 0.5;
    policy.initial_backoff = Duration::from_millis(100);
    let client = Client::builder(config(&server))
        .policy(policy)
        .seed(5)
        .build()
        .unwrap();
    assert_eq!(value(&client.token().await.unwrap()), "token-1");
    let received = Instant::now();
    // Usable for 2.5 s; the refresh starts at half of that (1.125 s to 1.25 s) and fails, in
    // the background. Calls go on until it has failed and a few more were served, which
    // ends more than a second before the usable life does.
    let deadline = received + Duration::from_secs(2);
    let mut after_failure = 0;
    while after_failure < 5 {
        assert!(Instant::now() < deadline, "the refresh never failed");
        let failed = client.counters().fetches_failed >= 1;
        assert_eq!(value(&client.token().await.unwrap()), "token-1");
        if failed {
            after_failure += 1;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(server.count("/token") >= 2, "the refresh was tried");
    // Once the usable life is over (2.5 s after the request, which was sent before
    // `received`), the shared error comes back.
    tokio::time::sleep_until((received + Duration::from_millis(2700)).into()).await;
    let error = client.token().await.unwrap_err();
    assert!(error.to_string().contains("503"), "{error}");
    assert!(error.is_retryable());
}

#[test]
fn the_client_and_its_futures_are_send_sync() {
    fn assert_send_sync_clone<T: Send + Sync + Clone + 'static>() {}
    fn assert_send<T: Send>(_: &T) {}
    assert_send_sync_clone::<Client>();
    assert_send_sync_clone::<client_credentials_reqwest::Error>();
    assert_send_sync_clone::<client_credentials_reqwest::AuthMiddleware>();
    let config = Config::builder()
        .token_url("https://auth.example.com/token")
        .client_id("c")
        .client_secret("s")
        .build()
        .unwrap();
    let client = Client::new(config).unwrap();
    // The futures can be spawned on a multi-threaded runtime.
    assert_send(&client.token());
    assert_send(&client.token_for(&TokenParams::new()));
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

/// Reading the cache never grows it: with room for one request shape, asking about another
/// shape (counters, last error, next refresh, a forced refresh) evicts nothing.
#[tokio::test]
async fn getters_and_force_refresh_for_create_no_cache_entry() {
    let server = TestServer::start(TokenEndpoint::new());
    let mut policy = Policy::default();
    policy.max_keys = 1;
    let client = Client::builder(config(&server))
        .policy(policy)
        .seed(5)
        .build()
        .unwrap();
    assert_eq!(value(&client.token().await.unwrap()), "token-1");
    let other = TokenParams::new().scopes(["reports.read"]);
    assert_eq!(client.counters_for(&other).unwrap().fetches_started, 0);
    assert!(client.last_error_for(&other).unwrap().is_none());
    assert!(client.next_refresh_for(&other).unwrap().is_none());
    client.force_refresh_for(&other).unwrap();
    assert_eq!(value(&client.token().await.unwrap()), "token-1");
    assert_eq!(server.count("/token"), 1);
    assert_eq!(client.counters().cache_hits, 2); // the poll after the fetch, and the second call
}
