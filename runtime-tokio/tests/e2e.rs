//! windlass-tokio runs the shared end-to-end suite
//! (`windlass_testkit::scenarios`) against windlass-apiserver over TLS with
//! client-certificate auth: this file is the suite's facade over
//! windlass-tokio and the one macro line that generates a test per scenario
//! (`e2e_tokio::<scenario>`). The client runs on a tokio runtime of its
//! own, the server on another.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{Stream, StreamExt, TryStreamExt};
use k8s_openapi::api::autoscaling::v1::Scale;
use serde_json::Value;
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
    BoxFuture, ClientOptions, Discovering, Failure, H2Options, Kind, PlainHttpThroughAProxy,
    Proxying, Runners, Runtime, Sharding, Target,
};
use windlass_tokio::{
    Api, Call, Client, ClientBuilder, Controller, ControllerHandle, Discovery, ElectorHandle,
    Error, Informer, LeaderElector,
};

windlass_testkit::e2e_suite! {
    e2e_tokio: Tokio::new();
    runs [Core, Discovery, Runners, H2, Proxy];
    lacks [];
}

/// windlass-tokio on a multi-threaded runtime of two workers.
struct Tokio {
    runtime: tokio::runtime::Runtime,
}

impl Tokio {
    fn new() -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        Tokio { runtime }
    }
}

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

/// The builder for `options` (the facade's `client`, and `h2_client` with
/// more set on it).
fn builder(options: ClientOptions) -> ClientBuilder {
    let mut builder = match options.target {
        Target::Config(config) => ClientBuilder::from_config(&config).unwrap(),
        Target::Url(url, tls) => ClientBuilder::new(url, tls.map(|t| t.client_config().unwrap())),
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
    builder
}

impl Sharding for Tokio {
    fn h2_client(&self, options: ClientOptions, h2: H2Options) -> Client {
        let mut builder = builder(options)
            .http2_watches(h2.http2_watches)
            .flow_control(h2.flow_control);
        if let Some(shards) = h2.watch_shards {
            builder = builder.watch_shards(shards);
        }
        let _runtime = self.runtime.enter();
        builder.build().unwrap()
    }
}

impl Runtime for Tokio {
    const NAME: &'static str = "tokio";
    const TLS_HANDSHAKE_STALL: &'static str = "connection";
    type Client = Client;
    type Api<K: Kind> = Api<K>;
    type Watch<K: Kind> = Pin<Box<dyn Stream<Item = Result<WatchEvent<K>, Error>>>>;

    fn block_on<T>(&self, future: impl Future<Output = T>) -> T {
        self.runtime.block_on(future)
    }

    fn sleep(duration: Duration) -> impl Future<Output = ()> + Send + 'static {
        tokio::time::sleep(duration)
    }

    fn client(&self, options: ClientOptions) -> Client {
        let _runtime = self.runtime.enter();
        builder(options).build().unwrap()
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
        api.create(&PostParams::default(), object)
            .await
            .map_err(failure)
    }

    async fn get<K: Kind>(api: &Api<K>, name: &str) -> Result<K, Failure> {
        api.get(name).await.map_err(failure)
    }

    async fn get_opt<K: Kind>(api: &Api<K>, name: &str) -> Result<Option<K>, Failure> {
        api.get_opt(name).await.map_err(failure)
    }

    async fn replace<K: Kind>(api: &Api<K>, name: &str, object: &K) -> Result<K, Failure> {
        api.replace(name, &PostParams::default(), object)
            .await
            .map_err(failure)
    }

    async fn patch<K: Kind>(api: &Api<K>, name: &str, patch: &Patch<Value>) -> Result<K, Failure> {
        api.patch(name, &PatchParams::default(), patch)
            .await
            .map_err(failure)
    }

    async fn apply<K: Kind>(
        api: &Api<K>,
        name: &str,
        manager: &str,
        force: bool,
        object: &Value,
    ) -> Result<K, Failure> {
        api.apply(name, manager, force, object)
            .await
            .map_err(failure)
    }

    async fn delete<K: Kind>(api: &Api<K>, name: &str) -> Result<(), Failure> {
        api.delete(name, &DeleteParams::default())
            .await
            .map(drop)
            .map_err(failure)
    }

    async fn delete_collection<K: Kind>(api: &Api<K>, params: &ListParams) -> Result<(), Failure> {
        api.delete_collection(&DeleteParams::default(), params)
            .await
            .map(drop)
            .map_err(failure)
    }

    async fn list<K: Kind>(api: &Api<K>, params: &ListParams) -> Result<ObjectList<K>, Failure> {
        api.list(params).await.map_err(failure)
    }

    async fn list_pages<K: Kind>(
        api: &Api<K>,
        params: &ListParams,
    ) -> Result<Vec<ObjectList<K>>, Failure> {
        api.list_pages(params).try_collect().await.map_err(failure)
    }

    async fn list_all<K: Kind>(api: &Api<K>, params: &ListParams) -> Result<Vec<K>, Failure> {
        api.list_stream(params).try_collect().await.map_err(failure)
    }

    async fn metadata_get<K: Kind>(
        api: &Api<K>,
        name: &str,
    ) -> Result<PartialObjectMetadata, Failure> {
        api.metadata().get(name).await.map_err(failure)
    }

    async fn metadata_list<K: Kind>(
        api: &Api<K>,
        params: &ListParams,
    ) -> Result<ObjectList<PartialObjectMetadata>, Failure> {
        api.metadata().list(params).await.map_err(failure)
    }

    async fn get_status<K: Kind>(api: &Api<K>, name: &str) -> Result<K, Failure> {
        api.get_status(name).await.map_err(failure)
    }

    async fn replace_status<K: Kind>(api: &Api<K>, name: &str, object: &K) -> Result<K, Failure> {
        api.replace_status(name, &PostParams::default(), object)
            .await
            .map_err(failure)
    }

    async fn patch_status<K: Kind>(
        api: &Api<K>,
        name: &str,
        patch: &Patch<Value>,
    ) -> Result<K, Failure> {
        api.patch_status(name, &PatchParams::default(), patch)
            .await
            .map_err(failure)
    }

    async fn get_scale<K: Kind>(api: &Api<K>, name: &str) -> Result<Scale, Failure> {
        api.get_scale(name).await.map_err(failure)
    }

    async fn patch_scale<K: Kind>(
        api: &Api<K>,
        name: &str,
        patch: &Patch<Value>,
    ) -> Result<Scale, Failure> {
        api.patch_scale(name, &PatchParams::default(), patch)
            .await
            .map_err(failure)
    }

    async fn watch<K: Kind>(api: &Api<K>, params: &WatchParams) -> Result<Self::Watch<K>, Failure> {
        let events = api.watch(params).await.map_err(failure)?;
        Ok(Box::pin(events))
    }

    async fn next_event<K: Kind>(
        watch: &mut Self::Watch<K>,
    ) -> Option<Result<WatchEvent<K>, Failure>> {
        watch.next().await.map(|item| item.map_err(failure))
    }
}

impl Discovering for Tokio {
    type Discovery = Discovery;

    async fn discover(client: &Client) -> Result<Discovery, Failure> {
        Discovery::run(client).await.map_err(failure)
    }

    async fn rediscover(discovery: &mut Discovery) -> Result<(), Failure> {
        discovery.refresh().await.map_err(failure)
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
        client.send_for_bytes(request, call).await.map_err(failure)
    }
}

/// hyper-util writes absolute-form requests to a forwarding proxy.
impl Proxying for Tokio {
    const PLAIN_HTTP_THROUGH_A_PROXY: PlainHttpThroughAProxy = PlainHttpThroughAProxy::AbsoluteForm;
}

impl Runners for Tokio {
    type Informer<K: Kind + Object> = Informer<K>;
    type Controller<K: Kind + Object> = Controller<K>;
    type ControllerHandle = ControllerHandle;
    type ElectorHandle = ElectorHandle;
    type Task<T: Send + 'static> = tokio::task::JoinHandle<T>;

    fn spawn<T: Send + 'static>(
        &self,
        future: impl Future<Output = T> + Send + 'static,
    ) -> tokio::task::JoinHandle<T> {
        self.runtime.spawn(future)
    }

    async fn join<T: Send + 'static>(task: tokio::task::JoinHandle<T>) -> T {
        task.await
            .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
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

    fn start<K: Kind + Object>(
        &self,
        informer: &Informer<K>,
    ) -> tokio::task::JoinHandle<Result<(), Failure>> {
        let _runtime = self.runtime.enter();
        let running = informer.start();
        self.runtime
            .spawn(async move { running.await.unwrap().map_err(failure) })
    }

    async fn wait_for_sync<K: Kind + Object>(
        informer: &Informer<K>,
        timeout: Duration,
    ) -> Result<(), Failure> {
        informer.wait_for_sync(timeout).await.map_err(failure)
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
        controller.run(reconcile).await.map_err(failure)
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
    ) -> (ElectorHandle, tokio::task::JoinHandle<Result<(), Failure>>) {
        let elector = LeaderElector::new(client, config).unwrap();
        let handle = elector.handle();
        let run = elector.run(move |leadership| async move {
            started();
            leadership.lost().await;
            stopped();
        });
        let task = self
            .runtime
            .spawn(async move { run.await.map_err(failure) });
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
