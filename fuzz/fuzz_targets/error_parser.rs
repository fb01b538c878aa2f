//! Feeds arbitrary error answers to the error classifier and to the revocation and
//! introspection parsers, which share it. It must never panic, the classification must be
//! consistent (a 429 is rate limiting, a 5xx a server error), and no error may show the
//! client secret.
#![no_main]

use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use client_credentials_core::{Config, TokenError, TokenRequest};
use http::{HeaderMap, HeaderValue, StatusCode};
use libfuzzer_sys::fuzz_target;

const SECRET: &str = "error-fuzz-secret";

fn request() -> &'static TokenRequest {
    static REQUEST: OnceLock<TokenRequest> = OnceLock::new();
    REQUEST.get_or_init(|| {
        Config::builder()
            .token_url("https://as.example.com/token")
            .revocation_url("https://as.example.com/revoke")
            .introspection_url("https://as.example.com/introspect")
            .client_id("fuzz")
            .client_secret(SECRET)
            .build()
            .expect("valid config")
            .default_request()
    })
}

fuzz_target!(|data: &[u8]| {
    // Layout: [status hi, status lo, retry-after length, retry-after bytes..., body...].
    let [hi, lo, rlen, rest @ ..] = data else { return };
    let Ok(status) = StatusCode::from_u16(100 + u16::from_be_bytes([*hi, *lo]) % 500) else {
        return;
    };
    let split = usize::from(*rlen).min(rest.len());
    let (retry_after, body) = rest.split_at(split);
    let mut headers = HeaderMap::new();
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    if let Ok(v) = HeaderValue::from_bytes(retry_after) {
        headers.insert("retry-after", v.clone());
        headers.insert("www-authenticate", v);
    }
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let error = request().parse_error_response(now, status, &headers, body);
    match &error {
        TokenError::RateLimited { .. } => assert_eq!(status, StatusCode::TOO_MANY_REQUESTS),
        TokenError::Server { .. } => assert!(error.is_retryable()),
        _ if status.is_server_error() => panic!("a 5xx must be a server error: {error:?}"),
        _ => {}
    }
    let text = format!("{error} {error:?}");
    assert!(!text.contains(SECRET), "the secret leaked into an error");
    let config = request().config();
    // Revocation and introspection answers: neither the secret nor the token asked about
    // ever shows in their errors.
    let token = client_credentials_core::AccessToken::new("fuzzed-token-value");
    let (_, revocation) = config.revocation(&token).expect("configured");
    let (_, introspection) = config.introspection(&token).expect("configured");
    let errors = [
        revocation.handle_response(now, status, &headers, body).err(),
        introspection.handle_response(now, status, &headers, body).err(),
    ];
    for e in errors.into_iter().flatten() {
        let text = format!("{e} {e:?}");
        assert!(!text.contains(SECRET), "the secret leaked: {text}");
        assert!(!text.contains(token.expose_secret()), "the token leaked: {text}");
    }
});
