//! The informer runner: windlass-async's, on the client's
//! [`Spawner`](crate::Spawner) (smol's executor, async-std's, any; see
//! [`windlass_async::informer`]). [`Informer::start`] hands back a
//! [`JoinHandle`](crate::JoinHandle).

pub use windlass_async::informer::{Lister, Subscription};

use crate::Client;

/// A shared informer: one list and watch of one resource, one store, any
/// number of handlers (see [`windlass_async::Informer`]).
pub type Informer<K> = windlass_async::Informer<K, Client>;
