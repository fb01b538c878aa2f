//! [`Credentials`]: what authorizes requests to resource servers, a [`Client`] of the
//! client credentials grant or a [`StaticCredential`](crate::StaticCredential).

use crate::authorized::{self, AuthorizedBody};
use crate::client::Client;
use crate::error::Error;

client_credentials_core::__credentials! {
    /// What authorizes a service's requests to resource servers: tokens of the client
    /// credentials grant from a [`Client`] (cached, refreshed, retried once on a 401), or a
    /// [`StaticCredential`](crate::StaticCredential), a fixed bearer token or API key with
    /// no token endpoint and no refresh. Code that takes `Credentials` works with either,
    /// so that a deployment can switch from an API key to OAuth by configuration.
    ///
    /// ```
    /// use client_credentials::ureq::{Credentials, StaticCredential};
    ///
    /// let credentials = Credentials::from(StaticCredential::api_key("x-api-key", "k-93f1c2")?);
    /// let mut request = http::Request::get("https://api.example.com/orders").body(())?;
    /// credentials.authorize(&mut request)?;
    /// assert_eq!(request.headers()["x-api-key"], "k-93f1c2");
    /// assert!(!format!("{credentials:?}").contains("k-93f1c2"));
    /// # Ok::<_, Box<dyn std::error::Error>>(())
    /// ```
    Client
}

impl Credentials {
    /// Sets the credential on an `http` request, replacing any previous value: a valid
    /// token in `Authorization` ([`Client::authorize`]), or the static credential's header.
    ///
    /// # Errors
    /// For a client, as [`Client::token`]; a static credential never fails.
    pub fn authorize<B>(&self, request: &mut http::Request<B>) -> Result<(), Error> {
        match self {
            Self::Client(client) => client.authorize(request).map(drop),
            Self::Static(credential) => {
                credential.authorize(request);
                Ok(())
            }
        }
    }

    /// Adds the credential to a ureq request ([`Client::authorize_ureq`] for a client).
    ///
    /// # Errors
    /// As [`Credentials::authorize`].
    pub fn authorize_ureq<B>(
        &self,
        request: ureq::RequestBuilder<B>,
    ) -> Result<ureq::RequestBuilder<B>, Error> {
        match self {
            Self::Client(client) => client.authorize_ureq(request).map(|(request, _)| request),
            Self::Static(credential) => Ok(authorized::with_header(
                request,
                credential.header_name().clone(),
                credential.header_value().clone(),
            )),
        }
    }

    /// Sends a request with the credential on `agent`: for a client, as
    /// [`Client::send_authorized_with`] (a rejected token is dropped and the request sent
    /// once more with a fresh one); a static credential is sent once, and a 401 is the
    /// caller's answer. A key in a header other than `Authorization` is sent with no
    /// redirect followed (HTTP clients would carry it to another host): a 3xx is returned
    /// as it is.
    ///
    /// # Errors
    /// As [`Client::send_authorized`].
    pub fn send_authorized_with<B: AuthorizedBody>(
        &self,
        agent: &ureq::Agent,
        request: http::Request<B>,
    ) -> Result<http::Response<ureq::Body>, Error> {
        match self {
            Self::Client(client) => client.send_authorized_with(agent, request),
            Self::Static(credential) => {
                let (parts, body) = request.into_parts();
                authorized::send(agent, parts, body, credential)
            }
        }
    }
}
