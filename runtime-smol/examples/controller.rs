//! windlass's main job, end to end: a controller that watches Pods, labels
//! each one it has seen and keeps a ConfigMap summary up to date.
//!
//! With no arguments it starts windlass-apiserver (the in-memory Kubernetes
//! API server) in-process over TLS and runs against it, creating and
//! deleting pods to have something to reconcile; with `--kubeconfig PATH` it
//! runs against that cluster's current context instead (namespace `default`
//! unless `--namespace NS`), without creating anything but the summary.
//!
//! ```sh
//! cargo run -p windlass-smol --example controller
//! ```
//!
//! The controller runs on a smol `Executor`, which also runs the client's
//! connections; the embedded API server (a tokio program) gets a tokio
//! runtime of its own.
//!
//! The decisions — which key next, what to do after a reconcile, when to
//! wake — are windlass-proto's [`Controller`]; this file only moves events
//! into it and runs reconciles.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Container, Namespace, Pod, PodSpec};
use serde_json::json;
use windlass_proto::config::{ContextOptions, Kubeconfig, LocalFiles};
use windlass_proto::controller::{Controller, Outcome};
use windlass_proto::object::Object;
use windlass_proto::params::{ListParams, WatchParams};
use windlass_proto::queue::Next;
use windlass_proto::request::{DeleteParams, Patch, PatchParams, PostParams};
use windlass_proto::watch::WatchEvent;
use windlass_smol::{Api, Client, ClientBuilder};
use windlass_testkit::apiserver::{ApiServer, RunningServer};

const LABEL: &str = "windlass.dev/reconciled";
const MANAGER: &str = "windlass-example-controller";
/// The whole run ends after this long, whatever state it is in.
const DEADLINE: Duration = Duration::from_secs(60);

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1).cloned())
    };
    let kubeconfig = flag("--kubeconfig");
    let embedded = kubeconfig.is_none();

    let mut server: Option<(tokio::runtime::Runtime, RunningServer)> = None;
    let kubeconfig_text = match &kubeconfig {
        Some(path) => std::fs::read(path)?,
        None => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()?;
            let running = runtime.block_on(ApiServer::builder().start())?;
            println!("started windlass-apiserver at {}", running.url());
            let text = running.kubeconfig().as_bytes().to_vec();
            server = Some((runtime, running));
            text
        }
    };
    let config = Kubeconfig::parse(
        &kubeconfig_text,
        kubeconfig.as_deref().map(std::path::Path::new),
    )?
    .resolve(&ContextOptions::default(), &LocalFiles)?;
    let executor = Arc::new(smol::Executor::new());
    let client = ClientBuilder::from_config(&config, executor.clone())?.build()?;
    let namespace =
        flag("--namespace").unwrap_or_else(|| if embedded { "demo" } else { "default" }.to_owned());
    let result =
        smol::block_on(executor.run(setup_and_run(client, namespace, embedded, executor.clone())));
    if let Some((runtime, running)) = server {
        runtime.block_on(running.shutdown());
    }
    result
}

/// Creates the demo namespace and pods (embedded mode), then runs the controller.
async fn setup_and_run(
    client: Client,
    namespace: String,
    embedded: bool,
    executor: Arc<smol::Executor<'static>>,
) -> Result<(), Box<dyn std::error::Error>> {
    if embedded {
        let mut ns = Namespace::default();
        ns.metadata.name = Some(namespace.clone());
        Api::<Namespace>::all(client.clone())?
            .create(&PostParams::default(), &ns)
            .await?;
    }
    let pods: Api<Pod> = Api::namespaced(client.clone(), &namespace)?;
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), &namespace)?;
    if embedded {
        for i in 0..5 {
            pods.create(&PostParams::default(), &pod(&format!("web-{i}")))
                .await?;
        }
        println!("created 5 pods in namespace {namespace}");
    }

    run(&client, &pods, &maps, embedded, &executor).await
}

/// The controller loop: list, then watch; every pod event enqueues the pod's
/// key; one worker reconciles keys as windlass-proto's `Controller` hands
/// them out. In embedded mode it also churns pods and stops once the
/// summary matches the final state.
async fn run(
    client: &Client,
    pods: &Api<Pod>,
    maps: &Api<ConfigMap>,
    embedded: bool,
    executor: &smol::Executor<'static>,
) -> Result<(), Box<dyn std::error::Error>> {
    let started = Instant::now();
    let mut controller: Controller<String> = Controller::default();
    let list = pods.list(&ListParams::default()).await?;
    for pod in &list.items {
        controller.enqueue(pod.key().to_string());
    }
    let params = WatchParams {
        resource_version: list.resource_version().map(str::to_owned),
        allow_watch_bookmarks: true,
        timeout_seconds: Some(290),
        ..Default::default()
    };
    let mut events = Box::pin(pods.watch(&params).await?);

    // In embedded mode, change the world while the controller runs.
    let churn = embedded.then(|| {
        let pods = pods.clone();
        executor.spawn(async move {
            smol::Timer::after(Duration::from_millis(300)).await;
            for i in 5..8 {
                pods.create(&PostParams::default(), &pod(&format!("web-{i}")))
                    .await?;
            }
            pods.delete("web-0", &DeleteParams::default()).await?;
            println!("churn: created web-5..web-7, deleted web-0");
            Ok::<_, windlass_smol::Error>(())
        })
    });

    let mut last_summary = String::new();
    loop {
        if started.elapsed() > DEADLINE {
            return Err(format!("gave up after {DEADLINE:?}; last summary: {last_summary}").into());
        }
        match controller.next(Instant::now()) {
            Next::Item(key) => {
                let outcome = match reconcile(pods, maps, &key).await {
                    Ok(summary) => {
                        if summary != last_summary {
                            let c = controller.counters(Instant::now());
                            println!(
                                "reconciled {key:<10} summary: {summary} (reconciles {}, retries {})",
                                c.reconciles + 1,
                                c.retries
                            );
                            last_summary = summary;
                        }
                        Outcome::Success
                    }
                    Err(e) => {
                        println!("reconcile {key} failed: {e}; will retry with backoff");
                        Outcome::Error
                    }
                };
                controller.finish(&key, outcome, Instant::now());
                let churned = churn.as_ref().is_none_or(|c| c.is_finished());
                if embedded
                    && churned
                    && controller.is_drained()
                    && last_summary == "7 pods, 7 labelled"
                {
                    break;
                }
            }
            Next::Wait => {
                let wake = controller
                    .poll_timeout()
                    .map_or(Duration::from_secs(1), |t| {
                        t.saturating_duration_since(Instant::now())
                    });
                let event = smol::future::or(async { Some(events.next().await) }, async {
                    smol::Timer::after(wake).await;
                    None
                })
                .await;
                match event {
                    None => {}
                    Some(Some(Ok(
                        WatchEvent::Added(p) | WatchEvent::Modified(p) | WatchEvent::Deleted(p),
                    ))) => {
                        controller.enqueue(p.key().to_string());
                    }
                    Some(Some(Ok(WatchEvent::Bookmark(_)))) => {}
                    Some(Some(Ok(WatchEvent::Error(status)))) => {
                        return Err(format!("watch error: {:?}", status.message).into());
                    }
                    Some(Some(Err(e))) => return Err(e.into()),
                    Some(None) => {
                        // The server ended the watch (timeoutSeconds): list again and re-watch.
                        let list = pods.list(&ListParams::default()).await?;
                        list.items
                            .iter()
                            .for_each(|p| controller.enqueue(p.key().to_string()));
                        let params = WatchParams {
                            resource_version: list.resource_version().map(str::to_owned),
                            ..params.clone()
                        };
                        events = Box::pin(pods.watch(&params).await?);
                    }
                }
            }
            Next::ShutDown => break,
        }
    }
    if let Some(churn) = churn {
        churn.await?;
    }
    let c = controller.counters(Instant::now());
    println!(
        "done in {:.1?}: {} reconciles, {} retries, summary {last_summary:?}; default namespace {}",
        started.elapsed(),
        c.reconciles,
        c.retries,
        client.default_namespace()
    );
    Ok(())
}

/// One reconcile: label the pod if it is still there and unlabelled, then
/// rewrite the summary ConfigMap by server-side apply.
async fn reconcile(
    pods: &Api<Pod>,
    maps: &Api<ConfigMap>,
    key: &str,
) -> Result<String, windlass_smol::Error> {
    let name = key.rsplit('/').next().unwrap_or(key);
    if let Some(pod) = pods.get_opt(name).await? {
        let labelled = pod
            .meta()
            .labels
            .as_ref()
            .is_some_and(|l| l.contains_key(LABEL));
        if !labelled {
            let patch = Patch::Merge(json!({"metadata": {"labels": {LABEL: "true"}}}));
            pods.patch(name, &PatchParams::default(), &patch).await?;
        }
    }
    let all = pods.list(&ListParams::default()).await?;
    let labelled = all
        .items
        .iter()
        .filter(|p| {
            p.meta()
                .labels
                .as_ref()
                .is_some_and(|l| l.contains_key(LABEL))
        })
        .count();
    let summary = format!("{} pods, {labelled} labelled", all.items.len());
    let names: Vec<&str> = all
        .items
        .iter()
        .filter_map(|p| p.meta().name.as_deref())
        .collect();
    let data = BTreeMap::from([
        ("summary".to_owned(), summary.clone()),
        ("pods".to_owned(), names.join(",")),
    ]);
    let desired = json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "pod-summary"},
        "data": data,
    });
    maps.apply("pod-summary", MANAGER, true, &desired).await?;
    Ok(summary)
}

fn pod(name: &str) -> Pod {
    let mut pod = Pod {
        spec: Some(PodSpec {
            containers: vec![Container {
                name: "web".into(),
                image: Some("nginx:1.27".into()),
                ..Default::default()
            }],
            ..Default::default()
        }),
        ..Default::default()
    };
    pod.metadata.name = Some(name.into());
    pod
}
