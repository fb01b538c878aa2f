//! The scripted sequence of `examples/prometheus.rs`, shared with `tests/metrics.rs` (which
//! includes this file with `#[path]`), so that the test scrapes exactly what the example
//! shows: an embedded authorization server, the Prometheus exporter on 127.0.0.1, and one
//! client named `orders` that makes one fetch, 100 cache hits and one failed fetch.

use std::error::Error;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};

use client_credentials::embedded::EmbeddedServer;
use client_credentials::ureq::{Client, Config, TokenParams, ureq};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};

/// The name the client's metrics are labelled with (`client="orders"`).
pub(crate) const CLIENT_NAME: &str = "orders";

/// The buckets of the `_seconds` histograms: token endpoints answer in milliseconds, a
/// refresh lead is minutes to hours.
const SECONDS_BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 60.0, 600.0, 3600.0,
];

/// What the sequence left running, and what it saw.
pub(crate) struct Scenario {
    /// The authorization server; it stops when dropped.
    pub(crate) server: EmbeddedServer,
    /// The Prometheus endpoint: `http://127.0.0.1:<port>/metrics`.
    pub(crate) metrics_url: String,
    /// The client, named [`CLIENT_NAME`].
    pub(crate) client: Client,
    /// The failed fetch's error, as the caller saw it.
    pub(crate) refused: String,
}

/// Starts the authorization server and the exporter (installed as the process's global
/// recorder: once per process), then runs the sequence:
///
/// 1. `token()`: the one fetch (`outcome="success"`); the call waits for it (a wait, not a
///    hit).
/// 2. `token()` 100 times: 100 cache hits (lock-free).
/// 3. `token_for` a scope the client may not have: the one failure, `invalid_scope`. It is
///    the same client, so all of it is under one label, and its failure drains the
///    client's events, which publishes the hit count: the scrape that follows is exact.
///    This call waited for its own fetch too: two waits in all.
///
/// # Errors
/// When the server or the exporter cannot start, or a step does not go as scripted.
pub(crate) fn run() -> Result<Scenario, Box<dyn Error>> {
    let server = EmbeddedServer::builder()
        .scope("orders.read", "Read orders")
        .scope("orders.write", "Change orders")
        .client(
            "orders-service",
            "s3cr3t-of-the-orders-service",
            ["orders.read"],
        )
        .start()?;

    // The exporter binds its own listener; a port just freed is as close as it lets us get
    // to port 0.
    let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port();
    PrometheusBuilder::new()
        .with_http_listener(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
        .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), &SECONDS_BUCKETS)?
        .install()?;
    let metrics_url = format!("http://127.0.0.1:{port}/metrics");

    // Build clients after installing the recorder: naming one registers its series.
    let config = Config::builder()
        .token_url(server.token_url())
        .client_id("orders-service")
        .client_secret("s3cr3t-of-the-orders-service")
        .scopes(["orders.read"])
        .build()?;
    let client = Client::builder(config).metrics_name(CLIENT_NAME).build();

    client.token()?;
    for _ in 0..100 {
        client.token()?;
    }
    let refused = match client.token_for(&TokenParams::new().scopes(["orders.write"])) {
        Ok(_) => return Err("the server granted a scope it should refuse".into()),
        Err(e) if e.is_invalid_scope() => e.to_string(),
        Err(e) => return Err(format!("expected invalid_scope, got {e}").into()),
    };
    Ok(Scenario {
        server,
        metrics_url,
        client,
        refused,
    })
}

/// The scrape page at `url`, over HTTP.
///
/// # Errors
/// When the endpoint cannot be reached or does not answer 200.
pub(crate) fn scrape(url: &str) -> Result<String, Box<dyn Error>> {
    Ok(ureq::get(url).call()?.body_mut().read_to_string()?)
}
