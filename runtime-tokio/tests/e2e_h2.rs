//! windlass-tokio's HTTP/2 watch shards against windlass-apiserver, which
//! allows 100 concurrent streams per HTTP/2 connection as kube-apiserver
//! does: many watches spread over ceil(n / cap) connections (counted on the
//! server), a cancelled watch leaves its siblings alone, and a killed
//! connection re-opens with its watches resumed.

mod support;

use std::time::Duration;

use futures_util::StreamExt;
use futures_util::future::join_all;
use k8s_openapi::api::core::v1::ConfigMap;
use support::within;
use tokio::sync::mpsc;
use windlass_proto::config::{ContextOptions, Kubeconfig};
use windlass_proto::flowcontrol::FlowControl;
use windlass_proto::params::{ListParams, WatchParams};
use windlass_proto::request::PostParams;
use windlass_proto::shards::ShardConfig;
use windlass_proto::watch::WatchEvent;
use windlass_testkit::apiserver::{ApiServer, RunningServer};
use windlass_tokio::{Api, ClientBuilder};

/// A client for the server's kubeconfig, without the client-side rate limit
/// (hundreds of watches start at once).
fn builder(server: &RunningServer) -> ClientBuilder {
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
    ClientBuilder::from_config(&config)
        .unwrap()
        .flow_control(FlowControl {
            qps: -1.0,
            burst: 0,
        })
}

fn config_map(name: &str) -> ConfigMap {
    let mut map = ConfigMap::default();
    map.metadata.name = Some(name.into());
    map
}

/// Warms the ordinary pool (its one connection) and returns the collection's
/// resourceVersion, so every connection counted after it is a watch shard.
async fn warm(maps: &Api<ConfigMap>) -> String {
    let list = maps.list(&ListParams::default()).await.unwrap();
    list.resource_version().unwrap().to_owned()
}

fn from(resource_version: &str) -> WatchParams {
    WatchParams {
        resource_version: Some(resource_version.to_owned()),
        ..Default::default()
    }
}

/// Opens `n` watches at once, then checks every one sees `name` created.
async fn watches_all_see_a_create(
    server: &RunningServer,
    maps: &Api<ConfigMap>,
    n: usize,
    name: &str,
) -> u64 {
    let rv = warm(maps).await;
    let before = server.connections().accepted();
    let params = from(&rv);
    let watches = join_all((0..n).map(|_| maps.watch(&params))).await;
    let mut watches: Vec<_> = watches
        .into_iter()
        .map(|w| Box::pin(w.expect("every watch starts")))
        .collect();
    let opened = server.connections().accepted() - before;
    maps.create(&PostParams::default(), &config_map(name))
        .await
        .unwrap();
    let seen = join_all(watches.iter_mut().map(|w| async move {
        loop {
            match w.next().await.expect("the watch ended early").unwrap() {
                WatchEvent::Added(m) => return m.metadata.name.unwrap(),
                WatchEvent::Bookmark(_) => {}
                other => panic!("{other:?}"),
            }
        }
    }))
    .await;
    assert!(seen.iter().all(|s| s == name), "{seen:?}");
    opened
}

#[tokio::test]
async fn e2e_tokio_h2_250_watches_spread_over_ceil_250_over_cap_connections() {
    let server = ApiServer::builder().start().await.unwrap();
    assert_eq!(
        windlass_testkit::apiserver::MAX_CONCURRENT_STREAMS,
        100,
        "the server enforces kube-apiserver's limit"
    );
    let client = builder(&server).build().unwrap();
    let maps: Api<ConfigMap> = Api::namespaced(client, "default").unwrap();
    within(60, async {
        let opened = watches_all_see_a_create(&server, &maps, 250, "seen-by-250").await;
        // Default cap 90: ceil(250 / 90) = 3 shards.
        assert_eq!(opened, 3);
        assert_eq!(
            server.connections().http2(),
            4,
            "the ordinary pool and 3 shards"
        );
    })
    .await;
    server.shutdown().await;
}

#[tokio::test]
async fn e2e_tokio_h2_watch_shards_follow_a_lower_server_stream_limit() {
    // A server allowing 30 streams: the client learns it from SETTINGS and
    // keeps 30 - 10 = 20 per connection, though its own cap is 90. Without
    // that, streams 31 to 90 of the first connection would wait forever.
    let server = ApiServer::builder()
        .max_concurrent_streams(30)
        .start()
        .await
        .unwrap();
    let client = builder(&server)
        .read_timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let maps: Api<ConfigMap> = Api::namespaced(client, "default").unwrap();
    within(60, async {
        let opened = watches_all_see_a_create(&server, &maps, 50, "seen-by-50").await;
        assert_eq!(opened, 3, "ceil(50 / 20)");
    })
    .await;
    server.shutdown().await;
}

#[tokio::test]
async fn e2e_tokio_h2_configured_cap_sets_the_shard_count() {
    let server = ApiServer::builder().start().await.unwrap();
    let client = builder(&server)
        .watch_shards(ShardConfig {
            max_streams_per_connection: 7,
            ..ShardConfig::default()
        })
        .build()
        .unwrap();
    let maps: Api<ConfigMap> = Api::namespaced(client, "default").unwrap();
    within(60, async {
        let opened = watches_all_see_a_create(&server, &maps, 30, "seen-by-30").await;
        assert_eq!(opened, 5, "ceil(30 / 7)");
    })
    .await;
    server.shutdown().await;
}

#[tokio::test]
async fn e2e_tokio_h2_switched_off_gives_each_watch_an_http1_connection() {
    let server = ApiServer::builder().start().await.unwrap();
    let client = builder(&server).http2_watches(false).build().unwrap();
    let maps: Api<ConfigMap> = Api::namespaced(client, "default").unwrap();
    within(60, async {
        let opened = watches_all_see_a_create(&server, &maps, 12, "seen-by-12").await;
        assert_eq!(opened, 12);
        assert_eq!(server.connections().http2(), 1, "only the ordinary pool");
    })
    .await;
    server.shutdown().await;
}

#[tokio::test]
async fn e2e_tokio_h2_cancelled_watch_leaves_its_siblings_running() {
    let server = ApiServer::builder().start().await.unwrap();
    let client = builder(&server).build().unwrap();
    let maps: Api<ConfigMap> = Api::namespaced(client, "default").unwrap();
    within(60, async {
        let rv = warm(&maps).await;
        let before = server.connections().accepted();
        let params = from(&rv);
        let mut watches = Vec::new();
        for _ in 0..6 {
            watches.push(Box::pin(maps.watch(&params).await.unwrap()));
        }
        // Cancel three, one at a time, each while its siblings stream.
        for round in 0..3 {
            drop(watches.remove(round));
            let name = format!("after-cancel-{round}");
            maps.create(&PostParams::default(), &config_map(&name))
                .await
                .unwrap();
            for watch in &mut watches {
                loop {
                    match watch.next().await.expect("a sibling ended").unwrap() {
                        WatchEvent::Added(m) if m.metadata.name.as_deref() == Some(&name) => break,
                        WatchEvent::Added(_) | WatchEvent::Bookmark(_) => {}
                        other => panic!("{other:?}"),
                    }
                }
            }
        }
        assert_eq!(
            server.connections().accepted() - before,
            1,
            "one shard, never re-opened"
        );
    })
    .await;
    server.shutdown().await;
}

/// A watcher that resumes from the last resourceVersion it saw whenever its
/// watch breaks, reporting each ADDED name.
fn resuming_watcher(
    maps: Api<ConfigMap>,
    mut rv: String,
    seen: mpsc::UnboundedSender<String>,
    started: mpsc::UnboundedSender<()>,
) {
    tokio::spawn(async move {
        loop {
            let Ok(watch) = maps.watch(&from(&rv)).await else {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            };
            let _ = started.send(());
            let mut watch = Box::pin(watch);
            while let Some(Ok(event)) = watch.next().await {
                match event {
                    WatchEvent::Added(m) => {
                        rv = m.metadata.resource_version.clone().unwrap();
                        if seen.send(m.metadata.name.unwrap()).is_err() {
                            return;
                        }
                    }
                    WatchEvent::Bookmark(b) => rv = b.resource_version,
                    _ => {}
                }
            }
        }
    });
}

#[tokio::test]
async fn e2e_tokio_h2_killed_connection_reopens_and_its_watches_resume() {
    let server = ApiServer::builder().start().await.unwrap();
    let client = builder(&server).build().unwrap();
    let maps: Api<ConfigMap> = Api::namespaced(client, "default").unwrap();
    within(60, async {
        const WATCHERS: usize = 20;
        let rv = warm(&maps).await;
        let (seen_tx, mut seen) = mpsc::unbounded_channel();
        let (started_tx, mut started) = mpsc::unbounded_channel();
        for _ in 0..WATCHERS {
            resuming_watcher(
                maps.clone(),
                rv.clone(),
                seen_tx.clone(),
                started_tx.clone(),
            );
        }
        for _ in 0..WATCHERS {
            started.recv().await.unwrap();
        }
        maps.create(&PostParams::default(), &config_map("before-kill"))
            .await
            .unwrap();
        for _ in 0..WATCHERS {
            assert_eq!(seen.recv().await.unwrap(), "before-kill");
        }
        let before = server.connections().accepted();
        server.faults().kill_connections();
        // Every watcher notices and watches again, on a new shard.
        for _ in 0..WATCHERS {
            started.recv().await.unwrap();
        }
        maps.create(&PostParams::default(), &config_map("after-kill"))
            .await
            .unwrap();
        for _ in 0..WATCHERS {
            assert_eq!(seen.recv().await.unwrap(), "after-kill");
        }
        // One new shard for the 20 watches, one for the ordinary pool.
        assert_eq!(server.connections().accepted() - before, 2);
    })
    .await;
    server.shutdown().await;
}
