//! [`DelayingQueue`]: a work queue whose items can wait until a ready time.

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashMap};
use std::hash::Hash;
use std::time::{Duration, Instant};

use super::{Fifo, ItemQueue, Next, WorkQueue};

/// A [`WorkQueue`] with [`add_after`](Self::add_after) (client-go's
/// `TypedDelayingInterface`). Waiting items sit in a min-heap by ready time;
/// for an item added after two delays the earlier ready time wins.
/// [`poll_timeout`](Self::poll_timeout) says when the next one is due and
/// [`handle_timeout`](Self::handle_timeout) moves the due ones into the queue.
#[derive(Clone, Debug)]
pub struct DelayingQueue<T, Q = Fifo<T>> {
    queue: WorkQueue<T, Q>,
    /// Entries whose `seq` no longer matches `ready` are stale and skipped.
    heap: BinaryHeap<Reverse<Waiting<T>>>,
    ready: HashMap<T, (Instant, u64)>,
    next_seq: u64,
}

#[derive(Clone, Debug)]
struct Waiting<T> {
    ready_at: Instant,
    seq: u64,
    item: T,
}

impl<T> PartialEq for Waiting<T> {
    fn eq(&self, other: &Self) -> bool {
        (self.ready_at, self.seq) == (other.ready_at, other.seq)
    }
}
impl<T> Eq for Waiting<T> {}
impl<T> PartialOrd for Waiting<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<T> Ord for Waiting<T> {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.ready_at, self.seq).cmp(&(other.ready_at, other.seq))
    }
}

impl<T: Hash + Eq + Clone> Default for DelayingQueue<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Hash + Eq + Clone> DelayingQueue<T> {
    /// An empty FIFO delaying queue.
    pub fn new() -> Self {
        Self::with_queue(WorkQueue::new())
    }
}

impl<T: Hash + Eq + Clone, Q: ItemQueue<T>> DelayingQueue<T, Q> {
    /// A delaying queue over `queue`.
    pub fn with_queue(queue: WorkQueue<T, Q>) -> Self {
        Self {
            queue,
            heap: BinaryHeap::new(),
            ready: HashMap::new(),
            next_seq: 0,
        }
    }

    // --- getters

    /// The work queue under the delays.
    pub fn queue(&self) -> &WorkQueue<T, Q> {
        &self.queue
    }

    /// How many items are ready to be handed out (waiting ones not counted).
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Whether no item is ready to be handed out.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// How many items are waiting for their ready time.
    pub fn waiting_len(&self) -> usize {
        self.ready.len()
    }

    /// See [`WorkQueue::is_shutting_down`].
    pub fn is_shutting_down(&self) -> bool {
        self.queue.is_shutting_down()
    }

    /// See [`WorkQueue::is_drained`].
    pub fn is_drained(&self) -> bool {
        self.queue.is_drained()
    }

    // --- inputs

    /// See [`WorkQueue::add`].
    pub fn add(&mut self, item: T) {
        self.queue.add(item);
    }

    /// Adds `item` once `delay` has passed since `now`; at once when `delay`
    /// is zero. If the item is already waiting, the earlier ready time wins.
    /// Ignored while shutting down.
    pub fn add_after(&mut self, item: T, delay: Duration, now: Instant) {
        if self.queue.is_shutting_down() {
            return;
        }
        if delay.is_zero() {
            self.queue.add(item);
            return;
        }
        // An unrepresentable ready time is "never"; keep the item waiting at
        // the latest instant we can name instead of overflowing.
        let ready_at = now.checked_add(delay).unwrap_or_else(|| far_future(now));
        if let Some(&(existing, _)) = self.ready.get(&item)
            && existing <= ready_at
        {
            return;
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.ready.insert(item.clone(), (ready_at, seq));
        self.heap.push(Reverse(Waiting {
            ready_at,
            seq,
            item,
        }));
        self.drop_stale();
    }

    /// Moves every item whose ready time is at or before `now` into the
    /// queue, earliest first.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(Reverse(top)) = self.heap.peek() {
            if top.ready_at > now {
                break;
            }
            let Some(Reverse(entry)) = self.heap.pop() else {
                break;
            };
            if self.ready.get(&entry.item).map(|&(_, seq)| seq) != Some(entry.seq) {
                continue;
            }
            self.ready.remove(&entry.item);
            self.queue.add(entry.item);
        }
        self.drop_stale();
    }

    /// See [`WorkQueue::get`]. Call [`handle_timeout`](Self::handle_timeout)
    /// first so due items are included.
    pub fn get(&mut self) -> Next<T> {
        self.queue.get()
    }

    /// See [`WorkQueue::done`].
    pub fn done(&mut self, item: &T) {
        self.queue.done(item);
    }

    /// See [`WorkQueue::shut_down`]; waiting items are dropped.
    pub fn shut_down(&mut self) {
        self.queue.shut_down();
        self.clear_waiting();
    }

    /// See [`WorkQueue::shut_down_with_drain`]; waiting items are dropped.
    pub fn shut_down_with_drain(&mut self) {
        self.queue.shut_down_with_drain();
        self.clear_waiting();
    }

    // --- outputs

    /// When the next waiting item is due, if any is waiting (and the queue is
    /// not shut down). The adapter wakes then and calls
    /// [`handle_timeout`](Self::handle_timeout).
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse(top)| top.ready_at)
    }

    fn clear_waiting(&mut self) {
        self.heap.clear();
        self.ready.clear();
    }

    /// Pops superseded entries off the top so `poll_timeout` is exact.
    fn drop_stale(&mut self) {
        while let Some(Reverse(top)) = self.heap.peek() {
            if self.ready.get(&top.item).map(|&(_, seq)| seq) == Some(top.seq) {
                break;
            }
            self.heap.pop();
        }
    }
}

/// About a century after `now`: "never", as a representable instant.
fn far_future(now: Instant) -> Instant {
    const CENTURY: Duration = Duration::from_secs(100 * 365 * 24 * 3600);
    now.checked_add(CENTURY).unwrap_or(now)
}
