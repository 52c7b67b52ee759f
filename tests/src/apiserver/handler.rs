//! Answers: a parsed request becomes a model call and the model's answer a
//! response in the negotiated format and shape. This module owns the verb
//! dispatch (get, list, watch, create, update, patch, delete,
//! deletecollection, the status subresource), request body decoding by
//! `Content-Type`, and the statuses a real
//! server gives for requests it cannot serve (404, 405, 406, 415, 400).

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::{HeaderValue, Method, Response, StatusCode, header, request::Parts};
use serde_json::{Value, json};
use windlass_proto::codec::{Format, cbor, protobuf};

use super::discovery;
use super::response::{
    Body, Offers, Shape, error_response, list_response, negotiate, status_error, value_response,
};
use super::route::{self, Query, ResourcePath, Route};
use super::table::{self, IncludeObject, Printer};
use super::watch::{self, View};
use super::{Shared, apply};
use crate::model::{
    DeleteOptions, Deleted, Gvr, Patch, PropagationPolicy, Resource, StatusError, Subresource,
    json_patch, merge_patch,
};

/// Answers one request whose body has been read.
pub fn handle(shared: &Arc<Shared>, parts: &Parts, body: Bytes) -> Response<Body> {
    match route_request(shared, parts, body) {
        Ok(response) => response,
        Err(error) => error_response(&error),
    }
}

fn route_request(
    shared: &Arc<Shared>,
    parts: &Parts,
    body: Bytes,
) -> Result<Response<Body>, StatusError> {
    let accept = parts
        .headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok());
    let route = route::parse(parts.uri.path()).ok_or_else(not_found)?;
    let Route::Resource(path) = route else {
        if parts.method != Method::GET && parts.method != Method::HEAD {
            return Err(method_not_allowed());
        }
        return discovery_response(shared, parts, route, accept);
    };
    resource_request(shared, parts, &path, body, accept)
}

fn discovery_response(
    shared: &Arc<Shared>,
    parts: &Parts,
    route: Route,
    accept: Option<&str>,
) -> Result<Response<Body>, StatusError> {
    let offers = match route {
        Route::CoreVersions | Route::Groups => Offers::Discovery,
        _ => Offers::Object,
    };
    let negotiated = negotiate(accept, offers)?;
    let model = shared.model();
    let registry = model.registry();
    let value = match (&route, negotiated.shape) {
        (Route::Version, _) => discovery::version(),
        (Route::Health, _) => {
            drop(model);
            let mut response = Response::new(Body::Full(Some(Bytes::from_static(b"ok"))));
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            );
            return Ok(response);
        }
        (Route::CoreVersions, Shape::Discovery) => discovery::aggregated(registry, true),
        (Route::Groups, Shape::Discovery) => discovery::aggregated(registry, false),
        (Route::CoreVersions, _) => discovery::core_versions(local_addr(parts)),
        (Route::Groups, _) => discovery::group_list(registry),
        (Route::Group(g), _) => discovery::group(registry, g)?,
        (Route::ResourceList { group, version }, _) => {
            discovery::resource_list(registry, group, version)?
        }
        (Route::OpenApiIndex, _) => discovery::openapi_index(registry),
        (Route::OpenApi { group, version }, _) => {
            discovery::openapi_document(registry, group, version)?
        }
        (Route::Resource(_), _) => return Err(not_found()),
    };
    drop(model);
    let mut response = value_response(StatusCode::OK, negotiated.format, &value);
    if negotiated.shape == Shape::Discovery {
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(discovery::AGGREGATED_CONTENT_TYPE),
        );
        headers.insert(header::VARY, HeaderValue::from_static("Accept"));
    }
    Ok(response)
}

/// The address the client reached (for `serverAddressByClientCIDRs`).
fn local_addr(parts: &Parts) -> std::net::SocketAddr {
    parts
        .headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.parse().ok())
        .unwrap_or_else(|| std::net::SocketAddr::from(([127, 0, 0, 1], 0)))
}

fn resource_request(
    shared: &Arc<Shared>,
    parts: &Parts,
    path: &ResourcePath,
    body: Bytes,
    accept: Option<&str>,
) -> Result<Response<Body>, StatusError> {
    let query = Query::parse(parts.uri.query())?;
    let gvr = Gvr::new(&path.group, &path.version, &path.resource);
    let resource = shared
        .model()
        .registry()
        .lookup(&gvr)
        .map_err(|_| not_found())?;
    if !resource.namespaced && path.namespace.is_some() {
        return Err(not_found());
    }
    if path.subresource.as_deref() == Some("scale") && discovery::has_scale(&resource) {
        let name = path.name.as_deref().ok_or_else(not_found)?;
        return scale(
            shared,
            parts,
            &gvr,
            path.namespace.as_deref(),
            name,
            &body,
            accept,
        );
    }
    let subresource = match path.subresource.as_deref() {
        None => Subresource::Main,
        Some("status") if resource.has_status => Subresource::Status,
        Some(_) => return Err(not_found()),
    };
    if query.get("dryRun").is_some_and(|v| !v.is_empty()) {
        return Err(status_error(
            400,
            "BadRequest",
            "dryRun is not supported by windlass-apiserver".to_owned(),
        ));
    }
    let negotiated = negotiate(accept, Offers::Resource)?;
    let include = IncludeObject::parse(query.get("includeObject")).ok_or_else(|| {
        status_error(
            400,
            "BadRequest",
            format!(
                "includeObject: Unsupported value: {:?}",
                query.get("includeObject").unwrap_or_default()
            ),
        )
    })?;
    let ns = path.namespace.as_deref();
    let name = path.name.as_deref();
    let is_watch = path.watch_prefix || query.is_watch()?;
    let now = Instant::now();
    let printer = printer(shared, &resource, &gvr.version);
    let render = |value: &Value| shape_object(&printer, value, negotiated.shape, include);

    match (&parts.method, name) {
        (&Method::GET, Some(name)) if is_watch => {
            let mut params = query.watch_params()?;
            let by_name = format!("metadata.name={name}");
            params.field_selector = Some(match params.field_selector.take() {
                Some(f) if !f.is_empty() => format!("{f},{by_name}"),
                _ => by_name,
            });
            let watch = shared.model().watch(&gvr, ns, &params, now)?;
            Ok(start_watch(
                shared, watch, &resource, printer, negotiated, include,
            ))
        }
        (&Method::GET, None) if is_watch => {
            let params = query.watch_params()?;
            let watch = shared.model().watch(&gvr, ns, &params, now)?;
            Ok(start_watch(
                shared, watch, &resource, printer, negotiated, include,
            ))
        }
        (&Method::GET | &Method::HEAD, Some(name)) => {
            let object = shared.model().get(&gvr, ns, name)?;
            Ok(value_response(
                StatusCode::OK,
                negotiated.format,
                &render(&object),
            ))
        }
        (&Method::GET | &Method::HEAD, None) => {
            let params = query.list_params()?;
            let list = shared.model().list(&gvr, ns, &params)?;
            if matches!(negotiated.shape, Shape::Object | Shape::Discovery) {
                return Ok(list_response(StatusCode::OK, negotiated.format, &list));
            }
            let value = shape_list(&printer, &list.to_json(), negotiated.shape, include);
            Ok(value_response(StatusCode::OK, negotiated.format, &value))
        }
        (&Method::POST, None) if subresource == Subresource::Main => {
            let mut object = decode_body(parts, &body)?;
            check_type(&resource, &gvr, &object)?;
            apply::record_update(&resource, None, &mut object, &field_manager(parts, &query));
            let created = shared.mutate(|m| m.create(&gvr, ns, object, now))?;
            Ok(value_response(
                StatusCode::CREATED,
                negotiated.format,
                &render(&created),
            ))
        }
        (&Method::PUT, Some(name)) => {
            let object = decode_body(parts, &body)?;
            check_type(&resource, &gvr, &object)?;
            if let Some(body_name) = object["metadata"]["name"].as_str()
                && body_name != name
            {
                return Err(status_error(
                    400,
                    "BadRequest",
                    "the name of the object does not match the name on the URL".to_owned(),
                ));
            }
            let mut object = object;
            if subresource == Subresource::Main
                && let Ok(current) = shared.model().get(&gvr, ns, name)
            {
                apply::record_update(
                    &resource,
                    Some(&current),
                    &mut object,
                    &field_manager(parts, &query),
                );
            }
            let updated = shared.mutate(|m| m.update(&gvr, ns, name, subresource, object, now))?;
            Ok(value_response(
                StatusCode::OK,
                negotiated.format,
                &render(&updated),
            ))
        }
        (&Method::PATCH, Some(name)) => {
            let mut patch = decode_patch(parts, &body, &query, &resource)?;
            let current = shared.model().get(&gvr, ns, name);
            let existed = current.is_ok();
            if let (Ok(current), Subresource::Main) = (&current, subresource) {
                record_patch(
                    &resource,
                    current,
                    &mut patch,
                    &field_manager(parts, &query),
                );
            }
            let patched = shared.mutate(|m| m.patch(&gvr, ns, name, subresource, &patch, now))?;
            let code = if existed {
                StatusCode::OK
            } else {
                StatusCode::CREATED
            };
            Ok(value_response(code, negotiated.format, &render(&patched)))
        }
        (&Method::DELETE, Some(name)) if subresource == Subresource::Main => {
            let options = delete_options(&query, &body)?;
            let deleted = shared.mutate(|m| m.delete(&gvr, ns, name, &options, now))?;
            match deleted {
                Deleted::Object(object) => Ok(value_response(
                    StatusCode::OK,
                    negotiated.format,
                    &render(&object),
                )),
                Deleted::Status(status) => {
                    let mut value = serde_json::to_value(&*status).unwrap_or_default();
                    value["kind"] = "Status".into();
                    value["apiVersion"] = "v1".into();
                    Ok(value_response(StatusCode::OK, negotiated.format, &value))
                }
            }
        }
        (&Method::DELETE, None) => {
            let params = query.list_params()?;
            let options = delete_options(&query, &body)?;
            let list = shared.mutate(|m| m.delete_collection(&gvr, ns, &params, &options, now))?;
            if matches!(negotiated.shape, Shape::Object | Shape::Discovery) {
                return Ok(list_response(StatusCode::OK, negotiated.format, &list));
            }
            let value = shape_list(&printer, &list.to_json(), negotiated.shape, include);
            Ok(value_response(StatusCode::OK, negotiated.format, &value))
        }
        _ => Err(method_not_allowed()),
    }
}

fn start_watch(
    shared: &Arc<Shared>,
    watch: crate::model::Watch,
    resource: &Resource,
    printer: Printer,
    mut negotiated: super::response::Negotiated,
    include: IncludeObject,
) -> Response<Body> {
    // Custom resources and tables have no protobuf message: their events are JSON.
    if negotiated.format == Format::Protobuf
        && (resource.is_custom || negotiated.shape == Shape::Table)
    {
        negotiated.format = Format::Json;
    }
    watch::start(
        shared,
        watch,
        View {
            negotiated,
            printer,
            include,
        },
    )
}

/// The field manager of a non-apply write: `fieldManager`, or the
/// `User-Agent` up to its first `/` (as the server derives it).
fn field_manager(parts: &Parts, query: &Query) -> String {
    if let Some(manager) = query.get("fieldManager").filter(|m| !m.is_empty()) {
        return manager.to_owned();
    }
    parts
        .headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .and_then(|ua| ua.split('/').next())
        .filter(|m| !m.is_empty())
        .unwrap_or("unknown")
        .to_owned()
}

/// Adds the `Update` entry of a merge, strategic merge or JSON patch to
/// the patch itself, computed on the object the patch will produce. A
/// patch that does not apply is left alone: the model reports why.
fn record_patch(resource: &Resource, current: &Value, patch: &mut Patch, manager: &str) {
    let mut next = current.clone();
    match &*patch {
        Patch::Merge(p) if p.is_object() => merge_patch(&mut next, p),
        Patch::StrategicMerge(p) if p.is_object() => apply::strategic_merge(&mut next, p),
        Patch::Json(ops) => match json_patch(current, ops) {
            Ok(patched) => next = patched,
            Err(_) => return,
        },
        _ => return,
    }
    apply::record_update(resource, Some(current), &mut next, manager);
    let entries = next["metadata"]["managedFields"].clone();
    match patch {
        Patch::Merge(p) | Patch::StrategicMerge(p) => {
            if let Some(map) = p.as_object_mut() {
                let meta = map.entry("metadata").or_insert_with(|| json!({}));
                if meta.is_object() {
                    meta["managedFields"] = entries;
                }
            }
        }
        Patch::Json(Value::Array(ops)) => {
            ops.push(json!({"op": "add", "path": "/metadata/managedFields", "value": entries}));
        }
        _ => {}
    }
}

/// The `scale` subresource: an `autoscaling/v1` `Scale` view of
/// `spec.replicas`; GET reads it, PUT and PATCH (merge or JSON patch, or
/// strategic merge, which for a Scale is a merge) write `spec.replicas` back.
fn scale(
    shared: &Arc<Shared>,
    parts: &Parts,
    gvr: &Gvr,
    ns: Option<&str>,
    name: &str,
    body: &[u8],
    accept: Option<&str>,
) -> Result<Response<Body>, StatusError> {
    let negotiated = negotiate(accept, Offers::Object)?;
    let current = shared.model().get(gvr, ns, name)?;
    let view = scale_of(&current);
    let wanted = match parts.method {
        Method::GET => {
            return Ok(value_response(StatusCode::OK, negotiated.format, &view));
        }
        Method::PUT => decode_body(parts, body)?,
        Method::PATCH => {
            let patch: Value = serde_json::from_slice(body).map_err(|e| {
                status_error(400, "BadRequest", format!("error decoding patch: {e}"))
            })?;
            match content_type(parts).as_str() {
                "application/json-patch+json" => json_patch(&view, &patch)?,
                "application/merge-patch+json" | "application/strategic-merge-patch+json" => {
                    let mut next = view.clone();
                    merge_patch(&mut next, &patch);
                    next
                }
                _ => {
                    return Err(status_error(
                        415,
                        "UnsupportedMediaType",
                        "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json".to_owned(),
                    ));
                }
            }
        }
        _ => return Err(method_not_allowed()),
    };
    let Some(replicas) = wanted["spec"]["replicas"].as_i64().filter(|r| *r >= 0) else {
        return Err(status_error(
            422,
            "Invalid",
            format!(
                "Scale.autoscaling \"{name}\" is invalid: spec.replicas: Invalid value: {}: must be greater than or equal to 0",
                wanted["spec"]["replicas"]
            ),
        ));
    };
    let mut change = json!({"spec": {"replicas": replicas}});
    if let Some(rv) = wanted["metadata"]["resourceVersion"].as_str() {
        change["metadata"] = json!({"resourceVersion": rv});
    }
    let now = Instant::now();
    let updated =
        shared.mutate(|m| m.patch(gvr, ns, name, Subresource::Main, &Patch::Merge(change), now))?;
    Ok(value_response(
        StatusCode::OK,
        negotiated.format,
        &scale_of(&updated),
    ))
}

fn scale_of(object: &Value) -> Value {
    let meta = &object["metadata"];
    let selector = object["spec"]["selector"]["matchLabels"]
        .as_object()
        .map(|labels| {
            labels
                .iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": meta["name"],
            "namespace": meta["namespace"],
            "uid": meta["uid"],
            "resourceVersion": meta["resourceVersion"],
            "creationTimestamp": meta["creationTimestamp"],
        },
        "spec": {"replicas": object["spec"]["replicas"].as_i64().unwrap_or(1)},
        "status": {
            "replicas": object["status"]["replicas"].as_i64().unwrap_or(0),
            "selector": selector,
        },
    })
}

/// How rows of `resource` print: the built-in printer, or the
/// `additionalPrinterColumns` of the CRD that defines it.
fn printer(shared: &Shared, resource: &Resource, version: &str) -> Printer {
    if !resource.is_custom {
        return Printer::Builtin(resource.plural.clone());
    }
    let crds = Gvr::new("apiextensions.k8s.io", "v1", "customresourcedefinitions");
    let name = format!("{}.{}", resource.plural, resource.group);
    let columns = shared.model().get(&crds, None, &name).ok().and_then(|crd| {
        crd["spec"]["versions"]
            .as_array()?
            .iter()
            .find(|v| v["name"].as_str() == Some(version))?["additionalPrinterColumns"]
            .as_array()
            .cloned()
    });
    match columns {
        Some(columns) => Printer::Custom(columns),
        // Without printer columns a custom resource prints Name and Age.
        None => Printer::Builtin(String::new()),
    }
}

fn shape_object(printer: &Printer, object: &Value, shape: Shape, include: IncludeObject) -> Value {
    match shape {
        Shape::Table => {
            let metadata = json!({"resourceVersion": object["metadata"]["resourceVersion"]});
            table::table(printer, &[object], metadata, include, true)
        }
        Shape::Metadata => table::partial_metadata(object),
        Shape::Object | Shape::Discovery => object.clone(),
    }
}

fn shape_list(printer: &Printer, list: &Value, shape: Shape, include: IncludeObject) -> Value {
    let items: Vec<&Value> = list["items"]
        .as_array()
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    match shape {
        Shape::Table => table::table(printer, &items, list["metadata"].clone(), include, true),
        Shape::Metadata => table::partial_metadata_list(&items, list["metadata"].clone()),
        Shape::Object | Shape::Discovery => list.clone(),
    }
}

/// The media type of the body, without parameters, lower-cased.
fn content_type(parts: &Parts) -> String {
    parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// A create or update body: JSON (`application/json`, or no content type),
/// protobuf (kubectl's typed clients send it for built-ins) or CBOR.
fn decode_body(parts: &Parts, body: &[u8]) -> Result<Value, StatusError> {
    match content_type(parts).as_str() {
        "" | "application/json" | "*/*" => {}
        "application/cbor" => {
            return cbor::decode(body).map_err(|e| {
                status_error(
                    400,
                    "BadRequest",
                    format!("the object provided is unrecognized: {e}"),
                )
            });
        }
        "application/vnd.kubernetes.protobuf" => {
            let value: Value = protobuf::decode(body).map_err(|e| {
                status_error(
                    400,
                    "BadRequest",
                    format!("the object provided is unrecognized: {e}"),
                )
            })?;
            return Ok(drop_empty(value));
        }
        other => {
            return Err(status_error(
                415,
                "UnsupportedMediaType",
                format!(
                    "the body of the request was in an unknown format ({other}) - accepted media types include: application/json"
                ),
            ));
        }
    }
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        status_error(
            400,
            "BadRequest",
            format!("the object provided is unrecognized: {e}"),
        )
    })?;
    if !value.is_object() {
        return Err(status_error(
            400,
            "BadRequest",
            "the object provided is unrecognized: not a JSON object".to_owned(),
        ));
    }
    Ok(value)
}

/// A protobuf-decoded object without the zero values Go writes for every
/// non-pointer field (`""`, `0`, `false`, empty maps), which JSON omits.
/// Zeros inside lists are kept: a list item's shape is its own.
fn drop_empty(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (k, drop_empty(v)))
                .filter(|(_, v)| match v {
                    Value::Null => false,
                    Value::String(s) => !s.is_empty(),
                    Value::Object(m) => !m.is_empty(),
                    Value::Array(a) => !a.is_empty(),
                    _ => true,
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(drop_empty).collect()),
        v => v,
    }
}

/// A body's `apiVersion` and `kind`, when given, must be the resource's.
fn check_type(resource: &Resource, gvr: &Gvr, object: &Value) -> Result<(), StatusError> {
    if let Some(kind) = object["kind"].as_str()
        && kind != resource.kind
    {
        return Err(status_error(
            400,
            "BadRequest",
            format!(
                "the kind of the object ({kind}) does not match the resource ({})",
                resource.kind
            ),
        ));
    }
    let want = resource.api_version(&gvr.version);
    if let Some(api_version) = object["apiVersion"].as_str()
        && api_version != want
    {
        return Err(status_error(
            400,
            "BadRequest",
            format!(
                "the API version in the data ({api_version}) does not match the expected API version ({want})"
            ),
        ));
    }
    Ok(())
}

fn decode_patch(
    parts: &Parts,
    body: &[u8],
    query: &Query,
    resource: &Resource,
) -> Result<Patch, StatusError> {
    let ct = content_type(parts);
    let parse = || {
        serde_json::from_slice::<Value>(body)
            .map_err(|e| status_error(400, "BadRequest", format!("error decoding patch: {e}")))
    };
    match ct.as_str() {
        "application/json-patch+json" => Ok(Patch::Json(parse()?)),
        "application/merge-patch+json" => Ok(Patch::Merge(parse()?)),
        "application/strategic-merge-patch+json" if !resource.is_custom => {
            Ok(Patch::StrategicMerge(parse()?))
        }
        "application/apply-patch+yaml" | "application/apply-patch+cbor" => {
            let decoded = if ct == "application/apply-patch+cbor" {
                cbor::decode::<Value>(body).map_err(|e| e.to_string())
            } else {
                serde_json::from_slice::<Value>(body).map_err(|e| e.to_string())
            };
            let body = decoded.map_err(|e| {
                status_error(
                    400,
                    "BadRequest",
                    format!(
                        "error decoding YAML: this server reads apply configurations written as JSON: {e}"
                    ),
                )
            })?;
            let field_manager = query.get("fieldManager").unwrap_or("").to_owned();
            let force = query.bool("force")?.unwrap_or(false);
            Ok(Patch::Apply {
                body,
                field_manager,
                force,
            })
        }
        _ => {
            let mut accepted = vec![
                "application/json-patch+json",
                "application/merge-patch+json",
                "application/apply-patch+yaml",
            ];
            if !resource.is_custom {
                accepted.push("application/strategic-merge-patch+json");
            }
            Err(status_error(
                415,
                "UnsupportedMediaType",
                format!(
                    "the body of the request was in an unknown format - accepted media types include: {}",
                    accepted.join(", ")
                ),
            ))
        }
    }
}

/// DeleteOptions from the query and, when present, the body.
fn delete_options(query: &Query, body: &[u8]) -> Result<DeleteOptions, StatusError> {
    let from_body: Value = if body.iter().all(u8::is_ascii_whitespace) {
        Value::Null
    } else {
        serde_json::from_slice(body).map_err(|e| {
            status_error(
                400,
                "BadRequest",
                format!("error decoding DeleteOptions: {e}"),
            )
        })?
    };
    let policy_text = query
        .get("propagationPolicy")
        .map(str::to_owned)
        .or_else(|| from_body["propagationPolicy"].as_str().map(str::to_owned));
    let orphan = query
        .bool("orphanDependents")?
        .or(from_body["orphanDependents"].as_bool());
    let policy = match (policy_text.as_deref(), orphan) {
        (Some("Orphan"), _) | (None, Some(true)) => Some(PropagationPolicy::Orphan),
        (Some("Foreground"), _) => Some(PropagationPolicy::Foreground),
        (Some("Background"), _) => Some(PropagationPolicy::Background),
        (None, _) => None,
        (Some(other), _) => {
            return Err(status_error(
                422,
                "Invalid",
                format!(
                    "DeleteOptions.meta.k8s.io \"\" is invalid: propagationPolicy: Unsupported value: \"{other}\": supported values: \"Foreground\", \"Background\", \"Orphan\", \"nil\""
                ),
            ));
        }
    };
    let pre = &from_body["preconditions"];
    Ok(DeleteOptions {
        uid: pre["uid"].as_str().map(str::to_owned),
        resource_version: pre["resourceVersion"].as_str().map(str::to_owned),
        propagation_policy: policy,
    })
}

fn not_found() -> StatusError {
    status_error(
        404,
        "NotFound",
        "the server could not find the requested resource".to_owned(),
    )
}

fn method_not_allowed() -> StatusError {
    status_error(
        405,
        "MethodNotAllowed",
        "the server does not allow this method on the requested resource".to_owned(),
    )
}
