//! Request paths and query strings, parsed as the API server's
//! `RequestInfoFactory` reads them: `/api/v1/...` and `/apis/<g>/<v>/...`,
//! namespaced, cluster-scoped or across all namespaces, a name, a
//! subresource; the deprecated `/watch/` prefix; the discovery documents.
//! This module owns parsing only; it does not know which resources exist.

use std::collections::BTreeMap;

use windlass_proto::params::{ListParams, ResourceVersionMatch, WatchParams};

use super::response::status_error;
use crate::model::StatusError;

/// What a path names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    /// `/version`.
    Version,
    /// `/healthz`, `/livez`, `/readyz`.
    Health,
    /// `/api`.
    CoreVersions,
    /// `/apis`.
    Groups,
    /// `/apis/<group>`.
    Group(String),
    /// `/api/v1` or `/apis/<group>/<version>`.
    ResourceList {
        /// Group (empty for core).
        group: String,
        /// Version.
        version: String,
    },
    /// `/openapi/v3`: the index of group-version documents.
    OpenApiIndex,
    /// `/openapi/v3/api/v1` or `/openapi/v3/apis/<group>/<version>`.
    OpenApi {
        /// Group (empty for core).
        group: String,
        /// Version.
        version: String,
    },
    /// Anything below a resource.
    Resource(ResourcePath),
}

/// A resource path: `…/[namespaces/<ns>/]<resource>[/<name>[/<subresource>]]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourcePath {
    /// Group (empty for core).
    pub group: String,
    /// Version.
    pub version: String,
    /// Plural resource name.
    pub resource: String,
    /// The namespace the path names, if any.
    pub namespace: Option<String>,
    /// The object's name, if the path names one.
    pub name: Option<String>,
    /// The subresource (`status`, …), if any.
    pub subresource: Option<String>,
    /// Whether the path used the deprecated `/watch/` prefix.
    pub watch_prefix: bool,
}

/// Subresources of a namespace that are not resources inside it.
const NAMESPACE_SUBRESOURCES: [&str; 2] = ["status", "finalize"];

/// Parses a path (without query). `None` means 404 (no such path).
pub fn parse(path: &str) -> Option<Route> {
    let trimmed = path.trim_end_matches('/');
    let parts: Vec<&str> = trimmed.split('/').skip(1).collect();
    match parts.as_slice() {
        ["version"] => return Some(Route::Version),
        ["healthz" | "livez" | "readyz"] => return Some(Route::Health),
        ["api"] => return Some(Route::CoreVersions),
        ["apis"] => return Some(Route::Groups),
        ["apis", group] => return Some(Route::Group((*group).to_owned())),
        ["openapi", "v3"] => return Some(Route::OpenApiIndex),
        ["openapi", "v3", "api", version] => {
            return Some(Route::OpenApi {
                group: String::new(),
                version: (*version).to_owned(),
            });
        }
        ["openapi", "v3", "apis", group, version] => {
            return Some(Route::OpenApi {
                group: (*group).to_owned(),
                version: (*version).to_owned(),
            });
        }
        _ => {}
    }
    let (group, version, rest) = match parts.as_slice() {
        ["api", version, rest @ ..] => ("", *version, rest),
        ["apis", group, version, rest @ ..] => (*group, *version, rest),
        _ => return None,
    };
    if rest.is_empty() {
        return Some(Route::ResourceList {
            group: group.to_owned(),
            version: version.to_owned(),
        });
    }
    let (watch_prefix, mut rest) = match rest {
        ["watch", tail @ ..] => (true, tail),
        _ => (false, rest),
    };
    if rest.iter().any(|p| p.is_empty()) {
        return None;
    }
    let mut namespace = None;
    if rest[0] == "namespaces" && rest.len() > 1 {
        namespace = Some(rest[1].to_owned());
        if rest.len() > 2 && !NAMESPACE_SUBRESOURCES.contains(&rest[2]) {
            rest = &rest[2..];
        }
    }
    let (resource, name, subresource) = match rest {
        [resource] => (*resource, None, None),
        [resource, name] => (*resource, Some(*name), None),
        [resource, name, sub] => (*resource, Some(*name), Some(*sub)),
        _ => return None,
    };
    // `/api/v1/namespaces/<ns>` names the namespace itself, not a namespace scope.
    if resource == "namespaces" {
        namespace = None;
    }
    if watch_prefix && subresource.is_some() {
        return None;
    }
    Some(Route::Resource(ResourcePath {
        group: group.to_owned(),
        version: version.to_owned(),
        resource: resource.to_owned(),
        namespace,
        name: name.map(str::to_owned),
        subresource: subresource.map(str::to_owned),
        watch_prefix,
    }))
}

/// A decoded query string (the last value of a repeated key wins, except
/// `dryRun`, which is kept whole).
#[derive(Clone, Debug, Default)]
pub struct Query(BTreeMap<String, String>);

impl Query {
    /// Decodes `a=b&c=d` with percent-escapes and `+` for space.
    pub fn parse(query: Option<&str>) -> Result<Self, StatusError> {
        let mut map = BTreeMap::new();
        for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            map.insert(decode(k)?, decode(v)?);
        }
        Ok(Self(map))
    }

    /// The value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    fn string(&self, key: &str) -> Option<String> {
        self.get(key).map(str::to_owned)
    }

    /// A boolean parameter (`true`/`1`/`false`/`0`; absent is `None`).
    pub fn bool(&self, key: &str) -> Result<Option<bool>, StatusError> {
        match self.get(key) {
            None => Ok(None),
            Some("true" | "1" | "True" | "TRUE" | "t") => Ok(Some(true)),
            Some("false" | "0" | "False" | "FALSE" | "f" | "") => Ok(Some(false)),
            Some(v) => Err(bad_param(key, v, "invalid syntax")),
        }
    }

    /// An unsigned integer parameter.
    pub fn u32(&self, key: &str) -> Result<Option<u32>, StatusError> {
        self.get(key)
            .map(|v| {
                v.parse::<i64>()
                    .map_err(|_| bad_param(key, v, "invalid syntax"))
                    .map(|n| u32::try_from(n.max(0)).unwrap_or(u32::MAX))
            })
            .transpose()
    }

    fn rv_match(&self) -> Result<Option<ResourceVersionMatch>, StatusError> {
        match self.get("resourceVersionMatch") {
            None | Some("") => Ok(None),
            Some("NotOlderThan") => Ok(Some(ResourceVersionMatch::NotOlderThan)),
            Some("Exact") => Ok(Some(ResourceVersionMatch::Exact)),
            Some(v) => Err(status_error(
                422,
                "Invalid",
                format!(
                    "ListOptions.meta.k8s.io \"\" is invalid: resourceVersionMatch: Unsupported value: \"{v}\": supported values: \"Exact\", \"NotOlderThan\", \"\""
                ),
            )),
        }
    }

    /// Whether the request asks for a watch (`watch=true`).
    pub fn is_watch(&self) -> Result<bool, StatusError> {
        Ok(self.bool("watch")?.unwrap_or(false))
    }

    /// The list parameters.
    pub fn list_params(&self) -> Result<ListParams, StatusError> {
        Ok(ListParams {
            label_selector: self.string("labelSelector"),
            field_selector: self.string("fieldSelector"),
            resource_version: self.string("resourceVersion"),
            resource_version_match: self.rv_match()?,
            limit: self.u32("limit")?,
            continue_token: self.string("continue").filter(|c| !c.is_empty()),
            timeout_seconds: self.u32("timeoutSeconds")?,
        })
    }

    /// The watch parameters.
    pub fn watch_params(&self) -> Result<WatchParams, StatusError> {
        Ok(WatchParams {
            label_selector: self.string("labelSelector"),
            field_selector: self.string("fieldSelector"),
            resource_version: self.string("resourceVersion"),
            resource_version_match: self.rv_match()?,
            timeout_seconds: self.u32("timeoutSeconds")?,
            allow_watch_bookmarks: self.bool("allowWatchBookmarks")?.unwrap_or(false),
            send_initial_events: self.bool("sendInitialEvents")?,
        })
    }
}

fn bad_param(key: &str, value: &str, why: &str) -> StatusError {
    status_error(
        400,
        "BadRequest",
        format!("invalid value {value:?} for query parameter {key:?}: {why}"),
    )
}

fn decode(s: &str) -> Result<String, StatusError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| {
                        status_error(
                            400,
                            "BadRequest",
                            format!("invalid URL escape in query {s:?}"),
                        )
                    })?;
                out.push(hex);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out)
        .map_err(|_| status_error(400, "BadRequest", "query is not UTF-8".to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resource(path: &str) -> ResourcePath {
        match parse(path) {
            Some(Route::Resource(r)) => r,
            other => panic!("{path}: {other:?}"),
        }
    }

    #[test]
    fn apiserver_route_namespaced_cluster_and_all_namespaces() {
        let r = resource("/api/v1/namespaces/default/pods/web-0/status");
        assert_eq!(
            (
                r.resource.as_str(),
                r.namespace.as_deref(),
                r.name.as_deref(),
                r.subresource.as_deref()
            ),
            ("pods", Some("default"), Some("web-0"), Some("status"))
        );
        let r = resource("/api/v1/pods");
        assert_eq!((r.namespace, r.name), (None, None));
        let r = resource("/apis/apps/v1/namespaces/x/deployments");
        assert_eq!(
            (r.group.as_str(), r.namespace.as_deref()),
            ("apps", Some("x"))
        );
        let r = resource("/api/v1/namespaces/kube-system");
        assert_eq!(
            (r.resource.as_str(), r.namespace, r.name.as_deref()),
            ("namespaces", None, Some("kube-system"))
        );
        let r = resource("/api/v1/namespaces/kube-system/finalize");
        assert_eq!(
            (r.name.as_deref(), r.subresource.as_deref()),
            (Some("kube-system"), Some("finalize"))
        );
        let r = resource("/api/v1/watch/namespaces/a/configmaps");
        assert!(r.watch_prefix);
        assert_eq!(
            parse("/apis/apps/v1"),
            Some(Route::ResourceList {
                group: "apps".into(),
                version: "v1".into()
            })
        );
        assert_eq!(parse("/api/v1/namespaces/a/pods/b/c/d"), None);
        assert_eq!(parse("/nothing"), None);
        assert_eq!(parse("/api/v1//pods"), None);
    }

    #[test]
    fn apiserver_query_decodes_selectors_and_params() {
        let q = Query::parse(Some(
            "labelSelector=app%3Dweb%2Cenv+in+%28a%2Cb%29&limit=5&watch=1&allowWatchBookmarks=true",
        ))
        .unwrap();
        assert!(q.is_watch().unwrap());
        let w = q.watch_params().unwrap();
        assert_eq!(w.label_selector.as_deref(), Some("app=web,env in (a,b)"));
        assert!(w.allow_watch_bookmarks);
        assert_eq!(q.list_params().unwrap().limit, Some(5));
        let e = Query::parse(Some("limit=x"))
            .unwrap()
            .list_params()
            .unwrap_err();
        assert_eq!(e.code(), 400);
        assert_eq!(Query::parse(Some("a=%zz")).unwrap_err().code(), 400);
    }
}
