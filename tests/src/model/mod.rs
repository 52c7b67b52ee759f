//! A pure, in-memory Kubernetes API server: the one server the simulation
//! and `windlass-apiserver` (its HTTP front) both drive, so they cannot
//! disagree about what a server does.
//!
//! The model owns resources and their objects (JSON values), one global
//! revision counter (as etcd), multi-version storage so that paginated and
//! `Exact` lists read a consistent snapshot until compaction, and a bounded
//! watch cache per resource. It does no IO, reads no clock and draws no
//! random numbers: time comes in as an [`Instant`] (mapped onto a wall clock
//! that starts at [`Config::start_unix_seconds`]), and uids and generated
//! names come from a generator seeded by [`Config::seed`]. It does not
//! serialise responses or parse requests: every answer is a value carrying
//! what the HTTP front needs (objects, lists with their resourceVersion and
//! continue token, or a whole [`Status`]).
//!
//! ```
//! use std::time::Instant;
//! use serde_json::json;
//! use windlass_proto::params::{ListParams, WatchParams};
//! use windlass_proto::watch::WatchEvent;
//! use windlass_testkit::model::{ApiServer, Config, Gvr, WatchPoll};
//!
//! let now = Instant::now();
//! let mut server = ApiServer::new(Config::default(), now);
//! let pods = Gvr::core("pods");
//! let mut watch = server.watch(&pods, Some("default"), &WatchParams::default(), now).unwrap();
//! server.create(&pods, Some("default"), json!({"metadata": {"name": "web-0"}}), now).unwrap();
//! let list = server.list(&pods, Some("default"), &ListParams::default()).unwrap();
//! assert_eq!(list.items.len(), 1);
//! // The driver loop: poll each watch until Pending, after every change.
//! while let WatchPoll::Event(event) = watch.poll(&server, now) {
//!     assert!(matches!(event, WatchEvent::Added(_)));
//! }
//! ```
//!
//! | call | answers | errors (code, reason) |
//! |---|---|---|
//! | `create` | the stored object (HTTP 201) | 404 NotFound (namespace), 409 AlreadyExists, 422 Invalid, 403 Forbidden (terminating namespace) |
//! | `get` | the object | 404 NotFound |
//! | `update`, `patch` | the stored object | 404, 409 Conflict (stale resourceVersion), 400, 415, 422 |
//! | `delete` | the object, or a `Success` Status | 404, 409 Conflict (precondition) |
//! | `list` | a [`List`] | 400 BadRequest (selectors, tokens), 410 Expired, 422, 504 Timeout (RV too large) |
//! | `watch` | a [`Watch`] (HTTP 200; a too-old RV becomes one ERROR event) | 400, 422 |
//! | `delete_collection` | a [`List`] of what was deleted | as `list` |
//!
//! Every call first looks the resource up: a path the server does not serve
//! is 404 `the server could not find the requested resource`; a namespaced
//! write without a namespace is 405.
//!
//! What the simulator and fault injection turn:
//!
//! | control | effect |
//! |---|---|
//! | [`ApiServer::compact`] | older `Exact` lists and continue tokens get 410 (the latter with a fresh token); new watches from before it get the ERROR 410 |
//! | [`ApiServer::restart`] | every watch ends; watch caches start empty at the current revision; objects and revisions stay |
//! | [`ApiServer::freeze_watch_cache`] | the cache lags etcd: stale `resourceVersion=0` lists, 504 too-large RV, watches stall |
//! | [`ApiServer::set_watch_list`] | refuse `sendInitialEvents` (422) |
//! | [`ApiServer::set_initial_events_end_bookmark`] | watch-list never sends its end bookmark |
//! | [`Watch::request_bookmark`] | a BOOKMARK once the watch has caught up (with `allowWatchBookmarks`) |
//! | [`Config::watch_cache_capacity`] | the window a watch can resume in |
//!
//! Simplifications, all of them documented where they apply: deletion has
//! no grace period (a pod goes at once unless finalizers hold it), the
//! garbage collector and the namespace controller act inside the DELETE,
//! and strategic merge patch and server-side apply come from a [`PatchHook`].

mod patch;
mod resource;
mod selector;
pub mod status;
mod token;
mod validation;
mod watch;

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::ops::Bound;
use std::sync::Arc;
use std::time::Instant;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Status;
use serde_json::{Map, Value, json};
use windlass_proto::object::ObjectKey;
use windlass_proto::params::{ListParams, ResourceVersionMatch, WatchParams};
use windlass_proto::rand::Rng;

pub use patch::{ACCEPTED_WITHOUT_HOOK, Patch, PatchHook, json_patch, merge_patch};
pub use resource::{GroupResource, Gvr, NameRule, Registry, Resource};
pub use selector::{FieldSelector, LabelSelector};
pub use status::{FieldError, Result, StatusError};
pub use token::ContinueToken;
pub use watch::{Watch, WatchEnd, WatchPoll};

use validation::{check_labels, parse_rv, validate_list_params, validate_name};
use watch::{CacheEvent, EventKind, WatchCache};

/// How a model server behaves.
#[derive(Clone, Debug)]
pub struct Config {
    /// Events each resource's watch cache keeps (the window a watch can resume in).
    pub watch_cache_capacity: usize,
    /// Seeds uids and generated names.
    pub seed: u64,
    /// The wall-clock time (Unix seconds) of the `Instant` the server starts at.
    pub start_unix_seconds: i64,
    /// Whether watch-list (`sendInitialEvents`) is served; when off it is
    /// refused as a server without the `WatchList` feature does (422).
    pub watch_list: bool,
    /// Whether a list with `resourceVersion=0` ignores `limit`, as the watch
    /// cache serves it (the whole list, no continue token). When off it is
    /// paginated as etcd would.
    pub rv_zero_ignores_limit: bool,
    /// Whether watch-list ends its initial events with the
    /// `k8s.io/initial-events-end` bookmark; off is a server that never
    /// sends it (kubernetes #140890).
    pub initial_events_end_bookmark: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            watch_cache_capacity: 100,
            seed: 0,
            // 2026-01-01T00:00:00Z
            start_unix_seconds: 1_767_225_600,
            watch_list: true,
            rv_zero_ignores_limit: true,
            initial_events_end_bookmark: true,
        }
    }
}

/// Which part of an object an update or patch writes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Subresource {
    /// The object itself (its `status` is kept when the resource has a status subresource).
    #[default]
    Main,
    /// The `status` subresource: only `status` changes.
    Status,
}

/// What a DELETE asks (`DeleteOptions`): preconditions and what happens to
/// dependents (objects whose `ownerReferences` name the deleted one).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeleteOptions {
    /// `preconditions.uid`: the object must have this uid.
    pub uid: Option<String>,
    /// `preconditions.resourceVersion`: the object must be at this resourceVersion.
    pub resource_version: Option<String>,
    /// `propagationPolicy`; `None` is `Background`, the default of every
    /// resource the model serves.
    pub propagation_policy: Option<PropagationPolicy>,
}

/// `propagationPolicy`: what the garbage collector does with dependents.
/// The model's collector works at once, inside the DELETE.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PropagationPolicy {
    /// Dependents lose their reference to the deleted owner and stay.
    Orphan,
    /// The owner goes now; dependents with no other live owner follow.
    #[default]
    Background,
    /// Dependents go first (the owner waits with the `foregroundDeletion`
    /// finalizer), then the owner.
    Foreground,
}

/// What a DELETE answers with.
#[derive(Clone, Debug, PartialEq)]
pub enum Deleted {
    /// The object: deleted (pods, services, namespaces), or still present
    /// with a `deletionTimestamp` while finalizers remain.
    Object(Arc<Value>),
    /// `{"kind":"Status","status":"Success","details":{…}}`.
    Status(Box<Status>),
}

/// A page of a list.
#[derive(Clone, Debug, PartialEq)]
pub struct List {
    /// `apiVersion` of the list.
    pub api_version: String,
    /// `kind` of the list, e.g. `PodList`.
    pub kind: String,
    /// The items, ordered by key (namespace, then name).
    pub items: Vec<Arc<Value>>,
    /// `metadata.resourceVersion`: the snapshot this page was read at.
    pub resource_version: String,
    /// `metadata.continue`: set when more items remain.
    pub continue_token: Option<String>,
    /// `metadata.remainingItemCount`: set with a continue token when no selector was used.
    pub remaining_item_count: Option<i64>,
    /// Whether the items' own `kind`/`apiVersion` are dropped on the wire
    /// (built-in lists), or kept (custom resources).
    pub items_carry_type: bool,
}

impl List {
    /// The list as JSON, in the shape the server writes.
    pub fn to_json(&self) -> Value {
        let mut metadata = Map::new();
        metadata.insert(
            "resourceVersion".into(),
            self.resource_version.clone().into(),
        );
        if let Some(token) = &self.continue_token {
            metadata.insert("continue".into(), token.clone().into());
        }
        if let Some(n) = self.remaining_item_count {
            metadata.insert("remainingItemCount".into(), n.into());
        }
        let items: Vec<Value> = self
            .items
            .iter()
            .map(|item| {
                let mut item = (**item).clone();
                if !self.items_carry_type
                    && let Some(m) = item.as_object_mut()
                {
                    m.remove("kind");
                    m.remove("apiVersion");
                }
                item
            })
            .collect();
        json!({
            "kind": self.kind,
            "apiVersion": self.api_version,
            "metadata": metadata,
            "items": items,
        })
    }
}

#[derive(Clone, Debug)]
struct Version {
    rv: u64,
    object: Option<Arc<Value>>,
}

/// One resource's objects (every version since compaction) and watch cache.
#[derive(Clone, Debug)]
struct Table {
    objects: BTreeMap<ObjectKey, Vec<Version>>,
    cache: WatchCache,
}

impl Table {
    fn latest(&self, key: &ObjectKey) -> Option<&Arc<Value>> {
        self.objects.get(key)?.last()?.object.as_ref()
    }
}

fn at(versions: &[Version], rv: u64) -> Option<&Arc<Value>> {
    let i = versions.partition_point(|v| v.rv <= rv);
    versions.get(i.checked_sub(1)?)?.object.as_ref()
}

/// The model server. See the module documentation.
pub struct ApiServer {
    config: Config,
    registry: Registry,
    tables: BTreeMap<GroupResource, Table>,
    revision: u64,
    compacted: u64,
    epoch: u64,
    /// The revision the watch caches are held at, when they lag etcd.
    cache_frozen_at: Option<u64>,
    /// The uids of live objects (the garbage collector's owner lookup).
    live_uids: HashSet<String>,
    /// How many live objects have `ownerReferences` (none: no collection to do).
    owned: usize,
    rng: Rng,
    start: Instant,
    patch_hook: Option<Box<dyn PatchHook>>,
}

impl std::fmt::Debug for ApiServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiServer")
            .field("revision", &self.revision)
            .field("compacted", &self.compacted)
            .field("epoch", &self.epoch)
            .finish_non_exhaustive()
    }
}

const INITIAL_NAMESPACES: [&str; 4] = ["default", "kube-node-lease", "kube-public", "kube-system"];

/// The namespaces namespace lifecycle admission refuses to delete.
const IMMORTAL_NAMESPACES: [&str; 3] = ["default", "kube-public", "kube-system"];

impl ApiServer {
    /// A server with the built-in resources and the namespaces a fresh
    /// cluster has (`default`, `kube-node-lease`, `kube-public`, `kube-system`).
    pub fn new(config: Config, now: Instant) -> Self {
        let mut server = Self {
            rng: Rng::new(config.seed),
            config,
            registry: Registry::builtin(),
            tables: BTreeMap::new(),
            revision: 0,
            compacted: 0,
            epoch: 0,
            cache_frozen_at: None,
            live_uids: HashSet::new(),
            owned: 0,
            start: now,
            patch_hook: None,
        };
        for r in server
            .registry
            .iter()
            .map(Resource::group_resource)
            .collect::<Vec<_>>()
        {
            server.add_table(r);
        }
        let namespaces = Gvr::core("namespaces");
        for ns in INITIAL_NAMESPACES {
            let created = server.create(&namespaces, None, json!({"metadata": {"name": ns}}), now);
            debug_assert!(created.is_ok());
        }
        server
    }

    // --- getters

    /// The served resources.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The newest revision (etcd's current revision).
    pub fn resource_version(&self) -> u64 {
        self.revision
    }

    /// The revision the watch caches have reached: the newest revision, or
    /// where [`ApiServer::freeze_watch_cache`] holds them.
    pub fn cache_resource_version(&self) -> u64 {
        self.cache_frozen_at.unwrap_or(self.revision)
    }

    /// The compaction revision: lists and continue tokens older than it get 410.
    pub fn compacted_resource_version(&self) -> u64 {
        self.compacted
    }

    /// The oldest revision a watch on `group_resource` can resume from.
    pub fn watch_floor(&self, group_resource: &GroupResource) -> Option<u64> {
        Some(self.tables.get(group_resource)?.cache.floor())
    }

    // --- control (what the simulator and fault injection use)

    /// Serves one more resource (e.g. a built-in beyond the default set),
    /// replacing any resource with the same group and plural name; objects
    /// already stored under that name stay.
    pub fn serve(&mut self, resource: Resource) {
        let gr = resource.group_resource();
        self.registry.register(resource);
        self.add_table(gr);
    }

    /// Installs strategic merge patch and server-side apply.
    pub fn set_patch_hook(&mut self, hook: Box<dyn PatchHook>) {
        self.patch_hook = Some(hook);
    }

    /// Serves watch-list or refuses it (422, as without the `WatchList` feature).
    pub fn set_watch_list(&mut self, enabled: bool) {
        self.config.watch_list = enabled;
    }

    /// Sends or withholds the bookmark that ends a watch-list's initial
    /// events (for watches opened from now on).
    pub fn set_initial_events_end_bookmark(&mut self, enabled: bool) {
        self.config.initial_events_end_bookmark = enabled;
    }

    /// Holds the watch caches at the current revision, as an API server whose
    /// cache lags etcd: what the cache serves (lists at `resourceVersion=0`
    /// or `N` without a limit, watches) stays at this revision, so a client
    /// that saw newer revisions elsewhere gets 504 "Too large resource
    /// version". Writes still happen. [`ApiServer::thaw_watch_cache`] or a
    /// restart lets the caches catch up.
    pub fn freeze_watch_cache(&mut self) {
        self.cache_frozen_at = Some(self.cache_resource_version());
    }

    /// Lets the watch caches catch up with every write made while frozen.
    pub fn thaw_watch_cache(&mut self) {
        self.cache_frozen_at = None;
    }

    /// Compacts history at `rv` (capped at the newest revision, and at a
    /// frozen watch cache's revision): older snapshots, continue tokens and
    /// watch-cache events are gone. Storage keeps every version since the
    /// last compaction, so a long-running server compacts now and then (as
    /// kube-apiserver does every five minutes).
    pub fn compact(&mut self, rv: u64) {
        let rv = rv.min(self.cache_resource_version());
        if rv <= self.compacted {
            return;
        }
        self.compacted = rv;
        for table in self.tables.values_mut() {
            table.objects.retain(|_, versions| {
                let keep_from = versions.partition_point(|v| v.rv <= rv).saturating_sub(1);
                versions.drain(..keep_from);
                versions.len() > 1 || versions.first().is_some_and(|v| v.object.is_some())
            });
            table.cache.compact(rv);
        }
    }

    /// A server restart: every watch ends, and each watch cache starts over
    /// empty at the current revision. Objects and revisions are kept (etcd survives).
    pub fn restart(&mut self) {
        self.epoch += 1;
        self.cache_frozen_at = None;
        for table in self.tables.values_mut() {
            table.cache = WatchCache::new(self.config.watch_cache_capacity, self.revision);
        }
    }

    // --- reads

    /// GET one object.
    pub fn get(&self, gvr: &Gvr, namespace: Option<&str>, name: &str) -> Result<Arc<Value>> {
        let resource = self.registry.lookup(gvr)?;
        let key = object_key(&resource, namespace, name)?;
        let object = self
            .tables
            .get(&resource.group_resource())
            .and_then(|t| t.latest(&key))
            .ok_or_else(|| status::not_found(&resource, name))?;
        Ok(view(object, &resource.api_version(&gvr.version)))
    }

    /// LIST, with resourceVersion semantics, selectors and pagination.
    pub fn list(&self, gvr: &Gvr, namespace: Option<&str>, params: &ListParams) -> Result<List> {
        let resource = self.registry.lookup(gvr)?;
        validate_list_params(params)?;
        let labels = LabelSelector::parse(params.label_selector.as_deref().unwrap_or(""))
            .map_err(status::bad_request)?;
        let fields =
            FieldSelector::parse(params.field_selector.as_deref().unwrap_or(""), &resource)
                .map_err(status::bad_request)?;
        let namespace = namespace.filter(|ns| resource.namespaced && !ns.is_empty());
        let prefix = namespace.map(|ns| format!("{ns}/")).unwrap_or_default();
        let rv_param = params.resource_version.as_deref().unwrap_or("");

        let (snapshot, start) = match params.continue_token.as_deref().filter(|c| !c.is_empty()) {
            Some(token) => {
                if !rv_param.is_empty() && rv_param != "0" {
                    return Err(status::bad_request(
                        "specifying resource version is not allowed when using continue",
                    ));
                }
                let token = ContinueToken::decode(token)
                    .map_err(|e| status::bad_request(format!("invalid continue token: {e}")))?;
                let start = format!("{prefix}{}", token.start);
                match u64::try_from(token.resource_version) {
                    Err(_) => (self.revision, Some(start)),
                    Ok(rv) if rv < self.compacted => {
                        let fresh = ContinueToken::new(-1, token.start).encode();
                        let mut error = status::expired(status::CONTINUE_TOO_OLD);
                        error.0.metadata.continue_ = Some(fresh);
                        return Err(error);
                    }
                    Ok(rv) if rv > self.revision => {
                        return Err(status::bad_request(
                            "invalid continue token: continue key is not valid: resourceVersion is in the future",
                        ));
                    }
                    Ok(rv) => (rv, Some(start)),
                }
            }
            None => (
                self.list_snapshot(
                    rv_param,
                    params.resource_version_match,
                    params.limit.is_some_and(|l| l > 0),
                )?,
                None,
            ),
        };

        let table = self.tables.get(&resource.group_resource());
        let lower = match &start {
            Some(s) => Bound::Included(ObjectKey::from_raw(s)),
            None => Bound::Included(ObjectKey::from_raw(&prefix)),
        };
        let live = table
            .into_iter()
            .flat_map(|t| t.objects.range((lower.clone(), Bound::Unbounded)))
            .take_while(|(k, _)| k.as_str().starts_with(&prefix))
            .filter_map(|(k, versions)| Some((k, at(versions, snapshot)?)));
        let served_by_cache = rv_param == "0" && start.is_none();
        let limit = params
            .limit
            .filter(|l| *l > 0 && !(served_by_cache && self.config.rv_zero_ignores_limit))
            .map(|l| l as usize);
        let api_version = resource.api_version(&gvr.version);
        let mut items = Vec::new();
        let mut last_key = None;
        let mut rest = live;
        for (key, object) in rest.by_ref() {
            if !labels.matches(object["metadata"]["labels"].as_object()) || !fields.matches(object)
            {
                continue;
            }
            items.push(view(object, &api_version));
            if limit.is_some_and(|l| items.len() >= l) {
                last_key = Some(key.clone());
                break;
            }
        }
        let mut continue_token = None;
        let mut remaining_item_count = None;
        // More keys in the range means a continue token, even when none of
        // them matches the selectors (as etcd's paging does).
        if let Some(last) = last_key
            && rest.next().is_some()
        {
            let relative = &last.as_str()[prefix.len()..];
            let rv = i64::try_from(snapshot).unwrap_or(i64::MAX);
            continue_token = Some(ContinueToken::new(rv, format!("{relative}\0")).encode());
            if labels.is_empty() && fields.is_empty() {
                remaining_item_count = i64::try_from(1 + rest.count()).ok();
            }
        }
        Ok(List {
            api_version,
            kind: resource.list_kind.clone(),
            items,
            resource_version: snapshot.to_string(),
            continue_token,
            remaining_item_count,
            items_carry_type: resource.is_custom,
        })
    }

    /// The revision a list without a continue token reads at. `""` is a
    /// consistent read (etcd's newest revision), `"0"` and `N` without a
    /// limit are served by the watch cache, `Exact` and limited reads by etcd.
    fn list_snapshot(
        &self,
        rv: &str,
        matching: Option<ResourceVersionMatch>,
        limited: bool,
    ) -> Result<u64> {
        if rv.is_empty() {
            return Ok(self.revision);
        }
        if rv == "0" {
            return Ok(self.cache_resource_version());
        }
        let requested = parse_rv(rv)?;
        if matching == Some(ResourceVersionMatch::Exact) {
            if requested > self.revision {
                return Err(status::too_large_resource_version(requested, self.revision));
            }
            if requested < self.compacted {
                return Err(status::expired(status::LIST_TOO_OLD));
            }
            return Ok(requested);
        }
        let current = if limited {
            self.revision
        } else {
            self.cache_resource_version()
        };
        if requested > current {
            return Err(status::too_large_resource_version(requested, current));
        }
        Ok(current)
    }

    /// WATCH. A resourceVersion older than the watch cache's window is not
    /// an error here: the watch opens (HTTP 200) and sends one ERROR event
    /// with 410 Expired, as the watch cache does.
    pub fn watch(
        &self,
        gvr: &Gvr,
        namespace: Option<&str>,
        params: &WatchParams,
        now: Instant,
    ) -> Result<Watch> {
        let resource = self.registry.lookup(gvr)?;
        self.validate_watch_params(params)?;
        let labels = LabelSelector::parse(params.label_selector.as_deref().unwrap_or(""))
            .map_err(status::bad_request)?;
        let fields =
            FieldSelector::parse(params.field_selector.as_deref().unwrap_or(""), &resource)
                .map_err(status::bad_request)?;
        let group_resource = resource.group_resource();
        let table = self
            .tables
            .get(&group_resource)
            .ok_or_else(status::no_such_resource)?;
        let rv_param = params.resource_version.as_deref().unwrap_or("");
        let requested = match rv_param {
            "" | "0" => None,
            rv => Some(parse_rv(rv)?),
        };
        let mut watch = Watch {
            group_resource,
            api_version: resource.api_version(&gvr.version),
            kind: resource.kind.clone(),
            namespace: namespace
                .filter(|ns| resource.namespaced && !ns.is_empty())
                .map(str::to_owned),
            labels,
            fields,
            cursor: self.cache_resource_version(),
            initial: VecDeque::new(),
            end_bookmark: None,
            allow_bookmarks: params.allow_watch_bookmarks,
            bookmark_requested: false,
            // timeoutSeconds=0 leaves the timeout to the server: none here.
            deadline: params
                .timeout_seconds
                .filter(|s| *s > 0)
                .map(|s| now + std::time::Duration::from_secs(u64::from(s))),
            epoch: self.epoch,
            error: None,
            ended: None,
        };
        let cache_rv = self.cache_resource_version();
        // Watch-list with RV unset is a consistent read: the cache must have
        // caught up with etcd.
        let fresh_enough = requested.unwrap_or(if rv_param.is_empty() {
            self.revision
        } else {
            0
        });
        let snapshot = match (params.send_initial_events, requested) {
            (Some(true), _) if fresh_enough > cache_rv => {
                watch.error = Some(status::too_large_resource_version(fresh_enough, cache_rv));
                return Ok(watch);
            }
            (Some(true), _) => cache_rv,
            // The legacy "current state first" of RV unset (served by etcd) or "0".
            (None, None) if rv_param.is_empty() => self.revision,
            (None, None) => cache_rv,
            (Some(false), None) => return Ok(watch),
            (_, Some(rv)) => {
                let floor = table.cache.floor();
                if rv < floor {
                    watch.error = Some(status::watch_too_old(rv, floor));
                }
                watch.cursor = rv;
                return Ok(watch);
            }
        };
        watch.cursor = snapshot;
        let prefix = watch
            .namespace
            .as_deref()
            .map(|ns| format!("{ns}/"))
            .unwrap_or_default();
        for (_, versions) in table
            .objects
            .range(ObjectKey::from_raw(&prefix)..)
            .take_while(|(k, _)| k.as_str().starts_with(&prefix))
        {
            if let Some(object) = at(versions, snapshot)
                && watch.selects(object)
            {
                watch.initial.push_back(view(object, &watch.api_version));
            }
        }
        if params.send_initial_events == Some(true)
            && params.allow_watch_bookmarks
            && self.config.initial_events_end_bookmark
        {
            watch.end_bookmark = Some(snapshot);
        }
        Ok(watch)
    }

    fn validate_watch_params(&self, params: &WatchParams) -> Result<()> {
        let mut errors = Vec::new();
        let matching = params.resource_version_match;
        if params.send_initial_events.is_some() {
            if matching != Some(ResourceVersionMatch::NotOlderThan) {
                errors.push(FieldError::forbidden(
                    "resourceVersionMatch",
                    "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
                ));
            }
            if !self.config.watch_list {
                errors.push(FieldError::forbidden(
                    "sendInitialEvents",
                    "sendInitialEvents is forbidden for watch unless the WatchList feature gate is enabled",
                ));
            }
        }
        if let Some(m) = matching {
            if params.send_initial_events.is_none() {
                errors.push(FieldError::forbidden(
                    "resourceVersionMatch",
                    "resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided",
                ));
            }
            if m != ResourceVersionMatch::NotOlderThan {
                errors.push(FieldError::not_supported(
                    "resourceVersionMatch",
                    m.as_str(),
                    &["NotOlderThan"],
                ));
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(status::invalid_list_options(&errors))
        }
    }

    // --- writes

    /// CREATE (the HTTP front answers 201). `namespace` is the request's
    /// (ignored for cluster-scoped resources); the body's `metadata.namespace`
    /// must be empty or the same. A created CustomResourceDefinition is
    /// served at once (its status says `Established`).
    pub fn create(
        &mut self,
        gvr: &Gvr,
        namespace: Option<&str>,
        object: Value,
        now: Instant,
    ) -> Result<Arc<Value>> {
        let resource = self.registry.lookup(gvr)?;
        self.create_object(&resource, &gvr.version, namespace, object, now)
    }

    fn create_object(
        &mut self,
        resource: &Arc<Resource>,
        version: &str,
        namespace: Option<&str>,
        mut object: Value,
        now: Instant,
    ) -> Result<Arc<Value>> {
        let namespace = self.request_namespace(resource, namespace)?;
        if !object.is_object() {
            return Err(status::bad_request(
                "the body of the request is not a JSON object",
            ));
        }
        let meta = metadata_mut(&mut object);
        if let Some(ns) = &namespace {
            match meta.get("namespace").and_then(Value::as_str) {
                Some(body_ns) if !body_ns.is_empty() && body_ns != ns => {
                    return Err(status::bad_request(
                        "the namespace of the provided object does not match the namespace sent on the request",
                    ));
                }
                _ => {
                    meta.insert("namespace".into(), ns.clone().into());
                }
            }
        } else {
            meta.remove("namespace");
        }
        if meta
            .get("resourceVersion")
            .and_then(Value::as_str)
            .is_some_and(|rv| !rv.is_empty())
        {
            return Err(status::internal(
                "resourceVersion should not be set on objects to be created",
            ));
        }
        let mut name = meta
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        let generate = meta
            .get("generateName")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        let table_key = resource.group_resource();
        if name.is_empty() && !generate.is_empty() {
            // The server retries a generated name that is taken.
            for _ in 0..8 {
                name = format!("{generate}{}", self.random_suffix());
                let key = ObjectKey::new(namespace.as_deref(), &name);
                if self
                    .tables
                    .get(&table_key)
                    .and_then(|t| t.latest(&key))
                    .is_none()
                {
                    break;
                }
            }
        }
        if name.is_empty() {
            return Err(status::invalid(
                resource,
                "",
                &[FieldError::required(
                    "metadata.name",
                    "name or generateName is required",
                )],
            ));
        }
        let mut errors = validate_name(resource.name_rule, &name);
        errors.extend(check_labels(&object)?);
        if !errors.is_empty() {
            return Err(status::invalid(resource, &name, &errors));
        }
        if let Some(ns) = &namespace {
            match self.namespace_terminating(ns) {
                None => return Err(status::namespace_not_found(ns)),
                Some(true) => {
                    return Err(status::forbidden(
                        &format!(
                            "unable to create new content in namespace {ns} because it is being terminated"
                        ),
                        resource,
                        &name,
                    ));
                }
                Some(false) => {}
            }
        }
        let key = ObjectKey::new(namespace.as_deref(), &name);
        if self
            .tables
            .get(&table_key)
            .and_then(|t| t.latest(&key))
            .is_some()
        {
            return Err(status::already_exists(resource, &name));
        }
        let uid = self.random_uid();
        let timestamp = self.timestamp(now);
        let object_map = object
            .as_object_mut()
            .ok_or_else(|| status::bad_request("not an object"))?;
        object_map.insert(
            "apiVersion".into(),
            resource.api_version(&resource.storage_version).into(),
        );
        object_map.insert("kind".into(), resource.kind.clone().into());
        let meta = metadata_mut(&mut object);
        meta.insert("name".into(), name.clone().into());
        meta.insert("uid".into(), uid.into());
        meta.insert("creationTimestamp".into(), timestamp.into());
        meta.remove("deletionTimestamp");
        meta.remove("deletionGracePeriodSeconds");
        if resource.tracks_generation {
            meta.insert("generation".into(), 1.into());
        } else {
            meta.remove("generation");
        }
        self.prepare_create(resource, &name, &mut object)?;
        let stored = self.write(&table_key, key, object, EventKind::Added);
        if is_crd(&table_key) {
            self.serve_crd(&stored);
        }
        Ok(view(&stored, &resource.api_version(version)))
    }

    /// Defaults the server fills in on create, per resource.
    fn prepare_create(
        &mut self,
        resource: &Resource,
        name: &str,
        object: &mut Value,
    ) -> Result<()> {
        match (resource.group.as_str(), resource.plural.as_str()) {
            ("", "namespaces") => {
                let labels = metadata_mut(object)
                    .entry("labels")
                    .or_insert_with(|| json!({}));
                if let Some(labels) = labels.as_object_mut() {
                    labels.insert("kubernetes.io/metadata.name".into(), name.into());
                }
                object["spec"] = json!({"finalizers": ["kubernetes"]});
                object["status"] = json!({"phase": "Active"});
            }
            ("apiextensions.k8s.io", "customresourcedefinitions") => {
                let crd = Resource::from_crd(object)
                    .map_err(|errors| status::invalid(resource, name, &errors))?;
                let finalizers = metadata_mut(object)
                    .entry("finalizers")
                    .or_insert_with(|| json!([]));
                if let Some(list) = finalizers.as_array_mut()
                    && !list.iter().any(|f| f == CRD_CLEANUP_FINALIZER)
                {
                    list.push(CRD_CLEANUP_FINALIZER.into());
                }
                object["status"] = json!({
                    "acceptedNames": object["spec"]["names"].clone(),
                    "storedVersions": [crd.storage_version],
                    "conditions": [
                        {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts",
                         "message": "no conflicts found"},
                        {"type": "Established", "status": "True", "reason": "InitialNamesAccepted",
                         "message": "the initial names have been accepted"},
                    ],
                });
            }
            _ => {}
        }
        Ok(())
    }

    fn serve_crd(&mut self, crd: &Value) {
        if let Ok(resource) = Resource::from_crd(crd) {
            let gr = resource.group_resource();
            if self.registry.get(&gr).is_some_and(|r| !r.is_custom) {
                // A CRD cannot take over a built-in resource.
                return;
            }
            self.registry.register(resource);
            self.add_table(gr);
        }
    }

    fn add_table(&mut self, gr: GroupResource) {
        let (capacity, rv) = (self.config.watch_cache_capacity, self.revision);
        self.tables.entry(gr).or_insert_with(|| Table {
            objects: BTreeMap::new(),
            cache: WatchCache::new(capacity, rv),
        });
    }

    /// UPDATE (PUT) of the object or its status, with optimistic concurrency:
    /// a `metadata.resourceVersion` in the body must be the current one.
    pub fn update(
        &mut self,
        gvr: &Gvr,
        namespace: Option<&str>,
        name: &str,
        subresource: Subresource,
        object: Value,
        now: Instant,
    ) -> Result<Arc<Value>> {
        let resource = self.registry.lookup(gvr)?;
        let current = self.current(&resource, namespace, name, subresource)?;
        if !object.is_object() {
            return Err(status::bad_request(
                "the body of the request is not a JSON object",
            ));
        }
        self.replace(&resource, &gvr.version, &current, subresource, object, now)
    }

    /// PATCH of the object or its status. JSON and merge patches are applied
    /// here; strategic merge and apply go to the [`PatchHook`], or get 415.
    /// An apply to a missing object creates it (the HTTP front answers 201
    /// then: it can tell by a `get` before the call); every other patch of a
    /// missing object is 404.
    pub fn patch(
        &mut self,
        gvr: &Gvr,
        namespace: Option<&str>,
        name: &str,
        subresource: Subresource,
        patch: &Patch,
        now: Instant,
    ) -> Result<Arc<Value>> {
        let resource = self.registry.lookup(gvr)?;
        let found = self.current(&resource, namespace, name, subresource);
        if let (
            Patch::Apply {
                body,
                field_manager,
                force,
            },
            Err(e),
        ) = (patch, &found)
            && e.code() == 404
        {
            let hook = self
                .patch_hook
                .as_ref()
                .ok_or_else(|| unsupported(&resource))?;
            let object = hook.apply(&resource, None, body, field_manager, *force)?;
            return self.create_object(&resource, &gvr.version, namespace, object, now);
        }
        let current = found?;
        let mut doc = (*view(&current, &resource.api_version(&gvr.version))).clone();
        let patched = match patch {
            Patch::Json(ops) => json_patch(&doc, ops)?,
            Patch::Merge(p) => {
                if !p.is_object() {
                    return Err(status::bad_request(
                        "json: cannot unmarshal into Go value of type map[string]interface {}",
                    ));
                }
                merge_patch(&mut doc, p);
                doc
            }
            Patch::StrategicMerge(p) => {
                let hook = self
                    .patch_hook
                    .as_ref()
                    .ok_or_else(|| unsupported(&resource))?;
                hook.strategic_merge(&resource, &doc, p)?
            }
            Patch::Apply {
                body,
                field_manager,
                force,
            } => {
                let hook = self
                    .patch_hook
                    .as_ref()
                    .ok_or_else(|| unsupported(&resource))?;
                hook.apply(&resource, Some(&doc), body, field_manager, *force)?
            }
        };
        if !patched.is_object() {
            return Err(status::bad_request(
                "the patched object is not a JSON object",
            ));
        }
        self.replace(&resource, &gvr.version, &current, subresource, patched, now)
    }

    fn current(
        &self,
        resource: &Arc<Resource>,
        namespace: Option<&str>,
        name: &str,
        subresource: Subresource,
    ) -> Result<Arc<Value>> {
        if subresource == Subresource::Status && !resource.has_status {
            return Err(status::no_such_resource());
        }
        let key = object_key(resource, namespace, name)?;
        self.tables
            .get(&resource.group_resource())
            .and_then(|t| t.latest(&key))
            .cloned()
            .ok_or_else(|| status::not_found(resource, name))
    }

    /// The update path shared by PUT and PATCH: keep what the client may not
    /// change, check the resourceVersion, bump the generation, skip no-ops.
    fn replace(
        &mut self,
        resource: &Arc<Resource>,
        version: &str,
        current: &Arc<Value>,
        subresource: Subresource,
        mut object: Value,
        now: Instant,
    ) -> Result<Arc<Value>> {
        let name = current["metadata"]["name"]
            .as_str()
            .unwrap_or("")
            .to_owned();
        let namespace = current["metadata"]["namespace"].as_str().map(str::to_owned);
        let body_meta = metadata_mut(&mut object);
        if let Some(body_name) = body_meta.get("name").and_then(Value::as_str)
            && body_name != name
        {
            return Err(status::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
        if let (Some(ns), Some(body_ns)) = (
            &namespace,
            body_meta.get("namespace").and_then(Value::as_str),
        ) && !body_ns.is_empty()
            && body_ns != ns
        {
            return Err(status::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        let current_rv = current["metadata"]["resourceVersion"]
            .as_str()
            .unwrap_or("");
        if let Some(rv) = body_meta.get("resourceVersion").and_then(Value::as_str)
            && !rv.is_empty()
            && rv != current_rv
        {
            return Err(status::conflict(resource, &name, status::OBJECT_MODIFIED));
        }
        if let Some(uid) = body_meta.get("uid").and_then(Value::as_str)
            && !uid.is_empty()
            && Some(uid) != current["metadata"]["uid"].as_str()
        {
            return Err(status::invalid(
                resource,
                &name,
                &[FieldError::invalid(
                    "metadata.uid",
                    uid,
                    "field is immutable",
                )],
            ));
        }
        let mut next = match subresource {
            Subresource::Status => {
                let mut next = (**current).clone();
                next["status"] = object.get("status").cloned().unwrap_or(Value::Null);
                next
            }
            Subresource::Main => {
                if resource.has_status {
                    match current.get("status") {
                        Some(s) => object["status"] = s.clone(),
                        None => {
                            if let Some(m) = object.as_object_mut() {
                                m.remove("status");
                            }
                        }
                    }
                }
                let old_meta = &current["metadata"];
                let meta = metadata_mut(&mut object);
                for field in [
                    "name",
                    "namespace",
                    "uid",
                    "creationTimestamp",
                    "deletionTimestamp",
                    "deletionGracePeriodSeconds",
                    "generation",
                ] {
                    match old_meta.get(field) {
                        Some(v) => meta.insert(field.into(), v.clone()),
                        None => meta.remove(field),
                    };
                }
                object["apiVersion"] = current["apiVersion"].clone();
                object["kind"] = current["kind"].clone();
                object
            }
        };
        let label_errors = check_labels(&next)?;
        if !label_errors.is_empty() {
            return Err(status::invalid(resource, &name, &label_errors));
        }
        if next["status"].is_null()
            && let Some(m) = next.as_object_mut()
        {
            m.remove("status");
        }
        set_resource_version_str(&mut next, current_rv);
        if next == **current {
            return Ok(view(current, &resource.api_version(version)));
        }
        if resource.tracks_generation && spec_changed(current, &next) {
            let generation = current["metadata"]["generation"].as_i64().unwrap_or(0) + 1;
            metadata_mut(&mut next).insert("generation".into(), generation.into());
        }
        let group_resource = resource.group_resource();
        if is_crd(&group_resource) {
            Resource::from_crd(&next)
                .map_err(|errors| status::invalid(resource, &name, &errors))?;
        }
        let key = ObjectKey::new(namespace.as_deref(), &name);
        let finalized = !is_namespaces(&group_resource)
            && next["metadata"].get("deletionTimestamp").is_some()
            && next["metadata"]["finalizers"]
                .as_array()
                .is_none_or(|f| f.is_empty());
        let stored = if finalized {
            self.remove(resource, key, next, now)
        } else {
            self.write(&group_resource, key, next, EventKind::Modified)
        };
        if is_crd(&group_resource) && !finalized {
            self.serve_crd(&stored);
        }
        Ok(view(&stored, &resource.api_version(version)))
    }

    /// DELETE with preconditions. An object with finalizers is only marked
    /// (`deletionTimestamp`); a namespace takes what it contains with it.
    pub fn delete(
        &mut self,
        gvr: &Gvr,
        namespace: Option<&str>,
        name: &str,
        options: &DeleteOptions,
        now: Instant,
    ) -> Result<Deleted> {
        let resource = self.registry.lookup(gvr)?;
        let current = self.current(&resource, namespace, name, Subresource::Main)?;
        if is_namespaces(&resource.group_resource()) && IMMORTAL_NAMESPACES.contains(&name) {
            return Err(status::forbidden(
                "this namespace may not be deleted",
                &resource,
                name,
            ));
        }
        if let Some(uid) = &options.uid {
            let have = current["metadata"]["uid"].as_str().unwrap_or("");
            if uid != have {
                return Err(status::conflict(
                    &resource,
                    name,
                    &format!(
                        "Precondition failed: UID in precondition: {uid}, UID in object meta: {have}"
                    ),
                ));
            }
        }
        if let Some(rv) = &options.resource_version {
            let have = current["metadata"]["resourceVersion"]
                .as_str()
                .unwrap_or("");
            if rv != have {
                return Err(status::conflict(
                    &resource,
                    name,
                    &format!(
                        "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {have}"
                    ),
                ));
            }
        }
        let api_version = resource.api_version(&gvr.version);
        let policy = options.propagation_policy.unwrap_or_default();
        let object = self.delete_object(&resource, &current, policy, now);
        if resource.returns_deleted_object || object["metadata"].get("deletionTimestamp").is_some()
        {
            return Ok(Deleted::Object(view(&object, &api_version)));
        }
        let uid = object["metadata"]["uid"].as_str().unwrap_or("");
        Ok(Deleted::Status(Box::new(status::deleted(
            &resource, name, uid,
        ))))
    }

    /// DELETECOLLECTION: deletes what a list with `params` (selectors; not
    /// pagination) selects, and answers with the deleted objects. The
    /// preconditions of `options` are not used (as the server ignores them
    /// here); its propagation policy is.
    pub fn delete_collection(
        &mut self,
        gvr: &Gvr,
        namespace: Option<&str>,
        params: &ListParams,
        options: &DeleteOptions,
        now: Instant,
    ) -> Result<List> {
        let resource = self.registry.lookup(gvr)?;
        let selected = ListParams {
            label_selector: params.label_selector.clone(),
            field_selector: params.field_selector.clone(),
            ..ListParams::default()
        };
        let mut list = self.list(gvr, namespace, &selected)?;
        for item in &mut list.items {
            let name = item["metadata"]["name"].as_str().unwrap_or("").to_owned();
            let item_ns = item["metadata"]["namespace"].as_str().map(str::to_owned);
            let current = self.current(&resource, item_ns.as_deref(), &name, Subresource::Main)?;
            let policy = options.propagation_policy.unwrap_or_default();
            let deleted = self.delete_object(&resource, &current, policy, now);
            *item = view(&deleted, &list.api_version);
        }
        list.resource_version = self.revision.to_string();
        Ok(list)
    }

    /// Deletes `current` now, or marks it when finalizers hold it; returns
    /// what the server answers with.
    fn delete_object(
        &mut self,
        resource: &Arc<Resource>,
        current: &Arc<Value>,
        policy: PropagationPolicy,
        now: Instant,
    ) -> Arc<Value> {
        let name = current["metadata"]["name"]
            .as_str()
            .unwrap_or("")
            .to_owned();
        let namespace = current["metadata"]["namespace"].as_str().map(str::to_owned);
        let key = ObjectKey::new(namespace.as_deref(), &name);
        let group_resource = resource.group_resource();
        let is_namespace = is_namespaces(&group_resource);
        let has_finalizers = current["metadata"]["finalizers"]
            .as_array()
            .is_some_and(|f| !f.is_empty());
        if current["metadata"].get("deletionTimestamp").is_some()
            && (has_finalizers || is_namespace)
        {
            return Arc::clone(current);
        }
        let uid = current["metadata"]["uid"].as_str().unwrap_or("").to_owned();
        let dependents = if self.owned > 0 && policy != PropagationPolicy::Background {
            self.dependents(&uid, namespace.as_deref())
        } else {
            Vec::new()
        };
        if policy == PropagationPolicy::Orphan {
            for (dep_resource, dependent) in dependents {
                self.drop_owner_reference(&dep_resource, &dependent, &uid);
            }
        } else if policy == PropagationPolicy::Foreground && !dependents.is_empty() && !is_namespace
        {
            return self.delete_in_foreground(resource, current, dependents, now);
        }
        if !has_finalizers && !is_namespace {
            return self.remove(resource, key, (**current).clone(), now);
        }
        let mut marked = (**current).clone();
        let meta = metadata_mut(&mut marked);
        meta.insert("deletionTimestamp".into(), self.timestamp(now).into());
        meta.insert("deletionGracePeriodSeconds".into(), 0.into());
        if is_namespace {
            marked["status"] = json!({"phase": "Terminating"});
        }
        let marked = self.write(&group_resource, key.clone(), marked, EventKind::Modified);
        if is_namespace {
            self.empty_namespace(&name, now);
        }
        let cleanup = marked["metadata"]["finalizers"]
            .as_array()
            .is_some_and(|f| f.iter().any(|f| f == CRD_CLEANUP_FINALIZER));
        if is_crd(&group_resource) && cleanup {
            self.clean_up_crd(resource, key, &marked, now);
        }
        marked
    }

    /// The CRD finalizer's work: the custom resources go, the resource stops
    /// being served, the finalizer comes off (and the CRD goes if it was the last).
    fn clean_up_crd(
        &mut self,
        resource: &Arc<Resource>,
        key: ObjectKey,
        marked: &Value,
        now: Instant,
    ) {
        if let Ok(served) = Resource::from_crd(marked) {
            self.unserve(&served);
        }
        let mut released = marked.clone();
        let meta = metadata_mut(&mut released);
        let remaining = match meta.get_mut("finalizers").and_then(Value::as_array_mut) {
            Some(list) => {
                list.retain(|f| f != CRD_CLEANUP_FINALIZER);
                list.len()
            }
            None => 0,
        };
        if remaining == 0 {
            meta.remove("finalizers");
            self.remove(resource, key, released, now);
        } else {
            self.write(
                &resource.group_resource(),
                key,
                released,
                EventKind::Modified,
            );
        }
    }

    /// The namespace controller's work: delete everything in `namespace`,
    /// then the namespace itself once nothing is left.
    fn empty_namespace(&mut self, namespace: &str, now: Instant) {
        let prefix = format!("{namespace}/");
        let namespaced: Vec<Arc<Resource>> = self
            .registry
            .iter()
            .filter(|r| r.namespaced)
            .filter_map(|r| self.registry.get(&r.group_resource()).cloned())
            .collect();
        for resource in namespaced {
            let victims: Vec<Arc<Value>> = self
                .tables
                .get(&resource.group_resource())
                .into_iter()
                .flat_map(|t| {
                    t.objects
                        .range(ObjectKey::from_raw(&prefix)..)
                        .take_while(|(k, _)| k.as_str().starts_with(&prefix))
                        .filter_map(|(_, v)| v.last()?.object.clone())
                })
                .collect();
            for victim in victims {
                self.delete_object(&resource, &victim, PropagationPolicy::Background, now);
            }
        }
        self.finish_namespace(namespace, now);
    }

    /// Removes a terminating namespace once it holds nothing.
    fn finish_namespace(&mut self, namespace: &str, now: Instant) {
        let prefix = format!("{namespace}/");
        let occupied = self.tables.iter().any(|(gr, t)| {
            self.registry.get(gr).is_some_and(|r| r.namespaced)
                && t.objects
                    .range(ObjectKey::from_raw(&prefix)..)
                    .take_while(|(k, _)| k.as_str().starts_with(&prefix))
                    .any(|(_, v)| v.last().is_some_and(|v| v.object.is_some()))
        });
        if occupied {
            return;
        }
        let ns_gr = namespace_group_resource();
        let key = ObjectKey::cluster(namespace);
        let Some(current) = self
            .tables
            .get(&ns_gr)
            .and_then(|t| t.latest(&key))
            .cloned()
        else {
            return;
        };
        if let Some(resource) = self.registry.get(&ns_gr).cloned() {
            self.remove(&resource, key, (*current).clone(), now);
        }
    }

    /// Writes the tombstone of `object` and its DELETED event; a CRD takes its
    /// resource with it, a namespace's last object may let the namespace go.
    fn remove(
        &mut self,
        resource: &Arc<Resource>,
        key: ObjectKey,
        object: Value,
        now: Instant,
    ) -> Arc<Value> {
        let group_resource = resource.group_resource();
        if is_crd(&group_resource)
            && let Ok(served) = Resource::from_crd(&object)
        {
            self.unserve(&served);
        }
        let namespace = key.namespace().map(str::to_owned);
        let deleted = self.write(&group_resource, key, object, EventKind::Deleted);
        if self.owned > 0 {
            let uid = deleted["metadata"]["uid"].as_str().unwrap_or("");
            self.collect_garbage(uid, namespace.as_deref(), now);
        }
        if let Some(ns) = namespace
            && self.namespace_terminating(&ns) == Some(true)
        {
            self.finish_namespace(&ns, now);
        }
        deleted
    }

    /// The live objects whose `ownerReferences` name `owner_uid`: in the
    /// owner's namespace, or anywhere for a cluster-scoped owner.
    fn dependents(
        &self,
        owner_uid: &str,
        namespace: Option<&str>,
    ) -> Vec<(Arc<Resource>, Arc<Value>)> {
        let prefix = namespace.map(|ns| format!("{ns}/")).unwrap_or_default();
        let mut found = Vec::new();
        for (gr, table) in &self.tables {
            let Some(resource) = self.registry.get(gr) else {
                continue;
            };
            if namespace.is_some() && !resource.namespaced {
                continue;
            }
            let objects = table
                .objects
                .range(ObjectKey::from_raw(&prefix)..)
                .take_while(|(k, _)| k.as_str().starts_with(&prefix))
                .filter_map(|(_, v)| v.last()?.object.as_ref());
            for object in objects {
                if owner_uids(object).any(|uid| uid == owner_uid) {
                    found.push((Arc::clone(resource), Arc::clone(object)));
                }
            }
        }
        found
    }

    /// The garbage collector after `owner_uid` went: a dependent with another
    /// live owner loses the reference, any other dependent is deleted.
    fn collect_garbage(&mut self, owner_uid: &str, namespace: Option<&str>, now: Instant) {
        for (resource, dependent) in self.dependents(owner_uid, namespace) {
            let Some(current) = self.refetch(&resource, &dependent) else {
                continue;
            };
            let other_owner_alive =
                owner_uids(&current).any(|uid| uid != owner_uid && self.live_uids.contains(uid));
            if other_owner_alive {
                self.drop_owner_reference(&resource, &current, owner_uid);
            } else {
                self.delete_object(&resource, &current, PropagationPolicy::Background, now);
            }
        }
    }

    /// Foreground deletion: the owner waits (deletionTimestamp and the
    /// `foregroundDeletion` finalizer) while its dependents go first.
    fn delete_in_foreground(
        &mut self,
        resource: &Arc<Resource>,
        current: &Arc<Value>,
        dependents: Vec<(Arc<Resource>, Arc<Value>)>,
        now: Instant,
    ) -> Arc<Value> {
        let key = ObjectKey::new(
            current["metadata"]["namespace"].as_str(),
            current["metadata"]["name"].as_str().unwrap_or(""),
        );
        let group_resource = resource.group_resource();
        let mut marked = (**current).clone();
        let meta = metadata_mut(&mut marked);
        meta.insert("deletionTimestamp".into(), self.timestamp(now).into());
        meta.insert("deletionGracePeriodSeconds".into(), 0.into());
        let finalizers = meta.entry("finalizers").or_insert_with(|| json!([]));
        if let Some(list) = finalizers.as_array_mut() {
            list.push(FOREGROUND_FINALIZER.into());
        }
        let marked = self.write(&group_resource, key.clone(), marked, EventKind::Modified);
        for (dep_resource, dependent) in dependents {
            if let Some(current) = self.refetch(&dep_resource, &dependent) {
                self.delete_object(&dep_resource, &current, PropagationPolicy::Foreground, now);
            }
        }
        let mut released = (*marked).clone();
        let meta = metadata_mut(&mut released);
        let remaining = match meta.get_mut("finalizers").and_then(Value::as_array_mut) {
            Some(list) => {
                list.retain(|f| f != FOREGROUND_FINALIZER);
                list.len()
            }
            None => 0,
        };
        if remaining == 0 {
            meta.remove("finalizers");
            self.remove(resource, key, released, now);
            return marked;
        }
        self.write(&group_resource, key, released, EventKind::Modified)
    }

    fn drop_owner_reference(
        &mut self,
        resource: &Arc<Resource>,
        dependent: &Arc<Value>,
        owner_uid: &str,
    ) {
        let Some(current) = self.refetch(resource, dependent) else {
            return;
        };
        let mut next = (*current).clone();
        let meta = metadata_mut(&mut next);
        if let Some(refs) = meta
            .get_mut("ownerReferences")
            .and_then(Value::as_array_mut)
        {
            refs.retain(|r| r["uid"].as_str() != Some(owner_uid));
            if refs.is_empty() {
                meta.remove("ownerReferences");
            }
        }
        let key = ObjectKey::new(
            current["metadata"]["namespace"].as_str(),
            current["metadata"]["name"].as_str().unwrap_or(""),
        );
        self.write(&resource.group_resource(), key, next, EventKind::Modified);
    }

    /// The latest state of `object`, if it still exists.
    fn refetch(&self, resource: &Resource, object: &Value) -> Option<Arc<Value>> {
        let key = ObjectKey::new(
            object["metadata"]["namespace"].as_str(),
            object["metadata"]["name"].as_str().unwrap_or(""),
        );
        self.tables
            .get(&resource.group_resource())?
            .latest(&key)
            .cloned()
    }

    fn unserve(&mut self, served: &Resource) {
        let gr = served.group_resource();
        let Some(resource) = self.registry.get(&gr).cloned() else {
            return;
        };
        let all: Vec<Arc<Value>> = self
            .tables
            .get(&gr)
            .into_iter()
            .flat_map(|t| t.objects.values().filter_map(|v| v.last()?.object.clone()))
            .collect();
        for object in all {
            let key = ObjectKey::new(
                object["metadata"]["namespace"].as_str(),
                object["metadata"]["name"].as_str().unwrap_or(""),
            );
            self.write(&gr, key, (*object).clone(), EventKind::Deleted);
        }
        self.registry.unregister(&resource.group_resource());
        self.tables.remove(&gr);
    }

    /// Stores `object` as the next revision and records the event.
    fn write(
        &mut self,
        gr: &GroupResource,
        key: ObjectKey,
        mut object: Value,
        kind: EventKind,
    ) -> Arc<Value> {
        self.revision += 1;
        let rv = self.revision;
        set_resource_version(&mut object, rv);
        let object = Arc::new(object);
        let capacity = self.config.watch_cache_capacity;
        let table = self.tables.entry(gr.clone()).or_insert_with(|| Table {
            objects: BTreeMap::new(),
            cache: WatchCache::new(capacity, rv - 1),
        });
        let versions = table.objects.entry(key).or_default();
        let prev = versions.last().and_then(|v| v.object.clone());
        let had_owners = prev
            .as_deref()
            .is_some_and(|p| owner_uids(p).next().is_some());
        let has_owners = kind != EventKind::Deleted && owner_uids(&object).next().is_some();
        self.owned = (self.owned + usize::from(has_owners)).saturating_sub(usize::from(had_owners));
        if let Some(uid) = object["metadata"]["uid"].as_str() {
            match kind {
                EventKind::Added => {
                    self.live_uids.insert(uid.to_owned());
                }
                EventKind::Deleted => {
                    self.live_uids.remove(uid);
                }
                EventKind::Modified => {}
            }
        }
        versions.push(Version {
            rv,
            object: (kind != EventKind::Deleted).then(|| Arc::clone(&object)),
        });
        table.cache.push(CacheEvent {
            rv,
            kind,
            object: Arc::clone(&object),
            prev,
        });
        object
    }

    // --- small pieces

    fn request_namespace(
        &self,
        resource: &Resource,
        namespace: Option<&str>,
    ) -> Result<Option<String>> {
        if !resource.namespaced {
            return Ok(None);
        }
        match namespace.filter(|ns| !ns.is_empty()) {
            Some(ns) => Ok(Some(ns.to_owned())),
            None => Err(status::method_not_allowed()),
        }
    }

    /// Whether `namespace` is terminating; `None` when it does not exist.
    fn namespace_terminating(&self, namespace: &str) -> Option<bool> {
        let ns = self
            .tables
            .get(&namespace_group_resource())?
            .latest(&ObjectKey::cluster(namespace))?;
        Some(ns["status"]["phase"] == "Terminating")
    }

    fn timestamp(&self, now: Instant) -> String {
        let elapsed = now.saturating_duration_since(self.start).as_secs();
        rfc3339(
            self.config
                .start_unix_seconds
                .saturating_add(i64::try_from(elapsed).unwrap_or(0)),
        )
    }

    fn random_uid(&mut self) -> String {
        let hi = self.rng.next_u64();
        let lo = self.rng.next_u64();
        let hi = (hi & !0xf000) | 0x4000;
        let lo = (lo & !(0xc000_u64 << 48)) | (0x8000_u64 << 48);
        format!(
            "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
            hi >> 32,
            (hi >> 16) & 0xffff,
            hi & 0xffff,
            lo >> 48,
            lo & 0xffff_ffff_ffff
        )
    }

    fn random_suffix(&mut self) -> String {
        const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
        (0..5)
            .map(|_| ALPHABET[self.rng.below(ALPHABET.len() as u64) as usize] as char)
            .collect()
    }
}

fn unsupported(resource: &Resource) -> StatusError {
    if resource.is_custom {
        status::unsupported_patch_type(&[
            "application/json-patch+json",
            "application/merge-patch+json",
            "application/apply-patch+yaml",
        ])
    } else {
        status::unsupported_patch_type(ACCEPTED_WITHOUT_HOOK)
    }
}

const FOREGROUND_FINALIZER: &str = "foregroundDeletion";
const CRD_CLEANUP_FINALIZER: &str = "customresourcecleanup.apiextensions.k8s.io";

/// The uids in `object`'s `metadata.ownerReferences`.
fn owner_uids(object: &Value) -> impl Iterator<Item = &str> {
    object["metadata"]["ownerReferences"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["uid"].as_str())
}

fn namespace_group_resource() -> GroupResource {
    GroupResource {
        group: String::new(),
        resource: "namespaces".into(),
    }
}

fn is_namespaces(gr: &GroupResource) -> bool {
    gr.group.is_empty() && gr.resource == "namespaces"
}

fn is_crd(gr: &GroupResource) -> bool {
    gr.group == "apiextensions.k8s.io" && gr.resource == "customresourcedefinitions"
}

fn object_key(resource: &Resource, namespace: Option<&str>, name: &str) -> Result<ObjectKey> {
    if !resource.namespaced {
        return Ok(ObjectKey::cluster(name));
    }
    match namespace.filter(|ns| !ns.is_empty()) {
        Some(ns) => Ok(ObjectKey::namespaced(ns, name)),
        None => Err(status::method_not_allowed()),
    }
}

/// `object` as seen at `api_version` (objects are stored at the storage version).
fn view(object: &Arc<Value>, api_version: &str) -> Arc<Value> {
    if object["apiVersion"].as_str() == Some(api_version) {
        return Arc::clone(object);
    }
    let mut copy = (**object).clone();
    copy["apiVersion"] = Value::String(api_version.to_owned());
    Arc::new(copy)
}

/// `metadata` of `object`, made an empty map if it is missing or not a map.
/// `object` must be a JSON object (every caller checks).
fn metadata_mut(object: &mut Value) -> &mut Map<String, Value> {
    let slot = &mut object["metadata"];
    if !slot.is_object() {
        *slot = Value::Object(Map::new());
    }
    match slot {
        Value::Object(m) => m,
        _ => unreachable!("metadata was just made a map"),
    }
}

pub(crate) fn set_resource_version(object: &mut Value, rv: u64) {
    set_resource_version_str(object, &rv.to_string());
}

fn set_resource_version_str(object: &mut Value, rv: &str) {
    if object.is_object() {
        metadata_mut(object).insert("resourceVersion".into(), rv.into());
    }
}

/// Whether anything but `metadata` and `status` differs.
fn spec_changed(old: &Value, new: &Value) -> bool {
    let (Some(old), Some(new)) = (old.as_object(), new.as_object()) else {
        return old != new;
    };
    let skip = |k: &String| k != "metadata" && k != "status";
    old.iter()
        .filter(|(k, _)| skip(k))
        .ne(new.iter().filter(|(k, _)| skip(k)))
}

/// RFC 3339 to the second, UTC (`metav1.Time`).
fn rfc3339(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    // Howard Hinnant's civil-from-days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

// The HTTP front keeps the server behind a mutex and hands watches to
// connection tasks: both must cross threads.
const _: fn() = || {
    fn is_send<T: Send>() {}
    is_send::<ApiServer>();
    is_send::<Watch>();
};

#[cfg(test)]
mod tests;
