//! What `token` prints: the JSON shapes, and the scrubbing of the client secret from anything
//! printed besides the access token itself.

use std::time::SystemTime;

use client_credentials_core::{
    ClientSecret, Introspection, Scrubber, Token, TokenError, TransportErrorKind,
};
use serde_json::{Map, Value, json};

use crate::exit::Failure;
use crate::time::{rfc3339, unix_seconds};

/// The shortest secret that [`Redactor`] scrubs.
const MIN_REDACTED: usize = 4;

/// Replaces the client secret with `[redacted]` in text that came from the server or from an
/// error: in any letter case (member names are lower-cased on the way), percent-, form- or
/// JSON-encoded, and as the Base64 of the Basic credentials ([`Scrubber`]). The core already
/// scrubs what it parses; this is the last line, in case a server echoes the secret somewhere
/// the core does not look (an extra member of a token response, a transport error).
#[derive(Default)]
pub(crate) struct Redactor {
    secret: Option<Scrubber>,
}

impl Redactor {
    /// Scrubs `secret` from now on. Secrets shorter than [`MIN_REDACTED`] characters are
    /// not scrubbed: replacing every `e` or `id` in the output would garble it and hide
    /// nothing that guessing would not find.
    /// `client_id` names the Basic credentials whose Base64 is scrubbed too.
    pub(crate) fn set_secret(&mut self, secret: Option<ClientSecret>, client_id: Option<&str>) {
        self.secret = secret
            .filter(|s| s.expose_secret().chars().count() >= MIN_REDACTED)
            .map(|s| {
                let scrubber = Scrubber::new(s.expose_secret());
                match client_id {
                    Some(id) => scrubber.with_client_id(id),
                    None => scrubber,
                }
            });
    }

    /// `text` without the secret.
    pub(crate) fn text(&self, text: &str) -> String {
        match &self.secret {
            Some(scrubber) => scrubber.scrub(text),
            None => text.to_owned(),
        }
    }

    /// Scrubs every string in a JSON value, and the keys of its objects when `keys` is set
    /// (for objects that came from the server).
    pub(crate) fn value(&self, value: &mut Value, keys: bool) {
        if self.secret.is_none() {
            return;
        }
        match value {
            Value::String(s) => *s = self.text(s),
            Value::Array(items) => items.iter_mut().for_each(|v| self.value(v, keys)),
            Value::Object(map) => {
                let old = std::mem::take(map);
                for (k, mut v) in old {
                    self.value(&mut v, keys);
                    map.insert(if keys { self.text(&k) } else { k }, v);
                }
            }
            _ => {}
        }
    }
}

/// The `--json` success object.
pub(crate) fn token_json(token: &Token, now: SystemTime, from_cache: bool, r: &Redactor) -> Value {
    let expires_at = token.expires_at();
    let expires_in = expires_at.map(|at| at.duration_since(now).map_or(0, |d| d.as_secs()));
    let scope = (!token.scopes().is_empty()).then(|| token.scopes().join(" "));
    let mut extra = Value::Object(token.extra().clone());
    r.value(&mut extra, true);
    let mut deviations = serde_json::to_value(token.deviations()).unwrap_or(Value::Null);
    r.value(&mut deviations, true);
    let scope_source = serde_json::to_value(token.scope_source()).unwrap_or(Value::Null);
    json!({
        "access_token": token.access_token().expose_secret(),
        "token_type": token.token_type(),
        "expires_in": expires_in,
        "expires_at": expires_at.map(rfc3339),
        "expires_at_unix": expires_at.map(unix_seconds),
        "issued_at": rfc3339(token.issued_at()),
        "scope": scope,
        "scopes": token.scopes(),
        "scope_source": scope_source,
        "extra": extra,
        "deviations": deviations,
        "from_cache": from_cache,
    })
}

/// The `--json` error object: `{"error": {...}}`.
pub(crate) fn error_json(failure: &Failure, r: Option<&Redactor>) -> Value {
    let mut e = Map::new();
    e.insert("kind".into(), failure.kind().into());
    e.insert("message".into(), failure.message().into());
    e.insert("exit_code".into(), (failure.exit() as u8).into());
    let token_error = match failure {
        Failure::Token(t, _) => Some(t),
        _ => None,
    };
    e.insert(
        "retryable".into(),
        token_error.is_some_and(TokenError::is_retryable).into(),
    );
    e.insert(
        "http_status".into(),
        token_error
            .and_then(TokenError::status)
            .map(|s| s.as_u16())
            .into(),
    );
    let oauth = token_error.and_then(TokenError::oauth_error);
    e.insert(
        "oauth_error".into(),
        oauth.map(|o| o.code.as_str().to_owned()).into(),
    );
    e.insert(
        "oauth_error_description".into(),
        oauth.and_then(|o| o.description.clone()).into(),
    );
    e.insert(
        "oauth_error_uri".into(),
        oauth.and_then(|o| o.uri.clone()).into(),
    );
    // The provider's dialect, when its error body was not RFC 6749 §5.2.
    e.insert(
        "oauth_error_dialect".into(),
        oauth.and_then(|o| o.dialect).map(|d| d.as_str()).into(),
    );
    e.insert(
        "retry_after".into(),
        token_error
            .and_then(TokenError::retry_after)
            .map(|d| d.as_secs())
            .into(),
    );
    match token_error {
        Some(TokenError::Transport(t)) => {
            let kind = match t.kind() {
                TransportErrorKind::Connect => "connect",
                TransportErrorKind::Timeout => "timeout",
                TransportErrorKind::Tls => "tls",
                TransportErrorKind::Io => "io",
                _ => "other",
            };
            e.insert("transport".into(), kind.into());
        }
        Some(TokenError::InvalidResponse {
            problem,
            content_type,
            ..
        }) => {
            e.insert("problem".into(), problem.to_string().into());
            e.insert("content_type".into(), content_type.clone().into());
        }
        Some(TokenError::Rejected {
            www_authenticate: Some(w),
            ..
        }) => {
            e.insert("www_authenticate".into(), w.clone().into());
        }
        Some(TokenError::TooLarge { limit, .. }) => {
            e.insert("limit".into(), (*limit).into());
        }
        _ => {}
    }
    let mut object = json!({ "error": e });
    if let Some(r) = r {
        r.value(&mut object, false);
    }
    object
}

/// The `--json` object of `introspect`: RFC 7662 member names, times as Unix seconds.
pub(crate) fn introspection_json(info: &Introspection, r: &Redactor) -> Value {
    let unix = |t: Option<SystemTime>| t.map(unix_seconds);
    let mut extra = Value::Object(info.extra.clone());
    r.value(&mut extra, true);
    let mut object = json!({
        "active": info.active,
        "scope": (!info.scopes.is_empty()).then(|| info.scopes.join(" ")),
        "client_id": info.client_id,
        "username": info.username,
        "token_type": info.token_type,
        "exp": unix(info.expires_at),
        "iat": unix(info.issued_at),
        "nbf": unix(info.not_before),
        "sub": info.subject,
        "aud": info.audience,
        "iss": info.issuer,
        "jti": info.jwt_id,
    });
    r.value(&mut object, false);
    object["extra"] = extra;
    object
}

/// Serialises for stdout: indented for a person at a terminal, one line for a program.
pub(crate) fn render(value: &Value, pretty: bool) -> String {
    let rendered = if pretty {
        serde_json::to_string_pretty(value)
    } else {
        serde_json::to_string(value)
    };
    // Serialising a `Value` cannot fail (its keys are strings).
    rendered.unwrap_or_else(|_| "{}".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_covers_plain_and_encoded_forms() {
        let mut r = Redactor::default();
        assert_eq!(r.text("a s3 cret b"), "a s3 cret b");
        r.set_secret(Some(ClientSecret::new("s3 cret")), Some("id"));
        assert_eq!(r.text("a s3 cret b"), "a [redacted] b");
        assert_eq!(r.text("a s3+cret b"), "a [redacted] b");
        let mut v = json!({"x": ["s3 cret"], "s3 cret": 1, "n": 2});
        let mut ours = v.clone();
        r.value(&mut ours, false);
        assert_eq!(ours, json!({"x": ["[redacted]"], "s3 cret": 1, "n": 2}));
        r.value(&mut v, true);
        assert_eq!(v, json!({"x": ["[redacted]"], "[redacted]": 1, "n": 2}));
        assert_eq!(
            r.text("a S3%20CRET b"),
            "a [redacted] b",
            "any case, any encoding"
        );
        // "id:s3 cret", form-encoded, in Base64.
        assert_eq!(r.text("Basic aWQ6czMrY3JldA=="), "Basic [redacted]");
        let mut keys = json!({"S3+Cret": 1});
        r.value(&mut keys, true);
        assert_eq!(keys, json!({"[redacted]": 1}));
        r.set_secret(Some(ClientSecret::new("xit")), None);
        assert_eq!(r.text("exit_code"), "exit_code", "too short to scrub");
    }
}
