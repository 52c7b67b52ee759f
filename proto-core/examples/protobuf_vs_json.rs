//! A quick measurement (not a benchmark suite): decode the kubernetes/api
//! `core.v1.Pod` fixture into k8s-openapi's `Pod` from protobuf and from
//! JSON, and encode it both ways, reporting time per operation. The two
//! sides run interleaved, so a busy machine slows both alike.
//!
//! ```text
//! WINDLASS_FIXTURES=../shared/fixtures cargo run --release -p windlass-proto --example protobuf_vs_json
//! ```
//!
//! `ONLY=protobuf-decode` runs just that loop (for a profiler).

use std::hint::black_box;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use windlass_proto::codec::protobuf;

/// Time per operation of `a` and of `b`, interleaved in rounds.
fn time_pair(mut a: impl FnMut(), mut b: impl FnMut()) -> (Duration, Duration) {
    for _ in 0..100 {
        a();
        b();
    }
    let (mut ta, mut tb, mut n) = (Duration::ZERO, Duration::ZERO, 0u32);
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(4) {
        let t = Instant::now();
        for _ in 0..50 {
            a();
        }
        ta += t.elapsed();
        let t = Instant::now();
        for _ in 0..50 {
            b();
        }
        tb += t.elapsed();
        n += 50;
    }
    (ta / n, tb / n)
}

fn main() {
    let dir = std::env::var("WINDLASS_FIXTURES").unwrap_or_else(|_| "../shared/fixtures".into());
    let read = |ext: &str| {
        let path = format!("{dir}/k8s-api-HEAD/core.v1.Pod.{ext}");
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e} (set WINDLASS_FIXTURES)"))
    };
    let (json, pb) = (read("json"), read("pb"));
    let pod: Pod = serde_json::from_slice(&json).expect("JSON fixture decodes");
    if std::env::var("ONLY").as_deref() == Ok("protobuf-decode") {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(5) {
            black_box(protobuf::decode::<Pod>(black_box(&pb)).unwrap());
        }
        return;
    }

    let (json_decode, pb_decode) = time_pair(
        || {
            black_box(serde_json::from_slice::<Pod>(black_box(&json)).unwrap());
        },
        || {
            black_box(protobuf::decode::<Pod>(black_box(&pb)).unwrap());
        },
    );
    let (json_walk, pb_walk) = time_pair(
        || {
            black_box(serde_json::from_slice::<serde::de::IgnoredAny>(black_box(&json)).unwrap());
        },
        || {
            black_box(protobuf::decode::<serde::de::IgnoredAny>(black_box(&pb)).unwrap());
        },
    );
    println!("walk only (IgnoredAny): JSON {json_walk:.2?} protobuf {pb_walk:.2?}");
    let (json_encode, pb_encode) = time_pair(
        || {
            black_box(serde_json::to_vec(black_box(&pod)).unwrap());
        },
        || {
            black_box(protobuf::encode(black_box(&pod)).unwrap());
        },
    );
    let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64();
    println!(
        "Pod fixture: JSON {} bytes, protobuf {} bytes",
        json.len(),
        pb.len()
    );
    println!(
        "decode  JSON {json_decode:>10.2?}  protobuf {pb_decode:>10.2?}  protobuf is {:.2}x as fast",
        ratio(json_decode, pb_decode)
    );
    println!(
        "encode  JSON {json_encode:>10.2?}  protobuf {pb_encode:>10.2?}  protobuf is {:.2}x as fast",
        ratio(json_encode, pb_encode)
    );
}
