//! Credentials: what a user authenticates with, and the [`Credentials`]
//! state machine that keeps them fresh — a token file re-read as it rotates,
//! an exec plugin re-run when its credential expires or the server answers
//! 401 — without doing any IO itself.
//!
//! The machine follows the crate's run loop: after any input, drain
//! [`Credentials::poll_action`] (read this token file, run this plugin) and
//! perform what it asks, feed the result back with
//! [`Credentials::handle_token_file`] or [`Credentials::handle_exec_output`],
//! then call [`Credentials::authorize`] to add headers to a request. Sleep
//! until [`Credentials::poll_timeout`] at most.
//!
//! ```text
//! loop {
//!     while let Some(action) = creds.poll_action(now) {
//!         match action {
//!             CredentialAction::ReadTokenFile(path) => creds.handle_token_file(std::fs::read(&path), now),
//!             CredentialAction::RunExec(req) => { let out = run(req); creds.handle_exec_output(out, now, SystemTime::now())?; }
//!         }
//!     }
//!     let generation = creds.authorize(request.headers_mut())?;
//!     if response.status() == 401 && creds.handle_unauthorized(generation) { retry once }
//! }
//! ```
//!
//! | method | state | `poll_action` asks for | when |
//! |---|---|---|---|
//! | token file | token read at `t` | `ReadTokenFile` | `now >= t + 50 s` (client-go: 1 min period, 10 s leeway) |
//! | exec | no credential | `RunExec` | at once |
//! | exec | credential expiring at `e` | `RunExec` | `now >= e` |
//! | exec | after a 401 with the current credential | `RunExec` | at once, once per credential |
//! | exec | last run failed at `f` | `RunExec` | `now >= f + 1 s` |

use std::collections::BTreeMap;
use std::io;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http::header::{AUTHORIZATION, HeaderMap, HeaderName, HeaderValue};

use super::exec::{ExecOutcome, ExecPlugin, ExecRequest};
use super::secret::Secret;
use super::tls::ClientIdentity;

/// How often a token file is re-read: client-go's cached file token source
/// keeps a token for one minute, refreshing it 10 s early.
pub const TOKEN_FILE_REFRESH: Duration = Duration::from_secs(50);

/// The shortest wait before re-running an exec plugin whose last run failed
/// or returned a credential that was already expired.
pub const EXEC_RETRY_INTERVAL: Duration = Duration::from_secs(1);

/// How a user authenticates.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub enum AuthConfig {
    /// No credentials (a client certificate, if any, lives in the TLS description).
    #[default]
    None,
    /// `username` and `password`.
    Basic {
        /// The user name.
        username: String,
        /// The password.
        password: Secret<String>,
    },
    /// A bearer token, optionally kept fresh from a file that rotates.
    Bearer {
        /// The token to start with.
        token: Secret<String>,
        /// `tokenFile`, re-read every [`TOKEN_FILE_REFRESH`].
        file: Option<PathBuf>,
    },
    /// An exec credential plugin.
    Exec(Box<ExecPlugin>),
}

/// Who to act as: `as`, `as-uid`, `as-groups`, `as-user-extra`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Impersonation {
    /// `Impersonate-User`.
    pub user: Option<String>,
    /// `Impersonate-Uid`.
    pub uid: Option<String>,
    /// `Impersonate-Group`, one header per group.
    pub groups: Vec<String>,
    /// `Impersonate-Extra-<key>`, one header per value.
    pub extra: BTreeMap<String, Vec<String>>,
}

impl Impersonation {
    /// client-go refuses a uid, groups or extras without a user.
    pub fn validate(&self) -> Result<(), String> {
        if self.user.is_none()
            && (self.uid.is_some() || !self.groups.is_empty() || !self.extra.is_empty())
        {
            return Err(
                "impersonating a uid, groups or extra fields requires impersonating a user (as)"
                    .into(),
            );
        }
        Ok(())
    }

    /// Adds the `Impersonate-*` headers. Extra keys are percent-encoded as
    /// client-go does (every byte outside the HTTP token characters, and `%`).
    pub fn apply(&self, headers: &mut HeaderMap) -> Result<(), AuthError> {
        let value = |v: &str| {
            HeaderValue::from_str(v).map_err(|_| AuthError::Header {
                what: "an impersonation value".into(),
            })
        };
        if let Some(user) = &self.user {
            headers.insert("impersonate-user", value(user)?);
        }
        if let Some(uid) = &self.uid {
            headers.insert("impersonate-uid", value(uid)?);
        }
        for group in &self.groups {
            headers.append("impersonate-group", value(group)?);
        }
        for (key, values) in &self.extra {
            let name = format!("impersonate-extra-{}", escape_header_key(key));
            let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| AuthError::Header {
                what: format!("impersonation extra key {key:?}"),
            })?;
            for v in values {
                headers.append(name.clone(), value(v)?);
            }
        }
        Ok(())
    }
}

/// client-go's `headerKeyEscape`: keep alphanumerics and
/// ``!#$&'*+-.^_`|~``, percent-encode every other byte.
fn escape_header_key(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for b in key.bytes() {
        if b.is_ascii_alphanumeric() || b"!#$&'*+-.^_`|~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A token file's bytes as a token: surrounding whitespace trimmed, empty refused.
pub fn token_from_file_bytes(bytes: &[u8]) -> Result<Secret<String>, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "the token file is not UTF-8".to_owned())?;
    let token = text.trim();
    if token.is_empty() {
        return Err("the token file is empty".into());
    }
    Ok(Secret::new(token.to_owned()))
}

/// A credential problem at request time. Never carries a secret.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthError {
    /// No credential yet: drain [`Credentials::poll_action`] first.
    #[error("no credential yet: the exec plugin has not run")]
    NotReady,
    /// The exec plugin's command does not exist.
    #[error("exec plugin: executable {command} not found{}", hint.as_deref().map(|h| format!("\n\n{h}")).unwrap_or_default())]
    ExecNotFound {
        /// The command.
        command: String,
        /// The kubeconfig's `installHint`.
        hint: Option<String>,
    },
    /// The plugin could not be started.
    #[error("exec plugin: cannot run {command}: {message}")]
    ExecSpawn {
        /// The command.
        command: String,
        /// The OS error.
        message: String,
    },
    /// The plugin exited with a failure.
    #[error("exec plugin: {command} failed with {}", status.map(|s| format!("exit code {s}")).unwrap_or_else(|| "a signal".into()))]
    ExecFailed {
        /// The command.
        command: String,
        /// Its exit code (`None` when killed by a signal).
        status: Option<i32>,
    },
    /// The plugin's output is not a valid `ExecCredential`.
    #[error("exec plugin: {command} returned an invalid ExecCredential: {message}")]
    ExecOutput {
        /// The command.
        command: String,
        /// What is wrong (never the output itself).
        message: String,
    },
    /// `interactiveMode: Always` but standard input is not a terminal.
    #[error(
        "exec plugin: {command} needs an interactive terminal (interactiveMode Always) but standard input is not one"
    )]
    ExecNeedsTerminal {
        /// The command.
        command: String,
    },
    /// A header value cannot be built (a control character in a name or value).
    #[error("cannot build the header for {what}")]
    Header {
        /// Which value.
        what: String,
    },
}

/// What the credential machine needs done.
#[derive(Debug)]
pub enum CredentialAction {
    /// Read this token file and pass the result to [`Credentials::handle_token_file`].
    ReadTokenFile(PathBuf),
    /// Run this plugin and pass the result to [`Credentials::handle_exec_output`].
    RunExec(ExecRequest),
}

/// Keeps a user's credentials fresh and adds them to requests. See the module doc.
#[derive(Debug)]
pub struct Credentials {
    method: Method,
    impersonation: Impersonation,
    generation: u64,
    pending: bool,
}

#[derive(Debug)]
enum Method {
    None,
    Basic(Secret<HeaderValue>),
    Bearer {
        token: Secret<String>,
        file: Option<(PathBuf, Instant)>,
    },
    Exec {
        plugin: Box<ExecPlugin>,
        stdin_is_terminal: bool,
        state: ExecState,
    },
}

#[derive(Debug)]
struct ExecState {
    token: Option<Secret<String>>,
    identity: Option<ClientIdentity>,
    has_credential: bool,
    expires_at: Option<Instant>,
    not_before: Option<Instant>,
    last_error: Option<AuthError>,
    unauthorized_seen: bool,
}

impl Credentials {
    /// A machine for `auth` and `impersonation`. `stdin_is_terminal` tells
    /// an exec plugin whether it may prompt (`interactiveMode`).
    pub fn new(
        auth: &AuthConfig,
        impersonation: &Impersonation,
        stdin_is_terminal: bool,
        now: Instant,
    ) -> Credentials {
        let method = match auth {
            AuthConfig::None => Method::None,
            AuthConfig::Basic { username, password } => {
                let raw = STANDARD.encode(format!("{username}:{}", password.expose()));
                let mut value = HeaderValue::from_str(&format!("Basic {raw}"))
                    .expect("base64 is a valid header value");
                value.set_sensitive(true);
                Method::Basic(Secret::new(value))
            }
            AuthConfig::Bearer { token, file } => Method::Bearer {
                token: token.clone(),
                file: file.clone().map(|f| (f, now + TOKEN_FILE_REFRESH)),
            },
            AuthConfig::Exec(plugin) => Method::Exec {
                plugin: plugin.clone(),
                stdin_is_terminal,
                state: ExecState {
                    token: None,
                    identity: None,
                    has_credential: false,
                    expires_at: None,
                    not_before: None,
                    last_error: None,
                    unauthorized_seen: false,
                },
            },
        };
        Credentials {
            method,
            impersonation: impersonation.clone(),
            generation: 0,
            pending: false,
        }
    }

    // --- getters

    /// The client certificate an exec plugin issued, if any. When
    /// [`generation`](Self::generation) changes the adapter rebuilds its TLS
    /// configuration with it ([`TlsDescription::with_identity`](super::tls::TlsDescription::with_identity)).
    pub fn client_identity(&self) -> Option<&ClientIdentity> {
        match &self.method {
            Method::Exec { state, .. } => state.identity.as_ref(),
            _ => None,
        }
    }

    /// A number that changes whenever the credential does.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    // --- inputs

    /// The result of reading the token file. A failed or empty read keeps
    /// the previous token (client-go logs and carries on).
    pub fn handle_token_file(&mut self, result: io::Result<Vec<u8>>, now: Instant) {
        let Method::Bearer {
            token,
            file: Some((path, refresh_at)),
        } = &mut self.method
        else {
            return;
        };
        self.pending = false;
        *refresh_at = now + TOKEN_FILE_REFRESH;
        match result
            .map_err(|e| e.to_string())
            .and_then(|b| token_from_file_bytes(&b))
        {
            Ok(new) => {
                if new != *token {
                    *token = new;
                    self.generation += 1;
                }
            }
            Err(error) => {
                tracing::warn!(path = %path.display(), %error, "cannot re-read the token file; keeping the previous token");
            }
        }
    }

    /// The result of running the exec plugin. `now` and `wall_now` are the
    /// same moment on the monotonic and the wall clock: the credential's
    /// `expirationTimestamp` is wall-clock time.
    pub fn handle_exec_output(
        &mut self,
        outcome: ExecOutcome,
        now: Instant,
        wall_now: SystemTime,
    ) -> Result<(), AuthError> {
        let Method::Exec { plugin, state, .. } = &mut self.method else {
            return Ok(());
        };
        self.pending = false;
        match plugin.parse_outcome(outcome, now, wall_now) {
            Ok(credential) => {
                state.token = credential.token;
                state.identity = credential.identity;
                state.has_credential = true;
                state.expires_at = credential.expires_at;
                state.last_error = None;
                state.unauthorized_seen = false;
                // A credential that is already expired is used once, not re-fetched in a loop.
                state.not_before = Some(now + EXEC_RETRY_INTERVAL);
                self.generation += 1;
                Ok(())
            }
            Err(error) => {
                tracing::warn!(%error, "exec credential plugin failed");
                state.last_error = Some(error.clone());
                state.not_before = Some(now + EXEC_RETRY_INTERVAL);
                Err(error)
            }
        }
    }

    /// The server answered 401 to a request sent with credential
    /// `generation`. For an exec plugin the credential is dropped and the
    /// plugin re-run — once per credential; returns whether the request is
    /// worth retrying after draining [`poll_action`](Self::poll_action).
    pub fn handle_unauthorized(&mut self, generation: u64) -> bool {
        let Method::Exec { state, .. } = &mut self.method else {
            return false;
        };
        if generation != self.generation || state.unauthorized_seen {
            return false;
        }
        state.unauthorized_seen = true;
        state.has_credential = false;
        state.not_before = None;
        true
    }

    // --- outputs

    /// What to do next, if anything. An action is handed out once; the
    /// machine waits for its result before asking again.
    pub fn poll_action(&mut self, now: Instant) -> Option<CredentialAction> {
        if self.pending {
            return None;
        }
        let action = match &self.method {
            Method::Bearer {
                file: Some((path, refresh_at)),
                ..
            } if now >= *refresh_at => CredentialAction::ReadTokenFile(path.clone()),
            Method::Exec {
                plugin,
                stdin_is_terminal,
                state,
            } => {
                let expired = state.expires_at.is_some_and(|e| now >= e);
                let due = !state.has_credential || expired;
                if !due || state.not_before.is_some_and(|t| now < t) {
                    return None;
                }
                match plugin.request(*stdin_is_terminal) {
                    Ok(request) => CredentialAction::RunExec(request),
                    Err(error) => {
                        if let Method::Exec { state, .. } = &mut self.method {
                            state.last_error = Some(error);
                            state.not_before = Some(now + EXEC_RETRY_INTERVAL);
                        }
                        return None;
                    }
                }
            }
            _ => return None,
        };
        self.pending = true;
        Some(action)
    }

    /// When [`poll_action`](Self::poll_action) will next have something to do.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.pending {
            return None;
        }
        match &self.method {
            Method::Bearer {
                file: Some((_, at)),
                ..
            } => Some(*at),
            Method::Exec { state, .. } if !state.has_credential => state.not_before,
            Method::Exec { state, .. } => state
                .expires_at
                .map(|e| e.max(state.not_before.unwrap_or(e))),
            _ => None,
        }
    }

    /// Adds the `Authorization` and `Impersonate-*` headers; returns the
    /// credential generation to pass to
    /// [`handle_unauthorized`](Self::handle_unauthorized) on a 401.
    pub fn authorize(&self, headers: &mut HeaderMap) -> Result<u64, AuthError> {
        match &self.method {
            Method::None => {}
            Method::Basic(value) => {
                headers.insert(AUTHORIZATION, value.expose().clone());
            }
            Method::Bearer { token, .. } => {
                headers.insert(AUTHORIZATION, bearer(token)?);
            }
            Method::Exec { state, .. } => {
                if !state.has_credential {
                    return Err(state.last_error.clone().unwrap_or(AuthError::NotReady));
                }
                if let Some(token) = &state.token {
                    headers.insert(AUTHORIZATION, bearer(token)?);
                }
            }
        }
        self.impersonation.apply(headers)?;
        Ok(self.generation)
    }
}

fn bearer(token: &Secret<String>) -> Result<HeaderValue, AuthError> {
    let mut value = HeaderValue::from_str(&format!("Bearer {}", token.expose())).map_err(|_| {
        AuthError::Header {
            what: "the bearer token (it holds a control character)".into(),
        }
    })?;
    value.set_sensitive(true);
    Ok(value)
}
