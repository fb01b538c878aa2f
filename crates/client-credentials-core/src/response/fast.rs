//! The fast path of the token response parser: one typed pass over the body that borrows
//! the known members from it, for the answer almost every server sends (200, a JSON object
//! with lower-case members, a string `access_token` and `token_type`, an integer
//! `expires_in`, an optional string `scope`).
//!
//! It either produces exactly the token that the full parser would, or declines, and the
//! full parser (`Context`) reads the body as it always has. It declines on anything that
//! the full parser notes as a deviation, turns into an error, or treats specially: another
//! status, another content type, a byte-order mark, an `error` member, a member name with an
//! upper-case letter, a known member repeated or of another type, `refresh_in`, a missing
//! lifetime or token type, the absolute `expires_on` / `expires_at`, an access token that an
//! HTTP header cannot carry, a token type the configuration does not accept. The tests
//! check the two paths against each other on every input they both accept.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http::header::CONTENT_TYPE;
use http::{HeaderMap, StatusCode};
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde_json::{Map, Value};

use super::{MAX_LIFETIME, granted_scopes};
use crate::Config;
use crate::secret::AccessToken;
use crate::token::{Deviation, ScopeSource, Token, access_token_syntax, is_header_safe};

/// The token of a plain RFC 6749 §5.1 answer, or `None` to leave it to the full parser.
pub(super) fn parse(
    config: &Config,
    requested: &Arc<[String]>,
    now: SystemTime,
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
) -> Option<Token> {
    if status != StatusCode::OK || !is_plain_json(headers) {
        return None;
    }
    let known = serde_json::from_slice::<Known<'_>>(body).ok()?;
    let mut deviations = Vec::new();
    let access_token = known.access_token?;
    let (access, b64) = access_token_syntax(&access_token);
    if !access {
        return None;
    }
    if !b64 {
        deviations.push(Deviation::AccessTokenSyntax);
    }
    let token_type = known.token_type?;
    if !is_header_safe(&token_type) || !config.accepts_token_type(&token_type) {
        return None;
    }
    let token_type = if token_type.eq_ignore_ascii_case("bearer") {
        if token_type != "Bearer" {
            deviations.push(Deviation::TokenTypeCase);
        }
        Cow::Borrowed("Bearer")
    } else {
        Cow::Owned(token_type.into_owned())
    };
    let mut lifetime = Duration::from_secs(known.expires_in?.min(MAX_LIFETIME.as_secs() + 1));
    if lifetime > MAX_LIFETIME {
        deviations.push(Deviation::ExpiresInCapped);
        lifetime = MAX_LIFETIME;
    }
    let (scopes, scope_source) = match known.scope {
        Some(s) if !s.trim().is_empty() => (
            granted_scopes(&s, config.scope_separator(), requested),
            ScopeSource::Granted,
        ),
        Some(_) => (Arc::from([]), ScopeSource::Granted),
        // RFC 6749 §5.1: omitted when identical to the requested scope: shared, not copied.
        None => (Arc::clone(requested), ScopeSource::Requested),
    };
    Some(Token {
        access_token: AccessToken::new(access_token.into_owned()),
        token_type,
        issued_at: now,
        lifetime: Some(lifetime),
        scopes,
        scope_source,
        refresh_in: None,
        extra: known.extra,
        deviations,
        header: crate::token::HeaderCell::default(),
    })
}

/// `Content-Type: application/json`, parameters allowed, in any letter case, and short
/// enough that the full parser reads it whole.
fn is_plain_json(headers: &HeaderMap) -> bool {
    headers.get(CONTENT_TYPE).is_some_and(|v| {
        if v.len() > 100 {
            return false;
        }
        let media = v
            .as_bytes()
            .split(|&b| b == b';')
            .next()
            .unwrap_or_default();
        media.trim_ascii().eq_ignore_ascii_case(b"application/json")
    })
}

/// The members of the body: the known ones borrowed where the body has no escapes, the
/// rest kept for [`Token::extra`].
struct Known<'a> {
    access_token: Option<Cow<'a, str>>,
    token_type: Option<Cow<'a, str>>,
    expires_in: Option<u64>,
    scope: Option<Cow<'a, str>>,
    extra: Map<String, Value>,
}

/// Why the fast path declines; serde reports it as an error and the full parser takes over.
const DECLINE: &str = "not the plain answer";

impl<'de> serde::Deserialize<'de> for Known<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(KnownVisitor)
    }
}

struct KnownVisitor;

impl<'de> Visitor<'de> for KnownVisitor {
    type Value = Known<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a token response object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Known<'de>, A::Error> {
        let mut known = Known {
            access_token: None,
            token_type: None,
            expires_in: None,
            scope: None,
            extra: Map::new(),
        };
        while let Some(Str(name)) = map.next_key::<Str<'de>>()? {
            match &*name {
                "access_token" => once(&mut known.access_token, map.next_value::<Str<'de>>()?.0)?,
                "token_type" => once(&mut known.token_type, map.next_value::<Str<'de>>()?.0)?,
                "scope" => once(&mut known.scope, map.next_value::<Str<'de>>()?.0)?,
                "expires_in" => once(&mut known.expires_in, map.next_value::<u64>()?)?,
                // The full parser's cases: an error in a success body, a refresh hint, the
                // absolute expiry of some servers.
                "error" | "refresh_in" | "expires_on" | "expires_at" => {
                    return Err(de::Error::custom(DECLINE));
                }
                other if other.bytes().any(|b| b.is_ascii_uppercase()) => {
                    return Err(de::Error::custom(DECLINE));
                }
                _ => {
                    let value = map.next_value::<Value>()?;
                    if known.extra.insert(name.into_owned(), value).is_some() {
                        return Err(de::Error::custom(DECLINE));
                    }
                }
            }
        }
        Ok(known)
    }
}

/// Sets a known member, declining a repeated one (the full parser keeps the last).
fn once<T, E: de::Error>(slot: &mut Option<T>, value: T) -> Result<(), E> {
    if slot.replace(value).is_some() {
        return Err(E::custom(DECLINE));
    }
    Ok(())
}

/// A JSON string, borrowed from the body when it has no escapes; anything else declines.
struct Str<'a>(Cow<'a, str>);

impl<'de> serde::Deserialize<'de> for Str<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct StrVisitor;
        impl<'de> Visitor<'de> for StrVisitor {
            type Value = Str<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Str<'de>, E> {
                Ok(Str(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Str<'de>, E> {
                Ok(Str(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Str<'de>, E> {
                Ok(Str(Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(StrVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::response::Context;

    fn config() -> Config {
        Config::builder()
            .token_url("https://as.example.com/token")
            .client_id("c")
            .client_secret("s")
            .scopes(["a", "b"])
            .build()
            .unwrap()
    }

    fn headers(content_type: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Ok(v) = http::HeaderValue::from_str(content_type) {
            h.insert(CONTENT_TYPE, v);
        }
        h
    }

    /// Both paths on one input; when the fast one answers, the full one must agree.
    fn check(config: &Config, status: StatusCode, headers: &HeaderMap, body: &[u8]) -> bool {
        let requested: Arc<[String]> = Arc::from(["a".to_owned(), "b".to_owned()]);
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let Some(fast) = parse(config, &requested, now, status, headers, body) else {
            return false;
        };
        let full = Context::new(config, &requested, now, status, headers, body)
            .success()
            .unwrap_or_else(|e| {
                panic!("fast path accepted what the full one refuses ({e}): {body:?}")
            });
        let shown = String::from_utf8_lossy(body);
        assert_eq!(
            fast.access_token.expose_secret(),
            full.access_token.expose_secret(),
            "{shown}"
        );
        assert_eq!(fast.token_type, full.token_type, "{shown}");
        assert_eq!(fast.issued_at, full.issued_at, "{shown}");
        assert_eq!(fast.lifetime, full.lifetime, "{shown}");
        assert_eq!(fast.scopes, full.scopes, "{shown}");
        assert_eq!(fast.scope_source, full.scope_source, "{shown}");
        assert_eq!(fast.refresh_in, full.refresh_in, "{shown}");
        assert_eq!(fast.extra, full.extra, "{shown}");
        assert_eq!(fast.deviations, full.deviations, "{shown}");
        true
    }

    #[test]
    fn the_plain_answer_takes_the_fast_path_and_matches_the_full_parser() {
        let config = config();
        let json = headers("application/json; charset=utf-8");
        let ok = StatusCode::OK;
        for body in [
            r#"{"access_token":"abc","token_type":"Bearer","expires_in":3600}"#,
            r#"{"access_token":"abc","token_type":"bearer","expires_in":3600,"scope":"x y x"}"#,
            r#"{"access_token":"a b","token_type":"Bearer","expires_in":0,"scope":"  "}"#,
            r#"{"access_token":"a\u0062c","token_type":"Bearer","expires_in":99999999999999}"#,
            r#" {"token_type":"Bearer","expires_in":1,"access_token":"x","id":{"n":[1,2]}} "#,
            r#"{"access_token":"x","token_type":"Bearer","expires_in":18446744073709551615}"#,
        ] {
            assert!(
                check(&config, ok, &json, body.as_bytes()),
                "declined: {body}"
            );
        }
    }

    #[test]
    fn everything_the_full_parser_treats_specially_is_declined() {
        let config = config();
        let json = headers("application/json");
        let plain = r#"{"access_token":"abc","token_type":"Bearer","expires_in":3600}"#;
        let declined = |status: StatusCode, headers: &HeaderMap, body: &str| {
            let requested: Arc<[String]> = Arc::from([]);
            parse(
                &config,
                &requested,
                SystemTime::UNIX_EPOCH,
                status,
                headers,
                body.as_bytes(),
            )
            .is_none()
        };
        assert!(declined(StatusCode::CREATED, &json, plain));
        assert!(declined(StatusCode::OK, &headers("text/plain"), plain));
        assert!(declined(StatusCode::OK, &HeaderMap::new(), plain));
        assert!(declined(StatusCode::OK, &json, &format!("\u{FEFF}{plain}")));
        for body in [
            r#"{"access_token":"abc","token_type":"Bearer","expires_in":3600,"error":null}"#,
            r#"{"access_token":"abc","token_type":"Bearer","expires_in":3600,"refresh_in":60}"#,
            r#"{"access_token":"abc","token_type":"Bearer","expires_on":1700003600}"#,
            r#"{"Access_Token":"abc","token_type":"Bearer","expires_in":3600}"#,
            r#"{"access_token":"abc","access_token":"d","token_type":"Bearer","expires_in":1}"#,
            r#"{"access_token":"abc","token_type":"Bearer","expires_in":1,"x":1,"x":2}"#,
            r#"{"access_token":"abc","token_type":"Bearer","expires_in":"3600"}"#,
            r#"{"access_token":"abc","token_type":"Bearer","expires_in":3600.5}"#,
            r#"{"access_token":"abc","token_type":"Bearer","expires_in":-1}"#,
            r#"{"access_token":"abc","token_type":"Bearer"}"#,
            r#"{"access_token":"abc","expires_in":3600}"#,
            r#"{"access_token":" abc","token_type":"Bearer","expires_in":3600}"#,
            r#"{"access_token":"abc","token_type":"MAC","expires_in":3600}"#,
            r#"{"access_token":"abc","token_type":"Bearer","expires_in":3600,"scope":["a"]}"#,
            r#"{"access_token":"abc","token_type":"Bearer","expires_in":3600,"scope":null}"#,
            r#"{"access_token":123,"token_type":"Bearer","expires_in":3600}"#,
            r#"["access_token"]"#,
            r#"{"access_token":"abc","token_type":"Bearer","expires_in":3600} x"#,
        ] {
            assert!(declined(StatusCode::OK, &json, body), "accepted: {body}");
        }
    }

    /// Bodies made of members drawn at random (known and unknown names, in either case,
    /// repeated, with values of every JSON type and every number syntax), in random order:
    /// wherever the fast path answers, it answers as the full parser does, and it answers
    /// for the plain ones.
    #[test]
    fn the_fast_path_agrees_with_the_full_parser_on_generated_answers() {
        const NAMES: &[&str] = &[
            "access_token",
            "access_token",
            "token_type",
            "token_type",
            "expires_in",
            "expires_in",
            "scope",
            "id_token",
            "x",
            "Token_Type",
            "error",
            "refresh_in",
            "expires_on",
            "ext_expires_in",
            "\\u0061ccess_token",
        ];
        const VALUES: &[&str] = &[
            "\"abc\"",
            "\"eyJh.eyJz.c2ln\"",
            "\"Bearer\"",
            "\"bearer\"",
            "\"DPoP\"",
            "\"a b\"",
            "\" a\"",
            "\"a\\u0062\"",
            "\"\\t\"",
            "\"\"",
            "\"x y x\"",
            "\"read,write\"",
            "3600",
            "0",
            "-0",
            "1e3",
            "3600.0",
            "-5",
            "99999999999999999999",
            "315360001",
            "null",
            "true",
            "[]",
            "[\"a\"]",
            "{\"n\":{\"m\":[1,{\"k\":null}]}}",
            "\"\u{e9}\"",
        ];
        let config = config();
        let json = headers("application/json");
        let mut state = 0x2545_F491_4F6C_DD1D_u64;
        let mut next = |n: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            usize::try_from(state % n as u64).unwrap()
        };
        let mut fast = 0;
        for round in 0..20_000 {
            let mut members = Vec::new();
            if round % 2 == 0 {
                // Half start from a plain answer, so that the fast path is reached.
                members.push("\"access_token\":\"abc\"".to_owned());
                members.push("\"token_type\":\"Bearer\"".to_owned());
                members.push("\"expires_in\":60".to_owned());
            }
            for _ in 0..next(4) {
                let (name, value) = (NAMES[next(NAMES.len())], VALUES[next(VALUES.len())]);
                members.push(format!("\"{name}\": {value}"));
            }
            for i in (1..members.len()).rev() {
                members.swap(i, next(i + 1));
            }
            let body = format!("{{{}}}", members.join(" ,"));
            fast += usize::from(check(&config, StatusCode::OK, &json, body.as_bytes()));
        }
        assert!(
            fast > 2_000,
            "only {fast} generated answers took the fast path"
        );
    }

    /// Every body of the fuzz corpus, and each with the plain members spliced in front, as a
    /// JSON 200: wherever the fast path answers, it answers as the full parser does.
    #[test]
    fn the_fast_path_agrees_with_the_full_parser_on_the_fuzz_corpus() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fuzz/corpus/response_parser");
        let Ok(entries) = std::fs::read_dir(&dir) else {
            panic!("no corpus at {}", dir.display());
        };
        let config = config();
        let json = headers("application/json");
        let (mut inputs, mut fast) = (0, 0);
        for entry in entries.flatten() {
            let data = std::fs::read(entry.path()).unwrap();
            let body = data.get(4..).unwrap_or_default();
            let spliced = [
                br#"{"access_token":"t0k","token_type":"Bearer","expires_in":60,"#.as_slice(),
                body.strip_prefix(b"{").unwrap_or(body),
            ]
            .concat();
            for body in [&data[..], body, &spliced] {
                inputs += 1;
                fast += usize::from(check(&config, StatusCode::OK, &json, body));
            }
        }
        assert!(inputs > 1000, "{inputs} inputs");
        assert!(fast > 0, "the corpus never reached the fast path");
    }
}
