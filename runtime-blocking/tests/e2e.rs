//! windlass-blocking end to end against windlass-apiserver over TLS with
//! client-certificate auth. The server's API is async: it runs on a tokio
//! runtime's worker threads (a dev-dependency only) while the test thread
//! makes blocking calls. Every test body runs under a deadline.

mod support;

use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde_json::json;
use support::{Harness, config_map, namespace, within};
use windlass_blocking::Api;
use windlass_proto::dynamic::DynamicObject;
use windlass_proto::params::{ListParams, WatchParams};
use windlass_proto::request::{DeleteParams, Patch, PatchParams, PostParams};
use windlass_proto::resource::{ApiResource, Scope};
use windlass_proto::watch::WatchEvent;
use windlass_testkit::apiserver::ApiServer;

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

/// Adds a header to every request and counts the answers it sees.
#[derive(Default)]
struct TableHook {
    statuses: std::sync::Mutex<Vec<u16>>,
}

impl windlass_blocking::Hook for TableHook {
    fn on_request(&self, request: &mut http::Request<Vec<u8>>) {
        request.headers_mut().insert(
            http::header::ACCEPT,
            http::HeaderValue::from_static("application/json;as=Table;v=v1;g=meta.k8s.io"),
        );
    }

    fn on_response(
        &self,
        _method: &http::Method,
        _uri: &http::Uri,
        status: Option<http::StatusCode>,
        _latency: Duration,
    ) {
        self.statuses
            .lock()
            .unwrap()
            .push(status.map_or(0, |s| s.as_u16()));
    }
}

#[test]
fn e2e_blocking_hook_header_reaches_the_server_and_sees_every_response() {
    // client-go's WrapTransport use case: a header the user adds. The server
    // shows it saw the header by answering `Accept: as=Table` with a Table.
    let harness = Harness::default();
    let hook = std::sync::Arc::new(TableHook::default());
    let client = harness.builder().hook(hook.clone()).build().unwrap();
    within(30, move || {
        let maps: Api<ConfigMap> = Api::namespaced(client.clone(), "default").unwrap();
        let call = windlass_blocking::Call {
            verb: "list",
            kind: windlass_proto::retry::RequestKind::List,
            resource: "configmaps",
        };
        let request = http::Request::get("/api/v1/namespaces/default/configmaps")
            .body(bytes::Bytes::new())
            .unwrap();
        let (_, body) = client.send_for_bytes(request, call).unwrap();
        let table: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(table["kind"], "Table", "{table}");
        let missing = maps.get("missing").unwrap_err();
        assert!(missing.is_not_found(), "{missing}");
        assert_eq!(*hook.statuses.lock().unwrap(), [200, 404]);
    });
}

#[test]
fn e2e_blocking_tls_server_name_is_the_name_the_certificate_is_checked_against() {
    let harness = Harness::default();
    let by_dns_name = harness
        .builder()
        .tls_server_name("localhost")
        .build()
        .unwrap();
    let mut config = harness.config();
    config.tls.server_name = Some("kubernetes.invalid".into());
    let by_wrong_name = windlass_blocking::ClientBuilder::from_config(&config)
        .unwrap()
        .max_retries(0)
        .build()
        .unwrap();
    let mut no_ca = harness.config();
    no_ca.tls.ca = None;
    let by_platform_roots = windlass_blocking::ClientBuilder::from_config(&no_ca)
        .unwrap()
        .max_retries(0)
        .build()
        .unwrap();
    within(30, move || {
        // The URL's host is 127.0.0.1; the certificate names localhost too.
        let maps: Api<ConfigMap> = Api::namespaced(by_dns_name, "default").unwrap();
        maps.list(&ListParams::default()).unwrap();
        let maps: Api<ConfigMap> = Api::namespaced(by_wrong_name, "default").unwrap();
        let wrong = maps.list(&ListParams::default()).unwrap_err();
        assert!(
            matches!(
                &wrong,
                windlass_blocking::Error::Tls(windlass_proto::config::TlsError::WrongName { server, .. })
                    if server == "kubernetes.invalid"
            ),
            "{wrong:?}"
        );
        // Without a CA in the kubeconfig the platform's roots are trusted,
        // not anything bundled, and the test CA is in neither.
        let maps: Api<ConfigMap> = Api::namespaced(by_platform_roots, "default").unwrap();
        let untrusted = maps.list(&ListParams::default()).unwrap_err();
        assert!(
            untrusted
                .to_string()
                .contains("platform's root certificates"),
            "{untrusted}"
        );
    });
}

#[test]
fn e2e_blocking_stall_server_that_never_answers_ends_in_a_timeout_error() {
    let addr = support::raw_server(|mut stream| {
        support::read_head(&mut stream);
        std::thread::sleep(Duration::from_secs(30));
    });
    let client = windlass_blocking::ClientBuilder::new(format!("http://{addr}"), None)
        .read_timeout(Duration::from_millis(300))
        .max_retries(0)
        .build()
        .unwrap();
    let maps: Api<ConfigMap> = Api::namespaced(client, "default").unwrap();
    within(10, move || {
        let started = std::time::Instant::now();
        let error = maps.get("cm").unwrap_err();
        assert!(error.is_timeout(), "{error}");
        assert!(started.elapsed() < Duration::from_secs(5));
    });
}

#[test]
fn e2e_blocking_watch_cancel_handle_ends_a_blocked_watch_from_another_thread() {
    let harness = Harness::default();
    let maps: Api<ConfigMap> = Api::namespaced(harness.client(), "default").unwrap();
    within(30, move || {
        let start = maps.list(&ListParams::default()).unwrap();
        let params = WatchParams {
            resource_version: start.resource_version().map(str::to_owned),
            ..Default::default()
        };
        let mut events = maps.watch(&params).unwrap();
        let cancel = events.cancel_handle();
        let canceller = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            cancel.cancel();
        });
        let started = std::time::Instant::now();
        // The watch ends (at most with an error item), with no event.
        let rest: Vec<_> = events.by_ref().collect();
        assert!(rest.iter().all(Result::is_err), "{rest:?}");
        assert!(started.elapsed() < Duration::from_secs(10));
        canceller.join().unwrap();
        // The client's other requests are untouched.
        maps.list(&ListParams::default()).unwrap();
    });
}

#[test]
fn e2e_blocking_log_stream_yields_chunks_as_written_and_lines() {
    // windlass-apiserver serves no pod logs: a scripted server writes a
    // followed log in three chunks, 100 ms apart, the last line unterminated.
    let addr = support::raw_server(|mut stream| {
        use std::io::Write;
        let head = support::read_head(&mut stream);
        assert!(
            head.starts_with("GET /api/v1/namespaces/default/pods/web-0/log?follow=true"),
            "{head}"
        );
        let _ = stream.write_all(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ntransfer-encoding: chunked\r\n\r\n",
        );
        for chunk in [&b"line 1\nline "[..], b"2\r\nline 3\n", b"line 4"] {
            support::write_chunk(&mut stream, chunk);
            std::thread::sleep(Duration::from_millis(100));
        }
        support::write_chunk(&mut stream, b"");
    });
    let client = windlass_blocking::Client::new(format!("http://{addr}"), None).unwrap();
    let pods: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(client, "default").unwrap();
    within(10, move || {
        let params = windlass_proto::request::LogParams {
            follow: true,
            ..Default::default()
        };
        let chunks: Vec<_> = pods
            .log_stream("web-0", &params)
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(
            chunks.len() > 1,
            "the log came in {} chunk(s)",
            chunks.len()
        );
        assert_eq!(chunks.concat(), b"line 1\nline 2\r\nline 3\nline 4");
        let lines: Vec<String> = pods
            .log_stream("web-0", &params)
            .unwrap()
            .lines()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(lines, ["line 1", "line 2", "line 3", "line 4"]);
    });
}
