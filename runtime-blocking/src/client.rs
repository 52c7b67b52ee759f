//! The HTTP client: ureq 3 agents (HTTP/1.1) over TCP and windlass-proto's
//! TLS, and the loop that performs what windlass-proto's [`Exchange`] asks
//! across a request's attempts — wait for a limiter slot or a retry delay,
//! run a credential action, send an attempt. It decides none of it.
//!
//! Timeouts: `timeout_connect` (TCP and the TLS handshake), and
//! `timeout_per_read` as the read-idle timeout for response heads, bodies
//! and watches alike. Never a global or per-call timeout: they would count
//! the whole life of a watch (reference/sans-io.md §2).
//!
//! Ordinary requests share one agent's pool. A stream (watch, followed log)
//! gets an agent of its own, because ureq interrupts blocked IO only by
//! shutting a whole agent down: that is how a [`CancelHandle`] stops one
//! stream from another thread without touching the others.

use std::io::Read;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode, Uri};
use ureq::unversioned::transport::{Connector, TcpConnector};
use ureq::{Agent, Body};
use windlass_proto::api::Formats;
pub use windlass_proto::client::Call;
use windlass_proto::client::{self, BodyLimit};
use windlass_proto::config::{Config, CredentialAction, Credentials, ExecOutcome, ExecRequest};
use windlass_proto::endpoint::Endpoint;
use windlass_proto::exchange::{self, Action, Exchange, ExchangeError, Outcome};
use windlass_proto::flowcontrol::RequestLimiter;
use windlass_proto::retry::Failure;

use crate::connect::ProxyConnector;
use crate::tls::TlsConnector;
use crate::{ClientBuilder, Error};

/// Sees every attempt of every request: add headers, log, count (the use
/// cases of client-go's `WrapTransport`), without forking the client.
pub trait Hook: Send + Sync {
    /// Before an attempt is sent, after credentials were added.
    fn on_request(&self, request: &mut Request<Vec<u8>>) {
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
    fn on_request(&self, request: &mut Request<Vec<u8>>) {
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

/// Stops one open stream (a watch, a followed log) from any thread: its
/// next or current read fails at once. Cloneable; cancelling twice is fine.
#[derive(Clone)]
pub struct CancelHandle {
    agent: Agent,
}

impl CancelHandle {
    /// Interrupts the stream's connection.
    pub fn cancel(&self) {
        self.agent.clone().shutdown();
    }
}

impl std::fmt::Debug for CancelHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CancelHandle").finish_non_exhaustive()
    }
}

/// A connection pool to one API server, cheap to clone.
#[derive(Clone)]
pub struct Client {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    /// The agent ordinary requests share.
    pub(crate) agent: Agent,
    pub(crate) transport: Transport,
    pub(crate) base: Endpoint,
    pub(crate) default_namespace: String,
    pub(crate) credentials: Mutex<Credentials>,
    /// Held while a credential action runs, so concurrent requests wait for it.
    pub(crate) refreshing: Mutex<()>,
    pub(crate) limiter: Mutex<RequestLimiter>,
    pub(crate) headers: HeaderMap,
    pub(crate) hooks: Vec<Arc<dyn Hook>>,
    pub(crate) read_timeout: Duration,
    pub(crate) max_body: usize,
    pub(crate) max_retries: u32,
    pub(crate) formats: Formats,
}

/// What every agent of a client is made of.
pub(crate) struct Transport {
    pub(crate) config: ureq::config::Config,
    /// `None` for a plain-HTTP base URL.
    pub(crate) tls: Option<TlsConnector>,
    /// Through the proxy, if any (see the `connect` module).
    pub(crate) proxy: ProxyConnector,
}

impl Transport {
    /// A new agent (its own pool): the proxy, TCP, then TLS for `https`.
    pub(crate) fn agent(&self) -> Agent {
        let tcp = ().chain(self.proxy.clone()).chain(TcpConnector::default());
        let resolver = self.proxy.resolver();
        match &self.tls {
            Some(tls) => Agent::with_parts(self.config.clone(), tcp.chain(tls.clone()), resolver),
            None => Agent::with_parts(self.config.clone(), tcp, resolver),
        }
    }
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
    pub fn new(
        base: impl Into<String>,
        tls: Option<windlass_proto::config::TlsDescription>,
    ) -> Result<Self, Error> {
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
    pub fn send(&self, request: Request<Bytes>, call: Call<'_>) -> Result<Response<Body>, Error> {
        self.send_on(&self.inner.agent, request, call)
    }

    /// [`send`](Self::send) on a connection of the response's own, for a
    /// long-lived body: the handle interrupts it from another thread.
    pub fn send_stream(
        &self,
        request: Request<Bytes>,
        call: Call<'_>,
    ) -> Result<(Response<Body>, CancelHandle), Error> {
        let cancel = self.stream_handle();
        let response = self.send_on_stream(&cancel, request, call)?;
        Ok((response, cancel))
    }

    /// A connection of its own for a stream about to be sent with
    /// [`send_on_stream`](Self::send_on_stream): cancelling the handle
    /// interrupts it even while it connects or waits for the head.
    pub fn stream_handle(&self) -> CancelHandle {
        CancelHandle {
            agent: self.inner.transport.agent(),
        }
    }

    /// [`send`](Self::send) on the connection of `stream` ([`stream_handle`](Self::stream_handle)).
    pub fn send_on_stream(
        &self,
        stream: &CancelHandle,
        request: Request<Bytes>,
        call: Call<'_>,
    ) -> Result<Response<Body>, Error> {
        self.send_on(&stream.agent, request, call)
    }

    /// [`send`](Self::send), then the body read whole (bounded and idle-timed).
    pub fn send_for_bytes(
        &self,
        request: Request<Bytes>,
        call: Call<'_>,
    ) -> Result<(http::response::Parts, Bytes), Error> {
        let method = request.method().clone();
        let uri = request.uri().to_string();
        let (head, body) = self.send(request, call)?.into_parts();
        let bytes = self.read_body(body, &method, &uri)?;
        Ok((head, bytes))
    }

    /// Drives windlass-proto's [`Exchange`] on `agent`: sleeps, performs the
    /// credential actions and sends the attempts it asks for, and feeds back
    /// what came of them. It decides nothing itself.
    fn send_on(
        &self,
        agent: &Agent,
        request: Request<Bytes>,
        call: Call<'_>,
    ) -> Result<Response<Body>, Error> {
        let _span = client::request_span(call).entered();
        let uri = request.uri().to_string();
        let mut exchange =
            Exchange::new(self.prepare(&request)?, call.kind, self.inner.max_retries);
        loop {
            // Requests share the credentials: one refresh at a time, and the
            // others wait for its result instead of sending without one.
            let refreshing = match exchange.may_use_credentials() {
                true => Some(self.inner.refreshing.lock().expect("refresh lock")),
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
                    std::thread::sleep(at.saturating_duration_since(Instant::now()));
                }
                Some(Action::Credential(CredentialAction::ReadTokenFile(path))) => {
                    let result = std::fs::read(&path);
                    let mut credentials = self.inner.credentials.lock().expect("credentials lock");
                    exchange.handle_token_file(&mut credentials, result, Instant::now());
                }
                Some(Action::Credential(CredentialAction::RunExec(run))) => {
                    let outcome = run_exec(run);
                    let mut credentials = self.inner.credentials.lock().expect("credentials lock");
                    let (now, wall_now) = (Instant::now(), SystemTime::now());
                    exchange.handle_exec_output(&mut credentials, outcome, now, wall_now);
                }
                Some(Action::Send(attempt)) => {
                    drop(refreshing);
                    let outcome = self.attempt(agent, attempt.request, &uri);
                    exchange.handle_outcome(outcome, Instant::now());
                }
                Some(Action::Finish(result)) => return result.map_err(ExchangeError::into_error),
                None => unreachable!("an exchange has a next step after every input"),
            }
        }
    }

    /// One attempt: send `outgoing` (credentials added) on `agent`, and read
    /// the body of an answer that is not a success.
    fn attempt(
        &self,
        agent: &Agent,
        outgoing: Request<Bytes>,
        uri: &str,
    ) -> Outcome<Response<Body>, Error> {
        let method = outgoing.method().clone();
        let uri = uri.to_owned();
        // ureq sends `Vec<u8>`, not `Bytes` (no `AsSendBody` for it).
        let mut outgoing = outgoing.map(|body| body.to_vec());
        for hook in &self.inner.hooks {
            hook.on_request(&mut outgoing);
        }
        let sent_uri = outgoing.uri().clone();
        let started = Instant::now();
        let result = agent.run(outgoing);
        let latency = started.elapsed();
        let status = result.as_ref().ok().map(Response::status);
        for hook in &self.inner.hooks {
            hook.on_response(&method, &sent_uri, status, latency);
        }
        client::record_attempt(&tracing::Span::current(), status, latency);
        let response = match result {
            Ok(response) => response,
            Err(source) => {
                let failure = transport_failure(&source);
                let error = match source {
                    ureq::Error::Timeout(ureq::Timeout::Resolve | ureq::Timeout::Connect) => {
                        Error::Timeout {
                            method,
                            uri,
                            waiting_for: "connection",
                            after: self
                                .inner
                                .transport
                                .config
                                .timeouts()
                                .connect
                                .unwrap_or_default(),
                        }
                    }
                    ureq::Error::Timeout(_) => self.timeout(method, uri, "response head"),
                    ureq::Error::Other(other) => match other.downcast() {
                        Ok(tls) => Error::Tls(*tls),
                        Err(other) => Error::Transport {
                            method,
                            uri,
                            source: Box::new(UreqFailure(ureq::Error::Other(other))),
                        },
                    },
                    source => Error::Transport {
                        method,
                        uri,
                        source: Box::new(UreqFailure(source)),
                    },
                };
                return Outcome::Failed(error, failure);
            }
        };
        if exchange::is_success(response.status()) {
            return Outcome::Success(response);
        }
        let (head, body) = response.into_parts();
        match self.read_body(body, &method, &uri) {
            Ok(body) => Outcome::Error(head, body),
            Err(error) => Outcome::Failed(error, Failure::EarlyEof),
        }
    }

    /// The request as ureq sends it: absolute URI under the base, the client's headers.
    fn prepare(&self, request: &Request<Bytes>) -> Result<Request<Bytes>, Error> {
        self.inner
            .base
            .prepare(request, &self.inner.headers)
            .map_err(|e| Error::BaseUrl {
                url: e.url,
                what: e.what,
            })
    }

    fn timeout(&self, method: Method, uri: String, waiting_for: &'static str) -> Error {
        Error::Timeout {
            method,
            uri,
            waiting_for,
            after: self.inner.read_timeout,
        }
    }

    /// Reads a whole body, each read within the read timeout, at most `max_body` bytes.
    pub(crate) fn read_body(&self, body: Body, method: &Method, uri: &str) -> Result<Bytes, Error> {
        let limit = BodyLimit::new(self.inner.max_body);
        let mut reader = body.into_reader().take(limit.read_bound());
        let mut buf = Vec::new();
        reader
            .read_to_end(&mut buf)
            .map_err(|e| self.read_error(e, method, uri))?;
        limit
            .check(buf.len())
            .map_err(|too_large| too_large.into_error(method, uri))?;
        Ok(buf.into())
    }

    /// A read error as an [`Error`]: ureq's per-read timeout is [`Error::Timeout`].
    pub(crate) fn read_error(&self, e: std::io::Error, method: &Method, uri: &str) -> Error {
        let timed_out = e.kind() == std::io::ErrorKind::TimedOut
            || e.get_ref()
                .and_then(|inner| inner.downcast_ref::<ureq::Error>())
                .is_some_and(|inner| matches!(inner, ureq::Error::Timeout(_)));
        if timed_out {
            return self.timeout(method.clone(), uri.to_owned(), "body bytes");
        }
        Error::Body {
            method: method.clone(),
            uri: uri.to_owned(),
            source: Box::new(e),
        }
    }
}

/// ureq's error as [`Error::Transport`]'s source. It prints as ureq's, and
/// shows as its sources what [`Error`]'s classifiers look for: the proxy's
/// refusal ([`Error::proxy`]) and a plain IO error (a refused connection, an
/// OS-level timeout). Other causes stay hidden, as ureq's error has no
/// sources of its own: the message stays ureq's alone.
#[derive(Debug)]
struct UreqFailure(ureq::Error);

impl std::fmt::Display for UreqFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for UreqFailure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.0 {
            ureq::Error::Other(e) if e.is::<crate::connect::ProxyFailure>() => Some(e.as_ref()),
            // An OS error, with no inner error whose own sources would add
            // text that ureq's message does not show.
            ureq::Error::Io(e) if e.get_ref().is_none() => Some(e),
            _ => None,
        }
    }
}

/// Runs an exec credential plugin.
fn run_exec(request: ExecRequest) -> ExecOutcome {
    let output = request.command().output();
    ExecOutcome::from_output(output.map(|o| (o.status.code(), o.stdout)))
}

/// What a transport error was, in the retry policy's words.
fn transport_failure(error: &ureq::Error) -> Failure {
    use std::io::ErrorKind::*;
    match error {
        ureq::Error::Timeout(_) => Failure::Timeout,
        ureq::Error::HostNotFound | ureq::Error::ConnectionFailed | ureq::Error::BadUri(_) => {
            Failure::Connect
        }
        // The TLS link's errors: a handshake that failed, a bad server name.
        ureq::Error::Other(e) if e.is::<windlass_proto::config::TlsError>() => Failure::Connect,
        // The proxy link's: a refused tunnel (a 407 …), TLS to an https:// proxy.
        ureq::Error::Other(e) if e.is::<crate::connect::ProxyFailure>() => e
            .downcast_ref::<crate::connect::ProxyFailure>()
            .map_or(Failure::Connect, |f| Failure::from(&f.source)),
        ureq::Error::Other(e) if e.is::<crate::connect::ProxyTlsFailure>() => Failure::Connect,
        ureq::Error::Io(io) => match io.kind() {
            ConnectionRefused | NotFound | AddrNotAvailable => Failure::Connect,
            UnexpectedEof => Failure::EarlyEof,
            TimedOut => Failure::Timeout,
            _ => Failure::ConnectionReset,
        },
        _ => Failure::ConnectionReset,
    }
}
