//! Feeds arbitrary answers (a status and a body) to the discovery metadata parser, on the
//! RFC 8414 step or the OpenID Connect one. It must never panic; only a 404 on the first
//! step moves on; metadata it accepts names the issuer asked for, and a configuration built
//! from it always validates (its endpoints passed the token URL rule already).
#![no_main]

use std::time::SystemTime;

use client_credentials_core::{ConfigBuilder, Discovery, DiscoveryStep, WellKnown};
use http::{HeaderMap, HeaderValue, StatusCode};
use libfuzzer_sys::fuzz_target;

const ISSUER: &str = "https://as.example.com/tenant";
const CAP: usize = 64 * 1024;

fuzz_target!(|data: &[u8]| {
    // Layout: [status hi, status lo, flags, body...]; flags bit 0: answer the OpenID
    // Connect step (after a 404 on the first).
    let [hi, lo, flags, body @ ..] = data else {
        return;
    };
    let Ok(status) = StatusCode::from_u16(100 + u16::from_be_bytes([*hi, *lo]) % 500) else {
        return;
    };
    let mut discovery = Discovery::new(ISSUER)
        .expect("valid issuer")
        .with_max_body(CAP);
    let headers = {
        let mut h = HeaderMap::new();
        h.insert("content-type", HeaderValue::from_static("application/json"));
        h
    };
    if flags & 1 == 1 {
        match discovery.handle_response(
            SystemTime::UNIX_EPOCH,
            StatusCode::NOT_FOUND,
            &headers,
            b"",
        ) {
            Ok(DiscoveryStep::Next(next)) => discovery = *next,
            other => panic!("a 404 on the first step must move on: {other:?}"),
        }
    }
    let document = discovery.document();
    match discovery.handle_response(SystemTime::UNIX_EPOCH, status, &headers, body) {
        Ok(DiscoveryStep::Found(metadata)) => {
            assert!(status.is_success());
            assert!(body.len() <= CAP);
            assert_eq!(metadata.issuer, ISSUER);
            assert_eq!(metadata.document, document);
            let config = ConfigBuilder::from_metadata(&metadata)
                .client_id("fuzz")
                .client_secret("fuzz-secret")
                .build();
            assert!(config.is_ok(), "{config:?}");
        }
        Ok(DiscoveryStep::Next(_)) => {
            assert_eq!(status, StatusCode::NOT_FOUND);
            assert_eq!(document, WellKnown::OAuthAuthorizationServer);
        }
        Err(error) => {
            // Display and Debug never panic, and quote no more than bounded text.
            let shown = format!("{error} {error:?}");
            assert!(shown.len() < 16 * 1024, "{}", shown.len());
        }
    }
});
