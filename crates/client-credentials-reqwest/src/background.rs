//! Work off the caller's path: a refresh ahead of expiry that a caller's poll started runs in
//! a spawned task, and one background task per client withdraws the published token of the
//! lock-free hit path when its window ends
//! ([`Cache::handle_snapshot_timeout`](client_credentials_core::Cache::handle_snapshot_timeout)),
//! and, when asked, drives the cache's timer input
//! ([`Cache::handle_timeout`](client_credentials_core::Cache::handle_timeout)), so that
//! tokens are renewed even when no caller asks.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Instant;

use client_credentials_core::driver::{self, KeyDigest};
use client_credentials_core::{HttpRequest, TokenSlot};
use tokio::sync::Notify;

use crate::driver::{InFlight, MIN_WAIT, Shared, log_event};

/// The background task's handle, kept by the client.
pub(crate) struct Background {
    /// Wakes the task: the schedule may have changed, or the client is gone.
    wake: Arc<Notify>,
    /// Whether the task runs. Cleared by the task when it ends, including when its runtime
    /// shuts down and drops it, so that a call from another runtime starts it again.
    running: Arc<AtomicBool>,
    /// Whether the task also refreshes tokens that no caller asks for
    /// ([`ClientBuilder::background_refresh`](crate::ClientBuilder::background_refresh)).
    refresh: bool,
    /// The default request's published token, read without the lock. Attached to the cache
    /// while the task runs (only then is it withdrawn in time), detached when it ends.
    pub(crate) slot: Arc<TokenSlot>,
}

impl Background {
    pub(crate) fn new(refresh: bool) -> Self {
        let threads = std::thread::available_parallelism().map_or(4, std::num::NonZero::get);
        Self {
            wake: Arc::new(Notify::new()),
            running: Arc::new(AtomicBool::new(false)),
            refresh,
            slot: Arc::new(TokenSlot::new(threads)),
        }
    }

    /// Whether the task refreshes tokens ahead of expiry on its own.
    pub(crate) fn refreshes(&self) -> bool {
        self.refresh
    }

    /// Wakes the task (or the next time it waits: the permit is kept).
    pub(crate) fn wake(&self) {
        self.wake.notify_one();
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        // The task finds the client gone and ends.
        self.background.wake();
    }
}

impl Shared {
    /// Runs `flight`'s request in a task of its own, in the caller's runtime; the caller
    /// keeps its valid token meanwhile. Outside a runtime (reqwest could not send from
    /// there) the request is handed back at once, so that a caller in a runtime takes it.
    pub(crate) fn spawn_fetch(
        self: &Arc<Self>,
        key: Option<KeyDigest>,
        flight: InFlight,
        http: HttpRequest,
    ) {
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                // `flight` moves into the task: a task dropped before its first poll (the
                // runtime shut down) still reports the request abandoned.
                let shared = Arc::clone(self);
                drop(runtime.spawn(async move { shared.fetch(key, flight, http).await }));
            }
            Err(_) => {
                tracing::warn!("no tokio runtime to refresh the token in; refresh deferred");
                drop(flight);
            }
        }
    }

    /// Starts the background task, once, in the caller's runtime.
    pub(crate) fn start_background(self: &Arc<Self>) {
        let background = &self.background;
        // A plain load first: every call that takes the lock comes here.
        if background.running.load(Ordering::Acquire)
            || background.running.swap(true, Ordering::AcqRel)
        {
            return;
        }
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                let running = Running {
                    client: Arc::downgrade(self),
                    running: Arc::clone(&background.running),
                };
                let task = run(Arc::downgrade(self), Arc::clone(&background.wake));
                drop(runtime.spawn(async move {
                    let _running = running;
                    task.await;
                }));
            }
            // Not in a runtime: try again on the next call.
            Err(_) => background.running.store(false, Ordering::Release),
        }
    }

    /// The timer inputs: withdraws the published token whose window ended and, with
    /// background refresh, evicts idle shapes and starts the refreshes that are due, each in
    /// a task of its own (never counted as a cache hit). Returns when to come back.
    fn handle_timeout(self: &Arc<Self>, now: Instant) -> Option<Instant> {
        let refresh = self.background.refreshes();
        let (refreshes, changed, next) = {
            let mut cache = self.lock();
            let _ = cache.handle_snapshot_timeout(now);
            let changed = refresh && cache.handle_timeout(now);
            let refreshes: Vec<_> = std::iter::from_fn(|| cache.poll_refresh()).collect();
            let _ = driver::drain_events(&mut cache, None, log_event);
            let snapshot = cache.snapshot_timeout();
            let next = if refresh {
                earliest(cache.poll_timeout(), snapshot)
            } else {
                snapshot
            };
            (refreshes, changed, next)
        };
        for refresh in refreshes {
            let flight = InFlight::new(self, refresh.id);
            self.spawn_fetch(None, flight, refresh.request);
        }
        if changed {
            self.notify();
        }
        next
    }
}

/// The earlier of two deadlines, either of which may be absent.
fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Marks the background task as running while it lives; dropped when the task ends or is
/// dropped with its runtime. It detaches the slot first (nobody withdraws a published token
/// any more), then lets a later call start the task again.
struct Running {
    client: Weak<Shared>,
    running: Arc<AtomicBool>,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(shared) = self.client.upgrade() {
            shared.lock().detach_all();
        }
        self.running.store(false, Ordering::Release);
    }
}

/// The background loop: sleeps until the cache's next deadline (or until the schedule
/// changes), feeds it the timer input, and ends when the client is gone. Between wake-ups it
/// holds only a weak reference, so it never keeps the client alive.
async fn run(client: Weak<Shared>, wake: Arc<Notify>) {
    tracing::debug!("background task started");
    if let Some(shared) = client.upgrade() {
        let now = Instant::now();
        let slot = Arc::clone(&shared.background.slot);
        shared.lock().attach(now, &shared.default_request, slot);
    }
    loop {
        let Some(shared) = client.upgrade() else {
            tracing::debug!("background task stopped: client dropped");
            return;
        };
        let now = Instant::now();
        let next = shared.handle_timeout(now);
        drop(shared);
        match next {
            // Woken early or at the deadline: look again either way.
            Some(at) => {
                drop(tokio::time::timeout_at(at.max(now + MIN_WAIT).into(), wake.notified()).await)
            }
            None => wake.notified().await,
        }
    }
}
