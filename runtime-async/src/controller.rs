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
use std::sync::Arc;
use std::time::{Duration, Instant};

use event_listener::Event;
use futures_util::FutureExt;
use serde::de::DeserializeOwned;
use tracing::Instrument;
use windlass_proto::controller::{
    Counters, IDLE_WAIT, Outcome, Settings, SharedQueue, Turn, reconcile_span,
};
use windlass_proto::object::{Object, ObjectKey};
use windlass_proto::ratelimit::RateLimiter;

use crate::runtime::{RuntimeClient, race, spawn_with_handle, timeout};
use crate::{Client, Error, Informer};

pub use windlass_proto::controller::DEFAULT_SYNC_TIMEOUT;

/// An informer, a work queue and N workers that reconcile its keys.
pub struct Controller<K, C> {
    informer: Informer<K, C>,
    settings: Settings,
    shared: Arc<Shared>,
}

impl<K, C> std::fmt::Debug for Controller<K, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Controller")
            .field("informer", &self.informer)
            .field("workers", &self.settings.workers)
            .finish_non_exhaustive()
    }
}

struct Shared {
    queue: SharedQueue,
    /// Wakes waiting workers: a key was enqueued, a reconcile finished, or shutdown.
    wake: Arc<Event>,
}

impl<K: Object + DeserializeOwned + Send + Sync + 'static, C: RuntimeClient> Controller<K, C> {
    /// A controller over `informer`: every add, update, delete and resync
    /// enqueues the object's key. One worker, client-go's default rate limiter.
    pub fn new(informer: Informer<K, C>) -> Self {
        let wake = Arc::new(Event::new());
        let waker = wake.clone();
        Self {
            informer,
            settings: Settings::default(),
            shared: Arc::new(Shared {
                queue: SharedQueue::new(move || {
                    waker.notify(usize::MAX);
                }),
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
        if timeout(runtime, self.settings.sync_timeout, synced.wait_for(true))
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
                after: self.settings.sync_timeout,
            });
        }
        let reconcile = Arc::new(reconcile);
        let workers: Vec<_> = (0..self.settings.workers)
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
        let (key, attempt) = match shared.queue.next_turn(Instant::now()) {
            Turn::Reconcile { key, attempt } => (key, attempt),
            Turn::ShutDown => return,
            Turn::Wait { until } => {
                let wake_at = until.unwrap_or_else(|| Instant::now() + IDLE_WAIT);
                race(woken, client.runtime().sleep_until(wake_at)).await;
                continue;
            }
        };
        let span = reconcile_span(&key, attempt);
        let result = AssertUnwindSafe(reconcile(key.clone()))
            .catch_unwind()
            .instrument(span.clone())
            .await;
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
