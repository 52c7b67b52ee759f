//! The leader-election runner: drives windlass-proto's
//! [`LeaderElector`](proto::LeaderElector) with a `coordination.k8s.io/v1`
//! Lease lock, on the calling thread.
//!
//! proto decides when to read and write the Lease, whether another holder's
//! lease is still valid, when leadership ends and how to release it; this
//! module performs the reads and writes through the [`Client`] (each on a
//! thread of its own, so a slow request never holds up the renew deadline),
//! sleeps until `poll_timeout`, and runs the leader's work on a thread
//! while it leads.
//!
//! ```no_run
//! # fn demo(client: windlass_blocking::Client) -> Result<(), windlass_blocking::Error> {
//! use windlass_proto::election::Config;
//! use windlass_blocking::LeaderElector;
//!
//! let elector = LeaderElector::new(client, Config::new("pod-a", "kube-system", "my-controller"))?;
//! let handle = elector.handle(); // handle.stop() gives the lease up
//! elector.run(|leadership| {
//!     println!("leading");
//!     leadership.lost(); // do the leader's work until then
//! })?;
//! # Ok(()) }
//! ```

use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use k8s_openapi::api::coordination::v1::Lease;
use windlass_proto::election::{self as proto, Action, Config, Event, LeaseError, RequestId};
use windlass_proto::rand::Rng;
use windlass_proto::request::PostParams;

use crate::{Api, Client, Error};

/// What [`LeaderElector::on_new_leader`] calls.
type OnNewLeader = Box<dyn FnMut(&str) + Send>;

/// One candidate in a Lease-based election.
pub struct LeaderElector {
    client: Client,
    config: Config,
    on_new_leader: Option<OnNewLeader>,
    shared: Arc<Shared>,
    inbox: Receiver<Input>,
}

impl std::fmt::Debug for LeaderElector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeaderElector")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

struct Shared {
    state: Mutex<Leading>,
    /// Signalled when leadership starts or ends.
    changed: Condvar,
    /// The driving loop's inbox (results, stop, the leader's work ending).
    inbox: Sender<Input>,
}

#[derive(Default)]
struct Leading {
    leading: bool,
    leader: Option<String>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Leading> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn set_leading(&self, leading: bool) {
        self.lock().leading = leading;
        self.changed.notify_all();
    }
}

/// What reaches the driving loop.
enum Input {
    Result(RequestId, Box<Result<Lease, LeaseError>>),
    Stop,
    WorkDone,
}

impl LeaderElector {
    /// A candidate for the Lease `config.namespace/config.name`; the
    /// configuration must keep client-go's rules.
    pub fn new(client: Client, config: Config) -> Result<Self, Error> {
        config.validate()?;
        let (tx, inbox) = channel();
        Ok(Self {
            client,
            config,
            on_new_leader: None,
            shared: Arc::new(Shared {
                state: Mutex::new(Leading::default()),
                changed: Condvar::new(),
                inbox: tx,
            }),
            inbox,
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

    /// Campaigns until stopped. On acquiring the lease, `lead` runs on a
    /// thread of its own with a [`Leadership`] whose
    /// [`lost`](Leadership::lost) returns when leadership ends (lost, not
    /// renewed within the renew deadline, or [`ElectorHandle::stop`]). When
    /// `lead` returns by itself the elector stops too. With
    /// `release_on_cancel` the Lease is released before this returns; it
    /// returns after `lead` has returned and its thread was joined.
    pub fn run<F>(mut self, lead: F) -> Result<(), Error>
    where
        F: FnOnce(Leadership) + Send + 'static,
    {
        let leases: Api<Lease> = Api::namespaced(self.client.clone(), &self.config.namespace)?;
        let mut machine = proto::LeaderElector::new(
            self.config.clone(),
            Rng::new(crate::seed()),
            Instant::now(),
            SystemTime::now(),
        )?;
        let mut lead = Some(lead);
        let mut work: Option<JoinHandle<()>> = None;
        // The driving loop: perform, report, sleep until a result or the deadline.
        while !machine.is_stopped() {
            while let Some(action) = machine.poll_action() {
                let leases = leases.clone();
                let name = self.config.name.clone();
                let inbox = self.shared.inbox.clone();
                std::thread::spawn(move || perform(&leases, &name, action, &inbox));
            }
            while let Some(event) = machine.poll_event() {
                self.report(event, &mut lead, &mut work);
            }
            let wait = machine
                .poll_timeout()
                .map_or(Duration::from_secs(3600), |at| {
                    at.saturating_duration_since(Instant::now())
                });
            match self.inbox.recv_timeout(wait) {
                Ok(Input::Result(id, result)) => machine.handle_result(id, *result, Instant::now()),
                Ok(Input::Stop | Input::WorkDone) => machine.stop(Instant::now()),
                Err(RecvTimeoutError::Timeout) => machine.handle_timeout(Instant::now()),
                // `shared` holds a sender, so this never happens; stopping is the safe reading.
                Err(RecvTimeoutError::Disconnected) => machine.stop(Instant::now()),
            }
        }
        while let Some(event) = machine.poll_event() {
            self.report(event, &mut lead, &mut work);
        }
        self.shared.set_leading(false);
        if let Some(thread) = work {
            let _ = thread.join();
        }
        Ok(())
    }

    fn report<F>(&mut self, event: Event, lead: &mut Option<F>, work: &mut Option<JoinHandle<()>>)
    where
        F: FnOnce(Leadership) + Send + 'static,
    {
        event.trace(&self.config);
        match event {
            Event::StartedLeading => {
                self.shared.set_leading(true);
                if let Some(lead) = lead.take() {
                    let leadership = Leadership {
                        shared: self.shared.clone(),
                    };
                    let inbox = self.shared.inbox.clone();
                    *work = Some(std::thread::spawn(move || {
                        lead(leadership);
                        let _ = inbox.send(Input::WorkDone);
                    }));
                }
            }
            Event::StoppedLeading => {
                self.shared.set_leading(false);
            }
            Event::NewLeader(identity) => {
                self.shared.lock().leader = Some(identity.clone());
                if let Some(f) = &mut self.on_new_leader {
                    f(&identity);
                }
            }
        }
    }
}

/// Performs one read or write of the Lease and reports its result.
fn perform(leases: &Api<Lease>, name: &str, action: Action, inbox: &Sender<Input>) {
    let (id, result) = match action {
        Action::Get { id } => (id, leases.get(name)),
        Action::Create { id, lease } => (id, leases.create(&PostParams::default(), &lease)),
        Action::Update { id, lease } => (id, leases.replace(name, &PostParams::default(), &lease)),
    };
    let result = result.map_err(|e| LeaseError::from_api(e.api(), &e));
    let _ = inbox.send(Input::Result(id, Box::new(result)));
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
        self.shared.lock().leading
    }

    /// The last holder observed (this candidate or another).
    pub fn leader(&self) -> Option<String> {
        self.shared.lock().leader.clone()
    }

    /// Stops campaigning: a leader stops leading at once, then releases the
    /// Lease (with `release_on_cancel`); [`LeaderElector::run`] then returns.
    pub fn stop(&self) {
        let _ = self.shared.inbox.send(Input::Stop);
    }
}

/// Given to the leader's work: tells it when leadership ends.
#[derive(Clone)]
pub struct Leadership {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Leadership {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Leadership")
            .field("is_leading", &self.is_leading())
            .finish()
    }
}

impl Leadership {
    /// Whether this candidate still leads.
    pub fn is_leading(&self) -> bool {
        self.shared.lock().leading
    }

    /// Waits until leadership has ended: stop the leader's work then.
    pub fn lost(&self) {
        let mut state = self.shared.lock();
        while state.leading {
            state = self
                .shared
                .changed
                .wait(state)
                .unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Waits at most `timeout` for leadership to end; whether it has (a
    /// leader doing periodic work calls this between rounds).
    pub fn lost_within(&self, timeout: Duration) -> bool {
        let state = self.shared.lock();
        let (state, _) = self
            .shared
            .changed
            .wait_timeout_while(state, timeout, |s| s.leading)
            .unwrap_or_else(|e| e.into_inner());
        !state.leading
    }
}
