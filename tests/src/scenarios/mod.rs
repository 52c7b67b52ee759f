//! The one end-to-end scenario suite every runtime runs (feature
//! `scenarios`).
//!
//! Each scenario is written once, as an `async fn` generic over [`Runtime`]:
//! a small facade a runtime's test crate implements by forwarding to its own
//! `Client`, `Api<K>`, watch stream, discovery and runners. The scenario
//! talks to `windlass-apiserver` over TLS with client-certificate auth (the
//! server's kubeconfig), on a tokio runtime of the server's own, so the code
//! under test never shares an executor with the server.
//!
//! [`run`] drives one scenario: it starts the server, runs the scenario on a
//! thread of its own with the runtime's [`Runtime::block_on`], fails the
//! test if it does not finish within its deadline, and stops the server.
//! A blocking runtime implements the async facade with plain blocking calls
//! inside `async fn`s; its `block_on` is [`block_on`], a trivial executor
//! that polls once per wake-up and parks the thread in between (a blocking
//! call simply completes inside `poll`).
//!
//! The list of scenarios is [`SCENARIOS`]; [`e2e_suite!`](crate::e2e_suite)
//! generates one `#[test]` per scenario for a runtime and a test that fails
//! when the runtime leaves a group of the list out without saying why.
//!
//! What this module does not own: runtime-specific behaviour (smol's
//! executor independence, blocking's cancel handle, tokio's task abort)
//! stays in that runtime's own test files.
#![allow(async_fn_in_trait)] // scenarios are driven by `block_on`, never spawned: no `Send` bound needed

pub mod core;
pub mod discovery;
pub mod facade;
pub mod h2;
pub mod proxy;
pub mod runners;

use std::future::Future;
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex, mpsc};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use k8s_openapi::api::autoscaling::v1::Scale;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use windlass_proto::codec::Format;
use windlass_proto::config::{
    Config, ContextOptions, Kubeconfig, ProxyEnv, ProxyUrl, TlsDescription,
};
use windlass_proto::controller::{Counters, Outcome};
use windlass_proto::discovery::{Discovery, GroupVersionKind};
use windlass_proto::dynamic::{DynamicObject, PartialObjectMetadata};
use windlass_proto::election::Config as ElectionConfig;
use windlass_proto::informer::Notification;
use windlass_proto::list::ObjectList;
use windlass_proto::object::{Object, ObjectKey};
use windlass_proto::params::{ListParams, WatchParams};
use windlass_proto::proxy::ProxyError;
use windlass_proto::ratelimit::RateLimiter;
use windlass_proto::request::Patch;
use windlass_proto::resource::ApiResource;
use windlass_proto::watch::WatchEvent;

use crate::apiserver::{ApiServerBuilder, RequestRecord, RunningServer};
pub use h2::{H2Options, Sharding};
pub use proxy::{PlainHttpThroughAProxy, Proxying};

/// Every scenario of the suite as `(group, name)`; a runtime runs a group
/// whole or says why it cannot.
pub const SCENARIOS: &[(Group, &str)] = &[
    (Group::Core, "crud_typed"),
    (Group::Core, "crud_dynamic_custom_resource"),
    (Group::Core, "apply_conflict_then_force_with_bearer_token"),
    (Group::Core, "pagination_walks_every_page"),
    (Group::Core, "watch_sees_create_update_delete_in_order"),
    (
        Group::Core,
        "watch_across_drops_and_410s_loses_and_duplicates_nothing",
    ),
    (Group::Core, "cut_watch_ends_with_an_error_not_a_hang"),
    (Group::Core, "retries_429_and_503_with_retry_after"),
    (Group::Core, "stall_silent_watch_ends_in_a_timeout_error"),
    (
        Group::Core,
        "stall_server_that_accepts_and_never_answers_ends_in_a_timeout",
    ),
    (
        Group::Core,
        "status_scale_subresources_and_delete_collection",
    ),
    (Group::Core, "plain_http_reaches_the_server_too"),
    (
        Group::Core,
        "exec_credential_plugin_runs_once_for_many_requests",
    ),
    (
        Group::Discovery,
        "discovery_aggregated_then_a_new_crd_after_refresh",
    ),
    (
        Group::Discovery,
        "discovery_falls_back_to_the_legacy_walk_on_406",
    ),
    (
        Group::Discovery,
        "dynamic_crud_of_a_builtin_kind_found_by_gvk",
    ),
    (
        Group::Discovery,
        "dynamic_crud_and_watch_of_a_crd_found_by_gvk",
    ),
    (Group::Discovery, "protobuf_crud_list_and_watch"),
    (
        Group::Discovery,
        "protobuf_falls_back_to_json_on_406_and_415",
    ),
    (Group::Discovery, "cbor_crud_list_and_watch"),
    (Group::Discovery, "cbor_falls_back_to_json_on_406_and_415"),
    (
        Group::Runners,
        "informer_syncs_10000_objects_handlers_see_every_add_lister_agrees",
    ),
    (
        Group::Runners,
        "informer_watch_across_drops_and_410s_loses_and_duplicates_nothing",
    ),
    (
        Group::Runners,
        "informer_wait_for_sync_times_out_against_a_silent_server",
    ),
    (
        Group::Runners,
        "informer_syncs_on_an_empty_list_then_sees_the_first_add",
    ),
    (
        Group::Runners,
        "controller_requeues_failures_with_growing_backoff_then_succeeds",
    ),
    (
        Group::Runners,
        "controller_graceful_shutdown_drains_queued_and_running_reconciles",
    ),
    (
        Group::Runners,
        "controller_on_an_empty_collection_syncs_and_runs_its_workers",
    ),
    (
        Group::Runners,
        "leader_election_hands_over_when_the_leader_releases",
    ),
    (
        Group::H2,
        "h2_250_watches_spread_over_ceil_250_over_cap_connections",
    ),
    (
        Group::H2,
        "h2_watch_shards_follow_a_lower_server_stream_limit",
    ),
    (Group::H2, "h2_configured_cap_sets_the_shard_count"),
    (
        Group::H2,
        "h2_switched_off_gives_each_watch_an_http1_connection",
    ),
    (Group::H2, "h2_cancelled_watch_leaves_its_siblings_running"),
    (
        Group::H2,
        "h2_killed_connection_reopens_and_its_watches_resume",
    ),
    (Group::Proxy, "proxy_connect_tunnel_carries_list_and_watch"),
    (
        Group::Proxy,
        "proxy_authentication_basic_from_the_url_userinfo",
    ),
    (Group::Proxy, "proxy_502_is_a_clear_error"),
    (Group::Proxy, "proxy_407_is_not_retried"),
    (
        Group::Proxy,
        "proxy_no_proxy_bypasses_the_environment_proxy",
    ),
    (Group::Proxy, "proxy_carries_plain_http_with_credentials"),
    (
        Group::Proxy,
        "proxy_socks5_list_and_watch_through_the_tunnel",
    ),
    (
        Group::Proxy,
        "proxy_socks5h_domain_name_with_username_and_password",
    ),
    (
        Group::Proxy,
        "proxy_socks5_authentication_refused_is_a_clear_error",
    ),
    (Group::Proxy, "proxy_socks5_reply_failure_names_the_code"),
    (
        Group::Proxy,
        "proxy_https_list_and_watch_through_tls_to_the_proxy",
    ),
    (
        Group::Proxy,
        "proxy_https_untrusted_proxy_certificate_is_a_clear_error",
    ),
    (Group::Proxy, "proxy_https_carries_plain_http_inside_tls"),
    (
        Group::Proxy,
        "proxy_stalled_connect_ends_in_a_connect_timeout",
    ),
    (
        Group::Proxy,
        "proxy_stalled_https_handshake_ends_in_a_connect_timeout",
    ),
];

/// What a scenario needs of a runtime, in groups a runtime takes whole.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Group {
    /// Client, typed and dynamic `Api`, watch, faults and stalls: [`Runtime`].
    Core,
    /// Discovery, dynamic access by GVK, protobuf and CBOR: [`Discovering`].
    Discovery,
    /// Informer, controller, leader election: [`Runners`].
    Runners,
    /// HTTP/2 watch shards: [`Sharding`].
    H2,
    /// HTTP `CONNECT`, SOCKS5 and https:// proxies, `NO_PROXY`, refusals
    /// and stalls: [`Proxying`].
    Proxy,
}

/// The names of `group`'s scenarios, in [`SCENARIOS`] order.
pub fn names(group: Group) -> Vec<&'static str> {
    SCENARIOS
        .iter()
        .filter(|(g, _)| *g == group)
        .map(|(_, name)| *name)
        .collect()
}

/// What every scenario's objects are: any kind an `Api<K>` of every runtime
/// reads and writes.
pub trait Kind:
    Serialize + DeserializeOwned + Clone + std::fmt::Debug + Send + Sync + 'static
{
}
impl<K: Serialize + DeserializeOwned + Clone + std::fmt::Debug + Send + Sync + 'static> Kind for K {}

/// A runtime's error as the scenarios look at it: the predicates every
/// runtime's `Error` has, taken when it was converted.
#[derive(Clone, Debug)]
pub struct Failure {
    /// The runtime error's `Display`.
    pub message: String,
    /// The HTTP status of a server's error (`Status.code`).
    pub code: Option<u16>,
    /// 409 Conflict.
    pub conflict: bool,
    /// 409 AlreadyExists.
    pub already_exists: bool,
    /// 404 NotFound.
    pub not_found: bool,
    /// 410 Expired or Gone.
    pub expired: bool,
    /// What a timeout was waiting for (`"response head"`, `"body bytes"`,
    /// `"connection"`), when the error is one.
    pub timeout: Option<&'static str>,
    /// An informer's `wait_for_sync` gave up.
    pub sync_timeout: bool,
    /// Why a proxy would not open a tunnel (the runtime error's `proxy()`).
    pub proxy: Option<ProxyError>,
}

impl Failure {
    /// An error with only a message.
    pub fn other(message: impl Into<String>) -> Self {
        Failure {
            message: message.into(),
            code: None,
            conflict: false,
            already_exists: false,
            not_found: false,
            expired: false,
            timeout: None,
            sync_timeout: false,
            proxy: None,
        }
    }

    /// A read-idle, head or connect timeout.
    pub fn is_timeout(&self) -> bool {
        self.timeout.is_some()
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// How to build a client.
#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// What to talk to.
    pub target: Target,
    /// `read_timeout` on the builder, if set.
    pub read_timeout: Option<Duration>,
    /// `connect_timeout` on the builder, if set.
    pub connect_timeout: Option<Duration>,
    /// `max_retries` on the builder, if set.
    pub max_retries: Option<u32>,
    /// `format` on the builder, if set (a [`Discovering`] runtime only).
    pub format: Option<Format>,
    /// `proxy` on the builder, if set: this proxy whatever the environment
    /// says (a [`Target::Config`] may name one as its `proxy_url` too).
    pub proxy: Option<ProxyUrl>,
    /// `proxy_env` on the builder, if set: the proxy variables read instead
    /// of the process's (`ProxyEnv::default()`: none, go directly).
    pub proxy_env: Option<ProxyEnv>,
}

/// Where a client goes.
#[derive(Clone, Debug)]
pub enum Target {
    /// A resolved kubeconfig context (`ClientBuilder::from_config`).
    Config(Box<Config>),
    /// A base URL and its TLS (`ClientBuilder::new`).
    Url(String, Option<Box<TlsDescription>>),
}

impl ClientOptions {
    /// A client for `config`, builder defaults otherwise.
    pub fn config(config: Config) -> Self {
        Self::to(Target::Config(Box::new(config)))
    }

    /// A client for `url`, builder defaults otherwise.
    pub fn url(url: impl Into<String>, tls: Option<TlsDescription>) -> Self {
        Self::to(Target::Url(url.into(), tls.map(Box::new)))
    }

    fn to(target: Target) -> Self {
        ClientOptions {
            target,
            read_timeout: None,
            connect_timeout: None,
            max_retries: None,
            format: None,
            proxy: None,
            proxy_env: None,
        }
    }

    /// With a read timeout.
    pub fn read_timeout(mut self, timeout: Duration) -> Self {
        self.read_timeout = Some(timeout);
        self
    }

    /// With a connect timeout.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = Some(timeout);
        self
    }

    /// With at most `retries` retries.
    pub fn max_retries(mut self, retries: u32) -> Self {
        self.max_retries = Some(retries);
        self
    }

    /// Asking for `format`.
    pub fn format(mut self, format: Format) -> Self {
        self.format = Some(format);
        self
    }

    /// Through `proxy` (`http://`, `https://`, `socks5://`, `socks5h://`).
    ///
    /// # Panics
    /// If `proxy` does not parse (a scenario's mistake).
    pub fn proxy(mut self, proxy: &str) -> Self {
        self.proxy = Some(ProxyUrl::parse(proxy).expect("a proxy URL"));
        self
    }

    /// Reading the proxy from `env`, not the process's environment.
    pub fn proxy_env(mut self, env: ProxyEnv) -> Self {
        self.proxy_env = Some(env);
        self
    }
}

/// The runtime-neutral facade over a runtime's client and `Api<K>`.
///
/// Every method forwards to the runtime's method of the same name and
/// converts its error with the runtime's `Failure` conversion; nothing here
/// decides anything. A blocking runtime makes its blocking call inside the
/// `async fn`.
pub trait Runtime: Send + Sync + Sized + 'static {
    /// The runtime's name in test names (`tokio`, `smol`, `async_std`, `blocking`).
    const NAME: &'static str;
    /// What the runtime's timeout error says it waited for when a TLS
    /// handshake stalls past the connect timeout: `"connection"` in every
    /// runtime today (windlass-tokio bounds hyper-rustls' handshake with
    /// its `connect::Bounded` connector since session 3).
    const TLS_HANDSHAKE_STALL: &'static str;
    /// The runtime's `Client`.
    type Client: Clone + Send + Sync + 'static;
    /// The runtime's `Api<K>`.
    type Api<K: Kind>: Clone + Send + Sync + 'static;
    /// An open watch (the runtime's stream or iterator).
    type Watch<K: Kind>;

    /// Runs `future` to completion on this runtime's executor.
    fn block_on<T>(&self, future: impl Future<Output = T>) -> T;
    /// Waits `duration` (the calling thread's sleep for a blocking runtime).
    fn sleep(duration: Duration) -> impl Future<Output = ()> + Send + 'static;

    /// A client.
    fn client(&self, options: ClientOptions) -> Self::Client;
    /// The client's default namespace.
    fn default_namespace(client: &Self::Client) -> String;

    /// `Api::namespaced`.
    fn namespaced<K>(client: &Self::Client, namespace: &str) -> Self::Api<K>
    where
        K: Kind + k8s_openapi::Resource<Scope = k8s_openapi::NamespaceResourceScope>;
    /// `Api::cluster`.
    fn cluster<K>(client: &Self::Client) -> Self::Api<K>
    where
        K: Kind + k8s_openapi::Resource<Scope = k8s_openapi::ClusterResourceScope>;
    /// `Api::all`: every namespace.
    fn all<K>(client: &Self::Client) -> Self::Api<K>
    where
        K: Kind + k8s_openapi::Resource,
        K::Scope: windlass_proto::resource::TopLevelScope;
    /// `Api::dynamic`.
    fn dynamic(
        client: &Self::Client,
        resource: &ApiResource,
        namespace: Option<&str>,
    ) -> Self::Api<DynamicObject>;

    /// `create`.
    async fn create<K: Kind>(api: &Self::Api<K>, object: &K) -> Result<K, Failure>;
    /// `get`.
    async fn get<K: Kind>(api: &Self::Api<K>, name: &str) -> Result<K, Failure>;
    /// `get_opt`.
    async fn get_opt<K: Kind>(api: &Self::Api<K>, name: &str) -> Result<Option<K>, Failure>;
    /// `replace`.
    async fn replace<K: Kind>(api: &Self::Api<K>, name: &str, object: &K) -> Result<K, Failure>;
    /// `patch`.
    async fn patch<K: Kind>(
        api: &Self::Api<K>,
        name: &str,
        patch: &Patch<Value>,
    ) -> Result<K, Failure>;
    /// `apply` (server-side apply as `manager`).
    async fn apply<K: Kind>(
        api: &Self::Api<K>,
        name: &str,
        manager: &str,
        force: bool,
        object: &Value,
    ) -> Result<K, Failure>;
    /// `delete`.
    async fn delete<K: Kind>(api: &Self::Api<K>, name: &str) -> Result<(), Failure>;
    /// `delete_collection`.
    async fn delete_collection<K: Kind>(
        api: &Self::Api<K>,
        params: &ListParams,
    ) -> Result<(), Failure>;
    /// `list` (one page).
    async fn list<K: Kind>(
        api: &Self::Api<K>,
        params: &ListParams,
    ) -> Result<ObjectList<K>, Failure>;
    /// `list_pages`, collected.
    async fn list_pages<K: Kind>(
        api: &Self::Api<K>,
        params: &ListParams,
    ) -> Result<Vec<ObjectList<K>>, Failure>;
    /// Every object, page by page (`list_stream` / `list_all`).
    async fn list_all<K: Kind>(api: &Self::Api<K>, params: &ListParams) -> Result<Vec<K>, Failure>;
    /// `metadata().get`.
    async fn metadata_get<K: Kind>(
        api: &Self::Api<K>,
        name: &str,
    ) -> Result<PartialObjectMetadata, Failure>;
    /// `metadata().list`.
    async fn metadata_list<K: Kind>(
        api: &Self::Api<K>,
        params: &ListParams,
    ) -> Result<ObjectList<PartialObjectMetadata>, Failure>;
    /// `get_status`.
    async fn get_status<K: Kind>(api: &Self::Api<K>, name: &str) -> Result<K, Failure>;
    /// `replace_status`.
    async fn replace_status<K: Kind>(
        api: &Self::Api<K>,
        name: &str,
        object: &K,
    ) -> Result<K, Failure>;
    /// `patch_status`.
    async fn patch_status<K: Kind>(
        api: &Self::Api<K>,
        name: &str,
        patch: &Patch<Value>,
    ) -> Result<K, Failure>;
    /// `get_scale`.
    async fn get_scale<K: Kind>(api: &Self::Api<K>, name: &str) -> Result<Scale, Failure>;
    /// `patch_scale`.
    async fn patch_scale<K: Kind>(
        api: &Self::Api<K>,
        name: &str,
        patch: &Patch<Value>,
    ) -> Result<Scale, Failure>;
    /// `watch`: opens the stream.
    async fn watch<K: Kind>(
        api: &Self::Api<K>,
        params: &WatchParams,
    ) -> Result<Self::Watch<K>, Failure>;
    /// The watch's next item; `None` when it ended.
    async fn next_event<K: Kind>(
        watch: &mut Self::Watch<K>,
    ) -> Option<Result<WatchEvent<K>, Failure>>;
}

/// Discovery, dynamic access by GVK and the wire formats.
pub trait Discovering: Runtime {
    /// The runtime's `Discovery`.
    type Discovery;

    /// `Discovery::run`.
    async fn discover(client: &Self::Client) -> Result<Self::Discovery, Failure>;
    /// `Discovery::refresh`.
    async fn rediscover(discovery: &mut Self::Discovery) -> Result<(), Failure>;
    /// The lookups (the runtime's `Discovery` derefs to it).
    fn discovered(discovery: &Self::Discovery) -> &Discovery;
    /// `Discovery::dynamic`.
    fn dynamic_by_gvk(
        discovery: &Self::Discovery,
        gvk: &GroupVersionKind,
        namespace: Option<&str>,
    ) -> Result<Self::Api<DynamicObject>, Failure>;
    /// `Discovery::dynamic_for_kind`.
    fn dynamic_for_kind(
        discovery: &Self::Discovery,
        group: &str,
        kind: &str,
        namespace: Option<&str>,
    ) -> Result<Self::Api<DynamicObject>, Failure>;
    /// `client.formats().has_fallen_back(resource)`.
    fn has_fallen_back(client: &Self::Client, resource: &ApiResource) -> bool;
    /// The client's negotiation state (`client.formats()`).
    fn formats(client: &Self::Client) -> windlass_proto::api::Formats;
    /// `client.send_for_bytes` of a `get`.
    async fn send_get_for_bytes(
        client: &Self::Client,
        request: http::Request<bytes::Bytes>,
        resource: &'static str,
    ) -> Result<(http::response::Parts, bytes::Bytes), Failure>;
}

/// Informer, controller and leader election.
pub trait Runners: Runtime {
    /// The runtime's `Informer<K>`.
    type Informer<K: Kind + Object>: Clone + Send + Sync + 'static;
    /// The runtime's `Controller<K>`.
    type Controller<K: Kind + Object>;
    /// The runtime's `ControllerHandle`.
    type ControllerHandle: Clone + Send + Sync + 'static;
    /// The runtime's `ElectorHandle`.
    type ElectorHandle: Clone + Send + Sync + 'static;
    /// Background work started by [`Runners::spawn`] (a task or a thread).
    type Task<T: Send + 'static>;

    /// Runs `future` in the background (a task; a thread running
    /// [`block_on`] for a blocking runtime).
    fn spawn<T: Send + 'static>(
        &self,
        future: impl Future<Output = T> + Send + 'static,
    ) -> Self::Task<T>;
    /// Waits for background work to finish.
    async fn join<T: Send + 'static>(task: Self::Task<T>) -> T;

    /// `Informer::new(api, InformerConfig::default())`.
    fn informer<K: Kind + Object>(api: &Self::Api<K>) -> Self::Informer<K>;
    /// `add_handler(None, handler)`.
    fn add_handler<K: Kind + Object>(
        informer: &Self::Informer<K>,
        handler: impl FnMut(Notification<K>) + Send + 'static,
    );
    /// `start`: the informer's loop in the background.
    fn start<K: Kind + Object>(
        &self,
        informer: &Self::Informer<K>,
    ) -> Self::Task<Result<(), Failure>>;
    /// `wait_for_sync`.
    async fn wait_for_sync<K: Kind + Object>(
        informer: &Self::Informer<K>,
        timeout: Duration,
    ) -> Result<(), Failure>;
    /// `stop`.
    fn stop<K: Kind + Object>(informer: &Self::Informer<K>);
    /// `is_running`.
    fn is_running<K: Kind + Object>(informer: &Self::Informer<K>) -> bool;
    /// `lister().list()`.
    fn lister_list<K: Kind + Object>(informer: &Self::Informer<K>) -> Vec<Arc<K>>;
    /// `lister().list_namespace(namespace)`.
    fn lister_list_namespace<K: Kind + Object>(
        informer: &Self::Informer<K>,
        namespace: &str,
    ) -> Vec<Arc<K>>;
    /// `lister().get(key)`.
    fn lister_get<K: Kind + Object>(
        informer: &Self::Informer<K>,
        key: &ObjectKey,
    ) -> Option<Arc<K>>;

    /// `Controller::new(informer).workers(workers)`, with `limiter` when given.
    fn controller<K: Kind + Object, L: RateLimiter<ObjectKey> + Send + 'static>(
        informer: Self::Informer<K>,
        workers: usize,
        limiter: Option<L>,
    ) -> Self::Controller<K>;
    /// `Controller::handle`.
    fn controller_handle<K: Kind + Object>(
        controller: &Self::Controller<K>,
    ) -> Self::ControllerHandle;
    /// `Controller::run`; the reconcile's future runs to completion (on
    /// the worker's thread, by [`block_on`], for a blocking runtime).
    async fn run_controller<K: Kind + Object>(
        controller: Self::Controller<K>,
        reconcile: impl Fn(ObjectKey) -> BoxFuture<Result<Outcome, String>> + Send + Sync + 'static,
    ) -> Result<Counters, Failure>;
    /// `ControllerHandle::shut_down`.
    fn shut_down(handle: &Self::ControllerHandle);
    /// `ControllerHandle::enqueue`.
    fn enqueue(handle: &Self::ControllerHandle, key: ObjectKey);
    /// `ControllerHandle::counters`.
    fn counters(handle: &Self::ControllerHandle) -> Counters;

    /// `LeaderElector::new(client, config).run(lead)` in the background,
    /// where `lead` calls `started`, waits for `leadership.lost()`, then
    /// calls `stopped`.
    fn campaign(
        &self,
        client: Self::Client,
        config: ElectionConfig,
        started: Box<dyn FnOnce() + Send>,
        stopped: Box<dyn FnOnce() + Send>,
    ) -> (Self::ElectorHandle, Self::Task<Result<(), Failure>>);
    /// `ElectorHandle::is_leader`.
    fn is_leader(handle: &Self::ElectorHandle) -> bool;
    /// `ElectorHandle::leader`.
    fn leader(handle: &Self::ElectorHandle) -> Option<String>;
    /// `ElectorHandle::stop`.
    fn stop_campaign(handle: &Self::ElectorHandle);
}

/// A boxed, sendable future (a reconcile's).
pub type BoxFuture<T> = std::pin::Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// What a scenario gets: the runtime and the running server.
pub struct Ctx<R> {
    /// The runtime under test.
    pub rt: Arc<R>,
    /// windlass-apiserver, over TLS unless the scenario asked otherwise.
    pub server: Arc<RunningServer>,
    /// Every request the server answered, in order.
    pub requests: Arc<Mutex<Vec<RequestRecord>>>,
}

impl<R: Runtime> Ctx<R> {
    /// The statuses of every request the server answered so far.
    pub fn statuses(&self) -> Vec<u16> {
        let requests = self.requests.lock().expect("the request log");
        requests.iter().map(|r| r.status.as_u16()).collect()
    }

    /// The server's kubeconfig `context` resolved (the current context,
    /// client-certificate auth, when `None`).
    pub fn config(&self, context: Option<&str>) -> Config {
        let kubeconfig = Kubeconfig::parse(self.server.kubeconfig().as_bytes(), None)
            .expect("the server's kubeconfig parses");
        let options = ContextOptions {
            context: context.map(str::to_owned),
            ..Default::default()
        };
        let config = kubeconfig
            .resolve(&options, &no_files)
            .expect("the server's kubeconfig resolves");
        if context.is_none() {
            assert!(
                config.tls.identity.is_some(),
                "the current context authenticates with a client certificate"
            );
        }
        config
    }

    /// A client for the current context (client certificate).
    pub fn client(&self) -> R::Client {
        self.rt.client(ClientOptions::config(self.config(None)))
    }

    /// Options for the current context, to set more on.
    pub fn options(&self) -> ClientOptions {
        ClientOptions::config(self.config(None))
    }
}

/// A kubeconfig's file reader that finds no file (the server's kubeconfig
/// carries its certificates inline).
pub fn no_files(path: &std::path::Path) -> std::io::Result<Vec<u8>> {
    Err(std::io::Error::new(
        std::io::ErrorKind::NotFound,
        path.display().to_string(),
    ))
}

/// Starts windlass-apiserver from `server` on a tokio runtime of its own,
/// runs `scenario` on `rt` within `secs` seconds, and stops the server.
pub fn run<R, F, Fut>(rt: R, server: ApiServerBuilder, secs: u64, scenario: F)
where
    R: Runtime,
    F: FnOnce(Ctx<R>) -> Fut + Send + 'static,
    Fut: Future<Output = ()>,
{
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime for windlass-apiserver");
    let requests = Arc::new(Mutex::new(Vec::new()));
    let log = requests.clone();
    let server = server.log_requests(move |r| log.lock().expect("the request log").push(r.clone()));
    let server = runtime
        .block_on(async { tokio::time::timeout(Duration::from_secs(30), server.start()).await })
        .expect("windlass-apiserver starts within 30 s")
        .expect("windlass-apiserver starts");
    let server = Arc::new(server);
    let scenario_server = server.clone();
    let (done, outcome) = mpsc::channel();
    // The main thread's 8 MiB, not a test thread's 2 MiB: an unoptimised
    // build decodes a Deployment with about 2 MiB of stack.
    std::thread::Builder::new()
        .name(format!("e2e-{}", R::NAME))
        .stack_size(8 << 20)
        .spawn(move || {
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
                let rt = Arc::new(rt);
                rt.block_on(scenario(Ctx {
                    rt: rt.clone(),
                    server: scenario_server,
                    requests,
                }));
            }));
            let _ = done.send(result);
        })
        .expect("a scenario thread");
    let outcome = outcome.recv_timeout(Duration::from_secs(secs));
    // A scenario that timed out still holds the server: the runtime's drop ends it.
    if let Ok(server) = Arc::try_unwrap(server) {
        let _ = runtime.block_on(async {
            tokio::time::timeout(Duration::from_secs(10), server.shutdown()).await
        });
    }
    match outcome {
        Ok(Ok(())) => {}
        Ok(Err(panic)) => std::panic::resume_unwind(panic),
        Err(_) => panic!("the {} scenario did not finish within {secs} s", R::NAME),
    }
}

/// Runs `future` on the calling thread: polls it, parks until woken, polls
/// again. The executor of a blocking runtime, whose `async fn`s complete
/// inside their first poll.
pub fn block_on<T>(future: impl Future<Output = T>) -> T {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        if let Poll::Ready(value) = future.as_mut().poll(&mut cx) {
            return value;
        }
        std::thread::park();
    }
}

/// A loopback listener that accepts connections and never reads or writes
/// (over plain HTTP the response head never comes; over TLS the handshake
/// never finishes). The connections are held for the life of the process.
pub fn silent_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
    let addr = listener.local_addr().expect("its address");
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            held.push(stream);
        }
    });
    addr
}

/// One `#[test]` per scenario of the groups a runtime runs, in a module
/// named after the runtime (`e2e_tokio::crud_typed`), and a test that fails
/// when the runtime leaves a group out without a reason or a group's tests
/// drift from [`SCENARIOS`](crate::scenarios::SCENARIOS).
///
/// ```text
/// windlass_testkit::e2e_suite! {
///     e2e_smol: Smol::new();
///     runs [Core];
///     lacks [Discovery => "no discovery in windlass-smol yet", Runners => "…"];
/// }
/// ```
#[macro_export]
macro_rules! e2e_suite {
    ($module:ident: $rt:expr; runs [$($group:ident),*]; lacks [$($lacking:ident => $why:literal),*];) => {
        mod $module {
            #[allow(unused_imports)]
            use super::*;
            $( $crate::e2e_suite!(@group $group, $rt); )*

            #[test]
            fn suite_runs_every_shared_scenario() {
                use $crate::scenarios::{Group, SCENARIOS, names};
                let mut covered: Vec<Group> = vec![$(Group::$group,)* $(Group::$lacking,)*];
                covered.sort();
                covered.dedup();
                let mut every: Vec<Group> = SCENARIOS.iter().map(|(g, _)| *g).collect();
                every.sort();
                every.dedup();
                assert_eq!(covered, every, "each group is run or named as lacking, with its reason");
                $( assert!(!$why.is_empty()); )*
                $( assert_eq!($crate::e2e_suite!(@names $group), names(Group::$group).as_slice(), "the generated tests of {:?}", Group::$group); )*
            }
        }
    };
    (@group Core, $rt:expr) => {
        $crate::e2e_suite!(@each $rt, core, CORE, [
            crud_typed {60, default},
            crud_dynamic_custom_resource {60, default},
            apply_conflict_then_force_with_bearer_token {60, default},
            pagination_walks_every_page {60, default},
            watch_sees_create_update_delete_in_order {60, default},
            watch_across_drops_and_410s_loses_and_duplicates_nothing {60, default},
            cut_watch_ends_with_an_error_not_a_hang {60, default},
            retries_429_and_503_with_retry_after {60, default},
            stall_silent_watch_ends_in_a_timeout_error {60, default},
            stall_server_that_accepts_and_never_answers_ends_in_a_timeout {60, default},
            status_scale_subresources_and_delete_collection {60, default},
            plain_http_reaches_the_server_too {60, plain},
            exec_credential_plugin_runs_once_for_many_requests {60, default}
        ]);
    };
    (@group Discovery, $rt:expr) => {
        $crate::e2e_suite!(@each $rt, discovery, DISCOVERY, [
            discovery_aggregated_then_a_new_crd_after_refresh {60, default},
            discovery_falls_back_to_the_legacy_walk_on_406 {60, default},
            dynamic_crud_of_a_builtin_kind_found_by_gvk {60, default},
            dynamic_crud_and_watch_of_a_crd_found_by_gvk {60, default},
            protobuf_crud_list_and_watch {60, default},
            protobuf_falls_back_to_json_on_406_and_415 {60, default},
            cbor_crud_list_and_watch {60, default},
            cbor_falls_back_to_json_on_406_and_415 {60, default}
        ]);
    };
    (@group Runners, $rt:expr) => {
        $crate::e2e_suite!(@each $rt, runners, RUNNERS, [
            informer_syncs_10000_objects_handlers_see_every_add_lister_agrees {240, default},
            informer_watch_across_drops_and_410s_loses_and_duplicates_nothing {150, bookmarks},
            informer_wait_for_sync_times_out_against_a_silent_server {60, default},
            informer_syncs_on_an_empty_list_then_sees_the_first_add {60, default},
            controller_requeues_failures_with_growing_backoff_then_succeeds {60, default},
            controller_graceful_shutdown_drains_queued_and_running_reconciles {60, default},
            controller_on_an_empty_collection_syncs_and_runs_its_workers {60, default},
            leader_election_hands_over_when_the_leader_releases {60, default}
        ]);
    };
    (@group H2, $rt:expr) => {
        $crate::e2e_suite!(@each $rt, h2, H2, [
            h2_250_watches_spread_over_ceil_250_over_cap_connections {60, default},
            h2_watch_shards_follow_a_lower_server_stream_limit {60, streams30},
            h2_configured_cap_sets_the_shard_count {60, default},
            h2_switched_off_gives_each_watch_an_http1_connection {60, default},
            h2_cancelled_watch_leaves_its_siblings_running {60, default},
            h2_killed_connection_reopens_and_its_watches_resume {60, default}
        ]);
    };
    (@group Proxy, $rt:expr) => {
        $crate::e2e_suite!(@each $rt, proxy, PROXY, [
            proxy_connect_tunnel_carries_list_and_watch {60, default},
            proxy_authentication_basic_from_the_url_userinfo {60, default},
            proxy_502_is_a_clear_error {60, default},
            proxy_407_is_not_retried {60, default},
            proxy_no_proxy_bypasses_the_environment_proxy {60, default},
            proxy_carries_plain_http_with_credentials {60, plain},
            proxy_socks5_list_and_watch_through_the_tunnel {60, default},
            proxy_socks5h_domain_name_with_username_and_password {60, default},
            proxy_socks5_authentication_refused_is_a_clear_error {60, default},
            proxy_socks5_reply_failure_names_the_code {60, default},
            proxy_https_list_and_watch_through_tls_to_the_proxy {60, default},
            proxy_https_untrusted_proxy_certificate_is_a_clear_error {60, default},
            proxy_https_carries_plain_http_inside_tls {60, plain},
            proxy_stalled_connect_ends_in_a_connect_timeout {60, default},
            proxy_stalled_https_handshake_ends_in_a_connect_timeout {60, default}
        ]);
    };
    (@each $rt:expr, $group:ident, $names:ident, [$($name:ident {$secs:expr, $server:ident}),*]) => {
        $(
            #[test]
            fn $name() {
                $crate::scenarios::run(
                    $rt,
                    $crate::scenarios::server(stringify!($server)),
                    $secs,
                    $crate::scenarios::$group::$name,
                );
            }
        )*
        #[allow(dead_code)]
        const $names: &[&str] = &[$(stringify!($name)),*];
    };
    (@names Core) => { CORE };
    (@names Discovery) => { DISCOVERY };
    (@names Runners) => { RUNNERS };
    (@names H2) => { H2 };
    (@names Proxy) => { PROXY };
}

/// The server a scenario starts: `default` (TLS), `plain` (HTTP),
/// `bookmarks` (TLS, a bookmark every 500 ms), or `streams30` (TLS, at most
/// 30 concurrent HTTP/2 streams per connection).
pub fn server(kind: &str) -> ApiServerBuilder {
    let builder = crate::apiserver::ApiServer::builder();
    match kind {
        "plain" => builder.tls(false),
        "bookmarks" => builder.bookmark_interval(Duration::from_millis(500)),
        "streams30" => builder.max_concurrent_streams(30),
        "default" => builder,
        other => panic!("no server kind {other:?}"),
    }
}
