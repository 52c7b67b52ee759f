//! The connection under hyper-rustls: TCP from hyper-util's `HttpConnector`,
//! to the API server itself or through the proxy windlass-proto's
//! [`Route`] names. A tunnel (HTTP `CONNECT` or SOCKS5) is windlass-proto's
//! [`Tunnel`] handshake driven over the socket; TLS to the API server then
//! runs inside it (hyper-rustls above this connector), with the client
//! certificate and server name as without a proxy. A forwarded connection
//! (http:// target, http:// proxy) is marked proxied, so hyper-util writes
//! absolute-form requests; the builder adds `Proxy-Authorization` to them.
//!
//! An https:// proxy is reached over TLS first (tokio-rustls, with the API
//! server's rustls `ClientConfig` and ALPN `http/1.1`, verified against the
//! proxy's host; see windlass-proto's `proxy` module), then the tunnel or
//! the forwarded requests run inside that TLS.
//!
//! The connect timeout covers TCP and the whole tunnel handshake.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::Uri;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::rt::TokioIo;
use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tower_service::Service;
use windlass_proto::proxy::{ProxyError, Route, Tunnel};

/// What both pools connect with.
pub(crate) type Connector = Bounded;

/// hyper-rustls over [`ProxyConnector`], the whole connection — TCP, the
/// tunnel, the TLS handshake — within the connect timeout (hyper-rustls'
/// handshake is otherwise bounded by nothing but the read timeout).
#[derive(Clone)]
pub(crate) struct Bounded {
    inner: HttpsConnector<ProxyConnector>,
    timeout: Duration,
}

impl Bounded {
    pub(crate) fn new(inner: HttpsConnector<ProxyConnector>, timeout: Duration) -> Self {
        Self { inner, timeout }
    }
}

/// No connection (TCP, tunnel and TLS) within the connect timeout.
#[derive(Debug, thiserror::Error)]
#[error("no connection within {0:?}")]
pub(crate) struct ConnectTimedOut(pub(crate) Duration);

impl Service<Uri> for Bounded {
    type Response = <HttpsConnector<ProxyConnector> as Service<Uri>>::Response;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, target: Uri) -> Self::Future {
        let connecting = self.inner.call(target);
        let timeout = self.timeout;
        Box::pin(async move {
            match tokio::time::timeout(timeout, connecting).await {
                Ok(result) => result,
                Err(_) => Err(Box::new(ConnectTimedOut(timeout)) as BoxError),
            }
        })
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// TCP to the target, or to the proxy and through it.
#[derive(Clone)]
pub(crate) struct ProxyConnector {
    http: HttpConnector,
    route: Arc<Route>,
    timeout: Duration,
    /// TLS to an https:// proxy, and the name its certificate must carry.
    proxy_tls: Option<(TlsConnector, ServerName<'static>)>,
}

impl ProxyConnector {
    /// `http` connects TCP (its own timeout covers a direct connection);
    /// `timeout` bounds TCP plus the handshake through a proxy; `tls` (the
    /// API server's) also verifies an https:// proxy.
    pub(crate) fn new(
        http: HttpConnector,
        route: Route,
        timeout: Duration,
        tls: &ClientConfig,
    ) -> Result<Self, ProxyError> {
        let proxy_tls = route.proxy_tls_name()?.map(|name| {
            let mut config = tls.clone();
            config.alpn_protocols = vec![b"http/1.1".to_vec()];
            (TlsConnector::from(Arc::new(config)), name)
        });
        Ok(Self {
            http,
            route: Arc::new(route),
            timeout,
            proxy_tls,
        })
    }
}

impl Service<Uri> for ProxyConnector {
    type Response = ProxyStream;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<ProxyStream, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.http.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, target: Uri) -> Self::Future {
        let mut http = self.http.clone();
        let route = Arc::clone(&self.route);
        let timeout = self.timeout;
        let proxy_tls = self.proxy_tls.clone();
        Box::pin(async move {
            let Some(proxy) = route.proxy() else {
                let io = ProxyIo::Tcp(http.call(target).await?);
                return Ok(ProxyStream { io, forward: false });
            };
            let address = proxy_address(proxy.host(), proxy.port());
            let connecting = async {
                let proxy_uri: Uri = format!("http://{address}").parse()?;
                let tcp = http.call(proxy_uri).await?;
                let tunnel = route.tunnel(&target)?;
                let forward = matches!(*route, Route::Forward(_));
                let Some((connector, name)) = proxy_tls else {
                    let mut tcp = tcp.into_inner();
                    if let Some(tunnel) = tunnel {
                        handshake(tunnel, &mut tcp, &address).await?;
                    }
                    let io = ProxyIo::Tcp(TokioIo::new(tcp));
                    return Ok::<_, BoxError>(ProxyStream { io, forward });
                };
                let mut tls =
                    connector
                        .connect(name, tcp.into_inner())
                        .await
                        .map_err(|source| ProxyFailure::Tls {
                            proxy: address.clone(),
                            source,
                        })?;
                if let Some(tunnel) = tunnel {
                    handshake(tunnel, &mut tls, &address).await?;
                }
                let io = ProxyIo::Tls(TokioIo::new(Box::new(tls)));
                Ok(ProxyStream { io, forward })
            };
            // The same error as [`Bounded`]'s, whichever of the two equal
            // deadlines fires first: the pool reports a timeout waiting
            // for the connection, as without a proxy.
            match tokio::time::timeout(timeout, connecting).await {
                Ok(result) => result,
                Err(_) => Err(Box::new(ConnectTimedOut(timeout)) as BoxError),
            }
        })
    }
}

/// `host:port`, an IPv6 host in brackets.
fn proxy_address(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Runs the tunnel handshake; reads never take a byte past the proxy's answer.
async fn handshake(
    mut tunnel: Tunnel,
    stream: &mut (impl AsyncRead + AsyncWrite + Unpin),
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
            stream.write_all(&bytes).await.map_err(io)?;
            stream.flush().await.map_err(io)?;
        }
        if tunnel.is_established() {
            return Ok(());
        }
        let want = tunnel.wants().clamp(1, buf.len());
        let n = stream.read(&mut buf[..want]).await.map_err(io)?;
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

/// A connection to the target (directly or through a tunnel), or to a
/// forwarding proxy.
pub(crate) struct ProxyStream {
    io: ProxyIo,
    forward: bool,
}

/// TCP, or TLS to an https:// proxy.
enum ProxyIo {
    Tcp(TokioIo<TcpStream>),
    Tls(TokioIo<Box<TlsStream<TcpStream>>>),
}

impl Connection for ProxyStream {
    fn connected(&self) -> Connected {
        let connected = match &self.io {
            ProxyIo::Tcp(io) => io.connected(),
            ProxyIo::Tls(_) => Connected::new(),
        };
        connected.proxy(self.forward)
    }
}

/// Forwards a `hyper::rt` method to whichever stream is inside.
macro_rules! each {
    ($self:ident, $io:ident => $call:expr) => {
        match &mut $self.get_mut().io {
            ProxyIo::Tcp($io) => $call,
            ProxyIo::Tls($io) => $call,
        }
    };
}

impl hyper::rt::Read for ProxyStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<std::io::Result<()>> {
        each!(self, io => Pin::new(io).poll_read(cx, buf))
    }
}

impl hyper::rt::Write for ProxyStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        each!(self, io => Pin::new(io).poll_write(cx, buf))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        each!(self, io => Pin::new(io).poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        each!(self, io => Pin::new(io).poll_shutdown(cx))
    }

    fn is_write_vectored(&self) -> bool {
        match &self.io {
            ProxyIo::Tcp(io) => io.is_write_vectored(),
            ProxyIo::Tls(io) => io.is_write_vectored(),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        each!(self, io => Pin::new(io).poll_write_vectored(cx, bufs))
    }
}
