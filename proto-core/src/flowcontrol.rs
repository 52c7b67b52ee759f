//! Client-side flow control: the token bucket that paces requests to the API
//! server (client-go's `flowcontrol.NewTokenBucketRateLimiter`, QPS 5 and
//! burst 10 by default). This module decides *when* a request may go; it never
//! sleeps. The adapter asks [`RequestLimiter::reserve`] before each request
//! (and again before each retry) and waits until the instant it returns.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use windlass_proto::flowcontrol::RequestLimiter;
//!
//! let mut limiter = RequestLimiter::default(); // 5 qps, burst 10
//! let now = Instant::now();
//! for _ in 0..10 {
//!     assert_eq!(limiter.reserve(now), now); // the burst goes at once
//! }
//! assert_eq!(limiter.reserve(now), now + Duration::from_millis(200)); // then 1/5 s apart
//! ```
//!
//! The same [`TokenBucket`] backs the work queue's
//! [`BucketRateLimiter`](crate::ratelimit::BucketRateLimiter).

use std::time::{Duration, Instant};

/// client-go's `DefaultQPS`.
pub const DEFAULT_QPS: f64 = 5.0;
/// client-go's `DefaultBurst`.
pub const DEFAULT_BURST: u32 = 10;

/// Waits longer than this are worth a debug log (client-go logs them).
const LOG_WAIT: Duration = Duration::from_millis(50);
/// Waits longer than this are worth a louder log.
const WARN_WAIT: Duration = Duration::from_secs(1);

/// A token bucket with Go's `golang.org/x/time/rate` semantics: it starts
/// full, refills at `rate` tokens a second up to `burst`, and a reservation
/// always succeeds — when the bucket is empty it goes into debt and the caller
/// waits until the debt would be repaid.
#[derive(Clone, Debug)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Option<Instant>,
}

impl TokenBucket {
    /// A full bucket refilling at `rate` tokens a second, holding at most
    /// `burst`. A rate of 0 or less never refills: once the burst is spent,
    /// [`reserve`](Self::reserve) returns [`Duration::MAX`].
    pub fn new(rate: f64, burst: u32) -> Self {
        Self {
            rate,
            burst: f64::from(burst),
            tokens: f64::from(burst),
            last: None,
        }
    }

    /// The refill rate in tokens a second.
    pub fn rate(&self) -> f64 {
        self.rate
    }

    /// The bucket's capacity.
    pub fn burst(&self) -> u32 {
        self.burst as u32
    }

    /// Takes one token at `now` and returns how long the caller must wait
    /// before acting on it (zero when a token was available).
    pub fn reserve(&mut self, now: Instant) -> Duration {
        self.refill(now);
        self.tokens -= 1.0;
        if self.tokens >= 0.0 {
            return Duration::ZERO;
        }
        if self.rate <= 0.0 {
            // Go's limiter refuses such a reservation; the waiting time is unbounded.
            self.tokens += 1.0;
            return Duration::MAX;
        }
        Duration::try_from_secs_f64(-self.tokens / self.rate).unwrap_or(Duration::MAX)
    }

    /// Takes one token at `now` only if one is available without waiting.
    pub fn try_take(&mut self, now: Instant) -> bool {
        self.refill(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    fn refill(&mut self, now: Instant) {
        if let Some(last) = self.last {
            // A clock that goes backwards (it cannot with `Instant`, but a
            // driver may pass an older value) refills nothing.
            let elapsed = now.saturating_duration_since(last).as_secs_f64();
            self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
            if now < last {
                return;
            }
        }
        self.last = Some(now);
    }
}

/// QPS and burst of a client (client-go's `rest.Config.QPS` and `Burst`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FlowControl {
    /// Requests a second; 0 means [`DEFAULT_QPS`], below 0 turns the limiter off.
    pub qps: f64,
    /// Requests that may go at once; 0 means [`DEFAULT_BURST`].
    pub burst: u32,
}

impl Default for FlowControl {
    fn default() -> Self {
        Self {
            qps: DEFAULT_QPS,
            burst: DEFAULT_BURST,
        }
    }
}

/// Paces a client's requests (client-go's throttle): a [`TokenBucket`], or
/// nothing when turned off.
#[derive(Clone, Debug)]
pub struct RequestLimiter {
    bucket: Option<TokenBucket>,
}

impl Default for RequestLimiter {
    fn default() -> Self {
        Self::new(FlowControl::default())
    }
}

impl RequestLimiter {
    /// A limiter for `config`, replacing zero values with client-go's defaults
    /// (as `rest.RESTClientFor` does); a negative QPS turns it off.
    pub fn new(config: FlowControl) -> Self {
        if config.qps < 0.0 {
            return Self::disabled();
        }
        let qps = if config.qps == 0.0 {
            DEFAULT_QPS
        } else {
            config.qps
        };
        let burst = if config.burst == 0 {
            DEFAULT_BURST
        } else {
            config.burst
        };
        Self {
            bucket: Some(TokenBucket::new(qps, burst)),
        }
    }

    /// A limiter that lets every request go at once.
    pub fn disabled() -> Self {
        Self { bucket: None }
    }

    /// Whether the limiter paces anything.
    pub fn is_enabled(&self) -> bool {
        self.bucket.is_some()
    }

    /// Reserves a slot for one request at `now` and returns the instant it may
    /// be sent (`now` when it may go at once). The slot is taken: the caller
    /// must send at that instant, not ask again.
    pub fn reserve(&mut self, now: Instant) -> Instant {
        let Some(bucket) = &mut self.bucket else {
            return now;
        };
        let wait = bucket.reserve(now);
        if wait > WARN_WAIT {
            tracing::info!(?wait, "client-side throttling: waiting to send a request");
        } else if wait > LOG_WAIT {
            tracing::debug!(?wait, "client-side throttling: waiting to send a request");
        }
        // A wait too long to name (a bucket that never refills) is a century.
        now.checked_add(wait)
            .or_else(|| now.checked_add(Duration::from_secs(100 * 365 * 24 * 3600)))
            .unwrap_or(now)
    }

    /// Takes a slot only if a request may go at once (client-go's `TryAccept`).
    pub fn try_accept(&mut self, now: Instant) -> bool {
        match &mut self.bucket {
            None => true,
            Some(bucket) => bucket.try_take(now),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limiter_defaults_are_five_qps_burst_ten() {
        let now = Instant::now();
        let mut limiter = RequestLimiter::new(FlowControl { qps: 0.0, burst: 0 });
        let sends: Vec<_> = (0..12).map(|_| limiter.reserve(now) - now).collect();
        assert_eq!(&sends[..10], &[Duration::ZERO; 10]);
        assert_eq!(sends[10], Duration::from_millis(200));
        assert_eq!(sends[11], Duration::from_millis(400));
    }

    #[test]
    fn limiter_refills_at_qps_and_caps_at_burst() {
        let t0 = Instant::now();
        let mut limiter = RequestLimiter::new(FlowControl {
            qps: 10.0,
            burst: 2,
        });
        assert!(limiter.try_accept(t0));
        assert!(limiter.try_accept(t0));
        assert!(!limiter.try_accept(t0));
        assert!(!limiter.try_accept(t0 + Duration::from_millis(50)));
        assert!(limiter.try_accept(t0 + Duration::from_millis(100)));
        // An hour idle refills only up to the burst.
        let later = t0 + Duration::from_secs(3600);
        assert_eq!(limiter.reserve(later), later);
        assert_eq!(limiter.reserve(later), later);
        assert_eq!(limiter.reserve(later), later + Duration::from_millis(100));
    }

    #[test]
    fn limiter_negative_qps_is_off() {
        let now = Instant::now();
        let mut limiter = RequestLimiter::new(FlowControl {
            qps: -1.0,
            burst: 1,
        });
        assert!(!limiter.is_enabled());
        for _ in 0..1000 {
            assert_eq!(limiter.reserve(now), now);
            assert!(limiter.try_accept(now));
        }
    }

    #[test]
    fn limiter_token_bucket_with_zero_rate_never_refills() {
        let now = Instant::now();
        let mut bucket = TokenBucket::new(0.0, 1);
        assert_eq!(bucket.reserve(now), Duration::ZERO);
        assert_eq!(bucket.reserve(now + Duration::from_secs(60)), Duration::MAX);
        let mut limiter = RequestLimiter {
            bucket: Some(TokenBucket::new(0.0, 1)),
        };
        assert_eq!(limiter.reserve(now), now);
        assert!(limiter.reserve(now) > now + Duration::from_secs(3600 * 24 * 365));
    }
}
