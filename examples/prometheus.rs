//! Token metrics in Prometheus: a client named `orders` records its token health through the
//! `metrics` facade (feature `metrics`), and the Prometheus exporter serves it on 127.0.0.1.
//! The example makes one fetch, 100 cache hits and one failed fetch (a scope the client may
//! not have, on the same client), scrapes its own endpoint and prints the page; then it keeps
//! serving until standard input closes or 30 seconds pass, so that you (or a test) can
//! scrape it too.
//!
//! ```text
//! cargo run --example prometheus
//! curl http://127.0.0.1:<port>/metrics      # the URL it prints; Ctrl-D ends it
//! ```
//!
//! `tests/metrics.rs` runs the same sequence (`examples/support/metrics_scenario.rs`) and
//! checks every value on the page.
#![allow(clippy::print_stdout)] // an example shows what it does on stdout

use std::error::Error;
use std::io::Read as _;
use std::sync::mpsc;
use std::time::Duration;

#[path = "support/metrics_scenario.rs"]
mod scenario;

/// How long the endpoint stays up for scrapes after the sequence, at most.
const SERVE_FOR: Duration = Duration::from_secs(30);

fn main() -> Result<(), Box<dyn Error>> {
    let scenario = scenario::run()?;
    println!("authorization server  {}", scenario.server.token_url());
    println!(
        "metrics endpoint      {} (client=\"{}\")",
        scenario.metrics_url,
        scenario::CLIENT_NAME
    );
    println!(
        "client {:<15} 1 fetch, 100 hits, 1 failed fetch: {}",
        scenario.client.config().client_id(),
        scenario.refused
    );
    println!();
    print!("{}", scenario::scrape(&scenario.metrics_url)?);
    println!();
    println!(
        "serving {} until standard input closes or {} s pass",
        scenario.metrics_url,
        SERVE_FOR.as_secs()
    );
    let (closed, stdin_closed) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
        let _ = closed.send(());
    });
    let _ = stdin_closed.recv_timeout(SERVE_FOR);
    Ok(())
}
