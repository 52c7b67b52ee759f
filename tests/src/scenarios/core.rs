//! The scenarios every runtime runs ([`Group::Core`](super::Group::Core)):
//! typed and dynamic CRUD, apply, pagination, watches (in order, across
//! cut streams and 410s, cut), retries, stalls, subresources, plain HTTP
//! and an exec credential plugin.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde_json::json;
use windlass_proto::dynamic::DynamicObject;
use windlass_proto::params::{ListParams, WatchParams};
use windlass_proto::request::Patch;
use windlass_proto::resource::{ApiResource, Scope};
use windlass_proto::watch::WatchEvent;

use super::{ClientOptions, Ctx, Failure, Runtime, no_files, silent_server};
use crate::apiserver::TOKEN_CONTEXT;

/// A ConfigMap named `name` holding `data`.
pub fn config_map(name: &str, data: &[(&str, &str)]) -> ConfigMap {
    let mut map = ConfigMap {
        data: Some(
            data.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
        ),
        ..Default::default()
    };
    map.metadata.name = Some(name.into());
    map
}

/// Creates namespace `name`.
pub async fn namespace<R: Runtime>(client: &R::Client, name: &str) {
    let namespaces = R::cluster::<Namespace>(client);
    let mut ns = Namespace::default();
    ns.metadata.name = Some(name.into());
    R::create(&namespaces, &ns).await.unwrap();
}

/// The Widget CRD (`widgets.example.com`, short name `wd`).
pub fn widget_crd() -> CustomResourceDefinition {
    serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
                 "names": {"kind": "Widget", "plural": "widgets", "singular": "widget", "shortNames": ["wd"]},
                 "versions": [{"name": "v1", "served": true, "storage": true,
                               "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]}
    }))
    .unwrap()
}

/// The watch's next `n` events other than bookmarks, each as `(type, f(object))`;
/// an ERROR event or an early end fails.
pub async fn next_events<R: Runtime, K: super::Kind, T>(
    watch: &mut R::Watch<K>,
    n: usize,
    f: impl Fn(K) -> T,
) -> Vec<(&'static str, T)> {
    let mut seen = Vec::new();
    while seen.len() < n {
        match R::next_event(watch)
            .await
            .expect("the watch ended early")
            .unwrap()
        {
            WatchEvent::Added(o) => seen.push(("ADDED", f(o))),
            WatchEvent::Modified(o) => seen.push(("MODIFIED", f(o))),
            WatchEvent::Deleted(o) => seen.push(("DELETED", f(o))),
            WatchEvent::Bookmark(_) => {}
            WatchEvent::Error(status) => panic!("{status:?}"),
        }
    }
    seen
}

/// Every item of a watch until it ends.
async fn drain<R: Runtime, K: super::Kind>(
    watch: &mut R::Watch<K>,
) -> Vec<Result<WatchEvent<K>, Failure>> {
    let mut items = Vec::new();
    while let Some(item) = R::next_event(watch).await {
        items.push(item);
    }
    items
}

/// Create, get, replace (and a stale replace: 409 Conflict), create again
/// (409 AlreadyExists), merge patch, apply, list, delete (and again: 404),
/// delete a collection.
pub async fn crud_typed<R: Runtime>(ctx: Ctx<R>) {
    let client = ctx.client();
    assert_eq!(R::default_namespace(&client), "default");
    let maps = R::namespaced::<ConfigMap>(&client, &R::default_namespace(&client));
    let created = R::create(&maps, &config_map("web", &[("a", "1")]))
        .await
        .unwrap();
    assert!(created.metadata.uid.is_some());
    let stale = created.clone();
    let mut fetched = R::get(&maps, "web").await.unwrap();
    assert_eq!(fetched.data, created.data);
    fetched
        .data
        .as_mut()
        .unwrap()
        .insert("b".into(), "2".into());
    let replaced = R::replace(&maps, "web", &fetched).await.unwrap();
    assert_ne!(
        replaced.metadata.resource_version,
        created.metadata.resource_version
    );
    let conflict = R::replace(&maps, "web", &stale).await.unwrap_err();
    assert!(conflict.conflict, "{conflict}");
    let already = R::create(&maps, &config_map("web", &[])).await.unwrap_err();
    assert!(already.already_exists, "{already}");
    let patch = Patch::Merge(json!({"data": {"c": "3"}}));
    let patched = R::patch(&maps, "web", &patch).await.unwrap();
    assert_eq!(patched.data.unwrap().len(), 3);
    let desired = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "web"}, "data": {"d": "4"}});
    let applied = R::apply(&maps, "web", "alice", true, &desired)
        .await
        .unwrap();
    assert_eq!(applied.data.unwrap()["d"], "4");
    let listed = R::list(&maps, &ListParams::default()).await.unwrap();
    let named_web = |m: &&ConfigMap| m.metadata.name.as_deref() == Some("web");
    assert_eq!(listed.items.iter().filter(named_web).count(), 1);
    R::delete(&maps, "web").await.unwrap();
    assert!(R::get_opt(&maps, "web").await.unwrap().is_none());
    let missing = R::delete(&maps, "web").await.unwrap_err();
    assert!(missing.not_found, "{missing}");
    for name in ["x1", "x2"] {
        R::create(&maps, &config_map(name, &[])).await.unwrap();
    }
    R::delete_collection(&maps, &ListParams::default())
        .await
        .unwrap();
    assert!(
        R::list(&maps, &ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

/// A custom resource as `DynamicObject`s, and its metadata-only view.
pub async fn crud_dynamic_custom_resource<R: Runtime>(ctx: Ctx<R>) {
    let client = ctx.client();
    let crds = R::cluster::<CustomResourceDefinition>(&client);
    let resource = ApiResource::new("example.com", "v1", "Widget", "widgets", Scope::Namespaced);
    let widgets = R::dynamic(&client, &resource, Some("default"));
    R::create(&crds, &widget_crd()).await.unwrap();
    let widget = DynamicObject::new("w1", &resource)
        .within("default")
        .with_data(json!({"spec": {"size": 3}}));
    let created = R::create(&widgets, &widget).await.unwrap();
    assert_eq!(created.data["spec"]["size"], 3);
    let patch = Patch::Merge(json!({"spec": {"size": 4}}));
    let patched = R::patch(&widgets, "w1", &patch).await.unwrap();
    assert_eq!(patched.data["spec"]["size"], 4);
    let list = R::list(&widgets, &ListParams::default()).await.unwrap();
    assert_eq!(list.items.len(), 1);
    let metadata = R::metadata_get(&widgets, "w1").await.unwrap();
    assert_eq!(metadata.metadata.name.as_deref(), Some("w1"));
    let listed = R::metadata_list(&widgets, &ListParams::default())
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 1);
    R::delete(&widgets, "w1").await.unwrap();
    assert!(R::get_opt(&widgets, "w1").await.unwrap().is_none());
}

/// Server-side apply by two managers: the second conflicts, then forces.
/// Authenticates with the bearer-token context.
pub async fn apply_conflict_then_force_with_bearer_token<R: Runtime>(ctx: Ctx<R>) {
    let config = ctx.config(Some(TOKEN_CONTEXT));
    assert!(
        config.tls.identity.is_none(),
        "a bearer token, no certificate"
    );
    let client = ctx.rt.client(ClientOptions::config(config));
    let maps = R::namespaced::<ConfigMap>(&client, "default");
    let desired = |value: &str| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "applied"}, "data": {"k": value}});
    let first = R::apply(&maps, "applied", "alice", false, &desired("1"))
        .await
        .unwrap();
    assert_eq!(first.data.unwrap()["k"], "1");
    let conflict = R::apply(&maps, "applied", "bob", false, &desired("2"))
        .await
        .unwrap_err();
    assert!(conflict.conflict, "{conflict}");
    let forced = R::apply(&maps, "applied", "bob", true, &desired("2"))
        .await
        .unwrap();
    assert_eq!(forced.data.unwrap()["k"], "2");
}

/// 25 objects in pages of 10: three pages, every name once, in order.
pub async fn pagination_walks_every_page<R: Runtime>(ctx: Ctx<R>) {
    let client = ctx.client();
    namespace::<R>(&client, "paged").await;
    let maps = R::namespaced::<ConfigMap>(&client, "paged");
    for i in 0..25 {
        R::create(&maps, &config_map(&format!("cm-{i:02}"), &[]))
            .await
            .unwrap();
    }
    let params = ListParams {
        limit: Some(10),
        ..Default::default()
    };
    let pages = R::list_pages(&maps, &params).await.unwrap();
    assert_eq!(
        pages.iter().map(|p| p.items.len()).collect::<Vec<_>>(),
        [10, 10, 5]
    );
    assert!(
        pages[..2].iter().all(|p| p.continue_token().is_some()),
        "every page but the last carries a continue token"
    );
    let names: Vec<_> = R::list_all(&maps, &params)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.metadata.name.unwrap())
        .collect();
    let want: Vec<_> = (0..25).map(|i| format!("cm-{i:02}")).collect();
    assert_eq!(names, want);
}

/// A watch from a list's resourceVersion sees a create, a patch and a
/// delete made beside it, in order.
pub async fn watch_sees_create_update_delete_in_order<R: Runtime>(ctx: Ctx<R>) {
    let client = ctx.client();
    namespace::<R>(&client, "watched").await;
    let maps = R::namespaced::<ConfigMap>(&client, "watched");
    let start = R::list(&maps, &ListParams::default()).await.unwrap();
    let params = WatchParams {
        resource_version: start.resource_version().map(str::to_owned),
        ..Default::default()
    };
    let mut events = R::watch(&maps, &params).await.unwrap();
    let writes = async {
        R::create(&maps, &config_map("w", &[("v", "1")]))
            .await
            .unwrap();
        let patch = Patch::Merge(json!({"data": {"v": "2"}}));
        R::patch(&maps, "w", &patch).await.unwrap();
        R::delete(&maps, "w").await.unwrap();
    };
    // The writes run beside the watch (one after the other on a blocking runtime).
    let ((), seen) = futures_util::future::join(
        writes,
        next_events::<R, _, _>(&mut events, 3, |m: ConfigMap| m.data.unwrap()["v"].clone()),
    )
    .await;
    assert_eq!(
        seen,
        [
            ("ADDED", "1".to_owned()),
            ("MODIFIED", "2".to_owned()),
            ("DELETED", "2".to_owned())
        ]
    );
}

/// A cache kept by list-then-watch, resumed from the last resourceVersion
/// after every cut stream and relisted after every 410, ends equal to the
/// server's list (client-go's reflector contract, written out by hand).
pub async fn watch_across_drops_and_410s_loses_and_duplicates_nothing<R: Runtime>(ctx: Ctx<R>) {
    let client = ctx
        .rt
        .client(ctx.options().read_timeout(Duration::from_secs(5)));
    namespace::<R>(&client, "faulty").await;
    let maps = R::namespaced::<ConfigMap>(&client, "faulty");
    let mut cache = Cache::default();
    for i in 0..5 {
        R::create(&maps, &config_map(&format!("m-{i}"), &[("v", "0")]))
            .await
            .unwrap();
    }
    cache.relist::<R>(&maps).await;

    // Writes the cache has not seen, then three watch streams cut mid-way.
    for i in 5..10 {
        R::create(&maps, &config_map(&format!("m-{i}"), &[("v", "0")]))
            .await
            .unwrap();
    }
    for i in 0..5 {
        let patch = Patch::Merge(json!({"data": {"v": "1"}}));
        R::patch(&maps, &format!("m-{i}"), &patch).await.unwrap();
    }
    R::delete(&maps, "m-9").await.unwrap();
    ctx.server.faults().close_watches_after(3, 700);
    let mut reopened = 0;
    while cache.objects != server_state::<R>(&maps).await {
        reopened += cache.watch_until_the_stream_ends::<R>(&maps).await;
        assert!(reopened < 20, "no progress: {:?}", cache.objects);
    }
    assert!(cache.cut >= 1, "the fault cut no stream");

    // History compacted past the cache's resourceVersion: 410, relist.
    R::delete(&maps, "m-8").await.unwrap();
    R::create(&maps, &config_map("late", &[("v", "0")]))
        .await
        .unwrap();
    ctx.server.faults().compact();
    let relists = cache.relists;
    cache.watch_until_the_stream_ends::<R>(&maps).await;
    assert_eq!(cache.relists, relists + 1, "a 410 relists");
    assert_eq!(cache.objects, server_state::<R>(&maps).await);
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
    async fn relist<R: Runtime>(&mut self, maps: &R::Api<ConfigMap>) {
        let list = R::list(maps, &ListParams::default()).await.unwrap();
        self.resource_version = list.resource_version().unwrap().to_owned();
        self.objects = list.items.iter().map(entry).collect();
        self.relists += 1;
    }

    /// Watches from the cache's resourceVersion until the stream ends (cut,
    /// or a short server timeout) or expires (then relists); 1 when it was
    /// reopened at least once.
    async fn watch_until_the_stream_ends<R: Runtime>(&mut self, maps: &R::Api<ConfigMap>) -> u32 {
        let params = WatchParams {
            resource_version: Some(self.resource_version.clone()),
            timeout_seconds: Some(1),
            ..Default::default()
        };
        let mut events = match R::watch(maps, &params).await {
            Ok(events) => events,
            Err(e) if e.expired => {
                self.relist::<R>(maps).await;
                return 1;
            }
            Err(e) => panic!("{e}"),
        };
        while let Some(item) = R::next_event(&mut events).await {
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
                    self.relist::<R>(maps).await;
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

async fn server_state<R: Runtime>(maps: &R::Api<ConfigMap>) -> BTreeMap<String, String> {
    let list = R::list(maps, &ListParams::default()).await.unwrap();
    list.items.iter().map(entry).collect()
}

/// A watch the server closes after 300 bytes ends with an error item, not a
/// hang and not a clean end.
pub async fn cut_watch_ends_with_an_error_not_a_hang<R: Runtime>(ctx: Ctx<R>) {
    let client = ctx
        .rt
        .client(ctx.options().read_timeout(Duration::from_secs(5)));
    let maps = R::namespaced::<ConfigMap>(&client, "default");
    for i in 0..5 {
        R::create(&maps, &config_map(&format!("cut-{i}"), &[("k", "v")]))
            .await
            .unwrap();
    }
    ctx.server.faults().close_watches_after(1, 300);
    let params = WatchParams {
        resource_version: Some("0".into()),
        ..Default::default()
    };
    let mut watch = R::watch(&maps, &params).await.unwrap();
    let items = drain::<R, _>(&mut watch).await;
    assert!(items.len() < 6, "{items:?}");
    assert!(items.last().is_some_and(|i| i.is_err()), "{items:?}");
}

/// Two 429s, then a 503 with `Retry-After: 1`: the client retries each,
/// waits the second out, and the caller sees success.
pub async fn retries_429_and_503_with_retry_after<R: Runtime>(ctx: Ctx<R>) {
    let client = ctx.client();
    let maps = R::namespaced::<ConfigMap>(&client, "default");
    let before = ctx.statuses().len();
    ctx.server.faults().fail_requests(2, 429, 0);
    R::create(&maps, &config_map("retried", &[])).await.unwrap();
    ctx.server.faults().fail_requests(1, 503, 1);
    let started = Instant::now();
    R::get(&maps, "retried").await.unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "Retry-After: 1 was waited out"
    );
    assert_eq!(ctx.statuses()[before..], [429, 429, 201, 503, 200]);
}

/// A watch whose server goes silent ends with a read timeout on the body.
pub async fn stall_silent_watch_ends_in_a_timeout_error<R: Runtime>(ctx: Ctx<R>) {
    let client = ctx
        .rt
        .client(ctx.options().read_timeout(Duration::from_millis(500)));
    let maps = R::namespaced::<ConfigMap>(&client, "default");
    R::create(&maps, &config_map("quiet", &[])).await.unwrap();
    ctx.server.faults().stall_watches(1, 0);
    let params = WatchParams {
        resource_version: Some("0".into()),
        ..Default::default()
    };
    let started = Instant::now();
    let mut watch = R::watch(&maps, &params).await.unwrap();
    let items = drain::<R, _>(&mut watch).await;
    let last = items.last().expect("an error item");
    assert!(
        matches!(last, Err(e) if e.timeout == Some("body bytes")),
        "{items:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(10), "bounded");
}

/// A server that accepts and never answers: a get ends in a head timeout,
/// a watch too (after its retry), and a TLS handshake in a connect timeout.
pub async fn stall_server_that_accepts_and_never_answers_ends_in_a_timeout<R: Runtime>(
    ctx: Ctx<R>,
) {
    let addr = silent_server();
    let url = format!("http://{addr}");
    let client = ctx.rt.client(
        ClientOptions::url(&url, None)
            .read_timeout(Duration::from_millis(300))
            .max_retries(0),
    );
    let maps = R::namespaced::<ConfigMap>(&client, "default");
    let started = Instant::now();
    let err = R::get(&maps, "web").await.unwrap_err();
    assert_eq!(err.timeout, Some("response head"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(3));

    // A watch is retried after a timeout (client-go), then gives up the same way.
    let client = ctx.rt.client(
        ClientOptions::url(&url, None)
            .read_timeout(Duration::from_millis(300))
            .max_retries(1),
    );
    let maps = R::all::<ConfigMap>(&client);
    let started = Instant::now();
    let err = R::watch(&maps, &WatchParams::default())
        .await
        .err()
        .expect("no watch opens");
    assert!(err.is_timeout(), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));

    // TLS: the handshake stalls; the connect timeout ends it.
    let tls = windlass_proto::config::TlsDescription {
        ca: Some(Vec::new()),
        ..Default::default()
    };
    let client = ctx.rt.client(
        ClientOptions::url(format!("https://{addr}"), Some(tls))
            .connect_timeout(Duration::from_millis(300))
            .read_timeout(Duration::from_secs(1))
            .max_retries(0),
    );
    let maps = R::namespaced::<ConfigMap>(&client, "default");
    let started = Instant::now();
    let err = R::get(&maps, "web").await.unwrap_err();
    assert_eq!(err.timeout, Some(R::TLS_HANDSHAKE_STALL), "{err}");
    assert!(started.elapsed() < Duration::from_secs(3));
}

/// Status and scale subresources of a Deployment, and a label-selected
/// delete of a collection.
pub async fn status_scale_subresources_and_delete_collection<R: Runtime>(ctx: Ctx<R>) {
    let client = ctx.client();
    let deployments = R::namespaced::<Deployment>(&client, "default");
    let maps = R::namespaced::<ConfigMap>(&client, "default");
    let deployment: Deployment = serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}
    }))
    .unwrap();
    let mut created = R::create(&deployments, &deployment).await.unwrap();
    created.status = serde_json::from_value(json!({"replicas": 2})).unwrap();
    let replaced = R::replace_status(&deployments, "web", &created)
        .await
        .unwrap();
    assert_eq!(replaced.status.unwrap().replicas, Some(2));
    let patch = Patch::Merge(json!({"status": {"readyReplicas": 1}}));
    R::patch_status(&deployments, "web", &patch).await.unwrap();
    let status = R::get_status(&deployments, "web")
        .await
        .unwrap()
        .status
        .unwrap();
    assert_eq!((status.replicas, status.ready_replicas), (Some(2), Some(1)));
    let scale = R::get_scale(&deployments, "web").await.unwrap();
    assert_eq!(scale.spec.unwrap().replicas, Some(1));
    let patch = Patch::Merge(json!({"spec": {"replicas": 3}}));
    R::patch_scale(&deployments, "web", &patch).await.unwrap();
    let spec = R::get(&deployments, "web").await.unwrap().spec;
    assert_eq!(spec.replicas, Some(3));

    for i in 0..3 {
        let mut map = config_map(&format!("doomed-{i}"), &[]);
        map.metadata.labels = Some([("doomed".to_owned(), "yes".to_owned())].into());
        R::create(&maps, &map).await.unwrap();
    }
    R::create(&maps, &config_map("kept", &[])).await.unwrap();
    let selector = ListParams {
        label_selector: Some("doomed=yes".into()),
        ..Default::default()
    };
    R::delete_collection(&maps, &selector).await.unwrap();
    let left: Vec<_> = R::list(&maps, &ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|m| m.metadata.name)
        .collect();
    assert!(left.contains(&"kept".to_owned()), "{left:?}");
    assert!(!left.iter().any(|n| n.starts_with("doomed")), "{left:?}");
}

/// The server over plain HTTP (no TLS, no credentials); sequential
/// requests on one connection.
pub async fn plain_http_reaches_the_server_too<R: Runtime>(ctx: Ctx<R>) {
    let url = ctx.server.url();
    assert!(url.starts_with("http://"), "{url}");
    let client = ctx.rt.client(ClientOptions::url(url, None));
    let maps = R::namespaced::<ConfigMap>(&client, "default");
    R::create(&maps, &config_map("plain", &[])).await.unwrap();
    for _ in 0..3 {
        R::get(&maps, "plain").await.unwrap();
    }
}

/// The bearer-token context with its token replaced by an exec plugin
/// printing it: a cold burst of ten lists and two more requests run the
/// plugin once.
pub async fn exec_credential_plugin_runs_once_for_many_requests<R: Runtime>(ctx: Ctx<R>) {
    use std::os::unix::fs::PermissionsExt;
    let token = ctx
        .server
        .credentials()
        .expect("a TLS server has credentials")
        .token
        .clone();
    let dir = std::env::temp_dir().join(format!(
        "windlass-e2e-exec-{}-{}-{:?}",
        R::NAME,
        std::process::id(),
        std::thread::current().id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let runs = dir.join("runs");
    let stderr = dir.join("stderr");
    let script = dir.join("plugin.sh");
    let credential = json!({"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential", "status": {"token": token}});
    // The plugin's stderr is the client process's own (client-go:
    // `cmd.Stderr = os.Stderr`), so its prompts and errors reach the user:
    // the plugin compares its fd 2 with its parent's.
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho run >> '{runs}'\n\
             if [ \"$(readlink /proc/self/fd/2)\" = \"$(readlink /proc/$PPID/fd/2)\" ]; \
             then echo inherited >> '{stderr}'; \
             else echo \"not inherited: $(readlink /proc/self/fd/2)\" >> '{stderr}'; fi\n\
             echo '{credential}'\n",
            runs = runs.display(),
            stderr = stderr.display(),
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let exec = format!(
        "    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: {}\n      interactiveMode: Never\n",
        script.display()
    );
    let kubeconfig = ctx
        .server
        .kubeconfig()
        .replace(&format!("    token: {token}\n"), &exec);
    assert!(kubeconfig.contains("exec:"), "{kubeconfig}");
    let options = windlass_proto::config::ContextOptions {
        context: Some(TOKEN_CONTEXT.to_owned()),
        ..Default::default()
    };
    let config = windlass_proto::config::Kubeconfig::parse(kubeconfig.as_bytes(), None)
        .unwrap()
        .resolve(&options, &no_files)
        .unwrap();
    let client = ctx.rt.client(ClientOptions::config(config));
    let maps = R::namespaced::<ConfigMap>(&client, "default");
    // A cold burst: every request waits for the one plugin run.
    let params = ListParams::default();
    let burst: Vec<_> = (0..10).map(|_| R::list(&maps, &params)).collect();
    for listed in futures_util::future::join_all(burst).await {
        listed.unwrap();
    }
    R::create(&maps, &config_map("exec", &[])).await.unwrap();
    R::get(&maps, "exec").await.unwrap();
    assert_eq!(std::fs::read_to_string(&runs).unwrap().lines().count(), 1);
    if std::path::Path::new("/proc/self/fd/2").exists() {
        assert_eq!(
            std::fs::read_to_string(&stderr).unwrap().trim(),
            "inherited",
            "the plugin's stderr is the client's"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
