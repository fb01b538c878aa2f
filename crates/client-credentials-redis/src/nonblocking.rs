//! The async store, for `client-credentials-reqwest`: a multiplexed tokio Redis connection,
//! every call under a timeout, used by the one task per request shape that is about to
//! fetch. It only carries out the steps of the protocol's [`Flow`].

use std::io;
use std::sync::PoisonError;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use client_credentials_core::Token;
use client_credentials_reqwest::{FetchPermit, Lookup, SharedStore, StoreQuery};
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, RedisError, RedisResult, Value};

use crate::protocol::{Answer, Flow, Step};
use crate::store::{Inner, RedisStore, is_connection_error};

#[async_trait]
impl SharedStore for RedisStore {
    async fn before_fetch(&self, query: &StoreQuery) -> Lookup {
        let mut flow = self.inner.flow(query);
        let answer = self.inner.async_drive(&mut flow).await;
        answer.into_lookup(|| {
            let permit = AsyncPermit {
                store: self.clone(),
                flow: Some(flow),
            };
            Box::new(permit) as Box<dyn FetchPermit>
        })
    }
}

/// The fleet's fetch lock, held by this process: its flow, which publishing drives to the
/// end (write the token, release the lock). Dropped before that (the fetch failed, or a
/// future was cancelled), it finishes the flow in a spawned task, or lets the lock expire
/// outside a runtime.
struct AsyncPermit {
    store: RedisStore,
    flow: Option<Flow>,
}

#[async_trait]
impl FetchPermit for AsyncPermit {
    async fn publish(mut self: Box<Self>, token: &Token, ttl: Duration) {
        if let Some(flow) = self.flow.as_mut() {
            flow.handle_published(Instant::now(), token, ttl);
            self.store.inner.async_drive(flow).await;
        }
    }
}

impl Drop for AsyncPermit {
    fn drop(&mut self) {
        let Some(mut flow) = self.flow.take() else {
            return;
        };
        flow.handle_abandoned(Instant::now());
        if flow.is_finished() {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let store = self.store.clone();
            drop(runtime.spawn(async move { store.inner.async_drive(&mut flow).await }));
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
    /// Runs `flow`'s commands and sleeps until it answers.
    async fn async_drive(&self, flow: &mut Flow) -> Answer {
        loop {
            let command = match flow.poll(Instant::now()) {
                Step::Run(command) => command,
                Step::Sleep(until) => {
                    tokio::time::sleep_until(until.into()).await;
                    continue;
                }
                Step::Done(answer) => break answer,
            };
            let reply = self.async_call(&command.cmd).await;
            flow.handle_reply(Instant::now(), reply);
        }
    }

    /// Runs `cmd` on the shared connection, or a new one, within the response timeout. A
    /// connection made before Redis restarted (or in a runtime that has shut down since)
    /// fails once: then it is replaced and `cmd` runs again, once.
    async fn async_call(&self, cmd: &redis::Cmd) -> RedisResult<Value> {
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
            let limit = self.ctx.settings.response_timeout;
            let result = tokio::time::timeout(limit, cmd.query_async(&mut conn))
                .await
                .unwrap_or_else(|_| Err(timed_out()));
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
        let s = &self.ctx.settings;
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(s.connect_timeout))
            .set_response_timeout(Some(s.response_timeout));
        // The whole handshake within the connect and response timeouts, whatever happens.
        let limit = s.connect_timeout.saturating_add(s.response_timeout);
        let connecting = self
            .client
            .get_multiplexed_async_connection_with_config(&config);
        let conn = tokio::time::timeout(limit, connecting)
            .await
            .unwrap_or_else(|_| Err(timed_out()))?;
        *self
            .async_conn
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(conn.clone());
        Ok(conn)
    }
}
