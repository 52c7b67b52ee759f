//! Informer initial sync, end to end (issue 9): windlass-tokio's informer
//! and kube-runtime's reflector each sync every Pod served by
//! windlass-apiserver over loopback TLS; we report time to synced and the
//! peak RSS of each client process, windlass in JSON and in protobuf.
//!
//! ```text
//! cargo bench -p windlass-benches --bench informer_sync            # 50,000 Pods, 5 rounds
//! WINDLASS_SYNC_PODS=10000 WINDLASS_SYNC_ROUNDS=3 cargo bench -p windlass-benches --bench informer_sync
//! WINDLASS_SYNC_CLIENTS=windlass-json cargo bench -p windlass-benches --bench informer_sync  # and kube
//! ```
//!
//! The server runs in this process; every client run is a fresh
//! `sync_client` process (so its peak RSS is its own). The clients take
//! turns, round after round, each round starting one client further on, so
//! that load on the machine falls on all of them alike; each figure is the
//! median of the rounds, with the lowest and highest beside it. Besides the
//! wall-clock time to synced, each run reports the CPU time (user + system)
//! of the client process and of the server (this process) — figures the
//! machine's load barely moves — and the load average when it started.
//! Run without `--bench` (as `cargo test --benches` does) it syncs 200
//! Pods once per client, to check that the harness works.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use serde_json::json;
use windlass_benches::{Generator, cpu_ms, fixtures_dir, load_average};
use windlass_testkit::apiserver::ApiServer;
use windlass_testkit::model::Gvr;

const CLIENTS: [&str; 5] = [
    "kube",
    "windlass-json",
    "windlass-protobuf",
    "windlass-json-compact",
    "windlass-protobuf-compact",
];

fn main() {
    let Some(fixtures) = fixtures_dir() else {
        return;
    };
    let bench = std::env::args().any(|a| a == "--bench");
    let pods: usize = std::env::var("WINDLASS_SYNC_PODS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(if bench { 50_000 } else { 200 });
    let rounds: usize = std::env::var("WINDLASS_SYNC_ROUNDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(if bench { 5 } else { 1 });
    let generator = Generator::pods(&fixtures, true).expect("the recorded Pods load");

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let server = runtime
        .block_on(ApiServer::builder().start())
        .expect("windlass-apiserver starts");
    let loaded = Instant::now();
    server.with_model(|model| {
        let now = std::time::Instant::now();
        let namespaces = Gvr::new("", "v1", "namespaces");
        for n in 0..40 {
            let ns = json!({"apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": format!("team-{n:02}")}});
            model
                .create(&namespaces, None, ns, now)
                .expect("a namespace is created");
        }
        let gvr = Gvr::new("", "v1", "pods");
        for i in 0..pods {
            let mut pod = generator.value(i, 0);
            let meta = pod["metadata"].as_object_mut().expect("metadata");
            meta.remove("resourceVersion");
            meta.remove("uid");
            let namespace = meta["namespace"].as_str().map(str::to_owned);
            model
                .create(&gvr, namespace.as_deref(), pod, now)
                .expect("a pod is created");
        }
    });
    eprintln!(
        "informer_sync: {pods} Pods (~2.6 KB of JSON each) loaded into windlass-apiserver in {:.1}s",
        loaded.elapsed().as_secs_f64()
    );
    // The wire beside the heap: mean bytes of one Pod in each encoding.
    let sample = pods.clamp(1, 1000);
    let (mut json_bytes, mut proto_bytes) = (0, 0);
    for i in 0..sample {
        let pod = generator.pod(i, 1);
        json_bytes += serde_json::to_vec(&pod).expect("JSON").len();
        proto_bytes += windlass_proto::codec::protobuf::encode(&pod)
            .expect("protobuf")
            .len();
    }
    let (json_bytes, proto_bytes) = (json_bytes / sample, proto_bytes / sample);
    let dir = std::env::temp_dir().join(format!("windlass-informer-sync-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary folder");
    let kubeconfig = dir.join("kubeconfig");
    std::fs::write(&kubeconfig, server.kubeconfig()).expect("the kubeconfig is written");

    // `WINDLASS_SYNC_CLIENTS=kube,windlass-json` runs some clients only
    // (kube always, first: the ratios are to it).
    let only = std::env::var("WINDLASS_SYNC_CLIENTS").unwrap_or_default();
    let mut results: Vec<(&str, Vec<Run>)> = CLIENTS
        .iter()
        .filter(|c| only.is_empty() || **c == "kube" || only.split(',').any(|o| o == **c))
        .map(|c| (*c, vec![]))
        .collect();
    let clients = results.len();
    let mut loads = vec![];
    for round in 0..rounds {
        for turn in 0..clients {
            let (client, runs) = &mut results[(round + turn) % clients];
            let load = load_average().unwrap_or(f64::NAN);
            loads.push(load);
            let server_before = cpu_ms("/proc/self/stat").unwrap_or(0);
            let mut run = run_client(client, &kubeconfig, pods);
            run.server_cpu_ms = cpu_ms("/proc/self/stat")
                .unwrap_or(0)
                .saturating_sub(server_before) as f64;
            eprintln!(
                "round {round}: {client}: synced in {:.0} ms, client CPU {:.0} ms, server CPU {:.0} ms, \
                 peak RSS {:.1} MiB, RSS once synced {:.1} MiB, load average {load:.2}",
                run.synced_ms, run.cpu_ms, run.server_cpu_ms, run.peak_rss_mib, run.rss_mib
            );
            runs.push(run);
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    runtime.block_on(server.shutdown());

    // Each ratio is taken within a round (the client's run ÷ kube's run of
    // the same round), so a change of load between rounds cancels out.
    let kube_runs = &results[0].1;
    let summary: Vec<(&str, [Spread; 5])> = results
        .iter()
        .map(|(c, runs)| {
            let of = |f: fn(&Run) -> f64| Spread::of(runs.iter().map(f).collect());
            let ratio = Spread::of(
                runs.iter()
                    .zip(kube_runs)
                    .map(|(r, k)| r.synced_ms / k.synced_ms)
                    .collect(),
            );
            (
                *c,
                [
                    of(|r| r.synced_ms),
                    of(|r| r.cpu_ms),
                    of(|r| r.server_cpu_ms),
                    of(|r| r.peak_rss_mib),
                    ratio,
                ],
            )
        })
        .collect();
    let load = Spread::of(loads);
    let [_, kube_cpu, _, kube_rss, _] = summary[0].1;
    println!(
        "\ninformer sync of {pods} Pods, {rounds} round(s); median (lowest–highest); \
         load average {:.2} ({:.2}–{:.2}) on {} CPUs\n",
        load.median,
        load.low,
        load.high,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!(
        "one Pod: {json_bytes} B of JSON, {proto_bytes} B of protobuf on the wire; \
         peak RSS per Pod below (the whole process ÷ {pods})\n"
    );
    println!(
        "| client | time to synced | client CPU | server CPU | peak RSS | RSS per Pod | time vs kube-rs | client CPU vs kube-rs, median (lowest) | RSS vs kube-rs |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for (client, [ms, cpu, server, rss, ratio]) in &summary {
        println!(
            "| {client} | {ms} ms | {cpu} ms | {server} ms | {:.1} MiB | {:.0} B | {:.2}× ({:.2}–{:.2}) | {:.2}× ({:.2}×) | {:.2}× |",
            rss.median,
            rss.median * 1024.0 * 1024.0 / pods as f64,
            ratio.median,
            ratio.low,
            ratio.high,
            cpu.median / kube_cpu.median,
            // CPU time moves with load too (shared caches and cores): the
            // lowest run of each is the least disturbed.
            cpu.low / kube_cpu.low,
            rss.median / kube_rss.median
        );
    }
}

/// One client run.
struct Run {
    synced_ms: f64,
    /// User + system CPU time of the client process.
    cpu_ms: f64,
    /// User + system CPU time of the server (this process) during the run.
    server_cpu_ms: f64,
    peak_rss_mib: f64,
    rss_mib: f64,
}

/// The median of some runs, with the lowest and the highest.
#[derive(Clone, Copy)]
struct Spread {
    median: f64,
    low: f64,
    high: f64,
}

impl Spread {
    fn of(mut v: Vec<f64>) -> Spread {
        v.sort_by(f64::total_cmp);
        let median = if v.len() % 2 == 1 {
            v[v.len() / 2]
        } else {
            (v[v.len() / 2 - 1] + v[v.len() / 2]) / 2.0
        };
        Spread {
            median,
            low: v[0],
            high: v[v.len() - 1],
        }
    }
}

impl std::fmt::Display for Spread {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:.0} ({:.0}–{:.0})", self.median, self.low, self.high)
    }
}

/// Runs one `sync_client` process (`server_cpu_ms` is left for the caller).
fn run_client(client: &str, kubeconfig: &Path, pods: usize) -> Run {
    let output = Command::new(env!("CARGO_BIN_EXE_sync_client"))
        .args(["--impl", client, "--kubeconfig"])
        .arg(kubeconfig)
        .args(["--expect", &pods.to_string()])
        .output()
        .expect("sync_client runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "sync_client {client} failed: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let field = |name: &str| -> f64 {
        stdout
            .split_whitespace()
            .find_map(|kv| kv.strip_prefix(name))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("sync_client printed no {name}: {stdout}"))
    };
    assert_eq!(
        field("objects=") as usize,
        pods,
        "{client} synced the wrong count"
    );
    Run {
        synced_ms: field("synced_ms="),
        cpu_ms: field("cpu_ms="),
        server_cpu_ms: 0.0,
        peak_rss_mib: field("peak_rss_kib=") / 1024.0,
        rss_mib: field("rss_kib=") / 1024.0,
    }
}
