//! What the server writes: the response body (whole, or a stream of chunks
//! for watches), content negotiation from the `Accept` header, the encoding
//! of a value in the negotiated format, and `Status` error responses. This
//! module owns the wire shape of answers; which answer to give is the
//! handler's.
//!
//! Encoding goes through one function, [`encode`]: one match arm per format
//! (JSON, protobuf, CBOR, through windlass-proto's codecs), plus the
//! format's entry in [`SERVED_FORMATS`].

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use hyper::body::Frame;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Status, StatusCause, StatusDetails};
use serde_json::Value;
use tokio::sync::mpsc;
use windlass_proto::codec::{Format, PROTOBUF_MAGIC, cbor, protobuf};

use crate::model::{List, StatusError};

/// The formats this server writes, in its order of preference.
pub const SERVED_FORMATS: &[Format] = &[Format::Json, Format::Protobuf, Format::Cbor];

/// `value` in `format`, or `None` when it cannot be written so (a kind
/// protobuf has no message for: custom resources, discovery documents).
pub fn encode(format: Format, value: &Value) -> Option<Vec<u8>> {
    match format {
        Format::Json => {
            // Go's json.Encoder ends each value with a newline.
            let mut out = serde_json::to_vec(value).ok()?;
            out.push(b'\n');
            Some(out)
        }
        Format::Protobuf => encode_protobuf(value),
        Format::Cbor => cbor::encode(value).ok(),
    }
}

/// `k8s\0` + `runtime.Unknown{typeMeta, raw}`, the message chosen by the
/// value's `apiVersion` and `kind` (which the message itself does not carry).
fn encode_protobuf(value: &Value) -> Option<Vec<u8>> {
    let api_version = value["apiVersion"].as_str()?;
    let kind = value["kind"].as_str()?;
    let message = protobuf::message_name(api_version, kind)?;
    let mut body = value.clone();
    let map = body.as_object_mut()?;
    map.remove("apiVersion");
    map.remove("kind");
    let raw = protobuf::encode_message(message, &Dynamic(&body)).ok()?;
    Some(envelope(api_version, kind, &raw))
}

fn envelope(api_version: &str, kind: &str, raw: &[u8]) -> Vec<u8> {
    let mut type_meta = Vec::new();
    put_bytes(&mut type_meta, 1, api_version.as_bytes());
    put_bytes(&mut type_meta, 2, kind.as_bytes());
    let mut out = Vec::with_capacity(raw.len() + type_meta.len() + 16);
    out.extend_from_slice(PROTOBUF_MAGIC);
    put_bytes(&mut out, 1, &type_meta);
    put_bytes(&mut out, 2, raw);
    put_bytes(&mut out, 3, b"");
    put_bytes(&mut out, 4, b"");
    out
}

/// A list page in `format`, written from the model's objects without
/// copying them: the same bytes as encoding [`List::to_json`] (keys in the
/// same order), without building that value first — a list of 50,000 Pods
/// would otherwise be cloned whole two or three times per request.
pub fn encode_list(format: Format, list: &List) -> Option<Vec<u8>> {
    match format {
        Format::Json => {
            let mut out = serde_json::to_vec(&ListBody {
                list,
                protobuf: false,
            })
            .ok()?;
            out.push(b'\n');
            Some(out)
        }
        Format::Protobuf => {
            let message = protobuf::message_name(&list.api_version, &list.kind)?;
            let body = ListBody {
                list,
                protobuf: true,
            };
            let raw = protobuf::encode_message(message, &body).ok()?;
            Some(envelope(&list.api_version, &list.kind, &raw))
        }
        Format::Cbor => cbor::encode(&ListBody {
            list,
            protobuf: false,
        })
        .ok(),
    }
}

/// [`value_response`] for a list page; see [`encode_list`].
pub fn list_response(code: StatusCode, format: Format, list: &List) -> Response<Body> {
    let (format, bytes) = match encode_list(format, list) {
        Some(bytes) => (format, Some(bytes)),
        None => (Format::Json, encode_list(Format::Json, list)),
    };
    bytes_response(code, format, bytes)
}

/// A list as [`List::to_json`] shapes it (keys sorted, as a `Value` map
/// has them); for protobuf, without the type the envelope carries and with
/// its items written as [`Dynamic`] values.
struct ListBody<'a> {
    list: &'a List,
    protobuf: bool,
}

impl serde::Serialize for ListBody<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let list = self.list;
        let mut out = serializer.serialize_map(Some(if self.protobuf { 2 } else { 4 }))?;
        if !self.protobuf {
            out.serialize_entry("apiVersion", &list.api_version)?;
        }
        out.serialize_entry("items", &ListItems(self))?;
        if !self.protobuf {
            out.serialize_entry("kind", &list.kind)?;
        }
        out.serialize_entry("metadata", &ListMeta(list))?;
        out.end()
    }
}

struct ListItems<'a>(&'a ListBody<'a>);

impl serde::Serialize for ListItems<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let list = self.0.list;
        let mut out = serializer.serialize_seq(Some(list.items.len()))?;
        for item in &list.items {
            out.serialize_element(&ListItem {
                value: item,
                strip_type: !list.items_carry_type,
                dynamic: self.0.protobuf,
            })?;
        }
        out.end()
    }
}

/// One item, without `kind` and `apiVersion` unless the list's items carry
/// their type (custom resources).
struct ListItem<'a> {
    value: &'a Value,
    strip_type: bool,
    dynamic: bool,
}

impl serde::Serialize for ListItem<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let Value::Object(map) = self.value else {
            return if self.dynamic {
                Dynamic(self.value).serialize(serializer)
            } else {
                self.value.serialize(serializer)
            };
        };
        let skip = |key: &str| self.strip_type && (key == "kind" || key == "apiVersion");
        let len = map.keys().filter(|k| !skip(k)).count();
        let mut out = serializer.serialize_map(Some(len))?;
        for (key, value) in map {
            if skip(key) {
                continue;
            }
            if !self.dynamic {
                out.serialize_entry(key, value)?;
            } else if RAW_JSON_FIELDS.contains(&key.as_str()) {
                out.serialize_entry(key, &RawJson(value))?;
            } else {
                out.serialize_entry(key, &Dynamic(value))?;
            }
        }
        out.end()
    }
}

struct ListMeta<'a>(&'a List);

impl serde::Serialize for ListMeta<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let list = self.0;
        let len = 1
            + usize::from(list.continue_token.is_some())
            + usize::from(list.remaining_item_count.is_some());
        let mut out = serializer.serialize_map(Some(len))?;
        if let Some(token) = &list.continue_token {
            out.serialize_entry("continue", token)?;
        }
        if let Some(n) = list.remaining_item_count {
            out.serialize_entry("remainingItemCount", &Value::from(n))?;
        }
        out.serialize_entry("resourceVersion", &list.resource_version)?;
        out.end()
    }
}

/// Fields whose protobuf message holds raw JSON (`FieldsV1`, and `JSON` in
/// CRD schemas): the codec takes them as newtype structs, as k8s-openapi's
/// own types serialize them, not as the maps a dynamic value has.
const RAW_JSON_FIELDS: [&str; 3] = ["fieldsV1", "default", "example"];

/// A dynamic object serialized the way its typed form would be.
struct Dynamic<'a>(&'a Value);

impl serde::Serialize for Dynamic<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap, SerializeSeq};
        match self.0 {
            Value::Object(map) => {
                let mut out = serializer.serialize_map(Some(map.len()))?;
                for (key, value) in map {
                    if RAW_JSON_FIELDS.contains(&key.as_str()) {
                        out.serialize_entry(key, &RawJson(value))?;
                    } else {
                        out.serialize_entry(key, &Dynamic(value))?;
                    }
                }
                out.end()
            }
            Value::Array(items) => {
                let mut out = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    out.serialize_element(&Dynamic(item))?;
                }
                out.end()
            }
            other => other.serialize(serializer),
        }
    }
}

struct RawJson<'a>(&'a Value);

impl serde::Serialize for RawJson<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_newtype_struct("RawJson", self.0)
    }
}

/// A length-delimited protobuf field.
pub fn put_bytes(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    put_varint(out, u64::from(field << 3 | 2));
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn put_varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// A stream body ended on purpose mid-stream (a fault): the connection is
/// dropped without the final chunk.
#[derive(Debug, thiserror::Error)]
#[error("stream cut by fault injection")]
pub struct StreamCut;

/// A response body: whole, or chunks from a channel (one chunk per watch
/// event, each flushed as it is sent).
#[derive(Debug)]
pub enum Body {
    /// The whole body (taken on the first poll).
    Full(Option<Bytes>),
    /// Chunks until the sender is dropped; an `Err` aborts the connection.
    Stream(mpsc::Receiver<Result<Bytes, StreamCut>>),
}

impl Body {
    /// An empty body.
    pub fn empty() -> Self {
        Self::Full(None)
    }
}

impl hyper::body::Body for Body {
    type Data = Bytes;
    type Error = StreamCut;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, StreamCut>>> {
        match self.get_mut() {
            Self::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            Self::Stream(rx) => rx
                .poll_recv(cx)
                .map(|chunk| chunk.map(|r| r.map(Frame::data))),
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, Self::Full(None))
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        match self {
            Self::Full(Some(b)) => hyper::body::SizeHint::with_exact(b.len() as u64),
            Self::Full(None) => hyper::body::SizeHint::with_exact(0),
            Self::Stream(_) => hyper::body::SizeHint::default(),
        }
    }
}

/// What a response carries, as the `as=` parameter of `Accept` chose it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// The object or list itself.
    Object,
    /// `meta.k8s.io/v1` `Table` (kubectl get).
    Table,
    /// `PartialObjectMetadata` / `PartialObjectMetadataList` (metadata client).
    Metadata,
    /// Aggregated discovery `apidiscovery.k8s.io/v2` `APIGroupDiscoveryList`.
    Discovery,
}

/// A negotiated response: its format and shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Negotiated {
    /// The encoding.
    pub format: Format,
    /// The shape.
    pub shape: Shape,
}

/// Which shapes an endpoint can produce besides [`Shape::Object`].
#[derive(Clone, Copy, Debug)]
pub enum Offers {
    /// Only the plain object (discovery documents, `/version`).
    Object,
    /// Objects, tables and metadata (resource endpoints).
    Resource,
    /// The plain document or aggregated discovery (`/api`, `/apis`).
    Discovery,
}

/// Chooses the format and shape from `Accept` (`negotiation/negotiate.go`):
/// the first acceptable media range wins, by `q` and then by order; an
/// absent or empty header means JSON. No acceptable range is 406.
pub fn negotiate(accept: Option<&str>, offers: Offers) -> Result<Negotiated, StatusError> {
    let accept = accept.unwrap_or("").trim();
    if accept.is_empty() {
        return Ok(Negotiated {
            format: Format::Json,
            shape: Shape::Object,
        });
    }
    let mut ranges: Vec<(f32, usize, &str)> = accept
        .split(',')
        .enumerate()
        .map(|(i, r)| (quality(r), i, r.trim()))
        .filter(|(q, _, _)| *q > 0.0)
        .collect();
    ranges.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    for (_, _, range) in ranges {
        if let Some(n) = acceptable(range, offers) {
            return Ok(n);
        }
    }
    Err(status_error(
        406,
        "NotAcceptable",
        "only the following media types are accepted: application/json, application/vnd.kubernetes.protobuf, application/cbor".to_owned(),
    ))
}

fn quality(range: &str) -> f32 {
    range
        .split(';')
        .skip(1)
        .filter_map(|p| p.trim().strip_prefix("q="))
        .find_map(|q| q.trim().parse::<f32>().ok())
        .unwrap_or(1.0)
}

fn acceptable(range: &str, offers: Offers) -> Option<Negotiated> {
    let mut parts = range.split(';');
    let media = parts.next()?.trim().to_ascii_lowercase();
    let (mut as_, mut g, mut v) = (None, None, None);
    for p in parts {
        let (k, val) = p.split_once('=')?;
        let val = val.trim().trim_matches('"');
        match k.trim() {
            "as" => as_ = Some(val),
            "g" => g = Some(val),
            "v" => v = Some(val),
            _ => {}
        }
    }
    let format = match media.as_str() {
        "*/*" | "application/*" => SERVED_FORMATS[0],
        "application/json" => Format::Json,
        "application/vnd.kubernetes.protobuf" => Format::Protobuf,
        "application/cbor" => Format::Cbor,
        _ => return None,
    };
    if !SERVED_FORMATS.contains(&format) {
        return None;
    }
    let shape = match (as_, g, v, offers) {
        (None, _, _, _) => Shape::Object,
        (Some("Table"), Some("meta.k8s.io"), Some("v1" | "v1beta1"), Offers::Resource) => {
            Shape::Table
        }
        (
            Some("PartialObjectMetadata" | "PartialObjectMetadataList"),
            Some("meta.k8s.io"),
            Some("v1" | "v1beta1"),
            Offers::Resource,
        ) => Shape::Metadata,
        (
            Some("APIGroupDiscoveryList"),
            Some("apidiscovery.k8s.io"),
            Some("v2"),
            Offers::Discovery,
        ) => Shape::Discovery,
        _ => return None,
    };
    Some(Negotiated { format, shape })
}

/// A `Status` failure with `code`, `reason` and `message`.
pub fn status_error(code: u16, reason: &str, message: String) -> StatusError {
    StatusError(Box::new(Status {
        code: Some(i32::from(code)),
        reason: Some(reason.to_owned()),
        message: Some(message),
        status: Some("Failure".to_owned()),
        metadata: Default::default(),
        details: None,
    }))
}

/// A `Status` failure carrying `details.causes` and, optionally, `retryAfterSeconds`.
pub fn status_with_details(
    code: u16,
    reason: &str,
    message: String,
    causes: Vec<StatusCause>,
    retry_after: Option<u32>,
) -> StatusError {
    let mut e = status_error(code, reason, message);
    e.0.details = Some(StatusDetails {
        causes: (!causes.is_empty()).then_some(causes),
        retry_after_seconds: retry_after.and_then(|s| i32::try_from(s).ok()),
        ..StatusDetails::default()
    });
    e
}

/// A response with `value` encoded in `format`.
///
/// A value protobuf has no message for (a custom resource, a discovery
/// document) is written as JSON, as the real server does.
pub fn value_response(code: StatusCode, format: Format, value: &Value) -> Response<Body> {
    let (format, bytes) = match encode(format, value) {
        Some(bytes) => (format, Some(bytes)),
        None => (Format::Json, encode(Format::Json, value)),
    };
    bytes_response(code, format, bytes)
}

fn bytes_response(code: StatusCode, format: Format, bytes: Option<Vec<u8>>) -> Response<Body> {
    let Some(bytes) = bytes else {
        return error_response(&status_error(
            500,
            "InternalError",
            format!("no encoder for {}", format.media_type()),
        ));
    };
    let mut response = Response::new(Body::Full(Some(Bytes::from(bytes))));
    *response.status_mut() = code;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.media_type()),
    );
    response
}

/// The `Status` of `error` as a JSON response with its code (and
/// `Retry-After` when the status carries `retryAfterSeconds`).
pub fn error_response(error: &StatusError) -> Response<Body> {
    let mut value = error.to_json();
    if let Some(m) = value.as_object_mut() {
        m.insert("kind".into(), "Status".into());
        m.insert("apiVersion".into(), "v1".into());
        m.entry("metadata")
            .or_insert_with(|| Value::Object(Default::default()));
    }
    let code = StatusCode::from_u16(error.code()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = value_response(code, Format::Json, &value);
    if let Some(secs) = error
        .0
        .details
        .as_ref()
        .and_then(|d| d.retry_after_seconds)
        .filter(|s| *s > 0)
    {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apiserver_negotiate_prefers_table_for_kubectl_get() {
        let accept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";
        let n = negotiate(Some(accept), Offers::Resource).unwrap();
        assert_eq!(n.shape, Shape::Table);
        let n = negotiate(Some(accept), Offers::Object).unwrap();
        assert_eq!(n.shape, Shape::Object);
    }

    #[test]
    fn apiserver_negotiate_discovery_v2_only_on_discovery_endpoints() {
        let accept =
            "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json";
        assert_eq!(
            negotiate(Some(accept), Offers::Discovery).unwrap().shape,
            Shape::Discovery
        );
        assert_eq!(
            negotiate(Some(accept), Offers::Resource).unwrap().shape,
            Shape::Object
        );
    }

    #[test]
    fn apiserver_protobuf_response_decodes_into_the_typed_object() {
        use k8s_openapi::api::core::v1::Pod;
        let pod = serde_json::json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "web", "namespace": "default", "creationTimestamp": "2026-01-01T00:00:00Z",
                "managedFields": [{"manager": "m", "operation": "Update", "apiVersion": "v1",
                    "time": "2026-01-01T00:00:00Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {}}}]},
            "spec": {"containers": [{"name": "c", "image": "nginx", "ports": [{"containerPort": 80}]}]}});
        let body = encode(Format::Protobuf, &pod).expect("a Pod has a protobuf message");
        assert!(body.starts_with(PROTOBUF_MAGIC));
        let back: Pod = protobuf::decode(&body).unwrap();
        assert_eq!(back.metadata.name.as_deref(), Some("web"));
        let managed = back.metadata.managed_fields.unwrap();
        assert_eq!(
            managed[0].fields_v1.as_ref().unwrap().0,
            serde_json::json!({"f:spec": {}})
        );
        let spec = back.spec.unwrap();
        assert_eq!(
            spec.containers[0].ports.as_ref().unwrap()[0].container_port,
            80
        );
        // A custom resource has no message.
        let widget =
            serde_json::json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {}});
        assert_eq!(encode(Format::Protobuf, &widget), None);
    }

    #[test]
    fn apiserver_negotiate_unacceptable_is_406() {
        let e = negotiate(Some("text/html"), Offers::Resource).unwrap_err();
        assert_eq!((e.code(), e.reason()), (406, "NotAcceptable"));
        let e = negotiate(
            Some("application/json;as=Table;g=meta.k8s.io;v=v9"),
            Offers::Resource,
        )
        .unwrap_err();
        assert_eq!(e.code(), 406);
        // q=0 refuses a range; q orders the rest.
        let n = negotiate(
            Some("application/json;q=0.5,application/json;as=Table;g=meta.k8s.io;v=v1"),
            Offers::Resource,
        )
        .unwrap();
        assert_eq!(n.shape, Shape::Table);
    }

    #[test]
    fn apiserver_list_is_written_as_its_json_value_would_be_in_every_format() {
        use std::sync::Arc;
        let pod = |name: &str| {
            Arc::new(serde_json::json!({"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": name, "namespace": "default", "resourceVersion": "7",
                    "creationTimestamp": "2026-01-01T00:00:00Z",
                    "managedFields": [{"manager": "m", "operation": "Update", "apiVersion": "v1",
                        "time": "2026-01-01T00:00:00Z", "fieldsType": "FieldsV1",
                        "fieldsV1": {"f:spec": {"f:containers": {}}}}]},
                "spec": {"containers": [{"name": "c", "image": "nginx"}]}}))
        };
        let widget = Arc::new(serde_json::json!({"apiVersion": "example.com/v1",
            "kind": "Widget", "metadata": {"name": "w"}, "spec": {"size": 3}}));
        let pods = List {
            api_version: "v1".into(),
            kind: "PodList".into(),
            items: vec![pod("a"), pod("b")],
            resource_version: "9".into(),
            continue_token: Some("token".into()),
            remaining_item_count: Some(4),
            items_carry_type: false,
        };
        let widgets = List {
            api_version: "example.com/v1".into(),
            kind: "WidgetList".into(),
            items: vec![widget],
            resource_version: "3".into(),
            continue_token: None,
            remaining_item_count: None,
            items_carry_type: true,
        };
        for list in [&pods, &widgets] {
            for format in SERVED_FORMATS {
                assert_eq!(
                    encode_list(*format, list),
                    encode(*format, &list.to_json()),
                    "{} in {format:?}",
                    list.kind
                );
            }
        }
        assert!(encode_list(Format::Protobuf, &pods).is_some());
        assert_eq!(encode_list(Format::Protobuf, &widgets), None);
    }
}
