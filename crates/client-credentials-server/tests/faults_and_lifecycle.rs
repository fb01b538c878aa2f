//! Request counters, injected faults, short-lived tokens, runtime client changes, and
//! starting and stopping (blocking and async).
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests: a panic is a failure report.

mod common;

use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant, SystemTime};

use client_credentials_core::server::RegisteredClient;
use client_credentials_core::{Config, TokenError};
use client_credentials_server::{EmbeddedServer, Fault, Route, StartError};
use common::{basic, get, post_form, send_http};

const RFC: (&str, &str) = ("authorization", "Basic czZCaGRSa3F0MzpnWDFmQmF0M2JW");

fn server() -> EmbeddedServer {
    EmbeddedServer::builder()
        .client("s6BhdRkqt3", "gX1fBat3bV", ["read"])
        .start()
        .unwrap()
}

fn fetch(addr: SocketAddr) -> common::Reply {
    post_form(addr, "/token", &[RFC], "grant_type=client_credentials")
}

fn token(addr: SocketAddr) -> String {
    let reply = fetch(addr);
    assert_eq!(reply.status, 200, "{}", reply.text());
    reply.json()["access_token"].as_str().unwrap().to_owned()
}

#[test]
fn counters_per_route() {
    let server = server();
    let addr = server.addr();
    let t = token(addr);
    fetch(addr);
    get(
        addr,
        "/resource",
        &[("authorization", &format!("Bearer {t}"))],
    );
    get(addr, "/.well-known/oauth-authorization-server", &[]);
    get(addr, "/jwks.json", &[]);
    post_form(addr, "/introspect", &[RFC], &format!("token={t}"));
    post_form(addr, "/revoke", &[RFC], &format!("token={t}"));
    let counts = server.counts();
    assert_eq!(counts.token, 2);
    assert_eq!(counts.resource, 1);
    assert_eq!(counts.metadata, 1);
    assert_eq!(counts.jwks, 1);
    assert_eq!(counts.introspection, 1);
    assert_eq!(counts.revocation, 1);
    assert_eq!(counts.total(), 7);
    assert_eq!(server.requests(Route::Token), 2);
    server.reset_counts();
    assert_eq!(server.counts().total(), 0);
}

#[test]
fn status_faults_for_the_next_n_requests() {
    let server = server();
    let addr = server.addr();
    server.inject(Fault::status(503).times(2));
    assert_eq!(server.pending_faults(), 1);
    for _ in 0..2 {
        let reply = fetch(addr);
        assert_eq!(reply.status, 503);
        assert_eq!(reply.json()["error"], "temporarily_unavailable");
    }
    assert_eq!(server.pending_faults(), 0);
    assert_eq!(fetch(addr).status, 200);
    assert_eq!(server.requests(Route::Token), 3, "faulted requests count");

    server.inject(Fault::status(500).times(1));
    assert_eq!(fetch(addr).json()["error"], "server_error");
    server.inject(Fault::status(401).times(1));
    assert_eq!(fetch(addr).json()["error"], "invalid_request");
    server.inject(Fault::status(0).times(0));
    assert_eq!(server.pending_faults(), 0, "times(0) never applies");
}

#[test]
fn faults_until_cleared_and_per_route() {
    let server = server();
    let addr = server.addr();
    server.inject(Fault::status(500));
    server.inject(Fault::status(502).on(Route::Resource));
    for _ in 0..3 {
        assert_eq!(fetch(addr).status, 500);
    }
    assert_eq!(get(addr, "/resource", &[]).status, 502);
    assert_eq!(
        get(addr, "/.well-known/oauth-authorization-server", &[]).status,
        200
    );
    server.clear_faults();
    assert_eq!(fetch(addr).status, 200);
    assert_eq!(get(addr, "/resource", &[]).status, 401);

    // Queued faults apply in order.
    server.inject(Fault::status(500).times(1));
    server.inject(Fault::status(503).times(1));
    assert_eq!(fetch(addr).status, 500);
    assert_eq!(fetch(addr).status, 503);
    assert_eq!(fetch(addr).status, 200);
}

#[test]
fn rate_limiting_reaches_the_client_as_retry_after() {
    let server = server();
    server.inject(Fault::rate_limited(Duration::from_secs(3)).times(1));
    let config = Config::builder()
        .token_url(server.token_url())
        .client_id("s6BhdRkqt3")
        .client_secret("gX1fBat3bV")
        .build()
        .unwrap();
    let request = config.default_request();
    let reply = send_http(server.addr(), &request.to_http());
    assert_eq!(reply.status, 429);
    assert_eq!(reply.header("retry-after"), Some("3"));
    let err = request
        .parse_response(
            SystemTime::now(),
            reply.status_code(),
            &reply.header_map(),
            &reply.body,
        )
        .unwrap_err();
    assert!(matches!(err, TokenError::RateLimited { .. }), "{err:?}");
    assert_eq!(err.retry_after(), Some(Duration::from_secs(3)));
    assert!(err.is_retryable());

    // An HTML page from a "proxy", with a header.
    server.inject(
        Fault::status(502)
            .body("text/html", "<html><body>Bad Gateway</body></html>")
            .header("x-proxy", "edge-1")
            .times(1),
    );
    let reply = send_http(server.addr(), &request.to_http());
    assert_eq!(reply.header("content-type"), Some("text/html"));
    assert_eq!(reply.header("x-proxy"), Some("edge-1"));
    let err = request
        .parse_response(
            SystemTime::now(),
            reply.status_code(),
            &reply.header_map(),
            &reply.body,
        )
        .unwrap_err();
    assert!(matches!(err, TokenError::Server { .. }), "{err:?}");
    let reply = send_http(server.addr(), &request.to_http());
    assert_eq!(reply.status, 200);
}

#[test]
fn delays() {
    let server = server();
    let addr = server.addr();
    server.inject(Fault::delay(Duration::from_millis(300)).times(1));
    let started = Instant::now();
    assert_eq!(fetch(addr).status, 200, "a delay then normal service");
    assert!(started.elapsed() >= Duration::from_millis(300));
    let started = Instant::now();
    server.inject(
        Fault::status(503)
            .with_delay(Duration::from_millis(200))
            .times(1),
    );
    assert_eq!(fetch(addr).status, 503);
    assert!(started.elapsed() >= Duration::from_millis(200));

    // Other requests are served while one is delayed: the delayed one stalls for 3 s, and
    // the other must be answered well within that, before the delayed one is (a server that
    // answered in turn would make it wait for the stall).
    const STALL: Duration = Duration::from_secs(3);
    server.inject(Fault::delay(STALL).times(1));
    let slow = std::thread::spawn(move || {
        let started = Instant::now();
        let status = fetch(addr).status;
        (status, started.elapsed())
    });
    let deadline = Instant::now() + Duration::from_secs(5);
    while server.requests(Route::Token) < 3 {
        assert!(
            Instant::now() < deadline,
            "the delayed request never arrived"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let started = Instant::now();
    assert_eq!(
        get(addr, "/.well-known/oauth-authorization-server", &[]).status,
        200
    );
    let took = started.elapsed();
    assert!(
        !slow.is_finished(),
        "answered only after the delayed request"
    );
    assert!(took < STALL / 2, "answered in {took:?}");
    let (status, took) = slow.join().unwrap();
    assert_eq!(status, 200);
    assert!(took >= STALL);
}

#[test]
fn short_lived_tokens_expire() {
    let server = EmbeddedServer::builder()
        .client("app", "pw", ["read"])
        .token_lifetime(Duration::from_secs(1))
        .start()
        .unwrap();
    let addr = server.addr();
    let reply = post_form(
        addr,
        "/token",
        &[("authorization", &basic("app", "pw"))],
        "grant_type=client_credentials",
    );
    assert_eq!(reply.json()["expires_in"], 1);
    let t = reply.json()["access_token"].as_str().unwrap().to_owned();
    let auth = format!("Bearer {t}");
    assert_eq!(
        get(addr, "/resource", &[("authorization", &auth)]).status,
        200
    );
    std::thread::sleep(Duration::from_millis(1100));
    let expired = get(addr, "/resource", &[("authorization", &auth)]);
    assert_eq!(expired.status, 401);
    assert!(
        expired
            .header("www-authenticate")
            .unwrap()
            .contains("invalid_token")
    );
    let info = post_form(
        addr,
        "/introspect",
        &[("authorization", &basic("app", "pw"))],
        &format!("token={t}"),
    );
    assert_eq!(info.json()["active"], false);
    assert_eq!(server.active_tokens(), 0);
}

#[test]
fn clients_change_at_runtime() {
    let server = server();
    let addr = server.addr();
    let new = ("authorization", basic("late", "pw"));
    let reply = post_form(
        addr,
        "/token",
        &[(new.0, &new.1)],
        "grant_type=client_credentials",
    );
    assert_eq!(reply.status, 401);
    server.add_client(RegisteredClient::new("late", "pw").scopes(["read"]));
    let reply = post_form(
        addr,
        "/token",
        &[(new.0, &new.1)],
        "grant_type=client_credentials&scope=read",
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert!(server.remove_client("late"));
    assert!(!server.remove_client("late"));
    let reply = post_form(
        addr,
        "/token",
        &[(new.0, &new.1)],
        "grant_type=client_credentials",
    );
    assert_eq!(reply.status, 401);
    // Rotating a secret: the old one stops working.
    server.add_client(RegisteredClient::new("s6BhdRkqt3", "rotated").scopes(["read"]));
    assert_eq!(fetch(addr).status, 401);
}

#[test]
fn drop_stops_the_server() {
    let server = server();
    let addr = server.addr();
    assert_eq!(fetch(addr).status, 200);
    // A request held by a delay does not hold the shutdown for long.
    server.inject(Fault::delay(Duration::from_secs(30)).times(1));
    let pending = std::thread::spawn(move || {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        use std::io::{Read, Write};
        let _ = s.write_all(b"POST /token HTTP/1.1\r\nhost: x\r\ncontent-length: 0\r\n\r\n");
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
    });
    std::thread::sleep(Duration::from_millis(100));
    let started = Instant::now();
    drop(server);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert!(
        TcpStream::connect(addr).is_err(),
        "nothing listens after drop"
    );
    pending.join().unwrap();
}

#[test]
fn chosen_port_and_start_errors() {
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = free.local_addr().unwrap().port();
    let taken = EmbeddedServer::builder().port(port).start().unwrap_err();
    assert!(
        matches!(taken, StartError::Bind { port: p, .. } if p == port),
        "{taken}"
    );
    drop(free);
    let server = EmbeddedServer::builder().port(port).start().unwrap();
    assert_eq!(server.port(), port);
    assert_eq!(server.token_url(), format!("http://127.0.0.1:{port}/token"));
    drop(server);

    for bad in [
        "token",
        "/",
        "/resource",
        "/jwks.json",
        "/{id}",
        "/a b",
        "/*x",
        "//t",
    ] {
        let err = EmbeddedServer::builder()
            .token_path(bad)
            .start()
            .unwrap_err();
        assert!(matches!(err, StartError::TokenPath(_)), "{bad}: {err}");
    }
    let err = EmbeddedServer::builder()
        .scope("bad scope", "")
        .start()
        .unwrap_err();
    assert!(matches!(err, StartError::Endpoint(_)));
}

#[test]
fn debug_shows_no_secret() {
    let builder = EmbeddedServer::builder().client("app", "very-secret-pw", ["read"]);
    assert!(!format!("{builder:?}").contains("very-secret-pw"));
    let server = builder.jwt_access_tokens().start().unwrap();
    assert!(!format!("{server:?}").contains("very-secret-pw"));
    let fault = Fault::status(500).body("text/plain", "body");
    assert!(format!("{fault:?}").contains("500"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_start_on_the_callers_runtime() {
    let server = EmbeddedServer::builder()
        .client("s6BhdRkqt3", "gX1fBat3bV", ["read"])
        .start_async()
        .await
        .unwrap();
    let addr = server.addr();
    let reply = tokio::task::spawn_blocking(move || fetch(addr))
        .await
        .unwrap();
    assert_eq!(reply.status, 200);
    assert_eq!(server.requests(Route::Token), 1);
    drop(server);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(TcpStream::connect(addr).is_err());
}

#[tokio::test(flavor = "current_thread")]
async fn blocking_start_inside_a_runtime() {
    // The blocking start runs its own runtime on its own thread, so even a single-threaded
    // caller runtime can talk to it.
    let server = server();
    let addr = server.addr();
    let reply = tokio::task::spawn_blocking(move || fetch(addr))
        .await
        .unwrap();
    assert_eq!(reply.status, 200);
}
