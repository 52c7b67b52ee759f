//! Informer initial sync, end to end (issue 9): windlass-tokio's informer
//! and kube-runtime's reflector each sync every Pod served by
//! windlass-apiserver over loopback TLS; we report time to synced and the
//! peak RSS of each client process, windlass in JSON and in protobuf.
//!
//! ```text
//! cargo bench -p windlass-benches --bench informer_sync            # 50,000 Pods, 3 rounds
//! WINDLASS_SYNC_PODS=10000 cargo bench -p windlass-benches --bench informer_sync
//! ```
//!
//! The server runs in this process; every client run is a fresh
//! `sync_client` process (so its peak RSS is its own), and the three clients
//! take turns, round after round, so that load on the machine falls on all of
//! them alike. Run without `--bench` (as `cargo test --benches` does) it
//! syncs 200 Pods once per client, to check that the harness works.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use serde_json::json;
use windlass_benches::{Generator, fixtures_dir};
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
    let rounds = if bench { 3 } else { 1 };
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
    let dir = std::env::temp_dir().join(format!("windlass-informer-sync-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary folder");
    let kubeconfig = dir.join("kubeconfig");
    std::fs::write(&kubeconfig, server.kubeconfig()).expect("the kubeconfig is written");

    let mut results: Vec<(&str, Vec<(f64, f64)>)> = CLIENTS.iter().map(|c| (*c, vec![])).collect();
    for round in 0..rounds {
        for (client, runs) in results.iter_mut() {
            let (ms, rss, now) = run_client(client, &kubeconfig, pods);
            eprintln!(
                "round {round}: {client}: synced in {ms:.0} ms, peak RSS {rss:.1} MiB, RSS once synced {now:.1} MiB"
            );
            runs.push((ms, rss));
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    runtime.block_on(server.shutdown());

    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let summary: Vec<(&str, f64, f64)> = results
        .into_iter()
        .map(|(c, runs)| {
            let ms = median(runs.iter().map(|r| r.0).collect());
            let rss = median(runs.iter().map(|r| r.1).collect());
            (c, ms, rss)
        })
        .collect();
    let (_, kube_ms, kube_rss) = summary[0];
    println!("\ninformer sync of {pods} Pods, median of {rounds} round(s)\n");
    println!("| client | time to synced | peak RSS | time vs kube-rs | RSS vs kube-rs |");
    println!("|---|---|---|---|---|");
    for (client, ms, rss) in &summary {
        println!(
            "| {client} | {ms:.0} ms | {rss:.1} MiB | {:.2}× | {:.2}× |",
            ms / kube_ms,
            rss / kube_rss
        );
    }
}

/// Runs one `sync_client` process; its time to synced (ms), peak RSS and
/// RSS once synced (MiB).
fn run_client(client: &str, kubeconfig: &Path, pods: usize) -> (f64, f64, f64) {
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
    (
        field("synced_ms="),
        field("peak_rss_kib=") / 1024.0,
        field("rss_kib=") / 1024.0,
    )
}
