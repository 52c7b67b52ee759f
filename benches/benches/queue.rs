//! Work-queue throughput, windlass beside kube-runtime, on the same keys in
//! the same run (issue 9).
//!
//! kube-runtime has no client-go work queue; what its `Controller` queues
//! reconcile requests in is `kube_runtime::scheduler`: a `Stream` that
//! takes `ScheduleRequest { message, run_at }`, keeps one pending entry per
//! message (the earliest `run_at` wins) in a tokio-util `DelayQueue`, and
//! yields each message when it is due. So each arm gives both the same
//! work:
//!
//! - `add_get_done_10k_keys`: 10,000 distinct keys added, taken and marked
//!   done (windlass `WorkQueue`); scheduled to run now and drained
//!   (kube-runtime `scheduler`).
//! - `duplicate_adds_10k_keys`: the same, every key added twice (both
//!   collapse the duplicate).
//! - `delayed_10k_keys`: every key scheduled at its own delay spread over
//!   10 s, then drained in due order: windlass `DelayingQueue` driven as its
//!   adapter drives it (wake at `poll_timeout`, `handle_timeout`, drain);
//!   kube-runtime `scheduler`.
//!
//! kube-runtime runs on a current-thread tokio runtime with a paused clock
//! that jumps to each deadline, so neither side waits in real time.
//!
//! ```text
//! cargo bench -p windlass-benches --bench queue
//! ```

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use futures_util::StreamExt;
use kube_runtime::scheduler::{ScheduleRequest, scheduler};
use windlass_proto::queue::{DelayingQueue, Next, WorkQueue};

const KEYS: u32 = 10_000;

/// The delay of `key`: spread over 10 s, not in key order.
fn delay_of(key: u32) -> Duration {
    Duration::from_micros(u64::from(key.wrapping_mul(7919) % KEYS) * 1_000)
}

/// A current-thread runtime on tokio's paused clock: when nothing is ready
/// it jumps to the next timer, so no arm waits in real time.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a tokio runtime")
}

/// Feeds a kube-runtime scheduler the requests `make` builds at the
/// runtime's now, and drains it until `expect` messages came out (its
/// request stream stays open, as a controller's does: the scheduler ends
/// when its requests end, pending messages and all). Returns how many.
async fn kube_drain(
    expect: u32,
    make: impl FnOnce(tokio::time::Instant) -> Vec<ScheduleRequest<u32>>,
) -> u32 {
    let requests = make(tokio::time::Instant::now());
    let open = futures_util::stream::iter(requests).chain(futures_util::stream::pending());
    let mut stream = Box::pin(scheduler(open).take(expect as usize));
    let mut out = 0;
    while let Some(key) = stream.next().await {
        black_box(key);
        out += 1;
    }
    out
}

/// Short criterion settings (issue 9: all of `cargo bench` in 15 minutes on
/// 2 cores); `-- --warm-up-time S --measurement-time S` still override them.
fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
}

fn immediate(c: &mut Criterion) {
    let mut group = c.benchmark_group("queue");
    group.throughput(Throughput::Elements(u64::from(KEYS)));

    group.bench_function("add_get_done_10k_keys/windlass", |b| {
        let mut queue = WorkQueue::new();
        b.iter(|| {
            for key in 0..KEYS {
                queue.add(key);
            }
            let mut out = 0;
            while let Next::Item(key) = queue.get() {
                queue.done(black_box(&key));
                out += 1;
            }
            assert_eq!(out, KEYS);
        });
    });
    group.bench_function("add_get_done_10k_keys/kube-rs", |b| {
        let rt = runtime();
        b.iter(|| {
            let drained = rt.block_on(kube_drain(KEYS, |now| {
                (0..KEYS)
                    .map(|message| ScheduleRequest {
                        message,
                        run_at: now,
                    })
                    .collect()
            }));
            assert_eq!(drained, KEYS);
        });
    });

    group.bench_function("duplicate_adds_10k_keys/windlass", |b| {
        let mut queue = WorkQueue::new();
        b.iter(|| {
            for key in 0..KEYS {
                queue.add(key);
                queue.add(key);
            }
            let mut out = 0;
            while let Next::Item(key) = queue.get() {
                queue.done(black_box(&key));
                out += 1;
            }
            assert_eq!(out, KEYS);
        });
    });
    group.bench_function("duplicate_adds_10k_keys/kube-rs", |b| {
        let rt = runtime();
        b.iter(|| {
            let drained = rt.block_on(kube_drain(KEYS, |now| {
                (0..KEYS)
                    .flat_map(|message| {
                        [0, 1].map(|_| ScheduleRequest {
                            message,
                            run_at: now,
                        })
                    })
                    .collect()
            }));
            assert_eq!(drained, KEYS);
        });
    });
    group.finish();
}

fn delayed(c: &mut Criterion) {
    let mut group = c.benchmark_group("queue");
    group.throughput(Throughput::Elements(u64::from(KEYS)));

    group.bench_function("delayed_10k_keys/windlass", |b| {
        let mut queue = DelayingQueue::new();
        let mut now = Instant::now();
        b.iter(|| {
            for key in 0..KEYS {
                queue.add_after(key, delay_of(key), now);
            }
            let mut out = 0;
            while let Some(due) = queue.poll_timeout() {
                now = now.max(due);
                queue.handle_timeout(now);
                while let Next::Item(key) = queue.get() {
                    queue.done(black_box(&key));
                    out += 1;
                }
            }
            while let Next::Item(key) = queue.get() {
                queue.done(black_box(&key));
                out += 1;
            }
            assert_eq!(out, KEYS);
        });
    });
    group.bench_function("delayed_10k_keys/kube-rs", |b| {
        let rt = runtime();
        b.iter(|| {
            let drained = rt.block_on(kube_drain(KEYS, |now| {
                (0..KEYS)
                    .map(|message| ScheduleRequest {
                        message,
                        run_at: now + delay_of(message),
                    })
                    .collect()
            }));
            assert_eq!(drained, KEYS);
        });
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = config();
    targets = immediate, delayed
}
criterion_main!(benches);
