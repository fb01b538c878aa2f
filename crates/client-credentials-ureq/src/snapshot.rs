//! The timer of the lock-free hit path: one parked thread per client that withdraws the
//! published token when the cache says its window ends
//! ([`Cache::snapshot_timeout`](client_credentials_core::Cache::snapshot_timeout)), so that
//! the hit never reads the clock.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::thread::{self, Thread};
use std::time::Instant;

use client_credentials_core::{Cache, TokenSlot};

use crate::client::{MIN_WAIT, Shared};

/// The client's side of the timer: the slot its callers read, and the thread to wake when
/// the schedule may have changed.
pub(crate) struct SnapshotTimer {
    pub(crate) slot: Arc<TokenSlot>,
    thread: OnceLock<Thread>,
    /// The origin of `planned`.
    epoch: Instant,
    /// When the timer next looks at the cache, in nanoseconds since `epoch` (`u64::MAX`:
    /// not before it is woken). Written by the timer and read by the callers, both under the
    /// cache's lock, so that a caller that publishes a token with an earlier window end
    /// sees the timer's latest plan and wakes it.
    planned: AtomicU64,
}

impl SnapshotTimer {
    pub(crate) fn new() -> Self {
        let threads = thread::available_parallelism().map_or(4, std::num::NonZero::get);
        Self {
            slot: Arc::new(TokenSlot::new(threads)),
            thread: OnceLock::new(),
            epoch: Instant::now(),
            planned: AtomicU64::new(u64::MAX),
        }
    }

    fn encode(&self, at: Option<Instant>) -> u64 {
        at.map_or(u64::MAX, |at| {
            let nanos = at.saturating_duration_since(self.epoch).as_nanos();
            u64::try_from(nanos)
                .unwrap_or(u64::MAX - 1)
                .min(u64::MAX - 1)
        })
    }

    /// Whether the cache's [`snapshot_timeout`](Cache::snapshot_timeout) is now earlier than
    /// the timer's plan, so that it must be woken. Call under the cache's lock.
    pub(crate) fn ends_earlier(&self, cache: &Cache) -> bool {
        self.encode(cache.snapshot_timeout()) < self.planned.load(Ordering::Relaxed)
    }

    /// When the timer looks next: when the published window ends, or, with nothing
    /// published, at the look it had planned if that is still ahead. Keeping that plan
    /// means that a token published again with a later window end (a fetch after an
    /// invalidation, say) needs no wake-up: the timer finds it at the planned look and
    /// plans anew then.
    fn next_look(&self, now: Instant, due: Option<Instant>) -> Option<Instant> {
        due.or_else(|| {
            let planned = self.planned.load(Ordering::Relaxed);
            let at = self
                .epoch
                .checked_add(std::time::Duration::from_nanos(planned))?;
            (planned != u64::MAX && at > now).then_some(at)
        })
    }

    /// Records when the timer will look next. Call under the cache's lock.
    fn plan(&self, at: Option<Instant>) {
        self.planned.store(self.encode(at), Ordering::Relaxed);
    }

    /// Wakes the timer: an input changed what is published, or the client is gone.
    pub(crate) fn wake(&self) {
        if let Some(thread) = self.thread.get() {
            thread.unpark();
        }
    }
}

impl Shared {
    /// Starts the timer thread and attaches the slot to the default request's shape. If no
    /// thread can be started, nothing is attached and every call takes the lock: slower,
    /// never stale.
    pub(crate) fn start_snapshot_timer(self: &Arc<Self>) {
        let client = Arc::downgrade(self);
        let spawned = thread::Builder::new()
            .name("client-credentials-snapshot".to_owned())
            .spawn(move || run(&client));
        match spawned {
            Ok(handle) => {
                let _ = self.snapshot.thread.set(handle.thread().clone());
                let now = Instant::now();
                let mut cache = self.lock();
                cache.attach(now, &self.default_request, Arc::clone(&self.snapshot.slot));
            }
            Err(e) => tracing::warn!(error = %e, "no snapshot timer thread: every call locks"),
        }
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        // The timer finds the client gone and ends.
        self.snapshot.wake();
    }
}

/// Sleeps until the published token's window ends (or until woken), withdraws it, and ends
/// when the client is gone. Between wake-ups it holds only a weak reference.
fn run(client: &Weak<Shared>) {
    loop {
        let Some(shared) = client.upgrade() else {
            return;
        };
        let guard = DetachOnPanic(&shared);
        let now = Instant::now();
        let next = {
            let mut cache = guard.0.lock();
            let _ = cache.handle_snapshot_timeout(now);
            let next = guard.0.snapshot.next_look(now, cache.snapshot_timeout());
            guard.0.snapshot.plan(next);
            next
        };
        drop(guard);
        drop(shared);
        match next {
            Some(at) => thread::park_timeout(at.saturating_duration_since(now).max(MIN_WAIT)),
            None => thread::park(),
        }
    }
}

/// Detaches the slot if the timer unwinds: a token nobody withdraws must not be served.
struct DetachOnPanic<'a>(&'a Shared);

impl Drop for DetachOnPanic<'_> {
    fn drop(&mut self) {
        if thread::panicking() {
            self.0.lock().detach_all();
        }
    }
}
