//! windlass-blocking end to end against windlass-apiserver over TLS with
//! client-certificate auth. The shared suite (`windlass_testkit::scenarios`,
//! one test per scenario: `e2e_blocking::<scenario>`) runs through the
//! facade below; the tests after it are windlass-blocking's own (a hook,
//! the TLS server name, a watch's cancel handle, a followed log).

mod support;

use std::future::Future;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use k8s_openapi::api::autoscaling::v1::Scale;
use k8s_openapi::api::core::v1::ConfigMap;
use serde_json::Value;
use support::{Harness, within};
use windlass_blocking::{
    Api, Call, Client, ClientBuilder, Controller, ControllerHandle, Discovery, ElectorHandle,
    Error, Informer, LeaderElector, Watch,
};
use windlass_proto::controller::{Counters, Outcome};
use windlass_proto::discovery::GroupVersionKind;
use windlass_proto::dynamic::{DynamicObject, PartialObjectMetadata};
use windlass_proto::election::Config as ElectionConfig;
use windlass_proto::informer::{InformerConfig, Notification};
use windlass_proto::list::ObjectList;
use windlass_proto::object::{Object, ObjectKey};
use windlass_proto::params::{ListParams, WatchParams};
use windlass_proto::ratelimit::RateLimiter;
use windlass_proto::request::{DeleteParams, Patch, PatchParams, PostParams};
use windlass_proto::resource::{ApiResource, TopLevelScope};
use windlass_proto::retry::RequestKind;
use windlass_proto::watch::WatchEvent;
use windlass_testkit::scenarios::{
    self, BoxFuture, ClientOptions, Discovering, Failure, Kind, PlainHttpThroughAProxy, Proxying,
    Runners, Runtime, Target,
};

windlass_testkit::e2e_suite! {
    e2e_blocking: Blocking;
    runs [Core, Discovery, Runners, Proxy];
    lacks [H2 => "windlass-blocking speaks HTTP/1.1 only (ureq): one connection per watch, no shards"];
}

/// windlass-blocking behind the suite's async facade: every `async fn`
/// below makes its blocking call and completes in its first poll; the
/// scenario is driven by `scenarios::block_on` (poll, park, poll) and
/// background work runs on threads.
struct Blocking;

fn failure(e: Error) -> Failure {
    Failure {
        code: e.api().map(|a| a.code()),
        conflict: e.is_conflict(),
        already_exists: e.is_already_exists(),
        not_found: e.is_not_found(),
        expired: e.is_expired(),
        timeout: match &e {
            Error::Timeout { waiting_for, .. } => Some(*waiting_for),
            _ => None,
        },
        sync_timeout: matches!(e, Error::SyncTimeout { .. }),
        proxy: e.proxy().cloned(),
        message: e.to_string(),
    }
}

impl Runtime for Blocking {
    const NAME: &'static str = "blocking";
    const TLS_HANDSHAKE_STALL: &'static str = "connection";
    type Client = Client;
    type Api<K: Kind> = Api<K>;
    type Watch<K: Kind> = Watch<K>;

    fn block_on<T>(&self, future: impl Future<Output = T>) -> T {
        scenarios::block_on(future)
    }

    async fn sleep(duration: Duration) {
        std::thread::sleep(duration)
    }

    fn client(&self, options: ClientOptions) -> Client {
        let mut builder = match options.target {
            Target::Config(config) => ClientBuilder::from_config(&config).unwrap(),
            Target::Url(url, tls) => ClientBuilder::new(url, tls.map(|t| *t)),
        };
        if let Some(timeout) = options.read_timeout {
            builder = builder.read_timeout(timeout);
        }
        if let Some(timeout) = options.connect_timeout {
            builder = builder.connect_timeout(timeout);
        }
        if let Some(retries) = options.max_retries {
            builder = builder.max_retries(retries);
        }
        if let Some(format) = options.format {
            builder = builder.format(format);
        }
        if let Some(proxy) = options.proxy {
            builder = builder.proxy(proxy);
        }
        if let Some(env) = options.proxy_env {
            builder = builder.proxy_env(env);
        }
        builder.build().unwrap()
    }

    fn default_namespace(client: &Client) -> String {
        client.default_namespace().to_owned()
    }

    fn namespaced<K>(client: &Client, namespace: &str) -> Api<K>
    where
        K: Kind + k8s_openapi::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
    {
        Api::namespaced(client.clone(), namespace).unwrap()
    }

    fn cluster<K>(client: &Client) -> Api<K>
    where
        K: Kind + k8s_openapi::Resource<Scope = k8s_openapi::ClusterResourceScope>,
    {
        Api::cluster(client.clone()).unwrap()
    }

    fn all<K>(client: &Client) -> Api<K>
    where
        K: Kind + k8s_openapi::Resource,
        K::Scope: TopLevelScope,
    {
        Api::all(client.clone()).unwrap()
    }

    fn dynamic(
        client: &Client,
        resource: &ApiResource,
        namespace: Option<&str>,
    ) -> Api<DynamicObject> {
        Api::dynamic(client.clone(), resource.clone(), namespace).unwrap()
    }

    async fn create<K: Kind>(api: &Api<K>, object: &K) -> Result<K, Failure> {
        api.create(&PostParams::default(), object).map_err(failure)
    }

    async fn get<K: Kind>(api: &Api<K>, name: &str) -> Result<K, Failure> {
        api.get(name).map_err(failure)
    }

    async fn get_opt<K: Kind>(api: &Api<K>, name: &str) -> Result<Option<K>, Failure> {
        api.get_opt(name).map_err(failure)
    }

    async fn replace<K: Kind>(api: &Api<K>, name: &str, object: &K) -> Result<K, Failure> {
        api.replace(name, &PostParams::default(), object)
            .map_err(failure)
    }

    async fn patch<K: Kind>(api: &Api<K>, name: &str, patch: &Patch<Value>) -> Result<K, Failure> {
        api.patch(name, &PatchParams::default(), patch)
            .map_err(failure)
    }

    async fn apply<K: Kind>(
        api: &Api<K>,
        name: &str,
        manager: &str,
        force: bool,
        object: &Value,
    ) -> Result<K, Failure> {
        api.apply(name, manager, force, object).map_err(failure)
    }

    async fn delete<K: Kind>(api: &Api<K>, name: &str) -> Result<(), Failure> {
        api.delete(name, &DeleteParams::default())
            .map(drop)
            .map_err(failure)
    }

    async fn delete_collection<K: Kind>(api: &Api<K>, params: &ListParams) -> Result<(), Failure> {
        api.delete_collection(&DeleteParams::default(), params)
            .map(drop)
            .map_err(failure)
    }

    async fn list<K: Kind>(api: &Api<K>, params: &ListParams) -> Result<ObjectList<K>, Failure> {
        api.list(params).map_err(failure)
    }

    async fn list_pages<K: Kind>(
        api: &Api<K>,
        params: &ListParams,
    ) -> Result<Vec<ObjectList<K>>, Failure> {
        api.list_pages(params)
            .collect::<Result<_, _>>()
            .map_err(failure)
    }

    async fn list_all<K: Kind>(api: &Api<K>, params: &ListParams) -> Result<Vec<K>, Failure> {
        api.list_all(params).map_err(failure)
    }

    async fn metadata_get<K: Kind>(
        api: &Api<K>,
        name: &str,
    ) -> Result<PartialObjectMetadata, Failure> {
        api.metadata().get(name).map_err(failure)
    }

    async fn metadata_list<K: Kind>(
        api: &Api<K>,
        params: &ListParams,
    ) -> Result<ObjectList<PartialObjectMetadata>, Failure> {
        api.metadata().list(params).map_err(failure)
    }

    async fn get_status<K: Kind>(api: &Api<K>, name: &str) -> Result<K, Failure> {
        api.get_status(name).map_err(failure)
    }

    async fn replace_status<K: Kind>(api: &Api<K>, name: &str, object: &K) -> Result<K, Failure> {
        api.replace_status(name, &PostParams::default(), object)
            .map_err(failure)
    }

    async fn patch_status<K: Kind>(
        api: &Api<K>,
        name: &str,
        patch: &Patch<Value>,
    ) -> Result<K, Failure> {
        api.patch_status(name, &PatchParams::default(), patch)
            .map_err(failure)
    }

    async fn get_scale<K: Kind>(api: &Api<K>, name: &str) -> Result<Scale, Failure> {
        api.get_scale(name).map_err(failure)
    }

    async fn patch_scale<K: Kind>(
        api: &Api<K>,
        name: &str,
        patch: &Patch<Value>,
    ) -> Result<Scale, Failure> {
        api.patch_scale(name, &PatchParams::default(), patch)
            .map_err(failure)
    }

    async fn watch<K: Kind>(api: &Api<K>, params: &WatchParams) -> Result<Self::Watch<K>, Failure> {
        api.watch(params).map_err(failure)
    }

    async fn next_event<K: Kind>(
        watch: &mut Self::Watch<K>,
    ) -> Option<Result<WatchEvent<K>, Failure>> {
        watch.next().map(|item| item.map_err(failure))
    }
}

impl Discovering for Blocking {
    type Discovery = Discovery;

    async fn discover(client: &Client) -> Result<Discovery, Failure> {
        Discovery::run(client).map_err(failure)
    }

    async fn rediscover(discovery: &mut Discovery) -> Result<(), Failure> {
        discovery.refresh().map_err(failure)
    }

    fn discovered(discovery: &Discovery) -> &windlass_proto::discovery::Discovery {
        discovery.discovered()
    }

    fn dynamic_by_gvk(
        discovery: &Discovery,
        gvk: &GroupVersionKind,
        namespace: Option<&str>,
    ) -> Result<Api<DynamicObject>, Failure> {
        discovery.dynamic(gvk, namespace).map_err(failure)
    }

    fn dynamic_for_kind(
        discovery: &Discovery,
        group: &str,
        kind: &str,
        namespace: Option<&str>,
    ) -> Result<Api<DynamicObject>, Failure> {
        discovery
            .dynamic_for_kind(group, kind, namespace)
            .map_err(failure)
    }

    fn has_fallen_back(client: &Client, resource: &ApiResource) -> bool {
        client.formats().has_fallen_back(resource)
    }

    fn formats(client: &Client) -> windlass_proto::api::Formats {
        client.formats().clone()
    }

    async fn send_get_for_bytes(
        client: &Client,
        request: http::Request<bytes::Bytes>,
        resource: &'static str,
    ) -> Result<(http::response::Parts, bytes::Bytes), Failure> {
        let call = Call {
            verb: "get",
            kind: RequestKind::Get,
            resource,
        };
        client.send_for_bytes(request, call).map_err(failure)
    }
}

/// ureq writes only origin-form request lines: an http:// server is tunnelled.
impl Proxying for Blocking {
    const PLAIN_HTTP_THROUGH_A_PROXY: PlainHttpThroughAProxy = PlainHttpThroughAProxy::Tunnel;
}

impl Runners for Blocking {
    type Informer<K: Kind + Object> = Informer<K>;
    type Controller<K: Kind + Object> = Controller<K>;
    type ControllerHandle = ControllerHandle;
    type ElectorHandle = ElectorHandle;
    type Task<T: Send + 'static> = JoinHandle<T>;

    fn spawn<T: Send + 'static>(
        &self,
        future: impl Future<Output = T> + Send + 'static,
    ) -> JoinHandle<T> {
        std::thread::spawn(move || scenarios::block_on(future))
    }

    async fn join<T: Send + 'static>(task: JoinHandle<T>) -> T {
        task.join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    }

    fn informer<K: Kind + Object>(api: &Api<K>) -> Informer<K> {
        Informer::new(api, InformerConfig::default())
    }

    fn add_handler<K: Kind + Object>(
        informer: &Informer<K>,
        handler: impl FnMut(Notification<K>) + Send + 'static,
    ) {
        informer.add_handler(None, handler).unwrap();
    }

    fn start<K: Kind + Object>(&self, informer: &Informer<K>) -> JoinHandle<Result<(), Failure>> {
        let running = informer.start();
        std::thread::spawn(move || running.join().unwrap().map_err(failure))
    }

    async fn wait_for_sync<K: Kind + Object>(
        informer: &Informer<K>,
        timeout: Duration,
    ) -> Result<(), Failure> {
        informer.wait_for_sync(timeout).map_err(failure)
    }

    fn stop<K: Kind + Object>(informer: &Informer<K>) {
        informer.stop();
    }

    fn is_running<K: Kind + Object>(informer: &Informer<K>) -> bool {
        informer.is_running()
    }

    fn lister_list<K: Kind + Object>(informer: &Informer<K>) -> Vec<Arc<K>> {
        informer.lister().list()
    }

    fn lister_list_namespace<K: Kind + Object>(
        informer: &Informer<K>,
        namespace: &str,
    ) -> Vec<Arc<K>> {
        informer.lister().list_namespace(namespace)
    }

    fn lister_get<K: Kind + Object>(informer: &Informer<K>, key: &ObjectKey) -> Option<Arc<K>> {
        informer.lister().get(key)
    }

    fn controller<K: Kind + Object, L: RateLimiter<ObjectKey> + Send + 'static>(
        informer: Informer<K>,
        workers: usize,
        limiter: Option<L>,
    ) -> Controller<K> {
        let controller = Controller::new(informer).workers(workers);
        match limiter {
            Some(limiter) => controller.rate_limiter(limiter),
            None => controller,
        }
    }

    fn controller_handle<K: Kind + Object>(controller: &Controller<K>) -> ControllerHandle {
        controller.handle()
    }

    async fn run_controller<K: Kind + Object>(
        controller: Controller<K>,
        reconcile: impl Fn(ObjectKey) -> BoxFuture<Result<Outcome, String>> + Send + Sync + 'static,
    ) -> Result<Counters, Failure> {
        controller
            .run(move |key| scenarios::block_on(reconcile(key)))
            .map_err(failure)
    }

    fn shut_down(handle: &ControllerHandle) {
        handle.shut_down();
    }

    fn enqueue(handle: &ControllerHandle, key: ObjectKey) {
        handle.enqueue(key);
    }

    fn counters(handle: &ControllerHandle) -> Counters {
        handle.counters()
    }

    fn campaign(
        &self,
        client: Client,
        config: ElectionConfig,
        started: Box<dyn FnOnce() + Send>,
        stopped: Box<dyn FnOnce() + Send>,
    ) -> (ElectorHandle, JoinHandle<Result<(), Failure>>) {
        let elector = LeaderElector::new(client, config).unwrap();
        let handle = elector.handle();
        let task = std::thread::spawn(move || {
            elector
                .run(move |leadership| {
                    started();
                    leadership.lost();
                    stopped();
                })
                .map_err(failure)
        });
        (handle, task)
    }

    fn is_leader(handle: &ElectorHandle) -> bool {
        handle.is_leader()
    }

    fn leader(handle: &ElectorHandle) -> Option<String> {
        handle.leader()
    }

    fn stop_campaign(handle: &ElectorHandle) {
        handle.stop();
    }
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
