//! `Api<K>`: every verb on one resource in one scope, typed and blocking.
//!
//! windlass-proto's [`windlass_proto::api::Api`] makes each request and says
//! how to judge its answer; this module only sends and reads. The method
//! names are windlass-tokio's.

use std::io::Read;

use bytes::Bytes;
use http::Method;
use k8s_openapi::api::autoscaling::v1::Scale;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Status;
use serde::Serialize;
use serde::de::DeserializeOwned;
use windlass_proto::api::{self as proto, CallError, Pager, PagerStep, WatchCall};
use windlass_proto::dynamic::{DynamicObject, PartialObjectMetadata};
use windlass_proto::list::ObjectList;
use windlass_proto::params::{ListParams, WatchParams};
use windlass_proto::request::{
    Builder, DeleteParams, GetParams, LogParams, Patch, PatchParams, PostParams,
};
use windlass_proto::resource::{ApiResource, TopLevelScope};
use windlass_proto::response::Deleted;
use windlass_proto::watch::{WatchDecoder, WatchEvent};

use crate::client::{Call, CancelHandle};
use crate::{Client, Error};

/// How much a watch reads at a time.
const READ_CHUNK: usize = 16 * 1024;

/// Typed access to one resource, in one namespace, across all namespaces,
/// or cluster-wide.
#[derive(Clone, Debug)]
pub struct Api<K> {
    client: Client,
    api: proto::Api<K>,
}

/// The dynamic API: any resource as [`DynamicObject`]s.
pub type DynamicApi = Api<DynamicObject>;

impl<K> Api<K>
where
    K: k8s_openapi::Resource,
    K::Scope: TopLevelScope,
{
    /// `K` in `namespace`.
    pub fn namespaced(client: Client, namespace: &str) -> Result<Self, Error>
    where
        K: k8s_openapi::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
    {
        Ok(Self::scoped(client, proto::Api::namespaced(namespace)?))
    }

    /// `K` in the client's default namespace.
    pub fn default_namespaced(client: Client) -> Result<Self, Error>
    where
        K: k8s_openapi::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
    {
        let namespace = client.default_namespace().to_owned();
        Self::namespaced(client, &namespace)
    }

    /// `K` across all namespaces (lists and watches), or cluster-wide for a
    /// cluster-scoped kind.
    pub fn all(client: Client) -> Result<Self, Error> {
        Ok(Self::scoped(client, proto::Api::all()?))
    }
}

impl<K> Api<K> {
    /// A cluster-scoped `K`.
    pub fn cluster(client: Client) -> Result<Self, Error>
    where
        K: k8s_openapi::Resource<Scope = k8s_openapi::ClusterResourceScope>,
    {
        Ok(Self::scoped(client, proto::Api::cluster()?))
    }

    /// Any resource in `namespace` (`None`: all namespaces, or a
    /// cluster-scoped resource). `K` is usually [`DynamicObject`].
    pub fn dynamic(
        client: Client,
        resource: ApiResource,
        namespace: Option<&str>,
    ) -> Result<Self, Error> {
        Ok(Self::scoped(
            client,
            proto::Api::dynamic(resource, namespace)?,
        ))
    }

    /// Requests from a builder of your own (another negotiation, say).
    pub fn with_builder(client: Client, builder: Builder) -> Result<Self, Error> {
        Ok(Self::scoped(client, proto::Api::with_builder(builder)))
    }

    /// windlass-proto's `Api` (its resource and scope) sent through
    /// `client`, in the encodings the client asks for.
    fn scoped(client: Client, api: proto::Api<K>) -> Self {
        let formats = client.formats().clone();
        Self {
            client,
            api: api.with_formats(formats),
        }
    }

    /// The same resource and scope, metadata only (`PartialObjectMetadata`).
    pub fn metadata(&self) -> Api<PartialObjectMetadata> {
        Api {
            client: self.client.clone(),
            api: self.api.metadata(),
        }
    }

    /// The request builder.
    pub fn builder(&self) -> &Builder {
        self.api.builder()
    }

    /// The client it sends with.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Sends a call and judges its answer.
    fn run<T>(&self, call: Result<proto::Call<T>, CallError>) -> Result<T, Error> {
        let call = call?;
        let (verb, kind) = (call.verb, call.kind);
        let (request, decoder) = call.into_parts();
        let span = Call {
            verb,
            kind,
            resource: self.api.plural(),
        };
        let (head, body) = match self.client.send_for_bytes(request, span) {
            Ok(answer) => answer,
            Err(e) => {
                let json = e.api().and_then(|a| decoder.fallback(a.http_status()));
                match json {
                    Some(json) => self.client.send_for_bytes(json, span)?,
                    None => return Err(e),
                }
            }
        };
        Ok(decoder.decode(head.status, &head.headers, &body)?)
    }
}

impl<K: DeserializeOwned> Api<K> {
    /// `GET` one object.
    pub fn get(&self, name: &str) -> Result<K, Error> {
        self.run(self.api.get(name))
    }

    /// `GET` one object with parameters (a resourceVersion).
    pub fn get_with(&self, name: &str, params: &GetParams) -> Result<K, Error> {
        self.run(self.api.get_with(name, params))
    }

    /// `GET` one object, `None` when it does not exist.
    pub fn get_opt(&self, name: &str) -> Result<Option<K>, Error> {
        match self.get(name) {
            Err(e) if e.is_not_found() => Ok(None),
            other => other.map(Some),
        }
    }

    /// One page of the collection.
    pub fn list(&self, params: &ListParams) -> Result<ObjectList<K>, Error> {
        self.run(self.api.list(params))
    }

    /// Every page of the collection, in order, following `continue` tokens
    /// (set `params.limit` for the page size). An expired token is an error
    /// item: the pages before it were already handed out.
    pub fn list_pages(&self, params: &ListParams) -> Pages<'_, K> {
        Pages {
            api: self,
            pager: Pager::new(params.clone()),
            failed: false,
        }
    }

    /// The whole collection, page by page, as one list. A continue token
    /// that expires half-way turns into one full list, as client-go's
    /// `pager.List` does.
    pub fn list_all(&self, params: &ListParams) -> Result<Vec<K>, Error> {
        let mut pager = Pager::new(params.clone()).full_list_if_expired(true);
        let mut items = Vec::new();
        while let Some(params) = pager.next_params() {
            match self.list(params) {
                Ok(page) => {
                    pager.on_page(&page);
                    items.extend(page.items);
                }
                Err(Error::Response(e)) => match pager.on_error(&e) {
                    PagerStep::FullList => items.clear(),
                    PagerStep::Fail => return Err(e.into()),
                },
                Err(e) => return Err(e),
            }
        }
        Ok(items)
    }

    /// Watches the collection: typed events as they arrive, decoded
    /// incrementally in whatever framing the server chose. The iterator ends
    /// when the server ends the watch; a read-idle timeout, a broken
    /// connection or an undecodable frame is the last item. `ERROR` events
    /// (a 410 Expired) are items, not errors.
    pub fn watch(&self, params: &WatchParams) -> Result<Watch<K>, Error> {
        let (request, fallback) = self.api.watch(params)?.into_parts();
        let uri = request.uri().to_string();
        let call = Call {
            verb: WatchCall::<K>::VERB,
            kind: WatchCall::<K>::KIND,
            resource: self.api.plural(),
        };
        let (response, cancel) = match self.client.send_stream(request, call) {
            Ok(sent) => sent,
            Err(e) => {
                let json = e
                    .api()
                    .zip(fallback)
                    .and_then(|(a, f)| f.on_status(a.http_status()));
                match json {
                    Some(json) => self.client.send_stream(json, call)?,
                    None => return Err(e),
                }
            }
        };
        let decoder = WatchCall::<K>::decoder(response.headers())?;
        Ok(Watch {
            client: self.client.clone(),
            body: response.into_body().into_reader(),
            cancel,
            decoder,
            uri,
            done: false,
        })
    }

    /// `DELETE` one object: its final state, or the server's `Success` status.
    pub fn delete(&self, name: &str, params: &DeleteParams) -> Result<Deleted<K>, Error> {
        self.run(self.api.delete(name, params))
    }

    /// `DELETE` the objects `list` selects.
    pub fn delete_collection(
        &self,
        delete: &DeleteParams,
        list: &ListParams,
    ) -> Result<Deleted<ObjectList<K>>, Error> {
        self.run(self.api.delete_collection(delete, list))
    }

    /// `PATCH` one object with any patch type, server-side apply included.
    pub fn patch<P: Serialize>(
        &self,
        name: &str,
        params: &PatchParams,
        patch: &Patch<P>,
    ) -> Result<K, Error> {
        self.run(self.api.patch(name, params, patch))
    }

    /// Server-side apply of `object` as `field_manager` (`force` takes
    /// ownership of conflicting fields).
    pub fn apply<P: Serialize>(
        &self,
        name: &str,
        field_manager: &str,
        force: bool,
        object: &P,
    ) -> Result<K, Error> {
        self.run(self.api.apply(name, field_manager, force, object))
    }

    /// `GET` the `status` subresource.
    pub fn get_status(&self, name: &str) -> Result<K, Error> {
        self.run(self.api.get_status(name))
    }

    /// `PATCH` the `status` subresource.
    pub fn patch_status<P: Serialize>(
        &self,
        name: &str,
        params: &PatchParams,
        patch: &Patch<P>,
    ) -> Result<K, Error> {
        self.run(self.api.patch_status(name, params, patch))
    }

    /// `GET` the `scale` subresource.
    pub fn get_scale(&self, name: &str) -> Result<Scale, Error> {
        self.run(self.api.get_scale(name))
    }

    /// `PUT` the `scale` subresource.
    pub fn replace_scale(
        &self,
        name: &str,
        params: &PostParams,
        scale: &Scale,
    ) -> Result<Scale, Error> {
        self.run(self.api.replace_scale(name, params, scale))
    }

    /// `PATCH` the `scale` subresource.
    pub fn patch_scale<P: Serialize>(
        &self,
        name: &str,
        params: &PatchParams,
        patch: &Patch<P>,
    ) -> Result<Scale, Error> {
        self.run(self.api.patch_scale(name, params, patch))
    }

    /// A pod's log, whole.
    pub fn logs(&self, name: &str, params: &LogParams) -> Result<String, Error> {
        self.run(self.api.logs(name, params))
    }

    /// A pod's log as it is written (`params.follow`): byte chunks as they
    /// arrive, each within the read-idle timeout; [`LogStream::lines`] for
    /// lines. The iterator ends with the log; a broken connection is the
    /// last item.
    pub fn log_stream(&self, name: &str, params: &LogParams) -> Result<LogStream, Error> {
        let call = self.api.logs(name, params)?;
        let uri = call.request.uri().to_string();
        let span = Call {
            verb: call.verb,
            kind: windlass_proto::retry::RequestKind::Stream,
            resource: self.api.plural(),
        };
        let (response, cancel) = self.client.send_stream(call.request, span)?;
        Ok(LogStream {
            client: self.client.clone(),
            body: response.into_body().into_reader(),
            cancel,
            uri,
            done: false,
        })
    }

    /// Evicts a pod (a delete that respects PodDisruptionBudgets; 429 while one forbids it).
    pub fn evict(&self, name: &str, params: &DeleteParams) -> Result<Status, Error> {
        self.run(self.api.evict(name, params))
    }
}

impl<K: Serialize + DeserializeOwned + 'static> Api<K> {
    /// `POST` a new object.
    pub fn create(&self, params: &PostParams, object: &K) -> Result<K, Error> {
        self.run(self.api.create(params, object))
    }

    /// `PUT` a whole object (optimistic concurrency on its resourceVersion).
    pub fn replace(&self, name: &str, params: &PostParams, object: &K) -> Result<K, Error> {
        self.run(self.api.replace(name, params, object))
    }

    /// `PUT` the `status` subresource.
    pub fn replace_status(&self, name: &str, params: &PostParams, object: &K) -> Result<K, Error> {
        self.run(self.api.replace_status(name, params, object))
    }
}

/// The pages of a list, in order ([`Api::list_pages`]).
#[derive(Debug)]
pub struct Pages<'a, K> {
    api: &'a Api<K>,
    pager: Pager,
    failed: bool,
}

impl<K: DeserializeOwned> Iterator for Pages<'_, K> {
    type Item = Result<ObjectList<K>, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let params = self.pager.next_params()?;
        match self.api.list(params) {
            Ok(page) => {
                self.pager.on_page(&page);
                Some(Ok(page))
            }
            Err(e) => {
                // Pages already handed out cannot be taken back, so no full
                // list: the walk ends with the error.
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

/// An open watch ([`Api::watch`]): typed events, one per `next`, each read
/// within the client's read-idle timeout.
pub struct Watch<K> {
    client: Client,
    body: ureq::BodyReader<'static>,
    cancel: CancelHandle,
    decoder: WatchDecoder<K>,
    uri: String,
    done: bool,
}

impl<K> std::fmt::Debug for Watch<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watch")
            .field("uri", &self.uri)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl<K> Watch<K> {
    /// A handle that ends this watch from another thread: the blocked
    /// `next` returns an error item, then `None`.
    pub fn cancel_handle(&self) -> CancelHandle {
        self.cancel.clone()
    }
}

impl<K: DeserializeOwned> Iterator for Watch<K> {
    type Item = Result<WatchEvent<K>, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        let mut buf = [0u8; READ_CHUNK];
        loop {
            if let Some(event) = self.decoder.poll_event() {
                return Some(event.map_err(Error::from));
            }
            if self.done || self.decoder.is_failed() {
                return None;
            }
            let fed = match self.body.read(&mut buf) {
                Ok(0) => {
                    self.done = true;
                    self.decoder.finish().map_err(Error::from)
                }
                Ok(n) => self.decoder.push(&buf[..n]).map_err(Error::from),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => Ok(()),
                Err(e) => Err(self.client.read_error(e, &Method::GET, &self.uri)),
            };
            if let Err(e) = fed {
                self.done = true;
                return Some(Err(e));
            }
        }
    }
}

/// A streamed pod log ([`Api::log_stream`]): byte chunks as they arrive.
pub struct LogStream {
    client: Client,
    body: ureq::BodyReader<'static>,
    cancel: CancelHandle,
    uri: String,
    done: bool,
}

impl std::fmt::Debug for LogStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogStream")
            .field("uri", &self.uri)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl LogStream {
    /// A handle that ends this stream from another thread.
    pub fn cancel_handle(&self) -> CancelHandle {
        self.cancel.clone()
    }

    /// The log line by line, without the line ending; a last line without
    /// one still comes out. Invalid UTF-8 is replaced, as `kubectl logs`
    /// prints it.
    pub fn lines(self) -> impl Iterator<Item = Result<String, Error>> {
        let mut chunks = self;
        let mut pending: Vec<u8> = Vec::new();
        let mut ended = false;
        std::iter::from_fn(move || {
            loop {
                if let Some(at) = pending.iter().position(|&b| b == b'\n') {
                    let mut line: Vec<u8> = pending.drain(..=at).collect();
                    line.pop();
                    if line.last() == Some(&b'\r') {
                        line.pop();
                    }
                    return Some(Ok(String::from_utf8_lossy(&line).into_owned()));
                }
                if ended {
                    return (!pending.is_empty()).then(|| {
                        Ok(String::from_utf8_lossy(&std::mem::take(&mut pending)).into_owned())
                    });
                }
                match chunks.next() {
                    Some(Ok(chunk)) => pending.extend_from_slice(&chunk),
                    Some(Err(e)) => {
                        ended = true;
                        pending.clear();
                        return Some(Err(e));
                    }
                    None => ended = true,
                }
            }
        })
    }
}

impl Iterator for LogStream {
    type Item = Result<Bytes, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        let mut buf = vec![0u8; READ_CHUNK];
        loop {
            if self.done {
                return None;
            }
            match self.body.read(&mut buf) {
                Ok(0) => self.done = true,
                Ok(n) => {
                    buf.truncate(n);
                    return Some(Ok(buf.into()));
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.done = true;
                    return Some(Err(self.client.read_error(e, &Method::GET, &self.uri)));
                }
            }
        }
    }
}
