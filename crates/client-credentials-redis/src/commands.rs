//! The Redis commands of the protocol, and what both stores do with their answers.

use client_credentials_core::Token;

use crate::record::{Keys, MAX_VALUE, RELEASE, px};
use crate::store::Inner;

/// `SET lock owner NX PX ttl`.
pub(crate) fn lock_cmd(inner: &Inner, keys: &Keys, owner: &str) -> redis::Cmd {
    let mut cmd = redis::cmd("SET");
    cmd.arg(&keys.lock)
        .arg(owner)
        .arg("NX")
        .arg("PX")
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

    pub(crate) fn parse(&self, keys: &Keys, value: &[u8]) -> Option<Token> {
        if value.is_empty() {
            return None;
        }
        match self.keyring.open(&keys.token, value) {
            Ok(token) => Some(token),
            Err(why) => {
                self.health.unreadable(&keys.token, why);
                None
            }
        }
    }
}
