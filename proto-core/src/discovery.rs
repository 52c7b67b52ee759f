//! Discovery: which groups, versions and resources a server serves, and the
//! lookups client-go's REST mapper offers over them (group/version/kind →
//! plural and scope; group/kind and kind alone → the preferred version).
//!
//! This module owns the discovery walk as a sans-IO machine, [`Discoverer`],
//! and its result, [`Discovery`]. The walk asks first for aggregated
//! discovery (`apidiscovery.k8s.io/v2` `APIGroupDiscoveryList`) on `/api`
//! and `/apis`: two requests describe the whole server. A server that
//! answers 406, or with a legacy body (`APIVersions`, `APIGroupList`, told
//! apart by the response `Content-Type`), is walked the legacy way: one
//! `APIResourceList` per group-version. A group-version that fails (an
//! aggregated API that is down, a stale entry) is recorded in
//! [`Discovery::failed`] and the rest is kept, as client-go's
//! `ErrGroupDiscoveryFailed` does. The module does no IO and sends nothing:
//! the adapter drains [`Discoverer::poll_request`], sends each request and
//! feeds the answer back.
//!
//! ```
//! use http::{HeaderMap, StatusCode};
//! use windlass_proto::discovery::{Discoverer, GroupVersionKind};
//!
//! let mut walk = Discoverer::new();
//! let mut headers = HeaderMap::new();
//! headers.insert("content-type", "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList".parse().unwrap());
//! let core = br#"{"kind":"APIGroupDiscoveryList","items":[{"metadata":{"name":""},"versions":[{"version":"v1","resources":[
//!   {"resource":"pods","responseKind":{"group":"","version":"v1","kind":"Pod"},"scope":"Namespaced","verbs":["get","list"]}]}]}]}"#;
//! while let Some((id, request)) = walk.poll_request() {
//!     let body: &[u8] = if request.uri().path() == "/api" { core } else { br#"{"kind":"APIGroupDiscoveryList","items":[]}"# };
//!     walk.handle_response(id, StatusCode::OK, &headers, body)?;
//! }
//! let discovery = walk.finish()?;
//! let pods = discovery.resolve_kind("Pod").unwrap();
//! assert_eq!(pods.resource.plural, "pods");
//! assert!(pods.resource.is_namespaced());
//! assert!(discovery.resolve(&GroupVersionKind::new("", "v1", "Pod")).is_some());
//! # Ok::<(), windlass_proto::discovery::DiscoveryError>(())
//! ```

use std::collections::VecDeque;

use bytes::Bytes;
use http::header::{ACCEPT, CONTENT_TYPE};
use http::{HeaderMap, Method, StatusCode};
use serde::Deserialize;

use crate::resource::{ApiResource, Scope};
use crate::response::{self, ApiError};

/// `Accept` for aggregated discovery, with the legacy document as the
/// server's fallback (client-go's `discovery_client.go`).
pub const AGGREGATED_ACCEPT: &str =
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json";

/// `Accept` for the legacy documents.
pub const LEGACY_ACCEPT: &str = "application/json";

/// A group, version and kind.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
pub struct GroupVersionKind {
    /// The group; empty for the core group.
    #[serde(default)]
    pub group: String,
    /// The version.
    #[serde(default)]
    pub version: String,
    /// The kind.
    #[serde(default)]
    pub kind: String,
}

impl GroupVersionKind {
    /// A group, version and kind.
    pub fn new(
        group: impl Into<String>,
        version: impl Into<String>,
        kind: impl Into<String>,
    ) -> Self {
        Self {
            group: group.into(),
            version: version.into(),
            kind: kind.into(),
        }
    }

    /// From an object's `apiVersion` (`apps/v1`, or `v1` for the core group) and `kind`.
    pub fn from_api_version(api_version: &str, kind: impl Into<String>) -> Self {
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        Self::new(group, version, kind)
    }

    /// The GVK of a k8s-openapi type.
    pub fn of<K: k8s_openapi::Resource>() -> Self {
        Self::new(K::GROUP, K::VERSION, K::KIND)
    }
}

impl std::fmt::Display for GroupVersionKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.group.is_empty() {
            write!(f, "{}/{}", self.version, self.kind)
        } else {
            write!(f, "{}/{}/{}", self.group, self.version, self.kind)
        }
    }
}

/// A subresource of a discovered resource (`status`, `scale`, `log`, …).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subresource {
    /// Its name, e.g. `status`.
    pub name: String,
    /// The kind it takes and returns, when the server says (`autoscaling/v1`
    /// `Scale` for `scale`).
    pub kind: Option<GroupVersionKind>,
    /// The verbs it supports.
    pub verbs: Vec<String>,
}

/// A resource as discovery describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiscoveredResource {
    /// Group, version, kind, plural and scope: what requests need.
    pub resource: ApiResource,
    /// The singular name (may be empty on older servers).
    pub singular: String,
    /// The verbs it supports (`get`, `list`, `watch`, `create`, …).
    pub verbs: Vec<String>,
    /// Short names (`po` for pods).
    pub short_names: Vec<String>,
    /// Categories (`all`).
    pub categories: Vec<String>,
    /// Its subresources.
    pub subresources: Vec<Subresource>,
}

impl DiscoveredResource {
    /// Whether the resource supports `verb`.
    pub fn supports(&self, verb: &str) -> bool {
        self.verbs.iter().any(|v| v == verb)
    }

    /// The subresource named `name`.
    pub fn subresource(&self, name: &str) -> Option<&Subresource> {
        self.subresources.iter().find(|s| s.name == name)
    }
}

/// One version of a group and its resources.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiGroupVersion {
    /// The version, e.g. `v1`.
    pub version: String,
    /// Its resources, in the server's order.
    pub resources: Vec<DiscoveredResource>,
}

/// A group and its versions, the preferred version first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiGroup {
    /// The group; empty for the core group.
    pub name: String,
    /// Its versions, the preferred one first.
    pub versions: Vec<ApiGroupVersion>,
}

impl ApiGroup {
    /// The preferred version (the server's `preferredVersion`, or the first
    /// listed in aggregated discovery).
    pub fn preferred_version(&self) -> Option<&ApiGroupVersion> {
        self.versions.first()
    }

    /// The version named `version`.
    pub fn version(&self, version: &str) -> Option<&ApiGroupVersion> {
        self.versions.iter().find(|v| v.version == version)
    }
}

/// A group-version discovery could not describe.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FailedGroupVersion {
    /// `group/version` (or `v1` for the core group).
    pub group_version: String,
    /// Why.
    pub reason: String,
}

/// What a server serves, and client-go's REST-mapper lookups over it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Discovery {
    groups: Vec<ApiGroup>,
    failed: Vec<FailedGroupVersion>,
    aggregated: bool,
}

impl Discovery {
    /// Every group, the core group first, then in the server's order (its
    /// priority order).
    pub fn groups(&self) -> &[ApiGroup] {
        &self.groups
    }

    /// The group named `name` (empty for core).
    pub fn group(&self, name: &str) -> Option<&ApiGroup> {
        self.groups.iter().find(|g| g.name == name)
    }

    /// Group-versions that could not be described (the rest is usable).
    pub fn failed(&self) -> &[FailedGroupVersion] {
        &self.failed
    }

    /// Whether the server answered with aggregated discovery (two requests)
    /// rather than the legacy documents.
    pub fn is_aggregated(&self) -> bool {
        self.aggregated
    }

    /// The [`ApiResource`] of exactly this group, version and kind, for
    /// requests ([`DiscoveryError::NotServed`] when there is none).
    pub fn api_resource(&self, gvk: &GroupVersionKind) -> Result<ApiResource, DiscoveryError> {
        self.resolve(gvk)
            .map(|r| r.resource.clone())
            .ok_or_else(|| DiscoveryError::NotServed(gvk.to_string()))
    }

    /// The [`ApiResource`] of `kind` of `group` in its preferred version (as
    /// [`resolve_group_kind`](Self::resolve_group_kind)), for requests
    /// ([`DiscoveryError::NotServed`] when there is none).
    pub fn api_resource_for_kind(
        &self,
        group: &str,
        kind: &str,
    ) -> Result<ApiResource, DiscoveryError> {
        self.resolve_group_kind(group, kind)
            .map(|r| r.resource.clone())
            .ok_or_else(|| DiscoveryError::NotServed(format!("kind {kind:?} of group {group:?}")))
    }

    /// The resource serving exactly this group, version and kind.
    pub fn resolve(&self, gvk: &GroupVersionKind) -> Option<&DiscoveredResource> {
        self.group(&gvk.group)?
            .version(&gvk.version)?
            .resources
            .iter()
            .find(|r| r.resource.kind == gvk.kind)
    }

    /// The resource serving `kind` of `group`, in the preferred version that
    /// has it (then the other versions in the server's order).
    pub fn resolve_group_kind(&self, group: &str, kind: &str) -> Option<&DiscoveredResource> {
        self.group(group)?
            .versions
            .iter()
            .find_map(|v| v.resources.iter().find(|r| r.resource.kind == kind))
    }

    /// The resource serving `kind` in any group: the first group in
    /// priority order (core first) that has it, in its preferred version.
    /// `Event` is then core `v1`, not `events.k8s.io`, as kubectl resolves it.
    pub fn resolve_kind(&self, kind: &str) -> Option<&DiscoveredResource> {
        self.groups
            .iter()
            .find_map(|g| self.resolve_group_kind(&g.name, kind))
    }

    /// The resource with this plural (`deployments`) or short name (`deploy`)
    /// in `group`, in its preferred version.
    pub fn resolve_resource(&self, group: &str, name: &str) -> Option<&DiscoveredResource> {
        self.group(group)?.versions.iter().find_map(|v| {
            v.resources
                .iter()
                .find(|r| r.resource.plural == name || r.short_names.iter().any(|s| s == name))
        })
    }

    /// Every resource of every version, for listing.
    pub fn resources(&self) -> impl Iterator<Item = &DiscoveredResource> {
        self.groups
            .iter()
            .flat_map(|g| g.versions.iter())
            .flat_map(|v| v.resources.iter())
    }
}

/// Which request a response answers (one per [`Discoverer::poll_request`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RequestId(u32);

/// Why discovery failed.
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    /// The server refused `/api` or `/apis` (a group-version's refusal is
    /// recorded in [`Discovery::failed`] instead).
    #[error("discovery {path}: {source}")]
    Server {
        /// The path asked for.
        path: String,
        /// The server's error.
        #[source]
        source: Box<ApiError>,
    },
    /// A document that is not what its endpoint serves.
    #[error("discovery {path}: malformed {document}: {what}")]
    Malformed {
        /// The path asked for.
        path: String,
        /// The document expected (`APIGroupDiscoveryList`, `APIGroupList`, …).
        document: &'static str,
        /// What is wrong.
        what: String,
    },
    /// A response fed for no request in flight.
    #[error("discovery: no request {0:?} is in flight")]
    UnknownRequest(RequestId),
    /// No discovered resource matches (the string says what was looked up).
    #[error("the server serves no resource for {0}")]
    NotServed(String),
    /// [`Discoverer::finish`] before every request was answered.
    #[error("discovery: {0} requests are still unanswered")]
    Unfinished(usize),
}

/// What a request is for.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Target {
    /// `/api` (`core`) or `/apis`, aggregated or legacy.
    Root { core: bool, aggregated: bool },
    /// `/api/v1` or `/apis/<group>/<version>`: group `slot`, version `index`.
    GroupVersion {
        slot: usize,
        index: usize,
        group_version: String,
    },
}

impl Target {
    fn path(&self) -> String {
        match self {
            Self::Root { core: true, .. } => "/api".to_owned(),
            Self::Root { core: false, .. } => "/apis".to_owned(),
            Self::GroupVersion { group_version, .. } if !group_version.contains('/') => {
                format!("/api/{group_version}")
            }
            Self::GroupVersion { group_version, .. } => format!("/apis/{group_version}"),
        }
    }
}

/// A legacy group whose versions are being fetched one by one.
#[derive(Debug)]
struct LegacyGroup {
    name: String,
    /// Versions, the preferred first; `None` until answered (or failed).
    versions: Vec<(String, Option<Vec<DiscoveredResource>>)>,
}

/// The discovery walk, sans IO.
///
/// Drive it: take every request from [`poll_request`](Self::poll_request),
/// send them (in any order, concurrently if you like), and feed each answer
/// to [`handle_response`](Self::handle_response) — or, when the client
/// turned a non-2xx answer into an [`ApiError`], to
/// [`handle_error`](Self::handle_error). Answers may queue more requests
/// (the legacy walk), so poll again until it yields none, then
/// [`finish`](Self::finish).
///
/// | request | answer | next |
/// |---|---|---|
/// | `/api`, `/apis` aggregated | 2xx aggregated `Content-Type` | groups recorded |
/// | | 2xx other JSON (legacy server) | one request per group-version |
/// | | 406 | the same path, legacy `Accept` |
/// | | other error | [`DiscoveryError::Server`] |
/// | `/api/v1`, `/apis/g/v` | 2xx `APIResourceList` | resources recorded |
/// | | error | recorded in [`Discovery::failed`] |
#[derive(Debug)]
pub struct Discoverer {
    next_id: u32,
    queued: VecDeque<(RequestId, Target)>,
    in_flight: Vec<(RequestId, Target)>,
    /// Groups from aggregated answers: the core list and the others.
    core: Option<Vec<ApiGroup>>,
    named: Option<Vec<ApiGroup>>,
    /// Groups walked the legacy way, in the order the server listed them.
    legacy: Vec<LegacyGroup>,
    failed: Vec<FailedGroupVersion>,
}

impl Default for Discoverer {
    fn default() -> Self {
        Self::new()
    }
}

impl Discoverer {
    /// A walk that starts with aggregated discovery on `/api` and `/apis`.
    pub fn new() -> Self {
        let mut walk = Self {
            next_id: 0,
            queued: VecDeque::new(),
            in_flight: Vec::new(),
            core: None,
            named: None,
            legacy: Vec::new(),
            failed: Vec::new(),
        };
        for core in [true, false] {
            walk.queue(Target::Root {
                core,
                aggregated: true,
            });
        }
        walk
    }

    /// A walk of the legacy endpoints only (for servers older than 1.26, or
    /// to compare).
    pub fn legacy() -> Self {
        let mut walk = Self::new();
        for (_, target) in walk.queued.iter_mut() {
            if let Target::Root { aggregated, .. } = target {
                *aggregated = false;
            }
        }
        walk
    }

    // --- inputs

    /// A response: status, headers and whole body.
    pub fn handle_response(
        &mut self,
        id: RequestId,
        status: StatusCode,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<(), DiscoveryError> {
        let target = self.take_in_flight(id)?;
        if let Some(error) = response::api_error(&Method::GET, status, headers, body) {
            return self.failed_target(target, error);
        }
        match target {
            Target::Root { core, aggregated } => {
                let path = Target::Root { core, aggregated }.path();
                if is_aggregated(headers) {
                    let groups = parse_aggregated(&path, body, &mut self.failed)?;
                    if core {
                        self.core = Some(groups);
                    } else {
                        self.named = Some(groups);
                    }
                    Ok(())
                } else if core {
                    self.legacy_core_versions(&path, body)
                } else {
                    self.legacy_groups(&path, body)
                }
            }
            Target::GroupVersion {
                slot,
                index,
                group_version,
            } => {
                let path = Target::GroupVersion {
                    slot,
                    index,
                    group_version: group_version.clone(),
                }
                .path();
                let resources = parse_resource_list(&path, &group_version, body)?;
                self.legacy[slot].versions[index].1 = Some(resources);
                Ok(())
            }
        }
    }

    /// A non-2xx answer the client already turned into an [`ApiError`].
    pub fn handle_error(&mut self, id: RequestId, error: ApiError) -> Result<(), DiscoveryError> {
        let target = self.take_in_flight(id)?;
        self.failed_target(target, error)
    }

    // --- outputs

    /// The next request to send, with the id its answer is fed back with.
    pub fn poll_request(&mut self) -> Option<(RequestId, http::Request<Bytes>)> {
        let (id, target) = self.queued.pop_front()?;
        let accept = match target {
            Target::Root {
                aggregated: true, ..
            } => AGGREGATED_ACCEPT,
            _ => LEGACY_ACCEPT,
        };
        let request = http::Request::builder()
            .method(Method::GET)
            .uri(target.path())
            .header(ACCEPT, accept)
            .body(Bytes::new())
            .expect("discovery paths are valid URIs");
        self.in_flight.push((id, target));
        Some((id, request))
    }

    /// Whether every request was sent and answered.
    pub fn is_done(&self) -> bool {
        self.queued.is_empty() && self.in_flight.is_empty()
    }

    /// The result, once [`is_done`](Self::is_done).
    pub fn finish(self) -> Result<Discovery, DiscoveryError> {
        let unanswered = self.queued.len() + self.in_flight.len();
        if unanswered > 0 {
            return Err(DiscoveryError::Unfinished(unanswered));
        }
        let aggregated = self.core.is_some() || self.named.is_some();
        let mut groups: Vec<ApiGroup> = Vec::new();
        let legacy = self.legacy.into_iter().map(|g| ApiGroup {
            name: g.name,
            versions: g
                .versions
                .into_iter()
                .filter_map(|(version, resources)| {
                    resources.map(|resources| ApiGroupVersion { version, resources })
                })
                .collect(),
        });
        let (legacy_core, legacy_named): (Vec<_>, Vec<_>) = legacy.partition(|g| g.name.is_empty());
        groups.extend(self.core.into_iter().flatten());
        groups.extend(legacy_core);
        groups.extend(self.named.into_iter().flatten());
        groups.extend(legacy_named);
        groups.retain(|g| !g.versions.is_empty());
        Ok(Discovery {
            groups,
            failed: self.failed,
            aggregated,
        })
    }

    // --- internals

    fn queue(&mut self, target: Target) {
        let id = RequestId(self.next_id);
        self.next_id += 1;
        self.queued.push_back((id, target));
    }

    fn take_in_flight(&mut self, id: RequestId) -> Result<Target, DiscoveryError> {
        let at = self
            .in_flight
            .iter()
            .position(|(i, _)| *i == id)
            .ok_or(DiscoveryError::UnknownRequest(id))?;
        Ok(self.in_flight.swap_remove(at).1)
    }

    fn failed_target(&mut self, target: Target, error: ApiError) -> Result<(), DiscoveryError> {
        match target {
            Target::Root {
                core,
                aggregated: true,
            } if error.http_status() == StatusCode::NOT_ACCEPTABLE => {
                self.queue(Target::Root {
                    core,
                    aggregated: false,
                });
                Ok(())
            }
            Target::Root { .. } => Err(DiscoveryError::Server {
                path: target.path(),
                source: Box::new(error),
            }),
            Target::GroupVersion { group_version, .. } => {
                self.failed.push(FailedGroupVersion {
                    group_version,
                    reason: error.to_string(),
                });
                Ok(())
            }
        }
    }

    fn legacy_core_versions(&mut self, path: &str, body: &[u8]) -> Result<(), DiscoveryError> {
        #[derive(Deserialize)]
        struct ApiVersions {
            #[serde(default)]
            kind: String,
            versions: Vec<String>,
        }
        let doc: ApiVersions = parse(path, "APIVersions", body)?;
        if !doc.kind.is_empty() && doc.kind != "APIVersions" {
            return Err(wrong_kind(path, "APIVersions", &doc.kind));
        }
        self.add_legacy_group(String::new(), doc.versions);
        Ok(())
    }

    fn legacy_groups(&mut self, path: &str, body: &[u8]) -> Result<(), DiscoveryError> {
        #[derive(Deserialize)]
        struct GroupVersionRef {
            version: String,
        }
        #[derive(Deserialize)]
        struct Group {
            name: String,
            versions: Vec<GroupVersionRef>,
            #[serde(default, rename = "preferredVersion")]
            preferred: Option<GroupVersionRef>,
        }
        #[derive(Deserialize)]
        struct GroupList {
            #[serde(default)]
            kind: String,
            groups: Vec<Group>,
        }
        let doc: GroupList = parse(path, "APIGroupList", body)?;
        if !doc.kind.is_empty() && doc.kind != "APIGroupList" {
            return Err(wrong_kind(path, "APIGroupList", &doc.kind));
        }
        for group in doc.groups {
            if group.name.is_empty() {
                return Err(DiscoveryError::Malformed {
                    path: path.to_owned(),
                    document: "APIGroupList",
                    what: "a group has no name".to_owned(),
                });
            }
            let mut versions: Vec<String> = group.versions.into_iter().map(|v| v.version).collect();
            if let Some(preferred) = group.preferred
                && let Some(at) = versions.iter().position(|v| *v == preferred.version)
            {
                let preferred = versions.remove(at);
                versions.insert(0, preferred);
            }
            self.add_legacy_group(group.name, versions);
        }
        Ok(())
    }

    fn add_legacy_group(&mut self, name: String, versions: Vec<String>) {
        let slot = self.legacy.len();
        for (index, version) in versions.iter().enumerate() {
            let group_version = crate::resource::api_version(&name, version);
            self.queue(Target::GroupVersion {
                slot,
                index,
                group_version,
            });
        }
        self.legacy.push(LegacyGroup {
            name,
            versions: versions.into_iter().map(|v| (v, None)).collect(),
        });
    }
}

/// Whether a response `Content-Type` names aggregated discovery v2
/// (`…;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList`).
pub fn is_aggregated(headers: &HeaderMap) -> bool {
    let Some(content_type) = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let mut parts = content_type.split(';');
    let media = parts.next().unwrap_or("").trim();
    if !media.eq_ignore_ascii_case("application/json") {
        return false;
    }
    let (mut g, mut v, mut as_) = (false, false, false);
    for param in parts {
        match param
            .split_once('=')
            .map(|(k, v)| (k.trim(), v.trim().trim_matches('"')))
        {
            Some(("g", "apidiscovery.k8s.io")) => g = true,
            Some(("v", "v2")) => v = true,
            Some(("as", "APIGroupDiscoveryList")) => as_ = true,
            _ => {}
        }
    }
    g && v && as_
}

fn parse<'a, T: Deserialize<'a>>(
    path: &str,
    document: &'static str,
    body: &'a [u8],
) -> Result<T, DiscoveryError> {
    serde_json::from_slice(body).map_err(|e| DiscoveryError::Malformed {
        path: path.to_owned(),
        document,
        what: e.to_string(),
    })
}

fn wrong_kind(path: &str, document: &'static str, kind: &str) -> DiscoveryError {
    DiscoveryError::Malformed {
        path: path.to_owned(),
        document,
        what: format!("kind is {kind:?}"),
    }
}

/// The wire shape of aggregated discovery (`apidiscovery.k8s.io/v2`).
mod wire {
    use super::GroupVersionKind;
    use serde::Deserialize;

    #[derive(Deserialize)]
    pub struct List {
        #[serde(default)]
        pub kind: String,
        #[serde(default)]
        pub items: Vec<Group>,
    }

    #[derive(Deserialize)]
    pub struct Group {
        #[serde(default)]
        pub metadata: Metadata,
        #[serde(default)]
        pub versions: Vec<Version>,
    }

    #[derive(Default, Deserialize)]
    pub struct Metadata {
        #[serde(default)]
        pub name: String,
    }

    #[derive(Deserialize)]
    pub struct Version {
        pub version: String,
        #[serde(default)]
        pub resources: Vec<Resource>,
        #[serde(default)]
        pub freshness: String,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Resource {
        pub resource: String,
        #[serde(default)]
        pub response_kind: Option<GroupVersionKind>,
        #[serde(default)]
        pub scope: String,
        #[serde(default)]
        pub singular_resource: String,
        #[serde(default)]
        pub verbs: Vec<String>,
        #[serde(default)]
        pub short_names: Vec<String>,
        #[serde(default)]
        pub categories: Vec<String>,
        #[serde(default)]
        pub subresources: Vec<Subresource>,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Subresource {
        pub subresource: String,
        #[serde(default)]
        pub response_kind: Option<GroupVersionKind>,
        #[serde(default)]
        pub verbs: Vec<String>,
    }

    /// A legacy `APIResourceList` entry (`pods`, or `pods/status`).
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct LegacyResource {
        pub name: String,
        #[serde(default)]
        pub singular_name: String,
        pub namespaced: bool,
        #[serde(default)]
        pub group: String,
        #[serde(default)]
        pub version: String,
        pub kind: String,
        #[serde(default)]
        pub verbs: Vec<String>,
        #[serde(default)]
        pub short_names: Vec<String>,
        #[serde(default)]
        pub categories: Vec<String>,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct LegacyList {
        #[serde(default)]
        pub kind: String,
        #[serde(default)]
        pub group_version: String,
        #[serde(default)]
        pub resources: Vec<LegacyResource>,
    }
}

/// An `APIGroupDiscoveryList`: its groups, each version's resources. Stale
/// versions (an aggregated API the server could not reach) and resources
/// without a kind go to `failed`, as client-go skips them.
fn parse_aggregated(
    path: &str,
    body: &[u8],
    failed: &mut Vec<FailedGroupVersion>,
) -> Result<Vec<ApiGroup>, DiscoveryError> {
    const DOCUMENT: &str = "APIGroupDiscoveryList";
    let list: wire::List = parse(path, DOCUMENT, body)?;
    if !list.kind.is_empty() && list.kind != DOCUMENT {
        return Err(wrong_kind(path, DOCUMENT, &list.kind));
    }
    let malformed = |what: String| DiscoveryError::Malformed {
        path: path.to_owned(),
        document: DOCUMENT,
        what,
    };
    let mut groups = Vec::with_capacity(list.items.len());
    for item in list.items {
        let name = item.metadata.name;
        let mut versions = Vec::with_capacity(item.versions.len());
        for version in item.versions {
            let group_version = crate::resource::api_version(&name, &version.version);
            if version.freshness == "Stale" {
                failed.push(FailedGroupVersion {
                    group_version,
                    reason: "stale: the server could not refresh this group-version".to_owned(),
                });
                continue;
            }
            let mut resources = Vec::with_capacity(version.resources.len());
            for r in version.resources {
                let scope = match r.scope.as_str() {
                    "Namespaced" => Scope::Namespaced,
                    "Cluster" => Scope::Cluster,
                    other => {
                        return Err(malformed(format!(
                            "resource {group_version} {}: scope {other:?} is neither Namespaced nor Cluster",
                            r.resource
                        )));
                    }
                };
                if r.resource.is_empty() || r.resource.contains('/') {
                    return Err(malformed(format!(
                        "resource name {:?} in {group_version} is not a plural",
                        r.resource
                    )));
                }
                let Some(kind) = r.response_kind.filter(|k| !k.kind.is_empty()) else {
                    failed.push(FailedGroupVersion {
                        group_version: group_version.clone(),
                        reason: format!("resource {} has no responseKind", r.resource),
                    });
                    continue;
                };
                resources.push(DiscoveredResource {
                    resource: ApiResource::new(
                        &name,
                        &version.version,
                        kind.kind,
                        r.resource,
                        scope,
                    ),
                    singular: r.singular_resource,
                    verbs: r.verbs,
                    short_names: r.short_names,
                    categories: r.categories,
                    subresources: r
                        .subresources
                        .into_iter()
                        .map(|s| Subresource {
                            name: s.subresource,
                            kind: s.response_kind,
                            verbs: s.verbs,
                        })
                        .collect(),
                });
            }
            versions.push(ApiGroupVersion {
                version: version.version,
                resources,
            });
        }
        groups.push(ApiGroup { name, versions });
    }
    Ok(groups)
}

/// An `APIResourceList`: resources, with `plural/sub` entries folded into
/// their resource's subresources.
fn parse_resource_list(
    path: &str,
    group_version: &str,
    body: &[u8],
) -> Result<Vec<DiscoveredResource>, DiscoveryError> {
    const DOCUMENT: &str = "APIResourceList";
    let list: wire::LegacyList = parse(path, DOCUMENT, body)?;
    if !list.kind.is_empty() && list.kind != DOCUMENT {
        return Err(wrong_kind(path, DOCUMENT, &list.kind));
    }
    if !list.group_version.is_empty() && list.group_version != group_version {
        return Err(DiscoveryError::Malformed {
            path: path.to_owned(),
            document: DOCUMENT,
            what: format!(
                "groupVersion is {:?}, not {group_version:?}",
                list.group_version
            ),
        });
    }
    let mut resources: Vec<DiscoveredResource> = Vec::new();
    let mut subresources = Vec::new();
    for r in list.resources {
        let scope = if r.namespaced {
            Scope::Namespaced
        } else {
            Scope::Cluster
        };
        match r.name.split_once('/') {
            Some((parent, sub)) => {
                let kind = (!r.kind.is_empty()).then(|| {
                    let (group, version) = if r.version.is_empty() {
                        group_version
                            .rsplit_once('/')
                            .unwrap_or(("", group_version))
                    } else {
                        (r.group.as_str(), r.version.as_str())
                    };
                    GroupVersionKind::new(group, version, &r.kind)
                });
                subresources.push((
                    parent.to_owned(),
                    Subresource {
                        name: sub.to_owned(),
                        kind,
                        verbs: r.verbs,
                    },
                ));
            }
            None if r.name.is_empty() => {
                return Err(DiscoveryError::Malformed {
                    path: path.to_owned(),
                    document: DOCUMENT,
                    what: "a resource has no name".to_owned(),
                });
            }
            None => resources.push(DiscoveredResource {
                resource: ApiResource::from_api_version(group_version, r.kind, r.name, scope),
                singular: r.singular_name,
                verbs: r.verbs,
                short_names: r.short_names,
                categories: r.categories,
                subresources: Vec::new(),
            }),
        }
    }
    for (parent, sub) in subresources {
        if let Some(r) = resources.iter_mut().find(|r| r.resource.plural == parent) {
            r.subresources.push(sub);
        }
    }
    Ok(resources)
}

#[cfg(test)]
mod tests;
