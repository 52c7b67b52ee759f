use std::sync::Arc;

use k8s_openapi::api::core::v1::{ConfigMap, Pod};

use super::{cm, pod};
use crate::informer::index::IndexFn;
use crate::informer::{Generation, KnownObjects, NAMESPACE_INDEX, Store, StoreError};
use crate::object::{Object, ObjectKey};

fn key(s: &str) -> ObjectKey {
    ObjectKey::from_raw(s)
}

fn values(store: &Store<ConfigMap>) -> Vec<(String, String)> {
    let mut v: Vec<_> = store
        .list()
        .map(|o| {
            (
                o.key().to_string(),
                o.resource_version().unwrap().to_owned(),
            )
        })
        .collect();
    v.sort();
    v
}

// client-go store_test.go `doTestStore`: Add, Get, Update, Delete, List, Replace.
#[test]
fn store_add_get_update_delete_list_replace() {
    let mut store = Store::new();
    assert!(store.add(cm("foo", 10)).is_none());
    assert_eq!(
        store.get(&key("foo")).unwrap().resource_version(),
        Some("10")
    );
    let old = store.update(cm("foo", 11)).unwrap();
    assert_eq!(old.resource_version(), Some("10"));
    assert_eq!(
        store.get(&key("foo")).unwrap().resource_version(),
        Some("11")
    );
    assert_eq!(
        store.delete(&key("foo")).unwrap().resource_version(),
        Some("11")
    );
    assert!(store.get(&key("foo")).is_none());
    assert!(store.delete(&key("foo")).is_none());

    store.add(cm("a", 1));
    store.add(cm("b", 2));
    store.add(cm("c", 3));
    assert_eq!(
        values(&store),
        [("a", "1"), ("b", "2"), ("c", "3")].map(|(k, v)| (k.into(), v.into()))
    );

    // After Replace, exactly the new set is present.
    store.replace([cm("foo", 4), cm("bar", 5)], "7");
    assert_eq!(
        values(&store),
        [("bar", "5"), ("foo", "4")].map(|(k, v)| (k.into(), v.into()))
    );
    assert_eq!(store.len(), 2);
    assert_eq!(store.list_keys(), vec![key("bar"), key("foo")]);
}

#[test]
fn store_readers_share_the_stored_arc() {
    let mut store = Store::new();
    let obj = cm("foo", 1);
    store.add(obj.clone());
    assert!(Arc::ptr_eq(store.get(&key("foo")).unwrap(), &obj));
    assert!(Arc::ptr_eq(&store.get_by_key(&key("foo")).unwrap(), &obj));
}

/// client-go `testStoreIndexFunc`: index by the object's "val", here a label.
fn by_val() -> IndexFn<Pod> {
    Arc::new(|p: &Pod| {
        p.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("val"))
            .into_iter()
            .cloned()
            .collect()
    })
}

// client-go store_test.go `doTestIndex`: single-value index.
#[test]
fn index_single_value_by_val() {
    let mut store = Store::new();
    store.add_indexer("by_val", by_val()).unwrap();
    for (name, val) in [("a", "b"), ("c", "b"), ("e", "f"), ("g", "h")] {
        store.add(pod("", name, &[("val", val)]));
    }
    let keys = |v: &str| store.index_keys("by_val", v).unwrap();
    assert_eq!(keys("b"), vec![key("a"), key("c")]);
    assert_eq!(keys("f"), vec![key("e")]);
    assert_eq!(keys("h"), vec![key("g")]);
    // Index(obj): the objects sharing obj's values.
    let probe = pod("", "zz", &[("val", "b")]);
    let found: Vec<ObjectKey> = store
        .index("by_val", &probe)
        .unwrap()
        .iter()
        .map(|p| p.key())
        .collect();
    assert_eq!(found, vec![key("a"), key("c")]);
}

/// client-go `testUsersIndexFunc`: the "users" annotation, comma separated.
fn by_user() -> IndexFn<Pod> {
    Arc::new(|p: &Pod| {
        p.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get("users"))
            .map(|u| u.split(',').map(str::to_owned).collect())
            .unwrap_or_default()
    })
}

fn users_pod(name: &str, users: &str) -> Arc<Pod> {
    let mut p = (*pod("", name, &[])).clone();
    p.metadata.annotations = Some([("users".to_owned(), users.to_owned())].into());
    Arc::new(p)
}

// client-go index_test.go `TestMultiIndexKeys`.
#[test]
fn index_multi_value_keys_follow_updates_and_deletes() {
    let mut store = Store::new();
    store.add_indexer("byUser", by_user()).unwrap();
    store.add(users_pod("one", "ernie,bert"));
    store.add(users_pod("two", "bert,oscar"));
    store.add(users_pod("tre", "ernie,elmo"));
    let keys = |s: &Store<Pod>, u: &str| -> Vec<String> {
        s.index_keys("byUser", u)
            .unwrap()
            .iter()
            .map(|k| k.to_string())
            .collect()
    };
    assert_eq!(keys(&store, "ernie"), ["one", "tre"]);
    assert_eq!(keys(&store, "bert"), ["one", "two"]);
    assert_eq!(keys(&store, "elmo"), ["tre"]);
    assert_eq!(keys(&store, "oscar"), ["two"]);
    assert!(keys(&store, "elmo1").is_empty());

    store.delete(&key("tre"));
    assert_eq!(keys(&store, "ernie"), ["one"]);
    assert!(keys(&store, "elmo").is_empty());

    store.update(users_pod("two", "oscar"));
    assert_eq!(keys(&store, "bert"), ["one"]);
    assert_eq!(keys(&store, "oscar"), ["two"]);
    let by_index: Vec<ObjectKey> = store
        .by_index("byUser", "ernie")
        .unwrap()
        .iter()
        .map(|p| p.key())
        .collect();
    assert_eq!(by_index, vec![key("one")]);
}

// client-go index_test.go `TestGetIndexFuncValues`: pods labelled bar, bar, biz.
#[test]
fn index_list_index_func_values_are_distinct() {
    let mut store = Store::new();
    let by_foo: IndexFn<Pod> = Arc::new(|p: &Pod| {
        p.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("foo"))
            .into_iter()
            .cloned()
            .collect()
    });
    store.add_indexer("testmodes", by_foo).unwrap();
    store.add(pod("", "one", &[("foo", "bar")]));
    store.add(pod("", "two", &[("foo", "bar")]));
    store.add(pod("", "tre", &[("foo", "biz")]));
    assert_eq!(store.list_index_func_values("testmodes"), ["bar", "biz"]);
    assert!(store.list_index_func_values("nope").is_empty());
}

// client-go thread_safe_store_test.go `TestThreadSafeStoreDeleteRemovesEmptySetsFromIndex`
// and `TestThreadSafeStoreAddKeepsNonEmptySetPostDeleteFromIndex`.
#[test]
fn index_empty_sets_are_removed() {
    let mut store = Store::new();
    store.add_indexer("by_val", by_val()).unwrap();
    store.add(pod("", "a", &[("val", "x")]));
    store.add(pod("", "b", &[("val", "x")]));
    store.delete(&key("a"));
    assert_eq!(store.list_index_func_values("by_val"), ["x"]);
    store.delete(&key("b"));
    assert!(store.list_index_func_values("by_val").is_empty());
    // An update moving the only key to another value drops the old set too.
    store.add(pod("", "c", &[("val", "y")]));
    store.update(pod("", "c", &[("val", "z")]));
    assert_eq!(store.list_index_func_values("by_val"), ["z"]);
}

#[test]
fn index_namespace_index_files_by_namespace() {
    let mut store = Store::with_namespace_index();
    store.add(pod("ns1", "a", &[]));
    store.add(pod("ns1", "b", &[]));
    store.add(pod("ns2", "a", &[]));
    assert_eq!(
        store.index_keys(NAMESPACE_INDEX, "ns1").unwrap(),
        vec![key("ns1/a"), key("ns1/b")]
    );
    assert_eq!(
        store.list_index_func_values(NAMESPACE_INDEX),
        ["ns1", "ns2"]
    );
}

// client-go `TestAddIndexerAfterAdd` (v0.30+: adding an indexer back-fills).
#[test]
fn index_added_after_objects_back_fills() {
    let mut store = Store::new();
    store.add(pod("ns1", "a", &[("val", "x")]));
    store.add(pod("ns2", "b", &[("val", "x")]));
    store.add_indexer("by_val", by_val()).unwrap();
    assert_eq!(
        store.index_keys("by_val", "x").unwrap(),
        vec![key("ns1/a"), key("ns2/b")]
    );
    assert_eq!(
        store.add_indexer("by_val", by_val()),
        Err(StoreError::DuplicateIndex("by_val".into()))
    );
}

#[test]
fn index_unknown_name_is_an_error() {
    let store: Store<Pod> = Store::new();
    assert_eq!(
        store.by_index("nope", "x").unwrap_err(),
        StoreError::UnknownIndex("nope".into())
    );
    assert!(store.index_keys("nope", "x").is_err());
    assert!(store.index("nope", &pod("", "a", &[])).is_err());
}

#[test]
fn index_rebuilt_on_store_replace() {
    let mut store = Store::new();
    store.add_indexer("by_val", by_val()).unwrap();
    store.add(pod("", "a", &[("val", "x")]));
    store.replace([pod("", "b", &[("val", "y")])], "9");
    assert!(store.index_keys("by_val", "x").unwrap().is_empty());
    assert_eq!(store.list_index_func_values("by_val"), ["y"]);
}

// client-go store_test.go `TestStoreResourceVersion`.
#[test]
fn store_resource_version_follows_writes() {
    let mut store = Store::new();
    assert_eq!(store.resource_version(), None);
    store.add(cm("a", 10));
    assert_eq!(store.resource_version(), Some("10"));
    store.add(cm("b", 20));
    assert_eq!(store.resource_version(), Some("20"));
    store.delete_object(&cm("a", 30));
    assert_eq!(store.resource_version(), Some("30"));
    store.delete(&key("b"));
    assert_eq!(store.resource_version(), Some("30"));
    store.replace([], "50");
    assert_eq!(store.resource_version(), Some("50"));
    store.bookmark("60");
    assert_eq!(store.resource_version(), Some("60"));
}

#[test]
fn store_generation_reuses_arcs_of_unchanged_objects() {
    let mut store = Store::new();
    let a = cm("a", 1);
    let b = cm("b", 1);
    store.add(a.clone());
    store.add(b.clone());
    let mut next = Generation::new();
    next.insert(cm("a", 1), &store); // same RV: the stored Arc is kept
    next.insert(cm("b", 2), &store); // changed: the new object
    next.insert(cm("c", 1), &store);
    let objects = next.into_objects();
    assert!(Arc::ptr_eq(&objects[0], &a));
    assert!(!Arc::ptr_eq(&objects[1], &b));
    assert_eq!(objects[1].resource_version(), Some("2"));
    assert_eq!(objects[2].key(), key("c"));
}

mod props {
    use std::collections::{BTreeMap, BTreeSet};

    use proptest::prelude::*;

    use super::*;

    #[derive(Debug, Clone)]
    enum StoreOp {
        Put(u8, u8),
        Delete(u8),
        Replace(Vec<(u8, u8)>),
    }

    fn store_op() -> impl Strategy<Value = StoreOp> {
        prop_oneof![
            4 => (0u8..10, 0u8..4).prop_map(|(n, v)| StoreOp::Put(n, v)),
            2 => (0u8..10).prop_map(StoreOp::Delete),
            1 => prop::collection::vec((0u8..10, 0u8..4), 0..8).prop_map(StoreOp::Replace),
        ]
    }

    proptest! {
        #[test]
        fn store_indices_always_match_a_scan_of_the_items(ops in prop::collection::vec(store_op(), 0..60)) {
            let mut store = Store::with_namespace_index();
            store.add_indexer("by_val", by_val()).unwrap();
            let mut model: BTreeMap<String, u8> = BTreeMap::new();
            let obj = |n: u8, v: u8| pod(&format!("ns{}", n % 3), &format!("p{n}"), &[("val", &v.to_string())]);
            for op in ops {
                match op {
                    StoreOp::Put(n, v) => {
                        store.add(obj(n, v));
                        model.insert(obj(n, v).key().to_string(), v);
                    }
                    StoreOp::Delete(n) => {
                        let key = obj(n, 0).key();
                        store.delete(&key);
                        model.remove(key.as_str());
                    }
                    StoreOp::Replace(items) => {
                        store.replace(items.iter().map(|(n, v)| obj(*n, *v)), "1");
                        model = items.iter().map(|(n, v)| (obj(*n, *v).key().to_string(), *v)).collect();
                    }
                }
                let keys: BTreeSet<String> = store.list_keys().iter().map(|k| k.to_string()).collect();
                prop_assert_eq!(&keys, &model.keys().cloned().collect::<BTreeSet<_>>());
                let values: BTreeSet<String> = model.values().map(|v| v.to_string()).collect();
                prop_assert_eq!(store.list_index_func_values("by_val"), values.iter().cloned().collect::<Vec<_>>());
                for v in &values {
                    let want: Vec<String> = model.iter().filter(|(_, mv)| mv.to_string() == *v).map(|(k, _)| k.clone()).collect();
                    let got: Vec<String> = store.index_keys("by_val", v).unwrap().iter().map(|k| k.to_string()).collect();
                    prop_assert_eq!(got, want);
                }
                let namespaces: BTreeSet<String> = model.keys().map(|k| k.split('/').next().unwrap().to_owned()).collect();
                prop_assert_eq!(store.list_index_func_values(NAMESPACE_INDEX), namespaces.into_iter().collect::<Vec<_>>());
            }
        }
    }
}
