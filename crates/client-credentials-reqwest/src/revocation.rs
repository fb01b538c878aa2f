//! Revocation (RFC 7009) and introspection (RFC 7662): one request each, built and read by
//! the core's pending types (which also keep the token out of every error), sent here.

use std::time::{Instant, SystemTime};

use client_credentials_core::driver::{self, Exchange};
use client_credentials_core::{AccessToken, Endpoint, EndpointError, HttpRequest, Introspection};
use tracing::Instrument as _;

use crate::client::Client;
use crate::driver::{Shared, in_runtime};
use crate::error::Error;
use crate::transport;

/// Revocation (RFC 7009) and introspection (RFC 7662): one request each, sent at once, with
/// the same client authentication, reqwest client, timeouts, redirect policy and body cap as
/// token fetches, but outside the token cache (no single flight, no backoff).
impl Client {
    /// Revokes `token` at the configured revocation endpoint (RFC 7009) and drops it from
    /// the cache, whichever request shape holds it.
    ///
    /// The token is dropped before the request is sent, whatever the outcome (and even if
    /// this future is dropped before it completes): from then on, no caller is handed a
    /// token that is being revoked, and the next call for its request shape fetches a new
    /// one. A server that does not know the token answers success too (RFC 7009 §2.2).
    ///
    /// ```
    /// # use client_credentials_testkit::{Reply, Router, TestServer, TokenEndpoint};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = TestServer::start(
    /// #     Router::new()
    /// #         .route("/token", TokenEndpoint::new())
    /// #         .route("/revoke", Reply::new(200)),
    /// # );
    /// # let (token_url, revocation_url) = (server.url("/token"), server.url("/revoke"));
    /// use client_credentials::reqwest::{Client, Config};
    ///
    /// let config = Config::builder()
    ///     .token_url(token_url)
    ///     .revocation_url(revocation_url)
    ///     .client_id("my-service")
    ///     .client_secret("s3cr3t")
    ///     .build()?;
    /// let client = Client::new(config)?;
    /// let token = client.token().await?;
    /// client.revoke(token.access_token()).await?;
    /// assert_ne!(client.token().await?.access_token(), token.access_token());
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// [`Error::Config`] with [`ConfigError::MissingEndpoint`](crate::ConfigError::MissingEndpoint)
    /// when no revocation endpoint is configured (nothing is sent, nothing is dropped);
    /// [`Error::Endpoint`] when the server refused (`invalid_client`, `unsupported_token_type`…)
    /// or failed, the body was over the cap, or the transport failed; [`Error::NoRuntime`]
    /// outside a tokio runtime (the token is dropped, nothing is sent).
    pub async fn revoke(&self, token: &AccessToken) -> Result<(), Error> {
        let signed = self.shared.assertion_input();
        let (request, pending) = self.shared.config.revocation_at(token, Some(signed))?;
        let span = client_credentials_core::__exchange_span!(
            "token_revoke",
            request.uri(),
            revocation_url = %request.uri(),
            client_id = self.shared.config.client_id(),
        );
        async {
            let dropped = self.shared.invalidate(token);
            tracing::debug!(dropped, "sending revocation request");
            let exchange = self.shared.exchange(request).await?;
            let result =
                driver::finish_revocation(pending, SystemTime::now(), exchange).map_err(|error| {
                    Error::Endpoint(Box::new(EndpointError {
                        endpoint: Endpoint::Revocation,
                        error,
                    }))
                });
            match &result {
                Ok(()) => tracing::debug!("token revoked"),
                Err(error) => tracing::warn!(%error, "token revocation failed"),
            }
            result
        }
        .instrument(span)
        .await
    }

    /// Asks the configured introspection endpoint (RFC 7662) what it knows about `token`:
    /// whether it is active, its client, scopes, expiry… The cache is left as it is, even
    /// for a token reported inactive: pass it to [`Client::invalidate`] if that should
    /// drop it.
    ///
    /// # Errors
    /// [`Error::Config`] with [`ConfigError::MissingEndpoint`](crate::ConfigError::MissingEndpoint)
    /// when no introspection endpoint is configured (nothing is sent); [`Error::Endpoint`] when
    /// the server refused or failed, the answer has no boolean `active`, the body was over
    /// the cap, or the transport failed; [`Error::NoRuntime`] outside a tokio runtime.
    pub async fn introspect(&self, token: &AccessToken) -> Result<Introspection, Error> {
        let signed = self.shared.assertion_input();
        let (request, pending) = self.shared.config.introspection_at(token, Some(signed))?;
        let span = client_credentials_core::__exchange_span!(
            "token_introspect",
            request.uri(),
            introspection_url = %request.uri(),
            client_id = self.shared.config.client_id(),
        );
        async {
            tracing::debug!("sending introspection request");
            let exchange = self.shared.exchange(request).await?;
            let result = driver::finish_introspection(pending, SystemTime::now(), exchange)
                .map_err(|error| {
                    Error::Endpoint(Box::new(EndpointError {
                        endpoint: Endpoint::Introspection,
                        error,
                    }))
                });
            match &result {
                Ok(info) => tracing::debug!(active = info.active, "token introspected"),
                Err(error) => tracing::warn!(%error, "token introspection failed"),
            }
            result
        }
        .instrument(span)
        .await
    }
}

impl Shared {
    /// The time and `jti` nonce of a signed assertion sent now (the cache's stream).
    fn assertion_input(&self) -> (SystemTime, u128) {
        self.lock().assertion_input(Instant::now())
    }

    /// Sends a request that is not a token fetch through the same transport (with the
    /// client assertion read from its source, if the client has one), and reads the whole
    /// answer through the body cap.
    async fn exchange(&self, request: HttpRequest) -> Result<Exchange, Error> {
        if !in_runtime() {
            return Err(Error::NoRuntime);
        }
        let request =
            match transport::with_assertion(&self.config, request, self.timeouts.overall).await {
                Ok(request) => request,
                Err(error) => return Ok(Err(client_credentials_core::Failure::Error(error))),
            };
        let started = Instant::now();
        let exchange = transport::send(
            &self.http,
            request,
            self.timeouts.overall,
            self.config.max_body(),
        )
        .await;
        client_credentials_core::__record_exchange!(&tracing::Span::current(), &exchange);
        let elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        if let Ok(reply) = &exchange {
            tracing::debug!(
                status = reply.status.as_u16(),
                elapsed_ms,
                "response received"
            );
        }
        Ok(exchange)
    }
}
