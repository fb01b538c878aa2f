//! A [tower] layer that authorizes the requests of any `Service<http::Request<B>>`:
//! hyper-util's client, a tonic `Channel`, the outbound calls of an axum service (feature
//! `tower`; the `tonic` feature adds tonic's request body to the bodies it can replay).
//!
//! [`AuthLayer`] does for a tower stack what [`AuthMiddleware`](crate::AuthMiddleware) does
//! for reqwest, with the same rules, which are the core's:
//!
//! - Every request carries a token (or the static credential's header): when none can be
//!   had, the call fails with this crate's [`Error`] (boxed, as tower's errors are) and
//!   nothing reaches the inner service.
//! - When the resource server rejects the token (a 401, a `WWW-Authenticate: Bearer
//!   error="invalid_token"` challenge, or gRPC's `UNAUTHENTICATED`, as the core's
//!   [`resource_verdict`](client_credentials_core::Cache::resource_verdict) decides), that
//!   token, and only that one, is dropped, and the request is sent once more with a fresh
//!   token if its body can be replayed ([`ReplayBody`]). The answer to that retry is
//!   returned as it is. A body that streams is sent as it comes and never replayed.
//! - gRPC puts its status in the trailers unless the call fails before any message (a
//!   "trailers-only" answer, where it is in the headers: how servers refuse a token). A
//!   status that comes in the trailers arrives after the answer was handed over, so it
//!   cannot be retried; [`ResponseBody`] reads it as the body ends, and an
//!   `UNAUTHENTICATED` there drops the token, so that the next call gets a fresh one.
//! - Backpressure is the inner service's: [`AuthService::poll_ready`](tower_service::Service::poll_ready)
//!   is the inner one's, the call is made on the service that was polled ready, and a retry
//!   waits until the inner service is ready again.
//!
//! Token fetches use the async [`Client`]: its cache, single flight and refresh ahead of
//! expiry, so that a thousand calls on a cold cache make one token request, and warm calls
//! read the token without a lock ([`Client::with_token`]).
//!
//! ```no_run
//! use client_credentials::reqwest::tower::AuthLayer;
//! use client_credentials::reqwest::{Client, Config};
//! use http_body_util::Full;
//! use hyper_util::client::legacy::Client as HyperClient;
//! use hyper_util::rt::TokioExecutor;
//! use tower::{Service as _, ServiceBuilder, ServiceExt as _};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! let config = Config::builder()
//!     .token_url("https://auth.example.com/oauth2/token")
//!     .client_id("my-service")
//!     .client_secret("s3cr3t")
//!     .build()?;
//! let tokens = Client::new(config)?;
//! let hyper = HyperClient::builder(TokioExecutor::new()).build_http::<Full<bytes::Bytes>>();
//! let mut service = ServiceBuilder::new()
//!     .layer(AuthLayer::new(tokens))
//!     .service(hyper);
//! let request = http::Request::get("http://127.0.0.1:8080/orders").body(Full::default())?;
//! let response = service.ready().await?.call(request).await?;
//! # let _ = response;
//! # Ok(())
//! # }
//! ```
//!
//! [tower]: https://docs.rs/tower

use std::collections::VecDeque;
use std::fmt;
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker, ready};

use bytes::Bytes;
use client_credentials_core::{Cache, ResourceAuth, TokenParams, TokenRequest};
use http::header::CONTENT_TYPE;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body::{Body, Frame, SizeHint};
use tower_layer::Layer;
use tower_service::Service;

use crate::client::Client;
use crate::credentials::{Credentials, Source};
use crate::error::Error;

/// The error of an [`AuthService`]: the inner service's error, or this crate's [`Error`]
/// when no token could be had (downcast to tell them apart). tower's own layers use the
/// same type.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The future of an [`AuthService`] call.
pub type ResponseFuture<R> =
    Pin<Box<dyn Future<Output = Result<Response<ResponseBody<R>>, BoxError>> + Send>>;

/// How much of a request body [`ReplayBody::try_replay`] keeps, by default, to send it
/// again: 64 KiB, more than a unary gRPC call or a JSON request usually needs.
pub const DEFAULT_REPLAY_LIMIT: usize = 64 * 1024;

/// The most frames read ahead of a body, whatever their size: a body of empty frames ends
/// the read-ahead too.
const MAX_READ_AHEAD_FRAMES: usize = 1024;

/// A [`tower_layer::Layer`] that authorizes every request of the service it wraps: tokens
/// of a [`Client`], or a [`StaticCredential`](crate::StaticCredential)'s header (sent as it
/// is, never refreshed, never retried). See [the module docs](self) for the rules.
#[derive(Clone)]
pub struct AuthLayer {
    source: Arc<Source>,
    replay_limit: usize,
}

impl fmt::Debug for AuthLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.source.debug("AuthLayer", f)
    }
}

impl AuthLayer {
    /// A layer that attaches the credentials to every request: tokens of a [`Client`]'s
    /// default request shape, or a static credential.
    #[must_use]
    pub fn new(credentials: impl Into<Credentials>) -> Self {
        Self {
            source: Arc::new(Source::new(credentials.into())),
            replay_limit: DEFAULT_REPLAY_LIMIT,
        }
    }

    /// A layer that attaches tokens for these parameters (scopes, audience, resources…),
    /// validated now.
    ///
    /// # Errors
    /// [`Error::Config`] when the parameters are invalid.
    pub fn with_params(client: Client, params: &TokenParams) -> Result<Self, Error> {
        Ok(Self {
            source: Arc::new(Source::with_params(client, params)?),
            replay_limit: DEFAULT_REPLAY_LIMIT,
        })
    }

    /// How many bytes of a request body are kept to replay it after a rejected token
    /// ([`DEFAULT_REPLAY_LIMIT`] by default); a longer body is sent, and never replayed.
    #[must_use]
    pub fn replay_limit(mut self, bytes: usize) -> Self {
        self.replay_limit = bytes;
        self
    }

    /// The client the tokens come from; `None` for a static credential.
    #[must_use]
    pub fn client(&self) -> Option<&Client> {
        self.source.client()
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = AuthService<S>;

    fn layer(&self, inner: S) -> AuthService<S> {
        AuthService {
            inner,
            source: self.source.clone(),
            replay_limit: self.replay_limit,
        }
    }
}

impl Client {
    /// An [`AuthLayer`] for this client's default request shape.
    #[must_use]
    pub fn layer(&self) -> AuthLayer {
        AuthLayer::new(self.clone())
    }
}

/// The service of an [`AuthLayer`]: the inner service, with every request authorized.
#[derive(Clone)]
pub struct AuthService<S> {
    inner: S,
    source: Arc<Source>,
    replay_limit: usize,
}

impl<S> fmt::Debug for AuthService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.source.debug("AuthService", f)
    }
}

impl<S> AuthService<S> {
    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, to take back.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, B, R> Service<Request<B>> for AuthService<S>
where
    S: Service<Request<B>, Response = Response<R>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Into<BoxError>,
    B: ReplayBody + Send + 'static,
    R: Send + 'static,
{
    type Response = Response<ResponseBody<R>>;
    type Error = BoxError;
    type Future = ResponseFuture<R>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        // The service that was polled ready takes the request; a clone waits for the next
        // `poll_ready` (tower's rule for services that are called from a future).
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(send(inner, self.source.clone(), self.replay_limit, request))
    }
}

/// Sends `request` through `inner` with the credentials of `source`, and once more with a
/// fresh token when the verdict on the answer says so and the body can be replayed.
async fn send<S, B, R>(
    mut inner: S,
    source: Arc<Source>,
    replay_limit: usize,
    mut request: Request<B>,
) -> Result<Response<ResponseBody<R>>, BoxError>
where
    S: Service<Request<B>, Response = Response<R>>,
    S::Error: Into<BoxError>,
    B: ReplayBody,
{
    let (client, shape) = match &*source {
        Source::Client { client, request } => (client, request.as_ref()),
        Source::Static(credential) => {
            credential.authorize(&mut request);
            let response = inner.call(request).await.map_err(Into::into)?;
            return Ok(response.map(|body| ResponseBody::new(body, None)));
        }
    };
    let shared = &client.shared;
    let (mut parts, body) = request.into_parts();
    let (method, uri) = (parts.method.clone(), parts.uri.clone());
    let target = Some((&method, &uri));
    let auth = shared.authorization(shape, target).await?;
    auth.apply(&mut parts.headers);
    let (body, replay) = body.try_replay(replay_limit);
    let retry = replay.map(|body| Request::from_parts(parts.clone(), body));
    let response = inner
        .call(Request::from_parts(parts, body))
        .await
        .map_err(Into::into)?;
    let fresh = shared
        .fresh_header_for_retry(
            shape,
            Some(&uri),
            response.status(),
            response.headers(),
            &auth,
            retry.is_some().then_some(target),
        )
        .await?;
    let (response, used) = match (fresh, retry) {
        (Some(fresh), Some(mut retry)) => {
            drop(response);
            fresh.apply(retry.headers_mut());
            poll_fn(|cx| inner.poll_ready(cx))
                .await
                .map_err(Into::into)?;
            let response = inner.call(retry).await.map_err(Into::into)?;
            shared.note_dpop_nonce(Some(&uri), response.headers());
            (response, fresh)
        }
        _ => (response, auth),
    };
    let watch = is_grpc(response.headers()).then(|| TrailerWatch {
        client: client.clone(),
        shape: shape.cloned(),
        uri,
        used,
    });
    Ok(response.map(|body| ResponseBody::new(body, watch)))
}

/// Whether an answer is gRPC's, whose status may come in the trailers.
fn is_grpc(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"))
}

/// What it takes to report a rejection that comes in the trailers.
struct TrailerWatch {
    client: Client,
    shape: Option<TokenRequest>,
    uri: http::Uri,
    used: ResourceAuth,
}

impl TrailerWatch {
    /// The core's verdict on the trailers, as if they were the headers of an answer with
    /// status 200: a token that was rejected is dropped (nothing is retried).
    fn trailers(self, trailers: &HeaderMap) {
        if !Cache::needs_verdict(StatusCode::OK, trailers) {
            return;
        }
        let _ = self.client.shared.verdict(
            self.shape.as_ref(),
            Some(&self.uri),
            StatusCode::OK,
            trailers,
            &self.used,
        );
    }
}

pin_project_lite::pin_project! {
    /// The body of an [`AuthService`]'s answer: the inner service's body, as it is; for a
    /// gRPC answer, its trailers are read as they pass, and a status `UNAUTHENTICATED`
    /// there drops the token that was used ([the module docs](self)).
    pub struct ResponseBody<B> {
        #[pin]
        inner: B,
        watch: Option<TrailerWatch>,
    }
}

impl<B> ResponseBody<B> {
    fn new(inner: B, watch: Option<TrailerWatch>) -> Self {
        Self { inner, watch }
    }

    /// The inner body, to take back.
    pub fn into_inner(self) -> B {
        self.inner
    }
}

impl<B> fmt::Debug for ResponseBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseBody")
            .field("grpc", &self.watch.is_some())
            .finish_non_exhaustive()
    }
}

impl<B: Body> Body for ResponseBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let frame = ready!(this.inner.poll_frame(cx));
        if let Some(Ok(frame)) = &frame
            && let Some(trailers) = frame.trailers_ref()
            && let Some(watch) = this.watch.take()
        {
            watch.trailers(trailers);
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A request body that an [`AuthService`] can send a second time, after the resource server
/// rejected the token it carried.
///
/// Implemented for bodies that are cheap to copy (`Full<Bytes>`, `Empty<Bytes>`, `String`
/// up to the limit), and for boxed and tonic bodies by reading ahead: the frames that are
/// ready without waiting, up to the limit, are taken before the request is sent; a body
/// that ends within them (a unary gRPC call, a body built from bytes) can be replayed, and
/// one that would wait or is longer is sent as it comes (the frames read, then the rest) and
/// never replayed. Implement it for a body type of your own the same way; the default is
/// no replay.
pub trait ReplayBody: Body + Sized {
    /// The body to send now and, if the body can be sent again, a copy of it; `limit`
    /// bounds the bytes that the copy may hold.
    fn try_replay(self, limit: usize) -> (Self, Option<Self>) {
        let _ = limit;
        (self, None)
    }
}

impl ReplayBody for http_body_util::Full<Bytes> {
    fn try_replay(self, _limit: usize) -> (Self, Option<Self>) {
        // A copy shares the bytes.
        (self.clone(), Some(self))
    }
}

impl ReplayBody for http_body_util::Empty<Bytes> {
    fn try_replay(self, _limit: usize) -> (Self, Option<Self>) {
        (self, Some(Self::new()))
    }
}

impl ReplayBody for String {
    fn try_replay(self, limit: usize) -> (Self, Option<Self>) {
        let copy = (self.len() <= limit).then(|| self.clone());
        (self, copy)
    }
}

impl<E: Send + Sync + 'static> ReplayBody for http_body_util::combinators::BoxBody<Bytes, E> {
    fn try_replay(self, limit: usize) -> (Self, Option<Self>) {
        read_ahead(self, limit, Self::new)
    }
}

impl<E: Send + 'static> ReplayBody for http_body_util::combinators::UnsyncBoxBody<Bytes, E> {
    fn try_replay(self, limit: usize) -> (Self, Option<Self>) {
        read_ahead(self, limit, Self::new)
    }
}

#[cfg(feature = "tonic")]
impl ReplayBody for tonic::body::Body {
    fn try_replay(self, limit: usize) -> (Self, Option<Self>) {
        read_ahead(self, limit, Self::new)
    }
}

/// Reads the frames of `body` that are ready without waiting, up to `limit` bytes: a body
/// that ends within them is rebuilt (by `rebuild`) twice, to send and to replay; any other
/// is rebuilt once from the frames read and the rest of it.
fn read_ahead<B>(mut body: B, limit: usize, rebuild: impl Fn(ReadAhead<B>) -> B) -> (B, Option<B>)
where
    B: Body<Data = Bytes> + Unpin,
{
    let mut frames = VecDeque::new();
    let mut size = 0_usize;
    // Waiting is what ends the read-ahead, so nothing needs waking: the sender polls the
    // rest with its own context, which registers its own waker.
    let mut cx = Context::from_waker(Waker::noop());
    let complete = loop {
        if body.is_end_stream() {
            break true;
        }
        if frames.len() >= MAX_READ_AHEAD_FRAMES {
            break false;
        }
        match Pin::new(&mut body).poll_frame(&mut cx) {
            Poll::Ready(None) => break true,
            Poll::Ready(Some(Ok(frame))) => {
                size = size.saturating_add(frame.data_ref().map_or(0, Bytes::len));
                frames.push_back(frame);
                if size > limit {
                    break false;
                }
            }
            Poll::Ready(Some(Err(error))) => {
                let failed = ReadAhead {
                    frames,
                    rest: None,
                    error: Some(Box::new(error)),
                };
                return (rebuild(failed), None);
            }
            Poll::Pending => break false,
        }
    };
    if !complete {
        let partial = ReadAhead {
            frames,
            rest: Some(body),
            error: None,
        };
        return (rebuild(partial), None);
    }
    let copy = frames.iter().map(copy_frame).collect();
    (
        rebuild(ReadAhead::ended(frames)),
        Some(rebuild(ReadAhead::ended(copy))),
    )
}

fn copy_frame(frame: &Frame<Bytes>) -> Frame<Bytes> {
    match (frame.data_ref(), frame.trailers_ref()) {
        (Some(data), _) => Frame::data(data.clone()),
        (None, Some(trailers)) => Frame::trailers(trailers.clone()),
        // http-body 1 has no other kind of frame.
        (None, None) => Frame::data(Bytes::new()),
    }
}

/// A body read ahead: the frames read, then the error that ended the reading or the rest of
/// the body.
struct ReadAhead<B: Body> {
    frames: VecDeque<Frame<Bytes>>,
    error: Option<Box<B::Error>>,
    rest: Option<B>,
}

impl<B: Body> ReadAhead<B> {
    fn ended(frames: VecDeque<Frame<Bytes>>) -> Self {
        Self {
            frames,
            error: None,
            rest: None,
        }
    }
}

impl<B: Body<Data = Bytes> + Unpin> Body for ReadAhead<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = self.get_mut();
        if let Some(frame) = this.frames.pop_front() {
            return Poll::Ready(Some(Ok(frame)));
        }
        if let Some(error) = this.error.take() {
            return Poll::Ready(Some(Err(*error)));
        }
        match &mut this.rest {
            Some(rest) => Pin::new(rest).poll_frame(cx),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.frames.is_empty()
            && self.error.is_none()
            && self.rest.as_ref().is_none_or(Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        let read: u64 = self
            .frames
            .iter()
            .filter_map(Frame::data_ref)
            .map(|d| d.len() as u64)
            .sum();
        let rest = self
            .rest
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), Body::size_hint);
        // Lower first, with no upper bound yet: `set_lower` refuses a lower above the upper.
        let mut hint = SizeHint::new();
        hint.set_lower(rest.lower().saturating_add(read));
        if let Some(upper) = rest.upper() {
            hint.set_upper(upper.saturating_add(read));
        }
        hint
    }
}
