//! HTTP/2 watch shards ([`Sharding`]), for the runtimes that speak HTTP/2
//! (windlass-tokio, windlass-smol on either executor).
//!
//! windlass-apiserver allows 100 concurrent streams per HTTP/2 connection as
//! kube-apiserver does. Many watches opened at once spread over
//! ceil(n / cap) connections, counted on the server; a lower limit in the
//! server's SETTINGS lowers the cap; a cancelled watch leaves its siblings
//! alone; a killed connection re-opens and its watches resume.

use futures_util::future::join_all;
use k8s_openapi::api::core::v1::ConfigMap;
use windlass_proto::flowcontrol::FlowControl;
use windlass_proto::params::{ListParams, WatchParams};
use windlass_proto::shards::ShardConfig;
use windlass_proto::watch::WatchEvent;

use super::{ClientOptions, Ctx, Runtime};

/// How a [`Sharding`] client spreads its watches.
#[derive(Clone, Debug)]
pub struct H2Options {
    /// `ClientBuilder::http2_watches`: `false` gives each watch an
    /// HTTP/1.1 connection of its own.
    pub http2_watches: bool,
    /// `ClientBuilder::watch_shards`, if set.
    pub watch_shards: Option<ShardConfig>,
    /// `ClientBuilder::flow_control`: the scenarios switch the client-side
    /// rate limit off (hundreds of watches start at once).
    pub flow_control: FlowControl,
}

impl Default for H2Options {
    fn default() -> Self {
        H2Options {
            http2_watches: true,
            watch_shards: None,
            flow_control: FlowControl {
                qps: -1.0,
                burst: 0,
            },
        }
    }
}

/// A runtime whose watches share HTTP/2 connections.
pub trait Sharding: Runtime {
    /// A client from `options`, with `h2` set on its builder.
    fn h2_client(&self, options: ClientOptions, h2: H2Options) -> Self::Client;
}

fn config_map(name: &str) -> ConfigMap {
    let mut map = ConfigMap::default();
    map.metadata.name = Some(name.into());
    map
}

fn from(resource_version: &str) -> WatchParams {
    WatchParams {
        resource_version: Some(resource_version.to_owned()),
        ..Default::default()
    }
}

/// A `ConfigMap` API in `default` for a client with `h2`.
fn maps<R: Sharding>(ctx: &Ctx<R>, h2: H2Options) -> R::Api<ConfigMap> {
    R::namespaced(&ctx.rt.h2_client(ctx.options(), h2), "default")
}

/// Warms the ordinary pool (its one connection) and returns the collection's
/// resourceVersion, so every connection counted after it is a watch shard.
async fn warm<R: Runtime>(maps: &R::Api<ConfigMap>) -> String {
    let list = R::list(maps, &ListParams::default())
        .await
        .expect("the list that warms the pool");
    list.resource_version()
        .expect("a list has a resourceVersion")
        .to_owned()
}

/// The name of the next ADDED, skipping bookmarks.
async fn next_added<R: Runtime>(watch: &mut R::Watch<ConfigMap>) -> String {
    loop {
        match R::next_event(watch).await {
            Some(Ok(WatchEvent::Added(map))) => return map.metadata.name.expect("a name"),
            Some(Ok(WatchEvent::Bookmark(_))) => {}
            other => panic!("expected ADDED, got {other:?}"),
        }
    }
}

/// Opens `n` watches at once, checks every one sees `name` created, and
/// returns how many connections the server accepted for them.
async fn watches_all_see_a_create<R: Runtime>(
    ctx: &Ctx<R>,
    maps: &R::Api<ConfigMap>,
    n: usize,
    name: &str,
) -> u64 {
    let rv = warm::<R>(maps).await;
    let before = ctx.server.connections().accepted();
    let params = from(&rv);
    let watches = join_all((0..n).map(|_| R::watch(maps, &params))).await;
    let mut watches: Vec<_> = watches
        .into_iter()
        .map(|w| w.expect("every watch starts"))
        .collect();
    let opened = ctx.server.connections().accepted() - before;
    R::create(maps, &config_map(name))
        .await
        .expect("the create every watch sees");
    let seen = join_all(watches.iter_mut().map(|w| next_added::<R>(w))).await;
    assert!(seen.iter().all(|s| s == name), "{seen:?}");
    opened
}

/// 250 watches at once on the default cap of 90: ceil(250 / 90) = 3 shard
/// connections beside the ordinary pool's one.
pub async fn h2_250_watches_spread_over_ceil_250_over_cap_connections<R: Sharding>(ctx: Ctx<R>) {
    assert_eq!(
        crate::apiserver::MAX_CONCURRENT_STREAMS,
        100,
        "the server enforces kube-apiserver's limit"
    );
    let maps = maps(&ctx, H2Options::default());
    let opened = watches_all_see_a_create(&ctx, &maps, 250, "seen-by-250").await;
    assert_eq!(opened, 3, "ceil(250 / 90)");
    assert_eq!(
        ctx.server.connections().http2(),
        4,
        "the ordinary pool and 3 shards"
    );
}

/// A server allowing 30 streams (server kind `streams30`): the client learns
/// it from SETTINGS and keeps 30 - 10 = 20 per connection, though its own cap
/// is 90. Without that, streams 31 to 90 of the first connection would wait
/// forever (the read timeout turns that into a failure, not a hang).
pub async fn h2_watch_shards_follow_a_lower_server_stream_limit<R: Sharding>(ctx: Ctx<R>) {
    let options = ctx
        .options()
        .read_timeout(std::time::Duration::from_secs(10));
    let client = ctx.rt.h2_client(options, H2Options::default());
    let maps = R::namespaced::<ConfigMap>(&client, "default");
    let opened = watches_all_see_a_create(&ctx, &maps, 50, "seen-by-50").await;
    assert_eq!(opened, 3, "ceil(50 / 20)");
}

/// `watch_shards` with a cap of 7: 30 watches on ceil(30 / 7) = 5 shards.
pub async fn h2_configured_cap_sets_the_shard_count<R: Sharding>(ctx: Ctx<R>) {
    let maps = maps(
        &ctx,
        H2Options {
            watch_shards: Some(ShardConfig {
                max_streams_per_connection: 7,
                ..ShardConfig::default()
            }),
            ..H2Options::default()
        },
    );
    let opened = watches_all_see_a_create(&ctx, &maps, 30, "seen-by-30").await;
    assert_eq!(opened, 5, "ceil(30 / 7)");
}

/// `http2_watches(false)`: each watch on an HTTP/1.1 connection of its own;
/// only the ordinary pool speaks HTTP/2.
pub async fn h2_switched_off_gives_each_watch_an_http1_connection<R: Sharding>(ctx: Ctx<R>) {
    let maps = maps(
        &ctx,
        H2Options {
            http2_watches: false,
            ..H2Options::default()
        },
    );
    let opened = watches_all_see_a_create(&ctx, &maps, 12, "seen-by-12").await;
    assert_eq!(opened, 12);
    assert_eq!(
        ctx.server.connections().http2(),
        1,
        "only the ordinary pool"
    );
}

/// Six watches on one shard; three are dropped one at a time, each while
/// its siblings stream, and the siblings see every later create on the same
/// connection.
pub async fn h2_cancelled_watch_leaves_its_siblings_running<R: Sharding>(ctx: Ctx<R>) {
    let maps = maps(&ctx, H2Options::default());
    let rv = warm::<R>(&maps).await;
    let before = ctx.server.connections().accepted();
    let params = from(&rv);
    let mut watches = Vec::new();
    for _ in 0..6 {
        watches.push(R::watch(&maps, &params).await.expect("a watch starts"));
    }
    for round in 0..3 {
        drop(watches.remove(round));
        let name = format!("after-cancel-{round}");
        R::create(&maps, &config_map(&name))
            .await
            .expect("a create");
        for watch in &mut watches {
            // Each sibling sees every create since it started, in order.
            while next_added::<R>(watch).await != name {}
        }
    }
    assert_eq!(
        ctx.server.connections().accepted() - before,
        1,
        "one shard, never re-opened"
    );
}

/// Twenty watches on one shard; the server kills every connection. Each
/// watch ends (an error or the end of the stream, never a hang), is opened
/// again from the last resourceVersion it saw, and sees the next create:
/// one new shard for the twenty, one new connection for the ordinary pool.
pub async fn h2_killed_connection_reopens_and_its_watches_resume<R: Sharding>(ctx: Ctx<R>) {
    const WATCHERS: usize = 20;
    let maps = maps(&ctx, H2Options::default());
    let rv = warm::<R>(&maps).await;
    let params = from(&rv);
    let watches = join_all((0..WATCHERS).map(|_| R::watch(&maps, &params))).await;
    let mut watches: Vec<_> = watches
        .into_iter()
        .map(|w| w.expect("every watch starts"))
        .collect();
    R::create(&maps, &config_map("before-kill"))
        .await
        .expect("a create");
    let mut last_rv = Vec::with_capacity(WATCHERS);
    for watch in &mut watches {
        loop {
            match R::next_event(watch).await {
                Some(Ok(WatchEvent::Added(map))) => {
                    assert_eq!(map.metadata.name.as_deref(), Some("before-kill"));
                    last_rv.push(map.metadata.resource_version.expect("a resourceVersion"));
                    break;
                }
                Some(Ok(WatchEvent::Bookmark(_))) => {}
                other => panic!("expected ADDED before-kill, got {other:?}"),
            }
        }
    }
    let before = ctx.server.connections().accepted();
    ctx.server.faults().kill_connections();
    for watch in &mut watches {
        loop {
            match R::next_event(watch).await {
                None | Some(Err(_)) => break,
                Some(Ok(WatchEvent::Bookmark(_))) => {}
                Some(Ok(other)) => panic!("nothing was written after the kill: {other:?}"),
            }
        }
    }
    drop(watches);
    let params: Vec<_> = last_rv.iter().map(|rv| from(rv)).collect();
    let resumed = join_all(params.iter().map(|p| R::watch(&maps, p))).await;
    let mut resumed: Vec<_> = resumed
        .into_iter()
        .map(|w| w.expect("every watch resumes"))
        .collect();
    R::create(&maps, &config_map("after-kill"))
        .await
        .expect("a create after the kill");
    for watch in &mut resumed {
        assert_eq!(next_added::<R>(watch).await, "after-kill");
    }
    assert_eq!(
        ctx.server.connections().accepted() - before,
        2,
        "one new shard for the 20 watches, one for the ordinary pool"
    );
}
