//! Hostile input never panics: arbitrary bytes and mutated kubeconfigs
//! through parsing and resolution, arbitrary strings through the proxy,
//! timestamp and exec-output parsers.

use std::path::Path;
use std::time::{Instant, SystemTime};

use proptest::prelude::*;
use windlass_proto::config::{
    ContextOptions, ExecOutcome, Kubeconfig, ProxyEnv, ProxyUrl, parse_rfc3339, select_proxy,
    use_proxy,
};

const VALID: &str = r#"apiVersion: v1
kind: Config
clusters:
- name: c
  cluster:
    server: https://10.0.0.1:6443
    certificate-authority-data: aGVsbG8K
    proxy-url: socks5://u:p@proxy:1080
    extensions: [{name: client.authentication.k8s.io/exec, extension: {a: 1}}]
users:
- name: u
  user:
    token: abc
    as: me
    as-groups: [g]
    exec: {apiVersion: client.authentication.k8s.io/v1beta1, command: ./x, args: [a], env: [{name: K, value: V}]}
contexts:
- name: c
  context: {cluster: c, user: u, namespace: n}
current-context: c
"#;

fn no_files(_: &Path) -> std::io::Result<Vec<u8>> {
    Ok(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n".to_vec())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn kubeconfig_arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(kc) = Kubeconfig::parse(&bytes, Some(Path::new("/k/config"))) {
            let _ = kc.resolve(&ContextOptions::default(), &no_files);
        }
    }

    #[test]
    fn kubeconfig_mutated_files_never_panic(at in 0usize..VALID.len(), cut in 0usize..40, insert in "[ -~\n\t]{0,40}") {
        let mut text = VALID.as_bytes().to_vec();
        let end = (at + cut).min(text.len());
        text.splice(at..end, insert.bytes());
        if let Ok(kc) = Kubeconfig::parse(&text, Some(Path::new("/k/config")))
            && let Ok(config) = kc.resolve(&ContextOptions::default(), &no_files)
        {
            let _ = config.proxy(&ProxyEnv::default());
            let _ = config.tls.server_name(config.cluster_url.host().unwrap_or(""));
            let mut creds = config.credentials(false, Instant::now());
            let _ = creds.poll_action(Instant::now());
            let _ = creds.authorize(&mut http::HeaderMap::new());
        }
    }

    #[test]
    fn kubeconfig_proxy_parsing_and_matching_never_panic(url in "\\PC{0,40}", host in "\\PC{0,20}", no_proxy in "\\PC{0,60}", port: u16) {
        let _ = ProxyUrl::parse(&url);
        let _ = use_proxy(&host, port, &no_proxy);
        let env = ProxyEnv { https_proxy: Some(url.clone()), no_proxy: Some(no_proxy), ..ProxyEnv::default() };
        if let Ok(target) = format!("https://{host}").parse::<http::Uri>() {
            let _ = select_proxy(None, &env, &target);
        }
    }

    #[test]
    fn exec_timestamps_and_outputs_never_panic(ts in "\\PC{0,40}", output in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = parse_rfc3339(&ts);
        let kc = Kubeconfig::parse(VALID.replace("    token: abc\n", "").replace("certificate-authority-data: aGVsbG8K", "insecure-skip-tls-verify: true").as_bytes(), None).unwrap();
        let config = kc.resolve(&ContextOptions::default(), &no_files).unwrap();
        let mut creds = config.credentials(false, Instant::now());
        prop_assert!(creds.poll_action(Instant::now()).is_some());
        let outcome = ExecOutcome::Exited { status: Some(0), stdout: output.into() };
        let _ = creds.handle_exec_output(outcome, Instant::now(), SystemTime::now());
    }
}
