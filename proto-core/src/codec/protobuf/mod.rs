//! Kubernetes protobuf (`application/vnd.kubernetes.protobuf`): the
//! `k8s\0` and `runtime.Unknown` envelope, decoded into and encoded from
//! **the same k8s-openapi types** the JSON codec uses.
//!
//! There is no second family of Rust types. A generated schema table
//! (`schema.rs`, written by `windlass-testkit`'s `gen-protobuf-schema` from
//! k8s-pb's field tags and k8s-openapi's JSON names) maps every Kubernetes
//! proto message to its fields. Decoding walks the protobuf bytes with that
//! table as a `serde::Deserializer`, handing the target type's own
//! `Deserialize` impl its JSON field names; encoding a k8s-openapi type is
//! code generated per type beside the table (`direct_gen.rs`: each field
//! written straight from the struct, a `Time` as its seconds), and encoding
//! anything else (a `DynamicObject`, a `serde_json::Value`) is a
//! `serde::Serializer` that turns the type's own `Serialize` output into
//! protobuf — the same bytes for the same object either way. Special
//! messages take their JSON shapes: `Time`/`MicroTime` (`{seconds, nanos}` ↔
//! RFC 3339), `Quantity`, `IntOrString`, `FieldsV1`/`RawExtension`/`JSON`
//! (raw JSON bytes; a `RawExtension` may also hold a `k8s\0` body), bytes
//! (base64, as k8s-openapi's `ByteString` expects), maps.
//!
//! ```
//! use k8s_openapi::api::core::v1::Pod;
//! use windlass_proto::codec::protobuf;
//!
//! let mut pod = Pod::default();
//! pod.metadata.name = Some("web-0".into());
//! let body = protobuf::encode(&pod)?;
//! assert!(body.starts_with(b"k8s\0"));
//! let back: Pod = protobuf::decode(&body)?;
//! assert_eq!(back.metadata.name.as_deref(), Some("web-0"));
//! # Ok::<(), protobuf::Error>(())
//! ```
//!
//! What it does not own: choosing the format (see [`super::Format`]) and
//! watch framing (the watch decoders hand each frame to [`decode_message`]).
//!
//! Go (gogo) writes every non-pointer field, so a decoded object holds
//! `Some("")`, `Some(0)` or `Some(false)` where the JSON encoding of the
//! same object omits the field: protobuf cannot say whether such a field
//! was set. Malformed input of any kind is an [`Error`] naming the message
//! and field; lengths are checked against the input, nesting is limited
//! to [`MAX_DEPTH`] messages.

mod de;
mod direct;
#[rustfmt::skip] // generated; `protobuf_schema_generated_file_is_current` checks it
mod direct_gen;
mod json_text;
#[rustfmt::skip] // generated; `protobuf_schema_generated_file_is_current` checks it
mod schema;
mod ser;
mod table;
mod wire;

pub use de::MAX_DEPTH;

use std::any::TypeId;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use serde::de::DeserializeOwned;

use wire::{Raw, Reader};

/// The 4 bytes that open every Kubernetes protobuf body.
pub const MAGIC: &[u8; 4] = super::PROTOBUF_MAGIC;

/// A protobuf body that could not be decoded or an object that could not
/// be encoded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The body does not start with `k8s\0`.
    #[error("protobuf body does not start with the k8s\\0 magic bytes")]
    NoMagic,
    /// The `runtime.Unknown` envelope is malformed.
    #[error("runtime.Unknown envelope: {0}")]
    Envelope(String),
    /// The envelope says the payload is not plain protobuf.
    #[error(
        "runtime.Unknown holds contentType {content_type:?}, contentEncoding {content_encoding:?}; only protobuf is decoded"
    )]
    NotProtobuf {
        /// The envelope's `contentType`.
        content_type: String,
        /// The envelope's `contentEncoding`.
        content_encoding: String,
    },
    /// No proto message is known for this kind.
    #[error("no protobuf message is known for kind {kind:?} of apiVersion {api_version:?}")]
    UnknownKind {
        /// The `apiVersion`.
        api_version: String,
        /// The `kind`.
        kind: String,
    },
    /// No proto message has this name.
    #[error("no protobuf message is named {0:?}")]
    UnknownMessage(String),
    /// A message's bytes, or a value in them, are malformed, or the target
    /// type rejected a value.
    #[error("{message}{}{field}: {what}", if field.is_empty() { "" } else { "." })]
    Malformed {
        /// The full proto name of the message.
        message: &'static str,
        /// The JSON name of the field, empty when the message as a whole is at fault.
        field: &'static str,
        /// What is wrong.
        what: String,
    },
    /// Messages nest deeper than [`MAX_DEPTH`].
    #[error("{message}: messages nest deeper than {limit}")]
    TooDeep {
        /// The message at which the limit was crossed.
        message: &'static str,
        /// The limit.
        limit: usize,
    },
    /// The target type's `Deserialize` or `Serialize` impl failed outside any field.
    #[error("{0}")]
    Custom(String),
}

/// Decode a protobuf body (`k8s\0` + `runtime.Unknown`) into `K`, choosing
/// the message by the envelope's `apiVersion` and `kind`.
///
/// `K` is any type that reads the JSON form of that kind: a k8s-openapi
/// type (`Pod`, `List<Pod>`, `Status`) or a dynamic one (`serde_json::Value`).
pub fn decode<K: DeserializeOwned>(body: &[u8]) -> Result<K, Error> {
    let (envelope, message) = open_envelope(body)?;
    deserialize(
        envelope.raw,
        message,
        Some((envelope.api_version, envelope.kind)),
    )
}

/// Decode a bare message (no envelope), named by its full proto name such as
/// `k8s.io.apimachinery.pkg.apis.meta.v1.WatchEvent`, into `K`.
pub fn decode_message<K: DeserializeOwned>(message_name: &str, raw: &[u8]) -> Result<K, Error> {
    let message = table::message_by_name(message_name)
        .ok_or_else(|| Error::UnknownMessage(message_name.to_owned()))?;
    deserialize(raw, message, None)
}

/// `raw` as `K`, read first on the assumption that every repeated and map
/// field sits in one run, as Go writes them (each read in one pass, without
/// looking at the rest of its message first), and read again gathering
/// each from wherever it occurs if one does not.
fn deserialize<'de, K: serde::Deserialize<'de>>(
    raw: &'de [u8],
    message: &'static table::Message,
    type_meta: Option<(&'de str, &'de str)>,
) -> Result<K, Error> {
    let mut scattered = false;
    loop {
        let mut de = de::MessageDe::new(raw, message, de::Depth::top(scattered));
        de.type_meta = type_meta;
        match K::deserialize(de) {
            Ok(value) => return Ok(value),
            Err(de::DeError::Scattered) if !scattered => scattered = true,
            Err(e) => return Err(in_message(e.into_error(), message.name)),
        }
    }
}

/// The message name of a watch event frame (`meta.v1.WatchEvent`).
pub const WATCH_EVENT: &str = "k8s.io.apimachinery.pkg.apis.meta.v1.WatchEvent";

/// The parts of a `k8s\0` + `runtime.Unknown` body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Envelope<'a> {
    /// `typeMeta.apiVersion` (may be empty).
    pub api_version: &'a str,
    /// `typeMeta.kind` (may be empty).
    pub kind: &'a str,
    /// The bare message.
    pub raw: &'a [u8],
}

/// Open a protobuf body without decoding its message: for a body whose
/// `TypeMeta` is empty or names a kind the caller resolves itself (then use
/// [`decode_message`] on `raw`).
pub fn envelope(body: &[u8]) -> Result<Envelope<'_>, Error> {
    let (api_version, kind, raw) = split_envelope(body)?;
    Ok(Envelope {
        api_version,
        kind,
        raw,
    })
}

/// The full proto name of the message that carries `kind` of `apiVersion`,
/// e.g. `("v1", "Pod")` → `k8s.io.api.core.v1.Pod`.
pub fn message_name(api_version: &str, kind: &str) -> Option<&'static str> {
    table::message_for_kind(api_version, kind).map(|m| m.name)
}

/// The full proto name of the items of list kind `kind` of `apiVersion`
/// (the message of its repeated `items` field), e.g. `("v1", "PodList")` →
/// `k8s.io.api.core.v1.Pod`: what an incremental list decoder hands each
/// item to [`decode_message`] as.
pub fn list_item_message(api_version: &str, kind: &str) -> Option<&'static str> {
    let list = table::message_for_kind(api_version, kind)?;
    let items = list.field_by_json("items").filter(|f| f.repeated)?;
    match items.ty {
        table::Type::Message(index) => Some(table::message(index).name),
        _ => None,
    }
}

fn in_message(e: Error, message: &'static str) -> Error {
    match e {
        Error::Custom(what) => Error::Malformed {
            message,
            field: "",
            what,
        },
        other => other,
    }
}

/// Split a `k8s\0` body into its `(apiVersion, kind)`, its raw message and
/// that message's schema.
fn open_envelope(body: &[u8]) -> Result<(Envelope<'_>, &'static table::Message), Error> {
    let envelope = envelope(body)?;
    let message =
        table::message_for_kind(envelope.api_version, envelope.kind).ok_or_else(|| {
            Error::UnknownKind {
                api_version: envelope.api_version.to_owned(),
                kind: envelope.kind.to_owned(),
            }
        })?;
    Ok((envelope, message))
}

fn split_envelope(body: &[u8]) -> Result<(&str, &str, &[u8]), Error> {
    let rest = body.strip_prefix(MAGIC.as_slice()).ok_or(Error::NoMagic)?;
    let envelope = |e: wire::WireError| Error::Envelope(e.to_string());
    let string = |raw: Raw<'_>, what: &str| -> Result<String, Error> {
        match raw {
            Raw::Len(b) => std::str::from_utf8(b)
                .map(str::to_owned)
                .map_err(|_| Error::Envelope(format!("{what} is not UTF-8"))),
            _ => Err(Error::Envelope(format!("{what} is not length-delimited"))),
        }
    };
    let mut type_meta: &[u8] = &[];
    let mut raw: &[u8] = &[];
    let mut content_encoding = String::new();
    let mut content_type = String::new();
    let mut reader = Reader::new(rest);
    while let Some((tag, value)) = reader.field().map_err(envelope)? {
        match (tag, value) {
            (1, Raw::Len(b)) => type_meta = b,
            (2, Raw::Len(b)) => raw = b,
            (3, v) => content_encoding = string(v, "contentEncoding")?,
            (4, v) => content_type = string(v, "contentType")?,
            (1 | 2, _) => {
                return Err(Error::Envelope(format!(
                    "field {tag} is not length-delimited"
                )));
            }
            _ => {}
        }
    }
    if !content_encoding.is_empty()
        || !(content_type.is_empty() || content_type == super::Format::Protobuf.media_type())
    {
        return Err(Error::NotProtobuf {
            content_type,
            content_encoding,
        });
    }
    let (mut api_version, mut kind) = ("", "");
    let mut reader = Reader::new(type_meta);
    while let Some((tag, value)) = reader.field().map_err(envelope)? {
        match (tag, value) {
            (1, Raw::Len(b)) => api_version = type_meta_text(b)?,
            (2, Raw::Len(b)) => kind = type_meta_text(b)?,
            _ => {}
        }
    }
    Ok((api_version, kind, raw))
}

fn type_meta_text(b: &[u8]) -> Result<&str, Error> {
    std::str::from_utf8(b).map_err(|_| Error::Envelope("TypeMeta is not UTF-8".into()))
}

/// Encode `object` as a protobuf body: `k8s\0` + `runtime.Unknown` with
/// `K`'s `apiVersion` and `kind`, and empty `contentEncoding` and
/// `contentType` as Go writes them.
///
/// A k8s-openapi type is written by code generated for it (its fields read
/// directly, a `Time` as its seconds); any other type through its
/// `Serialize` impl, as [`encode_as`] does. Both give the same bytes.
///
/// Fails when `K`'s kind has no proto message (custom resources: send JSON)
/// or when the object holds a field the message lacks.
pub fn encode<K: k8s_openapi::Resource + serde::Serialize + 'static>(
    object: &K,
) -> Result<Vec<u8>, Error> {
    encode_object(K::API_VERSION, K::KIND, object)
}

/// Whether [`encode`] writes a `K` by code generated for it (every
/// k8s-openapi type with a proto message, but the `JSONSchemaProps` family)
/// rather than through its `Serialize` impl.
pub fn encodes_directly<K: 'static>() -> bool {
    direct::encoder(TypeId::of::<K>()).is_some()
}

/// Encode `object` as a protobuf body of `kind` in `api_version`, by the
/// code generated for `T` when `T` has it for that kind's message (as
/// [`encode`]), else through its `Serialize` impl (as [`encode_as`]): for
/// a client whose object type is generic. A `T` written under another
/// kind's name goes the serde way, which refuses the fields that kind's
/// message lacks.
pub fn encode_object<T: serde::Serialize + 'static>(
    api_version: &str,
    kind: &str,
    object: &T,
) -> Result<Vec<u8>, Error> {
    let found = table::message_for_kind(api_version, kind);
    match direct::encoder(TypeId::of::<T>()) {
        Some((message, write))
            if found.is_some_and(|m| std::ptr::eq(m, table::message(message))) =>
        {
            in_envelope(api_version, kind, |body| {
                write(object, body).map_err(|e| in_message(*e, table::message(message).name))
            })
        }
        _ => encode_as(api_version, kind, object),
    }
}

/// Encode `object` as a protobuf body of `kind` in `api_version`: as
/// [`encode`], for a type that is not a k8s-openapi resource (a
/// `DynamicObject`, a `serde_json::Value` in the kind's JSON shape),
/// through its `Serialize` impl.
pub fn encode_as<T: serde::Serialize + ?Sized>(
    api_version: &str,
    kind: &str,
    object: &T,
) -> Result<Vec<u8>, Error> {
    let message = table::message_for_kind(api_version, kind).ok_or_else(|| Error::UnknownKind {
        api_version: api_version.to_owned(),
        kind: kind.to_owned(),
    })?;
    in_envelope(api_version, kind, |body| {
        serialize_message(object, message, body)
    })
}

/// The envelope around the message `write` appends.
fn in_envelope(
    api_version: &str,
    kind: &str,
    write: impl FnOnce(&mut Vec<u8>) -> Result<(), Error>,
) -> Result<Vec<u8>, Error> {
    // One buffer: the envelope, then the message written in place as its
    // `raw` field, sized by the last body encoded (objects of a stream are
    // alike) with some room to spare, and its length placeholder as wide as
    // that body's length needs (the bytes move at the end only when this
    // one's length needs a different width).
    static LAST_LEN: AtomicUsize = AtomicUsize::new(512);
    let last = LAST_LEN.load(Relaxed).clamp(64, 64 << 10);
    let mut body = Vec::with_capacity(last + last / 8 + 32);
    body.extend_from_slice(MAGIC);
    let type_meta = wire::open_len(&mut body, 1);
    wire::put_bytes(&mut body, 1, api_version.as_bytes());
    wire::put_bytes(&mut body, 2, kind.as_bytes());
    wire::close_len(&mut body, type_meta);
    let width = wire::varint_len(last as u64);
    let raw = wire::open_len_width(&mut body, 2, width);
    write(&mut body)?;
    wire::close_len_width(&mut body, raw, width);
    wire::put_bytes(&mut body, 3, b"");
    wire::put_bytes(&mut body, 4, b"");
    LAST_LEN.store(body.len(), Relaxed);
    Ok(body)
}

/// Encode `value` as a bare message (no envelope) named by its full proto
/// name, e.g. a `meta.v1.WatchEvent` frame.
pub fn encode_message<T: serde::Serialize + ?Sized>(
    message_name: &str,
    value: &T,
) -> Result<Vec<u8>, Error> {
    let message = table::message_by_name(message_name)
        .ok_or_else(|| Error::UnknownMessage(message_name.to_owned()))?;
    encode_message_bytes(value, message)
}

fn encode_message_bytes<T: serde::Serialize + ?Sized>(
    value: &T,
    message: &'static table::Message,
) -> Result<Vec<u8>, Error> {
    let mut raw = Vec::with_capacity(256);
    serialize_message(value, message, &mut raw)?;
    Ok(raw)
}

/// Append `value` to `out` as a bare `message`.
fn serialize_message<T: serde::Serialize + ?Sized>(
    value: &T,
    message: &'static table::Message,
    out: &mut Vec<u8>,
) -> Result<(), Error> {
    value
        .serialize(ser::MessageSer {
            sink: ser::Sink::Bare(out),
            message,
            depth: 0,
        })
        .map_err(|e| in_message(*e, message.name))
}

#[cfg(test)]
mod tests;
