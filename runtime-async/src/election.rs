//! The leader-election runner: drives windlass-proto's
//! [`LeaderElector`](proto::LeaderElector) on the client's
//! [`Runtime`](crate::Runtime) with a `coordination.k8s.io/v1` Lease lock.
//!
//! proto decides when to read and write the Lease, whether another holder's
//! lease is still valid, when leadership ends and how to release it; this
//! module performs the reads and writes through the [`Client`], sleeps
//! (the runtime's timer) until `poll_timeout`, and runs the leader's work while
//! it leads.
//!
//! ```no_run
//! # async fn demo<C: windlass_async::RuntimeClient>(client: C) -> Result<(), windlass_async::Error> {
//! use windlass_proto::election::Config;
//! use windlass_async::LeaderElector;
//!
//! let elector = LeaderElector::new(client, Config::new("pod-a", "kube-system", "my-controller"))?;
//! let handle = elector.handle(); // handle.stop() gives the lease up
//! elector
//!     .run(|leadership| async move {
//!         println!("leading");
//!         leadership.lost().await; // do the leader's work until then
//!     })
//!     .await?;
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use async_channel::Sender;
use k8s_openapi::api::coordination::v1::Lease;
use windlass_proto::election::{self as proto, Action, Config, Event, LeaseError, RequestId};
use windlass_proto::rand::Rng;
use windlass_proto::request::PostParams;

use crate::runtime::{Flag, JoinHandle, RuntimeClient, race, spawn_with_handle};
use crate::{Api, Error};

/// Called with each new holder the elector observes.
type NewLeaderCallback = Box<dyn FnMut(&str) + Send>;

/// One candidate in a Lease-based election.
pub struct LeaderElector<C> {
    client: C,
    config: Config,
    on_new_leader: Option<NewLeaderCallback>,
    shared: Arc<Shared>,
}

impl<C> std::fmt::Debug for LeaderElector<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeaderElector")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

struct Shared {
    leading: Arc<Flag>,
    stop: Flag,
    leader: Mutex<Option<String>>,
}

impl<C: RuntimeClient> LeaderElector<C> {
    /// A candidate for the Lease `config.namespace/config.name`; the
    /// configuration must keep client-go's rules.
    pub fn new(client: C, config: Config) -> Result<Self, Error> {
        config.validate()?;
        Ok(Self {
            client,
            config,
            on_new_leader: None,
            shared: Arc::new(Shared {
                leading: Arc::new(Flag::default()),
                stop: Flag::default(),
                leader: Mutex::new(None),
            }),
        })
    }

    /// Calls `f` with the new holder whenever the observed holder changes.
    pub fn on_new_leader(mut self, f: impl FnMut(&str) + Send + 'static) -> Self {
        self.on_new_leader = Some(Box::new(f));
        self
    }

    /// A handle to watch and stop the election from anywhere.
    pub fn handle(&self) -> ElectorHandle {
        ElectorHandle {
            shared: self.shared.clone(),
        }
    }

    /// Campaigns until stopped. On acquiring the lease, `lead` runs on a task
    /// of its own (on the client's runtime) with a [`Leadership`] whose [`lost`](Leadership::lost)
    /// resolves when leadership ends (lost, not renewed within the renew
    /// deadline, or [`ElectorHandle::stop`]). When `lead` returns by itself
    /// the elector stops too. With `release_on_cancel` the Lease is released
    /// before this returns; it returns after `lead` has returned.
    pub async fn run<F, Fut>(mut self, lead: F) -> Result<(), Error>
    where
        F: FnOnce(Leadership) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let leases: Api<Lease, C> = Api::namespaced(self.client.clone(), &self.config.namespace)?;
        let mut machine = proto::LeaderElector::new(
            self.config.clone(),
            Rng::new(crate::seed()),
            Instant::now(),
            SystemTime::now(),
        )?;
        let client = self.client.core().clone();
        let runtime = client.runtime();
        let (tx, rx) = async_channel::unbounded();
        let mut requests: HashMap<RequestId, JoinHandle<()>> = HashMap::new();
        let mut lead = Some(lead);
        let mut work: Option<JoinHandle<()>> = None;
        let mut stopping = false;
        // The driving loop: perform, report, sleep until a result or the deadline.
        while !machine.is_stopped() {
            while let Some(action) = machine.poll_action() {
                let id = action.id();
                requests.retain(|_, task| !task.is_finished());
                let name = self.config.name.clone();
                let task = perform(leases.clone(), name, action, tx.clone());
                requests.insert(id, spawn_with_handle(runtime, task));
            }
            while let Some(event) = machine.poll_event() {
                self.report(event, &mut lead, &mut work);
            }
            let deadline = machine
                .poll_timeout()
                .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
            let result = async {
                match rx.recv().await {
                    Ok((id, result)) => Wake::Result(id, result),
                    Err(_) => Wake::Stop, // never: the loop holds a sender
                }
            };
            let timer = async {
                runtime.sleep_until(deadline).await;
                Wake::Deadline
            };
            // Once stopping, neither the stop nor the lead task wakes the
            // loop: the machine was asked to stop once, and asking again
            // would wake this loop at once, forever.
            let stop = async {
                match stopping {
                    true => std::future::pending().await,
                    false => self.shared.stop.wait_for(true).await,
                }
                Wake::Stop
            };
            // A handle that finished unseen is ready at its first poll (a
            // lead task that ended between turns is seen); once seen it is
            // dropped, never polled again.
            let work_done = async {
                match (&mut work, stopping) {
                    (Some(task), false) => drop(task.await),
                    _ => std::future::pending().await,
                }
                Wake::WorkDone
            };
            match race(race(result, timer), race(stop, work_done)).await {
                Wake::Result(id, result) => machine.handle_result(id, *result, Instant::now()),
                Wake::Deadline => machine.handle_timeout(Instant::now()),
                Wake::Stop => {
                    stopping = true;
                    machine.stop(Instant::now());
                }
                Wake::WorkDone => {
                    work = None;
                    stopping = true;
                    machine.stop(Instant::now());
                }
            }
        }
        while let Some(event) = machine.poll_event() {
            self.report(event, &mut lead, &mut work);
        }
        requests.values().for_each(JoinHandle::abort);
        self.shared.leading.set(false);
        if let Some(task) = work {
            let _ = task.await;
        }
        Ok(())
    }

    fn report<F, Fut>(
        &mut self,
        event: Event,
        lead: &mut Option<F>,
        work: &mut Option<JoinHandle<()>>,
    ) where
        F: FnOnce(Leadership) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        event.trace(&self.config);
        match event {
            Event::StartedLeading => {
                self.shared.leading.set(true);
                if let Some(lead) = lead.take() {
                    let leadership = Leadership {
                        leading: self.shared.leading.clone(),
                    };
                    *work = Some(spawn_with_handle(
                        self.client.core().runtime(),
                        lead(leadership),
                    ));
                }
            }
            Event::StoppedLeading => {
                self.shared.leading.set(false);
            }
            Event::NewLeader(identity) => {
                *self.shared.leader.lock().unwrap_or_else(|e| e.into_inner()) =
                    Some(identity.clone());
                if let Some(f) = &mut self.on_new_leader {
                    f(&identity);
                }
            }
        }
    }
}

/// What woke the driving loop.
enum Wake {
    /// A Lease read or write came back (boxed: a Lease is large).
    Result(RequestId, Box<Result<Lease, LeaseError>>),
    Deadline,
    Stop,
    WorkDone,
}

/// Performs one read or write of the Lease and reports its result.
async fn perform<C: RuntimeClient>(
    leases: Api<Lease, C>,
    name: String,
    action: Action,
    tx: Sender<(RequestId, Box<Result<Lease, LeaseError>>)>,
) {
    let id = action.id();
    let result = match action {
        Action::Get { .. } => leases.get(&name).await,
        Action::Create { lease, .. } => leases.create(&PostParams::default(), &lease).await,
        Action::Update { lease, .. } => leases.replace(&name, &PostParams::default(), &lease).await,
    };
    let result = result.map_err(|e| LeaseError::from_api(e.api(), &e));
    let _ = tx.send((id, Box::new(result))).await;
}

/// Watches and stops a [`LeaderElector`] from anywhere.
#[derive(Clone)]
pub struct ElectorHandle {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for ElectorHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ElectorHandle")
            .field("is_leader", &self.is_leader())
            .field("leader", &self.leader())
            .finish()
    }
}

impl ElectorHandle {
    /// Whether this candidate leads now.
    pub fn is_leader(&self) -> bool {
        self.shared.leading.get()
    }

    /// The last holder observed (this candidate or another).
    pub fn leader(&self) -> Option<String> {
        self.shared
            .leader
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Stops campaigning: a leader stops leading at once, then releases the
    /// Lease (with `release_on_cancel`); [`LeaderElector::run`] then returns.
    pub fn stop(&self) {
        self.shared.stop.set(true);
    }
}

/// Given to the leader's work: tells it when leadership ends.
#[derive(Clone, Debug)]
pub struct Leadership {
    leading: Arc<Flag>,
}

impl Leadership {
    /// Whether this candidate still leads.
    pub fn is_leading(&self) -> bool {
        self.leading.get()
    }

    /// Resolves once leadership has ended: stop the leader's work then.
    pub async fn lost(&self) {
        self.leading.wait_for(false).await;
    }
}
