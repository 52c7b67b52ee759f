//! The TLS description of a cluster and user, and the rustls
//! [`ClientConfig`] built from it — once, here, for every adapter.
//!
//! Trust follows kubectl: when the kubeconfig gives a CA, only that CA is
//! trusted; otherwise the platform's roots (rustls-platform-verifier).
//! `insecure-skip-tls-verify` turns verification off (signatures on the
//! handshake are still checked). `tls-server-name` is the name the server
//! certificate is verified against; an IP address is verified against the
//! certificate's IP-address SANs (webpki never falls back to the CN).
//!
//! Building a `ClientConfig` opens no connection. The adapter passes the
//! [`ServerName`] from [`TlsDescription::server_name`] to rustls and, when
//! the handshake fails, can turn rustls' error into a message that says
//! which trust was used with [`TlsDescription::explain`].

use std::fmt;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};

use super::secret::Secret;

/// How to secure the connection to one API server.
#[derive(Debug, Clone, Default)]
pub struct TlsDescription {
    /// The CA certificates to trust, and only them; the platform's roots when `None`.
    pub ca: Option<Vec<CertificateDer<'static>>>,
    /// Where the CA came from, for messages (`kubeconfig …: field clusters["x"].cluster.certificate-authority-data`).
    pub trust_origin: Option<String>,
    /// The client certificate chain and key, if the user has one.
    pub identity: Option<ClientIdentity>,
    /// `insecure-skip-tls-verify`: accept any server certificate.
    pub insecure_skip_verify: bool,
    /// `tls-server-name`: verify the certificate against this name instead of the URL's host.
    pub server_name: Option<String>,
}

/// A client certificate chain and its private key.
pub struct ClientIdentity {
    /// The certificate chain, leaf first.
    pub chain: Vec<CertificateDer<'static>>,
    key: Secret<PrivateKeyDer<'static>>,
}

impl ClientIdentity {
    /// A chain and its key.
    pub fn new(chain: Vec<CertificateDer<'static>>, key: PrivateKeyDer<'static>) -> Self {
        ClientIdentity {
            chain,
            key: Secret::new(key),
        }
    }

    /// Parses PEM text: the certificate chain and the key (PKCS#8, RSA or EC).
    pub fn from_pem(cert_pem: &[u8], key_pem: &[u8]) -> Result<Self, String> {
        Ok(ClientIdentity::new(
            parse_certificates(cert_pem)?,
            parse_private_key(key_pem)?,
        ))
    }

    /// The private key, for the code that builds a TLS configuration.
    pub fn key(&self) -> &PrivateKeyDer<'static> {
        self.key.expose()
    }
}

impl Clone for ClientIdentity {
    fn clone(&self) -> Self {
        ClientIdentity::new(self.chain.clone(), self.key.expose().clone_key())
    }
}

impl fmt::Debug for ClientIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientIdentity")
            .field(
                "chain",
                &format_args!("{} certificate(s)", self.chain.len()),
            )
            .field("key", &self.key)
            .finish()
    }
}

/// A TLS problem: building the configuration, naming the server, or a
/// failed handshake explained.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// rustls refused the configuration (a key that does not match its certificate, …).
    #[error("cannot build the TLS configuration: {0}")]
    Config(#[source] rustls::Error),
    /// The host (or `tls-server-name`) is neither a DNS name nor an IP address.
    #[error("{name:?} is not a valid TLS server name (a DNS name or an IP address)")]
    ServerName {
        /// The name.
        name: String,
    },
    /// The server's certificate is not signed by a trusted CA.
    #[error("the certificate of {server} is not signed by a trusted CA ({trust})")]
    UntrustedServer {
        /// The server name that was verified.
        server: String,
        /// What was trusted.
        trust: String,
    },
    /// The server's certificate does not name the server.
    #[error(
        "the certificate of {server} is not valid for that name{presented}; set tls-server-name if the server is reached under another name"
    )]
    WrongName {
        /// The server name that was verified.
        server: String,
        /// The names the certificate presents, when rustls reports them.
        presented: String,
    },
    /// Another handshake failure.
    #[error("TLS handshake with {server} failed: {source}")]
    Handshake {
        /// The server name.
        server: String,
        /// rustls' error.
        #[source]
        source: rustls::Error,
    },
}

impl TlsDescription {
    /// The rustls configuration with the ring provider.
    pub fn client_config(&self) -> Result<ClientConfig, TlsError> {
        self.client_config_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
    }

    /// The rustls configuration with the given crypto provider. ALPN is left
    /// empty for the adapter to set.
    pub fn client_config_with_provider(
        &self,
        provider: Arc<CryptoProvider>,
    ) -> Result<ClientConfig, TlsError> {
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(TlsError::Config)?;
        let builder = if self.insecure_skip_verify {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(NoServerVerification(provider)))
        } else if let Some(ca) = &self.ca {
            let mut roots = RootCertStore::empty();
            for cert in ca {
                roots.add(cert.clone()).map_err(TlsError::Config)?;
            }
            builder.with_root_certificates(roots)
        } else {
            use rustls_platform_verifier::BuilderVerifierExt;
            builder.with_platform_verifier().map_err(TlsError::Config)?
        };
        match &self.identity {
            Some(identity) => builder
                .with_client_auth_cert(identity.chain.clone(), identity.key().clone_key())
                .map_err(TlsError::Config),
            None => Ok(builder.with_no_client_auth()),
        }
    }

    /// The same description with another client identity (an exec plugin's certificate).
    pub fn with_identity(&self, identity: Option<ClientIdentity>) -> TlsDescription {
        TlsDescription {
            identity,
            ..self.clone()
        }
    }

    /// The name to verify the server against: `tls-server-name` if set,
    /// else the URL's host (brackets around an IPv6 address removed).
    pub fn server_name(&self, host: &str) -> Result<ServerName<'static>, TlsError> {
        let name = self.server_name.as_deref().unwrap_or(host);
        let bare = name
            .strip_prefix('[')
            .and_then(|n| n.strip_suffix(']'))
            .unwrap_or(name);
        ServerName::try_from(bare.to_owned()).map_err(|_| TlsError::ServerName {
            name: name.to_owned(),
        })
    }

    /// Turns a handshake error into one that says what was trusted and
    /// which name was checked.
    pub fn explain(&self, server: &ServerName<'_>, error: rustls::Error) -> TlsError {
        let server = server.to_str().into_owned();
        let trust = match (&self.ca, &self.trust_origin) {
            (Some(_), Some(origin)) => format!("only the CA from {origin}"),
            (Some(_), None) => "only the configured CA".to_owned(),
            (None, _) => "the platform's root certificates".to_owned(),
        };
        match error {
            rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer) => {
                TlsError::UntrustedServer { server, trust }
            }
            rustls::Error::InvalidCertificate(CertificateError::NotValidForName) => {
                TlsError::WrongName {
                    server,
                    presented: String::new(),
                }
            }
            rustls::Error::InvalidCertificate(CertificateError::NotValidForNameContext {
                presented,
                ..
            }) => TlsError::WrongName {
                server,
                presented: format!(" (it names {})", presented.join(", ")),
            },
            source => TlsError::Handshake { server, source },
        }
    }
}

/// Parses every certificate in PEM text. Fails when there is none.
pub fn parse_certificates(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error_message(&e))?;
    if certs.is_empty() {
        return Err("no PEM certificate (BEGIN CERTIFICATE) found".into());
    }
    Ok(certs)
}

/// Parses the first private key in PEM text (PKCS#8, RSA/PKCS#1 or EC/SEC1)
/// and checks that ring can use it. Messages never show the key.
pub fn parse_private_key(pem: &[u8]) -> Result<PrivateKeyDer<'static>, String> {
    let key = PrivateKeyDer::from_pem_slice(pem).map_err(|e| match e {
        rustls_pki_types::pem::Error::NoItemsFound => {
            "no PEM private key (PKCS#8, RSA or EC) found".to_owned()
        }
        e => pem_error_message(&e),
    })?;
    rustls::crypto::ring::sign::any_supported_type(&key)
        .map_err(|_| "the private key is malformed or of an unsupported type".to_owned())?;
    Ok(key)
}

/// A PEM error without the bytes it saw.
fn pem_error_message(e: &rustls_pki_types::pem::Error) -> String {
    use rustls_pki_types::pem::Error as E;
    match e {
        E::MissingSectionEnd { .. } => "malformed PEM: a section has no END line".into(),
        E::IllegalSectionStart { .. } => "malformed PEM: a BEGIN line is malformed".into(),
        E::Base64Decode(_) => "malformed PEM: bad base64 inside a section".into(),
        E::NoItemsFound => "no PEM item found".into(),
        E::SectionTooLarge => "malformed PEM: a section is too large".into(),
        _ => "malformed PEM".into(),
    }
}

/// `insecure-skip-tls-verify`: any certificate is accepted, but the
/// handshake signatures are still checked against it.
#[derive(Debug)]
struct NoServerVerification(Arc<CryptoProvider>);

impl ServerCertVerifier for NoServerVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
