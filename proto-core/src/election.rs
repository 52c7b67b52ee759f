//! Lease-based leader election (client-go's `tools/leaderelection` with a
//! `coordination.k8s.io/v1` [`Lease`] lock) as a state machine. This module
//! owns the algorithm — when to read and write the Lease, when a lease held by
//! another candidate has expired, when our own leadership ends — and emits the
//! reads and writes as [`Action`]s. It does not talk to the API server, read a
//! clock or run the work a leader does.
//!
//! - Acquire and renew are a get followed by a create (on 404) or an update
//!   with the resourceVersion just read, so two candidates can never both
//!   succeed in overwriting the same record (optimistic concurrency).
//! - Whether another holder's lease is still valid is judged by the **local**
//!   clock only: the instant this candidate first saw the current record, plus
//!   the record's `leaseDurationSeconds`. The Lease's own timestamps only serve
//!   to notice that the record changed; clock skew between machines does not
//!   matter.
//! - A leader renews every retry period (first with an update of the Lease it
//!   last wrote, falling back to get + update). If no renewal succeeds within
//!   the renew deadline, counted from the moment the last successful write was
//!   *sent*, it stops leading. client-go counts the deadline from the start of
//!   each renew round, up to one retry period later; counting from the send
//!   keeps `lease duration > renew deadline` enough for one leader at a time
//!   whatever the network delays.
//! - A follower retries every retry period stretched by up to 1.2 of itself
//!   (`wait.JitterUntil(retryPeriod, 1.2)`), with jitter from the [`Rng`] the
//!   driver seeds.
//! - On [`stop`](LeaderElector::stop) (and after losing the lease) a leader
//!   releases it: get, then update with an empty holder and
//!   `leaseDurationSeconds: 1`, retried on conflict ([`DEFAULT_RETRY`]) until
//!   the renew deadline. [`Event::StoppedLeading`] comes out *before* the
//!   release, so the leader's work stops before anyone else can start.
//! - Every request has the renew deadline as its timeout; a result that comes
//!   later is ignored (the adapter should cancel the request then).
//!
//! | state | input | next state | outputs |
//! |---|---|---|---|
//! | following | attempt due | following | `Get` |
//! | following | `Get` → 404 | following | `Create` (holder = us) |
//! | following | `Get` → held by another, valid by the local clock | following | next attempt after `retry · (1 + rand · 1.2)` |
//! | following | `Get` → free, expired, or ours | following | `Update` (holder = us, resourceVersion as read) |
//! | following | `Create`/`Update` → ok | leading | `NewLeader(us)`, `StartedLeading` |
//! | following | error (404, 409, transport, timeout) | following | next attempt after `retry · (1 + rand · 1.2)` |
//! | leading | attempt due (`retry` after the last one) | leading | `Update` of the last written Lease, or `Get` if it expired locally |
//! | leading | fast `Update` → error | leading | `Get`, then as when following |
//! | leading | `Get` → held by another | releasing (stopped without release) | `StoppedLeading` |
//! | leading | `Update` → ok | leading | deadline = send time + renew deadline |
//! | leading | error | leading | next attempt after `retry` |
//! | leading | deadline passes, or `stop` | releasing (stopped without release) | `StoppedLeading` |
//! | following | `stop` | stopped (releasing if a write was in flight) | — |
//! | releasing | `Get` → held by us | releasing | `Update` (holder `""`, 1 s) |
//! | releasing | `Get` → held by another, or 404 | stopped | — |
//! | releasing | `Update` → 409 | releasing | `Get` after a [`DEFAULT_RETRY`] wait |
//! | releasing | `Update` → ok, other error, deadline | stopped | — |
//!
//! Observing a record whose holder differs from the last one reported emits
//! [`Event::NewLeader`] (a released, empty holder is not reported).
//!
//! The driving loop (here against a store that always answers at once):
//!
//! ```
//! use std::time::{Duration, Instant, SystemTime};
//! use windlass_proto::election::{Action, Config, Event, LeaderElector, LeaseError};
//! use windlass_proto::rand::Rng;
//!
//! let config = Config::new("pod-a", "kube-system", "my-controller");
//! let mut now = Instant::now();
//! let mut elector = LeaderElector::new(config, Rng::new(7), now, SystemTime::now()).unwrap();
//! let mut stored = None;
//! let mut events = Vec::new();
//! while !elector.is_stopped() {
//!     elector.handle_timeout(now);
//!     while let Some(action) = elector.poll_action() {
//!         let (id, result) = match action {              // the adapter sends these
//!             Action::Get { id } => (id, stored.clone().ok_or(LeaseError::NotFound)),
//!             Action::Create { id, lease } | Action::Update { id, lease } => {
//!                 stored = Some(*lease);
//!                 (id, Ok(stored.clone().unwrap()))
//!             }
//!         };
//!         elector.handle_result(id, result, now);
//!     }
//!     while let Some(event) = elector.poll_event() {
//!         if event == Event::StartedLeading {
//!             elector.stop(now);                         // the leader's work is done
//!         }
//!         events.push(event);
//!     }
//!     now = elector.poll_timeout().unwrap_or(now);       // sleep until then
//! }
//! assert_eq!(events, [Event::NewLeader("pod-a".into()), Event::StartedLeading, Event::StoppedLeading]);
//! let released = stored.unwrap().spec.unwrap();
//! assert_eq!(released.holder_identity.as_deref(), Some(""));
//! assert_eq!(released.lease_duration_seconds, Some(1));
//! ```

use std::collections::VecDeque;
use std::time::{Duration, Instant, SystemTime};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;

use crate::rand::Rng;
use crate::response::ApiError;
use crate::retry::{ConflictRetry, DEFAULT_RETRY};

/// client-go's `JitterFactor`: a follower waits `retry · (1 + rand · 1.2)`.
pub const JITTER_FACTOR: f64 = 1.2;
/// The recommended lease duration (component-base's default).
pub const DEFAULT_LEASE_DURATION: Duration = Duration::from_secs(15);
/// The recommended renew deadline.
pub const DEFAULT_RENEW_DEADLINE: Duration = Duration::from_secs(10);
/// The recommended retry period.
pub const DEFAULT_RETRY_PERIOD: Duration = Duration::from_secs(2);

/// What a candidate is called and how it times its attempts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// This candidate's identity, written as `holderIdentity`; unique among
    /// candidates (typically the pod name).
    pub identity: String,
    /// The Lease's namespace.
    pub namespace: String,
    /// The Lease's name.
    pub name: String,
    /// How long a follower waits after it last saw the record change before
    /// taking the lease over; written as `leaseDurationSeconds` (whole seconds).
    pub lease_duration: Duration,
    /// How long a leader keeps leading without a successful renewal.
    pub renew_deadline: Duration,
    /// How often a candidate tries to acquire or renew.
    pub retry_period: Duration,
    /// Whether to clear the holder on stop so another candidate need not wait
    /// for the lease to expire. client-go's default is off; windlass turns it on.
    pub release_on_cancel: bool,
}

impl Config {
    /// A candidate `identity` for the Lease `namespace/name`, with the
    /// recommended 15 s / 10 s / 2 s and release on stop.
    pub fn new(
        identity: impl Into<String>,
        namespace: impl Into<String>,
        name: impl Into<String>,
    ) -> Self {
        Self {
            identity: identity.into(),
            namespace: namespace.into(),
            name: name.into(),
            lease_duration: DEFAULT_LEASE_DURATION,
            renew_deadline: DEFAULT_RENEW_DEADLINE,
            retry_period: DEFAULT_RETRY_PERIOD,
            release_on_cancel: true,
        }
    }

    /// Checks client-go's rules: a non-empty identity and lease name, all
    /// durations above zero, and lease duration > renew deadline > 1.2 × retry
    /// period; and that the lease duration fits `leaseDurationSeconds`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.identity.is_empty() {
            return Err(ConfigError::EmptyIdentity);
        }
        if self.name.is_empty() {
            return Err(ConfigError::EmptyName);
        }
        if self.namespace.is_empty() {
            return Err(ConfigError::EmptyNamespace);
        }
        for (field, value) in [
            ("lease duration", self.lease_duration),
            ("renew deadline", self.renew_deadline),
            ("retry period", self.retry_period),
        ] {
            if value.is_zero() {
                return Err(ConfigError::NotPositive { field });
            }
        }
        if self.lease_duration <= self.renew_deadline {
            return Err(ConfigError::LeaseNotAboveRenew {
                lease_duration: self.lease_duration,
                renew_deadline: self.renew_deadline,
            });
        }
        let jittered = self.retry_period.mul_f64(JITTER_FACTOR);
        if self.renew_deadline <= jittered {
            return Err(ConfigError::RenewNotAboveRetry {
                renew_deadline: self.renew_deadline,
                retry_period: self.retry_period,
                jittered,
            });
        }
        let seconds = self.lease_duration.as_secs();
        if seconds > i32::MAX as u64 || Duration::from_secs(seconds) <= self.renew_deadline {
            return Err(ConfigError::LeaseSeconds {
                lease_duration: self.lease_duration,
                renew_deadline: self.renew_deadline,
            });
        }
        Ok(())
    }

    fn lease_duration_seconds(&self) -> i32 {
        // Validated to fit.
        self.lease_duration.as_secs() as i32
    }
}

/// A [`Config`] that breaks client-go's rules.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// No identity was given.
    #[error("leader election: the identity must not be empty")]
    EmptyIdentity,
    /// No Lease name was given.
    #[error("leader election: the lease name must not be empty")]
    EmptyName,
    /// No Lease namespace was given (a Lease is namespaced).
    #[error("leader election: the lease namespace must not be empty")]
    EmptyNamespace,
    /// A duration is zero.
    #[error("leader election: the {field} must be greater than zero")]
    NotPositive {
        /// Which duration.
        field: &'static str,
    },
    /// lease duration ≤ renew deadline.
    #[error(
        "leader election: the lease duration ({lease_duration:?}) must be greater than the renew deadline ({renew_deadline:?})"
    )]
    LeaseNotAboveRenew {
        /// The lease duration given.
        lease_duration: Duration,
        /// The renew deadline given.
        renew_deadline: Duration,
    },
    /// renew deadline ≤ 1.2 × retry period.
    #[error(
        "leader election: the renew deadline ({renew_deadline:?}) must be greater than 1.2 × the retry period ({retry_period:?}), that is {jittered:?}"
    )]
    RenewNotAboveRetry {
        /// The renew deadline given.
        renew_deadline: Duration,
        /// The retry period given.
        retry_period: Duration,
        /// 1.2 × the retry period.
        jittered: Duration,
    },
    /// The lease duration, in whole seconds, does not exceed the renew
    /// deadline or does not fit an `i32`.
    #[error(
        "leader election: the lease duration ({lease_duration:?}) is written in whole seconds, which must be greater than the renew deadline ({renew_deadline:?}) and at most 2^31 - 1"
    )]
    LeaseSeconds {
        /// The lease duration given.
        lease_duration: Duration,
        /// The renew deadline given.
        renew_deadline: Duration,
    },
}

/// Names one request, so a late result can be told from the current one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub u64);

/// A request the adapter performs on the Lease `config.namespace/config.name`.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// GET the Lease.
    Get {
        /// Passed back to [`LeaderElector::handle_result`].
        id: RequestId,
    },
    /// POST this Lease (it does not exist yet).
    Create {
        /// Passed back to [`LeaderElector::handle_result`].
        id: RequestId,
        /// The Lease to create.
        lease: Box<Lease>,
    },
    /// PUT this Lease; it carries the resourceVersion it was read at, so the
    /// server refuses it (409) if anyone wrote in between.
    Update {
        /// Passed back to [`LeaderElector::handle_result`].
        id: RequestId,
        /// The Lease to write.
        lease: Box<Lease>,
    },
}

impl Action {
    /// The id its result is handed back with.
    pub fn id(&self) -> RequestId {
        match self {
            Action::Get { id } | Action::Create { id, .. } | Action::Update { id, .. } => *id,
        }
    }
}

/// Why a request on the Lease failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LeaseError {
    /// 404: the Lease does not exist.
    #[error("lease not found")]
    NotFound,
    /// 409: someone else wrote first (or the Lease already exists, on create).
    #[error("lease conflict")]
    Conflict,
    /// Any other status, or no answer (connection error, timeout).
    #[error("lease request failed: {0}")]
    Failed(String),
}

impl LeaseError {
    /// What a failed Lease request means for the elector: a 404 is
    /// [`NotFound`](Self::NotFound); a 409, a stale write or a create that
    /// found the Lease already there, is a [`Conflict`](Self::Conflict);
    /// anything else (another status, or no status at all: `api` is `None`
    /// for a connection error or a timeout) [`Failed`](Self::Failed) with
    /// `error`'s message.
    pub fn from_api(api: Option<&ApiError>, error: &dyn std::fmt::Display) -> Self {
        match api {
            Some(api) if api.is_not_found() => LeaseError::NotFound,
            Some(api) if api.is_conflict() || api.is_already_exists() => LeaseError::Conflict,
            _ => LeaseError::Failed(error.to_string()),
        }
    }
}

/// What the elector tells its user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// This candidate leads: start the leader's work.
    StartedLeading,
    /// This candidate no longer leads: stop the leader's work now.
    StoppedLeading,
    /// The Lease names a new holder (possibly this candidate).
    NewLeader(String),
}

impl Event {
    /// Logs a start or end of leadership (`info`, with the Lease's name and
    /// `config`'s identity), as a runner does before acting on it; a new
    /// leader is not logged (the runner hands it to its user).
    pub fn trace(&self, config: &Config) {
        match self {
            Event::StartedLeading => {
                tracing::info!(lease = %config.name, identity = %config.identity, "started leading")
            }
            Event::StoppedLeading => {
                tracing::info!(lease = %config.name, identity = %config.identity, "stopped leading")
            }
            Event::NewLeader(_) => {}
        }
    }
}

/// One candidate in a Lease-based election.
#[derive(Debug)]
pub struct LeaderElector {
    config: Config,
    rng: Rng,
    epoch: (Instant, SystemTime),
    state: State,
    in_flight: Option<InFlight>,
    next_id: u64,
    /// When the next attempt (or release step) starts; `None` while one runs.
    next_attempt: Option<Instant>,
    /// The last Lease read or written, with its resourceVersion.
    observed: Option<Lease>,
    /// The local instant the observed record was first seen.
    observed_time: Option<Instant>,
    reported_leader: Option<String>,
    actions: VecDeque<Action>,
    events: VecDeque<Event>,
}

#[derive(Debug)]
enum State {
    Following,
    Leading {
        deadline: Instant,
    },
    Releasing {
        deadline: Instant,
        conflicts: ConflictRetry,
    },
    Stopped,
}

#[derive(Debug)]
struct InFlight {
    id: RequestId,
    step: Step,
    sent: Instant,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    FastRenew,
    Get,
    Create,
    Update,
    ReleaseGet,
    ReleaseUpdate,
}

impl LeaderElector {
    /// A candidate that starts trying to acquire the lease at `now`. `wall`
    /// is the wall-clock time at `now`: timestamps written into the Lease are
    /// `wall + (t - now)`, so the machine never reads a clock.
    pub fn new(
        config: Config,
        rng: Rng,
        now: Instant,
        wall: SystemTime,
    ) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(Self {
            config,
            rng,
            epoch: (now, wall),
            state: State::Following,
            in_flight: None,
            next_id: 0,
            next_attempt: Some(now),
            observed: None,
            observed_time: None,
            reported_leader: None,
            actions: VecDeque::new(),
            events: VecDeque::new(),
        })
    }

    // --- getters

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Whether this candidate leads.
    pub fn is_leader(&self) -> bool {
        matches!(self.state, State::Leading { .. })
    }

    /// Whether the elector is done (it stopped, released, or gave up after
    /// losing the lease). Like client-go's `Run`, it does not campaign again:
    /// make a new one for that.
    pub fn is_stopped(&self) -> bool {
        matches!(self.state, State::Stopped)
    }

    /// The holder of the last record seen (empty when released), if any.
    pub fn observed_leader(&self) -> Option<&str> {
        holder(self.observed.as_ref()?)
    }

    /// The last Lease read or written.
    pub fn observed_lease(&self) -> Option<&Lease> {
        self.observed.as_ref()
    }

    /// client-go's `Check(maxTolerableExpiration)`: a leader is unhealthy when
    /// it has not renewed for longer than the lease duration plus `tolerance`.
    pub fn is_healthy(&self, now: Instant, tolerance: Duration) -> bool {
        if !self.is_leader() {
            return true;
        }
        let Some(seen) = self.observed_time else {
            return true;
        };
        now.saturating_duration_since(seen) <= self.config.lease_duration + tolerance
    }

    // --- inputs

    /// The result of the request `id`: the Lease the server returned, or why
    /// it failed. Results of abandoned requests are ignored.
    pub fn handle_result(
        &mut self,
        id: RequestId,
        result: Result<Lease, LeaseError>,
        now: Instant,
    ) {
        self.expire(now);
        let Some(in_flight) = self.in_flight.take_if(|f| f.id == id) else {
            return;
        };
        self.step_done(in_flight, result, now);
    }

    /// Advances time to `now`: ends a leadership whose renew deadline passed,
    /// abandons a request that timed out, and starts the next attempt if due.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.expire(now);
        if self.in_flight.is_some() {
            return;
        }
        let Some(due) = self.next_attempt else {
            return;
        };
        if due > now {
            return;
        }
        self.next_attempt = None;
        match self.state {
            State::Following => self.send(Step::Get, None, now),
            State::Leading { .. } => match self.observed.clone() {
                Some(lease) if self.holds_record() && self.is_observed_valid(now) => {
                    let renewed = self.claim(lease, now);
                    self.send(Step::FastRenew, Some(renewed), now);
                }
                _ => self.send(Step::Get, None, now),
            },
            State::Releasing { .. } => self.send(Step::ReleaseGet, None, now),
            State::Stopped => {}
        }
    }

    /// Stops campaigning (the user's context was cancelled). A leader emits
    /// [`Event::StoppedLeading`] at once and then releases the lease if
    /// [`Config::release_on_cancel`].
    pub fn stop(&mut self, now: Instant) {
        match self.state {
            State::Leading { .. } => self.stop_leading(now),
            State::Following => {
                let write_in_flight = self
                    .in_flight
                    .as_ref()
                    .is_some_and(|f| matches!(f.step, Step::Create | Step::Update));
                if write_in_flight && self.config.release_on_cancel {
                    self.start_release(now);
                } else {
                    self.finish();
                }
            }
            State::Releasing { .. } | State::Stopped => {}
        }
    }

    // --- outputs

    /// The next request to perform.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// The next event for the user.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When to call [`handle_timeout`](Self::handle_timeout) next: the next
    /// attempt, a request's timeout, or the leader's renew deadline.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let deadline = match &self.state {
            State::Stopped => return None,
            State::Following => None,
            State::Leading { deadline } | State::Releasing { deadline, .. } => Some(*deadline),
        };
        let request_timeout = self
            .in_flight
            .as_ref()
            .map(|f| f.sent + self.config.renew_deadline);
        [deadline, request_timeout, self.next_attempt]
            .into_iter()
            .flatten()
            .min()
    }

    // --- the algorithm

    fn expire(&mut self, now: Instant) {
        match self.state {
            State::Leading { deadline } if now >= deadline => {
                tracing::info!(lease = %self.config.name, "failed to renew the lease within the renew deadline");
                self.stop_leading(now);
            }
            State::Releasing { deadline, .. } if now >= deadline => self.finish(),
            _ => {}
        }
        let timed_out = self
            .in_flight
            .as_ref()
            .is_some_and(|f| now >= f.sent + self.config.renew_deadline);
        if timed_out && let Some(in_flight) = self.in_flight.take() {
            self.step_done(in_flight, Err(LeaseError::Failed("timed out".into())), now);
        }
    }

    fn step_done(&mut self, in_flight: InFlight, result: Result<Lease, LeaseError>, now: Instant) {
        match (in_flight.step, result) {
            (Step::FastRenew | Step::Update | Step::Create, Ok(lease)) => {
                self.observe(lease, now);
                self.acquired(in_flight.sent, now);
            }
            (Step::FastRenew, Err(_)) => self.send(Step::Get, None, now),
            (Step::Get, Ok(lease)) => {
                self.observe(lease.clone(), now);
                let taken =
                    self.observed_leader().is_some_and(|h| !h.is_empty()) && !self.holds_record();
                if taken && self.is_leader() {
                    // Someone else holds the record we thought ours: we lost it.
                    tracing::info!(lease = %self.config.name, "the lease was taken over");
                    return self.stop_leading(now);
                }
                if !self.holds_record() && !self.is_free(now) {
                    return self.attempt_failed(now);
                }
                let claimed = self.claim(lease, now);
                self.send(Step::Update, Some(claimed), now);
            }
            (Step::Get, Err(LeaseError::NotFound)) => {
                let lease = self.fresh_lease(now);
                self.send(Step::Create, Some(lease), now);
            }
            (Step::Get | Step::Create | Step::Update, Err(error)) => {
                tracing::debug!(lease = %self.config.name, %error, "lease attempt failed");
                self.attempt_failed(now);
            }
            (Step::ReleaseGet, Ok(lease)) => {
                self.observe(lease.clone(), now);
                if !self.holds_record() {
                    return self.finish();
                }
                let released = self.released(lease, now);
                self.send(Step::ReleaseUpdate, Some(released), now);
            }
            (Step::ReleaseUpdate, Ok(lease)) => {
                self.observe(lease, now);
                self.finish();
            }
            (Step::ReleaseUpdate, Err(LeaseError::Conflict)) => {
                let State::Releasing { conflicts, .. } = &mut self.state else {
                    return self.finish();
                };
                match conflicts.next_delay() {
                    Some(wait) => self.next_attempt = Some(now + wait),
                    None => self.finish(),
                }
            }
            (Step::ReleaseGet | Step::ReleaseUpdate, Err(error)) => {
                tracing::info!(lease = %self.config.name, %error, "failed to release the lease");
                self.finish();
            }
        }
    }

    fn acquired(&mut self, sent: Instant, now: Instant) {
        let deadline = sent + self.config.renew_deadline;
        match self.state {
            State::Following => {
                self.state = State::Leading { deadline };
                self.events.push_back(Event::StartedLeading);
            }
            State::Leading { .. } => self.state = State::Leading { deadline },
            State::Releasing { .. } | State::Stopped => return,
        }
        self.next_attempt = Some(now + self.config.retry_period);
    }

    fn attempt_failed(&mut self, now: Instant) {
        let wait = match self.state {
            State::Following => self.rng.jitter(self.config.retry_period, JITTER_FACTOR),
            _ => self.config.retry_period,
        };
        self.next_attempt = Some(now + wait);
    }

    fn stop_leading(&mut self, now: Instant) {
        self.events.push_back(Event::StoppedLeading);
        if self.config.release_on_cancel {
            self.start_release(now);
        } else {
            self.finish();
        }
    }

    fn start_release(&mut self, now: Instant) {
        self.in_flight = None;
        let conflicts = ConflictRetry::new(DEFAULT_RETRY, self.rng.clone());
        self.state = State::Releasing {
            deadline: now + self.config.renew_deadline,
            conflicts,
        };
        self.next_attempt = Some(now);
    }

    fn finish(&mut self) {
        self.state = State::Stopped;
        self.in_flight = None;
        self.next_attempt = None;
    }

    fn send(&mut self, step: Step, lease: Option<Lease>, now: Instant) {
        let id = RequestId(self.next_id);
        self.next_id += 1;
        self.in_flight = Some(InFlight {
            id,
            step,
            sent: now,
        });
        self.next_attempt = None;
        let action = match (step, lease) {
            (Step::Create, Some(lease)) => Action::Create {
                id,
                lease: Box::new(lease),
            },
            (_, Some(lease)) => Action::Update {
                id,
                lease: Box::new(lease),
            },
            (_, None) => Action::Get { id },
        };
        self.actions.push_back(action);
    }

    /// Records a Lease read or written; a changed record restarts the local
    /// validity clock.
    fn observe(&mut self, lease: Lease, now: Instant) {
        let changed = self.observed.as_ref().map(|old| &old.spec) != Some(&lease.spec);
        if changed {
            self.observed_time = Some(now);
        }
        if let Some(name) = holder(&lease).filter(|h| !h.is_empty())
            && self.reported_leader.as_deref() != Some(name)
        {
            self.reported_leader = Some(name.to_owned());
            self.events.push_back(Event::NewLeader(name.to_owned()));
        }
        self.observed = Some(lease);
    }

    /// Whether the observed record names this candidate.
    fn holds_record(&self) -> bool {
        self.observed_leader() == Some(self.config.identity.as_str())
    }

    /// Whether the observed record may be taken: no holder, or its lease
    /// expired by the local clock.
    fn is_free(&self, now: Instant) -> bool {
        self.observed_leader().is_none_or(str::is_empty) || !self.is_observed_valid(now)
    }

    fn is_observed_valid(&self, now: Instant) -> bool {
        let (Some(lease), Some(seen)) = (&self.observed, self.observed_time) else {
            return false;
        };
        let seconds = lease
            .spec
            .as_ref()
            .and_then(|s| s.lease_duration_seconds)
            .unwrap_or(0)
            .max(0);
        // A duration too long to add to an instant never runs out.
        seen.checked_add(Duration::from_secs(seconds as u64))
            .is_none_or(|until| until > now)
    }

    /// `lease` with this candidate as holder, renewed at `now`; acquire time
    /// and transitions kept when we already held it (client-go's rule).
    fn claim(&self, mut lease: Lease, now: Instant) -> Lease {
        let held = holder(&lease) == Some(self.config.identity.as_str());
        let stamp = self.wall(now);
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        if !held {
            spec.acquire_time = Some(stamp.clone());
            spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0).saturating_add(1));
        }
        spec.holder_identity = Some(self.config.identity.clone());
        spec.lease_duration_seconds = Some(self.config.lease_duration_seconds());
        spec.renew_time = Some(stamp);
        lease
    }

    fn fresh_lease(&self, now: Instant) -> Lease {
        let stamp = self.wall(now);
        Lease {
            metadata: ObjectMeta {
                name: Some(self.config.name.clone()),
                namespace: Some(self.config.namespace.clone()),
                ..ObjectMeta::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(self.config.identity.clone()),
                lease_duration_seconds: Some(self.config.lease_duration_seconds()),
                acquire_time: Some(stamp.clone()),
                renew_time: Some(stamp),
                lease_transitions: Some(0),
                ..LeaseSpec::default()
            }),
        }
    }

    fn released(&self, mut lease: Lease, now: Instant) -> Lease {
        let stamp = self.wall(now);
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        spec.holder_identity = Some(String::new());
        spec.lease_duration_seconds = Some(1);
        spec.acquire_time = Some(stamp.clone());
        spec.renew_time = Some(stamp);
        lease
    }

    fn wall(&self, now: Instant) -> MicroTime {
        let (instant, wall) = self.epoch;
        let at = match now.checked_duration_since(instant) {
            Some(after) => wall.checked_add(after),
            None => wall.checked_sub(instant - now),
        };
        let timestamp = at
            .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
            .and_then(|d| {
                Timestamp::new(i64::try_from(d.as_secs()).ok()?, d.subsec_nanos() as i32).ok()
            })
            .unwrap_or(Timestamp::UNIX_EPOCH);
        MicroTime(timestamp)
    }
}

fn holder(lease: &Lease) -> Option<&str> {
    lease.spec.as_ref()?.holder_identity.as_deref()
}

#[cfg(test)]
mod tests;
