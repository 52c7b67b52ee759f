//! [`RateLimitingQueue`]: a delaying queue that delays failed items by what a
//! rate limiter says.

use std::hash::Hash;
use std::time::{Duration, Instant};

use super::{DelayingQueue, Fifo, ItemQueue, Next, WorkQueue};
use crate::ratelimit::{MaxOf, RateLimiter, default_controller_rate_limiter};

/// A [`DelayingQueue`] with a [`RateLimiter`] (client-go's
/// `TypedRateLimitingInterface`): [`add_rate_limited`](Self::add_rate_limited)
/// is `add_after(item, limiter.when(item))`; [`forget`](Self::forget) and
/// [`num_requeues`](Self::num_requeues) go to the limiter.
#[derive(Clone, Debug)]
pub struct RateLimitingQueue<T, R, Q = Fifo<T>> {
    queue: DelayingQueue<T, Q>,
    limiter: R,
}

impl<T> Default for RateLimitingQueue<T, MaxOf<T>>
where
    T: Hash + Eq + Clone + Send + 'static,
{
    /// A queue with [`default_controller_rate_limiter`].
    fn default() -> Self {
        Self::new(default_controller_rate_limiter())
    }
}

impl<T: Hash + Eq + Clone, R: RateLimiter<T>> RateLimitingQueue<T, R> {
    /// An empty FIFO queue delaying failures with `limiter`.
    pub fn new(limiter: R) -> Self {
        Self::with_queue(DelayingQueue::new(), limiter)
    }
}

impl<T: Hash + Eq + Clone, R: RateLimiter<T>, Q: ItemQueue<T>> RateLimitingQueue<T, R, Q> {
    /// A rate-limiting queue over `queue`.
    pub fn with_queue(queue: DelayingQueue<T, Q>, limiter: R) -> Self {
        Self { queue, limiter }
    }

    // --- getters

    /// The work queue under the delays.
    pub fn queue(&self) -> &WorkQueue<T, Q> {
        self.queue.queue()
    }

    /// The rate limiter.
    pub fn limiter(&self) -> &R {
        &self.limiter
    }

    /// How many items are ready to be handed out.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Whether no item is ready to be handed out.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// How many items are waiting for their ready time.
    pub fn waiting_len(&self) -> usize {
        self.queue.waiting_len()
    }

    /// How many failures of `item` the limiter is tracking.
    pub fn num_requeues(&self, item: &T) -> u32 {
        self.limiter.num_requeues(item)
    }

    /// See [`WorkQueue::is_shutting_down`].
    pub fn is_shutting_down(&self) -> bool {
        self.queue.is_shutting_down()
    }

    /// See [`WorkQueue::is_drained`].
    pub fn is_drained(&self) -> bool {
        self.queue.is_drained()
    }

    // --- inputs

    /// See [`WorkQueue::add`].
    pub fn add(&mut self, item: T) {
        self.queue.add(item);
    }

    /// See [`DelayingQueue::add_after`].
    pub fn add_after(&mut self, item: T, delay: Duration, now: Instant) {
        self.queue.add_after(item, delay, now);
    }

    /// Adds `item` after the wait the limiter gives it (counting one more
    /// failure). Returns that wait.
    pub fn add_rate_limited(&mut self, item: T, now: Instant) -> Duration {
        let delay = self.limiter.when(&item, now);
        self.queue.add_after(item, delay, now);
        delay
    }

    /// Tells the limiter `item` succeeded: its failures are forgotten. It does
    /// not remove the item from the queue.
    pub fn forget(&mut self, item: &T) {
        self.limiter.forget(item);
    }

    /// See [`DelayingQueue::handle_timeout`].
    pub fn handle_timeout(&mut self, now: Instant) {
        self.queue.handle_timeout(now);
    }

    /// See [`WorkQueue::get`].
    pub fn get(&mut self) -> Next<T> {
        self.queue.get()
    }

    /// See [`WorkQueue::done`].
    pub fn done(&mut self, item: &T) {
        self.queue.done(item);
    }

    /// See [`DelayingQueue::shut_down`].
    pub fn shut_down(&mut self) {
        self.queue.shut_down();
    }

    /// See [`DelayingQueue::shut_down_with_drain`].
    pub fn shut_down_with_drain(&mut self) {
        self.queue.shut_down_with_drain();
    }

    // --- outputs

    /// See [`DelayingQueue::poll_timeout`].
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.queue.poll_timeout()
    }
}
