//! The HTTP client: a ureq 3 `Agent` (HTTP/1.1, rustls with ring) with our
//! CA and client certificate, and the loop that performs what windlass-proto
//! asks between attempts — wait for the client-side limiter, run a credential
//! action, wait out the retry policy's delay. It decides none of it.
//!
//! Timeouts: `timeout_connect`, and `timeout_per_read` as the read-idle
//! timeout for response heads, bodies and watches alike. Never a global or
//! per-call timeout: they would count the whole life of a watch.

use std::io::Read;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{HeaderValue, USER_AGENT};
use http::{HeaderMap, Method, Request, Response, StatusCode, Uri};
use ureq::tls::{Certificate, ClientCert, PrivateKey, RootCerts, TlsConfig};
use ureq::{Agent, Body};
use windlass_proto::api::Formats;
use windlass_proto::codec::Format;
use windlass_proto::config::{
    AuthConfig, Config, CredentialAction, Credentials, ExecOutcome, ExecRequest, Impersonation,
    Secret, TlsDescription,
};
use windlass_proto::flowcontrol::{FlowControl, RequestLimiter};
use windlass_proto::response::{self, ApiError};
use windlass_proto::retry::{DEFAULT_MAX_RETRIES, Decision, Failure, RequestKind, Retry};

use crate::Error;

/// The default read-idle timeout: a little under the API server's 5-minute
/// watch timeout, as in windlass-tokio.
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(295);
/// The default connect timeout.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// The default limit of a body read whole (1 GiB).
pub const DEFAULT_MAX_BODY: usize = 1 << 30;

/// What a request is, for the retry policy and the tracing span.
#[derive(Clone, Copy, Debug)]
pub struct Call<'a> {
    /// The Kubernetes verb (`get`, `list`, `watch`, `create`, …).
    pub verb: &'static str,
    /// The retry policy's class of request.
    pub kind: RequestKind,
    /// The resource's plural, for the span.
    pub resource: &'a str,
}

/// A connection pool to one API server, cheap to clone.
#[derive(Clone)]
pub struct Client {
    inner: std::sync::Arc<Inner>,
}

struct Inner {
    agent: Agent,
    base: Uri,
    default_namespace: String,
    credentials: Mutex<Credentials>,
    /// Held while a credential action runs, so concurrent requests wait for it.
    refreshing: Mutex<()>,
    limiter: Mutex<RequestLimiter>,
    headers: HeaderMap,
    read_timeout: Duration,
    max_body: usize,
    max_retries: u32,
    formats: Formats,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.inner.base)
            .field("default_namespace", &self.inner.default_namespace)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client for `base` with default settings; see [`ClientBuilder`].
    pub fn new(base: impl Into<String>, tls: Option<TlsDescription>) -> Result<Self, Error> {
        ClientBuilder::new(base, tls).build()
    }

    /// A client for a resolved [`Config`]; see [`ClientBuilder::from_config`].
    pub fn from_config(config: &Config) -> Result<Self, Error> {
        ClientBuilder::from_config(config)?.build()
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

    /// Sends `request` (a path-and-query request from windlass-proto),
    /// retrying as windlass-proto's policy says, and returns the success
    /// response with its body unread. Any other status becomes
    /// [`Error::Response`] with the server's `Status`.
    pub fn send(&self, request: Request<Bytes>, call: Call<'_>) -> Result<Response<Body>, Error> {
        let _span =
            tracing::debug_span!("request", verb = call.verb, resource = call.resource).entered();
        let mut retry = Retry::with_max_retries(call.kind, self.inner.max_retries);
        let mut reauthorized = false;
        loop {
            let at = self
                .inner
                .limiter
                .lock()
                .expect("limiter lock")
                .reserve(Instant::now());
            std::thread::sleep(at.saturating_duration_since(Instant::now()));
            self.refresh_credentials();
            let (error, failure, generation) = match self.attempt(&request) {
                Ok(response) => return Ok(response),
                Err(failed) => failed,
            };
            if let (Some(api), Some(generation)) = (error.api(), generation)
                && api.http_status() == StatusCode::UNAUTHORIZED
                && !reauthorized
                && self
                    .inner
                    .credentials
                    .lock()
                    .expect("credentials lock")
                    .handle_unauthorized(generation)
            {
                reauthorized = true;
                continue;
            }
            match failure.map_or(Decision::GiveUp, |f| retry.decide(f)) {
                Decision::RetryAfter(wait) => {
                    tracing::debug!(?wait, %error, retries = retry.retries(), "retrying");
                    std::thread::sleep(wait);
                }
                Decision::GiveUp => return Err(error),
            }
        }
    }

    /// [`send`](Self::send), then the body read whole (bounded and idle-timed).
    pub fn send_for_bytes(
        &self,
        request: Request<Bytes>,
        call: Call<'_>,
    ) -> Result<(http::response::Parts, Bytes), Error> {
        let method = request.method().clone();
        let uri = request.uri().to_string();
        let (head, body) = self.send(request, call)?.into_parts();
        let bytes = self.read_body(body, &method, &uri)?;
        Ok((head, bytes))
    }

    /// One attempt. On failure: the error, what the retry policy should judge
    /// (if anything), and the credential generation that was sent.
    #[allow(clippy::type_complexity, clippy::result_large_err)] // private, once per attempt
    fn attempt(
        &self,
        request: &Request<Bytes>,
    ) -> Result<Response<Body>, (Error, Option<Failure>, Option<u64>)> {
        let method = request.method().clone();
        let uri = request.uri().to_string();
        let mut outgoing = self.prepare(request).map_err(|e| (e, None, None))?;
        let generation = self
            .inner
            .credentials
            .lock()
            .expect("credentials lock")
            .authorize(outgoing.headers_mut())
            .map_err(|e| (e.into(), None, None))?;
        let response = match self.inner.agent.run(outgoing) {
            Ok(response) => response,
            Err(source) => {
                let failure = transport_failure(&source);
                let error = if matches!(source, ureq::Error::Timeout(_)) {
                    self.timeout(method, uri, "response head")
                } else {
                    Error::Transport {
                        method,
                        uri,
                        source: Box::new(source),
                    }
                };
                return Err((error, Some(failure), Some(generation)));
            }
        };
        let status = response.status();
        tracing::Span::current().record("status", status.as_u16());
        if status.is_success() || status == StatusCode::SWITCHING_PROTOCOLS {
            return Ok(response);
        }
        let (head, body) = response.into_parts();
        let body = self
            .read_body(body, &method, &uri)
            .map_err(|e| (e, Some(Failure::EarlyEof), Some(generation)))?;
        let api = response::api_error(&method, status, &head.headers, &body)
            .unwrap_or_else(|| ApiError::from_status(Default::default(), status, &head.headers));
        let failure = Failure::from(&api);
        Err((api.into(), Some(failure), Some(generation)))
    }

    /// The request as ureq sends it: absolute URI under the base, the client's headers.
    fn prepare(&self, request: &Request<Bytes>) -> Result<Request<Vec<u8>>, Error> {
        let base = &self.inner.base;
        let prefix = base.path().trim_end_matches('/');
        let path_and_query = request.uri().path_and_query().map_or("/", |p| p.as_str());
        let uri = Uri::builder()
            .scheme(base.scheme_str().unwrap_or("https"))
            .authority(base.authority().map_or("", |a| a.as_str()))
            .path_and_query(format!("{prefix}{path_and_query}"))
            .build()
            .map_err(|_| Error::BaseUrl {
                url: base.to_string(),
                what: "cannot join the request path",
            })?;
        // ureq sends `Vec<u8>`, not `Bytes` (no `AsSendBody` for it).
        let mut outgoing = Request::builder()
            .method(request.method().clone())
            .uri(uri)
            .body(request.body().to_vec())
            .expect("method and URI come from a valid request");
        let headers = outgoing.headers_mut();
        for (name, value) in self.inner.headers.iter().chain(request.headers()) {
            headers.insert(name, value.clone());
        }
        Ok(outgoing)
    }

    fn timeout(&self, method: Method, uri: String, waiting_for: &'static str) -> Error {
        Error::Timeout {
            method,
            uri,
            waiting_for,
            after: self.inner.read_timeout,
        }
    }

    /// Reads a whole body, each read within the read timeout, at most `max_body` bytes.
    pub(crate) fn read_body(&self, body: Body, method: &Method, uri: &str) -> Result<Bytes, Error> {
        let limit = self.inner.max_body;
        let mut reader = body.into_reader().take(limit as u64 + 1);
        let mut buf = Vec::new();
        reader
            .read_to_end(&mut buf)
            .map_err(|e| self.read_error(e, method, uri))?;
        if buf.len() > limit {
            return Err(Error::BodyTooLarge {
                method: method.clone(),
                uri: uri.to_owned(),
                limit,
            });
        }
        Ok(buf.into())
    }

    /// A read error as an [`Error`]: ureq's per-read timeout is [`Error::Timeout`].
    pub(crate) fn read_error(&self, e: std::io::Error, method: &Method, uri: &str) -> Error {
        let timed_out = e.kind() == std::io::ErrorKind::TimedOut
            || e.get_ref()
                .and_then(|inner| inner.downcast_ref::<ureq::Error>())
                .is_some_and(|inner| matches!(inner, ureq::Error::Timeout(_)));
        if timed_out {
            return self.timeout(method.clone(), uri.to_owned(), "body bytes");
        }
        Error::Body {
            method: method.clone(),
            uri: uri.to_owned(),
            source: e,
        }
    }

    /// Performs whatever the credential machine asks before a request: read a
    /// token file, run an exec plugin.
    fn refresh_credentials(&self) {
        let _refreshing = self.inner.refreshing.lock().expect("refresh lock");
        loop {
            let action = self
                .inner
                .credentials
                .lock()
                .expect("credentials lock")
                .poll_action(Instant::now());
            match action {
                None => return,
                Some(CredentialAction::ReadTokenFile(path)) => {
                    let result = std::fs::read(&path);
                    let mut credentials = self.inner.credentials.lock().expect("credentials lock");
                    credentials.handle_token_file(result, Instant::now());
                }
                Some(CredentialAction::RunExec(request)) => {
                    let outcome = run_exec(request);
                    let mut credentials = self.inner.credentials.lock().expect("credentials lock");
                    // The error is kept by the machine and returned by `authorize`.
                    let _ = credentials.handle_exec_output(
                        outcome,
                        Instant::now(),
                        std::time::SystemTime::now(),
                    );
                }
            }
        }
    }
}

/// Runs an exec credential plugin.
fn run_exec(request: ExecRequest) -> ExecOutcome {
    let mut command = std::process::Command::new(&request.command);
    command.args(&request.args);
    for (name, value) in &request.env {
        command.env(name, value.expose());
    }
    command.stdin(if request.stdin {
        std::process::Stdio::inherit()
    } else {
        std::process::Stdio::null()
    });
    command.stderr(std::process::Stdio::inherit());
    let output = command.output().map(|o| (o.status.code(), o.stdout));
    ExecOutcome::from_output(output)
}

/// What a transport error was, in the retry policy's words.
fn transport_failure(error: &ureq::Error) -> Failure {
    use std::io::ErrorKind::*;
    match error {
        ureq::Error::Timeout(_) => Failure::Timeout,
        ureq::Error::HostNotFound | ureq::Error::ConnectionFailed | ureq::Error::Tls(_) => {
            Failure::Connect
        }
        ureq::Error::Rustls(_) | ureq::Error::BadUri(_) => Failure::Connect,
        ureq::Error::Io(io) => match io.kind() {
            ConnectionRefused | NotFound | AddrNotAvailable => Failure::Connect,
            UnexpectedEof => Failure::EarlyEof,
            TimedOut => Failure::Timeout,
            _ => Failure::ConnectionReset,
        },
        _ => Failure::ConnectionReset,
    }
}

/// Builds a [`Client`]: where the API server is, how to trust it, who to be,
/// and the transport's limits.
pub struct ClientBuilder {
    base: String,
    tls: Option<TlsDescription>,
    default_namespace: String,
    auth: AuthConfig,
    impersonation: Impersonation,
    flow_control: FlowControl,
    headers: HeaderMap,
    connect_timeout: Duration,
    read_timeout: Duration,
    max_body: usize,
    max_retries: u32,
    format: Format,
}

impl ClientBuilder {
    /// A client for `base` (`https://host:port`), trusting as `tls` says
    /// (`None`: the bundled web roots).
    pub fn new(base: impl Into<String>, tls: Option<TlsDescription>) -> Self {
        let mut headers = HeaderMap::new();
        headers.insert(
            USER_AGENT,
            HeaderValue::from_static(concat!("windlass-blocking/", env!("CARGO_PKG_VERSION"))),
        );
        Self {
            base: base.into(),
            tls,
            default_namespace: "default".into(),
            auth: AuthConfig::None,
            impersonation: Impersonation::default(),
            flow_control: FlowControl::default(),
            headers,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            read_timeout: DEFAULT_READ_TIMEOUT,
            max_body: DEFAULT_MAX_BODY,
            max_retries: DEFAULT_MAX_RETRIES,
            format: Format::Json,
        }
    }

    /// A client for a resolved kubeconfig context or in-cluster config.
    /// `tls-server-name` and `proxy-url` are refused rather than ignored:
    /// ureq's TLS configuration has no server-name override, and proxies are
    /// not wired yet.
    pub fn from_config(config: &Config) -> Result<Self, Error> {
        if let Some(proxy) = &config.proxy_url {
            return Err(Error::Unsupported {
                what: "proxy-url",
                detail: format!("{proxy:?}"),
            });
        }
        if let Some(name) = &config.tls.server_name {
            return Err(Error::Unsupported {
                what: "tls-server-name",
                detail: name.clone(),
            });
        }
        let mut builder = Self::new(config.cluster_url.to_string(), Some(config.tls.clone()));
        builder.default_namespace = config.default_namespace.clone();
        builder.auth = config.auth.clone();
        builder.impersonation = config.impersonation.clone();
        Ok(builder)
    }

    /// Authenticates with a bearer token.
    pub fn bearer_token(mut self, token: impl Into<String>) -> Self {
        self.auth = AuthConfig::Bearer {
            token: Secret::new(token.into()),
            file: None,
        };
        self
    }

    /// The namespace `Api::default_namespaced` uses.
    pub fn default_namespace(mut self, namespace: impl Into<String>) -> Self {
        self.default_namespace = namespace.into();
        self
    }

    /// The client-side rate limit (client-go's QPS and burst).
    pub fn flow_control(mut self, flow_control: FlowControl) -> Self {
        self.flow_control = flow_control;
        self
    }

    /// A header sent with every request.
    pub fn header(mut self, name: http::HeaderName, value: HeaderValue) -> Self {
        self.headers.insert(name, value);
        self
    }

    /// How long connecting may take.
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
        let base: Uri = self.base.parse().map_err(|_| Error::BaseUrl {
            url: self.base.clone(),
            what: "not a URL",
        })?;
        if !matches!(base.scheme_str(), Some("http" | "https")) || base.authority().is_none() {
            return Err(Error::BaseUrl {
                url: self.base,
                what: "needs http:// or https:// and a host",
            });
        }
        let agent = Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .user_agent(ureq::config::AutoHeaderValue::None)
            .timeout_connect(Some(self.connect_timeout))
            .timeout_per_read(Some(self.read_timeout))
            .tls_config(tls_config(self.tls.as_ref())?)
            .build()
            .new_agent();
        let credentials = Credentials::new(&self.auth, &self.impersonation, false, Instant::now());
        Ok(Client {
            inner: std::sync::Arc::new(Inner {
                agent,
                base,
                default_namespace: self.default_namespace,
                credentials: Mutex::new(credentials),
                refreshing: Mutex::new(()),
                limiter: Mutex::new(RequestLimiter::new(self.flow_control)),
                headers: self.headers,
                read_timeout: self.read_timeout,
                max_body: self.max_body,
                max_retries: self.max_retries,
                formats: Formats::new(self.format),
            }),
        })
    }
}

/// ureq's TLS configuration for windlass-proto's description: only the
/// kubeconfig's CA when it names one, the client certificate, the insecure flag.
fn tls_config(tls: Option<&TlsDescription>) -> Result<TlsConfig, Error> {
    let mut builder = TlsConfig::builder();
    let Some(tls) = tls else {
        return Ok(builder.build());
    };
    if let Some(ca) = &tls.ca {
        let certs: Vec<_> = ca
            .iter()
            .map(|c| Certificate::from_der(c).to_owned())
            .collect();
        builder = builder.root_certs(RootCerts::new_with_certs(&certs));
    } else {
        builder = builder.root_certs(RootCerts::WebPki);
    }
    if let Some(identity) = &tls.identity {
        use rustls_pki_types::PrivateKeyDer;
        let chain: Vec<_> = identity
            .chain
            .iter()
            .map(|c| Certificate::from_der(c).to_owned())
            .collect();
        // ureq takes a key as DER only with its `KeyKind`, which it does not
        // export; PEM carries the kind in its label.
        let (label, der) = match identity.key() {
            PrivateKeyDer::Pkcs1(k) => ("RSA PRIVATE KEY", k.secret_pkcs1_der()),
            PrivateKeyDer::Sec1(k) => ("EC PRIVATE KEY", k.secret_sec1_der()),
            PrivateKeyDer::Pkcs8(k) => ("PRIVATE KEY", k.secret_pkcs8_der()),
            other => {
                return Err(Error::Unsupported {
                    what: "client key type",
                    detail: format!("{other:?}"),
                });
            }
        };
        let key =
            PrivateKey::from_pem(pem(label, der).as_bytes()).map_err(|e| Error::Unsupported {
                what: "client key",
                detail: e.to_string(),
            })?;
        builder = builder.client_cert(Some(ClientCert::new_with_certs(&chain, key)));
    }
    Ok(builder
        .disable_verification(tls.insecure_skip_verify)
        .build())
}

/// `der` as one PEM block.
fn pem(label: &str, der: &[u8]) -> String {
    use base64::Engine;
    let text = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in text.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}
