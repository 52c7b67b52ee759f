//! Content negotiation: the `Accept` a request sends for the representation
//! it wants, and the [`Format`] a response's `Content-Type` names.
//!
//! This module owns the media-type strings (wire-formats.md §6) and the
//! mapping back from a `Content-Type`. The choice of decoder for a body is the
//! response `Content-Type`, never the `Accept` that was sent: a server answers
//! protobuf requests for custom resources in JSON, and may answer
//! `as=PartialObjectMetadata` or `as=Table` with the plain object. It does not
//! decode bodies (that is [`crate::codec`]).

use crate::codec::Format;

const JSON: &str = "application/json";
const PROTOBUF: &str = "application/vnd.kubernetes.protobuf";
const CBOR: &str = "application/cbor";
const CBOR_SEQ: &str = "application/cbor-seq";

/// Which representation a request asks for; [`super::Builder`] turns it into `Accept`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Negotiation {
    /// `application/json` — what the dynamic client sends.
    #[default]
    Json,
    /// `application/vnd.kubernetes.protobuf,application/json` — protobuf, with
    /// JSON for kinds the server cannot encode as protobuf (custom resources,
    /// many aggregated APIs).
    Protobuf,
    /// `application/cbor` — CBOR only (a server without CBOR answers 406).
    Cbor,
    /// `application/json;q=0.9,application/cbor;q=1` — CBOR preferred, JSON
    /// accepted: client-go with `ClientsAllowCBOR`.
    CborOrJson,
    /// Metadata only, as JSON: `PartialObjectMetadata` for one object,
    /// `PartialObjectMetadataList` for lists and watches, with plain JSON as
    /// the fallback.
    Metadata,
    /// Metadata only, protobuf first, then JSON, then the plain object —
    /// what client-go's metadata client sends.
    MetadataProtobuf,
    /// A server-side `Table` (`meta.k8s.io/v1`), with the plain object as fallback.
    Table,
}

impl Negotiation {
    /// The `Accept` header for a request on one object (`collection == false`)
    /// or on a collection: list, watch (`collection == true`).
    pub fn accept(self, collection: bool) -> &'static str {
        match (self, collection) {
            (Self::Json, _) => JSON,
            (Self::Protobuf, _) => "application/vnd.kubernetes.protobuf,application/json",
            (Self::Cbor, _) => CBOR,
            (Self::CborOrJson, _) => "application/json;q=0.9,application/cbor;q=1",
            (Self::Metadata, false) => {
                "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json"
            }
            (Self::Metadata, true) => {
                "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"
            }
            (Self::MetadataProtobuf, false) => {
                "application/vnd.kubernetes.protobuf;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,\
                 application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json"
            }
            (Self::MetadataProtobuf, true) => {
                "application/vnd.kubernetes.protobuf;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,\
                 application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"
            }
            (Self::Table, _) => "application/json;as=Table;v=v1;g=meta.k8s.io,application/json",
        }
    }
}

/// `includeObject` on a `Table` request: what each row's `object` holds
/// (the server's default is `Metadata`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IncludeObject {
    /// No object.
    None,
    /// A `PartialObjectMetadata`.
    Metadata,
    /// The whole object.
    Object,
}

impl IncludeObject {
    /// The query-string value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "None",
            Self::Metadata => "Metadata",
            Self::Object => "Object",
        }
    }
}

/// The `Content-Type` of a request body in `format`.
pub fn content_type(format: Format) -> &'static str {
    format.media_type()
}

/// A response `Content-Type` that names no encoding windlass decodes.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ContentTypeError {
    /// A media type that is not JSON, protobuf or CBOR (e.g. `text/plain`).
    #[error("unsupported response Content-Type {0:?}")]
    Unsupported(String),
    /// `application/cbor` on a watch: client-go refuses it (a stream must be `application/cbor-seq`).
    #[error("a watch stream must be application/cbor-seq, not {0:?}")]
    CborWatchNotSequence(String),
}

/// The encoding a response body is in, judged by its `Content-Type`:
/// media-type case and parameters (`charset`, `stream=watch`, `as=…`) are
/// ignored; `application/cbor-seq` is CBOR. A missing header is JSON, as the
/// API server always labels non-JSON bodies.
pub fn response_format(content_type: Option<&str>) -> Result<Format, ContentTypeError> {
    let Some(raw) = content_type else {
        return Ok(Format::Json);
    };
    let media = raw.split(';').next().unwrap_or("").trim();
    if media.eq_ignore_ascii_case(JSON) || media.is_empty() {
        Ok(Format::Json)
    } else if media.eq_ignore_ascii_case(PROTOBUF) {
        Ok(Format::Protobuf)
    } else if media.eq_ignore_ascii_case(CBOR) || media.eq_ignore_ascii_case(CBOR_SEQ) {
        Ok(Format::Cbor)
    } else {
        Err(ContentTypeError::Unsupported(raw.to_owned()))
    }
}

/// The encoding of a watch stream by its `Content-Type`: as
/// [`response_format`], except that CBOR must be `application/cbor-seq`.
pub fn watch_format(content_type: Option<&str>) -> Result<Format, ContentTypeError> {
    let format = response_format(content_type)?;
    let media = content_type
        .and_then(|ct| ct.split(';').next())
        .unwrap_or("")
        .trim();
    if format == Format::Cbor && !media.eq_ignore_ascii_case(CBOR_SEQ) {
        return Err(ContentTypeError::CborWatchNotSequence(
            content_type.unwrap_or_default().to_owned(),
        ));
    }
    Ok(format)
}

/// Whether a `Content-Type` is `text/*` (client-go keeps such error bodies as the message).
pub fn is_text(content_type: Option<&str>) -> bool {
    content_type
        .and_then(|ct| ct.trim_start().get(..5))
        .is_some_and(|prefix| prefix.eq_ignore_ascii_case("text/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_negotiation_accept_strings() {
        assert_eq!(Negotiation::Json.accept(false), "application/json");
        assert_eq!(
            Negotiation::Protobuf.accept(true),
            "application/vnd.kubernetes.protobuf,application/json"
        );
        assert_eq!(
            Negotiation::CborOrJson.accept(false),
            "application/json;q=0.9,application/cbor;q=1"
        );
        assert_eq!(Negotiation::Cbor.accept(true), "application/cbor");
        assert_eq!(
            Negotiation::Metadata.accept(false),
            "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json"
        );
        assert_eq!(
            Negotiation::MetadataProtobuf.accept(true),
            "application/vnd.kubernetes.protobuf;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,\
             application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"
        );
        assert_eq!(
            Negotiation::Table.accept(true),
            "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
        );
        // Every Accept parses as an HTTP header value.
        for n in [
            Negotiation::Json,
            Negotiation::Protobuf,
            Negotiation::Cbor,
            Negotiation::CborOrJson,
            Negotiation::Metadata,
            Negotiation::MetadataProtobuf,
            Negotiation::Table,
        ] {
            for c in [false, true] {
                assert!(http::HeaderValue::from_str(n.accept(c)).is_ok());
            }
        }
    }

    #[test]
    fn response_content_type_maps_to_format() {
        let f = |ct| response_format(Some(ct));
        assert_eq!(f("application/json"), Ok(Format::Json));
        assert_eq!(f("Application/JSON; charset=utf-8"), Ok(Format::Json));
        assert_eq!(
            f("application/vnd.kubernetes.protobuf"),
            Ok(Format::Protobuf)
        );
        assert_eq!(
            f("application/vnd.kubernetes.protobuf;stream=watch"),
            Ok(Format::Protobuf)
        );
        assert_eq!(f("application/cbor"), Ok(Format::Cbor));
        assert_eq!(f("application/cbor-seq"), Ok(Format::Cbor));
        assert_eq!(
            f("application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"),
            Ok(Format::Json)
        );
        assert_eq!(response_format(None), Ok(Format::Json));
        assert_eq!(
            f("text/plain; charset=utf-8"),
            Err(ContentTypeError::Unsupported(
                "text/plain; charset=utf-8".into()
            ))
        );
        assert_eq!(watch_format(Some("application/cbor-seq")), Ok(Format::Cbor));
        assert!(matches!(
            watch_format(Some("application/cbor")),
            Err(ContentTypeError::CborWatchNotSequence(_))
        ));
        assert_eq!(
            watch_format(Some("application/vnd.kubernetes.protobuf;stream=watch")),
            Ok(Format::Protobuf)
        );
        assert!(is_text(Some("Text/Plain; charset=utf-8")));
        assert!(!is_text(Some("application/json")));
        assert!(!is_text(Some("tex")));
        assert!(!is_text(None));
    }
}
