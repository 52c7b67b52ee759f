//! Kubeconfig loading, merging, contexts, every authentication method, bad
//! input and redaction — over every file in `fixtures/kubeconfigs` (the
//! templated ones with their placeholders filled in) and hand-written cases.

mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use http::HeaderMap;
use support::{Ca, MemFiles, TempDir, b64, kubeconfig_fixtures};
use windlass_proto::config::load::{self, Environment};
use windlass_proto::config::{
    AuthConfig, Config, ConfigError, ContextOptions, CredentialAction, Credentials, Impersonation,
    Kubeconfig, LocalFiles, TOKEN_FILE_REFRESH,
};

const NO_FILES: fn(&Path) -> std::io::Result<Vec<u8>> = |_| {
    Err(std::io::Error::new(
        std::io::ErrorKind::NotFound,
        "no such file",
    ))
};

fn parse(yaml: &str) -> Kubeconfig {
    Kubeconfig::parse(yaml.as_bytes(), Some(Path::new("/home/me/.kube/config"))).unwrap()
}

fn resolve(yaml: &str) -> Result<Config, ConfigError> {
    parse(yaml).resolve(&ContextOptions::default(), &NO_FILES)
}

fn headers_of(config: &Config) -> HeaderMap {
    let creds = config.credentials(false, Instant::now());
    let mut headers = HeaderMap::new();
    creds.authorize(&mut headers).unwrap();
    headers
}

fn read_fixture(dir: &Path, name: &str) -> (PathBuf, Vec<u8>) {
    let path = dir.join(name);
    let bytes = std::fs::read(&path).unwrap();
    (path, bytes)
}

/// A minimal kubeconfig with one context `c` → cluster `c`, user `u`; `user` is the user's YAML body.
fn with_user(user: &str) -> String {
    format!(
        "apiVersion: v1\nclusters:\n- name: c\n  cluster:\n    server: https://kube.example\ncontexts:\n- name: c\n  context: {{cluster: c, user: u}}\ncurrent-context: c\nusers:\n- name: u\n  user:\n{}",
        user.lines()
            .map(|l| format!("    {l}\n"))
            .collect::<String>()
    )
}

// ---------------------------------------------------------------- fixtures

/// Every file in fixtures/kubeconfigs has a test below; a new fixture fails
/// this test until it gets one.
#[test]
fn kubeconfig_fixtures_are_all_covered() {
    let Some(dir) = kubeconfig_fixtures() else {
        return;
    };
    let mut found = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            for inner in std::fs::read_dir(&path).unwrap() {
                found.push(
                    inner
                        .unwrap()
                        .path()
                        .strip_prefix(&dir)
                        .unwrap()
                        .display()
                        .to_string(),
                );
            }
        } else {
            found.push(path.strip_prefix(&dir).unwrap().display().to_string());
        }
    }
    found.sort();
    let covered = [
        "README.md",
        "eks-aws-iam-authenticator-aws-profile.readme.yaml",
        "eks-aws-iam-authenticator-hack-dev.template.yaml",
        "exec-provideClusterInfo-cluster-extension.kube-rs-test.yaml",
        "gke-gcloud-auth-plugin-with-unknown-fields.kube-rs-test.yaml",
        "gke-legacy-auth-provider-gcp.user-fragment.tpl",
        "in-cluster.md",
        "k3d-multi-document.kube-rs-test.yaml",
        "kind-kind.kind-encode-test.yaml",
        "kube-rs-test-data/kubeconfig_utf16be.yaml",
        "kube-rs-test-data/kubeconfig_utf16le.yaml",
        "kube-rs-test-data/kubeconfig_utf8.yaml",
        "minikube-plus-eks-aws-cli.kube-rs-test.yaml",
    ];
    assert_eq!(found, covered);
}

#[test]
fn kubeconfig_fixture_kind_parses_and_its_dummy_data_is_reported_as_bad_base64() {
    let Some(dir) = kubeconfig_fixtures() else {
        return;
    };
    let (path, bytes) = read_fixture(&dir, "kind-kind.kind-encode-test.yaml");
    let kc = Kubeconfig::parse(&bytes, Some(&path)).unwrap();
    assert_eq!(kc.current_context.as_deref(), Some("kind-kind"));
    let cluster = kc.cluster("kind-kind").unwrap();
    assert_eq!(
        cluster.cluster.server.as_deref(),
        Some("https://192.168.9.4:6443")
    );
    assert_eq!(cluster.file.as_deref(), Some(path.as_path()));
    // The fixture's certificate data are dummies ("definitelyacert"): not base64.
    let error = kc
        .resolve(&ContextOptions::default(), &NO_FILES)
        .unwrap_err();
    let message = error.to_string();
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(message.contains("context \"kind-kind\""), "{message}");
    assert!(
        message.contains("clusters[\"kind-kind\"].cluster.certificate-authority-data"),
        "{message}"
    );
    assert!(message.contains("invalid base64"), "{message}");
}

#[test]
fn kubeconfig_fixture_minikube_reads_referenced_files_and_eks_user_fields() {
    let Some(dir) = kubeconfig_fixtures() else {
        return;
    };
    let (path, bytes) = read_fixture(&dir, "minikube-plus-eks-aws-cli.kube-rs-test.yaml");
    let kc = Kubeconfig::parse(&bytes, Some(&path)).unwrap();
    assert_eq!(kc.current_context.as_deref(), Some("minikube"));

    // The files the minikube entries name are missing here: the error says which, where.
    let error = kc
        .resolve(&ContextOptions::default(), &NO_FILES)
        .unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains("/home/kevin/.minikube/ca.crt"),
        "{message}"
    );
    assert!(message.contains("context \"minikube\""), "{message}");
    assert!(
        message.contains("clusters[\"minikube\"].cluster.certificate-authority"),
        "{message}"
    );

    // With the files present, the context resolves to CA + client certificate.
    let ca = Ca::new("minikubeCA");
    let client = ca.client("minikube-user");
    let files = MemFiles::default()
        .with("/home/kevin/.minikube/ca.crt", &ca.cert_pem)
        .with(
            "/home/kevin/.minikube/profiles/minikube/client.crt",
            &client.cert_pem,
        )
        .with(
            "/home/kevin/.minikube/profiles/minikube/client.key",
            &client.key_pem,
        );
    let config = kc.resolve(&ContextOptions::default(), &files).unwrap();
    assert_eq!(config.cluster_url, "https://192.168.49.2:8443/");
    assert_eq!(config.default_namespace, "default");
    assert_eq!(config.tls.ca.as_ref().map(Vec::len), Some(1));
    assert!(config.tls.identity.is_some());
    assert!(matches!(config.auth, AuthConfig::None));
    config.tls.client_config().unwrap();

    // The EKS user: impersonation fields, a v1alpha1 exec plugin with `env: null`.
    let eks = &kc
        .user("arn:aws:eks:us-west-2:012345678912:cluster/eks")
        .unwrap()
        .user;
    assert_eq!(eks.impersonate.as_deref(), Some("admin"));
    assert_eq!(eks.impersonate_uid.as_deref(), Some("12345"));
    assert_eq!(eks.impersonate_groups, ["group1", "group2"]);
    assert_eq!(eks.impersonate_extra["scopes"], ["read", "write"]);
    let exec = eks.exec.as_ref().unwrap();
    assert_eq!(exec.command, "aws");
    assert!(exec.env.is_empty());
    assert_eq!(exec.install_hint.as_deref(), Some("Please install aws cli"));
    // Its context names the cluster by ARN, but the cluster is named "eks".
    let options = ContextOptions {
        context: Some("eks".into()),
        ..Default::default()
    };
    let error = kc.resolve(&options, &files).unwrap_err().to_string();
    assert!(error.contains("context \"eks\""), "{error}");
    assert!(
        error.contains("contexts[\"eks\"].context.cluster: cluster \"arn:aws:eks:us-west-2:012345678912:cluster/eks\" is not defined"),
        "{error}"
    );
    // Pointed at the "eks" cluster, its CA data is a snipped placeholder (`LS0t<SNIP>LS0tLQo=`).
    let options = ContextOptions {
        cluster: Some("eks".into()),
        ..options
    };
    let error = kc.resolve(&options, &files).unwrap_err().to_string();
    assert!(
        error.contains("clusters[\"eks\"].cluster.certificate-authority-data: invalid base64"),
        "{error}"
    );
    // With a real CA, the v1alpha1 exec plugin is refused (removed in client-go 1.24).
    let ca_pem = b64(&ca.cert_pem);
    let text = String::from_utf8(bytes)
        .unwrap()
        .replace("LS0t<SNIP>LS0tLQo=", &ca_pem);
    let kc = Kubeconfig::parse(text.as_bytes(), Some(&path)).unwrap();
    let error = kc.resolve(&options, &files).unwrap_err().to_string();
    assert!(error.contains("user.exec.apiVersion"), "{error}");
    // Moved to v1beta1 it resolves, with the impersonation headers.
    let text = text.replace("v1alpha1", "v1beta1");
    let config = Kubeconfig::parse(text.as_bytes(), Some(&path))
        .unwrap()
        .resolve(&options, &files)
        .unwrap();
    let AuthConfig::Exec(plugin) = &config.auth else {
        panic!()
    };
    assert_eq!(
        plugin.install_hint.as_deref(),
        Some("Please install aws cli")
    );
    let mut headers = HeaderMap::new();
    config.impersonation.apply(&mut headers).unwrap();
    assert_eq!(headers["impersonate-user"], "admin");
    assert_eq!(headers["impersonate-uid"], "12345");
    assert_eq!(headers.get_all("impersonate-group").iter().count(), 2);
    assert_eq!(
        headers.get_all("impersonate-extra-scopes").iter().count(),
        2
    );
}

#[test]
fn kubeconfig_fixture_k3d_multi_document_merges_documents_first_wins() {
    let Some(dir) = kubeconfig_fixtures() else {
        return;
    };
    let (path, bytes) = read_fixture(&dir, "k3d-multi-document.kube-rs-test.yaml");
    let kc = Kubeconfig::parse(&bytes, Some(&path)).unwrap();
    assert_eq!(
        kc.current_context.as_deref(),
        Some("k3d-promstack"),
        "first document sets it"
    );
    let names: Vec<&str> = kc.contexts.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["k3d-promstack", "k3d-k3s-default"]);
    assert_eq!(kc.clusters.len(), 2);
    assert_eq!(kc.users.len(), 2);
    // "aGVsbG8K" is base64 of "hello\n": not a PEM certificate.
    let error = kc
        .resolve(&ContextOptions::default(), &NO_FILES)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("clusters[\"k3d-promstack\"].cluster.certificate-authority-data"),
        "{error}"
    );
    assert!(error.contains("no PEM certificate"), "{error}");
}

#[test]
fn kubeconfig_fixture_exec_provide_cluster_info_passes_the_cluster_extension() {
    let Some(dir) = kubeconfig_fixtures() else {
        return;
    };
    let (path, bytes) = read_fixture(
        &dir,
        "exec-provideClusterInfo-cluster-extension.kube-rs-test.yaml",
    );
    // As written it uses v1alpha1, which client-go removed in 1.24.
    let error = Kubeconfig::parse(&bytes, Some(&path))
        .unwrap()
        .resolve(&ContextOptions::default(), &NO_FILES)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("users[\"foo-user\"].user.exec.apiVersion"),
        "{error}"
    );
    assert!(error.contains("v1alpha1"), "{error}");
    // Moved to v1beta1, the plugin gets the cluster and its exec extension.
    let text = String::from_utf8(bytes)
        .unwrap()
        .replace("v1alpha1", "v1beta1");
    let config = Kubeconfig::parse(text.as_bytes(), Some(&path))
        .unwrap()
        .resolve(&ContextOptions::default(), &NO_FILES)
        .unwrap();
    assert_eq!(config.default_namespace, "bar");
    let AuthConfig::Exec(plugin) = &config.auth else {
        panic!("{:?}", config.auth)
    };
    assert_eq!(plugin.command, "foo-command");
    assert_eq!(plugin.args, ["arg-1", "arg-2"]);
    let info = plugin.exec_info(false);
    assert_eq!(info["apiVersion"], "client.authentication.k8s.io/v1beta1");
    assert_eq!(info["spec"]["cluster"]["server"], "https://localhost:8080");
    assert_eq!(
        info["spec"]["cluster"]["config"],
        serde_json::json!({"audience": "foo", "other": "bar"})
    );
    assert_eq!(info["spec"]["interactive"], false);
}

#[test]
fn kubeconfig_fixture_gke_with_unknown_fields_is_tolerated() {
    let Some(dir) = kubeconfig_fixtures() else {
        return;
    };
    let (path, bytes) = read_fixture(
        &dir,
        "gke-gcloud-auth-plugin-with-unknown-fields.kube-rs-test.yaml",
    );
    let kc = Kubeconfig::parse(&bytes, Some(&path)).unwrap();
    let exec = kc.user("test-user").unwrap().user.exec.as_ref().unwrap();
    assert_eq!(exec.command, "gke-gcloud-auth-plugin");
    assert_eq!(exec.interactive_mode.as_deref(), Some("IfAvailable"));
    assert!(exec.provide_cluster_info);
    // "dGVzdA==" is base64 of "test", not a certificate.
    let error = kc
        .resolve(&ContextOptions::default(), &NO_FILES)
        .unwrap_err()
        .to_string();
    assert!(error.contains("context \"test\""), "{error}");
    assert!(error.contains("certificate-authority-data"), "{error}");
    // With a real CA the context resolves to the GKE plugin, which gets the CA.
    let ca = Ca::new("gke");
    let text = String::from_utf8(bytes)
        .unwrap()
        .replace("dGVzdA==", &b64(&ca.cert_pem));
    let config = Kubeconfig::parse(text.as_bytes(), Some(&path))
        .unwrap()
        .resolve(&ContextOptions::default(), &NO_FILES)
        .unwrap();
    let AuthConfig::Exec(plugin) = &config.auth else {
        panic!()
    };
    assert_eq!(
        plugin.interactive_mode,
        windlass_proto::config::InteractiveMode::IfAvailable
    );
    let info = plugin.exec_info(false);
    assert_eq!(
        info["spec"]["cluster"]["certificate-authority-data"],
        b64(&ca.cert_pem)
    );
}

#[test]
fn kubeconfig_fixture_utf16_le_and_be_read_like_utf8() {
    let Some(dir) = kubeconfig_fixtures() else {
        return;
    };
    let mut seen = Vec::new();
    for name in [
        "kubeconfig_utf8.yaml",
        "kubeconfig_utf16le.yaml",
        "kubeconfig_utf16be.yaml",
    ] {
        let (path, bytes) = read_fixture(&dir.join("kube-rs-test-data"), name);
        let kc = Kubeconfig::parse(&bytes, Some(&path)).unwrap_or_else(|e| panic!("{name}: {e}"));
        seen.push((
            kc.current_context.clone(),
            kc.clusters
                .iter()
                .map(|c| (c.name.clone(), c.cluster.server.clone()))
                .collect::<Vec<_>>(),
            kc.users.iter().map(|u| u.name.clone()).collect::<Vec<_>>(),
            kc.contexts
                .iter()
                .map(|c| (c.name.clone(), c.context.user.clone()))
                .collect::<Vec<_>>(),
        ));
        // The context names a user the file does not define.
        let error = kc
            .resolve(&ContextOptions::default(), &NO_FILES)
            .unwrap_err()
            .to_string();
        assert!(error.contains(&path.display().to_string()), "{error}");
        assert!(
            error.contains("contexts[\"k3d-promstack\"].context.user"),
            "{error}"
        );
        assert!(
            error.contains("user \"admin@k3d-promstack\" is not defined"),
            "{error}"
        );
    }
    assert_eq!(seen[0], seen[1]);
    assert_eq!(seen[0], seen[2]);
    assert_eq!(seen[0].0.as_deref(), Some("k3d-promstack"));
}

#[test]
fn kubeconfig_fixture_eks_aws_profile_with_placeholders_filled() {
    let Some(dir) = kubeconfig_fixtures() else {
        return;
    };
    let (path, bytes) = read_fixture(&dir, "eks-aws-iam-authenticator-aws-profile.readme.yaml");
    let ca = Ca::new("eks");
    let text = String::from_utf8(bytes)
        .unwrap()
        .replace(
            "${server}",
            "https://ABCDEF.gr7.eu-west-1.eks.amazonaws.com",
        )
        .replace("${cert}", &b64(&ca.cert_pem));
    let config = Kubeconfig::parse(text.as_bytes(), Some(&path))
        .unwrap()
        .resolve(&ContextOptions::default(), &NO_FILES)
        .unwrap();
    assert_eq!(config.context.as_deref(), Some("aws"));
    let AuthConfig::Exec(plugin) = &config.auth else {
        panic!()
    };
    assert_eq!(plugin.command, "aws-iam-authenticator");
    assert_eq!(plugin.args, ["token", "-i", "mycluster"]);
    assert_eq!(plugin.env[0].name, "AWS_PROFILE");
    assert_eq!(plugin.env[0].value.expose(), "dev");
    assert!(plugin.cluster_info.is_none(), "provideClusterInfo unset");
    let request = plugin.request(false).unwrap();
    assert_eq!(request.env[0].0, "AWS_PROFILE");
    assert_eq!(request.env.last().unwrap().0, "KUBERNETES_EXEC_INFO");
}

#[test]
fn kubeconfig_fixture_eks_hack_dev_template_names_a_missing_current_context() {
    let Some(dir) = kubeconfig_fixtures() else {
        return;
    };
    let (path, bytes) = read_fixture(&dir, "eks-aws-iam-authenticator-hack-dev.template.yaml");
    // Unfilled, `{{...}}` is a YAML flow mapping used as a key: not a kubeconfig.
    let error = Kubeconfig::parse(&bytes, Some(&path)).unwrap_err();
    assert!(matches!(error, ConfigError::Malformed { .. }), "{error:?}");
    assert!(error.to_string().contains(&path.display().to_string()));
    let ca = Ca::new("kind");
    let text = String::from_utf8(bytes)
        .unwrap()
        .replace("{{CERTIFICATE_AUTHORITY_DATA}}", &b64(&ca.cert_pem))
        .replace("{{APISERVER_URL}}", "https://127.0.0.1:41234")
        .replace("{{CLUSTER_NAME}}", "kind")
        .replace(
            "{{AUTHENTICATOR_BIN}}",
            "/usr/local/bin/aws-iam-authenticator",
        )
        .replace("{{REGION}}", "us-west-2");
    let kc = Kubeconfig::parse(text.as_bytes(), Some(&path)).unwrap();
    // current-context is "kind", but the only context is "test-authenticator".
    let error = kc
        .resolve(&ContextOptions::default(), &NO_FILES)
        .unwrap_err();
    assert!(
        matches!(&error, ConfigError::UnknownContext { context, .. } if context == "kind"),
        "{error:?}"
    );
    assert!(error.to_string().contains(&path.display().to_string()));
    let options = ContextOptions {
        context: Some("test-authenticator".into()),
        ..Default::default()
    };
    let config = kc.resolve(&options, &NO_FILES).unwrap();
    let AuthConfig::Exec(plugin) = &config.auth else {
        panic!()
    };
    assert_eq!(plugin.command, "/usr/local/bin/aws-iam-authenticator");
    assert_eq!(plugin.args, ["token", "-i", "kind"]);
    assert_eq!(
        plugin.interactive_mode,
        windlass_proto::config::InteractiveMode::IfAvailable
    );
    assert!(plugin.cluster_info.is_none());
    let env: Vec<(&str, &str)> = plugin
        .env
        .iter()
        .map(|v| (v.name.as_str(), v.value.expose().as_str()))
        .collect();
    assert_eq!(
        env,
        [
            ("AWS_STS_REGIONAL_ENDPOINTS", "regional"),
            ("AWS_DEFAULT_REGION", "us-west-2")
        ]
    );
    assert_eq!(
        config.tls.server_name("127.0.0.1").unwrap().to_str(),
        "127.0.0.1"
    );
}

#[test]
fn kubeconfig_fixture_gke_legacy_auth_provider_points_to_the_exec_plugin() {
    let Some(dir) = kubeconfig_fixtures() else {
        return;
    };
    let (path, bytes) = read_fixture(&dir, "gke-legacy-auth-provider-gcp.user-fragment.tpl");
    let fragment = String::from_utf8(bytes)
        .unwrap()
        .replace("${gcloud_path}", "/usr/bin/gcloud");
    let text = format!(
        "apiVersion: v1\nclusters:\n- name: gke\n  cluster: {{server: \"https://34.1.2.3\"}}\ncontexts:\n- name: gke\n  context: {{cluster: gke, user: gke}}\ncurrent-context: gke\nusers:\n- name: gke\n{fragment}"
    );
    let kc = Kubeconfig::parse(text.as_bytes(), Some(&path)).unwrap();
    let error = kc
        .resolve(&ContextOptions::default(), &NO_FILES)
        .unwrap_err();
    assert!(
        matches!(&error, ConfigError::LegacyAuthProvider { name, .. } if name == "gcp"),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(
        message.contains("users[\"gke\"].user.auth-provider"),
        "{message}"
    );
    assert!(message.contains("gke-gcloud-auth-plugin"), "{message}");
    assert!(
        !format!("{kc:?}").contains("access_token"),
        "auth-provider config is redacted"
    );
}

#[test]
fn kubeconfig_fixture_in_cluster_equivalent_reads_the_service_account() {
    let Some(dir) = kubeconfig_fixtures() else {
        return;
    };
    let (path, bytes) = read_fixture(&dir, "in-cluster.md");
    let text = String::from_utf8(bytes).unwrap();
    let yaml = text
        .split("```yaml\n")
        .nth(1)
        .unwrap()
        .split("```")
        .next()
        .unwrap();
    let ca = Ca::new("kubernetes");
    let files = MemFiles::default()
        .with(windlass_proto::config::CA_FILE, &ca.cert_pem)
        .with(windlass_proto::config::TOKEN_FILE, "sa-token\n");
    let config = Kubeconfig::parse(yaml.as_bytes(), Some(&path))
        .unwrap()
        .resolve(&ContextOptions::default(), &files)
        .unwrap();
    assert_eq!(config.cluster_url, "https://10.96.0.1:443/");
    assert_eq!(config.default_namespace, "default");
    assert_eq!(headers_of(&config)["authorization"], "Bearer sa-token");
    let AuthConfig::Bearer { file, .. } = &config.auth else {
        panic!()
    };
    assert_eq!(
        file.as_deref(),
        Some(Path::new(windlass_proto::config::TOKEN_FILE))
    );
    // The same through the in-cluster loader.
    let env = Environment {
        service_host: Some("10.96.0.1".into()),
        service_port: Some("443".into()),
        ..Default::default()
    };
    let in_cluster = load::in_cluster(&env, &files).unwrap();
    assert_eq!(in_cluster.cluster_url, config.cluster_url);
    assert_eq!(headers_of(&in_cluster)["authorization"], "Bearer sa-token");
    assert_eq!(in_cluster.tls.ca, config.tls.ca);
}

// ---------------------------------------------------------------- merging and loading

const FIRST: &str = r#"apiVersion: v1
kind: Config
clusters:
- name: shared
  cluster: {server: "https://first.example"}
- name: only-first
  cluster: {server: "https://only-first.example"}
users:
- name: shared
  user: {token: first-token}
contexts:
- name: shared
  context: {cluster: shared, user: shared, namespace: first-ns}
"#;

const SECOND: &str = r#"apiVersion: v1
kind: Config
current-context: shared
clusters:
- name: shared
  cluster: {server: "https://second.example"}
- name: only-second
  cluster: {server: "https://only-second.example"}
users:
- name: shared
  user: {token: second-token}
contexts:
- name: shared
  context: {cluster: shared, user: shared, namespace: second-ns}
- name: second
  context: {cluster: only-second, user: shared}
"#;

const THIRD: &str = r#"apiVersion: v1
current-context: second
clusters:
- name: only-third
  cluster: {server: "https://only-third.example"}
"#;

#[test]
fn merge_kubeconfig_files_first_file_wins_per_name() {
    let tmp = TempDir::new("merge");
    let a = tmp.write("a/config", FIRST);
    let b = tmp.write("b/config", SECOND);
    let c = tmp.write("c/config", THIRD);
    let missing = tmp.path().join("missing/config");
    let list = std::env::join_paths([&a, &missing, &b, &a, &c]).unwrap();
    let env = Environment {
        kubeconfig: Some(list),
        home: Some(tmp.path().join("home")),
        ..Default::default()
    };
    assert_eq!(
        env.kubeconfig_paths(),
        [a.clone(), missing, b.clone(), c.clone()],
        "duplicates dropped"
    );
    let kc = load::load_kubeconfig(&env, &LocalFiles).unwrap();
    assert_eq!(
        kc.files,
        [a.clone(), b.clone(), c.clone()],
        "the missing file is skipped"
    );
    // current-context from the first file that sets it: the second.
    assert_eq!(kc.current_context.as_deref(), Some("shared"));
    assert_eq!(
        kc.cluster("shared").unwrap().cluster.server.as_deref(),
        Some("https://first.example")
    );
    assert_eq!(
        kc.cluster("shared").unwrap().file.as_deref(),
        Some(a.as_path())
    );
    for name in ["only-first", "only-second", "only-third"] {
        assert!(kc.cluster(name).is_some(), "{name} kept");
    }
    let config = load::from_kubeconfig(&ContextOptions::default(), &env, &LocalFiles).unwrap();
    assert_eq!(config.cluster_url, "https://first.example/");
    assert_eq!(config.default_namespace, "first-ns");
    assert_eq!(headers_of(&config)["authorization"], "Bearer first-token");
    let second = ContextOptions {
        context: Some("second".into()),
        ..Default::default()
    };
    let config = kc.resolve(&second, &LocalFiles).unwrap();
    assert_eq!(config.cluster_url, "https://only-second.example/");
    assert_eq!(config.default_namespace, "default");
}

#[test]
fn merge_current_context_comes_from_the_first_file_that_sets_it() {
    let mut kc = Kubeconfig::parse(THIRD.as_bytes(), None).unwrap();
    kc.merge(Kubeconfig::parse(SECOND.as_bytes(), None).unwrap());
    assert_eq!(kc.current_context.as_deref(), Some("second"));
    let mut kc = Kubeconfig::parse(FIRST.as_bytes(), None).unwrap();
    kc.merge(Kubeconfig::parse(THIRD.as_bytes(), None).unwrap());
    kc.merge(Kubeconfig::parse(SECOND.as_bytes(), None).unwrap());
    assert_eq!(kc.current_context.as_deref(), Some("second"));
}

#[test]
fn merge_relative_paths_resolve_against_their_own_file() {
    let tmp = TempDir::new("relative");
    let ca_a = Ca::new("a");
    let ca_b = Ca::new("b");
    tmp.write("a/ca.crt", &ca_a.cert_pem);
    tmp.write("b/certs/ca.crt", &ca_b.cert_pem);
    tmp.write("b/token", "token-from-b\n");
    let a = tmp.write(
        "a/config",
        "clusters:\n- name: a\n  cluster: {server: \"https://a.example\", certificate-authority: ca.crt}\ncontexts:\n- name: a\n  context: {cluster: a, user: b}\ncurrent-context: a\n",
    );
    let b = tmp.write(
        "b/config",
        "clusters:\n- name: b\n  cluster: {server: \"https://b.example\", certificate-authority: ./certs/../certs/ca.crt}\nusers:\n- name: b\n  user: {tokenFile: token}\ncontexts:\n- name: b\n  context: {cluster: b, user: b}\n",
    );
    let kc = load::load_kubeconfig_paths(&[a, b], false, &LocalFiles).unwrap();
    let path_of = |c: &str| {
        PathBuf::from(
            kc.cluster(c)
                .unwrap()
                .cluster
                .certificate_authority
                .clone()
                .unwrap(),
        )
    };
    assert_eq!(path_of("a"), tmp.path().join("a/ca.crt"));
    assert_eq!(path_of("b"), tmp.path().join("b/certs/ca.crt"));
    let config = kc.resolve(&ContextOptions::default(), &LocalFiles).unwrap();
    assert_eq!(
        config.tls.ca.as_ref().unwrap()[0].as_ref(),
        support_der(&ca_a.cert_pem)
    );
    assert_eq!(headers_of(&config)["authorization"], "Bearer token-from-b");
    let config = kc
        .resolve(
            &ContextOptions {
                context: Some("b".into()),
                ..Default::default()
            },
            &LocalFiles,
        )
        .unwrap();
    assert_eq!(
        config.tls.ca.as_ref().unwrap()[0].as_ref(),
        support_der(&ca_b.cert_pem)
    );
}

fn support_der(pem: &str) -> Vec<u8> {
    windlass_proto::config::parse_certificates(pem.as_bytes()).unwrap()[0].to_vec()
}

#[test]
fn kubeconfig_default_path_is_home_kube_config() {
    let tmp = TempDir::new("home");
    tmp.write(".kube/config", SECOND);
    let env = Environment {
        home: Some(tmp.path().to_path_buf()),
        ..Default::default()
    };
    assert_eq!(env.kubeconfig_paths(), [tmp.path().join(".kube/config")]);
    let config = load::from_kubeconfig(&ContextOptions::default(), &env, &LocalFiles).unwrap();
    assert_eq!(config.cluster_url, "https://second.example/");
    // An empty KUBECONFIG means the default too.
    let env = Environment {
        kubeconfig: Some("".into()),
        home: Some(tmp.path().to_path_buf()),
        ..Default::default()
    };
    assert_eq!(env.kubeconfig_paths(), [tmp.path().join(".kube/config")]);
}

#[test]
fn kubeconfig_explicit_path_must_exist() {
    let tmp = TempDir::new("explicit");
    let path = tmp.write("my-config", FIRST);
    let kc = load::load_kubeconfig_file(&path, &LocalFiles).unwrap();
    assert_eq!(kc.files, std::slice::from_ref(&path));
    let missing = tmp.path().join("nope");
    let error = load::load_kubeconfig_file(&missing, &LocalFiles).unwrap_err();
    assert!(matches!(error, ConfigError::Read { .. }));
    assert!(
        error.to_string().contains(&missing.display().to_string()),
        "{error}"
    );
}

#[test]
fn kubeconfig_json_form_is_read() {
    let json = r#"{"apiVersion":"v1","kind":"Config","current-context":"j",
      "clusters":[{"name":"j","cluster":{"server":"https://json.example","insecure-skip-tls-verify":true}}],
      "users":[{"name":"j","user":{"username":"admin","password":"hunter2"}}],
      "contexts":[{"name":"j","context":{"cluster":"j","user":"j","namespace":"json-ns"}}],
      "preferences":{},"extensions":[]}"#;
    let config = resolve(json).unwrap();
    assert_eq!(config.default_namespace, "json-ns");
    assert!(config.tls.insecure_skip_verify);
    assert!(matches!(config.auth, AuthConfig::Basic { .. }));
}

#[test]
fn kubeconfig_yaml_11_booleans_read_as_kubectl_reads_them() {
    for (word, expected) in [
        ("yes", true),
        ("on", true),
        ("true", true),
        ("no", false),
        ("off", false),
    ] {
        let yaml = format!(
            "clusters: [{{name: c, cluster: {{server: \"https://x\", insecure-skip-tls-verify: {word}}}}}]\ncontexts: [{{name: c, context: {{cluster: c}}}}]\ncurrent-context: c\n"
        );
        assert_eq!(
            resolve(&yaml).unwrap().tls.insecure_skip_verify,
            expected,
            "{word}"
        );
    }
}

#[test]
fn kubeconfig_null_sections_and_bom_are_accepted() {
    let yaml = "\u{feff}apiVersion: v1\nclusters:\n- name: c\n  cluster:\n    server: https://x\n    extensions: null\nusers: null\ncontexts:\n- name: c\n  context:\n    cluster: c\n    user: \"\"\ncurrent-context: c\n";
    let config = resolve(yaml).unwrap();
    assert!(matches!(config.auth, AuthConfig::None));
    // Duplicate keys: the last wins, as in Go's non-strict YAML decoding.
    let yaml = "clusters: [{name: c, cluster: {server: \"https://first\", server: \"https://last\"}}]\ncontexts: [{name: c, context: {cluster: c}}]\ncurrent-context: c\n";
    assert_eq!(resolve(yaml).unwrap().cluster_url, "https://last/");
    // An empty document is an empty kubeconfig, not an error.
    assert!(Kubeconfig::parse(b"", None).unwrap().is_empty());
    assert!(Kubeconfig::parse(b"---\n", None).unwrap().is_empty());
}

// ---------------------------------------------------------------- contexts

const CONTEXTS: &str = r#"
clusters:
- name: dev
  cluster: {server: "https://dev.example:6443"}
- name: prod
  cluster: {server: "prod.example:443"}
users:
- name: dev
  user: {token: dev-token}
- name: ops
  user: {token: ops-token}
contexts:
- name: dev
  context: {cluster: dev, user: dev, namespace: team-a}
- name: broken-cluster
  context: {cluster: nowhere, user: dev}
- name: broken-user
  context: {cluster: dev, user: nobody}
current-context: dev
"#;

#[test]
fn context_current_and_chosen_with_overrides() {
    let kc = parse(CONTEXTS);
    let config = kc.resolve(&ContextOptions::default(), &NO_FILES).unwrap();
    assert_eq!(config.context.as_deref(), Some("dev"));
    assert_eq!(config.default_namespace, "team-a");
    assert_eq!(headers_of(&config)["authorization"], "Bearer dev-token");
    let options = ContextOptions {
        context: Some("dev".into()),
        cluster: Some("prod".into()),
        user: Some("ops".into()),
        namespace: Some("override-ns".into()),
    };
    let config = kc.resolve(&options, &NO_FILES).unwrap();
    assert_eq!(
        config.cluster_url, "https://prod.example:443/",
        "a bare host:port means https"
    );
    assert_eq!(config.default_namespace, "override-ns");
    assert_eq!(headers_of(&config)["authorization"], "Bearer ops-token");
}

#[test]
fn context_unknown_is_an_error_naming_the_files() {
    let error = parse(CONTEXTS)
        .resolve(
            &ContextOptions {
                context: Some("staging".into()),
                ..Default::default()
            },
            &NO_FILES,
        )
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "context \"staging\" not found in /home/me/.kube/config"
    );
}

#[test]
fn context_naming_a_missing_cluster_or_user_names_the_field() {
    let kc = parse(CONTEXTS);
    let error = kc
        .resolve(
            &ContextOptions {
                context: Some("broken-cluster".into()),
                ..Default::default()
            },
            &NO_FILES,
        )
        .unwrap_err()
        .to_string();
    assert_eq!(
        error,
        "kubeconfig /home/me/.kube/config: context \"broken-cluster\": field contexts[\"broken-cluster\"].context.cluster: cluster \"nowhere\" is not defined in /home/me/.kube/config"
    );
    let error = kc
        .resolve(
            &ContextOptions {
                context: Some("broken-user".into()),
                ..Default::default()
            },
            &NO_FILES,
        )
        .unwrap_err()
        .to_string();
    assert!(
        error.contains(
            "field contexts[\"broken-user\"].context.user: user \"nobody\" is not defined"
        ),
        "{error}"
    );
}

#[test]
fn context_missing_current_context_and_missing_server_are_errors() {
    let error = resolve("clusters: []\ncontexts: []\n").unwrap_err();
    assert!(
        matches!(error, ConfigError::NoCurrentContext { .. }),
        "{error:?}"
    );
    let error = resolve("clusters: [{name: c, cluster: {}}]\ncontexts: [{name: c, context: {cluster: c}}]\ncurrent-context: c\n")
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("clusters[\"c\"].cluster.server: cluster \"c\" has no server"),
        "{error}"
    );
    let error = resolve("clusters: [{name: c, cluster: {server: \"ftp://x\"}}]\ncontexts: [{name: c, context: {cluster: c}}]\ncurrent-context: c\n")
        .unwrap_err()
        .to_string();
    assert!(error.contains("must use http or https"), "{error}");
}

// ---------------------------------------------------------------- authentication

#[test]
fn kubeconfig_auth_bearer_token() {
    let config = resolve(&with_user("token: abc.def")).unwrap();
    let headers = headers_of(&config);
    assert_eq!(headers["authorization"], "Bearer abc.def");
    assert!(headers["authorization"].is_sensitive());
}

#[test]
fn kubeconfig_auth_basic() {
    let config = resolve(&with_user("username: admin\npassword: \"p@ss:word\"")).unwrap();
    assert_eq!(
        headers_of(&config)["authorization"],
        format!("Basic {}", b64("admin:p@ss:word"))
    );
}

#[test]
fn kubeconfig_auth_token_file_is_reread_as_it_rotates() {
    let tmp = TempDir::new("rotation");
    let token = tmp.write("token", "first\n");
    let yaml = with_user("tokenFile: token");
    let kc = Kubeconfig::parse(yaml.as_bytes(), Some(&tmp.path().join("config"))).unwrap();
    let config = kc.resolve(&ContextOptions::default(), &LocalFiles).unwrap();
    let start = Instant::now();
    let mut creds = config.credentials(false, start);
    let bearer = |creds: &Credentials| {
        let mut h = HeaderMap::new();
        creds.authorize(&mut h).unwrap();
        h["authorization"].to_str().unwrap().to_owned()
    };
    assert_eq!(bearer(&creds), "Bearer first");
    assert_eq!(creds.poll_timeout(), Some(start + TOKEN_FILE_REFRESH));
    assert!(creds.poll_action(start + Duration::from_secs(49)).is_none());

    std::fs::write(&token, "second").unwrap();
    let at = start + TOKEN_FILE_REFRESH;
    let Some(CredentialAction::ReadTokenFile(path)) = creds.poll_action(at) else {
        panic!("re-read due")
    };
    assert_eq!(path, token);
    assert!(creds.poll_action(at).is_none(), "one read at a time");
    let generation = creds.generation();
    creds.handle_token_file(std::fs::read(&path), at);
    assert_eq!(bearer(&creds), "Bearer second");
    assert!(creds.generation() > generation);

    // A failed or empty read keeps the last good token.
    let later = at + TOKEN_FILE_REFRESH;
    assert!(creds.poll_action(later).is_some());
    creds.handle_token_file(Ok(b"  \n".to_vec()), later);
    assert_eq!(bearer(&creds), "Bearer second");
    let later = later + TOKEN_FILE_REFRESH;
    assert!(creds.poll_action(later).is_some());
    creds.handle_token_file(Err(std::io::Error::other("gone")), later);
    assert_eq!(bearer(&creds), "Bearer second");
    assert_eq!(creds.poll_timeout(), Some(later + TOKEN_FILE_REFRESH));
}

#[test]
fn kubeconfig_auth_token_file_wins_over_token_when_readable() {
    let tmp = TempDir::new("token-and-file");
    tmp.write("token", "from-file");
    let config_path = tmp.path().join("config");
    let both = with_user("token: inline\ntokenFile: token");
    let config = Kubeconfig::parse(both.as_bytes(), Some(&config_path))
        .unwrap()
        .resolve(&ContextOptions::default(), &LocalFiles)
        .unwrap();
    assert_eq!(headers_of(&config)["authorization"], "Bearer from-file");
    let unreadable = with_user("token: inline\ntokenFile: missing");
    let config = Kubeconfig::parse(unreadable.as_bytes(), Some(&config_path))
        .unwrap()
        .resolve(&ContextOptions::default(), &LocalFiles)
        .unwrap();
    assert_eq!(headers_of(&config)["authorization"], "Bearer inline");
    let AuthConfig::Bearer { file, .. } = &config.auth else {
        panic!()
    };
    assert_eq!(
        file.as_deref(),
        Some(tmp.path().join("missing").as_path()),
        "still re-read later"
    );
}

#[test]
fn kubeconfig_auth_client_certificate_with_each_key_format() {
    let ca = Ca::new("ca");
    for (signing, written) in [
        ("ec-pkcs8.key", "ec-sec1.key"),
        ("ec-pkcs8.key", "ec-pkcs8.key"),
        ("rsa-pkcs8.key", "rsa-pkcs1.key"),
        ("rsa-pkcs8.key", "rsa-pkcs8.key"),
    ] {
        let key = rcgen::KeyPair::from_pem(&support::test_key(signing)).unwrap();
        let leaf = ca.client_with_key("alice", key);
        let yaml = with_user(&format!(
            "client-certificate-data: {}\nclient-key-data: {}",
            b64(&leaf.cert_pem),
            b64(support::test_key(written))
        ));
        let config = resolve(&yaml).unwrap_or_else(|e| panic!("{written}: {e}"));
        assert!(config.tls.identity.is_some(), "{written}");
        config
            .tls
            .client_config()
            .unwrap_or_else(|e| panic!("{written}: {e}"));
        assert!(headers_of(&config).get("authorization").is_none());
    }
}

#[test]
fn kubeconfig_auth_impersonation_headers() {
    let yaml = with_user(
        "token: t\nas: jane\nas-uid: \"42\"\nas-groups: [devs, admins]\nas-user-extra:\n  scopes: [read, write]\n  example.com/team name: [blue]",
    );
    let headers = headers_of(&resolve(&yaml).unwrap());
    assert_eq!(headers["impersonate-user"], "jane");
    assert_eq!(headers["impersonate-uid"], "42");
    let groups: Vec<_> = headers.get_all("impersonate-group").iter().collect();
    assert_eq!(groups, ["devs", "admins"]);
    let scopes: Vec<_> = headers.get_all("impersonate-extra-scopes").iter().collect();
    assert_eq!(scopes, ["read", "write"]);
    assert_eq!(
        headers["impersonate-extra-example.com%2Fteam%20name"],
        "blue"
    );

    let mut headers = HeaderMap::new();
    Impersonation::default().apply(&mut headers).unwrap();
    assert!(headers.is_empty());
    let error = resolve(&with_user("as-groups: [devs]"))
        .unwrap_err()
        .to_string();
    assert!(error.contains("requires impersonating a user"), "{error}");
}

#[test]
fn kubeconfig_auth_conflicting_methods_are_refused() {
    let error = resolve(&with_user("token: t\nusername: u\npassword: p"))
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("more than one authentication method"),
        "{error}"
    );
    assert!(
        !error.contains(": t\n") && !error.contains("\"p\""),
        "{error}"
    );
    let error = resolve(&with_user(
        "token: t\nexec:\n  apiVersion: client.authentication.k8s.io/v1beta1\n  command: x",
    ))
    .unwrap_err()
    .to_string();
    assert!(error.contains("exec plugin cannot be combined"), "{error}");
}

#[test]
fn kubeconfig_auth_legacy_providers_point_to_their_replacements() {
    for (name, replacement) in [
        ("gcp", "gke-gcloud-auth-plugin"),
        ("azure", "kubelogin"),
        ("oidc", "kubelogin"),
        ("custom", "exec"),
    ] {
        let yaml = with_user(&format!(
            "auth-provider:\n  name: {name}\n  config:\n    id-token: eyJsecret\n    refresh-token: rt-secret"
        ));
        let error = resolve(&yaml).unwrap_err();
        let message = error.to_string();
        assert!(
            message.contains(&format!("auth-provider \"{name}\"")),
            "{message}"
        );
        assert!(message.contains(replacement), "{message}");
        assert!(!message.contains("secret"), "{message}");
    }
}

// ---------------------------------------------------------------- bad input

#[test]
fn kubeconfig_malformed_files_are_errors_naming_the_file() {
    let path = Path::new("/etc/kube/bad.yaml");
    let cases: [&[u8]; 8] = [
        b"clusters: [unclosed",
        b"clusters: {name: not-a-list}",
        b"\xff\xfeX", // odd-length UTF-16
        b"\xc3\x28 invalid utf-8",
        b"clusters:\n- cluster: {server: x}\n", // no name
        b"contexts:\n- name: a\n  context: {cluster: c}\n- name: a\n  context: {cluster: c}\n",
        b"a: &a [*a, *a]\n",
        b"\t- tab\n  : :",
    ];
    for bytes in cases {
        let error = Kubeconfig::parse(bytes, Some(path)).unwrap_err();
        let message = error.to_string();
        assert!(
            message.starts_with("kubeconfig /etc/kube/bad.yaml"),
            "{message}"
        );
    }
    let error = Kubeconfig::parse(cases[5], Some(path))
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("duplicate name \"a\" in contexts"),
        "{error}"
    );
    // A billion-laughs alias bomb is stopped by the parser's budget.
    let mut bomb = String::from(
        "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
    );
    for (prev, next) in ["a", "b", "c", "d", "e", "f", "g", "h"]
        .iter()
        .zip(["b", "c", "d", "e", "f", "g", "h", "i"])
    {
        bomb.push_str(&format!("{next}: &{next} [*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev}]\n"));
    }
    bomb.push_str("clusters: *i\n");
    let started = std::time::Instant::now();
    assert!(Kubeconfig::parse(bomb.as_bytes(), Some(path)).is_err());
    // About 3 s in a debug build; the bound only proves it ends.
    assert!(started.elapsed() < Duration::from_secs(60));
}

#[test]
fn kubeconfig_missing_referenced_files_name_file_context_and_field() {
    for (field, line) in [
        ("certificate-authority", None),
        (
            "client-certificate",
            Some("client-certificate: missing.crt\nclient-key: missing.key"),
        ),
        ("tokenFile", Some("tokenFile: missing-token")),
    ] {
        let yaml = match line {
            None => "clusters: [{name: c, cluster: {server: \"https://x\", certificate-authority: missing-ca.crt}}]\ncontexts: [{name: c, context: {cluster: c}}]\ncurrent-context: c\n".to_owned(),
            Some(l) => with_user(l),
        };
        let error = resolve(&yaml).unwrap_err();
        assert!(matches!(error, ConfigError::Read { .. }), "{error:?}");
        let message = error.to_string();
        assert!(
            message.contains("kubeconfig /home/me/.kube/config"),
            "{message}"
        );
        assert!(message.contains("context \"c\""), "{message}");
        assert!(message.contains(&format!(".{field}")), "{message}");
        assert!(
            message.contains("/home/me/.kube/missing"),
            "relative path resolved: {message}"
        );
    }
}

#[test]
fn kubeconfig_bad_base64_and_bad_pem_name_the_field() {
    let error = resolve(&with_user(
        "client-certificate-data: \"!!notbase64\"\nclient-key-data: eA==",
    ))
    .unwrap_err()
    .to_string();
    assert!(
        error.contains("users[\"u\"].user.client-certificate-data: invalid base64"),
        "{error}"
    );
    let error = resolve(&with_user(&format!(
        "client-certificate-data: {}\nclient-key-data: {}",
        b64("not pem"),
        b64("x")
    )))
    .unwrap_err()
    .to_string();
    assert!(
        error.contains("client-certificate-data: no PEM certificate"),
        "{error}"
    );
    let ca = Ca::new("x");
    let leaf = ca.client("x");
    let broken_key = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
    let error = resolve(&with_user(&format!(
        "client-certificate-data: {}\nclient-key-data: {}",
        b64(&leaf.cert_pem),
        b64(broken_key)
    )))
    .unwrap_err()
    .to_string();
    assert!(
        error.contains("client-key-data: the private key is malformed"),
        "{error}"
    );
    let error = resolve(&with_user(&format!(
        "client-certificate-data: {}",
        b64(&leaf.cert_pem)
    )))
    .unwrap_err()
    .to_string();
    assert!(error.contains("without a client key"), "{error}");
}

#[test]
fn kubeconfig_redact_each_secret_field() {
    let ca = Ca::new("x");
    let leaf = ca.client("x");
    let key_b64 = b64(&leaf.key_pem);
    let yaml = format!(
        "{}- name: basic\n  user: {{username: bob, password: PASSWORD-SECRET}}\n- name: provider\n  user:\n    auth-provider: {{name: oidc, config: {{id-token: PROVIDER-SECRET}}}}\n- name: exec\n  user:\n    exec: {{apiVersion: client.authentication.k8s.io/v1beta1, command: x, env: [{{name: K, value: ENV-SECRET}}]}}\n",
        with_user(&format!(
            "token: TOKEN-SECRET\nclient-certificate-data: {}\nclient-key-data: {key_b64}",
            b64(&leaf.cert_pem)
        ))
    );
    let kc = parse(&yaml);
    let shown = format!("{kc:?}");
    for secret in [
        "TOKEN-SECRET",
        "PASSWORD-SECRET",
        "PROVIDER-SECRET",
        "ENV-SECRET",
        key_b64.as_str(),
    ] {
        assert!(
            !shown.contains(secret),
            "{secret} shows in Debug of Kubeconfig"
        );
    }
    let config = kc.resolve(&ContextOptions::default(), &NO_FILES).unwrap();
    let shown = format!("{config:?}");
    assert!(!shown.contains("TOKEN-SECRET"), "{shown}");
    assert!(!shown.contains("PRIVATE KEY"), "{shown}");
    let key_der = config
        .tls
        .identity
        .as_ref()
        .unwrap()
        .key()
        .secret_der()
        .to_vec();
    assert!(
        !shown.contains(&format!("{:?}", &key_der[..8])),
        "key bytes in Debug"
    );
    let creds = config.credentials(false, Instant::now());
    assert!(!format!("{creds:?}").contains("TOKEN-SECRET"));
    for user in ["basic", "exec"] {
        let config = kc
            .resolve(
                &ContextOptions {
                    user: Some(user.into()),
                    ..Default::default()
                },
                &NO_FILES,
            )
            .unwrap();
        let shown = format!("{config:?} {:?}", config.credentials(false, Instant::now()));
        assert!(
            !shown.contains("PASSWORD-SECRET") && !shown.contains("ENV-SECRET"),
            "{shown}"
        );
    }
    // Errors about a user carry no secret either.
    let error = kc
        .resolve(
            &ContextOptions {
                user: Some("provider".into()),
                ..Default::default()
            },
            &NO_FILES,
        )
        .unwrap_err();
    assert!(!format!("{error} {error:?}").contains("PROVIDER-SECRET"));
    // A parse error near a secret does not quote the source.
    let error = Kubeconfig::parse(
        b"users:\n- name: u\n  user:\n    token: TOKEN-SECRET\n    as-groups: {bad: map}\n",
        None,
    )
    .unwrap_err();
    assert!(
        !format!("{error} {error:?}").contains("TOKEN-SECRET"),
        "{error}"
    );
    // Bad base64 in a key does not quote it.
    let error = resolve(&with_user(&format!(
        "client-certificate-data: {}\nclient-key-data: \"KEY-SECRET!!\"",
        b64(&leaf.cert_pem)
    )))
    .unwrap_err();
    assert!(
        !format!("{error} {error:?}").contains("KEY-SECRET"),
        "{error}"
    );
}

// ---------------------------------------------------------------- in-cluster and infer

#[test]
fn kubeconfig_in_cluster_address_brackets_ipv6_and_reads_namespace() {
    let ca = Ca::new("k");
    let inputs = |host: &'static str, pod_ns: Option<&'static str>| {
        windlass_proto::config::InClusterInputs {
            host: Some(host),
            port: Some("443"),
            token: b"tok\n",
            token_file: Path::new(windlass_proto::config::TOKEN_FILE),
            ca: Some(ca.cert_pem.as_bytes()),
            ca_file: Path::new(windlass_proto::config::CA_FILE),
            pod_namespace: pod_ns,
            namespace_file: Some(b"kube-system\n"),
        }
    };
    let config = windlass_proto::config::in_cluster_config(&inputs("fd00::1", None)).unwrap();
    assert_eq!(config.cluster_url, "https://[fd00::1]:443/");
    assert_eq!(config.default_namespace, "kube-system");
    assert_eq!(
        config.tls.server_name("[fd00::1]").unwrap().to_str(),
        "fd00::1"
    );
    let config =
        windlass_proto::config::in_cluster_config(&inputs("10.96.0.1", Some("from-env"))).unwrap();
    assert_eq!(config.cluster_url, "https://10.96.0.1:443/");
    assert_eq!(config.default_namespace, "from-env");
    assert_eq!(headers_of(&config)["authorization"], "Bearer tok");

    let mut empty_token = inputs("10.96.0.1", None);
    empty_token.token = b"\n";
    let error = windlass_proto::config::in_cluster_config(&empty_token)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains(windlass_proto::config::TOKEN_FILE) && error.contains("empty"),
        "{error}"
    );
    let mut no_port = inputs("10.96.0.1", None);
    no_port.port = Some("");
    let error = windlass_proto::config::in_cluster_config(&no_port).unwrap_err();
    assert_eq!(
        error.to_string(),
        "not running in a cluster: KUBERNETES_SERVICE_PORT is not set"
    );
}

#[test]
fn kubeconfig_infer_prefers_kubeconfig_then_in_cluster_and_says_what_it_tried() {
    let tmp = TempDir::new("infer");
    let ca = Ca::new("k");
    let sa = MemFiles::default()
        .with(windlass_proto::config::TOKEN_FILE, "sa")
        .with(windlass_proto::config::CA_FILE, &ca.cert_pem)
        .with(windlass_proto::config::NAMESPACE_FILE, "pod-ns");
    let in_pod = Environment {
        home: Some(tmp.path().to_path_buf()),
        service_host: Some("10.0.0.1".into()),
        service_port: Some("443".into()),
        ..Default::default()
    };
    // No kubeconfig: in-cluster.
    let config = load::infer(&ContextOptions::default(), &in_pod, &sa).unwrap();
    assert_eq!(config.cluster_url, "https://10.0.0.1:443/");
    assert_eq!(config.default_namespace, "pod-ns");
    // A kubeconfig wins.
    let kubeconfig_path = tmp.path().join(".kube/config");
    let files = sa.clone().with(&kubeconfig_path, SECOND);
    let config = load::infer(&ContextOptions::default(), &in_pod, &files).unwrap();
    assert_eq!(config.cluster_url, "https://second.example/");
    // A broken kubeconfig is reported, not skipped.
    let files = sa.clone().with(&kubeconfig_path, "clusters: [");
    assert!(matches!(
        load::infer(&ContextOptions::default(), &in_pod, &files),
        Err(ConfigError::Malformed { .. })
    ));
    // In a pod whose token is not mounted: the error names the file.
    let error = load::infer(&ContextOptions::default(), &in_pod, &MemFiles::default())
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("in-cluster service-account token"),
        "{error}"
    );
    assert!(
        error.contains(windlass_proto::config::TOKEN_FILE),
        "{error}"
    );
    // Neither: the error lists both.
    let nowhere = Environment {
        home: Some(tmp.path().to_path_buf()),
        ..Default::default()
    };
    let error =
        load::infer(&ContextOptions::default(), &nowhere, &MemFiles::default()).unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains(&kubeconfig_path.display().to_string()),
        "{message}"
    );
    assert!(message.contains("not found"), "{message}");
    assert!(
        message
            .contains("in-cluster: not running in a cluster: KUBERNETES_SERVICE_HOST is not set"),
        "{message}"
    );
}

#[test]
fn kubeconfig_json_indented_with_tabs_is_read() {
    let json = "{\n\t\"apiVersion\": \"v1\",\n\t\"clusters\": [\n\t\t{\n\t\t\t\"name\": \"c\",\n\t\t\t\"cluster\": {\n\t\t\t\t\"server\": \"https://tabs.example\"\n\t\t\t}\n\t\t}\n\t],\n\t\"contexts\": [{\"name\": \"c\", \"context\": {\"cluster\": \"c\"}}],\n\t\"current-context\": \"c\"\n}\n";
    assert_eq!(resolve(json).unwrap().cluster_url, "https://tabs.example/");
}
