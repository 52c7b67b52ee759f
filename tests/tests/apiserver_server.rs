//! windlass-apiserver's start, authentication, kubeconfig, request log and shutdown.

mod apiserver_support;

use std::sync::{Arc, Mutex};

use apiserver_support::{As, Client, Lines, TIMEOUT};
use bytes::Bytes;
use http::{Method, StatusCode};
use windlass_testkit::apiserver::ApiServer;

#[tokio::test]
async fn apiserver_tls_refuses_unauthenticated_requests_with_401() {
    let server = ApiServer::builder().start().await.unwrap();
    assert!(server.url().starts_with("https://127.0.0.1:"));

    let anonymous = Client::new(&server, As::Anonymous)
        .get("/api/v1/namespaces")
        .await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    assert_eq!(anonymous.status_reason(), (401, "Unauthorized".to_owned()));

    let wrong = Client::new(&server, As::Anonymous)
        .with_token("not-the-token")
        .get("/api/v1/namespaces")
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);

    let by_token = Client::new(&server, As::Token)
        .get("/api/v1/namespaces")
        .await;
    assert_eq!(by_token.status, StatusCode::OK);
    assert_eq!(by_token.json()["kind"], "NamespaceList");

    let by_cert = Client::new(&server, As::Certificate)
        .get("/api/v1/namespaces/default")
        .await;
    assert_eq!(by_cert.status, StatusCode::OK);
    assert_eq!(by_cert.json()["metadata"]["name"], "default");
    server.shutdown().await;
}

#[tokio::test]
async fn apiserver_tls_rejects_a_client_certificate_from_another_ca() {
    let server = ApiServer::builder().start().await.unwrap();
    let other = ApiServer::builder().start().await.unwrap();
    // A client certificate signed by `other`'s CA, trusting `server`'s CA.
    let creds = server.credentials().unwrap().clone();
    let foreign = other.credentials().unwrap();
    let mut mixed = creds.clone();
    mixed.client_cert_pem = foreign.client_cert_pem.clone();
    mixed.client_key_pem = foreign.client_key_pem.clone();
    let config = {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(mixed.ca_pem.as_bytes()).unwrap())
            .unwrap();
        rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_client_auth_cert(
            vec![CertificateDer::from_pem_slice(mixed.client_cert_pem.as_bytes()).unwrap()],
            PrivateKeyDer::from_pem_slice(mixed.client_key_pem.as_bytes()).unwrap(),
        )
        .unwrap()
    };
    let tcp = tokio::net::TcpStream::connect(server.addr()).await.unwrap();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    // TLS 1.3: the server's verdict on the client certificate arrives with the first read.
    let outcome = tokio::time::timeout(TIMEOUT, async {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut tls = connector.connect(name, tcp).await?;
        tls.write_all(b"GET /version HTTP/1.1\r\nhost: x\r\n\r\n")
            .await?;
        let mut buf = [0u8; 64];
        let n = tls.read(&mut buf).await?;
        Ok::<usize, std::io::Error>(n)
    })
    .await
    .expect("handshake timed out");
    assert!(
        outcome.is_err() || outcome.as_ref().is_ok_and(|n| *n == 0),
        "a foreign client certificate must be refused, got {outcome:?}"
    );
    server.shutdown().await;
    other.shutdown().await;
}

#[tokio::test]
async fn apiserver_plain_http_serves_without_credentials() {
    let server = ApiServer::builder().tls(false).start().await.unwrap();
    assert!(server.url().starts_with("http://127.0.0.1:"));
    assert!(server.credentials().is_none());
    let answer = Client::new(&server, As::Anonymous).get("/version").await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.json()["major"], "1");
    assert!(
        server
            .kubeconfig()
            .contains(&format!("server: {}", server.url()))
    );
    server.shutdown().await;
}

#[tokio::test]
async fn apiserver_kubeconfig_embeds_ca_client_certificate_and_token() {
    use base64::Engine as _;
    let server = ApiServer::builder().start().await.unwrap();
    let kubeconfig = server.kubeconfig();
    let creds = server.credentials().unwrap();
    let field = |name: &str| -> Vec<String> {
        kubeconfig
            .lines()
            .filter_map(|l| l.trim().strip_prefix(name).map(|v| v.trim().to_owned()))
            .collect()
    };
    let decode = |v: &str| {
        String::from_utf8(base64::engine::general_purpose::STANDARD.decode(v).unwrap()).unwrap()
    };
    assert_eq!(
        decode(&field("certificate-authority-data:")[0]),
        creds.ca_pem
    );
    assert_eq!(
        decode(&field("client-certificate-data:")[0]),
        creds.client_cert_pem
    );
    assert_eq!(decode(&field("client-key-data:")[0]), creds.client_key_pem);
    assert_eq!(field("token:"), std::slice::from_ref(&creds.token));
    assert_eq!(field("current-context:"), ["windlass"]);
    assert_eq!(field("server:"), [server.url()]);
    server.shutdown().await;
}

#[tokio::test]
async fn apiserver_request_log_has_method_path_status_and_latency() {
    let records = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&records);
    let server = ApiServer::builder()
        .tls(false)
        .log_requests(move |r| sink.lock().unwrap().push(r.to_string()))
        .start()
        .await
        .unwrap();
    let client = Client::new(&server, As::Anonymous);
    client.get("/api/v1/namespaces?limit=1").await;
    client.get("/api/v1/nothing").await;
    let records = records.lock().unwrap().clone();
    assert_eq!(records.len(), 2, "{records:?}");
    let fields: Vec<&str> = records[0].split(' ').collect();
    assert_eq!(&fields[..3], ["GET", "/api/v1/namespaces?limit=1", "200"]);
    assert!(fields[3].ends_with("ms"), "{}", records[0]);
    assert!(records[1].starts_with("GET /api/v1/nothing 404 "));
    server.shutdown().await;
}

#[tokio::test]
async fn apiserver_shutdown_ends_open_watch_streams() {
    let server = ApiServer::builder().tls(false).start().await.unwrap();
    let client = Client::new(&server, As::Anonymous);
    let response = client
        .send(
            Method::GET,
            "/api/v1/namespaces/default/configmaps?watch=1",
            &[],
            Bytes::new(),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let mut lines = Lines::new(response.into_body());
    tokio::time::timeout(TIMEOUT, server.shutdown())
        .await
        .expect("shutdown timed out");
    assert_eq!(lines.next().await, None, "the stream ends at shutdown");
}

#[tokio::test]
async fn apiserver_start_on_a_taken_port_is_an_error() {
    let server = ApiServer::builder().tls(false).start().await.unwrap();
    let err = ApiServer::builder()
        .tls(false)
        .port(server.addr().port())
        .start()
        .await
        .unwrap_err();
    assert!(err.to_string().starts_with("listen on 127.0.0.1:"), "{err}");
    server.shutdown().await;
}

#[tokio::test]
async fn apiserver_drops_a_client_that_never_finishes_its_request_head() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = ApiServer::builder()
        .tls(false)
        .header_timeout(std::time::Duration::from_millis(200))
        .start()
        .await
        .unwrap();
    let mut tcp = tokio::net::TcpStream::connect(server.addr()).await.unwrap();
    tcp.write_all(b"GET /version HTTP/1.1\r\nhost: x\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    // Closed (or reset) by the server: either way the read ends.
    let _ = tokio::time::timeout(TIMEOUT, tcp.read_to_end(&mut buf))
        .await
        .expect("the server kept a half-sent request open");
    assert!(!String::from_utf8_lossy(&buf).contains("200 OK"), "{buf:?}");
    server.shutdown().await;
}

#[tokio::test]
async fn apiserver_answers_garbage_bytes_without_hanging() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = ApiServer::builder().tls(false).start().await.unwrap();
    let mut tcp = tokio::net::TcpStream::connect(server.addr()).await.unwrap();
    tcp.write_all(b"\x00\xff garbage \r\n\r\n").await.unwrap();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(TIMEOUT, tcp.read_to_end(&mut buf))
        .await
        .expect("the server kept a garbage connection open");
    let text = String::from_utf8_lossy(&buf);
    assert!(
        text.is_empty() || text.starts_with("HTTP/1.1 400"),
        "{text}"
    );
    // The server still serves.
    let answer = Client::new(&server, As::Anonymous).get("/version").await;
    assert_eq!(answer.status, StatusCode::OK);
    server.shutdown().await;
}
