//! The server's DPoP verifier (RFC 9449 §4.3) against the client's proofs: golden proofs for
//! fixed inputs (fixed keys, time, `jti` and nonce), their header and claims checked exactly,
//! their signatures checked by an independent verifier (`jsonwebtoken` on RustCrypto; aws-lc
//! signs and verifies in the crate), then accepted by `DpopVerifier` with the key's RFC 7638
//! thumbprint, computed here independently, as `jkt`.
#![cfg(all(feature = "server", feature = "jwt"))]
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

use std::time::{Duration, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use client_credentials_core::dpop::{DpopKey, ProofInput};
use client_credentials_core::server::{DpopError, DpopRequest, DpopVerifier, dpop_token};
use client_credentials_core::{AccessToken, AssertionKey};
use http::{HeaderMap, HeaderValue, Method, Uri};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Value, json};
use sha2::Digest as _;

const EC: &str = include_str!("keys/ec-p256.pem");
const EC_PUBLIC: &str = include_str!("keys/ec-p256.pub.pem");
const ED: &str = include_str!("keys/ed25519.pem");
const ED_PUBLIC: &str = include_str!("keys/ed25519.pub.pem");
const AT: u64 = 1_800_000_000;
const SERVER_NONCE: &str = "eyJ7S_zG.eyJH0-Z.HX4w-7v";

fn part(jwt: &str, i: usize) -> Value {
    let segment = jwt.split('.').nth(i).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(segment).unwrap()).unwrap()
}

/// The signature, checked by `jsonwebtoken` (a proof has no `exp`: its time checks are off).
fn independent(jwt: &str, algorithm: Algorithm, key: &DecodingKey) -> Value {
    let mut validation = Validation::new(algorithm);
    validation.validate_exp = false;
    validation.set_required_spec_claims::<&str>(&[]);
    jsonwebtoken::decode::<Value>(jwt, key, &validation)
        .unwrap_or_else(|e| panic!("{algorithm:?}: {e}"))
        .claims
}

/// RFC 7638 §3: the required members, sorted, no whitespace; SHA-256; base64url.
fn thumbprint(jwk: &Value) -> String {
    let canonical = match jwk["kty"].as_str().unwrap() {
        "EC" => format!(
            r#"{{"crv":"P-256","kty":"EC","x":{},"y":{}}}"#,
            jwk["x"], jwk["y"]
        ),
        _ => format!(r#"{{"crv":"Ed25519","kty":"OKP","x":{}}}"#, jwk["x"]),
    };
    URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(canonical))
}

#[test]
fn golden_proofs_are_verified_independently_and_accepted_by_the_server() {
    let cases = [
        (
            EC,
            "ES256",
            Algorithm::ES256,
            DecodingKey::from_ec_pem(EC_PUBLIC.as_bytes()).unwrap(),
        ),
        (
            ED,
            "EdDSA",
            Algorithm::EdDSA,
            DecodingKey::from_ed_pem(ED_PUBLIC.as_bytes()).unwrap(),
        ),
    ];
    let at = UNIX_EPOCH + Duration::from_secs(AT);
    for (pem, alg, algorithm, public) in cases {
        let key = AssertionKey::from_pem(pem).unwrap();
        let mut jwk = key.public_jwk();
        for member in ["alg", "use", "kid"] {
            jwk.as_object_mut().unwrap().remove(member);
        }
        let key = DpopKey::new(key);
        let jkt = thumbprint(&jwk);
        assert_eq!(key.thumbprint(), jkt, "{alg}");

        // A token request, to a URI the server normalises as the client does.
        let token_uri: Uri = "https://AS.example.com:443/oauth2/token?tenant=x"
            .parse()
            .unwrap();
        let proof = key
            .proof(&ProofInput {
                method: &Method::POST,
                uri: &token_uri,
                at,
                nonce: 0x0102_0304,
                server_nonce: Some(SERVER_NONCE),
                access_token: None,
            })
            .unwrap();
        let jwt = proof.expose_secret();
        assert_eq!(
            part(jwt, 0),
            json!({"typ": "dpop+jwt", "alg": alg, "jwk": jwk})
        );
        let claims = json!({
            "jti": "AAAAAAAAAAAAAAAAAQIDBA",
            "htm": "POST",
            "htu": "https://as.example.com/oauth2/token",
            "iat": AT,
            "nonce": SERVER_NONCE,
        });
        assert_eq!(part(jwt, 1), claims, "{alg}");
        assert_eq!(independent(jwt, algorithm, &public), claims, "{alg}");

        let mut headers = HeaderMap::new();
        headers.insert("dpop", proof.header_value());
        let server_uri: Uri = "https://as.example.com/oauth2/token".parse().unwrap();
        let request = DpopRequest::new(&Method::POST, &server_uri).nonce(Some(SERVER_NONCE));
        let mut verifier = DpopVerifier::new();
        let verified = verifier.verify(at, &headers, &request).unwrap();
        assert_eq!(verified.jkt(), jkt, "{alg}");
        assert_eq!(
            verifier.verify(at, &headers, &request).unwrap_err(),
            DpopError::Replayed
        );

        // A resource request: `ath` is the token's SHA-256 (RFC 9449 §7.1's example).
        let token = AccessToken::new("Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU");
        let resource: Uri = "https://api.example.com/orders?page=2".parse().unwrap();
        let proof = key
            .proof(&ProofInput {
                method: &Method::GET,
                uri: &resource,
                at,
                nonce: 5,
                server_nonce: None,
                access_token: Some(&token),
            })
            .unwrap();
        let claims = json!({
            "jti": "AAAAAAAAAAAAAAAAAAAABQ",
            "htm": "GET",
            "htu": "https://api.example.com/orders",
            "iat": AT,
            "ath": "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo",
        });
        assert_eq!(part(proof.expose_secret(), 1), claims, "{alg}");
        assert_eq!(
            independent(proof.expose_secret(), algorithm, &public),
            claims
        );
        let mut headers = HeaderMap::new();
        headers.insert(
            "authorization",
            HeaderValue::from_str(&format!("DPoP {}", token.expose_secret())).unwrap(),
        );
        headers.insert("dpop", proof.header_value());
        let (presented, verified) =
            dpop_token(at, &headers, &Method::GET, &resource, &mut verifier, None).unwrap();
        assert_eq!(presented.expose_secret(), token.expose_secret());
        assert_eq!(verified.jkt(), jkt);
        verified.check_binding(&jkt).unwrap();
    }
}

#[test]
fn a_proof_for_one_request_fits_no_other() {
    let key = DpopKey::new(AssertionKey::from_pem(EC).unwrap());
    let at = UNIX_EPOCH + Duration::from_secs(AT);
    let uri: Uri = "https://as.example.com/token".parse().unwrap();
    let proof = key
        .proof(&ProofInput {
            method: &Method::POST,
            uri: &uri,
            at,
            nonce: 1,
            server_nonce: None,
            access_token: None,
        })
        .unwrap();
    let jwt = proof.expose_secret();
    let other_uri: Uri = "https://rs.example.com/token".parse().unwrap();
    let token = AccessToken::new("t");
    for (request, now, error) in [
        (
            DpopRequest::new(&Method::GET, &uri),
            AT,
            DpopError::MethodMismatch,
        ),
        (
            DpopRequest::new(&Method::POST, &other_uri),
            AT,
            DpopError::UriMismatch,
        ),
        (
            DpopRequest::new(&Method::POST, &uri).nonce(Some("n")),
            AT,
            DpopError::NonceRequired,
        ),
        (
            DpopRequest::new(&Method::POST, &uri).access_token(&token),
            AT,
            DpopError::MissingClaim("ath"),
        ),
        (
            DpopRequest::new(&Method::POST, &uri),
            AT + 61,
            DpopError::TooOld,
        ),
        (
            DpopRequest::new(&Method::POST, &uri),
            AT - 6,
            DpopError::IssuedInFuture,
        ),
    ] {
        let now = UNIX_EPOCH + Duration::from_secs(now);
        assert_eq!(
            DpopVerifier::new().verify_proof(now, jwt, &request),
            Err(error)
        );
    }
}
