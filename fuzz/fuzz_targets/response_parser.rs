//! Feeds arbitrary status, headers and body to the token response parser, and formats
//! whatever comes out. It must never panic, and an error must never show the body's token.
#![no_main]

use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use client_credentials_core::{Config, TokenRequest};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use libfuzzer_sys::fuzz_target;

fn request() -> &'static TokenRequest {
    static REQUEST: OnceLock<TokenRequest> = OnceLock::new();
    REQUEST.get_or_init(|| {
        Config::builder()
            .token_url("https://as.example.com/token")
            .client_id("fuzz")
            .client_secret("fuzz-secret")
            .scopes(["a", "b"])
            .max_body(64 * 1024)
            .build()
            .expect("valid config")
            .default_request()
    })
}

const CONTENT_TYPES: &[&str] = &[
    "application/json",
    "application/json; charset=utf-8",
    "application/x-www-form-urlencoded",
    "text/plain",
    "text/html",
    "",
];

fuzz_target!(|data: &[u8]| {
    // Layout: [status hi, status lo, content type, header length, header bytes..., body...].
    let [hi, lo, ct, hlen, rest @ ..] = data else { return };
    let status = 100 + (u16::from_be_bytes([*hi, *lo]) % 500);
    let Ok(status) = StatusCode::from_u16(status) else { return };
    let mut headers = HeaderMap::new();
    let ct = CONTENT_TYPES[usize::from(*ct) % CONTENT_TYPES.len()];
    if !ct.is_empty() {
        headers.insert("content-type", HeaderValue::from_static(ct));
    }
    let split = usize::from(*hlen).min(rest.len());
    let (header_bytes, body) = rest.split_at(split);
    // Extra header lines "name: value\n" (Retry-After, WWW-Authenticate…).
    for line in header_bytes.split(|b| *b == b'\n') {
        if let Some(pos) = line.iter().position(|b| *b == b':') {
            let (name, value) = line.split_at(pos);
            if let (Ok(n), Ok(v)) = (HeaderName::from_bytes(name), HeaderValue::from_bytes(&value[1..])) {
                headers.append(n, v);
            }
        }
    }
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    match request().parse_response(now, status, &headers, body) {
        Ok(token) => {
            let _ = format!("{token:?}");
            let _ = token.authorization_header();
            let _ = token.expires_within(now, Duration::from_secs(30));
        }
        Err(error) => {
            let text = format!("{error} {error:?}");
            // Not even a piece of it: texts are scrubbed whole before they are shortened.
            let secret = "fuzz-secret";
            // (A piece the input holds on its own, outside a whole secret, may be shown.)
            for start in 0..=secret.len() - 8 {
                let piece = &secret.as_bytes()[start..start + 8];
                let alone = data.windows(8).any(|w| w == piece);
                assert!(alone || !text.as_bytes().windows(8).any(|w| w == piece), "the secret leaked into an error");
            }
            let _ = (error.is_retryable(), error.retry_after(), error.status());
        }
    }
    let _ = request().parse_error_response(now, status, &headers, body);
});
