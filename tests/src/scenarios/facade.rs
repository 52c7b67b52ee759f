//! The facade of the runtimes built on windlass-async (windlass-tokio,
//! windlass-smol): their `Api`, `Discovery`, `Informer`, `Controller` and
//! `LeaderElector` are windlass-async's, so the forwarding is written once,
//! here, and each runtime's `tests/e2e.rs` writes only what differs — how to
//! block on a future, sleep, build a client, spawn, join and start an
//! informer.

/// Items of the scenario facade for a runtime built on windlass-async, whose
/// crate is `$krate` (`windlass_tokio`, `windlass_smol`). Invoked inside the
/// runtime's `impl Runtime` (`runtime`), `impl Discovering` (`discovering`)
/// and `impl Runners` (`runners`) blocks, and once at module level
/// (`failure`: the `failure(e: Error) -> Failure` conversion the others use).
/// Every path is spelled out, so the invoking file needs no imports for it.
#[macro_export]
macro_rules! async_facade {
    (failure, $krate:ident) => {
        /// The runtime's error as the scenarios look at it.
        fn failure(e: $krate::Error) -> $crate::scenarios::Failure {
            $crate::scenarios::Failure {
                code: e.api().map(|a| a.code()),
                conflict: e.is_conflict(),
                already_exists: e.is_already_exists(),
                not_found: e.is_not_found(),
                expired: e.is_expired(),
                timeout: match &e {
                    $krate::Error::Timeout { waiting_for, .. } => Some(*waiting_for),
                    _ => None,
                },
                sync_timeout: matches!(e, $krate::Error::SyncTimeout { .. }),
                proxy: e.proxy().cloned(),
                message: e.to_string(),
            }
        }
    };
    (runtime, $krate:ident) => {
        fn default_namespace(client: &$krate::Client) -> String {
            client.default_namespace().to_owned()
        }

        fn namespaced<K>(client: &$krate::Client, namespace: &str) -> $krate::Api<K>
        where
            K: $crate::scenarios::Kind + ::k8s_openapi::Resource<Scope = ::k8s_openapi::NamespaceResourceScope>,
        {
            $krate::Api::namespaced(client.clone(), namespace).unwrap()
        }

        fn cluster<K>(client: &$krate::Client) -> $krate::Api<K>
        where
            K: $crate::scenarios::Kind + ::k8s_openapi::Resource<Scope = ::k8s_openapi::ClusterResourceScope>,
        {
            $krate::Api::cluster(client.clone()).unwrap()
        }

        fn all<K>(client: &$krate::Client) -> $krate::Api<K>
        where
            K: $crate::scenarios::Kind + ::k8s_openapi::Resource,
            K::Scope: ::windlass_proto::resource::TopLevelScope,
        {
            $krate::Api::all(client.clone()).unwrap()
        }

        fn dynamic(
            client: &$krate::Client,
            resource: &::windlass_proto::resource::ApiResource,
            namespace: Option<&str>,
        ) -> $krate::Api<::windlass_proto::dynamic::DynamicObject> {
            $krate::Api::dynamic(client.clone(), resource.clone(), namespace).unwrap()
        }

        async fn create<K: $crate::scenarios::Kind>(api: &$krate::Api<K>, object: &K) -> Result<K, $crate::scenarios::Failure> {
            api.create(&::windlass_proto::request::PostParams::default(), object)
                .await
                .map_err(failure)
        }

        async fn get<K: $crate::scenarios::Kind>(api: &$krate::Api<K>, name: &str) -> Result<K, $crate::scenarios::Failure> {
            api.get(name).await.map_err(failure)
        }

        async fn get_opt<K: $crate::scenarios::Kind>(api: &$krate::Api<K>, name: &str) -> Result<Option<K>, $crate::scenarios::Failure> {
            api.get_opt(name).await.map_err(failure)
        }

        async fn replace<K: $crate::scenarios::Kind>(api: &$krate::Api<K>, name: &str, object: &K) -> Result<K, $crate::scenarios::Failure> {
            api.replace(name, &::windlass_proto::request::PostParams::default(), object)
                .await
                .map_err(failure)
        }

        async fn patch<K: $crate::scenarios::Kind>(api: &$krate::Api<K>, name: &str, patch: &::windlass_proto::request::Patch<::serde_json::Value>) -> Result<K, $crate::scenarios::Failure> {
            api.patch(name, &::windlass_proto::request::PatchParams::default(), patch)
                .await
                .map_err(failure)
        }

        async fn apply<K: $crate::scenarios::Kind>(
            api: &$krate::Api<K>,
            name: &str,
            manager: &str,
            force: bool,
            object: &::serde_json::Value,
        ) -> Result<K, $crate::scenarios::Failure> {
            api.apply(name, manager, force, object)
                .await
                .map_err(failure)
        }

        async fn delete<K: $crate::scenarios::Kind>(api: &$krate::Api<K>, name: &str) -> Result<(), $crate::scenarios::Failure> {
            api.delete(name, &::windlass_proto::request::DeleteParams::default())
                .await
                .map(drop)
                .map_err(failure)
        }

        async fn delete_collection<K: $crate::scenarios::Kind>(api: &$krate::Api<K>, params: &::windlass_proto::params::ListParams) -> Result<(), $crate::scenarios::Failure> {
            api.delete_collection(&::windlass_proto::request::DeleteParams::default(), params)
                .await
                .map(drop)
                .map_err(failure)
        }

        async fn list<K: $crate::scenarios::Kind>(api: &$krate::Api<K>, params: &::windlass_proto::params::ListParams) -> Result<::windlass_proto::list::ObjectList<K>, $crate::scenarios::Failure> {
            api.list(params).await.map_err(failure)
        }

        async fn list_pages<K: $crate::scenarios::Kind>(
            api: &$krate::Api<K>,
            params: &::windlass_proto::params::ListParams,
        ) -> Result<Vec<::windlass_proto::list::ObjectList<K>>, $crate::scenarios::Failure> {
            ::futures_util::TryStreamExt::try_collect::<Vec<_>>(api.list_pages(params)).await.map_err(failure)
        }

        async fn list_all<K: $crate::scenarios::Kind>(api: &$krate::Api<K>, params: &::windlass_proto::params::ListParams) -> Result<Vec<K>, $crate::scenarios::Failure> {
            ::futures_util::TryStreamExt::try_collect::<Vec<_>>(api.list_stream(params)).await.map_err(failure)
        }

        async fn metadata_get<K: $crate::scenarios::Kind>(
            api: &$krate::Api<K>,
            name: &str,
        ) -> Result<::windlass_proto::dynamic::PartialObjectMetadata, $crate::scenarios::Failure> {
            api.metadata().get(name).await.map_err(failure)
        }

        async fn metadata_list<K: $crate::scenarios::Kind>(
            api: &$krate::Api<K>,
            params: &::windlass_proto::params::ListParams,
        ) -> Result<::windlass_proto::list::ObjectList<::windlass_proto::dynamic::PartialObjectMetadata>, $crate::scenarios::Failure> {
            api.metadata().list(params).await.map_err(failure)
        }

        async fn get_status<K: $crate::scenarios::Kind>(api: &$krate::Api<K>, name: &str) -> Result<K, $crate::scenarios::Failure> {
            api.get_status(name).await.map_err(failure)
        }

        async fn replace_status<K: $crate::scenarios::Kind>(api: &$krate::Api<K>, name: &str, object: &K) -> Result<K, $crate::scenarios::Failure> {
            api.replace_status(name, &::windlass_proto::request::PostParams::default(), object)
                .await
                .map_err(failure)
        }

        async fn patch_status<K: $crate::scenarios::Kind>(
            api: &$krate::Api<K>,
            name: &str,
            patch: &::windlass_proto::request::Patch<::serde_json::Value>,
        ) -> Result<K, $crate::scenarios::Failure> {
            api.patch_status(name, &::windlass_proto::request::PatchParams::default(), patch)
                .await
                .map_err(failure)
        }

        async fn get_scale<K: $crate::scenarios::Kind>(api: &$krate::Api<K>, name: &str) -> Result<::k8s_openapi::api::autoscaling::v1::Scale, $crate::scenarios::Failure> {
            api.get_scale(name).await.map_err(failure)
        }

        async fn patch_scale<K: $crate::scenarios::Kind>(
            api: &$krate::Api<K>,
            name: &str,
            patch: &::windlass_proto::request::Patch<::serde_json::Value>,
        ) -> Result<::k8s_openapi::api::autoscaling::v1::Scale, $crate::scenarios::Failure> {
            api.patch_scale(name, &::windlass_proto::request::PatchParams::default(), patch)
                .await
                .map_err(failure)
        }

        async fn watch<K: $crate::scenarios::Kind>(api: &$krate::Api<K>, params: &::windlass_proto::params::WatchParams) -> Result<Self::Watch<K>, $crate::scenarios::Failure> {
            let events = api.watch(params).await.map_err(failure)?;
            Ok(Box::pin(events))
        }

        async fn next_event<K: $crate::scenarios::Kind>(
            watch: &mut Self::Watch<K>,
        ) -> Option<Result<::windlass_proto::watch::WatchEvent<K>, $crate::scenarios::Failure>> {
            ::futures_util::StreamExt::next(watch).await.map(|item| item.map_err(failure))
        }
    };
    (discovering, $krate:ident) => {
        type Discovery = $krate::Discovery;

        async fn discover(client: &$krate::Client) -> Result<$krate::Discovery, $crate::scenarios::Failure> {
            $krate::Discovery::run(client).await.map_err(failure)
        }

        async fn rediscover(discovery: &mut $krate::Discovery) -> Result<(), $crate::scenarios::Failure> {
            discovery.refresh().await.map_err(failure)
        }

        fn discovered(discovery: &$krate::Discovery) -> &::windlass_proto::discovery::Discovery {
            discovery.discovered()
        }

        fn dynamic_by_gvk(
            discovery: &$krate::Discovery,
            gvk: &::windlass_proto::discovery::GroupVersionKind,
            namespace: Option<&str>,
        ) -> Result<$krate::Api<::windlass_proto::dynamic::DynamicObject>, $crate::scenarios::Failure> {
            discovery.dynamic(gvk, namespace).map_err(failure)
        }

        fn dynamic_for_kind(
            discovery: &$krate::Discovery,
            group: &str,
            kind: &str,
            namespace: Option<&str>,
        ) -> Result<$krate::Api<::windlass_proto::dynamic::DynamicObject>, $crate::scenarios::Failure> {
            discovery
                .dynamic_for_kind(group, kind, namespace)
                .map_err(failure)
        }

        fn has_fallen_back(client: &$krate::Client, resource: &::windlass_proto::resource::ApiResource) -> bool {
            client.formats().has_fallen_back(resource)
        }

        fn formats(client: &$krate::Client) -> ::windlass_proto::api::Formats {
            client.formats().clone()
        }

        async fn send_get_for_bytes(
            client: &$krate::Client,
            request: http::Request<bytes::Bytes>,
            resource: &'static str,
        ) -> Result<(http::response::Parts, bytes::Bytes), $crate::scenarios::Failure> {
            let call = $krate::Call {
                verb: "get",
                kind: ::windlass_proto::retry::RequestKind::Get,
                resource,
            };
            client.send_for_bytes(request, call).await.map_err(failure)
        }
    };
    (runners, $krate:ident) => {
        fn informer<K: $crate::scenarios::Kind + ::windlass_proto::object::Object>(api: &$krate::Api<K>) -> $krate::Informer<K> {
            $krate::Informer::new(api, ::windlass_proto::informer::InformerConfig::default())
        }

        fn add_handler<K: $crate::scenarios::Kind + ::windlass_proto::object::Object>(
            informer: &$krate::Informer<K>,
            handler: impl FnMut(::windlass_proto::informer::Notification<K>) + Send + 'static,
        ) {
            informer.add_handler(None, handler).unwrap();
        }

        async fn wait_for_sync<K: $crate::scenarios::Kind + ::windlass_proto::object::Object>(
            informer: &$krate::Informer<K>,
            timeout: ::std::time::Duration,
        ) -> Result<(), $crate::scenarios::Failure> {
            informer.wait_for_sync(timeout).await.map_err(failure)
        }

        fn stop<K: $crate::scenarios::Kind + ::windlass_proto::object::Object>(informer: &$krate::Informer<K>) {
            informer.stop();
        }

        fn is_running<K: $crate::scenarios::Kind + ::windlass_proto::object::Object>(informer: &$krate::Informer<K>) -> bool {
            informer.is_running()
        }

        fn lister_list<K: $crate::scenarios::Kind + ::windlass_proto::object::Object>(informer: &$krate::Informer<K>) -> Vec<::std::sync::Arc<K>> {
            informer.lister().list()
        }

        fn lister_list_namespace<K: $crate::scenarios::Kind + ::windlass_proto::object::Object>(
            informer: &$krate::Informer<K>,
            namespace: &str,
        ) -> Vec<::std::sync::Arc<K>> {
            informer.lister().list_namespace(namespace)
        }

        fn lister_get<K: $crate::scenarios::Kind + ::windlass_proto::object::Object>(informer: &$krate::Informer<K>, key: &::windlass_proto::object::ObjectKey) -> Option<::std::sync::Arc<K>> {
            informer.lister().get(key)
        }

        fn controller<K: $crate::scenarios::Kind + ::windlass_proto::object::Object, L: ::windlass_proto::ratelimit::RateLimiter<::windlass_proto::object::ObjectKey> + Send + 'static>(
            informer: $krate::Informer<K>,
            workers: usize,
            limiter: Option<L>,
        ) -> $krate::Controller<K> {
            let controller = $krate::Controller::new(informer).workers(workers);
            match limiter {
                Some(limiter) => controller.rate_limiter(limiter),
                None => controller,
            }
        }

        fn controller_handle<K: $crate::scenarios::Kind + ::windlass_proto::object::Object>(controller: &$krate::Controller<K>) -> $krate::ControllerHandle {
            controller.handle()
        }

        async fn run_controller<K: $crate::scenarios::Kind + ::windlass_proto::object::Object>(
            controller: $krate::Controller<K>,
            reconcile: impl Fn(::windlass_proto::object::ObjectKey) -> $crate::scenarios::BoxFuture<Result<::windlass_proto::controller::Outcome, String>> + Send + Sync + 'static,
        ) -> Result<::windlass_proto::controller::Counters, $crate::scenarios::Failure> {
            controller.run(reconcile).await.map_err(failure)
        }

        fn shut_down(handle: &$krate::ControllerHandle) {
            handle.shut_down();
        }

        fn enqueue(handle: &$krate::ControllerHandle, key: ::windlass_proto::object::ObjectKey) {
            handle.enqueue(key);
        }

        fn counters(handle: &$krate::ControllerHandle) -> ::windlass_proto::controller::Counters {
            handle.counters()
        }

        fn campaign(
            &self,
            client: $krate::Client,
            config: ::windlass_proto::election::Config,
            started: Box<dyn FnOnce() + Send>,
            stopped: Box<dyn FnOnce() + Send>,
        ) -> ($krate::ElectorHandle, Self::Task<Result<(), $crate::scenarios::Failure>>) {
            let elector = $krate::LeaderElector::new(client, config).unwrap();
            let handle = elector.handle();
            let run = elector.run(move |leadership| async move {
                started();
                leadership.lost().await;
                stopped();
            });
            let task = Runners::spawn(self, async move { run.await.map_err(failure) });
            (handle, task)
        }

        fn is_leader(handle: &$krate::ElectorHandle) -> bool {
            handle.is_leader()
        }

        fn leader(handle: &$krate::ElectorHandle) -> Option<String> {
            handle.leader()
        }

        fn stop_campaign(handle: &$krate::ElectorHandle) {
            handle.stop();
        }
    };
}
