//! client-go's `Reflector` as a sans-IO state machine: it lists (paginated),
//! then watches from the list's resourceVersion, relists when the watch
//! expires, and backs off on failure — or, with watch-list, streams the
//! initial state over one watch. This module owns those decisions; it sends
//! nothing itself, decodes through the [`Codec`] seam and hands the store's
//! changes out as [`ReflectorEvent`]s.
//!
//! The driving loop (drain outputs in this order after every input):
//!
//! ```text
//! loop {
//!     while let Some(action) = reflector.poll_action() { perform(action) }   // Send / Cancel
//!     while let Some(event) = reflector.poll_event() { apply(event) }        // to the store
//!     let deadline = reflector.poll_timeout();
//!     match wait_for_io_or(deadline) {
//!         Head(id, parts) => reflector.handle_response(id, &parts, now()),
//!         Chunk(id, bytes) => reflector.handle_chunk(id, &bytes, now()),
//!         Eof(id) => reflector.handle_eof(id, now()),
//!         Failed(id, e) => reflector.handle_error(id, e, now()),
//!         Timer => reflector.handle_timeout(now()),
//!     }
//! }
//! ```
//!
//! | state | input | next |
//! |---|---|---|
//! | Listing | page 200, `continue` | Listing (next page, RV cleared) |
//! | Listing | last page 200 | `Replaced`; Watching |
//! | Listing | 410 / too-large RV, first time | Listing again at RV `""` |
//! | Listing | later page 410 Expired | Listing: one full list (limit 0) at the first RV |
//! | Listing | other error, deadline | Waiting (backoff) → new cycle |
//! | Watching | refused / 429 at open, ERROR 429 | Waiting (backoff) → Watching |
//! | Watching | clean close, idle or watch deadline | Watching again at once |
//! | Watching | close within 1 s with no event | Waiting (backoff) → new cycle |
//! | Watching | ERROR InternalError within `max_internal_error_retry` | Watching again at once |
//! | Watching | HTTP 410, ERROR 410, other error | Waiting (backoff) → new cycle (list at last RV) |
//! | WatchListing | end bookmark | `Replaced`; Watching on the same stream |
//! | WatchListing | refused / 429 | Waiting (backoff) → WatchListing |
//! | WatchListing | 410 / too-large | WatchListing at RV `""` |
//! | WatchListing | stream ends, 30 s silent or deadline, no end bookmark | Waiting (backoff) → WatchListing; Listing after `watch_list_attempts` |
//! | WatchListing | other error (e.g. 400 "not allowed") | Listing at once |
//! | Waiting | deadline | the step it waits for |
//!
//! "New cycle" is client-go's `ListAndWatch` ending: every end is followed
//! by one backoff delay, and the delays only start over after two minutes
//! since a watch was last answered 200 with no failure in between, so a
//! server that keeps failing is never hit in a tight loop.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::response::Parts;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Status;

use super::backoff::{Backoff, BackoffConfig};
use super::wire::{Codec, DecodeError, ListDecoder, ListerWatcher, RequestError, WatchDecoder};
use crate::codec::Format;
use crate::object::{Object, ObjectKey};
use crate::params::{ListParams, ResourceVersionMatch, WatchParams};
use crate::rand::Rng;
use crate::request::Negotiation;
use crate::watch::WatchEvent;

/// The largest error body read to find a `Status` in it.
const MAX_ERROR_BODY: usize = 64 * 1024;
/// client-go's page size.
const DEFAULT_PAGE_SIZE: u32 = 500;
/// client-go's default and smallest `MinWatchTimeout`.
const MIN_WATCH_TIMEOUT: Duration = Duration::from_secs(300);
/// A watch closing this soon with no event is an error (client-go).
const VERY_SHORT_WATCH: Duration = Duration::from_secs(1);

/// Names one request the reflector asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub u64);

/// What the reflector asks its driver to do.
// Actions are few and short-lived; boxing the request would cost an
// allocation per request for nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Action {
    /// Send this request; report its head, body and end under `id`.
    Send {
        /// The id to report under.
        id: RequestId,
        /// A path-and-query request; the driver adds scheme, host and credentials.
        request: http::Request<Bytes>,
    },
    /// Abandon this request; anything still reported under its id is ignored.
    Cancel(RequestId),
}

/// Why a transport failed, as far as the reflector cares.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    /// The connection was refused (the server is restarting): re-watch after a backoff.
    #[error("connection refused")]
    ConnectionRefused,
    /// The connection closed or reset mid-body (client-go's "probable EOF").
    #[error("connection closed: {0}")]
    Closed(String),
    /// A transport-level timeout.
    #[error("timed out")]
    TimedOut,
    /// Anything else.
    #[error("{0}")]
    Other(String),
}

/// Why a list or watch failed; reported as [`ReflectorEvent::Error`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ReflectorError {
    /// The server answered with an error status.
    #[error("{verb}: HTTP {code}: {}", status.as_ref().and_then(|s| s.message.as_deref()).unwrap_or(""))]
    Api {
        /// `list`, `watch` or `watch-list`.
        verb: &'static str,
        /// The HTTP status code (or the ERROR event's code).
        code: u16,
        /// The server's `Status`, when it sent a readable one.
        status: Option<Box<Status>>,
    },
    /// The transport failed.
    #[error("{verb}: {error}")]
    Transport {
        /// `list`, `watch` or `watch-list`.
        verb: &'static str,
        /// The failure.
        error: TransportError,
    },
    /// A body could not be decoded.
    #[error("{verb}: {error}")]
    Decode {
        /// `list`, `watch` or `watch-list`.
        verb: &'static str,
        /// The failure.
        error: DecodeError,
    },
    /// A request could not be built.
    #[error(transparent)]
    Request(#[from] RequestError),
    /// No response head or body bytes arrived in time.
    #[error("{verb}: {what} deadline passed")]
    Deadline {
        /// `list`, `watch` or `watch-list`.
        verb: &'static str,
        /// `response headers`, `idle body` or `initial events`.
        what: &'static str,
    },
    /// The watch closed within a second without any event.
    #[error("very short watch: closed within 1s with no events")]
    VeryShortWatch,
}

/// A change for the store, in the order it must be applied.
#[derive(Debug, Clone, PartialEq)]
pub enum ReflectorEvent<K> {
    /// A relist began: the objects of every `Listed` until `Replaced` make
    /// up the new whole set. Anything collected since an earlier
    /// `ListStarted` is void.
    ListStarted,
    /// Objects of the relist in progress.
    Listed(Vec<K>),
    /// An object removed while a watch-list streams its initial state.
    ListedDeleted(ObjectKey),
    /// The relist in progress was abandoned; drop what it collected.
    ListAborted,
    /// The relist is complete at this resourceVersion: replace the store.
    Replaced {
        /// The list's (or the end bookmark's) resourceVersion.
        resource_version: String,
    },
    /// A watch ADDED.
    Added(K),
    /// A watch MODIFIED.
    Modified(K),
    /// A watch DELETED.
    Deleted(K),
    /// A watch BOOKMARK: only the resourceVersion moved.
    Bookmark {
        /// The new resourceVersion.
        resource_version: String,
    },
    /// The resync period passed.
    Resync,
    /// Something failed; the reflector already decided what to do next.
    /// Informational, like client-go's `WatchErrorHandler`.
    Error(ReflectorError),
}

/// The reflector's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct ReflectorConfig {
    /// `labelSelector` of every list and watch.
    pub label_selector: Option<String>,
    /// `fieldSelector` of every list and watch.
    pub field_selector: Option<String>,
    /// client-go's `WatchListPageSize`; 0 applies client-go's rules (500, or
    /// unpaginated when listing at a specific resourceVersion).
    pub page_size: u32,
    /// The resync period; `None` or zero never resyncs.
    pub resync_period: Option<Duration>,
    /// The shortest server-side watch timeout; each watch asks for a random
    /// `[min, 2·min)`. Values under client-go's 5 min are raised to it.
    pub min_watch_timeout: Duration,
    /// Stream the initial state over a watch (`sendInitialEvents`).
    pub use_watch_list: bool,
    /// Watch-list attempts that end without the end bookmark before this
    /// cycle falls back to list and watch.
    pub watch_list_attempts: u32,
    /// How long to wait for a response head.
    pub response_header_timeout: Duration,
    /// How long a list body may go without a byte.
    pub list_idle_timeout: Duration,
    /// How long a watch body may go without a byte (bookmarks arrive about
    /// once a minute from the watch cache).
    pub watch_idle_timeout: Duration,
    /// How long a watch-list may go without a byte before its end bookmark:
    /// the server streams the initial state and the bookmark back to back,
    /// so silence means it will not come (kubernetes #140890).
    pub watch_list_idle_timeout: Duration,
    /// Past the watch's `timeoutSeconds`, how long before the reflector
    /// gives up on the server closing it.
    pub watch_deadline_grace: Duration,
    /// Retry delays.
    pub backoff: BackoffConfig,
    /// A deliberate bug, for the simulator's proof that it catches bugs.
    /// [`Mutation::None`] (the default) changes nothing.
    #[doc(hidden)]
    pub mutation: Mutation,
    /// client-go's `MaxInternalErrorRetryDuration`: a watch ending in an
    /// InternalError is re-opened at once while the run of such errors is
    /// younger than this. Zero (the default) turns it off.
    pub max_internal_error_retry: Duration,
    /// The encoding to ask for on every list and watch: sets their `Accept`
    /// (protobuf and CBOR with JSON as the fallback a server answers for
    /// kinds it cannot encode, such as custom resources). `None` (the
    /// default) keeps the `Accept` the [`ListerWatcher`] built. Bodies are
    /// decoded by their `Content-Type` whatever was asked.
    pub format: Option<Format>,
}

/// Deliberately broken behaviours the deterministic simulator must detect
/// (`windlass-testkit`'s `sim_detects_*` tests). Inert by default; never set
/// outside those tests.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mutation {
    /// The real behaviour.
    #[default]
    None,
    /// A watch that fails with 410 Gone/Expired is retried at the same
    /// resourceVersion instead of relisting.
    IgnoreGone,
    /// The informer drops `DeletedFinalStateUnknown` deletions.
    DropTombstones,
    /// Every retry delay is zero.
    NeverBackOff,
    /// A bookmark clears the last-sync resourceVersion instead of moving it.
    LoseRvOnBookmark,
}

impl Default for ReflectorConfig {
    fn default() -> Self {
        Self {
            label_selector: None,
            field_selector: None,
            page_size: 0,
            resync_period: None,
            min_watch_timeout: MIN_WATCH_TIMEOUT,
            use_watch_list: false,
            watch_list_attempts: 3,
            response_header_timeout: Duration::from_secs(60),
            list_idle_timeout: Duration::from_secs(60),
            watch_idle_timeout: Duration::from_secs(180),
            watch_list_idle_timeout: Duration::from_secs(30),
            watch_deadline_grace: Duration::from_secs(30),
            backoff: BackoffConfig::default(),
            mutation: Mutation::None,
            max_internal_error_retry: Duration::ZERO,
            format: None,
        }
    }
}

/// What a `Waiting` state waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Cycle,
    List,
    Watch,
    WatchList,
}

/// A request in flight: before its head, a successful body, or an error body.
enum Body<D> {
    AwaitingHead,
    Ok(D),
    Error {
        code: u16,
        head: Box<Parts>,
        bytes: Vec<u8>,
    },
}

struct Inflight<D> {
    id: RequestId,
    /// The driver reported its end (EOF or error), or it was cancelled.
    ended: bool,
    body: Body<D>,
    /// Header deadline, then the idle deadline.
    deadline: Instant,
}

struct ListState<K> {
    req: Inflight<Box<dyn ListDecoder<K>>>,
    /// The resourceVersion and match this list asked for (the pager's "requested").
    requested_rv: String,
    limit: u32,
    continue_token: Option<String>,
    /// The first page's resourceVersion, the result's.
    first_rv: Option<String>,
    paginated: bool,
    full_list_fallback: bool,
    started: bool,
    rv_retried: bool,
}

struct StreamState<K> {
    req: Inflight<Box<dyn WatchDecoder<K>>>,
    started_at: Instant,
    events: usize,
    /// The server should have closed the watch by now.
    end_by: Instant,
}

enum Phase<K> {
    Waiting { at: Instant, step: Step },
    Listing(ListState<K>),
    WatchListing(StreamState<K>),
    Watching(StreamState<K>),
    Stopped,
}

/// How a list, watch or watch-list ended, for the decision table.
#[derive(Debug)]
enum Failure {
    Status {
        code: u16,
        status: Option<Box<Status>>,
    },
    Transport(TransportError),
    Decode(DecodeError),
    Deadline(&'static str),
}

impl Failure {
    fn code(&self) -> Option<u16> {
        match self {
            Self::Status { code, .. } => Some(*code),
            _ => None,
        }
    }

    fn reason(&self) -> Option<&str> {
        match self {
            Self::Status { status, .. } => status.as_ref()?.reason.as_deref(),
            _ => None,
        }
    }

    /// client-go's `isExpiredError`: reason Expired or Gone, or a bare 410.
    fn is_expired(&self) -> bool {
        matches!(self.reason(), Some("Expired" | "Gone"))
            || (self.code() == Some(410) && self.reason().is_none())
    }

    /// client-go's `IsResourceExpired` (the pager's full-list fallback).
    fn is_resource_expired(&self) -> bool {
        self.reason() == Some("Expired") || (self.code() == Some(410) && self.reason().is_none())
    }

    /// client-go's `isTooLargeResourceVersionError`.
    fn is_too_large_rv(&self) -> bool {
        let Self::Status {
            status: Some(status),
            ..
        } = self
        else {
            return false;
        };
        let by_cause = status
            .details
            .as_ref()
            .and_then(|d| d.causes.as_ref())
            .is_some_and(|causes| {
                causes
                    .iter()
                    .any(|c| c.reason.as_deref() == Some("ResourceVersionTooLarge"))
            });
        let by_message = status.reason.as_deref() == Some("Timeout")
            && status
                .message
                .as_deref()
                .is_some_and(|m| m.contains("Too large resource version"));
        by_cause || by_message
    }

    fn is_internal_error(&self) -> bool {
        self.reason() == Some("InternalError")
    }

    fn is_too_many_requests(&self) -> bool {
        self.code() == Some(429) || self.reason() == Some("TooManyRequests")
    }

    fn into_error(self, verb: &'static str) -> ReflectorError {
        match self {
            Self::Status { code, status } => ReflectorError::Api { verb, code, status },
            Self::Transport(error) => ReflectorError::Transport { verb, error },
            Self::Decode(error) => ReflectorError::Decode { verb, error },
            Self::Deadline(what) => ReflectorError::Deadline { verb, what },
        }
    }
}

/// client-go's `Reflector`, without IO.
pub struct Reflector<K> {
    config: ReflectorConfig,
    requests: Box<dyn ListerWatcher>,
    codec: Box<dyn Codec<K>>,
    rng: Rng,
    backoff: Backoff,
    next_id: u64,
    phase: Phase<K>,
    actions: VecDeque<Action>,
    events: VecDeque<ReflectorEvent<K>>,
    last_sync_rv: String,
    rv_unavailable: bool,
    paginated_result: bool,
    resync_at: Option<Instant>,
    watch_list_failures: u32,
    internal_errors: RetryWithDeadline,
    synced: bool,
}

/// client-go's `RetryWithDeadline(max, 1 min)` for watches ending in an
/// InternalError: retried at once while the first of a run of such errors is
/// at most `max` old; a gap of a minute between errors starts a new run.
#[derive(Debug, Clone)]
struct RetryWithDeadline {
    max: Duration,
    reset_after: Duration,
    first: Option<Instant>,
    last: Option<Instant>,
}

impl RetryWithDeadline {
    /// Records an error at `now` and says whether to retry at once.
    fn retry(&mut self, now: Instant) -> bool {
        if self
            .last
            .is_some_and(|last| now.saturating_duration_since(last) >= self.reset_after)
        {
            self.first = None;
        }
        let first = *self.first.get_or_insert(now);
        self.last = Some(now);
        if self.max.is_zero() {
            return false;
        }
        if now.saturating_duration_since(first) <= self.max {
            return true;
        }
        self.first = None;
        self.last = None;
        false
    }
}

impl<K> std::fmt::Debug for Reflector<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reflector")
            .field("state", &phase_name(&self.phase))
            .field("last_sync_rv", &self.last_sync_rv)
            .field("rv_unavailable", &self.rv_unavailable)
            .field("paginated_result", &self.paginated_result)
            .field("synced", &self.synced)
            .finish()
    }
}

impl<K: Object + Send + 'static> Reflector<K> {
    /// A reflector that starts its first list (or watch-list) at once: the
    /// first request is ready in `poll_action`. `seed` seeds its jitter.
    pub fn new(
        config: ReflectorConfig,
        requests: Box<dyn ListerWatcher>,
        codec: Box<dyn Codec<K>>,
        seed: u64,
        now: Instant,
    ) -> Self {
        let max_internal_error_retry = config.max_internal_error_retry;
        let mut reflector = Self {
            backoff: Backoff::new(config.backoff.clone()),
            config,
            requests,
            codec,
            rng: Rng::new(seed),
            next_id: 0,
            phase: Phase::Stopped,
            actions: VecDeque::new(),
            events: VecDeque::new(),
            last_sync_rv: String::new(),
            rv_unavailable: false,
            paginated_result: false,
            resync_at: None,
            watch_list_failures: 0,
            internal_errors: RetryWithDeadline {
                max: max_internal_error_retry,
                reset_after: Duration::from_secs(60),
                first: None,
                last: None,
            },
            synced: false,
        };
        reflector.run(Step::Cycle, now);
        reflector
    }

    // --- getters

    /// The resourceVersion of the last list, event or bookmark.
    pub fn last_sync_resource_version(&self) -> &str {
        &self.last_sync_rv
    }

    /// Whether a list (or watch-list) has completed at least once.
    pub fn has_synced(&self) -> bool {
        self.synced
    }

    /// Whether an RV=0 list came back paginated (the watch cache is off), so
    /// every later list pages too.
    pub fn is_paginated_result(&self) -> bool {
        self.paginated_result
    }

    /// The current state's name: `waiting`, `listing`, `watch-listing`,
    /// `watching` or `stopped`.
    pub fn state_name(&self) -> &'static str {
        phase_name(&self.phase)
    }

    // --- inputs

    /// A response head arrived for `id`.
    pub fn handle_response(&mut self, id: RequestId, head: &Parts, now: Instant) {
        let ok = head.status.is_success();
        let code = head.status.as_u16();
        let list_idle = now + self.config.list_idle_timeout;
        let watch_idle = now + self.stream_idle_timeout();
        match &mut self.phase {
            Phase::Listing(list) if list.req.id == id => {
                if !matches!(list.req.body, Body::AwaitingHead) {
                    return;
                }
                list.req.deadline = list_idle;
                if !ok {
                    list.req.body = error_body(code, head);
                    return;
                }
                match self.codec.list_decoder(head) {
                    Ok(decoder) => {
                        list.req.body = Body::Ok(decoder);
                        if !list.started {
                            list.started = true;
                            self.events.push_back(ReflectorEvent::ListStarted);
                        }
                    }
                    Err(e) => self.list_failed(Failure::Decode(e), now),
                }
            }
            Phase::Watching(stream) | Phase::WatchListing(stream) if stream.req.id == id => {
                if !matches!(stream.req.body, Body::AwaitingHead) {
                    return;
                }
                stream.req.deadline = watch_idle.min(stream.end_by);
                if !ok {
                    stream.req.body = error_body(code, head);
                    return;
                }
                match self.codec.watch_decoder(head) {
                    Ok(decoder) => {
                        stream.req.body = Body::Ok(decoder);
                        self.backoff.mark_healthy(now);
                        if matches!(self.phase, Phase::WatchListing(_)) {
                            self.events.push_back(ReflectorEvent::ListStarted);
                        }
                    }
                    Err(e) => self.stream_failed(Failure::Decode(e), now),
                }
            }
            _ => {}
        }
    }

    /// Body bytes arrived for `id`.
    pub fn handle_chunk(&mut self, id: RequestId, bytes: &[u8], now: Instant) {
        let list_idle = now + self.config.list_idle_timeout;
        let watch_idle = now + self.stream_idle_timeout();
        match &mut self.phase {
            Phase::Listing(list) if list.req.id == id => {
                list.req.deadline = list_idle;
                match &mut list.req.body {
                    Body::AwaitingHead => {}
                    Body::Error { bytes: buf, .. } => append_bounded(buf, bytes),
                    Body::Ok(decoder) => {
                        let pushed = decoder.push(bytes);
                        let items: Vec<K> = std::iter::from_fn(|| decoder.poll_item()).collect();
                        if !items.is_empty() {
                            self.events.push_back(ReflectorEvent::Listed(items));
                        }
                        if let Err(e) = pushed {
                            self.list_failed(Failure::Decode(e), now);
                        }
                    }
                }
            }
            Phase::Watching(stream) | Phase::WatchListing(stream) if stream.req.id == id => {
                stream.req.deadline = watch_idle.min(stream.end_by);
                match &mut stream.req.body {
                    Body::AwaitingHead => {}
                    Body::Error { bytes: buf, .. } => append_bounded(buf, bytes),
                    Body::Ok(decoder) => {
                        if let Err(e) = decoder.push(bytes) {
                            self.stream_failed(Failure::Decode(e), now);
                            return;
                        }
                        self.drain_watch_events(id, now);
                    }
                }
            }
            _ => {}
        }
    }

    /// The body of `id` ended cleanly.
    pub fn handle_eof(&mut self, id: RequestId, now: Instant) {
        self.mark_ended(id);
        match &mut self.phase {
            Phase::Listing(list) if list.req.id == id => {
                match std::mem::replace(&mut list.req.body, Body::AwaitingHead) {
                    Body::AwaitingHead => self.list_failed(
                        Failure::Transport(TransportError::Closed("no response".into())),
                        now,
                    ),
                    Body::Error { code, head, bytes } => {
                        let status = self.codec.decode_status(&head, &bytes).map(Box::new);
                        self.list_failed(Failure::Status { code, status }, now);
                    }
                    Body::Ok(mut decoder) => {
                        let meta = decoder.finish();
                        let items: Vec<K> = std::iter::from_fn(|| decoder.poll_item()).collect();
                        if !items.is_empty() {
                            self.events.push_back(ReflectorEvent::Listed(items));
                        }
                        match meta {
                            Ok(meta) => self.list_page_done(meta, now),
                            Err(e) => self.list_failed(Failure::Decode(e), now),
                        }
                    }
                }
            }
            Phase::Watching(stream) | Phase::WatchListing(stream) if stream.req.id == id => {
                match std::mem::replace(&mut stream.req.body, Body::AwaitingHead) {
                    Body::AwaitingHead => self.stream_failed(
                        Failure::Transport(TransportError::Closed("no response".into())),
                        now,
                    ),
                    Body::Error { code, head, bytes } => {
                        let status = self.codec.decode_status(&head, &bytes).map(Box::new);
                        self.stream_failed(Failure::Status { code, status }, now);
                    }
                    Body::Ok(mut decoder) => {
                        // client-go's StreamWatcher closes quietly on an
                        // unexpected EOF: a cut last event is dropped.
                        let _ = decoder.finish();
                        self.stream_closed(now);
                    }
                }
            }
            _ => {}
        }
    }

    /// The transport of `id` failed.
    pub fn handle_error(&mut self, id: RequestId, error: TransportError, now: Instant) {
        self.mark_ended(id);
        match &self.phase {
            Phase::Listing(list) if list.req.id == id => {
                self.list_failed(Failure::Transport(error), now)
            }
            Phase::Watching(stream) | Phase::WatchListing(stream) if stream.req.id == id => {
                let mid_body = matches!(stream.req.body, Body::Ok(_));
                if mid_body && matches!(error, TransportError::Closed(_) | TransportError::TimedOut)
                {
                    // A probable EOF or a timeout mid-body: a quiet close.
                    self.stream_closed(now);
                } else {
                    self.stream_failed(Failure::Transport(error), now);
                }
            }
            _ => {}
        }
    }

    /// Time passed; `now` may be at or past `poll_timeout`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if let Some(at) = self.resync_at
            && now >= at
        {
            self.events.push_back(ReflectorEvent::Resync);
            self.resync_at = self.resync_period().map(|p| now + p);
        }
        match &self.phase {
            Phase::Waiting { at, step } if now >= *at => {
                let step = *step;
                self.run(step, now);
            }
            Phase::Listing(list) if now >= list.req.deadline => {
                let what = match list.req.body {
                    Body::AwaitingHead => "response headers",
                    _ => "idle body",
                };
                self.cancel_current();
                self.list_failed(Failure::Deadline(what), now);
            }
            Phase::Watching(stream) | Phase::WatchListing(stream) if now >= stream.req.deadline => {
                let awaiting_head = matches!(stream.req.body, Body::AwaitingHead);
                let watch_listing = matches!(self.phase, Phase::WatchListing(_));
                self.cancel_current();
                if awaiting_head {
                    self.stream_failed(Failure::Deadline("response headers"), now);
                } else if watch_listing {
                    self.stream_failed(Failure::Deadline("initial events"), now);
                } else {
                    // Idle or past timeoutSeconds: the connection is stale.
                    self.stream_closed(now);
                }
            }
            _ => {}
        }
    }

    // --- mutators

    /// Stops: cancels what is in flight and asks for nothing more.
    pub fn stop(&mut self) {
        self.cancel_current();
        self.phase = Phase::Stopped;
        self.resync_at = None;
    }

    // --- outputs

    /// The next request to send or cancel.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// The next change for the store.
    pub fn poll_event(&mut self) -> Option<ReflectorEvent<K>> {
        self.events.pop_front()
    }

    /// When `handle_timeout` must next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let phase = match &self.phase {
            Phase::Waiting { at, .. } => Some(*at),
            Phase::Listing(list) => Some(list.req.deadline),
            Phase::Watching(s) | Phase::WatchListing(s) => Some(s.req.deadline),
            Phase::Stopped => None,
        };
        match (phase, self.resync_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    // --- the decisions

    fn run(&mut self, step: Step, now: Instant) {
        match step {
            Step::Cycle => {
                self.watch_list_failures = 0;
                if self.config.use_watch_list {
                    self.start_watch_list(now);
                } else {
                    self.start_list(now);
                }
            }
            Step::List => self.start_list(now),
            Step::Watch => self.start_watch(now),
            Step::WatchList => self.start_watch_list(now),
        }
    }

    /// One ListAndWatch ended: back off, then start over.
    fn end_cycle(&mut self, error: Option<ReflectorError>, now: Instant) {
        if let Some(error) = error {
            tracing::debug!(%error, "reflector: list and watch ended");
            self.events.push_back(ReflectorEvent::Error(error));
        }
        self.resync_at = None;
        self.wait(Step::Cycle, now);
    }

    fn wait(&mut self, step: Step, now: Instant) {
        let mut delay = self.backoff.next_delay(now, &mut self.rng);
        if self.config.mutation == Mutation::NeverBackOff {
            delay = Duration::ZERO;
        }
        self.phase = Phase::Waiting {
            at: now + delay,
            step,
        };
    }

    /// Sets the `Accept` of `config.format` on a list or watch request.
    fn with_format(
        &self,
        request: Result<http::Request<Bytes>, RequestError>,
    ) -> Result<http::Request<Bytes>, RequestError> {
        let Some(format) = self.config.format else {
            return request;
        };
        let negotiation = match format {
            Format::Json => Negotiation::Json,
            Format::Protobuf => Negotiation::Protobuf,
            Format::Cbor => Negotiation::CborOrJson,
        };
        request.map(|mut request| {
            request.headers_mut().insert(
                http::header::ACCEPT,
                http::HeaderValue::from_static(negotiation.accept(true)),
            );
            request
        })
    }

    fn next_id(&mut self) -> RequestId {
        self.next_id += 1;
        RequestId(self.next_id)
    }

    fn send(
        &mut self,
        request: Result<http::Request<Bytes>, RequestError>,
        now: Instant,
    ) -> Option<Inflight<()>> {
        match request {
            Ok(request) => {
                let id = self.next_id();
                self.actions.push_back(Action::Send { id, request });
                Some(Inflight {
                    id,
                    ended: false,
                    body: Body::AwaitingHead,
                    deadline: now + self.config.response_header_timeout,
                })
            }
            Err(e) => {
                self.end_cycle(Some(e.into()), now);
                None
            }
        }
    }

    /// Cancels the request in flight unless it already ended.
    fn cancel_current(&mut self) {
        let (id, ended) = match &mut self.phase {
            Phase::Listing(l) => (l.req.id, &mut l.req.ended),
            Phase::Watching(s) | Phase::WatchListing(s) => (s.req.id, &mut s.req.ended),
            _ => return,
        };
        if !std::mem::replace(ended, true) {
            self.actions.push_back(Action::Cancel(id));
        }
    }

    /// Marks the request in flight as ended by the driver, if it is `id`.
    fn mark_ended(&mut self, id: RequestId) {
        match &mut self.phase {
            Phase::Listing(l) if l.req.id == id => l.req.ended = true,
            Phase::Watching(s) | Phase::WatchListing(s) if s.req.id == id => s.req.ended = true,
            _ => {}
        }
    }

    fn relist_rv(&self) -> String {
        if self.rv_unavailable {
            String::new()
        } else if self.last_sync_rv.is_empty() {
            "0".into()
        } else {
            self.last_sync_rv.clone()
        }
    }

    fn start_list(&mut self, now: Instant) {
        let rv = self.relist_rv();
        self.start_list_at(rv, false, now);
    }

    fn start_list_at(&mut self, rv: String, rv_retried: bool, now: Instant) {
        let limit = if self.config.page_size != 0 {
            self.config.page_size
        } else if self.paginated_result || rv.is_empty() || rv == "0" {
            DEFAULT_PAGE_SIZE
        } else {
            0
        };
        let state = ListState {
            req: placeholder(now),
            requested_rv: rv,
            limit,
            continue_token: None,
            first_rv: None,
            paginated: false,
            full_list_fallback: false,
            started: false,
            rv_retried,
        };
        self.send_list(state, now);
    }

    fn send_list(&mut self, mut state: ListState<K>, now: Instant) {
        let params = ListParams {
            label_selector: self.config.label_selector.clone(),
            field_selector: self.config.field_selector.clone(),
            // A continue request clears the resourceVersion (the pager does).
            resource_version: match &state.continue_token {
                Some(_) => None,
                None => Some(state.requested_rv.clone()).filter(|rv| !rv.is_empty()),
            },
            resource_version_match: None,
            limit: Some(state.limit).filter(|l| *l > 0),
            continue_token: state.continue_token.clone(),
            timeout_seconds: None,
        };
        let request = self.with_format(self.requests.list(&params));
        let Some(req) = self.send(request, now) else {
            return;
        };
        state.req = Inflight {
            id: req.id,
            ended: false,
            body: Body::AwaitingHead,
            deadline: req.deadline,
        };
        self.phase = Phase::Listing(state);
    }

    fn list_page_done(&mut self, meta: super::wire::ListPageMeta, now: Instant) {
        let Phase::Listing(mut list) = std::mem::replace(&mut self.phase, Phase::Stopped) else {
            return;
        };
        if list.first_rv.is_none() {
            list.first_rv = Some(meta.resource_version.clone());
        }
        if let Some(token) = meta.continue_token.filter(|_| !list.full_list_fallback) {
            list.paginated = true;
            list.continue_token = Some(token);
            self.send_list(list, now);
            return;
        }
        if list.requested_rv == "0" && list.paginated {
            self.paginated_result = true;
        }
        let rv = if list.full_list_fallback {
            meta.resource_version
        } else {
            list.first_rv.unwrap_or_default()
        };
        self.events.push_back(ReflectorEvent::Replaced {
            resource_version: rv.clone(),
        });
        self.last_sync_rv = rv;
        self.rv_unavailable = false;
        self.synced = true;
        self.resync_at = self.resync_period().map(|p| now + p);
        self.start_watch(now);
    }

    fn list_failed(&mut self, failure: Failure, now: Instant) {
        self.cancel_current();
        let Phase::Listing(list) = std::mem::replace(&mut self.phase, Phase::Stopped) else {
            return;
        };
        // The pager: a later page expired → one full list at the first RV.
        if list.continue_token.is_some()
            && !list.full_list_fallback
            && failure.is_resource_expired()
        {
            let state = ListState {
                req: placeholder(now),
                limit: 0,
                continue_token: None,
                full_list_fallback: true,
                started: false,
                ..list
            };
            self.events.push_back(ReflectorEvent::ListAborted);
            self.send_list(state, now);
            return;
        }
        if list.started {
            self.events.push_back(ReflectorEvent::ListAborted);
        }
        // 410 or too-large RV: relist at once at "", once.
        if !list.rv_retried && (failure.is_expired() || failure.is_too_large_rv()) {
            self.rv_unavailable = true;
            self.events
                .push_back(ReflectorEvent::Error(failure.into_error("list")));
            self.start_list_at(String::new(), true, now);
            return;
        }
        self.end_cycle(Some(failure.into_error("list")), now);
    }

    fn watch_params(&mut self, rv: String, watch_list: bool) -> WatchParams {
        // client-go honours `MinWatchTimeout` only above its 5 min default.
        let min = self
            .config
            .min_watch_timeout
            .max(MIN_WATCH_TIMEOUT)
            .as_secs_f64();
        let timeout = (min * (1.0 + self.rng.next_f64())) as u32;
        WatchParams {
            label_selector: self.config.label_selector.clone(),
            field_selector: self.config.field_selector.clone(),
            resource_version: Some(rv).filter(|rv| !rv.is_empty()),
            resource_version_match: watch_list.then_some(ResourceVersionMatch::NotOlderThan),
            timeout_seconds: Some(timeout),
            allow_watch_bookmarks: true,
            send_initial_events: watch_list.then_some(true),
        }
    }

    fn start_watch(&mut self, now: Instant) {
        let params = self.watch_params(self.last_sync_rv.clone(), false);
        self.start_stream(params, false, now);
    }

    fn start_watch_list(&mut self, now: Instant) {
        let rv = if self.rv_unavailable {
            String::new()
        } else {
            self.last_sync_rv.clone()
        };
        let params = self.watch_params(rv, true);
        self.start_stream(params, true, now);
    }

    fn start_stream(&mut self, params: WatchParams, watch_list: bool, now: Instant) {
        let timeout = Duration::from_secs(u64::from(params.timeout_seconds.unwrap_or(0)));
        let request = self.with_format(self.requests.watch(&params));
        let Some(req) = self.send(request, now) else {
            return;
        };
        let stream = StreamState {
            req: Inflight {
                id: req.id,
                ended: false,
                body: Body::AwaitingHead,
                deadline: req.deadline,
            },
            started_at: now,
            events: 0,
            end_by: now + timeout + self.config.watch_deadline_grace,
        };
        self.phase = if watch_list {
            Phase::WatchListing(stream)
        } else {
            Phase::Watching(stream)
        };
    }

    fn drain_watch_events(&mut self, id: RequestId, now: Instant) {
        loop {
            let (event, watch_list) = match &mut self.phase {
                Phase::Watching(s) if s.req.id == id => (poll_decoder(s), false),
                Phase::WatchListing(s) if s.req.id == id => (poll_decoder(s), true),
                _ => return,
            };
            let Some(event) = event else { return };
            let event = match event {
                Ok(event) => event,
                Err(e) => {
                    self.cancel_current();
                    self.stream_failed(Failure::Decode(e), now);
                    return;
                }
            };
            if let WatchEvent::Error(status) = event {
                self.cancel_current();
                let code = status
                    .code
                    .and_then(|c| u16::try_from(c).ok())
                    .unwrap_or(500);
                self.stream_failed(
                    Failure::Status {
                        code,
                        status: Some(status),
                    },
                    now,
                );
                return;
            }
            if let Phase::Watching(s) | Phase::WatchListing(s) = &mut self.phase {
                s.events += 1;
            }
            if watch_list {
                self.watch_list_event(event, now);
            } else {
                self.watch_event(event);
            }
        }
    }

    fn watch_event(&mut self, event: WatchEvent<K>) {
        let (rv, event) = match event {
            WatchEvent::Added(o) => (rv_of(&o), ReflectorEvent::Added(o)),
            WatchEvent::Modified(o) => (rv_of(&o), ReflectorEvent::Modified(o)),
            WatchEvent::Deleted(o) => (rv_of(&o), ReflectorEvent::Deleted(o)),
            WatchEvent::Bookmark(b) => (
                Some(b.resource_version.clone()),
                ReflectorEvent::Bookmark {
                    resource_version: b.resource_version,
                },
            ),
            WatchEvent::Error(_) => return,
        };
        let bookmark = matches!(event, ReflectorEvent::Bookmark { .. });
        self.events.push_back(event);
        if bookmark && self.config.mutation == Mutation::LoseRvOnBookmark {
            self.last_sync_rv.clear();
            return;
        }
        if let Some(rv) = rv.filter(|rv| !rv.is_empty()) {
            self.last_sync_rv = rv;
        }
    }

    fn watch_list_event(&mut self, event: WatchEvent<K>, now: Instant) {
        match event {
            // client-go takes the RV only from events that are not ADDED.
            WatchEvent::Added(o) => self.events.push_back(ReflectorEvent::Listed(vec![o])),
            WatchEvent::Modified(o) => {
                self.set_rv(rv_of(&o));
                self.events.push_back(ReflectorEvent::Listed(vec![o]));
            }
            WatchEvent::Deleted(o) => {
                self.set_rv(rv_of(&o));
                self.events
                    .push_back(ReflectorEvent::ListedDeleted(o.key()));
            }
            WatchEvent::Bookmark(b) => {
                if !b.is_initial_events_end() {
                    self.set_rv(Some(b.resource_version));
                    return;
                }
                self.events.push_back(ReflectorEvent::Replaced {
                    resource_version: b.resource_version.clone(),
                });
                self.last_sync_rv = b.resource_version;
                self.rv_unavailable = false;
                self.synced = true;
                self.watch_list_failures = 0;
                self.resync_at = self.resync_period().map(|p| now + p);
                // The same open stream carries on as the watch, with the
                // watch's idle deadline.
                if let Phase::WatchListing(mut s) =
                    std::mem::replace(&mut self.phase, Phase::Stopped)
                {
                    s.req.deadline = (now + self.config.watch_idle_timeout).min(s.end_by);
                    self.phase = Phase::Watching(s);
                }
            }
            WatchEvent::Error(_) => {}
        }
    }

    fn set_rv(&mut self, rv: Option<String>) {
        if let Some(rv) = rv.filter(|rv| !rv.is_empty()) {
            self.last_sync_rv = rv;
        }
    }

    /// The stream closed quietly (EOF, probable EOF, idle or watch deadline).
    fn stream_closed(&mut self, now: Instant) {
        self.cancel_current();
        match std::mem::replace(&mut self.phase, Phase::Stopped) {
            Phase::Watching(s) => {
                if now.saturating_duration_since(s.started_at) < VERY_SHORT_WATCH && s.events == 0 {
                    self.end_cycle(Some(ReflectorError::VeryShortWatch), now);
                } else {
                    self.start_watch(now);
                }
            }
            Phase::WatchListing(_) => {
                self.watch_list_incomplete(
                    ReflectorError::Deadline {
                        verb: "watch-list",
                        what: "initial events (stream ended without the end bookmark)",
                    },
                    now,
                );
            }
            other => self.phase = other,
        }
    }

    /// The stream failed with an error.
    fn stream_failed(&mut self, failure: Failure, now: Instant) {
        self.cancel_current();
        match std::mem::replace(&mut self.phase, Phase::Stopped) {
            Phase::Watching(_) => {
                let retriable = failure.is_too_many_requests()
                    || matches!(
                        failure,
                        Failure::Transport(TransportError::ConnectionRefused)
                    );
                let retriable = retriable
                    || (self.config.mutation == Mutation::IgnoreGone && failure.is_expired());
                let internal_retry = failure.is_internal_error() && self.internal_errors.retry(now);
                let error = failure.into_error("watch");
                if retriable {
                    self.events.push_back(ReflectorEvent::Error(error));
                    self.wait(Step::Watch, now);
                } else if internal_retry {
                    self.events.push_back(ReflectorEvent::Error(error));
                    self.start_watch(now);
                } else {
                    // Expired/Gone relists at the last RV; so does anything else.
                    self.end_cycle(Some(error), now);
                }
            }
            Phase::WatchListing(_) => {
                if failure.is_too_many_requests()
                    || matches!(
                        failure,
                        Failure::Transport(TransportError::ConnectionRefused)
                    )
                {
                    self.events.push_back(ReflectorEvent::ListAborted);
                    self.events
                        .push_back(ReflectorEvent::Error(failure.into_error("watch-list")));
                    self.wait(Step::WatchList, now);
                } else if failure.is_expired() || failure.is_too_large_rv() {
                    let again = self.rv_unavailable;
                    self.rv_unavailable = true;
                    self.events.push_back(ReflectorEvent::ListAborted);
                    let error = failure.into_error("watch-list");
                    if again {
                        // Already at RV "": never loop tightly.
                        self.watch_list_incomplete(error, now);
                    } else {
                        self.events.push_back(ReflectorEvent::Error(error));
                        self.start_watch_list(now);
                    }
                } else if matches!(failure, Failure::Deadline(_) | Failure::Transport(_)) {
                    self.watch_list_incomplete(failure.into_error("watch-list"), now);
                } else {
                    // Refused (e.g. 400 "streaming is not allowed"): list and watch now.
                    self.events.push_back(ReflectorEvent::ListAborted);
                    self.events
                        .push_back(ReflectorEvent::Error(failure.into_error("watch-list")));
                    self.start_list(now);
                }
            }
            other => self.phase = other,
        }
    }

    /// A watch-list attempt ended without its end bookmark: back off, and
    /// after `watch_list_attempts` such ends fall back to list and watch
    /// (client-go retries at once, forever: #140890).
    fn watch_list_incomplete(&mut self, error: ReflectorError, now: Instant) {
        self.events.push_back(ReflectorEvent::ListAborted);
        self.events.push_back(ReflectorEvent::Error(error));
        self.watch_list_failures += 1;
        let step = if self.watch_list_failures >= self.config.watch_list_attempts.max(1) {
            Step::List
        } else {
            Step::WatchList
        };
        self.wait(step, now);
    }

    /// The idle deadline of the stream in flight.
    fn stream_idle_timeout(&self) -> Duration {
        match self.phase {
            Phase::WatchListing(_) => self.config.watch_list_idle_timeout,
            _ => self.config.watch_idle_timeout,
        }
    }

    fn resync_period(&self) -> Option<Duration> {
        self.config.resync_period.filter(|p| !p.is_zero())
    }
}

fn phase_name<K>(phase: &Phase<K>) -> &'static str {
    match phase {
        Phase::Waiting { .. } => "waiting",
        Phase::Listing(_) => "listing",
        Phase::WatchListing(_) => "watch-listing",
        Phase::Watching(_) => "watching",
        Phase::Stopped => "stopped",
    }
}

fn poll_decoder<K>(s: &mut StreamState<K>) -> Option<Result<WatchEvent<K>, DecodeError>> {
    match &mut s.req.body {
        Body::Ok(decoder) => decoder.poll_event(),
        _ => None,
    }
}

fn rv_of<K: Object>(obj: &K) -> Option<String> {
    obj.resource_version().map(str::to_owned)
}

fn error_body<D>(code: u16, head: &Parts) -> Body<D> {
    Body::Error {
        code,
        head: Box::new(head.clone()),
        bytes: Vec::new(),
    }
}

fn append_bounded(buf: &mut Vec<u8>, bytes: &[u8]) {
    let room = MAX_ERROR_BODY.saturating_sub(buf.len());
    buf.extend_from_slice(&bytes[..bytes.len().min(room)]);
}

/// An inflight slot `send_list` fills in.
fn placeholder<D>(now: Instant) -> Inflight<D> {
    Inflight {
        id: RequestId(0),
        ended: false,
        body: Body::AwaitingHead,
        deadline: now,
    }
}
