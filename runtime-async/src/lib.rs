//! windlass's runtime-neutral async layer: the [`Client`] core (the
//! driving of windlass-proto's `Exchange`, hooks, spans, read timeouts and
//! body limits), [`Api`], [`Discovery`], the one [`Error`] type, and the
//! runners ([`Informer`], [`Controller`], [`LeaderElector`]) — written once
//! for windlass-tokio and windlass-smol.
//!
//! It owns no executor, socket or timer. A runtime crate gives it three
//! things (the [`runtime`] module): a [`Runtime`] (spawn, sleep, read a
//! file, run a process), a [`Transport`] (send one attempt, hand back the
//! response head) and its client type, a [`RuntimeClient`] that fixes the
//! task handle its users expect. The runtime crates name the public types
//! with their own client (`windlass_tokio::Api<K>` is
//! `windlass_async::Api<K, windlass_tokio::Client>`), so users never write
//! the parameter.
//!
//! A runtime is a handful of one-line methods; this one runs each task on
//! a thread of its own (windlass-tokio's is `tokio::spawn` and tokio's timer,
//! windlass-smol's the caller's spawn function and async-io's timer):
//!
//! ```
//! use std::future::Future;
//! use std::path::PathBuf;
//! use std::sync::Arc;
//! use std::task::{Context, Poll, Wake, Waker};
//! use std::time::{Duration, Instant};
//! use windlass_async::runtime::timeout;
//! use windlass_async::runtime::{BoxFuture, Runtime, spawn_with_handle};
//! use windlass_proto::config::{ExecOutcome, ExecRequest};
//!
//! struct Threads;
//!
//! impl Runtime for Threads {
//!     fn spawn(&self, task: BoxFuture<'static, ()>) {
//!         std::thread::spawn(move || block_on(task));
//!     }
//!     fn sleep_until(&self, deadline: Instant) -> BoxFuture<'static, ()> {
//!         let (tx, rx) = async_channel::bounded(1);
//!         std::thread::spawn(move || {
//!             std::thread::sleep(deadline.saturating_duration_since(Instant::now()));
//!             let _ = tx.send_blocking(());
//!         });
//!         Box::pin(async move { let _ = rx.recv().await; })
//!     }
//!     fn read_file(&self, path: PathBuf) -> BoxFuture<'static, std::io::Result<Vec<u8>>> {
//!         Box::pin(async move { std::fs::read(path) })
//!     }
//!     fn run_exec(&self, request: ExecRequest) -> BoxFuture<'static, ExecOutcome> {
//!         Box::pin(async move {
//!             let output = std::process::Command::new(&request.command).args(&request.args).output();
//!             ExecOutcome::from_output(output.map(|o| (o.status.code(), o.stdout)))
//!         })
//!     }
//! }
//!
//! /// Polls a future on this thread, parking between wake-ups.
//! fn block_on<T>(future: impl Future<Output = T>) -> T {
//!     struct Unpark(std::thread::Thread);
//!     impl Wake for Unpark {
//!         fn wake(self: Arc<Self>) { self.0.unpark() }
//!     }
//!     let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
//!     let mut future = std::pin::pin!(future);
//!     loop {
//!         if let Poll::Ready(output) = future.as_mut().poll(&mut Context::from_waker(&waker)) {
//!             return output;
//!         }
//!         std::thread::park();
//!     }
//! }
//!
//! let task = spawn_with_handle(&Threads, async { 6 * 7 });
//! assert_eq!(block_on(task), Ok(42));
//! let never = std::future::pending::<()>();
//! assert_eq!(block_on(timeout(&Threads, Duration::from_millis(10), never)), None);
//! ```
#![warn(missing_docs)]
#![forbid(unsafe_code)]

pub mod api;
pub mod builder;
pub mod client;
pub mod controller;
pub mod discovery;
pub mod election;
pub mod error;
pub mod informer;
pub mod runtime;

pub use api::{Api, DynamicApi};
pub use builder::{
    ClientSettings, DEFAULT_CONNECT_TIMEOUT, DEFAULT_MAX_BODY, DEFAULT_READ_TIMEOUT,
};
pub use client::{Call, Client, ClientParts, Hook};
pub use controller::{Controller, ControllerHandle};
pub use discovery::Discovery;
pub use election::{ElectorHandle, LeaderElector, Leadership};
pub use error::Error;
pub use informer::{Informer, Lister, Subscription};
pub use runtime::{
    BoxError, BoxFuture, JoinHandle, Purpose, Runtime, RuntimeClient, Transport, TransportError,
};

/// The crates [`client_builder_setters!`] names, whatever the invoking
/// crate calls them.
#[doc(hidden)]
pub mod __deps {
    pub use http;
    pub use rustls;
    pub use windlass_proto;
}

/// A seed for a machine's jitter generator, different in every call and
/// every process (the machines draw no randomness of their own).
pub fn seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    hasher.finish()
}
