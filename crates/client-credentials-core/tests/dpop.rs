//! DPoP proofs (RFC 9449, feature `jwt`): the exact header and claims for fixed inputs, each
//! signature checked by an independent verifier (`jsonwebtoken` on RustCrypto; aws-lc
//! signs), the thumbprint against RFC 7638's own example, and a proof that never shows.
#![cfg(feature = "jwt")]
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

use std::time::{Duration, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use client_credentials_core::dpop::{DpopKey, ProofInput};
use client_credentials_core::{AccessToken, AssertionKey};
use http::{Method, Uri};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Value, json};
use sha2::Digest as _;

const EC: &str = include_str!("keys/ec-p256.pem");
const EC_PUBLIC: &str = include_str!("keys/ec-p256.pub.pem");
const ED: &str = include_str!("keys/ed25519.pem");
const ED_PUBLIC: &str = include_str!("keys/ed25519.pub.pem");
const AT: u64 = 1_800_000_000;

fn part(jwt: &str, i: usize) -> Value {
    let segment = jwt.split('.').nth(i).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(segment).unwrap()).unwrap()
}

/// The signature, checked by `jsonwebtoken` (no `exp` in a proof: its time checks are off).
fn verify(jwt: &str, algorithm: Algorithm, key: &DecodingKey) -> Value {
    let mut validation = Validation::new(algorithm);
    validation.validate_exp = false;
    validation.set_required_spec_claims::<&str>(&[]);
    jsonwebtoken::decode::<Value>(jwt, key, &validation)
        .unwrap_or_else(|e| panic!("{algorithm:?}: {e}"))
        .claims
}

#[test]
fn golden_proofs_for_a_token_request_and_a_resource_request() {
    let cases = [
        (
            AssertionKey::from_pem(EC).unwrap(),
            Algorithm::ES256,
            DecodingKey::from_ec_pem(EC_PUBLIC.as_bytes()).unwrap(),
        ),
        (
            AssertionKey::from_pem(ED).unwrap(),
            Algorithm::EdDSA,
            DecodingKey::from_ed_pem(ED_PUBLIC.as_bytes()).unwrap(),
        ),
    ];
    for (key, algorithm, public) in cases {
        let jwk = key.public_jwk();
        let key = DpopKey::new(key);
        let token_uri: Uri = "https://as.example.com/oauth2/token?tenant=x"
            .parse()
            .unwrap();
        let at = UNIX_EPOCH + Duration::from_secs(AT);
        let proof = key
            .proof(&ProofInput {
                method: &Method::POST,
                uri: &token_uri,
                at,
                nonce: 0x0102_0304,
                server_nonce: None,
                access_token: None,
            })
            .unwrap();
        let jwt = proof.expose_secret();
        let mut public_members = jwk.clone();
        for member in ["alg", "use", "kid"] {
            public_members.as_object_mut().unwrap().remove(member);
        }
        assert_eq!(
            part(jwt, 0),
            json!({"typ": "dpop+jwt", "alg": key_alg(algorithm), "jwk": public_members})
        );
        let claims = json!({
            "jti": "AAAAAAAAAAAAAAAAAQIDBA",
            "htm": "POST",
            "htu": "https://as.example.com/oauth2/token",
            "iat": AT,
        });
        assert_eq!(part(jwt, 1), claims);
        assert_eq!(verify(jwt, algorithm, &public), claims);

        // To a resource server, with the server's nonce: `ath` is the token's SHA-256.
        let token = AccessToken::new("Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU");
        let resource: Uri = "https://api.example.com/orders".parse().unwrap();
        let proof = key
            .proof(&ProofInput {
                method: &Method::GET,
                uri: &resource,
                at,
                nonce: 5,
                server_nonce: Some("eyJ7S_zG.eyJH0-Z.HX4w-7v"),
                access_token: Some(&token),
            })
            .unwrap();
        let ath = URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(token.expose_secret()));
        let claims = verify(proof.expose_secret(), algorithm, &public);
        assert_eq!(claims["htm"], "GET");
        assert_eq!(claims["htu"], "https://api.example.com/orders");
        assert_eq!(claims["nonce"], "eyJ7S_zG.eyJH0-Z.HX4w-7v");
        assert_eq!(claims["ath"], ath);
        // RFC 9449 §7.1's example token and its `ath`.
        assert_eq!(ath, "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo");
        assert_eq!(format!("{proof:?}"), "DpopProof([REDACTED])");
        assert!(proof.header_value().is_sensitive());
        // The thumbprint that a server puts in `cnf.jkt`, computed here independently.
        let canonical = match algorithm {
            Algorithm::ES256 => format!(
                r#"{{"crv":"P-256","kty":"EC","x":{},"y":{}}}"#,
                jwk["x"], jwk["y"]
            ),
            _ => format!(r#"{{"crv":"Ed25519","kty":"OKP","x":{}}}"#, jwk["x"]),
        };
        assert_eq!(
            key.thumbprint(),
            URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(canonical))
        );
    }
}

fn key_alg(algorithm: Algorithm) -> &'static str {
    match algorithm {
        Algorithm::ES256 => "ES256",
        _ => "EdDSA",
    }
}

#[test]
fn a_dpop_client_sends_a_proof_with_every_token_request_and_takes_dpop_tokens() {
    use client_credentials_core::Config;
    let key = DpopKey::new(AssertionKey::from_pem(EC).unwrap());
    let thumbprint = key.thumbprint().to_owned();
    let builder = || {
        Config::builder()
            .token_url("https://as.example.com/token")
            .client_id("c")
            .client_secret("s")
    };
    let config = builder().dpop(key).build().unwrap();
    let request = config.default_request();
    let at = UNIX_EPOCH + Duration::from_secs(AT);
    let public = DecodingKey::from_ec_pem(EC_PUBLIC.as_bytes()).unwrap();
    let proof_of = |nonce: u128| {
        let http = request.to_http_at(at, nonce);
        let header = http.headers().get("dpop").expect("a DPoP proof");
        assert!(header.is_sensitive());
        verify(header.to_str().unwrap(), Algorithm::ES256, &public)
    };
    let (first, second) = (proof_of(1), proof_of(2));
    assert_eq!(first["htm"], "POST");
    assert_eq!(first["htu"], "https://as.example.com/token");
    assert_eq!(first["iat"], AT);
    assert_ne!(first["jti"], second["jti"], "a new proof for every send");
    // A token that was not made at a time carries none (the session always gives one).
    assert!(request.to_http().headers().get("dpop").is_none());
    // A DPoP token is taken, and sent with its own scheme.
    let body = br#"{"access_token":"bound","token_type":"DPoP","expires_in":60}"#;
    let token = request
        .parse_response(at, http::StatusCode::OK, &http::HeaderMap::new(), body)
        .unwrap();
    assert_eq!(token.token_type(), "DPoP");
    assert_eq!(token.authorization_header().to_str().unwrap(), "DPoP bound");
    // The key is part of the cache key: a bearer client of the same server has its own.
    let bearer = builder().build().unwrap();
    assert_ne!(bearer.default_request().cache_key(), request.cache_key());
    // Another key is another cache entry.
    let other = builder()
        .dpop(DpopKey::new(AssertionKey::from_pem(ED).unwrap()))
        .build()
        .unwrap();
    assert_ne!(other.default_request().cache_key(), request.cache_key());
    assert_eq!(thumbprint.len(), 43);
}

/// The session's side of RFC 9449 §8: a `use_dpop_nonce` refusal with a `DPoP-Nonce` is
/// retried once at once with the nonce in the proof; a second refusal is a failure.
#[test]
fn use_dpop_nonce_is_retried_exactly_once() {
    use client_credentials_core::Config;
    use client_credentials_core::session::{Action, Outcome, Policy, Session, WallClock};
    use std::time::Instant;
    let config = Config::builder()
        .token_url("https://as.example.com/token")
        .client_id("c")
        .client_secret("a-real-length-secret-4f9c")
        .dpop(DpopKey::new(AssertionKey::from_pem(ED).unwrap()))
        .build()
        .unwrap();
    #[allow(
        clippy::disallowed_methods,
        reason = "a test input: any instant serves as the session's start"
    )]
    let now = Instant::now();
    let clock = WallClock::new(now, UNIX_EPOCH + Duration::from_secs(AT));
    let mut session = Session::new(config.default_request(), Policy::default(), clock, 3);
    let public = DecodingKey::from_ed_pem(ED_PUBLIC.as_bytes()).unwrap();
    let send = |session: &mut Session| {
        let Action::Send { id, request, .. } = session.poll(now) else {
            panic!("expected a send")
        };
        let proof = request
            .headers()
            .get("dpop")
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned();
        (id, verify(&proof, Algorithm::EdDSA, &public))
    };
    let refusal = |nonce: &str| {
        let mut headers = http::HeaderMap::new();
        headers.insert("dpop-nonce", nonce.parse().unwrap());
        headers
    };
    let body = br#"{"error":"use_dpop_nonce","error_description":"nonce required"}"#;
    let (id, first) = send(&mut session);
    assert!(first.get("nonce").is_none());
    let outcome = session.handle_response(
        now,
        id,
        http::StatusCode::BAD_REQUEST,
        &refusal("n-1"),
        body,
    );
    assert!(matches!(outcome, Outcome::Retry), "{outcome:?}");
    let (id, second) = send(&mut session);
    assert_eq!(second["nonce"], "n-1");
    assert_ne!(second["jti"], first["jti"]);
    let outcome = session.handle_response(
        now,
        id,
        http::StatusCode::BAD_REQUEST,
        &refusal("n-2"),
        body,
    );
    let Outcome::Failed(error) = outcome else {
        panic!("a second refusal is a failure: {outcome:?}")
    };
    assert_eq!(
        error.oauth_code().map(|c| c.as_str()),
        Some("use_dpop_nonce")
    );
    // One fetch, retried once: one start, one failure.
    let counters = session.counters();
    assert_eq!((counters.fetches_started, counters.fetches_failed), (1, 1));
    assert_eq!(counters.dpop_nonce_retries, 1);
    // Retryable: the backoff, not the rejection cool-down.
    assert!(error.is_retryable());
}

/// A retry that ends without an answer (here the transport) leaves the next fetch its own
/// retry; the same nonce again gets none; a nonce learned from a success is used.
#[test]
fn every_fetch_gets_its_own_nonce_retry() {
    use client_credentials_core::session::{Action, Failure, Outcome, Policy, Session, WallClock};
    use client_credentials_core::{Config, TransportError, TransportErrorKind};
    use std::time::Instant;
    let config = Config::builder()
        .token_url("https://as.example.com/token")
        .client_id("c")
        .client_secret("a-real-length-secret-4f9c")
        .dpop(DpopKey::new(AssertionKey::from_pem(EC).unwrap()))
        .build()
        .unwrap();
    #[allow(
        clippy::disallowed_methods,
        reason = "a test input: any instant serves as the session's start"
    )]
    let start = Instant::now();
    let clock = WallClock::new(start, UNIX_EPOCH + Duration::from_secs(AT));
    let mut session = Session::new(config.default_request(), Policy::default(), clock, 3);
    let public = DecodingKey::from_ec_pem(EC_PUBLIC.as_bytes()).unwrap();
    let send = |session: &mut Session, now: Instant| {
        let Action::Send { id, request, .. } = session.poll(now) else {
            panic!("expected a send")
        };
        let proof = request
            .headers()
            .get("dpop")
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned();
        (id, verify(&proof, Algorithm::ES256, &public))
    };
    let with_nonce = |nonce: &str| {
        let mut headers = http::HeaderMap::new();
        headers.insert("dpop-nonce", nonce.parse().unwrap());
        headers
    };
    let refusal = br#"{"error":"use_dpop_nonce"}"#;
    let bad = http::StatusCode::BAD_REQUEST;
    let (id, _) = send(&mut session, start);
    let outcome = session.handle_response(start, id, bad, &with_nonce("n-1"), refusal);
    assert!(matches!(outcome, Outcome::Retry), "{outcome:?}");
    let (id, _) = send(&mut session, start);
    let timeout = TransportError::from_kind(TransportErrorKind::Timeout);
    assert!(matches!(
        session.handle_failure(start, id, Failure::Transport(timeout)),
        Outcome::Failed(_)
    ));
    // After the backoff, the next fetch is refused with a rotated nonce: retried.
    let later = start + Duration::from_secs(120);
    let (id, proof) = send(&mut session, later);
    assert_eq!(proof["nonce"], "n-1");
    let outcome = session.handle_response(later, id, bad, &with_nonce("n-2"), refusal);
    assert!(matches!(outcome, Outcome::Retry), "{outcome:?}");
    let (id, proof) = send(&mut session, later);
    assert_eq!(proof["nonce"], "n-2");
    // A success that hands over the next nonce: the following fetch uses it.
    let body = br#"{"access_token":"bound","token_type":"DPoP","expires_in":3600}"#;
    let ok = http::StatusCode::OK;
    let outcome = session.handle_response(later, id, ok, &with_nonce("n-3"), body);
    assert!(matches!(outcome, Outcome::Token(_)), "{outcome:?}");
    assert!(session.force_refresh(later));
    let (id, proof) = send(&mut session, later);
    assert_eq!(proof["nonce"], "n-3");
    // The same nonce again is no reason to retry: a failure, with backoff.
    let outcome = session.handle_response(later, id, bad, &with_nonce("n-3"), refusal);
    assert!(matches!(outcome, Outcome::Failed(_)), "{outcome:?}");
    let counters = session.counters();
    assert_eq!(counters.dpop_nonce_retries, 2, "{counters:?}");
    assert_eq!(counters.fetches_started, 3, "{counters:?}");
}
