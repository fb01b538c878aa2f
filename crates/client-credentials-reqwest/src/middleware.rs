//! A `reqwest-middleware` layer that authorizes every outgoing request.

use std::fmt;

use client_credentials_core::TokenParams;
use http::Extensions;
use reqwest_middleware::{Middleware, Next};

use crate::authorized::reqwest_uri;
use crate::client::Client;
use crate::credentials::{Credentials, Source};
use crate::error::Error;

/// A [`reqwest_middleware::Middleware`] that sends every request with
/// `Authorization: Bearer <token>` (or `DPoP <token>` and a proof) from a [`Client`], or with a
/// [`StaticCredential`](crate::StaticCredential)'s header (a fixed bearer token or API key, set as it is on every
/// request, replacing any value; no retry, a 401 is returned as it is; a key outside
/// `Authorization` wants a reqwest client built with `redirect::Policy::none()`, since
/// reqwest carries other headers across redirects). For a client's tokens:
///
/// - It never sends a request without a token: when none can be had, the request fails with
///   [`reqwest_middleware::Error::Middleware`] wrapping this crate's [`Error`], and nothing
///   reaches the resource server.
/// - When the resource server rejects the token (a 401, or a `WWW-Authenticate: Bearer
///   error="invalid_token"` challenge, as the core's
///   [`resource_verdict`](client_credentials_core::Cache::resource_verdict) decides), it
///   invalidates the token that was rejected, and only that one (a token that other tasks
///   already replaced is left alone), then sends the request once more with a fresh token,
///   if the request can be cloned (a streaming body cannot, and is never replayed). The
///   answer to that retry is returned as it is, and so is a rejection when the token
///   endpoint hands out the same token again. `insufficient_scope` is never retried (a new
///   token has the same scopes), and neither is a rejection while the cache throttles
///   resource servers that keep rejecting fresh tokens.
/// - If fetching the fresh token fails, that error is returned (as a middleware error)
///   rather than the 401.
/// - With a DPoP key and a DPoP-bound token, every request goes as `Authorization: DPoP
///   <token>` with its own proof (RFC 9449 §7); a `use_dpop_nonce` challenge with a nonce
///   the proof did not carry is retried once, with the same token and a new proof, and the
///   nonce is remembered for the origin that answered. Build the reqwest client with
///   `redirect::Policy::none()`: reqwest carries the `DPoP` header across redirects, and a
///   proof names one URI.
///
/// A resource server that rejects every token thus costs at most one token request and one
/// retry per request, and after three early rejections in a row the cache backs off
/// ([`Policy::early_rejection_window`](crate::Policy::early_rejection_window)): the retry
/// is bounded, never a loop.
///
/// ```no_run
/// use client_credentials::reqwest::{AuthMiddleware, Client, Config};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let config = Config::builder()
///     .token_url("https://auth.example.com/oauth2/token")
///     .client_id("my-service")
///     .client_secret("s3cr3t")
///     .scopes(["orders.read"])
///     .build()?;
/// let tokens = Client::new(config)?;
/// let http = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
///     .with(AuthMiddleware::new(tokens))
///     .build();
/// let orders = http.get("https://api.example.com/orders").send().await?;
/// # let _ = orders;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct AuthMiddleware {
    source: Source,
}

impl fmt::Debug for AuthMiddleware {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.source.debug("AuthMiddleware", f)
    }
}

impl AuthMiddleware {
    /// A middleware that attaches the credentials to every request: tokens of a
    /// [`Client`]'s default request shape, or a [`StaticCredential`](crate::StaticCredential) (a fixed bearer token
    /// or API key: sent as it is, never refreshed, a 401 returned as it is).
    #[must_use]
    pub fn new(credentials: impl Into<Credentials>) -> Self {
        Self {
            source: Source::new(credentials.into()),
        }
    }

    /// A middleware that attaches tokens for these parameters (scopes, audience,
    /// resources…), validated now.
    ///
    /// # Errors
    /// [`Error::Config`] when the parameters are invalid.
    pub fn with_params(client: Client, params: &TokenParams) -> Result<Self, Error> {
        Ok(Self {
            source: Source::with_params(client, params)?,
        })
    }

    /// The client the tokens come from; `None` for a static credential.
    #[must_use]
    pub fn client(&self) -> Option<&Client> {
        self.source.client()
    }
}

impl Client {
    /// An [`AuthMiddleware`] for this client's default request shape.
    #[must_use]
    pub fn middleware(&self) -> AuthMiddleware {
        AuthMiddleware::new(self.clone())
    }
}

#[async_trait::async_trait]
impl Middleware for AuthMiddleware {
    async fn handle(
        &self,
        mut request: reqwest::Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<reqwest::Response> {
        let (client, request_shape) = match &self.source {
            Source::Client { client, request } => (client, request),
            Source::Static(credential) => {
                request
                    .headers_mut()
                    .insert(credential.header_name(), credential.header_value().clone());
                return next.run(request, extensions).await;
            }
        };
        let shared = &client.shared;
        let shape = request_shape.as_ref();
        let uri = reqwest_uri(request.url());
        let target = uri.as_ref().map(|uri| (request.method(), uri));
        let auth = shared
            .authorization(shape, target)
            .await
            .map_err(reqwest_middleware::Error::middleware)?;
        let retry = request.try_clone();
        auth.apply(request.headers_mut());
        let response = next.clone().run(request, extensions).await?;
        let retry = shared
            .retry_with_fresh_token(shape, &response, &auth, retry)
            .await
            .map_err(reqwest_middleware::Error::middleware)?;
        match retry {
            Some(retry) => {
                drop(response);
                let response = next.run(retry, extensions).await?;
                shared.note_dpop_nonce(reqwest_uri(response.url()).as_ref(), response.headers());
                Ok(response)
            }
            None => Ok(response),
        }
    }
}
