//! The generator of windlass-proto's protobuf schema table
//! (`proto-core/src/codec/protobuf/schema.rs`).
//!
//! It reads two crates' sources as text — nothing of them is compiled or
//! linked:
//! - k8s-pb 0.9.0 (prost code for every Kubernetes proto message): message
//!   names, field tags, scalar kinds, `repeated`/`map`, nested messages, and
//!   the `Resource` impls that tie an `apiVersion`/`kind` to a message;
//! - k8s-openapi 0.29.0 (every version folder, newest last): the JSON name
//!   of each field (`"volumeID" => Field::Key_volume_id`) and more
//!   `apiVersion`/`kind` pairs.
//!
//! A proto field is matched to its JSON name by comparing names with
//! everything but ASCII letters and digits removed, case folded (`volume_id`
//! ~ `volumeID`, `x_kubernetes_list_type` ~ `x-kubernetes-list-type`, `r#ref`
//! ~ `$ref`). A field k8s-openapi does not know gets the JSON name another
//! type uses for the same normalised name, or else lowerCamelCase.
//!
//! Run `cargo run -p windlass-testkit --bin gen-protobuf-schema` to rewrite
//! the table; the test `protobuf_schema_generated_file_is_current` checks it.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The crate versions the table is generated from.
pub const K8S_PB: &str = "k8s-pb-0.9.0";
/// The k8s-openapi release whose JSON names the table uses.
pub const K8S_OPENAPI: &str = "k8s-openapi-0.29.0";

/// Where the committed table lives, relative to the repository root.
pub const OUTPUT: &str = "proto-core/src/codec/protobuf/schema.rs";

/// The repository root (the workspace folder).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the testkit lives one folder below the workspace root")
        .to_path_buf()
}

/// The unpacked source folder of a crate in cargo's registry cache
/// (`$CARGO_HOME/registry/src/*/<name>`).
pub fn registry_source(name: &str) -> Result<PathBuf, String> {
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cargo")))
        .ok_or("neither CARGO_HOME nor HOME is set")?;
    let src = home.join("registry/src");
    let entries = std::fs::read_dir(&src).map_err(|e| format!("{}: {e}", src.display()))?;
    for entry in entries.flatten() {
        let candidate = entry.path().join(name);
        if candidate.is_dir() {
            return Ok(candidate);
        }
    }
    Err(format!(
        "{name} is not unpacked under {} (run `cargo fetch` in a crate that depends on it)",
        src.display()
    ))
}

/// Generate the table from the two crates found in cargo's registry cache.
pub fn generate_from_registry() -> Result<String, String> {
    generate(&registry_source(K8S_PB)?, &registry_source(K8S_OPENAPI)?)
}

#[derive(Debug)]
struct ProtoField {
    rust: String,
    tag: u32,
    /// `string`, `bytes`, `bool`, `int32`, …, `message`, or `map:<value>`.
    kind: String,
    repeated: bool,
    /// The message this field holds (full proto name), for `message` and `map:message`.
    message: Option<String>,
}

/// Generate the table's Rust source from the k8s-pb and k8s-openapi source folders.
pub fn generate(k8s_pb: &Path, k8s_openapi: &Path) -> Result<String, String> {
    let mut messages: BTreeMap<String, Vec<ProtoField>> = BTreeMap::new();
    let mut kinds: BTreeMap<(String, String), String> = BTreeMap::new();
    let mut files = Vec::new();
    collect_files(&k8s_pb.join("src"), &mut files)?;
    files.sort();
    for file in &files {
        let rel = file.strip_prefix(k8s_pb.join("src")).expect("under src");
        let mut module: Vec<String> = rel
            .parent()
            .map(|p| p.iter().map(|c| c.to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        if rel
            .file_name()
            .is_some_and(|f| f != "mod.rs" && f != "lib.rs")
        {
            continue;
        }
        if rel == Path::new("lib.rs") {
            module.clear();
        }
        let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
        parse_prost_module(&text, &module, &mut messages, &mut kinds)
            .map_err(|e| format!("{}: {e}", file.display()))?;
    }

    // JSON names: k8s-openapi definition name -> (normalised -> JSON name).
    let mut json_names: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut global_names: BTreeMap<String, String> = BTreeMap::new();
    let mut versions: Vec<PathBuf> = std::fs::read_dir(k8s_openapi.join("src"))
        .map_err(|e| e.to_string())?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.is_dir()
                && p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("v1_"))
        })
        .collect();
    versions.sort_by_key(|p| {
        let name = p
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        name.trim_start_matches("v1_").parse::<u32>().unwrap_or(0)
    });
    for version in &versions {
        let mut files = Vec::new();
        collect_files(version, &mut files)?;
        files.sort();
        for file in files {
            let text =
                std::fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
            parse_openapi_file(&text, &mut json_names, &mut global_names, &mut kinds);
        }
    }

    // k8s-pb re-cases some names (`AwsElasticBlockStoreVolumeSource`); the
    // proto names are the OpenAPI definition names.
    let canonical: BTreeMap<String, String> = json_names
        .keys()
        .map(|n| (n.to_lowercase(), n.clone()))
        .collect();
    let canon = |n: &str| {
        canonical
            .get(&n.to_lowercase())
            .cloned()
            .unwrap_or_else(|| n.to_owned())
    };
    let messages: BTreeMap<String, Vec<ProtoField>> = messages
        .into_iter()
        .map(|(name, mut fields)| {
            for field in &mut fields {
                field.message = field.message.as_deref().map(canon);
            }
            (canon(&name), fields)
        })
        .collect();
    let mut kinds: BTreeMap<(String, String), String> =
        kinds.into_iter().map(|(k, m)| (k, canon(&m))).collect();

    // A list kind for every kind whose `<Message>List` exists.
    let listed: Vec<((String, String), String)> = kinds
        .iter()
        .filter(|(_, m)| messages.contains_key(&format!("{m}List")))
        .map(|((a, k), m)| ((a.clone(), format!("{k}List")), format!("{m}List")))
        .collect();
    kinds.extend(listed);

    // Package -> apiVersion, learned from the kinds, else guessed from the
    // package name (`k8s.io.api.<group>.<version>` serves `<group>.k8s.io`).
    let mut packages: BTreeMap<String, String> = BTreeMap::new();
    let mut groups: BTreeMap<String, String> = BTreeMap::new();
    for ((api_version, _), message) in &kinds {
        if let Some((package, _)) = message.rsplit_once('.') {
            packages
                .entry(package.to_owned())
                .or_insert_with(|| api_version.clone());
            if let (Some((unversioned, _)), Some((group, _))) =
                (package.rsplit_once('.'), api_version.split_once('/'))
            {
                groups
                    .entry(unversioned.to_owned())
                    .or_insert_with(|| group.to_owned());
            }
        }
    }
    for message in messages.keys() {
        let Some((package, _)) = message.rsplit_once('.') else {
            continue;
        };
        let Some((unversioned, version)) = package.rsplit_once('.') else {
            continue;
        };
        let api_version = match (
            groups.get(unversioned),
            unversioned.strip_prefix("k8s.io.api."),
        ) {
            (Some(group), _) => format!("{group}/{version}"),
            (None, Some("core")) => version.to_owned(),
            (None, Some("extensions")) => format!("extensions/{version}"),
            (None, Some(group)) => format!("{group}.k8s.io/{version}"),
            (None, None) => continue,
        };
        packages.entry(package.to_owned()).or_insert(api_version);
    }

    // Message order fixes the indices the table refers to.
    let index: BTreeMap<&str, usize> = messages
        .keys()
        .enumerate()
        .map(|(i, n)| (n.as_str(), i))
        .collect();
    let mut out = String::new();
    writeln!(
        out,
        "// @generated by `cargo run -p windlass-testkit --bin gen-protobuf-schema`"
    )
    .unwrap();
    writeln!(
        out,
        "// from {K8S_PB} (tags, kinds) and {K8S_OPENAPI} (JSON names). Do not edit."
    )
    .unwrap();
    writeln!(
        out,
        "// The test `protobuf_schema_generated_file_is_current` checks it is current."
    )
    .unwrap();
    writeln!(out).unwrap();
    writeln!(out, "use super::table::{{Field, Message, Shape, Type}};").unwrap();
    writeln!(out).unwrap();
    writeln!(out, "/// Every message, sorted by full proto name.").unwrap();
    writeln!(out, "pub(super) static MESSAGES: &[Message] = &[").unwrap();
    for (name, fields) in &messages {
        let names = json_names.get(name);
        let mut fields: Vec<&ProtoField> = fields.iter().collect();
        fields.sort_by_key(|f| f.tag);
        let shape = shape_of(name);
        writeln!(out, "    Message {{").unwrap();
        writeln!(out, "        name: {name:?},").unwrap();
        writeln!(out, "        shape: Shape::{shape},").unwrap();
        writeln!(out, "        fields: &[").unwrap();
        for field in fields {
            let norm = normalise(&field.rust);
            let own = names.and_then(|n| n.get(&norm));
            // A Go struct embedded with `json:",inline"` (Volume's VolumeSource):
            // its fields appear in the parent's JSON; the table marks it with an
            // empty JSON name.
            let inline = own.is_none()
                && field.kind == "message"
                && !field.repeated
                && names.is_some_and(|n| {
                    let sub = field.message.as_deref().and_then(|m| messages.get(m));
                    sub.is_some_and(|fields| {
                        !fields.is_empty()
                            && fields.iter().all(|f| n.contains_key(&normalise(&f.rust)))
                    })
                });
            let json = if inline {
                String::new()
            } else {
                own.or_else(|| global_names.get(&norm))
                    .cloned()
                    .unwrap_or_else(|| lower_camel(&field.rust))
            };
            let target = |m: &Option<String>| -> Result<usize, String> {
                let m = m
                    .as_deref()
                    .ok_or_else(|| format!("{name}.{}: no message type", field.rust))?;
                index
                    .get(m)
                    .copied()
                    .ok_or_else(|| format!("{name}.{}: unknown message {m}", field.rust))
            };
            let ty = match field.kind.as_str() {
                "string" => "Type::String".to_owned(),
                "bytes" => "Type::Bytes".to_owned(),
                "bool" => "Type::Bool".to_owned(),
                "int32" => "Type::Int32".to_owned(),
                "int64" => "Type::Int64".to_owned(),
                "uint32" => "Type::Uint32".to_owned(),
                "uint64" => "Type::Uint64".to_owned(),
                "double" => "Type::Double".to_owned(),
                "float" => "Type::Float".to_owned(),
                "message" => format!("Type::Message({})", target(&field.message)?),
                "map:string" => "Type::MapString".to_owned(),
                "map:bytes" => "Type::MapBytes".to_owned(),
                "map:message" => format!("Type::MapMessage({})", target(&field.message)?),
                other => return Err(format!("{name}.{}: unsupported kind {other}", field.rust)),
            };
            writeln!(
                out,
                "            Field {{ tag: {}, json: {json:?}, ty: {ty}, repeated: {} }},",
                field.tag, field.repeated
            )
            .unwrap();
        }
        writeln!(out, "        ],").unwrap();
        writeln!(out, "    }},").unwrap();
    }
    writeln!(out, "];").unwrap();
    if let Some(line) = out
        .lines()
        .find(|l| l.contains("json: \"\"") && l.contains("repeated: true"))
    {
        return Err(format!("a repeated inline field: {line}"));
    }
    writeln!(out).unwrap();
    writeln!(
        out,
        "/// `(apiVersion, kind)` to the index of its message, sorted."
    )
    .unwrap();
    writeln!(out, "pub(super) static KINDS: &[(&str, &str, u16)] = &[").unwrap();
    for ((api_version, kind), message) in &kinds {
        // A kind k8s-openapi names whose message k8s-pb lacks cannot be decoded.
        if let Some(i) = index.get(message.as_str()) {
            writeln!(out, "    ({api_version:?}, {kind:?}, {i}),").unwrap();
        }
    }
    writeln!(out, "];").unwrap();
    writeln!(out).unwrap();
    writeln!(
        out,
        "/// `apiVersion` to the proto package serving it, sorted: the fallback for"
    )
    .unwrap();
    writeln!(
        out,
        "/// a kind [`KINDS`] does not name (its message is `<package>.<kind>`)."
    )
    .unwrap();
    writeln!(out, "pub(super) static PACKAGES: &[(&str, &str)] = &[").unwrap();
    let mut by_version: Vec<(&String, &String)> = packages.iter().map(|(p, a)| (a, p)).collect();
    by_version.sort();
    for (api_version, package) in by_version {
        writeln!(out, "    ({api_version:?}, {package:?}),").unwrap();
    }
    writeln!(out, "];").unwrap();
    if messages.len() > u16::MAX as usize {
        return Err("more messages than a u16 index holds".into());
    }
    Ok(out)
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), String> {
    for entry in std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))? {
        let path = entry.map_err(|e| e.to_string())?.path();
        if path.is_dir() {
            collect_files(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    Ok(())
}

/// The special JSON shape of a message, by its name.
fn shape_of(name: &str) -> &'static str {
    match name {
        "k8s.io.apimachinery.pkg.apis.meta.v1.Time" => "Time",
        "k8s.io.apimachinery.pkg.apis.meta.v1.MicroTime" => "MicroTime",
        "k8s.io.apimachinery.pkg.api.resource.Quantity" => "Quantity",
        "k8s.io.apimachinery.pkg.util.intstr.IntOrString" => "IntOrString",
        "k8s.io.apimachinery.pkg.apis.meta.v1.FieldsV1"
        | "k8s.io.apimachinery.pkg.runtime.RawExtension"
        | "k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.v1.JSON"
        | "k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.v1beta1.JSON" => "RawJson",
        "k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.v1.JSONSchemaPropsOrBool"
        | "k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.v1beta1.JSONSchemaPropsOrBool" => {
            "SchemaOrBool"
        }
        "k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.v1.JSONSchemaPropsOrArray"
        | "k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.v1beta1.JSONSchemaPropsOrArray" => {
            "SchemaOrArray"
        }
        "k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.v1.JSONSchemaPropsOrStringArray"
        | "k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.v1beta1.JSONSchemaPropsOrStringArray" => {
            "SchemaOrStringArray"
        }
        _ => "Struct",
    }
}

/// Only ASCII letters and digits, lower-cased: the key that matches a prost
/// field name to its JSON name.
fn normalise(name: &str) -> String {
    name.trim_start_matches("r#")
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

fn lower_camel(rust: &str) -> String {
    let mut out = String::new();
    let mut upper = false;
    for c in rust.trim_start_matches("r#").chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.push(c.to_ascii_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// Parse one k8s-pb `mod.rs`: its `pub struct`s with `#[prost(..)]` fields and
/// its `impl crate::Resource for X` blocks.
fn parse_prost_module(
    text: &str,
    module: &[String],
    messages: &mut BTreeMap<String, Vec<ProtoField>>,
    kinds: &mut BTreeMap<(String, String), String>,
) -> Result<(), String> {
    let full = |name: &str| format!("k8s.io.{}.{name}", module.join("."));
    let lines: Vec<&str> = text.lines().collect();
    let mut i = 0;
    let mut current: Option<String> = None;
    while i < lines.len() {
        let line = lines[i].trim();
        if let Some(rest) = line.strip_prefix("pub struct ") {
            let name = rest.trim_end_matches('{').trim().to_owned();
            if let Some(empty) = rest.strip_suffix("{}") {
                messages.insert(full(empty.trim()), Vec::new());
            } else if rest.trim_end().ends_with('{') {
                messages.insert(full(&name), Vec::new());
                current = Some(full(&name));
            } else {
                // A unit struct: an empty message.
                messages.insert(full(name.trim_end_matches(';').trim()), Vec::new());
            }
        } else if line == "}" {
            current = None;
        } else if let (Some(attr), Some(message)) =
            (line.strip_prefix("#[prost("), current.as_ref())
        {
            let attr = attr.trim_end_matches(")]");
            // The field declaration may span lines; join until its `,`.
            let mut decl = String::new();
            let mut j = i + 1;
            while j < lines.len() {
                let l = lines[j].trim();
                if !l.starts_with("///") && !l.starts_with("#[") {
                    decl.push_str(l);
                    let open = decl.matches('<').count();
                    if l.ends_with(',') && open == decl.matches('>').count() {
                        break;
                    }
                }
                j += 1;
            }
            i = j;
            let (rust, ty) = decl
                .trim_start_matches("pub ")
                .trim_end_matches(',')
                .split_once(':')
                .ok_or_else(|| format!("{message}: cannot read field declaration {decl:?}"))?;
            let field = parse_prost_field(attr, rust.trim(), ty.trim(), module)
                .map_err(|e| format!("{message}.{}: {e}", rust.trim()))?;
            messages
                .get_mut(message)
                .expect("inserted above")
                .push(field);
        } else if let Some(rest) = line.strip_prefix("impl crate::Resource for ") {
            let name = rest.trim_end_matches('{').trim();
            let mut api_version = None;
            let mut kind = None;
            for l in &lines[i + 1..] {
                let l = l.trim();
                if l == "}" {
                    break;
                }
                if let Some(v) = const_str(l, "API_VERSION") {
                    api_version = Some(v);
                }
                if let Some(v) = const_str(l, "KIND") {
                    kind = Some(v);
                }
            }
            if let (Some(a), Some(k)) = (api_version, kind) {
                kinds.insert((a, k), full(name));
            }
        }
        i += 1;
    }
    Ok(())
}

fn const_str(line: &str, name: &str) -> Option<String> {
    let rest = line.strip_prefix(&format!("const {name}: &'static str = \""))?;
    Some(rest.trim_end_matches("\";").to_owned())
}

fn parse_prost_field(
    attr: &str,
    rust: &str,
    ty: &str,
    module: &[String],
) -> Result<ProtoField, String> {
    // A map attribute's first part holds a comma: `btree_map = "string, string"`.
    let (first, rest) = match attr.find("\", ") {
        Some(end) if attr.contains("map = \"") => (&attr[..=end], &attr[end + 3..]),
        _ => attr.split_once(", ").unwrap_or((attr, "")),
    };
    let mut parts: Vec<&str> = vec![first];
    parts.extend(rest.split(", ").map(str::trim));
    let tag = parts
        .iter()
        .find_map(|p| p.strip_prefix("tag = \""))
        .and_then(|t| t.trim_end_matches('"').parse().ok())
        .ok_or("no tag")?;
    let repeated = parts.contains(&"repeated");
    let compact: String = ty.chars().filter(|c| !c.is_whitespace()).collect();
    let compact = compact.trim_end_matches([',', '>']);
    let (kind, message) = if let Some(map) = first
        .strip_prefix("btree_map = \"")
        .or_else(|| first.strip_prefix("map = \""))
    {
        let (key, value) = map.trim_end_matches('"').split_once(',').ok_or("bad map")?;
        if key.trim() != "string" {
            return Err(format!("map key {key} is not a string"));
        }
        let value = value.trim();
        if value.starts_with("message") {
            // BTreeMap<String, Path>
            let inner = compact
                .rsplit_once(',')
                .map(|(_, v)| v.trim_end_matches(|c| c == '>' || c == ','))
                .ok_or("bad map type")?;
            (String::from("map:message"), Some(resolve(inner, module)))
        } else {
            (format!("map:{value}"), None)
        }
    } else if first.starts_with("bytes") {
        ("bytes".to_owned(), None)
    } else if first == "message" {
        let inner = compact
            .trim_start_matches("::core::option::Option<")
            .trim_start_matches("::prost::alloc::vec::Vec<")
            .trim_start_matches("::prost::alloc::boxed::Box<");
        let inner = inner.trim_end_matches(|c| c == '>' || c == ',');
        (String::from("message"), Some(resolve(inner, module)))
    } else {
        (first.to_owned(), None)
    };
    Ok(ProtoField {
        rust: rust.to_owned(),
        tag,
        kind,
        repeated,
        message,
    })
}

/// Resolve a prost type path (`super::super::meta::v1::Time`, `PodSpec`)
/// written in `module` to a full proto name.
fn resolve(path: &str, module: &[String]) -> String {
    let path = path
        .trim_start_matches("::core::option::Option<")
        .trim_start_matches("::prost::alloc::boxed::Box<");
    let mut base: Vec<&str> = module.iter().map(String::as_str).collect();
    let mut rest = path;
    while let Some(r) = rest.strip_prefix("super::") {
        base.pop();
        rest = r;
    }
    let rest = rest.trim_start_matches("crate::");
    if path.starts_with("crate::") {
        base.clear();
    }
    let mut parts: Vec<&str> = base;
    parts.extend(rest.split("::"));
    format!("k8s.io.{}", parts.join("."))
}

/// Read one k8s-openapi source file: its definition name, its JSON field
/// names and, for a resource, its `apiVersion`/`kind`.
fn parse_openapi_file(
    text: &str,
    json_names: &mut BTreeMap<String, BTreeMap<String, String>>,
    global_names: &mut BTreeMap<String, String>,
    kinds: &mut BTreeMap<(String, String), String>,
) {
    let Some(definition) = text
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("// Generated from definition io.k8s."))
    else {
        return;
    };
    let message = format!("k8s.io.{}", definition.trim().replace('-', "_"));
    let mut names = BTreeSet::new();
    for line in text.lines() {
        let line = line.trim();
        if let Some((json, rest)) = line
            .strip_prefix('"')
            .and_then(|l| l.split_once("\" => Field::Key_"))
        {
            let _ = rest;
            names.insert(json.to_owned());
        }
    }
    let entry = json_names.entry(message.clone()).or_default();
    for json in names {
        global_names
            .entry(normalise(&json))
            .or_insert_with(|| json.clone());
        entry.insert(normalise(&json), json);
    }
    let mut api_version = None;
    let mut kind = None;
    let mut in_resource = false;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with("impl crate::Resource for ") {
            in_resource = true;
        } else if in_resource && line == "}" {
            break;
        } else if in_resource {
            if let Some(v) = const_str(line, "API_VERSION") {
                api_version = Some(v);
            }
            if let Some(v) = const_str(line, "KIND") {
                kind = Some(v);
            }
        }
    }
    if let (Some(a), Some(k)) = (api_version, kind) {
        kinds.insert((a, k), message);
    }
}
