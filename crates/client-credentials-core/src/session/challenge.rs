//! Reading a resource server's `WWW-Authenticate` challenge (RFC 6750 §3, RFC 9110 §11.6.1).

use http::HeaderMap;
use http::header::WWW_AUTHENTICATE;

/// The `error` parameter of the first `Bearer` or `DPoP` challenge in `headers`, if any.
/// Tolerant: any case of the scheme and parameter names, quoted or bare values, several
/// challenges in one header or over several headers. Bounded: a value longer than 64 bytes
/// is not an RFC 6750 error code and is ignored.
pub(crate) fn error_code(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(error_in)
}

/// Whether `headers` (an answer's headers, or its trailers) carry the gRPC status
/// `UNAUTHENTICATED` (`grpc-status: 16`): gRPC's 401, which arrives with HTTP status 200.
pub(crate) fn grpc_unauthenticated(headers: &HeaderMap) -> bool {
    headers
        .get("grpc-status")
        .is_some_and(|v| v.as_bytes().trim_ascii() == b"16")
}

fn error_in(header: &str) -> Option<String> {
    let mut in_token_challenge = false;
    for part in split_outside_quotes(header) {
        let part = part.trim();
        // A new challenge starts with a scheme, optionally followed by its first parameter.
        let (head, rest) = match part.split_once(char::is_whitespace) {
            Some((h, r)) if !h.contains('=') => (Some(h), r.trim()),
            _ if !part.contains('=') && !part.is_empty() => (Some(part), ""),
            _ => (None, part),
        };
        if let Some(scheme) = head {
            in_token_challenge =
                scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("dpop");
        }
        if !in_token_challenge {
            continue;
        }
        if let Some((name, value)) = rest.split_once('=')
            && name.trim().eq_ignore_ascii_case("error")
        {
            let value = value.trim().trim_matches('"');
            if value.len() <= 64 {
                return Some(value.to_owned());
            }
        }
    }
    None
}

/// Splits on commas that are not inside a quoted string.
fn split_outside_quotes(s: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ',' if !quoted => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(values: &[&str]) -> Option<String> {
        let mut headers = HeaderMap::new();
        for v in values {
            headers.append(WWW_AUTHENTICATE, v.parse().unwrap());
        }
        error_code(&headers)
    }

    #[test]
    fn reads_rfc_6750_challenges() {
        assert_eq!(
            code(&[
                r#"Bearer realm="example", error="invalid_token", error_description="The access token expired""#
            ]),
            Some("invalid_token".into())
        );
        assert_eq!(
            code(&[r#"Bearer error="insufficient_scope", scope="a b""#]),
            Some("insufficient_scope".into())
        );
        assert_eq!(
            code(&["bearer error=invalid_token"]),
            Some("invalid_token".into())
        );
        assert_eq!(
            code(&[r#"DPoP error="use_dpop_nonce""#]),
            Some("use_dpop_nonce".into())
        );
    }

    #[test]
    fn skips_other_schemes_and_quoted_commas() {
        assert_eq!(
            code(&[r#"Basic realm="a, error=x", Bearer error="invalid_token""#]),
            Some("invalid_token".into())
        );
        assert_eq!(code(&[r#"Basic error="invalid_token""#]), None);
        assert_eq!(code(&["Negotiate", r#"Bearer realm="r""#]), None);
        assert_eq!(
            code(&[r#"Bearer realm="x, error=\"invalid_token\"""#]),
            None
        );
        assert_eq!(code(&[""]), None);
    }

    #[test]
    fn reads_grpc_unauthenticated() {
        let status = |v: &str| {
            let mut headers = HeaderMap::new();
            headers.insert("grpc-status", v.parse().unwrap());
            grpc_unauthenticated(&headers)
        };
        assert!(status("16"));
        assert!(status(" 16 "));
        assert!(!status("7"), "PERMISSION_DENIED is not a rejected token");
        assert!(!status("0"));
        assert!(!status("160"));
        assert!(!grpc_unauthenticated(&HeaderMap::new()));
    }

    #[test]
    fn ignores_overlong_values() {
        let long = format!(r#"Bearer error="{}""#, "x".repeat(65));
        assert_eq!(code(&[&long]), None);
    }
}
