//! The async store, for `client-credentials-reqwest`: a multiplexed tokio Redis connection,
//! every call under a timeout, used by the one task per request shape that is about to
//! fetch.

use std::io;
use std::sync::{Arc, PoisonError};
use std::time::{Instant, SystemTime};

use async_trait::async_trait;
use client_credentials_core::session::Policy;
use client_credentials_core::{Config, Token};
use client_credentials_reqwest::{FetchPermit, Lookup, SharedStore, StoreQuery};
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, FromRedisValue, RedisError, RedisResult};
use zeroize::Zeroizing;

use crate::commands::{lock_cmd, read_cmd, release_cmd};
use crate::record::{self, Keys, px};
use crate::store::{Inner, RedisStore, is_connection_error};

#[async_trait]
impl SharedStore for RedisStore {
    async fn before_fetch(&self, query: &StoreQuery<'_>) -> Lookup {
        let inner = &self.inner;
        if !inner.health.should_try(Instant::now()) {
            return Lookup::FetchLocally;
        }
        let keys = Keys::new(&inner.settings.prefix, query.request());
        let config = query.request().config();
        match inner.async_read(&keys, config).await {
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
            match inner
                .async_call::<bool>(&lock_cmd(inner, &keys, &owner))
                .await
            {
                Err(e) => {
                    inner.failed(&e);
                    return Lookup::FetchLocally;
                }
                Ok(true) => {
                    let permit = AsyncPermit {
                        store: self.clone(),
                        keys,
                        owner,
                        policy: query.policy().clone(),
                        released: false,
                    };
                    // The token may have landed between the read and the lock.
                    if let Ok(Some(token)) = inner.async_read(&permit.keys, config).await
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
            tokio::time::sleep(inner.settings.poll_interval.min(left)).await;
            match inner.async_read(&keys, config).await {
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

fn timed_out() -> RedisError {
    RedisError::from(io::Error::new(
        io::ErrorKind::TimedOut,
        "shared token store timed out",
    ))
}

impl Inner {
    /// As the blocking store's `sync_read`: a readable token that `config` accepts, or a
    /// miss; only connection failures are errors.
    async fn async_read(&self, keys: &Keys, config: &Config) -> RedisResult<Option<Token>> {
        match self.async_call::<Vec<u8>>(&read_cmd(keys)).await {
            Ok(value) => Ok(self.parse(keys, &Zeroizing::new(value), config)),
            Err(e) if is_connection_error(&e) => Err(e),
            Err(e) => {
                tracing::debug!(error = e.category(), "shared token unreadable, ignored");
                Ok(None)
            }
        }
    }

    /// Runs `cmd` on the shared connection, or a new one, within the response timeout. A
    /// connection made before Redis restarted (or in a runtime that has shut down since)
    /// fails once: then it is replaced and `cmd` runs again, once.
    async fn async_call<T: FromRedisValue>(&self, cmd: &redis::Cmd) -> RedisResult<T> {
        let cached = self
            .async_conn
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let (mut conn, mut may_retry) = match cached {
            Some(conn) => (conn, true),
            None => (self.async_connect().await?, false),
        };
        loop {
            let result = match tokio::time::timeout(
                self.settings.response_timeout,
                cmd.query_async(&mut conn),
            )
            .await
            {
                Ok(result) => result,
                Err(_) => Err(timed_out()),
            };
            match result {
                Err(e) if is_connection_error(&e) => {
                    *self
                        .async_conn
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner) = None;
                    if !may_retry {
                        return Err(e);
                    }
                    may_retry = false;
                    conn = self.async_connect().await?;
                }
                result => return result,
            }
        }
    }

    async fn async_connect(&self) -> RedisResult<MultiplexedConnection> {
        let s = &self.settings;
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(s.connect_timeout))
            .set_response_timeout(Some(s.response_timeout));
        // The whole handshake within the connect and response timeouts, whatever happens.
        let limit = s.connect_timeout.saturating_add(s.response_timeout);
        let conn = match tokio::time::timeout(
            limit,
            self.client
                .get_multiplexed_async_connection_with_config(&config),
        )
        .await
        {
            Ok(conn) => conn?,
            Err(_) => return Err(timed_out()),
        };
        *self
            .async_conn
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(conn.clone());
        Ok(conn)
    }

    async fn async_release(&self, keys: &Keys, owner: &str) {
        if !self.health.should_try(Instant::now()) {
            return; // Down: the lock expires by itself.
        }
        if let Err(e) = self.async_call::<i64>(&release_cmd(keys, owner)).await {
            self.failed(&e);
        }
    }
}

/// The fleet's fetch lock, held by this process: publishing writes the token and releases
/// it; dropping it releases it from a spawned task (or lets it expire, outside a runtime).
struct AsyncPermit {
    store: RedisStore,
    keys: Keys,
    owner: String,
    policy: Policy,
    released: bool,
}

#[async_trait]
impl FetchPermit for AsyncPermit {
    async fn publish(mut self: Box<Self>, token: &Token) {
        let inner = &self.store.inner;
        let value = record::ttl(token, &self.policy, SystemTime::now()).and_then(|ttl| {
            let value = Zeroizing::new(inner.keyring.seal(&self.keys.token, token)?);
            Some((ttl, value))
        });
        if let Some((ttl, value)) = value {
            let mut cmd = redis::cmd("SET");
            cmd.arg(&self.keys.token)
                .arg(value.as_slice())
                .arg("PX")
                .arg(px(ttl));
            drop(value);
            match inner.async_call::<()>(&cmd).await {
                Ok(()) => {
                    inner.health.succeeded();
                    tracing::debug!(key = %self.keys.token, ttl_ms = px(ttl), "token shared");
                }
                Err(e) => inner.failed(&e),
            }
        }
        self.released = true;
        inner.async_release(&self.keys, &self.owner).await;
    }
}

impl Drop for AsyncPermit {
    fn drop(&mut self) {
        if self.released {
            return;
        }
        self.released = true;
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let store = self.store.clone();
            let keys = self.keys.clone();
            let owner = std::mem::take(&mut self.owner);
            drop(runtime.spawn(async move {
                store.inner.async_release(&keys, &owner).await;
            }));
        }
    }
}
