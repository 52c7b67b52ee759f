//! Requests as data: every verb on a resource becomes an
//! `http::Request<Bytes>` whose URI is a path and query only — the runtime
//! adds scheme, host and credentials, and sends it.
//!
//! This module owns the verbs ([`Builder`]), their parameters
//! ([`params`], beside [`crate::params`] for list and watch), the checks run
//! before anything is sent ([`validation`]), query encoding ([`query`]) and
//! content negotiation ([`negotiation`]). It does not send, retry or
//! rate-limit, and it does not decode responses ([`crate::response`],
//! [`crate::codec`]).
//!
//! ```
//! use k8s_openapi::api::core::v1::Pod;
//! use windlass_proto::params::{ListParams, WatchParams};
//! use windlass_proto::request::{Builder, Negotiation};
//!
//! let pods = Builder::of::<Pod>(Some("kube-system"))?.with_negotiation(Negotiation::Protobuf);
//! let list = pods.list(&ListParams { limit: Some(500), resource_version: Some("0".into()), ..Default::default() })?;
//! assert_eq!(list.uri(), "/api/v1/namespaces/kube-system/pods?limit=500&resourceVersion=0");
//! assert_eq!(list.headers()["accept"], "application/vnd.kubernetes.protobuf,application/json");
//!
//! let watch = pods.watch(&WatchParams { resource_version: Some("1234".into()), allow_watch_bookmarks: true, ..Default::default() })?;
//! assert_eq!(watch.uri(), "/api/v1/namespaces/kube-system/pods?allowWatchBookmarks=true&resourceVersion=1234&watch=true");
//! # Ok::<(), windlass_proto::request::RequestError>(())
//! ```

pub mod negotiation;
pub mod params;
pub mod query;
pub mod validation;

use bytes::Bytes;
use http::Method;
use http::header::{ACCEPT, CONTENT_TYPE};
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::codec::Format;
use crate::params::{ListParams, WatchParams};
use crate::resource::{ApiResource, PathError, Scope, TopLevelScope};

pub use negotiation::{IncludeObject, Negotiation};
pub use params::{
    DeleteParams, FieldValidation, GetParams, LogParams, LogStream, Patch, PatchParams, PostParams,
    Preconditions, PropagationPolicy,
};
pub use validation::ValidationError;

use query::Query;

/// A request that cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// A name, namespace or subresource that cannot be a path segment, or a scope mismatch.
    #[error(transparent)]
    Path(#[from] PathError),
    /// Parameters the API server would reject.
    #[error(transparent)]
    Validation(#[from] ValidationError),
    /// A body that did not serialize.
    #[error("serializing the {what} body: {source}")]
    Serialize {
        /// Which body.
        what: &'static str,
        /// The serializer's error.
        #[source]
        source: serde_json::Error,
    },
    /// `http` rejected the request (not expected: every segment is escaped).
    #[error("building the request for {uri:?}: {source}")]
    Build {
        /// The path and query.
        uri: String,
        /// `http`'s error.
        #[source]
        source: http::Error,
    },
}

/// Builds the requests for one resource, in one namespace or across all of them.
///
/// It holds only the resource, the namespace and the negotiation: build one
/// per resource and namespace and reuse it for every call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Builder {
    resource: ApiResource,
    namespace: Option<String>,
    negotiation: Negotiation,
    body_format: Format,
    include_object: Option<IncludeObject>,
}

impl Builder {
    /// Requests for `resource` in `namespace`; `None` is every namespace for a
    /// namespaced resource, and the only choice for a cluster-scoped one.
    pub fn new(resource: ApiResource, namespace: Option<&str>) -> Result<Self, RequestError> {
        resource.collection_path(namespace)?;
        Ok(Self {
            resource,
            namespace: namespace.map(str::to_owned),
            negotiation: Negotiation::Json,
            body_format: Format::Json,
            include_object: None,
        })
    }

    /// Requests for a k8s-openapi type.
    pub fn of<K>(namespace: Option<&str>) -> Result<Self, RequestError>
    where
        K: k8s_openapi::Resource,
        K::Scope: TopLevelScope,
    {
        Self::new(ApiResource::of::<K>(), namespace)
    }

    /// Ask for this representation (default [`Negotiation::Json`]).
    pub fn with_negotiation(mut self, negotiation: Negotiation) -> Self {
        self.negotiation = negotiation;
        self
    }

    /// Label create and replace bodies as this encoding (default JSON). The
    /// bodies passed in must be encoded accordingly. Patches and
    /// `DeleteOptions` are always JSON.
    pub fn with_body_format(mut self, format: Format) -> Self {
        self.body_format = format;
        self
    }

    /// With [`Negotiation::Table`], ask for each row's object in this form
    /// (`includeObject` on get, list and watch; ignored otherwise).
    pub fn with_table_include_object(mut self, include: IncludeObject) -> Self {
        self.include_object = Some(include);
        self
    }

    /// The resource.
    pub fn resource(&self) -> &ApiResource {
        &self.resource
    }

    /// The namespace, if any.
    pub fn namespace(&self) -> Option<&str> {
        self.namespace.as_deref()
    }

    /// The representation asked for.
    pub fn negotiation(&self) -> Negotiation {
        self.negotiation
    }

    // --- collections

    /// `GET` the collection (validated with [`validation::validate_list`]).
    pub fn list(&self, params: &ListParams) -> Result<http::Request<Bytes>, RequestError> {
        validation::validate_list(params)?;
        let mut query = Query::new();
        push_list_params(&mut query, params);
        self.push_table_params(&mut query);
        let uri = query.to_path_and_query(&self.collection_path()?);
        self.build(Method::GET, uri, Some(self.negotiation.accept(true)), None)
    }

    /// `GET ?watch=true` on the collection (validated with [`validation::validate_watch`]).
    /// A watch-list (streaming list) is `send_initial_events: Some(true)`,
    /// `resource_version_match: Some(NotOlderThan)`, `allow_watch_bookmarks: true`.
    pub fn watch(&self, params: &WatchParams) -> Result<http::Request<Bytes>, RequestError> {
        validation::validate_watch(params)?;
        let mut query = Query::new();
        query.push("watch", "true");
        push_selectors(&mut query, &params.label_selector, &params.field_selector);
        push_non_empty(&mut query, "resourceVersion", &params.resource_version);
        query.push_opt(
            "resourceVersionMatch",
            params.resource_version_match.map(|m| m.as_str()),
        );
        query.push_opt("timeoutSeconds", params.timeout_seconds);
        if params.allow_watch_bookmarks {
            query.push("allowWatchBookmarks", "true");
        }
        query.push_opt("sendInitialEvents", params.send_initial_events);
        self.push_table_params(&mut query);
        let uri = query.to_path_and_query(&self.collection_path()?);
        self.build(Method::GET, uri, Some(self.negotiation.accept(true)), None)
    }

    /// `POST` a new object to the collection. `body` is the object, encoded in
    /// the body format (see [`crate::codec::json::encode`]). A namespaced
    /// resource needs a namespace.
    pub fn create(
        &self,
        params: &PostParams,
        body: Bytes,
    ) -> Result<http::Request<Bytes>, RequestError> {
        validation::validate_post(params)?;
        if self.resource.scope == Scope::Namespaced && self.namespace.is_none() {
            return Err(PathError::NamespaceRequired {
                plural: self.resource.plural.clone(),
            }
            .into());
        }
        let uri = post_query(params).to_path_and_query(&self.collection_path()?);
        self.build_with_body(Method::POST, uri, body)
    }

    /// `DELETE` the collection, selected by `list` (query) with `delete` as the
    /// `DeleteOptions` body.
    pub fn delete_collection(
        &self,
        delete: &DeleteParams,
        list: &ListParams,
    ) -> Result<http::Request<Bytes>, RequestError> {
        validation::validate_list(list)?;
        let mut query = Query::new();
        push_list_params(&mut query, list);
        let uri = query.to_path_and_query(&self.collection_path()?);
        let body = delete_options_body(delete)?;
        self.build(
            Method::DELETE,
            uri,
            Some(self.negotiation.accept(true)),
            Some((Format::Json.media_type(), body)),
        )
    }

    // --- one object

    /// `GET` one object.
    pub fn get(
        &self,
        name: &str,
        params: &GetParams,
    ) -> Result<http::Request<Bytes>, RequestError> {
        let mut query = Query::new();
        push_non_empty(&mut query, "resourceVersion", &params.resource_version);
        self.push_table_params(&mut query);
        let uri = query.to_path_and_query(&self.object_path(name)?);
        self.build(Method::GET, uri, Some(self.negotiation.accept(false)), None)
    }

    /// `PUT` a whole object (optimistic concurrency on its `metadata.resourceVersion`).
    pub fn replace(
        &self,
        name: &str,
        params: &PostParams,
        body: Bytes,
    ) -> Result<http::Request<Bytes>, RequestError> {
        validation::validate_post(params)?;
        let uri = post_query(params).to_path_and_query(&self.object_path(name)?);
        self.build_with_body(Method::PUT, uri, body)
    }

    /// `PATCH` one object; the patch type sets the `Content-Type`.
    pub fn patch<T: Serialize>(
        &self,
        name: &str,
        params: &PatchParams,
        patch: &Patch<T>,
    ) -> Result<http::Request<Bytes>, RequestError> {
        let path = self.object_path(name)?;
        self.build_patch(path, params, patch)
    }

    /// `DELETE` one object, with `params` as the `DeleteOptions` body.
    pub fn delete(
        &self,
        name: &str,
        params: &DeleteParams,
    ) -> Result<http::Request<Bytes>, RequestError> {
        let uri = self.object_path(name)?;
        let body = delete_options_body(params)?;
        self.build(
            Method::DELETE,
            uri,
            Some(self.negotiation.accept(false)),
            Some((Format::Json.media_type(), body)),
        )
    }

    // --- subresources

    /// `GET` a named subresource of one object.
    pub fn get_subresource(
        &self,
        subresource: &str,
        name: &str,
        params: &GetParams,
    ) -> Result<http::Request<Bytes>, RequestError> {
        let mut query = Query::new();
        push_non_empty(&mut query, "resourceVersion", &params.resource_version);
        let uri = query.to_path_and_query(&self.subresource_path(name, subresource)?);
        self.build(Method::GET, uri, Some(self.negotiation.accept(false)), None)
    }

    /// `POST` to a named subresource of one object (e.g. `eviction`, `token`, `binding`).
    pub fn create_subresource(
        &self,
        subresource: &str,
        name: &str,
        params: &PostParams,
        body: Bytes,
    ) -> Result<http::Request<Bytes>, RequestError> {
        validation::validate_post(params)?;
        let uri = post_query(params).to_path_and_query(&self.subresource_path(name, subresource)?);
        self.build_with_body(Method::POST, uri, body)
    }

    /// `PUT` a named subresource of one object (e.g. `status`, `scale`).
    pub fn replace_subresource(
        &self,
        subresource: &str,
        name: &str,
        params: &PostParams,
        body: Bytes,
    ) -> Result<http::Request<Bytes>, RequestError> {
        validation::validate_post(params)?;
        let uri = post_query(params).to_path_and_query(&self.subresource_path(name, subresource)?);
        self.build_with_body(Method::PUT, uri, body)
    }

    /// `PATCH` a named subresource of one object.
    pub fn patch_subresource<T: Serialize>(
        &self,
        subresource: &str,
        name: &str,
        params: &PatchParams,
        patch: &Patch<T>,
    ) -> Result<http::Request<Bytes>, RequestError> {
        let path = self.subresource_path(name, subresource)?;
        self.build_patch(path, params, patch)
    }

    /// `DELETE` a named subresource of one object, with `params` as the
    /// `DeleteOptions` body.
    pub fn delete_subresource(
        &self,
        subresource: &str,
        name: &str,
        params: &DeleteParams,
    ) -> Result<http::Request<Bytes>, RequestError> {
        let uri = self.subresource_path(name, subresource)?;
        let body = delete_options_body(params)?;
        self.build(
            Method::DELETE,
            uri,
            Some(self.negotiation.accept(false)),
            Some((Format::Json.media_type(), body)),
        )
    }

    /// `GET` the `status` subresource.
    pub fn get_status(&self, name: &str) -> Result<http::Request<Bytes>, RequestError> {
        self.get_subresource("status", name, &GetParams::default())
    }

    /// `PUT` the `status` subresource.
    pub fn replace_status(
        &self,
        name: &str,
        params: &PostParams,
        body: Bytes,
    ) -> Result<http::Request<Bytes>, RequestError> {
        self.replace_subresource("status", name, params, body)
    }

    /// `PATCH` the `status` subresource.
    pub fn patch_status<T: Serialize>(
        &self,
        name: &str,
        params: &PatchParams,
        patch: &Patch<T>,
    ) -> Result<http::Request<Bytes>, RequestError> {
        self.patch_subresource("status", name, params, patch)
    }

    /// `GET` the `scale` subresource (an `autoscaling/v1` `Scale`).
    pub fn get_scale(&self, name: &str) -> Result<http::Request<Bytes>, RequestError> {
        self.get_subresource("scale", name, &GetParams::default())
    }

    /// `PUT` the `scale` subresource.
    pub fn replace_scale(
        &self,
        name: &str,
        params: &PostParams,
        body: Bytes,
    ) -> Result<http::Request<Bytes>, RequestError> {
        self.replace_subresource("scale", name, params, body)
    }

    /// `PATCH` the `scale` subresource.
    pub fn patch_scale<T: Serialize>(
        &self,
        name: &str,
        params: &PatchParams,
        patch: &Patch<T>,
    ) -> Result<http::Request<Bytes>, RequestError> {
        self.patch_subresource("scale", name, params, patch)
    }

    /// `GET` the `log` subresource of a pod. The response is `text/plain`,
    /// streamed when `follow` is set; no `Accept` is sent.
    pub fn logs(
        &self,
        name: &str,
        params: &LogParams,
    ) -> Result<http::Request<Bytes>, RequestError> {
        validation::validate_log(params)?;
        let mut query = Query::new();
        query.push_opt("container", params.container.as_deref());
        if params.follow {
            query.push("follow", "true");
        }
        if params.previous {
            query.push("previous", "true");
        }
        query.push_opt("sinceSeconds", params.since_seconds);
        if let Some(time) = &params.since_time {
            let value = serde_json::to_value(time).map_err(|source| RequestError::Serialize {
                what: "sinceTime",
                source,
            })?;
            query.push_opt("sinceTime", value.as_str());
        }
        if params.timestamps {
            query.push("timestamps", "true");
        }
        query.push_opt("tailLines", params.tail_lines);
        query.push_opt("limitBytes", params.limit_bytes);
        query.push_opt("stream", params.stream.map(LogStream::as_str));
        if params.insecure_skip_tls_verify_backend {
            query.push("insecureSkipTLSVerifyBackend", "true");
        }
        let uri = query.to_path_and_query(&self.subresource_path(name, "log")?);
        self.build(Method::GET, uri, None, None)
    }

    /// `POST` a `policy/v1` `Eviction` for a pod: a delete that respects
    /// PodDisruptionBudgets (429 TooManyRequests while a budget forbids it).
    pub fn evict(
        &self,
        name: &str,
        params: &DeleteParams,
    ) -> Result<http::Request<Bytes>, RequestError> {
        let uri = self.subresource_path(name, "eviction")?;
        let mut metadata = Map::new();
        metadata.insert("name".into(), Value::from(name));
        if let Some(ns) = &self.namespace {
            metadata.insert("namespace".into(), Value::from(ns.as_str()));
        }
        let eviction = json!({
            "apiVersion": "policy/v1",
            "kind": "Eviction",
            "metadata": metadata,
            "deleteOptions": delete_options(params, false),
        });
        let body = to_json_bytes("Eviction", &eviction)?;
        self.build(
            Method::POST,
            uri,
            Some(self.negotiation.accept(false)),
            Some((Format::Json.media_type(), body)),
        )
    }

    // --- internals

    fn push_table_params(&self, query: &mut Query) {
        if self.negotiation == Negotiation::Table {
            query.push_opt(
                "includeObject",
                self.include_object.map(IncludeObject::as_str),
            );
        }
    }

    fn collection_path(&self) -> Result<String, PathError> {
        self.resource.collection_path(self.namespace.as_deref())
    }

    fn object_path(&self, name: &str) -> Result<String, PathError> {
        self.resource.object_path(self.namespace.as_deref(), name)
    }

    fn subresource_path(&self, name: &str, subresource: &str) -> Result<String, PathError> {
        self.resource
            .subresource_path(self.namespace.as_deref(), name, subresource)
    }

    fn build_patch<T: Serialize>(
        &self,
        path: String,
        params: &PatchParams,
        patch: &Patch<T>,
    ) -> Result<http::Request<Bytes>, RequestError> {
        validation::validate_patch(params, patch.is_apply())?;
        let mut query = Query::new();
        if params.dry_run {
            query.push("dryRun", "All");
        }
        push_non_empty(&mut query, "fieldManager", &params.field_manager);
        query.push_opt(
            "fieldValidation",
            params.field_validation.map(FieldValidation::as_str),
        );
        if params.force {
            query.push("force", "true");
        }
        let body = to_json_bytes("patch", patch.body())?;
        self.build(
            Method::PATCH,
            query.to_path_and_query(&path),
            Some(self.negotiation.accept(false)),
            Some((patch.content_type(), body)),
        )
    }

    fn build_with_body(
        &self,
        method: Method,
        uri: String,
        body: Bytes,
    ) -> Result<http::Request<Bytes>, RequestError> {
        let content_type = negotiation::content_type(self.body_format);
        self.build(
            method,
            uri,
            Some(self.negotiation.accept(false)),
            Some((content_type, body)),
        )
    }

    fn build(
        &self,
        method: Method,
        uri: String,
        accept: Option<&'static str>,
        body: Option<(&'static str, Bytes)>,
    ) -> Result<http::Request<Bytes>, RequestError> {
        let mut request = http::Request::builder().method(method).uri(uri.as_str());
        if let Some(accept) = accept {
            request = request.header(ACCEPT, accept);
        }
        let body = match body {
            Some((content_type, body)) => {
                request = request.header(CONTENT_TYPE, content_type);
                body
            }
            None => Bytes::new(),
        };
        request
            .body(body)
            .map_err(|source| RequestError::Build { uri, source })
    }
}

fn push_selectors(query: &mut Query, label: &Option<String>, field: &Option<String>) {
    push_non_empty(query, "labelSelector", label);
    push_non_empty(query, "fieldSelector", field);
}

/// Go's `omitempty`: an empty string is not sent.
fn push_non_empty(query: &mut Query, key: &'static str, value: &Option<String>) {
    if let Some(value) = value.as_deref().filter(|v| !v.is_empty()) {
        query.push(key, value);
    }
}

fn push_list_params(query: &mut Query, params: &ListParams) {
    push_selectors(query, &params.label_selector, &params.field_selector);
    push_non_empty(query, "resourceVersion", &params.resource_version);
    query.push_opt(
        "resourceVersionMatch",
        params.resource_version_match.map(|m| m.as_str()),
    );
    query.push_opt("limit", params.limit.filter(|l| *l > 0));
    push_non_empty(query, "continue", &params.continue_token);
    query.push_opt("timeoutSeconds", params.timeout_seconds);
}

fn post_query(params: &PostParams) -> Query {
    let mut query = Query::new();
    if params.dry_run {
        query.push("dryRun", "All");
    }
    push_non_empty(&mut query, "fieldManager", &params.field_manager);
    query.push_opt(
        "fieldValidation",
        params.field_validation.map(FieldValidation::as_str),
    );
    query
}

/// The `DeleteOptions` object for `params`; `typed` adds `kind` and
/// `apiVersion`, as client-go does for a top-level body.
fn delete_options(params: &DeleteParams, typed: bool) -> Value {
    let mut options = Map::new();
    if typed {
        options.insert("kind".into(), Value::from("DeleteOptions"));
        options.insert("apiVersion".into(), Value::from("v1"));
    }
    if params.dry_run {
        options.insert("dryRun".into(), json!(["All"]));
    }
    if let Some(seconds) = params.grace_period_seconds {
        options.insert("gracePeriodSeconds".into(), Value::from(seconds));
    }
    if let Some(policy) = params.propagation_policy {
        options.insert("propagationPolicy".into(), Value::from(policy.as_str()));
    }
    if let Some(pre) = &params.preconditions {
        let mut preconditions = Map::new();
        if let Some(uid) = &pre.uid {
            preconditions.insert("uid".into(), Value::from(uid.as_str()));
        }
        if let Some(rv) = &pre.resource_version {
            preconditions.insert("resourceVersion".into(), Value::from(rv.as_str()));
        }
        options.insert("preconditions".into(), Value::Object(preconditions));
    }
    Value::Object(options)
}

fn delete_options_body(params: &DeleteParams) -> Result<Bytes, RequestError> {
    to_json_bytes("DeleteOptions", &delete_options(params, true))
}

fn to_json_bytes<T: Serialize + ?Sized>(
    what: &'static str,
    value: &T,
) -> Result<Bytes, RequestError> {
    serde_json::to_vec(value)
        .map(Bytes::from)
        .map_err(|source| RequestError::Serialize { what, source })
}

#[cfg(test)]
mod tests;
