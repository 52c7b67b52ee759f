//! `Api<K>`: every verb on one resource in one scope, typed — windlass-async's
//! [`Api`](windlass_async::Api) over this crate's [`Client`].

use windlass_proto::dynamic::DynamicObject;

use crate::Client;

/// Typed access to one resource, in one namespace, across all namespaces,
/// or cluster-wide (see [`windlass_async::Api`]).
pub type Api<K> = windlass_async::Api<K, Client>;

/// The dynamic API: any resource as [`DynamicObject`]s.
pub type DynamicApi = Api<DynamicObject>;

/// What the server serves, discovered through a client (see
/// [`windlass_async::Discovery`]).
pub type Discovery = windlass_async::Discovery<Client>;
