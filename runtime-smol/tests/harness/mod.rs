//! What `e2e_runners.rs` uses: windlass-apiserver
//! on its own tokio runtime (a dev-dependency only), each scenario run on a
//! smol `Executor` (`e2e_smol_*`) or on async-std's executor
//! (`e2e_async_std_*`) on an 8 MiB stack thread, the client's background
//! work spawned on that executor, every scenario under a deadline.
#![allow(dead_code)]

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use windlass_proto::config::{ContextOptions, Kubeconfig};
use windlass_smol::{Client, ClientBuilder, Spawner};
use windlass_testkit::apiserver::{ApiServerBuilder, RunningServer};

/// What a scenario gets: the server (kubeconfig, faults, model) and the
/// executor's spawner.
#[derive(Clone)]
pub struct Ctx {
    pub server: Arc<RunningServer>,
    pub spawner: Spawner,
}

impl Ctx {
    /// A client builder for the server's current context (client certificates).
    pub fn builder(&self) -> ClientBuilder {
        let kubeconfig = self.server.kubeconfig();
        assert!(
            kubeconfig.contains("client-certificate-data"),
            "the current context authenticates with a client certificate"
        );
        let kubeconfig = Kubeconfig::parse(kubeconfig.as_bytes(), None).unwrap();
        let config = kubeconfig
            .resolve(&ContextOptions::default(), &no_files)
            .unwrap();
        ClientBuilder::from_config(&config, self.spawner.clone()).unwrap()
    }

    pub fn client(&self) -> Client {
        self.builder().build().unwrap()
    }
}

fn no_files(p: &std::path::Path) -> std::io::Result<Vec<u8>> {
    Err(std::io::Error::new(
        std::io::ErrorKind::NotFound,
        p.display().to_string(),
    ))
}

#[derive(Clone, Copy)]
pub enum Executor {
    Smol,
    AsyncStd,
}

/// Starts windlass-apiserver on its own tokio runtime, runs `scenario` on
/// `executor` within `secs`, and stops the server.
pub fn run<F, Fut>(executor: Executor, server: ApiServerBuilder, secs: u64, scenario: F)
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
    let server = Arc::new(server);
    let ctx = {
        let server = server.clone();
        move |spawner| Ctx { server, spawner }
    };
    // 8 MiB, not a test thread's 2 MiB: an unoptimised build decodes some
    // kinds with about 2 MiB of stack.
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
    // Tasks still detached on async-std may hold a clone; dropping it stops the server too.
    if let Ok(server) = Arc::try_unwrap(server) {
        let _ = runtime.block_on(async {
            tokio::time::timeout(Duration::from_secs(10), server.shutdown()).await
        });
    }
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

/// `body`, or a panic after `secs` (async-io's timer works on any executor).
pub async fn within<T>(secs: u64, body: impl Future<Output = T>) -> T {
    smol::future::or(body, async {
        smol::Timer::after(Duration::from_secs(secs)).await;
        panic!("did not finish within {secs} s")
    })
    .await
}

pub async fn sleep(ms: u64) {
    smol::Timer::after(Duration::from_millis(ms)).await;
}

/// One scenario as two tests: on smol's executor and on async-std's.
#[macro_export]
macro_rules! on_both_executors {
    ($smol:ident, $async_std:ident, $scenario:ident) => {
        on_both_executors!($smol, $async_std, $scenario, ApiServer::builder(), 60);
    };
    ($smol:ident, $async_std:ident, $scenario:ident, $server:expr, $secs:expr) => {
        #[test]
        fn $smol() {
            harness::run(harness::Executor::Smol, $server, $secs, $scenario);
        }

        #[test]
        fn $async_std() {
            harness::run(harness::Executor::AsyncStd, $server, $secs, $scenario);
        }
    };
}
