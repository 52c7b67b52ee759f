//! Work queues with client-go's semantics (`util/workqueue`): the plain
//! [`WorkQueue`], the [`DelayingQueue`] that holds items until a ready time,
//! and the [`RateLimitingQueue`] that delays a failed item by what its
//! [`RateLimiter`](crate::ratelimit::RateLimiter) says. This module owns the
//! bookkeeping; waiting belongs to the adapters, so [`WorkQueue::get`] never
//! blocks: it says [`Next::Wait`] and the adapter waits for an `add` or for
//! [`DelayingQueue::poll_timeout`].
//!
//! A work queue keeps three structures:
//!
//! - `queue`: items ready to be handed out, in order;
//! - `dirty`: items that need processing (every queued item, and any item
//!   added again while it is being processed);
//! - `processing`: items handed out by `get` and not yet `done`.
//!
//! So an item is processed by at most one worker at a time, duplicates
//! collapse, and an item added while it is processed is handed out again
//! after `done`.
//!
//! The driving loop of an adapter's worker (the queue lives behind a mutex
//! and a notifier that every `add` signals):
//!
//! ```
//! use std::time::{Duration, Instant};
//! use windlass_proto::queue::{DelayingQueue, Next};
//!
//! let mut queue = DelayingQueue::new();
//! let start = Instant::now();
//! queue.add_after("pod-a", Duration::from_millis(50), start);
//! let mut now = start;
//! let mut handled = Vec::new();
//! loop {
//!     queue.handle_timeout(now);                  // release the items that are due
//!     match queue.get() {
//!         Next::Item(item) => {
//!             handled.push((item, now - start));  // reconcile `item` here …
//!             queue.done(&item);                  // … then mark it done
//!         }
//!         Next::Wait => match queue.poll_timeout() {
//!             Some(wake) => now = wake,           // sleep until `wake` or an `add`
//!             None => queue.shut_down(),          // (a real worker waits for an `add`)
//!         },
//!         Next::ShutDown => break,
//!     }
//! }
//! assert_eq!(handled, [("pod-a", Duration::from_millis(50))]);
//! ```
//!
//! What an adapter with several workers needs to know to wake them, read
//! after every call on the queue (all are cheap getters):
//!
//! - `len() > 0`: an item is ready — wake one waiting worker (an `add`, a
//!   `done` that re-queued a dirty item, or `handle_timeout` releasing items);
//! - `poll_timeout()`: the instant the timer should fire — re-arm it when it
//!   changed (an `add_after` with an earlier ready time);
//! - `is_shutting_down()`: wake every worker so each sees [`Next::ShutDown`]
//!   once the queue is empty;
//! - `is_drained()`: wake whoever waits in `shut_down_with_drain`.
//!
//! Not modelled, because they exist only to make Go's goroutines wake: the
//! delaying queue's 1000-entry channel and its 10 s heartbeat.

mod delaying;
mod rate_limiting;

pub use delaying::DelayingQueue;
pub use rate_limiting::RateLimitingQueue;

use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};
use std::hash::Hash;

/// What [`WorkQueue::get`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Next<T> {
    /// An item to process; call `done` with it afterwards.
    Item(T),
    /// Nothing is ready: wait for an `add` (or a delayed item's ready time).
    Wait,
    /// The queue is shutting down and empty: the worker should exit.
    ShutDown,
}

impl<T> Next<T> {
    /// The item, if one was handed out.
    pub fn item(self) -> Option<T> {
        match self {
            Next::Item(item) => Some(item),
            Next::Wait | Next::ShutDown => None,
        }
    }
}

/// The ordered store under a [`WorkQueue`] (client-go's `Queue` interface):
/// FIFO by default; a priority order can be plugged in.
pub trait ItemQueue<T> {
    /// Appends an item that is not in the store.
    fn push(&mut self, item: T);
    /// Removes and returns the next item.
    fn pop(&mut self) -> Option<T>;
    /// How many items the store holds.
    fn len(&self) -> usize;
    /// Whether the store is empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Tells the store that `item`, already in it, was added again (a priority
    /// store may reorder it; the FIFO does nothing).
    fn touch(&mut self, item: &T);
}

/// First in, first out: the default [`ItemQueue`].
#[derive(Clone, Debug)]
pub struct Fifo<T>(VecDeque<T>);

impl<T> Default for Fifo<T> {
    fn default() -> Self {
        Self(VecDeque::new())
    }
}

impl<T> ItemQueue<T> for Fifo<T> {
    fn push(&mut self, item: T) {
        self.0.push_back(item);
    }
    fn pop(&mut self) -> Option<T> {
        self.0.pop_front()
    }
    fn len(&self) -> usize {
        self.0.len()
    }
    fn touch(&mut self, _item: &T) {}
}

/// A work queue (client-go's `workqueue.Typed`): dirty and processing sets
/// over an ordered store.
///
/// The two sets share one map (an item is in it while it is dirty, being
/// processed, or both), so each call hashes the item once.
#[derive(Clone, Debug)]
pub struct WorkQueue<T, Q = Fifo<T>> {
    queue: Q,
    marks: HashMap<T, Mark>,
    processing: usize,
    shutting_down: bool,
    drain: bool,
    adds: u64,
}

impl<T: Hash + Eq + Clone> Default for WorkQueue<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Hash + Eq + Clone> WorkQueue<T> {
    /// An empty FIFO work queue.
    pub fn new() -> Self {
        Self::with_store(Fifo::default())
    }
}

impl<T: Hash + Eq + Clone, Q: ItemQueue<T>> WorkQueue<T, Q> {
    /// An empty work queue over `store`.
    pub fn with_store(store: Q) -> Self {
        Self {
            queue: store,
            marks: HashMap::new(),
            processing: 0,
            shutting_down: false,
            drain: false,
            adds: 0,
        }
    }

    // --- getters

    /// How many items are waiting to be handed out (not those being processed).
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Whether no item is waiting to be handed out.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// How many items are handed out and not yet done.
    pub fn processing_len(&self) -> usize {
        self.processing
    }

    /// Whether `item` is handed out and not yet done.
    pub fn is_processing(&self, item: &T) -> bool {
        self.marks.get(item).is_some_and(|m| m.processing)
    }

    /// Whether [`shut_down`](Self::shut_down) or
    /// [`shut_down_with_drain`](Self::shut_down_with_drain) was called.
    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down
    }

    /// Whether a drain requested by
    /// [`shut_down_with_drain`](Self::shut_down_with_drain) is over: no item
    /// is being processed, or a plain [`shut_down`](Self::shut_down) cut the
    /// drain short. An adapter's `shut_down_with_drain` waits until this holds,
    /// checking after every `done` and `shut_down`.
    pub fn is_drained(&self) -> bool {
        !self.drain || self.processing == 0
    }

    /// How many adds marked an item as needing processing since the queue
    /// was made (client-go's `adds` metric: collapsed duplicates and adds
    /// during shutdown do not count).
    pub fn adds(&self) -> u64 {
        self.adds
    }

    /// The store under the queue.
    pub fn store(&self) -> &Q {
        &self.queue
    }

    // --- inputs

    /// Marks `item` as needing processing. Ignored while shutting down; an
    /// item already waiting is not queued twice; an item being processed is
    /// queued again when it is done.
    pub fn add(&mut self, item: T) {
        if self.shutting_down {
            return;
        }
        match self.marks.entry(item) {
            Entry::Occupied(mut entry) => {
                let mark = entry.get_mut();
                if mark.dirty {
                    if !mark.processing {
                        self.queue.touch(entry.key());
                    }
                    return;
                }
                // Being processed: it goes back into the queue at `done`.
                mark.dirty = true;
                self.adds += 1;
            }
            Entry::Vacant(entry) => {
                let item = entry.key().clone();
                entry.insert(Mark {
                    dirty: true,
                    processing: false,
                });
                self.adds += 1;
                self.queue.push(item);
            }
        }
    }

    /// Hands out the next item, which is then being processed until
    /// [`done`](Self::done). Never blocks: [`Next::Wait`] when nothing is
    /// ready, [`Next::ShutDown`] when shutting down and empty.
    pub fn get(&mut self) -> Next<T> {
        let Some(item) = self.queue.pop() else {
            return if self.shutting_down {
                Next::ShutDown
            } else {
                Next::Wait
            };
        };
        let mark = self.marks.entry(item.clone()).or_default();
        mark.dirty = false;
        mark.processing = true;
        self.processing += 1;
        Next::Item(item)
    }

    /// Marks `item` as processed; if it was added meanwhile it is queued
    /// again. An item that is not being processed is ignored.
    pub fn done(&mut self, item: &T) {
        let Some(mark) = self.marks.get_mut(item).filter(|m| m.processing) else {
            return;
        };
        mark.processing = false;
        self.processing -= 1;
        if mark.dirty {
            self.queue.push(item.clone());
        } else {
            self.marks.remove(item);
        }
    }

    /// Stops accepting items; queued items can still be taken with `get`,
    /// which says [`Next::ShutDown`] once none is left. Also ends a drain
    /// started by [`shut_down_with_drain`](Self::shut_down_with_drain).
    pub fn shut_down(&mut self) {
        self.shutting_down = true;
        self.drain = false;
    }

    /// As [`shut_down`](Self::shut_down), and the caller will wait until every
    /// item handed out is done: see [`is_drained`](Self::is_drained).
    pub fn shut_down_with_drain(&mut self) {
        self.shutting_down = true;
        self.drain = true;
    }
}

/// Where an item stands: `dirty` (needs processing) and/or `processing`
/// (handed out, not yet done). Items with neither are not in the map.
#[derive(Clone, Copy, Debug, Default)]
struct Mark {
    dirty: bool,
    processing: bool,
}

#[cfg(test)]
mod tests;
