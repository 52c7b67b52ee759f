//! Connections: TCP from async-net, TLS from futures-rustls, HTTP from
//! hyper 1's low-level client, and a pool small enough to read at once.
//!
//! - Ordinary requests share connections. Over TLS, ALPN offers `h2` first:
//!   an HTTP/2 connection is one `SendRequest` every request clones (it *is*
//!   the pool). Otherwise idle HTTP/1.1 connections are kept and reused.
//!   One connection is opened at a time, so a cold burst waits for the first
//!   and then shares it (without that, a burst opens one connection per
//!   request before any knows it will be HTTP/2; reference/sans-io.md §2).
//! - Through a proxy, windlass-proto's [`Route`] decides: a tunnel (HTTP
//!   `CONNECT` or SOCKS5, windlass-proto's [`Tunnel`] handshake driven over
//!   the socket, TLS to the API server inside it), or forwarding (an http://
//!   target through an http:// proxy: absolute-form requests with
//!   `Proxy-Authorization`). An https:// proxy is reached over TLS first
//!   (the API server's rustls `ClientConfig`, ALPN `http/1.1`, verified
//!   against the proxy's host), and the same happens inside it. The connect
//!   timeout covers the handshakes.
//! - Watches and followed logs go on HTTP/2 connections of their own,
//!   sharded below the API server's 100-stream limit per connection (the
//!   `shards` module opens them with [`Transport::connect_h2`]). When the
//!   server does not speak HTTP/2, or sharding is off, each gets an HTTP/1.1
//!   connection of its own, closed with the stream.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_rustls::TlsConnector;
use futures_rustls::client::TlsStream;
use http::header::HOST;
use http::uri::PathAndQuery;
use http::{HeaderValue, Request, Response, Uri};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::client::conn::{http1, http2};
use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use smol::io::{AsyncRead, AsyncWrite};
use smol::io::{AsyncReadExt, AsyncWriteExt};
use smol::net::TcpStream;
use windlass_proto::proxy::{ProxyError, Route, Tunnel};

use crate::rt::{Io, SmolTimer, Spawner, timeout};

pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The body every request is sent with.
pub(crate) type Body = Full<Bytes>;

/// At most this many idle HTTP/1.1 connections are kept.
const MAX_IDLE: usize = 16;
/// HTTP/2 keep-alive: a ping after this long without frames finds a dead peer.
const KEEP_ALIVE: Duration = Duration::from_secs(30);

pub(crate) struct Transport {
    spawner: Spawner,
    target: Uri,
    host: String,
    port: u16,
    route: Route,
    /// `Proxy-Authorization` for forwarded requests.
    proxy_authorization: Option<HeaderValue>,
    /// TLS to an https:// proxy, and the name its certificate must carry.
    proxy_tls: Option<(TlsConnector, ServerName<'static>)>,
    tls: Option<Tls>,
    connect_timeout: Duration,
    h2: Mutex<Option<http2::SendRequest<Body>>>,
    idle: Mutex<Vec<http1::SendRequest<Body>>>,
    /// Held while a pooled connection is being opened.
    connecting: smol::lock::Mutex<()>,
}

struct Tls {
    /// ALPN `h2`, `http/1.1`: ordinary requests.
    pooled: TlsConnector,
    /// ALPN `http/1.1`: streams.
    streams: TlsConnector,
    server_name: ServerName<'static>,
}

/// Why a request got no response head.
#[derive(Debug)]
pub(crate) enum TransportError {
    /// No connection: refused, DNS, TLS handshake, HTTP/2 preface.
    Connect(Box<dyn std::error::Error + Send + Sync>),
    /// No connection within the connect timeout.
    ConnectTimeout(Duration),
    /// The connection failed while the request was sent or its head awaited.
    Http(hyper::Error),
}

enum Sender {
    Http1(http1::SendRequest<Body>),
    Http2(http2::SendRequest<Body>),
}

impl Transport {
    /// `base` was checked by the builder (http or https, with a host);
    /// `proxy_name` is [`Route::proxy_tls_name`] (an https:// proxy's).
    pub(crate) fn new(
        base: &Uri,
        tls: Option<(ClientConfig, Option<ServerName<'static>>)>,
        connect_timeout: Duration,
        spawner: Spawner,
        route: Route,
        proxy_name: Option<ServerName<'static>>,
    ) -> Result<Self, rustls::pki_types::InvalidDnsNameError> {
        let host = base
            .host()
            .unwrap_or_default()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let https = base.scheme_str() == Some("https");
        let port = base.port_u16().unwrap_or(if https { 443 } else { 80 });
        let proxy_tls = match (&tls, proxy_name) {
            (Some((config, _)), Some(name)) => {
                let mut config = config.clone();
                config.alpn_protocols = vec![b"http/1.1".to_vec()];
                Some((TlsConnector::from(Arc::new(config)), name))
            }
            _ => None,
        };
        let tls = match tls {
            Some((config, server_name)) if https => {
                let server_name = match server_name {
                    Some(name) => name,
                    None => ServerName::try_from(host.clone())?,
                };
                let with_alpn = |protocols: &[&[u8]]| {
                    let mut config = config.clone();
                    config.alpn_protocols = protocols.iter().map(|p| p.to_vec()).collect();
                    TlsConnector::from(Arc::new(config))
                };
                Some(Tls {
                    pooled: with_alpn(&[b"h2", b"http/1.1"]),
                    streams: with_alpn(&[b"http/1.1"]),
                    server_name,
                })
            }
            _ => None,
        };
        let proxy_authorization = match route {
            Route::Forward(_) => route.proxy_authorization(),
            _ => None,
        };
        Ok(Self {
            spawner,
            target: base.clone(),
            host,
            port,
            route,
            proxy_authorization,
            proxy_tls,
            tls,
            connect_timeout,
            h2: Mutex::new(None),
            idle: Mutex::new(Vec::new()),
            connecting: smol::lock::Mutex::new(()),
        })
    }

    /// The spawner connections run on.
    pub(crate) fn spawner(&self) -> &Spawner {
        &self.spawner
    }

    /// Sends `request` (an absolute URI) and waits for the response head. A
    /// `stream` goes on a new HTTP/1.1 connection that ends with its body.
    pub(crate) async fn send(
        &self,
        request: Request<Body>,
        stream: bool,
    ) -> Result<Response<Incoming>, TransportError> {
        if stream {
            return match self.connect(false).await? {
                Sender::Http1(mut sender) => sender
                    .send_request(self.http1_form(request))
                    .await
                    .map_err(TransportError::Http),
                Sender::Http2(mut sender) => sender
                    .send_request(request)
                    .await
                    .map_err(TransportError::Http),
            };
        }
        let sender = match self.pooled() {
            Some(sender) => sender,
            None => {
                let _connecting = self.connecting.lock().await;
                match self.pooled() {
                    Some(sender) => sender,
                    None => self.connect(true).await?,
                }
            }
        };
        match sender {
            Sender::Http2(mut sender) => {
                *self.h2.lock().expect("pool lock") = Some(sender.clone());
                sender.ready().await.map_err(TransportError::Http)?;
                sender
                    .send_request(request)
                    .await
                    .map_err(TransportError::Http)
            }
            Sender::Http1(mut sender) => {
                let response = sender
                    .send_request(self.http1_form(request))
                    .await
                    .map_err(TransportError::Http)?;
                // Ready again once this body has been read.
                let mut idle = self.idle.lock().expect("pool lock");
                if idle.len() < MAX_IDLE {
                    idle.push(sender);
                }
                Ok(response)
            }
        }
    }

    /// A live HTTP/2 connection, else an idle HTTP/1.1 one.
    fn pooled(&self) -> Option<Sender> {
        if let Some(h2) = self.h2.lock().expect("pool lock").as_ref()
            && !h2.is_closed()
        {
            return Some(Sender::Http2(h2.clone()));
        }
        let mut idle = self.idle.lock().expect("pool lock");
        idle.retain(|sender| !sender.is_closed());
        let ready = idle.iter().position(http1::SendRequest::is_ready)?;
        Some(Sender::Http1(idle.swap_remove(ready)))
    }

    /// The connect timeout.
    pub(crate) fn connect_timeout(&self) -> Duration {
        self.connect_timeout
    }

    /// A new TLS connection offering ALPN `h2` (then `http/1.1`), for a
    /// stream shard: `None` if the server picked HTTP/1.1 (or the base is
    /// plain HTTP). Not bounded here: the caller times the whole handshake.
    pub(crate) async fn connect_h2(&self) -> Result<Option<TlsStream<Conn>>, BoxError> {
        let Some(tls) = &self.tls else {
            return Ok(None);
        };
        // Through the proxy, as every other connection (`tcp`).
        let tcp = self.tcp().await?;
        let stream = tls.pooled.connect(tls.server_name.clone(), tcp).await?;
        Ok((stream.get_ref().1.alpn_protocol() == Some(b"h2")).then_some(stream))
    }

    /// A new connection; `h2` offers HTTP/2 in ALPN.
    async fn connect(&self, h2: bool) -> Result<Sender, TransportError> {
        // Boxed: the TLS and HTTP/2 handshakes are large futures, and they
        // would otherwise sit inline in every request's future.
        let connecting = Box::pin(async {
            let tcp = self.tcp().await?;
            let Some(tls) = &self.tls else {
                return self.http1(tcp).await;
            };
            let connector = if h2 { &tls.pooled } else { &tls.streams };
            let stream = connector.connect(tls.server_name.clone(), tcp).await?;
            if stream.get_ref().1.alpn_protocol() == Some(b"h2") {
                let (sender, connection) = http2::Builder::new(self.spawner.clone())
                    .timer(SmolTimer)
                    .keep_alive_interval(KEEP_ALIVE)
                    .handshake(Io::new(stream))
                    .await?;
                self.spawner.spawn(async move {
                    if let Err(e) = connection.await {
                        tracing::debug!(error = %e, "HTTP/2 connection ended");
                    }
                });
                return Ok(Sender::Http2(sender));
            }
            self.http1(stream).await
        });
        match timeout(self.connect_timeout, connecting).await {
            None => Err(TransportError::ConnectTimeout(self.connect_timeout)),
            Some(result) => result.map_err(TransportError::Connect),
        }
    }

    /// TCP to the target, or to the proxy (over TLS to an https:// one)
    /// and, for a tunnel, through it.
    async fn tcp(&self) -> Result<Conn, BoxError> {
        let Some(proxy) = self.route.proxy() else {
            let tcp = TcpStream::connect((self.host.as_str(), self.port)).await?;
            tcp.set_nodelay(true)?;
            return Ok(Conn::Tcp(tcp));
        };
        let tcp = TcpStream::connect((proxy.host(), proxy.port())).await?;
        tcp.set_nodelay(true)?;
        let address = if proxy.host().contains(':') {
            format!("[{}]:{}", proxy.host(), proxy.port())
        } else {
            format!("{}:{}", proxy.host(), proxy.port())
        };
        let mut conn = match &self.proxy_tls {
            None => Conn::Tcp(tcp),
            Some((connector, name)) => {
                let tls = connector
                    .connect(name.clone(), tcp)
                    .await
                    .map_err(|source| ProxyFailure::Tls {
                        proxy: address.clone(),
                        source,
                    })?;
                Conn::Tls(Box::new(tls))
            }
        };
        if let Some(tunnel) = self.route.tunnel(&self.target)? {
            handshake(tunnel, &mut conn, &address).await?;
        }
        Ok(conn)
    }

    /// The request as an HTTP/1.1 connection sends it: origin-form, or
    /// absolute-form with `Proxy-Authorization` to a forwarding proxy.
    fn http1_form(&self, mut request: Request<Body>) -> Request<Body> {
        if !matches!(self.route, Route::Forward(_)) {
            return origin_form(request);
        }
        if let Some(authority) = request.uri().authority()
            && let Ok(host) = HeaderValue::from_str(authority.as_str())
        {
            request.headers_mut().entry(HOST).or_insert(host);
        }
        if let Some(authorization) = &self.proxy_authorization {
            request
                .headers_mut()
                .insert(http::header::PROXY_AUTHORIZATION, authorization.clone());
        }
        request
    }

    async fn http1<T>(&self, stream: T) -> Result<Sender, Box<dyn std::error::Error + Send + Sync>>
    where
        T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (sender, connection) = http1::handshake(Io::new(stream)).await?;
        self.spawner.spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "HTTP/1.1 connection ended");
            }
        });
        Ok(Sender::Http1(sender))
    }
}

/// Runs a tunnel handshake; reads never take a byte past the proxy's answer.
async fn handshake(
    mut tunnel: Tunnel,
    tcp: &mut (impl AsyncRead + AsyncWrite + Unpin),
    proxy: &str,
) -> Result<(), ProxyFailure> {
    let io = |source| ProxyFailure::Io {
        proxy: proxy.to_owned(),
        source,
    };
    let refused = |source| ProxyFailure::Handshake {
        proxy: proxy.to_owned(),
        source,
    };
    let mut buf = [0u8; 512];
    loop {
        if let Some(bytes) = tunnel.poll_transmit() {
            tcp.write_all(&bytes).await.map_err(io)?;
            tcp.flush().await.map_err(io)?;
        }
        if tunnel.is_established() {
            return Ok(());
        }
        let want = tunnel.wants().clamp(1, buf.len());
        let n = tcp.read(&mut buf[..want]).await.map_err(io)?;
        if n == 0 {
            tunnel.handle_eof().map_err(refused)?;
        } else {
            tunnel.handle_input(&buf[..n]).map_err(refused)?;
        }
    }
}

/// A tunnel that could not be opened, naming the proxy.
#[derive(Debug, thiserror::Error)]
enum ProxyFailure {
    #[error("proxy {proxy}: {source}")]
    Handshake {
        proxy: String,
        #[source]
        source: ProxyError,
    },
    #[error("proxy {proxy}: {source}")]
    Io {
        proxy: String,
        #[source]
        source: std::io::Error,
    },
    #[error("proxy {proxy}: TLS handshake with the proxy: {source}")]
    Tls {
        proxy: String,
        #[source]
        source: std::io::Error,
    },
}

/// A connection: TCP, or TLS to an https:// proxy.
pub(crate) enum Conn {
    Tcp(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

/// Forwards a futures-io method to whichever stream is inside.
macro_rules! each {
    ($self:ident, $io:ident => $call:expr) => {
        match $self.get_mut() {
            Conn::Tcp($io) => $call,
            Conn::Tls($io) => $call,
        }
    };
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<std::io::Result<usize>> {
        each!(self, io => Pin::new(io).poll_read(cx, buf))
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        each!(self, io => Pin::new(io).poll_write(cx, buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        each!(self, io => Pin::new(io).poll_write_vectored(cx, bufs))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        each!(self, io => Pin::new(io).poll_flush(cx))
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        each!(self, io => Pin::new(io).poll_close(cx))
    }
}

/// An HTTP/1.1 request names its path in the request line and its authority
/// in `Host` (HTTP/2 keeps the absolute URI for `:authority`).
fn origin_form(mut request: Request<Body>) -> Request<Body> {
    let uri = request.uri().clone();
    if let Some(authority) = uri.authority()
        && let Ok(host) = HeaderValue::from_str(authority.as_str())
    {
        request.headers_mut().entry(HOST).or_insert(host);
    }
    *request.uri_mut() = uri
        .path_and_query()
        .cloned()
        .unwrap_or_else(|| PathAndQuery::from_static("/"))
        .into();
    request
}
