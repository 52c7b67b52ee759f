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
//! Not modelled, because they exist only to make Go's goroutines wake: the
//! delaying queue's 1000-entry channel and its 10 s heartbeat.

mod delaying;
mod rate_limiting;

pub use delaying::DelayingQueue;
pub use rate_limiting::RateLimitingQueue;

use std::collections::{HashSet, VecDeque};
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
#[derive(Clone, Debug)]
pub struct WorkQueue<T, Q = Fifo<T>> {
    queue: Q,
    dirty: HashSet<T>,
    processing: HashSet<T>,
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
            dirty: HashSet::new(),
            processing: HashSet::new(),
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
        self.processing.len()
    }

    /// Whether `item` is handed out and not yet done.
    pub fn is_processing(&self, item: &T) -> bool {
        self.processing.contains(item)
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
        !self.drain || self.processing.is_empty()
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
        if self.dirty.contains(&item) {
            if !self.processing.contains(&item) {
                self.queue.touch(&item);
            }
            return;
        }
        self.dirty.insert(item.clone());
        self.adds += 1;
        if self.processing.contains(&item) {
            return;
        }
        self.queue.push(item);
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
        self.dirty.remove(&item);
        self.processing.insert(item.clone());
        Next::Item(item)
    }

    /// Marks `item` as processed; if it was added meanwhile it is queued
    /// again. An item that is not being processed is ignored.
    pub fn done(&mut self, item: &T) {
        if !self.processing.remove(item) {
            return;
        }
        if self.dirty.contains(item) {
            self.queue.push(item.clone());
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

#[cfg(test)]
mod tests;
