//! The informer runner: drives windlass-proto's [`SharedInformer`] on a
//! thread.
//!
//! The machine decides everything — what to list and watch, when to relist
//! after a 410, how long to back off, which handler hears what. This module
//! performs its actions (each request on a reader thread, through the
//! [`Client`], so the rate limiter, hooks and the per-request span apply),
//! feeds back heads, body chunks, ends and failures, sleeps until
//! `poll_timeout`, and hands each handler's notifications to its
//! [`Subscription`]. Every request holds a connection of its own, so a
//! `Cancel` (or [`Informer::stop`]) interrupts exactly that read.
//!
//! ```no_run
//! # fn demo(pods: windlass_blocking::Api<k8s_openapi::api::core::v1::Pod>) -> Result<(), windlass_blocking::Error> {
//! use std::time::Duration;
//! use windlass_blocking::Informer;
//!
//! let informer = Informer::new(&pods, Default::default());
//! informer.add_handler(None, |n| println!("{n:?}"))?;
//! let running = informer.start();
//! informer.wait_for_sync(Duration::from_secs(60))?;
//! println!("{} pods", informer.lister().len());
//! informer.stop();
//! running.join().expect("the informer thread")?;
//! # Ok(()) }
//! ```

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, sync_channel};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::response::Parts;
use serde::de::DeserializeOwned;
use windlass_proto::informer::wire::StandardCodec;
use windlass_proto::informer::{
    Action, HandlerId, IndexFn, InformerConfig, InformerError, Notification, ReflectorError,
    RequestId, SharedInformer, TransportError,
};
use windlass_proto::object::Object;
use windlass_proto::retry::RequestKind;

use crate::client::CancelHandle;
use crate::{Api, Call, Client, Error};

/// How many inputs may wait for the driving loop before a reader waits too.
const INPUTS: usize = 64;
/// How much a reader reads at a time.
const READ_CHUNK: usize = 64 * 1024;

/// A shared informer: one list and watch of one resource, one store, any
/// number of handlers. Cheap to clone; every clone is the same informer.
pub struct Informer<K> {
    shared: Arc<Shared<K>>,
}

impl<K> Clone for Informer<K> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
        }
    }
}

impl<K> std::fmt::Debug for Informer<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Informer")
            .field("resource", &self.shared.resource)
            .finish_non_exhaustive()
    }
}

struct Shared<K> {
    client: Client,
    resource: String,
    state: Arc<Mutex<State<K>>>,
    /// Signalled when notifications are queued, the sync state changes, a
    /// handler is removed, or the informer stops.
    changed: Condvar,
}

struct State<K> {
    machine: SharedInformer<K>,
    /// Handlers with a live subscription; one missing here was removed.
    handlers: HashSet<HandlerId>,
    /// Threads running `add_handler` callbacks, joined when `run` returns.
    handler_threads: Vec<JoinHandle<()>>,
    /// The driving loop's inbox while it runs.
    inbox: Option<SyncSender<Input>>,
    running: bool,
    stopped: bool,
    synced: bool,
}

impl<K> AsRef<SharedInformer<K>> for State<K> {
    fn as_ref(&self) -> &SharedInformer<K> {
        &self.machine
    }
}

/// What reaches the driving loop.
enum Input {
    Head(RequestId, Parts),
    Chunk(RequestId, Bytes),
    Eof(RequestId),
    Failed(RequestId, TransportError),
    /// Look at the state again (a stop).
    Wake,
}

impl<K: Object + DeserializeOwned + Send + Sync + 'static> Informer<K> {
    /// An informer over `api`'s resource and scope; nothing is sent before
    /// [`run`](Self::run) or [`start`](Self::start).
    pub fn new(api: &Api<K>, config: InformerConfig<K>) -> Self {
        let machine = SharedInformer::new(
            config,
            Box::new(api.builder().clone()),
            Box::new(StandardCodec::default()),
        );
        Self {
            shared: Arc::new(Shared {
                client: api.client().clone(),
                resource: api.builder().resource().plural.clone(),
                state: Arc::new(Mutex::new(State {
                    machine,
                    handlers: HashSet::new(),
                    handler_threads: Vec::new(),
                    inbox: None,
                    running: false,
                    stopped: false,
                    synced: false,
                })),
                changed: Condvar::new(),
            }),
        }
    }

    /// Registers an index; objects already stored are filed too.
    pub fn add_indexer(&self, name: &str, index: IndexFn<K>) -> Result<(), Error> {
        Ok(self.lock().machine.add_indexer(name, index)?)
    }

    /// Calls `handler` with every notification, in order, from a thread of
    /// its own (so a slow handler holds up no other). A handler added after
    /// the informer started first gets every stored object as an
    /// initial-list add. `resync`: its own resync period (`None`: the
    /// informer's). The thread ends once the informer stopped and the
    /// handler's queue is empty; [`run`](Self::run) joins it.
    pub fn add_handler(
        &self,
        resync: Option<Duration>,
        mut handler: impl FnMut(Notification<K>) + Send + 'static,
    ) -> Result<HandlerId, Error> {
        let subscription = self.subscribe(resync)?;
        let id = subscription.id();
        let thread = std::thread::Builder::new()
            .name(format!("informer-{}-handler", self.shared.resource))
            .spawn(move || subscription.for_each(&mut handler))
            .expect("spawning a handler thread");
        self.lock().handler_threads.push(thread);
        Ok(id)
    }

    /// Removes a handler (or subscription): it hears nothing more.
    pub fn remove_handler(&self, id: HandlerId) {
        let mut state = self.lock();
        state.machine.remove_handler(id);
        state.handlers.remove(&id);
        self.shared.changed.notify_all();
    }

    /// A handler as a pull: [`Subscription::next`] (or the iterator) hands
    /// out its notifications. Dropping it removes the handler.
    pub fn subscribe(&self, resync: Option<Duration>) -> Result<Subscription<K>, Error> {
        let mut state = self.lock();
        let id = state.machine.add_handler(resync, Instant::now())?;
        state.handlers.insert(id);
        Ok(Subscription {
            informer: self.clone(),
            id,
        })
    }

    /// Read access to the store.
    pub fn lister(&self) -> Lister<K> {
        Lister::new(self.shared.state.clone(), &self.shared.resource)
    }

    /// Whether [`run`](Self::run) is driving it now.
    pub fn is_running(&self) -> bool {
        self.lock().running
    }

    /// Whether the initial list is in the store.
    pub fn has_synced(&self) -> bool {
        self.lock().synced
    }

    /// Waits until the initial list is in the store, at most `timeout`.
    pub fn wait_for_sync(&self, timeout: Duration) -> Result<(), Error> {
        let deadline = Instant::now() + timeout;
        let mut state = self.lock();
        while !state.synced {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Error::SyncTimeout {
                    resource: self.shared.resource.clone(),
                    after: timeout,
                });
            }
            state = self.shared.wait(state, left);
        }
        Ok(())
    }

    /// Waits until the informer has synced and `handler` was handed every
    /// initial-list add and is done with it (client-go's per-registration
    /// `HasSynced`), at most `timeout`.
    pub(crate) fn wait_for_handler_sync(
        &self,
        handler: HandlerId,
        timeout: Duration,
    ) -> Result<(), Error> {
        let deadline = Instant::now() + timeout;
        let mut state = self.lock();
        while !state.machine.handler_has_synced(handler) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Error::SyncTimeout {
                    resource: self.shared.resource.clone(),
                    after: timeout,
                });
            }
            // The handler's own pulls do not signal; look again soon.
            state = self.shared.wait(state, left.min(Duration::from_millis(10)));
        }
        Ok(())
    }

    /// The next reflector error (informational: the machine already decided
    /// what to do about it; at most the last 16 are kept).
    pub fn poll_error(&self) -> Option<ReflectorError> {
        self.lock().machine.poll_error()
    }

    /// Stops: what is in flight is cancelled, [`run`](Self::run) returns,
    /// subscriptions end once their queues are empty.
    pub fn stop(&self) {
        let mut state = self.lock();
        state.machine.stop();
        state.stopped = true;
        if let Some(inbox) = &state.inbox {
            // A full inbox wakes the loop anyway; it sees `stopped` next.
            let _ = inbox.try_send(Input::Wake);
        }
        self.shared.changed.notify_all();
    }

    /// [`run`](Self::run) on a thread of its own; join it after [`stop`](Self::stop).
    pub fn start(&self) -> JoinHandle<Result<(), Error>> {
        let informer = self.clone();
        std::thread::Builder::new()
            .name(format!("informer-{}", self.shared.resource))
            .spawn(move || informer.run())
            .expect("spawning the informer thread")
    }

    /// Lists and watches until [`stop`](Self::stop), then joins the handler
    /// threads. An informer runs once.
    pub fn run(&self) -> Result<(), Error> {
        let (tx, rx) = sync_channel(INPUTS);
        {
            let mut state = self.lock();
            if state.running || state.machine.is_started() {
                return Err(InformerError::AlreadyStarted.into());
            }
            if state.stopped {
                return Err(InformerError::Stopped.into());
            }
            state.running = true;
            state.inbox = Some(tx.clone());
            state.machine.start(crate::seed(), Instant::now());
        }
        let mut requests = HashMap::new();
        self.drive(&tx, &rx, &mut requests);
        requests.values().for_each(CancelHandle::cancel);
        let handler_threads = {
            let mut state = self.lock();
            state.running = false;
            state.inbox = None;
            std::mem::take(&mut state.handler_threads)
        };
        for thread in handler_threads {
            let _ = thread.join();
        }
        Ok(())
    }

    /// The driving loop: perform, wake handlers, sleep until input or the deadline.
    fn drive(
        &self,
        tx: &SyncSender<Input>,
        rx: &Receiver<Input>,
        requests: &mut HashMap<RequestId, CancelHandle>,
    ) {
        loop {
            let Some(deadline) = self.perform(tx, requests) else {
                return;
            };
            let wait = deadline.map_or(Duration::from_secs(3600), |at| {
                at.saturating_duration_since(Instant::now())
            });
            let input = rx.recv_timeout(wait);
            let now = Instant::now();
            let mut state = self.lock();
            match input {
                Ok(Input::Head(id, head)) => state.machine.handle_response(id, &head, now),
                Ok(Input::Chunk(id, bytes)) => state.machine.handle_chunk(id, &bytes, now),
                Ok(Input::Eof(id)) => {
                    requests.remove(&id);
                    state.machine.handle_eof(id, now);
                }
                Ok(Input::Failed(id, error)) => {
                    requests.remove(&id);
                    state.machine.handle_error(id, error, now);
                }
                Ok(Input::Wake) => {}
                Err(RecvTimeoutError::Timeout) => state.machine.handle_timeout(now),
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
    }

    /// Drains the machine's actions, wakes subscriptions, publishes the sync
    /// state; returns when to call `handle_timeout` (`None`: stopped).
    fn perform(
        &self,
        tx: &SyncSender<Input>,
        requests: &mut HashMap<RequestId, CancelHandle>,
    ) -> Option<Option<Instant>> {
        let mut state = self.lock();
        while let Some(action) = state.machine.poll_action() {
            match action {
                Action::Send { id, request } => {
                    let cancel = self.shared.client.stream_handle();
                    let reader = Reader {
                        client: self.shared.client.clone(),
                        resource: self.shared.resource.clone(),
                        cancel: cancel.clone(),
                        tx: tx.clone(),
                        id,
                    };
                    std::thread::Builder::new()
                        .name(format!("informer-{}-read", self.shared.resource))
                        .spawn(move || reader.read(request))
                        .expect("spawning a reader thread");
                    requests.insert(id, cancel);
                }
                Action::Cancel(id) => {
                    if let Some(cancel) = requests.remove(&id) {
                        cancel.cancel();
                    }
                }
            }
        }
        state.synced = state.machine.has_synced();
        self.shared.changed.notify_all();
        (!state.stopped).then(|| state.machine.poll_timeout())
    }

    fn lock(&self) -> MutexGuard<'_, State<K>> {
        self.shared.lock()
    }
}

impl<K> Shared<K> {
    fn lock(&self) -> MutexGuard<'_, State<K>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn wait<'a>(
        &self,
        state: MutexGuard<'a, State<K>>,
        at_most: Duration,
    ) -> MutexGuard<'a, State<K>> {
        self.changed
            .wait_timeout(state, at_most)
            .unwrap_or_else(|e| e.into_inner())
            .0
    }
}

/// One request of the machine's, on a thread of its own.
struct Reader {
    client: Client,
    resource: String,
    cancel: CancelHandle,
    tx: SyncSender<Input>,
    id: RequestId,
}

impl Reader {
    /// Sends the request and reports what comes back. A status the client
    /// judged an error comes back as a head and its `Status` body, for the
    /// reflector to judge again (a 410 means relist). Ends when the body
    /// does, or when the loop is gone.
    fn read(self, request: http::Request<Bytes>) {
        let id = self.id;
        let kind = RequestKind::of_read(&request);
        let verb = if kind == RequestKind::Watch {
            "watch"
        } else {
            "list"
        };
        let uri = request.uri().to_string();
        let call = Call {
            verb,
            kind,
            resource: &self.resource,
        };
        let body = match self.client.send_on_stream(&self.cancel, request, call) {
            Ok(response) => {
                let (head, body) = response.into_parts();
                if self.tx.send(Input::Head(id, head)).is_err() {
                    return;
                }
                body
            }
            Err(error) => {
                let Some(api) = error.api() else {
                    let _ = self.tx.send(Input::Failed(id, error.to_transport_error()));
                    return;
                };
                let (head, body) = api.to_response();
                for input in [
                    Input::Head(id, head),
                    Input::Chunk(id, body),
                    Input::Eof(id),
                ] {
                    if self.tx.send(input).is_err() {
                        return;
                    }
                }
                return;
            }
        };
        let mut body = body.into_reader();
        loop {
            let mut buf = vec![0; READ_CHUNK];
            let input = match body.read(&mut buf) {
                Ok(0) => Input::Eof(id),
                Ok(n) => {
                    buf.truncate(n);
                    Input::Chunk(id, buf.into())
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => Input::Failed(
                    id,
                    self.client
                        .read_error(e, &http::Method::GET, &uri)
                        .to_transport_error(),
                ),
            };
            let last = !matches!(input, Input::Chunk(..));
            if self.tx.send(input).is_err() || last {
                return;
            }
        }
    }
}

/// One handler's notifications, pulled (also an [`Iterator`]). Dropping it
/// removes the handler.
pub struct Subscription<K: Object + Send + Sync + 'static> {
    informer: Informer<K>,
    id: HandlerId,
}

impl<K: Object + Send + Sync + 'static> std::fmt::Debug for Subscription<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl<K: Object + Send + Sync + 'static> Subscription<K> {
    /// The handler id this subscription reads.
    pub fn id(&self) -> HandlerId {
        self.id
    }
}

impl<K: Object + Send + Sync + 'static> Iterator for Subscription<K> {
    type Item = Notification<K>;

    /// The next notification, waiting for one; `None` once the informer
    /// stopped (or the handler was removed) and nothing is left for it.
    fn next(&mut self) -> Option<Notification<K>> {
        let shared = &self.informer.shared;
        let mut state = shared.lock();
        loop {
            if !state.handlers.contains(&self.id) {
                return None;
            }
            if let Some(n) = state.machine.poll_notification(self.id) {
                return Some(n);
            }
            if state.stopped {
                return None;
            }
            state = shared.wait(state, Duration::from_secs(3600));
        }
    }
}

impl<K: Object + Send + Sync + 'static> Drop for Subscription<K> {
    fn drop(&mut self) {
        let mut state = self.informer.shared.lock();
        state.machine.notification_done(self.id);
        state.machine.remove_handler(self.id);
        state.handlers.remove(&self.id);
    }
}

/// Read access to an informer's store and its indices (client-go's
/// Lister and Indexer): windlass-proto's [`Lister`](windlass_proto::informer::Lister),
/// reading the store under the informer's own lock, its index errors as [`Error`].
/// Cheap to clone; reads see the store as it is now.
pub type Lister<K> = windlass_proto::informer::Lister<K, Error>;
