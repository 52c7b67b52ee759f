//! A small HTTP client for the apiserver tests: one connection per request
//! (HTTP/1.1, TLS with the generated CA and optionally the client
//! certificate or the token), every wait under a timeout.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde_json::Value;
use tokio::net::TcpStream;
use windlass_testkit::apiserver::RunningServer;

/// Every wait in these tests is bounded by this.
pub const TIMEOUT: Duration = Duration::from_secs(20);

/// How the client authenticates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum As {
    /// The generated client certificate.
    Certificate,
    /// The bearer token.
    Token,
    /// Nothing (TLS without credentials, or plain HTTP).
    Anonymous,
}

/// A client for one server.
#[derive(Clone)]
pub struct Client {
    addr: std::net::SocketAddr,
    tls: Option<Arc<rustls::ClientConfig>>,
    token: Option<String>,
}

/// A response read whole.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Answer {
    /// The body as JSON (panics with the body text when it is not).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "{e}: body is not JSON: {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// `(code, reason)` of a Status body.
    pub fn status_reason(&self) -> (u16, String) {
        let v = self.json();
        assert_eq!(v["kind"], "Status", "not a Status: {v}");
        (
            v["code"].as_u64().unwrap_or(0) as u16,
            v["reason"].as_str().unwrap_or("").to_owned(),
        )
    }
}

impl Client {
    pub fn new(server: &RunningServer, auth: As) -> Self {
        let Some(creds) = server.credentials() else {
            return Self {
                addr: server.addr(),
                tls: None,
                token: None,
            };
        };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(creds.ca_pem.as_bytes()) {
            roots.add(cert.expect("CA PEM")).expect("CA cert");
        }
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_root_certificates(roots);
        let config = if auth == As::Certificate {
            let certs: Vec<CertificateDer<'static>> =
                CertificateDer::pem_slice_iter(creds.client_cert_pem.as_bytes())
                    .map(|c| c.expect("client cert PEM"))
                    .collect();
            let key = PrivateKeyDer::from_pem_slice(creds.client_key_pem.as_bytes())
                .expect("client key PEM");
            builder
                .with_client_auth_cert(certs, key)
                .expect("client auth")
        } else {
            builder.with_no_client_auth()
        };
        Self {
            addr: server.addr(),
            tls: Some(Arc::new(config)),
            token: (auth == As::Token).then(|| creds.token.clone()),
        }
    }

    /// Uses `token` as the bearer token.
    pub fn with_token(mut self, token: &str) -> Self {
        self.token = Some(token.to_owned());
        self
    }

    /// Sends a request and returns the response head and streaming body.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> http::Response<Incoming> {
        tokio::time::timeout(TIMEOUT, self.send_inner(method, path, headers, body.into()))
            .await
            .expect("request timed out")
    }

    async fn send_inner(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> http::Response<Incoming> {
        let tcp = TcpStream::connect(self.addr).await.expect("connect");
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header("host", self.addr.to_string());
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        if let Some(token) = &self.token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let request = request.body(Full::new(body)).expect("request");
        match &self.tls {
            None => {
                let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
                    .await
                    .expect("handshake");
                tokio::spawn(conn);
                send.send_request(request).await.expect("send")
            }
            Some(config) => {
                let connector = tokio_rustls::TlsConnector::from(Arc::clone(config));
                let name = ServerName::try_from("127.0.0.1").expect("server name");
                let tls = connector.connect(name, tcp).await.expect("TLS handshake");
                let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
                    .await
                    .expect("handshake");
                tokio::spawn(conn);
                send.send_request(request).await.expect("send")
            }
        }
    }

    /// Sends a request and reads the whole response.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Answer {
        let response = self.send(method, path, headers, body).await;
        let (parts, body) = response.into_parts();
        let body = tokio::time::timeout(TIMEOUT, body.collect())
            .await
            .expect("body timed out")
            .expect("body")
            .to_bytes();
        Answer {
            status: parts.status,
            headers: parts.headers,
            body,
        }
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.call(Method::GET, path, &[], Bytes::new()).await
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Answer {
        self.call(
            Method::POST,
            path,
            &[("content-type", "application/json")],
            serde_json::to_vec(body).unwrap(),
        )
        .await
    }
}

/// Reads a watch body line by line.
pub struct Lines {
    body: Incoming,
    buf: Vec<u8>,
    /// Whether the body ended with an error (the connection dropped).
    pub aborted: bool,
    pub ended: bool,
}

impl Lines {
    pub fn new(body: Incoming) -> Self {
        Self {
            body,
            buf: Vec::new(),
            aborted: false,
            ended: false,
        }
    }

    /// The next line as JSON, or `None` at the end of the stream.
    pub async fn next(&mut self) -> Option<Value> {
        self.next_within(TIMEOUT)
            .await
            .expect("no watch event in time")
    }

    /// The next line, `Ok(None)` at the end, `Err(())` if nothing came within `wait`.
    pub async fn next_within(&mut self, wait: Duration) -> Result<Option<Value>, ()> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(i) = self.buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=i).collect();
                return Ok(Some(serde_json::from_slice(&line).unwrap_or_else(|e| {
                    panic!("{e}: {}", String::from_utf8_lossy(&line))
                })));
            }
            if self.ended {
                return Ok(None);
            }
            match tokio::time::timeout_at(deadline, self.body.frame()).await {
                Err(_) => return Err(()),
                Ok(None) => self.ended = true,
                Ok(Some(Err(_))) => {
                    self.ended = true;
                    self.aborted = true;
                }
                Ok(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data() {
                        self.buf.extend_from_slice(&data);
                    }
                }
            }
        }
    }

    /// Bytes received but not yet returned as a line.
    pub fn pending(&self) -> &[u8] {
        &self.buf
    }
}
