//! Leader election over a shared, simulated Lease store: several candidates,
//! each with its own clock (offset and rate), a network that delays, drops
//! and loses requests and responses, and a store with resourceVersion-based
//! optimistic concurrency. The property: at no instant do two candidates
//! lead.

use std::time::{Duration, Instant, SystemTime};

use k8s_openapi::api::coordination::v1::Lease;
use proptest::prelude::*;
use windlass_proto::election::{Action, Config, Event, LeaderElector, LeaseError, RequestId};
use windlass_proto::rand::Rng;

/// The API server's view of one Lease.
#[derive(Default)]
struct LeaseStore {
    lease: Option<Lease>,
    resource_version: u64,
}

impl LeaseStore {
    fn get(&self) -> Result<Lease, LeaseError> {
        self.lease.clone().ok_or(LeaseError::NotFound)
    }

    fn create(&mut self, lease: Lease) -> Result<Lease, LeaseError> {
        if self.lease.is_some() {
            return Err(LeaseError::Conflict); // AlreadyExists
        }
        self.store(lease)
    }

    fn update(&mut self, lease: Lease) -> Result<Lease, LeaseError> {
        let Some(current) = &self.lease else {
            return Err(LeaseError::NotFound);
        };
        if lease.metadata.resource_version != current.metadata.resource_version {
            return Err(LeaseError::Conflict);
        }
        self.store(lease)
    }

    fn store(&mut self, mut lease: Lease) -> Result<Lease, LeaseError> {
        self.resource_version += 1;
        lease.metadata.resource_version = Some(self.resource_version.to_string());
        self.lease = Some(lease.clone());
        Ok(lease)
    }

    fn holder(&self) -> Option<&str> {
        self.lease
            .as_ref()?
            .spec
            .as_ref()?
            .holder_identity
            .as_deref()
    }
}

/// A candidate's clock: `local = base + offset + real · rate / 10^6`.
#[derive(Clone, Copy, Debug)]
struct Clock {
    offset_ns: u64,
    rate_ppm: u64,
}

impl Clock {
    fn local(&self, base: Instant, real_ns: u64) -> Instant {
        let scaled = u128::from(real_ns) * u128::from(self.rate_ppm) / 1_000_000;
        base + Duration::from_nanos(self.offset_ns + scaled as u64)
    }

    /// The first real instant at which the local clock reads `at` or later.
    fn real_at(&self, base: Instant, at: Instant, not_before: u64) -> u64 {
        let local = at.saturating_duration_since(base).as_nanos();
        let since = local.saturating_sub(u128::from(self.offset_ns));
        let mut real = (since * 1_000_000).div_ceil(u128::from(self.rate_ppm)) as u64;
        while self.local(base, real) < at {
            real += 1;
        }
        real.max(not_before)
    }
}

/// What the network does with one request.
#[derive(Clone, Copy, Debug)]
enum Fate {
    /// Applied; the answer arrives.
    Deliver,
    /// Lost before the server; the client sees a connection error.
    DropRequest,
    /// Applied, but the client sees a connection error (a lost update).
    DropResponse,
    /// Applied, and no answer ever comes (the client times out).
    Silence,
}

#[derive(Clone, Copy, Debug)]
struct Hop {
    fate: Fate,
    to_server: Duration,
    to_client: Duration,
}

enum Message {
    Request {
        action: Action,
        hop: Hop,
    },
    Response {
        id: RequestId,
        result: Box<Result<Lease, LeaseError>>,
    },
}

struct Candidate {
    elector: LeaderElector,
    host: usize,
    leading_by_events: bool,
}

struct Sim {
    base: Instant,
    real: u64,
    clocks: Vec<Clock>,
    candidates: Vec<Candidate>,
    store: LeaseStore,
    in_flight: Vec<(u64, u64, usize, Message)>,
    seq: u64,
    hops: Vec<Hop>,
    next_hop: usize,
    config: Config,
    seed: u64,
    /// (real time, candidate) of every StartedLeading.
    started: Vec<(u64, usize)>,
    /// Whether a stopped candidate's host starts a fresh candidate.
    respawn: bool,
}

impl Sim {
    fn new(clocks: Vec<Clock>, hops: Vec<Hop>, config: Config, seed: u64) -> Self {
        let base = Instant::now();
        let mut sim = Sim {
            base,
            real: 0,
            clocks,
            candidates: Vec::new(),
            store: LeaseStore::default(),
            in_flight: Vec::new(),
            seq: 0,
            hops,
            next_hop: 0,
            config,
            seed,
            started: Vec::new(),
            respawn: true,
        };
        for host in 0..sim.clocks.len() {
            sim.spawn(host);
        }
        sim
    }

    fn spawn(&mut self, host: usize) {
        let index = self.candidates.len();
        let mut config = self.config.clone();
        config.identity = format!("host{host}-gen{index}");
        let now = self.local(host);
        // Wall clocks disagree by the same offsets as the monotonic ones.
        let wall = SystemTime::UNIX_EPOCH
            + Duration::from_secs(1_700_000_000)
            + Duration::from_nanos(self.clocks[host].offset_ns);
        let rng = Rng::new(self.seed ^ (index as u64).wrapping_mul(0x9e37_79b9));
        let elector = LeaderElector::new(config, rng, now, wall).expect("valid config");
        self.candidates.push(Candidate {
            elector,
            host,
            leading_by_events: false,
        });
    }

    fn local(&self, host: usize) -> Instant {
        self.clocks[host].local(self.base, self.real)
    }

    fn hop(&mut self) -> Hop {
        let hop = self.hops[self.next_hop % self.hops.len()];
        self.next_hop += 1;
        hop
    }

    fn send(&mut self, at: u64, to: usize, message: Message) {
        self.seq += 1;
        self.in_flight.push((at, self.seq, to, message));
    }

    /// Drains a candidate's outputs after an input.
    fn drain(&mut self, c: usize) {
        while let Some(action) = self.candidates[c].elector.poll_action() {
            let hop = self.hop();
            let at = self.real + hop.to_server.as_nanos() as u64;
            match hop.fate {
                Fate::DropRequest => {
                    let id = action_id(&action);
                    let result = Err(LeaseError::Failed("connection reset".into()));
                    self.send(
                        at,
                        c,
                        Message::Response {
                            id,
                            result: Box::new(result),
                        },
                    );
                }
                _ => self.send(at, c, Message::Request { action, hop }),
            }
        }
        while let Some(event) = self.candidates[c].elector.poll_event() {
            match event {
                Event::StartedLeading => {
                    assert!(!self.candidates[c].leading_by_events);
                    self.candidates[c].leading_by_events = true;
                    self.started.push((self.real, c));
                }
                Event::StoppedLeading => {
                    assert!(self.candidates[c].leading_by_events);
                    self.candidates[c].leading_by_events = false;
                }
                Event::NewLeader(_) => {}
            }
        }
        assert_eq!(
            self.candidates[c].leading_by_events,
            self.candidates[c].elector.is_leader()
        );
    }

    /// Runs until `until` (real time); `stops` are (real time, host) at which
    /// that host's current candidate stops and a fresh one is started.
    fn run(&mut self, until: u64, mut stops: Vec<(u64, usize)>) -> Result<(), String> {
        stops.sort();
        stops.reverse();
        for steps in 0.. {
            if steps > 200_000 {
                return Err("no progress".into());
            }
            // The earliest of: a candidate's timeout, a message, a stop.
            let mut next: Option<(u64, u8, u64, usize)> = None;
            let mut consider = |t: (u64, u8, u64, usize)| {
                if next.is_none_or(|n| t < n) {
                    next = Some(t);
                }
            };
            for (c, cand) in self.candidates.iter().enumerate() {
                if let Some(at) = cand.elector.poll_timeout() {
                    let real = self.clocks[cand.host].real_at(self.base, at, self.real);
                    consider((real, 0, 0, c));
                }
            }
            for (i, (at, seq, _, _)) in self.in_flight.iter().enumerate() {
                consider((*at, 1, *seq, i));
            }
            if let Some(&(at, host)) = stops.last() {
                consider((at, 2, 0, host));
            }
            let Some((at, kind, _, which)) = next else {
                return Ok(());
            };
            if at > until {
                return Ok(());
            }
            self.real = at;
            match kind {
                0 => {
                    let now = self.local(self.candidates[which].host);
                    self.candidates[which].elector.handle_timeout(now);
                    self.drain(which);
                }
                1 => {
                    let (_, _, c, message) = self.in_flight.swap_remove(which);
                    self.deliver(c, message);
                }
                _ => {
                    stops.pop();
                    let c = self.current(which);
                    let now = self.local(which);
                    self.candidates[c].elector.stop(now);
                    self.drain(c);
                    if self.respawn {
                        self.spawn(which);
                    }
                }
            }
            let leaders: Vec<_> = self
                .candidates
                .iter()
                .filter(|c| c.elector.is_leader())
                .map(|c| c.elector.config().identity.clone())
                .collect();
            if leaders.len() > 1 {
                return Err(format!(
                    "two leaders at {:?}: {leaders:?}",
                    Duration::from_nanos(self.real)
                ));
            }
        }
        Ok(())
    }

    fn deliver(&mut self, c: usize, message: Message) {
        match message {
            Message::Response { id, result } => {
                let now = self.local(self.candidates[c].host);
                self.candidates[c].elector.handle_result(id, *result, now);
                self.drain(c);
            }
            Message::Request { action, hop } => {
                let id = action_id(&action);
                let result = match action {
                    Action::Get { .. } => self.store.get(),
                    Action::Create { lease, .. } => self.store.create(*lease),
                    Action::Update { lease, .. } => self.store.update(*lease),
                };
                let at = self.real + hop.to_client.as_nanos() as u64;
                match hop.fate {
                    Fate::Deliver => self.send(
                        at,
                        c,
                        Message::Response {
                            id,
                            result: Box::new(result),
                        },
                    ),
                    Fate::DropResponse => {
                        let result = Err(LeaseError::Failed("unexpected EOF".into()));
                        self.send(
                            at,
                            c,
                            Message::Response {
                                id,
                                result: Box::new(result),
                            },
                        );
                    }
                    Fate::Silence | Fate::DropRequest => {}
                }
            }
        }
    }

    fn current(&self, host: usize) -> usize {
        self.candidates
            .iter()
            .rposition(|c| c.host == host)
            .expect("every host has a candidate")
    }

    fn leader(&self) -> Option<usize> {
        self.candidates.iter().position(|c| c.elector.is_leader())
    }
}

fn action_id(action: &Action) -> RequestId {
    match action {
        Action::Get { id } | Action::Create { id, .. } | Action::Update { id, .. } => *id,
    }
}

const SECOND: u64 = 1_000_000_000;

fn config() -> Config {
    Config::new("unset", "kube-system", "sim-lock")
}

fn hop() -> impl Strategy<Value = Hop> {
    let fate = prop_oneof![
        12 => Just(Fate::Deliver),
        1 => Just(Fate::DropRequest),
        1 => Just(Fate::DropResponse),
        1 => Just(Fate::Silence),
    ];
    // Mostly quick, sometimes very slow (past the renew deadline).
    let delay = prop_oneof![
        10 => (0u64..300).prop_map(Duration::from_millis),
        1 => (0u64..13_000).prop_map(Duration::from_millis),
    ];
    (fate, delay.clone(), delay).prop_map(|(fate, to_server, to_client)| Hop {
        fate,
        to_server,
        to_client,
    })
}

/// Offsets up to 1000 s apart, rates up to 10 % fast or slow.
fn clock() -> impl Strategy<Value = Clock> {
    (0u64..1000 * SECOND, 900_000u64..1_100_000).prop_map(|(offset_ns, rate_ppm)| Clock {
        offset_ns,
        rate_ppm,
    })
}

fn stops(hosts: usize) -> impl Strategy<Value = Vec<(u64, usize)>> {
    proptest::collection::vec((0u64..120 * SECOND, 0..hosts), 0..4)
}

fn check(
    clocks: Vec<Clock>,
    hops: Vec<Hop>,
    stops: Vec<(u64, usize)>,
    seed: u64,
) -> Result<Sim, TestCaseError> {
    let mut sim = Sim::new(clocks, hops, config(), seed);
    sim.run(180 * SECOND, stops).map_err(TestCaseError::fail)?;
    Ok(sim)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn election_two_candidates_never_lead_at_once_under_skew_delays_and_lost_updates(
        clocks in proptest::collection::vec(clock(), 2),
        hops in proptest::collection::vec(hop(), 1..64),
        stops in stops(2),
        seed in any::<u64>(),
    ) {
        check(clocks, hops, stops, seed)?;
    }

    #[test]
    fn election_three_candidates_never_lead_at_once_under_skew_delays_and_lost_updates(
        clocks in proptest::collection::vec(clock(), 3),
        hops in proptest::collection::vec(hop(), 1..64),
        stops in stops(3),
        seed in any::<u64>(),
    ) {
        check(clocks, hops, stops, seed)?;
    }

    /// With a reliable network someone always ends up leading, so the
    /// safety properties above are not met by a machine that never leads.
    #[test]
    fn election_reliable_network_elects_a_leader_within_one_jittered_retry(
        clocks in proptest::collection::vec(clock(), 2..4),
        seed in any::<u64>(),
    ) {
        let reliable = vec![Hop { fate: Fate::Deliver, to_server: Duration::from_millis(1), to_client: Duration::from_millis(1) }];
        let sim = check(clocks, reliable, Vec::new(), seed)?;
        prop_assert!(sim.leader().is_some());
        prop_assert_eq!(sim.started.len(), 1, "one leader for the whole run: {:?}", sim.started);
        prop_assert!(sim.started[0].0 < SECOND, "the first attempt of the first candidate wins");
    }
}

/// A stopped leader releases the lease, and a follower takes over at its next
/// attempt: within one jittered retry period (2 s · (1 + 1.2) at most) of the
/// stop, instead of waiting out the 15 s lease.
#[test]
fn lease_stopped_leader_releases_and_another_takes_over_within_one_retry_period() {
    let max_retry = Duration::from_secs(2).mul_f64(2.2).as_nanos() as u64;
    let latency = Duration::from_millis(5);
    let reliable = vec![Hop {
        fate: Fate::Deliver,
        to_server: latency,
        to_client: latency,
    }];
    let mut slowest = 0;
    for seed in 0..200u64 {
        for hosts in [2, 3] {
            let clocks = (0..hosts)
                .map(|h| Clock {
                    offset_ns: h as u64 * 77 * SECOND,
                    rate_ppm: 1_000_000,
                })
                .collect();
            let mut sim = Sim::new(clocks, reliable.clone(), config(), seed);
            sim.respawn = false;
            sim.run(30 * SECOND, Vec::new()).unwrap();
            let leader = sim.leader().expect("a leader");
            let stop_at = 30 * SECOND + seed * 10_000_000; // anywhere in the retry cycle
            let host = sim.candidates[leader].host;
            sim.run(stop_at + 10 * SECOND, vec![(stop_at, host)])
                .unwrap();
            let &(took_over, by) = sim.started.last().unwrap();
            assert_ne!(by, leader, "seed {seed}: someone else leads");
            assert!(
                sim.candidates[leader].elector.is_stopped(),
                "released and done"
            );
            let after = took_over - stop_at;
            assert!(
                after <= max_retry + 4 * latency.as_nanos() as u64,
                "seed {seed}, {hosts} hosts: took over {:?} after the stop",
                Duration::from_nanos(after)
            );
            slowest = slowest.max(after);
            // The released record: the old holder cleared it with a 1 s duration
            // before the new holder wrote.
            assert_eq!(
                sim.store.holder(),
                Some(sim.candidates[by].elector.config().identity.as_str())
            );
        }
    }
    assert!(
        slowest > 2 * SECOND,
        "the jitter was exercised: slowest {slowest} ns"
    );
}

/// Without release, the follower must wait out the lease by its own clock.
#[test]
fn lease_without_release_is_taken_only_after_the_lease_duration() {
    let latency = Duration::from_millis(5);
    let reliable = vec![Hop {
        fate: Fate::Deliver,
        to_server: latency,
        to_client: latency,
    }];
    let mut cfg = config();
    cfg.release_on_cancel = false;
    let clocks = vec![
        Clock {
            offset_ns: 0,
            rate_ppm: 1_000_000,
        },
        Clock {
            offset_ns: 5 * SECOND,
            rate_ppm: 1_000_000,
        },
    ];
    let mut sim = Sim::new(clocks, reliable, cfg, 9);
    sim.respawn = false;
    sim.run(10 * SECOND, Vec::new()).unwrap();
    let leader = sim.leader().unwrap();
    let host = sim.candidates[leader].host;
    let stop_at = 10 * SECOND;
    sim.run(60 * SECOND, vec![(stop_at, host)]).unwrap();
    let &(took_over, by) = sim.started.last().unwrap();
    assert_ne!(by, leader);
    let after = took_over - stop_at;
    // The last renewal was at most one retry period before the stop; the
    // follower waits 15 s from when it saw it, plus at most one jittered retry.
    assert!(after >= 13 * SECOND - SECOND / 10, "waited {after} ns");
    assert!(after <= 15 * SECOND + 5 * SECOND, "waited {after} ns");
}
