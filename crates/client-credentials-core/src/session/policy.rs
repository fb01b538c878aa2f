//! The timing policy of a session: when to refresh, when a token counts as expired, how to
//! back off.

use std::time::Duration;

/// The shortest delay the session ever schedules (backoff, request deadline, refresh): it
/// keeps every deadline strictly in the future, so a driver never spins.
pub(crate) const MIN_DELAY: Duration = Duration::from_millis(1);

/// A refresh is never scheduled sooner than this after a token was requested (or half the
/// token's usable life, if that is shorter), whatever the ratio or the server's
/// `refresh_in` say: a misconfiguration then costs one request a second, not a request loop.
pub(crate) const MIN_REFRESH_DELAY: Duration = Duration::from_secs(1);

/// How many early rejections in a row ([`Policy::early_rejection_window`]) are each answered
/// with a new token at once; the next one starts a backoff. One fresh token rejected can be
/// bad luck (it crossed a key rotation, a resource server replica had not learnt the new key
/// yet) and so can a second or a third; a middleware that retries once after a 401 spends
/// two tokens per failing call. A resource server that rejects every token (wrong audience,
/// wrong issuer) is stopped after four token requests, then one per backoff.
pub(crate) const FREE_EARLY_REJECTIONS: u32 = 3;

/// The timing policy of a [`super::Session`]. Every field has a default, documented and
/// justified in the [module documentation](super#policy-defaults); change fields on
/// `Policy::default()`:
///
/// ```
/// use std::time::Duration;
/// use client_credentials::session::Policy;
///
/// let mut policy = Policy::default();
/// policy.request_timeout = Duration::from_secs(10);
/// policy.max_backoff = Duration::from_secs(5 * 60);
/// # let _ = policy;
/// ```
///
/// Values are used as given, with three guards so that no setting can panic or spin:
/// fractions are clamped to `0.0..=1.0` (NaN counts as 0), every delay is at least a
/// millisecond, and a refresh is scheduled no sooner than a second after the request (or
/// half the token's usable life, if that is shorter).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Policy {
    /// The fraction of a token's usable life after which a refresh starts, while the token
    /// keeps being served. Default `0.8`.
    pub refresh_ratio: f64,
    /// The refresh point is moved earlier by a random fraction of itself, up to this much,
    /// so that many instances started together do not refresh together. Default `0.1`
    /// (refresh between 72 % and 80 % of the usable life).
    pub refresh_jitter: f64,
    /// A token counts as expired this long before its real expiry, so that it is not
    /// presented to a resource server just as it dies. A token whose lifetime is shorter
    /// than twice the margin gets a smaller margin (see the module docs); one shorter than
    /// the margin is served until its real expiry. Default 10 s.
    pub expiry_margin: Duration,
    /// How long a sent request may stay unanswered. After that, the next `poll` sends a new
    /// request and the old id is ignored. A backstop for drivers that lose a request; the
    /// transport's own timeout should be shorter. Default 30 s.
    pub request_timeout: Duration,
    /// The backoff ceiling after the first failure; it doubles with each consecutive
    /// failure. Default 1 s.
    pub initial_backoff: Duration,
    /// The largest backoff ceiling. Default 60 s.
    pub max_backoff: Duration,
    /// After an error that asking again will not fix (`invalid_client`, `invalid_scope`, an
    /// unusable response…), no new request before this long. Default 30 s.
    pub rejection_cooldown: Duration,
    /// The longest wait a server's `Retry-After` can impose. A longer `Retry-After` (a
    /// misconfigured load balancer or firewall answering 503 with a day or a year) is cut to
    /// this; shorter ones are honoured in full. Default 10 min. `Duration::MAX` honours any
    /// `Retry-After`, however long, which lets one bogus header stop the client for as long
    /// as it says.
    pub max_retry_after: Duration,
    /// A token that a resource server rejects ([`super::Session::invalidate`]) sooner than
    /// this after the session took it is rejected *early*. Three early rejections in a row
    /// are each answered with a new token at once; from the fourth on, the session backs off
    /// as after a failed fetch (`initial_backoff`, doubling, up to `max_backoff`) with
    /// [`crate::TokenError::RejectedByResource`], so that a resource server that rejects every
    /// token cannot turn every call into a token request. A rejection of an older token, or
    /// of a token that was replaced by a regular refresh, starts the count over. Default
    /// 30 s; `Duration::ZERO` turns the throttle off.
    pub early_rejection_window: Duration,
    /// The most request shapes a [`super::Cache`] holds. A new shape beyond it evicts the
    /// least recently used one that has no request in flight, so that a service building
    /// shapes from its input (a scope per tenant) cannot grow without bound. Default 1024.
    pub max_keys: usize,
    /// A [`super::Cache`] entry unused (not polled) for this long, with nothing in flight,
    /// is evicted, token and all. Default 1 h: a shape used less often than that pays one
    /// token request per use, which such a caller can afford.
    pub idle_eviction: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            refresh_ratio: 0.8,
            refresh_jitter: 0.1,
            expiry_margin: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
            rejection_cooldown: Duration::from_secs(30),
            max_retry_after: Duration::from_secs(10 * 60),
            early_rejection_window: Duration::from_secs(30),
            max_keys: 1024,
            idle_eviction: Duration::from_secs(3600),
        }
    }
}

impl Policy {
    /// How long after it was requested a token of this `lifetime` is served:
    /// `max(lifetime − expiry_margin, min(lifetime, expiry_margin))`, the usable life of the
    /// [module documentation](super#refresh-ahead-and-expiry). A shared store can keep a
    /// token exactly as long as sessions with this policy would take it.
    ///
    /// ```
    /// use std::time::Duration;
    /// use client_credentials::session::Policy;
    ///
    /// let policy = Policy::default(); // a 10 s margin
    /// assert_eq!(policy.usable_lifetime(Duration::from_secs(3600)), Duration::from_secs(3590));
    /// assert_eq!(policy.usable_lifetime(Duration::from_secs(15)), Duration::from_secs(10));
    /// assert_eq!(policy.usable_lifetime(Duration::from_secs(5)), Duration::from_secs(5));
    /// ```
    #[must_use]
    pub fn usable_lifetime(&self, lifetime: Duration) -> Duration {
        let margin = self.expiry_margin;
        lifetime.saturating_sub(margin).max(lifetime.min(margin))
    }
}

/// `d × f` with `f` clamped to `0.0..=1.0` (NaN as 0), without the panics of
/// `Duration::mul_f64`.
pub(crate) fn fraction(d: Duration, f: f64) -> Duration {
    let f = if f.is_nan() { 0.0 } else { f.clamp(0.0, 1.0) };
    // Float to integer `as` casts saturate; the product is at most `d`.
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss,
        reason = "a rounded fraction of a duration, bounded by the duration"
    )]
    let nanos = (d.as_nanos() as f64 * f) as u128;
    let nanos = nanos.min(d.as_nanos());
    Duration::new(
        u64::try_from(nanos / 1_000_000_000).unwrap_or(u64::MAX),
        // The remainder of a division by 10^9 fits in a u32.
        u32::try_from(nanos % 1_000_000_000).unwrap_or(0),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fraction_is_total() {
        let h = Duration::from_secs(3600);
        assert_eq!(fraction(h, 0.5), Duration::from_secs(1800));
        assert_eq!(fraction(h, 2.0), h);
        assert_eq!(fraction(h, -1.0), Duration::ZERO);
        assert_eq!(fraction(h, f64::NAN), Duration::ZERO);
        assert_eq!(fraction(h, f64::INFINITY), h);
        assert_eq!(fraction(Duration::MAX, 1.0), Duration::MAX);
        assert!(fraction(Duration::MAX, 0.5) < Duration::MAX);
    }
}
