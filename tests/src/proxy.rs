//! A small HTTP proxy for tests, on plain threads (no runtime needed, so
//! every adapter's tests can use it): `CONNECT host:port` tunnels and
//! absolute-form forwarding (`GET http://host:port/path`) over plain TCP on
//! a loopback port. It counts what it served, can require
//! `Proxy-Authorization: Basic`, and can be told to refuse (407, 502, any
//! status) or to stall (read the request, never answer).
//!
//! ```no_run
//! use windlass_testkit::proxy::{Behaviour, TestProxy};
//!
//! let proxy = TestProxy::builder().require_basic("alice", "secret").start();
//! // … point a client at proxy.url_with_credentials("alice", "secret") …
//! assert_eq!(proxy.tunnels(), 1);
//! proxy.set_behaviour(Behaviour::Refuse { status: 502, reason: "Bad Gateway" });
//! ```
//!
//! Only the first request of a forwarded connection is parsed (and
//! checked); the rest of the connection is relayed as bytes.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use base64::Engine;

/// The largest request head the proxy reads.
const MAX_HEAD: usize = 64 * 1024;

/// What the proxy does with a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Behaviour {
    /// Tunnel `CONNECT`s and forward absolute-form requests.
    Serve,
    /// Answer every request with this status and reason, then close.
    Refuse {
        /// The status (407, 403, 502, …).
        status: u16,
        /// The reason phrase.
        reason: &'static str,
    },
    /// Read the request and never answer (until the client gives up).
    Stall,
}

/// Builds a [`TestProxy`].
#[derive(Debug)]
pub struct TestProxyBuilder {
    credentials: Option<(String, String)>,
    behaviour: Behaviour,
}

impl TestProxyBuilder {
    /// Answer 407 (with `Proxy-Authenticate: Basic`) unless the request
    /// carries `Proxy-Authorization: Basic` for these credentials.
    pub fn require_basic(mut self, user: &str, password: &str) -> Self {
        self.credentials = Some((user.to_owned(), password.to_owned()));
        self
    }

    /// What to do with requests (default [`Behaviour::Serve`]).
    pub fn behaviour(mut self, behaviour: Behaviour) -> Self {
        self.behaviour = behaviour;
        self
    }

    /// Binds a loopback port and starts accepting on a thread.
    ///
    /// # Panics
    /// If no loopback port can be bound (a test setup failure).
    pub fn start(self) -> TestProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let addr = listener.local_addr().expect("the bound address");
        let shared = Arc::new(Shared {
            expected: self.credentials.map(|(user, password)| {
                let token =
                    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
                format!("Basic {token}")
            }),
            behaviour: Mutex::new(self.behaviour),
            stopped: AtomicBool::new(false),
            connections: AtomicUsize::new(0),
            tunnels: AtomicUsize::new(0),
            forwarded: AtomicUsize::new(0),
            refused: AtomicUsize::new(0),
            requests: Mutex::new(Vec::new()),
        });
        let accepting = Arc::clone(&shared);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if accepting.stopped.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(stream) = stream else { continue };
                accepting.connections.fetch_add(1, Ordering::SeqCst);
                let shared = Arc::clone(&accepting);
                std::thread::spawn(move || serve(&shared, stream));
            }
        });
        TestProxy { addr, shared }
    }
}

/// A running proxy; dropping it stops accepting (open tunnels run on until
/// either side closes).
#[derive(Debug)]
pub struct TestProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
}

/// One request the proxy read, as it saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProxyRequest {
    /// The request line (`CONNECT 127.0.0.1:6443 HTTP/1.1`).
    pub line: String,
    /// The `Proxy-Authorization` header, if any.
    pub authorization: Option<String>,
}

#[derive(Debug)]
struct Shared {
    /// The `Proxy-Authorization` value required, if any.
    expected: Option<String>,
    behaviour: Mutex<Behaviour>,
    stopped: AtomicBool,
    connections: AtomicUsize,
    tunnels: AtomicUsize,
    forwarded: AtomicUsize,
    refused: AtomicUsize,
    requests: Mutex<Vec<ProxyRequest>>,
}

impl TestProxy {
    /// A builder: serve everything, no credentials required.
    pub fn builder() -> TestProxyBuilder {
        TestProxyBuilder {
            credentials: None,
            behaviour: Behaviour::Serve,
        }
    }

    /// A proxy that serves everything, no credentials required.
    pub fn start() -> TestProxy {
        Self::builder().start()
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `http://user:password@127.0.0.1:<port>` (no escaping: use plain names).
    pub fn url_with_credentials(&self, user: &str, password: &str) -> String {
        format!("http://{user}:{password}@{}", self.addr)
    }

    /// Changes what the proxy does with the next requests.
    pub fn set_behaviour(&self, behaviour: Behaviour) {
        *lock(&self.shared.behaviour) = behaviour;
    }

    /// Connections accepted.
    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// `CONNECT` tunnels opened to a target.
    pub fn tunnels(&self) -> usize {
        self.shared.tunnels.load(Ordering::SeqCst)
    }

    /// Absolute-form requests forwarded (the first of each connection).
    pub fn forwarded(&self) -> usize {
        self.shared.forwarded.load(Ordering::SeqCst)
    }

    /// Requests refused (407 for credentials, or [`Behaviour::Refuse`]).
    pub fn refused(&self) -> usize {
        self.shared.refused.load(Ordering::SeqCst)
    }

    /// Every request read, in order.
    pub fn requests(&self) -> Vec<ProxyRequest> {
        lock(&self.shared.requests).clone()
    }
}

impl Drop for TestProxy {
    fn drop(&mut self) {
        self.shared.stopped.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.addr);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn serve(shared: &Shared, mut client: TcpStream) {
    let Ok(head) = read_head(&mut client) else {
        return;
    };
    let text = String::from_utf8_lossy(&head).into_owned();
    let mut lines = text.split("\r\n");
    let line = lines.next().unwrap_or_default().to_owned();
    let authorization = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("proxy-authorization"))
        .map(|(_, value)| value.trim().to_owned());
    lock(&shared.requests).push(ProxyRequest {
        line: line.clone(),
        authorization: authorization.clone(),
    });
    let behaviour = lock(&shared.behaviour).clone();
    match behaviour {
        Behaviour::Stall => return stall(shared, client),
        Behaviour::Refuse { status, reason } => {
            shared.refused.fetch_add(1, Ordering::SeqCst);
            return refuse(&mut client, status, reason, false);
        }
        Behaviour::Serve => {}
    }
    if shared.expected.is_some() && authorization != shared.expected {
        shared.refused.fetch_add(1, Ordering::SeqCst);
        return refuse(&mut client, 407, "Proxy Authentication Required", true);
    }
    let mut parts = line.split(' ');
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    if method == "CONNECT" {
        let Ok(upstream) = TcpStream::connect(target) else {
            shared.refused.fetch_add(1, Ordering::SeqCst);
            return refuse(&mut client, 502, "Bad Gateway", false);
        };
        if client
            .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
            .is_err()
        {
            return;
        }
        shared.tunnels.fetch_add(1, Ordering::SeqCst);
        return relay(client, upstream);
    }
    // Absolute-form: `GET http://host:port/path HTTP/1.1`, relayed as read
    // (an HTTP/1.1 server accepts the absolute form).
    let authority = target
        .strip_prefix("http://")
        .and_then(|rest| rest.split('/').next())
        .filter(|a| !a.is_empty());
    let Some(authority) = authority else {
        shared.refused.fetch_add(1, Ordering::SeqCst);
        return refuse(&mut client, 400, "Bad Request", false);
    };
    let Ok(mut upstream) = TcpStream::connect(authority) else {
        shared.refused.fetch_add(1, Ordering::SeqCst);
        return refuse(&mut client, 502, "Bad Gateway", false);
    };
    if upstream.write_all(&head).is_err() {
        return;
    }
    shared.forwarded.fetch_add(1, Ordering::SeqCst);
    relay(client, upstream);
}

/// The request head, up to and including the blank line.
fn read_head(stream: &mut TcpStream) -> io::Result<Vec<u8>> {
    let mut head = Vec::new();
    let mut byte = [0u8];
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() == MAX_HEAD || stream.read(&mut byte)? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        head.push(byte[0]);
    }
    Ok(head)
}

fn refuse(client: &mut TcpStream, status: u16, reason: &str, challenge: bool) {
    let challenge = if challenge {
        "Proxy-Authenticate: Basic realm=\"windlass-testkit\"\r\n"
    } else {
        ""
    };
    let _ = write!(
        client,
        "HTTP/1.1 {status} {reason}\r\n{challenge}Content-Length: 0\r\nConnection: close\r\n\r\n"
    );
    let _ = client.shutdown(Shutdown::Both);
}

/// Holds the connection open without answering, until the client closes
/// it or the proxy is dropped.
fn stall(shared: &Shared, mut client: TcpStream) {
    let _ = client.set_read_timeout(Some(Duration::from_millis(100)));
    let mut buf = [0u8; 1024];
    while !shared.stopped.load(Ordering::SeqCst) {
        match client.read(&mut buf) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return,
        }
    }
}

/// Copies bytes both ways until either side closes.
fn relay(client: TcpStream, upstream: TcpStream) {
    let (Ok(client_reader), Ok(upstream_writer)) = (client.try_clone(), upstream.try_clone())
    else {
        return;
    };
    let forward = std::thread::spawn(move || copy(client_reader, upstream_writer));
    copy(upstream, client);
    let _ = forward.join();
}

fn copy(mut from: TcpStream, mut to: TcpStream) {
    let _ = io::copy(&mut from, &mut to);
    let _ = to.shutdown(Shutdown::Write);
    let _ = from.shutdown(Shutdown::Read);
}
