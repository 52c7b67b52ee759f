//! The core's only source of randomness: a small seedable generator
//! (SplitMix64) owned by each machine that needs jitter and seeded by its
//! driver. The same seed gives the same schedule, so a simulation replays
//! exactly.

use std::time::Duration;

/// A deterministic pseudo-random generator (SplitMix64). Not for secrets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rng {
    state: u64,
}

impl Rng {
    /// A generator from a seed; the same seed yields the same sequence.
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A float uniformly drawn from `[0, 1)`.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// An integer uniformly drawn from `[0, bound)`; 0 when `bound` is 0.
    pub fn below(&mut self, bound: u64) -> u64 {
        if bound == 0 {
            return 0;
        }
        // Lemire's multiply-shift; the bias is below 2^-64 · bound, negligible here.
        ((u128::from(self.next_u64()) * u128::from(bound)) >> 64) as u64
    }

    /// client-go's `wait.Jitter`: `d + rand[0,1) · factor · d`
    /// (`factor <= 0` is taken as 1.0, as client-go does).
    pub fn jitter(&mut self, d: Duration, factor: f64) -> Duration {
        let factor = if factor <= 0.0 { 1.0 } else { factor };
        d + d.mul_f64(self.next_f64() * factor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rng_same_seed_same_sequence_and_bounds_hold() {
        let mut a = Rng::new(7);
        let mut b = Rng::new(7);
        for _ in 0..1000 {
            assert_eq!(a.next_u64(), b.next_u64());
            let f = a.next_f64();
            assert!((0.0..1.0).contains(&f));
            b.next_f64();
            assert!(a.below(10) < 10);
            b.below(10);
        }
        let d = Duration::from_millis(800);
        let j = a.jitter(d, 1.0);
        assert!(j >= d && j < 2 * d);
    }
}
