//! windlass-smol end to end against windlass-apiserver over TLS with
//! client-certificate auth: discovery (aggregated and the legacy walk),
//! dynamic access by group/version/kind (built-in kinds and a CRD), and the
//! protobuf and CBOR modes with their JSON fallback on 406 and 415 — each
//! scenario on smol's executor and on async-std's. Ported from
//! windlass-tokio's `e2e_discovery.rs`.

mod harness;

use std::collections::BTreeMap;

use futures_util::StreamExt;
use harness::{Ctx, config_map, namespace};
use http::header::CONTENT_TYPE;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde_json::json;
use windlass_proto::api as proto;
use windlass_proto::codec::Format;
use windlass_proto::discovery::GroupVersionKind;
use windlass_proto::dynamic::DynamicObject;
use windlass_proto::params::{ListParams, WatchParams};
use windlass_proto::request::{DeleteParams, Patch, PatchParams, PostParams};
use windlass_proto::resource::{ApiResource, Scope};
use windlass_proto::watch::WatchEvent;
use windlass_smol::{Api, Call, Client, Discovery};
use windlass_testkit::apiserver::ApiServer;

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

on_both_executors!(
    e2e_smol_discovery_aggregated_then_a_new_crd_after_refresh,
    e2e_async_std_discovery_aggregated_then_a_new_crd_after_refresh,
    discovery_aggregated_then_refresh
);

async fn discovery_aggregated_then_refresh(ctx: Ctx) {
    let client = ctx.client();
    let mut discovery = Discovery::run(&client).await.unwrap();
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
    crds.create(&PostParams::default(), &widget_crd())
        .await
        .unwrap();
    discovery.refresh().await.unwrap();
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
}

on_both_executors!(
    e2e_smol_discovery_falls_back_to_the_legacy_walk_on_406,
    e2e_async_std_discovery_falls_back_to_the_legacy_walk_on_406,
    discovery_legacy_on_406
);

async fn discovery_legacy_on_406(ctx: Ctx) {
    let client = ctx.client();
    let aggregated = Discovery::run(&client).await.unwrap();
    // The next two requests, /api and /apis asking for aggregated
    // discovery, are refused with 406: the walk goes legacy.
    ctx.server.faults().fail_requests(2, 406, 0);
    let legacy = Discovery::run(&client).await.unwrap();
    assert!(aggregated.is_aggregated());
    assert!(!legacy.is_aggregated());
    assert!(legacy.failed().is_empty(), "{:?}", legacy.failed());
    assert!(
        summary(&aggregated).len() >= 8,
        "{:?}",
        summary(&aggregated)
    );
    assert_eq!(summary(&legacy), summary(&aggregated));
}

on_both_executors!(
    e2e_smol_dynamic_crud_of_a_builtin_kind_found_by_gvk,
    e2e_async_std_dynamic_crud_of_a_builtin_kind_found_by_gvk,
    dynamic_builtin_by_gvk
);

async fn dynamic_builtin_by_gvk(ctx: Ctx) {
    let client = ctx.client();
    namespace(&client, "dyn").await;
    let discovery = Discovery::run(&client).await.unwrap();
    let gvk = GroupVersionKind::new("", "v1", "ConfigMap");
    let maps = discovery.dynamic(&gvk, Some("dyn")).unwrap();
    let resource = discovery.api_resource(&gvk).unwrap();
    let map = DynamicObject::new("m", &resource).with_data(json!({"data": {"v": "1"}}));
    let created = maps.create(&PostParams::default(), &map).await.unwrap();
    assert_eq!(created.data["data"]["v"], "1");
    let mut fetched = maps.get("m").await.unwrap();
    assert_eq!(fetched.types.as_ref().unwrap().kind, "ConfigMap");
    fetched.data["data"]["v"] = json!("2");
    let replaced = maps
        .replace("m", &PostParams::default(), &fetched)
        .await
        .unwrap();
    assert_eq!(replaced.data["data"]["v"], "2");
    let patched = maps
        .patch(
            "m",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"v": "3"}})),
        )
        .await
        .unwrap();
    assert_eq!(patched.data["data"]["v"], "3");
    // The typed view of the same object agrees.
    let typed: ConfigMap = patched.try_parse().unwrap();
    assert_eq!(typed.data.unwrap()["v"], "3");
    assert_eq!(
        maps.list(&ListParams::default()).await.unwrap().items.len(),
        1
    );
    let metadata = maps.metadata().get("m").await.unwrap();
    assert_eq!(metadata.metadata.name.as_deref(), Some("m"));
    maps.delete("m", &DeleteParams::default()).await.unwrap();
    assert!(maps.get_opt("m").await.unwrap().is_none());
    // A GVK the server does not serve is a clear error.
    let missing = discovery.dynamic(&GroupVersionKind::new("apps", "v9", "Deployment"), None);
    let err = missing.unwrap_err().to_string();
    assert!(err.contains("apps/v9/Deployment"), "{err}");
}

/// CRUD and a watch on the Widget CRD through discovery, as `DynamicObject`s.
async fn widget_crud_and_watch(client: &Client) {
    let crds: Api<CustomResourceDefinition> = Api::cluster(client.clone()).unwrap();
    crds.create(&PostParams::default(), &widget_crd())
        .await
        .unwrap();
    let discovery = Discovery::run(client).await.unwrap();
    let widgets = discovery
        .dynamic_for_kind("example.com", "Widget", Some("default"))
        .unwrap();
    let resource = discovery
        .api_resource(&GroupVersionKind::new("example.com", "v1", "Widget"))
        .unwrap();
    let start = widgets.list(&ListParams::default()).await.unwrap();
    let params = WatchParams {
        resource_version: start.resource_version().map(str::to_owned),
        ..Default::default()
    };
    let mut events = Box::pin(widgets.watch(&params).await.unwrap());
    let widget = DynamicObject::new("w1", &resource).with_data(json!({"spec": {"size": 3}}));
    let created = widgets
        .create(&PostParams::default(), &widget)
        .await
        .unwrap();
    assert_eq!(created.data["spec"]["size"], 3);
    let patched = widgets
        .patch(
            "w1",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"size": 4}})),
        )
        .await
        .unwrap();
    assert_eq!(patched.data["spec"]["size"], 4);
    assert_eq!(widgets.get("w1").await.unwrap().data["spec"]["size"], 4);
    widgets
        .delete("w1", &DeleteParams::default())
        .await
        .unwrap();
    let mut seen = Vec::new();
    while seen.len() < 3 {
        match events.next().await.expect("the watch ended early").unwrap() {
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

on_both_executors!(
    e2e_smol_dynamic_crud_and_watch_of_a_crd_found_by_gvk,
    e2e_async_std_dynamic_crud_and_watch_of_a_crd_found_by_gvk,
    dynamic_crd_by_gvk
);

async fn dynamic_crd_by_gvk(ctx: Ctx) {
    widget_crud_and_watch(&ctx.client()).await;
}

/// CRUD, list and watch of ConfigMaps with `format`, checking the server
/// really answered in it; the CRD (which has no protobuf form) still works.
async fn crud_list_and_watch_in(format: Format, ctx: Ctx) {
    let client = ctx.builder().format(format).build().unwrap();
    let ns = format!("fmt-{}", format!("{format:?}").to_lowercase());
    namespace(&client, &ns).await;
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), &ns).unwrap();
    let start = maps.list(&ListParams::default()).await.unwrap();
    let params = WatchParams {
        resource_version: start.resource_version().map(str::to_owned),
        ..Default::default()
    };
    let mut events = Box::pin(maps.watch(&params).await.unwrap());
    let created = maps
        .create(&PostParams::default(), &config_map("a", "1"))
        .await
        .unwrap();
    assert_eq!(created.data.as_ref().unwrap()["v"], "1");
    let mut current = maps.get("a").await.unwrap();
    current.data = Some(BTreeMap::from([("v".to_owned(), "2".to_owned())]));
    let replaced = maps
        .replace("a", &PostParams::default(), &current)
        .await
        .unwrap();
    assert_eq!(replaced.data.as_ref().unwrap()["v"], "2");
    let patched = maps
        .patch(
            "a",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"v": "3"}})),
        )
        .await
        .unwrap();
    assert_eq!(patched.data.as_ref().unwrap()["v"], "3");
    maps.create(&PostParams::default(), &config_map("b", "1"))
        .await
        .unwrap();
    let list = maps.list(&ListParams::default()).await.unwrap();
    let mut names: Vec<_> = list
        .items
        .iter()
        .filter_map(|m| m.metadata.name.clone())
        .collect();
    names.sort();
    assert_eq!(names, ["a", "b"]);
    maps.delete("a", &DeleteParams::default()).await.unwrap();
    let mut seen = Vec::new();
    while seen.len() < 5 {
        match events.next().await.expect("the watch ended early").unwrap() {
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
    let (head, body) = client.send_for_bytes(raw.request, call).await.unwrap();
    assert_eq!(head.headers[CONTENT_TYPE], format.media_type());
    assert_eq!(Format::sniff(&body), format);
    assert!(
        !client
            .formats()
            .has_fallen_back(&ApiResource::of::<ConfigMap>())
    );

    // A DynamicObject of a built-in kind, found by GVK, in the same format.
    let discovery = Discovery::run(&client).await.unwrap();
    let gvk = GroupVersionKind::new("", "v1", "ConfigMap");
    let dynamic = discovery.dynamic(&gvk, Some(ns.as_str())).unwrap();
    let resource = discovery.api_resource(&gvk).unwrap();
    let object = DynamicObject::new("d", &resource).with_data(json!({"data": {"v": "1"}}));
    let created = dynamic
        .create(&PostParams::default(), &object)
        .await
        .unwrap();
    assert_eq!(created.data["data"]["v"], "1");
    assert_eq!(dynamic.get("d").await.unwrap().data["data"]["v"], "1");
    let listed = dynamic.list(&ListParams::default()).await.unwrap();
    assert_eq!(listed.items.len(), 2);
    dynamic.delete("d", &DeleteParams::default()).await.unwrap();
    assert!(!client.formats().has_fallen_back(&resource));

    // A custom resource has no protobuf form: JSON, the same calls.
    widget_crud_and_watch(&client).await;
}

/// A 406 on a read and a 415 on a write are answered again in JSON, and the
/// resource then stays on JSON; a watch refused with 406 opens in JSON.
async fn json_fallback_in(format: Format, ctx: Ctx) {
    let faults = ctx.server.faults();
    let client = ctx.builder().format(format).build().unwrap();
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), "default").unwrap();
    let resource = ApiResource::of::<ConfigMap>();
    faults.fail_requests(1, 415, 0);
    let created = maps
        .create(&PostParams::default(), &config_map("c", "1"))
        .await
        .unwrap();
    assert_eq!(created.data.unwrap()["v"], "1");
    assert!(client.formats().has_fallen_back(&resource));
    assert_eq!(
        maps.get("c").await.unwrap().metadata.name.as_deref(),
        Some("c")
    );

    let client = ctx.builder().format(format).build().unwrap();
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), "default").unwrap();
    faults.fail_requests(1, 406, 0);
    assert_eq!(maps.get("c").await.unwrap().data.unwrap()["v"], "1");
    assert!(client.formats().has_fallen_back(&resource));

    let client = ctx.builder().format(format).build().unwrap();
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), "default").unwrap();
    let start = maps.list(&ListParams::default()).await.unwrap();
    let params = WatchParams {
        resource_version: start.resource_version().map(str::to_owned),
        ..Default::default()
    };
    faults.fail_requests(1, 406, 0);
    let mut events = Box::pin(maps.watch(&params).await.unwrap());
    assert!(client.formats().has_fallen_back(&resource));
    maps.delete("c", &DeleteParams::default()).await.unwrap();
    loop {
        match events.next().await.expect("the watch ended early").unwrap() {
            WatchEvent::Deleted(m) => break assert_eq!(m.metadata.name.as_deref(), Some("c")),
            WatchEvent::Bookmark(_) => {}
            other => panic!("{other:?}"),
        }
    }
    // Any other refusal is the caller's error, not a fallback.
    let client = ctx.builder().format(format).build().unwrap();
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), "default").unwrap();
    faults.fail_requests(1, 400, 0);
    let err = maps.get("c").await.unwrap_err();
    assert_eq!(err.api().map(|a| a.code()), Some(400));
    assert!(!client.formats().has_fallen_back(&resource));
}

async fn protobuf_crud(ctx: Ctx) {
    crud_list_and_watch_in(Format::Protobuf, ctx).await;
}

async fn protobuf_fallback(ctx: Ctx) {
    json_fallback_in(Format::Protobuf, ctx).await;
}

async fn cbor_crud(ctx: Ctx) {
    crud_list_and_watch_in(Format::Cbor, ctx).await;
}

async fn cbor_fallback(ctx: Ctx) {
    json_fallback_in(Format::Cbor, ctx).await;
}

on_both_executors!(
    e2e_smol_protobuf_crud_list_and_watch,
    e2e_async_std_protobuf_crud_list_and_watch,
    protobuf_crud
);

on_both_executors!(
    e2e_smol_protobuf_falls_back_to_json_on_406_and_415,
    e2e_async_std_protobuf_falls_back_to_json_on_406_and_415,
    protobuf_fallback
);

on_both_executors!(
    e2e_smol_cbor_crud_list_and_watch,
    e2e_async_std_cbor_crud_list_and_watch,
    cbor_crud
);

on_both_executors!(
    e2e_smol_cbor_falls_back_to_json_on_406_and_415,
    e2e_async_std_cbor_falls_back_to_json_on_406_and_415,
    cbor_fallback
);
