//! Exec credential plugins, run for real: the test acts as the adapter and
//! runs each `CredentialAction::RunExec` with `std::process`, the way a
//! runtime crate does with its own process API.
#![cfg(unix)]

mod support;

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use http::HeaderMap;
use support::{Ca, TempDir, b64, handshake, server_config};
use windlass_proto::config::{
    AuthConfig, AuthError, ContextOptions, CredentialAction, Credentials, ExecOutcome, ExecRequest,
    LocalFiles, parse_rfc3339,
};

/// The plugin: counts its runs, records its arguments, environment and
/// `KUBERNETES_EXEC_INFO`, then prints `response` with `__N__` replaced by
/// the run number and exits with `exit`.
const PLUGIN: &str = r#"#!/bin/sh
dir="$(dirname "$0")/.."
n=$(cat "$dir/count" 2>/dev/null || echo 0)
n=$((n + 1))
echo "$n" > "$dir/count"
printf '%s' "$KUBERNETES_EXEC_INFO" > "$dir/exec-info.json"
printf '%s\n' "$@" > "$dir/args"
printf '%s' "$PLUGIN_GREETING" > "$dir/env"
sed "s/__N__/$n/g" "$dir/response"
exit "$(cat "$dir/exit" 2>/dev/null || echo 0)"
"#;

/// The wall clock the tests pretend it is.
const WALL_NOW: &str = "2026-01-01T00:00:00Z";

/// The adapter's job: run the request with std::process.
fn run(request: &ExecRequest) -> ExecOutcome {
    let mut command = Command::new(&request.command);
    command
        .args(&request.args)
        .envs(request.env.iter().map(|(k, v)| (k, v.expose())))
        .stdin(if request.stdin {
            Stdio::inherit()
        } else {
            Stdio::null()
        })
        .stderr(Stdio::inherit());
    ExecOutcome::from_output(command.output().map(|o| (o.status.code(), o.stdout)))
}

struct Plugin {
    dir: TempDir,
}

impl Plugin {
    fn new(name: &str, api_version: &str, extra_exec: &str) -> Plugin {
        let dir = TempDir::new(name);
        let script = dir.write("bin/plugin.sh", PLUGIN);
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        dir.write(
            "config",
            format!(
                r#"apiVersion: v1
kind: Config
clusters:
- name: prod
  cluster:
    server: https://prod.example:6443
    certificate-authority-data: {ca}
    extensions:
    - name: client.authentication.k8s.io/exec
      extension: {{audience: prod-audience, region: eu-1}}
users:
- name: robot
  user:
    exec:
      apiVersion: {api_version}
      command: ./bin/plugin.sh
      args: [--cluster, prod]
      env:
      - {{name: PLUGIN_GREETING, value: hello-from-kubeconfig}}
      provideClusterInfo: true
{extra_exec}contexts:
- name: prod
  context: {{cluster: prod, user: robot}}
current-context: prod
"#,
                ca = b64(Ca::new("prod-ca").cert_pem),
            ),
        );
        Plugin { dir }
    }

    fn respond(&self, response: &str) {
        self.dir.write("response", response);
    }

    fn token_response(&self, api_version: &str, expiry: &str) {
        self.respond(&format!(
            r#"{{"kind":"ExecCredential","apiVersion":"{api_version}","status":{{"token":"token-__N__","expirationTimestamp":"{expiry}"}}}}"#
        ));
    }

    fn auth(&self) -> AuthConfig {
        let kubeconfig = windlass_proto::config::load::load_kubeconfig_file(
            &self.dir.path().join("config"),
            &LocalFiles,
        )
        .unwrap();
        kubeconfig
            .resolve(&ContextOptions::default(), &LocalFiles)
            .unwrap()
            .auth
    }

    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(name)).unwrap()
    }

    fn runs(&self) -> u32 {
        std::fs::read_to_string(self.dir.path().join("count"))
            .map(|s| s.trim().parse().unwrap())
            .unwrap_or(0)
    }
}

/// Drains the machine's actions, running plugins; returns the last exec result.
fn drive(creds: &mut Credentials, now: Instant) -> Option<Result<(), AuthError>> {
    let wall =
        parse_rfc3339(WALL_NOW).unwrap() + now.duration_since(*START.get_or_init(Instant::now));
    let mut last = None;
    while let Some(action) = creds.poll_action(now) {
        match action {
            CredentialAction::RunExec(request) => {
                last = Some(creds.handle_exec_output(run(&request), now, wall))
            }
            CredentialAction::ReadTokenFile(path) => {
                creds.handle_token_file(std::fs::read(path), now)
            }
        }
    }
    last
}

static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();

fn bearer(creds: &Credentials) -> (String, u64) {
    let mut headers = HeaderMap::new();
    let generation = creds.authorize(&mut headers).unwrap();
    let value = headers
        .get(http::header::AUTHORIZATION)
        .map(|v| v.to_str().unwrap().to_owned());
    (value.unwrap_or_default(), generation)
}

#[test]
fn exec_plugin_token_is_used_cached_and_refreshed_after_expiry() {
    let plugin = Plugin::new(
        "exec-refresh",
        "client.authentication.k8s.io/v1",
        "      interactiveMode: Never\n",
    );
    plugin.token_response("client.authentication.k8s.io/v1", "2026-01-01T00:01:00Z");
    let start = *START.get_or_init(Instant::now);
    let mut creds = Credentials::new(&plugin.auth(), &Default::default(), false, start);

    assert!(matches!(
        creds.authorize(&mut HeaderMap::new()),
        Err(AuthError::NotReady)
    ));
    drive(&mut creds, start).unwrap().unwrap();
    assert_eq!(bearer(&creds).0, "Bearer token-1");
    assert_eq!(plugin.runs(), 1);

    // What the plugin saw.
    assert_eq!(plugin.read("args"), "--cluster\nprod\n");
    assert_eq!(plugin.read("env"), "hello-from-kubeconfig");
    let info: serde_json::Value = serde_json::from_str(&plugin.read("exec-info.json")).unwrap();
    assert_eq!(info["kind"], "ExecCredential");
    assert_eq!(info["apiVersion"], "client.authentication.k8s.io/v1");
    assert_eq!(info["spec"]["interactive"], false);
    assert_eq!(
        info["spec"]["cluster"]["server"],
        "https://prod.example:6443"
    );
    assert_eq!(
        info["spec"]["cluster"]["config"]["audience"],
        "prod-audience"
    );
    assert_eq!(info["spec"]["cluster"]["config"]["region"], "eu-1");
    assert!(
        info["spec"]["cluster"]["certificate-authority-data"]
            .as_str()
            .unwrap()
            .starts_with("LS0t")
    );

    // Cached until expirationTimestamp (one minute on the wall clock).
    assert_eq!(creds.poll_timeout(), Some(start + Duration::from_secs(60)));
    assert!(drive(&mut creds, start + Duration::from_secs(59)).is_none());
    assert_eq!(bearer(&creds).0, "Bearer token-1");
    assert_eq!(plugin.runs(), 1);

    // Expired: re-run, new token.
    plugin.token_response("client.authentication.k8s.io/v1", "2026-01-01T00:10:00Z");
    drive(&mut creds, start + Duration::from_secs(60))
        .unwrap()
        .unwrap();
    assert_eq!(bearer(&creds).0, "Bearer token-2");
    assert_eq!(plugin.runs(), 2);
}

#[test]
fn exec_plugin_is_rerun_once_on_401() {
    let plugin = Plugin::new("exec-401", "client.authentication.k8s.io/v1beta1", "");
    plugin.token_response(
        "client.authentication.k8s.io/v1beta1",
        "2026-01-01T01:00:00Z",
    );
    let start = *START.get_or_init(Instant::now);
    let mut creds = Credentials::new(&plugin.auth(), &Default::default(), false, start);
    drive(&mut creds, start).unwrap().unwrap();
    let (token, first) = bearer(&creds);
    assert_eq!(token, "Bearer token-1");

    // The server says 401: drop the credential, run the plugin again, retry once.
    assert!(creds.handle_unauthorized(first));
    drive(&mut creds, start).unwrap().unwrap();
    let (token, second) = bearer(&creds);
    assert_eq!(token, "Bearer token-2");
    // A late 401 for the old credential does not re-run the plugin.
    assert!(!creds.handle_unauthorized(first));
    // A 401 for the new one does, once; a second 401 for it does not.
    assert!(creds.handle_unauthorized(second));
    assert!(!creds.handle_unauthorized(second));
    drive(&mut creds, start).unwrap().unwrap();
    assert_eq!(bearer(&creds).0, "Bearer token-3");
    assert!(
        drive(&mut creds, start).is_none(),
        "no further run without a reason"
    );
    assert_eq!(plugin.runs(), 3);
    // v1beta1 without interactiveMode defaults to IfAvailable: no terminal, not interactive.
    let info: serde_json::Value = serde_json::from_str(&plugin.read("exec-info.json")).unwrap();
    assert_eq!(info["spec"]["interactive"], false);
}

#[test]
fn exec_missing_command_gives_the_install_hint() {
    let dir = TempDir::new("exec-missing");
    dir.write(
        "config",
        r#"apiVersion: v1
clusters: [{name: c, cluster: {server: "https://kube.example"}}]
users:
- name: u
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1beta1
      command: windlass-no-such-plugin-xyz
      installHint: "Install it with: brew install windlass-no-such-plugin-xyz"
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
"#,
    );
    let config =
        windlass_proto::config::load::load_kubeconfig_file(&dir.path().join("config"), &LocalFiles)
            .unwrap()
            .resolve(&ContextOptions::default(), &LocalFiles)
            .unwrap();
    let now = Instant::now();
    let mut creds = config.credentials(false, now);
    let error = drive(&mut creds, now).unwrap().unwrap_err();
    assert!(matches!(error, AuthError::ExecNotFound { .. }), "{error:?}");
    let message = error.to_string();
    assert!(
        message.contains("windlass-no-such-plugin-xyz not found"),
        "{message}"
    );
    assert!(
        message.contains("Install it with: brew install"),
        "{message}"
    );
    // A request meanwhile gets the same error, and the plugin is not re-run in a tight loop.
    assert_eq!(creds.authorize(&mut HeaderMap::new()).unwrap_err(), error);
    assert!(creds.poll_action(now).is_none());
    assert!(creds.poll_action(now + Duration::from_secs(1)).is_some());
}

#[test]
fn exec_plugin_failure_reports_the_exit_code_without_its_output() {
    let plugin = Plugin::new("exec-fail", "client.authentication.k8s.io/v1beta1", "");
    plugin.respond(r#"{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1beta1","status":{"token":"leaked-secret"}}"#);
    plugin.dir.write("exit", "3");
    let now = Instant::now();
    let mut creds = Credentials::new(&plugin.auth(), &Default::default(), false, now);
    let error = drive(&mut creds, now).unwrap().unwrap_err();
    let message = error.to_string();
    assert!(message.contains("exit code 3"), "{message}");
    assert!(!message.contains("leaked-secret"), "{message}");
}

#[test]
fn exec_plugin_output_errors_never_quote_the_output() {
    let cases = [
        // wrong apiVersion
        (
            r#"{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1","status":{"token":"sekrit-1"}}"#,
            "configured to use API version",
        ),
        // no status
        (
            r#"{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1beta1"}"#,
            "no status",
        ),
        // neither token nor certificate
        (
            r#"{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1beta1","status":{}}"#,
            "neither a token",
        ),
        // not JSON or YAML
        ("sekrit-2: [unclosed", "neither JSON nor YAML"),
        // bad expiry
        (
            r#"{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1beta1","status":{"token":"sekrit-3","expirationTimestamp":"tomorrow"}}"#,
            "expirationTimestamp",
        ),
    ];
    for (i, (output, expected)) in cases.iter().enumerate() {
        let plugin = Plugin::new(
            &format!("exec-bad-{i}"),
            "client.authentication.k8s.io/v1beta1",
            "",
        );
        plugin.respond(output);
        let now = Instant::now();
        let mut creds = Credentials::new(&plugin.auth(), &Default::default(), false, now);
        let error = drive(&mut creds, now).unwrap().unwrap_err();
        let message = error.to_string();
        assert!(message.contains(expected), "{message}");
        assert!(!message.contains("sekrit"), "{message}");
    }
}

#[test]
fn exec_plugin_yaml_output_is_accepted() {
    let plugin = Plugin::new("exec-yaml", "client.authentication.k8s.io/v1beta1", "");
    plugin.respond("kind: ExecCredential\napiVersion: client.authentication.k8s.io/v1beta1\nstatus:\n  token: yaml-token-__N__\n");
    let now = Instant::now();
    let mut creds = Credentials::new(&plugin.auth(), &Default::default(), false, now);
    drive(&mut creds, now).unwrap().unwrap();
    assert_eq!(bearer(&creds).0, "Bearer yaml-token-1");
    assert_eq!(
        creds.poll_timeout(),
        None,
        "no expirationTimestamp: cached for good"
    );
}

#[test]
fn exec_plugin_client_certificate_is_used_for_tls() {
    let ca = Ca::new("prod-ca");
    let client = ca.client("robot");
    let server = ca.server(&["prod.example"]);
    let plugin = Plugin::new(
        "exec-cert",
        "client.authentication.k8s.io/v1",
        "      interactiveMode: IfAvailable\n",
    );
    let status = serde_json::json!({
        "kind": "ExecCredential",
        "apiVersion": "client.authentication.k8s.io/v1",
        "status": {"clientCertificateData": client.cert_pem, "clientKeyData": client.key_pem}
    });
    plugin.respond(&status.to_string());
    let now = Instant::now();
    let auth = plugin.auth();
    let mut creds = Credentials::new(&auth, &Default::default(), false, now);
    drive(&mut creds, now).unwrap().unwrap();
    let mut headers = HeaderMap::new();
    creds.authorize(&mut headers).unwrap();
    assert!(
        headers.get(http::header::AUTHORIZATION).is_none(),
        "a certificate, no token"
    );
    let identity = creds
        .client_identity()
        .expect("the plugin's certificate")
        .clone();

    // The adapter rebuilds its TLS configuration with the plugin's identity.
    let tls = windlass_proto::config::TlsDescription {
        ca: Some(windlass_proto::config::parse_certificates(ca.cert_pem.as_bytes()).unwrap()),
        ..Default::default()
    }
    .with_identity(Some(identity));
    let name = tls.server_name("prod.example").unwrap();
    let conn = handshake(
        tls.client_config().unwrap(),
        name,
        server_config(&server, Some(&ca.cert_pem)),
    )
    .unwrap();
    assert!(conn.peer_certificates().is_some());
}

#[test]
fn exec_interactive_mode_decides_stdin_and_exec_info() {
    let always = Plugin::new(
        "exec-always",
        "client.authentication.k8s.io/v1",
        "      interactiveMode: Always\n",
    );
    let AuthConfig::Exec(plugin) = always.auth() else {
        panic!("exec")
    };
    let error = plugin.request(false).unwrap_err();
    assert!(
        error.to_string().contains("interactive terminal"),
        "{error}"
    );
    let request = plugin.request(true).unwrap();
    assert!(request.stdin);

    let if_available = Plugin::new(
        "exec-ifavail",
        "client.authentication.k8s.io/v1",
        "      interactiveMode: IfAvailable\n",
    );
    let AuthConfig::Exec(plugin) = if_available.auth() else {
        panic!("exec")
    };
    assert!(plugin.request(true).unwrap().stdin);
    assert!(!plugin.request(false).unwrap().stdin);
    assert_eq!(plugin.exec_info(true)["spec"]["interactive"], true);

    let never = Plugin::new(
        "exec-never",
        "client.authentication.k8s.io/v1",
        "      interactiveMode: Never\n",
    );
    let AuthConfig::Exec(plugin) = never.auth() else {
        panic!("exec")
    };
    assert!(!plugin.request(true).unwrap().stdin);
}

#[test]
fn exec_v1_without_interactive_mode_is_a_config_error() {
    let plugin = Plugin::new("exec-v1-nomode", "client.authentication.k8s.io/v1", "");
    let error = windlass_proto::config::load::load_kubeconfig_file(
        &plugin.dir.path().join("config"),
        &LocalFiles,
    )
    .unwrap()
    .resolve(&ContextOptions::default(), &LocalFiles)
    .unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains("interactiveMode must be specified"),
        "{message}"
    );
    assert!(
        message.contains("users[\"robot\"].user.exec.interactiveMode"),
        "{message}"
    );
    assert!(
        message.contains(&plugin.dir.path().join("config").display().to_string()),
        "{message}"
    );
}

#[test]
fn exec_redact_env_exec_info_and_tokens() {
    let plugin = Plugin::new("exec-redact", "client.authentication.k8s.io/v1beta1", "");
    plugin.token_response(
        "client.authentication.k8s.io/v1beta1",
        "2026-01-01T01:00:00Z",
    );
    let auth = plugin.auth();
    assert!(
        !format!("{auth:?}").contains("hello-from-kubeconfig"),
        "exec env values are redacted"
    );
    let AuthConfig::Exec(exec) = &auth else {
        panic!("exec")
    };
    let request = exec.request(false).unwrap();
    let shown = format!("{request:?}");
    assert!(!shown.contains("hello-from-kubeconfig"), "{shown}");
    assert!(
        !shown.contains("prod-audience"),
        "KUBERNETES_EXEC_INFO is redacted: {shown}"
    );
    let now = Instant::now();
    let mut creds = Credentials::new(&auth, &Default::default(), false, now);
    drive(&mut creds, now).unwrap().unwrap();
    let shown = format!("{creds:?}");
    assert!(!shown.contains("token-1"), "{shown}");
    let mut headers = HeaderMap::new();
    creds.authorize(&mut headers).unwrap();
    assert!(headers[http::header::AUTHORIZATION].is_sensitive());
    let outcome = ExecOutcome::Exited {
        status: Some(0),
        stdout: b"{\"token\":\"raw-stdout-secret\"}".to_vec().into(),
    };
    assert!(!format!("{outcome:?}").contains("raw-stdout-secret"));
}
