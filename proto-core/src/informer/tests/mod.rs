//! Tests of the informer machinery; each client-go scenario names its source
//! in a comment (`reference/client-go-semantics.md` §9).

mod fifo;
mod formats;
mod lister;
mod prop;
mod reflector;
mod shared;
mod store;
mod wire;

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{ConfigMap, Pod};

/// A cluster-scoped-looking ConfigMap `name` whose resourceVersion carries
/// client-go's test "value" (`foo10` = name foo, value 10).
pub(crate) fn cm(name: &str, value: u64) -> Arc<ConfigMap> {
    let mut c = ConfigMap::default();
    c.metadata.name = Some(name.into());
    c.metadata.resource_version = Some(value.to_string());
    Arc::new(c)
}

/// A pod in `ns` with the given labels and annotations.
pub(crate) fn pod(ns: &str, name: &str, labels: &[(&str, &str)]) -> Arc<Pod> {
    let mut p = Pod::default();
    p.metadata.namespace = Some(ns.into());
    p.metadata.name = Some(name.into());
    if !labels.is_empty() {
        p.metadata.labels = Some(
            labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
        );
    }
    Arc::new(p)
}
