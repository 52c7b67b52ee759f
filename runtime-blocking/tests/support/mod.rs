//! What the end-to-end suites share: windlass-apiserver on a tokio runtime
//! of its own (a dev-dependency only; the code under test is blocking),
//! clients from its kubeconfig, a deadline around every test body, and
//! scripted plain sockets for the cases the API server does not serve.

#![allow(dead_code)] // each test binary uses its own part

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::mpsc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use windlass_blocking::{Api, Client, ClientBuilder};
use windlass_proto::config::{Config, ContextOptions, Kubeconfig};
use windlass_proto::request::PostParams;
use windlass_testkit::apiserver::{ApiServer, ApiServerBuilder, RunningServer};

/// A running server and the runtime that drives it.
pub struct Harness {
    runtime: tokio::runtime::Runtime,
    server: Option<RunningServer>,
}

impl Harness {
    pub fn start(builder: ApiServerBuilder) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let server = runtime
            .block_on(async {
                tokio::time::timeout(Duration::from_secs(30), builder.start()).await
            })
            .expect("windlass-apiserver starts within 30 s")
            .expect("windlass-apiserver starts");
        Self {
            runtime,
            server: Some(server),
        }
    }

    pub fn default() -> Self {
        Self::start(ApiServer::builder())
    }

    pub fn server(&self) -> &RunningServer {
        self.server.as_ref().unwrap()
    }

    /// The server's current context resolved (client certificate).
    pub fn config(&self) -> Config {
        let kubeconfig = Kubeconfig::parse(self.server().kubeconfig().as_bytes(), None).unwrap();
        let no_files = |p: &std::path::Path| {
            Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                p.display().to_string(),
            ))
        };
        let config = kubeconfig
            .resolve(&ContextOptions::default(), &no_files)
            .unwrap();
        assert!(config.tls.identity.is_some(), "a client certificate");
        config
    }

    /// A client builder for the server's current context.
    pub fn builder(&self) -> ClientBuilder {
        ClientBuilder::from_config(&self.config()).unwrap()
    }

    pub fn client(&self) -> Client {
        self.builder().build().unwrap()
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            let _ = self.runtime.block_on(async {
                tokio::time::timeout(Duration::from_secs(10), server.shutdown()).await
            });
        }
    }
}

/// Runs `body` on its own thread and fails the test if it takes longer than `secs`.
pub fn within<T: Send + 'static>(secs: u64, body: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)));
    });
    match rx.recv_timeout(Duration::from_secs(secs)) {
        Ok(Ok(value)) => value,
        Ok(Err(panic)) => std::panic::resume_unwind(panic),
        Err(_) => panic!("the test body did not finish within {secs} s"),
    }
}

pub fn config_map(name: &str, data: &[(&str, &str)]) -> ConfigMap {
    ConfigMap {
        metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        data: Some(
            data.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
        ),
        ..Default::default()
    }
}

pub fn namespace(client: &Client, name: &str) {
    let namespaces: Api<Namespace> = Api::all(client.clone()).unwrap();
    let mut ns = Namespace::default();
    ns.metadata.name = Some(name.into());
    namespaces.create(&PostParams::default(), &ns).unwrap();
}

/// A plain-HTTP server on a loopback port that accepts connections and
/// hands each to `serve` on a thread of its own.
pub fn raw_server(serve: impl Fn(std::net::TcpStream) + Send + Sync + 'static) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let serve = std::sync::Arc::new(serve);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let serve = serve.clone();
            std::thread::spawn(move || serve(stream));
        }
    });
    addr
}

/// Reads a request head (up to the blank line) and returns it.
pub fn read_head(stream: &mut std::net::TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8];
    while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
        head.push(byte[0]);
    }
    String::from_utf8_lossy(&head).into_owned()
}

/// Writes one chunk of a chunked body.
pub fn write_chunk(stream: &mut std::net::TcpStream, data: &[u8]) {
    let _ = write!(stream, "{:x}\r\n", data.len());
    let _ = stream.write_all(data);
    let _ = stream.write_all(b"\r\n");
    let _ = stream.flush();
}
