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
    let mut cm = ConfigMap::default();
    cm.binary_data = Some([("k".to_owned(), k8s_openapi::ByteString(vec![0, 1, 2, 255]))].into());
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
