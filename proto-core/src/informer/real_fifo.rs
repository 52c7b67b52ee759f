//! client-go's `RealFIFO` (the informer default since 1.36): an ordered log
//! of deltas, one entry per event, no merging and no dedup, so handlers see
//! events in the order they happened. This module owns the log, relist
//! reconciliation and the initial count behind [`RealFifo::has_synced`].
//!
//! Two modes, as client-go 1.36:
//!
//! | call | non-atomic (with known objects) | atomic (`AtomicFIFO`) |
//! |---|---|---|
//! | `add` / `update` / `delete` | `Added` / `Updated` / `Deleted` (delete always queues) | same |
//! | `replace(list, rv)` | `Deleted(FinalStateUnknown)` for queued keys missing from the list whose last delta is not a deletion, then for known never-queued keys missing; **then** `Replaced` per item | one `ReplacedAll { rv, list }` |
//! | `resync` | `Sync` per known key with nothing queued | one `SyncAll` |
//! | `bookmark(rv)` | nothing | `Bookmark { rv }` |
//! | `replaced_in_place()` | marks the first relist done (for `has_synced`) | same |

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

use super::FifoClosed;
use super::delta::{DeletedObject, Delta};
use super::store::KnownObjects;
use crate::object::{Object, ObjectKey};

/// client-go's `RealFIFO`.
pub struct RealFifo<K> {
    items: VecDeque<Delta<K>>,
    populated: bool,
    initial_population_count: usize,
    atomic: bool,
    closed: bool,
}

impl<K> std::fmt::Debug for RealFifo<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RealFifo")
            .field("len", &self.items.len())
            .field("populated", &self.populated)
            .field("initial_population_count", &self.initial_population_count)
            .field("atomic", &self.atomic)
            .field("closed", &self.closed)
            .finish()
    }
}

impl<K: Object> RealFifo<K> {
    /// A non-atomic RealFIFO: `replace` and `resync` expand into per-object
    /// deltas, reconciled against the known objects passed in.
    pub fn new() -> Self {
        Self {
            items: VecDeque::new(),
            populated: false,
            initial_population_count: 0,
            atomic: false,
            closed: false,
        }
    }

    /// An atomic RealFIFO: `replace`, `resync` and `bookmark` each queue one
    /// whole-set delta, and the consumer reconciles against its store.
    pub fn atomic() -> Self {
        Self {
            atomic: true,
            ..Self::new()
        }
    }

    // --- getters

    /// Whether the first `replace` (or any add, update or delete before it)
    /// happened and every entry queued by then has been processed.
    pub fn has_synced(&self) -> bool {
        self.populated && self.initial_population_count == 0
    }

    /// How many deltas are queued.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Whether this FIFO queues whole-set deltas.
    pub fn is_atomic(&self) -> bool {
        self.atomic
    }

    /// Whether `close` was called.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    // --- mutators

    /// Queues `Added(obj)`.
    pub fn add(&mut self, obj: Arc<K>) {
        self.populated = true;
        self.items.push_back(Delta::Added(obj));
    }

    /// Queues `Updated(obj)`.
    pub fn update(&mut self, obj: Arc<K>) {
        self.populated = true;
        self.items.push_back(Delta::Updated(obj));
    }

    /// Queues `Deleted(obj)`, always.
    pub fn delete(&mut self, obj: impl Into<DeletedObject<K>>) {
        self.populated = true;
        self.items.push_back(Delta::Deleted(obj.into()));
    }

    /// Queues a relist at `resource_version`: see the module table. `known`
    /// is ignored in atomic mode.
    pub fn replace(
        &mut self,
        list: Vec<Arc<K>>,
        resource_version: &str,
        known: Option<&dyn KnownObjects<K>>,
    ) {
        if self.atomic {
            self.items.push_back(Delta::ReplacedAll {
                resource_version: resource_version.to_owned(),
                objects: list,
            });
        } else {
            let mut deletions = Vec::new();
            reconcile_replacement(self.items.iter(), known, &list, |tombstone| {
                deletions.push(tombstone)
            });
            self.items.extend(deletions.into_iter().map(Delta::Deleted));
            self.items.extend(list.into_iter().map(Delta::Replaced));
        }
        if !self.populated {
            self.populated = true;
            self.initial_population_count = self.items.len();
        }
    }

    /// Records a relist its consumer applied to the store itself, page by
    /// page, instead of queueing it (the informer's streaming relist): for
    /// [`has_synced`](Self::has_synced) it counts as the first `replace`,
    /// with only what is already queued still to be processed.
    pub fn replaced_in_place(&mut self) {
        if !self.populated {
            self.populated = true;
            self.initial_population_count = self.items.len();
        }
    }

    /// Queues a resync: see the module table.
    pub fn resync(&mut self, known: Option<&dyn KnownObjects<K>>) {
        if self.atomic {
            self.items.push_back(Delta::SyncAll);
            return;
        }
        let Some(known) = known else { return };
        let queued: HashSet<ObjectKey> = self.items.iter().filter_map(Delta::key).collect();
        for key in known.list_keys() {
            if queued.contains(&key) {
                continue;
            }
            if let Some(obj) = known.get_by_key(&key) {
                self.items.push_back(Delta::Sync(obj));
            }
        }
    }

    /// Queues `Bookmark { rv }` in atomic mode; nothing otherwise.
    pub fn bookmark(&mut self, resource_version: &str) {
        if self.atomic {
            self.items.push_back(Delta::Bookmark {
                resource_version: resource_version.to_owned(),
            });
        }
    }

    /// Marks the FIFO closed: `pop` drains what is queued, then fails.
    pub fn close(&mut self) {
        self.closed = true;
    }

    // --- outputs

    /// Takes the oldest delta and runs `process(delta, is_in_initial_list)`.
    /// The initial count is decremented *after* `process` runs, as in client-go.
    /// `Ok(None)` when empty; `Err` when empty and closed.
    pub fn pop<R>(
        &mut self,
        process: impl FnOnce(Delta<K>, bool) -> R,
    ) -> Result<Option<R>, FifoClosed> {
        let Some(delta) = self.items.pop_front() else {
            return if self.closed {
                Err(FifoClosed)
            } else {
                Ok(None)
            };
        };
        let is_in_initial_list = !self.has_synced();
        let result = process(delta, is_in_initial_list);
        if self.initial_population_count > 0 {
            self.initial_population_count -= 1;
        }
        Ok(Some(result))
    }
}

impl<K: Object> Default for RealFifo<K> {
    fn default() -> Self {
        Self::new()
    }
}

/// client-go's `reconcileReplacement`: the tombstones a relist of `list`
/// implies, given what is `queued` and what is `known`. A queued key whose
/// last delta is a deletion needs no second one; a known key that is queued
/// is judged by its queued deltas.
pub(crate) fn reconcile_replacement<'a, K: Object + 'a>(
    queued: impl Iterator<Item = &'a Delta<K>>,
    known: Option<&dyn KnownObjects<K>>,
    list: &[Arc<K>],
    mut queue_delete: impl FnMut(DeletedObject<K>),
) {
    let new_keys: HashSet<ObjectKey> = list.iter().map(|o| o.key()).collect();
    let mut queued_keys = Vec::new();
    let mut last_for_key: HashMap<ObjectKey, &Delta<K>> = HashMap::new();
    for delta in queued {
        let Some(key) = delta.key() else { continue };
        if last_for_key.insert(key.clone(), delta).is_none() {
            queued_keys.push(key);
        }
    }
    for key in queued_keys {
        if new_keys.contains(&key) {
            continue;
        }
        let last = last_for_key[&key];
        if last.is_deleted() {
            continue;
        }
        queue_delete(DeletedObject::FinalStateUnknown {
            last: last.object().cloned(),
            key,
        });
    }
    let Some(known) = known else { return };
    for key in known.list_keys() {
        if new_keys.contains(&key) || last_for_key.contains_key(&key) {
            continue;
        }
        if let Some(last) = known.get_by_key(&key) {
            queue_delete(DeletedObject::FinalStateUnknown {
                key,
                last: Some(last),
            });
        }
    }
}
