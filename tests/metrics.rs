//! The metrics of issue 18 as Prometheus scrapes them: the sequence of
//! `examples/prometheus.rs` (shared through `#[path]`, so that the test does not depend on
//! the example binary being built), then a real scrape of the exporter's HTTP endpoint on
//! 127.0.0.1, and every metric's value checked against the script: one fetch, 100 cache
//! hits, one failed fetch (`invalid_scope`), all under `client="orders"`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test

use std::collections::HashMap;

use client_credentials::embedded::Route;

#[path = "../examples/support/metrics_scenario.rs"]
mod scenario;

/// The page's samples, by series (`name{labels}` exactly as rendered).
fn parse_samples(page: &str) -> HashMap<&str, f64> {
    page.lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').expect("a sample line");
            (series, value.parse().expect("a number"))
        })
        .collect()
}

#[test]
fn the_example_exports_every_metric_with_the_scripted_values() {
    let scenario = scenario::run().expect("the scripted sequence runs");
    let page = scenario::scrape(&scenario.metrics_url).expect("the endpoint answers");
    let samples = parse_samples(&page);
    let value = |series: &str| -> f64 {
        *samples
            .get(series)
            .unwrap_or_else(|| panic!("{series} missing from\n{page}"))
    };
    let client = format!(r#"client="{}""#, scenario::CLIENT_NAME);
    // What the metrics say happened, did: two token requests, the second refused.
    assert_eq!(scenario.server.requests(Route::Token), 2);
    assert!(
        scenario.refused.contains("invalid_scope"),
        "{}",
        scenario.refused
    );

    // One fetch, one failure, each under its outcome, with their latencies.
    assert_eq!(
        value(&format!(
            r#"client_credentials_token_fetches_total{{{client},outcome="success"}}"#
        )),
        1.0
    );
    assert_eq!(
        value(&format!(
            r#"client_credentials_token_fetches_total{{{client},outcome="invalid_scope"}}"#
        )),
        1.0
    );
    assert_eq!(
        value(&format!(
            "client_credentials_token_fetch_duration_seconds_count{{{client}}}"
        )),
        2.0
    );
    let fetching = value(&format!(
        "client_credentials_token_fetch_duration_seconds_sum{{{client}}}"
    ));
    assert!(fetching > 0.0 && fetching < 30.0, "{fetching}");
    // 100 hits exactly: the failure's drain published the count. The first call and the
    // refused one waited for their fetches: waits, not hits.
    assert_eq!(
        value(&format!("client_credentials_cache_hits_total{{{client}}}")),
        100.0
    );
    assert_eq!(
        value(&format!("client_credentials_cache_waits_total{{{client}}}")),
        2.0
    );
    assert_eq!(
        value(&format!(
            "client_credentials_wait_duration_seconds_count{{{client}}}"
        )),
        2.0
    );
    let waiting = value(&format!(
        "client_credentials_wait_duration_seconds_sum{{{client}}}"
    ));
    assert!(
        waiting >= fetching,
        "callers waited {waiting} s for {fetching} s of fetches"
    );
    assert_eq!(
        value(&format!(
            r#"client_credentials_wait_duration_seconds_bucket{{{client},le="+Inf"}}"#
        )),
        2.0
    );
    // Nothing refreshed, nothing stale, no shared store: the series exist, at zero.
    assert_eq!(
        value(&format!(
            "client_credentials_refresh_lead_seconds_count{{{client}}}"
        )),
        0.0
    );
    assert_eq!(
        value(&format!(
            "client_credentials_stale_tokens_served_total{{{client}}}"
        )),
        0.0
    );
    assert_eq!(
        value(&format!(
            "client_credentials_shared_store_hits_total{{{client}}}"
        )),
        0.0
    );

    // Every series is labelled by the name alone (and a fetch's outcome); no secret, client
    // id, URL or token anywhere on the page.
    for series in samples
        .keys()
        .filter(|s| s.starts_with("client_credentials_"))
    {
        assert!(series.contains(&client), "{series}");
    }
    let token = scenario
        .client
        .token()
        .expect("cached")
        .access_token()
        .expose_secret()
        .to_owned();
    for secret in ["s3cr3t", "orders-service", "127.0.0.1", &token] {
        assert!(!page.contains(secret), "{secret} on the page:\n{page}");
    }

    // The async client records the same way, through the same core: its fetch, its hits
    // (published exactly by the drain of the refused fetch that follows them) and its waits.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let config = client_credentials::reqwest::Config::builder()
            .token_url(scenario.server.token_url())
            .client_id("orders-service")
            .client_secret("s3cr3t-of-the-orders-service")
            .scopes(["orders.read"])
            .build()
            .unwrap();
        let tokens = client_credentials::reqwest::Client::builder(config)
            .metrics_name("orders-async")
            .build()
            .unwrap();
        tokens.token().await.unwrap();
        for _ in 0..10 {
            tokens.token().await.unwrap();
        }
        let refused = client_credentials::TokenParams::new().scopes(["orders.write"]);
        assert!(
            tokens
                .token_for(&refused)
                .await
                .unwrap_err()
                .is_invalid_scope()
        );
    });
    let async_page = scenario::scrape(&scenario.metrics_url).expect("the endpoint answers");
    let async_samples = parse_samples(&async_page);
    for (series, expected) in [
        (
            r#"client_credentials_token_fetches_total{client="orders-async",outcome="success"}"#,
            1.0,
        ),
        (
            r#"client_credentials_token_fetches_total{client="orders-async",outcome="invalid_scope"}"#,
            1.0,
        ),
        (
            r#"client_credentials_cache_hits_total{client="orders-async"}"#,
            10.0,
        ),
        (
            r#"client_credentials_cache_waits_total{client="orders-async"}"#,
            2.0,
        ),
        (
            r#"client_credentials_wait_duration_seconds_count{client="orders-async"}"#,
            2.0,
        ),
        (
            r#"client_credentials_token_fetch_duration_seconds_count{client="orders-async"}"#,
            2.0,
        ),
        // The blocking client's series are untouched.
        (
            r#"client_credentials_cache_hits_total{client="orders"}"#,
            100.0,
        ),
    ] {
        assert_eq!(
            async_samples.get(series),
            Some(&expected),
            "{series} in\n{async_page}"
        );
    }
}
