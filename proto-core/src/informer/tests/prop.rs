//! Property: whatever the server does (mutations, pages, watch closes, 410s,
//! compaction, bookmarks, expired continue tokens, watch-list), once the
//! reflector has caught up the informer's store equals the server's state,
//! and no handler ever sees a key's resourceVersion move backwards.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ConfigMap;
use proptest::prelude::*;
use serde_json::json;

use super::reflector::{bookmark, list_body, status};
use crate::informer::DeletedObject;
use crate::informer::reflector::{Action, ReflectorConfig, RequestId};
use crate::informer::shared::{FifoKind, HandlerId, InformerConfig, Notification, SharedInformer};
use crate::informer::wire::StandardCodec;
use crate::object::Object;
use crate::request::Builder;

#[derive(Debug, Clone)]
enum Op {
    Put(u8),
    Delete(u8),
    Deliver,
    CloseWatch,
    ErrorExpired,
    Bookmark,
    Compact,
    ExpireNextContinue,
    Advance(u16),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u8..12).prop_map(Op::Put),
        2 => (0u8..12).prop_map(Op::Delete),
        3 => Just(Op::Deliver),
        1 => Just(Op::CloseWatch),
        1 => Just(Op::ErrorExpired),
        1 => Just(Op::Bookmark),
        1 => Just(Op::Compact),
        1 => Just(Op::ExpireNextContinue),
        2 => (0u16..3000).prop_map(Op::Advance),
    ]
}

/// A linearizable server: a global RV, the objects, an event log.
#[derive(Default)]
struct Server {
    rv: u64,
    objects: BTreeMap<String, u64>,
    log: Vec<(u64, &'static str, String)>,
    compacted: u64,
    expire_next_continue: bool,
    /// Paginated list snapshots by token.
    snapshots: HashMap<String, (u64, Vec<(String, u64)>)>,
    /// The open watch: (id, cursor RV, headed).
    watch: Option<(RequestId, u64)>,
}

struct World {
    server: Server,
    inf: SharedInformer<ConfigMap>,
    handler: HandlerId,
    now: Instant,
    last_rv: HashMap<String, u64>,
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

fn rv_num(o: &ConfigMap) -> u64 {
    o.resource_version().unwrap().parse().unwrap()
}

impl World {
    fn new(fifo: FifoKind, use_watch_list: bool, page_size: u32) -> Self {
        let mut inf = SharedInformer::new(
            InformerConfig {
                reflector: ReflectorConfig {
                    use_watch_list,
                    page_size,
                    ..ReflectorConfig::default()
                },
                fifo,
                ..InformerConfig::default()
            },
            Box::new(Builder::of::<ConfigMap>(None).unwrap()),
            Box::new(StandardCodec::default()),
        );
        let now = Instant::now();
        let handler = inf.add_handler(None, now).unwrap();
        inf.start(9, now);
        let mut w = Self {
            server: Server::default(),
            inf,
            handler,
            now,
            last_rv: HashMap::new(),
        };
        w.pump();
        w
    }

    fn send(&mut self, id: RequestId, code: u16, body: &[u8], eof: bool) {
        self.inf.handle_response(id, &head(code), self.now);
        if !body.is_empty() {
            self.inf.handle_chunk(id, body, self.now);
        }
        if eof {
            self.inf.handle_eof(id, self.now);
        }
    }

    /// Answers every request the informer sends, until it asks for nothing.
    fn pump(&mut self) {
        while let Some(action) = self.inf.poll_action() {
            match action {
                Action::Cancel(id) => {
                    if self.server.watch.is_some_and(|(w, _)| w == id) {
                        self.server.watch = None;
                    }
                }
                Action::Send { id, request } => {
                    let query: HashMap<String, String> = request
                        .uri()
                        .query()
                        .unwrap_or("")
                        .split('&')
                        .filter_map(|kv| kv.split_once('='))
                        .map(|(k, v)| (k.to_owned(), v.to_owned()))
                        .collect();
                    if query.contains_key("watch") {
                        self.open_watch(id, &query);
                    } else {
                        self.serve_list(id, &query);
                    }
                }
            }
        }
        self.check_notifications();
    }

    fn serve_list(&mut self, id: RequestId, q: &HashMap<String, String>) {
        let s = &mut self.server;
        let limit: usize = q.get("limit").map_or(0, |l| l.parse().unwrap());
        let (rv, items, offset) = match q.get("continue") {
            Some(token) => {
                if std::mem::take(&mut s.expire_next_continue) {
                    let body = status(410, "Expired", "continue expired").to_string();
                    self.send(id, 410, body.as_bytes(), true);
                    return;
                }
                let (rv, items) = s.snapshots[token].clone();
                let offset: usize = token.split('-').next().unwrap().parse().unwrap();
                (rv, items, offset)
            }
            None => (
                s.rv,
                s.objects.iter().map(|(k, v)| (k.clone(), *v)).collect(),
                0,
            ),
        };
        let end = if limit == 0 {
            items.len()
        } else {
            (offset + limit).min(items.len())
        };
        let page: Vec<(&str, String)> = items[offset..end]
            .iter()
            .map(|(n, v)| (n.as_str(), v.to_string()))
            .collect();
        let token = (end < items.len()).then(|| format!("{end}-{}", id.0));
        if let Some(t) = &token {
            s.snapshots.insert(t.clone(), (rv, items.clone()));
        }
        let page: Vec<(&str, &str)> = page.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let body = list_body(&rv.to_string(), token.as_deref(), &page).to_string();
        self.send(id, 200, body.as_bytes(), true);
    }

    fn open_watch(&mut self, id: RequestId, q: &HashMap<String, String>) {
        let from: u64 = q.get("resourceVersion").map_or(0, |r| r.parse().unwrap());
        if q.contains_key("sendInitialEvents") {
            let mut body = String::new();
            for (name, rv) in &self.server.objects {
                body += &super::reflector::ev("ADDED", name, &rv.to_string()).to_string();
            }
            body += &bookmark(&self.server.rv.to_string(), true).to_string();
            self.server.watch = Some((id, self.server.rv));
            self.send(id, 200, body.as_bytes(), false);
            return;
        }
        if from < self.server.compacted {
            let body = status(410, "Expired", "too old").to_string();
            self.send(id, 410, body.as_bytes(), true);
            return;
        }
        self.server.watch = Some((id, from));
        self.send(id, 200, b"", false);
    }

    fn deliver(&mut self) {
        let Some((id, cursor)) = self.server.watch else {
            return;
        };
        if cursor < self.server.compacted {
            self.error_expired();
            return;
        }
        let body: String = self
            .server
            .log
            .iter()
            .filter(|(rv, _, _)| *rv > cursor)
            .map(|(rv, kind, name)| super::reflector::ev(kind, name, &rv.to_string()).to_string())
            .collect();
        self.server.watch = Some((id, self.server.rv));
        if !body.is_empty() {
            self.inf.handle_chunk(id, body.as_bytes(), self.now);
        }
    }

    fn error_expired(&mut self) {
        let Some((id, _)) = self.server.watch.take() else {
            return;
        };
        let body = json!({"type": "ERROR", "object": status(410, "Expired", "x")}).to_string();
        self.inf.handle_chunk(id, body.as_bytes(), self.now);
    }

    fn apply(&mut self, op: Op) {
        let s = &mut self.server;
        match op {
            Op::Put(n) => {
                s.rv += 1;
                let name = format!("o{n}");
                let kind = if s.objects.insert(name.clone(), s.rv).is_some() {
                    "MODIFIED"
                } else {
                    "ADDED"
                };
                s.log.push((s.rv, kind, name));
            }
            Op::Delete(n) => {
                let name = format!("o{n}");
                if s.objects.remove(&name).is_some() {
                    s.rv += 1;
                    s.log.push((s.rv, "DELETED", name));
                }
            }
            Op::Deliver => self.deliver(),
            Op::CloseWatch => {
                if let Some((id, _)) = self.server.watch.take() {
                    self.now += Duration::from_secs(2);
                    self.inf.handle_eof(id, self.now);
                }
            }
            Op::ErrorExpired => self.error_expired(),
            Op::Bookmark => {
                self.deliver();
                if let Some((id, _)) = self.server.watch {
                    let body = bookmark(&self.server.rv.to_string(), false).to_string();
                    self.inf.handle_chunk(id, body.as_bytes(), self.now);
                }
            }
            Op::Compact => s.compacted = s.rv,
            Op::ExpireNextContinue => s.expire_next_continue = true,
            Op::Advance(ms) => {
                let end = self.now + Duration::from_millis(u64::from(ms));
                while let Some(t) = self.inf.poll_timeout().filter(|t| *t <= end) {
                    self.now = self.now.max(t);
                    self.inf.handle_timeout(self.now);
                    self.pump();
                }
                self.now = end;
            }
        }
        self.pump();
    }

    /// Drives until the informer watches, caught up with the server.
    fn settle(&mut self) {
        for _ in 0..200 {
            self.deliver();
            self.pump();
            let watching = self.inf.reflector().unwrap().state_name() == "watching";
            if watching && self.server.watch.is_some() && self.inf.has_synced() {
                return;
            }
            if let Some(t) = self.inf.poll_timeout() {
                self.now = self.now.max(t);
                self.inf.handle_timeout(self.now);
            }
            self.pump();
        }
        panic!("the informer did not settle");
    }

    fn check_notifications(&mut self) {
        while let Some(n) = self.inf.poll_notification(self.handler) {
            match n {
                Notification::Add { object, .. } | Notification::Resync(object) => {
                    let rv = rv_num(&object);
                    let last = self.last_rv.insert(object.key().to_string(), rv);
                    assert!(
                        last.is_none_or(|l| l <= rv),
                        "{} went back {last:?} -> {rv}",
                        object.key()
                    );
                }
                Notification::Update { old, new } => {
                    assert!(rv_num(&old) <= rv_num(&new), "update went back");
                    let last = self.last_rv.insert(new.key().to_string(), rv_num(&new));
                    assert!(last.is_none_or(|l| l <= rv_num(&new)));
                }
                Notification::Delete(d) => {
                    if let DeletedObject::Object(o) = &d {
                        let last = self.last_rv.get(&o.key().to_string()).copied();
                        assert!(last.is_none_or(|l| l <= rv_num(o)));
                    }
                    self.last_rv.remove(&d.key().to_string());
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn reflector_store_converges_to_server_state_and_rv_never_goes_back(
        ops in prop::collection::vec(op(), 0..80),
        fifo in prop_oneof![Just(FifoKind::RealAtomic), Just(FifoKind::Real), Just(FifoKind::Delta)],
        use_watch_list in any::<bool>(),
        page_size in prop_oneof![Just(0u32), 1u32..4],
    ) {
        let mut w = World::new(fifo, use_watch_list, page_size);
        for op in ops {
            w.apply(op);
        }
        w.settle();
        let store: BTreeMap<String, u64> = w
            .inf
            .store()
            .list()
            .map(|o| (o.key().name().to_owned(), rv_num(o)))
            .collect();
        prop_assert_eq!(&store, &w.server.objects);
        let seen: BTreeMap<String, u64> = w
            .last_rv
            .iter()
            .map(|(k, v)| (k.split_once('/').map_or(k.as_str(), |(_, n)| n).to_owned(), *v))
            .collect();
        prop_assert_eq!(&seen, &w.server.objects, "the handler's view matches too");
    }
}
