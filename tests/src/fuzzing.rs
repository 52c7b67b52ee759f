//! The bodies of the `fuzz/` targets, and their seed corpora built from the
//! fixtures. The cargo-fuzz targets call these functions; so does an
//! ordinary test (`tests/fuzz_seeds.rs`), which replays every seed, so CI
//! keeps the targets honest without running a fuzzer.
//!
//! Each watch target checks more than "no panic": it decodes the same body
//! in one piece and in chunks whose sizes the input's first byte chooses,
//! and asserts that both yield the same events (and the same kind of error
//! at the same point). `cbor_decode` checks that whatever decodes as a
//! `serde_json::Value` re-encodes and decodes to the same value.

use std::path::Path;

use k8s_openapi::api::core::v1::Pod;
use windlass_proto::codec::cbor;
use windlass_proto::watch::{DecodeError, Framing, Limits, WatchDecoder, WatchEvent};

/// The frame limit the fuzz targets use: small, so inputs can cross it.
pub const FUZZ_MAX_FRAME: usize = 64 << 10;

/// The fuzz targets, by name.
pub const TARGETS: &[&str] = &["watch_json", "watch_protobuf", "watch_cbor", "cbor_decode"];

/// Runs one target's body on `data`.
///
/// # Panics
///
/// When the property the target checks does not hold, or for an unknown target name.
pub fn run(target: &str, data: &[u8]) {
    match target {
        "watch_json" => watch_json(data),
        "watch_protobuf" => watch_protobuf(data),
        "watch_cbor" => watch_cbor(data),
        "cbor_decode" => cbor_decode(data),
        other => panic!("no fuzz target {other:?}"),
    }
}

/// `watch_json`: a JSON watch stream decodes the same in any chunking.
pub fn watch_json(data: &[u8]) {
    split_invariance(Framing::JsonStream, data);
}

/// `watch_protobuf`: a protobuf watch stream decodes the same in any chunking.
pub fn watch_protobuf(data: &[u8]) {
    split_invariance(Framing::LengthPrefixed, data);
}

/// `watch_cbor`: a CBOR sequence decodes the same in any chunking.
pub fn watch_cbor(data: &[u8]) {
    split_invariance(Framing::CborSequence, data);
}

/// `cbor_decode`: arbitrary bytes never panic the CBOR decoder (as a Pod and
/// as a `serde_json::Value`), and a value that decodes round-trips through
/// the encoder.
///
/// # Panics
///
/// When a decoded value does not survive encode → decode.
pub fn cbor_decode(data: &[u8]) {
    let _ = cbor::decode::<Pod>(data);
    if let Ok(value) = cbor::decode::<serde_json::Value>(data) {
        let bytes = cbor::encode(&value).expect("a decoded value encodes");
        let back: serde_json::Value = cbor::decode(&bytes).expect("an encoded value decodes");
        assert_eq!(back, value, "CBOR round trip changed the value");
    }
}

/// What a decoder produced, comparable across chunkings: events in full,
/// errors by kind only (a too-large frame is noticed after as many bytes as
/// the chunking happened to deliver).
pub fn decode_all(framing: Framing, body: &[u8], chunk_sizes: &[usize]) -> Vec<String> {
    let mut decoder = WatchDecoder::<Pod>::new(
        framing,
        Limits {
            max_frame: FUZZ_MAX_FRAME,
        },
    );
    let mut out = Vec::new();
    let mut rest = body;
    let mut sizes = chunk_sizes.iter().cycle();
    while !rest.is_empty() {
        let size = (*sizes.next().unwrap_or(&usize::MAX)).clamp(1, rest.len());
        let (chunk, tail) = rest.split_at(size);
        rest = tail;
        if decoder.push(chunk).is_err() {
            break;
        }
        drain(&mut decoder, &mut out);
    }
    if let Err(e) = decoder.finish() {
        out.push(error_kind(&e));
    }
    drain(&mut decoder, &mut out);
    out
}

fn drain(decoder: &mut WatchDecoder<Pod>, out: &mut Vec<String>) {
    while let Some(event) = decoder.poll_event() {
        out.push(match event {
            Ok(event) => summary(&event),
            Err(e) => error_kind(&e),
        });
    }
}

fn summary(event: &WatchEvent<Pod>) -> String {
    format!("{event:?}")
}

/// An error's variant name.
pub fn error_kind(error: &DecodeError) -> String {
    let debug = format!("{error:?}");
    let end = debug
        .find(|c: char| !c.is_alphanumeric())
        .unwrap_or(debug.len());
    format!("error {}", &debug[..end])
}

fn split_invariance(framing: Framing, data: &[u8]) {
    let Some((&seed, body)) = data.split_first() else {
        return;
    };
    let whole = decode_all(framing, body, &[usize::MAX]);
    let sizes: Vec<usize> = (0..8)
        .map(|i| 1 + (usize::from(seed.rotate_left(i)) * 31 + i as usize) % 97)
        .collect();
    let chunked = decode_all(framing, body, &sizes);
    assert_eq!(whole, chunked, "chunk sizes {sizes:?} changed the events");
}

/// The seed corpus of a target, built from the fixtures folder (each seed
/// starts with the byte that picks chunk sizes, for the watch targets).
pub fn seeds(target: &str, fixtures: &Path) -> Vec<Vec<u8>> {
    let read = |relative: &str| {
        std::fs::read(fixtures.join(relative)).unwrap_or_else(|e| panic!("fixture {relative}: {e}"))
    };
    let with_split = |bodies: Vec<Vec<u8>>| -> Vec<Vec<u8>> {
        bodies
            .into_iter()
            .enumerate()
            .map(|(i, body)| {
                let mut seed = vec![(i * 37 + 5) as u8];
                seed.extend(body);
                seed
            })
            .collect()
    };
    match target {
        "watch_json" => with_split(json_watch_bodies(fixtures)),
        "watch_protobuf" => {
            with_split(vec![read("synthetic/protobuf-watch-pods.stream-watch.bin")])
        }
        "watch_cbor" => with_split(vec![read(
            "synthetic/cbor-seq-watchlist-pods.from-v1.36-recording.cborseq",
        )]),
        "cbor_decode" => vec![
            read("synthetic/cbor-core.v1.Pod.from-HEAD-json.cbor"),
            cbor::encode(&serde_json::json!({"a": [1, -1, 1.5, "x", null, true]}))
                .expect("encodes"),
        ],
        other => panic!("no fuzz target {other:?}"),
    }
}

/// Every recorded JSON watch body: the derived `.jsonl` files, the watch
/// exchanges of the k8s-openapi replays, and client-go's raw chunked
/// `events` response (de-chunked).
pub fn json_watch_bodies(fixtures: &Path) -> Vec<Vec<u8>> {
    let mut bodies = Vec::new();
    let derived = fixtures.join("recorded/derived-from-k8s-openapi-replays");
    for version in ["v1-32", "v1-36"] {
        for name in [
            "watch-pods.jsonl",
            "watchlist-pods-sendInitialEvents.jsonl",
            "watch-customresource.jsonl",
        ] {
            bodies.push(std::fs::read(derived.join(version).join(name)).expect("jsonl fixture"));
        }
    }
    for exchange in replay_exchanges(fixtures) {
        if exchange.url.contains("watch=true") {
            bodies.push(exchange.body.into_bytes());
        }
    }
    let events =
        fixtures.join("recorded/client-go-dynamic-testdata/TestGoldenResponse/responses/events");
    let raw = std::fs::read(events).expect("client-go events fixture");
    bodies.push(dechunk(&raw).into_iter().flatten().collect());
    bodies
}

/// One recorded HTTP exchange of the k8s-openapi test replays.
#[derive(Debug)]
pub struct ReplayExchange {
    /// The replay file it came from.
    pub file: String,
    /// The request URL.
    pub url: String,
    /// The response status.
    pub status: u16,
    /// The response body.
    pub body: String,
}

/// Every exchange of every replay file, v1-32 and v1-36.
pub fn replay_exchanges(fixtures: &Path) -> Vec<ReplayExchange> {
    let mut out = Vec::new();
    for version in ["v1-32", "v1-36"] {
        let dir = fixtures
            .join("recorded/k8s-openapi-test-replays")
            .join(version);
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.expect("dir entry").path())
            .collect();
        files.sort();
        for file in files {
            let text = std::fs::read_to_string(&file).expect("replay file");
            let exchanges: Vec<serde_json::Value> =
                serde_json::from_str(&text).expect("replay file is a JSON array");
            for exchange in exchanges {
                out.push(ReplayExchange {
                    file: format!("{version}/{}", file.file_name().unwrap().to_string_lossy()),
                    url: exchange["request_url"].as_str().unwrap_or("").to_owned(),
                    status: exchange["response_status_code"].as_u64().unwrap_or(0) as u16,
                    body: exchange["response_body"].as_str().unwrap_or("").to_owned(),
                });
            }
        }
    }
    out
}

/// The chunks of a raw HTTP/1.1 response with `Transfer-Encoding: chunked`,
/// exactly as the server framed them.
///
/// # Panics
///
/// On a response that is not well-formed chunked HTTP/1.1 (fixtures only).
pub fn dechunk(raw: &[u8]) -> Vec<Vec<u8>> {
    let header_end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("end of headers")
        + 4;
    let mut rest = &raw[header_end..];
    let mut chunks = Vec::new();
    loop {
        let line_end = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("chunk size line");
        let size = std::str::from_utf8(&rest[..line_end]).expect("chunk size is ASCII");
        let size = usize::from_str_radix(size.trim(), 16).expect("hex chunk size");
        rest = &rest[line_end + 2..];
        if size == 0 {
            return chunks;
        }
        chunks.push(rest[..size].to_vec());
        rest = &rest[size + 2..];
    }
}
