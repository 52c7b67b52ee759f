//! A quick measurement (not a benchmark suite): decode the kubernetes/api
//! `core.v1.Pod` fixture into k8s-openapi's `Pod` from protobuf and from
//! JSON, and encode it both ways, reporting time per operation.
//!
//! ```text
//! WINDLASS_FIXTURES=../shared/fixtures cargo run --release -p windlass-proto --example protobuf_vs_json
//! ```

use std::hint::black_box;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use windlass_proto::codec::protobuf;

fn time_per_op(mut op: impl FnMut()) -> Duration {
    for _ in 0..200 {
        op();
    }
    let start = Instant::now();
    let mut n = 0u32;
    while start.elapsed() < Duration::from_secs(2) {
        for _ in 0..100 {
            op();
        }
        n += 100;
    }
    start.elapsed() / n
}

fn main() {
    let dir = std::env::var("WINDLASS_FIXTURES").unwrap_or_else(|_| "../shared/fixtures".into());
    let read = |ext: &str| {
        let path = format!("{dir}/k8s-api-HEAD/core.v1.Pod.{ext}");
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e} (set WINDLASS_FIXTURES)"))
    };
    let (json, pb) = (read("json"), read("pb"));
    let pod: Pod = serde_json::from_slice(&json).expect("JSON fixture decodes");

    let json_decode = time_per_op(|| {
        black_box(serde_json::from_slice::<Pod>(black_box(&json)).unwrap());
    });
    let pb_decode = time_per_op(|| {
        black_box(protobuf::decode::<Pod>(black_box(&pb)).unwrap());
    });
    let json_encode = time_per_op(|| {
        black_box(serde_json::to_vec(black_box(&pod)).unwrap());
    });
    let pb_encode = time_per_op(|| {
        black_box(protobuf::encode(black_box(&pod)).unwrap());
    });
    println!(
        "Pod fixture: JSON {} bytes, protobuf {} bytes",
        json.len(),
        pb.len()
    );
    println!(
        "decode  JSON {json_decode:>10.2?}  protobuf {pb_decode:>10.2?}  ratio {:.2}x",
        json_decode.as_secs_f64() / pb_decode.as_secs_f64()
    );
    println!(
        "encode  JSON {json_encode:>10.2?}  protobuf {pb_encode:>10.2?}  ratio {:.2}x",
        json_encode.as_secs_f64() / pb_encode.as_secs_f64()
    );
}
