//! What decides the reply: closures, fixed replies, scripts, routers and a token endpoint.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::reply::Reply;
use crate::request::Request;

/// Decides the reply to a request. Called on the connection's own thread, so several calls
/// may run at once.
///
/// Implemented by closures `Fn(&Request) -> Reply`, by [`Reply`] (the same answer every
/// time), and by [`Script`], [`Router`] and [`TokenEndpoint`].
pub trait Handler: Send + Sync + 'static {
    /// The reply to `request`.
    fn handle(&self, request: &Request) -> Reply;
}

impl<F> Handler for F
where
    F: Fn(&Request) -> Reply + Send + Sync + 'static,
{
    fn handle(&self, request: &Request) -> Reply {
        self(request)
    }
}

impl Handler for Reply {
    fn handle(&self, _: &Request) -> Reply {
        self.clone()
    }
}

impl Handler for Box<dyn Handler> {
    fn handle(&self, request: &Request) -> Reply {
        (**self).handle(request)
    }
}

/// Replies in sequence: each step answers a number of requests, then the next step takes
/// over. A step added with [`Script::then`] answers every request after it. When the steps
/// run out, the reply is `500 script exhausted`.
///
/// ```
/// use client_credentials_testkit::{Reply, Script, TokenEndpoint};
/// // Three 503s, then tokens.
/// let script = Script::new().times(3, Reply::new(503)).then(TokenEndpoint::new());
/// # let _ = script;
/// ```
#[derive(Default)]
pub struct Script {
    steps: Vec<(Option<usize>, Box<dyn Handler>)>,
    calls: AtomicUsize,
}

impl std::fmt::Debug for Script {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Script")
            .field(
                "steps",
                &self.steps.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
            )
            .field("calls", &self.calls)
            .finish()
    }
}

impl Script {
    /// An empty script.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Answers the next `n` requests with `handler`.
    #[must_use]
    pub fn times(mut self, n: usize, handler: impl Handler) -> Self {
        self.steps.push((Some(n), Box::new(handler)));
        self
    }

    /// Answers the next request with `handler`.
    #[must_use]
    pub fn once(self, handler: impl Handler) -> Self {
        self.times(1, handler)
    }

    /// Answers every further request with `handler`. Steps after it are never reached.
    #[must_use]
    pub fn then(mut self, handler: impl Handler) -> Self {
        self.steps.push((None, Box::new(handler)));
        self
    }
}

impl Handler for Script {
    fn handle(&self, request: &Request) -> Reply {
        let mut call = self.calls.fetch_add(1, Ordering::SeqCst);
        for (times, handler) in &self.steps {
            match times {
                Some(n) if call >= *n => call -= n,
                _ => return handler.handle(request),
            }
        }
        Reply::text(500, "text/plain", "script exhausted")
    }
}

/// Dispatches on the request path (exact match); unknown paths get `404`.
///
/// ```
/// use client_credentials_testkit::{Reply, Router, TokenEndpoint};
/// let router = Router::new()
///     .route("/token", TokenEndpoint::new())
///     .route("/health", Reply::new(204));
/// # let _ = router;
/// ```
#[derive(Default)]
pub struct Router {
    routes: Vec<(String, Box<dyn Handler>)>,
    fallback: Option<Box<dyn Handler>>,
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Router")
            .field(
                "routes",
                &self.routes.iter().map(|(p, _)| p).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl Router {
    /// A router with no routes.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Routes requests for `path` to `handler`.
    #[must_use]
    pub fn route(mut self, path: &str, handler: impl Handler) -> Self {
        self.routes.push((path.to_owned(), Box::new(handler)));
        self
    }

    /// Answers requests for unknown paths (default `404`).
    #[must_use]
    pub fn fallback(mut self, handler: impl Handler) -> Self {
        self.fallback = Some(Box::new(handler));
        self
    }
}

impl Handler for Router {
    fn handle(&self, request: &Request) -> Reply {
        match self.routes.iter().find(|(p, _)| *p == request.path) {
            Some((_, h)) => h.handle(request),
            None => match &self.fallback {
                Some(h) => h.handle(request),
                None => Reply::text(404, "text/plain", "not found"),
            },
        }
    }
}

/// A token endpoint: checks the grant type (and, if configured, the client credentials) and
/// issues `token-1`, `token-2`, … with the configured lifetime, echoing the requested scope.
///
/// Credentials are accepted in `Authorization: Basic` (decoded per RFC 6749 §2.3.1) or as
/// `client_id` / `client_secret` body parameters (form or JSON), never both at once (that is
/// `400 invalid_request`). Wrong credentials get `401 invalid_client`.
///
/// ```
/// use std::time::Duration;
/// use client_credentials_testkit::TokenEndpoint;
/// let endpoint = TokenEndpoint::new()
///     .lifetime(Duration::from_secs(2))
///     .client("my-service", "s3cr3t");
/// # let _ = endpoint;
/// ```
#[derive(Debug)]
pub struct TokenEndpoint {
    lifetime: Option<Duration>,
    client: Option<(String, Option<String>)>,
    prefix: String,
    issued: AtomicUsize,
    extra: serde_json::Map<String, serde_json::Value>,
}

impl Default for TokenEndpoint {
    fn default() -> Self {
        Self::new()
    }
}

impl TokenEndpoint {
    /// An endpoint that issues one-hour tokens to any client.
    #[must_use]
    pub fn new() -> Self {
        Self {
            lifetime: Some(Duration::from_secs(3600)),
            client: None,
            prefix: "token-".to_owned(),
            issued: AtomicUsize::new(0),
            extra: serde_json::Map::new(),
        }
    }

    /// The lifetime of issued tokens (`expires_in`, in whole seconds).
    #[must_use]
    pub fn lifetime(mut self, lifetime: Duration) -> Self {
        self.lifetime = Some(lifetime);
        self
    }

    /// Issues tokens without `expires_in`.
    #[must_use]
    pub fn no_expires_in(mut self) -> Self {
        self.lifetime = None;
        self
    }

    /// Requires this confidential client.
    #[must_use]
    pub fn client(mut self, id: &str, secret: &str) -> Self {
        self.client = Some((id.to_owned(), Some(secret.to_owned())));
        self
    }

    /// Requires this public client (`client_id` in the body, no secret).
    #[must_use]
    pub fn public_client(mut self, id: &str) -> Self {
        self.client = Some((id.to_owned(), None));
        self
    }

    /// Issued tokens are `<prefix>1`, `<prefix>2`, … (default `token-`).
    #[must_use]
    pub fn prefix(mut self, prefix: &str) -> Self {
        self.prefix = prefix.to_owned();
        self
    }

    /// Adds a member to every token response.
    #[must_use]
    pub fn extra(mut self, name: &str, value: serde_json::Value) -> Self {
        self.extra.insert(name.to_owned(), value);
        self
    }

    /// How many tokens were issued so far.
    #[must_use]
    pub fn issued(&self) -> usize {
        self.issued.load(Ordering::SeqCst)
    }

    fn authenticate(&self, request: &Request) -> Result<(), Reply> {
        let basic = request.basic_auth();
        let body_id = request.param("client_id");
        let body_secret = request.param("client_secret");
        if basic.is_some() && (body_id.is_some() || body_secret.is_some()) {
            return Err(Reply::oauth_error(
                400,
                "invalid_request",
                Some("client credentials sent in more than one way"),
            ));
        }
        let Some((want_id, want_secret)) = &self.client else {
            return Ok(());
        };
        let (id, secret) = match basic {
            Some((id, secret)) => (Some(id), Some(secret)),
            None => (body_id, body_secret),
        };
        if id.as_ref() == Some(want_id) && secret.as_ref() == want_secret.as_ref() {
            Ok(())
        } else {
            Err(Reply::oauth_error(
                401,
                "invalid_client",
                Some("client authentication failed"),
            ))
        }
    }
}

impl Handler for TokenEndpoint {
    fn handle(&self, request: &Request) -> Reply {
        if request.method != "POST" {
            return Reply::new(405).header("allow", "POST");
        }
        if let Err(reply) = self.authenticate(request) {
            return reply;
        }
        match request.param("grant_type").as_deref() {
            Some("client_credentials") => {}
            Some(_) => return Reply::oauth_error(400, "unsupported_grant_type", None),
            None => {
                return Reply::oauth_error(400, "invalid_request", Some("grant_type missing"));
            }
        }
        let n = self.issued.fetch_add(1, Ordering::SeqCst) + 1;
        let mut body = serde_json::Map::new();
        body.insert("access_token".into(), format!("{}{n}", self.prefix).into());
        body.insert("token_type".into(), "Bearer".into());
        if let Some(l) = self.lifetime {
            body.insert("expires_in".into(), l.as_secs().into());
        }
        if let Some(scope) = request.param("scope") {
            body.insert("scope".into(), scope.into());
        }
        body.extend(self.extra.iter().map(|(k, v)| (k.clone(), v.clone())));
        Reply::json(200, &serde_json::Value::Object(body))
            .header("cache-control", "no-store")
            .header("pragma", "no-cache")
    }
}

impl Handler for std::sync::Arc<TokenEndpoint> {
    fn handle(&self, request: &Request) -> Reply {
        (**self).handle(request)
    }
}
