//! The blocking store, for `client-credentials-ureq`: a synchronous Redis connection with
//! read and write timeouts, used by the one thread per request shape that is about to fetch.
//! It only carries out the steps of the protocol's [`Flow`].

use std::sync::PoisonError;
use std::thread;
use std::time::{Duration, Instant};

use client_credentials_core::Token;
use client_credentials_ureq::{FetchPermit, Lookup, SharedStore, StoreQuery};
use redis::{Connection, RedisResult, Value};

use crate::protocol::{Answer, Flow, Step};
use crate::store::{Inner, RedisStore, is_connection_error};

impl SharedStore for RedisStore {
    fn before_fetch(&self, query: &StoreQuery) -> Lookup {
        let mut flow = self.inner.flow(query);
        self.inner.sync_drive(&mut flow).into_lookup(|| {
            Box::new(SyncPermit {
                store: self.clone(),
                flow,
            }) as Box<dyn FetchPermit>
        })
    }
}

/// The fleet's fetch lock, held by this process: its flow, which publishing and dropping
/// drive to the end (write the token, release the lock).
struct SyncPermit {
    store: RedisStore,
    flow: Flow,
}

impl FetchPermit for SyncPermit {
    fn publish(mut self: Box<Self>, token: &Token, ttl: Duration) {
        self.flow.handle_published(Instant::now(), token, ttl);
        // Dropping runs what is left.
    }
}

impl Drop for SyncPermit {
    fn drop(&mut self) {
        self.flow.handle_abandoned(Instant::now());
        self.store.inner.sync_drive(&mut self.flow);
    }
}

impl Inner {
    /// Runs `flow`'s commands and sleeps until it answers.
    fn sync_drive(&self, flow: &mut Flow) -> Answer {
        loop {
            match flow.poll(Instant::now()) {
                Step::Done(answer) => return answer,
                Step::Sleep(until) => {
                    thread::sleep(until.saturating_duration_since(Instant::now()))
                }
                Step::Run(command) => {
                    let reply = self.sync_call(|c| command.cmd.query::<Value>(c));
                    flow.handle_reply(Instant::now(), reply);
                }
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
                Err(e) if is_connection_error(&e) && may_retry => {
                    may_retry = false;
                    conn = self.sync_connect()?;
                }
                Err(e) if is_connection_error(&e) => return Err(e),
                result => {
                    // A working connection is cached; one cached meanwhile by another
                    // thread is closed, after the lock is released.
                    let replaced = self
                        .sync_conn
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .replace(conn);
                    drop(replaced);
                    return result;
                }
            }
        }
    }

    fn sync_connect(&self) -> RedisResult<Connection> {
        let s = &self.ctx.settings;
        let conn = self.client.get_connection_with_timeout(s.connect_timeout)?;
        conn.set_read_timeout(Some(s.response_timeout))?;
        conn.set_write_timeout(Some(s.response_timeout))?;
        Ok(conn)
    }
}
