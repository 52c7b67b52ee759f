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

pub mod backoff;
pub mod delta;
pub mod delta_fifo;
pub mod index;
pub mod real_fifo;
pub mod reflector;
pub mod shared;
pub mod store;
pub mod wire;

pub use delta::{DeletedObject, Delta};
pub use delta_fifo::DeltaFifo;
pub use index::{IndexFn, NAMESPACE_INDEX, namespace_index_fn};
pub use real_fifo::RealFifo;
pub use reflector::{
    Action, Mutation, Reflector, ReflectorConfig, ReflectorError, ReflectorEvent, RequestId,
    TransportError,
};
pub use shared::{
    FifoKind, HandlerId, InformerConfig, InformerError, Notification, SharedInformer,
    drop_managed_fields,
};
pub use store::{Generation, KnownObjects, Store, StoreError};

/// A FIFO's `pop` found it closed and empty (client-go's `ErrFIFOClosed`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the FIFO is closed")]
pub struct FifoClosed;

#[cfg(test)]
mod tests;
