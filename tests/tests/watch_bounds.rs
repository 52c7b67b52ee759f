//! Hostile and malformed watch bodies: each bound of the decoders is an
//! error value with context, never a panic or an allocation of the
//! attacker's size; after an error a decoder stays failed.

use k8s_openapi::api::core::v1::Pod;
use windlass_proto::codec::cbor;
use windlass_proto::watch::{DecodeError, Framing, Limits, WatchDecoder, WatchEvent};

fn decoder(framing: Framing, max_frame: usize) -> WatchDecoder<Pod> {
    WatchDecoder::new(framing, Limits { max_frame })
}

fn drain(d: &mut WatchDecoder<Pod>) -> Vec<Result<WatchEvent<Pod>, DecodeError>> {
    std::iter::from_fn(|| d.poll_event()).collect()
}

fn json_event(event_type: &str, name: &str, rv: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "type": event_type,
        "object": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "resourceVersion": rv}},
    }))
    .unwrap()
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

fn cbor_event(event_type: &str, name: &str) -> Vec<u8> {
    #[derive(serde::Serialize)]
    struct Event<'a> {
        r#type: &'a str,
        object: serde_json::Value,
    }
    cbor::encode(&Event {
        r#type: event_type,
        object: serde_json::json!({"metadata": {"name": name, "resourceVersion": "5"}}),
    })
    .unwrap()
}

#[test]
fn watch_json_frame_too_large_is_an_error_before_buffering_it() {
    let mut d = decoder(Framing::JsonStream, 1024);
    d.push(&json_event("ADDED", "a", "1")).unwrap();
    // An object that never closes: the error comes once 1 KiB is scanned.
    d.push(b"{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"")
        .unwrap();
    for _ in 0..100 {
        if d.push(&[b'x'; 64]).is_err() {
            break;
        }
    }
    let events = drain(&mut d);
    assert!(matches!(events[0], Ok(WatchEvent::Added(_))));
    assert!(
        matches!(events[1], Err(DecodeError::FrameTooLarge { len, limit: 1024 }) if len > 1024 && len < 1024 + 128),
        "{:?}",
        events[1]
    );
    assert!(d.is_failed());
    assert!(matches!(d.push(b"{}"), Err(DecodeError::Failed)));
}

#[test]
fn watch_json_complete_frame_over_the_limit_in_one_chunk_is_refused() {
    let mut d = decoder(Framing::JsonStream, 64);
    d.push(&json_event("ADDED", &"n".repeat(100), "1")).unwrap();
    assert!(matches!(
        drain(&mut d)[0],
        Err(DecodeError::FrameTooLarge { limit: 64, .. })
    ));
}

#[test]
fn watch_protobuf_4gib_length_prefix_is_refused_immediately() {
    let mut d = decoder(Framing::LengthPrefixed, Limits::DEFAULT_MAX_FRAME);
    d.push(&[0xff, 0xff, 0xff, 0xff, 0x0a]).unwrap();
    let events = drain(&mut d);
    assert!(matches!(
        events[..],
        [Err(DecodeError::FrameTooLarge {
            len: 0xffff_ffff,
            limit: Limits::DEFAULT_MAX_FRAME
        })]
    ));
    // The limit is configurable.
    let mut d = decoder(Framing::LengthPrefixed, 10);
    d.push(&[0, 0, 0, 11]).unwrap();
    assert!(matches!(
        drain(&mut d)[..],
        [Err(DecodeError::FrameTooLarge { len: 11, limit: 10 })]
    ));
}

#[test]
fn watch_cbor_4gib_string_head_is_refused_immediately() {
    let mut d = decoder(Framing::CborSequence, Limits::DEFAULT_MAX_FRAME);
    // 55799({"object": h'<4 GiB>'...
    d.push(&[0xd9, 0xd9, 0xf7, 0xa1, 0x46]).unwrap();
    d.push(b"object").unwrap();
    d.push(&[0x5b, 0, 0, 0, 1, 0, 0, 0, 0]).unwrap();
    assert!(matches!(
        drain(&mut d)[..],
        [Err(DecodeError::FrameTooLarge { len, .. })] if len > 4 << 30
    ));
    // A CBOR array claiming 2^64-1 elements only grows as elements arrive.
    let mut d = decoder(Framing::CborSequence, 1024);
    d.push(&[0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff])
        .unwrap();
    for _ in 0..40 {
        if d.push(&[0x00; 64]).is_err() {
            break;
        }
    }
    assert!(matches!(
        drain(&mut d)[..],
        [Err(DecodeError::FrameTooLarge { limit: 1024, .. })]
    ));
}

#[test]
fn watch_truncated_at_eof_is_an_error_in_every_framing() {
    let json = json_event("ADDED", "a", "1");
    let pb = protobuf_frame(b"ADDED", &json);
    let cb = cbor_event("ADDED", "a");
    for (framing, body) in [
        (Framing::JsonStream, json),
        (Framing::LengthPrefixed, pb),
        (Framing::CborSequence, cb),
    ] {
        for cut in [1, 3, body.len() - 1] {
            let mut d = decoder(framing, 1 << 20);
            d.push(&body).unwrap();
            d.push(&body[..cut]).unwrap();
            let finished = d.finish();
            assert!(
                matches!(finished, Err(DecodeError::TruncatedAtEof { buffered }) if buffered == cut),
                "{framing:?} cut at {cut}: {finished:?}"
            );
            // The complete event before the cut is still delivered.
            assert!(
                matches!(drain(&mut d)[..], [Ok(WatchEvent::Added(_))]),
                "{framing:?}"
            );
        }
    }
}

#[test]
fn watch_clean_end_between_events_and_trailing_whitespace_is_not_an_error() {
    let mut d = decoder(Framing::JsonStream, 1 << 20);
    d.push(&json_event("ADDED", "a", "1")).unwrap();
    d.push(b" \n\t\r\n ").unwrap();
    d.finish().unwrap();
    assert_eq!(drain(&mut d).len(), 1);
}

#[test]
fn watch_invalid_utf8_is_an_error_in_every_framing() {
    // JSON: a name with a lone 0xff byte.
    let mut body = json_event("ADDED", "ab", "1");
    let at = body.windows(2).position(|w| w == b"ab").unwrap();
    body[at] = 0xff;
    let mut d = decoder(Framing::JsonStream, 1 << 20);
    d.push(&body).unwrap();
    assert!(
        matches!(drain(&mut d)[..], [Err(DecodeError::InvalidUtf8 { frame: 0, offset })] if offset == at)
    );

    // Protobuf: the event type.
    let mut d = decoder(Framing::LengthPrefixed, 1 << 20);
    d.push(&protobuf_frame(b"ADD\xffED", b"{}")).unwrap();
    assert!(matches!(
        drain(&mut d)[..],
        [Err(DecodeError::InvalidUtf8 {
            frame: 0,
            offset: 3
        })]
    ));

    // CBOR: a text string (major type 3) with invalid UTF-8.
    let mut d = decoder(Framing::CborSequence, 1 << 20);
    d.push(&[0xa1, 0x64, b't', b'y', b'p', b'e', 0x62, 0xc3, 0x28])
        .unwrap();
    assert!(matches!(
        drain(&mut d)[..],
        [Err(DecodeError::InvalidUtf8 { frame: 0, .. })]
    ));
}

#[test]
fn watch_unknown_event_type_is_an_error_in_every_framing() {
    let json = json_event("RESYNC", "a", "1");
    let pb = protobuf_frame(b"RESYNC", &json);
    let cb = cbor_event("RESYNC", "a");
    for (framing, body) in [
        (Framing::JsonStream, json),
        (Framing::LengthPrefixed, pb),
        (Framing::CborSequence, cb),
    ] {
        let mut d = decoder(framing, 1 << 20);
        d.push(&body).unwrap();
        let events = drain(&mut d);
        assert!(
            matches!(&events[..], [Err(DecodeError::UnknownEventType { frame: 0, event_type })] if event_type == "RESYNC"),
            "{framing:?}: {events:?}"
        );
    }
}

#[test]
fn watch_cbor_sequence_is_poisoned_after_a_malformed_item() {
    let mut body = cbor_event("ADDED", "a");
    body.push(0xff); // a stray break
    body.extend(cbor_event("ADDED", "b"));
    let mut d = decoder(Framing::CborSequence, 1 << 20);
    d.push(&body).unwrap();
    let events = drain(&mut d);
    assert_eq!(events.len(), 2, "{events:?}");
    assert!(matches!(events[0], Ok(WatchEvent::Added(_))));
    assert!(
        matches!(events[1], Err(DecodeError::Framing { offset, .. }) if offset == body.len() as u64 / 2)
    );
    assert!(matches!(
        d.push(&cbor_event("ADDED", "c")),
        Err(DecodeError::Failed)
    ));
    assert!(d.poll_event().is_none());
    assert!(matches!(d.finish(), Err(DecodeError::Failed)));
}

#[test]
fn watch_malformed_events_are_errors_with_context() {
    for body in [
        &b"[1,2]"[..],
        b"{\"object\":{}}",
        b"{\"type\":\"ADDED\"}",
        b"{\"type\":7,\"object\":{}}",
        b"{\"type\":\"ADDED\",\"object\":{\"metadata\":7}}",
        b"{\"type\":\"ADDED\" \"object\":{}}",
    ] {
        let mut d = decoder(Framing::JsonStream, 1 << 20);
        d.push(body).unwrap();
        let events = drain(&mut d);
        assert!(
            matches!(events[..], [Err(_)]),
            "{}",
            String::from_utf8_lossy(body)
        );
        assert!(d.is_failed());
    }
}

#[test]
fn watch_bookmark_and_error_decode_leniently_where_a_typed_pod_would_not() {
    // A real bookmark (v1.36) carries spec.containers null; only metadata is
    // read, so even a spec no Pod could hold ("containers": 5) is fine.
    let bookmark = br#"{"type":"BOOKMARK","object":{"kind":"Pod","apiVersion":"v1","metadata":{"resourceVersion":"550","creationTimestamp":null,"annotations":{"k8s.io/initial-events-end":"true"}},"spec":{"containers":5},"status":{}}}"#;
    let object = serde_json::from_slice::<serde_json::Value>(bookmark).unwrap()["object"].clone();
    assert!(serde_json::from_value::<Pod>(object).is_err());
    let error = br#"{"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"too old resource version: 1 (3473)","reason":"Gone","code":410}}"#;
    let mut d = decoder(Framing::JsonStream, 1 << 20);
    d.push(bookmark).unwrap();
    d.push(error).unwrap();
    let events = drain(&mut d);
    let [Ok(WatchEvent::Bookmark(b)), Ok(WatchEvent::Error(status))] = &events[..] else {
        panic!("{events:?}")
    };
    assert_eq!(b.resource_version, "550");
    assert!(b.is_initial_events_end());
    assert_eq!(status.code, Some(410));
    assert_eq!(status.reason.as_deref(), Some("Gone"));
    assert_eq!(
        status.message.as_deref(),
        Some("too old resource version: 1 (3473)")
    );
}

#[test]
fn watch_decoder_is_chosen_by_content_type() {
    let pick = |ct: &str| {
        WatchDecoder::<Pod>::for_content_type(ct, Limits::default()).map(|d| d.framing())
    };
    assert_eq!(pick("application/json").unwrap(), Framing::JsonStream);
    assert_eq!(
        pick("application/json; charset=utf-8").unwrap(),
        Framing::JsonStream
    );
    assert_eq!(
        pick("application/vnd.kubernetes.protobuf;stream=watch").unwrap(),
        Framing::LengthPrefixed
    );
    assert_eq!(pick("application/cbor-seq").unwrap(), Framing::CborSequence);
    // client-go refuses a stream labelled plain application/cbor.
    assert!(matches!(
        pick("application/cbor"),
        Err(DecodeError::UnsupportedContentType { .. })
    ));
    assert!(matches!(
        pick("text/plain"),
        Err(DecodeError::UnsupportedContentType { .. })
    ));
}

#[test]
fn watch_json_accepts_any_whitespace_and_no_newlines() {
    let mut body = Vec::new();
    for (i, sep) in ["", " ", "\n", "\t\r\n  ", ""].iter().enumerate() {
        body.extend_from_slice(sep.as_bytes());
        body.extend(json_event("MODIFIED", &format!("p{i}"), &i.to_string()));
    }
    // Braces and escaped quotes inside strings do not end a frame.
    body.extend(json_event("ADDED", "we}ird\"{[", "9"));
    let mut d = decoder(Framing::JsonStream, 1 << 20);
    d.push(&body).unwrap();
    d.finish().unwrap();
    let names: Vec<String> = drain(&mut d)
        .into_iter()
        .map(|e| match e.unwrap() {
            WatchEvent::Added(p) | WatchEvent::Modified(p) => p.metadata.name.unwrap(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(names, ["p0", "p1", "p2", "p3", "p4", "we}ird\"{["]);
}

/// A 1 MiB event fed one byte at a time: each framing keeps its scan cursor,
/// so this is linear (a decoder that rescanned from the frame's start would
/// do ~5·10^11 steps here and never finish).
#[test]
fn watch_large_frame_in_one_byte_chunks_decodes_in_linear_time() {
    let name = "x".repeat(1 << 20);
    let json = json_event("ADDED", &name, "1");
    let object = serde_json::json!({"metadata": {"name": name, "resourceVersion": "1"}});
    let pb = protobuf_frame(b"ADDED", &serde_json::to_vec(&object).unwrap());
    let cb = cbor_event("ADDED", &name);
    for (framing, body) in [
        (Framing::JsonStream, json),
        (Framing::LengthPrefixed, pb),
        (Framing::CborSequence, cb),
    ] {
        let start = std::time::Instant::now();
        let mut d = decoder(framing, Limits::DEFAULT_MAX_FRAME);
        for byte in &body {
            d.push(std::slice::from_ref(byte)).unwrap();
        }
        d.finish().unwrap();
        let events = drain(&mut d);
        let [Ok(WatchEvent::Added(pod))] = &events[..] else {
            panic!("{framing:?}: {events:?}")
        };
        assert_eq!(pod.metadata.name.as_ref().map(String::len), Some(1 << 20));
        eprintln!(
            "{framing:?}: {} bytes byte by byte in {:?}",
            body.len(),
            start.elapsed()
        );
    }
}

/// A string head longer than a tiny frame limit, claiming 2^64-1 bytes: the
/// size arithmetic saturates instead of overflowing.
#[test]
fn watch_cbor_huge_string_head_over_a_tiny_limit_is_refused() {
    let mut d = decoder(Framing::CborSequence, 3);
    d.push(&[0x5b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff])
        .unwrap();
    assert!(matches!(
        drain(&mut d)[..],
        [Err(DecodeError::FrameTooLarge {
            len: u64::MAX,
            limit: 3
        })]
    ));
}

#[test]
fn watch_event_queue_is_bounded_when_pushing_a_whole_body_without_polling() {
    // 5,000 protobuf frames of 20-odd bytes, each a whole default Pod once
    // decoded (the RawExtension holds JSON `{}`, as core.v1 watch events may).
    let body: Vec<u8> = (0..5000)
        .flat_map(|_| protobuf_frame(b"ADDED", b"{}"))
        .collect();
    for framing_body in [
        (Framing::LengthPrefixed, body),
        (
            Framing::JsonStream,
            (0..5000)
                .flat_map(|i| json_event("ADDED", &format!("p{i}"), "1"))
                .collect(),
        ),
        (
            Framing::CborSequence,
            (0..5000)
                .flat_map(|i| cbor_event("ADDED", &format!("p{i}")))
                .collect(),
        ),
    ] {
        let (framing, body) = framing_body;
        let mut d = WatchDecoder::<Pod>::new(framing, Limits::default()).with_max_queued_events(16);
        d.push(&body).unwrap();
        if d.is_failed() {
            let events = drain(&mut d);
            let last: Vec<_> = events.iter().rev().take(2).collect();
            panic!(
                "{framing:?}: failed after {} events: {last:?}",
                events.len()
            );
        }
        // The queue holds 16 events; the rest of the body waits undecoded.
        assert!(
            format!("{d:?}").contains("queued: 16,"),
            "{framing:?}: {d:?}"
        );
        d.finish().unwrap();
        let events = drain(&mut d);
        assert_eq!(events.len(), 5000, "{framing:?}");
        assert!(events.iter().all(|e| matches!(e, Ok(WatchEvent::Added(_)))));
        assert!(!d.is_failed());
    }
}

#[test]
fn watch_pushing_without_polling_meets_backpressure_not_growth() {
    let event = json_event("MODIFIED", "web-0", "7");
    let mut d = WatchDecoder::<Pod>::new(Framing::JsonStream, Limits { max_frame: 1024 })
        .with_max_queued_events(4);
    let mut pushed = 0;
    let refused = loop {
        match d.push(&event) {
            Ok(()) => pushed += 1,
            Err(e) => break e,
        }
        assert!(pushed < 1000, "push never pushed back");
    };
    let DecodeError::Backlog {
        queued,
        buffered,
        limit,
    } = refused
    else {
        panic!("expected backpressure, got {refused:?}");
    };
    assert_eq!((queued, limit), (4, 1024));
    // The backlog stops within one chunk of the limit.
    assert!(
        buffered >= 1024 && buffered < 1024 + event.len(),
        "{buffered}"
    );
    assert!(!d.is_failed(), "backpressure does not fail the decoder");
    // Poll everything, then the refused chunk goes in.
    let events = drain(&mut d);
    assert_eq!(events.len(), pushed);
    d.push(&event).unwrap();
    d.finish().unwrap();
    let rest = drain(&mut d);
    assert!(matches!(&rest[..], [Ok(WatchEvent::Modified(_))]));
}

#[test]
fn watch_truncation_behind_a_full_queue_comes_after_its_events() {
    let mut body: Vec<u8> = (0..10)
        .flat_map(|i| json_event("ADDED", &format!("p{i}"), "1"))
        .collect();
    body.extend_from_slice(br#"{"type":"ADDED","obj"#);
    let mut d =
        WatchDecoder::<Pod>::new(Framing::JsonStream, Limits::default()).with_max_queued_events(3);
    d.push(&body).unwrap();
    // Frames still wait behind the queue: the end-of-body check waits too.
    d.finish().unwrap();
    let events = drain(&mut d);
    assert_eq!(events.len(), 11);
    assert!(events[..10].iter().all(Result::is_ok));
    assert!(matches!(
        events[10],
        Err(DecodeError::TruncatedAtEof { buffered: 20 })
    ));
    assert!(d.is_failed());
}
