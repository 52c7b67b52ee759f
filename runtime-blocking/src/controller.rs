//! The controller runner: an [`Informer`] feeding windlass-proto's
//! [`Controller`](ProtoController) (a rate-limited work queue that hands a
//! key to at most one worker at a time), drained by N worker threads.
//!
//! proto decides which key goes next, what happens to it after a reconcile
//! (forget, requeue after a delay, requeue rate-limited) and when a delayed
//! key is due; this module moves informer notifications into it, runs the
//! reconciles in `tracing` spans and sleeps until the queue has work.
//!
//! ```no_run
//! # fn demo(pods: windlass_blocking::Api<k8s_openapi::api::core::v1::Pod>) -> Result<(), windlass_blocking::Error> {
//! use windlass_proto::controller::Outcome;
//! use windlass_blocking::{Controller, Informer};
//!
//! let informer = Informer::new(&pods, Default::default());
//! let lister = informer.lister();
//! let controller = Controller::new(informer).workers(4);
//! let handle = controller.handle(); // handle.shut_down() ends it gracefully
//! let counters = controller.run(move |key| {
//!     let present = lister.get(&key).is_some();
//!     println!("{key}: {}", if present { "present" } else { "gone" });
//!     Ok::<_, windlass_blocking::Error>(Outcome::Success)
//! })?;
//! println!("{} reconciles", counters.reconciles);
//! # Ok(()) }
//! ```

use std::fmt::Display;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Condvar};
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use windlass_proto::controller::{Counters, Outcome, Settings, SharedQueue, Turn, reconcile_span};
use windlass_proto::object::{Object, ObjectKey};
use windlass_proto::ratelimit::RateLimiter;

use crate::{Error, Informer};

pub use windlass_proto::controller::DEFAULT_SYNC_TIMEOUT;

/// An informer, a work queue and N workers that reconcile its keys.
pub struct Controller<K> {
    informer: Informer<K>,
    settings: Settings,
    shared: Arc<Shared>,
}

impl<K> std::fmt::Debug for Controller<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Controller")
            .field("informer", &self.informer)
            .field("workers", &self.settings.workers)
            .finish_non_exhaustive()
    }
}

struct Shared {
    queue: SharedQueue,
    /// Wakes waiting workers (paired with the queue's lock): a key was
    /// enqueued, a reconcile finished, or shutdown.
    wake: Arc<Condvar>,
}

impl<K: Object + DeserializeOwned + Send + Sync + 'static> Controller<K> {
    /// A controller over `informer`: every add, update, delete and resync
    /// enqueues the object's key. One worker, client-go's default rate limiter.
    pub fn new(informer: Informer<K>) -> Self {
        let wake = Arc::new(Condvar::new());
        let waker = wake.clone();
        Self {
            informer,
            settings: Settings::default(),
            shared: Arc::new(Shared {
                queue: SharedQueue::new(move || waker.notify_all()),
                wake,
            }),
        }
    }

    /// How many reconciles may run at once (at least 1).
    pub fn workers(mut self, n: usize) -> Self {
        self.settings = self.settings.workers(n);
        self
    }

    /// How failed keys wait before their retry (replaces the default; keys
    /// already queued keep their place).
    pub fn rate_limiter(self, limiter: impl RateLimiter<ObjectKey> + Send + 'static) -> Self {
        self.shared.queue.set_rate_limiter(limiter);
        self
    }

    /// How long [`run`](Self::run) waits for the informer to sync.
    pub fn sync_timeout(mut self, timeout: Duration) -> Self {
        self.settings = self.settings.sync_timeout(timeout);
        self
    }

    /// A handle to enqueue keys, read counters and shut down.
    pub fn handle(&self) -> ControllerHandle {
        ControllerHandle {
            shared: self.shared.clone(),
        }
    }

    /// Runs until [`ControllerHandle::shut_down`]: starts the informer unless
    /// it runs already, waits for it to sync, then reconciles keys on
    /// `workers` threads. `Ok(outcome)` goes to the queue as it is; `Err(e)`
    /// is logged and counts as [`Outcome::Error`] (as does a panic). Each
    /// reconcile runs in a `reconcile` span (key, attempt, outcome). Returns
    /// the final counters once every worker has drained and been joined, and
    /// the informer this call started has stopped and been joined.
    pub fn run<F, E>(self, reconcile: F) -> Result<Counters, Error>
    where
        F: Fn(ObjectKey) -> Result<Outcome, E> + Send + Sync + 'static,
        E: Display,
    {
        let handle = self.handle();
        let subscription = self.informer.subscribe(None)?;
        let subscription_id = subscription.id();
        let forward = handle.clone();
        let forwarder = std::thread::spawn(move || {
            for notification in subscription {
                forward.enqueue(notification.key());
            }
        });
        let informer = (!self.informer.is_running()).then(|| self.informer.start());
        // Every initial-list key is in the queue before a worker starts.
        let synced = self
            .informer
            .wait_for_handler_sync(subscription_id, self.settings.sync_timeout);
        if synced.is_ok() {
            let reconcile = &reconcile;
            std::thread::scope(|scope| {
                for i in 0..self.settings.workers {
                    std::thread::Builder::new()
                        .name(format!("controller-worker-{i}"))
                        .spawn_scoped(scope, || work(&self.shared, reconcile))
                        .expect("spawning a worker thread");
                }
            });
        }
        self.informer.remove_handler(subscription_id);
        let _ = forwarder.join();
        if let Some(thread) = informer {
            self.informer.stop();
            if let Ok(Err(e)) = thread.join() {
                return Err(e);
            }
        }
        synced.map(|()| handle.counters())
    }
}

/// One worker: the driving loop of a reconcile.
fn work<F, E>(shared: &Shared, reconcile: &F)
where
    F: Fn(ObjectKey) -> Result<Outcome, E>,
    E: Display,
{
    loop {
        let (key, attempt) = {
            let mut queue = shared.queue.lock();
            loop {
                let now = Instant::now();
                let turn = queue.next_turn(now);
                match turn {
                    Turn::Reconcile { key, attempt } => break (key, attempt),
                    Turn::ShutDown => return,
                    Turn::Wait { .. } => {
                        queue = shared
                            .wake
                            .wait_timeout(queue, turn.wait(now))
                            .unwrap_or_else(|e| e.into_inner())
                            .0;
                    }
                }
            }
        };
        let span = reconcile_span(&key, attempt);
        let result =
            span.in_scope(|| std::panic::catch_unwind(AssertUnwindSafe(|| reconcile(key.clone()))));
        let outcome = Outcome::of_reconcile(result, &span);
        shared.queue.finish(&key, outcome, Instant::now());
    }
}

/// Enqueues keys, reads counters and shuts a [`Controller`] down, from anywhere.
#[derive(Clone)]
pub struct ControllerHandle {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for ControllerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControllerHandle")
            .field("counters", &self.counters())
            .finish()
    }
}

impl ControllerHandle {
    /// Asks for `key` to be reconciled (ignored once shutting down).
    pub fn enqueue(&self, key: ObjectKey) {
        self.shared.queue.enqueue(key);
    }

    /// Asks for `key` to be reconciled after `delay`.
    pub fn enqueue_after(&self, key: ObjectKey, delay: Duration) {
        self.shared.queue.enqueue_after(key, delay, Instant::now());
    }

    /// The queue's counters now.
    pub fn counters(&self) -> Counters {
        self.shared.queue.counters(Instant::now())
    }

    /// Shuts down gracefully: no new keys are taken, keys already queued are
    /// still reconciled, running reconciles finish; requeues are dropped.
    /// [`Controller::run`] returns once all that is done.
    pub fn shut_down(&self) {
        self.shared.queue.shut_down();
    }
}
