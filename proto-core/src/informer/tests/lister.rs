//! The Lister both runtimes hand out: reads through the driver's lock.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use k8s_openapi::api::core::v1::Pod;
use serde_json::json;

use crate::informer::reflector::Action;
use crate::informer::shared::{InformerConfig, InformerError, SharedInformer};
use crate::informer::store::StoreError;
use crate::informer::wire::StandardCodec;
use crate::informer::{IndexFn, Lister};
use crate::object::ObjectKey;
use crate::request::Builder;

/// A driver's state as the runtimes keep it: the machine beside its own fields.
struct Driven {
    machine: SharedInformer<Pod>,
    running: bool,
}

impl AsRef<SharedInformer<Pod>> for Driven {
    fn as_ref(&self) -> &SharedInformer<Pod> {
        &self.machine
    }
}

/// An error type of a runtime's own that wraps the informer's.
#[derive(Debug, PartialEq)]
struct RuntimeError(InformerError);

impl From<InformerError> for RuntimeError {
    fn from(e: InformerError) -> Self {
        Self(e)
    }
}

fn pod(namespace: &str, name: &str, app: &str) -> serde_json::Value {
    json!({"metadata": {"namespace": namespace, "name": name, "resourceVersion": "3",
        "labels": {"app": app}}})
}

fn by_app() -> IndexFn<Pod> {
    Arc::new(|p: &Pod| {
        let labels = p.metadata.labels.as_ref();
        labels
            .and_then(|l| l.get("app").cloned())
            .into_iter()
            .collect()
    })
}

/// A started informer whose initial list (resourceVersion `rv`) holds `items`.
fn listed(rv: &str, items: &[serde_json::Value]) -> Arc<Mutex<Driven>> {
    let now = Instant::now();
    let mut machine = SharedInformer::new(
        InformerConfig::default(),
        Box::new(Builder::of::<Pod>(None).unwrap()),
        Box::new(StandardCodec::default()),
    );
    machine.add_indexer("app", by_app()).unwrap();
    machine.start(1, now);
    let Some(Action::Send { id, .. }) = machine.poll_action() else {
        panic!("the informer lists first")
    };
    let (head, ()) = http::Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .body(())
        .unwrap()
        .into_parts();
    let body = json!({"kind": "PodList", "metadata": {"resourceVersion": rv}, "items": items});
    machine.handle_response(id, &head, now);
    machine.handle_chunk(id, body.to_string().as_bytes(), now);
    machine.handle_eof(id, now);
    assert!(machine.has_synced());
    Arc::new(Mutex::new(Driven {
        machine,
        running: true,
    }))
}

fn key(namespace: &str, name: &str) -> ObjectKey {
    ObjectKey::new(Some(namespace), name)
}

#[test]
fn lister_reads_objects_keys_and_resource_version_from_the_store() {
    let state = listed(
        "17",
        &[
            pod("a", "web-0", "web"),
            pod("a", "db-0", "db"),
            pod("b", "web-1", "web"),
        ],
    );
    let lister: Lister<Pod> = Lister::new(state, "pods");
    assert_eq!(lister.len(), 3);
    assert!(!lister.is_empty());
    assert_eq!(lister.resource_version().as_deref(), Some("17"));
    let web0 = lister.get(&key("a", "web-0")).expect("stored");
    assert_eq!(web0.metadata.name.as_deref(), Some("web-0"));
    assert!(lister.get(&key("b", "web-0")).is_none());
    let mut keys = lister.keys();
    keys.sort();
    assert_eq!(
        keys,
        [key("a", "db-0"), key("a", "web-0"), key("b", "web-1")]
    );
    assert_eq!(lister.list().len(), 3);
}

#[test]
fn lister_namespace_and_custom_indices_file_by_value() {
    let state = listed(
        "5",
        &[
            pod("a", "web-0", "web"),
            pod("a", "db-0", "db"),
            pod("b", "web-1", "web"),
        ],
    );
    let lister: Lister<Pod> = Lister::new(state, "pods");
    let names = |pods: Vec<Arc<Pod>>| -> Vec<String> {
        let mut names: Vec<_> = pods
            .iter()
            .filter_map(|p| p.metadata.name.clone())
            .collect();
        names.sort();
        names
    };
    assert_eq!(names(lister.list_namespace("a")), ["db-0", "web-0"]);
    assert!(lister.list_namespace("nowhere").is_empty());
    assert_eq!(
        names(lister.by_index("app", "web").unwrap()),
        ["web-0", "web-1"]
    );
    assert_eq!(
        lister.index_keys("app", "web").unwrap(),
        [key("a", "web-0"), key("b", "web-1")],
        "sorted"
    );
}

#[test]
fn lister_unknown_index_is_the_callers_error_type() {
    let lister: Lister<Pod, RuntimeError> = Lister::new(listed("1", &[]), "pods");
    let expected = RuntimeError(InformerError::Store(StoreError::UnknownIndex(
        "colour".into(),
    )));
    assert_eq!(lister.by_index("colour", "red").unwrap_err(), expected);
    assert_eq!(lister.index_keys("colour", "red").unwrap_err(), expected);
}

#[test]
fn lister_sees_the_store_as_it_is_now_not_a_copy() {
    let state = listed("1", &[pod("a", "web-0", "web")]);
    let lister: Lister<Pod> = Lister::new(state.clone(), "pods");
    let copy = lister.clone();
    assert_eq!(copy.len(), 1);
    // The driver replaces the machine (as a fresh informer would): readers follow.
    let mut driven = state.lock().unwrap();
    assert!(driven.running);
    driven.machine = SharedInformer::new(
        InformerConfig::default(),
        Box::new(Builder::of::<Pod>(None).unwrap()),
        Box::new(StandardCodec::default()),
    );
    driven.running = false;
    drop(driven);
    assert_eq!(copy.len(), 0);
    assert_eq!(lister.resource_version(), None);
    assert!(format!("{lister:?}").contains("pods"));
}

#[test]
fn lister_reads_through_a_lock_poisoned_by_a_panicking_holder() {
    let state = listed("9", &[pod("a", "web-0", "web")]);
    let lister: Lister<Pod> = Lister::new(state.clone(), "pods");
    let poisoner = state.clone();
    let panicked = std::thread::spawn(move || {
        let _held = poisoner.lock().unwrap();
        panic!("a handler panicked while holding the informer's lock");
    })
    .join();
    assert!(panicked.is_err());
    assert!(state.is_poisoned());
    assert_eq!(lister.len(), 1);
    assert_eq!(lister.resource_version().as_deref(), Some("9"));
}
