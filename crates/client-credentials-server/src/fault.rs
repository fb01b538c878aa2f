//! Misbehaviour on demand: delays, error statuses and rate limiting, for fault tests.

use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use http::header::{CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderName, HeaderValue, StatusCode};

/// A route the server serves, for counting requests and aiming faults.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Route {
    /// The token endpoint.
    Token,
    /// RFC 8414 metadata at `/.well-known/oauth-authorization-server`.
    Metadata,
    /// The JWKS (`/jwks.json`).
    Jwks,
    /// RFC 7662 introspection (`/introspect`).
    Introspection,
    /// RFC 7009 revocation (`/revoke`).
    Revocation,
    /// The protected demo resource (`/resource`).
    Resource,
}

impl Route {
    /// Every route.
    pub const ALL: [Self; 6] = [
        Self::Token,
        Self::Metadata,
        Self::Jwks,
        Self::Introspection,
        Self::Revocation,
        Self::Resource,
    ];

    fn index(self) -> usize {
        match self {
            Self::Token => 0,
            Self::Metadata => 1,
            Self::Jwks => 2,
            Self::Introspection => 3,
            Self::Revocation => 4,
            Self::Resource => 5,
        }
    }
}

/// How many requests each route has received (faulted ones included), as of one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Counts {
    /// Token endpoint requests.
    pub token: u64,
    /// Metadata requests.
    pub metadata: u64,
    /// JWKS requests.
    pub jwks: u64,
    /// Introspection requests.
    pub introspection: u64,
    /// Revocation requests.
    pub revocation: u64,
    /// Protected resource requests.
    pub resource: u64,
    /// Token requests answered `400 use_dpop_nonce` with a fresh `DPoP-Nonce` (counted in
    /// `token` too).
    pub token_nonce_challenges: u64,
    /// Resource requests answered `401 WWW-Authenticate: DPoP error="use_dpop_nonce"` with a
    /// fresh `DPoP-Nonce` (counted in `resource` too): a client that retries once with the
    /// nonce makes one of these per nonce.
    pub resource_nonce_challenges: u64,
}

impl Counts {
    /// The count for one route.
    #[must_use]
    pub fn get(&self, route: Route) -> u64 {
        match route {
            Route::Token => self.token,
            Route::Metadata => self.metadata,
            Route::Jwks => self.jwks,
            Route::Introspection => self.introspection,
            Route::Revocation => self.revocation,
            Route::Resource => self.resource,
        }
    }

    /// All requests (the nonce challenges are requests of their routes, counted once).
    #[must_use]
    pub fn total(&self) -> u64 {
        Route::ALL.iter().map(|r| self.get(*r)).sum()
    }
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    routes: [AtomicU64; 6],
    token_nonces: AtomicU64,
    resource_nonces: AtomicU64,
}

impl Counters {
    pub(crate) fn hit(&self, route: Route) {
        self.routes[route.index()].fetch_add(1, Ordering::SeqCst);
    }

    pub(crate) fn get(&self, route: Route) -> u64 {
        self.routes[route.index()].load(Ordering::SeqCst)
    }

    /// A `use_dpop_nonce` answer at the token endpoint or (`resource`) the resource.
    pub(crate) fn nonce_challenge(&self, resource: bool) {
        let counter = if resource {
            &self.resource_nonces
        } else {
            &self.token_nonces
        };
        counter.fetch_add(1, Ordering::SeqCst);
    }

    pub(crate) fn snapshot(&self) -> Counts {
        Counts {
            token: self.get(Route::Token),
            metadata: self.get(Route::Metadata),
            jwks: self.get(Route::Jwks),
            introspection: self.get(Route::Introspection),
            revocation: self.get(Route::Revocation),
            resource: self.get(Route::Resource),
            token_nonce_challenges: self.token_nonces.load(Ordering::SeqCst),
            resource_nonce_challenges: self.resource_nonces.load(Ordering::SeqCst),
        }
    }

    pub(crate) fn reset(&self) {
        for c in self
            .routes
            .iter()
            .chain([&self.token_nonces, &self.resource_nonces])
        {
            c.store(0, Ordering::SeqCst);
        }
    }
}

/// What a faulted request gets instead of (or before) its normal answer.
///
/// A fault applies to one route (the token endpoint unless [`Fault::on`] says otherwise),
/// either for the next `n` requests ([`Fault::times`]) or until cleared. Faults queue up: each
/// request takes the first pending fault for its route.
///
/// ```
/// use std::time::Duration;
/// use client_credentials::embedded::{Fault, Route};
///
/// // The next two token requests wait half a second, then succeed.
/// let slow = Fault::delay(Duration::from_millis(500)).times(2);
/// // Every resource request answers 503 until the faults are cleared.
/// let down = Fault::status(503).on(Route::Resource);
/// // One 429 with `Retry-After: 3`.
/// let throttled = Fault::rate_limited(Duration::from_secs(3)).times(1);
/// // An HTML error page from a proxy.
/// let proxy = Fault::status(502).body("text/html", "<html>Bad Gateway</html>").times(1);
/// # let _ = (slow, down, throttled, proxy);
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Fault {
    pub(crate) route: Route,
    pub(crate) delay: Option<Duration>,
    pub(crate) respond: Option<Canned>,
    pub(crate) remaining: Option<u32>,
}

/// A canned response.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Canned {
    pub(crate) status: StatusCode,
    pub(crate) headers: Vec<(HeaderName, HeaderValue)>,
    pub(crate) body: Vec<u8>,
}

impl fmt::Debug for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fault")
            .field("route", &self.route)
            .field("delay", &self.delay)
            .field("status", &self.respond.as_ref().map(|c| c.status.as_u16()))
            .field("remaining", &self.remaining)
            .finish()
    }
}

impl Fault {
    /// Waits `delay`, then answers normally.
    #[must_use]
    pub fn delay(delay: Duration) -> Self {
        Self {
            route: Route::Token,
            delay: Some(delay),
            respond: None,
            remaining: None,
        }
    }

    /// Answers with this status (an invalid code becomes 500) and a JSON OAuth error body:
    /// `temporarily_unavailable` for 503, `server_error` for other 5xx, `invalid_request`
    /// otherwise. Replace the body with [`Fault::body`].
    #[must_use]
    pub fn status(status: u16) -> Self {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let code = match status.as_u16() {
            503 => "temporarily_unavailable",
            500..=599 => "server_error",
            _ => "invalid_request",
        };
        Self {
            route: Route::Token,
            delay: None,
            respond: Some(Canned {
                status,
                headers: vec![(CONTENT_TYPE, HeaderValue::from_static("application/json"))],
                body: format!("{{\"error\":\"{code}\"}}").into_bytes(),
            }),
            remaining: None,
        }
    }

    /// Answers 429 Too Many Requests with `Retry-After` in whole seconds.
    #[must_use]
    pub fn rate_limited(retry_after: Duration) -> Self {
        Self::status(429)
            .body("application/json", r#"{"error":"rate_limited"}"#)
            .header(RETRY_AFTER.as_str(), &retry_after.as_secs().to_string())
    }

    /// Applies to this route rather than the token endpoint.
    #[must_use]
    pub fn on(mut self, route: Route) -> Self {
        self.route = route;
        self
    }

    /// Applies to the next `n` requests only (default: until cleared). `times(0)` never
    /// applies.
    #[must_use]
    pub fn times(mut self, n: u32) -> Self {
        self.remaining = Some(n);
        self
    }

    /// Waits this long before answering (with the canned response, if any).
    #[must_use]
    pub fn with_delay(mut self, delay: Duration) -> Self {
        self.delay = Some(delay);
        self
    }

    /// Replaces the canned body and its content type (a fault made by [`Fault::delay`] then
    /// answers 500 with it).
    #[must_use]
    pub fn body(mut self, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        let canned = self.canned();
        canned.headers.retain(|(n, _)| n != CONTENT_TYPE);
        if let Ok(v) = HeaderValue::from_str(content_type) {
            canned.headers.push((CONTENT_TYPE, v));
        }
        canned.body = body.into();
        self
    }

    /// Adds a header to the canned response (ignored when the name or value is invalid).
    #[must_use]
    pub fn header(mut self, name: &str, value: &str) -> Self {
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            let canned = self.canned();
            canned.headers.push((n, v));
        }
        self
    }

    fn canned(&mut self) -> &mut Canned {
        self.respond.get_or_insert_with(|| Canned {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            headers: Vec::new(),
            body: Vec::new(),
        })
    }

    /// The route the fault applies to.
    #[must_use]
    pub fn route(&self) -> Route {
        self.route
    }
}

/// The pending faults.
#[derive(Debug, Default)]
pub(crate) struct Faults(VecDeque<Fault>);

impl Faults {
    pub(crate) fn push(&mut self, fault: Fault) {
        if fault.remaining != Some(0) {
            self.0.push_back(fault);
        }
    }

    pub(crate) fn clear(&mut self) {
        self.0.clear();
    }

    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    /// The fault for a request on `route`, consuming one use of it.
    pub(crate) fn take(&mut self, route: Route) -> Option<Fault> {
        let i = self.0.iter().position(|f| f.route == route)?;
        let fault = self.0.get_mut(i)?;
        let taken = fault.clone();
        if let Some(n) = &mut fault.remaining {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.0.remove(i);
            }
        }
        Some(taken)
    }
}
