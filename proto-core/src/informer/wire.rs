//! The reflector's narrow seam to the wire layer: how list and watch
//! requests are built ([`ListerWatcher`]) and how bodies are decoded
//! ([`Codec`], [`ListDecoder`], [`WatchDecoder`]). The reflector depends only
//! on these traits; this module also ships a JSON implementation of them
//! ([`ResourceRequests`], [`JsonCodec`]) so an informer works out of the box.
//! Protobuf and CBOR bodies plug in behind the same traits.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::marker::PhantomData;

use bytes::Bytes;
use http::response::Parts;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ListMeta, ObjectMeta, Status};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::params::{ListParams, WatchParams};
use crate::watch::{Bookmark, WatchEvent};

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

/// Builds JSON list and watch requests for one resource path, e.g.
/// `/api/v1/namespaces/default/pods` or `/apis/apps/v1/deployments`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceRequests {
    path: String,
}

impl ResourceRequests {
    /// Requests against `path` (the collection's path, without a query).
    pub fn new(path: impl Into<String>) -> Self {
        Self { path: path.into() }
    }

    /// Requests for a k8s-openapi resource type, in `namespace` or across all.
    pub fn of<K: k8s_openapi::Resource>(namespace: Option<&str>) -> Self {
        let mut path = if K::GROUP.is_empty() {
            format!("/api/{}", K::VERSION)
        } else {
            format!("/apis/{}/{}", K::GROUP, K::VERSION)
        };
        if let Some(ns) = namespace {
            let _ = write!(path, "/namespaces/{}", percent_encode(ns));
        }
        let _ = write!(path, "/{}", K::URL_PATH_SEGMENT);
        Self { path }
    }

    fn request(
        &self,
        verb: &'static str,
        query: String,
    ) -> Result<http::Request<Bytes>, RequestError> {
        let uri = if query.is_empty() {
            self.path.clone()
        } else {
            format!("{}?{query}", self.path)
        };
        http::Request::get(uri)
            .header(http::header::ACCEPT, "application/json")
            .body(Bytes::new())
            .map_err(|e| RequestError {
                verb,
                message: e.to_string(),
            })
    }
}

impl ListerWatcher for ResourceRequests {
    fn list(&self, p: &ListParams) -> Result<http::Request<Bytes>, RequestError> {
        let mut q = Query::default();
        q.opt("labelSelector", p.label_selector.as_deref());
        q.opt("fieldSelector", p.field_selector.as_deref());
        q.opt("resourceVersion", p.resource_version.as_deref());
        q.opt(
            "resourceVersionMatch",
            p.resource_version_match.map(|m| m.as_str()),
        );
        q.opt(
            "limit",
            p.limit.filter(|l| *l > 0).map(|l| l.to_string()).as_deref(),
        );
        q.opt("continue", p.continue_token.as_deref());
        q.opt(
            "timeoutSeconds",
            p.timeout_seconds.map(|t| t.to_string()).as_deref(),
        );
        self.request("list", q.0)
    }

    fn watch(&self, p: &WatchParams) -> Result<http::Request<Bytes>, RequestError> {
        let mut q = Query::default();
        q.opt("watch", Some("true"));
        q.opt("labelSelector", p.label_selector.as_deref());
        q.opt("fieldSelector", p.field_selector.as_deref());
        q.opt("resourceVersion", p.resource_version.as_deref());
        q.opt(
            "resourceVersionMatch",
            p.resource_version_match.map(|m| m.as_str()),
        );
        q.opt(
            "timeoutSeconds",
            p.timeout_seconds.map(|t| t.to_string()).as_deref(),
        );
        if p.allow_watch_bookmarks {
            q.opt("allowWatchBookmarks", Some("true"));
        }
        q.opt(
            "sendInitialEvents",
            p.send_initial_events.map(|b| b.to_string()).as_deref(),
        );
        self.request("watch", q.0)
    }
}

#[derive(Default)]
struct Query(String);

impl Query {
    fn opt(&mut self, key: &str, value: Option<&str>) {
        let Some(value) = value else { return };
        if !self.0.is_empty() {
            self.0.push('&');
        }
        let _ = write!(self.0, "{key}={}", percent_encode(value));
    }
}

fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// Limits of the JSON decoders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JsonLimits {
    /// The largest list body (default 1 GiB).
    pub max_list_body: usize,
    /// The largest watch event (default 16 MiB, as client-go).
    pub max_watch_frame: usize,
}

impl Default for JsonLimits {
    fn default() -> Self {
        Self {
            max_list_body: 1 << 30,
            max_watch_frame: 16 << 20,
        }
    }
}

/// JSON bodies for a k8s-openapi (or any serde) object type.
pub struct JsonCodec<K> {
    limits: JsonLimits,
    _k: PhantomData<fn() -> K>,
}

impl<K> std::fmt::Debug for JsonCodec<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JsonCodec")
            .field("limits", &self.limits)
            .finish()
    }
}

impl<K> Default for JsonCodec<K> {
    fn default() -> Self {
        Self::new(JsonLimits::default())
    }
}

impl<K> JsonCodec<K> {
    /// A codec with these limits.
    pub fn new(limits: JsonLimits) -> Self {
        Self {
            limits,
            _k: PhantomData,
        }
    }
}

fn check_json(head: &Parts) -> Result<(), DecodeError> {
    let Some(ct) = head.headers.get(http::header::CONTENT_TYPE) else {
        return Ok(());
    };
    let ct = ct.to_str().unwrap_or("");
    if ct.starts_with("application/json") || ct.is_empty() {
        Ok(())
    } else {
        Err(DecodeError::UnsupportedContentType(ct.to_owned()))
    }
}

impl<K: DeserializeOwned + Send + 'static> Codec<K> for JsonCodec<K> {
    fn list_decoder(&self, head: &Parts) -> Result<Box<dyn ListDecoder<K>>, DecodeError> {
        check_json(head)?;
        Ok(Box::new(JsonListDecoder {
            body: Vec::new(),
            items: VecDeque::new(),
            limit: self.limits.max_list_body,
        }))
    }

    fn watch_decoder(&self, head: &Parts) -> Result<Box<dyn WatchDecoder<K>>, DecodeError> {
        check_json(head)?;
        Ok(Box::new(JsonWatchDecoder {
            buf: Vec::new(),
            start: 0,
            limit: self.limits.max_watch_frame,
            _k: PhantomData,
        }))
    }

    fn decode_status(&self, _head: &Parts, body: &[u8]) -> Option<Status> {
        serde_json::from_slice(body).ok()
    }
}

/// Buffers the whole list body and decodes it at the end.
struct JsonListDecoder<K> {
    body: Vec<u8>,
    items: VecDeque<K>,
    limit: usize,
}

#[derive(Deserialize)]
struct JsonList<K> {
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    metadata: ListMeta,
    #[serde(default = "Vec::new")]
    items: Vec<K>,
}

impl<K: DeserializeOwned + Send> ListDecoder<K> for JsonListDecoder<K> {
    fn push(&mut self, chunk: &[u8]) -> Result<(), DecodeError> {
        if self.body.len() + chunk.len() > self.limit {
            return Err(DecodeError::TooLarge {
                what: "list body",
                limit: self.limit,
            });
        }
        self.body.extend_from_slice(chunk);
        Ok(())
    }

    fn poll_item(&mut self) -> Option<K> {
        self.items.pop_front()
    }

    fn finish(&mut self) -> Result<ListPageMeta, DecodeError> {
        let body = std::mem::take(&mut self.body);
        let list: JsonList<K> =
            serde_json::from_slice(&body).map_err(|e| DecodeError::Malformed {
                what: "list body",
                message: e.to_string(),
            })?;
        if let Some(kind) = list.kind.filter(|k| k == "Table") {
            return Err(DecodeError::UnexpectedKind(kind));
        }
        self.items = list.items.into();
        Ok(ListPageMeta {
            resource_version: list.metadata.resource_version.unwrap_or_default(),
            continue_token: list.metadata.continue_.filter(|c| !c.is_empty()),
        })
    }
}

/// A stream of concatenated JSON watch events (no reliance on newlines).
struct JsonWatchDecoder<K> {
    buf: Vec<u8>,
    start: usize,
    limit: usize,
    _k: PhantomData<fn() -> K>,
}

#[derive(Deserialize)]
struct RawEvent {
    #[serde(rename = "type")]
    kind: String,
    object: serde_json::Value,
}

#[derive(Deserialize)]
struct BookmarkObject {
    #[serde(default)]
    metadata: ObjectMeta,
}

impl<K: DeserializeOwned> JsonWatchDecoder<K> {
    fn decode(raw: RawEvent) -> Result<WatchEvent<K>, DecodeError> {
        let malformed = |e: serde_json::Error| DecodeError::Malformed {
            what: "watch event object",
            message: e.to_string(),
        };
        Ok(match raw.kind.as_str() {
            "ADDED" => WatchEvent::Added(serde_json::from_value(raw.object).map_err(malformed)?),
            "MODIFIED" => {
                WatchEvent::Modified(serde_json::from_value(raw.object).map_err(malformed)?)
            }
            "DELETED" => {
                WatchEvent::Deleted(serde_json::from_value(raw.object).map_err(malformed)?)
            }
            "BOOKMARK" => {
                let b: BookmarkObject = serde_json::from_value(raw.object).map_err(malformed)?;
                WatchEvent::Bookmark(Bookmark {
                    resource_version: b.metadata.resource_version.unwrap_or_default(),
                    annotations: b.metadata.annotations.unwrap_or_default(),
                })
            }
            "ERROR" => WatchEvent::Error(Box::new(
                serde_json::from_value(raw.object).map_err(malformed)?,
            )),
            other => {
                return Err(DecodeError::Malformed {
                    what: "watch event",
                    message: format!("unknown event type {other:?}"),
                });
            }
        })
    }
}

impl<K: DeserializeOwned + Send> WatchDecoder<K> for JsonWatchDecoder<K> {
    fn push(&mut self, chunk: &[u8]) -> Result<(), DecodeError> {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        if self.buf.len() + chunk.len() > self.limit {
            return Err(DecodeError::TooLarge {
                what: "watch frame",
                limit: self.limit,
            });
        }
        self.buf.extend_from_slice(chunk);
        Ok(())
    }

    fn poll_event(&mut self) -> Option<Result<WatchEvent<K>, DecodeError>> {
        let rest = &self.buf[self.start..];
        let skip = rest.iter().take_while(|b| b.is_ascii_whitespace()).count();
        self.start += skip;
        if self.start == self.buf.len() {
            return None;
        }
        let mut stream =
            serde_json::Deserializer::from_slice(&self.buf[self.start..]).into_iter::<RawEvent>();
        match stream.next()? {
            Ok(raw) => {
                self.start += stream.byte_offset();
                Some(Self::decode(raw))
            }
            Err(e) if e.is_eof() => None,
            Err(e) => {
                // Skip the rest: the stream cannot be resynchronised.
                self.start = self.buf.len();
                Some(Err(DecodeError::Malformed {
                    what: "watch event",
                    message: e.to_string(),
                }))
            }
        }
    }

    fn finish(&mut self) -> Result<(), DecodeError> {
        if self.buf[self.start..].iter().all(u8::is_ascii_whitespace) {
            Ok(())
        } else {
            Err(DecodeError::Malformed {
                what: "watch stream",
                message: "cut inside an event".into(),
            })
        }
    }
}
