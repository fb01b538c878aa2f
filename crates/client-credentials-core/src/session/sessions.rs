//! One session per request shape.

use std::collections::HashMap;
use std::time::Instant;

use super::{IdSource, Policy, Session, WallClock, rng};
use crate::request::{CacheKey, TokenRequest};
use crate::secret::AccessToken;

/// One [`Session`] per request shape, keyed by [`CacheKey`]: callers asking for different
/// scopes, audiences or resources never receive each other's token, and each shape has its
/// own single flight, refresh schedule and backoff.
///
/// Sessions share the policy and the clock; each gets its own jitter seed, derived from the
/// base seed and its key, and request ids are unique across all of them, so an id reported
/// to the wrong session is ignored there.
///
/// Sessions are created on first use and kept until removed; a service that builds request
/// shapes from untrusted input should bound them with [`Sessions::retain`].
///
/// ```
/// use std::time::{Instant, SystemTime};
/// use client_credentials_core::{Config, TokenParams};
/// use client_credentials_core::session::{Action, Policy, Sessions, WallClock};
///
/// let config = Config::builder()
///     .token_url("https://as.example.com/token")
///     .client_id("c")
///     .client_secret("s")
///     .build()?;
/// let reports = config.request(&TokenParams::new().scopes(["reports.read"]))?;
/// let orders = config.request(&TokenParams::new().scopes(["orders.read"]))?;
///
/// let now = Instant::now();
/// let mut sessions = Sessions::new(Policy::default(), WallClock::new(now, SystemTime::now()), 7);
/// let a = sessions.get_or_insert(&reports).poll(now);
/// let b = sessions.get_or_insert(&orders).poll(now);
/// assert!(matches!((a, b), (Action::Send { .. }, Action::Send { .. })), "one flight per shape");
/// assert_eq!(sessions.len(), 2);
/// # Ok::<_, client_credentials_core::ConfigError>(())
/// ```
#[derive(Debug)]
pub struct Sessions {
    policy: Policy,
    clock: WallClock,
    seed: u64,
    ids: IdSource,
    sessions: HashMap<CacheKey, Session>,
}

impl Sessions {
    /// No sessions yet; each is created on first use with `policy` and `clock`, and a seed
    /// derived from `seed` and its key.
    #[must_use]
    pub fn new(policy: Policy, clock: WallClock, seed: u64) -> Self {
        Self {
            policy,
            clock,
            seed,
            ids: IdSource::default(),
            sessions: HashMap::new(),
        }
    }

    /// The shared policy.
    #[must_use]
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The session for `key`, if it exists.
    #[must_use]
    pub fn get(&self, key: &CacheKey) -> Option<&Session> {
        self.sessions.get(key)
    }

    /// The session for `key`, mutably, if it exists.
    pub fn get_mut(&mut self, key: &CacheKey) -> Option<&mut Session> {
        self.sessions.get_mut(key)
    }

    /// The number of sessions.
    #[must_use]
    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    /// Whether there are no sessions.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// The sessions with their keys, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&CacheKey, &Session)> {
        self.sessions.iter()
    }

    /// The earliest [`Session::poll_timeout`] of all sessions, for a single background
    /// task that refreshes every shape.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.sessions
            .values()
            .filter_map(Session::poll_timeout)
            .min()
    }

    /// The session for `request`'s shape, created if needed.
    pub fn get_or_insert(&mut self, request: &TokenRequest) -> &mut Session {
        let Self {
            policy,
            clock,
            seed,
            ids,
            sessions,
        } = self;
        sessions
            .entry(request.cache_key().clone())
            .or_insert_with(|| {
                let key_seed =
                    rng::mix(*seed ^ rng::fnv1a(request.cache_key().as_str().as_bytes()));
                Session::with_ids(
                    request.clone(),
                    policy.clone(),
                    *clock,
                    key_seed,
                    ids.clone(),
                )
            })
    }

    /// Removes the session for `key` and returns it.
    pub fn remove(&mut self, key: &CacheKey) -> Option<Session> {
        self.sessions.remove(key)
    }

    /// Keeps only the sessions for which `keep` returns `true` (for example, those used
    /// recently, or those holding a token).
    pub fn retain(&mut self, mut keep: impl FnMut(&CacheKey, &Session) -> bool) {
        self.sessions.retain(|k, s| keep(k, s));
    }

    /// A resource server rejected `rejected`: [`Session::invalidate`] on every request shape,
    /// since the caller seldom knows which shape the token came from. Returns whether any
    /// session dropped it.
    pub fn invalidate(&mut self, now: Instant, rejected: &AccessToken) -> bool {
        // Every session, not just the first that drops it: no short circuit.
        let mut dropped = false;
        for session in self.sessions.values_mut() {
            dropped |= session.invalidate(now, rejected);
        }
        dropped
    }

    /// For operators: [`Session::reset_backoff`] on every request shape, so that each ends
    /// its backoff or cool-down now. Returns how many were backing off.
    pub fn reset_backoff(&mut self, now: Instant) -> usize {
        self.sessions
            .values_mut()
            .map(|session| session.reset_backoff(now))
            .filter(|ended| *ended)
            .count()
    }
}
