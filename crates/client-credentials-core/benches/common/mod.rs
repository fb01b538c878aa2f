//! The inputs both libraries get in the core benchmarks: one client, one typical token
//! response, and the same request on the wire.

use std::convert::Infallible;
use std::time::{Duration, SystemTime};

use client_credentials_core::http::{self, HeaderValue, StatusCode, header};
use client_credentials_core::{Config, Token, TokenRequest};
use oauth2::basic::{BasicClient, BasicTokenResponse};
use oauth2::{ClientId, ClientSecret, EndpointNotSet, EndpointSet, Scope, TokenUrl};

pub(crate) const TOKEN_URL: &str = "https://auth.example.com/oauth2/token";
pub(crate) const CLIENT_ID: &str = "s6BhdRkqt3";
pub(crate) const CLIENT_SECRET: &str = "7Fjfp0ZBr1KtDRbnfVdmIw";
pub(crate) const SCOPES: [&str; 2] = ["orders.read", "orders.write"];

/// A 754-character RS256 JWT access token, the size that Auth0, Okta or Entra ID issue to a
/// client credentials client.
pub(crate) const ACCESS_TOKEN: &str = concat!(
    "eyJhbGciOiJSUzI1NiIsInR5cCI6ImF0K2p3dCIsImtpZCI6IjFlOWdkazcifQ.",
    "eyJpc3MiOiJodHRwczovL2F1dGguZXhhbXBsZS5jb20vIiwic3ViIjoiczZCaGRSa3F0M0BjbGllbnRzIiwiYXVkI",
    "joiaHR0cHM6Ly9hcGkuZXhhbXBsZS5jb20vIiwiaWF0IjoxNzAwMDAwMDAwLCJleHAiOjE3MDAwMDM2MDAsInNjb3",
    "BlIjoib3JkZXJzLnJlYWQgb3JkZXJzLndyaXRlIiwiY2xpZW50X2lkIjoiczZCaGRSa3F0MyIsImp0aSI6IjlmMWM",
    "wZDVlLTJiOGEtNGM0Ny1hMGY3LTNkNmU4YjJhMWM1NSIsImd0eSI6ImNsaWVudC1jcmVkZW50aWFscyJ9.",
    "bjQLnP-zepicpUTmu3gKLHiQHT-zNzh2hRGjBhevoB1L9RIvNEVUxTveLruM0rfj0WAK1jHDhaXXzOI8d4VFmtvB",
    "tMkA_-SNV1tdpcY4BAEl9l2w_j4kSUt26phkV9mGCE_tCLl4r019GWp0RqhrWACeY2thHbFiEbZamq3_KcXlLZxQ",
    "jFAjRzRNjAetkcvWBor8df9ikvBioJyjgcieced7mprp4wsNvbb1EKJk753ngVAde2uSronrBZxat0PbZ1humPrS",
    "faC5lovAOaHvNMk5ubjlI6i--J1HhgjF7PbKNYdY9tJ-bPRScpN5d6dI_Yg5HbZ5ztp9x78fAF7oeQ",
);

/// When the request was sent: a fixed instant, so that runs are identical.
pub(crate) fn sent_at() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)
}

/// Our configuration: `client_secret_basic` (both libraries' default), two default scopes.
pub(crate) fn config() -> Config {
    Config::builder()
        .token_url(TOKEN_URL)
        .client_id(CLIENT_ID)
        .client_secret(CLIENT_SECRET)
        .scopes(SCOPES)
        .build()
        .unwrap_or_else(|e| panic!("bench config: {e}"))
}

/// The `oauth2` crate's client for the same endpoint and credentials.
pub(crate) type OAuth2Client =
    BasicClient<EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointSet>;

pub(crate) fn oauth2_client() -> OAuth2Client {
    BasicClient::new(ClientId::new(CLIENT_ID.to_owned()))
        .set_client_secret(ClientSecret::new(CLIENT_SECRET.to_owned()))
        .set_token_uri(
            TokenUrl::new(TOKEN_URL.to_owned()).unwrap_or_else(|e| panic!("token url: {e}")),
        )
}

/// The scopes as `oauth2` values, built once (as an application would).
pub(crate) fn oauth2_scopes() -> Vec<Scope> {
    SCOPES.iter().map(|s| Scope::new((*s).to_owned())).collect()
}

/// The body of a typical RFC 6749 §5.1 answer.
pub(crate) fn body() -> Vec<u8> {
    format!(
        r#"{{"access_token":"{ACCESS_TOKEN}","token_type":"Bearer","expires_in":3600,"scope":"orders.read orders.write"}}"#
    )
    .into_bytes()
}

/// The response as a transport hands it over: built afresh for each operation, for both
/// libraries (the `oauth2` crate takes it by value).
pub(crate) fn response(body: &[u8]) -> http::Response<Vec<u8>> {
    let mut response = http::Response::new(body.to_vec());
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

/// Ours: build the request, then parse the answer to it. `request` is either built for this
/// call (`config.default_request()`) or reused (what the adapters do).
pub(crate) fn ours(request: &TokenRequest, body: &[u8]) -> Token {
    let http = request.to_http();
    std::hint::black_box(&http);
    request
        .parse_http_response(sent_at(), &response(body))
        .unwrap_or_else(|e| panic!("ours: {e}"))
}

/// The `oauth2` crate: its request builder sends through an "HTTP client" that looks at the
/// request and answers with the canned response, so it builds and parses exactly once.
pub(crate) fn theirs(client: &OAuth2Client, scopes: &[Scope], body: &[u8]) -> BasicTokenResponse {
    let http_client = |request: oauth2::HttpRequest| -> Result<oauth2::HttpResponse, Infallible> {
        std::hint::black_box(&request);
        Ok(response(body))
    };
    client
        .exchange_client_credentials()
        .add_scopes(scopes.iter().cloned())
        .request(&http_client)
        .unwrap_or_else(|e| panic!("oauth2: {e}"))
}

/// Both libraries put the same request on the wire; checked once before measuring.
pub(crate) fn assert_same_request(config: &Config, client: &OAuth2Client, scopes: &[Scope]) {
    let ours = config.default_request().to_http();
    let captured = std::cell::RefCell::new(None);
    let http_client = |request: oauth2::HttpRequest| -> Result<oauth2::HttpResponse, Infallible> {
        *captured.borrow_mut() = Some(request);
        Ok(response(&body()))
    };
    let _ = client
        .exchange_client_credentials()
        .add_scopes(scopes.iter().cloned())
        .request(&http_client);
    let theirs = captured
        .into_inner()
        .unwrap_or_else(|| panic!("oauth2 sent nothing"));
    assert_eq!(ours.method(), theirs.method());
    assert_eq!(ours.uri(), theirs.uri());
    assert_eq!(ours.body(), theirs.body(), "same body");
    for name in [header::AUTHORIZATION, header::CONTENT_TYPE, header::ACCEPT] {
        assert_eq!(
            ours.headers().get(&name),
            theirs.headers().get(&name),
            "{name}"
        );
    }
}

/// Runs the operations in turn, `batch` calls of each per round, for `rounds` rounds, and
/// prints each one's median time per call and its median ratio to the first one's. A ratio
/// taken round by round is what survives a machine whose load drifts (a shared 2-core
/// machine): both sides of each ratio ran within milliseconds of each other.
#[allow(
    clippy::disallowed_methods,
    reason = "a benchmark's own stopwatch; the library under test never reads the clock"
)]
#[allow(clippy::print_stdout, reason = "a benchmark reports on stdout")]
#[allow(dead_code, reason = "the allocations bench counts, it does not time")]
pub(crate) fn interleaved(title: &str, rounds: usize, batch: u32, ops: &[(&str, &dyn Fn())]) {
    use std::time::Instant;
    let run = |op: &dyn Fn()| {
        let start = Instant::now();
        for _ in 0..batch {
            op();
        }
        start.elapsed().as_secs_f64() / f64::from(batch)
    };
    let mut times: Vec<Vec<f64>> = vec![Vec::with_capacity(rounds); ops.len()];
    for (_, op) in ops {
        run(*op); // warm
    }
    for _ in 0..rounds {
        for (i, (_, op)) in ops.iter().enumerate() {
            times[i].push(run(*op));
        }
    }
    let sorted = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v
    };
    println!("{title}: interleaved, {rounds} rounds of {batch} calls each");
    for (i, (name, _)) in ops.iter().enumerate() {
        let t = sorted(times[i].clone());
        let r = sorted(times[i].iter().zip(&times[0]).map(|(a, b)| a / b).collect());
        let n = r.len();
        println!(
            "  {name}: median {:.0} ns per call; {:.3}× the first (quartiles {:.3}–{:.3})",
            t[n / 2] * 1e9,
            r[n / 2],
            r[n / 4],
            r[n * 3 / 4]
        );
    }
}
