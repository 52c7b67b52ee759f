//! What the core needs to know about a Kubernetes object: its metadata, and
//! the key the store and the queues file it under. This module owns the
//! [`Object`] trait and [`ObjectKey`]; it does not own any object type.

use std::fmt;
use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

/// An object with standard Kubernetes metadata.
///
/// Every k8s-openapi type with `ObjectMeta` implements it through the blanket
/// implementation below; dynamic objects implement it by hand.
pub trait Object {
    /// The object's metadata.
    fn meta(&self) -> &ObjectMeta;
    /// The object's metadata, mutably (for transforms such as dropping `managedFields`).
    fn meta_mut(&mut self) -> &mut ObjectMeta;

    /// The key the store files this object under: `namespace/name`, or `name`
    /// alone when the object has no namespace (client-go's `MetaNamespaceKeyFunc`).
    fn key(&self) -> ObjectKey {
        let meta = self.meta();
        ObjectKey::new(
            meta.namespace.as_deref(),
            meta.name.as_deref().unwrap_or(""),
        )
    }

    /// The object's `metadata.resourceVersion`, if any.
    fn resource_version(&self) -> Option<&str> {
        self.meta().resource_version.as_deref()
    }
}

impl<K> Object for K
where
    K: k8s_openapi::Metadata<Ty = ObjectMeta>,
{
    fn meta(&self) -> &ObjectMeta {
        self.metadata()
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        self.metadata_mut()
    }
}

/// `namespace/name`, or `name` for a cluster-scoped object — client-go's
/// store key. Cheap to clone (one shared allocation).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectKey(Arc<str>);

impl ObjectKey {
    /// The key of an object in `namespace` (or cluster-scoped when `None` or empty).
    pub fn new(namespace: Option<&str>, name: &str) -> Self {
        match namespace {
            Some(ns) if !ns.is_empty() => Self(format!("{ns}/{name}").into()),
            _ => Self(name.into()),
        }
    }

    /// The key of a namespaced object.
    pub fn namespaced(namespace: &str, name: &str) -> Self {
        Self::new(Some(namespace), name)
    }

    /// The key of a cluster-scoped object.
    pub fn cluster(name: &str) -> Self {
        Self::new(None, name)
    }

    /// A key from its string form, as client-go's `SplitMetaNamespaceKey` reads it.
    pub fn from_raw(key: &str) -> Self {
        Self(key.into())
    }

    /// The key as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The namespace part, if the key has one.
    pub fn namespace(&self) -> Option<&str> {
        self.0.split_once('/').map(|(ns, _)| ns)
    }

    /// The name part.
    pub fn name(&self) -> &str {
        self.0.split_once('/').map_or(&self.0, |(_, name)| name)
    }
}

impl fmt::Debug for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for ObjectKey {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_key_namespaced_and_cluster_forms() {
        let k = ObjectKey::namespaced("kube-system", "coredns");
        assert_eq!(k.as_str(), "kube-system/coredns");
        assert_eq!(k.namespace(), Some("kube-system"));
        assert_eq!(k.name(), "coredns");
        let c = ObjectKey::new(Some(""), "node-1");
        assert_eq!(c.as_str(), "node-1");
        assert_eq!(c.namespace(), None);
        assert_eq!(c.name(), "node-1");
    }
}
