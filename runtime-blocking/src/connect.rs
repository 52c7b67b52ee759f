//! Proxies for ureq: the first link of the connector chain (this, then TCP,
//! then windlass-proto's TLS; see the `tls` module). Through a proxy it
//! opens TCP to the proxy and runs windlass-proto's [`Tunnel`] handshake
//! (HTTP `CONNECT` or SOCKS5) within the connect timeout; TLS to the API
//! server then runs inside the tunnel with the client certificate and
//! server name as without a proxy. Directly, it passes and TCP connects.
//!
//! An https:// proxy is reached over TLS first (rustls' `StreamOwned`
//! under the tunnel, with the API server's `ClientConfig` and ALPN
//! `http/1.1`, verified against the proxy's host); the tunnel handshake and
//! then the server's TLS run inside it.
//!
//! ureq writes only origin-form request lines, so an http:// target behind
//! an http:// proxy is tunnelled too (as ureq's own proxy support does)
//! rather than forwarded in absolute form. The resolver does not look up a
//! proxied target: the proxy resolves it, so a name only the proxy knows works.

use std::io::{Read, Write};
use std::sync::Arc;

use crate::tls::TlsTransport;
use rustls::{ClientConfig, ClientConnection, StreamOwned};
use rustls_pki_types::ServerName;
use ureq::config::Config;
use ureq::http::Uri;
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{
    ConnectionDetails, Connector, Either, LazyBuffers, NextTimeout, TcpConnector, Transport,
    TransportAdapter,
};
use windlass_proto::config::{ProxyUrl, TlsDescription, TlsError};
use windlass_proto::proxy::{ProxyError, Route, Tunnel};

/// The proxy link of the connector chain.
#[derive(Debug, Clone)]
pub(crate) struct ProxyConnector {
    /// The proxy, if any, and how to go through it.
    route: Arc<Route>,
    /// TLS to an https:// proxy.
    tls: Option<Arc<ProxyTls>>,
}

/// What TLS to an https:// proxy needs: the API server's configuration
/// (ALPN `http/1.1`), the proxy's name, and the description that explains a
/// failed handshake.
struct ProxyTls {
    config: Arc<ClientConfig>,
    name: ServerName<'static>,
    description: TlsDescription,
}

impl std::fmt::Debug for ProxyTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProxyTls")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl ProxyConnector {
    /// Through `route`; `tls` (the API server's) also verifies an https:// proxy.
    pub(crate) fn new(route: Route, tls: &TlsDescription) -> Result<Self, crate::Error> {
        let tls = match route.proxy_tls_name()? {
            None => None,
            Some(name) => {
                let mut config = tls.client_config()?;
                config.alpn_protocols = vec![b"http/1.1".to_vec()];
                Some(Arc::new(ProxyTls {
                    config: Arc::new(config),
                    name,
                    description: tls.clone(),
                }))
            }
        };
        Ok(Self {
            route: Arc::new(route),
            tls,
        })
    }

    /// The resolver to pair with this connector.
    pub(crate) fn resolver(&self) -> ProxyResolver {
        ProxyResolver {
            proxied: self.route.proxy().is_some(),
            inner: DefaultResolver::default(),
        }
    }
}

impl<In: Transport> Connector<In> for ProxyConnector {
    type Out = Either<In, Box<dyn Transport>>;

    fn connect(
        &self,
        details: &ConnectionDetails,
        chained: Option<In>,
    ) -> Result<Option<Self::Out>, ureq::Error> {
        if let Some(transport) = chained {
            return Ok(Some(Either::A(transport)));
        }
        let Some(proxy) = self.route.proxy() else {
            return Ok(None);
        };
        let address = proxy_address(proxy);
        let proxy_uri: Uri = format!("http://{address}").parse().map_err(|_| {
            failure(
                &address,
                ProxyError::Malformed {
                    what: "proxy address",
                },
            )
        })?;
        let proxy_details = ConnectionDetails {
            uri: &proxy_uri,
            // Not the agent's resolver: it skips every lookup when proxied.
            addrs: DefaultResolver::default().resolve(
                &proxy_uri,
                details.config,
                details.timeout,
            )?,
            config: details.config,
            request_level: details.request_level,
            resolver: details.resolver,
            now: details.now,
            timeout: details.timeout,
            current_time: details.current_time.clone(),
            run_connector: details.run_connector.clone(),
            register_shutdown: details.register_shutdown.clone(),
        };
        // TCP registers its socket for `Agent::shutdown`.
        let Some(tcp) = TcpConnector::default().connect(&proxy_details, None::<()>)? else {
            return Err(ureq::Error::ConnectionFailed);
        };
        let Some(tunnel) = self
            .route
            .tunnel(details.uri)
            .map_err(|e| failure(&address, e))?
            .or(tunnel_for_forward(&self.route, proxy, details.uri)?)
        else {
            return Ok(Some(Either::B(Box::new(tcp))));
        };
        let mut socket = TransportAdapter::new(tcp.boxed(), details.current_time.clone());
        socket.set_timeout(details.timeout);
        let Some(tls) = &self.tls else {
            handshake(tunnel, &mut socket, &address, details.timeout)?;
            return Ok(Some(Either::B(socket.into_inner())));
        };
        let mut connection = ClientConnection::new(tls.config.clone(), tls.name.clone())
            .map_err(|e| tls_failure(&address, TlsError::Config(e)))?;
        connection
            .complete_io(&mut socket)
            .map_err(|e| match io_error(e, details.timeout) {
                ureq::Error::Io(e) => {
                    match e.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>()) {
                        Some(rustls) => tls_failure(
                            &address,
                            tls.description.explain(&tls.name, rustls.clone()),
                        ),
                        None => ureq::Error::Io(e),
                    }
                }
                other => other,
            })?;
        let mut stream = StreamOwned::new(connection, socket);
        handshake(tunnel, &mut stream, &address, details.timeout)?;
        let input = details.config.input_buffer_size();
        let output = details.config.output_buffer_size();
        Ok(Some(Either::B(Box::new(TlsTransport::new(
            LazyBuffers::new(input, output),
            stream,
            false,
        )))))
    }
}

/// ureq cannot forward in absolute form: tunnel instead (see the module doc).
fn tunnel_for_forward(
    route: &Route,
    proxy: &ProxyUrl,
    target: &Uri,
) -> Result<Option<Tunnel>, ureq::Error> {
    if !matches!(route, Route::Forward(_)) {
        return Ok(None);
    }
    Route::Tunnel(proxy.clone())
        .tunnel(target)
        .map_err(|e| failure(&proxy_address(proxy), e))
}

/// Runs the handshake; reads never take a byte past the proxy's answer.
fn handshake(
    mut tunnel: Tunnel,
    socket: &mut (impl Read + Write),
    proxy: &str,
    timeout: NextTimeout,
) -> Result<(), ureq::Error> {
    let io = |e| io_error(e, timeout);
    let mut buf = [0u8; 512];
    loop {
        if let Some(bytes) = tunnel.poll_transmit() {
            socket.write_all(&bytes).map_err(io)?;
            socket.flush().map_err(io)?;
        }
        if tunnel.is_established() {
            return Ok(());
        }
        let want = tunnel.wants().clamp(1, buf.len());
        let n = socket.read(&mut buf[..want]).map_err(io)?;
        let result = if n == 0 {
            tunnel.handle_eof()
        } else {
            tunnel.handle_input(&buf[..n])
        };
        result.map_err(|e| failure(proxy, e))?;
    }
}

/// The adapter reports ureq's own errors (its timeouts) inside io::Error.
fn io_error(e: std::io::Error, timeout: NextTimeout) -> ureq::Error {
    if matches!(
        e.kind(),
        std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
    ) {
        return ureq::Error::Timeout(timeout.reason);
    }
    if !e.get_ref().is_some_and(|inner| inner.is::<ureq::Error>()) {
        return ureq::Error::Io(e);
    }
    match e.into_inner().map(|inner| inner.downcast::<ureq::Error>()) {
        Some(Ok(ureq)) => *ureq,
        Some(Err(other)) => ureq::Error::Other(other),
        None => ureq::Error::ConnectionFailed,
    }
}

fn tls_failure(proxy: &str, source: TlsError) -> ureq::Error {
    ureq::Error::Other(Box::new(ProxyTlsFailure {
        proxy: proxy.to_owned(),
        source,
    }))
}

/// A failed TLS handshake with an https:// proxy, naming the proxy.
#[derive(Debug, thiserror::Error)]
#[error("proxy {proxy}: TLS handshake with the proxy: {source}")]
pub(crate) struct ProxyTlsFailure {
    proxy: String,
    #[source]
    source: TlsError,
}

fn failure(proxy: &str, source: ProxyError) -> ureq::Error {
    ureq::Error::Other(Box::new(ProxyFailure {
        proxy: proxy.to_owned(),
        source,
    }))
}

/// `host:port`, an IPv6 host in brackets.
fn proxy_address(proxy: &ProxyUrl) -> String {
    if proxy.host().contains(':') {
        format!("[{}]:{}", proxy.host(), proxy.port())
    } else {
        format!("{}:{}", proxy.host(), proxy.port())
    }
}

/// A tunnel the proxy would not open, naming the proxy.
#[derive(Debug, thiserror::Error)]
#[error("proxy {proxy}: {source}")]
pub(crate) struct ProxyFailure {
    proxy: String,
    #[source]
    pub(crate) source: ProxyError,
}

/// The system resolver, except for a proxied target (the proxy resolves it).
#[derive(Debug)]
pub(crate) struct ProxyResolver {
    proxied: bool,
    inner: DefaultResolver,
}

impl Resolver for ProxyResolver {
    fn resolve(
        &self,
        uri: &Uri,
        config: &Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        if self.proxied {
            return Ok(self.empty());
        }
        self.inner.resolve(uri, config, timeout)
    }
}
