//! Watch sharding over HTTP/2: which connection a long-lived stream (a
//! watch, a followed log) goes on. kube-apiserver allows 100 concurrent
//! streams per HTTP/2 connection, and hyper neither opens a second
//! connection when one is full nor fails the extra stream: it waits, and a
//! watch that waits for a slot hangs (reference/sans-io.md §2). So the
//! driver keeps its own HTTP/2 connections for streams and asks
//! [`Shards`] where each new one goes.
//!
//! This module owns that table and its decisions: a connection takes
//! streams while it holds fewer than its limit (the configured cap, lowered
//! to the server's `SETTINGS_MAX_CONCURRENT_STREAMS` minus headroom once the
//! server's SETTINGS are seen), the least loaded connection first; when all
//! are full a new one is opened, up to a bound; a connection that failed,
//! closed or sent GOAWAY is forgotten, so the next stream opens a fresh one.
//! It counts streams from the wire ([`FrameObserver`] watches each
//! connection's frames), so a stream is released when it really ends —
//! the server finished it, or the client reset it by dropping the body —
//! whoever holds the body. It opens nothing and sends nothing: the driver
//! does, and reports back.
//!
//! | connection state | takes streams | on |
//! |---|---|---|
//! | Connecting | yes, up to the cap (they wait) | `handle_connected` → Ready; `handle_closed` → forgotten; `handle_http1_only` → forgotten, streams use HTTP/1.1 from then on |
//! | Ready | yes, up to its limit | `handle_frame(GoAway)` → Draining; `handle_closed` → forgotten |
//! | Draining | no | its last stream closed, or `handle_closed` → forgotten |
//!
//! The driving loop, per stream:
//!
//! ```
//! use windlass_proto::shards::{Assignment, FrameEvent, ShardConfig, Shards};
//!
//! let mut shards = Shards::new(ShardConfig::default());
//! let Assignment::Shard { ticket, opens } = shards.assign().unwrap() else { unreachable!() };
//! if opens {
//!     // connect (TLS, ALPN h2, HTTP/2 handshake), wait for the server's SETTINGS:
//!     shards.handle_frame(ticket.connection(), FrameEvent::Settings { max_concurrent_streams: Some(100) });
//!     shards.handle_connected(ticket.connection());
//! }
//! // once the connection is ready: may this stream go now? (else assign again)
//! assert!(shards.admit(ticket));
//! // … send it; the connection's FrameObserver reports the stream opening and closing:
//! shards.handle_frame(ticket.connection(), FrameEvent::StreamOpened(1));
//! assert_eq!(shards.streams(ticket.connection()), Some(1));
//! shards.handle_frame(ticket.connection(), FrameEvent::StreamClosed(1));
//! while let Some(gone) = shards.poll_forgotten() { /* drop that connection's handle */ let _ = gone; }
//! ```

mod frames;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, VecDeque};

pub use frames::{FrameEvent, FrameObserver, MAX_TRACKED_STREAMS};

/// Default cap on streams per connection: below kube-apiserver's 100.
pub const DEFAULT_MAX_STREAMS_PER_CONNECTION: u32 = 90;
/// Default headroom kept below a server's announced stream limit.
pub const DEFAULT_HEADROOM: u32 = 10;
/// Default bound on HTTP/2 connections for streams (5760 streams at the default cap).
pub const DEFAULT_MAX_CONNECTIONS: usize = 64;

/// How streams are sharded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShardConfig {
    /// Most streams on one connection (default 90).
    pub max_streams_per_connection: u32,
    /// Kept free below the server's `SETTINGS_MAX_CONCURRENT_STREAMS`
    /// (default 10; at most half the server's limit is kept free).
    pub headroom: u32,
    /// Most connections taking streams at once (default 64; connections
    /// draining after GOAWAY are not counted).
    pub max_connections: usize,
}

impl Default for ShardConfig {
    fn default() -> Self {
        Self {
            max_streams_per_connection: DEFAULT_MAX_STREAMS_PER_CONNECTION,
            headroom: DEFAULT_HEADROOM,
            max_connections: DEFAULT_MAX_CONNECTIONS,
        }
    }
}

/// One connection of the table, named by the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConnectionId(u64);

impl ConnectionId {
    /// The number (increasing, never reused).
    pub fn get(self) -> u64 {
        self.0
    }
}

/// A stream's place on a connection, between [`Shards::assign`] and
/// [`Shards::admit`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ticket {
    connection: ConnectionId,
    id: u64,
}

impl Ticket {
    /// The connection it is on.
    pub fn connection(self) -> ConnectionId {
        self.connection
    }
}

/// Where a new stream goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Assignment {
    /// On this connection; `opens`: the caller opens it (it is new).
    Shard {
        /// The stream's place.
        ticket: Ticket,
        /// The connection is new: this caller connects it.
        opens: bool,
    },
    /// The server does not speak HTTP/2: use a connection of its own over HTTP/1.1.
    Http1,
}

/// Every connection is full.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "all {connections} HTTP/2 connections for watches hold their {streams_per_connection} streams"
)]
pub struct ShardsExhausted {
    /// The connection bound.
    pub connections: usize,
    /// The cap per connection.
    pub streams_per_connection: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Connecting,
    Ready,
    Draining,
}

#[derive(Debug)]
struct Connection {
    state: State,
    /// Most streams this connection takes.
    limit: u32,
    /// Tickets assigned here, not yet admitted.
    waiting: BTreeSet<u64>,
    /// Admitted, not yet seen on the wire.
    in_flight: u32,
    /// Open on the wire.
    open: u32,
}

impl Connection {
    fn load(&self) -> u32 {
        self.waiting.len() as u32 + self.in_flight + self.open
    }

    fn takes_streams(&self) -> bool {
        self.state != State::Draining && self.load() < self.limit
    }
}

/// The table of HTTP/2 connections for streams; see the module doc.
#[derive(Debug)]
pub struct Shards {
    config: ShardConfig,
    http1_only: bool,
    connections: BTreeMap<ConnectionId, Connection>,
    next_connection: u64,
    next_ticket: u64,
    forgotten: VecDeque<ConnectionId>,
}

impl Shards {
    /// An empty table.
    pub fn new(config: ShardConfig) -> Self {
        Self {
            config,
            http1_only: false,
            connections: BTreeMap::new(),
            next_connection: 0,
            next_ticket: 0,
            forgotten: VecDeque::new(),
        }
    }

    // --- getters

    /// The configuration.
    pub fn config(&self) -> &ShardConfig {
        &self.config
    }

    /// Connections taking streams (connecting or ready).
    pub fn active_connections(&self) -> usize {
        self.connections
            .values()
            .filter(|c| c.state != State::Draining)
            .count()
    }

    /// Streams on `connection` (waiting, being sent, open), `None` if it is not in the table.
    pub fn streams(&self, connection: ConnectionId) -> Option<u32> {
        self.connections.get(&connection).map(Connection::load)
    }

    /// Most streams `connection` takes, `None` if it is not in the table.
    pub fn limit(&self, connection: ConnectionId) -> Option<u32> {
        self.connections.get(&connection).map(|c| c.limit)
    }

    /// Whether `connection` is still in the table and not draining.
    pub fn is_usable(&self, connection: ConnectionId) -> bool {
        self.connections
            .get(&connection)
            .is_some_and(|c| c.state != State::Draining)
    }

    /// Whether the server was found not to speak HTTP/2.
    pub fn is_http1_only(&self) -> bool {
        self.http1_only
    }

    // --- inputs

    /// `connection` finished its handshake (and the server's SETTINGS were seen).
    pub fn handle_connected(&mut self, connection: ConnectionId) {
        if let Some(c) = self.connections.get_mut(&connection)
            && c.state == State::Connecting
        {
            c.state = State::Ready;
        }
    }

    /// `connection` negotiated HTTP/1.1: streams use HTTP/1.1 from now on.
    pub fn handle_http1_only(&mut self, connection: ConnectionId) {
        self.http1_only = true;
        self.forget(connection);
    }

    /// `connection` failed to connect, failed, or closed.
    pub fn handle_closed(&mut self, connection: ConnectionId) {
        self.forget(connection);
    }

    /// What `connection`'s [`FrameObserver`] saw.
    pub fn handle_frame(&mut self, connection: ConnectionId, event: FrameEvent) {
        let headroom = self.config.headroom;
        let cap = self.config.max_streams_per_connection;
        let Some(c) = self.connections.get_mut(&connection) else {
            return;
        };
        match event {
            FrameEvent::Settings {
                max_concurrent_streams,
            } => {
                let server = max_concurrent_streams.unwrap_or(u32::MAX);
                c.limit = cap.min(server - headroom.min(server / 2));
            }
            FrameEvent::GoAway { .. } => c.state = State::Draining,
            FrameEvent::StreamOpened(_) => {
                c.in_flight = c.in_flight.saturating_sub(1);
                c.open += 1;
            }
            FrameEvent::StreamClosed(_) => c.open = c.open.saturating_sub(1),
        }
        if c.state == State::Draining && c.in_flight == 0 && c.open == 0 {
            self.forget(connection);
        }
    }

    // --- decisions

    /// Where a new stream goes: the least loaded connection with room, else
    /// a new connection, else [`ShardsExhausted`].
    pub fn assign(&mut self) -> Result<Assignment, ShardsExhausted> {
        if self.http1_only {
            return Ok(Assignment::Http1);
        }
        let id = self.next_ticket;
        self.next_ticket += 1;
        let least_loaded = self
            .connections
            .iter_mut()
            .filter(|(_, c)| c.takes_streams())
            .min_by_key(|(cid, c)| (c.load(), **cid));
        if let Some((connection, c)) = least_loaded {
            c.waiting.insert(id);
            let ticket = Ticket {
                connection: *connection,
                id,
            };
            return Ok(Assignment::Shard {
                ticket,
                opens: false,
            });
        }
        if self.active_connections() >= self.config.max_connections
            || self.config.max_streams_per_connection == 0
        {
            return Err(ShardsExhausted {
                connections: self.config.max_connections,
                streams_per_connection: self.config.max_streams_per_connection,
            });
        }
        let connection = ConnectionId(self.next_connection);
        self.next_connection += 1;
        self.connections.insert(
            connection,
            Connection {
                state: State::Connecting,
                limit: self.config.max_streams_per_connection,
                waiting: BTreeSet::from([id]),
                in_flight: 0,
                open: 0,
            },
        );
        Ok(Assignment::Shard {
            ticket: Ticket { connection, id },
            opens: true,
        })
    }

    /// Once its connection is ready: `true` if `ticket`'s stream may be sent
    /// now (it then counts as on its way). `false` if the connection is gone,
    /// draining, or its limit dropped below this ticket's place (the server's
    /// SETTINGS named fewer streams): the ticket is void, assign again.
    pub fn admit(&mut self, ticket: Ticket) -> bool {
        let Some(c) = self.connections.get_mut(&ticket.connection) else {
            return false;
        };
        if !c.waiting.contains(&ticket.id) {
            return false;
        }
        let ahead = c.waiting.range(..ticket.id).count() as u32;
        let fits = c.state == State::Ready && ahead + c.in_flight + c.open < c.limit;
        c.waiting.remove(&ticket.id);
        if fits {
            c.in_flight += 1;
        }
        fits
    }

    /// Gives up `ticket` before it was admitted (the caller stopped waiting).
    pub fn cancel(&mut self, ticket: Ticket) {
        if let Some(c) = self.connections.get_mut(&ticket.connection) {
            c.waiting.remove(&ticket.id);
        }
    }

    // --- outputs

    /// A connection the table dropped: the driver drops its handle to it.
    pub fn poll_forgotten(&mut self) -> Option<ConnectionId> {
        self.forgotten.pop_front()
    }

    fn forget(&mut self, connection: ConnectionId) {
        if self.connections.remove(&connection).is_some() {
            self.forgotten.push_back(connection);
        }
    }
}
