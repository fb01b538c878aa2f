//! The lock-free hit path: a published snapshot of one request shape's token.

use std::cell::Cell;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use arc_swap::ArcSwapOption;

use crate::token::Token;

/// The most shards a slot has: beyond this, threads share shards (and the token copies in
/// them), which costs scaling, never correctness.
const MAX_SHARDS: usize = 64;

/// The token that a [`Cache`](crate::Cache) serves for one request shape, published for
/// callers that read it without the cache's lock: one atomic load, no clock read, no map
/// lookup, no shared write.
///
/// A driver makes one slot per request shape it serves often (the client's default request,
/// resolved when the client is built), hands it to [`Cache::attach`](crate::Cache::attach),
/// and on every call tries [`TokenSlot::get`] or [`TokenSlot::with`] before it takes the lock.
/// The cache publishes into the slot on every state change of that shape, under the
/// driver's lock, and withdraws the token when [`poll`](crate::Cache::poll) would no longer
/// serve it unchanged: when its refresh is due, when it stops being usable, when it is
/// invalidated. The last needs no input, so the driver calls
/// [`Cache::handle_snapshot_timeout`](crate::Cache::handle_snapshot_timeout) at
/// [`Cache::snapshot_timeout`](crate::Cache::snapshot_timeout) (a timer thread or task);
/// a driver that cannot keep that promise must not attach a slot. An empty slot means
/// "take the lock and poll", never "no token".
///
/// # Scaling
///
/// Handing every caller a clone of one shared `Arc<Token>` makes all cores write the same
/// reference count, which serialises them. The slot keeps a copy of the token per shard,
/// each in its own cache line, and each thread reads the shard it was assigned when it
/// first read any slot (round robin). [`TokenSlot::with`] lends the token without touching
/// a reference count at all.
///
/// Hits are counted per shard with a plain load and store, not an atomic read-modify-write
/// (which would cost more than the rest of the hit): exact while each thread has a shard of
/// its own, a lower bound when threads share one. [`Cache::counters`](crate::Cache::counters)
/// adds them to `cache_hits`.
pub struct TokenSlot {
    shards: Box<[Shard]>,
}

/// One cache line: a copy of the token, and the hits read from it.
#[repr(align(128))]
struct Shard {
    token: ArcSwapOption<Token>,
    hits: AtomicU64,
}

impl TokenSlot {
    /// An empty slot for about `threads` threads reading it at once (the machine's available
    /// parallelism, say): twice as many shards, rounded up to a power of two, at most 64.
    #[must_use]
    pub fn new(threads: usize) -> Self {
        let shards = threads
            .saturating_mul(2)
            .clamp(1, MAX_SHARDS)
            .next_power_of_two();
        Self {
            shards: (0..shards)
                .map(|_| Shard {
                    token: ArcSwapOption::empty(),
                    hits: AtomicU64::new(0),
                })
                .collect(),
        }
    }

    /// The published token, owned, if there is one: usable now and not yet due for refresh.
    #[inline]
    #[must_use]
    pub fn get(&self) -> Option<Arc<Token>> {
        let shard = self.shard();
        let token = shard.token.load_full()?;
        shard.count_hit();
        Some(token)
    }

    /// Calls `f` with the published token, if there is one, without taking a reference to it:
    /// the form that scales across cores. `f` runs while the token is pinned, so keep it
    /// short (build a header value, say); a slow `f` delays nothing but the freeing of a
    /// token that was replaced meanwhile. Without a published token, `f` is handed back
    /// uncalled, for the driver to call with the token it gets from the cache.
    ///
    /// # Errors
    /// `Err(f)` when nothing is published.
    #[inline]
    pub fn with<R, F: FnOnce(&Token) -> R>(&self, f: F) -> Result<R, F> {
        let shard = self.shard();
        let token = shard.token.load();
        let Some(token) = token.as_deref() else {
            return Err(f);
        };
        let result = f(token);
        shard.count_hit();
        Ok(result)
    }

    /// The hits served from this slot so far (a lower bound; see [the type docs](Self)).
    #[must_use]
    pub fn hits(&self) -> u64 {
        self.shards
            .iter()
            .map(|s| s.hits.load(Ordering::Relaxed))
            .fold(0, u64::wrapping_add)
    }

    /// Whether a token is published.
    #[must_use]
    pub fn is_published(&self) -> bool {
        self.shards[0].token.load().is_some()
    }

    /// Publishes `token`: a copy of its own in every shard.
    pub(crate) fn publish(&self, token: &Token) {
        for shard in &self.shards {
            shard.token.store(Some(Arc::new(token.clone())));
        }
    }

    /// Withdraws the token: readers take the lock and poll.
    pub(crate) fn withdraw(&self) {
        for shard in &self.shards {
            shard.token.store(None);
        }
    }

    #[inline]
    fn shard(&self) -> &Shard {
        // `shards.len()` is a power of two.
        &self.shards[thread_index() & (self.shards.len() - 1)]
    }
}

impl Shard {
    #[inline]
    fn count_hit(&self) {
        // Not `fetch_add`: see the type docs.
        self.hits.store(
            self.hits.load(Ordering::Relaxed).wrapping_add(1),
            Ordering::Relaxed,
        );
    }
}

impl fmt::Debug for TokenSlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenSlot")
            .field("shards", &self.shards.len())
            .field("published", &self.is_published())
            .field("hits", &self.hits())
            .finish()
    }
}

/// The shard index of the calling thread, assigned round robin on its first read.
#[inline]
fn thread_index() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static INDEX: Cell<usize> = const { Cell::new(usize::MAX) };
    }
    INDEX.with(|index| {
        let mine = index.get();
        if mine != usize::MAX {
            return mine;
        }
        let assigned = NEXT.fetch_add(1, Ordering::Relaxed) % MAX_SHARDS;
        index.set(assigned);
        assigned
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_are_a_power_of_two_within_bounds() {
        for (threads, shards) in [(0, 1), (1, 2), (2, 4), (3, 8), (12, 32), (1000, 64)] {
            assert_eq!(
                TokenSlot::new(threads).shards.len(),
                shards,
                "{threads} threads"
            );
        }
    }

    #[test]
    fn an_empty_slot_serves_nothing_and_counts_nothing() {
        let slot = TokenSlot::new(2);
        assert!(slot.get().is_none());
        assert!(slot.with(|_| ()).is_err());
        assert_eq!(slot.hits(), 0);
        assert!(!slot.is_published());
    }
}
