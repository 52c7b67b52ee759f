//! `meta.k8s.io/v1` `Table` and `PartialObjectMetadata` views of objects:
//! what `kubectl get` (Accept `as=Table`) and the metadata client
//! (`as=PartialObjectMetadata`) ask for. Columns follow the real server's
//! printers for the built-ins served (pods: Name, Ready, Status, Restarts,
//! Age, IP, Node; namespaces; configmaps; secrets; services; deployments;
//! leases) and Name, Age for everything else.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};

/// What `includeObject` asks each row to carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IncludeObject {
    /// No object.
    None,
    /// `PartialObjectMetadata` (the default).
    Metadata,
    /// The whole object.
    Object,
}

impl IncludeObject {
    /// From the query parameter; unknown values are `None` (caller returns 400).
    pub fn parse(value: Option<&str>) -> Option<Self> {
        match value {
            None | Some("" | "Metadata") => Some(Self::Metadata),
            Some("None") => Some(Self::None),
            Some("Object") => Some(Self::Object),
            Some(_) => None,
        }
    }
}

type Column = (&'static str, &'static str, &'static str, u8);

/// Column definitions (name, type, format, priority) for a resource.
fn columns(resource: &str) -> Vec<Column> {
    let name = ("Name", "string", "name", 0);
    let age = ("Age", "string", "", 0);
    match resource {
        "pods" => vec![
            name,
            ("Ready", "string", "", 0),
            ("Status", "string", "", 0),
            ("Restarts", "string", "", 0),
            age,
            ("IP", "string", "", 1),
            ("Node", "string", "", 1),
        ],
        "namespaces" => vec![name, ("Status", "string", "", 0), age],
        "configmaps" => vec![name, ("Data", "integer", "", 0), age],
        "secrets" => vec![
            name,
            ("Type", "string", "", 0),
            ("Data", "integer", "", 0),
            age,
        ],
        "services" => vec![
            name,
            ("Type", "string", "", 0),
            ("Cluster-IP", "string", "", 0),
            ("External-IP", "string", "", 0),
            ("Port(s)", "string", "", 0),
            age,
        ],
        "deployments" => vec![
            name,
            ("Ready", "string", "", 0),
            ("Up-to-date", "integer", "", 0),
            ("Available", "integer", "", 0),
            age,
        ],
        "leases" => vec![name, ("Holder", "string", "", 0), age],
        _ => vec![name, age],
    }
}

fn cells(resource: &str, object: &Value, now: i64) -> Vec<Value> {
    let name = json!(object["metadata"]["name"].as_str().unwrap_or_default());
    let age = json!(age(object, now));
    let spec = &object["spec"];
    let status = &object["status"];
    let len = |v: &Value| v.as_object().map_or(0, Map::len) as i64;
    let text = |v: &Value, default: &str| json!(v.as_str().unwrap_or(default));
    match resource {
        "pods" => {
            let total = spec["containers"].as_array().map_or(0, Vec::len);
            let statuses = status["containerStatuses"].as_array();
            let ready = statuses.map_or(0, |s| {
                s.iter()
                    .filter(|c| c["ready"].as_bool() == Some(true))
                    .count()
            });
            let restarts: i64 = statuses.map_or(0, |s| {
                s.iter().filter_map(|c| c["restartCount"].as_i64()).sum()
            });
            let phase = if object["metadata"].get("deletionTimestamp").is_some() {
                "Terminating"
            } else {
                status["reason"]
                    .as_str()
                    .or(status["phase"].as_str())
                    .unwrap_or("Pending")
            };
            vec![
                name,
                json!(format!("{ready}/{total}")),
                json!(phase),
                json!(restarts.to_string()),
                age,
                text(&status["podIP"], "<none>"),
                text(&spec["nodeName"], "<none>"),
            ]
        }
        "namespaces" => vec![name, text(&status["phase"], "Active"), age],
        "configmaps" => vec![
            name,
            json!(len(&object["data"]) + len(&object["binaryData"])),
            age,
        ],
        "secrets" => vec![
            name,
            text(&object["type"], "Opaque"),
            json!(len(&object["data"])),
            age,
        ],
        "services" => {
            let ports: Vec<String> = spec["ports"].as_array().map_or(Vec::new(), |ps| {
                ps.iter()
                    .map(|p| {
                        format!(
                            "{}/{}",
                            p["port"].as_i64().unwrap_or(0),
                            p["protocol"].as_str().unwrap_or("TCP")
                        )
                    })
                    .collect()
            });
            vec![
                name,
                text(&spec["type"], "ClusterIP"),
                text(&spec["clusterIP"], "<none>"),
                json!("<none>"),
                json!(if ports.is_empty() {
                    "<none>".to_owned()
                } else {
                    ports.join(",")
                }),
                age,
            ]
        }
        "deployments" => vec![
            name,
            json!(format!(
                "{}/{}",
                status["readyReplicas"].as_i64().unwrap_or(0),
                spec["replicas"].as_i64().unwrap_or(1)
            )),
            json!(status["updatedReplicas"].as_i64().unwrap_or(0)),
            json!(status["availableReplicas"].as_i64().unwrap_or(0)),
            age,
        ],
        "leases" => vec![name, text(&spec["holderIdentity"], ""), age],
        _ => vec![name, age],
    }
}

/// A `Table` of `objects` with the list's `metadata`, and column
/// definitions unless `with_columns` is false (watch events after the first).
pub fn table(
    resource: &str,
    objects: &[&Value],
    list_metadata: Value,
    include: IncludeObject,
    with_columns: bool,
) -> Value {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0));
    let definitions: Vec<Value> = if with_columns {
        columns(resource)
            .into_iter()
            .map(|(name, ty, format, priority)| {
                json!({"name": name, "type": ty, "format": format, "description": "", "priority": priority})
            })
            .collect()
    } else {
        Vec::new()
    };
    let rows: Vec<Value> = objects
        .iter()
        .map(|o| {
            let mut row = json!({"cells": cells(resource, o, now)});
            match include {
                IncludeObject::None => {}
                IncludeObject::Metadata => row["object"] = partial_metadata(o),
                IncludeObject::Object => row["object"] = (*o).clone(),
            }
            row
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list_metadata,
        "columnDefinitions": definitions,
        "rows": rows,
    })
}

/// `PartialObjectMetadata` of an object.
pub fn partial_metadata(object: &Value) -> Value {
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": object["metadata"].clone(),
    })
}

/// `PartialObjectMetadataList` of a list's items with its metadata.
pub fn partial_metadata_list(items: &[&Value], list_metadata: Value) -> Value {
    let items: Vec<Value> = items.iter().map(|o| partial_metadata(o)).collect();
    json!({
        "kind": "PartialObjectMetadataList",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list_metadata,
        "items": items,
    })
}

fn age(object: &Value, now: i64) -> String {
    let Some(created) = object["metadata"]["creationTimestamp"]
        .as_str()
        .and_then(parse_rfc3339)
    else {
        return "<unknown>".to_owned();
    };
    human_duration(now - created)
}

/// Seconds since the Unix epoch of `YYYY-MM-DDTHH:MM:SSZ` (fractions ignored).
fn parse_rfc3339(s: &str) -> Option<i64> {
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hh, mm, ss) = (num(11..13)?, num(14..16)?, num(17..19)?);
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hh * 3600 + mm * 60 + ss)
}

/// kubectl's `duration.HumanDuration`.
pub fn human_duration(seconds: i64) -> String {
    if seconds < -1 {
        return "<invalid>".to_owned();
    }
    let s = seconds.max(0);
    let (m, h, d) = (s / 60, s / 3600, s / 86_400);
    let y = d / 365;
    if s < 120 {
        format!("{s}s")
    } else if m < 10 {
        if s % 60 == 0 {
            format!("{m}m")
        } else {
            format!("{m}m{}s", s % 60)
        }
    } else if m < 180 {
        format!("{m}m")
    } else if h < 8 {
        if m % 60 == 0 {
            format!("{h}h")
        } else {
            format!("{h}h{}m", m % 60)
        }
    } else if h < 48 {
        format!("{h}h")
    } else if h < 192 {
        if h % 24 == 0 {
            format!("{d}d")
        } else {
            format!("{d}d{}h", h % 24)
        }
    } else if y < 2 {
        format!("{d}d")
    } else if y < 8 {
        if d % 365 == 0 {
            format!("{y}y")
        } else {
            format!("{y}y{}d", d % 365)
        }
    } else {
        format!("{y}y")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apiserver_table_human_duration_matches_kubectl() {
        for (secs, want) in [
            (5, "5s"),
            (119, "119s"),
            (150, "2m30s"),
            (600, "10m"),
            (3 * 3600 + 5 * 60, "3h5m"),
            (30 * 3600, "30h"),
            (3 * 86_400 + 3600, "3d1h"),
            (100 * 86_400, "100d"),
            (-5, "<invalid>"),
        ] {
            assert_eq!(human_duration(secs), want, "{secs}");
        }
    }

    #[test]
    fn apiserver_table_pod_columns() {
        let pod = json!({"metadata": {"name": "web-0", "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"containers": [{"name": "a"}, {"name": "b"}], "nodeName": "n1"},
            "status": {"phase": "Running", "containerStatuses": [
                {"ready": true, "restartCount": 2}, {"ready": false, "restartCount": 1}]}});
        let t = table("pods", &[&pod], json!({}), IncludeObject::Metadata, true);
        let names: Vec<&str> = t["columnDefinitions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            ["Name", "Ready", "Status", "Restarts", "Age", "IP", "Node"]
        );
        let cells = &t["rows"][0]["cells"];
        assert_eq!(cells[0], "web-0");
        assert_eq!(cells[1], "1/2");
        assert_eq!(cells[2], "Running");
        assert_eq!(cells[3], "3");
        assert_eq!(cells[6], "n1");
        assert_eq!(t["rows"][0]["object"]["kind"], "PartialObjectMetadata");
        assert_eq!(parse_rfc3339("2026-01-01T00:00:00Z"), Some(1_767_225_600));
    }
}
