//! The kubeconfig file model, its decoding (YAML or JSON, UTF-8 or UTF-16 with
//! a BOM, one or several documents) and client-go's merge rules.
//!
//! This module is pure: it takes bytes and a path (for messages and for
//! resolving relative paths) and returns a [`Kubeconfig`]. Reading files is
//! [`load`](super::load)'s job; choosing a context and turning it into a
//! [`Config`](super::Config) is [`resolve`](super::resolve)'s.

use std::collections::{BTreeMap, HashSet};
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Deserializer};

use super::error::{ConfigError, Origin};
use super::secret::Secret;

/// A kubeconfig: one file, one document, or several merged.
///
/// Unknown fields are ignored, as kubectl ignores them.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Kubeconfig {
    /// `kind` (normally `Config`).
    #[serde(default)]
    pub kind: Option<String>,
    /// `apiVersion` (normally `v1`).
    #[serde(default, rename = "apiVersion")]
    pub api_version: Option<String>,
    /// The named clusters.
    #[serde(default, deserialize_with = "null_default")]
    pub clusters: Vec<NamedCluster>,
    /// The named users (client-go's `AuthInfo`s).
    #[serde(default, deserialize_with = "null_default")]
    pub users: Vec<NamedAuthInfo>,
    /// The named contexts.
    #[serde(default, deserialize_with = "null_default")]
    pub contexts: Vec<NamedContext>,
    /// `current-context`.
    #[serde(default)]
    pub current_context: Option<String>,
    /// The files this kubeconfig was read from, in precedence order.
    #[serde(skip)]
    pub files: Vec<PathBuf>,
}

/// A cluster and its name.
#[derive(Debug, Clone, Deserialize)]
pub struct NamedCluster {
    /// The name contexts refer to.
    pub name: String,
    /// The cluster (absent or null reads as empty).
    #[serde(default, deserialize_with = "null_default")]
    pub cluster: Cluster,
    /// The file it came from.
    #[serde(skip)]
    pub file: Option<PathBuf>,
}

/// How to reach an API server.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Cluster {
    /// `server`: the API server's URL.
    #[serde(default)]
    pub server: Option<String>,
    /// `tls-server-name`: the name to verify the server certificate against.
    #[serde(default)]
    pub tls_server_name: Option<String>,
    /// `insecure-skip-tls-verify` (YAML 1.1 `yes` reads as true).
    #[serde(default, deserialize_with = "null_default")]
    pub insecure_skip_tls_verify: bool,
    /// `certificate-authority`: a PEM file.
    #[serde(default)]
    pub certificate_authority: Option<String>,
    /// `certificate-authority-data`: base64 of PEM.
    #[serde(default)]
    pub certificate_authority_data: Option<String>,
    /// `proxy-url`.
    #[serde(default)]
    pub proxy_url: Option<String>,
    /// `disable-compression`.
    #[serde(default, deserialize_with = "null_default")]
    pub disable_compression: bool,
    /// `extensions`: named opaque values; `client.authentication.k8s.io/exec`
    /// is passed to exec plugins.
    #[serde(default, deserialize_with = "null_default")]
    pub extensions: Vec<NamedExtension>,
}

/// A named extension (an opaque value).
#[derive(Debug, Clone, Deserialize)]
pub struct NamedExtension {
    /// Its name.
    pub name: String,
    /// Its value, as JSON.
    #[serde(default)]
    pub extension: serde_json::Value,
}

/// A user (client-go's `AuthInfo`) and its name.
#[derive(Debug, Clone, Deserialize)]
pub struct NamedAuthInfo {
    /// The name contexts refer to.
    pub name: String,
    /// The credentials (absent or null reads as empty).
    #[serde(default, deserialize_with = "null_default")]
    pub user: AuthInfo,
    /// The file it came from.
    #[serde(skip)]
    pub file: Option<PathBuf>,
}

/// Credentials and impersonation for one user.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct AuthInfo {
    /// `client-certificate`: a PEM file.
    #[serde(default)]
    pub client_certificate: Option<String>,
    /// `client-certificate-data`: base64 of PEM.
    #[serde(default)]
    pub client_certificate_data: Option<String>,
    /// `client-key`: a PEM file.
    #[serde(default)]
    pub client_key: Option<String>,
    /// `client-key-data`: base64 of PEM.
    #[serde(default)]
    pub client_key_data: Option<Secret<String>>,
    /// `token`: a bearer token.
    #[serde(default)]
    pub token: Option<Secret<String>>,
    /// `tokenFile`: a file holding a bearer token, re-read as it rotates.
    #[serde(default, rename = "tokenFile")]
    pub token_file: Option<String>,
    /// `as`: the user to impersonate.
    #[serde(default, rename = "as")]
    pub impersonate: Option<String>,
    /// `as-uid`: the UID to impersonate.
    #[serde(default, rename = "as-uid")]
    pub impersonate_uid: Option<String>,
    /// `as-groups`: the groups to impersonate.
    #[serde(default, rename = "as-groups", deserialize_with = "null_default")]
    pub impersonate_groups: Vec<String>,
    /// `as-user-extra`: extra fields to impersonate.
    #[serde(default, rename = "as-user-extra", deserialize_with = "null_default")]
    pub impersonate_extra: BTreeMap<String, Vec<String>>,
    /// `username` for basic auth.
    #[serde(default)]
    pub username: Option<String>,
    /// `password` for basic auth.
    #[serde(default)]
    pub password: Option<Secret<String>>,
    /// `auth-provider`: the legacy in-tree providers (gcp, azure, oidc).
    #[serde(default)]
    pub auth_provider: Option<AuthProviderConfig>,
    /// `exec`: a credential plugin.
    #[serde(default)]
    pub exec: Option<ExecConfig>,
}

/// A legacy `auth-provider` entry.
#[derive(Debug, Clone, Deserialize)]
pub struct AuthProviderConfig {
    /// `gcp`, `azure`, `oidc`, …
    pub name: String,
    /// Its settings (they hold tokens, so they are secret).
    #[serde(default)]
    pub config: Option<Secret<BTreeMap<String, String>>>,
}

/// An exec credential plugin (`user.exec`).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecConfig {
    /// The command; a path with a separator is resolved against the kubeconfig's folder.
    pub command: String,
    /// Its arguments.
    #[serde(default, deserialize_with = "null_default")]
    pub args: Vec<String>,
    /// Extra environment variables (their values may be secret).
    #[serde(default, deserialize_with = "null_default")]
    pub env: Vec<ExecEnvVar>,
    /// `client.authentication.k8s.io/v1` or `/v1beta1`.
    #[serde(default)]
    pub api_version: Option<String>,
    /// Printed when the command is missing.
    #[serde(default)]
    pub install_hint: Option<String>,
    /// Whether the plugin gets the cluster's details in `KUBERNETES_EXEC_INFO`.
    #[serde(default, deserialize_with = "null_default")]
    pub provide_cluster_info: bool,
    /// `Never`, `IfAvailable` or `Always`.
    #[serde(default)]
    pub interactive_mode: Option<String>,
}

/// One environment variable for an exec plugin.
#[derive(Debug, Clone, Deserialize)]
pub struct ExecEnvVar {
    /// The name.
    pub name: String,
    /// The value (may be a secret, so it is redacted).
    #[serde(default)]
    pub value: Secret<String>,
}

/// A context: a cluster, a user and a namespace.
#[derive(Debug, Clone, Deserialize)]
pub struct NamedContext {
    /// The name.
    pub name: String,
    /// The context (absent or null reads as empty).
    #[serde(default, deserialize_with = "null_default")]
    pub context: Context,
    /// The file it came from.
    #[serde(skip)]
    pub file: Option<PathBuf>,
}

/// The body of a context.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Context {
    /// The cluster's name.
    #[serde(default)]
    pub cluster: String,
    /// The user's name.
    #[serde(default)]
    pub user: String,
    /// The default namespace.
    #[serde(default)]
    pub namespace: Option<String>,
}

/// A value that may be `null`, read as its default.
fn null_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

impl Kubeconfig {
    /// Parses one kubeconfig file's bytes: YAML or JSON, UTF-8 or UTF-16
    /// (LE or BE, with a BOM), one or several `---`-separated documents
    /// (merged in order, as if they were files). `path` names the file in
    /// messages and anchors relative paths; pass `None` for text that came
    /// from no file (relative paths then stay as written).
    pub fn parse(bytes: &[u8], path: Option<&Path>) -> Result<Kubeconfig, ConfigError> {
        let origin = Origin {
            file: path.map(Path::to_path_buf),
            ..Origin::default()
        };
        let text = decode_text(bytes).map_err(|message| ConfigError::Malformed {
            origin: origin.clone(),
            message,
        })?;
        let mut options = serde_saphyr::Options::default();
        // A snippet of the source could show a token or a key.
        options.with_snippet = false;
        // Go's non-strict YAML decoding keeps the last of duplicate keys.
        options.duplicate_keys = serde_saphyr::DuplicateKeyPolicy::LastWins;
        let documents: Vec<Kubeconfig> = serde_saphyr::from_multiple_with_options(&text, options)
            .map_err(|e| ConfigError::Malformed {
            origin: origin.clone(),
            message: e.to_string(),
        })?;
        let mut merged = Kubeconfig::default();
        for mut document in documents {
            document.check_unique_names(&origin)?;
            if let Some(path) = path {
                document.anchor_to(path);
            }
            merged.merge(document);
        }
        merged.files = path.map(Path::to_path_buf).into_iter().collect();
        Ok(merged)
    }

    /// Merges `other` into `self` with client-go's rules: for clusters,
    /// users and contexts the first definition of a name wins;
    /// `current-context` comes from the first source that sets it.
    pub fn merge(&mut self, other: Kubeconfig) {
        fn absorb<T>(into: &mut Vec<T>, from: Vec<T>, name: impl Fn(&T) -> &str) {
            let known: HashSet<String> = into.iter().map(|e| name(e).to_owned()).collect();
            into.extend(from.into_iter().filter(|e| !known.contains(name(e))));
        }
        absorb(&mut self.clusters, other.clusters, |c| &c.name);
        absorb(&mut self.users, other.users, |u| &u.name);
        absorb(&mut self.contexts, other.contexts, |c| &c.name);
        if self.current_context.as_deref().unwrap_or("").is_empty() {
            self.current_context = other.current_context.filter(|c| !c.is_empty());
        }
        if self.kind.is_none() {
            self.kind = other.kind;
        }
        if self.api_version.is_none() {
            self.api_version = other.api_version;
        }
        for file in other.files {
            if !self.files.contains(&file) {
                self.files.push(file);
            }
        }
    }

    /// True when there is nothing in it (no clusters, users, contexts or
    /// current context): client-go then falls back to in-cluster config.
    pub fn is_empty(&self) -> bool {
        self.clusters.is_empty()
            && self.users.is_empty()
            && self.contexts.is_empty()
            && self.current_context.as_deref().unwrap_or("").is_empty()
    }

    /// A named cluster.
    pub fn cluster(&self, name: &str) -> Option<&NamedCluster> {
        self.clusters.iter().find(|c| c.name == name)
    }

    /// A named user.
    pub fn user(&self, name: &str) -> Option<&NamedAuthInfo> {
        self.users.iter().find(|u| u.name == name)
    }

    /// A named context.
    pub fn context(&self, name: &str) -> Option<&NamedContext> {
        self.contexts.iter().find(|c| c.name == name)
    }

    /// The files, for messages: `a.yaml, b.yaml` or `(no file)`.
    pub(crate) fn files_for_message(&self) -> String {
        if self.files.is_empty() {
            return "(no kubeconfig file)".into();
        }
        let names: Vec<String> = self.files.iter().map(|f| f.display().to_string()).collect();
        names.join(", ")
    }

    /// client-go rejects a name listed twice in one file.
    fn check_unique_names(&self, origin: &Origin) -> Result<(), ConfigError> {
        fn check<'a>(
            list: &'static str,
            names: impl Iterator<Item = &'a str>,
            origin: &Origin,
        ) -> Result<(), ConfigError> {
            let mut seen = HashSet::new();
            for name in names {
                if !seen.insert(name) {
                    return Err(ConfigError::Invalid {
                        origin: origin.with_field(format!("{list}[{name:?}]")),
                        message: format!("duplicate name {name:?} in {list}"),
                    });
                }
            }
            Ok(())
        }
        check(
            "clusters",
            self.clusters.iter().map(|c| c.name.as_str()),
            origin,
        )?;
        check("users", self.users.iter().map(|c| c.name.as_str()), origin)?;
        check(
            "contexts",
            self.contexts.iter().map(|c| c.name.as_str()),
            origin,
        )
    }

    /// Records the source file on every entry and resolves relative paths
    /// against its folder, as client-go's `ResolveLocalPaths` does:
    /// `certificate-authority`, `client-certificate`, `client-key`,
    /// `tokenFile`, and an exec `command` that contains a path separator.
    fn anchor_to(&mut self, path: &Path) {
        let dir = path.parent().unwrap_or(Path::new(""));
        let resolve = |value: &mut Option<String>| {
            if let Some(v) = value.as_mut().filter(|v| !v.is_empty()) {
                *v = resolve_path(dir, v);
            }
        };
        for cluster in &mut self.clusters {
            cluster.file = Some(path.to_path_buf());
            resolve(&mut cluster.cluster.certificate_authority);
        }
        for user in &mut self.users {
            user.file = Some(path.to_path_buf());
            resolve(&mut user.user.client_certificate);
            resolve(&mut user.user.client_key);
            resolve(&mut user.user.token_file);
            if let Some(exec) = &mut user.user.exec
                && exec.command.contains(std::path::MAIN_SEPARATOR)
            {
                exec.command = resolve_path(dir, &exec.command);
            }
        }
        for context in &mut self.contexts {
            context.file = Some(path.to_path_buf());
        }
    }
}

fn resolve_path(dir: &Path, value: &str) -> String {
    let p = Path::new(value);
    if p.is_absolute() {
        return value.to_owned();
    }
    // filepath.Join cleans the result: `./a/../b` becomes `b`.
    let mut joined = PathBuf::new();
    for component in dir.join(p).components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir
                if matches!(joined.components().next_back(), Some(Component::Normal(_))) =>
            {
                joined.pop();
            }
            other => joined.push(other),
        }
    }
    joined.to_string_lossy().into_owned()
}

/// Bytes to text: UTF-8 (a BOM is dropped) or UTF-16 LE/BE with a BOM.
fn decode_text(bytes: &[u8]) -> Result<String, String> {
    let utf16 = |rest: &[u8], unit: fn([u8; 2]) -> u16| {
        if !rest.len().is_multiple_of(2) {
            return Err("UTF-16 text with an odd number of bytes".to_owned());
        }
        let units = rest.chunks_exact(2).map(|c| unit([c[0], c[1]]));
        char::decode_utf16(units)
            .collect::<Result<String, _>>()
            .map_err(|e| format!("invalid UTF-16: {e}"))
    };
    match bytes {
        [0xFF, 0xFE, rest @ ..] => utf16(rest, u16::from_le_bytes),
        [0xFE, 0xFF, rest @ ..] => utf16(rest, u16::from_be_bytes),
        [0xEF, 0xBB, 0xBF, rest @ ..] => std::str::from_utf8(rest)
            .map(str::to_owned)
            .map_err(|e| format!("invalid UTF-8: {e}")),
        _ => std::str::from_utf8(bytes)
            .map(str::to_owned)
            .map_err(|e| format!("invalid UTF-8: {e}")),
    }
}
