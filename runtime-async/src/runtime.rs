//! The seam to a runtime crate: what windlass-async asks of an executor
//! ([`Runtime`]: spawn, sleep, read a file, run a process), of a connection
//! pool ([`Transport`]: send one attempt, hand back the response head), and
//! of the runtime crate's client type ([`RuntimeClient`]: its own task
//! handle). This module owns no executor and no socket: windlass-async never
//! spawns or sleeps but through a [`Runtime`].
//!
//! Both traits are object-safe and return boxed futures: one allocation per
//! request or sleep is nothing beside a network round trip, and no public
//! type carries an executor parameter.

use std::future::Future;
use std::path::PathBuf;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::future::{AbortHandle, Abortable, Aborted, Either, select};
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use windlass_proto::config::{ExecOutcome, ExecRequest};
use windlass_proto::retry::Failure;

use crate::Client;

/// A boxed future that may move between threads.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A boxed error that may move between threads.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// An executor and its timer, files and processes, as windlass-async uses
/// them. windlass-tokio implements it with `tokio::spawn` and tokio's timer;
/// windlass-smol with the caller's spawn function and async-io's timer.
pub trait Runtime: Send + Sync + 'static {
    /// Runs `task` to completion in the background (detached).
    fn spawn(&self, task: BoxFuture<'static, ()>);

    /// Resolves at `deadline` (at once if it has passed).
    fn sleep_until(&self, deadline: Instant) -> BoxFuture<'static, ()>;

    /// Reads a whole file (a rotated token file).
    fn read_file(&self, path: PathBuf) -> BoxFuture<'static, std::io::Result<Vec<u8>>>;

    /// Runs an exec credential plugin with the runtime's process API.
    fn run_exec(&self, request: ExecRequest) -> BoxFuture<'static, ExecOutcome>;
}

/// What an attempt is for: the transport sends long-lived streams (watches,
/// followed logs) on connections of their own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// An ordinary request: a pooled connection.
    Request,
    /// A watch or a followed log: an HTTP/2 stream shard, or an HTTP/1.1
    /// connection of its own.
    Stream,
}

/// Connections to one API server: sends an attempt (absolute URI,
/// credentials and hooks applied) and hands back the response head. The
/// client bounds the whole call by its read timeout; the transport bounds
/// connecting by its connect timeout.
pub trait Transport: Send + Sync + 'static {
    /// Sends `request` and waits for the response head.
    fn send(
        &self,
        request: Request<Full<Bytes>>,
        purpose: Purpose,
    ) -> BoxFuture<'_, Result<Response<Incoming>, TransportError>>;
}

/// Why an attempt got no response head.
#[derive(Debug)]
pub enum TransportError {
    /// No connection within the connect timeout.
    ConnectTimeout(Duration),
    /// No connection (refused, DNS, TLS, a proxy that refused the tunnel),
    /// or it broke before the response head arrived.
    Failed {
        /// What the retry policy judges.
        failure: Failure,
        /// The transport's error.
        source: BoxError,
    },
}

impl TransportError {
    /// `source` judged by [`failure_of`].
    pub fn failed(source: impl Into<BoxError>) -> Self {
        let source = source.into();
        Self::Failed {
            failure: failure_of(source.as_ref()),
            source,
        }
    }
}

/// What an error before the response head was, in the retry policy's words:
/// the first hyper or IO error in its chain decides (an incomplete message
/// is an early EOF, a timeout a timeout); anything else is a reset.
pub fn failure_of(error: &(dyn std::error::Error + 'static)) -> Failure {
    for e in std::iter::successors(Some(error), |e| e.source()) {
        if let Some(hyper) = e.downcast_ref::<hyper::Error>() {
            if hyper.is_incomplete_message() || hyper.is_canceled() {
                return Failure::EarlyEof;
            }
            if hyper.is_timeout() {
                return Failure::Timeout;
            }
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind::*;
            return match io.kind() {
                UnexpectedEof => Failure::EarlyEof,
                TimedOut => Failure::Timeout,
                _ => Failure::ConnectionReset,
            };
        }
    }
    Failure::ConnectionReset
}

/// A runtime crate's client type (`windlass_tokio::Client`,
/// `windlass_smol::Client`): the shared [`Client`] inside, and the task
/// handle its runtime's users expect from [`Informer::start`](crate::Informer::start).
/// The public types of this crate take it as a parameter, which the runtime
/// crates fix in type aliases (`windlass_tokio::Api<K>`).
pub trait RuntimeClient: Clone + std::fmt::Debug + Send + Sync + 'static {
    /// The runtime's own handle to a spawned task.
    type JoinHandle<T: Send + 'static>;

    /// The shared client.
    fn core(&self) -> &Client;

    /// Runs `future` on a task of its own and hands back its handle.
    fn spawn_task<T: Send + 'static>(
        &self,
        future: impl Future<Output = T> + Send + 'static,
    ) -> Self::JoinHandle<T>;
}

/// Runs `future` through `runtime` and hands back a [`JoinHandle`] to await
/// its output or abort it (dropping the handle detaches it).
pub fn spawn_with_handle<T: Send + 'static>(
    runtime: &dyn Runtime,
    future: impl Future<Output = T> + Send + 'static,
) -> JoinHandle<T> {
    let (abort, registration) = AbortHandle::new_pair();
    let (tx, rx) = async_channel::bounded(1);
    let finished = Arc::new(AtomicBool::new(false));
    let done = finished.clone();
    runtime.spawn(Box::pin(async move {
        let output = Abortable::new(future, registration).await;
        done.store(true, Ordering::Release);
        let _ = tx.send(output).await;
    }));
    JoinHandle {
        output: Box::pin(async move { rx.recv().await.unwrap_or(Err(Aborted)) }),
        abort,
        finished,
    }
}

/// A future spawned through a [`Runtime`]: await it for its output
/// (`Err(Aborted)` once aborted, or dropped by its executor unfinished).
/// Dropping the handle leaves the future running.
pub struct JoinHandle<T> {
    output: BoxFuture<'static, Result<T, Aborted>>,
    abort: AbortHandle,
    finished: Arc<AtomicBool>,
}

impl<T> JoinHandle<T> {
    /// Stops the future at its next await point (it is dropped there).
    pub fn abort(&self) {
        self.abort.abort();
    }

    /// Whether the future has finished (or was aborted).
    pub fn is_finished(&self) -> bool {
        self.finished.load(Ordering::Acquire) || self.abort.is_aborted()
    }
}

impl<T> Future for JoinHandle<T> {
    type Output = Result<T, Aborted>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.output.as_mut().poll(cx)
    }
}

impl<T> std::fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JoinHandle")
            .field("finished", &self.is_finished())
            .finish_non_exhaustive()
    }
}

/// `future`, or `None` once `after` has passed.
pub async fn timeout<T>(
    runtime: &dyn Runtime,
    after: Duration,
    future: impl Future<Output = T>,
) -> Option<T> {
    let Some(deadline) = Instant::now().checked_add(after) else {
        return Some(future.await);
    };
    match select(pin!(future), runtime.sleep_until(deadline)).await {
        Either::Left((output, _)) => Some(output),
        Either::Right(_) => None,
    }
}

/// Whichever of `a` and `b` finishes first (`a` is polled first).
pub(crate) async fn race<T>(a: impl Future<Output = T>, b: impl Future<Output = T>) -> T {
    select(pin!(a), pin!(b)).await.factor_first().0
}

/// A boolean that tasks can wait on (a `watch` channel of one `bool`).
#[derive(Debug, Default)]
pub(crate) struct Flag {
    value: AtomicBool,
    changed: event_listener::Event,
}

impl Flag {
    pub(crate) fn get(&self) -> bool {
        self.value.load(Ordering::Acquire)
    }

    /// Sets the value; wakes every waiter when it changed, and says whether it did.
    pub(crate) fn set(&self, value: bool) -> bool {
        let changed = self.value.swap(value, Ordering::AcqRel) != value;
        if changed {
            self.changed.notify(usize::MAX);
        }
        changed
    }

    /// Resolves once the value is `value`.
    pub(crate) async fn wait_for(&self, value: bool) {
        loop {
            let listener = self.changed.listen();
            if self.get() == value {
                return;
            }
            listener.await;
        }
    }
}
