//! windlass-smol's runners end to end — informer, controller, leader
//! election — against windlass-apiserver over TLS with client-certificate
//! auth (the server's kubeconfig), each scenario on smol's executor and on
//! async-std's. Ported from windlass-tokio's `e2e_runners.rs`; every wait is
//! bounded.

mod harness;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use harness::{Ctx, config_map, namespace, sleep, within};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::ConfigMap;
use serde_json::json;
use windlass_proto::controller::Outcome;
use windlass_proto::election::Config as ElectionConfig;
use windlass_proto::informer::{InformerConfig, Notification};
use windlass_proto::object::{Object, ObjectKey};
use windlass_proto::params::ListParams;
use windlass_proto::ratelimit::ItemExponentialFailure;
use windlass_proto::request::{DeleteParams, Patch, PatchParams, PostParams};
use windlass_smol::{Api, Client, Controller, ElectorHandle, Informer, JoinHandle, LeaderElector};
use windlass_testkit::apiserver::{ApiServer, RequestRecord};
use windlass_testkit::model::Gvr;

/// `key → resourceVersion` of every object the server holds in `maps`' namespace.
async fn server_state(maps: &Api<ConfigMap>) -> BTreeMap<String, String> {
    maps.list(&ListParams::default())
        .await
        .unwrap()
        .items
        .iter()
        .map(|m| {
            (
                m.key().to_string(),
                m.resource_version().unwrap().to_owned(),
            )
        })
        .collect()
}

fn lister_state(informer: &Informer<ConfigMap>) -> BTreeMap<String, String> {
    informer
        .lister()
        .list()
        .iter()
        .map(|m| {
            (
                m.key().to_string(),
                m.resource_version().unwrap().to_owned(),
            )
        })
        .collect()
}

on_both_executors!(
    e2e_smol_informer_syncs_10000_objects_handlers_see_every_add_lister_agrees,
    e2e_async_std_informer_syncs_10000_objects_handlers_see_every_add_lister_agrees,
    informer_sync_10000,
    ApiServer::builder(),
    240
);

async fn informer_sync_10000(ctx: Ctx) {
    const COUNT: usize = 10_000;
    let client = ctx.client();
    namespace(&client, "bulk").await;
    let created = Instant::now();
    ctx.server.with_model(|model| {
        let gvr = Gvr::new("", "v1", "configmaps");
        for i in 0..COUNT {
            let object = json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": format!("cm-{i:05}")}, "data": {"i": i.to_string()}});
            model
                .create(&gvr, Some("bulk"), object, Instant::now())
                .unwrap();
        }
    });
    let created = created.elapsed();
    let maps: Api<ConfigMap> = Api::namespaced(client, "bulk").unwrap();
    let informer = Informer::new(&maps, InformerConfig::default());
    let adds = Arc::new(Mutex::new(Vec::new()));
    let seen = adds.clone();
    informer
        .add_handler(None, move |n| {
            if let Notification::Add {
                object,
                is_in_initial_list,
            } = n
            {
                seen.lock()
                    .unwrap()
                    .push((object.key().to_string(), is_in_initial_list));
            }
        })
        .unwrap();
    let started = Instant::now();
    let running = informer.start();
    informer
        .wait_for_sync(Duration::from_secs(120))
        .await
        .unwrap();
    let synced = started.elapsed();
    within(60, async {
        while adds.lock().unwrap().len() < COUNT {
            sleep(20).await;
        }
    })
    .await;
    let delivered = started.elapsed();
    let adds = adds.lock().unwrap().clone();
    assert_eq!(adds.len(), COUNT, "one add per object, no more");
    assert!(adds.iter().all(|(_, initial)| *initial));
    let added: BTreeSet<_> = adds.iter().map(|(k, _)| k.clone()).collect();
    assert_eq!(added.len(), COUNT, "no object added twice");
    let server_state = within(60, server_state(&maps)).await;
    assert_eq!(server_state.len(), COUNT);
    assert_eq!(lister_state(&informer), server_state);
    assert_eq!(
        added,
        server_state.keys().cloned().collect(),
        "the handler saw exactly the server's objects"
    );
    let lister = informer.lister();
    assert_eq!(lister.list_namespace("bulk").len(), COUNT);
    let one = lister
        .get(&ObjectKey::namespaced("bulk", "cm-04242"))
        .unwrap();
    assert_eq!(one.data.as_ref().unwrap()["i"], "4242");
    println!(
        "informer: {COUNT} objects created in the model in {created:.2?}, synced in {synced:.2?}, \
         every add delivered to the handler in {delivered:.2?}"
    );
    informer.stop();
    within(10, running).await.unwrap().unwrap();
}

/// The handler's view, rebuilt from notifications alone, with every
/// anomaly (an add of a known key, an update or delete of an unknown one).
#[derive(Default)]
struct Replica {
    objects: BTreeMap<String, String>,
    anomalies: Vec<String>,
}

impl Replica {
    fn apply(&mut self, n: Notification<ConfigMap>) {
        match n {
            Notification::Add { object, .. } => {
                let key = object.key().to_string();
                let rv = object.resource_version().unwrap().to_owned();
                if self.objects.insert(key.clone(), rv).is_some() {
                    self.anomalies.push(format!("duplicate add {key}"));
                }
            }
            Notification::Update { new, .. } | Notification::Resync(new) => {
                let key = new.key().to_string();
                let rv = new.resource_version().unwrap().to_owned();
                if self.objects.insert(key.clone(), rv).is_none() {
                    self.anomalies.push(format!("update of unknown {key}"));
                }
            }
            Notification::Delete(deleted) => {
                let key = deleted.key().to_string();
                if self.objects.remove(&key).is_none() {
                    self.anomalies.push(format!("delete of unknown {key}"));
                }
            }
        }
    }
}

/// Every request the server answered: (method, path, status).
type RequestLog = Arc<Mutex<Vec<(String, String, u16)>>>;

fn logging_server(log: RequestLog) -> windlass_testkit::apiserver::ApiServerBuilder {
    ApiServer::builder()
        .bookmark_interval(Duration::from_millis(500))
        .log_requests(move |r: &RequestRecord| {
            log.lock()
                .unwrap()
                .push((r.method.to_string(), r.path.clone(), r.status.as_u16()))
        })
}

#[test]
fn e2e_smol_informer_watch_across_drops_and_410s_loses_and_duplicates_nothing() {
    let log = RequestLog::default();
    let server = logging_server(log.clone());
    harness::run(harness::Executor::Smol, server, 150, move |ctx| {
        watch_across_drops_and_410s(ctx, log)
    });
}

#[test]
fn e2e_async_std_informer_watch_across_drops_and_410s_loses_and_duplicates_nothing() {
    let log = RequestLog::default();
    let server = logging_server(log.clone());
    harness::run(harness::Executor::AsyncStd, server, 150, move |ctx| {
        watch_across_drops_and_410s(ctx, log)
    });
}

async fn watch_across_drops_and_410s(ctx: Ctx, requests: RequestLog) {
    let client = ctx.client();
    let faults = ctx.server.faults();
    namespace(&client, "churn").await;
    let maps: Api<ConfigMap> = Api::namespaced(client, "churn").unwrap();
    for i in 0..20 {
        maps.create(&PostParams::default(), &config_map(&format!("cm-{i}"), "0"))
            .await
            .unwrap();
    }
    let informer = Informer::new(&maps, InformerConfig::default());
    let replica = Arc::new(Mutex::new(Replica::default()));
    let applied = replica.clone();
    informer
        .add_handler(None, move |n| applied.lock().unwrap().apply(n))
        .unwrap();
    let running = informer.start();
    informer
        .wait_for_sync(Duration::from_secs(30))
        .await
        .unwrap();
    within(120, async {
        for round in 1..=6u32 {
            match round % 3 {
                0 => faults.close_watches_after(1, 100),
                1 => faults.compact(),
                _ => faults.restart(),
            }
            for i in 0..20 {
                let name = format!("cm-{i}");
                match (i + round) % 4 {
                    0 => {
                        let _ = maps.delete(&name, &DeleteParams::default()).await;
                    }
                    1 => {
                        if maps.get_opt(&name).await.unwrap().is_none() {
                            maps.create(&PostParams::default(), &config_map(&name, "new"))
                                .await
                                .unwrap();
                        }
                    }
                    _ => {
                        let patch = Patch::Merge(json!({"data": {"v": round.to_string()}}));
                        let _ = maps.patch(&name, &PatchParams::default(), &patch).await;
                    }
                }
            }
            if round % 3 == 1 {
                // After a compaction any watch from an older revision gets 410.
                faults.compact();
            }
            sleep(200).await;
        }
        let want = server_state(&maps).await;
        loop {
            let replica_state = replica.lock().unwrap().objects.clone();
            if lister_state(&informer) == want && replica_state == want {
                break;
            }
            sleep(50).await;
        }
    })
    .await;
    let anomalies = replica.lock().unwrap().anomalies.clone();
    assert!(anomalies.is_empty(), "{anomalies:?}");
    let requests = requests.lock().unwrap().clone();
    let lists = requests
        .iter()
        .filter(|(m, p, _)| m == "GET" && p.contains("/configmaps") && !p.contains("watch"))
        .count();
    let watches = requests
        .iter()
        .filter(|(_, p, _)| p.contains("/configmaps") && p.contains("watch"))
        .count();
    let gone = requests.iter().filter(|(_, _, s)| *s == 410).count();
    println!("informer under faults: {lists} lists, {watches} watches, {gone} answered 410");
    assert!(lists >= 2, "the faults forced a relist: {requests:?}");
    assert!(watches >= 4, "the informer re-watched: {requests:?}");
    informer.stop();
    within(10, running).await.unwrap().unwrap();
}

on_both_executors!(
    e2e_smol_controller_requeues_failures_with_growing_backoff_then_succeeds,
    e2e_async_std_controller_requeues_failures_with_growing_backoff_then_succeeds,
    controller_requeue
);

async fn controller_requeue(ctx: Ctx) {
    const FAILURES: usize = 3;
    let client = ctx.client();
    namespace(&client, "requeue").await;
    let maps: Api<ConfigMap> = Api::namespaced(client, "requeue").unwrap();
    maps.create(&PostParams::default(), &config_map("flaky", "x"))
        .await
        .unwrap();
    let informer = Informer::new(&maps, InformerConfig::default());
    let controller =
        Controller::new(informer)
            .workers(2)
            .rate_limiter(ItemExponentialFailure::new(
                Duration::from_millis(100),
                Duration::from_secs(10),
            ));
    let handle = controller.handle();
    let attempts = Arc::new(Mutex::new(Vec::new()));
    let log = attempts.clone();
    let done = handle.clone();
    let counters = within(60, async move {
        controller
            .run(move |key| {
                let log = log.clone();
                let done = done.clone();
                async move {
                    let attempt = {
                        let mut log = log.lock().unwrap();
                        log.push(Instant::now());
                        log.len()
                    };
                    if attempt <= FAILURES {
                        return Err(format!("{key}: attempt {attempt} fails"));
                    }
                    done.shut_down();
                    Ok(Outcome::Success)
                }
            })
            .await
            .unwrap()
    })
    .await;
    let attempts = attempts.lock().unwrap().clone();
    assert_eq!(attempts.len(), FAILURES + 1);
    let gaps: Vec<Duration> = attempts.windows(2).map(|w| w[1] - w[0]).collect();
    println!("controller: retry gaps {gaps:?}, counters {counters:?}");
    for (gap, want) in gaps.iter().zip([100u64, 200, 400]) {
        assert!(
            *gap >= Duration::from_millis(want - 5),
            "gap {gap:?} shorter than the limiter's {want} ms: {gaps:?}"
        );
    }
    assert!(gaps.windows(2).all(|w| w[1] > w[0]), "growing: {gaps:?}");
    assert_eq!(counters.retries, FAILURES as u64);
    assert_eq!(counters.reconciles, FAILURES as u64 + 1);
    assert_eq!(counters.running, 0);
}

on_both_executors!(
    e2e_smol_controller_graceful_shutdown_drains_queued_and_running_reconciles,
    e2e_async_std_controller_graceful_shutdown_drains_queued_and_running_reconciles,
    controller_drain
);

async fn controller_drain(ctx: Ctx) {
    const OBJECTS: usize = 20;
    let client = ctx.client();
    namespace(&client, "drain").await;
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), "drain").unwrap();
    for i in 0..OBJECTS {
        maps.create(
            &PostParams::default(),
            &config_map(&format!("cm-{i:02}"), "x"),
        )
        .await
        .unwrap();
    }
    let informer = Informer::new(&maps, InformerConfig::default());
    let controller = Controller::new(informer.clone()).workers(3);
    let handle = controller.handle();
    let started = Arc::new(AtomicUsize::new(0));
    let finished = Arc::new(Mutex::new(Vec::new()));
    let (s, f, h) = (started.clone(), finished.clone(), handle.clone());
    let run = client
        .spawner()
        .spawn_with_handle(controller.run(move |key| {
            let (s, f, h) = (s.clone(), f.clone(), h.clone());
            async move {
                if s.fetch_add(1, Ordering::SeqCst) == 0 {
                    h.shut_down(); // at the first reconcile: everything queued must still run
                }
                sleep(30).await;
                f.lock().unwrap().push(key.to_string());
                Ok::<_, String>(Outcome::Success)
            }
        }));
    let counters = within(60, run).await.unwrap().unwrap();
    let mut finished = finished.lock().unwrap().clone();
    finished.sort();
    let want: Vec<String> = (0..OBJECTS).map(|i| format!("drain/cm-{i:02}")).collect();
    assert_eq!(finished, want, "every queued key was reconciled once");
    assert_eq!(started.load(Ordering::SeqCst), OBJECTS);
    assert_eq!(counters.reconciles, OBJECTS as u64);
    assert_eq!(counters.running, 0);
    assert!(
        !informer.is_running(),
        "run stopped the informer it started"
    );
    handle.enqueue(ObjectKey::namespaced("drain", "late"));
    assert_eq!(handle.counters().depth, 0, "no key is taken after shutdown");
}

fn election(identity: &str) -> ElectionConfig {
    ElectionConfig {
        lease_duration: Duration::from_secs(2),
        renew_deadline: Duration::from_millis(1500),
        retry_period: Duration::from_millis(300),
        ..ElectionConfig::new(identity, "default", "e2e-lock")
    }
}

/// Who started leading, and when.
type Started = smol::channel::Sender<(String, Instant)>;

/// Runs a candidate whose work counts itself among the `leaders` while it
/// leads (and records the largest count ever seen in `most`).
fn candidate(
    client: Client,
    identity: &str,
    leaders: Arc<AtomicUsize>,
    most: Arc<AtomicUsize>,
    started: Started,
) -> (ElectorHandle, JoinHandle<Result<(), windlass_smol::Error>>) {
    let spawner = client.spawner().clone();
    let elector = LeaderElector::new(client, election(identity)).unwrap();
    let handle = elector.handle();
    let name = identity.to_owned();
    let run = spawner.spawn_with_handle(elector.run(move |leadership| async move {
        let now = leaders.fetch_add(1, Ordering::SeqCst) + 1;
        most.fetch_max(now, Ordering::SeqCst);
        let _ = started.send((name, Instant::now())).await;
        leadership.lost().await;
        leaders.fetch_sub(1, Ordering::SeqCst);
    }));
    (handle, run)
}

on_both_executors!(
    e2e_smol_leader_election_hands_over_when_the_leader_releases,
    e2e_async_std_leader_election_hands_over_when_the_leader_releases,
    election_hand_over
);

async fn election_hand_over(ctx: Ctx) {
    let (leaders, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (tx, rx) = smol::channel::unbounded();
    let (a, run_a) = candidate(ctx.client(), "a", leaders.clone(), most.clone(), tx.clone());
    let (first, _) = within(10, rx.recv()).await.unwrap();
    assert_eq!(first, "a");
    assert!(a.is_leader());
    let (b, run_b) = candidate(ctx.client(), "b", leaders.clone(), most.clone(), tx);
    sleep(800).await;
    assert!(!b.is_leader(), "b waits while a renews");
    assert_eq!(b.leader().as_deref(), Some("a"), "b saw a hold the lease");
    let released = Instant::now();
    a.stop();
    within(10, run_a).await.unwrap().unwrap();
    let (second, at) = within(10, rx.recv()).await.unwrap();
    assert_eq!(second, "b");
    let handover = at - released;
    println!("leader election: released hand-over in {handover:?}");
    assert!(
        handover < Duration::from_secs(2),
        "b took the released lease before it would have expired: {handover:?}"
    );
    assert_eq!(most.load(Ordering::SeqCst), 1, "never two leaders at once");
    b.stop();
    within(10, run_b).await.unwrap().unwrap();
    let leases: Api<Lease> = Api::namespaced(ctx.client(), "default").unwrap();
    let lease = leases.get("e2e-lock").await.unwrap().spec.unwrap();
    assert_eq!(lease.holder_identity.as_deref(), Some(""), "b released it");
    assert_eq!(lease.lease_transitions, Some(1));
}

on_both_executors!(
    e2e_smol_leader_election_takes_over_after_the_leader_dies,
    e2e_async_std_leader_election_takes_over_after_the_leader_dies,
    election_take_over
);

async fn election_take_over(ctx: Ctx) {
    let (leaders, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (tx, rx) = smol::channel::unbounded();
    let (a, run_a) = candidate(ctx.client(), "a", leaders.clone(), most.clone(), tx.clone());
    within(10, rx.recv()).await.unwrap();
    assert!(a.is_leader());
    let (_b, run_b) = candidate(ctx.client(), "b", leaders.clone(), most.clone(), tx);
    sleep(500).await;
    run_a.abort(); // a dies: no release, no more renewals
    let died = Instant::now();
    let (second, at) = within(15, rx.recv()).await.unwrap();
    assert_eq!(second, "b");
    let takeover = at - died;
    println!("leader election: take-over after the leader died in {takeover:?}");
    assert!(
        takeover >= Duration::from_millis(1500),
        "b waited for a's lease to expire by its own clock: {takeover:?}"
    );
    assert!(run_a.await.is_err(), "a was aborted");
    run_b.abort();
}

on_both_executors!(
    e2e_smol_informer_wait_for_sync_times_out_against_a_silent_server,
    e2e_async_std_informer_wait_for_sync_times_out_against_a_silent_server,
    wait_for_sync_timeout
);

/// A server that accepts connections (the kernel's backlog does) and never
/// answers: the informer's list waits, its sync does not come.
async fn wait_for_sync_timeout(ctx: Ctx) {
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap();
    let client = Client::new(format!("http://{addr}"), None, ctx.spawner.clone()).unwrap();
    let maps: Api<ConfigMap> = Api::namespaced(client, "default").unwrap();
    let informer = Informer::new(&maps, InformerConfig::default());
    let running = informer.start();
    let started = Instant::now();
    let error = within(10, informer.wait_for_sync(Duration::from_millis(300)))
        .await
        .unwrap_err();
    assert!(
        matches!(error, windlass_smol::Error::SyncTimeout { .. }),
        "{error}"
    );
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert!(!informer.has_synced());
    informer.stop();
    within(10, running).await.unwrap().unwrap();
    drop(silent);
}
