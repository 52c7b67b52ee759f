//! The kubeconfig a started server hands out: one cluster, a client
//! certificate user (the current context) and a bearer-token user, with
//! every certificate embedded as `*-data`. Over plain HTTP the users carry
//! no credentials (the server asks for none).

use std::fmt::Write as _;
use std::net::SocketAddr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::tls::Credentials;

fn base64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// The name of the cluster, and of the client-certificate context.
pub const CONTEXT: &str = "windlass";
/// The name of the bearer-token context.
pub const TOKEN_CONTEXT: &str = "windlass-token";

/// The kubeconfig text for a server at `addr`.
pub(super) fn render(addr: SocketAddr, credentials: Option<&Credentials>) -> String {
    let scheme = if credentials.is_some() {
        "https"
    } else {
        "http"
    };
    let mut out = String::new();
    let _ = writeln!(out, "apiVersion: v1\nkind: Config\nclusters:");
    let _ = writeln!(
        out,
        "- name: {CONTEXT}\n  cluster:\n    server: {scheme}://{addr}"
    );
    if let Some(c) = credentials {
        let _ = writeln!(
            out,
            "    certificate-authority-data: {}",
            base64(c.ca_pem.as_bytes())
        );
    }
    let _ = writeln!(out, "users:\n- name: windlass-admin\n  user:");
    match credentials {
        Some(c) => {
            let _ = writeln!(
                out,
                "    client-certificate-data: {}\n    client-key-data: {}",
                base64(c.client_cert_pem.as_bytes()),
                base64(c.client_key_pem.as_bytes())
            );
            let _ = writeln!(
                out,
                "- name: windlass-token\n  user:\n    token: {}",
                c.token
            );
        }
        None => {
            let _ = writeln!(out, "    {{}}\n- name: windlass-token\n  user: {{}}");
        }
    }
    let _ = writeln!(out, "contexts:");
    for (context, user) in [
        (CONTEXT, "windlass-admin"),
        (TOKEN_CONTEXT, "windlass-token"),
    ] {
        let _ = writeln!(
            out,
            "- name: {context}\n  context:\n    cluster: {CONTEXT}\n    user: {user}\n    namespace: default"
        );
    }
    let _ = writeln!(out, "current-context: {CONTEXT}");
    out
}
