//! The reflector's narrow seam to the wire layer: how list and watch
//! requests are built ([`ListerWatcher`]) and how bodies are decoded
//! ([`Codec`], [`ListDecoder`], [`WatchDecoder`]). The reflector depends only
//! on these traits. The wire layer implements them: [`crate::request::Builder`]
//! builds the requests, and [`StandardCodec`] decodes watch streams with
//! [`crate::watch::WatchDecoder`] (JSON, protobuf, CBOR), lists with
//! [`JsonListDecoder`], [`ProtobufListDecoder`] and [`CborListDecoder`]
//! (all incremental, chosen by the response's `Content-Type`) and error
//! bodies with [`crate::response::api_error`].

mod binary;

pub use binary::{CborListDecoder, ProtobufListDecoder};

use std::collections::VecDeque;
use std::marker::PhantomData;

use bytes::Bytes;
use http::response::Parts;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ListMeta, Status};
use serde::de::DeserializeOwned;

use crate::params::{ListParams, WatchParams};
use crate::watch::{self, WatchEvent};

/// An error building a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("building a {verb} request: {message}")]
pub struct RequestError {
    /// `list` or `watch`.
    pub verb: &'static str,
    /// What went wrong.
    pub message: String,
}

/// An error decoding a body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The response's content type is not one this codec reads.
    #[error("unsupported content type {0:?}")]
    UnsupportedContentType(String),
    /// A body or frame grew past its limit.
    #[error("{what} of more than {limit} bytes exceeds the limit")]
    TooLarge {
        /// `list body` or `watch frame`.
        what: &'static str,
        /// The limit in bytes.
        limit: usize,
    },
    /// The bytes are not what they should be.
    #[error("malformed {what}: {message}")]
    Malformed {
        /// `list body`, `watch event`, …
        what: &'static str,
        /// The parser's message.
        message: String,
    },
    /// A list of the wrong kind (e.g. a `Table`), which client-go rejects.
    #[error("unexpected list kind {0:?}")]
    UnexpectedKind(String),
}

/// Builds the list and watch requests of one resource (client-go's `ListerWatcher`).
pub trait ListerWatcher: Send {
    /// A list request with these parameters.
    fn list(&self, params: &ListParams) -> Result<http::Request<Bytes>, RequestError>;
    /// A watch request with these parameters.
    fn watch(&self, params: &WatchParams) -> Result<http::Request<Bytes>, RequestError>;
}

/// The metadata of a decoded list page.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListPageMeta {
    /// `metadata.resourceVersion`.
    pub resource_version: String,
    /// `metadata.continue`, when another page follows.
    pub continue_token: Option<String>,
}

/// Decodes one list response body, fed in chunks. An incremental
/// implementation yields items as soon as their bytes are complete, which
/// keeps the reflector's memory near one page even for an unpaginated list.
pub trait ListDecoder<K>: Send {
    /// Feeds body bytes.
    fn push(&mut self, chunk: &[u8]) -> Result<(), DecodeError>;
    /// The next decoded item, if one is ready.
    fn poll_item(&mut self) -> Option<K>;
    /// Ends the body; remaining items become available through `poll_item`.
    fn finish(&mut self) -> Result<ListPageMeta, DecodeError>;
}

/// Decodes one watch response body, fed in chunks.
pub trait WatchDecoder<K>: Send {
    /// Feeds body bytes.
    fn push(&mut self, chunk: &[u8]) -> Result<(), DecodeError>;
    /// The next complete event, if any.
    fn poll_event(&mut self) -> Option<Result<WatchEvent<K>, DecodeError>>;
    /// Ends the body; an error means it was cut inside an event.
    fn finish(&mut self) -> Result<(), DecodeError>;
}

/// Picks decoders for responses by their heads.
pub trait Codec<K>: Send {
    /// A decoder for a successful list response.
    fn list_decoder(&self, head: &Parts) -> Result<Box<dyn ListDecoder<K>>, DecodeError>;
    /// A decoder for a successful watch response.
    fn watch_decoder(&self, head: &Parts) -> Result<Box<dyn WatchDecoder<K>>, DecodeError>;
    /// The `Status` an error response carries, if it can be read.
    fn decode_status(&self, head: &Parts, body: &[u8]) -> Option<Status>;
}

impl ListerWatcher for crate::request::Builder {
    fn list(&self, params: &ListParams) -> Result<http::Request<Bytes>, RequestError> {
        crate::request::Builder::list(self, params).map_err(|e| RequestError {
            verb: "list",
            message: e.to_string(),
        })
    }

    fn watch(&self, params: &WatchParams) -> Result<http::Request<Bytes>, RequestError> {
        crate::request::Builder::watch(self, params).map_err(|e| RequestError {
            verb: "watch",
            message: e.to_string(),
        })
    }
}

/// Limits of the decoders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodecLimits {
    /// The largest list body (default 1 GiB).
    pub max_list_body: usize,
    /// The largest single list item or watch event (default 16 MiB, as client-go).
    pub max_frame: usize,
}

impl Default for CodecLimits {
    fn default() -> Self {
        Self {
            max_list_body: 1 << 30,
            max_frame: watch::Limits::DEFAULT_MAX_FRAME,
        }
    }
}

/// The wire layer's decoders for a serde object type (every k8s-openapi kind,
/// `DynamicObject`, `PartialObjectMetadata`).
pub struct StandardCodec<K> {
    limits: CodecLimits,
    _k: PhantomData<fn() -> K>,
}

impl<K> std::fmt::Debug for StandardCodec<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StandardCodec")
            .field("limits", &self.limits)
            .finish()
    }
}

impl<K> Default for StandardCodec<K> {
    fn default() -> Self {
        Self::new(CodecLimits::default())
    }
}

impl<K> StandardCodec<K> {
    /// A codec with these limits.
    pub fn new(limits: CodecLimits) -> Self {
        Self {
            limits,
            _k: PhantomData,
        }
    }
}

fn content_type(head: &Parts) -> &str {
    head.headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json")
}

impl<K: DeserializeOwned + Send + 'static> Codec<K> for StandardCodec<K> {
    fn list_decoder(&self, head: &Parts) -> Result<Box<dyn ListDecoder<K>>, DecodeError> {
        let ct = content_type(head);
        let media = ct.split(';').next().unwrap_or("").trim();
        if media.eq_ignore_ascii_case("application/json") {
            Ok(Box::new(JsonListDecoder::new(self.limits)))
        } else if media.eq_ignore_ascii_case("application/vnd.kubernetes.protobuf") {
            Ok(Box::new(ProtobufListDecoder::new(self.limits)))
        } else if media.eq_ignore_ascii_case("application/cbor") {
            Ok(Box::new(CborListDecoder::new(self.limits)))
        } else {
            Err(DecodeError::UnsupportedContentType(ct.to_owned()))
        }
    }

    fn watch_decoder(&self, head: &Parts) -> Result<Box<dyn WatchDecoder<K>>, DecodeError> {
        let limits = watch::Limits {
            max_frame: self.limits.max_frame,
        };
        watch::WatchDecoder::for_content_type(content_type(head), limits)
            .map(|d| Box::new(d) as Box<dyn WatchDecoder<K>>)
            .map_err(watch_error)
    }

    fn decode_status(&self, head: &Parts, body: &[u8]) -> Option<Status> {
        crate::response::api_error(&http::Method::GET, head.status, &head.headers, body)
            .map(|e| e.into_status())
    }
}

fn watch_error(e: watch::DecodeError) -> DecodeError {
    match e {
        watch::DecodeError::FrameTooLarge { limit, .. } => DecodeError::TooLarge {
            what: "watch frame",
            limit,
        },
        watch::DecodeError::UnsupportedContentType { content_type, .. } => {
            DecodeError::UnsupportedContentType(content_type)
        }
        other => DecodeError::Malformed {
            what: "watch stream",
            message: other.to_string(),
        },
    }
}

impl<K: DeserializeOwned + Send> WatchDecoder<K> for watch::WatchDecoder<K> {
    fn push(&mut self, chunk: &[u8]) -> Result<(), DecodeError> {
        watch::WatchDecoder::push(self, chunk).map_err(watch_error)
    }

    fn poll_event(&mut self) -> Option<Result<WatchEvent<K>, DecodeError>> {
        watch::WatchDecoder::poll_event(self).map(|r| r.map_err(watch_error))
    }

    fn finish(&mut self) -> Result<(), DecodeError> {
        watch::WatchDecoder::finish(self).map_err(watch_error)
    }
}

/// Decodes a JSON list body as it arrives: each element of `items` is
/// decoded as soon as its closing brace is seen and its bytes are dropped, so
/// the decoder holds at most one item's bytes (bounded by
/// [`CodecLimits::max_frame`]) plus the list's small metadata, however long
/// the list. This is what keeps an unpaginated relist from holding the
/// whole body and every decoded object at once.
pub struct JsonListDecoder<K> {
    limits: CodecLimits,
    state: ListState,
    /// The bytes of the value being captured (an item, or a top-level member).
    value: Vec<u8>,
    scan: ValueScan,
    key: Vec<u8>,
    kind: Option<String>,
    metadata: Option<Vec<u8>>,
    items: VecDeque<K>,
    /// Body bytes seen, for error offsets and the body limit.
    offset: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ListState {
    BeforeObject,
    ExpectKey,
    InKey {
        escape: bool,
    },
    ExpectColon,
    ExpectValue,
    /// Capturing a top-level member's value.
    InValue,
    BeforeItems,
    ExpectItem {
        first: bool,
    },
    InItem,
    AfterItem,
    AfterValue,
    Done,
}

/// Tracks where a JSON value ends: nesting depth and string state.
#[derive(Debug, Clone, Copy, Default)]
struct ValueScan {
    depth: u32,
    in_string: bool,
    escape: bool,
    /// A bare scalar (number, true, false, null): ends before a delimiter.
    scalar: bool,
}

/// What feeding one byte to a [`ValueScan`] found.
enum Scanned {
    /// The value continues; the byte is part of it.
    More,
    /// The value ended with this byte (included).
    EndIncluding,
    /// The value ended before this byte, which belongs to the outer level.
    EndBefore,
}

impl ValueScan {
    fn feed(&mut self, b: u8) -> Scanned {
        if self.in_string {
            if self.escape {
                self.escape = false;
            } else if b == b'\\' {
                self.escape = true;
            } else if b == b'"' {
                self.in_string = false;
                if self.depth == 0 {
                    return Scanned::EndIncluding;
                }
            }
            return Scanned::More;
        }
        if self.scalar {
            return if matches!(b, b',' | b'}' | b']') || b.is_ascii_whitespace() {
                Scanned::EndBefore
            } else {
                Scanned::More
            };
        }
        match b {
            b'"' => self.in_string = true,
            b'{' | b'[' => self.depth += 1,
            b'}' | b']' => {
                self.depth = self.depth.saturating_sub(1);
                if self.depth == 0 {
                    return Scanned::EndIncluding;
                }
            }
            _ if self.depth == 0 && !b.is_ascii_whitespace() => self.scalar = true,
            _ => {}
        }
        Scanned::More
    }
}

impl<K> JsonListDecoder<K> {
    /// A decoder with these limits.
    pub fn new(limits: CodecLimits) -> Self {
        Self {
            limits,
            state: ListState::BeforeObject,
            value: Vec::new(),
            scan: ValueScan::default(),
            key: Vec::new(),
            kind: None,
            metadata: None,
            items: VecDeque::new(),
            offset: 0,
        }
    }

    fn malformed(&self, what: &str) -> DecodeError {
        DecodeError::Malformed {
            what: "list body",
            message: format!("byte {}: {what}", self.offset),
        }
    }
}

impl<K: DeserializeOwned> JsonListDecoder<K> {
    fn capture(&mut self, b: u8) -> Result<(), DecodeError> {
        if self.value.len() >= self.limits.max_frame {
            return Err(DecodeError::TooLarge {
                what: "list item",
                limit: self.limits.max_frame,
            });
        }
        self.value.push(b);
        Ok(())
    }

    /// One top-level member's value is complete.
    fn member_done(&mut self) -> Result<(), DecodeError> {
        let value = std::mem::take(&mut self.value);
        match self.key.as_slice() {
            b"kind" => {
                let kind: String =
                    serde_json::from_slice(&value).map_err(|e| DecodeError::Malformed {
                        what: "list kind",
                        message: e.to_string(),
                    })?;
                if kind == "Table" {
                    return Err(DecodeError::UnexpectedKind(kind));
                }
                self.kind = Some(kind);
            }
            b"metadata" => self.metadata = Some(value),
            _ => {}
        }
        self.state = ListState::AfterValue;
        Ok(())
    }

    fn item_done(&mut self) -> Result<(), DecodeError> {
        let item: K = serde_json::from_slice(&self.value).map_err(|e| DecodeError::Malformed {
            what: "list item",
            message: format!("item {}: {e}", self.items.len()),
        })?;
        self.value.clear();
        self.items.push_back(item);
        self.state = ListState::AfterItem;
        Ok(())
    }

    fn feed(&mut self, b: u8) -> Result<(), DecodeError> {
        use ListState as S;
        match self.state {
            S::InItem | S::InValue => {
                let scanned = self.scan.feed(b);
                let in_item = self.state == S::InItem;
                match scanned {
                    Scanned::More => self.capture(b)?,
                    Scanned::EndIncluding => {
                        self.capture(b)?;
                        if in_item {
                            self.item_done()?
                        } else {
                            self.member_done()?
                        }
                    }
                    Scanned::EndBefore => {
                        if in_item {
                            self.item_done()?
                        } else {
                            self.member_done()?
                        }
                        return self.feed(b);
                    }
                }
                return Ok(());
            }
            S::InKey { escape } => {
                if escape {
                    self.key.push(b);
                    self.state = S::InKey { escape: false };
                } else if b == b'\\' {
                    self.key.push(b);
                    self.state = S::InKey { escape: true };
                } else if b == b'"' {
                    self.state = S::ExpectColon;
                } else if self.key.len() < 256 {
                    self.key.push(b);
                }
                return Ok(());
            }
            _ => {}
        }
        if b.is_ascii_whitespace() {
            return Ok(());
        }
        match (self.state, b) {
            (S::BeforeObject, b'{') => self.state = S::ExpectKey,
            (S::ExpectKey, b'"') => {
                self.key.clear();
                self.state = S::InKey { escape: false };
            }
            (S::ExpectKey, b'}') | (S::AfterValue, b'}') => self.state = S::Done,
            (S::ExpectColon, b':') => {
                self.state = if self.key == b"items" {
                    S::BeforeItems
                } else {
                    S::ExpectValue
                };
            }
            (S::ExpectValue, _) => {
                self.scan = ValueScan::default();
                self.state = S::InValue;
                return self.feed(b);
            }
            (S::BeforeItems, b'[') => self.state = S::ExpectItem { first: true },
            (S::BeforeItems, b'n') => {
                // `"items": null`: capture and ignore it like any other member.
                self.key.clear();
                self.scan = ValueScan::default();
                self.state = S::InValue;
                return self.feed(b);
            }
            (S::ExpectItem { first: true }, b']') | (S::AfterItem, b']') => {
                self.state = S::AfterValue;
            }
            (S::ExpectItem { .. }, _) => {
                self.scan = ValueScan::default();
                self.state = S::InItem;
                return self.feed(b);
            }
            (S::AfterItem, b',') => self.state = S::ExpectItem { first: false },
            (S::AfterValue, b',') => self.state = S::ExpectKey,
            _ => return Err(self.malformed(&format!("unexpected {:?}", b as char))),
        }
        Ok(())
    }
}

impl<K: DeserializeOwned + Send> ListDecoder<K> for JsonListDecoder<K> {
    fn push(&mut self, chunk: &[u8]) -> Result<(), DecodeError> {
        if self.offset.saturating_add(chunk.len() as u64) > self.limits.max_list_body as u64 {
            return Err(DecodeError::TooLarge {
                what: "list body",
                limit: self.limits.max_list_body,
            });
        }
        for &b in chunk {
            self.feed(b)?;
            self.offset += 1;
        }
        Ok(())
    }

    fn poll_item(&mut self) -> Option<K> {
        self.items.pop_front()
    }

    fn finish(&mut self) -> Result<ListPageMeta, DecodeError> {
        if self.state != ListState::Done {
            return Err(self.malformed("the body ends inside the list"));
        }
        let metadata: ListMeta = match &self.metadata {
            Some(bytes) => serde_json::from_slice(bytes).map_err(|e| DecodeError::Malformed {
                what: "list metadata",
                message: e.to_string(),
            })?,
            None => ListMeta::default(),
        };
        Ok(ListPageMeta {
            resource_version: metadata.resource_version.unwrap_or_default(),
            continue_token: metadata.continue_.filter(|c| !c.is_empty()),
        })
    }
}
