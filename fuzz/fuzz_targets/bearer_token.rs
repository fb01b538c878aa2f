//! Feeds arbitrary `Authorization` headers (none, one or several, any bytes a header value
//! may hold) to the resource server's bearer extraction (RFC 6750 §2.1). It must never
//! panic; a token it returns is exactly one `b64token` that was in the only header, and
//! every refusal renders a challenge; `Debug` of the token does not depend on it.
#![no_main]

use client_credentials_core::AccessToken;
use client_credentials_core::server::{BearerError, bearer_token};
use http::{HeaderMap, HeaderValue, header::AUTHORIZATION};
use libfuzzer_sys::fuzz_target;

fn is_b64token(t: &[u8]) -> bool {
    let end = t.iter().position(|b| *b == b'=').unwrap_or(t.len());
    end > 0
        && t[..end]
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(b))
        && t[end..].iter().all(|b| *b == b'=')
}

fuzz_target!(|data: &[u8]| {
    // Header values separated by 0x00 (a byte no header value holds); the first byte, when
    // odd, adds an unrelated header so that only Authorization counts.
    let Some((flags, rest)) = data.split_first() else { return };
    let mut headers = HeaderMap::new();
    if flags & 1 == 1 {
        headers.insert("x-authorization", HeaderValue::from_static("Bearer decoy"));
    }
    let mut count = 0;
    if !rest.is_empty() {
        for value in rest.split(|b| *b == 0) {
            if let Ok(v) = HeaderValue::from_bytes(value) {
                headers.append(AUTHORIZATION, v);
                count += 1;
            }
        }
    }
    match bearer_token(&headers) {
        Ok(token) => {
            assert_eq!(count, 1, "a token from {count} headers");
            let t = token.expose_secret().as_bytes();
            assert!(is_b64token(t), "not a b64token: {t:?}");
            let value = headers.get(AUTHORIZATION).expect("one header").as_bytes();
            assert!(value[..6].eq_ignore_ascii_case(b"bearer"));
            assert_eq!(value[6..].trim_ascii(), t, "the token is the whole credential");
            let debug = format!("{:?}", AccessToken::new("x"));
            assert_eq!(format!("{token:?}"), debug, "Debug depends on the token");
        }
        Err(e) => {
            match e {
                BearerError::Missing => assert_eq!(count, 0),
                BearerError::Multiple => assert!(count > 1),
                _ => assert_eq!(count, 1),
            }
            let _ = e.challenge().to_response();
            let _ = e.to_string();
        }
    }
});
