//! Authorizing every outgoing reqwest request with `reqwest-middleware` (feature `reqwest`),
//! against the embedded authorization server (`client_credentials::embedded`, feature
//! `embedded-server`) on 127.0.0.1 and its protected demo resource, started by the example
//! itself, so it runs with no setup:
//!
//! ```text
//! cargo run --example middleware
//! ```
//!
//! The server revokes the first token once the client has cached it, as happens after a key
//! rotation: the resource refuses it with a 401, and the middleware drops that token, fetches
//! a fresh one and retries the request once. Then the token endpoint fails (an injected 503),
//! and the middleware never sends a request without a token.
#![allow(clippy::print_stdout)] // an example shows what it does on stdout

use std::error::Error;

use client_credentials::embedded::{EmbeddedServer, Fault, Route};
use client_credentials::reqwest::{AuthMiddleware, Client, Config, reqwest, reqwest_middleware};

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    // A stand-in for an authorization server, with a resource that wants a bearer token it
    // issued and has not revoked.
    let server = EmbeddedServer::builder()
        .scope("orders.read", "Read orders")
        .client("reporting-service", "s3cr3t", ["orders.read"])
        .start_async()
        .await?;

    let config = Config::builder()
        .token_url(server.token_url())
        .client_id("reporting-service")
        .client_secret("s3cr3t")
        .scopes(["orders.read"])
        .build()?;
    let tokens = Client::new(config.clone())?;

    // The client caches a token; then the server revokes every token it issued.
    tokens.token().await?;
    server.revoke_all();

    // Your usual reqwest client, with the middleware: every request carries a valid token.
    let http = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(AuthMiddleware::new(tokens.clone()))
        .build();

    let response = http.get(server.resource_url()).send().await?;
    println!(
        "GET /resource -> {} {}",
        response.status(),
        response.text().await?
    );
    println!(
        "  the resource received {} requests: a 401 for the revoked token, then one retry with \
         a fresh token",
        server.requests(Route::Resource)
    );

    let response = http.get(server.resource_url()).send().await?;
    println!(
        "GET /resource again -> {}, with the cached token ({} token requests in all)",
        response.status(),
        server.requests(Route::Token)
    );

    // No reqwest-middleware? The same behaviour, one call.
    let response = tokens
        .send_authorized(reqwest::Client::new().get(server.resource_url()))
        .await?;
    println!("send_authorized -> {}", response.status());

    // When no token can be had, the request is never sent without one. A new client (with an
    // empty cache) meets a token endpoint that answers 503 until the fault is cleared.
    server.inject(Fault::status(503));
    let http = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(AuthMiddleware::new(Client::new(config)?))
        .build();
    let before = server.requests(Route::Resource);
    if let Err(error) = http.get(server.resource_url()).send().await {
        println!(
            "token endpoint down -> error: {error}; the resource received {} more requests",
            server.requests(Route::Resource) - before
        );
    }
    Ok(())
}
