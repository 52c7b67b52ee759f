//! The deterministic simulation in CI: the real informer converges on every
//! seed, and each deliberately broken informer is caught within the same
//! seed budget.

use windlass_testkit::sim::{Mutation, Outcome, find_divergences};

/// The seed budget CI runs.
const CI_SEEDS: u64 = 2_000;

fn report(found: &[Outcome]) -> String {
    found
        .iter()
        .map(|o| {
            format!(
                "seed {}: {}\n  replay: {}",
                o.seed,
                o.divergence.as_deref().unwrap_or(""),
                o.replay_command()
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn sim_informer_converges_on_2000_seeds() {
    let found = find_divergences(0..CI_SEEDS, Mutation::None, 5);
    assert!(found.is_empty(), "divergences:\n{}", report(&found));
}

/// The first seed (of the CI budget) on which `mutation` is caught.
fn first_detection(mutation: Mutation) -> Outcome {
    let mut found = find_divergences(0..CI_SEEDS, mutation, 1);
    assert!(
        !found.is_empty(),
        "{mutation:?} went undetected over {CI_SEEDS} seeds"
    );
    found.remove(0)
}

#[test]
fn sim_detects_ignoring_410() {
    let caught = first_detection(Mutation::IgnoreGone);
    eprintln!(
        "IgnoreGone caught on seed {}: {:?}",
        caught.seed, caught.divergence
    );
}

#[test]
fn sim_detects_dropped_tombstones() {
    let caught = first_detection(Mutation::DropTombstones);
    eprintln!(
        "DropTombstones caught on seed {}: {:?}",
        caught.seed, caught.divergence
    );
}

#[test]
fn sim_detects_missing_backoff() {
    let caught = first_detection(Mutation::NeverBackOff);
    let why = caught.divergence.as_deref().unwrap_or("");
    assert!(
        why.contains("request storm") || why.contains("livelock"),
        "a reflector without backoff must be caught by the rate bound, not by {why:?}"
    );
}

#[test]
fn sim_detects_rv_lost_on_bookmark() {
    let caught = first_detection(Mutation::LoseRvOnBookmark);
    eprintln!(
        "LoseRvOnBookmark caught on seed {}: {:?}",
        caught.seed, caught.divergence
    );
}

#[test]
fn sim_same_seed_same_run() {
    let a = windlass_testkit::sim::run(&windlass_testkit::sim::Options {
        seed: 42,
        trace: true,
        ..Default::default()
    });
    let b = windlass_testkit::sim::run(&windlass_testkit::sim::Options {
        seed: 42,
        trace: true,
        ..Default::default()
    });
    assert!(a.trace.len() > 10);
    assert_eq!(a.trace, b.trace);
    assert_eq!(a.requests, b.requests);
}
