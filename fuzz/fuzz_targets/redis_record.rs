//! Feeds arbitrary values to the Redis store's record opener, as read from Redis: clear
//! records without a key, sealed values with a key ring, and arbitrary plaintexts sealed
//! correctly (so that the decrypted record reader is reached). It must never panic; a sealed
//! value opens exactly as its plaintext opens in clear; a value moved to another Redis key or
//! altered does not open; and an opened token lives no longer than the parser's cap.
#![no_main]

use std::sync::OnceLock;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use client_credentials_core::{MAX_LIFETIME, Token};
use client_credentials_redis::{EncryptionKey, open_record};
use libfuzzer_sys::fuzz_target;

const REDIS_KEY: &str = "cc:token:0123abcd";
const KEY: [u8; 32] = [7; 32];

fn ring() -> &'static [EncryptionKey] {
    static RING: OnceLock<Vec<EncryptionKey>> = OnceLock::new();
    RING.get_or_init(|| {
        vec![
            EncryptionKey::new("k1", KEY).expect("valid id"),
            EncryptionKey::new("old", [9; 32]).expect("valid id"),
        ]
    })
}

/// The store's sealed format, written independently of the store.
fn seal(plaintext: &[u8], redis_key: &str, nonce: [u8; 12]) -> Vec<u8> {
    let aad = format!("client-credentials-redis v1\0chacha20poly1305\0k1\0{redis_key}");
    let ct = ChaCha20Poly1305::new(&Key::from(KEY))
        .encrypt(&Nonce::from(nonce), Payload { msg: plaintext, aad: aad.as_bytes() })
        .expect("encrypts");
    format!(
        r#"{{"v":1,"alg":"chacha20poly1305","kid":"k1","nonce":"{}","ct":"{}"}}"#,
        URL_SAFE_NO_PAD.encode(nonce),
        URL_SAFE_NO_PAD.encode(ct)
    )
    .into_bytes()
}

fn check(token: &Token) {
    assert!(token.lifetime().is_none_or(|l| l <= MAX_LIFETIME));
    assert!(token.refresh_in().is_none_or(|l| l <= MAX_LIFETIME));
    let _ = token.authorization_header();
}

fuzz_target!(|data: &[u8]| {
    let Some((mode, value)) = data.split_first() else { return };
    match mode % 3 {
        // A value as read, without and with keys.
        0 => {
            if let Some(t) = open_record(&[], REDIS_KEY, value) {
                check(&t);
            }
            if let Some(t) = open_record(ring(), REDIS_KEY, value) {
                check(&t);
            }
        }
        // Any plaintext, sealed the way the store seals.
        1 => {
            let nonce = [mode.wrapping_mul(31); 12];
            let sealed = seal(value, REDIS_KEY, nonce);
            let clear = open_record(&[], REDIS_KEY, value);
            let opened = open_record(ring(), REDIS_KEY, &sealed);
            assert!(clear == opened, "sealed and clear readings differ");
            if let Some(t) = &opened {
                check(t);
            }
            assert!(open_record(ring(), "cc:token:other", &sealed).is_none(), "moved value opened");
            assert!(open_record(&ring()[1..], REDIS_KEY, &sealed).is_none(), "unknown key opened");
            assert!(open_record(&[], REDIS_KEY, &sealed).is_none(), "a sealed value read as clear");
        }
        // A sealed value with one byte of its ciphertext changed.
        _ => {
            let Some((&flip, plaintext)) = value.split_first() else { return };
            let sealed = seal(plaintext, REDIS_KEY, [1; 12]);
            let mut ct_start = sealed.len() - 2;
            while sealed[ct_start - 1] != b'"' {
                ct_start -= 1;
            }
            let ct = URL_SAFE_NO_PAD.decode(&sealed[ct_start..sealed.len() - 2]).expect("b64");
            let mut ct = ct;
            let i = usize::from(flip) % ct.len();
            ct[i] ^= 1 << (flip % 8);
            let mut tampered = sealed[..ct_start].to_vec();
            tampered.extend_from_slice(URL_SAFE_NO_PAD.encode(&ct).as_bytes());
            tampered.extend_from_slice(b"\"}");
            assert!(open_record(ring(), REDIS_KEY, &tampered).is_none(), "a tampered value opened");
        }
    }
});
