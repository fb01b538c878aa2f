//! Requests to resource servers that carry a token: [`Client::send_authorized`] and the
//! rule that both it and [`AuthMiddleware`](crate::AuthMiddleware) follow on the answer,
//! which is the core's ([`Cache::resource_verdict`](client_credentials_core::Cache::resource_verdict)).

use std::sync::Arc;
use std::time::Instant;

use client_credentials_core::{
    AccessToken, Cache, ConfigError, ResourceAuth, ResourceVerdict, TokenRequest,
};
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};

use crate::client::Client;
use crate::driver::{Shared, in_runtime};
use crate::error::Error;

/// A resource request's method and URI: what a DPoP proof is made for.
pub(crate) type Target<'a> = Option<(&'a Method, &'a Uri)>;

impl Shared {
    /// The headers that authorize a request to `target` with a token for `shape` (`None`:
    /// the default request, lent by the lock-free hit path when it is published). A
    /// DPoP-bound token also gets a proof of the request: its inputs are taken under the
    /// cache's lock, and it is signed after the lock is released.
    pub(crate) async fn authorization(
        self: &Arc<Self>,
        shape: Option<&TokenRequest>,
        target: Target<'_>,
    ) -> Result<ResourceAuth, Error> {
        let lent = match shape {
            Some(_) => None,
            None => self
                .background
                .slot
                .with(|token| ResourceAuth::new(&self.config, token))
                .ok(),
        };
        let mut auth = match lent {
            Some(auth) => auth,
            None => {
                let request = shape.unwrap_or(&self.default_request);
                ResourceAuth::new(&self.config, &*self.token(request).await?)
            }
        };
        if auth.needs_proof() {
            // A DPoP-bound token never goes without its proof.
            let (method, uri) = target.ok_or_else(|| ConfigError::DpopTarget(String::new()))?;
            let ticket = self.lock().dpop_ticket(Instant::now(), uri);
            auth.prove(&self.config, method, uri, &ticket)?;
        }
        Ok(auth)
    }

    /// After the answer (`status`, `headers`, or the trailers) of `answered_by` to a
    /// request sent with `used`: the core's verdict says whether to send it once more (the
    /// token was rejected and dropped, or a DPoP nonce is new). If so, and the request can
    /// be sent again (`retry_to`, its method and URI), returns the headers of that one more,
    /// and last, try. `None`: hand the answer over as it is (no rejection, or a retry
    /// cannot help, or the request cannot be replayed, or the token endpoint handed out the
    /// very token that was just rejected).
    pub(crate) async fn fresh_header_for_retry(
        self: &Arc<Self>,
        shape: Option<&TokenRequest>,
        answered_by: Option<&Uri>,
        status: StatusCode,
        headers: &HeaderMap,
        used: &ResourceAuth,
        retry_to: Option<Target<'_>>,
    ) -> Result<Option<ResourceAuth>, Error> {
        if !Cache::needs_verdict(status, headers) {
            return Ok(None);
        }
        let verdict = self.verdict(shape, answered_by, status, headers, used);
        if verdict == ResourceVerdict::Done {
            return Ok(None);
        }
        let Some(target) = retry_to else {
            tracing::debug!(?verdict, "the request body cannot be replayed, not retried");
            return Ok(None);
        };
        let retry = self.authorization(shape, target).await?;
        if !retry.may_retry(verdict, used) {
            tracing::debug!("the resource server rejected the token; no newer token to retry with");
            return Ok(None);
        }
        tracing::debug!(
            ?verdict,
            "retrying once, with a fresh token or a new DPoP nonce"
        );
        Ok(Some(retry))
    }

    /// [`Shared::fresh_header_for_retry`] for a reqwest answer: the request to send again
    /// (`retry`, when it could be cloned), with its new headers.
    pub(crate) async fn retry_with_fresh_token(
        self: &Arc<Self>,
        shape: Option<&TokenRequest>,
        response: &reqwest::Response,
        used: &ResourceAuth,
        retry: Option<reqwest::Request>,
    ) -> Result<Option<reqwest::Request>, Error> {
        // The origin that answered (after any redirect the client followed) is the one
        // whose nonce the answer carries.
        let answered_by = reqwest_uri(response.url());
        let Some(mut retry) = retry else {
            // Nothing to send again; the verdict still drops a rejected token and
            // remembers a nonce.
            if Cache::needs_verdict(response.status(), response.headers()) {
                let status = response.status();
                let _ = self.verdict(
                    shape,
                    answered_by.as_ref(),
                    status,
                    response.headers(),
                    used,
                );
            }
            return Ok(None);
        };
        let uri = reqwest_uri(retry.url());
        let target = uri.as_ref().map(|uri| (retry.method(), uri));
        let auth = self
            .fresh_header_for_retry(
                shape,
                answered_by.as_ref(),
                response.status(),
                response.headers(),
                used,
                Some(target),
            )
            .await?;
        Ok(auth.map(|auth| {
            auth.apply(retry.headers_mut());
            retry
        }))
    }

    /// The core's verdict on an answer (`status`, `headers`) to a request to `uri` that
    /// carried `used`: a rejected token is dropped, a DPoP nonce remembered.
    pub(crate) fn verdict(
        &self,
        shape: Option<&TokenRequest>,
        uri: Option<&Uri>,
        status: StatusCode,
        headers: &HeaderMap,
        used: &ResourceAuth,
    ) -> ResourceVerdict {
        let key = shape.unwrap_or(&self.default_request).cache_key();
        let now = Instant::now();
        let fallback = Uri::default();
        let mut cache = self.lock();
        let verdict =
            cache.resource_verdict(now, key, uri.unwrap_or(&fallback), status, headers, used);
        self.drain_and_notify(cache);
        verdict
    }

    /// Remembers the `DPoP-Nonce` of an answer that gets no verdict (the answer to a
    /// retry) for `uri`'s origin.
    pub(crate) fn note_dpop_nonce(&self, uri: Option<&Uri>, headers: &HeaderMap) {
        if let Some(uri) = uri
            && headers.contains_key(client_credentials_core::resource::DPOP_NONCE)
        {
            let _ = self.lock().handle_dpop_nonce(uri, headers);
        }
    }
}

/// A reqwest URL as an `http` URI (what the core takes). Every URL that reqwest sends
/// parses as one.
pub(crate) fn reqwest_uri(url: &reqwest::Url) -> Option<Uri> {
    url.as_str().parse().ok()
}

impl Client {
    /// Sets `Authorization` on an `http` request to a valid token for the default request
    /// shape, replacing any previous value. The header value is marked sensitive. Returns the
    /// access token, to pass to [`Client::invalidate`] if the resource server rejects it.
    /// The token is lent ([`Client::with_token`]), so that this scales across cores.
    /// With a DPoP-bound token the request also gets its `DPoP` proof, for this method and
    /// URI only; a `401` with `WWW-Authenticate: DPoP error="use_dpop_nonce"` is not a
    /// rejection of the token (do not invalidate it): `send_authorized` answers it for you.
    ///
    /// # Errors
    /// As [`Client::token`].
    pub async fn authorize<B>(&self, request: &mut http::Request<B>) -> Result<AccessToken, Error> {
        let target = Some((request.method(), request.uri()));
        let auth = self.shared.authorization(None, target).await?;
        auth.apply(request.headers_mut());
        Ok(auth.into_access_token())
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
        let (client, request) = request.build_split();
        let mut request = request.map_err(|e| Error::Request(Arc::new(e)))?;
        let uri = reqwest_uri(request.url());
        let target = uri.as_ref().map(|uri| (request.method(), uri));
        let auth = self.shared.authorization(None, target).await?;
        auth.apply(request.headers_mut());
        Ok((
            reqwest::RequestBuilder::from_parts(client, request),
            auth.into_access_token(),
        ))
    }

    /// Sends a request with a valid token for the default request shape, for users without
    /// `reqwest-middleware`. It behaves as [`AuthMiddleware`](crate::AuthMiddleware): when
    /// the resource server rejects the token (a 401, or `WWW-Authenticate: Bearer
    /// error="invalid_token"`), it drops that token and, if the request can be cloned, sends
    /// it once more with a fresh token; the answer to that retry is returned as it is. An
    /// `insufficient_scope` answer is not retried (a new token has the same scopes). Without
    /// a token, nothing is sent. A DPoP-bound token goes with a proof of each request, and a
    /// `use_dpop_nonce` challenge is retried once with the same token and the new nonce.
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
        let uri = reqwest_uri(request.url());
        let target = uri.as_ref().map(|uri| (request.method(), uri));
        let auth = shared.authorization(None, target).await?;
        let retry = request.try_clone();
        auth.apply(request.headers_mut());
        let response = execute(&http, request).await?;
        match shared
            .retry_with_fresh_token(None, &response, &auth, retry)
            .await?
        {
            // The answer to the retry is the caller's, as it is: a fresh token that is rejected
            // too is kept, so that a resource server that rejects every token costs no loop of
            // token requests (the rule of both adapters). Its DPoP nonce is remembered.
            Some(retry) => {
                drop(response);
                let response = execute(&http, retry).await?;
                shared.note_dpop_nonce(reqwest_uri(response.url()).as_ref(), response.headers());
                Ok(response)
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
