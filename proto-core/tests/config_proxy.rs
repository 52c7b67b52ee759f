//! Proxy selection: the cluster's proxy-url, then HTTPS_PROXY/HTTP_PROXY
//! with NO_PROXY, matched as kubectl (Go's httpproxy) matches.

use std::path::Path;

use windlass_proto::config::{
    ContextOptions, Kubeconfig, ProxyEnv, ProxyScheme, ProxyUrl, select_proxy, use_proxy,
};

fn env(vars: &[(&str, &str)]) -> ProxyEnv {
    ProxyEnv::from_lookup(|k| {
        vars.iter()
            .find(|(n, _)| *n == k)
            .map(|(_, v)| v.to_string())
    })
}

fn target(url: &str) -> http::Uri {
    url.parse().unwrap()
}

/// Go's `TestUseProxy` table (golang.org/x/net/http/httpproxy, proxy_test.go),
/// requests on port 80.
#[test]
fn kubeconfig_proxy_no_proxy_matches_as_go_httpproxy() {
    let no_proxy = "foobar.com, .barbaz.net, *.wildcard.io, 192.168.1.1, 192.168.1.2:81, 192.168.1.3:80, 10.0.0.0/30, 2001:db8::52:0:1, [2001:db8::52:0:3]:80, 2002:db8:a::45/64";
    let cases = [
        ("localhost", false),
        ("127.0.0.1", false),
        ("127.0.0.2", false),
        ("[::1]", false),
        ("[::2]", true),
        ("192.168.1.1", false),
        ("192.168.1.2", true),
        ("192.168.1.3", false),
        ("192.168.1.4", true),
        ("10.0.0.2", false),
        ("[2001:db8::52:0:1]", false),
        ("[2001:db8::52:0:2]", true),
        ("[2001:db8::52:0:3]", false),
        ("[2002:db8:a::123]", false),
        ("[fe80::424b:c8be:1643:a1b6]", true),
        ("barbaz.net", true),
        ("www.barbaz.net", false),
        ("foobar.com", false),
        ("www.foobar.com", false),
        ("foofoobar.com", true),
        ("baz.com", true),
        ("localhost.net", true),
        ("local.localhost", true),
        ("barbarbaz.net", true),
        ("wildcard.io", true),
        ("nested.wildcard.io", false),
        ("awildcard.io", true),
    ];
    for (host, proxied) in cases {
        assert_eq!(use_proxy(host, 80, no_proxy), proxied, "{host}");
    }
}

#[test]
fn kubeconfig_proxy_no_proxy_ports_star_and_case() {
    assert!(!use_proxy("api.example.com", 8443, "example.com:8443"));
    assert!(use_proxy("api.example.com", 6443, "example.com:8443"));
    assert!(!use_proxy("API.Example.COM", 443, " EXAMPLE.com "));
    assert!(!use_proxy("anything.example", 443, "x.org,*"));
    assert!(
        use_proxy("10.96.0.1", 443, "example.com"),
        "domain entries never match an IP"
    );
    assert!(!use_proxy("10.96.0.1", 443, "10.96.0.0/12"));
    assert!(use_proxy("10.112.0.1", 443, "10.96.0.0/12"));
    assert!(
        use_proxy("api.example.com", 443, ":80,,"),
        "malformed entries are ignored"
    );
}

#[test]
fn kubeconfig_proxy_env_by_scheme_with_no_proxy() {
    let e = env(&[
        ("HTTPS_PROXY", "http://secure-proxy:3128"),
        ("http_proxy", "plain-proxy:8080"),
        ("NO_PROXY", ".internal,10.0.0.0/8"),
    ]);
    let p = select_proxy(None, &e, &target("https://api.example.com:6443"))
        .unwrap()
        .unwrap();
    assert_eq!(
        (p.scheme(), p.host(), p.port()),
        (ProxyScheme::Http, "secure-proxy", 3128)
    );
    let p = select_proxy(None, &e, &target("http://api.example.com"))
        .unwrap()
        .unwrap();
    assert_eq!(
        (p.host(), p.port()),
        ("plain-proxy", 8080),
        "no scheme means http://"
    );
    assert!(
        select_proxy(None, &e, &target("https://kube.internal"))
            .unwrap()
            .is_none()
    );
    assert!(
        select_proxy(None, &e, &target("https://10.1.2.3:6443"))
            .unwrap()
            .is_none()
    );
    assert!(
        select_proxy(None, &e, &target("https://127.0.0.1:6443"))
            .unwrap()
            .is_none()
    );
    // Upper case wins over lower case.
    let e = env(&[
        ("HTTPS_PROXY", "http://upper:1"),
        ("https_proxy", "http://lower:2"),
    ]);
    assert_eq!(
        select_proxy(None, &e, &target("https://x"))
            .unwrap()
            .unwrap()
            .host(),
        "upper"
    );
    // CGI: HTTP_PROXY is not trusted when REQUEST_METHOD is set.
    let e = env(&[("HTTP_PROXY", "http://evil:1"), ("REQUEST_METHOD", "GET")]);
    assert!(
        select_proxy(None, &e, &target("http://x"))
            .unwrap()
            .is_none()
    );
    // Nothing set: direct.
    assert!(
        select_proxy(None, &env(&[]), &target("https://x"))
            .unwrap()
            .is_none()
    );
    // A bad value is an error, as in Go.
    let e = env(&[("HTTPS_PROXY", "ftp://proxy")]);
    assert!(
        select_proxy(None, &e, &target("https://x"))
            .unwrap_err()
            .contains("HTTPS_PROXY")
    );
}

#[test]
fn kubeconfig_proxy_url_wins_over_the_environment() {
    let yaml = |proxy: &str| {
        format!(
            "clusters: [{{name: c, cluster: {{server: \"https://kube.internal\", proxy-url: \"{proxy}\"}}}}]\ncontexts: [{{name: c, context: {{cluster: c}}}}]\ncurrent-context: c\n"
        )
    };
    let e = env(&[
        ("HTTPS_PROXY", "http://env-proxy:3128"),
        ("NO_PROXY", "kube.internal"),
    ]);
    for (url, scheme, port) in [
        ("socks5://user:pw@bastion:1080", ProxyScheme::Socks5, 1080),
        ("http://corp-proxy", ProxyScheme::Http, 80),
        ("https://[fd00::5]:8443", ProxyScheme::Https, 8443),
    ] {
        let config = Kubeconfig::parse(yaml(url).as_bytes(), None)
            .unwrap()
            .resolve(&ContextOptions::default(), &|_: &Path| {
                Err(std::io::ErrorKind::NotFound.into())
            })
            .unwrap();
        let proxy = config
            .proxy(&e)
            .unwrap()
            .expect("proxy-url ignores NO_PROXY");
        assert_eq!((proxy.scheme(), proxy.port()), (scheme, port), "{url}");
    }
    let error = Kubeconfig::parse(yaml("ftp://x").as_bytes(), Some(Path::new("/k/config")))
        .unwrap()
        .resolve(&ContextOptions::default(), &|_: &Path| {
            Err(std::io::ErrorKind::NotFound.into())
        })
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("clusters[\"c\"].cluster.proxy-url"),
        "{error}"
    );
    assert!(error.contains("use http, https or socks5"), "{error}");
}

#[test]
fn kubeconfig_proxy_redact_credentials() {
    let proxy = ProxyUrl::parse("http://alice:PROXY-SECRET@proxy:3128").unwrap();
    let (user, password) = proxy.credentials().unwrap();
    assert_eq!(
        (user, password.expose().as_str()),
        ("alice", "PROXY-SECRET")
    );
    assert_eq!(
        format!("{proxy:?}"),
        "ProxyUrl(http://<redacted>@proxy:3128)"
    );
    let e = env(&[("HTTPS_PROXY", "http://bob:ENV-SECRET@proxy:1")]);
    assert!(!format!("{e:?}").contains("ENV-SECRET"));
    let error = ProxyUrl::parse("gopher://carol:PW-SECRET@x").unwrap_err();
    assert!(!error.contains("PW-SECRET"), "{error}");
}
