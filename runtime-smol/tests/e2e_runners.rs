//! windlass-smol's runner scenario the shared suite (`e2e.rs`, from
//! `windlass_testkit::scenarios`) does not hold: a leader that dies without
//! releasing, taken over once its lease expires — against windlass-apiserver
//! over TLS with client-certificate auth, on smol's executor and on
//! async-std's. Every wait is bounded.

mod harness;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use harness::{Ctx, sleep, within};
use windlass_proto::election::Config as ElectionConfig;
use windlass_smol::{Client, ElectorHandle, JoinHandle, LeaderElector};
use windlass_testkit::apiserver::ApiServer;

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
