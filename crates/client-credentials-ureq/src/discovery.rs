//! Discovery of an authorization server's metadata (RFC 8414, falling back to OpenID
//! Connect Discovery): the core's [`Discovery`] decides what to ask and what the answer
//! means; this file sends its requests on ureq and hands the answers back.

use std::time::SystemTime;

use client_credentials_core::driver::Timeouts;
use client_credentials_core::{Discovery, DiscoveryStep, Policy, ServerMetadata};

use crate::error::Error;
use crate::transport;

/// Reads the metadata of `issuer` on a default agent, blocking. The core's [`Discovery`]
/// chooses the document (RFC 8414's, then OpenID Connect's after a 404) and checks it (the
/// exact issuer, `https` endpoints); this function only sends. The agent is configured as
/// [`Client::new`](crate::Client::new)'s: HTTP statuses reach the parser, redirects are
/// refused, the default timeouts apply, and the body is read through the core's cap. Feed
/// the result to [`ConfigBuilder::from_metadata`](crate::core::ConfigBuilder::from_metadata).
///
/// ```
/// # use client_credentials_testkit::{Metadata, Router, TestServer, TokenEndpoint};
/// # let server = TestServer::start(
/// #     Router::new()
/// #         .route("/.well-known/oauth-authorization-server", Metadata::new(""))
/// #         .route("/token", TokenEndpoint::new().client("my-service", "s3cr3t")),
/// # );
/// # let issuer = server.url("");
/// use client_credentials::ureq::{Client, discover};
/// use client_credentials::ConfigBuilder;
///
/// let metadata = discover(&issuer)?; // "https://auth.example.com/tenant"
/// let config = ConfigBuilder::from_metadata(&metadata)
///     .client_id("my-service")
///     .client_secret("s3cr3t")
///     .build()?;
/// let token = Client::new(config).token()?;
/// # assert_eq!(token.token_type(), "Bearer");
/// # Ok::<_, Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// [`Error::Discovery`], whose [`DiscoveryError`](crate::core::DiscoveryError) says what
/// was wrong; [`Error::is_retryable`] is true only for a transport failure, a 5xx or a 429
/// of the metadata endpoint.
pub fn discover(issuer: &str) -> Result<ServerMetadata, Error> {
    discover_with(&transport::default_agent(timeouts(), None, None), issuer)
}

/// [`discover`] on `agent` (for a proxy, custom TLS roots, a shared pool). As for token
/// requests ([`ClientBuilder::agent`](crate::ClientBuilder::agent)), each request is sent
/// with statuses not treated as errors, no redirect followed, the default timeouts, and
/// without the agent's proxy when it is plain `http://`.
///
/// # Errors
/// As [`discover`].
pub fn discover_with(agent: &ureq::Agent, issuer: &str) -> Result<ServerMetadata, Error> {
    let mut discovery = Discovery::new(issuer)?;
    let span = tracing::info_span!("metadata_discovery", issuer = discovery.issuer());
    let _entered = span.enter();
    loop {
        tracing::debug!(url = %discovery.url(), "requesting authorization server metadata");
        let request = discovery.request();
        let exchange = transport::exchange(agent, request, timeouts(), discovery.max_body());
        match discovery.handle_exchange(SystemTime::now(), exchange) {
            Ok(DiscoveryStep::Found(metadata)) => return Ok(*metadata),
            Ok(DiscoveryStep::Next(next)) => discovery = *next,
            Err(error) => {
                tracing::warn!(%error, "discovery failed");
                return Err(error.into());
            }
        }
    }
}

/// The timeouts of a token request with the default policy.
fn timeouts() -> Timeouts {
    Timeouts::new(None, None, &Policy::default())
}
