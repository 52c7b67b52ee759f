//! windlass-apiserver's fault injection: one test per knob.

mod apiserver_support;

use std::time::Duration;

use apiserver_support::{As, Client, Lines};
use bytes::Bytes;
use http::{Method, StatusCode};
use serde_json::json;
use windlass_testkit::apiserver::{ApiServer, RunningServer};

async fn plain() -> (RunningServer, Client) {
    let server = ApiServer::builder().tls(false).start().await.unwrap();
    let client = Client::new(&server, As::Anonymous);
    (server, client)
}

const CONFIGMAPS: &str = "/api/v1/namespaces/default/configmaps";

async fn seed(client: &Client, n: usize) {
    for i in 0..n {
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": format!("cm-{i}")}, "data": {"i": i.to_string()}});
        assert_eq!(
            client.post_json(CONFIGMAPS, &cm).await.status,
            StatusCode::CREATED
        );
    }
}

async fn open_watch(client: &Client) -> Lines {
    // resourceVersion unset: the current objects come first as ADDED events.
    let response = client
        .send(
            Method::GET,
            &format!("{CONFIGMAPS}?watch=1"),
            &[],
            Bytes::new(),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    Lines::new(response.into_body())
}

#[tokio::test]
async fn apiserver_fault_close_watches_after_k_bytes() {
    let (server, client) = plain().await;
    seed(&client, 3).await;
    server.faults().close_watches_after(2, 100);
    for _ in 0..2 {
        let mut lines = open_watch(&client).await;
        assert_eq!(
            lines.next().await,
            None,
            "the cut stream ends before a whole event"
        );
        assert!(lines.aborted, "the connection drops (no final chunk)");
        assert_eq!(lines.pending().len(), 100, "exactly K bytes arrive");
    }
    // The third stream is whole again.
    let mut lines = open_watch(&client).await;
    for _ in 0..3 {
        assert_eq!(lines.next().await.unwrap()["type"], "ADDED");
    }
    server.shutdown().await;
}

#[tokio::test]
async fn apiserver_fault_stall_watch_keeps_the_connection_silent() {
    let (server, client) = plain().await;
    seed(&client, 2).await;
    server.faults().stall_watches(1, 0);
    let mut stalled = open_watch(&client).await;
    assert_eq!(
        stalled.next_within(Duration::from_millis(500)).await,
        Err(()),
        "a stalled stream sends nothing and stays open"
    );
    assert!(!stalled.ended);
    let mut next = open_watch(&client).await;
    assert_eq!(next.next().await.unwrap()["type"], "ADDED");
    server.shutdown().await;
}

#[tokio::test]
async fn apiserver_fault_fail_requests_with_status_and_retry_after() {
    let (server, client) = plain().await;
    server.faults().fail_requests(1, 429, 3);
    let throttled = client.get(CONFIGMAPS).await;
    assert_eq!(throttled.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(throttled.headers["retry-after"], "3");
    assert!(
        throttled.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain"),
        "429 from priority-and-fairness is plain text"
    );

    server.faults().fail_requests(2, 503, 1);
    for _ in 0..2 {
        let unavailable = client.get(CONFIGMAPS).await;
        assert_eq!(
            unavailable.status_reason(),
            (503, "ServiceUnavailable".to_owned())
        );
        assert_eq!(unavailable.headers["retry-after"], "1");
        assert_eq!(unavailable.json()["details"]["retryAfterSeconds"], 1);
    }
    server.faults().fail_requests(1, 500, 2);
    assert_eq!(client.get(CONFIGMAPS).await.status_reason().0, 500);
    assert_eq!(
        client.get(CONFIGMAPS).await.status,
        StatusCode::OK,
        "the faults are used up"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn apiserver_fault_compact_expires_old_watch_positions() {
    let (server, client) = plain().await;
    seed(&client, 1).await;
    let rv = client.get(CONFIGMAPS).await.json()["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse::<u64>()
        .unwrap();
    seed_more(&client).await;
    server.faults().compact();
    let response = client
        .send(
            Method::GET,
            &format!("{CONFIGMAPS}?watch=1&resourceVersion={}", rv - 1),
            &[],
            Bytes::new(),
        )
        .await;
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "the watch cache answers 200 then ERROR"
    );
    let mut lines = Lines::new(response.into_body());
    let event = lines.next().await.unwrap();
    assert_eq!(event["type"], "ERROR");
    assert_eq!(event["object"]["code"], 410);
    assert_eq!(event["object"]["reason"], "Expired");
    assert_eq!(lines.next().await, None);
    server.shutdown().await;
}

async fn seed_more(client: &Client) {
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "later"}});
    client.post_json(CONFIGMAPS, &cm).await;
}

#[tokio::test]
async fn apiserver_fault_refuse_watch_list() {
    let (server, client) = plain().await;
    let watch_list = format!(
        "{CONFIGMAPS}?watch=1&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true"
    );
    server.faults().refuse_watch_list(true);
    let refused = client.get(&watch_list).await;
    assert_eq!(refused.status_reason(), (422, "Invalid".to_owned()));
    server.faults().refuse_watch_list(false);
    let response = client
        .send(Method::GET, &watch_list, &[], Bytes::new())
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let mut lines = Lines::new(response.into_body());
    let end = lines.next().await.unwrap();
    assert_eq!(end["type"], "BOOKMARK", "no objects: only the end bookmark");
    server.shutdown().await;
}
