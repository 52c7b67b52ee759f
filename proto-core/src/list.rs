//! A page of a list response, for any item type: `items` and the list
//! metadata (`resourceVersion`, `continue`, `remainingItemCount`).
//!
//! This module owns [`ObjectList`]. It is format-agnostic — the JSON codec
//! decodes into it through serde; other codecs may build it directly. It does
//! not paginate (that is the caller's loop, or the reflector's).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ListMeta;
use serde::Serialize;
use serde::de::{Deserialize, Deserializer};

/// One page of a list: `apiVersion`, `kind`, `metadata` and `items`.
///
/// `items: null` (an empty list from some servers) decodes as no items.
/// Items of built-in kinds carry no `apiVersion`/`kind`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, serde::Deserialize)]
#[serde(bound(deserialize = "K: Deserialize<'de>", serialize = "K: Serialize"))]
pub struct ObjectList<K> {
    /// `apiVersion` of the list, e.g. `v1` or `meta.k8s.io/v1`.
    #[serde(
        rename = "apiVersion",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub api_version: Option<String>,
    /// `kind` of the list, e.g. `PodList`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// `metadata`: resourceVersion, continue, remainingItemCount.
    #[serde(default)]
    pub metadata: ListMeta,
    /// `items`.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub items: Vec<K>,
}

impl<K> ObjectList<K> {
    /// `metadata.resourceVersion`: the version the whole list was read at.
    pub fn resource_version(&self) -> Option<&str> {
        self.metadata.resource_version.as_deref()
    }

    /// `metadata.continue`, when non-empty: there are more pages.
    pub fn continue_token(&self) -> Option<&str> {
        self.metadata.continue_.as_deref().filter(|c| !c.is_empty())
    }

    /// `metadata.remainingItemCount`: the server's estimate of what is left
    /// (absent with selectors).
    pub fn remaining_item_count(&self) -> Option<i64> {
        self.metadata.remaining_item_count
    }
}

fn null_as_empty<'de, D, K>(deserializer: D) -> Result<Vec<K>, D::Error>
where
    D: Deserializer<'de>,
    K: Deserialize<'de>,
{
    Ok(Option::<Vec<K>>::deserialize(deserializer)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Pod;

    #[test]
    fn list_null_items_and_continue_token() {
        let list: ObjectList<Pod> = serde_json::from_str(
            r#"{"kind":"PodList","apiVersion":"v1","metadata":{"resourceVersion":"9","continue":""},"items":null}"#,
        )
        .unwrap();
        assert!(list.items.is_empty());
        assert_eq!(list.resource_version(), Some("9"));
        assert_eq!(list.continue_token(), None);
        let list: ObjectList<Pod> = serde_json::from_str(
            r#"{"metadata":{"continue":"abc","remainingItemCount":3},"items":[{"metadata":{"name":"a"}}]}"#,
        )
        .unwrap();
        assert_eq!(list.continue_token(), Some("abc"));
        assert_eq!(list.remaining_item_count(), Some(3));
        assert_eq!(list.items[0].metadata.name.as_deref(), Some("a"));
        let missing: ObjectList<Pod> = serde_json::from_str("{}").unwrap();
        assert!(missing.items.is_empty());
    }
}
