//! Objects whose type is known only at run time: [`DynamicObject`] (any
//! kind, fields kept as JSON values — custom resources, discovery-driven
//! tools) and [`PartialObjectMetadata`] (metadata only, what the metadata
//! client receives), plus the [`TypeMeta`] they carry.
//!
//! This module owns these types and their [`Object`] implementations. It does
//! not decode bodies ([`crate::codec::json`]) and does not know schemas: a
//! `DynamicObject` is whatever the server sent.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::list::ObjectList;
use crate::object::Object;
use crate::resource::ApiResource;

/// `apiVersion` and `kind`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TypeMeta {
    /// `apiVersion`: `group/version`, or `version` for the core group.
    #[serde(rename = "apiVersion")]
    pub api_version: String,
    /// `kind`.
    pub kind: String,
}

/// An object of any kind: type, metadata, and every other field as JSON.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DynamicObject {
    /// `apiVersion` and `kind`, when the body had both (list items of
    /// built-in kinds have neither).
    #[serde(flatten, default)]
    pub types: Option<TypeMeta>,
    /// `metadata`.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// Every other top-level field (`spec`, `status`, `data`, …), as a JSON object.
    #[serde(flatten)]
    pub data: Value,
}

impl DynamicObject {
    /// An empty object of `resource`'s kind, named `name`.
    pub fn new(name: impl Into<String>, resource: &ApiResource) -> Self {
        Self {
            types: Some(TypeMeta {
                api_version: resource.api_version.clone(),
                kind: resource.kind.clone(),
            }),
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..ObjectMeta::default()
            },
            data: Value::Object(serde_json::Map::new()),
        }
    }

    /// The same object in `namespace`.
    pub fn within(mut self, namespace: impl Into<String>) -> Self {
        self.metadata.namespace = Some(namespace.into());
        self
    }

    /// The same object with `data` as its other fields (a JSON object).
    pub fn with_data(mut self, data: Value) -> Self {
        self.data = data;
        self
    }

    /// This object as a typed one, through its JSON form.
    pub fn try_parse<K: DeserializeOwned>(&self) -> Result<K, serde_json::Error> {
        serde_json::to_value(self).and_then(serde_json::from_value)
    }
}

impl Object for DynamicObject {
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

/// Only the type and metadata of an object (`meta.k8s.io/v1`
/// `PartialObjectMetadata`), as a server answers
/// `Accept: application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1`.
///
/// Decoding a full object into it keeps the metadata and drops the rest, so
/// it also reads a server's plain-object fallback.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PartialObjectMetadata {
    /// `apiVersion` and `kind`: `meta.k8s.io/v1` `PartialObjectMetadata`, or
    /// the object's own when the server fell back to the plain object.
    #[serde(flatten, default)]
    pub types: Option<TypeMeta>,
    /// `metadata`.
    #[serde(default)]
    pub metadata: ObjectMeta,
}

impl Object for PartialObjectMetadata {
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

/// `meta.k8s.io/v1` `PartialObjectMetadataList`.
pub type PartialObjectMetadataList = ObjectList<PartialObjectMetadata>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resource::Scope;
    use k8s_openapi::api::core::v1::Pod;
    use serde_json::json;

    #[test]
    fn dynamic_object_keeps_type_metadata_and_other_fields_apart() {
        let obj: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "example.com/v1", "kind": "Foo",
            "metadata": {"name": "a", "namespace": "ns", "resourceVersion": "5"},
            "spec": {"x": 1}, "status": null
        }))
        .unwrap();
        assert_eq!(
            obj.types,
            Some(TypeMeta {
                api_version: "example.com/v1".into(),
                kind: "Foo".into()
            })
        );
        assert_eq!(obj.resource_version(), Some("5"));
        assert_eq!(obj.key().as_str(), "ns/a");
        assert_eq!(obj.data, json!({"spec": {"x": 1}, "status": null}));
        // And back, unchanged.
        assert_eq!(
            serde_json::to_value(&obj).unwrap(),
            json!({
                "apiVersion": "example.com/v1", "kind": "Foo",
                "metadata": {"name": "a", "namespace": "ns", "resourceVersion": "5"},
                "spec": {"x": 1}, "status": null
            })
        );
    }

    #[test]
    fn dynamic_object_without_types_and_typed_conversion() {
        let obj: DynamicObject =
            serde_json::from_value(json!({"metadata": {"name": "p"}, "spec": {"containers": []}}))
                .unwrap();
        assert_eq!(obj.types, None);
        let pods = ApiResource::of::<Pod>();
        let built = DynamicObject::new("p", &pods)
            .within("ns")
            .with_data(json!({"spec": {"containers": [{"name": "c", "image": "nginx"}]}}));
        let pod: Pod = built.try_parse().unwrap();
        assert_eq!(pod.metadata.namespace.as_deref(), Some("ns"));
        assert_eq!(
            pod.spec.unwrap().containers[0].image.as_deref(),
            Some("nginx")
        );
        // A default object (data Null) still serializes.
        assert_eq!(
            serde_json::to_value(DynamicObject::default()).unwrap(),
            json!({"metadata": {}})
        );
        let foo = ApiResource::new("example.com", "v1", "Foo", "foos", Scope::Cluster);
        assert!(DynamicObject::new("f", &foo).try_parse::<Pod>().is_err());
    }

    #[test]
    fn dynamic_partial_object_metadata_reads_full_objects_too() {
        let partial: PartialObjectMetadata = serde_json::from_value(json!({
            "kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
            "metadata": {"name": "p", "namespace": "ns", "labels": {"a": "b"}}
        }))
        .unwrap();
        assert_eq!(
            partial.types.as_ref().unwrap().kind,
            "PartialObjectMetadata"
        );
        assert_eq!(partial.key().as_str(), "ns/p");
        let fallback: PartialObjectMetadata = serde_json::from_value(json!({
            "kind": "Pod", "apiVersion": "v1", "metadata": {"name": "p"}, "spec": {"containers": []}
        }))
        .unwrap();
        assert_eq!(fallback.types.unwrap().kind, "Pod");
        assert_eq!(fallback.metadata.name.as_deref(), Some("p"));
    }
}
