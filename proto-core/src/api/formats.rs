//! Content negotiation for the verbs of [`super::Api`]: which encoding a
//! client asks for ([`Formats`]), how request bodies are encoded in it, and
//! the JSON fallback ([`Fallback`]) when a server refuses it.
//!
//! JSON is the default. With protobuf, requests send
//! `Accept: application/vnd.kubernetes.protobuf,application/json` (the
//! server answers JSON for kinds it cannot encode, such as custom
//! resources) and create/replace bodies in protobuf when the kind has a
//! protobuf message. With CBOR, requests send
//! `Accept: application/json;q=0.9,application/cbor;q=1` and CBOR bodies.
//! Custom resources and `DynamicObject`s of kinds without a message always
//! send JSON bodies. A 406 (the server cannot answer in that encoding) or
//! 415 (it cannot read the body) makes the call resend in JSON once, and
//! every later call on that resource asks for JSON from the start — as
//! client-go switches to JSON for good after a 415 to a CBOR request.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use http::StatusCode;
use serde::Serialize;

use crate::codec::{Format, cbor, json, protobuf};
use crate::request::{Builder, Negotiation};
use crate::resource::ApiResource;

use super::CallError;

/// A client's preferred encoding and the resources that fell back to JSON.
///
/// Cheap to clone; clones share the fallback record, so one client's
/// `Api`s learn together.
#[derive(Clone, Debug)]
pub struct Formats {
    preferred: Format,
    fallen_back: Arc<Mutex<HashSet<(String, String)>>>,
}

impl Default for Formats {
    fn default() -> Self {
        Self::new(Format::Json)
    }
}

impl Formats {
    /// Ask for `preferred` (JSON, protobuf or CBOR).
    pub fn new(preferred: Format) -> Self {
        Self {
            preferred,
            fallen_back: Arc::default(),
        }
    }

    /// The encoding asked for when no fallback happened.
    pub fn preferred(&self) -> Format {
        self.preferred
    }

    /// The encoding requests for `resource` use now: JSON for a kind with
    /// no protobuf message (a custom resource) and for a resource that fell
    /// back, else the preferred one.
    pub fn for_resource(&self, resource: &ApiResource) -> Format {
        let built_in = protobuf::message_name(&resource.api_version, &resource.kind).is_some();
        if self.preferred == Format::Json || !built_in || self.has_fallen_back(resource) {
            Format::Json
        } else {
            self.preferred
        }
    }

    /// Whether `resource` fell back to JSON after a 406 or 415.
    pub fn has_fallen_back(&self, resource: &ApiResource) -> bool {
        self.record().contains(&key(resource))
    }

    /// Records that `resource` is served in JSON from now on, if `status`
    /// says the server refused the encoding (406 Not Acceptable, 415
    /// Unsupported Media Type) and it was not JSON. Returns whether it did.
    pub fn fall_back(&self, resource: &ApiResource, status: StatusCode) -> bool {
        let refused = matches!(
            status,
            StatusCode::NOT_ACCEPTABLE | StatusCode::UNSUPPORTED_MEDIA_TYPE
        );
        if !refused || self.for_resource(resource) == Format::Json {
            return false;
        }
        self.record().insert(key(resource));
        true
    }

    fn record(&self) -> std::sync::MutexGuard<'_, HashSet<(String, String)>> {
        self.fallen_back
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// `builder` asking for this resource's encoding. A builder that asks
    /// for something else than plain JSON (metadata, tables) keeps its own.
    pub(super) fn builder(&self, builder: &Builder) -> Option<(Builder, Format)> {
        if builder.negotiation() != Negotiation::Json {
            return None;
        }
        let format = self.for_resource(builder.resource());
        let negotiation = match format {
            Format::Json => return None,
            Format::Protobuf => Negotiation::Protobuf,
            Format::Cbor => Negotiation::CborOrJson,
        };
        Some((builder.clone().with_negotiation(negotiation), format))
    }
}

fn key(resource: &ApiResource) -> (String, String) {
    (resource.group.clone(), resource.plural.clone())
}

/// `object` as a request body for `resource` in `format`, with the format
/// actually used. An object the encoder refuses — a `DynamicObject` holding
/// a field the kind's protobuf message lacks — goes as JSON, which every
/// server reads.
pub(super) fn encode_body<T: Serialize + 'static>(
    resource: &ApiResource,
    format: Format,
    object: &T,
) -> Result<(Bytes, Format), CallError> {
    let encoded = match format {
        Format::Json => None,
        Format::Cbor => cbor::encode(object).ok(),
        Format::Protobuf => {
            protobuf::encode_object(&resource.api_version, &resource.kind, object).ok()
        }
    };
    match encoded {
        Some(body) => Ok((body.into(), format)),
        None => Ok((json::encode(object)?, Format::Json)),
    }
}

/// The same call in JSON, for when the server refuses the encoding.
#[derive(Debug)]
pub struct Fallback {
    formats: Formats,
    resource: ApiResource,
    request: http::Request<Bytes>,
}

impl Fallback {
    pub(super) fn new(
        formats: &Formats,
        resource: &ApiResource,
        request: http::Request<Bytes>,
    ) -> Self {
        Self {
            formats: formats.clone(),
            resource: resource.clone(),
            request,
        }
    }

    /// The JSON request to send instead when `status` is 406 or 415 (and
    /// the resource then stays on JSON); `None` for any other status.
    pub fn on_status(&self, status: StatusCode) -> Option<http::Request<Bytes>> {
        self.formats
            .fall_back(&self.resource, status)
            .then(|| self.request.clone())
    }
}

#[cfg(test)]
mod tests {
    use http::header::{ACCEPT, CONTENT_TYPE};
    use http::{HeaderMap, StatusCode};
    use k8s_openapi::api::core::v1::ConfigMap;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Status;

    use super::*;
    use crate::api::Api;
    use crate::dynamic::DynamicObject;
    use crate::list::ObjectList;
    use crate::params::{ListParams, WatchParams};
    use crate::request::{DeleteParams, PostParams};
    use crate::resource::Scope;
    use crate::response::Deleted;

    fn map(name: &str) -> ConfigMap {
        let mut map = ConfigMap::default();
        map.metadata.name = Some(name.into());
        map.metadata.namespace = Some("ns".into());
        map.data = Some([("k".to_owned(), "v".to_owned())].into());
        map
    }

    fn typed(format: Format) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, format.media_type().parse().unwrap());
        headers
    }

    fn maps(format: Format) -> Api<ConfigMap> {
        Api::<ConfigMap>::namespaced("ns")
            .unwrap()
            .with_formats(Formats::new(format))
    }

    #[test]
    fn negotiation_protobuf_asks_for_protobuf_and_decodes_protobuf_bodies() {
        let api = maps(Format::Protobuf);
        let get = api.get("a").unwrap();
        assert_eq!(
            get.request.headers()[ACCEPT],
            "application/vnd.kubernetes.protobuf,application/json"
        );
        let body = protobuf::encode(&map("a")).unwrap();
        let decoded = get
            .decode(StatusCode::OK, &typed(Format::Protobuf), &body)
            .unwrap();
        assert_eq!(decoded.data, map("a").data);
        // The same call answered in JSON (a server's choice) decodes too.
        let json = serde_json::to_vec(&map("a")).unwrap();
        assert_eq!(
            get.decode(StatusCode::OK, &typed(Format::Json), &json)
                .unwrap()
                .metadata
                .name,
            Some("a".into())
        );
        // A create body is protobuf, labelled so.
        let create = api.create(&PostParams::default(), &map("b")).unwrap();
        assert_eq!(
            create.request.headers()[CONTENT_TYPE],
            Format::Protobuf.media_type()
        );
        let sent: ConfigMap = protobuf::decode(create.request.body()).unwrap();
        assert_eq!(sent.metadata.name.as_deref(), Some("b"));
        // A protobuf list, and a protobuf Success status on delete.
        let list = api.list(&ListParams::default()).unwrap();
        let page = br#"{"apiVersion":"v1","kind":"ConfigMapList","metadata":{"resourceVersion":"7"},"items":[{"metadata":{"name":"a"}}]}"#;
        let value: serde_json::Value = serde_json::from_slice(page).unwrap();
        let page = protobuf::encode_as("v1", "ConfigMapList", &value).unwrap();
        let page: ObjectList<ConfigMap> = list
            .decode(StatusCode::OK, &typed(Format::Protobuf), &page)
            .unwrap();
        assert_eq!(page.items.len(), 1);
        let delete = api.delete("a", &DeleteParams::default()).unwrap();
        let status = Status {
            status: Some("Success".into()),
            ..Status::default()
        };
        let body = protobuf::encode(&status).unwrap();
        let deleted = delete
            .decode(StatusCode::OK, &typed(Format::Protobuf), &body)
            .unwrap();
        assert!(matches!(deleted, Deleted::Status(s) if s.status.as_deref() == Some("Success")));
    }

    #[test]
    fn negotiation_cbor_round_trips_and_a_415_falls_back_to_json_for_good() {
        let api = maps(Format::Cbor);
        let create = api.create(&PostParams::default(), &map("a")).unwrap();
        assert_eq!(
            create.request.headers()[ACCEPT],
            "application/json;q=0.9,application/cbor;q=1"
        );
        assert_eq!(create.request.headers()[CONTENT_TYPE], "application/cbor");
        assert!(create.request.body().starts_with(crate::codec::CBOR_MAGIC));
        let answer = cbor::encode(&map("a")).unwrap();
        let created = create
            .decode(StatusCode::CREATED, &typed(Format::Cbor), &answer)
            .unwrap();
        assert_eq!(created.data, map("a").data);
        // Other statuses leave the answer as it is.
        assert!(create.fallback(StatusCode::CONFLICT).is_none());
        assert!(!api.formats().has_fallen_back(api.builder().resource()));
        // 415: resend in JSON, and stay there.
        let (_, decoder) = create.into_parts();
        let json = decoder
            .fallback(StatusCode::UNSUPPORTED_MEDIA_TYPE)
            .unwrap();
        assert_eq!(json.headers()[CONTENT_TYPE], "application/json");
        assert_eq!(json.headers()[ACCEPT], "application/json");
        assert_eq!(json.body()[0], b'{');
        assert!(api.formats().has_fallen_back(api.builder().resource()));
        let get = api.clone().get("a").unwrap();
        assert_eq!(get.request.headers()[ACCEPT], "application/json");
        assert!(get.fallback(StatusCode::NOT_ACCEPTABLE).is_none());
        // Another resource on the same client keeps CBOR.
        let pods = Api::<k8s_openapi::api::core::v1::Pod>::namespaced("ns")
            .unwrap()
            .with_formats(api.formats().clone());
        assert_eq!(
            pods.list(&ListParams::default()).unwrap().request.headers()[ACCEPT],
            "application/json;q=0.9,application/cbor;q=1"
        );
    }

    #[test]
    fn negotiation_406_on_a_watch_falls_back_to_a_json_watch() {
        let api = maps(Format::Protobuf);
        let (request, fallback) = api.watch(&WatchParams::default()).unwrap().into_parts();
        assert_eq!(
            request.headers()[ACCEPT],
            "application/vnd.kubernetes.protobuf,application/json"
        );
        let json = fallback
            .unwrap()
            .on_status(StatusCode::NOT_ACCEPTABLE)
            .unwrap();
        assert_eq!(json.headers()[ACCEPT], "application/json");
        assert_eq!(json.uri(), request.uri());
        let (_, none) = api.watch(&WatchParams::default()).unwrap().into_parts();
        assert!(none.is_none());
    }

    #[test]
    fn negotiation_custom_resources_and_metadata_stay_json() {
        let widgets = ApiResource::new("example.com", "v1", "Widget", "widgets", Scope::Cluster);
        for format in [Format::Protobuf, Format::Cbor] {
            let api = Api::<DynamicObject>::dynamic(widgets.clone(), None)
                .unwrap()
                .with_formats(Formats::new(format));
            let object = DynamicObject::new("w", &widgets);
            let create = api.create(&PostParams::default(), &object).unwrap();
            assert_eq!(create.request.headers()[ACCEPT], "application/json");
            assert_eq!(create.request.headers()[CONTENT_TYPE], "application/json");
            assert!(
                create
                    .fallback(StatusCode::UNSUPPORTED_MEDIA_TYPE)
                    .is_none()
            );
            let metadata = maps(format).metadata();
            let get = metadata.get("a").unwrap();
            assert!(
                get.request.headers()[ACCEPT]
                    .to_str()
                    .unwrap()
                    .contains("PartialObjectMetadata")
            );
        }
    }

    #[test]
    fn negotiation_malformed_protobuf_and_cbor_bodies_are_codec_errors() {
        let get = maps(Format::Protobuf).get("a").unwrap();
        for (format, body) in [
            (Format::Protobuf, &b"k8s\0\x0a\xff"[..]),
            (Format::Protobuf, b"not protobuf"),
            (Format::Cbor, &[0xd9, 0xd9, 0xf7, 0xbf][..]),
        ] {
            let err = get
                .decode(StatusCode::OK, &typed(format), body)
                .unwrap_err();
            assert!(
                matches!(&err, crate::response::Error::Codec { format: f, .. } if *f == format),
                "{err:?}"
            );
        }
    }
}
