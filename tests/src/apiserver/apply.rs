//! Strategic merge patch and server-side apply for the model, plugged in
//! through its [`PatchHook`]: the model keeps optimistic concurrency and
//! bookkeeping, this module only computes the next object.
//!
//! Strategic merge knows the merge keys of the built-ins served (`name` for
//! containers, init containers, volumes, env and image pull secrets;
//! `containerPort` or `port` for ports; `mountPath` for volume mounts; `uid`
//! for owner references; `type` for conditions), the `$patch: delete` and
//! `$patch: replace` directives, `$deleteFromPrimitiveList/<field>`, and
//! unions `finalizers`; every other list is replaced. Custom resources take
//! no strategic merge (415, as the real server answers).
//!
//! Server-side apply keeps `metadata.managedFields` in the `FieldsV1` shape
//! (`f:<field>`, `k:{<merge key>}`, `.`), one `Apply` entry per field
//! manager. Applying a field another manager owns with a different value is
//! a 409 Conflict with one cause per field, unless forced (the field then
//! changes hands); fields a manager applied before and no longer applies are
//! removed when nobody else owns them.

use std::collections::BTreeSet;
use std::time::{SystemTime, UNIX_EPOCH};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::StatusCause;
use serde_json::{Map, Value, json};

use super::response::{status_error, status_with_details};
use crate::model::{PatchHook, Resource, StatusError};

/// The hook installed in every server's model.
pub struct Hook;

impl PatchHook for Hook {
    fn strategic_merge(
        &self,
        resource: &Resource,
        current: &Value,
        patch: &Value,
    ) -> Result<Value, StatusError> {
        if resource.is_custom {
            return Err(status_error(
                415,
                "UnsupportedMediaType",
                "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml".to_owned(),
            ));
        }
        if !patch.is_object() {
            return Err(status_error(
                400,
                "BadRequest",
                "json: cannot unmarshal into Go value of type map[string]interface {}".to_owned(),
            ));
        }
        let mut next = current.clone();
        strategic_merge(&mut next, patch);
        Ok(next)
    }

    fn apply(
        &self,
        resource: &Resource,
        current: Option<&Value>,
        body: &Value,
        field_manager: &str,
        force: bool,
    ) -> Result<Value, StatusError> {
        apply(resource, current, body, field_manager, force)
    }
}

/// The merge key of the list under `field`, judged from the field's name
/// and (for `ports`) its items.
fn merge_key(field: &str, items: &[Value]) -> Option<&'static str> {
    match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "volumes"
        | "env"
        | "imagePullSecrets" => Some("name"),
        "volumeMounts" => Some("mountPath"),
        "ownerReferences" => Some("uid"),
        "conditions" => Some("type"),
        "ports" => {
            if items.iter().any(|i| i.get("containerPort").is_some()) {
                Some("containerPort")
            } else {
                Some("port")
            }
        }
        _ => None,
    }
}

/// Strategic merge of `patch` into `target`.
pub fn strategic_merge(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if patch.get("$patch").and_then(Value::as_str) == Some("replace") {
        *target = Value::Object(without_directives(patch));
        return;
    }
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Value::Object(map) = target else {
        return;
    };
    for (key, value) in patch {
        if let Some(field) = key.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(Value::Array(list)), Value::Array(remove)) = (map.get_mut(field), value) {
                list.retain(|v| !remove.contains(v));
            }
            continue;
        }
        if key.starts_with('$') {
            continue;
        }
        match value {
            Value::Null => {
                map.remove(key);
            }
            Value::Object(o) if o.get("$patch").and_then(Value::as_str) == Some("delete") => {
                map.remove(key);
            }
            Value::Object(_) => {
                strategic_merge(map.entry(key.clone()).or_insert(Value::Null), value)
            }
            Value::Array(items) => {
                let merged = merge_list(map.get(key), key, items);
                map.insert(key.clone(), Value::Array(merged));
            }
            _ => {
                map.insert(key.clone(), value.clone());
            }
        }
    }
}

fn merge_list(current: Option<&Value>, field: &str, patch: &[Value]) -> Vec<Value> {
    let mut list = current
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if patch
        .iter()
        .any(|i| i.get("$patch").and_then(Value::as_str) == Some("replace"))
    {
        return patch
            .iter()
            .filter(|i| i.get("$patch").is_none())
            .cloned()
            .collect();
    }
    if field == "finalizers" {
        for item in patch {
            if !list.contains(item) {
                list.push(item.clone());
            }
        }
        return list;
    }
    let Some(key) = merge_key(field, patch) else {
        return patch.iter().map(clean).collect();
    };
    for item in patch {
        let Some(id) = item.get(key) else {
            list.push(clean(item));
            continue;
        };
        let at = list.iter().position(|i| i.get(key) == Some(id));
        let delete = item.get("$patch").and_then(Value::as_str) == Some("delete");
        match (at, delete) {
            (Some(i), true) => {
                list.remove(i);
            }
            (None, true) => {}
            (Some(i), false) => strategic_merge(&mut list[i], item),
            (None, false) => list.push(clean(item)),
        }
    }
    list
}

fn without_directives(map: &Map<String, Value>) -> Map<String, Value> {
    map.iter()
        .filter(|(k, _)| !k.starts_with('$'))
        .map(|(k, v)| (k.clone(), clean(v)))
        .collect()
}

fn clean(value: &Value) -> Value {
    match value {
        Value::Object(m) => Value::Object(without_directives(m)),
        Value::Array(a) => Value::Array(a.iter().map(clean).collect()),
        v => v.clone(),
    }
}

// --- server-side apply

/// One step of a field path: `f:<field>`, `k:<merge key JSON>`, or `.` (the keyed item itself).
type FieldPath = Vec<String>;

/// Metadata fields the server sets or that name the object: never owned.
const UNOWNED_METADATA: [&str; 9] = [
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "managedFields",
    "selfLink",
];

fn apply(
    resource: &Resource,
    current: Option<&Value>,
    body: &Value,
    manager: &str,
    force: bool,
) -> Result<Value, StatusError> {
    if manager.is_empty() {
        return Err(status_error(
            422,
            "Invalid",
            "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch".to_owned(),
        ));
    }
    let Value::Object(body_map) = body else {
        return Err(status_error(
            400,
            "BadRequest",
            "error decoding YAML: the applied configuration is not an object".to_owned(),
        ));
    };
    for (field, want) in [
        ("apiVersion", None::<String>),
        ("kind", Some(resource.kind.clone())),
    ] {
        match (body_map.get(field).and_then(Value::as_str), want) {
            (None, _) => {
                return Err(status_error(
                    400,
                    "BadRequest",
                    format!("{field} must be set for an apply patch"),
                ));
            }
            (Some(got), Some(want)) if got != want => {
                return Err(status_error(
                    400,
                    "BadRequest",
                    format!(
                        "the kind in the applied configuration ({got}) does not match the kind of the resource ({want})"
                    ),
                ));
            }
            _ => {}
        }
    }
    let mut applied = body.clone();
    if resource.has_status
        && let Some(m) = applied.as_object_mut()
    {
        m.remove("status");
    }
    let applied_set = owned_paths(&applied);
    let api_version = body_map
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();

    let mut object = current.cloned().unwrap_or_else(|| json!({}));
    let mut entries: Vec<Value> = object["metadata"]["managedFields"]
        .as_array()
        .cloned()
        .unwrap_or_default();

    // Conflicts with other managers.
    let mut causes = Vec::new();
    let mut conflicting: Vec<(usize, FieldPath)> = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        let is_self = entry["manager"].as_str() == Some(manager)
            && entry["operation"].as_str() == Some("Apply");
        if is_self {
            continue;
        }
        let other = entry["manager"].as_str().unwrap_or_default();
        let owned = paths_of(&entry["fieldsV1"]);
        for path in applied_set.intersection(&owned) {
            if path.last().is_some_and(|s| s == ".") {
                continue;
            }
            if value_at(&object, path) != value_at(&applied, path) {
                let field = render_path(path);
                causes.push(StatusCause {
                    reason: Some("FieldManagerConflict".to_owned()),
                    message: Some(format!(
                        "conflict with \"{other}\" using {}: {field}",
                        entry["apiVersion"].as_str().unwrap_or(&api_version)
                    )),
                    field: Some(field),
                });
                conflicting.push((i, path.clone()));
            }
        }
    }
    if !causes.is_empty() && !force {
        let n = causes.len();
        let lines: Vec<String> = causes.iter().filter_map(|c| c.message.clone()).collect();
        let message = if n == 1 {
            format!("Apply failed with 1 conflict: {}", lines[0])
        } else {
            format!("Apply failed with {n} conflicts: {}", lines.join("\n"))
        };
        return Err(status_with_details(409, "Conflict", message, causes, None));
    }
    // Forced: the conflicting fields change hands.
    for (i, path) in &conflicting {
        let mut owned = paths_of(&entries[*i]["fieldsV1"]);
        owned.remove(path);
        entries[*i]["fieldsV1"] = fields_v1(&owned);
    }

    // Fields this manager applied before and no longer applies, owned by nobody else.
    let previous = entries
        .iter()
        .find(|e| {
            e["manager"].as_str() == Some(manager) && e["operation"].as_str() == Some("Apply")
        })
        .map(|e| paths_of(&e["fieldsV1"]))
        .unwrap_or_default();
    let others: BTreeSet<FieldPath> = entries
        .iter()
        .filter(|e| {
            !(e["manager"].as_str() == Some(manager) && e["operation"].as_str() == Some("Apply"))
        })
        .flat_map(|e| paths_of(&e["fieldsV1"]))
        .collect();
    for path in previous.difference(&applied_set) {
        if !others.contains(path) {
            remove_at(&mut object, path);
        }
    }

    let mut patch = applied.clone();
    if let Some(meta) = patch.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("managedFields");
    }
    strategic_merge(&mut object, &patch);

    entries.retain(|e| {
        !(e["manager"].as_str() == Some(manager) && e["operation"].as_str() == Some("Apply"))
    });
    entries.push(json!({
        "manager": manager,
        "operation": "Apply",
        "apiVersion": api_version,
        "time": now_rfc3339(),
        "fieldsType": "FieldsV1",
        "fieldsV1": fields_v1(&applied_set),
    }));
    entries.retain(|e| e["fieldsV1"].as_object().is_some_and(|m| !m.is_empty()));
    object["metadata"]["managedFields"] = Value::Array(entries);
    Ok(object)
}

/// The leaf field paths of an applied configuration.
fn owned_paths(config: &Value) -> BTreeSet<FieldPath> {
    let mut out = BTreeSet::new();
    let Value::Object(map) = config else {
        return out;
    };
    for (k, v) in map {
        if k == "apiVersion" || k == "kind" {
            continue;
        }
        if k == "metadata" {
            if let Value::Object(meta) = v {
                for (mk, mv) in meta {
                    if !UNOWNED_METADATA.contains(&mk.as_str()) {
                        collect(mv, mk, &mut vec!["f:metadata".to_owned()], &mut out);
                    }
                }
            }
            continue;
        }
        collect(v, k, &mut Vec::new(), &mut out);
    }
    out
}

fn collect(value: &Value, field: &str, prefix: &mut FieldPath, out: &mut BTreeSet<FieldPath>) {
    prefix.push(format!("f:{field}"));
    match value {
        Value::Object(m) if !m.is_empty() => {
            for (k, v) in m {
                collect(v, k, prefix, out);
            }
        }
        Value::Array(items) if merge_key(field, items).is_some() => {
            let key = merge_key(field, items).unwrap_or_default();
            let mut keyed = false;
            for item in items {
                let Some(id) = item.get(key) else { continue };
                keyed = true;
                prefix.push(format!("k:{}", json!({ key: id })));
                let mut item_path = prefix.clone();
                item_path.push(".".to_owned());
                out.insert(item_path);
                if let Value::Object(m) = item {
                    for (k, v) in m {
                        collect(v, k, prefix, out);
                    }
                }
                prefix.pop();
            }
            if !keyed {
                out.insert(prefix.clone());
            }
        }
        _ => {
            out.insert(prefix.clone());
        }
    }
    prefix.pop();
}

/// `FieldsV1` JSON for a set of paths.
fn fields_v1(paths: &BTreeSet<FieldPath>) -> Value {
    let mut root = Map::new();
    for path in paths {
        let mut node = &mut root;
        for step in path {
            node = node
                .entry(step.clone())
                .or_insert_with(|| json!({}))
                .as_object_mut()
                .expect("fieldsV1 nodes are objects");
        }
    }
    Value::Object(root)
}

/// The leaf paths of `FieldsV1` JSON (a node with no children is a leaf; `.` is one too).
fn paths_of(fields: &Value) -> BTreeSet<FieldPath> {
    fn walk(node: &Value, prefix: &mut FieldPath, out: &mut BTreeSet<FieldPath>) {
        let Some(m) = node.as_object() else { return };
        if m.is_empty() && !prefix.is_empty() {
            out.insert(prefix.clone());
            return;
        }
        for (k, v) in m {
            prefix.push(k.clone());
            walk(v, prefix, out);
            prefix.pop();
        }
    }
    let mut out = BTreeSet::new();
    walk(fields, &mut Vec::new(), &mut out);
    out
}

fn value_at<'a>(object: &'a Value, path: &[String]) -> Option<&'a Value> {
    let mut node = object;
    for step in path {
        node = step_into(node, step)?;
    }
    Some(node)
}

fn step_into<'a>(node: &'a Value, step: &str) -> Option<&'a Value> {
    if let Some(field) = step.strip_prefix("f:") {
        return node.get(field);
    }
    let key: Map<String, Value> = serde_json::from_str(step.strip_prefix("k:")?).ok()?;
    node.as_array()?
        .iter()
        .find(|item| key.iter().all(|(k, v)| item.get(k) == Some(v)))
}

fn remove_at(object: &mut Value, path: &[String]) {
    let Some((last, parent_path)) = path.split_last() else {
        return;
    };
    if last == "." {
        // The keyed item itself: remove it from its list.
        let Some((item, list_path)) = parent_path.split_last() else {
            return;
        };
        let Ok(key) =
            serde_json::from_str::<Map<String, Value>>(item.strip_prefix("k:").unwrap_or(""))
        else {
            return;
        };
        if let Some(Value::Array(list)) = value_at_mut(object, list_path) {
            list.retain(|i| !key.iter().all(|(k, v)| i.get(k) == Some(v)));
        }
        return;
    }
    if let (Some(field), Some(Value::Object(parent))) =
        (last.strip_prefix("f:"), value_at_mut(object, parent_path))
    {
        parent.remove(field);
    }
}

fn value_at_mut<'a>(object: &'a mut Value, path: &[String]) -> Option<&'a mut Value> {
    let mut node = object;
    for step in path {
        node = if let Some(field) = step.strip_prefix("f:") {
            node.get_mut(field)?
        } else {
            let key: Map<String, Value> = serde_json::from_str(step.strip_prefix("k:")?).ok()?;
            node.as_array_mut()?
                .iter_mut()
                .find(|item| key.iter().all(|(k, v)| item.get(k) == Some(v)))?
        };
    }
    Some(node)
}

/// `.spec.containers[name="web"].image`, as the server renders a conflicting field.
fn render_path(path: &[String]) -> String {
    let mut out = String::new();
    for step in path {
        if let Some(f) = step.strip_prefix("f:") {
            out.push('.');
            out.push_str(f);
        } else if let Some(k) = step.strip_prefix("k:") {
            let key: Map<String, Value> = serde_json::from_str(k).unwrap_or_default();
            let parts: Vec<String> = key.iter().map(|(k, v)| format!("{k}={v}")).collect();
            out.push('[');
            out.push_str(&parts.join(","));
            out.push(']');
        }
    }
    out
}

fn now_rfc3339() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apiserver_strategic_merge_uses_merge_keys_for_containers_ports_and_env() {
        let mut pod = json!({"spec": {"containers": [
            {"name": "web", "image": "nginx:1", "ports": [{"containerPort": 80, "name": "http"}],
             "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]},
            {"name": "sidecar", "image": "envoy"}
        ]}});
        let patch = json!({"spec": {"containers": [
            {"name": "web", "image": "nginx:2",
             "ports": [{"containerPort": 80, "protocol": "TCP"}, {"containerPort": 443}],
             "env": [{"name": "B", "$patch": "delete"}, {"name": "C", "value": "3"}]}
        ]}});
        strategic_merge(&mut pod, &patch);
        let c = &pod["spec"]["containers"];
        assert_eq!(c.as_array().unwrap().len(), 2, "sidecar kept");
        assert_eq!(c[0]["image"], "nginx:2");
        assert_eq!(
            c[0]["ports"],
            json!([{"containerPort": 80, "name": "http", "protocol": "TCP"}, {"containerPort": 443}])
        );
        assert_eq!(
            c[0]["env"],
            json!([{"name": "A", "value": "1"}, {"name": "C", "value": "3"}])
        );
        assert_eq!(c[1]["name"], "sidecar");
    }

    #[test]
    fn apiserver_strategic_merge_replaces_unkeyed_lists_and_deletes_nulls() {
        let mut svc = json!({"metadata": {"labels": {"a": "1", "b": "2"}, "finalizers": ["x"]},
                             "spec": {"ports": [{"port": 80}], "args": ["a", "b"]}});
        strategic_merge(
            &mut svc,
            &json!({"metadata": {"labels": {"a": null}, "finalizers": ["y"]},
                    "spec": {"ports": [{"port": 81}], "args": ["c"]}}),
        );
        assert_eq!(svc["metadata"]["labels"], json!({"b": "2"}));
        assert_eq!(svc["metadata"]["finalizers"], json!(["x", "y"]));
        assert_eq!(svc["spec"]["ports"], json!([{"port": 80}, {"port": 81}]));
        assert_eq!(svc["spec"]["args"], json!(["c"]));
    }

    fn configmap() -> Resource {
        crate::model::Registry::builtin()
            .iter()
            .find(|r| r.plural == "configmaps")
            .cloned()
            .unwrap()
    }

    #[test]
    fn apiserver_apply_conflicts_with_another_manager_unless_forced() {
        let cm = configmap();
        let body = |v: &str| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"k": v}});
        let first = apply(&cm, None, &body("1"), "alice", false).unwrap();
        assert_eq!(
            first["metadata"]["managedFields"][0]["fieldsV1"],
            json!({"f:data": {"f:k": {}}})
        );
        // Same value: no conflict, shared ownership.
        let shared = apply(&cm, Some(&first), &body("1"), "bob", false).unwrap();
        assert_eq!(
            shared["metadata"]["managedFields"]
                .as_array()
                .unwrap()
                .len(),
            2
        );
        let e = apply(&cm, Some(&first), &body("2"), "bob", false).unwrap_err();
        assert_eq!((e.code(), e.reason()), (409, "Conflict"));
        let causes = e.0.details.as_ref().unwrap().causes.as_ref().unwrap();
        assert_eq!(causes[0].field.as_deref(), Some(".data.k"));
        assert_eq!(causes[0].reason.as_deref(), Some("FieldManagerConflict"));
        let forced = apply(&cm, Some(&first), &body("2"), "bob", true).unwrap();
        assert_eq!(forced["data"]["k"], "2");
        let managers: Vec<&str> = forced["metadata"]["managedFields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["manager"].as_str().unwrap())
            .collect();
        assert_eq!(managers, ["bob"], "alice lost her only field");
    }

    #[test]
    fn apiserver_apply_removes_fields_the_manager_stopped_applying() {
        let cm = configmap();
        let v1 = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1", "b": "2"}});
        let v2 = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1"}});
        let first = apply(&cm, None, &v1, "alice", false).unwrap();
        let second = apply(&cm, Some(&first), &v2, "alice", false).unwrap();
        assert_eq!(second["data"], json!({"a": "1"}));
    }

    #[test]
    fn apiserver_apply_time_is_rfc3339() {
        let t = now_rfc3339();
        assert_eq!(t.len(), 20);
        assert!(t.starts_with("20") && t.ends_with('Z'), "{t}");
    }
}
