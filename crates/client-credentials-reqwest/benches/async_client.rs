//! The async client under criterion, each against its baseline in the same run:
//!
//! - `async_warm_token/*`: a hit, with a cached token, on a current-thread runtime per
//!   thread: `Client::token().await` (owned) and `Client::with_token` (borrowed), against the
//!   floors measured in the same run (`ArcSwap::load_full`, an `ArcSwap` guard load,
//!   `Instant::now()`, a bare `Mutex<Option<Arc<Token>>>`). The table printed first states
//!   each hit as a ratio to its floor and, only after a control workload with no shared
//!   state passed, the two-thread throughput ratios.
//! - `async_fetch/*`: a token request through the client against a loopback keep-alive token
//!   endpoint (the cached token is invalidated after each call, untimed, with the
//!   early-rejection throttle off, so every call fetches; each fetch is timed on its own),
//!   on a current-thread runtime, against a bare
//!   `reqwest::Client` sending the same request and reading the body: one with reqwest's
//!   defaults, and the client's own
//!   (`Client::http_client()`, configured with the adapter's timeouts and no redirects).
//!   `ours` against `bare_reqwest/client_http` is what the adapter's code and the core add
//!   to a fetch.
//! - `async_fetch_1ms` (printed only): the same comparison against an endpoint that takes
//!   1 ms to answer, still faster than any real one: the client's share of a fetch that a
//!   caller waits for.
//!
//! Run: `cargo bench -p client-credentials-reqwest --bench async_client`.
#![allow(clippy::print_stdout, reason = "a benchmark reports on stdout")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a benchmark: a failure is a broken setup and should stop it"
)]

use client_credentials_testkit::bench as support;

use std::hint::black_box;
use std::pin::Pin;
use std::time::{Duration, Instant};

use client_credentials_reqwest::core::http;
use client_credentials_reqwest::{Client, Config};
use criterion::Criterion;
use tokio::runtime::{Builder, Runtime};

use support::{CLIENT_ID, CLIENT_SECRET, Server, hit};

/// One fetch as a boxed future, so that ours and the bare clients run in one loop: it
/// resolves to how long the fetch itself took.
type Op<'a> = dyn Fn() -> Pin<Box<dyn Future<Output = Duration> + 'a>> + 'a;

fn config(token_url: &str) -> Config {
    Config::builder()
        .token_url(token_url)
        .client_id(CLIENT_ID)
        .client_secret(CLIENT_SECRET)
        .build()
        .unwrap()
}

/// The request the client sends, as a plain `http::Request` for a bare client to send.
fn plain_request(request: client_credentials_reqwest::core::HttpRequest) -> http::Request<Vec<u8>> {
    let (parts, body) = request.into_parts();
    http::Request::from_parts(parts, body.into_vec())
}

fn runtime() -> Runtime {
    Builder::new_current_thread().enable_all().build().unwrap()
}

thread_local! {
    /// Each bench thread's own current-thread runtime.
    static RUNTIME: Runtime = runtime();
}

/// One fetch through `client`, timed. Invalidating the token afterwards (so that the next
/// call fetches again) is the bench's doing, not the fetch's, and is not timed.
async fn fetch(client: &Client) -> Duration {
    let start = Instant::now();
    let token = client.token().await.unwrap();
    let took = start.elapsed();
    client.invalidate(token.access_token());
    took
}

/// One bare POST of `http` on `client`, its body read, timed.
async fn bare_fetch(client: &reqwest::Client, http: &http::Request<Vec<u8>>) -> Duration {
    let request = reqwest::Request::try_from(http.clone()).unwrap();
    let start = Instant::now();
    let response = client.execute(request).await.unwrap();
    assert_eq!(response.status(), reqwest::StatusCode::OK);
    black_box(response.bytes().await.unwrap());
    start.elapsed()
}

fn warm_token(c: &mut Criterion) {
    let server = Server::start(Duration::ZERO, Duration::from_secs(3600));
    let client = Client::builder(config(&server.token_url()))
        .seed(1)
        .build()
        .unwrap();
    let token = RUNTIME.with(|rt| rt.block_on(client.token())).unwrap();
    let floors = hit::Floors::new(token);

    // `n` warm calls, awaited on this thread's runtime.
    let owned = |n: u64| {
        RUNTIME.with(|rt| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..n {
                    black_box(client.token().await.unwrap());
                }
                start.elapsed()
            })
        })
    };
    let borrowed = |n: u64| {
        RUNTIME.with(|rt| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..n {
                    let len = client.with_token(|t| t.access_token().expose_secret().len());
                    black_box(len.await.unwrap());
                }
                start.elapsed()
            })
        })
    };
    let (rounds, batch) = if support::listing_only() {
        (3, 1_000)
    } else {
        (31, 200_000)
    };
    hit::table(
        "async_warm_token",
        rounds,
        batch,
        &floors,
        &[
            (("ours: token().await (owned)", &owned), "load_full"),
            (
                ("ours: with_token().await (borrowed)", &borrowed),
                "guard load",
            ),
        ],
    );
    let two_threads = hit::control_ratio(5, 20_000_000) >= hit::CONTROL_MIN;

    let mut group = c.benchmark_group("async_warm_token");
    group.bench_function("ours/owned", |b| b.iter_custom(owned));
    group.bench_function("ours/borrowed", |b| b.iter_custom(borrowed));
    group.bench_function("floor/arcswap_load_full", |b| b.iter(|| floors.load_full()));
    group.bench_function("floor/arcswap_guard", |b| b.iter(|| floors.guard()));
    if two_threads {
        group.bench_function("ours/owned/2_threads", |b| {
            b.iter_custom(|iters| support::on_threads(2, iters, &owned));
        });
        group.bench_function("ours/borrowed/2_threads", |b| {
            b.iter_custom(|iters| support::on_threads(2, iters, &borrowed));
        });
    } else {
        println!("async_warm_token: the second core is busy; no two-thread rows");
    }
    group.finish();
    assert_eq!(server.count(), 1, "warm calls must not fetch");
}

fn fetches(c: &mut Criterion) {
    let server = Server::start(Duration::ZERO, Duration::from_secs(3600));
    let config = config(&server.token_url());
    // Every call invalidates the token it just got, so the throttle is off.
    let policy = support::policy_fetching_every_call();
    let client = Client::builder(config.clone())
        .policy(policy)
        .seed(1)
        .build()
        .unwrap();
    let rt = runtime();
    // The very request the client sends, for the bare clients.
    let http = plain_request(config.default_request().to_http());
    let default_http = reqwest::Client::new();
    let client_http = client.http_client().clone();

    let send = |http_client| bare_fetch(http_client, &http);
    let ours = || fetch(&client);
    let run = |iters: u64, op: &Op<'_>| {
        rt.block_on(async {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                total += op().await;
            }
            total
        })
    };
    let ours_op = || -> Pin<Box<dyn Future<Output = Duration> + '_>> { Box::pin(ours()) };
    let bare_default =
        || -> Pin<Box<dyn Future<Output = Duration> + '_>> { Box::pin(send(&default_http)) };
    let bare_client =
        || -> Pin<Box<dyn Future<Output = Duration> + '_>> { Box::pin(send(&client_http)) };

    // Connection reuse: each should keep one connection alive across fetches.
    let ops: [(&str, &Op<'_>); 3] = [
        ("ours", &ours_op),
        ("bare_reqwest/default", &bare_default),
        ("bare_reqwest/client_http", &bare_client),
    ];
    for (name, op) in ops {
        run(1, op);
        let before = server.connections();
        run(100, op);
        let opened = server.connections() - before - 1;
        println!("async_fetch/{name}: {opened} connections opened for 100 fetches");
    }
    let before = server.count();

    support::interleaved(
        "async_fetch",
        30,
        200,
        &[
            ("ours", &|n| run(n, &ours_op)),
            ("bare_reqwest/client_http", &|n| run(n, &bare_client)),
            ("bare_reqwest/default", &|n| run(n, &bare_default)),
        ],
    );

    // The same against an endpoint that takes 1 ms to answer (a real one, over a network
    // and signing its tokens, takes longer): the client's share of a fetch a user waits for.
    let slow = Server::start(Duration::from_millis(1), Duration::from_secs(3600));
    let slow_config = self::config(&slow.token_url());
    let slow_client = Client::builder(slow_config.clone())
        .policy(support::policy_fetching_every_call())
        .seed(1)
        .build()
        .unwrap();
    let slow_http = plain_request(slow_config.default_request().to_http());
    let slow_reqwest = slow_client.http_client().clone();
    let slow_bare = || -> Pin<Box<dyn Future<Output = Duration> + '_>> {
        Box::pin(bare_fetch(&slow_reqwest, &slow_http))
    };
    let slow_ours =
        || -> Pin<Box<dyn Future<Output = Duration> + '_>> { Box::pin(fetch(&slow_client)) };
    support::interleaved(
        "async_fetch_1ms",
        15,
        50,
        &[
            ("ours", &|n| run(n, &slow_ours)),
            ("bare_reqwest/client_http", &|n| run(n, &slow_bare)),
        ],
    );

    let mut group = c.benchmark_group("async_fetch");
    group.bench_function("ours", |b| b.iter_custom(|iters| run(iters, &ours_op)));
    group.bench_function("bare_reqwest/client_http", |b| {
        b.iter_custom(|iters| run(iters, &bare_client));
    });
    group.bench_function("bare_reqwest/default", |b| {
        b.iter_custom(|iters| run(iters, &bare_default));
    });
    group.finish();
    assert!(server.count() > before, "every call fetches");
}

client_credentials_testkit::bench_main!(warm_token, fetches);
