//! Every public type and every error variant, formatted with `{:?}`, `{:#?}` and `{}` where it
//! has `Display`: no client secret and no access token may appear.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly

use std::time::{Duration, SystemTime};

use client_credentials_core::{
    AccessToken, AuthMethod, BodyBuffer, BodyFormat, ClientSecret, Config, TokenError, TokenParams,
    TransportError, TransportErrorKind,
};
use http::{HeaderMap, HeaderValue, StatusCode};

const SECRET: &str = "Sup3r-S3cret-Value_0123456789";
const TOKEN: &str = "AccessTokenValue-abcdef0123456789XYZ";

fn assert_clean(what: &str, text: &str) {
    let encoded: String = form_urlencoded::byte_serialize(SECRET.as_bytes()).collect();
    for needle in [SECRET, TOKEN, encoded.as_str()] {
        assert!(!text.contains(needle), "{what} leaks {needle:?}: {text}");
    }
}

fn debug<T: std::fmt::Debug>(what: &str, value: &T) {
    assert_clean(what, &format!("{value:?}"));
    assert_clean(what, &format!("{value:#?}"));
}

fn both<T: std::fmt::Debug + std::fmt::Display>(what: &str, value: &T) {
    debug(what, value);
    assert_clean(what, &format!("{value}"));
}

fn configs() -> Vec<Config> {
    let methods = [
        AuthMethod::ClientSecretBasic,
        AuthMethod::ClientSecretBasicRaw,
        AuthMethod::client_secret_post(),
    ];
    let mut out = Vec::new();
    for m in methods {
        for f in [BodyFormat::Form, BodyFormat::Json] {
            out.push(
                Config::builder()
                    .token_url("https://as.example.com/token")
                    .client_id("client")
                    .client_secret(SECRET)
                    .auth_method(m.clone())
                    .body_format(f)
                    .build()
                    .unwrap(),
            );
        }
    }
    out
}

fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (k, v) in pairs {
        map.insert(*k, HeaderValue::from_str(v).unwrap());
    }
    map
}

#[test]
fn secret_types() {
    debug("ClientSecret", &ClientSecret::new(SECRET));
    debug("AccessToken", &AccessToken::new(TOKEN));
    let builder = Config::builder()
        .token_url("https://as.example.com/token")
        .client_id("client")
        .client_secret(SECRET);
    debug("ConfigBuilder", &builder);
}

#[test]
fn configs_requests_and_tokens() {
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    for config in configs() {
        debug("Config", &config);
        let request = config.request(&TokenParams::new().scopes(["a"])).unwrap();
        debug("TokenRequest", &request);
        debug("CacheKey", request.cache_key());
        debug("HttpRequest", &request.to_http());
        let body = format!(
            r#"{{"access_token":"{TOKEN}","token_type":"Bearer","expires_in":60,"refresh_token":"{TOKEN}","id_token":"{TOKEN}"}}"#
        );
        let token = request
            .parse_response(now, StatusCode::OK, &headers(&[]), body.as_bytes())
            .unwrap();
        debug("Token", &token);
        debug("StorableToken", &token.storable());
        debug("authorization header", &token.authorization_header());
        debug("BodyBuffer", &BodyBuffer::new(10));
    }
}

/// Each error variant, produced from responses that carry the secret or a token where a
/// careless implementation would copy it into the error.
#[test]
fn every_error_variant() {
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let request = configs()[0].default_request();
    let echo = format!(
        r#"{{"error":"invalid_client","error_description":"bad secret {SECRET} for token {TOKEN}","error_uri":"https://as.example.com/errors?secret={SECRET}&token={TOKEN}"}}"#
    );
    let cases: Vec<(u16, HeaderMap, String)> = vec![
        // Rejected, with the secret echoed in the description and in WWW-Authenticate.
        (
            401,
            headers(&[("www-authenticate", &format!("Basic realm=\"{SECRET}\""))]),
            echo.clone(),
        ),
        // RateLimited.
        (429, headers(&[("retry-after", "5")]), echo.clone()),
        // Server, with an excerpt.
        (
            503,
            headers(&[("content-type", "text/html")]),
            format!("<html>token {TOKEN} secret {SECRET}</html>"),
        ),
        // InvalidResponse: a success body that failed to parse holds the token.
        (
            200,
            headers(&[("content-type", "application/json")]),
            format!(r#"{{"access_token":"{TOKEN}","token_type":"#),
        ),
        // InvalidResponse: unsupported token type next to a valid token.
        (
            200,
            headers(&[]),
            format!(r#"{{"access_token":"{TOKEN}","token_type":"mac"}}"#),
        ),
        // InvalidResponse: not an OAuth error, body echoes both.
        (
            400,
            headers(&[("content-type", "text/plain")]),
            format!("denied {SECRET} {TOKEN}"),
        ),
        // An unknown code that is itself the secret.
        (400, headers(&[]), format!(r#"{{"error":"{SECRET}"}}"#)),
        // Redirect.
        (
            302,
            headers(&[("location", "https://evil.example/")]),
            String::new(),
        ),
    ];
    let mut seen = std::collections::HashSet::new();
    for (status, h, body) in cases {
        let err = request
            .parse_response(
                now,
                StatusCode::from_u16(status).unwrap(),
                &h,
                body.as_bytes(),
            )
            .unwrap_err();
        seen.insert(std::mem::discriminant(&err));
        both(&format!("TokenError from {status}"), &err);
        if let Some(e) = err.oauth_error() {
            both("OAuthError", e);
        }
    }
    let too_large =
        request.parse_response(now, StatusCode::OK, &headers(&[]), &vec![b'x'; 2 << 20]);
    let too_large = too_large.unwrap_err();
    seen.insert(std::mem::discriminant(&too_large));
    both("TooLarge", &too_large);
    let transport: TokenError =
        TransportError::new(TransportErrorKind::Timeout, "read timed out").into();
    seen.insert(std::mem::discriminant(&transport));
    both("Transport", &transport);
    let rejected_by_resource = rejected_by_resource(&request);
    seen.insert(std::mem::discriminant(&rejected_by_resource));
    both("RejectedByResource", &rejected_by_resource);
    assert_eq!(seen.len(), 7, "every TokenError variant was formatted");
}

/// `RejectedByResource`, as a session hands it out: after tokens that all hold `TOKEN` were
/// each rejected by a resource server at once.
fn rejected_by_resource(request: &client_credentials_core::TokenRequest) -> TokenError {
    use client_credentials_core::session::{Action, Policy, Session, WallClock};
    #[allow(
        clippy::disallowed_methods,
        reason = "the session needs one real instant"
    )]
    let now = std::time::Instant::now();
    let clock = WallClock::new(
        now,
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
    );
    let mut session = Session::new(request.clone(), Policy::default(), clock, 1);
    for n in 0.. {
        match session.poll(now) {
            Action::Send { id, .. } => {
                let body = format!(
                    r#"{{"access_token":"{TOKEN}-{n}","token_type":"Bearer","expires_in":60}}"#
                );
                let _ = session.handle_response(
                    now,
                    id,
                    StatusCode::OK,
                    &headers(&[]),
                    body.as_bytes(),
                );
            }
            Action::Ready(token) => {
                assert!(session.invalidate(now, token.access_token()));
            }
            Action::Failed(error) => {
                assert!(
                    matches!(error, TokenError::RejectedByResource { .. }),
                    "{error:?}"
                );
                debug("Counters", &session.counters());
                if let Some(error) = session.last_error() {
                    debug("last_error", error);
                }
                debug("Session", &session);
                return error;
            }
            Action::Wait(_) => unreachable!("nothing else is in flight"),
        }
        assert!(n < 20, "the session never backed off");
    }
    unreachable!()
}

/// No 8-character piece of `secret` appears in `text`.
fn assert_no_piece(what: &str, text: &str, secret: &str) {
    for start in 0..=secret.len().saturating_sub(8) {
        let piece = &secret[start..start + 8];
        assert!(
            !text.contains(piece),
            "{what} leaks {piece:?} of the secret: {text}"
        );
    }
}

/// A secret (or a token) that straddles a length limit must not survive as a piece: texts
/// are scrubbed whole before they are shortened.
#[test]
fn secrets_straddling_the_length_limits() {
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let secret = "Zq9x7Lw2SeCrEtPaRt19";
    let request = Config::builder()
        .token_url("https://as.example.com/token")
        .client_id("client")
        .client_secret(secret)
        .build()
        .unwrap()
        .default_request();
    for offset in [
        190usize, 195, 200, 250, 253, 256, 500, 505, 510, 512, 790, 795, 800,
    ] {
        let pad = "a ".repeat(offset / 2);
        let description = format!("{pad}{secret} tail");
        let body =
            serde_json::json!({ "error": "invalid_client", "error_description": description });
        let challenge = format!("Basic realm=\"{pad}{secret}\"");
        let e = request
            .parse_response(
                now,
                StatusCode::UNAUTHORIZED,
                &headers(&[("www-authenticate", &challenge)]),
                body.to_string().as_bytes(),
            )
            .unwrap_err();
        assert_no_piece(
            &format!("description at {offset}"),
            &format!("{e} {e:?}"),
            secret,
        );
        let html = format!("<html>{pad}{secret}</html>");
        let e = request
            .parse_response(now, StatusCode::BAD_GATEWAY, &headers(&[]), html.as_bytes())
            .unwrap_err();
        assert_no_piece(
            &format!("excerpt at {offset}"),
            &format!("{e} {e:?}"),
            secret,
        );
    }
}

/// `TokenError::redact` works on texts already shortened: a value cut at the limit goes too.
#[test]
fn redact_catches_a_value_cut_at_the_limit() {
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let request = configs()[0].default_request();
    let token = "tok_2YotnFZFEjr1zCsicMWp";
    for offset in [500usize, 505, 508, 510] {
        let description = format!("{}{token} was revoked", "a ".repeat(offset / 2));
        let body =
            serde_json::json!({ "error": "invalid_request", "error_description": description });
        let mut e = request
            .parse_response(
                now,
                StatusCode::BAD_REQUEST,
                &headers(&[]),
                body.to_string().as_bytes(),
            )
            .unwrap_err();
        e.redact(token);
        let text = format!("{e} {e:?}");
        for start in 0..=token.len() - 8 {
            assert!(
                !text.contains(&token[start..start + 8]),
                "offset {offset}: {text}"
            );
        }
    }
}

#[test]
fn urls_with_token_segments_are_redacted() {
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let request = configs()[0].default_request();
    let body = serde_json::json!({
        "error": "invalid_request",
        "error_description": format!("see https://as.example.com/tokens/{TOKEN}/status"),
        "error_uri": "https://as.example.com/docs/errors",
    });
    let e = request
        .parse_response(
            now,
            StatusCode::BAD_REQUEST,
            &headers(&[]),
            body.to_string().as_bytes(),
        )
        .unwrap_err();
    both("URL with a token segment", &e);
    assert!(
        e.to_string().contains("https://as.example.com/docs/errors"),
        "{e}"
    );
}

#[test]
fn vendor_error_shapes_never_show_the_secret_in_any_form() {
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let scrubber = client_credentials_core::Scrubber::new(SECRET).with_client_id("client");
    debug("Scrubber", &scrubber);
    let upper = SECRET.to_uppercase();
    let escaped: String = SECRET
        .chars()
        .map(|c| format!("\\u{:04x}", c as u32))
        .collect();
    let percent: String = SECRET.bytes().map(|b| format!("%{b:02x}")).collect();
    for config in configs() {
        let request = config.default_request();
        for (status, body) in [
            (
                401,
                format!(r#"{{"errorCode":"{upper}","errorSummary":"secret {escaped}"}}"#),
            ),
            (
                503,
                format!(r#"{{"error":{{"code":"{percent}","message":"{upper} {TOKEN}"}}}}"#),
            ),
            (
                429,
                format!(r#"{{"errors":[{{"code":"{escaped}","message":"{percent}"}}]}}"#),
            ),
            (
                401,
                format!(r#"[{{"errorCode":"E1","message":"{upper}"}}]"#),
            ),
            (
                403,
                format!(r#"{{"name":"{upper}","description":"{escaped}"}}"#),
            ),
            (400, format!(r#"{{"message":"{percent} {TOKEN}"}}"#)),
            (
                404,
                format!(r#"{{"error":"{upper}","error_description":"{escaped}"}}"#),
            ),
        ] {
            let err = request
                .parse_response(
                    now,
                    StatusCode::from_u16(status).unwrap(),
                    &headers(&[("content-type", "application/json")]),
                    body.as_bytes(),
                )
                .unwrap_err();
            both(&format!("vendor TokenError from {status}"), &err);
            for text in [format!("{err}"), format!("{err:?}")] {
                assert!(!scrubber.found_in(&text), "{status} {body}: {text}");
            }
        }
    }
}
