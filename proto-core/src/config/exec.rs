//! The exec credential plugin protocol (`client.authentication.k8s.io` v1
//! and v1beta1): what to run, with which arguments, environment and
//! `KUBERNETES_EXEC_INFO`, and how to read the `ExecCredential` it prints.
//!
//! Running the command is an action ([`ExecRequest`]) the adapter performs
//! with its own process API; it hands back an [`ExecOutcome`]. The plugin's
//! standard error goes to the user's terminal, standard input is given to it
//! only when it may be interactive.

use std::io;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;

use super::auth::AuthError;
use super::error::{ConfigError, Origin};
use super::kubeconfig::{ExecConfig, ExecEnvVar, NamedCluster};
use super::secret::Secret;
use super::tls::ClientIdentity;

/// The exec extension of a cluster that is passed to plugins as `spec.cluster.config`.
pub const EXEC_CLUSTER_EXTENSION: &str = "client.authentication.k8s.io/exec";

/// The largest plugin output read back (an adapter should stop reading past it).
pub const MAX_EXEC_OUTPUT: usize = 1 << 20;

/// The `ExecCredential` API versions client-go still supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecApiVersion {
    /// `client.authentication.k8s.io/v1`.
    V1,
    /// `client.authentication.k8s.io/v1beta1`.
    V1Beta1,
}

impl ExecApiVersion {
    /// The `apiVersion` string.
    pub fn as_str(self) -> &'static str {
        match self {
            ExecApiVersion::V1 => "client.authentication.k8s.io/v1",
            ExecApiVersion::V1Beta1 => "client.authentication.k8s.io/v1beta1",
        }
    }
}

/// `interactiveMode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InteractiveMode {
    /// The plugin never gets standard input.
    Never,
    /// Standard input is given when it is a terminal.
    IfAvailable,
    /// The plugin needs a terminal; running without one is an error.
    Always,
}

/// An exec plugin, checked and ready to run.
#[derive(Debug, Clone)]
pub struct ExecPlugin {
    /// The command (a path with a separator was resolved against the kubeconfig's folder).
    pub command: String,
    /// Its arguments.
    pub args: Vec<String>,
    /// Extra environment variables.
    pub env: Vec<ExecEnvVar>,
    /// The API version it speaks.
    pub api_version: ExecApiVersion,
    /// Shown when the command is missing.
    pub install_hint: Option<String>,
    /// Whether it may prompt.
    pub interactive_mode: InteractiveMode,
    /// `spec.cluster` for `KUBERNETES_EXEC_INFO` when `provideClusterInfo` is set.
    pub cluster_info: Option<serde_json::Value>,
}

/// What to run: the adapter starts `command` with `args`, the inherited
/// environment plus `env` (which includes `KUBERNETES_EXEC_INFO`), standard
/// error inherited, standard output captured (up to [`MAX_EXEC_OUTPUT`]),
/// and standard input inherited only when `stdin` is true.
#[derive(Debug, Clone)]
pub struct ExecRequest {
    /// The program.
    pub command: String,
    /// Its arguments.
    pub args: Vec<String>,
    /// Variables to set on top of the inherited environment.
    pub env: Vec<(String, Secret<String>)>,
    /// Whether the plugin gets the terminal's standard input.
    pub stdin: bool,
}

impl ExecRequest {
    /// The command as described above, not started: standard input
    /// inherited or null, standard error inherited, the variables set. Run
    /// it with `output()` (standard output is then captured), or hand it to
    /// an async runtime's process API through its
    /// `From<std::process::Command>` — tokio's keeps every setting; the
    /// adapter adds what only its API has (`kill_on_drop`).
    pub fn command(&self) -> std::process::Command {
        let mut command = std::process::Command::new(&self.command);
        command.args(&self.args);
        for (name, value) in &self.env {
            command.env(name, value.expose());
        }
        command.stdin(match self.stdin {
            true => std::process::Stdio::inherit(),
            false => std::process::Stdio::null(),
        });
        command.stderr(std::process::Stdio::inherit());
        command
    }
}

/// What happened when the adapter ran an [`ExecRequest`].
#[derive(Debug)]
pub enum ExecOutcome {
    /// It ran to completion.
    Exited {
        /// The exit code (`None` when killed by a signal).
        status: Option<i32>,
        /// Its standard output.
        stdout: Secret<Vec<u8>>,
    },
    /// The command does not exist.
    NotFound,
    /// It could not be started for another reason.
    SpawnFailed(String),
}

impl ExecOutcome {
    /// The outcome of `std::process::Command::output()` (or an adapter's
    /// equivalent): a missing program maps to [`ExecOutcome::NotFound`].
    pub fn from_output(result: io::Result<(Option<i32>, Vec<u8>)>) -> ExecOutcome {
        match result {
            Ok((status, stdout)) => ExecOutcome::Exited {
                status,
                stdout: Secret::new(stdout),
            },
            Err(e) if e.kind() == io::ErrorKind::NotFound => ExecOutcome::NotFound,
            Err(e) => ExecOutcome::SpawnFailed(e.to_string()),
        }
    }
}

/// What a plugin returned.
#[derive(Debug)]
pub struct ExecCredential {
    /// A bearer token.
    pub token: Option<Secret<String>>,
    /// A client certificate and key.
    pub identity: Option<ClientIdentity>,
    /// When it expires (`None`: never).
    pub expires_at: Option<Instant>,
}

impl ExecPlugin {
    /// Checks a kubeconfig `exec` entry: the API version (v1 or v1beta1;
    /// v1alpha1 was removed in client-go 1.24), `interactiveMode` (required
    /// for v1, `IfAvailable` by default for v1beta1), and builds the cluster
    /// information for `provideClusterInfo`.
    pub fn from_kubeconfig(
        exec: &ExecConfig,
        cluster: &NamedCluster,
        ca_pem: Option<&[u8]>,
        origin: Origin,
    ) -> Result<ExecPlugin, ConfigError> {
        let invalid = |field: &str, message: String| ConfigError::Invalid {
            origin: origin.with_field(format!(
                "{}.{field}",
                origin.field.as_deref().unwrap_or("exec")
            )),
            message,
        };
        if exec.command.is_empty() {
            return Err(invalid("command", "the exec plugin has no command".into()));
        }
        let api_version = match exec.api_version.as_deref() {
            Some("client.authentication.k8s.io/v1") => ExecApiVersion::V1,
            Some("client.authentication.k8s.io/v1beta1") => ExecApiVersion::V1Beta1,
            other => {
                return Err(invalid(
                    "apiVersion",
                    format!(
                        "exec plugin apiVersion {:?} is not supported; use client.authentication.k8s.io/v1 or v1beta1",
                        other.unwrap_or("")
                    ),
                ));
            }
        };
        let interactive_mode = match (exec.interactive_mode.as_deref().unwrap_or(""), api_version) {
            ("Never", _) => InteractiveMode::Never,
            ("IfAvailable", _) => InteractiveMode::IfAvailable,
            ("Always", _) => InteractiveMode::Always,
            ("", ExecApiVersion::V1Beta1) => InteractiveMode::IfAvailable,
            ("", ExecApiVersion::V1) => {
                return Err(invalid(
                    "interactiveMode",
                    "interactiveMode must be specified (Never, IfAvailable or Always) for client.authentication.k8s.io/v1".into(),
                ));
            }
            (other, _) => {
                return Err(invalid(
                    "interactiveMode",
                    format!("interactiveMode {other:?} is not one of Never, IfAvailable, Always"),
                ));
            }
        };
        let cluster_info = exec
            .provide_cluster_info
            .then(|| cluster_info(cluster, ca_pem));
        Ok(ExecPlugin {
            command: exec.command.clone(),
            args: exec.args.clone(),
            env: exec.env.clone(),
            api_version,
            install_hint: exec.install_hint.clone().filter(|h| !h.is_empty()),
            interactive_mode,
            cluster_info,
        })
    }

    /// The `KUBERNETES_EXEC_INFO` document.
    pub fn exec_info(&self, interactive: bool) -> serde_json::Value {
        let mut spec = serde_json::Map::new();
        if let Some(cluster) = &self.cluster_info {
            spec.insert("cluster".into(), cluster.clone());
        }
        spec.insert("interactive".into(), interactive.into());
        serde_json::json!({
            "kind": "ExecCredential",
            "apiVersion": self.api_version.as_str(),
            "spec": spec,
        })
    }

    /// What to run, given whether standard input is a terminal.
    pub fn request(&self, stdin_is_terminal: bool) -> Result<ExecRequest, AuthError> {
        let interactive = match self.interactive_mode {
            InteractiveMode::Never => false,
            InteractiveMode::IfAvailable => stdin_is_terminal,
            InteractiveMode::Always if stdin_is_terminal => true,
            InteractiveMode::Always => {
                return Err(AuthError::ExecNeedsTerminal {
                    command: self.command.clone(),
                });
            }
        };
        let mut env: Vec<(String, Secret<String>)> = self
            .env
            .iter()
            .map(|v| (v.name.clone(), v.value.clone()))
            .collect();
        env.push((
            "KUBERNETES_EXEC_INFO".into(),
            Secret::new(self.exec_info(interactive).to_string()),
        ));
        Ok(ExecRequest {
            command: self.command.clone(),
            args: self.args.clone(),
            env,
            stdin: interactive,
        })
    }

    /// Reads what the plugin did into a credential.
    pub fn parse_outcome(
        &self,
        outcome: ExecOutcome,
        now: Instant,
        wall_now: SystemTime,
    ) -> Result<ExecCredential, AuthError> {
        match outcome {
            ExecOutcome::NotFound => Err(AuthError::ExecNotFound {
                command: self.command.clone(),
                hint: self.install_hint.clone(),
            }),
            ExecOutcome::SpawnFailed(message) => Err(AuthError::ExecSpawn {
                command: self.command.clone(),
                message,
            }),
            ExecOutcome::Exited {
                status: Some(0),
                stdout,
            } => self.parse_credential(stdout.expose(), now, wall_now),
            ExecOutcome::Exited { status, .. } => Err(AuthError::ExecFailed {
                command: self.command.clone(),
                status,
            }),
        }
    }

    /// Parses an `ExecCredential` (JSON, or YAML as some plugins print).
    pub fn parse_credential(
        &self,
        stdout: &[u8],
        now: Instant,
        wall_now: SystemTime,
    ) -> Result<ExecCredential, AuthError> {
        let bad = |message: String| AuthError::ExecOutput {
            command: self.command.clone(),
            message,
        };
        if stdout.len() > MAX_EXEC_OUTPUT {
            return Err(bad(format!("output exceeds {MAX_EXEC_OUTPUT} bytes")));
        }
        if stdout.iter().all(u8::is_ascii_whitespace) {
            return Err(bad("the output is empty".into()));
        }
        let parsed: WireCredential = match serde_json::from_slice(stdout) {
            Ok(p) => p,
            Err(json_error) => {
                let text =
                    std::str::from_utf8(stdout).map_err(|_| bad("output is not UTF-8".into()))?;
                let mut options = serde_saphyr::Options::default();
                options.with_snippet = false;
                serde_saphyr::from_str_with_options(text, options).map_err(|_| {
                    // The parser's message could quote the output, which holds the secret.
                    bad(format!(
                        "output is neither JSON nor YAML (JSON error at line {}, column {})",
                        json_error.line(),
                        json_error.column()
                    ))
                })?
            }
        };
        if parsed.kind.as_deref() != Some("ExecCredential") {
            return Err(bad(format!(
                "kind is {:?}, expected \"ExecCredential\"",
                parsed.kind.unwrap_or_default()
            )));
        }
        let version = parsed.api_version.unwrap_or_default();
        if version != self.api_version.as_str() {
            return Err(bad(format!(
                "the plugin is configured to use API version {}, but returned {version:?}",
                self.api_version.as_str()
            )));
        }
        let status = parsed
            .status
            .ok_or_else(|| bad("it has no status".into()))?;
        let token = status.token.filter(|t| !t.expose().is_empty());
        let cert = status.client_certificate_data.filter(|c| !c.is_empty());
        let key = status.client_key_data.filter(|k| !k.expose().is_empty());
        let identity = match (cert, key) {
            (None, None) => None,
            (Some(cert), Some(key)) => Some(
                ClientIdentity::from_pem(cert.as_bytes(), key.expose().as_bytes())
                    .map_err(|e| bad(format!("clientCertificateData/clientKeyData: {e}")))?,
            ),
            (Some(_), None) => {
                return Err(bad(
                    "clientCertificateData is set without clientKeyData".into()
                ));
            }
            (None, Some(_)) => {
                return Err(bad(
                    "clientKeyData is set without clientCertificateData".into()
                ));
            }
        };
        if token.is_none() && identity.is_none() {
            return Err(bad(
                "it has neither a token nor a client certificate and key".into(),
            ));
        }
        let expires_at = match status
            .expiration_timestamp
            .as_deref()
            .filter(|t| !t.is_empty())
        {
            None => None,
            Some(ts) => {
                let at = parse_rfc3339(ts)
                    .ok_or_else(|| bad(format!("expirationTimestamp {ts:?} is not RFC 3339")))?;
                Some(match at.duration_since(wall_now) {
                    Ok(left) => now + left,
                    Err(_) => now,
                })
            }
        };
        Ok(ExecCredential {
            token,
            identity,
            expires_at,
        })
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireCredential {
    kind: Option<String>,
    api_version: Option<String>,
    status: Option<WireStatus>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireStatus {
    token: Option<Secret<String>>,
    client_certificate_data: Option<String>,
    client_key_data: Option<Secret<String>>,
    expiration_timestamp: Option<String>,
}

/// `spec.cluster` of `KUBERNETES_EXEC_INFO` (client-go's `clientauthentication.Cluster`).
fn cluster_info(cluster: &NamedCluster, ca_pem: Option<&[u8]>) -> serde_json::Value {
    let c = &cluster.cluster;
    let mut info = serde_json::Map::new();
    info.insert("server".into(), c.server.clone().unwrap_or_default().into());
    if let Some(name) = c.tls_server_name.as_deref().filter(|n| !n.is_empty()) {
        info.insert("tls-server-name".into(), name.into());
    }
    if c.insecure_skip_tls_verify {
        info.insert("insecure-skip-tls-verify".into(), true.into());
    }
    if let Some(ca) = ca_pem.filter(|ca| !ca.is_empty()) {
        info.insert(
            "certificate-authority-data".into(),
            STANDARD.encode(ca).into(),
        );
    }
    if let Some(proxy) = c.proxy_url.as_deref().filter(|p| !p.is_empty()) {
        info.insert("proxy-url".into(), proxy.into());
    }
    if c.disable_compression {
        info.insert("disable-compression".into(), true.into());
    }
    if let Some(ext) = c
        .extensions
        .iter()
        .find(|e| e.name == EXEC_CLUSTER_EXTENSION)
    {
        info.insert("config".into(), ext.extension.clone());
    }
    serde_json::Value::Object(info)
}

/// Parses an RFC 3339 timestamp (`2026-11-25T19:00:00Z`,
/// `2026-11-25T20:00:00.5+01:00`).
pub fn parse_rfc3339(s: &str) -> Option<SystemTime> {
    let b = s.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(r)?;
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut rest = &s[19..];
    let mut nanos: u64 = 0;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        for (i, d) in frac[..digits].bytes().take(9).enumerate() {
            nanos += u64::from(d - b'0') * 10u64.pow(8 - i as u32);
        }
        rest = &frac[digits..];
    }
    let offset_secs: i64 = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let rb = rest.as_bytes();
            if rb.len() != 6 || rb[3] != b':' {
                return None;
            }
            let h: i64 = rest[1..3].parse().ok()?;
            let m: i64 = rest[4..6].parse().ok()?;
            sign * (h * 3600 + m * 60)
        }
    };
    // Days from civil (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_secs;
    let base = if secs >= 0 {
        UNIX_EPOCH + Duration::from_secs(secs as u64)
    } else {
        UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs())
    };
    Some(base + Duration::from_nanos(nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_request_command_carries_program_args_and_env() {
        let request = ExecRequest {
            command: "aws".into(),
            args: vec!["eks".into(), "get-token".into()],
            env: vec![("AWS_PROFILE".into(), Secret::new("dev".to_owned()))],
            stdin: false,
        };
        let command = request.command();
        assert_eq!(command.get_program(), "aws");
        let args: Vec<_> = command.get_args().collect();
        assert_eq!(args, ["eks", "get-token"]);
        let envs: Vec<_> = command.get_envs().collect();
        assert_eq!(
            envs,
            [(
                std::ffi::OsStr::new("AWS_PROFILE"),
                Some(std::ffi::OsStr::new("dev"))
            )]
        );
    }

    #[test]
    fn exec_expiration_timestamps_parse_as_rfc3339() {
        let secs =
            |s: &str| parse_rfc3339(s).map(|t| t.duration_since(UNIX_EPOCH).unwrap().as_secs_f64());
        assert_eq!(secs("1970-01-01T00:00:00Z"), Some(0.0));
        assert_eq!(secs("2026-01-01T00:00:00Z"), Some(1_767_225_600.0));
        assert_eq!(secs("2024-02-29T12:30:15Z"), Some(1_709_209_815.0));
        assert_eq!(secs("2026-01-01T01:00:00+01:00"), Some(1_767_225_600.0));
        assert_eq!(secs("2025-12-31T19:00:00-05:00"), Some(1_767_225_600.0));
        assert_eq!(secs("2026-01-01T00:00:00.25Z"), Some(1_767_225_600.25));
        for bad in [
            "",
            "tomorrow",
            "2026-13-01T00:00:00Z",
            "2026-01-01 00:00:00",
            "2026-01-01T00:00:00",
            "2026-01-01T00:00:00.Z",
            "2026-01-01T00:00:00+0100",
            "2026-01-01T0a:00:00Z",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }
}
