//! A small proxy for tests, on plain threads (no runtime needed, so every
//! adapter's tests can use it), on a loopback port. It speaks:
//! - HTTP: `CONNECT host:port` tunnels and absolute-form forwarding
//!   (`GET http://host:port/path`), with `Proxy-Authorization: Basic` when
//!   credentials are required;
//! - SOCKS5 (RFC 1928) on the same port (told apart by the first byte):
//!   `CONNECT` to an IPv4, IPv6 or domain-name target (the proxy resolves
//!   names), with username/password authentication (RFC 1929) when
//!   credentials are required;
//! - optionally HTTP inside TLS (an https:// proxy), with the API server's
//!   serving certificate, so a client trusting the kubeconfig's CA trusts it.
//!
//! It counts what it served, records every request, and can be told to
//! refuse (an HTTP status, a SOCKS5 reply code) or to stall (read the
//! request, never answer).
//!
//! ```no_run
//! use windlass_testkit::proxy::{Behaviour, TestProxy};
//!
//! let proxy = TestProxy::builder().require_basic("alice", "secret").start();
//! // … point a client at proxy.url_with_credentials("alice", "secret")
//! // or proxy.socks5_url(Some(("alice", "secret"))) …
//! assert_eq!(proxy.tunnels(), 1);
//! proxy.set_behaviour(Behaviour::Refuse { status: 502, reason: "Bad Gateway" });
//! ```
//!
//! Only the first request of a forwarded connection is parsed (and
//! checked); the rest of the connection is relayed as bytes.

use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use base64::Engine;
use rustls::{ServerConfig, ServerConnection, StreamOwned};

use crate::apiserver::Credentials;

/// The largest request head the proxy reads.
const MAX_HEAD: usize = 64 * 1024;

/// What the proxy does with a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Behaviour {
    /// Tunnel `CONNECT`s (HTTP and SOCKS5) and forward absolute-form requests.
    Serve,
    /// Answer every HTTP request with this status and reason, then close;
    /// a SOCKS5 `CONNECT` gets reply 2 (not allowed by ruleset).
    Refuse {
        /// The status (407, 403, 502, …).
        status: u16,
        /// The reason phrase.
        reason: &'static str,
    },
    /// Answer every SOCKS5 `CONNECT` with this reply code (1 to 8, or any
    /// other byte), then close; an HTTP request gets 502.
    SocksReply(u8),
    /// Read the request and never answer (until the client gives up).
    Stall,
}

/// Builds a [`TestProxy`].
#[derive(Debug)]
pub struct TestProxyBuilder {
    credentials: Option<(String, String)>,
    behaviour: Behaviour,
    tls: Option<ServerConfig>,
}

impl TestProxyBuilder {
    /// Require these credentials: HTTP requests without
    /// `Proxy-Authorization: Basic` for them get 407 (with
    /// `Proxy-Authenticate: Basic`); SOCKS5 clients must choose
    /// username/password (RFC 1929) and send them.
    pub fn require_basic(mut self, user: &str, password: &str) -> Self {
        self.credentials = Some((user.to_owned(), password.to_owned()));
        self
    }

    /// What to do with requests (default [`Behaviour::Serve`]).
    pub fn behaviour(mut self, behaviour: Behaviour) -> Self {
        self.behaviour = behaviour;
        self
    }

    /// Speak TLS to clients (an https:// proxy) with the API server's
    /// serving certificate (valid for `127.0.0.1`, `::1` and `localhost`,
    /// signed by the server's CA), ALPN `http/1.1`. Client certificates
    /// are accepted but not required.
    ///
    /// # Panics
    /// If the certificate cannot be loaded (a test setup failure).
    pub fn tls(mut self, credentials: &Credentials) -> Self {
        let mut config = credentials
            .server_config()
            .expect("the API server's serving certificate");
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        self.tls = Some(config);
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
            expected: self.credentials.as_ref().map(|(user, password)| {
                let token =
                    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
                format!("Basic {token}")
            }),
            credentials: self.credentials,
            behaviour: Mutex::new(self.behaviour),
            tls: self.tls.map(Arc::new),
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
    /// The HTTP request line (`CONNECT 127.0.0.1:6443 HTTP/1.1`), or a
    /// SOCKS5 request as `SOCKS5 CONNECT <ipv4|ipv6|domain> host:port`
    /// (`SOCKS5 no acceptable method` when the methods did not fit).
    pub line: String,
    /// The `Proxy-Authorization` header, or the SOCKS5 `user:password`.
    pub authorization: Option<String>,
}

#[derive(Debug)]
struct Shared {
    /// The `Proxy-Authorization` value required, if any.
    expected: Option<String>,
    /// The user and password required, if any.
    credentials: Option<(String, String)>,
    behaviour: Mutex<Behaviour>,
    tls: Option<Arc<ServerConfig>>,
    stopped: AtomicBool,
    connections: AtomicUsize,
    tunnels: AtomicUsize,
    forwarded: AtomicUsize,
    refused: AtomicUsize,
    requests: Mutex<Vec<ProxyRequest>>,
}

impl TestProxy {
    /// A builder: serve everything, no credentials required, no TLS.
    pub fn builder() -> TestProxyBuilder {
        TestProxyBuilder {
            credentials: None,
            behaviour: Behaviour::Serve,
            tls: None,
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

    /// `http://127.0.0.1:<port>` (`https://` in TLS mode).
    pub fn url(&self) -> String {
        format!("{}://{}", self.http_scheme(), self.addr)
    }

    /// `http://user:password@127.0.0.1:<port>` (`https://` in TLS mode; no
    /// escaping: use plain names).
    pub fn url_with_credentials(&self, user: &str, password: &str) -> String {
        format!("{}://{user}:{password}@{}", self.http_scheme(), self.addr)
    }

    /// `socks5://[user:password@]127.0.0.1:<port>` (no escaping).
    pub fn socks5_url(&self, credentials: Option<(&str, &str)>) -> String {
        self.socks_url("socks5", credentials)
    }

    /// `socks5h://[user:password@]127.0.0.1:<port>` (no escaping).
    pub fn socks5h_url(&self, credentials: Option<(&str, &str)>) -> String {
        self.socks_url("socks5h", credentials)
    }

    fn socks_url(&self, scheme: &str, credentials: Option<(&str, &str)>) -> String {
        match credentials {
            Some((user, password)) => format!("{scheme}://{user}:{password}@{}", self.addr),
            None => format!("{scheme}://{}", self.addr),
        }
    }

    fn http_scheme(&self) -> &'static str {
        if self.shared.tls.is_some() {
            "https"
        } else {
            "http"
        }
    }

    /// Changes what the proxy does with the next requests.
    pub fn set_behaviour(&self, behaviour: Behaviour) {
        *lock(&self.shared.behaviour) = behaviour;
    }

    /// Connections accepted.
    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// Tunnels opened to a target (HTTP `CONNECT` or SOCKS5).
    pub fn tunnels(&self) -> usize {
        self.shared.tunnels.load(Ordering::SeqCst)
    }

    /// Absolute-form requests forwarded (the first of each connection).
    pub fn forwarded(&self) -> usize {
        self.shared.forwarded.load(Ordering::SeqCst)
    }

    /// Requests refused (407 or a SOCKS5 authentication failure for
    /// credentials, [`Behaviour::Refuse`], [`Behaviour::SocksReply`], an
    /// unreachable target).
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

/// The client's side of a connection: plain TCP, or TLS over it.
enum Client {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ServerConnection, TcpStream>>),
}

impl Client {
    fn tcp(&self) -> &TcpStream {
        match self {
            Client::Plain(tcp) => tcp,
            Client::Tls(tls) => &tls.sock,
        }
    }

    /// Closes the connection (with `close_notify` over TLS).
    fn close(mut self) {
        if let Client::Tls(tls) = &mut self {
            tls.conn.send_close_notify();
            let _ = tls.flush();
        }
        let _ = self.tcp().shutdown(Shutdown::Both);
    }
}

impl Read for Client {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Client::Plain(tcp) => tcp.read(buf),
            Client::Tls(tls) => tls.read(buf),
        }
    }
}

impl Write for Client {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Client::Plain(tcp) => tcp.write(buf),
            Client::Tls(tls) => tls.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Client::Plain(tcp) => tcp.flush(),
            Client::Tls(tls) => tls.flush(),
        }
    }
}

fn serve(shared: &Shared, tcp: TcpStream) {
    let mut client = match &shared.tls {
        None => Client::Plain(tcp),
        Some(config) => {
            let Ok(connection) = ServerConnection::new(Arc::clone(config)) else {
                return;
            };
            Client::Tls(Box::new(StreamOwned::new(connection, tcp)))
        }
    };
    let mut first = [0u8];
    if client.read_exact(&mut first).is_err() {
        return;
    }
    if first[0] == 5 {
        return serve_socks5(shared, client);
    }
    let Ok(head) = read_head(&mut client, first[0]) else {
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
            return refuse(client, status, reason, false);
        }
        Behaviour::SocksReply(_) => {
            shared.refused.fetch_add(1, Ordering::SeqCst);
            return refuse(client, 502, "Bad Gateway", false);
        }
        Behaviour::Serve => {}
    }
    if shared.expected.is_some() && authorization != shared.expected {
        shared.refused.fetch_add(1, Ordering::SeqCst);
        return refuse(client, 407, "Proxy Authentication Required", true);
    }
    let mut parts = line.split(' ');
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    if method == "CONNECT" {
        let Ok(upstream) = TcpStream::connect(target) else {
            shared.refused.fetch_add(1, Ordering::SeqCst);
            return refuse(client, 502, "Bad Gateway", false);
        };
        if client
            .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
            .and_then(|()| client.flush())
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
        return refuse(client, 400, "Bad Request", false);
    };
    let Ok(mut upstream) = TcpStream::connect(authority) else {
        shared.refused.fetch_add(1, Ordering::SeqCst);
        return refuse(client, 502, "Bad Gateway", false);
    };
    if upstream.write_all(&head).is_err() {
        return;
    }
    shared.forwarded.fetch_add(1, Ordering::SeqCst);
    relay(client, upstream);
}

/// A SOCKS5 session after its first byte (the version): method choice,
/// username/password when credentials are required, `CONNECT`.
fn serve_socks5(shared: &Shared, mut client: Client) {
    let refused = || shared.refused.fetch_add(1, Ordering::SeqCst);
    let mut count = [0u8];
    if client.read_exact(&mut count).is_err() {
        return;
    }
    let mut methods = vec![0u8; usize::from(count[0])];
    if client.read_exact(&mut methods).is_err() {
        return;
    }
    let method = if shared.credentials.is_some() { 2 } else { 0 };
    if !methods.contains(&method) {
        lock(&shared.requests).push(ProxyRequest {
            line: "SOCKS5 no acceptable method".to_owned(),
            authorization: None,
        });
        refused();
        let _ = client.write_all(&[5, 0xff]).and_then(|()| client.flush());
        return client.close();
    }
    if client
        .write_all(&[5, method])
        .and_then(|()| client.flush())
        .is_err()
    {
        return;
    }
    let mut authorization = None;
    if method == 2 {
        let Ok((user, password)) = read_socks5_credentials(&mut client) else {
            return;
        };
        let accepted = shared
            .credentials
            .as_ref()
            .is_some_and(|(u, p)| *u == user && *p == password);
        authorization = Some(format!("{user}:{password}"));
        if !accepted {
            lock(&shared.requests).push(ProxyRequest {
                line: "SOCKS5 authentication failed".to_owned(),
                authorization,
            });
            refused();
            let _ = client.write_all(&[1, 1]).and_then(|()| client.flush());
            return client.close();
        }
        if client
            .write_all(&[1, 0])
            .and_then(|()| client.flush())
            .is_err()
        {
            return;
        }
    }
    let Ok((command, kind, host, port)) = read_socks5_request(&mut client) else {
        return;
    };
    let shown = if kind == "ipv6" {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    lock(&shared.requests).push(ProxyRequest {
        line: format!("SOCKS5 CONNECT {kind} {shown}"),
        authorization,
    });
    let behaviour = lock(&shared.behaviour).clone();
    let reply = match behaviour {
        Behaviour::Stall => return stall(shared, client),
        Behaviour::Refuse { .. } => 2,
        Behaviour::SocksReply(reply) => reply,
        Behaviour::Serve if command != 1 => 7,
        Behaviour::Serve => 0,
    };
    // The proxy resolves a domain name (socks5h semantics).
    let upstream = match reply {
        0 => TcpStream::connect((host.as_str(), port)).ok(),
        _ => None,
    };
    let Some(upstream) = upstream else {
        refused();
        let reply = if reply == 0 { 5 } else { reply };
        let _ = client
            .write_all(&[5, reply, 0, 1, 0, 0, 0, 0, 0, 0])
            .and_then(|()| client.flush());
        return client.close();
    };
    if client
        .write_all(&[5, 0, 0, 1, 127, 0, 0, 1, 0, 0])
        .and_then(|()| client.flush())
        .is_err()
    {
        return;
    }
    shared.tunnels.fetch_add(1, Ordering::SeqCst);
    relay(client, upstream);
}

/// RFC 1929: `[1, ulen, user, plen, password]`.
fn read_socks5_credentials(client: &mut Client) -> io::Result<(String, String)> {
    let mut header = [0u8; 2];
    client.read_exact(&mut header)?;
    if header[0] != 1 {
        return Err(io::ErrorKind::InvalidData.into());
    }
    let mut user = vec![0u8; usize::from(header[1])];
    client.read_exact(&mut user)?;
    let mut len = [0u8];
    client.read_exact(&mut len)?;
    let mut password = vec![0u8; usize::from(len[0])];
    client.read_exact(&mut password)?;
    Ok((
        String::from_utf8_lossy(&user).into_owned(),
        String::from_utf8_lossy(&password).into_owned(),
    ))
}

/// RFC 1928: `[5, cmd, 0, atyp, addr, port]` as (command, address type,
/// host, port).
fn read_socks5_request(client: &mut Client) -> io::Result<(u8, &'static str, String, u16)> {
    let mut header = [0u8; 4];
    client.read_exact(&mut header)?;
    if header[0] != 5 {
        return Err(io::ErrorKind::InvalidData.into());
    }
    let (kind, host) = match header[3] {
        1 => {
            let mut ip = [0u8; 4];
            client.read_exact(&mut ip)?;
            ("ipv4", IpAddr::V4(Ipv4Addr::from(ip)).to_string())
        }
        4 => {
            let mut ip = [0u8; 16];
            client.read_exact(&mut ip)?;
            ("ipv6", IpAddr::V6(Ipv6Addr::from(ip)).to_string())
        }
        3 => {
            let mut len = [0u8];
            client.read_exact(&mut len)?;
            let mut name = vec![0u8; usize::from(len[0])];
            client.read_exact(&mut name)?;
            ("domain", String::from_utf8_lossy(&name).into_owned())
        }
        _ => return Err(io::ErrorKind::InvalidData.into()),
    };
    let mut port = [0u8; 2];
    client.read_exact(&mut port)?;
    Ok((header[1], kind, host, u16::from_be_bytes(port)))
}

/// The request head, up to and including the blank line.
fn read_head(client: &mut Client, first: u8) -> io::Result<Vec<u8>> {
    let mut head = vec![first];
    let mut byte = [0u8];
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() == MAX_HEAD || client.read(&mut byte)? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        head.push(byte[0]);
    }
    Ok(head)
}

fn refuse(mut client: Client, status: u16, reason: &str, challenge: bool) {
    let challenge = if challenge {
        "Proxy-Authenticate: Basic realm=\"windlass-testkit\"\r\n"
    } else {
        ""
    };
    let _ = write!(
        client,
        "HTTP/1.1 {status} {reason}\r\n{challenge}Content-Length: 0\r\nConnection: close\r\n\r\n"
    );
    let _ = client.flush();
    client.close();
}

/// Holds the connection open without answering, until the client closes
/// it or the proxy is dropped.
fn stall(shared: &Shared, mut client: Client) {
    let _ = client
        .tcp()
        .set_read_timeout(Some(Duration::from_millis(100)));
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
fn relay(client: Client, upstream: TcpStream) {
    match client {
        Client::Plain(client) => relay_plain(client, upstream),
        Client::Tls(tls) => {
            let (connection, tcp) = tls.into_parts();
            relay_tls(connection, tcp, upstream);
        }
    }
}

fn relay_plain(client: TcpStream, upstream: TcpStream) {
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

/// [`relay_plain`] with TLS on the client's side: one thread a direction,
/// the rustls connection shared under a lock that no socket read holds.
fn relay_tls(connection: ServerConnection, tcp: TcpStream, upstream: TcpStream) {
    let (Ok(tcp_reader), Ok(upstream_writer)) = (tcp.try_clone(), upstream.try_clone()) else {
        return;
    };
    let connection = Arc::new(Mutex::new(connection));
    let inbound = Arc::clone(&connection);
    let forward = std::thread::spawn(move || tls_to_plain(&inbound, tcp_reader, upstream_writer));
    plain_to_tls(&connection, upstream, tcp);
    let _ = forward.join();
}

/// Client (TLS) to upstream (plain), until either closes.
fn tls_to_plain(connection: &Mutex<ServerConnection>, mut tcp: TcpStream, mut upstream: TcpStream) {
    let mut buf = vec![0u8; 16 * 1024];
    // Plaintext rustls decrypted while the head was read comes first.
    let mut received: &[u8] = &[];
    loop {
        let mut plaintext = Vec::new();
        let closed = {
            let mut connection = lock(connection);
            let mut closed = false;
            loop {
                if connection.process_new_packets().is_err() {
                    let _ = connection.write_tls(&mut tcp);
                    closed = true;
                    break;
                }
                closed |= drain_plaintext(&mut connection, &mut plaintext);
                if received.is_empty() || closed {
                    break;
                }
                match connection.read_tls(&mut received) {
                    Ok(_) => {}
                    Err(_) => {
                        closed = true;
                        break;
                    }
                }
            }
            while connection.wants_write() {
                if connection.write_tls(&mut tcp).is_err() {
                    break;
                }
            }
            closed
        };
        if upstream.write_all(&plaintext).is_err() || closed {
            break;
        }
        let n = match tcp.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        received = &buf[..n];
    }
    let _ = upstream.shutdown(Shutdown::Write);
    let _ = tcp.shutdown(Shutdown::Read);
}

/// Moves the decrypted bytes out; `true` once the client sent
/// `close_notify` (or the stream broke).
fn drain_plaintext(connection: &mut ServerConnection, into: &mut Vec<u8>) -> bool {
    let mut chunk = [0u8; 4096];
    loop {
        match connection.reader().read(&mut chunk) {
            Ok(0) => return true,
            Ok(n) => into.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
            Err(_) => return true,
        }
    }
}

/// Upstream (plain) to the client (TLS), until either closes.
fn plain_to_tls(connection: &Mutex<ServerConnection>, mut upstream: TcpStream, mut tcp: TcpStream) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match upstream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let mut connection = lock(connection);
        let mut data = &buf[..n];
        while !data.is_empty() {
            let Ok(written) = connection.writer().write(data) else {
                return;
            };
            data = &data[written..];
            while connection.wants_write() {
                if connection.write_tls(&mut tcp).is_err() {
                    return;
                }
            }
        }
    }
    let mut connection = lock(connection);
    connection.send_close_notify();
    while connection.wants_write() {
        if connection.write_tls(&mut tcp).is_err() {
            break;
        }
    }
    let _ = tcp.shutdown(Shutdown::Write);
    let _ = upstream.shutdown(Shutdown::Read);
}
