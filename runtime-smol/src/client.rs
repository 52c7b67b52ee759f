//! The HTTP client: hyper 1's low-level client over async-net and
//! futures-rustls (the `transport` module), with a rustls `ClientConfig`
//! windlass-proto made (or yours).
//!
//! This module owns the transport: connecting, sending, timing out, and
//! performing what windlass-proto asks between attempts — wait for the
//! client-side limiter ([`RequestLimiter`]), run a credential action
//! ([`Credentials::poll_action`]), wait out the retry policy's delay
//! ([`Retry::decide`]). It decides none of it.
//!
//! Every wait is async-io's `Timer`; every background future goes to the
//! caller's [`Spawner`](crate::Spawner).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use rustls::ClientConfig;
use smol::Timer;
use tracing::Instrument;
use windlass_proto::config::{Config, CredentialAction, Credentials, ExecOutcome, ExecRequest};
use windlass_proto::flowcontrol::RequestLimiter;
use windlass_proto::response::{self, ApiError};
use windlass_proto::retry::{Decision, Failure, RequestKind, Retry};

use crate::rt::timeout;
use crate::shards::{Dispatch, StreamShards};
use crate::transport::{Transport, TransportError};
use crate::{ClientBuilder, Error, Spawner};

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
    pub(crate) transport: Transport,
    /// HTTP/2 connections for watches and followed logs (`None`: HTTP/1.1 only).
    pub(crate) shards: Option<StreamShards>,
    pub(crate) base: Uri,
    pub(crate) default_namespace: String,
    pub(crate) credentials: Mutex<Credentials>,
    /// Held while a credential action runs, so concurrent requests wait for
    /// its result instead of finding the machine busy.
    pub(crate) refreshing: smol::lock::Mutex<()>,
    pub(crate) limiter: Mutex<RequestLimiter>,
    pub(crate) headers: HeaderMap,
    pub(crate) hooks: Vec<Arc<dyn Hook>>,
    pub(crate) read_timeout: Duration,
    pub(crate) max_body: usize,
    pub(crate) max_retries: u32,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.inner.base)
            .field("default_namespace", &self.inner.default_namespace)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client for `base` with default settings, its connections run by
    /// `spawner`; see [`ClientBuilder`].
    pub fn new(
        base: impl Into<String>,
        tls: Option<ClientConfig>,
        spawner: impl Into<Spawner>,
    ) -> Result<Self, Error> {
        ClientBuilder::new(base, tls, spawner).build()
    }

    /// A client for a resolved [`Config`]; see [`ClientBuilder::from_config`].
    pub fn from_config(config: &Config, spawner: impl Into<Spawner>) -> Result<Self, Error> {
        ClientBuilder::from_config(config, spawner)?.build()
    }

    /// The namespace of the configuration's context.
    pub fn default_namespace(&self) -> &str {
        &self.inner.default_namespace
    }

    /// The read-idle timeout.
    pub fn read_timeout(&self) -> Duration {
        self.inner.read_timeout
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

    async fn send_with_retries(
        &self,
        request: Request<Bytes>,
        call: Call<'_>,
    ) -> Result<Response<Incoming>, Error> {
        let mut retry = Retry::with_max_retries(call.kind, self.inner.max_retries);
        let mut reauthorized = false;
        loop {
            let at = self
                .inner
                .limiter
                .lock()
                .expect("limiter lock")
                .reserve(Instant::now());
            Timer::at(at).await;
            self.refresh_credentials().await;
            let (error, failure, generation) = match self.attempt(&request, call).await {
                Ok(response) => return Ok(response),
                Err(failed) => failed,
            };
            if let (Some(api), Some(generation)) = (error.api(), generation)
                && api.http_status() == StatusCode::UNAUTHORIZED
                && !reauthorized
                && self
                    .inner
                    .credentials
                    .lock()
                    .expect("credentials lock")
                    .handle_unauthorized(generation)
            {
                reauthorized = true;
                continue;
            }
            match failure.map_or(Decision::GiveUp, |f| retry.decide(f)) {
                Decision::RetryAfter(wait) => {
                    tracing::debug!(?wait, %error, retries = retry.retries(), "retrying");
                    Timer::after(wait).await;
                }
                Decision::GiveUp => return Err(error),
            }
        }
    }

    /// One attempt. On failure: the error, what the retry policy should judge
    /// (if anything), and the credential generation that was sent.
    async fn attempt(
        &self,
        request: &Request<Bytes>,
        call: Call<'_>,
    ) -> Result<Response<Incoming>, (Error, Option<Failure>, Option<u64>)> {
        let method = request.method().clone();
        let uri = request.uri().to_string();
        let mut outgoing = self.prepare(request).map_err(|e| (e, None, None))?;
        let generation = {
            let credentials = self.inner.credentials.lock().expect("credentials lock");
            credentials
                .authorize(outgoing.headers_mut())
                .map_err(|e| (e.into(), None, None))?
        };
        for hook in &self.inner.hooks {
            hook.on_request(&mut outgoing);
        }
        let stream = matches!(call.kind, RequestKind::Watch | RequestKind::Stream);
        let sent_uri = outgoing.uri().clone();
        let started = Instant::now();
        let transport = &self.inner.transport;
        let sent = async {
            if let (true, Some(shards)) = (stream, &self.inner.shards) {
                return match shards.send(transport, outgoing).await? {
                    Dispatch::Sent(response) => Ok(response),
                    Dispatch::Http1(outgoing) => transport.send(outgoing, true).await,
                };
            }
            transport.send(outgoing, stream).await
        };
        let result = timeout(self.inner.read_timeout, sent).await;
        let latency = started.elapsed();
        let status = result
            .as_ref()
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
            None => {
                let error = Error::Timeout {
                    method,
                    uri,
                    waiting_for: "response head",
                    after: self.inner.read_timeout,
                };
                return Err((error, Some(Failure::Timeout), Some(generation)));
            }
            Some(Err(TransportError::ConnectTimeout(after))) => {
                let error = Error::Timeout {
                    method,
                    uri,
                    waiting_for: "connection",
                    after,
                };
                return Err((error, Some(Failure::Connect), Some(generation)));
            }
            Some(Err(TransportError::Connect(source))) => {
                let error = Error::Transport {
                    method,
                    uri,
                    source,
                };
                return Err((error, Some(Failure::Connect), Some(generation)));
            }
            Some(Err(TransportError::Http(source))) => {
                let failure = transport_failure(&source);
                let error = Error::Transport {
                    method,
                    uri,
                    source: source.into(),
                };
                return Err((error, Some(failure), Some(generation)));
            }
            Some(Ok(response)) => response,
        };
        let status = response.status();
        if status.is_success() || status == StatusCode::SWITCHING_PROTOCOLS {
            return Ok(response);
        }
        let (head, body) = response.into_parts();
        let body = self
            .read_body(body, &method, &uri)
            .await
            .map_err(|e| (e, Some(Failure::EarlyEof), Some(generation)))?;
        let api = response::api_error(&method, status, &head.headers, &body)
            .unwrap_or_else(|| ApiError::from_status(Default::default(), status, &head.headers));
        let failure = Failure::from(&api);
        Err((api.into(), Some(failure), Some(generation)))
    }

    /// The request as hyper sends it: absolute URI under the base, the client's headers.
    fn prepare(&self, request: &Request<Bytes>) -> Result<Request<Full<Bytes>>, Error> {
        let base = &self.inner.base;
        let prefix = base.path().trim_end_matches('/');
        let path_and_query = request.uri().path_and_query().map_or("/", |p| p.as_str());
        let uri = Uri::builder()
            .scheme(base.scheme_str().unwrap_or("https"))
            .authority(base.authority().map_or("", |a| a.as_str()))
            .path_and_query(format!("{prefix}{path_and_query}"))
            .build()
            .map_err(|_| Error::BaseUrl {
                url: base.to_string(),
                what: "cannot join the request path",
            })?;
        let mut outgoing = Request::builder()
            .method(request.method().clone())
            .uri(uri)
            .body(Full::new(request.body().clone()))
            .expect("method and URI come from a valid request");
        let headers = outgoing.headers_mut();
        for (name, value) in &self.inner.headers {
            headers.insert(name, value.clone());
        }
        for (name, value) in request.headers() {
            headers.insert(name, value.clone());
        }
        Ok(outgoing)
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
            let frame = timeout(self.inner.read_timeout, body.frame()).await;
            match frame {
                None => {
                    return Err(Error::Timeout {
                        method: method.clone(),
                        uri: uri.to_owned(),
                        waiting_for: "body bytes",
                        after: self.inner.read_timeout,
                    });
                }
                Some(None) => return Ok(None),
                Some(Some(Err(source))) => {
                    return Err(Error::Body {
                        method: method.clone(),
                        uri: uri.to_owned(),
                        source,
                    });
                }
                Some(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data() {
                        return Ok(Some(data));
                    }
                }
            }
        }
    }

    /// Performs whatever the credential machine asks before a request: read a
    /// token file, run an exec plugin.
    async fn refresh_credentials(&self) {
        let _refreshing = self.inner.refreshing.lock().await;
        loop {
            let action = self
                .inner
                .credentials
                .lock()
                .expect("credentials lock")
                .poll_action(Instant::now());
            match action {
                None => return,
                Some(CredentialAction::ReadTokenFile(path)) => {
                    let result = smol::fs::read(&path).await;
                    let mut credentials = self.inner.credentials.lock().expect("credentials lock");
                    credentials.handle_token_file(result, Instant::now());
                }
                Some(CredentialAction::RunExec(request)) => {
                    let outcome = run_exec(request).await;
                    let mut credentials = self.inner.credentials.lock().expect("credentials lock");
                    // The error is kept by the machine and returned by `authorize`.
                    let _ = credentials.handle_exec_output(
                        outcome,
                        Instant::now(),
                        std::time::SystemTime::now(),
                    );
                }
            }
        }
    }
}

/// Runs an exec credential plugin with smol's process API (async-process).
async fn run_exec(request: ExecRequest) -> ExecOutcome {
    let mut command = smol::process::Command::new(&request.command);
    command.args(&request.args).kill_on_drop(true);
    for (name, value) in &request.env {
        command.env(name, value.expose());
    }
    command.stdin(if request.stdin {
        smol::process::Stdio::inherit()
    } else {
        smol::process::Stdio::null()
    });
    command.stderr(smol::process::Stdio::inherit());
    let output = command.output().await.map(|o| (o.status.code(), o.stdout));
    ExecOutcome::from_output(output)
}

/// What a hyper error before the response head was, in the retry policy's words.
fn transport_failure(error: &hyper::Error) -> Failure {
    if error.is_incomplete_message() || error.is_canceled() {
        return Failure::EarlyEof;
    }
    if error.is_timeout() {
        return Failure::Timeout;
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(error);
    while let Some(e) = source {
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
