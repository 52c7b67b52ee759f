//! client-go's `DeltaFIFO`: one queue slot per key holding every delta for
//! that key since it was last popped. This module owns queueing, the dedup
//! of repeated deletions, deletion detection on `replace` and the
//! initial-population count behind [`DeltaFifo::has_synced`]. It does not
//! transform objects (the informer transforms before queueing) and does not
//! own the known-objects store: calls that consult it take it as an argument.
//!
//! | call | queues |
//! |---|---|
//! | `add` / `update` | `Added` / `Updated` |
//! | `delete` | `Deleted`, unless the key is neither queued nor known |
//! | `replace(list)` | `Replaced` (or `Sync`) per item; `Deleted(FinalStateUnknown)` for each queued, then each known-but-unqueued key missing from the list |
//! | `resync` | `Sync` for each known key with nothing queued |
//!
//! After appending, if the last two deltas of a key are both `Deleted`, the
//! older is kept — unless it is a tombstone, then the newer.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

use super::FifoClosed;
use super::delta::{DeletedObject, Delta};
use super::store::KnownObjects;
use crate::object::{Object, ObjectKey};

/// client-go's `DeltaFIFO`.
pub struct DeltaFifo<K> {
    items: HashMap<ObjectKey, Vec<Delta<K>>>,
    queue: VecDeque<ObjectKey>,
    populated: bool,
    initial_population_count: usize,
    emit_replaced: bool,
    closed: bool,
}

impl<K> std::fmt::Debug for DeltaFifo<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeltaFifo")
            .field("queue", &self.queue)
            .field("populated", &self.populated)
            .field("initial_population_count", &self.initial_population_count)
            .field("closed", &self.closed)
            .finish()
    }
}

impl<K: Object> Default for DeltaFifo<K> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: Object> DeltaFifo<K> {
    /// A FIFO whose `replace` queues `Sync` deltas (client-go's default).
    pub fn new() -> Self {
        Self {
            items: HashMap::new(),
            queue: VecDeque::new(),
            populated: false,
            initial_population_count: 0,
            emit_replaced: false,
            closed: false,
        }
    }

    /// A FIFO whose `replace` queues `Replaced` deltas
    /// (`EmitDeltaTypeReplaced`, which informers set).
    pub fn emitting_replaced() -> Self {
        Self {
            emit_replaced: true,
            ..Self::new()
        }
    }

    // --- getters

    /// Whether the first `replace` (or any add, update or delete before it)
    /// happened and every item it queued has been popped.
    pub fn has_synced(&self) -> bool {
        self.populated && self.initial_population_count == 0
    }

    /// How many keys are queued.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Whether `close` was called.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// The deltas queued for `key`, oldest first.
    pub fn deltas(&self, key: &ObjectKey) -> Option<&[Delta<K>]> {
        self.items.get(key).map(Vec::as_slice)
    }

    // --- mutators

    /// Queues `Added(obj)`.
    pub fn add(&mut self, obj: Arc<K>) {
        self.populated = true;
        self.queue_action(Delta::Added(obj));
    }

    /// Queues `Updated(obj)`.
    pub fn update(&mut self, obj: Arc<K>) {
        self.populated = true;
        self.queue_action(Delta::Updated(obj));
    }

    /// Queues `Deleted(obj)`; dropped when the key has nothing queued and
    /// (with `known`) is not known either.
    pub fn delete(
        &mut self,
        obj: impl Into<DeletedObject<K>>,
        known: Option<&dyn KnownObjects<K>>,
    ) {
        let obj = obj.into();
        let key = obj.key();
        self.populated = true;
        let queued = self.items.contains_key(&key);
        let is_known = known.is_some_and(|k| k.get_by_key(&key).is_some());
        if !queued && !is_known {
            return;
        }
        self.queue_action(Delta::Deleted(obj));
    }

    /// Queues a relist: see the module table.
    pub fn replace(&mut self, list: Vec<Arc<K>>, known: Option<&dyn KnownObjects<K>>) {
        let mut keys = HashSet::with_capacity(list.len());
        for obj in list {
            keys.insert(obj.key());
            self.queue_action(if self.emit_replaced {
                Delta::Replaced(obj)
            } else {
                Delta::Sync(obj)
            });
        }

        let mut queued_deletions = 0;
        let missing: Vec<ObjectKey> = self
            .queue
            .iter()
            .filter(|k| !keys.contains(*k))
            .cloned()
            .collect();
        for key in missing {
            let last = self.items[&key].last().and_then(|d| d.object()).cloned();
            queued_deletions += 1;
            self.queue_action(Delta::Deleted(DeletedObject::FinalStateUnknown {
                key,
                last,
            }));
        }

        if let Some(known) = known {
            for key in known.list_keys() {
                if keys.contains(&key) || self.items.contains_key(&key) {
                    continue;
                }
                let last = known.get_by_key(&key);
                queued_deletions += 1;
                self.queue_action(Delta::Deleted(DeletedObject::FinalStateUnknown {
                    key,
                    last,
                }));
            }
        }

        if !self.populated {
            self.populated = true;
            self.initial_population_count = keys.len() + queued_deletions;
        }
    }

    /// Queues `Sync` for every known object whose key has nothing queued.
    pub fn resync(&mut self, known: Option<&dyn KnownObjects<K>>) {
        let Some(known) = known else { return };
        for key in known.list_keys() {
            let Some(obj) = known.get_by_key(&key) else {
                continue;
            };
            if self.items.contains_key(&obj.key()) {
                continue;
            }
            self.queue_action(Delta::Sync(obj));
        }
    }

    /// Marks the FIFO closed: `pop` drains what is queued, then fails.
    pub fn close(&mut self) {
        self.closed = true;
    }

    // --- outputs

    /// Takes the oldest key's deltas and runs `process(deltas, is_in_initial_list)`.
    /// The initial count is decremented *before* `process` runs, as in client-go.
    /// `Ok(None)` when empty; `Err` when empty and closed.
    pub fn pop<R>(
        &mut self,
        process: impl FnOnce(Vec<Delta<K>>, bool) -> R,
    ) -> Result<Option<R>, FifoClosed> {
        loop {
            let Some(key) = self.queue.pop_front() else {
                return if self.closed {
                    Err(FifoClosed)
                } else {
                    Ok(None)
                };
            };
            let is_in_initial_list = !self.has_synced();
            if self.initial_population_count > 0 {
                self.initial_population_count -= 1;
            }
            let Some(deltas) = self.items.remove(&key) else {
                continue;
            };
            return Ok(Some(process(deltas, is_in_initial_list)));
        }
    }

    fn queue_action(&mut self, delta: Delta<K>) {
        let key = delta.key().expect("per-object delta");
        let deltas = match self.items.get_mut(&key) {
            Some(deltas) => deltas,
            None => {
                self.queue.push_back(key.clone());
                self.items.entry(key).or_default()
            }
        };
        deltas.push(delta);
        dedup_deletions(deltas);
    }
}

/// client-go's `dedupDeltas`: only the last two deltas are compared.
fn dedup_deletions<K>(deltas: &mut Vec<Delta<K>>) {
    let n = deltas.len();
    if n < 2 {
        return;
    }
    let (Delta::Deleted(older), Delta::Deleted(_)) = (&deltas[n - 2], &deltas[n - 1]) else {
        return;
    };
    if older.is_final_state_unknown() {
        deltas.swap(n - 2, n - 1);
    }
    deltas.pop();
}
