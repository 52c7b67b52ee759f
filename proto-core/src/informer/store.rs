//! The informer's cache: objects by key, shared by `Arc`, plus any number of
//! secondary indices (client-go's `threadSafeMap` + `Indexer`). This module
//! owns storage and index upkeep and the memory-bounded relist
//! ([`Generation`]); it does not own event delivery (see `shared`).
//!
//! Readers get `Arc<K>` clones: a lookup never copies an object, and a relist
//! that finds an object unchanged (same resourceVersion) keeps the `Arc` the
//! store already holds.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::index::{Index, IndexFn, Indexers, NAMESPACE_INDEX, namespace_index_fn};
use crate::object::{Object, ObjectKey};

/// An error from an index operation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The index name was never registered.
    #[error("index {0:?} does not exist")]
    UnknownIndex(String),
    /// An index of this name is already registered.
    #[error("index {0:?} already exists")]
    DuplicateIndex(String),
}

/// Read access to the objects the informer already holds; the FIFOs consult
/// it to detect deletions on relist and to resync (client-go's `KeyListerGetter`).
pub trait KnownObjects<K> {
    /// Every key held, in a stable (sorted) order.
    fn list_keys(&self) -> Vec<ObjectKey>;
    /// The object held under `key`.
    fn get_by_key(&self, key: &ObjectKey) -> Option<Arc<K>>;
}

/// Objects by key with secondary indices.
pub struct Store<K> {
    items: HashMap<ObjectKey, Arc<K>>,
    indexers: Indexers<K>,
    indices: HashMap<String, Index>,
    resource_version: Option<String>,
}

impl<K> Default for Store<K> {
    fn default() -> Self {
        Self {
            items: HashMap::new(),
            indexers: Indexers::default(),
            indices: HashMap::new(),
            resource_version: None,
        }
    }
}

impl<K> std::fmt::Debug for Store<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("len", &self.items.len())
            .field("indexers", &self.indexers)
            .field("resource_version", &self.resource_version)
            .finish()
    }
}

impl<K: Object> Store<K> {
    /// An empty store without indices.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty store with client-go's `namespace` index registered.
    pub fn with_namespace_index() -> Self {
        let mut store = Self::new();
        store
            .add_indexer(NAMESPACE_INDEX, namespace_index_fn())
            .expect("a new store has no indexers");
        store
    }

    // --- getters

    /// The object under `key`.
    pub fn get(&self, key: &ObjectKey) -> Option<&Arc<K>> {
        self.items.get(key)
    }

    /// Every object, in no particular order.
    pub fn list(&self) -> impl Iterator<Item = &Arc<K>> {
        self.items.values()
    }

    /// Every key, in no particular order.
    pub fn keys(&self) -> impl Iterator<Item = &ObjectKey> {
        self.items.keys()
    }

    /// How many objects are stored.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether the store is empty.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The store's resourceVersion: from the last object added, updated or
    /// deleted with its object, or the argument of the last `replace`/`bookmark`.
    pub fn resource_version(&self) -> Option<&str> {
        self.resource_version.as_deref()
    }

    /// The objects sharing any index value with `obj` under index `name`
    /// (client-go's `Index`).
    pub fn index(&self, name: &str, obj: &K) -> Result<Vec<Arc<K>>, StoreError> {
        let index_fn = self.index_fn(name)?;
        let index = &self.indices[name];
        let mut keys: Vec<&ObjectKey> = index_fn(obj)
            .iter()
            .filter_map(|value| index.keys(value))
            .flatten()
            .collect();
        keys.sort();
        keys.dedup();
        Ok(keys.into_iter().map(|k| self.items[k].clone()).collect())
    }

    /// The objects filed under `value` in index `name`, ordered by key.
    pub fn by_index(&self, name: &str, value: &str) -> Result<Vec<Arc<K>>, StoreError> {
        self.index_fn(name)?;
        Ok(self.indices[name]
            .keys(value)
            .into_iter()
            .flatten()
            .map(|k| self.items[k].clone())
            .collect())
    }

    /// The keys filed under `value` in index `name`, sorted.
    pub fn index_keys(&self, name: &str, value: &str) -> Result<Vec<ObjectKey>, StoreError> {
        self.index_fn(name)?;
        Ok(self.indices[name]
            .keys(value)
            .into_iter()
            .flatten()
            .cloned()
            .collect())
    }

    /// Every value index `name` files at least one key under, sorted; empty
    /// for an unknown index (as client-go).
    pub fn list_index_func_values(&self, name: &str) -> Vec<String> {
        let mut values: Vec<String> = self
            .indices
            .get(name)
            .into_iter()
            .flat_map(Index::values)
            .cloned()
            .collect();
        values.sort();
        values
    }

    fn index_fn(&self, name: &str) -> Result<&IndexFn<K>, StoreError> {
        self.indexers
            .fns
            .get(name)
            .ok_or_else(|| StoreError::UnknownIndex(name.to_owned()))
    }

    // --- mutators

    /// Registers index `name` and files every stored object under it
    /// (client-go since v0.30 back-fills).
    pub fn add_indexer(&mut self, name: &str, index_fn: IndexFn<K>) -> Result<(), StoreError> {
        if self.indexers.fns.contains_key(name) {
            return Err(StoreError::DuplicateIndex(name.to_owned()));
        }
        let mut index = Index::default();
        for (key, obj) in &self.items {
            index.update(key, &[], &index_fn(obj));
        }
        self.indices.insert(name.to_owned(), index);
        self.indexers.fns.insert(name.to_owned(), index_fn);
        Ok(())
    }

    /// Stores `obj` under its key, returning the object it replaces
    /// (client-go's Add and Update are the same operation).
    pub fn add(&mut self, obj: Arc<K>) -> Option<Arc<K>> {
        if let Some(rv) = obj.resource_version() {
            self.resource_version = Some(rv.to_owned());
        }
        self.put(obj).1
    }

    /// Stores `obj` under its key without touching the store's
    /// resourceVersion; returns the key as stored (shared with the map) and
    /// the object replaced.
    fn put(&mut self, obj: Arc<K>) -> (ObjectKey, Option<Arc<K>>) {
        let key = obj.key();
        let old = self.items.insert(key.clone(), obj.clone());
        self.update_indices(&key, old.as_deref(), Some(&obj));
        // On an update the map kept its own key; hand that one out so a
        // caller holding keys shares the map's allocation.
        let stored = self
            .items
            .get_key_value(&key)
            .map_or(key, |(k, _)| k.clone());
        (stored, old)
    }

    /// Same as [`Store::add`].
    pub fn update(&mut self, obj: Arc<K>) -> Option<Arc<K>> {
        self.add(obj)
    }

    /// Removes the object under `key` (the store's resourceVersion is unchanged).
    pub fn delete(&mut self, key: &ObjectKey) -> Option<Arc<K>> {
        let old = self.items.remove(key)?;
        self.update_indices(key, Some(&old), None);
        Some(old)
    }

    /// Removes `obj`'s key, taking the store's resourceVersion from `obj`
    /// (client-go's `DeleteWithObject`).
    pub fn delete_object(&mut self, obj: &K) -> Option<Arc<K>> {
        if let Some(rv) = obj.resource_version() {
            self.resource_version = Some(rv.to_owned());
        }
        self.delete(&obj.key())
    }

    /// Makes `items` the whole content and rebuilds every index.
    pub fn replace(&mut self, items: impl IntoIterator<Item = Arc<K>>, resource_version: &str) {
        self.items.clear();
        for index in self.indices.values_mut() {
            index.clear();
        }
        for obj in items {
            let key = obj.key();
            if let Some(old) = self.items.insert(key.clone(), obj.clone()) {
                self.update_indices(&key, Some(&old), None);
            }
            self.update_indices(&key, None, Some(&obj));
        }
        self.resource_version = Some(resource_version.to_owned());
    }

    /// Records a bookmark's resourceVersion.
    pub fn bookmark(&mut self, resource_version: &str) {
        self.resource_version = Some(resource_version.to_owned());
    }

    fn update_indices(&mut self, key: &ObjectKey, old: Option<&K>, new: Option<&K>) {
        for (name, index_fn) in &self.indexers.fns {
            let old_values = old.map(|o| index_fn(o)).unwrap_or_default();
            let new_values = new.map(|n| index_fn(n)).unwrap_or_default();
            self.indices
                .get_mut(name)
                .expect("every indexer has an index")
                .update(key, &old_values, &new_values);
        }
    }
}

impl<K: Object> KnownObjects<K> for Store<K> {
    fn list_keys(&self) -> Vec<ObjectKey> {
        let mut keys: Vec<ObjectKey> = self.items.keys().cloned().collect();
        keys.sort();
        keys
    }

    fn get_by_key(&self, key: &ObjectKey) -> Option<Arc<K>> {
        self.items.get(key).cloned()
    }
}

/// The next content of a store being built during a relist, page by page.
///
/// Each decoded object whose key and resourceVersion match what the store
/// already holds is dropped at once and the store's `Arc` is kept instead, so
/// during a relist memory holds one copy of every unchanged object, a new
/// copy only of what changed, the map of pointers, and the page being
/// decoded — never two full copies of the cache.
pub struct Generation<K> {
    items: HashMap<ObjectKey, Arc<K>>,
    order: Vec<ObjectKey>,
}

impl<K> Default for Generation<K> {
    fn default() -> Self {
        Self {
            items: HashMap::new(),
            order: Vec::new(),
        }
    }
}

impl<K> std::fmt::Debug for Generation<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Generation")
            .field("len", &self.items.len())
            .finish()
    }
}

impl<K: Object> Generation<K> {
    /// An empty generation.
    pub fn new() -> Self {
        Self::default()
    }

    /// Files `obj`, reusing `current`'s `Arc` when it holds the same key at
    /// the same resourceVersion. A later object with the same key wins.
    pub fn insert(&mut self, obj: Arc<K>, current: &dyn KnownObjects<K>) {
        let key = obj.key();
        let reused = current.get_by_key(&key).filter(|old| {
            obj.resource_version()
                .is_some_and(|rv| old.resource_version() == Some(rv))
        });
        let obj = reused.unwrap_or(obj);
        if self.items.insert(key.clone(), obj).is_none() {
            self.order.push(key);
        }
    }

    /// Removes `key` (a deletion seen while the generation is collected).
    pub fn remove(&mut self, key: &ObjectKey) {
        if self.items.remove(key).is_some() {
            self.order.retain(|k| k != key);
        }
    }

    /// How many objects the generation holds.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether the generation is empty.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The objects in the order their keys were first seen.
    pub fn into_objects(mut self) -> Vec<Arc<K>> {
        self.order
            .iter()
            .filter_map(|k| self.items.remove(k))
            .collect()
    }
}

/// What [`Relist::apply`] did with one listed object.
#[derive(Debug)]
pub enum Applied<K> {
    /// The key was not in the store.
    Added(Arc<K>),
    /// The key held another resourceVersion; `new` replaced `old`.
    Updated {
        /// The object replaced.
        old: Arc<K>,
        /// The listed object, now stored.
        new: Arc<K>,
    },
    /// The key already held this resourceVersion: the store kept its `Arc`
    /// (returned here) and the listed copy was dropped.
    Unchanged(Arc<K>),
}

/// A relist applied to the store in place, object by object, as its pages
/// arrive: each listed object replaces the stored one at once (or is
/// dropped when the stored one has the same resourceVersion), its key is
/// marked seen, and [`Relist::finish`] sweeps the keys the list did not
/// hold. Memory during a relist is one store, the page being applied and
/// the set of seen keys (which share the store's key allocations) — even
/// when every object changed, where collecting a [`Generation`] holds a
/// second copy of the whole cache until the list completes.
///
/// The price is atomicity: until `finish`, a reader sees the relist half
/// applied — every object a state the server had, but not all of them from
/// the same list (client-go's non-atomic FIFOs expose the same).
#[derive(Debug, Default)]
pub struct Relist {
    seen: HashSet<ObjectKey>,
}

impl Relist {
    /// A relist that has seen nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many distinct keys the list has held so far.
    pub fn seen(&self) -> usize {
        self.seen.len()
    }

    /// Applies one listed object to `store` and marks its key seen. The
    /// store's resourceVersion is left alone until `finish`.
    pub fn apply<K: Object>(&mut self, store: &mut Store<K>, obj: Arc<K>) -> Applied<K> {
        let key = obj.key();
        if let Some(current) = store.items.get_key_value(&key)
            && obj
                .resource_version()
                .is_some_and(|rv| current.1.resource_version() == Some(rv))
        {
            self.seen.insert(current.0.clone());
            return Applied::Unchanged(current.1.clone());
        }
        let (key, old) = store.put(obj.clone());
        self.seen.insert(key);
        match old {
            Some(old) => Applied::Updated { old, new: obj },
            None => Applied::Added(obj),
        }
    }

    /// Unmarks `key` (a deletion streamed while the list is collected): it
    /// is swept by `finish` unless listed again.
    pub fn forget(&mut self, key: &ObjectKey) {
        self.seen.remove(key);
    }

    /// The list is complete at `resource_version`: removes every stored key
    /// it did not hold and returns those objects, ordered by key.
    pub fn finish<K: Object>(
        self,
        store: &mut Store<K>,
        resource_version: &str,
    ) -> Vec<(ObjectKey, Arc<K>)> {
        let mut gone: Vec<ObjectKey> = store
            .items
            .keys()
            .filter(|k| !self.seen.contains(*k))
            .cloned()
            .collect();
        drop(self.seen);
        gone.sort();
        let removed = gone
            .into_iter()
            .filter_map(|key| {
                let old = store.delete(&key)?;
                Some((key, old))
            })
            .collect();
        store.resource_version = Some(resource_version.to_owned());
        removed
    }
}
