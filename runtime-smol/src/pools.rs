//! This crate's connections as windlass-async's [`Transport`]: the
//! `transport` module's pool for ordinary requests and HTTP/1.1 streams,
//! and the `shards` module's HTTP/2 connections for watches and followed
//! logs.

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use windlass_async::{BoxFuture, Purpose, Transport, TransportError as SendError};
use windlass_proto::retry::Failure;

use crate::shards::{Dispatch, StreamShards};
use crate::transport::{self, TransportError};

/// The pool and the stream shards.
pub(crate) struct Pools {
    pub(crate) transport: transport::Transport,
    /// HTTP/2 connections for watches and followed logs (`None`: HTTP/1.1 only).
    pub(crate) shards: Option<StreamShards>,
}

impl Transport for Pools {
    fn send(
        &self,
        request: Request<Full<Bytes>>,
        purpose: Purpose,
    ) -> BoxFuture<'_, Result<Response<Incoming>, SendError>> {
        Box::pin(async move {
            let stream = purpose == Purpose::Stream;
            let sent = async {
                if let (true, Some(shards)) = (stream, &self.shards) {
                    return match shards.send(&self.transport, request).await? {
                        Dispatch::Sent(response) => Ok(response),
                        Dispatch::Http1(request) => self.transport.send(request, true).await,
                    };
                }
                self.transport.send(request, stream).await
            };
            sent.await.map_err(|error| match error {
                TransportError::ConnectTimeout(after) => SendError::ConnectTimeout(after),
                TransportError::Connect(source) => SendError::Failed {
                    failure: Failure::Connect,
                    source,
                },
                TransportError::Http(source) => SendError::failed(source),
            })
        })
    }
}
