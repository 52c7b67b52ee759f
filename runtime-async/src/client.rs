//! The client core: performs what windlass-proto's [`Exchange`] asks across
//! a request's attempts — wait for a limiter slot or a retry delay, run a
//! credential action, send an attempt through the [`Transport`] — and
//! reads bodies within the read timeout and the body limit. It decides none
//! of it.
//!
//! Every attempt runs its hooks and records its status and latency on the
//! request's `tracing` span. The read timeout bounds the response head and
//! then each body chunk, never the whole body: a watch that keeps sending
//! lives on.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use futures_util::lock::Mutex as AsyncMutex;
use http::{HeaderMap, Method, Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use tracing::Instrument;
use windlass_proto::api::Formats;
pub use windlass_proto::client::Call;
use windlass_proto::client::{self, BodyLimit};
use windlass_proto::codec::Format;
use windlass_proto::config::{CredentialAction, Credentials};
use windlass_proto::endpoint::Endpoint;
use windlass_proto::exchange::{self, Action, Exchange, ExchangeError, Outcome};
use windlass_proto::flowcontrol::{FlowControl, RequestLimiter};
use windlass_proto::retry::Failure;

use crate::Error;
use crate::runtime::{Purpose, Runtime, Transport, TransportError, timeout};

/// Sees every attempt of every request: add headers, log, count (the use
/// cases of client-go's `WrapTransport`), without forking the client.
pub trait Hook: Send + Sync {
    /// Before an attempt is sent, after credentials were added.
    fn on_request(&self, request: &mut Request<Full<Bytes>>) {
        let _ = request;
    }

    /// When an attempt's response head arrived (`Some(status)`) or it failed
    /// (`None`), `latency` after it was sent.
    fn on_response(
        &self,
        method: &Method,
        uri: &Uri,
        status: Option<StatusCode>,
        latency: Duration,
    ) {
        let _ = (method, uri, status, latency);
    }
}

/// A shared hook is a hook (keep an `Arc` to read what it gathered).
impl<H: Hook + ?Sized> Hook for Arc<H> {
    fn on_request(&self, request: &mut Request<Full<Bytes>>) {
        (**self).on_request(request);
    }

    fn on_response(
        &self,
        method: &Method,
        uri: &Uri,
        status: Option<StatusCode>,
        latency: Duration,
    ) {
        (**self).on_response(method, uri, status, latency);
    }
}

/// What a runtime crate's builder hands over to make a [`Client`].
pub struct ClientParts {
    /// Where the client spawns, sleeps, reads token files and runs plugins.
    pub runtime: Arc<dyn Runtime>,
    /// Its connections.
    pub transport: Box<dyn Transport>,
    /// The API server's URL.
    pub base: Endpoint,
    /// The namespace of the configuration's context.
    pub default_namespace: String,
    /// Who the client is.
    pub credentials: Credentials,
    /// Client-side QPS and burst.
    pub flow_control: FlowControl,
    /// Headers sent with every request.
    pub headers: HeaderMap,
    /// Hooks that see every attempt.
    pub hooks: Vec<Arc<dyn Hook>>,
    /// The read-idle timeout.
    pub read_timeout: Duration,
    /// The largest body read whole.
    pub max_body: usize,
    /// How many retries the retry policy may take.
    pub max_retries: u32,
    /// The encoding to ask for.
    pub format: Format,
}

/// A connection to one API server, cheap to clone (one shared pool): the
/// part of `windlass_tokio::Client` and `windlass_smol::Client` that does
/// not depend on the runtime (they deref to it).
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    runtime: Arc<dyn Runtime>,
    transport: Box<dyn Transport>,
    base: Endpoint,
    default_namespace: String,
    credentials: Mutex<Credentials>,
    /// Held while a credential action runs, so concurrent requests wait for
    /// its result instead of finding the machine busy.
    refreshing: AsyncMutex<()>,
    limiter: Mutex<RequestLimiter>,
    headers: HeaderMap,
    hooks: Vec<Arc<dyn Hook>>,
    read_timeout: Duration,
    max_body: usize,
    max_retries: u32,
    formats: Formats,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", self.inner.base.uri())
            .field("default_namespace", &self.inner.default_namespace)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client over a runtime crate's runtime and transport.
    pub fn new(parts: ClientParts) -> Self {
        Self {
            inner: Arc::new(Inner {
                runtime: parts.runtime,
                transport: parts.transport,
                base: parts.base,
                default_namespace: parts.default_namespace,
                credentials: Mutex::new(parts.credentials),
                refreshing: AsyncMutex::new(()),
                limiter: Mutex::new(RequestLimiter::new(parts.flow_control)),
                headers: parts.headers,
                hooks: parts.hooks,
                read_timeout: parts.read_timeout,
                max_body: parts.max_body,
                max_retries: parts.max_retries,
                formats: Formats::new(parts.format),
            }),
        }
    }

    /// The namespace of the configuration's context.
    pub fn default_namespace(&self) -> &str {
        &self.inner.default_namespace
    }

    /// The read-idle timeout.
    pub fn read_timeout(&self) -> Duration {
        self.inner.read_timeout
    }

    /// The encoding asked for, and the resources that fell back to JSON.
    pub fn formats(&self) -> &Formats {
        &self.inner.formats
    }

    /// Where the client's background work runs and how it sleeps.
    pub fn runtime(&self) -> &dyn Runtime {
        self.inner.runtime.as_ref()
    }

    /// Sends `request` (a path-and-query request from windlass-proto's
    /// builders), retrying as windlass-proto's policy says, and returns the
    /// success response with its body unread. Any other status becomes
    /// [`Error::Response`] with the server's `Status`.
    pub async fn send(
        &self,
        request: Request<Bytes>,
        call: Call<'_>,
    ) -> Result<Response<Incoming>, Error> {
        self.send_with_retries(request, call)
            .instrument(client::request_span(call))
            .await
    }

    /// [`send`](Self::send), then the body read whole (bounded and idle-timed).
    pub async fn send_for_bytes(
        &self,
        request: Request<Bytes>,
        call: Call<'_>,
    ) -> Result<(http::response::Parts, Bytes), Error> {
        let method = request.method().clone();
        let uri = request.uri().to_string();
        let (head, body) = self.send(request, call).await?.into_parts();
        let bytes = self.read_body(body, &method, &uri).await?;
        Ok((head, bytes))
    }

    /// Drives windlass-proto's [`Exchange`]: sleeps, performs the credential
    /// actions and sends the attempts it asks for, and feeds back what came
    /// of them. It decides nothing itself.
    async fn send_with_retries(
        &self,
        request: Request<Bytes>,
        call: Call<'_>,
    ) -> Result<Response<Incoming>, Error> {
        let uri = request.uri().to_string();
        let runtime = self.runtime();
        let mut exchange =
            Exchange::new(self.prepare(&request)?, call.kind, self.inner.max_retries);
        loop {
            // Requests share the credentials: one refresh at a time, and the
            // others wait for its result instead of sending without one.
            let refreshing = match exchange.may_use_credentials() {
                true => Some(self.inner.refreshing.lock().await),
                false => None,
            };
            let action = {
                let mut limiter = self.inner.limiter.lock().expect("limiter lock");
                let mut credentials = self.inner.credentials.lock().expect("credentials lock");
                exchange.poll_action(Instant::now(), &mut limiter, &mut credentials)
            };
            match action {
                Some(Action::Wait(at)) => {
                    drop(refreshing);
                    runtime.sleep_until(at).await;
                }
                Some(Action::Credential(CredentialAction::ReadTokenFile(path))) => {
                    let result = runtime.read_file(path).await;
                    let mut credentials = self.inner.credentials.lock().expect("credentials lock");
                    exchange.handle_token_file(&mut credentials, result, Instant::now());
                }
                Some(Action::Credential(CredentialAction::RunExec(run))) => {
                    let outcome = runtime.run_exec(run).await;
                    let mut credentials = self.inner.credentials.lock().expect("credentials lock");
                    let (now, wall_now) = (Instant::now(), SystemTime::now());
                    exchange.handle_exec_output(&mut credentials, outcome, now, wall_now);
                }
                Some(Action::Send(attempt)) => {
                    drop(refreshing);
                    let outcome = self.attempt(attempt.request, call, &uri).await;
                    exchange.handle_outcome(outcome, Instant::now());
                }
                Some(Action::Finish(result)) => return result.map_err(ExchangeError::into_error),
                None => unreachable!("an exchange has a next step after every input"),
            }
        }
    }

    /// One attempt: send `outgoing` (credentials added) on the connections
    /// its kind uses, and read the body of an answer that is not a success.
    async fn attempt(
        &self,
        outgoing: Request<Bytes>,
        call: Call<'_>,
        uri: &str,
    ) -> Outcome<Response<Incoming>, Error> {
        let method = outgoing.method().clone();
        let mut outgoing = outgoing.map(Full::new);
        for hook in &self.inner.hooks {
            hook.on_request(&mut outgoing);
        }
        let purpose = match call.is_stream() {
            true => Purpose::Stream,
            false => Purpose::Request,
        };
        let sent_uri = outgoing.uri().clone();
        let started = Instant::now();
        let sent = self.inner.transport.send(outgoing, purpose);
        let result = timeout(self.runtime(), self.inner.read_timeout, sent).await;
        let latency = started.elapsed();
        let status = result
            .as_ref()
            .and_then(|r| r.as_ref().ok())
            .map(Response::status);
        for hook in &self.inner.hooks {
            hook.on_response(&method, &sent_uri, status, latency);
        }
        client::record_attempt(&tracing::Span::current(), status, latency);
        let uri = uri.to_owned();
        let response = match result {
            None => {
                let error = Error::Timeout {
                    method,
                    uri,
                    waiting_for: "response head",
                    after: self.inner.read_timeout,
                };
                return Outcome::Failed(error, Failure::Timeout);
            }
            Some(Err(TransportError::ConnectTimeout(after))) => {
                let error = Error::Timeout {
                    method,
                    uri,
                    waiting_for: "connection",
                    after,
                };
                return Outcome::Failed(error, Failure::Connect);
            }
            Some(Err(TransportError::Failed { failure, source })) => {
                let error = Error::Transport {
                    method,
                    uri,
                    source,
                };
                return Outcome::Failed(error, failure);
            }
            Some(Ok(response)) => response,
        };
        if exchange::is_success(response.status()) {
            return Outcome::Success(response);
        }
        let (head, body) = response.into_parts();
        match self.read_body(body, &method, &uri).await {
            Ok(body) => Outcome::Error(head, body),
            Err(error) => Outcome::Failed(error, Failure::EarlyEof),
        }
    }

    /// The request as the transport sends it: absolute URI under the base,
    /// the client's headers.
    fn prepare(&self, request: &Request<Bytes>) -> Result<Request<Bytes>, Error> {
        self.inner
            .base
            .prepare(request, &self.inner.headers)
            .map_err(|e| Error::BaseUrl {
                url: e.url,
                what: e.what,
            })
    }

    /// Reads a whole body, each frame within the read timeout, at most `max_body` bytes.
    pub(crate) async fn read_body(
        &self,
        mut body: Incoming,
        method: &Method,
        uri: &str,
    ) -> Result<Bytes, Error> {
        let limit = BodyLimit::new(self.inner.max_body);
        let mut buf = Vec::new();
        while let Some(chunk) = self.next_chunk(&mut body, method, uri).await? {
            limit
                .extend(&mut buf, &chunk)
                .map_err(|too_large| too_large.into_error(method, uri))?;
        }
        Ok(buf.into())
    }

    /// The next data chunk of a body (`None` at its end), within the read timeout.
    pub(crate) async fn next_chunk(
        &self,
        body: &mut Incoming,
        method: &Method,
        uri: &str,
    ) -> Result<Option<Bytes>, Error> {
        loop {
            match timeout(self.runtime(), self.inner.read_timeout, body.frame()).await {
                None => {
                    return Err(Error::Timeout {
                        method: method.clone(),
                        uri: uri.to_owned(),
                        waiting_for: "body bytes",
                        after: self.inner.read_timeout,
                    });
                }
                Some(None) => return Ok(None),
                Some(Some(Err(source))) => {
                    return Err(Error::Body {
                        method: method.clone(),
                        uri: uri.to_owned(),
                        source: Box::new(source),
                    });
                }
                Some(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data() {
                        return Ok(Some(data));
                    }
                }
            }
        }
    }
}
