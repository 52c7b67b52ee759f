//! # windlass-testkit
//!
//! What proves windlass right: the fixtures locator used by the conformance
//! suites, and (as they land) the in-memory Kubernetes API server model, its
//! HTTP front `windlass-apiserver`, fault injection and the deterministic
//! simulation harness.
#![warn(missing_docs)]

pub mod apiserver;
pub mod fixtures;
pub mod fuzzing;
pub mod kinds;
pub mod model;
pub mod protobuf_direct;
pub mod protobuf_schema;
pub mod proxy;
#[cfg(feature = "scenarios")]
pub mod scenarios;
pub mod sim;
