//! Access tokens as the client holds them: the secret value with its type, lifetime and scope.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::HeaderValue;
use serde::{Deserialize, Serialize};

use crate::secret::AccessToken;

/// A deviation from RFC 6749 §5.1 that the parser tolerated. Listed on the [`Token`] so that
/// users can log their provider's quirks.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Deviation {
    /// The body started with a UTF-8 byte order mark.
    ByteOrderMark,
    /// Parameter names were not all lower case.
    ParameterCase,
    /// The body was `application/x-www-form-urlencoded` rather than JSON.
    FormBody,
    /// The body was parsed although its `Content-Type` (kept, bounded) did not say JSON.
    ContentType(String),
    /// The status was a 2xx other than 200.
    SuccessStatus(u16),
    /// `token_type` was missing; Bearer was assumed.
    TokenTypeMissing,
    /// `token_type` was not in its canonical letter case (for example `bearer`).
    TokenTypeCase,
    /// `expires_in` was a string holding a number.
    ExpiresInString,
    /// `expires_in` was a fractional number; it was rounded down.
    ExpiresInFloat,
    /// `expires_in` was `null`; the missing-lifetime policy applied.
    ExpiresInNull,
    /// `expires_in` was absent; the missing-lifetime policy applied.
    ExpiresInMissing,
    /// `expires_in` was absent but `expires_on` / `expires_at` (absolute Unix time) was used.
    ExpiresOn,
    /// `expires_in` was implausibly large and was capped at ten years.
    ExpiresInCapped,
    /// `scope` was a JSON array rather than a space-delimited string.
    ScopeArray,
    /// `scope` was neither a string nor an array of strings, and was ignored.
    ScopeUnreadable,
    /// `access_token` has characters outside RFC 6750's `b64token` alphabet (spaces, quotes,
    /// `%`, `:`…). RFC 6749 Appendix A.12 allows any visible ASCII and the space, so it was
    /// taken; a resource server that checks the RFC 6750 syntax may refuse it.
    AccessTokenSyntax,
}

/// Where [`Token::scopes`] came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ScopeSource {
    /// The server named the granted scopes.
    Granted,
    /// The server did not say; these are the requested scopes (RFC 6749 §5.1: the granted
    /// scope is then identical to the requested one).
    Requested,
}

/// An access token with what the client knows about it.
///
/// `Debug` redacts the token and shows only the names of extra fields (they may hold an
/// `id_token` or a `refresh_token`). To store a token, serialise [`Token::storable`] and
/// deserialise a `Token`:
///
/// ```
/// # use std::time::{Duration, SystemTime};
/// # use client_credentials_core::{Config, Token};
/// # let config = Config::builder().token_url("https://as.example.com/t").client_id("c").client_secret("s").build()?;
/// # let request = config.default_request();
/// # let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
/// # let token = request.parse_response(now, http::StatusCode::OK, &http::HeaderMap::new(),
/// #     br#"{"access_token":"abc","token_type":"Bearer","expires_in":3600}"#).unwrap();
/// let stored = serde_json::to_string(&token.storable()).unwrap();
/// let restored: Token = serde_json::from_str(&stored).unwrap();
/// assert_eq!(restored.access_token(), token.access_token());
/// assert_eq!(restored.expires_at(), token.expires_at());
/// # Ok::<_, client_credentials_core::ConfigError>(())
/// ```
#[derive(Clone, PartialEq)]
pub struct Token {
    pub(crate) access_token: AccessToken,
    pub(crate) token_type: std::borrow::Cow<'static, str>,
    pub(crate) issued_at: SystemTime,
    pub(crate) lifetime: Option<Duration>,
    /// Shared with the request when they are the requested ones (and with every copy).
    pub(crate) scopes: Arc<[String]>,
    pub(crate) scope_source: ScopeSource,
    pub(crate) refresh_in: Option<Duration>,
    pub(crate) extra: serde_json::Map<String, serde_json::Value>,
    pub(crate) deviations: Vec<Deviation>,
    /// The `Authorization` value, made on first use.
    pub(crate) header: HeaderCell,
}

/// A token's `Authorization` value, made the first time it is asked for and then handed
/// out as a cheap copy. A clone of the token starts without one and makes its own, so
/// that the copies that a [`TokenSlot`](crate::TokenSlot) keeps per core share nothing.
/// Equal whatever it holds: it is derived from the token.
#[derive(Default)]
pub(crate) struct HeaderCell(std::sync::OnceLock<HeaderValue>);

impl Clone for HeaderCell {
    fn clone(&self) -> Self {
        Self::default()
    }
}

impl PartialEq for HeaderCell {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Token")
            .field("access_token", &self.access_token)
            .field("token_type", &self.token_type)
            .field("issued_at", &self.issued_at)
            .field("lifetime", &self.lifetime)
            .field("scopes", &self.scopes)
            .field("scope_source", &self.scope_source)
            .field("refresh_in", &self.refresh_in)
            .field("extra", &self.extra.keys().collect::<Vec<_>>())
            .field("deviations", &self.deviations)
            .finish()
    }
}

impl Token {
    /// The access token.
    #[must_use]
    pub fn access_token(&self) -> &AccessToken {
        &self.access_token
    }

    /// The token type: `Bearer` (canonical case) or another accepted type as sent.
    #[must_use]
    pub fn token_type(&self) -> &str {
        &self.token_type
    }

    /// When the token was issued: the `now` passed to the parser, which should be when the
    /// request was sent, so that expiry errs on the early side.
    #[must_use]
    pub fn issued_at(&self) -> SystemTime {
        self.issued_at
    }

    /// How long the token lives from [`Token::issued_at`]; `None` when it does not expire
    /// (only under [`crate::MissingLifetime::NeverExpires`]).
    #[must_use]
    pub fn lifetime(&self) -> Option<Duration> {
        self.lifetime
    }

    /// The absolute expiry; `None` when the token does not expire.
    #[must_use]
    pub fn expires_at(&self) -> Option<SystemTime> {
        self.lifetime.and_then(|l| self.issued_at.checked_add(l))
    }

    /// How long the token has left at `now` (wall-clock time): `Some(Duration::ZERO)` once
    /// it expired, `None` when it does not expire. This is the server's lifetime, without
    /// the cache's [`Policy::expiry_margin`](crate::Policy::expiry_margin): a client stops
    /// serving a token a little before this reaches zero.
    ///
    /// ```
    /// use std::time::{Duration, SystemTime};
    /// use client_credentials::Config;
    /// use client_credentials::http::{HeaderMap, StatusCode};
    ///
    /// let config = Config::builder()
    ///     .token_url("https://as.example.com/token")
    ///     .client_id("c")
    ///     .client_secret("s")
    ///     .build()?;
    /// let issued = SystemTime::now();
    /// let body = br#"{"access_token":"abc","token_type":"Bearer","expires_in":3600}"#;
    /// let token = config.default_request().parse_response(issued, StatusCode::OK, &HeaderMap::new(), body)?;
    /// assert_eq!(token.expires_in(issued + Duration::from_secs(600)), Some(Duration::from_secs(3000)));
    /// assert_eq!(token.expires_in(issued + Duration::from_secs(7200)), Some(Duration::ZERO));
    /// # Ok::<_, Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn expires_in(&self, now: SystemTime) -> Option<Duration> {
        self.expires_at()
            .map(|at| at.duration_since(now).unwrap_or(Duration::ZERO))
    }

    /// Whether the token expires before `now + window` (or has expired).
    #[must_use]
    pub fn expires_within(&self, now: SystemTime, window: Duration) -> bool {
        match self.expires_at() {
            None => false,
            Some(at) => now.checked_add(window).is_none_or(|limit| at <= limit),
        }
    }

    /// The granted scopes (see [`Token::scope_source`]).
    #[must_use]
    pub fn scopes(&self) -> &[String] {
        &self.scopes
    }

    /// Whether [`Token::scopes`] were named by the server or assumed from the request.
    #[must_use]
    pub fn scope_source(&self) -> ScopeSource {
        self.scope_source
    }

    /// `refresh_in`, when the server suggested when to refresh (Entra ID managed identities).
    #[must_use]
    pub fn refresh_in(&self) -> Option<Duration> {
        self.refresh_in
    }

    /// Response members that the parser does not interpret (`id_token`, `ext_expires_in`…).
    #[must_use]
    pub fn extra(&self) -> &serde_json::Map<String, serde_json::Value> {
        &self.extra
    }

    /// The deviations from RFC 6749 §5.1 that were tolerated.
    #[must_use]
    pub fn deviations(&self) -> &[Deviation] {
        &self.deviations
    }

    /// The `Authorization` header value (`Bearer <token>`, or the accepted type's scheme),
    /// marked sensitive so that HTTP libraries leave it out of their logs. Made on the first
    /// call and kept with the token: later calls copy it (a reference count, no
    /// allocation). Like the value sent on the wire, the kept copy is not zeroized.
    #[must_use]
    pub fn authorization_header(&self) -> HeaderValue {
        self.header
            .0
            .get_or_init(|| {
                let value = zeroize::Zeroizing::new(format!(
                    "{} {}",
                    self.token_type,
                    self.access_token.expose_secret()
                ));
                // The parser admits only visible ASCII in the token type, and visible ASCII
                // and inner spaces in the token (`is_access_token`): all of it header-safe.
                let mut header = HeaderValue::from_str(&value)
                    .unwrap_or_else(|_| unreachable!("token and type are visible ASCII"));
                header.set_sensitive(true);
                header
            })
            .clone()
    }

    /// A serialisable view of the token, for storage. This is the explicit call through which
    /// the raw token is serialised; nothing else serialises it.
    #[must_use]
    pub fn storable(&self) -> StorableToken<'_> {
        StorableToken(self)
    }
}

/// A token, as [`Token::storable`] exposes it to `serde`. Its serialised form holds the raw
/// access token: encrypt it or keep it where only the service can read it.
pub struct StorableToken<'a>(&'a Token);

impl fmt::Debug for StorableToken<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("StorableToken").field(self.0).finish()
    }
}

/// The stored form, version 1. Field names are part of the format.
#[derive(Serialize, Deserialize)]
struct Stored<'a> {
    v: u32,
    access_token: std::borrow::Cow<'a, str>,
    token_type: std::borrow::Cow<'a, str>,
    issued_at_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    lifetime_ms: Option<u64>,
    #[serde(default)]
    scopes: std::borrow::Cow<'a, [String]>,
    scope_source: ScopeSource,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    refresh_in_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    extra: std::borrow::Cow<'a, serde_json::Map<String, serde_json::Value>>,
    #[serde(default, skip_serializing_if = "<[Deviation]>::is_empty")]
    deviations: std::borrow::Cow<'a, [Deviation]>,
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl Serialize for StorableToken<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let t = self.0;
        Stored {
            v: 1,
            access_token: t.access_token.expose_secret().into(),
            token_type: t.token_type.as_ref().into(),
            issued_at_ms: millis(t.issued_at.duration_since(UNIX_EPOCH).unwrap_or_default()),
            lifetime_ms: t.lifetime.map(millis),
            scopes: std::borrow::Cow::Borrowed(&t.scopes),
            scope_source: t.scope_source,
            refresh_in_ms: t.refresh_in.map(millis),
            extra: std::borrow::Cow::Borrowed(&t.extra),
            deviations: t.deviations.as_slice().into(),
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Token {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let s = Stored::deserialize(deserializer)?;
        if s.v != 1 {
            return Err(D::Error::custom("unsupported stored token version"));
        }
        if !is_access_token(&s.access_token) || !is_header_safe(&s.token_type) {
            return Err(D::Error::custom("stored token has invalid characters"));
        }
        let issued_at = UNIX_EPOCH
            .checked_add(Duration::from_millis(s.issued_at_ms))
            .ok_or_else(|| D::Error::custom("issued_at out of range"))?;
        Ok(Token {
            access_token: AccessToken::new(s.access_token.into_owned()),
            token_type: canonical_token_type(s.token_type),
            issued_at,
            // A stored record is input like any other: no lifetime beyond the parser's cap.
            lifetime: s
                .lifetime_ms
                .map(|ms| Duration::from_millis(ms).min(crate::MAX_LIFETIME)),
            scopes: s.scopes.into_owned().into(),
            scope_source: s.scope_source,
            refresh_in: s
                .refresh_in_ms
                .map(|ms| Duration::from_millis(ms).min(crate::MAX_LIFETIME)),
            extra: s.extra.into_owned(),
            deviations: s.deviations.into_owned(),
            header: HeaderCell::default(),
        })
    }
}

/// Visible ASCII only: what can follow `Bearer ` in a header.
pub(crate) fn is_header_safe(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_graphic())
}

/// An access token as RFC 6749 Appendix A.12 defines it (`1*VSCHAR`, %x20-7E) that an
/// `Authorization` header can carry unchanged: a space inside, but not at either end (an HTTP
/// field value has no leading or trailing whitespace, RFC 9110 §5.5, so it would be lost).
pub(crate) fn is_access_token(s: &str) -> bool {
    !s.is_empty() && all_bytes(s.as_bytes(), is_vschar) && !s.starts_with(' ') && !s.ends_with(' ')
}

/// RFC 6750 §2.1 `b64token`: `1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`.
/// The reference that [`access_token_syntax`], which the parsers call, is tested against.
#[cfg(test)]
fn is_b64token(s: &str) -> bool {
    let body = s.trim_end_matches('=');
    !body.is_empty() && all_bytes(body.as_bytes(), is_b64token_char)
}

/// [`is_access_token`] and [`is_b64token`] of `s` in one pass over its bytes (a token is
/// hundreds of them, and both are asked of every token parsed).
pub(crate) fn access_token_syntax(s: &str) -> (bool, bool) {
    let body = s.trim_end_matches('=');
    let (vschar, b64) = all_bytes2(body.as_bytes(), is_vschar, is_b64token_char);
    // The padding, `=`, is a VSCHAR.
    let access = !s.is_empty() && vschar && !s.starts_with(' ') && !s.ends_with(' ');
    (access, !body.is_empty() && b64)
}

/// `Bearer` without an allocation (almost every token's type), any other type as it is.
pub(crate) fn canonical_token_type(
    token_type: std::borrow::Cow<'_, str>,
) -> std::borrow::Cow<'static, str> {
    if token_type == "Bearer" {
        std::borrow::Cow::Borrowed("Bearer")
    } else {
        std::borrow::Cow::Owned(token_type.into_owned())
    }
}

/// `%x20-7E`, without a branch.
#[inline]
fn is_vschar(b: u8) -> bool {
    b.wrapping_sub(0x20) < 0x5F
}

/// A `b64token` character before the padding, without a branch.
#[inline]
fn is_b64token_char(b: u8) -> bool {
    let letter = (b | 0x20).wrapping_sub(b'a') < 26;
    let digit = b.wrapping_sub(b'0') < 10;
    letter
        | digit
        | (b == b'-')
        | (b == b'.')
        | (b == b'_')
        | (b == b'~')
        | (b == b'+')
        | (b == b'/')
}

/// Whether `ok` holds for every byte: 32 bytes at a time with no early exit inside a block,
/// which the compiler turns into vector compares (a token is hundreds of bytes, and this
/// check ran byte by byte for a quarter of a parse).
#[inline]
fn all_bytes(bytes: &[u8], ok: impl Fn(u8) -> bool) -> bool {
    let mut blocks = bytes.chunks_exact(32);
    for block in &mut blocks {
        if !block.iter().fold(true, |all, &b| all & ok(b)) {
            return false;
        }
    }
    blocks.remainder().iter().all(|&b| ok(b))
}

/// Whether `a` and whether `b` hold for every byte, in one pass as [`all_bytes`] does it;
/// stops early only once both failed.
#[inline]
fn all_bytes2(bytes: &[u8], a: impl Fn(u8) -> bool, b: impl Fn(u8) -> bool) -> (bool, bool) {
    let (mut all_a, mut all_b) = (true, true);
    let mut blocks = bytes.chunks_exact(32);
    for block in &mut blocks {
        let (block_a, block_b) = block
            .iter()
            .fold((true, true), |(x, y), &c| (x & a(c), y & b(c)));
        all_a &= block_a;
        all_b &= block_b;
        if !all_a && !all_b {
            return (false, false);
        }
    }
    for &c in blocks.remainder() {
        all_a &= a(c);
        all_b &= b(c);
    }
    (all_a, all_b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_pass_token_syntax_agrees_with_the_two_checks() {
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let alphabet = b"aZ09-._~+/= !\x7f\x19\"%";
        let mut cases: Vec<String> = ["", "=", "==", " a", "a ", "a b", "abc=", "a=b", "ab==="]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        for _ in 0..20_000 {
            let len = usize::try_from(next() % 80).unwrap();
            let bytes: Vec<u8> = (0..len)
                .map(|_| alphabet[usize::try_from(next() % alphabet.len() as u64).unwrap()])
                .collect();
            cases.push(String::from_utf8(bytes).unwrap());
        }
        for s in &cases {
            assert_eq!(
                access_token_syntax(s),
                (is_access_token(s), is_b64token(s)),
                "{s:?}"
            );
        }
    }

    fn naive_b64token_char(b: u8) -> bool {
        b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/')
    }

    #[test]
    fn branchless_classes_match_the_grammar_for_every_byte() {
        for b in 0..=u8::MAX {
            assert_eq!(is_vschar(b), (0x20..=0x7E).contains(&b), "{b:#04x}");
            assert_eq!(is_b64token_char(b), naive_b64token_char(b), "{b:#04x}");
        }
    }

    #[test]
    fn one_bad_byte_anywhere_in_a_long_token_is_found() {
        let good = "aB3-._~+/".repeat(90); // 810 bytes: blocks and a remainder
        assert!(is_b64token(&good) && is_access_token(&good));
        for at in [0, 1, 31, 32, 33, 500, 799, 809] {
            for bad in [b' ', b'"', 0x7F, 0x00, b'='] {
                let mut token = good.clone().into_bytes();
                token[at] = bad;
                let token = String::from_utf8(token).unwrap();
                // `=` at the very end is padding.
                let padding = bad == b'=' && at == token.len() - 1;
                assert_eq!(is_b64token(&token), padding, "{bad:#04x} at {at}");
                let vschar = (0x20..=0x7E).contains(&bad)
                    && !(bad == b' ' && (at == 0 || at == token.len() - 1));
                assert_eq!(is_access_token(&token), vschar, "{bad:#04x} at {at}");
            }
        }
        assert!(is_b64token(&format!("{good}==")));
        assert!(!is_b64token("=="));
    }
}
