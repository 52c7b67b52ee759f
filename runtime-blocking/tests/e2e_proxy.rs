//! windlass-blocking through a proxy (windlass-testkit's): list and watch
//! over a `CONNECT` tunnel to windlass-apiserver over TLS with
//! client-certificate auth, proxy authentication, refusals (407, 502) as
//! clear errors, `NO_PROXY`, plain HTTP (tunnelled: ureq writes only
//! origin-form), and a stalled proxy ending in the connect timeout; SOCKS5
//! (socks5:// and socks5h://, with and without username/password,
//! refusals); https:// proxies (TLS to the proxy, verified with the
//! kubeconfig's CA); a 407 not retried. The proxy is passed through the
//! `Config` or the builder, never the process environment (tests run in
//! parallel).

mod support;

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ConfigMap;
use support::{Harness, config_map, within};
use windlass_blocking::{Api, ClientBuilder};
use windlass_proto::config::{Config, ProxyEnv, ProxyUrl};
use windlass_proto::params::{ListParams, WatchParams};
use windlass_proto::proxy::ProxyError;
use windlass_proto::request::PostParams;
use windlass_proto::watch::WatchEvent;
use windlass_testkit::apiserver::{ApiServer, Credentials};
use windlass_testkit::proxy::{Behaviour, TestProxy};

/// The server's current context (client certificate), with `proxy-url`.
fn config(harness: &Harness, proxy_url: Option<&str>) -> Config {
    let mut config = harness.config();
    config.proxy_url = proxy_url.map(|url| ProxyUrl::parse(url).unwrap());
    config
}

/// A client for `config`, deaf to the process's proxy variables.
fn maps(builder: ClientBuilder) -> Api<ConfigMap> {
    let client = builder
        .proxy_env(ProxyEnv::default())
        .max_retries(0)
        .build()
        .unwrap();
    Api::default_namespaced(client).unwrap()
}

fn builder(config: &Config) -> ClientBuilder {
    ClientBuilder::from_config(config).unwrap()
}

#[test]
fn e2e_blocking_proxy_list_and_watch_through_a_connect_tunnel() {
    let harness = Harness::default();
    let proxy = TestProxy::start();
    let maps = maps(builder(&config(&harness, Some(&proxy.url()))));
    let addr = harness.server().addr();
    let proxy = within(30, move || {
        maps.create(&PostParams::default(), &config_map("a", &[("k", "v")]))
            .unwrap();
        let list = maps.list(&ListParams::default()).unwrap();
        assert_eq!(list.items.len(), 1);
        let params = WatchParams {
            resource_version: list.resource_version().map(str::to_owned),
            ..Default::default()
        };
        let mut events = maps.watch(&params).unwrap();
        maps.create(&PostParams::default(), &config_map("b", &[("k", "v")]))
            .unwrap();
        loop {
            match events.next().expect("the watch ended").unwrap() {
                WatchEvent::Added(m) => {
                    assert_eq!(m.metadata.name.as_deref(), Some("b"));
                    break;
                }
                WatchEvent::Bookmark(_) => {}
                other => panic!("{other:?}"),
            }
        }
        proxy
    });
    // Ordinary requests share a tunnel; the watch has its own.
    assert!(proxy.tunnels() >= 2, "{} tunnels", proxy.tunnels());
    let connect = format!("CONNECT {addr} HTTP/1.1");
    assert!(
        proxy.requests().iter().all(|r| r.line == connect),
        "{:?}",
        proxy.requests()
    );
}

#[test]
fn e2e_blocking_proxy_authentication_basic_from_the_url_userinfo() {
    let harness = Harness::default();
    let proxy = TestProxy::builder()
        .require_basic("alice", "s3cret")
        .start();
    let good = maps(builder(&config(
        &harness,
        Some(&proxy.url_with_credentials("alice", "s3cret")),
    )));
    let bad = maps(builder(&config(
        &harness,
        Some(&proxy.url_with_credentials("alice", "wrong")),
    )));
    let (ok, error) = within(30, move || {
        (
            good.list(&ListParams::default()).map(|_| ()),
            bad.list(&ListParams::default()).unwrap_err(),
        )
    });
    ok.unwrap();
    assert_eq!(proxy.tunnels(), 1);
    assert_eq!(
        proxy.requests()[0].authorization.as_deref(),
        Some("Basic YWxpY2U6czNjcmV0")
    );
    match error.proxy() {
        Some(ProxyError::Refused {
            status: 407,
            reason,
            challenge,
        }) => {
            assert_eq!(reason, "Proxy Authentication Required");
            assert_eq!(
                challenge.as_deref(),
                Some("Basic realm=\"windlass-testkit\"")
            );
        }
        other => panic!("{other:?}: {error}"),
    }
    let message = error.to_string();
    assert!(
        message.contains("407 Proxy Authentication Required"),
        "{message}"
    );
    assert!(message.contains(&proxy.addr().to_string()), "{message}");
    assert!(!message.contains("wrong"), "no password in {message}");
}

#[test]
fn e2e_blocking_proxy_502_is_a_clear_error() {
    let harness = Harness::default();
    let proxy = TestProxy::builder()
        .behaviour(Behaviour::Refuse {
            status: 502,
            reason: "Bad Gateway",
        })
        .start();
    let maps = maps(builder(&config(&harness, Some(&proxy.url()))));
    let error = within(30, move || maps.list(&ListParams::default()).unwrap_err());
    assert!(
        matches!(error.proxy(), Some(ProxyError::Refused { status: 502, reason, .. }) if reason == "Bad Gateway"),
        "{error}"
    );
    assert!(error.to_string().contains("502 Bad Gateway"), "{error}");
    assert!(!error.is_timeout());
    assert_eq!(proxy.refused(), 1);
}

#[test]
fn e2e_blocking_proxy_no_proxy_bypasses_the_environment_proxy() {
    let harness = Harness::default();
    let proxy = TestProxy::start();
    // Loopback never goes through an environment proxy (as in Go), so name
    // the server by 0.0.0.0, which Linux connects to locally, and verify
    // its certificate as 127.0.0.1.
    let port = harness.server().addr().port();
    let mut config = config(&harness, None);
    config.cluster_url = format!("https://0.0.0.0:{port}").parse().unwrap();
    config.tls.server_name = Some("127.0.0.1".into());
    let env = |no_proxy: &str| ProxyEnv {
        https_proxy: Some(proxy.url()),
        no_proxy: Some(no_proxy.to_owned()),
        ..Default::default()
    };
    let list = |env: ProxyEnv| {
        let client = ClientBuilder::from_config(&config)
            .unwrap()
            .proxy_env(env)
            .max_retries(0)
            .build()
            .unwrap();
        let maps: Api<ConfigMap> = Api::default_namespaced(client).unwrap();
        within(30, move || maps.list(&ListParams::default()).map(|_| ()))
    };
    list(env("example.com,0.0.0.0")).unwrap();
    assert_eq!(proxy.connections(), 0, "NO_PROXY matched: direct");
    list(env("example.com")).unwrap();
    assert_eq!(proxy.tunnels(), 1, "NO_PROXY did not match: proxied");
    assert_eq!(
        proxy.requests()[0].line,
        format!("CONNECT 0.0.0.0:{port} HTTP/1.1")
    );
}

#[test]
fn e2e_blocking_proxy_stalled_ends_in_the_connect_timeout() {
    let harness = Harness::default();
    let proxy = TestProxy::builder().behaviour(Behaviour::Stall).start();
    let maps = maps(
        builder(&config(&harness, Some(&proxy.url()))).connect_timeout(Duration::from_millis(500)),
    );
    let started = Instant::now();
    let error = within(30, move || maps.list(&ListParams::default()).unwrap_err());
    assert!(error.is_timeout(), "{error}");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(proxy.tunnels(), 0);
}

#[test]
fn e2e_blocking_proxy_plain_http_is_tunnelled_with_credentials() {
    let harness = Harness::start(ApiServer::builder().tls(false));
    let proxy = TestProxy::builder().require_basic("bob", "pw").start();
    let url = harness.server().url();
    let maps = maps(
        ClientBuilder::new(url, None)
            .proxy(ProxyUrl::parse(&proxy.url_with_credentials("bob", "pw")).unwrap()),
    );
    within(30, move || maps.list(&ListParams::default()).map(|_| ())).unwrap();
    assert_eq!(proxy.tunnels(), 1);
    let request = &proxy.requests()[0];
    assert_eq!(
        request.line,
        format!("CONNECT {} HTTP/1.1", harness.server().addr())
    );
    assert_eq!(request.authorization.as_deref(), Some("Basic Ym9iOnB3"));
}

/// Creates "a", lists it, watches from the list, creates "b", and waits
/// for the watch to bring "b": ordinary requests and a watch, each on its
/// own connection through the proxy.
fn list_and_watch(maps: &Api<ConfigMap>) {
    maps.create(&PostParams::default(), &config_map("a", &[("k", "v")]))
        .unwrap();
    let list = maps.list(&ListParams::default()).unwrap();
    assert_eq!(list.items.len(), 1);
    let params = WatchParams {
        resource_version: list.resource_version().map(str::to_owned),
        ..Default::default()
    };
    let mut events = maps.watch(&params).unwrap();
    maps.create(&PostParams::default(), &config_map("b", &[("k", "v")]))
        .unwrap();
    loop {
        match events.next().expect("the watch ended").unwrap() {
            WatchEvent::Added(m) => {
                assert_eq!(m.metadata.name.as_deref(), Some("b"));
                break;
            }
            WatchEvent::Bookmark(_) => {}
            other => panic!("{other:?}"),
        }
    }
}

// --- SOCKS5 (RFC 1928, 1929), as Go's net/http speaks it

#[test]
fn e2e_blocking_proxy_socks5_list_and_watch_through_the_tunnel() {
    let harness = Harness::default();
    let proxy = TestProxy::start();
    let maps = maps(builder(&config(&harness, Some(&proxy.socks5_url(None)))));
    within(30, move || list_and_watch(&maps));
    assert!(proxy.tunnels() >= 2, "{} tunnels", proxy.tunnels());
    let connect = format!("SOCKS5 CONNECT ipv4 {}", harness.server().addr());
    assert!(
        proxy.requests().iter().all(|r| r.line == connect),
        "{:?}",
        proxy.requests()
    );
}

#[test]
fn e2e_blocking_proxy_socks5h_domain_name_with_username_and_password() {
    let harness = Harness::default();
    let proxy = TestProxy::builder()
        .require_basic("alice", "s3cret")
        .start();
    // The proxy resolves the name (the serving certificate names localhost).
    let mut config = config(
        &harness,
        Some(&proxy.socks5h_url(Some(("alice", "s3cret")))),
    );
    let target = format!("localhost:{}", harness.server().addr().port());
    config.cluster_url = format!("https://{target}").parse().unwrap();
    let maps = maps(builder(&config));
    within(30, move || list_and_watch(&maps));
    let requests = proxy.requests();
    assert!(requests.len() >= 2, "{requests:?}");
    for request in &requests {
        assert_eq!(request.line, format!("SOCKS5 CONNECT domain {target}"));
        assert_eq!(request.authorization.as_deref(), Some("alice:s3cret"));
    }
}

#[test]
fn e2e_blocking_proxy_socks5_authentication_refused_is_a_clear_error() {
    let harness = Harness::default();
    let proxy = TestProxy::builder()
        .require_basic("alice", "s3cret")
        .start();
    let wrong = maps(builder(&config(
        &harness,
        Some(&proxy.socks5_url(Some(("alice", "wrong")))),
    )));
    let none = maps(builder(&config(&harness, Some(&proxy.socks5_url(None)))));
    let (wrong, none) = within(30, move || {
        (
            wrong.list(&ListParams::default()).unwrap_err(),
            none.list(&ListParams::default()).unwrap_err(),
        )
    });
    assert_eq!(
        wrong.proxy(),
        Some(&ProxyError::Socks5AuthFailed { status: 1 }),
        "{wrong}"
    );
    let message = wrong.to_string();
    assert!(
        message.contains("rejected the username and password"),
        "{message}"
    );
    assert!(message.contains(&proxy.addr().to_string()), "{message}");
    assert!(!message.contains("wrong"), "no password in {message}");
    // No credentials offered to a proxy that wants them.
    assert_eq!(
        none.proxy(),
        Some(&ProxyError::Socks5NoAcceptableMethod {
            offered_password: false
        }),
        "{none}"
    );
    assert_eq!(proxy.tunnels(), 0);
    assert_eq!(proxy.refused(), 2);
}

#[test]
fn e2e_blocking_proxy_socks5_reply_failure_names_the_code() {
    let harness = Harness::default();
    let proxy = TestProxy::builder()
        .behaviour(Behaviour::SocksReply(5))
        .start();
    let maps = maps(builder(&config(&harness, Some(&proxy.socks5_url(None)))));
    let error = within(30, move || maps.list(&ListParams::default()).unwrap_err());
    assert_eq!(
        error.proxy(),
        Some(&ProxyError::Socks5Refused {
            reply: 5,
            meaning: "connection refused"
        }),
        "{error}"
    );
    assert!(
        error.to_string().contains("connection refused (reply 5)"),
        "{error}"
    );
    assert!(!error.is_timeout());
}

// --- https:// proxies: TLS to the proxy, CONNECT inside it, the server's TLS inside that

#[test]
fn e2e_blocking_proxy_https_list_and_watch_through_tls_to_the_proxy() {
    let harness = Harness::default();
    // The proxy's certificate is signed by the kubeconfig's CA.
    let proxy = TestProxy::builder()
        .tls(harness.server().credentials().unwrap())
        .require_basic("alice", "s3cret")
        .start();
    let url = proxy.url_with_credentials("alice", "s3cret");
    assert!(url.starts_with("https://"));
    let maps = maps(builder(&config(&harness, Some(&url))));
    within(30, move || list_and_watch(&maps));
    assert!(proxy.tunnels() >= 2, "{} tunnels", proxy.tunnels());
    let connect = format!("CONNECT {} HTTP/1.1", harness.server().addr());
    for request in proxy.requests() {
        assert_eq!(request.line, connect);
        assert_eq!(
            request.authorization.as_deref(),
            Some("Basic YWxpY2U6czNjcmV0")
        );
    }
}

#[test]
fn e2e_blocking_proxy_https_untrusted_proxy_certificate_is_a_clear_error() {
    let harness = Harness::default();
    // A proxy whose certificate another CA signed.
    let proxy = TestProxy::builder()
        .tls(&Credentials::generate().unwrap())
        .start();
    let maps = maps(builder(&config(&harness, Some(&proxy.url()))));
    let error = within(30, move || maps.list(&ListParams::default()).unwrap_err());
    let message = error.to_string();
    assert!(
        message.contains("TLS handshake with the proxy"),
        "{message}"
    );
    assert!(message.contains(&proxy.addr().to_string()), "{message}");
    assert!(message.contains("127.0.0.1"), "{message}");
    assert_eq!(proxy.tunnels(), 0);
    assert!(proxy.requests().is_empty());
}

// --- retries: client-go does not retry a proxy's refusal (it is neither a
// reset nor an EOF), so a list is sent to the proxy once.

#[test]
fn e2e_blocking_proxy_407_is_not_retried() {
    let harness = Harness::default();
    let proxy = TestProxy::builder()
        .require_basic("alice", "s3cret")
        .start();
    let client = builder(&config(&harness, Some(&proxy.url())))
        .proxy_env(ProxyEnv::default())
        .build()
        .unwrap();
    let maps: Api<ConfigMap> = Api::default_namespaced(client).unwrap();
    let error = within(30, move || maps.list(&ListParams::default()).unwrap_err());
    assert!(
        matches!(error.proxy(), Some(ProxyError::Refused { status: 407, .. })),
        "{error}"
    );
    assert_eq!(proxy.requests().len(), 1, "{:?}", proxy.requests());
    assert_eq!(proxy.connections(), 1);
}
