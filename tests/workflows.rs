//! The everyday workflows of the libraries our users come from (simple-oauth2,
//! @schematize/client-credentials, the Avnology SDK, @saurbit's server builder), each
//! written as a user of this crate would write it, against the embedded authorization
//! server. The lines between `// workflow:` and `// end` are the count in the table of the
//! README; everything else is the test's own checking.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use client_credentials::embedded::{EmbeddedServer, Fault, Route};
use client_credentials::ureq::{
    AuthMethod, BodyFormat, Client, Config, Credentials, StaticCredential, Token, TokenParams,
};

fn server() -> EmbeddedServer {
    EmbeddedServer::builder()
        .scope("orders.read", "Read orders")
        .scope("orders.write", "Change orders")
        .client("billing", "s3cr3t", ["orders.read", "orders.write"])
        .accept_json(true)
        .start()
        .unwrap()
}

fn config(server: &EmbeddedServer) -> Config {
    Config::builder()
        .token_url(server.token_url())
        .client_id("billing")
        .client_secret("s3cr3t")
        .build()
        .unwrap()
}

/// simple-oauth2: `client.getToken({ scope }, { headers, timeout })`.
#[test]
fn simple_oauth2_get_token_with_scopes_and_http_options() {
    let server = server();
    let client = Client::new(config(&server));
    // workflow: simple-oauth2 getToken with scopes and http options
    let params = TokenParams::new()
        .scopes(["orders.read"])
        .header("x-request-source", "billing-batch")
        .timeout(Duration::from_secs(5));
    let token = client.token_for(&params).unwrap();
    // end
    assert_eq!(token.scopes(), ["orders.read"]);
    assert_eq!(server.requests(Route::Token), 1);
}

/// simple-oauth2: `client.createToken(saved)` and `token.expired(window)`.
#[test]
fn simple_oauth2_create_token_and_expired_within_a_window() {
    let server = server();
    let saved =
        serde_json::to_string(&Client::new(config(&server)).token().unwrap().storable()).unwrap();
    let client = Client::new(config(&server));
    // workflow: simple-oauth2 createToken + expired(window)
    let stored: Token = serde_json::from_str(&saved).unwrap();
    let restored = client.restore(stored).unwrap();
    let token = client.token().unwrap();
    let expiring = token.expires_within(SystemTime::now(), Duration::from_secs(300));
    // end
    assert!(restored && !expiring, "a fresh one-hour token, restored");
    assert!(token.expires_in(SystemTime::now()) > Some(Duration::from_secs(3000)));
    assert_eq!(
        server.requests(Route::Token),
        1,
        "the restored token needed no request"
    );
}

/// simple-oauth2: `options.authorizationMethod = 'body'`, `options.bodyFormat = 'json'`.
#[test]
fn simple_oauth2_json_body_and_credentials_in_the_body() {
    let server = server();
    // workflow: simple-oauth2 JSON body + credentials in the body
    let config = Config::builder()
        .token_url(server.token_url())
        .client_id("billing")
        .client_secret("s3cr3t")
        .auth_method(AuthMethod::client_secret_post())
        .body_format(BodyFormat::Json)
        .build()
        .unwrap();
    let token = Client::new(config).token().unwrap();
    // end
    assert_eq!(token.token_type(), "Bearer");
}

/// @schematize/client-credentials: `authorize()`, `headers()`, `signout()`, and many
/// concurrent `authorize()` calls sharing one token request.
#[test]
fn schematize_authorize_headers_signout_and_concurrent_authorize() {
    let server = server();
    let client = Client::new(config(&server));
    // workflow: @schematize authorize
    let mut request = http::Request::get(server.resource_url()).body(()).unwrap();
    client.authorize(&mut request).unwrap();
    // end
    // workflow: @schematize headers
    let header = client
        .with_token(|token| token.authorization_header())
        .unwrap();
    // end
    assert_eq!(request.headers()["authorization"], header);
    // workflow: @schematize signout
    client.clear();
    // end
    assert_eq!(client.cached_shapes(), 0);
    let before = server.requests(Route::Token);
    // workflow: @schematize concurrent authorize
    let threads: Vec<_> = (0..16)
        .map(|_| {
            let client = client.clone();
            std::thread::spawn(move || client.with_token(|t| t.authorization_header()))
        })
        .collect();
    let headers: Vec<_> = threads
        .into_iter()
        .map(|t| t.join().unwrap().unwrap())
        .collect();
    // end
    assert!(headers.iter().all(|h| *h == headers[0]));
    assert_eq!(
        server.requests(Route::Token) - before,
        1,
        "one request for 16 callers"
    );
}

/// Avnology: `clientCredentials({ scopes, audience })` and the fields of its `TokenSet`.
#[test]
fn avnology_client_credentials_with_scopes_audience_and_token_set_fields() {
    let server = server();
    // workflow: Avnology clientCredentials with scopes + audience
    let config = Config::builder()
        .token_url(server.token_url())
        .client_id("billing")
        .client_secret("s3cr3t")
        .scopes(["orders.read", "orders.write"])
        .audience("https://orders.example.com")
        .build()
        .unwrap();
    let token = Client::new(config).token().unwrap();
    // end
    // workflow: Avnology TokenSet fields
    let access_token = token.access_token().expose_secret();
    let token_type = token.token_type();
    let expires_in = token.expires_in(SystemTime::now());
    let scopes = token.scopes();
    // end
    assert!(!access_token.is_empty());
    assert_eq!(token_type, "Bearer");
    assert!(expires_in.is_some_and(|left| left > Duration::from_secs(3000)));
    assert_eq!(scopes, ["orders.read", "orders.write"]);
}

/// Avnology: `new Client({ apiKey })`: requests authorized with a fixed credential, no
/// token exchange.
#[test]
fn avnology_api_key_mode() {
    let server = server();
    let issued = Client::new(config(&server)).token().unwrap();
    let key = issued.access_token().expose_secret().to_owned();
    let before = server.requests(Route::Token);
    // workflow: Avnology API key mode
    let credentials = Credentials::from(StaticCredential::bearer(key).unwrap());
    let agent = client_credentials::ureq::ureq::Agent::new_with_defaults();
    let request = http::Request::get(server.resource_url()).body(()).unwrap();
    let response = credentials.send_authorized_with(&agent, request).unwrap();
    // end
    assert_eq!(response.status(), 200);
    assert_eq!(server.requests(Route::Token), before, "no token exchange");
    let header = StaticCredential::api_key("x-api-key", "k-93f1c2").unwrap();
    let mut request = http::Request::get(server.resource_url()).body(()).unwrap();
    Credentials::from(header).authorize(&mut request).unwrap();
    assert_eq!(request.headers()["x-api-key"], "k-93f1c2");
}

/// Avnology: `AuthenticationError`, the scope error and `RateLimitError`.
#[test]
fn avnology_the_three_error_classes() {
    let server = server();
    let wrong_secret = Config::builder()
        .token_url(server.token_url())
        .client_id("billing")
        .client_secret("not-the-secret")
        .build()
        .unwrap();
    let config = config(&server);
    // workflow: Avnology the three error classes
    let error = Client::new(wrong_secret).token().unwrap_err();
    assert!(error.is_invalid_client());
    let error = Client::new(config.clone())
        .token_for(&TokenParams::new().scopes(["admin"]))
        .unwrap_err();
    assert!(error.is_invalid_scope());
    server.inject(Fault::rate_limited(Duration::from_secs(30)).times(1));
    let error = Client::new(config).token().unwrap_err();
    assert!(error.is_rate_limited() && error.retry_after() == Some(Duration::from_secs(30)));
    // end
    assert!(!error.is_invalid_client() && error.is_retryable());
}

/// @saurbit: a token endpoint built with scopes and auth methods, `getClient`,
/// `generateAccessToken`, `verifyToken`, and its OpenAPI description; sans-IO, mounted
/// in any framework.
#[test]
fn saurbit_server_builder() {
    use std::collections::HashMap;
    use std::sync::Mutex;

    use client_credentials::AccessToken;
    use client_credentials::server::{
        ClientAuthMethod, RegisteredClient, TokenEndpoint, bearer_token, opaque_token,
    };

    let clients = [RegisteredClient::new("billing", "s3cr3t").scopes(["orders.read"])];
    let issued: Arc<Mutex<HashMap<String, String>>> = Arc::default();
    let token_request = http::Request::post("/token")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(b"grant_type=client_credentials&client_id=billing&client_secret=s3cr3t".to_vec())
        .unwrap();
    // workflow: @saurbit server builder with scopes and auth methods
    let endpoint = TokenEndpoint::builder()
        .scope("orders.read", "Read orders")
        .auth_methods([
            ClientAuthMethod::ClientSecretBasic,
            ClientAuthMethod::ClientSecretPost,
        ])
        .build()
        .unwrap();
    // end
    // workflow: @saurbit getClient + generateAccessToken
    let response = endpoint.handle(
        &token_request,
        |id| clients.iter().find(|c| c.client_id() == id),
        |grant| {
            let mut entropy = [0; 32];
            getrandom::fill(&mut entropy).expect("the OS RNG");
            let token = opaque_token(&entropy);
            let client = grant.client_id().to_owned();
            issued
                .lock()
                .unwrap()
                .insert(token.expose_secret().to_owned(), client);
            Ok(token)
        },
    );
    // end
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = serde_json::from_slice(response.body()).unwrap();
    let resource_request = http::Request::get("/orders")
        .header(
            "authorization",
            format!("Bearer {}", body["access_token"].as_str().unwrap()),
        )
        .body(())
        .unwrap();
    // workflow: @saurbit verifyToken
    let verified = bearer_token(resource_request.headers())
        .ok()
        .and_then(|token: AccessToken| issued.lock().unwrap().get(token.expose_secret()).cloned());
    // end
    assert_eq!(verified.as_deref(), Some("billing"));
    // workflow: @saurbit OpenAPI
    let path_item = endpoint.openapi_path_item();
    let security_scheme = endpoint.openapi_security_scheme_at("https://auth.example.com/token");
    // end
    assert!(path_item["post"].is_object(), "{path_item}");
    assert!(
        security_scheme
            .to_string()
            .contains("https://auth.example.com/token")
    );
}

/// The table of the README: the number of lines of each workflow above, counted here, so
/// that the table cannot drift from the code.
#[test]
fn the_readme_table_counts_the_lines_of_each_workflow() {
    let source = include_str!("workflows.rs");
    let mut counts = Vec::new();
    let mut current: Option<(&str, usize)> = None;
    for line in source.lines().map(str::trim) {
        if let Some(name) = line.strip_prefix("// workflow: ") {
            current = Some((name, 0));
        } else if line == "// end" {
            counts.push(current.take().expect("an end after a start"));
        } else if let Some((_, n)) = &mut current {
            *n += 1;
        }
    }
    let readme = include_str!("../README.md");
    for (name, lines) in &counts {
        let row = format!("| {name} | {lines} |");
        assert!(readme.contains(&row), "README.md lacks the row `{row}`");
    }
    assert_eq!(counts.len(), 15, "{counts:?}");
}
