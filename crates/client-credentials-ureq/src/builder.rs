//! [`ClientBuilder`]: the options of a [`Client`].

use std::fmt;
use std::hash::{BuildHasher as _, Hasher as _};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use client_credentials_core::driver::Timeouts;
use client_credentials_core::{Cache, Config, Policy, WallClock};

use crate::client::Client;
use crate::store::SharedStore;
use crate::transport;

/// Builds a [`Client`]: timeouts, a caller-supplied agent, the cache policy, the jitter
/// seed and a shared store.
///
/// ```
/// use std::time::Duration;
/// use client_credentials::ureq::{Client, Config};
///
/// let config = Config::builder()
///     .token_url("https://auth.example.com/oauth2/token")
///     .client_id("my-service")
///     .client_secret("s3cr3t")
///     .build()?;
/// let client = Client::builder(config)
///     .connect_timeout(Duration::from_secs(2))
///     .timeout(Duration::from_secs(5))
///     .build();
/// # let _ = client;
/// # Ok::<_, client_credentials_ureq::ConfigError>(())
/// ```
#[must_use]
pub struct ClientBuilder {
    config: Config,
    agent: Option<ureq::Agent>,
    roots: Option<Vec<ureq::tls::Certificate<'static>>>,
    connect_timeout: Option<Duration>,
    timeout: Option<Duration>,
    policy: Policy,
    seed: Option<u64>,
    store: Option<Arc<dyn SharedStore>>,
    #[cfg(feature = "metrics")]
    metrics_name: Option<String>,
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("config", &self.config)
            .field("custom_agent", &self.agent.is_some())
            .field("custom_roots", &self.roots.as_ref().map(Vec::len))
            .field("connect_timeout", &self.connect_timeout)
            .field("timeout", &self.timeout)
            .field("policy", &self.policy)
            .field("shared_store", &self.store.is_some())
            .finish_non_exhaustive()
    }
}

impl ClientBuilder {
    /// The defaults, for `config` ([`Client::builder`]).
    pub(crate) fn new(config: Config) -> Self {
        Self {
            config,
            agent: None,
            roots: None,
            connect_timeout: None,
            timeout: None,
            policy: Policy::default(),
            seed: None,
            store: None,
            #[cfg(feature = "metrics")]
            metrics_name: None,
        }
    }

    /// Sends with this agent (for a proxy, custom TLS roots, or a shared connection pool).
    ///
    /// Whatever the agent's configuration, token requests never treat an HTTP status as an
    /// error, never follow a redirect, and get this client's timeouts: they are set on each
    /// request. A plain `http://` endpoint (loopback only) is never reached through the
    /// agent's proxy, so that no proxy sees the credentials or a token in cleartext;
    /// `https://` requests use it.
    ///
    /// TLS: this crate builds ureq without a crypto provider of its own
    /// (`rustls-no-provider`; aws-lc-rs is the one provider in the build). Every request
    /// this crate sends on an agent that names no provider, when the process installed no
    /// default, gets aws-lc-rs on the request. A request you send on the agent yourself
    /// (`agent.run`, `client.authorize_ureq(..)` then `.call()`) does not: give the agent a
    /// provider (`ureq::tls::TlsConfig::builder().unversioned_rustls_crypto_provider(..)`
    /// with `rustls::crypto::aws_lc_rs::default_provider()`), install a process default
    /// (`rustls::crypto::CryptoProvider::install_default`), or enable ureq's `rustls`
    /// feature (its `ring` fallback, a second provider in the build); ureq 3 panics on the
    /// first `https://` request of an agent with none of these.
    ///
    /// Mutual TLS: the configuration's client certificate
    /// ([`ConfigBuilder::client_certificate`](client_credentials_core::ConfigBuilder::client_certificate))
    /// is presented by the agent this crate builds, never added to yours: give your agent
    /// the identity yourself (`TlsConfig::builder().client_cert(..)`, made from
    /// [`ClientIdentity::certificates_der`](client_credentials_core::ClientIdentity::certificates_der)
    /// and [`ClientIdentity::expose_private_key_der`](client_credentials_core::ClientIdentity::expose_private_key_der)),
    /// or the token endpoint refuses the client.
    pub fn agent(mut self, agent: ureq::Agent) -> Self {
        self.agent = Some(agent);
        self
    }

    /// Verifies servers against these root certificates instead of the webpki roots (a
    /// private CA), on the agent this crate builds; ignored with an agent of your own
    /// ([`ClientBuilder::agent`]).
    ///
    /// ```no_run
    /// # let config = client_credentials::ureq::Config::builder().token_url("https://as.example.com/t").client_id("c").client_secret("s").build()?;
    /// let pem = std::fs::read("/etc/ssl/private-ca.pem")?;
    /// let ca = ureq::tls::Certificate::from_pem(&pem)?;
    /// let client = client_credentials::ureq::Client::builder(config).root_certificates([ca]).build();
    /// # let _ = client;
    /// # Ok::<_, Box<dyn std::error::Error>>(())
    /// ```
    pub fn root_certificates(
        mut self,
        roots: impl IntoIterator<Item = ureq::tls::Certificate<'static>>,
    ) -> Self {
        self.roots = Some(roots.into_iter().collect());
        self
    }

    /// How long connecting (DNS, TCP, TLS) may take. Default
    /// [`DEFAULT_CONNECT_TIMEOUT`](crate::DEFAULT_CONNECT_TIMEOUT), 5 s, and never more than
    /// the whole request's timeout.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = Some(timeout);
        self
    }

    /// How long a whole token request may take, body included. Default
    /// [`DEFAULT_TIMEOUT`](crate::DEFAULT_TIMEOUT), 15 s, and never more than the policy's
    /// `request_timeout`.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// The cache's timing policy: refresh point, expiry margin, backoff, cool-down,
    /// early-rejection throttle, bounds on the request shapes held.
    pub fn policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
        self
    }

    /// The seed of the refresh and backoff jitter (default: random per client). Fix it for
    /// reproducible tests.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Shares tokens with other processes through `store` (for example
    /// `client-credentials-redis`): before fetching, the sending thread asks the store,
    /// which hands over a token another process fetched or lets this process fetch and
    /// share the result. See [`SharedStore`] for the contract; a store that fails makes the
    /// client fetch as it would without one.
    pub fn shared_store(mut self, store: impl SharedStore) -> Self {
        self.store = Some(Arc::new(store));
        self
    }

    /// Records this client's token metrics (feature `metrics`), labelled `client = name`:
    /// fetches by outcome, fetch latency, cache hits and waits, refresh lead, stale tokens
    /// served during an outage, shared-store hits, time spent waiting. The core records them
    /// into the `metrics` facade, for whichever exporter the application installs; see
    /// [`client_credentials_core::metrics`] for the list. The name is exported as is: never
    /// a secret. Without it, nothing is recorded. With it, the client's timer of the
    /// lock-free hit path also wakes every
    /// [`HITS_PUBLISH_INTERVAL`](client_credentials_core::metrics::HITS_PUBLISH_INTERVAL)
    /// (5 s) to publish the hit count.
    ///
    /// ```
    /// # let config = client_credentials::ureq::Config::builder().token_url("https://as.example.com/t").client_id("c").client_secret("s").build()?;
    /// let client = client_credentials::ureq::Client::builder(config).metrics_name("orders").build();
    /// # let _ = client;
    /// # Ok::<_, client_credentials_ureq::ConfigError>(())
    /// ```
    #[cfg(feature = "metrics")]
    pub fn metrics_name(mut self, name: impl Into<String>) -> Self {
        self.metrics_name = Some(name.into());
        self
    }

    /// Builds the client. Nothing is sent until the first token is asked for.
    #[must_use]
    pub fn build(self) -> Client {
        let timeouts = Timeouts::new(self.timeout, self.connect_timeout, &self.policy);
        let agent = self.agent.unwrap_or_else(|| {
            transport::default_agent(
                timeouts,
                self.config.client_identity(),
                self.roots.as_deref(),
            )
        });
        let seed = self.seed.unwrap_or_else(random_seed);
        let clock = WallClock::new(Instant::now(), SystemTime::now());
        let mut cache = Cache::new(self.policy, clock, seed);
        if self.store.is_some() {
            cache = cache.with_shared_store();
        }
        #[cfg(feature = "metrics")]
        if let Some(name) = &self.metrics_name {
            cache = cache.with_metrics_name(name);
        }
        Client::from_parts(self.config, agent, timeouts, cache, self.store)
    }
}

/// A seed that differs between clients and processes, without an RNG dependency: the
/// standard library's randomly keyed hasher.
fn random_seed() -> u64 {
    std::hash::RandomState::new().build_hasher().finish()
}
