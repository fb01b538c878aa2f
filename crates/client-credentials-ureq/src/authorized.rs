//! Requests to resource servers that carry a token: [`Client::authorize`],
//! [`Client::authorize_ureq`] and [`Client::send_authorized`], which applies the core's
//! verdict on the answer ([`Cache::resource_verdict`](client_credentials_core::Cache::resource_verdict)).

use std::sync::Arc;

use client_credentials_core::{AccessToken, Cache, ResourceVerdict, StaticCredential, Token};
use http::header::AUTHORIZATION;
use http::{HeaderName, HeaderValue};

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
        let (header, token) = self.with_token(header_and_token)?;
        request.headers_mut().insert(AUTHORIZATION, header);
        Ok(token)
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
        let (header, token) = self.with_token(header_and_token)?;
        Ok((with_header(request, AUTHORIZATION, header), token))
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
        let (header, token) = self.with_token(header_and_token)?;
        let (parts, body) = request.into_parts();
        let replay = body.replay().map(|body| (parts.clone(), body));
        let response = send(agent, parts, body, header)?;
        let verdict = self.verdict(&response, &token);
        let (ResourceVerdict::RetryWithFreshToken, Some((parts, body))) = (verdict, replay) else {
            return Ok(response);
        };
        let (header, fresh) = self.with_token(header_and_token)?;
        // The cache never hands out the rejected token again unless the token endpoint
        // issued that very token anew; it is not sent twice either way.
        if fresh == token {
            tracing::debug!("the token endpoint reissued the rejected token; not retried");
            return Ok(response);
        }
        tracing::debug!("the resource server rejected the token; retrying once with a fresh one");
        drop(response);
        // The answer to the retry is the caller's, as it is: a fresh token that is rejected
        // too is kept, so that a resource server that rejects every token costs no loop of
        // token requests (the rule of both adapters).
        send(agent, parts, body, header)
    }

    /// The core's verdict on the resource server's answer to a request that carried `used`.
    fn verdict(
        &self,
        response: &http::Response<ureq::Body>,
        used: &AccessToken,
    ) -> ResourceVerdict {
        if !Cache::rejects_token(response.status(), response.headers()) {
            return ResourceVerdict::Done;
        }
        let key = self.shared.default_request.cache_key();
        self.shared.input(|cache, now| {
            let verdict =
                cache.resource_verdict(now, key, response.status(), response.headers(), used);
            (verdict, verdict == ResourceVerdict::RetryWithFreshToken)
        })
    }
}

/// A header that authorizes a request: a token's `Authorization`, or a static credential;
/// and whether the HTTP client drops it on a redirect to another host, so that redirects
/// may be followed.
pub(crate) trait Credential {
    fn header(self) -> (HeaderName, HeaderValue, bool);
}

impl Credential for HeaderValue {
    fn header(self) -> (HeaderName, HeaderValue, bool) {
        (AUTHORIZATION, self, true)
    }
}

impl Credential for &StaticCredential {
    fn header(self) -> (HeaderName, HeaderValue, bool) {
        let name = self.header_name().clone();
        (
            name,
            self.header_value().clone(),
            self.dropped_on_redirect(),
        )
    }
}

/// The `Authorization` value of a token, and the access token (to report a rejection).
fn header_and_token(token: &Token) -> (HeaderValue, AccessToken) {
    (token.authorization_header(), token.access_token().clone())
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
    let (name, value, redirects) = credential.header();
    parts.headers.insert(name, value);
    transport::send_resource(agent, http::Request::from_parts(parts, body), redirects)
        .map_err(|e| Error::Request(Arc::new(e)))
}
