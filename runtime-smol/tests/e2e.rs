//! windlass-smol end to end against windlass-apiserver over TLS with
//! client-certificate auth (or a bearer token). The server runs on a tokio
//! runtime's worker threads (a dev-dependency only); each scenario runs
//! twice, on a smol `Executor` (`e2e_smol_*`) and on async-std's executor
//! (`e2e_async_std_*`), the client's connections spawned on that executor.
//! Every scenario runs under a deadline, so a hang fails instead of waiting.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde_json::json;
use windlass_proto::config::{ContextOptions, Kubeconfig};
use windlass_proto::dynamic::DynamicObject;
use windlass_proto::params::{ListParams, WatchParams};
use windlass_proto::request::{DeleteParams, Patch, PatchParams, PostParams};
use windlass_proto::resource::{ApiResource, Scope};
use windlass_proto::watch::WatchEvent;
use windlass_smol::{Api, Client, ClientBuilder, Error, Hook, Spawner};
use windlass_testkit::apiserver::{
    ApiServer, ApiServerBuilder, Faults, RunningServer, TOKEN_CONTEXT,
};

/// What a scenario gets: the server's kubeconfig and fault knobs, and the
/// executor's spawner.
#[derive(Clone)]
struct Ctx {
    kubeconfig: String,
    url: String,
    token: Option<String>,
    faults: Faults,
    spawner: Spawner,
}

impl Ctx {
    /// A client builder for the server's kubeconfig `context` (the current one when `None`).
    fn builder(&self, context: Option<&str>) -> ClientBuilder {
        let kubeconfig = Kubeconfig::parse(self.kubeconfig.as_bytes(), None).unwrap();
        let options = ContextOptions {
            context: context.map(str::to_owned),
            ..Default::default()
        };
        let config = kubeconfig.resolve(&options, &no_files).unwrap();
        ClientBuilder::from_config(&config, self.spawner.clone()).unwrap()
    }

    fn client(&self) -> Client {
        self.builder(None).build().unwrap()
    }
}

fn no_files(p: &std::path::Path) -> std::io::Result<Vec<u8>> {
    Err(std::io::Error::new(
        std::io::ErrorKind::NotFound,
        p.display().to_string(),
    ))
}

#[derive(Clone, Copy)]
enum Executor {
    Smol,
    AsyncStd,
}

/// Starts windlass-apiserver on its own tokio runtime, runs `scenario` on
/// `executor` within `secs`, and stops the server.
fn run<F, Fut>(executor: Executor, server: ApiServerBuilder, secs: u64, scenario: F)
where
    F: FnOnce(Ctx) -> Fut + Send,
    Fut: Future<Output = ()> + Send + 'static,
{
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let server: RunningServer = runtime
        .block_on(async { tokio::time::timeout(Duration::from_secs(30), server.start()).await })
        .expect("windlass-apiserver starts within 30 s")
        .expect("windlass-apiserver starts");
    let (server_kubeconfig, server_url) = (server.kubeconfig().to_owned(), server.url());
    let server_token = server.credentials().map(|c| c.token.clone());
    let server_faults = server.faults();
    let ctx = move |spawner| Ctx {
        kubeconfig: server_kubeconfig,
        url: server_url,
        token: server_token,
        faults: server_faults,
        spawner,
    };
    // The main thread's 8 MiB, not a test thread's 2 MiB: an unoptimised
    // build decodes a Deployment with about 2 MiB of stack.
    let scenario_thread = std::thread::Builder::new().stack_size(8 << 20);
    let outcome = std::thread::scope(|scope| {
        let run = move || match executor {
            Executor::Smol => {
                let smol = Arc::new(smol::Executor::new());
                let body = within(secs, scenario(ctx(Spawner::from(smol.clone()))));
                smol::block_on(smol.run(body));
            }
            Executor::AsyncStd => {
                let spawner = Spawner::new(|future| {
                    async_std::task::spawn(future);
                });
                async_std::task::block_on(within(secs, scenario(ctx(spawner))));
            }
        };
        scenario_thread.spawn_scoped(scope, run).unwrap().join()
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
            run(Executor::Smol, $server, 60, $scenario);
        }

        #[test]
        fn $async_std() {
            run(Executor::AsyncStd, $server, 60, $scenario);
        }
    };
}

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

on_both_executors!(
    e2e_smol_crud_typed_over_tls_with_client_certificate,
    e2e_async_std_crud_typed_over_tls_with_client_certificate,
    crud_typed
);

async fn crud_typed(ctx: Ctx) {
    let client = ctx.client();
    assert_eq!(client.default_namespace(), "default");
    let maps: Api<ConfigMap> = Api::default_namespaced(client).unwrap();
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
    let named_web = |m: &&ConfigMap| m.metadata.name.as_deref() == Some("web");
    assert_eq!(listed.items.iter().filter(named_web).count(), 1);
    maps.delete("web", &DeleteParams::default()).await.unwrap();
    assert!(maps.get_opt("web").await.unwrap().is_none());
    let missing = maps
        .delete("web", &DeleteParams::default())
        .await
        .unwrap_err();
    assert!(missing.is_not_found(), "{missing}");
}

on_both_executors!(
    e2e_smol_apply_conflict_then_force_with_bearer_token,
    e2e_async_std_apply_conflict_then_force_with_bearer_token,
    apply_conflict
);

async fn apply_conflict(ctx: Ctx) {
    let client = ctx.builder(Some(TOKEN_CONTEXT)).build().unwrap();
    let maps: Api<ConfigMap> = Api::namespaced(client, "default").unwrap();
    let desired = |value: &str| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "applied"}, "data": {"k": value}});
    let first = maps
        .apply("applied", "alice", false, &desired("1"))
        .await
        .unwrap();
    assert_eq!(first.data.unwrap()["k"], "1");
    let conflict = maps
        .apply("applied", "bob", false, &desired("2"))
        .await
        .unwrap_err();
    assert!(conflict.is_conflict(), "{conflict}");
    let forced = maps
        .apply("applied", "bob", true, &desired("2"))
        .await
        .unwrap();
    assert_eq!(forced.data.unwrap()["k"], "2");
}

on_both_executors!(
    e2e_smol_crud_dynamic_custom_resource_and_metadata,
    e2e_async_std_crud_dynamic_custom_resource_and_metadata,
    crud_dynamic
);

async fn crud_dynamic(ctx: Ctx) {
    let client = ctx.client();
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
    let listed = widgets
        .metadata()
        .list(&ListParams::default())
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 1);
    widgets
        .delete("w1", &DeleteParams::default())
        .await
        .unwrap();
    assert!(widgets.get_opt("w1").await.unwrap().is_none());
}

on_both_executors!(
    e2e_smol_pagination_walks_every_page,
    e2e_async_std_pagination_walks_every_page,
    pagination
);

async fn pagination(ctx: Ctx) {
    let client = ctx.client();
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), "paged").unwrap();
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
}

on_both_executors!(
    e2e_smol_watch_sees_create_update_delete_in_order,
    e2e_async_std_watch_sees_create_update_delete_in_order,
    watch_in_order
);

async fn watch_in_order(ctx: Ctx) {
    let client = ctx.client();
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), "watched").unwrap();
    namespace(&client, "watched").await;
    let start = maps.list(&ListParams::default()).await.unwrap();
    let params = WatchParams {
        resource_version: start.resource_version().map(str::to_owned),
        ..Default::default()
    };
    let mut events = Box::pin(maps.watch(&params).await.unwrap());
    let writer = maps.clone();
    let (done, finished) = smol::channel::bounded(1);
    // The writes run as a task of the executor under test, beside the watch.
    ctx.spawner.spawn(async move {
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
        done.send(()).await.unwrap();
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
    finished.recv().await.expect("the writer finished");
    assert_eq!(
        seen,
        [
            ("ADDED", "1".to_owned()),
            ("MODIFIED", "2".to_owned()),
            ("DELETED", "2".to_owned())
        ]
    );
}

on_both_executors!(
    e2e_smol_watch_across_drops_and_410_loses_and_duplicates_nothing,
    e2e_async_std_watch_across_drops_and_410_loses_and_duplicates_nothing,
    watch_across_faults
);

/// A cache kept by list-then-watch, resumed from the last resourceVersion
/// after every cut stream and relisted after every 410, ends equal to the
/// server's list (client-go's reflector contract, written out by hand).
async fn watch_across_faults(ctx: Ctx) {
    let client = ctx
        .builder(None)
        .read_timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), "faulty").unwrap();
    namespace(&client, "faulty").await;
    let mut cache = Cache::default();
    for i in 0..5 {
        maps.create(
            &PostParams::default(),
            &config_map(&format!("m-{i}"), &[("v", "0")]),
        )
        .await
        .unwrap();
    }
    cache.relist(&maps).await;

    // Writes the cache has not seen, then three watch streams cut mid-way.
    for i in 5..10 {
        maps.create(
            &PostParams::default(),
            &config_map(&format!("m-{i}"), &[("v", "0")]),
        )
        .await
        .unwrap();
    }
    for i in 0..5 {
        let patch = Patch::Merge(json!({"data": {"v": "1"}}));
        maps.patch(&format!("m-{i}"), &PatchParams::default(), &patch)
            .await
            .unwrap();
    }
    maps.delete("m-9", &DeleteParams::default()).await.unwrap();
    ctx.faults.close_watches_after(3, 700);
    let mut reopened = 0;
    while cache.objects != server_state(&maps).await {
        reopened += cache.watch_until_the_stream_ends(&maps).await;
        assert!(reopened < 20, "no progress: {:?}", cache.objects);
    }
    assert!(cache.cut >= 1, "the fault cut no stream");

    // History compacted past the cache's resourceVersion: 410, relist.
    maps.delete("m-8", &DeleteParams::default()).await.unwrap();
    maps.create(&PostParams::default(), &config_map("late", &[("v", "0")]))
        .await
        .unwrap();
    ctx.faults.compact();
    let relists = cache.relists;
    cache.watch_until_the_stream_ends(&maps).await;
    assert_eq!(cache.relists, relists + 1, "a 410 relists");
    assert_eq!(cache.objects, server_state(&maps).await);
    assert!(cache.objects.contains_key("late"));
    assert!(!cache.objects.contains_key("m-8"));
}

/// What the test's reflector knows: name → data value, and where it is.
#[derive(Default)]
struct Cache {
    objects: BTreeMap<String, String>,
    resource_version: String,
    relists: u32,
    cut: u32,
}

impl Cache {
    async fn relist(&mut self, maps: &Api<ConfigMap>) {
        let list = maps.list(&ListParams::default()).await.unwrap();
        self.resource_version = list.resource_version().unwrap().to_owned();
        self.objects = list.items.iter().map(entry).collect();
        self.relists += 1;
    }

    /// Watches from the cache's resourceVersion until the stream ends (cut,
    /// or a short server timeout) or expires (then relists); 1 when it was
    /// reopened at least once.
    async fn watch_until_the_stream_ends(&mut self, maps: &Api<ConfigMap>) -> u32 {
        let params = WatchParams {
            resource_version: Some(self.resource_version.clone()),
            timeout_seconds: Some(1),
            ..Default::default()
        };
        let mut events = match maps.watch(&params).await {
            Ok(events) => Box::pin(events),
            Err(e) if e.is_expired() => {
                self.relist(maps).await;
                return 1;
            }
            Err(e) => panic!("{e}"),
        };
        while let Some(item) = events.next().await {
            let event = match item {
                Ok(event) => event,
                Err(e) => {
                    assert!(!e.is_timeout(), "{e}");
                    self.cut += 1;
                    return 1;
                }
            };
            let (object, deleted) = match event {
                WatchEvent::Added(m) | WatchEvent::Modified(m) => (m, false),
                WatchEvent::Deleted(m) => (m, true),
                WatchEvent::Bookmark(b) => {
                    self.resource_version = b.resource_version;
                    continue;
                }
                WatchEvent::Error(status) => {
                    assert_eq!(status.code, Some(410), "{status:?}");
                    self.relist(maps).await;
                    return 1;
                }
            };
            self.resource_version = object.metadata.resource_version.clone().unwrap();
            let (name, value) = entry(&object);
            if deleted {
                assert!(
                    self.objects.remove(&name).is_some(),
                    "deleted twice: {name}"
                );
            } else {
                self.objects.insert(name, value);
            }
        }
        1
    }
}

fn entry(map: &ConfigMap) -> (String, String) {
    let name = map.metadata.name.clone().unwrap();
    let value = map
        .data
        .as_ref()
        .and_then(|d| d.get("v"))
        .cloned()
        .unwrap_or_default();
    (name, value)
}

async fn server_state(maps: &Api<ConfigMap>) -> BTreeMap<String, String> {
    let list = maps.list(&ListParams::default()).await.unwrap();
    list.items.iter().map(entry).collect()
}

/// Records every attempt's status (a `Hook`, as a metrics user would).
#[derive(Default)]
struct Statuses(Mutex<Vec<u16>>);

impl Hook for Statuses {
    fn on_response(
        &self,
        _method: &http::Method,
        _uri: &http::Uri,
        status: Option<http::StatusCode>,
        _latency: Duration,
    ) {
        self.0
            .lock()
            .unwrap()
            .push(status.map_or(0, |s| s.as_u16()));
    }
}

on_both_executors!(
    e2e_smol_retries_429_and_503_with_retry_after,
    e2e_async_std_retries_429_and_503_with_retry_after,
    retries
);

async fn retries(ctx: Ctx) {
    let statuses = Arc::new(Statuses::default());
    let client = ctx.builder(None).hook(statuses.clone()).build().unwrap();
    let maps: Api<ConfigMap> = Api::namespaced(client, "default").unwrap();
    ctx.faults.fail_requests(2, 429, 0);
    maps.create(&PostParams::default(), &config_map("retried", &[]))
        .await
        .unwrap();
    ctx.faults.fail_requests(1, 503, 1);
    let started = Instant::now();
    maps.get("retried").await.unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "Retry-After: 1 was waited out"
    );
    assert_eq!(*statuses.0.lock().unwrap(), [429, 429, 201, 503, 200]);
}

on_both_executors!(
    e2e_smol_stall_silent_watch_ends_in_a_timeout_error,
    e2e_async_std_stall_silent_watch_ends_in_a_timeout_error,
    stall_silent_watch
);

async fn stall_silent_watch(ctx: Ctx) {
    let client = ctx
        .builder(None)
        .read_timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    let maps: Api<ConfigMap> = Api::namespaced(client, "default").unwrap();
    maps.create(&PostParams::default(), &config_map("quiet", &[]))
        .await
        .unwrap();
    ctx.faults.stall_watches(1, 0);
    let params = WatchParams {
        resource_version: Some("0".into()),
        ..Default::default()
    };
    let items: Vec<_> = maps.watch(&params).await.unwrap().collect().await;
    let last = items.last().expect("an error item");
    assert!(
        matches!(
            last,
            Err(Error::Timeout {
                waiting_for: "body bytes",
                ..
            })
        ),
        "{items:?}"
    );
}

on_both_executors!(
    e2e_smol_stall_server_that_accepts_and_never_answers_ends_in_a_timeout,
    e2e_async_std_stall_server_that_accepts_and_never_answers_ends_in_a_timeout,
    stall_server
);

/// A listener that accepts and never reads or writes: over plain HTTP the
/// response head never comes; over TLS the handshake never finishes.
async fn stall_server(ctx: Ctx) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            held.push(stream);
        }
    });
    let client = ClientBuilder::new(format!("http://{addr}"), None, ctx.spawner.clone())
        .read_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let maps: Api<ConfigMap> = Api::namespaced(client, "default").unwrap();
    let started = Instant::now();
    let err = maps.get("web").await.unwrap_err();
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
    let client = ClientBuilder::new(format!("http://{addr}"), None, ctx.spawner.clone())
        .read_timeout(Duration::from_millis(300))
        .max_retries(1)
        .build()
        .unwrap();
    let maps: Api<ConfigMap> = Api::all(client).unwrap();
    let err = maps.watch(&WatchParams::default()).await.err().unwrap();
    assert!(err.is_timeout(), "{err}");

    // TLS: the handshake stalls; the connect timeout ends it.
    let config = rustls_client_config();
    let client = ClientBuilder::new(format!("https://{addr}"), Some(config), ctx.spawner.clone())
        .connect_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let maps: Api<ConfigMap> = Api::namespaced(client, "default").unwrap();
    let err = maps.get("web").await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Timeout {
                waiting_for: "connection",
                ..
            }
        ),
        "{err}"
    );
}

fn rustls_client_config() -> rustls::ClientConfig {
    rustls::ClientConfig::builder_with_provider(rustls::crypto::ring::default_provider().into())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth()
}

on_both_executors!(
    e2e_smol_cut_watch_ends_with_an_error_not_a_hang,
    e2e_async_std_cut_watch_ends_with_an_error_not_a_hang,
    cut_watch
);

async fn cut_watch(ctx: Ctx) {
    let client = ctx
        .builder(None)
        .read_timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let maps: Api<ConfigMap> = Api::namespaced(client, "default").unwrap();
    for i in 0..5 {
        maps.create(
            &PostParams::default(),
            &config_map(&format!("cut-{i}"), &[("k", "v")]),
        )
        .await
        .unwrap();
    }
    ctx.faults.close_watches_after(1, 300);
    let params = WatchParams {
        resource_version: Some("0".into()),
        ..Default::default()
    };
    let items: Vec<_> = maps.watch(&params).await.unwrap().collect().await;
    assert!(items.len() < 6, "{items:?}");
    assert!(items.last().is_some_and(|i| i.is_err()), "{items:?}");
}

on_both_executors!(
    e2e_smol_client_reaches_server_over_plain_http_too,
    e2e_async_std_client_reaches_server_over_plain_http_too,
    plain_http,
    ApiServer::builder().tls(false)
);

async fn plain_http(ctx: Ctx) {
    let client = Client::new(ctx.url.clone(), None, ctx.spawner.clone()).unwrap();
    let maps: Api<ConfigMap> = Api::namespaced(client, "default").unwrap();
    maps.create(&PostParams::default(), &config_map("plain", &[]))
        .await
        .unwrap();
    // Sequential requests reuse the idle HTTP/1.1 connection.
    for _ in 0..3 {
        maps.get("plain").await.unwrap();
    }
}

on_both_executors!(
    e2e_smol_status_scale_subresources_and_delete_collection,
    e2e_async_std_status_scale_subresources_and_delete_collection,
    subresources
);

async fn subresources(ctx: Ctx) {
    let client = ctx.client();
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default").unwrap();
    let maps: Api<ConfigMap> = Api::namespaced(client, "default").unwrap();
    let deployment: Deployment = serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}
    }))
    .unwrap();
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
    let scale = deployments.get_scale("web").await.unwrap();
    assert_eq!(scale.spec.unwrap().replicas, Some(1));
    let patch = Patch::Merge(json!({"spec": {"replicas": 3}}));
    deployments
        .patch_scale("web", &PatchParams::default(), &patch)
        .await
        .unwrap();
    let spec = deployments.get("web").await.unwrap().spec;
    assert_eq!(spec.replicas, Some(3));

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
}

on_both_executors!(
    e2e_smol_exec_credential_plugin_runs_once_for_many_requests,
    e2e_async_std_exec_credential_plugin_runs_once_for_many_requests,
    exec_plugin
);

async fn exec_plugin(ctx: Ctx) {
    use std::os::unix::fs::PermissionsExt;
    let token = ctx.token.clone().expect("a TLS server has a token");
    let dir = std::env::temp_dir().join(format!(
        "windlass-smol-exec-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
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
    let kubeconfig = ctx
        .kubeconfig
        .replace(&format!("    token: {token}\n"), &exec);
    assert!(kubeconfig.contains("exec:"), "{kubeconfig}");
    let options = ContextOptions {
        context: Some(TOKEN_CONTEXT.to_owned()),
        ..Default::default()
    };
    let config = Kubeconfig::parse(kubeconfig.as_bytes(), None)
        .unwrap()
        .resolve(&options, &no_files)
        .unwrap();
    let client = Client::from_config(&config, ctx.spawner.clone()).unwrap();
    let maps: Api<ConfigMap> = Api::namespaced(client, "default").unwrap();
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
    assert_eq!(std::fs::read_to_string(&runs).unwrap().lines().count(), 1);
    let _ = std::fs::remove_dir_all(&dir);
}
