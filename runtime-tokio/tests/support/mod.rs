//! A tiny local API server for the tests: it answers with a handler (a
//! replay of recorded exchanges, or a script), over plain HTTP or TLS, and
//! remembers every request it saw.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream;
use http::{HeaderMap, Method, Response, StatusCode};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;

/// The body type the test server answers with.
pub type Body = http_body_util::combinators::BoxBody<Bytes, Infallible>;

/// A request as the server saw it.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: Method,
    pub path_and_query: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub version: http::Version,
}

/// Decides the answer to one request.
pub type Handler = Arc<dyn Fn(&Seen) -> Response<Body> + Send + Sync>;

/// A running test server.
pub struct Server {
    pub addr: SocketAddr,
    pub seen: Arc<Mutex<Vec<Seen>>>,
    /// How many connections the server accepted.
    pub connections: Arc<Mutex<usize>>,
    /// The CA that signed the server certificate (TLS only), as PEM.
    pub ca_pem: Option<String>,
}

impl Server {
    pub fn url(&self) -> String {
        let scheme = if self.ca_pem.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}", self.addr)
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// A rustls client configuration trusting this server's CA (ring provider).
    pub fn client_tls(&self) -> rustls::ClientConfig {
        let mut roots = rustls::RootCertStore::empty();
        let ca = self.ca_pem.as_ref().expect("a TLS server");
        roots
            .add(CertificateDer::from_pem_slice(ca.as_bytes()).unwrap())
            .unwrap();
        rustls::ClientConfig::builder_with_provider(rustls::crypto::ring::default_provider().into())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth()
    }
}

/// A test PKI: one CA, a server certificate for localhost and 127.0.0.1,
/// and client certificates on demand.
pub struct Pki {
    pub ca_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl Pki {
    pub fn new() -> Pki {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "windlass-tokio test CA");
        let cert = params.self_signed(&key).unwrap();
        Pki {
            ca_pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    /// (certificate PEM, key PEM) for `names`, or a client named by `common_name`.
    pub fn leaf(&self, names: &[&str], common_name: &str) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    /// A server configuration (h2 and http/1.1 by ALPN); with `client_auth`,
    /// client certificates signed by the CA are required.
    pub fn server_config(&self, client_auth: bool) -> rustls::ServerConfig {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap();
        let builder = if client_auth {
            let mut roots = rustls::RootCertStore::empty();
            roots
                .add(CertificateDer::from_pem_slice(self.ca_pem.as_bytes()).unwrap())
                .unwrap();
            let verifier =
                rustls::server::WebPkiClientVerifier::builder_with_provider(roots.into(), provider)
                    .build()
                    .unwrap();
            builder.with_client_cert_verifier(verifier)
        } else {
            builder.with_no_client_auth()
        };
        let (cert, key) = self.leaf(&["localhost", "127.0.0.1"], "localhost");
        let mut config = builder
            .with_single_cert(
                vec![CertificateDer::from_pem_slice(cert.as_bytes()).unwrap()],
                PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap(),
            )
            .unwrap();
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        config
    }
}

/// Starts a server on a free loopback port (TLS when `tls` is given).
pub async fn start(handler: Handler, tls: Option<(rustls::ServerConfig, String)>) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let ca_pem = tls.as_ref().map(|(_, ca)| ca.clone());
    let acceptor = tls.map(|(config, _)| tokio_rustls::TlsAcceptor::from(Arc::new(config)));
    let log = seen.clone();
    let connections = Arc::new(Mutex::new(0));
    let accepted = connections.clone();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            *accepted.lock().unwrap() += 1;
            let handler = handler.clone();
            let log = log.clone();
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request| {
                    let handler = handler.clone();
                    let log = log.clone();
                    answer(request, handler, log)
                });
                let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                match acceptor {
                    Some(acceptor) => {
                        let Ok(tls) = acceptor.accept(tcp).await else {
                            return;
                        };
                        let _ = builder.serve_connection(TokioIo::new(tls), service).await;
                    }
                    None => {
                        let _ = builder.serve_connection(TokioIo::new(tcp), service).await;
                    }
                }
            });
        }
    });
    Server {
        addr,
        seen,
        connections,
        ca_pem,
    }
}

async fn answer(
    request: hyper::Request<Incoming>,
    handler: Handler,
    log: Arc<Mutex<Vec<Seen>>>,
) -> Result<Response<Body>, Infallible> {
    let (head, body) = request.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let seen = Seen {
        method: head.method,
        path_and_query: head
            .uri
            .path_and_query()
            .map_or("/".into(), |p| p.to_string()),
        headers: head.headers,
        body,
        version: head.version,
    };
    log.lock().unwrap().push(seen.clone());
    Ok(handler(&seen))
}

/// A JSON response whose body goes out in `chunk`-byte frames.
pub fn chunked(status: u16, body: impl Into<Bytes>, chunk: usize) -> Response<Body> {
    let body: Bytes = body.into();
    let frames: Vec<Result<Frame<Bytes>, Infallible>> = body
        .chunks(chunk.max(1))
        .map(|c| Ok(Frame::data(Bytes::copy_from_slice(c))))
        .collect();
    Response::builder()
        .status(StatusCode::from_u16(status).unwrap())
        .header("content-type", "application/json")
        .body(BodyExt::boxed(StreamBody::new(stream::iter(frames))))
        .unwrap()
}

/// A JSON response in one piece.
pub fn json(status: u16, body: impl Into<Bytes>) -> Response<Body> {
    chunked(status, body, usize::MAX)
}

/// One recorded exchange (k8s-openapi's test replays).
#[derive(Clone, Debug, serde::Deserialize)]
pub struct Exchange {
    pub request_url: String,
    pub request_method: String,
    pub request_body: Option<String>,
    pub response_status_code: u16,
    pub response_body: String,
}

/// The exchanges of a replay file under `recorded/k8s-openapi-test-replays/`,
/// or `None` when the fixtures are absent (the test then passes as skipped).
pub fn replay_file(name: &str) -> Option<Vec<Exchange>> {
    let dir = windlass_testkit::fixtures::dir()?;
    let path = dir.join("recorded/k8s-openapi-test-replays").join(name);
    let text = std::fs::read_to_string(Path::new(&path)).unwrap();
    Some(serde_json::from_str(&text).unwrap())
}

/// A handler replaying `exchanges` in order. A request that does not match
/// the next exchange (method, path, query parameters, JSON body) is answered
/// 500 and its difference pushed to `mismatches`.
pub fn replay(exchanges: Vec<Exchange>, mismatches: Arc<Mutex<Vec<String>>>) -> Handler {
    let queue = Mutex::new(VecDeque::from(exchanges));
    Arc::new(move |seen: &Seen| {
        let Some(next) = queue.lock().unwrap().pop_front() else {
            mismatches.lock().unwrap().push(format!(
                "unexpected {} {}",
                seen.method, seen.path_and_query
            ));
            return json(500, "{}");
        };
        let mut problems = Vec::new();
        if seen.method.as_str() != next.request_method {
            problems.push(format!("method {} != {}", seen.method, next.request_method));
        }
        if normalize(&seen.path_and_query) != normalize(&next.request_url) {
            problems.push(format!(
                "url {} != {}",
                seen.path_and_query, next.request_url
            ));
        }
        if let Some(expected) = next.request_body.as_deref().filter(|b| !b.is_empty()) {
            let want: serde_json::Value = serde_json::from_str(expected).unwrap();
            let got: serde_json::Value = serde_json::from_slice(&seen.body).unwrap_or_default();
            if want != got {
                problems.push(format!("body {got} != {want}"));
            }
        }
        if !problems.is_empty() {
            mismatches.lock().unwrap().push(problems.join("; "));
            return json(500, "{}");
        }
        chunked(next.response_status_code, next.response_body, 1000)
    })
}

/// A path and query with its parameters sorted and empty ones dropped
/// (the recordings write `?&watch=true`).
fn normalize(url: &str) -> (String, Vec<String>) {
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    let mut params: Vec<String> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .collect();
    params.sort();
    (path.to_owned(), params)
}

/// Runs `future` for at most `secs` seconds: every wait in a test is bounded.
pub async fn within<T>(secs: u64, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(secs), future)
        .await
        .expect("the test timed out")
}

/// What a raw TCP server does with one connection, after reading a request head.
#[derive(Clone, Debug)]
pub enum Raw {
    /// Close the connection without answering.
    Drop,
    /// Write these bytes, then keep the connection open and silent.
    WriteThenHang(&'static str),
    /// Write nothing and keep the connection open.
    Hang,
}

/// A TCP server below HTTP: connection `i` gets `script[i]` (the last entry
/// repeats). Returns its address and how many connections it accepted.
pub async fn raw_server(script: Vec<Raw>) -> (SocketAddr, Arc<Mutex<usize>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(Mutex::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        let mut held = Vec::new();
        loop {
            let Ok((mut tcp, _)) = listener.accept().await else {
                return;
            };
            let index = {
                let mut n = count.lock().unwrap();
                *n += 1;
                *n - 1
            };
            let action = script[index.min(script.len() - 1)].clone();
            let mut head = Vec::new();
            let mut buf = [0u8; 4096];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match tcp.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            match action {
                Raw::Drop => drop(tcp),
                Raw::WriteThenHang(bytes) => {
                    let _ = tcp.write_all(bytes.as_bytes()).await;
                    held.push(tcp);
                }
                Raw::Hang => held.push(tcp),
            }
        }
    });
    (addr, accepted)
}
