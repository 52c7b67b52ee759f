//! A schedule: everything one simulation run does, drawn from its seed
//! before it starts — the informer's settings, the server's settings, the
//! workload and the timed server faults, and the rates of the per-response
//! faults the network applies while faults last. The network's own draws
//! (latencies, chunk sizes, which response fails and where) come from a
//! second generator seeded from the same seed, so a seed replays exactly.

use std::time::Duration;

use windlass_proto::informer::{FifoKind, RelistMode};
use windlass_proto::rand::Rng;

/// The namespaces the workload writes to (they exist on a fresh model server).
pub const NAMESPACES: [&str; 3] = ["default", "kube-system", "kube-public"];
/// Names per namespace: a small pool, so deleted names come back.
pub const NAMES_PER_NAMESPACE: u64 = 8;
/// Values of the `tier` label.
pub const TIERS: [&str; 3] = ["web", "db", "cache"];

/// One thing that happens at a point of simulated time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Create a ConfigMap in `NAMESPACES[namespace]`: the first free name
    /// from `name` on (nothing when the namespace is full).
    Create {
        /// Index into [`NAMESPACES`].
        namespace: usize,
        /// Where the search for a free name starts.
        name: u64,
        /// Index into [`TIERS`].
        tier: usize,
    },
    /// Update the `pick`-th existing ConfigMap (modulo their number).
    Update {
        /// Which object.
        pick: u64,
        /// Its new tier (may move it in or out of a label selector).
        tier: usize,
    },
    /// Delete the `pick`-th existing ConfigMap (modulo their number).
    Delete {
        /// Which object.
        pick: u64,
    },
    /// Compact history at `behind` revisions before the newest.
    Compact {
        /// How far behind the newest revision.
        behind: u64,
    },
    /// Restart the server: watches drop, the watch cache starts over, and
    /// connections are refused for `down`.
    Restart {
        /// How long connections are refused.
        down: Duration,
    },
    /// Hold the watch cache back (too-large resourceVersion answers) for `length`.
    FreezeCache {
        /// For how long.
        length: Duration,
    },
    /// Refuse watch-list (422) for `length`.
    RefuseWatchList {
        /// For how long.
        length: Duration,
    },
    /// Answer every request with `code` (and Retry-After) for `length`.
    Outage {
        /// 429, 500 or 503.
        code: u16,
        /// For how long.
        length: Duration,
    },
}

/// Per-mille chances of each per-response fault while faults last.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FaultRates {
    /// An HTTP 429, 500 or 503 with Retry-After instead of the answer.
    pub status: u64,
    /// The connection drops at a random byte offset (possibly before the head).
    pub drop: u64,
    /// The connection stalls at a random byte offset until the client's deadline.
    pub stall: u64,
    /// A watch-list stream never sends its end bookmark.
    pub hide_end_bookmark: u64,
    /// History is compacted just before a continue request is served.
    pub expire_continue: u64,
    /// A list or watch at a resourceVersion is answered 504 "Too large
    /// resource version", as a server whose watch cache lags that version.
    pub too_large: u64,
}

/// Everything one run does. See the module documentation.
#[derive(Clone, Debug)]
pub struct Schedule {
    /// The seed it was drawn from.
    pub seed: u64,
    /// The informer's FIFO.
    pub fifo: FifoKind,
    /// How relists reach the store with the atomic RealFIFO (drawn from the
    /// seed's second bit, outside the generator, so every other choice of a
    /// seed stays what it was before this knob existed).
    pub relist: RelistMode,
    /// Whether the reflector streams its lists (watch-list).
    pub watch_list: bool,
    /// The reflector's page size (0: client-go's rules).
    pub page_size: u32,
    /// The informer's namespace (`None`: all namespaces).
    pub namespace: Option<&'static str>,
    /// The informer's label selector.
    pub label_selector: Option<&'static str>,
    /// The handlers' resync period (zero: none).
    pub resync: Duration,
    /// Events the model's watch cache keeps.
    pub cache_capacity: usize,
    /// Whether RV=0 lists ignore `limit` (the watch cache) or page (etcd).
    pub rv_zero_ignores_limit: bool,
    /// When per-response faults stop (timed faults all end before it).
    pub faults_end: Duration,
    /// When the workload stops.
    pub workload_end: Duration,
    /// When the run ends and the invariants are checked.
    pub end: Duration,
    /// How often every open watch is asked for a bookmark.
    pub bookmark_every: Duration,
    /// When the second handler joins (it gets a replay).
    pub late_handler_at: Duration,
    /// Per-response fault rates while faults last.
    pub rates: FaultRates,
    /// Workload and timed faults, ordered by time.
    pub timeline: Vec<(Duration, Step)>,
}

/// Fault-free time after which the informer must have converged, from the
/// reflector's deadlines: a watch-list that lost its end bookmark holds the
/// informer until its watch deadline (`timeoutSeconds` < 2 · 300 s, plus
/// 30 s of grace), then waits one backoff delay (< 60 s) before it tries
/// again; a stalled watch is dropped after 180 s idle, a stalled head after
/// 60 s. Plus a minute of margin for the retry itself.
pub const SETTLE: Duration = Duration::from_secs(2 * 300 + 30 + 60 + 60);

impl Schedule {
    /// The schedule of `seed`.
    pub fn generate(seed: u64) -> Self {
        let mut rng = Rng::new(seed ^ 0x5eed_5c4e_d01e_0001);
        let fifo = match rng.below(3) {
            0 => FifoKind::RealAtomic,
            1 => FifoKind::Real,
            _ => FifoKind::Delta,
        };
        let watch_list = rng.below(3) == 0;
        let page_size = [0, 0, 2, 3, 5, 10][rng.below(6) as usize];
        let namespace = (rng.below(4) == 0).then_some("default");
        let label_selector = match rng.below(6) {
            0 => Some("tier=web"),
            1 => Some("tier in (web,db)"),
            _ => None,
        };
        let resync = if rng.below(4) == 0 {
            Duration::from_secs(20 + rng.below(40))
        } else {
            Duration::ZERO
        };
        let cache_capacity = [8, 16, 32, 100][rng.below(4) as usize];
        let rv_zero_ignores_limit = rng.below(4) != 0;
        let faults_end = Duration::from_secs(30 + rng.below(150));
        let workload_end = faults_end + SETTLE - Duration::from_secs(30);
        let end = faults_end + SETTLE;
        let bookmark_every = Duration::from_secs(5 + rng.below(55));
        let late_handler_at = ms(rng.below(faults_end.as_millis() as u64));
        // Calm, moderate and hostile networks.
        let intensity = rng.below(3);
        let rate = |rng: &mut Rng, max: u64| match intensity {
            0 => 0,
            1 => rng.below(max / 4 + 1),
            _ => rng.below(max + 1),
        };
        let rates = FaultRates {
            status: rate(&mut rng, 150),
            drop: rate(&mut rng, 200),
            stall: rate(&mut rng, 40),
            hide_end_bookmark: rate(&mut rng, 500),
            expire_continue: rate(&mut rng, 500),
            too_large: rate(&mut rng, 100),
        };

        let mut timeline = Vec::new();
        // The workload: single writes and bursts, faster while faults last.
        let mut t = Duration::ZERO;
        while t < workload_end {
            let gap = if t < faults_end { 1500 } else { 30_000 };
            t += ms(1 + rng.below(gap));
            let burst = if rng.below(10) == 0 {
                2 + rng.below(15)
            } else {
                1
            };
            for _ in 0..burst {
                let step = match rng.below(10) {
                    0..=3 => Step::Create {
                        namespace: rng.below(NAMESPACES.len() as u64) as usize,
                        name: rng.below(NAMES_PER_NAMESPACE),
                        tier: rng.below(TIERS.len() as u64) as usize,
                    },
                    4..=6 => Step::Update {
                        pick: rng.next_u64(),
                        tier: rng.below(TIERS.len() as u64) as usize,
                    },
                    _ => Step::Delete {
                        pick: rng.next_u64(),
                    },
                };
                timeline.push((t, step));
            }
        }
        // Timed faults, each over before `faults_end`.
        if intensity > 0 {
            for _ in 0..rng.below(4 + 2 * intensity) {
                let length = Duration::from_secs(5 + rng.below(40));
                let latest = faults_end.saturating_sub(length).as_millis() as u64;
                let at = ms(rng.below(latest.max(1)));
                let step = match rng.below(5) {
                    0 => Step::Compact {
                        behind: rng.below(4),
                    },
                    1 => Step::Restart {
                        down: ms(rng.below(5000)),
                    },
                    2 => Step::FreezeCache { length },
                    3 => Step::RefuseWatchList { length },
                    _ => Step::Outage {
                        code: [429, 500, 503][rng.below(3) as usize],
                        length,
                    },
                };
                timeline.push((at, step));
            }
        }
        timeline.sort_by_key(|(at, _)| *at);

        let relist = if (seed >> 1) & 1 == 0 {
            RelistMode::Streaming
        } else {
            RelistMode::Atomic
        };
        Self {
            seed,
            fifo,
            relist,
            watch_list,
            page_size,
            namespace,
            label_selector,
            resync,
            cache_capacity,
            rv_zero_ignores_limit,
            faults_end,
            workload_end,
            end,
            bookmark_every,
            late_handler_at,
            rates,
            timeline,
        }
    }
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}
