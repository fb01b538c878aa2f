//! The token endpoint half: RFC 6749 examples, every error path, and a round trip with the
//! core's own client.
#![cfg(feature = "server")]
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests: a panic is a failure report.

use std::time::{Duration, SystemTime};

use client_credentials_core::server::{
    ClientAuthMethod, DefaultScopes, EndpointConfigError, EndpointError, Grant, RegisteredClient,
    Rejection, TokenEndpoint, TokenEndpointBuilder, opaque_token,
};
use client_credentials_core::{
    AccessToken, AuthMethod, BodyFormat, Config, ErrorCode, ScopeSource, TokenParams,
};
use http::{HeaderValue, Method, Request, StatusCode};
use serde_json::{Value, json};

const FORM: &str = "application/x-www-form-urlencoded";
/// RFC 6749 §4.4.2: `s6BhdRkqt3:gX1fBat3bV`.
const RFC_BASIC: &str = "Basic czZCaGRSa3F0MzpnWDFmQmF0M2JW";

fn endpoint() -> TokenEndpoint {
    builder().build().unwrap()
}

fn builder() -> TokenEndpointBuilder {
    TokenEndpoint::builder()
        .scope("read", "Read things")
        .scope("write", "Write things")
        .scope("admin", "Administer")
}

fn client() -> RegisteredClient {
    RegisteredClient::new("s6BhdRkqt3", "gX1fBat3bV").scopes(["read", "write"])
}

fn request(headers: &[(&str, &str)], body: &str) -> Request<Vec<u8>> {
    let mut b = Request::post("/token");
    for (n, v) in headers {
        b = b.header(*n, *v);
    }
    b.body(body.as_bytes().to_vec()).unwrap()
}

fn basic_form(body: &str) -> Request<Vec<u8>> {
    request(
        &[("authorization", RFC_BASIC), ("content-type", FORM)],
        body,
    )
}

fn post_form(body: &str) -> Request<Vec<u8>> {
    request(&[("content-type", FORM)], body)
}

/// Parses and authorises against [`client`].
fn decide(endpoint: &TokenEndpoint, req: &Request<Vec<u8>>) -> Result<Grant, EndpointError> {
    let incoming = endpoint.parse(req)?;
    let c = client();
    let found = (incoming.client_id() == c.client_id()).then_some(&c);
    endpoint.authorize(&incoming, found)
}

fn body_json(response: &http::Response<Vec<u8>>) -> Value {
    serde_json::from_slice(response.body()).unwrap()
}

fn assert_no_store(response: &http::Response<Vec<u8>>) {
    assert_eq!(response.headers()["cache-control"], "no-store");
    assert_eq!(response.headers()["pragma"], "no-cache");
    assert_eq!(response.headers()["content-type"], "application/json");
}

#[test]
fn rfc6749_4_4_example_round_trip() {
    // §4.4.2 request, §4.4.3 response (with the RFC's "example" token type and extra member).
    let endpoint = builder().token_type("example").build().unwrap();
    let grant = decide(&endpoint, &basic_form("grant_type=client_credentials")).unwrap();
    assert_eq!(grant.client_id(), "s6BhdRkqt3");
    assert_eq!(grant.auth_method(), ClientAuthMethod::ClientSecretBasic);
    let mut extra = serde_json::Map::new();
    extra.insert("example_parameter".into(), "example_value".into());
    let endpoint_no_scope = builder()
        .token_type("example")
        .default_scopes(DefaultScopes::Empty)
        .build()
        .unwrap();
    let grant = decide(
        &endpoint_no_scope,
        &basic_form("grant_type=client_credentials"),
    )
    .unwrap();
    let response = grant.respond_with(&AccessToken::new("2YotnFZFEjr1zCsicMWpAA"), &extra);
    assert_eq!(response.status(), StatusCode::OK);
    assert_no_store(&response);
    assert_eq!(
        std::str::from_utf8(response.body()).unwrap(),
        r#"{"access_token":"2YotnFZFEjr1zCsicMWpAA","token_type":"example","expires_in":3600,"example_parameter":"example_value"}"#
    );
}

#[test]
fn rfc6749_5_2_example() {
    let error = EndpointError::new(ErrorCode::InvalidRequest);
    let response = error.to_response();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_no_store(&response);
    assert_eq!(response.body(), br#"{"error":"invalid_request"}"#);
}

#[test]
fn success_response_carries_granted_scope_and_lifetime() {
    let endpoint = builder()
        .token_lifetime(Duration::from_millis(2500))
        .build()
        .unwrap();
    let grant = decide(
        &endpoint,
        &basic_form("grant_type=client_credentials&scope=write+read+write"),
    )
    .unwrap();
    assert_eq!(grant.scopes(), ["write", "read"]);
    assert_eq!(grant.lifetime(), Duration::from_secs(2));
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
    assert_eq!(grant.expires_at(now), now + Duration::from_secs(2));
    let body = body_json(&grant.respond(&AccessToken::new("t")));
    assert_eq!(
        body,
        json!({"access_token":"t","token_type":"Bearer","expires_in":2,"scope":"write read"})
    );
    // Extras never replace the standard members.
    let mut extra = serde_json::Map::new();
    extra.insert("access_token".into(), "evil".into());
    extra.insert("expires_in".into(), 1.into());
    extra.insert("refresh_token".into(), "r".into());
    extra.insert("issued_token_type".into(), "x".into());
    let body = body_json(&grant.respond_with(&AccessToken::new("t"), &extra));
    assert_eq!(body["access_token"], "t");
    assert_eq!(body["expires_in"], 2);
    assert!(body.get("refresh_token").is_none());
    assert_eq!(body["issued_token_type"], "x");
}

#[test]
fn per_client_lifetime_overrides_the_endpoint() {
    let endpoint = endpoint();
    let incoming = endpoint
        .parse(&basic_form("grant_type=client_credentials"))
        .unwrap();
    let c = client().token_lifetime(Duration::from_secs(2));
    let grant = endpoint.authorize(&incoming, Some(&c)).unwrap();
    assert_eq!(grant.lifetime(), Duration::from_secs(2));
}

#[test]
fn scopes_plus_and_percent_20_decode_alike() {
    let endpoint = endpoint();
    for body in [
        "grant_type=client_credentials&scope=read+write",
        "grant_type=client_credentials&scope=read%20write",
        "scope=read%20%20write%20&grant_type=client_credentials",
    ] {
        let grant = decide(&endpoint, &basic_form(body)).unwrap();
        assert_eq!(grant.scopes(), ["read", "write"], "{body}");
    }
}

#[test]
fn default_scope_policies() {
    let req = basic_form("grant_type=client_credentials");
    let grant = decide(&endpoint(), &req).unwrap();
    assert_eq!(grant.scopes(), ["read", "write"]);

    let c = client().default_scopes(["read", "unregistered"]);
    let e = endpoint();
    let grant = e.authorize(&e.parse(&req).unwrap(), Some(&c)).unwrap();
    assert_eq!(
        grant.scopes(),
        ["read"],
        "unregistered defaults are dropped"
    );

    let empty = builder()
        .default_scopes(DefaultScopes::Empty)
        .build()
        .unwrap();
    let grant = decide(&empty, &req).unwrap();
    assert!(grant.scopes().is_empty());
    assert!(
        body_json(&grant.respond(&AccessToken::new("t")))
            .get("scope")
            .is_none()
    );

    let reject = builder()
        .default_scopes(DefaultScopes::Reject)
        .build()
        .unwrap();
    let err = decide(&reject, &req).unwrap_err();
    assert_eq!(err.code(), &ErrorCode::InvalidScope);
    assert_eq!(err.reason(), &Rejection::ScopeRequired);
    // A scope of spaces only counts as none.
    let err = decide(
        &reject,
        &basic_form("grant_type=client_credentials&scope=+++"),
    )
    .unwrap_err();
    assert_eq!(err.reason(), &Rejection::ScopeRequired);
}

#[test]
fn post_and_json_bodies() {
    let endpoint = endpoint();
    let grant = decide(
        &endpoint,
        &post_form("grant_type=client_credentials&client_id=s6BhdRkqt3&client_secret=gX1fBat3bV&scope=read"),
    )
    .unwrap();
    assert_eq!(grant.auth_method(), ClientAuthMethod::ClientSecretPost);
    assert_eq!(grant.scopes(), ["read"]);

    let json_req = request(
        &[("content-type", "application/json; charset=utf-8")],
        r#"{"grant_type":"client_credentials","client_id":"s6BhdRkqt3","client_secret":"gX1fBat3bV",
            "scope":["read","write"],"resource":["https://a.example/","https://b.example/"],
            "audience":null,"unknown":{"nested":[1,2]},"other":7,"kept":"yes"}"#,
    );
    let incoming = endpoint.parse(&json_req).unwrap();
    assert_eq!(incoming.scopes().unwrap(), ["read", "write"]);
    assert_eq!(
        incoming.resources(),
        ["https://a.example/", "https://b.example/"]
    );
    assert_eq!(incoming.audience(), None);
    assert_eq!(
        incoming.client_request().single("kept").unwrap(),
        Some("yes")
    );
    assert_eq!(
        incoming.client_request().values("kept").collect::<Vec<_>>(),
        ["yes"]
    );
    assert!(incoming.client_request().values("unknown").next().is_none());
    assert_eq!(incoming.client_request().body_format(), BodyFormat::Json);
    let grant = endpoint.authorize(&incoming, Some(&client())).unwrap();
    assert_eq!(grant.resources().len(), 2);

    // JSON with Basic, and a UTF-8 byte order mark.
    let bom = request(
        &[
            ("authorization", RFC_BASIC),
            ("content-type", "application/json"),
        ],
        "\u{feff}{\"grant_type\":\"client_credentials\",\"scope\":\"read\"}",
    );
    assert_eq!(decide(&endpoint, &bom).unwrap().scopes(), ["read"]);
}

#[test]
fn empty_values_are_omitted_and_unknown_parameters_ignored() {
    let endpoint = endpoint();
    let grant = decide(
        &endpoint,
        &basic_form("grant_type=client_credentials&scope=&foo=bar&foo=baz&client_id="),
    )
    .unwrap();
    assert_eq!(grant.scopes(), ["read", "write"], "empty scope is no scope");
    let incoming = endpoint
        .parse(&basic_form(
            "grant_type=client_credentials&foo=bar&foo=baz&audience=api",
        ))
        .unwrap();
    assert_eq!(incoming.audience(), Some("api"));
    assert_eq!(
        incoming.client_request().values("foo").collect::<Vec<_>>(),
        ["bar", "baz"]
    );
    // Credentials never appear among the parameters.
    let incoming = endpoint
        .parse(&post_form(
            "grant_type=client_credentials&client_id=s6BhdRkqt3&client_secret=gX1fBat3bV",
        ))
        .unwrap();
    assert!(
        incoming
            .client_request()
            .params()
            .iter()
            .all(|(n, _)| n != "client_secret" && n != "client_id")
    );
}

#[test]
fn basic_credentials_are_form_urldecoded() {
    // oauth2-rs's golden vector.
    let endpoint = endpoint();
    let req = request(
        &[
            (
                "authorization",
                "Basic YWFhJTJGJTNCJTI2OmJiYiUyRiUzQiUyNg==",
            ),
            ("content-type", FORM),
        ],
        "grant_type=client_credentials",
    );
    let incoming = endpoint.parse(&req).unwrap();
    assert_eq!(incoming.client_id(), "aaa/;&");
    let c = RegisteredClient::new("aaa/;&", "bbb/;&");
    assert!(endpoint.authorize(&incoming, Some(&c)).is_ok());

    // Scheme in any case, several spaces, no padding.
    for header in [
        "basic YWFhJTJGJTNCJTI2OmJiYiUyRiUzQiUyNg==",
        "BASIC   YWFhJTJGJTNCJTI2OmJiYiUyRiUzQiUyNg",
    ] {
        let req = request(
            &[("authorization", header), ("content-type", FORM)],
            "grant_type=client_credentials",
        );
        assert_eq!(
            endpoint.parse(&req).unwrap().client_id(),
            "aaa/;&",
            "{header}"
        );
    }
}

/// Basic as `curl -u id:secret` sends it: not form-urlencoded.
fn raw_basic(id: &str, secret: &str) -> String {
    use base64::Engine as _;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
    )
}

#[test]
fn unencoded_basic_is_refused_unless_accepted() {
    let secret = "a+b/c:d%e f";
    let c = RegisteredClient::new("app", secret);
    let req = request(
        &[
            ("authorization", &raw_basic("app", secret)),
            ("content-type", FORM),
        ],
        "grant_type=client_credentials",
    );
    let strict = endpoint();
    let err = strict
        .authorize(&strict.parse(&req).unwrap(), Some(&c))
        .unwrap_err();
    assert_eq!(err.reason(), &Rejection::WrongSecret);
    let lenient = builder().accept_unencoded_basic(true).build().unwrap();
    assert!(
        lenient
            .authorize(&lenient.parse(&req).unwrap(), Some(&c))
            .is_ok()
    );

    // Encoded properly, both accept it.
    let config = Config::builder()
        .token_url("http://127.0.0.1/token")
        .client_id("app")
        .client_secret(secret)
        .build()
        .unwrap();
    let http = plain(config.default_request().to_http());
    for e in [&strict, &lenient] {
        assert!(e.authorize(&e.parse(&http).unwrap(), Some(&c)).is_ok());
    }
}

struct Case {
    name: &'static str,
    request: Request<Vec<u8>>,
    code: ErrorCode,
    status: u16,
    reason: Rejection,
    challenge: bool,
}

fn case(
    name: &'static str,
    request: Request<Vec<u8>>,
    code: ErrorCode,
    status: u16,
    reason: Rejection,
    challenge: bool,
) -> Case {
    Case {
        name,
        request,
        code,
        status,
        reason,
        challenge,
    }
}

fn check(endpoint: &TokenEndpoint, cases: Vec<Case>) {
    for c in cases {
        let err = decide(endpoint, &c.request).expect_err(c.name);
        assert_eq!(err.code(), &c.code, "{}", c.name);
        assert_eq!(err.status().as_u16(), c.status, "{}", c.name);
        assert_eq!(err.reason(), &c.reason, "{}", c.name);
        let response = err.to_response();
        assert_eq!(response.status().as_u16(), c.status, "{}", c.name);
        assert_no_store(&response);
        let body = body_json(&response);
        assert_eq!(body["error"], c.code.as_str(), "{}", c.name);
        let challenge = response.headers().get("www-authenticate");
        assert_eq!(
            challenge.is_some(),
            c.challenge,
            "{}: {challenge:?}",
            c.name
        );
        if let Some(value) = challenge {
            assert_eq!(value, r#"Basic realm="token""#, "{}", c.name);
        }
        if let Some(d) = body.get("error_description") {
            let d = d.as_str().unwrap();
            assert!(
                d.chars()
                    .all(|c| matches!(c, '\x20'..='\x21' | '\x23'..='\x5B' | '\x5D'..='\x7E')),
                "{}: {d}",
                c.name
            );
            assert!(!d.contains("gX1fBat3bV"));
        }
    }
}

#[test]
fn invalid_request_paths() {
    use ErrorCode::InvalidRequest as IR;
    let endpoint = builder().max_body(200).build().unwrap();
    let mut get = basic_form("grant_type=client_credentials");
    *get.method_mut() = Method::GET;
    let mut two_types = basic_form("grant_type=client_credentials");
    two_types
        .headers_mut()
        .append("content-type", HeaderValue::from_static(FORM));
    let mut two_auth = basic_form("grant_type=client_credentials");
    two_auth
        .headers_mut()
        .append("authorization", HeaderValue::from_static(RFC_BASIC));
    let json = |body: &str| {
        request(
            &[
                ("authorization", RFC_BASIC),
                ("content-type", "application/json"),
            ],
            body,
        )
    };
    let cases = vec![
        case("GET", get, IR, 405, Rejection::MethodNotAllowed, false),
        case(
            "no content type",
            request(
                &[("authorization", RFC_BASIC)],
                "grant_type=client_credentials",
            ),
            IR,
            400,
            Rejection::MissingContentType,
            false,
        ),
        case(
            "two content types",
            two_types,
            IR,
            400,
            Rejection::MissingContentType,
            false,
        ),
        case(
            "text/plain",
            request(
                &[("authorization", RFC_BASIC), ("content-type", "text/plain")],
                "grant_type=client_credentials",
            ),
            IR,
            400,
            Rejection::UnsupportedContentType,
            false,
        ),
        case(
            "multipart",
            request(
                &[
                    ("authorization", RFC_BASIC),
                    ("content-type", "multipart/form-data; boundary=x"),
                ],
                "",
            ),
            IR,
            400,
            Rejection::UnsupportedContentType,
            false,
        ),
        case(
            "over the cap",
            basic_form(&format!(
                "grant_type=client_credentials&pad={}",
                "x".repeat(200)
            )),
            IR,
            400,
            Rejection::BodyTooLarge { limit: 200 },
            false,
        ),
        case(
            "not JSON",
            json("grant_type=client_credentials"),
            IR,
            400,
            Rejection::MalformedBody,
            false,
        ),
        case(
            "JSON array",
            json(r#"["client_credentials"]"#),
            IR,
            400,
            Rejection::MalformedBody,
            false,
        ),
        case(
            "truncated JSON",
            json(r#"{"grant_type":"client_cr"#),
            IR,
            400,
            Rejection::MalformedBody,
            false,
        ),
        case(
            "JSON number",
            json(r#"{"grant_type":1}"#),
            IR,
            400,
            Rejection::ParameterNotString("grant_type"),
            false,
        ),
        case(
            "JSON array grant type",
            json(r#"{"grant_type":["client_credentials"]}"#),
            IR,
            400,
            Rejection::ParameterNotString("grant_type"),
            false,
        ),
        case(
            "JSON resource array with a number",
            json(r#"{"grant_type":"client_credentials","resource":["https://a/",1]}"#),
            IR,
            400,
            Rejection::ParameterNotString("resource"),
            false,
        ),
        case(
            "JSON repeated key",
            json(r#"{"grant_type":"client_credentials","grant_type":"client_credentials"}"#),
            IR,
            400,
            Rejection::RepeatedParameter("grant_type"),
            false,
        ),
        case(
            "missing grant_type",
            basic_form("scope=read"),
            IR,
            400,
            Rejection::MissingParameter("grant_type"),
            false,
        ),
        case(
            "empty grant_type",
            basic_form("grant_type="),
            IR,
            400,
            Rejection::MissingParameter("grant_type"),
            false,
        ),
        case(
            "repeated grant_type",
            basic_form("grant_type=client_credentials&grant_type=client_credentials"),
            IR,
            400,
            Rejection::RepeatedParameter("grant_type"),
            false,
        ),
        case(
            "repeated scope",
            basic_form("grant_type=client_credentials&scope=read&scope=write"),
            IR,
            400,
            Rejection::RepeatedParameter("scope"),
            false,
        ),
        case(
            "repeated audience",
            basic_form("grant_type=client_credentials&audience=a&audience=b"),
            IR,
            400,
            Rejection::RepeatedParameter("audience"),
            false,
        ),
        case(
            "repeated client_id",
            post_form(
                "grant_type=client_credentials&client_id=s6BhdRkqt3&client_id=s6BhdRkqt3&client_secret=gX1fBat3bV",
            ),
            IR,
            400,
            Rejection::RepeatedParameter("client_id"),
            false,
        ),
        case(
            "repeated client_secret",
            post_form(
                "grant_type=client_credentials&client_id=s6BhdRkqt3&client_secret=gX1fBat3bV&client_secret=x",
            ),
            IR,
            400,
            Rejection::RepeatedParameter("client_secret"),
            false,
        ),
        case(
            "two Authorization headers",
            two_auth,
            IR,
            400,
            Rejection::MultipleAuthorizationHeaders,
            false,
        ),
        case(
            "credentials in header and body",
            basic_form(
                "grant_type=client_credentials&client_id=s6BhdRkqt3&client_secret=gX1fBat3bV",
            ),
            IR,
            400,
            Rejection::CredentialsInHeaderAndBody,
            false,
        ),
        case(
            "client_id mismatch",
            basic_form("grant_type=client_credentials&client_id=someone-else"),
            IR,
            400,
            Rejection::ClientIdMismatch,
            false,
        ),
        case(
            "secret without id",
            post_form("grant_type=client_credentials&client_secret=gX1fBat3bV"),
            IR,
            400,
            Rejection::MissingParameter("client_id"),
            false,
        ),
    ];
    check(&endpoint, cases);
    // The same client_id in the body and the header is fine.
    assert!(
        decide(
            &endpoint,
            &basic_form("grant_type=client_credentials&client_id=s6BhdRkqt3")
        )
        .is_ok()
    );
    // A body exactly at the cap passes the size check.
    let at_cap = format!("grant_type=client_credentials&p={}", "x".repeat(200 - 32));
    assert_eq!(at_cap.len(), 200);
    assert!(decide(&endpoint, &basic_form(&at_cap)).is_ok());
}

#[test]
fn json_is_refused_when_not_accepted() {
    let endpoint = builder().accept_json(false).build().unwrap();
    let req = request(
        &[
            ("authorization", RFC_BASIC),
            ("content-type", "application/json"),
        ],
        r#"{"grant_type":"client_credentials"}"#,
    );
    let err = decide(&endpoint, &req).unwrap_err();
    assert_eq!(err.reason(), &Rejection::UnsupportedContentType);
    assert!(err.description().unwrap().contains("x-www-form-urlencoded"));
    assert!(!endpoint.accepts_json());
}

#[test]
fn invalid_client_paths() {
    use ErrorCode::InvalidClient as IC;
    let endpoint = endpoint();
    let basic = |header: &str| {
        request(
            &[("authorization", header), ("content-type", FORM)],
            "grant_type=client_credentials",
        )
    };
    let wrong = raw_basic("s6BhdRkqt3", "wrong");
    let unknown = raw_basic("nobody", "gX1fBat3bV");
    let cases = vec![
        case(
            "bad base64",
            basic("Basic !!!"),
            IC,
            401,
            Rejection::MalformedBasicCredentials,
            true,
        ),
        case(
            "no colon",
            basic("Basic bm9jb2xvbg=="),
            IC,
            401,
            Rejection::MalformedBasicCredentials,
            true,
        ),
        case(
            "empty id",
            basic("Basic OnNlY3JldA=="),
            IC,
            401,
            Rejection::MalformedBasicCredentials,
            true,
        ),
        case(
            "not UTF-8",
            basic("Basic //79Og=="),
            IC,
            401,
            Rejection::MalformedBasicCredentials,
            true,
        ),
        case(
            "scheme only",
            basic("Basic"),
            IC,
            401,
            Rejection::MalformedBasicCredentials,
            true,
        ),
        case(
            "Bearer",
            basic("Bearer abc"),
            IC,
            401,
            Rejection::UnsupportedAuthScheme,
            true,
        ),
        case(
            "Digest",
            basic("Digest username=x"),
            IC,
            401,
            Rejection::UnsupportedAuthScheme,
            true,
        ),
        case(
            "wrong secret",
            basic(&wrong),
            IC,
            401,
            Rejection::WrongSecret,
            true,
        ),
        case(
            "unknown client",
            basic(&unknown),
            IC,
            401,
            Rejection::UnknownClient,
            true,
        ),
        case(
            "wrong post secret",
            post_form("grant_type=client_credentials&client_id=s6BhdRkqt3&client_secret=nope"),
            IC,
            401,
            Rejection::WrongSecret,
            true,
        ),
        case(
            "no credentials",
            post_form("grant_type=client_credentials"),
            IC,
            401,
            Rejection::NoClientAuthentication,
            true,
        ),
        case(
            "public client",
            post_form("grant_type=client_credentials&client_id=s6BhdRkqt3"),
            IC,
            401,
            Rejection::NoClientAuthentication,
            true,
        ),
    ];
    check(&endpoint, cases);

    // Unknown client and wrong secret answer identically: no client enumeration.
    let a = decide(&endpoint, &basic(&wrong)).unwrap_err().to_response();
    let b = decide(&endpoint, &basic(&unknown))
        .unwrap_err()
        .to_response();
    assert_eq!(a.body(), b.body());
    assert_eq!(a.headers(), b.headers());
}

#[test]
fn auth_methods_the_endpoint_or_client_refuses() {
    let post_only = builder()
        .auth_methods([ClientAuthMethod::ClientSecretPost])
        .build()
        .unwrap();
    check(
        &post_only,
        vec![
            // Basic was used: the challenge is owed even though Basic is not accepted.
            case(
                "Basic to a post-only endpoint",
                basic_form("grant_type=client_credentials"),
                ErrorCode::InvalidClient,
                401,
                Rejection::AuthMethodNotAccepted(ClientAuthMethod::ClientSecretBasic),
                true,
            ),
        ],
    );
    // No Basic accepted and none used: 400, since a 401 must carry a challenge.
    let err = decide(&post_only, &post_form("grant_type=client_credentials")).unwrap_err();
    assert_eq!(err.status(), StatusCode::BAD_REQUEST);
    assert_eq!(err.code(), &ErrorCode::InvalidClient);
    assert!(
        err.to_response()
            .headers()
            .get("www-authenticate")
            .is_none()
    );

    let basic_only = builder()
        .auth_methods([ClientAuthMethod::ClientSecretBasic])
        .build()
        .unwrap();
    check(
        &basic_only,
        vec![case(
            "post to a Basic-only endpoint",
            post_form(
                "grant_type=client_credentials&client_id=s6BhdRkqt3&client_secret=gX1fBat3bV",
            ),
            ErrorCode::InvalidClient,
            401,
            Rejection::AuthMethodNotAccepted(ClientAuthMethod::ClientSecretPost),
            true,
        )],
    );

    // The client record restricts the method.
    let endpoint = endpoint();
    let incoming = endpoint
        .parse(&post_form(
            "grant_type=client_credentials&client_id=s6BhdRkqt3&client_secret=gX1fBat3bV",
        ))
        .unwrap();
    let c = client().auth_methods([ClientAuthMethod::ClientSecretBasic]);
    let err = endpoint.authorize(&incoming, Some(&c)).unwrap_err();
    assert_eq!(
        err.reason(),
        &Rejection::AuthMethodNotAllowedForClient(ClientAuthMethod::ClientSecretPost)
    );
    assert_eq!(err.status(), StatusCode::UNAUTHORIZED);
}

#[test]
fn grant_and_scope_paths() {
    let endpoint = endpoint();
    check(
        &endpoint,
        vec![
            case(
                "password grant",
                basic_form("grant_type=password&username=u&password=p"),
                ErrorCode::UnsupportedGrantType,
                400,
                Rejection::UnsupportedGrantType,
                false,
            ),
            case(
                "case matters",
                basic_form("grant_type=Client_Credentials"),
                ErrorCode::UnsupportedGrantType,
                400,
                Rejection::UnsupportedGrantType,
                false,
            ),
            case(
                "unknown scope",
                basic_form("grant_type=client_credentials&scope=read+delete"),
                ErrorCode::InvalidScope,
                400,
                Rejection::UnknownScope("delete".into()),
                false,
            ),
            case(
                "scope not allowed",
                basic_form("grant_type=client_credentials&scope=admin"),
                ErrorCode::InvalidScope,
                400,
                Rejection::ScopeNotAllowed("admin".into()),
                false,
            ),
            case(
                "malformed scope",
                basic_form("grant_type=client_credentials&scope=re%22ad"),
                ErrorCode::InvalidScope,
                400,
                Rejection::MalformedScope,
                false,
            ),
            case(
                "scope with a control character",
                basic_form("grant_type=client_credentials&scope=read%0Awrite"),
                ErrorCode::InvalidScope,
                400,
                Rejection::MalformedScope,
                false,
            ),
            case(
                "relative resource",
                basic_form("grant_type=client_credentials&resource=api"),
                ErrorCode::InvalidTarget,
                400,
                Rejection::InvalidResource,
                false,
            ),
            case(
                "resource with a fragment",
                basic_form("grant_type=client_credentials&resource=https%3A%2F%2Fapi%2F%23x"),
                ErrorCode::InvalidTarget,
                400,
                Rejection::InvalidResource,
                false,
            ),
        ],
    );
    let err = decide(
        &endpoint,
        &basic_form("grant_type=client_credentials&scope=admin"),
    )
    .unwrap_err();
    assert_eq!(
        err.description(),
        Some("scope admin is not allowed for this client")
    );

    let incoming = endpoint
        .parse(&basic_form("grant_type=client_credentials"))
        .unwrap();
    let c = client().client_credentials_allowed(false);
    let err = endpoint.authorize(&incoming, Some(&c)).unwrap_err();
    assert_eq!(err.code(), &ErrorCode::UnauthorizedClient);
    assert_eq!(err.status(), StatusCode::BAD_REQUEST);
    assert_eq!(err.reason(), &Rejection::GrantNotAllowedForClient);
    // A wrong secret is reported before the grant, so the grant leaks nothing.
    let wrong = RegisteredClient::new("s6BhdRkqt3", "other").client_credentials_allowed(false);
    assert_eq!(
        endpoint
            .authorize(&incoming, Some(&wrong))
            .unwrap_err()
            .code(),
        &ErrorCode::InvalidClient
    );

    let resources = endpoint
        .parse(&basic_form(
            "grant_type=client_credentials&resource=https%3A%2F%2Fa%2F&resource=urn%3Aapi",
        ))
        .unwrap();
    assert_eq!(resources.resources(), ["https://a/", "urn:api"]);
}

#[test]
fn custom_errors() {
    let e = EndpointError::server_error()
        .with_description("store \"down\"\n")
        .with_uri("https://docs.example/errors#store");
    assert_eq!(e.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(e.reason(), &Rejection::Custom);
    assert_eq!(
        e.body(),
        br#"{"error":"server_error","error_description":"store ?down??","error_uri":"https://docs.example/errors#store"}"#
    );
    let bad_uri = EndpointError::new(ErrorCode::InvalidRequest).with_uri("has space");
    assert_eq!(bad_uri.body(), br#"{"error":"invalid_request"}"#);
    let challenged = EndpointError::new(ErrorCode::InvalidClient).with_basic_challenge("a \"b\"");
    assert_eq!(challenged.challenge(), Some(r#"Basic realm="a \"b\"""#));
    assert_eq!(
        challenged.to_response().headers()["www-authenticate"],
        r#"Basic realm="a \"b\"""#
    );
    assert_eq!(
        format!(
            "{}",
            EndpointError::new(ErrorCode::InvalidScope).with_description("x")
        ),
        "invalid_scope (HTTP 400): x"
    );
}

#[test]
fn handle_runs_the_whole_exchange() {
    let endpoint = endpoint();
    let clients = [client()];
    let lookup = |id: &str| clients.iter().find(|c| c.client_id() == id);
    let ok = endpoint.handle(
        &basic_form("grant_type=client_credentials&scope=read"),
        lookup,
        |g| {
            assert_eq!(g.scopes(), ["read"]);
            Ok(opaque_token(&[9; 32]))
        },
    );
    assert_eq!(ok.status(), StatusCode::OK);
    assert_eq!(
        body_json(&ok)["access_token"],
        opaque_token(&[9; 32]).expose_secret()
    );
    let refused = endpoint.handle(&basic_form("grant_type=password"), lookup, |_| {
        panic!("no token for a refused request")
    });
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    let failed = endpoint.handle(&basic_form("grant_type=client_credentials"), lookup, |_| {
        Err(EndpointError::server_error())
    });
    assert_eq!(failed.status(), StatusCode::INTERNAL_SERVER_ERROR);
}

#[test]
fn builder_validation() {
    let b = TokenEndpoint::builder;
    assert_eq!(
        b().token_path("token").build().unwrap_err(),
        EndpointConfigError::InvalidTokenPath("token".into())
    );
    assert!(matches!(
        b().token_path("/t?x=1").build(),
        Err(EndpointConfigError::InvalidTokenPath(_))
    ));
    assert_eq!(
        b().scope("a b", "").build().unwrap_err(),
        EndpointConfigError::InvalidScope("a b".into())
    );
    assert_eq!(
        b().scope("", "").build().unwrap_err(),
        EndpointConfigError::InvalidScope(String::new())
    );
    assert_eq!(
        b().scope("a", "").scope("a", "").build().unwrap_err(),
        EndpointConfigError::DuplicateScope("a".into())
    );
    assert_eq!(
        b().auth_methods([]).build().unwrap_err(),
        EndpointConfigError::NoAuthMethod
    );
    assert_eq!(
        b().token_lifetime(Duration::from_millis(999))
            .build()
            .unwrap_err(),
        EndpointConfigError::InvalidLifetime
    );
    assert_eq!(
        b().token_type("two words").build().unwrap_err(),
        EndpointConfigError::InvalidTokenType("two words".into())
    );
    assert_eq!(
        b().realm("").build().unwrap_err(),
        EndpointConfigError::InvalidRealm
    );
    assert_eq!(
        b().max_body(0).build().unwrap_err(),
        EndpointConfigError::ZeroBodyCap
    );
    let e = b()
        .auth_methods([
            ClientAuthMethod::ClientSecretPost,
            ClientAuthMethod::ClientSecretPost,
        ])
        .build()
        .unwrap();
    assert_eq!(e.auth_methods(), [ClientAuthMethod::ClientSecretPost]);
    assert_eq!(e.token_path(), "/token");
    assert_eq!(e.token_type(), "Bearer");
    assert_eq!(e.realm(), "token");
    assert_eq!(e.token_lifetime(), Duration::from_secs(3600));
}

#[test]
fn opaque_tokens_are_b64tokens() {
    let t = opaque_token(&[0xFF; 32]);
    assert_eq!(t.expose_secret().len(), 43);
    assert!(
        t.expose_secret()
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    );
    assert_ne!(opaque_token(&[1; 32]), opaque_token(&[2; 32]));
}

#[test]
fn openapi_descriptions() {
    let endpoint = builder().token_path("/oauth2/token").build().unwrap();
    let scheme = endpoint.openapi_security_scheme();
    assert_eq!(scheme["type"], "oauth2");
    let flow = &scheme["flows"]["clientCredentials"];
    assert_eq!(flow["tokenUrl"], "/oauth2/token");
    assert_eq!(
        flow["scopes"],
        json!({"read":"Read things","write":"Write things","admin":"Administer"})
    );
    assert_eq!(
        endpoint.openapi_security_scheme_at("https://as.example/t")["flows"]["clientCredentials"]["tokenUrl"],
        "https://as.example/t"
    );
    let item = endpoint.openapi_path_item();
    let post = &item["post"];
    assert!(post["requestBody"]["content"]["application/json"].is_object());
    assert_eq!(
        post["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"]["required"],
        json!(["grant_type"])
    );
    for status in ["200", "400", "401"] {
        assert_eq!(
            post["responses"][status]["headers"]["Cache-Control"]["schema"]["const"], "no-store",
            "{status}"
        );
    }
    assert_eq!(endpoint.openapi_client_auth_scheme()["scheme"], "basic");
    let form_only = builder()
        .accept_json(false)
        .auth_methods([ClientAuthMethod::ClientSecretBasic])
        .build()
        .unwrap()
        .openapi_path_item();
    assert!(form_only["post"]["requestBody"]["content"]["application/json"].is_null());
    assert!(
        form_only["post"]["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"]
            ["properties"]["client_secret"]
            .is_null()
    );
}

/// Our client and our server, both sans-IO: every auth method and body format.
#[test]
fn round_trip_with_the_core_client() {
    let endpoint = builder().accept_unencoded_basic(true).build().unwrap();
    let secret = "a+b/c:d%e f&=?";
    let registered = RegisteredClient::new("svc:1", secret).scopes(["read", "write"]);
    let methods = [
        AuthMethod::ClientSecretBasic,
        AuthMethod::ClientSecretPost {
            client_id_param: "client_id".into(),
            client_secret_param: "client_secret".into(),
        },
    ];
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    for method in methods {
        for format in [BodyFormat::Form, BodyFormat::Json] {
            let config = Config::builder()
                .token_url("http://127.0.0.1:1/token")
                .client_id("svc:1")
                .client_secret(secret)
                .auth_method(method.clone())
                .body_format(format)
                .scopes(["read"])
                .build()
                .unwrap();
            for params in [
                TokenParams::new(),
                TokenParams::new().scopes(["read", "write"]),
            ] {
                let request = config.request(&params).unwrap();
                let http = plain(request.to_http());
                let incoming = endpoint.parse(&http).unwrap();
                let grant = endpoint.authorize(&incoming, Some(&registered)).unwrap();
                let response = grant.respond(&opaque_token(&[3; 32]));
                let token = request.parse_http_response(now, &response).unwrap();
                assert_eq!(
                    token.scopes(),
                    request.params().scopes(),
                    "{method:?} {format:?}"
                );
                assert_eq!(token.scope_source(), ScopeSource::Granted);
                assert_eq!(token.expires_at(), Some(now + Duration::from_secs(3600)));
                assert!(token.deviations().is_empty(), "{:?}", token.deviations());
            }
        }
    }
    // The raw Basic variant, against an endpoint that tolerates it.
    let config = Config::builder()
        .token_url("http://127.0.0.1:1/token")
        .client_id("svc-raw")
        .client_secret(secret)
        .auth_method(AuthMethod::ClientSecretBasicRaw)
        .build()
        .unwrap();
    let raw_client = RegisteredClient::new("svc-raw", secret).scopes(["read"]);
    let request = config.default_request();
    let incoming = endpoint.parse(&plain(request.to_http())).unwrap();
    assert!(endpoint.authorize(&incoming, Some(&raw_client)).is_ok());

    // And the client understands every refusal.
    let request = Config::builder()
        .token_url("http://127.0.0.1:1/token")
        .client_id("svc:1")
        .client_secret("wrong")
        .build()
        .unwrap()
        .default_request();
    let http = plain(request.to_http());
    let err = endpoint
        .authorize(&endpoint.parse(&http).unwrap(), Some(&registered))
        .unwrap_err()
        .to_response();
    let err = request.parse_http_response(now, &err).unwrap_err();
    assert_eq!(err.oauth_code(), Some(&ErrorCode::InvalidClient));
    assert!(!err.is_retryable());
    let rendered = format!("{err} {err:?}");
    assert!(!rendered.contains("wrong"), "{rendered}");
}

/// The token request as a plain `http::Request`, as a server receives it.
fn plain(request: client_credentials_core::HttpRequest) -> http::Request<Vec<u8>> {
    let (parts, body) = request.into_parts();
    http::Request::from_parts(parts, body.into_vec())
}
