//! Building a [`Client`]: where the API server is, how to trust it, who to
//! be, which proxy, and the transport's limits. The pools are made here: one
//! connector, two pools and the HTTP/2 stream shards (see the `client` module
//! doc); the connector reaches the server as windlass-proto's proxy [`Route`]
//! says (see `connect`).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::HeaderMap;
use http::header::{HeaderValue, USER_AGENT};
use hyper_rustls::{FixedServerNameResolver, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use windlass_proto::api::Formats;
use windlass_proto::codec::Format;
use windlass_proto::config::{
    AuthConfig, Config, Credentials, Impersonation, ProxyEnv, ProxyUrl, Secret, select_proxy,
};
use windlass_proto::endpoint::Endpoint;
use windlass_proto::flowcontrol::{FlowControl, RequestLimiter};
use windlass_proto::proxy::{ProxyError, Route};
use windlass_proto::retry::DEFAULT_MAX_RETRIES;
use windlass_proto::shards::ShardConfig;

use crate::client::{Hook, Inner};
use crate::connect::{Bounded, ProxyConnector};
use crate::shards::StreamShards;
use crate::{Client, Error};

/// Default connect timeout.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// Default read-idle timeout: the longest wait for a response head or for the
/// next body bytes. Never a total timeout: a watch that keeps sending lives on.
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(295);
/// Default limit on a response body read whole (not on streams).
pub const DEFAULT_MAX_BODY: usize = 1 << 30;

/// Builds a [`Client`].
pub struct ClientBuilder {
    base: String,
    tls: Option<ClientConfig>,
    server_name: Option<ServerName<'static>>,
    default_namespace: String,
    auth: AuthConfig,
    impersonation: Impersonation,
    flow_control: FlowControl,
    headers: HeaderMap,
    hooks: Vec<Arc<dyn Hook>>,
    connect_timeout: Duration,
    read_timeout: Duration,
    max_body: usize,
    max_retries: u32,
    format: Format,
    proxy: Option<ProxyUrl>,
    proxy_env: ProxyEnv,
    http2_watches: bool,
    watch_shards: ShardConfig,
}

impl ClientBuilder {
    /// A client for the API server at `base` (`https://host:port`, or
    /// `http://…` for tests and proxies). `tls` is the rustls configuration
    /// for `https` (with a crypto provider; see [`TlsDescription::client_config`]).
    ///
    /// [`TlsDescription::client_config`]: windlass_proto::config::TlsDescription::client_config
    pub fn new(base: impl Into<String>, tls: Option<ClientConfig>) -> Self {
        let mut headers = HeaderMap::new();
        headers.insert(
            USER_AGENT,
            HeaderValue::from_static(concat!("windlass-tokio/", env!("CARGO_PKG_VERSION"))),
        );
        Self {
            base: base.into(),
            tls,
            server_name: None,
            default_namespace: "default".into(),
            auth: AuthConfig::None,
            impersonation: Impersonation::default(),
            flow_control: FlowControl::default(),
            headers,
            hooks: Vec::new(),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            read_timeout: DEFAULT_READ_TIMEOUT,
            max_body: DEFAULT_MAX_BODY,
            max_retries: DEFAULT_MAX_RETRIES,
            format: Format::Json,
            proxy: None,
            proxy_env: ProxyEnv::from_lookup(|name| std::env::var(name).ok()),
            http2_watches: true,
            watch_shards: ShardConfig::default(),
        }
    }

    /// A client for a resolved kubeconfig or in-cluster [`Config`]: its URL,
    /// TLS, credentials, impersonation, default namespace and `proxy-url`.
    pub fn from_config(config: &Config) -> Result<Self, Error> {
        let tls = config.tls.client_config()?;
        let mut builder = Self::new(config.cluster_url.to_string(), Some(tls));
        if config.tls.server_name.is_some() {
            let host = config.cluster_url.host().unwrap_or_default();
            builder.server_name = Some(config.tls.server_name(host)?);
        }
        builder.default_namespace = config.default_namespace.clone();
        builder.auth = config.auth.clone();
        builder.impersonation = config.impersonation.clone();
        builder.proxy = config.proxy_url.clone();
        Ok(builder)
    }

    /// Connect through this proxy (http:// or socks5://), whatever the
    /// environment says — as a kubeconfig's `proxy-url` does.
    pub fn proxy(mut self, proxy: ProxyUrl) -> Self {
        self.proxy = Some(proxy);
        self
    }

    /// Without [`proxy`](Self::proxy), pick the proxy from these variables
    /// (`HTTPS_PROXY`, `HTTP_PROXY`, `NO_PROXY`) instead of the process's, as
    /// client-go's `http.ProxyFromEnvironment` does; `ProxyEnv::default()`
    /// connects directly.
    pub fn proxy_env(mut self, env: ProxyEnv) -> Self {
        self.proxy_env = env;
        self
    }

    /// Send `Authorization: Bearer <token>`.
    pub fn bearer_token(mut self, token: impl Into<String>) -> Self {
        self.auth = AuthConfig::Bearer {
            token: Secret::new(token.into()),
            file: None,
        };
        self
    }

    /// Verify the server's certificate against this name instead of the
    /// URL's host (kubeconfig `tls-server-name`).
    pub fn tls_server_name(mut self, name: ServerName<'static>) -> Self {
        self.server_name = Some(name);
        self
    }

    /// The namespace [`Api::default_namespaced`](crate::Api::default_namespaced) uses.
    pub fn default_namespace(mut self, namespace: impl Into<String>) -> Self {
        self.default_namespace = namespace.into();
        self
    }

    /// Client-side QPS and burst (client-go's defaults 5 and 10; a negative
    /// QPS turns the limiter off).
    pub fn flow_control(mut self, flow_control: FlowControl) -> Self {
        self.flow_control = flow_control;
        self
    }

    /// A header sent with every request.
    pub fn header(mut self, name: http::HeaderName, value: HeaderValue) -> Self {
        self.headers.insert(name, value);
        self
    }

    /// Add a hook that sees every attempt.
    pub fn hook(mut self, hook: impl Hook + 'static) -> Self {
        self.hooks.push(Arc::new(hook));
        self
    }

    /// How long to wait for a TCP connection.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long to wait for a response head, and then between body bytes.
    pub fn read_timeout(mut self, timeout: Duration) -> Self {
        self.read_timeout = timeout;
        self
    }

    /// The largest response body read whole (streams are not limited).
    pub fn max_body(mut self, limit: usize) -> Self {
        self.max_body = limit;
        self
    }

    /// How many retries the retry policy may take (0: none).
    pub fn max_retries(mut self, retries: u32) -> Self {
        self.max_retries = retries;
        self
    }

    /// The encoding to ask for (default JSON): protobuf or CBOR for
    /// built-in kinds, decoded into the same types. Custom resources stay
    /// JSON, and a resource the server refuses the encoding for (406, 415)
    /// falls back to JSON for the client's lifetime.
    pub fn format(mut self, format: Format) -> Self {
        self.format = format;
        self
    }

    /// How watches and followed logs travel. `true` (default): on HTTP/2
    /// connections of their own, at most [`watch_shards`](Self::watch_shards)'
    /// cap of streams each (kube-apiserver allows 100), when the server
    /// negotiates `h2` — else, and with `false`, on one HTTP/1.1 connection
    /// per stream. Ordinary requests are not affected.
    pub fn http2_watches(mut self, enabled: bool) -> Self {
        self.http2_watches = enabled;
        self
    }

    /// How watches are sharded over HTTP/2 connections (default: 90 streams
    /// per connection, lowered below the server's announced limit, at most
    /// 64 connections).
    pub fn watch_shards(mut self, config: ShardConfig) -> Self {
        self.watch_shards = config;
        self
    }

    /// The client. Needs a tokio runtime.
    pub fn build(self) -> Result<Client, Error> {
        let base = Endpoint::parse(&self.base).map_err(|e| Error::BaseUrl {
            url: e.url,
            what: e.what,
        })?;
        let tls = match self.tls {
            Some(tls) => tls,
            None => {
                ClientConfig::builder_with_provider(rustls::crypto::ring::default_provider().into())
                    .with_safe_default_protocol_versions()
                    .map_err(|e| Error::Tls(windlass_proto::config::TlsError::Config(e)))?
                    .with_root_certificates(rustls::RootCertStore::empty())
                    .with_no_client_auth()
            }
        };
        let proxy = select_proxy(self.proxy.as_ref(), &self.proxy_env, base.uri())
            .map_err(|message| Error::Proxy(ProxyError::Environment { message }))?;
        let route = Route::new(proxy.as_ref(), base.uri())?;
        let mut headers = self.headers;
        if let Route::Forward(_) = route
            && let Some(authorization) = route.proxy_authorization()
        {
            headers.insert(http::header::PROXY_AUTHORIZATION, authorization);
        }
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(self.connect_timeout));
        http.set_nodelay(true);
        let http = ProxyConnector::new(http, route, self.connect_timeout, &tls)?;
        let connector = |http2: bool| {
            let mut builder = HttpsConnectorBuilder::new()
                .with_tls_config(tls.clone())
                .https_or_http();
            if let Some(name) = &self.server_name {
                builder =
                    builder.with_server_name_resolver(FixedServerNameResolver::new(name.clone()));
            }
            let builder = builder.enable_http1();
            let https = if http2 {
                builder.enable_http2().wrap_connector(http.clone())
            } else {
                builder.wrap_connector(http.clone())
            };
            Bounded::new(https, self.connect_timeout)
        };
        let shards = (self.http2_watches && base.is_https()).then(|| {
            StreamShards::new(
                connector(true),
                base.uri().clone(),
                self.connect_timeout,
                self.watch_shards,
            )
        });
        let credentials = Credentials::new(&self.auth, &self.impersonation, false, Instant::now());
        Ok(Client {
            inner: Arc::new(Inner {
                requests: HyperClient::builder(TokioExecutor::new()).build(connector(true)),
                warm_up: tokio::sync::Mutex::new(false),
                streams: HyperClient::builder(TokioExecutor::new()).build(connector(false)),
                shards,
                base,
                default_namespace: self.default_namespace,
                credentials: Mutex::new(credentials),
                refreshing: tokio::sync::Mutex::new(()),
                limiter: Mutex::new(RequestLimiter::new(self.flow_control)),
                headers,
                hooks: self.hooks,
                read_timeout: self.read_timeout,
                max_body: self.max_body,
                max_retries: self.max_retries,
                formats: Formats::new(self.format),
            }),
        })
    }
}
