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
//! It uses windlass-smol's runners: an [`Informer`] (list, watch, relist,
//! the store its [`Lister`] reads) and a [`Controller`] (work queue, two
//! workers, rate-limited retries, graceful shutdown), all on one smol
//! `Executor` that also runs the client's connections; the embedded API
//! server (a tokio program) gets a tokio runtime of its own. The decisions
//! behind the runners are windlass-proto's; this file holds only the reconcile.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{ConfigMap, Container, Namespace, Pod, PodSpec};
use serde_json::json;
use windlass_proto::config::{ContextOptions, Kubeconfig, LocalFiles};
use windlass_proto::controller::Outcome;
use windlass_proto::informer::{InformerConfig, drop_managed_fields};
use windlass_proto::object::{Object, ObjectKey};
use windlass_proto::request::{DeleteParams, Patch, PatchParams, PostParams};
use windlass_smol::{Api, Client, ClientBuilder, Controller, Informer, Lister};
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
    let result = smol::block_on(executor.run(setup_and_run(client, namespace, embedded)));
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
    run(&client, &pods, &maps, embedded).await
}

/// The controller: an informer on pods feeds windlass-smol's controller
/// runner, whose workers reconcile each pod key. In embedded mode it also
/// churns pods; it shuts down gracefully once the queue is idle and (in
/// embedded mode) the summary matches the final state.
async fn run(
    client: &Client,
    pods: &Api<Pod>,
    maps: &Api<ConfigMap>,
    embedded: bool,
) -> Result<(), Box<dyn std::error::Error>> {
    let started = Instant::now();
    let informer = Informer::new(
        pods,
        InformerConfig {
            transform: Some(drop_managed_fields()),
            ..Default::default()
        },
    );
    let lister = informer.lister();
    // Against a cluster with no pods there is nothing to reconcile: idle
    // then means synced with an empty queue.
    let synced = informer.clone();
    let controller = Controller::new(informer).workers(2);
    let handle = controller.handle();
    let summary = Arc::new(Mutex::new(String::new()));
    let spawner = client.spawner();

    // In embedded mode, change the world while the controller runs.
    let churned = Arc::new(AtomicBool::new(false));
    let churn = embedded.then(|| {
        let (pods, churned) = (pods.clone(), churned.clone());
        spawner.spawn_with_handle(async move {
            let result = async {
                smol::Timer::after(Duration::from_millis(300)).await;
                for i in 5..8 {
                    pods.create(&PostParams::default(), &pod(&format!("web-{i}")))
                        .await?;
                }
                pods.delete("web-0", &DeleteParams::default()).await?;
                println!("churn: created web-5..web-7, deleted web-0");
                Ok::<_, windlass_smol::Error>(())
            }
            .await;
            churned.store(true, Ordering::SeqCst);
            result
        })
    });

    // Decides when the example is done: the queue idle, the churn over, the summary final.
    let stopper = {
        let (handle, summary) = (handle.clone(), summary.clone());
        let churned = churn.is_some().then_some(churned);
        spawner.spawn_with_handle(async move {
            let mut idle_since = None;
            loop {
                smol::Timer::after(Duration::from_millis(100)).await;
                let c = handle.counters();
                let idle = c.depth == 0
                    && c.waiting == 0
                    && c.running == 0
                    && (c.reconciles > 0 || synced.has_synced());
                idle_since = if idle {
                    idle_since.or(Some(Instant::now()))
                } else {
                    None
                };
                let done = match &churned {
                    Some(churn) => {
                        churn.load(Ordering::SeqCst)
                            && idle
                            && *summary.lock().unwrap() == "7 pods, 7 labelled"
                    }
                    None => idle_since.is_some_and(|t| t.elapsed() > Duration::from_secs(2)),
                };
                if done || started.elapsed() > DEADLINE {
                    handle.shut_down();
                    return done;
                }
            }
        })
    };

    let reconciled = {
        let (pods, maps, summary, handle) =
            (pods.clone(), maps.clone(), summary.clone(), handle.clone());
        move |key: ObjectKey| {
            let (pods, maps, lister) = (pods.clone(), maps.clone(), lister.clone());
            let (summary, handle) = (summary.clone(), handle.clone());
            async move {
                let now = reconcile(&pods, &maps, &lister, &key).await?;
                let mut last = summary.lock().unwrap();
                if *last != now {
                    let c = handle.counters();
                    println!(
                        "reconciled {key:<10} summary: {now} (reconciles {}, retries {})",
                        c.reconciles + 1,
                        c.retries
                    );
                    *last = now;
                }
                Ok::<_, windlass_smol::Error>(Outcome::Success)
            }
        }
    };
    let counters = controller.run(reconciled).await?;
    let finished = stopper.await?;
    if let Some(churn) = churn {
        churn.await??;
    }
    let summary = summary.lock().unwrap().clone();
    if !finished {
        return Err(format!("gave up after {DEADLINE:?}; last summary: {summary}").into());
    }
    println!(
        "done in {:.1?}: {} reconciles, {} retries, summary {summary:?}; default namespace {}",
        started.elapsed(),
        counters.reconciles,
        counters.retries,
        client.default_namespace()
    );
    Ok(())
}

/// One reconcile: label the pod if the informer still has it unlabelled,
/// then rewrite the summary ConfigMap from the informer's store by
/// server-side apply. A label just written shows in the store with the
/// watch event it causes, which enqueues the pod again.
async fn reconcile(
    pods: &Api<Pod>,
    maps: &Api<ConfigMap>,
    lister: &Lister<Pod>,
    key: &ObjectKey,
) -> Result<String, windlass_smol::Error> {
    let is_labelled = |p: &Pod| {
        p.meta()
            .labels
            .as_ref()
            .is_some_and(|l| l.contains_key(LABEL))
    };
    if let Some(pod) = lister.get(key)
        && !is_labelled(&pod)
    {
        let patch = Patch::Merge(json!({"metadata": {"labels": {LABEL: "true"}}}));
        pods.patch(key.name(), &PatchParams::default(), &patch)
            .await?;
    }
    let mut all = lister.list();
    all.sort_by_key(|p| p.key());
    let labelled = all.iter().filter(|p| is_labelled(p)).count();
    let summary = format!("{} pods, {labelled} labelled", all.len());
    let names: Vec<&str> = all
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
