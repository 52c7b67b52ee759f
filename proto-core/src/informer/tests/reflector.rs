use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ConfigMap;
use serde_json::json;

use crate::informer::backoff::BackoffConfig;
use crate::informer::reflector::{
    Action, Reflector, ReflectorConfig, ReflectorError, ReflectorEvent, RequestId, TransportError,
};
use crate::informer::wire::StandardCodec;
use crate::object::Object;
use crate::request::Builder;

/// A reflector over ConfigMaps and a fake clock, driven by hand.
pub(crate) struct Harness {
    pub r: Reflector<ConfigMap>,
    pub now: Instant,
    pub events: Vec<ReflectorEvent<ConfigMap>>,
    pub cancelled: Vec<RequestId>,
    /// Every request sent so far: (id, verb, query).
    pub sent: Vec<(RequestId, &'static str, BTreeMap<String, String>)>,
}

pub(crate) fn config() -> ReflectorConfig {
    ReflectorConfig::default()
}

impl Harness {
    pub fn new(config: ReflectorConfig) -> Self {
        Self::with_seed(config, 1)
    }

    pub fn with_seed(config: ReflectorConfig, seed: u64) -> Self {
        let now = Instant::now();
        let r = Reflector::new(
            config,
            Box::new(Builder::of::<ConfigMap>(None).unwrap()),
            Box::new(StandardCodec::default()),
            seed,
            now,
        );
        let mut h = Self {
            r,
            now,
            events: Vec::new(),
            cancelled: Vec::new(),
            sent: Vec::new(),
        };
        h.drain();
        h
    }

    pub fn drain(&mut self) {
        while let Some(a) = self.r.poll_action() {
            match a {
                Action::Send { id, request } => {
                    let query: BTreeMap<String, String> = request
                        .uri()
                        .query()
                        .unwrap_or("")
                        .split('&')
                        .filter(|kv| !kv.is_empty())
                        .map(|kv| {
                            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                            (k.to_owned(), v.replace("%2F", "/"))
                        })
                        .collect();
                    let verb = if query.contains_key("watch") {
                        "watch"
                    } else {
                        "list"
                    };
                    self.sent.push((id, verb, query));
                }
                Action::Cancel(id) => self.cancelled.push(id),
            }
        }
        while let Some(e) = self.r.poll_event() {
            self.events.push(e);
        }
    }

    /// The last request sent, which must be a `verb`.
    pub fn last(&self, verb: &str) -> (RequestId, BTreeMap<String, String>) {
        let (id, v, q) = self.sent.last().expect("a request was sent");
        assert_eq!(*v, verb, "last request {q:?}");
        (*id, q.clone())
    }

    pub fn head(&mut self, id: RequestId, code: u16) {
        let (parts, ()) = http::Response::builder()
            .status(code)
            .header("content-type", "application/json")
            .body(())
            .unwrap()
            .into_parts();
        self.r.handle_response(id, &parts, self.now);
        self.drain();
    }

    pub fn chunk(&mut self, id: RequestId, body: &[u8]) {
        self.r.handle_chunk(id, body, self.now);
        self.drain();
    }

    pub fn eof(&mut self, id: RequestId) {
        self.r.handle_eof(id, self.now);
        self.drain();
    }

    pub fn respond(&mut self, id: RequestId, code: u16, body: &serde_json::Value) {
        self.head(id, code);
        self.chunk(id, body.to_string().as_bytes());
        self.eof(id);
    }

    pub fn fail(&mut self, id: RequestId, e: TransportError) {
        self.r.handle_error(id, e, self.now);
        self.drain();
    }

    /// Advances the clock by `d`, firing every timeout that falls due.
    pub fn advance(&mut self, d: Duration) {
        let end = self.now + d;
        while let Some(t) = self.r.poll_timeout().filter(|t| *t <= end) {
            self.now = self.now.max(t);
            self.r.handle_timeout(self.now);
            self.drain();
        }
        self.now = end;
    }

    /// Advances to the next timeout and fires it; returns how far it was.
    pub fn next_timeout(&mut self) -> Duration {
        let t = self.r.poll_timeout().expect("a timeout");
        let d = t.saturating_duration_since(self.now);
        self.now = self.now.max(t);
        self.r.handle_timeout(self.now);
        self.drain();
        d
    }

    /// Answers the pending list with one page of `items` at `rv`.
    pub fn list_ok(&mut self, rv: &str, items: &[(&str, &str)]) {
        let (id, _) = self.last("list");
        self.respond(id, 200, &list_body(rv, None, items));
    }

    /// Sends watch events on the open watch `id`.
    pub fn events_on(&mut self, id: RequestId, events: &[serde_json::Value]) {
        let body: String = events.iter().map(|e| format!("{e}\n")).collect();
        self.chunk(id, body.as_bytes());
    }

    pub fn list_rvs(&self) -> Vec<String> {
        self.sent
            .iter()
            .filter(|(_, v, q)| *v == "list" && !q.contains_key("continue"))
            .map(|(_, _, q)| q.get("resourceVersion").cloned().unwrap_or_default())
            .collect()
    }

    pub fn count(&self, verb: &str) -> usize {
        self.sent.iter().filter(|(_, v, _)| *v == verb).count()
    }

    pub fn take_events(&mut self) -> Vec<ReflectorEvent<ConfigMap>> {
        std::mem::take(&mut self.events)
    }
}

pub(crate) fn obj(name: &str, rv: &str) -> serde_json::Value {
    json!({"metadata": {"name": name, "namespace": "ns", "resourceVersion": rv}})
}

pub(crate) fn list_body(rv: &str, cont: Option<&str>, items: &[(&str, &str)]) -> serde_json::Value {
    let mut meta = json!({"resourceVersion": rv});
    if let Some(c) = cont {
        meta["continue"] = json!(c);
    }
    json!({
        "kind": "ConfigMapList", "apiVersion": "v1", "metadata": meta,
        "items": items.iter().map(|(n, rv)| obj(n, rv)).collect::<Vec<_>>(),
    })
}

pub(crate) fn ev(kind: &str, name: &str, rv: &str) -> serde_json::Value {
    json!({"type": kind, "object": obj(name, rv)})
}

pub(crate) fn bookmark(rv: &str, end: bool) -> serde_json::Value {
    let mut meta = json!({"resourceVersion": rv});
    if end {
        meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    json!({"type": "BOOKMARK", "object": {"kind": "ConfigMap", "apiVersion": "v1", "metadata": meta}})
}

pub(crate) fn status(code: u16, reason: &str, message: &str) -> serde_json::Value {
    json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
           "reason": reason, "code": code, "message": message})
}

fn error_event(code: u16, reason: &str) -> serde_json::Value {
    json!({"type": "ERROR", "object": status(code, reason, "boom")})
}

fn kinds(events: &[ReflectorEvent<ConfigMap>]) -> Vec<String> {
    events
        .iter()
        .map(|e| match e {
            ReflectorEvent::ListStarted => "ListStarted".into(),
            ReflectorEvent::Listed(v) => format!(
                "Listed[{}]",
                v.iter()
                    .map(|o| o.key().to_string())
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            ReflectorEvent::ListedDeleted(k) => format!("ListedDeleted {k}"),
            ReflectorEvent::ListAborted => "ListAborted".into(),
            ReflectorEvent::Replaced { resource_version } => format!("Replaced {resource_version}"),
            ReflectorEvent::Added(o) => format!("Added {}", o.resource_version().unwrap()),
            ReflectorEvent::Modified(o) => format!("Modified {}", o.resource_version().unwrap()),
            ReflectorEvent::Deleted(o) => format!("Deleted {}", o.resource_version().unwrap()),
            ReflectorEvent::Bookmark { resource_version } => format!("Bookmark {resource_version}"),
            ReflectorEvent::Resync => "Resync".into(),
            ReflectorEvent::Error(_) => "Error".into(),
        })
        .collect()
}

fn q(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Lists at `rv` (answering the pending list), opens the watch, returns its id.
fn list_then_watch(h: &mut Harness, rv: &str) -> RequestId {
    h.list_ok(rv, &[]);
    let (id, _) = h.last("watch");
    h.head(id, 200);
    id
}

// reflector_test.go `TestReflectorListAndWatch…` default options: LIST {RV "0", Limit 500},
// then WATCH {RV = list RV, bookmarks, timeout in [300, 600)}.
#[test]
fn reflector_default_request_options_list_then_watch() {
    let mut h = Harness::new(config());
    let (_, list) = h.last("list");
    assert_eq!(list, q(&[("limit", "500"), ("resourceVersion", "0")]));
    h.list_ok("10", &[("a", "5"), ("b", "7")]);
    assert_eq!(
        kinds(&h.take_events()),
        ["ListStarted", "Listed[ns/a,ns/b]", "Replaced 10"]
    );
    assert!(h.r.has_synced());
    let (_, watch) = h.last("watch");
    let timeout: u32 = watch["timeoutSeconds"].parse().unwrap();
    assert!((300..600).contains(&timeout), "{timeout}");
    let mut expected = q(&[
        ("watch", "true"),
        ("resourceVersion", "10"),
        ("allowWatchBookmarks", "true"),
    ]);
    expected.insert("timeoutSeconds".into(), timeout.to_string());
    assert_eq!(watch, expected);
}

// reflector_watchlist_test.go: WatchList on → a single WATCH {RV "", NotOlderThan, SendInitialEvents}.
#[test]
fn reflector_watch_list_default_request_options() {
    let h = Harness::new(ReflectorConfig {
        use_watch_list: true,
        ..config()
    });
    let (_, watch) = h.last("watch");
    assert_eq!(watch.get("resourceVersion"), None);
    assert_eq!(watch["resourceVersionMatch"], "NotOlderThan");
    assert_eq!(watch["sendInitialEvents"], "true");
    assert_eq!(watch["allowWatchBookmarks"], "true");
    assert_eq!(h.count("list"), 0);
}

// TestReflectorResourceVersionUpdate-like: the list RVs are "0", then the last synced RV.
#[test]
fn reflector_relist_uses_last_synced_rv() {
    let mut h = Harness::new(config());
    let w = list_then_watch(&mut h, "10");
    h.events_on(w, &[error_event(410, "Expired")]);
    assert!(h.cancelled.contains(&w));
    h.next_timeout(); // the cycle's backoff
    assert_eq!(h.list_rvs(), ["0", "10"]);
}

// TestRelistResourceVersion: 410 on the RV-10 list → an immediate list at "".
#[test]
fn reflector_list_410_relists_at_empty_rv() {
    let mut h = Harness::new(config());
    let w = list_then_watch(&mut h, "10");
    h.events_on(w, &[error_event(410, "Expired")]);
    h.next_timeout();
    let (id, list) = h.last("list");
    assert_eq!(list.get("limit"), None, "an RV of 10 lists unpaginated");
    h.respond(id, 410, &status(410, "Expired", "too old"));
    let (_, list) = h.last("list");
    assert_eq!(list.get("resourceVersion"), None);
    assert_eq!(list["limit"], "500");
    assert_eq!(h.list_rvs(), ["0", "10", ""]);
    // After the "" list succeeds, the next relist is at its RV again.
    h.list_ok("15", &[]);
    let (w, _) = h.last("watch");
    h.head(w, 410);
    h.eof(w);
    h.next_timeout();
    assert_eq!(h.list_rvs(), ["0", "10", "", "15"]);
}

// TestRelistResourceVersion with an expired continue token (page size 4): "0", "10",
// continue, then "10" with Limit 0 (the pager's full-list fallback).
#[test]
fn reflector_expired_continue_falls_back_to_one_full_list() {
    let mut h = Harness::new(ReflectorConfig {
        page_size: 4,
        ..config()
    });
    let (_, first) = h.last("list");
    assert_eq!(first["limit"], "4");
    let w = list_then_watch(&mut h, "10");
    h.events_on(w, &[error_event(410, "Expired")]);
    h.next_timeout();
    h.take_events();
    let (id, list) = h.last("list");
    assert_eq!(list, q(&[("limit", "4"), ("resourceVersion", "10")]));
    h.respond(
        id,
        200,
        &list_body("10", Some("tok"), &[("a", "1"), ("b", "2")]),
    );
    let (id, page2) = h.last("list");
    assert_eq!(page2, q(&[("continue", "tok"), ("limit", "4")]));
    h.respond(id, 410, &status(410, "Expired", "continue expired"));
    let (id, full) = h.last("list");
    assert_eq!(full, q(&[("resourceVersion", "10")]));
    h.respond(id, 200, &list_body("12", None, &[("c", "3")]));
    assert_eq!(
        kinds(&h.take_events()),
        [
            "ListStarted",
            "Listed[ns/a,ns/b]",
            "ListAborted",
            "ListStarted",
            "Listed[ns/c]",
            "Replaced 12"
        ]
    );
    assert_eq!(h.r.last_sync_resource_version(), "12");
}

// TestReflectorFullListIfTooLarge: every format of "too large RV" relists at "":
// "0", "20", "", "30", "", "40", "".
#[test]
fn reflector_too_large_rv_relists_at_empty_rv_in_all_formats() {
    let too_large = [
        json!({"kind": "Status", "status": "Failure", "reason": "Timeout", "code": 504,
               "message": "Too large resource version: 21, current: 20"}),
        json!({"kind": "Status", "status": "Failure", "reason": "Gone", "code": 504,
               "message": "x", "details": {"causes": [{"reason": "ResourceVersionTooLarge"}]}}),
        json!({"kind": "Status", "status": "Failure", "reason": "Timeout", "code": 504,
               "message": "Too large resource version",
               "details": {"causes": [{"reason": "ResourceVersionTooLarge"}], "retryAfterSeconds": 1}}),
    ];
    let mut h = Harness::new(config());
    let mut w = list_then_watch(&mut h, "20");
    for (i, body) in too_large.iter().enumerate() {
        h.events_on(w, &[error_event(410, "Expired")]);
        h.next_timeout();
        let (id, _) = h.last("list");
        h.respond(id, 504, body);
        let rv = (30 + 10 * i).to_string();
        w = list_then_watch(&mut h, &rv);
    }
    assert_eq!(h.list_rvs(), ["0", "20", "", "30", "", "40", ""]);
}

// TestReflectorSetExpectedType… Limits: once an RV=0 list was paginated, later lists keep 500.
#[test]
fn reflector_paginated_rv0_list_latches_page_size() {
    let mut h = Harness::new(config());
    let (id, _) = h.last("list");
    h.respond(id, 200, &list_body("10", Some("c1"), &[("a", "1")]));
    let (id, _) = h.last("list");
    h.respond(id, 200, &list_body("11", None, &[("b", "2")]));
    assert!(h.r.is_paginated_result());
    assert_eq!(
        kinds(&h.take_events()),
        ["ListStarted", "Listed[ns/a]", "Listed[ns/b]", "Replaced 10"],
        "the result's RV is the first page's"
    );
    let (w, _) = h.last("watch");
    h.head(w, 410);
    h.eof(w);
    h.next_timeout();
    let (_, list) = h.last("list");
    assert_eq!(list, q(&[("limit", "500"), ("resourceVersion", "10")]));
}

// TestReflectorListAndWatchWithErrors / backoff on ECONNREFUSED: 5 refused watches with
// a 1 ms base and a 50 ms cap wait 1+2+4+8+16 ms, each jittered up to twice.
#[test]
fn reflector_connection_refused_backs_off_and_rewatches() {
    let mut h = Harness::new(ReflectorConfig {
        backoff: BackoffConfig {
            initial: Duration::from_millis(1),
            cap: Duration::from_millis(50),
            ..BackoffConfig::default()
        },
        ..config()
    });
    h.list_ok("10", &[]);
    let mut total = Duration::ZERO;
    for _ in 0..5 {
        let (w, _) = h.last("watch");
        h.fail(w, TransportError::ConnectionRefused);
        total += h.next_timeout();
    }
    assert!(
        total >= Duration::from_millis(31) && total < Duration::from_millis(62),
        "{total:?}"
    );
    assert_eq!(h.count("list"), 1, "refused watches never relist");
    assert_eq!(h.count("watch"), 6);
    let (_, watch) = h.last("watch");
    assert_eq!(watch["resourceVersion"], "10");
}

// TestBackoffOnTooManyRequests: repeated 429 on watch → 1 LIST, 5 WATCH, backing off each time.
#[test]
fn reflector_429_on_watch_backs_off_and_rewatches() {
    let mut h = Harness::new(config());
    h.list_ok("10", &[]);
    for i in 0..4 {
        let (w, _) = h.last("watch");
        if i % 2 == 0 {
            h.respond(w, 429, &status(429, "TooManyRequests", "slow down"));
        } else {
            h.head(w, 200);
            h.events_on(w, &[error_event(429, "TooManyRequests")]);
        }
        let waited = h.next_timeout();
        assert!(waited >= Duration::from_millis(800), "{waited:?}");
    }
    assert_eq!(h.count("list"), 1);
    assert_eq!(h.count("watch"), 5);
}

// TestReflectorWatchTimeout-like: timeoutSeconds in [300, 600); a 1 s minimum is ignored;
// a 30 min minimum gives [1800, 3600).
#[test]
fn reflector_watch_timeout_is_randomised_in_range() {
    for seed in 0..50 {
        for (min, lo, hi) in [(300, 300, 600), (1, 300, 600), (1800, 1800, 3600)] {
            let mut h = Harness::with_seed(
                ReflectorConfig {
                    min_watch_timeout: Duration::from_secs(min),
                    ..config()
                },
                seed,
            );
            h.list_ok("1", &[]);
            let (_, w) = h.last("watch");
            let t: u64 = w["timeoutSeconds"].parse().unwrap();
            assert!((lo..hi).contains(&t), "seed {seed}: {t}");
        }
    }
}

// TestReflectorResourceVersionUpdate: ADDED 10, MODIFIED 20, BOOKMARK 30, DELETED 40.
#[test]
fn reflector_events_and_bookmarks_advance_the_rv() {
    let mut h = Harness::new(config());
    let w = list_then_watch(&mut h, "1");
    let mut seen = Vec::new();
    for e in [
        ev("ADDED", "a", "10"),
        ev("MODIFIED", "a", "20"),
        bookmark("30", false),
        ev("DELETED", "a", "40"),
    ] {
        h.events_on(w, &[e]);
        seen.push(h.r.last_sync_resource_version().to_owned());
    }
    assert_eq!(seen, ["10", "20", "30", "40"]);
    assert_eq!(
        kinds(&h.take_events())[2..],
        ["Added 10", "Modified 20", "Bookmark 30", "Deleted 40"]
    );
    // The next watch resumes from the last RV, at once after a clean close.
    h.advance(Duration::from_secs(2));
    h.eof(w);
    let (_, watch) = h.last("watch");
    assert_eq!(watch["resourceVersion"], "40");
    assert_eq!(h.count("list"), 1);
}

#[test]
fn reflector_clean_close_rewatches_at_once() {
    let mut h = Harness::new(config());
    let w = list_then_watch(&mut h, "5");
    h.events_on(w, &[ev("ADDED", "a", "6")]);
    h.eof(w);
    assert_eq!(h.count("watch"), 2, "no backoff after a clean close");
    assert_eq!(h.r.state_name(), "watching");
}

// VeryShortWatchError: a close within 1 s with no events is an error → backoff, relist.
#[test]
fn reflector_very_short_watch_backs_off_and_relists() {
    let mut h = Harness::new(config());
    let mut delays = Vec::new();
    for round in 0..4 {
        let w = list_then_watch(&mut h, &(10 + round).to_string());
        h.advance(Duration::from_millis(100));
        h.eof(w);
        assert_eq!(h.r.state_name(), "waiting");
        assert!(matches!(
            h.events.last(),
            Some(ReflectorEvent::Error(ReflectorError::VeryShortWatch))
        ));
        delays.push(h.next_timeout());
    }
    assert_eq!(h.count("list"), 5);
    // 800 ms doubling: each delay in [d, 2d).
    for (d, base) in delays.iter().zip([800u64, 1600, 3200, 6400]) {
        assert!(
            *d >= Duration::from_millis(base) && *d < Duration::from_millis(2 * base),
            "{delays:?}"
        );
    }
}

// HTTP 410 at watch start: relist (after the cycle backoff), at the last RV.
#[test]
fn reflector_http_410_at_watch_start_relists() {
    let mut h = Harness::new(config());
    h.list_ok("10", &[]);
    let (w, _) = h.last("watch");
    h.respond(w, 410, &status(410, "Gone", "too old"));
    assert_eq!(h.r.state_name(), "waiting");
    h.next_timeout();
    assert_eq!(h.list_rvs(), ["0", "10"]);
}

// Repeated list failures back off, growing; the attempt itself never resets the backoff.
#[test]
fn reflector_repeated_list_failures_back_off_growing_to_the_cap() {
    let mut h = Harness::new(config());
    let mut delays = Vec::new();
    for _ in 0..9 {
        let (id, _) = h.last("list");
        h.respond(id, 500, &status(500, "InternalError", "etcd down"));
        delays.push(h.next_timeout());
    }
    let bases = [800u64, 1600, 3200, 6400, 12800, 25600, 30000, 30000, 30000];
    for (d, base) in delays.iter().zip(bases) {
        assert!(
            *d >= Duration::from_millis(base) && *d < Duration::from_millis(2 * base),
            "{delays:?}"
        );
    }
    // Two quiet minutes start the sequence over.
    let w = list_then_watch(&mut h, "5");
    for _ in 0..3 {
        h.advance(Duration::from_secs(50));
        h.events_on(w, &[bookmark("6", false)]);
    }
    h.events_on(w, &[error_event(500, "InternalError")]);
    let d = h.next_timeout();
    assert!(d < Duration::from_millis(1600), "{d:?}");
}

#[test]
fn reflector_response_header_deadline_fails_the_list() {
    let mut h = Harness::new(config());
    let (id, _) = h.last("list");
    h.advance(Duration::from_secs(61));
    assert!(h.cancelled.contains(&id));
    assert!(h.count("list") >= 2 || h.r.state_name() == "waiting");
    assert!(h.events.iter().any(|e| matches!(
        e,
        ReflectorEvent::Error(ReflectorError::Deadline {
            what: "response headers",
            ..
        })
    )));
}

#[test]
fn reflector_idle_watch_is_cancelled_and_rewatched() {
    let mut h = Harness::new(config());
    let w = list_then_watch(&mut h, "5");
    h.advance(Duration::from_secs(179));
    assert_eq!(h.count("watch"), 1);
    h.events_on(w, &[bookmark("6", false)]);
    h.advance(Duration::from_secs(179));
    assert_eq!(h.count("watch"), 1, "a bookmark keeps the watch alive");
    h.advance(Duration::from_secs(2));
    assert!(h.cancelled.contains(&w));
    assert_eq!(h.count("watch"), 2);
    let (_, watch) = h.last("watch");
    assert_eq!(watch["resourceVersion"], "6");
}

#[test]
fn reflector_connection_reset_mid_watch_is_a_quiet_close() {
    let mut h = Harness::new(config());
    let w = list_then_watch(&mut h, "5");
    h.advance(Duration::from_secs(5));
    h.fail(w, TransportError::Closed("reset by peer".into()));
    assert_eq!(h.count("watch"), 2);
    assert_eq!(h.count("list"), 1);
}

#[test]
fn reflector_resync_timer_fires_each_period() {
    let mut h = Harness::new(ReflectorConfig {
        resync_period: Some(Duration::from_secs(30)),
        ..config()
    });
    h.advance(Duration::from_secs(40));
    assert!(
        !h.events.contains(&ReflectorEvent::Resync),
        "no resync before the list"
    );
    // The header deadline fails that list at 60 s; answer the next one.
    h.advance(Duration::from_secs(30));
    let w = list_then_watch(&mut h, "5");
    h.take_events();
    for _ in 0..3 {
        h.advance(Duration::from_secs(30));
        h.events_on(w, &[bookmark("6", false)]);
    }
    let resyncs = h
        .events
        .iter()
        .filter(|e| **e == ReflectorEvent::Resync)
        .count();
    assert_eq!(resyncs, 3);
}

// ---- watch-list (reflector_watchlist_test.go)

fn watch_list_harness() -> Harness {
    Harness::new(ReflectorConfig {
        use_watch_list: true,
        ..config()
    })
}

#[test]
fn reflector_watch_list_replaces_at_end_bookmark_and_keeps_the_stream() {
    let mut h = watch_list_harness();
    let (w, _) = h.last("watch");
    h.head(w, 200);
    h.events_on(
        w,
        &[
            ev("ADDED", "a", "3"),
            ev("ADDED", "b", "4"),
            bookmark("9", false),
        ],
    );
    assert_eq!(
        h.r.last_sync_resource_version(),
        "9",
        "a bookmark moves the RV"
    );
    assert!(!h.r.has_synced());
    h.events_on(w, &[bookmark("10", true), ev("MODIFIED", "a", "11")]);
    assert_eq!(
        kinds(&h.take_events()),
        [
            "ListStarted",
            "Listed[ns/a]",
            "Listed[ns/b]",
            "Replaced 10",
            "Modified 11"
        ]
    );
    assert!(h.r.has_synced());
    assert_eq!(h.count("watch"), 1, "the same stream carries on");
    // Now a watch: quiet for longer than the watch-list's 30 s is fine.
    h.advance(Duration::from_secs(100));
    assert_eq!(h.count("watch"), 1);
    assert_eq!(h.r.state_name(), "watching");
    // Stopped after sync → a plain watch from the last RV.
    h.eof(w);
    let (_, watch) = h.last("watch");
    assert_eq!(watch["resourceVersion"], "11");
    assert_eq!(watch.get("sendInitialEvents"), None);
}

// "stopped before the bookmark → a fresh watch-list request", with a backoff
// (never the tight loop of client-go #140890), then list+watch after 3 attempts.
#[test]
fn reflector_watch_list_without_end_bookmark_backs_off_then_falls_back_to_list() {
    let mut h = watch_list_harness();
    for attempt in 0..3 {
        let (w, watch) = h.last("watch");
        assert_eq!(watch["sendInitialEvents"], "true", "attempt {attempt}");
        h.head(w, 200);
        h.events_on(w, &[ev("ADDED", "a", "3")]);
        h.advance(Duration::from_secs(2));
        h.eof(w);
        assert_eq!(h.r.state_name(), "waiting");
        assert!(h.events.contains(&ReflectorEvent::ListAborted));
        let waited = h.next_timeout();
        assert!(waited >= Duration::from_millis(800), "{waited:?}");
    }
    let (_, list) = h.last("list");
    assert_eq!(list["resourceVersion"], "0");
    assert_eq!(h.count("watch"), 3);
}

#[test]
fn reflector_watch_list_deadline_without_end_bookmark_is_a_failure() {
    let mut h = watch_list_harness();
    let (w, watch) = h.last("watch");
    let timeout: u64 = watch["timeoutSeconds"].parse().unwrap();
    h.head(w, 200);
    // Keep the body busy so only the total deadline can fire.
    let mut elapsed = 0;
    while !h.cancelled.contains(&w) {
        h.advance(Duration::from_secs(10));
        elapsed += 10;
        h.events_on(w, &[ev("ADDED", "a", "3")]);
    }
    assert!(
        (timeout..=timeout + 40).contains(&elapsed),
        "{elapsed} vs {timeout}"
    );
    assert_eq!(h.r.state_name(), "waiting");
    assert!(h.events.contains(&ReflectorEvent::ListAborted));
}

#[test]
fn reflector_watch_list_refused_falls_back_to_list_and_watch() {
    let mut h = watch_list_harness();
    let (w, _) = h.last("watch");
    h.respond(w, 400, &status(400, "Invalid", "streaming is not allowed"));
    let (_, list) = h.last("list");
    assert_eq!(list, q(&[("limit", "500"), ("resourceVersion", "0")]));
}

#[test]
fn reflector_watch_list_429_is_retried() {
    let mut h = watch_list_harness();
    let (w, _) = h.last("watch");
    h.respond(w, 429, &status(429, "TooManyRequests", "x"));
    h.next_timeout();
    let (_, watch) = h.last("watch");
    assert_eq!(watch["sendInitialEvents"], "true");
    assert_eq!(h.count("list"), 0);
}

// Expired on rewatch (after sync) → the watch ends and a new cycle begins.
#[test]
fn reflector_watch_list_expired_on_rewatch_starts_a_new_cycle() {
    let mut h = watch_list_harness();
    let (w, _) = h.last("watch");
    h.head(w, 200);
    h.events_on(w, &[bookmark("10", true)]);
    h.advance(Duration::from_secs(5));
    h.eof(w);
    let (w2, _) = h.last("watch");
    h.respond(w2, 410, &status(410, "Expired", "x"));
    assert_eq!(h.r.state_name(), "waiting");
    h.next_timeout();
    let (_, watch) = h.last("watch");
    assert_eq!(watch["sendInitialEvents"], "true");
    assert_eq!(watch["resourceVersion"], "10");
    // An expired watch-list retries at "".
    let (w3, _) = h.last("watch");
    h.respond(w3, 410, &status(410, "Expired", "x"));
    let (_, watch) = h.last("watch");
    assert_eq!(watch.get("resourceVersion"), None);
    assert_eq!(watch["sendInitialEvents"], "true");
}

#[test]
fn reflector_watch_list_deleted_during_initial_events() {
    let mut h = watch_list_harness();
    let (w, _) = h.last("watch");
    h.head(w, 200);
    h.events_on(
        w,
        &[
            ev("ADDED", "a", "3"),
            ev("DELETED", "a", "5"),
            bookmark("6", true),
        ],
    );
    assert_eq!(
        kinds(&h.take_events()),
        [
            "ListStarted",
            "Listed[ns/a]",
            "ListedDeleted ns/a",
            "Replaced 6"
        ]
    );
}

#[test]
fn reflector_ignores_late_reports_for_cancelled_requests() {
    let mut h = Harness::new(config());
    let w = list_then_watch(&mut h, "5");
    h.events_on(w, &[error_event(500, "InternalError")]);
    assert!(h.cancelled.contains(&w));
    let before = h.events.len();
    h.chunk(w, ev("ADDED", "x", "9").to_string().as_bytes());
    h.eof(w);
    assert_eq!(h.events.len(), before);
    assert_eq!(h.r.state_name(), "waiting");
}

#[test]
fn reflector_malformed_watch_body_is_an_error_not_a_panic() {
    let mut h = Harness::new(config());
    let w = list_then_watch(&mut h, "5");
    h.chunk(w, b"{\"type\":\"ADDED\",\"object\":[1,2");
    h.chunk(w, b"}}}}\n");
    assert_eq!(h.r.state_name(), "waiting");
    assert!(
        h.events
            .iter()
            .any(|e| matches!(e, ReflectorEvent::Error(ReflectorError::Decode { .. })))
    );
}

#[test]
fn reflector_list_rejects_table_kind() {
    let mut h = Harness::new(config());
    let (id, _) = h.last("list");
    h.respond(
        id,
        200,
        &json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {"resourceVersion": "1"}}),
    );
    assert_eq!(h.r.state_name(), "waiting");
    assert!(!h.r.has_synced());
}

#[test]
fn reflector_watch_body_split_anywhere_gives_same_events() {
    let body: String = [
        ev("ADDED", "a", "6"),
        bookmark("7", false),
        ev("DELETED", "a", "8"),
    ]
    .iter()
    .map(|e| e.to_string())
    .collect();
    for step in [1usize, 2, 3, 7, 64] {
        let mut h = Harness::new(config());
        let w = list_then_watch(&mut h, "5");
        h.take_events();
        for piece in body.as_bytes().chunks(step) {
            h.chunk(w, piece);
        }
        assert_eq!(
            kinds(&h.events),
            ["Added 6", "Bookmark 7", "Deleted 8"],
            "step {step}"
        );
    }
}

// ---- real bodies recorded from kind clusters (fixtures/recorded)

fn fixture(rel: &str) -> Option<Vec<u8>> {
    let required = std::env::var("WINDLASS_REQUIRE_FIXTURES").is_ok_and(|v| v == "1");
    let dir = std::env::var("WINDLASS_FIXTURES").ok();
    let path = dir.map(|d| std::path::Path::new(&d).join(rel));
    match path.as_ref().and_then(|p| std::fs::read(p).ok()) {
        Some(bytes) => Some(bytes),
        None if required => panic!("fixture {rel} missing (WINDLASS_FIXTURES={path:?})"),
        None => None,
    }
}

fn pod_reflector(use_watch_list: bool) -> (Reflector<k8s_openapi::api::core::v1::Pod>, Instant) {
    let now = Instant::now();
    let r = Reflector::new(
        ReflectorConfig {
            use_watch_list,
            ..config()
        },
        Box::new(Builder::of::<k8s_openapi::api::core::v1::Pod>(None).unwrap()),
        Box::new(StandardCodec::default()),
        7,
        now,
    );
    (r, now)
}

fn sent_id<K: Object + Send + 'static>(r: &mut Reflector<K>) -> (RequestId, String) {
    match r.poll_action() {
        Some(Action::Send { id, request }) => (id, request.uri().to_string()),
        other => panic!("expected a request, got {other:?}"),
    }
}

fn ok_head() -> http::response::Parts {
    http::Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .body(())
        .unwrap()
        .into_parts()
        .0
}

#[test]
fn reflector_lists_a_recorded_pod_list_fed_in_small_chunks() {
    let Some(body) = fixture("recorded/derived-from-k8s-openapi-replays/v1-36/podlist.json") else {
        return;
    };
    let expected: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let (mut r, now) = pod_reflector(false);
    let (id, uri) = sent_id(&mut r);
    assert_eq!(uri, "/api/v1/pods?limit=500&resourceVersion=0");
    r.handle_response(id, &ok_head(), now);
    for piece in body.chunks(97) {
        r.handle_chunk(id, piece, now);
    }
    r.handle_eof(id, now);
    let mut names = Vec::new();
    let mut replaced = None;
    while let Some(e) = r.poll_event() {
        match e {
            ReflectorEvent::Listed(items) => {
                names.extend(items.iter().map(|p| p.key().to_string()))
            }
            ReflectorEvent::Replaced { resource_version } => replaced = Some(resource_version),
            _ => {}
        }
    }
    let want: Vec<String> = expected["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            format!(
                "{}/{}",
                i["metadata"]["namespace"].as_str().unwrap(),
                i["metadata"]["name"].as_str().unwrap()
            )
        })
        .collect();
    assert!(!want.is_empty());
    assert_eq!(names, want);
    assert_eq!(
        replaced.as_deref(),
        expected["metadata"]["resourceVersion"].as_str()
    );
    let (_, watch) = sent_id(&mut r);
    assert!(watch.contains("watch=true"), "{watch}");
}

#[test]
fn reflector_watch_list_syncs_from_a_recorded_stream() {
    let Some(body) = fixture(
        "recorded/derived-from-k8s-openapi-replays/v1-36/watchlist-pods-sendInitialEvents.jsonl",
    ) else {
        return;
    };
    let (mut r, now) = pod_reflector(true);
    let (id, uri) = sent_id(&mut r);
    assert!(uri.contains("sendInitialEvents=true"), "{uri}");
    r.handle_response(id, &ok_head(), now);
    for piece in body.chunks(1000) {
        r.handle_chunk(id, piece, now);
    }
    let events: Vec<_> = std::iter::from_fn(|| r.poll_event()).collect();
    let listed: usize = events
        .iter()
        .map(|e| match e {
            ReflectorEvent::Listed(v) => v.len(),
            _ => 0,
        })
        .sum();
    let lines = body
        .split(|b| *b == b'\n')
        .filter(|l| l.starts_with(b"{\"type\":\"ADDED\""))
        .count();
    assert_eq!(listed, lines);
    assert!(
        matches!(events.last(), Some(ReflectorEvent::Replaced { .. })),
        "{:?}",
        events.last().map(|_| ())
    );
    assert!(r.has_synced());
    assert_eq!(r.state_name(), "watching");
}

// reflector_test.go `TestReflectorInternalErrorRetry`-style: a watch ending in an
// InternalError each second is re-opened at once for 30 s (31 retries), then the
// reflector relists; a one-minute gap between errors starts a new window (40).
#[test]
fn reflector_internal_error_retried_within_window() {
    for (max, jump_at, want) in [(0, None, 0), (30, None, 31), (30, Some(10), 40)] {
        let mut h = Harness::new(ReflectorConfig {
            max_internal_error_retry: Duration::from_secs(max),
            ..config()
        });
        let mut w = list_then_watch(&mut h, "5");
        let mut retries = 0;
        for attempt in 1.. {
            let step = if Some(attempt) == jump_at { 61 } else { 1 };
            h.advance(Duration::from_secs(step));
            h.events_on(w, &[error_event(500, "InternalError")]);
            if h.r.state_name() != "watching" {
                break;
            }
            retries += 1;
            w = h.last("watch").0;
            h.head(w, 200);
        }
        assert_eq!(retries, want, "max {max}s, jump at {jump_at:?}");
        assert_eq!(h.r.state_name(), "waiting", "then the cycle ends");
        assert_eq!(h.count("list"), 1);
    }
}

#[test]
fn reflector_cancels_a_request_it_abandons_but_not_one_that_ended() {
    let mut h = Harness::new(config());
    let (id, _) = h.last("list");
    h.head(id, 200);
    h.chunk(id, b"{\"items\": [}");
    assert_eq!(h.cancelled, [id], "a malformed list body is abandoned");
    h.next_timeout();
    let (id, _) = h.last("list");
    h.respond(id, 500, &status(500, "InternalError", "x"));
    assert_eq!(h.cancelled.len(), 1, "an ended request is not cancelled");
}

// A failing attempt that takes long (here 90 s to answer) never resets the backoff.
#[test]
fn reflector_slow_failing_lists_never_reset_the_backoff() {
    let mut h = Harness::new(ReflectorConfig {
        response_header_timeout: Duration::from_secs(100),
        ..config()
    });
    let mut delays = Vec::new();
    for _ in 0..10 {
        let (id, _) = h.last("list");
        h.advance(Duration::from_secs(90));
        h.respond(id, 503, &status(503, "ServiceUnavailable", "x"));
        delays.push(h.next_timeout());
    }
    assert!(
        delays[6..].iter().all(|d| *d >= Duration::from_secs(30)),
        "{delays:?}"
    );
}

// #140890 with a server that keeps the stream open but silent: 30 s of silence
// before the end bookmark fails the attempt.
#[test]
fn reflector_watch_list_silent_without_end_bookmark_is_a_failure() {
    let mut h = watch_list_harness();
    let (w, _) = h.last("watch");
    h.head(w, 200);
    h.events_on(w, &[ev("ADDED", "a", "3")]);
    h.advance(Duration::from_secs(29));
    assert_eq!(h.r.state_name(), "watch-listing");
    h.advance(Duration::from_secs(2));
    assert!(h.cancelled.contains(&w));
    assert_eq!(h.r.state_name(), "waiting");
}
