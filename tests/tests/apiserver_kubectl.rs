//! End to end with the real kubectl (`/usr/bin/kubectl`, or `KUBECTL`):
//! the same scenarios over TLS with client-certificate auth, over TLS with
//! the bearer token, and over plain HTTP, each against a started server
//! through the kubeconfig it wrote. A test prints why and passes as skipped
//! only when kubectl is absent.

mod apiserver_support;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use apiserver_support::{As, Client, TIMEOUT};
use http::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;
use windlass_testkit::apiserver::{ApiServer, RunningServer, TOKEN_CONTEXT};

fn kubectl_path() -> Option<PathBuf> {
    let path = std::env::var_os("KUBECTL")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/kubectl"));
    if path.is_file() {
        Some(path)
    } else {
        eprintln!(
            "skipped: kubectl not found at {} (set KUBECTL to run this test)",
            path.display()
        );
        None
    }
}

/// A kubectl bound to one server's kubeconfig, with its own cache directory.
struct Kubectl {
    bin: PathBuf,
    dir: PathBuf,
    context: Option<&'static str>,
}

impl Kubectl {
    fn new(bin: PathBuf, server: &RunningServer, name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "windlass-apiserver-kubectl-{name}-{}-{}",
            std::process::id(),
            server.addr().port()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("kubeconfig"), server.kubeconfig()).unwrap();
        Self {
            bin,
            dir,
            context: None,
        }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.bin);
        cmd.env("KUBECONFIG", self.dir.join("kubeconfig"))
            .env("HOME", &self.dir)
            .arg("--cache-dir")
            .arg(self.dir.join("cache"))
            .arg("--request-timeout=15s");
        if let Some(context) = self.context {
            cmd.arg("--context").arg(context);
        }
        cmd.args(args).kill_on_drop(true);
        cmd
    }

    /// Runs kubectl and returns its stdout; fails the test on a non-zero exit.
    async fn run(&self, args: &[&str]) -> String {
        let output = tokio::time::timeout(TIMEOUT, self.command(args).output())
            .await
            .unwrap_or_else(|_| panic!("kubectl {args:?} timed out"))
            .expect("kubectl runs");
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            output.status.success(),
            "kubectl {args:?} failed ({}):\nstdout: {stdout}\nstderr: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        stdout
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }
}

impl Drop for Kubectl {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

const MANIFEST: &str = "\
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: e2e
data:
  mode: fast
---
apiVersion: v1
kind: Pod
metadata:
  name: web
  namespace: e2e
  labels:
    app: web
spec:
  containers:
  - name: nginx
    image: nginx:1.27
    ports:
    - containerPort: 80
";

const APPLIED: &str = "\
apiVersion: v1
kind: ConfigMap
metadata:
  name: applied
  namespace: e2e
data:
  owner: kubectl
";

/// Every scenario the issue names, in order, against one server.
async fn scenarios(kubectl: &Kubectl, other: Client) {
    let out = kubectl.run(&["create", "namespace", "e2e"]).await;
    assert_eq!(out.trim(), "namespace/e2e created");

    let manifest = kubectl.write("manifest.yaml", MANIFEST);
    let out = kubectl
        .run(&["create", "-f", manifest.to_str().unwrap()])
        .await;
    assert!(out.contains("configmap/settings created"), "{out}");
    assert!(out.contains("pod/web created"), "{out}");

    // Table output: kubectl prints the server's columns.
    let out = kubectl.run(&["get", "pods", "-n", "e2e"]).await;
    let mut lines = out.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        ["NAME", "READY", "STATUS", "RESTARTS", "AGE"],
        "{out}"
    );
    let row: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(&row[..4], ["web", "0/1", "Pending", "0"], "{out}");
    let out = kubectl.run(&["get", "namespaces"]).await;
    assert!(
        out.lines()
            .any(|l| l.starts_with("e2e ") && l.contains("Active")),
        "{out}"
    );

    let out = kubectl
        .run(&["get", "configmap", "settings", "-n", "e2e", "-o", "json"])
        .await;
    let cm: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(cm["data"], json!({"mode": "fast"}));
    let out = kubectl
        .run(&[
            "get",
            "pod",
            "web",
            "-n",
            "e2e",
            "-o",
            "jsonpath={.spec.containers[0].image}",
        ])
        .await;
    assert_eq!(out, "nginx:1.27");

    // Server-side apply: created, then changed, with kubectl as field manager.
    let applied = kubectl.write("applied.yaml", APPLIED);
    let out = kubectl
        .run(&["apply", "--server-side", "-f", applied.to_str().unwrap()])
        .await;
    assert_eq!(out.trim(), "configmap/applied serverside-applied");
    kubectl.write(
        "applied.yaml",
        &APPLIED.replace("owner: kubectl", "owner: kubectl-2"),
    );
    kubectl
        .run(&["apply", "--server-side", "-f", applied.to_str().unwrap()])
        .await;
    let out = kubectl
        .run(&[
            "get",
            "configmap",
            "applied",
            "-n",
            "e2e",
            "-o",
            "json",
            "--show-managed-fields",
        ])
        .await;
    let cm: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(cm["data"]["owner"], "kubectl-2");
    assert_eq!(cm["metadata"]["managedFields"][0]["manager"], "kubectl");
    assert_eq!(cm["metadata"]["managedFields"][0]["operation"], "Apply");

    // Strategic merge patch (kubectl's default for built-ins).
    let out = kubectl
        .run(&[
            "patch",
            "pod",
            "web",
            "-n",
            "e2e",
            "-p",
            r#"{"spec":{"containers":[{"name":"nginx","image":"nginx:1.28"}]}}"#,
        ])
        .await;
    assert_eq!(out.trim(), "pod/web patched");
    let out = kubectl
        .run(&[
            "get",
            "pod",
            "web",
            "-n",
            "e2e",
            "-o",
            "jsonpath={.spec.containers[0].image} {.spec.containers[0].ports[0].containerPort}",
        ])
        .await;
    assert_eq!(
        out, "nginx:1.28 80",
        "the patch merged the container by name"
    );

    let out = kubectl
        .run(&["label", "pod", "web", "-n", "e2e", "tier=front"])
        .await;
    assert_eq!(out.trim(), "pod/web labeled");
    let out = kubectl
        .run(&[
            "get",
            "pods",
            "-n",
            "e2e",
            "-l",
            "tier=front",
            "-o",
            "jsonpath={.items[*].metadata.name}",
        ])
        .await;
    assert_eq!(out, "web");

    // get --watch sees a change another client makes.
    let mut watch = kubectl
        .command(&["get", "configmaps", "-n", "e2e", "--watch"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl get --watch");
    let mut stdout = BufReader::new(watch.stdout.take().unwrap()).lines();
    // The initial list comes first; then the other client's create.
    let first = tokio::time::timeout(TIMEOUT, stdout.next_line())
        .await
        .expect("kubectl --watch printed nothing")
        .unwrap()
        .unwrap_or_default();
    assert!(first.starts_with("NAME"), "{first}");
    let created = other
        .post_json(
            "/api/v1/namespaces/e2e/configmaps",
            &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "seen-by-watch"}}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED);
    let seen = tokio::time::timeout(TIMEOUT, async {
        while let Some(line) = stdout.next_line().await.unwrap() {
            if line.starts_with("seen-by-watch ") {
                return true;
            }
        }
        false
    })
    .await
    .expect("kubectl --watch never showed the other client's configmap");
    assert!(seen);
    watch.kill().await.unwrap();

    let out = kubectl.run(&["delete", "pod", "web", "-n", "e2e"]).await;
    assert_eq!(out.trim(), "pod \"web\" deleted");
    let gone = other.get("/api/v1/namespaces/e2e/pods/web").await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);

    let out = kubectl.run(&["api-resources"]).await;
    for want in [
        "pods ",
        "deployments ",
        "leases ",
        "customresourcedefinitions ",
    ] {
        assert!(
            out.lines().any(|l| l.starts_with(want)),
            "{want} missing:\n{out}"
        );
    }
}

fn tls_client(server: &RunningServer) -> Client {
    Client::new(server, As::Certificate)
}

async fn run_in_fresh_server(tls: bool, name: &str, context: Option<&'static str>) {
    let Some(bin) = kubectl_path() else { return };
    let server = ApiServer::builder().tls(tls).start().await.unwrap();
    let mut kubectl = Kubectl::new(bin, &server, name);
    kubectl.context = context;
    let other = if tls {
        tls_client(&server)
    } else {
        Client::new(&server, As::Anonymous)
    };
    scenarios(&kubectl, other).await;
    tokio::time::timeout(Duration::from_secs(10), server.shutdown())
        .await
        .expect("shutdown timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apiserver_kubectl_scenarios_over_tls_with_client_certificate() {
    run_in_fresh_server(true, "tls", None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apiserver_kubectl_scenarios_over_plain_http() {
    run_in_fresh_server(false, "plain", None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apiserver_kubectl_scenarios_over_tls_with_bearer_token() {
    run_in_fresh_server(true, "token", Some(TOKEN_CONTEXT)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apiserver_kubectl_with_a_wrong_token_is_refused() {
    let Some(bin) = kubectl_path() else { return };
    let server = ApiServer::builder().start().await.unwrap();
    let kubectl = Kubectl::new(bin, &server, "anon");
    // The same cluster, a user with a wrong token. (A user with no
    // credentials at all makes kubectl prompt for a username on a 401.)
    let kubeconfig = server
        .kubeconfig()
        .replace("current-context: windlass", "current-context: anonymous")
        .replace(
            "contexts:\n",
            "contexts:\n- name: anonymous\n  context:\n    cluster: windlass\n    user: nobody\n",
        )
        .replace(
            "users:\n",
            "users:\n- name: nobody\n  user:\n    token: not-the-token\n",
        );
    std::fs::write(kubectl.dir.join("kubeconfig"), kubeconfig).unwrap();
    let output = tokio::time::timeout(TIMEOUT, kubectl.command(&["get", "namespaces"]).output())
        .await
        .expect("kubectl timed out")
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("You must be logged in to the server"),
        "{stderr}"
    );
    server.shutdown().await;
}
