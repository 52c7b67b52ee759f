//! windlass-blocking with an exec credential plugin, end to end: a real
//! shell-script plugin (as the tokio and smol suites run) against
//! windlass-apiserver's bearer-token user. The script counts its runs in a
//! file, so each test checks how often the client ran it.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use support::{Harness, config_map, within};
use windlass_blocking::{Api, Client};
use windlass_proto::config::{ContextOptions, Kubeconfig};
use windlass_proto::params::ListParams;
use windlass_proto::request::PostParams;
use windlass_testkit::apiserver::TOKEN_CONTEXT;

/// A plugin in a folder of its own, and where it counts its runs.
struct Plugin {
    dir: PathBuf,
    runs: PathBuf,
    script: PathBuf,
}

impl Plugin {
    /// A plugin whose shell `body` sets `$token` (and may set `$expiry`, an
    /// RFC 3339 time) before it prints the `ExecCredential`. `$runs` is the
    /// file of earlier runs (one line each), appended to after `body`.
    fn new(name: &str, body: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "windlass-blocking-exec-{name}-{}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let runs = dir.join("runs");
        let script = dir.join("plugin.sh");
        let text = format!(
            r#"#!/bin/sh
runs='{runs}'
expiry=''
{body}
echo run >> "$runs"
if [ -n "$expiry" ]; then
  status="{{\"token\": \"$token\", \"expirationTimestamp\": \"$expiry\"}}"
else
  status="{{\"token\": \"$token\"}}"
fi
echo "{{\"apiVersion\": \"client.authentication.k8s.io/v1\", \"kind\": \"ExecCredential\", \"status\": $status}}"
"#,
            runs = runs.display()
        );
        std::fs::write(&script, text).unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        Self { dir, runs, script }
    }

    fn runs(&self) -> usize {
        std::fs::read_to_string(&self.runs).map_or(0, |s| s.lines().count())
    }

    /// A client of the server's bearer-token user, the token replaced by this plugin.
    fn client(&self, harness: &Harness) -> Client {
        let token = &token(harness);
        let exec = format!(
            "    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: {}\n      interactiveMode: Never\n",
            self.script.display()
        );
        let kubeconfig = harness
            .server()
            .kubeconfig()
            .replace(&format!("    token: {token}\n"), &exec);
        assert!(kubeconfig.contains("exec:"), "{kubeconfig}");
        let options = ContextOptions {
            context: Some(TOKEN_CONTEXT.to_owned()),
            ..Default::default()
        };
        let no_files = |p: &Path| {
            Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                p.display().to_string(),
            ))
        };
        let config = Kubeconfig::parse(kubeconfig.as_bytes(), None)
            .unwrap()
            .resolve(&options, &no_files)
            .unwrap();
        Client::from_config(&config).unwrap()
    }
}

impl Drop for Plugin {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The bearer token the server accepts.
fn token(harness: &Harness) -> String {
    harness
        .server()
        .credentials()
        .expect("a TLS server has credentials")
        .token
        .clone()
}

#[test]
fn e2e_blocking_exec_plugin_runs_once_for_many_threads() {
    let harness = Harness::default();
    let plugin = Plugin::new("once", &format!("token='{}'", token(&harness)));
    let maps: Api<ConfigMap> = Api::namespaced(plugin.client(&harness), "default").unwrap();
    within(30, move || {
        // A cold burst: every thread waits for the one plugin run.
        let threads: Vec<_> = (0..10)
            .map(|_| {
                let maps = maps.clone();
                std::thread::spawn(move || maps.list(&ListParams::default()).map(|_| ()))
            })
            .collect();
        for thread in threads {
            thread.join().unwrap().unwrap();
        }
        maps.create(&PostParams::default(), &config_map("exec", &[]))
            .unwrap();
        maps.get("exec").unwrap();
        assert_eq!(plugin.runs(), 1);
    });
}

#[test]
fn e2e_blocking_exec_plugin_expired_credential_is_refreshed() {
    let harness = Harness::default();
    // Each credential expires two seconds after the plugin printed it.
    let body = format!(
        "token='{}'\nexpiry=$(date -u -d \"@$(( $(date +%s) + 2 ))\" +%Y-%m-%dT%H:%M:%SZ)",
        token(&harness)
    );
    let plugin = Plugin::new("expiry", &body);
    let maps: Api<ConfigMap> = Api::namespaced(plugin.client(&harness), "default").unwrap();
    within(30, move || {
        maps.list(&ListParams::default()).unwrap();
        maps.list(&ListParams::default()).unwrap();
        assert_eq!(plugin.runs(), 1, "the credential is fresh");
        std::thread::sleep(Duration::from_secs(3));
        maps.list(&ListParams::default()).unwrap();
        assert_eq!(plugin.runs(), 2, "the expired credential was replaced");
    });
}

#[test]
fn e2e_blocking_exec_plugin_401_reruns_the_plugin_and_succeeds() {
    let harness = Harness::default();
    // The first run hands out a token the server refuses, later runs the right one.
    let body = format!(
        "if [ -s \"$runs\" ]; then token='{}'; else token='revoked'; fi",
        token(&harness)
    );
    let plugin = Plugin::new("rerun", &body);
    let maps: Api<ConfigMap> = Api::namespaced(plugin.client(&harness), "default").unwrap();
    within(30, move || {
        // A create: a 401 means the server did not act, so it is sent again.
        maps.create(&PostParams::default(), &config_map("after-401", &[]))
            .unwrap();
        assert_eq!(plugin.runs(), 2);
        maps.get("after-401").unwrap();
        assert_eq!(plugin.runs(), 2, "the new credential is kept");
    });
}

#[test]
fn e2e_blocking_exec_plugin_401_after_the_rerun_is_returned() {
    let harness = Harness::default();
    let plugin = Plugin::new("revoked", "token='revoked'");
    let maps: Api<ConfigMap> = Api::namespaced(plugin.client(&harness), "default").unwrap();
    within(30, move || {
        let error = maps.get("anything").unwrap_err();
        assert!(error.api().is_some_and(|e| e.is_unauthorized()), "{error}");
        assert_eq!(plugin.runs(), 2, "one re-run, then the 401 is the answer");
    });
}
