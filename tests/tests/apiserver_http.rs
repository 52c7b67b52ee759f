//! windlass-apiserver over HTTP: discovery, every verb, Table and metadata
//! output, watch streaming, and the status a real server gives for each bad request.

mod apiserver_support;

use std::time::Duration;

use apiserver_support::{As, Client, Lines};
use bytes::Bytes;
use http::{Method, StatusCode};
use serde_json::{Value, json};
use windlass_testkit::apiserver::{ApiServer, RunningServer};

const TABLE: &str = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";
const AGGREGATED: &str =
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json";

async fn plain() -> (RunningServer, Client) {
    let server = ApiServer::builder()
        .tls(false)
        .bookmark_interval(Duration::from_millis(100))
        .start()
        .await
        .unwrap();
    let client = Client::new(&server, As::Anonymous);
    (server, client)
}

fn configmap(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": {"app": "web"}}, "data": {"k": "v"}})
}

fn pod(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
           "spec": {"containers": [{"name": "web", "image": "nginx:1", "ports": [{"containerPort": 80}],
                                    "env": [{"name": "A", "value": "1"}]}]}})
}

#[tokio::test]
async fn apiserver_discovery_legacy_and_aggregated() {
    let (server, client) = plain().await;
    let version = client.get("/version").await.json();
    assert_eq!(version["gitVersion"], "v1.34.0-windlass");

    let api = client.get("/api").await.json();
    assert_eq!(
        (api["kind"].as_str(), &api["versions"]),
        (Some("APIVersions"), &json!(["v1"]))
    );
    let apis = client.get("/apis").await.json();
    let groups: Vec<&str> = apis["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap())
        .collect();
    assert!(
        groups.contains(&"apps") && groups.contains(&"coordination.k8s.io"),
        "{groups:?}"
    );

    let core = client.get("/api/v1").await.json();
    let names: Vec<&str> = core["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    for want in [
        "namespaces",
        "pods",
        "pods/status",
        "services",
        "configmaps",
        "secrets",
        "events",
    ] {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }
    let apps = client.get("/apis/apps/v1").await.json();
    assert_eq!(apps["groupVersion"], "apps/v1");
    assert_eq!(client.get("/apis/apps").await.json()["kind"], "APIGroup");

    for (path, core) in [("/api", true), ("/apis", false)] {
        let answer = client
            .call(Method::GET, path, &[("accept", AGGREGATED)], Bytes::new())
            .await;
        assert_eq!(
            answer.headers["content-type"],
            "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
        );
        let doc = answer.json();
        assert_eq!(doc["kind"], "APIGroupDiscoveryList");
        let first = &doc["items"][0];
        assert_eq!(first["metadata"]["name"] == "", core, "{path}: {first}");
        if core {
            let pods = first["versions"][0]["resources"]
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r["resource"] == "pods")
                .unwrap();
            assert_eq!(pods["scope"], "Namespaced");
            assert_eq!(pods["subresources"][0]["subresource"], "status");
        }
    }
    assert_eq!(
        client.get("/apis/nothing.example/v1").await.status,
        StatusCode::NOT_FOUND
    );
    server.shutdown().await;
}

#[tokio::test]
async fn apiserver_crd_created_at_run_time_is_served() {
    let (server, client) = plain().await;
    let crd = json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
                 "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
                 "versions": [{"name": "v1", "served": true, "storage": true,
                               "additionalPrinterColumns": [{"name": "Size", "type": "integer", "jsonPath": ".spec.size"}],
                               "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]}
    });
    let created = client
        .post_json(
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
            &crd,
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    let list = client.get("/apis/example.com/v1").await.json();
    assert_eq!(list["resources"][0]["name"], "widgets");
    let widget = json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w1"}, "spec": {"size": 3}});
    let answer = client
        .post_json("/apis/example.com/v1/namespaces/default/widgets", &widget)
        .await;
    assert_eq!(answer.status, StatusCode::CREATED);
    let got = client
        .get("/apis/example.com/v1/namespaces/default/widgets/w1")
        .await
        .json();
    assert_eq!(got["spec"]["size"], 3);
    // kubectl get prints the CRD's printer columns.
    let table = client
        .call(
            Method::GET,
            "/apis/example.com/v1/namespaces/default/widgets",
            &[("accept", TABLE)],
            Bytes::new(),
        )
        .await
        .json();
    let columns: Vec<&str> = table["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(columns, ["Name", "Size"]);
    assert_eq!(table["rows"][0]["cells"], json!(["w1", 3]));
    server.shutdown().await;
}

#[tokio::test]
async fn apiserver_verbs_create_get_list_replace_patch_delete() {
    let (server, client) = plain().await;
    let base = "/api/v1/namespaces/default/configmaps";
    let created = client.post_json(base, &configmap("a")).await;
    assert_eq!(created.status, StatusCode::CREATED);
    let created = created.json();
    assert_eq!(created["metadata"]["namespace"], "default");
    client.post_json(base, &configmap("b")).await;

    let got = client.get(&format!("{base}/a")).await.json();
    assert_eq!(got["data"]["k"], "v");

    let page = client.get(&format!("{base}?limit=1")).await.json();
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    let token = page["metadata"]["continue"].as_str().unwrap().to_owned();
    let rest = client
        .get(&format!("{base}?limit=1&continue={token}"))
        .await
        .json();
    assert_eq!(rest["items"][0]["metadata"]["name"], "b");
    let selected = client
        .get(&format!(
            "{base}?labelSelector=app%3Dweb&fieldSelector=metadata.name%3Db"
        ))
        .await
        .json();
    assert_eq!(selected["items"].as_array().unwrap().len(), 1);

    let mut replaced = got.clone();
    replaced["data"]["k"] = "v2".into();
    let put = client
        .call(
            Method::PUT,
            &format!("{base}/a"),
            &[("content-type", "application/json")],
            serde_json::to_vec(&replaced).unwrap(),
        )
        .await;
    assert_eq!(put.status, StatusCode::OK);
    assert_eq!(put.json()["data"]["k"], "v2");

    let merge = client
        .call(
            Method::PATCH,
            &format!("{base}/a"),
            &[("content-type", "application/merge-patch+json")],
            r#"{"data":{"m":"1"}}"#,
        )
        .await
        .json();
    assert_eq!(merge["data"], json!({"k": "v2", "m": "1"}));
    let jsonpatch = client
        .call(
            Method::PATCH,
            &format!("{base}/a"),
            &[("content-type", "application/json-patch+json")],
            r#"[{"op":"remove","path":"/data/m"}]"#,
        )
        .await
        .json();
    assert_eq!(jsonpatch["data"], json!({"k": "v2"}));

    let deleted = client
        .call(Method::DELETE, &format!("{base}/a"), &[], Bytes::new())
        .await;
    assert_eq!(deleted.status, StatusCode::OK);
    assert_eq!(deleted.json()["status"], "Success");
    assert_eq!(
        client.get(&format!("{base}/a")).await.status,
        StatusCode::NOT_FOUND
    );

    let collection = client
        .call(
            Method::DELETE,
            &format!("{base}?labelSelector=app%3Dweb"),
            &[],
            Bytes::new(),
        )
        .await;
    assert_eq!(collection.status, StatusCode::OK);
    assert_eq!(collection.json()["items"][0]["metadata"]["name"], "b");
    assert_eq!(client.get(base).await.json()["items"], json!([]));
    server.shutdown().await;
}

#[tokio::test]
async fn apiserver_strategic_merge_patch_merges_containers_ports_and_env() {
    let (server, client) = plain().await;
    let base = "/api/v1/namespaces/default/pods";
    client.post_json(base, &pod("p")).await;
    let patch = json!({"spec": {"containers": [{"name": "web", "image": "nginx:2",
        "ports": [{"containerPort": 443}], "env": [{"name": "B", "value": "2"}]}]}});
    let answer = client
        .call(
            Method::PATCH,
            &format!("{base}/p"),
            &[("content-type", "application/strategic-merge-patch+json")],
            serde_json::to_vec(&patch).unwrap(),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
    let c = &answer.json()["spec"]["containers"][0];
    assert_eq!(c["image"], "nginx:2");
    assert_eq!(
        c["ports"],
        json!([{"containerPort": 80}, {"containerPort": 443}])
    );
    assert_eq!(
        c["env"],
        json!([{"name": "A", "value": "1"}, {"name": "B", "value": "2"}])
    );
    server.shutdown().await;
}

#[tokio::test]
async fn apiserver_server_side_apply_tracks_managers_and_reports_conflicts() {
    let (server, client) = plain().await;
    let path = "/api/v1/namespaces/default/configmaps/applied";
    let apply = |manager: &'static str, value: &'static str, force: bool| {
        let client = client.clone();
        async move {
            let body = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "applied"}, "data": {"key": value}});
            client
                .call(
                    Method::PATCH,
                    &format!("{path}?fieldManager={manager}&force={force}"),
                    &[("content-type", "application/apply-patch+yaml")],
                    serde_json::to_vec(&body).unwrap(),
                )
                .await
        }
    };
    let first = apply("alice", "1", false).await;
    assert_eq!(first.status, StatusCode::CREATED, "apply creates");
    let first = first.json();
    assert_eq!(first["metadata"]["managedFields"][0]["manager"], "alice");
    assert_eq!(first["metadata"]["managedFields"][0]["operation"], "Apply");

    let conflict = apply("bob", "2", false).await;
    assert_eq!(conflict.status, StatusCode::CONFLICT);
    let status = conflict.json();
    assert_eq!(status["reason"], "Conflict");
    assert_eq!(status["details"]["causes"][0]["field"], ".data.key");
    assert!(
        status["message"]
            .as_str()
            .unwrap()
            .contains("conflict with \"alice\""),
        "{status}"
    );

    let forced = apply("bob", "2", true).await;
    assert_eq!(forced.status, StatusCode::OK);
    assert_eq!(forced.json()["data"]["key"], "2");
    server.shutdown().await;
}

#[tokio::test]
async fn apiserver_status_subresource_changes_only_status() {
    let (server, client) = plain().await;
    let base = "/api/v1/namespaces/default/pods";
    client.post_json(base, &pod("s")).await;
    let answer = client
        .call(
            Method::PATCH,
            &format!("{base}/s/status"),
            &[("content-type", "application/merge-patch+json")],
            r#"{"status":{"phase":"Running"},"spec":{"nodeName":"ignored"}}"#,
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
    let pod = client.get(&format!("{base}/s/status")).await.json();
    assert_eq!(pod["status"]["phase"], "Running");
    assert!(
        pod["spec"].get("nodeName").is_none(),
        "spec untouched: {}",
        pod["spec"]
    );
    assert_eq!(
        client.get(&format!("{base}/s/log")).await.status,
        StatusCode::NOT_FOUND
    );
    server.shutdown().await;
}

#[tokio::test]
async fn apiserver_delete_propagates_to_dependents_unless_orphaned() {
    let (server, client) = plain().await;
    let base = "/api/v1/namespaces/default/configmaps";
    for (owner, policy) in [("owner-bg", "Background"), ("owner-orphan", "Orphan")] {
        let owner_obj = client.post_json(base, &configmap(owner)).await.json();
        let uid = owner_obj["metadata"]["uid"].as_str().unwrap().to_owned();
        let mut dependent = configmap(&format!("{owner}-child"));
        dependent["metadata"]["ownerReferences"] =
            json!([{"apiVersion": "v1", "kind": "ConfigMap", "name": owner, "uid": uid}]);
        assert_eq!(
            client.post_json(base, &dependent).await.status,
            StatusCode::CREATED
        );
        let deleted = client
            .call(
                Method::DELETE,
                &format!("{base}/{owner}?propagationPolicy={policy}"),
                &[],
                Bytes::new(),
            )
            .await;
        assert_eq!(deleted.status, StatusCode::OK);
        let child = client.get(&format!("{base}/{owner}-child")).await;
        if policy == "Orphan" {
            assert_eq!(child.status, StatusCode::OK);
            assert!(
                child.json()["metadata"]
                    .get("ownerReferences")
                    .is_none_or(|r| r == &json!([]))
            );
        } else {
            assert_eq!(
                child.status,
                StatusCode::NOT_FOUND,
                "background deletes the dependent"
            );
        }
    }
    let bad = client
        .call(
            Method::DELETE,
            &format!("{base}/owner-orphan-child?propagationPolicy=Sometimes"),
            &[],
            Bytes::new(),
        )
        .await;
    assert_eq!(bad.status_reason(), (422, "Invalid".to_owned()));
    server.shutdown().await;
}

#[tokio::test]
async fn apiserver_table_and_partial_object_metadata_output() {
    let (server, client) = plain().await;
    client
        .post_json("/api/v1/namespaces/default/pods", &pod("t"))
        .await;
    let table = client
        .call(
            Method::GET,
            "/api/v1/namespaces/default/pods",
            &[("accept", TABLE)],
            Bytes::new(),
        )
        .await
        .json();
    assert_eq!(table["kind"], "Table");
    let columns: Vec<&str> = table["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        &columns[..5],
        ["Name", "Ready", "Status", "Restarts", "Age"]
    );
    assert_eq!(table["rows"][0]["cells"][0], "t");
    assert_eq!(table["rows"][0]["cells"][1], "0/1");
    assert_eq!(table["rows"][0]["object"]["kind"], "PartialObjectMetadata");

    let ns_table = client
        .call(
            Method::GET,
            "/api/v1/namespaces/default?includeObject=None",
            &[("accept", TABLE)],
            Bytes::new(),
        )
        .await
        .json();
    assert_eq!(
        ns_table["rows"][0]["cells"],
        json!(["default", "Active", ns_table["rows"][0]["cells"][2]])
    );
    assert!(ns_table["rows"][0].get("object").is_none());

    let meta = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json";
    let list = client
        .call(
            Method::GET,
            "/api/v1/namespaces/default/pods",
            &[("accept", meta)],
            Bytes::new(),
        )
        .await
        .json();
    assert_eq!(list["kind"], "PartialObjectMetadataList");
    assert_eq!(list["items"][0]["metadata"]["name"], "t");
    assert!(list["items"][0].get("spec").is_none());
    server.shutdown().await;
}

async fn watch(client: &Client, path: &str) -> Lines {
    let response = client.send(Method::GET, path, &[], Bytes::new()).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/json");
    Lines::new(response.into_body())
}

#[tokio::test]
async fn apiserver_watch_streams_one_event_per_line() {
    let (server, client) = plain().await;
    let base = "/api/v1/namespaces/default/configmaps";
    let list = client.get(base).await.json();
    let rv = list["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut lines = watch(&client, &format!("{base}?watch=true&resourceVersion={rv}")).await;
    client.post_json(base, &configmap("w")).await;
    client
        .call(
            Method::PATCH,
            &format!("{base}/w"),
            &[("content-type", "application/merge-patch+json")],
            r#"{"data":{"x":"y"}}"#,
        )
        .await;
    client
        .call(Method::DELETE, &format!("{base}/w"), &[], Bytes::new())
        .await;
    let mut types = Vec::new();
    for _ in 0..3 {
        let event = lines.next().await.expect("an event");
        assert_eq!(event["object"]["metadata"]["name"], "w");
        types.push(event["type"].as_str().unwrap().to_owned());
    }
    assert_eq!(types, ["ADDED", "MODIFIED", "DELETED"]);
    server.shutdown().await;
}

#[tokio::test]
async fn apiserver_watch_ends_at_timeout_seconds() {
    let (server, client) = plain().await;
    let start = std::time::Instant::now();
    let mut lines = watch(
        &client,
        "/api/v1/namespaces/default/configmaps?watch=1&timeoutSeconds=1",
    )
    .await;
    assert_eq!(lines.next().await, None, "the stream ends cleanly");
    assert!(!lines.aborted);
    assert!(start.elapsed() >= Duration::from_millis(900));
    server.shutdown().await;
}

#[tokio::test]
async fn apiserver_watch_sends_bookmarks_when_allowed() {
    let (server, client) = plain().await;
    let rv = client
        .get("/api/v1/namespaces/default/configmaps")
        .await
        .json()["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut lines = watch(
        &client,
        &format!("/api/v1/namespaces/default/configmaps?watch=1&allowWatchBookmarks=true&resourceVersion={rv}"),
    )
    .await;
    let event = lines.next().await.unwrap();
    assert_eq!(event["type"], "BOOKMARK");
    assert_eq!(event["object"]["kind"], "ConfigMap");
    assert!(
        event["object"]["metadata"]["resourceVersion"]
            .as_str()
            .is_some()
    );
    server.shutdown().await;
}

#[tokio::test]
async fn apiserver_watch_list_sends_initial_events_then_the_end_bookmark() {
    let (server, client) = plain().await;
    let base = "/api/v1/namespaces/default/configmaps";
    client.post_json(base, &configmap("one")).await;
    client.post_json(base, &configmap("two")).await;
    let mut lines = watch(
        &client,
        &format!("{base}?watch=1&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true&resourceVersion="),
    )
    .await;
    let a = lines.next().await.unwrap();
    let b = lines.next().await.unwrap();
    assert_eq!(
        (a["type"].as_str(), b["type"].as_str()),
        (Some("ADDED"), Some("ADDED"))
    );
    let end = lines.next().await.unwrap();
    assert_eq!(end["type"], "BOOKMARK");
    assert_eq!(
        end["object"]["metadata"]["annotations"]["k8s.io/initial-events-end"],
        "true"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn apiserver_watch_as_table_carries_columns_in_the_first_event_only() {
    let (server, client) = plain().await;
    let base = "/api/v1/namespaces/default/configmaps";
    client.post_json(base, &configmap("x1")).await;
    client.post_json(base, &configmap("x2")).await;
    let response = client
        .send(
            Method::GET,
            &format!("{base}?watch=1"),
            &[("accept", TABLE)],
            Bytes::new(),
        )
        .await;
    let mut lines = Lines::new(response.into_body());
    let first = lines.next().await.unwrap();
    let second = lines.next().await.unwrap();
    assert_eq!(first["object"]["kind"], "Table");
    assert!(
        !first["object"]["columnDefinitions"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert_eq!(second["object"]["columnDefinitions"], json!([]));
    assert_eq!(second["object"]["rows"][0]["cells"][0], "x2");
    server.shutdown().await;
}

// --- each bad-request status a real server gives

#[tokio::test]
async fn apiserver_bad_requests_get_the_real_servers_status() {
    let (server, client) = plain().await;
    let base = "/api/v1/namespaces/default/configmaps";
    client.post_json(base, &configmap("exists")).await;

    // 400: a malformed parameter, a body that is not JSON.
    assert_eq!(
        client
            .get(&format!("{base}?limit=ten"))
            .await
            .status_reason()
            .0,
        400
    );
    let garbage = client
        .call(
            Method::POST,
            base,
            &[("content-type", "application/json")],
            "{not json",
        )
        .await;
    assert_eq!(garbage.status_reason(), (400, "BadRequest".to_owned()));
    // 404: no such path, resource or object; a cluster-scoped resource under a namespace.
    assert_eq!(
        client.get("/nothing").await.status_reason(),
        (404, "NotFound".to_owned())
    );
    assert_eq!(
        client.get("/api/v1/widgets").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        client.get(&format!("{base}/missing")).await.status_reason(),
        (404, "NotFound".to_owned())
    );
    assert_eq!(
        client
            .get("/api/v1/namespaces/default/namespaces/x")
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    // 405: POST to a named object, PUT to a collection.
    let post_named = client
        .post_json(&format!("{base}/exists"), &configmap("exists"))
        .await;
    assert_eq!(
        post_named.status_reason(),
        (405, "MethodNotAllowed".to_owned())
    );
    let put_collection = client
        .call(
            Method::PUT,
            base,
            &[("content-type", "application/json")],
            "{}",
        )
        .await;
    assert_eq!(put_collection.status.as_u16(), 405);
    // 406: nothing acceptable.
    let html = client
        .call(Method::GET, base, &[("accept", "text/html")], Bytes::new())
        .await;
    assert_eq!(html.status_reason(), (406, "NotAcceptable".to_owned()));
    // 409: AlreadyExists, and Conflict on a stale resourceVersion.
    let again = client.post_json(base, &configmap("exists")).await;
    assert_eq!(again.status_reason(), (409, "AlreadyExists".to_owned()));
    let mut stale = client.get(&format!("{base}/exists")).await.json();
    stale["metadata"]["resourceVersion"] = "1".into();
    let conflict = client
        .call(
            Method::PUT,
            &format!("{base}/exists"),
            &[("content-type", "application/json")],
            serde_json::to_vec(&stale).unwrap(),
        )
        .await;
    assert_eq!(conflict.status_reason(), (409, "Conflict".to_owned()));
    // 410: an Exact list at a compacted resourceVersion.
    server.faults().compact();
    let gone = client
        .get(&format!(
            "{base}?resourceVersion=1&resourceVersionMatch=Exact"
        ))
        .await;
    assert_eq!(gone.status_reason(), (410, "Expired".to_owned()));
    // 413: a body over 3 MiB.
    let huge = vec![b' '; 3 * 1024 * 1024 + 1];
    let too_large = client
        .call(
            Method::POST,
            base,
            &[("content-type", "application/json")],
            huge,
        )
        .await;
    assert_eq!(
        too_large.status_reason(),
        (413, "RequestEntityTooLarge".to_owned())
    );
    // 415: an unknown patch type, and an unknown body type.
    let patch = client
        .call(
            Method::PATCH,
            &format!("{base}/exists"),
            &[("content-type", "text/plain")],
            "x",
        )
        .await;
    assert_eq!(
        patch.status_reason(),
        (415, "UnsupportedMediaType".to_owned())
    );
    let yaml = client
        .call(
            Method::POST,
            base,
            &[("content-type", "application/x-unknown")],
            "x",
        )
        .await;
    assert_eq!(yaml.status_reason().0, 415);
    // 422: an invalid name.
    let invalid = client.post_json(base, &configmap("Not_Valid")).await;
    assert_eq!(invalid.status_reason(), (422, "Invalid".to_owned()));
    assert!(
        invalid.json()["details"]["causes"][0]["field"]
            .as_str()
            .is_some()
    );
    server.shutdown().await;
}

#[tokio::test]
async fn apiserver_unauthenticated_is_401_over_tls() {
    let server = ApiServer::builder().start().await.unwrap();
    let answer = Client::new(&server, As::Anonymous).get("/version").await;
    assert_eq!(answer.status_reason(), (401, "Unauthorized".to_owned()));
    server.shutdown().await;
}

#[tokio::test]
async fn apiserver_namespace_delete_removes_its_contents() {
    let (server, client) = plain().await;
    let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "doomed"}});
    assert_eq!(
        client.post_json("/api/v1/namespaces", &ns).await.status,
        StatusCode::CREATED
    );
    client
        .post_json("/api/v1/namespaces/doomed/configmaps", &configmap("inside"))
        .await;
    let deleted = client
        .call(
            Method::DELETE,
            "/api/v1/namespaces/doomed",
            &[],
            Bytes::new(),
        )
        .await;
    assert_eq!(deleted.status, StatusCode::OK);
    let deadline = tokio::time::Instant::now() + apiserver_support::TIMEOUT;
    loop {
        let inside = client
            .get("/api/v1/namespaces/doomed/configmaps/inside")
            .await;
        if inside.status == StatusCode::NOT_FOUND {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "namespace contents never went away"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.shutdown().await;
}

#[tokio::test]
async fn apiserver_protobuf_get_list_and_watch() {
    use k8s_openapi::api::core::v1::ConfigMap;
    use windlass_proto::codec::protobuf;
    const PROTOBUF: &str = "application/vnd.kubernetes.protobuf,application/json";
    let (server, client) = plain().await;
    let base = "/api/v1/namespaces/default/configmaps";
    client.post_json(base, &configmap("pb")).await;

    let one = client
        .call(
            Method::GET,
            &format!("{base}/pb"),
            &[("accept", PROTOBUF)],
            Bytes::new(),
        )
        .await;
    assert_eq!(
        one.headers["content-type"],
        "application/vnd.kubernetes.protobuf"
    );
    let cm: ConfigMap = protobuf::decode(&one.body).unwrap();
    assert_eq!(cm.metadata.name.as_deref(), Some("pb"));
    assert_eq!(cm.data.unwrap()["k"], "v");

    let list = client
        .call(Method::GET, base, &[("accept", PROTOBUF)], Bytes::new())
        .await;
    let list: k8s_openapi::List<ConfigMap> = protobuf::decode(&list.body).unwrap();
    assert_eq!(list.items.len(), 1);

    // A document protobuf has no message for (`/version`) comes back as JSON.
    let discovery = client
        .call(
            Method::GET,
            "/version",
            &[("accept", PROTOBUF)],
            Bytes::new(),
        )
        .await;
    assert_eq!(discovery.headers["content-type"], "application/json");

    let response = client
        .send(
            Method::GET,
            &format!("{base}?watch=1"),
            &[("accept", PROTOBUF)],
            Bytes::new(),
        )
        .await;
    assert_eq!(
        response.headers()["content-type"],
        "application/vnd.kubernetes.protobuf;stream=watch"
    );
    let mut body = response.into_body();
    let mut buf = Vec::new();
    let frame = loop {
        if buf.len() >= 4 {
            let len = u32::from_be_bytes(buf[..4].try_into().unwrap()) as usize;
            if buf.len() >= 4 + len {
                break buf[4..4 + len].to_vec();
            }
        }
        use http_body_util::BodyExt;
        let chunk = tokio::time::timeout(apiserver_support::TIMEOUT, body.frame())
            .await
            .expect("a watch frame in time")
            .expect("stream open")
            .unwrap();
        buf.extend_from_slice(&chunk.into_data().unwrap());
    };
    // meta.v1.WatchEvent: field 1 the type, field 2 a RawExtension whose field 1 is the object.
    assert_eq!(&frame[..2], &[0x0a, 5]);
    assert_eq!(&frame[2..7], b"ADDED");
    let raw_start = frame
        .windows(4)
        .position(|w| w == b"k8s\0")
        .expect("an enveloped object");
    let cm: ConfigMap = protobuf::decode(&frame[raw_start..]).unwrap();
    assert_eq!(cm.metadata.name.as_deref(), Some("pb"));
    server.shutdown().await;
}

/// Every framing the server writes decodes with windlass-proto's own watch
/// decoder into the typed object, and objects round-trip in every format.
#[tokio::test]
async fn apiserver_watch_and_objects_in_json_protobuf_and_cbor_decode_with_windlass_proto() {
    use http_body_util::BodyExt;
    use k8s_openapi::api::core::v1::ConfigMap;
    use windlass_proto::codec::cbor;
    use windlass_proto::watch::{Limits, WatchDecoder, WatchEvent};
    let (server, client) = plain().await;
    let base = "/api/v1/namespaces/default/configmaps";
    for (i, accept) in [
        "application/json",
        "application/vnd.kubernetes.protobuf",
        "application/cbor",
    ]
    .into_iter()
    .enumerate()
    {
        let rv = client.get(base).await.json()["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .to_owned();
        let response = client
            .send(
                Method::GET,
                &format!("{base}?watch=1&resourceVersion={rv}"),
                &[("accept", accept)],
                Bytes::new(),
            )
            .await;
        let content_type = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_owned();
        let mut decoder: WatchDecoder<ConfigMap> =
            WatchDecoder::for_content_type(&content_type, Limits::default()).unwrap();
        let name = format!("framed-{i}");
        // The create goes in CBOR when the watch is CBOR.
        let created = if accept == "application/cbor" {
            let body = cbor::encode(&configmap(&name)).unwrap();
            client
                .call(
                    Method::POST,
                    base,
                    &[("content-type", "application/cbor"), ("accept", accept)],
                    body,
                )
                .await
        } else {
            client.post_json(base, &configmap(&name)).await
        };
        assert_eq!(created.status, StatusCode::CREATED, "{accept}");
        if accept == "application/cbor" {
            assert_eq!(created.headers["content-type"], "application/cbor");
            let back: ConfigMap = cbor::decode(&created.body).unwrap();
            assert_eq!(back.metadata.name.as_deref(), Some(name.as_str()));
        }
        let mut body = response.into_body();
        let event = loop {
            if let Some(event) = decoder.poll_event() {
                break event.unwrap_or_else(|e| panic!("{accept}: {e}"));
            }
            let frame = tokio::time::timeout(apiserver_support::TIMEOUT, body.frame())
                .await
                .expect("an event in time")
                .expect("stream open")
                .unwrap();
            decoder.push(&frame.into_data().unwrap()).unwrap();
        };
        match event {
            WatchEvent::Added(cm) => {
                assert_eq!(cm.metadata.name.as_deref(), Some(name.as_str()), "{accept}");
                assert_eq!(cm.data.unwrap()["k"], "v", "{accept}");
            }
            other => panic!("{accept}: {other:?}"),
        }
    }
    server.shutdown().await;
}

#[tokio::test]
async fn apiserver_scale_subresource_reads_and_writes_replicas() {
    let (server, client) = plain().await;
    let base = "/apis/apps/v1/namespaces/default/deployments";
    let deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "d"}},
                 "template": {"metadata": {"labels": {"app": "d"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}});
    assert_eq!(
        client.post_json(base, &deployment).await.status,
        StatusCode::CREATED
    );
    let scale = client.get(&format!("{base}/d/scale")).await.json();
    assert_eq!(
        (scale["kind"].as_str(), scale["apiVersion"].as_str()),
        (Some("Scale"), Some("autoscaling/v1"))
    );
    assert_eq!(scale["spec"]["replicas"], 1);
    assert_eq!(scale["status"]["selector"], "app=d");
    let patched = client
        .call(
            Method::PATCH,
            &format!("{base}/d/scale"),
            &[("content-type", "application/merge-patch+json")],
            r#"{"spec":{"replicas":4}}"#,
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK);
    assert_eq!(patched.json()["spec"]["replicas"], 4);
    assert_eq!(
        client.get(&format!("{base}/d")).await.json()["spec"]["replicas"],
        4
    );
    let negative = client
        .call(
            Method::PATCH,
            &format!("{base}/d/scale"),
            &[("content-type", "application/merge-patch+json")],
            r#"{"spec":{"replicas":-1}}"#,
        )
        .await;
    assert_eq!(negative.status_reason(), (422, "Invalid".to_owned()));
    let discovery = client.get("/apis/apps/v1").await.json();
    let scale_entry = discovery["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "deployments/scale")
        .unwrap();
    assert_eq!(
        (scale_entry["group"].as_str(), scale_entry["kind"].as_str()),
        (Some("autoscaling"), Some("Scale"))
    );
    // Configmaps have no scale subresource.
    assert_eq!(
        client
            .get("/api/v1/namespaces/default/configmaps/x/scale")
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    server.shutdown().await;
}

#[tokio::test]
async fn apiserver_writes_record_update_managers_that_apply_conflicts_with() {
    let (server, client) = plain().await;
    let base = "/api/v1/namespaces/default/configmaps";
    let created = client
        .call(
            Method::POST,
            &format!("{base}?fieldManager=creator"),
            &[("content-type", "application/json")],
            serde_json::to_vec(&configmap("owned")).unwrap(),
        )
        .await
        .json();
    let entry = &created["metadata"]["managedFields"][0];
    assert_eq!(
        (entry["manager"].as_str(), entry["operation"].as_str()),
        (Some("creator"), Some("Update"))
    );
    assert_eq!(entry["fieldsV1"]["f:data"], json!({"f:k": {}}));
    // A merge patch by another manager takes over the field it changes.
    let patched = client
        .call(
            Method::PATCH,
            &format!("{base}/owned?fieldManager=patcher"),
            &[("content-type", "application/merge-patch+json")],
            r#"{"data":{"k":"changed"}}"#,
        )
        .await
        .json();
    let managers: Vec<(&str, &Value)> = patched["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["manager"].as_str().unwrap(), &e["fieldsV1"]))
        .collect();
    assert!(
        managers
            .iter()
            .any(|(m, f)| *m == "patcher" && f["f:data"]["f:k"] == json!({})),
        "{managers:?}"
    );
    assert!(
        !managers
            .iter()
            .any(|(m, f)| *m == "creator" && f["f:data"].get("f:k").is_some()),
        "{managers:?}"
    );
    // Applying a different value for a field an update owns conflicts.
    let body = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "owned"}, "data": {"k": "applied"}});
    let conflict = client
        .call(
            Method::PATCH,
            &format!("{base}/owned?fieldManager=applier"),
            &[("content-type", "application/apply-patch+yaml")],
            serde_json::to_vec(&body).unwrap(),
        )
        .await;
    assert_eq!(conflict.status_reason(), (409, "Conflict".to_owned()));
    assert!(
        conflict.json()["message"]
            .as_str()
            .unwrap()
            .contains("conflict with \"patcher\"")
    );
    server.shutdown().await;
}

/// An early answer (an injected fault here; a 401 takes the same path) comes
/// only once the request body has been read, as from Go's net/http: a server
/// that answers mid-body and closes makes the client see a reset connection
/// instead of the 415, depending on timing.
#[tokio::test]
async fn apiserver_injected_fault_is_answered_after_the_whole_body_is_read() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let (server, _client) = plain().await;
    server.faults().fail_requests(1, 415, 0);
    let body = configmap("slow").to_string();
    let (first, rest) = body.as_bytes().split_at(body.len() / 2);
    let mut tcp = tokio::net::TcpStream::connect(server.addr()).await.unwrap();
    let head = format!(
        "POST /api/v1/namespaces/default/configmaps HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    tcp.write_all(first).await.unwrap();
    let mut answer = vec![0u8; 4096];
    let early = tokio::time::timeout(Duration::from_millis(300), tcp.read(&mut answer)).await;
    assert!(
        early.is_err(),
        "the server answered before the body was complete: {early:?}"
    );
    tcp.write_all(rest).await.unwrap();
    let n = tokio::time::timeout(Duration::from_secs(10), tcp.read(&mut answer))
        .await
        .expect("no answer within 10 s")
        .unwrap();
    let text = String::from_utf8_lossy(&answer[..n]);
    assert!(text.starts_with("HTTP/1.1 415"), "{text}");
}
