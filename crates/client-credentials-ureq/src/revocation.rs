//! Revocation (RFC 7009) and introspection (RFC 7662): one request each, sent at once. The
//! core builds them and reads the answers with the token redacted
//! ([`PendingRevocation`](client_credentials_core::PendingRevocation),
//! [`PendingIntrospection`](client_credentials_core::PendingIntrospection)); this file sends.

use std::time::SystemTime;

use client_credentials_core::driver::{self, Exchange};
use client_credentials_core::{AccessToken, Endpoint, EndpointError, HttpRequest, Introspection};

use crate::client::Client;
use crate::error::Error;
use crate::transport;

/// Revocation (RFC 7009) and introspection (RFC 7662): one request each, sent at once, with
/// the same client authentication, agent, timeouts, redirect policy and body cap as token
/// fetches, but outside the token cache (no single flight, no backoff).
impl Client {
    /// Revokes `token` at the configured revocation endpoint (RFC 7009) and drops it from
    /// the cache, whichever request shape holds it.
    ///
    /// The token is dropped before the request is sent, whatever the outcome: from then
    /// on, no caller is handed a token that is being revoked, and the next call for its
    /// request shape fetches a new one. A server that does not know the token answers
    /// success too (RFC 7009 §2.2).
    ///
    /// ```
    /// # use client_credentials_testkit::{Reply, Router, TestServer, TokenEndpoint};
    /// # let server = TestServer::start(
    /// #     Router::new()
    /// #         .route("/token", TokenEndpoint::new())
    /// #         .route("/revoke", Reply::new(200)),
    /// # );
    /// # let (token_url, revocation_url) = (server.url("/token"), server.url("/revoke"));
    /// use client_credentials::ureq::{Client, Config};
    ///
    /// let config = Config::builder()
    ///     .token_url(token_url)
    ///     .revocation_url(revocation_url)
    ///     .client_id("my-service")
    ///     .client_secret("s3cr3t")
    ///     .build()?;
    /// let client = Client::new(config);
    /// let token = client.token()?;
    /// client.revoke(token.access_token())?;
    /// assert_ne!(client.token()?.access_token(), token.access_token());
    /// # Ok::<_, Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Config`] with [`ConfigError::MissingEndpoint`](crate::ConfigError::MissingEndpoint)
    /// when no revocation endpoint is configured (nothing is sent, nothing is dropped);
    /// [`Error::Endpoint`] when the server refused (`invalid_client`, `unsupported_token_type`…)
    /// or failed, the body was over the cap, or the transport failed. No error quotes the
    /// token.
    pub fn revoke(&self, token: &AccessToken) -> Result<(), Error> {
        let config = &self.shared.config;
        let (request, pending) = config.revocation_at(token, Some(self.assertion_input()))?;
        let span = client_credentials_core::__exchange_span!(
            "token_revoke",
            request.uri(),
            revocation_url = %request.uri(),
            client_id = config.client_id(),
        );
        let _entered = span.enter();
        let dropped = self.invalidate(token);
        tracing::debug!(dropped, "sending revocation request");
        let result = driver::finish_revocation(pending, SystemTime::now(), self.exchange(request))
            .map_err(|error| {
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

    /// Asks the configured introspection endpoint (RFC 7662) what it knows about `token`:
    /// whether it is active, its client, scopes, expiry… The cache is left as it is, even
    /// for a token reported inactive: pass it to [`Client::invalidate`] if that should
    /// drop it.
    ///
    /// # Errors
    /// [`Error::Config`] with [`ConfigError::MissingEndpoint`](crate::ConfigError::MissingEndpoint)
    /// when no introspection endpoint is configured (nothing is sent); [`Error::Endpoint`] when
    /// the server refused or failed, the answer has no boolean `active`, the body was over
    /// the cap, or the transport failed. No error quotes the token.
    pub fn introspect(&self, token: &AccessToken) -> Result<Introspection, Error> {
        let config = &self.shared.config;
        let (request, pending) = config.introspection_at(token, Some(self.assertion_input()))?;
        let span = client_credentials_core::__exchange_span!(
            "token_introspect",
            request.uri(),
            introspection_url = %request.uri(),
            client_id = config.client_id(),
        );
        let _entered = span.enter();
        tracing::debug!("sending introspection request");
        let result =
            driver::finish_introspection(pending, SystemTime::now(), self.exchange(request))
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

    /// The time and `jti` nonce of a signed assertion sent now (the cache's stream).
    fn assertion_input(&self) -> (SystemTime, u128) {
        self.shared
            .lock()
            .assertion_input(std::time::Instant::now())
    }

    /// Sends a request that is not a token fetch through the same transport (with the
    /// client assertion read from its source, if the client has one), and reads the whole
    /// answer through the body cap.
    fn exchange(&self, request: HttpRequest) -> Exchange {
        let shared = &self.shared;
        let request = transport::with_assertion(&shared.config, request, shared.timeouts.overall)?;
        transport::exchange(
            &shared.agent,
            request,
            shared.timeouts,
            shared.config.max_body(),
        )
    }
}
