//! The discovery scenarios ([`Group::Discovery`](super::Group::Discovery)):
//! aggregated and legacy discovery, dynamic access by group/version/kind
//! (a built-in kind and a CRD), and the protobuf and CBOR modes with their
//! JSON fallback on 406 and 415.

use std::collections::BTreeMap;

use http::header::CONTENT_TYPE;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde_json::json;
use windlass_proto::api as proto;
use windlass_proto::codec::Format;
use windlass_proto::discovery::{Discovery, GroupVersionKind};
use windlass_proto::dynamic::DynamicObject;
use windlass_proto::params::{ListParams, WatchParams};
use windlass_proto::request::Patch;
use windlass_proto::resource::{ApiResource, Scope};
use windlass_proto::watch::WatchEvent;

use super::core::{config_map, namespace, next_events, widget_crd};
use super::{Ctx, Discovering};

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

/// Aggregated discovery answers client-go's REST-mapper questions; a CRD
/// created later appears after a refresh, with its short name.
pub async fn discovery_aggregated_then_a_new_crd_after_refresh<R: Discovering>(ctx: Ctx<R>) {
    let client = ctx.client();
    let mut discovery = R::discover(&client).await.unwrap();
    let found = R::discovered(&discovery);
    assert!(found.is_aggregated());
    assert!(found.failed().is_empty(), "{:?}", found.failed());
    let pods = found
        .resolve(&GroupVersionKind::new("", "v1", "Pod"))
        .unwrap();
    assert_eq!(pods.resource.plural, "pods");
    assert_eq!(pods.resource.scope, Scope::Namespaced);
    assert!(pods.supports("watch"));
    assert_eq!(
        found.resolve_kind("Namespace").unwrap().resource.scope,
        Scope::Cluster
    );
    let deployments = found.resolve_group_kind("apps", "Deployment").unwrap();
    assert_eq!(
        deployments.subresource("scale").unwrap().kind,
        Some(GroupVersionKind::new("autoscaling", "v1", "Scale"))
    );
    assert!(found.resolve_group_kind("example.com", "Widget").is_none());

    let crds = R::cluster::<CustomResourceDefinition>(&client);
    R::create(&crds, &widget_crd()).await.unwrap();
    R::rediscover(&mut discovery).await.unwrap();
    let found = R::discovered(&discovery);
    let widgets = found.resolve_group_kind("example.com", "Widget").unwrap();
    assert_eq!(
        widgets.resource,
        ApiResource::new("example.com", "v1", "Widget", "widgets", Scope::Namespaced)
    );
    assert_eq!(
        found
            .resolve_resource("example.com", "wd")
            .unwrap()
            .resource
            .kind,
        "Widget"
    );
}

/// Aggregated discovery refused with 406: the legacy walk finds the same.
pub async fn discovery_falls_back_to_the_legacy_walk_on_406<R: Discovering>(ctx: Ctx<R>) {
    let client = ctx.client();
    let aggregated = R::discover(&client).await.unwrap();
    // The next two requests, /api and /apis asking for aggregated
    // discovery, are refused with 406: the walk goes legacy.
    ctx.server.faults().fail_requests(2, 406, 0);
    let legacy = R::discover(&client).await.unwrap();
    let (aggregated, legacy) = (R::discovered(&aggregated), R::discovered(&legacy));
    assert!(aggregated.is_aggregated());
    assert!(!legacy.is_aggregated());
    assert!(legacy.failed().is_empty(), "{:?}", legacy.failed());
    assert!(summary(aggregated).len() >= 8, "{:?}", summary(aggregated));
    assert_eq!(summary(legacy), summary(aggregated));
}

/// A built-in kind found by GVK, as `DynamicObject`s: CRUD, the typed view
/// agrees, metadata only; an unserved GVK is a clear error.
pub async fn dynamic_crud_of_a_builtin_kind_found_by_gvk<R: Discovering>(ctx: Ctx<R>) {
    let client = ctx.client();
    namespace::<R>(&client, "dyn").await;
    let discovery = R::discover(&client).await.unwrap();
    let gvk = GroupVersionKind::new("", "v1", "ConfigMap");
    let maps = R::dynamic_by_gvk(&discovery, &gvk, Some("dyn")).unwrap();
    let resource = R::discovered(&discovery).api_resource(&gvk).unwrap();
    let map = DynamicObject::new("m", &resource).with_data(json!({"data": {"v": "1"}}));
    let created = R::create(&maps, &map).await.unwrap();
    assert_eq!(created.data["data"]["v"], "1");
    let mut fetched = R::get(&maps, "m").await.unwrap();
    assert_eq!(fetched.types.as_ref().unwrap().kind, "ConfigMap");
    fetched.data["data"]["v"] = json!("2");
    let replaced = R::replace(&maps, "m", &fetched).await.unwrap();
    assert_eq!(replaced.data["data"]["v"], "2");
    let patch = Patch::Merge(json!({"data": {"v": "3"}}));
    let patched = R::patch(&maps, "m", &patch).await.unwrap();
    assert_eq!(patched.data["data"]["v"], "3");
    // The typed view of the same object agrees.
    let typed: ConfigMap = patched.try_parse().unwrap();
    assert_eq!(typed.data.unwrap()["v"], "3");
    assert_eq!(
        R::list(&maps, &ListParams::default())
            .await
            .unwrap()
            .items
            .len(),
        1
    );
    let metadata = R::metadata_get(&maps, "m").await.unwrap();
    assert_eq!(metadata.metadata.name.as_deref(), Some("m"));
    R::delete(&maps, "m").await.unwrap();
    assert!(R::get_opt(&maps, "m").await.unwrap().is_none());
    // A GVK the server does not serve is a clear error.
    let missing = R::dynamic_by_gvk(
        &discovery,
        &GroupVersionKind::new("apps", "v9", "Deployment"),
        None,
    );
    let err = missing.err().expect("apps/v9 is not served").to_string();
    assert!(err.contains("apps/v9/Deployment"), "{err}");
}

/// CRUD and a watch on the Widget CRD found through discovery, as
/// `DynamicObject`s.
async fn widget_crud_and_watch<R: Discovering>(client: &R::Client) {
    let crds = R::cluster::<CustomResourceDefinition>(client);
    R::create(&crds, &widget_crd()).await.unwrap();
    let discovery = R::discover(client).await.unwrap();
    let widgets =
        R::dynamic_for_kind(&discovery, "example.com", "Widget", Some("default")).unwrap();
    let resource = R::discovered(&discovery)
        .api_resource(&GroupVersionKind::new("example.com", "v1", "Widget"))
        .unwrap();
    let start = R::list(&widgets, &ListParams::default()).await.unwrap();
    let params = WatchParams {
        resource_version: start.resource_version().map(str::to_owned),
        ..Default::default()
    };
    let mut events = R::watch(&widgets, &params).await.unwrap();
    let widget = DynamicObject::new("w1", &resource).with_data(json!({"spec": {"size": 3}}));
    let created = R::create(&widgets, &widget).await.unwrap();
    assert_eq!(created.data["spec"]["size"], 3);
    let patch = Patch::Merge(json!({"spec": {"size": 4}}));
    let patched = R::patch(&widgets, "w1", &patch).await.unwrap();
    assert_eq!(patched.data["spec"]["size"], 4);
    assert_eq!(
        R::get(&widgets, "w1").await.unwrap().data["spec"]["size"],
        4
    );
    R::delete(&widgets, "w1").await.unwrap();
    let seen = next_events::<R, _, _>(&mut events, 3, |w: DynamicObject| {
        w.data["spec"]["size"].clone()
    })
    .await;
    assert_eq!(
        seen,
        [
            ("ADDED", json!(3)),
            ("MODIFIED", json!(4)),
            ("DELETED", json!(4))
        ]
    );
}

/// A CRD found by GVK: CRUD and a watch in order.
pub async fn dynamic_crud_and_watch_of_a_crd_found_by_gvk<R: Discovering>(ctx: Ctx<R>) {
    widget_crud_and_watch::<R>(&ctx.client()).await;
}

/// CRUD, list and watch of ConfigMaps with `format`, checking the server
/// really answered in it; the CRD (which has no protobuf form) still works.
async fn crud_list_and_watch_in<R: Discovering>(format: Format, ctx: &Ctx<R>) {
    let client = ctx.rt.client(ctx.options().format(format));
    let ns = format!("fmt-{}", format!("{format:?}").to_lowercase());
    namespace::<R>(&client, &ns).await;
    let maps = R::namespaced::<ConfigMap>(&client, &ns);
    let start = R::list(&maps, &ListParams::default()).await.unwrap();
    let params = WatchParams {
        resource_version: start.resource_version().map(str::to_owned),
        ..Default::default()
    };
    let mut events = R::watch(&maps, &params).await.unwrap();
    let created = R::create(&maps, &config_map("a", &[("v", "1")]))
        .await
        .unwrap();
    assert_eq!(created.data.as_ref().unwrap()["v"], "1");
    let mut current = R::get(&maps, "a").await.unwrap();
    current.data = Some(BTreeMap::from([("v".to_owned(), "2".to_owned())]));
    let replaced = R::replace(&maps, "a", &current).await.unwrap();
    assert_eq!(replaced.data.as_ref().unwrap()["v"], "2");
    let patch = Patch::Merge(json!({"data": {"v": "3"}}));
    let patched = R::patch(&maps, "a", &patch).await.unwrap();
    assert_eq!(patched.data.as_ref().unwrap()["v"], "3");
    R::create(&maps, &config_map("b", &[("v", "1")]))
        .await
        .unwrap();
    let list = R::list(&maps, &ListParams::default()).await.unwrap();
    let mut names: Vec<_> = list
        .items
        .iter()
        .filter_map(|m| m.metadata.name.clone())
        .collect();
    names.sort();
    assert_eq!(names, ["a", "b"]);
    R::delete(&maps, "a").await.unwrap();
    let seen =
        next_events::<R, _, _>(&mut events, 5, |m: ConfigMap| m.metadata.name.unwrap()).await;
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
        .with_formats(R::formats(&client))
        .get("b")
        .unwrap();
    let (head, body) = R::send_get_for_bytes(&client, raw.request, "configmaps")
        .await
        .unwrap();
    assert_eq!(head.headers[CONTENT_TYPE], format.media_type());
    assert_eq!(Format::sniff(&body), format);
    assert!(!R::has_fallen_back(
        &client,
        &ApiResource::of::<ConfigMap>()
    ));

    // A DynamicObject of a built-in kind, found by GVK, in the same format.
    let discovery = R::discover(&client).await.unwrap();
    let gvk = GroupVersionKind::new("", "v1", "ConfigMap");
    let dynamic = R::dynamic_by_gvk(&discovery, &gvk, Some(ns.as_str())).unwrap();
    let resource = R::discovered(&discovery).api_resource(&gvk).unwrap();
    let object = DynamicObject::new("d", &resource).with_data(json!({"data": {"v": "1"}}));
    let created = R::create(&dynamic, &object).await.unwrap();
    assert_eq!(created.data["data"]["v"], "1");
    assert_eq!(R::get(&dynamic, "d").await.unwrap().data["data"]["v"], "1");
    let listed = R::list(&dynamic, &ListParams::default()).await.unwrap();
    assert_eq!(listed.items.len(), 2);
    R::delete(&dynamic, "d").await.unwrap();
    assert!(!R::has_fallen_back(&client, &resource));

    // A custom resource has no protobuf form: JSON, the same calls.
    widget_crud_and_watch::<R>(&client).await;
}

/// A 406 on a read and a 415 on a write are answered again in JSON, and the
/// resource then stays on JSON; a watch refused with 406 opens in JSON; any
/// other refusal is the caller's error.
async fn json_fallback_in<R: Discovering>(format: Format, ctx: &Ctx<R>) {
    let faults = ctx.server.faults();
    let resource = ApiResource::of::<ConfigMap>();
    let client = ctx.rt.client(ctx.options().format(format));
    let maps = R::namespaced::<ConfigMap>(&client, "default");
    faults.fail_requests(1, 415, 0);
    let created = R::create(&maps, &config_map("c", &[("v", "1")]))
        .await
        .unwrap();
    assert_eq!(created.data.unwrap()["v"], "1");
    assert!(R::has_fallen_back(&client, &resource));
    assert_eq!(
        R::get(&maps, "c").await.unwrap().metadata.name.as_deref(),
        Some("c")
    );

    let client = ctx.rt.client(ctx.options().format(format));
    let maps = R::namespaced::<ConfigMap>(&client, "default");
    faults.fail_requests(1, 406, 0);
    assert_eq!(R::get(&maps, "c").await.unwrap().data.unwrap()["v"], "1");
    assert!(R::has_fallen_back(&client, &resource));

    let client = ctx.rt.client(ctx.options().format(format));
    let maps = R::namespaced::<ConfigMap>(&client, "default");
    let start = R::list(&maps, &ListParams::default()).await.unwrap();
    let params = WatchParams {
        resource_version: start.resource_version().map(str::to_owned),
        ..Default::default()
    };
    faults.fail_requests(1, 406, 0);
    let mut events = R::watch(&maps, &params).await.unwrap();
    assert!(R::has_fallen_back(&client, &resource));
    R::delete(&maps, "c").await.unwrap();
    loop {
        match R::next_event(&mut events)
            .await
            .expect("the watch ended early")
            .unwrap()
        {
            WatchEvent::Deleted(m) => break assert_eq!(m.metadata.name.as_deref(), Some("c")),
            WatchEvent::Bookmark(_) => {}
            other => panic!("{other:?}"),
        }
    }
    // Any other refusal is the caller's error, not a fallback.
    let client = ctx.rt.client(ctx.options().format(format));
    let maps = R::namespaced::<ConfigMap>(&client, "default");
    faults.fail_requests(1, 400, 0);
    let err = R::get(&maps, "c").await.unwrap_err();
    assert_eq!(err.code, Some(400), "{err}");
    assert!(!R::has_fallen_back(&client, &resource));
}

/// [`crud_list_and_watch_in`] protobuf.
pub async fn protobuf_crud_list_and_watch<R: Discovering>(ctx: Ctx<R>) {
    crud_list_and_watch_in(Format::Protobuf, &ctx).await;
}

/// [`json_fallback_in`] protobuf.
pub async fn protobuf_falls_back_to_json_on_406_and_415<R: Discovering>(ctx: Ctx<R>) {
    json_fallback_in(Format::Protobuf, &ctx).await;
}

/// [`crud_list_and_watch_in`] CBOR.
pub async fn cbor_crud_list_and_watch<R: Discovering>(ctx: Ctx<R>) {
    crud_list_and_watch_in(Format::Cbor, &ctx).await;
}

/// [`json_fallback_in`] CBOR.
pub async fn cbor_falls_back_to_json_on_406_and_415<R: Discovering>(ctx: Ctx<R>) {
    json_fallback_in(Format::Cbor, &ctx).await;
}
