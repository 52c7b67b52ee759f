//! Deterministic simulation: windlass-proto's `SharedInformer` against the
//! testkit's API server model, through seeded histories of writes,
//! compaction, restarts, a lagging watch cache, bookmarks and watch-list
//! refusals. After each history the informer must catch up to exactly the
//! server's objects. A failing seed replays exactly.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ConfigMap;
use serde_json::{Value, json};
use windlass_proto::informer::wire::StandardCodec;
use windlass_proto::informer::{
    Action, FifoKind, InformerConfig, ReflectorConfig, RequestId, SharedInformer,
};
use windlass_proto::object::Object;
use windlass_proto::params::{ListParams, ResourceVersionMatch, WatchParams};
use windlass_proto::rand::Rng;
use windlass_proto::request::Builder;
use windlass_proto::watch::WatchEvent;
use windlass_testkit::model::{
    ApiServer, Config, DeleteOptions, Gvr, Subresource, Watch, WatchPoll,
};

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Some(b) = std::str::from_utf8(&bytes[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(if bytes[i] == b'+' { b' ' } else { bytes[i] });
        i += 1;
    }
    String::from_utf8(out).unwrap()
}

fn query(uri: &http::Uri) -> HashMap<String, String> {
    uri.query()
        .unwrap_or("")
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_owned(), percent_decode(v)))
        .collect()
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

fn event_json(event: &WatchEvent<std::sync::Arc<Value>>) -> Value {
    match event {
        WatchEvent::Added(o) => json!({"type": "ADDED", "object": **o}),
        WatchEvent::Modified(o) => json!({"type": "MODIFIED", "object": **o}),
        WatchEvent::Deleted(o) => json!({"type": "DELETED", "object": **o}),
        WatchEvent::Bookmark(b) => json!({"type": "BOOKMARK", "object": {
            "kind": "ConfigMap", "apiVersion": "v1",
            "metadata": {"resourceVersion": b.resource_version, "annotations": b.annotations}}}),
        WatchEvent::Error(s) => {
            json!({"type": "ERROR", "object": serde_json::to_value(s).unwrap()})
        }
    }
}

struct Sim {
    server: ApiServer,
    inf: SharedInformer<ConfigMap>,
    watches: HashMap<RequestId, Watch>,
    now: Instant,
    gvr: Gvr,
    lists: usize,
    watch_opens: usize,
}

impl Sim {
    fn pump(&mut self) {
        while let Some(action) = self.inf.poll_action() {
            match action {
                Action::Cancel(id) => {
                    self.watches.remove(&id);
                }
                Action::Send { id, request } => {
                    let q = query(request.uri());
                    if q.contains_key("watch") {
                        self.watch_opens += 1;
                        self.open_watch(id, &q);
                    } else {
                        self.lists += 1;
                        self.list(id, &q);
                    }
                }
            }
        }
    }

    fn list(&mut self, id: RequestId, q: &HashMap<String, String>) {
        let params = ListParams {
            resource_version: q.get("resourceVersion").cloned(),
            limit: q.get("limit").map(|l| l.parse().unwrap()),
            continue_token: q.get("continue").cloned(),
            ..ListParams::default()
        };
        let (code, body) = match self.server.list(&self.gvr, None, &params) {
            Ok(list) => (200, list.to_json()),
            Err(e) => (e.code(), e.to_json()),
        };
        let now = self.now;
        self.inf.handle_response(id, &head(code), now);
        for chunk in body.to_string().as_bytes().chunks(700) {
            self.inf.handle_chunk(id, chunk, now);
        }
        self.inf.handle_eof(id, now);
    }

    fn open_watch(&mut self, id: RequestId, q: &HashMap<String, String>) {
        let params = WatchParams {
            resource_version: q.get("resourceVersion").cloned(),
            resource_version_match: q
                .contains_key("resourceVersionMatch")
                .then_some(ResourceVersionMatch::NotOlderThan),
            timeout_seconds: q.get("timeoutSeconds").map(|t| t.parse().unwrap()),
            allow_watch_bookmarks: q.contains_key("allowWatchBookmarks"),
            send_initial_events: q.get("sendInitialEvents").map(|v| v == "true"),
            ..WatchParams::default()
        };
        match self.server.watch(&self.gvr, None, &params, self.now) {
            Ok(w) => {
                self.inf.handle_response(id, &head(200), self.now);
                self.watches.insert(id, w);
            }
            Err(e) => {
                self.inf.handle_response(id, &head(e.code()), self.now);
                self.inf
                    .handle_chunk(id, e.to_json().to_string().as_bytes(), self.now);
                self.inf.handle_eof(id, self.now);
            }
        }
        self.deliver();
    }

    /// Sends every ready event on every open watch.
    fn deliver(&mut self) {
        let ids: Vec<RequestId> = self.watches.keys().copied().collect();
        for id in ids {
            let mut body = String::new();
            let mut ended = false;
            if let Some(w) = self.watches.get_mut(&id) {
                loop {
                    match w.poll(&self.server, self.now) {
                        WatchPoll::Event(e) => body += &format!("{}\n", event_json(&e)),
                        WatchPoll::Pending => break,
                        WatchPoll::Ended(_) => {
                            ended = true;
                            break;
                        }
                    }
                }
            }
            if !body.is_empty() {
                self.inf.handle_chunk(id, body.as_bytes(), self.now);
            }
            if ended && self.watches.remove(&id).is_some() {
                self.inf.handle_eof(id, self.now);
            }
        }
        self.pump();
    }

    fn advance(&mut self, d: Duration) {
        let end = self.now + d;
        loop {
            let next = [
                self.inf.poll_timeout(),
                self.watches.values().filter_map(Watch::poll_timeout).min(),
            ]
            .into_iter()
            .flatten()
            .min()
            .filter(|t| *t <= end);
            let Some(t) = next else { break };
            self.now = self.now.max(t);
            self.inf.handle_timeout(self.now);
            self.pump();
            self.deliver();
        }
        self.now = end;
    }

    fn server_state(&self) -> BTreeMap<String, String> {
        self.server
            .list(&self.gvr, None, &ListParams::default())
            .unwrap()
            .items
            .iter()
            .map(|o| {
                (
                    format!(
                        "{}/{}",
                        o["metadata"]["namespace"].as_str().unwrap(),
                        o["metadata"]["name"].as_str().unwrap()
                    ),
                    o["metadata"]["resourceVersion"]
                        .as_str()
                        .unwrap()
                        .to_owned(),
                )
            })
            .collect()
    }

    fn informer_state(&self) -> BTreeMap<String, String> {
        self.inf
            .store()
            .list()
            .map(|o| {
                (
                    o.key().to_string(),
                    o.resource_version().unwrap().to_owned(),
                )
            })
            .collect()
    }
}

/// Runs one seeded history; returns (objects, lists, watches) for the totals.
fn run(seed: u64) -> (usize, usize, usize) {
    let mut rng = Rng::new(seed);
    let now = Instant::now();
    let fifo = [FifoKind::RealAtomic, FifoKind::Real, FifoKind::Delta][rng.below(3) as usize];
    let use_watch_list = rng.below(2) == 0;
    let mut inf = SharedInformer::new(
        InformerConfig {
            reflector: ReflectorConfig {
                use_watch_list,
                page_size: [0, 2, 5][rng.below(3) as usize],
                ..ReflectorConfig::default()
            },
            fifo,
            ..InformerConfig::default()
        },
        Box::new(Builder::of::<ConfigMap>(None).unwrap()),
        Box::new(StandardCodec::default()),
    );
    inf.start(seed, now);
    let mut sim = Sim {
        server: ApiServer::new(
            Config {
                watch_cache_capacity: 8,
                seed,
                rv_zero_ignores_limit: rng.below(2) == 0,
                ..Config::default()
            },
            now,
        ),
        inf,
        watches: HashMap::new(),
        now,
        gvr: Gvr::core("configmaps"),
        lists: 0,
        watch_opens: 0,
    };
    sim.pump();
    let ns = ["default", "kube-system"];
    for _ in 0..250 {
        let name = format!("cm-{}", rng.below(10));
        let namespace = ns[rng.below(2) as usize];
        let now = sim.now;
        match rng.below(20) {
            0..=5 => {
                let obj =
                    json!({"metadata": {"name": name}, "data": {"v": rng.below(1000).to_string()}});
                if sim
                    .server
                    .create(&sim.gvr, Some(namespace), obj.clone(), now)
                    .is_err()
                {
                    let _ = sim.server.update(
                        &sim.gvr,
                        Some(namespace),
                        &name,
                        Subresource::Main,
                        obj,
                        now,
                    );
                }
            }
            6..=8 => {
                let _ = sim.server.delete(
                    &sim.gvr,
                    Some(namespace),
                    &name,
                    &DeleteOptions::default(),
                    now,
                );
            }
            9 => {
                let rv = sim.server.resource_version();
                sim.server.compact(rv);
            }
            10 => sim.server.restart(),
            11 => sim.server.freeze_watch_cache(),
            12 => sim.server.thaw_watch_cache(),
            13 => {
                for w in sim.watches.values_mut() {
                    w.request_bookmark();
                }
            }
            14 => sim.server.set_watch_list(rng.below(2) == 0),
            _ => sim.advance(Duration::from_millis(rng.below(5000))),
        }
        sim.deliver();
    }
    // Settle: a healthy server, then let time pass until the informer caught up.
    sim.server.thaw_watch_cache();
    sim.server.set_watch_list(true);
    let want = sim.server_state();
    for _ in 0..400 {
        sim.deliver();
        if sim.inf.has_synced() && sim.informer_state() == want {
            return (want.len(), sim.lists, sim.watch_opens);
        }
        sim.advance(Duration::from_secs(5));
    }
    panic!(
        "seed {seed} ({fifo:?}, watch-list {use_watch_list}): informer {:?} != server {want:?}; reflector {:?}",
        sim.informer_state(),
        sim.inf.reflector()
    );
}

#[test]
fn reflector_sim_informer_catches_up_with_the_model_server() {
    let mut totals = (0, 0, 0);
    for seed in 0..40 {
        let (objects, lists, watches) = run(seed);
        totals = (totals.0 + objects, totals.1 + lists, totals.2 + watches);
    }
    eprintln!(
        "40 histories: {} objects at the end, {} list and {} watch requests",
        totals.0, totals.1, totals.2
    );
    // The histories must actually exercise relists and re-watches.
    assert!(
        totals.0 > 100 && totals.1 > 80 && totals.2 > 200,
        "{totals:?}"
    );
}

// kubernetes #140890: a server that never sends the initial-events-end bookmark.
// The informer must back off, fall back to list+watch and sync — not loop.
#[test]
fn reflector_sim_watch_list_without_end_bookmark_falls_back_without_a_storm() {
    let now = Instant::now();
    let mut inf = SharedInformer::new(
        InformerConfig {
            reflector: ReflectorConfig {
                use_watch_list: true,
                ..ReflectorConfig::default()
            },
            ..InformerConfig::default()
        },
        Box::new(Builder::of::<ConfigMap>(None).unwrap()),
        Box::new(StandardCodec::default()),
    );
    inf.start(5, now);
    let mut sim = Sim {
        server: ApiServer::new(
            Config {
                initial_events_end_bookmark: false,
                ..Config::default()
            },
            now,
        ),
        inf,
        watches: HashMap::new(),
        now,
        gvr: Gvr::core("configmaps"),
        lists: 0,
        watch_opens: 0,
    };
    for i in 0..5 {
        let obj = json!({"metadata": {"name": format!("cm-{i}")}});
        sim.server
            .create(&sim.gvr, Some("default"), obj, now)
            .unwrap();
    }
    sim.pump();
    sim.deliver();
    // Ten simulated minutes.
    let mut synced_after = None;
    for step in 1..=120 {
        sim.advance(Duration::from_secs(5));
        if synced_after.is_none() && sim.inf.has_synced() {
            synced_after = Some(step * 5);
        }
    }
    eprintln!(
        "no end bookmark: synced after {synced_after:?} s, {} watch and {} list requests in 600 s",
        sim.watch_opens, sim.lists
    );
    assert!(sim.inf.has_synced(), "{:?}", sim.inf.reflector());
    assert_eq!(sim.informer_state(), sim.server_state());
    assert!(sim.lists >= 1, "fell back to a list");
    assert!(
        sim.watch_opens < 40,
        "{} watch requests in ten minutes",
        sim.watch_opens
    );
}
