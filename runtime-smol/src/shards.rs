//! Watches and followed logs on HTTP/2 connections of their own, sharded so
//! no connection carries more streams than the API server allows
//! (windlass-proto's [`Shards`] decides where each goes; this module only
//! connects, sends and reports what it saw).
//!
//! Each shard is a `hyper::client::conn::http2::SendRequest`, connected by
//! the [`Transport`] (its TCP, TLS and client certificate) with ALPN `h2`.
//! Its bytes pass through a [`FrameObserver`], which tells the table the
//! server's stream limit, a GOAWAY, and each stream opening and closing — so
//! a stream's slot is freed when the stream ends, whoever holds its body. A
//! connection that fails or closes is forgotten, and its watches, once they
//! re-watch, open a new one. If the server does not negotiate `h2`, streams
//! go back to one HTTP/1.1 connection each ([`Dispatch::Http1`]).
//!
//! Every wait is bounded: connecting (TCP, TLS, HTTP/2 handshake and the
//! server's first SETTINGS) by the connect timeout; the response head and
//! each body chunk by the client's read timeout; dead peers by HTTP/2 pings.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper::client::conn::http2;
use smol::io::{AsyncRead, AsyncWrite};
use smol::lock::OnceCell;
use windlass_proto::shards::{
    Assignment, ConnectionId, FrameEvent, FrameObserver, ShardConfig, Shards, Ticket,
};

use crate::rt::{Io, SmolTimer, timeout};
use crate::transport::{Body, BoxError, Transport, TransportError};

/// HTTP/2 keep-alive: a ping after this long without frames…
const KEEP_ALIVE: Duration = Duration::from_secs(30);
/// …and the connection is dead if no answer comes within this.
const KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(20);

/// The HTTP/2 connections for long-lived streams.
pub(crate) struct StreamShards {
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
    Failed(Arc<str>),
    TimedOut(Duration),
}

/// Where a stream went.
pub(crate) enum Dispatch {
    /// Sent on an HTTP/2 shard: the response head.
    Sent(Response<Incoming>),
    /// The server does not speak HTTP/2: send it on its own HTTP/1.1 connection.
    Http1(Request<Body>),
}

/// Connecting a shard failed; the message says why.
#[derive(Debug, thiserror::Error)]
#[error("connecting an HTTP/2 connection for streams: {0}")]
struct ConnectFailed(Arc<str>);

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

impl StreamShards {
    pub(crate) fn new(config: ShardConfig) -> Self {
        Self {
            state: Arc::new(Mutex::new(State {
                table: Shards::new(config),
                connections: HashMap::new(),
            })),
        }
    }

    /// Sends `request` (an absolute URI) on a shard and waits for the
    /// response head, or hands it back for HTTP/1.1.
    pub(crate) async fn send(
        &self,
        transport: &Transport,
        request: Request<Body>,
    ) -> Result<Dispatch, TransportError> {
        loop {
            let (ticket, cell) = {
                let mut state = State::lock(&self.state);
                let assignment = state
                    .table
                    .assign()
                    .map_err(|e| TransportError::Connect(Box::new(e)))?;
                let ticket = match assignment {
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
            let connected = cell
                .get_or_init(|| self.connect(transport, ticket.connection()))
                .await
                .clone();
            let mut sender = match connected {
                Connected::Http2(sender) => sender,
                Connected::Http1 => return Ok(Dispatch::Http1(request)),
                Connected::Failed(why) => {
                    return Err(TransportError::Connect(Box::new(ConnectFailed(why))));
                }
                Connected::TimedOut(after) => return Err(TransportError::ConnectTimeout(after)),
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
                .map_err(TransportError::Http)?;
            return Ok(Dispatch::Sent(response));
        }
    }

    /// Connects shard `id`: TCP and TLS by the transport, the HTTP/2
    /// handshake, and the server's first SETTINGS (its stream limit).
    async fn connect(&self, transport: &Transport, id: ConnectionId) -> Connected {
        let attempt = async {
            let Some(stream) = transport.connect_h2().await? else {
                return Ok::<_, BoxError>(None);
            };
            let (settings, settings_seen) = smol::channel::bounded(1);
            let observed = Observed {
                io: stream,
                id,
                observer: FrameObserver::new(),
                state: Arc::clone(&self.state),
                settings: Some(settings),
            };
            let (sender, connection) = http2::Builder::new(transport.spawner().clone())
                .timer(SmolTimer)
                .keep_alive_interval(KEEP_ALIVE)
                .keep_alive_timeout(KEEP_ALIVE_TIMEOUT)
                .keep_alive_while_idle(true)
                .handshake(Io::new(observed))
                .await?;
            let state = Arc::clone(&self.state);
            transport.spawner().spawn(async move {
                if let Err(e) = connection.await {
                    tracing::debug!(error = %e, connection = id.get(), "HTTP/2 stream shard ended");
                }
                let mut state = State::lock(&state);
                state.table.handle_closed(id);
                state.sync();
            });
            settings_seen
                .recv()
                .await
                .map_err(|_| "the connection closed before the server's SETTINGS")?;
            Ok(Some(sender))
        };
        // Boxed: the TLS and HTTP/2 handshakes are large futures.
        let result = timeout(transport.connect_timeout(), Box::pin(attempt)).await;
        let mut state = State::lock(&self.state);
        let connected = match result {
            Some(Ok(Some(sender))) => {
                state.table.handle_connected(id);
                tracing::debug!(connection = id.get(), "HTTP/2 stream shard connected");
                Connected::Http2(sender)
            }
            Some(Ok(None)) => {
                state.table.handle_http1_only(id);
                tracing::debug!("the server does not speak HTTP/2: streams use HTTP/1.1");
                Connected::Http1
            }
            Some(Err(e)) => {
                state.table.handle_closed(id);
                Connected::Failed(e.to_string().into())
            }
            None => {
                state.table.handle_closed(id);
                Connected::TimedOut(transport.connect_timeout())
            }
        };
        state.sync();
        connected
    }
}

/// A ticket given back to the table unless it was admitted.
struct Waiting<'a> {
    state: &'a Mutex<State>,
    ticket: Option<Ticket>,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if let Some(ticket) = self.ticket.take() {
            State::lock(self.state).table.cancel(ticket);
        }
    }
}

/// A shard's stream, its bytes shown to the frame observer on the way.
struct Observed<T> {
    io: T,
    id: ConnectionId,
    observer: FrameObserver,
    state: Arc<Mutex<State>>,
    /// Fired at the server's first SETTINGS.
    settings: Option<smol::channel::Sender<()>>,
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
                let _ = settings.try_send(());
            }
            state.table.handle_frame(self.id, e);
            event = self.observer.poll_event();
        }
        state.sync();
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Observed<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let read = std::task::ready!(Pin::new(&mut this.io).poll_read(cx, buf))?;
        this.observer.handle_received(&buf[..read]);
        this.report();
        Poll::Ready(Ok(read))
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Observed<T> {
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

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_close(cx)
    }
}
