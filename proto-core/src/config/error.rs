//! [`ConfigError`]: what went wrong while loading a configuration, and where.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// Where in the configuration a problem sits: the file, the context and the
/// field. Every part is optional because not every source has all three (an
/// in-cluster configuration has no kubeconfig file, a parse error has no
/// context yet).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Origin {
    /// The kubeconfig file (or in-cluster file) the value came from.
    pub file: Option<PathBuf>,
    /// The context being resolved.
    pub context: Option<String>,
    /// The field, spelled as in the kubeconfig: `users["admin"].client-key-data`.
    pub field: Option<String>,
}

impl Origin {
    /// An origin naming only a file.
    pub fn file(file: impl Into<PathBuf>) -> Self {
        Origin {
            file: Some(file.into()),
            ..Origin::default()
        }
    }

    /// The same origin with `field` set.
    pub fn with_field(&self, field: impl Into<String>) -> Self {
        Origin {
            field: Some(field.into()),
            ..self.clone()
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut sep = "";
        if let Some(file) = &self.file {
            write!(f, "kubeconfig {}", file.display())?;
            sep = ": ";
        }
        if let Some(context) = &self.context {
            write!(f, "{sep}context {context:?}")?;
            sep = ": ";
        }
        if let Some(field) = &self.field {
            write!(f, "{sep}field {field}")?;
            sep = ": ";
        }
        if sep.is_empty() {
            f.write_str("configuration")?;
        }
        Ok(())
    }
}

/// An error loading or resolving a configuration. Each variant names the
/// file, context and field it concerns; none carries a secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A file named by the configuration could not be read.
    #[error("{origin}: cannot read {}: {source}", path.display())]
    Read {
        /// Where the file was named.
        origin: Origin,
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A kubeconfig file is not valid YAML or JSON, or has the wrong shape.
    #[error("{origin}: malformed: {message}")]
    Malformed {
        /// The file (and document) that failed to parse.
        origin: Origin,
        /// The parser's message (without a source snippet, which could show a secret).
        message: String,
    },
    /// A value is present but wrong: bad base64, bad PEM, a duplicate name, a
    /// missing server, conflicting authentication methods.
    #[error("{origin}: {message}")]
    Invalid {
        /// Where the value sits.
        origin: Origin,
        /// What is wrong with it.
        message: String,
    },
    /// The chosen context does not exist.
    #[error("context {context:?} not found in {files}")]
    UnknownContext {
        /// The context asked for.
        context: String,
        /// The kubeconfig files searched, for the message.
        files: String,
    },
    /// No context was chosen and no file sets `current-context`.
    #[error("no context chosen and no current-context set in {files}")]
    NoCurrentContext {
        /// The kubeconfig files searched.
        files: String,
    },
    /// A user uses a legacy `auth-provider`, removed from client-go.
    #[error("{origin}: auth-provider {name:?} is no longer supported: {hint}")]
    LegacyAuthProvider {
        /// Where the user sits.
        origin: Origin,
        /// The provider name (`gcp`, `azure`, `oidc`, …).
        name: String,
        /// What replaced it.
        hint: &'static str,
    },
    /// Not running in a cluster (the service environment variables are absent).
    #[error("not running in a cluster: {reason}")]
    NotInCluster {
        /// Which variable was missing or empty.
        reason: String,
    },
    /// [`infer`](super::infer) found neither a kubeconfig nor an in-cluster
    /// environment.
    #[error("no Kubernetes configuration found; tried: {}", tried.join("; "))]
    NothingFound {
        /// What was tried and why each failed, in order.
        tried: Vec<String>,
    },
}
