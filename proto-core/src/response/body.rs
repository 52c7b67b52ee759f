//! Success bodies in any encoding: the response `Content-Type` picks the
//! codec — JSON, protobuf (`k8s\0` + `runtime.Unknown`) or CBOR — and every
//! one decodes into the same types (k8s-openapi's, `DynamicObject`,
//! `ObjectList<K>`). A server asked for protobuf answers custom resources in
//! JSON; this is where that stops mattering.

use http::{HeaderMap, Method, StatusCode};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Status;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::{ApiError, Deleted, Error, api_error, content_type};
use crate::codec::{Format, cbor, protobuf};
use crate::request::negotiation;

/// Why a protobuf or CBOR success body did not decode.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// The protobuf codec's error.
    #[error(transparent)]
    Protobuf(#[from] protobuf::Error),
    /// The CBOR codec's error.
    #[error(transparent)]
    Cbor(#[from] cbor::Error),
}

/// Classifies a response and decodes a success body into `K` by its
/// `Content-Type`. A 2xx body that is a `Failure` `Status` is an error too.
pub fn decode<K: DeserializeOwned>(
    method: &Method,
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<K, Error> {
    match success_format(method, status, headers, body)? {
        Format::Json => super::decode_json(method, status, headers, body),
        Format::Protobuf => {
            if let Some(failure) = protobuf_failure(body) {
                return Err(ApiError::from_status(failure, status, headers).into());
            }
            protobuf::decode(body).map_err(|e| codec_error(status, Format::Protobuf, e.into()))
        }
        Format::Cbor => cbor::decode(body).map_err(|e| codec_error(status, Format::Cbor, e.into())),
    }
}

/// Classifies a DELETE response in any encoding: the object, or a `Success` `Status`.
pub fn decode_delete<K: DeserializeOwned>(
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Deleted<K>, Error> {
    let format = success_format(&Method::DELETE, status, headers, body)?;
    let is_status = |kind: &str| kind == "Status";
    let decoded_status = match format {
        Format::Json => return super::decode_json_delete(status, headers, body),
        Format::Protobuf => match protobuf::envelope(body) {
            Ok(envelope) if is_status(envelope.kind) => Some(
                protobuf::decode::<Status>(body)
                    .map_err(|e| codec_error(status, format, e.into()))?,
            ),
            _ => None,
        },
        Format::Cbor => {
            let value: Value =
                cbor::decode(body).map_err(|e| codec_error(status, format, e.into()))?;
            if value
                .get("kind")
                .and_then(Value::as_str)
                .is_some_and(is_status)
            {
                Some(serde_json::from_value(value).map_err(|e| {
                    codec_error(status, format, cbor::Error::Message(e.to_string()).into())
                })?)
            } else {
                return serde_json::from_value(value)
                    .map(Deleted::Object)
                    .map_err(|e| {
                        codec_error(status, format, cbor::Error::Message(e.to_string()).into())
                    });
            }
        }
    };
    match decoded_status {
        Some(s) if s.status.as_deref() == Some("Success") => Ok(Deleted::Status(Box::new(s))),
        Some(s) => Err(ApiError::from_status(s, status, headers).into()),
        None => decode(&Method::DELETE, status, headers, body).map(Deleted::Object),
    }
}

/// The error of a non-2xx answer, else the encoding of the success body.
fn success_format(
    method: &Method,
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Format, Error> {
    if let Some(e) = api_error(method, status, headers, body) {
        return Err(e.into());
    }
    negotiation::response_format(content_type(headers))
        .map_err(|source| Error::ContentType { status, source })
}

/// A protobuf `Status` whose `status` is `Failure`, in a 2xx answer.
fn protobuf_failure(body: &[u8]) -> Option<Status> {
    let envelope = protobuf::envelope(body).ok()?;
    if envelope.kind != "Status" {
        return None;
    }
    super::protobuf_status::decode(body).filter(|s| s.status.as_deref() == Some("Failure"))
}

fn codec_error(status: StatusCode, format: Format, source: CodecError) -> Error {
    Error::Codec {
        status,
        format,
        source: Box::new(source),
    }
}
