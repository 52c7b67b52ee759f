use super::*;
use proptest::prelude::*;
use serde_json::{Value, json};

const AGGREGATED_TYPE: &str =
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

fn headers(content_type: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, content_type.parse().unwrap());
    headers
}

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

fn resource(plural: &str, kind: (&str, &str, &str), scope: &str) -> Value {
    json!({
        "resource": plural,
        "responseKind": {"group": kind.0, "version": kind.1, "kind": kind.2},
        "scope": scope,
        "singularResource": plural.trim_end_matches('s'),
        "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"],
    })
}

fn core_doc() -> Value {
    let mut pods = resource("pods", ("", "v1", "Pod"), "Namespaced");
    pods["shortNames"] = json!(["po"]);
    pods["subresources"] = json!([
        {"subresource": "status", "responseKind": {"group": "", "version": "v1", "kind": "Pod"}, "verbs": ["get", "patch", "update"]},
        {"subresource": "log", "verbs": ["get"]},
    ]);
    json!({
        "kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "metadata": {},
        "items": [{"metadata": {"name": ""}, "versions": [{"version": "v1", "freshness": "Current", "resources": [
            pods,
            resource("nodes", ("", "v1", "Node"), "Cluster"),
            resource("events", ("", "v1", "Event"), "Namespaced"),
        ]}]}],
    })
}

fn groups_doc() -> Value {
    let mut deployments = resource("deployments", ("apps", "v1", "Deployment"), "Namespaced");
    deployments["subresources"] = json!([{
        "subresource": "scale",
        "responseKind": {"group": "autoscaling", "version": "v1", "kind": "Scale"},
        "verbs": ["get", "patch", "update"],
    }]);
    json!({
        "kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "metadata": {},
        "items": [
            {"metadata": {"name": "apps"}, "versions": [{"version": "v1", "resources": [deployments]}]},
            {"metadata": {"name": "events.k8s.io"}, "versions": [{"version": "v1", "resources": [
                resource("events", ("events.k8s.io", "v1", "Event"), "Namespaced"),
            ]}]},
            {"metadata": {"name": "example.com"}, "versions": [
                {"version": "v2", "resources": [resource("widgets", ("example.com", "v2", "Widget"), "Cluster")]},
                {"version": "v1", "resources": [
                    resource("widgets", ("example.com", "v1", "Widget"), "Cluster"),
                    resource("gadgets", ("example.com", "v1", "Gadget"), "Namespaced"),
                ]},
                {"version": "v1beta1", "freshness": "Stale", "resources": []},
            ]},
        ],
    })
}

/// Answers every queued request with `answer(path, accept)` until none is left.
fn drive(
    walk: &mut Discoverer,
    mut answer: impl FnMut(&str, &str) -> (StatusCode, &'static str, Vec<u8>),
) -> Result<Vec<String>, DiscoveryError> {
    let mut asked = Vec::new();
    while let Some((id, request)) = walk.poll_request() {
        let path = request.uri().path().to_owned();
        let accept = request.headers()[ACCEPT].to_str().unwrap().to_owned();
        asked.push(format!("{path} {accept}"));
        let (status, content_type, body) = answer(&path, &accept);
        walk.handle_response(id, status, &headers(content_type), &body)?;
    }
    assert!(walk.is_done());
    Ok(asked)
}

fn bytes(value: &Value) -> Vec<u8> {
    serde_json::to_vec(value).unwrap()
}

#[test]
fn discovery_aggregated_resolves_gvk_group_kind_and_kind() {
    let mut walk = Discoverer::new();
    let asked = drive(&mut walk, |path, _| match path {
        "/api" => (StatusCode::OK, AGGREGATED_TYPE, bytes(&core_doc())),
        "/apis" => (StatusCode::OK, AGGREGATED_TYPE, bytes(&groups_doc())),
        other => panic!("unexpected request {other}"),
    })
    .unwrap();
    assert_eq!(
        asked,
        [
            format!("/api {AGGREGATED_ACCEPT}"),
            format!("/apis {AGGREGATED_ACCEPT}")
        ]
    );
    let discovery = walk.finish().unwrap();
    assert!(discovery.is_aggregated());
    let names: Vec<&str> = discovery.groups().iter().map(|g| g.name.as_str()).collect();
    assert_eq!(names, ["", "apps", "events.k8s.io", "example.com"]);

    let pods = discovery
        .resolve(&GroupVersionKind::new("", "v1", "Pod"))
        .unwrap();
    assert_eq!(
        pods.resource,
        ApiResource::new("", "v1", "Pod", "pods", Scope::Namespaced)
    );
    assert!(pods.supports("watch") && !pods.supports("proxy"));
    assert_eq!(pods.short_names, ["po"]);
    assert_eq!(
        pods.subresource("status").unwrap().verbs,
        ["get", "patch", "update"]
    );
    assert_eq!(pods.subresource("log").unwrap().kind, None);
    let nodes = discovery.resolve_kind("Node").unwrap();
    assert_eq!(nodes.resource.scope, Scope::Cluster);

    let deployments = discovery.resolve_group_kind("apps", "Deployment").unwrap();
    assert_eq!(
        deployments.resource.collection_path(Some("ns")).unwrap(),
        "/apis/apps/v1/namespaces/ns/deployments"
    );
    assert_eq!(
        deployments.subresource("scale").unwrap().kind,
        Some(GroupVersionKind::new("autoscaling", "v1", "Scale"))
    );
    // The preferred version is the first listed; a kind only in v1 is found there.
    let widget = discovery
        .resolve_group_kind("example.com", "Widget")
        .unwrap();
    assert_eq!(widget.resource.version, "v2");
    let gadget = discovery
        .resolve_group_kind("example.com", "Gadget")
        .unwrap();
    assert_eq!(gadget.resource.api_version, "example.com/v1");
    assert_eq!(
        discovery
            .resolve(&GroupVersionKind::new("example.com", "v1", "Widget"))
            .unwrap()
            .resource
            .version,
        "v1"
    );
    // Kind only: core first (Event is core v1, as kubectl resolves it).
    assert_eq!(discovery.resolve_kind("Event").unwrap().resource.group, "");
    assert_eq!(
        discovery
            .resolve_resource("apps", "deployments")
            .unwrap()
            .resource
            .kind,
        "Deployment"
    );
    assert_eq!(
        discovery.resolve_resource("", "po").unwrap().resource.kind,
        "Pod"
    );
    assert!(discovery.resolve_kind("Missing").is_none());
    assert!(
        discovery
            .resolve(&GroupVersionKind::new("apps", "v2", "Deployment"))
            .is_none()
    );
    // The stale version is reported, not served.
    assert_eq!(
        discovery.failed(),
        [FailedGroupVersion {
            group_version: "example.com/v1beta1".into(),
            reason: "stale: the server could not refresh this group-version".into(),
        }]
    );
    assert!(
        discovery
            .group("example.com")
            .unwrap()
            .version("v1beta1")
            .is_none()
    );
    assert_eq!(discovery.resources().count(), 8);
}

fn legacy_resource_list(group_version: &str) -> Vec<u8> {
    let resources = match group_version {
        "v1" => json!([
            {"name": "pods", "singularName": "pod", "namespaced": true, "kind": "Pod", "verbs": ["get", "list"], "shortNames": ["po"]},
            {"name": "pods/status", "singularName": "", "namespaced": true, "kind": "Pod", "verbs": ["get", "patch"]},
            {"name": "namespaces", "singularName": "namespace", "namespaced": false, "kind": "Namespace", "verbs": ["get"]},
        ]),
        "apps/v1" => json!([
            {"name": "deployments", "singularName": "deployment", "namespaced": true, "kind": "Deployment", "verbs": ["get"]},
            {"name": "deployments/scale", "singularName": "", "namespaced": true, "group": "autoscaling", "version": "v1", "kind": "Scale", "verbs": ["get"]},
        ]),
        "example.com/v1" | "example.com/v2" => json!([
            {"name": "widgets", "singularName": "widget", "namespaced": false, "kind": "Widget", "verbs": ["get"]},
        ]),
        other => panic!("no resource list for {other}"),
    };
    bytes(
        &json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": resources}),
    )
}

fn legacy_answer(path: &str, accept: &str) -> (StatusCode, &'static str, Vec<u8>) {
    let json = "application/json";
    match path {
        "/api" | "/apis" if accept != LEGACY_ACCEPT => (
            StatusCode::NOT_ACCEPTABLE,
            json,
            bytes(
                &json!({"kind": "Status", "status": "Failure", "reason": "NotAcceptable", "code": 406}),
            ),
        ),
        "/api" => (
            StatusCode::OK,
            json,
            bytes(&json!({"kind": "APIVersions", "versions": ["v1"]})),
        ),
        "/apis" => (
            StatusCode::OK,
            json,
            bytes(
                &json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": [
                    {"name": "apps", "versions": [{"groupVersion": "apps/v1", "version": "v1"}],
                     "preferredVersion": {"groupVersion": "apps/v1", "version": "v1"}},
                    {"name": "example.com", "versions": [
                        {"groupVersion": "example.com/v1", "version": "v1"},
                        {"groupVersion": "example.com/v2", "version": "v2"},
                        {"groupVersion": "example.com/v3", "version": "v3"}],
                     "preferredVersion": {"groupVersion": "example.com/v2", "version": "v2"}},
                ]}),
            ),
        ),
        "/apis/example.com/v3" => (
            StatusCode::SERVICE_UNAVAILABLE,
            json,
            bytes(
                &json!({"kind": "Status", "status": "Failure", "reason": "ServiceUnavailable", "message": "backend down", "code": 503}),
            ),
        ),
        p => (
            StatusCode::OK,
            json,
            legacy_resource_list(p.trim_start_matches("/api/").trim_start_matches("/apis/")),
        ),
    }
}

// client-go discovery_client_test.go: "aggregated discovery: 406 falls back to legacy".
#[test]
fn discovery_falls_back_to_legacy_endpoints_on_406() {
    let mut walk = Discoverer::new();
    let asked = drive(&mut walk, legacy_answer).unwrap();
    assert_eq!(
        asked,
        [
            format!("/api {AGGREGATED_ACCEPT}"),
            format!("/apis {AGGREGATED_ACCEPT}"),
            "/api application/json".into(),
            "/apis application/json".into(),
            "/api/v1 application/json".into(),
            "/apis/apps/v1 application/json".into(),
            "/apis/example.com/v2 application/json".into(),
            "/apis/example.com/v1 application/json".into(),
            "/apis/example.com/v3 application/json".into(),
        ]
    );
    let discovery = walk.finish().unwrap();
    assert!(!discovery.is_aggregated());
    let pods = discovery.resolve_kind("Pod").unwrap();
    assert_eq!(pods.resource.plural, "pods");
    assert_eq!(pods.singular, "pod");
    assert_eq!(
        pods.subresource("status").unwrap().kind,
        Some(GroupVersionKind::new("", "v1", "Pod"))
    );
    assert_eq!(
        discovery.resolve_kind("Namespace").unwrap().resource.scope,
        Scope::Cluster
    );
    let deployments = discovery.resolve_group_kind("apps", "Deployment").unwrap();
    assert_eq!(
        deployments.subresource("scale").unwrap().kind,
        Some(GroupVersionKind::new("autoscaling", "v1", "Scale"))
    );
    // preferredVersion v2 comes first although listed second.
    let example = discovery.group("example.com").unwrap();
    assert_eq!(example.preferred_version().unwrap().version, "v2");
    assert_eq!(
        discovery
            .resolve_group_kind("example.com", "Widget")
            .unwrap()
            .resource
            .version,
        "v2"
    );
    // The group-version that failed is reported; the rest is kept.
    assert_eq!(discovery.failed().len(), 1);
    assert_eq!(discovery.failed()[0].group_version, "example.com/v3");
    assert!(
        discovery.failed()[0].reason.contains("backend down"),
        "{:?}",
        discovery.failed()
    );
}

#[test]
fn discovery_walks_legacy_when_an_old_server_ignores_the_aggregated_accept() {
    // A server older than 1.26 answers the aggregated Accept with the legacy
    // documents in plain application/json: told apart by the Content-Type.
    let mut walk = Discoverer::new();
    let asked = drive(&mut walk, |path, _| legacy_answer(path, LEGACY_ACCEPT)).unwrap();
    assert_eq!(asked.len(), 2 + 5);
    assert!(
        asked[2..].iter().all(|a| a.ends_with(" application/json")),
        "{asked:?}"
    );
    let discovery = walk.finish().unwrap();
    assert!(!discovery.is_aggregated());
    assert!(
        discovery
            .resolve(&GroupVersionKind::new("apps", "v1", "Deployment"))
            .is_some()
    );
}

#[test]
fn discovery_legacy_walk_of_the_recorded_kind_api_group_list() {
    let Some(apis) =
        fixture("recorded/derived-from-k8s-openapi-replays/v1-36/apis-apigrouplist.json")
    else {
        return;
    };
    let mut walk = Discoverer::legacy();
    let mut group_versions = Vec::new();
    while let Some((id, request)) = walk.poll_request() {
        assert_eq!(request.headers()[ACCEPT], LEGACY_ACCEPT);
        let path = request.uri().path().to_owned();
        let (status, body) = match path.as_str() {
            "/api" => (
                StatusCode::OK,
                br#"{"kind":"APIVersions","versions":["v1"]}"#.to_vec(),
            ),
            "/apis" => (StatusCode::OK, apis.clone()),
            gv => {
                group_versions.push(gv.to_owned());
                (StatusCode::NOT_FOUND, b"404 page not found".to_vec())
            }
        };
        walk.handle_response(id, status, &headers("application/json"), &body)
            .unwrap();
    }
    // One request per group-version of the real cluster, all of them failed here.
    assert!(
        group_versions.contains(&"/apis/apps/v1".to_owned()),
        "{group_versions:?}"
    );
    assert!(group_versions.len() > 15, "{group_versions:?}");
    let discovery = walk.finish().unwrap();
    assert_eq!(discovery.failed().len(), group_versions.len());
    assert!(discovery.groups().is_empty());
}

#[test]
fn discovery_of_the_apidiscovery_v2_fixture_reports_its_placeholder_scope() {
    let Some(group) = fixture("k8s-api-HEAD/apidiscovery.k8s.io.v2.APIGroupDiscovery.json") else {
        return;
    };
    let group: Value = serde_json::from_slice(&group).unwrap();
    let list = |group: &Value| bytes(&json!({"kind": "APIGroupDiscoveryList", "items": [group]}));
    let err = parse_aggregated("/apis", &list(&group), &mut Vec::new()).unwrap_err();
    let message = err.to_string();
    assert!(message.contains("scope \"scopeValue\""), "{message}");
    assert!(message.contains("resourceValue"), "{message}");
    // With a real scope it reads whole: plural, kind, subresource and its kind.
    let mut fixed = group.clone();
    fixed["versions"][0]["resources"][0]["scope"] = "Cluster".into();
    fixed["versions"][0]["freshness"] = "Current".into();
    let groups = parse_aggregated("/apis", &list(&fixed), &mut Vec::new()).unwrap();
    let r = &groups[0].versions[0].resources[0];
    assert_eq!(groups[0].name, "nameValue");
    assert_eq!(r.resource.plural, "resourceValue");
    assert_eq!(r.resource.kind, "kindValue");
    assert_eq!(r.resource.api_version, "nameValue/versionValue");
    assert_eq!(r.short_names, ["shortNamesValue"]);
    assert_eq!(
        r.subresource("subresourceValue").unwrap().kind,
        Some(GroupVersionKind::new(
            "groupValue",
            "versionValue",
            "kindValue"
        ))
    );
}

#[test]
fn discovery_malformed_documents_are_errors_that_name_the_path() {
    let cases: [(&str, &str, &[u8], &str); 6] = [
        ("/api", AGGREGATED_TYPE, b"{\"items\": [", "/api: malformed APIGroupDiscoveryList"),
        ("/apis", AGGREGATED_TYPE, b"{\"kind\":\"PodList\",\"items\":[]}", "kind is \"PodList\""),
        ("/apis", AGGREGATED_TYPE, b"[1,2,3]", "/apis: malformed APIGroupDiscoveryList"),
        ("/apis", "application/json", b"{\"groups\": 7}", "/apis: malformed APIGroupList"),
        ("/api", "application/json", b"\xff\xfe", "/api: malformed APIVersions"),
        (
            "/apis",
            AGGREGATED_TYPE,
            br#"{"items":[{"metadata":{"name":"g"},"versions":[{"version":"v1","resources":[{"resource":"a/b","scope":"Cluster","responseKind":{"kind":"A"}}]}]}]}"#,
            "is not a plural",
        ),
    ];
    for (target, content_type, body, want) in cases {
        let mut walk = Discoverer::new();
        let mut result = Ok(());
        while let Some((id, request)) = walk.poll_request() {
            let (ct, b): (&str, &[u8]) = if request.uri().path() == target {
                (content_type, body)
            } else {
                (AGGREGATED_TYPE, b"{\"items\":[]}")
            };
            result = result.and(walk.handle_response(id, StatusCode::OK, &headers(ct), b));
        }
        let err = result.unwrap_err();
        assert!(matches!(err, DiscoveryError::Malformed { .. }), "{err:?}");
        assert!(
            err.to_string().contains(want),
            "{err} should contain {want:?}"
        );
    }
    // A legacy resource list for the wrong group-version is refused too.
    let err =
        parse_resource_list("/apis/apps/v1", "apps/v1", &legacy_resource_list("v1")).unwrap_err();
    assert!(err.to_string().contains("groupVersion is \"v1\""), "{err}");
}

#[test]
fn discovery_root_errors_other_than_406_fail_the_walk() {
    let mut walk = Discoverer::new();
    let (id, _) = walk.poll_request().unwrap();
    let body =
        br#"{"kind":"Status","status":"Failure","reason":"Forbidden","message":"no","code":403}"#;
    let err = walk
        .handle_response(
            id,
            StatusCode::FORBIDDEN,
            &headers("application/json"),
            body,
        )
        .unwrap_err();
    assert!(
        matches!(&err, DiscoveryError::Server { path, source } if path == "/api" && source.is_forbidden()),
        "{err:?}"
    );
    // An id never handed out, or answered twice, is refused.
    assert!(matches!(
        walk.handle_response(id, StatusCode::OK, &HeaderMap::new(), b"{}"),
        Err(DiscoveryError::UnknownRequest(_))
    ));
    assert!(matches!(walk.finish(), Err(DiscoveryError::Unfinished(1))));
}

#[test]
fn discovery_handle_error_takes_an_api_error_the_client_already_classified() {
    let mut walk = Discoverer::new();
    let (core, _) = walk.poll_request().unwrap();
    let (named, _) = walk.poll_request().unwrap();
    let not_acceptable = |id| {
        response::api_error(
            &Method::GET,
            StatusCode::NOT_ACCEPTABLE,
            &HeaderMap::new(),
            b"",
        )
        .map(|e| (id, e))
        .unwrap()
    };
    for (id, error) in [not_acceptable(core), not_acceptable(named)] {
        walk.handle_error(id, error).unwrap();
    }
    let (_, request) = walk.poll_request().unwrap();
    assert_eq!(request.uri().path(), "/api");
    assert_eq!(request.headers()[ACCEPT], LEGACY_ACCEPT);
}

#[test]
fn discovery_aggregated_content_type_detection() {
    assert!(is_aggregated(&headers(AGGREGATED_TYPE)));
    assert!(is_aggregated(&headers(
        "application/json; as=APIGroupDiscoveryList; v=v2; g=apidiscovery.k8s.io"
    )));
    assert!(!is_aggregated(&headers("application/json")));
    assert!(!is_aggregated(&headers(
        "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"
    )));
    assert!(!is_aggregated(&headers(
        "application/vnd.kubernetes.protobuf;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
    )));
    assert!(!is_aggregated(&HeaderMap::new()));
}

proptest! {
    #[test]
    fn discovery_arbitrary_bodies_are_errors_or_documents_never_panics(
        body in proptest::collection::vec(any::<u8>(), 0..256),
        aggregated in any::<bool>(),
    ) {
        let mut walk = Discoverer::new();
        let content_type = if aggregated { AGGREGATED_TYPE } else { "application/json" };
        while let Some((id, _)) = walk.poll_request() {
            let _ = walk.handle_response(id, StatusCode::OK, &headers(content_type), &body);
        }
        let _ = walk.finish();
    }
}

#[test]
fn discovery_api_resource_for_kind_takes_the_preferred_version_or_says_not_served() {
    let mut walk = Discoverer::new();
    drive(&mut walk, |path, _| match path {
        "/api" => (StatusCode::OK, AGGREGATED_TYPE, bytes(&core_doc())),
        "/apis" => (StatusCode::OK, AGGREGATED_TYPE, bytes(&groups_doc())),
        other => panic!("unexpected request {other}"),
    })
    .unwrap();
    let discovery = walk.finish().unwrap();
    let deployments = discovery
        .api_resource_for_kind("apps", "Deployment")
        .unwrap();
    assert_eq!(
        Some(&deployments),
        discovery
            .resolve_group_kind("apps", "Deployment")
            .map(|r| &r.resource)
    );
    assert_eq!(deployments.plural, "deployments");
    assert!(matches!(
        discovery.api_resource_for_kind("apps", "Pod"),
        Err(DiscoveryError::NotServed(what)) if what == "kind \"Pod\" of group \"apps\""
    ));
    assert!(matches!(
        discovery.api_resource_for_kind("nowhere.example.com", "Widget"),
        Err(DiscoveryError::NotServed(what)) if what.contains("nowhere.example.com")
    ));
}
