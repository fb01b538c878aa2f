//! The shared-store protocol as one sans-IO state machine: read, lock, re-read, (the caller
//! fetches), publish, release, and the wait for another process's lock. A [`Flow`] runs no
//! command, reads no clock and never sleeps: it says what to do next ([`Flow::poll`]) and
//! is told what happened ([`Flow::handle_reply`] with each command's reply, then
//! [`Flow::handle_published`] or [`Flow::handle_abandoned`] once the caller's fetch is
//! over). The blocking and the async store are two loops that only carry its steps out:
//!
//! ```text
//! loop: match flow.poll(now)
//!   Run(command)  → run it on Redis, flow.handle_reply(now, reply)
//!   Sleep(until)  → sleep until then
//!   Done(answer)  → Shared / FetchLocally: before_fetch's answer, the flow is over
//!                   Fetch: the flow holds the lock and becomes the permit; after the
//!                   fetch, handle_published / handle_abandoned, and loop again
//!                   Finished: nothing left to do
//! ```
//!
//! | state           | `poll`                            | reply, or input                             |
//! |-----------------|-----------------------------------|---------------------------------------------|
//! | `Read(First)`   | `Run(Read)`                       | taken ⇒ `Shared`; miss ⇒ `Lock`             |
//! | `Lock`          | `Run(Lock)`                       | 1 ⇒ `Read(Locked)`; 0 ⇒ `Wait`, or `FetchLocally` past the deadline |
//! | `Read(Locked)`  | `Run(Read)`                       | taken ⇒ `Release`, then `Shared`; miss ⇒ `Held` |
//! | `Wait`          | `Sleep(at)`, then `Read(Waiting)` | —                                           |
//! | `Read(Waiting)` | `Run(Read)`                       | taken ⇒ `Shared`; miss ⇒ `Lock` again       |
//! | `Held`          | `Done(Fetch)`                     | `handle_published` ⇒ `Write`; `handle_abandoned` ⇒ `Release` |
//! | `Write`         | `Run(Write)`                      | ⇒ `Release` (none if the write failed)      |
//! | `Release`       | `Run(Release)`                    | ⇒ the answer it holds                       |
//!
//! A connection failure at any step makes Redis unavailable for `retry_after_failure` and
//! ends the lookup with `FetchLocally` (a lock already taken then expires by itself); a
//! server's error on a read (a key of another type) is a miss. A flow started while Redis
//! counts as unavailable answers `FetchLocally` without a command.

use std::fmt;
use std::mem;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use client_credentials_core::{Lookup, StoreQuery, StoredTokenProblem, Token, WallClock};
use redis::{RedisResult, Value};
use zeroize::Zeroizing;

use crate::record::{ACQUIRE, Keys, MAX_VALUE, RELEASE, Unreadable, lock_value, px};
use crate::store::{Context, is_connection_error};

/// The randomness a flow needs, drawn by its driver: the lock's value, and the jitter of
/// its longest wait.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Random {
    pub(crate) lock: [u8; 16],
    pub(crate) jitter: u64,
}

/// One consultation of the store, from `before_fetch` to the release of the lock: see the
/// [module documentation](self).
pub(crate) struct Flow {
    ctx: Arc<Context>,
    query: StoreQuery,
    keys: Keys,
    clock: WallClock,
    /// This flow's lock value; `None` without randomness, and then it never locks.
    owner: Option<String>,
    jitter: u64,
    state: State,
}

enum State {
    Read(Read),
    /// Take the fleet's lock (`wait` bounds the attempts).
    Lock(Wait),
    /// Another process holds the lock: read again at `at`.
    Wait {
        wait: Wait,
        at: Instant,
    },
    /// The lock is this flow's and the caller fetches.
    Held,
    /// Store the fetched token (its sealed value) for `ttl`, then release.
    Write {
        value: Zeroizing<Vec<u8>>,
        ttl: Duration,
    },
    /// Release the lock, then answer.
    Release(Answer),
    Answer(Answer),
}

/// Which read a reply answers.
enum Read {
    /// Before any lock.
    First,
    /// Under this flow's lock: the token may have landed since the first read.
    Locked,
    /// While another process holds the lock.
    Waiting(Wait),
}

/// Since when this flow waits for the lock, and until when at most (`None`: not at all).
#[derive(Clone, Copy)]
struct Wait {
    since: Instant,
    deadline: Option<Instant>,
}

/// What to do next ([`Flow::poll`]).
#[derive(Debug)]
#[must_use]
pub(crate) enum Step {
    /// Run this command, then hand its reply to [`Flow::handle_reply`].
    Run(Command),
    /// Nothing to do before this instant: sleep, then poll again.
    Sleep(Instant),
    /// The flow answers.
    Done(Answer),
}

/// A flow's answer.
#[derive(Debug)]
pub(crate) enum Answer {
    /// A token another process stored: the lookup is over.
    Shared(Arc<Token>),
    /// This flow holds the fleet's lock: the caller fetches, and the flow (as the permit)
    /// is told how that ended.
    Fetch,
    /// Fetch as without a store: the lookup is over.
    FetchLocally,
    /// Nothing left to do (the token was published, the lock released or left to expire).
    Finished,
}

impl Answer {
    /// The adapters' [`Lookup`], with `permit()` (which takes over the flow) for a fetch.
    pub(crate) fn into_lookup<P>(self, permit: impl FnOnce() -> P) -> Lookup<P> {
        match self {
            Self::Shared(token) => Lookup::Shared(token),
            Self::Fetch => Lookup::Fetch(permit()),
            Self::FetchLocally | Self::Finished => Lookup::FetchLocally,
        }
    }
}

/// The Redis commands of the protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    /// `GETRANGE token 0 MAX_VALUE`: one byte more than a record may have, never a huge
    /// value.
    Read,
    /// `EVAL acquire 1 lock owner ttl`: `SET lock owner NX PX ttl`, except that a lock that
    /// already holds `owner` counts as taken (its life restarts), so that a retry after a
    /// lost reply does not wait on its own lock. 1: taken; 0: another owner holds it.
    Lock,
    /// `SET token value PX ttl`.
    Write,
    /// `EVAL release 1 lock owner`: deletes the lock only if this owner still holds it.
    Release,
}

/// A command to run: what it is for, and the command itself.
pub(crate) struct Command {
    pub(crate) op: Op,
    pub(crate) cmd: redis::Cmd,
}

impl fmt::Debug for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Not the arguments: a write carries the token.
        f.debug_tuple("Command").field(&self.op).finish()
    }
}

impl Flow {
    /// A flow for `query`, started at `now` (`wall` is the wall-clock time then), that
    /// locks with `random`'s value (without randomness it never locks).
    pub(crate) fn new(
        now: Instant,
        wall: SystemTime,
        ctx: Arc<Context>,
        query: StoreQuery,
        random: Option<Random>,
    ) -> Self {
        let keys = Keys::new(&ctx.settings.prefix, query.request());
        let state = if ctx.health.should_try(now) {
            State::Read(Read::First)
        } else {
            State::Answer(Answer::FetchLocally)
        };
        Self {
            ctx,
            query,
            keys,
            clock: WallClock::new(now, wall),
            owner: random.map(|r| lock_value(r.lock)),
            jitter: random.map_or(0, |r| r.jitter),
            state,
        }
    }

    /// What to do next. A command is asked again until its reply is handed over (every
    /// command of the protocol may run twice).
    pub(crate) fn poll(&mut self, now: Instant) -> Step {
        match self.state {
            State::Wait { at, .. } if now < at => return Step::Sleep(at),
            State::Wait { wait, .. } => self.state = State::Read(Read::Waiting(wait)),
            State::Held => return Step::Done(Answer::Fetch),
            State::Answer(_) => {
                let over = mem::replace(&mut self.state, State::Answer(Answer::Finished));
                let State::Answer(answer) = over else {
                    return Step::Done(Answer::Finished);
                };
                return Step::Done(answer);
            }
            _ => {}
        }
        // The owner is `Some` in every state that locks or releases.
        let (keys, owner) = (&self.keys, self.owner.as_deref().unwrap_or_default());
        let mut cmd = redis::Cmd::new();
        let op = match &self.state {
            State::Read(_) => {
                cmd.arg("GETRANGE").arg(&keys.token).arg(0).arg(MAX_VALUE);
                Op::Read
            }
            State::Lock(_) => {
                let ttl = px(self.ctx.settings.lock_ttl);
                cmd.arg("EVAL").arg(ACQUIRE).arg(1).arg(&keys.lock);
                cmd.arg(owner).arg(ttl);
                Op::Lock
            }
            State::Write { value, ttl } => {
                cmd.arg("SET").arg(&keys.token).arg(value.as_slice());
                cmd.arg("PX").arg(px(*ttl));
                Op::Write
            }
            _ => {
                cmd.arg("EVAL")
                    .arg(RELEASE)
                    .arg(1)
                    .arg(&keys.lock)
                    .arg(owner);
                Op::Release
            }
        };
        Step::Run(Command { op, cmd })
    }

    /// The reply to the command [`Flow::poll`] asked for, received at `now`. Ignored when
    /// the flow asked for none.
    pub(crate) fn handle_reply(&mut self, now: Instant, reply: RedisResult<Value>) {
        let state = mem::replace(&mut self.state, State::Answer(Answer::Finished));
        self.state = match state {
            State::Read(read) => self.on_read(now, read, reply),
            State::Lock(wait) => self.on_lock(now, wait, reply),
            State::Write { ttl, .. } => {
                match reply {
                    Ok(_) => {
                        self.ctx.health.succeeded();
                        tracing::debug!(key = %self.keys.token, ttl_ms = px(ttl), "token shared");
                    }
                    Err(e) => self.ctx.failed(now, e.category()),
                }
                self.release(now, Answer::Finished)
            }
            State::Release(answer) => {
                match reply {
                    Ok(_) => self.ctx.health.succeeded(),
                    Err(e) => self.ctx.failed(now, e.category()),
                }
                State::Answer(answer)
            }
            other => other,
        };
    }

    /// The caller's fetch produced `token`, to be kept for `ttl`: write it, then release
    /// the lock. Ignored unless the flow answered [`Answer::Fetch`].
    pub(crate) fn handle_published(&mut self, now: Instant, token: &Token, ttl: Duration) {
        if !matches!(self.state, State::Held) {
            return;
        }
        self.state = if !self.ctx.health.should_try(now) {
            // Down meanwhile: the lock expires by itself.
            State::Answer(Answer::Finished)
        } else if let Some(value) = self.ctx.keyring.seal(&self.keys.token, token) {
            State::Write {
                value: Zeroizing::new(value),
                ttl,
            }
        } else {
            State::Release(Answer::Finished)
        };
    }

    /// The caller's fetch ended without a token (it failed, or was dropped): release the
    /// lock. Ignored unless the flow answered [`Answer::Fetch`].
    pub(crate) fn handle_abandoned(&mut self, now: Instant) {
        if matches!(self.state, State::Held) {
            self.state = self.release(now, Answer::Finished);
        }
    }

    /// Whether the flow has nothing left to do but answer [`Answer::Finished`].
    pub(crate) fn is_finished(&self) -> bool {
        matches!(self.state, State::Answer(Answer::Finished))
    }

    /// Release the lock, unless Redis counts as down (then it expires by itself).
    fn release(&self, now: Instant, then: Answer) -> State {
        if self.ctx.health.should_try(now) {
            State::Release(then)
        } else {
            State::Answer(then)
        }
    }

    fn on_read(&self, now: Instant, read: Read, reply: RedisResult<Value>) -> State {
        let value = match reply {
            Ok(value) => value,
            Err(e) if is_connection_error(&e) => {
                self.ctx.failed(now, e.category());
                return State::Answer(Answer::FetchLocally);
            }
            Err(e) => {
                // A working Redis that refuses the read (a key of another type): a miss.
                tracing::debug!(error = e.category(), "shared token unreadable, ignored");
                Value::Nil
            }
        };
        self.ctx.health.succeeded();
        match (self.take(now, value), read) {
            (Some(token), Read::First) => State::Answer(Answer::Shared(token)),
            (Some(token), Read::Locked) => State::Release(Answer::Shared(token)),
            (Some(token), Read::Waiting(wait)) => {
                let waited = now.saturating_duration_since(wait.since);
                tracing::debug!(
                    waited_ms = u64::try_from(waited.as_millis()).unwrap_or(u64::MAX),
                    "token fetched by another process taken from the shared store"
                );
                State::Answer(Answer::Shared(token))
            }
            (None, Read::First) if self.owner.is_none() => State::Answer(Answer::FetchLocally),
            (None, Read::First) => State::Lock(Wait {
                since: now,
                deadline: self.ctx.settings.wait_deadline(now, self.jitter),
            }),
            (None, Read::Locked) => {
                tracing::debug!(key = %self.keys.lock, "fleet fetch lock taken");
                State::Held
            }
            (None, Read::Waiting(wait)) => State::Lock(wait),
        }
    }

    fn on_lock(&self, now: Instant, wait: Wait, reply: RedisResult<Value>) -> State {
        match reply {
            Ok(Value::Int(1)) => {
                self.ctx.health.succeeded();
                State::Read(Read::Locked)
            }
            Ok(Value::Int(0)) => {
                self.ctx.health.succeeded();
                match wait.deadline.filter(|deadline| now < *deadline) {
                    Some(deadline) => State::Wait {
                        wait,
                        at: now
                            .checked_add(self.ctx.settings.poll_interval)
                            .map_or(deadline, |at| at.min(deadline)),
                    },
                    None => {
                        tracing::debug!(
                            key = %self.keys.lock,
                            "another process's token fetch took too long; fetching locally"
                        );
                        State::Answer(Answer::FetchLocally)
                    }
                }
            }
            Ok(_) => {
                self.ctx.failed(now, "unexpected reply");
                State::Answer(Answer::FetchLocally)
            }
            Err(e) => {
                self.ctx.failed(now, e.category());
                State::Answer(Answer::FetchLocally)
            }
        }
    }

    /// The token in a read's reply, if the session would take it at `now`: a readable
    /// record ([`Keyring::open`](crate::record::Keyring::open)) of a token that passes the
    /// core's rule ([`Config::check_stored`](client_credentials_core::Config::check_stored))
    /// and that the session takes ([`StoreQuery::accepts`]). A value that is no such record
    /// is a miss, logged; a stale token is a miss.
    fn take(&self, now: Instant, value: Value) -> Option<Arc<Token>> {
        let value = match value {
            Value::BulkString(bytes) => Zeroizing::new(bytes),
            Value::Nil => return None,
            _ => {
                self.unreadable(now, Unreadable::Malformed);
                return None;
            }
        };
        if value.is_empty() {
            return None;
        }
        let token = match self.ctx.keyring.open(&self.keys.token, &value) {
            Ok(token) => token,
            Err(why) => {
                self.unreadable(now, why);
                return None;
            }
        };
        let wall = self.clock.at(now);
        let config = self.query.request().config();
        match config.check_stored(self.query.policy(), wall, &token) {
            Ok(()) => {}
            Err(StoredTokenProblem::Expired) => return None,
            Err(problem) => {
                self.unreadable(now, Unreadable::NotAccepted(problem));
                return None;
            }
        }
        self.query.accepts(wall, &token).then(|| Arc::new(token))
    }

    fn unreadable(&self, now: Instant, why: Unreadable) {
        self.ctx.health.unreadable(now, &self.keys.token, why);
    }
}

#[cfg(test)]
mod tests {
    use std::io;

    use client_credentials_core::http::{HeaderMap, StatusCode};
    use client_credentials_core::{Action, Cache, Config, Policy};
    use redis::RedisError;

    use super::*;
    use crate::record::Keyring;
    use crate::store::{Health, Settings};

    const POLL: Duration = Duration::from_millis(50);
    const MAX_WAIT: Duration = Duration::from_secs(2);
    const RANDOM: Random = Random {
        lock: [0xab; 16],
        jitter: 123,
    };

    fn wall() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)
    }

    fn config() -> Config {
        Config::builder()
            .token_url("https://as.example.com/token")
            .client_id("c")
            .client_secret("s")
            .build()
            .unwrap()
    }

    fn ctx() -> Arc<Context> {
        Arc::new(Context {
            settings: Settings {
                prefix: "p".to_owned(),
                lock_ttl: Duration::from_secs(3),
                max_wait: Some(MAX_WAIT),
                poll_interval: POLL,
                ..Settings::default()
            },
            keyring: Keyring::default(),
            health: Health::default(),
        })
    }

    /// A token as the endpoint would answer at `wall()`.
    fn fetched(cache_now: Instant, cache: &mut Cache, access: &str) -> Arc<Token> {
        let request = config().default_request();
        let Action::Send { id, .. } = cache.poll(cache_now, &request) else {
            panic!("no send")
        };
        let body =
            format!(r#"{{"access_token":"{access}","token_type":"Bearer","expires_in":3600}}"#);
        let outcome = cache.handle_response(
            cache_now,
            id,
            StatusCode::OK,
            &HeaderMap::new(),
            body.as_bytes(),
        );
        assert!(outcome.changed());
        cache
            .current_token(cache_now, request.cache_key())
            .unwrap()
            .clone()
    }

    /// The query of a cold cache's first fetch.
    fn query(now: Instant) -> StoreQuery {
        let mut cache = Cache::new(Policy::default(), WallClock::new(now, wall()), 1);
        let Action::Send { id, .. } = cache.poll(now, &config().default_request()) else {
            panic!("no send")
        };
        cache.store_query(now, id).unwrap()
    }

    /// A record as the store would find it: `issued` ago, of this type and lifetime.
    fn record(
        access: &str,
        token_type: &str,
        issued_ago: Duration,
        lifetime_ms: Option<u64>,
    ) -> Token {
        let issued = wall() - issued_ago;
        let ms = issued
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_millis();
        let mut json = serde_json::json!({
            "v": 1, "access_token": access, "token_type": token_type,
            "issued_at_ms": u64::try_from(ms).unwrap(), "scope_source": "granted",
        });
        if let Some(ms) = lifetime_ms {
            json["lifetime_ms"] = ms.into();
        }
        serde_json::from_value(json).unwrap()
    }

    fn fresh(access: &str) -> Token {
        record(access, "Bearer", Duration::from_secs(1), Some(3_600_000))
    }

    /// The reply to a read that finds `token`, as the store would have written it.
    fn found(flow: &Flow, token: &Token) -> RedisResult<Value> {
        let value = flow.ctx.keyring.seal(&flow.keys.token, token).unwrap();
        Ok(Value::BulkString(value))
    }

    fn miss() -> RedisResult<Value> {
        Ok(Value::BulkString(Vec::new()))
    }

    fn int(n: i64) -> RedisResult<Value> {
        Ok(Value::Int(n))
    }

    fn refused() -> RedisResult<Value> {
        Err(RedisError::from(io::Error::new(
            io::ErrorKind::ConnectionRefused,
            "refused",
        )))
    }

    fn wrong_type() -> RedisResult<Value> {
        Err(redis::make_extension_error(
            "WRONGTYPE".to_owned(),
            Some("Operation against a key holding the wrong kind of value".to_owned()),
        ))
    }

    /// Polls, expects a command of kind `op`, answers it with `reply`.
    fn expect_run(flow: &mut Flow, now: Instant, op: Op, reply: RedisResult<Value>) -> redis::Cmd {
        match flow.poll(now) {
            Step::Run(command) => {
                assert_eq!(command.op, op);
                flow.handle_reply(now, reply);
                command.cmd
            }
            other => panic!("expected {op:?}, got {other:?}"),
        }
    }

    fn expect_done(flow: &mut Flow, now: Instant) -> Answer {
        match flow.poll(now) {
            Step::Done(answer) => answer,
            other => panic!("expected an answer, got {other:?}"),
        }
    }

    fn args(cmd: &redis::Cmd) -> Vec<String> {
        cmd.args_iter()
            .map(|arg| match arg {
                redis::Arg::Simple(bytes) => String::from_utf8_lossy(bytes).into_owned(),
                _ => "<cursor>".to_owned(),
            })
            .collect()
    }

    fn flow(now: Instant) -> Flow {
        Flow::new(now, wall(), ctx(), query(now), Some(RANDOM))
    }

    /// Runs a flow to its lock: a first read that misses, the lock taken, a re-read that
    /// misses.
    fn to_held(flow: &mut Flow, now: Instant) {
        expect_run(flow, now, Op::Read, miss());
        expect_run(flow, now, Op::Lock, int(1));
        expect_run(flow, now, Op::Read, miss());
        assert!(matches!(expect_done(flow, now), Answer::Fetch));
    }

    #[test]
    fn a_stored_token_the_session_takes_is_shared_at_once() {
        let now = Instant::now();
        let mut flow = flow(now);
        let reply = found(&flow, &fresh("from-redis"));
        let cmd = expect_run(&mut flow, now, Op::Read, reply);
        assert_eq!(args(&cmd)[0], "GETRANGE");
        assert_eq!(args(&cmd)[1], flow.keys.token);
        assert_eq!(args(&cmd)[3], MAX_VALUE.to_string());
        let Answer::Shared(token) = expect_done(&mut flow, now) else {
            panic!("not shared")
        };
        assert_eq!(token.access_token().expose_secret(), "from-redis");
        assert!(flow.is_finished() && !flow.ctx.health.is_down());
        assert!(matches!(expect_done(&mut flow, now), Answer::Finished));
    }

    #[test]
    fn a_miss_takes_the_lock_fetches_publishes_and_releases() {
        let now = Instant::now();
        let mut flow = flow(now);
        expect_run(&mut flow, now, Op::Read, miss());
        let lock = args(&expect_run(&mut flow, now, Op::Lock, int(1)));
        let owner = lock_value(RANDOM.lock);
        assert_eq!(lock[..2], ["EVAL", ACQUIRE]);
        assert_eq!(
            lock[3..],
            [flow.keys.lock.clone(), owner.clone(), "3000".to_owned()]
        );
        expect_run(&mut flow, now, Op::Read, miss());
        assert!(matches!(expect_done(&mut flow, now), Answer::Fetch));
        // Until the fetch is over, the flow only says so again.
        assert!(matches!(expect_done(&mut flow, now), Answer::Fetch));

        let token = fresh("fetched");
        flow.handle_published(now, &token, Duration::from_millis(3_590_000));
        let write = args(&expect_run(&mut flow, now, Op::Write, Ok(Value::Okay)));
        assert_eq!(write[0..2], ["SET".to_owned(), flow.keys.token.clone()]);
        assert_eq!(write[3..], ["PX", "3590000"]);
        assert_eq!(
            Keyring::default()
                .open("k", write[2].as_bytes())
                .unwrap()
                .access_token(),
            token.access_token()
        );
        let release = args(&expect_run(&mut flow, now, Op::Release, int(1)));
        assert_eq!(release, ["EVAL", RELEASE, "1", &flow.keys.lock, &owner]);
        assert!(matches!(expect_done(&mut flow, now), Answer::Finished));
        assert!(!flow.ctx.health.is_down());
    }

    #[test]
    fn a_token_that_landed_before_the_lock_is_shared_and_the_lock_released() {
        let now = Instant::now();
        let mut flow = flow(now);
        expect_run(&mut flow, now, Op::Read, miss());
        expect_run(&mut flow, now, Op::Lock, int(1));
        let reply = found(&flow, &fresh("landed"));
        expect_run(&mut flow, now, Op::Read, reply);
        expect_run(&mut flow, now, Op::Release, int(1));
        let Answer::Shared(token) = expect_done(&mut flow, now) else {
            panic!("not shared")
        };
        assert_eq!(token.access_token().expose_secret(), "landed");
    }

    #[test]
    fn a_stored_token_the_session_refuses_is_a_miss() {
        let t0 = Instant::now();
        // Refused by the core's rule (logged as unreadable, or stale), or by the session.
        let mut cache = Cache::new(Policy::default(), WallClock::new(t0, wall()), 1);
        let held = fetched(t0, &mut cache, "held");
        assert!(cache.invalidate(t0, held.access_token()));
        let Action::Send { id, .. } = cache.poll(t0, &config().default_request()) else {
            panic!("no send")
        };
        let after_rejection = cache.store_query(t0, id).unwrap();
        let cases: [(&str, StoreQuery, Token); 5] = [
            (
                "a token type not accepted",
                query(t0),
                record("a", "MAC", Duration::ZERO, Some(3_600_000)),
            ),
            (
                "no expiry",
                query(t0),
                record("a", "Bearer", Duration::ZERO, None),
            ),
            (
                "usable life over",
                query(t0),
                record("a", "Bearer", Duration::from_secs(3595), Some(3_600_000)),
            ),
            ("the token rejected", after_rejection, (*held).clone()),
            ("garbage", query(t0), fresh("unused")),
        ];
        for (why, query, token) in cases {
            let mut flow = Flow::new(t0, wall(), ctx(), query, Some(RANDOM));
            let reply = if why == "garbage" {
                Ok(Value::BulkString(b"{not a record".to_vec()))
            } else {
                found(&flow, &token)
            };
            expect_run(&mut flow, t0, Op::Read, reply);
            match flow.poll(t0) {
                Step::Run(command) => assert_eq!(command.op, Op::Lock, "{why}"),
                other => panic!("{why}: {other:?}"),
            }
            assert!(!flow.ctx.health.is_down(), "{why}");
        }
    }

    #[test]
    fn a_token_no_newer_than_the_held_one_is_a_miss() {
        let t0 = Instant::now();
        let mut cache = Cache::new(Policy::default(), WallClock::new(t0, wall()), 1);
        let held = fetched(t0, &mut cache, "held");
        let key = config().default_request().cache_key().clone();
        assert!(cache.force_refresh(t0, &key));
        let Action::Send { id, .. } = cache.poll(t0, &config().default_request()) else {
            panic!("no send")
        };
        let query = cache.store_query(t0, id).unwrap();
        // The same token (no later expiry) is refused; a later one is taken.
        let mut flow = Flow::new(t0, wall(), ctx(), query.clone(), Some(RANDOM));
        let reply = found(&flow, &held);
        expect_run(&mut flow, t0, Op::Read, reply);
        assert!(matches!(
            flow.poll(t0),
            Step::Run(Command { op: Op::Lock, .. })
        ));
        let later = record("later", "Bearer", Duration::ZERO, Some(3_700_000));
        let mut flow = Flow::new(t0, wall(), ctx(), query, Some(RANDOM));
        let reply = found(&flow, &later);
        expect_run(&mut flow, t0, Op::Read, reply);
        assert!(matches!(expect_done(&mut flow, t0), Answer::Shared(_)));
    }

    #[test]
    fn a_token_that_lands_while_another_process_holds_the_lock_is_taken() {
        let t0 = Instant::now();
        let mut flow = flow(t0);
        expect_run(&mut flow, t0, Op::Read, miss());
        expect_run(&mut flow, t0, Op::Lock, int(0));
        // Sleep a poll interval; polled early, the flow says so again.
        assert!(matches!(flow.poll(t0), Step::Sleep(at) if at == t0 + POLL));
        assert!(matches!(flow.poll(t0 + POLL / 2), Step::Sleep(at) if at == t0 + POLL));
        let t1 = t0 + POLL;
        expect_run(&mut flow, t1, Op::Read, miss());
        expect_run(&mut flow, t1, Op::Lock, int(0));
        let t2 = t1 + POLL;
        assert!(matches!(flow.poll(t1), Step::Sleep(at) if at == t2));
        let reply = found(&flow, &fresh("theirs"));
        expect_run(&mut flow, t2, Op::Read, reply);
        let Answer::Shared(token) = expect_done(&mut flow, t2) else {
            panic!("not shared")
        };
        assert_eq!(token.access_token().expose_secret(), "theirs");
    }

    #[test]
    fn a_lock_released_without_a_token_is_taken_over() {
        let t0 = Instant::now();
        let mut flow = flow(t0);
        expect_run(&mut flow, t0, Op::Read, miss());
        expect_run(&mut flow, t0, Op::Lock, int(0));
        let t1 = t0 + POLL;
        expect_run(&mut flow, t1, Op::Read, miss());
        // Its holder failed or died: the lock is free, and this flow takes it.
        expect_run(&mut flow, t1, Op::Lock, int(1));
        expect_run(&mut flow, t1, Op::Read, miss());
        assert!(matches!(expect_done(&mut flow, t1), Answer::Fetch));
    }

    #[test]
    fn the_wait_ends_at_the_max_wait_and_its_jitter() {
        let t0 = Instant::now();
        // The deadline: max_wait plus up to a tenth of it, drawn from the jitter.
        let settings = &ctx().settings;
        let tenth = u64::try_from((MAX_WAIT / 10).as_millis()).unwrap();
        let deadline = settings.wait_deadline(t0, RANDOM.jitter).unwrap();
        assert_eq!(
            deadline,
            t0 + MAX_WAIT + Duration::from_millis(RANDOM.jitter % (tenth + 1))
        );
        assert_eq!(
            settings.wait_deadline(t0, u64::MAX),
            Some(t0 + MAX_WAIT + Duration::from_millis(u64::MAX % (tenth + 1)))
        );
        assert!(settings.wait_deadline(t0, tenth).unwrap() <= t0 + MAX_WAIT + MAX_WAIT / 10);

        let mut flow = flow(t0);
        expect_run(&mut flow, t0, Op::Read, miss());
        let mut now = t0;
        let mut reads = 0;
        loop {
            expect_run(&mut flow, now, Op::Lock, int(0));
            match flow.poll(now) {
                Step::Sleep(at) => {
                    assert!(at > now && at <= deadline, "never sleeps past the deadline");
                    now = at;
                }
                Step::Done(answer) => {
                    assert!(matches!(answer, Answer::FetchLocally));
                    break;
                }
                Step::Run(command) => panic!("{command:?}"),
            }
            expect_run(&mut flow, now, Op::Read, miss());
            reads += 1;
        }
        assert_eq!(now, deadline);
        // One read per poll interval (the last one shortened to the deadline).
        let expected = (deadline - t0).as_millis().div_ceil(POLL.as_millis());
        assert_eq!(reads, usize::try_from(expected).unwrap());
        assert!(!flow.ctx.health.is_down(), "a long wait is not a failure");
    }

    fn taken() -> RedisResult<Value> {
        int(1)
    }

    fn held_elsewhere() -> RedisResult<Value> {
        int(0)
    }

    #[test]
    fn a_redis_failure_at_any_lookup_step_fetches_locally_and_marks_redis_down() {
        type Reply = fn() -> RedisResult<Value>;
        let scripts: [&[(Op, Reply)]; 6] = [
            &[(Op::Read, refused)],
            &[(Op::Read, miss), (Op::Lock, refused)],
            &[(Op::Read, miss), (Op::Lock, wrong_type)],
            &[(Op::Read, miss), (Op::Lock, || Ok(Value::Okay))],
            &[(Op::Read, miss), (Op::Lock, taken), (Op::Read, refused)],
            &[
                (Op::Read, miss),
                (Op::Lock, held_elsewhere),
                (Op::Read, refused),
            ],
        ];
        for (i, script) in scripts.into_iter().enumerate() {
            let t0 = Instant::now();
            let mut flow = flow(t0);
            let mut now = t0;
            for &(op, reply) in script {
                if let Step::Sleep(at) = flow.poll(now) {
                    now = at;
                }
                expect_run(&mut flow, now, op, reply());
            }
            assert!(
                matches!(expect_done(&mut flow, now), Answer::FetchLocally),
                "script {i}"
            );
            assert!(flow.ctx.health.is_down(), "script {i}");
            // While Redis counts as down, a new flow asks nothing, until the pause is over.
            let ctx = Arc::clone(&flow.ctx);
            let mut next = Flow::new(now, wall(), Arc::clone(&ctx), query(now), Some(RANDOM));
            assert!(matches!(expect_done(&mut next, now), Answer::FetchLocally));
            let later = now + ctx.settings.retry_after_failure;
            let mut next = Flow::new(later, wall(), Arc::clone(&ctx), query(later), Some(RANDOM));
            expect_run(&mut next, later, Op::Read, miss());
            assert!(!ctx.health.is_down(), "back after a successful call");
        }
    }

    #[test]
    fn a_server_error_on_a_read_is_a_miss_not_a_failure() {
        let now = Instant::now();
        let mut flow = flow(now);
        expect_run(&mut flow, now, Op::Read, wrong_type());
        expect_run(&mut flow, now, Op::Lock, taken());
        expect_run(&mut flow, now, Op::Read, wrong_type());
        assert!(matches!(expect_done(&mut flow, now), Answer::Fetch));
        assert!(!flow.ctx.health.is_down());
    }

    #[test]
    fn a_failed_write_skips_the_release_and_marks_redis_down() {
        let now = Instant::now();
        let mut flow = flow(now);
        to_held(&mut flow, now);
        flow.handle_published(now, &fresh("fetched"), Duration::from_secs(60));
        expect_run(&mut flow, now, Op::Write, refused());
        assert!(matches!(expect_done(&mut flow, now), Answer::Finished));
        assert!(flow.ctx.health.is_down());
    }

    #[test]
    fn a_failed_release_marks_redis_down() {
        let now = Instant::now();
        let mut flow = flow(now);
        to_held(&mut flow, now);
        flow.handle_published(now, &fresh("fetched"), Duration::from_secs(60));
        expect_run(&mut flow, now, Op::Write, Ok(Value::Okay));
        expect_run(&mut flow, now, Op::Release, refused());
        assert!(matches!(expect_done(&mut flow, now), Answer::Finished));
        assert!(flow.ctx.health.is_down());
    }

    #[test]
    fn an_abandoned_fetch_releases_the_lock_without_writing() {
        let now = Instant::now();
        let mut flow = flow(now);
        to_held(&mut flow, now);
        flow.handle_abandoned(now);
        expect_run(&mut flow, now, Op::Release, int(1));
        assert!(flow.is_finished());
        // Inputs out of turn change nothing.
        flow.handle_published(now, &fresh("late"), Duration::from_secs(60));
        flow.handle_abandoned(now);
        flow.handle_reply(now, refused());
        assert!(flow.is_finished() && !flow.ctx.health.is_down());
    }

    #[test]
    fn nothing_is_written_or_released_while_redis_is_down() {
        let now = Instant::now();
        for publish in [true, false] {
            let mut flow = flow(now);
            to_held(&mut flow, now);
            flow.ctx.failed(now, "test");
            if publish {
                flow.handle_published(now, &fresh("fetched"), Duration::from_secs(60));
            } else {
                flow.handle_abandoned(now);
            }
            // The lock expires by itself.
            assert!(matches!(expect_done(&mut flow, now), Answer::Finished));
        }
    }

    #[test]
    fn without_randomness_a_miss_fetches_locally_without_a_lock() {
        let now = Instant::now();
        let mut flow = Flow::new(now, wall(), ctx(), query(now), None);
        expect_run(&mut flow, now, Op::Read, miss());
        assert!(matches!(expect_done(&mut flow, now), Answer::FetchLocally));
        // A hit still needs no lock.
        let mut flow = Flow::new(now, wall(), ctx(), query(now), None);
        let reply = found(&flow, &fresh("shared"));
        expect_run(&mut flow, now, Op::Read, reply);
        assert!(matches!(expect_done(&mut flow, now), Answer::Shared(_)));
    }

    #[test]
    fn sealed_records_are_read_with_the_ring() {
        let now = Instant::now();
        let mut ring = Keyring::default();
        ring.push_front(crate::EncryptionKey::new("k1", [3; 32]).unwrap());
        let sealed = Arc::new(Context {
            settings: ctx().settings.clone(),
            keyring: ring,
            health: Health::default(),
        });
        // A clear record where a key is set is a miss; a sealed one is taken.
        let mut flow = Flow::new(now, wall(), Arc::clone(&sealed), query(now), Some(RANDOM));
        let clear = Keyring::default()
            .seal(&flow.keys.token, &fresh("clear"))
            .unwrap();
        expect_run(&mut flow, now, Op::Read, Ok(Value::BulkString(clear)));
        assert!(matches!(
            flow.poll(now),
            Step::Run(Command { op: Op::Lock, .. })
        ));
        let mut flow = Flow::new(now, wall(), sealed, query(now), Some(RANDOM));
        let reply = found(&flow, &fresh("sealed"));
        expect_run(&mut flow, now, Op::Read, reply);
        assert!(matches!(expect_done(&mut flow, now), Answer::Shared(_)));
    }

    #[test]
    fn answers_map_to_the_adapters_lookup() {
        let token = Arc::new(fresh("t"));
        assert!(matches!(
            Answer::Shared(token).into_lookup(|| ()),
            Lookup::Shared(_)
        ));
        assert!(matches!(Answer::Fetch.into_lookup(|| 7), Lookup::Fetch(7)));
        assert!(matches!(
            Answer::FetchLocally.into_lookup(|| ()),
            Lookup::FetchLocally
        ));
        assert!(matches!(
            Answer::Finished.into_lookup(|| ()),
            Lookup::FetchLocally
        ));
    }

    #[test]
    fn debug_of_a_step_shows_no_token() {
        let now = Instant::now();
        let mut flow = flow(now);
        to_held(&mut flow, now);
        flow.handle_published(now, &fresh("tok-secret"), Duration::from_secs(60));
        let shown = format!("{:?}", flow.poll(now));
        assert_eq!(shown, "Run(Command(Write))");
    }
}
