use std::collections::HashSet;
use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::*;
use crate::ratelimit::ItemExponentialFailure;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A FIFO that counts `touch` calls, like client-go's test queue.
#[derive(Default)]
struct Touched {
    fifo: Fifo<&'static str>,
    touches: Vec<&'static str>,
}

impl ItemQueue<&'static str> for Touched {
    fn push(&mut self, item: &'static str) {
        self.fifo.push(item)
    }
    fn pop(&mut self) -> Option<&'static str> {
        self.fifo.pop()
    }
    fn len(&self) -> usize {
        self.fifo.len()
    }
    fn touch(&mut self, item: &&'static str) {
        self.touches.push(item)
    }
}

// client-go queue_test.go TestLen
#[test]
fn queue_len_counts_distinct_waiting_items() {
    let mut q = WorkQueue::new();
    q.add("foo");
    assert_eq!(q.len(), 1);
    q.add("bar");
    assert_eq!(q.len(), 2);
    q.add("foo"); // already there
    assert_eq!(q.len(), 2);
}

// client-go queue_test.go TestReinsert
#[test]
fn queue_reinsert_while_processing_is_handed_out_again_after_done() {
    let mut q = WorkQueue::new();
    q.add("foo");
    assert_eq!(q.get(), Next::Item("foo"));
    q.add("foo");
    assert_eq!(q.len(), 0, "not queued while processing");
    q.done(&"foo");
    assert_eq!(q.len(), 1);
    assert_eq!(q.get(), Next::Item("foo"));
    q.done(&"foo");
    assert_eq!(q.len(), 0);
    assert_eq!(q.get(), Next::Wait);
}

// client-go queue_test.go TestQueueDrainageUsingShutDownWithDrain / TestForceQueueShutdownUsingShutDown
#[test]
fn queue_shut_down_with_drain_waits_for_done_and_shut_down_cuts_it_short() {
    let mut q = WorkQueue::new();
    q.add("foo");
    q.add("bar");
    let first = q.get().item().unwrap();
    let second = q.get().item().unwrap();
    q.shut_down_with_drain();
    assert!(!q.is_drained(), "two items are being processed");
    q.done(&first);
    assert!(!q.is_drained(), "one item is still being processed");
    q.done(&second);
    assert!(q.is_drained());
    assert_eq!(q.get(), Next::ShutDown);

    // ShutDown forces a drain to end while items are still out.
    let mut q = WorkQueue::new();
    q.add("foo");
    q.add("bar");
    q.get();
    q.get();
    q.shut_down_with_drain();
    assert!(!q.is_drained());
    q.shut_down();
    assert!(q.is_drained());
}

// client-go queue_test.go TestQueueDrainageUsingShutDownWithDrainWithDirtyItem
#[test]
fn queue_drain_with_dirty_item_hands_it_out_before_shutdown() {
    let mut q = WorkQueue::new();
    q.add("foo");
    let item = q.get().item().unwrap();
    q.add("foo"); // dirty while processing
    q.shut_down_with_drain();
    assert!(!q.is_drained());
    q.done(&item);
    assert_eq!(q.get(), Next::Item("foo"), "the dirty item, not shutdown");
    assert!(!q.is_drained());
    q.done(&"foo");
    assert!(q.is_drained());
    assert_eq!(q.get(), Next::ShutDown);
}

// client-go queue_test.go TestBasic (the add-after-shutdown part) and TestAddWhileProcessing
#[test]
fn queue_add_after_shut_down_is_never_delivered() {
    let mut q = WorkQueue::new();
    q.add(1);
    q.add(2);
    q.shut_down();
    q.add(3);
    let mut got = Vec::new();
    while let Next::Item(item) = q.get() {
        got.push(item);
        q.add(item); // re-adds during shutdown are ignored too
        q.done(&item);
    }
    assert_eq!(got, [1, 2]);
    assert_eq!(q.get(), Next::ShutDown);
}

// client-go queue_test.go TestCollapse
#[test]
fn queue_collapse_duplicate_adds_into_one_get_and_touch() {
    let mut q = WorkQueue::with_store(Touched::default());
    q.add("bar");
    q.add("bar");
    assert_eq!(q.get(), Next::Item("bar"));
    assert_eq!(q.get(), Next::Wait, "only one item");
    q.done(&"bar");
    assert_eq!(q.store().touches, ["bar"], "Touch called once");
}

// client-go queue_test.go TestCollapseWhileProcessing
#[test]
fn queue_collapse_while_processing_waits_for_done_without_touch() {
    let mut q = WorkQueue::with_store(Touched::default());
    q.add("foo");
    assert_eq!(q.get(), Next::Item("foo"));
    q.add("foo");
    q.add("foo");
    assert_eq!(q.get(), Next::Wait, "blocks until done(foo)");
    q.done(&"foo");
    assert_eq!(q.get(), Next::Item("foo"));
    q.done(&"foo");
    assert_eq!(q.get(), Next::Wait);
    assert!(q.store().touches.is_empty(), "no Touch while processing");
}

#[test]
fn queue_done_of_an_unknown_item_is_ignored() {
    let mut q = WorkQueue::new();
    q.done(&"ghost");
    q.add("a");
    q.done(&"a"); // queued, not processing
    assert_eq!(q.get(), Next::Item("a"));
    assert_eq!(q.get(), Next::Wait);
}

// client-go delaying_queue_test.go TestSimpleQueue
#[test]
fn queue_delaying_simple_holds_item_until_ready() {
    let t0 = Instant::now();
    let mut q = DelayingQueue::new();
    q.add_after("foo", ms(50), t0);
    q.handle_timeout(t0);
    assert_eq!(q.len(), 0);
    assert_eq!(q.poll_timeout(), Some(t0 + ms(50)));
    q.handle_timeout(t0 + ms(60));
    assert_eq!(q.len(), 1);
    assert_eq!(q.get(), Next::Item("foo"));
    q.done(&"foo");
    q.handle_timeout(t0 + ms(60) + Duration::from_secs(10));
    assert_eq!(q.len(), 0, "no extra item after a further 10 s step");
    assert_eq!(q.poll_timeout(), None);
}

// client-go delaying_queue_test.go TestDeduping
#[test]
fn queue_delaying_deduping_earlier_ready_time_wins() {
    let t0 = Instant::now();
    let mut q = DelayingQueue::new();
    q.add_after("foo", ms(50), t0);
    q.add_after("foo", ms(70), t0);
    q.handle_timeout(t0 + ms(60));
    assert_eq!(q.len(), 1);
    assert_eq!(q.get(), Next::Item("foo"));
    q.done(&"foo");
    q.handle_timeout(t0 + ms(80));
    assert_eq!(q.len(), 0, "fires once");

    let t1 = t0 + ms(100);
    q.add_after("foo", ms(50), t1);
    q.add_after("foo", ms(30), t1);
    assert_eq!(q.poll_timeout(), Some(t1 + ms(30)));
    q.handle_timeout(t1 + ms(40));
    assert_eq!(q.len(), 1);
    assert_eq!(q.get(), Next::Item("foo"));
    q.done(&"foo");
    q.handle_timeout(t1 + ms(60));
    assert_eq!(q.len(), 0, "the later entry does not fire again");
    assert_eq!(q.waiting_len(), 0);
}

// client-go delaying_queue_test.go TestAddTwoFireEarly
#[test]
fn queue_delaying_add_two_fire_early_in_ready_order() {
    let t0 = Instant::now();
    let mut q = DelayingQueue::new();
    q.add_after("foo", Duration::from_secs(1), t0);
    q.add_after("bar", ms(50), t0);
    let t = t0 + ms(60);
    q.handle_timeout(t);
    assert_eq!(q.len(), 1);
    assert_eq!(q.get(), Next::Item("bar"));
    q.add_after("baz", Duration::from_secs(2), t);
    let t = t + Duration::from_secs(1);
    q.handle_timeout(t);
    assert_eq!(q.len(), 1);
    assert_eq!(q.get(), Next::Item("foo"));
    let t = t + Duration::from_secs(2);
    q.handle_timeout(t);
    assert_eq!(q.len(), 1);
    assert_eq!(q.get(), Next::Item("baz"));
}

// client-go delaying_queue_test.go TestCopyShifting
#[test]
fn queue_delaying_copy_shifting_releases_earliest_first() {
    let t0 = Instant::now();
    let mut q = DelayingQueue::new();
    q.add_after("foo", Duration::from_secs(1), t0);
    q.add_after("bar", ms(500), t0);
    q.add_after("baz", ms(250), t0);
    q.handle_timeout(t0 + Duration::from_secs(2));
    assert_eq!(q.len(), 3);
    let order: Vec<_> = (0..3).map(|_| q.get().item().unwrap()).collect();
    assert_eq!(order, ["baz", "bar", "foo"]);
}

#[test]
fn queue_delaying_zero_delay_adds_at_once_and_shutdown_drops_waiting() {
    let t0 = Instant::now();
    let mut q = DelayingQueue::new();
    q.add_after("now", Duration::ZERO, t0);
    assert_eq!(q.len(), 1);
    q.add_after("later", ms(10), t0);
    q.add_after("never", Duration::MAX, t0);
    assert_eq!(q.waiting_len(), 2);
    q.shut_down();
    assert_eq!(q.poll_timeout(), None);
    q.add_after("ignored", ms(1), t0);
    q.handle_timeout(t0 + Duration::from_secs(3600));
    assert_eq!(q.get(), Next::Item("now"));
    assert_eq!(q.get(), Next::ShutDown);
}

// client-go rate_limiting_queue_test.go TestRateLimitingQueue
#[test]
fn queue_rate_limiting_delays_by_limiter_and_forget_resets() {
    let t0 = Instant::now();
    let limiter = ItemExponentialFailure::new(ms(1), Duration::from_secs(1));
    let mut q = RateLimitingQueue::new(limiter);

    assert_eq!(q.add_rate_limited("one", t0), ms(1));
    assert_eq!(q.poll_timeout(), Some(t0 + ms(1)));
    assert_eq!(q.add_rate_limited("one", t0), ms(2));
    // The earlier ready time is kept for the duplicate; the limiter counted both.
    assert_eq!(q.num_requeues(&"one"), 2);
    q.handle_timeout(t0 + ms(1));
    assert_eq!(q.get(), Next::Item("one"));
    q.done(&"one");

    assert_eq!(q.add_rate_limited("two", t0), ms(1));
    assert_eq!(q.add_rate_limited("two", t0), ms(2));
    assert_eq!(q.num_requeues(&"two"), 2);

    q.forget(&"one");
    assert_eq!(q.num_requeues(&"one"), 0);
    let t1 = t0 + ms(10);
    assert_eq!(q.add_rate_limited("one", t1), ms(1));
    assert_eq!(
        q.poll_timeout(),
        Some(t0 + ms(1)),
        "two's ready time is first"
    );
    q.handle_timeout(t1 + ms(1));
    let mut got: Vec<_> = (0..2).map(|_| q.get().item().unwrap()).collect();
    got.sort();
    assert_eq!(got, ["one", "two"]);
}

#[test]
fn queue_rate_limiting_default_uses_controller_limiter() {
    let t0 = Instant::now();
    let mut q: RateLimitingQueue<u32, _> = RateLimitingQueue::default();
    assert_eq!(q.add_rate_limited(1, t0), ms(5));
    assert_eq!(q.add_rate_limited(1, t0), ms(10));
    assert_eq!(q.num_requeues(&1), 2);
}

#[derive(Clone, Debug)]
enum Op {
    Add(u8),
    AddAfter(u8, u16),
    Get,
    Done(usize),
    Advance(u16),
    ShutDown,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u8..8).prop_map(Op::Add),
        2 => (0u8..8, 0u16..100).prop_map(|(i, d)| Op::AddAfter(i, d)),
        4 => Just(Op::Get),
        3 => any::<usize>().prop_map(Op::Done),
        2 => (0u16..100).prop_map(Op::Advance),
        1 => Just(Op::ShutDown),
    ]
}

proptest! {
    /// Under any sequence of calls: an item is never handed out while it is
    /// being processed, never queued twice, and every item added before
    /// shutdown is handed out after its last add.
    #[test]
    fn queue_never_hands_out_an_item_twice_at_once_and_loses_none(ops in proptest::collection::vec(op(), 0..200)) {
        let t0 = Instant::now();
        let mut now = t0;
        let mut q = DelayingQueue::new();
        let mut out: Vec<u8> = Vec::new();
        // Items added (or due) since they were last handed out.
        let mut owed: HashSet<u8> = HashSet::new();
        let mut waiting: std::collections::HashMap<u8, Instant> = Default::default();
        let mut shut = false;
        for op in ops {
            match op {
                Op::Add(i) => { q.add(i); if !shut { owed.insert(i); } }
                Op::AddAfter(i, d) => {
                    q.add_after(i, ms(d.into()), now);
                    if !shut {
                        if d == 0 { owed.insert(i); } else {
                            let at = now + ms(d.into());
                            let e = waiting.entry(i).or_insert(at);
                            if at < *e { *e = at; }
                        }
                    }
                }
                Op::Get => match q.get() {
                    Next::Item(i) => {
                        prop_assert!(!out.contains(&i), "{i} handed out twice at once");
                        out.push(i);
                        owed.remove(&i);
                    }
                    Next::Wait => prop_assert!(q.is_empty()),
                    Next::ShutDown => prop_assert!(shut && q.is_empty()),
                },
                Op::Done(n) => if !out.is_empty() {
                    let i = out.remove(n % out.len());
                    q.done(&i);
                },
                Op::Advance(d) => {
                    now += ms(d.into());
                    q.handle_timeout(now);
                    waiting.retain(|&i, at| if *at <= now { if !shut { owed.insert(i); } false } else { true });
                }
                Op::ShutDown => { q.shut_down(); shut = true; waiting.clear(); }
            }
            prop_assert_eq!(q.waiting_len(), waiting.len());
            prop_assert_eq!(q.poll_timeout(), waiting.values().min().copied());
        }
        // Finish everything: every owed item comes out.
        for i in out.drain(..) { q.done(&i); }
        while let Next::Item(i) = q.get() {
            owed.remove(&i);
            q.done(&i);
        }
        prop_assert!(owed.is_empty(), "lost {owed:?}");
        prop_assert_eq!(q.queue().processing_len(), 0);
        prop_assert!(q.queue().marks.is_empty(), "no bookkeeping left behind");
    }
}
