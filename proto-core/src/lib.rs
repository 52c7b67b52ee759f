//! # windlass-proto
//!
//! The sans-IO core of windlass, a Kubernetes client. Everything that decides
//! lives here — requests and their validation, the JSON, protobuf and CBOR
//! codecs, incremental watch decoders, the informer machinery, work queues,
//! configuration and credentials, leader election — as plain data structures
//! and state machines. This crate does no IO, reads no clock and draws no
//! random numbers: time comes in as an [`std::time::Instant`] argument and
//! randomness from a generator its driver seeds. The runtime crates
//! (`windlass-tokio`, `windlass-smol`, `windlass-blocking`) only move bytes
//! and wait.
//!
//! ```
//! use windlass_proto::watch::WatchEvent;
//! use windlass_proto::object::{Object, ObjectKey};
//! use k8s_openapi::api::core::v1::Pod;
//!
//! let mut pod = Pod::default();
//! pod.metadata.name = Some("web-0".into());
//! pod.metadata.namespace = Some("default".into());
//! let event = WatchEvent::Added(pod);
//! if let WatchEvent::Added(pod) = &event {
//!     assert_eq!(pod.key(), ObjectKey::namespaced("default", "web-0"));
//! }
//! ```
#![warn(missing_docs)]
#![deny(unsafe_code)]

pub mod api;
pub mod client;
pub mod codec;
pub mod config;
pub mod controller;
pub mod discovery;
pub mod dynamic;
pub mod election;
pub mod endpoint;
pub mod exchange;
pub mod flowcontrol;
pub mod informer;
pub mod list;
pub mod object;
pub mod params;
pub mod proxy;
pub mod queue;
pub mod rand;
pub mod ratelimit;
pub mod request;
pub mod resource;
pub mod response;
pub mod retry;
pub mod shards;
pub mod watch;
