//! Finding a secret in text that a server sent back, however the server wrote it.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use zeroize::Zeroizing;

/// What replaces a secret.
pub(crate) const REDACTED: &str = "[redacted]";

/// Replaces a secret (the client secret, or a token the caller names) with `[redacted]` in
/// text from a server, in every form a server is known to echo it in:
///
/// - as sent, in any ASCII letter case (servers and the CLI lower-case member names);
/// - percent-encoded or form-encoded, by any encoder (`%2F` or `%2f`, `+` or `%20` for a space,
///   characters escaped or not), and JSON-escaped (`\"`, `\/`, `\u0041`…), also mixed;
/// - with the client id, as the Base64 of a `Basic` credential (`id:secret`, raw and with the
///   RFC 6749 §2.3.1 form-encoding, standard and URL-safe alphabets, padded or not).
///
/// `Debug` does not show the secret; the copies it keeps are zeroized on drop.
///
/// ```
/// use client_credentials::Scrubber;
/// let s = Scrubber::new("a+b/C d").with_client_id("app");
/// assert_eq!(s.scrub("got A+B/c d"), "got [redacted]");
/// assert_eq!(s.scrub(r#"{"a%2Bb%2fc+D":1} "a+b\/c\u0020d""#), r#"{"[redacted]":1} "[redacted]""#);
/// assert_eq!(s.scrub("Basic YXBwOmElMkJiJTJGQytk"), "Basic [redacted]");
/// assert_eq!(s.scrub("nothing to hide"), "nothing to hide");
/// ```
#[derive(Clone)]
pub struct Scrubber {
    secret: Zeroizing<Vec<char>>,
    /// Base64 forms, matched as they are (without padding).
    exact: Vec<Zeroizing<String>>,
}

impl fmt::Debug for Scrubber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Scrubber([redacted])")
    }
}

impl Scrubber {
    /// Scrubs `secret`. An empty secret scrubs nothing.
    #[must_use]
    pub fn new(secret: &str) -> Self {
        Self {
            secret: Zeroizing::new(secret.chars().collect()),
            exact: Vec::new(),
        }
    }

    /// Also scrubs the Base64 of the `Basic` credentials of `client_id` with this secret.
    #[must_use]
    pub fn with_client_id(mut self, client_id: &str) -> Self {
        if self.secret.is_empty() {
            return self;
        }
        let secret: Zeroizing<String> = Zeroizing::new(self.secret.iter().collect());
        let form = |s: &str| -> String { form_urlencoded::byte_serialize(s.as_bytes()).collect() };
        let pairs = [
            Zeroizing::new(format!("{client_id}:{}", secret.as_str())),
            Zeroizing::new(format!("{}:{}", form(client_id), form(&secret))),
        ];
        for pair in &pairs {
            for engine in [&STANDARD, &URL_SAFE] {
                let mut encoded = Zeroizing::new(engine.encode(pair.as_bytes()));
                while encoded.ends_with('=') {
                    encoded.pop();
                }
                if !self.exact.iter().any(|e| **e == *encoded) {
                    self.exact.push(encoded);
                }
            }
        }
        self
    }

    /// Whether the secret (in any of its forms) occurs in `text`.
    #[must_use]
    pub fn found_in(&self, text: &str) -> bool {
        let bytes = text.as_bytes();
        (0..bytes.len()).any(|i| self.match_at(bytes, i).is_some())
    }

    /// `text` with every occurrence of the secret replaced by `[redacted]`.
    #[must_use]
    pub fn scrub(&self, text: &str) -> String {
        if self.secret.is_empty() {
            return text.to_owned();
        }
        let bytes = text.as_bytes();
        let mut out = String::with_capacity(text.len());
        let mut copied = 0;
        let mut i = 0;
        while i < bytes.len() {
            // Matches start and end on character boundaries: the secret is whole characters
            // and every encoding is ASCII.
            match self.match_at(bytes, i) {
                Some(end) if text.is_char_boundary(i) && text.is_char_boundary(end) => {
                    out.push_str(&text[copied..i]);
                    out.push_str(REDACTED);
                    copied = end;
                    i = end;
                }
                _ => i += 1,
            }
        }
        out.push_str(&text[copied..]);
        out
    }

    /// The end of an occurrence of the secret that starts at `i`, if one does.
    fn match_at(&self, text: &[u8], i: usize) -> Option<usize> {
        if self.secret.is_empty() {
            return None;
        }
        for exact in &self.exact {
            if text[i..].starts_with(exact.as_bytes()) {
                let mut end = i + exact.len();
                while text.get(end) == Some(&b'=') {
                    end += 1;
                }
                return Some(end);
            }
        }
        let mut at = i;
        for &c in self.secret.iter() {
            at = char_at(text, at, c)?;
        }
        Some(at)
    }
}

/// Where `c` ends if it is written at `text[at..]` in one of the accepted forms.
fn char_at(text: &[u8], at: usize, c: char) -> Option<usize> {
    let rest = text.get(at..)?;
    let first = *rest.first()?;
    let mut utf8 = [0_u8; 4];
    let raw = c.encode_utf8(&mut utf8).as_bytes();
    // As is, in any ASCII case.
    if rest.len() >= raw.len() && rest[..raw.len()].eq_ignore_ascii_case(raw) {
        return Some(at + raw.len());
    }
    // `+` for a space (form encoding).
    if c == ' ' && first == b'+' {
        return Some(at + 1);
    }
    // Percent-encoded, byte by byte (each byte raw or %XX).
    if first == b'%' {
        let mut p = at;
        for &b in raw {
            match text.get(p..p + 3) {
                Some([b'%', h, l])
                    if hex_pair(*h, *l).is_some_and(|x| x.eq_ignore_ascii_case(&b)) =>
                {
                    p += 3;
                }
                _ => return None,
            }
        }
        return Some(p);
    }
    // JSON escapes.
    if first == b'\\' {
        let second = *rest.get(1)?;
        let short = match second {
            b'"' => Some('"'),
            b'\\' => Some('\\'),
            b'/' => Some('/'),
            b'b' => Some('\u{8}'),
            b'f' => Some('\u{c}'),
            b'n' => Some('\n'),
            b'r' => Some('\r'),
            b't' => Some('\t'),
            _ => None,
        };
        if short.is_some_and(|s| s.eq_ignore_ascii_case(&c)) {
            return Some(at + 2);
        }
        if second == b'u' {
            let hex = std::str::from_utf8(rest.get(2..6)?).ok()?;
            let unit = u32::from_str_radix(hex, 16).ok()?;
            let escaped = char::from_u32(unit)?;
            if escaped.eq_ignore_ascii_case(&c) {
                return Some(at + 6);
            }
        }
    }
    None
}

fn hex_pair(h: u8, l: u8) -> Option<u8> {
    let digit = |d: u8| (d as char).to_digit(16).and_then(|v| u8::try_from(v).ok());
    Some(digit(h)? * 16 + digit(l)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_known_form_is_scrubbed() {
        let s = Scrubber::new("Se\"cr/et é").with_client_id("id");
        for text in [
            "Se\"cr/et é",
            "SE\"CR/ET é",
            "se%22cr%2Fet+%C3%A9",
            "se%22cr%2fet%20%c3%a9",
            r#"Se\"cr\/et \u00e9"#,
            r#"se\u0022CR/et\u0020é"#,
        ] {
            assert_eq!(s.scrub(&format!("x {text} y")), "x [redacted] y", "{text}");
            assert!(s.found_in(text));
        }
        let basic = STANDARD.encode("id:Se%22cr%2Fet+%C3%A9");
        assert_eq!(s.scrub(&format!("Basic {basic}")), "Basic [redacted]");
        let raw = STANDARD.encode("id:Se\"cr/et é");
        assert_eq!(s.scrub(&format!("Basic {raw}")), "Basic [redacted]");
    }

    #[test]
    fn other_text_is_left_alone() {
        let s = Scrubber::new("secret").with_client_id("id");
        for text in ["", "secre", "s e c r e t", "sécret", "%7", "\\u00", "é%"] {
            assert_eq!(s.scrub(text), text);
            assert!(!s.found_in(text));
        }
        assert_eq!(Scrubber::new("").scrub("anything"), "anything");
        assert_eq!(format!("{s:?}"), "Scrubber([redacted])");
    }
}
