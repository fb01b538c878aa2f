//! The async client under criterion, each against its baseline in the same run:
//!
//! - `async_warm_token/*`: `Client::token().await` with a cached token, on one thread and on two
//!   threads (each driving its own current-thread runtime) calling the same client, against a
//!   plain `Mutex<Option<Arc<Token>>>` (lock, clone the `Arc`, unlock: no expiry check, no
//!   session). For two threads the time shown is the wall time divided by the calls both
//!   made, so `1 thread / 2 threads` is the throughput ratio.
//! - `async_fetch/*`: a token request through the client against a loopback keep-alive token
//!   endpoint (the cached token is invalidated after each call, with the early-rejection
//!   throttle off, so every call fetches), on a current-thread runtime, against a bare
//!   `reqwest::Client` sending the same request and reading the body: one with reqwest's
//!   defaults, and the client's own
//!   (`Client::http_client()`, configured with the adapter's timeouts and no redirects).
//!   `ours` against `bare_reqwest/client_http` is what the adapter's code and the core add
//!   to a fetch.
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
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use client_credentials_reqwest::core::http;
use client_credentials_reqwest::{Client, Config, Token};
use criterion::Criterion;
use tokio::runtime::{Builder, Runtime};

use support::{CLIENT_ID, CLIENT_SECRET, Server};

/// One operation as a boxed future, so that ours and the bare clients run in one loop.
type Op<'a> = dyn Fn() -> Pin<Box<dyn Future<Output = ()> + 'a>> + 'a;

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

fn warm_token(c: &mut Criterion) {
    let server = Server::start(Duration::ZERO, Duration::from_secs(3600));
    let client = Client::builder(config(&server.token_url()))
        .seed(1)
        .build()
        .unwrap();
    let rt = runtime();
    let token = rt.block_on(client.token()).unwrap();
    let baseline: Mutex<Option<Arc<Token>>> = Mutex::new(Some(token));

    // `iters` warm calls on a current-thread runtime of this thread.
    let ours = |rt: &Runtime, iters: u64| {
        rt.block_on(async {
            let start = Instant::now();
            for _ in 0..iters {
                black_box(client.token().await.unwrap());
            }
            start.elapsed()
        })
    };
    let plain = |_: &Runtime, iters: u64| {
        let start = Instant::now();
        for _ in 0..iters {
            black_box(baseline.lock().unwrap().clone());
        }
        start.elapsed()
    };
    // Two threads, each with its own runtime, released together; wall time / 2.
    let two = |op: &(dyn Fn(&Runtime, u64) -> Duration + Sync), iters: u64| {
        let barrier = Barrier::new(2);
        let longest = std::thread::scope(|s| {
            let handles: Vec<_> = (0..2)
                .map(|_| {
                    s.spawn(|| {
                        let rt = runtime();
                        barrier.wait();
                        op(&rt, iters)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap())
                .max()
                .unwrap_or_default()
        });
        longest / 2
    };

    let mut group = c.benchmark_group("async_warm_token");
    group.bench_function("ours/1_thread", |b| b.iter_custom(|iters| ours(&rt, iters)));
    group.bench_function("ours/2_threads", |b| {
        b.iter_custom(|iters| two(&ours, iters));
    });
    group.bench_function("mutex_baseline/1_thread", |b| {
        b.iter_custom(|iters| plain(&rt, iters));
    });
    group.bench_function("mutex_baseline/2_threads", |b| {
        b.iter_custom(|iters| two(&plain, iters));
    });
    group.finish();
    assert_eq!(server.count(), 1, "warm calls must not fetch");
}

fn fetch(c: &mut Criterion) {
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

    let send = |http_client: &reqwest::Client| {
        let request = reqwest::Request::try_from(http.clone()).unwrap();
        let http_client = http_client.clone();
        async move {
            let response = http_client.execute(request).await.unwrap();
            assert_eq!(response.status(), reqwest::StatusCode::OK);
            black_box(response.bytes().await.unwrap());
        }
    };
    let ours = || async {
        let token = client.token().await.unwrap();
        client.invalidate(token.access_token());
    };
    let run = |iters: u64, op: &Op<'_>| {
        rt.block_on(async {
            let start = Instant::now();
            for _ in 0..iters {
                op().await;
            }
            start.elapsed()
        })
    };
    let ours_op = || -> Pin<Box<dyn Future<Output = ()> + '_>> { Box::pin(ours()) };
    let bare_default =
        || -> Pin<Box<dyn Future<Output = ()> + '_>> { Box::pin(send(&default_http)) };
    let bare_client = || -> Pin<Box<dyn Future<Output = ()> + '_>> { Box::pin(send(&client_http)) };

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

client_credentials_testkit::bench_main!(warm_token, fetch);
