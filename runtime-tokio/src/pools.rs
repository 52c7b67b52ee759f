//! This crate's connections as windlass-async's [`Transport`]: hyper 1 with
//! hyper-util's pooled client and hyper-rustls, built from a rustls
//! `ClientConfig` windlass-proto made (or yours).
//!
//! One connector serves every connection. Ordinary requests use HTTP/1.1 or
//! HTTP/2, whichever ALPN picks, on hyper-util's pool. Watches and followed
//! logs go on HTTP/2 connections of their own, sharded below the API
//! server's 100-stream limit per connection (the `shards` module; hyper
//! would otherwise queue the 101st stream forever, reference/sans-io.md §2);
//! cancelling one resets only its own stream. When the server does not
//! speak HTTP/2, or [`ClientBuilder::http2_watches`](crate::ClientBuilder::http2_watches)
//! is off, each gets an HTTP/1.1 connection of its own instead.

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::client::legacy::Client as HyperClient;
use windlass_async::{BoxFuture, Purpose, Transport, TransportError, runtime::failure_of};
use windlass_proto::retry::Failure;

use crate::connect::{ConnectTimedOut, Connector};
use crate::shards::{Dispatch, StreamShards};

/// The pools and the stream shards.
pub(crate) struct Pools {
    pub(crate) requests: HyperClient<Connector, Full<Bytes>>,
    /// Held by the first ordinary request while the pool is cold: hyper
    /// cannot know a connection still being set up will be HTTP/2, so a cold
    /// burst would open one connection per request (4 to 20 measured).
    pub(crate) warm_up: tokio::sync::Mutex<bool>,
    pub(crate) streams: HyperClient<Connector, Full<Bytes>>,
    /// HTTP/2 connections for watches and followed logs (`None`: HTTP/1.1 only).
    pub(crate) shards: Option<StreamShards<Connector>>,
}

impl Transport for Pools {
    fn send(
        &self,
        request: Request<Full<Bytes>>,
        purpose: Purpose,
    ) -> BoxFuture<'_, Result<Response<Incoming>, TransportError>> {
        Box::pin(async move {
            if purpose == Purpose::Stream {
                if let Some(shards) = &self.shards {
                    match shards.send(request).await {
                        Ok(Dispatch::Sent(response)) => return Ok(response),
                        Ok(Dispatch::Http1(request)) => {
                            return pooled(&self.streams, request).await;
                        }
                        Err(error) => {
                            // Every shard full (`Exhausted`): retried like a
                            // refused connection, with backoff, as slots free up.
                            let failure = error.failure().unwrap_or(Failure::Connect);
                            let source = error.into();
                            return Err(TransportError::Failed { failure, source });
                        }
                    }
                }
                return pooled(&self.streams, request).await;
            }
            let guard = self.warm_up.lock().await;
            let mut cold = (!*guard).then_some(guard);
            let result = pooled(&self.requests, request).await;
            if let (Some(warmed), Ok(_)) = (&mut cold, &result) {
                **warmed = true;
            }
            result
        })
    }
}

/// Sends on a hyper-util pool.
async fn pooled(
    pool: &HyperClient<Connector, Full<Bytes>>,
    request: Request<Full<Bytes>>,
) -> Result<Response<Incoming>, TransportError> {
    pool.request(request).await.map_err(|error| {
        if let Some(timed_out) = connect_timed_out(&error) {
            return TransportError::ConnectTimeout(timed_out.0);
        }
        let failure = match error.is_connect() {
            true => Failure::Connect,
            false => failure_of(&error),
        };
        TransportError::Failed {
            failure,
            source: error.into(),
        }
    })
}

/// The connect timeout, if that is what failed `error`.
fn connect_timed_out(error: &hyper_util::client::legacy::Error) -> Option<&ConnectTimedOut> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(error);
    while let Some(e) = source {
        if let Some(timed_out) = e.downcast_ref::<ConnectTimedOut>() {
            return Some(timed_out);
        }
        source = e.source();
    }
    None
}
