//! The blocking store, for `client-credentials-ureq`: a synchronous Redis connection with
//! read and write timeouts, used by the one thread per request shape that is about to fetch.

use std::sync::{Arc, PoisonError};
use std::thread;
use std::time::{Instant, SystemTime};

use client_credentials_core::session::Policy;
use client_credentials_core::{Config, Token};
use client_credentials_ureq::{FetchPermit, Lookup, SharedStore, StoreQuery};
use redis::{Connection, RedisResult};
use zeroize::Zeroizing;

use crate::commands::{lock_cmd, read_cmd, release_cmd};
use crate::record::{self, Keys, px};
use crate::store::{Inner, RedisStore, is_connection_error};

impl SharedStore for RedisStore {
    fn before_fetch(&self, query: &StoreQuery<'_>) -> Lookup {
        let inner = &self.inner;
        if !inner.health.should_try(Instant::now()) {
            return Lookup::FetchLocally;
        }
        let keys = Keys::new(&inner.settings.prefix, query.request());
        let config = query.request().config();
        match inner.sync_read(&keys, config) {
            Err(e) => {
                inner.failed(&e);
                return Lookup::FetchLocally;
            }
            Ok(Some(token)) if query.accepts(&token) => {
                inner.health.succeeded();
                return Lookup::Shared(Arc::new(token));
            }
            Ok(_) => inner.health.succeeded(),
        }
        let Some(owner) = record::lock_value() else {
            return Lookup::FetchLocally;
        };
        let started = Instant::now();
        let deadline = inner.settings.wait_deadline(started);
        loop {
            match inner.sync_call(|c| lock_cmd(inner, &keys, &owner).query::<bool>(c)) {
                Err(e) => {
                    inner.failed(&e);
                    return Lookup::FetchLocally;
                }
                Ok(true) => {
                    let permit = SyncPermit {
                        store: self.clone(),
                        keys,
                        owner,
                        policy: query.policy().clone(),
                        released: false,
                    };
                    // The token may have landed between the read and the lock.
                    if let Ok(Some(token)) = inner.sync_read(&permit.keys, config)
                        && query.accepts(&token)
                    {
                        return Lookup::Shared(Arc::new(token));
                    }
                    tracing::debug!(key = %permit.keys.lock, "fleet fetch lock taken");
                    return Lookup::Fetch(Box::new(permit));
                }
                Ok(false) => {}
            }
            let now = Instant::now();
            let Some(left) = deadline.and_then(|d| d.checked_duration_since(now)) else {
                tracing::debug!(
                    key = %keys.lock,
                    "another process's token fetch took too long; fetching locally"
                );
                return Lookup::FetchLocally;
            };
            thread::sleep(inner.settings.poll_interval.min(left));
            match inner.sync_read(&keys, config) {
                Err(e) => {
                    inner.failed(&e);
                    return Lookup::FetchLocally;
                }
                Ok(Some(token)) if query.accepts(&token) => {
                    tracing::debug!(
                        waited_ms =
                            u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
                        "token fetched by another process taken from the shared store"
                    );
                    return Lookup::Shared(Arc::new(token));
                }
                Ok(_) => {}
            }
        }
    }
}

impl Inner {
    /// The token stored for `keys`, if there is a readable one that `config` accepts. A
    /// value that is not one (garbage, another key, a wrong type, a token type or lifetime
    /// `config` refuses) is a miss, logged; only connection failures are errors.
    pub(crate) fn sync_read(&self, keys: &Keys, config: &Config) -> RedisResult<Option<Token>> {
        match self.sync_call(|c| read_cmd(keys).query::<Vec<u8>>(c)) {
            Ok(value) => Ok(self.parse(keys, &Zeroizing::new(value), config)),
            Err(e) if is_connection_error(&e) => Err(e),
            Err(e) => {
                tracing::debug!(error = e.category(), "shared token unreadable, ignored");
                Ok(None)
            }
        }
    }

    /// Runs `f` on the cached connection, or a new one. A connection cached before Redis
    /// restarted fails once: then it is replaced and `f` runs again, once.
    ///
    /// The connection is taken out of the cache and the lock released before any I/O, so
    /// that a thread fetching for another request shape never waits for this one's Redis
    /// round trip (or its timeouts): it makes a connection of its own instead, and the
    /// cache keeps one of the two afterwards.
    fn sync_call<T>(&self, mut f: impl FnMut(&mut Connection) -> RedisResult<T>) -> RedisResult<T> {
        let cached = self
            .sync_conn
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let (mut conn, mut may_retry) = match cached {
            Some(conn) => (conn, true),
            None => (self.sync_connect()?, false),
        };
        loop {
            match f(&mut conn) {
                Ok(value) => {
                    self.sync_put_back(conn);
                    return Ok(value);
                }
                Err(e) if is_connection_error(&e) => {
                    if !may_retry {
                        return Err(e);
                    }
                    may_retry = false;
                    conn = self.sync_connect()?;
                }
                Err(e) => {
                    self.sync_put_back(conn);
                    return Err(e);
                }
            }
        }
    }

    /// Caches a working connection; one cached meanwhile by another thread is closed, after
    /// the lock is released.
    fn sync_put_back(&self, conn: Connection) {
        let replaced = self
            .sync_conn
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .replace(conn);
        drop(replaced);
    }

    fn sync_connect(&self) -> RedisResult<Connection> {
        let s = &self.settings;
        let conn = self.client.get_connection_with_timeout(s.connect_timeout)?;
        conn.set_read_timeout(Some(s.response_timeout))?;
        conn.set_write_timeout(Some(s.response_timeout))?;
        Ok(conn)
    }
}

/// The fleet's fetch lock, held by this process: publishing writes the token and releases
/// it; dropping it releases it.
struct SyncPermit {
    store: RedisStore,
    keys: Keys,
    owner: String,
    policy: Policy,
    released: bool,
}

impl FetchPermit for SyncPermit {
    fn publish(mut self: Box<Self>, token: &Token) {
        let inner = &self.store.inner;
        if let Some(ttl) = record::ttl(token, &self.policy, SystemTime::now())
            && let Some(value) = inner.keyring.seal(&self.keys.token, token)
        {
            let value = Zeroizing::new(value);
            let mut cmd = redis::cmd("SET");
            cmd.arg(&self.keys.token)
                .arg(value.as_slice())
                .arg("PX")
                .arg(px(ttl));
            match inner.sync_call(|c| cmd.query::<()>(c)) {
                Ok(()) => {
                    inner.health.succeeded();
                    tracing::debug!(key = %self.keys.token, ttl_ms = px(ttl), "token shared");
                }
                Err(e) => inner.failed(&e),
            }
        }
        self.release();
    }
}

impl SyncPermit {
    fn release(&mut self) {
        if std::mem::replace(&mut self.released, true) {
            return;
        }
        let inner = &self.store.inner;
        // Down: the lock expires by itself.
        if !inner.health.should_try(Instant::now()) {
            return;
        }
        let cmd = release_cmd(&self.keys, &self.owner);
        if let Err(e) = inner.sync_call(|c| cmd.query::<i64>(c)) {
            inner.failed(&e);
        }
    }
}

impl Drop for SyncPermit {
    fn drop(&mut self) {
        self.release();
    }
}
