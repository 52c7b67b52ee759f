//! Lists and watches in each encoding: the list decoders of every format
//! agree at every chunking and reject malformed bodies with an error, and
//! the informer lists and watches through protobuf and CBOR as it does
//! through JSON.

use std::collections::BTreeMap;
use std::time::Instant;

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ListMeta;
use proptest::prelude::*;
use serde_json::json;

use crate::codec::{Format, cbor, protobuf};
use crate::informer::wire::{
    CborListDecoder, CodecLimits, DecodeError, JsonListDecoder, ListDecoder, ProtobufListDecoder,
    StandardCodec,
};
use crate::informer::{Action, InformerConfig, Notification, RequestId, SharedInformer};
use crate::object::Object;
use crate::request::Builder;

fn config_map(name: &str, rv: &str) -> ConfigMap {
    let mut c = ConfigMap::default();
    c.metadata.name = Some(name.into());
    c.metadata.namespace = Some("ns".into());
    c.metadata.resource_version = Some(rv.into());
    c.data = Some(BTreeMap::from([(
        "k".to_owned(),
        format!("value of {name}"),
    )]));
    c
}

fn list(rv: &str, cont: Option<&str>, items: Vec<ConfigMap>) -> k8s_openapi::List<ConfigMap> {
    k8s_openapi::List {
        items,
        metadata: ListMeta {
            resource_version: Some(rv.into()),
            continue_: cont.map(str::to_owned),
            ..ListMeta::default()
        },
    }
}

/// A list body in `format`, and its `Content-Type`.
fn list_body(format: Format, list: &k8s_openapi::List<ConfigMap>) -> (Vec<u8>, &'static str) {
    match format {
        Format::Json => (serde_json::to_vec(list).unwrap(), "application/json"),
        Format::Protobuf => (
            protobuf::encode(list).unwrap(),
            "application/vnd.kubernetes.protobuf",
        ),
        Format::Cbor => (cbor::encode(list).unwrap(), "application/cbor"),
    }
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_bytes(out: &mut Vec<u8>, tag: u64, bytes: &[u8]) {
    put_varint(out, tag << 3 | 2);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// A watch stream of `events` in `format`, and its `Content-Type`.
fn watch_body(format: Format, events: &[(&str, ConfigMap)]) -> (Vec<u8>, &'static str) {
    let mut out = Vec::new();
    for (event_type, object) in events {
        match format {
            Format::Json => {
                serde_json::to_writer(&mut out, &json!({"type": event_type, "object": object}))
                    .unwrap();
                out.push(b'\n');
            }
            Format::Protobuf => {
                let mut extension = Vec::new();
                put_bytes(&mut extension, 1, &protobuf::encode(object).unwrap());
                let mut event = Vec::new();
                put_bytes(&mut event, 1, event_type.as_bytes());
                put_bytes(&mut event, 2, &extension);
                out.extend_from_slice(&(event.len() as u32).to_be_bytes());
                out.extend_from_slice(&event);
            }
            Format::Cbor => {
                let object = serde_json::to_value(object).unwrap();
                out.extend(cbor::encode(&json!({"type": event_type, "object": object})).unwrap());
            }
        }
    }
    let content_type = match format {
        Format::Json => "application/json",
        Format::Protobuf => "application/vnd.kubernetes.protobuf;stream=watch",
        Format::Cbor => "application/cbor-seq",
    };
    (out, content_type)
}

fn decoder(format: Format, limits: CodecLimits) -> Box<dyn ListDecoder<ConfigMap>> {
    match format {
        Format::Json => Box::new(JsonListDecoder::new(limits)),
        Format::Protobuf => Box::new(ProtobufListDecoder::new(limits)),
        Format::Cbor => Box::new(CborListDecoder::new(limits)),
    }
}

type Decoded = (Vec<(String, String)>, String, Option<String>);

/// Decodes `body` fed in pieces of `step` bytes.
fn decode(format: Format, body: &[u8], step: usize) -> Result<Decoded, DecodeError> {
    let mut d = decoder(format, CodecLimits::default());
    let mut items = Vec::new();
    let mut take = |d: &mut Box<dyn ListDecoder<ConfigMap>>| {
        items.extend(std::iter::from_fn(|| d.poll_item()).map(|o| {
            (
                o.key().to_string(),
                o.resource_version().unwrap_or("").to_owned(),
            )
        }))
    };
    for piece in body.chunks(step.max(1)) {
        d.push(piece)?;
        take(&mut d);
    }
    let meta = d.finish()?;
    take(&mut d);
    Ok((items, meta.resource_version, meta.continue_token))
}

const FORMATS: [Format; 3] = [Format::Json, Format::Protobuf, Format::Cbor];

#[test]
fn reflector_list_decoders_of_every_format_agree_at_every_chunking() {
    let items: Vec<ConfigMap> = (0..20)
        .map(|i| config_map(&format!("cm{i}"), &(100 + i).to_string()))
        .collect();
    let want: Vec<(String, String)> = items
        .iter()
        .map(|o| {
            (
                o.key().to_string(),
                o.resource_version().unwrap().to_owned(),
            )
        })
        .collect();
    for (cont, empty) in [(Some("next-page"), false), (None, false), (None, true)] {
        let l = list("77", cont, if empty { Vec::new() } else { items.clone() });
        for format in FORMATS {
            let (body, _) = list_body(format, &l);
            for step in [1, 3, 64, 1000, body.len()] {
                let (got, rv, token) = decode(format, &body, step)
                    .unwrap_or_else(|e| panic!("{format:?} in {step}-byte pieces: {e}"));
                let want = if empty { &[][..] } else { &want[..] };
                assert_eq!(got, want, "{format:?} in {step}-byte pieces");
                assert_eq!(rv, "77", "{format:?}");
                assert_eq!(token.as_deref(), cont, "{format:?}");
            }
        }
    }
}

#[test]
fn reflector_binary_list_decoders_yield_items_before_the_body_ends() {
    let l = list(
        "5",
        None,
        (0..50)
            .map(|i| config_map(&format!("cm{i}"), "1"))
            .collect(),
    );
    for format in [Format::Protobuf, Format::Cbor] {
        let (body, _) = list_body(format, &l);
        let mut d = decoder(format, CodecLimits::default());
        d.push(&body[..body.len() / 2]).unwrap();
        let early = std::iter::from_fn(|| d.poll_item()).count();
        assert!(
            early > 10,
            "{format:?}: {early} items out after half the body"
        );
        d.push(&body[body.len() / 2..]).unwrap();
        d.finish().unwrap();
        assert_eq!(
            early + std::iter::from_fn(|| d.poll_item()).count(),
            50,
            "{format:?}"
        );
    }
}

#[test]
fn reflector_binary_list_decoders_reject_malformed_bodies() {
    let l = list("5", None, vec![config_map("a", "1"), config_map("b", "2")]);
    for format in [Format::Protobuf, Format::Cbor] {
        let (body, _) = list_body(format, &l);
        // Cut anywhere before the end of the list: an error at finish (or
        // earlier), never a panic. (Protobuf's envelope ends with the empty
        // contentEncoding and contentType, 4 bytes a body may leave out.)
        let ends_at = match format {
            Format::Protobuf => body.len() - 4,
            _ => body.len(),
        };
        for cut in 0..ends_at {
            assert!(
                decode(format, &body[..cut], 7).is_err(),
                "{format:?} cut at {cut} of {}",
                body.len()
            );
        }
        // An item larger than the frame limit is refused before it is buffered.
        let mut d = decoder(
            format,
            CodecLimits {
                max_frame: 16,
                ..CodecLimits::default()
            },
        );
        let err = d
            .push(&body)
            .and_then(|()| d.finish().map(drop))
            .unwrap_err();
        assert!(
            matches!(err, DecodeError::TooLarge { .. }),
            "{format:?}: {err}"
        );
        // So is a body over the body limit.
        let mut d = decoder(
            format,
            CodecLimits {
                max_list_body: 10,
                ..CodecLimits::default()
            },
        );
        assert!(matches!(
            d.push(&body),
            Err(DecodeError::TooLarge {
                what: "list body",
                ..
            })
        ));
    }
    // Not the protobuf magic; not a CBOR map; a list of the wrong kind.
    assert!(decode(Format::Protobuf, b"{\"items\":[]}", 4).is_err());
    assert!(decode(Format::Cbor, &cbor::encode(&json!([1, 2])).unwrap(), 4).is_err());
    let table = cbor::encode(&json!({"kind": "Table", "items": []})).unwrap();
    assert!(matches!(
        decode(Format::Cbor, &table, 4),
        Err(DecodeError::UnexpectedKind(_))
    ));
    // A protobuf list of no known kind: its items cannot be decoded.
    let mut unknown = b"k8s\0".to_vec();
    let mut type_meta = Vec::new();
    put_bytes(&mut type_meta, 1, b"example.com/v1");
    put_bytes(&mut type_meta, 2, b"WidgetList");
    put_bytes(&mut unknown, 1, &type_meta);
    put_bytes(&mut unknown, 2, b"");
    assert!(decode(Format::Protobuf, &unknown, 4).is_err());
}

proptest! {
    #[test]
    fn reflector_binary_list_decoders_never_panic_on_garbage(
        bytes in proptest::collection::vec(any::<u8>(), 0..200),
        step in 1usize..40,
    ) {
        for format in [Format::Protobuf, Format::Cbor] {
            let mut prefixed = match format {
                Format::Protobuf => b"k8s\0".to_vec(),
                _ => vec![0xd9, 0xd9, 0xf7],
            };
            prefixed.extend_from_slice(&bytes);
            let _ = decode(format, &prefixed, step);
            let _ = decode(format, &bytes, step);
        }
    }
}

fn head(code: u16, content_type: &str) -> http::response::Parts {
    http::Response::builder()
        .status(code)
        .header("content-type", content_type)
        .body(())
        .unwrap()
        .into_parts()
        .0
}

fn next_send(inf: &mut SharedInformer<ConfigMap>) -> (RequestId, http::Request<bytes::Bytes>) {
    loop {
        match inf.poll_action() {
            Some(Action::Send { id, request }) => return (id, request),
            Some(Action::Cancel(_)) => {}
            None => panic!("no request"),
        }
    }
}

fn feed(inf: &mut SharedInformer<ConfigMap>, id: RequestId, ct: &str, body: &[u8], now: Instant) {
    inf.handle_response(id, &head(200, ct), now);
    for piece in body.chunks(5) {
        inf.handle_chunk(id, piece, now);
    }
}

#[test]
fn informer_lists_and_watches_in_each_format() {
    for format in FORMATS {
        let now = Instant::now();
        let mut inf = SharedInformer::new(
            InformerConfig {
                reflector: crate::informer::ReflectorConfig {
                    format: Some(format),
                    page_size: 2,
                    ..Default::default()
                },
                ..InformerConfig::default()
            },
            Box::new(Builder::of::<ConfigMap>(None).unwrap()),
            Box::new(StandardCodec::default()),
        );
        let h = inf.add_handler(None, now).unwrap();
        inf.start(7, now);
        // Two pages.
        let (id, request) = next_send(&mut inf);
        let accept = request.headers()["accept"].to_str().unwrap().to_owned();
        match format {
            Format::Json => assert_eq!(accept, "application/json"),
            Format::Protobuf => assert!(accept.starts_with("application/vnd.kubernetes.protobuf")),
            Format::Cbor => assert!(accept.contains("application/cbor")),
        }
        let page = list(
            "10",
            Some("p2"),
            vec![config_map("a", "1"), config_map("b", "2")],
        );
        let (body, ct) = list_body(format, &page);
        feed(&mut inf, id, ct, &body, now);
        inf.handle_eof(id, now);
        assert!(!inf.has_synced(), "{format:?}: one page of two");
        let (id, request) = next_send(&mut inf);
        assert!(request.uri().query().unwrap().contains("continue=p2"));
        let (body, ct) = list_body(format, &list("10", None, vec![config_map("c", "3")]));
        feed(&mut inf, id, ct, &body, now);
        inf.handle_eof(id, now);
        assert!(inf.has_synced(), "{format:?}");
        assert_eq!(inf.store().len(), 3, "{format:?}");
        // Then the watch, in the same format.
        let (w, request) = next_send(&mut inf);
        assert!(request.uri().query().unwrap().contains("watch=true"));
        assert_eq!(request.headers()["accept"].to_str().unwrap(), accept);
        let (body, ct) = watch_body(
            format,
            &[
                ("MODIFIED", config_map("a", "11")),
                ("DELETED", config_map("b", "12")),
                ("ADDED", config_map("d", "13")),
            ],
        );
        feed(&mut inf, w, ct, &body, now);
        let notes: Vec<String> = std::iter::from_fn(|| inf.poll_notification(h))
            .map(|n| match n {
                Notification::Add { object, .. } => format!("add {}", object.key()),
                Notification::Update { new, .. } => {
                    format!("update {}@{}", new.key(), new.resource_version().unwrap())
                }
                Notification::Delete(d) => format!("delete {}", d.key()),
                Notification::Resync(o) => format!("resync {}", o.key()),
            })
            .collect();
        assert_eq!(
            notes,
            [
                "add ns/a",
                "add ns/b",
                "add ns/c",
                "update ns/a@11",
                "delete ns/b",
                "add ns/d"
            ],
            "{format:?}"
        );
        let stored = inf
            .store()
            .get(&crate::object::ObjectKey::from_raw("ns/a"))
            .unwrap();
        assert_eq!(
            stored.data.as_ref().unwrap()["k"],
            "value of a",
            "{format:?}"
        );
        assert_eq!(inf.poll_error(), None, "{format:?}");
    }
}
