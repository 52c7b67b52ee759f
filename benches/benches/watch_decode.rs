//! Watch decoding, windlass beside kube-rs on the same events in the same run.
//!
//! One stream of Pod watch events made from the recorded fixtures (see the
//! crate docs), fed to every decoder in 16 KiB chunks as a socket would
//! deliver it:
//!
//! - `kube-rs`: kube-client's path — `LinesCodec` over a `BytesMut`, then
//!   `serde_json::from_str::<kube::core::WatchEvent<Pod>>` per line;
//! - `windlass-json`, `windlass-protobuf`, `windlass-cbor`: windlass's
//!   incremental [`WatchDecoder`] on the same events in each encoding;
//! - `floor-ignored-any`: newline split + `serde_json` into `IgnoredAny`,
//!   the cost of reading the JSON bytes at all;
//! - `floor-clone`: cloning (and dropping) the decoded Pods, the cost of
//!   building the owned k8s-openapi values at all — a lower bound for any
//!   decoder into those types, whatever its input.
//!
//! A second set of groups, `pod_encode/*`, writes the same Pods as request
//! bodies in each encoding (`json::encode`, `protobuf::encode`,
//! `cbor::encode`).
//!
//! Two groups: Pods cut to about 2 KB of JSON, and the recorded Pods whole
//! (managedFields included, about 9 KB). Throughput is in bytes of each
//! arm's own encoding; events per second are the printed event count over
//! the time per iteration.
//!
//! Instruction counts: with `WATCH_DECODE_ARM=<group>/<arm>` set (e.g.
//! `pod-2k/windlass-protobuf`, `pod-2k/encode-json`), the binary builds
//! that group's inputs, runs that one arm once inside [`measured`] and
//! exits, without criterion, for `valgrind --tool=callgrind
//! --toggle-collect='*measured*'`; `WATCH_DECODE_ARM=list` names the arms.

use std::hint::black_box;
use std::time::Duration;

use bytes::BytesMut;
use criterion::{Criterion, Throughput, criterion_group};
use k8s_openapi::api::core::v1::Pod;
use serde::de::IgnoredAny;
use tokio_util::codec::{Decoder, LinesCodec};
use windlass_benches::{
    Event, Generator, cbor_stream, fixtures_dir, json_stream, pod_events, protobuf_stream,
};
use windlass_proto::codec::{cbor, json as json_codec, protobuf as protobuf_codec};
use windlass_proto::watch::{Framing, Limits, WatchDecoder};

/// The size of each body chunk handed to a decoder.
const CHUNK: usize = 16 << 10;

/// kube-client's watch path: line framing, one `String` per line, serde_json.
fn kube_rs(body: &[u8]) -> usize {
    let mut codec = LinesCodec::new();
    let mut buf = BytesMut::new();
    let mut events = 0;
    for chunk in body.chunks(CHUNK) {
        buf.extend_from_slice(chunk);
        while let Some(line) = codec.decode(&mut buf).expect("lines") {
            let event: kube::core::WatchEvent<Pod> =
                serde_json::from_str(&line).expect("kube-rs decodes the event");
            black_box(event);
            events += 1;
        }
    }
    if let Some(line) = codec.decode_eof(&mut buf).expect("lines") {
        black_box(serde_json::from_str::<kube::core::WatchEvent<Pod>>(&line).expect("an event"));
        events += 1;
    }
    events
}

fn windlass(framing: Framing, body: &[u8]) -> usize {
    let mut decoder = WatchDecoder::<Pod>::new(framing, Limits::default());
    let mut events = 0;
    for chunk in body.chunks(CHUNK) {
        decoder.push(chunk).expect("windlass decodes the stream");
        while let Some(event) = decoder.poll_event() {
            black_box(event.expect("an event"));
            events += 1;
        }
    }
    decoder.finish().expect("the stream ends between events");
    events
}

/// The other floor: the decoded values built again, by `Clone`, and dropped.
fn floor_clone(events: &[Event]) -> usize {
    for event in events {
        black_box(event.clone());
    }
    events.len()
}

/// The floor: the JSON bytes read and thrown away.
fn floor(body: &[u8]) -> usize {
    let mut events = 0;
    for line in body.split(|b| *b == b'\n').filter(|line| !line.is_empty()) {
        black_box(serde_json::from_slice::<IgnoredAny>(line).expect("JSON"));
        events += 1;
    }
    events
}

/// The group names and the number of events each holds.
const GROUPS: [(&str, bool, usize); 2] = [
    ("watch_decode/pod-2k", true, 1000),
    ("watch_decode/pod-recorded", false, 250),
];

/// The arms [`measured`] runs.
const ARMS: [&str; 9] = [
    "kube-rs",
    "windlass-json",
    "windlass-protobuf",
    "windlass-cbor",
    "floor-ignored-any",
    "floor-clone",
    "encode-json",
    "encode-protobuf",
    "encode-cbor",
];

/// One arm over one group's inputs, the only code an instruction count
/// collects (`--toggle-collect='*measured*'`).
#[inline(never)]
fn measured(arm: &str, events: &[Event], json: &[u8], protobuf: &[u8], cbor_body: &[u8]) -> usize {
    let pods = || {
        events.iter().filter_map(|e| match e {
            Event::Object(_, pod) => Some(pod.as_ref()),
            Event::Bookmark(_) => None,
        })
    };
    match arm {
        "kube-rs" => kube_rs(json),
        "windlass-json" => windlass(Framing::JsonStream, json),
        "windlass-protobuf" => windlass(Framing::LengthPrefixed, protobuf),
        "windlass-cbor" => windlass(Framing::CborSequence, cbor_body),
        "floor-ignored-any" => floor(json),
        "floor-clone" => floor_clone(events),
        "encode-json" => pods()
            .map(|pod| black_box(json_codec::encode(pod).expect("JSON")).len())
            .sum(),
        "encode-protobuf" => pods()
            .map(|pod| black_box(protobuf_codec::encode(pod).expect("protobuf")).len())
            .sum(),
        "encode-cbor" => pods()
            .map(|pod| black_box(cbor::encode(pod).expect("CBOR")).len())
            .sum(),
        other => panic!("no arm {other:?}; arms: {ARMS:?}"),
    }
}

/// `WATCH_DECODE_ARM=<group>/<arm>`: run one arm once, for an instruction count.
fn run_one_arm(spec: &str) {
    if spec == "list" {
        for (group, _, _) in GROUPS {
            for arm in ARMS {
                println!("{}/{arm}", group.trim_start_matches("watch_decode/"));
            }
        }
        return;
    }
    let Some(dir) = fixtures_dir() else { return };
    let (group, arm) = spec
        .split_once('/')
        .expect("WATCH_DECODE_ARM=<group>/<arm>");
    let (_, trimmed, count) = GROUPS
        .into_iter()
        .find(|(g, _, _)| g.trim_start_matches("watch_decode/") == group)
        .expect("group pod-2k or pod-recorded");
    let generator = Generator::pods(&dir, trimmed).expect("the recorded Pods");
    let events = pod_events(&generator, count);
    let json = json_stream(&events);
    let protobuf = protobuf_stream(&events);
    let cbor_body = cbor_stream(&events);
    let out = measured(arm, &events, &json, &protobuf, &cbor_body);
    println!("{group}/{arm}: {count} events, result {out}");
}

fn watch_decode(c: &mut Criterion) {
    let Some(dir) = fixtures_dir() else { return };
    for (group_name, trimmed, count) in GROUPS {
        let generator = match Generator::pods(&dir, trimmed) {
            Ok(g) => g,
            Err(e) => {
                eprintln!("skipped: {e}");
                return;
            }
        };
        let events = pod_events(&generator, count);
        let json = json_stream(&events);
        let protobuf = protobuf_stream(&events);
        let cbor = cbor_stream(&events);
        for (arm, n) in [
            ("kube-rs", kube_rs(&json)),
            ("windlass-json", windlass(Framing::JsonStream, &json)),
            (
                "windlass-protobuf",
                windlass(Framing::LengthPrefixed, &protobuf),
            ),
            ("windlass-cbor", windlass(Framing::CborSequence, &cbor)),
            ("floor-ignored-any", floor(&json)),
        ] {
            assert_eq!(n, count, "{arm} decoded {n} of {count} events");
        }
        eprintln!(
            "{group_name}: {count} events; JSON {} B ({} B/event), protobuf {} B, CBOR {} B",
            json.len(),
            json.len() / count,
            protobuf.len(),
            cbor.len()
        );

        let mut group = c.benchmark_group(group_name);
        group.sample_size(20);
        group.throughput(Throughput::Bytes(json.len() as u64));
        group.bench_function("kube-rs", |b| b.iter(|| kube_rs(&json)));
        group.bench_function("windlass-json", |b| {
            b.iter(|| windlass(Framing::JsonStream, &json))
        });
        group.throughput(Throughput::Bytes(protobuf.len() as u64));
        group.bench_function("windlass-protobuf", |b| {
            b.iter(|| windlass(Framing::LengthPrefixed, &protobuf))
        });
        group.throughput(Throughput::Bytes(cbor.len() as u64));
        group.bench_function("windlass-cbor", |b| {
            b.iter(|| windlass(Framing::CborSequence, &cbor))
        });
        group.throughput(Throughput::Bytes(json.len() as u64));
        group.bench_function("floor-ignored-any", |b| b.iter(|| floor(&json)));
        group.bench_function("floor-clone", |b| b.iter(|| floor_clone(&events)));
        group.finish();

        let pods: Vec<&Pod> = events
            .iter()
            .filter_map(|e| match e {
                Event::Object(_, pod) => Some(pod.as_ref()),
                Event::Bookmark(_) => None,
            })
            .collect();
        let mut group = c.benchmark_group(group_name.replace("watch_decode", "pod_encode"));
        group.sample_size(20);
        group.bench_function("json", |b| {
            b.iter(|| {
                for pod in &pods {
                    black_box(json_codec::encode(*pod).expect("JSON"));
                }
            })
        });
        group.bench_function("protobuf", |b| {
            b.iter(|| {
                for pod in &pods {
                    black_box(protobuf_codec::encode(*pod).expect("protobuf"));
                }
            })
        });
        group.bench_function("cbor", |b| {
            b.iter(|| {
                for pod in &pods {
                    black_box(cbor::encode(*pod).expect("CBOR"));
                }
            })
        });
        group.finish();
    }
}

/// Short criterion settings (issue 9: all of `cargo bench` in 15 minutes on
/// 2 cores); `-- --warm-up-time S --measurement-time S` still override them.
fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
}

criterion_group! {
    name = benches;
    config = config();
    targets = watch_decode
}

fn main() {
    if let Ok(spec) = std::env::var("WATCH_DECODE_ARM") {
        run_one_arm(&spec);
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
