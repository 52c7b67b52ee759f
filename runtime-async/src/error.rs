//! The one error type of windlass-tokio and windlass-smol: what windlass-proto decided went
//! wrong (a request that cannot be built, the server's `Status`, a body that
//! does not decode), and what the transport saw (connect, TLS, timeouts).

use std::time::Duration;

use windlass_proto::config::{AuthError, TlsError};
use windlass_proto::proxy::ProxyError;
use windlass_proto::request::RequestError;
use windlass_proto::response::{self, ApiError};
use windlass_proto::watch::DecodeError;

/// Anything a [`Client`](crate::Client), [`Api`](crate::Api) or runner call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request could not be built (a bad name, invalid parameters).
    #[error(transparent)]
    Request(#[from] RequestError),
    /// The server said no (its whole `Status`), or a success body did not decode.
    #[error(transparent)]
    Response(#[from] response::Error),
    /// An object that does not encode as a request body.
    #[error(transparent)]
    Encode(#[from] windlass_proto::codec::json::JsonError),
    /// A watch stream that does not decode.
    #[error("watch stream: {0}")]
    Watch(#[from] DecodeError),
    /// Discovery failed: `/api` or `/apis` refused, a malformed document, or
    /// no resource for the group/version/kind asked for.
    #[error(transparent)]
    Discovery(#[from] windlass_proto::discovery::DiscoveryError),
    /// No connection (refused, TLS, a proxy that refused the tunnel), or it
    /// broke before the response head arrived. The message shows every cause.
    #[error("{method} {uri}: {}", causes(source.as_ref()))]
    Transport {
        /// The request's method.
        method: http::Method,
        /// The request's path and query.
        uri: String,
        /// hyper's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The connection broke while the body was being read.
    #[error("{method} {uri}: reading the response body: {source}")]
    Body {
        /// The request's method.
        method: http::Method,
        /// The request's path and query.
        uri: String,
        /// hyper's error.
        #[source]
        source: hyper::Error,
    },
    /// Nothing arrived for the read-idle timeout (or the connect timeout).
    #[error("{method} {uri}: no {waiting_for} within {after:?}")]
    Timeout {
        /// The request's method.
        method: http::Method,
        /// The request's path and query.
        uri: String,
        /// What did not arrive: `response head` or `body bytes`.
        waiting_for: &'static str,
        /// The timeout that expired.
        after: Duration,
    },
    /// A response body larger than the client's limit.
    #[error("{method} {uri}: response body exceeds the {limit}-byte limit")]
    BodyTooLarge {
        /// The request's method.
        method: http::Method,
        /// The request's path and query.
        uri: String,
        /// The limit (the client builder's `max_body`).
        limit: usize,
    },
    /// Credentials could not be added (an exec plugin failed, a bad token).
    #[error("credentials: {0}")]
    Auth(#[from] AuthError),
    /// The TLS configuration could not be built.
    #[error("TLS configuration: {0}")]
    Tls(#[from] TlsError),
    /// A configuration this client does not support yet.
    #[error("{what} is not supported by windlass yet ({detail})")]
    Unsupported {
        /// The setting.
        what: &'static str,
        /// Its value, redacted as the config module prints it.
        detail: String,
    },
    /// An informer did not sync within the time given.
    #[error("the {resource} informer did not sync within {after:?}")]
    SyncTimeout {
        /// The resource's plural.
        resource: String,
        /// The timeout that expired.
        after: Duration,
    },
    /// An informer refused a call (stopped, already started, an index error).
    #[error("informer: {0}")]
    Informer(#[from] windlass_proto::informer::InformerError),
    /// A leader-election configuration that breaks client-go's rules.
    #[error(transparent)]
    Election(#[from] windlass_proto::election::ConfigError),
    /// A proxy setting that cannot be used (an https:// proxy, a malformed
    /// `HTTPS_PROXY`).
    #[error("proxy: {0}")]
    Proxy(#[from] ProxyError),
    /// A base URL the client cannot use.
    #[error("base URL {url:?}: {what}")]
    BaseUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        what: &'static str,
    },
}

impl Error {
    /// The server's error, if this is one.
    pub fn api(&self) -> Option<&ApiError> {
        match self {
            Self::Response(e) => e.api(),
            _ => None,
        }
    }

    /// 404 NotFound.
    pub fn is_not_found(&self) -> bool {
        self.api().is_some_and(ApiError::is_not_found)
    }

    /// 409 Conflict (a stale resourceVersion, an apply conflict).
    pub fn is_conflict(&self) -> bool {
        self.api().is_some_and(ApiError::is_conflict)
    }

    /// 409 AlreadyExists.
    pub fn is_already_exists(&self) -> bool {
        self.api().is_some_and(ApiError::is_already_exists)
    }

    /// 410 Expired or Gone: relist.
    pub fn is_expired(&self) -> bool {
        self.api().is_some_and(ApiError::is_expired)
    }

    /// A read-idle or connect timeout (a connection, or a tunnel through a
    /// proxy, not made within the connect timeout).
    pub fn is_timeout(&self) -> bool {
        match self {
            Self::Timeout { .. } => true,
            Self::Transport { source, .. } => chain(source.as_ref()).any(|e| {
                e.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
            }),
            _ => false,
        }
    }

    /// Why the proxy would not open a tunnel (its status, a malformed
    /// answer), or why a proxy setting cannot be used.
    pub fn proxy(&self) -> Option<&ProxyError> {
        match self {
            Self::Proxy(e) => Some(e),
            Self::Transport { source, .. } => {
                chain(source.as_ref()).find_map(|e| e.downcast_ref::<ProxyError>())
            }
            _ => None,
        }
    }
}

/// An error and its sources, outermost first.
fn chain<'a>(
    error: &'a (dyn std::error::Error + 'static),
) -> impl Iterator<Item = &'a (dyn std::error::Error + 'static)> {
    std::iter::successors(Some(error), |e| e.source())
}

/// `a: b: c` for an error and its sources (a cause whose text its parent
/// already shows is not repeated).
fn causes(error: &(dyn std::error::Error + Send + Sync + 'static)) -> String {
    let mut text = String::new();
    for e in chain(error) {
        let line = e.to_string();
        if text.contains(&line) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&line);
    }
    text
}

impl From<ApiError> for Error {
    fn from(e: ApiError) -> Self {
        Self::Response(e.into())
    }
}

impl From<windlass_proto::api::CallError> for Error {
    fn from(e: windlass_proto::api::CallError) -> Self {
        match e {
            windlass_proto::api::CallError::Request(e) => Self::Request(e),
            windlass_proto::api::CallError::Encode(e) => Self::Encode(e),
        }
    }
}
