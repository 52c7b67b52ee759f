//! The credentials a server generates at start: a CA, a serving certificate
//! for `127.0.0.1`, `::1` and `localhost` signed by it, a client certificate
//! (CN `windlass-admin`, O `system:masters`) signed by it, and a bearer
//! token. This module owns their generation and the rustls `ServerConfig`
//! that verifies client certificates against the CA (a client without one
//! may still authenticate with the token, so the handshake lets it through).
//! It does not own authentication of requests (see `server`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use rustls::RootCertStore;
use rustls::crypto::ring;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::WebPkiClientVerifier;

use super::StartError;

/// The CN of the generated client certificate.
pub const CLIENT_USER: &str = "windlass-admin";

/// PEM text of the generated certificates and keys, and the bearer token.
#[derive(Clone)]
pub struct Credentials {
    /// The CA certificate (PEM) clients trust.
    pub ca_pem: String,
    /// The client certificate (PEM), CN [`CLIENT_USER`].
    pub client_cert_pem: String,
    /// The client certificate's private key (PKCS#8 PEM).
    pub client_key_pem: String,
    /// The bearer token the server accepts.
    pub token: String,
    pub(super) server_cert: CertificateDer<'static>,
    pub(super) server_key: Vec<u8>,
    pub(super) ca_der: CertificateDer<'static>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("token", &"<redacted>")
            .finish_non_exhaustive()
    }
}

impl Credentials {
    /// Generates a fresh CA, serving and client certificate, and token.
    pub fn generate() -> Result<Self, StartError> {
        let cert_err = |e: rcgen::Error| StartError::Certificate(e.to_string());

        let ca_key = KeyPair::generate().map_err(cert_err)?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(cert_err)?;
        ca_params.distinguished_name = name("windlass-apiserver-ca", None);
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = ca_params.self_signed(&ca_key).map_err(cert_err)?;
        let issuer = Issuer::new(ca_params, ca_key);

        let server_key = KeyPair::generate().map_err(cert_err)?;
        let mut server_params =
            CertificateParams::new(vec!["localhost".to_owned()]).map_err(cert_err)?;
        server_params.distinguished_name = name("windlass-apiserver", None);
        server_params
            .subject_alt_names
            .push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        server_params
            .subject_alt_names
            .push(SanType::IpAddress(IpAddr::V6(Ipv6Addr::LOCALHOST)));
        server_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let server_cert = server_params
            .signed_by(&server_key, &issuer)
            .map_err(cert_err)?;

        let client_key = KeyPair::generate().map_err(cert_err)?;
        let mut client_params = CertificateParams::new(Vec::<String>::new()).map_err(cert_err)?;
        client_params.distinguished_name = name(CLIENT_USER, Some("system:masters"));
        client_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let client_cert = client_params
            .signed_by(&client_key, &issuer)
            .map_err(cert_err)?;

        Ok(Self {
            ca_pem: ca_cert.pem(),
            client_cert_pem: client_cert.pem(),
            client_key_pem: client_key.serialize_pem(),
            token: random_token()?,
            server_cert: server_cert.der().clone(),
            server_key: server_key.serialize_der(),
            ca_der: ca_cert.der().clone(),
        })
    }

    /// A rustls server configuration: the serving certificate, ALPN h2 and
    /// http/1.1, and client certificates verified against the CA (optional,
    /// since a bearer token also authenticates).
    pub(crate) fn server_config(&self) -> Result<rustls::ServerConfig, StartError> {
        let provider = Arc::new(ring::default_provider());
        let mut roots = RootCertStore::empty();
        roots
            .add(self.ca_der.clone())
            .map_err(|e| StartError::Tls(e.to_string()))?;
        let verifier =
            WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .allow_unauthenticated()
                .build()
                .map_err(|e| StartError::Tls(e.to_string()))?;
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.server_key.clone()));
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| StartError::Tls(e.to_string()))?
            .with_client_cert_verifier(verifier)
            .with_single_cert(vec![self.server_cert.clone()], key)
            .map_err(|e| StartError::Tls(e.to_string()))?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(config)
    }
}

fn name(common_name: &str, organization: Option<&str>) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    if let Some(o) = organization {
        dn.push(DnType::OrganizationName, o);
    }
    dn
}

/// A random `u64` from the ring provider (the model's seed).
pub(super) fn random_seed() -> Result<u64, StartError> {
    let mut bytes = [0u8; 8];
    ring::default_provider()
        .secure_random
        .fill(&mut bytes)
        .map_err(|_| StartError::Tls("the system random source failed".into()))?;
    Ok(u64::from_le_bytes(bytes))
}

/// 32 random bytes from the ring provider, as 64 hex digits.
fn random_token() -> Result<String, StartError> {
    let mut bytes = [0u8; 32];
    ring::default_provider()
        .secure_random
        .fill(&mut bytes)
        .map_err(|_| StartError::Tls("the system random source failed".into()))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}
