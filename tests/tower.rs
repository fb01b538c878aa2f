//! The tower layer over real sockets on 127.0.0.1: on hyper-util's client against the
//! testkit's resource server, and on a tonic channel against a tonic server that checks
//! the bearer token in the call's metadata (the standard health service).
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

use std::convert::Infallible;
use std::future::poll_fn;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::Poll;
use std::time::Duration;

use bytes::Bytes;
use client_credentials::Config;
use client_credentials::reqwest::{Client, Error, StaticCredential};
use client_credentials::tower::{AuthLayer, AuthService};
use client_credentials_testkit::conformance::authorized::{resource_server, tokens_seen};
use client_credentials_testkit::{Request as Seen, TestServer, TokenEndpoint, refused_url};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tonic::codegen::tokio_stream::{self, Stream};
use tonic::{Code, Status};
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::health_server::{Health, HealthServer};
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse, health_check_response};
use tower::{Service, ServiceBuilder, ServiceExt as _};

fn tokens(token_server: &TestServer) -> Client {
    let config = Config::builder()
        .token_url(token_server.url("/token"))
        .client_id("my-service")
        .client_secret("s3cr3t")
        .build()
        .unwrap();
    Client::builder(config)
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

fn hyper<B>() -> HyperClient<HttpConnector, B>
where
    B: http_body::Body + Send + 'static,
    B::Data: Send,
{
    HyperClient::builder(TokioExecutor::new()).build_http()
}

fn bearer(token: &str) -> Option<String> {
    Some(format!("Bearer {token}"))
}

async fn text<B: http_body::Body>(response: http::Response<B>) -> (u16, String)
where
    B::Error: std::fmt::Debug,
{
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

// ---------------------------------------------------------------------------------------
// hyper-util

#[tokio::test]
async fn a_hyper_client_carries_the_token_and_retries_a_revoked_one_once() {
    let token_server = TestServer::start(TokenEndpoint::new());
    let api = resource_server(&["token-1"]);
    let mut service = ServiceBuilder::new()
        .layer(AuthLayer::new(tokens(&token_server)))
        .service(hyper::<Full<Bytes>>());
    let request = http::Request::put(api.url("/api"))
        .body(Full::new(Bytes::from_static(b"again")))
        .unwrap();
    let response = service.ready().await.unwrap().call(request).await.unwrap();
    assert_eq!(text(response).await, (200, "ok".to_owned()));
    assert_eq!(tokens_seen(&api), [bearer("token-1"), bearer("token-2")]);
    let bodies: Vec<_> = api.requests().iter().map(Seen::body_text).collect();
    assert_eq!(bodies, ["again", "again"], "the body was replayed");

    // The fresh token is kept; a second rejection of it is the caller's answer.
    let api = resource_server(&["token-2", "token-3"]);
    let request = http::Request::get(api.url("/api"))
        .body(Full::default())
        .unwrap();
    let response = service.ready().await.unwrap().call(request).await.unwrap();
    assert_eq!(response.status(), 401, "one retry, never a loop");
    assert_eq!(tokens_seen(&api), [bearer("token-2"), bearer("token-3")]);
    assert_eq!(token_server.count("/token"), 3);
}

/// DPoP through the layer: a proof per request, and one retry of a `use_dpop_nonce`
/// challenge with the same token and the nonce.
#[tokio::test]
async fn a_dpop_nonce_challenge_is_retried_once_through_the_layer() {
    use client_credentials_testkit::conformance::dpop::{
        dpop_config, dpop_token_server, nonce_server, proof_claims,
    };
    let token_server = dpop_token_server();
    let tokens = Client::builder(dpop_config(&token_server))
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let mut service = ServiceBuilder::new()
        .layer(AuthLayer::new(tokens))
        .service(hyper::<Full<Bytes>>());
    let api = nonce_server(false);
    let request = http::Request::post(api.url("/api"))
        .body(Full::new(Bytes::from_static(b"again")))
        .unwrap();
    let response = service.ready().await.unwrap().call(request).await.unwrap();
    assert_eq!(text(response).await, (200, "ok".to_owned()));
    let seen = api.requests();
    assert_eq!(seen.len(), 2);
    let claims: Vec<_> = seen.iter().map(|r| proof_claims(r).unwrap()).collect();
    assert!(claims[0].get("nonce").is_none());
    assert_eq!(claims[1]["nonce"], "n-1");
    assert_eq!(claims[1]["htm"], "POST");
    assert!(
        seen.iter()
            .all(|r| r.header("authorization") == Some("DPoP token-1"))
    );
    assert_eq!(token_server.count("/token"), 1);
}

#[tokio::test]
async fn a_streaming_body_is_sent_as_it_comes_and_never_replayed() {
    let token_server = TestServer::start(TokenEndpoint::new());
    let api = resource_server(&["token-1"]);
    let mut service = ServiceBuilder::new()
        .layer(AuthLayer::new(tokens(&token_server)))
        .service(hyper::<UnsyncBoxBody<Bytes, Infallible>>());
    // A body that is not ready when the request is sent: it streams.
    let (mut sender, body) = http_body_util::channel::Channel::<Bytes, Infallible>::new(1);
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(20)).await;
        sender
            .send_data(Bytes::from_static(b"stream"))
            .await
            .unwrap();
    });
    let request = http::Request::put(api.url("/api"))
        .body(body.boxed_unsync())
        .unwrap();
    let response = service.ready().await.unwrap().call(request).await.unwrap();
    assert_eq!(
        response.status(),
        401,
        "the rejection is the caller's answer"
    );
    assert_eq!(tokens_seen(&api), [bearer("token-1")], "not replayed");
    assert_eq!(api.requests()[0].body_text(), "stream", "sent whole");

    // A boxed body that is ready at once is read ahead, and replayed.
    let api = resource_server(&["token-2"]);
    let body = Full::new(Bytes::from_static(b"ready")).boxed_unsync();
    let request = http::Request::put(api.url("/api")).body(body).unwrap();
    let response = service.ready().await.unwrap().call(request).await.unwrap();
    assert_eq!(response.status(), 200);
    let bodies: Vec<_> = api.requests().iter().map(Seen::body_text).collect();
    assert_eq!(bodies, ["ready", "ready"]);
}

#[tokio::test]
async fn a_body_over_the_replay_limit_is_sent_whole_and_not_replayed() {
    let token_server = TestServer::start(TokenEndpoint::new());
    let api = resource_server(&["token-1"]);
    let mut service = ServiceBuilder::new()
        .layer(AuthLayer::new(tokens(&token_server)).replay_limit(4))
        .service(hyper::<UnsyncBoxBody<Bytes, Infallible>>());
    let frames = ["ab", "cd", "ef"].map(|s| Ok(http_body::Frame::data(Bytes::from(s))));
    let body = http_body_util::StreamBody::new(tokio_stream::iter(frames)).boxed_unsync();
    let request = http::Request::put(api.url("/api")).body(body).unwrap();
    let response = service.ready().await.unwrap().call(request).await.unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(api.request_count(), 1);
    assert_eq!(api.requests()[0].body_text(), "abcdef");
}

#[tokio::test]
async fn without_a_token_nothing_is_sent() {
    let api = resource_server(&[]);
    let config = Config::builder()
        .token_url(refused_url("/token"))
        .client_id("my-service")
        .client_secret("s3cr3t")
        .build()
        .unwrap();
    let mut service = ServiceBuilder::new()
        .layer(AuthLayer::new(Client::new(config).unwrap()))
        .service(hyper::<Full<Bytes>>());
    let request = http::Request::get(api.url("/api"))
        .body(Full::default())
        .unwrap();
    let error = service
        .ready()
        .await
        .unwrap()
        .call(request)
        .await
        .unwrap_err();
    let error = error.downcast::<Error>().expect("the client's error");
    assert!(error.is_transport(), "{error}");
    assert_eq!(api.request_count(), 0);
}

#[tokio::test]
async fn a_static_credential_is_sent_as_it_is() {
    let api = TestServer::start(|r: &Seen| {
        client_credentials_testkit::Reply::text(
            200,
            "text/plain",
            r.header("x-api-key").unwrap_or("none"),
        )
    });
    let key = StaticCredential::api_key("x-api-key", "k-123").unwrap();
    let mut service = ServiceBuilder::new()
        .layer(AuthLayer::new(key))
        .service(hyper::<Full<Bytes>>());
    let request = http::Request::get(api.url("/"))
        .body(Full::default())
        .unwrap();
    let response = service.ready().await.unwrap().call(request).await.unwrap();
    assert_eq!(text(response).await, (200, "k-123".to_owned()));
    assert!(!format!("{service:?}").contains("k-123"));
}

#[tokio::test]
async fn readiness_is_the_inner_services_and_travels_with_the_call() {
    let token_server = TestServer::start(TokenEndpoint::new());
    let api = resource_server(&[]);
    let mut service: AuthService<_> = ServiceBuilder::new()
        .layer(AuthLayer::new(tokens(&token_server)))
        .concurrency_limit(1)
        .service(hyper::<Full<Bytes>>());
    let request = || {
        http::Request::get(api.url("/api"))
            .body(Full::default())
            .unwrap()
    };
    service.ready().await.unwrap();
    let in_flight = service.call(request());
    let polled = poll_fn(|cx| Poll::Ready(service.poll_ready(cx).is_ready())).await;
    assert!(!polled, "the one permit went with the call");
    drop(in_flight);
    let polled = poll_fn(|cx| Poll::Ready(service.poll_ready(cx).is_ready())).await;
    assert!(polled, "and came back when it ended");
    let response = service.call(request()).await.unwrap();
    assert_eq!(response.status(), 200);
}

// ---------------------------------------------------------------------------------------
// gRPC through tonic

/// A health service that answers only calls whose bearer token it accepts: the tokens in
/// `rejected` get `UNAUTHENTICATED` before any message (a trailers-only answer), or, for
/// `watch`, after one message (in the trailers).
struct Guarded {
    rejected: &'static [&'static str],
    calls: Arc<AtomicUsize>,
    tokens: Arc<std::sync::Mutex<Vec<String>>>,
}

impl Guarded {
    fn admit<T>(&self, request: &tonic::Request<T>) -> Result<bool, Status> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        let token = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(|| Status::unauthenticated("no token"))?
            .to_owned();
        self.tokens.lock().unwrap().push(token.clone());
        Ok(!self.rejected.contains(&token.as_str()))
    }
}

fn serving() -> HealthCheckResponse {
    HealthCheckResponse {
        status: health_check_response::ServingStatus::Serving.into(),
    }
}

#[tonic::codegen::async_trait]
impl Health for Guarded {
    async fn check(
        &self,
        request: tonic::Request<HealthCheckRequest>,
    ) -> Result<tonic::Response<HealthCheckResponse>, Status> {
        if !self.admit(&request)? {
            return Err(Status::unauthenticated("token revoked"));
        }
        Ok(tonic::Response::new(serving()))
    }

    type WatchStream =
        Pin<Box<dyn Stream<Item = Result<HealthCheckResponse, Status>> + Send + 'static>>;

    async fn watch(
        &self,
        request: tonic::Request<HealthCheckRequest>,
    ) -> Result<tonic::Response<Self::WatchStream>, Status> {
        let mut answers = vec![Ok(serving())];
        if !self.admit(&request)? {
            answers.push(Err(Status::unauthenticated("token revoked")));
        }
        Ok(tonic::Response::new(Box::pin(tokio_stream::iter(answers))))
    }
}

struct GrpcServer {
    addr: SocketAddr,
    calls: Arc<AtomicUsize>,
    tokens: Arc<std::sync::Mutex<Vec<String>>>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn grpc_server(rejected: &'static [&'static str]) -> GrpcServer {
    let calls = Arc::new(AtomicUsize::new(0));
    let tokens = Arc::new(std::sync::Mutex::new(Vec::new()));
    let service = HealthServer::new(Guarded {
        rejected,
        calls: calls.clone(),
        tokens: tokens.clone(),
    });
    let incoming =
        tonic::transport::server::TcpIncoming::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = incoming.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming_shutdown(incoming, async {
                let _ = stopped.await;
            }),
    );
    GrpcServer {
        addr,
        calls,
        tokens,
        _stop: stop,
    }
}

type Grpc = HealthClient<AuthService<tonic::transport::Channel>>;

async fn grpc_client(server: &GrpcServer, tokens: &Client) -> Grpc {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", server.addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    HealthClient::new(tokens.layer().layer(channel))
}

use tower::Layer as _;

fn check() -> HealthCheckRequest {
    HealthCheckRequest {
        service: String::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_grpc_calls_on_a_cold_cache_make_one_token_request() {
    let token_server = TestServer::start(TokenEndpoint::new());
    let server = grpc_server(&[]).await;
    let tokens = tokens(&token_server);
    let client = grpc_client(&server, &tokens).await;
    let calls: Vec<_> = (0..1000)
        .map(|_| {
            let mut client = client.clone();
            tokio::spawn(async move { client.check(check()).await.map(|r| r.into_inner()) })
        })
        .collect();
    for call in calls {
        assert_eq!(call.await.unwrap().unwrap(), serving());
    }
    assert_eq!(token_server.count("/token"), 1);
    assert_eq!(server.calls.load(Ordering::Relaxed), 1000);
    assert!(server.tokens.lock().unwrap().iter().all(|t| t == "token-1"));
}

#[tokio::test]
async fn a_revoked_token_gives_one_grpc_retry_then_success() {
    let token_server = TestServer::start(TokenEndpoint::new());
    let server = grpc_server(&["token-1"]).await;
    let tokens = tokens(&token_server);
    let mut client = grpc_client(&server, &tokens).await;
    let answer = client.check(check()).await.unwrap().into_inner();
    assert_eq!(answer, serving());
    assert_eq!(*server.tokens.lock().unwrap(), ["token-1", "token-2"]);

    // A server that rejects every token: one retry, then the caller's UNAUTHENTICATED.
    let server = grpc_server(&["token-2", "token-3"]).await;
    let mut client = grpc_client(&server, &tokens).await;
    let status = client.check(check()).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert_eq!(*server.tokens.lock().unwrap(), ["token-2", "token-3"]);
}

#[tokio::test]
async fn unauthenticated_in_the_trailers_drops_the_token_for_the_next_call() {
    let token_server = TestServer::start(TokenEndpoint::new());
    let server = grpc_server(&["token-1"]).await;
    let tokens = tokens(&token_server);
    let mut client = grpc_client(&server, &tokens).await;
    // The status comes after a message: too late to retry, but the token is dropped.
    let mut stream = client.watch(check()).await.unwrap().into_inner();
    assert_eq!(stream.message().await.unwrap(), Some(serving()));
    let status = stream.message().await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    drop(stream);
    let answer = client.check(check()).await.unwrap().into_inner();
    assert_eq!(answer, serving());
    assert_eq!(*server.tokens.lock().unwrap(), ["token-1", "token-2"]);
}

#[tokio::test]
async fn a_client_streaming_body_that_waits_is_never_replayed() {
    // tonic's body of a call whose messages are not ready when it is sent streams: the
    // read-ahead stops at the first wait, and the request is not replayed.
    let token_server = TestServer::start(TokenEndpoint::new());
    let tokens = tokens(&token_server);
    let (mut sender, body) = http_body_util::channel::Channel::<Bytes, Status>::new(1);
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let _ = sender.send_data(Bytes::from_static(b"\0\0\0\0\0")).await;
    });
    let api = resource_server(&["token-1"]);
    let mut service = ServiceBuilder::new()
        .layer(tokens.layer())
        .service(hyper::<tonic::body::Body>());
    let request = http::Request::post(api.url("/api"))
        .body(tonic::body::Body::new(body))
        .unwrap();
    let response = service.ready().await.unwrap().call(request).await.unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(tokens_seen(&api), [bearer("token-1")]);
}
