//! The relist memory bound, measured with a counting allocator: an
//! unpaginated relist of a store whose objects are 90 % unchanged peaks near
//! one store, not two (kube-rs peaks at 2×). The bound is one store, plus a
//! new copy of each *changed* object (the store must keep the old state until
//! the list completes), plus maps of pointers, plus one list item being
//! decoded: with every object changed the peak is about 2× (measured 1.99×),
//! with none about 1×. One test per binary, so no other test's allocations
//! blur the figures.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use k8s_openapi::api::core::v1::ConfigMap;
use serde_json::json;
use windlass_proto::informer::wire::StandardCodec;
use windlass_proto::informer::{Action, InformerConfig, RequestId, SharedInformer};
use windlass_proto::request::Builder;

struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let now = CURRENT.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        unsafe { System.dealloc(p, layout) };
        CURRENT.fetch_sub(layout.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

const OBJECTS: usize = 3000;

fn object(i: usize, rv: usize) -> serde_json::Value {
    let data: serde_json::Map<String, serde_json::Value> = (0..8)
        .map(|k| (format!("key-{k}"), json!("x".repeat(200))))
        .collect();
    json!({"metadata": {"name": format!("cm-{i:05}"), "namespace": "default",
           "resourceVersion": rv.to_string(), "labels": {"app": "bench", "tier": "cache"}},
           "data": data})
}

fn list_body(rv: usize, changed_every: usize) -> Vec<u8> {
    let items: Vec<_> = (0..OBJECTS)
        .map(|i| {
            object(
                i,
                if changed_every > 0 && i % changed_every == 0 {
                    rv
                } else {
                    1
                },
            )
        })
        .collect();
    json!({"kind": "ConfigMapList", "apiVersion": "v1",
           "metadata": {"resourceVersion": rv.to_string()}, "items": items})
    .to_string()
    .into_bytes()
}

fn head(code: u16) -> http::response::Parts {
    http::Response::builder()
        .status(code)
        .header("content-type", "application/json")
        .body(())
        .unwrap()
        .into_parts()
        .0
}

fn next_send(inf: &mut SharedInformer<ConfigMap>) -> (RequestId, String) {
    loop {
        match inf.poll_action() {
            Some(Action::Send { id, request }) => return (id, request.uri().to_string()),
            Some(Action::Cancel(_)) => continue,
            None => panic!("no request"),
        }
    }
}

/// Feeds `body` in 16 KiB chunks, as a socket would, built on the fly so the
/// test never holds the whole body.
fn feed(inf: &mut SharedInformer<ConfigMap>, id: RequestId, body: &[u8], now: Instant) {
    inf.handle_response(id, &head(200), now);
    for chunk in body.chunks(16 << 10) {
        inf.handle_chunk(id, chunk, now);
    }
    inf.handle_eof(id, now);
}

#[test]
fn store_relist_peak_stays_near_one_store() {
    let now = Instant::now();
    let mut inf: SharedInformer<ConfigMap> = SharedInformer::new(
        InformerConfig::default(),
        Box::new(Builder::of::<ConfigMap>(None).unwrap()),
        Box::new(StandardCodec::default()),
    );
    let initial = list_body(1, 0);
    let relist = list_body(2, 10); // every 10th object changed
    let handler = inf.add_handler(None, now).unwrap();
    let baseline = CURRENT.load(Ordering::Relaxed);

    inf.start(1, now);
    let (id, _) = next_send(&mut inf);
    feed(&mut inf, id, &initial, now);
    while inf.poll_notification(handler).is_some() {}
    assert_eq!(inf.store().len(), OBJECTS);
    let steady = CURRENT.load(Ordering::Relaxed) - baseline;

    // The watch expires; the relist at RV 1 is unpaginated (client-go's rule).
    let (w, _) = next_send(&mut inf);
    inf.handle_response(w, &head(200), now);
    let expired = json!({"type": "ERROR", "object": {"kind": "Status", "apiVersion": "v1",
        "status": "Failure", "reason": "Expired", "code": 410, "message": "too old"}});
    inf.handle_chunk(w, expired.to_string().as_bytes(), now);
    let later = inf.poll_timeout().unwrap();
    inf.handle_timeout(later);
    let (id, uri) = next_send(&mut inf);
    assert!(!uri.contains("limit="), "{uri}");
    PEAK.store(CURRENT.load(Ordering::Relaxed), Ordering::Relaxed);
    feed(&mut inf, id, &relist, later);
    let peak = PEAK.load(Ordering::Relaxed) - baseline;
    let updates = std::iter::from_fn(|| inf.poll_notification(handler)).count();
    assert_eq!(updates, OBJECTS / 10);
    let after = CURRENT.load(Ordering::Relaxed) - baseline;

    let ratio = peak as f64 / steady as f64;
    eprintln!(
        "steady {steady} B ({} B/object), relist peak {peak} B = {ratio:.2}x steady, after {after} B; body {} B",
        steady / OBJECTS,
        relist.len()
    );
    assert!(ratio < 1.5, "relist peak {ratio:.2}x the steady store");
}
