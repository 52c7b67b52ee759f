//! The one error type of windlass-tokio and windlass-smol: windlass-proto's
//! [`windlass_proto::client::Error`], shared with windlass-blocking — what
//! windlass-proto decided went wrong (a request that cannot be built, the
//! server's `Status`, a body that does not decode), and what the transport
//! saw (connect, TLS, timeouts; hyper's errors as the sources).

pub use windlass_proto::client::Error;
