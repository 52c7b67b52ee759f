//! windlass-smol's HTTP/2 watch shards against windlass-apiserver, which
//! allows 100 concurrent streams per HTTP/2 connection as kube-apiserver
//! does: many watches spread over ceil(n / cap) connections (counted on the
//! server), a cancelled watch leaves its siblings alone, and a killed
//! connection re-opens with its watches resumed. Each scenario runs on a
//! smol `Executor` (`e2e_smol_h2_*`) and on async-std's (`e2e_async_std_h2_*`).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::future::join_all;
use k8s_openapi::api::core::v1::ConfigMap;
use windlass_proto::config::{ContextOptions, Kubeconfig};
use windlass_proto::flowcontrol::FlowControl;
use windlass_proto::params::{ListParams, WatchParams};
use windlass_proto::request::PostParams;
use windlass_proto::shards::ShardConfig;
use windlass_proto::watch::WatchEvent;
use windlass_smol::{Api, ClientBuilder, Spawner};
use windlass_testkit::apiserver::{ApiServer, ApiServerBuilder, ConnectionStats, Faults};

/// What a scenario gets: the server's kubeconfig, fault knobs and connection
/// counts, and the executor's spawner.
#[derive(Clone)]
struct Ctx {
    kubeconfig: String,
    faults: Faults,
    connections: ConnectionStats,
    spawner: Spawner,
}

impl Ctx {
    /// A client builder for the server's kubeconfig, without the client-side
    /// rate limit (hundreds of watches start at once).
    fn builder(&self) -> ClientBuilder {
        let kubeconfig = Kubeconfig::parse(self.kubeconfig.as_bytes(), None).unwrap();
        let no_files = |p: &std::path::Path| {
            Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                p.display().to_string(),
            ))
        };
        let config = kubeconfig
            .resolve(&ContextOptions::default(), &no_files)
            .unwrap();
        ClientBuilder::from_config(&config, self.spawner.clone())
            .unwrap()
            .flow_control(FlowControl {
                qps: -1.0,
                burst: 0,
            })
    }

    fn maps(&self, builder: ClientBuilder) -> Api<ConfigMap> {
        Api::namespaced(builder.build().unwrap(), "default").unwrap()
    }
}

#[derive(Clone, Copy)]
enum Executor {
    Smol,
    AsyncStd,
}

/// Starts windlass-apiserver on its own tokio runtime, runs `scenario` on
/// `executor` within 60 s, and stops the server.
fn run<F, Fut>(executor: Executor, server: ApiServerBuilder, scenario: F)
where
    F: FnOnce(Ctx) -> Fut + Send,
    Fut: Future<Output = ()> + Send + 'static,
{
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let server = runtime
        .block_on(async { tokio::time::timeout(Duration::from_secs(30), server.start()).await })
        .expect("windlass-apiserver starts within 30 s")
        .expect("windlass-apiserver starts");
    let (kubeconfig, faults, connections) = (
        server.kubeconfig().to_owned(),
        server.faults(),
        server.connections(),
    );
    let ctx = move |spawner| Ctx {
        kubeconfig,
        faults,
        connections,
        spawner,
    };
    let outcome = std::thread::scope(|scope| {
        let run = move || match executor {
            Executor::Smol => {
                let smol = Arc::new(smol::Executor::new());
                let body = within(60, scenario(ctx(Spawner::from(smol.clone()))));
                smol::block_on(smol.run(body));
            }
            Executor::AsyncStd => {
                let spawner = Spawner::new(|future| {
                    async_std::task::spawn(future);
                });
                async_std::task::block_on(within(60, scenario(ctx(spawner))));
            }
        };
        std::thread::Builder::new()
            .stack_size(8 << 20)
            .spawn_scoped(scope, run)
            .unwrap()
            .join()
    });
    let _ = runtime
        .block_on(async { tokio::time::timeout(Duration::from_secs(10), server.shutdown()).await });
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

/// `body`, or a panic after `secs` (async-io's timer works on any executor).
async fn within<T>(secs: u64, body: impl Future<Output = T>) -> T {
    smol::future::or(body, async {
        smol::Timer::after(Duration::from_secs(secs)).await;
        panic!("the scenario did not finish within {secs} s")
    })
    .await
}

/// One scenario as two tests: on smol's executor and on async-std's.
macro_rules! on_both_executors {
    ($smol:ident, $async_std:ident, $scenario:ident) => {
        on_both_executors!($smol, $async_std, $scenario, ApiServer::builder());
    };
    ($smol:ident, $async_std:ident, $scenario:ident, $server:expr) => {
        #[test]
        fn $smol() {
            run(Executor::Smol, $server, $scenario);
        }

        #[test]
        fn $async_std() {
            run(Executor::AsyncStd, $server, $scenario);
        }
    };
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

/// Opens `n` watches at once, checks every one sees `name` created, and
/// returns how many connections the watches opened.
async fn watches_all_see_a_create(ctx: &Ctx, maps: &Api<ConfigMap>, n: usize, name: &str) -> u64 {
    let rv = warm(maps).await;
    let before = ctx.connections.accepted();
    let params = from(&rv);
    let watches = join_all((0..n).map(|_| maps.watch(&params))).await;
    let mut watches: Vec<_> = watches
        .into_iter()
        .map(|w| Box::pin(w.expect("every watch starts")))
        .collect();
    let opened = ctx.connections.accepted() - before;
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

on_both_executors!(
    e2e_smol_h2_250_watches_spread_over_ceil_250_over_cap_connections,
    e2e_async_std_h2_250_watches_spread_over_ceil_250_over_cap_connections,
    many_watches
);

async fn many_watches(ctx: Ctx) {
    let maps = ctx.maps(ctx.builder());
    let opened = watches_all_see_a_create(&ctx, &maps, 250, "seen-by-250").await;
    // Default cap 90 under the server's 100: ceil(250 / 90) = 3 shards.
    assert_eq!(opened, 3);
    assert_eq!(ctx.connections.http2(), 4, "the ordinary pool and 3 shards");
}

on_both_executors!(
    e2e_smol_h2_watch_shards_follow_a_lower_server_stream_limit,
    e2e_async_std_h2_watch_shards_follow_a_lower_server_stream_limit,
    lower_server_limit,
    ApiServer::builder().max_concurrent_streams(30)
);

/// A server allowing 30 streams: the client learns it from SETTINGS and
/// keeps 30 - 10 = 20 per connection, though its own cap is 90. Without
/// that, streams 31 to 90 of the first connection would wait forever.
async fn lower_server_limit(ctx: Ctx) {
    let maps = ctx.maps(ctx.builder().read_timeout(Duration::from_secs(10)));
    let opened = watches_all_see_a_create(&ctx, &maps, 50, "seen-by-50").await;
    assert_eq!(opened, 3, "ceil(50 / 20)");
}

on_both_executors!(
    e2e_smol_h2_configured_cap_sets_the_shard_count,
    e2e_async_std_h2_configured_cap_sets_the_shard_count,
    configured_cap
);

async fn configured_cap(ctx: Ctx) {
    let maps = ctx.maps(ctx.builder().watch_shards(ShardConfig {
        max_streams_per_connection: 7,
        ..ShardConfig::default()
    }));
    let opened = watches_all_see_a_create(&ctx, &maps, 30, "seen-by-30").await;
    assert_eq!(opened, 5, "ceil(30 / 7)");
}

on_both_executors!(
    e2e_smol_h2_switched_off_gives_each_watch_an_http1_connection,
    e2e_async_std_h2_switched_off_gives_each_watch_an_http1_connection,
    switched_off
);

async fn switched_off(ctx: Ctx) {
    let maps = ctx.maps(ctx.builder().http2_watches(false));
    let opened = watches_all_see_a_create(&ctx, &maps, 12, "seen-by-12").await;
    assert_eq!(opened, 12);
    assert_eq!(ctx.connections.http2(), 1, "only the ordinary pool");
}

on_both_executors!(
    e2e_smol_h2_cancelled_watch_leaves_its_siblings_running,
    e2e_async_std_h2_cancelled_watch_leaves_its_siblings_running,
    cancelled_watch
);

async fn cancelled_watch(ctx: Ctx) {
    let maps = ctx.maps(ctx.builder());
    let rv = warm(&maps).await;
    let before = ctx.connections.accepted();
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
        ctx.connections.accepted() - before,
        1,
        "one shard, never re-opened"
    );
}

on_both_executors!(
    e2e_smol_h2_killed_connection_reopens_and_its_watches_resume,
    e2e_async_std_h2_killed_connection_reopens_and_its_watches_resume,
    killed_connection
);

/// A watcher that resumes from the last resourceVersion it saw whenever its
/// watch breaks, reporting each ADDED name.
fn resuming_watcher(
    ctx: &Ctx,
    maps: Api<ConfigMap>,
    mut rv: String,
    seen: smol::channel::Sender<String>,
    started: smol::channel::Sender<()>,
) {
    ctx.spawner.spawn(async move {
        loop {
            let Ok(watch) = maps.watch(&from(&rv)).await else {
                if seen.is_closed() {
                    return;
                }
                smol::Timer::after(Duration::from_millis(50)).await;
                continue;
            };
            if started.send(()).await.is_err() {
                return;
            }
            let mut watch = Box::pin(watch);
            while let Some(Ok(event)) = watch.next().await {
                match event {
                    WatchEvent::Added(m) => {
                        rv = m.metadata.resource_version.clone().unwrap();
                        if seen.send(m.metadata.name.unwrap()).await.is_err() {
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

async fn killed_connection(ctx: Ctx) {
    const WATCHERS: usize = 20;
    let maps = ctx.maps(ctx.builder());
    let rv = warm(&maps).await;
    let (seen_tx, seen) = smol::channel::unbounded();
    let (started_tx, started) = smol::channel::unbounded();
    for _ in 0..WATCHERS {
        resuming_watcher(
            &ctx,
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
    let before = ctx.connections.accepted();
    ctx.faults.kill_connections();
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
    assert_eq!(ctx.connections.accepted() - before, 2);
    // Dropping the receivers ends the watchers at their next event.
    drop((seen, started));
}
