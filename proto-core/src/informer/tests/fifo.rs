use std::sync::Arc;

use k8s_openapi::api::core::v1::ConfigMap;

use super::cm;
use crate::informer::{DeletedObject, Delta, DeltaFifo, FifoClosed, RealFifo, Store};
use crate::object::{Object, ObjectKey};

type Cm = ConfigMap;

fn name_value(o: &Arc<Cm>) -> String {
    format!("{}{}", o.key(), o.resource_version().unwrap_or(""))
}

/// `Added foo10`, `Del DFSU{bar,bar6}`, `ReplacedAll{123,[]}` …
fn show(delta: &Delta<Cm>) -> String {
    match delta {
        Delta::Added(o) => format!("Added {}", name_value(o)),
        Delta::Updated(o) => format!("Updated {}", name_value(o)),
        Delta::Replaced(o) => format!("Replaced {}", name_value(o)),
        Delta::Sync(o) => format!("Sync {}", name_value(o)),
        Delta::Deleted(DeletedObject::Object(o)) => format!("Del {}", name_value(o)),
        Delta::Deleted(DeletedObject::FinalStateUnknown { key, last }) => format!(
            "Del DFSU{{{key},{}}}",
            last.as_ref().map(name_value).unwrap_or_default()
        ),
        Delta::ReplacedAll {
            resource_version,
            objects,
        } => format!(
            "ReplacedAll{{{resource_version},[{}]}}",
            objects.iter().map(name_value).collect::<Vec<_>>().join(",")
        ),
        Delta::SyncAll => "SyncAll".into(),
        Delta::Bookmark { resource_version } => format!("Bookmark {resource_version}"),
    }
}

fn pop_delta(f: &mut DeltaFifo<Cm>) -> Vec<String> {
    f.pop(|deltas, _| deltas.iter().map(show).collect())
        .unwrap()
        .expect("an item")
}

fn drain_delta(f: &mut DeltaFifo<Cm>) -> Vec<Vec<String>> {
    std::iter::from_fn(|| f.pop(|d, _| d.iter().map(show).collect()).ok().flatten()).collect()
}

fn drain_real(f: &mut RealFifo<Cm>) -> Vec<String> {
    std::iter::from_fn(|| f.pop(|d, _| show(&d)).ok().flatten()).collect()
}

/// The newest value of each popped item (client-go's `testPop` helper).
fn newest(f: &mut DeltaFifo<Cm>) -> u64 {
    f.pop(|d, _| {
        d.last()
            .unwrap()
            .object()
            .unwrap()
            .resource_version()
            .unwrap()
            .parse()
            .unwrap()
    })
    .unwrap()
    .expect("an item")
}

fn known(objs: &[Arc<Cm>]) -> Store<Cm> {
    let mut s = Store::new();
    for o in objs {
        s.add(o.clone());
    }
    s
}

fn key(s: &str) -> ObjectKey {
    ObjectKey::from_raw(s)
}

// ---- DeltaFIFO (delta_fifo_test.go)

// TestDeltaFIFO_detectLineJumpers
#[test]
fn fifo_delta_detect_line_jumpers() {
    let mut f = DeltaFifo::new();
    f.add(cm("foo", 10));
    f.add(cm("bar", 1));
    f.add(cm("foo", 11));
    f.add(cm("foo", 13));
    f.add(cm("zab", 30));
    assert_eq!(newest(&mut f), 13);
    f.add(cm("foo", 14));
    assert_eq!(newest(&mut f), 1);
    assert_eq!(newest(&mut f), 30);
    assert_eq!(newest(&mut f), 14);
}

// TestDeltaFIFO_addUpdate
#[test]
fn fifo_delta_add_update_delete_is_one_entry() {
    let mut f = DeltaFifo::new();
    f.add(cm("foo", 10));
    f.update(cm("foo", 12));
    f.delete(cm("foo", 15), None);
    assert_eq!(f.len(), 1);
    assert_eq!(newest(&mut f), 15);
    assert_eq!(f.pop(|_, _| ()), Ok(None));
}

// TestDeltaFIFO_enqueueingNoLister
#[test]
fn fifo_delta_enqueueing_without_known_objects_drops_unknown_delete() {
    let mut f = DeltaFifo::new();
    f.add(cm("foo", 10));
    f.update(cm("bar", 15));
    f.add(cm("qux", 17));
    f.delete(cm("qux", 18), None);
    f.delete(cm("baz", 20), None);
    assert_eq!(
        [newest(&mut f), newest(&mut f), newest(&mut f)],
        [10, 15, 18]
    );
    assert!(f.is_empty());
}

// TestDeltaFIFO_enqueueingWithLister
#[test]
fn fifo_delta_enqueueing_with_known_objects_keeps_known_delete() {
    let k = known(&[cm("foo", 5), cm("bar", 6), cm("baz", 7)]);
    let mut f = DeltaFifo::new();
    f.add(cm("foo", 10));
    f.update(cm("bar", 15));
    f.delete(cm("baz", 20), Some(&k));
    assert_eq!(
        [newest(&mut f), newest(&mut f), newest(&mut f)],
        [10, 15, 20]
    );
}

// TestDeltaFIFO_addReplace / #83810: a Sync after a queued Delete is not lost.
#[test]
fn fifo_delta_replace_after_delete_keeps_sync_83810() {
    let k = known(&[cm("foo", 1)]);
    let mut f = DeltaFifo::new();
    f.delete(cm("foo", 1), Some(&k));
    f.replace(vec![cm("foo", 2)], Some(&k));
    assert_eq!(pop_delta(&mut f), ["Del foo1", "Sync foo2"]);
}

// TestDeltaFIFO_ReplaceMakesDeletions (a)
#[test]
fn fifo_delta_replace_makes_deletions_for_known_keys() {
    let k = known(&[cm("foo", 5), cm("bar", 6), cm("baz", 7)]);
    let mut f = DeltaFifo::new();
    f.delete(cm("baz", 10), Some(&k));
    f.replace(vec![cm("foo", 5)], Some(&k));
    assert_eq!(
        drain_delta(&mut f),
        vec![
            vec!["Del baz10"],
            vec!["Sync foo5"],
            vec!["Del DFSU{bar,bar6}"]
        ]
    );
}

// TestDeltaFIFO_ReplaceMakesDeletions (b): the tombstone carries the queued object.
#[test]
fn fifo_delta_replace_tombstone_carries_newest_queued_object() {
    let k = known(&[cm("foo", 5), cm("bar", 6), cm("baz", 7)]);
    let mut f = DeltaFifo::new();
    f.add(cm("baz", 10));
    f.replace(vec![cm("foo", 5)], Some(&k));
    assert_eq!(
        drain_delta(&mut f),
        vec![
            vec!["Added baz10", "Del DFSU{baz,baz10}"],
            vec!["Sync foo5"],
            vec!["Del DFSU{bar,bar6}"]
        ]
    );
}

// TestDeltaFIFO_ReplaceMakesDeletions (c)
#[test]
fn fifo_delta_replace_deletes_recreated_queued_key() {
    let k = known(&[cm("foo", 5), cm("bar", 6), cm("baz", 7)]);
    let mut f = DeltaFifo::new();
    f.delete(cm("bar", 6), Some(&k));
    f.add(cm("bar", 100));
    f.replace(vec![cm("foo", 5)], Some(&k));
    assert_eq!(
        drain_delta(&mut f),
        vec![
            vec!["Del bar6", "Added bar100", "Del DFSU{bar,bar100}"],
            vec!["Sync foo5"],
            vec!["Del DFSU{baz,baz7}"]
        ]
    );
}

// TestDeltaFIFO_ReplaceMakesDeletions (d): a second Replace dedups the tombstone.
#[test]
fn fifo_delta_double_replace_dedups_tombstones() {
    let k = known(&[cm("foo", 5), cm("bar", 6), cm("baz", 7)]);
    let mut f = DeltaFifo::new();
    f.replace(vec![cm("bar", 100), cm("foo", 5)], Some(&k));
    f.replace(vec![cm("foo", 5)], Some(&k));
    assert_eq!(
        drain_delta(&mut f),
        vec![
            vec!["Sync bar100", "Del DFSU{bar,bar100}"],
            vec!["Sync foo5", "Sync foo5"],
            vec!["Del DFSU{baz,baz7}"]
        ]
    );
}

// TestDeltaFIFO_ReplaceMakesDeletionsForObjectsOnlyInQueue (#115658)
#[test]
fn fifo_delta_replace_deletes_objects_only_in_queue() {
    let mut f = DeltaFifo::new();
    f.add(cm("foo", 2));
    f.replace(vec![], Some(&known(&[])));
    assert_eq!(
        drain_delta(&mut f),
        vec![vec!["Added foo2", "Del DFSU{foo,foo2}"]]
    );

    let mut f = DeltaFifo::new();
    f.add(cm("foo", 2));
    f.delete(cm("foo", 2), None);
    f.replace(vec![], Some(&known(&[])));
    assert_eq!(drain_delta(&mut f), vec![vec!["Added foo2", "Del foo2"]]);

    let mut f = DeltaFifo::new();
    f.add(cm("foo", 2));
    f.replace(vec![], Some(&known(&[])));
    f.replace(vec![], Some(&known(&[])));
    assert_eq!(
        drain_delta(&mut f),
        vec![vec!["Added foo2", "Del DFSU{foo,foo2}"]]
    );
}

// TestDeltaFIFO_ReplaceDeltaType
#[test]
fn fifo_delta_replace_emits_replaced_when_asked() {
    let k = known(&[cm("foo", 5)]);
    let mut f = DeltaFifo::emitting_replaced();
    f.replace(vec![cm("foo", 5)], Some(&k));
    assert_eq!(drain_delta(&mut f), vec![vec!["Replaced foo5"]]);
}

// TestDeltaFIFO_ResyncNonExisting / TestDeltaFIFO_Resync / UpdateResyncRace
#[test]
fn fifo_delta_resync_skips_keys_with_queued_deltas() {
    let k = known(&[cm("foo", 5)]);
    let mut f = DeltaFifo::new();
    f.resync(Some(&k));
    assert_eq!(drain_delta(&mut f), vec![vec!["Sync foo5"]]);

    let mut f = DeltaFifo::new();
    f.delete(cm("foo", 5), Some(&k));
    f.resync(Some(&k));
    assert_eq!(drain_delta(&mut f), vec![vec!["Del foo5"]]);

    let mut f = DeltaFifo::new();
    f.update(cm("foo", 6));
    f.resync(Some(&k));
    assert_eq!(drain_delta(&mut f), vec![vec!["Updated foo6"]]);

    let f: DeltaFifo<Cm> = DeltaFifo::new();
    assert!(f.is_empty());
    let mut f: DeltaFifo<Cm> = DeltaFifo::new();
    f.resync(None);
    assert!(f.is_empty());
}

// TestDeltaFIFO_HasSynced
#[test]
fn fifo_delta_has_synced_by_initial_population() {
    let f: DeltaFifo<Cm> = DeltaFifo::new();
    assert!(!f.has_synced());

    let mut f = DeltaFifo::new();
    f.add(cm("a", 1));
    assert!(f.has_synced());

    let mut f: DeltaFifo<Cm> = DeltaFifo::new();
    f.replace(vec![], None);
    assert!(f.has_synced());

    let mut f = DeltaFifo::new();
    f.replace(vec![cm("a", 1), cm("b", 2)], None);
    assert!(!f.has_synced());
    newest(&mut f);
    assert!(!f.has_synced());
    newest(&mut f);
    assert!(f.has_synced());

    let mut f = DeltaFifo::new();
    f.replace(vec![cm("a", 1), cm("a", 2)], None);
    newest(&mut f);
    assert!(f.has_synced());
}

// TestDeltaFIFO_HasSyncedCorrectOnDeletion
#[test]
fn fifo_delta_has_synced_counts_replace_deletions() {
    let k = known(&[cm("foo", 1), cm("bar", 1), cm("baz", 1)]);
    let mut f = DeltaFifo::new();
    f.replace(vec![cm("foo", 1)], Some(&k));
    for i in 0..3 {
        assert!(!f.has_synced());
        let (initial, synced_inside) = f
            .pop(|_, initial| initial)
            .unwrap()
            .map(|initial| (initial, f.has_synced()))
            .unwrap();
        assert!(initial, "pop {i} is in the initial list");
        // DeltaFIFO decrements before processing: synced right after the 3rd pop.
        assert_eq!(synced_inside, i == 2);
    }
    assert!(f.has_synced());
}

// TestDeltaFIFO_KeyOf / delete with a tombstone: the key comes from the tombstone.
#[test]
fn fifo_delta_delete_tombstone_uses_its_key() {
    let k = known(&[cm("foo", 1)]);
    let mut f = DeltaFifo::new();
    f.delete(
        DeletedObject::FinalStateUnknown {
            key: key("foo"),
            last: None,
        },
        Some(&k),
    );
    assert_eq!(drain_delta(&mut f), vec![vec!["Del DFSU{foo,}"]]);
}

// TestDeltaFIFO_Close: pops drain what is queued, then all fail.
#[test]
fn fifo_delta_close_drains_then_fails_every_pop() {
    let mut f = DeltaFifo::new();
    f.add(cm("foo", 1));
    f.close();
    assert_eq!(newest(&mut f), 1);
    for _ in 0..10 {
        assert_eq!(f.pop(|_, _| ()), Err(FifoClosed));
    }
}

// ---- RealFIFO (the_real_fifo_test.go)

#[test]
fn fifo_real_keeps_every_event_in_order() {
    let mut f = RealFifo::new();
    f.add(cm("foo", 10));
    f.add(cm("bar", 1));
    f.update(cm("foo", 11));
    f.delete(cm("foo", 13));
    f.delete(cm("baz", 20)); // RealFIFO Delete always enqueues
    assert_eq!(
        drain_real(&mut f),
        [
            "Added foo10",
            "Added bar1",
            "Updated foo11",
            "Del foo13",
            "Del baz20"
        ]
    );
}

// TestRealFIFO_ReplaceMakesDeletions (a): deletes come before Replaced.
#[test]
fn fifo_real_replace_queues_deletions_before_replaced() {
    let k = known(&[cm("foo", 5), cm("bar", 6), cm("baz", 7)]);
    let mut f = RealFifo::new();
    f.delete(cm("baz", 10));
    f.replace(vec![cm("foo", 5)], "1", Some(&k));
    assert_eq!(
        drain_real(&mut f),
        ["Del baz10", "Del DFSU{bar,bar6}", "Replaced foo5"]
    );
}

// TestRealFIFO_ReplaceMakesDeletions (b)
#[test]
fn fifo_real_replace_tombstone_carries_last_queued_object() {
    let k = known(&[cm("foo", 5), cm("bar", 6), cm("baz", 7)]);
    let mut f = RealFifo::new();
    f.add(cm("baz", 10));
    f.replace(vec![cm("foo", 5)], "1", Some(&k));
    assert_eq!(
        drain_real(&mut f),
        [
            "Added baz10",
            "Del DFSU{baz,baz10}",
            "Del DFSU{bar,bar6}",
            "Replaced foo5"
        ]
    );
}

// TestRealFIFO_ReplaceMakesDeletions (c)
#[test]
fn fifo_real_replace_deletes_recreated_queued_key() {
    let k = known(&[cm("foo", 5), cm("bar", 6), cm("baz", 7)]);
    let mut f = RealFifo::new();
    f.delete(cm("bar", 6));
    f.add(cm("bar", 100));
    f.replace(vec![cm("foo", 5)], "1", Some(&k));
    assert_eq!(
        drain_real(&mut f),
        [
            "Del bar6",
            "Added bar100",
            "Del DFSU{bar,bar100}",
            "Del DFSU{baz,baz7}",
            "Replaced foo5"
        ]
    );
}

// TestRealFIFO_ReplaceMakesDeletions (d)
#[test]
fn fifo_real_double_replace() {
    let k = known(&[cm("foo", 5), cm("bar", 6), cm("baz", 7)]);
    let mut f = RealFifo::new();
    f.replace(vec![cm("bar", 100), cm("foo", 5)], "1", Some(&k));
    f.replace(vec![cm("foo", 5)], "2", Some(&k));
    assert_eq!(
        drain_real(&mut f),
        [
            "Del DFSU{baz,baz7}",
            "Replaced bar100",
            "Replaced foo5",
            "Del DFSU{bar,bar100}",
            "Replaced foo5"
        ]
    );
}

// TestRealFIFO_ReplaceMakesDeletionsForObjectsOnlyInQueue
#[test]
fn fifo_real_replace_deletes_objects_only_in_queue() {
    let mut f = RealFifo::new();
    f.add(cm("foo", 2));
    f.replace(vec![], "1", Some(&known(&[])));
    assert_eq!(drain_real(&mut f), ["Added foo2", "Del DFSU{foo,foo2}"]);

    let mut f = RealFifo::new();
    f.add(cm("foo", 2));
    f.delete(cm("foo", 2));
    f.replace(vec![], "1", Some(&known(&[])));
    assert_eq!(drain_real(&mut f), ["Added foo2", "Del foo2"]);
}

// TestRealFIFO_Resync
#[test]
fn fifo_real_resync_skips_keys_with_queued_deltas() {
    let k = known(&[cm("foo", 5), cm("bar", 6)]);
    let mut f = RealFifo::new();
    f.update(cm("foo", 6));
    f.resync(Some(&k));
    assert_eq!(drain_real(&mut f), ["Updated foo6", "Sync bar6"]);
}

// TestRealFIFO_HasSynced: the initial count covers queued deletions too, and
// is decremented only after processing, so the last initial item is still
// "in the initial list" and the FIFO unsynced while it is processed.
#[test]
fn fifo_real_has_synced_after_processing_initial_items() {
    let k = known(&[cm("gone", 1)]);
    let mut f = RealFifo::new();
    assert!(!f.has_synced());
    f.replace(vec![cm("a", 1), cm("b", 2)], "3", Some(&k));
    let mut seen = Vec::new();
    while let Some(initial) = f.pop(|_, initial| initial).unwrap() {
        seen.push((initial, f.has_synced()));
    }
    assert_eq!(seen, [(true, false), (true, false), (true, true)]);
    f.add(cm("c", 1));
    assert_eq!(f.pop(|_, initial| initial), Ok(Some(false)));

    let mut f: RealFifo<Cm> = RealFifo::new();
    f.replace(vec![], "3", None);
    assert!(f.has_synced());
}

// Atomic mode: Add, then Replace([], "123") → [Added, ReplacedAll{123, []}].
#[test]
fn fifo_real_atomic_replace_is_one_replaced_all() {
    let mut f = RealFifo::atomic();
    f.add(cm("foo", 1));
    f.replace(vec![], "123", None);
    f.resync(None);
    f.bookmark("130");
    assert_eq!(
        drain_real(&mut f),
        [
            "Added foo1",
            "ReplacedAll{123,[]}",
            "SyncAll",
            "Bookmark 130"
        ]
    );
}

#[test]
fn fifo_real_non_atomic_bookmark_queues_nothing() {
    let mut f: RealFifo<Cm> = RealFifo::new();
    f.bookmark("1");
    assert!(f.is_empty());
}

#[test]
fn fifo_real_close_drains_then_fails() {
    let mut f = RealFifo::new();
    f.add(cm("foo", 1));
    f.close();
    assert_eq!(drain_real(&mut f), ["Added foo1"]);
    for _ in 0..10 {
        assert_eq!(f.pop(|_, _| ()), Err(FifoClosed));
    }
}
