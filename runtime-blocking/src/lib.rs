//! windlass without async: the same surface as `windlass-tokio`, blocking,
//! over ureq 3 and rustls (ring).
//!
//! A thin driver of `windlass-proto`: proto builds every request, judges
//! every response, decodes every watch stream and decides every retry and
//! wait; this crate moves the bytes and sleeps. Watches and paginated lists
//! are iterators. ureq speaks HTTP/1.1 only, so each open watch holds one
//! connection (and usually one thread).
//!
//! TLS is windlass-proto's rustls configuration plugged into ureq's
//! connector chain: only the kubeconfig's CA when it names one, the
//! platform's roots otherwise, `tls-server-name` honoured. Connect and
//! read-idle timeouts only, never a total timeout on a watch. [`Hook`]s see
//! every attempt (extra headers, logging, metrics).
//!
//! The runners are threads: an [`Informer`] (list and watch on a thread of
//! its own, a [`Lister`] over its store, `wait_for_sync`), a [`Controller`]
//! (N worker threads over a rate-limited queue, a shutdown that drains and
//! joins them) and a [`LeaderElector`].
//!
//! ```no_run
//! use k8s_openapi::api::core::v1::Pod;
//! use windlass_proto::params::{ListParams, WatchParams};
//! use windlass_blocking::{Api, Client};
//!
//! # fn run() -> Result<(), windlass_blocking::Error> {
//! let client = Client::new("http://127.0.0.1:8001", None)?; // e.g. `kubectl proxy`
//! let pods: Api<Pod> = Api::namespaced(client, "kube-system")?;
//! for pod in pods.list(&ListParams::default())?.items {
//!     println!("{}", pod.metadata.name.unwrap_or_default());
//! }
//! for event in pods.watch(&WatchParams::default())? {
//!     println!("{:?}", event?);
//! }
//! # Ok(())
//! # }
//! ```
#![warn(missing_docs)]
#![deny(unsafe_code)]

mod api;
mod builder;
mod client;
mod connect;
pub mod controller;
mod discovery;
pub mod election;
pub mod informer;
mod tls;

pub use api::{Api, DynamicApi, LogStream, Pages, Watch};
pub use builder::{ClientBuilder, DEFAULT_CONNECT_TIMEOUT, DEFAULT_MAX_BODY, DEFAULT_READ_TIMEOUT};
pub use client::{Call, CancelHandle, Client, Hook};
pub use controller::{Controller, ControllerHandle};
pub use discovery::Discovery;
pub use election::{ElectorHandle, LeaderElector, Leadership};
pub use informer::{Informer, Lister, Subscription};
pub use windlass_proto::client::Error;

/// A seed for a machine's jitter generator, different in every call and
/// every process (the machines draw no randomness of their own).
pub(crate) fn seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    hasher.finish()
}
