//! The servers of the adapters' own proxy tests (a proxy is set through each transport's
//! own client type, so the tests stay in the adapters): a plain `http://` token,
//! revocation or introspection request, allowed only to loopback, carries the client
//! credentials and the token in cleartext and must never go through a proxy; an
//! `https://` one keeps it.

use client_credentials_core::Config;

use crate::{Reply, Router, TestServer, TokenEndpoint};

const ID: &str = "my-service";
const SECRET: &str = "s3cr3t-Value";

/// A "proxy" that answers anything with a token of its own, so that a request relayed
/// through it would succeed and be noticed, and a loopback server with the token,
/// revocation and introspection endpoints.
#[derive(Debug)]
pub struct ProxyCase {
    /// The proxy: its URL is what the transport is told to use.
    pub proxy: TestServer,
    /// `/token`, `/revoke` and `/introspect`, on 127.0.0.1.
    pub server: TestServer,
}

impl ProxyCase {
    /// Starts both servers.
    #[must_use]
    pub fn start() -> Self {
        Self {
            proxy: TestServer::start(Router::new().fallback(Reply::token("from-the-proxy", None))),
            server: TestServer::start(
                Router::new()
                    .route("/token", TokenEndpoint::new().client(ID, SECRET))
                    .route("/revoke", Reply::new(200))
                    .route(
                        "/introspect",
                        Reply::json(200, &serde_json::json!({ "active": true })),
                    ),
            ),
        }
    }

    /// Every endpoint on the loopback server, over plain `http://`.
    #[must_use]
    pub fn loopback_config(&self) -> Config {
        Config::builder()
            .token_url(self.server.url("/token"))
            .revocation_url(self.server.url("/revoke"))
            .introspection_url(self.server.url("/introspect"))
            .client_id(ID)
            .client_secret(SECRET)
            .build()
            .unwrap()
    }

    /// A token endpoint over `https://` on a host that does not exist: nothing leaves the
    /// machine, since the proxy is on loopback and refuses the tunnel.
    #[must_use]
    pub fn https_config(&self) -> Config {
        Config::builder()
            .token_url("https://auth.example.invalid/token")
            .client_id(ID)
            .client_secret(SECRET)
            .build()
            .unwrap()
    }

    /// One token, one introspection and one revocation reached the loopback server, and
    /// the proxy saw nothing.
    pub fn assert_bypassed(&self) {
        assert_eq!(self.server.count("/token"), 1);
        assert_eq!(self.server.count("/introspect"), 1);
        assert_eq!(self.server.count("/revoke"), 1);
        assert_eq!(
            self.proxy.connections(),
            0,
            "the proxy saw a cleartext request"
        );
    }

    /// The `https://` request went to the proxy.
    pub fn assert_proxied(&self) {
        assert!(
            self.proxy.connections() >= 1,
            "the https request skipped the proxy"
        );
    }
}
