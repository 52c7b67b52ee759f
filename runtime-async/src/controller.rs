//! The controller runner: an [`Informer`] feeding windlass-proto's
//! [`Controller`](ProtoController) (a rate-limited work queue that hands a
//! key to at most one worker at a time), drained by N worker tasks on the
//! client's [`Runtime`](crate::Runtime).
//!
//! proto decides which key goes next, what happens to it after a reconcile
//! (forget, requeue after a delay, requeue rate-limited) and when a delayed
//! key is due; this module moves informer notifications into it, runs the
//! reconciles in `tracing` spans and sleeps (the runtime's timer) until the
//! queue has work.
//!
//! ```no_run
//! # async fn demo<C: windlass_async::RuntimeClient>(pods: windlass_async::Api<k8s_openapi::api::core::v1::Pod, C>) -> Result<(), windlass_async::Error> {
//! use windlass_proto::controller::Outcome;
//! use windlass_async::{Controller, Informer};
//!
//! let informer = Informer::new(&pods, Default::default());
//! let lister = informer.lister();
//! let controller = Controller::new(informer).workers(4);
//! let handle = controller.handle(); // handle.shut_down() ends it gracefully
//! let counters = controller
//!     .run(move |key| {
//!         let pod = lister.get(&key);
//!         async move {
//!             println!("{key}: {}", if pod.is_some() { "present" } else { "gone" });
//!             Ok::<_, windlass_async::Error>(Outcome::Success)
//!         }
//!     })
//!     .await?;
//! println!("{} reconciles", counters.reconciles);
//! # Ok(()) }
//! ```

use std::fmt::Display;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use event_listener::Event;
use futures_util::FutureExt;
use serde::de::DeserializeOwned;
use tracing::Instrument;
use windlass_proto::controller::{Controller as ProtoController, Counters, Outcome};
use windlass_proto::object::{Object, ObjectKey};
use windlass_proto::queue::Next;
use windlass_proto::ratelimit::{DynRateLimiter, RateLimiter, default_controller_rate_limiter};

use crate::runtime::{RuntimeClient, race, spawn_with_handle, timeout};
use crate::{Client, Error, Informer};

/// How long [`Controller::run`] waits for the informer's initial list by default.
pub const DEFAULT_SYNC_TIMEOUT: Duration = Duration::from_secs(300);

type Queue = ProtoController<ObjectKey, DynRateLimiter<ObjectKey>>;

/// An informer, a work queue and N workers that reconcile its keys.
pub struct Controller<K, C> {
    informer: Informer<K, C>,
    workers: usize,
    sync_timeout: Duration,
    shared: Arc<Shared>,
}

impl<K, C> std::fmt::Debug for Controller<K, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Controller")
            .field("informer", &self.informer)
            .field("workers", &self.workers)
            .finish_non_exhaustive()
    }
}

struct Shared {
    queue: Mutex<Queue>,
    /// Wakes waiting workers: a key was enqueued, a reconcile finished, or shutdown.
    wake: Event,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl<K: Object + DeserializeOwned + Send + Sync + 'static, C: RuntimeClient> Controller<K, C> {
    /// A controller over `informer`: every add, update, delete and resync
    /// enqueues the object's key. One worker, client-go's default rate limiter.
    pub fn new(informer: Informer<K, C>) -> Self {
        let limiter: DynRateLimiter<ObjectKey> = Box::new(default_controller_rate_limiter());
        Self {
            informer,
            workers: 1,
            sync_timeout: DEFAULT_SYNC_TIMEOUT,
            shared: Arc::new(Shared {
                queue: Mutex::new(ProtoController::new(limiter)),
                wake: Event::new(),
            }),
        }
    }

    /// How many reconciles may run at once (at least 1).
    pub fn workers(mut self, n: usize) -> Self {
        self.workers = n.max(1);
        self
    }

    /// How failed keys wait before their retry (replaces the default; keys
    /// already queued keep their place).
    pub fn rate_limiter(self, limiter: impl RateLimiter<ObjectKey> + Send + 'static) -> Self {
        *self.shared.lock() = ProtoController::new(Box::new(limiter));
        self
    }

    /// How long [`run`](Self::run) waits for the informer to sync.
    pub fn sync_timeout(mut self, timeout: Duration) -> Self {
        self.sync_timeout = timeout;
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
    /// `workers` tasks. `Ok(outcome)` goes to the queue as it is; `Err(e)` is
    /// logged and counts as [`Outcome::Error`] (as does a panic). Each
    /// reconcile runs in a `reconcile` span (key, attempt, outcome). Returns
    /// the final counters once every worker has drained and the informer this
    /// call started has stopped.
    pub async fn run<F, Fut, E>(self, reconcile: F) -> Result<Counters, Error>
    where
        F: Fn(ObjectKey) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Outcome, E>> + Send + 'static,
        E: Display + Send + 'static,
    {
        let handle = self.handle();
        let client = self.informer.core().clone();
        let runtime = client.runtime();
        let mut subscription = self.informer.subscribe(None)?;
        let synced = subscription.synced();
        let forward = handle.clone();
        let forwarder = spawn_with_handle(runtime, async move {
            while let Some(notification) = subscription.next().await {
                forward.enqueue(notification.key());
            }
        });
        let informer = self.informer.run_unless_running();
        // Synced: the informer's initial list is in the store and every key of it in the queue.
        if timeout(runtime, self.sync_timeout, synced.wait_for(true))
            .await
            .is_none()
        {
            forwarder.abort();
            if let Some(task) = informer {
                self.informer.stop();
                let _ = task.await;
            }
            return Err(Error::SyncTimeout {
                resource: self.informer.resource().to_owned(),
                after: self.sync_timeout,
            });
        }
        let reconcile = Arc::new(reconcile);
        let workers: Vec<_> = (0..self.workers)
            .map(|_| {
                let worker = work(client.clone(), self.shared.clone(), reconcile.clone());
                spawn_with_handle(runtime, worker)
            })
            .collect();
        for worker in workers {
            let _ = worker.await;
        }
        forwarder.abort();
        if let Some(task) = informer {
            self.informer.stop();
            if let Ok(Err(e)) = task.await {
                return Err(e);
            }
        }
        Ok(handle.counters())
    }
}

/// One worker: the driving loop of a reconcile.
async fn work<F, Fut, E>(client: Client, shared: Arc<Shared>, reconcile: Arc<F>)
where
    F: Fn(ObjectKey) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Outcome, E>> + Send + 'static,
    E: Display + Send + 'static,
{
    loop {
        // Listen before looking, so a wake-up between the two is not lost.
        let woken = shared.wake.listen();
        let (next, wake_at, attempt) = {
            let mut queue = shared.lock();
            let next = queue.next(Instant::now());
            let attempt = next_attempt(&queue, &next);
            (next, queue.poll_timeout(), attempt)
        };
        let key = match next {
            Next::Item(key) => key,
            Next::ShutDown => return,
            Next::Wait => {
                let wake_at = wake_at.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
                race(woken, client.runtime().sleep_until(wake_at)).await;
                continue;
            }
        };
        let span =
            tracing::info_span!("reconcile", key = %key, attempt, outcome = tracing::field::Empty);
        let outcome = AssertUnwindSafe(reconcile(key.clone()))
            .catch_unwind()
            .instrument(span.clone())
            .await;
        let outcome = match outcome {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(error)) => {
                tracing::warn!(parent: &span, %error, "reconcile failed");
                Outcome::Error
            }
            Err(_) => {
                tracing::error!(parent: &span, "reconcile panicked");
                Outcome::Error
            }
        };
        span.record("outcome", tracing::field::debug(outcome));
        shared.lock().finish(&key, outcome, Instant::now());
        shared.wake.notify(usize::MAX);
    }
}

/// The attempt number of the key about to be reconciled (1 for a first try).
fn next_attempt(queue: &Queue, next: &Next<ObjectKey>) -> u32 {
    match next {
        Next::Item(key) => queue.num_requeues(key) + 1,
        _ => 0,
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
        self.shared.lock().enqueue(key);
        self.shared.wake.notify(usize::MAX);
    }

    /// Asks for `key` to be reconciled after `delay`.
    pub fn enqueue_after(&self, key: ObjectKey, delay: Duration) {
        self.shared.lock().enqueue_after(key, delay, Instant::now());
        self.shared.wake.notify(usize::MAX);
    }

    /// The queue's counters now.
    pub fn counters(&self) -> Counters {
        self.shared.lock().counters(Instant::now())
    }

    /// Shuts down gracefully: no new keys are taken, keys already queued are
    /// still reconciled, running reconciles finish; requeues are dropped.
    /// [`Controller::run`] returns once all that is done.
    pub fn shut_down(&self) {
        self.shared.lock().shut_down_with_drain();
        self.shared.wake.notify(usize::MAX);
    }
}
