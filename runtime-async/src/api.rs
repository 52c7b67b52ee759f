//! `Api<K>`: every verb on one resource in one scope, typed.
//!
//! windlass-proto's [`windlass_proto::api::Api`] makes each request and says
//! how to judge its answer; this module only sends and awaits. `K` is a
//! k8s-openapi type, a [`DynamicObject`] (with an [`ApiResource`] found at
//! run time) or a [`PartialObjectMetadata`] (the metadata-only API).

use bytes::Bytes;
use futures_util::{Stream, TryStreamExt, stream};
use http::Method;
use k8s_openapi::api::autoscaling::v1::Scale;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Status;
use serde::Serialize;
use serde::de::DeserializeOwned;
use windlass_proto::api::{self as proto, CallError, Pager, WatchCall};
use windlass_proto::dynamic::{DynamicObject, PartialObjectMetadata};
use windlass_proto::list::ObjectList;
use windlass_proto::params::{ListParams, WatchParams};
use windlass_proto::request::{
    Builder, DeleteParams, GetParams, LogParams, Patch, PatchParams, PostParams,
};
use windlass_proto::resource::{ApiResource, TopLevelScope};
use windlass_proto::response::Deleted;
use windlass_proto::watch::{WatchDecoder, WatchEvent};

use crate::client::Call;
use crate::runtime::RuntimeClient;
use crate::{Client, Error};

/// Typed access to one resource, in one namespace, across all namespaces,
/// or cluster-wide, through a runtime crate's client `C` (the runtime
/// crates name it `Api<K>`).
#[derive(Clone, Debug)]
pub struct Api<K, C> {
    client: C,
    api: proto::Api<K>,
}

impl<K, C: RuntimeClient> Api<K, C>
where
    K: k8s_openapi::Resource,
    K::Scope: TopLevelScope,
{
    /// `K` in `namespace`.
    pub fn namespaced(client: C, namespace: &str) -> Result<Self, Error>
    where
        K: k8s_openapi::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
    {
        Ok(Self::scoped(client, proto::Api::namespaced(namespace)?))
    }

    /// `K` in the client's default namespace.
    pub fn default_namespaced(client: C) -> Result<Self, Error>
    where
        K: k8s_openapi::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
    {
        let namespace = client.core().default_namespace().to_owned();
        Self::namespaced(client, &namespace)
    }

    /// `K` across all namespaces (lists and watches), or cluster-wide for a
    /// cluster-scoped kind.
    pub fn all(client: C) -> Result<Self, Error> {
        Ok(Self::scoped(client, proto::Api::all()?))
    }
}

impl<K, C: RuntimeClient> Api<K, C> {
    /// A cluster-scoped `K`.
    pub fn cluster(client: C) -> Result<Self, Error>
    where
        K: k8s_openapi::Resource<Scope = k8s_openapi::ClusterResourceScope>,
    {
        Ok(Self::scoped(client, proto::Api::cluster()?))
    }

    /// Any resource, found by discovery or known by hand, in `namespace`
    /// (`None`: all namespaces, or a cluster-scoped resource). `K` is
    /// usually [`DynamicObject`].
    pub fn dynamic(
        client: C,
        resource: ApiResource,
        namespace: Option<&str>,
    ) -> Result<Self, Error> {
        Ok(Self::scoped(
            client,
            proto::Api::dynamic(resource, namespace)?,
        ))
    }

    /// Requests from a builder of your own (another negotiation, say).
    pub fn with_builder(client: C, builder: Builder) -> Result<Self, Error> {
        Ok(Self::scoped(client, proto::Api::with_builder(builder)))
    }

    /// windlass-proto's `Api` (its resource and scope) sent through
    /// `client`, in the encodings the client asks for.
    fn scoped(client: C, api: proto::Api<K>) -> Self {
        let formats = client.core().formats().clone();
        Self {
            client,
            api: api.with_formats(formats),
        }
    }

    /// The same resource and scope, metadata only (`PartialObjectMetadata`).
    pub fn metadata(&self) -> Api<PartialObjectMetadata, C> {
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
    pub fn client(&self) -> &C {
        &self.client
    }

    /// Sends a call and judges its answer.
    async fn run<T>(&self, call: Result<proto::Call<T>, CallError>) -> Result<T, Error> {
        let call = call?;
        let (verb, kind) = (call.verb, call.kind);
        let (request, decoder) = call.into_parts();
        let span = Call {
            verb,
            kind,
            resource: self.api.plural(),
        };
        let (head, body) = match self.client.core().send_for_bytes(request, span).await {
            Ok(answer) => answer,
            Err(e) => {
                let json = e.api().and_then(|a| decoder.fallback(a.http_status()));
                match json {
                    Some(json) => self.client.core().send_for_bytes(json, span).await?,
                    None => return Err(e),
                }
            }
        };
        Ok(decoder.decode(head.status, &head.headers, &body)?)
    }
}

/// The dynamic API: any resource as [`DynamicObject`]s.
pub type DynamicApi<C> = Api<DynamicObject, C>;

impl<K: DeserializeOwned, C: RuntimeClient> Api<K, C> {
    /// `GET` one object.
    pub async fn get(&self, name: &str) -> Result<K, Error> {
        self.run(self.api.get(name)).await
    }

    /// `GET` one object with parameters (a resourceVersion).
    pub async fn get_with(&self, name: &str, params: &GetParams) -> Result<K, Error> {
        self.run(self.api.get_with(name, params)).await
    }

    /// `GET` one object, `None` when it does not exist.
    pub async fn get_opt(&self, name: &str) -> Result<Option<K>, Error> {
        match self.get(name).await {
            Err(e) if e.is_not_found() => Ok(None),
            other => other.map(Some),
        }
    }

    /// One page of the collection.
    pub async fn list(&self, params: &ListParams) -> Result<ObjectList<K>, Error> {
        self.run(self.api.list(params)).await
    }

    /// Every page of the collection, in order, following `continue` tokens
    /// (set `params.limit` for the page size). An expired token is an error:
    /// the pages before it were already handed out.
    pub fn list_pages(
        &self,
        params: &ListParams,
    ) -> impl Stream<Item = Result<ObjectList<K>, Error>> + '_ {
        stream::try_unfold(Pager::new(params.clone()), move |mut pager| async move {
            let Some(params) = pager.next_params() else {
                return Ok(None);
            };
            let page = self.list(params).await?;
            pager.on_page(&page);
            Ok(Some((page, pager)))
        })
    }

    /// Every object of the collection, page by page.
    pub fn list_stream(&self, params: &ListParams) -> impl Stream<Item = Result<K, Error>> + '_ {
        self.list_pages(params)
            .map_ok(|page| stream::iter(page.items.into_iter().map(Ok)))
            .try_flatten()
    }

    /// Watches the collection: typed events as they arrive, decoded
    /// incrementally in whatever framing the server chose (JSON, protobuf,
    /// CBOR). The stream ends when the server ends the watch; a read-idle
    /// timeout, a broken connection or an undecodable frame comes out as the
    /// last item. `ERROR` events (a 410 Expired) are items, not errors.
    pub async fn watch(
        &self,
        params: &WatchParams,
    ) -> Result<impl Stream<Item = Result<WatchEvent<K>, Error>> + use<K, C>, Error> {
        let (request, fallback) = self.api.watch(params)?.into_parts();
        let uri = request.uri().to_string();
        let call = Call {
            verb: WatchCall::<K>::VERB,
            kind: WatchCall::<K>::KIND,
            resource: self.api.plural(),
        };
        let response = match self.client.core().send(request, call).await {
            Ok(response) => response,
            Err(e) => {
                let json = e
                    .api()
                    .zip(fallback)
                    .and_then(|(a, f)| f.on_status(a.http_status()));
                match json {
                    Some(json) => self.client.core().send(json, call).await?,
                    None => return Err(e),
                }
            }
        };
        let decoder = WatchCall::<K>::decoder(response.headers())?;
        let state = WatchState {
            client: self.client.core().clone(),
            body: response.into_body(),
            decoder,
            uri,
            done: false,
        };
        Ok(stream::unfold(state, |mut state| async move {
            loop {
                if let Some(event) = state.decoder.poll_event() {
                    return Some((event.map_err(Error::from), state));
                }
                if state.done || state.decoder.is_failed() {
                    return None;
                }
                let fed = match state
                    .client
                    .next_chunk(&mut state.body, &Method::GET, &state.uri)
                    .await
                {
                    Ok(Some(chunk)) => state.decoder.push(&chunk).map_err(Error::from),
                    Ok(None) => {
                        state.done = true;
                        state.decoder.finish().map_err(Error::from)
                    }
                    Err(e) => Err(e),
                };
                if let Err(e) = fed {
                    state.done = true;
                    return Some((Err(e), state));
                }
            }
        }))
    }

    /// `DELETE` one object: its final state, or the server's `Success` status.
    pub async fn delete(&self, name: &str, params: &DeleteParams) -> Result<Deleted<K>, Error> {
        self.run(self.api.delete(name, params)).await
    }

    /// `DELETE` the objects `list` selects.
    pub async fn delete_collection(
        &self,
        delete: &DeleteParams,
        list: &ListParams,
    ) -> Result<Deleted<ObjectList<K>>, Error> {
        self.run(self.api.delete_collection(delete, list)).await
    }

    /// `PATCH` one object with any patch type, server-side apply included.
    pub async fn patch<P: Serialize>(
        &self,
        name: &str,
        params: &PatchParams,
        patch: &Patch<P>,
    ) -> Result<K, Error> {
        self.run(self.api.patch(name, params, patch)).await
    }

    /// Server-side apply of `object` as `field_manager` (`force` takes
    /// ownership of conflicting fields).
    pub async fn apply<P: Serialize>(
        &self,
        name: &str,
        field_manager: &str,
        force: bool,
        object: &P,
    ) -> Result<K, Error> {
        self.run(self.api.apply(name, field_manager, force, object))
            .await
    }

    /// `GET` the `status` subresource.
    pub async fn get_status(&self, name: &str) -> Result<K, Error> {
        self.run(self.api.get_status(name)).await
    }

    /// `PATCH` the `status` subresource.
    pub async fn patch_status<P: Serialize>(
        &self,
        name: &str,
        params: &PatchParams,
        patch: &Patch<P>,
    ) -> Result<K, Error> {
        self.run(self.api.patch_status(name, params, patch)).await
    }

    /// `GET` the `scale` subresource.
    pub async fn get_scale(&self, name: &str) -> Result<Scale, Error> {
        self.run(self.api.get_scale(name)).await
    }

    /// `PUT` the `scale` subresource.
    pub async fn replace_scale(
        &self,
        name: &str,
        params: &PostParams,
        scale: &Scale,
    ) -> Result<Scale, Error> {
        self.run(self.api.replace_scale(name, params, scale)).await
    }

    /// `PATCH` the `scale` subresource.
    pub async fn patch_scale<P: Serialize>(
        &self,
        name: &str,
        params: &PatchParams,
        patch: &Patch<P>,
    ) -> Result<Scale, Error> {
        self.run(self.api.patch_scale(name, params, patch)).await
    }

    /// A pod's log, whole.
    pub async fn logs(&self, name: &str, params: &LogParams) -> Result<String, Error> {
        self.run(self.api.logs(name, params)).await
    }

    /// A pod's log as it is written (`params.follow`), in chunks as they arrive.
    pub async fn log_stream(
        &self,
        name: &str,
        params: &LogParams,
    ) -> Result<impl Stream<Item = Result<Bytes, Error>> + use<K, C>, Error> {
        let call = self.api.logs(name, params)?;
        let uri = call.request.uri().to_string();
        let span = Call {
            verb: call.verb,
            kind: windlass_proto::retry::RequestKind::Stream,
            resource: self.api.plural(),
        };
        let body = self
            .client
            .core()
            .send(call.request, span)
            .await?
            .into_body();
        Ok(stream::try_unfold(
            (self.client.core().clone(), body, uri),
            |(client, mut body, uri)| async move {
                let chunk = client.next_chunk(&mut body, &Method::GET, &uri).await?;
                Ok(chunk.map(|c| (c, (client, body, uri))))
            },
        ))
    }

    /// Evicts a pod (a delete that respects PodDisruptionBudgets; 429 while one forbids it).
    pub async fn evict(&self, name: &str, params: &DeleteParams) -> Result<Status, Error> {
        self.run(self.api.evict(name, params)).await
    }
}

impl<K: Serialize + DeserializeOwned + 'static, C: RuntimeClient> Api<K, C> {
    /// `POST` a new object.
    pub async fn create(&self, params: &PostParams, object: &K) -> Result<K, Error> {
        self.run(self.api.create(params, object)).await
    }

    /// `PUT` a whole object (optimistic concurrency on its resourceVersion).
    pub async fn replace(&self, name: &str, params: &PostParams, object: &K) -> Result<K, Error> {
        self.run(self.api.replace(name, params, object)).await
    }

    /// `PUT` the `status` subresource.
    pub async fn replace_status(
        &self,
        name: &str,
        params: &PostParams,
        object: &K,
    ) -> Result<K, Error> {
        self.run(self.api.replace_status(name, params, object))
            .await
    }
}

/// An open watch: its body, its decoder, and whether the body has ended.
struct WatchState<K> {
    client: Client,
    body: hyper::body::Incoming,
    decoder: WatchDecoder<K>,
    uri: String,
    done: bool,
}
