//! The client's driving: windlass-proto's retry policy, flow control and
//! credentials performed over real sockets, hooks, pagination, subresources,
//! and the stall cases — a server that accepts and never answers, a watch
//! that goes silent — each ending in a timeout error, not a hang.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{StreamExt, TryStreamExt};
use http::{Method, StatusCode, Uri};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use serde_json::json;
use support::{Raw, Seen, json, raw_server, start, within};
use windlass_proto::flowcontrol::FlowControl;
use windlass_proto::params::{ListParams, WatchParams};
use windlass_proto::request::{DeleteParams, LogParams, Patch, PatchParams};
use windlass_proto::watch::WatchEvent;
use windlass_tokio::{Api, Client, ClientBuilder, Error, Hook};

fn pod_json(name: &str) -> String {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default", "resourceVersion": "7"}}).to_string()
}

/// A handler answering with `answers` in turn (the last one repeats).
fn script(answers: Vec<(u16, &'static str, Option<&'static str>)>) -> support::Handler {
    let next = AtomicUsize::new(0);
    Arc::new(move |_: &Seen| {
        let i = next.fetch_add(1, Ordering::SeqCst).min(answers.len() - 1);
        let (status, body, retry_after) = answers[i];
        let mut response = json(status, body);
        if let Some(seconds) = retry_after {
            response
                .headers_mut()
                .insert("retry-after", seconds.parse().unwrap());
        }
        response
    })
}

#[tokio::test]
async fn client_retries_429_with_retry_after_then_succeeds() {
    let pod: &'static str = Box::leak(pod_json("web-0").into_boxed_str());
    let too_many = r#"{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"TooManyRequests","code":429}"#;
    let server = start(
        script(vec![(429, too_many, Some("0")), (200, pod, None)]),
        None,
    )
    .await;
    let pods: Api<Pod> =
        Api::namespaced(Client::new(server.url(), None).unwrap(), "default").unwrap();
    let got = within(10, pods.get("web-0")).await.unwrap();
    assert_eq!(got.metadata.name.as_deref(), Some("web-0"));
    assert_eq!(server.seen().len(), 2);
}

#[tokio::test]
async fn client_does_not_retry_5xx_without_retry_after() {
    let server = start(script(vec![(503, "upstream unavailable", None)]), None).await;
    let pods: Api<Pod> =
        Api::namespaced(Client::new(server.url(), None).unwrap(), "default").unwrap();
    let err = within(10, pods.get("web-0")).await.unwrap_err();
    let api = err.api().expect("an API error");
    assert!(api.is_service_unavailable(), "{err}");
    assert!(api.is_synthesized());
    assert_eq!(server.seen().len(), 1);
}

#[tokio::test]
async fn client_retries_get_but_not_create_after_a_dropped_connection() {
    // client-go retries only idempotent requests on connection errors (kube-rs #2082).
    let answer = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}";
    let (addr, accepted) = raw_server(vec![Raw::Drop, Raw::WriteThenHang(answer)]).await;
    let client = Client::new(format!("http://{addr}"), None).unwrap();
    let maps: Api<ConfigMap> = Api::namespaced(client, "default").unwrap();
    within(10, maps.get("cm")).await.unwrap();
    assert_eq!(*accepted.lock().unwrap(), 2);

    let (addr, accepted) = raw_server(vec![Raw::Drop, Raw::WriteThenHang(answer)]).await;
    let client = Client::new(format!("http://{addr}"), None).unwrap();
    let maps: Api<ConfigMap> = Api::namespaced(client, "default").unwrap();
    let err = within(10, maps.create(&Default::default(), &ConfigMap::default()))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Transport { .. }), "{err}");
    assert_eq!(*accepted.lock().unwrap(), 1);
}

#[derive(Default)]
struct Recorder {
    seen: Mutex<Vec<(Method, Uri, Option<StatusCode>)>>,
}

impl Hook for Recorder {
    fn on_request(&self, request: &mut http::Request<http_body_util::Full<bytes::Bytes>>) {
        request
            .headers_mut()
            .insert("x-request-id", "abc".parse().unwrap());
    }

    fn on_response(
        &self,
        method: &Method,
        uri: &Uri,
        status: Option<StatusCode>,
        _latency: Duration,
    ) {
        self.seen
            .lock()
            .unwrap()
            .push((method.clone(), uri.clone(), status));
    }
}

#[tokio::test]
async fn client_hook_adds_headers_and_sees_every_attempt() {
    let pod: &'static str = Box::leak(pod_json("web-0").into_boxed_str());
    let server = start(
        script(vec![(429, "slow down", Some("0")), (200, pod, None)]),
        None,
    )
    .await;
    let recorder = Arc::new(Recorder::default());
    let client = ClientBuilder::new(server.url(), None)
        .hook(recorder.clone())
        .bearer_token("t0ken")
        .build()
        .unwrap();
    let pods: Api<Pod> = Api::namespaced(client, "default").unwrap();
    within(10, pods.get("web-0")).await.unwrap();
    let statuses: Vec<_> = recorder.seen.lock().unwrap().iter().map(|s| s.2).collect();
    assert_eq!(
        statuses,
        [Some(StatusCode::TOO_MANY_REQUESTS), Some(StatusCode::OK)]
    );
    let seen = &recorder.seen.lock().unwrap()[0];
    assert_eq!(seen.0, Method::GET);
    assert_eq!(seen.1.path(), "/api/v1/namespaces/default/pods/web-0");
    for request in server.seen() {
        assert_eq!(request.headers["x-request-id"], "abc");
        assert_eq!(request.headers["authorization"], "Bearer t0ken");
    }
}

#[tokio::test]
async fn client_flow_control_paces_requests() {
    let pod: &'static str = Box::leak(pod_json("web-0").into_boxed_str());
    let server = start(script(vec![(200, pod, None)]), None).await;
    let client = ClientBuilder::new(server.url(), None)
        .flow_control(FlowControl {
            qps: 20.0,
            burst: 1,
        })
        .build()
        .unwrap();
    let pods: Api<Pod> = Api::namespaced(client, "default").unwrap();
    let started = Instant::now();
    for _ in 0..5 {
        within(10, pods.get("web-0")).await.unwrap();
    }
    // One at once, then one every 50 ms.
    assert!(
        started.elapsed() >= Duration::from_millis(190),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn client_list_stream_follows_continue_tokens() {
    let handler: support::Handler = Arc::new(|seen: &Seen| {
        let page = |names: &[&str], next: &str| {
            let items: Vec<_> = names
                .iter()
                .map(|n| json!({"metadata": {"name": n}}))
                .collect();
            json(200, json!({"kind": "PodList", "apiVersion": "v1", "metadata": {"continue": next, "resourceVersion": "9"}, "items": items}).to_string())
        };
        match seen.path_and_query.as_str() {
            "/api/v1/pods?limit=2" => page(&["a", "b"], "t1"),
            "/api/v1/pods?continue=t1&limit=2" => page(&["c", "d"], "t2"),
            "/api/v1/pods?continue=t2&limit=2" => page(&["e"], ""),
            other => json(404, json!({"kind": "Status", "status": "Failure", "reason": "NotFound", "code": 404, "message": other}).to_string()),
        }
    });
    let server = start(handler, None).await;
    let pods: Api<Pod> = Api::all(Client::new(server.url(), None).unwrap()).unwrap();
    let params = ListParams {
        limit: Some(2),
        ..Default::default()
    };
    let names: Vec<_> = within(
        10,
        pods.list_stream(&params)
            .map_ok(|p| p.metadata.name.unwrap())
            .try_collect::<Vec<_>>(),
    )
    .await
    .unwrap();
    assert_eq!(names, ["a", "b", "c", "d", "e"]);
    assert_eq!(server.seen().len(), 3);
}

#[tokio::test]
async fn client_subresources_scale_status_logs_and_eviction() {
    let handler: support::Handler = Arc::new(|seen: &Seen| {
        let scale = json!({"apiVersion": "autoscaling/v1", "kind": "Scale", "metadata": {"name": "web"}, "spec": {"replicas": 3}});
        match (seen.method.as_str(), seen.path_and_query.as_str()) {
            ("GET", "/apis/apps/v1/namespaces/default/deployments/web/scale") => json(200, scale.to_string()),
            ("PATCH", "/apis/apps/v1/namespaces/default/deployments/web/scale") => {
                let patch: serde_json::Value = serde_json::from_slice(&seen.body).unwrap();
                json(200, json!({"apiVersion": "autoscaling/v1", "kind": "Scale", "metadata": {"name": "web"}, "spec": patch["spec"]}).to_string())
            }
            ("PATCH", "/apis/apps/v1/namespaces/default/deployments/web/status?fieldManager=test&force=true") => {
                json(200, json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, "status": {"replicas": 3}}).to_string())
            }
            ("GET", "/api/v1/namespaces/default/pods/web-0/log?follow=true") => support::chunked(200, "line 1\nline 2\nline 3\n", 7),
            ("POST", "/api/v1/namespaces/default/pods/web-0/eviction") => {
                json(201, json!({"kind": "Status", "apiVersion": "v1", "status": "Success", "code": 201}).to_string())
            }
            _ => json(404, json!({"kind": "Status", "status": "Failure", "reason": "NotFound", "code": 404}).to_string()),
        }
    });
    let server = start(handler, None).await;
    let client = Client::new(server.url(), None).unwrap();
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default").unwrap();
    let pods: Api<Pod> = Api::namespaced(client, "default").unwrap();
    within(10, async {
        assert_eq!(
            deployments
                .get_scale("web")
                .await
                .unwrap()
                .spec
                .unwrap()
                .replicas,
            Some(3)
        );
        let scaled = deployments
            .patch_scale(
                "web",
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"replicas": 5}})),
            )
            .await
            .unwrap();
        assert_eq!(scaled.spec.unwrap().replicas, Some(5));
        let status =
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "status": {"replicas": 3}});
        let applied = deployments
            .patch_status(
                "web",
                &PatchParams::apply("test").force(),
                &Patch::Apply(status),
            )
            .await
            .unwrap();
        assert_eq!(applied.status.unwrap().replicas, Some(3));
        let params = LogParams {
            follow: true,
            ..Default::default()
        };
        let chunks: Vec<_> = pods
            .log_stream("web-0", &params)
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        assert!(
            chunks.len() > 1,
            "the log came in {} chunk(s)",
            chunks.len()
        );
        assert_eq!(chunks.concat(), b"line 1\nline 2\nline 3\n");
        let evicted = pods.evict("web-0", &DeleteParams::default()).await.unwrap();
        assert_eq!(evicted.status.as_deref(), Some("Success"));
        assert!(pods.get_opt("missing").await.unwrap().is_none());
    })
    .await;
    let seen = server.seen();
    assert_eq!(
        seen[2].headers["content-type"],
        "application/apply-patch+yaml"
    );
    let eviction: serde_json::Value = serde_json::from_slice(&seen[4].body).unwrap();
    assert_eq!(eviction["kind"], "Eviction");
}

#[tokio::test]
async fn client_watch_410_at_start_is_an_expired_error_and_error_events_are_items() {
    let expired = r#"{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"Expired","code":410,"message":"too old resource version: 1 (5)"}"#;
    let server = start(script(vec![(410, expired, None)]), None).await;
    let pods: Api<Pod> = Api::all(Client::new(server.url(), None).unwrap()).unwrap();
    let err = within(10, pods.watch(&WatchParams::default()))
        .await
        .err()
        .unwrap();
    assert!(err.is_expired(), "{err}");

    let stream = "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"status\":\"Failure\",\"reason\":\"Expired\",\"code\":410}}\n";
    let server = start(script(vec![(200, stream, None)]), None).await;
    let pods: Api<Pod> = Api::all(Client::new(server.url(), None).unwrap()).unwrap();
    let events: Vec<_> = within(10, async {
        pods.watch(&WatchParams::default())
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap()
    })
    .await;
    let [WatchEvent::Error(status)] = &events[..] else {
        panic!("{events:?}")
    };
    assert_eq!(status.code, Some(410));
}

#[tokio::test]
async fn client_watch_stream_garbage_ends_in_a_decode_error() {
    let server = start(script(vec![(200, "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"a\"}}}\n{\"type\":\"EXPLODED\"}\n", None)]), None).await;
    let pods: Api<Pod> = Api::all(Client::new(server.url(), None).unwrap()).unwrap();
    let items: Vec<_> = within(10, async {
        pods.watch(&WatchParams::default())
            .await
            .unwrap()
            .collect::<Vec<_>>()
            .await
    })
    .await;
    assert_eq!(items.len(), 2);
    assert!(matches!(items[0], Ok(WatchEvent::Added(_))));
    assert!(matches!(items[1], Err(Error::Watch(_))), "{:?}", items[1]);
}

#[tokio::test]
async fn stall_server_that_accepts_and_never_answers_ends_in_a_timeout() {
    let (addr, accepted) = raw_server(vec![Raw::Hang]).await;
    let client = ClientBuilder::new(format!("http://{addr}"), None)
        .read_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default").unwrap();
    let started = Instant::now();
    let err = within(10, pods.get("web-0")).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Timeout {
                waiting_for: "response head",
                ..
            }
        ),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(3));
    // A watch is retried after a timeout (client-go), then gives up the same way.
    let client = ClientBuilder::new(format!("http://{addr}"), None)
        .read_timeout(Duration::from_millis(300))
        .max_retries(1)
        .build()
        .unwrap();
    let pods: Api<Pod> = Api::all(client).unwrap();
    let err = within(10, pods.watch(&WatchParams::default()))
        .await
        .err()
        .unwrap();
    assert!(err.is_timeout(), "{err}");
    assert_eq!(*accepted.lock().unwrap(), 3);
}

#[tokio::test]
async fn stall_watch_that_goes_silent_ends_in_a_timeout_error() {
    let head_and_one_event = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n\
        33\r\n{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"a\"}}}\r\n";
    let (addr, _) = raw_server(vec![Raw::WriteThenHang(head_and_one_event)]).await;
    let client = ClientBuilder::new(format!("http://{addr}"), None)
        .read_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let pods: Api<Pod> = Api::all(client).unwrap();
    let items: Vec<_> = within(10, async {
        pods.watch(&WatchParams::default())
            .await
            .unwrap()
            .collect::<Vec<_>>()
            .await
    })
    .await;
    assert_eq!(items.len(), 2, "{items:?}");
    let Ok(WatchEvent::Added(pod)) = &items[0] else {
        panic!("{:?}", items[0])
    };
    assert_eq!(pod.metadata.name.as_deref(), Some("a"));
    assert!(
        matches!(
            items[1],
            Err(Error::Timeout {
                waiting_for: "body bytes",
                ..
            })
        ),
        "{:?}",
        items[1]
    );
}

#[tokio::test]
async fn client_tls_server_name_overrides_the_url_host_and_watches_use_http2_shards() {
    let pki = support::Pki::new();
    let pod: &'static str = Box::leak(pod_json("web-0").into_boxed_str());
    let handler: support::Handler = Arc::new(move |seen: &Seen| {
        if seen.path_and_query.contains("watch=true") {
            json(200, "")
        } else {
            json(200, pod)
        }
    });
    let server = start(
        handler,
        Some((pki.server_config(false), pki.ca_pem.clone())),
    )
    .await;
    let build = |name: &'static str| {
        let server_name = rustls::pki_types::ServerName::try_from(name).unwrap();
        ClientBuilder::new(server.url(), Some(server.client_tls()))
            .tls_server_name(server_name)
            .max_retries(0)
            .build()
            .unwrap()
    };
    let pods: Api<Pod> = Api::namespaced(build("localhost"), "default").unwrap();
    within(10, pods.get("web-0")).await.unwrap();
    let events: Vec<_> = within(10, async {
        pods.watch(&WatchParams::default())
            .await
            .unwrap()
            .try_collect::<Vec<_>>()
            .await
    })
    .await
    .unwrap();
    assert!(events.is_empty());
    let versions: Vec<_> = server.seen().iter().map(|s| s.version).collect();
    // Ordinary requests take HTTP/2 by ALPN; a watch goes on an HTTP/2 shard
    // of its own, connected by the same connector (so the same server name).
    assert_eq!(versions, [http::Version::HTTP_2, http::Version::HTTP_2]);

    let pods: Api<Pod> = Api::namespaced(build("elsewhere.example"), "default").unwrap();
    let err = within(10, pods.get("web-0")).await.unwrap_err();
    assert!(matches!(err, Error::Transport { .. }), "{err}");
    assert!(format!("{:?}", err).contains("NotValidForName"), "{err:?}");
}

#[tokio::test]
async fn client_cold_burst_over_http2_opens_one_connection() {
    // reference/sans-io.md §2: on a cold pool a burst opened 4 to 20 connections.
    let pki = support::Pki::new();
    let pod: &'static str = Box::leak(pod_json("web-0").into_boxed_str());
    let server = start(
        script(vec![(200, pod, None)]),
        Some((pki.server_config(false), pki.ca_pem.clone())),
    )
    .await;
    let client = ClientBuilder::new(server.url(), Some(server.client_tls()))
        .flow_control(FlowControl {
            qps: -1.0,
            burst: 0,
        })
        .build()
        .unwrap();
    let pods: Api<Pod> = Api::namespaced(client, "default").unwrap();
    let burst: Vec<_> = (0..20).map(|_| pods.get("web-0")).collect();
    for result in within(10, futures_util::future::join_all(burst)).await {
        result.unwrap();
    }
    assert_eq!(*server.connections.lock().unwrap(), 1);
    assert!(
        server
            .seen()
            .iter()
            .all(|s| s.version == http::Version::HTTP_2)
    );
}

#[tokio::test]
async fn client_from_config_takes_an_https_proxy_and_refuses_one_without_a_tls_name() {
    // http://, https:// and socks5:// proxies are served (the e2e suite's proxy group);
    // an https:// proxy whose host cannot be a TLS server name is refused
    // at build rather than silently bypassed.
    let config = |proxy: &str| {
        let yaml = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {{server: \"https://10.0.0.1:6443\", proxy-url: \"{proxy}\"}}\nusers:\n- name: u\n  user: {{token: t}}\ncontexts:\n- name: c\n  context: {{cluster: c, user: u}}\ncurrent-context: c\n"
        );
        let no_files = |p: &std::path::Path| {
            Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                p.display().to_string(),
            ))
        };
        windlass_proto::config::Kubeconfig::parse(yaml.as_bytes(), None)
            .unwrap()
            .resolve(&Default::default(), &no_files)
            .unwrap()
    };
    Client::from_config(&config("https://user:s3cret@proxy.example:3128")).unwrap();
    let err = Client::from_config(&config("https://user:s3cret@bad_name!:3128")).unwrap_err();
    assert!(
        matches!(
            &err,
            Error::Proxy(windlass_proto::proxy::ProxyError::InvalidProxyName { host }) if host == "bad_name!"
        ),
        "{err}"
    );
    assert!(!err.to_string().contains("s3cret"), "{err}");
}
