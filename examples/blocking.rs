//! The blocking client (feature `ureq`) against the embedded authorization server
//! (`client_credentials::embedded`, feature `embedded-server`) on 127.0.0.1, which also serves
//! a protected demo resource; the example starts it itself, so it runs with no setup:
//!
//! ```text
//! cargo run --example blocking
//! ```
//!
//! In a real service, the token URL, client id and secret come from your configuration, and
//! the endpoint is your authorization server's.
#![allow(clippy::print_stdout)] // an example shows what it does on stdout

use std::error::Error;
use std::thread;
use std::time::{Duration, SystemTime};

use client_credentials::embedded::{EmbeddedServer, Route};
use client_credentials::ureq::{Client, Config, TokenParams, ureq};

fn main() -> Result<(), Box<dyn Error>> {
    // A stand-in for an authorization server (one confidential client, one-minute tokens)
    // with a resource that wants a bearer token it issued.
    let server = EmbeddedServer::builder()
        .scope("orders.read", "Read orders")
        .scope("reports.read", "Read reports")
        .client(
            "reporting-service",
            "s3cr3t",
            ["orders.read", "reports.read"],
        )
        .token_lifetime(Duration::from_secs(60))
        .start()?;

    let config = Config::builder()
        .token_url(server.token_url())
        .client_id("reporting-service")
        .client_secret("s3cr3t")
        .scopes(["orders.read"])
        .build()?;
    let client = Client::new(config);

    // Eight threads ask for a token at once: one request goes out, all eight share it.
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let client = client.clone();
            thread::spawn(move || client.token())
        })
        .collect();
    for t in threads {
        t.join().map_err(|_| "a thread panicked")??;
    }
    let token = client.token()?;
    let lifetime = token
        .expires_at()
        .and_then(|at| at.duration_since(SystemTime::now()).ok())
        .unwrap_or_default();
    println!(
        "9 calls to token(), {} token request: a {} token for {:?}, valid for another {}s",
        server.requests(Route::Token),
        token.token_type(),
        token.scopes(),
        lifetime.as_secs()
    );

    // The server forgets every token it issued, as after a key rotation: the cached token is
    // still unexpired, but the resource now refuses it.
    server.revoke_all();

    // Call the resource with the token; on a 401, drop exactly that token and retry once.
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let (request, used) = client.authorize_ureq(agent.get(server.resource_url()))?;
    let mut response = request.call()?;
    if response.status() == 401 {
        println!("GET /resource -> 401 with the revoked token: dropped it, retrying once");
        client.invalidate(&used);
        let (request, _) = client.authorize_ureq(agent.get(server.resource_url()))?;
        response = request.call()?;
    }
    println!(
        "GET /resource -> {} {}",
        response.status(),
        response.body_mut().read_to_string()?
    );

    // Another scope is another cache entry, with its own token.
    let reports = client.token_for(&TokenParams::new().scopes(["reports.read"]))?;
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
    if let Err(error) = Client::new(wrong).token() {
        println!(
            "with a wrong secret: {error} (retryable: {})",
            error.is_retryable()
        );
    }
    Ok(())
}
