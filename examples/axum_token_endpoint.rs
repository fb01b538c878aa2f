//! The sans-IO token endpoint (`client_credentials::server`, feature `server`) inside your own
//! axum application: a `POST /oauth2/token` route that issues opaque tokens to registered
//! clients, an OpenAPI document that describes it, and an API route that accepts only those
//! tokens.
//!
//! ```text
//! cargo run --example axum_token_endpoint            # starts, calls itself, prints, exits
//! cargo run --example axum_token_endpoint -- --serve # keeps serving on 127.0.0.1:3000
//! curl -s -u reporting:s3cr3t -d grant_type=client_credentials -d scope=orders.read \
//!     http://127.0.0.1:3000/oauth2/token
//! ```
//!
//! The endpoint never touches the network, a clock or an RNG: the handler reads the body,
//! lets the endpoint parse it, looks the client up (here a map; in a service, an `await` on
//! your store), lets the endpoint decide, makes a token and lets the endpoint render the
//! answer.
#![allow(clippy::print_stdout)] // an example shows what it does on stdout

use std::collections::HashMap;
use std::error::Error;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::{any, get};
use client_credentials::server::{
    BearerChallenge, EndpointError, RegisteredClient, TokenEndpoint, bearer_token, opaque_token,
};

/// What a token stands for, kept until it expires.
struct Issued {
    client_id: String,
    scopes: Vec<String>,
    expires_at: SystemTime,
}

struct App {
    endpoint: TokenEndpoint,
    clients: HashMap<String, RegisteredClient>,
    tokens: Mutex<HashMap<String, Issued>>,
}

impl App {
    /// Your client store: a database query in a real service.
    async fn find_client(&self, id: &str) -> Option<RegisteredClient> {
        self.clients.get(id).cloned()
    }
}

/// `http::Response<Vec<u8>>` from the endpoint, as axum's response type.
fn axum_response(response: http::Response<Vec<u8>>) -> Response {
    response.map(Body::from)
}

async fn token(State(app): State<Arc<App>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    // Read at most the endpoint's cap.
    let Ok(body) = axum::body::to_bytes(body, app.endpoint.max_body()).await else {
        return axum_response(app.endpoint.body_too_large().into_response());
    };
    // 1. Parse: method, content type, credentials, grant type, scope syntax.
    let incoming = match app
        .endpoint
        .parse_parts(&parts.method, &parts.headers, &body)
    {
        Ok(incoming) => incoming,
        Err(refused) => return axum_response(refused.into_response()),
    };
    // 2. Look the client up, asynchronously.
    let client = app.find_client(incoming.client_id()).await;
    // 3. Decide: secret (constant time), grant, scopes.
    let grant = match app.endpoint.authorize(&incoming, client.as_ref()) {
        Ok(grant) => grant,
        Err(refused) => return axum_response(refused.into_response()),
    };
    // 4. Make a token from the operating system's randomness, remember it, answer.
    let mut entropy = [0u8; 32];
    if getrandom::fill(&mut entropy).is_err() {
        return axum_response(EndpointError::server_error().into_response());
    }
    let access_token = opaque_token(&entropy);
    app.tokens
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .insert(
            access_token.expose_secret().to_owned(),
            Issued {
                client_id: grant.client_id().to_owned(),
                scopes: grant.scopes().to_vec(),
                expires_at: grant.expires_at(SystemTime::now()),
            },
        );
    axum_response(grant.respond(&access_token))
}

/// A resource that needs a bearer token with `orders.read`.
async fn orders(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    let token = match bearer_token(&headers) {
        Ok(token) => token,
        Err(missing_or_malformed) => {
            return axum_response(
                missing_or_malformed
                    .challenge()
                    .realm("orders")
                    .to_response(),
            );
        }
    };
    let (client_id, scopes) = {
        let tokens = app
            .tokens
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match tokens.get(token.expose_secret()) {
            Some(issued) if issued.expires_at > SystemTime::now() => {
                (issued.client_id.clone(), issued.scopes.clone())
            }
            _ => {
                return axum_response(
                    BearerChallenge::invalid_token()
                        .realm("orders")
                        .description("unknown or expired token")
                        .to_response(),
                );
            }
        }
    };
    if !scopes.iter().any(|s| s == "orders.read") {
        return axum_response(
            BearerChallenge::insufficient_scope(["orders.read"])
                .realm("orders")
                .to_response(),
        );
    }
    json(serde_json::json!({ "orders": [101, 102, 103], "for": client_id }))
}

/// The token endpoint described for OpenAPI 3.1 tools.
async fn openapi(State(app): State<Arc<App>>) -> Response {
    let endpoint = &app.endpoint;
    json(serde_json::json!({
        "openapi": "3.1.0",
        "info": { "title": "Orders", "version": "1.0.0" },
        "paths": {
            endpoint.token_path(): endpoint.openapi_path_item(),
            "/api/orders": { "get": {
                "security": [{ "oauth2": ["orders.read"] }],
                "responses": { "200": { "description": "The orders" } }
            } }
        },
        "components": { "securitySchemes": {
            "oauth2": endpoint.openapi_security_scheme(),
            "clientSecretBasic": endpoint.openapi_client_auth_scheme(),
        } }
    }))
}

fn json(value: serde_json::Value) -> Response {
    let mut response = Response::new(Body::from(value.to_string()));
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}

fn app() -> Result<Router, Box<dyn Error>> {
    let endpoint = TokenEndpoint::builder()
        .token_path("/oauth2/token")
        .scope("orders.read", "Read orders")
        .scope("orders.write", "Create and change orders")
        .token_lifetime(Duration::from_secs(600))
        .build()?;
    let clients = [
        RegisteredClient::new("reporting", "s3cr3t").scopes(["orders.read"]),
        RegisteredClient::new("checkout", "an0ther").scopes(["orders.read", "orders.write"]),
    ];
    let state = Arc::new(App {
        clients: clients
            .into_iter()
            .map(|c| (c.client_id().to_owned(), c))
            .collect(),
        tokens: Mutex::new(HashMap::new()),
        endpoint,
    });
    Ok(Router::new()
        // `any`: the endpoint answers other methods itself (405, `Allow: POST`, an OAuth error).
        .route(state.endpoint.token_path(), any(token))
        .route("/api/orders", get(orders))
        .route("/openapi.json", get(openapi))
        .with_state(state))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let serve = std::env::args().any(|a| a == "--serve");
    let listener = tokio::net::TcpListener::bind(if serve {
        "127.0.0.1:3000"
    } else {
        "127.0.0.1:0"
    })
    .await?;
    let base = format!("http://{}", listener.local_addr()?);
    let app = app()?;
    if serve {
        println!("token endpoint: {base}/oauth2/token   OpenAPI: {base}/openapi.json");
        println!(
            "try: curl -s -u reporting:s3cr3t -d grant_type=client_credentials {base}/oauth2/token"
        );
        axum::serve(listener, app).await?;
        return Ok(());
    }
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    // Call ourselves with the blocking client of this crate (feature `ureq`).
    let report = tokio::task::spawn_blocking(move || call_ourselves(&base))
        .await?
        .map_err(|e| e as Box<dyn Error>)?;
    println!("{report}");
    server.abort();
    Ok(())
}

fn call_ourselves(base: &str) -> Result<String, Box<dyn Error + Send + Sync>> {
    use client_credentials::ureq::{Client, Config, ureq};

    let config = Config::builder()
        .token_url(format!("{base}/oauth2/token"))
        .client_id("reporting")
        .client_secret("s3cr3t")
        .scopes(["orders.read"])
        .build()?;
    let client = Client::new(config);
    let token = client.token()?;
    let mut out = format!(
        "got a {} token for scope {:?}, valid {}s\n",
        token.token_type(),
        token.scopes().join(" "),
        token.lifetime().map_or(0, |l| l.as_secs()),
    );

    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let orders = format!("{base}/api/orders");
    let mut with_token = agent
        .get(&orders)
        .header("authorization", token.authorization_header())
        .call()?;
    out.push_str(&format!(
        "GET /api/orders with the token    -> {} {}\n",
        with_token.status(),
        with_token.body_mut().read_to_string()?
    ));
    let without = agent.get(&orders).call()?;
    out.push_str(&format!(
        "GET /api/orders without a token   -> {} (WWW-Authenticate: {})\n",
        without.status(),
        without
            .headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-")
    ));
    let mut refused = agent
        .post(&format!("{base}/oauth2/token"))
        .header("authorization", "Basic cmVwb3J0aW5nOndyb25n") // reporting:wrong
        .content_type("application/x-www-form-urlencoded")
        .send("grant_type=client_credentials")?;
    out.push_str(&format!(
        "a wrong secret at the token endpoint -> {} {}\n",
        refused.status(),
        refused.body_mut().read_to_string()?
    ));
    let mut spec = agent.get(&format!("{base}/openapi.json")).call()?;
    let spec: serde_json::Value = serde_json::from_str(&spec.body_mut().read_to_string()?)?;
    out.push_str(&format!(
        "OpenAPI: tokenUrl {} with scopes {}",
        spec["components"]["securitySchemes"]["oauth2"]["flows"]["clientCredentials"]["tokenUrl"],
        spec["components"]["securitySchemes"]["oauth2"]["flows"]["clientCredentials"]["scopes"]
    ));
    Ok(out)
}
