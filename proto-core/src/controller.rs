//! Controller bookkeeping shared by every runtime: which key to reconcile
//! next, what to do with it afterwards, and the counters an adapter exports.
//! This module owns the decisions around a reconcile (client-go's
//! `processNextWorkItem` pattern and controller-runtime's result handling);
//! it does not run reconcilers, watch anything or sleep.
//!
//! At most one reconcile per key runs at a time (the [work queue](crate::queue)
//! guarantees it: a key added while it is being reconciled waits until
//! [`Controller::finish`]). After a reconcile:
//!
//! | [`Outcome`] | what happens to the key |
//! |---|---|
//! | `Success` | `forget` (its failure count resets) |
//! | `RequeueAfter(d)` | `forget`, then `add_after(d)` |
//! | `Requeue` | `add_rate_limited` (counts as a retry) |
//! | `Error` | `add_rate_limited` (counts as a retry) |
//!
//! The driving loop of a worker:
//!
//! ```
//! use std::time::{Duration, Instant};
//! use windlass_proto::controller::{Controller, Outcome};
//! use windlass_proto::queue::Next;
//!
//! let mut controller = Controller::default();
//! let mut now = Instant::now();
//! controller.enqueue("default/web");
//! let mut attempts = 0;
//! loop {
//!     match controller.next(now) {
//!         Next::Item(key) => {
//!             attempts += 1;                       // reconcile `key` …
//!             let outcome = if attempts < 3 { Outcome::Error } else { Outcome::Success };
//!             now += Duration::from_millis(1);     // … which takes a while
//!             controller.finish(&key, outcome, now);
//!         }
//!         Next::Wait => match controller.poll_timeout() {
//!             Some(wake) => now = wake,            // sleep until `wake` or an enqueue
//!             None => controller.shut_down(),      // (a real worker waits for an enqueue)
//!         },
//!         Next::ShutDown => break,
//!     }
//! }
//! let counters = controller.counters(now);
//! assert_eq!((counters.adds, counters.retries, counters.reconciles), (3, 2, 3));
//! ```

use std::collections::HashMap;
use std::fmt::Display;
use std::hash::Hash;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::object::ObjectKey;
use crate::queue::{Next, RateLimitingQueue};
use crate::ratelimit::{DynRateLimiter, MaxOf, RateLimiter, default_controller_rate_limiter};

/// How long a controller runner waits for its informer's initial list by default.
pub const DEFAULT_SYNC_TIMEOUT: Duration = Duration::from_secs(300);
/// How long a waiting worker sleeps when no delayed key is due: it is woken
/// by an enqueue, a finished reconcile or a shutdown long before.
pub const IDLE_WAIT: Duration = Duration::from_secs(3600);

/// How a reconcile ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Done; nothing more to do until the key is enqueued again.
    Success,
    /// Done; look again after this long (a periodic check, not a failure).
    RequeueAfter(Duration),
    /// Not done; try again after the rate limiter's wait.
    Requeue,
    /// Failed; try again after the rate limiter's wait.
    Error,
}

impl Outcome {
    /// What a reconcile's result comes to: `Ok(outcome)` as it is; an error
    /// (logged as a warning) or a panic (logged as an error) is
    /// [`Outcome::Error`]. The outcome is recorded in `span`'s `outcome`
    /// field (see [`reconcile_span`]).
    pub fn of_reconcile<E: Display>(
        result: std::thread::Result<Result<Outcome, E>>,
        span: &tracing::Span,
    ) -> Outcome {
        let outcome = match result {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(error)) => {
                tracing::warn!(parent: span, %error, "reconcile failed");
                Outcome::Error
            }
            Err(_) => {
                tracing::error!(parent: span, "reconcile panicked");
                Outcome::Error
            }
        };
        span.record("outcome", tracing::field::debug(outcome));
        outcome
    }
}

/// The span a runner runs one reconcile in: `reconcile` with the key, the
/// attempt (1 for a first try) and, once known, the outcome.
pub fn reconcile_span(key: &ObjectKey, attempt: u32) -> tracing::Span {
    tracing::info_span!("reconcile", key = %key, attempt, outcome = tracing::field::Empty)
}

/// Counters for an adapter to export, as plain numbers (client-go's
/// workqueue metrics).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Keys waiting to be reconciled (ready now).
    pub depth: usize,
    /// Keys waiting for a ready time (requeued after a delay or a failure).
    pub waiting: usize,
    /// Enqueues that marked a key as needing a reconcile.
    pub adds: u64,
    /// Rate-limited requeues (failures and `Requeue`).
    pub retries: u64,
    /// Reconciles finished.
    pub reconciles: u64,
    /// Reconciles running now.
    pub running: usize,
    /// Time spent in finished reconciles, summed.
    pub work_duration_total: Duration,
    /// The longest finished reconcile.
    pub work_duration_max: Duration,
    /// How long the oldest running reconcile has been running.
    pub longest_running: Duration,
}

/// The queue and the bookkeeping of one controller's workers.
#[derive(Debug)]
pub struct Controller<T, R = MaxOf<T>> {
    queue: RateLimitingQueue<T, R>,
    running: HashMap<T, Instant>,
    retries: u64,
    reconciles: u64,
    work_duration_total: Duration,
    work_duration_max: Duration,
}

impl<T> Default for Controller<T>
where
    T: Hash + Eq + Clone + Send + 'static,
{
    /// A controller with client-go's default controller rate limiter.
    fn default() -> Self {
        Self::new(default_controller_rate_limiter())
    }
}

impl<T: Hash + Eq + Clone, R: RateLimiter<T>> Controller<T, R> {
    /// A controller whose failed keys wait as `limiter` says.
    pub fn new(limiter: R) -> Self {
        Self {
            queue: RateLimitingQueue::new(limiter),
            running: HashMap::new(),
            retries: 0,
            reconciles: 0,
            work_duration_total: Duration::ZERO,
            work_duration_max: Duration::ZERO,
        }
    }

    // --- getters

    /// The counters at `now`.
    pub fn counters(&self, now: Instant) -> Counters {
        let oldest = self.running.values().min();
        Counters {
            depth: self.queue.len(),
            waiting: self.queue.waiting_len(),
            adds: self.queue.queue().adds(),
            retries: self.retries,
            reconciles: self.reconciles,
            running: self.running.len(),
            work_duration_total: self.work_duration_total,
            work_duration_max: self.work_duration_max,
            longest_running: oldest.map_or(Duration::ZERO, |&start| {
                now.saturating_duration_since(start)
            }),
        }
    }

    /// Whether `key` is being reconciled.
    pub fn is_running(&self, key: &T) -> bool {
        self.running.contains_key(key)
    }

    /// How many failures of `key` the rate limiter is tracking.
    pub fn num_requeues(&self, key: &T) -> u32 {
        self.queue.num_requeues(key)
    }

    /// See [`WorkQueue::is_drained`](crate::queue::WorkQueue::is_drained).
    pub fn is_drained(&self) -> bool {
        self.queue.is_drained()
    }

    // --- inputs

    /// Asks for `key` to be reconciled (an informer event, a watch on an owned
    /// object, …).
    pub fn enqueue(&mut self, key: T) {
        self.queue.add(key);
    }

    /// Asks for `key` to be reconciled once `delay` has passed since `now`.
    pub fn enqueue_after(&mut self, key: T, delay: Duration, now: Instant) {
        self.queue.add_after(key, delay, now);
    }

    /// The next key to reconcile at `now`, releasing keys whose delay is over
    /// first. The caller must [`finish`](Self::finish) every key it gets.
    pub fn next(&mut self, now: Instant) -> Next<T> {
        self.queue.handle_timeout(now);
        let next = self.queue.get();
        if let Next::Item(key) = &next {
            self.running.insert(key.clone(), now);
        }
        next
    }

    /// What a worker does next at `now` ([`next`](Self::next) with the
    /// attempt number and the wake-up time a runner needs).
    pub fn next_turn(&mut self, now: Instant) -> Turn<T> {
        match self.next(now) {
            Next::Item(key) => Turn::Reconcile {
                attempt: self.num_requeues(&key) + 1,
                key,
            },
            Next::Wait => Turn::Wait {
                until: self.poll_timeout(),
            },
            Next::ShutDown => Turn::ShutDown,
        }
    }

    /// Records that the reconcile of `key` ended at `now` with `outcome`, and
    /// requeues or forgets the key accordingly. A key that is not running is
    /// ignored.
    pub fn finish(&mut self, key: &T, outcome: Outcome, now: Instant) {
        let Some(started) = self.running.remove(key) else {
            return;
        };
        let took = now.saturating_duration_since(started);
        self.reconciles += 1;
        self.work_duration_total += took;
        self.work_duration_max = self.work_duration_max.max(took);
        match outcome {
            Outcome::Success => self.queue.forget(key),
            Outcome::RequeueAfter(delay) => {
                self.queue.forget(key);
                self.queue.add_after(key.clone(), delay, now);
            }
            Outcome::Requeue | Outcome::Error => {
                self.retries += 1;
                self.queue.add_rate_limited(key.clone(), now);
            }
        }
        // Done last, so a key requeued at once goes back after its own done.
        self.queue.done(key);
    }

    /// Stops taking keys; ready keys are still handed out.
    pub fn shut_down(&mut self) {
        self.queue.shut_down();
    }

    /// As [`shut_down`](Self::shut_down); the adapter then waits until
    /// [`is_drained`](Self::is_drained).
    pub fn shut_down_with_drain(&mut self) {
        self.queue.shut_down_with_drain();
    }

    // --- outputs

    /// When the next delayed key is due: wake then and call [`next`](Self::next).
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.queue.poll_timeout()
    }
}

/// What a worker does next ([`Controller::next_turn`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Turn<T> {
    /// Reconcile `key`, then [`finish`](Controller::finish) it.
    Reconcile {
        /// The key to reconcile.
        key: T,
        /// 1 for a first try, plus one per rate-limited requeue since the
        /// key last succeeded.
        attempt: u32,
    },
    /// Nothing is ready: wait for an enqueue, or until `until` (a delayed
    /// key is due then), and ask again.
    Wait {
        /// When the next delayed key is due.
        until: Option<Instant>,
    },
    /// The queue shut down and is empty: the worker ends.
    ShutDown,
}

impl<T> Turn<T> {
    /// How long a waiting worker sleeps from `now` ([`IDLE_WAIT`] when no
    /// key is due; zero for a turn that is not a wait).
    pub fn wait(&self, now: Instant) -> Duration {
        match self {
            Turn::Wait { until: Some(at) } => at.saturating_duration_since(now),
            Turn::Wait { until: None } => IDLE_WAIT,
            _ => Duration::ZERO,
        }
    }
}

/// A controller runner's settings (what the runtimes' builders set).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Settings {
    /// How many reconciles may run at once (at least 1).
    pub workers: usize,
    /// How long the runner waits for its informer to sync before workers start.
    pub sync_timeout: Duration,
}

impl Default for Settings {
    /// One worker, [`DEFAULT_SYNC_TIMEOUT`].
    fn default() -> Self {
        Self {
            workers: 1,
            sync_timeout: DEFAULT_SYNC_TIMEOUT,
        }
    }
}

impl Settings {
    /// `n` workers, at least one.
    pub fn workers(self, n: usize) -> Self {
        Self {
            workers: n.max(1),
            ..self
        }
    }

    /// Waits at most `timeout` for the informer to sync.
    pub fn sync_timeout(self, timeout: Duration) -> Self {
        Self {
            sync_timeout: timeout,
            ..self
        }
    }
}

/// A runner's work queue: object keys, a boxed rate limiter.
pub type Queue = Controller<ObjectKey, DynRateLimiter<ObjectKey>>;

/// A controller runner's queue, shared by its workers and its handles: the
/// [`Controller`] behind a lock (a poisoned lock is taken over: the queue's
/// own state is never left half-updated by a reconcile), and the runner's way
/// to wake its waiting workers, called after every change that may give a
/// waiting worker something to do.
pub struct SharedQueue {
    queue: Mutex<Queue>,
    wake: Box<dyn Fn() + Send + Sync>,
}

impl std::fmt::Debug for SharedQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedQueue").finish_non_exhaustive()
    }
}

impl SharedQueue {
    /// An empty queue with client-go's default controller rate limiter;
    /// `wake` wakes every waiting worker.
    pub fn new(wake: impl Fn() + Send + Sync + 'static) -> Self {
        let limiter: DynRateLimiter<ObjectKey> = Box::new(default_controller_rate_limiter());
        Self {
            queue: Mutex::new(Controller::new(limiter)),
            wake: Box::new(wake),
        }
    }

    /// The queue, locked (for a worker that waits on a condition variable
    /// paired with this lock).
    pub fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The counters at `now`.
    pub fn counters(&self, now: Instant) -> Counters {
        self.lock().counters(now)
    }

    /// Replaces the queue by an empty one whose failed keys wait as
    /// `limiter` says (a runner's builder, before it runs).
    pub fn set_rate_limiter(&self, limiter: impl RateLimiter<ObjectKey> + Send + 'static) {
        *self.lock() = Controller::new(Box::new(limiter));
    }

    /// [`Controller::enqueue`], then wakes the workers.
    pub fn enqueue(&self, key: ObjectKey) {
        self.lock().enqueue(key);
        (self.wake)();
    }

    /// [`Controller::enqueue_after`], then wakes the workers.
    pub fn enqueue_after(&self, key: ObjectKey, delay: Duration, now: Instant) {
        self.lock().enqueue_after(key, delay, now);
        (self.wake)();
    }

    /// [`Controller::next_turn`].
    pub fn next_turn(&self, now: Instant) -> Turn<ObjectKey> {
        self.lock().next_turn(now)
    }

    /// [`Controller::finish`], then wakes the workers (the key may be ready
    /// again, or the queue drained).
    pub fn finish(&self, key: &ObjectKey, outcome: Outcome, now: Instant) {
        self.lock().finish(key, outcome, now);
        (self.wake)();
    }

    /// [`Controller::shut_down_with_drain`], then wakes the workers.
    pub fn shut_down(&self) {
        self.lock().shut_down_with_drain();
        (self.wake)();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ratelimit::ItemExponentialFailure;
    use proptest::prelude::*;
    use std::collections::HashSet;

    #[derive(Clone, Debug)]
    enum Op {
        Enqueue(u8),
        EnqueueAfter(u8, u16),
        Next,
        Finish(usize, u8),
        Advance(u16),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0u8..6).prop_map(Op::Enqueue),
            (0u8..6, 0u16..50).prop_map(|(k, d)| Op::EnqueueAfter(k, d)),
            Just(Op::Next),
            Just(Op::Next),
            (any::<usize>(), 0u8..4).prop_map(|(i, o)| Op::Finish(i, o)),
            (0u16..100).prop_map(Op::Advance),
        ]
    }

    proptest! {
        /// Any number of workers, any interleaving: a key is never handed to
        /// a second worker while one is reconciling it, and the counters add up.
        #[test]
        fn controller_never_reconciles_a_key_twice_at_once(ops in proptest::collection::vec(op(), 0..300)) {
            let t0 = Instant::now();
            let mut now = t0;
            let mut c = Controller::default();
            let mut running: Vec<u8> = Vec::new();
            let (mut finished, mut retries) = (0, 0);
            for op in ops {
                match op {
                    Op::Enqueue(k) => c.enqueue(k),
                    Op::EnqueueAfter(k, d) => c.enqueue_after(k, Duration::from_millis(d.into()), now),
                    Op::Next => if let Next::Item(k) = c.next(now) {
                        prop_assert!(!running.contains(&k), "{k} reconciled twice at once");
                        running.push(k);
                    },
                    Op::Finish(i, o) => if !running.is_empty() {
                        let k = running.remove(i % running.len());
                        let outcome = [Outcome::Success, Outcome::Error, Outcome::Requeue, Outcome::RequeueAfter(Duration::from_millis(30))][o as usize];
                        if matches!(outcome, Outcome::Error | Outcome::Requeue) { retries += 1; }
                        finished += 1;
                        c.finish(&k, outcome, now);
                    },
                    Op::Advance(d) => now += Duration::from_millis(d.into()),
                }
                let counters = c.counters(now);
                prop_assert_eq!(counters.running, running.len());
                prop_assert_eq!(counters.reconciles, finished);
                prop_assert_eq!(counters.retries, retries);
                let distinct: HashSet<_> = running.iter().collect();
                prop_assert_eq!(distinct.len(), running.len());
            }
        }
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn controller_reconciles_a_key_at_most_once_at_a_time() {
        let t0 = Instant::now();
        let mut c = Controller::default();
        c.enqueue("a");
        assert_eq!(c.next(t0), Next::Item("a"));
        c.enqueue("a");
        c.enqueue("a");
        assert!(c.is_running(&"a"));
        assert_eq!(c.next(t0), Next::Wait, "a second worker gets nothing");
        c.finish(&"a", Outcome::Success, t0 + ms(3));
        assert_eq!(
            c.next(t0 + ms(3)),
            Next::Item("a"),
            "the add during the reconcile"
        );
        c.finish(&"a", Outcome::Success, t0 + ms(4));
        assert_eq!(c.next(t0 + ms(4)), Next::Wait);
        assert_eq!(c.counters(t0).adds, 2);
    }

    #[test]
    fn controller_error_requeues_rate_limited_and_success_forgets() {
        let t0 = Instant::now();
        let mut c = Controller::new(ItemExponentialFailure::new(ms(5), ms(1000)));
        c.enqueue("a");
        let mut now = t0;
        let mut ready = Vec::new();
        for _ in 0..3 {
            assert_eq!(c.next(now), Next::Item("a"));
            c.finish(&"a", Outcome::Error, now);
            let wake = c.poll_timeout().unwrap();
            assert_eq!(c.next(wake - ms(1)), Next::Wait, "not before its time");
            ready.push(wake - now);
            now = wake;
        }
        assert_eq!(ready, [ms(5), ms(10), ms(20)]);
        assert_eq!(c.num_requeues(&"a"), 3);
        assert_eq!(c.next(now), Next::Item("a"));
        c.finish(&"a", Outcome::Success, now);
        assert_eq!(c.num_requeues(&"a"), 0);
        assert_eq!(c.poll_timeout(), None);
        assert_eq!(c.counters(now).retries, 3);
    }

    #[test]
    fn controller_requeue_after_forgets_failures_and_waits_exactly() {
        let t0 = Instant::now();
        let mut c = Controller::new(ItemExponentialFailure::new(ms(5), ms(1000)));
        c.enqueue("a");
        c.next(t0);
        c.finish(&"a", Outcome::Requeue, t0);
        assert_eq!(c.num_requeues(&"a"), 1);
        let t1 = t0 + ms(5);
        assert_eq!(c.next(t1), Next::Item("a"));
        c.finish(&"a", Outcome::RequeueAfter(Duration::from_secs(30)), t1);
        assert_eq!(c.num_requeues(&"a"), 0);
        assert_eq!(c.poll_timeout(), Some(t1 + Duration::from_secs(30)));
        assert_eq!(c.counters(t1).waiting, 1);
    }

    #[test]
    fn controller_counters_track_durations_and_longest_running() {
        let t0 = Instant::now();
        let mut c = Controller::default();
        for key in ["a", "b", "c"] {
            c.enqueue(key);
        }
        assert_eq!(c.counters(t0).depth, 3);
        assert_eq!(c.next(t0), Next::Item("a"));
        assert_eq!(c.next(t0 + ms(10)), Next::Item("b"));
        let counters = c.counters(t0 + ms(30));
        assert_eq!(counters.running, 2);
        assert_eq!(counters.depth, 1);
        assert_eq!(counters.longest_running, ms(30));
        c.finish(&"a", Outcome::Success, t0 + ms(40));
        c.finish(&"b", Outcome::Success, t0 + ms(20));
        let counters = c.counters(t0 + ms(50));
        assert_eq!(counters.reconciles, 2);
        assert_eq!(counters.work_duration_total, ms(50));
        assert_eq!(counters.work_duration_max, ms(40));
        assert_eq!(counters.longest_running, Duration::ZERO);
        c.finish(&"zzz", Outcome::Error, t0); // never started: ignored
        assert_eq!(c.counters(t0).retries, 0);
    }

    #[test]
    fn controller_drain_waits_for_running_reconciles() {
        let t0 = Instant::now();
        let mut c = Controller::default();
        c.enqueue("a");
        c.enqueue("b");
        assert_eq!(c.next(t0), Next::Item("a"));
        c.shut_down_with_drain();
        assert!(!c.is_drained());
        assert_eq!(c.next(t0), Next::Item("b"), "queued keys still go out");
        c.finish(&"a", Outcome::Error, t0); // a requeue during shutdown is dropped
        c.finish(&"b", Outcome::Success, t0);
        assert!(c.is_drained());
        assert_eq!(c.next(t0 + Duration::from_secs(5)), Next::ShutDown);
    }

    #[test]
    fn controller_next_turn_names_the_attempt_and_the_wake_up() {
        let t0 = Instant::now();
        let mut c = Controller::new(ItemExponentialFailure::new(ms(5), ms(1000)));
        assert_eq!(c.next_turn(t0), Turn::Wait { until: None });
        assert_eq!(Turn::<&str>::Wait { until: None }.wait(t0), IDLE_WAIT);
        c.enqueue("a");
        assert_eq!(
            c.next_turn(t0),
            Turn::Reconcile {
                key: "a",
                attempt: 1
            }
        );
        c.finish(&"a", Outcome::Error, t0);
        let turn = c.next_turn(t0 + ms(1));
        assert_eq!(
            turn,
            Turn::Wait {
                until: Some(t0 + ms(5))
            },
            "rate-limited"
        );
        assert_eq!(turn.wait(t0 + ms(1)), ms(4));
        assert_eq!(turn.wait(t0 + ms(9)), Duration::ZERO, "already due");
        assert_eq!(
            c.next_turn(t0 + ms(5)),
            Turn::Reconcile {
                key: "a",
                attempt: 2
            }
        );
        c.finish(&"a", Outcome::Success, t0 + ms(6));
        c.enqueue("a");
        assert_eq!(
            c.next_turn(t0 + ms(6)),
            Turn::Reconcile {
                key: "a",
                attempt: 1
            },
            "a success forgets the failures"
        );
        c.shut_down();
        c.finish(&"a", Outcome::Success, t0 + ms(7));
        assert_eq!(c.next_turn(t0 + ms(7)), Turn::ShutDown);
        assert_eq!(Turn::<&str>::ShutDown.wait(t0), Duration::ZERO);
    }

    #[test]
    fn controller_outcome_of_reconcile_maps_errors_and_panics_to_error() {
        let span = reconcile_span(&ObjectKey::new(Some("default"), "web"), 1);
        let ok: std::thread::Result<Result<Outcome, String>> =
            Ok(Ok(Outcome::RequeueAfter(ms(30))));
        assert_eq!(
            Outcome::of_reconcile(ok, &span),
            Outcome::RequeueAfter(ms(30))
        );
        let requeue: std::thread::Result<Result<Outcome, String>> = Ok(Ok(Outcome::Requeue));
        assert_eq!(Outcome::of_reconcile(requeue, &span), Outcome::Requeue);
        let failed: std::thread::Result<Result<Outcome, String>> = Ok(Err("boom".into()));
        assert_eq!(Outcome::of_reconcile(failed, &span), Outcome::Error);
        let panicked = std::panic::catch_unwind(|| -> Result<Outcome, String> {
            panic!("a reconcile panicked")
        });
        assert!(panicked.is_err());
        assert_eq!(Outcome::of_reconcile(panicked, &span), Outcome::Error);
    }

    #[test]
    fn controller_settings_default_to_one_worker_and_five_minutes() {
        let settings = Settings::default();
        assert_eq!(settings.workers, 1);
        assert_eq!(settings.sync_timeout, Duration::from_secs(300));
        assert_eq!(settings.workers(0).workers, 1, "at least one worker");
        let settings = settings.workers(4).sync_timeout(ms(50));
        assert_eq!((settings.workers, settings.sync_timeout), (4, ms(50)));
    }

    #[test]
    fn controller_shared_queue_wakes_workers_on_every_change_that_may_feed_one() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicUsize, Ordering};

        let t0 = Instant::now();
        let wakes = Arc::new(AtomicUsize::new(0));
        let counted = wakes.clone();
        let queue = SharedQueue::new(move || {
            counted.fetch_add(1, Ordering::SeqCst);
        });
        let woken = || wakes.load(Ordering::SeqCst);
        let key = ObjectKey::new(Some("default"), "web");
        queue.enqueue(key.clone());
        assert_eq!(woken(), 1);
        let later = ObjectKey::new(Some("default"), "db");
        queue.enqueue_after(later.clone(), ms(20), t0);
        assert_eq!(woken(), 2);
        assert_eq!(
            queue.next_turn(t0),
            Turn::Reconcile {
                key: key.clone(),
                attempt: 1
            }
        );
        assert_eq!(woken(), 2, "taking a key wakes nobody");
        assert_eq!(queue.counters(t0).running, 1);
        queue.finish(&key, Outcome::Success, t0 + ms(1));
        assert_eq!(woken(), 3);
        assert_eq!(
            queue.next_turn(t0 + ms(1)),
            Turn::Wait {
                until: Some(t0 + ms(20))
            }
        );
        queue.shut_down();
        assert_eq!(woken(), 4);
        assert_eq!(queue.counters(t0 + ms(1)).reconciles, 1);
        // A delayed key is dropped by the shutdown; the queue is drained.
        assert_eq!(queue.next_turn(t0 + ms(30)), Turn::ShutDown);
    }

    #[test]
    fn controller_shared_queue_rate_limiter_replaces_the_queue() {
        let t0 = Instant::now();
        let queue = SharedQueue::new(|| {});
        queue.set_rate_limiter(ItemExponentialFailure::new(ms(7), ms(1000)));
        let key = ObjectKey::new(None, "node-1");
        queue.enqueue(key.clone());
        assert!(matches!(queue.next_turn(t0), Turn::Reconcile { .. }));
        queue.finish(&key, Outcome::Error, t0);
        assert_eq!(
            queue.next_turn(t0),
            Turn::Wait {
                until: Some(t0 + ms(7))
            }
        );
        assert_eq!(queue.lock().num_requeues(&key), 1);
    }

    #[test]
    fn controller_shared_queue_survives_a_poisoned_lock() {
        use std::sync::Arc;

        let queue = Arc::new(SharedQueue::new(|| {}));
        let holder = queue.clone();
        let panicked = std::thread::spawn(move || {
            let _held = holder.lock();
            panic!("a worker panicked while holding the queue");
        })
        .join();
        assert!(panicked.is_err());
        queue.enqueue(ObjectKey::new(None, "a"));
        assert_eq!(queue.counters(Instant::now()).depth, 1);
    }
}
