//! windlass as blocking calls: the same surface as `windlass-tokio`, over ureq 3,
//! with iterators for watches and threads for informers and workers.
//!
//! Nothing lives here yet.
