//! Work-queue throughput, single-threaded: add/get/done cycles over 10,000
//! distinct keys, and the same keys failing and coming back through the
//! controller's default rate limiter (exponential per key + token bucket).

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use windlass_proto::queue::{Next, RateLimitingQueue, WorkQueue};

const KEYS: u32 = 10_000;

/// Short criterion settings (issue 9: all of `cargo bench` in 15 minutes on
/// 2 cores); `-- --warm-up-time S --measurement-time S` still override them.
fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
}

fn add_get_done(c: &mut Criterion) {
    let mut group = c.benchmark_group("queue");
    group.throughput(Throughput::Elements(u64::from(KEYS)));

    group.bench_function("add_get_done_10k_keys", |b| {
        let mut queue = WorkQueue::new();
        b.iter(|| {
            for key in 0..KEYS {
                queue.add(key);
            }
            while let Next::Item(key) = queue.get() {
                queue.done(black_box(&key));
            }
        });
    });

    group.bench_function("add_get_done_10k_keys_with_duplicate_adds", |b| {
        let mut queue = WorkQueue::new();
        b.iter(|| {
            for key in 0..KEYS {
                queue.add(key);
                queue.add(key); // collapses
            }
            while let Next::Item(key) = queue.get() {
                queue.add(key); // dirty while processing: comes back after done
                queue.done(&key);
                if let Next::Item(again) = queue.get() {
                    queue.done(black_box(&again));
                }
            }
        });
    });

    group.bench_function("rate_limited_readd_10k_keys", |b| {
        let mut queue: RateLimitingQueue<u32, _> = RateLimitingQueue::default();
        let mut now = Instant::now();
        for key in 0..KEYS {
            queue.add(key);
        }
        b.iter(|| {
            // Past every wait: 1000 s exponential cap, 10k tokens at 10 qps.
            now += Duration::from_secs(2000);
            queue.handle_timeout(now);
            let mut handled = 0;
            while let Next::Item(key) = queue.get() {
                // Every key fails and is re-added through the limiter; every
                // 16th succeeds first and starts its backoff over.
                if key % 16 == 0 {
                    queue.forget(&key);
                }
                queue.add_rate_limited(key, now);
                queue.done(&key);
                handled += 1;
            }
            assert_eq!(handled, KEYS);
        });
    });

    group.finish();
}

criterion_group! {
    name = benches;
    config = config();
    targets = add_get_done
}
criterion_main!(benches);
