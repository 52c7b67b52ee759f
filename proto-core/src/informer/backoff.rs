//! The reflector's retry delays: client-go's `wait.Backoff{800ms, ×2,
//! jitter 1.0, cap 30s}` behind a reset after two minutes without a failure.
//! This module owns the delay sequence; the reflector decides when to ask.
//!
//! Delays are `d + rand[0,1)·d` for d = 0.8, 1.6, 3.2, 6.4, 12.8, 25.6 s,
//! then d = 30 s forever. The sequence starts over only after `reset_after`
//! of health: the caller marks the moment things started working (the
//! reflector: a watch answered 200), and a delay asked for at least
//! `reset_after` later begins again at the initial step. Time spent failing
//! — a slow list that times out, a long backoff — never counts, so a server
//! that keeps failing is never hit at the initial rate again. (client-go up
//! to v0.35 reset after two minutes without a delay being asked, which a
//! slow failing attempt can satisfy; v0.36's `DelayWithReset` resets every
//! two minutes even while failing.)

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
    /// Start over after this long of health.
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

/// An exponential backoff with jitter and a reset after a healthy period.
#[derive(Clone, Debug)]
pub struct Backoff {
    config: BackoffConfig,
    next: Duration,
    healthy_since: Option<Instant>,
}

impl Backoff {
    /// A backoff at its first step.
    pub fn new(config: BackoffConfig) -> Self {
        Self {
            next: config.initial,
            config,
            healthy_since: None,
        }
    }

    /// Things work as of `now` (kept if already healthy).
    pub fn mark_healthy(&mut self, now: Instant) {
        self.healthy_since.get_or_insert(now);
    }

    /// The next delay, asked for at `now`: a failure, which ends any health.
    pub fn next_delay(&mut self, now: Instant, rng: &mut Rng) -> Duration {
        if self
            .healthy_since
            .take()
            .is_some_and(|t| now.saturating_duration_since(t) >= self.config.reset_after)
        {
            self.next = self.config.initial;
        }
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
        self.healthy_since = None;
    }
}
