//! The client: windlass-async's [`Client`](windlass_async::Client) core over
//! this crate's connections (the `pools` module), with tokio as its
//! [`Runtime`]: `tokio::spawn`, tokio's timer, files and processes.

use std::future::Future;
use std::ops::Deref;
use std::path::PathBuf;
use std::time::Instant;

use rustls::ClientConfig;
use windlass_async::{BoxFuture, Runtime, RuntimeClient};
use windlass_proto::config::{Config, ExecOutcome, ExecRequest};

use crate::{ClientBuilder, Error};

/// A connection to one API server, cheap to clone (one shared pool). It
/// derefs to windlass-async's client for `send`, `send_for_bytes`,
/// `default_namespace`, `read_timeout` and `formats`.
#[derive(Clone)]
pub struct Client {
    core: windlass_async::Client,
}

impl Client {
    /// A client for `base` with default settings; see [`ClientBuilder`].
    pub fn new(base: impl Into<String>, tls: Option<ClientConfig>) -> Result<Self, Error> {
        ClientBuilder::new(base, tls).build()
    }

    /// A client for a resolved [`Config`]; see [`ClientBuilder::from_config`].
    pub fn from_config(config: &Config) -> Result<Self, Error> {
        ClientBuilder::from_config(config)?.build()
    }

    pub(crate) fn from_core(core: windlass_async::Client) -> Self {
        Self { core }
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

/// The runners' tasks are tokio tasks: `Informer::start` hands back tokio's handle.
impl RuntimeClient for Client {
    type JoinHandle<T: Send + 'static> = tokio::task::JoinHandle<T>;

    fn core(&self) -> &windlass_async::Client {
        &self.core
    }

    fn spawn_task<T: Send + 'static>(
        &self,
        future: impl Future<Output = T> + Send + 'static,
    ) -> tokio::task::JoinHandle<T> {
        tokio::spawn(future)
    }
}

/// tokio as windlass-async's runtime (the ambient one: every call is made
/// within a tokio runtime).
pub(crate) struct Tokio;

impl Runtime for Tokio {
    fn spawn(&self, task: BoxFuture<'static, ()>) {
        tokio::spawn(task);
    }

    fn sleep_until(&self, deadline: Instant) -> BoxFuture<'static, ()> {
        Box::pin(tokio::time::sleep_until(deadline.into()))
    }

    fn read_file(&self, path: PathBuf) -> BoxFuture<'static, std::io::Result<Vec<u8>>> {
        Box::pin(tokio::fs::read(path))
    }

    fn run_exec(&self, request: ExecRequest) -> BoxFuture<'static, ExecOutcome> {
        Box::pin(run_exec(request))
    }
}

/// Runs an exec credential plugin with tokio's process API, killed if the
/// request is dropped. Spawned rather than `output()`: tokio's `output()`
/// pipes stderr whatever the command says, and the plugin's stderr goes to
/// ours (client-go's `cmd.Stderr = os.Stderr`), where its prompts and
/// errors can be read.
async fn run_exec(request: ExecRequest) -> ExecOutcome {
    let mut command = tokio::process::Command::from(request.command());
    command
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true);
    let output = match command.spawn() {
        Ok(child) => child.wait_with_output().await,
        Err(e) => Err(e),
    };
    ExecOutcome::from_output(output.map(|o| (o.status.code(), o.stdout)))
}
