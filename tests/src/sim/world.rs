//! One run: the model server, the network between it and the informer, the
//! informer with its handlers, and simulated time. The world is the runtime
//! adapter: it polls the informer's actions, routes each request into the
//! model, writes the answer as an HTTP head and a JSON body (a watch as JSON
//! event lines), cuts the body into chunks, and feeds head, chunks and EOF
//! or transport error back — with the faults the schedule asks for.

use std::borrow::Cow;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::response::Parts;
use k8s_openapi::api::core::v1::ConfigMap;
use serde_json::{Value, json};
use windlass_proto::informer::wire::StandardCodec;
use windlass_proto::informer::{
    Action, InformerConfig, Mutation, Notification, ReflectorConfig, RequestId, SharedInformer,
    TransportError,
};
use windlass_proto::object::{Object, ObjectKey};
use windlass_proto::params::{ListParams, ResourceVersionMatch, WatchParams};
use windlass_proto::rand::Rng;
use windlass_proto::request::{Builder, query};
use windlass_proto::watch::WatchEvent;

use super::check::{RateBound, Replica, State, converged, rv_of};
use super::schedule::{NAMES_PER_NAMESPACE, NAMESPACES, Schedule, Step, TIERS};
use crate::model::{
    ApiServer, Config, DeleteOptions, Gvr, LabelSelector, Subresource, Watch, WatchEnd, WatchPoll,
};

/// More loop turns than this in one run is a livelock.
const MAX_TURNS: u64 = 3_000_000;

/// What one run reports.
#[derive(Debug)]
pub(super) struct Report {
    pub(super) divergence: Option<String>,
    pub(super) requests: u64,
    pub(super) simulated: Duration,
}

/// Something due at a point of simulated time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Due {
    Timeline(usize),
    Deliver(u64),
    WatchDeadline(u64),
    Bookmarks,
    LateHandler,
    Recover(Recovery),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Recovery {
    Thaw,
    AcceptWatchList,
    OutageOver,
}

/// How a connection's transport ends once its bytes are out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    /// The head and the body as written, then EOF.
    Whole,
    /// Refused before anything (the server is down).
    Refused,
    /// Reset before the head.
    DropBeforeHead,
    /// Reset once this many body bytes are out.
    DropAt(usize),
    /// Silent forever once this many body bytes are out.
    StallAt(usize),
}

struct Conn {
    head: Option<Parts>,
    body: Vec<u8>,
    sent: usize,
    /// The server wrote everything it will write (EOF after the body).
    finished: bool,
    fate: Fate,
    watch: Option<Watch>,
    hide_end_bookmark: bool,
    opened: Duration,
    delivered_line: bool,
    scheduled: bool,
}

pub(super) struct World {
    sched: Schedule,
    rng: Rng,
    base: Instant,
    now: Duration,
    queue: BinaryHeap<Reverse<(Duration, u64, Due)>>,
    seq: u64,
    server: ApiServer,
    gvr: Gvr,
    informer: SharedInformer<ConfigMap>,
    replicas: Vec<Replica>,
    conns: BTreeMap<u64, Conn>,
    down_until: Duration,
    outage: Option<u16>,
    rate: RateBound,
    ever_in_scope: BTreeSet<ObjectKey>,
    /// Every ConfigMap on the server, as (namespace, name).
    existing: BTreeSet<(&'static str, String)>,
    selector: LabelSelector,
    counter: u64,
    trace: Option<Vec<String>>,
    divergence: Option<String>,
}

impl World {
    pub(super) fn new(sched: Schedule, mutation: Mutation, trace: bool) -> Self {
        let base = Instant::now();
        let server = ApiServer::new(
            Config {
                watch_cache_capacity: sched.cache_capacity,
                seed: sched.seed,
                rv_zero_ignores_limit: sched.rv_zero_ignores_limit,
                ..Config::default()
            },
            base,
        );
        let config = InformerConfig {
            reflector: ReflectorConfig {
                label_selector: sched.label_selector.map(str::to_owned),
                page_size: sched.page_size,
                use_watch_list: sched.watch_list,
                mutation,
                ..ReflectorConfig::default()
            },
            default_resync: sched.resync,
            fifo: sched.fifo,
            relist: sched.relist,
            ..InformerConfig::default()
        };
        let builder = Builder::of::<ConfigMap>(sched.namespace).expect("a valid namespace");
        let mut informer = SharedInformer::new(
            config,
            Box::new(builder),
            Box::new(StandardCodec::default()),
        );
        let first = informer.add_handler(None, base).expect("not stopped");
        let page = u64::from(if sched.page_size == 0 {
            500
        } else {
            sched.page_size
        });
        let max_objects = NAMESPACES.len() as u64 * NAMES_PER_NAMESPACE;
        let mut world = Self {
            rng: Rng::new(sched.seed ^ 0x6e65_7477_6f72_6b00),
            base,
            now: Duration::ZERO,
            queue: BinaryHeap::new(),
            seq: 0,
            server,
            gvr: Gvr::core("configmaps"),
            informer,
            replicas: vec![Replica::new(first, "first")],
            conns: BTreeMap::new(),
            down_until: Duration::ZERO,
            outage: None,
            rate: RateBound::new(max_objects.div_ceil(page) + 1),
            ever_in_scope: BTreeSet::new(),
            existing: BTreeSet::new(),
            selector: LabelSelector::parse(sched.label_selector.unwrap_or(""))
                .expect("the schedule's selectors parse"),
            counter: 0,
            trace: trace.then(Vec::new),
            divergence: None,
            sched,
        };
        for i in 0..world.sched.timeline.len() {
            world.at(world.sched.timeline[i].0, Due::Timeline(i));
        }
        world.at(world.sched.bookmark_every, Due::Bookmarks);
        world.at(world.sched.late_handler_at, Due::LateHandler);
        world
    }

    pub(super) fn take_trace(&mut self) -> Vec<String> {
        self.trace.take().unwrap_or_default()
    }

    /// Runs the schedule to its end and checks the invariants.
    pub(super) fn run(&mut self) -> Report {
        if self.trace.is_some() {
            let s = &self.sched;
            let line = format!(
                "schedule: fifo {:?}, relist {:?}, watch-list {}, page size {}, namespace {:?}, selector {:?}, resync {:?}, watch cache {}, rv=0 ignores limit {}, faults until {:?}, rates {:?}, bookmarks every {:?}",
                s.fifo,
                s.relist,
                s.watch_list,
                s.page_size,
                s.namespace,
                s.label_selector,
                s.resync,
                s.cache_capacity,
                s.rv_zero_ignores_limit,
                s.faults_end,
                s.rates,
                s.bookmark_every
            );
            self.log(|| line);
        }
        self.log(|| "informer started".into());
        self.informer.start(self.sched.seed, self.base);
        let mut turns = 0u64;
        while self.divergence.is_none() {
            self.perform_actions();
            self.deliver_notifications();
            if self.divergence.is_some() {
                break;
            }
            turns += 1;
            if turns > MAX_TURNS {
                self.diverge(format!("livelock: more than {MAX_TURNS} steps"));
                break;
            }
            let timer = self
                .informer
                .poll_timeout()
                .map(|t| t.saturating_duration_since(self.base));
            let next = self.queue.peek().map(|Reverse((t, _, _))| *t);
            match (timer, next) {
                (Some(t), n) if t <= self.sched.end && n.is_none_or(|n| t <= n) => {
                    self.now = self.now.max(t);
                    let now = self.instant();
                    self.informer.handle_timeout(now);
                    while let Some(e) = self.informer.poll_error() {
                        self.log(|| format!("reflector: {e}"));
                    }
                }
                (_, Some(n)) if n <= self.sched.end => {
                    let Some(Reverse((t, _, due))) = self.queue.pop() else {
                        break;
                    };
                    self.now = self.now.max(t);
                    self.handle(due);
                }
                _ => break,
            }
        }
        if self.divergence.is_none() {
            self.now = self.sched.end;
            self.perform_actions();
            self.deliver_notifications();
        }
        if self.divergence.is_none()
            && let Err(e) = converged(
                &self.server_state(),
                &self.ever_in_scope,
                self.informer.store(),
                &self.replicas,
            )
        {
            self.diverge(e);
        }
        Report {
            divergence: self.divergence.clone(),
            requests: self.rate.requests(),
            simulated: self.now,
        }
    }

    fn instant(&self) -> Instant {
        self.base + self.now
    }

    fn at(&mut self, t: Duration, due: Due) {
        self.seq += 1;
        self.queue.push(Reverse((t, self.seq, due)));
    }

    fn log(&mut self, line: impl FnOnce() -> String) {
        if let Some(trace) = &mut self.trace {
            trace.push(format!("{:>10.3}s {}", self.now.as_secs_f64(), line()));
        }
    }

    fn diverge(&mut self, why: String) {
        self.log(|| format!("DIVERGENCE: {why}"));
        if self.divergence.is_none() {
            self.divergence = Some(why);
        }
    }

    fn faulty(&self) -> bool {
        self.now < self.sched.faults_end
    }

    fn chance(&mut self, per_mille: u64) -> bool {
        self.faulty() && self.rng.below(1000) < per_mille
    }

    // --- what is due

    fn handle(&mut self, due: Due) {
        match due {
            Due::Timeline(i) => {
                let step = self.sched.timeline[i].1.clone();
                self.step(step);
                self.pump_watches();
            }
            Due::Deliver(id) => self.deliver(id),
            Due::WatchDeadline(_) => self.pump_watches(),
            Due::Bookmarks => {
                for conn in self.conns.values_mut() {
                    if let Some(w) = &mut conn.watch {
                        w.request_bookmark();
                    }
                }
                self.pump_watches();
                let next = self.now + self.sched.bookmark_every;
                self.at(next, Due::Bookmarks);
            }
            Due::LateHandler => {
                let now = self.instant();
                match self.informer.add_handler(None, now) {
                    Ok(id) => {
                        self.log(|| "late handler added".into());
                        self.replicas.push(Replica::new(id, "late"));
                    }
                    Err(e) => self.diverge(format!("adding the late handler: {e}")),
                }
            }
            Due::Recover(r) => {
                self.log(|| format!("recovered: {r:?}"));
                match r {
                    Recovery::Thaw => self.server.thaw_watch_cache(),
                    Recovery::AcceptWatchList => self.server.set_watch_list(true),
                    Recovery::OutageOver => self.outage = None,
                }
                self.pump_watches();
            }
        }
    }

    fn step(&mut self, step: Step) {
        let now = self.instant();
        match step {
            Step::Create {
                namespace,
                name,
                tier,
            } => {
                let ns = NAMESPACES[namespace];
                let Some(name) = (0..NAMES_PER_NAMESPACE)
                    .map(|i| format!("cm-{}", (name + i) % NAMES_PER_NAMESPACE))
                    .find(|n| !self.existing.contains(&(ns, n.clone())))
                else {
                    return;
                };
                self.counter += 1;
                let body = json!({
                    "metadata": {"name": name, "namespace": ns, "labels": {"tier": TIERS[tier]}},
                    "data": {"v": self.counter.to_string()},
                });
                match self.server.create(&self.gvr, Some(ns), body, now) {
                    Ok(o) => {
                        self.log(|| {
                            format!("create {ns}/{name} tier {} rv {}", TIERS[tier], rv_json(&o))
                        });
                        self.record_scope(&o);
                        self.existing.insert((ns, name));
                    }
                    Err(e) => self.diverge(format!("workload create {ns}/{name}: {e}")),
                }
            }
            Step::Update { pick, tier } => {
                let Some((ns, name)) = self.pick(pick) else {
                    return;
                };
                let Ok(current) = self.server.get(&self.gvr, Some(ns), &name) else {
                    return;
                };
                self.counter += 1;
                let mut body = (*current).clone();
                body["metadata"]["labels"]["tier"] = TIERS[tier].into();
                body["data"]["v"] = self.counter.to_string().into();
                let updated =
                    self.server
                        .update(&self.gvr, Some(ns), &name, Subresource::Main, body, now);
                match updated {
                    Ok(o) => {
                        self.log(|| {
                            format!("update {ns}/{name} tier {} rv {}", TIERS[tier], rv_json(&o))
                        });
                        self.record_scope(&o);
                    }
                    Err(e) => self.diverge(format!("workload update {ns}/{name}: {e}")),
                }
            }
            Step::Delete { pick } => {
                let Some((ns, name)) = self.pick(pick) else {
                    return;
                };
                let deleted =
                    self.server
                        .delete(&self.gvr, Some(ns), &name, &DeleteOptions::default(), now);
                match deleted {
                    Ok(_) => {
                        self.log(|| format!("delete {ns}/{name}"));
                        self.existing.remove(&(ns, name));
                    }
                    Err(e) => self.diverge(format!("workload delete {ns}/{name}: {e}")),
                }
            }
            Step::Compact { behind } => {
                let rv = self.server.resource_version().saturating_sub(behind);
                self.log(|| format!("compact at {rv}"));
                self.server.compact(rv);
            }
            Step::Restart { down } => {
                self.log(|| format!("server restart, down {down:?}"));
                self.server.restart();
                self.down_until = self.now + down;
            }
            Step::FreezeCache { length } => {
                self.log(|| format!("watch cache frozen for {length:?}"));
                self.server.freeze_watch_cache();
                self.at(self.now + length, Due::Recover(Recovery::Thaw));
            }
            Step::RefuseWatchList { length } => {
                self.log(|| format!("watch-list refused for {length:?}"));
                self.server.set_watch_list(false);
                self.at(self.now + length, Due::Recover(Recovery::AcceptWatchList));
            }
            Step::Outage { code, length } => {
                self.log(|| format!("outage: every request gets {code} for {length:?}"));
                self.outage = Some(code);
                self.at(self.now + length, Due::Recover(Recovery::OutageOver));
            }
        }
    }

    /// The `pick`-th existing ConfigMap.
    fn pick(&self, pick: u64) -> Option<(&'static str, String)> {
        let n = self.existing.len() as u64;
        if n == 0 {
            return None;
        }
        self.existing.iter().nth((pick % n) as usize).cloned()
    }

    /// Notes a key the informer's scope held.
    fn record_scope(&mut self, object: &Value) {
        let m = &object["metadata"];
        let namespace = m["namespace"].as_str();
        if self.sched.namespace.is_some_and(|ns| Some(ns) != namespace)
            || !self.selector.matches(m["labels"].as_object())
        {
            return;
        }
        self.ever_in_scope
            .insert(ObjectKey::new(namespace, m["name"].as_str().unwrap_or("")));
    }

    /// The informer's scope on the server now: key → resourceVersion.
    fn server_state(&self) -> State {
        let params = ListParams {
            label_selector: self.sched.label_selector.map(str::to_owned),
            ..ListParams::default()
        };
        let list = self
            .server
            .list(&self.gvr, self.sched.namespace, &params)
            .expect("the informer's own selector is valid");
        list.items
            .iter()
            .map(|o| {
                let m = &o["metadata"];
                (
                    ObjectKey::new(m["namespace"].as_str(), m["name"].as_str().unwrap_or("")),
                    rv_json(o),
                )
            })
            .collect()
    }

    // --- the adapter: actions in, responses out

    fn perform_actions(&mut self) {
        while let Some(action) = self.informer.poll_action() {
            match action {
                Action::Send { id, request } => self.open(id, request),
                Action::Cancel(id) => {
                    if let Some(conn) = self.conns.remove(&id.0) {
                        self.log(|| format!("#{} cancelled", id.0));
                        self.watch_ended(&conn);
                    }
                }
            }
        }
    }

    fn deliver_notifications(&mut self) {
        for i in 0..self.replicas.len() {
            let id = self.replicas[i].id;
            while let Some(n) = self.informer.poll_notification(id) {
                let name = self.replicas[i].name;
                self.log(|| format!("handler {name}: {}", describe(&n)));
                if let Err(e) = self.replicas[i].apply(&n) {
                    self.diverge(e);
                    return;
                }
            }
            self.informer.notification_done(id);
        }
    }

    fn open(&mut self, id: RequestId, request: http::Request<Bytes>) {
        let uri = request.uri().clone();
        self.log(|| format!("#{} {} {uri}", id.0, request.method()));
        if let Err(e) = self.rate.sent(self.now) {
            self.diverge(format!("request storm: {e}"));
            return;
        }
        let mut conn = Conn {
            head: None,
            body: Vec::new(),
            sent: 0,
            finished: true,
            fate: Fate::Whole,
            watch: None,
            hide_end_bookmark: false,
            opened: self.now,
            delivered_line: false,
            scheduled: false,
        };
        if self.now < self.down_until {
            conn.fate = Fate::Refused;
        } else if let Some(code) = self.outage {
            self.error_answer(&mut conn, code);
        } else if self.chance(self.sched.rates.status) {
            let code = [429, 500, 503][self.rng.below(3) as usize];
            self.error_answer(&mut conn, code);
        } else {
            self.answer(&mut conn, &uri);
        }
        if conn.fate == Fate::Whole {
            if self.chance(self.sched.rates.drop) {
                // Any byte offset of any response, the head included.
                let span = conn.body.len().max(2048) as u64;
                let at = if self.rng.below(10) == 0 {
                    0
                } else {
                    1 + self.rng.below(span)
                };
                conn.fate = if at == 0 {
                    Fate::DropBeforeHead
                } else {
                    Fate::DropAt(at as usize - 1)
                };
            } else if self.chance(self.sched.rates.stall) {
                let span = conn.body.len().max(2048) as u64;
                conn.fate = Fate::StallAt(self.rng.below(span) as usize);
            }
        }
        if let Some(deadline) = conn.watch.as_ref().and_then(Watch::poll_timeout) {
            let at = deadline.saturating_duration_since(self.base);
            self.at(at, Due::WatchDeadline(id.0));
        }
        self.conns.insert(id.0, conn);
        self.pump_watches();
        let latency = self.rng.below(30_000) + 500;
        self.schedule(id.0, latency);
    }

    /// The model's answer to a request the reflector built.
    fn answer(&mut self, conn: &mut Conn, uri: &http::Uri) {
        let namespace = match uri.path().split('/').collect::<Vec<_>>()[..] {
            ["", "api", "v1", "configmaps"] => None,
            ["", "api", "v1", "namespaces", ns, "configmaps"] => Some(ns.to_owned()),
            _ => {
                self.diverge(format!("the reflector asked for an unexpected path {uri}"));
                return;
            }
        };
        let pairs = match query::decode(uri.query().unwrap_or("")) {
            Ok(p) => p,
            Err(e) => {
                self.diverge(format!("the reflector wrote a bad query {uri}: {e}"));
                return;
            }
        };
        let get = |k: &str| {
            pairs
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.clone())
        };
        let rv_match = get("resourceVersionMatch").map(|m| match m.as_str() {
            "Exact" => ResourceVersionMatch::Exact,
            _ => ResourceVersionMatch::NotOlderThan,
        });
        let now = self.instant();
        let at_rv = get("resourceVersion").and_then(|rv| rv.parse::<u64>().ok());
        if let Some(requested) = at_rv.filter(|rv| *rv > 0)
            && self.chance(self.sched.rates.too_large)
        {
            let current = requested - 1;
            self.log(|| format!("the watch cache lags at {current}"));
            conn.head = Some(head(504, None));
            conn.body = serde_json::to_vec(&json!({
                "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": format!("Timeout: Too large resource version: {requested}, current: {current}"),
                "reason": "Timeout", "code": 504,
                "details": {"causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}], "retryAfterSeconds": 1},
            }))
            .unwrap_or_default();
            return;
        }
        if get("watch").as_deref() == Some("true") {
            let params = WatchParams {
                label_selector: get("labelSelector"),
                field_selector: get("fieldSelector"),
                resource_version: get("resourceVersion"),
                resource_version_match: rv_match,
                timeout_seconds: get("timeoutSeconds").and_then(|t| t.parse().ok()),
                allow_watch_bookmarks: get("allowWatchBookmarks").as_deref() == Some("true"),
                send_initial_events: get("sendInitialEvents").map(|v| v == "true"),
            };
            match self
                .server
                .watch(&self.gvr, namespace.as_deref(), &params, now)
            {
                Ok(watch) => {
                    conn.head = Some(head(200, None));
                    conn.finished = false;
                    conn.hide_end_bookmark = params.send_initial_events == Some(true)
                        && self.chance(self.sched.rates.hide_end_bookmark);
                    if conn.hide_end_bookmark {
                        self.log(|| "this watch-list will not send its end bookmark".into());
                    }
                    conn.watch = Some(watch);
                }
                Err(e) => {
                    conn.head = Some(head(e.code(), None));
                    conn.body = serde_json::to_vec(&e.to_json()).unwrap_or_default();
                }
            }
            return;
        }
        let params = ListParams {
            label_selector: get("labelSelector"),
            field_selector: get("fieldSelector"),
            resource_version: get("resourceVersion"),
            resource_version_match: rv_match,
            limit: get("limit").and_then(|l| l.parse().ok()),
            continue_token: get("continue"),
            timeout_seconds: None,
        };
        if params.continue_token.is_some() && self.chance(self.sched.rates.expire_continue) {
            let rv = self.server.resource_version();
            self.log(|| format!("compact at {rv} before a continue"));
            self.server.compact(rv);
        }
        match self.server.list(&self.gvr, namespace.as_deref(), &params) {
            Ok(list) => {
                conn.head = Some(head(200, None));
                conn.body = serde_json::to_vec(&list.to_json()).unwrap_or_default();
            }
            Err(e) => {
                conn.head = Some(head(e.code(), None));
                conn.body = serde_json::to_vec(&e.to_json()).unwrap_or_default();
            }
        }
    }

    /// A 429, 500 or 503 with Retry-After, as an overloaded server sends.
    fn error_answer(&mut self, conn: &mut Conn, code: u16) {
        let retry_after = 1 + self.rng.below(3);
        let (reason, message) = match code {
            429 => (
                "TooManyRequests",
                "the server has received too many requests",
            ),
            503 => (
                "ServiceUnavailable",
                "the server is currently unable to handle the request",
            ),
            _ => (
                "InternalError",
                "an error on the server has prevented the request from succeeding",
            ),
        };
        conn.head = Some(head(code, Some(retry_after)));
        conn.body = serde_json::to_vec(&json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code,
            "details": {"retryAfterSeconds": retry_after},
        }))
        .unwrap_or_default();
    }

    /// Moves every open watch's new events into its connection.
    fn pump_watches(&mut self) {
        let now = self.instant();
        let ids: Vec<u64> = self.conns.keys().copied().collect();
        for id in ids {
            let Some(conn) = self.conns.get_mut(&id) else {
                continue;
            };
            let Some(watch) = &mut conn.watch else {
                continue;
            };
            let before = conn.body.len();
            loop {
                match watch.poll(&self.server, now) {
                    WatchPoll::Event(event) => {
                        if conn.hide_end_bookmark
                            && matches!(&event, WatchEvent::Bookmark(b) if b.is_initial_events_end())
                        {
                            continue;
                        }
                        event_line(&mut conn.body, &event, watch);
                        if let Some(trace) = &mut self.trace {
                            trace.push(format!(
                                "{:>10.3}s #{id} writes {}",
                                self.now.as_secs_f64(),
                                describe_event(&event)
                            ));
                        }
                    }
                    WatchPoll::Pending => break,
                    WatchPoll::Ended(end) => {
                        conn.finished = true;
                        if end == WatchEnd::ServerRestarted && conn.fate == Fate::Whole {
                            conn.fate = Fate::DropAt(conn.body.len());
                        }
                        conn.watch = None;
                        break;
                    }
                }
            }
            let wrote = conn.body.len() > before || conn.finished;
            if wrote && !conn.scheduled {
                let delay = self.rng.below(3000) + 100;
                self.schedule(id, delay);
            }
        }
    }

    fn schedule(&mut self, id: u64, micros: u64) {
        if let Some(conn) = self.conns.get_mut(&id) {
            if conn.scheduled {
                return;
            }
            conn.scheduled = true;
            let at = self.now + Duration::from_micros(micros);
            self.at(at, Due::Deliver(id));
        }
    }

    /// The next piece of connection `id` reaches the informer.
    fn deliver(&mut self, id: u64) {
        let now = self.instant();
        let rid = RequestId(id);
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        conn.scheduled = false;
        match conn.fate {
            Fate::Refused => {
                self.conns.remove(&id);
                self.log(|| format!("#{id} connection refused"));
                self.informer
                    .handle_error(rid, TransportError::ConnectionRefused, now);
                return;
            }
            Fate::DropBeforeHead => {
                self.conns.remove(&id);
                self.log(|| format!("#{id} reset before the head"));
                self.informer.handle_error(
                    rid,
                    TransportError::Closed("connection reset before the response head".into()),
                    now,
                );
                return;
            }
            _ => {}
        }
        if let Some(head) = conn.head.take() {
            let code = head.status.as_u16();
            self.log(|| format!("#{id} HTTP {code}"));
            self.informer.handle_response(rid, &head, now);
            let delay = self.rng.below(2000) + 50;
            self.schedule(id, delay);
            return;
        }
        let limit = match conn.fate {
            Fate::DropAt(n) | Fate::StallAt(n) => n.min(conn.body.len()),
            _ => conn.body.len(),
        };
        if conn.sent < limit {
            let left = (limit - conn.sent) as u64;
            let n = match self.rng.below(10) {
                0..=4 => left,
                5..=7 => 1 + self.rng.below(left),
                _ => 1 + self.rng.below(left.min(16)),
            } as usize;
            let chunk = conn.body[conn.sent..conn.sent + n].to_vec();
            conn.sent += n;
            conn.delivered_line |= chunk.contains(&b'\n');
            self.log(|| format!("#{id} {n} bytes"));
            self.informer.handle_chunk(rid, &chunk, now);
            let delay = self.rng.below(2000) + 50;
            self.schedule(id, delay);
            return;
        }
        match conn.fate {
            Fate::DropAt(n) if conn.sent >= n => {
                let conn = self.conns.remove(&id).expect("present");
                self.watch_ended(&conn);
                self.log(|| format!("#{id} reset after {n} bytes"));
                self.informer.handle_error(
                    rid,
                    TransportError::Closed("connection reset by peer".into()),
                    now,
                );
            }
            Fate::StallAt(n) if conn.sent >= n => {
                self.log(|| format!("#{id} stalls after {n} bytes"));
            }
            _ if conn.finished => {
                let conn = self.conns.remove(&id).expect("present");
                self.watch_ended(&conn);
                self.log(|| format!("#{id} EOF"));
                self.informer.handle_eof(rid, now);
            }
            _ => {}
        }
    }

    fn watch_ended(&mut self, conn: &Conn) {
        let productive =
            conn.delivered_line || self.now.saturating_sub(conn.opened) >= Duration::from_secs(1);
        if productive {
            self.rate.productive_watch_ended(self.now);
        }
    }
}

fn head(code: u16, retry_after: Option<u64>) -> Parts {
    let mut builder = http::Response::builder()
        .status(code)
        .header(http::header::CONTENT_TYPE, "application/json");
    if let Some(s) = retry_after {
        builder = builder.header(http::header::RETRY_AFTER, s);
    }
    builder.body(()).expect("a valid head").into_parts().0
}

fn rv_json(o: &Value) -> String {
    o["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or("")
        .to_owned()
}

/// One watch event as a line of the JSON watch stream.
fn event_line(out: &mut Vec<u8>, event: &WatchEvent<Arc<Value>>, watch: &Watch) {
    let (kind, written) = match event {
        WatchEvent::Added(o) => ("ADDED", Cow::Borrowed(&**o)),
        WatchEvent::Modified(o) => ("MODIFIED", Cow::Borrowed(&**o)),
        WatchEvent::Deleted(o) => ("DELETED", Cow::Borrowed(&**o)),
        WatchEvent::Bookmark(b) => (
            "BOOKMARK",
            Cow::Owned(json!({
                "kind": watch.kind(),
                "apiVersion": watch.api_version(),
                "metadata": {"resourceVersion": b.resource_version, "annotations": b.annotations},
            })),
        ),
        WatchEvent::Error(status) => (
            "ERROR",
            Cow::Owned(serde_json::to_value(&**status).unwrap_or_default()),
        ),
    };
    out.extend_from_slice(b"{\"type\":\"");
    out.extend_from_slice(kind.as_bytes());
    out.extend_from_slice(b"\",\"object\":");
    // Writing a `Value` into a `Vec` cannot fail.
    let _ = serde_json::to_writer(&mut *out, &*written);
    out.extend_from_slice(b"}\n");
}

fn describe(n: &Notification<ConfigMap>) -> String {
    let key_rv = |o: &ConfigMap| format!("{} rv {}", o.key(), rv_of(o));
    match n {
        Notification::Add {
            object,
            is_in_initial_list,
        } => format!("add {} (initial: {is_in_initial_list})", key_rv(object)),
        Notification::Update { old, new } => {
            format!("update {} → rv {}", key_rv(old), rv_of(new))
        }
        Notification::Resync(o) => format!("resync {}", key_rv(o)),
        Notification::Delete(d) => match d.object() {
            Some(o) if d.is_final_state_unknown() => format!("tombstone {}", key_rv(o)),
            Some(o) => format!("delete {}", key_rv(o)),
            None => format!("tombstone {}", d.key()),
        },
    }
}

fn describe_event(event: &WatchEvent<Arc<Value>>) -> String {
    let key_rv = |o: &Value| {
        let m = &o["metadata"];
        format!(
            "{}/{} rv {}",
            m["namespace"].as_str().unwrap_or(""),
            m["name"].as_str().unwrap_or(""),
            rv_json(o)
        )
    };
    match event {
        WatchEvent::Added(o) => format!("ADDED {}", key_rv(o)),
        WatchEvent::Modified(o) => format!("MODIFIED {}", key_rv(o)),
        WatchEvent::Deleted(o) => format!("DELETED {}", key_rv(o)),
        WatchEvent::Bookmark(b) if b.is_initial_events_end() => {
            format!("BOOKMARK rv {} (initial-events-end)", b.resource_version)
        }
        WatchEvent::Bookmark(b) => format!("BOOKMARK rv {}", b.resource_version),
        WatchEvent::Error(s) => format!("ERROR {:?} {:?}", s.code, s.reason),
    }
}
