//! Building a [`Client`]: where the API server is, how to trust it, who to
//! be, the hooks, and the transport's limits. The ureq agent is made here:
//! TCP then windlass-proto's TLS (see the `tls` module).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use windlass_proto::api::Formats;
use windlass_proto::codec::Format;

use http::HeaderMap;
use http::header::{HeaderValue, USER_AGENT};
use windlass_proto::config::{
    AuthConfig, Config, Credentials, Impersonation, ProxyEnv, ProxyUrl, Secret, TlsDescription,
    select_proxy,
};
use windlass_proto::endpoint::Endpoint;
use windlass_proto::flowcontrol::{FlowControl, RequestLimiter};
use windlass_proto::proxy::{ProxyError, Route};
use windlass_proto::retry::DEFAULT_MAX_RETRIES;

use crate::client::{Hook, Inner, Transport};
use crate::connect::ProxyConnector;
use crate::tls::TlsConnector;
use crate::{Client, Error};

/// The default read-idle timeout: the longest wait for a response head or
/// for the next body bytes, a little under the API server's 5-minute watch
/// timeout. Never a total timeout: a watch that keeps sending lives on.
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(295);
/// The default connect timeout (TCP, a proxy's tunnel, the TLS handshake).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// The default limit of a body read whole (1 GiB); streams are not limited.
pub const DEFAULT_MAX_BODY: usize = 1 << 30;

/// Builds a [`Client`].
pub struct ClientBuilder {
    base: String,
    tls: TlsDescription,
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
}

impl ClientBuilder {
    /// A client for `base` (`https://host:port`, or `http://…` for tests and
    /// `kubectl proxy`), trusting as `tls` says; `None` trusts the
    /// platform's roots, as kubectl does for a cluster without a CA.
    pub fn new(base: impl Into<String>, tls: Option<TlsDescription>) -> Self {
        let mut headers = HeaderMap::new();
        headers.insert(
            USER_AGENT,
            HeaderValue::from_static(concat!("windlass-blocking/", env!("CARGO_PKG_VERSION"))),
        );
        Self {
            base: base.into(),
            tls: tls.unwrap_or_default(),
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
        }
    }

    /// A client for a resolved kubeconfig context or in-cluster [`Config`]:
    /// its URL, TLS (`tls-server-name` included), credentials, impersonation,
    /// default namespace and `proxy-url`.
    pub fn from_config(config: &Config) -> Result<Self, Error> {
        let mut builder = Self::new(config.cluster_url.to_string(), Some(config.tls.clone()));
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
    pub fn tls_server_name(mut self, name: impl Into<String>) -> Self {
        self.tls.server_name = Some(name.into());
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

    /// How long connecting (TCP and the TLS handshake) may take.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long a response head, or the next bytes of a body or watch, may take.
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

    /// The client.
    pub fn build(self) -> Result<Client, Error> {
        let base = Endpoint::parse(&self.base).map_err(|e| Error::BaseUrl {
            url: e.url,
            what: e.what,
        })?;
        // A plain-HTTP client never handshakes, so it needs no roots.
        let tls = base
            .is_https()
            .then(|| TlsConnector::new(self.tls.clone()))
            .transpose()?;
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .user_agent(ureq::config::AutoHeaderValue::None)
            .timeout_connect(Some(self.connect_timeout))
            .timeout_per_read(Some(self.read_timeout))
            .build();
        let proxy = select_proxy(self.proxy.as_ref(), &self.proxy_env, base.uri())
            .map_err(|message| Error::Proxy(ProxyError::Environment { message }))?;
        let route = Route::new(proxy.as_ref(), base.uri())?;
        let transport = Transport {
            config,
            tls,
            proxy: ProxyConnector::new(route, &self.tls)?,
        };
        let credentials = Credentials::new(&self.auth, &self.impersonation, false, Instant::now());
        Ok(Client {
            inner: Arc::new(Inner {
                agent: transport.agent(),
                transport,
                base,
                default_namespace: self.default_namespace,
                credentials: Mutex::new(credentials),
                refreshing: Mutex::new(()),
                limiter: Mutex::new(RequestLimiter::new(self.flow_control)),
                headers: self.headers,
                hooks: self.hooks,
                read_timeout: self.read_timeout,
                max_body: self.max_body,
                max_retries: self.max_retries,
                formats: Formats::new(self.format),
            }),
        })
    }
}
