//! The proxy scenarios every runtime runs
//! ([`Group::Proxy`](super::Group::Proxy)), each through windlass-testkit's
//! [`TestProxy`] to windlass-apiserver: HTTP `CONNECT` tunnels (list and
//! watch, basic auth from the URL's userinfo, refusals as clear errors, a
//! 407 not retried), `NO_PROXY`, an http:// API server through an http://
//! and an https:// proxy, SOCKS5 (socks5:// and socks5h://, with and without
//! username/password, refusals), https:// proxies (TLS to the proxy verified
//! with the client's roots), and stalls (a proxy that never answers
//! `CONNECT`, an https:// proxy that never finishes its TLS handshake)
//! ending in the connect timeout.
//!
//! The proxy is given through the client's options or its `Config`, never
//! the process environment (tests run in parallel); every client here is
//! deaf to the process's proxy variables.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ConfigMap;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use windlass_proto::config::{Config, ProxyEnv, ProxyUrl, TlsDescription};
use windlass_proto::params::{ListParams, WatchParams};
use windlass_proto::proxy::ProxyError;

use super::core::{config_map, next_events};
use super::{ClientOptions, Ctx, Failure, Runtime, silent_server};
use crate::apiserver::Credentials;
use crate::proxy::{Behaviour, TestProxy};

/// Proxies: a [`Runtime`] whose [`Runtime::client`] honours
/// [`ClientOptions::proxy`], [`ClientOptions::proxy_env`] and a
/// [`Config`]'s `proxy_url`, and whose [`Failure`]s carry the runtime
/// error's `proxy()`. An https:// proxy is verified with the client's TLS
/// roots (the kubeconfig's CA, or [`Target::Url`](super::Target::Url)'s
/// description), as Go's transport does.
pub trait Proxying: Runtime {
    /// How the runtime sends a request for an http:// API server through an
    /// HTTP proxy.
    const PLAIN_HTTP_THROUGH_A_PROXY: PlainHttpThroughAProxy;
}

/// How an http:// API server is reached through an http:// or https:// proxy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlainHttpThroughAProxy {
    /// Each request in absolute form (`GET http://host:port/path`) with
    /// `Proxy-Authorization`, as Go's transport sends it.
    AbsoluteForm,
    /// A `CONNECT` tunnel, then origin-form requests inside it (ureq writes
    /// only origin-form request lines).
    Tunnel,
}

/// `Proxy-Authorization` for alice:s3cret.
const ALICE: &str = "Basic YWxpY2U6czNjcmV0";

/// The current context (client certificate) through `proxy_url`, deaf to
/// the process's proxy variables, never retrying.
fn through<R: Proxying>(ctx: &Ctx<R>, proxy_url: &str) -> ClientOptions {
    let mut config = ctx.config(None);
    config.proxy_url = Some(ProxyUrl::parse(proxy_url).expect("a proxy URL"));
    options(config)
}

/// `config`, deaf to the process's proxy variables, never retrying.
fn options(config: Config) -> ClientOptions {
    ClientOptions::config(config)
        .proxy_env(ProxyEnv::default())
        .max_retries(0)
}

/// A list's error (a list that succeeds fails the scenario).
async fn list_error<R: Proxying>(client: &R::Client) -> Failure {
    let maps = R::namespaced::<ConfigMap>(client, "default");
    match R::list(&maps, &ListParams::default()).await {
        Ok(list) => panic!("the list succeeded: {} items", list.items.len()),
        Err(error) => error,
    }
}

/// A list that succeeds.
async fn list<R: Proxying>(client: &R::Client) {
    let maps = R::namespaced::<ConfigMap>(client, "default");
    R::list(&maps, &ListParams::default()).await.unwrap();
}

/// Creates "a", lists it, watches from the list, creates "b", and waits
/// for the watch to bring "b": ordinary requests and a watch, each on its
/// own connection through the proxy.
async fn list_and_watch<R: Proxying>(client: &R::Client) {
    let maps = R::namespaced::<ConfigMap>(client, "default");
    R::create(&maps, &config_map("a", &[("k", "v")]))
        .await
        .unwrap();
    let list = R::list(&maps, &ListParams::default()).await.unwrap();
    assert_eq!(list.items.len(), 1);
    let params = WatchParams {
        resource_version: list.resource_version().map(str::to_owned),
        ..Default::default()
    };
    let mut watch = R::watch(&maps, &params).await.unwrap();
    R::create(&maps, &config_map("b", &[("k", "v")]))
        .await
        .unwrap();
    let seen = next_events::<R, ConfigMap, _>(&mut watch, 1, |m| m.metadata.name).await;
    assert_eq!(seen, [("ADDED", Some("b".to_owned()))]);
}

/// Through an http:// proxy to the API server over TLS: ordinary requests
/// share a tunnel, the watch has its own, every one a `CONNECT` to the
/// server's address.
pub async fn proxy_connect_tunnel_carries_list_and_watch<R: Proxying>(ctx: Ctx<R>) {
    let proxy = TestProxy::start();
    let client = ctx.rt.client(through(&ctx, &proxy.url()));
    list_and_watch::<R>(&client).await;
    assert!(proxy.tunnels() >= 2, "{} tunnels", proxy.tunnels());
    let connect = format!("CONNECT {} HTTP/1.1", ctx.server.addr());
    let requests = proxy.requests();
    assert!(requests.iter().all(|r| r.line == connect), "{requests:?}");
    assert!(requests.iter().all(|r| r.authorization.is_none()));
}

/// `http://user:password@proxy` sends `Proxy-Authorization: Basic`; the
/// wrong password gets the proxy's 407 whole (status, reason, challenge),
/// naming the proxy and never the password.
pub async fn proxy_authentication_basic_from_the_url_userinfo<R: Proxying>(ctx: Ctx<R>) {
    let proxy = TestProxy::builder()
        .require_basic("alice", "s3cret")
        .start();
    let url = proxy.url_with_credentials("alice", "s3cret");
    list::<R>(&ctx.rt.client(through(&ctx, &url))).await;
    assert_eq!(proxy.tunnels(), 1);
    assert_eq!(proxy.requests()[0].authorization.as_deref(), Some(ALICE));

    let url = proxy.url_with_credentials("alice", "wrong");
    let error = list_error::<R>(&ctx.rt.client(through(&ctx, &url))).await;
    match &error.proxy {
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
    let message = &error.message;
    assert!(
        message.contains("407 Proxy Authentication Required"),
        "{message}"
    );
    assert!(message.contains(&proxy.addr().to_string()), "{message}");
    assert!(!message.contains("wrong"), "no password in {message}");
    assert!(!error.is_timeout());
    assert_eq!(proxy.tunnels(), 1);
    assert_eq!(proxy.refused(), 1);
}

/// A proxy that answers `CONNECT` with 502: the status and reason, not a
/// timeout.
pub async fn proxy_502_is_a_clear_error<R: Proxying>(ctx: Ctx<R>) {
    let proxy = TestProxy::builder()
        .behaviour(Behaviour::Refuse {
            status: 502,
            reason: "Bad Gateway",
        })
        .start();
    let error = list_error::<R>(&ctx.rt.client(through(&ctx, &proxy.url()))).await;
    assert!(
        matches!(&error.proxy, Some(ProxyError::Refused { status: 502, reason, .. }) if reason == "Bad Gateway"),
        "{error}"
    );
    assert!(error.message.contains("502 Bad Gateway"), "{error}");
    assert!(error.message.contains(&proxy.addr().to_string()), "{error}");
    assert!(!error.is_timeout());
    assert_eq!(proxy.refused(), 1);
    assert_eq!(proxy.tunnels(), 0);
}

/// client-go does not retry a proxy's refusal (it is neither a reset nor
/// an EOF): with the default retries, a list is sent to the proxy once.
pub async fn proxy_407_is_not_retried<R: Proxying>(ctx: Ctx<R>) {
    let proxy = TestProxy::builder()
        .require_basic("alice", "s3cret")
        .start();
    let mut config = ctx.config(None);
    config.proxy_url = Some(ProxyUrl::parse(&proxy.url()).unwrap());
    let options = ClientOptions::config(config).proxy_env(ProxyEnv::default());
    assert_eq!(options.max_retries, None, "the builder's default retries");
    let error = list_error::<R>(&ctx.rt.client(options)).await;
    assert!(
        matches!(&error.proxy, Some(ProxyError::Refused { status: 407, .. })),
        "{error}"
    );
    assert_eq!(proxy.requests().len(), 1, "{:?}", proxy.requests());
    assert_eq!(proxy.connections(), 1);
    assert!(ctx.statuses().is_empty(), "nothing reached the server");
}

/// `HTTPS_PROXY` applies unless `NO_PROXY` names the host. Loopback never
/// goes through an environment proxy (as in Go), so the server is named
/// 0.0.0.0, which Linux connects to locally, and its certificate verified
/// as 127.0.0.1.
pub async fn proxy_no_proxy_bypasses_the_environment_proxy<R: Proxying>(ctx: Ctx<R>) {
    let proxy = TestProxy::start();
    let port = ctx.server.addr().port();
    let mut config = ctx.config(None);
    config.cluster_url = format!("https://0.0.0.0:{port}").parse().unwrap();
    config.tls.server_name = Some("127.0.0.1".into());
    let env = |no_proxy: &str| ProxyEnv {
        https_proxy: Some(proxy.url()),
        no_proxy: Some(no_proxy.to_owned()),
        ..Default::default()
    };
    let client = |no_proxy: &str| {
        ctx.rt.client(
            ClientOptions::config(config.clone())
                .proxy_env(env(no_proxy))
                .max_retries(0),
        )
    };
    list::<R>(&client("example.com,0.0.0.0")).await;
    assert_eq!(proxy.connections(), 0, "NO_PROXY matched: direct");
    assert_eq!(ctx.statuses(), [200]);
    list::<R>(&client("example.com")).await;
    assert_eq!(proxy.tunnels(), 1, "NO_PROXY did not match: proxied");
    assert_eq!(
        proxy.requests()[0].line,
        format!("CONNECT 0.0.0.0:{port} HTTP/1.1")
    );
    assert_eq!(ctx.statuses(), [200, 200]);
}

/// What the proxy saw of one list from an http:// API server: in absolute
/// form (forwarded) or a `CONNECT` tunnel, as the runtime sends it; with
/// `authorization` either way.
fn assert_plain_http_carried<R: Proxying>(
    ctx: &Ctx<R>,
    proxy: &TestProxy,
    authorization: Option<&str>,
) {
    let requests = proxy.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    let request = &requests[0];
    let addr = ctx.server.addr();
    match R::PLAIN_HTTP_THROUGH_A_PROXY {
        PlainHttpThroughAProxy::AbsoluteForm => {
            assert_eq!((proxy.forwarded(), proxy.tunnels()), (1, 0));
            let absolute = format!("GET http://{addr}/api/v1/namespaces/default/configmaps");
            assert!(request.line.starts_with(&absolute), "{}", request.line);
        }
        PlainHttpThroughAProxy::Tunnel => {
            assert_eq!((proxy.forwarded(), proxy.tunnels()), (0, 1));
            assert_eq!(request.line, format!("CONNECT {addr} HTTP/1.1"));
        }
    }
    assert_eq!(request.authorization.as_deref(), authorization);
    assert_eq!(ctx.statuses(), [200]);
}

/// An http:// API server through an http:// proxy that wants credentials
/// (`ClientBuilder::proxy`, not a kubeconfig).
pub async fn proxy_carries_plain_http_with_credentials<R: Proxying>(ctx: Ctx<R>) {
    let url = ctx.server.url();
    assert!(url.starts_with("http://"), "{url}");
    let proxy = TestProxy::builder().require_basic("bob", "pw").start();
    let options = ClientOptions::url(url, None)
        .proxy(&proxy.url_with_credentials("bob", "pw"))
        .proxy_env(ProxyEnv::default())
        .max_retries(0);
    list::<R>(&ctx.rt.client(options)).await;
    assert_plain_http_carried(&ctx, &proxy, Some("Basic Ym9iOnB3"));
}

/// Through a SOCKS5 proxy (RFC 1928, as Go's net/http speaks it): an IP
/// target goes as an IPv4 address; ordinary requests and the watch each
/// open a tunnel.
pub async fn proxy_socks5_list_and_watch_through_the_tunnel<R: Proxying>(ctx: Ctx<R>) {
    let proxy = TestProxy::start();
    let client = ctx.rt.client(through(&ctx, &proxy.socks5_url(None)));
    list_and_watch::<R>(&client).await;
    assert!(proxy.tunnels() >= 2, "{} tunnels", proxy.tunnels());
    let connect = format!("SOCKS5 CONNECT ipv4 {}", ctx.server.addr());
    let requests = proxy.requests();
    assert!(requests.iter().all(|r| r.line == connect), "{requests:?}");
}

/// socks5h:// with username and password (RFC 1929): the proxy resolves
/// the server's name (the serving certificate names localhost).
pub async fn proxy_socks5h_domain_name_with_username_and_password<R: Proxying>(ctx: Ctx<R>) {
    let proxy = TestProxy::builder()
        .require_basic("alice", "s3cret")
        .start();
    let mut options = through(&ctx, &proxy.socks5h_url(Some(("alice", "s3cret"))));
    let target = format!("localhost:{}", ctx.server.addr().port());
    let super::Target::Config(config) = &mut options.target else {
        unreachable!("`through` builds from a config")
    };
    config.cluster_url = format!("https://{target}").parse().unwrap();
    list_and_watch::<R>(&ctx.rt.client(options)).await;
    let requests = proxy.requests();
    assert!(requests.len() >= 2, "{requests:?}");
    for request in &requests {
        assert_eq!(request.line, format!("SOCKS5 CONNECT domain {target}"));
        assert_eq!(request.authorization.as_deref(), Some("alice:s3cret"));
    }
}

/// A SOCKS5 proxy that rejects the password, or wants one and is offered
/// none: clear errors naming the proxy, never the password.
pub async fn proxy_socks5_authentication_refused_is_a_clear_error<R: Proxying>(ctx: Ctx<R>) {
    let proxy = TestProxy::builder()
        .require_basic("alice", "s3cret")
        .start();
    let url = proxy.socks5_url(Some(("alice", "wrong")));
    let error = list_error::<R>(&ctx.rt.client(through(&ctx, &url))).await;
    assert_eq!(
        error.proxy,
        Some(ProxyError::Socks5AuthFailed { status: 1 }),
        "{error}"
    );
    let message = &error.message;
    assert!(
        message.contains("rejected the username and password"),
        "{message}"
    );
    assert!(message.contains(&proxy.addr().to_string()), "{message}");
    assert!(!message.contains("wrong"), "no password in {message}");
    // No credentials offered to a proxy that wants them.
    let url = proxy.socks5_url(None);
    let error = list_error::<R>(&ctx.rt.client(through(&ctx, &url))).await;
    assert_eq!(
        error.proxy,
        Some(ProxyError::Socks5NoAcceptableMethod {
            offered_password: false
        }),
        "{error}"
    );
    assert_eq!(proxy.tunnels(), 0);
    assert_eq!(proxy.refused(), 2);
}

/// A SOCKS5 reply other than success: its code and meaning, not a timeout.
pub async fn proxy_socks5_reply_failure_names_the_code<R: Proxying>(ctx: Ctx<R>) {
    let proxy = TestProxy::builder()
        .behaviour(Behaviour::SocksReply(5))
        .start();
    let url = proxy.socks5_url(None);
    let error = list_error::<R>(&ctx.rt.client(through(&ctx, &url))).await;
    assert_eq!(
        error.proxy,
        Some(ProxyError::Socks5Refused {
            reply: 5,
            meaning: "connection refused"
        }),
        "{error}"
    );
    assert!(
        error.message.contains("connection refused (reply 5)"),
        "{error}"
    );
    assert!(!error.is_timeout());
}

/// An https:// proxy with credentials, its certificate signed by the
/// kubeconfig's CA: TLS to the proxy, `CONNECT` inside it, the server's TLS
/// (with the client certificate) inside that.
pub async fn proxy_https_list_and_watch_through_tls_to_the_proxy<R: Proxying>(ctx: Ctx<R>) {
    let proxy = TestProxy::builder()
        .tls(ctx.server.credentials().expect("a TLS server"))
        .require_basic("alice", "s3cret")
        .start();
    let url = proxy.url_with_credentials("alice", "s3cret");
    assert!(url.starts_with("https://"), "{url}");
    list_and_watch::<R>(&ctx.rt.client(through(&ctx, &url))).await;
    assert!(proxy.tunnels() >= 2, "{} tunnels", proxy.tunnels());
    let connect = format!("CONNECT {} HTTP/1.1", ctx.server.addr());
    for request in proxy.requests() {
        assert_eq!(request.line, connect);
        assert_eq!(request.authorization.as_deref(), Some(ALICE));
    }
}

/// An https:// proxy whose certificate another CA signed: the handshake
/// with the proxy fails, and the error says so and names the proxy.
pub async fn proxy_https_untrusted_proxy_certificate_is_a_clear_error<R: Proxying>(ctx: Ctx<R>) {
    let proxy = TestProxy::builder()
        .tls(&Credentials::generate().unwrap())
        .start();
    let error = list_error::<R>(&ctx.rt.client(through(&ctx, &proxy.url()))).await;
    let message = &error.message;
    assert!(
        message.contains("TLS handshake with the proxy"),
        "{message}"
    );
    assert!(message.contains(&proxy.addr().to_string()), "{message}");
    // Both CAs share a name, so webpki finds the wrong one's signature bad.
    assert!(message.contains("invalid peer certificate"), "{message}");
    assert!(!error.is_timeout());
    assert_eq!(error.proxy, None);
    assert_eq!(proxy.tunnels(), 0);
    assert!(proxy.requests().is_empty());
}

/// An http:// API server through an https:// proxy: the client trusts the
/// proxy's CA (its TLS roots, as Go's transport uses the same `tls.Config`
/// for the proxy), and the requests go inside TLS to the proxy.
pub async fn proxy_https_carries_plain_http_inside_tls<R: Proxying>(ctx: Ctx<R>) {
    let url = ctx.server.url();
    assert!(url.starts_with("http://"), "{url}");
    let credentials = Credentials::generate().unwrap();
    let proxy = TestProxy::builder().tls(&credentials).start();
    let ca = CertificateDer::pem_slice_iter(credentials.ca_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .expect("the proxy's CA");
    let tls = TlsDescription {
        ca: Some(ca),
        ..Default::default()
    };
    let options = ClientOptions::url(url, Some(tls))
        .proxy(&proxy.url())
        .proxy_env(ProxyEnv::default())
        .max_retries(0);
    list::<R>(&ctx.rt.client(options)).await;
    assert_plain_http_carried(&ctx, &proxy, None);
}

/// A proxy that reads `CONNECT` and never answers: a timeout error waiting
/// for the connection, within the connect timeout, never a hang.
pub async fn proxy_stalled_connect_ends_in_a_connect_timeout<R: Proxying>(ctx: Ctx<R>) {
    let proxy = TestProxy::builder().behaviour(Behaviour::Stall).start();
    list_times_out_connecting(&ctx, &proxy.url()).await;
    assert_eq!(proxy.tunnels(), 0);
    let connect = format!("CONNECT {} HTTP/1.1", ctx.server.addr());
    let requests = proxy.requests();
    assert!(requests.iter().all(|r| r.line == connect), "{requests:?}");
    assert!(!requests.is_empty(), "the proxy read the CONNECT");
}

/// An https:// proxy that accepts TCP and never finishes the TLS
/// handshake: a timeout error waiting for the connection, within the
/// connect timeout, never a hang.
pub async fn proxy_stalled_https_handshake_ends_in_a_connect_timeout<R: Proxying>(ctx: Ctx<R>) {
    list_times_out_connecting(&ctx, &format!("https://{}", silent_server())).await;
    assert!(ctx.statuses().is_empty(), "nothing reached the server");
}

/// A list through `proxy_url` with a 500 ms connect timeout ends in a
/// timeout waiting for the connection, after the timeout and well before
/// the scenario's deadline.
async fn list_times_out_connecting<R: Proxying>(ctx: &Ctx<R>, proxy_url: &str) {
    let connect_timeout = Duration::from_millis(500);
    let client = ctx
        .rt
        .client(through(ctx, proxy_url).connect_timeout(connect_timeout));
    let started = Instant::now();
    let error = list_error::<R>(&client).await;
    let elapsed = started.elapsed();
    assert_eq!(error.timeout, Some("connection"), "{error}");
    assert!(error.message.contains("500ms"), "{error}");
    assert!(elapsed >= connect_timeout * 9 / 10, "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
}
