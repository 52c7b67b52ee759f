//! The changes a FIFO carries from the reflector to the store (client-go's
//! `Delta`, `DeltaType` and `DeletedFinalStateUnknown`). This module owns the
//! types only; the FIFOs decide which to queue.

use std::sync::Arc;

use crate::object::{Object, ObjectKey};

/// One change to one object, or (RealFIFO in atomic mode only) to the whole set.
#[derive(Debug)]
pub enum Delta<K> {
    /// A watch ADDED.
    Added(Arc<K>),
    /// A watch MODIFIED.
    Updated(Arc<K>),
    /// A watch DELETED, or a deletion a relist detected.
    Deleted(DeletedObject<K>),
    /// An object of a relist (client-go's `Replaced`; the informer always asks for it).
    Replaced(Arc<K>),
    /// A resync of an object the store holds, or a relist item when
    /// `Replaced` is not asked for.
    Sync(Arc<K>),
    /// A whole relist at once (RealFIFO atomic mode).
    ReplacedAll {
        /// The list's resourceVersion.
        resource_version: String,
        /// Every object of the list.
        objects: Vec<Arc<K>>,
    },
    /// A resync of everything the store holds (RealFIFO atomic mode).
    SyncAll,
    /// A bookmark's resourceVersion (RealFIFO atomic mode).
    Bookmark {
        /// The bookmark's resourceVersion.
        resource_version: String,
    },
}

impl<K> Clone for Delta<K> {
    fn clone(&self) -> Self {
        match self {
            Self::Added(o) => Self::Added(o.clone()),
            Self::Updated(o) => Self::Updated(o.clone()),
            Self::Deleted(d) => Self::Deleted(d.clone()),
            Self::Replaced(o) => Self::Replaced(o.clone()),
            Self::Sync(o) => Self::Sync(o.clone()),
            Self::ReplacedAll {
                resource_version,
                objects,
            } => Self::ReplacedAll {
                resource_version: resource_version.clone(),
                objects: objects.clone(),
            },
            Self::SyncAll => Self::SyncAll,
            Self::Bookmark { resource_version } => Self::Bookmark {
                resource_version: resource_version.clone(),
            },
        }
    }
}

impl<K: Object> Delta<K> {
    /// The key this delta is about; `None` for the whole-set deltas.
    pub fn key(&self) -> Option<ObjectKey> {
        match self {
            Self::Added(o) | Self::Updated(o) | Self::Replaced(o) | Self::Sync(o) => Some(o.key()),
            Self::Deleted(d) => Some(d.key()),
            Self::ReplacedAll { .. } | Self::SyncAll | Self::Bookmark { .. } => None,
        }
    }

    /// The object this delta carries, if any (a tombstone's last known state).
    pub fn object(&self) -> Option<&Arc<K>> {
        match self {
            Self::Added(o) | Self::Updated(o) | Self::Replaced(o) | Self::Sync(o) => Some(o),
            Self::Deleted(d) => d.object(),
            Self::ReplacedAll { .. } | Self::SyncAll | Self::Bookmark { .. } => None,
        }
    }

    /// Whether this is a `Deleted` delta.
    pub fn is_deleted(&self) -> bool {
        matches!(self, Self::Deleted(_))
    }
}

/// What a deletion carries: the object's last state as the watch reported
/// it, or a tombstone when the deletion was inferred from a relist.
#[derive(Debug)]
pub enum DeletedObject<K> {
    /// The deleted object, as the server sent it.
    Object(Arc<K>),
    /// client-go's `DeletedFinalStateUnknown`: the object vanished while the
    /// watch was down; `last` is the last state the client knew, if any.
    FinalStateUnknown {
        /// The deleted object's key.
        key: ObjectKey,
        /// Its last known state.
        last: Option<Arc<K>>,
    },
}

impl<K> Clone for DeletedObject<K> {
    fn clone(&self) -> Self {
        match self {
            Self::Object(o) => Self::Object(o.clone()),
            Self::FinalStateUnknown { key, last } => Self::FinalStateUnknown {
                key: key.clone(),
                last: last.clone(),
            },
        }
    }
}

impl<K: Object> DeletedObject<K> {
    /// The key of the deleted object.
    pub fn key(&self) -> ObjectKey {
        match self {
            Self::Object(o) => o.key(),
            Self::FinalStateUnknown { key, .. } => key.clone(),
        }
    }
}

impl<K> DeletedObject<K> {
    /// The object's last known state, if any.
    pub fn object(&self) -> Option<&Arc<K>> {
        match self {
            Self::Object(o) => Some(o),
            Self::FinalStateUnknown { last, .. } => last.as_ref(),
        }
    }

    /// Whether this is a tombstone (`DeletedFinalStateUnknown`).
    pub fn is_final_state_unknown(&self) -> bool {
        matches!(self, Self::FinalStateUnknown { .. })
    }
}

impl<K> From<Arc<K>> for DeletedObject<K> {
    fn from(obj: Arc<K>) -> Self {
        Self::Object(obj)
    }
}
