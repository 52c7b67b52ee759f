//! The reflector's retry delays: client-go's `wait.Backoff{800ms, ×2,
//! jitter 1.0, cap 30s}` behind a reset after two minutes without a failure.
//! This module owns the delay sequence; the reflector decides when to ask.
//!
//! Delays are `d + rand[0,1)·d` for d = 0.8, 1.6, 3.2, 6.4, 12.8, 25.6 s,
//! then d = 30 s forever. The reset follows client-go up to v0.35
//! (`NewExponentialBackoffManager`): when more than `reset_after` passed
//! since the previous delay was asked for, the sequence starts over. (v0.36's
//! `DelayWithReset` resets every two minutes even while failing, which lets a
//! server that keeps failing be hit at the initial rate again; we keep the
//! older, stricter rule.)

use std::time::{Duration, Instant};

use crate::rand::Rng;

/// The parameters of a [`Backoff`].
#[derive(Clone, Debug, PartialEq)]
pub struct BackoffConfig {
    /// The first delay before jitter.
    pub initial: Duration,
    /// The multiplier between steps.
    pub factor: f64,
    /// The jitter factor: a delay `d` becomes `d + rand[0,1)·jitter·d`.
    pub jitter: f64,
    /// The largest delay before jitter.
    pub cap: Duration,
    /// Start over when no delay was asked for during this long.
    pub reset_after: Duration,
}

impl Default for BackoffConfig {
    /// client-go's reflector backoff: 800 ms, ×2, jitter 1.0, cap 30 s, reset 2 min.
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(800),
            factor: 2.0,
            jitter: 1.0,
            cap: Duration::from_secs(30),
            reset_after: Duration::from_secs(120),
        }
    }
}

/// An exponential backoff with jitter and a reset after quiet periods.
#[derive(Clone, Debug)]
pub struct Backoff {
    config: BackoffConfig,
    next: Duration,
    last_asked: Option<Instant>,
}

impl Backoff {
    /// A backoff at its first step.
    pub fn new(config: BackoffConfig) -> Self {
        Self {
            next: config.initial,
            config,
            last_asked: None,
        }
    }

    /// The next delay, asked for at `now`.
    pub fn next_delay(&mut self, now: Instant, rng: &mut Rng) -> Duration {
        if self
            .last_asked
            .is_some_and(|t| now.saturating_duration_since(t) > self.config.reset_after)
        {
            self.next = self.config.initial;
        }
        self.last_asked = Some(now);
        let base = self.next;
        self.next = base.mul_f64(self.config.factor).min(self.config.cap);
        if self.config.jitter > 0.0 {
            rng.jitter(base, self.config.jitter)
        } else {
            base
        }
    }

    /// Starts the sequence over.
    pub fn reset(&mut self) {
        self.next = self.config.initial;
        self.last_asked = None;
    }
}
