//! The runner scenarios ([`Group::Runners`](super::Group::Runners)):
//! informer sync of 10,000 objects, an informer across cut watches, 410s
//! and restarts, a sync timeout against a silent server, controller requeue
//! with backoff and graceful drain, leader-election hand-over.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::ConfigMap;
use serde_json::json;
use windlass_proto::controller::Outcome;
use windlass_proto::election::Config as ElectionConfig;
use windlass_proto::informer::Notification;
use windlass_proto::object::{Object, ObjectKey};
use windlass_proto::params::ListParams;
use windlass_proto::ratelimit::ItemExponentialFailure;
use windlass_proto::request::Patch;

use super::core::{config_map, namespace};
use super::{ClientOptions, Ctx, Runners, Runtime, silent_server};
use crate::model::Gvr;

/// `key → resourceVersion` of every object the server holds in `maps`' namespace.
async fn server_state<R: Runtime>(maps: &R::Api<ConfigMap>) -> BTreeMap<String, String> {
    R::list(maps, &ListParams::default())
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

fn lister_state<R: Runners>(informer: &R::Informer<ConfigMap>) -> BTreeMap<String, String> {
    R::lister_list(informer)
        .iter()
        .map(|m| {
            (
                m.key().to_string(),
                m.resource_version().unwrap().to_owned(),
            )
        })
        .collect()
}

/// 10,000 ConfigMaps put straight into the model: the informer syncs, its
/// handler sees one initial-list add per object, its lister equals the
/// server's list.
pub async fn informer_syncs_10000_objects_handlers_see_every_add_lister_agrees<R: Runners>(
    ctx: Ctx<R>,
) {
    const COUNT: usize = 10_000;
    let client = ctx.client();
    namespace::<R>(&client, "bulk").await;
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
    let maps = R::namespaced::<ConfigMap>(&client, "bulk");
    let informer = R::informer(&maps);
    let adds = Arc::new(Mutex::new(Vec::new()));
    let seen = adds.clone();
    R::add_handler(&informer, move |n| {
        if let Notification::Add {
            object,
            is_in_initial_list,
        } = n
        {
            seen.lock()
                .unwrap()
                .push((object.key().to_string(), is_in_initial_list));
        }
    });
    let started = Instant::now();
    let running = ctx.rt.start(&informer);
    R::wait_for_sync(&informer, Duration::from_secs(120))
        .await
        .unwrap();
    let synced = started.elapsed();
    while adds.lock().unwrap().len() < COUNT {
        R::sleep(Duration::from_millis(20)).await;
    }
    let delivered = started.elapsed();
    let adds = adds.lock().unwrap().clone();
    assert_eq!(adds.len(), COUNT, "one add per object, no more");
    assert!(adds.iter().all(|(_, initial)| *initial));
    let added: BTreeSet<_> = adds.iter().map(|(k, _)| k.clone()).collect();
    assert_eq!(added.len(), COUNT, "no object added twice");
    let server_state = server_state::<R>(&maps).await;
    assert_eq!(server_state.len(), COUNT);
    assert_eq!(lister_state::<R>(&informer), server_state);
    assert_eq!(
        added,
        server_state.keys().cloned().collect(),
        "the handler saw exactly the server's objects"
    );
    assert_eq!(R::lister_list_namespace(&informer, "bulk").len(), COUNT);
    let one = R::lister_get(&informer, &ObjectKey::namespaced("bulk", "cm-04242")).unwrap();
    assert_eq!(one.data.as_ref().unwrap()["i"], "4242");
    println!(
        "informer ({}): {COUNT} objects created in the model in {created:.2?}, synced in {synced:.2?}, \
         every add delivered to the handler in {delivered:.2?}",
        R::NAME
    );
    R::stop(&informer);
    R::join(running).await.unwrap();
    assert!(!R::is_running(&informer));
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

/// Six rounds of writes under cut watches, compactions (410 on the next
/// watch) and server restarts: the lister and a replica rebuilt from the
/// handler's notifications end equal to the server, with no duplicate add
/// and no update or delete of an unknown key; the faults forced relists.
pub async fn informer_watch_across_drops_and_410s_loses_and_duplicates_nothing<R: Runners>(
    ctx: Ctx<R>,
) {
    let client = ctx.client();
    let faults = ctx.server.faults();
    namespace::<R>(&client, "churn").await;
    let maps = R::namespaced::<ConfigMap>(&client, "churn");
    for i in 0..20 {
        R::create(&maps, &config_map(&format!("cm-{i}"), &[("v", "0")]))
            .await
            .unwrap();
    }
    let informer = R::informer(&maps);
    let replica = Arc::new(Mutex::new(Replica::default()));
    let applied = replica.clone();
    R::add_handler(&informer, move |n| applied.lock().unwrap().apply(n));
    let running = ctx.rt.start(&informer);
    R::wait_for_sync(&informer, Duration::from_secs(30))
        .await
        .unwrap();
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
                    let _ = R::delete(&maps, &name).await;
                }
                1 => {
                    if R::get_opt(&maps, &name).await.unwrap().is_none() {
                        R::create(&maps, &config_map(&name, &[("v", "new")]))
                            .await
                            .unwrap();
                    }
                }
                _ => {
                    let patch = Patch::Merge(json!({"data": {"v": round.to_string()}}));
                    let _ = R::patch(&maps, &name, &patch).await;
                }
            }
        }
        if round % 3 == 1 {
            // After a compaction any watch from an older revision gets 410.
            faults.compact();
        }
        R::sleep(Duration::from_millis(200)).await;
    }
    let want = server_state::<R>(&maps).await;
    loop {
        let replica_state = replica.lock().unwrap().objects.clone();
        if lister_state::<R>(&informer) == want && replica_state == want {
            break;
        }
        R::sleep(Duration::from_millis(50)).await;
    }
    let anomalies = replica.lock().unwrap().anomalies.clone();
    assert!(anomalies.is_empty(), "{anomalies:?}");
    R::stop(&informer);
    R::join(running).await.unwrap();
    let requests = ctx.requests.lock().unwrap().clone();
    let on_maps = |r: &&crate::apiserver::RequestRecord| r.path.contains("/configmaps");
    let lists = requests
        .iter()
        .filter(on_maps)
        .filter(|r| r.method == http::Method::GET && !r.path.contains("watch"))
        .count();
    let watches = requests
        .iter()
        .filter(on_maps)
        .filter(|r| r.path.contains("watch"))
        .count();
    let gone = requests.iter().filter(|r| r.status == 410).count();
    println!(
        "informer under faults ({}): {lists} lists, {watches} watches, {gone} answered 410",
        R::NAME
    );
    assert!(lists >= 2, "the faults forced a relist: {lists} lists");
    assert!(watches >= 4, "the informer re-watched: {watches} watches");
}

/// A server that accepts and never answers: `wait_for_sync` gives up with a
/// sync timeout, and stop ends the informer still waiting for its list.
pub async fn informer_wait_for_sync_times_out_against_a_silent_server<R: Runners>(ctx: Ctx<R>) {
    let addr = silent_server();
    let client = ctx
        .rt
        .client(ClientOptions::url(format!("http://{addr}"), None));
    let maps = R::namespaced::<ConfigMap>(&client, "default");
    let informer = R::informer(&maps);
    let running = ctx.rt.start(&informer);
    let started = Instant::now();
    let error = R::wait_for_sync(&informer, Duration::from_millis(300))
        .await
        .unwrap_err();
    assert!(error.sync_timeout, "{error}");
    assert!(started.elapsed() < Duration::from_secs(5));
    // Stop interrupts the list still waiting for its head; the loop ends.
    R::stop(&informer);
    R::join(running).await.unwrap();
}

/// An informer over an empty collection syncs at once (an empty first
/// list is a complete list), its lister is empty, and the first object
/// created afterwards reaches its handler as a live add.
pub async fn informer_syncs_on_an_empty_list_then_sees_the_first_add<R: Runners>(ctx: Ctx<R>) {
    let client = ctx.client();
    namespace::<R>(&client, "empty").await;
    let maps = R::namespaced::<ConfigMap>(&client, "empty");
    let informer = R::informer(&maps);
    let adds = Arc::new(Mutex::new(Vec::new()));
    let seen = adds.clone();
    R::add_handler(&informer, move |n| {
        if let Notification::Add {
            object,
            is_in_initial_list,
        } = n
        {
            seen.lock()
                .unwrap()
                .push((object.key().to_string(), is_in_initial_list));
        }
    });
    let running = ctx.rt.start(&informer);
    let started = Instant::now();
    R::wait_for_sync(&informer, Duration::from_secs(10))
        .await
        .expect("an empty list is a complete list: the informer syncs");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "synced only after {:?}",
        started.elapsed()
    );
    assert!(R::lister_list(&informer).is_empty());
    assert!(adds.lock().unwrap().is_empty());
    R::create(&maps, &config_map("first", &[("v", "1")]))
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while adds.lock().unwrap().is_empty() {
        assert!(Instant::now() < deadline, "the first add never arrived");
        R::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        adds.lock().unwrap().as_slice(),
        [("empty/first".to_owned(), false)]
    );
    assert!(R::lister_get(&informer, &ObjectKey::namespaced("empty", "first")).is_some());
    R::stop(&informer);
    R::join(running).await.unwrap();
}

/// A reconcile failing three times is retried after 100, 200, 400 ms (the
/// limiter's growing backoff), then succeeds; the counters agree.
pub async fn controller_requeues_failures_with_growing_backoff_then_succeeds<R: Runners>(
    ctx: Ctx<R>,
) {
    const FAILURES: usize = 3;
    let client = ctx.client();
    namespace::<R>(&client, "requeue").await;
    let maps = R::namespaced::<ConfigMap>(&client, "requeue");
    R::create(&maps, &config_map("flaky", &[("v", "x")]))
        .await
        .unwrap();
    let informer = R::informer(&maps);
    let limiter = ItemExponentialFailure::new(Duration::from_millis(100), Duration::from_secs(10));
    let controller = R::controller(informer, 2, Some(limiter));
    let done = R::controller_handle(&controller);
    let attempts = Arc::new(Mutex::new(Vec::new()));
    let log = attempts.clone();
    let counters = R::run_controller(controller, move |key| {
        let attempt = {
            let mut log = log.lock().unwrap();
            log.push(Instant::now());
            log.len()
        };
        let done = done.clone();
        Box::pin(async move {
            if attempt <= FAILURES {
                return Err(format!("{key}: attempt {attempt} fails"));
            }
            R::shut_down(&done);
            Ok(Outcome::Success)
        })
    })
    .await
    .unwrap();
    let attempts = attempts.lock().unwrap().clone();
    assert_eq!(attempts.len(), FAILURES + 1);
    let gaps: Vec<Duration> = attempts.windows(2).map(|w| w[1] - w[0]).collect();
    println!(
        "controller ({}): retry gaps {gaps:?}, counters {counters:?}",
        R::NAME
    );
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

/// Shut down at the first reconcile: every queued key is still reconciled
/// once, running reconciles finish, the informer the controller started
/// stops, and no key is taken after.
pub async fn controller_graceful_shutdown_drains_queued_and_running_reconciles<R: Runners>(
    ctx: Ctx<R>,
) {
    const OBJECTS: usize = 20;
    let client = ctx.client();
    namespace::<R>(&client, "drain").await;
    let maps = R::namespaced::<ConfigMap>(&client, "drain");
    for i in 0..OBJECTS {
        R::create(&maps, &config_map(&format!("cm-{i:02}"), &[]))
            .await
            .unwrap();
    }
    let informer = R::informer(&maps);
    let controller =
        R::controller::<_, ItemExponentialFailure<ObjectKey>>(informer.clone(), 3, None);
    let handle = R::controller_handle(&controller);
    let started = Arc::new(AtomicUsize::new(0));
    let finished = Arc::new(Mutex::new(Vec::new()));
    let (s, f, h) = (started.clone(), finished.clone(), handle.clone());
    let counters = R::run_controller(controller, move |key| {
        if s.fetch_add(1, Ordering::SeqCst) == 0 {
            R::shut_down(&h); // at the first reconcile: everything queued must still run
        }
        let f = f.clone();
        Box::pin(async move {
            R::sleep(Duration::from_millis(30)).await;
            f.lock().unwrap().push(key.to_string());
            Ok(Outcome::Success)
        })
    })
    .await
    .unwrap();
    let mut finished = finished.lock().unwrap().clone();
    finished.sort();
    let want: Vec<String> = (0..OBJECTS).map(|i| format!("drain/cm-{i:02}")).collect();
    assert_eq!(finished, want, "every queued key was reconciled once");
    assert_eq!(started.load(Ordering::SeqCst), OBJECTS);
    assert_eq!(counters.reconciles, OBJECTS as u64);
    assert_eq!(counters.running, 0);
    assert!(
        !R::is_running(&informer),
        "run stopped the informer it started"
    );
    R::enqueue(&handle, ObjectKey::namespaced("drain", "late"));
    assert_eq!(
        R::counters(&handle).depth,
        0,
        "no key is taken after shutdown"
    );
}

/// A controller over an empty collection gets past its wait for sync (an
/// empty first list is a complete list: nothing to hand its workers) and
/// its workers take a key enqueued afterwards by hand. No object ever
/// exists, so no notification can wake whatever waits for the sync.
pub async fn controller_on_an_empty_collection_syncs_and_runs_its_workers<R: Runners>(ctx: Ctx<R>) {
    let client = ctx.client();
    namespace::<R>(&client, "quiet").await;
    let maps = R::namespaced::<ConfigMap>(&client, "quiet");
    let informer = R::informer(&maps);
    let controller =
        R::controller::<_, ItemExponentialFailure<ObjectKey>>(informer.clone(), 2, None);
    let handle = R::controller_handle(&controller);
    // The first list is answered late (a 503 with Retry-After: 1), so the
    // controller is surely waiting before the informer syncs; the key comes
    // three seconds in, well after.
    ctx.server.faults().fail_requests(1, 503, 1);
    let enqueuer = {
        let handle = handle.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_secs(3));
            R::enqueue(&handle, ObjectKey::namespaced("quiet", "by-hand"));
        })
    };
    let reconciled = Arc::new(Mutex::new(Vec::new()));
    let (log, h) = (reconciled.clone(), handle.clone());
    let counters = R::run_controller(controller, move |key| {
        log.lock().unwrap().push(key.to_string());
        R::shut_down(&h);
        Box::pin(async { Ok(Outcome::Success) })
    })
    .await
    .unwrap();
    enqueuer.join().unwrap();
    assert_eq!(
        reconciled.lock().unwrap().as_slice(),
        ["quiet/by-hand".to_owned()]
    );
    assert_eq!(counters.reconciles, 1);
    assert!(R::lister_list(&informer).is_empty());
}

fn election(identity: &str) -> ElectionConfig {
    ElectionConfig {
        lease_duration: Duration::from_secs(2),
        renew_deadline: Duration::from_millis(1500),
        retry_period: Duration::from_millis(300),
        ..ElectionConfig::new(identity, "default", "e2e-lock")
    }
}

/// Who started leading, and when, in order.
type Starts = Arc<Mutex<Vec<(String, Instant)>>>;

/// Campaigns as `identity`; while it leads it counts itself among the
/// `leaders` (and records the most ever seen at once in `most`).
fn candidate<R: Runners>(
    ctx: &Ctx<R>,
    identity: &str,
    leaders: &Arc<AtomicUsize>,
    most: &Arc<AtomicUsize>,
    starts: &Starts,
) -> (R::ElectorHandle, R::Task<Result<(), super::Failure>>) {
    let (name, leaders_up, most, starts) = (
        identity.to_owned(),
        leaders.clone(),
        most.clone(),
        starts.clone(),
    );
    let leaders_down = leaders.clone();
    ctx.rt.campaign(
        ctx.client(),
        election(identity),
        Box::new(move || {
            let now = leaders_up.fetch_add(1, Ordering::SeqCst) + 1;
            most.fetch_max(now, Ordering::SeqCst);
            starts.lock().unwrap().push((name, Instant::now()));
        }),
        Box::new(move || {
            leaders_down.fetch_sub(1, Ordering::SeqCst);
        }),
    )
}

/// The `n`th leader to start (0-based), waiting at most 10 s.
async fn nth_start<R: Runtime>(starts: &Starts, n: usize) -> (String, Instant) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(start) = starts.lock().unwrap().get(n) {
            return start.clone();
        }
        assert!(Instant::now() < deadline, "no leader #{n} within 10 s");
        R::sleep(Duration::from_millis(10)).await;
    }
}

/// a leads; b waits while a renews and sees a hold the lease; a stops and
/// releases; b takes over before the lease would have expired; never two
/// leaders at once; b releases on stop.
pub async fn leader_election_hands_over_when_the_leader_releases<R: Runners>(ctx: Ctx<R>) {
    let (leaders, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let starts = Starts::default();
    let (a, run_a) = candidate(&ctx, "a", &leaders, &most, &starts);
    let (first, _) = nth_start::<R>(&starts, 0).await;
    assert_eq!(first, "a");
    assert!(R::is_leader(&a));
    let (b, run_b) = candidate(&ctx, "b", &leaders, &most, &starts);
    R::sleep(Duration::from_millis(800)).await;
    assert!(!R::is_leader(&b), "b waits while a renews");
    assert_eq!(
        R::leader(&b).as_deref(),
        Some("a"),
        "b saw a hold the lease"
    );
    let released = Instant::now();
    R::stop_campaign(&a);
    R::join(run_a).await.unwrap();
    let (second, at) = nth_start::<R>(&starts, 1).await;
    assert_eq!(second, "b");
    let handover = at - released;
    println!(
        "leader election ({}): released hand-over in {handover:?}",
        R::NAME
    );
    assert!(
        handover < Duration::from_secs(2),
        "b took the released lease before it would have expired: {handover:?}"
    );
    assert_eq!(most.load(Ordering::SeqCst), 1, "never two leaders at once");
    R::stop_campaign(&b);
    R::join(run_b).await.unwrap();
    assert_eq!(leaders.load(Ordering::SeqCst), 0, "both stopped leading");
    let leases = R::namespaced::<Lease>(&ctx.client(), "default");
    let lease = R::get(&leases, "e2e-lock").await.unwrap().spec.unwrap();
    assert_eq!(lease.holder_identity.as_deref(), Some(""), "b released it");
    assert_eq!(lease.lease_transitions, Some(1));
}
