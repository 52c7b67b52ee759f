//! CBOR encode → decode round trips for generated objects: k8s-openapi
//! types (with `ByteString`, `Quantity`, `IntOrString`, times, maps) and
//! arbitrary JSON-shaped values.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{
    ConfigMap, Container, ContainerPort, Pod, PodSpec, ResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use windlass_proto::codec::cbor;

fn meta() -> impl Strategy<Value = ObjectMeta> {
    (
        "[a-z0-9-]{1,20}",
        proptest::option::of("[a-z]{1,10}"),
        btree_map("[a-z./]{1,12}", ".{0,16}", 0..4),
        proptest::option::of(0i64..4_000_000_000),
        proptest::option::of(any::<i64>()),
    )
        .prop_map(
            |(name, namespace, labels, created, generation)| ObjectMeta {
                name: Some(name),
                namespace,
                labels: (!labels.is_empty()).then_some(labels),
                creation_timestamp: created
                    .map(|s| Time(k8s_openapi::jiff::Timestamp::from_second(s).unwrap())),
                generation,
                ..ObjectMeta::default()
            },
        )
}

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        (0..=i64::MAX as u64).prop_map(serde_json::Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(serde_json::Value::from),
        ".{0,12}".prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..8).prop_map(serde_json::Value::from),
            btree_map(".{0,8}", inner, 0..8)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn cbor_configmap_round_trips(
        metadata in meta(),
        data in btree_map("[a-zA-Z0-9._-]{1,12}", ".{0,40}", 0..5),
        binary in btree_map("[a-z]{1,8}", vec(any::<u8>(), 0..40), 0..4),
    ) {
        let cm = ConfigMap {
            metadata,
            data: (!data.is_empty()).then_some(data),
            binary_data: (!binary.is_empty()).then(|| binary.into_iter().map(|(k, v)| (k, ByteString(v))).collect()),
            ..ConfigMap::default()
        };
        let bytes = cbor::encode(&cm).unwrap();
        prop_assert_eq!(&bytes[..3], &[0xd9, 0xd9, 0xf7][..]);
        let back: ConfigMap = cbor::decode(&bytes).unwrap();
        prop_assert_eq!(back, cm);
    }

    #[test]
    fn cbor_pod_round_trips(
        metadata in meta(),
        containers in vec(("[a-z]{1,10}", "[a-z./:]{1,20}", proptest::option::of(1i32..65535), "[0-9]{1,4}(m|Mi|Gi)?", any::<bool>()), 1..4),
    ) {
        let pod = Pod {
            metadata,
            spec: Some(PodSpec {
                containers: containers.into_iter().map(|(name, image, port, cpu, named)| Container {
                    name,
                    image: Some(image),
                    ports: port.map(|p| vec![ContainerPort { container_port: p, ..ContainerPort::default() }]),
                    resources: Some(ResourceRequirements {
                        limits: Some(BTreeMap::from([("cpu".to_string(), Quantity(cpu))])),
                        ..ResourceRequirements::default()
                    }),
                    readiness_probe: Some(k8s_openapi::api::core::v1::Probe {
                        tcp_socket: Some(k8s_openapi::api::core::v1::TCPSocketAction {
                            port: if named { IntOrString::String("http".into()) } else { IntOrString::Int(8080) },
                            ..Default::default()
                        }),
                        ..Default::default()
                    }),
                    ..Container::default()
                }).collect(),
                ..PodSpec::default()
            }),
            status: None,
        };
        let back: Pod = cbor::decode(&cbor::encode(&pod).unwrap()).unwrap();
        prop_assert_eq!(back, pod);
    }

    #[test]
    fn cbor_json_values_round_trip(value in json_value()) {
        let back: serde_json::Value = cbor::decode(&cbor::encode(&value).unwrap()).unwrap();
        prop_assert_eq!(back, value);
    }

    /// Arbitrary bytes never panic the decoder; any error carries an offset within the input.
    #[test]
    fn cbor_arbitrary_bytes_decode_or_fail_cleanly(bytes in vec(any::<u8>(), 0..256)) {
        match cbor::decode::<serde_json::Value>(&bytes) {
            Ok(value) => {
                let back: serde_json::Value = cbor::decode(&cbor::encode(&value).unwrap()).unwrap();
                prop_assert_eq!(back, value);
            }
            Err(cbor::Error::Truncated { offset } | cbor::Error::Malformed { offset, .. }) => prop_assert!(offset <= bytes.len()),
            Err(_) => {}
        }
    }
}
