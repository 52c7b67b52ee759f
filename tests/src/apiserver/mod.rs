//! `windlass-apiserver`: the HTTP and TLS front of the in-memory API server
//! [`crate::model`], good enough that kubectl works against it — the
//! embedded default for examples and end-to-end tests, an envtest without
//! etcd or kube-apiserver binaries.
//!
//! This module owns the server's lifetime (start on a loopback port, serve,
//! shut down), TLS with generated certificates, authentication (client
//! certificate or bearer token; plain HTTP asks for neither), the request
//! log, the body size limit and fault injection. Routing lives in `route`,
//! answers in `handler`, the wire shape of answers in `response`; the model
//! decides everything about objects.
//!
//! ```no_run
//! # async fn demo() -> Result<(), windlass_testkit::apiserver::StartError> {
//! use windlass_testkit::apiserver::ApiServer;
//!
//! let server = ApiServer::builder().start().await?;
//! std::fs::write("kubeconfig", server.kubeconfig()).unwrap();
//! // … run kubectl or a client against server.addr() …
//! server.faults().fail_requests(2, 503, 1); // the next two requests get 503
//! server.shutdown().await;
//! # Ok(()) }
//! ```

mod apply;
mod discovery;
mod handler;
mod kubeconfig;
mod response;
mod route;
mod table;
mod tls;
mod watch;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch as signal;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

pub use kubeconfig::{CONTEXT, TOKEN_CONTEXT};
pub use response::{Body, StreamCut};
pub use tls::{CLIENT_USER, Credentials};

use crate::model;

/// The request body limit, as kube-apiserver's (3 MiB).
pub const MAX_REQUEST_BODY: usize = 3 * 1024 * 1024;

/// Concurrent streams per HTTP/2 connection, as kube-apiserver allows since
/// its CVE-2023-44487 fix (`SETTINGS_MAX_CONCURRENT_STREAMS`).
pub const MAX_CONCURRENT_STREAMS: u32 = 100;

/// Why a server did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Binding or reading the listening socket failed.
    #[error("listen on {addr}: {source}")]
    Listen {
        /// The address asked for.
        addr: SocketAddr,
        /// The IO error.
        source: std::io::Error,
    },
    /// Generating a certificate failed.
    #[error("generating certificates: {0}")]
    Certificate(String),
    /// Building the TLS configuration failed.
    #[error("TLS configuration: {0}")]
    Tls(String),
}

/// One served request, as the request log records it.
#[derive(Clone, Debug)]
pub struct RequestRecord {
    /// The method.
    pub method: http::Method,
    /// The path and query.
    pub path: String,
    /// The response status.
    pub status: StatusCode,
    /// Time to the response head (a watch streams on after it).
    pub latency: Duration,
}

impl std::fmt::Display for RequestRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} {} {:.3}ms",
            self.method,
            self.path,
            self.status.as_u16(),
            self.latency.as_secs_f64() * 1000.0
        )
    }
}

type RequestLog = Arc<dyn Fn(&RequestRecord) + Send + Sync>;

/// Starts servers; see [`ApiServer::builder`].
pub struct ApiServer;

impl ApiServer {
    /// A builder with the defaults: TLS, a free loopback port, no request log.
    pub fn builder() -> ApiServerBuilder {
        ApiServerBuilder {
            tls: true,
            port: 0,
            log: None,
            bookmark_interval: Duration::from_secs(5),
            header_timeout: Duration::from_secs(30),
            model_config: None,
            max_concurrent_streams: MAX_CONCURRENT_STREAMS,
        }
    }
}

/// How to start a server.
pub struct ApiServerBuilder {
    tls: bool,
    port: u16,
    log: Option<RequestLog>,
    bookmark_interval: Duration,
    header_timeout: Duration,
    model_config: Option<model::Config>,
    max_concurrent_streams: u32,
}

impl std::fmt::Debug for ApiServerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiServerBuilder")
            .field("tls", &self.tls)
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

impl ApiServerBuilder {
    /// TLS with client-certificate and token authentication (default), or
    /// plain HTTP without authentication.
    pub fn tls(mut self, tls: bool) -> Self {
        self.tls = tls;
        self
    }

    /// The loopback port to listen on; 0 (default) picks a free one.
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// Calls `log` once per request, when its response head is ready.
    pub fn log_requests(mut self, log: impl Fn(&RequestRecord) + Send + Sync + 'static) -> Self {
        self.log = Some(Arc::new(log));
        self
    }

    /// How often a watch that allows bookmarks gets one (default 5 s).
    pub fn bookmark_interval(mut self, interval: Duration) -> Self {
        self.bookmark_interval = interval;
        self
    }

    /// How long a connection may take to send a request head (default 30 s).
    pub fn header_timeout(mut self, timeout: Duration) -> Self {
        self.header_timeout = timeout;
        self
    }

    /// Most concurrent streams per HTTP/2 connection (default
    /// [`MAX_CONCURRENT_STREAMS`], as kube-apiserver): announced in SETTINGS
    /// and enforced (a stream past it is refused).
    pub fn max_concurrent_streams(mut self, streams: u32) -> Self {
        self.max_concurrent_streams = streams;
        self
    }

    /// The model's configuration (watch cache size, seed, watch-list).
    ///
    /// Without one, the model's defaults with a seed drawn at random, so
    /// two servers never hand out the same uids.
    pub fn model_config(mut self, config: model::Config) -> Self {
        self.model_config = Some(config);
        self
    }

    /// Binds `127.0.0.1:<port>`, generates credentials (TLS) and starts
    /// serving on the current tokio runtime.
    pub async fn start(self) -> Result<RunningServer, StartError> {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| StartError::Listen { addr, source })?;
        let addr = listener
            .local_addr()
            .map_err(|source| StartError::Listen { addr, source })?;
        let credentials = if self.tls {
            Some(Credentials::generate()?)
        } else {
            None
        };
        let acceptor = match &credentials {
            Some(c) => Some(TlsAcceptor::from(Arc::new(c.server_config()?))),
            None => None,
        };
        let mut config = match self.model_config {
            Some(config) => config,
            None => model::Config {
                seed: tls::random_seed()?,
                ..model::Config::default()
            },
        };
        config.start_unix_seconds = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0));
        let mut model = model::ApiServer::new(config, Instant::now());
        model.set_patch_hook(Box::new(apply::Hook));
        let revision = model.resource_version();
        let (shutdown, _) = signal::channel(false);
        let (changed, _) = signal::channel(revision);
        let shared = Arc::new(Shared {
            model: Mutex::new(model),
            changed,
            shutdown,
            faults: Mutex::new(FaultState::default()),
            token: credentials.as_ref().map(|c| c.token.clone()),
            log: self.log,
            bookmark_interval: self.bookmark_interval,
            header_timeout: self.header_timeout,
            max_concurrent_streams: self.max_concurrent_streams,
            connections: Connections::default(),
        });
        let kubeconfig = kubeconfig::render(addr, credentials.as_ref());
        let task = tokio::spawn(accept_loop(listener, acceptor, Arc::clone(&shared)));
        Ok(RunningServer {
            addr,
            kubeconfig,
            credentials,
            shared,
            task: Some(task),
        })
    }
}

/// A server serving on a loopback port. Dropping it stops it too;
/// [`RunningServer::shutdown`] also waits until every connection is closed.
pub struct RunningServer {
    addr: SocketAddr,
    kubeconfig: String,
    credentials: Option<Credentials>,
    shared: Arc<Shared>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for RunningServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningServer")
            .field("addr", &self.addr)
            .field("tls", &self.credentials.is_some())
            .finish_non_exhaustive()
    }
}

impl RunningServer {
    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `https://127.0.0.1:<port>` (or `http://` without TLS).
    pub fn url(&self) -> String {
        let scheme = if self.credentials.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}", self.addr)
    }

    /// A kubeconfig pointing at this server, certificates embedded.
    pub fn kubeconfig(&self) -> &str {
        &self.kubeconfig
    }

    /// Counts of the connections it served (cheap to clone and keep).
    pub fn connections(&self) -> ConnectionStats {
        ConnectionStats {
            shared: Arc::clone(&self.shared),
        }
    }

    /// The generated certificates and token (`None` over plain HTTP).
    pub fn credentials(&self) -> Option<&Credentials> {
        self.credentials.as_ref()
    }

    /// The fault-injection controls.
    pub fn faults(&self) -> Faults {
        Faults {
            shared: Arc::clone(&self.shared),
        }
    }

    /// Runs `f` on the model (for setup and inspection); watches see any change it makes.
    pub fn with_model<T>(&self, f: impl FnOnce(&mut model::ApiServer) -> T) -> T {
        self.shared.mutate(f)
    }

    /// Stops accepting, closes every connection and stream, and waits for them.
    pub async fn shutdown(mut self) {
        self.shared.shutdown.send_replace(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        self.shared.shutdown.send_replace(true);
    }
}

/// How many connections a server accepted, holds open, and served over HTTP/2.
#[derive(Clone)]
pub struct ConnectionStats {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for ConnectionStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionStats")
            .field("accepted", &self.accepted())
            .field("open", &self.open())
            .field("http2", &self.http2())
            .finish()
    }
}

impl ConnectionStats {
    /// Connections accepted since the start (TCP, before TLS).
    pub fn accepted(&self) -> u64 {
        self.shared.connections.accepted.load(Ordering::Relaxed)
    }

    /// Connections open now.
    pub fn open(&self) -> u64 {
        self.shared.connections.open.load(Ordering::Relaxed)
    }

    /// Connections that negotiated HTTP/2 (ALPN `h2`) since the start.
    pub fn http2(&self) -> u64 {
        self.shared.connections.http2.load(Ordering::Relaxed)
    }
}

/// Fault injection at run time. Each knob counts down over the next
/// requests or watch streams it applies to.
#[derive(Clone)]
pub struct Faults {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Faults {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Faults").finish_non_exhaustive()
    }
}

impl Faults {
    /// The next `streams` watch streams are cut (the connection dropped,
    /// no final chunk) once `after_bytes` bytes of body have been sent.
    pub fn close_watches_after(&self, streams: u32, after_bytes: u64) {
        self.shared.faults().cut = Some(StreamFault {
            remaining: streams,
            after_bytes,
        });
    }

    /// The next `streams` watch streams stop sending (the connection stays
    /// open) once `after_bytes` bytes of body have been sent.
    pub fn stall_watches(&self, streams: u32, after_bytes: u64) {
        self.shared.faults().stall = Some(StreamFault {
            remaining: streams,
            after_bytes,
        });
    }

    /// The next `requests` requests are answered with `code` and
    /// `Retry-After: retry_after_seconds`: 429 as priority-and-fairness
    /// answers (a `text/plain` body), any other code as a `Status`.
    pub fn fail_requests(&self, requests: u32, code: u16, retry_after_seconds: u32) {
        self.shared.faults().fail = Some(RequestFault {
            remaining: requests,
            code,
            retry_after_seconds,
        });
    }

    /// Compacts history at the newest revision: older list snapshots,
    /// continue tokens and watch positions get 410 Expired.
    pub fn compact(&self) {
        self.shared.mutate(|m| {
            let rv = m.resource_version();
            m.compact(rv);
        });
    }

    /// Withholds (`true`) or sends again (`false`) the bookmark that ends a
    /// watch-list's initial events, for watches opened from now on.
    pub fn withhold_initial_events_end_bookmark(&self, withhold: bool) {
        self.shared
            .mutate(|m| m.set_initial_events_end_bookmark(!withhold));
    }

    /// Holds the watch cache at the current revision (`true`), as a server
    /// whose cache lags etcd: a client that saw newer revisions gets 504
    /// "Too large resource version". `false` lets it catch up.
    pub fn freeze_watch_cache(&self, frozen: bool) {
        self.shared.mutate(|m| {
            if frozen {
                m.freeze_watch_cache();
            } else {
                m.thaw_watch_cache();
            }
        });
    }

    /// An API server restart: every open watch stream is dropped and the
    /// watch cache starts over at the current revision (objects and
    /// resourceVersions survive, as etcd does).
    pub fn restart(&self) {
        self.shared.mutate(model::ApiServer::restart);
    }

    /// Drops every open connection at once, as a dying load balancer or a
    /// killed server process does: no GOAWAY, no final chunk, every stream
    /// on them cut. The server keeps accepting new connections.
    pub fn kill_connections(&self) {
        self.shared
            .connections
            .kill
            .send_modify(|generation| *generation += 1);
    }

    /// Refuses watch-list (`sendInitialEvents`) with 422, as a server
    /// without the `WatchList` feature does; `false` serves it again.
    pub fn refuse_watch_list(&self, refuse: bool) {
        self.shared.mutate(|m| m.set_watch_list(!refuse));
    }
}

#[derive(Clone, Copy, Debug)]
struct StreamFault {
    remaining: u32,
    after_bytes: u64,
}

#[derive(Clone, Copy, Debug)]
struct RequestFault {
    remaining: u32,
    code: u16,
    retry_after_seconds: u32,
}

#[derive(Debug, Default)]
struct FaultState {
    cut: Option<StreamFault>,
    stall: Option<StreamFault>,
    fail: Option<RequestFault>,
}

/// Takes one use of a counted fault, clearing the slot on its last use.
fn take<T: Copy>(slot: &mut Option<T>, remaining: impl Fn(&mut T) -> &mut u32) -> Option<T> {
    let fault = slot.as_mut()?;
    let left = remaining(fault);
    if *left == 0 {
        *slot = None;
        return None;
    }
    *left -= 1;
    let used_up = *left == 0;
    let taken = *fault;
    if used_up {
        *slot = None;
    }
    Some(taken)
}

/// What every connection and stream shares.
struct Shared {
    model: Mutex<model::ApiServer>,
    /// The model's revision after each change: watches wait on it.
    changed: signal::Sender<u64>,
    shutdown: signal::Sender<bool>,
    faults: Mutex<FaultState>,
    /// The bearer token (TLS only).
    token: Option<String>,
    log: Option<RequestLog>,
    bookmark_interval: Duration,
    header_timeout: Duration,
    max_concurrent_streams: u32,
    connections: Connections,
}

/// Connection counts, and the signal that kills them all.
struct Connections {
    accepted: AtomicU64,
    open: AtomicU64,
    http2: AtomicU64,
    /// Bumped by [`Faults::kill_connections`].
    kill: signal::Sender<u64>,
}

impl Default for Connections {
    fn default() -> Self {
        Self {
            accepted: AtomicU64::new(0),
            open: AtomicU64::new(0),
            http2: AtomicU64::new(0),
            kill: signal::channel(0).0,
        }
    }
}

/// Counts a connection open while it lives.
struct OpenConnection(Arc<Shared>);

impl OpenConnection {
    fn new(shared: Arc<Shared>) -> Self {
        shared.connections.open.fetch_add(1, Ordering::Relaxed);
        Self(shared)
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.connections.open.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Shared {
    fn model(&self) -> MutexGuard<'_, model::ApiServer> {
        self.model.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn faults(&self) -> MutexGuard<'_, FaultState> {
        self.faults.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `f` on the model and wakes the watches.
    fn mutate<T>(&self, f: impl FnOnce(&mut model::ApiServer) -> T) -> T {
        let mut model = self.model();
        let out = f(&mut model);
        let revision = model.resource_version();
        drop(model);
        // Always notify: compaction and watch-list switches change no revision.
        self.changed.send_modify(|r| *r = revision);
        out
    }

    /// The stream fault the next watch gets, if any (a cut before a stall).
    fn take_stream_fault(&self) -> Option<watch::StreamFaultKind> {
        let mut faults = self.faults();
        if let Some(f) = take(&mut faults.cut, |f| &mut f.remaining) {
            return Some(watch::StreamFaultKind::Cut(f.after_bytes));
        }
        take(&mut faults.stall, |f| &mut f.remaining)
            .map(|f| watch::StreamFaultKind::Stall(f.after_bytes))
    }
}

async fn accept_loop(listener: TcpListener, acceptor: Option<TlsAcceptor>, shared: Arc<Shared>) {
    let mut shutdown = shared.shutdown.subscribe();
    let mut connections = JoinSet::new();
    loop {
        let failed = tokio::select! {
            _ = shutdown.wait_for(|s| *s) => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    shared.connections.accepted.fetch_add(1, Ordering::Relaxed);
                    connections.spawn(serve_connection(stream, acceptor.clone(), Arc::clone(&shared)));
                    false
                }
                Err(_) => true,
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => false,
        };
        if failed {
            // Out of file descriptors, say: back off rather than spin.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    drop(listener);
    connections.abort_all();
    while connections.join_next().await.is_some() {}
}

async fn serve_connection(stream: TcpStream, acceptor: Option<TlsAcceptor>, shared: Arc<Shared>) {
    let _open = OpenConnection::new(Arc::clone(&shared));
    let mut shutdown = shared.shutdown.subscribe();
    let mut kill = shared.connections.kill.subscribe();
    kill.borrow_and_update();
    let _ = stream.set_nodelay(true);
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    // A client that never finishes its request head is dropped, not waited on forever.
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(shared.header_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(shared.max_concurrent_streams);
    match acceptor {
        None => {
            let service = service(Arc::clone(&shared), Auth::NotRequired);
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                _ = conn => {}
                _ = shutdown.wait_for(|s| *s) => {}
                _ = kill.changed() => {}
            }
        }
        Some(acceptor) => {
            let handshake = tokio::time::timeout(shared.header_timeout, acceptor.accept(stream));
            let tls = tokio::select! {
                tls = handshake => match tls { Ok(Ok(tls)) => tls, _ => return },
                _ = shutdown.wait_for(|s| *s) => return,
            };
            if tls.get_ref().1.alpn_protocol() == Some(b"h2") {
                shared.connections.http2.fetch_add(1, Ordering::Relaxed);
            }
            // The verifier only lets through certificates the CA signed.
            let auth = if tls
                .get_ref()
                .1
                .peer_certificates()
                .is_some_and(|c| !c.is_empty())
            {
                Auth::Certificate
            } else {
                Auth::TokenRequired
            };
            let conn = builder.serve_connection(TokioIo::new(tls), service(shared, auth));
            tokio::select! {
                _ = conn => {}
                _ = shutdown.wait_for(|s| *s) => {}
                _ = kill.changed() => {}
            }
        }
    }
}

/// How a connection authenticated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Auth {
    /// Plain HTTP: nothing asked.
    NotRequired,
    /// A client certificate the CA signed.
    Certificate,
    /// No certificate: each request needs the bearer token.
    TokenRequired,
}

fn service(
    shared: Arc<Shared>,
    auth: Auth,
) -> impl hyper::service::Service<
    Request<Incoming>,
    Response = Response<Body>,
    Error = std::convert::Infallible,
    Future = impl Future<Output = Result<Response<Body>, std::convert::Infallible>> + Send,
> + Clone {
    hyper::service::service_fn(move |request: Request<Incoming>| {
        let shared = Arc::clone(&shared);
        async move {
            let start = Instant::now();
            let method = request.method().clone();
            let path = request.uri().path_and_query().map_or_else(
                || request.uri().path().to_owned(),
                |p| p.as_str().to_owned(),
            );
            let response = serve(&shared, auth, request).await;
            if let Some(log) = &shared.log {
                log(&RequestRecord {
                    method,
                    path,
                    status: response.status(),
                    latency: start.elapsed(),
                });
            }
            Ok(response)
        }
    })
}

async fn serve(shared: &Arc<Shared>, auth: Auth, request: Request<Incoming>) -> Response<Body> {
    // An early answer (401, an injected fault) still reads the body first,
    // as Go's net/http does: answering before the client has finished
    // writing it makes the client see a reset connection instead of the
    // answer, depending on timing.
    let early = if auth == Auth::TokenRequired && !has_token(shared, &request) {
        Some(response::error_response(&response::status_error(
            401,
            "Unauthorized",
            "Unauthorized".to_owned(),
        )))
    } else {
        take(&mut shared.faults().fail, |f| &mut f.remaining).map(injected_failure)
    };
    let (parts, body) = request.into_parts();
    let too_large = || {
        response::error_response(&response::status_error(
            413,
            "RequestEntityTooLarge",
            format!(
                "the server has received too large of a request body: limit is {MAX_REQUEST_BODY} bytes"
            ),
        ))
    };
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_REQUEST_BODY as u64) {
        return early.unwrap_or_else(too_large);
    }
    let read = tokio::time::timeout(
        Duration::from_secs(60),
        Limited::new(body, MAX_REQUEST_BODY).collect(),
    )
    .await;
    if let Some(early) = early {
        return early;
    }
    let body: Bytes = match read {
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => return too_large(),
        Ok(Err(_)) | Err(_) => {
            return response::error_response(&response::status_error(
                400,
                "BadRequest",
                "the request body could not be read".to_owned(),
            ));
        }
    };
    handler::handle(shared, &parts, body)
}

fn has_token(shared: &Shared, request: &Request<Incoming>) -> bool {
    let Some(token) = &shared.token else {
        return false;
    };
    request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|given| constant_time_eq(given.trim().as_bytes(), token.as_bytes()))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn injected_failure(fault: RequestFault) -> Response<Body> {
    let retry = HeaderValue::from(fault.retry_after_seconds);
    if fault.code == 429 {
        // Priority-and-fairness answers in plain text, not a Status.
        let mut response = Response::new(Body::Full(Some(Bytes::from_static(
            b"Too many requests, please try again later.\n",
        ))));
        *response.status_mut() = StatusCode::TOO_MANY_REQUESTS;
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        headers.insert(header::RETRY_AFTER, retry);
        return response;
    }
    let (reason, message) = match fault.code {
        503 => (
            "ServiceUnavailable",
            "The server is currently unable to handle the request",
        ),
        504 => (
            "Timeout",
            "The server was unable to return a response in the time allotted, but may still be processing the request",
        ),
        500 => ("InternalError", "Internal error occurred: injected fault"),
        _ => ("", "injected fault"),
    };
    let error = response::status_with_details(
        fault.code,
        reason,
        message.to_owned(),
        Vec::new(),
        Some(fault.retry_after_seconds),
    );
    let mut response = response::error_response(&error);
    response.headers_mut().insert(header::RETRY_AFTER, retry);
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::Method;
    use proptest::prelude::*;

    fn shared() -> Arc<Shared> {
        let mut model = model::ApiServer::new(model::Config::default(), Instant::now());
        model.set_patch_hook(Box::new(apply::Hook));
        let (shutdown, _) = signal::channel(false);
        let (changed, _) = signal::channel(0);
        Arc::new(Shared {
            model: Mutex::new(model),
            changed,
            shutdown,
            faults: Mutex::new(FaultState::default()),
            token: None,
            log: None,
            bookmark_interval: Duration::from_secs(5),
            header_timeout: Duration::from_secs(5),
            max_concurrent_streams: MAX_CONCURRENT_STREAMS,
            connections: Connections::default(),
        })
    }

    const SEGMENTS: &[&str] = &[
        "api",
        "apis",
        "v1",
        "apps",
        "namespaces",
        "default",
        "pods",
        "configmaps",
        "status",
        "watch",
        "x",
        "",
        "deployments",
        "customresourcedefinitions",
        "openapi",
        "v3",
        "finalize",
    ];
    const QUERIES: &[&str] = &[
        "",
        "watch=1",
        "limit=1",
        "limit=-5",
        "continue=%zz",
        "resourceVersion=9&resourceVersionMatch=Exact",
        "labelSelector=a+in+(",
        "fieldSelector=spec.x%3D1",
        "sendInitialEvents=true",
        "propagationPolicy=X",
        "fieldManager=m&force=true",
        "timeoutSeconds=1",
    ];
    const TYPES: &[&str] = &[
        "application/json",
        "application/merge-patch+json",
        "application/json-patch+json",
        "application/strategic-merge-patch+json",
        "application/apply-patch+yaml",
        "application/vnd.kubernetes.protobuf",
        "text/plain",
        "",
    ];
    const BODIES: &[&str] = &[
        "",
        "{",
        "[]",
        "null",
        "{}",
        r#"{"metadata":{"name":"a"}}"#,
        r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a"},"data":{"k":"v"}}"#,
        r#"[{"op":"replace","path":"/x/y","value":1}]"#,
        r#"{"metadata":{"name":"A B"}}"#,
        "k8s\u{0}\u{ff}\u{ff}",
        r#"{"spec":{"containers":[{"name":1}]}}"#,
    ];

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]
        /// Whatever the request, the handler answers (never panics) with a
        /// code a real server gives, and never a 5xx for a client's mistake.
        #[test]
        fn apiserver_handler_answers_any_request_without_panicking(
            method in 0usize..6,
            segments in proptest::collection::vec(0..SEGMENTS.len(), 0..7),
            query in 0..QUERIES.len(),
            content_type in 0..TYPES.len(),
            body in 0..BODIES.len(),
            accept in proptest::option::of("[a-z/;=,*.A-Z-]{0,40}"),
        ) {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            let _guard = runtime.enter();
            let shared = shared();
            let methods = [Method::GET, Method::POST, Method::PUT, Method::PATCH, Method::DELETE, Method::OPTIONS];
            let path: String = segments.iter().map(|i| format!("/{}", SEGMENTS[*i])).collect();
            let uri = format!("{}?{}", if path.is_empty() { "/" } else { &path }, QUERIES[query]);
            let mut request = Request::builder().method(methods[method].clone()).uri(&uri);
            if !TYPES[content_type].is_empty() {
                request = request.header(header::CONTENT_TYPE, TYPES[content_type]);
            }
            if let Some(accept) = &accept {
                request = request.header(header::ACCEPT, accept.as_str());
            }
            let (parts, ()) = request.body(()).unwrap().into_parts();
            let response = handler::handle(&shared, &parts, Bytes::from_static(BODIES[body].as_bytes()));
            let code = response.status().as_u16();
            prop_assert!(
                [200, 201, 400, 404, 405, 406, 409, 410, 415, 422].contains(&code),
                "{} {uri} -> {code}", methods[method]
            );
            shared.shutdown.send_replace(true);
        }
    }
}
