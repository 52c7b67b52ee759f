//! client-go's `SharedIndexInformer` without threads: one reflector feeding
//! one FIFO, one indexer, and any number of handlers, each with its own
//! queue of [`Notification`]s the driver polls and hands to user code. This
//! module owns the fan-out — replay to late handlers, per-handler resync
//! periods, per-handler `has_synced` — and the consumer side of the FIFO
//! (client-go's `processDeltas`). It owns no IO: the reflector's actions
//! pass straight through.
//!
//! ```text
//! informer.handle_chunk(id, bytes, now);          // any input, as for the reflector
//! while let Some(a) = informer.poll_action() { perform(a) }
//! for h in handlers { while let Some(n) = informer.poll_notification(h) { call_user(h, n) } }
//! sleep_until(informer.poll_timeout());
//! ```
//!
//! Every reflector event is pushed through the FIFO and the FIFO is drained
//! into the indexer before the next one. A relist (with the default atomic
//! RealFIFO and [`RelistMode::Streaming`]) bypasses the FIFO: each listed
//! object is applied to the indexer as its page arrives and the keys the
//! list did not hold are swept as deletions when it completes (see
//! [`Relist`]), so a relist holds one store plus the page being decoded even
//! when every object changed. In the other modes a relist is collected into
//! a [`Generation`] (which shares every unchanged object with the store) and
//! replaces the store when the list completes.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::response::Parts;

use super::delta::{DeletedObject, Delta};
use super::delta_fifo::DeltaFifo;
use super::index::IndexFn;
use super::real_fifo::{RealFifo, reconcile_replacement};
use super::reflector::{
    Action, Mutation, Reflector, ReflectorConfig, ReflectorError, ReflectorEvent, RequestId,
    TransportError,
};
use super::store::{Applied, Generation, Relist, Store, StoreError};
use super::wire::{Codec, ListerWatcher};
use crate::object::{Object, ObjectKey};

/// client-go's `minimumResyncPeriod`.
pub const MINIMUM_RESYNC_PERIOD: Duration = Duration::from_secs(1);
/// How many reflector errors are kept for `poll_error`; older ones are dropped.
const MAX_QUEUED_ERRORS: usize = 16;

/// A function applied to every object before it is stored (client-go's
/// `TransformFunc`); it must keep the key and resourceVersion.
pub type Transform<K> = Arc<dyn Fn(&mut K) + Send + Sync>;

/// A transform that drops `metadata.managedFields`, which is often most of
/// an object's bytes and rarely read by controllers.
pub fn drop_managed_fields<K: Object>() -> Transform<K> {
    Arc::new(|obj: &mut K| obj.meta_mut().managed_fields = None)
}

/// A transform that stores a copy of each object instead of the decoded
/// one (chain it after your own transform, if any).
///
/// Decoding leaves every `Vec` at whatever capacity it grew to (serde pushes
/// elements one by one, and a JSON array does not say its length first), so a
/// decoded Pod carries 13–24 % of unused capacity, most of it in short lists
/// of small elements (ports, conditions, managedFields entries, volume
/// mounts) whose first push already reserves room for four. A
/// clone allocates each buffer at its exact length. kube-runtime's store
/// always holds such a clone; here it is a choice: one copy per stored object
/// (about a fifth of its decode time) against a store about a fifth smaller
/// (BENCHMARKS.md §2 and §5).
pub fn compact<K: Clone>() -> Transform<K> {
    Arc::new(|obj: &mut K| *obj = obj.clone())
}

/// Which FIFO sits between the reflector and the indexer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FifoKind {
    /// RealFIFO in atomic mode: relists and resyncs are single deltas
    /// (client-go 1.36's default, `AtomicFIFO` on).
    #[default]
    RealAtomic,
    /// RealFIFO expanding relists and resyncs into per-object deltas.
    Real,
    /// The classic DeltaFIFO (per-key merged deltas, `Replaced` emitted).
    Delta,
}

/// How a relist reaches the store when the FIFO is [`FifoKind::RealAtomic`]
/// (the other FIFOs always collect the list first, as client-go's do).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RelistMode {
    /// Each listed object is applied to the store as its page arrives, its
    /// handlers told at once (`Add`, `Update`, or a `Resync` to handlers
    /// whose resync is due when unchanged); when the list completes, the
    /// keys it did not hold are deleted with `DeletedFinalStateUnknown`
    /// tombstones. Memory: one store plus one page, even when every object
    /// changed. Until the list completes a reader may see it half applied
    /// (each object a state the server had); `has_synced` turns true only
    /// once the first list is complete.
    #[default]
    Streaming,
    /// The whole list is collected and applied as one `ReplacedAll`
    /// (client-go 1.36 with `AtomicFIFO`): readers never see a half-applied
    /// relist, and the tombstones come before the updates. Memory: up to
    /// two copies of every changed object until the list completes.
    Atomic,
}

/// The informer's settings.
#[derive(Clone)]
pub struct InformerConfig<K> {
    /// The reflector's settings; its `resync_period` is replaced by the
    /// resync check period the handlers imply.
    pub reflector: ReflectorConfig,
    /// The resync period of handlers that do not ask for one; also the
    /// initial resync check period. Zero: no resync.
    pub default_resync: Duration,
    /// Applied to each object before it is stored.
    pub transform: Option<Transform<K>>,
    /// The FIFO.
    pub fifo: FifoKind,
    /// How a relist reaches the store with the atomic RealFIFO.
    pub relist: RelistMode,
}

impl<K> Default for InformerConfig<K> {
    fn default() -> Self {
        Self {
            reflector: ReflectorConfig::default(),
            default_resync: Duration::ZERO,
            transform: None,
            fifo: FifoKind::default(),
            relist: RelistMode::default(),
        }
    }
}

impl<K> std::fmt::Debug for InformerConfig<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InformerConfig")
            .field("reflector", &self.reflector)
            .field("default_resync", &self.default_resync)
            .field("transform", &self.transform.is_some())
            .field("fifo", &self.fifo)
            .field("relist", &self.relist)
            .finish()
    }
}

/// Names a handler registered with [`SharedInformer::add_handler`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HandlerId(u64);

/// What a handler is told (client-go's `ResourceEventHandler` calls).
#[derive(Debug)]
pub enum Notification<K> {
    /// `OnAdd`: a new object; `is_in_initial_list` while the informer (or,
    /// for a late handler, its replay) has not synced.
    Add {
        /// The object.
        object: Arc<K>,
        /// Whether it belongs to the initial list.
        is_in_initial_list: bool,
    },
    /// `OnUpdate(old, new)` for a real change (resourceVersions differ).
    Update {
        /// The previous state.
        old: Arc<K>,
        /// The new state.
        new: Arc<K>,
    },
    /// A resync: the object is unchanged (same resourceVersion) and this
    /// handler's resync period came round. client-go delivers it as
    /// `OnUpdate(obj, obj)`.
    Resync(Arc<K>),
    /// `OnDelete`: the last state, or a tombstone when it was inferred.
    Delete(DeletedObject<K>),
}

impl<K: Object> Notification<K> {
    /// The key of the object it is about (what a controller enqueues).
    pub fn key(&self) -> ObjectKey {
        match self {
            Self::Add { object, .. } | Self::Resync(object) => object.key(),
            Self::Update { new, .. } => new.key(),
            Self::Delete(deleted) => deleted.key(),
        }
    }
}

impl<K> Clone for Notification<K> {
    fn clone(&self) -> Self {
        match self {
            Self::Add {
                object,
                is_in_initial_list,
            } => Self::Add {
                object: object.clone(),
                is_in_initial_list: *is_in_initial_list,
            },
            Self::Update { old, new } => Self::Update {
                old: old.clone(),
                new: new.clone(),
            },
            Self::Resync(o) => Self::Resync(o.clone()),
            Self::Delete(d) => Self::Delete(d.clone()),
        }
    }
}

/// An error of the informer's own API.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InformerError {
    /// The informer was stopped; no handler can join.
    #[error("the informer has stopped")]
    Stopped,
    /// The call is only allowed before `start`.
    #[error("the informer has already started")]
    AlreadyStarted,
    /// An index operation failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

struct Listener<K> {
    id: HandlerId,
    /// The period asked for (after the minimum and the started-informer rule).
    requested_resync: Duration,
    resync_period: Duration,
    next_resync: Instant,
    syncing: bool,
    queue: VecDeque<Notification<K>>,
    /// Initial-list adds queued, plus the one handed out and not yet done.
    pending_initial: usize,
    outstanding_initial: bool,
}

type Source<K> = (Box<dyn ListerWatcher>, Box<dyn Codec<K>>);

enum Fifo<K> {
    Real(RealFifo<K>),
    Delta(DeltaFifo<K>),
}

/// client-go's `SharedIndexInformer` as a pure state machine.
pub struct SharedInformer<K> {
    config: InformerConfig<K>,
    /// What the reflector is built from at `start`.
    source: Option<Source<K>>,
    reflector: Option<Reflector<K>>,
    fifo: Fifo<K>,
    indexer: Store<K>,
    generation: Option<Generation<K>>,
    /// The streaming relist in progress.
    relist: Option<Relist>,
    listeners: Vec<Listener<K>>,
    next_handler: u64,
    resync_check_period: Duration,
    errors: VecDeque<ReflectorError>,
    stopped: bool,
}

impl<K> std::fmt::Debug for SharedInformer<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedInformer")
            .field("indexer", &self.indexer)
            .field("handlers", &self.listeners.len())
            .field("resync_check_period", &self.resync_check_period)
            .field("started", &self.reflector.is_some())
            .field("stopped", &self.stopped)
            .finish()
    }
}

impl<K: Object + Send + Sync + 'static> SharedInformer<K> {
    /// An informer over the resource `requests` addresses, decoded by `codec`.
    /// Nothing is sent before [`start`](Self::start).
    pub fn new(
        config: InformerConfig<K>,
        requests: Box<dyn ListerWatcher>,
        codec: Box<dyn Codec<K>>,
    ) -> Self {
        let fifo = match config.fifo {
            FifoKind::RealAtomic => Fifo::Real(RealFifo::atomic()),
            FifoKind::Real => Fifo::Real(RealFifo::new()),
            FifoKind::Delta => Fifo::Delta(DeltaFifo::emitting_replaced()),
        };
        Self {
            resync_check_period: config.default_resync,
            config,
            source: Some((requests, codec)),
            reflector: None,
            fifo,
            indexer: Store::with_namespace_index(),
            generation: None,
            relist: None,
            listeners: Vec::new(),
            next_handler: 0,
            errors: VecDeque::new(),
            stopped: false,
        }
    }

    // --- getters

    /// The indexer: every object the informer holds (client-go's `GetIndexer`).
    pub fn store(&self) -> &Store<K> {
        &self.indexer
    }

    /// Whether the initial list has been fully delivered to the indexer.
    pub fn has_synced(&self) -> bool {
        match &self.fifo {
            Fifo::Real(f) => f.has_synced(),
            Fifo::Delta(f) => f.has_synced(),
        }
    }

    /// Whether the informer has synced and `handler` was handed (and done
    /// with) every initial-list add meant for it.
    pub fn handler_has_synced(&self, handler: HandlerId) -> bool {
        self.has_synced()
            && self
                .listener(handler)
                .is_some_and(|l| l.pending_initial == 0)
    }

    /// The resync period `handler` runs with (zero: none).
    pub fn handler_resync_period(&self, handler: HandlerId) -> Option<Duration> {
        self.listener(handler).map(|l| l.resync_period)
    }

    /// The period at which the reflector asks whether any handler is due.
    pub fn resync_check_period(&self) -> Duration {
        self.resync_check_period
    }

    /// How many notifications wait for `handler`.
    pub fn pending(&self, handler: HandlerId) -> usize {
        self.listener(handler).map_or(0, |l| l.queue.len())
    }

    /// Whether `start` was called.
    pub fn is_started(&self) -> bool {
        self.reflector.is_some()
    }

    /// The reflector, once started.
    pub fn reflector(&self) -> Option<&Reflector<K>> {
        self.reflector.as_ref()
    }

    fn listener(&self, id: HandlerId) -> Option<&Listener<K>> {
        self.listeners.iter().find(|l| l.id == id)
    }

    // --- mutators

    /// Registers an index (before or after start; existing objects are filed).
    pub fn add_indexer(&mut self, name: &str, index_fn: IndexFn<K>) -> Result<(), InformerError> {
        Ok(self.indexer.add_indexer(name, index_fn)?)
    }

    /// Sets the transform (client-go's `SetTransform`); only before start.
    pub fn set_transform(&mut self, transform: Transform<K>) -> Result<(), InformerError> {
        if self.is_started() {
            return Err(InformerError::AlreadyStarted);
        }
        self.config.transform = Some(transform);
        Ok(())
    }

    /// Adds a handler with its own resync period (`None`: the informer's
    /// default). client-go's rules: a period is raised to at least 1 s;
    /// one shorter than the check period lowers the check period before
    /// start, and is raised to it after. A handler added after start first
    /// receives every stored object as an initial-list add.
    pub fn add_handler(
        &mut self,
        resync: Option<Duration>,
        now: Instant,
    ) -> Result<HandlerId, InformerError> {
        if self.stopped {
            return Err(InformerError::Stopped);
        }
        let mut period = resync.unwrap_or(self.config.default_resync);
        if !period.is_zero() {
            period = period.max(MINIMUM_RESYNC_PERIOD);
            if period < self.resync_check_period {
                if self.is_started() {
                    period = self.resync_check_period;
                } else {
                    self.resync_check_period = period;
                    for l in &mut self.listeners {
                        l.resync_period = derived_period(l.requested_resync, period);
                    }
                }
            }
        }
        let resync_period = derived_period(period, self.resync_check_period);
        self.next_handler += 1;
        let id = HandlerId(self.next_handler);
        let mut listener = Listener {
            id,
            requested_resync: period,
            resync_period,
            next_resync: now + resync_period,
            syncing: false,
            queue: VecDeque::new(),
            pending_initial: 0,
            outstanding_initial: false,
        };
        if self.is_started() {
            let mut objects: Vec<&Arc<K>> = self.indexer.list().collect();
            objects.sort_by_key(|o| o.key());
            for object in objects {
                listener.pending_initial += 1;
                listener.queue.push_back(Notification::Add {
                    object: object.clone(),
                    is_in_initial_list: true,
                });
            }
        }
        self.listeners.push(listener);
        Ok(id)
    }

    /// Removes a handler and drops its queued notifications.
    pub fn remove_handler(&mut self, handler: HandlerId) {
        self.listeners.retain(|l| l.id != handler);
    }

    /// Starts the reflector; its first request is ready in `poll_action`.
    /// `seed` seeds its jitter. A second call does nothing.
    pub fn start(&mut self, seed: u64, now: Instant) {
        let Some((requests, codec)) = self.source.take() else {
            return;
        };
        if self.stopped {
            return;
        }
        let reflector_config = ReflectorConfig {
            resync_period: Some(self.resync_check_period).filter(|p| !p.is_zero()),
            ..self.config.reflector.clone()
        };
        self.reflector = Some(Reflector::new(reflector_config, requests, codec, seed, now));
        self.process(now);
    }

    /// Stops: the reflector cancels what is in flight; no handler can join.
    pub fn stop(&mut self) {
        self.stopped = true;
        if let Some(r) = &mut self.reflector {
            r.stop();
        }
    }

    // --- inputs (as for the reflector)

    /// A response head arrived.
    pub fn handle_response(&mut self, id: RequestId, head: &Parts, now: Instant) {
        if let Some(r) = &mut self.reflector {
            r.handle_response(id, head, now);
        }
        self.process(now);
    }

    /// Body bytes arrived.
    pub fn handle_chunk(&mut self, id: RequestId, bytes: &[u8], now: Instant) {
        if let Some(r) = &mut self.reflector {
            r.handle_chunk(id, bytes, now);
        }
        self.process(now);
    }

    /// A body ended.
    pub fn handle_eof(&mut self, id: RequestId, now: Instant) {
        if let Some(r) = &mut self.reflector {
            r.handle_eof(id, now);
        }
        self.process(now);
    }

    /// A transport failed.
    pub fn handle_error(&mut self, id: RequestId, error: TransportError, now: Instant) {
        if let Some(r) = &mut self.reflector {
            r.handle_error(id, error, now);
        }
        self.process(now);
    }

    /// Time passed.
    pub fn handle_timeout(&mut self, now: Instant) {
        if let Some(r) = &mut self.reflector {
            r.handle_timeout(now);
        }
        self.process(now);
    }

    /// The adapter finished calling the handler with the notification it
    /// last polled for `handler` (polling again implies it too).
    pub fn notification_done(&mut self, handler: HandlerId) {
        if let Some(l) = self.listeners.iter_mut().find(|l| l.id == handler)
            && std::mem::take(&mut l.outstanding_initial)
        {
            l.pending_initial -= 1;
        }
    }

    // --- outputs

    /// The next request to send or cancel.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.reflector.as_mut()?.poll_action()
    }

    /// The next notification for `handler`.
    pub fn poll_notification(&mut self, handler: HandlerId) -> Option<Notification<K>> {
        self.notification_done(handler);
        let l = self.listeners.iter_mut().find(|l| l.id == handler)?;
        let n = l.queue.pop_front()?;
        if let Notification::Add {
            is_in_initial_list: true,
            ..
        } = n
        {
            l.outstanding_initial = true;
        }
        Some(n)
    }

    /// The next reflector error (informational; at most 16 are kept).
    pub fn poll_error(&mut self) -> Option<ReflectorError> {
        self.errors.pop_front()
    }

    /// When `handle_timeout` must next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.reflector.as_ref()?.poll_timeout()
    }

    // --- the consumer side

    fn process(&mut self, now: Instant) {
        while let Some(event) = self.reflector.as_mut().and_then(Reflector::poll_event) {
            self.apply(event, now);
            self.drain_fifo();
        }
    }

    fn prepare(&self, mut obj: K) -> Arc<K> {
        if let Some(t) = &self.config.transform {
            t(&mut obj);
        }
        Arc::new(obj)
    }

    /// Whether relists are applied in place (see [`RelistMode`]).
    fn streams_relists(&self) -> bool {
        self.config.fifo == FifoKind::RealAtomic && self.config.relist == RelistMode::Streaming
    }

    fn apply(&mut self, event: ReflectorEvent<K>, now: Instant) {
        match event {
            ReflectorEvent::ListStarted if self.streams_relists() => {
                self.relist = Some(Relist::new());
            }
            ReflectorEvent::ListStarted => self.generation = Some(Generation::new()),
            ReflectorEvent::Listed(items) if self.streams_relists() => {
                let mut relist = self.relist.take().unwrap_or_default();
                for item in items {
                    let object = self.prepare(item);
                    let applied = relist.apply(&mut self.indexer, object);
                    self.notify_applied(applied);
                }
                self.relist = Some(relist);
            }
            ReflectorEvent::Listed(items) => {
                let mut generation = self.generation.take().unwrap_or_default();
                for item in items {
                    generation.insert(self.prepare(item), &self.indexer);
                }
                self.generation = Some(generation);
            }
            ReflectorEvent::ListedDeleted(key) => {
                if let Some(r) = &mut self.relist {
                    r.forget(&key);
                }
                if let Some(g) = &mut self.generation {
                    g.remove(&key);
                }
            }
            ReflectorEvent::ListAborted => {
                // A streaming relist keeps what it applied: each object is
                // newer than what it replaced, and the next list sweeps.
                self.relist = None;
                self.generation = None;
            }
            ReflectorEvent::Replaced { resource_version } if self.streams_relists() => {
                // The reflector always opens a relist with `ListStarted`.
                debug_assert!(self.relist.is_some(), "Replaced without ListStarted");
                let relist = self.relist.take().unwrap_or_default();
                let removed = relist.finish(&mut self.indexer, &resource_version);
                if !self.drops_tombstones() {
                    for (key, last) in removed {
                        self.distribute(Notification::Delete(DeletedObject::FinalStateUnknown {
                            key,
                            last: Some(last),
                        }));
                    }
                }
                if let Fifo::Real(f) = &mut self.fifo {
                    f.replaced_in_place();
                }
            }
            ReflectorEvent::Replaced { resource_version } => {
                // The reflector always opens a relist with `ListStarted`.
                debug_assert!(self.generation.is_some(), "Replaced without ListStarted");
                let objects = self.generation.take().unwrap_or_default().into_objects();
                match &mut self.fifo {
                    Fifo::Real(f) => f.replace(objects, &resource_version, Some(&self.indexer)),
                    Fifo::Delta(f) => f.replace(objects, Some(&self.indexer)),
                }
            }
            ReflectorEvent::Added(o) => {
                let o = self.prepare(o);
                match &mut self.fifo {
                    Fifo::Real(f) => f.add(o),
                    Fifo::Delta(f) => f.add(o),
                }
            }
            ReflectorEvent::Modified(o) => {
                let o = self.prepare(o);
                match &mut self.fifo {
                    Fifo::Real(f) => f.update(o),
                    Fifo::Delta(f) => f.update(o),
                }
            }
            ReflectorEvent::Deleted(o) => {
                let o = self.prepare(o);
                match &mut self.fifo {
                    Fifo::Real(f) => f.delete(o),
                    Fifo::Delta(f) => f.delete(o, Some(&self.indexer)),
                }
            }
            ReflectorEvent::Bookmark { resource_version } => match &mut self.fifo {
                Fifo::Real(f) if f.is_atomic() => f.bookmark(&resource_version),
                _ => self.indexer.bookmark(&resource_version),
            },
            ReflectorEvent::Resync => {
                if self.should_resync(now) {
                    match &mut self.fifo {
                        Fifo::Real(f) => f.resync(Some(&self.indexer)),
                        Fifo::Delta(f) => f.resync(Some(&self.indexer)),
                    }
                }
            }
            ReflectorEvent::Error(e) => {
                if self.errors.len() == MAX_QUEUED_ERRORS {
                    self.errors.pop_front();
                }
                self.errors.push_back(e);
            }
        }
    }

    /// client-go's `sharedProcessor.shouldResync`: flags the listeners whose
    /// period came round and schedules their next one.
    fn should_resync(&mut self, now: Instant) -> bool {
        let mut any = false;
        for l in &mut self.listeners {
            l.syncing = !l.resync_period.is_zero() && now >= l.next_resync;
            if l.syncing {
                any = true;
                l.next_resync = now + l.resync_period;
            }
        }
        any
    }

    fn drain_fifo(&mut self) {
        loop {
            let mut popped = Vec::new();
            let got = match &mut self.fifo {
                Fifo::Real(f) => f.pop(|d, initial| popped.push((d, initial))),
                Fifo::Delta(f) => f.pop(|ds, initial| {
                    popped.extend(ds.into_iter().map(|d| (d, initial)));
                }),
            };
            if !matches!(got, Ok(Some(()))) {
                return;
            }
            for (delta, initial) in popped {
                self.process_delta(delta, initial);
            }
        }
    }

    /// client-go's `processDeltas` for one delta.
    fn process_delta(&mut self, delta: Delta<K>, is_in_initial_list: bool) {
        match delta {
            Delta::Added(o) | Delta::Updated(o) | Delta::Replaced(o) | Delta::Sync(o) => {
                match self.indexer.update(o.clone()) {
                    Some(old) => self.notify_update(old, o),
                    None => self.distribute(Notification::Add {
                        object: o,
                        is_in_initial_list,
                    }),
                }
            }
            Delta::Deleted(d) => {
                if d.is_final_state_unknown() && self.drops_tombstones() {
                    return;
                }
                match d.object() {
                    Some(o) => self.indexer.delete_object(o),
                    None => self.indexer.delete(&d.key()),
                };
                self.distribute(Notification::Delete(d));
            }
            Delta::ReplacedAll {
                resource_version,
                objects,
            } => {
                let mut deletions = Vec::new();
                reconcile_replacement(std::iter::empty(), Some(&self.indexer), &objects, |d| {
                    deletions.push(d)
                });
                let replacements: Vec<(Option<Arc<K>>, Arc<K>)> = objects
                    .iter()
                    .map(|o| (self.indexer.get(&o.key()).cloned(), o.clone()))
                    .collect();
                self.indexer.replace(objects, &resource_version);
                if self.drops_tombstones() {
                    deletions.clear();
                }
                for d in deletions {
                    self.distribute(Notification::Delete(d));
                }
                for (old, new) in replacements {
                    match old {
                        Some(old) => self.notify_update(old, new),
                        None => self.distribute(Notification::Add {
                            object: new,
                            is_in_initial_list,
                        }),
                    }
                }
            }
            Delta::SyncAll => {
                let mut objects: Vec<Arc<K>> = self.indexer.list().cloned().collect();
                objects.sort_by_key(|o| o.key());
                for o in objects {
                    self.notify_update(o.clone(), o);
                }
            }
            Delta::Bookmark { resource_version } => self.indexer.bookmark(&resource_version),
        }
    }

    fn drops_tombstones(&self) -> bool {
        self.config.reflector.mutation == Mutation::DropTombstones
    }

    /// What one object of a streaming relist did to the store, told to the
    /// handlers as the atomic `ReplacedAll` would tell it.
    fn notify_applied(&mut self, applied: Applied<K>) {
        match applied {
            Applied::Added(object) => {
                let is_in_initial_list = !self.has_synced();
                self.distribute(Notification::Add {
                    object,
                    is_in_initial_list,
                });
            }
            Applied::Updated { old, new } => self.notify_update(old, new),
            Applied::Unchanged(object) => self.notify_update(object.clone(), object),
        }
    }

    /// `OnUpdate` with equal resourceVersions is a resync and goes only to
    /// the listeners whose resync is due; anything else goes to all.
    fn notify_update(&mut self, old: Arc<K>, new: Arc<K>) {
        let is_sync = old.resource_version() == new.resource_version();
        if !is_sync {
            self.distribute(Notification::Update { old, new });
            return;
        }
        for l in self.listeners.iter_mut().filter(|l| l.syncing) {
            l.queue.push_back(Notification::Resync(new.clone()));
        }
    }

    fn distribute(&mut self, n: Notification<K>) {
        let initial = matches!(
            n,
            Notification::Add {
                is_in_initial_list: true,
                ..
            }
        );
        for l in &mut self.listeners {
            if initial {
                l.pending_initial += 1;
            }
            l.queue.push_back(n.clone());
        }
    }
}

/// client-go's `determineResyncPeriod`.
fn derived_period(desired: Duration, check: Duration) -> Duration {
    if desired.is_zero() || check.is_zero() {
        Duration::ZERO
    } else {
        desired.max(check)
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::Pod;

    #[test]
    fn informer_compact_transform_stores_every_list_at_its_exact_length() {
        let json = br#"{"metadata":{"name":"web","namespace":"default"},
            "spec":{"containers":[{"name":"c","image":"nginx","ports":[{"containerPort":80}]}]}}"#;
        let mut pod: Pod = serde_json::from_slice(json).unwrap();
        let decoded = pod.clone();
        let ports = |p: &Pod| {
            let spec = p.spec.as_ref().unwrap();
            spec.containers[0].ports.as_ref().unwrap().capacity()
        };
        // What serde leaves: a one-element array of small elements reserved
        // room for four.
        assert!(
            ports(&pod) > 1,
            "serde grew the Vec by pushes: {}",
            ports(&pod)
        );
        (super::compact::<Pod>())(&mut pod);
        assert_eq!(pod, decoded);
        assert_eq!(ports(&pod), 1);
    }

    #[test]
    fn informer_notification_key_names_the_object_or_its_tombstone() {
        use std::sync::Arc;

        use super::{DeletedObject, Notification, ObjectKey};

        let pod = |name: &str| {
            let json = format!(r#"{{"metadata":{{"name":"{name}","namespace":"a"}}}}"#);
            Arc::new(serde_json::from_str::<Pod>(&json).unwrap())
        };
        let key = |name: &str| ObjectKey::new(Some("a"), name);
        let add = Notification::Add {
            object: pod("x"),
            is_in_initial_list: true,
        };
        assert_eq!(add.key(), key("x"));
        let update = Notification::Update {
            old: pod("x"),
            new: pod("y"),
        };
        assert_eq!(update.key(), key("y"));
        assert_eq!(Notification::Resync(pod("z")).key(), key("z"));
        let gone = DeletedObject::FinalStateUnknown {
            key: key("w"),
            last: Some(pod("old-name")),
        };
        assert_eq!(Notification::Delete(gone).key(), key("w"));
    }
}
