//! windlass-smol through a proxy (windlass-testkit's): list and watch over
//! a `CONNECT` tunnel to windlass-apiserver over TLS with client-certificate
//! auth, proxy authentication, refusals (407, 502) as clear errors,
//! `NO_PROXY`, plain HTTP forwarded in absolute form, and a stalled proxy
//! ending in the connect timeout; SOCKS5 (socks5:// and socks5h://, with
//! and without username/password, refusals); https:// proxies (TLS to the
//! proxy, verified with the kubeconfig's CA); a 407 not retried. Each
//! scenario runs on a smol `Executor`
//! (`e2e_smol_proxy_*`) and on async-std's (`e2e_async_std_proxy_*`). The
//! proxy is passed through the `Config` or the builder, never the process
//! environment (tests run in parallel).

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use windlass_proto::config::{Config, ContextOptions, Kubeconfig, ProxyEnv, ProxyUrl};
use windlass_proto::params::{ListParams, WatchParams};
use windlass_proto::proxy::ProxyError;
use windlass_proto::request::PostParams;
use windlass_proto::watch::WatchEvent;
use windlass_smol::{Api, ClientBuilder, Spawner};
use windlass_testkit::apiserver::{ApiServer, ApiServerBuilder, Credentials, RunningServer};
use windlass_testkit::proxy::{Behaviour, TestProxy};

/// What a scenario gets: the server and the executor's spawner.
#[derive(Clone)]
struct Ctx {
    kubeconfig: String,
    url: String,
    addr: SocketAddr,
    credentials: Option<Credentials>,
    spawner: Spawner,
}

impl Ctx {
    /// The server's current context (client certificate), with `proxy-url`.
    fn config(&self, proxy_url: Option<&str>) -> Config {
        let kubeconfig = Kubeconfig::parse(self.kubeconfig.as_bytes(), None).unwrap();
        let no_files = |p: &std::path::Path| {
            Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                p.display().to_string(),
            ))
        };
        let mut config = kubeconfig
            .resolve(&ContextOptions::default(), &no_files)
            .unwrap();
        config.proxy_url = proxy_url.map(|url| ProxyUrl::parse(url).unwrap());
        config
    }

    /// A client builder for `config`, deaf to the process's proxy variables.
    fn builder(&self, config: &Config) -> ClientBuilder {
        ClientBuilder::from_config(config, self.spawner.clone())
            .unwrap()
            .proxy_env(ProxyEnv::default())
            .max_retries(0)
    }

    fn maps(&self, builder: ClientBuilder) -> Api<ConfigMap> {
        Api::default_namespaced(builder.build().unwrap()).unwrap()
    }
}

#[derive(Clone, Copy)]
enum Executor {
    Smol,
    AsyncStd,
}

/// Starts windlass-apiserver on its own tokio runtime, runs `scenario` on
/// `executor` within `secs`, and stops the server.
fn run<F, Fut>(executor: Executor, server: ApiServerBuilder, secs: u64, scenario: F)
where
    F: FnOnce(Ctx) -> Fut + Send,
    Fut: Future<Output = ()> + Send + 'static,
{
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let server: RunningServer = runtime
        .block_on(async { tokio::time::timeout(Duration::from_secs(30), server.start()).await })
        .expect("windlass-apiserver starts within 30 s")
        .expect("windlass-apiserver starts");
    let (kubeconfig, url, addr) = (server.kubeconfig().to_owned(), server.url(), server.addr());
    let credentials = server.credentials().cloned();
    let ctx = move |spawner| Ctx {
        kubeconfig,
        url,
        addr,
        credentials,
        spawner,
    };
    let scenario_thread = std::thread::Builder::new().stack_size(8 << 20);
    let outcome = std::thread::scope(|scope| {
        let run = move || match executor {
            Executor::Smol => {
                let smol = Arc::new(smol::Executor::new());
                let body = within(secs, scenario(ctx(Spawner::from(smol.clone()))));
                smol::block_on(smol.run(body));
            }
            Executor::AsyncStd => {
                let spawner = Spawner::new(|future| {
                    async_std::task::spawn(future);
                });
                async_std::task::block_on(within(secs, scenario(ctx(spawner))));
            }
        };
        scenario_thread.spawn_scoped(scope, run).unwrap().join()
    });
    let _ = runtime
        .block_on(async { tokio::time::timeout(Duration::from_secs(10), server.shutdown()).await });
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

/// `body`, or a panic after `secs`.
async fn within<T>(secs: u64, body: impl Future<Output = T>) -> T {
    smol::future::or(body, async {
        smol::Timer::after(Duration::from_secs(secs)).await;
        panic!("the scenario did not finish within {secs} s")
    })
    .await
}

/// One scenario as two tests: on smol's executor and on async-std's.
macro_rules! on_both_executors {
    ($smol:ident, $async_std:ident, $scenario:ident) => {
        on_both_executors!($smol, $async_std, $scenario, ApiServer::builder());
    };
    ($smol:ident, $async_std:ident, $scenario:ident, $server:expr) => {
        #[test]
        fn $smol() {
            run(Executor::Smol, $server, 60, $scenario);
        }

        #[test]
        fn $async_std() {
            run(Executor::AsyncStd, $server, 60, $scenario);
        }
    };
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

on_both_executors!(
    e2e_smol_proxy_list_and_watch_through_a_connect_tunnel,
    e2e_async_std_proxy_list_and_watch_through_a_connect_tunnel,
    list_and_watch_through_a_connect_tunnel
);
async fn list_and_watch_through_a_connect_tunnel(ctx: Ctx) {
    let proxy = TestProxy::start();
    let config = ctx.config(Some(&proxy.url()));
    assert!(config.tls.identity.is_some(), "a client certificate");
    let maps = ctx.maps(ctx.builder(&config));
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
    // Ordinary requests share a tunnel; the watch has its own.
    assert!(proxy.tunnels() >= 2, "{} tunnels", proxy.tunnels());
    let connect = format!("CONNECT {} HTTP/1.1", ctx.addr);
    assert!(
        proxy.requests().iter().all(|r| r.line == connect),
        "{:?}",
        proxy.requests()
    );
}

on_both_executors!(
    e2e_smol_proxy_authentication_basic_from_the_url_userinfo,
    e2e_async_std_proxy_authentication_basic_from_the_url_userinfo,
    authentication_basic_from_the_url_userinfo
);
async fn authentication_basic_from_the_url_userinfo(ctx: Ctx) {
    let proxy = TestProxy::builder()
        .require_basic("alice", "s3cret")
        .start();
    let url = proxy.url_with_credentials("alice", "s3cret");
    let maps = ctx.maps(ctx.builder(&ctx.config(Some(&url))));
    maps.list(&ListParams::default()).await.unwrap();
    assert_eq!(proxy.tunnels(), 1);
    assert_eq!(
        proxy.requests()[0].authorization.as_deref(),
        Some("Basic YWxpY2U6czNjcmV0")
    );

    let url = proxy.url_with_credentials("alice", "wrong");
    let maps = ctx.maps(ctx.builder(&ctx.config(Some(&url))));
    let error = maps.list(&ListParams::default()).await.unwrap_err();
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

on_both_executors!(
    e2e_smol_proxy_502_is_a_clear_error,
    e2e_async_std_proxy_502_is_a_clear_error,
    bad_gateway_is_a_clear_error
);
async fn bad_gateway_is_a_clear_error(ctx: Ctx) {
    let proxy = TestProxy::builder()
        .behaviour(Behaviour::Refuse {
            status: 502,
            reason: "Bad Gateway",
        })
        .start();
    let maps = ctx.maps(ctx.builder(&ctx.config(Some(&proxy.url()))));
    let error = maps.list(&ListParams::default()).await.unwrap_err();
    assert!(
        matches!(error.proxy(), Some(ProxyError::Refused { status: 502, reason, .. }) if reason == "Bad Gateway"),
        "{error}"
    );
    assert!(error.to_string().contains("502 Bad Gateway"), "{error}");
    assert!(!error.is_timeout());
    assert_eq!(proxy.refused(), 1);
}

on_both_executors!(
    e2e_smol_proxy_no_proxy_bypasses_the_environment_proxy,
    e2e_async_std_proxy_no_proxy_bypasses_the_environment_proxy,
    no_proxy_bypasses_the_environment_proxy
);
async fn no_proxy_bypasses_the_environment_proxy(ctx: Ctx) {
    let proxy = TestProxy::start();
    // Loopback never goes through an environment proxy (as in Go), so name
    // the server by 0.0.0.0, which Linux connects to locally, and verify
    // its certificate as 127.0.0.1.
    let mut config = ctx.config(None);
    config.cluster_url = format!("https://0.0.0.0:{}", ctx.addr.port())
        .parse()
        .unwrap();
    config.tls.server_name = Some("127.0.0.1".into());
    let env = |no_proxy: &str| ProxyEnv {
        https_proxy: Some(proxy.url()),
        no_proxy: Some(no_proxy.to_owned()),
        ..Default::default()
    };
    let maps = ctx.maps(ctx.builder(&config).proxy_env(env("example.com,0.0.0.0")));
    maps.list(&ListParams::default()).await.unwrap();
    assert_eq!(proxy.connections(), 0, "NO_PROXY matched: direct");
    let maps = ctx.maps(ctx.builder(&config).proxy_env(env("example.com")));
    maps.list(&ListParams::default()).await.unwrap();
    assert_eq!(proxy.tunnels(), 1, "NO_PROXY did not match: proxied");
    assert_eq!(
        proxy.requests()[0].line,
        format!("CONNECT 0.0.0.0:{} HTTP/1.1", ctx.addr.port())
    );
}

on_both_executors!(
    e2e_smol_proxy_stalled_ends_in_the_connect_timeout,
    e2e_async_std_proxy_stalled_ends_in_the_connect_timeout,
    stalled_ends_in_the_connect_timeout
);
async fn stalled_ends_in_the_connect_timeout(ctx: Ctx) {
    let proxy = TestProxy::builder().behaviour(Behaviour::Stall).start();
    let builder = ctx
        .builder(&ctx.config(Some(&proxy.url())))
        .connect_timeout(Duration::from_millis(500));
    let maps = ctx.maps(builder);
    let started = Instant::now();
    let error = maps.list(&ListParams::default()).await.unwrap_err();
    assert!(error.is_timeout(), "{error}");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(proxy.tunnels(), 0);
}

on_both_executors!(
    e2e_smol_proxy_forwards_plain_http_in_absolute_form,
    e2e_async_std_proxy_forwards_plain_http_in_absolute_form,
    forwards_plain_http_in_absolute_form,
    ApiServer::builder().tls(false)
);
async fn forwards_plain_http_in_absolute_form(ctx: Ctx) {
    let proxy = TestProxy::builder().require_basic("bob", "pw").start();
    let builder = ClientBuilder::new(ctx.url.clone(), None, ctx.spawner.clone())
        .proxy(ProxyUrl::parse(&proxy.url_with_credentials("bob", "pw")).unwrap())
        .max_retries(0);
    let maps = ctx.maps(builder);
    maps.list(&ListParams::default()).await.unwrap();
    assert_eq!(proxy.forwarded(), 1);
    assert_eq!(proxy.tunnels(), 0);
    let request = &proxy.requests()[0];
    let absolute = format!(
        "GET http://{}/api/v1/namespaces/default/configmaps",
        ctx.addr
    );
    assert!(request.line.starts_with(&absolute), "{}", request.line);
    assert_eq!(request.authorization.as_deref(), Some("Basic Ym9iOnB3"));
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

on_both_executors!(
    e2e_smol_proxy_socks5_list_and_watch_through_the_tunnel,
    e2e_async_std_proxy_socks5_list_and_watch_through_the_tunnel,
    socks5_list_and_watch_through_the_tunnel
);
async fn socks5_list_and_watch_through_the_tunnel(ctx: Ctx) {
    let proxy = TestProxy::start();
    let maps = ctx.maps(ctx.builder(&ctx.config(Some(&proxy.socks5_url(None)))));
    list_and_watch(&maps).await;
    assert!(proxy.tunnels() >= 2, "{} tunnels", proxy.tunnels());
    let connect = format!("SOCKS5 CONNECT ipv4 {}", ctx.addr);
    assert!(
        proxy.requests().iter().all(|r| r.line == connect),
        "{:?}",
        proxy.requests()
    );
}

on_both_executors!(
    e2e_smol_proxy_socks5h_domain_name_with_username_and_password,
    e2e_async_std_proxy_socks5h_domain_name_with_username_and_password,
    socks5h_domain_name_with_username_and_password
);
async fn socks5h_domain_name_with_username_and_password(ctx: Ctx) {
    let proxy = TestProxy::builder()
        .require_basic("alice", "s3cret")
        .start();
    // The proxy resolves the name (the serving certificate names localhost).
    let mut config = ctx.config(Some(&proxy.socks5h_url(Some(("alice", "s3cret")))));
    let target = format!("localhost:{}", ctx.addr.port());
    config.cluster_url = format!("https://{target}").parse().unwrap();
    let maps = ctx.maps(ctx.builder(&config));
    list_and_watch(&maps).await;
    let requests = proxy.requests();
    assert!(requests.len() >= 2, "{requests:?}");
    for request in &requests {
        assert_eq!(request.line, format!("SOCKS5 CONNECT domain {target}"));
        assert_eq!(request.authorization.as_deref(), Some("alice:s3cret"));
    }
}

on_both_executors!(
    e2e_smol_proxy_socks5_authentication_refused_is_a_clear_error,
    e2e_async_std_proxy_socks5_authentication_refused_is_a_clear_error,
    socks5_authentication_refused_is_a_clear_error
);
async fn socks5_authentication_refused_is_a_clear_error(ctx: Ctx) {
    let proxy = TestProxy::builder()
        .require_basic("alice", "s3cret")
        .start();
    let url = proxy.socks5_url(Some(("alice", "wrong")));
    let maps = ctx.maps(ctx.builder(&ctx.config(Some(&url))));
    let error = maps.list(&ListParams::default()).await.unwrap_err();
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
    let maps = ctx.maps(ctx.builder(&ctx.config(Some(&proxy.socks5_url(None)))));
    let error = maps.list(&ListParams::default()).await.unwrap_err();
    assert_eq!(
        error.proxy(),
        Some(&ProxyError::Socks5NoAcceptableMethod {
            offered_password: false
        }),
        "{error}"
    );
    assert_eq!(proxy.tunnels(), 0);
    assert_eq!(proxy.refused(), 2);
}

on_both_executors!(
    e2e_smol_proxy_socks5_reply_failure_names_the_code,
    e2e_async_std_proxy_socks5_reply_failure_names_the_code,
    socks5_reply_failure_names_the_code
);
async fn socks5_reply_failure_names_the_code(ctx: Ctx) {
    let proxy = TestProxy::builder()
        .behaviour(Behaviour::SocksReply(5))
        .start();
    let maps = ctx.maps(ctx.builder(&ctx.config(Some(&proxy.socks5_url(None)))));
    let error = maps.list(&ListParams::default()).await.unwrap_err();
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

on_both_executors!(
    e2e_smol_proxy_https_list_and_watch_through_tls_to_the_proxy,
    e2e_async_std_proxy_https_list_and_watch_through_tls_to_the_proxy,
    https_list_and_watch_through_tls_to_the_proxy
);
async fn https_list_and_watch_through_tls_to_the_proxy(ctx: Ctx) {
    // The proxy's certificate is signed by the kubeconfig's CA.
    let proxy = TestProxy::builder()
        .tls(ctx.credentials.as_ref().unwrap())
        .require_basic("alice", "s3cret")
        .start();
    let url = proxy.url_with_credentials("alice", "s3cret");
    assert!(url.starts_with("https://"));
    let maps = ctx.maps(ctx.builder(&ctx.config(Some(&url))));
    list_and_watch(&maps).await;
    assert!(proxy.tunnels() >= 2, "{} tunnels", proxy.tunnels());
    let connect = format!("CONNECT {} HTTP/1.1", ctx.addr);
    for request in proxy.requests() {
        assert_eq!(request.line, connect);
        assert_eq!(
            request.authorization.as_deref(),
            Some("Basic YWxpY2U6czNjcmV0")
        );
    }
}

on_both_executors!(
    e2e_smol_proxy_https_untrusted_proxy_certificate_is_a_clear_error,
    e2e_async_std_proxy_https_untrusted_proxy_certificate_is_a_clear_error,
    https_untrusted_proxy_certificate_is_a_clear_error
);
async fn https_untrusted_proxy_certificate_is_a_clear_error(ctx: Ctx) {
    // A proxy whose certificate another CA signed.
    let proxy = TestProxy::builder()
        .tls(&Credentials::generate().unwrap())
        .start();
    let maps = ctx.maps(ctx.builder(&ctx.config(Some(&proxy.url()))));
    let error = maps.list(&ListParams::default()).await.unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains("TLS handshake with the proxy"),
        "{message}"
    );
    assert!(message.contains(&proxy.addr().to_string()), "{message}");
    assert!(message.contains("invalid peer certificate"), "{message}");
    assert_eq!(proxy.tunnels(), 0);
    assert!(proxy.requests().is_empty());
}

// --- retries: client-go does not retry a proxy's refusal (it is neither a
// reset nor an EOF), so a list is sent to the proxy once.

on_both_executors!(
    e2e_smol_proxy_407_is_not_retried,
    e2e_async_std_proxy_407_is_not_retried,
    proxy_407_is_not_retried
);
async fn proxy_407_is_not_retried(ctx: Ctx) {
    let proxy = TestProxy::builder()
        .require_basic("alice", "s3cret")
        .start();
    let builder = ClientBuilder::from_config(&ctx.config(Some(&proxy.url())), ctx.spawner.clone())
        .unwrap()
        .proxy_env(ProxyEnv::default());
    let maps = ctx.maps(builder);
    let error = maps.list(&ListParams::default()).await.unwrap_err();
    assert!(
        matches!(error.proxy(), Some(ProxyError::Refused { status: 407, .. })),
        "{error}"
    );
    assert_eq!(proxy.requests().len(), 1, "{:?}", proxy.requests());
    assert_eq!(proxy.connections(), 1);
}
