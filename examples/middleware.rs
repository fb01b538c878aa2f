//! Authorizing every outgoing reqwest request with `reqwest-middleware` (feature `reqwest`),
//! against a token endpoint and an API on 127.0.0.1, both started by the example itself, so
//! it runs with no setup:
//!
//! ```text
//! cargo run --example middleware
//! ```
//!
//! The API has revoked the first token it will see, as happens after a key rotation: the
//! middleware drops that token, fetches a fresh one and retries the request once.
#![allow(clippy::print_stdout)] // an example shows what it does on stdout

use std::error::Error;

use client_credentials::reqwest::{AuthMiddleware, Client, Config, reqwest, reqwest_middleware};
use client_credentials_testkit::{Reply, Request, Router, TestServer, TokenEndpoint, refused_url};

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    // Stand-ins for an authorization server and for an API that wants a bearer token and
    // has revoked `token-1`.
    let server = TestServer::start(
        Router::new()
            .route(
                "/oauth2/token",
                TokenEndpoint::new().client("reporting-service", "s3cr3t"),
            )
            .route("/api/orders", |request: &Request| {
                match request.header("authorization") {
                    Some("Bearer token-1") | None => Reply::new(401)
                        .header("www-authenticate", r#"Bearer error="invalid_token""#),
                    Some(_) => Reply::json(200, &serde_json::json!({ "orders": 3 })),
                }
            }),
    );

    let config = Config::builder()
        .token_url(server.url("/oauth2/token"))
        .client_id("reporting-service")
        .client_secret("s3cr3t")
        .scopes(["orders.read"])
        .build()?;
    let tokens = Client::new(config)?;

    // Your usual reqwest client, with the middleware: every request carries a valid token.
    let http = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(AuthMiddleware::new(tokens.clone()))
        .build();

    let response = http.get(server.url("/api/orders")).send().await?;
    println!(
        "GET /api/orders -> {} {}",
        response.status(),
        response.text().await?
    );
    println!(
        "  the API received {} requests: a 401 for the revoked token, then one retry with a \
         fresh token",
        server.count("/api/orders")
    );

    let response = http.get(server.url("/api/orders")).send().await?;
    println!(
        "GET /api/orders again -> {}, with the cached token ({} token requests in all)",
        response.status(),
        server.count("/oauth2/token")
    );

    // No reqwest-middleware? The same behaviour, one call.
    let response = tokens
        .send_authorized(reqwest::Client::new().get(server.url("/api/orders")))
        .await?;
    println!("send_authorized -> {}", response.status());

    // When no token can be had, the request is never sent without one.
    let down = Config::builder()
        .token_url(refused_url("/oauth2/token"))
        .client_id("reporting-service")
        .client_secret("s3cr3t")
        .build()?;
    let http = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(AuthMiddleware::new(Client::new(down)?))
        .build();
    let before = server.count("/api/orders");
    if let Err(error) = http.get(server.url("/api/orders")).send().await {
        println!(
            "token endpoint down -> error: {error}; the API received {} more requests",
            server.count("/api/orders") - before
        );
    }
    Ok(())
}
