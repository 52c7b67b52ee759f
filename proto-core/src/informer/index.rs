//! Index functions and the index sets a [`Store`](super::Store) keeps for
//! them (client-go's `Indexers` and `Indices`). This module owns the
//! bookkeeping of which keys sit under which index value; the store decides
//! when to call it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::sync::Arc;

use crate::object::{Object, ObjectKey};

/// The name of the index client-go calls `NamespaceIndex`.
pub const NAMESPACE_INDEX: &str = "namespace";

/// A function from an object to the values it is indexed under
/// (client-go's `IndexFunc`; it cannot fail here, where client-go panics).
pub type IndexFn<K> = Arc<dyn Fn(&K) -> Vec<String> + Send + Sync>;

/// client-go's `MetaNamespaceIndexFunc`: the object's namespace, or `""`
/// for a cluster-scoped object.
pub fn namespace_index_fn<K: Object>() -> IndexFn<K> {
    Arc::new(|obj: &K| vec![obj.meta().namespace.clone().unwrap_or_default()])
}

/// The sets of keys filed under each value of one index.
#[derive(Default)]
pub(crate) struct Index {
    sets: HashMap<String, BTreeSet<ObjectKey>>,
}

impl Index {
    /// Moves `key` from the sets of `old` to the sets of `new`, deleting a set
    /// that becomes empty (so `values` never shows an empty value).
    pub(crate) fn update(&mut self, key: &ObjectKey, old: &[String], new: &[String]) {
        // client-go skips the work when both sides are the same single value.
        if old.len() == 1 && new.len() == 1 && old[0] == new[0] {
            return;
        }
        for value in old {
            if let Some(set) = self.sets.get_mut(value) {
                set.remove(key);
                if set.is_empty() {
                    self.sets.remove(value);
                }
            }
        }
        for value in new {
            self.sets
                .entry(value.clone())
                .or_default()
                .insert(key.clone());
        }
    }

    pub(crate) fn keys(&self, value: &str) -> Option<&BTreeSet<ObjectKey>> {
        self.sets.get(value)
    }

    pub(crate) fn values(&self) -> impl Iterator<Item = &String> {
        self.sets.keys()
    }

    pub(crate) fn clear(&mut self) {
        self.sets.clear();
    }
}

/// The registered index functions, by name.
pub(crate) struct Indexers<K> {
    pub(crate) fns: BTreeMap<String, IndexFn<K>>,
}

impl<K> Default for Indexers<K> {
    fn default() -> Self {
        Self {
            fns: BTreeMap::new(),
        }
    }
}

impl<K> fmt::Debug for Indexers<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.fns.keys()).finish()
    }
}
