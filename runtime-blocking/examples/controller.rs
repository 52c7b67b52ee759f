//! windlass's main job, end to end and without async: a controller that
//! watches Pods, labels each one it has seen and keeps a ConfigMap summary
//! up to date.
//!
//! With no arguments it starts windlass-apiserver (the in-memory Kubernetes
//! API server) in-process over TLS and runs against it, creating and
//! deleting pods to have something to reconcile; with `--kubeconfig PATH` it
//! runs against that cluster's current context instead (namespace `default`
//! unless `--namespace NS`), without creating anything but the summary.
//!
//! ```sh
//! cargo run -p windlass-blocking --example controller
//! ```
//!
//! It uses windlass-blocking's runners: an [`Informer`] (list, watch,
//! relist, the store its [`Lister`] reads) on a thread, and a
//! [`Controller`] (work queue, two worker threads, rate-limited retries,
//! graceful shutdown that joins them). The decisions behind both are
//! windlass-proto's; this file holds only the reconcile. The embedded API
//! server is async, so it runs on a tokio runtime of its own; the
//! controller never touches it.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{ConfigMap, Container, Namespace, Pod, PodSpec};
use serde_json::json;
use windlass_blocking::{Api, Client, ClientBuilder, Controller, Informer, Lister};
use windlass_proto::config::{ContextOptions, Kubeconfig, LocalFiles};
use windlass_proto::controller::Outcome;
use windlass_proto::informer::{InformerConfig, drop_managed_fields};
use windlass_proto::object::{Object, ObjectKey};
use windlass_proto::request::{DeleteParams, Patch, PatchParams, PostParams};
use windlass_testkit::apiserver::ApiServer;

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

    // Only the embedded server needs a runtime.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let (server, kubeconfig_text) = match &kubeconfig {
        Some(path) => (None, std::fs::read(path)?),
        None => {
            let server = runtime.block_on(ApiServer::builder().start())?;
            println!("started windlass-apiserver at {}", server.url());
            let text = server.kubeconfig().as_bytes().to_vec();
            (Some(server), text)
        }
    };
    let config = Kubeconfig::parse(
        &kubeconfig_text,
        kubeconfig.as_deref().map(std::path::Path::new),
    )?
    .resolve(&ContextOptions::default(), &LocalFiles)?;
    let client = ClientBuilder::from_config(&config)?.build()?;
    let namespace =
        flag("--namespace").unwrap_or_else(|| if embedded { "demo" } else { "default" }.to_owned());

    if embedded {
        let mut ns = Namespace::default();
        ns.metadata.name = Some(namespace.clone());
        Api::<Namespace>::all(client.clone())?.create(&PostParams::default(), &ns)?;
    }
    let pods: Api<Pod> = Api::namespaced(client.clone(), &namespace)?;
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), &namespace)?;
    if embedded {
        for i in 0..5 {
            pods.create(&PostParams::default(), &pod(&format!("web-{i}")))?;
        }
        println!("created 5 pods in namespace {namespace}");
    }

    let result = run(&client, &pods, &maps, embedded);
    if let Some(server) = server {
        runtime.block_on(server.shutdown());
    }
    result
}

/// The controller: an informer on pods feeds windlass-blocking's controller
/// runner, whose worker threads reconcile each pod key. In embedded mode it
/// also churns pods; it shuts down gracefully once the queue is idle and
/// (in embedded mode) the summary matches the final state.
fn run(
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

    // In embedded mode, change the world while the controller runs.
    let churn_done = Arc::new(AtomicBool::new(!embedded));
    let churn = embedded.then(|| {
        let (pods, done) = (pods.clone(), churn_done.clone());
        std::thread::spawn(move || {
            let churned = (|| {
                std::thread::sleep(Duration::from_millis(300));
                for i in 5..8 {
                    pods.create(&PostParams::default(), &pod(&format!("web-{i}")))?;
                }
                pods.delete("web-0", &DeleteParams::default())?;
                println!("churn: created web-5..web-7, deleted web-0");
                Ok::<_, windlass_blocking::Error>(())
            })();
            done.store(true, Ordering::SeqCst);
            churned
        })
    });

    // Decides when the example is done: the queue idle, the churn over, the summary final.
    let stopper = {
        let (handle, summary, churn_done) = (handle.clone(), summary.clone(), churn_done.clone());
        std::thread::spawn(move || {
            let mut idle_since = None;
            loop {
                std::thread::sleep(Duration::from_millis(100));
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
                let done = if embedded {
                    churn_done.load(Ordering::SeqCst)
                        && idle
                        && *summary.lock().unwrap() == "7 pods, 7 labelled"
                } else {
                    idle_since.is_some_and(|t| t.elapsed() > Duration::from_secs(2))
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
            let now = reconcile(&pods, &maps, &lister, &key)?;
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
            Ok::<_, windlass_blocking::Error>(Outcome::Success)
        }
    };
    let counters = controller.run(reconciled)?;
    let finished = stopper.join().map_err(|_| "the stopper thread panicked")?;
    if let Some(churn) = churn {
        churn.join().map_err(|_| "the churn thread panicked")??;
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
fn reconcile(
    pods: &Api<Pod>,
    maps: &Api<ConfigMap>,
    lister: &Lister<Pod>,
    key: &ObjectKey,
) -> Result<String, windlass_blocking::Error> {
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
        pods.patch(key.name(), &PatchParams::default(), &patch)?;
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
    maps.apply("pod-summary", MANAGER, true, &desired)?;
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
