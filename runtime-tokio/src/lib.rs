//! windlass on tokio: HTTP over hyper 1 and rustls, an async `Client`, `Api<K>`,
//! watch streams, informer and controller runners and a leader-election runner.
//!
//! Nothing lives here yet. This crate will be a thin driver of `windlass-proto`:
//! it moves bytes, waits and spawns, and makes no Kubernetes decision of its own.
