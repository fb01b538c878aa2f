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

/// A client of `https://as.example.com/token` that proves its requests with `pem`'s key.
fn dpop_config(pem: &str) -> client_credentials_core::Config {
    client_credentials_core::Config::builder()
        .token_url("https://as.example.com/token")
        .client_id("c")
        .client_secret("a-real-length-secret-4f9c")
        .dpop(DpopKey::new(AssertionKey::from_pem(pem).unwrap()))
        .build()
        .unwrap()
}

/// Any instant serves as a session's or a cache's start.
#[allow(
    clippy::disallowed_methods,
    reason = "a test input: any instant will do"
)]
fn start() -> std::time::Instant {
    std::time::Instant::now()
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
    use client_credentials_core::session::{Action, Outcome, Policy, Session, WallClock};
    let config = dpop_config(ED);
    let now = start();
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
    use client_credentials_core::{TransportError, TransportErrorKind};
    use std::time::Instant;
    let config = dpop_config(EC);
    let start = start();
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

/// Resource requests (RFC 9449 §7): a DPoP-bound token goes as `Authorization: DPoP` with
/// a proof of the request (`ath` the token's hash), the origin's latest nonce in it; a
/// `use_dpop_nonce` challenge keeps the token and asks for one retry, only for a new nonce.
#[test]
fn resource_requests_carry_a_proof_and_the_origins_nonce() {
    use client_credentials_core::ResourceAuth;
    use client_credentials_core::session::{Cache, Policy, ResourceVerdict, WallClock};
    use http::{HeaderMap, HeaderValue, StatusCode};
    let config = dpop_config(EC);
    let request = config.default_request();
    let now = start();
    let wall = UNIX_EPOCH + Duration::from_secs(AT);
    let mut cache = Cache::new(Policy::default(), WallClock::new(now, wall), 5);
    let public = DecodingKey::from_ec_pem(EC_PUBLIC.as_bytes()).unwrap();
    let body = br#"{"access_token":"bound-token","token_type":"DPoP","expires_in":600}"#;
    let token = request
        .parse_response(wall, StatusCode::OK, &HeaderMap::new(), body)
        .unwrap();
    assert!(cache.adopt(now, &request, std::sync::Arc::new(token.clone())));
    let api: Uri = "https://api.example.com:443/orders?page=2".parse().unwrap();
    let proof_for = |cache: &mut Cache| {
        let mut auth = ResourceAuth::new(&config, &token);
        assert!(auth.needs_proof());
        let ticket = cache.dpop_ticket(now, &api);
        auth.prove(&config, &Method::GET, &api, &ticket).unwrap();
        assert!(!auth.needs_proof() && auth.has_proof());
        let mut headers = HeaderMap::new();
        headers.insert("dpop", HeaderValue::from_static("stale"));
        auth.apply(&mut headers);
        assert_eq!(headers["authorization"], "DPoP bound-token");
        assert!(headers["dpop"].is_sensitive());
        assert!(!format!("{auth:?}").contains("bound-token"));
        let claims = verify(headers["dpop"].to_str().unwrap(), Algorithm::ES256, &public);
        (claims, auth)
    };
    let (first, sent) = proof_for(&mut cache);
    assert_eq!(first["htm"], "GET");
    assert_eq!(first["htu"], "https://api.example.com/orders");
    assert_eq!(first["iat"], AT);
    let ath = URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(b"bound-token"));
    assert_eq!(first["ath"], ath);
    assert!(first.get("nonce").is_none());
    // A request that left with it, before any answer came.
    let (_, concurrent) = proof_for(&mut cache);

    let challenge = |nonce: &str| {
        let mut headers = HeaderMap::new();
        headers.insert(
            "www-authenticate",
            HeaderValue::from_static(r#"DPoP error="use_dpop_nonce", algs="ES256""#),
        );
        headers.insert("dpop-nonce", nonce.parse().unwrap());
        headers
    };
    let key = request.cache_key();
    let verdict = |cache: &mut Cache, headers: &HeaderMap, used: &ResourceAuth| {
        assert!(Cache::needs_verdict(StatusCode::UNAUTHORIZED, headers));
        cache.resource_verdict(now, key, &api, StatusCode::UNAUTHORIZED, headers, used)
    };
    assert_eq!(
        verdict(&mut cache, &challenge("n-1"), &sent),
        ResourceVerdict::RetryWithNewNonce
    );
    assert!(cache.current_token(now, key).is_some(), "the token is kept");
    // The request that left together gets its retry too, although n-1 is known by now.
    assert_eq!(
        verdict(&mut cache, &challenge("n-1"), &concurrent),
        ResourceVerdict::RetryWithNewNonce
    );
    let (second, retried) = proof_for(&mut cache);
    assert_eq!(second["nonce"], "n-1");
    assert_eq!(retried.proof_nonce(), Some("n-1"));
    // A nonce retry keeps the token; a fresh-token retry never resends the rejected one.
    assert!(retried.may_retry(ResourceVerdict::RetryWithNewNonce, &sent));
    assert!(!retried.may_retry(ResourceVerdict::RetryWithFreshToken, &sent));
    assert!(!retried.may_retry(ResourceVerdict::Done, &sent));
    assert_ne!(second["jti"], first["jti"]);
    // The same nonce again: the proof had it, a retry cannot help.
    assert_eq!(
        verdict(&mut cache, &challenge("n-1"), &retried),
        ResourceVerdict::Done
    );
    // A nonce on a success answer rotates it; another origin has none.
    let mut ok = HeaderMap::new();
    ok.insert("dpop-nonce", HeaderValue::from_static("n-2"));
    assert!(Cache::needs_verdict(StatusCode::OK, &ok));
    assert_eq!(
        cache.resource_verdict(now, key, &api, StatusCode::OK, &ok, &retried),
        ResourceVerdict::Done
    );
    assert_eq!(proof_for(&mut cache).0["nonce"], "n-2");
    let elsewhere: Uri = "https://other.example.com/x".parse().unwrap();
    assert_eq!(cache.dpop_ticket(now, &elsewhere).server_nonce, None);
    assert!(!Cache::needs_verdict(StatusCode::OK, &HeaderMap::new()));
    // Nonces up to the bound are remembered; longer ones are not.
    let mut long = HeaderMap::new();
    let at_bound = "n".repeat(client_credentials_core::resource::MAX_DPOP_NONCE_LEN);
    long.insert("dpop-nonce", at_bound.parse().unwrap());
    assert!(cache.handle_dpop_nonce(&api, &long));
    long.insert("dpop-nonce", format!("{at_bound}n").parse().unwrap());
    assert!(!cache.handle_dpop_nonce(&api, &long));
    // A relative URI names no server: no proof, a typed error.
    let mut auth = ResourceAuth::new(&config, &token);
    let ticket = cache.dpop_ticket(now, &api);
    let relative: Uri = "/orders".parse().unwrap();
    assert!(matches!(
        auth.prove(&config, &Method::GET, &relative, &ticket),
        Err(client_credentials_core::ConfigError::DpopTarget(_))
    ));

    // A bearer token of the same client carries no proof, and a `use_dpop_nonce`
    // challenge to a request without a proof is no reason to retry.
    let bearer_of = |request: &client_credentials_core::TokenRequest| {
        let body = br#"{"access_token":"plain","token_type":"Bearer","expires_in":600}"#;
        request
            .parse_response(wall, StatusCode::OK, &HeaderMap::new(), body)
            .unwrap()
    };
    let bearer = bearer_of(&request);
    let plain_auth = ResourceAuth::new(&config, &bearer);
    assert!(!plain_auth.needs_proof());
    assert_eq!(
        verdict(&mut cache, &challenge("n-3"), &plain_auth),
        ResourceVerdict::Done
    );
}

/// Keys made from the caller's random bytes sign proofs that an independent verifier
/// accepts with the public members of the proof's own `jwk`; bytes that are no P-256
/// scalar and RSA are refused.
#[test]
fn generated_keys_sign_verifiable_proofs() {
    use client_credentials_core::{AssertionAlgorithm, ConfigError};
    let uri: Uri = "https://api.example.com/x".parse().unwrap();
    let random = [0x5a_u8; 32];
    for (algorithm, verify_as) in [
        (AssertionAlgorithm::Es256, Algorithm::ES256),
        (AssertionAlgorithm::EdDsa, Algorithm::EdDSA),
    ] {
        let key = DpopKey::new(AssertionKey::from_random(algorithm, &random).unwrap());
        let proof = key
            .proof(&ProofInput {
                method: &Method::GET,
                uri: &uri,
                at: UNIX_EPOCH + Duration::from_secs(AT),
                nonce: 9,
                server_nonce: None,
                access_token: None,
            })
            .unwrap();
        let jwk = &part(proof.expose_secret(), 0)["jwk"];
        let public = match verify_as {
            Algorithm::ES256 => DecodingKey::from_ec_components(
                jwk["x"].as_str().unwrap(),
                jwk["y"].as_str().unwrap(),
            ),
            _ => DecodingKey::from_ed_components(jwk["x"].as_str().unwrap()),
        }
        .unwrap();
        assert_eq!(
            verify(proof.expose_secret(), verify_as, &public)["htm"],
            "GET"
        );
        assert_eq!(key.thumbprint().len(), 43);
        let other = AssertionKey::from_random(algorithm, &[0x33; 32]).unwrap();
        assert_ne!(DpopKey::new(other).thumbprint(), key.thumbprint());
    }
    for not_a_scalar in [[0_u8; 32], [0xff_u8; 32]] {
        assert!(matches!(
            AssertionKey::from_random(AssertionAlgorithm::Es256, &not_a_scalar),
            Err(ConfigError::InvalidKey(_))
        ));
    }
    assert!(AssertionKey::from_random(AssertionAlgorithm::Rs256, &random).is_err());
}

/// The token endpoint's nonce belongs to the server, not to one request shape: a shape
/// that starts after another learned it sends it from its first proof, with no refusal.
#[test]
fn a_token_endpoint_nonce_serves_every_shape_of_the_cache() {
    use client_credentials_core::TokenParams;
    use client_credentials_core::session::{Action, Cache, Outcome, Policy, WallClock};
    use http::{HeaderMap, StatusCode};
    let config = dpop_config(EC);
    let now = start();
    let mut cache = Cache::new(
        Policy::default(),
        WallClock::new(now, UNIX_EPOCH + Duration::from_secs(AT)),
        9,
    );
    let public = DecodingKey::from_ec_pem(EC_PUBLIC.as_bytes()).unwrap();
    let nonce_of = |request: &client_credentials_core::HttpRequest| {
        let proof = request.headers()["dpop"].to_str().unwrap();
        verify(proof, Algorithm::ES256, &public)
            .get("nonce")
            .cloned()
    };
    let reads = config
        .request(&TokenParams::new().scopes(["orders.read"]))
        .unwrap();
    let Action::Send { id, request, .. } = cache.poll(now, &reads) else {
        panic!("expected a send")
    };
    assert_eq!(nonce_of(&request), None);
    let mut headers = HeaderMap::new();
    headers.insert("dpop-nonce", "as-n1".parse().unwrap());
    let body = br#"{"error":"use_dpop_nonce"}"#;
    let outcome = cache.handle_response(now, id, StatusCode::BAD_REQUEST, &headers, body);
    assert!(matches!(outcome, Outcome::Retry), "{outcome:?}");
    let Action::Send { request, .. } = cache.poll(now, &reads) else {
        panic!("expected the retry")
    };
    assert_eq!(nonce_of(&request), Some("as-n1".into()));

    let writes = config
        .request(&TokenParams::new().scopes(["orders.write"]))
        .unwrap();
    let Action::Send { request, .. } = cache.poll(now, &writes) else {
        panic!("expected a send")
    };
    assert_eq!(
        nonce_of(&request),
        Some("as-n1".into()),
        "the new shape starts with the server's nonce"
    );
}
