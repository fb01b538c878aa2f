//! gRPC with client credentials: a tonic client whose channel goes through the tower layer,
//! calling a tonic server (the standard health service) that accepts only tokens its
//! authorization server says are active, by introspection (RFC 7662).
//!
//! ```text
//! cargo run --example grpc
//! ```
//!
//! Everything runs on 127.0.0.1: the embedded authorization server, the gRPC server, the
//! client. The token is revoked behind the client's back half way through: the server
//! answers `UNAUTHENTICATED`, and the layer fetches a fresh token and sends the call once
//! more, so the caller sees only a success.
#![allow(clippy::print_stdout)] // an example shows what it does on stdout

use std::error::Error;

use client_credentials::embedded::{EmbeddedServer, Route};
use client_credentials::reqwest::{Client, Config};
use client_credentials::tower::AuthLayer;
use tonic::transport::{Endpoint, Server};
use tonic::{Request, Response, Status};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::health_server::{Health, HealthServer};
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};
use tower::ServiceBuilder;

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error + Send + Sync>> {
    // 1. An authorization server with the calling service and the gRPC server as clients.
    let auth = EmbeddedServer::builder()
        .scope("health.read", "Ask whether the service is up")
        .client("monitor", "monitor-secret", ["health.read"])
        .client("health-server", "server-secret", Vec::<String>::new())
        .start_async()
        .await?;
    println!("authorization server  {}", auth.token_url());

    // 2. The gRPC server: it introspects every caller's token with its own credentials.
    let introspection = Config::builder()
        .token_url(auth.token_url())
        .introspection_url(auth.introspection_url())
        .client_id("health-server")
        .client_secret("server-secret")
        .build()?;
    let guarded = Guarded {
        introspection: Client::new(introspection)?,
    };
    let incoming = tonic::transport::server::TcpIncoming::bind("127.0.0.1:0".parse()?)?;
    let grpc_addr = incoming.local_addr()?;
    tokio::spawn(
        Server::builder()
            .add_service(HealthServer::new(guarded))
            .serve_with_incoming(incoming),
    );
    println!("gRPC server           http://{grpc_addr}");

    // 3. The caller: one client for the process, and a channel through the tower layer.
    let config = Config::builder()
        .token_url(auth.token_url())
        .revocation_url(auth.revocation_url())
        .client_id("monitor")
        .client_secret("monitor-secret")
        .scopes(["health.read"])
        .build()?;
    let tokens = Client::new(config.clone())?;
    let channel = Endpoint::from_shared(format!("http://{grpc_addr}"))?
        .connect()
        .await?;
    let channel = ServiceBuilder::new()
        .layer(AuthLayer::new(tokens.clone()))
        .service(channel);
    let mut health = HealthClient::new(channel);

    for _ in 0..3 {
        let status = health.check(HealthCheckRequest::default()).await?;
        println!("check                 {:?}", status.into_inner().status());
    }
    println!(
        "3 calls               {} token request(s)",
        auth.requests(Route::Token)
    );

    // 4. The token is revoked elsewhere (another handle with the same credentials): the
    //    server refuses it, and the layer retries once with a fresh token.
    let revoked = tokens.token().await?;
    Client::new(config)?.revoke(revoked.access_token()).await?;
    let status = health.check(HealthCheckRequest::default()).await?;
    println!(
        "after a revocation    {:?}, {} token request(s)",
        status.into_inner().status(),
        auth.requests(Route::Token)
    );
    Ok(())
}

/// The health service, for callers with an active token that has the `health.read` scope.
struct Guarded {
    introspection: Client,
}

impl Guarded {
    async fn admit<T>(&self, request: &Request<T>) -> Result<(), Status> {
        let token = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(|| Status::unauthenticated("a bearer token is required"))?;
        let token = client_credentials::AccessToken::new(token);
        let answer = self
            .introspection
            .introspect(&token)
            .await
            .map_err(|_| Status::unavailable("cannot check the token now"))?;
        if !answer.active {
            return Err(Status::unauthenticated("the token is not active"));
        }
        if !answer.scopes.iter().any(|s| s == "health.read") {
            return Err(Status::permission_denied("health.read is required"));
        }
        Ok(())
    }
}

#[tonic::codegen::async_trait]
impl Health for Guarded {
    async fn check(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<HealthCheckResponse>, Status> {
        self.admit(&request).await?;
        Ok(Response::new(HealthCheckResponse {
            status: ServingStatus::Serving.into(),
        }))
    }

    type WatchStream = tonic::codegen::BoxStream<HealthCheckResponse>;

    async fn watch(
        &self,
        _request: Request<HealthCheckRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        Err(Status::unimplemented("only check is served here"))
    }
}
