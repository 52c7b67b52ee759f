//! The informer runner: windlass-async's, on tokio (see
//! [`windlass_async::informer`]). [`Informer::start`] hands back a
//! `tokio::task::JoinHandle`; handlers and request readers run on
//! `tokio::spawn`, so an informer is used within a tokio runtime.

pub use windlass_async::informer::{Lister, Subscription};

use crate::Client;

/// A shared informer: one list and watch of one resource, one store, any
/// number of handlers (see [`windlass_async::Informer`]).
pub type Informer<K> = windlass_async::Informer<K, Client>;
