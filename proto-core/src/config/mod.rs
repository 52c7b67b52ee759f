//! Configuration and credentials: kubeconfig files (several, merged with
//! client-go's rules), contexts, in-cluster configuration, every
//! authentication method, the TLS description turned into a rustls
//! `ClientConfig`, and proxy selection — one behaviour for every runtime.
//!
//! The logic is pure. The only IO is reading the files a configuration
//! names and the environment, in [`load`], behind the [`Files`] trait; a
//! running exec plugin is an action ([`CredentialAction::RunExec`]) the
//! adapter performs with its own process API.
//!
//! ```
//! use windlass_proto::config::{Kubeconfig, ContextOptions};
//!
//! let yaml = br#"
//! apiVersion: v1
//! kind: Config
//! clusters:
//! - name: dev
//!   cluster: {server: "https://10.0.0.1:6443", insecure-skip-tls-verify: yes}
//! users:
//! - name: dev
//!   user: {token: s3cr3t}
//! contexts:
//! - name: dev
//!   context: {cluster: dev, user: dev, namespace: apps}
//! current-context: dev
//! "#;
//! let kubeconfig = Kubeconfig::parse(yaml, None).unwrap();
//! let no_files = |p: &std::path::Path| Err(std::io::Error::new(std::io::ErrorKind::NotFound, p.display().to_string()));
//! let config = kubeconfig.resolve(&ContextOptions::default(), &no_files).unwrap();
//! assert_eq!(config.default_namespace, "apps");
//! assert!(config.tls.insecure_skip_verify);
//! assert!(!format!("{config:?}").contains("s3cr3t"));
//! ```
//!
//! What this module does not do: open connections, run processes, read the
//! clock. `Credentials` takes `now` as an argument; the adapter's TLS stack
//! performs the handshake with the `ClientConfig` built here.

mod auth;
mod error;
mod exec;
mod incluster;
mod kubeconfig;
pub mod load;
mod proxy;
mod resolve;
mod secret;
mod tls;

pub use auth::{
    AuthConfig, AuthError, CredentialAction, Credentials, EXEC_RETRY_INTERVAL, Impersonation,
    TOKEN_FILE_REFRESH, token_from_file_bytes,
};
pub use error::{ConfigError, Origin};
pub use exec::{
    EXEC_CLUSTER_EXTENSION, ExecApiVersion, ExecCredential, ExecOutcome, ExecPlugin, ExecRequest,
    InteractiveMode, MAX_EXEC_OUTPUT, parse_rfc3339,
};
pub use incluster::{
    CA_FILE, InClusterInputs, NAMESPACE_FILE, SERVICE_ACCOUNT_DIR, TOKEN_FILE, in_cluster_config,
};
pub use kubeconfig::{
    AuthInfo, AuthProviderConfig, Cluster, Context, ExecConfig, ExecEnvVar, Kubeconfig,
    NamedAuthInfo, NamedCluster, NamedContext, NamedExtension,
};
pub use load::{Environment, Files, LocalFiles, infer};
pub use proxy::{ProxyEnv, ProxyScheme, ProxyUrl, select_proxy, use_proxy};
pub use resolve::ContextOptions;
pub use secret::Secret;
pub use tls::{ClientIdentity, TlsDescription, TlsError, parse_certificates, parse_private_key};

/// Everything needed to talk to one API server as one user.
#[derive(Debug, Clone)]
pub struct Config {
    /// The API server's base URL.
    pub cluster_url: http::Uri,
    /// The namespace requests use when none is given.
    pub default_namespace: String,
    /// The kubeconfig context it came from (`None` in-cluster).
    pub context: Option<String>,
    /// Trust, client certificate, server name.
    pub tls: TlsDescription,
    /// The authentication method.
    pub auth: AuthConfig,
    /// Who to act as.
    pub impersonation: Impersonation,
    /// The cluster's `proxy-url`; when `None`, see [`select_proxy`] for the environment's.
    pub proxy_url: Option<ProxyUrl>,
    /// `disable-compression`: do not ask for gzip responses.
    pub disable_compression: bool,
}

impl Config {
    /// A credential machine for this configuration.
    pub fn credentials(&self, stdin_is_terminal: bool, now: std::time::Instant) -> Credentials {
        Credentials::new(&self.auth, &self.impersonation, stdin_is_terminal, now)
    }

    /// The proxy for requests to this cluster, given the environment's proxy variables.
    pub fn proxy(&self, env: &ProxyEnv) -> Result<Option<ProxyUrl>, String> {
        select_proxy(self.proxy_url.as_ref(), env, &self.cluster_url)
    }
}
