//! The test server against a raw TCP client.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant, SystemTime};

use client_credentials_testkit::{
    Framing, Reply, RetryAfter, Router, Script, TestServer, TokenEndpoint, refused_url,
};

/// Sends a POST and reads until the server closes; returns what arrived and how reading
/// ended.
fn post(
    server: &TestServer,
    path: &str,
    headers: &str,
    body: &str,
) -> (String, std::io::Result<()>) {
    let mut tcp = TcpStream::connect(server.addr()).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        tcp,
        "POST {path} HTTP/1.1\r\nhost: test\r\n{headers}content-length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 8192];
    let end = loop {
        match tcp.read(&mut chunk) {
            Ok(0) => break Ok(()),
            Ok(n) => bytes.extend_from_slice(&chunk[..n]),
            Err(e) => break Err(e),
        }
    };
    (String::from_utf8_lossy(&bytes).into_owned(), end)
}

const FORM: &str = "content-type: application/x-www-form-urlencoded\r\n";

#[test]
fn token_endpoint_issues_and_authenticates() {
    let server = TestServer::start(
        TokenEndpoint::new()
            .lifetime(Duration::from_secs(2))
            .client("aaa/;&", "bbb/;&"),
    );
    let golden = "authorization: Basic YWFhJTJGJTNCJTI2OmJiYiUyRiUzQiUyNg==\r\n";
    let (answer, _) = post(
        &server,
        "/token",
        &format!("{FORM}{golden}"),
        "grant_type=client_credentials&scope=a+b",
    );
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    assert!(answer.contains(r#""access_token":"token-1""#), "{answer}");
    assert!(answer.contains(r#""expires_in":2"#), "{answer}");
    assert!(answer.contains(r#""scope":"a b""#), "{answer}");

    let (answer, _) = post(
        &server,
        "/token",
        FORM,
        "grant_type=client_credentials&client_id=x&client_secret=y",
    );
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    assert!(answer.contains("invalid_client"), "{answer}");
    assert!(
        answer
            .to_ascii_lowercase()
            .contains("www-authenticate: basic"),
        "{answer}"
    );

    let json = "content-type: application/json\r\n";
    let body =
        r#"{"grant_type":"client_credentials","client_id":"aaa/;&","client_secret":"bbb/;&"}"#;
    let (answer, _) = post(&server, "/token", json, body);
    assert!(answer.contains(r#""access_token":"token-2""#), "{answer}");

    let both = format!("{FORM}{golden}");
    let (answer, _) = post(
        &server,
        "/token",
        &both,
        "grant_type=client_credentials&client_secret=bbb",
    );
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");

    assert_eq!(server.count("/token"), 4);
    let requests = server.requests();
    assert_eq!(
        requests[0].basic_auth(),
        Some(("aaa/;&".into(), "bbb/;&".into()))
    );
    assert!(requests[0].contains("bbb/;&"));
    assert!(!requests[1].contains("bbb/;&"));
    assert_eq!(
        requests[2].param("client_secret").as_deref(),
        Some("bbb/;&")
    );
}

#[test]
fn scripts_and_routes() {
    let server = TestServer::start(
        Router::new()
            .route(
                "/token",
                Script::new()
                    .times(2, Reply::new(503))
                    .once(Reply::rate_limited(RetryAfter::Seconds(7)))
                    .then(Reply::token("t", None)),
            )
            .route(
                "/moved",
                Reply::redirect(307, "http://127.0.0.1:9/elsewhere"),
            ),
    );
    let statuses: Vec<String> = (0..5)
        .map(|_| post(&server, "/token", FORM, "").0[..12].to_owned())
        .collect();
    assert_eq!(
        statuses,
        [
            "HTTP/1.1 503",
            "HTTP/1.1 503",
            "HTTP/1.1 429",
            "HTTP/1.1 200",
            "HTTP/1.1 200"
        ]
    );
    let (answer, _) = post(&server, "/moved?x=1", FORM, "");
    assert!(answer.starts_with("HTTP/1.1 307"), "{answer}");
    assert!(
        answer.contains("location: http://127.0.0.1:9/elsewhere"),
        "{answer}"
    );
    let (answer, _) = post(&server, "/nothing", FORM, "");
    assert!(answer.starts_with("HTTP/1.1 404"), "{answer}");
    assert_eq!(server.count("/token"), 5);
    assert_eq!(server.count("/moved"), 1);
    assert_eq!(server.request_count(), 7);
    assert_eq!(server.requests()[5].target, "/moved?x=1");
}

#[test]
fn retry_after_as_http_date() {
    let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    assert_eq!(
        RetryAfter::Date(at).header_value(),
        "Tue, 14 Nov 2023 22:13:20 GMT"
    );
}

#[test]
fn framings() {
    let body = r#"{"access_token":"abc","token_type":"Bearer"}"#;
    for framing in [Framing::ContentLength, Framing::Chunked, Framing::Close] {
        let server = TestServer::start(Reply::text(200, "application/json", body).framing(framing));
        let (answer, end) = post(&server, "/", "", "");
        end.unwrap();
        match framing {
            Framing::Chunked => {
                assert!(answer.contains("transfer-encoding: chunked"), "{answer}");
                assert!(
                    answer.ends_with(&format!("{:x}\r\n{body}\r\n0\r\n\r\n", body.len())),
                    "{answer}"
                );
            }
            Framing::ContentLength => {
                assert!(answer.contains(&format!("content-length: {}", body.len())));
                assert!(answer.ends_with(body));
            }
            _ => {
                assert!(
                    !answer.contains("content-length") && !answer.contains("transfer-encoding")
                );
                assert!(answer.ends_with(body));
            }
        }
    }
}

#[test]
fn truncation_reset_and_large_bodies() {
    let full = r#"{"access_token":"abc","token_type":"Bearer"}"#;
    let server = TestServer::start(Reply::text(200, "application/json", full).close_after(10));
    let (answer, end) = post(&server, "/", "", "");
    end.unwrap();
    assert!(answer.contains(&format!("content-length: {}", full.len())));
    assert!(answer.ends_with(&full[..10]), "{answer}");

    let server = TestServer::start(Reply::text(200, "application/json", full).reset_after(10));
    let (_, end) = post(&server, "/", "", "");
    assert_eq!(end.unwrap_err().kind(), ErrorKind::ConnectionReset);

    let server = TestServer::start(Reply::large(10 * 1024 * 1024));
    let (answer, end) = post(&server, "/", "", "");
    end.unwrap();
    assert!(answer.contains("content-length: 10485760"));
    assert!(answer.len() > 10 * 1024 * 1024);
}

#[test]
fn stalls_are_bounded_and_shutdown_cuts_them_short() {
    let server = TestServer::start(
        Reply::text(200, "text/plain", "0123456789").stall_after(4, Duration::from_millis(300)),
    );
    let started = Instant::now();
    let (answer, _) = post(&server, "/", "", "");
    assert!(answer.ends_with("0123456789"));
    assert!(started.elapsed() >= Duration::from_millis(300));

    // A 30-second stall, cut short by dropping the server.
    let server = TestServer::start(Reply::new(200).delay(Duration::from_secs(30)));
    let addr = server.addr();
    let client = std::thread::spawn(move || {
        let mut tcp = TcpStream::connect(addr).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        tcp.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n").unwrap();
        let mut answer = Vec::new();
        let _ = tcp.read_to_end(&mut answer);
        answer
    });
    assert!(server.wait_for_requests(1, Duration::from_secs(5)));
    let started = Instant::now();
    drop(server);
    let answer = client.join().unwrap();
    assert!(answer.is_empty());
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn hang_up_and_refused() {
    let server = TestServer::start(Reply::hang_up());
    let (answer, _) = post(&server, "/", "", "");
    assert!(answer.is_empty());
    assert_eq!(server.request_count(), 1);
    assert_eq!(server.connections(), 1);

    let url = refused_url("/token");
    let addr = url.trim_start_matches("http://").trim_end_matches("/token");
    let err = TcpStream::connect(addr).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused);
}
