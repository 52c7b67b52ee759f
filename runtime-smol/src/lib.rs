//! windlass on smol: an async Kubernetes client over hyper 1's low-level
//! client, async-net and futures-rustls. It runs under async-std's executor
//! too: the library never calls `smol::spawn` or `block_on`; it hands its
//! background futures (connection drivers, and the runners' tasks: the
//! [`Informer`], [`Controller`] and [`LeaderElector`]) to the [`Spawner`]
//! you give it.
//!
//! This crate is a thin driver of `windlass-proto`: proto builds every
//! request, judges every response, decodes every watch stream and decides
//! every retry and wait; `windlass-async` drives proto's machines (the
//! [`Api`], the runners) for any runtime; this crate gives it smol's
//! crates — its connections, async-io's timer, and your [`Spawner`]. It
//! holds no Kubernetes logic of its own. Its surface is windlass-tokio's.
//!
//! ```no_run
//! use std::sync::Arc;
//! use futures_util::TryStreamExt;
//! use k8s_openapi::api::core::v1::Pod;
//! use windlass_proto::params::{ListParams, WatchParams};
//! use windlass_smol::{Api, Client};
//!
//! let executor = Arc::new(smol::Executor::new());
//! smol::block_on(executor.run(async {
//!     // e.g. `kubectl proxy`
//!     let client = Client::new("http://127.0.0.1:8001", None, executor.clone())?;
//!     let pods: Api<Pod> = Api::namespaced(client, "kube-system")?;
//!     for pod in pods.list(&ListParams::default()).await?.items {
//!         println!("{}", pod.metadata.name.unwrap_or_default());
//!     }
//!     let mut events = Box::pin(pods.watch(&WatchParams::default()).await?);
//!     while let Some(event) = events.try_next().await? {
//!         println!("{event:?}");
//!     }
//!     Ok::<_, windlass_smol::Error>(())
//! }))?;
//! # Ok::<_, windlass_smol::Error>(())
//! ```
//!
//! A client for a kubeconfig context: resolve it with
//! `windlass_proto::config` and pass the result to [`Client::from_config`].
#![warn(missing_docs)]
#![forbid(unsafe_code)]

mod api;
mod builder;
mod client;
pub mod controller;
pub mod election;
pub mod informer;
mod pools;
mod rt;
mod shards;
mod transport;

pub use api::{Api, Discovery, DynamicApi};
pub use builder::{ClientBuilder, DEFAULT_CONNECT_TIMEOUT, DEFAULT_MAX_BODY, DEFAULT_READ_TIMEOUT};
pub use client::Client;
pub use controller::{Controller, ControllerHandle};
pub use election::{ElectorHandle, LeaderElector, Leadership};
pub use informer::{Informer, Lister, Subscription};
pub use rt::{BoxFuture, JoinHandle, Spawner};
pub use windlass_async::{Call, Error, Hook};
