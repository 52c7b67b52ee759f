//! Rate limiters for work-queue retries (client-go's
//! `util/workqueue/default_rate_limiters.go`): how long an item waits before it
//! is handed out again after a failure. This module owns the limiters and the
//! controller default; the queue that applies them is
//! [`RateLimitingQueue`](crate::queue::RateLimitingQueue).
//!
//! | limiter | `when(item)` | `num_requeues` / `forget` |
//! |---|---|---|
//! | [`ItemExponentialFailure`] | `base · 2^n` (n before counting this failure), capped at `max`, overflow included | n / drops the item |
//! | [`ItemFastSlow`] | counts, then `fast` while the count ≤ `max_fast_attempts`, else `slow` | n / drops the item |
//! | [`BucketRateLimiter`] | the wait for one token of a shared bucket | always 0 / nothing |
//! | [`MaxOf`] | the longest of its children | the largest / every child |
//! | [`WithMaxWait`] | the child's wait, capped | the child's |
//!
//! [`default_controller_rate_limiter`] is client-go's
//! `DefaultControllerRateLimiter`: the larger of exponential 5 ms..1000 s per
//! item and a 10 qps / burst 100 bucket over all items.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

use crate::flowcontrol::TokenBucket;

/// Decides how long an item waits before it is retried.
///
/// `now` is only read by limiters that pace across items (the token bucket);
/// per-item limiters count failures.
pub trait RateLimiter<T> {
    /// Records one more failure of `item` and returns how long it must wait.
    fn when(&mut self, item: &T, now: Instant) -> Duration;
    /// Stops tracking `item` (it succeeded): its next failure starts afresh.
    fn forget(&mut self, item: &T);
    /// How many failures of `item` are being tracked.
    fn num_requeues(&self, item: &T) -> u32;
}

impl<T, R: RateLimiter<T> + ?Sized> RateLimiter<T> for Box<R> {
    fn when(&mut self, item: &T, now: Instant) -> Duration {
        (**self).when(item, now)
    }
    fn forget(&mut self, item: &T) {
        (**self).forget(item)
    }
    fn num_requeues(&self, item: &T) -> u32 {
        (**self).num_requeues(item)
    }
}

/// A boxed limiter, for composing limiters of different types.
pub type DynRateLimiter<T> = Box<dyn RateLimiter<T> + Send>;

/// client-go's `DefaultControllerRateLimiter`: the larger of
/// [`ItemExponentialFailure`] (5 ms..1000 s) and a [`BucketRateLimiter`]
/// (10 qps, burst 100).
pub fn default_controller_rate_limiter<T>() -> MaxOf<T>
where
    T: Hash + Eq + Clone + Send + 'static,
{
    MaxOf::new(vec![
        Box::new(ItemExponentialFailure::new(
            Duration::from_millis(5),
            Duration::from_secs(1000),
        )),
        Box::new(BucketRateLimiter::new(10.0, 100)),
    ])
}

/// client-go's `DefaultItemBasedRateLimiter`: exponential 1 ms..1000 s.
pub fn default_item_based_rate_limiter<T: Hash + Eq + Clone>() -> ItemExponentialFailure<T> {
    ItemExponentialFailure::new(Duration::from_millis(1), Duration::from_secs(1000))
}

/// Per-item exponential backoff: `base · 2^failures`, capped at `max`.
#[derive(Clone, Debug)]
pub struct ItemExponentialFailure<T> {
    failures: HashMap<T, u32>,
    base: Duration,
    max: Duration,
}

impl<T: Hash + Eq + Clone> ItemExponentialFailure<T> {
    /// A limiter starting at `base` and never waiting longer than `max`.
    pub fn new(base: Duration, max: Duration) -> Self {
        Self {
            failures: HashMap::new(),
            base,
            max,
        }
    }
}

impl<T: Hash + Eq + Clone> RateLimiter<T> for ItemExponentialFailure<T> {
    fn when(&mut self, item: &T, _now: Instant) -> Duration {
        let failures = self.failures.entry(item.clone()).or_insert(0);
        let exp = *failures;
        *failures = failures.saturating_add(1);
        // As client-go: compute in floating point so an overflow lands on the cap.
        let nanos = self.base.as_nanos() as f64 * 2f64.powi(exp.min(i32::MAX as u32) as i32);
        if !nanos.is_finite() || nanos >= self.max.as_nanos() as f64 {
            return self.max;
        }
        Duration::from_nanos(nanos as u64)
    }

    fn forget(&mut self, item: &T) {
        self.failures.remove(item);
    }

    fn num_requeues(&self, item: &T) -> u32 {
        self.failures.get(item).copied().unwrap_or(0)
    }
}

/// A fast wait for the first attempts of an item, a slow one after.
#[derive(Clone, Debug)]
pub struct ItemFastSlow<T> {
    failures: HashMap<T, u32>,
    fast: Duration,
    slow: Duration,
    max_fast_attempts: u32,
}

impl<T: Hash + Eq + Clone> ItemFastSlow<T> {
    /// `fast` for the first `max_fast_attempts` failures of an item, `slow` after.
    pub fn new(fast: Duration, slow: Duration, max_fast_attempts: u32) -> Self {
        Self {
            failures: HashMap::new(),
            fast,
            slow,
            max_fast_attempts,
        }
    }
}

impl<T: Hash + Eq + Clone> RateLimiter<T> for ItemFastSlow<T> {
    fn when(&mut self, item: &T, _now: Instant) -> Duration {
        let failures = self.failures.entry(item.clone()).or_insert(0);
        *failures = failures.saturating_add(1);
        if *failures <= self.max_fast_attempts {
            self.fast
        } else {
            self.slow
        }
    }

    fn forget(&mut self, item: &T) {
        self.failures.remove(item);
    }

    fn num_requeues(&self, item: &T) -> u32 {
        self.failures.get(item).copied().unwrap_or(0)
    }
}

/// One token bucket shared by all items: bounds the overall retry rate.
#[derive(Clone, Debug)]
pub struct BucketRateLimiter {
    bucket: TokenBucket,
}

impl BucketRateLimiter {
    /// A bucket of `burst` tokens refilling at `qps` a second.
    pub fn new(qps: f64, burst: u32) -> Self {
        Self {
            bucket: TokenBucket::new(qps, burst),
        }
    }
}

impl<T> RateLimiter<T> for BucketRateLimiter {
    fn when(&mut self, _item: &T, now: Instant) -> Duration {
        self.bucket.reserve(now)
    }

    fn forget(&mut self, _item: &T) {}

    fn num_requeues(&self, _item: &T) -> u32 {
        0
    }
}

/// The longest wait of several limiters.
pub struct MaxOf<T> {
    limiters: Vec<DynRateLimiter<T>>,
}

impl<T> MaxOf<T> {
    /// Combines `limiters`; every one of them counts every failure.
    pub fn new(limiters: Vec<DynRateLimiter<T>>) -> Self {
        Self { limiters }
    }
}

impl<T> std::fmt::Debug for MaxOf<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MaxOf")
            .field("limiters", &self.limiters.len())
            .finish()
    }
}

impl<T> RateLimiter<T> for MaxOf<T> {
    fn when(&mut self, item: &T, now: Instant) -> Duration {
        // Every child sees the failure, even once the maximum is known.
        self.limiters
            .iter_mut()
            .map(|limiter| limiter.when(item, now))
            .fold(Duration::ZERO, Duration::max)
    }

    fn forget(&mut self, item: &T) {
        for limiter in &mut self.limiters {
            limiter.forget(item);
        }
    }

    fn num_requeues(&self, item: &T) -> u32 {
        self.limiters
            .iter()
            .map(|limiter| limiter.num_requeues(item))
            .max()
            .unwrap_or(0)
    }
}

/// Caps another limiter's wait.
#[derive(Clone, Debug)]
pub struct WithMaxWait<R> {
    limiter: R,
    max_wait: Duration,
}

impl<R> WithMaxWait<R> {
    /// `limiter`, never waiting longer than `max_wait`.
    pub fn new(limiter: R, max_wait: Duration) -> Self {
        Self { limiter, max_wait }
    }
}

impl<T, R: RateLimiter<T>> RateLimiter<T> for WithMaxWait<R> {
    fn when(&mut self, item: &T, now: Instant) -> Duration {
        self.limiter.when(item, now).min(self.max_wait)
    }

    fn forget(&mut self, item: &T) {
        self.limiter.forget(item)
    }

    fn num_requeues(&self, item: &T) -> u32 {
        self.limiter.num_requeues(item)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    // client-go TestItemExponentialFailureRateLimiter
    #[test]
    fn limiter_exponential_doubles_per_item_and_forget_resets() {
        let now = Instant::now();
        let mut limiter = ItemExponentialFailure::new(ms(1), Duration::from_secs(1));
        let one: Vec<_> = (0..5).map(|_| limiter.when(&"one", now)).collect();
        assert_eq!(one, [ms(1), ms(2), ms(4), ms(8), ms(16)]);
        assert_eq!(limiter.num_requeues(&"one"), 5);
        assert_eq!(limiter.when(&"two", now), ms(1));
        assert_eq!(limiter.when(&"two", now), ms(2));
        assert_eq!(limiter.num_requeues(&"two"), 2);
        limiter.forget(&"one");
        assert_eq!(limiter.num_requeues(&"one"), 0);
        assert_eq!(limiter.when(&"one", now), ms(1));
    }

    // client-go TestItemExponentialFailureRateLimiterOverFlow
    #[test]
    fn limiter_exponential_overflow_is_capped() {
        let now = Instant::now();
        let mut limiter = ItemExponentialFailure::new(ms(1), Duration::from_secs(1000));
        for _ in 0..5 {
            limiter.when(&"one", now);
        }
        assert_eq!(limiter.when(&"one", now), ms(32));
        for _ in 0..1000 {
            limiter.when(&"overflow1", now);
        }
        assert_eq!(limiter.when(&"overflow1", now), Duration::from_secs(1000));

        let minute = Duration::from_secs(60);
        let mut limiter = ItemExponentialFailure::new(minute, Duration::from_secs(1000 * 3600));
        for _ in 0..2 {
            limiter.when(&"two", now);
        }
        assert_eq!(limiter.when(&"two", now), 4 * minute);
        for _ in 0..1000 {
            limiter.when(&"overflow2", now);
        }
        assert_eq!(
            limiter.when(&"overflow2", now),
            Duration::from_secs(1000 * 3600)
        );
    }

    #[test]
    fn limiter_exponential_survives_counts_past_u32() {
        let now = Instant::now();
        let mut limiter = ItemExponentialFailure::new(ms(5), Duration::from_secs(1000));
        limiter.failures.insert("x", u32::MAX - 1);
        assert_eq!(limiter.when(&"x", now), Duration::from_secs(1000));
        assert_eq!(limiter.when(&"x", now), Duration::from_secs(1000));
        assert_eq!(limiter.num_requeues(&"x"), u32::MAX);
    }

    // client-go TestItemFastSlowRateLimiter
    #[test]
    fn limiter_fast_slow_switches_after_max_fast_attempts() {
        let now = Instant::now();
        let slow = Duration::from_secs(10);
        let mut limiter = ItemFastSlow::new(ms(5), slow, 3);
        let one: Vec<_> = (0..5).map(|_| limiter.when(&"one", now)).collect();
        assert_eq!(one, [ms(5), ms(5), ms(5), slow, slow]);
        assert_eq!(limiter.num_requeues(&"one"), 5);
        assert_eq!(limiter.when(&"two", now), ms(5));
        assert_eq!(limiter.when(&"two", now), ms(5));
        assert_eq!(limiter.num_requeues(&"two"), 2);
        limiter.forget(&"one");
        assert_eq!(limiter.num_requeues(&"one"), 0);
        assert_eq!(limiter.when(&"one", now), ms(5));
    }

    // client-go TestMaxOfRateLimiter
    #[test]
    fn limiter_max_of_takes_the_longest_and_forgets_everywhere() {
        let now = Instant::now();
        let slow = Duration::from_secs(3);
        let mut limiter: MaxOf<&str> = MaxOf::new(vec![
            Box::new(ItemFastSlow::new(ms(5), slow, 3)),
            Box::new(ItemExponentialFailure::new(ms(1), Duration::from_secs(1))),
        ]);
        let one: Vec<_> = (0..5).map(|_| limiter.when(&"one", now)).collect();
        assert_eq!(one, [ms(5), ms(5), ms(5), slow, slow]);
        assert_eq!(limiter.num_requeues(&"one"), 5);
        assert_eq!(limiter.when(&"two", now), ms(5));
        assert_eq!(limiter.when(&"two", now), ms(5));
        assert_eq!(limiter.num_requeues(&"two"), 2);
        limiter.forget(&"one");
        assert_eq!(limiter.num_requeues(&"one"), 0);
        assert_eq!(limiter.when(&"one", now), ms(5));
    }

    /// client-go's `stepRateLimiter` from its WithMaxWait test: a fixed wait
    /// for the first `steps` calls, another after.
    struct Step {
        calls: u32,
        steps: u32,
        first: Duration,
        then: Duration,
    }

    impl RateLimiter<&'static str> for Step {
        fn when(&mut self, _: &&'static str, _: Instant) -> Duration {
            self.calls += 1;
            if self.calls <= self.steps {
                self.first
            } else {
                self.then
            }
        }
        fn forget(&mut self, _: &&'static str) {}
        fn num_requeues(&self, _: &&'static str) -> u32 {
            0
        }
    }

    // client-go TestWithMaxWaitRateLimiter
    #[test]
    fn limiter_with_max_wait_caps_the_child() {
        let now = Instant::now();
        let step = Step {
            calls: 0,
            steps: 100,
            first: ms(5),
            then: Duration::from_secs(1000),
        };
        let mut limiter = WithMaxWait::new(step, Duration::from_secs(500));
        for _ in 0..100 {
            assert_eq!(limiter.when(&"one", now), ms(5));
        }
        assert_eq!(limiter.when(&"one", now), Duration::from_secs(500));
        assert_eq!(limiter.when(&"one", now), Duration::from_secs(500));
    }

    #[test]
    fn limiter_bucket_is_shared_by_all_items_and_counts_no_requeues() {
        let now = Instant::now();
        let mut limiter = BucketRateLimiter::new(10.0, 2);
        assert_eq!(RateLimiter::<&str>::when(&mut limiter, &"a", now), ms(0));
        assert_eq!(RateLimiter::<&str>::when(&mut limiter, &"b", now), ms(0));
        assert_eq!(RateLimiter::<&str>::when(&mut limiter, &"c", now), ms(100));
        assert_eq!(RateLimiter::<&str>::when(&mut limiter, &"a", now), ms(200));
        assert_eq!(RateLimiter::<&str>::num_requeues(&limiter, &"a"), 0);
    }

    #[test]
    fn limiter_controller_default_is_exponential_until_the_bucket_runs_dry() {
        let now = Instant::now();
        let mut limiter = default_controller_rate_limiter::<u32>();
        let waits: Vec<_> = (0..4).map(|_| limiter.when(&7, now)).collect();
        assert_eq!(waits, [ms(5), ms(10), ms(20), ms(40)]);
        assert_eq!(limiter.num_requeues(&7), 4);
        // 96 more distinct items drain the 100-token burst; the next waits 1/10 s.
        for item in 100..196 {
            assert_eq!(limiter.when(&item, now), ms(5));
        }
        assert_eq!(limiter.when(&1000, now), ms(100));
        // Exponential reaches 1000 s and stays there.
        for _ in 0..40 {
            limiter.when(&7, now);
        }
        assert_eq!(limiter.when(&7, now), Duration::from_secs(1000));
        limiter.forget(&7);
        assert_eq!(limiter.num_requeues(&7), 0);
    }
}
