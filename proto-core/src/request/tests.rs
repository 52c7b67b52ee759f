//! Request tests: path, query, headers and body of every verb. The
//! `golden_*` expectations are client-go's dynamic client's exact requests
//! (client-go `dynamic/testdata/TestGoldenRequest`, copied in
//! fixtures/recorded/client-go-dynamic-testdata).

use super::*;
use crate::params::ResourceVersionMatch;
use crate::resource::Segment;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Node, Pod};

fn flips() -> Builder {
    let resource = ApiResource::new("flops", "v1alpha1", "Flip", "flips", Scope::Namespaced);
    Builder::new(resource, Some("mops")).unwrap()
}

fn header<'a>(req: &'a http::Request<Bytes>, name: &str) -> Option<&'a str> {
    req.headers().get(name).map(|v| v.to_str().unwrap())
}

fn body_json(req: &http::Request<Bytes>) -> Value {
    serde_json::from_slice(req.body()).unwrap()
}

#[test]
fn request_golden_get_list_watch() {
    let get = flips()
        .get_subresource(
            "fin",
            "mips",
            &GetParams {
                resource_version: Some("42".into()),
            },
        )
        .unwrap();
    assert_eq!(get.method(), Method::GET);
    assert_eq!(
        get.uri(),
        "/apis/flops/v1alpha1/namespaces/mops/flips/mips/fin?resourceVersion=42"
    );
    assert_eq!(header(&get, "accept"), Some("application/json"));
    assert!(get.body().is_empty());
    assert_eq!(header(&get, "content-type"), None);

    let list = flips()
        .list(&ListParams {
            resource_version: Some("42".into()),
            ..ListParams::default()
        })
        .unwrap();
    assert_eq!(list.method(), Method::GET);
    assert_eq!(
        list.uri(),
        "/apis/flops/v1alpha1/namespaces/mops/flips?resourceVersion=42"
    );

    let watch = flips()
        .watch(&WatchParams {
            resource_version: Some("42".into()),
            ..WatchParams::default()
        })
        .unwrap();
    assert_eq!(
        watch.uri(),
        "/apis/flops/v1alpha1/namespaces/mops/flips?resourceVersion=42&watch=true"
    );
    assert_eq!(header(&watch, "accept"), Some("application/json"));
}

#[test]
fn request_golden_create_update_updatestatus() {
    let pp = PostParams {
        field_validation: Some(FieldValidation::Warn),
        ..PostParams::default()
    };
    let body = Bytes::from_static(b"{\"metadata\":{\"name\":\"mips\"}}\n");
    let create = flips()
        .create_subresource("fin", "mips", &pp, body.clone())
        .unwrap();
    assert_eq!(create.method(), Method::POST);
    // client-go's golden request spells the value "warn"; the server reads it
    // case-insensitively, and "Warn" is the documented spelling.
    assert_eq!(
        create.uri(),
        "/apis/flops/v1alpha1/namespaces/mops/flips/mips/fin?fieldValidation=Warn"
    );
    assert_eq!(header(&create, "content-type"), Some("application/json"));
    assert_eq!(create.body(), &body);

    let update = flips()
        .replace_subresource("fin", "mips", &pp, body.clone())
        .unwrap();
    assert_eq!(update.method(), Method::PUT);
    assert_eq!(update.uri(), create.uri());

    let status = flips().replace_status("mips", &pp, body.clone()).unwrap();
    assert_eq!(status.method(), Method::PUT);
    assert_eq!(
        status.uri(),
        "/apis/flops/v1alpha1/namespaces/mops/flips/mips/status?fieldValidation=Warn"
    );
    assert_eq!(status.body(), &body);
}

#[test]
fn request_golden_delete_and_deletecollection() {
    let dp = DeleteParams {
        dry_run: true,
        ..DeleteParams::default()
    };
    let delete = flips().delete("mips", &dp).unwrap();
    assert_eq!(delete.method(), Method::DELETE);
    assert_eq!(
        delete.uri(),
        "/apis/flops/v1alpha1/namespaces/mops/flips/mips"
    );
    assert_eq!(header(&delete, "content-type"), Some("application/json"));
    assert_eq!(
        body_json(&delete),
        json!({"kind":"DeleteOptions","apiVersion":"v1","dryRun":["All"]})
    );

    let collection = flips()
        .delete_collection(
            &dp,
            &ListParams {
                resource_version: Some("42".into()),
                ..ListParams::default()
            },
        )
        .unwrap();
    assert_eq!(collection.method(), Method::DELETE);
    assert_eq!(
        collection.uri(),
        "/apis/flops/v1alpha1/namespaces/mops/flips?resourceVersion=42"
    );
    assert_eq!(
        body_json(&collection),
        json!({"kind":"DeleteOptions","apiVersion":"v1","dryRun":["All"]})
    );
}

#[test]
fn request_golden_patch_and_apply() {
    let patch = flips()
        .patch_subresource(
            "fin",
            "mips",
            &PatchParams {
                field_manager: Some("baz".into()),
                ..PatchParams::default()
            },
            &Patch::Strategic(json!({"foo": "bar"})),
        )
        .unwrap();
    assert_eq!(patch.method(), Method::PATCH);
    assert_eq!(
        patch.uri(),
        "/apis/flops/v1alpha1/namespaces/mops/flips/mips/fin?fieldManager=baz"
    );
    assert_eq!(
        header(&patch, "content-type"),
        Some("application/strategic-merge-patch+json")
    );
    assert_eq!(patch.body().as_ref(), b"{\"foo\":\"bar\"}");

    // client-go's golden apply omits fieldManager (the server would reject it:
    // "fieldManager: Required value"); ours must carry one.
    let apply = flips()
        .patch_status(
            "mips",
            &PatchParams::apply("windlass").force(),
            &Patch::Apply(json!({"metadata": {"name": "mips"}})),
        )
        .unwrap();
    assert_eq!(
        apply.uri(),
        "/apis/flops/v1alpha1/namespaces/mops/flips/mips/status?fieldManager=windlass&force=true"
    );
    assert_eq!(
        header(&apply, "content-type"),
        Some("application/apply-patch+yaml")
    );
    assert_eq!(body_json(&apply), json!({"metadata": {"name": "mips"}}));
}

#[test]
fn request_patch_content_types_and_query() {
    let pods = Builder::of::<Pod>(Some("ns")).unwrap();
    let params = PatchParams {
        dry_run: true,
        field_manager: Some("m".into()),
        field_validation: Some(FieldValidation::Strict),
        ..PatchParams::default()
    };
    let ops = json!([{"op": "replace", "path": "/spec/x", "value": 1}]);
    for (patch, ct) in [
        (Patch::Json(ops.clone()), "application/json-patch+json"),
        (Patch::Merge(ops.clone()), "application/merge-patch+json"),
        (
            Patch::Strategic(ops.clone()),
            "application/strategic-merge-patch+json",
        ),
    ] {
        let req = pods.patch("p", &params, &patch).unwrap();
        assert_eq!(header(&req, "content-type"), Some(ct));
        assert_eq!(
            req.uri(),
            "/api/v1/namespaces/ns/pods/p?dryRun=All&fieldManager=m&fieldValidation=Strict"
        );
        assert_eq!(body_json(&req), ops);
    }
    // Validation runs on patches: force without apply.
    assert!(matches!(
        pods.patch("p", &PatchParams::apply("m").force(), &Patch::Merge(ops)),
        Err(RequestError::Validation(
            ValidationError::ForceOnNonApplyPatch
        ))
    ));
}

#[test]
fn request_list_all_parameters_and_all_namespaces() {
    let pods = Builder::of::<Pod>(None).unwrap();
    let req = pods
        .list(&ListParams {
            label_selector: Some("app in (a,b),!legacy".into()),
            field_selector: Some("spec.nodeName=n 1".into()),
            resource_version: Some("100".into()),
            resource_version_match: Some(ResourceVersionMatch::NotOlderThan),
            limit: Some(500),
            continue_token: None,
            timeout_seconds: Some(30),
        })
        .unwrap();
    assert_eq!(
        req.uri(),
        "/api/v1/pods?fieldSelector=spec.nodeName%3Dn+1&labelSelector=app+in+%28a%2Cb%29%2C%21legacy\
         &limit=500&resourceVersion=100&resourceVersionMatch=NotOlderThan&timeoutSeconds=30"
    );
    // limit 0, empty strings and empty continue are not sent (Go's omitempty).
    let req = pods
        .list(&ListParams {
            label_selector: Some(String::new()),
            limit: Some(0),
            continue_token: Some("tok+/=".into()),
            ..ListParams::default()
        })
        .unwrap();
    assert_eq!(req.uri(), "/api/v1/pods?continue=tok%2B%2F%3D");
    // Validation runs on list.
    assert!(matches!(
        pods.list(&ListParams {
            resource_version: Some("0".into()),
            resource_version_match: Some(ResourceVersionMatch::Exact),
            ..ListParams::default()
        }),
        Err(RequestError::Validation(ValidationError::ExactAtZero))
    ));
}

#[test]
fn request_watch_list_streaming_parameters() {
    // The reflector's watch-list request (client-go-semantics §1 WatchList).
    let pods = Builder::of::<Pod>(Some("kube-system")).unwrap();
    let req = pods
        .watch(&WatchParams {
            resource_version: Some(String::new()),
            resource_version_match: Some(ResourceVersionMatch::NotOlderThan),
            send_initial_events: Some(true),
            allow_watch_bookmarks: true,
            timeout_seconds: Some(317),
            ..WatchParams::default()
        })
        .unwrap();
    assert_eq!(
        req.uri(),
        "/api/v1/namespaces/kube-system/pods?allowWatchBookmarks=true&resourceVersionMatch=NotOlderThan\
         &sendInitialEvents=true&timeoutSeconds=317&watch=true"
    );
    assert!(matches!(
        pods.watch(&WatchParams {
            send_initial_events: Some(true),
            ..WatchParams::default()
        }),
        Err(RequestError::Validation(
            ValidationError::InitialEventsWithoutNotOlderThan
        ))
    ));
}

#[test]
fn request_accept_follows_negotiation_for_objects_and_collections() {
    let pods = Builder::of::<Pod>(Some("ns"))
        .unwrap()
        .with_negotiation(Negotiation::Metadata);
    let list = pods.list(&ListParams::default()).unwrap();
    assert_eq!(
        header(&list, "accept"),
        Some("application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json")
    );
    let watch = pods.watch(&WatchParams::default()).unwrap();
    assert_eq!(header(&watch, "accept"), header(&list, "accept"));
    let get = pods.get("p", &GetParams::default()).unwrap();
    assert_eq!(
        header(&get, "accept"),
        Some("application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json")
    );
    let table = pods.clone().with_negotiation(Negotiation::Table);
    assert_eq!(
        header(&table.list(&ListParams::default()).unwrap(), "accept"),
        Some("application/json;as=Table;v=v1;g=meta.k8s.io,application/json")
    );
}

#[test]
fn request_table_include_object() {
    let pods = Builder::of::<Pod>(Some("ns"))
        .unwrap()
        .with_table_include_object(IncludeObject::Object);
    // Without Table negotiation the parameter is not sent.
    assert_eq!(
        pods.list(&ListParams::default()).unwrap().uri(),
        "/api/v1/namespaces/ns/pods"
    );
    let table = pods.with_negotiation(Negotiation::Table);
    assert_eq!(
        table.list(&ListParams::default()).unwrap().uri(),
        "/api/v1/namespaces/ns/pods?includeObject=Object"
    );
    assert_eq!(
        table.get("p", &GetParams::default()).unwrap().uri(),
        "/api/v1/namespaces/ns/pods/p?includeObject=Object"
    );
    assert_eq!(
        table.watch(&WatchParams::default()).unwrap().uri(),
        "/api/v1/namespaces/ns/pods?includeObject=Object&watch=true"
    );
}

#[test]
fn request_create_and_replace_with_body_format() {
    let deployments = Builder::of::<Deployment>(Some("default"))
        .unwrap()
        .with_negotiation(Negotiation::Protobuf)
        .with_body_format(Format::Protobuf);
    let pp = PostParams {
        dry_run: true,
        field_manager: Some("ctl".into()),
        ..PostParams::default()
    };
    let body = Bytes::from_static(b"k8s\0\x0a");
    let create = deployments.create(&pp, body.clone()).unwrap();
    assert_eq!(create.method(), Method::POST);
    assert_eq!(
        create.uri(),
        "/apis/apps/v1/namespaces/default/deployments?dryRun=All&fieldManager=ctl"
    );
    assert_eq!(
        header(&create, "content-type"),
        Some("application/vnd.kubernetes.protobuf")
    );
    assert_eq!(
        header(&create, "accept"),
        Some("application/vnd.kubernetes.protobuf,application/json")
    );
    assert_eq!(create.body(), &body);
    let replace = deployments.replace("web", &pp, body).unwrap();
    assert_eq!(replace.method(), Method::PUT);
    assert_eq!(
        replace.uri(),
        "/apis/apps/v1/namespaces/default/deployments/web?dryRun=All&fieldManager=ctl"
    );
    // Creating a namespaced object needs a namespace.
    let all = Builder::of::<Deployment>(None).unwrap();
    assert!(matches!(
        all.create(&PostParams::default(), Bytes::new()),
        Err(RequestError::Path(PathError::NamespaceRequired { .. }))
    ));
    // Cluster-scoped create has no namespace segment.
    let nodes = Builder::of::<Node>(None).unwrap();
    assert_eq!(
        nodes
            .create(&PostParams::default(), Bytes::new())
            .unwrap()
            .uri(),
        "/api/v1/nodes"
    );
}

#[test]
fn request_delete_options_body() {
    let pods = Builder::of::<Pod>(Some("ns")).unwrap();
    let req = pods
        .delete(
            "p",
            &DeleteParams {
                dry_run: false,
                grace_period_seconds: Some(0),
                propagation_policy: Some(PropagationPolicy::Foreground),
                preconditions: Some(Preconditions {
                    uid: Some("u-1".into()),
                    resource_version: Some("7".into()),
                }),
            },
        )
        .unwrap();
    assert_eq!(req.uri(), "/api/v1/namespaces/ns/pods/p");
    assert_eq!(
        body_json(&req),
        json!({
            "kind": "DeleteOptions", "apiVersion": "v1",
            "gracePeriodSeconds": 0, "propagationPolicy": "Foreground",
            "preconditions": {"uid": "u-1", "resourceVersion": "7"}
        })
    );
    let collection = pods
        .delete_collection(
            &DeleteParams {
                propagation_policy: Some(PropagationPolicy::Background),
                ..DeleteParams::default()
            },
            &ListParams {
                label_selector: Some("app=web".into()),
                ..ListParams::default()
            },
        )
        .unwrap();
    assert_eq!(
        collection.uri(),
        "/api/v1/namespaces/ns/pods?labelSelector=app%3Dweb"
    );
    assert_eq!(
        body_json(&collection),
        json!({"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"})
    );
}

#[test]
fn request_logs_parameters() {
    let pods = Builder::of::<Pod>(Some("ns")).unwrap();
    let since: k8s_openapi::jiff::Timestamp = "2024-01-02T03:04:05Z".parse().unwrap();
    let req = pods
        .logs(
            "web-0",
            &LogParams {
                container: Some("app".into()),
                follow: true,
                previous: true,
                since_time: Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(since)),
                timestamps: true,
                tail_lines: Some(100),
                limit_bytes: Some(4096),
                stream: Some(LogStream::All),
                insecure_skip_tls_verify_backend: true,
                ..LogParams::default()
            },
        )
        .unwrap();
    assert_eq!(req.method(), Method::GET);
    assert_eq!(
        req.uri(),
        "/api/v1/namespaces/ns/pods/web-0/log?container=app&follow=true\
         &insecureSkipTLSVerifyBackend=true&limitBytes=4096&previous=true\
         &sinceTime=2024-01-02T03%3A04%3A05Z&stream=All&tailLines=100&timestamps=true"
    );
    assert_eq!(header(&req, "accept"), None);
    let req = pods
        .logs(
            "web-0",
            &LogParams {
                since_seconds: Some(60),
                ..LogParams::default()
            },
        )
        .unwrap();
    assert_eq!(
        req.uri(),
        "/api/v1/namespaces/ns/pods/web-0/log?sinceSeconds=60"
    );
    assert!(matches!(
        pods.logs(
            "web-0",
            &LogParams {
                limit_bytes: Some(0),
                ..LogParams::default()
            }
        ),
        Err(RequestError::Validation(ValidationError::ZeroLimitBytes))
    ));
}

#[test]
fn request_eviction_scale_and_named_subresources() {
    let pods = Builder::of::<Pod>(Some("ns")).unwrap();
    let evict = pods
        .evict(
            "web-0",
            &DeleteParams {
                grace_period_seconds: Some(5),
                dry_run: true,
                ..DeleteParams::default()
            },
        )
        .unwrap();
    assert_eq!(evict.method(), Method::POST);
    assert_eq!(evict.uri(), "/api/v1/namespaces/ns/pods/web-0/eviction");
    assert_eq!(header(&evict, "content-type"), Some("application/json"));
    assert_eq!(
        body_json(&evict),
        json!({
            "apiVersion": "policy/v1", "kind": "Eviction",
            "metadata": {"name": "web-0", "namespace": "ns"},
            "deleteOptions": {"dryRun": ["All"], "gracePeriodSeconds": 5}
        })
    );

    let deployments = Builder::of::<Deployment>(Some("ns")).unwrap();
    let scale = deployments.get_scale("web").unwrap();
    assert_eq!(
        scale.uri(),
        "/apis/apps/v1/namespaces/ns/deployments/web/scale"
    );
    let patch = deployments
        .patch_scale(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 3}})),
        )
        .unwrap();
    assert_eq!(
        patch.uri(),
        "/apis/apps/v1/namespaces/ns/deployments/web/scale"
    );
    assert_eq!(
        header(&patch, "content-type"),
        Some("application/merge-patch+json")
    );
    let put = deployments
        .replace_scale("web", &PostParams::default(), Bytes::from_static(b"{}"))
        .unwrap();
    assert_eq!(put.method(), Method::PUT);
    assert_eq!(
        deployments.get_status("web").unwrap().uri(),
        "/apis/apps/v1/namespaces/ns/deployments/web/status"
    );

    let token = Builder::new(
        ApiResource::new(
            "",
            "v1",
            "ServiceAccount",
            "serviceaccounts",
            Scope::Namespaced,
        ),
        Some("ns"),
    )
    .unwrap()
    .create_subresource(
        "token",
        "default",
        &PostParams::default(),
        Bytes::from_static(b"{}"),
    )
    .unwrap();
    assert_eq!(
        token.uri(),
        "/api/v1/namespaces/ns/serviceaccounts/default/token"
    );
}

#[test]
fn validation_request_names_and_namespaces() {
    let pods = Builder::of::<Pod>(Some("ns")).unwrap();
    assert!(matches!(
        pods.get("", &GetParams::default()),
        Err(RequestError::Path(PathError::Empty(Segment::Name)))
    ));
    for bad in ["a/b", "50%", ".", ".."] {
        let err = pods.delete(bad, &DeleteParams::default()).unwrap_err();
        assert!(
            matches!(
                err,
                RequestError::Path(PathError::InvalidSegment {
                    segment: Segment::Name,
                    ..
                })
            ),
            "{bad}: {err}"
        );
        assert!(Builder::of::<Pod>(Some(bad)).is_err(), "namespace {bad}");
    }
    assert!(matches!(
        Builder::of::<Node>(Some("ns")),
        Err(RequestError::Path(
            PathError::NamespaceOnClusterScoped { .. }
        ))
    ));
    assert!(matches!(
        Builder::of::<Pod>(None)
            .unwrap()
            .get("p", &GetParams::default()),
        Err(RequestError::Path(PathError::NamespaceRequired { .. }))
    ));
    // Unusual but valid names are escaped, not rejected.
    let req = pods.get("a b:ü", &GetParams::default()).unwrap();
    assert_eq!(req.uri(), "/api/v1/namespaces/ns/pods/a%20b:%C3%BC");
    // A field manager over 128 bytes is refused on every write.
    let long = PostParams {
        field_manager: Some("x".repeat(129)),
        ..PostParams::default()
    };
    assert!(matches!(
        pods.create(&long, Bytes::new()),
        Err(RequestError::Validation(
            ValidationError::FieldManagerTooLong { len: 129 }
        ))
    ));
    assert!(matches!(
        pods.replace_status("p", &long, Bytes::new()),
        Err(RequestError::Validation(
            ValidationError::FieldManagerTooLong { .. }
        ))
    ));
    let err = pods
        .patch("p", &PatchParams::default(), &Patch::Apply(json!({})))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "fieldManager: Required value: is required for apply patch"
    );
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        // Whatever the selectors, the built URI parses and its query decodes
        // back to exactly what was asked.
        #[test]
        fn request_list_query_round_trips_arbitrary_selectors(
            label in any::<String>(),
            field in "[a-zA-Z0-9.=!, ()/%+&?#-]{0,60}",
            rv in proptest::option::of("[0-9]{1,12}"),
        ) {
            let pods = Builder::of::<Pod>(Some("ns")).unwrap();
            let params = ListParams {
                label_selector: Some(label.clone()),
                field_selector: Some(field.clone()),
                resource_version: rv.clone(),
                ..ListParams::default()
            };
            let req = pods.list(&params).unwrap();
            let uri = req.uri();
            prop_assert_eq!(uri.path(), "/api/v1/namespaces/ns/pods");
            let pairs = query::decode(uri.query().unwrap_or("")).unwrap();
            let mut expected = Vec::new();
            if !field.is_empty() { expected.push(("fieldSelector".to_owned(), field)); }
            if !label.is_empty() { expected.push(("labelSelector".to_owned(), label)); }
            if let Some(rv) = rv { expected.push(("resourceVersion".to_owned(), rv)); }
            prop_assert_eq!(pairs, expected);
        }
    }
}
