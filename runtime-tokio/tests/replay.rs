//! windlass-tokio against recorded API server exchanges (k8s-openapi's test
//! replays from kind clusters), served by a local hyper server over plain
//! HTTP and over TLS. The server checks every request against the recording
//! (method, path, query, JSON body), so these tests pin what the client
//! sends as well as what it makes of the answers.

mod support;

use std::sync::{Arc, Mutex};

use futures_util::TryStreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde_json::Value;
use support::{Exchange, Server, replay, replay_file, start, within};
use windlass_proto::dynamic::DynamicObject;
use windlass_proto::params::{ListParams, WatchParams};
use windlass_proto::request::{DeleteParams, Patch, PatchParams, PostParams};
use windlass_proto::resource::{ApiResource, Scope};
use windlass_proto::response::Deleted;
use windlass_proto::watch::WatchEvent;
use windlass_tokio::{Api, Client};

/// A replay server (TLS or not), a client for it, and the mismatch log.
async fn replay_server(
    exchanges: Vec<Exchange>,
    tls: bool,
) -> (Server, Client, Arc<Mutex<Vec<String>>>) {
    let mismatches = Arc::new(Mutex::new(Vec::new()));
    let handler = replay(exchanges, mismatches.clone());
    let server = if tls {
        let pki = support::Pki::new();
        start(
            handler,
            Some((pki.server_config(false), pki.ca_pem.clone())),
        )
        .await
    } else {
        start(handler, None).await
    };
    let client_tls = tls.then(|| server.client_tls());
    let client = Client::new(server.url(), client_tls).unwrap();
    (server, client, mismatches)
}

fn body_json(exchange: &Exchange) -> Value {
    serde_json::from_str(&exchange.response_body).unwrap()
}

fn request_json<T: serde::de::DeserializeOwned>(exchange: &Exchange) -> T {
    serde_json::from_str(exchange.request_body.as_deref().unwrap()).unwrap()
}

#[tokio::test]
async fn replay_pod_list_over_http_and_tls() {
    let Some(exchanges) = replay_file("v1-36/pod-list.json") else {
        return;
    };
    let want = body_json(&exchanges[0]);
    for tls in [false, true] {
        let (server, client, mismatches) = replay_server(exchanges.clone(), tls).await;
        let pods: Api<Pod> = Api::namespaced(client, "kube-system").unwrap();
        let list = within(10, pods.list(&ListParams::default())).await.unwrap();
        assert_eq!(list.items.len(), want["items"].as_array().unwrap().len());
        assert_eq!(
            list.resource_version(),
            want["metadata"]["resourceVersion"].as_str()
        );
        let names: Vec<_> = list
            .items
            .iter()
            .map(|p| p.metadata.name.clone().unwrap())
            .collect();
        let want_names: Vec<_> = want["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["metadata"]["name"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(names, want_names);
        assert!(
            mismatches.lock().unwrap().is_empty(),
            "{:?}",
            mismatches.lock().unwrap()
        );
        let seen = server.seen();
        assert_eq!(seen[0].headers["accept"], "application/json");
        assert!(
            seen[0].headers["user-agent"]
                .to_str()
                .unwrap()
                .starts_with("windlass-tokio/")
        );
        // TLS negotiates HTTP/2 by ALPN for ordinary requests.
        let version = if tls {
            http::Version::HTTP_2
        } else {
            http::Version::HTTP_11
        };
        assert_eq!(seen[0].version, version);
    }
}

#[tokio::test]
async fn replay_metadata_api_asks_for_partial_object_metadata() {
    let Some(exchanges) = replay_file("v1-36/pod-list.json") else {
        return;
    };
    let want = body_json(&exchanges[0]);
    let (server, client, mismatches) = replay_server(exchanges, false).await;
    let pods: Api<Pod> = Api::namespaced(client, "kube-system").unwrap();
    let list = within(10, pods.metadata().list(&ListParams::default()))
        .await
        .unwrap();
    assert_eq!(list.items.len(), want["items"].as_array().unwrap().len());
    assert_eq!(
        list.items[0].metadata.name.as_deref(),
        want["items"][0]["metadata"]["name"].as_str()
    );
    assert!(mismatches.lock().unwrap().is_empty());
    let accept = server.seen()[0].headers["accept"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        accept.starts_with("application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"),
        "{accept}"
    );
}

#[tokio::test]
async fn replay_job_create_get_list_delete_and_delete_collection() {
    let Some(exchanges) = replay_file("v1-36/job-create.json") else {
        return;
    };
    let job: Job = request_json(&exchanges[0]);
    let (_server, client, mismatches) = replay_server(exchanges.clone(), true).await;
    let jobs: Api<Job> = Api::namespaced(client.clone(), "default").unwrap();
    let pods: Api<Pod> = Api::namespaced(client, "default").unwrap();
    let name = job.metadata.name.clone().unwrap();
    within(30, async {
        let created = jobs.create(&PostParams::default(), &job).await.unwrap();
        assert_eq!(created.metadata.name.as_deref(), Some(name.as_str()));
        assert!(created.metadata.uid.is_some());
        let mut last = None;
        for _ in 0..6 {
            last = Some(jobs.get(&name).await.unwrap());
        }
        let last = last.unwrap();
        assert_eq!(
            serde_json::to_value(&last).unwrap()["status"],
            body_json(&exchanges[6])["status"]
        );
        let listed = pods.list(&ListParams::default()).await.unwrap();
        assert_eq!(
            listed.items.len(),
            body_json(&exchanges[7])["items"].as_array().unwrap().len()
        );
        match jobs.delete(&name, &DeleteParams::default()).await.unwrap() {
            Deleted::Object(job) => assert!(job.metadata.deletion_timestamp.is_some()),
            Deleted::Status(s) => panic!("expected the job, got {s:?}"),
        }
        let selector = ListParams {
            label_selector: Some(format!("job-name={name}")),
            ..Default::default()
        };
        match pods
            .delete_collection(&DeleteParams::default(), &selector)
            .await
            .unwrap()
        {
            Deleted::Object(list) => assert_eq!(list.items.len(), 1),
            Deleted::Status(s) => panic!("expected the pod list, got {s:?}"),
        }
    })
    .await;
    assert!(
        mismatches.lock().unwrap().is_empty(),
        "{:?}",
        mismatches.lock().unwrap()
    );
}

#[tokio::test]
async fn replay_patch_deployment_json_merge_and_strategic() {
    let Some(exchanges) = replay_file("v1-36/patch-deployment.json") else {
        return;
    };
    let deployment: Deployment = request_json(&exchanges[0]);
    let (_server, client, mismatches) = replay_server(exchanges.clone(), false).await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default").unwrap();
    let name = deployment.metadata.name.clone().unwrap();
    within(30, async {
        deployments
            .create(&PostParams::default(), &deployment)
            .await
            .unwrap();
        let params = PatchParams::default();
        let patched = deployments
            .patch(
                &name,
                &params,
                &Patch::Json(request_json::<Value>(&exchanges[1])),
            )
            .await
            .unwrap();
        assert_eq!(patched.metadata.name.as_deref(), Some(name.as_str()));
        deployments
            .patch(
                &name,
                &params,
                &Patch::Merge(request_json::<Value>(&exchanges[2])),
            )
            .await
            .unwrap();
        deployments
            .patch(
                &name,
                &params,
                &Patch::Strategic(request_json::<Value>(&exchanges[3])),
            )
            .await
            .unwrap();
        match deployments
            .delete(&name, &DeleteParams::default())
            .await
            .unwrap()
        {
            Deleted::Status(status) => assert_eq!(status.status.as_deref(), Some("Success")),
            Deleted::Object(_) => panic!("expected a Success status"),
        }
    })
    .await;
    let mismatches = mismatches.lock().unwrap();
    assert!(mismatches.is_empty(), "{mismatches:?}");
}

#[tokio::test]
async fn replay_custom_resource_through_the_dynamic_api() {
    let Some(exchanges) = replay_file("v1-36/custom_resource_definition-test.json") else {
        return;
    };
    let crd: CustomResourceDefinition = request_json(&exchanges[0]);
    let (_server, client, mismatches) = replay_server(exchanges.clone(), true).await;
    let crds: Api<CustomResourceDefinition> = Api::cluster(client.clone()).unwrap();
    let crd_name = crd.metadata.name.clone().unwrap();
    let group = "k8s-openapi-tests-custom-resource-definition.com";
    let resource = ApiResource::new(group, "v1", "FooBar", "foobars", Scope::Namespaced);
    let foobars: Api<DynamicObject> = Api::dynamic(client, resource, Some("default")).unwrap();
    within(30, async {
        crds.create(&PostParams::default(), &crd).await.unwrap();
        crds.get(&crd_name).await.unwrap();
        let established = crds.get(&crd_name).await.unwrap();
        assert!(
            established
                .status
                .unwrap()
                .conditions
                .unwrap()
                .iter()
                .any(|c| c.type_ == "Established")
        );
        for exchange in &exchanges[3..5] {
            let object: DynamicObject = request_json(exchange);
            let created = foobars
                .create(&PostParams::default(), &object)
                .await
                .unwrap();
            assert_eq!(created.metadata.name, object.metadata.name);
            assert_eq!(created.data["spec"], object.data["spec"]);
        }
        let list = foobars.list(&ListParams::default()).await.unwrap();
        let names: Vec<_> = list
            .items
            .iter()
            .map(|o| o.metadata.name.clone().unwrap())
            .collect();
        assert_eq!(names, ["fb1", "fb2"]);
        assert_eq!(
            foobars.get("fb1").await.unwrap().data["spec"]["prop1"],
            "value1"
        );
        foobars.get("fb2").await.unwrap();
        let events: Vec<_> = foobars
            .watch(&WatchParams::default())
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        let added: Vec<_> = events
            .iter()
            .map(|e| match e {
                WatchEvent::Added(o) => o.metadata.name.clone().unwrap(),
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        assert_eq!(added, ["fb1", "fb2"]);
        for name in ["fb1", "fb2"] {
            assert!(matches!(
                foobars
                    .delete(name, &DeleteParams::default())
                    .await
                    .unwrap(),
                Deleted::Status(_)
            ));
        }
        for exchange in &exchanges[11..14] {
            let object: DynamicObject = request_json(exchange);
            let err = foobars
                .create(&PostParams::default(), &object)
                .await
                .unwrap_err();
            let api = err.api().expect("an API error");
            assert!(api.is_invalid(), "{err}");
            assert_eq!(api.code(), 422);
            assert!(!api.causes().is_empty());
        }
        crds.delete(&crd_name, &DeleteParams::default())
            .await
            .unwrap();
    })
    .await;
    let mismatches = mismatches.lock().unwrap();
    assert!(mismatches.is_empty(), "{mismatches:?}");
}

#[tokio::test]
async fn replay_watch_pods_decodes_every_event_from_small_chunks() {
    for file in [
        "v1-36/watch_event-watch_pods.json",
        "v1-36/watch_event-watch_pods_without_initial_events.json",
    ] {
        let Some(exchanges) = replay_file(file) else {
            return;
        };
        let lines = exchanges[0]
            .response_body
            .lines()
            .filter(|l| !l.is_empty())
            .count();
        let url = exchanges[0].request_url.clone();
        let (_server, client, mismatches) = replay_server(exchanges, false).await;
        let pods: Api<Pod> = Api::namespaced(client, "kube-system").unwrap();
        let params = if url.contains("sendInitialEvents") {
            WatchParams {
                resource_version: Some("0".into()),
                resource_version_match: Some(
                    windlass_proto::params::ResourceVersionMatch::NotOlderThan,
                ),
                allow_watch_bookmarks: true,
                send_initial_events: Some(true),
                ..Default::default()
            }
        } else {
            WatchParams::default()
        };
        let events: Vec<_> = within(10, async {
            pods.watch(&params)
                .await
                .unwrap()
                .try_collect()
                .await
                .unwrap()
        })
        .await;
        assert_eq!(events.len(), lines, "{file}");
        assert!(matches!(events[0], WatchEvent::Added(_)), "{file}");
        if url.contains("sendInitialEvents") {
            let WatchEvent::Bookmark(bookmark) = events.last().unwrap() else {
                panic!("{file}: no final bookmark")
            };
            assert!(bookmark.is_initial_events_end());
        }
        assert!(
            mismatches.lock().unwrap().is_empty(),
            "{file}: {:?}",
            mismatches.lock().unwrap()
        );
    }
}

/// Serves `body` (a fixture under `synthetic/`) as the answer to every request, labelled `content_type`.
async fn synthetic_watch(file: &str, content_type: &'static str) -> Option<(Server, Client)> {
    let body = bytes::Bytes::from(
        std::fs::read(windlass_testkit::fixtures::path(&format!(
            "synthetic/{file}"
        ))?)
        .unwrap(),
    );
    let handler: support::Handler = Arc::new(move |_: &support::Seen| {
        let mut response = support::chunked(200, body.clone(), 997);
        response
            .headers_mut()
            .insert("content-type", content_type.parse().unwrap());
        response
    });
    let server = start(handler, None).await;
    let client = Client::new(server.url(), None).unwrap();
    Some((server, client))
}

#[tokio::test]
async fn replay_watch_protobuf_and_cbor_streams_decode_by_content_type() {
    use windlass_proto::request::{Builder, Negotiation};
    let Some((server, client)) = synthetic_watch(
        "protobuf-watch-pods.stream-watch.bin",
        "application/vnd.kubernetes.protobuf;stream=watch",
    )
    .await
    else {
        return;
    };
    let builder = Builder::of::<Pod>(Some("default"))
        .unwrap()
        .with_negotiation(Negotiation::Protobuf);
    let pods: Api<Pod> = Api::with_builder(client, builder).unwrap();
    let events: Vec<_> = within(10, async {
        pods.watch(&WatchParams::default())
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap()
    })
    .await;
    let kinds: Vec<_> = events
        .iter()
        .map(|e| match e {
            WatchEvent::Added(_) => "ADDED",
            WatchEvent::Modified(_) => "MODIFIED",
            WatchEvent::Deleted(_) => "DELETED",
            WatchEvent::Bookmark(b) if b.is_initial_events_end() => "BOOKMARK",
            WatchEvent::Bookmark(_) => "bookmark without initial-events-end",
            WatchEvent::Error(s) if s.code == Some(410) => "ERROR",
            WatchEvent::Error(_) => "error without 410",
        })
        .collect();
    assert_eq!(kinds, ["ADDED", "MODIFIED", "BOOKMARK", "DELETED", "ERROR"]);
    let WatchEvent::Added(pod) = &events[0] else {
        unreachable!()
    };
    assert_eq!(pod.metadata.name.as_deref(), Some("nameValue"));
    assert!(
        server.seen()[0].headers["accept"]
            .to_str()
            .unwrap()
            .starts_with("application/vnd.kubernetes.protobuf")
    );

    let Some((_server, client)) = synthetic_watch(
        "cbor-seq-watchlist-pods.from-v1.36-recording.cborseq",
        "application/cbor-seq",
    )
    .await
    else {
        return;
    };
    let pods: Api<Pod> = Api::namespaced(client, "kube-system").unwrap();
    let events: Vec<_> = within(10, async {
        pods.watch(&WatchParams::default())
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap()
    })
    .await;
    assert!(events.len() > 1);
    assert!(
        events[..events.len() - 1]
            .iter()
            .all(|e| matches!(e, WatchEvent::Added(_)))
    );
    let Some(WatchEvent::Bookmark(last)) = events.last() else {
        panic!("no final bookmark")
    };
    assert!(last.is_initial_events_end());
}
