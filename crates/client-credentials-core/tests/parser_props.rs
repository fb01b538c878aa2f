//! Property tests of the response parser: arbitrary input never panics, valid tokens always
//! come through, and no error ever carries the token of the body it came from.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly

use std::time::{Duration, SystemTime};

use client_credentials_core::{Config, Token, TokenError, TokenRequest};
use http::{HeaderMap, HeaderValue, StatusCode};
use proptest::prelude::*;

fn request() -> TokenRequest {
    Config::builder()
        .token_url("https://as.example.com/token")
        .client_id("c")
        .client_secret("s3cr3t-value")
        .max_body(4096)
        .build()
        .unwrap()
        .default_request()
}

fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)
}

fn content_types() -> impl Strategy<Value = Option<&'static str>> {
    prop::sample::select(vec![
        None,
        Some("application/json"),
        Some("application/json; charset=utf-8"),
        Some("application/x-www-form-urlencoded"),
        Some("text/plain"),
        Some("text/html"),
        Some("application/problem+json"),
    ])
}

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>().prop_map(serde_json::Value::from),
        "[ -~]{0,12}".prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(2, 8, 4, |inner| {
        prop::collection::vec(inner, 0..4).prop_map(serde_json::Value::from)
    })
}

fn member_names() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "access_token",
        "token_type",
        "expires_in",
        "scope",
        "refresh_in",
        "error",
        "error_description",
        "error_uri",
        "Access_Token",
        "EXPIRES_IN",
        "expires_on",
        "x",
    ])
    .prop_map(str::to_owned)
}

fn parse(
    status: u16,
    ct: Option<&str>,
    retry_after: Option<&str>,
    body: &[u8],
) -> Result<Token, TokenError> {
    let mut headers = HeaderMap::new();
    if let Some(ct) = ct {
        headers.insert("content-type", HeaderValue::from_str(ct).unwrap());
    }
    if let Some(r) = retry_after.and_then(|r| HeaderValue::from_str(r).ok()) {
        headers.insert("retry-after", r);
    }
    request().parse_response(now(), StatusCode::from_u16(status).unwrap(), &headers, body)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(
        status in 100u16..600,
        ct in content_types(),
        retry in proptest::option::of("[ -~]{0,40}"),
        body in prop::collection::vec(any::<u8>(), 0..600),
    ) {
        let result = parse(status, ct, retry.as_deref(), &body);
        if let Err(e) = &result {
            let _ = (e.to_string(), format!("{e:?}"), e.is_retryable(), e.status(), e.retry_after());
        }
    }

    #[test]
    fn arbitrary_json_objects_never_panic(
        status in prop::sample::select(vec![200u16, 201, 400, 401, 429, 500, 503]),
        members in prop::collection::vec((member_names(), json_value()), 0..8),
    ) {
        let map: serde_json::Map<String, serde_json::Value> = members.into_iter().collect();
        let body = serde_json::to_vec(&map).unwrap();
        let _ = parse(status, Some("application/json"), None, &body);
    }

    #[test]
    fn valid_tokens_come_through(
        token in "[A-Za-z0-9._~+/=-]{1,200}",
        ty in prop::sample::select(vec!["Bearer", "bearer", "BEARER"]),
        expires in proptest::option::of(0u64..100_000_000),
        scope in proptest::option::of("[a-z:.]{1,10}( [a-z:.]{1,10}){0,3}"),
    ) {
        let mut obj = serde_json::json!({"access_token": token, "token_type": ty});
        if let Some(e) = expires { obj["expires_in"] = e.into(); }
        if let Some(s) = &scope { obj["scope"] = s.clone().into(); }
        let t = parse(200, Some("application/json"), None, obj.to_string().as_bytes()).unwrap();
        prop_assert_eq!(t.access_token().expose_secret(), token.as_str());
        prop_assert_eq!(t.token_type(), "Bearer");
        if let Some(e) = expires {
            prop_assert_eq!(t.lifetime(), Some(Duration::from_secs(e)));
        }
        if let Some(s) = scope {
            let expected: Vec<&str> = s.split(' ').collect();
            let mut dedup: Vec<&str> = Vec::new();
            for e in expected { if !dedup.contains(&e) { dedup.push(e); } }
            prop_assert_eq!(t.scopes(), dedup.as_slice());
        }
        let stored = serde_json::to_string(&t.storable()).unwrap();
        let back: Token = serde_json::from_str(&stored).unwrap();
        prop_assert_eq!(back, t);
    }

    /// Whatever else a body holds, an error built from it never shows a token-like value
    /// from that body.
    #[test]
    fn errors_never_show_the_token(
        token in "[A-Za-z0-9_-]{24,64}",
        status in prop::sample::select(vec![200u16, 400, 401, 429, 500, 502]),
        shape in 0usize..4,
    ) {
        let body = match shape {
            0 => format!(r#"{{"access_token":"{token}","token_type":"mac"}}"#),
            1 => format!(r#"{{"access_token":"{token}","token_type":"Bearer""#),
            2 => format!(r#"<html><p>{token}</p></html>"#),
            _ => format!(r#"{{"error":"invalid_request","error_description":"got {token}"}}"#),
        };
        if let Err(e) = parse(status, Some("application/json"), None, body.as_bytes()) {
            let text = format!("{e} {e:?}");
            prop_assert!(!text.contains(&token), "{}", text);
        }
    }
}
