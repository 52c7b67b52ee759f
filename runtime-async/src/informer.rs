//! The informer runner: drives windlass-proto's [`SharedInformer`] on the
//! client's [`Runtime`](crate::Runtime) (tokio, smol's executor, async-std's, any).
//!
//! The machine decides everything — what to list and watch, when to relist
//! after a 410, how long to back off, which handler hears what. This module
//! performs its actions (each request through the [`Client`], so the rate
//! limiter, hooks and the per-request span apply), feeds back heads, body
//! chunks, ends and failures, sleeps with the runtime's timer until
//! `poll_timeout`, and hands each handler's notifications to its
//! [`Subscription`].
//!
//! ```no_run
//! # async fn demo<C: windlass_async::RuntimeClient>(pods: windlass_async::Api<k8s_openapi::api::core::v1::Pod, C>) -> Result<(), windlass_async::Error> {
//! use std::time::Duration;
//! use windlass_async::Informer;
//!
//! let informer = Informer::new(&pods, Default::default());
//! informer.add_handler(None, |n| println!("{n:?}"))?;
//! let running = informer.start();
//! informer.wait_for_sync(Duration::from_secs(60)).await?;
//! println!("{} pods", informer.lister().len());
//! informer.stop();
//! drop(running); // the runtime's task handle
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use async_channel::{Receiver, Sender};
use bytes::Bytes;
use event_listener::Event;
use http::response::Parts;
use http_body_util::BodyExt;
use serde::de::DeserializeOwned;
use windlass_proto::informer::wire::StandardCodec;
use windlass_proto::informer::{
    Action, HandlerId, IndexFn, InformerConfig, InformerError, Notification, ReflectorError,
    RequestId, SharedInformer, TransportError,
};
use windlass_proto::object::Object;
use windlass_proto::retry::RequestKind;

use crate::runtime::{Flag, JoinHandle, RuntimeClient, race, spawn_with_handle, timeout};
use crate::{Api, Call, Client, Error};

/// How many body chunks may wait for the driving loop before a request's
/// reader waits too.
const COMPLETIONS: usize = 64;

/// A shared informer: one list and watch of one resource, one store, any
/// number of handlers. Cheap to clone; every clone is the same informer.
pub struct Informer<K, C> {
    shared: Arc<Shared<K>>,
    /// The runtime crate's client, for [`start`](Self::start)'s task handle.
    client: C,
}

impl<K, C: Clone> Clone for Informer<K, C> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
            client: self.client.clone(),
        }
    }
}

impl<K, C> std::fmt::Debug for Informer<K, C> {
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
    synced: Flag,
    stopped: Flag,
}

struct State<K> {
    machine: SharedInformer<K>,
    /// One wake-up per subscription; a handler missing here was removed.
    wakers: HashMap<HandlerId, Arc<Event>>,
    running: bool,
}

impl<K> AsRef<SharedInformer<K>> for State<K> {
    fn as_ref(&self) -> &SharedInformer<K> {
        &self.machine
    }
}

/// What a request's reader reports to the driving loop.
enum Completion {
    Head(RequestId, Parts),
    Chunk(RequestId, Bytes),
    Eof(RequestId),
    Failed(RequestId, TransportError),
}

/// What woke the driving loop.
enum Wake {
    Input(Completion),
    Deadline,
    Stopped,
}

impl<K: Object + DeserializeOwned + Send + Sync + 'static, C: RuntimeClient> Informer<K, C> {
    /// An informer over `api`'s resource and scope; nothing is sent before
    /// [`run`](Self::run) or [`start`](Self::start).
    pub fn new(api: &Api<K, C>, config: InformerConfig<K>) -> Self {
        let machine = SharedInformer::new(
            config,
            Box::new(api.builder().clone()),
            Box::new(StandardCodec::default()),
        );
        Self {
            shared: Arc::new(Shared {
                client: api.client().core().clone(),
                resource: api.builder().resource().plural.clone(),
                state: Arc::new(Mutex::new(State {
                    machine,
                    wakers: HashMap::new(),
                    running: false,
                })),
                synced: Flag::default(),
                stopped: Flag::default(),
            }),
            client: api.client().clone(),
        }
    }

    /// Registers an index; objects already stored are filed too.
    pub fn add_indexer(&self, name: &str, index: IndexFn<K>) -> Result<(), Error> {
        Ok(self.lock().machine.add_indexer(name, index)?)
    }

    /// Calls `handler` with every notification, in order, from a task of its
    /// own on the client's runtime (so a slow handler holds up no other). A
    /// handler added after the informer started first gets every stored
    /// object as an initial-list add. `resync`: its own resync period
    /// (`None`: the informer's).
    pub fn add_handler(
        &self,
        resync: Option<Duration>,
        mut handler: impl FnMut(Notification<K>) + Send + 'static,
    ) -> Result<HandlerId, Error> {
        let mut subscription = self.subscribe(resync)?;
        let id = subscription.id();
        self.shared.client.runtime().spawn(Box::pin(async move {
            while let Some(notification) = subscription.next().await {
                handler(notification);
            }
        }));
        Ok(id)
    }

    /// Removes a handler (or subscription): it hears nothing more.
    pub fn remove_handler(&self, id: HandlerId) {
        let mut state = self.lock();
        state.machine.remove_handler(id);
        if let Some(waker) = state.wakers.remove(&id) {
            waker.notify(usize::MAX);
        }
    }

    /// A handler as a pull: [`Subscription::next`] hands out its
    /// notifications. Dropping it removes the handler.
    pub fn subscribe(&self, resync: Option<Duration>) -> Result<Subscription<K>, Error> {
        let mut state = self.lock();
        let id = state.machine.add_handler(resync, Instant::now())?;
        let waker = Arc::new(Event::new());
        state.wakers.insert(id, waker.clone());
        Ok(Subscription {
            shared: self.shared.clone(),
            id,
            waker,
            synced: Arc::new(Flag::default()),
        })
    }

    /// Read access to the store.
    pub fn lister(&self) -> Lister<K> {
        Lister::new(self.shared.state.clone(), &self.shared.resource)
    }

    /// The resource's plural.
    pub fn resource(&self) -> &str {
        &self.shared.resource
    }

    /// The shared client it sends with.
    pub(crate) fn core(&self) -> &Client {
        &self.shared.client
    }

    /// Whether [`run`](Self::run) is driving it now.
    pub fn is_running(&self) -> bool {
        self.lock().running
    }

    /// Whether the initial list is in the store.
    pub fn has_synced(&self) -> bool {
        self.shared.synced.get()
    }

    /// Waits until the initial list is in the store, at most `timeout`.
    pub async fn wait_for_sync(&self, timeout: Duration) -> Result<(), Error> {
        let runtime = self.shared.client.runtime();
        match self::timeout(runtime, timeout, self.shared.synced.wait_for(true)).await {
            Some(()) => Ok(()),
            None => Err(Error::SyncTimeout {
                resource: self.shared.resource.clone(),
                after: timeout,
            }),
        }
    }

    /// The next reflector error (informational: the machine already decided
    /// what to do about it; at most the last 16 are kept).
    pub fn poll_error(&self) -> Option<ReflectorError> {
        self.lock().machine.poll_error()
    }

    /// Stops: what is in flight is cancelled, [`run`](Self::run) returns,
    /// subscriptions end once their queues are empty.
    pub fn stop(&self) {
        self.lock().machine.stop();
        self.shared.stopped.set(true);
        for waker in self.lock().wakers.values() {
            waker.notify(usize::MAX);
        }
    }

    /// [`run`](Self::run) on a task of its own, with the runtime's own task handle.
    pub fn start(&self) -> C::JoinHandle<Result<(), Error>> {
        let informer = self.clone();
        self.client.spawn_task(async move { informer.run().await })
    }

    /// [`run`](Self::run) on a task of its own unless it runs already.
    pub(crate) fn run_unless_running(&self) -> Option<JoinHandle<Result<(), Error>>> {
        let informer = self.clone();
        let runtime = self.shared.client.runtime();
        (!self.is_running())
            .then(|| spawn_with_handle(runtime, async move { informer.run().await }))
    }

    /// Lists and watches until [`stop`](Self::stop). An informer runs once.
    pub async fn run(&self) -> Result<(), Error> {
        {
            let mut state = self.lock();
            if state.running || state.machine.is_started() {
                return Err(InformerError::AlreadyStarted.into());
            }
            state.running = true;
            state.machine.start(crate::seed(), Instant::now());
        }
        let (tx, rx) = async_channel::bounded(COMPLETIONS);
        let mut requests: HashMap<RequestId, JoinHandle<()>> = HashMap::new();
        // The driving loop: perform, wake handlers, sleep until input or the deadline.
        while !self.shared.stopped.get() {
            let deadline = self.perform(&tx, &mut requests);
            match self.wait(&rx, deadline).await {
                Wake::Input(completion) => self.feed(completion, &mut requests),
                Wake::Deadline => self.lock().machine.handle_timeout(Instant::now()),
                Wake::Stopped => {}
            }
        }
        requests.values().for_each(JoinHandle::abort);
        self.lock().running = false;
        Ok(())
    }

    /// The next completion, the deadline (an hour at most), or the stop.
    async fn wait(&self, rx: &Receiver<Completion>, deadline: Option<Instant>) -> Wake {
        let deadline = deadline.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
        let input = async {
            match rx.recv().await {
                Ok(completion) => Wake::Input(completion),
                Err(_) => Wake::Stopped, // never: the loop holds a sender
            }
        };
        let deadline = async {
            self.shared.client.runtime().sleep_until(deadline).await;
            Wake::Deadline
        };
        let stopped = async {
            self.shared.stopped.wait_for(true).await;
            Wake::Stopped
        };
        race(input, race(deadline, stopped)).await
    }

    /// Drains the machine's actions, wakes handlers with notifications,
    /// publishes the sync state; returns when to call `handle_timeout`.
    fn perform(
        &self,
        tx: &Sender<Completion>,
        requests: &mut HashMap<RequestId, JoinHandle<()>>,
    ) -> Option<Instant> {
        let mut state = self.lock();
        while let Some(action) = state.machine.poll_action() {
            match action {
                Action::Send { id, request } => {
                    let client = self.shared.client.clone();
                    let resource = self.shared.resource.clone();
                    let reader = read(client.clone(), resource, id, request, tx.clone());
                    requests.insert(id, spawn_with_handle(client.runtime(), reader));
                }
                Action::Cancel(id) => {
                    if let Some(task) = requests.remove(&id) {
                        task.abort();
                    }
                }
            }
        }
        requests.retain(|_, task| !task.is_finished());
        // A handler hears of the sync even with nothing to hand it (an empty list).
        let newly_synced = self.shared.synced.set(state.machine.has_synced());
        for (id, waker) in &state.wakers {
            if newly_synced || state.machine.pending(*id) > 0 {
                waker.notify(usize::MAX);
            }
        }
        state.machine.poll_timeout()
    }

    fn feed(&self, completion: Completion, requests: &mut HashMap<RequestId, JoinHandle<()>>) {
        let now = Instant::now();
        let machine = &mut self.lock().machine;
        match completion {
            Completion::Head(id, head) => machine.handle_response(id, &head, now),
            Completion::Chunk(id, bytes) => machine.handle_chunk(id, &bytes, now),
            Completion::Eof(id) => {
                requests.remove(&id);
                machine.handle_eof(id, now);
            }
            Completion::Failed(id, error) => {
                requests.remove(&id);
                machine.handle_error(id, error, now);
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<K>> {
        self.shared.lock()
    }
}

impl<K> Shared<K> {
    fn lock(&self) -> MutexGuard<'_, State<K>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Sends one request and reports what comes back. A status the client
/// judged an error comes back as a head and its `Status` body, for the
/// reflector to judge again (a 410 means relist).
async fn read(
    client: Client,
    resource: String,
    id: RequestId,
    request: http::Request<Bytes>,
    tx: Sender<Completion>,
) {
    let kind = RequestKind::of_read(&request);
    let verb = if kind == RequestKind::Watch {
        "watch"
    } else {
        "list"
    };
    let call = Call {
        verb,
        kind,
        resource: &resource,
    };
    let mut body = match client.send(request, call).await {
        Ok(response) => {
            let (head, body) = response.into_parts();
            if tx.send(Completion::Head(id, head)).await.is_err() {
                return;
            }
            body
        }
        Err(error) => {
            let Some(api) = error.api() else {
                let _ = tx
                    .send(Completion::Failed(id, error.to_transport_error()))
                    .await;
                return;
            };
            let (head, body) = api.to_response();
            let _ = tx.send(Completion::Head(id, head)).await;
            let _ = tx.send(Completion::Chunk(id, body)).await;
            let _ = tx.send(Completion::Eof(id)).await;
            return;
        }
    };
    loop {
        let completion = match body.frame().await {
            None => Completion::Eof(id),
            Some(Err(e)) => Completion::Failed(id, TransportError::Closed(e.to_string())),
            Some(Ok(frame)) => match frame.into_data() {
                Ok(bytes) => Completion::Chunk(id, bytes),
                Err(_) => continue,
            },
        };
        let last = !matches!(completion, Completion::Chunk(..));
        if tx.send(completion).await.is_err() || last {
            return;
        }
    }
}

/// One handler's notifications, pulled. Dropping it removes the handler.
pub struct Subscription<K: Object + Send + Sync + 'static> {
    shared: Arc<Shared<K>>,
    id: HandlerId,
    waker: Arc<Event>,
    /// Whether the informer synced and this handler was done with every
    /// initial-list add (updated by `next`).
    synced: Arc<Flag>,
}

impl<K: Object + Send + Sync + 'static> std::fmt::Debug for Subscription<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl<K: Object + DeserializeOwned + Send + Sync + 'static> Subscription<K> {
    /// The handler id this subscription reads.
    pub fn id(&self) -> HandlerId {
        self.id
    }

    /// Whether the informer has synced and this subscription was handed,
    /// and came back for more after, every initial-list add.
    pub fn has_synced(&self) -> bool {
        self.synced.get()
    }

    /// Follows [`has_synced`](Self::has_synced) (for a task that does not own the subscription).
    pub(crate) fn synced(&self) -> Arc<Flag> {
        self.synced.clone()
    }

    /// The next notification; `None` once the informer stopped (or the
    /// handler was removed) and nothing is left for it. Calling it again
    /// says the previous one was handled.
    pub async fn next(&mut self) -> Option<Notification<K>> {
        loop {
            // Listen before looking, so a wake-up between the two is not lost.
            let woken = self.waker.listen();
            {
                let mut state = self.shared.lock();
                if !state.wakers.contains_key(&self.id) {
                    return None;
                }
                let next = state.machine.poll_notification(self.id);
                self.synced.set(state.machine.handler_has_synced(self.id));
                if let Some(n) = next {
                    return Some(n);
                }
                if self.shared.stopped.get() {
                    return None;
                }
            }
            woken.await;
        }
    }
}

impl<K: Object + Send + Sync + 'static> Drop for Subscription<K> {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        state.machine.notification_done(self.id);
        state.machine.remove_handler(self.id);
        state.wakers.remove(&self.id);
    }
}

/// Read access to an informer's store and its indices (client-go's
/// Lister and Indexer): windlass-proto's [`Lister`](windlass_proto::informer::Lister),
/// reading the store under the informer's own lock, its index errors as [`Error`].
/// Cheap to clone; reads see the store as it is now.
pub type Lister<K> = windlass_proto::informer::Lister<K, Error>;
