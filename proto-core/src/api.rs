//! `Api<K>` as data: every verb on one resource in one scope, each a
//! [`Call`] — the request to send and how to judge its answer.
//!
//! The runtime crates' `Api<K>` wrap this one: they send [`Call::request`],
//! retry as [`crate::retry`] says, read the body and hand status, headers and
//! bytes to [`Call::decode`]. Nothing here is async or does IO, so each
//! adapter has one line per verb and no decision of its own. The list
//! [`Pager`] follows `continue` tokens and, like client-go's pager, falls back
//! to one full list when a token expires mid-way.
//!
//! ```
//! use k8s_openapi::api::core::v1::ConfigMap;
//! use windlass_proto::api::Api;
//! use http::{HeaderMap, StatusCode};
//!
//! let maps = Api::<ConfigMap>::namespaced("default").unwrap();
//! let call = maps.get("web").unwrap();
//! assert_eq!(call.request.uri(), "/api/v1/namespaces/default/configmaps/web");
//! let mut headers = HeaderMap::new();
//! headers.insert("content-type", "application/json".parse().unwrap());
//! let body = br#"{"metadata":{"name":"web"}}"#;
//! let map = call.decode(StatusCode::OK, &headers, body).unwrap();
//! assert_eq!(map.metadata.name.as_deref(), Some("web"));
//! ```

use std::marker::PhantomData;

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{HeaderMap, Method, StatusCode};
use k8s_openapi::api::autoscaling::v1::Scale;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Status;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::codec::json::{self, JsonError};
use crate::dynamic::PartialObjectMetadata;
use crate::list::ObjectList;
use crate::params::{ListParams, WatchParams};
use crate::request::{
    Builder, DeleteParams, GetParams, LogParams, Negotiation, Patch, PatchParams, PostParams,
    RequestError,
};
use crate::resource::{ApiResource, TopLevelScope};
use crate::response::{self, Deleted};
use crate::retry::RequestKind;
use crate::watch::{DecodeError, Limits, WatchDecoder};

mod formats;

pub use formats::{Fallback, Formats};

/// Why a [`Call`] could not be made.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The request could not be built (a bad name, invalid parameters).
    #[error(transparent)]
    Request(#[from] RequestError),
    /// The object does not encode as a request body.
    #[error(transparent)]
    Encode(#[from] JsonError),
}

/// Turns a response into `T`: status, headers and the whole body.
pub type DecodeFn<T> = fn(&Method, StatusCode, &HeaderMap, &[u8]) -> Result<T, response::Error>;

/// One request and how to judge its answer.
#[derive(Debug)]
pub struct Call<T> {
    /// What to send: path and query, headers and body (the adapter adds the
    /// server's scheme and authority and the credentials).
    pub request: http::Request<Bytes>,
    /// The Kubernetes verb (`get`, `list`, `create`, …), for logs and spans.
    pub verb: &'static str,
    /// The retry policy's class of request.
    pub kind: RequestKind,
    method: Method,
    decode: DecodeFn<T>,
    fallback: Option<Fallback>,
}

impl<T> Call<T> {
    fn new(
        request: http::Request<Bytes>,
        verb: &'static str,
        kind: RequestKind,
        decode: DecodeFn<T>,
    ) -> Self {
        Self {
            method: request.method().clone(),
            request,
            verb,
            kind,
            decode,
            fallback: None,
        }
    }

    /// The JSON request to send instead when the server answered `status`
    /// to a protobuf or CBOR request: 406 (it cannot answer so) or 415 (it
    /// cannot read the body). The resource then stays on JSON. `None` for a
    /// JSON call or any other status: the answer stands.
    pub fn fallback(&self, status: StatusCode) -> Option<http::Request<Bytes>> {
        self.fallback.as_ref()?.on_status(status)
    }

    /// Judges the answer: the value, or the server's error (any status
    /// outside 2xx, with its whole `Status`), or a body that does not decode.
    pub fn decode(
        &self,
        status: StatusCode,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<T, response::Error> {
        (self.decode)(&self.method, status, headers, body)
    }

    /// The decoder alone, once the request was moved out to be sent.
    pub fn into_parts(self) -> (http::Request<Bytes>, Decoder<T>) {
        let decoder = Decoder {
            method: self.method,
            decode: self.decode,
            fallback: self.fallback,
        };
        (self.request, decoder)
    }
}

/// The second half of a [`Call`]: how to judge its answer.
#[derive(Debug)]
pub struct Decoder<T> {
    method: Method,
    decode: DecodeFn<T>,
    fallback: Option<Fallback>,
}

impl<T> Decoder<T> {
    /// See [`Call::decode`].
    pub fn decode(
        &self,
        status: StatusCode,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<T, response::Error> {
        (self.decode)(&self.method, status, headers, body)
    }

    /// See [`Call::fallback`]; the answer to the request it returns is
    /// decoded by this decoder too.
    pub fn fallback(&self, status: StatusCode) -> Option<http::Request<Bytes>> {
        self.fallback.as_ref()?.on_status(status)
    }
}

/// A watch: the request, and the incremental decoder for the framing the
/// server answered with.
#[derive(Debug)]
pub struct WatchCall<K> {
    /// What to send.
    pub request: http::Request<Bytes>,
    fallback: Option<Fallback>,
    _object: PhantomData<fn() -> K>,
}

impl<K> WatchCall<K> {
    /// The verb, for logs and spans.
    pub const VERB: &'static str = "watch";
    /// The retry policy's class of request.
    pub const KIND: RequestKind = RequestKind::Watch;

    /// The request, and the JSON fallback when it asks for protobuf or CBOR
    /// (see [`Call::fallback`]).
    pub fn into_parts(self) -> (http::Request<Bytes>, Option<Fallback>) {
        (self.request, self.fallback)
    }
}

impl<K: DeserializeOwned> WatchCall<K> {
    /// The decoder for a success response's headers: JSON lines, protobuf or
    /// CBOR frames, by `Content-Type` (JSON when it is missing).
    pub fn decoder(headers: &HeaderMap) -> Result<WatchDecoder<K>, DecodeError> {
        let content_type = headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("application/json");
        WatchDecoder::for_content_type(content_type, Limits::default())
    }
}

/// Decodes a success body by its `Content-Type`: JSON, protobuf or CBOR.
fn decode_body<T: DeserializeOwned>(
    method: &Method,
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<T, response::Error> {
    response::body::decode(method, status, headers, body)
}

fn decode_delete<T: DeserializeOwned>(
    _: &Method,
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Deleted<T>, response::Error> {
    response::body::decode_delete(status, headers, body)
}

fn decode_text(
    method: &Method,
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<String, response::Error> {
    match response::api_error(method, status, headers, body) {
        Some(e) => Err(e.into()),
        None => Ok(String::from_utf8_lossy(body).into_owned()),
    }
}

/// Every verb on one resource in one scope, typed, as [`Call`]s.
#[derive(Debug)]
pub struct Api<K> {
    builder: Builder,
    formats: Formats,
    _object: PhantomData<fn() -> K>,
}

impl<K> Clone for Api<K> {
    fn clone(&self) -> Self {
        Self::with_builder(self.builder.clone()).with_formats(self.formats.clone())
    }
}

impl<K> Api<K>
where
    K: k8s_openapi::Resource,
    K::Scope: TopLevelScope,
{
    /// `K` in `namespace`.
    pub fn namespaced(namespace: &str) -> Result<Self, RequestError>
    where
        K: k8s_openapi::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
    {
        Ok(Self::with_builder(Builder::of::<K>(Some(namespace))?))
    }

    /// `K` across all namespaces (lists and watches), or cluster-wide for a
    /// cluster-scoped kind.
    pub fn all() -> Result<Self, RequestError> {
        Ok(Self::with_builder(Builder::of::<K>(None)?))
    }
}

impl<K> Api<K> {
    /// A cluster-scoped `K`.
    pub fn cluster() -> Result<Self, RequestError>
    where
        K: k8s_openapi::Resource<Scope = k8s_openapi::ClusterResourceScope>,
    {
        Ok(Self::with_builder(Builder::of::<K>(None)?))
    }

    /// Any resource in `namespace` (`None`: all namespaces, or a
    /// cluster-scoped resource); `K` is usually a `DynamicObject`.
    pub fn dynamic(resource: ApiResource, namespace: Option<&str>) -> Result<Self, RequestError> {
        Ok(Self::with_builder(Builder::new(resource, namespace)?))
    }

    /// Requests from a builder of your own (another negotiation, say).
    pub fn with_builder(builder: Builder) -> Self {
        Self {
            builder,
            formats: Formats::default(),
            _object: PhantomData,
        }
    }

    /// Ask for the encodings `formats` says (default: JSON), and record
    /// fallbacks there. Builders with their own negotiation (metadata,
    /// tables) keep it.
    pub fn with_formats(mut self, formats: Formats) -> Self {
        self.formats = formats;
        self
    }

    /// The encodings asked for.
    pub fn formats(&self) -> &Formats {
        &self.formats
    }

    /// The same resource and scope, metadata only (`PartialObjectMetadata`).
    pub fn metadata(&self) -> Api<PartialObjectMetadata> {
        Api::with_builder(self.builder.clone().with_negotiation(Negotiation::Metadata))
            .with_formats(self.formats.clone())
    }

    /// A call made by `make` in the resource's negotiated encoding, with the
    /// JSON call as its fallback (or the JSON call alone).
    fn negotiated<T>(
        &self,
        verb: &'static str,
        kind: RequestKind,
        decode: DecodeFn<T>,
        make: impl Fn(&Builder) -> Result<http::Request<Bytes>, RequestError>,
    ) -> Result<Call<T>, CallError> {
        let json = make(&self.builder)?;
        let Some((builder, _)) = self.formats.builder(&self.builder) else {
            return Ok(Call::new(json, verb, kind, decode));
        };
        let mut call = Call::new(make(&builder)?, verb, kind, decode);
        call.fallback = Some(Fallback::new(&self.formats, self.builder.resource(), json));
        Ok(call)
    }

    /// As [`negotiated`](Self::negotiated), with `object` as the body in
    /// the negotiated encoding.
    fn negotiated_body<T, O: Serialize + 'static>(
        &self,
        verb: &'static str,
        kind: RequestKind,
        decode: DecodeFn<T>,
        object: &O,
        make: impl Fn(&Builder, Bytes) -> Result<http::Request<Bytes>, RequestError>,
    ) -> Result<Call<T>, CallError> {
        let json = make(&self.builder, json::encode(object)?)?;
        let Some((builder, format)) = self.formats.builder(&self.builder) else {
            return Ok(Call::new(json, verb, kind, decode));
        };
        let (body, used) = formats::encode_body(self.builder.resource(), format, object)?;
        let request = make(&builder.with_body_format(used), body)?;
        let mut call = Call::new(request, verb, kind, decode);
        call.fallback = Some(Fallback::new(&self.formats, self.builder.resource(), json));
        Ok(call)
    }

    /// The request builder.
    pub fn builder(&self) -> &Builder {
        &self.builder
    }

    /// The resource's plural, for logs and spans.
    pub fn plural(&self) -> &str {
        &self.builder.resource().plural
    }
}

impl<K: DeserializeOwned> Api<K> {
    /// `GET` one object.
    pub fn get(&self, name: &str) -> Result<Call<K>, CallError> {
        self.get_with(name, &GetParams::default())
    }

    /// `GET` one object with parameters (a resourceVersion).
    pub fn get_with(&self, name: &str, params: &GetParams) -> Result<Call<K>, CallError> {
        self.negotiated("get", RequestKind::Get, decode_body, |b| {
            b.get(name, params)
        })
    }

    /// One page of the collection.
    pub fn list(&self, params: &ListParams) -> Result<Call<ObjectList<K>>, CallError> {
        self.negotiated("list", RequestKind::List, decode_body, |b| b.list(params))
    }

    /// Watches the collection.
    pub fn watch(&self, params: &WatchParams) -> Result<WatchCall<K>, CallError> {
        let json = self.builder.watch(params)?;
        let Some((builder, _)) = self.formats.builder(&self.builder) else {
            return Ok(WatchCall {
                request: json,
                fallback: None,
                _object: PhantomData,
            });
        };
        Ok(WatchCall {
            request: builder.watch(params)?,
            fallback: Some(Fallback::new(&self.formats, self.builder.resource(), json)),
            _object: PhantomData,
        })
    }

    /// `DELETE` one object: its final state, or the server's `Success` status.
    pub fn delete(&self, name: &str, params: &DeleteParams) -> Result<Call<Deleted<K>>, CallError> {
        self.negotiated("delete", RequestKind::Delete, decode_delete, |b| {
            b.delete(name, params)
        })
    }

    /// `DELETE` the objects `list` selects.
    pub fn delete_collection(
        &self,
        delete: &DeleteParams,
        list: &ListParams,
    ) -> Result<Call<Deleted<ObjectList<K>>>, CallError> {
        let kind = RequestKind::DeleteCollection;
        self.negotiated("deletecollection", kind, decode_delete, |b| {
            b.delete_collection(delete, list)
        })
    }

    /// `PATCH` one object with any patch type, server-side apply included.
    pub fn patch<P: Serialize>(
        &self,
        name: &str,
        params: &PatchParams,
        patch: &Patch<P>,
    ) -> Result<Call<K>, CallError> {
        self.negotiated("patch", RequestKind::Patch, decode_body, |b| {
            b.patch(name, params, patch)
        })
    }

    /// Server-side apply of `object` as `field_manager` (`force` takes
    /// ownership of conflicting fields).
    pub fn apply<P: Serialize>(
        &self,
        name: &str,
        field_manager: &str,
        force: bool,
        object: &P,
    ) -> Result<Call<K>, CallError> {
        let mut params = PatchParams::apply(field_manager);
        params.force = force;
        self.patch(name, &params, &Patch::Apply(object))
    }

    /// `GET` the `status` subresource.
    pub fn get_status(&self, name: &str) -> Result<Call<K>, CallError> {
        self.negotiated("get", RequestKind::Get, decode_body, |b| b.get_status(name))
    }

    /// `PATCH` the `status` subresource.
    pub fn patch_status<P: Serialize>(
        &self,
        name: &str,
        params: &PatchParams,
        patch: &Patch<P>,
    ) -> Result<Call<K>, CallError> {
        self.negotiated("patch", RequestKind::Patch, decode_body, |b| {
            b.patch_status(name, params, patch)
        })
    }

    /// `GET` the `scale` subresource.
    pub fn get_scale(&self, name: &str) -> Result<Call<Scale>, CallError> {
        let request = self.builder.get_scale(name)?;
        Ok(Call::new(request, "get", RequestKind::Get, decode_body))
    }

    /// `PUT` the `scale` subresource.
    pub fn replace_scale(
        &self,
        name: &str,
        params: &PostParams,
        scale: &Scale,
    ) -> Result<Call<Scale>, CallError> {
        let request = self
            .builder
            .replace_scale(name, params, json::encode(scale)?)?;
        Ok(Call::new(
            request,
            "update",
            RequestKind::Update,
            decode_body,
        ))
    }

    /// `PATCH` the `scale` subresource.
    pub fn patch_scale<P: Serialize>(
        &self,
        name: &str,
        params: &PatchParams,
        patch: &Patch<P>,
    ) -> Result<Call<Scale>, CallError> {
        let request = self.builder.patch_scale(name, params, patch)?;
        Ok(Call::new(request, "patch", RequestKind::Patch, decode_body))
    }

    /// A pod's log, whole, as text. With `params.follow` the body is a stream:
    /// send the request as [`RequestKind::Stream`] and read it chunk by chunk.
    pub fn logs(&self, name: &str, params: &LogParams) -> Result<Call<String>, CallError> {
        let request = self.builder.logs(name, params)?;
        let kind = if params.follow {
            RequestKind::Stream
        } else {
            RequestKind::Get
        };
        Ok(Call::new(request, "get", kind, decode_text))
    }

    /// Evicts a pod (a delete that respects PodDisruptionBudgets; 429 while one forbids it).
    pub fn evict(&self, name: &str, params: &DeleteParams) -> Result<Call<Status>, CallError> {
        self.negotiated("create", RequestKind::Create, decode_body, |b| {
            b.evict(name, params)
        })
    }
}

impl<K: Serialize + DeserializeOwned + 'static> Api<K> {
    /// `POST` a new object.
    pub fn create(&self, params: &PostParams, object: &K) -> Result<Call<K>, CallError> {
        self.negotiated_body(
            "create",
            RequestKind::Create,
            decode_body,
            object,
            |b, body| b.create(params, body),
        )
    }

    /// `PUT` a whole object (optimistic concurrency on its resourceVersion).
    pub fn replace(
        &self,
        name: &str,
        params: &PostParams,
        object: &K,
    ) -> Result<Call<K>, CallError> {
        self.negotiated_body(
            "update",
            RequestKind::Update,
            decode_body,
            object,
            |b, body| b.replace(name, params, body),
        )
    }

    /// `PUT` the `status` subresource.
    pub fn replace_status(
        &self,
        name: &str,
        params: &PostParams,
        object: &K,
    ) -> Result<Call<K>, CallError> {
        self.negotiated_body(
            "update",
            RequestKind::Update,
            decode_body,
            object,
            |b, body| b.replace_status(name, params, body),
        )
    }
}

/// What a [`Pager`] says after a failed page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PagerStep {
    /// The continue token expired: drop the pages gathered so far and send
    /// [`Pager::next_params`], one full list at the first page's
    /// resourceVersion.
    FullList,
    /// Return the error.
    Fail,
}

/// Walks a paginated list (client-go's `pager.ListPager`): ask for
/// [`next_params`](Self::next_params), feed each page to
/// [`on_page`](Self::on_page) and each error to [`on_error`](Self::on_error),
/// until `next_params` is `None`.
#[derive(Clone, Debug)]
pub struct Pager {
    requested: ListParams,
    next: Option<ListParams>,
    full_list_if_expired: bool,
}

impl Pager {
    /// A walk from the first page of `params` (`params.limit` is the page
    /// size). A continue token that expires is an error; see
    /// [`full_list_if_expired`](Self::full_list_if_expired).
    pub fn new(params: ListParams) -> Self {
        Self {
            next: Some(params.clone()),
            requested: params,
            full_list_if_expired: false,
        }
    }

    /// Whether a continue token that expires on page 2 or later becomes one
    /// full list (client-go's `FullListIfExpired`, true in its `List`). Only
    /// a caller that can drop the pages it gathered should set it.
    pub fn full_list_if_expired(mut self, on: bool) -> Self {
        self.full_list_if_expired = on;
        self
    }

    /// The parameters of the next page, `None` when the walk is over.
    pub fn next_params(&self) -> Option<&ListParams> {
        self.next.as_ref()
    }

    /// A page arrived: the next one follows its continue token, if any.
    pub fn on_page<K>(&mut self, page: &ObjectList<K>) {
        let Some(current) = self.next.take() else {
            return;
        };
        self.next = page.continue_token().map(|token| ListParams {
            continue_token: Some(token.to_owned()),
            ..current
        });
    }

    /// A page failed with `error`.
    pub fn on_error(&mut self, error: &response::Error) -> PagerStep {
        let paging = self
            .next
            .as_ref()
            .is_some_and(|p| p.continue_token.is_some());
        if !(self.full_list_if_expired && paging && error.is_expired()) {
            self.next = None;
            return PagerStep::Fail;
        }
        self.next = Some(ListParams {
            limit: None,
            continue_token: None,
            ..self.requested.clone()
        });
        self.full_list_if_expired = false;
        PagerStep::FullList
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;

    fn json_headers() -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, "application/json".parse().unwrap());
        headers
    }

    fn page(token: Option<&str>) -> ObjectList<ConfigMap> {
        let body = match token {
            Some(t) => format!(r#"{{"metadata":{{"continue":"{t}"}},"items":[]}}"#),
            None => r#"{"metadata":{},"items":[]}"#.to_owned(),
        };
        json::decode(body.as_bytes()).unwrap()
    }

    fn expired() -> response::Error {
        let body = br#"{"kind":"Status","status":"Failure","reason":"Expired","code":410}"#;
        response::api_error(&Method::GET, StatusCode::GONE, &json_headers(), body)
            .unwrap()
            .into()
    }

    #[test]
    fn api_call_decodes_success_and_keeps_the_status_of_an_error() {
        let maps = Api::<ConfigMap>::namespaced("default").unwrap();
        let call = maps.get("web").unwrap();
        assert_eq!(call.verb, "get");
        assert_eq!(call.kind, RequestKind::Get);
        let body = br#"{"kind":"Status","status":"Failure","reason":"NotFound","code":404}"#;
        let err = call
            .decode(StatusCode::NOT_FOUND, &json_headers(), body)
            .unwrap_err();
        assert!(err.is_not_found(), "{err}");
        let mut protobuf = HeaderMap::new();
        protobuf.insert(
            CONTENT_TYPE,
            "application/vnd.kubernetes.protobuf".parse().unwrap(),
        );
        let err = call
            .decode(StatusCode::OK, &protobuf, b"k8s\0")
            .unwrap_err();
        assert!(
            matches!(
                err,
                response::Error::Codec {
                    format: crate::codec::Format::Protobuf,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn api_create_encodes_the_object_and_delete_reads_a_success_status() {
        let maps = Api::<ConfigMap>::namespaced("default").unwrap();
        let mut map = ConfigMap::default();
        map.metadata.name = Some("web".into());
        let call = maps.create(&PostParams::default(), &map).unwrap();
        assert_eq!(call.request.method(), Method::POST);
        assert!(call.request.body().starts_with(b"{"));
        let delete = maps.delete("web", &DeleteParams::default()).unwrap();
        let body = br#"{"kind":"Status","status":"Success","code":200}"#;
        let deleted = delete
            .decode(StatusCode::OK, &json_headers(), body)
            .unwrap();
        assert!(matches!(deleted, Deleted::Status(_)));
    }

    #[test]
    fn api_logs_are_text_and_followed_logs_are_streams() {
        let pods = Api::<k8s_openapi::api::core::v1::Pod>::namespaced("default").unwrap();
        let call = pods.logs("web", &LogParams::default()).unwrap();
        assert_eq!(call.kind, RequestKind::Get);
        let mut text = HeaderMap::new();
        text.insert(CONTENT_TYPE, "text/plain".parse().unwrap());
        assert_eq!(
            call.decode(StatusCode::OK, &text, b"line\n").unwrap(),
            "line\n"
        );
        let follow = LogParams {
            follow: true,
            ..Default::default()
        };
        assert_eq!(pods.logs("web", &follow).unwrap().kind, RequestKind::Stream);
    }

    #[test]
    fn pager_follows_continue_tokens_until_the_last_page() {
        let mut pager = Pager::new(ListParams {
            limit: Some(2),
            ..Default::default()
        });
        assert_eq!(pager.next_params().unwrap().continue_token, None);
        pager.on_page(&page(Some("t1")));
        let next = pager.next_params().unwrap();
        assert_eq!(next.continue_token.as_deref(), Some("t1"));
        assert_eq!(next.limit, Some(2));
        pager.on_page(&page(None));
        assert!(pager.next_params().is_none());
    }

    // client-go pager_test.go "expired token falls back to full list".
    #[test]
    fn pager_falls_back_to_one_full_list_when_a_continue_token_expires() {
        let requested = ListParams {
            limit: Some(2),
            resource_version: Some("0".into()),
            ..Default::default()
        };
        let mut pager = Pager::new(requested.clone()).full_list_if_expired(true);
        pager.on_page(&page(Some("t1")));
        assert_eq!(pager.on_error(&expired()), PagerStep::FullList);
        let full = pager.next_params().unwrap();
        assert_eq!(full.limit, None);
        assert_eq!(full.continue_token, None);
        assert_eq!(full.resource_version.as_deref(), Some("0"));
        // The full list failing as well is the caller's error.
        assert_eq!(pager.on_error(&expired()), PagerStep::Fail);
        assert!(pager.next_params().is_none());
    }

    #[test]
    fn pager_expired_first_page_or_without_fallback_fails() {
        let mut first = Pager::new(ListParams::default()).full_list_if_expired(true);
        assert_eq!(first.on_error(&expired()), PagerStep::Fail);
        let mut strict = Pager::new(ListParams::default());
        strict.on_page(&page(Some("t1")));
        assert_eq!(strict.on_error(&expired()), PagerStep::Fail);
    }

    #[test]
    fn retry_failure_from_api_error_takes_the_header_else_details_retry_after_seconds() {
        use crate::retry::{Decision, Failure, Retry};
        use std::time::Duration;
        let body = br#"{"kind":"Status","status":"Failure","reason":"TooManyRequests","code":429,"details":{"retryAfterSeconds":7}}"#;
        let tmr = StatusCode::TOO_MANY_REQUESTS;
        let details = response::api_error(&Method::GET, tmr, &json_headers(), body).unwrap();
        let failure = Failure::from(&details);
        let want = Failure::Status {
            code: 429,
            retry_after: Some(Duration::from_secs(7)),
        };
        assert_eq!(failure, want);
        let mut headers = json_headers();
        headers.insert(http::header::RETRY_AFTER, "2".parse().unwrap());
        let both = response::api_error(&Method::GET, tmr, &headers, body).unwrap();
        let mut retry = Retry::new(RequestKind::Get);
        let decision = retry.decide(Failure::from(&both));
        assert_eq!(decision, Decision::RetryAfter(Duration::from_secs(2)));
    }
}
