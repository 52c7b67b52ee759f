//! Chunk-split invariance of every watch decoder: the same bytes cut at
//! arbitrary points yield the same events as the whole body at once.

use k8s_openapi::api::core::v1::Pod;
use proptest::collection::vec;
use proptest::prelude::*;
use windlass_proto::codec::cbor;
use windlass_proto::watch::{Framing, Limits, WatchDecoder, WatchEvent};
use windlass_testkit::fixtures;
use windlass_testkit::fuzzing::decode_all;

/// The body cut at `cuts` (positions modulo its length), as chunk sizes.
fn chunk_sizes(len: usize, cuts: &[usize]) -> Vec<usize> {
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (len + 1)).collect();
    points.push(0);
    points.push(len);
    points.sort_unstable();
    points.dedup();
    points.windows(2).map(|w| w[1] - w[0]).collect()
}

fn fixture(relative: &str) -> Option<Vec<u8>> {
    fixtures::path(relative).map(|p| std::fs::read(p).expect("fixture"))
}

fn check_split(framing: Framing, body: &[u8], cuts: &[usize]) -> Result<(), TestCaseError> {
    let whole = decode_all(framing, body, &[usize::MAX]);
    prop_assert!(!whole.iter().any(|e| e.starts_with("error")), "{whole:?}");
    let split = decode_all(framing, body, &chunk_sizes(body.len(), cuts));
    prop_assert_eq!(whole, split);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn watch_json_split_anywhere_yields_same_events(cuts in vec(any::<usize>(), 0..24)) {
        let Some(body) = fixture("recorded/derived-from-k8s-openapi-replays/v1-36/watchlist-pods-sendInitialEvents.jsonl") else { return Ok(()) };
        check_split(Framing::JsonStream, &body, &cuts)?;
    }

    #[test]
    fn watch_protobuf_split_anywhere_yields_same_events(cuts in vec(any::<usize>(), 0..24)) {
        let Some(body) = fixture("synthetic/protobuf-watch-pods.stream-watch.bin") else { return Ok(()) };
        // Only the BOOKMARK and ERROR frames (offsets 2 and 4): Pod objects in
        // protobuf need the protobuf codec.
        let frames = split_frames(&body);
        let body: Vec<u8> = [frames[2].clone(), frames[4].clone()].concat();
        check_split(Framing::LengthPrefixed, &body, &cuts)?;
    }

    #[test]
    fn watch_cbor_split_anywhere_yields_same_events(cuts in vec(any::<usize>(), 0..24)) {
        let Some(body) = fixture("synthetic/cbor-seq-watchlist-pods.from-v1.36-recording.cborseq") else { return Ok(()) };
        check_split(Framing::CborSequence, &body, &cuts)?;
    }

    /// Generated streams, independent of fixtures: events with arbitrary
    /// names, escapes and whitespace, in all three encodings.
    #[test]
    fn watch_generated_streams_split_anywhere_yield_the_sent_events(
        events in vec(("(ADDED|MODIFIED|DELETED|BOOKMARK)", "[a-z{}\\[\\]\"\\\\ é]{0,12}", 0u32..100_000, "[ \t\r\n]{0,3}"), 1..8),
        cuts in vec(any::<usize>(), 0..16),
    ) {
        let mut json = Vec::new();
        let mut protobuf = Vec::new();
        let mut cbor_seq = Vec::new();
        let mut expected = Vec::new();
        for (event_type, name, rv, space) in &events {
            let object = serde_json::json!({"metadata": {"name": name, "resourceVersion": rv.to_string()}});
            let event = serde_json::json!({"type": event_type, "object": object});
            json.extend(serde_json::to_vec(&event).unwrap());
            json.extend(space.as_bytes());
            protobuf.extend(protobuf_frame(event_type.as_bytes(), &serde_json::to_vec(&object).unwrap()));
            cbor_seq.extend(cbor::encode(&event).unwrap());
            expected.push((event_type.clone(), name.clone(), rv.to_string()));
        }
        for (framing, body) in [(Framing::JsonStream, json), (Framing::LengthPrefixed, protobuf), (Framing::CborSequence, cbor_seq)] {
            let sizes = chunk_sizes(body.len(), &cuts);
            let mut decoder = WatchDecoder::<Pod>::new(framing, Limits::default());
            let mut got = Vec::new();
            let mut rest = &body[..];
            for size in sizes {
                let (chunk, tail) = rest.split_at(size);
                rest = tail;
                decoder.push(chunk).unwrap();
                while let Some(event) = decoder.poll_event() {
                    got.push(match event.unwrap() {
                        WatchEvent::Added(p) => ("ADDED".to_string(), p.metadata.name.unwrap(), p.metadata.resource_version.unwrap()),
                        WatchEvent::Modified(p) => ("MODIFIED".to_string(), p.metadata.name.unwrap(), p.metadata.resource_version.unwrap()),
                        WatchEvent::Deleted(p) => ("DELETED".to_string(), p.metadata.name.unwrap(), p.metadata.resource_version.unwrap()),
                        WatchEvent::Bookmark(b) => ("BOOKMARK".to_string(), String::new(), b.resource_version),
                        WatchEvent::Error(s) => panic!("{s:?}"),
                    });
                }
            }
            decoder.finish().unwrap();
            let want: Vec<_> = expected.iter().map(|(t, n, rv)| {
                (t.clone(), if t == "BOOKMARK" { String::new() } else { n.clone() }, rv.clone())
            }).collect();
            prop_assert_eq!(got, want, "{:?}", framing);
        }
    }
}

fn split_frames(body: &[u8]) -> Vec<Vec<u8>> {
    let mut frames = Vec::new();
    let mut rest = body;
    while !rest.is_empty() {
        let len = u32::from_be_bytes(rest[..4].try_into().unwrap()) as usize;
        frames.push(rest[..4 + len].to_vec());
        rest = &rest[4 + len..];
    }
    frames
}

fn protobuf_frame(event_type: &[u8], raw: &[u8]) -> Vec<u8> {
    fn len_field(out: &mut Vec<u8>, tag: u8, bytes: &[u8]) {
        out.push(tag);
        let mut n = bytes.len();
        while n >= 0x80 {
            out.push((n as u8) | 0x80);
            n >>= 7;
        }
        out.push(n as u8);
        out.extend_from_slice(bytes);
    }
    let mut extension = Vec::new();
    len_field(&mut extension, 0x0a, raw);
    let mut event = Vec::new();
    len_field(&mut event, 0x0a, event_type);
    len_field(&mut event, 0x12, &extension);
    let mut frame = (event.len() as u32).to_be_bytes().to_vec();
    frame.extend(event);
    frame
}
