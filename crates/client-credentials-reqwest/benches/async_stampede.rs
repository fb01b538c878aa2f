//! A thousand tasks against one async client, and the heap a client holds, against a naive
//! cache, with a loopback token endpoint in a child process that answers after 50 ms (a
//! typical token endpoint's latency) and counts the token requests it receives. The tasks run
//! on a multi-thread tokio runtime with two workers (one per core of the bench machine).
//!
//! - cold: 1 000 tasks ask an empty cache for a token at the same moment;
//! - across expiry: 1 000 tasks each ask every 20 ms for 4.5 s while 2-second tokens expire
//!   (twice), the steady traffic of a busy service; with and without the client's optional
//!   background refresh;
//! - heap: bytes held (allocated minus freed) by a new client, and by a client holding a
//!   token and its pooled connection, next to a bare `reqwest::Client` in the same two
//!   states.
//!
//! The naive cache is what many libraries do: a `Mutex<Option<(token, expiry)>>`; a caller
//! that finds no valid token fetches one itself and stores it.
//!
//! Prints markdown tables; counts and percentiles, not means, are what matter here.
//!
//! Run: `cargo bench -p client-credentials-reqwest --bench async_stampede`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a benchmark: a failure is a broken setup and should stop it"
)]
#![allow(clippy::print_stdout, reason = "a benchmark reports on stdout")]

use client_credentials_testkit::bench as support;

use std::alloc::System;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use client_credentials_reqwest::core::TokenRequest;
use client_credentials_reqwest::core::http;
use client_credentials_reqwest::{Client, Config, Token};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use tokio::runtime::{Builder, Runtime};

use support::stampede::{
    CALLERS, PAUSE, SERVER_DELAY, SHORT_LIFETIME, STEADY_FOR, Waited, waited_since,
};
use support::{CLIENT_ID, CLIENT_SECRET, Latencies, Server};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Time to start the tasks before they are released.
const RELEASE_AFTER: Duration = Duration::from_millis(200);
/// A call this slow is counted: it waited for a token request (its own or another
/// caller's), or it was delayed that long by scheduling; the client's `polls_without_token`
/// tells which.
const WAITED: Duration = Duration::from_millis(10);

fn config(token_url: &str) -> Config {
    Config::builder()
        .token_url(token_url)
        .client_id(CLIENT_ID)
        .client_secret(CLIENT_SECRET)
        .build()
        .unwrap()
}

fn runtime() -> Runtime {
    Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// The request the client sends, as a plain `http::Request` for a bare client to send.
fn plain_request(request: client_credentials_reqwest::core::HttpRequest) -> http::Request<Vec<u8>> {
    let (parts, body) = request.into_parts();
    http::Request::from_parts(parts, body.into_vec())
}

/// The cache as many libraries write it.
struct Naive {
    http: reqwest::Client,
    request: TokenRequest,
    template: http::Request<Vec<u8>>,
    cache: Mutex<Option<(Arc<Token>, Instant)>>,
}

impl Naive {
    fn new(config: &Config) -> Self {
        let request = config.default_request();
        Self {
            http: reqwest::Client::new(),
            template: plain_request(request.to_http()),
            request,
            cache: Mutex::new(None),
        }
    }

    async fn token(&self) -> Arc<Token> {
        if let Some((token, expires)) = &*self.cache.lock().unwrap()
            && Instant::now() < *expires
        {
            return Arc::clone(token);
        }
        let sent = Instant::now();
        let request = reqwest::Request::try_from(self.template.clone()).unwrap();
        let response = self.http.execute(request).await.unwrap();
        let (status, headers) = (response.status(), response.headers().clone());
        let body = response.bytes().await.unwrap();
        let token = Arc::new(
            self.request
                .parse_response(SystemTime::now(), status, &headers, &body)
                .unwrap(),
        );
        let expires = sent + token.lifetime().unwrap_or_default();
        *self.cache.lock().unwrap() = Some((Arc::clone(&token), expires));
        token
    }
}

type Get = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Arc<Token>> + Send>> + Send + Sync>;

fn ours_with(server: &Server, background_refresh: bool) -> (Get, Waited) {
    let client = Client::builder(config(&server.token_url()))
        .seed(1)
        .background_refresh(background_refresh)
        .build()
        .unwrap();
    let counted = client.clone();
    (
        Arc::new(move || {
            let client = client.clone();
            Box::pin(async move { client.token().await.unwrap() })
        }),
        Some(Box::new(move || counted.counters().polls_without_token)),
    )
}

fn ours(server: &Server) -> (Get, Waited) {
    ours_with(server, false)
}

fn ours_background(server: &Server) -> (Get, Waited) {
    ours_with(server, true)
}

fn naive(server: &Server) -> (Get, Waited) {
    let naive = Arc::new(Naive::new(&config(&server.token_url())));
    (
        Arc::new(move || {
            let naive = Arc::clone(&naive);
            Box::pin(async move { naive.token().await })
        }),
        None,
    )
}

/// 1 000 tasks released together on an empty cache: requests made, latencies.
///
/// The tasks sleep until one instant, and each latency counts from that instant: the time
/// from wanting a token to having it, scheduling delays included.
fn cold(rt: &Runtime, make: fn(&Server) -> (Get, Waited)) -> (usize, Latencies, Option<u64>) {
    let server = Server::start(SERVER_DELAY, Duration::from_secs(3600));
    let (get, waited) = make(&server);
    let waited_before = waited.as_ref().map(|w| w());
    let samples = rt.block_on(async {
        let release = tokio::time::Instant::now() + RELEASE_AFTER;
        let tasks: Vec<_> = (0..CALLERS)
            .map(|_| {
                let get = Arc::clone(&get);
                tokio::spawn(async move {
                    tokio::time::sleep_until(release).await;
                    drop(get().await);
                    release.elapsed()
                })
            })
            .collect();
        let mut samples = Vec::with_capacity(CALLERS);
        for task in tasks {
            samples.push(task.await.unwrap());
        }
        samples
    });
    (
        server.count(),
        Latencies::of(samples, WAITED),
        waited_since(&waited, waited_before),
    )
}

/// 1 000 tasks calling every 20 ms for 4.5 s while 2-second tokens expire: requests made
/// during that time, latencies, and calls that waited for a token request.
fn across_expiry(
    rt: &Runtime,
    make: fn(&Server) -> (Get, Waited),
) -> (usize, Latencies, Option<u64>) {
    let server = Server::start(SERVER_DELAY, SHORT_LIFETIME);
    let (get, waited) = make(&server);
    let mut waited_before = None;
    let (before, samples) = rt.block_on(async {
        drop(get().await); // warm
        let before = server.count();
        waited_before = waited.as_ref().map(|w| w());
        let release = tokio::time::Instant::now() + RELEASE_AFTER;
        let tasks: Vec<_> = (0..CALLERS)
            .map(|_| {
                let get = Arc::clone(&get);
                tokio::spawn(async move {
                    tokio::time::sleep_until(release).await;
                    let end = release.into_std() + STEADY_FOR;
                    let mut samples = Vec::with_capacity(256);
                    while Instant::now() < end {
                        let start = Instant::now();
                        drop(get().await);
                        samples.push(start.elapsed());
                        tokio::time::sleep(PAUSE).await;
                    }
                    samples
                })
            })
            .collect();
        let mut samples = Vec::new();
        for task in tasks {
            samples.extend(task.await.unwrap());
        }
        (before, samples)
    });
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
    // One thread: every allocation counted is this bench's, not a worker's.
    let rt = Builder::new_current_thread().enable_all().build().unwrap();
    let template = plain_request(config.default_request().to_http());
    let held = |region: &Region<'_, System>| {
        let c = region.change();
        c.bytes_allocated.cast_signed() - c.bytes_deallocated.cast_signed()
    };
    // A client and its first token, or a bare client and its first request: new, then
    // holding the token (or the response read) and the pooled connection.
    let ours = || {
        let region = Region::new(GLOBAL);
        let client = Client::builder(config.clone()).seed(1).build().unwrap();
        let empty = held(&region);
        drop(rt.block_on(client.token()).unwrap());
        (empty, held(&region))
    };
    let bare = || {
        let region = Region::new(GLOBAL);
        let http = reqwest::Client::new();
        let empty = held(&region);
        rt.block_on(async {
            let request = reqwest::Request::try_from(template.clone()).unwrap();
            let response = http.execute(request).await.unwrap();
            drop(response.bytes().await.unwrap());
        });
        let full = held(&region);
        drop(http);
        (empty, full)
    };
    support::heap_table(
        ("client_credentials_reqwest::Client", ours),
        ("reqwest::Client", bare),
    );
}

fn main() {
    support::serve_if_child();
    if support::listing_only() {
        return;
    }
    let rt = runtime();
    support::stampede_table(&format!(
        "Async client: {CALLERS} tasks on 2 workers, token endpoint latency 50 ms"
    ));
    let (n, l, w) = cold(&rt, ours);
    row("cold cache, ours", n, &l, w);
    let (n, l, w) = cold(&rt, naive);
    row("cold cache, naive", n, &l, w);
    let (n, l, w) = across_expiry(&rt, ours);
    row("across expiry (4.5 s, 2 s tokens), ours", n, &l, w);
    let (n, l, w) = across_expiry(&rt, ours_background);
    row(
        "across expiry (4.5 s, 2 s tokens), ours with background refresh",
        n,
        &l,
        w,
    );
    let (n, l, w) = across_expiry(&rt, naive);
    row("across expiry (4.5 s, 2 s tokens), naive", n, &l, w);
    drop(rt);
    println!("\n## Async client: heap held\n");
    heap();
}
