//! Building a [`Client`]: windlass-async's settings and setters, the
//! executor its connections run on, and the connections made here (the
//! `transport` module's pool and the `shards` module's HTTP/2 connections).

use std::sync::Arc;

use http::header::HeaderValue;
use rustls::ClientConfig;
use windlass_async::ClientSettings;
use windlass_proto::config::Config;

pub use windlass_async::{DEFAULT_CONNECT_TIMEOUT, DEFAULT_MAX_BODY, DEFAULT_READ_TIMEOUT};

use crate::pools::Pools;
use crate::shards::StreamShards;
use crate::transport::Transport;
use crate::{Client, Error, Spawner};

const USER_AGENT: &str = concat!("windlass-smol/", env!("CARGO_PKG_VERSION"));

/// Builds a [`Client`].
pub struct ClientBuilder {
    settings: ClientSettings,
    spawner: Spawner,
}

impl ClientBuilder {
    /// A client for the API server at `base` (`https://host:port`, or
    /// `http://…` for tests and proxies). `tls` is the rustls configuration
    /// for `https` (with a crypto provider; see [`TlsDescription::client_config`]).
    /// `spawner` runs the connections' background futures: an
    /// `Arc<smol::Executor>`, or any executor through [`Spawner::new`].
    ///
    /// [`TlsDescription::client_config`]: windlass_proto::config::TlsDescription::client_config
    pub fn new(
        base: impl Into<String>,
        tls: Option<ClientConfig>,
        spawner: impl Into<Spawner>,
    ) -> Self {
        let user_agent = HeaderValue::from_static(USER_AGENT);
        Self {
            settings: ClientSettings::new(base, tls, user_agent),
            spawner: spawner.into(),
        }
    }

    /// A client for a resolved kubeconfig or in-cluster [`Config`]: its URL,
    /// TLS, credentials, impersonation, default namespace and `proxy-url`.
    pub fn from_config(config: &Config, spawner: impl Into<Spawner>) -> Result<Self, Error> {
        let user_agent = HeaderValue::from_static(USER_AGENT);
        Ok(Self {
            settings: ClientSettings::from_config(config, user_agent)?,
            spawner: spawner.into(),
        })
    }

    windlass_async::client_builder_setters!();

    /// The client. Nothing is connected until the first request.
    pub fn build(self) -> Result<Client, Error> {
        let settings = self.settings;
        let base = settings.endpoint()?;
        let tls = settings.tls_config()?;
        let route = settings.route(&base)?;
        let proxy_name = route.proxy_tls_name()?;
        let transport = Transport::new(
            base.uri(),
            Some((tls, settings.server_name.clone())),
            settings.connect_timeout,
            self.spawner.clone(),
            route,
            proxy_name,
        )
        .map_err(|_| Error::BaseUrl {
            url: base.uri().to_string(),
            what: "the host is not a valid TLS server name",
        })?;
        let shards = (settings.http2_watches && base.is_https())
            .then(|| StreamShards::new(settings.watch_shards));
        let pools = Pools { transport, shards };
        let runtime = Arc::new(self.spawner.clone());
        let parts = settings.into_parts(base, runtime, Box::new(pools));
        Ok(Client::from_core(
            windlass_async::Client::new(parts),
            self.spawner,
        ))
    }
}
