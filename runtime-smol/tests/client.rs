//! windlass-smol against a scripted HTTP/1.1 server on a plain thread: the
//! subresources windlass-apiserver does not serve (logs, eviction), and what
//! the client sends on the wire.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::TryStreamExt;
use k8s_openapi::api::core::v1::Pod;
use windlass_proto::request::{DeleteParams, LogParams};
use windlass_smol::{Api, ClientBuilder};

/// One scripted answer: bytes to write, with pauses between them.
type Answer = Vec<(&'static str, Duration)>;

/// A server answering each request with the next answer (then closing the
/// connection), recording each request line and body.
fn scripted(answers: Vec<Answer>) -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for (stream, answer) in listener.incoming().zip(answers) {
            let mut stream = stream.unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request = String::new();
            let mut length = 0;
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = value.trim().parse().unwrap();
                }
                if line == "\r\n" {
                    break;
                }
                if request.is_empty() {
                    request = line.trim_end().to_owned();
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            log.lock()
                .unwrap()
                .push(format!("{request} {}", String::from_utf8_lossy(&body)));
            for (bytes, pause) in answer {
                std::thread::sleep(pause);
                stream.write_all(bytes.as_bytes()).unwrap();
                stream.flush().unwrap();
            }
        }
    });
    (addr, seen)
}

/// Runs `body` on `executor` (which also runs the client's connections), within 20 s.
fn on_smol<T>(executor: &smol::Executor<'static>, body: impl std::future::Future<Output = T>) -> T {
    smol::block_on(executor.run(smol::future::or(body, async {
        smol::Timer::after(Duration::from_secs(20)).await;
        panic!("the test did not finish within 20 s")
    })))
}

#[test]
fn client_smol_logs_whole_then_followed_in_chunks_as_they_arrive() {
    let now = Duration::ZERO;
    let (addr, seen) = scripted(vec![
        vec![(
            "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 12\r\nconnection: close\r\n\r\nline1\nline2\n",
            now,
        )],
        vec![
            (
                "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ntransfer-encoding: chunked\r\n\r\n2\r\na\n\r\n",
                now,
            ),
            ("2\r\nb\n\r\n", Duration::from_millis(100)),
            ("0\r\n\r\n", Duration::from_millis(100)),
        ],
    ]);
    let executor = Arc::new(smol::Executor::new());
    let client = ClientBuilder::new(format!("http://{addr}"), None, executor.clone())
        .build()
        .unwrap();
    let pods: Api<Pod> = Api::namespaced(client, "default").unwrap();
    let (whole, chunks) = on_smol(&executor, async {
        let whole = pods.logs("web-0", &LogParams::default()).await.unwrap();
        let follow = LogParams {
            follow: true,
            container: Some("c".into()),
            ..Default::default()
        };
        let chunks: Vec<_> = pods
            .log_stream("web-0", &follow)
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        (whole, chunks)
    });
    assert_eq!(whole, "line1\nline2\n");
    assert_eq!(chunks, ["a\n", "b\n"], "one item per chunk, as it arrived");
    let seen = seen.lock().unwrap();
    assert!(
        seen[0].starts_with("GET /api/v1/namespaces/default/pods/web-0/log "),
        "{seen:?}"
    );
    assert!(
        seen[1].contains("follow=true") && seen[1].contains("container=c"),
        "{seen:?}"
    );
}

#[test]
fn client_smol_evict_posts_an_eviction_and_returns_the_status() {
    let (addr, seen) = scripted(vec![vec![(
        "HTTP/1.1 201 Created\r\ncontent-type: application/json\r\ncontent-length: 68\r\nconnection: close\r\n\r\n{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Success\"}",
        Duration::ZERO,
    )]]);
    let executor = Arc::new(smol::Executor::new());
    let client = ClientBuilder::new(format!("http://{addr}"), None, executor.clone())
        .build()
        .unwrap();
    let pods: Api<Pod> = Api::namespaced(client, "default").unwrap();
    let status = on_smol(&executor, pods.evict("web-0", &DeleteParams::default())).unwrap();
    assert_eq!(status.status.as_deref(), Some("Success"));
    let seen = seen.lock().unwrap();
    assert!(
        seen[0].starts_with("POST /api/v1/namespaces/default/pods/web-0/eviction "),
        "{seen:?}"
    );
    assert!(seen[0].contains("\"kind\":\"Eviction\""), "{seen:?}");
}
