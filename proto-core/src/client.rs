//! What every runtime crate's client shares, as data: the one [`Error`]
//! type of windlass-tokio, windlass-smol (through windlass-async) and
//! windlass-blocking, and how it is classified; the [`Call`] that names a
//! request for the retry policy and the `tracing` span; the span itself
//! ([`request_span`], [`record_attempt`]); and the [`BodyLimit`] a body read
//! whole is held to.
//!
//! It owns no connection and reads no clock: a runtime's client sends,
//! times and reads, then builds its errors and records its attempts here, so
//! the three clients fail, log and classify alike.
//!
//! ```
//! use std::time::Duration;
//! use http::Method;
//! use windlass_proto::client::{BodyLimit, Error};
//!
//! let limit = BodyLimit::new(4);
//! let mut body = Vec::new();
//! limit.extend(&mut body, b"abc").unwrap();
//! let too_large = limit.extend(&mut body, b"de").unwrap_err();
//! let error = too_large.into_error(&Method::GET, "/api/v1/pods");
//! assert_eq!(error.to_string(), "GET /api/v1/pods: response body exceeds the 4-byte limit");
//!
//! let timeout = Error::Timeout {
//!     method: Method::GET,
//!     uri: "/api/v1/pods".into(),
//!     waiting_for: "response head",
//!     after: Duration::from_secs(30),
//! };
//! assert!(timeout.is_timeout());
//! ```

use std::time::Duration;

use http::StatusCode;

use crate::api::CallError;
use crate::config::{AuthError, TlsError};
use crate::informer::TransportError;
use crate::proxy::ProxyError;
use crate::request::RequestError;
use crate::response::{self, ApiError};
use crate::retry::RequestKind;
use crate::watch::DecodeError;

/// A transport's own error (hyper's, ureq's, an IO error), kept whole as a
/// source: this crate names no HTTP stack.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Anything a runtime crate's `Client`, `Api` or runner call can fail with:
/// what windlass-proto decided went wrong (a request that cannot be built,
/// the server's `Status`, a body that does not decode), and what the
/// transport saw (connect, TLS, timeouts).
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
    Encode(#[from] crate::codec::json::JsonError),
    /// A watch stream that does not decode.
    #[error("watch stream: {0}")]
    Watch(#[from] DecodeError),
    /// Discovery failed: `/api` or `/apis` refused, a malformed document, or
    /// no resource for the group/version/kind asked for.
    #[error(transparent)]
    Discovery(#[from] crate::discovery::DiscoveryError),
    /// No connection (refused, TLS, a proxy that refused the tunnel), or it
    /// broke before the response head arrived. The message shows every cause.
    #[error("{method} {uri}: {}", causes(source.as_ref()))]
    Transport {
        /// The request's method.
        method: http::Method,
        /// The request's path and query.
        uri: String,
        /// The HTTP stack's error: hyper's (windlass-tokio, windlass-smol)
        /// or ureq's (windlass-blocking).
        #[source]
        source: BoxError,
    },
    /// The connection broke while the body was being read.
    #[error("{method} {uri}: reading the response body: {source}")]
    Body {
        /// The request's method.
        method: http::Method,
        /// The request's path and query.
        uri: String,
        /// The read error: hyper's (windlass-tokio, windlass-smol) or an
        /// `std::io::Error` (windlass-blocking).
        #[source]
        source: BoxError,
    },
    /// Nothing arrived for the read-idle timeout (or the connect timeout).
    #[error("{method} {uri}: no {waiting_for} within {after:?}")]
    Timeout {
        /// The request's method.
        method: http::Method,
        /// The request's path and query.
        uri: String,
        /// What did not arrive: `connection`, `response head` or `body bytes`.
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
    Informer(#[from] crate::informer::InformerError),
    /// A leader-election configuration that breaks client-go's rules.
    #[error(transparent)]
    Election(#[from] crate::election::ConfigError),
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
        matches!(self, Self::Response(e) if e.is_not_found())
    }

    /// 409 Conflict (a stale resourceVersion, an apply conflict).
    pub fn is_conflict(&self) -> bool {
        matches!(self, Self::Response(e) if e.is_conflict())
    }

    /// 409 AlreadyExists.
    pub fn is_already_exists(&self) -> bool {
        matches!(self, Self::Response(e) if e.is_already_exists())
    }

    /// 410 Expired or Gone: relist.
    pub fn is_expired(&self) -> bool {
        matches!(self, Self::Response(e) if e.is_expired())
    }

    /// A read-idle or connect timeout (a connection, or a tunnel through a
    /// proxy, not made within the connect timeout): [`Error::Timeout`], or a
    /// transport error caused by an IO error of kind `TimedOut`.
    pub fn is_timeout(&self) -> bool {
        match self {
            Self::Timeout { .. } => true,
            Self::Transport { source, .. } => {
                io_kind_in_chain(source.as_ref(), std::io::ErrorKind::TimedOut)
            }
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

    /// This error as the reflector sees a failed list or watch: a timeout, a
    /// refused connection (the server restarting), a body cut short, or
    /// anything else by its message.
    pub fn to_transport_error(&self) -> TransportError {
        match self {
            Self::Timeout { .. } => TransportError::TimedOut,
            Self::Body { source, .. } => TransportError::Closed(source.to_string()),
            Self::Transport { source, .. }
                if io_kind_in_chain(source.as_ref(), std::io::ErrorKind::ConnectionRefused) =>
            {
                TransportError::ConnectionRefused
            }
            other => TransportError::Other(other.to_string()),
        }
    }
}

/// Whether `error` or one of its sources is an IO error of `kind`.
fn io_kind_in_chain(
    error: &(dyn std::error::Error + Send + Sync + 'static),
    kind: std::io::ErrorKind,
) -> bool {
    chain(error).any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == kind)
    })
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

impl From<CallError> for Error {
    fn from(e: CallError) -> Self {
        match e {
            CallError::Request(e) => Self::Request(e),
            CallError::Encode(e) => Self::Encode(e),
        }
    }
}

/// What a request is, for the retry policy and the tracing span.
#[derive(Clone, Copy, Debug)]
pub struct Call<'a> {
    /// The Kubernetes verb (`get`, `list`, `watch`, `create`, …).
    pub verb: &'static str,
    /// The retry policy's class of request.
    pub kind: RequestKind,
    /// The resource's plural (and subresource), for the span.
    pub resource: &'a str,
}

impl Call<'_> {
    /// Whether the response body is a long-lived stream (a watch, a followed
    /// log) that wants a connection of its own rather than the pool's.
    pub fn is_stream(&self) -> bool {
        matches!(self.kind, RequestKind::Watch | RequestKind::Stream)
    }
}

/// The `tracing` span of one request (every attempt of it): `request` at
/// debug level, with the verb and resource, and the status and latency of
/// the last attempt filled in by [`record_attempt`].
pub fn request_span(call: Call<'_>) -> tracing::Span {
    tracing::debug_span!(
        "request",
        verb = call.verb,
        resource = call.resource,
        status = tracing::field::Empty,
        latency_ms = tracing::field::Empty,
    )
}

/// Records an attempt on its request's span (the current one, as the
/// clients run): its latency, and its status when a response head arrived.
pub fn record_attempt(span: &tracing::Span, status: Option<StatusCode>, latency: Duration) {
    span.record("latency_ms", latency.as_millis() as u64);
    if let Some(status) = status {
        span.record("status", status.as_u16());
    }
}

/// The most bytes a body read whole may have (the client builder's
/// `max_body`); a larger one is [`Error::BodyTooLarge`], and is never
/// buffered past the limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BodyLimit {
    limit: usize,
}

/// A body that crossed its [`BodyLimit`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TooLarge {
    /// The limit crossed.
    pub limit: usize,
}

impl TooLarge {
    /// [`Error::BodyTooLarge`] for the request `method uri`.
    pub fn into_error(self, method: &http::Method, uri: &str) -> Error {
        Error::BodyTooLarge {
            method: method.clone(),
            uri: uri.to_owned(),
            limit: self.limit,
        }
    }
}

impl BodyLimit {
    /// At most `limit` bytes.
    pub fn new(limit: usize) -> Self {
        Self { limit }
    }

    /// The limit in bytes.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// How many bytes to let a reader read: one past the limit, so a body
    /// of exactly the limit is told apart from a larger one by its length.
    pub fn read_bound(&self) -> u64 {
        self.limit as u64 + 1
    }

    /// Whether a body of `len` bytes fits.
    pub fn check(&self, len: usize) -> Result<(), TooLarge> {
        match len > self.limit {
            true => Err(TooLarge { limit: self.limit }),
            false => Ok(()),
        }
    }

    /// Appends `chunk` to `body` if the sum fits; otherwise leaves `body`
    /// as it was.
    pub fn extend(&self, body: &mut Vec<u8>, chunk: &[u8]) -> Result<(), TooLarge> {
        self.check(body.len().saturating_add(chunk.len()))?;
        body.extend_from_slice(chunk);
        Ok(())
    }
}

#[cfg(test)]
mod tests;
