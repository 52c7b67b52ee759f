//! The deterministic simulation: the pure API server model and windlass's
//! informer machinery (reflector → FIFO → indexer → handlers) in one thread,
//! in simulated time, under a seeded schedule of workload and faults. This
//! is what sans-IO buys: a network and an API server misbehaving in every
//! way we know, thousands of times a second, each run replayable from its seed.
//!
//! This module owns the schedule ([`Schedule`]), the world that plays the
//! runtime adapter and the network ([`run`]), and the invariants; it owns
//! no Kubernetes behaviour of its own — the server is [`crate::model`], the
//! client is `windlass_proto::informer`.
//!
//! ```
//! use windlass_testkit::sim::{Options, run};
//!
//! let outcome = run(&Options::seed(7));
//! assert!(outcome.divergence.is_none(), "{}", outcome.replay_command());
//! ```
//!
//! # One run
//!
//! The world is an adapter loop: it drains the informer's actions (each
//! `Send` is routed into the model: the URI's path and query become
//! `ListParams`/`WatchParams`; each `Cancel` closes the connection), hands
//! notifications to two handlers (one from the start, one added late, which
//! gets a replay), and then advances time to the earliest of the informer's
//! `poll_timeout` (→ `handle_timeout`) and the next thing due: a workload
//! write, a timed fault, a bookmark round, or the next piece of a
//! connection — its head, a chunk of its body of any size, then EOF or a
//! transport error. Answers are real HTTP heads and JSON bodies; a watch is
//! a stream of JSON event lines, written as the model's watch yields events
//! after each write.
//!
//! # Faults
//!
//! While faults last (`Schedule::faults_end`), each response may be a 429,
//! 500 or 503 with Retry-After; be reset at any byte offset (the head
//! included); stall at any offset until the client's deadline; a watch-list
//! may lose its end bookmark; a continue request may find history compacted
//! (410 Expired with a fresh token). Timed faults: compaction (the client's
//! RV becomes too old), a server restart (watches drop, the watch cache
//! starts over, RVs are kept; connections are refused for a few seconds),
//! a watch cache held back (too-large RV answers), watch-list refused (422),
//! and outages where every request fails. Small watch caches make bursts
//! push a disconnected client's RV out of the window.
//!
//! # Invariants
//!
//! After every run: the store equals the server's state in the informer's
//! scope (same keys, same RVs) once faults stopped [`schedule::SETTLE`]
//! ago; every key deleted on the server is gone from the store and each
//! handler that knew it was told (delete or tombstone); each handler's
//! notifications are consistent one by one (no Add of a held key, Update
//! and Resync from the held RV, no Delete of an unknown key) and replay to
//! the store; the request rate respects the bound derived from the backoff
//! rules (see `check::RateBound`); nothing panics (each run is caught, so
//! one failing seed is reported, not a crash).

mod check;
pub mod schedule;
mod world;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Duration;

pub use schedule::Schedule;
pub use windlass_proto::informer::Mutation;

/// How to run one seed.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// The seed: it decides the schedule and every draw of the network.
    pub seed: u64,
    /// A deliberate bug in the informer (the `sim_detects_*` tests).
    pub mutation: Mutation,
    /// Keep a readable trace of the run.
    pub trace: bool,
}

impl Options {
    /// The real informer on `seed`, without a trace.
    pub fn seed(seed: u64) -> Self {
        Self {
            seed,
            ..Self::default()
        }
    }
}

/// What one run found.
#[derive(Debug)]
pub struct Outcome {
    /// The seed.
    pub seed: u64,
    /// The first invariant that broke, or the panic.
    pub divergence: Option<String>,
    /// Requests the informer sent.
    pub requests: u64,
    /// Simulated time covered.
    pub simulated: Duration,
    /// The trace, when asked for.
    pub trace: Vec<String>,
}

impl Outcome {
    /// The one-line command that replays exactly this run, with its trace.
    pub fn replay_command(&self) -> String {
        format!(
            "cargo run --release -p windlass-testkit --bin simulate -- --seed {} --trace",
            self.seed
        )
    }
}

/// Runs one seed and checks the invariants. Never panics: a panic in the
/// informer or the model is reported as a divergence.
pub fn run(options: &Options) -> Outcome {
    let schedule = Schedule::generate(options.seed);
    let mut world = None;
    let result = catch_unwind(AssertUnwindSafe(|| {
        let w = world.insert(world::World::new(schedule, options.mutation, options.trace));
        w.run()
    }));
    let trace = world
        .as_mut()
        .map(world::World::take_trace)
        .unwrap_or_default();
    match result {
        Ok(report) => Outcome {
            seed: options.seed,
            divergence: report.divergence,
            requests: report.requests,
            simulated: report.simulated,
            trace,
        },
        Err(panic) => {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_else(|| "a panic without a message".into());
            Outcome {
                seed: options.seed,
                divergence: Some(format!("panic: {message}")),
                requests: 0,
                simulated: Duration::ZERO,
                trace,
            }
        }
    }
}

/// Runs `seeds` (with `mutation`) and returns the outcomes that diverged,
/// stopping after `stop_after` of them.
pub fn find_divergences(
    seeds: impl IntoIterator<Item = u64>,
    mutation: Mutation,
    stop_after: usize,
) -> Vec<Outcome> {
    let mut found = Vec::new();
    for seed in seeds {
        let outcome = run(&Options {
            seed,
            mutation,
            trace: false,
        });
        if outcome.divergence.is_some() {
            found.push(outcome);
            if found.len() >= stop_after {
                break;
            }
        }
    }
    found
}
