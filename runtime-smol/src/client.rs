//! The client: windlass-async's [`Client`](windlass_async::Client) core over
//! this crate's connections (the `pools` module), with the caller's
//! [`Spawner`] as its [`Runtime`]: the caller's executor, async-io's timer,
//! smol's files and processes. Nothing here calls `smol::spawn` or `block_on`.

use std::future::Future;
use std::ops::Deref;
use std::path::PathBuf;
use std::time::Instant;

use rustls::ClientConfig;
use windlass_async::{BoxFuture, Runtime, RuntimeClient};
use windlass_proto::config::{Config, ExecOutcome, ExecRequest};

use crate::{ClientBuilder, Error, JoinHandle, Spawner};

/// A connection to one API server, cheap to clone (one shared pool). It
/// derefs to windlass-async's client for `send`, `send_for_bytes`,
/// `default_namespace`, `read_timeout` and `formats`.
#[derive(Clone)]
pub struct Client {
    core: windlass_async::Client,
    spawner: Spawner,
}

impl Client {
    /// A client for `base` with default settings, its connections run by
    /// `spawner`; see [`ClientBuilder`].
    pub fn new(
        base: impl Into<String>,
        tls: Option<ClientConfig>,
        spawner: impl Into<Spawner>,
    ) -> Result<Self, Error> {
        ClientBuilder::new(base, tls, spawner).build()
    }

    /// A client for a resolved [`Config`]; see [`ClientBuilder::from_config`].
    pub fn from_config(config: &Config, spawner: impl Into<Spawner>) -> Result<Self, Error> {
        ClientBuilder::from_config(config, spawner)?.build()
    }

    /// Where the client's background work runs (connections, and the
    /// runners' tasks).
    pub fn spawner(&self) -> &Spawner {
        &self.spawner
    }

    pub(crate) fn from_core(core: windlass_async::Client, spawner: Spawner) -> Self {
        Self { core, spawner }
    }
}

impl Deref for Client {
    type Target = windlass_async::Client;

    fn deref(&self) -> &windlass_async::Client {
        &self.core
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.core.fmt(f)
    }
}

/// The runners' tasks go to the client's spawner.
impl RuntimeClient for Client {
    type JoinHandle<T: Send + 'static> = JoinHandle<T>;

    fn core(&self) -> &windlass_async::Client {
        &self.core
    }

    fn spawn_task<T: Send + 'static>(
        &self,
        future: impl Future<Output = T> + Send + 'static,
    ) -> JoinHandle<T> {
        self.spawner.spawn_with_handle(future)
    }
}

/// The caller's executor, async-io's timer, smol's files and processes.
impl Runtime for Spawner {
    fn spawn(&self, task: BoxFuture<'static, ()>) {
        Spawner::spawn(self, task);
    }

    fn sleep_until(&self, deadline: Instant) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            smol::Timer::at(deadline).await;
        })
    }

    fn read_file(&self, path: PathBuf) -> BoxFuture<'static, std::io::Result<Vec<u8>>> {
        Box::pin(smol::fs::read(path))
    }

    fn run_exec(&self, request: ExecRequest) -> BoxFuture<'static, ExecOutcome> {
        Box::pin(run_exec(request))
    }
}

/// Runs an exec credential plugin with smol's process API (async-process).
/// It builds its own command rather than converting
/// [`ExecRequest::command`]: async-process's `From<std::process::Command>`
/// forgets the standard input and error chosen there, and `output()` would
/// then close the plugin's input and capture its errors.
async fn run_exec(request: ExecRequest) -> ExecOutcome {
    let mut command = smol::process::Command::new(&request.command);
    command.args(&request.args).kill_on_drop(true);
    for (name, value) in &request.env {
        command.env(name, value.expose());
    }
    command.stdin(if request.stdin {
        smol::process::Stdio::inherit()
    } else {
        smol::process::Stdio::null()
    });
    command.stderr(smol::process::Stdio::inherit());
    let output = command.output().await.map(|o| (o.status.code(), o.stdout));
    ExecOutcome::from_output(output)
}
