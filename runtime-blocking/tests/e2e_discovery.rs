//! windlass-blocking end to end against windlass-apiserver over TLS:
//! discovery (aggregated and the legacy walk), dynamic access by
//! group/version/kind (built-in kinds and a CRD), and the protobuf and CBOR
//! modes with their JSON fallback on 406 and 415. The server runs on a
//! tokio runtime's worker threads; the test thread makes blocking calls.

use std::collections::BTreeMap;
use std::sync::mpsc;
use std::time::Duration;

use http::header::CONTENT_TYPE;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde_json::json;
use windlass_blocking::{Api, Call, Client, ClientBuilder, Discovery};
use windlass_proto::api as proto;
use windlass_proto::codec::Format;
use windlass_proto::config::{ContextOptions, Kubeconfig};
use windlass_proto::discovery::GroupVersionKind;
use windlass_proto::dynamic::DynamicObject;
use windlass_proto::params::{ListParams, WatchParams};
use windlass_proto::request::{DeleteParams, Patch, PatchParams, PostParams};
use windlass_proto::resource::{ApiResource, Scope};
use windlass_proto::watch::WatchEvent;
use windlass_testkit::apiserver::{ApiServer, Faults, RunningServer};

/// A running server, the runtime that drives it, and a client builder for it.
struct Harness {
    runtime: tokio::runtime::Runtime,
    server: Option<RunningServer>,
}

impl Harness {
    fn start() -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let server = runtime
            .block_on(async {
                tokio::time::timeout(Duration::from_secs(30), ApiServer::builder().start()).await
            })
            .expect("windlass-apiserver starts within 30 s")
            .expect("windlass-apiserver starts");
        Self {
            runtime,
            server: Some(server),
        }
    }

    /// What a test body needs: a way to make clients, and the faults.
    fn parts(&self) -> (Builders, Faults) {
        let server = self.server.as_ref().unwrap();
        let kubeconfig = Kubeconfig::parse(server.kubeconfig().as_bytes(), None).unwrap();
        let no_files = |p: &std::path::Path| {
            Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                p.display().to_string(),
            ))
        };
        let config = kubeconfig
            .resolve(&ContextOptions::default(), &no_files)
            .unwrap();
        (Builders(config), server.faults())
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

/// Client builders for the server's current context (client certificate).
#[derive(Clone)]
struct Builders(windlass_proto::config::Config);

impl Builders {
    fn builder(&self) -> ClientBuilder {
        ClientBuilder::from_config(&self.0).unwrap()
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

fn namespace(client: &Client, name: &str) {
    let namespaces: Api<Namespace> = Api::all(client.clone()).unwrap();
    let mut ns = Namespace::default();
    ns.metadata.name = Some(name.into());
    namespaces.create(&PostParams::default(), &ns).unwrap();
}

fn config_map(name: &str, value: &str) -> ConfigMap {
    let mut map = ConfigMap::default();
    map.metadata.name = Some(name.into());
    map.data = Some(BTreeMap::from([("v".to_owned(), value.to_owned())]));
    map
}

fn widget_crd() -> CustomResourceDefinition {
    serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
                 "names": {"kind": "Widget", "plural": "widgets", "singular": "widget", "shortNames": ["wd"]},
                 "versions": [{"name": "v1", "served": true, "storage": true,
                               "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]}
    }))
    .unwrap()
}

/// Every resource as `(apiVersion, kind, plural, scope, verbs, subresources)`, sorted.
fn summary(discovery: &Discovery) -> Vec<String> {
    let mut rows: Vec<String> = discovery
        .resources()
        .map(|r| {
            let mut subs: Vec<String> = r
                .subresources
                .iter()
                .map(|s| format!("{}:{:?}", s.name, s.kind))
                .collect();
            subs.sort();
            format!(
                "{} {} {} {:?} {:?} {:?}",
                r.resource.api_version,
                r.resource.kind,
                r.resource.plural,
                r.resource.scope,
                r.verbs,
                subs
            )
        })
        .collect();
    rows.sort();
    rows
}

#[test]
fn e2e_blocking_discovery_aggregated_then_a_new_crd_after_refresh() {
    let harness = Harness::start();
    let (builders, _) = harness.parts();
    within(30, move || {
        let client = builders.builder().build().unwrap();
        let mut discovery = Discovery::run(&client).unwrap();
        assert!(discovery.is_aggregated());
        assert!(discovery.failed().is_empty(), "{:?}", discovery.failed());
        let pods = discovery
            .resolve(&GroupVersionKind::new("", "v1", "Pod"))
            .unwrap();
        assert_eq!(pods.resource.plural, "pods");
        assert_eq!(pods.resource.scope, Scope::Namespaced);
        assert!(pods.supports("watch"));
        assert_eq!(
            discovery.resolve_kind("Namespace").unwrap().resource.scope,
            Scope::Cluster
        );
        let deployments = discovery.resolve_group_kind("apps", "Deployment").unwrap();
        assert_eq!(
            deployments.subresource("scale").unwrap().kind,
            Some(GroupVersionKind::new("autoscaling", "v1", "Scale"))
        );
        assert!(
            discovery
                .resolve_group_kind("example.com", "Widget")
                .is_none()
        );

        let crds: Api<CustomResourceDefinition> = Api::cluster(client.clone()).unwrap();
        crds.create(&PostParams::default(), &widget_crd()).unwrap();
        discovery.refresh().unwrap();
        let widgets = discovery
            .resolve_group_kind("example.com", "Widget")
            .unwrap();
        assert_eq!(
            widgets.resource,
            ApiResource::new("example.com", "v1", "Widget", "widgets", Scope::Namespaced)
        );
        assert_eq!(
            discovery
                .resolve_resource("example.com", "wd")
                .unwrap()
                .resource
                .kind,
            "Widget"
        );
    });
}

#[test]
fn e2e_blocking_discovery_falls_back_to_the_legacy_walk_on_406() {
    let harness = Harness::start();
    let (builders, faults) = harness.parts();
    within(30, move || {
        let client = builders.builder().build().unwrap();
        let aggregated = Discovery::run(&client).unwrap();
        // The next two requests, /api and /apis asking for aggregated
        // discovery, are refused with 406: the walk goes legacy.
        faults.fail_requests(2, 406, 0);
        let legacy = Discovery::run(&client).unwrap();
        assert!(aggregated.is_aggregated());
        assert!(!legacy.is_aggregated());
        assert!(legacy.failed().is_empty(), "{:?}", legacy.failed());
        assert!(
            summary(&aggregated).len() >= 8,
            "{:?}",
            summary(&aggregated)
        );
        assert_eq!(summary(&legacy), summary(&aggregated));
    });
}

#[test]
fn e2e_blocking_dynamic_crud_of_a_builtin_kind_found_by_gvk() {
    let harness = Harness::start();
    let (builders, _) = harness.parts();
    within(30, move || {
        let client = builders.builder().build().unwrap();
        namespace(&client, "dyn");
        let discovery = Discovery::run(&client).unwrap();
        let gvk = GroupVersionKind::new("", "v1", "ConfigMap");
        let maps = discovery.dynamic(&gvk, Some("dyn")).unwrap();
        let resource = discovery.api_resource(&gvk).unwrap();
        let map = DynamicObject::new("m", &resource).with_data(json!({"data": {"v": "1"}}));
        let created = maps.create(&PostParams::default(), &map).unwrap();
        assert_eq!(created.data["data"]["v"], "1");
        let mut fetched = maps.get("m").unwrap();
        assert_eq!(fetched.types.as_ref().unwrap().kind, "ConfigMap");
        fetched.data["data"]["v"] = json!("2");
        let replaced = maps.replace("m", &PostParams::default(), &fetched).unwrap();
        assert_eq!(replaced.data["data"]["v"], "2");
        let patched = maps
            .patch(
                "m",
                &PatchParams::default(),
                &Patch::Merge(json!({"data": {"v": "3"}})),
            )
            .unwrap();
        assert_eq!(patched.data["data"]["v"], "3");
        // The typed view of the same object agrees.
        let typed: ConfigMap = patched.try_parse().unwrap();
        assert_eq!(typed.data.unwrap()["v"], "3");
        assert_eq!(maps.list(&ListParams::default()).unwrap().items.len(), 1);
        let metadata = maps.metadata().get("m").unwrap();
        assert_eq!(metadata.metadata.name.as_deref(), Some("m"));
        maps.delete("m", &DeleteParams::default()).unwrap();
        assert!(maps.get_opt("m").unwrap().is_none());
        // A GVK the server does not serve is a clear error.
        let missing = discovery.dynamic(&GroupVersionKind::new("apps", "v9", "Deployment"), None);
        let err = missing.unwrap_err().to_string();
        assert!(err.contains("apps/v9/Deployment"), "{err}");
    });
}

/// CRUD and a watch on the Widget CRD through `discovery`, as `DynamicObject`s.
fn widget_crud_and_watch(client: &Client) {
    let crds: Api<CustomResourceDefinition> = Api::cluster(client.clone()).unwrap();
    crds.create(&PostParams::default(), &widget_crd()).unwrap();
    let discovery = Discovery::run(client).unwrap();
    let widgets = discovery
        .dynamic_for_kind("example.com", "Widget", Some("default"))
        .unwrap();
    let resource = discovery
        .api_resource(&GroupVersionKind::new("example.com", "v1", "Widget"))
        .unwrap();
    let start = widgets.list(&ListParams::default()).unwrap();
    let params = WatchParams {
        resource_version: start.resource_version().map(str::to_owned),
        ..Default::default()
    };
    let mut events = widgets.watch(&params).unwrap();
    let widget = DynamicObject::new("w1", &resource).with_data(json!({"spec": {"size": 3}}));
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
    assert_eq!(widgets.get("w1").unwrap().data["spec"]["size"], 4);
    widgets.delete("w1", &DeleteParams::default()).unwrap();
    let mut seen = Vec::new();
    while seen.len() < 3 {
        match events.next().expect("the watch ended early").unwrap() {
            WatchEvent::Added(w) => seen.push(("ADDED", w.data["spec"]["size"].clone())),
            WatchEvent::Modified(w) => seen.push(("MODIFIED", w.data["spec"]["size"].clone())),
            WatchEvent::Deleted(w) => seen.push(("DELETED", w.data["spec"]["size"].clone())),
            WatchEvent::Bookmark(_) => {}
            WatchEvent::Error(status) => panic!("{status:?}"),
        }
    }
    assert_eq!(
        seen,
        [
            ("ADDED", json!(3)),
            ("MODIFIED", json!(4)),
            ("DELETED", json!(4))
        ]
    );
}

#[test]
fn e2e_blocking_dynamic_crud_and_watch_of_a_crd_found_by_gvk() {
    let harness = Harness::start();
    let (builders, _) = harness.parts();
    within(30, move || {
        widget_crud_and_watch(&builders.builder().build().unwrap())
    });
}

/// CRUD, list and watch of ConfigMaps with `format`, checking the server
/// really answered in it; the CRD (which has no protobuf form) still works.
fn crud_list_and_watch_in(format: Format, builders: &Builders, _: &Faults) {
    let client = builders.builder().format(format).build().unwrap();
    let ns = format!("fmt-{}", format!("{format:?}").to_lowercase());
    namespace(&client, &ns);
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), &ns).unwrap();
    let start = maps.list(&ListParams::default()).unwrap();
    let params = WatchParams {
        resource_version: start.resource_version().map(str::to_owned),
        ..Default::default()
    };
    let mut events = maps.watch(&params).unwrap();
    let created = maps
        .create(&PostParams::default(), &config_map("a", "1"))
        .unwrap();
    assert_eq!(created.data.as_ref().unwrap()["v"], "1");
    let mut current = maps.get("a").unwrap();
    current.data = Some(BTreeMap::from([("v".to_owned(), "2".to_owned())]));
    let replaced = maps.replace("a", &PostParams::default(), &current).unwrap();
    assert_eq!(replaced.data.as_ref().unwrap()["v"], "2");
    let patched = maps
        .patch(
            "a",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"v": "3"}})),
        )
        .unwrap();
    assert_eq!(patched.data.as_ref().unwrap()["v"], "3");
    maps.create(&PostParams::default(), &config_map("b", "1"))
        .unwrap();
    let list = maps.list(&ListParams::default()).unwrap();
    let mut names: Vec<_> = list
        .items
        .iter()
        .filter_map(|m| m.metadata.name.clone())
        .collect();
    names.sort();
    assert_eq!(names, ["a", "b"]);
    maps.delete("a", &DeleteParams::default()).unwrap();
    let mut seen = Vec::new();
    while seen.len() < 5 {
        match events.next().expect("the watch ended early").unwrap() {
            WatchEvent::Added(m) => seen.push(("ADDED", m.metadata.name.unwrap())),
            WatchEvent::Modified(m) => seen.push(("MODIFIED", m.metadata.name.unwrap())),
            WatchEvent::Deleted(m) => seen.push(("DELETED", m.metadata.name.unwrap())),
            WatchEvent::Bookmark(_) => {}
            WatchEvent::Error(status) => panic!("{status:?}"),
        }
    }
    let want = [
        ("ADDED", "a"),
        ("MODIFIED", "a"),
        ("MODIFIED", "a"),
        ("ADDED", "b"),
        ("DELETED", "a"),
    ];
    assert_eq!(seen, want.map(|(t, n)| (t, n.to_owned())));

    // The same get, sent raw: the server answered in the format asked for.
    let raw = proto::Api::<ConfigMap>::namespaced(&ns)
        .unwrap()
        .with_formats(client.formats().clone())
        .get("b")
        .unwrap();
    let call = Call {
        verb: raw.verb,
        kind: raw.kind,
        resource: "configmaps",
    };
    let (head, body) = client.send_for_bytes(raw.request, call).unwrap();
    assert_eq!(head.headers[CONTENT_TYPE], format.media_type());
    assert_eq!(Format::sniff(&body), format);
    assert!(
        !client
            .formats()
            .has_fallen_back(&ApiResource::of::<ConfigMap>())
    );

    // A DynamicObject of a built-in kind, found by GVK, in the same format.
    let discovery = Discovery::run(&client).unwrap();
    let gvk = GroupVersionKind::new("", "v1", "ConfigMap");
    let dynamic = discovery.dynamic(&gvk, Some(ns.as_str())).unwrap();
    let resource = discovery.api_resource(&gvk).unwrap();
    let object = DynamicObject::new("d", &resource).with_data(json!({"data": {"v": "1"}}));
    let created = dynamic.create(&PostParams::default(), &object).unwrap();
    assert_eq!(created.data["data"]["v"], "1");
    assert_eq!(dynamic.get("d").unwrap().data["data"]["v"], "1");
    let listed = dynamic.list(&ListParams::default()).unwrap();
    assert_eq!(listed.items.len(), 2);
    dynamic.delete("d", &DeleteParams::default()).unwrap();
    assert!(!client.formats().has_fallen_back(&resource));

    // A custom resource has no protobuf form: JSON, the same calls.
    widget_crud_and_watch(&client);
}

/// A 406 on a read and a 415 on a write are answered again in JSON, and the
/// resource then stays on JSON; a watch refused with 406 opens in JSON.
fn json_fallback_in(format: Format, builders: &Builders, faults: &Faults) {
    let client = builders.builder().format(format).build().unwrap();
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), "default").unwrap();
    let resource = ApiResource::of::<ConfigMap>();
    faults.fail_requests(1, 415, 0);
    let created = maps
        .create(&PostParams::default(), &config_map("c", "1"))
        .unwrap();
    assert_eq!(created.data.unwrap()["v"], "1");
    assert!(client.formats().has_fallen_back(&resource));
    assert_eq!(maps.get("c").unwrap().metadata.name.as_deref(), Some("c"));

    let client = builders.builder().format(format).build().unwrap();
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), "default").unwrap();
    faults.fail_requests(1, 406, 0);
    assert_eq!(maps.get("c").unwrap().data.unwrap()["v"], "1");
    assert!(client.formats().has_fallen_back(&resource));

    let client = builders.builder().format(format).build().unwrap();
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), "default").unwrap();
    let start = maps.list(&ListParams::default()).unwrap();
    let params = WatchParams {
        resource_version: start.resource_version().map(str::to_owned),
        ..Default::default()
    };
    faults.fail_requests(1, 406, 0);
    let mut events = maps.watch(&params).unwrap();
    assert!(client.formats().has_fallen_back(&resource));
    maps.delete("c", &DeleteParams::default()).unwrap();
    loop {
        match events.next().expect("the watch ended early").unwrap() {
            WatchEvent::Deleted(m) => break assert_eq!(m.metadata.name.as_deref(), Some("c")),
            WatchEvent::Bookmark(_) => {}
            other => panic!("{other:?}"),
        }
    }
    // Any other refusal is the caller's error, not a fallback.
    let client = builders.builder().format(format).build().unwrap();
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), "default").unwrap();
    faults.fail_requests(1, 400, 0);
    let err = maps.get("c").unwrap_err();
    assert_eq!(err.api().map(|a| a.code()), Some(400));
    assert!(!client.formats().has_fallen_back(&resource));
}

#[test]
fn e2e_blocking_protobuf_crud_list_and_watch() {
    let harness = Harness::start();
    let (builders, faults) = harness.parts();
    within(60, move || {
        crud_list_and_watch_in(Format::Protobuf, &builders, &faults)
    });
}

#[test]
fn e2e_blocking_protobuf_falls_back_to_json_on_406_and_415() {
    let harness = Harness::start();
    let (builders, faults) = harness.parts();
    within(60, move || {
        json_fallback_in(Format::Protobuf, &builders, &faults)
    });
}

#[test]
fn e2e_blocking_cbor_crud_list_and_watch() {
    let harness = Harness::start();
    let (builders, faults) = harness.parts();
    within(60, move || {
        crud_list_and_watch_in(Format::Cbor, &builders, &faults)
    });
}

#[test]
fn e2e_blocking_cbor_falls_back_to_json_on_406_and_415() {
    let harness = Harness::start();
    let (builders, faults) = harness.parts();
    within(60, move || {
        json_fallback_in(Format::Cbor, &builders, &faults)
    });
}
