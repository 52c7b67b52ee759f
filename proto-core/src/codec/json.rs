//! JSON bodies (`application/json`): one object into any serde type — a
//! k8s-openapi kind, a [`DynamicObject`], a [`PartialObjectMetadata`] — a list
//! page into [`ObjectList`], and request bodies out.
//!
//! This module owns single-body JSON decoding and encoding. It does not
//! decode watch streams (the JSON stream decoder in [`crate::watch`]) and does
//! not classify error responses ([`crate::response`]).
//!
//! [`PartialObjectMetadata`]: crate::dynamic::PartialObjectMetadata
//!
//! ```
//! use k8s_openapi::api::core::v1::Pod;
//! use windlass_proto::codec::json;
//!
//! let mut pod = Pod::default();
//! pod.metadata.name = Some("web-0".into());
//! let body = json::encode(&pod)?;
//! assert!(body.starts_with(br#"{"apiVersion":"v1","kind":"Pod""#));
//! let back: Pod = json::decode(&body)?;
//! assert_eq!(back, pod);
//! # Ok::<(), json::JsonError>(())
//! ```

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::dynamic::DynamicObject;
use crate::list::ObjectList;

/// A JSON body that did not decode, or a value that did not encode.
#[derive(Debug, thiserror::Error)]
pub enum JsonError {
    /// The body is not valid JSON for the expected type.
    #[error("decoding {what} from JSON ({len} bytes): {source}")]
    Decode {
        /// The type expected.
        what: &'static str,
        /// The body's length.
        len: usize,
        /// serde_json's error, with line and column.
        #[source]
        source: serde_json::Error,
    },
    /// The value could not be written as JSON (e.g. a map with non-string keys).
    #[error("encoding {what} as JSON: {source}")]
    Encode {
        /// The type written.
        what: &'static str,
        /// serde_json's error.
        #[source]
        source: serde_json::Error,
    },
}

/// Decodes one object. A k8s-openapi type checks `apiVersion`/`kind` when
/// present and accepts their absence (list items); unknown fields are ignored.
pub fn decode<K: DeserializeOwned>(body: &[u8]) -> Result<K, JsonError> {
    serde_json::from_slice(body).map_err(|source| JsonError::Decode {
        what: std::any::type_name::<K>(),
        len: body.len(),
        source,
    })
}

/// Decodes one object of any kind.
pub fn decode_dynamic(body: &[u8]) -> Result<DynamicObject, JsonError> {
    decode(body)
}

/// Decodes a list page; `items: null` is an empty page.
pub fn decode_list<K: DeserializeOwned>(body: &[u8]) -> Result<ObjectList<K>, JsonError> {
    decode(body)
}

/// Encodes a request body. k8s-openapi types write their own `apiVersion` and
/// `kind`; a [`DynamicObject`] writes its `types` when set.
pub fn encode<K: Serialize + ?Sized>(value: &K) -> Result<Bytes, JsonError> {
    serde_json::to_vec(value)
        .map(Bytes::from)
        .map_err(|source| JsonError::Encode {
            what: std::any::type_name::<K>(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::core::v1::Pod;
    use serde_json::{Value, json};

    #[test]
    fn json_encode_sets_api_version_and_kind_for_typed_objects() {
        let mut deploy = Deployment::default();
        deploy.metadata.name = Some("web".into());
        let body: Value = serde_json::from_slice(&encode(&deploy).unwrap()).unwrap();
        assert_eq!(body["apiVersion"], "apps/v1");
        assert_eq!(body["kind"], "Deployment");
        assert_eq!(body["metadata"]["name"], "web");
    }

    #[test]
    fn json_decode_errors_name_the_type_and_never_panic() {
        let err = decode::<Pod>(br#"{"kind":"Service","apiVersion":"v1"}"#).unwrap_err();
        assert!(err.to_string().contains("Pod"), "{err}");
        for garbage in [
            &b""[..],
            b"{",
            b"\xff\xfe",
            b"[1,2",
            b"null",
            b"{\"metadata\":7}",
        ] {
            assert!(decode::<Pod>(garbage).is_err());
            assert!(decode_list::<Pod>(garbage).is_err());
            assert!(decode_dynamic(garbage).is_err());
        }
    }

    #[test]
    fn json_decode_dynamic_object() {
        let obj = decode_dynamic(
            br#"{"apiVersion":"example.com/v1","kind":"Foo","metadata":{"name":"a"},"spec":{"n":1}}"#,
        )
        .unwrap();
        assert_eq!(obj.types.unwrap().kind, "Foo");
        assert_eq!(obj.data, json!({"spec": {"n": 1}}));
    }
}
