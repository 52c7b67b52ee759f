//! windlass-blocking end to end against windlass-apiserver over TLS with
//! client-certificate auth. The server's API is async: it runs on a tokio
//! runtime's worker threads (a dev-dependency only) while the test thread
//! makes blocking calls. Every test body runs under a deadline.

use std::collections::BTreeMap;
use std::sync::mpsc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde_json::json;
use windlass_blocking::{Api, Client, ClientBuilder};
use windlass_proto::config::{ContextOptions, Kubeconfig};
use windlass_proto::dynamic::DynamicObject;
use windlass_proto::params::{ListParams, WatchParams};
use windlass_proto::request::{DeleteParams, Patch, PatchParams, PostParams};
use windlass_proto::resource::{ApiResource, Scope};
use windlass_proto::watch::WatchEvent;
use windlass_testkit::apiserver::{ApiServer, ApiServerBuilder, RunningServer};

/// A running server and the runtime that drives it.
struct Harness {
    runtime: tokio::runtime::Runtime,
    server: Option<RunningServer>,
}

impl Harness {
    fn start(builder: ApiServerBuilder) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let server = runtime
            .block_on(async {
                tokio::time::timeout(Duration::from_secs(30), builder.start()).await
            })
            .expect("windlass-apiserver starts within 30 s")
            .expect("windlass-apiserver starts");
        Self {
            runtime,
            server: Some(server),
        }
    }

    fn server(&self) -> &RunningServer {
        self.server.as_ref().unwrap()
    }

    /// A client for the server's current context (client certificate).
    fn builder(&self) -> ClientBuilder {
        let kubeconfig = Kubeconfig::parse(self.server().kubeconfig().as_bytes(), None).unwrap();
        let no_files = |p: &std::path::Path| {
            Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                p.display().to_string(),
            ))
        };
        let config = kubeconfig
            .resolve(&ContextOptions::default(), &no_files)
            .unwrap();
        assert!(config.tls.identity.is_some(), "a client certificate");
        ClientBuilder::from_config(&config).unwrap()
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            let _ = self.runtime.block_on(async {
                tokio::time::timeout(Duration::from_secs(10), server.shutdown()).await
            });
        }
    }
}

/// Runs `body` on its own thread and fails the test if it takes longer than `secs`.
fn within<T: Send + 'static>(secs: u64, body: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)));
    });
    match rx.recv_timeout(Duration::from_secs(secs)) {
        Ok(Ok(value)) => value,
        Ok(Err(panic)) => std::panic::resume_unwind(panic),
        Err(_) => panic!("the test body did not finish within {secs} s"),
    }
}

fn config_map(name: &str, data: &[(&str, &str)]) -> ConfigMap {
    ConfigMap {
        metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        data: Some(
            data.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
        ),
        ..Default::default()
    }
}

fn namespace(client: &Client, name: &str) {
    let namespaces: Api<Namespace> = Api::all(client.clone()).unwrap();
    let mut ns = Namespace::default();
    ns.metadata.name = Some(name.into());
    namespaces.create(&PostParams::default(), &ns).unwrap();
}

#[test]
fn e2e_blocking_crud_typed_over_tls_with_client_certificate() {
    let harness = Harness::start(ApiServer::builder());
    let client = harness.builder().build().unwrap();
    let maps: Api<ConfigMap> = Api::default_namespaced(client).unwrap();
    within(30, move || {
        let created = maps
            .create(&PostParams::default(), &config_map("web", &[("a", "1")]))
            .unwrap();
        assert!(created.metadata.uid.is_some());
        let mut fetched = maps.get("web").unwrap();
        assert_eq!(fetched.data, created.data);
        fetched
            .data
            .as_mut()
            .unwrap()
            .insert("b".into(), "2".into());
        let replaced = maps
            .replace("web", &PostParams::default(), &fetched)
            .unwrap();
        assert_ne!(
            replaced.metadata.resource_version,
            created.metadata.resource_version
        );
        let conflict = maps
            .replace("web", &PostParams::default(), &created)
            .unwrap_err();
        assert!(conflict.is_conflict(), "{conflict}");
        let already = maps
            .create(&PostParams::default(), &config_map("web", &[]))
            .unwrap_err();
        assert!(already.is_already_exists(), "{already}");
        let patched = maps
            .patch(
                "web",
                &PatchParams::default(),
                &Patch::Merge(json!({"data": {"c": "3"}})),
            )
            .unwrap();
        assert_eq!(patched.data.unwrap().len(), 3);
        let applied = maps
            .apply("web", "alice", true, &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "web"}, "data": {"d": "4"}}))
            .unwrap();
        assert_eq!(applied.data.unwrap()["d"], "4");
        maps.delete("web", &DeleteParams::default()).unwrap();
        assert!(maps.get_opt("web").unwrap().is_none());
        let missing = maps.delete("web", &DeleteParams::default()).unwrap_err();
        assert!(missing.is_not_found(), "{missing}");
        for name in ["x1", "x2"] {
            maps.create(&PostParams::default(), &config_map(name, &[]))
                .unwrap();
        }
        maps.delete_collection(&DeleteParams::default(), &ListParams::default())
            .unwrap();
        assert!(maps.list(&ListParams::default()).unwrap().items.is_empty());
    });
}

#[test]
fn e2e_blocking_crud_dynamic_custom_resource() {
    let harness = Harness::start(ApiServer::builder());
    let client = harness.builder().build().unwrap();
    let crds: Api<CustomResourceDefinition> = Api::cluster(client.clone()).unwrap();
    let crd: CustomResourceDefinition = serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
                 "names": {"kind": "Widget", "plural": "widgets", "singular": "widget"},
                 "versions": [{"name": "v1", "served": true, "storage": true,
                               "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]}
    }))
    .unwrap();
    let resource = ApiResource::new("example.com", "v1", "Widget", "widgets", Scope::Namespaced);
    let widgets: Api<DynamicObject> =
        Api::dynamic(client, resource.clone(), Some("default")).unwrap();
    within(30, move || {
        crds.create(&PostParams::default(), &crd).unwrap();
        let widget = DynamicObject::new("w1", &resource)
            .within("default")
            .with_data(json!({"spec": {"size": 3}}));
        let created = widgets.create(&PostParams::default(), &widget).unwrap();
        assert_eq!(created.data["spec"]["size"], 3);
        let patched = widgets
            .patch(
                "w1",
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"size": 4}})),
            )
            .unwrap();
        assert_eq!(patched.data["spec"]["size"], 4);
        assert_eq!(widgets.list(&ListParams::default()).unwrap().items.len(), 1);
        let metadata = widgets.metadata().get("w1").unwrap();
        assert_eq!(metadata.metadata.name.as_deref(), Some("w1"));
        widgets.delete("w1", &DeleteParams::default()).unwrap();
        assert!(widgets.get_opt("w1").unwrap().is_none());
    });
}

#[test]
fn e2e_blocking_pagination_walks_every_page() {
    let harness = Harness::start(ApiServer::builder());
    let client = harness.builder().build().unwrap();
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), "paged").unwrap();
    within(60, move || {
        namespace(&client, "paged");
        for i in 0..25 {
            maps.create(
                &PostParams::default(),
                &config_map(&format!("cm-{i:02}"), &[]),
            )
            .unwrap();
        }
        let params = ListParams {
            limit: Some(10),
            ..Default::default()
        };
        let pages: Vec<_> = maps.list_pages(&params).collect::<Result<_, _>>().unwrap();
        assert_eq!(
            pages.iter().map(|p| p.items.len()).collect::<Vec<_>>(),
            [10, 10, 5]
        );
        let names: Vec<_> = maps
            .list_all(&params)
            .unwrap()
            .into_iter()
            .map(|m| m.metadata.name.unwrap())
            .collect();
        let want: Vec<_> = (0..25).map(|i| format!("cm-{i:02}")).collect();
        assert_eq!(names, want);
    });
}

#[test]
fn e2e_blocking_watch_sees_create_update_delete_in_order() {
    let harness = Harness::start(ApiServer::builder());
    let client = harness.builder().build().unwrap();
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), "watched").unwrap();
    within(30, move || {
        namespace(&client, "watched");
        let start = maps.list(&ListParams::default()).unwrap();
        let params = WatchParams {
            resource_version: start.resource_version().map(str::to_owned),
            ..Default::default()
        };
        let mut events = maps.watch(&params).unwrap();
        let writer = maps.clone();
        let writes = std::thread::spawn(move || {
            writer
                .create(&PostParams::default(), &config_map("w", &[("v", "1")]))
                .unwrap();
            writer
                .patch(
                    "w",
                    &PatchParams::default(),
                    &Patch::Merge(json!({"data": {"v": "2"}})),
                )
                .unwrap();
            writer.delete("w", &DeleteParams::default()).unwrap();
        });
        let mut seen = Vec::new();
        while seen.len() < 3 {
            match events.next().expect("the watch ended early").unwrap() {
                WatchEvent::Added(m) => seen.push(("ADDED", m.data.unwrap()["v"].clone())),
                WatchEvent::Modified(m) => seen.push(("MODIFIED", m.data.unwrap()["v"].clone())),
                WatchEvent::Deleted(m) => seen.push(("DELETED", m.data.unwrap()["v"].clone())),
                WatchEvent::Bookmark(_) => {}
                WatchEvent::Error(status) => panic!("{status:?}"),
            }
        }
        writes.join().unwrap();
        assert_eq!(
            seen,
            [
                ("ADDED", "1".to_owned()),
                ("MODIFIED", "2".to_owned()),
                ("DELETED", "2".to_owned())
            ]
        );
    });
}

#[test]
fn e2e_blocking_retries_429_and_503_with_retry_after() {
    let statuses = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = statuses.clone();
    let harness = Harness::start(
        ApiServer::builder().log_requests(move |r| log.lock().unwrap().push(r.status.as_u16())),
    );
    let client = harness.builder().build().unwrap();
    let maps: Api<ConfigMap> = Api::namespaced(client, "default").unwrap();
    let faults = harness.server().faults();
    within(30, move || {
        faults.fail_requests(2, 429, 0);
        maps.create(&PostParams::default(), &config_map("retried", &[]))
            .unwrap();
        faults.fail_requests(1, 503, 1);
        maps.get("retried").unwrap();
    });
    assert_eq!(*statuses.lock().unwrap(), [429, 429, 201, 503, 200]);
}

#[test]
fn e2e_blocking_stall_silent_watch_ends_in_a_timeout_error() {
    let harness = Harness::start(ApiServer::builder());
    let client = harness
        .builder()
        .read_timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    let maps: Api<ConfigMap> = Api::namespaced(client, "default").unwrap();
    let faults = harness.server().faults();
    within(30, move || {
        maps.create(&PostParams::default(), &config_map("quiet", &[]))
            .unwrap();
        faults.stall_watches(1, 0);
        let params = WatchParams {
            resource_version: Some("0".into()),
            ..Default::default()
        };
        let items: Vec<_> = maps.watch(&params).unwrap().collect();
        let last = items.last().expect("an error item");
        assert!(matches!(last, Err(e) if e.is_timeout()), "{items:?}");
    });
}

#[test]
fn e2e_blocking_status_subresource() {
    use k8s_openapi::api::apps::v1::Deployment;
    let harness = Harness::start(ApiServer::builder());
    let client = harness.builder().build().unwrap();
    let deployments: Api<Deployment> = Api::namespaced(client, "default").unwrap();
    let deployment: Deployment = serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}
    }))
    .unwrap();
    within(30, move || {
        let mut created = deployments
            .create(&PostParams::default(), &deployment)
            .unwrap();
        created.status = serde_json::from_value(json!({"replicas": 2})).unwrap();
        let replaced = deployments
            .replace_status("web", &PostParams::default(), &created)
            .unwrap();
        assert_eq!(replaced.status.unwrap().replicas, Some(2));
        let patch = Patch::Merge(json!({"status": {"readyReplicas": 1}}));
        deployments
            .patch_status("web", &PatchParams::default(), &patch)
            .unwrap();
        let status = deployments.get_status("web").unwrap().status.unwrap();
        assert_eq!((status.replicas, status.ready_replicas), (Some(2), Some(1)));
    });
}
