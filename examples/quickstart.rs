//! The main job, end to end, with nothing to install: start the embedded authorization
//! server on a loopback port, get a token with the blocking client, call a protected
//! resource with it, then do the same from async code with the reqwest middleware.
//!
//! ```text
//! cargo run --example quickstart
//! ```
//!
//! In a real service the token URL, client id and secret come from your configuration; the
//! rest of the code stays the same.
#![allow(clippy::print_stdout)] // an example shows what it does on stdout

use std::error::Error;
use std::time::SystemTime;

use client_credentials::embedded::{EmbeddedServer, Route};
use client_credentials::reqwest::{AuthMiddleware, reqwest, reqwest_middleware};
use client_credentials::ureq::{Client, Config, TokenParams, ureq};

fn main() -> Result<(), Box<dyn Error>> {
    // 1. An authorization server with one client, on 127.0.0.1 and an ephemeral port.
    let server = EmbeddedServer::builder()
        .scope("orders.read", "Read orders")
        .scope("orders.write", "Change orders")
        .client("billing-service", "s3cr3t+with/odd:chars", ["orders.read"])
        .start()?;
    println!("authorization server  {}", server.token_url());

    // 2. The client: configured once, shared by every thread of the service.
    let config = Config::builder()
        .token_url(server.token_url())
        .client_id("billing-service")
        .client_secret("s3cr3t+with/odd:chars")
        .scopes(["orders.read"])
        .build()?;
    let client = Client::new(config.clone());

    let token = client.token()?;
    let seconds_left = token
        .expires_in(SystemTime::now())
        .map_or(0, |left| left.as_secs());
    println!(
        "got a token           {} token for scopes {:?}, valid for {seconds_left} s",
        token.token_type(),
        token.scopes(),
    );

    // 3. Ask again as often as you like: the token is cached and refreshed ahead of expiry.
    for _ in 0..100 {
        client.token()?;
    }
    println!(
        "101 calls to token()  {} request(s) reached the token endpoint",
        server.requests(Route::Token)
    );

    // 4. Call the protected resource with it.
    let (request, _token) = client.authorize_ureq(ureq::get(server.resource_url()))?;
    let mut response = request.call()?;
    println!(
        "protected resource    HTTP {}: {}",
        response.status().as_u16(),
        response.body_mut().read_to_string()?
    );

    // 5. Errors are typed values that say what to do: a wrong secret is a rejection, not
    //    worth retrying, and never shows the secret.
    let wrong = Config::builder()
        .token_url(server.token_url())
        .client_id("billing-service")
        .client_secret("not-the-secret")
        .build()?;
    if let Err(e) = Client::new(wrong).token() {
        println!(
            "wrong secret          {e} (retryable: {})",
            e.is_retryable()
        );
    }
    // Asking for a scope the client may not have is refused the same way.
    if let Err(e) = client.token_for(&TokenParams::new().scopes(["orders.write"])) {
        println!("scope not allowed     {e}");
    }

    // 6. The same from async code: the reqwest client, and middleware that puts a valid
    //    token on every request (and retries once, with a fresh token, on a 401).
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let tokens = client_credentials::reqwest::Client::new(config)?;
        let http = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
            .with(AuthMiddleware::new(tokens))
            .build();
        let response = http.get(server.resource_url()).send().await?;
        println!(
            "async, via middleware HTTP {} from the protected resource",
            response.status().as_u16()
        );
        Ok::<_, Box<dyn Error>>(())
    })?;
    println!(
        "in all                {} token requests: one per client and request shape, two of \
         them refused",
        server.requests(Route::Token)
    );
    Ok(())
}
