//! Signed client assertions (feature `jwt`): the exact header and claims for fixed inputs,
//! each signature checked by an independent verifier (`jsonwebtoken` on RustCrypto; aws-lc
//! signs), a new `jti` for every request a session sends, and keys that never leak.
#![cfg(feature = "jwt")]
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

use std::collections::HashSet;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use client_credentials_core::session::{Action, Failure, Policy, Session, WallClock};
use client_credentials_core::{
    AssertionAlgorithm, AssertionKey, Audience, AuthMethod, Config, ConfigError, TransportError,
    TransportErrorKind,
};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Value, json};

const RSA: &str = include_str!("keys/rsa-2048.pem");
const RSA_PKCS1: &str = include_str!("keys/rsa-2048-pkcs1.pem");
const RSA_PUBLIC: &str = include_str!("keys/rsa-2048.pub.pem");
const RSA_CERT: &str = include_str!("keys/rsa-2048-cert.pem");
const EC: &str = include_str!("keys/ec-p256.pem");
const EC_SEC1: &str = include_str!("keys/ec-p256-sec1.pem");
const EC_PUBLIC: &str = include_str!("keys/ec-p256.pub.pem");
const ED: &str = include_str!("keys/ed25519.pem");
const ED_PUBLIC: &str = include_str!("keys/ed25519.pub.pem");
const P384: &str = include_str!("keys/ec-p384.pem");

const TOKEN_URL: &str = "https://auth.example.com/oauth2/token";
const CLIENT_ID: &str = "my-service";
/// 2027-01-15T08:00:00Z.
const AT: u64 = 1_800_000_000;
const HS_SECRET: &str = "a-client-secret-of-at-least-32-bytes-0123";

fn at() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(AT)
}

fn key_config(key: AssertionKey) -> Config {
    Config::builder()
        .token_url(TOKEN_URL)
        .client_id(CLIENT_ID)
        .private_key(key)
        .build()
        .unwrap()
}

/// The form fields of a request body.
fn fields(body: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(body).into_owned().collect()
}

/// The assertion of `config`'s request sent `at` with `nonce`.
fn assertion(config: &Config, at: SystemTime, nonce: u128) -> String {
    let http = config.default_request().to_http_at(at, nonce);
    assert!(
        http.headers().get("authorization").is_none(),
        "no Basic credentials beside an assertion"
    );
    let fields = fields(http.body());
    let names: Vec<&str> = fields.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "grant_type",
            "client_id",
            "client_assertion_type",
            "client_assertion"
        ]
    );
    assert_eq!(fields[1].1, CLIENT_ID);
    assert_eq!(
        fields[2].1,
        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    );
    fields[3].1.clone()
}

fn part(jwt: &str, i: usize) -> Value {
    let segment = jwt.split('.').nth(i).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(segment).unwrap()).unwrap()
}

/// Checks the signature, `aud`, `iss`, `sub` and `exp` with `jsonwebtoken` (its clock is
/// the real one, so the check runs against an assertion issued now).
fn verify(jwt: &str, algorithm: Algorithm, key: &DecodingKey) -> Value {
    let mut validation = Validation::new(algorithm);
    validation.set_audience(&[TOKEN_URL]);
    validation.set_issuer(&[CLIENT_ID]);
    validation.sub = Some(CLIENT_ID.to_owned());
    validation.set_required_spec_claims(&["exp", "iat", "aud", "iss", "sub", "jti"]);
    jsonwebtoken::decode::<Value>(jwt, key, &validation)
        .unwrap_or_else(|e| panic!("{algorithm:?}: {e}"))
        .claims
}

#[test]
fn golden_header_and_claims_for_fixed_inputs() {
    let key = AssertionKey::from_pem(RSA).unwrap().with_key_id("key-2026");
    let jwt = assertion(&key_config(key), at(), 0x0102_0304);
    assert_eq!(
        part(&jwt, 0),
        json!({"alg": "RS256", "typ": "JWT", "kid": "key-2026"})
    );
    assert_eq!(
        part(&jwt, 1),
        json!({
            "iss": CLIENT_ID,
            "sub": CLIENT_ID,
            "aud": TOKEN_URL,
            "jti": "AAAAAAAAAAAAAAAAAQIDBA",
            "iat": AT,
            "exp": AT + 120,
        })
    );
    // The exact bytes of the signing input: members in a fixed order.
    let (header, claims) = (
        jwt.split('.').next().unwrap(),
        jwt.split('.').nth(1).unwrap(),
    );
    assert_eq!(
        URL_SAFE_NO_PAD.decode(header).unwrap(),
        br#"{"alg":"RS256","typ":"JWT","kid":"key-2026"}"#
    );
    assert_eq!(
        String::from_utf8(URL_SAFE_NO_PAD.decode(claims).unwrap()).unwrap(),
        format!(
            r#"{{"iss":"my-service","sub":"my-service","aud":"{TOKEN_URL}","jti":"AAAAAAAAAAAAAAAAAQIDBA","iat":{AT},"exp":{}}}"#,
            AT + 120
        )
    );
    // RS256 is deterministic: the same inputs, the same assertion.
    let again = assertion(
        &key_config(AssertionKey::from_pem(RSA).unwrap().with_key_id("key-2026")),
        at(),
        0x0102_0304,
    );
    assert_eq!(jwt, again);
    // The signature, by the independent verifier (exp checked separately: the assertion
    // was issued in 2027).
    let mut validation = Validation::new(Algorithm::RS256);
    validation.validate_exp = false;
    validation.set_audience(&[TOKEN_URL]);
    let key = DecodingKey::from_rsa_pem(RSA_PUBLIC.as_bytes()).unwrap();
    jsonwebtoken::decode::<Value>(&jwt, &key, &validation).unwrap();
}

#[test]
fn every_algorithm_verifies_independently() {
    // The verifier checks `exp` against the real clock: the assertion is issued now.
    #[allow(
        clippy::disallowed_methods,
        reason = "a test input: the independent verifier reads the real clock"
    )]
    let now = SystemTime::now();
    let cases: [(&str, Option<AssertionAlgorithm>, Algorithm, DecodingKey); 6] = [
        (
            RSA,
            None,
            Algorithm::RS256,
            DecodingKey::from_rsa_pem(RSA_PUBLIC.as_bytes()).unwrap(),
        ),
        (
            RSA_PKCS1,
            None,
            Algorithm::RS256,
            DecodingKey::from_rsa_pem(RSA_PUBLIC.as_bytes()).unwrap(),
        ),
        (
            RSA,
            Some(AssertionAlgorithm::Ps256),
            Algorithm::PS256,
            DecodingKey::from_rsa_pem(RSA_PUBLIC.as_bytes()).unwrap(),
        ),
        (
            EC,
            None,
            Algorithm::ES256,
            DecodingKey::from_ec_pem(EC_PUBLIC.as_bytes()).unwrap(),
        ),
        (
            EC_SEC1,
            None,
            Algorithm::ES256,
            DecodingKey::from_ec_pem(EC_PUBLIC.as_bytes()).unwrap(),
        ),
        (
            ED,
            None,
            Algorithm::EdDSA,
            DecodingKey::from_ed_pem(ED_PUBLIC.as_bytes()).unwrap(),
        ),
    ];
    for (pem, algorithm, expected, public) in cases {
        let mut key = AssertionKey::from_pem(pem).unwrap();
        if let Some(a) = algorithm {
            key = key.with_algorithm(a).unwrap();
        }
        assert_eq!(key.algorithm().name(), format!("{expected:?}"));
        let jwt = assertion(&key_config(key), now, 42);
        let claims = verify(&jwt, expected, &public);
        assert_eq!(claims["iss"], CLIENT_ID);
    }
    // client_secret_jwt: HS256 keyed by the secret, which is not sent.
    let config = Config::builder()
        .token_url(TOKEN_URL)
        .client_id(CLIENT_ID)
        .client_secret(HS_SECRET)
        .auth_method(AuthMethod::ClientSecretJwt)
        .build()
        .unwrap();
    let http = config.default_request().to_http_at(now, 42);
    assert!(!String::from_utf8_lossy(http.body()).contains(HS_SECRET));
    let jwt = assertion(&config, now, 42);
    assert_eq!(part(&jwt, 0)["alg"], "HS256");
    verify(
        &jwt,
        Algorithm::HS256,
        &DecodingKey::from_secret(HS_SECRET.as_bytes()).unwrap(),
    );
    // A wrong key does not verify.
    let mut validation = Validation::new(Algorithm::HS256);
    validation.set_audience(&[TOKEN_URL]);
    let wrong = DecodingKey::from_secret(b"another-secret-of-at-least-32-bytes!!").unwrap();
    assert!(jsonwebtoken::decode::<Value>(&jwt, &wrong, &validation).is_err());
}

#[test]
fn options_audience_lifetime_not_before_and_thumbprints() {
    let key = AssertionKey::from_pem(RSA)
        .unwrap()
        .with_certificate_pem(RSA_CERT)
        .unwrap()
        .with_sha1_thumbprint();
    let config = Config::builder()
        .token_url(TOKEN_URL)
        .client_id(CLIENT_ID)
        .private_key(key)
        .assertion_audience(Audience::Value("https://auth.example.com".into()))
        .assertion_lifetime(Duration::from_secs(60))
        .assertion_not_before(true)
        .build()
        .unwrap();
    let jwt = assertion(&config, at(), 1);
    // The thumbprints of the certificate's DER, computed with openssl when it was made.
    assert_eq!(
        part(&jwt, 0),
        json!({
            "alg": "RS256",
            "typ": "JWT",
            "x5t#S256": "ZOBptdR-aJjoFaHR6A1JxrRMBluvz1-csW48qQi6c9o",
            "x5t": "0ONRuPkKwO-Zt9Oxqzean_pL2i8",
        })
    );
    let claims = part(&jwt, 1);
    assert_eq!(claims["aud"], "https://auth.example.com");
    assert_eq!(claims["exp"], AT + 60);
    assert_eq!(claims["nbf"], AT);
}

#[test]
fn a_session_signs_a_new_assertion_for_every_request() {
    let config = key_config(AssertionKey::from_pem(EC).unwrap());
    #[allow(
        clippy::disallowed_methods,
        reason = "a test input: any instant serves as the session's start"
    )]
    let start = Instant::now();
    let clock = WallClock::new(start, at());
    let mut session = Session::new(config.default_request(), Policy::default(), clock, 9);
    let mut jtis = HashSet::new();
    let mut now = start;
    for _ in 0..5 {
        let Action::Send { id, request, .. } = session.poll(now) else {
            panic!("a session without a token sends")
        };
        let jwt = fields(request.body())
            .into_iter()
            .find(|(n, _)| n == "client_assertion")
            .unwrap()
            .1;
        let claims = part(&jwt, 1);
        let sent_at = at() + now.duration_since(start);
        let sent_at = sent_at.duration_since(UNIX_EPOCH).unwrap().as_secs();
        assert_eq!(claims["iat"], sent_at, "issued when sent");
        assert!(jtis.insert(claims["jti"].as_str().unwrap().to_owned()));
        // A failure: the retry, later, signs anew.
        let failure = Failure::Transport(TransportError::from_kind(TransportErrorKind::Connect));
        let _ = session.handle_failure(now, id, failure);
        now = session.poll_timeout().unwrap();
    }
}

#[test]
fn keys_stay_out_of_debug_errors_and_cache_keys() {
    let body_of = |pem: &str| -> String {
        pem.lines()
            .filter(|l| !l.starts_with("-----"))
            .collect::<String>()
    };
    let key = AssertionKey::from_pem(RSA).unwrap().with_key_id("k1");
    let config = key_config(key.clone());
    let request = config.default_request();
    let shown = [
        format!("{key:?}"),
        format!("{config:?}"),
        format!("{request:?}"),
        request.cache_key().as_str().to_owned(),
    ];
    let secret = body_of(RSA);
    for text in &shown {
        for chunk in secret.as_bytes().chunks(16) {
            let chunk = std::str::from_utf8(chunk).unwrap();
            assert!(!text.contains(chunk), "key material in {text}");
        }
    }
    assert!(shown[3].contains(&key.thumbprint()), "{}", shown[3]);
    // Another key, another cache key; the same key, the same one.
    let other = key_config(AssertionKey::from_pem(EC).unwrap());
    assert_ne!(request.cache_key(), other.default_request().cache_key());
    assert_eq!(
        request.cache_key(),
        key_config(AssertionKey::from_pem(RSA).unwrap().with_key_id("k1"))
            .default_request()
            .cache_key()
    );
    // The secret of client_secret_jwt stays out too.
    let hs = Config::builder()
        .token_url(TOKEN_URL)
        .client_id(CLIENT_ID)
        .client_secret(HS_SECRET)
        .auth_method(AuthMethod::ClientSecretJwt)
        .build()
        .unwrap();
    assert!(!format!("{hs:?}").contains(HS_SECRET));
    assert!(
        !hs.default_request()
            .cache_key()
            .as_str()
            .contains(HS_SECRET)
    );
}

#[test]
fn unusable_keys_and_secrets_are_typed_configuration_errors() {
    let invalid =
        |r: Result<AssertionKey, ConfigError>| matches!(r, Err(ConfigError::InvalidKey(_)));
    assert!(invalid(AssertionKey::from_pem(P384)), "P-384 is not ES256");
    assert!(invalid(AssertionKey::from_pem("not a key")));
    assert!(invalid(AssertionKey::from_pem(RSA_PUBLIC)), "a public key");
    assert!(invalid(AssertionKey::from_der(b"\x30\x03\x02\x01\x00")));
    assert!(invalid(
        AssertionKey::from_pem(EC)
            .unwrap()
            .with_algorithm(AssertionAlgorithm::Ps256)
    ));
    assert!(invalid(
        AssertionKey::from_pem(RSA)
            .unwrap()
            .with_certificate_pem("x")
    ));
    let error = AssertionKey::from_pem(P384).unwrap_err().to_string();
    assert!(!error.contains("MII"), "{error}");
    let built = |b: client_credentials_core::ConfigBuilder| b.build().unwrap_err();
    let base = || Config::builder().token_url(TOKEN_URL).client_id(CLIENT_ID);
    assert_eq!(
        built(base().auth_method(AuthMethod::PrivateKeyJwt)),
        ConfigError::MissingKey
    );
    assert_eq!(
        built(
            base()
                .client_secret("short")
                .auth_method(AuthMethod::ClientSecretJwt)
        ),
        ConfigError::WeakSecret
    );
    assert_eq!(
        built(base().auth_method(AuthMethod::ClientSecretJwt)),
        ConfigError::MissingSecret("client_secret_jwt")
    );
}

#[test]
fn revocation_and_introspection_sign_their_own_assertion() {
    use client_credentials_core::AccessToken;
    let config = Config::builder()
        .token_url(TOKEN_URL)
        .revocation_url("https://auth.example.com/oauth2/revoke")
        .introspection_url("https://auth.example.com/oauth2/introspect")
        .client_id(CLIENT_ID)
        .private_key(AssertionKey::from_pem(EC).unwrap())
        .build()
        .unwrap();
    let token = AccessToken::new("the-token");
    let sent = |http: client_credentials_core::HttpRequest| {
        let fields = fields(http.body());
        let jwt = fields
            .iter()
            .find(|(n, _)| n == "client_assertion")
            .map(|(_, v)| v.clone());
        (fields[0].clone(), jwt)
    };
    let (revoke, _) = config.revocation_at(&token, Some((at(), 1))).unwrap();
    let (introspect, _) = config.introspection_at(&token, Some((at(), 2))).unwrap();
    let (first, revoke_jwt) = sent(revoke);
    assert_eq!(first, ("token".to_owned(), "the-token".to_owned()));
    let (_, introspect_jwt) = sent(introspect);
    let claims = |jwt: &str| -> Value {
        let payload = jwt.split('.').nth(1).unwrap();
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
    };
    let (r, i) = (
        claims(&revoke_jwt.unwrap()),
        claims(&introspect_jwt.unwrap()),
    );
    // The audience is the token endpoint's, as for a fetch; each has its own jti.
    assert_eq!(r["aud"], TOKEN_URL);
    assert_eq!(i["aud"], TOKEN_URL);
    assert_eq!(r["iat"], AT);
    assert_ne!(r["jti"], i["jti"]);
    // Without the time input, no assertion (the server refuses such a request).
    let (unsigned, _) = config.revocation(&token).unwrap();
    assert_eq!(sent(unsigned).1, None);
}
