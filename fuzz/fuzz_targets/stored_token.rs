//! Feeds arbitrary bytes to the stored-token reader (`serde_json::from_slice::<Token>`), the
//! format that caches and shared stores hand back. It must never panic; a token it accepts
//! goes into an `Authorization` header, lives no longer than the parser's cap, keeps its
//! token out of `Debug`, and survives a round trip through `Token::storable` unchanged.
#![no_main]

use std::time::Duration;

use client_credentials_core::{MAX_LIFETIME, Token};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(token) = serde_json::from_slice::<Token>(data) else { return };
    let header = token.authorization_header();
    assert!(header.is_sensitive());
    assert!(token.lifetime().is_none_or(|l| l <= MAX_LIFETIME));
    assert!(token.refresh_in().is_none_or(|l| l <= MAX_LIFETIME));
    let _ = token.expires_within(token.issued_at(), Duration::from_secs(30));
    let debug = format!("{:?}", client_credentials_core::AccessToken::new("x"));
    assert_eq!(format!("{:?}", token.access_token()), debug, "Debug depends on the token");
    let stored = serde_json::to_vec(&token.storable()).expect("a token serialises");
    let again: Token = serde_json::from_slice(&stored).expect("a stored token reads back");
    assert!(again == token, "the round trip changed the token");
});
