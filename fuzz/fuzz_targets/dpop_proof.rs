//! Feeds the server's DPoP proof verifier (RFC 9449 §4.3) two kinds of input. Raw: arbitrary
//! `DPoP` headers (none, one or several, any bytes a header value may hold) and an arbitrary
//! `Authorization` header, for a fuzzed method, URI, token and required nonce. Signed: proofs
//! the client makes with a fixed key for fuzzed inputs, checked against fuzzed expectations,
//! so that the claim checks behind the signature are reached. It must never panic; a proof is
//! accepted only from exactly one header, then never twice; every refusal renders both
//! answers; nothing shown holds the proof.
#![no_main]

use std::time::{Duration, UNIX_EPOCH};

use client_credentials_core::dpop::{DpopKey, ProofInput};
use client_credentials_core::server::{DpopError, DpopRequest, DpopVerifier, dpop_token};
use client_credentials_core::{AccessToken, AssertionKey};
use http::{HeaderMap, HeaderValue, Method, Uri};
use libfuzzer_sys::fuzz_target;

const EC: &str = include_str!("../../crates/client-credentials-core/tests/keys/ec-p256.pem");
const ED: &str = include_str!("../../crates/client-credentials-core/tests/keys/ed25519.pem");
const T0: u64 = 1_800_000_000;

const METHODS: [Method; 3] = [Method::POST, Method::GET, Method::PUT];
const URIS: [&str; 4] = [
    "https://as.example.com/token",
    "https://AS.example.com:443/token?x=1",
    "http://127.0.0.1:8080/resource",
    "https://rs.example.com/token",
];

fn byte(data: &[u8], i: usize) -> u8 {
    data.get(i).copied().unwrap_or(0)
}

/// Every refusal renders both answers, and neither they nor the error show the proof (a real
/// one: arbitrary bytes could spell out a piece of the rendered text).
fn rendered(error: &DpopError, verifier: &DpopVerifier, proof: Option<&str>) {
    let shown = format!(
        "{error:?} {error} {:?} {:?}",
        error.to_endpoint_error(Some("n")),
        verifier.challenge(error)
    );
    let _ = error.to_endpoint_error(Some("n")).to_response();
    let _ = verifier.challenge(error).nonce("n").to_response();
    if let Some(proof) = proof {
        for segment in proof.split('.') {
            assert!(!shown.contains(segment), "a refusal shows the proof");
        }
    }
}

fn raw(flags: u8, data: &[u8]) {
    let method = &METHODS[usize::from(flags >> 2) % METHODS.len()];
    let uri: Uri = URIS[usize::from(flags >> 4) % URIS.len()]
        .parse()
        .expect("a URI");
    let token = AccessToken::new("tok");
    let mut headers = HeaderMap::new();
    let mut parts = data.split(|b| *b == 0);
    if let Some(authorization) = parts.next()
        && let Ok(v) = HeaderValue::from_bytes(authorization)
        && !authorization.is_empty()
    {
        headers.insert("authorization", v);
    }
    let mut count = 0;
    for value in parts {
        if let Ok(v) = HeaderValue::from_bytes(value) {
            headers.append("dpop", v);
            count += 1;
        }
    }
    let now = UNIX_EPOCH + Duration::from_secs(T0);
    let nonce = (flags & 2 == 2).then_some("n");
    let mut verifier = DpopVerifier::new();
    let mut request = DpopRequest::new(method, &uri).nonce(nonce);
    if flags & 64 == 64 {
        request = request.access_token(&token);
    }
    match verifier.verify(now, &headers, &request) {
        Ok(proof) => {
            assert_eq!(count, 1, "a proof from {count} headers");
            assert_eq!(proof.jkt().len(), 43);
            assert_eq!(
                verifier.verify(now, &headers, &request).unwrap_err(),
                DpopError::Replayed
            );
        }
        Err(e) => {
            match e {
                DpopError::Missing => assert_eq!(count, 0),
                DpopError::Multiple => assert!(count > 1),
                _ => assert_eq!(count, 1),
            }
            rendered(&e, &verifier, None);
        }
    }
    if let Err(e) = dpop_token(now, &headers, method, &uri, &mut verifier, nonce) {
        rendered(&e, &verifier, None);
    }
}

fn signed(flags: u8, data: &[u8]) {
    let key = AssertionKey::from_pem(if flags & 4 == 4 { EC } else { ED }).expect("a test key");
    let key = DpopKey::new(key);
    let pick = |i: usize| byte(data, i);
    let made_method = &METHODS[usize::from(pick(0)) % METHODS.len()];
    let made_uri: Uri = URIS[usize::from(pick(1)) % URIS.len()]
        .parse()
        .expect("a URI");
    let at = UNIX_EPOCH + Duration::from_secs(T0 + u64::from(pick(2)));
    let text = String::from_utf8_lossy(data.get(6..).unwrap_or_default()).into_owned();
    let (server_nonce, token) = text.split_once('\u{0}').unwrap_or((&text, ""));
    let server_nonce = (pick(3) & 1 == 1).then_some(server_nonce);
    let token = AccessToken::new(token);
    let proof = key
        .proof(&ProofInput {
            method: made_method,
            uri: &made_uri,
            at,
            nonce: u128::from(pick(4)),
            server_nonce,
            access_token: (pick(3) & 2 == 2).then_some(&token),
        })
        .expect("the key signs");
    // The expectations: the same as the proof's inputs, or each fuzzed.
    let same = pick(5) & 1 == 0;
    let method = if same {
        made_method
    } else {
        &METHODS[usize::from(pick(5) >> 1) % METHODS.len()]
    };
    let uri: Uri = if same {
        made_uri.clone()
    } else {
        URIS[usize::from(pick(5) >> 3) % URIS.len()]
            .parse()
            .expect("a URI")
    };
    let now = UNIX_EPOCH + Duration::from_secs(T0 + u64::from(pick(2)) + u64::from(pick(5) & 0x3f));
    let mut request = DpopRequest::new(method, &uri);
    if same {
        request = request.nonce(server_nonce);
        if pick(3) & 2 == 2 {
            request = request.access_token(&token);
        }
    } else if pick(5) & 2 == 2 {
        request = request.nonce(Some("n")).access_token(&token);
    }
    let mut verifier = DpopVerifier::new();
    let now_same = if same { at } else { now };
    match verifier.verify_proof(now_same, proof.expose_secret(), &request) {
        Ok(verified) => {
            assert_eq!(verified.jkt(), key.thumbprint());
            assert_eq!(
                verifier.verify_proof(now_same, proof.expose_secret(), &request),
                Err(DpopError::Replayed)
            );
        }
        Err(e) => {
            // The client's own proof, checked for what it was made for and when, is
            // accepted unless it is too large (a huge nonce).
            if same {
                assert!(
                    matches!(e, DpopError::TooLarge { .. }),
                    "the client's proof for its own request refused: {e:?}"
                );
            }
            rendered(&e, &verifier, Some(proof.expose_secret()));
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((flags, rest)) = data.split_first() else {
        return;
    };
    if flags & 1 == 1 {
        signed(*flags, rest);
    } else {
        raw(*flags, rest);
    }
});
