//! What the server answers: a status, headers and a body, with optional delays and faults.

use std::time::{Duration, SystemTime};

/// How the end of the body is signalled.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Framing {
    /// `Content-Length` (the default).
    #[default]
    ContentLength,
    /// `Transfer-Encoding: chunked`: the client cannot know the size in advance.
    Chunked,
    /// Neither: the body ends when the server closes the connection.
    Close,
}

/// A `Retry-After` value (RFC 9110 §10.2.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RetryAfter {
    /// `Retry-After: <seconds>`.
    Seconds(u64),
    /// `Retry-After: <HTTP-date>`.
    Date(SystemTime),
}

impl RetryAfter {
    /// The header value.
    #[must_use]
    pub fn header_value(&self) -> String {
        match self {
            Self::Seconds(s) => s.to_string(),
            Self::Date(d) => httpdate::fmt_http_date(*d),
        }
    }
}

/// A response body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Body {
    Bytes(Vec<u8>),
    /// `len` copies of `byte`, generated while writing (a 10 MB body costs no memory).
    Repeat {
        byte: u8,
        len: usize,
    },
}

impl Body {
    pub(crate) fn len(&self) -> usize {
        match self {
            Self::Bytes(b) => b.len(),
            Self::Repeat { len, .. } => *len,
        }
    }
}

/// A fault injected after some bytes of the body were written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fault {
    /// Close the connection (FIN): the body is truncated.
    Close,
    /// Reset the connection (RST, `SO_LINGER` 0).
    Reset,
    /// Stop writing for this long, then write the rest.
    Stall(Duration),
}

/// An answer, built with the constructors and refined with the `with`-style methods.
///
/// ```
/// use std::time::Duration;
/// use client_credentials_testkit::{Reply, RetryAfter};
///
/// let ok = Reply::token("tok-1", Some(Duration::from_secs(3600)));
/// let throttled = Reply::rate_limited(RetryAfter::Seconds(2));
/// let broken = Reply::token("tok-2", Some(Duration::from_secs(60))).reset_after(10);
/// let slow = Reply::new(503).delay(Duration::from_millis(200));
/// # let _ = (ok, throttled, broken, slow);
/// ```
#[derive(Clone, Debug)]
pub struct Reply {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Body,
    pub(crate) framing: Framing,
    pub(crate) delay: Duration,
    pub(crate) fault: Option<(usize, Fault)>,
    pub(crate) hang_up: bool,
}

impl Reply {
    /// A response with this status, no body and no headers of its own.
    #[must_use]
    pub fn new(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: Body::Bytes(Vec::new()),
            framing: Framing::ContentLength,
            delay: Duration::ZERO,
            fault: None,
            hang_up: false,
        }
    }

    /// A JSON body with `Content-Type: application/json`.
    #[must_use]
    pub fn json(status: u16, body: &serde_json::Value) -> Self {
        Self::new(status).body("application/json", body.to_string())
    }

    /// A raw body with this content type (for truncated JSON, form bodies, plain text…).
    #[must_use]
    pub fn text(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        Self::new(status).body(content_type, body)
    }

    /// An HTML page, as proxies and misconfigured gateways send.
    #[must_use]
    pub fn html(status: u16, html: &str) -> Self {
        Self::new(status).body("text/html; charset=utf-8", html)
    }

    /// A successful RFC 6749 §5.1 token response: `Bearer`, `expires_in` in whole seconds
    /// when `lifetime` is set, `Cache-Control: no-store`.
    #[must_use]
    pub fn token(access_token: &str, lifetime: Option<Duration>) -> Self {
        let mut body = serde_json::json!({
            "access_token": access_token,
            "token_type": "Bearer",
        });
        if let (Some(l), Some(map)) = (lifetime, body.as_object_mut()) {
            map.insert("expires_in".into(), l.as_secs().into());
        }
        Self::json(200, &body)
            .header("cache-control", "no-store")
            .header("pragma", "no-cache")
    }

    /// An RFC 6749 §5.2 error response. A 401 carries `WWW-Authenticate: Basic`.
    #[must_use]
    pub fn oauth_error(status: u16, code: &str, description: Option<&str>) -> Self {
        let mut body = serde_json::json!({ "error": code });
        if let (Some(d), Some(map)) = (description, body.as_object_mut()) {
            map.insert("error_description".into(), d.into());
        }
        let reply = Self::json(status, &body).header("cache-control", "no-store");
        if status == 401 {
            reply.header("www-authenticate", r#"Basic realm="token""#)
        } else {
            reply
        }
    }

    /// 429 Too Many Requests with a `Retry-After` header and no body.
    #[must_use]
    pub fn rate_limited(retry_after: RetryAfter) -> Self {
        Self::new(429).header("retry-after", &retry_after.header_value())
    }

    /// A redirect (301, 302, 303, 307 or 308) to `location`.
    #[must_use]
    pub fn redirect(status: u16, location: &str) -> Self {
        Self::new(status).header("location", location)
    }

    /// A 200 `application/json` response of `len` bytes (`a` repeated), generated while
    /// writing.
    #[must_use]
    pub fn large(len: usize) -> Self {
        let mut reply = Self::new(200).header("content-type", "application/json");
        reply.body = Body::Repeat { byte: b'a', len };
        reply
    }

    /// Closes the connection as soon as the request is read, without answering.
    #[must_use]
    pub fn hang_up() -> Self {
        let mut reply = Self::new(500);
        reply.hang_up = true;
        reply
    }

    /// Adds a header (sent as given, after the status line and before the framing headers).
    #[must_use]
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Sets the body and its `Content-Type`.
    #[must_use]
    pub fn body(mut self, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        self.headers
            .retain(|(n, _)| !n.eq_ignore_ascii_case("content-type"));
        self.headers
            .push(("content-type".to_owned(), content_type.to_owned()));
        self.body = Body::Bytes(body.into());
        self
    }

    /// How the body is framed (default [`Framing::ContentLength`]).
    #[must_use]
    pub fn framing(mut self, framing: Framing) -> Self {
        self.framing = framing;
        self
    }

    /// Waits this long before writing anything: the status line and headers stall. Sleeps
    /// are cut short when the server shuts down.
    #[must_use]
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// Writes the headers and the first `bytes` of the body, then stalls for `stall`, then
    /// writes the rest.
    #[must_use]
    pub fn stall_after(mut self, bytes: usize, stall: Duration) -> Self {
        self.fault = Some((bytes, Fault::Stall(stall)));
        self
    }

    /// Writes the headers (announcing the whole body) and the first `bytes` of the body, then
    /// closes the connection: a truncated body.
    #[must_use]
    pub fn close_after(mut self, bytes: usize) -> Self {
        self.fault = Some((bytes, Fault::Close));
        self
    }

    /// Writes the headers and the first `bytes` of the body, then resets the connection
    /// (TCP RST).
    #[must_use]
    pub fn reset_after(mut self, bytes: usize) -> Self {
        self.fault = Some((bytes, Fault::Reset));
        self
    }

    /// The status code.
    #[must_use]
    pub fn status(&self) -> u16 {
        self.status
    }
}

/// The reason phrase for a status line.
pub(crate) fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}
