//! Bearer token extraction for resource servers (RFC 6750 §2.1) and its challenges (§3).
#![cfg(feature = "server")]
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests: a panic is a failure report.

use client_credentials_core::server::{
    BearerChallenge, BearerError, BearerErrorCode, bearer_token, opaque_token,
};
use http::{HeaderMap, HeaderValue, StatusCode};

fn headers(values: &[&[u8]]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for v in values {
        h.append("authorization", HeaderValue::from_bytes(v).unwrap());
    }
    h
}

fn extract(value: &str) -> Result<String, BearerError> {
    bearer_token(&headers(&[value.as_bytes()])).map(|t| t.expose_secret().to_owned())
}

#[test]
fn rfc6750_example_and_scheme_case() {
    // RFC 6750 §2.1.
    assert_eq!(
        extract("Bearer mF_9.B5f-4.1JqM").unwrap(),
        "mF_9.B5f-4.1JqM"
    );
    for scheme in ["bearer", "BEARER", "bEaReR"] {
        assert_eq!(
            extract(&format!("{scheme} abc")).unwrap(),
            "abc",
            "{scheme}"
        );
    }
}

#[test]
fn b64token_syntax() {
    for ok in [
        "Bearer abc=",
        "Bearer abc==",
        "Bearer a-b.c_d~e+f/g",
        "Bearer   spaces-before",
        "Bearer trailing-space ",
        "Bearer trailing-tab\t",
        "Bearer eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ4In0.c2ln",
    ] {
        assert!(extract(ok).is_ok(), "{ok:?}");
    }
    assert_eq!(extract("Bearer abc==  ").unwrap(), "abc==");
    for bad in [
        "Bearer",
        "Bearer ",
        "Bearer    ",
        "Bearer =abc",
        "Bearer a=b",
        "Bearer ===",
        "Bearer two words",
        "Bearer a,b",
        "Bearer a, Bearer b",
        "Bearer \"quoted\"",
        "Bearer tok;en",
        "Bearer tok\ten",
        "Bearer tök",
    ] {
        assert_eq!(extract(bad), Err(BearerError::Malformed), "{bad:?}");
    }
    // Non-UTF-8 bytes (obs-text) are not a b64token.
    assert_eq!(
        bearer_token(&headers(&[b"Bearer \xff\xfe"])).map(|_| ()),
        Err(BearerError::Malformed)
    );
}

#[test]
fn missing_other_scheme_and_multiple() {
    assert_eq!(
        bearer_token(&HeaderMap::new()).map(|_| ()),
        Err(BearerError::Missing)
    );
    for other in [
        "Basic czZCaGRSa3F0MzpnWDFmQmF0M2JW",
        "DPoP abc",
        "Bearerabc",
        "Token abc",
        "",
    ] {
        assert_eq!(extract(other), Err(BearerError::OtherScheme), "{other:?}");
    }
    assert_eq!(
        bearer_token(&headers(&[b"Bearer a", b"Bearer a"])).map(|_| ()),
        Err(BearerError::Multiple)
    );
    assert_eq!(
        bearer_token(&headers(&[b"Bearer a", b"Basic x"])).map(|_| ()),
        Err(BearerError::Multiple)
    );
}

#[test]
fn errors_map_to_challenges() {
    assert_eq!(BearerError::Missing.challenge(), BearerChallenge::new());
    assert_eq!(
        BearerError::OtherScheme.challenge().status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        BearerError::Malformed.challenge().error(),
        Some(BearerErrorCode::InvalidRequest)
    );
    assert_eq!(
        BearerError::Multiple.challenge().status(),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        BearerError::Malformed.to_string(),
        "the bearer token is malformed"
    );
}

#[test]
fn challenges() {
    // RFC 6750 §3: no error code when no token was offered.
    let none = BearerChallenge::new().realm("example");
    assert_eq!(none.header_value(), r#"Bearer realm="example""#);
    let response = none.to_response();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(response.body().is_empty());
    assert!(response.headers().get("content-type").is_none());
    assert_eq!(BearerChallenge::new().header_value(), "Bearer");

    // RFC 6750 §3 example.
    let expired = BearerChallenge::invalid_token()
        .realm("example")
        .description("The access token expired");
    assert_eq!(
        expired.header_value(),
        r#"Bearer realm="example", error="invalid_token", error_description="The access token expired""#
    );
    let response = expired.to_response();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        response.headers()["www-authenticate"],
        expired.header_value().as_str()
    );
    assert_eq!(
        response.body(),
        br#"{"error":"invalid_token","error_description":"The access token expired"}"#
    );

    let scope = BearerChallenge::insufficient_scope(["orders.read", "orders.write"]);
    assert_eq!(scope.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        scope.header_value(),
        r#"Bearer error="insufficient_scope", scope="orders.read orders.write""#
    );
    assert_eq!(
        BearerChallenge::invalid_request().status(),
        StatusCode::BAD_REQUEST
    );

    // Quoting and cleaning.
    let odd = BearerChallenge::invalid_token()
        .realm("a \"quoted\" \\ realm")
        .description("bad \"token\"\r\n");
    assert_eq!(
        odd.header_value(),
        r#"Bearer realm="a \"quoted\" \\ realm", error="invalid_token", error_description="bad ?token???""#
    );
    assert!(
        odd.to_response()
            .headers()
            .get("www-authenticate")
            .is_some()
    );
}

#[test]
fn opaque_tokens_extract() {
    let token = opaque_token(&[0x5A; 32]);
    let value = format!("Bearer {}", token.expose_secret());
    assert_eq!(extract(&value).unwrap(), token.expose_secret());
}
