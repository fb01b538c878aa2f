//! The blocking client (feature `ureq`) against a token endpoint and an API on 127.0.0.1,
//! both started by the example itself, so it runs with no setup:
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

use client_credentials::ureq::{Client, Config, TokenParams, ureq};
use client_credentials_testkit::{Reply, Request, Router, TestServer, TokenEndpoint};

fn main() -> Result<(), Box<dyn Error>> {
    // Stand-ins for an authorization server (one confidential client, one-minute tokens)
    // and a resource server that wants a bearer token.
    let server = TestServer::start(
        Router::new()
            .route(
                "/oauth2/token",
                TokenEndpoint::new()
                    .lifetime(Duration::from_secs(60))
                    .client("reporting-service", "s3cr3t"),
            )
            .route("/api/orders", |request: &Request| {
                match request.header("authorization") {
                    Some(auth) if auth.starts_with("Bearer ") => {
                        Reply::json(200, &serde_json::json!({ "orders": 3 }))
                    }
                    _ => Reply::new(401).header("www-authenticate", "Bearer"),
                }
            }),
    );

    let config = Config::builder()
        .token_url(server.url("/oauth2/token"))
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
        server.count("/oauth2/token"),
        token.token_type(),
        token.scopes(),
        lifetime.as_secs()
    );

    // Call the API with the token; on a 401, drop exactly that token and retry once.
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let (request, used) = client.authorize_ureq(agent.get(server.url("/api/orders")))?;
    let mut response = request.call()?;
    if response.status() == 401 {
        client.invalidate(&used);
        let (request, _) = client.authorize_ureq(agent.get(server.url("/api/orders")))?;
        response = request.call()?;
    }
    println!(
        "GET /api/orders -> {} {}",
        response.status(),
        response.body_mut().read_to_string()?
    );

    // Another scope is another cache entry, with its own token.
    let reports = client.token_for(&TokenParams::new().scopes(["reports.read"]))?;
    println!(
        "token for {:?}: a separate token ({} token requests in all)",
        reports.scopes(),
        server.count("/oauth2/token")
    );

    let counters = client.counters();
    println!(
        "counters for the default scopes: {} fetch started, {} succeeded, {} cache hits",
        counters.fetches_started, counters.fetches_succeeded, counters.cache_hits
    );

    // A wrong secret is a typed rejection, with a readable message and no secret in it.
    let wrong = Config::builder()
        .token_url(server.url("/oauth2/token"))
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
