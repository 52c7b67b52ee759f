//! The leader-election runner: windlass-async's, on the client's [`Spawner`](crate::Spawner) (see
//! [`windlass_async::election`]).

pub use windlass_async::election::{ElectorHandle, Leadership};

use crate::Client;

/// One candidate in a Lease-based election (see [`windlass_async::LeaderElector`]).
pub type LeaderElector = windlass_async::LeaderElector<Client>;
