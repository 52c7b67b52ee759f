//! windlass on tokio: an async Kubernetes client over hyper 1 and rustls.
//!
//! This crate is a thin driver of `windlass-proto`: proto builds every
//! request, judges every response, decodes every watch stream and decides
//! every retry and wait; `windlass-async` drives proto's machines (the
//! [`Api`], the runners) for any runtime; this crate gives it tokio — its
//! connections (hyper-util's pools, hyper-rustls, HTTP/2 watch shards),
//! `tokio::spawn` and tokio's timer. It holds no Kubernetes logic of its own.
//!
//! ```no_run
//! use futures_util::TryStreamExt;
//! use k8s_openapi::api::core::v1::Pod;
//! use windlass_proto::params::{ListParams, WatchParams};
//! use windlass_tokio::{Api, Client};
//!
//! # async fn run() -> Result<(), windlass_tokio::Error> {
//! let client = Client::new("http://127.0.0.1:8001", None)?; // e.g. `kubectl proxy`
//! let pods: Api<Pod> = Api::namespaced(client, "kube-system")?;
//! for pod in pods.list(&ListParams::default()).await?.items {
//!     println!("{}", pod.metadata.name.unwrap_or_default());
//! }
//! let mut events = Box::pin(pods.watch(&WatchParams::default()).await?);
//! while let Some(event) = events.try_next().await? {
//!     println!("{event:?}");
//! }
//! # Ok(())
//! # }
//! ```
//!
//! A client for a kubeconfig context: resolve it with
//! `windlass_proto::config` and pass the result to [`Client::from_config`].
#![warn(missing_docs)]
#![deny(unsafe_code)]

mod api;
mod builder;
mod client;
mod connect;
pub mod controller;
pub mod election;
pub mod informer;
mod pools;
mod shards;

pub use api::{Api, Discovery, DynamicApi};
pub use builder::{ClientBuilder, DEFAULT_CONNECT_TIMEOUT, DEFAULT_MAX_BODY, DEFAULT_READ_TIMEOUT};
pub use client::Client;
pub use controller::{Controller, ControllerHandle};
pub use election::{ElectorHandle, LeaderElector, Leadership};
pub use informer::{Informer, Lister, Subscription};
pub use windlass_async::{Call, Error, Hook};
