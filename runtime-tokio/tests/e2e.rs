//! windlass-tokio runs the shared end-to-end suite
//! (`windlass_testkit::scenarios`) against windlass-apiserver over TLS with
//! client-certificate auth: this file is the suite's facade over
//! windlass-tokio and the one macro line that generates a test per scenario
//! (`e2e_tokio::<scenario>`). The client runs on a tokio runtime of its
//! own, the server on another.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use futures_util::Stream;
use windlass_proto::object::Object;
use windlass_proto::watch::WatchEvent;
use windlass_testkit::scenarios::{
    ClientOptions, Discovering, Failure, H2Options, Kind, PlainHttpThroughAProxy, Proxying,
    Runners, Runtime, Sharding, Target,
};
use windlass_tokio::{
    Api, Client, ClientBuilder, Controller, ControllerHandle, ElectorHandle, Error, Informer,
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

windlass_testkit::async_facade!(failure, windlass_tokio);

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

    windlass_testkit::async_facade!(runtime, windlass_tokio);
}

impl Discovering for Tokio {
    windlass_testkit::async_facade!(discovering, windlass_tokio);
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

    fn start<K: Kind + Object>(
        &self,
        informer: &Informer<K>,
    ) -> tokio::task::JoinHandle<Result<(), Failure>> {
        let _runtime = self.runtime.enter();
        let running = informer.start();
        self.runtime
            .spawn(async move { running.await.unwrap().map_err(failure) })
    }

    windlass_testkit::async_facade!(runners, windlass_tokio);
}
