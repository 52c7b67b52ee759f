//! windlass on smol (and so under async-std's executor): the same surface as
//! `windlass-tokio`, over async-net, futures-rustls and hyper 1's low-level client.
//!
//! Nothing lives here yet. The library will never call `smol::spawn` or
//! `smol::block_on`; it takes an executor, so it runs under any of them.
