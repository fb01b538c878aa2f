//! Discovery of an authorization server's metadata (RFC 8414, falling back to OpenID
//! Connect Discovery): the core's [`Discovery`] decides what to ask and what the answer
//! means; this file sends its requests on reqwest and hands the answers back.

use std::sync::Arc;
use std::time::SystemTime;

use client_credentials_core::driver::Timeouts;
use client_credentials_core::{Discovery, DiscoveryStep, Policy, ServerMetadata};
use tracing::Instrument as _;

use crate::driver::in_runtime;
use crate::error::Error;
use crate::transport;

/// Awaits the metadata of `issuer`, fetched with a fresh reqwest client set up like the
/// token client ([`Client::new`](crate::Client::new)): no redirects, the default timeouts,
/// no proxy when the issuer is plain loopback `http`, and the core's body cap. Which
/// document to ask and whether to trust it is the core's [`Discovery`]; the answer goes to
/// [`ConfigBuilder::from_metadata`](crate::core::ConfigBuilder::from_metadata).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # use client_credentials_testkit::{Metadata, Router, TestServer, TokenEndpoint};
/// # let server = TestServer::start(
/// #     Router::new()
/// #         .route("/.well-known/oauth-authorization-server", Metadata::new(""))
/// #         .route("/token", TokenEndpoint::new().client("my-service", "s3cr3t")),
/// # );
/// # let issuer = server.url("");
/// use client_credentials::reqwest::{Client, discover};
/// use client_credentials::ConfigBuilder;
///
/// let metadata = discover(&issuer).await?; // "https://auth.example.com/tenant"
/// let config = ConfigBuilder::from_metadata(&metadata)
///     .client_id("my-service")
///     .client_secret("s3cr3t")
///     .build()?;
/// let token = Client::new(config)?.token().await?;
/// # assert_eq!(token.token_type(), "Bearer");
/// # Ok(())
/// # }
/// ```
///
/// # Errors
/// [`Error::Discovery`] (see [`DiscoveryError`](crate::core::DiscoveryError) for each
/// case, and [`Error::is_retryable`]); [`Error::Build`] if reqwest's client cannot be
/// built; [`Error::NoRuntime`] when polled outside tokio (nothing is sent).
pub async fn discover(issuer: &str) -> Result<ServerMetadata, Error> {
    discover_with(reqwest::Client::builder(), issuer).await
}

/// [`discover`] with a reqwest client built from `builder` (for a proxy, custom TLS roots,
/// a user agent), with what token requests need applied on top, as
/// [`ClientBuilder::http_client_builder`](crate::ClientBuilder::http_client_builder) does.
///
/// # Errors
/// As [`discover`].
pub async fn discover_with(
    builder: reqwest::ClientBuilder,
    issuer: &str,
) -> Result<ServerMetadata, Error> {
    let mut discovery = Discovery::new(issuer)?;
    if !in_runtime() {
        return Err(Error::NoRuntime);
    }
    let timeouts = Timeouts::new(None, None, &Policy::default());
    let cleartext = discovery.url().scheme() != Some(&http::uri::Scheme::HTTPS);
    let http = transport::configure(builder, timeouts, cleartext, None)
        .and_then(reqwest::ClientBuilder::build)
        .map_err(|e| Error::Build(Arc::new(e)))?;
    let span = tracing::info_span!("metadata_discovery", issuer = discovery.issuer());
    async move {
        loop {
            tracing::debug!(url = %discovery.url(), "requesting authorization server metadata");
            let (request, cap) = (discovery.request(), discovery.max_body());
            let exchange = transport::send(&http, request, timeouts.overall, cap).await;
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
    .instrument(span)
    .await
}
