//! What the server received: one recorded HTTP request.

use std::time::Instant;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

/// One request as the server received it, recorded before the handler ran (so a request whose
/// reply stalls or fails is still counted and visible).
///
/// Its `Debug` prints everything, secrets included: this is a test kit, and tests need to see
/// what was sent.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Request {
    /// Arrival order on this server, from 0.
    pub index: usize,
    /// When the request was fully read.
    pub received_at: Instant,
    /// The method, as sent (`POST`).
    pub method: String,
    /// The request target, as sent (`/token?x=1`).
    pub target: String,
    /// The path: the target without its query.
    pub path: String,
    /// The headers in the order sent, names in lower case.
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked.
    pub body: Vec<u8>,
}

impl Request {
    /// The first value of a header (name compared case-insensitively).
    #[must_use]
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as text (lossy UTF-8).
    #[must_use]
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Whether the body is JSON, by its `Content-Type`.
    #[must_use]
    pub fn is_json(&self) -> bool {
        self.header("content-type")
            .is_some_and(|ct| ct.to_ascii_lowercase().contains("json"))
    }

    /// The body parsed as `application/x-www-form-urlencoded` pairs, in order.
    #[must_use]
    pub fn form(&self) -> Vec<(String, String)> {
        form_urlencoded::parse(&self.body)
            .map(|(n, v)| (n.into_owned(), v.into_owned()))
            .collect()
    }

    /// The body parsed as JSON, if it is JSON.
    #[must_use]
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }

    /// Every value of a body parameter, whatever the body format: form pairs, or a JSON
    /// member (a string, or an array of strings). Empty when absent.
    #[must_use]
    pub fn params(&self, name: &str) -> Vec<String> {
        if self.is_json() {
            match self.json().as_ref().and_then(|j| j.get(name)) {
                Some(serde_json::Value::String(s)) => vec![s.clone()],
                Some(serde_json::Value::Array(items)) => items
                    .iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect(),
                Some(other) => vec![other.to_string()],
                None => Vec::new(),
            }
        } else {
            self.form()
                .into_iter()
                .filter(|(n, _)| n == name)
                .map(|(_, v)| v)
                .collect()
        }
    }

    /// The first value of a body parameter, whatever the body format (see
    /// [`Request::params`]).
    #[must_use]
    pub fn param(&self, name: &str) -> Option<String> {
        self.params(name).into_iter().next()
    }

    /// The `Authorization: Basic` credentials, base64-decoded and split at the first `:`,
    /// without any further decoding.
    #[must_use]
    pub fn basic_auth_raw(&self) -> Option<(String, String)> {
        let value = self.header("authorization")?;
        let (scheme, encoded) = value.split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("basic") {
            return None;
        }
        let decoded = BASE64.decode(encoded.trim()).ok()?;
        let decoded = String::from_utf8(decoded).ok()?;
        let (id, secret) = decoded.split_once(':')?;
        Some((id.to_owned(), secret.to_owned()))
    }

    /// The `Authorization: Basic` credentials, decoded as RFC 6749 §2.3.1 requires (base64,
    /// then `application/x-www-form-urlencoded` for each half).
    #[must_use]
    pub fn basic_auth(&self) -> Option<(String, String)> {
        let (id, secret) = self.basic_auth_raw()?;
        Some((form_decode(&id), form_decode(&secret)))
    }

    /// Whether `needle` appears anywhere in the request: the target, a header value, the
    /// body, the decoded Basic credentials, or the decoded form body. Use it to assert that a
    /// secret never reached a server.
    #[must_use]
    pub fn contains(&self, needle: &str) -> bool {
        let in_basic = self
            .basic_auth_raw()
            .is_some_and(|(i, s)| i.contains(needle) || s.contains(needle))
            || self
                .basic_auth()
                .is_some_and(|(i, s)| i.contains(needle) || s.contains(needle));
        self.target.contains(needle)
            || self.headers.iter().any(|(_, v)| v.contains(needle))
            || self.body_text().contains(needle)
            || self.form().iter().any(|(_, v)| v.contains(needle))
            || in_basic
    }
}

/// `application/x-www-form-urlencoded` decoding of one value: `+` is a space, `%XX` a byte.
fn form_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'+', _) => out.push(b' '),
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 2;
            }
            (b, _) => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(headers: &[(&str, &str)], body: &str) -> Request {
        Request {
            index: 0,
            received_at: Instant::now(),
            method: "POST".into(),
            target: "/token".into(),
            path: "/token".into(),
            headers: headers
                .iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                .collect(),
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn basic_credentials_decode_per_rfc_6749() {
        // The golden vector: `aaa/;&` and `bbb/;&`.
        let r = request(
            &[(
                "authorization",
                "Basic YWFhJTJGJTNCJTI2OmJiYiUyRiUzQiUyNg==",
            )],
            "",
        );
        assert_eq!(
            r.basic_auth(),
            Some(("aaa/;&".to_owned(), "bbb/;&".to_owned()))
        );
        assert_eq!(
            r.basic_auth_raw(),
            Some(("aaa%2F%3B%26".to_owned(), "bbb%2F%3B%26".to_owned()))
        );
        assert!(r.contains("bbb/;&"));
    }

    #[test]
    fn params_in_either_format() {
        let form = request(
            &[("content-type", "application/x-www-form-urlencoded")],
            "grant_type=client_credentials&resource=a&resource=b",
        );
        assert_eq!(
            form.param("grant_type").as_deref(),
            Some("client_credentials")
        );
        assert_eq!(form.params("resource"), ["a", "b"]);
        let json = request(
            &[("content-type", "application/json")],
            r#"{"grant_type":"client_credentials","resource":["a","b"]}"#,
        );
        assert_eq!(
            json.param("grant_type").as_deref(),
            Some("client_credentials")
        );
        assert_eq!(json.params("resource"), ["a", "b"]);
        assert_eq!(json.param("missing"), None);
    }
}
