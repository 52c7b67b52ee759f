//! Watches over the model: each resource's watch cache (a bounded window of
//! events, as the API server's `watchCache` keeps) and the [`Watch`] handle a
//! caller polls. A watch holds no reference to the server: the caller passes
//! the server in on every poll, so events come out as values and the caller
//! decides when bytes move.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use serde_json::Value;
use windlass_proto::watch::{Bookmark, INITIAL_EVENTS_END_ANNOTATION, WatchEvent};

use super::resource::GroupResource;
use super::selector::{FieldSelector, LabelSelector};
use super::status::StatusError;
use super::{ApiServer, set_resource_version, view};

/// What a stored change was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum EventKind {
    Added,
    Modified,
    Deleted,
}

/// One change in a watch cache.
#[derive(Clone, Debug)]
pub(super) struct CacheEvent {
    pub(super) rv: u64,
    pub(super) kind: EventKind,
    /// The new object; for a deletion, the last state carrying the deletion's RV.
    pub(super) object: Arc<Value>,
    /// The object before the change, if there was one.
    pub(super) prev: Option<Arc<Value>>,
}

/// A resource's window of recent events.
#[derive(Clone, Debug)]
pub(super) struct WatchCache {
    events: VecDeque<CacheEvent>,
    capacity: usize,
    /// The revision the cache was (re)filled at.
    list_rv: u64,
    removed_since_relist: bool,
    /// The newest event revision dropped from the window: a watcher behind
    /// it has lost events.
    dropped_up_to: u64,
    /// The compaction revision: new watches cannot start before it.
    compacted: u64,
}

impl WatchCache {
    pub(super) fn new(capacity: usize, list_rv: u64) -> Self {
        Self {
            events: VecDeque::new(),
            capacity: capacity.max(1),
            list_rv,
            removed_since_relist: false,
            dropped_up_to: 0,
            compacted: 0,
        }
    }

    pub(super) fn push(&mut self, event: CacheEvent) {
        if self.events.len() == self.capacity
            && let Some(old) = self.events.pop_front()
        {
            self.removed_since_relist = true;
            self.dropped_up_to = old.rv;
        }
        self.events.push_back(event);
    }

    /// Drops events at or below `rv`; new watches cannot start before `rv`.
    pub(super) fn compact(&mut self, rv: u64) {
        while self.events.front().is_some_and(|e| e.rv <= rv) {
            if let Some(old) = self.events.pop_front() {
                self.removed_since_relist = true;
                self.dropped_up_to = old.rv;
            }
        }
        self.compacted = self.compacted.max(rv);
    }

    /// The oldest revision a new watch can start from: the cache's
    /// `oldest - 1` (its list revision while nothing was dropped), and not
    /// before the compaction.
    pub(super) fn floor(&self) -> u64 {
        let window = match self.events.front() {
            _ if !self.removed_since_relist => self.list_rv,
            Some(first) => first.rv - 1,
            None => self.dropped_up_to,
        };
        window.max(self.compacted)
    }

    /// Whether a watcher that has seen everything up to `cursor` has lost
    /// events to the window moving on.
    pub(super) fn has_lost(&self, cursor: u64) -> bool {
        cursor < self.dropped_up_to
    }

    /// The events after `rv`, in order.
    fn since(&self, rv: u64) -> impl Iterator<Item = &CacheEvent> {
        let first = self.events.partition_point(|e| e.rv <= rv);
        self.events.range(first..)
    }
}

/// Why a watch ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WatchEnd {
    /// `timeoutSeconds` passed: the server closes the stream cleanly.
    Timeout,
    /// The server restarted; the connection dropped.
    ServerRestarted,
    /// The resource stopped being served (its CRD was deleted).
    ResourceRemoved,
    /// The watcher fell behind the window (the server drops slow watchers).
    TooSlow,
    /// The watch sent its one `ERROR` event.
    Error,
}

/// What [`Watch::poll`] returns.
#[derive(Clone, Debug, PartialEq)]
pub enum WatchPoll {
    /// The next event.
    Event(WatchEvent<Arc<Value>>),
    /// Nothing now; poll again after the server changes or a bookmark is asked for.
    Pending,
    /// The stream is over; every later poll says the same.
    Ended(WatchEnd),
}

/// An open watch: a cursor into its resource's watch cache, plus what it
/// must send first (initial events, the end bookmark, or one error).
///
/// ```text
/// server.watch(..) ─► Watch ──poll(&server, now)──► Event / Pending / Ended
///                       │  request_bookmark()  → a BOOKMARK once caught up
///                       └  poll_timeout()      → the deadline to poll at
/// ```
#[derive(Clone, Debug)]
pub struct Watch {
    pub(super) group_resource: GroupResource,
    pub(super) api_version: String,
    pub(super) kind: String,
    pub(super) namespace: Option<String>,
    pub(super) labels: LabelSelector,
    pub(super) fields: FieldSelector,
    pub(super) cursor: u64,
    pub(super) initial: VecDeque<Arc<Value>>,
    pub(super) end_bookmark: Option<u64>,
    pub(super) allow_bookmarks: bool,
    pub(super) bookmark_requested: bool,
    pub(super) deadline: Option<Instant>,
    pub(super) epoch: u64,
    pub(super) error: Option<StatusError>,
    pub(super) ended: Option<WatchEnd>,
}

impl Watch {
    /// The `apiVersion` of this watch's objects (and of its bookmarks).
    pub fn api_version(&self) -> &str {
        &self.api_version
    }

    /// The `kind` of this watch's objects (and of its bookmarks).
    pub fn kind(&self) -> &str {
        &self.kind
    }

    /// The revision of the last change delivered (or skipped as not selected).
    pub fn resource_version(&self) -> u64 {
        self.cursor
    }

    /// When the server ends this watch (`timeoutSeconds`), if ever.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadline
    }

    /// Whether the stream is over.
    pub fn is_ended(&self) -> bool {
        self.ended.is_some()
    }

    /// Asks for a `BOOKMARK` once the watch has caught up (only sent when the
    /// watch allows bookmarks, as the server does).
    pub fn request_bookmark(&mut self) {
        self.bookmark_requested = true;
    }

    /// The next thing this watch sends, given the server's state at `now`.
    pub fn poll(&mut self, server: &ApiServer, now: Instant) -> WatchPoll {
        if let Some(end) = self.ended {
            return WatchPoll::Ended(end);
        }
        if self.deadline.is_some_and(|d| now >= d) {
            return self.end(WatchEnd::Timeout);
        }
        if server.epoch != self.epoch {
            return self.end(WatchEnd::ServerRestarted);
        }
        if let Some(error) = self.error.take() {
            self.ended = Some(WatchEnd::Error);
            return WatchPoll::Event(WatchEvent::Error(error.0));
        }
        if let Some(object) = self.initial.pop_front() {
            return WatchPoll::Event(WatchEvent::Added(object));
        }
        if let Some(rv) = self.end_bookmark.take() {
            let annotations =
                BTreeMap::from([(INITIAL_EVENTS_END_ANNOTATION.to_owned(), "true".to_owned())]);
            return WatchPoll::Event(WatchEvent::Bookmark(Bookmark {
                resource_version: rv.to_string(),
                annotations,
            }));
        }
        let Some(table) = server.tables.get(&self.group_resource) else {
            return self.end(WatchEnd::ResourceRemoved);
        };
        if server.registry.get(&self.group_resource).is_none() {
            return self.end(WatchEnd::ResourceRemoved);
        }
        if table.cache.has_lost(self.cursor) {
            return self.end(WatchEnd::TooSlow);
        }
        let cache_rv = server.cache_resource_version();
        for event in table.cache.since(self.cursor) {
            if event.rv > cache_rv {
                break;
            }
            self.cursor = event.rv;
            if let Some(out) = self.convert(event) {
                return WatchPoll::Event(out);
            }
        }
        if self.bookmark_requested {
            self.bookmark_requested = false;
            self.cursor = self.cursor.max(cache_rv);
            if self.allow_bookmarks {
                return WatchPoll::Event(WatchEvent::Bookmark(Bookmark {
                    resource_version: self.cursor.to_string(),
                    annotations: BTreeMap::new(),
                }));
            }
        }
        WatchPoll::Pending
    }

    fn end(&mut self, end: WatchEnd) -> WatchPoll {
        self.ended = Some(end);
        WatchPoll::Ended(end)
    }

    pub(super) fn selects(&self, object: &Value) -> bool {
        if let Some(ns) = &self.namespace
            && object["metadata"]["namespace"].as_str() != Some(ns)
        {
            return false;
        }
        self.labels
            .matches(object["metadata"]["labels"].as_object())
            && self.fields.matches(object)
    }

    fn view(&self, object: &Arc<Value>) -> Arc<Value> {
        view(object, &self.api_version)
    }

    /// The cacher's rule: an object that starts matching is ADDED, one that
    /// stops matching is DELETED (its previous state at the event's RV).
    fn convert(&self, event: &CacheEvent) -> Option<WatchEvent<Arc<Value>>> {
        let now_selected = event.kind != EventKind::Deleted && self.selects(&event.object);
        let was_selected = match event.kind {
            EventKind::Deleted => self.selects(&event.object),
            _ => event.prev.as_deref().is_some_and(|p| self.selects(p)),
        };
        match (now_selected, was_selected) {
            (true, true) => Some(WatchEvent::Modified(self.view(&event.object))),
            (true, false) => Some(WatchEvent::Added(self.view(&event.object))),
            (false, true) if event.kind == EventKind::Deleted => {
                Some(WatchEvent::Deleted(self.view(&event.object)))
            }
            (false, true) => {
                let prev = event.prev.as_deref()?;
                let mut last = prev.clone();
                set_resource_version(&mut last, event.rv);
                Some(WatchEvent::Deleted(self.view(&Arc::new(last))))
            }
            (false, false) => None,
        }
    }
}
