//! Feeds the error classifier every vendor error shape it knows (Okta, nested `error`
//! objects, `errors` arrays, top-level arrays, `{status, message}`, `{name, description}`,
//! `message` alone, RFC codes with the description elsewhere, RFC 6749 §5.2 itself) with
//! arbitrary codes and messages under arbitrary statuses, and raw bodies besides. The client
//! secret is spliced into codes, messages and headers in the forms servers echo it in (any
//! case, percent- and form-encoded, JSON `\u` escapes, the Base64 of the Basic credentials).
//!
//! It must never panic, and checks what users rely on: a 404 is "endpoint not found", a 429
//! rate limiting, a 5xx a server error, any other status a refusal that is not retryable
//! (unless the code is a retryable RFC code); each shape is recognised and named; an RFC code
//! stays typed; a message becomes the description; and the secret shows in no form.
#![no_main]

use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use client_credentials_core::{
    Config, DescriptionMember, ErrorCode, ErrorDialect, ResponseProblem, Scrubber, TokenError,
    TokenRequest,
};
use http::{HeaderMap, HeaderValue, StatusCode};
use libfuzzer_sys::fuzz_target;

const SECRET: &str = "Vendor-Secret/9";
const CLIENT_ID: &str = "fuzz-client";

fn request() -> &'static TokenRequest {
    static REQUEST: OnceLock<TokenRequest> = OnceLock::new();
    REQUEST.get_or_init(|| {
        Config::builder()
            .token_url("https://as.example.com/token")
            .client_id(CLIENT_ID)
            .client_secret(SECRET)
            .build()
            .expect("valid config")
            .default_request()
    })
}

fn scrubber() -> &'static Scrubber {
    static SCRUBBER: OnceLock<Scrubber> = OnceLock::new();
    SCRUBBER.get_or_init(|| Scrubber::new(SECRET).with_client_id(CLIENT_ID))
}

struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((b, rest)) => {
                self.0 = rest;
                *b
            }
            None => 0,
        }
    }

    fn bytes(&mut self, n: usize) -> &[u8] {
        let (head, rest) = self.0.split_at(n.min(self.0.len()));
        self.0 = rest;
        head
    }

    /// The secret in one of the forms servers echo it in; `true` when the form is JSON `\u`
    /// escapes (to go into the JSON text as they are).
    fn secret_form(&mut self) -> (String, bool) {
        let form: String = form_urlencoded::byte_serialize(SECRET.as_bytes()).collect();
        let text = match self.byte() % 7 {
            0 => SECRET.to_owned(),
            1 => SECRET.to_ascii_uppercase(),
            2 => SECRET.to_ascii_lowercase(),
            3 => form.to_ascii_lowercase(),
            4 => SECRET.bytes().map(|b| format!("%{b:02X}")).collect(),
            5 => {
                let escaped = SECRET.chars().map(|c| format!("\\u{:04x}", c as u32)).collect();
                return (escaped, true);
            }
            _ => base64::engine::general_purpose::STANDARD.encode(format!("{CLIENT_ID}:{form}")),
        };
        (text, false)
    }

    /// A JSON string's content: arbitrary text, maybe with the secret spliced in; never
    /// blank.
    fn text(&mut self) -> (String, bool) {
        let len = usize::from(self.byte() % 48);
        let mut raw = String::from_utf8_lossy(self.bytes(len)).into_owned();
        if raw.trim().is_empty() {
            raw.insert(0, 'c');
        }
        let splice = self.byte();
        let (form, json) = if splice % 3 == 0 {
            self.secret_form()
        } else {
            (String::new(), false)
        };
        let mut at = usize::from(splice / 3).min(raw.len());
        while !raw.is_char_boundary(at) {
            at -= 1;
        }
        if !json {
            raw.insert_str(at, &form);
        }
        let escaped = serde_json::to_string(&raw).expect("a string serialises");
        let mut text = escaped[1..escaped.len() - 1].to_owned();
        if json {
            // Escapes go in whole, at either end of the escaped text.
            if at % 2 == 0 {
                text.insert_str(0, &form);
            } else {
                text.push_str(&form);
            }
        }
        (text, !form.is_empty())
    }
}

const STATUSES: &[u16] = &[200, 201, 400, 401, 403, 404, 409, 418, 429, 500, 502, 503, 504, 302];

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let pick = input.byte();
    let status = if pick >= 240 {
        100 + u16::from(input.byte()) * 2 % 500
    } else {
        STATUSES[usize::from(pick) % STATUSES.len()]
    };
    let Ok(status) = StatusCode::from_u16(status) else { return };
    let shape = input.byte() % 10;
    let (code, _) = input.text();
    let (message, _) = input.text();
    let (body, dialect): (String, Option<Option<ErrorDialect>>) = match shape {
        0 => (
            format!(r#"{{"errorCode":"{code}","errorSummary":"{message}","errorCauses":[]}}"#),
            Some(Some(ErrorDialect::ErrorCodeSummary)),
        ),
        1 => (
            format!(r#"{{"error":{{"code":"{code}","message":"{message}","details":[]}}}}"#),
            Some(Some(ErrorDialect::NestedError)),
        ),
        2 => (
            format!(r#"{{"errors":[{{"code":"{code}","message":"{message}"}},{{"code":1}}]}}"#),
            Some(Some(ErrorDialect::ErrorsArray)),
        ),
        3 => (
            format!(r#"[{{"errorCode":"{code}","message":"{message}"}}]"#),
            Some(Some(ErrorDialect::TopLevelArray)),
        ),
        4 => (
            format!(r#"{{"status":"{code}","message":"{message}"}}"#),
            Some(Some(ErrorDialect::StatusMessage)),
        ),
        5 => (
            format!(r#"{{"name":"{code}","description":"{message}"}}"#),
            Some(Some(ErrorDialect::NameDescription)),
        ),
        6 => (
            format!(r#"{{"message":"{message}"}}"#),
            Some(Some(ErrorDialect::MessageOnly)),
        ),
        7 => (
            format!(r#"{{"error":"{code}","reason":"{message}"}}"#),
            Some(Some(ErrorDialect::DescriptionIn(DescriptionMember::Reason))),
        ),
        8 => (
            format!(r#"{{"error":"{code}","error_description":"{message}"}}"#),
            Some(None),
        ),
        _ => (String::from_utf8_lossy(input.0).into_owned(), None),
    };
    let mut headers = HeaderMap::new();
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    let flags = input.byte();
    if flags & 1 == 1 {
        let (challenge, _) = input.text();
        if let Ok(v) = HeaderValue::from_str(&format!("Basic realm=\"{challenge}\"")) {
            headers.insert("www-authenticate", v);
        }
    }
    if flags & 2 == 2 {
        headers.insert("retry-after", HeaderValue::from(u32::from(flags)));
    }
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let mut error = request().parse_error_response(now, status, &headers, body.as_bytes());

    for text in [error.to_string(), format!("{error:?}")] {
        assert!(!scrubber().found_in(&text), "the secret leaked: {text}");
    }
    match &error {
        TokenError::InvalidResponse { problem, .. } if status == StatusCode::NOT_FOUND => {
            assert_eq!(*problem, ResponseProblem::EndpointNotFound);
            assert!(error.oauth_error().is_none());
        }
        _ if status == StatusCode::NOT_FOUND => panic!("a 404 is not found: {error:?}"),
        TokenError::RateLimited { .. } => assert_eq!(status, StatusCode::TOO_MANY_REQUESTS),
        _ if status == StatusCode::TOO_MANY_REQUESTS => panic!("a 429 is rate limiting: {error:?}"),
        TokenError::Server { .. } => assert!(
            status.is_server_error() || error.oauth_code().is_some_and(ErrorCode::is_retryable)
        ),
        _ if status.is_server_error() => panic!("a 5xx is a server error: {error:?}"),
        TokenError::Rejected { .. } => {
            assert!(status.is_success() || status.is_client_error());
            assert!(!error.is_retryable());
        }
        TokenError::InvalidResponse { problem, .. } => {
            assert!(
                *problem == ResponseProblem::NotAnOAuthError
                    || (*problem == ResponseProblem::UnexpectedStatus
                        && (status.is_informational() || status.is_redirection())),
                "{error:?}"
            );
        }
        other => panic!("unexpected classification: {other:?}"),
    }
    let classified = !(status == StatusCode::NOT_FOUND
        || status.is_informational()
        || status.is_redirection());
    if let (Some(dialect), true) = (dialect, classified) {
        let oauth = error
            .oauth_error()
            .unwrap_or_else(|| panic!("shape {shape} not recognised: {body} -> {error:?}"));
        assert_eq!(oauth.dialect, dialect, "{body}");
        assert!(oauth.description.is_some(), "the message was lost: {body} -> {error:?}");
        if shape != 6 {
            // An RFC code stays typed (no secret can be in a registered code).
            let decoded: String = serde_json::from_str(&format!("\"{code}\"")).expect("valid");
            let expected = ErrorCode::parse(&decoded);
            if !matches!(expected, ErrorCode::Unknown(_)) {
                assert_eq!(oauth.code, expected, "{body}");
            }
        }
    }
    let _ = (error.retry_after(), error.status(), error.error_dialect());
    error.redact("some-token-value");
    let _ = request().parse_response(now, status, &headers, body.as_bytes());
});
