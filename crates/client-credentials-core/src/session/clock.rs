//! Mapping the monotonic clock that drives a session to the wall clock that tokens carry.

use std::time::{Duration, Instant, SystemTime};

/// An anchor that maps monotonic [`Instant`]s to wall-clock [`SystemTime`]s.
///
/// A session schedules with `Instant`s (immune to clock steps), but a [`crate::Token`] carries
/// an absolute `issued_at` so that it can be stored and shared between processes. The driver
/// reads both clocks once, at start-up, and the session converts with this fixed offset; it
/// never reads a clock itself.
///
/// ```
/// use std::time::{Duration, Instant, SystemTime};
/// use client_credentials::session::WallClock;
///
/// let (instant, system) = (Instant::now(), SystemTime::now());
/// let clock = WallClock::new(instant, system);
/// assert_eq!(clock.at(instant + Duration::from_secs(5)), system + Duration::from_secs(5));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WallClock {
    instant: Instant,
    system: SystemTime,
}

impl WallClock {
    /// An anchor: `instant` and `system` were read at (about) the same moment.
    #[must_use]
    pub fn new(instant: Instant, system: SystemTime) -> Self {
        Self { instant, system }
    }

    /// The wall-clock time at `instant`. Out of the range `SystemTime` can represent (which
    /// no real clock reaches), the anchor's wall time is returned rather than panicking.
    #[must_use]
    pub fn at(&self, instant: Instant) -> SystemTime {
        let mapped = if instant >= self.instant {
            self.system
                .checked_add(instant.saturating_duration_since(self.instant))
        } else {
            self.system
                .checked_sub(self.instant.saturating_duration_since(instant))
        };
        mapped.unwrap_or(self.system)
    }

    /// How long before `now` the wall-clock time `then` was; zero if it lies ahead (another
    /// process's clock may run slightly ahead of ours).
    pub(crate) fn elapsed_since(&self, now: Instant, then: SystemTime) -> Duration {
        self.at(now).duration_since(then).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::disallowed_methods, reason = "a test needs one real anchor")]
    fn round_trips_and_never_panics() {
        let (i, s) = (Instant::now(), SystemTime::now());
        let c = WallClock::new(i, s);
        let d = Duration::from_secs(3600);
        assert_eq!(c.at(i + d), s + d);
        if let Some(earlier) = i.checked_sub(Duration::from_secs(1)) {
            assert_eq!(c.at(earlier), s - Duration::from_secs(1));
        }
        // Extreme wall times map to something, never a panic.
        for secs in [u64::MAX / 4, u64::MAX / 2, 1 << 40] {
            let far = Duration::from_secs(secs);
            for t in [s.checked_add(far), s.checked_sub(far)]
                .into_iter()
                .flatten()
            {
                let _ = c.elapsed_since(i, t);
            }
            for t in [i.checked_add(far), i.checked_sub(far)]
                .into_iter()
                .flatten()
            {
                let _ = c.at(t);
            }
        }
        assert_eq!(c.elapsed_since(i, s + d), Duration::ZERO);
        assert_eq!(c.elapsed_since(i + d, s), d);
    }
}
