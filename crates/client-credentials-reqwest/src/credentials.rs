//! [`Credentials`]: what authorizes requests to resource servers, a [`Client`] of the
//! client credentials grant or a [`StaticCredential`](crate::StaticCredential).

use std::fmt;
use std::sync::Arc;

use client_credentials_core::{StaticCredential, TokenParams, TokenRequest};

use crate::authorized::{execute, with_header};
use crate::client::Client;
use crate::driver::in_runtime;
use crate::error::Error;

client_credentials_core::__credentials! {
    /// What authorizes a service's requests to resource servers: tokens of the client
    /// credentials grant from a [`Client`] (cached, refreshed, a rejected token retried
    /// once), or a [`StaticCredential`](crate::StaticCredential), a fixed bearer token or
    /// API key with no token endpoint and no refresh. The middleware takes either
    /// ([`AuthMiddleware::new`](crate::AuthMiddleware::new)), so that a deployment
    /// switches from an API key to OAuth by configuration.
    ///
    /// ```
    /// use client_credentials::reqwest::{AuthMiddleware, Credentials, StaticCredential};
    ///
    /// let credentials = Credentials::from(StaticCredential::bearer("long-lived-token")?);
    /// let http = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
    ///     .with(AuthMiddleware::new(credentials.clone()))
    ///     .build();
    /// assert!(!format!("{credentials:?}").contains("long-lived-token"));
    /// # let _ = http;
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
    pub async fn authorize<B>(&self, request: &mut http::Request<B>) -> Result<(), Error> {
        match self {
            Self::Client(client) => client.authorize(request).await.map(drop),
            Self::Static(credential) => {
                credential.authorize(request);
                Ok(())
            }
        }
    }

    /// Adds the credential to a reqwest request ([`Client::authorize_reqwest`] for a
    /// client).
    ///
    /// # Errors
    /// As [`Credentials::authorize`].
    pub async fn authorize_reqwest(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::RequestBuilder, Error> {
        match self {
            Self::Client(client) => client
                .authorize_reqwest(request)
                .await
                .map(|(request, _)| request),
            Self::Static(credential) => with_header(
                request,
                credential.header_name().clone(),
                credential.header_value().clone(),
            ),
        }
    }

    /// Sends a request with the credential: for a client, as [`Client::send_authorized`]
    /// (a rejected token is dropped and the request sent once more with a fresh one); a
    /// static credential is sent once, and a 401 is the caller's answer. reqwest follows
    /// redirects as its client is configured and carries a key outside `Authorization` to
    /// the redirect's host: send such a key with a client built with
    /// `redirect::Policy::none()`.
    ///
    /// # Errors
    /// As [`Client::send_authorized`].
    pub async fn send_authorized(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, Error> {
        match self {
            Self::Client(client) => client.send_authorized(request).await,
            Self::Static(credential) => {
                if !in_runtime() {
                    return Err(Error::NoRuntime);
                }
                let (http, request) = request.build_split();
                let mut request = request.map_err(|e| Error::Request(Arc::new(e)))?;
                request
                    .headers_mut()
                    .insert(credential.header_name(), credential.header_value().clone());
                execute(&http, request).await
            }
        }
    }
}

/// What a middleware or a layer authorizes requests with: a client's tokens for one request
/// shape, or a static credential.
#[derive(Clone)]
pub(crate) enum Source {
    Client {
        client: Client,
        /// The request shape; `None`: the client's default, read lock-free when published.
        request: Option<TokenRequest>,
    },
    Static(StaticCredential),
}

impl Source {
    pub(crate) fn new(credentials: Credentials) -> Self {
        match credentials {
            Credentials::Client(client) => Self::Client {
                client,
                request: None,
            },
            Credentials::Static(credential) => Self::Static(credential),
        }
    }

    /// Tokens for these parameters, validated now.
    pub(crate) fn with_params(client: Client, params: &TokenParams) -> Result<Self, Error> {
        let request = Some(client.config().request(params)?);
        Ok(Self::Client { client, request })
    }

    pub(crate) fn client(&self) -> Option<&Client> {
        match self {
            Self::Client { client, .. } => Some(client),
            Self::Static(_) => None,
        }
    }

    /// `Debug` of the middleware or layer `name` that holds this source (the request
    /// parameters or the redacted credential; never a secret).
    pub(crate) fn debug(&self, name: &str, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Client { client, request } => f
                .debug_struct(name)
                .field("client", client)
                .field(
                    "params",
                    request
                        .as_ref()
                        .unwrap_or(&client.shared.default_request)
                        .params(),
                )
                .finish(),
            Self::Static(credential) => f
                .debug_struct(name)
                .field("credential", credential)
                .finish(),
        }
    }
}
