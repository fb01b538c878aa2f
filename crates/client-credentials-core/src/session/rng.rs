//! A tiny deterministic PRNG (SplitMix64) for jitter. The core takes randomness as an input
//! seed; it never reads an RNG or the OS.

use std::time::Duration;

/// SplitMix64 (Steele, Lea, Flood 2014): one `u64` of state, full period, good enough to
/// spread refreshes and retries, and trivially seeded. Not for anything cryptographic.
#[derive(Clone, Debug)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.0)
    }

    /// Two draws: 128 bits.
    pub(crate) fn next_u128(&mut self) -> u128 {
        (u128::from(self.next_u64()) << 64) | u128::from(self.next_u64())
    }

    /// Uniform in `0..=max`.
    pub(crate) fn up_to(&mut self, max: u64) -> u64 {
        let x = self.next_u64();
        if max == u64::MAX {
            return x;
        }
        // Lemire's multiply-shift: unbiased enough for jitter, no division, no loop.
        let product = u128::from(x) * (u128::from(max) + 1);
        u64::try_from(product >> 64).unwrap_or(max)
    }

    /// Uniform in `0..=max`, at nanosecond resolution (durations beyond ~584 years are
    /// treated as that).
    pub(crate) fn duration_up_to(&mut self, max: Duration) -> Duration {
        let nanos = u64::try_from(max.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(self.up_to(nanos))
    }
}

/// The SplitMix64 finaliser: a bijective mix of 64 bits.
pub(crate) fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// FNV-1a over bytes: a stable (release-independent) hash to derive per-key seeds.
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xCBF2_9CE4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01B3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_bounded() {
        let mut a = Rng::new(7);
        let mut b = Rng::new(7);
        for _ in 0..1000 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
        let mut r = Rng::new(1);
        let mut seen_low = false;
        let mut seen_high = false;
        for _ in 0..10_000 {
            let x = r.up_to(9);
            assert!(x <= 9);
            seen_low |= x == 0;
            seen_high |= x == 9;
        }
        assert!(
            seen_low && seen_high,
            "both ends of the range are reachable"
        );
        assert_eq!(r.up_to(0), 0);
        let _ = r.up_to(u64::MAX);
        assert!(r.duration_up_to(Duration::MAX) <= Duration::from_nanos(u64::MAX));
        assert_eq!(r.duration_up_to(Duration::ZERO), Duration::ZERO);
    }

    #[test]
    fn different_seeds_differ() {
        assert_ne!(Rng::new(1).next_u64(), Rng::new(2).next_u64());
        assert_ne!(fnv1a(b"a"), fnv1a(b"b"));
    }
}
