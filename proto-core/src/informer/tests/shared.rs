use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ConfigMap;
use serde_json::json;

use super::reflector::{bookmark, ev, list_body, status};
use crate::informer::reflector::{Action, ReflectorConfig, RequestId};
use crate::informer::shared::{
    FifoKind, HandlerId, InformerConfig, InformerError, Notification, RelistMode, SharedInformer,
    drop_managed_fields,
};
use crate::informer::wire::StandardCodec;
use crate::informer::{DeletedObject, KnownObjects};
use crate::object::{Object, ObjectKey};
use crate::request::Builder;

struct Driver {
    inf: SharedInformer<ConfigMap>,
    now: Instant,
    /// (id, is_watch) of every request sent.
    sent: Vec<(RequestId, bool)>,
}

impl Driver {
    fn new(config: InformerConfig<ConfigMap>) -> Self {
        let inf = SharedInformer::new(
            config,
            Box::new(Builder::of::<ConfigMap>(None).unwrap()),
            Box::new(StandardCodec::default()),
        );
        Self {
            inf,
            now: Instant::now(),
            sent: Vec::new(),
        }
    }

    fn start(&mut self) {
        self.inf.start(3, self.now);
        self.drain();
    }

    fn drain(&mut self) {
        while let Some(a) = self.inf.poll_action() {
            if let Action::Send { id, request } = a {
                let watch = request.uri().query().unwrap_or("").contains("watch=true");
                self.sent.push((id, watch));
            }
        }
    }

    fn last(&self, watch: bool) -> RequestId {
        let (id, w) = *self.sent.last().unwrap();
        assert_eq!(w, watch);
        id
    }

    fn respond(&mut self, id: RequestId, code: u16, body: &serde_json::Value) {
        let (head, ()) = http::Response::builder()
            .status(code)
            .header("content-type", "application/json")
            .body(())
            .unwrap()
            .into_parts();
        self.inf.handle_response(id, &head, self.now);
        self.inf
            .handle_chunk(id, body.to_string().as_bytes(), self.now);
        self.inf.handle_eof(id, self.now);
        self.drain();
    }

    fn list(&mut self, rv: &str, items: &[(&str, &str)]) -> RequestId {
        let id = self.last(false);
        self.respond(id, 200, &list_body(rv, None, items));
        let w = self.last(true);
        let (head, ()) = http::Response::builder()
            .status(200)
            .header("content-type", "application/json")
            .body(())
            .unwrap()
            .into_parts();
        self.inf.handle_response(w, &head, self.now);
        self.drain();
        w
    }

    fn events(&mut self, w: RequestId, events: &[serde_json::Value]) {
        let body: String = events.iter().map(|e| format!("{e}\n")).collect();
        self.inf.handle_chunk(w, body.as_bytes(), self.now);
        self.drain();
    }

    fn advance(&mut self, d: Duration) {
        let end = self.now + d;
        while let Some(t) = self.inf.poll_timeout().filter(|t| *t <= end) {
            self.now = self.now.max(t);
            self.inf.handle_timeout(self.now);
            self.drain();
        }
        self.now = end;
    }

    fn notes(&mut self, h: HandlerId) -> Vec<String> {
        std::iter::from_fn(|| self.inf.poll_notification(h))
            .map(|n| show(&n))
            .collect()
    }
}

fn name_rv(o: &ConfigMap) -> String {
    format!("{}@{}", o.key().name(), o.resource_version().unwrap_or(""))
}

fn show(n: &Notification<ConfigMap>) -> String {
    match n {
        Notification::Add {
            object,
            is_in_initial_list,
        } => format!(
            "Add {}{}",
            name_rv(object),
            if *is_in_initial_list { " initial" } else { "" }
        ),
        Notification::Update { old, new } => format!("Update {} -> {}", name_rv(old), name_rv(new)),
        Notification::Resync(o) => format!("Resync {}", name_rv(o)),
        Notification::Delete(DeletedObject::Object(o)) => format!("Delete {}", name_rv(o)),
        Notification::Delete(DeletedObject::FinalStateUnknown { key, last }) => format!(
            "Delete DFSU {} {}",
            key.name(),
            last.as_deref().map(name_rv).unwrap_or_default()
        ),
    }
}

#[test]
fn informer_fans_out_list_and_watch_to_every_handler() {
    let mut d = Driver::new(InformerConfig::default());
    let h1 = d.inf.add_handler(None, d.now).unwrap();
    let h2 = d.inf.add_handler(None, d.now).unwrap();
    d.start();
    assert!(!d.inf.has_synced());
    let w = d.list("10", &[("a", "1"), ("b", "2")]);
    assert!(d.inf.has_synced());
    d.events(
        w,
        &[
            ev("MODIFIED", "a", "11"),
            ev("DELETED", "b", "12"),
            ev("ADDED", "c", "13"),
        ],
    );
    let expected = [
        "Add a@1 initial",
        "Add b@2 initial",
        "Update a@1 -> a@11",
        "Delete b@12",
        "Add c@13",
    ];
    assert_eq!(d.notes(h1), expected);
    assert_eq!(d.notes(h2), expected);
    let mut keys = d.inf.store().list_keys();
    keys.sort();
    assert_eq!(
        keys,
        [ObjectKey::from_raw("ns/a"), ObjectKey::from_raw("ns/c")]
    );
    assert_eq!(d.inf.store().resource_version(), Some("13"));
}

#[test]
fn informer_late_handler_first_receives_the_store_as_initial_adds() {
    let mut d = Driver::new(InformerConfig::default());
    let early = d.inf.add_handler(None, d.now).unwrap();
    d.start();
    let w = d.list("10", &[("a", "1"), ("b", "2")]);
    d.notes(early);
    let late = d.inf.add_handler(None, d.now).unwrap();
    assert!(d.inf.has_synced());
    assert!(!d.inf.handler_has_synced(late), "replay not yet handed out");
    d.events(w, &[ev("ADDED", "c", "3")]);
    assert_eq!(d.notes(early), ["Add c@3"]);
    assert_eq!(
        d.inf.poll_notification(late).map(|n| show(&n)).unwrap(),
        "Add a@1 initial"
    );
    assert!(!d.inf.handler_has_synced(late));
    assert_eq!(
        d.inf.poll_notification(late).map(|n| show(&n)).unwrap(),
        "Add b@2 initial"
    );
    assert!(
        !d.inf.handler_has_synced(late),
        "the last add is still being handled"
    );
    d.inf.notification_done(late);
    assert!(d.inf.handler_has_synced(late));
    assert_eq!(d.notes(late), ["Add c@3"]);
}

#[test]
fn informer_handler_has_synced_waits_for_its_initial_adds() {
    let mut d = Driver::new(InformerConfig::default());
    let h = d.inf.add_handler(None, d.now).unwrap();
    d.start();
    d.list("10", &[("a", "1")]);
    assert!(d.inf.has_synced());
    assert!(!d.inf.handler_has_synced(h));
    d.notes(h); // polling again (here: to exhaustion) marks the last one done
    assert!(d.inf.handler_has_synced(h));
}

// shared_informer_test.go `TestResyncCheckPeriod`: handlers asking for 0, 1 min, 55 s
// and 5 s on a 12 h informer → the check period becomes 5 s, each keeps its own.
#[test]
fn reflector_informer_resync_check_period_follows_handlers() {
    let mut d = Driver::new(InformerConfig {
        default_resync: Duration::from_secs(12 * 3600),
        ..InformerConfig::default()
    });
    let asks = [0, 60, 55, 5].map(Duration::from_secs);
    let ids: Vec<HandlerId> = asks
        .iter()
        .map(|p| d.inf.add_handler(Some(*p), d.now).unwrap())
        .collect();
    assert_eq!(d.inf.resync_check_period(), Duration::from_secs(5));
    for (id, ask) in ids.iter().zip(asks) {
        assert_eq!(d.inf.handler_resync_period(*id), Some(ask));
    }
    // After start a shorter period is raised to the check period; the minimum is 1 s.
    d.start();
    let late = d
        .inf
        .add_handler(Some(Duration::from_secs(2)), d.now)
        .unwrap();
    assert_eq!(
        d.inf.handler_resync_period(late),
        Some(Duration::from_secs(5))
    );
    let mut d = Driver::new(InformerConfig {
        default_resync: Duration::from_secs(12 * 3600),
        ..InformerConfig::default()
    });
    let tiny = d
        .inf
        .add_handler(Some(Duration::from_millis(10)), d.now)
        .unwrap();
    assert_eq!(
        d.inf.handler_resync_period(tiny),
        Some(Duration::from_secs(1))
    );
    // As client-go: with no check period (informer resync 0) a handler's period is void.
    let mut d = Driver::new(InformerConfig::default());
    let h = d
        .inf
        .add_handler(Some(Duration::from_secs(30)), d.now)
        .unwrap();
    assert_eq!(d.inf.handler_resync_period(h), Some(Duration::ZERO));
}

// shared_informer_test.go `TestListenerResyncPeriods`: listeners at 0, 2 s and 3 s on a
// 1 s informer: only listener2 resyncs at 2 s, only listener3 at 3 s.
#[test]
fn reflector_informer_resync_goes_only_to_due_listeners() {
    for fifo in [FifoKind::RealAtomic, FifoKind::Real, FifoKind::Delta] {
        let mut d = Driver::new(InformerConfig {
            default_resync: Duration::from_secs(1),
            fifo,
            ..InformerConfig::default()
        });
        let l1 = d.inf.add_handler(Some(Duration::ZERO), d.now).unwrap();
        let l2 = d
            .inf
            .add_handler(Some(Duration::from_secs(2)), d.now)
            .unwrap();
        let l3 = d
            .inf
            .add_handler(Some(Duration::from_secs(3)), d.now)
            .unwrap();
        d.start();
        let w = d.list("10", &[("a", "1")]);
        for l in [l1, l2, l3] {
            assert_eq!(d.notes(l), ["Add a@1 initial"], "{fifo:?}");
        }
        d.advance(Duration::from_secs(2));
        assert!(d.notes(l1).is_empty());
        assert_eq!(d.notes(l2), ["Resync a@1"], "{fifo:?}");
        assert!(d.notes(l3).is_empty());
        d.events(w, &[bookmark("11", false)]);
        d.advance(Duration::from_secs(1));
        assert!(d.notes(l1).is_empty());
        assert!(d.notes(l2).is_empty());
        assert_eq!(d.notes(l3), ["Resync a@1"], "{fifo:?}");
        // An update with a new RV goes to everyone, never as a resync.
        d.events(w, &[ev("MODIFIED", "a", "12")]);
        for l in [l1, l2, l3] {
            assert_eq!(d.notes(l), ["Update a@1 -> a@12"], "{fifo:?}");
        }
    }
}

#[test]
fn informer_relist_notifies_changes_tombstones_and_keeps_unchanged_arcs() {
    for (fifo, relist) in [
        (FifoKind::RealAtomic, RelistMode::Streaming),
        (FifoKind::RealAtomic, RelistMode::Atomic),
        (FifoKind::Real, RelistMode::Streaming),
        (FifoKind::Delta, RelistMode::Streaming),
    ] {
        let mut d = Driver::new(InformerConfig {
            fifo,
            relist,
            ..InformerConfig::default()
        });
        let h = d.inf.add_handler(None, d.now).unwrap();
        d.start();
        let w = d.list("10", &[("a", "1"), ("b", "1"), ("c", "1")]);
        d.notes(h);
        let a_before = d
            .inf
            .store()
            .get_by_key(&ObjectKey::from_raw("ns/a"))
            .unwrap();
        d.events(
            w,
            &[json!({"type": "ERROR", "object": status(410, "Expired", "x")})],
        );
        d.advance(Duration::from_secs(2));
        let id = d.last(false);
        d.respond(
            id,
            200,
            &list_body("20", None, &[("a", "1"), ("b", "2"), ("d", "1")]),
        );
        let mut notes = d.notes(h);
        notes.sort();
        assert_eq!(
            notes,
            ["Add d@1", "Delete DFSU c c@1", "Update b@1 -> b@2"],
            "{fifo:?}"
        );
        let a_after = d
            .inf
            .store()
            .get_by_key(&ObjectKey::from_raw("ns/a"))
            .unwrap();
        assert!(
            Arc::ptr_eq(&a_before, &a_after),
            "{fifo:?}: unchanged object shared"
        );
        assert_eq!(d.inf.store().len(), 3);
    }
}

#[test]
fn informer_transform_drops_managed_fields_before_storing() {
    let mut d = Driver::new(InformerConfig {
        transform: Some(drop_managed_fields()),
        ..InformerConfig::default()
    });
    let h = d.inf.add_handler(None, d.now).unwrap();
    d.start();
    let id = d.last(false);
    let item = json!({"metadata": {"name": "a", "namespace": "ns", "resourceVersion": "1",
        "managedFields": [{"manager": "kubectl", "operation": "Apply"}]}});
    d.respond(
        id,
        200,
        &json!({"kind": "ConfigMapList", "metadata": {"resourceVersion": "5"}, "items": [item]}),
    );
    let stored = d
        .inf
        .store()
        .get_by_key(&ObjectKey::from_raw("ns/a"))
        .unwrap();
    assert!(stored.metadata.managed_fields.is_none());
    let Some(Notification::Add { object, .. }) = d.inf.poll_notification(h) else {
        panic!("an add");
    };
    assert!(Arc::ptr_eq(&object, &stored), "handlers get the stored Arc");
}

#[test]
fn informer_set_transform_after_start_and_handler_after_stop_fail() {
    let mut d = Driver::new(InformerConfig::default());
    d.start();
    assert_eq!(
        d.inf.set_transform(drop_managed_fields()).unwrap_err(),
        InformerError::AlreadyStarted
    );
    d.inf.stop();
    assert_eq!(
        d.inf.add_handler(None, d.now).unwrap_err(),
        InformerError::Stopped
    );
}

#[test]
fn informer_watch_list_populates_store_through_the_fifo() {
    for relist in [RelistMode::Atomic, RelistMode::Streaming] {
        let mut d = Driver::new(InformerConfig {
            reflector: ReflectorConfig {
                use_watch_list: true,
                ..ReflectorConfig::default()
            },
            relist,
            ..InformerConfig::default()
        });
        let h = d.inf.add_handler(None, d.now).unwrap();
        d.start();
        let w = d.last(true);
        let (head, ()) = http::Response::builder()
            .status(200)
            .body(())
            .unwrap()
            .into_parts();
        d.inf.handle_response(w, &head, d.now);
        d.events(w, &[ev("ADDED", "a", "1"), ev("ADDED", "b", "2")]);
        match relist {
            RelistMode::Atomic => assert!(
                d.inf.store().is_empty(),
                "nothing stored before the end bookmark"
            ),
            RelistMode::Streaming => assert_eq!(
                d.inf.store().len(),
                2,
                "streamed into the store as the events arrive"
            ),
        }
        assert!(!d.inf.has_synced(), "{relist:?}");
        d.events(w, &[bookmark("3", true), ev("ADDED", "c", "4")]);
        assert!(d.inf.has_synced());
        assert_eq!(
            d.notes(h),
            ["Add a@1 initial", "Add b@2 initial", "Add c@4"],
            "{relist:?}"
        );
        assert_eq!(d.inf.poll_error(), None);
    }
}

/// Answers the pending list with `items` at `rv`, the body cut in two
/// chunks at the `split`-th item, and returns the notifications seen after
/// the first chunk, with the store's len at that point.
fn relist_in_two_chunks(
    d: &mut Driver,
    h: HandlerId,
    rv: &str,
    items: &[(&str, &str)],
    split: usize,
) -> (Vec<String>, usize) {
    let id = d.last(false);
    let (head, ()) = http::Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .body(())
        .unwrap()
        .into_parts();
    d.inf.handle_response(id, &head, d.now);
    let body = list_body(rv, None, items).to_string();
    // The end of the `split`-th item: after its closing brace and comma.
    let mut cut = 0;
    for _ in 0..split {
        cut += body[cut..].find("}},").unwrap() + 3;
    }
    d.inf.handle_chunk(id, &body.as_bytes()[..cut], d.now);
    let mid = d.notes(h);
    let mid_len = d.inf.store().len();
    d.inf.handle_chunk(id, &body.as_bytes()[cut..], d.now);
    d.inf.handle_eof(id, d.now);
    d.drain();
    let w = d.last(true);
    d.inf.handle_response(w, &head, d.now);
    d.drain();
    (mid, mid_len)
}

#[test]
fn informer_streaming_relist_applies_each_page_as_it_arrives_and_sweeps_at_the_end() {
    let mut d = Driver::new(InformerConfig::default());
    let h = d.inf.add_handler(None, d.now).unwrap();
    d.start();
    let (mid, _) = relist_in_two_chunks(&mut d, h, "10", &[("a", "1"), ("b", "1"), ("c", "1")], 1);
    assert_eq!(mid, ["Add a@1 initial"]);
    assert!(d.inf.has_synced());
    assert_eq!(d.notes(h), ["Add b@1 initial", "Add c@1 initial"]);
    assert_eq!(d.inf.store().resource_version(), Some("10"));
    let a_before = d
        .inf
        .store()
        .get_by_key(&ObjectKey::from_raw("ns/a"))
        .unwrap();
    // Expire the watch; the relist changes b, drops c, adds d, keeps a.
    let w = d.last(true);
    d.events(
        w,
        &[json!({"type": "ERROR", "object": status(410, "Expired", "x")})],
    );
    d.advance(Duration::from_secs(2));
    let (mid, mid_len) =
        relist_in_two_chunks(&mut d, h, "20", &[("a", "1"), ("b", "2"), ("d", "1")], 2);
    assert_eq!(mid, ["Update b@1 -> b@2"], "told as the page is applied");
    assert_eq!(mid_len, 3, "c is only swept once the list completes");
    assert_eq!(d.notes(h), ["Add d@1", "Delete DFSU c c@1"]);
    let a_after = d
        .inf
        .store()
        .get_by_key(&ObjectKey::from_raw("ns/a"))
        .unwrap();
    assert!(Arc::ptr_eq(&a_before, &a_after), "unchanged object shared");
    let mut keys = d.inf.store().list_keys();
    keys.sort();
    assert_eq!(keys, ["ns/a", "ns/b", "ns/d"].map(ObjectKey::from_raw));
    assert_eq!(d.inf.store().resource_version(), Some("20"));
}

#[test]
fn informer_streaming_relist_is_not_synced_until_the_first_list_completes() {
    let mut d = Driver::new(InformerConfig::default());
    let h = d.inf.add_handler(None, d.now).unwrap();
    d.start();
    let id = d.last(false);
    let (head, ()) = http::Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .body(())
        .unwrap()
        .into_parts();
    d.inf.handle_response(id, &head, d.now);
    let body = list_body("10", None, &[("a", "1"), ("b", "1")]).to_string();
    let cut = body.find("}},").unwrap() + 3;
    d.inf.handle_chunk(id, &body.as_bytes()[..cut], d.now);
    assert_eq!(d.inf.store().len(), 1);
    assert!(!d.inf.has_synced());
    assert!(!d.inf.handler_has_synced(h));
    // The list fails mid-body: what was applied stays, still not synced.
    d.inf.handle_error(
        id,
        crate::informer::TransportError::Closed("reset".into()),
        d.now,
    );
    d.drain();
    assert!(!d.inf.has_synced());
    assert_eq!(d.notes(h), ["Add a@1 initial"]);
    // The retry lists a and c: b never arrived, a is unchanged, c is new;
    // the sweep is against this list only.
    d.advance(Duration::from_secs(2));
    let id = d.last(false);
    d.respond(id, 200, &list_body("12", None, &[("a", "1"), ("c", "2")]));
    assert!(d.inf.has_synced());
    assert_eq!(d.notes(h), ["Add c@2 initial"]);
    assert_eq!(d.inf.store().len(), 2);
}
