//! CBOR (`application/cbor`, RFC 8949) as Kubernetes writes and reads it
//! (KEP-4222): every item opens with the self-described tag 55799
//! (`d9 d9 f7`), Go strings and map keys are *byte* strings, `[]byte` is tag
//! 22 around a byte string, floats take their shortest exact width.
//!
//! [`decode`] reads any `DeserializeOwned` type — k8s-openapi's own types —
//! leniently where the server's decoder is (byte or text strings anywhere,
//! indefinite lengths, tags 0/1 on times, unknown tags unwrapped) and strictly
//! where it is (duplicate map keys, invalid UTF-8, integers beyond int64,
//! simple values other than false/true/null are errors). It is bounded: every
//! length is checked against the input left, nesting stops at
//! [`MAX_DEPTH`]. [`encode`] writes what the server expects.
//!
//! This module owns the codec only; the `application/cbor-seq` watch framing
//! lives in [`crate::watch`].
//!
//! ```
//! use k8s_openapi::api::core::v1::Pod;
//! use windlass_proto::codec::cbor;
//!
//! let mut pod = Pod::default();
//! pod.metadata.name = Some("web-0".into());
//! let bytes = cbor::encode(&pod).unwrap();
//! assert!(bytes.starts_with(&[0xd9, 0xd9, 0xf7]));
//! let back: Pod = cbor::decode(&bytes).unwrap();
//! assert_eq!(back, pod);
//! ```

mod de;
mod read;
mod ser;

use serde::Serialize;
use serde::de::DeserializeOwned;

pub use read::MAX_DEPTH;

pub(crate) use de::ItemDeserializer;
pub(crate) use read::{Item, read_item};

/// The self-described CBOR tag that opens every Kubernetes CBOR item.
pub const SELF_DESCRIBED_TAG: u64 = 55799;

/// A CBOR body that could not be decoded or a value that could not be encoded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    /// The input ended inside an item.
    #[error("CBOR input ends inside an item (at byte {offset})")]
    Truncated {
        /// Where the input ended.
        offset: usize,
    },
    /// A length prefix claims more bytes (or elements) than are left.
    #[error("CBOR length {len} at byte {offset} exceeds the {remaining} bytes left")]
    LengthExceedsInput {
        /// The item's first byte.
        offset: usize,
        /// The declared length.
        len: u64,
        /// Bytes left after the head.
        remaining: usize,
    },
    /// Structure CBOR forbids (reserved additional information, a stray break, …).
    #[error("malformed CBOR at byte {offset}: {what}")]
    Malformed {
        /// The offending byte.
        offset: usize,
        /// What is wrong.
        what: &'static str,
    },
    /// Arrays, maps and tags nest deeper than the limit.
    #[error("CBOR nests deeper than {limit} levels at byte {offset}")]
    TooDeep {
        /// Where the limit was crossed.
        offset: usize,
        /// [`MAX_DEPTH`].
        limit: usize,
    },
    /// An integer outside the int64 range.
    #[error("CBOR integer at byte {offset} is outside the int64 range")]
    IntegerOutOfRange {
        /// The integer's first byte.
        offset: usize,
    },
    /// A map repeats a key.
    #[error("CBOR map at byte {offset} repeats a key")]
    DuplicateKey {
        /// The map's first byte.
        offset: usize,
    },
    /// A text string is not UTF-8.
    #[error("CBOR text string at byte {offset} is not valid UTF-8")]
    InvalidUtf8 {
        /// The string's first byte.
        offset: usize,
    },
    /// A simple value other than false, true and null.
    #[error("CBOR simple value {value} at byte {offset} is not false, true or null")]
    SimpleValue {
        /// Its first byte.
        offset: usize,
        /// The simple value's number.
        value: u64,
    },
    /// A NaN or infinite float, which Kubernetes refuses.
    #[error("CBOR float at byte {offset} is NaN or infinite")]
    NonFiniteFloat {
        /// Its first byte.
        offset: usize,
    },
    /// Bytes after the one item a body holds.
    #[error("{count} bytes follow the CBOR item")]
    TrailingBytes {
        /// How many.
        count: usize,
    },
    /// The item does not fit the type it is read into (from serde).
    #[error("CBOR item does not fit the target type: {0}")]
    Message(String),
    /// A value Kubernetes' CBOR cannot carry.
    #[error("cannot encode as Kubernetes CBOR: {0}")]
    Unsupported(&'static str),
}

impl serde::de::Error for Error {
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        Self::Message(msg.to_string())
    }
}

impl serde::ser::Error for Error {
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        Self::Message(msg.to_string())
    }
}

/// Decodes one CBOR item (with or without the 55799 prefix) into `K`.
pub fn decode<K: DeserializeOwned>(body: &[u8]) -> Result<K, Error> {
    let item = read_item(body)?;
    K::deserialize(ItemDeserializer(&item))
}

/// Encodes `value` as one self-described CBOR item.
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, Error> {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(crate::codec::CBOR_MAGIC);
    value.serialize(ser::Encoder { out: &mut out })?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[derive(Debug, PartialEq, serde::Deserialize, serde::Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Meta {
        name: String,
    }

    #[derive(Debug, PartialEq, serde::Deserialize, serde::Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Obj {
        api_version: String,
        kind: String,
        metadata: Meta,
    }

    #[test]
    fn cbor_decodes_the_apimachinery_test_vector() {
        // cbor_test.go: d9d9f7 a3 4a"apiVersion" 41"v" 44"kind" 41"k" 48"metadata" a1 44"name" 43"foo"
        let mut body = hex("d9d9f7 a3 4a");
        body.extend_from_slice(b"apiVersion");
        body.extend_from_slice(&hex("41"));
        body.extend_from_slice(b"v");
        body.extend_from_slice(&hex("44"));
        body.extend_from_slice(b"kind");
        body.extend_from_slice(&hex("41"));
        body.extend_from_slice(b"k");
        body.extend_from_slice(&hex("48"));
        body.extend_from_slice(b"metadata");
        body.extend_from_slice(&hex("a1 44"));
        body.extend_from_slice(b"name");
        body.extend_from_slice(&hex("43"));
        body.extend_from_slice(b"foo");
        let obj: Obj = decode(&body).unwrap();
        assert_eq!(
            obj,
            Obj {
                api_version: "v".into(),
                kind: "k".into(),
                metadata: Meta { name: "foo".into() }
            }
        );
        assert_eq!(encode(&obj).unwrap(), body, "encoder writes the same bytes");
    }

    #[test]
    fn cbor_tag22_reads_as_base64_for_bytestring() {
        // {"data": 22(h'010203')}
        let body = hex("a1 44 64617461 d6 43 010203");
        let map: BTreeMap<String, k8s_openapi::ByteString> = decode(&body).unwrap();
        assert_eq!(map["data"].0, vec![1, 2, 3]);
        let map: BTreeMap<String, String> = decode(&body).unwrap();
        assert_eq!(map["data"], "AQID");
    }

    #[test]
    fn cbor_accepts_indefinite_lengths_and_text_strings() {
        // {_ "name": (_ h'666f' h'6f')}
        let body = hex("bf 64 6e616d65 5f 42 666f 41 6f ff ff");
        let meta: Meta = decode(&body).unwrap();
        assert_eq!(meta.name, "foo");
    }

    #[test]
    fn cbor_unwraps_unknown_tags_and_times() {
        // {"name": 12345("foo")}
        let body = hex("a1 44 6e616d65 d9 3039 43 666f6f");
        assert_eq!(decode::<Meta>(&body).unwrap().name, "foo");
        // {"t": 1(1199149261)} into a k8s Time
        let body = hex("a1 41 74 c1 1a 477990cd");
        let map: BTreeMap<String, k8s_openapi::apimachinery::pkg::apis::meta::v1::Time> =
            decode(&body).unwrap();
        assert_eq!(
            serde_json::to_string(&map["t"]).unwrap(),
            "\"2008-01-01T01:01:01Z\""
        );
    }

    #[test]
    fn cbor_rejects_what_kubernetes_rejects() {
        type Expect = fn(&Error) -> bool;
        let cases: &[(&str, Expect)] = &[
            // duplicate key, byte and text spelling of the same name
            ("a2 41 61 01 61 61 02", |e| {
                matches!(e, Error::DuplicateKey { .. })
            }),
            // invalid UTF-8 text
            ("62 c328", |e| matches!(e, Error::InvalidUtf8 { .. })),
            // 2^63
            ("1b 8000000000000000", |e| {
                matches!(e, Error::IntegerOutOfRange { .. })
            }),
            // -2^63 - 1
            ("3b 8000000000000000", |e| {
                matches!(e, Error::IntegerOutOfRange { .. })
            }),
            // undefined, simple(16)
            ("f7", |e| matches!(e, Error::SimpleValue { value: 23, .. })),
            ("f0", |e| matches!(e, Error::SimpleValue { .. })),
            // stray break
            ("ff", |e| matches!(e, Error::Malformed { .. })),
            // a 4 GiB byte string in 6 bytes
            ("5a ffffffff 00", |e| {
                matches!(e, Error::LengthExceedsInput { .. })
            }),
            // an array claiming 2^64-1 elements
            ("9b ffffffffffffffff", |e| {
                matches!(e, Error::LengthExceedsInput { .. })
            }),
            // truncated
            ("a1 41 61", |e| matches!(e, Error::Truncated { .. })),
            ("01 02", |e| matches!(e, Error::TrailingBytes { count: 1 })),
            // NaN (half)
            ("f9 7e00", |e| matches!(e, Error::NonFiniteFloat { .. })),
        ];
        for (input, expected) in cases {
            let err = decode::<serde_json::Value>(&hex(input)).unwrap_err();
            assert!(expected(&err), "{input}: unexpected {err:?}");
        }
    }

    #[test]
    fn cbor_nesting_is_bounded() {
        let body = vec![0x81; 10_000];
        let err = decode::<serde_json::Value>(&body).unwrap_err();
        assert!(
            matches!(
                err,
                Error::TooDeep {
                    limit: MAX_DEPTH,
                    ..
                }
            ),
            "{err:?}"
        );
        let mut ok = vec![0x81; MAX_DEPTH];
        ok.push(0x01);
        decode::<serde_json::Value>(&ok).unwrap();
    }

    #[test]
    fn cbor_floats_take_the_shortest_exact_width() {
        for (value, expected) in [
            (0.0, "f9 0000"),
            (-0.0, "f9 8000"),
            (1.0, "f9 3c00"),
            (1.5, "f9 3e00"),
            (65504.0, "f9 7bff"),
            (5.960464477539063e-8, "f9 0001"),
            (100000.0, "fa 47c35000"),
            (3.4028234663852886e38, "fa 7f7fffff"),
            (1.1, "fb 3ff199999999999a"),
        ] {
            let mut out = Vec::new();
            value.serialize(ser::Encoder { out: &mut out }).unwrap();
            assert_eq!(out, hex(expected), "{value}");
            assert_eq!(decode::<f64>(&out).unwrap().to_bits(), f64::to_bits(value));
        }
        assert!(encode(&f64::NAN).is_err());
        assert!(encode(&f64::INFINITY).is_err());
        assert!(encode(&u64::MAX).is_err());
    }

    #[test]
    fn cbor_encoder_writes_byte_strings_and_definite_lengths() {
        let value = serde_json::json!({"a": ["x", 1, -2, true, null]});
        let bytes = encode(&value).unwrap();
        assert_eq!(bytes, hex("d9d9f7 a1 41 61 85 41 78 01 21 f5 f6"));
        let back: serde_json::Value = decode(&bytes).unwrap();
        assert_eq!(back, value);
    }
}
