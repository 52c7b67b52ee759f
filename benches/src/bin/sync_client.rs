//! One informer client for the `informer_sync` benchmark: syncs every Pod
//! of a cluster and prints how long that took and the process's peak RSS.
//!
//! ```text
//! sync_client --impl kube|windlass-json|windlass-protobuf|windlass-json-compact|windlass-protobuf-compact --kubeconfig PATH --expect N
//! ```
//!
//! It prints one line, `impl=… objects=N synced_ms=T cpu_ms=C peak_rss_kib=R
//! rss_kib=S` (CPU time of the process, user + system, all threads; peak
//! RSS, and RSS once synced), and
//! exits 0 once the client's store holds N objects and says it is synced;
//! it exits 1 on an error or after 10 minutes without syncing. Each run is
//! its own process so that its peak RSS is its own.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;

/// Give up after this long.
const DEADLINE: Duration = Duration::from_secs(600);

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1).cloned())
    };
    let (Some(which), Some(kubeconfig), Some(expect)) = (
        flag("--impl"),
        flag("--kubeconfig"),
        flag("--expect").and_then(|n| n.parse::<usize>().ok()),
    ) else {
        eprintln!(
            "usage: sync_client --impl kube|windlass-json|windlass-protobuf|windlass-json-compact|windlass-protobuf-compact --kubeconfig PATH --expect N"
        );
        return ExitCode::from(2);
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("sync_client: cannot start tokio: {e}");
            return ExitCode::FAILURE;
        }
    };
    let started = Instant::now();
    let outcome = runtime.block_on(async {
        let sync = async {
            match which.as_str() {
                "kube" => kube_sync(&kubeconfig, expect).await,
                "windlass-json" => windlass_sync(&kubeconfig, expect, false, false).await,
                "windlass-protobuf" => windlass_sync(&kubeconfig, expect, true, false).await,
                "windlass-json-compact" => windlass_sync(&kubeconfig, expect, false, true).await,
                "windlass-protobuf-compact" => windlass_sync(&kubeconfig, expect, true, true).await,
                other => Err(format!("unknown --impl {other:?}")),
            }
        };
        tokio::time::timeout(DEADLINE, sync)
            .await
            .unwrap_or_else(|_| Err(format!("not synced after {DEADLINE:?}")))
    });
    let synced = started.elapsed();
    match outcome {
        Ok(objects) => {
            println!(
                "impl={which} objects={objects} synced_ms={} cpu_ms={} peak_rss_kib={} rss_kib={}",
                synced.as_millis(),
                windlass_benches::cpu_ms("/proc/self/stat").unwrap_or(0),
                peak_rss_kib().unwrap_or(0),
                status_kib("VmRSS:").unwrap_or(0)
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("sync_client {which}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `VmHWM` of this process, in KiB (Linux).
fn peak_rss_kib() -> Option<u64> {
    status_kib("VmHWM:")
}

/// A KiB figure of `/proc/self/status` (Linux).
fn status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// kube-runtime's reflector over its watcher with kube's default watcher
/// config, until its store is ready and holds `expect` Pods.
async fn kube_sync(kubeconfig: &str, expect: usize) -> Result<usize, String> {
    use futures_util::StreamExt;
    use kube::config::{KubeConfigOptions, Kubeconfig};
    use kube_runtime::{WatchStreamExt, reflector, watcher};

    let kubeconfig = Kubeconfig::read_from(kubeconfig).map_err(|e| e.to_string())?;
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .map_err(|e| e.to_string())?;
    let client = kube::Client::try_from(config).map_err(|e| e.to_string())?;
    let api: kube::Api<Pod> = kube::Api::all(client);
    let (reader, writer) = reflector::store();
    let stream = reflector(writer, watcher(api, watcher::Config::default()))
        .default_backoff()
        .applied_objects();
    let driver = tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        while let Some(item) = stream.next().await {
            if let Err(e) = item {
                eprintln!("kube watcher: {e}");
            }
        }
    });
    reader.wait_until_ready().await.map_err(|e| e.to_string())?;
    while reader.len() < expect {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let objects = reader.len();
    driver.abort();
    Ok(objects)
}

/// windlass-tokio's shared informer, until it says it is synced and its
/// store holds `expect` Pods; in protobuf (`protobuf: true`) the client asks
/// for `application/vnd.kubernetes.protobuf` lists and watches; `compact`
/// stores a copy of each object (`informer::compact`), as kube-runtime's
/// store always does.
async fn windlass_sync(
    kubeconfig: &str,
    expect: usize,
    protobuf: bool,
    compact: bool,
) -> Result<usize, String> {
    use windlass_proto::config::{ContextOptions, Kubeconfig, LocalFiles};
    use windlass_proto::informer::InformerConfig;
    use windlass_tokio::{Api, ClientBuilder, Informer};

    let text = std::fs::read(kubeconfig).map_err(|e| format!("{kubeconfig}: {e}"))?;
    let config = Kubeconfig::parse(&text, Some(std::path::Path::new(kubeconfig)))
        .and_then(|k| k.resolve(&ContextOptions::default(), &LocalFiles))
        .map_err(|e| e.to_string())?;
    let client = ClientBuilder::from_config(&config)
        .and_then(|b| b.build())
        .map_err(|e| e.to_string())?;
    let api: Api<Pod> = Api::all(client).map_err(|e| e.to_string())?;
    let mut informer_config = InformerConfig::default();
    if compact {
        informer_config.transform = Some(windlass_proto::informer::compact());
    }
    if protobuf {
        informer_config.reflector.format = Some(windlass_proto::codec::Format::Protobuf);
    }
    let informer = Informer::new(&api, informer_config);
    let running = informer.start();
    informer
        .wait_for_sync(DEADLINE)
        .await
        .map_err(|e| e.to_string())?;
    let lister = informer.lister();
    while lister.len() < expect {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let objects = lister.len();
    informer.stop();
    running.abort();
    Ok(objects)
}
