//! Refreshes off the caller's path: a refresh ahead of expiry that a caller's poll started
//! runs in a spawned task, and the optional background task drives the cache's timer input
//! ([`Cache::handle_timeout`](client_credentials_core::Cache::handle_timeout)), so that
//! tokens are renewed even when no caller asks.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Instant;

use client_credentials_core::HttpRequest;
use client_credentials_core::driver::{self, KeyDigest};
use tokio::sync::Notify;

use crate::driver::{InFlight, MIN_WAIT, Shared, log_event};

/// The background task's handle, kept by the client.
pub(crate) struct Background {
    /// Wakes the task: the schedule may have changed, or the client is gone.
    wake: Arc<Notify>,
    /// Whether the task runs. Cleared by the task when it ends, including when its runtime
    /// shuts down and drops it, so that a call from another runtime starts it again.
    running: Arc<AtomicBool>,
}

impl Background {
    pub(crate) fn new() -> Self {
        Self {
            wake: Arc::new(Notify::new()),
            running: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Wakes the task (or the next time it waits: the permit is kept).
    pub(crate) fn wake(&self) {
        self.wake.notify_one();
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        if let Some(background) = &self.background {
            // The task finds the client gone and ends.
            background.wake();
        }
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

    /// Starts the background refresh task, once, in the caller's runtime.
    pub(crate) fn start_background(self: &Arc<Self>) {
        let Some(background) = &self.background else {
            return;
        };
        // A plain load first: the hot path of every call must not write a shared line.
        if background.running.load(Ordering::Acquire)
            || background.running.swap(true, Ordering::AcqRel)
        {
            return;
        }
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                let running = Running(Arc::clone(&background.running));
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

    /// The timer input: evicts idle shapes and starts the refreshes that are due, each in a
    /// task of its own (never counted as a cache hit). Returns when to come back.
    fn handle_timeout(self: &Arc<Self>, now: Instant) -> Option<Instant> {
        let (refreshes, changed, next) = {
            let mut cache = self.lock();
            let changed = cache.handle_timeout(now);
            let refreshes: Vec<_> = std::iter::from_fn(|| cache.poll_refresh()).collect();
            let _ = driver::drain_events(&mut cache, None, log_event);
            (refreshes, changed, cache.poll_timeout())
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

/// Marks the background task as running while it lives; dropped when the task ends or is
/// dropped with its runtime.
struct Running(Arc<AtomicBool>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

/// The background loop: sleeps until the cache's next deadline (or until the schedule
/// changes), feeds it the timer input, and ends when the client is gone. Between wake-ups it
/// holds only a weak reference, so it never keeps the client alive.
async fn run(client: Weak<Shared>, wake: Arc<Notify>) {
    tracing::debug!("background token refresh started");
    loop {
        let Some(shared) = client.upgrade() else {
            tracing::debug!("background token refresh stopped: client dropped");
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
