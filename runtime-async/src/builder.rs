//! What a client builder gathers before it builds (where the API server is,
//! how to trust it, who to be, which proxy, the transport's limits), and
//! the setters every runtime crate's `ClientBuilder` offers
//! ([`client_builder_setters!`](crate::client_builder_setters)). The runtime
//! crate adds only its own constructor arguments and its transport.

use std::sync::Arc;
use std::time::{Duration, Instant};

use http::HeaderMap;
use http::header::{HeaderValue, USER_AGENT};
use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use windlass_proto::codec::Format;
use windlass_proto::config::{
    AuthConfig, Config, Credentials, Impersonation, ProxyEnv, ProxyUrl, select_proxy,
};
use windlass_proto::endpoint::Endpoint;
use windlass_proto::flowcontrol::FlowControl;
use windlass_proto::proxy::{ProxyError, Route};
use windlass_proto::retry::DEFAULT_MAX_RETRIES;
use windlass_proto::shards::ShardConfig;

use crate::Error;
use crate::client::{ClientParts, Hook};
use crate::runtime::{Runtime, Transport};

/// Default connect timeout.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// Default read-idle timeout: the longest wait for a response head or for the
/// next body bytes. Never a total timeout: a watch that keeps sending lives on.
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(295);
/// Default limit on a response body read whole (not on streams).
pub const DEFAULT_MAX_BODY: usize = 1 << 30;

/// A client's settings, as a builder gathers them.
#[derive(Clone)]
pub struct ClientSettings {
    /// The API server's URL as given.
    pub base: String,
    /// The rustls configuration for `https` (`None`: no roots, no client certificate).
    pub tls: Option<ClientConfig>,
    /// The name to verify the server's certificate against, if not the URL's host.
    pub server_name: Option<ServerName<'static>>,
    /// The namespace `Api::default_namespaced` uses.
    pub default_namespace: String,
    /// Who the client is.
    pub auth: AuthConfig,
    /// Who the client acts as.
    pub impersonation: Impersonation,
    /// Client-side QPS and burst.
    pub flow_control: FlowControl,
    /// Headers sent with every request (a `User-Agent` to begin with).
    pub headers: HeaderMap,
    /// Hooks that see every attempt.
    pub hooks: Vec<Arc<dyn Hook>>,
    /// How long to wait for a connection.
    pub connect_timeout: Duration,
    /// How long to wait for a response head, and then between body bytes.
    pub read_timeout: Duration,
    /// The largest response body read whole.
    pub max_body: usize,
    /// How many retries the retry policy may take.
    pub max_retries: u32,
    /// The encoding to ask for.
    pub format: Format,
    /// The proxy to use whatever the environment says.
    pub proxy: Option<ProxyUrl>,
    /// The proxy variables to read without [`proxy`](Self::proxy).
    pub proxy_env: ProxyEnv,
    /// Whether watches and followed logs go on HTTP/2 shards.
    pub http2_watches: bool,
    /// How watches are sharded over HTTP/2 connections.
    pub watch_shards: ShardConfig,
}

impl ClientSettings {
    /// Defaults for the API server at `base`, sending `user_agent`.
    pub fn new(
        base: impl Into<String>,
        tls: Option<ClientConfig>,
        user_agent: HeaderValue,
    ) -> Self {
        let mut headers = HeaderMap::new();
        headers.insert(USER_AGENT, user_agent);
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

    /// The settings of a resolved kubeconfig or in-cluster [`Config`]: its
    /// URL, TLS, credentials, impersonation, default namespace and `proxy-url`.
    pub fn from_config(config: &Config, user_agent: HeaderValue) -> Result<Self, Error> {
        let tls = config.tls.client_config()?;
        let mut settings = Self::new(config.cluster_url.to_string(), Some(tls), user_agent);
        if config.tls.server_name.is_some() {
            let host = config.cluster_url.host().unwrap_or_default();
            settings.server_name = Some(config.tls.server_name(host)?);
        }
        settings.default_namespace = config.default_namespace.clone();
        settings.auth = config.auth.clone();
        settings.impersonation = config.impersonation.clone();
        settings.proxy = config.proxy_url.clone();
        Ok(settings)
    }

    /// The base URL, checked.
    pub fn endpoint(&self) -> Result<Endpoint, Error> {
        Endpoint::parse(&self.base).map_err(|e| Error::BaseUrl {
            url: e.url,
            what: e.what,
        })
    }

    /// The rustls configuration: the one given, else one that trusts no
    /// root (plain-HTTP clients never use it).
    pub fn tls_config(&self) -> Result<ClientConfig, Error> {
        if let Some(tls) = &self.tls {
            return Ok(tls.clone());
        }
        let provider = rustls::crypto::ring::default_provider();
        Ok(ClientConfig::builder_with_provider(provider.into())
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::Tls(windlass_proto::config::TlsError::Config(e)))?
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth())
    }

    /// How to reach `base`: directly, or through the proxy windlass-proto picks.
    pub fn route(&self, base: &Endpoint) -> Result<Route, Error> {
        let proxy = select_proxy(self.proxy.as_ref(), &self.proxy_env, base.uri())
            .map_err(|message| Error::Proxy(ProxyError::Environment { message }))?;
        Ok(Route::new(proxy.as_ref(), base.uri())?)
    }

    /// What [`Client::new`](crate::Client::new) needs, with the runtime
    /// crate's runtime and transport.
    pub fn into_parts(
        self,
        base: Endpoint,
        runtime: Arc<dyn Runtime>,
        transport: Box<dyn Transport>,
    ) -> ClientParts {
        let credentials = Credentials::new(&self.auth, &self.impersonation, false, Instant::now());
        ClientParts {
            runtime,
            transport,
            base,
            default_namespace: self.default_namespace,
            credentials,
            flow_control: self.flow_control,
            headers: self.headers,
            hooks: self.hooks,
            read_timeout: self.read_timeout,
            max_body: self.max_body,
            max_retries: self.max_retries,
            format: self.format,
        }
    }
}

/// The setters of a runtime crate's `ClientBuilder`, over its
/// `settings: ClientSettings` field: written once, so every runtime's
/// builder takes the same settings with the same words.
#[macro_export]
macro_rules! client_builder_setters {
    () => {
        /// Connect through this proxy (http:// or socks5://), whatever the
        /// environment says — as a kubeconfig's `proxy-url` does.
        pub fn proxy(mut self, proxy: $crate::__deps::windlass_proto::config::ProxyUrl) -> Self {
            self.settings.proxy = Some(proxy);
            self
        }

        /// Without [`proxy`](Self::proxy), pick the proxy from these variables
        /// (`HTTPS_PROXY`, `HTTP_PROXY`, `NO_PROXY`) instead of the process's, as
        /// client-go's `http.ProxyFromEnvironment` does; `ProxyEnv::default()`
        /// connects directly.
        pub fn proxy_env(mut self, env: $crate::__deps::windlass_proto::config::ProxyEnv) -> Self {
            self.settings.proxy_env = env;
            self
        }

        /// Send `Authorization: Bearer <token>`.
        pub fn bearer_token(mut self, token: impl Into<String>) -> Self {
            self.settings.auth = $crate::__deps::windlass_proto::config::AuthConfig::Bearer {
                token: $crate::__deps::windlass_proto::config::Secret::new(token.into()),
                file: None,
            };
            self
        }

        /// Verify the server's certificate against this name instead of the
        /// URL's host (kubeconfig `tls-server-name`).
        pub fn tls_server_name(
            mut self,
            name: $crate::__deps::rustls::pki_types::ServerName<'static>,
        ) -> Self {
            self.settings.server_name = Some(name);
            self
        }

        /// The namespace `Api::default_namespaced` uses.
        pub fn default_namespace(mut self, namespace: impl Into<String>) -> Self {
            self.settings.default_namespace = namespace.into();
            self
        }

        /// Client-side QPS and burst (client-go's defaults 5 and 10; a negative
        /// QPS turns the limiter off).
        pub fn flow_control(
            mut self,
            flow_control: $crate::__deps::windlass_proto::flowcontrol::FlowControl,
        ) -> Self {
            self.settings.flow_control = flow_control;
            self
        }

        /// A header sent with every request.
        pub fn header(
            mut self,
            name: $crate::__deps::http::HeaderName,
            value: $crate::__deps::http::HeaderValue,
        ) -> Self {
            self.settings.headers.insert(name, value);
            self
        }

        /// Add a hook that sees every attempt.
        pub fn hook(mut self, hook: impl $crate::Hook + 'static) -> Self {
            self.settings.hooks.push(::std::sync::Arc::new(hook));
            self
        }

        /// How long to wait for a connection (TCP, a proxy's tunnel, TLS).
        pub fn connect_timeout(mut self, timeout: ::std::time::Duration) -> Self {
            self.settings.connect_timeout = timeout;
            self
        }

        /// How long to wait for a response head, and then between body bytes.
        pub fn read_timeout(mut self, timeout: ::std::time::Duration) -> Self {
            self.settings.read_timeout = timeout;
            self
        }

        /// The largest response body read whole (streams are not limited).
        pub fn max_body(mut self, limit: usize) -> Self {
            self.settings.max_body = limit;
            self
        }

        /// How many retries the retry policy may take (0: none).
        pub fn max_retries(mut self, retries: u32) -> Self {
            self.settings.max_retries = retries;
            self
        }

        /// The encoding to ask for (default JSON): protobuf or CBOR for
        /// built-in kinds, decoded into the same types. Custom resources stay
        /// JSON, and a resource the server refuses the encoding for (406, 415)
        /// falls back to JSON for the client's lifetime.
        pub fn format(mut self, format: $crate::__deps::windlass_proto::codec::Format) -> Self {
            self.settings.format = format;
            self
        }

        /// How watches and followed logs travel. `true` (default): on HTTP/2
        /// connections of their own, at most [`watch_shards`](Self::watch_shards)'
        /// cap of streams each (kube-apiserver allows 100), when the server
        /// negotiates `h2` — else, and with `false`, on one HTTP/1.1 connection
        /// per stream. Ordinary requests are not affected.
        pub fn http2_watches(mut self, enabled: bool) -> Self {
            self.settings.http2_watches = enabled;
            self
        }

        /// How watches are sharded over HTTP/2 connections (default: 90 streams
        /// per connection, lowered below the server's announced limit, at most
        /// 64 connections).
        pub fn watch_shards(
            mut self,
            config: $crate::__deps::windlass_proto::shards::ShardConfig,
        ) -> Self {
            self.settings.watch_shards = config;
            self
        }
    };
}
