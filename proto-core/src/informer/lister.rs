//! Read access to a running informer's store (client-go's `Lister` and
//! `Indexer`), shared by every runtime. A driver keeps its
//! [`SharedInformer`] behind a `std::sync::Mutex`, beside whatever it needs
//! to drive it (wakers, flags, an inbox); a [`Lister`] reads the store
//! through that same lock, so it sees the store as it is now and never a
//! copy. A lock poisoned by a panicking holder is taken over, as the drivers
//! themselves do: a store is never left half-updated by a reader.
//!
//! ```
//! use std::sync::{Arc, Mutex};
//! use std::time::Instant;
//! use k8s_openapi::api::core::v1::Pod;
//! use windlass_proto::informer::wire::StandardCodec;
//! use windlass_proto::informer::{InformerConfig, InformerError, Lister, SharedInformer};
//! use windlass_proto::request::Builder;
//!
//! // What a driver keeps under its lock: the machine and its own state.
//! struct Driven {
//!     machine: SharedInformer<Pod>,
//!     running: bool,
//! }
//! impl AsRef<SharedInformer<Pod>> for Driven {
//!     fn as_ref(&self) -> &SharedInformer<Pod> {
//!         &self.machine
//!     }
//! }
//!
//! let machine = SharedInformer::new(
//!     InformerConfig::default(),
//!     Box::new(Builder::of::<Pod>(None)?),
//!     Box::new(StandardCodec::default()),
//! );
//! let state = Arc::new(Mutex::new(Driven { machine, running: false }));
//! let lister: Lister<Pod> = Lister::new(state.clone(), "pods");
//! assert!(lister.is_empty());
//! assert!(lister.by_index("no-such-index", "x").is_err());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::marker::PhantomData;
use std::sync::{Arc, Mutex};

use super::index::NAMESPACE_INDEX;
use super::shared::{InformerError, SharedInformer};
use super::store::Store;
use crate::object::{Object, ObjectKey};

/// A store a [`Lister`] can read: an informer machine behind a lock.
///
/// Implemented for every `Mutex<S>` whose `S` holds a [`SharedInformer`]
/// (`S: AsRef<SharedInformer<K>>`): the driver's own state type, with the
/// machine beside what the driver keeps.
pub trait LockedStore<K>: Send + Sync {
    /// Calls `read` with the store, under the lock.
    fn read_store(&self, read: &mut dyn FnMut(&Store<K>));
}

impl<K, S> LockedStore<K> for Mutex<S>
where
    K: Object + Send + Sync + 'static,
    S: AsRef<SharedInformer<K>> + Send,
{
    fn read_store(&self, read: &mut dyn FnMut(&Store<K>)) {
        let state = self.lock().unwrap_or_else(|e| e.into_inner());
        read(state.as_ref().store());
    }
}

/// Read access to an informer's store and its indices (client-go's
/// Lister and Indexer). Cheap to clone; reads see the store as it is now.
///
/// `E` is the error an index lookup returns: [`InformerError`] itself, or a
/// runtime's error type that wraps it.
pub struct Lister<K, E = InformerError> {
    store: Arc<dyn LockedStore<K>>,
    resource: Arc<str>,
    error: PhantomData<fn() -> E>,
}

impl<K, E> Clone for Lister<K, E> {
    fn clone(&self) -> Self {
        Self {
            store: self.store.clone(),
            resource: self.resource.clone(),
            error: PhantomData,
        }
    }
}

impl<K, E> std::fmt::Debug for Lister<K, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lister")
            .field("resource", &self.resource)
            .finish_non_exhaustive()
    }
}

impl<K, E> Lister<K, E>
where
    K: Object + Send + Sync + 'static,
    E: From<InformerError>,
{
    /// A lister over `store`, the informer of `resource` (its plural, for
    /// `Debug`).
    pub fn new(store: Arc<dyn LockedStore<K>>, resource: &str) -> Self {
        Self {
            store,
            resource: resource.into(),
            error: PhantomData,
        }
    }

    /// The object stored under `key`.
    pub fn get(&self, key: &ObjectKey) -> Option<Arc<K>> {
        let mut found = None;
        self.store
            .read_store(&mut |store| found = store.get(key).cloned());
        found
    }

    /// Every stored object (in no particular order).
    pub fn list(&self) -> Vec<Arc<K>> {
        let mut found = Vec::new();
        self.store
            .read_store(&mut |store| found = store.list().cloned().collect());
        found
    }

    /// The stored objects of `namespace` (the namespace index).
    pub fn list_namespace(&self, namespace: &str) -> Vec<Arc<K>> {
        let mut found = Vec::new();
        self.store.read_store(&mut |store| {
            found = store
                .by_index(NAMESPACE_INDEX, namespace)
                .unwrap_or_default()
        });
        found
    }

    /// The objects an index files under `value`.
    pub fn by_index(&self, index: &str, value: &str) -> Result<Vec<Arc<K>>, E> {
        let mut found = Ok(Vec::new());
        self.store
            .read_store(&mut |store| found = store.by_index(index, value));
        found.map_err(|e| InformerError::from(e).into())
    }

    /// The keys an index files under `value`, sorted.
    pub fn index_keys(&self, index: &str, value: &str) -> Result<Vec<ObjectKey>, E> {
        let mut found = Ok(Vec::new());
        self.store
            .read_store(&mut |store| found = store.index_keys(index, value));
        found.map_err(|e| InformerError::from(e).into())
    }

    /// Every stored key.
    pub fn keys(&self) -> Vec<ObjectKey> {
        let mut found = Vec::new();
        self.store
            .read_store(&mut |store| found = store.keys().cloned().collect());
        found
    }

    /// How many objects are stored.
    pub fn len(&self) -> usize {
        let mut len = 0;
        self.store.read_store(&mut |store| len = store.len());
        len
    }

    /// Whether the store is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The resourceVersion the store is at.
    pub fn resource_version(&self) -> Option<String> {
        let mut version = None;
        self.store
            .read_store(&mut |store| version = store.resource_version().map(str::to_owned));
        version
    }
}
