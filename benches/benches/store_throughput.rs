//! Store apply and relist-replace throughput, windlass beside kube-runtime's
//! reflector store, on the same decoded Pods (about 2 KB of JSON each, made
//! from the recorded fixtures).
//!
//! - `apply`: 10,000 updates of already-stored keys, each an owned decoded
//!   object handed to the store (kube-rs: `apply_watcher_event(&Apply(obj))`,
//!   which deep-clones it; windlass: `Store::add(Arc::new(obj))`).
//! - `relist`: the same 10,000 keys listed again with 10 % of them changed
//!   (kube-rs: `Init`, `InitApply`…, `InitDone`; windlass: a `Generation`
//!   that keeps unchanged objects' `Arc`s, then `Store::replace`).
//!
//! Throughput is in objects; the decoded input is made outside the timing.

use std::cell::RefCell;
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{BatchSize, Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use k8s_openapi::api::core::v1::Pod;
use kube_runtime::reflector::store::Writer;
use kube_runtime::watcher::Event;
use windlass_benches::{Generator, fixtures_dir};
use windlass_proto::informer::{Generation, Store};

const OBJECTS: usize = 10_000;

/// Short criterion settings (issue 9: all of `cargo bench` in 15 minutes on
/// 2 cores); `-- --warm-up-time S --measurement-time S` still override them.
fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

fn store_throughput(c: &mut Criterion) {
    let Some(dir) = fixtures_dir() else { return };
    let generator = match Generator::pods(&dir, true) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("skipped: {e}");
            return;
        }
    };
    let initial: Vec<Pod> = (0..OBJECTS).map(|i| generator.pod(i, 1)).collect();
    let updates: Vec<Pod> = (0..OBJECTS).map(|i| generator.pod(i, 2)).collect();
    let relist: Vec<Pod> = (0..OBJECTS)
        .map(|i| generator.pod(i, if i.is_multiple_of(10) { 3 } else { 1 }))
        .collect();

    let mut kube = Writer::<Pod>::default();
    kube.apply_watcher_event(&Event::Init);
    for pod in &initial {
        kube.apply_watcher_event(&Event::InitApply(pod.clone()));
    }
    kube.apply_watcher_event(&Event::InitDone);
    let mut windlass = Store::<Pod>::new();
    let mut generation = Generation::new();
    for pod in &initial {
        generation.insert(Arc::new(pod.clone()), &windlass);
    }
    windlass.replace(generation.into_objects(), "1");
    assert_eq!(kube.as_reader().len(), OBJECTS);
    assert_eq!(windlass.len(), OBJECTS);

    let mut group = c.benchmark_group("store_throughput");
    // Each iteration is ~0.1–1 s: criterion's fewest samples, one iteration each.
    group.sample_size(10);
    group.sampling_mode(SamplingMode::Flat);
    group.throughput(Throughput::Elements(OBJECTS as u64));
    group.bench_function("apply/kube-rs", |b| {
        b.iter_batched(
            || {
                updates
                    .iter()
                    .cloned()
                    .map(Event::Apply)
                    .collect::<Vec<_>>()
            },
            |events| {
                for event in events {
                    kube.apply_watcher_event(&event);
                }
            },
            BatchSize::PerIteration,
        )
    });
    group.bench_function("apply/windlass", |b| {
        b.iter_batched(
            || updates.clone(),
            |pods| {
                for pod in pods {
                    black_box(windlass.add(Arc::new(pod)));
                }
            },
            BatchSize::PerIteration,
        )
    });
    group.bench_function("relist/kube-rs", |b| {
        b.iter_batched(
            || {
                relist
                    .iter()
                    .cloned()
                    .map(Event::InitApply)
                    .collect::<Vec<_>>()
            },
            |events| {
                kube.apply_watcher_event(&Event::Init);
                for event in events {
                    kube.apply_watcher_event(&event);
                }
                kube.apply_watcher_event(&Event::InitDone);
            },
            BatchSize::PerIteration,
        )
    });
    // Each iteration starts from the initial store, so the 10 % stay changed.
    let reset = |store: &mut Store<Pod>| {
        let mut generation = Generation::new();
        for pod in &initial {
            generation.insert(Arc::new(pod.clone()), &*store);
        }
        store.replace(generation.into_objects(), "1");
    };
    let windlass = RefCell::new(windlass);
    group.bench_function("relist/windlass", |b| {
        b.iter_batched(
            || {
                reset(&mut windlass.borrow_mut());
                relist.clone()
            },
            |pods| {
                let mut store = windlass.borrow_mut();
                let mut generation = Generation::new();
                for pod in pods {
                    generation.insert(Arc::new(pod), &*store);
                }
                store.replace(generation.into_objects(), "3");
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = config();
    targets = store_throughput
}
criterion_main!(benches);
