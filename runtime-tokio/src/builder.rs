//! Building a [`Client`]: windlass-async's settings and setters, and the
//! connections made here: one connector, two pools and the HTTP/2 stream
//! shards (see the `pools` module doc); the connector reaches the server as
//! windlass-proto's proxy [`Route`] says (see `connect`).

use std::sync::Arc;

use http::header::HeaderValue;
use hyper_rustls::{FixedServerNameResolver, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rustls::ClientConfig;
use windlass_async::ClientSettings;
use windlass_proto::config::Config;
use windlass_proto::proxy::Route;

pub use windlass_async::{DEFAULT_CONNECT_TIMEOUT, DEFAULT_MAX_BODY, DEFAULT_READ_TIMEOUT};

use crate::client::Tokio;
use crate::connect::{Bounded, ProxyConnector};
use crate::pools::Pools;
use crate::shards::StreamShards;
use crate::{Client, Error};

const USER_AGENT: &str = concat!("windlass-tokio/", env!("CARGO_PKG_VERSION"));

/// Builds a [`Client`].
pub struct ClientBuilder {
    settings: ClientSettings,
}

impl ClientBuilder {
    /// A client for the API server at `base` (`https://host:port`, or
    /// `http://…` for tests and proxies). `tls` is the rustls configuration
    /// for `https` (with a crypto provider; see [`TlsDescription::client_config`]).
    ///
    /// [`TlsDescription::client_config`]: windlass_proto::config::TlsDescription::client_config
    pub fn new(base: impl Into<String>, tls: Option<ClientConfig>) -> Self {
        let user_agent = HeaderValue::from_static(USER_AGENT);
        Self {
            settings: ClientSettings::new(base, tls, user_agent),
        }
    }

    /// A client for a resolved kubeconfig or in-cluster [`Config`]: its URL,
    /// TLS, credentials, impersonation, default namespace and `proxy-url`.
    pub fn from_config(config: &Config) -> Result<Self, Error> {
        let user_agent = HeaderValue::from_static(USER_AGENT);
        Ok(Self {
            settings: ClientSettings::from_config(config, user_agent)?,
        })
    }

    windlass_async::client_builder_setters!();

    /// The client. Needs a tokio runtime.
    pub fn build(self) -> Result<Client, Error> {
        let mut settings = self.settings;
        let base = settings.endpoint()?;
        let tls = settings.tls_config()?;
        let route = settings.route(&base)?;
        if let Route::Forward(_) = route
            && let Some(authorization) = route.proxy_authorization()
        {
            let headers = &mut settings.headers;
            headers.insert(http::header::PROXY_AUTHORIZATION, authorization);
        }
        let connect_timeout = settings.connect_timeout;
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(connect_timeout));
        http.set_nodelay(true);
        let http = ProxyConnector::new(http, route, connect_timeout, &tls)?;
        let connector = |http2: bool| {
            let mut builder = HttpsConnectorBuilder::new()
                .with_tls_config(tls.clone())
                .https_or_http();
            if let Some(name) = &settings.server_name {
                builder =
                    builder.with_server_name_resolver(FixedServerNameResolver::new(name.clone()));
            }
            let builder = builder.enable_http1();
            let https = if http2 {
                builder.enable_http2().wrap_connector(http.clone())
            } else {
                builder.wrap_connector(http.clone())
            };
            Bounded::new(https, connect_timeout)
        };
        let shards = (settings.http2_watches && base.is_https()).then(|| {
            StreamShards::new(
                connector(true),
                base.uri().clone(),
                connect_timeout,
                settings.watch_shards,
            )
        });
        let pools = Pools {
            requests: HyperClient::builder(TokioExecutor::new()).build(connector(true)),
            warm_up: tokio::sync::Mutex::new(false),
            streams: HyperClient::builder(TokioExecutor::new()).build(connector(false)),
            shards,
        };
        let parts = settings.into_parts(base, Arc::new(Tokio), Box::new(pools));
        Ok(Client::from_core(windlass_async::Client::new(parts)))
    }
}
