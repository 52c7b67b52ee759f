//! Watch events, as every framing decodes them. This module owns the event
//! type; the incremental decoders for the JSON stream, protobuf frames and
//! CBOR sequences live beside it.

mod decoder;
mod frame;
mod protobuf;

pub use decoder::{DEFAULT_MAX_QUEUED_EVENTS, DecodeError, ObjectError, WatchDecoder};
pub(crate) use frame::{FrameDecoder, cbor_head};
pub use frame::{Framing, Limits};

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Status;

/// The annotation on the bookmark that ends a watch-list's initial events.
pub const INITIAL_EVENTS_END_ANNOTATION: &str = "k8s.io/initial-events-end";

/// One event of a watch stream.
#[derive(Clone, Debug, PartialEq)]
pub enum WatchEvent<K> {
    /// `ADDED`.
    Added(K),
    /// `MODIFIED`.
    Modified(K),
    /// `DELETED`: the object's last state.
    Deleted(K),
    /// `BOOKMARK`: only the resourceVersion and annotations mean anything.
    Bookmark(Bookmark),
    /// `ERROR`: the server's whole `Status`, e.g. 410 Expired.
    Error(Box<Status>),
}

/// What a `BOOKMARK` event carries.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Bookmark {
    /// `metadata.resourceVersion`.
    pub resource_version: String,
    /// `metadata.annotations`.
    pub annotations: BTreeMap<String, String>,
}

impl Bookmark {
    /// Whether this bookmark ends a watch-list's initial events
    /// (annotated `k8s.io/initial-events-end: "true"`).
    pub fn is_initial_events_end(&self) -> bool {
        self.annotations
            .get(INITIAL_EVENTS_END_ANNOTATION)
            .is_some_and(|v| v == "true")
    }
}
