//! Requests to resource servers that carry a token: [`Client::authorize`],
//! [`Client::authorize_ureq`] and [`Client::send_authorized`], which applies the core's
//! verdict on the answer ([`Cache::resource_verdict`](client_credentials_core::Cache::resource_verdict)).

use std::sync::Arc;

use client_credentials_core::{
    AccessToken, Cache, ConfigError, ResourceAuth, ResourceVerdict, StaticCredential,
};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Uri};

use crate::client::Client;
use crate::error::Error;
use crate::transport;

/// A request body that [`Client::send_authorized`] can send, and that says whether it can be
/// sent a second time, after the resource server rejected the first token.
///
/// Implemented for every body that ureq sends (ureq's `AsSendBody` is sealed, so this trait
/// is in effect sealed too):
///
/// - in memory, replayable: `()`, `&[u8]`, `&[u8; N]`, `&str`, `&String`, `&Vec<u8>`,
///   `String`, `Vec<u8>`. An owned body is copied once per call to keep it for a retry;
///   pass a borrowed one to avoid the copy.
/// - read as it is sent, not replayable: [`ureq::SendBody`] (a reader, a JSON or multipart
///   stream), [`std::fs::File`] and `&File` (a second send would start where the first
///   stopped). A request with such a body is sent once, whatever the answer.
pub trait AuthorizedBody: ureq::AsSendBody + Sized {
    /// A copy to send again, or `None` when the body can be sent only once.
    fn replay(&self) -> Option<Self>;
}

macro_rules! replayable {
    ($($body:ty),* $(,)?) => {$(
        impl AuthorizedBody for $body {
            fn replay(&self) -> Option<Self> {
                Some(self.clone())
            }
        }
    )*};
}

replayable!((), &[u8], &str, &String, &Vec<u8>, String, Vec<u8>);

impl<const N: usize> AuthorizedBody for &[u8; N] {
    fn replay(&self) -> Option<Self> {
        Some(self)
    }
}

macro_rules! send_once {
    ($($body:ty),* $(,)?) => {$(
        impl AuthorizedBody for $body {
            fn replay(&self) -> Option<Self> {
                None
            }
        }
    )*};
}

send_once!(ureq::SendBody<'_>, std::fs::File, &std::fs::File);

impl Client {
    /// Sets `Authorization` on an `http` request to a valid token for the default request
    /// shape, replacing any previous value. The header value is marked sensitive. Returns the
    /// access token, to pass to [`Client::invalidate`] if the resource server rejects it
    /// ([`Client::send_authorized`] does that for you). The token is lent
    /// ([`Client::with_token`]), so that this scales across cores.
    /// With a DPoP-bound token the request also gets its `DPoP` proof, for this method and
    /// URI only; a `401` with `WWW-Authenticate: DPoP error="use_dpop_nonce"` is not a
    /// rejection of the token (do not invalidate it): `send_authorized` answers it for you.
    ///
    /// ```no_run
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let config = client_credentials_ureq::Config::builder()
    /// #     .token_url("https://auth.example.com/token").client_id("c").client_secret("s").build()?;
    /// # let client = client_credentials_ureq::Client::new(config);
    /// let mut request = http::Request::get("https://api.example.com/orders").body(())?;
    /// let token = client.authorize(&mut request)?;
    /// let response = client.agent().run(request)?;
    /// // If it rejects the token: `client.invalidate(&token)`.
    /// # let _ = (response, token);
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// As [`Client::token`].
    pub fn authorize<B>(&self, request: &mut http::Request<B>) -> Result<AccessToken, Error> {
        let auth = self.resource_auth(Some((request.method(), request.uri())))?;
        auth.apply(request.headers_mut());
        Ok(auth.into_access_token())
    }

    /// Adds `Authorization` with a valid token for the default request shape to a ureq
    /// request, and returns it with the access token (to pass to [`Client::invalidate`] on a
    /// 401). The token is lent, as in [`Client::authorize`].
    ///
    /// ```no_run
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let config = client_credentials_ureq::Config::builder()
    /// #     .token_url("https://auth.example.com/token").client_id("c").client_secret("s").build()?;
    /// # let client = client_credentials_ureq::Client::new(config);
    /// let agent = client.agent(); // or yours, with a crypto provider of its own
    /// let (request, token) = client.authorize_ureq(agent.get("https://api.example.com/orders"))?;
    /// let response = request.call()?;
    /// # let _ = (response, token);
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// As [`Client::token`].
    pub fn authorize_ureq<B>(
        &self,
        request: ureq::RequestBuilder<B>,
    ) -> Result<(ureq::RequestBuilder<B>, AccessToken), Error> {
        // A builder that failed has no method or URI; it sends nothing, so needs no proof.
        let target = request
            .method_ref()
            .cloned()
            .zip(request.uri_ref().cloned());
        let auth = self.resource_auth(target.as_ref().map(|(m, u)| (m, u)))?;
        let mut request = request;
        if let Some(headers) = request.headers_mut() {
            auth.apply(headers);
        }
        Ok((request, auth.into_access_token()))
    }

    /// Sends a request to a resource server with a valid token for the default request
    /// shape, on [`Client::agent`], and handles a rejection of the token:
    ///
    /// - When the resource server rejects the token (a 401, or `WWW-Authenticate: Bearer
    ///   error="invalid_token"`), that token, and only that one, is dropped from the cache,
    ///   and the request is sent once more with a fresh token, if its body can be replayed
    ///   ([`AuthorizedBody`]). The answer to the retry is returned as it is; if it rejects the
    ///   fresh token too, that one is dropped as well, and there is no third try.
    /// - `insufficient_scope` is not retried (a new token has the same scopes), nor is a
    ///   rejection while the cache backs off because resource servers keep rejecting fresh
    ///   tokens (the early-rejection throttle of [`Policy`](crate::Policy)).
    /// - Without a token, nothing is sent; a retry never carries the rejected token.
    /// - With a DPoP key ([`ConfigBuilder::dpop`](client_credentials_core::ConfigBuilder::dpop))
    ///   and a DPoP-bound token, the request carries `Authorization: DPoP …` and a proof of
    ///   it (a new one for the retry); a `use_dpop_nonce` challenge with a new nonce is
    ///   retried once with the same token and the nonce, which the next requests to that
    ///   origin carry from the start. No redirect is followed: a proof names one URI.
    ///
    /// Any other answer is returned as it is: a status is never an error here, whatever
    /// the agent's configuration (the agent's timeouts, proxy and redirect settings apply).
    ///
    /// ```no_run
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let config = client_credentials_ureq::Config::builder()
    /// #     .token_url("https://auth.example.com/token").client_id("c").client_secret("s").build()?;
    /// # let client = client_credentials_ureq::Client::new(config);
    /// let request = http::Request::post("https://api.example.com/orders")
    ///     .header("content-type", "application/json")
    ///     .body(r#"{"item":42}"#)?; // a &str: replayable
    /// let mut response = client.send_authorized(request)?;
    /// let body = response.body_mut().read_to_string()?;
    /// # let _ = body;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// [`Error::Token`] when no token could be had (nothing was sent, or, for the retry,
    /// nothing more), [`Error::Request`] when ureq could not send the request or read the
    /// answer's head.
    pub fn send_authorized<B: AuthorizedBody>(
        &self,
        request: http::Request<B>,
    ) -> Result<http::Response<ureq::Body>, Error> {
        self.send_authorized_with(&self.shared.agent, request)
    }

    /// [`Client::send_authorized`] on another agent than the client's (one with the
    /// timeouts, pool or TLS roots of the resource server).
    ///
    /// # Errors
    /// As [`Client::send_authorized`].
    pub fn send_authorized_with<B: AuthorizedBody>(
        &self,
        agent: &ureq::Agent,
        request: http::Request<B>,
    ) -> Result<http::Response<ureq::Body>, Error> {
        let (parts, body) = request.into_parts();
        let auth = self.resource_auth(Some((&parts.method, &parts.uri)))?;
        let uri = parts.uri.clone();
        let replay = body.replay().map(|body| (parts.clone(), body));
        let response = send(agent, parts, body, &auth)?;
        let verdict = self.verdict(&uri, &response, &auth);
        let Some((parts, body)) = replay.filter(|_| verdict != ResourceVerdict::Done) else {
            return Ok(response);
        };
        let retry = self.resource_auth(Some((&parts.method, &parts.uri)))?;
        if !retry.may_retry(verdict, &auth) {
            tracing::debug!("the token endpoint reissued the rejected token; not retried");
            return Ok(response);
        }
        tracing::debug!(
            ?verdict,
            "retrying once, with a fresh token or a new DPoP nonce"
        );
        drop(response);
        // The answer to the retry is the caller's, as it is: a fresh token that is rejected
        // too is kept, so that a resource server that rejects every token costs no loop of
        // token requests (the rule of both adapters). Its DPoP nonce is remembered.
        let response = send(agent, parts, body, &retry)?;
        if response
            .headers()
            .contains_key(client_credentials_core::resource::DPOP_NONCE)
        {
            self.shared
                .input(|cache, _| ((), cache.handle_dpop_nonce(&uri, response.headers())));
        }
        Ok(response)
    }

    /// The headers that authorize a `method` request to `uri` (`target`), from the token
    /// lent by the hit path. A DPoP-bound token also gets a proof of the request: its
    /// inputs are taken under the cache's lock, and it is signed after the lock is
    /// released. Without a `target`, no proof.
    fn resource_auth(&self, target: Option<(&Method, &Uri)>) -> Result<ResourceAuth, Error> {
        let config = &self.shared.config;
        let mut auth = self.with_token(|token| ResourceAuth::new(config, token))?;
        if auth.needs_proof() {
            // A DPoP-bound token never goes without its proof.
            let (method, uri) = target.ok_or_else(|| ConfigError::DpopTarget(String::new()))?;
            let ticket = self
                .shared
                .input(|cache, now| (cache.dpop_ticket(now, uri), false));
            auth.prove(config, method, uri, &ticket)?;
        }
        Ok(auth)
    }

    /// The core's verdict on the resource server's answer to a request to `uri` that
    /// carried `used`.
    fn verdict(
        &self,
        uri: &Uri,
        response: &http::Response<ureq::Body>,
        used: &ResourceAuth,
    ) -> ResourceVerdict {
        if !Cache::needs_verdict(response.status(), response.headers()) {
            return ResourceVerdict::Done;
        }
        let key = self.shared.default_request.cache_key();
        self.shared.input(|cache, now| {
            let verdict =
                cache.resource_verdict(now, key, uri, response.status(), response.headers(), used);
            (verdict, verdict == ResourceVerdict::RetryWithFreshToken)
        })
    }
}

/// What authorizes a request: a token's headers, or a static credential; and whether the
/// HTTP client drops them on a redirect to another host, so that redirects may be followed.
pub(crate) trait Credential {
    /// Sets the credential's headers; returns whether redirects may be followed.
    fn apply(self, headers: &mut HeaderMap) -> bool;
}

impl Credential for &ResourceAuth {
    fn apply(self, headers: &mut HeaderMap) -> bool {
        ResourceAuth::apply(self, headers);
        // A DPoP proof is bound to the URI: a redirect would carry a proof of another one.
        self.proof().is_none()
    }
}

impl Credential for &StaticCredential {
    fn apply(self, headers: &mut HeaderMap) -> bool {
        headers.insert(self.header_name().clone(), self.header_value().clone());
        self.dropped_on_redirect()
    }
}

/// Sets `name` on a ureq request, replacing any value it had (`RequestBuilder::header`
/// appends). A builder that already failed is returned as it is: its error comes back
/// when it is sent, with nothing sent.
pub(crate) fn with_header<B>(
    mut request: ureq::RequestBuilder<B>,
    name: HeaderName,
    value: HeaderValue,
) -> ureq::RequestBuilder<B> {
    if let Some(headers) = request.headers_mut() {
        headers.insert(name, value);
    }
    request
}

/// Sends one request to the resource server with `credential`'s header. A credential
/// that HTTP clients keep on a redirect to another host (an API key outside
/// `Authorization`) is sent with no redirect followed: the 3xx is the caller's.
pub(crate) fn send<B: AuthorizedBody>(
    agent: &ureq::Agent,
    mut parts: http::request::Parts,
    body: B,
    credential: impl Credential,
) -> Result<http::Response<ureq::Body>, Error> {
    let redirects = credential.apply(&mut parts.headers);
    transport::send_resource(agent, http::Request::from_parts(parts, body), redirects)
        .map_err(|e| Error::Request(Arc::new(e)))
}
