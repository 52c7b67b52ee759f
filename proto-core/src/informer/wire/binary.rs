//! Incremental list decoders for the binary encodings: a protobuf list
//! (`k8s\0` + `runtime.Unknown` holding e.g. a `PodList`) and a CBOR list
//! (tag 55799 + a map whose `items` is an array). Like the JSON one, each
//! yields every item as soon as its bytes are complete and drops them, so
//! it holds at most one item's bytes (bounded by [`CodecLimits::max_frame`])
//! plus the list's small metadata, however long the list.
//!
//! Protobuf is walked field by field: the envelope's `typeMeta` (which Go
//! writes first) names the list kind, whose `items` field names the item
//! message; the envelope's `raw` is then read as the list message, one
//! `metadata` or `items` field at a time. CBOR is walked head by head down
//! to the `items` array; every other value, and each item, is cut out as one
//! complete data item by the watch stream's CBOR framing.

use std::collections::VecDeque;
use std::marker::PhantomData;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ListMeta;
use serde::de::DeserializeOwned;

use super::{CodecLimits, DecodeError, ListDecoder, ListPageMeta};
use crate::codec::{PROTOBUF_MAGIC, cbor, protobuf};
use crate::watch::{self, FrameDecoder, Framing, cbor_head};

/// The largest envelope field other than `raw` (`typeMeta`, `contentType`…).
const MAX_ENVELOPE_FIELD: u64 = 64 << 10;

fn malformed(offset: u64, message: impl std::fmt::Display) -> DecodeError {
    DecodeError::Malformed {
        what: "list body",
        message: format!("byte {offset}: {message}"),
    }
}

fn item_too_large(limits: &CodecLimits) -> DecodeError {
    DecodeError::TooLarge {
        what: "list item",
        limit: limits.max_frame,
    }
}

fn check_body(limits: &CodecLimits, seen: u64, chunk: &[u8]) -> Result<(), DecodeError> {
    if seen.saturating_add(chunk.len() as u64) > limits.max_list_body as u64 {
        return Err(DecodeError::TooLarge {
            what: "list body",
            limit: limits.max_list_body,
        });
    }
    Ok(())
}

// --- protobuf

/// Where a [`ProtobufListDecoder`] is in the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PbState {
    /// Before the `k8s\0` magic.
    Magic,
    /// Between the fields of `runtime.Unknown`.
    Envelope,
    /// Inside `runtime.Unknown.raw` (the list message): this many bytes left.
    Raw(u64),
}

/// What a field's key and length said.
enum PbField {
    /// A varint, fixed32 or fixed64 value of this many bytes (already known).
    Scalar(usize),
    /// Length-delimited, of this length.
    Bytes(u64),
}

/// Decodes a protobuf list body (`application/vnd.kubernetes.protobuf`) as
/// it arrives; see the module notes.
pub struct ProtobufListDecoder<K> {
    limits: CodecLimits,
    /// Bytes received and not consumed yet.
    buf: Vec<u8>,
    /// Body offset of `buf[0]`.
    consumed: u64,
    state: PbState,
    /// Bytes of an unknown length-delimited field still to drop.
    skip: u64,
    item_message: Option<&'static str>,
    raw_seen: bool,
    meta: ListPageMeta,
    items: VecDeque<K>,
    _k: PhantomData<fn() -> K>,
}

impl<K> ProtobufListDecoder<K> {
    /// A decoder with these limits.
    pub fn new(limits: CodecLimits) -> Self {
        Self {
            limits,
            buf: Vec::new(),
            consumed: 0,
            state: PbState::Magic,
            skip: 0,
            item_message: None,
            raw_seen: false,
            meta: ListPageMeta::default(),
            items: VecDeque::new(),
            _k: PhantomData,
        }
    }
}

/// A varint at the front of `bytes`: `Ok(None)` when incomplete.
fn varint(bytes: &[u8]) -> Result<Option<(u64, usize)>, &'static str> {
    let mut value = 0u64;
    for (i, &byte) in bytes.iter().enumerate().take(10) {
        if i == 9 && byte > 1 {
            return Err("varint overflows 64 bits");
        }
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok(Some((value, i + 1)));
        }
    }
    if bytes.len() >= 10 {
        return Err("varint longer than 10 bytes");
    }
    Ok(None)
}

/// The key and length of the field at the front of `bytes`, and the bytes
/// they take: `Ok(None)` when incomplete.
fn pb_field(bytes: &[u8]) -> Result<Option<(u64, PbField, usize)>, String> {
    let Some((key, key_len)) = varint(bytes)? else {
        return Ok(None);
    };
    let rest = &bytes[key_len..];
    let (field, len) = match key & 7 {
        0 => match varint(rest)? {
            Some((_, n)) => (PbField::Scalar(n), 0),
            None => return Ok(None),
        },
        1 => (PbField::Scalar(8), 0),
        5 => (PbField::Scalar(4), 0),
        2 => match varint(rest)? {
            Some((len, n)) => (PbField::Bytes(len), n),
            None => return Ok(None),
        },
        wire => {
            return Err(format!(
                "unsupported wire type {wire} of field {}",
                key >> 3
            ));
        }
    };
    Ok(Some((key >> 3, field, key_len + len)))
}

/// The length-delimited fields of a small, complete message.
fn pb_strings(mut bytes: &[u8]) -> Result<Vec<(u64, &[u8])>, String> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let Some((tag, field, head)) = pb_field(bytes)? else {
            return Err("message ends inside a field".into());
        };
        bytes = &bytes[head..];
        let len = match field {
            PbField::Scalar(n) => n,
            PbField::Bytes(n) => usize::try_from(n).unwrap_or(usize::MAX),
        };
        let value = bytes.get(..len).ok_or("field overruns its message")?;
        if matches!(field, PbField::Bytes(_)) {
            out.push((tag, value));
        }
        bytes = &bytes[len..];
    }
    Ok(out)
}

fn pb_text(bytes: &[u8], what: &str) -> Result<String, String> {
    std::str::from_utf8(bytes)
        .map(str::to_owned)
        .map_err(|_| format!("{what} is not UTF-8"))
}

impl<K: DeserializeOwned> ProtobufListDecoder<K> {
    /// Consumes what `buf` holds; stops when a field is incomplete.
    fn advance(&mut self) -> Result<(), DecodeError> {
        let mut buf = std::mem::take(&mut self.buf);
        let mut pos = 0;
        let result = self.advance_from(&buf, &mut pos);
        buf.drain(..pos);
        self.consumed += pos as u64;
        self.buf = buf;
        result
    }

    fn advance_from(&mut self, buf: &[u8], pos: &mut usize) -> Result<(), DecodeError> {
        loop {
            let offset = self.consumed + *pos as u64;
            let bytes = &buf[*pos..];
            if self.skip > 0 {
                let n = self.skip.min(bytes.len() as u64);
                self.skip -= n;
                *pos += n as usize;
                self.count_raw(n);
                if self.skip > 0 {
                    return Ok(());
                }
                continue;
            }
            match self.state {
                PbState::Magic => {
                    let Some(magic) = bytes.get(..4) else {
                        return Ok(());
                    };
                    if magic != PROTOBUF_MAGIC {
                        return Err(malformed(offset, "no k8s\\0 protobuf magic"));
                    }
                    *pos += 4;
                    self.state = PbState::Envelope;
                }
                PbState::Raw(0) => self.state = PbState::Envelope,
                PbState::Envelope | PbState::Raw(_) => {
                    if bytes.is_empty() {
                        return Ok(());
                    }
                    let Some((tag, field, head)) =
                        pb_field(bytes).map_err(|e| malformed(offset, e))?
                    else {
                        return Ok(());
                    };
                    let in_raw = matches!(self.state, PbState::Raw(_));
                    let len = match field {
                        PbField::Scalar(n) => n as u64,
                        PbField::Bytes(n) => n,
                    };
                    if let PbState::Raw(left) = self.state
                        && (head as u64).saturating_add(len) > left
                    {
                        return Err(malformed(offset, "a field overruns runtime.Unknown.raw"));
                    }
                    let whole = match field {
                        PbField::Scalar(_) => false,
                        PbField::Bytes(_) => self.wants_whole(in_raw, tag),
                    };
                    if !whole {
                        *pos += head;
                        self.count_raw(head as u64);
                        self.skip = len;
                        continue;
                    }
                    if !in_raw && tag == 2 {
                        // `raw`: descend into the list message.
                        if self.item_message.is_none() {
                            return Err(malformed(
                                offset,
                                "runtime.Unknown.raw comes before typeMeta names the list kind",
                            ));
                        }
                        *pos += head;
                        self.raw_seen = true;
                        self.state = PbState::Raw(len);
                        continue;
                    }
                    let limit = if in_raw {
                        self.limits.max_frame as u64
                    } else {
                        MAX_ENVELOPE_FIELD
                    };
                    if len > limit {
                        return Err(item_too_large(&self.limits));
                    }
                    let end = head + len as usize;
                    if bytes.len() < end {
                        return Ok(());
                    }
                    let value = &bytes[head..end];
                    let done = if in_raw {
                        self.raw_field(tag, value)
                    } else {
                        self.envelope_field(tag, value)
                    };
                    done.map_err(|e| match e {
                        DecodeError::Malformed { what, message } => DecodeError::Malformed {
                            what,
                            message: format!("byte {offset}: {message}"),
                        },
                        other => other,
                    })?;
                    *pos += end;
                    self.count_raw(end as u64);
                }
            }
        }
    }

    /// Whether a length-delimited field is read whole (or descended into)
    /// rather than skipped.
    fn wants_whole(&self, in_raw: bool, tag: u64) -> bool {
        if in_raw {
            matches!(tag, 1 | 2)
        } else {
            matches!(tag, 1..=4)
        }
    }

    fn count_raw(&mut self, n: u64) {
        if let PbState::Raw(left) = &mut self.state {
            *left = left.saturating_sub(n);
        }
    }

    fn envelope_field(&mut self, tag: u64, value: &[u8]) -> Result<(), DecodeError> {
        let bad = |message: String| DecodeError::Malformed {
            what: "list body",
            message,
        };
        match tag {
            1 => {
                let (mut api_version, mut kind) = (String::new(), String::new());
                for (field, bytes) in pb_strings(value).map_err(bad)? {
                    match field {
                        1 => api_version = pb_text(bytes, "typeMeta.apiVersion").map_err(bad)?,
                        2 => kind = pb_text(bytes, "typeMeta.kind").map_err(bad)?,
                        _ => {}
                    }
                }
                if kind == "Table" || !kind.ends_with("List") {
                    return Err(DecodeError::UnexpectedKind(kind));
                }
                let item = protobuf::list_item_message(&api_version, &kind).ok_or_else(|| {
                    bad(format!(
                        "no protobuf message is known for the items of {kind} of {api_version:?}"
                    ))
                })?;
                self.item_message = Some(item);
            }
            3 if !value.is_empty() => {
                return Err(bad(format!(
                    "runtime.Unknown has contentEncoding {:?}, which is not supported",
                    String::from_utf8_lossy(value)
                )));
            }
            4 if !value.is_empty() && value != b"application/vnd.kubernetes.protobuf" => {
                return Err(bad(format!(
                    "runtime.Unknown holds contentType {:?}, not protobuf",
                    String::from_utf8_lossy(value)
                )));
            }
            _ => {}
        }
        Ok(())
    }

    fn raw_field(&mut self, tag: u64, value: &[u8]) -> Result<(), DecodeError> {
        let bad = |message: String| DecodeError::Malformed {
            what: "list body",
            message,
        };
        match tag {
            // ListMeta: resourceVersion 2, continue 3.
            1 => {
                for (field, bytes) in pb_strings(value).map_err(bad)? {
                    match field {
                        2 => {
                            self.meta.resource_version =
                                pb_text(bytes, "metadata.resourceVersion").map_err(bad)?;
                        }
                        3 => {
                            let token = pb_text(bytes, "metadata.continue").map_err(bad)?;
                            self.meta.continue_token = Some(token).filter(|t| !t.is_empty());
                        }
                        _ => {}
                    }
                }
            }
            2 => {
                let message = self.item_message.expect("raw is entered only with it");
                let item = protobuf::decode_message::<K>(message, value).map_err(|e| {
                    DecodeError::Malformed {
                        what: "list item",
                        message: format!("item {}: {e}", self.items.len()),
                    }
                })?;
                self.items.push_back(item);
            }
            _ => {}
        }
        Ok(())
    }
}

impl<K: DeserializeOwned + Send> ListDecoder<K> for ProtobufListDecoder<K> {
    fn push(&mut self, chunk: &[u8]) -> Result<(), DecodeError> {
        check_body(&self.limits, self.consumed + self.buf.len() as u64, chunk)?;
        self.buf.extend_from_slice(chunk);
        self.advance()
    }

    fn poll_item(&mut self) -> Option<K> {
        self.items.pop_front()
    }

    fn finish(&mut self) -> Result<ListPageMeta, DecodeError> {
        let offset = self.consumed + self.buf.len() as u64;
        if self.state != PbState::Envelope || self.skip > 0 || !self.buf.is_empty() {
            return Err(malformed(offset, "the body ends inside the list"));
        }
        if !self.raw_seen {
            return Err(malformed(offset, "runtime.Unknown holds no list"));
        }
        Ok(std::mem::take(&mut self.meta))
    }
}

// --- CBOR

/// Where a [`CborListDecoder`] is in the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CborState {
    /// Before the top-level map (tags allowed).
    Top,
    /// Between the map's entries; `None`: indefinite length.
    Entries(Option<u64>),
    /// Before the value of a key other than `items`.
    Value(Key, Option<u64>),
    /// Before the `items` array (tags and null allowed).
    ItemsHead(Option<u64>),
    /// Inside `items`: elements left (`None`: indefinite), map entries left.
    Items(Option<u64>, Option<u64>),
    Done,
}

/// The top-level keys read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Key {
    Kind,
    Metadata,
    Other,
}

/// One entry of the top-level map ended.
fn entry_done(entries: Option<u64>) -> CborState {
    match entries {
        Some(1) => CborState::Done,
        Some(n) => CborState::Entries(Some(n - 1)),
        None => CborState::Entries(None),
    }
}

/// Decodes a CBOR list body (`application/cbor`) as it arrives; see the
/// module notes.
pub struct CborListDecoder<K> {
    limits: CodecLimits,
    frames: FrameDecoder,
    /// Body bytes received.
    seen: u64,
    state: CborState,
    meta: ListPageMeta,
    items: VecDeque<K>,
}

impl<K> CborListDecoder<K> {
    /// A decoder with these limits.
    pub fn new(limits: CodecLimits) -> Self {
        Self {
            limits,
            frames: FrameDecoder::new(
                Framing::CborSequence,
                watch::Limits {
                    max_frame: limits.max_frame,
                },
            ),
            seen: 0,
            state: CborState::Top,
            meta: ListPageMeta::default(),
            items: VecDeque::new(),
        }
    }
}

fn frame_error(limits: &CodecLimits, e: watch::DecodeError) -> DecodeError {
    match e {
        watch::DecodeError::FrameTooLarge { .. } => item_too_large(limits),
        other => DecodeError::Malformed {
            what: "list body",
            message: other.to_string(),
        },
    }
}

fn cbor_error(what: &'static str, e: cbor::Error) -> DecodeError {
    DecodeError::Malformed {
        what,
        message: e.to_string(),
    }
}

impl<K: DeserializeOwned> CborListDecoder<K> {
    /// The head at the front of the unscanned bytes, once complete.
    fn head(&self) -> Option<(u8, u8, u64, usize)> {
        cbor_head(self.frames.unscanned())
    }

    /// The next complete data item, decoded by `read`.
    fn item<T>(
        &mut self,
        read: impl FnOnce(&[u8]) -> Result<T, DecodeError>,
    ) -> Result<Option<T>, DecodeError> {
        match self.frames.next_frame() {
            Ok(Some(range)) => read(self.frames.bytes(range)).map(Some),
            Ok(None) => Ok(None),
            Err(e) => Err(frame_error(&self.limits, e)),
        }
    }

    fn advance(&mut self) -> Result<(), DecodeError> {
        let result = self.advance_inner();
        self.frames.compact();
        result
    }

    fn advance_inner(&mut self) -> Result<(), DecodeError> {
        let unexpected = |what: &str| DecodeError::Malformed {
            what: "list body",
            message: format!("not a CBOR list: {what}"),
        };
        loop {
            match self.state {
                CborState::Done => return Ok(()),
                CborState::Top => {
                    let Some((major, info, arg, len)) = self.head() else {
                        return Ok(());
                    };
                    self.frames.consume(len);
                    self.state = match (major, info) {
                        (6, _) => CborState::Top,
                        (5, 31) => CborState::Entries(None),
                        (5, _) if arg == 0 => CborState::Done,
                        (5, _) => CborState::Entries(Some(arg)),
                        _ => return Err(unexpected("the body is not a map")),
                    };
                }
                CborState::Entries(left) => {
                    if left.is_none() && self.frames.unscanned().first() == Some(&0xff) {
                        self.frames.consume(1);
                        self.state = CborState::Done;
                        continue;
                    }
                    let Some(key) = self.item(|b| {
                        let item = cbor::read_item(b).map_err(|e| cbor_error("list key", e))?;
                        Ok(key_text(&item).map(<[u8]>::to_vec))
                    })?
                    else {
                        return Ok(());
                    };
                    self.state = match key.as_deref() {
                        Some(b"items") => CborState::ItemsHead(left),
                        Some(b"kind") => CborState::Value(Key::Kind, left),
                        Some(b"metadata") => CborState::Value(Key::Metadata, left),
                        _ => CborState::Value(Key::Other, left),
                    };
                }
                CborState::Value(key, left) => {
                    let done = self.item(|b| {
                        match key {
                            Key::Kind => {
                                let kind: String =
                                    cbor::decode(b).map_err(|e| cbor_error("list kind", e))?;
                                if kind == "Table" {
                                    return Err(DecodeError::UnexpectedKind(kind));
                                }
                            }
                            Key::Metadata => {
                                let meta: ListMeta =
                                    cbor::decode(b).map_err(|e| cbor_error("list metadata", e))?;
                                return Ok(Some(meta));
                            }
                            Key::Other => {}
                        }
                        Ok(None)
                    })?;
                    let Some(meta) = done else {
                        return Ok(());
                    };
                    if let Some(meta) = meta {
                        self.meta = ListPageMeta {
                            resource_version: meta.resource_version.unwrap_or_default(),
                            continue_token: meta.continue_.filter(|c| !c.is_empty()),
                        };
                    }
                    self.state = entry_done(left);
                }
                CborState::ItemsHead(left) => {
                    let Some((major, info, arg, len)) = self.head() else {
                        return Ok(());
                    };
                    self.frames.consume(len);
                    self.state = match (major, info) {
                        (6, _) => CborState::ItemsHead(left),
                        // null
                        (7, 22) => entry_done(left),
                        (4, 31) => CborState::Items(None, left),
                        (4, _) if arg == 0 => entry_done(left),
                        (4, _) => CborState::Items(Some(arg), left),
                        _ => return Err(unexpected("items is not an array")),
                    };
                }
                CborState::Items(elements, left) => {
                    if elements.is_none() && self.frames.unscanned().first() == Some(&0xff) {
                        self.frames.consume(1);
                        self.state = entry_done(left);
                        continue;
                    }
                    let index = self.items.len();
                    let Some(item) = self.item(|b| {
                        cbor::decode::<K>(b).map_err(|e| DecodeError::Malformed {
                            what: "list item",
                            message: format!("item {index}: {e}"),
                        })
                    })?
                    else {
                        return Ok(());
                    };
                    self.items.push_back(item);
                    self.state = match elements {
                        Some(1) => entry_done(left),
                        Some(n) => CborState::Items(Some(n - 1), left),
                        None => CborState::Items(None, left),
                    };
                }
            }
        }
    }
}

/// A map key's bytes: a text or byte string, tags unwrapped.
fn key_text<'i>(mut item: &'i cbor::Item<'_>) -> Option<&'i [u8]> {
    while let cbor::Item::Tag(_, inner) = item {
        item = inner;
    }
    match item {
        cbor::Item::Bytes(b) => Some(b),
        cbor::Item::Text(t) => Some(t.as_bytes()),
        _ => None,
    }
}

impl<K: DeserializeOwned + Send> ListDecoder<K> for CborListDecoder<K> {
    fn push(&mut self, chunk: &[u8]) -> Result<(), DecodeError> {
        check_body(&self.limits, self.seen, chunk)?;
        self.seen += chunk.len() as u64;
        // Framed in steps, so a huge chunk never grows the buffer far past
        // one item.
        for piece in chunk.chunks(64 << 10) {
            self.frames.push(piece);
            self.advance()?;
        }
        Ok(())
    }

    fn poll_item(&mut self) -> Option<K> {
        self.items.pop_front()
    }

    fn finish(&mut self) -> Result<ListPageMeta, DecodeError> {
        if self.state != CborState::Done {
            return Err(DecodeError::Malformed {
                what: "list body",
                message: format!("byte {}: the body ends inside the list", self.seen),
            });
        }
        Ok(std::mem::take(&mut self.meta))
    }
}
