//! The driver of the core's [`Cache`]: a `std` mutex around it (never held across an
//! `.await`), a `tokio::sync::watch` channel that wakes the callers who wait, and a drop
//! guard that hands an abandoned fetch back. Every decision is the cache's; this file only
//! carries out its [`Action`]s and reports what the network said.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use client_credentials_core::driver::{self, Exchange, KeyDigest, Publish, Timeouts};
use client_credentials_core::{
    AccessToken, Action, Cache, Event, Failure, HttpRequest, RequestId, Token, TokenRequest,
};
use tokio::sync::watch;
use tracing::Instrument as _;

use crate::background::Background;
use crate::error::Error;
use crate::store::{FetchPermit, Lookup, SharedStore};
use crate::transport;

/// The shortest wait: a guard against a deadline that is already due (the cache promises
/// strictly future deadlines; this keeps a slip from spinning).
pub(crate) const MIN_WAIT: Duration = Duration::from_millis(1);

/// What every handle of one client shares.
pub(crate) struct Shared {
    pub(crate) config: client_credentials_core::Config,
    pub(crate) default_request: TokenRequest,
    pub(crate) http: reqwest::Client,
    pub(crate) timeouts: Timeouts,
    cache: Mutex<Cache>,
    /// Bumped after every input that changed the cache; a caller told to wait subscribes
    /// under the lock, so that no change after its poll goes unnoticed.
    changed: watch::Sender<()>,
    pub(crate) background: Background,
    pub(crate) store: Option<Arc<dyn SharedStore>>,
}

/// Whether the calling task runs inside a tokio runtime, where reqwest can send.
pub(crate) fn in_runtime() -> bool {
    tokio::runtime::Handle::try_current().is_ok()
}

/// Logs one of the cache's events: a warning for a failed fetch, a debug line otherwise.
/// No field holds a secret or a token.
pub(crate) fn log_event(event: &Event) {
    let log = driver::event_log(event);
    let (key, request_id, message) = (log.key, log.request_id, log.message);
    match log.error {
        Some(error) => {
            tracing::warn!(%key, request_id, %error, retryable = error.is_retryable(), "{message}")
        }
        None => tracing::debug!(%key, request_id, "{message}"),
    }
}

impl Shared {
    pub(crate) fn new(
        config: client_credentials_core::Config,
        http: reqwest::Client,
        timeouts: Timeouts,
        cache: Cache,
        background: Background,
        store: Option<Arc<dyn SharedStore>>,
    ) -> Self {
        Self {
            default_request: config.default_request(),
            config,
            http,
            timeouts,
            cache: Mutex::new(cache),
            changed: watch::channel(()).0,
            background,
            store,
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Cache> {
        // The lock is never held across I/O, an `.await` or user code; a panic while it was
        // held is a bug in the core, and the state it left is the best there is.
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Wakes the tasks waiting for the cache to change, and the background task (the
    /// schedule may have moved). Call it after unlocking, and only when an input changed
    /// something.
    pub(crate) fn notify(&self) {
        self.changed.send_replace(());
        self.background.wake();
    }

    /// Drains the events after an input that reports no [`Outcome`]: logs them, and wakes
    /// the waiters if there was any (an event is a change).
    ///
    /// [`Outcome`]: client_credentials_core::Outcome
    pub(crate) fn drain_and_notify(&self, mut cache: MutexGuard<'_, Cache>) {
        let mut any = false;
        let _ = driver::drain_events(&mut cache, None, |event| {
            any = true;
            log_event(event);
        });
        drop(cache);
        if any {
            self.notify();
        }
    }

    /// A valid token of `request`'s shape: the driver loop. Lock, poll, unlock; then use the
    /// token, wait for a change, send, or share the failure, as the cache says.
    pub(crate) async fn token(
        self: &Arc<Self>,
        request: &TokenRequest,
    ) -> Result<Arc<Token>, Error> {
        self.start_background();
        // Only the default request's shape is published; a poll of it may change what is.
        let published = std::ptr::eq(request, &self.default_request);
        let mut call = driver::Call::default();
        loop {
            let now = Instant::now();
            let (action, waiter) = {
                let mut cache = self.lock();
                let action = cache.poll(now, request);
                call.observe(&mut cache, now, &action);
                if published {
                    self.background.wake();
                }
                // Only a caller that waits subscribes, under the lock: any input after this
                // poll wakes it. The hit path touches nothing but the lock.
                let waiter = matches!(action, Action::Wait(_)).then(|| self.changed.subscribe());
                (action, waiter)
            };
            match (action, waiter) {
                (Action::Ready(token), _) => return Ok(token),
                (Action::Failed(error), _) => return Err(Error::Token(error)),
                (Action::Wait(until), waiter) => {
                    // Always `Some` here: subscribed under the lock, just above.
                    if let Some(waiter) = waiter {
                        wait(waiter, until.max(now + MIN_WAIT)).await;
                    }
                }
                (
                    Action::Send {
                        id,
                        request: http,
                        current,
                    },
                    _,
                ) => {
                    // The guard exists before any future that sends: dropping that future at
                    // any point, even unpolled, reports the request abandoned.
                    let flight = InFlight::new(self, id);
                    let key = KeyDigest::of(request.cache_key());
                    if let Some(token) = current {
                        // A refresh ahead of expiry: the caller keeps its valid token.
                        self.spawn_fetch(Some(key), flight, http);
                        return Ok(token);
                    }
                    if !in_runtime() {
                        // reqwest cannot send from here; the guard hands the send back.
                        drop(flight);
                        return Err(Error::NoRuntime);
                    }
                    self.fetch(Some(key), flight, http).await;
                }
            }
        }
    }

    /// Performs `flight`'s request and reports its outcome: asks the shared store first (if
    /// any), sends, reads the capped body, reports, and hands a fetched token to the store's
    /// permit. Dropping the future before it completes drops `flight`, which reports the
    /// request abandoned. `key` names the request shape in the span, when known.
    pub(crate) async fn fetch(
        self: &Arc<Self>,
        key: Option<KeyDigest>,
        mut flight: InFlight,
        http: HttpRequest,
    ) {
        let span = client_credentials_core::__exchange_span!(
            "token_fetch",
            self.config.token_url(),
            token_url = %self.config.token_url(),
            client_id = self.config.client_id(),
            key = key.map(tracing::field::display),
            request_id = flight.id.as_u64(),
        );
        async move {
            let Some(permit) = self.consult_store(flight.id).await else {
                return flight.answered();
            };
            let http =
                match transport::with_assertion(&self.config, http, self.timeouts.overall).await {
                    Ok(http) => http,
                    Err(error) => {
                        tracing::warn!(error = %error, "token request not sent");
                        let _unpublished = flight.complete(Err(Failure::Error(error)));
                        return;
                    }
                };
            tracing::debug!("sending token request");
            let started = Instant::now();
            let exchange = transport::send(
                &self.http,
                http,
                self.timeouts.overall,
                self.config.max_body(),
            )
            .await;
            log_exchange(&exchange, started);
            let publish = flight.complete(exchange);
            if let (Some(permit), Some(publish)) = (permit, publish) {
                publish_in_background(permit, publish);
            }
        }
        .instrument(span)
        .await;
    }

    /// Asks the shared store, if there is one, before request `id` is sent. `None`: a token
    /// another process fetched answered it, nothing to send. `Some(permit)`: send, and share
    /// the token through the permit, if any.
    async fn consult_store(
        self: &Arc<Self>,
        id: RequestId,
    ) -> Option<Option<Box<dyn FetchPermit>>> {
        let Some(store) = &self.store else {
            return Some(None);
        };
        let now = Instant::now();
        let Some(query) = self.lock().store_query(now, id) else {
            return Some(None);
        };
        match store.before_fetch(&query).await {
            Lookup::Shared(token) => {
                let now = Instant::now();
                let mut cache = self.lock();
                if cache.handle_shared_token(now, id, token) {
                    self.drain_and_notify(cache);
                    return None;
                }
                drop(cache);
                tracing::debug!("the shared store's token is not usable here, sending");
                Some(None)
            }
            Lookup::Fetch(permit) => Some(Some(permit)),
            _ => Some(None),
        }
    }

    /// Reports the exchange of request `id`, logs the events, and wakes the waiters if it
    /// changed anything. Returns the token to publish, if this request fetched one for a
    /// shared store.
    fn report(&self, id: RequestId, exchange: Exchange) -> Option<Publish> {
        let now = Instant::now();
        let (changed, publish) = {
            let mut cache = self.lock();
            let outcome = driver::handle_exchange(&mut cache, now, id, exchange);
            let publish = driver::drain_events(&mut cache, Some(id), log_event);
            (outcome.changed(), publish)
        };
        if changed {
            self.notify();
        }
        publish
    }

    /// Drops `rejected` from whichever request shape holds it.
    pub(crate) fn invalidate(&self, rejected: &AccessToken) -> bool {
        let now = Instant::now();
        let mut cache = self.lock();
        let dropped = cache.invalidate(now, rejected);
        self.drain_and_notify(cache);
        dropped
    }
}

/// Waits until the cache changes or `deadline` passes, whichever comes first. Outside a
/// tokio runtime there is no timer: the change alone ends the wait (the sender's drop guard
/// reports its request in every case).
async fn wait(mut changed: watch::Receiver<()>, deadline: Instant) {
    // The sender lives in the client, so `changed()` cannot fail while we wait.
    if in_runtime() {
        let _ = tokio::time::timeout_at(deadline.into(), changed.changed()).await;
    } else {
        let _ = changed.changed().await;
    }
}

fn log_exchange(exchange: &Exchange, started: Instant) {
    client_credentials_core::__record_exchange!(&tracing::Span::current(), exchange);
    let elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    match exchange {
        Ok(reply) => tracing::debug!(
            status = reply.status.as_u16(),
            elapsed_ms,
            "token response received"
        ),
        Err(failure) => tracing::debug!(
            elapsed_ms,
            ?failure,
            "token request ended without a response"
        ),
    }
}

/// Hands `publish` to the store's permit in a task of its own: the callers have their token,
/// and cancelling the fetch must not cut the write short.
fn publish_in_background(permit: Box<dyn FetchPermit>, publish: Publish) {
    let span = tracing::Span::current();
    let write = async move { permit.publish(&publish.token, publish.ttl).await }.instrument(span);
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) => drop(runtime.spawn(write)),
        // A fetch only runs in a runtime; without one, the permit is dropped and releases.
        Err(_) => drop(write),
    }
}

/// A request in flight. Completing it reports the exchange; dropping it uncompleted (the
/// sending future was cancelled, or its runtime shut down) reports it
/// [`Failure::Abandoned`], so that another caller sends. Either way the waiters wake.
pub(crate) struct InFlight {
    shared: Arc<Shared>,
    id: RequestId,
    done: bool,
}

impl InFlight {
    /// The guard of request `id`. Create it before the future that sends exists.
    pub(crate) fn new(shared: &Arc<Shared>, id: RequestId) -> Self {
        Self {
            shared: Arc::clone(shared),
            id,
            done: false,
        }
    }

    /// The shared store answered the request: nothing was sent, nothing is to report.
    fn answered(mut self) {
        self.done = true;
    }

    fn complete(&mut self, exchange: Exchange) -> Option<Publish> {
        self.done = true;
        self.shared.report(self.id, exchange)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if !self.done {
            let _ = self.shared.report(self.id, Err(Failure::Abandoned));
        }
    }
}
