//! Encodings of objects on the wire: JSON, protobuf (`k8s\0` + `runtime.Unknown`)
//! and CBOR (self-described, tag 55799). This module owns the choice of
//! encoding by content type or by magic bytes; each encoding lives in its own
//! submodule.

pub mod cbor;
pub mod json;

/// An encoding of objects on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// `application/json`.
    Json,
    /// `application/vnd.kubernetes.protobuf`.
    Protobuf,
    /// `application/cbor`.
    Cbor,
}

/// The 4 bytes that open every Kubernetes protobuf body.
pub const PROTOBUF_MAGIC: &[u8; 4] = b"k8s\0";
/// The self-described CBOR tag 55799, which opens every Kubernetes CBOR item.
pub const CBOR_MAGIC: &[u8; 3] = &[0xd9, 0xd9, 0xf7];

impl Format {
    /// The media type of a single object or list in this encoding.
    pub fn media_type(self) -> &'static str {
        match self {
            Self::Json => "application/json",
            Self::Protobuf => "application/vnd.kubernetes.protobuf",
            Self::Cbor => "application/cbor",
        }
    }

    /// The encoding of a body, judged by its first bytes: protobuf and CBOR
    /// carry magic numbers, anything else is taken for JSON.
    pub fn sniff(body: &[u8]) -> Self {
        if body.starts_with(PROTOBUF_MAGIC) {
            Self::Protobuf
        } else if body.starts_with(CBOR_MAGIC) {
            Self::Cbor
        } else {
            Self::Json
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniff_recognises_magic_numbers() {
        assert_eq!(Format::sniff(b"k8s\0\x0a"), Format::Protobuf);
        assert_eq!(Format::sniff(&[0xd9, 0xd9, 0xf7, 0xa0]), Format::Cbor);
        assert_eq!(Format::sniff(b"{\"kind\":\"Pod\"}"), Format::Json);
        assert_eq!(Format::sniff(b""), Format::Json);
    }
}
