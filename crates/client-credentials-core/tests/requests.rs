//! Golden request bytes: every auth method × body format, and the RFC vectors.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly

use base64::Engine as _;
use client_credentials_core::{AuthMethod, BodyFormat, Config, ConfigError, TokenParams};
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE};

fn config(method: AuthMethod, format: BodyFormat) -> Config {
    Config::builder()
        .token_url("https://server.example.com/token")
        .client_id("s6BhdRkqt3")
        .client_secret("gX1fBat3bV")
        .auth_method(method)
        .body_format(format)
        .build()
        .unwrap()
}

fn body(req: &client_credentials_core::HttpRequest) -> &str {
    std::str::from_utf8(req.body()).unwrap()
}

fn decode_basic(header: &http::HeaderValue) -> String {
    let v = header.to_str().unwrap();
    let b64 = v.strip_prefix("Basic ").unwrap();
    String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap(),
    )
    .unwrap()
}

#[test]
fn rfc6749_4_4_2_example() {
    // RFC 6749 §4.4.2: POST with Basic credentials and only grant_type in the body.
    let req = config(AuthMethod::ClientSecretBasic, BodyFormat::Form)
        .default_request()
        .to_http();
    assert_eq!(req.method(), http::Method::POST);
    assert_eq!(req.uri(), "https://server.example.com/token");
    assert_eq!(
        req.headers()[AUTHORIZATION],
        "Basic czZCaGRSa3F0MzpnWDFmQmF0M2JW"
    );
    assert!(req.headers()[AUTHORIZATION].is_sensitive());
    assert_eq!(
        req.headers()[CONTENT_TYPE],
        "application/x-www-form-urlencoded"
    );
    assert_eq!(req.headers()[ACCEPT], "application/json");
    assert_eq!(body(&req), "grant_type=client_credentials");
}

#[test]
fn rfc6749_2_3_1_basic_vector() {
    let cfg = Config::builder()
        .token_url("https://server.example.com/token")
        .client_id("aaa/;&")
        .client_secret("bbb/;&")
        .build()
        .unwrap();
    let req = cfg.default_request().to_http();
    assert_eq!(
        req.headers()[AUTHORIZATION],
        "Basic YWFhJTJGJTNCJTI2OmJiYiUyRiUzQiUyNg=="
    );
}

#[test]
fn secret_that_needs_encoding() {
    let secret = "a+b/c:d%e f";
    let builder = || {
        Config::builder()
            .token_url("https://server.example.com/token")
            .client_id("client:1")
            .client_secret(secret)
    };
    let encoded = builder().build().unwrap().default_request().to_http();
    assert_eq!(
        decode_basic(&encoded.headers()[AUTHORIZATION]),
        "client%3A1:a%2Bb%2Fc%3Ad%25e+f"
    );
    let raw = builder()
        .client_id("client-1")
        .auth_method(AuthMethod::ClientSecretBasicRaw)
        .build()
        .unwrap()
        .default_request()
        .to_http();
    assert_eq!(
        decode_basic(&raw.headers()[AUTHORIZATION]),
        "client-1:a+b/c:d%e f"
    );
    let post = builder()
        .auth_method(AuthMethod::client_secret_post())
        .build()
        .unwrap()
        .default_request()
        .to_http();
    assert_eq!(
        body(&post),
        "grant_type=client_credentials&client_id=client%3A1&client_secret=a%2Bb%2Fc%3Ad%25e+f"
    );
    let decoded: Vec<(String, String)> = form_urlencoded::parse(post.body()).into_owned().collect();
    assert_eq!(decoded[2], ("client_secret".into(), secret.into()));
}

/// The full matrix: every method × format with scopes, audience, two resources and an extra
/// parameter, byte for byte.
#[test]
fn golden_matrix() {
    let cases: &[(AuthMethod, BodyFormat, Option<&str>, &str)] = &[
        (
            AuthMethod::ClientSecretBasic,
            BodyFormat::Form,
            Some("czZCaGRSa3F0MzpnWDFmQmF0M2JW"),
            "grant_type=client_credentials&scope=read+write&audience=https%3A%2F%2Fapi.example.com&resource=https%3A%2F%2Fa.example%2F&resource=https%3A%2F%2Fb.example%2F&tenant=t1",
        ),
        (
            AuthMethod::ClientSecretBasic,
            BodyFormat::Json,
            Some("czZCaGRSa3F0MzpnWDFmQmF0M2JW"),
            r#"{"grant_type":"client_credentials","scope":"read write","audience":"https://api.example.com","resource":["https://a.example/","https://b.example/"],"tenant":"t1"}"#,
        ),
        (
            AuthMethod::ClientSecretBasicRaw,
            BodyFormat::Form,
            Some("czZCaGRSa3F0MzpnWDFmQmF0M2JW"),
            "grant_type=client_credentials&scope=read+write&audience=https%3A%2F%2Fapi.example.com&resource=https%3A%2F%2Fa.example%2F&resource=https%3A%2F%2Fb.example%2F&tenant=t1",
        ),
        (
            AuthMethod::client_secret_post(),
            BodyFormat::Form,
            None,
            "grant_type=client_credentials&scope=read+write&audience=https%3A%2F%2Fapi.example.com&resource=https%3A%2F%2Fa.example%2F&resource=https%3A%2F%2Fb.example%2F&tenant=t1&client_id=s6BhdRkqt3&client_secret=gX1fBat3bV",
        ),
        (
            AuthMethod::client_secret_post(),
            BodyFormat::Json,
            None,
            r#"{"grant_type":"client_credentials","scope":"read write","audience":"https://api.example.com","resource":["https://a.example/","https://b.example/"],"tenant":"t1","client_id":"s6BhdRkqt3","client_secret":"gX1fBat3bV"}"#,
        ),
        (
            AuthMethod::ClientSecretPost {
                client_id_param: "clientId".into(),
                client_secret_param: "clientSecret".into(),
            },
            BodyFormat::Json,
            None,
            r#"{"grant_type":"client_credentials","scope":"read write","audience":"https://api.example.com","resource":["https://a.example/","https://b.example/"],"tenant":"t1","clientId":"s6BhdRkqt3","clientSecret":"gX1fBat3bV"}"#,
        ),
        (
            AuthMethod::None,
            BodyFormat::Form,
            None,
            "grant_type=client_credentials&scope=read+write&audience=https%3A%2F%2Fapi.example.com&resource=https%3A%2F%2Fa.example%2F&resource=https%3A%2F%2Fb.example%2F&tenant=t1&client_id=s6BhdRkqt3",
        ),
        (
            AuthMethod::None,
            BodyFormat::Json,
            None,
            r#"{"grant_type":"client_credentials","scope":"read write","audience":"https://api.example.com","resource":["https://a.example/","https://b.example/"],"tenant":"t1","client_id":"s6BhdRkqt3"}"#,
        ),
    ];
    for (method, format, basic, expected) in cases {
        let cfg = Config::builder()
            .token_url("https://server.example.com/token")
            .client_id("s6BhdRkqt3")
            .client_secret("gX1fBat3bV")
            .auth_method(method.clone())
            .body_format(*format)
            .scopes(["read", "write", "read"])
            .audience("https://api.example.com")
            .resource("https://a.example/")
            .resource("https://b.example/")
            .extra_param("tenant", "t1")
            .build()
            .unwrap();
        let req = cfg.default_request().to_http();
        assert_eq!(body(&req), *expected, "{method:?} {format:?}");
        match basic {
            Some(b) => assert_eq!(
                req.headers()[AUTHORIZATION],
                format!("Basic {b}").as_str(),
                "{method:?}"
            ),
            None => assert!(
                !req.headers().contains_key(AUTHORIZATION),
                "{method:?}: credentials must never be in both places"
            ),
        }
        let ct = match format {
            BodyFormat::Json => "application/json",
            _ => "application/x-www-form-urlencoded",
        };
        assert_eq!(req.headers()[CONTENT_TYPE], ct);
        if *format == BodyFormat::Json {
            serde_json::from_slice::<serde_json::Value>(req.body()).expect("valid JSON");
        }
        // Deterministic: building twice gives the same bytes.
        assert_eq!(cfg.default_request().to_http().body(), req.body());
    }
}

#[test]
fn overrides_and_separator() {
    let cfg = Config::builder()
        .token_url("https://server.example.com/token")
        .client_id("c")
        .client_secret("s")
        .scopes(["default"])
        .scope_separator(",")
        .audience("aud")
        .extra_param("a", "1")
        .extra_param("b", "2")
        .build()
        .unwrap();
    let req = cfg
        .request(
            &TokenParams::new()
                .scopes(["x", "y"])
                .without_audience()
                .extra_param("b", "3"),
        )
        .unwrap()
        .to_http();
    assert_eq!(
        body(&req),
        "grant_type=client_credentials&scope=x%2Cy&a=1&b=3"
    );
    let none = cfg
        .request(&TokenParams::new().scopes(Vec::<String>::new()))
        .unwrap()
        .to_http();
    assert_eq!(
        body(&none),
        "grant_type=client_credentials&audience=aud&a=1&b=2"
    );
    assert_eq!(
        cfg.request(&TokenParams::new().extra_param("resource", "x"))
            .err(),
        Some(ConfigError::ReservedParameter("resource".into()))
    );
    assert_eq!(
        cfg.request(&TokenParams::new().scopes(["bad\"scope"]))
            .err(),
        Some(ConfigError::InvalidScope("bad\"scope".into()))
    );
}

#[test]
fn cache_keys_separate_every_request_shape() {
    let cfg = config(AuthMethod::ClientSecretBasic, BodyFormat::Form);
    let key = |p: TokenParams| cfg.request(&p).unwrap().cache_key().clone();
    let base = key(TokenParams::new().scopes(["a", "b"]));
    assert_eq!(
        base,
        key(TokenParams::new().scopes(["b", "a"])),
        "scope order is normalised"
    );
    assert_eq!(base, key(TokenParams::new().scopes(["a", "b", "a"])));
    assert_ne!(base, key(TokenParams::new().scopes(["a"])));
    assert_ne!(
        base,
        key(TokenParams::new().scopes(["a", "b"]).audience("x"))
    );
    assert_ne!(
        base,
        key(TokenParams::new().scopes(["a", "b"]).resource("https://r/"))
    );
    assert_ne!(
        base,
        key(TokenParams::new().scopes(["a", "b"]).extra_param("k", "v"))
    );
    // "a b" as one scope cannot collide with ["a", "b"]: it is refused outright.
    assert!(cfg.request(&TokenParams::new().scopes(["a b"])).is_err());
    let other_client = Config::builder()
        .token_url("https://server.example.com/token")
        .client_id("other")
        .client_secret("gX1fBat3bV")
        .build()
        .unwrap();
    assert_ne!(
        base,
        other_client
            .request(&TokenParams::new().scopes(["a", "b"]))
            .unwrap()
            .cache_key()
            .clone()
    );
    assert!(
        !base.as_str().contains("gX1fBat3bV"),
        "the key never holds the secret"
    );
}

#[test]
fn request_debug_shows_no_body_or_credentials() {
    let cfg = Config::builder()
        .token_url("https://server.example.com/token")
        .client_id("c")
        .client_secret("super-secret-value")
        .auth_method(AuthMethod::client_secret_post())
        .build()
        .unwrap();
    let req = cfg.default_request().to_http();
    let dbg = format!("{req:?}");
    assert!(dbg.contains("body_len"), "{dbg}");
    assert!(!dbg.contains("super-secret-value"), "{dbg}");
    let basic = config(AuthMethod::ClientSecretBasic, BodyFormat::Form)
        .default_request()
        .to_http();
    let dbg = format!("{basic:?}");
    assert!(!dbg.contains("czZCaGRSa3F0MzpnWDFmQmF0M2JW"), "{dbg}");
    assert!(
        dbg.contains("authorization"),
        "header names are shown: {dbg}"
    );
}

#[test]
fn extra_headers_merge_by_name_and_keep_their_values_out_of_debug_and_keys() {
    let config = Config::builder()
        .token_url("https://server.example.com/token")
        .client_id("s6BhdRkqt3")
        .client_secret("gX1fBat3bV")
        .header("X-Gateway-Key", "gw-default-key")
        .build()
        .unwrap();
    assert!(!format!("{config:?}").contains("gw-default-key"));
    let default = config.default_request();
    assert_eq!(
        default.to_http().headers()["x-gateway-key"],
        "gw-default-key"
    );

    // A shape's header replaces the default of the same name, whatever its case.
    let params = TokenParams::new().header("x-gateway-KEY", "gw-tenant-key");
    let tenant = config.request(&params).unwrap();
    let http = tenant.to_http();
    let values: Vec<_> = http.headers().get_all("x-gateway-key").iter().collect();
    assert_eq!(values, ["gw-tenant-key"]);
    assert!(values[0].is_sensitive());
    assert_ne!(tenant.cache_key(), default.cache_key());
    for shown in [
        format!("{params:?}"),
        format!("{tenant:?}"),
        format!("{:?}", tenant.cache_key()),
        tenant.cache_key().as_str().to_owned(),
    ] {
        assert!(!shown.contains("gw-tenant-key"), "{shown}");
    }

    for bad in [
        "",
        " padded",
        "padded ",
        "tab\there",
        "caf\u{e9}",
        "line\nbreak",
    ] {
        assert_eq!(
            config
                .request(&TokenParams::new().header("x-tenant", bad))
                .unwrap_err(),
            ConfigError::InvalidHeaderValue("x-tenant".into()),
            "{bad:?}"
        );
    }
    assert!(matches!(
        config.request(&TokenParams::new().header("bad name", "v")),
        Err(ConfigError::InvalidHeader(_))
    ));
}

#[test]
fn a_timeout_is_not_part_of_the_shape_and_never_panics() {
    let config = config(AuthMethod::ClientSecretBasic, BodyFormat::Form);
    let overall = std::time::Duration::from_secs(15);
    for timeout in [
        std::time::Duration::from_millis(1),
        std::time::Duration::MAX,
    ] {
        let request = config
            .request(&TokenParams::new().timeout(timeout))
            .unwrap();
        assert_eq!(request.cache_key(), config.default_request().cache_key());
        assert_eq!(
            request.to_http().timeout_within(overall),
            timeout.min(overall)
        );
    }
    assert_eq!(
        config
            .request(&TokenParams::new().timeout(std::time::Duration::ZERO))
            .unwrap_err(),
        ConfigError::ZeroTimeout
    );
}

#[test]
fn mutual_tls_methods_send_the_client_id_and_no_secret() {
    // RFC 8705 §2: the certificate authenticates on the connection; the body names the
    // client; no secret, no Authorization header, in either body format.
    let identity = client_credentials_core::ClientIdentity::from_pem(
        include_str!("keys/mtls-client.pem"),
        include_str!("keys/mtls-client.key"),
    )
    .unwrap();
    for method in [
        AuthMethod::TlsClientAuth,
        AuthMethod::SelfSignedTlsClientAuth,
    ] {
        for (format, content_type, expected) in [
            (
                BodyFormat::Form,
                "application/x-www-form-urlencoded",
                "grant_type=client_credentials&scope=read&client_id=s6BhdRkqt3",
            ),
            (
                BodyFormat::Json,
                "application/json",
                r#"{"grant_type":"client_credentials","scope":"read","client_id":"s6BhdRkqt3"}"#,
            ),
        ] {
            let config = Config::builder()
                .token_url("https://mtls.server.example.com/token")
                .client_id("s6BhdRkqt3")
                .auth_method(method.clone())
                .client_certificate(identity.clone())
                .body_format(format)
                .scopes(["read"])
                .build()
                .unwrap();
            let req = config.default_request().to_http();
            assert_eq!(req.uri(), "https://mtls.server.example.com/token");
            assert!(req.headers().get(AUTHORIZATION).is_none(), "{method:?}");
            assert_eq!(req.headers()[CONTENT_TYPE], content_type);
            assert_eq!(body(&req), expected, "{method:?} {format:?}");
            // Revocation and introspection authenticate the same way.
            let revoke = Config::builder()
                .token_url("https://mtls.server.example.com/token")
                .revocation_url("https://mtls.server.example.com/revoke")
                .client_id("s6BhdRkqt3")
                .auth_method(method.clone())
                .client_certificate(identity.clone())
                .build()
                .unwrap()
                .revocation(&client_credentials_core::AccessToken::new("t"))
                .unwrap()
                .0;
            assert!(revoke.headers().get(AUTHORIZATION).is_none());
            assert!(
                body(&revoke).ends_with("&client_id=s6BhdRkqt3"),
                "{}",
                body(&revoke)
            );
        }
    }
}
