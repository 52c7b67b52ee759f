//! The controller runner: windlass-async's, on the client's [`Spawner`](crate::Spawner) (see
//! [`windlass_async::controller`]).

pub use windlass_async::controller::{ControllerHandle, DEFAULT_SYNC_TIMEOUT};

use crate::Client;

/// An informer, a work queue and N workers that reconcile its keys (see
/// [`windlass_async::Controller`]).
pub type Controller<K> = windlass_async::Controller<K, Client>;
