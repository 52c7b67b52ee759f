//! Choosing a context in a [`Kubeconfig`] and turning it into a [`Config`]:
//! cluster, user and namespace overrides, `*-data` and file forms of
//! certificates and keys, the authentication method, impersonation and the
//! proxy.
//!
//! Files named by the kubeconfig (CA, client certificate and key, token
//! file) are read through a [`Files`] the caller passes in, so this module
//! stays pure and tests can hand it an in-memory map.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::Config;
use super::auth::{AuthConfig, Impersonation};
use super::error::{ConfigError, Origin};
use super::exec::ExecPlugin;
use super::kubeconfig::{AuthInfo, Kubeconfig, NamedCluster};
use super::load::Files;
use super::proxy::ProxyUrl;
use super::secret::Secret;
use super::tls::{self, ClientIdentity, TlsDescription};

/// Which context to use, and what to override in it — kubectl's
/// `--context`, `--cluster`, `--user` and `--namespace`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContextOptions {
    /// The context; `current-context` when `None`.
    pub context: Option<String>,
    /// A cluster to use instead of the context's.
    pub cluster: Option<String>,
    /// A user to use instead of the context's.
    pub user: Option<String>,
    /// A namespace to use instead of the context's.
    pub namespace: Option<String>,
}

impl Kubeconfig {
    /// Resolves a context into a [`Config`], reading the files it names
    /// through `files`.
    pub fn resolve(
        &self,
        options: &ContextOptions,
        files: &dyn Files,
    ) -> Result<Config, ConfigError> {
        let context_name = match options.context.as_deref().filter(|c| !c.is_empty()) {
            Some(name) => name.to_owned(),
            None => match self.current_context.as_deref().filter(|c| !c.is_empty()) {
                Some(name) => name.to_owned(),
                None => {
                    return Err(ConfigError::NoCurrentContext {
                        files: self.files_for_message(),
                    });
                }
            },
        };
        let named = self
            .context(&context_name)
            .ok_or_else(|| ConfigError::UnknownContext {
                context: context_name.clone(),
                files: self.files_for_message(),
            })?;
        let context_origin = Origin {
            file: named.file.clone(),
            context: Some(context_name.clone()),
            field: None,
        };

        let cluster_name = options.cluster.as_deref().unwrap_or(&named.context.cluster);
        let cluster = self
            .cluster(cluster_name)
            .ok_or_else(|| ConfigError::Invalid {
                origin: context_origin
                    .with_field(format!("contexts[{context_name:?}].context.cluster")),
                message: format!(
                    "cluster {cluster_name:?} is not defined in {}",
                    self.files_for_message()
                ),
            })?;
        let user_name = options.user.as_deref().unwrap_or(&named.context.user);
        let empty_user = AuthInfo::default();
        let (user, user_file) = if user_name.is_empty() {
            (&empty_user, None)
        } else {
            let named_user = self.user(user_name).ok_or_else(|| ConfigError::Invalid {
                origin: context_origin
                    .with_field(format!("contexts[{context_name:?}].context.user")),
                message: format!(
                    "user {user_name:?} is not defined in {}",
                    self.files_for_message()
                ),
            })?;
            (&named_user.user, named_user.file.clone())
        };

        let at = Resolver { files };
        let cluster_origin = |field: &str| Origin {
            file: cluster.file.clone(),
            context: Some(context_name.clone()),
            field: Some(format!("clusters[{:?}].cluster.{field}", cluster.name)),
        };
        let user_origin = |field: &str| Origin {
            file: user_file.clone(),
            context: Some(context_name.clone()),
            field: Some(format!("users[{user_name:?}].user.{field}")),
        };

        let cluster_url = parse_server(cluster, &cluster_origin("server"))?;
        let (tls, ca_pem) = at.tls(cluster, user, &cluster_origin, &user_origin)?;
        let proxy_url = match cluster
            .cluster
            .proxy_url
            .as_deref()
            .filter(|p| !p.is_empty())
        {
            Some(p) => Some(ProxyUrl::parse(p).map_err(|message| ConfigError::Invalid {
                origin: cluster_origin("proxy-url"),
                message,
            })?),
            None => None,
        };
        let auth = at.auth(cluster, user, ca_pem.as_deref(), &user_origin)?;
        let impersonation = Impersonation {
            user: user.impersonate.clone().filter(|u| !u.is_empty()),
            uid: user.impersonate_uid.clone().filter(|u| !u.is_empty()),
            groups: user.impersonate_groups.clone(),
            extra: user.impersonate_extra.clone(),
        };
        impersonation
            .validate()
            .map_err(|message| ConfigError::Invalid {
                origin: user_origin("as"),
                message,
            })?;
        let default_namespace = options
            .namespace
            .clone()
            .or_else(|| named.context.namespace.clone())
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| "default".to_owned());
        Ok(Config {
            cluster_url,
            default_namespace,
            context: Some(context_name),
            tls,
            auth,
            impersonation,
            proxy_url,
            disable_compression: cluster.cluster.disable_compression,
        })
    }
}

fn parse_server(cluster: &NamedCluster, origin: &Origin) -> Result<http::Uri, ConfigError> {
    let invalid = |message: String| ConfigError::Invalid {
        origin: origin.clone(),
        message,
    };
    let server = cluster.cluster.server.as_deref().unwrap_or("").trim();
    if server.is_empty() {
        return Err(invalid(format!("cluster {:?} has no server", cluster.name)));
    }
    // client-go's DefaultServerURL: a bare host[:port] means https.
    let with_scheme = if server.contains("://") {
        server.to_owned()
    } else {
        format!("https://{server}")
    };
    let uri: http::Uri = with_scheme
        .parse()
        .map_err(|e| invalid(format!("server {server:?} is not a URL: {e}")))?;
    match uri.scheme_str() {
        Some("https") | Some("http") => {}
        _ => return Err(invalid(format!("server {server:?} must use http or https"))),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(invalid(format!("server {server:?} has no host")));
    }
    Ok(uri)
}

/// Reads what a context refers to.
struct Resolver<'a> {
    files: &'a dyn Files,
}

impl Resolver<'_> {
    /// The PEM bytes of a `<name>-data` (base64) or `<name>` (file) pair;
    /// data wins when both are set, as in client-go.
    fn data_or_file(
        &self,
        data: Option<&str>,
        file: Option<&str>,
        data_origin: Origin,
        file_origin: Origin,
    ) -> Result<Option<Vec<u8>>, ConfigError> {
        if let Some(data) = data.filter(|d| !d.is_empty()) {
            return decode_base64(data)
                .map(Some)
                .map_err(|message| ConfigError::Invalid {
                    origin: data_origin,
                    message,
                });
        }
        match file.filter(|f| !f.is_empty()) {
            Some(path) => self.read(Path::new(path), file_origin).map(Some),
            None => Ok(None),
        }
    }

    fn read(&self, path: &Path, origin: Origin) -> Result<Vec<u8>, ConfigError> {
        self.files.read(path).map_err(|source| ConfigError::Read {
            origin,
            path: path.to_path_buf(),
            source,
        })
    }

    /// The TLS description and the CA's PEM (for exec plugins' cluster info).
    fn tls(
        &self,
        cluster: &NamedCluster,
        user: &AuthInfo,
        cluster_origin: &dyn Fn(&str) -> Origin,
        user_origin: &dyn Fn(&str) -> Origin,
    ) -> Result<(TlsDescription, Option<Vec<u8>>), ConfigError> {
        let c = &cluster.cluster;
        let ca_field = if c
            .certificate_authority_data
            .as_deref()
            .is_some_and(|d| !d.is_empty())
        {
            "certificate-authority-data"
        } else {
            "certificate-authority"
        };
        let ca_pem = self.data_or_file(
            c.certificate_authority_data.as_deref(),
            c.certificate_authority.as_deref(),
            cluster_origin("certificate-authority-data"),
            cluster_origin("certificate-authority"),
        )?;
        let ca = match &ca_pem {
            Some(pem) => {
                if c.insecure_skip_tls_verify {
                    return Err(ConfigError::Invalid {
                        origin: cluster_origin("insecure-skip-tls-verify"),
                        message: "a certificate authority cannot be combined with insecure-skip-tls-verify"
                            .into(),
                    });
                }
                let certs =
                    tls::parse_certificates(pem).map_err(|message| ConfigError::Invalid {
                        origin: cluster_origin(ca_field),
                        message,
                    })?;
                Some(certs)
            }
            None => None,
        };

        let cert_field = if user
            .client_certificate_data
            .as_deref()
            .is_some_and(|d| !d.is_empty())
        {
            "client-certificate-data"
        } else {
            "client-certificate"
        };
        let key_field = if user
            .client_key_data
            .as_ref()
            .is_some_and(|d| !d.expose().is_empty())
        {
            "client-key-data"
        } else {
            "client-key"
        };
        let cert_pem = self.data_or_file(
            user.client_certificate_data.as_deref(),
            user.client_certificate.as_deref(),
            user_origin("client-certificate-data"),
            user_origin("client-certificate"),
        )?;
        let key_pem = self
            .data_or_file(
                user.client_key_data.as_ref().map(|k| k.expose().as_str()),
                user.client_key.as_deref(),
                user_origin("client-key-data"),
                user_origin("client-key"),
            )?
            .map(Secret::new);
        let identity = match (cert_pem, key_pem) {
            (None, None) => None,
            (Some(_), None) => {
                return Err(ConfigError::Invalid {
                    origin: user_origin(cert_field),
                    message: "a client certificate is given without a client key".into(),
                });
            }
            (None, Some(_)) => {
                return Err(ConfigError::Invalid {
                    origin: user_origin(key_field),
                    message: "a client key is given without a client certificate".into(),
                });
            }
            (Some(cert), Some(key)) => {
                let chain =
                    tls::parse_certificates(&cert).map_err(|message| ConfigError::Invalid {
                        origin: user_origin(cert_field),
                        message,
                    })?;
                let key = tls::parse_private_key(key.expose()).map_err(|message| {
                    ConfigError::Invalid {
                        origin: user_origin(key_field),
                        message,
                    }
                })?;
                Some(ClientIdentity::new(chain, key))
            }
        };
        let description = TlsDescription {
            ca,
            trust_origin: Some(cluster_origin(ca_field).to_string()),
            identity,
            insecure_skip_verify: c.insecure_skip_tls_verify,
            server_name: c.tls_server_name.clone().filter(|s| !s.is_empty()),
        };
        Ok((description, ca_pem))
    }

    fn auth(
        &self,
        cluster: &NamedCluster,
        user: &AuthInfo,
        ca_pem: Option<&[u8]>,
        user_origin: &dyn Fn(&str) -> Origin,
    ) -> Result<AuthConfig, ConfigError> {
        if let Some(provider) = &user.auth_provider {
            return Err(ConfigError::LegacyAuthProvider {
                origin: user_origin("auth-provider"),
                name: provider.name.clone(),
                hint: legacy_provider_hint(&provider.name),
            });
        }
        let has_token = user.token.as_ref().is_some_and(|t| !t.expose().is_empty())
            || user.token_file.as_deref().is_some_and(|t| !t.is_empty());
        let has_basic = user.username.as_deref().is_some_and(|u| !u.is_empty())
            || user
                .password
                .as_ref()
                .is_some_and(|p| !p.expose().is_empty());
        if let Some(exec) = &user.exec {
            if has_token || has_basic {
                return Err(ConfigError::Invalid {
                    origin: user_origin("exec"),
                    message: "an exec plugin cannot be combined with a token or basic auth".into(),
                });
            }
            let plugin = ExecPlugin::from_kubeconfig(exec, cluster, ca_pem, user_origin("exec"))?;
            return Ok(AuthConfig::Exec(Box::new(plugin)));
        }
        if has_token && has_basic {
            return Err(ConfigError::Invalid {
                origin: user_origin("token"),
                message:
                    "more than one authentication method: token and basic auth (username/password)"
                        .into(),
            });
        }
        if has_basic {
            return Ok(AuthConfig::Basic {
                username: user.username.clone().unwrap_or_default(),
                password: user.password.clone().unwrap_or_default(),
            });
        }
        let file = user
            .token_file
            .as_deref()
            .filter(|f| !f.is_empty())
            .map(PathBuf::from);
        let inline = user.token.clone().filter(|t| !t.expose().is_empty());
        let Some(path) = &file else {
            return Ok(inline.map_or(AuthConfig::None, |token| AuthConfig::Bearer {
                token,
                file: None,
            }));
        };
        // client-go reads the file on every request (cached for a minute),
        // so a readable file wins over `token`, which is only the fallback.
        let from_file = self.read(path, user_origin("tokenFile")).and_then(|bytes| {
            super::auth::token_from_file_bytes(&bytes).map_err(|message| ConfigError::Invalid {
                origin: user_origin("tokenFile"),
                message: format!("{}: {message}", path.display()),
            })
        });
        let token = match (from_file, inline) {
            (Ok(token), _) => token,
            (Err(error), Some(token)) => {
                tracing::warn!(%error, "cannot read the token file; using the kubeconfig's token");
                token
            }
            (Err(error), None) => return Err(error),
        };
        Ok(AuthConfig::Bearer { token, file })
    }
}

/// What replaced a removed in-tree auth provider.
fn legacy_provider_hint(name: &str) -> &'static str {
    match name {
        "gcp" => {
            "it was removed in client-go 1.26; install the exec plugin gke-gcloud-auth-plugin \
             (gcloud components install gke-gcloud-auth-plugin) and run \
             `gcloud container clusters get-credentials` to rewrite this user as an exec entry"
        }
        "azure" => {
            "it was removed in client-go 1.26; install the exec plugin kubelogin \
             (https://azure.github.io/kubelogin) and run `kubelogin convert-kubeconfig`"
        }
        "oidc" => {
            "use an exec plugin instead, such as kubelogin (int128/kubelogin, `kubectl oidc-login`), \
             configured as this user's `exec` entry"
        }
        _ => "only exec plugins are supported; configure this user with an `exec` entry",
    }
}

/// Base64 as Go's `[]byte` JSON decoding reads it (standard alphabet,
/// padding, line breaks ignored). The message never shows the data.
pub(crate) fn decode_base64(data: &str) -> Result<Vec<u8>, String> {
    let compact: String = data
        .chars()
        .filter(|c| !matches!(c, '\r' | '\n' | ' ' | '\t'))
        .collect();
    use base64::DecodeError as E;
    STANDARD.decode(compact.as_bytes()).map_err(|e| match e {
        E::InvalidByte(offset, _) => format!("invalid base64: bad character at offset {offset}"),
        E::InvalidLength(len) => {
            format!("invalid base64: length {len} is not a whole number of groups")
        }
        E::InvalidLastSymbol(offset, _) => {
            format!("invalid base64: bad last character at offset {offset}")
        }
        E::InvalidPadding => "invalid base64: bad padding".to_owned(),
    })
}
