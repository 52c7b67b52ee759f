//! windlass-smol end to end against windlass-apiserver over TLS with
//! client-certificate auth: the shared suite (`windlass_testkit::scenarios`)
//! run twice, on a smol `Executor` (`e2e_smol::<scenario>`) and on
//! async-std's executor (`e2e_async_std::<scenario>`), the client's
//! connections spawned on that executor. The server runs on a tokio runtime
//! of its own (a dev-dependency only).

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
use windlass_smol::{
    Api, Call, Client, ClientBuilder, Controller, ControllerHandle, Discovery, ElectorHandle,
    Error, Informer, JoinHandle, LeaderElector, Spawner,
};
use windlass_testkit::scenarios::{
    BoxFuture, ClientOptions, Discovering, Failure, H2Options, Kind, PlainHttpThroughAProxy,
    Proxying, Runners, Runtime, Sharding, Target,
};

windlass_testkit::e2e_suite! {
    e2e_smol: Smol::<OnSmol>::new();
    runs [Core, Discovery, Runners, H2, Proxy];
    lacks [];
}

windlass_testkit::e2e_suite! {
    e2e_async_std: Smol::<OnAsyncStd>::new();
    runs [Core, Discovery, Runners, H2, Proxy];
    lacks [];
}

/// The executor windlass-smol runs on in a test.
trait Executor: Send + Sync + 'static {
    const NAME: &'static str;
    fn new() -> Self;
    fn spawner(&self) -> Spawner;
    fn block_on<T>(&self, future: impl Future<Output = T>) -> T;
}

/// A smol `Executor`, run by the scenario's thread.
struct OnSmol(Arc<smol::Executor<'static>>);

impl Executor for OnSmol {
    const NAME: &'static str = "smol";

    fn new() -> Self {
        OnSmol(Arc::new(smol::Executor::new()))
    }

    fn spawner(&self) -> Spawner {
        Spawner::from(self.0.clone())
    }

    fn block_on<T>(&self, future: impl Future<Output = T>) -> T {
        smol::block_on(self.0.run(future))
    }
}

/// async-std's global executor.
struct OnAsyncStd;

impl Executor for OnAsyncStd {
    const NAME: &'static str = "async_std";

    fn new() -> Self {
        OnAsyncStd
    }

    fn spawner(&self) -> Spawner {
        Spawner::new(|future| {
            async_std::task::spawn(future);
        })
    }

    fn block_on<T>(&self, future: impl Future<Output = T>) -> T {
        async_std::task::block_on(future)
    }
}

/// windlass-smol on executor `E`.
struct Smol<E> {
    executor: E,
}

impl<E: Executor> Smol<E> {
    fn new() -> Self {
        Smol { executor: E::new() }
    }

    /// The builder for `options` (the facade's `client`, and `h2_client`
    /// with more set on it).
    fn builder(&self, options: ClientOptions) -> ClientBuilder {
        let mut builder = match options.target {
            Target::Config(config) => {
                ClientBuilder::from_config(&config, self.executor.spawner()).unwrap()
            }
            Target::Url(url, tls) => ClientBuilder::new(
                url,
                tls.map(|t| t.client_config().unwrap()),
                self.executor.spawner(),
            ),
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

impl<E: Executor> Sharding for Smol<E> {
    fn h2_client(&self, options: ClientOptions, h2: H2Options) -> Client {
        let mut builder = self
            .builder(options)
            .http2_watches(h2.http2_watches)
            .flow_control(h2.flow_control);
        if let Some(shards) = h2.watch_shards {
            builder = builder.watch_shards(shards);
        }
        builder.build().unwrap()
    }
}

impl<E: Executor> Runtime for Smol<E> {
    const NAME: &'static str = E::NAME;
    const TLS_HANDSHAKE_STALL: &'static str = "connection";
    type Client = Client;
    type Api<K: Kind> = Api<K>;
    type Watch<K: Kind> = Pin<Box<dyn Stream<Item = Result<WatchEvent<K>, Error>>>>;

    fn block_on<T>(&self, future: impl Future<Output = T>) -> T {
        self.executor.block_on(future)
    }

    async fn sleep(duration: Duration) {
        // async-io's timer works under any executor.
        smol::Timer::after(duration).await;
    }

    fn client(&self, options: ClientOptions) -> Client {
        self.builder(options).build().unwrap()
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

impl<E: Executor> Discovering for Smol<E> {
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

/// The transport writes absolute-form requests to a forwarding proxy.
impl<E: Executor> Proxying for Smol<E> {
    const PLAIN_HTTP_THROUGH_A_PROXY: PlainHttpThroughAProxy = PlainHttpThroughAProxy::AbsoluteForm;
}

impl<E: Executor> Runners for Smol<E> {
    type Informer<K: Kind + Object> = Informer<K>;
    type Controller<K: Kind + Object> = Controller<K>;
    type ControllerHandle = ControllerHandle;
    type ElectorHandle = ElectorHandle;
    type Task<T: Send + 'static> = JoinHandle<T>;

    fn spawn<T: Send + 'static>(
        &self,
        future: impl Future<Output = T> + Send + 'static,
    ) -> JoinHandle<T> {
        self.executor.spawner().spawn_with_handle(future)
    }

    async fn join<T: Send + 'static>(task: JoinHandle<T>) -> T {
        task.await.expect("the task ran to its end, not aborted")
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
        self.spawn(async move {
            running
                .await
                .expect("the informer ran to its end")
                .map_err(failure)
        })
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
    ) -> (ElectorHandle, JoinHandle<Result<(), Failure>>) {
        let elector = LeaderElector::new(client, config).unwrap();
        let handle = elector.handle();
        let run = elector.run(move |leadership| async move {
            started();
            leadership.lost().await;
            stopped();
        });
        let task = self.spawn(async move { run.await.map_err(failure) });
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
