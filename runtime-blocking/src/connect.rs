//! Proxies for ureq: the first link of the connector chain (this, then TCP,
//! then windlass-proto's TLS; see the `tls` module). Through a proxy it
//! opens TCP to the proxy and runs windlass-proto's [`Tunnel`] handshake
//! (HTTP `CONNECT` or SOCKS5) within the connect timeout; TLS to the API
//! server then runs inside the tunnel with the client certificate and
//! server name as without a proxy. Directly, it passes and TCP connects.
//!
//! ureq writes only origin-form request lines, so an http:// target behind
//! an http:// proxy is tunnelled too (as ureq's own proxy support does)
//! rather than forwarded in absolute form. The resolver does not look up a
//! proxied target: the proxy resolves it, so a name only the proxy knows works.

use std::io::{Read, Write};
use std::sync::Arc;

use ureq::config::Config;
use ureq::http::Uri;
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{
    ConnectionDetails, Connector, Either, NextTimeout, TcpConnector, Transport, TransportAdapter,
};
use windlass_proto::config::ProxyUrl;
use windlass_proto::proxy::{ProxyError, Route, Tunnel};

/// The proxy link of the connector chain.
#[derive(Debug, Clone)]
pub(crate) struct ProxyConnector {
    /// The proxy, if any, and how to go through it.
    route: Arc<Route>,
}

impl ProxyConnector {
    pub(crate) fn new(route: Route) -> Self {
        Self {
            route: Arc::new(route),
        }
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
        handshake(tunnel, &mut socket, &address, details.timeout)?;
        Ok(Some(Either::B(socket.into_inner())))
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
    socket: &mut TransportAdapter,
    proxy: &str,
    timeout: NextTimeout,
) -> Result<(), ureq::Error> {
    // The adapter reports ureq's own errors (its timeouts) inside io::Error.
    let io = |e: std::io::Error| {
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
    };
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
