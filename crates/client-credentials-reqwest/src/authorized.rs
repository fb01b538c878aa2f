//! Requests to resource servers that carry a token: [`Client::send_authorized`] and the
//! rule that both it and [`AuthMiddleware`](crate::AuthMiddleware) follow on the answer,
//! which is the core's ([`Cache::resource_verdict`](client_credentials_core::Cache::resource_verdict)).

use std::sync::Arc;
use std::time::Instant;

use client_credentials_core::{AccessToken, Cache, ResourceVerdict, Token, TokenRequest};
use http::header::AUTHORIZATION;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};

use crate::client::Client;
use crate::driver::{Shared, in_runtime};
use crate::error::Error;

/// The token's sensitive `Authorization` value, and its access token (to report a
/// rejection with).
fn header_and_token(token: &Token) -> (HeaderValue, AccessToken) {
    (token.authorization_header(), token.access_token().clone())
}

impl Shared {
    /// The `Authorization` value and the access token for `shape` (`None`: the default
    /// request, lent by the lock-free hit path when it is published).
    pub(crate) async fn authorization(
        self: &Arc<Self>,
        shape: Option<&TokenRequest>,
    ) -> Result<(HeaderValue, AccessToken), Error> {
        let request = match shape {
            Some(request) => request,
            None => match self.background.slot.with(header_and_token) {
                Ok(lent) => return Ok(lent),
                Err(_) => &self.default_request,
            },
        };
        Ok(header_and_token(&*self.token(request).await?))
    }

    /// After the resource server's answer (`status`, `headers`, or the trailers) to a
    /// request sent with `used`: the core's verdict says whether the token was rejected (it
    /// is then dropped) and a retry may help. If so, and the request can be sent again
    /// (`replayable`), returns the `Authorization` value of a fresh token, and that token,
    /// for one more, and last, try. `None`: hand the answer over as it is (no rejection, or a retry cannot
    /// help, or the request cannot be replayed, or the token endpoint handed out the very
    /// token that was just rejected).
    pub(crate) async fn fresh_header_for_retry(
        self: &Arc<Self>,
        shape: Option<&TokenRequest>,
        status: StatusCode,
        headers: &HeaderMap,
        used: &AccessToken,
        replayable: bool,
    ) -> Result<Option<(HeaderValue, AccessToken)>, Error> {
        if !Cache::rejects_token(status, headers)
            || self.verdict(shape, status, headers, used) != ResourceVerdict::RetryWithFreshToken
        {
            return Ok(None);
        }
        if !replayable {
            tracing::debug!(
                "the resource server rejected the token; the request body cannot be replayed, not retried"
            );
            return Ok(None);
        }
        let (header, fresh) = self.authorization(shape).await?;
        if fresh == *used {
            tracing::debug!("the resource server rejected the token; no newer token to retry with");
            return Ok(None);
        }
        tracing::debug!("the resource server rejected the token; retrying once with a fresh token");
        Ok(Some((header, fresh)))
    }

    /// [`Shared::fresh_header_for_retry`] for a reqwest answer: the request to send again
    /// (`retry`, when it could be cloned), with the fresh token.
    pub(crate) async fn retry_with_fresh_token(
        self: &Arc<Self>,
        shape: Option<&TokenRequest>,
        response: &reqwest::Response,
        used: &AccessToken,
        retry: Option<reqwest::Request>,
    ) -> Result<Option<reqwest::Request>, Error> {
        let header = self
            .fresh_header_for_retry(
                shape,
                response.status(),
                response.headers(),
                used,
                retry.is_some(),
            )
            .await?;
        Ok(header.zip(retry).map(|((header, _), mut retry)| {
            retry.headers_mut().insert(AUTHORIZATION, header);
            retry
        }))
    }

    /// The core's verdict on an answer (`status`, `headers`) to a request that carried
    /// `used`: a rejected token is dropped.
    pub(crate) fn verdict(
        &self,
        shape: Option<&TokenRequest>,
        status: StatusCode,
        headers: &HeaderMap,
        used: &AccessToken,
    ) -> ResourceVerdict {
        let key = shape.unwrap_or(&self.default_request).cache_key();
        let now = Instant::now();
        let mut cache = self.lock();
        let verdict = cache.resource_verdict(now, key, status, headers, used);
        self.drain_and_notify(cache);
        verdict
    }
}

impl Client {
    /// Sets `Authorization` on an `http` request to a valid token for the default request
    /// shape, replacing any previous value. The header value is marked sensitive. Returns the
    /// access token, to pass to [`Client::invalidate`] if the resource server rejects it.
    /// The token is lent ([`Client::with_token`]), so that this scales across cores.
    ///
    /// # Errors
    /// As [`Client::token`].
    pub async fn authorize<B>(&self, request: &mut http::Request<B>) -> Result<AccessToken, Error> {
        let (header, token) = self.shared.authorization(None).await?;
        request.headers_mut().insert(AUTHORIZATION, header);
        Ok(token)
    }

    /// Adds `Authorization` with a valid token for the default request shape to a reqwest
    /// request, and returns it with the access token (to pass to [`Client::invalidate`] if
    /// the resource server rejects it). [`Client::send_authorized`] handles rejections for
    /// you.
    ///
    /// ```no_run
    /// # async fn run(client: client_credentials_reqwest::Client) -> Result<(), Box<dyn std::error::Error>> {
    /// let http = reqwest::Client::new();
    /// let (request, token) = client
    ///     .authorize_reqwest(http.get("https://api.example.com/orders"))
    ///     .await?;
    /// let response = request.send().await?;
    /// // If the resource server rejected `token`, hand it back, so that the next call
    /// // fetches a new one (`send_authorized` and `AuthMiddleware` decide that, and retry
    /// // once, for you): `client.invalidate(&token)`.
    /// # let _ = (response, token);
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// As [`Client::token`].
    pub async fn authorize_reqwest(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<(reqwest::RequestBuilder, AccessToken), Error> {
        let (header, token) = self.shared.authorization(None).await?;
        Ok((with_header(request, AUTHORIZATION, header)?, token))
    }

    /// Sends a request with a valid token for the default request shape, for users without
    /// `reqwest-middleware`. It behaves as [`AuthMiddleware`](crate::AuthMiddleware): when
    /// the resource server rejects the token (a 401, or `WWW-Authenticate: Bearer
    /// error="invalid_token"`), it drops that token and, if the request can be cloned, sends
    /// it once more with a fresh token; the answer to that retry is returned as it is. An
    /// `insufficient_scope` answer is not retried (a new token has the same scopes). Without
    /// a token, nothing is sent.
    ///
    /// ```no_run
    /// # async fn run(client: client_credentials_reqwest::Client) -> Result<(), client_credentials_reqwest::Error> {
    /// let http = reqwest::Client::new();
    /// let response = client
    ///     .send_authorized(http.get("https://api.example.com/orders"))
    ///     .await?;
    /// # let _ = response;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// [`Error::Token`] when no token could be had (nothing was sent), [`Error::Request`]
    /// when the request could not be built or sent, [`Error::NoRuntime`] outside a tokio
    /// runtime (nothing was sent).
    pub async fn send_authorized(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, Error> {
        if !in_runtime() {
            return Err(Error::NoRuntime);
        }
        let (http, request) = request.build_split();
        let mut request = request.map_err(|e| Error::Request(Arc::new(e)))?;
        let shared = &self.shared;
        let (header, token) = shared.authorization(None).await?;
        let retry = request.try_clone();
        request.headers_mut().insert(AUTHORIZATION, header);
        let response = execute(&http, request).await?;
        match shared
            .retry_with_fresh_token(None, &response, &token, retry)
            .await?
        {
            // The answer to the retry is the caller's, as it is: a fresh token that is rejected
            // too is kept, so that a resource server that rejects every token costs no loop of
            // token requests (the rule of both adapters).
            Some(retry) => {
                drop(response);
                execute(&http, retry).await
            }
            None => Ok(response),
        }
    }
}

/// Sets `name` on a reqwest request, replacing any value it had
/// (`RequestBuilder::header` appends).
///
/// # Errors
/// [`Error::Request`] when the builder had failed (a bad URL or header): nothing is sent.
pub(crate) fn with_header(
    request: reqwest::RequestBuilder,
    name: HeaderName,
    value: HeaderValue,
) -> Result<reqwest::RequestBuilder, Error> {
    let (client, request) = request.build_split();
    let mut request = request.map_err(|e| Error::Request(Arc::new(e)))?;
    request.headers_mut().insert(name, value);
    Ok(reqwest::RequestBuilder::from_parts(client, request))
}

pub(crate) async fn execute(
    http: &reqwest::Client,
    request: reqwest::Request,
) -> Result<reqwest::Response, Error> {
    http.execute(request)
        .await
        .map_err(|e| Error::Request(Arc::new(e)))
}
