//! Inputs shared by windlass's benchmarks (issue 9): realistic Pods and
//! ConfigMaps made in memory from the recorded fixtures, and one watch
//! stream of them in each of the three encodings.
//!
//! Nothing is copied into the repository: the recorded `PodList`s are read
//! from the fixtures folder (`WINDLASS_FIXTURES`, by default
//! `../shared/fixtures` beside the repository root) and varied by index —
//! names, namespaces, labels, uids and resourceVersions — so every object
//! is distinct and the same index always yields the same object. A bench
//! prints a message and measures nothing when the folder is absent.

use std::path::PathBuf;

use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use serde_json::{Map, Value, json};
use windlass_proto::codec::{cbor, protobuf};

/// The fixtures folder, or `None` (with a message on stderr) when it is absent.
pub fn fixtures_dir() -> Option<PathBuf> {
    let dir = match std::env::var_os("WINDLASS_FIXTURES") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures"),
    };
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!(
            "skipped: fixtures folder {} not found (set WINDLASS_FIXTURES)",
            dir.display()
        );
        None
    }
}

/// User + system CPU time of a process (all its threads, live or ended),
/// in ms, from its `/proc/<pid>/stat` (Linux; the kernel reports it in
/// `USER_HZ` = 100 ticks a second on every architecture).
pub fn cpu_ms(stat: &str) -> Option<u64> {
    stat_cpu_ms(&std::fs::read_to_string(stat).ok()?)
}

/// [`cpu_ms`] of the text of a `/proc/<pid>/stat`.
fn stat_cpu_ms(stat: &str) -> Option<u64> {
    // Fields after the parenthesised command name (which may hold spaces and
    // parentheses itself): state is field 3, utime 14, stime 15.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime + stime) * 10)
}

/// The load average over the last minute (`/proc/loadavg`, Linux): how
/// many threads wanted a CPU, recorded beside every wall-clock figure.
pub fn load_average() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

/// The Pods of the recorded `PodList`s (kind clusters v1.36 and v1.32),
/// as the server sent them (managedFields included, about 9 KB of JSON each).
pub fn recorded_pods(fixtures: &std::path::Path) -> Result<Vec<Value>, String> {
    let mut pods = Vec::new();
    for version in ["v1-36", "v1-32"] {
        let path = fixtures.join(format!(
            "recorded/derived-from-k8s-openapi-replays/{version}/podlist.json"
        ));
        let text =
            std::fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let list: Value =
            serde_json::from_slice(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        let items = list["items"]
            .as_array()
            .ok_or_else(|| format!("{}: no items", path.display()))?;
        pods.extend(items.iter().cloned());
    }
    if pods.is_empty() {
        return Err("the recorded PodLists hold no Pods".into());
    }
    Ok(pods)
}

/// Cuts a recorded Pod down to about 2.6 KB of JSON, keeping its shape: no
/// managedFields or annotations, one volume, one toleration, no affinity,
/// one container with one volume mount, env var and port, no init
/// containers, two conditions, no container-status mounts.
pub fn trim_pod(pod: &mut Value) {
    fn keep(value: &mut Value, n: usize) {
        if let Some(items) = value.as_array_mut() {
            items.truncate(n);
        }
    }
    if let Some(meta) = pod["metadata"].as_object_mut() {
        meta.remove("managedFields");
        meta.remove("annotations");
    }
    let spec = &mut pod["spec"];
    keep(&mut spec["volumes"], 1);
    keep(&mut spec["tolerations"], 1);
    if let Some(spec) = spec.as_object_mut() {
        spec.remove("affinity");
        spec.remove("initContainers");
    }
    if let Some(containers) = spec["containers"].as_array_mut() {
        containers.truncate(1);
        for c in containers {
            keep(&mut c["volumeMounts"], 1);
            keep(&mut c["args"], 2);
            keep(&mut c["command"], 2);
            keep(&mut c["env"], 1);
            keep(&mut c["ports"], 1);
            if let Some(c) = c.as_object_mut() {
                c.remove("livenessProbe");
                c.remove("startupProbe");
            }
        }
    }
    let status = &mut pod["status"];
    keep(&mut status["conditions"], 2);
    if let Some(status) = status.as_object_mut() {
        status.remove("hostIPs");
        status.remove("podIPs");
        status.remove("initContainerStatuses");
    }
    if let Some(statuses) = status["containerStatuses"].as_array_mut() {
        statuses.truncate(1);
        for s in statuses {
            if let Some(s) = s.as_object_mut() {
                s.remove("volumeMounts");
            }
        }
    }
}

/// Makes distinct, realistic objects from templates by index.
#[derive(Debug, Clone)]
pub struct Generator {
    templates: Vec<Value>,
}

impl Generator {
    /// Objects shaped like `templates`, taken in turn.
    pub fn new(templates: Vec<Value>) -> Self {
        assert!(!templates.is_empty(), "a generator needs a template");
        Self { templates }
    }

    /// Recorded Pods, as sent (`trimmed: false`) or cut to about 2 KB.
    pub fn pods(fixtures: &std::path::Path, trimmed: bool) -> Result<Self, String> {
        let mut pods = recorded_pods(fixtures)?;
        if trimmed {
            pods.iter_mut().for_each(trim_pod);
        }
        Ok(Self::new(pods))
    }

    /// The `i`th object as JSON, at resourceVersion `rv`.
    pub fn value(&self, i: usize, rv: u64) -> Value {
        let mut object = self.templates[i % self.templates.len()].clone();
        let meta = object["metadata"]
            .as_object_mut()
            .expect("templates have metadata");
        let base = meta
            .get("generateName")
            .and_then(Value::as_str)
            .or_else(|| meta.get("name").and_then(Value::as_str))
            .unwrap_or("object-")
            .trim_end_matches('-')
            .to_owned();
        meta.insert("name".into(), json!(format!("{base}-{i:06x}")));
        meta.insert("namespace".into(), json!(format!("team-{:02}", i % 40)));
        meta.insert("uid".into(), json!(uid(i)));
        meta.insert("resourceVersion".into(), json!(rv.to_string()));
        let labels = meta
            .entry("labels")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Some(labels) = labels.as_object_mut() {
            labels.insert(
                "app.kubernetes.io/instance".into(),
                json!(format!("shard-{}", i % 97)),
            );
            labels.insert("windlass.dev/index".into(), json!(i.to_string()));
        }
        object
    }

    /// The `i`th object as a Pod, decoded from its JSON bytes as a client
    /// would decode it (so its heap shape is a decoded object's).
    pub fn pod(&self, i: usize, rv: u64) -> Pod {
        let bytes = serde_json::to_vec(&self.value(i, rv)).expect("a Value serializes");
        serde_json::from_slice(&bytes).expect("recorded Pods decode")
    }
}

/// A uid-shaped string that differs for each index.
fn uid(i: usize) -> String {
    let x = (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        x >> 32,
        (x >> 16) & 0xffff,
        x & 0xfff,
        (x >> 20) & 0xfff,
        x & 0xffff_ffff_ffff
    )
}

/// A ConfigMap shaped like a small application config: 4 data keys of 60–90
/// characters, labels, an annotation and (optionally) the managedFields
/// entry `kubectl apply` leaves.
pub fn config_map(i: usize, rv: u64, managed_fields: bool) -> ConfigMap {
    let bytes =
        serde_json::to_vec(&config_map_value(i, rv, managed_fields)).expect("a Value serializes");
    serde_json::from_slice(&bytes).expect("a ConfigMap")
}

/// [`config_map`] as JSON, before decoding.
pub fn config_map_value(i: usize, rv: u64, managed_fields: bool) -> Value {
    let data: Map<String, Value> = (0..4)
        .map(|k| {
            let value = format!("value-{i}-{k}-").repeat(6 + (i + k) % 3);
            (format!("setting-{k}.conf"), json!(value))
        })
        .collect();
    let mut meta = json!({
        "name": format!("app-config-{i:06x}"),
        "namespace": format!("team-{:02}", i % 40),
        "uid": uid(i),
        "resourceVersion": rv.to_string(),
        "creationTimestamp": "2026-06-15T04:14:53Z",
        "labels": {"app.kubernetes.io/name": "web", "app.kubernetes.io/instance": format!("shard-{}", i % 97)},
        "annotations": {"windlass.dev/owner": "platform-team"},
    });
    if managed_fields {
        let fields: Map<String, Value> =
            data.keys().map(|k| (format!("f:{k}"), json!({}))).collect();
        meta["managedFields"] = json!([{
            "manager": "kubectl-client-side-apply",
            "operation": "Update",
            "apiVersion": "v1",
            "time": "2026-06-15T04:14:53Z",
            "fieldsType": "FieldsV1",
            "fieldsV1": {"f:data": fields, "f:metadata": {"f:annotations": {".": {}, "f:windlass.dev/owner": {}}, "f:labels": {".": {}, "f:app.kubernetes.io/name": {}, "f:app.kubernetes.io/instance": {}}}},
        }]);
    }
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data})
}

/// One watch event, before encoding.
#[derive(Debug, Clone)]
pub enum Event {
    /// ADDED, MODIFIED or DELETED with its Pod.
    Object(&'static str, Box<Pod>),
    /// A BOOKMARK at this resourceVersion.
    Bookmark(String),
}

/// `n` watch events of Pods from `generator`: mostly MODIFIED, with ADDED,
/// DELETED and one BOOKMARK in every 100 events; resourceVersions rise.
pub fn pod_events(generator: &Generator, n: usize) -> Vec<Event> {
    (0..n)
        .map(|i| {
            let rv = 10_000 + i as u64;
            match i % 100 {
                99 => Event::Bookmark(rv.to_string()),
                k if k % 10 == 0 => Event::Object("ADDED", Box::new(generator.pod(i, rv))),
                k if k % 10 == 5 => Event::Object("DELETED", Box::new(generator.pod(i, rv))),
                _ => Event::Object("MODIFIED", Box::new(generator.pod(i, rv))),
            }
        })
        .collect()
}

/// A bookmark's object as the server sends it (a Pod with only metadata;
/// `spec.containers` null in JSON).
fn bookmark_json(rv: &str) -> Value {
    json!({"kind": "Pod", "apiVersion": "v1", "metadata": {"resourceVersion": rv}, "spec": {"containers": null}})
}

fn bookmark_pod(rv: &str) -> Pod {
    let mut pod = Pod::default();
    pod.metadata.resource_version = Some(rv.to_owned());
    pod
}

/// The events as an `application/json` watch body: one event per line.
pub fn json_stream(events: &[Event]) -> Vec<u8> {
    let mut body = Vec::new();
    for event in events {
        let value = match event {
            Event::Object(kind, pod) => json!({"type": kind, "object": pod}),
            Event::Bookmark(rv) => json!({"type": "BOOKMARK", "object": bookmark_json(rv)}),
        };
        serde_json::to_writer(&mut body, &value).expect("events serialize");
        body.push(b'\n');
    }
    body
}

/// The events as an `application/vnd.kubernetes.protobuf;stream=watch`
/// body: 4-byte big-endian lengths, each before a `meta.v1.WatchEvent`
/// whose `RawExtension` holds the `k8s\0` encoding of the Pod.
pub fn protobuf_stream(events: &[Event]) -> Vec<u8> {
    let mut body = Vec::new();
    for event in events {
        let (kind, raw) = match event {
            Event::Object(kind, pod) => (*kind, protobuf::encode(pod.as_ref())),
            Event::Bookmark(rv) => ("BOOKMARK", protobuf::encode(&bookmark_pod(rv))),
        };
        let raw = raw.expect("Pods encode as protobuf");
        let mut extension = Vec::with_capacity(raw.len() + 8);
        length_delimited(&mut extension, 1, &raw);
        let mut frame = Vec::with_capacity(extension.len() + 24);
        length_delimited(&mut frame, 1, kind.as_bytes());
        length_delimited(&mut frame, 2, &extension);
        let len = u32::try_from(frame.len()).expect("a frame under 4 GiB");
        body.extend_from_slice(&len.to_be_bytes());
        body.extend_from_slice(&frame);
    }
    body
}

/// Appends protobuf field `tag` (wire type 2) holding `bytes`.
fn length_delimited(out: &mut Vec<u8>, tag: u8, bytes: &[u8]) {
    out.push(tag << 3 | 2);
    let mut n = bytes.len();
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
    out.extend_from_slice(bytes);
}

/// The events as an `application/cbor-seq` watch body, as the server
/// writes it: `55799({b"type": T, b"object": 55799({…})})` per event,
/// strings and keys as byte strings.
pub fn cbor_stream(events: &[Event]) -> Vec<u8> {
    let mut body = Vec::new();
    for event in events {
        let (kind, object) = match event {
            Event::Object(kind, pod) => (*kind, cbor::encode(pod.as_ref())),
            Event::Bookmark(rv) => ("BOOKMARK", cbor::encode(&bookmark_pod(rv))),
        };
        let object = object.expect("Pods encode as CBOR");
        body.extend_from_slice(windlass_proto::codec::CBOR_MAGIC);
        body.push(0xa2); // a map of two entries
        cbor_bytes(&mut body, b"type");
        cbor_bytes(&mut body, kind.as_bytes());
        cbor_bytes(&mut body, b"object");
        body.extend_from_slice(&object);
    }
    body
}

/// Appends a short CBOR byte string (under 24 bytes).
fn cbor_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    assert!(bytes.len() < 24, "a short byte string");
    out.push(0x40 | bytes.len() as u8);
    out.extend_from_slice(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;
    use windlass_proto::watch::{Framing, Limits, WatchDecoder, WatchEvent};

    fn fixtures() -> Option<PathBuf> {
        let dir = fixtures_dir();
        if dir.is_none() && std::env::var("WINDLASS_REQUIRE_FIXTURES").is_ok_and(|v| v == "1") {
            panic!("fixtures folder missing and WINDLASS_REQUIRE_FIXTURES=1");
        }
        dir
    }

    /// (type, name, resourceVersion) of each event.
    fn summary(framing: Framing, body: &[u8]) -> Vec<(String, String, String)> {
        let mut decoder = WatchDecoder::<Pod>::new(framing, Limits::default());
        decoder.push(body).unwrap();
        decoder.finish().unwrap();
        std::iter::from_fn(|| decoder.poll_event())
            .map(|event| {
                let (kind, pod) = match event.unwrap() {
                    WatchEvent::Added(p) => ("ADDED", p),
                    WatchEvent::Modified(p) => ("MODIFIED", p),
                    WatchEvent::Deleted(p) => ("DELETED", p),
                    WatchEvent::Bookmark(b) => {
                        return ("BOOKMARK".into(), String::new(), b.resource_version);
                    }
                    WatchEvent::Error(s) => panic!("{s:?}"),
                };
                let m = pod.metadata;
                (kind.into(), m.name.unwrap(), m.resource_version.unwrap())
            })
            .collect()
    }

    #[test]
    fn bench_cpu_ms_reads_utime_and_stime_after_the_command_name() {
        let stat = "4242 (sync (client) x) S 1 4242 4242 0 -1 4194304 100 0 0 0 \
                    123 45 0 0 20 0 3 0 100 1000000 200";
        assert_eq!(stat_cpu_ms(stat), Some((123 + 45) * 10));
        assert_eq!(stat_cpu_ms("4242 (cut) S 1 2"), None);
        // This process has run, so the live figure parses.
        assert!(cpu_ms("/proc/self/stat").is_some() || !cfg!(target_os = "linux"));
    }

    #[test]
    fn bench_streams_carry_the_same_events_in_every_encoding() {
        let Some(dir) = fixtures() else { return };
        let generator = Generator::pods(&dir, true).unwrap();
        let events = pod_events(&generator, 250);
        let json = summary(Framing::JsonStream, &json_stream(&events));
        assert_eq!(json.len(), 250);
        assert_eq!(json.iter().filter(|e| e.0 == "BOOKMARK").count(), 2);
        let names: std::collections::HashSet<_> = json.iter().map(|e| &e.1).collect();
        assert_eq!(names.len(), 249, "every Pod event names a distinct Pod");
        assert_eq!(
            summary(Framing::LengthPrefixed, &protobuf_stream(&events)),
            json
        );
        assert_eq!(summary(Framing::CborSequence, &cbor_stream(&events)), json);
    }

    #[test]
    fn bench_trimmed_pods_are_2_to_3kb_of_json() {
        let Some(dir) = fixtures() else { return };
        let generator = Generator::pods(&dir, true).unwrap();
        let events = pod_events(&generator, 100);
        let body = json_stream(&events[..99]);
        let mean = body.len() / 99;
        assert!((1500..3000).contains(&mean), "mean event {mean} B");
    }

    #[test]
    fn bench_config_maps_keep_or_drop_managed_fields() {
        let with = config_map(7, 3, true);
        let without = config_map(7, 3, false);
        assert_eq!(with.metadata.name.as_deref(), Some("app-config-000007"));
        assert_eq!(with.metadata.managed_fields.as_ref().map(Vec::len), Some(1));
        assert!(without.metadata.managed_fields.is_none());
        assert_eq!(with.data, without.data);
        assert_ne!(config_map(8, 3, true).data, with.data);
    }
}
