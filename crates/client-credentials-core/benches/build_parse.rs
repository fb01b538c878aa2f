//! Building a client credentials request and parsing a typical token response: ours against
//! the `oauth2` crate (5.x), on the same inputs, in the same run.
//!
//! - `build_parse/*`: the whole operation. `ours/new_request` builds the `TokenRequest` for
//!   the call (`config.default_request()`, which also derives the cache key);
//!   `ours/reused_request` reuses one, as the adapters do; `oauth2` sends through a closure
//!   that answers with the canned response, so it builds and parses exactly once.
//! - `build/*` and `parse/*`: the halves; `parse/canned_response_only` is the part of every
//!   row that builds the `http::Response` handed to the parser. The `oauth2` crate keeps
//!   request building private, so its `build` is a `request()` through an HTTP client that
//!   fails at once.
//!
//! Run: `cargo bench -p client-credentials-core --bench build_parse`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a benchmark: a failure is a broken setup and should stop it"
)]

mod common;

use std::hint::black_box;
use std::time::Duration;

use client_credentials_core::TokenRequest;
use criterion::{Criterion, criterion_group, criterion_main};
use oauth2::TokenResponse as _;

use common::{
    ACCESS_TOKEN, assert_same_request, body, config, oauth2_client, oauth2_scopes, ours, response,
    sent_at, theirs,
};

fn build_parse(c: &mut Criterion) {
    let config = config();
    let client = oauth2_client();
    let scopes = oauth2_scopes();
    let body = body();
    assert_same_request(&config, &client, &scopes);
    let reused = config.default_request();
    let a = ours(&reused, &body);
    let b = theirs(&client, &scopes, &body);
    assert_eq!(a.access_token().expose_secret(), ACCESS_TOKEN);
    assert_eq!(b.access_token().secret(), ACCESS_TOKEN);
    assert_eq!(a.lifetime(), b.expires_in());

    common::interleaved(
        "build_parse",
        40,
        2_000,
        &[
            ("ours/reused_request", &|| drop(ours(&reused, &body))),
            ("ours/new_request", &|| {
                drop(ours(&config.default_request(), &body));
            }),
            ("oauth2", &|| drop(theirs(&client, &scopes, &body))),
        ],
    );

    let mut group = c.benchmark_group("build_parse");
    group.bench_function("ours/new_request", |b| {
        b.iter(|| ours(&config.default_request(), black_box(&body)));
    });
    group.bench_function("ours/reused_request", |b| {
        b.iter(|| ours(black_box(&reused), black_box(&body)));
    });
    group.bench_function("oauth2", |b| {
        b.iter(|| theirs(&client, &scopes, black_box(&body)));
    });
    group.finish();

    let mut group = c.benchmark_group("build");
    group.bench_function("ours/new_request", |b| {
        b.iter(|| config.default_request().to_http());
    });
    group.bench_function("ours/reused_request", |b| {
        b.iter(|| black_box(&reused).to_http());
    });
    group.bench_function("oauth2", |b| {
        let refuse =
            |request: oauth2::HttpRequest| -> Result<oauth2::HttpResponse, std::io::Error> {
                black_box(&request);
                Err(std::io::ErrorKind::Other.into())
            };
        b.iter(|| {
            client
                .exchange_client_credentials()
                .add_scopes(scopes.iter().cloned())
                .request(&refuse)
                .is_err()
        });
    });
    group.finish();

    let mut group = c.benchmark_group("parse");
    // In every row above, for both libraries: what the parse rows include besides parsing.
    group.bench_function("canned_response_only", |b| {
        b.iter(|| response(black_box(&body)));
    });
    group.bench_function("ours", |b| {
        let request: &TokenRequest = &reused;
        b.iter(|| {
            request
                .parse_http_response(sent_at(), &response(black_box(&body)))
                .unwrap()
        });
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(50)
        .nresamples(20_000);
    targets = build_parse
}
criterion_main!(benches);
