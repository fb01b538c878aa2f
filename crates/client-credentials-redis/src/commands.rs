//! The Redis commands of the protocol, and what both stores do with their answers.

use client_credentials_core::{Config, Token};

use crate::record::{self, ACQUIRE, Keys, MAX_VALUE, RELEASE, px};
use crate::store::Inner;

/// `EVAL acquire 1 lock owner ttl`: `SET lock owner NX PX ttl`, except that a lock that
/// already holds `owner` counts as taken (its life restarts). Answers 1 when this owner
/// holds the lock, 0 when another does.
///
/// So a retry is safe: when a `SET NX` succeeded but its reply was lost (the connection
/// dropped or timed out, and the call was sent again on a new one), the retry finds the
/// lock held by this very owner and takes it, rather than waiting on itself until the lock
/// expires.
pub(crate) fn lock_cmd(inner: &Inner, keys: &Keys, owner: &str) -> redis::Cmd {
    let mut cmd = redis::cmd("EVAL");
    cmd.arg(ACQUIRE)
        .arg(1)
        .arg(&keys.lock)
        .arg(owner)
        .arg(px(inner.settings.lock_ttl));
    cmd
}

/// `GETRANGE token 0 MAX_VALUE`: one byte more than a record may have, never a huge value.
pub(crate) fn read_cmd(keys: &Keys) -> redis::Cmd {
    let mut cmd = redis::cmd("GETRANGE");
    cmd.arg(&keys.token).arg(0).arg(MAX_VALUE);
    cmd
}

/// `EVAL release 1 lock owner`: deletes the lock only if this owner still holds it.
pub(crate) fn release_cmd(keys: &Keys, owner: &str) -> redis::Cmd {
    let mut cmd = redis::cmd("EVAL");
    cmd.arg(RELEASE).arg(1).arg(&keys.lock).arg(owner);
    cmd
}

impl Inner {
    pub(crate) fn failed(&self, e: &redis::RedisError) {
        self.health.failed(e, self.settings.retry_after_failure);
    }

    /// The token in `value`, read from `keys.token`, if it is a readable record of a token
    /// `config` accepts ([`record::accepted`]); anything else is a miss, logged.
    pub(crate) fn parse(&self, keys: &Keys, value: &[u8], config: &Config) -> Option<Token> {
        if value.is_empty() {
            return None;
        }
        let token = self
            .keyring
            .open(&keys.token, value)
            .and_then(|token| record::accepted(config, &token).map(|()| token));
        match token {
            Ok(token) => Some(token),
            Err(why) => {
                self.health.unreadable(&keys.token, why);
                None
            }
        }
    }
}
