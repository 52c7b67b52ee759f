//! The incremental watch decoder: a [`FrameDecoder`](super::frame) for the
//! body's framing plus the event decoding of its encoding.
//!
//! ```
//! use k8s_openapi::api::core::v1::Pod;
//! use windlass_proto::watch::{Limits, WatchDecoder, WatchEvent};
//!
//! let mut decoder = WatchDecoder::<Pod>::for_content_type("application/json", Limits::default())?;
//! for chunk in [&b"{\"type\":\"BOOKMARK\",\"object\":{\"metadata\":"[..], b"{\"resourceVersion\":\"7\"}}}\n"] {
//!     decoder.push(chunk)?;
//!     while let Some(event) = decoder.poll_event() {
//!         let WatchEvent::Bookmark(bookmark) = event? else { unreachable!() };
//!         assert_eq!(bookmark.resource_version, "7");
//!     }
//! }
//! decoder.finish()?;
//! # Ok::<(), windlass_proto::watch::DecodeError>(())
//! ```

use std::collections::{BTreeMap, VecDeque};
use std::marker::PhantomData;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Status;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::frame::{FrameDecoder, Framing, JsonFields, Limits};
use super::{Bookmark, WatchEvent, protobuf};
use crate::codec::cbor::{self, Item, ItemDeserializer};
use crate::codec::{CBOR_MAGIC, PROTOBUF_MAGIC};

/// Why a watch body could not be decoded. Every error names the frame (its
/// index in the stream, from 0) or the byte offset it concerns.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// A frame longer than [`Limits::max_frame`].
    #[error("watch frame of {len} bytes exceeds the {limit}-byte limit")]
    FrameTooLarge {
        /// The frame's length, or as much of it as was seen.
        len: u64,
        /// The limit.
        limit: usize,
    },
    /// The body ended inside a frame.
    #[error("watch stream ends inside a frame ({buffered} bytes of it buffered)")]
    TruncatedAtEof {
        /// The partial frame's bytes.
        buffered: usize,
    },
    /// Bytes that cannot start or continue a frame.
    #[error("watch stream byte {offset}: {what}")]
    Framing {
        /// The offset in the body.
        offset: u64,
        /// What is wrong.
        what: String,
    },
    /// Text that is not UTF-8.
    #[error("watch event {frame}: invalid UTF-8 at byte {offset} of the frame")]
    InvalidUtf8 {
        /// The frame's index.
        frame: u64,
        /// Where the invalid bytes start, within the frame.
        offset: usize,
    },
    /// A type other than ADDED, MODIFIED, DELETED, BOOKMARK and ERROR (client-go rejects them too).
    #[error("watch event {frame}: unknown event type {event_type:?}")]
    UnknownEventType {
        /// The frame's index.
        frame: u64,
        /// The type as sent.
        event_type: String,
    },
    /// A frame that is not a watch event (`{"type":…,"object":…}`).
    #[error("watch event {frame}: {what}")]
    MalformedEvent {
        /// The frame's index.
        frame: u64,
        /// What is wrong.
        what: String,
    },
    /// The event's object does not decode.
    #[error("watch event {frame} ({event_type}): object does not decode: {source}")]
    Object {
        /// The frame's index.
        frame: u64,
        /// The event type.
        event_type: &'static str,
        /// Why.
        source: ObjectError,
    },
    /// The response's media type carries no watch stream windlass reads.
    #[error("cannot decode a watch stream of Content-Type {content_type:?}: {why}")]
    UnsupportedContentType {
        /// The header as received.
        content_type: String,
        /// Why not.
        why: &'static str,
    },
    /// The decoder failed earlier and decodes nothing more.
    #[error("watch decoder failed earlier; the rest of the stream is not decoded")]
    Failed,
    /// Backpressure, not a failure: [`WatchDecoder::push`] was called while
    /// the event queue was full and undecoded bytes already filled the
    /// backlog. The chunk was not taken; poll events, then push it again.
    #[error(
        "watch decoder backlog full: {queued} events queued and {buffered} bytes undecoded (limit {limit}); poll events before pushing more"
    )]
    Backlog {
        /// Events waiting in the queue.
        queued: usize,
        /// Bytes buffered but not decoded yet.
        buffered: usize,
        /// The backlog limit in bytes ([`Limits::max_frame`]).
        limit: usize,
    },
}

/// Why an event's object did not decode.
#[derive(Debug, thiserror::Error)]
pub enum ObjectError {
    /// JSON.
    #[error("JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// CBOR.
    #[error("CBOR: {0}")]
    Cbor(#[from] cbor::Error),
    /// Protobuf.
    #[error("protobuf: {0}")]
    Protobuf(String),
}

/// Decodes a watch response body into [`WatchEvent`]s, incrementally.
///
/// Feed body chunks as they arrive ([`push`](Self::push)), drain
/// [`poll_event`](Self::poll_event) after each, and call
/// [`finish`](Self::finish) at the end of the body. Chunk boundaries do not
/// matter. After any error the decoder stays failed: the error comes out of
/// `poll_event` once, after the events before it, and nothing more is
/// decoded (for a CBOR sequence, RFC 8742 §2.8 demands exactly this; for the
/// other framings the frame boundaries can no longer be trusted either).
///
/// Bookmarks are decoded leniently: only `metadata.resourceVersion` and
/// `metadata.annotations` are read, since real bookmarks carry objects a
/// typed `K` may refuse (`"spec":{"containers":null}`).
///
/// # Bounded memory
///
/// A few body bytes can decode into a much larger object (a protobuf frame
/// of a dozen bytes is a whole default `Pod`), so decoded events never pile
/// up: at most [`DEFAULT_MAX_QUEUED_EVENTS`] (see
/// [`with_max_queued_events`](Self::with_max_queued_events)) wait in the
/// queue. Once it is full, `push` keeps further bytes undecoded and
/// [`poll_event`](Self::poll_event) decodes them as the queue empties, so
/// pushing a whole body at once still works. A caller that keeps pushing
/// without polling is stopped: when the queue is full and [`Limits::max_frame`]
/// undecoded bytes are already buffered, `push` refuses the chunk with
/// [`DecodeError::Backlog`] (the decoder does not fail; poll, then push the
/// chunk again). Memory is thus bounded by the queue, the backlog and one chunk.
pub struct WatchDecoder<K> {
    frames: FrameDecoder,
    events: VecDeque<Result<WatchEvent<K>, DecodeError>>,
    /// Frames decoded so far.
    frame_index: u64,
    failed: bool,
    /// The most events [`Self::events`] holds before decoding pauses.
    max_queued: usize,
    /// The backlog limit in bytes (the frame limit).
    max_backlog: usize,
    /// [`Self::finish`] was called while undecoded frames waited; the
    /// end-of-body check runs once they are decoded.
    ended: bool,
    _object: PhantomData<fn() -> K>,
}

/// How many decoded events a [`WatchDecoder`] queues before it stops
/// decoding until they are polled.
pub const DEFAULT_MAX_QUEUED_EVENTS: usize = 1024;

impl<K> std::fmt::Debug for WatchDecoder<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WatchDecoder")
            .field("framing", &self.frames.framing())
            .field("frame_index", &self.frame_index)
            .field("queued", &self.events.len())
            .field("max_queued", &self.max_queued)
            .field("failed", &self.failed)
            .finish()
    }
}

/// How much of a pushed chunk is framed at a time, so a huge chunk never
/// makes the buffer grow far beyond one frame.
const FEED_STEP: usize = 64 << 10;

impl<K: DeserializeOwned> WatchDecoder<K> {
    /// A decoder for the given framing.
    pub fn new(framing: Framing, limits: Limits) -> Self {
        Self {
            frames: FrameDecoder::new(framing, limits),
            events: VecDeque::new(),
            frame_index: 0,
            failed: false,
            max_queued: DEFAULT_MAX_QUEUED_EVENTS,
            max_backlog: limits.max_frame,
            ended: false,
            _object: PhantomData,
        }
    }

    /// Queue at most `max` decoded events (at least 1) before decoding
    /// pauses until they are polled; the default is [`DEFAULT_MAX_QUEUED_EVENTS`].
    pub fn with_max_queued_events(mut self, max: usize) -> Self {
        self.max_queued = max.max(1);
        self
    }

    /// The decoder for a response's `Content-Type`: `application/json`,
    /// `application/vnd.kubernetes.protobuf;stream=watch` or
    /// `application/cbor-seq`. A stream labelled plain `application/cbor` is
    /// refused, as client-go refuses it.
    pub fn for_content_type(content_type: &str, limits: Limits) -> Result<Self, DecodeError> {
        let media_type = content_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        let framing = match media_type.as_str() {
            "application/json" => Framing::JsonStream,
            "application/vnd.kubernetes.protobuf" => Framing::LengthPrefixed,
            "application/cbor-seq" => Framing::CborSequence,
            "application/cbor" => {
                return Err(DecodeError::UnsupportedContentType {
                    content_type: content_type.to_owned(),
                    why: "a CBOR watch stream must be application/cbor-seq",
                });
            }
            _ => {
                return Err(DecodeError::UnsupportedContentType {
                    content_type: content_type.to_owned(),
                    why: "not a JSON, protobuf or CBOR-sequence media type",
                });
            }
        };
        Ok(Self::new(framing, limits))
    }

    /// The framing this decoder reads.
    pub fn framing(&self) -> Framing {
        self.frames.framing()
    }

    /// Whether an error has ended decoding.
    pub fn is_failed(&self) -> bool {
        self.failed
    }

    /// Feeds body bytes. Decoded events (and an error, if one was found)
    /// queue up for [`poll_event`](Self::poll_event). Returns
    /// [`DecodeError::Failed`] if the decoder had already failed, so a
    /// driver knows to stop reading, and [`DecodeError::Backlog`] — the chunk
    /// not taken, the decoder still usable — when the caller has pushed far
    /// ahead of polling (see [Bounded memory](Self#bounded-memory)).
    pub fn push(&mut self, chunk: &[u8]) -> Result<(), DecodeError> {
        if self.failed {
            return Err(DecodeError::Failed);
        }
        let buffered = self.frames.buffered();
        if self.queue_full() && buffered >= self.max_backlog {
            return Err(DecodeError::Backlog {
                queued: self.events.len(),
                buffered,
                limit: self.max_backlog,
            });
        }
        let mut rest = chunk;
        while !rest.is_empty() {
            if self.queue_full() {
                // Keep the rest undecoded; poll_event decodes it later.
                self.frames.push(rest);
                return Ok(());
            }
            let (piece, tail) = rest.split_at(rest.len().min(FEED_STEP));
            rest = tail;
            self.frames.push(piece);
            self.decode_ready();
            if self.failed {
                return Ok(());
            }
        }
        Ok(())
    }

    /// The next decoded event, in stream order; `None` when none is ready.
    pub fn poll_event(&mut self) -> Option<Result<WatchEvent<K>, DecodeError>> {
        if self.events.is_empty() && !self.failed {
            // Bytes pushed while the queue was full.
            self.decode_ready();
        }
        self.events.pop_front()
    }

    /// Marks the end of the body: an error if it ended inside a frame (the
    /// events already decoded stay queued). A body that ends between events
    /// — the server's timeout — is a clean end. If frames still wait
    /// undecoded behind a full queue, the check waits for them: a
    /// truncation then comes out of [`poll_event`](Self::poll_event) after
    /// their events.
    pub fn finish(&mut self) -> Result<(), DecodeError> {
        if self.failed {
            return Err(DecodeError::Failed);
        }
        if self.queue_full() {
            self.ended = true;
            return Ok(());
        }
        if let Err(e) = self.frames.finish() {
            self.failed = true;
            return Err(e);
        }
        Ok(())
    }

    fn queue_full(&self) -> bool {
        self.events.len() >= self.max_queued
    }

    /// Decodes buffered frames until none is complete, the queue is full or
    /// an error ends decoding.
    fn decode_ready(&mut self) {
        while !self.queue_full() {
            match self.frames.next_frame() {
                Ok(Some(range)) => {
                    let index = self.frame_index;
                    let event = match self.frames.framing() {
                        Framing::JsonStream => {
                            let fields = self.frames.take_json_fields();
                            json_event(self.frames.bytes(range), fields, index)
                        }
                        Framing::LengthPrefixed => protobuf_event(self.frames.bytes(range), index),
                        Framing::CborSequence => cbor_event(self.frames.bytes(range), index),
                    };
                    self.frame_index += 1;
                    let is_err = event.is_err();
                    self.events.push_back(event);
                    if is_err {
                        self.fail();
                        return;
                    }
                }
                Ok(None) => {
                    if self.ended
                        && let Err(e) = self.frames.finish()
                    {
                        self.events.push_back(Err(e));
                        self.fail();
                        return;
                    }
                    break;
                }
                Err(e) => {
                    self.events.push_back(Err(e));
                    self.fail();
                    return;
                }
            }
        }
        self.frames.compact();
    }

    fn fail(&mut self) {
        self.failed = true;
        self.frames = FrameDecoder::new(self.frames.framing(), Limits::default());
    }
}

/// The five event types.
#[derive(Clone, Copy)]
enum EventType {
    Added,
    Modified,
    Deleted,
    Bookmark,
    Error,
}

impl EventType {
    fn parse(text: &str, frame: u64) -> Result<Self, DecodeError> {
        Ok(match text {
            "ADDED" => Self::Added,
            "MODIFIED" => Self::Modified,
            "DELETED" => Self::Deleted,
            "BOOKMARK" => Self::Bookmark,
            "ERROR" => Self::Error,
            other => {
                return Err(DecodeError::UnknownEventType {
                    frame,
                    event_type: other.to_owned(),
                });
            }
        })
    }

    /// [`Self::parse`] for text known to be UTF-8.
    fn parse_bytes(text: &[u8], frame: u64) -> Result<Self, DecodeError> {
        Self::parse(&String::from_utf8_lossy(text), frame)
    }

    fn name(self) -> &'static str {
        match self {
            Self::Added => "ADDED",
            Self::Modified => "MODIFIED",
            Self::Deleted => "DELETED",
            Self::Bookmark => "BOOKMARK",
            Self::Error => "ERROR",
        }
    }

    /// The event, given how to read each kind of object.
    fn event<K, E>(
        self,
        frame: u64,
        object: impl FnOnce() -> Result<K, E>,
        bookmark: impl FnOnce() -> Result<Bookmark, E>,
        status: impl FnOnce() -> Result<Status, E>,
    ) -> Result<WatchEvent<K>, DecodeError>
    where
        E: Into<ObjectError>,
    {
        let wrap = |e: E| DecodeError::Object {
            frame,
            event_type: self.name(),
            source: e.into(),
        };
        Ok(match self {
            Self::Added => WatchEvent::Added(object().map_err(wrap)?),
            Self::Modified => WatchEvent::Modified(object().map_err(wrap)?),
            Self::Deleted => WatchEvent::Deleted(object().map_err(wrap)?),
            Self::Bookmark => WatchEvent::Bookmark(bookmark().map_err(wrap)?),
            Self::Error => WatchEvent::Error(Box::new(status().map_err(wrap)?)),
        })
    }
}

impl From<String> for ObjectError {
    fn from(message: String) -> Self {
        Self::Protobuf(message)
    }
}

/// A bookmark's object, read for its metadata only.
#[derive(Deserialize)]
struct BookmarkObject {
    #[serde(default)]
    metadata: Option<BookmarkMeta>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BookmarkMeta {
    #[serde(default)]
    resource_version: Option<String>,
    #[serde(default)]
    annotations: Option<BTreeMap<String, String>>,
}

impl From<BookmarkObject> for Bookmark {
    fn from(object: BookmarkObject) -> Self {
        let meta = object.metadata;
        let (resource_version, annotations) = meta
            .map(|m| (m.resource_version, m.annotations))
            .unwrap_or_default();
        Bookmark {
            resource_version: resource_version.unwrap_or_default(),
            annotations: annotations.unwrap_or_default(),
        }
    }
}

// --- JSON: {"type": T, "object": {...}}

/// One JSON event, from the frame and the top level the frame scanner
/// found in it (UTF-8 already checked): serde_json reads the object's bytes
/// once, straight from the frame.
fn json_event<K: DeserializeOwned>(
    frame: &[u8],
    fields: JsonFields,
    index: u64,
) -> Result<WatchEvent<K>, DecodeError> {
    if let Some(offset) = fields.invalid_utf8 {
        return Err(DecodeError::InvalidUtf8 {
            frame: index,
            offset,
        });
    }
    let malformed = |what: String| DecodeError::MalformedEvent { frame: index, what };
    if let Some(what) = fields.malformed {
        return Err(malformed(what.into()));
    }
    let event_type = fields
        .event_type
        .ok_or_else(|| malformed("no \"type\" field".into()))?;
    let event_type = &frame[event_type];
    let event_type = match event_type
        .strip_prefix(b"\"")
        .and_then(|t| t.strip_suffix(b"\""))
    {
        // The common case: no escapes, so the bytes are the string.
        Some(text) if !text.contains(&b'\\') && !text.contains(&b'"') => {
            EventType::parse_bytes(text, index)?
        }
        _ => {
            let text: String = serde_json::from_slice(event_type)
                .map_err(|e| malformed(format!("\"type\" is not a string: {e}")))?;
            EventType::parse(&text, index)?
        }
    };
    let object = fields
        .object
        .ok_or_else(|| malformed("no \"object\" field".into()))?;
    // One check of the whole object (the scan found no invalid byte, so it
    // passes) lets serde_json read it as text, instead of checking each
    // string it parses on its own: fewer, longer checks are faster.
    let offset = object.start;
    let object = std::str::from_utf8(&frame[object]).map_err(|e| DecodeError::InvalidUtf8 {
        frame: index,
        offset: offset + e.valid_up_to(),
    })?;
    event_type.event(
        index,
        || serde_json::from_str::<K>(object),
        || serde_json::from_str::<BookmarkObject>(object).map(Bookmark::from),
        || serde_json::from_str::<Status>(object),
    )
}

// --- protobuf: WatchEvent{1: type, 2: RawExtension{1: raw}}

fn protobuf_event<K: DeserializeOwned>(
    frame: &[u8],
    index: u64,
) -> Result<WatchEvent<K>, DecodeError> {
    let malformed = |what: String| DecodeError::MalformedEvent { frame: index, what };
    let (event_type, raw) = protobuf::watch_event(frame)
        .map_err(|e| malformed(format!("not a meta.v1.WatchEvent: {e}")))?;
    let event_type = std::str::from_utf8(event_type).map_err(|e| DecodeError::InvalidUtf8 {
        frame: index,
        offset: e.valid_up_to(),
    })?;
    let event_type = EventType::parse(event_type, index)?;
    if let Some(body) = raw.strip_prefix(PROTOBUF_MAGIC) {
        let (content_type, inner) = protobuf::unknown(body)
            .map_err(|e| malformed(format!("object is not a runtime.Unknown: {e}")))?;
        let media_type = content_type.split(';').next().unwrap_or("").trim();
        return match media_type {
            "" | "application/vnd.kubernetes.protobuf" => event_type.event(
                index,
                || protobuf_object::<K>(raw),
                || protobuf::bookmark(inner),
                || protobuf::status(inner),
            ),
            "application/json" => json_object(event_type, inner, index),
            "application/cbor" => cbor_object(event_type, inner, index),
            other => Err(malformed(format!(
                "runtime.Unknown holds an object of unsupported contentType {other:?}"
            ))),
        };
    }
    if raw.starts_with(CBOR_MAGIC) {
        return cbor_object(event_type, raw, index);
    }
    // Sniffed as JSON (e.g. core.v1.WatchEvent.pb carries JSON in raw).
    json_object(event_type, raw, index)
}

/// A protobuf object (`k8s\0` + Unknown) as `K`, by the protobuf codec.
fn protobuf_object<K: DeserializeOwned>(raw: &[u8]) -> Result<K, String> {
    crate::codec::protobuf::decode::<K>(raw).map_err(|e| e.to_string())
}

fn json_object<K: DeserializeOwned>(
    event_type: EventType,
    object: &[u8],
    index: u64,
) -> Result<WatchEvent<K>, DecodeError> {
    event_type.event(
        index,
        || serde_json::from_slice::<K>(object),
        || serde_json::from_slice::<BookmarkObject>(object).map(Bookmark::from),
        || serde_json::from_slice::<Status>(object),
    )
}

fn cbor_object<K: DeserializeOwned>(
    event_type: EventType,
    object: &[u8],
    index: u64,
) -> Result<WatchEvent<K>, DecodeError> {
    let wrap = |e: cbor::Error| DecodeError::Object {
        frame: index,
        event_type: event_type.name(),
        source: e.into(),
    };
    let item = cbor::read_item(object).map_err(wrap)?;
    cbor_item_event(event_type, &item, index)
}

// --- CBOR: 55799({b"type": T, b"object": 55799({...})})

fn cbor_event<K: DeserializeOwned>(frame: &[u8], index: u64) -> Result<WatchEvent<K>, DecodeError> {
    let malformed = |what: String| DecodeError::MalformedEvent { frame: index, what };
    let item = cbor::read_item(frame).map_err(|e| match e {
        cbor::Error::InvalidUtf8 { offset } => DecodeError::InvalidUtf8 {
            frame: index,
            offset,
        },
        other => malformed(format!("not a CBOR watch event: {other}")),
    })?;
    let Item::Map(entries) = untagged(&item) else {
        return Err(malformed("not a CBOR map".into()));
    };
    let (mut event_type, mut object) = (None, None);
    for (key, value) in entries {
        match string_bytes(untagged(key)) {
            Some(b"type") => event_type = Some(value),
            Some(b"object") => object = Some(value),
            _ => {}
        }
    }
    let event_type = event_type.ok_or_else(|| malformed("no \"type\" key".into()))?;
    let event_type = string_bytes(untagged(event_type))
        .ok_or_else(|| malformed("\"type\" is not a string".into()))?;
    let event_type = std::str::from_utf8(event_type).map_err(|e| DecodeError::InvalidUtf8 {
        frame: index,
        offset: e.valid_up_to(),
    })?;
    let event_type = EventType::parse(event_type, index)?;
    let object = object.ok_or_else(|| malformed("no \"object\" key".into()))?;
    cbor_item_event(event_type, object, index)
}

fn cbor_item_event<K: DeserializeOwned>(
    event_type: EventType,
    object: &Item<'_>,
    index: u64,
) -> Result<WatchEvent<K>, DecodeError> {
    event_type.event(
        index,
        || K::deserialize(ItemDeserializer(object)),
        || BookmarkObject::deserialize(ItemDeserializer(object)).map(Bookmark::from),
        || Status::deserialize(ItemDeserializer(object)),
    )
}

fn untagged<'i, 'a>(mut item: &'i Item<'a>) -> &'i Item<'a> {
    while let Item::Tag(_, inner) = item {
        item = inner;
    }
    item
}

fn string_bytes<'i>(item: &'i Item<'_>) -> Option<&'i [u8]> {
    match item {
        Item::Bytes(b) => Some(b),
        Item::Text(t) => Some(t.as_bytes()),
        _ => None,
    }
}
