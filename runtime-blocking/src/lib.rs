//! windlass without async: the same surface as `windlass-tokio`, blocking,
//! over ureq 3 and rustls (ring).
//!
//! A thin driver of `windlass-proto`: proto builds every request, judges
//! every response, decodes every watch stream and decides every retry and
//! wait; this crate moves the bytes and sleeps. Watches and paginated lists
//! are iterators. ureq speaks HTTP/1.1 only, so each open watch holds one
//! connection (and usually one thread).
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
mod error;
mod tls;

pub use api::{Api, DynamicApi, LogStream, Pages, Watch};
pub use builder::{ClientBuilder, DEFAULT_CONNECT_TIMEOUT, DEFAULT_MAX_BODY, DEFAULT_READ_TIMEOUT};
pub use client::{Call, CancelHandle, Client, Hook};
pub use error::Error;
