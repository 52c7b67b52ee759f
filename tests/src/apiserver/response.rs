//! What the server writes: the response body (whole, or a stream of chunks
//! for watches), content negotiation from the `Accept` header, the encoding
//! of a value in the negotiated format, and `Status` error responses. This
//! module owns the wire shape of answers; which answer to give is the
//! handler's.
//!
//! Encoding goes through one function, [`encode`]: JSON today; protobuf and
//! CBOR are one match arm each there, plus their entry in [`SERVED_FORMATS`].

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use hyper::body::Frame;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Status, StatusCause, StatusDetails};
use serde_json::Value;
use tokio::sync::mpsc;
use windlass_proto::codec::Format;

use crate::model::StatusError;

/// The formats this server writes, in its order of preference.
pub const SERVED_FORMATS: &[Format] = &[Format::Json];

/// `value` in `format`, or `None` when the format is not served yet.
pub fn encode(format: Format, value: &Value) -> Option<Vec<u8>> {
    match format {
        Format::Json => {
            // Go's json.Encoder ends each value with a newline.
            let mut out = serde_json::to_vec(value).ok()?;
            out.push(b'\n');
            Some(out)
        }
        Format::Protobuf | Format::Cbor => None,
    }
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
        "only the following media types are accepted: application/json".to_owned(),
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
pub fn value_response(code: StatusCode, format: Format, value: &Value) -> Response<Body> {
    let Some(bytes) = encode(format, value) else {
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
}
