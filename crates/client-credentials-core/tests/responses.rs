//! Response shapes modelled on documented behaviour of real providers, each with the outcome
//! the parser must reach.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly

use std::time::{Duration, SystemTime};

use client_credentials_core::{
    Config, DescriptionMember, Deviation, ErrorCode, ErrorDialect, MissingLifetime,
    ResponseProblem, ScopeSource, Token, TokenError, TokenParams, TokenRequest,
};
use http::{HeaderMap, HeaderValue, StatusCode};

const NOW_SECS: u64 = 1_700_000_000;

fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(NOW_SECS)
}

fn request() -> TokenRequest {
    Config::builder()
        .token_url("https://as.example.com/token")
        .client_id("client")
        .client_secret("the-client-secret-1234")
        .scopes(["api.read"])
        .build()
        .unwrap()
        .default_request()
}

fn parse_with(
    req: &TokenRequest,
    status: u16,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<Token, TokenError> {
    let mut map = HeaderMap::new();
    for (k, v) in headers {
        map.append(
            http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    req.parse_response(now(), StatusCode::from_u16(status).unwrap(), &map, body)
}

const JSON: (&str, &str) = ("content-type", "application/json; charset=utf-8");

type Check = fn(Result<Token, TokenError>);

struct Case {
    name: &'static str,
    status: u16,
    headers: &'static [(&'static str, &'static str)],
    body: &'static str,
    check: Check,
}

fn ok(r: Result<Token, TokenError>) -> Token {
    match r {
        Ok(t) => t,
        Err(e) => panic!("expected a token, got {e:?}"),
    }
}

fn err(r: Result<Token, TokenError>) -> TokenError {
    match r {
        Ok(t) => panic!("expected an error, got {t:?}"),
        Err(e) => e,
    }
}

fn not_found(e: &TokenError) {
    match e {
        TokenError::InvalidResponse {
            status, problem, ..
        } => {
            assert_eq!(status.as_u16(), 404);
            assert_eq!(*problem, ResponseProblem::EndpointNotFound);
        }
        other => panic!("expected EndpointNotFound, got {other:?}"),
    }
    assert!(e.oauth_error().is_none(), "not an OAuth refusal: {e:?}");
    assert!(!e.is_retryable());
    assert!(e.to_string().contains("endpoint not found"), "{e}");
}

fn lifetime(t: &Token) -> u64 {
    t.lifetime().unwrap().as_secs()
}

fn rejected(e: &TokenError, status: u16, code: ErrorCode) {
    match e {
        TokenError::Rejected {
            status: s, error, ..
        } => {
            assert_eq!(s.as_u16(), status);
            assert_eq!(error.code, code);
        }
        other => panic!("expected Rejected({code}), got {other:?}"),
    }
    assert!(!e.is_retryable());
}

/// The classification a vendor's error body must get from its status.
#[derive(Clone, Copy, Debug)]
enum Kind {
    /// 4xx (or an error in a 2xx body): refused, not retryable.
    Rejected(u16),
    /// 429: retryable.
    RateLimited,
    /// 5xx: retryable.
    Server(u16),
}

/// A vendor-shaped error: classified by its status, the vendor's code and message kept, and
/// the shape noted.
fn vendor(e: &TokenError, kind: Kind, code: &str, dialect: ErrorDialect, description: &str) {
    match (kind, e) {
        (Kind::Rejected(status), TokenError::Rejected { status: s, .. }) => {
            assert_eq!(s.as_u16(), status, "{e:?}");
            assert!(!e.is_retryable(), "{e:?}");
        }
        (Kind::RateLimited, TokenError::RateLimited { .. }) => assert!(e.is_retryable()),
        (Kind::Server(status), TokenError::Server { status: s, .. }) => {
            assert_eq!(s.as_u16(), status, "{e:?}");
            assert!(e.is_retryable());
        }
        _ => panic!("expected {kind:?}, got {e:?}"),
    }
    let error = e
        .oauth_error()
        .unwrap_or_else(|| panic!("no vendor error: {e:?}"));
    assert_eq!(error.code, ErrorCode::parse(code), "{e:?}");
    assert_eq!(error.description.as_deref(), Some(description), "{e:?}");
    assert_eq!(error.dialect, Some(dialect), "{e:?}");
    assert_eq!(e.error_dialect(), Some(dialect));
    assert!(e.to_string().contains(description), "{e}");
}

const CASES: &[Case] = &[
    Case {
        name: "RFC 6749 §5.1 with Bearer",
        status: 200,
        headers: &[JSON, ("cache-control", "no-store")],
        body: r#"{"access_token":"2YotnFZFEjr1zCsicMWpAA","token_type":"Bearer","expires_in":3600,"example_parameter":"example_value"}"#,
        check: |r| {
            let t = ok(r);
            assert_eq!(t.access_token().expose_secret(), "2YotnFZFEjr1zCsicMWpAA");
            assert_eq!(lifetime(&t), 3600);
            assert_eq!(t.extra()["example_parameter"], "example_value");
            assert!(!t.deviations().contains(&Deviation::TokenTypeCase));
            assert_eq!(t.scope_source(), ScopeSource::Requested);
            assert_eq!(t.scopes(), ["api.read"]);
        },
    },
    Case {
        name: "RFC 6749 §5.2 invalid_request",
        status: 400,
        headers: &[JSON],
        body: r#"{"error":"invalid_request"}"#,
        check: |r| rejected(&err(r), 400, ErrorCode::InvalidRequest),
    },
    Case {
        name: "Entra ID v2 success",
        status: 200,
        headers: &[JSON],
        body: r#"{"token_type":"Bearer","expires_in":3599,"ext_expires_in":3599,"access_token":"eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJ4In0.c2ln"}"#,
        check: |r| {
            let t = ok(r);
            assert_eq!(lifetime(&t), 3599);
            assert_eq!(t.extra()["ext_expires_in"], 3599);
            assert!(t.deviations().is_empty(), "{:?}", t.deviations());
        },
    },
    Case {
        name: "Entra ID v1 success: numbers as strings, expires_on",
        status: 200,
        headers: &[JSON],
        body: r#"{"token_type":"Bearer","expires_in":"3599","ext_expires_in":"3599","expires_on":"1700003599","not_before":"1700000000","resource":"https://graph.microsoft.com","access_token":"eyJ0eXAi.eyJhdWQi.sig"}"#,
        check: |r| {
            let t = ok(r);
            assert_eq!(lifetime(&t), 3599);
            assert!(t.deviations().contains(&Deviation::ExpiresInString));
            assert_eq!(t.extra()["resource"], "https://graph.microsoft.com");
        },
    },
    Case {
        name: "Entra ID invalid_client (AADSTS7000215)",
        status: 401,
        headers: &[
            JSON,
            (
                "www-authenticate",
                "Basic realm=\"login.microsoftonline.com\"",
            ),
        ],
        body: r#"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided. Trace ID: 8c0d1b6e","error_codes":[7000215],"timestamp":"2026-11-22 02:00:00Z","trace_id":"8c0d1b6e","correlation_id":"1f2e","error_uri":"https://login.microsoftonline.com/error?code=7000215"}"#,
        check: |r| {
            let e = err(r);
            rejected(&e, 401, ErrorCode::InvalidClient);
            let TokenError::Rejected {
                error,
                www_authenticate,
                ..
            } = &e
            else {
                unreachable!()
            };
            assert!(
                error
                    .description
                    .as_deref()
                    .unwrap()
                    .starts_with("AADSTS7000215")
            );
            assert_eq!(
                error.uri.as_deref(),
                Some("https://login.microsoftonline.com/error?code=7000215")
            );
            assert_eq!(
                www_authenticate.as_deref(),
                Some("Basic realm=\"login.microsoftonline.com\"")
            );
            assert_eq!(e.status(), Some(StatusCode::UNAUTHORIZED));
        },
    },
    Case {
        name: "Entra ID invalid_scope",
        status: 400,
        headers: &[JSON],
        body: r#"{"error":"invalid_scope","error_description":"AADSTS1002012: The provided value for scope api.read is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier.","error_codes":[1002012]}"#,
        check: |r| rejected(&err(r), 400, ErrorCode::InvalidScope),
    },
    Case {
        name: "Entra ID throttling: 429 with Retry-After seconds",
        status: 429,
        headers: &[JSON, ("retry-after", "17")],
        body: r#"{"error":"temporarily_unavailable","error_description":"AADSTS50196: The server terminated an operation because it encountered a client request loop."}"#,
        check: |r| {
            let e = err(r);
            assert!(matches!(e, TokenError::RateLimited { .. }), "{e:?}");
            assert_eq!(e.retry_after(), Some(Duration::from_secs(17)));
            assert_eq!(e.oauth_code(), Some(&ErrorCode::TemporarilyUnavailable));
            assert!(e.is_retryable());
        },
    },
    Case {
        name: "Entra ID managed identity: refresh_in",
        status: 200,
        headers: &[JSON],
        body: r#"{"access_token":"eyJ0.eyJ1.c2ln","expires_in":"86399","refresh_in":"43199","token_type":"Bearer","resource":"https://vault.azure.net"}"#,
        check: |r| {
            let t = ok(r);
            assert_eq!(t.refresh_in(), Some(Duration::from_secs(43199)));
            assert_eq!(lifetime(&t), 86399);
        },
    },
    Case {
        name: "Okta success with scope",
        status: 200,
        headers: &[JSON],
        body: r#"{"token_type":"Bearer","expires_in":3600,"access_token":"eyJraWQiOiJ.eyJ2ZXIiOjE.sig","scope":"customScope"}"#,
        check: |r| {
            let t = ok(r);
            assert_eq!(t.scopes(), ["customScope"]);
            assert_eq!(t.scope_source(), ScopeSource::Granted);
        },
    },
    Case {
        name: "Okta invalid_client",
        status: 401,
        headers: &[JSON],
        body: r#"{"error":"invalid_client","error_description":"The client secret supplied for a confidential client is invalid."}"#,
        check: |r| rejected(&err(r), 401, ErrorCode::InvalidClient),
    },
    Case {
        name: "Okta rate limit: 429 with its own envelope and no Retry-After",
        status: 429,
        headers: &[JSON, ("x-rate-limit-reset", "1700000060")],
        body: r#"{"errorCode":"E0000047","errorSummary":"API call exceeded rate limit due to too many requests.","errorLink":"E0000047","errorId":"oaeXyZ","errorCauses":[]}"#,
        check: |r| {
            let e = err(r);
            assert!(
                matches!(
                    e,
                    TokenError::RateLimited {
                        retry_after: None,
                        ..
                    }
                ),
                "{e:?}"
            );
            assert!(e.is_retryable());
            vendor(
                &e,
                Kind::RateLimited,
                "E0000047",
                ErrorDialect::ErrorCodeSummary,
                "API call exceeded rate limit due to too many requests.",
            );
        },
    },
    Case {
        name: "Auth0 success",
        status: 200,
        headers: &[JSON],
        body: r#"{"access_token":"eyJhbGciOi.eyJpc3Mi.sig","scope":"read:users update:users","expires_in":86400,"token_type":"Bearer"}"#,
        check: |r| {
            let t = ok(r);
            assert_eq!(t.scopes(), ["read:users", "update:users"]);
            assert_eq!(lifetime(&t), 86400);
        },
    },
    Case {
        name: "Auth0 access_denied (unknown code kept)",
        status: 401,
        headers: &[JSON],
        body: r#"{"error":"access_denied","error_description":"Unauthorized"}"#,
        check: |r| rejected(&err(r), 401, ErrorCode::Unknown("access_denied".into())),
    },
    Case {
        name: "Auth0 unauthorized_client with error_uri",
        status: 403,
        headers: &[JSON],
        body: r#"{"error":"unauthorized_client","error_description":"Grant type 'client_credentials' not allowed for the client.","error_uri":"https://auth0.com/docs/clients/client-grant-types"}"#,
        check: |r| rejected(&err(r), 403, ErrorCode::UnauthorizedClient),
    },
    Case {
        name: "Auth0 too_many_requests",
        status: 429,
        headers: &[JSON, ("x-ratelimit-reset", "1700000010")],
        body: r#"{"error":"too_many_requests","error_description":"Global limit has been reached"}"#,
        check: |r| {
            let e = err(r);
            assert!(matches!(e, TokenError::RateLimited { .. }));
            assert_eq!(
                e.oauth_code(),
                Some(&ErrorCode::Unknown("too_many_requests".into()))
            );
        },
    },
    Case {
        name: "Keycloak success with refresh_expires_in and not-before-policy",
        status: 200,
        headers: &[JSON],
        body: r#"{"access_token":"eyJhbGciOiJSUzI1NiJ9.e30.sig","expires_in":300,"refresh_expires_in":0,"token_type":"Bearer","not-before-policy":0,"scope":"profile email"}"#,
        check: |r| {
            let t = ok(r);
            assert_eq!(t.scopes(), ["profile", "email"]);
            assert_eq!(t.extra()["not-before-policy"], 0);
        },
    },
    Case {
        name: "Keycloak bad secret is unauthorized_client with 401",
        status: 401,
        headers: &[JSON],
        body: r#"{"error":"unauthorized_client","error_description":"Invalid client or Invalid client credentials"}"#,
        check: |r| rejected(&err(r), 401, ErrorCode::UnauthorizedClient),
    },
    Case {
        name: "Keycloak invalid_scope",
        status: 400,
        headers: &[JSON],
        body: r#"{"error":"invalid_scope","error_description":"Invalid scopes: api.read"}"#,
        check: |r| rejected(&err(r), 400, ErrorCode::InvalidScope),
    },
    Case {
        name: "Google success",
        status: 200,
        headers: &[JSON],
        body: r#"{"access_token":"ya29.c.b0AXv0zTOxyz-_abc","expires_in":3599,"token_type":"Bearer"}"#,
        check: |r| assert_eq!(lifetime(&ok(r)), 3599),
    },
    Case {
        name: "Google invalid_grant",
        status: 400,
        headers: &[JSON],
        body: r#"{"error":"invalid_grant","error_description":"Invalid JWT Signature."}"#,
        check: |r| rejected(&err(r), 400, ErrorCode::InvalidGrant),
    },
    Case {
        name: "Cognito success",
        status: 200,
        headers: &[("content-type", "application/json;charset=UTF-8")],
        body: r#"{"access_token":"eyJraWQ.eyJzdWI.sig","expires_in":3600,"token_type":"Bearer"}"#,
        check: |r| assert_eq!(lifetime(&ok(r)), 3600),
    },
    Case {
        name: "Cognito invalid_client with 400",
        status: 400,
        headers: &[("content-type", "application/json;charset=UTF-8")],
        body: r#"{"error":"invalid_client"}"#,
        check: |r| rejected(&err(r), 400, ErrorCode::InvalidClient),
    },
    Case {
        name: "GitHub form-urlencoded body, lower-case bearer, no expires_in",
        status: 200,
        headers: &[(
            "content-type",
            "application/x-www-form-urlencoded; charset=utf-8",
        )],
        body: "access_token=gho_16C7e42F292c6912E7710c838347Ae178B4a&scope=repo%20gist&token_type=bearer",
        check: |r| {
            let t = ok(r);
            assert_eq!(
                t.access_token().expose_secret(),
                "gho_16C7e42F292c6912E7710c838347Ae178B4a"
            );
            assert_eq!(t.token_type(), "Bearer");
            assert_eq!(t.scopes(), ["repo", "gist"]);
            assert!(t.deviations().contains(&Deviation::FormBody));
            assert!(t.deviations().contains(&Deviation::TokenTypeCase));
            assert!(t.deviations().contains(&Deviation::ExpiresInMissing));
            assert_eq!(lifetime(&t), 300, "default missing-lifetime policy");
        },
    },
    Case {
        name: "GitHub error in a 200 body",
        status: 200,
        headers: &[JSON],
        body: r#"{"error":"incorrect_client_credentials","error_description":"The client_id and/or client_secret passed are incorrect.","error_uri":"https://docs.github.com/apps/troubleshooting"}"#,
        check: |r| {
            let e = err(r);
            rejected(
                &e,
                200,
                ErrorCode::Unknown("incorrect_client_credentials".into()),
            );
        },
    },
    Case {
        name: "Salesforce: no expires_in, token with '!', extras",
        status: 200,
        headers: &[JSON],
        body: r#"{"access_token":"00D5g000004xyz!AR8AQJXg5oR.abc","signature":"c2lnbmF0dXJl","scope":"api","instance_url":"https://acme.my.salesforce.com","id":"https://login.salesforce.com/id/00D/005","token_type":"Bearer","issued_at":"1700000000000"}"#,
        check: |r| {
            let t = ok(r);
            assert_eq!(
                t.access_token().expose_secret(),
                "00D5g000004xyz!AR8AQJXg5oR.abc"
            );
            assert_eq!(t.extra()["instance_url"], "https://acme.my.salesforce.com");
            assert!(t.deviations().contains(&Deviation::ExpiresInMissing));
            // '!' is VSCHAR (RFC 6749 A.12) but not b64token (RFC 6750).
            assert!(t.deviations().contains(&Deviation::AccessTokenSyntax));
        },
    },
    Case {
        name: "Salesforce invalid_client",
        status: 400,
        headers: &[JSON],
        body: r#"{"error":"invalid_client","error_description":"invalid client credentials"}"#,
        check: |r| rejected(&err(r), 400, ErrorCode::InvalidClient),
    },
    Case {
        name: "Twitch: lower-case bearer, long lifetime",
        status: 200,
        headers: &[JSON],
        body: r#"{"access_token":"jostpf5q0uzmxmkba9iyug38kjtgh","expires_in":5011271,"token_type":"bearer"}"#,
        check: |r| {
            let t = ok(r);
            assert_eq!(lifetime(&t), 5_011_271);
            assert!(t.deviations().contains(&Deviation::TokenTypeCase));
        },
    },
    Case {
        name: "Twitch error envelope {status, message}",
        status: 400,
        headers: &[JSON],
        body: r#"{"status":400,"message":"invalid client secret"}"#,
        check: |r| {
            vendor(
                &err(r),
                Kind::Rejected(400),
                "400",
                ErrorDialect::StatusMessage,
                "invalid client secret",
            )
        },
    },
    Case {
        name: "PayPal: URL scopes and extras",
        status: 200,
        headers: &[JSON],
        body: r#"{"scope":"https://uri.paypal.com/services/invoicing https://uri.paypal.com/services/payments/payment","access_token":"A21AAFEpH4PsADK7qSS7pSRsgzfENtu-Q1ysgEDVDESseMHBYXVJYE8ovjj68elIDy8nF26AwPhfXTIeWAZHSLIsQkSYz9ifg","token_type":"Bearer","app_id":"APP-80W284485P519543T","expires_in":31668,"nonce":"2026-11-22T02:00:00Z"}"#,
        check: |r| {
            let t = ok(r);
            assert_eq!(t.scopes().len(), 2);
            assert_eq!(t.extra()["app_id"], "APP-80W284485P519543T");
        },
    },
    Case {
        name: "Zoom: lower-case bearer with api_url",
        status: 200,
        headers: &[JSON],
        body: r#"{"access_token":"eyJzdiI6.eyJhdWQi.sig","token_type":"bearer","expires_in":3599,"scope":"user:read:admin","api_url":"https://api.zoom.us"}"#,
        check: |r| assert_eq!(ok(r).extra()["api_url"], "https://api.zoom.us"),
    },
    Case {
        name: "Discord: scopes space-delimited",
        status: 200,
        headers: &[JSON],
        body: r#"{"access_token":"6qrZcUqja7812RVdnEKjpzOL4CvHBFG","token_type":"Bearer","expires_in":604800,"scope":"identify connections"}"#,
        check: |r| assert_eq!(ok(r).scopes(), ["identify", "connections"]),
    },
    Case {
        name: "Gateway HTML 502",
        status: 502,
        headers: &[("content-type", "text/html")],
        body: "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body><center><h1>502 Bad Gateway</h1></center></body></html>",
        check: |r| {
            let e = err(r);
            match &e {
                TokenError::Server {
                    excerpt: Some(x),
                    error: None,
                    ..
                } => {
                    assert!(x.as_str().contains("502 Bad Gateway"));
                    assert!(!x.as_str().contains('\r'));
                }
                other => panic!("{other:?}"),
            }
            assert!(e.is_retryable());
        },
    },
    Case {
        name: "HTML login page with 200 (a proxy in the way)",
        status: 200,
        headers: &[("content-type", "text/html; charset=utf-8")],
        body: "<!DOCTYPE html><html><body><form>Sign in</form></body></html>",
        check: |r| {
            let e = err(r);
            assert!(
                matches!(
                    e,
                    TokenError::InvalidResponse {
                        problem: ResponseProblem::Unparseable,
                        excerpt: None,
                        ..
                    }
                ),
                "{e:?}"
            );
            assert!(!e.is_retryable());
        },
    },
    Case {
        name: "Empty 200 body",
        status: 200,
        headers: &[JSON],
        body: "",
        check: |r| {
            assert!(matches!(
                err(r),
                TokenError::InvalidResponse {
                    problem: ResponseProblem::Unparseable,
                    ..
                }
            ))
        },
    },
    Case {
        name: "Truncated JSON",
        status: 200,
        headers: &[JSON],
        body: r#"{"access_token":"abcdefghijklmnopqrstuvwxyz0123456789","token_type":"Bea"#,
        check: |r| {
            let e = err(r);
            assert!(matches!(
                e,
                TokenError::InvalidResponse {
                    problem: ResponseProblem::Unparseable,
                    excerpt: None,
                    ..
                }
            ));
            assert!(!format!("{e} {e:?}").contains("abcdefghijklmnopqrstuvwxyz"));
        },
    },
    Case {
        name: "UTF-8 BOM before JSON",
        status: 200,
        headers: &[JSON],
        body: "\u{feff}{\"access_token\":\"abc\",\"token_type\":\"Bearer\",\"expires_in\":60}",
        check: |r| assert!(ok(r).deviations().contains(&Deviation::ByteOrderMark)),
    },
    Case {
        name: "expires_in as a float",
        status: 200,
        headers: &[JSON],
        body: r#"{"access_token":"abc","token_type":"Bearer","expires_in":3599.9}"#,
        check: |r| {
            let t = ok(r);
            assert_eq!(lifetime(&t), 3599, "rounded down");
            assert!(t.deviations().contains(&Deviation::ExpiresInFloat));
        },
    },
    Case {
        name: "expires_in null is unknown, never 0",
        status: 200,
        headers: &[JSON],
        body: r#"{"access_token":"abc","token_type":"Bearer","expires_in":null}"#,
        check: |r| {
            let t = ok(r);
            assert_eq!(lifetime(&t), 300);
            assert!(t.deviations().contains(&Deviation::ExpiresInNull));
        },
    },
    Case {
        name: "expires_in negative",
        status: 200,
        headers: &[JSON],
        body: r#"{"access_token":"abc","token_type":"Bearer","expires_in":-5}"#,
        check: |r| {
            assert!(matches!(
                err(r),
                TokenError::InvalidResponse {
                    problem: ResponseProblem::InvalidExpiresIn,
                    ..
                }
            ))
        },
    },
    Case {
        name: "expires_in absurdly large is capped",
        status: 200,
        headers: &[JSON],
        body: r#"{"access_token":"abc","token_type":"Bearer","expires_in":1e300}"#,
        check: |r| {
            let t = ok(r);
            assert_eq!(t.lifetime(), Some(client_credentials_core::MAX_LIFETIME));
            assert!(t.deviations().contains(&Deviation::ExpiresInCapped));
        },
    },
    Case {
        name: "scope as a JSON array",
        status: 200,
        headers: &[JSON],
        body: r#"{"access_token":"abc","token_type":"Bearer","expires_in":60,"scope":["a","b"]}"#,
        check: |r| {
            let t = ok(r);
            assert_eq!(t.scopes(), ["a", "b"]);
            assert!(t.deviations().contains(&Deviation::ScopeArray));
        },
    },
    Case {
        name: "token_type missing",
        status: 200,
        headers: &[JSON],
        body: r#"{"access_token":"abc","expires_in":60}"#,
        check: |r| {
            let t = ok(r);
            assert_eq!(t.token_type(), "Bearer");
            assert!(t.deviations().contains(&Deviation::TokenTypeMissing));
        },
    },
    Case {
        name: "JSON served as text/plain",
        status: 200,
        headers: &[("content-type", "text/plain")],
        body: r#"{"access_token":"abc","token_type":"Bearer","expires_in":60}"#,
        check: |r| {
            assert!(
                ok(r)
                    .deviations()
                    .contains(&Deviation::ContentType("text/plain".into()))
            )
        },
    },
    Case {
        name: "form body served as text/plain",
        status: 200,
        headers: &[("content-type", "text/plain")],
        body: "access_token=abc&token_type=Bearer&expires_in=60",
        check: |r| {
            let t = ok(r);
            assert_eq!(lifetime(&t), 60);
            assert!(t.deviations().contains(&Deviation::FormBody));
        },
    },
    Case {
        name: "parameter names in other letter case",
        status: 200,
        headers: &[JSON],
        body: r#"{"Access_Token":"abc","Token_Type":"Bearer","Expires_In":60}"#,
        check: |r| {
            let t = ok(r);
            assert_eq!(t.access_token().expose_secret(), "abc");
            assert!(t.deviations().contains(&Deviation::ParameterCase));
        },
    },
    Case {
        name: "503 with Retry-After as an HTTP date",
        status: 503,
        headers: &[("retry-after", "Tue, 14 Nov 2023 22:14:20 GMT")],
        body: "",
        check: |r| {
            let e = err(r);
            assert!(matches!(e, TokenError::Server { .. }));
            // 1_700_000_060 is Tue, 14 Nov 2023 22:14:20 GMT.
            assert_eq!(e.retry_after(), Some(Duration::from_secs(60)));
        },
    },
    Case {
        name: "DPoP token type refused unless configured",
        status: 200,
        headers: &[JSON],
        body: r#"{"access_token":"abc","token_type":"DPoP","expires_in":60}"#,
        check: |r| {
            assert!(matches!(
                err(r),
                TokenError::InvalidResponse {
                    problem: ResponseProblem::UnsupportedTokenType(_),
                    ..
                }
            ))
        },
    },
    Case {
        name: "201 Created with a token",
        status: 201,
        headers: &[JSON],
        body: r#"{"access_token":"abc","token_type":"Bearer","expires_in":60}"#,
        check: |r| assert!(ok(r).deviations().contains(&Deviation::SuccessStatus(201))),
    },
    Case {
        name: "access_token not a string",
        status: 200,
        headers: &[JSON],
        body: r#"{"access_token":12345,"token_type":"Bearer"}"#,
        check: |r| {
            assert!(matches!(
                err(r),
                TokenError::InvalidResponse {
                    problem: ResponseProblem::MissingAccessToken,
                    ..
                }
            ))
        },
    },
    Case {
        name: "access_token with a newline (header injection)",
        status: 200,
        headers: &[JSON],
        body: r#"{"access_token":"abc\r\nX-Evil: 1","token_type":"Bearer"}"#,
        check: |r| {
            assert!(matches!(
                err(r),
                TokenError::InvalidResponse {
                    problem: ResponseProblem::MissingAccessToken,
                    ..
                }
            ))
        },
    },
    Case {
        name: "Graph-style error envelope",
        status: 401,
        headers: &[JSON],
        body: r#"{"error":{"code":"InvalidAuthenticationToken","message":"Access token is empty."}}"#,
        check: |r| {
            let e = err(r);
            rejected(
                &e,
                401,
                ErrorCode::Unknown("InvalidAuthenticationToken".into()),
            );
            assert_eq!(
                e.oauth_error().unwrap().description.as_deref(),
                Some("Access token is empty.")
            );
            assert_eq!(e.error_dialect(), Some(ErrorDialect::NestedError));
        },
    },
    Case {
        name: "redirect is not followed",
        status: 302,
        headers: &[("location", "https://login.example.com/")],
        body: "",
        check: |r| {
            assert!(matches!(
                err(r),
                TokenError::InvalidResponse {
                    problem: ResponseProblem::UnexpectedStatus,
                    ..
                }
            ))
        },
    },
    Case {
        name: "500 server_error",
        status: 500,
        headers: &[JSON],
        body: r#"{"error":"server_error","error_description":"boom"}"#,
        check: |r| {
            let e = err(r);
            assert!(matches!(e, TokenError::Server { .. }));
            assert_eq!(e.oauth_code(), Some(&ErrorCode::ServerError));
            assert!(e.is_retryable());
        },
    },
    Case {
        name: "400 temporarily_unavailable is retryable",
        status: 400,
        headers: &[JSON],
        body: r#"{"error":"temporarily_unavailable"}"#,
        check: |r| {
            let e = err(r);
            assert!(matches!(e, TokenError::Server { .. }));
            assert!(e.is_retryable());
        },
    },
    Case {
        name: "invalid_target (RFC 8707)",
        status: 400,
        headers: &[JSON],
        body: r#"{"error":"invalid_target","error_description":"resource indicator is missing, or unknown"}"#,
        check: |r| rejected(&err(r), 400, ErrorCode::InvalidTarget),
    },
    Case {
        name: "error description echoing the client secret is scrubbed",
        status: 401,
        headers: &[JSON],
        body: r#"{"error":"invalid_client","error_description":"secret the-client-secret-1234 is wrong"}"#,
        check: |r| {
            let e = err(r);
            let all = format!("{e} {e:?}");
            assert!(!all.contains("the-client-secret-1234"), "{all}");
            assert!(all.contains("[redacted]"));
        },
    },
    Case {
        name: "401 plain text from a proxy",
        status: 401,
        headers: &[("content-type", "text/plain")],
        body: "Unauthorized",
        check: |r| {
            let e = err(r);
            assert!(matches!(
                e,
                TokenError::InvalidResponse {
                    problem: ResponseProblem::NotAnOAuthError,
                    ..
                }
            ));
            assert!(e.to_string().contains("Unauthorized"), "{e}");
        },
    },
    // Vendor error shapes (not RFC 6749 §5.2), from the providers' public documentation.
    Case {
        name: "Okta: errorCode / errorSummary on 401",
        status: 401,
        headers: &[JSON],
        body: r#"{"errorCode":"E0000011","errorSummary":"Invalid token provided","errorLink":"E0000011","errorId":"oaeAbC123","errorCauses":[]}"#,
        check: |r| {
            vendor(
                &err(r),
                Kind::Rejected(401),
                "E0000011",
                ErrorDialect::ErrorCodeSummary,
                "Invalid token provided",
            )
        },
    },
    Case {
        name: "Okta: errorCode in a 200 body without a token",
        status: 200,
        headers: &[JSON],
        body: r#"{"errorCode":"E0000015","errorSummary":"You do not have permission to access the feature you are requesting"}"#,
        check: |r| {
            vendor(
                &err(r),
                Kind::Rejected(200),
                "E0000015",
                ErrorDialect::ErrorCodeSummary,
                "You do not have permission to access the feature you are requesting",
            )
        },
    },
    Case {
        name: "Okta: 500 E0000009",
        status: 500,
        headers: &[JSON],
        body: r#"{"errorCode":"E0000009","errorSummary":"Internal Server Error","errorLink":"E0000009","errorId":"oae1","errorCauses":[]}"#,
        check: |r| {
            vendor(
                &err(r),
                Kind::Server(500),
                "E0000009",
                ErrorDialect::ErrorCodeSummary,
                "Internal Server Error",
            )
        },
    },
    Case {
        name: "Apigee: ErrorCode with Error, the code is an RFC one",
        status: 401,
        headers: &[JSON],
        body: r#"{"ErrorCode":"invalid_client","Error":"ClientId is Invalid"}"#,
        check: |r| {
            vendor(
                &err(r),
                Kind::Rejected(401),
                "invalid_client",
                ErrorDialect::ErrorCodeSummary,
                "ClientId is Invalid",
            )
        },
    },
    Case {
        name: "Google APIs: nested error, numeric code, status string",
        status: 401,
        headers: &[JSON],
        body: r#"{"error":{"code":401,"message":"Request had invalid authentication credentials.","status":"UNAUTHENTICATED"}}"#,
        check: |r| {
            vendor(
                &err(r),
                Kind::Rejected(401),
                "UNAUTHENTICATED",
                ErrorDialect::NestedError,
                "Request had invalid authentication credentials.",
            )
        },
    },
    Case {
        name: "Google APIs: 503 UNAVAILABLE",
        status: 503,
        headers: &[JSON],
        body: r#"{"error":{"code":503,"message":"The service is currently unavailable.","status":"UNAVAILABLE"}}"#,
        check: |r| {
            vendor(
                &err(r),
                Kind::Server(503),
                "UNAVAILABLE",
                ErrorDialect::NestedError,
                "The service is currently unavailable.",
            )
        },
    },
    Case {
        name: "Facebook Graph: OAuthException",
        status: 400,
        headers: &[JSON],
        body: r#"{"error":{"message":"Error validating client secret.","type":"OAuthException","code":1,"fbtrace_id":"AbCdEf"}}"#,
        check: |r| {
            vendor(
                &err(r),
                Kind::Rejected(400),
                "OAuthException",
                ErrorDialect::NestedError,
                "Error validating client secret.",
            )
        },
    },
    Case {
        name: "Stripe: nested error with type",
        status: 401,
        headers: &[JSON],
        body: r#"{"error":{"message":"Invalid API Key provided: sk_test_****1234","type":"invalid_request_error"}}"#,
        check: |r| {
            vendor(
                &err(r),
                Kind::Rejected(401),
                "invalid_request_error",
                ErrorDialect::NestedError,
                "Invalid API Key provided: sk_test_****1234",
            )
        },
    },
    Case {
        name: "Dropbox: error_summary with a .tag union",
        status: 400,
        headers: &[JSON],
        body: r#"{"error_summary":"invalid_client: client secret is wrong","error":{".tag":"invalid_client"}}"#,
        check: |r| {
            vendor(
                &err(r),
                Kind::Rejected(400),
                "invalid_client",
                ErrorDialect::NestedError,
                "invalid_client: client secret is wrong",
            )
        },
    },
    Case {
        name: "Spotify Web API: nested numeric status",
        status: 401,
        headers: &[JSON],
        body: r#"{"error":{"status":401,"message":"Invalid access token"}}"#,
        check: |r| {
            vendor(
                &err(r),
                Kind::Rejected(401),
                "401",
                ErrorDialect::NestedError,
                "Invalid access token",
            )
        },
    },
    Case {
        name: "Azure Resource Manager: 429 nested TooManyRequests with Retry-After",
        status: 429,
        headers: &[JSON, ("retry-after", "17")],
        body: r#"{"error":{"code":"TooManyRequests","message":"The request is being throttled."}}"#,
        check: |r| {
            let e = err(r);
            assert_eq!(e.retry_after(), Some(Duration::from_secs(17)));
            vendor(
                &e,
                Kind::RateLimited,
                "TooManyRequests",
                ErrorDialect::NestedError,
                "The request is being throttled.",
            );
        },
    },
    Case {
        name: "X (Twitter): errors array with a numeric code",
        status: 403,
        headers: &[JSON],
        body: r#"{"errors":[{"code":99,"message":"Unable to verify your credentials","label":"authenticity_token_error"}]}"#,
        check: |r| {
            vendor(
                &err(r),
                Kind::Rejected(403),
                "99",
                ErrorDialect::ErrorsArray,
                "Unable to verify your credentials",
            )
        },
    },
    Case {
        name: "Cloudflare API: success false with errors",
        status: 403,
        headers: &[JSON],
        body: r#"{"success":false,"errors":[{"code":10000,"message":"Authentication error"}],"messages":[],"result":null}"#,
        check: |r| {
            vendor(
                &err(r),
                Kind::Rejected(403),
                "10000",
                ErrorDialect::ErrorsArray,
                "Authentication error",
            )
        },
    },
    Case {
        name: "JSON:API errors with status, title, detail",
        status: 401,
        headers: &[("content-type", "application/vnd.api+json")],
        body: r#"{"errors":[{"status":"401","title":"Unauthorized","detail":"Client authentication failed"}]}"#,
        check: |r| {
            vendor(
                &err(r),
                Kind::Rejected(401),
                "401",
                ErrorDialect::ErrorsArray,
                "Client authentication failed",
            )
        },
    },
    Case {
        name: "GraphQL gateway: errors with a message only, on 502",
        status: 502,
        headers: &[JSON],
        body: r#"{"errors":[{"message":"upstream token service unavailable"}]}"#,
        check: |r| {
            vendor(
                &err(r),
                Kind::Server(502),
                "http_502",
                ErrorDialect::ErrorsArray,
                "upstream token service unavailable",
            )
        },
    },
    Case {
        name: "Salesforce REST: a top-level array",
        status: 401,
        headers: &[JSON],
        body: r#"[{"message":"Session expired or invalid","errorCode":"INVALID_SESSION_ID"}]"#,
        check: |r| {
            vendor(
                &err(r),
                Kind::Rejected(401),
                "INVALID_SESSION_ID",
                ErrorDialect::TopLevelArray,
                "Session expired or invalid",
            )
        },
    },
    Case {
        name: "Box: type, status, code, message",
        status: 401,
        headers: &[JSON],
        body: r#"{"type":"error","status":401,"code":"unauthorized","message":"Unauthorized","request_id":"abc123"}"#,
        check: |r| {
            vendor(
                &err(r),
                Kind::Rejected(401),
                "unauthorized",
                ErrorDialect::StatusMessage,
                "Unauthorized",
            )
        },
    },
    Case {
        name: "{status, message} on 429",
        status: 429,
        headers: &[JSON, ("retry-after", "2")],
        body: r#"{"status":"429","message":"Too many token requests"}"#,
        check: |r| {
            vendor(
                &err(r),
                Kind::RateLimited,
                "429",
                ErrorDialect::StatusMessage,
                "Too many token requests",
            )
        },
    },
    Case {
        name: "PayPal REST: name and message",
        status: 401,
        headers: &[JSON],
        body: r#"{"name":"AUTHENTICATION_FAILURE","message":"Authentication failed due to invalid authentication credentials or a missing Authorization header.","links":[{"href":"https://developer.paypal.com/docs/api/overview/#error","rel":"information_link"}]}"#,
        check: |r| {
            vendor(
                &err(r),
                Kind::Rejected(401),
                "AUTHENTICATION_FAILURE",
                ErrorDialect::NameDescription,
                "Authentication failed due to invalid authentication credentials or a missing Authorization header.",
            )
        },
    },
    Case {
        name: "legacy {name, description}",
        status: 403,
        headers: &[JSON],
        body: r#"{"name":"UnauthorizedClientError","description":"client is not allowed the client_credentials grant"}"#,
        check: |r| {
            vendor(
                &err(r),
                Kind::Rejected(403),
                "UnauthorizedClientError",
                ErrorDialect::NameDescription,
                "client is not allowed the client_credentials grant",
            )
        },
    },
    Case {
        name: "Auth0 legacy: name, code, description, statusCode",
        status: 400,
        headers: &[JSON],
        body: r#"{"name":"ValidationError","code":"invalid_body","description":"Payload validation error","statusCode":400}"#,
        check: |r| {
            vendor(
                &err(r),
                Kind::Rejected(400),
                "invalid_body",
                ErrorDialect::NameDescription,
                "Payload validation error",
            )
        },
    },
    Case {
        name: "AWS API Gateway: message only on 403",
        status: 403,
        headers: &[
            JSON,
            ("x-amzn-errortype", "MissingAuthenticationTokenException"),
        ],
        body: r#"{"message":"Missing Authentication Token"}"#,
        check: |r| {
            vendor(
                &err(r),
                Kind::Rejected(403),
                "http_403",
                ErrorDialect::MessageOnly,
                "Missing Authentication Token",
            )
        },
    },
    Case {
        name: "AWS API Gateway: Message on 429",
        status: 429,
        headers: &[JSON],
        body: r#"{"Message":"Too Many Requests"}"#,
        check: |r| {
            vendor(
                &err(r),
                Kind::RateLimited,
                "http_429",
                ErrorDialect::MessageOnly,
                "Too Many Requests",
            )
        },
    },
    Case {
        name: "Zoom: RFC code, description in reason",
        status: 400,
        headers: &[JSON],
        body: r#"{"reason":"Invalid client_id or client_secret","error":"invalid_client"}"#,
        check: |r| {
            vendor(
                &err(r),
                Kind::Rejected(400),
                "invalid_client",
                ErrorDialect::DescriptionIn(DescriptionMember::Reason),
                "Invalid client_id or client_secret",
            )
        },
    },
    Case {
        name: "Spring Boot default error attributes",
        status: 401,
        headers: &[JSON],
        body: r#"{"timestamp":"2026-11-30T10:00:00.000+00:00","status":401,"error":"Unauthorized","message":"Full authentication is required to access this resource","path":"/oauth/token"}"#,
        check: |r| {
            vendor(
                &err(r),
                Kind::Rejected(401),
                "Unauthorized",
                ErrorDialect::DescriptionIn(DescriptionMember::Message),
                "Full authentication is required to access this resource",
            )
        },
    },
    Case {
        name: "oidc-provider: the content-type message arrives readable",
        status: 400,
        headers: &[JSON],
        body: r#"{"error":"invalid_request","error_description":"only application/x-www-form-urlencoded content-type bodies are supported"}"#,
        check: |r| {
            let e = err(r);
            rejected(&e, 400, ErrorCode::InvalidRequest);
            assert_eq!(
                e.oauth_error().unwrap().description.as_deref(),
                Some("only application/x-www-form-urlencoded content-type bodies are supported")
            );
            assert_eq!(e.error_dialect(), None, "an RFC 6749 body");
        },
    },
    Case {
        name: "404 with an OAuth error body: the endpoint was not found",
        status: 404,
        headers: &[JSON],
        body: r#"{"error":"invalid_request","error_description":"Unknown endpoint"}"#,
        check: |r| not_found(&err(r)),
    },
    Case {
        name: "Keycloak: 404 for a realm that does not exist",
        status: 404,
        headers: &[JSON],
        body: r#"{"error":"Realm does not exist"}"#,
        check: |r| not_found(&err(r)),
    },
    Case {
        name: "404 HTML page",
        status: 404,
        headers: &[("content-type", "text/html")],
        body: "<html><body>Not Found</body></html>",
        check: |r| not_found(&err(r)),
    },
    Case {
        name: "access_token with RFC 6749 A.12 characters outside b64token",
        status: 200,
        headers: &[JSON],
        body: r##"{"access_token":"a b!\"#$%&'()*,:;<>?@[\\]^`{|}","token_type":"Bearer","expires_in":60}"##,
        check: |r| {
            let t = ok(r);
            assert_eq!(
                t.access_token().expose_secret(),
                r##"a b!"#$%&'()*,:;<>?@[\]^`{|}"##
            );
            assert!(t.deviations().contains(&Deviation::AccessTokenSyntax));
            assert_eq!(
                t.authorization_header(),
                r##"Bearer a b!"#$%&'()*,:;<>?@[\]^`{|}"##
            );
        },
    },
    Case {
        name: "access_token in the b64token alphabet has no deviation",
        status: 200,
        headers: &[JSON],
        body: r#"{"access_token":"mF_9.B5f-4.1JqM~+/==","token_type":"Bearer","expires_in":60}"#,
        check: |r| assert!(!ok(r).deviations().contains(&Deviation::AccessTokenSyntax)),
    },
    Case {
        name: "access_token with a trailing space cannot go into a header",
        status: 200,
        headers: &[JSON],
        body: r#"{"access_token":"abc ","token_type":"Bearer","expires_in":60}"#,
        check: |r| {
            assert!(matches!(
                err(r),
                TokenError::InvalidResponse {
                    problem: ResponseProblem::MissingAccessToken,
                    ..
                }
            ))
        },
    },
    Case {
        name: "access_token with a non-ASCII character",
        status: 200,
        headers: &[JSON],
        body: r#"{"access_token":"caf\u00e9","token_type":"Bearer","expires_in":60}"#,
        check: |r| {
            assert!(matches!(
                err(r),
                TokenError::InvalidResponse {
                    problem: ResponseProblem::MissingAccessToken,
                    ..
                }
            ))
        },
    },
];

#[test]
fn provider_table() {
    assert!(CASES.len() >= 30);
    let req = request();
    for case in CASES {
        let result = parse_with(&req, case.status, case.headers, case.body.as_bytes());
        let outcome =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (case.check)(result)));
        assert!(outcome.is_ok(), "case failed: {}", case.name);
    }
}

#[test]
fn rfc6749_4_4_3_example_token_type() {
    // The RFC's own example uses `token_type: example`, which is refused by default...
    let body = br#"{"access_token":"2YotnFZFEjr1zCsicMWpAA","token_type":"example","expires_in":3600,"example_parameter":"example_value"}"#;
    let err = parse_with(&request(), 200, &[JSON], body).unwrap_err();
    assert!(
        matches!(err, TokenError::InvalidResponse { problem: ResponseProblem::UnsupportedTokenType(ref t), .. } if t == "example")
    );
    // ...and accepted when the configuration names it.
    let req = Config::builder()
        .token_url("https://as.example.com/token")
        .client_id("c")
        .client_secret("s")
        .accept_token_type("example")
        .build()
        .unwrap()
        .default_request();
    let token = parse_with(&req, 200, &[JSON], body).unwrap();
    assert_eq!(token.token_type(), "example");
    assert_eq!(
        token.authorization_header(),
        "example 2YotnFZFEjr1zCsicMWpAA"
    );
    assert!(token.authorization_header().is_sensitive());
}

#[test]
fn missing_lifetime_policies() {
    let body = br#"{"access_token":"abc","token_type":"Bearer"}"#;
    let with = |p: MissingLifetime| {
        Config::builder()
            .token_url("https://as.example.com/token")
            .client_id("c")
            .client_secret("s")
            .missing_lifetime(p)
            .build()
            .unwrap()
            .default_request()
    };
    let t = parse_with(
        &with(MissingLifetime::Assume(Duration::from_secs(42))),
        200,
        &[JSON],
        body,
    )
    .unwrap();
    assert_eq!(t.lifetime(), Some(Duration::from_secs(42)));
    let t = parse_with(&with(MissingLifetime::NeverExpires), 200, &[JSON], body).unwrap();
    assert_eq!(t.expires_at(), None);
    assert!(!t.expires_within(now(), Duration::from_secs(u64::MAX / 4)));
    let e = parse_with(&with(MissingLifetime::Reject), 200, &[JSON], body).unwrap_err();
    assert!(matches!(
        e,
        TokenError::InvalidResponse {
            problem: ResponseProblem::MissingExpiresIn,
            ..
        }
    ));
}

#[test]
fn requested_scopes_fill_in_and_overrides_count() {
    let cfg = Config::builder()
        .token_url("https://as.example.com/token")
        .client_id("c")
        .client_secret("s")
        .build()
        .unwrap();
    let req = cfg.request(&TokenParams::new().scopes(["x", "y"])).unwrap();
    let t = parse_with(
        &req,
        200,
        &[JSON],
        br#"{"access_token":"abc","token_type":"Bearer","expires_in":5}"#,
    )
    .unwrap();
    assert_eq!(t.scopes(), ["x", "y"]);
    assert_eq!(t.scope_source(), ScopeSource::Requested);
    assert!(
        t.deviations().is_empty(),
        "an omitted scope is what RFC 6749 §5.1 prescribes"
    );
}

#[test]
fn expiry_and_storage_round_trip() {
    let body = br#"{"access_token":"abc.def","token_type":"bearer","expires_in":120,"scope":"a b","id_token":"eyJ.secret.x"}"#;
    let t = parse_with(&request(), 200, &[JSON], body).unwrap();
    assert_eq!(t.issued_at(), now());
    assert_eq!(t.expires_at(), Some(now() + Duration::from_secs(120)));
    assert!(!t.expires_within(now(), Duration::from_secs(119)));
    assert!(t.expires_within(now(), Duration::from_secs(120)));
    assert!(t.expires_within(now() + Duration::from_secs(200), Duration::ZERO));
    let json = serde_json::to_string(&t.storable()).unwrap();
    let back: Token = serde_json::from_str(&json).unwrap();
    assert_eq!(back, t);
    assert!(
        !format!("{t:?}").contains("eyJ.secret.x"),
        "extra values are not in Debug"
    );
    assert!(serde_json::from_str::<Token>(r#"{"v":2}"#).is_err());
    // RFC 6749 A.12 tokens are stored as they came; what no header can carry is refused.
    let spaced = json.replace("abc.def", "abc def");
    let back: Token = serde_json::from_str(&spaced).unwrap();
    assert_eq!(back.authorization_header(), "Bearer abc def");
    for bad in [" abc", "abc ", "abc\\u0001", "abc\\u007f", "\\u00e9"] {
        let bad = json.replace("abc.def", bad);
        assert!(serde_json::from_str::<Token>(&bad).is_err(), "{bad}");
    }
}

#[test]
fn body_cap() {
    let req = Config::builder()
        .token_url("https://as.example.com/token")
        .client_id("c")
        .client_secret("s")
        .max_body(64)
        .build()
        .unwrap()
        .default_request();
    let body = vec![b' '; 65];
    let e = parse_with(&req, 200, &[JSON], &body).unwrap_err();
    assert!(matches!(e, TokenError::TooLarge { limit: 64, .. }));
    let mut buffer = client_credentials_core::BodyBuffer::new(64);
    assert!(buffer.expect_len(65).is_err());
    assert!(buffer.expect_len(u64::MAX).is_err());
    buffer.expect_len(10).unwrap();
    buffer.push(&[1; 60]).unwrap();
    assert_eq!(buffer.remaining(), 4);
    assert!(buffer.push(&[1; 5]).is_err());
    assert_eq!(buffer.into_bytes().len(), 60);
}

#[test]
fn excerpts_redact_token_like_runs() {
    let body = r#"{"note":"token eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.sig rejected"}"#;
    let e = parse_with(&request(), 400, &[JSON], body.as_bytes()).unwrap_err();
    let TokenError::InvalidResponse {
        excerpt: Some(x), ..
    } = &e
    else {
        panic!("{e:?}")
    };
    assert!(!x.as_str().contains("eyJhbGciOiJSUzI1NiJ9"), "{x}");
    assert!(x.as_str().contains("[redacted]"));
    let long = format!("<html>{}</html>", "x ".repeat(1000));
    let e = parse_with(&request(), 500, &[], long.as_bytes()).unwrap_err();
    let TokenError::Server {
        excerpt: Some(x), ..
    } = &e
    else {
        panic!("{e:?}")
    };
    assert!(x.as_str().chars().count() <= client_credentials_core::Excerpt::MAX_CHARS + 1);
}

#[test]
fn a_short_secret_does_not_change_registered_codes() {
    let req = Config::builder()
        .token_url("https://as.example.com/token")
        .client_id("c")
        .client_secret("s")
        .build()
        .unwrap()
        .default_request();
    let e = parse_with(
        &req,
        400,
        &[JSON],
        br#"{"error":"invalid_request","error_description":"missing"}"#,
    )
    .unwrap_err();
    assert_eq!(e.oauth_code(), Some(&ErrorCode::InvalidRequest));
    let e = parse_with(&req, 400, &[JSON], br#"{"error":"s"}"#).unwrap_err();
    assert!(
        !format!("{e} {e:?}").contains("\"s\""),
        "an unknown code that is the secret is scrubbed: {e:?}"
    );
}

#[test]
fn stored_records_are_capped_like_responses() {
    let t = parse_with(
        &request(),
        200,
        &[JSON],
        br#"{"access_token":"abc","token_type":"Bearer","expires_in":60}"#,
    )
    .unwrap();
    let json = serde_json::to_string(&t.storable()).unwrap();
    let forged = json.replace(
        "\"lifetime_ms\":60000",
        &format!("\"lifetime_ms\":{}", u64::MAX),
    );
    assert_ne!(forged, json);
    let back: Token = serde_json::from_str(&forged).unwrap();
    assert_eq!(back.lifetime(), Some(client_credentials_core::MAX_LIFETIME));
}

#[test]
fn retry_after_http_date_is_rounded_up() {
    let req = request();
    let date = httpdate::fmt_http_date(now() + Duration::from_secs(4));
    let mut headers = HeaderMap::new();
    headers.insert("retry-after", HeaderValue::from_str(&date).unwrap());
    let status = StatusCode::TOO_MANY_REQUESTS;
    // 3.7 s ahead: a script that waits 3 s would retry early.
    let e = req
        .parse_response(now() + Duration::from_millis(300), status, &headers, b"")
        .unwrap_err();
    assert_eq!(e.retry_after(), Some(Duration::from_secs(4)));
    assert!(e.to_string().contains("retry after 4s"), "{e}");
    // Whole seconds stay as they are; a date in the past is no wait.
    let e = req
        .parse_response(now(), status, &headers, b"")
        .unwrap_err();
    assert_eq!(e.retry_after(), Some(Duration::from_secs(4)));
    let later = now() + Duration::from_secs(60);
    let e = req
        .parse_response(later, status, &headers, b"")
        .unwrap_err();
    assert_eq!(e.retry_after(), Some(Duration::ZERO));
}

#[test]
fn a_secret_echoed_in_any_case_or_encoding_never_shows() {
    use base64::Engine as _;
    let secret = "the-client-secret-1234";
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("client:{secret}"));
    let scrubber = client_credentials_core::Scrubber::new(secret).with_client_id("client");
    let echoes = [
        "THE-CLIENT-SECRET-1234".to_owned(),
        "The-Client-Secret-1234".to_owned(),
        "the%2Dclient%2dsecret-1234".to_owned(),
        r"the\u002dclient\u002Dsecret-1234".to_owned(),
        basic.clone(),
        basic.trim_end_matches('=').to_owned(),
    ];
    for echo in &echoes {
        let bodies = [
            // In an RFC description, a vendor message, a vendor code and a member name
            // (the excerpt of a body that is no error shape).
            (
                401,
                format!(r#"{{"error":"invalid_client","error_description":"bad secret {echo}"}}"#),
            ),
            (
                401,
                format!(r#"{{"errorCode":"{echo}","errorSummary":"secret {echo} is wrong"}}"#),
            ),
            (400, format!(r#"{{"{echo}":"unexpected member"}}"#)),
            (500, format!("<html>Basic {echo}</html>")),
        ];
        for (status, body) in &bodies {
            let mut map = HeaderMap::new();
            map.insert(
                "www-authenticate",
                HeaderValue::from_str(&format!("Basic realm=\"{echo}\"")).unwrap(),
            );
            let e = request()
                .parse_response(
                    now(),
                    StatusCode::from_u16(*status).unwrap(),
                    &map,
                    body.as_bytes(),
                )
                .unwrap_err();
            let shown = format!("{e} {e:?}");
            assert!(!scrubber.found_in(&shown), "{echo} shown: {shown}");
            assert!(!shown.to_lowercase().contains(secret), "{shown}");
            assert!(shown.contains("[redacted]"), "{shown}");
        }
    }
}

#[test]
fn redaction_keeps_words_and_media_types_but_not_tokens() {
    let body = "only application/x-www-form-urlencoded content-type bodies are supported \
                (InvalidAuthenticationToken, INSUFFICIENT_ACCESS_OR_READONLY); \
                got eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxMjM0In0 and 2YotnFZFEjr1zCsicMWpAAxyz";
    let e = parse_with(
        &request(),
        400,
        &[("content-type", "text/plain")],
        body.as_bytes(),
    )
    .unwrap_err();
    let TokenError::InvalidResponse {
        excerpt: Some(x), ..
    } = &e
    else {
        panic!("{e:?}")
    };
    for kept in [
        "application/x-www-form-urlencoded",
        "InvalidAuthenticationToken",
        "INSUFFICIENT_ACCESS_OR_READONLY",
    ] {
        assert!(x.as_str().contains(kept), "{kept} lost: {x}");
    }
    for hidden in ["eyJhbGciOiJSUzI1NiJ9", "2YotnFZFEjr1zCsicMWpAAxyz"] {
        assert!(!x.as_str().contains(hidden), "{hidden} shown: {x}");
    }
    // Random letters without digits are still a token.
    let e = parse_with(
        &request(),
        400,
        &[("content-type", "text/plain")],
        b"token AbCdEfGhIjKlMnOpQrStUvWxYz here",
    )
    .unwrap_err();
    assert!(!e.to_string().contains("AbCdEfGh"), "{e}");
}

#[test]
fn an_error_found_after_parsing_reports_the_real_content_type() {
    use client_credentials_core::session::{Action, Policy, Session, WallClock};
    #[allow(
        clippy::disallowed_methods,
        reason = "virtual time needs one real origin"
    )]
    let start = std::time::Instant::now();
    let mut session = Session::new(
        request(),
        Policy::default(),
        WallClock::new(start, now()),
        7,
    );
    let Action::Send { id, .. } = session.poll(start) else {
        panic!("the first poll sends")
    };
    let mut headers = HeaderMap::new();
    headers.insert(
        "content-type",
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    let body = br#"{"access_token":"abc","token_type":"Bearer","expires_in":0}"#;
    let outcome = session.handle_response(start, id, StatusCode::OK, &headers, body);
    assert!(matches!(
        outcome,
        client_credentials_core::Outcome::Failed(_)
    ));
    let error = session.last_error().cloned().expect("a failure");
    match &error {
        TokenError::InvalidResponse {
            problem: ResponseProblem::ExpiredOnArrival,
            content_type,
            ..
        } => assert_eq!(
            content_type.as_deref(),
            Some("application/json; charset=utf-8")
        ),
        other => panic!("{other:?}"),
    }
    assert!(
        error.to_string().contains("content type application/json"),
        "{error}"
    );
}
