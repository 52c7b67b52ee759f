//! windlass-tokio end to end against windlass-apiserver, started in-process
//! on a loopback port over TLS, the client configured from the kubeconfig
//! the server hands out (client-certificate auth, or a bearer token).

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use futures_util::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde_json::json;
use support::within;
use windlass_proto::config::{ContextOptions, Kubeconfig};
use windlass_proto::dynamic::DynamicObject;
use windlass_proto::params::{ListParams, WatchParams};
use windlass_proto::request::{DeleteParams, Patch, PatchParams, PostParams};
use windlass_proto::resource::{ApiResource, Scope};
use windlass_proto::watch::WatchEvent;
use windlass_testkit::apiserver::{ApiServer, RunningServer, TOKEN_CONTEXT};
use windlass_tokio::{Api, Client, ClientBuilder};

async fn server() -> RunningServer {
    ApiServer::builder()
        .start()
        .await
        .expect("windlass-apiserver starts")
}

/// A client builder for the server's kubeconfig `context` (the current one when `None`).
fn builder(server: &RunningServer, context: Option<&str>) -> ClientBuilder {
    let kubeconfig = Kubeconfig::parse(server.kubeconfig().as_bytes(), None).unwrap();
    let options = ContextOptions {
        context: context.map(str::to_owned),
        ..Default::default()
    };
    let no_files = |p: &std::path::Path| {
        Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            p.display().to_string(),
        ))
    };
    let config = kubeconfig.resolve(&options, &no_files).unwrap();
    ClientBuilder::from_config(&config).unwrap()
}

/// Creates namespace `name`.
async fn namespace(client: &Client, name: &str) {
    let namespaces: Api<Namespace> = Api::all(client.clone()).unwrap();
    let mut ns = Namespace::default();
    ns.metadata.name = Some(name.into());
    namespaces
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
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

#[tokio::test]
async fn e2e_tokio_crud_typed_over_tls_with_client_certificate() {
    let server = server().await;
    let client = builder(&server, None).build().unwrap();
    assert_eq!(client.default_namespace(), "default");
    let maps: Api<ConfigMap> = Api::default_namespaced(client).unwrap();
    within(30, async {
        let created = maps
            .create(&PostParams::default(), &config_map("web", &[("a", "1")]))
            .await
            .unwrap();
        assert!(created.metadata.uid.is_some());
        let stale = created.clone();
        let mut fetched = maps.get("web").await.unwrap();
        assert_eq!(fetched.data, created.data);
        fetched
            .data
            .as_mut()
            .unwrap()
            .insert("b".into(), "2".into());
        let replaced = maps
            .replace("web", &PostParams::default(), &fetched)
            .await
            .unwrap();
        assert_ne!(
            replaced.metadata.resource_version,
            created.metadata.resource_version
        );
        let conflict = maps
            .replace("web", &PostParams::default(), &stale)
            .await
            .unwrap_err();
        assert!(conflict.is_conflict(), "{conflict}");
        let already = maps
            .create(&PostParams::default(), &config_map("web", &[]))
            .await
            .unwrap_err();
        assert!(already.is_already_exists(), "{already}");
        let patched = maps
            .patch(
                "web",
                &PatchParams::default(),
                &Patch::Merge(json!({"data": {"c": "3"}})),
            )
            .await
            .unwrap();
        assert_eq!(patched.data.unwrap().len(), 3);
        let listed = maps.list(&ListParams::default()).await.unwrap();
        assert_eq!(
            listed
                .items
                .iter()
                .filter(|m| m.metadata.name.as_deref() == Some("web"))
                .count(),
            1
        );
        maps.delete("web", &DeleteParams::default()).await.unwrap();
        assert!(maps.get_opt("web").await.unwrap().is_none());
        let missing = maps
            .delete("web", &DeleteParams::default())
            .await
            .unwrap_err();
        assert!(missing.is_not_found(), "{missing}");
    })
    .await;
    server.shutdown().await;
}

#[tokio::test]
async fn e2e_tokio_apply_conflict_then_force_with_bearer_token() {
    let server = server().await;
    let client = builder(&server, Some(TOKEN_CONTEXT)).build().unwrap();
    let maps: Api<ConfigMap> = Api::namespaced(client, "default").unwrap();
    within(30, async {
        let desired = |value: &str| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "applied"}, "data": {"k": value}});
        let first = maps.apply("applied", "alice", false, &desired("1")).await.unwrap();
        assert_eq!(first.data.unwrap()["k"], "1");
        let conflict = maps.apply("applied", "bob", false, &desired("2")).await.unwrap_err();
        assert!(conflict.is_conflict(), "{conflict}");
        let forced = maps.apply("applied", "bob", true, &desired("2")).await.unwrap();
        assert_eq!(forced.data.unwrap()["k"], "2");
    })
    .await;
    server.shutdown().await;
}

#[tokio::test]
async fn e2e_tokio_crud_dynamic_custom_resource() {
    let server = server().await;
    let client = builder(&server, None).build().unwrap();
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
    within(30, async {
        crds.create(&PostParams::default(), &crd).await.unwrap();
        let widget = DynamicObject::new("w1", &resource)
            .within("default")
            .with_data(json!({"spec": {"size": 3}}));
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
        let list = widgets.list(&ListParams::default()).await.unwrap();
        assert_eq!(list.items.len(), 1);
        let metadata = widgets.metadata().get("w1").await.unwrap();
        assert_eq!(metadata.metadata.name.as_deref(), Some("w1"));
        widgets
            .delete("w1", &DeleteParams::default())
            .await
            .unwrap();
        assert!(widgets.get_opt("w1").await.unwrap().is_none());
    })
    .await;
    server.shutdown().await;
}

#[tokio::test]
async fn e2e_tokio_pagination_walks_every_page() {
    let server = server().await;
    let client = builder(&server, None).build().unwrap();
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), "paged").unwrap();
    within(60, async {
        namespace(&client, "paged").await;
        for i in 0..25 {
            maps.create(
                &PostParams::default(),
                &config_map(&format!("cm-{i:02}"), &[]),
            )
            .await
            .unwrap();
        }
        let params = ListParams {
            limit: Some(10),
            ..Default::default()
        };
        let pages: Vec<_> = maps.list_pages(&params).try_collect().await.unwrap();
        assert_eq!(
            pages.iter().map(|p| p.items.len()).collect::<Vec<_>>(),
            [10, 10, 5]
        );
        let names: Vec<_> = maps
            .list_stream(&params)
            .map_ok(|m| m.metadata.name.unwrap())
            .try_collect()
            .await
            .unwrap();
        let want: Vec<_> = (0..25).map(|i| format!("cm-{i:02}")).collect();
        assert_eq!(names, want);
    })
    .await;
    server.shutdown().await;
}

#[tokio::test]
async fn e2e_tokio_watch_sees_create_update_delete_in_order() {
    let server = server().await;
    let client = builder(&server, None).build().unwrap();
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), "watched").unwrap();
    within(30, async {
        namespace(&client, "watched").await;
        let start = maps.list(&ListParams::default()).await.unwrap();
        let params = WatchParams {
            resource_version: start.resource_version().map(str::to_owned),
            ..Default::default()
        };
        let mut events = Box::pin(maps.watch(&params).await.unwrap());
        let writer = maps.clone();
        let writes = tokio::spawn(async move {
            writer
                .create(&PostParams::default(), &config_map("w", &[("v", "1")]))
                .await
                .unwrap();
            writer
                .patch(
                    "w",
                    &PatchParams::default(),
                    &Patch::Merge(json!({"data": {"v": "2"}})),
                )
                .await
                .unwrap();
            writer.delete("w", &DeleteParams::default()).await.unwrap();
        });
        let mut seen = Vec::new();
        while seen.len() < 3 {
            match events.next().await.expect("the watch ended early").unwrap() {
                WatchEvent::Added(m) => seen.push(("ADDED", m.data.unwrap()["v"].clone())),
                WatchEvent::Modified(m) => seen.push(("MODIFIED", m.data.unwrap()["v"].clone())),
                WatchEvent::Deleted(m) => seen.push(("DELETED", m.data.unwrap()["v"].clone())),
                WatchEvent::Bookmark(_) => {}
                WatchEvent::Error(status) => panic!("{status:?}"),
            }
        }
        writes.await.unwrap();
        assert_eq!(
            seen,
            [
                ("ADDED", "1".to_owned()),
                ("MODIFIED", "2".to_owned()),
                ("DELETED", "2".to_owned())
            ]
        );
    })
    .await;
    server.shutdown().await;
}

#[tokio::test]
async fn e2e_tokio_retries_429_and_503_with_retry_after() {
    let statuses = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = statuses.clone();
    let server = ApiServer::builder()
        .log_requests(move |r| log.lock().unwrap().push(r.status.as_u16()))
        .start()
        .await
        .unwrap();
    let client = builder(&server, None).build().unwrap();
    let maps: Api<ConfigMap> = Api::namespaced(client, "default").unwrap();
    within(30, async {
        server.faults().fail_requests(2, 429, 0);
        maps.create(&PostParams::default(), &config_map("retried", &[]))
            .await
            .unwrap();
        server.faults().fail_requests(1, 503, 1);
        maps.get("retried").await.unwrap();
    })
    .await;
    assert_eq!(*statuses.lock().unwrap(), [429, 429, 201, 503, 200]);
    server.shutdown().await;
}

#[tokio::test]
async fn e2e_tokio_stall_silent_watch_ends_in_a_timeout_error() {
    let server = server().await;
    let client = builder(&server, None)
        .read_timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    let maps: Api<ConfigMap> = Api::namespaced(client, "default").unwrap();
    within(30, async {
        maps.create(&PostParams::default(), &config_map("quiet", &[]))
            .await
            .unwrap();
        server.faults().stall_watches(1, 0);
        let params = WatchParams {
            resource_version: Some("0".into()),
            ..Default::default()
        };
        let items: Vec<_> = maps.watch(&params).await.unwrap().collect().await;
        let last = items.last().expect("an error item");
        assert!(matches!(last, Err(e) if e.is_timeout()), "{items:?}");
    })
    .await;
    server.shutdown().await;
}

#[tokio::test]
async fn e2e_tokio_cut_watch_ends_with_an_error_not_a_hang() {
    let server = server().await;
    let client = builder(&server, None)
        .read_timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let maps: Api<ConfigMap> = Api::namespaced(client, "default").unwrap();
    within(30, async {
        for i in 0..5 {
            maps.create(
                &PostParams::default(),
                &config_map(&format!("cut-{i}"), &[("k", "v")]),
            )
            .await
            .unwrap();
        }
        server.faults().close_watches_after(1, 300);
        let params = WatchParams {
            resource_version: Some("0".into()),
            ..Default::default()
        };
        let items: Vec<_> = maps.watch(&params).await.unwrap().collect().await;
        assert!(items.len() < 6, "{items:?}");
        assert!(items.last().is_some_and(|i| i.is_err()), "{items:?}");
    })
    .await;
    server.shutdown().await;
}

#[tokio::test]
async fn e2e_tokio_client_reaches_server_over_plain_http_too() {
    let server = ApiServer::builder().tls(false).start().await.unwrap();
    let client = Client::new(server.url(), None).unwrap();
    let maps: Api<ConfigMap> = Api::namespaced(client, "default").unwrap();
    within(
        30,
        maps.create(&PostParams::default(), &config_map("plain", &[])),
    )
    .await
    .unwrap();
    server.shutdown().await;
}

#[tokio::test]
async fn e2e_tokio_exec_credential_plugin_runs_once_for_many_requests() {
    use std::os::unix::fs::PermissionsExt;
    let server = server().await;
    let token = server
        .credentials()
        .expect("a TLS server has credentials")
        .token
        .clone();
    let dir = std::env::temp_dir().join(format!("windlass-tokio-exec-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let runs = dir.join("runs");
    let script = dir.join("plugin.sh");
    let credential = json!({"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential", "status": {"token": token}});
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho run >> '{}'\necho '{credential}'\n",
            runs.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let exec = format!(
        "    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: {}\n      interactiveMode: Never\n",
        script.display()
    );
    let kubeconfig = server
        .kubeconfig()
        .replace(&format!("    token: {token}\n"), &exec);
    assert!(kubeconfig.contains("exec:"), "{kubeconfig}");
    let options = ContextOptions {
        context: Some(TOKEN_CONTEXT.to_owned()),
        ..Default::default()
    };
    let no_files = |p: &std::path::Path| {
        Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            p.display().to_string(),
        ))
    };
    let config = Kubeconfig::parse(kubeconfig.as_bytes(), None)
        .unwrap()
        .resolve(&options, &no_files)
        .unwrap();
    let maps: Api<ConfigMap> =
        Api::namespaced(Client::from_config(&config).unwrap(), "default").unwrap();
    within(30, async {
        // A cold burst: every request waits for the one plugin run.
        let params = ListParams::default();
        let burst: Vec<_> = (0..10).map(|_| maps.list(&params)).collect();
        for listed in futures_util::future::join_all(burst).await {
            listed.unwrap();
        }
        maps.create(&PostParams::default(), &config_map("exec", &[]))
            .await
            .unwrap();
        maps.get("exec").await.unwrap();
    })
    .await;
    assert_eq!(std::fs::read_to_string(&runs).unwrap().lines().count(), 1);
    let _ = std::fs::remove_dir_all(&dir);
    server.shutdown().await;
}

#[tokio::test]
async fn e2e_tokio_status_subresource_and_delete_collection() {
    use k8s_openapi::api::apps::v1::Deployment;
    let server = server().await;
    let client = builder(&server, None).build().unwrap();
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default").unwrap();
    let maps: Api<ConfigMap> = Api::namespaced(client, "default").unwrap();
    let deployment: Deployment = serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}
    }))
    .unwrap();
    within(30, async {
        let mut created = deployments
            .create(&PostParams::default(), &deployment)
            .await
            .unwrap();
        created.status = serde_json::from_value(json!({"replicas": 2})).unwrap();
        let replaced = deployments
            .replace_status("web", &PostParams::default(), &created)
            .await
            .unwrap();
        assert_eq!(replaced.status.unwrap().replicas, Some(2));
        let patch = Patch::Merge(json!({"status": {"readyReplicas": 1}}));
        deployments
            .patch_status("web", &PatchParams::default(), &patch)
            .await
            .unwrap();
        let status = deployments.get_status("web").await.unwrap().status.unwrap();
        assert_eq!((status.replicas, status.ready_replicas), (Some(2), Some(1)));

        for i in 0..3 {
            let mut map = config_map(&format!("doomed-{i}"), &[]);
            map.metadata.labels = Some([("doomed".to_owned(), "yes".to_owned())].into());
            maps.create(&PostParams::default(), &map).await.unwrap();
        }
        maps.create(&PostParams::default(), &config_map("kept", &[]))
            .await
            .unwrap();
        let selector = ListParams {
            label_selector: Some("doomed=yes".into()),
            ..Default::default()
        };
        maps.delete_collection(&DeleteParams::default(), &selector)
            .await
            .unwrap();
        let left: Vec<_> = maps
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .filter_map(|m| m.metadata.name)
            .collect();
        assert!(left.contains(&"kept".to_owned()), "{left:?}");
        assert!(!left.iter().any(|n| n.starts_with("doomed")), "{left:?}");
    })
    .await;
    server.shutdown().await;
}
