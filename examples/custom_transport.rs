//! Your own transport: drive the core's token cache with an HTTP client we do not ship.
//!
//! Here the "HTTP client" is the smallest one there is: HTTP/1.0 over a `std::net::TcpStream`,
//! plain `http://` to the embedded authorization server (`client_credentials::embedded`,
//! feature `embedded-server`) that the example starts on 127.0.0.1 itself. The point is
//! the shape: a transport is a few dozen lines that move bytes, and every OAuth decision
//! (what to send, whether the answer is a token, when to refresh, how long to back off) stays
//! in the core.
//!
//! ```text
//! cargo run --example custom_transport
//! ```
#![allow(clippy::print_stdout)] // an example shows what it does on stdout

use std::error::Error;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use client_credentials::embedded::{EmbeddedServer, Fault, Route};
use client_credentials::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use client_credentials::session::{Action, Cache, Event, Failure, Policy, WallClock};
use client_credentials::{
    BodyBuffer, Config, HttpRequest, Token, TokenError, TokenRequest, TransportError,
    TransportErrorKind,
};

/// The transport: send one request, return status, headers and a body read through the cap.
fn send(
    request: HttpRequest,
    cap: usize,
) -> Result<(StatusCode, HeaderMap, Vec<u8>), TransportError> {
    let io = |kind| move |e: std::io::Error| TransportError::new(kind, e);
    let authority = request.uri().authority().ok_or_else(|| {
        TransportError::new(TransportErrorKind::Other, "token URL has no authority")
    })?;
    let port = request.uri().port_u16().unwrap_or(80);
    let mut tcp =
        TcpStream::connect((authority.host(), port)).map_err(io(TransportErrorKind::Connect))?;
    // Every network call has a timeout.
    tcp.set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(io(TransportErrorKind::Io))?;
    tcp.set_write_timeout(Some(Duration::from_secs(10)))
        .map_err(io(TransportErrorKind::Io))?;

    let mut head = format!(
        "{} {} HTTP/1.0\r\nhost: {authority}\r\n",
        request.method(),
        request.uri().path()
    );
    for (name, value) in request.headers() {
        head.push_str(&format!(
            "{name}: {}\r\n",
            value.to_str().unwrap_or_default()
        ));
    }
    head.push_str(&format!("content-length: {}\r\n\r\n", request.body().len()));
    tcp.write_all(head.as_bytes())
        .map_err(io(TransportErrorKind::Io))?;
    tcp.write_all(request.body())
        .map_err(io(TransportErrorKind::Io))?;

    // Read head and body, never more than the cap allows (plus room for the head).
    let mut raw = Vec::new();
    tcp.take((cap + 16 * 1024) as u64)
        .read_to_end(&mut raw)
        .map_err(io(TransportErrorKind::Io))?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| {
            TransportError::new(TransportErrorKind::Io, "response ended inside its head")
        })?;
    let head = String::from_utf8_lossy(&raw[..split]);
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|code| code.parse::<u16>().ok())
        .and_then(|code| StatusCode::from_u16(code).ok())
        .ok_or_else(|| TransportError::new(TransportErrorKind::Io, "bad status line"))?;
    let mut headers = HeaderMap::new();
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.trim().as_bytes()),
            HeaderValue::from_str(value.trim()),
        ) {
            headers.append(n, v);
        }
    }
    // The core's cap: an oversized body is reported by the session as `TooLarge`.
    let mut body = BodyBuffer::new(cap + 1);
    let _ = body.push(&raw[split + 4..]);
    Ok((status, headers, body.into_bytes()))
}

/// The driving loop: poll, do what the cache says, report back, drain the events.
/// Single-threaded, so a `Wait` can only mean "wait for a deadline"; a multi-threaded driver
/// would wait on a condition variable, woken when an input's outcome says it changed
/// something (see the ureq adapter).
fn token(cache: &mut Cache, request: &TokenRequest) -> Result<Arc<Token>, TokenError> {
    let cap = request.config().max_body();
    loop {
        match cache.poll(Instant::now(), request) {
            Action::Ready(token) => return Ok(token),
            Action::Failed(error) => return Err(error),
            Action::Wait(until) => {
                std::thread::sleep(until.saturating_duration_since(Instant::now()))
            }
            Action::Send { id, request, .. } => {
                let _outcome = match send(request, cap) {
                    Ok((status, headers, body)) => {
                        cache.handle_response(Instant::now(), id, status, &headers, &body)
                    }
                    Err(error) => {
                        cache.handle_failure(Instant::now(), id, Failure::Transport(error))
                    }
                };
                // What happened, for the logs (a fleet driver would also publish here).
                while let Some(event) = cache.poll_event() {
                    match event {
                        Event::Fetched { .. } => println!("  event: token fetched"),
                        Event::FetchFailed { error, .. } => {
                            println!("  event: fetch failed: {error}")
                        }
                        _ => {}
                    }
                }
            }
        }
    }
}

fn main() -> Result<(), Box<dyn Error>> {
    // A token endpoint that issues two-second tokens, but first fails once with a 503 and
    // `Retry-After: 1` (an injected fault).
    let server = EmbeddedServer::builder()
        .client("inventory-sync", "s3cr3t", ["inventory.read"])
        .token_lifetime(Duration::from_secs(2))
        .start()?;
    server.inject(Fault::status(503).header("retry-after", "1").times(1));
    let config = Config::builder()
        .token_url(server.token_url())
        .client_id("inventory-sync")
        .client_secret("s3cr3t")
        .build()?;
    let clock = WallClock::new(Instant::now(), SystemTime::now());
    let mut cache = Cache::new(Policy::default(), clock, 7);
    let request = config.default_request();

    // The first fetch meets the 503: the error comes back typed, with the server's Retry-After.
    match token(&mut cache, &request) {
        Err(e) => println!("first try:  {e} (retryable: {})", e.is_retryable()),
        Ok(_) => println!("first try:  unexpectedly got a token"),
    }
    // The session backs off until the Retry-After has passed; asking again before then costs
    // no request. Wait until the end of the backoff (the session's next attempt) and ask
    // again.
    if let Some(until) = cache.next_refresh(request.cache_key()) {
        std::thread::sleep(until.saturating_duration_since(Instant::now()));
    }
    let first = token(&mut cache, &request)?;
    println!(
        "second try: got a {} token, {} requests so far",
        first.token_type(),
        server.requests(Route::Token)
    );

    // Cache hits cost nothing; after the refresh point a new token is fetched.
    for _ in 0..1000 {
        token(&mut cache, &request)?;
    }
    println!(
        "1000 more calls: still {} requests",
        server.requests(Route::Token)
    );
    std::thread::sleep(Duration::from_secs(2));
    let second = token(&mut cache, &request)?;
    println!(
        "after expiry: a new token ({}), {} requests in all",
        if second.access_token() == first.access_token() {
            "same"
        } else {
            "different"
        },
        server.requests(Route::Token)
    );
    let c = cache.total_counters();
    println!(
        "counters:   {} fetches started, {} succeeded, {} failed, {} cache hits",
        c.fetches_started, c.fetches_succeeded, c.fetches_failed, c.cache_hits
    );
    Ok(())
}
