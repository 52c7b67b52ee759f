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

use futures_util::Stream;
use windlass_proto::object::Object;
use windlass_proto::watch::WatchEvent;
use windlass_smol::{
    Api, Client, ClientBuilder, Controller, ControllerHandle, ElectorHandle, Error, Informer,
    JoinHandle, Spawner,
};
use windlass_testkit::scenarios::{
    ClientOptions, Discovering, Failure, H2Options, Kind, PlainHttpThroughAProxy, Proxying,
    Runners, Runtime, Sharding, Target,
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

windlass_testkit::async_facade!(failure, windlass_smol);

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

    windlass_testkit::async_facade!(runtime, windlass_smol);
}

impl<E: Executor> Discovering for Smol<E> {
    windlass_testkit::async_facade!(discovering, windlass_smol);
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

    fn start<K: Kind + Object>(&self, informer: &Informer<K>) -> JoinHandle<Result<(), Failure>> {
        let running = informer.start();
        self.spawn(async move {
            running
                .await
                .expect("the informer ran to its end")
                .map_err(failure)
        })
    }

    windlass_testkit::async_facade!(runners, windlass_smol);
}
