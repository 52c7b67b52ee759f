//! Shared pieces of the config tests: the fixtures folder, temporary
//! folders, an in-memory file map, and a small PKI made with rcgen.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use windlass_proto::config::Files;

mod fixtures_dir;

/// `$WINDLASS_FIXTURES/kubeconfigs`, or `None` (after saying why) when the
/// fixtures are absent and `WINDLASS_REQUIRE_FIXTURES` is not `1`.
pub fn kubeconfig_fixtures() -> Option<PathBuf> {
    fixtures_dir::dir().map(|d| d.join("kubeconfigs"))
}

/// A folder under the system temp folder, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        let dir =
            std::env::temp_dir().join(format!("windlass-config-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub fn write(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.0.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&path, contents).unwrap();
        path
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Files held in memory.
#[derive(Default, Clone)]
pub struct MemFiles(pub HashMap<PathBuf, Vec<u8>>);

impl MemFiles {
    pub fn with(mut self, path: impl Into<PathBuf>, contents: impl AsRef<[u8]>) -> Self {
        self.0.insert(path.into(), contents.as_ref().to_vec());
        self
    }
}

impl Files for MemFiles {
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        self.0
            .get(path)
            .cloned()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such file"))
    }
}

/// A test CA.
pub struct Ca {
    pub cert_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

/// A certificate and its key, as PEM.
pub struct Leaf {
    pub cert_pem: String,
    pub key_pem: String,
}

impl Ca {
    pub fn new(name: &str) -> Ca {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key).unwrap();
        Ca {
            cert_pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    /// A server certificate for `names` (DNS names or IP addresses).
    pub fn server(&self, names: &[&str]) -> Leaf {
        let cn = names.first().copied().unwrap_or("server");
        self.leaf(
            names,
            cn,
            KeyPair::generate().unwrap(),
            ExtendedKeyUsagePurpose::ServerAuth,
        )
    }

    /// A client certificate for `user`, with a fresh P-256 key (PKCS#8).
    pub fn client(&self, user: &str) -> Leaf {
        self.client_with_key(user, KeyPair::generate().unwrap())
    }

    /// A client certificate for `user` with the given key.
    pub fn client_with_key(&self, user: &str, key: KeyPair) -> Leaf {
        self.leaf(&[], user, key, ExtendedKeyUsagePurpose::ClientAuth)
    }

    fn leaf(
        &self,
        names: &[&str],
        common_name: &str,
        key: KeyPair,
        usage: ExtendedKeyUsagePurpose,
    ) -> Leaf {
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        params.extended_key_usages = vec![usage];
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }
}

/// A test key from `tests/data`.
pub fn test_key(name: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data")
            .join(name),
    )
    .unwrap()
}

/// base64 of some bytes, as kubeconfig `*-data` fields hold them.
pub fn b64(bytes: impl AsRef<[u8]>) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Which side of an in-memory handshake failed.
#[derive(Debug)]
pub enum HandshakeFailure {
    Client(rustls::Error),
    Server(rustls::Error),
}

/// A rustls server config with the ring provider; when `client_ca` is
/// given, client certificates signed by it are required.
pub fn server_config(server: &Leaf, client_ca: Option<&str>) -> Arc<rustls::ServerConfig> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap();
    let builder = match client_ca {
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            roots
                .add(CertificateDer::from_pem_slice(ca.as_bytes()).unwrap())
                .unwrap();
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .build()
            .unwrap();
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let chain = CertificateDer::pem_slice_iter(server.cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_slice(server.key_pem.as_bytes()).unwrap();
    Arc::new(builder.with_single_cert(chain, key).unwrap())
}

/// Runs a TLS handshake between a client and a server in memory, then
/// sends one message each way. Returns the server connection (to inspect
/// the client's certificate) or which side failed.
pub fn handshake(
    client_config: rustls::ClientConfig,
    server_name: rustls_pki_types::ServerName<'static>,
    server_config: Arc<rustls::ServerConfig>,
) -> Result<rustls::ServerConnection, HandshakeFailure> {
    use std::io::{Read, Write};
    let mut client = rustls::ClientConnection::new(Arc::new(client_config), server_name)
        .map_err(HandshakeFailure::Client)?;
    let mut server =
        rustls::ServerConnection::new(server_config).map_err(HandshakeFailure::Server)?;
    client.writer().write_all(b"ping").unwrap();
    let mut got = Vec::new();
    for _ in 0..32 {
        let mut buf = Vec::new();
        while client.wants_write() {
            client.write_tls(&mut buf).unwrap();
        }
        let mut slice = &buf[..];
        while !slice.is_empty() {
            server.read_tls(&mut slice).unwrap();
        }
        if let Err(e) = server.process_new_packets() {
            return Err(HandshakeFailure::Server(e));
        }
        let mut buf = Vec::new();
        while server.wants_write() {
            server.write_tls(&mut buf).unwrap();
        }
        let mut slice = &buf[..];
        while !slice.is_empty() {
            client.read_tls(&mut slice).unwrap();
        }
        if let Err(e) = client.process_new_packets() {
            return Err(HandshakeFailure::Client(e));
        }
        let mut chunk = [0u8; 16];
        if let Ok(n) = server.reader().read(&mut chunk) {
            got.extend_from_slice(&chunk[..n]);
        }
        if !client.is_handshaking() && !server.is_handshaking() && got == b"ping" {
            return Ok(server);
        }
    }
    panic!("handshake did not finish (received {got:?})");
}
