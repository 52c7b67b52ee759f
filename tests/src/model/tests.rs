//! The model's behaviour, one test per rule (names carry `model_` and the topic).

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use windlass_proto::params::{ListParams, ResourceVersionMatch, WatchParams};
use windlass_proto::watch::WatchEvent;

use super::*;

fn server() -> (ApiServer, Instant) {
    let now = Instant::now();
    (ApiServer::new(Config::default(), now), now)
}

fn pods() -> Gvr {
    Gvr::core("pods")
}

fn cms() -> Gvr {
    Gvr::core("configmaps")
}

fn named(name: &str) -> Value {
    json!({"metadata": {"name": name}})
}

fn labelled(name: &str, labels: Value) -> Value {
    json!({"metadata": {"name": name, "labels": labels}})
}

fn rv_of(object: &Value) -> u64 {
    object["metadata"]["resourceVersion"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("object has a numeric resourceVersion")
}

fn names(list: &List) -> Vec<String> {
    list.items
        .iter()
        .map(|o| o["metadata"]["name"].as_str().unwrap_or("").to_owned())
        .collect()
}

fn drain(watch: &mut Watch, server: &ApiServer, now: Instant) -> Vec<WatchEvent<Arc<Value>>> {
    let mut out = Vec::new();
    while let WatchPoll::Event(e) = watch.poll(server, now) {
        out.push(e);
    }
    out
}

fn describe(events: &[WatchEvent<Arc<Value>>]) -> Vec<String> {
    events
        .iter()
        .map(|e| match e {
            WatchEvent::Added(o) => format!(
                "ADDED {} {}",
                o["metadata"]["name"].as_str().unwrap_or(""),
                rv_of(o)
            ),
            WatchEvent::Modified(o) => format!(
                "MODIFIED {} {}",
                o["metadata"]["name"].as_str().unwrap_or(""),
                rv_of(o)
            ),
            WatchEvent::Deleted(o) => format!(
                "DELETED {} {}",
                o["metadata"]["name"].as_str().unwrap_or(""),
                rv_of(o)
            ),
            WatchEvent::Bookmark(b) => format!(
                "BOOKMARK {}{}",
                b.resource_version,
                if b.is_initial_events_end() {
                    " end"
                } else {
                    ""
                }
            ),
            WatchEvent::Error(s) => format!(
                "ERROR {} {}",
                s.code.unwrap_or_default(),
                s.message.as_deref().unwrap_or("")
            ),
        })
        .collect()
}

// --- create

#[test]
fn model_create_sets_uid_generation_timestamp_and_global_resource_version() {
    let (mut s, now) = server();
    let before = s.resource_version();
    let pod = s
        .create(
            &pods(),
            Some("default"),
            named("web"),
            now + Duration::from_secs(90),
        )
        .unwrap();
    assert_eq!(rv_of(&pod), before + 1);
    assert_eq!(pod["kind"], "Pod");
    assert_eq!(pod["apiVersion"], "v1");
    assert_eq!(pod["metadata"]["namespace"], "default");
    assert_eq!(pod["metadata"]["generation"], 1);
    assert_eq!(pod["metadata"]["creationTimestamp"], "2026-01-01T00:01:30Z");
    let uid = pod["metadata"]["uid"].as_str().unwrap();
    assert_eq!(uid.len(), 36);
    assert_eq!(&uid[14..15], "4");
    // The counter is global across resources, as etcd's revision.
    let cm = s.create(&cms(), Some("default"), named("c"), now).unwrap();
    assert_eq!(rv_of(&cm), before + 2);
    assert!(cm["metadata"].get("generation").is_none());
}

#[test]
fn model_gvr_of_a_typed_resource_and_typed_round_trip() {
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::core::v1::Pod;
    assert_eq!(Gvr::of::<Pod>(), Gvr::core("pods"));
    assert_eq!(
        Gvr::of::<Deployment>(),
        Gvr::new("apps", "v1", "deployments")
    );
    let (mut s, now) = server();
    let mut pod = Pod::default();
    pod.metadata.name = Some("typed".into());
    let stored = s
        .create(
            &Gvr::of::<Pod>(),
            Some("default"),
            serde_json::to_value(&pod).unwrap(),
            now,
        )
        .unwrap();
    let back: Pod = serde_json::from_value((*stored).clone()).unwrap();
    assert_eq!(back.metadata.namespace.as_deref(), Some("default"));
    assert_eq!(
        back.metadata.resource_version.as_deref(),
        Some(s.resource_version().to_string().as_str())
    );
}

#[test]
fn model_create_is_deterministic_for_a_seed() {
    let now = Instant::now();
    let run = |seed| {
        let mut s = ApiServer::new(
            Config {
                seed,
                ..Config::default()
            },
            now,
        );
        let o = s
            .create(
                &cms(),
                Some("default"),
                json!({"metadata": {"generateName": "job-"}}),
                now,
            )
            .unwrap();
        (
            o["metadata"]["name"].as_str().unwrap().to_owned(),
            o["metadata"]["uid"].as_str().unwrap().to_owned(),
        )
    };
    assert_eq!(run(7), run(7));
    assert_ne!(run(7), run(8));
    let (name, _) = run(7);
    assert!(name.starts_with("job-") && name.len() == 9, "{name}");
}

#[test]
fn model_create_existing_is_already_exists_409() {
    let (mut s, now) = server();
    s.create(&pods(), Some("default"), named("a"), now).unwrap();
    let e = s
        .create(&pods(), Some("default"), named("a"), now)
        .unwrap_err();
    assert_eq!(e.code(), 409);
    assert_eq!(e.reason(), "AlreadyExists");
    assert_eq!(e.message(), "pods \"a\" already exists");
    assert_eq!(
        e.to_json(),
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "message": "pods \"a\" already exists", "reason": "AlreadyExists",
               "details": {"name": "a", "group": "", "kind": "pods"}, "code": 409})
    );
    let d = Gvr::new("apps", "v1", "deployments");
    s.create(&d, Some("default"), named("d"), now).unwrap();
    let e = s.create(&d, Some("default"), named("d"), now).unwrap_err();
    assert_eq!(e.message(), "deployments.apps \"d\" already exists");
}

#[test]
fn model_create_invalid_name_is_422_with_causes() {
    let (mut s, now) = server();
    let e = s
        .create(&cms(), Some("default"), named("Bad_Name"), now)
        .unwrap_err();
    assert_eq!(e.code(), 422);
    assert_eq!(e.reason(), "Invalid");
    assert!(
        e.message().starts_with(
            "ConfigMap \"Bad_Name\" is invalid: metadata.name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain"
        ),
        "{}",
        e.message()
    );
    let details = e.status().details.as_ref().unwrap();
    assert_eq!(details.kind.as_deref(), Some("ConfigMap"));
    let cause = &details.causes.as_ref().unwrap()[0];
    assert_eq!(cause.reason.as_deref(), Some("FieldValueInvalid"));
    assert_eq!(cause.field.as_deref(), Some("metadata.name"));
    // Services take DNS-1035 labels: no leading digit.
    let e = s
        .create(&Gvr::core("services"), Some("default"), named("1svc"), now)
        .unwrap_err();
    assert!(e.message().contains("a DNS-1035 label"), "{}", e.message());
    let e = s
        .create(&cms(), Some("default"), json!({"metadata": {}}), now)
        .unwrap_err();
    assert_eq!(
        e.message(),
        "ConfigMap \"\" is invalid: metadata.name: Required value: name or generateName is required"
    );
}

#[test]
fn model_labels_are_validated_on_create_and_update() {
    let (mut s, now) = server();
    let e = s
        .create(
            &cms(),
            Some("default"),
            labelled("c", json!({"app": "bad value"})),
            now,
        )
        .unwrap_err();
    assert_eq!(e.code(), 422);
    assert!(
        e.message().starts_with("ConfigMap \"c\" is invalid: metadata.labels: Invalid value: \"bad value\": a valid label must be an empty string"),
        "{}",
        e.message()
    );
    let e = s
        .create(
            &cms(),
            Some("default"),
            labelled("c", json!({"Example.com/x": "v", "a/b/c": "v"})),
            now,
        )
        .unwrap_err();
    let causes = e
        .status()
        .details
        .as_ref()
        .unwrap()
        .causes
        .as_ref()
        .unwrap();
    assert_eq!(causes.len(), 2, "{}", e.message());
    assert!(
        e.message()
            .contains("prefix part a lowercase RFC 1123 subdomain"),
        "{}",
        e.message()
    );
    let e = s
        .create(&cms(), Some("default"), labelled("c", json!({"n": 1})), now)
        .unwrap_err();
    assert_eq!(e.code(), 400);
    let c = s
        .create(
            &cms(),
            Some("default"),
            labelled("c", json!({"example.com/ok": "v_1.2-3"})),
            now,
        )
        .unwrap();
    let mut body = (*c).clone();
    body["metadata"]["labels"]["-x"] = json!("v");
    let e = s
        .update(&cms(), Some("default"), "c", Subresource::Main, body, now)
        .unwrap_err();
    assert_eq!(e.code(), 422);
}

#[test]
fn model_create_needs_an_existing_namespace() {
    let (mut s, now) = server();
    let e = s
        .create(&pods(), Some("nope"), named("a"), now)
        .unwrap_err();
    assert_eq!((e.code(), e.reason()), (404, "NotFound"));
    assert_eq!(e.message(), "namespaces \"nope\" not found");
    let e = s.create(&pods(), None, named("a"), now).unwrap_err();
    assert_eq!((e.code(), e.reason()), (405, "MethodNotAllowed"));
    let e = s
        .create(
            &pods(),
            Some("default"),
            json!({"metadata": {"name": "a", "namespace": "other"}}),
            now,
        )
        .unwrap_err();
    assert_eq!(e.code(), 400);
    assert_eq!(
        e.message(),
        "the namespace of the provided object does not match the namespace sent on the request"
    );
}

#[test]
fn model_create_with_resource_version_is_refused() {
    let (mut s, now) = server();
    let e = s
        .create(
            &cms(),
            Some("default"),
            json!({"metadata": {"name": "a", "resourceVersion": "5"}}),
            now,
        )
        .unwrap_err();
    assert_eq!(e.code(), 500);
    assert!(
        e.message()
            .contains("resourceVersion should not be set on objects to be created")
    );
}

#[test]
fn model_unknown_resource_is_404() {
    let (s, _) = server();
    let e = s
        .get(&Gvr::core("widgets"), Some("default"), "x")
        .unwrap_err();
    assert_eq!(e.code(), 404);
    assert_eq!(
        e.message(),
        "the server could not find the requested resource"
    );
    let e = s
        .get(&Gvr::new("apps", "v2", "deployments"), Some("default"), "x")
        .unwrap_err();
    assert_eq!(e.code(), 404);
}

// --- get, update

#[test]
fn model_get_missing_is_not_found_404() {
    let (s, _) = server();
    let e = s.get(&pods(), Some("default"), "ghost").unwrap_err();
    assert_eq!((e.code(), e.reason()), (404, "NotFound"));
    assert_eq!(e.message(), "pods \"ghost\" not found");
    let d = e.status().details.as_ref().unwrap();
    assert_eq!(
        (d.name.as_deref(), d.kind.as_deref()),
        (Some("ghost"), Some("pods"))
    );
}

#[test]
fn model_update_stale_resource_version_is_conflict_409() {
    let (mut s, now) = server();
    let v1 = s.create(&cms(), Some("default"), named("c"), now).unwrap();
    let mut body = (*v1).clone();
    body["data"] = json!({"k": "1"});
    let v2 = s
        .update(
            &cms(),
            Some("default"),
            "c",
            Subresource::Main,
            body.clone(),
            now,
        )
        .unwrap();
    assert!(rv_of(&v2) > rv_of(&v1));
    body["data"] = json!({"k": "2"});
    let e = s
        .update(&cms(), Some("default"), "c", Subresource::Main, body, now)
        .unwrap_err();
    assert_eq!((e.code(), e.reason()), (409, "Conflict"));
    assert_eq!(
        e.message(),
        "Operation cannot be fulfilled on configmaps \"c\": the object has been modified; please apply your changes to the latest version and try again"
    );
}

#[test]
fn model_update_without_resource_version_is_unconditional_and_keeps_system_fields() {
    let (mut s, now) = server();
    let v1 = s.create(&cms(), Some("default"), named("c"), now).unwrap();
    let v2 = s
        .update(
            &cms(),
            Some("default"),
            "c",
            Subresource::Main,
            json!({"metadata": {"name": "c"}, "data": {"a": "b"}}),
            now,
        )
        .unwrap();
    assert_eq!(v2["data"]["a"], "b");
    assert_eq!(v2["metadata"]["uid"], v1["metadata"]["uid"]);
    assert_eq!(
        v2["metadata"]["creationTimestamp"],
        v1["metadata"]["creationTimestamp"]
    );
    assert_eq!(v2["kind"], "ConfigMap");
    let e = s
        .update(
            &cms(),
            Some("default"),
            "c",
            Subresource::Main,
            json!({"metadata": {"name": "d"}}),
            now,
        )
        .unwrap_err();
    assert_eq!(
        e.message(),
        "the name of the object (d) does not match the name on the URL (c)"
    );
    let e = s
        .update(
            &cms(),
            Some("default"),
            "missing",
            Subresource::Main,
            named("missing"),
            now,
        )
        .unwrap_err();
    assert_eq!(e.code(), 404);
    let e = s
        .update(
            &cms(),
            Some("default"),
            "c",
            Subresource::Main,
            json!({"metadata": {"name": "c", "uid": "other"}}),
            now,
        )
        .unwrap_err();
    assert_eq!(e.code(), 422);
}

#[test]
fn model_update_bumps_generation_on_spec_change_only() {
    let (mut s, now) = server();
    let d = Gvr::new("apps", "v1", "deployments");
    let v1 = s
        .create(
            &d,
            Some("default"),
            json!({"metadata": {"name": "d"}, "spec": {"replicas": 1}}),
            now,
        )
        .unwrap();
    let mut body = (*v1).clone();
    body["metadata"]["labels"] = json!({"a": "b"});
    let v2 = s
        .update(&d, Some("default"), "d", Subresource::Main, body, now)
        .unwrap();
    assert_eq!(v2["metadata"]["generation"], 1);
    let mut body = (*v2).clone();
    body["spec"]["replicas"] = json!(3);
    let v3 = s
        .update(&d, Some("default"), "d", Subresource::Main, body, now)
        .unwrap();
    assert_eq!(v3["metadata"]["generation"], 2);
    let mut body = (*v3).clone();
    body["status"] = json!({"replicas": 3});
    let v4 = s
        .update(&d, Some("default"), "d", Subresource::Status, body, now)
        .unwrap();
    assert_eq!(v4["metadata"]["generation"], 2);
}

#[test]
fn model_update_that_changes_nothing_writes_nothing() {
    let (mut s, now) = server();
    let v1 = s.create(&cms(), Some("default"), named("c"), now).unwrap();
    let rv = s.resource_version();
    let v2 = s
        .update(
            &cms(),
            Some("default"),
            "c",
            Subresource::Main,
            (*v1).clone(),
            now,
        )
        .unwrap();
    assert_eq!(v2, v1);
    assert_eq!(s.resource_version(), rv);
}

#[test]
fn model_status_subresource_separates_spec_and_status() {
    let (mut s, now) = server();
    let v1 = s
        .create(&pods(), Some("default"), json!({"metadata": {"name": "p"}, "spec": {"nodeName": "n1"}, "status": {"phase": "Pending"}}), now)
        .unwrap();
    // A status update ignores spec and metadata changes.
    let mut body = (*v1).clone();
    body["spec"]["nodeName"] = json!("n2");
    body["metadata"]["labels"] = json!({"x": "y"});
    body["status"]["phase"] = json!("Running");
    let v2 = s
        .update(
            &pods(),
            Some("default"),
            "p",
            Subresource::Status,
            body,
            now,
        )
        .unwrap();
    assert_eq!(v2["spec"]["nodeName"], "n1");
    assert_eq!(v2["status"]["phase"], "Running");
    assert!(v2["metadata"].get("labels").is_none());
    // A main update ignores status changes.
    let mut body = (*v2).clone();
    body["spec"]["nodeName"] = json!("n3");
    body["status"]["phase"] = json!("Failed");
    let v3 = s
        .update(&pods(), Some("default"), "p", Subresource::Main, body, now)
        .unwrap();
    assert_eq!(v3["spec"]["nodeName"], "n3");
    assert_eq!(v3["status"]["phase"], "Running");
    // ConfigMaps have no status subresource.
    s.create(&cms(), Some("default"), named("c"), now).unwrap();
    let e = s
        .update(
            &cms(),
            Some("default"),
            "c",
            Subresource::Status,
            named("c"),
            now,
        )
        .unwrap_err();
    assert_eq!(e.code(), 404);
}

// --- patch

#[test]
fn model_merge_patch_applies_rfc7386() {
    let (mut s, now) = server();
    s.create(
        &cms(),
        Some("default"),
        json!({"metadata": {"name": "c"}, "data": {"a": "1", "b": "2"}}),
        now,
    )
    .unwrap();
    let p =
        Patch::Merge(json!({"data": {"a": null, "c": "3"}, "metadata": {"labels": {"l": "v"}}}));
    let v = s
        .patch(&cms(), Some("default"), "c", Subresource::Main, &p, now)
        .unwrap();
    assert_eq!(v["data"], json!({"b": "2", "c": "3"}));
    assert_eq!(v["metadata"]["labels"]["l"], "v");
    let stale = Patch::Merge(json!({"metadata": {"resourceVersion": "1"}, "data": {"x": "y"}}));
    let e = s
        .patch(&cms(), Some("default"), "c", Subresource::Main, &stale, now)
        .unwrap_err();
    assert_eq!(e.reason(), "Conflict");
}

#[test]
fn model_json_patch_applies_rfc6902_all_or_nothing() {
    let (mut s, now) = server();
    s.create(
        &cms(),
        Some("default"),
        json!({"metadata": {"name": "c"}, "data": {"a": "1"}}),
        now,
    )
    .unwrap();
    let p = Patch::Json(json!([
        {"op": "test", "path": "/data/a", "value": "1"},
        {"op": "add", "path": "/data/b", "value": "2"},
        {"op": "copy", "from": "/data/b", "path": "/data/c"},
        {"op": "move", "from": "/data/a", "path": "/data/d"},
        {"op": "replace", "path": "/data/c", "value": "9"},
        {"op": "add", "path": "/metadata/finalizers", "value": []},
        {"op": "add", "path": "/metadata/finalizers/-", "value": "x/y"},
        {"op": "remove", "path": "/metadata/finalizers/0"},
    ]));
    let v = s
        .patch(&cms(), Some("default"), "c", Subresource::Main, &p, now)
        .unwrap();
    assert_eq!(v["data"], json!({"b": "2", "c": "9", "d": "1"}));
    let rv = s.resource_version();
    let failing = Patch::Json(json!([
        {"op": "add", "path": "/data/z", "value": "1"},
        {"op": "test", "path": "/data/b", "value": "nope"},
    ]));
    let e = s
        .patch(
            &cms(),
            Some("default"),
            "c",
            Subresource::Main,
            &failing,
            now,
        )
        .unwrap_err();
    assert_eq!((e.code(), e.reason()), (422, "Invalid"));
    assert_eq!(e.message(), "testing value /data/b failed: test failed");
    assert_eq!(s.resource_version(), rv);
    let e = s
        .patch(
            &cms(),
            Some("default"),
            "c",
            Subresource::Main,
            &Patch::Json(json!({"op": "add"})),
            now,
        )
        .unwrap_err();
    assert_eq!(e.code(), 400);
    let missing = Patch::Json(json!([{"op": "remove", "path": "/data/nothing"}]));
    let e = s
        .patch(
            &cms(),
            Some("default"),
            "c",
            Subresource::Main,
            &missing,
            now,
        )
        .unwrap_err();
    assert_eq!(e.code(), 422);
}

#[test]
fn model_strategic_merge_and_apply_without_hook_are_415() {
    let (mut s, now) = server();
    s.create(&cms(), Some("default"), named("c"), now).unwrap();
    let e = s
        .patch(
            &cms(),
            Some("default"),
            "c",
            Subresource::Main,
            &Patch::StrategicMerge(json!({})),
            now,
        )
        .unwrap_err();
    assert_eq!((e.code(), e.reason()), (415, "UnsupportedMediaType"));
    assert!(e.message().starts_with("the body of the request was in an unknown format - accepted media types include: application/json-patch+json"));
    let apply = Patch::Apply {
        body: named("new"),
        field_manager: "me".into(),
        force: false,
    };
    let e = s
        .patch(
            &cms(),
            Some("default"),
            "new",
            Subresource::Main,
            &apply,
            now,
        )
        .unwrap_err();
    assert_eq!(e.code(), 415);
}

struct LabelEverything;

impl PatchHook for LabelEverything {
    fn strategic_merge(&self, _: &Resource, current: &Value, patch: &Value) -> Result<Value> {
        let mut out = current.clone();
        merge_patch(&mut out, patch);
        out["metadata"]["labels"]["smp"] = json!("yes");
        Ok(out)
    }
    fn apply(
        &self,
        _: &Resource,
        current: Option<&Value>,
        body: &Value,
        manager: &str,
        _: bool,
    ) -> Result<Value> {
        let mut out = current.cloned().unwrap_or_else(|| json!({}));
        merge_patch(&mut out, body);
        out["metadata"]["labels"]["manager"] = json!(manager);
        Ok(out)
    }
}

#[test]
fn model_patch_hook_takes_strategic_merge_and_apply() {
    let (mut s, now) = server();
    s.set_patch_hook(Box::new(LabelEverything));
    let apply = Patch::Apply {
        body: json!({"metadata": {"name": "c"}, "data": {"a": "1"}}),
        field_manager: "me".into(),
        force: false,
    };
    let created = s
        .patch(&cms(), Some("default"), "c", Subresource::Main, &apply, now)
        .unwrap();
    assert_eq!(created["metadata"]["labels"]["manager"], "me");
    assert!(created["metadata"]["uid"].is_string());
    let v = s
        .patch(
            &cms(),
            Some("default"),
            "c",
            Subresource::Main,
            &Patch::StrategicMerge(json!({"data": {"b": "2"}})),
            now,
        )
        .unwrap();
    assert_eq!(v["data"], json!({"a": "1", "b": "2"}));
    assert_eq!(v["metadata"]["labels"]["smp"], "yes");
}

// --- delete

#[test]
fn model_delete_answers_status_or_object_per_resource() {
    let (mut s, now) = server();
    let c = s.create(&cms(), Some("default"), named("c"), now).unwrap();
    let Deleted::Status(st) = s
        .delete(&cms(), Some("default"), "c", &DeleteOptions::default(), now)
        .unwrap()
    else {
        panic!("configmaps answer a Status");
    };
    assert_eq!(
        serde_json::to_value(&*st).unwrap(),
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
               "details": {"name": "c", "group": "", "kind": "configmaps", "uid": c["metadata"]["uid"]}})
    );
    s.create(&pods(), Some("default"), named("p"), now).unwrap();
    let Deleted::Object(p) = s
        .delete(
            &pods(),
            Some("default"),
            "p",
            &DeleteOptions::default(),
            now,
        )
        .unwrap()
    else {
        panic!("pods answer the object");
    };
    assert_eq!(rv_of(&p), s.resource_version());
    assert_eq!(
        s.get(&pods(), Some("default"), "p").unwrap_err().code(),
        404
    );
    assert_eq!(
        s.delete(
            &pods(),
            Some("default"),
            "p",
            &DeleteOptions::default(),
            now
        )
        .unwrap_err()
        .code(),
        404
    );
}

#[test]
fn model_delete_preconditions_conflict() {
    let (mut s, now) = server();
    let c = s.create(&cms(), Some("default"), named("c"), now).unwrap();
    let opts = DeleteOptions {
        uid: Some("wrong".into()),
        ..DeleteOptions::default()
    };
    let e = s
        .delete(&cms(), Some("default"), "c", &opts, now)
        .unwrap_err();
    assert_eq!(e.code(), 409);
    assert_eq!(
        e.message(),
        format!(
            "Operation cannot be fulfilled on configmaps \"c\": Precondition failed: UID in precondition: wrong, UID in object meta: {}",
            c["metadata"]["uid"].as_str().unwrap()
        )
    );
    let opts = DeleteOptions {
        resource_version: Some("1".into()),
        ..DeleteOptions::default()
    };
    let e = s
        .delete(&cms(), Some("default"), "c", &opts, now)
        .unwrap_err();
    assert!(
        e.message()
            .contains("Precondition failed: ResourceVersion in precondition: 1"),
        "{}",
        e.message()
    );
    let opts = DeleteOptions {
        uid: c["metadata"]["uid"].as_str().map(str::to_owned),
        resource_version: c["metadata"]["resourceVersion"].as_str().map(str::to_owned),
        ..DeleteOptions::default()
    };
    s.delete(&cms(), Some("default"), "c", &opts, now).unwrap();
}

#[test]
fn model_delete_with_finalizers_waits_until_they_are_removed() {
    let (mut s, now) = server();
    s.create(
        &cms(),
        Some("default"),
        json!({"metadata": {"name": "c", "finalizers": ["x.io/hold"]}}),
        now,
    )
    .unwrap();
    let Deleted::Object(marked) = s
        .delete(&cms(), Some("default"), "c", &DeleteOptions::default(), now)
        .unwrap()
    else {
        panic!("a held object is answered as the object");
    };
    assert!(marked["metadata"]["deletionTimestamp"].is_string());
    assert!(s.get(&cms(), Some("default"), "c").is_ok());
    let mut body = (*marked).clone();
    body["metadata"]["finalizers"] = json!([]);
    s.update(&cms(), Some("default"), "c", Subresource::Main, body, now)
        .unwrap();
    assert_eq!(s.get(&cms(), Some("default"), "c").unwrap_err().code(), 404);
}

#[test]
fn model_namespace_deletion_removes_what_it_contains() {
    let (mut s, now) = server();
    let ns = Gvr::core("namespaces");
    s.create(&ns, None, named("team"), now).unwrap();
    s.create(&pods(), Some("team"), named("p"), now).unwrap();
    s.create(&cms(), Some("team"), named("c"), now).unwrap();
    s.create(&cms(), Some("default"), named("c"), now).unwrap();
    let mut w = s
        .watch(
            &cms(),
            None,
            &WatchParams {
                resource_version: Some(s.resource_version().to_string()),
                ..WatchParams::default()
            },
            now,
        )
        .unwrap();
    let Deleted::Object(answer) = s
        .delete(&ns, None, "team", &DeleteOptions::default(), now)
        .unwrap()
    else {
        panic!("a namespace delete answers the namespace");
    };
    assert_eq!(answer["status"]["phase"], "Terminating");
    assert_eq!(s.get(&ns, None, "team").unwrap_err().code(), 404);
    assert_eq!(s.get(&pods(), Some("team"), "p").unwrap_err().code(), 404);
    assert!(s.get(&cms(), Some("default"), "c").is_ok());
    let events = describe(&drain(&mut w, &s, now));
    assert_eq!(events.len(), 1);
    assert!(events[0].starts_with("DELETED c"));
}

#[test]
fn model_system_namespaces_cannot_be_deleted() {
    let (mut s, now) = server();
    let e = s
        .delete(
            &Gvr::core("namespaces"),
            None,
            "default",
            &DeleteOptions::default(),
            now,
        )
        .unwrap_err();
    assert_eq!((e.code(), e.reason()), (403, "Forbidden"));
    assert_eq!(
        e.message(),
        "namespaces \"default\" is forbidden: this namespace may not be deleted"
    );
}

#[test]
fn model_namespace_with_held_object_stays_terminating_and_refuses_new_content() {
    let (mut s, now) = server();
    let ns = Gvr::core("namespaces");
    s.create(&ns, None, named("team"), now).unwrap();
    s.create(
        &cms(),
        Some("team"),
        json!({"metadata": {"name": "held", "finalizers": ["x.io/f"]}}),
        now,
    )
    .unwrap();
    s.delete(&ns, None, "team", &DeleteOptions::default(), now)
        .unwrap();
    assert_eq!(
        s.get(&ns, None, "team").unwrap()["status"]["phase"],
        "Terminating"
    );
    let e = s
        .create(&cms(), Some("team"), named("new"), now)
        .unwrap_err();
    assert_eq!((e.code(), e.reason()), (403, "Forbidden"));
    assert_eq!(
        e.message(),
        "configmaps \"new\" is forbidden: unable to create new content in namespace team because it is being terminated"
    );
    let held = s.get(&cms(), Some("team"), "held").unwrap();
    let mut body = (*held).clone();
    body["metadata"]["finalizers"] = json!(null);
    s.update(&cms(), Some("team"), "held", Subresource::Main, body, now)
        .unwrap();
    assert_eq!(s.get(&ns, None, "team").unwrap_err().code(), 404);
}

#[test]
fn model_deletecollection_deletes_what_the_selector_selects() {
    let (mut s, now) = server();
    for (name, app) in [("a", "x"), ("b", "y"), ("c", "x")] {
        s.create(
            &cms(),
            Some("default"),
            labelled(name, json!({"app": app})),
            now,
        )
        .unwrap();
    }
    let params = ListParams {
        label_selector: Some("app=x".into()),
        ..ListParams::default()
    };
    let deleted = s
        .delete_collection(
            &cms(),
            Some("default"),
            &params,
            &DeleteOptions::default(),
            now,
        )
        .unwrap();
    assert_eq!(names(&deleted), ["a", "c"]);
    let left = s
        .list(&cms(), Some("default"), &ListParams::default())
        .unwrap();
    assert_eq!(names(&left), ["b"]);
}

fn owned_by(name: &str, owners: &[&Value]) -> Value {
    let refs: Vec<Value> = owners
        .iter()
        .map(|o| json!({"apiVersion": o["apiVersion"], "kind": o["kind"], "name": o["metadata"]["name"], "uid": o["metadata"]["uid"]}))
        .collect();
    json!({"metadata": {"name": name, "ownerReferences": refs}})
}

#[test]
fn model_delete_background_collects_dependents_without_other_owners() {
    let (mut s, now) = server();
    let d = Gvr::new("apps", "v1", "deployments");
    let owner = s.create(&d, Some("default"), named("web"), now).unwrap();
    let other = s
        .create(&cms(), Some("default"), named("other"), now)
        .unwrap();
    s.create(&pods(), Some("default"), owned_by("only", &[&owner]), now)
        .unwrap();
    s.create(
        &pods(),
        Some("default"),
        owned_by("shared", &[&owner, &other]),
        now,
    )
    .unwrap();
    let grandchild = s.get(&pods(), Some("default"), "only").unwrap();
    s.create(
        &cms(),
        Some("default"),
        owned_by("grandchild", &[&grandchild]),
        now,
    )
    .unwrap();
    s.create(&pods(), Some("default"), named("free"), now)
        .unwrap();
    s.delete(&d, Some("default"), "web", &DeleteOptions::default(), now)
        .unwrap();
    assert_eq!(
        s.get(&pods(), Some("default"), "only").unwrap_err().code(),
        404
    );
    assert_eq!(
        s.get(&cms(), Some("default"), "grandchild")
            .unwrap_err()
            .code(),
        404
    );
    let shared = s.get(&pods(), Some("default"), "shared").unwrap();
    assert_eq!(
        shared["metadata"]["ownerReferences"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(shared["metadata"]["ownerReferences"][0]["name"], "other");
    assert!(s.get(&pods(), Some("default"), "free").is_ok());
}

#[test]
fn model_delete_orphan_keeps_dependents_without_the_reference() {
    let (mut s, now) = server();
    let owner = s
        .create(&cms(), Some("default"), named("owner"), now)
        .unwrap();
    s.create(&pods(), Some("default"), owned_by("child", &[&owner]), now)
        .unwrap();
    let opts = DeleteOptions {
        propagation_policy: Some(PropagationPolicy::Orphan),
        ..DeleteOptions::default()
    };
    s.delete(&cms(), Some("default"), "owner", &opts, now)
        .unwrap();
    let child = s.get(&pods(), Some("default"), "child").unwrap();
    assert!(child["metadata"].get("ownerReferences").is_none());
}

#[test]
fn model_delete_foreground_removes_dependents_before_the_owner() {
    let (mut s, now) = server();
    let owner = s
        .create(&cms(), Some("default"), named("owner"), now)
        .unwrap();
    s.create(&pods(), Some("default"), owned_by("child", &[&owner]), now)
        .unwrap();
    let from = s.resource_version();
    let mut w_cm = s
        .watch(
            &cms(),
            None,
            &WatchParams {
                resource_version: Some(from.to_string()),
                ..WatchParams::default()
            },
            now,
        )
        .unwrap();
    let mut w_pod = s
        .watch(
            &pods(),
            None,
            &WatchParams {
                resource_version: Some(from.to_string()),
                ..WatchParams::default()
            },
            now,
        )
        .unwrap();
    let opts = DeleteOptions {
        propagation_policy: Some(PropagationPolicy::Foreground),
        ..DeleteOptions::default()
    };
    let Deleted::Object(answer) = s
        .delete(&cms(), Some("default"), "owner", &opts, now)
        .unwrap()
    else {
        panic!("a foreground delete answers the waiting owner");
    };
    assert_eq!(
        answer["metadata"]["finalizers"],
        json!(["foregroundDeletion"])
    );
    assert_eq!(
        s.get(&cms(), Some("default"), "owner").unwrap_err().code(),
        404
    );
    assert_eq!(
        describe(&drain(&mut w_cm, &s, now)),
        [
            format!("MODIFIED owner {}", from + 1),
            format!("DELETED owner {}", from + 3)
        ]
    );
    assert_eq!(
        describe(&drain(&mut w_pod, &s, now)),
        [format!("DELETED child {}", from + 2)]
    );
}

// --- list

#[test]
fn model_list_resource_version_semantics() {
    let (mut s, now) = server();
    s.create(&cms(), Some("default"), named("a"), now).unwrap();
    let then = s.resource_version();
    s.create(&cms(), Some("default"), named("b"), now).unwrap();
    let latest = s.resource_version();
    let list = |s: &ApiServer, rv: Option<&str>, m| {
        s.list(
            &cms(),
            Some("default"),
            &ListParams {
                resource_version: rv.map(str::to_owned),
                resource_version_match: m,
                ..ListParams::default()
            },
        )
    };
    let unset = list(&s, None, None).unwrap();
    assert_eq!(
        (names(&unset), unset.resource_version.clone()),
        (vec!["a".to_owned(), "b".to_owned()], latest.to_string())
    );
    assert_eq!(names(&list(&s, Some("0"), None).unwrap()).len(), 2);
    let not_older = list(
        &s,
        Some(&then.to_string()),
        Some(ResourceVersionMatch::NotOlderThan),
    )
    .unwrap();
    assert_eq!(not_older.resource_version, latest.to_string());
    let exact = list(
        &s,
        Some(&then.to_string()),
        Some(ResourceVersionMatch::Exact),
    )
    .unwrap();
    assert_eq!(
        (names(&exact), exact.resource_version.clone()),
        (vec!["a".to_owned()], then.to_string())
    );
    let e = list(
        &s,
        Some(&(latest + 5).to_string()),
        Some(ResourceVersionMatch::NotOlderThan),
    )
    .unwrap_err();
    assert_eq!((e.code(), e.reason()), (504, "Timeout"));
    assert_eq!(
        e.message(),
        format!(
            "Timeout: Too large resource version: {}, current: {latest}",
            latest + 5
        )
    );
    let details = e.status().details.as_ref().unwrap();
    assert_eq!(details.retry_after_seconds, Some(1));
    assert_eq!(
        details.causes.as_ref().unwrap()[0].reason.as_deref(),
        Some("ResourceVersionTooLarge")
    );
    s.compact(latest);
    let e = list(
        &s,
        Some(&then.to_string()),
        Some(ResourceVersionMatch::Exact),
    )
    .unwrap_err();
    assert_eq!((e.code(), e.reason()), (410, "Expired"));
    assert_eq!(
        e.message(),
        "The resourceVersion for the provided list is too old."
    );
    assert!(list(&s, Some("abc"), None).unwrap_err().code() == 400);
}

#[test]
fn model_list_options_are_validated_422() {
    let (s, _) = server();
    let e = s
        .list(
            &cms(),
            None,
            &ListParams {
                resource_version_match: Some(ResourceVersionMatch::Exact),
                ..ListParams::default()
            },
        )
        .unwrap_err();
    assert_eq!((e.code(), e.reason()), (422, "Invalid"));
    assert_eq!(
        e.message(),
        "ListOptions.meta.k8s.io \"\" is invalid: resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided"
    );
    let e = s
        .list(
            &cms(),
            None,
            &ListParams {
                resource_version: Some("0".into()),
                resource_version_match: Some(ResourceVersionMatch::Exact),
                ..ListParams::default()
            },
        )
        .unwrap_err();
    assert!(
        e.message()
            .contains("resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\"")
    );
}

#[test]
fn model_list_pages_read_one_snapshot() {
    let (mut s, now) = server();
    for n in ["a", "b", "c", "d", "e"] {
        s.create(&cms(), Some("default"), named(n), now).unwrap();
    }
    let first = s
        .list(
            &cms(),
            Some("default"),
            &ListParams {
                limit: Some(2),
                ..ListParams::default()
            },
        )
        .unwrap();
    assert_eq!(names(&first), ["a", "b"]);
    assert_eq!(first.remaining_item_count, Some(3));
    // Changes after the first page do not show in the next ones.
    s.delete(&cms(), Some("default"), "c", &DeleteOptions::default(), now)
        .unwrap();
    s.create(&cms(), Some("default"), named("bb"), now).unwrap();
    let second = s
        .list(
            &cms(),
            Some("default"),
            &ListParams {
                limit: Some(2),
                continue_token: first.continue_token.clone(),
                ..ListParams::default()
            },
        )
        .unwrap();
    assert_eq!(names(&second), ["c", "d"]);
    assert_eq!(second.resource_version, first.resource_version);
    assert_eq!(second.remaining_item_count, Some(1));
    let third = s
        .list(
            &cms(),
            Some("default"),
            &ListParams {
                limit: Some(2),
                continue_token: second.continue_token.clone(),
                ..ListParams::default()
            },
        )
        .unwrap();
    assert_eq!(names(&third), ["e"]);
    assert_eq!(
        (third.continue_token.clone(), third.remaining_item_count),
        (None, None)
    );
    let json = first.to_json();
    assert_eq!(json["kind"], "ConfigMapList");
    assert_eq!(json["metadata"]["remainingItemCount"], 3);
    assert!(
        json["items"][0].get("kind").is_none(),
        "built-in list items carry no kind"
    );
}

#[test]
fn model_list_continue_expired_gives_fresh_token() {
    let (mut s, now) = server();
    for n in ["a", "b", "c", "d"] {
        s.create(&cms(), Some("default"), named(n), now).unwrap();
    }
    let first = s
        .list(
            &cms(),
            Some("default"),
            &ListParams {
                limit: Some(2),
                ..ListParams::default()
            },
        )
        .unwrap();
    s.create(&cms(), Some("default"), named("z"), now).unwrap();
    s.delete(&cms(), Some("default"), "d", &DeleteOptions::default(), now)
        .unwrap();
    s.compact(s.resource_version());
    let e = s
        .list(
            &cms(),
            Some("default"),
            &ListParams {
                limit: Some(2),
                continue_token: first.continue_token.clone(),
                ..ListParams::default()
            },
        )
        .unwrap_err();
    assert_eq!((e.code(), e.reason()), (410, "Expired"));
    assert!(e.message().starts_with("The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response"));
    let fresh = e
        .status()
        .metadata
        .continue_
        .clone()
        .expect("a fresh continue token");
    assert_eq!(ContinueToken::decode(&fresh).unwrap().resource_version, -1);
    // The fresh token resumes after the last key returned, at the latest revision.
    let rest = s
        .list(
            &cms(),
            Some("default"),
            &ListParams {
                limit: Some(10),
                continue_token: Some(fresh),
                ..ListParams::default()
            },
        )
        .unwrap();
    assert_eq!(names(&rest), ["c", "z"]);
    assert_eq!(rest.resource_version, s.resource_version().to_string());
}

#[test]
fn model_list_bad_continue_tokens_are_400() {
    let (mut s, now) = server();
    s.create(&cms(), Some("default"), named("a"), now).unwrap();
    let e = s
        .list(
            &cms(),
            None,
            &ListParams {
                continue_token: Some("not a token".into()),
                ..ListParams::default()
            },
        )
        .unwrap_err();
    assert_eq!(e.code(), 400);
    assert!(
        e.message()
            .starts_with("invalid continue token: continue key is not valid"),
        "{}",
        e.message()
    );
    let token = ContinueToken::new(0, "a\0".into()).encode();
    let e = s
        .list(
            &cms(),
            None,
            &ListParams {
                continue_token: Some(token),
                ..ListParams::default()
            },
        )
        .unwrap_err();
    assert!(
        e.message()
            .contains("incorrect encoded start resourceVersion"),
        "{}",
        e.message()
    );
    let token = ContinueToken::new(1, "a\0".into()).encode();
    let e = s
        .list(
            &cms(),
            None,
            &ListParams {
                continue_token: Some(token),
                resource_version: Some("5".into()),
                ..ListParams::default()
            },
        )
        .unwrap_err();
    assert_eq!(
        e.message(),
        "specifying resource version is not allowed when using continue"
    );
}

#[test]
fn model_list_across_namespaces_is_sorted_by_key() {
    let (mut s, now) = server();
    s.create(&Gvr::core("namespaces"), None, named("a-b"), now)
        .unwrap();
    s.create(&cms(), Some("default"), named("x"), now).unwrap();
    s.create(&cms(), Some("a-b"), named("y"), now).unwrap();
    s.create(&cms(), Some("kube-system"), named("a"), now)
        .unwrap();
    let all = s.list(&cms(), None, &ListParams::default()).unwrap();
    let keys: Vec<String> = all
        .items
        .iter()
        .map(|o| {
            format!(
                "{}/{}",
                o["metadata"]["namespace"].as_str().unwrap(),
                o["metadata"]["name"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(keys, ["a-b/y", "default/x", "kube-system/a"]);
    let ns = s
        .list(&Gvr::core("namespaces"), None, &ListParams::default())
        .unwrap();
    assert_eq!(
        names(&ns),
        [
            "a-b",
            "default",
            "kube-node-lease",
            "kube-public",
            "kube-system"
        ]
    );
}

#[test]
fn model_list_rv_zero_is_served_whole_by_the_watch_cache() {
    let (mut s, now) = server();
    for n in ["a", "b", "c"] {
        s.create(&cms(), Some("default"), named(n), now).unwrap();
    }
    let zero = ListParams {
        resource_version: Some("0".into()),
        limit: Some(1),
        ..ListParams::default()
    };
    let whole = s.list(&cms(), None, &zero).unwrap();
    assert_eq!(
        (names(&whole).len(), whole.continue_token.clone()),
        (3, None)
    );
    let now2 = Instant::now();
    let mut etcd = ApiServer::new(
        Config {
            rv_zero_ignores_limit: false,
            ..Config::default()
        },
        now2,
    );
    for n in ["a", "b", "c"] {
        etcd.create(&cms(), Some("default"), named(n), now2)
            .unwrap();
    }
    let page = etcd.list(&cms(), None, &zero).unwrap();
    assert_eq!(names(&page), ["a"]);
    assert!(page.continue_token.is_some());
}

#[test]
fn model_frozen_watch_cache_lags_etcd_until_thawed() {
    let (mut s, now) = server();
    s.create(&cms(), Some("default"), named("a"), now).unwrap();
    let mut w = s
        .watch(
            &cms(),
            None,
            &WatchParams {
                resource_version: Some(s.resource_version().to_string()),
                allow_watch_bookmarks: true,
                ..WatchParams::default()
            },
            now,
        )
        .unwrap();
    s.freeze_watch_cache();
    let frozen = s.resource_version();
    s.create(&cms(), Some("default"), named("b"), now).unwrap();
    let latest = s.resource_version();
    assert_eq!(s.cache_resource_version(), frozen);
    // The cache serves "0" and N-without-limit at its own revision.
    let zero = s
        .list(
            &cms(),
            None,
            &ListParams {
                resource_version: Some("0".into()),
                ..ListParams::default()
            },
        )
        .unwrap();
    assert_eq!(
        (names(&zero), zero.resource_version.clone()),
        (vec!["a".to_owned()], frozen.to_string())
    );
    let e = s
        .list(
            &cms(),
            None,
            &ListParams {
                resource_version: Some(latest.to_string()),
                resource_version_match: Some(ResourceVersionMatch::NotOlderThan),
                ..ListParams::default()
            },
        )
        .unwrap_err();
    assert_eq!(
        e.message(),
        format!("Timeout: Too large resource version: {latest}, current: {frozen}")
    );
    // etcd serves consistent and limited reads.
    assert_eq!(
        names(&s.list(&cms(), None, &ListParams::default()).unwrap()),
        ["a", "b"]
    );
    let limited = ListParams {
        resource_version: Some(latest.to_string()),
        limit: Some(10),
        ..ListParams::default()
    };
    assert_eq!(names(&s.list(&cms(), None, &limited).unwrap()), ["a", "b"]);
    // Watches see nothing past the cache; a consistent watch-list cannot be served.
    w.request_bookmark();
    assert_eq!(
        describe(&drain(&mut w, &s, now)),
        [format!("BOOKMARK {frozen}")]
    );
    let watch_list = WatchParams {
        send_initial_events: Some(true),
        resource_version_match: Some(ResourceVersionMatch::NotOlderThan),
        allow_watch_bookmarks: true,
        ..WatchParams::default()
    };
    let mut wl = s.watch(&cms(), None, &watch_list, now).unwrap();
    assert_eq!(
        describe(&drain(&mut wl, &s, now)),
        [format!(
            "ERROR 504 Timeout: Too large resource version: {latest}, current: {frozen}"
        )]
    );
    s.thaw_watch_cache();
    assert_eq!(
        describe(&drain(&mut w, &s, now)),
        [format!("ADDED b {latest}")]
    );
}

// --- selectors

#[test]
fn model_label_selector_equality_and_set_based() {
    let (mut s, now) = server();
    s.create(
        &cms(),
        Some("default"),
        labelled("a", json!({"app": "web", "tier": "1"})),
        now,
    )
    .unwrap();
    s.create(
        &cms(),
        Some("default"),
        labelled("b", json!({"app": "db", "tier": "3"})),
        now,
    )
    .unwrap();
    s.create(
        &cms(),
        Some("default"),
        labelled("c", json!({"app": "web"})),
        now,
    )
    .unwrap();
    s.create(&cms(), Some("default"), named("d"), now).unwrap();
    let select = |sel: &str| {
        names(
            &s.list(
                &cms(),
                Some("default"),
                &ListParams {
                    label_selector: Some(sel.into()),
                    ..ListParams::default()
                },
            )
            .unwrap(),
        )
    };
    assert_eq!(select("app=web"), ["a", "c"]);
    assert_eq!(select("app==web,tier=1"), ["a"]);
    assert_eq!(select("app!=web"), ["b", "d"]);
    assert_eq!(select("app in (db, web),tier"), ["a", "b"]);
    assert_eq!(select("app notin (web)"), ["b", "d"]);
    assert_eq!(select("!tier"), ["c", "d"]);
    assert_eq!(select("tier>2"), ["b"]);
    assert_eq!(select("tier<2"), ["a"]);
    assert_eq!(select(""), ["a", "b", "c", "d"]);
    let list = s
        .list(
            &cms(),
            Some("default"),
            &ListParams {
                label_selector: Some("app=web".into()),
                limit: Some(1),
                ..ListParams::default()
            },
        )
        .unwrap();
    assert!(list.continue_token.is_some());
    assert_eq!(
        list.remaining_item_count, None,
        "no estimate with a selector"
    );
}

#[test]
fn model_label_selector_errors_are_400_with_parser_messages() {
    let (s, _) = server();
    let err = |sel: &str| {
        let e = s
            .list(
                &cms(),
                None,
                &ListParams {
                    label_selector: Some(sel.into()),
                    ..ListParams::default()
                },
            )
            .unwrap_err();
        assert_eq!((e.code(), e.reason()), (400, "BadRequest"));
        e.message().to_owned()
    };
    assert_eq!(
        err("env IN (a)"),
        "unable to parse requirement: found 'IN', expected: in, notin, =, ==, !=, gt, lt"
    );
    assert_eq!(
        err("a in"),
        "unable to parse requirement: found '', expected: '('"
    );
    assert_eq!(err("a=b c"), "found 'c', expected: ',' or 'end of string'");
    assert_eq!(err("a=b,"), "found '', expected: identifier after ','");
    assert_eq!(
        err("=x"),
        "found '=', expected: !, identifier, or 'end of string'"
    );
    assert!(err("tier>x").contains("the value must be an integer"));
    assert!(err("a=-bad-").contains("a valid label must be"));
}

#[test]
fn model_field_selector_name_namespace_and_resource_fields() {
    let (mut s, now) = server();
    s.create(
        &pods(),
        Some("default"),
        json!({"metadata": {"name": "a"}, "spec": {"nodeName": "n1"}}),
        now,
    )
    .unwrap();
    s.create(
        &pods(),
        Some("default"),
        json!({"metadata": {"name": "b"}, "spec": {"nodeName": "n2"}}),
        now,
    )
    .unwrap();
    s.create(&pods(), Some("kube-system"), named("c"), now)
        .unwrap();
    let select = |sel: &str| {
        names(
            &s.list(
                &pods(),
                None,
                &ListParams {
                    field_selector: Some(sel.into()),
                    ..ListParams::default()
                },
            )
            .unwrap(),
        )
    };
    assert_eq!(select("metadata.name=a"), ["a"]);
    assert_eq!(select("metadata.name==a"), ["a"]);
    assert_eq!(select("metadata.namespace!=default"), ["c"]);
    assert_eq!(select("spec.nodeName=n2"), ["b"]);
    assert_eq!(select("spec.nodeName="), ["c"]);
    assert_eq!(select("metadata.namespace=default,metadata.name!=a"), ["b"]);
    let e = s
        .list(
            &pods(),
            None,
            &ListParams {
                field_selector: Some("spec.foo=x".into()),
                ..ListParams::default()
            },
        )
        .unwrap_err();
    assert_eq!(
        (e.code(), e.message()),
        (400, "field label not supported: spec.foo")
    );
    let e = s
        .list(
            &pods(),
            None,
            &ListParams {
                field_selector: Some("metadata.name".into()),
                ..ListParams::default()
            },
        )
        .unwrap_err();
    assert_eq!(
        e.message(),
        "invalid selector: 'metadata.name'; can't understand 'metadata.name'"
    );
}

// --- watch

#[test]
fn model_watch_from_resource_version_replays_later_changes() {
    let (mut s, now) = server();
    s.create(&cms(), Some("default"), named("a"), now).unwrap();
    let from = s.resource_version();
    let b = s.create(&cms(), Some("default"), named("b"), now).unwrap();
    let mut body = (*b).clone();
    body["data"] = json!({"k": "v"});
    s.update(&cms(), Some("default"), "b", Subresource::Main, body, now)
        .unwrap();
    s.create(&pods(), Some("default"), named("unrelated"), now)
        .unwrap();
    s.delete(&cms(), Some("default"), "a", &DeleteOptions::default(), now)
        .unwrap();
    let mut w = s
        .watch(
            &cms(),
            Some("default"),
            &WatchParams {
                resource_version: Some(from.to_string()),
                ..WatchParams::default()
            },
            now,
        )
        .unwrap();
    assert_eq!(
        describe(&drain(&mut w, &s, now)),
        [
            format!("ADDED b {}", from + 1),
            format!("MODIFIED b {}", from + 2),
            format!("DELETED a {}", from + 4),
        ]
    );
    assert_eq!(w.poll(&s, now), WatchPoll::Pending);
    s.create(&cms(), Some("default"), named("c"), now).unwrap();
    assert_eq!(
        describe(&drain(&mut w, &s, now)),
        [format!("ADDED c {}", from + 5)]
    );
}

#[test]
fn model_watch_from_a_future_resource_version_waits_for_it() {
    let (mut s, now) = server();
    let future = s.resource_version() + 2;
    let params = WatchParams {
        resource_version: Some(future.to_string()),
        ..WatchParams::default()
    };
    let mut w = s.watch(&cms(), None, &params, now).unwrap();
    s.create(&cms(), Some("default"), named("a"), now).unwrap();
    s.create(&cms(), Some("default"), named("b"), now).unwrap();
    assert_eq!(w.poll(&s, now), WatchPoll::Pending);
    s.create(&cms(), Some("default"), named("c"), now).unwrap();
    assert_eq!(
        describe(&drain(&mut w, &s, now)),
        [format!("ADDED c {}", future + 1)]
    );
}

#[test]
fn model_watch_without_resource_version_starts_with_current_state() {
    let (mut s, now) = server();
    s.create(&cms(), Some("default"), named("a"), now).unwrap();
    s.create(&cms(), Some("kube-system"), named("k"), now)
        .unwrap();
    let mut w = s
        .watch(&cms(), Some("default"), &WatchParams::default(), now)
        .unwrap();
    let rv = s.resource_version();
    assert_eq!(
        describe(&drain(&mut w, &s, now)),
        [format!("ADDED a {}", rv - 1)]
    );
    let mut zero = s
        .watch(
            &cms(),
            None,
            &WatchParams {
                resource_version: Some("0".into()),
                ..WatchParams::default()
            },
            now,
        )
        .unwrap();
    assert_eq!(drain(&mut zero, &s, now).len(), 2);
}

#[test]
fn model_watch_too_old_is_http_200_then_error_410() {
    let now = Instant::now();
    let mut s = ApiServer::new(
        Config {
            watch_cache_capacity: 3,
            ..Config::default()
        },
        now,
    );
    let start = s.resource_version();
    for n in ["a", "b", "c", "d", "e"] {
        s.create(&cms(), Some("default"), named(n), now).unwrap();
    }
    // The window holds start+3..=start+5, so the oldest resumable RV is start+2.
    let mut w = s
        .watch(
            &cms(),
            None,
            &WatchParams {
                resource_version: Some(start.to_string()),
                ..WatchParams::default()
            },
            now,
        )
        .expect("the watch opens: HTTP 200");
    let events = drain(&mut w, &s, now);
    assert_eq!(
        describe(&events),
        [format!(
            "ERROR 410 too old resource version: {start} ({})",
            start + 2
        )]
    );
    let WatchEvent::Error(status) = &events[0] else {
        unreachable!()
    };
    assert_eq!(status.reason.as_deref(), Some("Expired"));
    assert_eq!(w.poll(&s, now), WatchPoll::Ended(WatchEnd::Error));
    let mut ok = s
        .watch(
            &cms(),
            None,
            &WatchParams {
                resource_version: Some((start + 2).to_string()),
                ..WatchParams::default()
            },
            now,
        )
        .unwrap();
    assert_eq!(drain(&mut ok, &s, now).len(), 3);
}

#[test]
fn model_watch_slower_than_the_window_is_closed() {
    let now = Instant::now();
    let mut s = ApiServer::new(
        Config {
            watch_cache_capacity: 2,
            ..Config::default()
        },
        now,
    );
    let mut w = s
        .watch(
            &cms(),
            None,
            &WatchParams {
                resource_version: Some(s.resource_version().to_string()),
                ..WatchParams::default()
            },
            now,
        )
        .unwrap();
    for n in ["a", "b", "c"] {
        s.create(&cms(), Some("default"), named(n), now).unwrap();
    }
    assert_eq!(w.poll(&s, now), WatchPoll::Ended(WatchEnd::TooSlow));
}

#[test]
fn model_watch_keeps_a_watcher_that_lost_nothing_when_the_window_moves() {
    let now = Instant::now();
    let mut s = ApiServer::new(
        Config {
            watch_cache_capacity: 1,
            ..Config::default()
        },
        now,
    );
    let mut w = s
        .watch(
            &cms(),
            None,
            &WatchParams {
                resource_version: Some(s.resource_version().to_string()),
                ..WatchParams::default()
            },
            now,
        )
        .unwrap();
    s.create(&cms(), Some("default"), named("a"), now).unwrap();
    assert_eq!(drain(&mut w, &s, now).len(), 1);
    s.create(&pods(), Some("default"), named("p"), now).unwrap();
    s.create(&cms(), Some("default"), named("b"), now).unwrap();
    assert_eq!(
        drain(&mut w, &s, now).len(),
        1,
        "the evicted event had been delivered"
    );
    // A new watch from the delivered revision is refused all the same (oldest - 1 rule).
    let delivered = s.resource_version() - 2;
    let mut late = s
        .watch(
            &cms(),
            None,
            &WatchParams {
                resource_version: Some(delivered.to_string()),
                ..WatchParams::default()
            },
            now,
        )
        .unwrap();
    assert_eq!(
        describe(&drain(&mut late, &s, now)),
        [format!(
            "ERROR 410 too old resource version: {delivered} ({})",
            delivered + 1
        )]
    );
}

#[test]
fn model_watch_bookmarks_only_when_asked_and_allowed() {
    let (mut s, now) = server();
    let params = WatchParams {
        resource_version: Some(s.resource_version().to_string()),
        allow_watch_bookmarks: true,
        ..WatchParams::default()
    };
    let mut w = s.watch(&cms(), None, &params, now).unwrap();
    assert_eq!(w.poll(&s, now), WatchPoll::Pending);
    s.create(&pods(), Some("default"), named("p"), now).unwrap();
    s.create(&cms(), Some("default"), named("c"), now).unwrap();
    s.create(&pods(), Some("default"), named("q"), now).unwrap();
    w.request_bookmark();
    let rv = s.resource_version();
    assert_eq!(
        describe(&drain(&mut w, &s, now)),
        [format!("ADDED c {}", rv - 1), format!("BOOKMARK {rv}")]
    );
    assert_eq!(
        w.poll(&s, now),
        WatchPoll::Pending,
        "one bookmark per request"
    );
    let mut quiet = s
        .watch(
            &cms(),
            None,
            &WatchParams {
                resource_version: Some(rv.to_string()),
                ..WatchParams::default()
            },
            now,
        )
        .unwrap();
    quiet.request_bookmark();
    assert_eq!(
        quiet.poll(&s, now),
        WatchPoll::Pending,
        "no bookmarks unless allowWatchBookmarks"
    );
}

#[test]
fn model_watch_timeout_is_a_deadline_the_caller_checks() {
    let (mut s, now) = server();
    let params = WatchParams {
        timeout_seconds: Some(30),
        resource_version: Some(s.resource_version().to_string()),
        ..WatchParams::default()
    };
    let mut w = s.watch(&cms(), None, &params, now).unwrap();
    assert_eq!(w.poll_timeout(), Some(now + Duration::from_secs(30)));
    s.create(&cms(), Some("default"), named("a"), now).unwrap();
    assert_eq!(drain(&mut w, &s, now + Duration::from_secs(29)).len(), 1);
    assert_eq!(
        w.poll(&s, now + Duration::from_secs(30)),
        WatchPoll::Ended(WatchEnd::Timeout)
    );
    assert!(w.is_ended());
    let zero = WatchParams {
        timeout_seconds: Some(0),
        ..WatchParams::default()
    };
    let w = s.watch(&cms(), None, &zero, now).unwrap();
    assert_eq!(
        w.poll_timeout(),
        None,
        "timeoutSeconds=0 leaves the timeout to the server"
    );
}

#[test]
fn model_watch_list_sends_initial_events_then_end_bookmark_then_live() {
    let (mut s, now) = server();
    s.create(&cms(), Some("default"), named("a"), now).unwrap();
    s.create(&cms(), Some("default"), named("b"), now).unwrap();
    let rv = s.resource_version();
    let params = WatchParams {
        send_initial_events: Some(true),
        resource_version_match: Some(ResourceVersionMatch::NotOlderThan),
        allow_watch_bookmarks: true,
        ..WatchParams::default()
    };
    let mut w = s.watch(&cms(), Some("default"), &params, now).unwrap();
    s.create(&cms(), Some("default"), named("c"), now).unwrap();
    assert_eq!(
        describe(&drain(&mut w, &s, now)),
        [
            format!("ADDED a {}", rv - 1),
            format!("ADDED b {rv}"),
            format!("BOOKMARK {rv} end"),
            format!("ADDED c {}", rv + 1)
        ]
    );
    // Without allowWatchBookmarks there is no end marker.
    let mut bare = s
        .watch(
            &cms(),
            Some("default"),
            &WatchParams {
                allow_watch_bookmarks: false,
                ..params.clone()
            },
            now,
        )
        .unwrap();
    assert_eq!(describe(&drain(&mut bare, &s, now)).len(), 3);
    // A resourceVersion the server has not reached: 200, then a 504 ERROR event.
    let mut ahead = s
        .watch(
            &cms(),
            None,
            &WatchParams {
                resource_version: Some((rv + 100).to_string()),
                ..params.clone()
            },
            now,
        )
        .unwrap();
    let events = describe(&drain(&mut ahead, &s, now));
    assert_eq!(
        events,
        [format!(
            "ERROR 504 Timeout: Too large resource version: {}, current: {}",
            rv + 100,
            rv + 1
        )]
    );
}

#[test]
fn model_watch_list_without_end_bookmark_when_the_server_withholds_it() {
    let (mut s, now) = server();
    s.create(&cms(), Some("default"), named("a"), now).unwrap();
    s.set_initial_events_end_bookmark(false);
    let params = WatchParams {
        send_initial_events: Some(true),
        resource_version_match: Some(ResourceVersionMatch::NotOlderThan),
        allow_watch_bookmarks: true,
        ..WatchParams::default()
    };
    let mut w = s.watch(&cms(), None, &params, now).unwrap();
    w.request_bookmark();
    let rv = s.resource_version();
    assert_eq!(
        describe(&drain(&mut w, &s, now)),
        [format!("ADDED a {rv}"), format!("BOOKMARK {rv}")]
    );
}

#[test]
fn model_watch_list_refused_when_disabled_and_options_validated() {
    let (mut s, now) = server();
    s.set_watch_list(false);
    let params = WatchParams {
        send_initial_events: Some(true),
        resource_version_match: Some(ResourceVersionMatch::NotOlderThan),
        allow_watch_bookmarks: true,
        ..WatchParams::default()
    };
    let e = s.watch(&cms(), None, &params, now).unwrap_err();
    assert_eq!((e.code(), e.reason()), (422, "Invalid"));
    assert!(e.message().contains("sendInitialEvents: Forbidden: sendInitialEvents is forbidden for watch unless the WatchList feature gate is enabled"), "{}", e.message());
    s.set_watch_list(true);
    let e = s
        .watch(
            &cms(),
            None,
            &WatchParams {
                send_initial_events: Some(true),
                ..WatchParams::default()
            },
            now,
        )
        .unwrap_err();
    assert!(
        e.message()
            .contains("sendInitialEvents requires setting resourceVersionMatch to NotOlderThan")
    );
    let e = s
        .watch(
            &cms(),
            None,
            &WatchParams {
                resource_version_match: Some(ResourceVersionMatch::NotOlderThan),
                ..WatchParams::default()
            },
            now,
        )
        .unwrap_err();
    assert!(e.message().contains(
        "resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided"
    ));
}

#[test]
fn model_watch_selector_transitions_are_added_and_deleted() {
    let (mut s, now) = server();
    let params = WatchParams {
        label_selector: Some("app=web".into()),
        resource_version: Some(s.resource_version().to_string()),
        ..WatchParams::default()
    };
    let mut w = s.watch(&cms(), Some("default"), &params, now).unwrap();
    let c = s
        .create(
            &cms(),
            Some("default"),
            labelled("c", json!({"app": "db"})),
            now,
        )
        .unwrap();
    let mut body = (*c).clone();
    body["metadata"]["labels"]["app"] = json!("web");
    let c = s
        .update(&cms(), Some("default"), "c", Subresource::Main, body, now)
        .unwrap();
    let mut body = (*c).clone();
    body["data"] = json!({"x": "1"});
    let c = s
        .update(&cms(), Some("default"), "c", Subresource::Main, body, now)
        .unwrap();
    let mut body = (*c).clone();
    body["metadata"]["labels"]["app"] = json!("db");
    let last = s
        .update(&cms(), Some("default"), "c", Subresource::Main, body, now)
        .unwrap();
    let events = drain(&mut w, &s, now);
    let rv = rv_of(&last);
    assert_eq!(
        describe(&events),
        [
            format!("ADDED c {}", rv - 2),
            format!("MODIFIED c {}", rv - 1),
            format!("DELETED c {rv}")
        ]
    );
    // The DELETED object is the last state that matched, at the event's RV.
    let WatchEvent::Deleted(gone) = &events[2] else {
        unreachable!()
    };
    assert_eq!(gone["metadata"]["labels"]["app"], "web");
}

#[test]
fn model_watch_field_selector_and_namespace_scope() {
    let (mut s, now) = server();
    let params = WatchParams {
        field_selector: Some("metadata.name=a".into()),
        resource_version: Some(s.resource_version().to_string()),
        ..WatchParams::default()
    };
    let mut w = s.watch(&cms(), None, &params, now).unwrap();
    let mut scoped = s
        .watch(
            &cms(),
            Some("kube-system"),
            &WatchParams {
                resource_version: Some(s.resource_version().to_string()),
                ..WatchParams::default()
            },
            now,
        )
        .unwrap();
    s.create(&cms(), Some("default"), named("a"), now).unwrap();
    s.create(&cms(), Some("default"), named("b"), now).unwrap();
    s.create(&cms(), Some("kube-system"), named("a"), now)
        .unwrap();
    assert_eq!(drain(&mut w, &s, now).len(), 2);
    assert_eq!(drain(&mut scoped, &s, now).len(), 1);
}

#[test]
fn model_restart_ends_watches_and_resets_the_cache_but_keeps_resource_versions() {
    let (mut s, now) = server();
    let before = s.resource_version();
    s.create(&cms(), Some("default"), named("a"), now).unwrap();
    let mut w = s
        .watch(
            &cms(),
            None,
            &WatchParams {
                resource_version: Some(before.to_string()),
                ..WatchParams::default()
            },
            now,
        )
        .unwrap();
    s.restart();
    assert_eq!(w.poll(&s, now), WatchPoll::Ended(WatchEnd::ServerRestarted));
    let current = s.resource_version();
    assert_eq!(current, before + 1);
    assert_eq!(
        s.get(&cms(), Some("default"), "a").unwrap()["metadata"]["resourceVersion"],
        current.to_string()
    );
    let mut old = s
        .watch(
            &cms(),
            None,
            &WatchParams {
                resource_version: Some(before.to_string()),
                ..WatchParams::default()
            },
            now,
        )
        .unwrap();
    assert_eq!(
        describe(&drain(&mut old, &s, now)),
        [format!(
            "ERROR 410 too old resource version: {before} ({current})"
        )]
    );
    let mut fresh = s
        .watch(
            &cms(),
            None,
            &WatchParams {
                resource_version: Some(current.to_string()),
                ..WatchParams::default()
            },
            now,
        )
        .unwrap();
    s.create(&cms(), Some("default"), named("b"), now).unwrap();
    assert_eq!(drain(&mut fresh, &s, now).len(), 1);
}

#[test]
fn model_compaction_makes_older_watches_and_snapshots_expire() {
    let (mut s, now) = server();
    let start = s.resource_version();
    for n in ["a", "b", "c"] {
        s.create(&cms(), Some("default"), named(n), now).unwrap();
    }
    s.delete(&cms(), Some("default"), "a", &DeleteOptions::default(), now)
        .unwrap();
    s.compact(start + 2);
    assert_eq!(s.compacted_resource_version(), start + 2);
    let mut w = s
        .watch(
            &cms(),
            None,
            &WatchParams {
                resource_version: Some(start.to_string()),
                ..WatchParams::default()
            },
            now,
        )
        .unwrap();
    assert_eq!(
        describe(&drain(&mut w, &s, now)),
        [format!(
            "ERROR 410 too old resource version: {start} ({})",
            start + 2
        )]
    );
    let mut ok = s
        .watch(
            &cms(),
            None,
            &WatchParams {
                resource_version: Some((start + 2).to_string()),
                ..WatchParams::default()
            },
            now,
        )
        .unwrap();
    assert_eq!(
        describe(&drain(&mut ok, &s, now)),
        [
            format!("ADDED c {}", start + 3),
            format!("DELETED a {}", start + 4)
        ]
    );
    let exact = |rv: u64| {
        s.list(
            &cms(),
            None,
            &ListParams {
                resource_version: Some(rv.to_string()),
                resource_version_match: Some(ResourceVersionMatch::Exact),
                ..ListParams::default()
            },
        )
    };
    assert_eq!(names(&exact(start + 2).unwrap()), ["a", "b"]);
    assert_eq!(exact(start + 1).unwrap_err().code(), 410);
    // Compaction keeps the live state.
    assert_eq!(
        names(&s.list(&cms(), None, &ListParams::default()).unwrap()),
        ["b", "c"]
    );
}

// --- custom resources

fn widget_crd() -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com",
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "shortNames": ["wd"]},
            "versions": [
                {"name": "v1", "served": true, "storage": true, "subresources": {"status": {}},
                 "selectableFields": [{"jsonPath": ".spec.color"}]},
                {"name": "v1beta1", "served": true, "storage": false},
            ],
        },
    })
}

#[test]
fn model_crd_creation_serves_a_new_resource_and_deletion_removes_it() {
    let (mut s, now) = server();
    let crds = Gvr::new("apiextensions.k8s.io", "v1", "customresourcedefinitions");
    let widgets = Gvr::new("example.com", "v1", "widgets");
    assert_eq!(
        s.get(&widgets, Some("default"), "w").unwrap_err().code(),
        404
    );
    let crd = s.create(&crds, None, widget_crd(), now).unwrap();
    assert_eq!(crd["status"]["conditions"][1]["type"], "Established");
    let w = s
        .create(
            &widgets,
            Some("default"),
            json!({"metadata": {"name": "w"}, "spec": {"color": "red"}}),
            now,
        )
        .unwrap();
    assert_eq!(
        (w["kind"].as_str(), w["apiVersion"].as_str()),
        (Some("Widget"), Some("example.com/v1"))
    );
    assert_eq!(w["metadata"]["generation"], 1);
    // Other served versions see the same object under their apiVersion.
    let beta = s
        .get(
            &Gvr::new("example.com", "v1beta1", "widgets"),
            Some("default"),
            "w",
        )
        .unwrap();
    assert_eq!(beta["apiVersion"], "example.com/v1beta1");
    // Its status subresource and selectable fields work.
    let mut body = (*w).clone();
    body["status"] = json!({"ready": true});
    body["spec"]["color"] = json!("blue");
    let v = s
        .update(
            &widgets,
            Some("default"),
            "w",
            Subresource::Status,
            body,
            now,
        )
        .unwrap();
    assert_eq!(
        (v["status"]["ready"].as_bool(), v["spec"]["color"].as_str()),
        (Some(true), Some("red"))
    );
    let list = s
        .list(
            &widgets,
            None,
            &ListParams {
                field_selector: Some("spec.color=red".into()),
                ..ListParams::default()
            },
        )
        .unwrap();
    assert_eq!(list.kind, "WidgetList");
    assert!(
        list.to_json()["items"][0]["kind"] == "Widget",
        "custom resource list items keep their kind"
    );
    let mut watch = s
        .watch(
            &widgets,
            None,
            &WatchParams {
                resource_version: Some(s.resource_version().to_string()),
                ..WatchParams::default()
            },
            now,
        )
        .unwrap();
    let mut crd_watch = s
        .watch(
            &crds,
            None,
            &WatchParams {
                resource_version: Some(s.resource_version().to_string()),
                ..WatchParams::default()
            },
            now,
        )
        .unwrap();
    let Deleted::Object(answer) = s
        .delete(
            &crds,
            None,
            "widgets.example.com",
            &DeleteOptions::default(),
            now,
        )
        .unwrap()
    else {
        panic!("a CRD delete answers the CRD, held by its cleanup finalizer");
    };
    assert_eq!(
        answer["metadata"]["finalizers"],
        json!(["customresourcecleanup.apiextensions.k8s.io"])
    );
    assert!(answer["metadata"]["deletionTimestamp"].is_string());
    let crd_events = describe(&drain(&mut crd_watch, &s, now));
    assert_eq!(crd_events.len(), 2, "{crd_events:?}");
    assert!(crd_events[0].starts_with("MODIFIED") && crd_events[1].starts_with("DELETED"));
    assert_eq!(
        s.get(&crds, None, "widgets.example.com")
            .unwrap_err()
            .code(),
        404
    );
    assert_eq!(
        s.get(&widgets, Some("default"), "w").unwrap_err().code(),
        404
    );
    assert_eq!(
        s.list(&widgets, None, &ListParams::default())
            .unwrap_err()
            .message(),
        "the server could not find the requested resource"
    );
    assert_eq!(
        watch.poll(&s, now),
        WatchPoll::Ended(WatchEnd::ResourceRemoved)
    );
}

#[test]
fn model_serve_adds_a_builtin_resource_at_run_time() {
    let (mut s, now) = server();
    let nodes = Gvr::core("nodes");
    assert_eq!(
        s.list(&nodes, None, &ListParams::default())
            .unwrap_err()
            .code(),
        404
    );
    let mut node = Resource::builtin("", "Node", "nodes", false);
    node.has_status = true;
    s.serve(node);
    let n = s.create(&nodes, Some("ignored"), named("n1"), now).unwrap();
    assert!(n["metadata"].get("namespace").is_none());
    assert_eq!(
        names(&s.list(&nodes, None, &ListParams::default()).unwrap()),
        ["n1"]
    );
}

#[test]
fn model_crd_with_wrong_name_is_invalid() {
    let (mut s, now) = server();
    let crds = Gvr::new("apiextensions.k8s.io", "v1", "customresourcedefinitions");
    let mut crd = widget_crd();
    crd["metadata"]["name"] = json!("gadgets.example.com");
    let e = s.create(&crds, None, crd, now).unwrap_err();
    assert_eq!(e.code(), 422);
    assert!(e.message().starts_with("CustomResourceDefinition.apiextensions.k8s.io \"gadgets.example.com\" is invalid: metadata.name"), "{}", e.message());
}

// --- pieces

#[test]
fn model_continue_token_has_the_servers_shape() {
    let token = ContinueToken::new(42, "default/a\0".into());
    let encoded = token.encode();
    assert!(!encoded.contains('='));
    assert_eq!(ContinueToken::decode(&encoded).unwrap(), token);
    use base64::Engine;
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(&encoded)
        .unwrap();
    assert_eq!(
        serde_json::from_slice::<Value>(&raw).unwrap(),
        json!({"v": "meta.k8s.io/v1", "rv": 42, "start": "default/a\u{0}"})
    );
}

#[test]
fn model_timestamps_are_rfc3339_seconds() {
    assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
    assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    assert_eq!(rfc3339(1_767_225_599), "2025-12-31T23:59:59Z");
}

mod prop {
    use proptest::prelude::*;

    use super::*;

    #[derive(Clone, Debug)]
    enum Op {
        Create(u8, u8),
        Update(u8, u8),
        Delete(u8, u8),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0..3u8, 0..12u8).prop_map(|(n, k)| Op::Create(n, k)),
            (0..3u8, 0..12u8).prop_map(|(n, k)| Op::Update(n, k)),
            (0..3u8, 0..12u8).prop_map(|(n, k)| Op::Delete(n, k)),
        ]
    }

    const NAMESPACES: [&str; 3] = ["default", "kube-public", "kube-system"];

    /// Runs `ops`, ignoring the expected refusals; returns the ops that took effect as
    /// `(rv, kind, key)`.
    fn run(s: &mut ApiServer, ops: &[Op], now: Instant) -> Vec<(u64, &'static str, String)> {
        let mut log = Vec::new();
        for op in ops {
            let (kind, ns, name, result) = match *op {
                Op::Create(n, k) => {
                    let (ns, name) = (NAMESPACES[n as usize], format!("o{k}"));
                    (
                        "ADDED",
                        ns,
                        name.clone(),
                        s.create(&cms(), Some(ns), named(&name), now),
                    )
                }
                Op::Update(n, k) => {
                    let (ns, name) = (NAMESPACES[n as usize], format!("o{k}"));
                    let body = json!({"metadata": {"name": name}, "data": {"rv": s.resource_version().to_string()}});
                    (
                        "MODIFIED",
                        ns,
                        name.clone(),
                        s.update(&cms(), Some(ns), &name, Subresource::Main, body, now),
                    )
                }
                Op::Delete(n, k) => {
                    let (ns, name) = (NAMESPACES[n as usize], format!("o{k}"));
                    let r = s
                        .delete(&cms(), Some(ns), &name, &DeleteOptions::default(), now)
                        .map(|d| match d {
                            Deleted::Object(o) => o,
                            Deleted::Status(_) => Arc::new(json!({})),
                        });
                    ("DELETED", ns, name.clone(), r)
                }
            };
            match result {
                Ok(_) => log.push((s.resource_version(), kind, format!("{ns}/{name}"))),
                Err(e) => assert!(matches!(e.code(), 404 | 409), "unexpected refusal {e}"),
            }
        }
        log
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            "[a-z/.~0-9-]{0,8}".prop_map(Value::from),
            any::<String>().prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            let key = prop_oneof![
                Just("metadata".to_owned()),
                Just("name".to_owned()),
                Just("labels".to_owned()),
                Just("status".to_owned()),
                Just("op".to_owned()),
                Just("path".to_owned()),
                Just("value".to_owned()),
                Just("from".to_owned()),
                "[a-z]{1,6}",
            ];
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                proptest::collection::btree_map(key, inner, 0..5)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        #[test]
        fn model_paginated_list_at_any_page_size_yields_exactly_the_live_objects(
            ops in proptest::collection::vec(op(), 0..80),
            page in 1..7u32,
            all_namespaces in any::<bool>(),
        ) {
            let now = Instant::now();
            let mut s = ApiServer::new(Config::default(), now);
            run(&mut s, &ops, now);
            let ns = if all_namespaces { None } else { Some("kube-public") };
            let whole = s.list(&cms(), ns, &ListParams::default()).unwrap();
            let mut seen = Vec::new();
            let mut token = None;
            loop {
                let list = s.list(&cms(), ns, &ListParams { limit: Some(page), continue_token: token.take(), ..ListParams::default() }).unwrap();
                prop_assert!(list.items.len() <= page as usize);
                prop_assert_eq!(&list.resource_version, &whole.resource_version);
                seen.extend(list.items.iter().cloned());
                match list.continue_token {
                    Some(t) => {
                        let remaining = list.remaining_item_count.unwrap();
                        prop_assert_eq!(remaining as usize, whole.items.len() - seen.len());
                        token = Some(t);
                    }
                    None => break,
                }
            }
            prop_assert_eq!(&seen, &whole.items);
            // The live set is what the successful operations leave behind.
            let mut live = std::collections::BTreeMap::new();
            let log = run(&mut ApiServer::new(Config::default(), now), &ops, now);
            for (_, kind, key) in log {
                if kind == "DELETED" { live.remove(&key); } else { live.insert(key, ()); }
            }
            let want: Vec<String> = live.into_keys().filter(|k| ns.is_none_or(|ns| k.starts_with(&format!("{ns}/")))).collect();
            let got: Vec<String> = seen.iter().map(|o| format!("{}/{}", o["metadata"]["namespace"].as_str().unwrap(), o["metadata"]["name"].as_str().unwrap())).collect();
            prop_assert_eq!(got, want);
        }

        #[test]
        fn model_hostile_bodies_selectors_and_tokens_never_panic(
            body in json_value(),
            patch in json_value(),
            text in any::<String>(),
            ascii in "[a-z=!,()<> \\\\.~/0-9-]{0,24}",
        ) {
            let now = Instant::now();
            let mut s = ApiServer::new(Config::default(), now);
            let crds = Gvr::new("apiextensions.k8s.io", "v1", "customresourcedefinitions");
            for gvr in [cms(), pods(), crds.clone(), Gvr::core("namespaces")] {
                let _ = s.create(&gvr, Some("default"), body.clone(), now);
                let _ = s.create(&gvr, Some("default"), patch.clone(), now);
            }
            let c = s.create(&cms(), Some("default"), named("c"), now).unwrap();
            let _ = s.update(&cms(), Some("default"), "c", Subresource::Main, body.clone(), now);
            let _ = s.patch(&cms(), Some("default"), "c", Subresource::Main, &Patch::Merge(patch.clone()), now);
            let _ = s.patch(&cms(), Some("default"), "c", Subresource::Main, &Patch::Json(patch.clone()), now);
            let _ = s.patch(&pods(), Some("default"), "c", Subresource::Status, &Patch::Json(Value::Array(vec![patch.clone()])), now);
            let _ = s.delete(&cms(), Some("default"), "c", &DeleteOptions { uid: Some(text.clone()), ..DeleteOptions::default() }, now);
            for selector in [&text, &ascii] {
                let list = ListParams {
                    label_selector: Some(selector.clone()),
                    field_selector: Some(selector.clone()),
                    ..ListParams::default()
                };
                let _ = s.list(&cms(), None, &list);
                let _ = s.list(&cms(), None, &ListParams { label_selector: Some(selector.clone()), ..ListParams::default() });
                let _ = s.list(&cms(), None, &ListParams { field_selector: Some(selector.clone()), ..ListParams::default() });
                let _ = s.list(&cms(), None, &ListParams { continue_token: Some(selector.clone()), ..ListParams::default() });
                let _ = s.list(&cms(), Some(selector), &ListParams { resource_version: Some(selector.clone()), ..ListParams::default() });
                let _ = s.watch(&cms(), Some(selector), &WatchParams { resource_version: Some(selector.clone()), label_selector: Some(selector.clone()), ..WatchParams::default() }, now);
                let _ = s.get(&cms(), Some(selector), selector);
            }
            // Whatever was refused, what is stored is still well-formed.
            let all = s.list(&cms(), None, &ListParams::default()).unwrap();
            for item in &all.items {
                prop_assert!(item["metadata"]["name"].is_string());
                prop_assert!(item["metadata"]["resourceVersion"].is_string());
            }
            prop_assert!(rv_of(&c) <= s.resource_version());
        }

        #[test]
        fn model_watch_never_skips_silently_under_eviction_and_compaction(
            steps in proptest::collection::vec((0..7u8, 0..3u8, 0..6u8), 0..120),
            capacity in 1..8usize,
        ) {
            let now = Instant::now();
            let mut s = ApiServer::new(Config { watch_cache_capacity: capacity, ..Config::default() }, now);
            let from = s.resource_version();
            let params = WatchParams { resource_version: Some(from.to_string()), ..WatchParams::default() };
            let mut w = s.watch(&cms(), None, &params, now).unwrap();
            let mut log = Vec::new();
            let mut seen = Vec::new();
            let mut end = None;
            let poll = |w: &mut Watch, s: &ApiServer, seen: &mut Vec<(u64, String)>, end: &mut Option<WatchPoll>| {
                loop {
                    match w.poll(s, now) {
                        WatchPoll::Event(e) => {
                            let (kind, o) = match e {
                                WatchEvent::Added(o) => ("ADDED", o),
                                WatchEvent::Modified(o) => ("MODIFIED", o),
                                WatchEvent::Deleted(o) => ("DELETED", o),
                                other => { *end = Some(WatchPoll::Event(other)); return; }
                            };
                            seen.push((rv_of(&o), format!("{kind} {}/{}", o["metadata"]["namespace"].as_str().unwrap(), o["metadata"]["name"].as_str().unwrap())));
                        }
                        WatchPoll::Pending => return,
                        ended @ WatchPoll::Ended(_) => { *end = Some(ended); return; }
                    }
                }
            };
            for (op, n, k) in steps {
                let (ns, name) = (NAMESPACES[n as usize], format!("o{k}"));
                let result = match op {
                    0 => s.create(&cms(), Some(ns), named(&name), now).map(|_| "ADDED"),
                    1 => s.update(&cms(), Some(ns), &name, Subresource::Main, json!({"metadata": {"name": name}, "data": {"v": s.resource_version().to_string()}}), now).map(|_| "MODIFIED"),
                    2 => s.delete(&cms(), Some(ns), &name, &DeleteOptions::default(), now).map(|_| "DELETED"),
                    3 => { let _ = s.create(&pods(), Some(ns), named(&name), now); continue; }
                    4 => { s.compact(s.resource_version().saturating_sub(u64::from(k))); continue; }
                    _ => { poll(&mut w, &s, &mut seen, &mut end); continue; }
                };
                if let Ok(kind) = result {
                    log.push((s.resource_version(), format!("{kind} {ns}/{name}")));
                }
            }
            poll(&mut w, &s, &mut seen, &mut end);
            match end {
                None => prop_assert_eq!(&seen, &log),
                Some(WatchPoll::Ended(WatchEnd::TooSlow)) => {
                    prop_assert!(seen.len() < log.len());
                    prop_assert_eq!(&seen[..], &log[..seen.len()]);
                }
                Some(other) => prop_assert!(false, "unexpected end {other:?}"),
            }
        }

        #[test]
        fn model_watch_from_rv_replays_exactly_the_changes_after_it(
            before in proptest::collection::vec(op(), 0..30),
            after in proptest::collection::vec(op(), 0..40),
            pages in 1..5u32,
        ) {
            let now = Instant::now();
            let mut s = ApiServer::new(Config { watch_cache_capacity: 1000, ..Config::default() }, now);
            run(&mut s, &before, now);
            let from = s.resource_version();
            let log = run(&mut s, &after, now);
            let mut w = s.watch(&cms(), None, &WatchParams { resource_version: Some(from.to_string()), ..WatchParams::default() }, now).unwrap();
            let got: Vec<(u64, &'static str, String)> = drain(&mut w, &s, now)
                .into_iter()
                .map(|e| {
                    let (kind, o) = match e {
                        WatchEvent::Added(o) => ("ADDED", o),
                        WatchEvent::Modified(o) => ("MODIFIED", o),
                        WatchEvent::Deleted(o) => ("DELETED", o),
                        other => panic!("unexpected {other:?}"),
                    };
                    (rv_of(&o), kind, format!("{}/{}", o["metadata"]["namespace"].as_str().unwrap(), o["metadata"]["name"].as_str().unwrap()))
                })
                .collect();
            prop_assert_eq!(&got, &log);
            // And the state at `from` (an Exact list, paginated) plus the replay is the state now.
            let mut state = std::collections::BTreeMap::new();
            let mut token = None;
            loop {
                let params = match token.take() {
                    Some(t) => ListParams { limit: Some(pages), continue_token: Some(t), ..ListParams::default() },
                    None => ListParams { limit: Some(pages), resource_version: Some(from.to_string()), resource_version_match: Some(ResourceVersionMatch::Exact), ..ListParams::default() },
                };
                let page = s.list(&cms(), None, &params).unwrap();
                prop_assert_eq!(&page.resource_version, &from.to_string());
                for o in &page.items {
                    state.insert(format!("{}/{}", o["metadata"]["namespace"].as_str().unwrap(), o["metadata"]["name"].as_str().unwrap()), rv_of(o));
                }
                match page.continue_token { Some(t) => token = Some(t), None => break }
            }
            for (rv, kind, key) in &log {
                if *kind == "DELETED" { state.remove(key); } else { state.insert(key.clone(), *rv); }
            }
            let now_state: std::collections::BTreeMap<String, u64> = s.list(&cms(), None, &ListParams::default()).unwrap().items.iter()
                .map(|o| (format!("{}/{}", o["metadata"]["namespace"].as_str().unwrap(), o["metadata"]["name"].as_str().unwrap()), rv_of(o)))
                .collect();
            prop_assert_eq!(state, now_state);
        }
    }
}

#[test]
fn model_status_constructors_carry_the_servers_codes_reasons_and_messages() {
    let (s, _) = server();
    let pods = s.registry().lookup(&Gvr::core("pods")).unwrap();
    let cases = [
        (status::unauthorized("Unauthorized"), 401, "Unauthorized", "Unauthorized".to_owned()),
        (status::method_not_supported(&pods, "create"), 405, "MethodNotAllowed", "create is not supported on resources of kind \"pods\"".to_owned()),
        (status::not_acceptable(&["application/json", "application/yaml"]), 406, "NotAcceptable", "only the following media types are accepted: application/json, application/yaml".to_owned()),
        (status::request_entity_too_large("limit is 3145728"), 413, "RequestEntityTooLarge", "Request entity too large: limit is 3145728".to_owned()),
        (status::too_many_requests("Too many requests, please try again later.", 2), 429, "TooManyRequests", "Too many requests, please try again later.".to_owned()),
        (status::server_timeout(&pods, "list", 3), 500, "ServerTimeout", "The list operation against pods could not be completed at this time, please try again.".to_owned()),
        (status::service_unavailable("apiserver is shutting down"), 503, "ServiceUnavailable", "apiserver is shutting down".to_owned()),
    ];
    for (error, code, reason, message) in cases {
        assert_eq!(
            (error.code(), error.reason(), error.message()),
            (code, reason, message.as_str())
        );
        assert_eq!(error.to_json()["kind"], "Status");
        assert_eq!(error.to_json()["status"], "Failure");
    }
    assert_eq!(
        status::too_many_requests("x", 2)
            .status()
            .details
            .as_ref()
            .unwrap()
            .retry_after_seconds,
        Some(2)
    );
}

// --- against real recordings (../shared/fixtures; skipped when absent)

fn recorded(file: &str) -> Option<String> {
    let path = crate::fixtures::path(&format!(
        "recorded/derived-from-k8s-openapi-replays/v1-36/{file}"
    ))?;
    Some(std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
}

fn foobar() -> Resource {
    Resource::from_crd(&json!({
        "metadata": {"name": "foobars.k8s-openapi-tests-custom-resource-definition.com"},
        "spec": {
            "group": "k8s-openapi-tests-custom-resource-definition.com",
            "scope": "Namespaced",
            "names": {"plural": "foobars", "singular": "foobar", "kind": "FooBar"},
            "versions": [{"name": "v1", "served": true, "storage": true}],
        },
    }))
    .unwrap()
}

#[test]
fn model_status_shapes_match_recorded_invalid_and_delete_success() {
    let Some(invalid) = recorded("status-422-invalid-1.json") else {
        return;
    };
    let ours = status::invalid(&foobar(), "fb3", &[FieldError::required("spec.prop2", "")]);
    assert_eq!(
        ours.to_json(),
        serde_json::from_str::<Value>(&invalid).unwrap()
    );
    let Some(deleted) = recorded("delete-customresource-status-success.json") else {
        return;
    };
    let recorded: Value = serde_json::from_str(&deleted).unwrap();
    let uid = recorded["details"]["uid"].as_str().unwrap();
    let ours = status::deleted(&foobar(), "fb1", uid);
    assert_eq!(serde_json::to_value(&ours).unwrap(), recorded);
}

#[test]
fn model_watch_list_matches_recorded_kind_stream() {
    let Some(stream) = recorded("watchlist-pods-sendInitialEvents.jsonl") else {
        return;
    };
    let events: Vec<Value> = stream
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let (mut s, now) = server();
    // Load the recorded pods in reverse, so the model's order is its own doing.
    for e in events.iter().rev().filter(|e| e["type"] == "ADDED") {
        let mut pod = e["object"].clone();
        for field in ["resourceVersion", "uid", "creationTimestamp"] {
            pod["metadata"].as_object_mut().unwrap().remove(field);
        }
        s.create(&pods(), Some("kube-system"), pod, now).unwrap();
    }
    let params = WatchParams {
        send_initial_events: Some(true),
        resource_version_match: Some(ResourceVersionMatch::NotOlderThan),
        allow_watch_bookmarks: true,
        ..WatchParams::default()
    };
    let mut w = s.watch(&pods(), Some("kube-system"), &params, now).unwrap();
    let ours = drain(&mut w, &s, now);
    assert_eq!(ours.len(), events.len());
    for (mine, theirs) in ours.iter().zip(&events) {
        match mine {
            WatchEvent::Added(o) => {
                assert_eq!(theirs["type"], "ADDED");
                assert_eq!(o["metadata"]["name"], theirs["object"]["metadata"]["name"]);
                assert_eq!(o["spec"], theirs["object"]["spec"]);
            }
            WatchEvent::Bookmark(b) => {
                assert_eq!(theirs["type"], "BOOKMARK");
                let annotations: std::collections::BTreeMap<String, String> =
                    serde_json::from_value(theirs["object"]["metadata"]["annotations"].clone())
                        .unwrap();
                assert_eq!(b.annotations, annotations);
                assert_eq!(b.resource_version, s.resource_version().to_string());
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}
