//! Discovery documents, built from the model's registry on every request (so
//! a CRD created at run time is served at once): `/version`, `/api`,
//! `/apis` (legacy `APIVersions`/`APIGroupList`, or aggregated
//! `apidiscovery.k8s.io/v2` `APIGroupDiscoveryList` when `Accept` asks for
//! it), `/apis/<g>` and the resource lists `/api/v1` and `/apis/<g>/<v>`.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use serde_json::{Value, json};

use super::response::status_error;
use crate::model::{Registry, Resource, StatusError};

/// The version this server reports.
pub const GIT_VERSION: &str = "v1.34.0-windlass";

const VERBS: [&str; 8] = [
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

/// The media type of an aggregated discovery answer.
pub const AGGREGATED_CONTENT_TYPE: &str =
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

/// `/version`.
pub fn version() -> Value {
    json!({
        "major": "1",
        "minor": "34",
        "emulationMajor": "1",
        "emulationMinor": "34",
        "gitVersion": GIT_VERSION,
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "go1.24.0",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}

/// `/api` (legacy).
pub fn core_versions(addr: SocketAddr) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": addr.to_string()}],
    })
}

/// Groups (other than core) and their versions, in a stable order.
fn groups(registry: &Registry) -> BTreeMap<String, Vec<String>> {
    let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in registry.iter().filter(|r| !r.group.is_empty()) {
        let versions = groups.entry(r.group.clone()).or_default();
        for v in &r.versions {
            if !versions.contains(v) {
                versions.push(v.clone());
            }
        }
    }
    groups
}

fn group_json(name: &str, versions: &[String]) -> Value {
    let versions: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": format!("{name}/{v}"), "version": v}))
        .collect();
    json!({
        "name": name,
        "versions": versions,
        "preferredVersion": versions.first().cloned().unwrap_or(Value::Null),
    })
}

/// `/apis` (legacy).
pub fn group_list(registry: &Registry) -> Value {
    let groups: Vec<Value> = groups(registry)
        .iter()
        .map(|(name, versions)| group_json(name, versions))
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `/apis/<group>`.
pub fn group(registry: &Registry, name: &str) -> Result<Value, StatusError> {
    let groups = groups(registry);
    let versions = groups.get(name).ok_or_else(not_found)?;
    let mut doc = group_json(name, versions);
    doc["kind"] = "APIGroup".into();
    doc["apiVersion"] = "v1".into();
    Ok(doc)
}

/// `/api/v1` or `/apis/<group>/<version>`.
pub fn resource_list(
    registry: &Registry,
    group: &str,
    version: &str,
) -> Result<Value, StatusError> {
    let served: Vec<&Resource> = registry
        .iter()
        .filter(|r| r.group == group && r.serves(version))
        .collect();
    if served.is_empty() && !(group.is_empty() && version == "v1") {
        return Err(not_found());
    }
    let mut resources = Vec::new();
    for r in served {
        resources.push(json!({
            "name": r.plural,
            "singularName": r.singular,
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": VERBS,
            "shortNames": r.short_names,
            "categories": r.categories,
        }));
        if r.has_status {
            resources.push(json!({
                "name": format!("{}/status", r.plural),
                "singularName": "",
                "namespaced": r.namespaced,
                "kind": r.kind,
                "verbs": ["get", "patch", "update"],
            }));
        }
    }
    let group_version = if group.is_empty() {
        version.to_owned()
    } else {
        format!("{group}/{version}")
    };
    Ok(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": resources,
    }))
}

/// Aggregated discovery: the core group alone (`core = true`, for `/api`)
/// or every other group (`/apis`).
pub fn aggregated(registry: &Registry, core: bool) -> Value {
    let mut by_group: BTreeMap<&str, BTreeMap<&str, Vec<Value>>> = BTreeMap::new();
    for r in registry.iter().filter(|r| r.group.is_empty() == core) {
        for v in &r.versions {
            let kind = json!({"group": r.group, "version": v, "kind": r.kind});
            let mut resource = json!({
                "resource": r.plural,
                "responseKind": kind,
                "scope": if r.namespaced { "Namespaced" } else { "Cluster" },
                "singularResource": r.singular,
                "verbs": VERBS,
            });
            if !r.short_names.is_empty() {
                resource["shortNames"] = json!(r.short_names);
            }
            if !r.categories.is_empty() {
                resource["categories"] = json!(r.categories);
            }
            if r.has_status {
                resource["subresources"] = json!([{
                    "subresource": "status",
                    "responseKind": kind,
                    "verbs": ["get", "patch", "update"],
                }]);
            }
            by_group
                .entry(&r.group)
                .or_default()
                .entry(v)
                .or_default()
                .push(resource);
        }
    }
    let items: Vec<Value> = by_group
        .into_iter()
        .map(|(group, versions)| {
            let versions: Vec<Value> = versions
                .into_iter()
                .map(|(version, resources)| {
                    json!({"version": version, "resources": resources, "freshness": "Current"})
                })
                .collect();
            json!({"metadata": {"name": group, "creationTimestamp": null}, "versions": versions})
        })
        .collect();
    json!({
        "kind": "APIGroupDiscoveryList",
        "apiVersion": "apidiscovery.k8s.io/v2",
        "metadata": {},
        "items": items,
    })
}

/// `/openapi/v3`: one document per served group-version.
pub fn openapi_index(registry: &Registry) -> Value {
    let mut paths = serde_json::Map::new();
    let mut gvs: Vec<(String, String)> = Vec::new();
    for r in registry.iter() {
        for v in &r.versions {
            if !gvs.contains(&(r.group.clone(), v.clone())) {
                gvs.push((r.group.clone(), v.clone()));
            }
        }
    }
    for (group, version) in gvs {
        let path = if group.is_empty() {
            format!("api/{version}")
        } else {
            format!("apis/{group}/{version}")
        };
        let url = format!("/openapi/v3/{path}?hash={}", registry.iter().count());
        paths.insert(path, json!({ "serverRelativeURL": url }));
    }
    json!({ "paths": paths })
}

/// `/openapi/v3/<group-version>`: a minimal document, enough for kubectl to
/// see that each kind's PATCH takes `fieldValidation` (so it validates on
/// the server rather than downloading schemas). Objects are not described.
pub fn openapi_document(
    registry: &Registry,
    group: &str,
    version: &str,
) -> Result<Value, StatusError> {
    let mut paths = serde_json::Map::new();
    for r in registry
        .iter()
        .filter(|r| r.group == group && r.serves(version))
    {
        let prefix = if group.is_empty() {
            format!("/api/{version}")
        } else {
            format!("/apis/{group}/{version}")
        };
        let path = if r.namespaced {
            format!("{prefix}/namespaces/{{namespace}}/{}/{{name}}", r.plural)
        } else {
            format!("{prefix}/{}/{{name}}", r.plural)
        };
        let operation = json!({
            "operationId": format!("patch{}", r.kind),
            "x-kubernetes-action": "patch",
            "x-kubernetes-group-version-kind": {"group": group, "version": version, "kind": r.kind},
            "parameters": [
                {"name": "fieldValidation", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
                {"name": "fieldManager", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
                {"name": "force", "in": "query", "schema": {"type": "boolean", "uniqueItems": true}},
            ],
            "responses": {"200": {"description": "OK"}},
        });
        paths.insert(path, json!({ "patch": operation }));
    }
    if paths.is_empty() {
        return Err(not_found());
    }
    Ok(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": GIT_VERSION},
        "paths": paths,
        "components": {"schemas": {}},
    }))
}

fn not_found() -> StatusError {
    status_error(
        404,
        "NotFound",
        "the server could not find the requested resource".to_owned(),
    )
}
