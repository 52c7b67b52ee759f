//! client-go's `tools/cache` as explicit-time state machines: the reflector
//! that lists and watches, the store and its indices, the DeltaFIFO and
//! RealFIFO between them, and the shared-informer fan-out to many handlers.
//!
//! Nothing here does IO or reads a clock. The reflector asks for requests
//! through [`Action`]s and is fed response heads, body chunks, EOFs and
//! transport errors, each with the `now` the driver read; the informer turns
//! its output into store updates and per-handler [`Notification`]s the driver
//! hands to user code.
//!
//! Behaviour follows client-go at v0.36 (see `reference/client-go-semantics.md`
//! §1–4); the deliberate departures are documented where they are made.
//!
//! ```
//! use std::time::Instant;
//! use k8s_openapi::api::core::v1::Pod;
//! use windlass_proto::informer::wire::StandardCodec;
//! use windlass_proto::informer::{Action, InformerConfig, Notification, SharedInformer};
//! use windlass_proto::request::Builder;
//!
//! let now = Instant::now();
//! let mut informer = SharedInformer::<Pod>::new(
//!     InformerConfig::default(),
//!     Box::new(Builder::of::<Pod>(Some("default"))?),
//!     Box::new(StandardCodec::default()),
//! );
//! let handler = informer.add_handler(None, now)?;
//! informer.start(42, now); // the seed of its jitter
//!
//! // The driver sends what the informer asks for…
//! let Some(Action::Send { id, request }) = informer.poll_action() else { unreachable!() };
//! assert_eq!(request.uri(), "/api/v1/namespaces/default/pods?limit=500&resourceVersion=0");
//! // …and feeds back what the server answered.
//! let (head, ()) = http::Response::builder()
//!     .status(200)
//!     .header("content-type", "application/json")
//!     .body(())?
//!     .into_parts();
//! informer.handle_response(id, &head, now);
//! informer.handle_chunk(id, br#"{"kind":"PodList","metadata":{"resourceVersion":"7"},
//!     "items":[{"metadata":{"name":"web-0","namespace":"default","resourceVersion":"5"}}]}"#, now);
//! informer.handle_eof(id, now);
//! assert!(informer.has_synced());
//! let Some(Notification::Add { object, is_in_initial_list: true }) = informer.poll_notification(handler)
//! else { unreachable!() };
//! assert_eq!(object.metadata.name.as_deref(), Some("web-0"));
//!
//! // Then it watches from the list's resourceVersion.
//! let Some(Action::Send { request, .. }) = informer.poll_action() else { unreachable!() };
//! assert!(request.uri().query().unwrap().contains("resourceVersion=7"));
//! assert!(informer.poll_timeout().is_some()); // sleep until then, or until IO
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod backoff;
pub mod delta;
pub mod delta_fifo;
pub mod index;
pub mod lister;
pub mod real_fifo;
pub mod reflector;
pub mod shared;
pub mod store;
pub mod wire;

pub use delta::{DeletedObject, Delta};
pub use delta_fifo::DeltaFifo;
pub use index::{IndexFn, NAMESPACE_INDEX, namespace_index_fn};
pub use lister::{Lister, LockedStore};
pub use real_fifo::RealFifo;
pub use reflector::{
    Action, Mutation, Reflector, ReflectorConfig, ReflectorError, ReflectorEvent, RequestId,
    TransportError,
};
pub use shared::{
    FifoKind, HandlerId, InformerConfig, InformerError, Notification, RelistMode, SharedInformer,
    compact, drop_managed_fields,
};
pub use store::{Applied, Generation, KnownObjects, Relist, Store, StoreError};

/// A FIFO's `pop` found it closed and empty (client-go's `ErrFIFOClosed`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the FIFO is closed")]
pub struct FifoClosed;

#[cfg(test)]
mod tests;
