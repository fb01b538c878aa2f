//! The async client (feature `reqwest`) against the embedded authorization server
//! (`client_credentials::embedded`, feature `embedded-server`) on 127.0.0.1, started by the
//! example itself, so it runs with no setup:
//!
//! ```text
//! cargo run --example async_client
//! ```
//!
//! In a real service, the token URL, client id and secret come from your configuration, and
//! the endpoint is your authorization server's.
#![allow(clippy::print_stdout)] // an example shows what it does on stdout

use std::error::Error;
use std::time::{Duration, Instant, SystemTime};

use client_credentials::embedded::{EmbeddedServer, Route};
use client_credentials::reqwest::{Client, Config, TokenParams};

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    // A stand-in for an authorization server: one confidential client, and tokens that live
    // two seconds, so that a refresh happens while the example runs.
    let server = EmbeddedServer::builder()
        .scope("orders.read", "Read orders")
        .scope("reports.read", "Read reports")
        .client(
            "reporting-service",
            "s3cr3t",
            ["orders.read", "reports.read"],
        )
        .token_lifetime(Duration::from_secs(2))
        .start_async()
        .await?;

    let config = Config::builder()
        .token_url(server.token_url())
        .client_id("reporting-service")
        .client_secret("s3cr3t")
        .scopes(["orders.read"])
        .build()?;
    // One client per service, cloned into every task. With background refresh, tokens are
    // renewed ahead of expiry even when nobody asks.
    let client = Client::builder(config).background_refresh(true).build()?;

    // A hundred tasks ask for a token at once: one request goes out, all share it.
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { client.token().await })
        })
        .collect();
    for task in tasks {
        task.await??;
    }
    let first = client.token().await?;
    println!(
        "101 calls to token(), {} token request: a {} token for {:?}, valid for {}s",
        server.requests(Route::Token),
        first.token_type(),
        first.scopes(),
        remaining(first.expires_at()).as_secs_f32().round()
    );

    // Wait past the token's expiry. The background task refreshed it meanwhile, so this call
    // is served from the cache.
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let asked = Instant::now();
    let token = client.token().await?;
    println!(
        "2.2 s later, the first token has expired: got {} token in {:?}, refreshed in the \
         background ({} token requests in all)",
        if token.access_token() == first.access_token() {
            "the same"
        } else {
            "a new"
        },
        asked.elapsed(),
        server.requests(Route::Token)
    );

    // Another scope is another cache entry, with its own token.
    let reports = client
        .token_for(&TokenParams::new().scopes(["reports.read"]))
        .await?;
    println!(
        "token for {:?}: a separate token ({} token requests in all)",
        reports.scopes(),
        server.requests(Route::Token)
    );

    let counters = client.counters();
    println!(
        "counters for the default scopes: {} fetches started, {} succeeded, {} cache hits",
        counters.fetches_started, counters.fetches_succeeded, counters.cache_hits
    );

    // A wrong secret is a typed rejection, with a readable message and no secret in it.
    let wrong = Config::builder()
        .token_url(server.token_url())
        .client_id("reporting-service")
        .client_secret("not-the-secret")
        .build()?;
    if let Err(error) = Client::new(wrong)?.token().await {
        println!(
            "with a wrong secret: {error} (retryable: {})",
            error.is_retryable()
        );
    }
    Ok(())
}

/// How long until `at`, zero if it has passed or is unknown.
fn remaining(at: Option<SystemTime>) -> Duration {
    at.and_then(|at| at.duration_since(SystemTime::now()).ok())
        .unwrap_or_default()
}
