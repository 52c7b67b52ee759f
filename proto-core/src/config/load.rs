//! The thin IO layer: reading kubeconfig, certificate and token files, and
//! the process environment. Everything here hands bytes and values to the
//! pure functions of the sibling modules.

use std::ffi::OsString;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use super::Config;
use super::error::ConfigError;
use super::incluster::{self, InClusterInputs};
use super::kubeconfig::Kubeconfig;
use super::proxy::ProxyEnv;
use super::resolve::ContextOptions;

/// The largest file read (a kubeconfig, a certificate, a token).
pub const MAX_FILE_SIZE: u64 = 16 << 20;

/// Reads files named by a configuration. [`LocalFiles`] reads the disk;
/// tests pass a map.
pub trait Files {
    /// The file's bytes.
    fn read(&self, path: &Path) -> io::Result<Vec<u8>>;
}

/// The local file system, with reads capped at [`MAX_FILE_SIZE`].
#[derive(Debug, Clone, Copy, Default)]
pub struct LocalFiles;

impl Files for LocalFiles {
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        let mut bytes = Vec::new();
        std::fs::File::open(path)?
            .take(MAX_FILE_SIZE + 1)
            .read_to_end(&mut bytes)?;
        if bytes.len() as u64 > MAX_FILE_SIZE {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("file exceeds {MAX_FILE_SIZE} bytes"),
            ));
        }
        Ok(bytes)
    }
}

impl<F: Fn(&Path) -> io::Result<Vec<u8>>> Files for F {
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        self(path)
    }
}

/// The environment variables configuration reads.
#[derive(Debug, Clone, Default)]
pub struct Environment {
    /// `KUBECONFIG`: a list of files separated by the OS path-list separator.
    pub kubeconfig: Option<OsString>,
    /// The home folder (`HOME`, or `USERPROFILE` on Windows).
    pub home: Option<PathBuf>,
    /// `KUBERNETES_SERVICE_HOST`.
    pub service_host: Option<String>,
    /// `KUBERNETES_SERVICE_PORT`.
    pub service_port: Option<String>,
    /// `POD_NAMESPACE`.
    pub pod_namespace: Option<String>,
    /// `HTTPS_PROXY`, `HTTP_PROXY`, `NO_PROXY`.
    pub proxy: ProxyEnv,
}

impl Environment {
    /// Reads the process environment.
    pub fn from_process() -> Environment {
        let var = |k: &str| std::env::var(k).ok();
        Environment {
            kubeconfig: std::env::var_os("KUBECONFIG"),
            home: std::env::var_os("HOME")
                .or_else(|| std::env::var_os("USERPROFILE"))
                .filter(|h| !h.is_empty())
                .map(PathBuf::from),
            service_host: var("KUBERNETES_SERVICE_HOST"),
            service_port: var("KUBERNETES_SERVICE_PORT"),
            pod_namespace: var("POD_NAMESPACE"),
            proxy: ProxyEnv::from_lookup(var),
        }
    }

    /// The kubeconfig files to read, in precedence order: `KUBECONFIG`'s
    /// entries (empty ones skipped, duplicates dropped) or `~/.kube/config`.
    pub fn kubeconfig_paths(&self) -> Vec<PathBuf> {
        if let Some(list) = self.kubeconfig.as_ref().filter(|k| !k.is_empty()) {
            let mut paths: Vec<PathBuf> = Vec::new();
            for p in std::env::split_paths(list) {
                if !p.as_os_str().is_empty() && !paths.contains(&p) {
                    paths.push(p);
                }
            }
            return paths;
        }
        self.home
            .iter()
            .map(|h| h.join(".kube").join("config"))
            .collect()
    }
}

/// Reads and merges the kubeconfig files the environment names (see
/// [`Environment::kubeconfig_paths`]). Missing files are skipped, as
/// client-go skips them; the result's `files` lists those read.
pub fn load_kubeconfig(env: &Environment, files: &dyn Files) -> Result<Kubeconfig, ConfigError> {
    load_kubeconfig_paths(&env.kubeconfig_paths(), false, files)
}

/// Reads one kubeconfig file named explicitly (`--kubeconfig`): a missing
/// file is an error.
pub fn load_kubeconfig_file(path: &Path, files: &dyn Files) -> Result<Kubeconfig, ConfigError> {
    load_kubeconfig_paths(&[path.to_path_buf()], true, files)
}

/// Reads and merges `paths` in precedence order (first file wins per name).
pub fn load_kubeconfig_paths(
    paths: &[PathBuf],
    must_exist: bool,
    files: &dyn Files,
) -> Result<Kubeconfig, ConfigError> {
    let mut merged = Kubeconfig::default();
    for path in paths {
        let bytes = match files.read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound && !must_exist => continue,
            Err(source) => {
                return Err(ConfigError::Read {
                    origin: super::error::Origin::file(path),
                    path: path.clone(),
                    source,
                });
            }
        };
        merged.merge(Kubeconfig::parse(&bytes, Some(path))?);
    }
    Ok(merged)
}

/// The configuration from the environment's kubeconfig files and `options`.
pub fn from_kubeconfig(
    options: &ContextOptions,
    env: &Environment,
    files: &dyn Files,
) -> Result<Config, ConfigError> {
    load_kubeconfig(env, files)?.resolve(options, files)
}

/// The in-cluster configuration: reads the service-account files.
pub fn in_cluster(env: &Environment, files: &dyn Files) -> Result<Config, ConfigError> {
    incluster::service_address(env.service_host.as_deref(), env.service_port.as_deref())?;
    let token_file = Path::new(incluster::TOKEN_FILE);
    let ca_file = Path::new(incluster::CA_FILE);
    let token = files.read(token_file).map_err(|source| ConfigError::Read {
        origin: super::error::Origin {
            field: Some("in-cluster service-account token".into()),
            ..Default::default()
        },
        path: token_file.to_path_buf(),
        source,
    })?;
    let ca = files.read(ca_file).ok();
    let namespace = files.read(Path::new(incluster::NAMESPACE_FILE)).ok();
    incluster::in_cluster_config(&InClusterInputs {
        host: env.service_host.as_deref(),
        port: env.service_port.as_deref(),
        token: &token,
        token_file,
        ca: ca.as_deref(),
        ca_file,
        pod_namespace: env.pod_namespace.as_deref().filter(|n| !n.is_empty()),
        namespace_file: namespace.as_deref(),
    })
}

/// kubectl's order: the kubeconfig (`KUBECONFIG` or `~/.kube/config`), or
/// when that is absent or empty, the in-cluster configuration. A kubeconfig
/// that exists but is wrong is an error, not a reason to fall back. When
/// neither is found the error lists what was tried.
pub fn infer(
    options: &ContextOptions,
    env: &Environment,
    files: &dyn Files,
) -> Result<Config, ConfigError> {
    let paths = env.kubeconfig_paths();
    let kubeconfig = load_kubeconfig_paths(&paths, false, files)?;
    if !kubeconfig.is_empty() {
        return kubeconfig.resolve(options, files);
    }
    match in_cluster(env, files) {
        Ok(config) => Ok(config),
        Err(in_cluster_error @ ConfigError::NotInCluster { .. }) => {
            let source = if env.kubeconfig.as_ref().is_some_and(|k| !k.is_empty()) {
                "KUBECONFIG"
            } else if env.home.is_some() {
                "the default path"
            } else {
                "no KUBECONFIG and no home folder"
            };
            let listed: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
            let kubeconfig_note = if listed.is_empty() {
                format!("kubeconfig ({source}): no file to read")
            } else if kubeconfig.files.is_empty() {
                format!("kubeconfig ({source}): {} not found", listed.join(", "))
            } else {
                format!(
                    "kubeconfig ({source}): {} holds no configuration",
                    listed.join(", ")
                )
            };
            Err(ConfigError::NothingFound {
                tried: vec![kubeconfig_note, format!("in-cluster: {in_cluster_error}")],
            })
        }
        Err(other) => Err(other),
    }
}
