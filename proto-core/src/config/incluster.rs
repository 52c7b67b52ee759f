//! In-cluster configuration: the API server from
//! `KUBERNETES_SERVICE_HOST`/`KUBERNETES_SERVICE_PORT`, the pod's
//! service-account token (re-read as it rotates), CA and namespace — as
//! client-go's `rest.InClusterConfig`.
//!
//! [`in_cluster_config`] is pure: it takes the variables' values and the
//! files' bytes. [`load::in_cluster`](super::load::in_cluster) reads them.

use std::path::{Path, PathBuf};

use super::Config;
use super::auth::{AuthConfig, Impersonation};
use super::error::{ConfigError, Origin};
use super::tls::{self, TlsDescription};

/// The service-account folder mounted into every pod.
pub const SERVICE_ACCOUNT_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";
/// The token file, re-read as the projected token rotates.
pub const TOKEN_FILE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";
/// The cluster CA bundle.
pub const CA_FILE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt";
/// The pod's namespace.
pub const NAMESPACE_FILE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";

/// What an in-cluster configuration is built from.
#[derive(Debug, Clone)]
pub struct InClusterInputs<'a> {
    /// `KUBERNETES_SERVICE_HOST`.
    pub host: Option<&'a str>,
    /// `KUBERNETES_SERVICE_PORT`.
    pub port: Option<&'a str>,
    /// The token file's bytes.
    pub token: &'a [u8],
    /// Where the token came from (kept so it is re-read as it rotates).
    pub token_file: &'a Path,
    /// The CA file's bytes, if it could be read (client-go only logs when it cannot).
    pub ca: Option<&'a [u8]>,
    /// Where the CA came from, for messages.
    pub ca_file: &'a Path,
    /// `POD_NAMESPACE`, which wins over the namespace file.
    pub pod_namespace: Option<&'a str>,
    /// The namespace file's contents.
    pub namespace_file: Option<&'a [u8]>,
}

/// Checks that the service variables are set, as client-go's
/// `ErrNotInCluster`.
pub fn service_address(host: Option<&str>, port: Option<&str>) -> Result<http::Uri, ConfigError> {
    let host = host
        .filter(|h| !h.is_empty())
        .ok_or_else(|| ConfigError::NotInCluster {
            reason: "KUBERNETES_SERVICE_HOST is not set".into(),
        })?;
    let port = port
        .filter(|p| !p.is_empty())
        .ok_or_else(|| ConfigError::NotInCluster {
            reason: "KUBERNETES_SERVICE_PORT is not set".into(),
        })?;
    // net.JoinHostPort: an IPv6 address gets brackets.
    let authority = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    format!("https://{authority}")
        .parse()
        .map_err(|e| ConfigError::Invalid {
            origin: Origin {
                field: Some("KUBERNETES_SERVICE_HOST/KUBERNETES_SERVICE_PORT".into()),
                ..Origin::default()
            },
            message: format!("{host:?}:{port:?} is not a valid address: {e}"),
        })
}

/// The in-cluster [`Config`] from its inputs.
pub fn in_cluster_config(inputs: &InClusterInputs<'_>) -> Result<Config, ConfigError> {
    let cluster_url = service_address(inputs.host, inputs.port)?;
    let token = super::auth::token_from_file_bytes(inputs.token).map_err(|message| {
        ConfigError::Invalid {
            origin: Origin::file(inputs.token_file),
            message,
        }
    })?;
    let ca = match inputs.ca {
        Some(pem) => {
            Some(
                tls::parse_certificates(pem).map_err(|message| ConfigError::Invalid {
                    origin: Origin::file(inputs.ca_file),
                    message,
                })?,
            )
        }
        None => {
            tracing::warn!(path = %inputs.ca_file.display(), "in-cluster CA file not readable; using the platform's roots");
            None
        }
    };
    let default_namespace = inputs
        .pod_namespace
        .map(str::to_owned)
        .or_else(|| {
            inputs
                .namespace_file
                .and_then(|b| std::str::from_utf8(b).ok())
                .map(|s| s.trim().to_owned())
        })
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "default".to_owned());
    Ok(Config {
        cluster_url,
        default_namespace,
        context: None,
        tls: TlsDescription {
            ca,
            trust_origin: Some(inputs.ca_file.display().to_string()),
            ..TlsDescription::default()
        },
        auth: AuthConfig::Bearer {
            token,
            file: Some(PathBuf::from(inputs.token_file)),
        },
        impersonation: Impersonation::default(),
        proxy_url: None,
        disable_compression: false,
    })
}
