//! Watches and followed logs on HTTP/2 connections of their own, sharded so
//! no connection carries more streams than the API server allows
//! (windlass-proto's [`Shards`] decides where each goes; this module only
//! connects, sends and reports what it saw).
//!
//! Each shard is a `hyper::client::conn::http2::SendRequest`, connected with
//! the client's own connector (so TLS, client certificates and proxies are
//! the same as for every request) and ALPN `h2`. Its bytes pass through a
//! [`FrameObserver`], which tells the table the server's stream limit, a
//! GOAWAY, and each stream opening and closing — so a stream's slot is freed
//! when the stream ends, whoever holds its body. A connection that fails or
//! closes is forgotten, and its watches, once they re-watch, open a new one.
//! If the server does not negotiate `h2`, streams go back to one HTTP/1.1
//! connection each (the [`Dispatch::Http1`] answer).
//!
//! Every wait is bounded: connecting (TCP, TLS, HTTP/2 handshake and the
//! server's first SETTINGS) by the connect timeout; the response head and
//! each body chunk by the client's read timeout; dead peers by HTTP/2 pings.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, Uri};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::client::conn::http2;
use hyper::rt::{Read, ReadBuf, ReadBufCursor, Write};
use hyper_util::client::legacy::connect::Connection;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use tokio::sync::{OnceCell, oneshot};
use tower_service::Service;
use windlass_proto::retry::Failure;
use windlass_proto::shards::{
    Assignment, ConnectionId, FrameEvent, FrameObserver, ShardConfig, Shards, ShardsExhausted,
};

/// HTTP/2 keep-alive: a ping after this long without frames…
const KEEP_ALIVE: Duration = Duration::from_secs(30);
/// …and the connection is dead if no answer comes within this.
const KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(20);

type Body = Full<Bytes>;
type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The HTTP/2 connections for long-lived streams.
pub(crate) struct StreamShards<C> {
    connector: C,
    /// Where to connect (the base URL).
    target: Uri,
    connect_timeout: Duration,
    state: Arc<Mutex<State>>,
}

/// The table and the driver's handle for each of its connections.
struct State {
    table: Shards,
    connections: HashMap<ConnectionId, Arc<OnceCell<Connected>>>,
}

/// How a shard's connection attempt ended (shared by every stream waiting on it).
#[derive(Clone)]
enum Connected {
    Http2(http2::SendRequest<Body>),
    /// The server picked HTTP/1.1.
    Http1,
    Failed(ShardError),
}

/// Where a stream went.
pub(crate) enum Dispatch {
    /// Sent on an HTTP/2 shard: the response head.
    Sent(Response<Incoming>),
    /// The server does not speak HTTP/2: send it on its own HTTP/1.1 connection.
    Http1(Request<Body>),
}

/// Why a stream got no response head from its shard.
#[derive(Clone, Debug, thiserror::Error)]
pub(crate) enum ShardError {
    /// Connecting the shard failed (TCP, TLS, HTTP/2 handshake).
    #[error("connecting an HTTP/2 connection for streams: {0}")]
    Connect(Arc<str>),
    /// Connecting the shard took longer than the connect timeout.
    #[error("connecting an HTTP/2 connection for streams: no connection within {0:?}")]
    ConnectTimeout(Duration),
    /// Every shard is full.
    #[error(transparent)]
    Exhausted(#[from] ShardsExhausted),
    /// The connection failed while the request was sent or its head awaited.
    #[error("{0}")]
    Http(Arc<hyper::Error>),
}

impl ShardError {
    /// What the retry policy should judge (`None`: give up).
    pub(crate) fn failure(&self) -> Option<Failure> {
        match self {
            Self::Connect(_) | Self::ConnectTimeout(_) => Some(Failure::Connect),
            Self::Exhausted(_) => None,
            Self::Http(error) => Some(hyper_failure(error)),
        }
    }
}

/// What a hyper error was, in the retry policy's words.
fn hyper_failure(error: &hyper::Error) -> Failure {
    if error.is_incomplete_message() || error.is_canceled() {
        return Failure::EarlyEof;
    }
    if error.is_timeout() {
        return Failure::Timeout;
    }
    let mut source = std::error::Error::source(error);
    while let Some(e) = source {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            return match io.kind() {
                std::io::ErrorKind::UnexpectedEof => Failure::EarlyEof,
                std::io::ErrorKind::TimedOut => Failure::Timeout,
                _ => Failure::ConnectionReset,
            };
        }
        source = e.source();
    }
    Failure::ConnectionReset
}

impl State {
    fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
        state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Drops the handles of connections the table forgot.
    fn sync(&mut self) {
        while let Some(gone) = self.table.poll_forgotten() {
            self.connections.remove(&gone);
        }
    }
}

impl<C> StreamShards<C>
where
    C: Service<Uri> + Clone + Send + Sync + 'static,
    C::Response: Read + Write + Connection + Unpin + Send + 'static,
    C::Future: Send,
    C::Error: Into<BoxError>,
{
    pub(crate) fn new(
        connector: C,
        target: Uri,
        connect_timeout: Duration,
        config: ShardConfig,
    ) -> Self {
        Self {
            connector,
            target,
            connect_timeout,
            state: Arc::new(Mutex::new(State {
                table: Shards::new(config),
                connections: HashMap::new(),
            })),
        }
    }

    /// Sends `request` (an absolute URI) on a shard and waits for the
    /// response head, or hands it back for HTTP/1.1.
    pub(crate) async fn send(&self, request: Request<Body>) -> Result<Dispatch, ShardError> {
        loop {
            let (ticket, cell) = {
                let mut state = State::lock(&self.state);
                let ticket = match state.table.assign()? {
                    Assignment::Http1 => return Ok(Dispatch::Http1(request)),
                    Assignment::Shard { ticket, .. } => ticket,
                };
                let cell = state.connections.entry(ticket.connection()).or_default();
                (ticket, Arc::clone(cell))
            };
            // Give the place back if this future is dropped while it waits.
            let mut waiting = Waiting {
                state: &self.state,
                ticket: Some(ticket),
            };
            // Connected by a task of its own: a waiter that gives up does not
            // abandon the connection the others wait for.
            let connect = Connect {
                connector: self.connector.clone(),
                target: self.target.clone(),
                connect_timeout: self.connect_timeout,
                state: Arc::clone(&self.state),
            };
            let connected = cell
                .get_or_init(|| async move {
                    let id = ticket.connection();
                    tokio::spawn(connect.run(id)).await.unwrap_or_else(|e| {
                        Connected::Failed(ShardError::Connect(e.to_string().into()))
                    })
                })
                .await
                .clone();
            let mut sender = match connected {
                Connected::Http2(sender) => sender,
                Connected::Http1 => return Ok(Dispatch::Http1(request)),
                Connected::Failed(error) => return Err(error),
            };
            let admitted = {
                let mut state = State::lock(&self.state);
                waiting.ticket = None;
                let admitted = state.table.admit(ticket);
                state.sync();
                admitted
            };
            if !admitted {
                // The connection went away, or the server allows fewer streams
                // than were waiting for it: find another place.
                continue;
            }
            let response = sender
                .send_request(request)
                .await
                .map_err(|e| ShardError::Http(Arc::new(e)))?;
            return Ok(Dispatch::Sent(response));
        }
    }
}

/// What connecting a shard needs, owned by its task.
struct Connect<C> {
    connector: C,
    target: Uri,
    connect_timeout: Duration,
    state: Arc<Mutex<State>>,
}

impl<C> Connect<C>
where
    C: Service<Uri> + Clone + Send + Sync + 'static,
    C::Response: Read + Write + Connection + Unpin + Send + 'static,
    C::Future: Send,
    C::Error: Into<BoxError>,
{
    /// Connects shard `id`: TCP and TLS by the client's connector, the HTTP/2
    /// handshake, and the server's first SETTINGS (its stream limit).
    async fn run(mut self, id: ConnectionId) -> Connected {
        let attempt = async {
            let connector = &mut self.connector;
            std::future::poll_fn(|cx| connector.poll_ready(cx))
                .await
                .map_err(Into::into)?;
            let io = connector
                .call(self.target.clone())
                .await
                .map_err(Into::into)?;
            if !io.connected().is_negotiated_h2() {
                return Ok::<_, BoxError>(None);
            }
            let (settings, settings_seen) = oneshot::channel();
            let observed = Observed {
                io,
                id,
                observer: FrameObserver::new(),
                state: Arc::clone(&self.state),
                settings: Some(settings),
            };
            let (sender, connection) = http2::Builder::new(TokioExecutor::new())
                .timer(TokioTimer::new())
                .keep_alive_interval(KEEP_ALIVE)
                .keep_alive_timeout(KEEP_ALIVE_TIMEOUT)
                .keep_alive_while_idle(true)
                .handshake(observed)
                .await?;
            let state = Arc::clone(&self.state);
            tokio::spawn(async move {
                if let Err(e) = connection.await {
                    tracing::debug!(error = %e, connection = id.get(), "HTTP/2 stream shard ended");
                }
                let mut state = State::lock(&state);
                state.table.handle_closed(id);
                state.sync();
            });
            settings_seen
                .await
                .map_err(|_| "the connection closed before the server's SETTINGS")?;
            Ok(Some(sender))
        };
        let result = tokio::time::timeout(self.connect_timeout, attempt).await;
        let mut state = State::lock(&self.state);
        let connected = match result {
            Ok(Ok(Some(sender))) => {
                state.table.handle_connected(id);
                tracing::debug!(connection = id.get(), "HTTP/2 stream shard connected");
                Connected::Http2(sender)
            }
            Ok(Ok(None)) => {
                state.table.handle_http1_only(id);
                tracing::debug!("the server does not speak HTTP/2: streams use HTTP/1.1");
                Connected::Http1
            }
            Ok(Err(e)) => {
                state.table.handle_closed(id);
                Connected::Failed(ShardError::Connect(e.to_string().into()))
            }
            Err(_) => {
                state.table.handle_closed(id);
                Connected::Failed(ShardError::ConnectTimeout(self.connect_timeout))
            }
        };
        state.sync();
        connected
    }
}

/// A ticket given back to the table unless it was admitted.
struct Waiting<'a> {
    state: &'a Mutex<State>,
    ticket: Option<windlass_proto::shards::Ticket>,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if let Some(ticket) = self.ticket.take() {
            State::lock(self.state).table.cancel(ticket);
        }
    }
}

/// A shard's IO, its bytes shown to the frame observer on the way.
struct Observed<T> {
    io: T,
    id: ConnectionId,
    observer: FrameObserver,
    state: Arc<Mutex<State>>,
    /// Fired at the server's first SETTINGS.
    settings: Option<oneshot::Sender<()>>,
}

impl<T> Observed<T> {
    fn report(&mut self) {
        let Some(first) = self.observer.poll_event() else {
            return;
        };
        let mut state = State::lock(&self.state);
        let mut event = Some(first);
        while let Some(e) = event {
            if matches!(e, FrameEvent::Settings { .. })
                && let Some(settings) = self.settings.take()
            {
                let _ = settings.send(());
            }
            state.table.handle_frame(self.id, e);
            event = self.observer.poll_event();
        }
        state.sync();
    }
}

/// Reads go through a small buffer of our own, copied on into hyper's: the
/// observer needs the bytes, and filling hyper's uninitialised buffer
/// directly needs `unsafe`.
const SCRATCH: usize = 16 * 1024;

impl<T: Read + Unpin> Read for Observed<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut buf: ReadBufCursor<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let mut scratch = [0u8; SCRATCH];
        let len = buf.remaining().min(SCRATCH);
        let mut inner = ReadBuf::new(&mut scratch[..len]);
        std::task::ready!(Pin::new(&mut this.io).poll_read(cx, inner.unfilled()))?;
        let read = inner.filled();
        this.observer.handle_received(read);
        buf.put_slice(read);
        this.report();
        Poll::Ready(Ok(()))
    }
}

impl<T: Write + Unpin> Write for Observed<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let written = std::task::ready!(Pin::new(&mut this.io).poll_write(cx, buf))?;
        this.observer.handle_sent(&buf[..written]);
        this.report();
        Poll::Ready(Ok(written))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}
