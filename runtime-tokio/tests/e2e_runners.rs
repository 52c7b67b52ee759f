//! windlass-tokio's runner behaviour that only a task runtime shows: a
//! leader whose task is aborted (no release, no more renewals) is replaced
//! once its lease expires by the other candidate's clock. The runner
//! scenarios every runtime shares run from `e2e.rs` (`e2e_tokio::*`).

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use support::within;
use windlass_proto::config::Kubeconfig;
use windlass_proto::election::Config as ElectionConfig;
use windlass_testkit::apiserver::{ApiServer, RunningServer};
use windlass_testkit::scenarios::no_files;
use windlass_tokio::{Client, ClientBuilder, LeaderElector};

/// A client from the server's kubeconfig (its current context: client certificates).
fn client(server: &RunningServer) -> Client {
    let kubeconfig = Kubeconfig::parse(server.kubeconfig().as_bytes(), None).unwrap();
    let config = kubeconfig.resolve(&Default::default(), &no_files).unwrap();
    assert!(config.tls.identity.is_some(), "a client certificate");
    ClientBuilder::from_config(&config)
        .unwrap()
        .build()
        .unwrap()
}

fn election(identity: &str) -> ElectionConfig {
    ElectionConfig {
        lease_duration: Duration::from_secs(2),
        renew_deadline: Duration::from_millis(1500),
        retry_period: Duration::from_millis(300),
        ..ElectionConfig::new(identity, "default", "e2e-lock")
    }
}

/// Runs a candidate that reports when it starts leading and counts itself
/// among the `leaders` while it leads.
fn candidate(
    client: Client,
    identity: &str,
    leaders: Arc<AtomicUsize>,
    started: tokio::sync::mpsc::UnboundedSender<(String, Instant)>,
) -> (
    windlass_tokio::ElectorHandle,
    tokio::task::JoinHandle<Result<(), windlass_tokio::Error>>,
) {
    let elector = LeaderElector::new(client, election(identity)).unwrap();
    let handle = elector.handle();
    let name = identity.to_owned();
    let run = tokio::spawn(elector.run(move |leadership| async move {
        leaders.fetch_add(1, Ordering::SeqCst);
        let _ = started.send((name, Instant::now()));
        leadership.lost().await;
        leaders.fetch_sub(1, Ordering::SeqCst);
    }));
    (handle, run)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_tokio_leader_election_takes_over_after_the_leader_dies() {
    let server = ApiServer::builder().start().await.unwrap();
    let leaders = Arc::new(AtomicUsize::new(0));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let (a, run_a) = candidate(client(&server), "a", leaders.clone(), tx.clone());
    let (first, _) = within(10, rx.recv()).await.unwrap();
    assert_eq!(first, "a");
    assert!(a.is_leader());
    let (_b, run_b) = candidate(client(&server), "b", leaders.clone(), tx);
    tokio::time::sleep(Duration::from_millis(500)).await;
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
    run_b.abort();
    server.shutdown().await;
}
