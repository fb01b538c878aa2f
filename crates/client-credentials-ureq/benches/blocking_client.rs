//! The blocking client under criterion, each against its baseline in the same run:
//!
//! - `blocking_warm_token/*`: a hit, with a cached token: `Client::token()` (an owned
//!   `Arc<Token>`) and `Client::with_token` (borrowed), against the floors measured in the
//!   same run: `ArcSwap::load_full` and an `ArcSwap` guard load of an `Arc<Token>`,
//!   `Instant::now()`, and a bare `Mutex<Option<Arc<Token>>>`. A table printed first states
//!   each hit as a ratio to its floor, round by round, and the two-thread throughput ratios,
//!   but only after a control workload with no shared state showed that two threads really
//!   ran in parallel (otherwise no two-thread figure is printed, nor measured). For two
//!   threads criterion's time is the wall time divided by the calls both made.
//! - `blocking_fetch/*`: a token request through the client against a loopback keep-alive token
//!   endpoint (the cached token is invalidated after each call, untimed, so every call
//!   fetches; the client's early-rejection throttle is off, as it would otherwise back off;
//!   each fetch is timed on its own),
//!   against a bare `ureq::Agent` sending the same request and reading the body: one with
//!   ureq's defaults, and the client's own agent (`Client::agent()`, configured with the
//!   adapter's timeouts and its bounded resolver). `ours` against `bare_ureq/client_agent` is
//!   what the adapter's code and the core add to a fetch; `bare_ureq/client_agent` against
//!   `bare_ureq/default` is what the agent's configuration costs. `bare_ureq/phase_timeouts`
//!   is an agent with ureq's own resolver and per-phase timeouts and no global one: with a
//!   global (or resolve) timeout, ureq's resolver resolves the host on a new thread for every
//!   request, even an IP address on a pooled connection, which the client's resolver avoids.
//! - `blocking_fetch_1ms` (printed only): the same comparison against an endpoint that takes
//!   1 ms to answer, still faster than any real one: the client's share of a fetch that a
//!   caller waits for.
//!
//! Run: `cargo bench -p client-credentials-ureq --bench blocking_client`.
#![allow(clippy::print_stdout, reason = "a benchmark reports on stdout")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a benchmark: a failure is a broken setup and should stop it"
)]

use client_credentials_testkit::bench as support;

use std::hint::black_box;
use std::time::{Duration, Instant, SystemTime};

use client_credentials_ureq::core::TokenRequest;
use client_credentials_ureq::core::http::{self, HeaderMap, StatusCode};
use client_credentials_ureq::{Client, Config};
use criterion::Criterion;

use support::{CLIENT_ID, CLIENT_SECRET, Server, hit};

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

/// One fetch through `client`, timed. Invalidating the token afterwards (so that the next
/// call fetches again) is the bench's doing, not the fetch's, and is not timed.
fn fetch(client: &Client) -> Duration {
    let start = Instant::now();
    let token = client.token().unwrap();
    let took = start.elapsed();
    client.invalidate(token.access_token());
    took
}

/// One bare POST of `http` on `agent`, its body read, timed.
fn bare_fetch(agent: &ureq::Agent, http: &http::Request<Vec<u8>>) -> Duration {
    let start = Instant::now();
    let mut response = agent.run(http.clone()).unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    black_box(response.body_mut().read_to_vec().unwrap());
    start.elapsed()
}

fn warm_token(c: &mut Criterion) {
    let server = Server::start(Duration::ZERO, Duration::from_secs(3600));
    let config = config(&server.token_url());
    let client = Client::builder(config.clone()).seed(1).build();
    let token = client.token().unwrap();
    let floors = hit::Floors::new(token);

    let owned = || {
        black_box(client.token().unwrap());
    };
    let borrowed = || {
        black_box(
            client
                .with_token(|t| t.access_token().expose_secret().len())
                .unwrap(),
        );
    };
    let (owned_n, borrowed_n) = (support::repeat(owned), support::repeat(borrowed));
    let (rounds, batch) = if support::listing_only() {
        (3, 1_000)
    } else {
        (31, 200_000)
    };
    hit::table(
        "blocking_warm_token",
        rounds,
        batch,
        &floors,
        &[
            (("ours: token() (owned)", &owned_n), "load_full"),
            (("ours: with_token() (borrowed)", &borrowed_n), "guard load"),
        ],
    );
    let two_threads = hit::control_ratio(5, 20_000_000) >= hit::CONTROL_MIN;

    let mut group = c.benchmark_group("blocking_warm_token");
    group.bench_function("ours/owned", |b| b.iter(owned));
    group.bench_function("ours/borrowed", |b| b.iter(borrowed));
    group.bench_function("floor/arcswap_load_full", |b| b.iter(|| floors.load_full()));
    group.bench_function("floor/arcswap_guard", |b| b.iter(|| floors.guard()));
    group.bench_function("floor/instant_now", |b| b.iter(hit::instant_now));
    group.bench_function("floor/mutex", |b| b.iter(|| floors.mutex()));
    if two_threads {
        group.bench_function("ours/owned/2_threads", |b| {
            b.iter_custom(|iters| support::on_threads(2, iters, &owned_n));
        });
        group.bench_function("ours/borrowed/2_threads", |b| {
            b.iter_custom(|iters| support::on_threads(2, iters, &borrowed_n));
        });
        group.bench_function("floor/arcswap_load_full/2_threads", |b| {
            b.iter_custom(|iters| {
                support::on_threads(2, iters, &support::repeat(|| floors.load_full()))
            });
        });
    } else {
        println!("blocking_warm_token: the second core is busy; no two-thread rows");
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
        .build();
    // The very request the client sends, for the bare agent.
    let request = config.default_request();
    let http = plain_http(&request);
    let agent = ureq::Agent::new_with_defaults();
    let client_agent = client.agent().clone();
    let phase = Some(Duration::from_secs(15));
    let phase_agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_connect(Some(Duration::from_secs(5)))
        .timeout_send_request(phase)
        .timeout_send_body(phase)
        .timeout_recv_response(phase)
        .timeout_recv_body(phase)
        .build()
        .new_agent();

    // Each op is one fetch and returns how long the fetch itself took.
    let bare = || bare_fetch(&agent, &http);
    let bare_client_agent = || bare_fetch(&client_agent, &http);
    let bare_phase_timeouts = || bare_fetch(&phase_agent, &http);
    let ours = || fetch(&client);
    // Both must reach the endpoint and parse as a token.
    for op in [
        &bare as &dyn Fn() -> Duration,
        &bare_client_agent,
        &bare_phase_timeouts,
        &ours,
    ] {
        op();
    }
    let body = {
        let mut response = agent.run(http.clone()).unwrap();
        response.body_mut().read_to_vec().unwrap()
    };
    request
        .parse_response(SystemTime::now(), StatusCode::OK, &HeaderMap::new(), &body)
        .unwrap();
    // Connection reuse: both should keep one connection alive across fetches.
    let ops: [(&str, &dyn Fn() -> Duration); 4] = [
        ("ours", &ours),
        ("bare_ureq/default", &bare),
        ("bare_ureq/client_agent", &bare_client_agent),
        ("bare_ureq/phase_timeouts", &bare_phase_timeouts),
    ];
    for (name, op) in ops {
        let before = server.connections();
        for _ in 0..100 {
            op();
        }
        let opened = server.connections() - before - 1;
        println!("blocking_fetch/{name}: {opened} connections opened for 100 fetches");
    }
    let before = server.count();

    let timed = |op: &dyn Fn() -> Duration, n: u64| (0..n).map(|_| op()).sum::<Duration>();
    support::interleaved(
        "blocking_fetch",
        30,
        200,
        &[
            ("ours", &|n| timed(&ours, n)),
            ("bare_ureq/client_agent", &|n| timed(&bare_client_agent, n)),
            ("bare_ureq/default", &|n| timed(&bare, n)),
            ("bare_ureq/phase_timeouts", &|n| {
                timed(&bare_phase_timeouts, n)
            }),
        ],
    );

    // The same against an endpoint that takes 1 ms to answer (a real one, over a network
    // and signing its tokens, takes longer): the client's share of a fetch a user waits for.
    let slow = Server::start(Duration::from_millis(1), Duration::from_secs(3600));
    let slow_config = self::config(&slow.token_url());
    let slow_client = Client::builder(slow_config.clone())
        .policy(support::policy_fetching_every_call())
        .seed(1)
        .build();
    let slow_http = plain_http(&slow_config.default_request());
    let slow_agent = slow_client.agent().clone();
    let slow_bare = || bare_fetch(&slow_agent, &slow_http);
    let slow_ours = || fetch(&slow_client);
    support::interleaved(
        "blocking_fetch_1ms",
        15,
        50,
        &[
            ("ours", &|n| timed(&slow_ours, n)),
            ("bare_ureq/client_agent", &|n| timed(&slow_bare, n)),
        ],
    );

    let mut group = c.benchmark_group("blocking_fetch");
    group.bench_function("ours", |b| b.iter_custom(|n| timed(&ours, n)));
    group.bench_function("bare_ureq/client_agent", |b| {
        b.iter_custom(|n| timed(&bare_client_agent, n));
    });
    group.bench_function("bare_ureq/default", |b| b.iter_custom(|n| timed(&bare, n)));
    group.bench_function("bare_ureq/phase_timeouts", |b| {
        b.iter_custom(|n| timed(&bare_phase_timeouts, n));
    });
    group.finish();
    assert!(server.count() > before, "every call fetches");
}

client_credentials_testkit::bench_main!(warm_token, fetches);
