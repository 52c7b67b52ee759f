//! TLS from a kubeconfig, handshaking in memory against a rustls server
//! with certificates made by rcgen: CA-only trust, client certificates in
//! every key format, IP-address SANs, tls-server-name, insecure-skip, and
//! the failures (wrong CA, wrong name, missing client certificate) with the
//! errors a user reads.

mod support;

use rustls::CertificateError;
use support::{Ca, HandshakeFailure, Leaf, MemFiles, b64, handshake, server_config, test_key};
use windlass_proto::config::{Config, ConfigError, ContextOptions, Kubeconfig, TlsError};

/// A one-context kubeconfig; `cluster` and `user` are extra YAML lines.
fn kubeconfig(server: &str, cluster: &[String], user: &[String]) -> String {
    let indent = |lines: &[String]| {
        lines
            .iter()
            .map(|l| format!("    {l}\n"))
            .collect::<String>()
    };
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: {server}\n{}users:\n- name: u\n  user:\n{}contexts:\n- name: ctx\n  context: {{cluster: c, user: u}}\ncurrent-context: ctx\n",
        indent(cluster),
        if user.is_empty() {
            "    {}\n".to_owned()
        } else {
            indent(user)
        },
    )
}

fn resolve(yaml: &str) -> Result<Config, ConfigError> {
    Kubeconfig::parse(yaml.as_bytes(), Some("/kube/config".as_ref()))?
        .resolve(&ContextOptions::default(), &MemFiles::default())
}

fn ca_data(ca: &Ca) -> String {
    format!("certificate-authority-data: {}", b64(&ca.cert_pem))
}

fn client_data(leaf: &Leaf) -> Vec<String> {
    vec![
        format!("client-certificate-data: {}", b64(&leaf.cert_pem)),
        format!("client-key-data: {}", b64(&leaf.key_pem)),
    ]
}

/// Resolves, builds the ClientConfig, and handshakes against a server.
fn connect(
    config: &Config,
    server: &Leaf,
    client_ca: Option<&str>,
) -> Result<rustls::ServerConnection, TlsError> {
    let name = config
        .tls
        .server_name(config.cluster_url.host().unwrap())
        .unwrap();
    let client = config.tls.client_config().unwrap();
    handshake(client, name.clone(), server_config(server, client_ca)).map_err(|f| match f {
        HandshakeFailure::Client(e) | HandshakeFailure::Server(e) => config.tls.explain(&name, e),
    })
}

#[test]
fn tls_ca_only_trusts_the_kubeconfig_ca() {
    let ca = Ca::new("cluster-ca");
    let server = ca.server(&["kube.example"]);
    let config = resolve(&kubeconfig(
        "https://kube.example:6443",
        &[ca_data(&ca)],
        &[],
    ))
    .unwrap();
    connect(&config, &server, None).expect("a server signed by the kubeconfig's CA is trusted");
}

#[test]
fn tls_ca_from_file_is_read_and_trusted() {
    let ca = Ca::new("cluster-ca");
    let server = ca.server(&["kube.example"]);
    let yaml = kubeconfig(
        "https://kube.example",
        &["certificate-authority: pki/ca.crt".into()],
        &[],
    );
    let files = MemFiles::default().with("/kube/pki/ca.crt", &ca.cert_pem);
    let config = Kubeconfig::parse(yaml.as_bytes(), Some("/kube/config".as_ref()))
        .unwrap()
        .resolve(&ContextOptions::default(), &files)
        .unwrap();
    connect(&config, &server, None).unwrap();
}

#[test]
fn tls_wrong_ca_fails_with_a_message_naming_the_trusted_ca() {
    let ours = Ca::new("our-ca");
    let theirs = Ca::new("their-ca");
    let server = theirs.server(&["kube.example"]);
    let config = resolve(&kubeconfig(
        "https://kube.example:6443",
        &[ca_data(&ours)],
        &[],
    ))
    .unwrap();
    let error = connect(&config, &server, None).unwrap_err();
    assert!(
        matches!(error, TlsError::UntrustedServer { .. }),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(message.contains("kube.example"), "{message}");
    assert!(message.contains("not signed by a trusted CA"), "{message}");
    assert!(
        message.contains("clusters[\"c\"].cluster.certificate-authority-data"),
        "{message}"
    );
    assert!(message.contains("/kube/config"), "{message}");
}

#[test]
fn tls_wrong_name_fails_with_a_message_naming_both_names() {
    let ca = Ca::new("cluster-ca");
    let server = ca.server(&["other.example"]);
    let config = resolve(&kubeconfig(
        "https://kube.example:6443",
        &[ca_data(&ca)],
        &[],
    ))
    .unwrap();
    let error = connect(&config, &server, None).unwrap_err();
    assert!(matches!(error, TlsError::WrongName { .. }), "{error:?}");
    let message = error.to_string();
    assert!(message.contains("not valid for that name"), "{message}");
    assert!(message.contains("kube.example"), "{message}");
    assert!(message.contains("tls-server-name"), "{message}");
}

#[test]
fn tls_ip_san_matches_a_server_addressed_by_ip() {
    let ca = Ca::new("cluster-ca");
    let server = ca.server(&["10.96.0.1"]);
    let config = resolve(&kubeconfig("https://10.96.0.1:443", &[ca_data(&ca)], &[])).unwrap();
    assert!(matches!(
        config.tls.server_name("10.96.0.1").unwrap(),
        rustls_pki_types::ServerName::IpAddress(_)
    ));
    connect(&config, &server, None).unwrap();
}

#[test]
fn tls_ipv6_san_matches_a_bracketed_server() {
    let ca = Ca::new("cluster-ca");
    let server = ca.server(&["fd00::1"]);
    let config = resolve(&kubeconfig("https://[fd00::1]:6443", &[ca_data(&ca)], &[])).unwrap();
    assert_eq!(config.cluster_url.host(), Some("[fd00::1]"));
    connect(&config, &server, None).unwrap();
}

#[test]
fn tls_dns_only_certificate_does_not_match_an_ip() {
    let ca = Ca::new("cluster-ca");
    let server = ca.server(&["kubernetes.default.svc"]);
    let config = resolve(&kubeconfig("https://10.96.0.1:443", &[ca_data(&ca)], &[])).unwrap();
    let error = connect(&config, &server, None).unwrap_err();
    assert!(matches!(error, TlsError::WrongName { .. }), "{error:?}");
}

#[test]
fn tls_server_name_overrides_the_url_host() {
    let ca = Ca::new("cluster-ca");
    let server = ca.server(&["kubernetes.default.svc"]);
    let yaml = kubeconfig(
        "https://10.96.0.1:443",
        &[
            ca_data(&ca),
            "tls-server-name: kubernetes.default.svc".into(),
        ],
        &[],
    );
    let config = resolve(&yaml).unwrap();
    connect(&config, &server, None).expect("verified against tls-server-name, not the IP");
}

#[test]
fn tls_client_certificate_is_presented_for_every_key_format() {
    let ca = Ca::new("cluster-ca");
    let server = ca.server(&["kube.example"]);
    // (the key rcgen signs the certificate for, the form written in the kubeconfig)
    let cases = [
        ("p256 generated (PKCS#8)", None, None),
        ("EC SEC1", Some("ec-pkcs8.key"), Some("ec-sec1.key")),
        ("EC PKCS#8", Some("ec-pkcs8.key"), Some("ec-pkcs8.key")),
        ("RSA PKCS#1", Some("rsa-pkcs8.key"), Some("rsa-pkcs1.key")),
        ("RSA PKCS#8", Some("rsa-pkcs8.key"), Some("rsa-pkcs8.key")),
    ];
    for (label, signing, written) in cases {
        let leaf = match signing {
            None => ca.client("alice"),
            Some(k) => {
                let key = rcgen::KeyPair::from_pem(&test_key(k)).unwrap();
                let mut leaf = ca.client_with_key("alice", key);
                leaf.key_pem = test_key(written.unwrap());
                leaf
            }
        };
        let yaml = kubeconfig("https://kube.example", &[ca_data(&ca)], &client_data(&leaf));
        let config = resolve(&yaml).unwrap_or_else(|e| panic!("{label}: {e}"));
        let conn = connect(&config, &server, Some(&ca.cert_pem))
            .unwrap_or_else(|e| panic!("{label}: {e}"));
        let presented = conn
            .peer_certificates()
            .expect("the server saw a client certificate");
        assert_eq!(
            presented[0],
            config.tls.identity.as_ref().unwrap().chain[0],
            "{label}"
        );
    }
}

#[test]
fn tls_client_certificate_from_files_resolves_relative_to_the_kubeconfig() {
    let ca = Ca::new("cluster-ca");
    let server = ca.server(&["kube.example"]);
    let leaf = ca.client("bob");
    let yaml = kubeconfig(
        "https://kube.example",
        &[ca_data(&ca)],
        &[
            "client-certificate: certs/bob.crt".into(),
            "client-key: certs/bob.key".into(),
        ],
    );
    let files = MemFiles::default()
        .with("/kube/certs/bob.crt", &leaf.cert_pem)
        .with("/kube/certs/bob.key", &leaf.key_pem);
    let config = Kubeconfig::parse(yaml.as_bytes(), Some("/kube/config".as_ref()))
        .unwrap()
        .resolve(&ContextOptions::default(), &files)
        .unwrap();
    let conn = connect(&config, &server, Some(&ca.cert_pem)).unwrap();
    assert!(conn.peer_certificates().is_some());
}

#[test]
fn tls_server_requiring_a_client_certificate_rejects_a_config_without_one() {
    let ca = Ca::new("cluster-ca");
    let server = ca.server(&["kube.example"]);
    let config = resolve(&kubeconfig("https://kube.example", &[ca_data(&ca)], &[])).unwrap();
    let name = config.tls.server_name("kube.example").unwrap();
    let result = handshake(
        config.tls.client_config().unwrap(),
        name,
        server_config(&server, Some(&ca.cert_pem)),
    );
    assert!(
        matches!(
            result,
            Err(HandshakeFailure::Server(
                rustls::Error::NoCertificatesPresented
            ))
        ),
        "{result:?}"
    );
}

#[test]
fn tls_client_key_not_matching_its_certificate_is_a_config_error() {
    let ca = Ca::new("cluster-ca");
    let mut leaf = ca.client("carol");
    leaf.key_pem = ca.client("mallory").key_pem;
    let config = resolve(&kubeconfig(
        "https://kube.example",
        &[ca_data(&ca)],
        &client_data(&leaf),
    ))
    .unwrap();
    let error = config.tls.client_config().unwrap_err();
    assert!(matches!(error, TlsError::Config(_)), "{error:?}");
}

#[test]
fn tls_insecure_skip_verify_accepts_an_unknown_server() {
    let stranger = Ca::new("stranger");
    let server = stranger.server(&["whatever.example"]);
    let config = resolve(&kubeconfig(
        "https://kube.example",
        &["insecure-skip-tls-verify: yes".into()],
        &[],
    ))
    .unwrap();
    assert!(
        config.tls.insecure_skip_verify,
        "YAML 1.1 `yes` reads as true"
    );
    connect(&config, &server, None).unwrap();
}

#[test]
fn tls_ca_combined_with_insecure_skip_verify_is_refused() {
    let ca = Ca::new("cluster-ca");
    let error = resolve(&kubeconfig(
        "https://kube.example",
        &[ca_data(&ca), "insecure-skip-tls-verify: true".into()],
        &[],
    ))
    .unwrap_err();
    let message = error.to_string();
    assert!(message.contains("insecure-skip-tls-verify"), "{message}");
    assert!(message.contains("context \"ctx\""), "{message}");
}

#[test]
fn tls_platform_roots_are_used_without_a_ca_and_reject_a_private_ca() {
    let private = Ca::new("private");
    let server = private.server(&["kube.example"]);
    let config = resolve(&kubeconfig("https://kube.example", &[], &[])).unwrap();
    assert!(config.tls.ca.is_none());
    let error = connect(&config, &server, None).unwrap_err();
    let message = error.to_string();
    assert!(message.contains("kube.example"), "{message}");
    eprintln!("{error:?}");
    let TlsError::UntrustedServer { trust, .. } = &error else {
        panic!("expected an untrusted-server error, got {error:?}");
    };
    assert_eq!(trust, "the platform's root certificates");
}

#[test]
fn tls_bad_server_names_are_errors_not_panics() {
    let config = resolve(&kubeconfig(
        "https://kube.example",
        &["tls-server-name: \"bad name!\"".into()],
        &[],
    ))
    .unwrap();
    let error = config.tls.server_name("kube.example").unwrap_err();
    assert!(error.to_string().contains("bad name!"), "{error}");
}

#[test]
fn tls_bad_pem_names_the_field() {
    let garbage =
        b64("-----BEGIN CERTIFICATE-----\nnot base64 at all!!\n-----END CERTIFICATE-----\n");
    let error = resolve(&kubeconfig(
        "https://kube.example",
        &[format!("certificate-authority-data: {garbage}")],
        &[],
    ))
    .unwrap_err();
    let message = error.to_string();
    assert!(message.contains("certificate-authority-data"), "{message}");
    assert!(message.contains("PEM"), "{message}");
    let ca = Ca::new("x");
    let leaf = ca.client("x");
    let error = resolve(&kubeconfig(
        "https://kube.example",
        &[],
        &[
            format!("client-certificate-data: {}", b64(&leaf.cert_pem)),
            format!("client-key-data: {}", b64(&leaf.cert_pem)),
        ],
    ))
    .unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains("users[\"u\"].user.client-key-data"),
        "{message}"
    );
    assert!(message.contains("no PEM private key"), "{message}");
}

#[test]
fn tls_handshake_errors_that_are_not_trust_or_name_keep_rustls_error() {
    let config = resolve(&kubeconfig("https://kube.example", &[], &[])).unwrap();
    let name = config.tls.server_name("kube.example").unwrap();
    let error = config.tls.explain(
        &name,
        rustls::Error::InvalidCertificate(CertificateError::Expired),
    );
    assert!(matches!(error, TlsError::Handshake { .. }));
    assert!(error.to_string().contains("kube.example"));
}
