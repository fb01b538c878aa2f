//! The store: its settings, its connections and its view of Redis's health.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use client_credentials_core::{StoreQuery, TokenRequest};

use crate::Error;
use crate::protocol::{Flow, Random};
use crate::record::{EncryptionKey, Keyring, Keys, Unreadable};

/// The default key prefix.
pub const DEFAULT_PREFIX: &str = "client-credentials";

/// Tokens of many processes shared through Redis, with a fleet-wide single flight: a
/// [`SharedStore`](client_credentials_ureq::SharedStore) for the blocking client (feature
/// `ureq`) and for the async client (feature `reqwest`).
///
/// Cheap to clone (an [`Arc`] inside); build one per Redis and hand clones to the clients.
/// See the [crate documentation](crate) for the protocol, the keys, the failure rules and
/// the defaults.
#[derive(Clone)]
pub struct RedisStore {
    pub(crate) inner: Arc<Inner>,
}

/// The store's I/O half (the Redis client and its cached connections) and the context the
/// protocol runs in.
pub(crate) struct Inner {
    pub(crate) client: redis::Client,
    pub(crate) ctx: Arc<Context>,
    #[cfg(feature = "ureq")]
    pub(crate) sync_conn: Mutex<Option<redis::Connection>>,
    #[cfg(feature = "reqwest")]
    pub(crate) async_conn: Mutex<Option<redis::aio::MultiplexedConnection>>,
}

/// Everything a [`Flow`] reads or updates besides Redis: the settings, the keys, and Redis's
/// health as this store sees it (shared by every flow of the store, so that one failure
/// spares the others the wait).
#[derive(Debug)]
pub(crate) struct Context {
    pub(crate) settings: Settings,
    pub(crate) keyring: Keyring,
    pub(crate) health: Health,
}

impl Context {
    /// A Redis call failed (`category` only: an error's text may quote a reply): the store
    /// leaves Redis alone for `retry_after_failure`.
    pub(crate) fn failed(&self, now: Instant, category: &str) {
        self.health
            .failed(now, category, self.settings.retry_after_failure);
    }
}

/// The timing of the protocol and of every Redis call.
#[derive(Clone, Debug)]
pub(crate) struct Settings {
    pub(crate) prefix: String,
    pub(crate) lock_ttl: Duration,
    /// `None`: [`Settings::max_wait`] derives it from the lock's life.
    pub(crate) max_wait: Option<Duration>,
    pub(crate) poll_interval: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) response_timeout: Duration,
    pub(crate) retry_after_failure: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            prefix: DEFAULT_PREFIX.to_owned(),
            lock_ttl: DEFAULT_LOCK_TTL,
            max_wait: None,
            poll_interval: Duration::from_millis(50),
            connect_timeout: Duration::from_millis(500),
            response_timeout: Duration::from_millis(500),
            retry_after_failure: Duration::from_secs(5),
        }
    }
}

/// The default life of the fleet's fetch lock: the adapters' default request timeout
/// (15 s) and a 5 s margin, so that a holder whose token endpoint is slow keeps the lock
/// until its own request gives up, rather than letting every waiter fetch at once.
pub(crate) const DEFAULT_LOCK_TTL: Duration = Duration::from_secs(20);

impl Settings {
    /// How long a waiter waits for another process's fetch before fetching on its own, at
    /// the least: as set, or by default a tenth longer than the lock's life, so that a
    /// waiter gives up only after a live holder's lock would have expired (and was taken
    /// over, if its holder died).
    pub(crate) fn max_wait(&self) -> Duration {
        self.max_wait
            .unwrap_or_else(|| self.lock_ttl.saturating_add(self.lock_ttl / 10))
    }

    /// When a waiter that starts waiting at `started` gives up: after [`Settings::max_wait`]
    /// and an extra of up to a tenth of it drawn from `random`, so that the waiters of one
    /// lock do not all fetch at the same instant. `None` when that is beyond the clock's
    /// range.
    pub(crate) fn wait_deadline(&self, started: Instant, random: u64) -> Option<Instant> {
        let wait = self.max_wait();
        let tenth_ms = u64::try_from((wait / 10).as_millis()).unwrap_or(u64::MAX);
        let jitter = Duration::from_millis(random % tenth_ms.saturating_add(1));
        started.checked_add(wait.saturating_add(jitter))
    }
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Not the URL: it may hold a password.
        let s = &self.inner.ctx.settings;
        f.debug_struct("RedisStore")
            .field("prefix", &s.prefix)
            .field("lock_ttl", &s.lock_ttl)
            .field("max_wait", &s.max_wait())
            .field("poll_interval", &s.poll_interval)
            .field("connect_timeout", &s.connect_timeout)
            .field("response_timeout", &s.response_timeout)
            .field("retry_after_failure", &s.retry_after_failure)
            .field("encrypted", &self.inner.ctx.keyring.encrypts())
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// A store on the Redis at `url` (`redis://[:password@]host[:port][/db]`, or
    /// `redis+unix:///path`) with the defaults. Nothing is connected until a token is
    /// needed.
    ///
    /// # Errors
    /// [`Error::InvalidUrl`] when the URL cannot be used.
    pub fn new(url: &str) -> Result<Self, Error> {
        Self::builder(url).build()
    }

    /// A builder, to set the key prefix, the lock and wait times, the timeouts and an
    /// encryption key.
    pub fn builder(url: &str) -> RedisStoreBuilder {
        RedisStoreBuilder {
            url: url.to_owned(),
            settings: Settings::default(),
            keyring: Keyring::default(),
        }
    }

    /// The Redis key that holds the token of `request`'s shape:
    /// `<prefix>:token:<hex SHA-256 of the request shape>`.
    #[must_use]
    pub fn token_key(&self, request: &TokenRequest) -> String {
        Keys::new(&self.inner.ctx.settings.prefix, request).token
    }

    /// The Redis key of the fleet's fetch lock for `request`'s shape:
    /// `<prefix>:lock:<hex SHA-256 of the request shape>`.
    #[must_use]
    pub fn lock_key(&self, request: &TokenRequest) -> String {
        Keys::new(&self.inner.ctx.settings.prefix, request).lock
    }

    /// Whether the store currently counts Redis as unavailable (and so fetches locally
    /// without asking it, until it tries again).
    #[must_use]
    pub fn is_unavailable(&self) -> bool {
        self.inner.ctx.health.is_down()
    }
}

/// Builds a [`RedisStore`].
///
/// ```
/// use std::time::Duration;
/// use client_credentials::redis::{EncryptionKey, RedisStore};
///
/// let store = RedisStore::builder("redis://127.0.0.1:6379/")
///     .prefix("billing-service")
///     .lock_ttl(Duration::from_secs(10))
///     .response_timeout(Duration::from_millis(200))
///     .encryption_key(EncryptionKey::new("2026-01", [42; 32])?)
///     .build()?;
/// # let _ = store;
/// # Ok::<_, client_credentials_redis::Error>(())
/// ```
#[must_use]
pub struct RedisStoreBuilder {
    url: String,
    settings: Settings,
    keyring: Keyring,
}

impl fmt::Debug for RedisStoreBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStoreBuilder")
            .field("settings", &self.settings)
            .field("encrypted", &self.keyring.encrypts())
            .finish_non_exhaustive()
    }
}

impl RedisStoreBuilder {
    /// The prefix of every key (default [`DEFAULT_PREFIX`]); give each environment sharing
    /// a Redis its own.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.settings.prefix = prefix.into();
        self
    }

    /// How long the fetch lock lives (default 20 s): a holder that dies blocks the fleet's
    /// fetch for at most this long. Give it more than the client's request timeout (15 s by
    /// default in both adapters, plus a margin): a fetch that outlasts the lock lets the
    /// waiters take it over and fetch too. The default is chosen so for the adapters'
    /// defaults; with a longer client timeout, raise it.
    pub fn lock_ttl(mut self, ttl: Duration) -> Self {
        self.settings.lock_ttl = ttl;
        self
    }

    /// How long a process waits for another one's fetch before it fetches on its own
    /// (default: a tenth longer than [`lock_ttl`](Self::lock_ttl), 22 s with the default
    /// lock), plus a random extra of up to a tenth, so that waiters that give up do not all
    /// fetch at once. While waiting it reads the token every
    /// [`poll_interval`](Self::poll_interval), and takes the lock over as soon as it is free
    /// (released, or expired because its holder died), so a longer wait than the lock's
    /// life only matters while a live holder is still fetching.
    pub fn max_wait(mut self, wait: Duration) -> Self {
        self.settings.max_wait = Some(wait);
        self
    }

    /// How often a waiting process looks for the token (default 50 ms).
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.settings.poll_interval = interval;
        self
    }

    /// How long connecting to Redis may take (default 500 ms).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.settings.connect_timeout = timeout;
        self
    }

    /// How long one Redis command may take (default 500 ms).
    pub fn response_timeout(mut self, timeout: Duration) -> Self {
        self.settings.response_timeout = timeout;
        self
    }

    /// After Redis failed (unreachable, timed out, refused a command), how long the store
    /// leaves it alone and lets the client fetch locally (default 5 s).
    pub fn retry_after_failure(mut self, pause: Duration) -> Self {
        self.settings.retry_after_failure = pause;
        self
    }

    /// Encrypts stored tokens with this key (ChaCha20-Poly1305, a random nonce per write,
    /// the key id stored beside the value, the Redis key as associated data). Every process
    /// of the fleet needs the key. Once a key is set, only values sealed with a known key
    /// are read; anything else counts as a miss and is overwritten.
    ///
    /// To rotate: give every process the new key as a [`decryption_key`](Self::decryption_key)
    /// first, then make it the encryption key.
    pub fn encryption_key(mut self, key: EncryptionKey) -> Self {
        self.keyring.push_front(key);
        self
    }

    /// A key that still decrypts values sealed with it, but encrypts nothing while an
    /// [`encryption_key`](Self::encryption_key) is set.
    pub fn decryption_key(mut self, key: EncryptionKey) -> Self {
        self.keyring.push(key);
        self
    }

    /// Builds the store. Nothing is connected until a token is needed.
    ///
    /// # Errors
    /// [`Error::InvalidUrl`] when the URL cannot be used; [`Error::InvalidSetting`] when a
    /// duration is zero (the lock's life, the timeouts).
    pub fn build(self) -> Result<RedisStore, Error> {
        let s = &self.settings;
        for (name, value) in [
            ("lock_ttl", s.lock_ttl),
            ("connect_timeout", s.connect_timeout),
            ("response_timeout", s.response_timeout),
            ("poll_interval", s.poll_interval),
        ] {
            if value.is_zero() {
                return Err(Error::InvalidSetting(name));
            }
        }
        let client = redis::Client::open(self.url.as_str()).map_err(|_| Error::InvalidUrl)?;
        Ok(RedisStore {
            inner: Arc::new(Inner {
                client,
                ctx: Arc::new(Context {
                    settings: self.settings,
                    keyring: self.keyring,
                    health: Health::default(),
                }),
                #[cfg(feature = "ureq")]
                sync_conn: Mutex::new(None),
                #[cfg(feature = "reqwest")]
                async_conn: Mutex::new(None),
            }),
        })
    }
}

impl Inner {
    /// A [`Flow`] for `query`, starting now: the one place where the protocol's clocks are
    /// read and its randomness drawn (the flow takes them as inputs).
    pub(crate) fn flow(&self, query: &StoreQuery) -> Flow {
        let mut lock = [0_u8; 16];
        let mut jitter = [0_u8; 8];
        let random = (getrandom::fill(&mut lock).is_ok() && getrandom::fill(&mut jitter).is_ok())
            .then(|| Random {
                lock,
                jitter: u64::from_le_bytes(jitter),
            });
        Flow::new(
            Instant::now(),
            SystemTime::now(),
            Arc::clone(&self.ctx),
            query.clone(),
            random,
        )
    }
}

/// Whether a Redis error is about the connection (unreachable, timed out, dropped), after
/// which the connection is thrown away and Redis counts as unavailable, rather than an
/// answer from a working server (which a read takes as a miss).
pub(crate) fn is_connection_error(e: &redis::RedisError) -> bool {
    e.is_io_error()
        || e.is_timeout()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_unrecoverable_error()
}

/// Redis's health as the store sees it: up, or down until a time to try again. Logs one
/// line per change, and at most one line a minute about unreadable values.
#[derive(Debug, Default)]
pub(crate) struct Health {
    state: Mutex<HealthState>,
}

#[derive(Debug, Default)]
struct HealthState {
    /// `Some` while Redis counts as down: when to try again.
    retry_at: Option<Instant>,
    last_unreadable_log: Option<Instant>,
}

/// The least time between two log lines about unreadable values.
const UNREADABLE_LOG_EVERY: Duration = Duration::from_secs(60);

impl Health {
    fn state(&self) -> MutexGuard<'_, HealthState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn is_down(&self) -> bool {
        self.state().retry_at.is_some()
    }

    /// Whether to ask Redis now: it is up, or the pause after a failure is over.
    pub(crate) fn should_try(&self, now: Instant) -> bool {
        self.state().retry_at.is_none_or(|at| now >= at)
    }

    /// A Redis call succeeded.
    pub(crate) fn succeeded(&self) {
        let mut state = self.state();
        if state.retry_at.take().is_some() {
            tracing::info!("shared token store available again");
        }
    }

    /// A Redis call failed at `now`: fetch locally until `pause` has passed. `category`
    /// says what failed, never quoting a reply.
    pub(crate) fn failed(&self, now: Instant, category: &str, pause: Duration) {
        let mut state = self.state();
        if state.retry_at.is_none() {
            tracing::warn!(
                error = category,
                retry_in_ms = u64::try_from(pause.as_millis()).unwrap_or(u64::MAX),
                "shared token store unavailable; fetching tokens locally"
            );
        }
        state.retry_at = Some(now.checked_add(pause).unwrap_or(now));
    }

    /// A stored value could not be read at `now`; it counts as a miss and will be
    /// overwritten.
    pub(crate) fn unreadable(&self, now: Instant, key: &str, why: Unreadable) {
        let mut state = self.state();
        if state
            .last_unreadable_log
            .is_none_or(|at| now.saturating_duration_since(at) >= UNREADABLE_LOG_EVERY)
        {
            state.last_unreadable_log = Some(now);
            tracing::warn!(key, reason = %why, "unreadable value in the shared token store, ignored");
        }
    }
}
