//! The `windlass-apiserver` binary: flags, the kubeconfig it writes, the
//! one-line request log.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(20);

/// Kills the child when the test ends, however it ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Lines of a child's stream, read on a thread so every wait can time out.
fn lines(stream: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

fn http_get(addr: &str, path: &str) -> String {
    use std::io::Write;
    let mut tcp = std::net::TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(TIMEOUT)).unwrap();
    write!(
        tcp,
        "GET {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    tcp.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn apiserver_binary_serves_plain_http_writes_a_kubeconfig_and_logs_requests() {
    let dir = std::env::temp_dir().join(format!("windlass-apiserver-bin-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let kubeconfig = dir.join("kubeconfig");
    let child = Command::new(env!("CARGO_BIN_EXE_windlass-apiserver"))
        .args(["--plain-http", "--port", "0", "--kubeconfig-out"])
        .arg(&kubeconfig)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = Running(child);
    let stdout = lines(child.0.stdout.take().unwrap());
    let stderr = lines(child.0.stderr.take().unwrap());

    let banner = stdout.recv_timeout(TIMEOUT).expect("no banner");
    let url = banner
        .strip_prefix("windlass-apiserver serving on ")
        .unwrap_or_else(|| panic!("{banner}"));
    let addr = url.strip_prefix("http://").unwrap().to_owned();
    let written = std::fs::read_to_string(&kubeconfig).unwrap();
    assert!(written.contains(&format!("server: {url}")), "{written}");

    let answer = http_get(&addr, "/api/v1/namespaces/default");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let logged = loop {
        let line = stderr.recv_timeout(TIMEOUT).expect("no request log line");
        if line.starts_with("GET ") {
            break line;
        }
    };
    let fields: Vec<&str> = logged.split(' ').collect();
    assert_eq!(
        &fields[..3],
        ["GET", "/api/v1/namespaces/default", "200"],
        "{logged}"
    );
    assert!(fields[3].ends_with("ms"), "{logged}");
    drop(child);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn apiserver_binary_rejects_unknown_flags() {
    let output = Command::new(env!("CARGO_BIN_EXE_windlass-apiserver"))
        .arg("--frobnicate")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("unknown argument \"--frobnicate\""),
        "{stderr}"
    );
    assert!(stderr.contains("usage: windlass-apiserver"), "{stderr}");
}

#[test]
fn apiserver_binary_serves_tls_by_default() {
    let child = Command::new(env!("CARGO_BIN_EXE_windlass-apiserver"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut child = Running(child);
    let stdout = lines(child.0.stdout.take().unwrap());
    let banner = stdout.recv_timeout(TIMEOUT).expect("no banner");
    assert!(
        banner.starts_with("windlass-apiserver serving on https://127.0.0.1:"),
        "{banner}"
    );
}
