//! What the tower layer adds to a request (feature `tower`), under criterion, against its
//! baseline in the same run:
//!
//! - `tower_layer/fixed_header`: a loopback keep-alive `POST` through hyper-util's client
//!   (HTTP/1.1, a current-thread runtime), with a fixed `Authorization` header set by hand:
//!   the floor.
//! - `tower_layer/auth_layer`: the same request through `AuthLayer` on the same kind of
//!   client, with a warm token: the token read, the header, the copy kept to replay the
//!   body, the verdict on the answer.
//!
//! The interleaved table printed first gives the layer's time as a ratio to the floor's,
//! round by round (the target: at most 1.10).
//!
//! Run: `cargo bench -p client-credentials-reqwest --features tower --bench tower_layer`.
#![allow(clippy::print_stdout, reason = "a benchmark reports on stdout")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a benchmark: a failure is a broken setup and should stop it"
)]

use client_credentials_testkit::bench as support;

use std::hint::black_box;
use std::time::{Duration, Instant};

use bytes::Bytes;
use client_credentials_reqwest::core::http;
use client_credentials_reqwest::tower::AuthLayer;
use client_credentials_reqwest::{Client, Config};
use criterion::Criterion;
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::rt::TokioExecutor;
use tokio::runtime::{Builder, Runtime};
use tower::{Layer as _, Service, ServiceExt as _};

use support::{CLIENT_ID, CLIENT_SECRET, Server};

/// The resource request's body: a small JSON document.
const BODY: &[u8] = br#"{"order":42,"items":["a","b"]}"#;

fn runtime() -> Runtime {
    Builder::new_current_thread().enable_all().build().unwrap()
}

/// `n` requests through `service`, one after the other, each answer read whole.
async fn send_all<S, R>(service: &S, url: &str, fixed_header: bool, n: u64) -> Duration
where
    S: Service<http::Request<Full<Bytes>>, Response = http::Response<R>> + Clone,
    S::Error: std::fmt::Debug,
    R: http_body::Body,
    R::Error: std::fmt::Debug,
{
    // One clone per batch: both services are handles on shared state.
    let mut service = service.clone();
    let start = Instant::now();
    for _ in 0..n {
        let mut request = http::Request::post(url)
            .body(Full::new(Bytes::from_static(BODY)))
            .unwrap();
        if fixed_header {
            request.headers_mut().insert(
                http::header::AUTHORIZATION,
                http::HeaderValue::from_static("Bearer a-fixed-token-of-a-usual-length-0123456789"),
            );
        }
        let response = service.ready().await.unwrap().call(request).await.unwrap();
        assert_eq!(response.status(), 200);
        black_box(response.into_body().collect().await.unwrap());
    }
    start.elapsed()
}

fn layer_overhead(c: &mut Criterion) {
    let token_server = Server::start(Duration::ZERO, Duration::from_secs(3600));
    let resource = Server::start(Duration::ZERO, Duration::from_secs(3600));
    let url = resource.token_url().replace("/token", "/orders");
    let config = Config::builder()
        .token_url(token_server.token_url())
        .client_id(CLIENT_ID)
        .client_secret(CLIENT_SECRET)
        .build()
        .unwrap();
    let tokens = Client::builder(config).seed(1).build().unwrap();
    let rt = runtime();
    rt.block_on(tokens.token()).unwrap();

    let hyper = || HyperClient::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let bare = hyper();
    let layered = AuthLayer::new(tokens.clone()).layer(hyper());
    let fixed = |n: u64| rt.block_on(send_all(&bare, &url, true, n));
    let ours = |n: u64| rt.block_on(send_all(&layered, &url, false, n));

    let (rounds, batch) = if support::listing_only() {
        (3, 20)
    } else {
        (31, 400)
    };
    let times = support::interleaved(
        "tower_layer",
        rounds,
        batch,
        &[("fixed_header (floor)", &fixed), ("auth_layer", &ours)],
    );
    println!(
        "tower_layer: on {}; the layer takes {:.3}× the floor's time per request (target ≤ 1.10)",
        support::processor(),
        support::median_ratio(&times[1], &times[0])
    );

    let mut group = c.benchmark_group("tower_layer");
    group.bench_function("fixed_header", |b| b.iter_custom(fixed));
    group.bench_function("auth_layer", |b| b.iter_custom(ours));
    group.finish();
    assert_eq!(token_server.count(), 1, "a warm layer never fetches");
}

client_credentials_testkit::bench_main!(layer_overhead);
