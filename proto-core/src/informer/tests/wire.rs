use k8s_openapi::api::core::v1::ConfigMap;
use proptest::prelude::*;
use serde_json::json;

use super::reflector::list_body;
use crate::informer::wire::{CodecLimits, DecodeError, JsonListDecoder, ListDecoder};
use crate::object::Object;

fn decode_in_pieces(
    body: &[u8],
    cuts: &[usize],
) -> Result<(Vec<String>, String, Option<String>), DecodeError> {
    let mut d: JsonListDecoder<ConfigMap> = JsonListDecoder::new(CodecLimits::default());
    let mut names = Vec::new();
    let mut at = 0;
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (body.len() + 1)).collect();
    cuts.sort();
    for cut in cuts.into_iter().chain([body.len()]) {
        d.push(&body[at..cut.max(at)])?;
        at = cut.max(at);
        names.extend(std::iter::from_fn(|| d.poll_item()).map(|o| o.key().to_string()));
    }
    let meta = d.finish()?;
    names.extend(std::iter::from_fn(|| d.poll_item()).map(|o| o.key().to_string()));
    Ok((names, meta.resource_version, meta.continue_token))
}

#[test]
fn reflector_json_list_decoder_yields_items_before_the_body_ends() {
    let items: Vec<(String, String)> = (0..50).map(|i| (format!("cm{i}"), i.to_string())).collect();
    let refs: Vec<(&str, &str)> = items
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let body = list_body("77", Some("next"), &refs).to_string();
    let mut d: JsonListDecoder<ConfigMap> = JsonListDecoder::new(CodecLimits::default());
    d.push(&body.as_bytes()[..body.len() / 2]).unwrap();
    let early = std::iter::from_fn(|| d.poll_item()).count();
    assert!(early > 10, "{early} items out after half the body");
    d.push(&body.as_bytes()[body.len() / 2..]).unwrap();
    let meta = d.finish().unwrap();
    let late = std::iter::from_fn(|| d.poll_item()).count();
    assert_eq!(early + late, 50);
    assert_eq!(meta.resource_version, "77");
    assert_eq!(meta.continue_token.as_deref(), Some("next"));
}

#[test]
fn reflector_json_list_decoder_handles_member_order_escapes_and_nulls() {
    let body = json!({
        "items": [{"metadata": {"name": "a\"}]{", "namespace": "ns", "resourceVersion": "1"},
                   "data": {"k": "\\\"[{"}}],
        "count": 12, "flag": true, "nothing": null,
        "metadata": {"resourceVersion": "9", "continue": ""},
        "kind": "ConfigMapList", "apiVersion": "v1"
    })
    .to_string();
    let (names, rv, cont) = decode_in_pieces(body.as_bytes(), &[]).unwrap();
    assert_eq!(names, ["ns/a\"}]{"]);
    assert_eq!(rv, "9");
    assert_eq!(cont, None);
    let empty =
        json!({"kind": "ConfigMapList", "metadata": {"resourceVersion": "3"}, "items": null});
    let (names, rv, _) = decode_in_pieces(empty.to_string().as_bytes(), &[]).unwrap();
    assert!(names.is_empty());
    assert_eq!(rv, "3");
}

#[test]
fn reflector_json_list_decoder_rejects_bad_bodies_without_panicking() {
    for body in [
        &b"[1,2]"[..],
        b"{\"items\": [",
        b"{\"items\": [{\"metadata\": 5}]}",
        b"{\"kind\": \"Table\", \"items\": []}",
        b"{\"a\" 1}",
        b"{\"items\": [] } trailing",
        b"",
    ] {
        assert!(
            decode_in_pieces(body, &[]).is_err(),
            "{}",
            String::from_utf8_lossy(body)
        );
    }
    let limits = CodecLimits {
        max_frame: 64,
        ..CodecLimits::default()
    };
    let mut d: JsonListDecoder<ConfigMap> = JsonListDecoder::new(limits);
    let big = list_body("1", None, &[(&"x".repeat(100), "1")]).to_string();
    assert!(matches!(
        d.push(big.as_bytes()),
        Err(DecodeError::TooLarge {
            what: "list item",
            ..
        })
    ));
}

proptest! {
    #[test]
    fn reflector_json_list_split_anywhere_decodes_the_same(
        n in 0usize..12,
        cuts in prop::collection::vec(any::<usize>(), 0..20),
    ) {
        let items: Vec<(String, String)> = (0..n).map(|i| (format!("c{i}"), (i * 3).to_string())).collect();
        let refs: Vec<(&str, &str)> = items.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        let body = serde_json::to_string_pretty(&list_body("42", Some("t"), &refs)).unwrap();
        let (names, rv, cont) = decode_in_pieces(body.as_bytes(), &cuts).unwrap();
        prop_assert_eq!(names, items.iter().map(|(n, _)| format!("ns/{n}")).collect::<Vec<_>>());
        prop_assert_eq!(rv, "42");
        prop_assert_eq!(cont.as_deref(), Some("t"));
    }
}
