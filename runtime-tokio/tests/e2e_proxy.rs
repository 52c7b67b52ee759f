//! windlass-tokio through a proxy (windlass-testkit's): list and watch over
//! a `CONNECT` tunnel to windlass-apiserver over TLS with client-certificate
//! auth, proxy authentication, refusals (407, 502) as clear errors,
//! `NO_PROXY`, plain HTTP forwarded in absolute form, and a stalled proxy
//! ending in the connect timeout; SOCKS5 (socks5:// and socks5h://, with
//! and without username/password, refusals); https:// proxies (TLS to the
//! proxy, verified with the kubeconfig's CA); a 407 not retried. The proxy
//! is passed through the `Config` or the builder, never the process
//! environment (tests run in parallel).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use windlass_proto::config::{Config, ContextOptions, Kubeconfig, ProxyEnv, ProxyUrl};
use windlass_proto::params::{ListParams, WatchParams};
use windlass_proto::proxy::ProxyError;
use windlass_proto::request::PostParams;
use windlass_proto::watch::WatchEvent;
use windlass_testkit::apiserver::{ApiServer, Credentials, RunningServer};
use windlass_testkit::proxy::{Behaviour, TestProxy};
use windlass_tokio::{Api, ClientBuilder};

async fn server() -> RunningServer {
    ApiServer::builder()
        .start()
        .await
        .expect("windlass-apiserver starts")
}

/// The server's current context (client certificate), with `proxy-url`.
fn config(server: &RunningServer, proxy_url: Option<&str>) -> Config {
    let kubeconfig = Kubeconfig::parse(server.kubeconfig().as_bytes(), None).unwrap();
    let no_files = |p: &std::path::Path| {
        Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            p.display().to_string(),
        ))
    };
    let mut config = kubeconfig
        .resolve(&ContextOptions::default(), &no_files)
        .unwrap();
    assert!(config.tls.identity.is_some(), "a client certificate");
    config.proxy_url = proxy_url.map(|url| ProxyUrl::parse(url).unwrap());
    config
}

/// A client builder for `config`, deaf to the process's proxy variables.
fn builder(config: &Config) -> ClientBuilder {
    ClientBuilder::from_config(config)
        .unwrap()
        .proxy_env(ProxyEnv::default())
        .max_retries(0)
}

fn config_map(name: &str) -> ConfigMap {
    ConfigMap {
        metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        data: Some(BTreeMap::from([("k".to_owned(), "v".to_owned())])),
        ..Default::default()
    }
}

async fn within<T>(secs: u64, future: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(secs), future)
        .await
        .expect("the test timed out")
}

#[tokio::test]
async fn e2e_tokio_proxy_list_and_watch_through_a_connect_tunnel() {
    let server = server().await;
    let proxy = TestProxy::start();
    let client = builder(&config(&server, Some(&proxy.url())))
        .build()
        .unwrap();
    let maps: Api<ConfigMap> = Api::default_namespaced(client).unwrap();
    within(30, async {
        maps.create(&PostParams::default(), &config_map("a"))
            .await
            .unwrap();
        let list = maps.list(&ListParams::default()).await.unwrap();
        assert_eq!(list.items.len(), 1);
        let params = WatchParams {
            resource_version: list.resource_version().map(str::to_owned),
            ..Default::default()
        };
        let mut events = Box::pin(maps.watch(&params).await.unwrap());
        maps.create(&PostParams::default(), &config_map("b"))
            .await
            .unwrap();
        loop {
            match events.next().await.expect("the watch ended").unwrap() {
                WatchEvent::Added(m) => {
                    assert_eq!(m.metadata.name.as_deref(), Some("b"));
                    break;
                }
                WatchEvent::Bookmark(_) => {}
                other => panic!("{other:?}"),
            }
        }
    })
    .await;
    // Ordinary requests share a tunnel; the watch has its own.
    assert!(proxy.tunnels() >= 2, "{} tunnels", proxy.tunnels());
    let connect = format!("CONNECT {} HTTP/1.1", server.addr());
    assert!(
        proxy.requests().iter().all(|r| r.line == connect),
        "{:?}",
        proxy.requests()
    );
    server.shutdown().await;
}

#[tokio::test]
async fn e2e_tokio_proxy_authentication_basic_from_the_url_userinfo() {
    let server = server().await;
    let proxy = TestProxy::builder()
        .require_basic("alice", "s3cret")
        .start();
    let url = proxy.url_with_credentials("alice", "s3cret");
    let client = builder(&config(&server, Some(&url))).build().unwrap();
    let maps: Api<ConfigMap> = Api::default_namespaced(client).unwrap();
    within(30, maps.list(&ListParams::default())).await.unwrap();
    assert_eq!(proxy.tunnels(), 1);
    assert_eq!(
        proxy.requests()[0].authorization.as_deref(),
        Some("Basic YWxpY2U6czNjcmV0")
    );

    // The wrong password: the proxy's 407, kept whole.
    let url = proxy.url_with_credentials("alice", "wrong");
    let client = builder(&config(&server, Some(&url))).build().unwrap();
    let maps: Api<ConfigMap> = Api::default_namespaced(client).unwrap();
    let error = within(30, maps.list(&ListParams::default()))
        .await
        .unwrap_err();
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
    assert_eq!(proxy.tunnels(), 1);
    server.shutdown().await;
}

#[tokio::test]
async fn e2e_tokio_proxy_502_is_a_clear_error() {
    let server = server().await;
    let proxy = TestProxy::builder()
        .behaviour(Behaviour::Refuse {
            status: 502,
            reason: "Bad Gateway",
        })
        .start();
    let client = builder(&config(&server, Some(&proxy.url())))
        .build()
        .unwrap();
    let maps: Api<ConfigMap> = Api::default_namespaced(client).unwrap();
    let error = within(30, maps.list(&ListParams::default()))
        .await
        .unwrap_err();
    assert!(
        matches!(error.proxy(), Some(ProxyError::Refused { status: 502, reason, .. }) if reason == "Bad Gateway"),
        "{error}"
    );
    assert!(error.to_string().contains("502 Bad Gateway"), "{error}");
    assert!(!error.is_timeout());
    assert_eq!(proxy.refused(), 1);
    server.shutdown().await;
}

#[tokio::test]
async fn e2e_tokio_proxy_no_proxy_bypasses_the_environment_proxy() {
    let server = server().await;
    let proxy = TestProxy::start();
    // Loopback never goes through an environment proxy (as in Go), so name
    // the server by 0.0.0.0, which Linux connects to locally, and verify
    // its certificate as 127.0.0.1.
    let mut config = config(&server, None);
    config.cluster_url = format!("https://0.0.0.0:{}", server.addr().port())
        .parse()
        .unwrap();
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
        async move { maps.list(&ListParams::default()).await.map(|_| ()) }
    };
    within(30, list(env("example.com,0.0.0.0"))).await.unwrap();
    assert_eq!(proxy.connections(), 0, "NO_PROXY matched: direct");
    within(30, list(env("example.com"))).await.unwrap();
    assert_eq!(proxy.tunnels(), 1, "NO_PROXY did not match: proxied");
    assert_eq!(
        proxy.requests()[0].line,
        format!("CONNECT 0.0.0.0:{} HTTP/1.1", server.addr().port())
    );
    server.shutdown().await;
}

#[tokio::test]
async fn e2e_tokio_proxy_stalled_ends_in_the_connect_timeout() {
    let server = server().await;
    let proxy = TestProxy::builder().behaviour(Behaviour::Stall).start();
    let client = builder(&config(&server, Some(&proxy.url())))
        .connect_timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    let maps: Api<ConfigMap> = Api::default_namespaced(client).unwrap();
    let started = Instant::now();
    let error = within(30, maps.list(&ListParams::default()))
        .await
        .unwrap_err();
    assert!(error.is_timeout(), "{error}");
    assert!(error.to_string().contains("within 500ms"), "{error}");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(proxy.tunnels(), 0);
    server.shutdown().await;
}

#[tokio::test]
async fn e2e_tokio_proxy_forwards_plain_http_in_absolute_form() {
    let server = ApiServer::builder().tls(false).start().await.unwrap();
    let proxy = TestProxy::builder().require_basic("bob", "pw").start();
    let client = ClientBuilder::new(server.url(), None)
        .proxy(ProxyUrl::parse(&proxy.url_with_credentials("bob", "pw")).unwrap())
        .max_retries(0)
        .build()
        .unwrap();
    let maps: Api<ConfigMap> = Api::default_namespaced(client).unwrap();
    within(30, maps.list(&ListParams::default())).await.unwrap();
    assert_eq!(proxy.forwarded(), 1);
    assert_eq!(proxy.tunnels(), 0);
    let request = &proxy.requests()[0];
    let absolute = format!(
        "GET http://{}/api/v1/namespaces/default/configmaps",
        server.addr()
    );
    assert!(request.line.starts_with(&absolute), "{}", request.line);
    assert_eq!(request.authorization.as_deref(), Some("Basic Ym9iOnB3"));
    server.shutdown().await;
}

/// Creates "a", lists it, watches from the list, creates "b", and waits
/// for the watch to bring "b": ordinary requests and a watch, each on its
/// own connection through the proxy.
async fn list_and_watch(maps: &Api<ConfigMap>) {
    maps.create(&PostParams::default(), &config_map("a"))
        .await
        .unwrap();
    let list = maps.list(&ListParams::default()).await.unwrap();
    assert_eq!(list.items.len(), 1);
    let params = WatchParams {
        resource_version: list.resource_version().map(str::to_owned),
        ..Default::default()
    };
    let mut events = Box::pin(maps.watch(&params).await.unwrap());
    maps.create(&PostParams::default(), &config_map("b"))
        .await
        .unwrap();
    loop {
        match events.next().await.expect("the watch ended").unwrap() {
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

#[tokio::test]
async fn e2e_tokio_proxy_socks5_list_and_watch_through_the_tunnel() {
    let server = server().await;
    let proxy = TestProxy::start();
    let client = builder(&config(&server, Some(&proxy.socks5_url(None))))
        .build()
        .unwrap();
    let maps: Api<ConfigMap> = Api::default_namespaced(client).unwrap();
    within(30, list_and_watch(&maps)).await;
    assert!(proxy.tunnels() >= 2, "{} tunnels", proxy.tunnels());
    let connect = format!("SOCKS5 CONNECT ipv4 {}", server.addr());
    assert!(
        proxy.requests().iter().all(|r| r.line == connect),
        "{:?}",
        proxy.requests()
    );
    server.shutdown().await;
}

#[tokio::test]
async fn e2e_tokio_proxy_socks5h_domain_name_with_username_and_password() {
    let server = server().await;
    let proxy = TestProxy::builder()
        .require_basic("alice", "s3cret")
        .start();
    // The proxy resolves the name (the serving certificate names localhost).
    let mut config = config(&server, Some(&proxy.socks5h_url(Some(("alice", "s3cret")))));
    let target = format!("localhost:{}", server.addr().port());
    config.cluster_url = format!("https://{target}").parse().unwrap();
    let maps: Api<ConfigMap> = Api::default_namespaced(builder(&config).build().unwrap()).unwrap();
    within(30, list_and_watch(&maps)).await;
    let requests = proxy.requests();
    assert!(requests.len() >= 2, "{requests:?}");
    for request in &requests {
        assert_eq!(request.line, format!("SOCKS5 CONNECT domain {target}"));
        assert_eq!(request.authorization.as_deref(), Some("alice:s3cret"));
    }
    server.shutdown().await;
}

#[tokio::test]
async fn e2e_tokio_proxy_socks5_authentication_refused_is_a_clear_error() {
    let server = server().await;
    let proxy = TestProxy::builder()
        .require_basic("alice", "s3cret")
        .start();
    let list = |url: String| {
        let maps: Api<ConfigMap> =
            Api::default_namespaced(builder(&config(&server, Some(&url))).build().unwrap())
                .unwrap();
        async move { maps.list(&ListParams::default()).await.unwrap_err() }
    };
    let error = within(30, list(proxy.socks5_url(Some(("alice", "wrong"))))).await;
    assert_eq!(
        error.proxy(),
        Some(&ProxyError::Socks5AuthFailed { status: 1 }),
        "{error}"
    );
    let message = error.to_string();
    assert!(
        message.contains("rejected the username and password"),
        "{message}"
    );
    assert!(message.contains(&proxy.addr().to_string()), "{message}");
    assert!(!message.contains("wrong"), "no password in {message}");
    // No credentials offered to a proxy that wants them.
    let error = within(30, list(proxy.socks5_url(None))).await;
    assert_eq!(
        error.proxy(),
        Some(&ProxyError::Socks5NoAcceptableMethod {
            offered_password: false
        }),
        "{error}"
    );
    assert_eq!(proxy.tunnels(), 0);
    assert_eq!(proxy.refused(), 2);
    server.shutdown().await;
}

#[tokio::test]
async fn e2e_tokio_proxy_socks5_reply_failure_names_the_code() {
    let server = server().await;
    let proxy = TestProxy::builder()
        .behaviour(Behaviour::SocksReply(5))
        .start();
    let client = builder(&config(&server, Some(&proxy.socks5_url(None))))
        .build()
        .unwrap();
    let maps: Api<ConfigMap> = Api::default_namespaced(client).unwrap();
    let error = within(30, maps.list(&ListParams::default()))
        .await
        .unwrap_err();
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
    server.shutdown().await;
}

// --- https:// proxies: TLS to the proxy, CONNECT inside it, the server's TLS inside that

#[tokio::test]
async fn e2e_tokio_proxy_https_list_and_watch_through_tls_to_the_proxy() {
    let server = server().await;
    // The proxy's certificate is signed by the kubeconfig's CA.
    let proxy = TestProxy::builder()
        .tls(server.credentials().unwrap())
        .require_basic("alice", "s3cret")
        .start();
    let url = proxy.url_with_credentials("alice", "s3cret");
    assert!(url.starts_with("https://"));
    let client = builder(&config(&server, Some(&url))).build().unwrap();
    let maps: Api<ConfigMap> = Api::default_namespaced(client).unwrap();
    within(30, list_and_watch(&maps)).await;
    assert!(proxy.tunnels() >= 2, "{} tunnels", proxy.tunnels());
    let connect = format!("CONNECT {} HTTP/1.1", server.addr());
    for request in proxy.requests() {
        assert_eq!(request.line, connect);
        assert_eq!(
            request.authorization.as_deref(),
            Some("Basic YWxpY2U6czNjcmV0")
        );
    }
    server.shutdown().await;
}

#[tokio::test]
async fn e2e_tokio_proxy_https_untrusted_proxy_certificate_is_a_clear_error() {
    let server = server().await;
    // A proxy whose certificate another CA signed.
    let proxy = TestProxy::builder()
        .tls(&Credentials::generate().unwrap())
        .start();
    let client = builder(&config(&server, Some(&proxy.url())))
        .build()
        .unwrap();
    let maps: Api<ConfigMap> = Api::default_namespaced(client).unwrap();
    let error = within(30, maps.list(&ListParams::default()))
        .await
        .unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains("TLS handshake with the proxy"),
        "{message}"
    );
    assert!(message.contains(&proxy.addr().to_string()), "{message}");
    // Both CAs share a name, so webpki finds the wrong one's signature bad.
    assert!(message.contains("invalid peer certificate"), "{message}");
    assert_eq!(proxy.tunnels(), 0);
    assert!(proxy.requests().is_empty());
    server.shutdown().await;
}

#[tokio::test]
async fn e2e_tokio_proxy_https_forwards_plain_http_inside_tls() {
    let tls_server = server().await;
    let server = ApiServer::builder().tls(false).start().await.unwrap();
    let proxy = TestProxy::builder()
        .tls(tls_server.credentials().unwrap())
        .start();
    let mut config = config(&tls_server, None);
    config.cluster_url = server.url().parse().unwrap();
    config.proxy_url = Some(ProxyUrl::parse(&proxy.url()).unwrap());
    let maps: Api<ConfigMap> = Api::default_namespaced(builder(&config).build().unwrap()).unwrap();
    within(30, maps.list(&ListParams::default())).await.unwrap();
    assert_eq!(proxy.forwarded(), 1);
    assert_eq!(proxy.tunnels(), 0);
    let absolute = format!(
        "GET http://{}/api/v1/namespaces/default/configmaps",
        server.addr()
    );
    assert!(
        proxy.requests()[0].line.starts_with(&absolute),
        "{:?}",
        proxy.requests()
    );
    server.shutdown().await;
    tls_server.shutdown().await;
}

// --- retries: client-go does not retry a proxy's refusal (it is neither a
// reset nor an EOF), so a list is sent to the proxy once.

#[tokio::test]
async fn e2e_tokio_proxy_407_is_not_retried() {
    let server = server().await;
    let proxy = TestProxy::builder()
        .require_basic("alice", "s3cret")
        .start();
    let client = ClientBuilder::from_config(&config(&server, Some(&proxy.url())))
        .unwrap()
        .proxy_env(ProxyEnv::default())
        .build()
        .unwrap();
    let maps: Api<ConfigMap> = Api::default_namespaced(client).unwrap();
    let error = within(30, maps.list(&ListParams::default()))
        .await
        .unwrap_err();
    assert!(
        matches!(error.proxy(), Some(ProxyError::Refused { status: 407, .. })),
        "{error}"
    );
    assert_eq!(proxy.requests().len(), 1, "{:?}", proxy.requests());
    assert_eq!(proxy.connections(), 1);
    server.shutdown().await;
}
