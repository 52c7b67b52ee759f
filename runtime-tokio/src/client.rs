//! The HTTP client: hyper 1 with hyper-util's pooled client and hyper-rustls,
//! built from a rustls `ClientConfig` windlass-proto made (or yours).
//!
//! This module owns the transport: connecting, sending, timing out, and
//! performing what windlass-proto's [`Exchange`] asks across a request's
//! attempts — wait for a limiter slot or a retry delay, run a credential
//! action, send an attempt. It decides none of it.
//!
//! One connector serves every connection. Ordinary requests use HTTP/1.1 or
//! HTTP/2, whichever ALPN picks, on hyper-util's pool. Watches and followed
//! logs go on HTTP/2 connections of their own, sharded below the API
//! server's 100-stream limit per connection (the `shards` module; hyper
//! would otherwise queue the 101st stream forever, reference/sans-io.md §2);
//! cancelling one resets only its own stream. When the server does not
//! speak HTTP/2, or [`ClientBuilder::http2_watches`] is off, each gets an
//! HTTP/1.1 connection of its own instead.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client as HyperClient;
use rustls::ClientConfig;
use tracing::Instrument;
use windlass_proto::api::Formats;
use windlass_proto::config::{Config, CredentialAction, Credentials, ExecOutcome, ExecRequest};
use windlass_proto::endpoint::Endpoint;
use windlass_proto::exchange::{self, Action, Exchange, ExchangeError, Outcome};
use windlass_proto::flowcontrol::RequestLimiter;
use windlass_proto::retry::{Failure, RequestKind};

use crate::connect::Connector;
use crate::shards::{Dispatch, ShardError, StreamShards};
use crate::{ClientBuilder, Error};

/// Sees every attempt of every request: add headers, log, count (the use
/// cases of client-go's `WrapTransport`), without forking the client.
pub trait Hook: Send + Sync {
    /// Before an attempt is sent, after credentials were added.
    fn on_request(&self, request: &mut Request<Full<Bytes>>) {
        let _ = request;
    }

    /// When an attempt's response head arrived (`Some(status)`) or it failed
    /// (`None`), `latency` after it was sent.
    fn on_response(
        &self,
        method: &Method,
        uri: &Uri,
        status: Option<StatusCode>,
        latency: Duration,
    ) {
        let _ = (method, uri, status, latency);
    }
}

/// A shared hook is a hook (keep an `Arc` to read what it gathered).
impl<H: Hook + ?Sized> Hook for Arc<H> {
    fn on_request(&self, request: &mut Request<Full<Bytes>>) {
        (**self).on_request(request);
    }

    fn on_response(
        &self,
        method: &Method,
        uri: &Uri,
        status: Option<StatusCode>,
        latency: Duration,
    ) {
        (**self).on_response(method, uri, status, latency);
    }
}

/// What a request is, for the retry policy and the tracing span.
#[derive(Clone, Copy, Debug)]
pub struct Call<'a> {
    /// The Kubernetes verb (`get`, `list`, `watch`, `create`, …).
    pub verb: &'static str,
    /// The retry policy's class of request.
    pub kind: RequestKind,
    /// The resource's plural (and subresource), for the span.
    pub resource: &'a str,
}

/// A connection to one API server, cheap to clone (one shared pool).
#[derive(Clone)]
pub struct Client {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) requests: HyperClient<Connector, Full<Bytes>>,
    /// Held by the first ordinary request while the pool is cold: hyper
    /// cannot know a connection still being set up will be HTTP/2, so a cold
    /// burst would open one connection per request (4 to 20 measured).
    pub(crate) warm_up: tokio::sync::Mutex<bool>,
    pub(crate) streams: HyperClient<Connector, Full<Bytes>>,
    /// HTTP/2 connections for watches and followed logs (`None`: HTTP/1.1 only).
    pub(crate) shards: Option<StreamShards<Connector>>,
    pub(crate) base: Endpoint,
    pub(crate) default_namespace: String,
    pub(crate) credentials: Mutex<Credentials>,
    /// Held while a credential action runs, so concurrent requests wait for
    /// its result instead of finding the machine busy.
    pub(crate) refreshing: tokio::sync::Mutex<()>,
    pub(crate) limiter: Mutex<RequestLimiter>,
    pub(crate) headers: HeaderMap,
    pub(crate) hooks: Vec<Arc<dyn Hook>>,
    pub(crate) read_timeout: Duration,
    pub(crate) max_body: usize,
    pub(crate) max_retries: u32,
    pub(crate) formats: Formats,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", self.inner.base.uri())
            .field("default_namespace", &self.inner.default_namespace)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client for `base` with default settings; see [`ClientBuilder`].
    pub fn new(base: impl Into<String>, tls: Option<ClientConfig>) -> Result<Self, Error> {
        ClientBuilder::new(base, tls).build()
    }

    /// A client for a resolved [`Config`]; see [`ClientBuilder::from_config`].
    pub fn from_config(config: &Config) -> Result<Self, Error> {
        ClientBuilder::from_config(config)?.build()
    }

    /// The namespace of the configuration's context.
    pub fn default_namespace(&self) -> &str {
        &self.inner.default_namespace
    }

    /// The read-idle timeout.
    pub fn read_timeout(&self) -> Duration {
        self.inner.read_timeout
    }

    /// The encoding asked for, and the resources that fell back to JSON.
    pub fn formats(&self) -> &Formats {
        &self.inner.formats
    }

    /// Sends `request` (a path-and-query request from windlass-proto's
    /// builders), retrying as windlass-proto's policy says, and returns the
    /// success response with its body unread. Any other status becomes
    /// [`Error::Response`] with the server's `Status`.
    pub async fn send(
        &self,
        request: Request<Bytes>,
        call: Call<'_>,
    ) -> Result<Response<Incoming>, Error> {
        let span = tracing::debug_span!(
            "request",
            verb = call.verb,
            resource = call.resource,
            status = tracing::field::Empty,
            latency_ms = tracing::field::Empty,
        );
        self.send_with_retries(request, call).instrument(span).await
    }

    /// [`send`](Self::send), then the body read whole (bounded and idle-timed).
    pub async fn send_for_bytes(
        &self,
        request: Request<Bytes>,
        call: Call<'_>,
    ) -> Result<(http::response::Parts, Bytes), Error> {
        let method = request.method().clone();
        let uri = request.uri().to_string();
        let (head, body) = self.send(request, call).await?.into_parts();
        let bytes = self.read_body(body, &method, &uri).await?;
        Ok((head, bytes))
    }

    /// Drives windlass-proto's [`Exchange`]: sleeps, performs the credential
    /// actions and sends the attempts it asks for, and feeds back what came
    /// of them. It decides nothing itself.
    async fn send_with_retries(
        &self,
        request: Request<Bytes>,
        call: Call<'_>,
    ) -> Result<Response<Incoming>, Error> {
        let uri = request.uri().to_string();
        let mut exchange =
            Exchange::new(self.prepare(&request)?, call.kind, self.inner.max_retries);
        loop {
            // Requests share the credentials: one refresh at a time, and the
            // others wait for its result instead of sending without one.
            let refreshing = match exchange.may_use_credentials() {
                true => Some(self.inner.refreshing.lock().await),
                false => None,
            };
            let action = {
                let mut limiter = self.inner.limiter.lock().expect("limiter lock");
                let mut credentials = self.inner.credentials.lock().expect("credentials lock");
                exchange.poll_action(Instant::now(), &mut limiter, &mut credentials)
            };
            match action {
                Some(Action::Wait(at)) => {
                    drop(refreshing);
                    tokio::time::sleep_until(at.into()).await;
                }
                Some(Action::Credential(CredentialAction::ReadTokenFile(path))) => {
                    let result = tokio::fs::read(&path).await;
                    let mut credentials = self.inner.credentials.lock().expect("credentials lock");
                    exchange.handle_token_file(&mut credentials, result, Instant::now());
                }
                Some(Action::Credential(CredentialAction::RunExec(run))) => {
                    let outcome = run_exec(run).await;
                    let mut credentials = self.inner.credentials.lock().expect("credentials lock");
                    let (now, wall_now) = (Instant::now(), SystemTime::now());
                    exchange.handle_exec_output(&mut credentials, outcome, now, wall_now);
                }
                Some(Action::Send(attempt)) => {
                    drop(refreshing);
                    let outcome = self.attempt(attempt.request, call, &uri).await;
                    exchange.handle_outcome(outcome, Instant::now());
                }
                Some(Action::Finish(result)) => return result.map_err(ExchangeError::into_error),
                None => unreachable!("an exchange has a next step after every input"),
            }
        }
    }

    /// One attempt: send `outgoing` (credentials added) on the pool its
    /// kind uses, and read the body of an answer that is not a success.
    async fn attempt(
        &self,
        outgoing: Request<Bytes>,
        call: Call<'_>,
        uri: &str,
    ) -> Outcome<Response<Incoming>, Error> {
        let method = outgoing.method().clone();
        let mut outgoing = outgoing.map(Full::new);
        for hook in &self.inner.hooks {
            hook.on_request(&mut outgoing);
        }
        let pool_is_requests = !matches!(call.kind, RequestKind::Watch | RequestKind::Stream);
        let pool = if pool_is_requests {
            &self.inner.requests
        } else {
            &self.inner.streams
        };
        let mut cold = None;
        if pool_is_requests {
            let guard = self.inner.warm_up.lock().await;
            cold = (!*guard).then_some(guard);
        }
        let sent_uri = outgoing.uri().clone();
        let started = Instant::now();
        let sent = async {
            if let (false, Some(shards)) = (pool_is_requests, &self.inner.shards) {
                match shards.send(outgoing).await.map_err(SendError::Shard)? {
                    Dispatch::Sent(response) => return Ok(response),
                    Dispatch::Http1(outgoing) => {
                        return pool.request(outgoing).await.map_err(SendError::Pool);
                    }
                }
            }
            pool.request(outgoing).await.map_err(SendError::Pool)
        };
        let result = tokio::time::timeout(self.inner.read_timeout, sent).await;
        if let (Some(mut warmed), Ok(Ok(_))) = (cold, &result) {
            *warmed = true;
        }
        let latency = started.elapsed();
        let status = result
            .as_ref()
            .ok()
            .and_then(|r| r.as_ref().ok())
            .map(Response::status);
        for hook in &self.inner.hooks {
            hook.on_response(&method, &sent_uri, status, latency);
        }
        let span = tracing::Span::current();
        span.record("latency_ms", latency.as_millis() as u64);
        if let Some(status) = status {
            span.record("status", status.as_u16());
        }
        let response = match result {
            Err(_) => {
                let error = Error::Timeout {
                    method,
                    uri: uri.to_owned(),
                    waiting_for: "response head",
                    after: self.inner.read_timeout,
                };
                return Outcome::Failed(error, Failure::Timeout);
            }
            Ok(Err(SendError::Pool(source))) => {
                if let Some(timed_out) = connect_timed_out(&source) {
                    let error = Error::Timeout {
                        method,
                        uri: uri.to_owned(),
                        waiting_for: "connection",
                        after: timed_out.0,
                    };
                    return Outcome::Failed(error, Failure::Connect);
                }
                let failure = transport_failure(&source);
                let error = Error::Transport {
                    method,
                    uri: uri.to_owned(),
                    source: source.into(),
                };
                return Outcome::Failed(error, failure);
            }
            Ok(Err(SendError::Shard(source))) => {
                // Every shard full (`Exhausted`): retried like a refused
                // connection, with backoff, as slots free up.
                let failure = source.failure().unwrap_or(Failure::Connect);
                let error = Error::Transport {
                    method,
                    uri: uri.to_owned(),
                    source: source.into(),
                };
                return Outcome::Failed(error, failure);
            }
            Ok(Ok(response)) => response,
        };
        if exchange::is_success(response.status()) {
            return Outcome::Success(response);
        }
        let (head, body) = response.into_parts();
        match self.read_body(body, &method, uri).await {
            Ok(body) => Outcome::Error(head, body),
            Err(error) => Outcome::Failed(error, Failure::EarlyEof),
        }
    }

    /// The request as hyper sends it: absolute URI under the base, the client's headers.
    fn prepare(&self, request: &Request<Bytes>) -> Result<Request<Bytes>, Error> {
        self.inner
            .base
            .prepare(request, &self.inner.headers)
            .map_err(|e| Error::BaseUrl {
                url: e.url,
                what: e.what,
            })
    }

    /// Reads a whole body, each frame within the read timeout, at most `max_body` bytes.
    pub(crate) async fn read_body(
        &self,
        mut body: Incoming,
        method: &Method,
        uri: &str,
    ) -> Result<Bytes, Error> {
        let mut buf = Vec::new();
        while let Some(chunk) = self.next_chunk(&mut body, method, uri).await? {
            if buf.len() + chunk.len() > self.inner.max_body {
                return Err(Error::BodyTooLarge {
                    method: method.clone(),
                    uri: uri.to_owned(),
                    limit: self.inner.max_body,
                });
            }
            buf.extend_from_slice(&chunk);
        }
        Ok(buf.into())
    }

    /// The next data chunk of a body (`None` at its end), within the read timeout.
    pub(crate) async fn next_chunk(
        &self,
        body: &mut Incoming,
        method: &Method,
        uri: &str,
    ) -> Result<Option<Bytes>, Error> {
        loop {
            let frame = tokio::time::timeout(self.inner.read_timeout, body.frame()).await;
            match frame {
                Err(_) => {
                    return Err(Error::Timeout {
                        method: method.clone(),
                        uri: uri.to_owned(),
                        waiting_for: "body bytes",
                        after: self.inner.read_timeout,
                    });
                }
                Ok(None) => return Ok(None),
                Ok(Some(Err(source))) => {
                    return Err(Error::Body {
                        method: method.clone(),
                        uri: uri.to_owned(),
                        source,
                    });
                }
                Ok(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data() {
                        return Ok(Some(data));
                    }
                }
            }
        }
    }
}

/// Runs an exec credential plugin with tokio's process API.
async fn run_exec(request: ExecRequest) -> ExecOutcome {
    let mut command = tokio::process::Command::new(&request.command);
    command.args(&request.args).kill_on_drop(true);
    for (name, value) in &request.env {
        command.env(name, value.expose());
    }
    command.stdin(if request.stdin {
        std::process::Stdio::inherit()
    } else {
        std::process::Stdio::null()
    });
    command.stderr(std::process::Stdio::inherit());
    let output = command.output().await.map(|o| (o.status.code(), o.stdout));
    ExecOutcome::from_output(output)
}

/// Why an attempt got no response head: from hyper-util's pool or a stream shard.
enum SendError {
    Pool(hyper_util::client::legacy::Error),
    Shard(ShardError),
}

/// The connect timeout, if that is what failed `error`.
fn connect_timed_out(
    error: &hyper_util::client::legacy::Error,
) -> Option<&crate::connect::ConnectTimedOut> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(error);
    while let Some(e) = source {
        if let Some(timed_out) = e.downcast_ref::<crate::connect::ConnectTimedOut>() {
            return Some(timed_out);
        }
        source = e.source();
    }
    None
}

/// What a transport error was, in the retry policy's words.
fn transport_failure(error: &hyper_util::client::legacy::Error) -> Failure {
    if error.is_connect() {
        return Failure::Connect;
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(error);
    while let Some(e) = source {
        if let Some(hyper) = e.downcast_ref::<hyper::Error>() {
            if hyper.is_incomplete_message() || hyper.is_canceled() {
                return Failure::EarlyEof;
            }
            if hyper.is_timeout() {
                return Failure::Timeout;
            }
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind::*;
            return match io.kind() {
                UnexpectedEof => Failure::EarlyEof,
                TimedOut => Failure::Timeout,
                _ => Failure::ConnectionReset,
            };
        }
        source = e.source();
    }
    Failure::ConnectionReset
}
