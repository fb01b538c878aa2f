//! A thousand threads against one blocking client, and the heap a client holds, against a
//! naive cache, with a loopback token endpoint in a child process that answers after 50 ms
//! (a typical token endpoint's latency) and counts the token requests it receives.
//!
//! - cold: 1 000 threads ask an empty cache for a token at the same moment;
//! - across expiry: 1 000 threads each ask every 20 ms for 4.5 s while 2-second tokens
//!   expire (twice), the steady traffic of a busy service;
//! - heap: bytes held (allocated minus freed) by a new client, and by a client holding a
//!   token and its pooled connection, next to a bare `ureq::Agent` in the same two states.
//!
//! The naive cache is what many libraries do: a `Mutex<Option<(token, expiry)>>`; a caller
//! that finds no valid token fetches one itself and stores it.
//!
//! Prints markdown tables; counts and percentiles, not means, are what matter here.
//!
//! Run: `cargo bench -p client-credentials-ureq --bench blocking_stampede`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a benchmark: a failure is a broken setup and should stop it"
)]
#![allow(clippy::print_stdout, reason = "a benchmark reports on stdout")]

use client_credentials_testkit::bench as support;

use std::alloc::System;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use client_credentials_ureq::core::TokenRequest;
use client_credentials_ureq::core::http::{self, StatusCode};
use client_credentials_ureq::{Client, Config, Token};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

use support::stampede::{
    CALLERS, PAUSE, SERVER_DELAY, SHORT_LIFETIME, STEADY_FOR, Waited, waited_since,
};
use support::{CLIENT_ID, CLIENT_SECRET, Latencies, Server};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// A call this slow is counted: it waited for a token request (its own or another
/// caller's), or it was descheduled that long (1 000 threads share two cores); the client's
/// `polls_without_token` tells which.
const WAITED: Duration = Duration::from_millis(10);
const STACK: usize = 256 * 1024;
/// Time to start the threads before they are released.
const RELEASE_AFTER: Duration = Duration::from_millis(500);

fn config(token_url: &str) -> Config {
    Config::builder()
        .token_url(token_url)
        .client_id(CLIENT_ID)
        .client_secret(CLIENT_SECRET)
        .build()
        .unwrap()
}

/// The token request as a plain `http::Request`, for the bare agent (the core's
/// `HttpRequest` is not `Clone` and keeps its body in a zeroizing buffer).
fn plain_http(request: &TokenRequest) -> http::Request<Vec<u8>> {
    let (parts, body) = request.to_http().into_parts();
    http::Request::from_parts(parts, body.into_vec())
}

/// The cache as many libraries write it.
struct Naive {
    agent: ureq::Agent,
    request: TokenRequest,
    http: http::Request<Vec<u8>>,
    cache: Mutex<Option<(Arc<Token>, Instant)>>,
}

impl Naive {
    fn new(config: &Config) -> Self {
        let request = config.default_request();
        Self {
            agent: ureq::Agent::new_with_defaults(),
            http: plain_http(&request),
            request,
            cache: Mutex::new(None),
        }
    }

    fn token(&self) -> Arc<Token> {
        if let Some((token, expires)) = &*self.cache.lock().unwrap()
            && Instant::now() < *expires
        {
            return Arc::clone(token);
        }
        let sent = Instant::now();
        let mut response = self.agent.run(self.http.clone()).unwrap();
        let body = response.body_mut().read_to_vec().unwrap();
        let token = Arc::new(
            self.request
                .parse_response(SystemTime::now(), StatusCode::OK, response.headers(), &body)
                .unwrap(),
        );
        let expires = sent + token.lifetime().unwrap_or_default();
        *self.cache.lock().unwrap() = Some((Arc::clone(&token), expires));
        token
    }
}

type Get = Arc<dyn Fn() -> Arc<Token> + Send + Sync>;

fn ours(server: &Server) -> (Get, Waited) {
    let client = Client::builder(config(&server.token_url())).seed(1).build();
    let counted = client.clone();
    (
        Arc::new(move || client.token().unwrap()),
        Some(Box::new(move || counted.counters().polls_without_token)),
    )
}

fn naive(server: &Server) -> (Get, Waited) {
    let naive = Naive::new(&config(&server.token_url()));
    (Arc::new(move || naive.token()), None)
}

/// 1 000 threads released together on an empty cache: requests made, latencies.
///
/// The threads sleep until one instant rather than wait on a barrier (a barrier wakes them
/// one after another, too slowly to make a stampede), and each latency counts from that
/// instant: the time from wanting a token to having it, scheduling delays included.
fn cold(make: fn(&Server) -> (Get, Waited)) -> (usize, Latencies, Option<u64>) {
    let server = Server::start(SERVER_DELAY, Duration::from_secs(3600));
    let (get, waited) = make(&server);
    let waited_before = waited.as_ref().map(|w| w());
    let release = Instant::now() + RELEASE_AFTER;
    let threads: Vec<_> = (0..CALLERS)
        .map(|_| {
            let get = Arc::clone(&get);
            thread::Builder::new()
                .stack_size(STACK)
                .spawn(move || {
                    thread::sleep(release.saturating_duration_since(Instant::now()));
                    drop(get());
                    release.elapsed()
                })
                .unwrap()
        })
        .collect();
    let samples = threads.into_iter().map(|t| t.join().unwrap()).collect();
    (
        server.count(),
        Latencies::of(samples, WAITED),
        waited_since(&waited, waited_before),
    )
}

/// 1 000 threads calling every 20 ms for 4.5 s while 2-second tokens expire: requests made
/// during that time, latencies, and calls that waited for a token request.
fn across_expiry(make: fn(&Server) -> (Get, Waited)) -> (usize, Latencies, Option<u64>) {
    let server = Server::start(SERVER_DELAY, SHORT_LIFETIME);
    let (get, waited) = make(&server);
    drop(get()); // warm
    let before = server.count();
    let waited_before = waited.as_ref().map(|w| w());
    let release = Instant::now() + RELEASE_AFTER;
    let threads: Vec<_> = (0..CALLERS)
        .map(|_| {
            let get = Arc::clone(&get);
            thread::Builder::new()
                .stack_size(STACK)
                .spawn(move || {
                    thread::sleep(release.saturating_duration_since(Instant::now()));
                    let end = release + STEADY_FOR;
                    let mut samples = Vec::with_capacity(256);
                    while Instant::now() < end {
                        let start = Instant::now();
                        drop(get());
                        samples.push(start.elapsed());
                        thread::sleep(PAUSE);
                    }
                    samples
                })
                .unwrap()
        })
        .collect();
    let samples = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    (
        server.count() - before,
        Latencies::of(samples, WAITED),
        waited_since(&waited, waited_before),
    )
}

use support::stampede_row as row;

fn heap() {
    let server = Server::start(Duration::ZERO, Duration::from_secs(3600));
    let config = config(&server.token_url());
    let http = plain_http(&config.default_request());
    let held = |region: &Region<'_, System>| {
        let c = region.change();
        c.bytes_allocated.cast_signed() - c.bytes_deallocated.cast_signed()
    };
    // A client and its first token, or a bare agent and its first request: new, then
    // holding the token (or the response read) and the pooled connection.
    let ours = || {
        let region = Region::new(GLOBAL);
        let client = Client::builder(config.clone()).seed(1).build();
        let empty = held(&region);
        drop(client.token().unwrap());
        (empty, held(&region))
    };
    let bare = || {
        let region = Region::new(GLOBAL);
        let agent = ureq::Agent::new_with_defaults();
        let empty = held(&region);
        let mut response = agent.run(http.clone()).unwrap();
        drop(response.body_mut().read_to_vec().unwrap());
        drop(response);
        let full = held(&region);
        drop(agent);
        (empty, full)
    };
    support::heap_table(
        ("client_credentials_ureq::Client", ours),
        ("ureq::Agent", bare),
    );
}

fn main() {
    support::serve_if_child();
    if support::listing_only() {
        return;
    }
    support::stampede_table(&format!(
        "Blocking client: {CALLERS} threads, token endpoint latency 50 ms"
    ));
    let (n, l, w) = cold(ours);
    row("cold cache, ours", n, &l, w);
    let (n, l, w) = cold(naive);
    row("cold cache, naive", n, &l, w);
    let (n, l, w) = across_expiry(ours);
    row("across expiry (4.5 s, 2 s tokens), ours", n, &l, w);
    let (n, l, w) = across_expiry(naive);
    row("across expiry (4.5 s, 2 s tokens), naive", n, &l, w);
    println!("\n## Blocking client: heap held\n");
    heap();
}
