//! The lock-free hit path: a published snapshot of one request shape's token.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use arc_swap::ArcSwapOption;

use crate::token::Token;

/// The most shards a slot has: beyond this, threads share shards (and the token copies in
/// them), which costs scaling, never correctness.
const MAX_SHARDS: usize = 64;

/// How many slots a thread remembers at once (direct mapped by slot id): a thread that reads
/// more slots than this in turn still gets their tokens, from the shards, a little slower.
const WAYS: usize = 8;

/// The token that a [`Cache`](crate::Cache) serves for one request shape, published for
/// callers that read it without the cache's lock: no lock, no clock read, no map lookup, no
/// shared write.
///
/// A driver makes one slot per request shape it serves often (the client's default request,
/// resolved when the client is built), hands it to [`Cache::attach`](crate::Cache::attach),
/// and on every call tries [`TokenSlot::get`] or [`TokenSlot::with`] before it takes the lock.
/// The cache publishes into the slot on every state change of that shape, under the
/// driver's lock, and withdraws the token when [`poll`](crate::Cache::poll) would no longer
/// serve it: when it stops being usable, when it is invalidated. When its refresh is due
/// the token stays published and the slot sends the next reader, one, to the lock, whose
/// poll starts the refresh (and serves that reader the same token): a thousand callers at
/// the refresh point do not all queue on the lock. Time alone ends a window, so the driver
/// calls
/// [`Cache::handle_snapshot_timeout`](crate::Cache::handle_snapshot_timeout) at
/// [`Cache::snapshot_timeout`](crate::Cache::snapshot_timeout) (a timer thread or task);
/// a driver that cannot keep that promise must not attach a slot. An empty slot means
/// "take the lock and poll", never "no token".
///
/// # How a read works, and why it scales
///
/// Handing every caller a clone of one shared `Arc<Token>` makes all cores write the same
/// reference count, which serialises them. The slot keeps a copy of the token per shard,
/// each in its own cache line, and each thread reads the shard it was assigned when it
/// first read any slot (round robin). Every publication and withdrawal then bumps the slot's
/// generation. A thread remembers, per slot, the generation it last saw and its shard's
/// token at that generation; a read compares the slot's generation (one load of a line that
/// only publications write) with the remembered one and, while they match, serves the
/// remembered token: no atomic read-modify-write, no fence, no write to memory another core
/// reads. [`TokenSlot::with`] lends it; [`TokenSlot::get`] clones the `Arc` of the thread's
/// own shard. Only after a change does a thread read its shard again.
///
/// A thread's remembered token is released on that thread's next read of the slot after a
/// change, or when the thread exits: a thread that stops calling keeps the token it last
/// read (zeroized when released) until then, as a caller keeps the `Arc` that
/// [`TokenSlot::get`] handed it.
///
/// Hits are counted per shard with a plain load and store, not an atomic read-modify-write
/// (which would cost more than the rest of the hit): exact while each thread has a shard of
/// its own, a lower bound when threads share one. [`Cache::counters`](crate::Cache::counters)
/// adds them to `cache_hits`.
pub struct TokenSlot {
    head: Head,
    shards: Box<[Shard]>,
}

/// What every read loads, in a cache line of its own that only publications write.
#[repr(align(128))]
struct Head {
    /// This slot's identity in the threads' memories; never reused.
    id: u64,
    /// Raised to the next even value after every publication and withdrawal (`Release`),
    /// read first by every read (`Acquire`), so a reader that sees a generation sees at
    /// least its shards' state. Odd while the published token's refresh is due: the one
    /// reader that moves it on to the next even value is sent to the lock (its poll starts
    /// the refresh), every other reader keeps the token. One word, so that a hit tests it
    /// with the load it makes anyway.
    generation: AtomicU64,
}

/// One cache line: a copy of the token, and the hits read from it.
#[repr(align(128))]
struct Shard {
    token: ArcSwapOption<Token>,
    hits: AtomicU64,
}

/// What a thread remembers of one slot.
struct Memory {
    /// The slot's id (0: nothing remembered).
    slot: u64,
    generation: u64,
    /// The thread's shard's token at that generation (`None`: withdrawn).
    token: Option<Arc<Token>>,
}

const FORGOTTEN: Memory = Memory {
    slot: 0,
    generation: 0,
    token: None,
};

thread_local! {
    /// The calling thread's memory of the slots it read, indexed by slot id.
    static MEMORY: RefCell<[Memory; WAYS]> = const { RefCell::new([FORGOTTEN; WAYS]) };
}

impl TokenSlot {
    /// An empty slot for about `threads` threads reading it at once (the machine's available
    /// parallelism, say): twice as many shards, rounded up to a power of two, at most 64.
    #[must_use]
    pub fn new(threads: usize) -> Self {
        static NEXT_ID: AtomicU64 = AtomicU64::new(1);
        let shards = threads
            .saturating_mul(2)
            .clamp(1, MAX_SHARDS)
            .next_power_of_two();
        Self {
            head: Head {
                id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
                generation: AtomicU64::new(0),
            },
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
        self.lend((), |(), token| Arc::clone(token)).ok()
    }

    /// Calls `f` with the published token, if there is one, without taking a reference to it:
    /// the form that scales across cores. Keep `f` short (build a header value, say); a slow
    /// `f` delays nothing but the release of a token that was replaced meanwhile. Without a
    /// published token, `f` is handed back uncalled, for the driver to call with the token it
    /// gets from the cache.
    ///
    /// # Errors
    /// `Err(f)` when nothing is published.
    #[inline]
    pub fn with<R, F: FnOnce(&Token) -> R>(&self, f: F) -> Result<R, F> {
        self.lend(f, |f, token| f(token))
    }

    /// `call(f, token)` with the published token's `Arc`: from the thread's memory while the
    /// slot's generation is the one remembered, otherwise from the thread's shard (and then
    /// remembered). `Err(f)` when nothing is published.
    #[inline]
    fn lend<F, R>(&self, f: F, call: impl FnOnce(F, &Arc<Token>) -> R) -> Result<R, F> {
        let generation = self.head.generation.load(Ordering::Acquire);
        let id = self.head.id;
        let mut pending = Some((f, call));
        let remembered = MEMORY.try_with(|memory| {
            // Busy only when `f` reads a slot itself: that read goes to the shard.
            let mut memory = memory.try_borrow_mut().ok()?;
            let memory = &mut memory[way(id)];
            if memory.slot != id || memory.generation != generation {
                // A change; if it is a refresh come due, the one reader that claims it goes
                // to the lock (every reader passes here once after the change).
                if generation & 1 == 1 && self.claim_refresh(generation) {
                    let (f, _) = pending.take()?;
                    return Some(Err(f));
                }
                *memory = Memory {
                    slot: id,
                    generation,
                    token: self.shard().token.load_full(),
                };
            }
            let (f, call) = pending.take()?;
            Some(match &memory.token {
                Some(token) => Ok(call(f, token)),
                None => Err(f),
            })
        });
        let result = match (remembered, pending) {
            (Ok(Some(result)), _) => result,
            // No memory to use (the thread is exiting, or `f` reads a slot): the shard.
            (_, Some((f, call))) => match self.shard().token.load().as_ref() {
                Some(token) => Ok(call(f, token)),
                None => Err(f),
            },
            (_, None) => unreachable!("`f` is taken only when the memory answers"),
        };
        if result.is_ok() {
            self.shard().count_hit();
        }
        result
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

    /// Whether this reader, having seen the odd `generation`, is the one sent to the lock
    /// (see [`TokenSlot::mark_due`]).
    #[cold]
    fn claim_refresh(&self, generation: u64) -> bool {
        self.head
            .generation
            .compare_exchange(
                generation,
                generation + 1,
                Ordering::AcqRel,
                Ordering::Relaxed,
            )
            .is_ok()
    }

    /// Moves the generation on to the next even value: a change that readers see, and no
    /// refresh due.
    fn next_generation(&self) {
        let _ = self
            .head
            .generation
            .fetch_update(Ordering::Release, Ordering::Relaxed, |g| Some((g | 1) + 1));
    }

    /// Publishes `token`: a copy of its own in every shard.
    pub(crate) fn publish(&self, token: &Token) {
        for shard in &self.shards {
            shard.token.store(Some(Arc::new(token.clone())));
        }
        self.next_generation();
    }

    /// Withdraws the token: readers take the lock and poll.
    pub(crate) fn withdraw(&self) {
        for shard in &self.shards {
            shard.token.store(None);
        }
        self.next_generation();
    }

    /// Keeps the token published but sends the next reader, one, to the lock: the token's
    /// refresh is due and that reader's poll starts it. Marked again for as long as no poll
    /// started it.
    pub(crate) fn mark_due(&self) {
        let _ = self
            .head
            .generation
            .fetch_update(Ordering::Release, Ordering::Relaxed, |g| {
                (g & 1 == 0).then_some(g + 1)
            });
    }

    /// Undoes [`TokenSlot::mark_due`]: the refresh started by other means.
    pub(crate) fn clear_due(&self) {
        if self.is_due() {
            self.next_generation();
        }
    }

    /// Whether a reader is still to be sent to the lock (see [`TokenSlot::mark_due`]).
    fn is_due(&self) -> bool {
        self.head.generation.load(Ordering::Relaxed) & 1 == 1
    }

    #[inline]
    fn shard(&self) -> &Shard {
        // `shards.len()` is a power of two.
        &self.shards[thread_index() & (self.shards.len() - 1)]
    }
}

/// Where in a thread's memory slot `id` is remembered.
#[inline]
fn way(id: u64) -> usize {
    // Ids are consecutive: the low bits spread them.
    usize::try_from(id % WAYS as u64).unwrap_or(0)
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

    use std::time::{Duration, SystemTime};

    use crate::AccessToken;
    use crate::token::{HeaderCell, ScopeSource};

    fn token(value: &str) -> Token {
        Token {
            access_token: AccessToken::new(value),
            token_type: "Bearer".into(),
            issued_at: SystemTime::UNIX_EPOCH,
            lifetime: Some(Duration::from_secs(3600)),
            scopes: Arc::from([]),
            scope_source: ScopeSource::Requested,
            refresh_in: None,
            extra: serde_json::Map::new(),
            deviations: Vec::new(),
            header: HeaderCell::default(),
        }
    }

    fn read(slot: &TokenSlot) -> Option<String> {
        slot.with(|t| t.access_token().expose_secret().to_owned())
            .ok()
    }

    #[test]
    fn a_thread_that_remembered_a_token_sees_every_later_change() {
        let slot = TokenSlot::new(2);
        assert_eq!(read(&slot), None, "remembers the empty slot");
        slot.publish(&token("first"));
        assert_eq!(read(&slot).as_deref(), Some("first"));
        assert_eq!(read(&slot).as_deref(), Some("first"), "from memory");
        slot.publish(&token("second"));
        assert_eq!(read(&slot).as_deref(), Some("second"));
        assert_eq!(
            slot.get()
                .map(|t| t.access_token().expose_secret().to_owned()),
            Some("second".to_owned())
        );
        slot.withdraw();
        assert_eq!(read(&slot), None, "a withdrawal is seen at once");
        assert!(slot.get().is_none());
        slot.publish(&token("third"));
        assert_eq!(read(&slot).as_deref(), Some("third"));
        assert_eq!(slot.hits(), 5);
    }

    #[test]
    fn a_due_token_sends_exactly_one_reader_to_the_lock() {
        let slot = TokenSlot::new(2);
        slot.publish(&token("first"));
        assert_eq!(read(&slot).as_deref(), Some("first"));
        slot.mark_due();
        assert!(slot.is_due());
        assert_eq!(read(&slot), None, "the one reader that starts the refresh");
        for _ in 0..3 {
            assert_eq!(read(&slot).as_deref(), Some("first"), "everyone else");
        }
        slot.mark_due();
        slot.clear_due();
        assert_eq!(read(&slot).as_deref(), Some("first"), "the refresh started");
        slot.mark_due();
        slot.publish(&token("second"));
        assert!(!slot.is_due(), "a new token is not due");
        assert_eq!(read(&slot).as_deref(), Some("second"));
    }

    #[test]
    fn a_remembered_token_is_released_on_the_next_read_after_a_change() {
        let slot = TokenSlot::new(1);
        slot.publish(&token("first"));
        let held = slot.get().unwrap();
        // This thread's memory and the caller's clone, besides the shard's own.
        assert_eq!(Arc::strong_count(&held), 3);
        slot.withdraw();
        assert_eq!(Arc::strong_count(&held), 2, "the shard let go");
        assert!(slot.get().is_none());
        assert_eq!(Arc::strong_count(&held), 1, "and so did the memory");
    }

    #[test]
    fn more_slots_than_a_thread_remembers_are_all_served_right() {
        let slots: Vec<TokenSlot> = (0..3 * WAYS).map(|_| TokenSlot::new(2)).collect();
        for (i, slot) in slots.iter().enumerate() {
            slot.publish(&token(&format!("t{i}")));
        }
        for round in 0..3 {
            for (i, slot) in slots.iter().enumerate() {
                assert_eq!(read(slot), Some(format!("t{i}")), "round {round}");
            }
        }
        slots[5].withdraw();
        assert_eq!(read(&slots[5]), None);
        assert_eq!(read(&slots[5 + WAYS]), Some(format!("t{}", 5 + WAYS)));
    }

    #[test]
    fn a_read_inside_a_read_is_served_from_the_shard() {
        let outer = TokenSlot::new(2);
        let inner = TokenSlot::new(2);
        outer.publish(&token("outer"));
        inner.publish(&token("inner"));
        let both = outer
            .with(|o| {
                let same = read(&outer);
                let other = read(&inner);
                (o.access_token().expose_secret().to_owned(), same, other)
            })
            .ok();
        assert_eq!(
            both,
            Some((
                "outer".to_owned(),
                Some("outer".to_owned()),
                Some("inner".to_owned())
            ))
        );
        inner.withdraw();
        assert_eq!(outer.with(|_| read(&inner)).ok(), Some(None));
    }

    #[test]
    #[allow(
        clippy::disallowed_methods,
        reason = "a test of a second thread reading the slot; the core itself has none"
    )]
    fn other_threads_see_a_change_after_remembering() {
        let slot = Arc::new(TokenSlot::new(4));
        slot.publish(&token("first"));
        let (to_reader, changed) = std::sync::mpsc::channel::<()>();
        let (to_main, seen) = std::sync::mpsc::channel::<Option<String>>();
        let reader = {
            let slot = Arc::clone(&slot);
            std::thread::spawn(move || {
                to_main.send(read(&slot)).unwrap();
                changed.recv().unwrap();
                to_main.send(read(&slot)).unwrap();
                changed.recv().unwrap();
                to_main.send(read(&slot)).unwrap();
            })
        };
        assert_eq!(seen.recv().unwrap().as_deref(), Some("first"));
        slot.publish(&token("second"));
        to_reader.send(()).unwrap();
        assert_eq!(seen.recv().unwrap().as_deref(), Some("second"));
        slot.withdraw();
        to_reader.send(()).unwrap();
        assert_eq!(seen.recv().unwrap(), None);
        reader.join().unwrap();
    }

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
