//! Heap use of the core, counted by a global allocator that tallies every allocation:
//!
//! 1. allocations and bytes per build + parse, ours against the `oauth2` crate (5.x), on the
//!    same inputs as `build_parse`;
//! 2. heap bytes held per cached token: a parsed `Token` on its own, and a token cached in
//!    `Cache` (one session per request shape, as the adapters keep them), measured as
//!    allocated minus freed across creating and populating 1 000 request shapes.
//!
//! Counting makes every allocation slower, so this bench reports counts, never times.
//!
//! Run: `cargo bench -p client-credentials-core --bench allocations`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a benchmark: a failure is a broken setup and should stop it"
)]
#![allow(clippy::print_stdout, reason = "a benchmark reports on stdout")]
#![allow(
    clippy::cast_precision_loss,
    reason = "counts far below 2^52, shown with one decimal"
)]

mod common;

use std::alloc::System;
use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use client_credentials_core::session::{Action, Cache, Policy, WallClock};
use client_credentials_core::{Token, TokenParams};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, Stats, StatsAlloc};

use common::{
    assert_same_request, body, config, oauth2_client, oauth2_scopes, ours, response, sent_at,
    theirs,
};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const OPS: usize = 1_000;
const SHAPES: usize = 1_000;

/// Allocation calls (reallocations included), bytes requested, and bytes still held.
struct PerOp {
    calls: f64,
    bytes: f64,
    held: f64,
}

fn per_op(stats: Stats, n: usize) -> PerOp {
    let n = n as f64;
    PerOp {
        calls: (stats.allocations + stats.reallocations) as f64 / n,
        bytes: stats.bytes_allocated as f64 / n,
        held: (stats.bytes_allocated as f64 - stats.bytes_deallocated as f64) / n,
    }
}

fn count(mut op: impl FnMut()) -> PerOp {
    op(); // warm: first-use allocations (lazy statics) are not the operation's
    let region = Region::new(GLOBAL);
    for _ in 0..OPS {
        op();
    }
    per_op(region.change(), OPS)
}

fn main() {
    // `cargo test --benches` runs bench targets with `--test`: nothing to check here.
    if std::env::args().any(|a| a == "--test" || a == "--list") {
        return;
    }
    let config = config();
    let client = oauth2_client();
    let scopes = oauth2_scopes();
    let body = body();
    let reused = config.default_request();
    assert_same_request(&config, &client, &scopes);

    println!("## Allocations per build + parse (mean of {OPS} operations)\n");
    println!("| operation | allocations | bytes allocated |");
    println!("| --- | ---: | ---: |");
    let rows: [(&str, PerOp); 6] = [
        (
            "ours, build + parse, new request",
            count(|| drop(black_box(ours(&config.default_request(), &body)))),
        ),
        (
            "ours, build + parse, reused request",
            count(|| drop(black_box(ours(&reused, &body)))),
        ),
        (
            "oauth2, build + parse",
            count(|| drop(black_box(theirs(&client, &scopes, &body)))),
        ),
        (
            "ours, build only (reused request)",
            count(|| drop(black_box(reused.to_http()))),
        ),
        (
            "ours, parse only",
            count(|| {
                drop(black_box(
                    reused.parse_http_response(sent_at(), &response(&body)),
                ));
            }),
        ),
        (
            "the canned response itself (in every row above)",
            count(|| drop(black_box(response(&body)))),
        ),
    ];
    for (name, r) in &rows {
        println!("| {name} | {:.1} | {:.0} |", r.calls, r.bytes);
    }

    println!("\n## Heap bytes held per cached token ({SHAPES} request shapes)\n");
    println!(
        "The access token itself is {} bytes.\n",
        common::ACCESS_TOKEN.len()
    );
    println!("| what is held | bytes per token |");
    println!("| --- | ---: |");

    // A parsed token on its own, as `Arc<Token>` (what the cache hands out).
    let region = Region::new(GLOBAL);
    let tokens: Vec<Arc<Token>> = (0..SHAPES)
        .map(|_| Arc::new(ours(&reused, &body)))
        .collect();
    let vec_bytes = (tokens.capacity() * size_of::<Arc<Token>>()) as f64;
    let held = per_op(region.change(), SHAPES).held - vec_bytes / SHAPES as f64;
    println!("| ours: `Arc<Token>` | {held:.0} |");
    drop(tokens);

    // The oauth2 crate's parsed response (it has no cache; for scale).
    let region = Region::new(GLOBAL);
    let parsed: Vec<_> = (0..SHAPES)
        .map(|_| theirs(&client, &scopes, &body))
        .collect();
    let vec_bytes = (parsed.capacity() * size_of_val(&parsed[0])) as f64;
    let held = per_op(region.change(), SHAPES).held - vec_bytes / SHAPES as f64;
    println!("| oauth2: `BasicTokenResponse` (no cache) | {held:.0} |");
    drop(parsed);

    // A token cached in the `Cache`: the session, its request shape, its map entries, the token.
    #[allow(
        clippy::disallowed_methods,
        reason = "one real origin for the session clock; nothing here is timed"
    )]
    let now = Instant::now();
    let region = Region::new(GLOBAL);
    let mut sessions = Cache::new(Policy::default(), WallClock::new(now, sent_at()), 7);
    let headers = response(&body).headers().clone();
    for i in 0..SHAPES {
        let request = config
            .request(&TokenParams::new().scopes([format!("orders.read.{i}")]))
            .unwrap();
        let Action::Send { id, .. } = sessions.poll(now, &request) else {
            panic!("a new session sends");
        };
        let outcome = sessions.handle_response(
            now,
            id,
            client_credentials_core::http::StatusCode::OK,
            &headers,
            &body,
        );
        assert!(outcome.changed());
        assert!(matches!(sessions.poll(now, &request), Action::Ready(_)));
    }
    drop(headers);
    let held = per_op(region.change(), SHAPES).held;
    println!("| ours: token cached in `Cache` (session + shape + entry + token) | {held:.0} |");
    black_box(&sessions);
}
