use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::*;

/// The fixtures folder, by the testkit's rule: skipped when absent unless
/// `WINDLASS_REQUIRE_FIXTURES=1`.
fn fixture(name: &str) -> Option<Vec<u8>> {
    let dir = std::env::var_os("WINDLASS_FIXTURES")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures")
        });
    let path = dir.join(name);
    match std::fs::read(&path) {
        Ok(bytes) => Some(bytes),
        Err(e) => {
            assert!(
                std::env::var("WINDLASS_REQUIRE_FIXTURES").as_deref() != Ok("1"),
                "{}: {e}",
                path.display()
            );
            eprintln!("skipped: {}: {e}", path.display());
            None
        }
    }
}

#[test]
fn protobuf_decodes_pod_fixture_like_its_json_twin() {
    let (Some(pb), Some(json)) = (
        fixture("k8s-api-HEAD/core.v1.Pod.pb"),
        fixture("k8s-api-HEAD/core.v1.Pod.json"),
    ) else {
        return;
    };
    let from_pb: Pod = decode(&pb).unwrap();
    let from_json: Pod = serde_json::from_slice(&json).unwrap();
    assert_eq!(
        serde_json::to_value(&from_pb).unwrap(),
        serde_json::to_value(&from_json).unwrap()
    );
}

#[test]
fn protobuf_encode_decode_round_trips_a_pod() {
    let mut pod = Pod::default();
    pod.metadata.name = Some("web-0".into());
    pod.metadata.labels = Some([("app".to_owned(), "web".to_owned())].into());
    pod.metadata.creation_timestamp = Some(Time("2024-05-06T07:08:09Z".parse().unwrap()));
    let body = encode(&pod).unwrap();
    assert!(
        body.ends_with(&[0x1a, 0x00, 0x22, 0x00]),
        "gogo's empty contentEncoding/contentType"
    );
    let back: Pod = decode(&body).unwrap();
    assert_eq!(back, pod);
}

#[test]
fn protobuf_bytes_are_base64_in_json_and_raw_on_the_wire() {
    let cm = ConfigMap {
        binary_data: Some([("k".to_owned(), k8s_openapi::ByteString(vec![0, 1, 2, 255]))].into()),
        ..ConfigMap::default()
    };
    let body = encode(&cm).unwrap();
    assert!(body.windows(4).any(|w| w == [0, 1, 2, 255]));
    let back: ConfigMap = decode(&body).unwrap();
    assert_eq!(back, cm);
}

#[test]
fn protobuf_rejects_body_without_magic() {
    assert!(matches!(
        decode::<Pod>(b"{\"kind\":\"Pod\"}"),
        Err(Error::NoMagic)
    ));
}

#[test]
fn protobuf_unknown_kind_is_an_error_naming_it() {
    let mut body = MAGIC.to_vec();
    let mut tm = Vec::new();
    wire::put_bytes(&mut tm, 1, b"example.com/v1");
    wire::put_bytes(&mut tm, 2, b"Widget");
    wire::put_bytes(&mut body, 1, &tm);
    let err = decode::<serde_json::Value>(&body).unwrap_err();
    assert!(err.to_string().contains("Widget"), "{err}");
}

#[test]
fn protobuf_truncated_pod_is_an_error_never_a_panic() {
    let Some(pb) = fixture("k8s-api-HEAD/core.v1.Pod.pb") else {
        return;
    };
    for len in 0..pb.len() {
        // Every prefix either decodes (a cut between fields) or is an error.
        let _ = decode::<Pod>(&pb[..len]);
        let _ = decode::<serde_json::Value>(&pb[..len]);
    }
    let err = decode::<Pod>(&pb[..pb.len() / 2]).unwrap_err();
    assert!(err.to_string().contains("input ends"), "{err}");
}

/// A `v1 Pod` protobuf body around a hand-built `raw` message.
fn pod_body(raw: &[u8]) -> Vec<u8> {
    let mut body = MAGIC.to_vec();
    let mut tm = Vec::new();
    wire::put_bytes(&mut tm, 1, b"v1");
    wire::put_bytes(&mut tm, 2, b"Pod");
    wire::put_bytes(&mut body, 1, &tm);
    wire::put_bytes(&mut body, 2, raw);
    body
}

#[test]
fn protobuf_unknown_fields_are_skipped() {
    let mut meta = Vec::new();
    wire::put_bytes(&mut meta, 1, b"web-0");
    wire::put_key(&mut meta, 999, wire::WireType::Varint);
    wire::put_varint(&mut meta, 7);
    wire::put_key(&mut meta, 998, wire::WireType::Fixed32);
    meta.extend_from_slice(&[1, 2, 3, 4]);
    let mut pod = Vec::new();
    wire::put_bytes(&mut pod, 1, &meta);
    wire::put_bytes(&mut pod, 77, b"ignored");
    let decoded: Pod = decode(&pod_body(&pod)).unwrap();
    assert_eq!(decoded.metadata.name.as_deref(), Some("web-0"));
}

#[test]
fn protobuf_repeated_fields_gather_when_not_contiguous() {
    // ObjectMeta.finalizers (14) split around name (1).
    let mut meta = Vec::new();
    wire::put_bytes(&mut meta, 14, b"a");
    wire::put_bytes(&mut meta, 1, b"n");
    wire::put_bytes(&mut meta, 14, b"b");
    let mut pod = Vec::new();
    wire::put_bytes(&mut pod, 1, &meta);
    let decoded: Pod = decode(&pod_body(&pod)).unwrap();
    assert_eq!(
        decoded.metadata.finalizers,
        Some(vec!["a".into(), "b".into()])
    );
    assert_eq!(decoded.metadata.name.as_deref(), Some("n"));
}

#[test]
fn protobuf_map_entries_gather_when_not_contiguous() {
    // ObjectMeta.labels (11) split around name (1), inside a Pod whose
    // other messages are contiguous: the whole object is read again.
    let entry = |k: &[u8], v: &[u8]| {
        let mut e = Vec::new();
        wire::put_bytes(&mut e, 1, k);
        wire::put_bytes(&mut e, 2, v);
        e
    };
    let mut meta = Vec::new();
    wire::put_bytes(&mut meta, 11, &entry(b"a", b"1"));
    wire::put_bytes(&mut meta, 1, b"n");
    wire::put_bytes(&mut meta, 11, &entry(b"b", b"2"));
    let mut spec = Vec::new();
    wire::put_bytes(&mut spec, 10, b"node-1");
    let mut pod = Vec::new();
    wire::put_bytes(&mut pod, 1, &meta);
    wire::put_bytes(&mut pod, 2, &spec);
    let decoded: Pod = decode(&pod_body(&pod)).unwrap();
    let labels = decoded.metadata.labels.unwrap();
    assert_eq!(labels.len(), 2);
    assert_eq!(labels["a"], "1");
    assert_eq!(labels["b"], "2");
    assert_eq!(decoded.metadata.name.as_deref(), Some("n"));
    assert_eq!(decoded.spec.unwrap().node_name.as_deref(), Some("node-1"));
}

#[test]
fn protobuf_repeated_fields_decode_at_exact_capacity() {
    // ObjectMeta.finalizers (14): five, then a field after the run. A Vec
    // grown element by element would hold 8.
    let mut meta = Vec::new();
    for f in ["a", "b", "c", "d", "e"] {
        wire::put_bytes(&mut meta, 14, f.as_bytes());
    }
    wire::put_bytes(&mut meta, 15, b"cluster");
    let mut pod = Vec::new();
    wire::put_bytes(&mut pod, 1, &meta);
    let decoded: Pod = decode(&pod_body(&pod)).unwrap();
    let finalizers = decoded.metadata.finalizers.unwrap();
    assert_eq!(finalizers, ["a", "b", "c", "d", "e"]);
    assert_eq!(finalizers.capacity(), 5);
}

#[test]
fn protobuf_packed_and_unpacked_repeated_scalars_decode_alike() {
    // PodSecurityContext.supplementalGroups (4, int64), in PodSpec.securityContext (14).
    let unpacked = {
        let mut sc = Vec::new();
        for g in [1u64, 2, 300] {
            wire::put_key(&mut sc, 4, wire::WireType::Varint);
            wire::put_varint(&mut sc, g);
        }
        sc
    };
    let packed = {
        let mut run = Vec::new();
        for g in [1u64, 2, 300] {
            wire::put_varint(&mut run, g);
        }
        let mut sc = Vec::new();
        wire::put_bytes(&mut sc, 4, &run);
        sc
    };
    let mixed = {
        let mut run = Vec::new();
        wire::put_varint(&mut run, 1);
        wire::put_varint(&mut run, 2);
        let mut sc = Vec::new();
        wire::put_bytes(&mut sc, 4, &run);
        wire::put_key(&mut sc, 4, wire::WireType::Varint);
        wire::put_varint(&mut sc, 300);
        sc
    };
    for sc in [unpacked, packed, mixed] {
        let mut spec = Vec::new();
        wire::put_bytes(&mut spec, 14, &sc);
        let mut pod = Vec::new();
        wire::put_bytes(&mut pod, 2, &spec);
        let decoded: Pod = decode(&pod_body(&pod)).unwrap();
        let groups = decoded
            .spec
            .unwrap()
            .security_context
            .unwrap()
            .supplemental_groups;
        assert_eq!(groups, Some(vec![1, 2, 300]));
        assert_eq!(groups.unwrap().capacity(), 3);
    }
}

#[test]
fn protobuf_wrong_wire_type_names_message_and_field() {
    let mut meta = Vec::new();
    wire::put_key(&mut meta, 1, wire::WireType::Varint); // name is a string
    wire::put_varint(&mut meta, 5);
    let mut pod = Vec::new();
    wire::put_bytes(&mut pod, 1, &meta);
    let err = decode::<Pod>(&pod_body(&pod)).unwrap_err().to_string();
    assert!(err.contains("ObjectMeta.name"), "{err}");
}

#[test]
fn protobuf_nesting_beyond_the_limit_is_an_error() {
    // JSONSchemaProps.not holds another JSONSchemaProps: nest it past the limit.
    let props = table::message_by_name(
        "k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.v1.JSONSchemaProps",
    )
    .unwrap();
    let (tag, _) = props
        .fields
        .iter()
        .find(|f| f.json == "not")
        .map(|f| (f.tag, f))
        .unwrap();
    let mut raw = Vec::new();
    for _ in 0..(MAX_DEPTH + 5) {
        let mut outer = Vec::new();
        wire::put_bytes(&mut outer, tag, &raw);
        raw = outer;
    }
    let err = decode_message::<serde_json::Value>(props.name, &raw).unwrap_err();
    assert!(matches!(err, Error::TooDeep { .. }), "{err}");
}

#[test]
fn protobuf_list_decodes_into_k8s_openapi_list() {
    let mut pod = Pod::default();
    pod.metadata.name = Some("a".into());
    let mut list_raw = Vec::new();
    let mut list_meta = Vec::new();
    wire::put_bytes(&mut list_meta, 2, b"42"); // resourceVersion
    wire::put_bytes(&mut list_raw, 1, &list_meta);
    let pod_raw = encode_message("k8s.io.api.core.v1.Pod", &pod).unwrap();
    wire::put_bytes(&mut list_raw, 2, &pod_raw);
    wire::put_bytes(&mut list_raw, 2, &pod_raw);
    let mut body = MAGIC.to_vec();
    let mut tm = Vec::new();
    wire::put_bytes(&mut tm, 1, b"v1");
    wire::put_bytes(&mut tm, 2, b"PodList");
    wire::put_bytes(&mut body, 1, &tm);
    wire::put_bytes(&mut body, 2, &list_raw);
    let list: k8s_openapi::List<Pod> = decode(&body).unwrap();
    assert_eq!(list.metadata.resource_version.as_deref(), Some("42"));
    assert_eq!(list.items.len(), 2);
    assert_eq!(list.items[0].metadata.name.as_deref(), Some("a"));
    let again = encode(&list).unwrap();
    let back: k8s_openapi::List<Pod> = decode(&again).unwrap();
    assert_eq!(back, list);
}

#[test]
fn protobuf_raw_extension_holding_k8s_body_is_sniffed() {
    // A WatchEvent whose object is a protobuf body, as the server streams it.
    let mut pod = Pod::default();
    pod.metadata.name = Some("p".into());
    let inner = encode(&pod).unwrap();
    let mut raw_ext = Vec::new();
    wire::put_bytes(&mut raw_ext, 1, &inner);
    let mut event = Vec::new();
    wire::put_bytes(&mut event, 1, b"ADDED");
    wire::put_bytes(&mut event, 2, &raw_ext);
    let decoded: k8s_openapi::apimachinery::pkg::apis::meta::v1::WatchEvent<Pod> =
        decode_message(WATCH_EVENT, &event).unwrap();
    match decoded {
        k8s_openapi::apimachinery::pkg::apis::meta::v1::WatchEvent::Added(p) => {
            assert_eq!(p.metadata.name.as_deref(), Some("p"))
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn protobuf_encode_object_uses_generated_code_only_for_its_own_kind() {
    let mut pod = Pod::default();
    pod.metadata.name = Some("p".into());
    pod.spec = Some(Default::default());
    assert!(encodes_directly::<Pod>());
    assert!(!encodes_directly::<serde_json::Value>());
    let direct = encode_object("v1", "Pod", &pod).unwrap();
    assert_eq!(direct, encode(&pod).unwrap());
    assert_eq!(direct, encode_as("v1", "Pod", &pod).unwrap());
    // A Pod sent as a ConfigMap is not written as a Pod under that name:
    // ConfigMap's message has no `spec`.
    let err = encode_object("v1", "ConfigMap", &pod).unwrap_err();
    assert!(err.to_string().contains("spec"), "{err}");
    // The same object as a JSON value goes the serde way, to the same bytes.
    let value = serde_json::to_value(&pod).unwrap();
    assert_eq!(encode_object("v1", "Pod", &value).unwrap(), direct);
}

mod props {
    use std::collections::BTreeMap;

    use k8s_openapi::api::core::v1::{
        ConfigMap, ConfigMapVolumeSource, Container, EmptyDirVolumeSource, HostPathVolumeSource,
        Pod, PodSpec, ResourceRequirements, Volume,
    };
    use k8s_openapi::api::events::v1::{Event, EventSeries};
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
        FieldsV1, ManagedFieldsEntry, MicroTime, ObjectMeta, Time,
    };
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
    use k8s_openapi::jiff::Timestamp;
    use proptest::prelude::*;

    use super::super::{decode, encode, encode_as};

    fn name() -> impl Strategy<Value = String> {
        "[a-z0-9]([-a-z0-9]{0,20}[a-z0-9])?"
    }

    fn labels() -> impl Strategy<Value = BTreeMap<String, String>> {
        prop::collection::btree_map(name(), "\\PC{0,12}", 0..4)
    }

    fn quantity() -> impl Strategy<Value = Quantity> {
        (
            1u32..100_000,
            prop::sample::select(vec!["", "m", "Ki", "Mi", "Gi", "k", "M"]),
        )
            .prop_map(|(n, suffix)| Quantity(format!("{n}{suffix}")))
    }

    fn time() -> impl Strategy<Value = Time> {
        // Seconds precision: what Time keeps.
        (0i64..4_102_444_800)
            .prop_map(|s| Time(k8s_openapi::jiff::Timestamp::from_second(s).unwrap()))
    }

    /// Any instant RFC 3339 text holds (years 0001 to 9999), to the nanosecond.
    fn any_time() -> impl Strategy<Value = Timestamp> {
        (-62_135_596_800i64..253_402_300_800, 0i32..1_000_000_000).prop_map(|(s, n)| {
            Timestamp::new(s, n).unwrap_or_else(|_| Timestamp::from_second(s).unwrap())
        })
    }

    fn meta() -> impl Strategy<Value = ObjectMeta> {
        (
            name(),
            prop::option::of(name()),
            labels(),
            prop::option::of(time()),
            prop::option::of(-5i64..1_000_000),
        )
            .prop_map(
                |(name, namespace, labels, created, generation)| ObjectMeta {
                    name: Some(name),
                    namespace,
                    labels: (!labels.is_empty()).then_some(labels),
                    creation_timestamp: created,
                    generation,
                    ..ObjectMeta::default()
                },
            )
    }

    fn pod() -> impl Strategy<Value = Pod> {
        (
            meta(),
            prop::collection::vec(
                (
                    name(),
                    name(),
                    quantity(),
                    quantity(),
                    prop::option::of(-3i32..70_000),
                ),
                1..4,
            ),
            prop::option::of(any::<bool>()),
        )
            .prop_map(|(metadata, containers, host_network)| Pod {
                metadata,
                spec: Some(PodSpec {
                    containers: containers
                        .into_iter()
                        .map(|(name, image, cpu, memory, port)| Container {
                            name,
                            image: Some(image),
                            resources: Some(ResourceRequirements {
                                limits: Some(
                                    [("cpu".to_owned(), cpu), ("memory".to_owned(), memory)].into(),
                                ),
                                ..ResourceRequirements::default()
                            }),
                            readiness_probe: port.map(|p| k8s_openapi::api::core::v1::Probe {
                                tcp_socket: Some(k8s_openapi::api::core::v1::TCPSocketAction {
                                    port: if p % 2 == 0 {
                                        IntOrString::Int(p)
                                    } else {
                                        IntOrString::String(format!("p{p}"))
                                    },
                                    ..Default::default()
                                }),
                                ..Default::default()
                            }),
                            ..Container::default()
                        })
                        .collect(),
                    host_network,
                    ..PodSpec::default()
                }),
                status: None,
            })
    }

    proptest! {
        #[test]
        fn protobuf_encode_decode_round_trips_generated_pods(pod in pod()) {
            let body = encode(&pod).unwrap();
            let back: Pod = decode(&body).unwrap();
            prop_assert_eq!(back, pod);
        }

        #[test]
        fn protobuf_encode_decode_round_trips_generated_config_maps(
            metadata in meta(),
            data in prop::collection::btree_map(name(), "\\PC{0,40}", 0..5),
            binary in prop::collection::btree_map(name(), prop::collection::vec(any::<u8>(), 0..40), 0..3),
        ) {
            let cm = ConfigMap {
                metadata,
                data: (!data.is_empty()).then_some(data),
                binary_data: (!binary.is_empty())
                    .then(|| binary.into_iter().map(|(k, v)| (k, k8s_openapi::ByteString(v))).collect()),
                ..ConfigMap::default()
            };
            let body = encode(&cm).unwrap();
            let back: ConfigMap = decode(&body).unwrap();
            prop_assert_eq!(back, cm);
        }

        #[test]
        fn protobuf_direct_encode_gives_the_serde_paths_bytes_for_generated_objects(
            pod in pod(),
            volumes in prop::collection::vec((name(), 0u8..4, name()), 0..4),
            times in prop::collection::vec(any_time(), 4),
            managed in prop::option::of(name()),
        ) {
            // `pod()` and more: inline volume sources, times before 1970
            // and with fractions, a MicroTime, FieldsV1 (the serde path's).
            let mut pod = pod;
            let [created, deleted, event_at, series_at] = times.try_into().unwrap();
            pod.metadata.creation_timestamp = Some(Time(created));
            pod.metadata.deletion_timestamp = Some(Time(deleted));
            pod.metadata.managed_fields = managed.map(|manager| vec![ManagedFieldsEntry {
                manager: Some(manager),
                fields_v1: Some(FieldsV1(serde_json::json!({"f:metadata": {"f:labels": {}}}))),
                time: Some(Time(created)),
                ..ManagedFieldsEntry::default()
            }]);
            let spec = pod.spec.get_or_insert_with(PodSpec::default);
            spec.volumes = Some(volumes.into_iter().map(|(name, source, other)| {
                let mut volume = Volume { name, ..Volume::default() };
                match source {
                    0 => volume.empty_dir = Some(EmptyDirVolumeSource::default()),
                    1 => volume.config_map = Some(ConfigMapVolumeSource {
                        name: other,
                        optional: Some(true),
                        ..ConfigMapVolumeSource::default()
                    }),
                    2 => volume.host_path = Some(HostPathVolumeSource {
                        path: format!("/{other}"),
                        ..HostPathVolumeSource::default()
                    }),
                    _ => {}
                }
                volume
            }).collect());
            let direct = encode(&pod).unwrap();
            prop_assert_eq!(&direct, &encode_as("v1", "Pod", &pod).unwrap());
            prop_assert_eq!(decode::<Pod>(&direct).unwrap(), decode::<Pod>(&encode_as("v1", "Pod", &pod).unwrap()).unwrap());

            let event = Event {
                metadata: pod.metadata.clone(),
                event_time: Some(MicroTime(event_at)),
                series: Some(EventSeries { count: 3, last_observed_time: MicroTime(series_at) }),
                reporting_controller: Some("windlass".into()),
                ..Event::default()
            };
            let direct = encode(&event).unwrap();
            prop_assert_eq!(&direct, &encode_as("events.k8s.io/v1", "Event", &event).unwrap());
        }

        #[test]
        fn protobuf_decode_of_arbitrary_bytes_never_panics(raw in prop::collection::vec(any::<u8>(), 0..300)) {
            let mut body = super::super::MAGIC.to_vec();
            body.extend_from_slice(&raw);
            let _ = decode::<Pod>(&body);
            let _ = decode::<Pod>(&super::pod_body(&raw));
            let _ = decode::<serde_json::Value>(&super::pod_body(&raw));
        }
    }
}

#[test]
fn protobuf_time_nanos_are_dropped_as_go_drops_them() {
    // Found by the `protobuf_envelope` fuzzer (fuzz/regressions): a `Time`
    // with `nanos` decoded to a fraction no JSON `Time` carries, and lost it
    // on re-encoding. `Time` is whole seconds; `MicroTime` keeps microseconds.
    let time = |nanos: u64| {
        let mut t = Vec::new();
        wire::put_key(&mut t, 1, wire::WireType::Varint);
        wire::put_varint(&mut t, 1_136_077_261); // 2006-01-01T01:01:01Z
        wire::put_key(&mut t, 2, wire::WireType::Varint);
        wire::put_varint(&mut t, nanos);
        t
    };
    let mut meta = Vec::new();
    wire::put_bytes(&mut meta, 1, b"web-0");
    wire::put_bytes(&mut meta, 8, &time(43));
    let mut pod = Vec::new();
    wire::put_bytes(&mut pod, 1, &meta);
    let decoded: Pod = decode(&pod_body(&pod)).unwrap();
    assert_eq!(
        decoded.metadata.creation_timestamp,
        Some(Time("2006-01-01T01:01:01Z".parse().unwrap()))
    );
    let back: Pod = decode(&encode(&decoded).unwrap()).unwrap();
    assert_eq!(back, decoded);

    // The bare messages: MicroTime keeps microseconds, Time none.
    let micro: serde_json::Value = decode_message(
        "k8s.io.apimachinery.pkg.apis.meta.v1.MicroTime",
        &time(10_043),
    )
    .unwrap();
    assert_eq!(micro, "2006-01-01T01:01:01.000010Z");
    let plain: serde_json::Value =
        decode_message("k8s.io.apimachinery.pkg.apis.meta.v1.Time", &time(10_043)).unwrap();
    assert_eq!(plain, "2006-01-01T01:01:01Z");
}

#[test]
fn protobuf_every_message_of_the_schema_fits_its_lookup_index() {
    // The index's bit sets hold 63 fields; building it checks every message
    // (it is built for all at once, on first use).
    for message in schema::MESSAGES {
        let index = message.index();
        for field in message.fields {
            assert!(
                message.field_by_tag(field.tag).is_some(),
                "{}: tag {} not indexed",
                message.name,
                field.tag
            );
            if !field.json.is_empty() {
                assert!(message.field_by_json(field.json).is_some());
            }
        }
        let _ = index;
    }
}

/// A Pod whose one `managedFields` entry holds `fields_v1` as its raw JSON.
fn pod_with_fields_v1(fields_v1: &[u8]) -> Vec<u8> {
    let mut fields = Vec::new();
    wire::put_bytes(&mut fields, 1, fields_v1);
    let mut entry = Vec::new();
    wire::put_bytes(&mut entry, 1, b"kubectl");
    wire::put_bytes(&mut entry, 7, &fields);
    let mut meta = Vec::new();
    wire::put_bytes(&mut meta, 1, b"web-0");
    wire::put_bytes(&mut meta, 17, &entry);
    let mut pod = Vec::new();
    wire::put_bytes(&mut pod, 1, &meta);
    pod_body(&pod)
}

#[test]
fn protobuf_embedded_json_decodes_as_its_text_does() {
    let text =
        r#"{"f:metadata":{"f:labels":{"f:app":{},"f:café":{}}},"f:note":"naïve \u00e9 \"q\""}"#;
    let pod: Pod = decode(&pod_with_fields_v1(text.as_bytes())).unwrap();
    let entry = &pod.metadata.managed_fields.as_ref().unwrap()[0];
    assert_eq!(entry.manager.as_deref(), Some("kubectl"));
    let fields = entry.fields_v1.as_ref().unwrap();
    let expected: serde_json::Value = serde_json::from_str(text).unwrap();
    assert_eq!(fields.0, expected);
}

#[test]
fn protobuf_embedded_json_with_invalid_utf8_is_an_error_naming_its_field() {
    // `"f:\xff"`: a key that is not UTF-8, inside otherwise valid JSON.
    let err = decode::<Pod>(&pod_with_fields_v1(b"{\"f:\xff\":{}}"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("FieldsV1.raw"), "{err}");
    assert!(err.contains("embedded JSON"), "{err}");
    // And truncated JSON: an error too, never a panic.
    let err = decode::<Pod>(&pod_with_fields_v1(b"{\"f:metadata\":"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("embedded JSON"), "{err}");
}

/// A Pod whose metadata has `name` and one label `key: value`.
fn pod_with_name_and_label(name: &[u8], key: &[u8], value: &[u8]) -> Vec<u8> {
    let mut entry = Vec::new();
    wire::put_bytes(&mut entry, 1, key);
    wire::put_bytes(&mut entry, 2, value);
    let mut meta = Vec::new();
    wire::put_bytes(&mut meta, 1, name);
    wire::put_bytes(&mut meta, 11, &entry);
    let mut pod = Vec::new();
    wire::put_bytes(&mut pod, 1, &meta);
    pod_body(&pod)
}

#[test]
fn protobuf_strings_are_checked_as_utf8_past_the_ascii_fast_path() {
    // ASCII (the fast path), then multi-byte UTF-8 in a string field, a map
    // key and a map value (the full check).
    let pod: Pod = decode(&pod_with_name_and_label(b"web-0", b"app", b"web")).unwrap();
    assert_eq!(pod.metadata.name.as_deref(), Some("web-0"));
    let pod: Pod = decode(&pod_with_name_and_label(
        "caf\u{e9}-0".as_bytes(),
        "r\u{f4}le".as_bytes(),
        "na\u{ef}ve \u{1f980}".as_bytes(),
    ))
    .unwrap();
    assert_eq!(pod.metadata.name.as_deref(), Some("caf\u{e9}-0"));
    let labels = pod.metadata.labels.unwrap();
    assert_eq!(labels["r\u{f4}le"], "na\u{ef}ve \u{1f980}");

    // Bytes that are not UTF-8, wherever a string is read: an error naming
    // the field, never a string with them in it.
    for (name, key, value) in [
        (&b"web-\xff"[..], &b"app"[..], &b"web"[..]),
        (b"web-0", b"a\xc3", b"web"),
        (b"web-0", b"app", b"\xe2\x82"),
    ] {
        let err = decode::<Pod>(&pod_with_name_and_label(name, key, value))
            .unwrap_err()
            .to_string();
        assert!(err.contains("ObjectMeta"), "{err}");
        assert!(err.contains("utf-8") || err.contains("UTF-8"), "{err}");
    }
}
