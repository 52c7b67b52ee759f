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
pub fn generate_from_registry(fixtures: &Path) -> Result<Generated, String> {
    generate(
        &registry_source(K8S_PB)?,
        &registry_source(K8S_OPENAPI)?,
        fixtures,
    )
}

/// One field of a proto message, as the generator reads it.
#[derive(Debug)]
pub struct ProtoField {
    /// The prost field name.
    pub rust: String,
    /// The field number.
    pub tag: u32,
    /// `string`, `bytes`, `bool`, `int32`, …, `message`, or `map:<value>`.
    pub kind: String,
    /// `repeated` (a JSON array).
    pub repeated: bool,
    /// The message this field holds (full proto name), for `message` and `map:message`.
    pub message: Option<String>,
    /// The JSON name; empty for an inline (embedded) message.
    pub json: String,
}

/// The two generated files' sources.
pub struct Generated {
    /// The schema table ([`OUTPUT`]).
    pub schema: String,
    /// The direct encoders ([`crate::protobuf_direct::OUTPUT`]).
    pub direct: String,
}

/// Generate the table's Rust source and the direct encoders' from the k8s-pb
/// and k8s-openapi source folders and the fixtures folder (for fields newer
/// than k8s-pb).
pub fn generate(k8s_pb: &Path, k8s_openapi: &Path, fixtures: &Path) -> Result<Generated, String> {
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
    let mut types = OpenApiTypes::default();
    for version in &versions {
        let mut files = Vec::new();
        collect_files(version, &mut files)?;
        files.sort();
        for file in files {
            let text =
                std::fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
            parse_openapi_file(&text, &mut json_names, &mut global_names, &mut kinds);
            types.parse(&text, &module_of(&file, version));
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

    // JSON names for every k8s-pb field.
    let mut resolved = BTreeMap::new();
    for (name, fields) in &messages {
        let names = json_names.get(name);
        let jsons: Vec<String> = fields
            .iter()
            .map(|field| {
                let norm = normalise(&field.rust);
                let own = names.and_then(|n| n.get(&norm));
                // A Go struct embedded with `json:",inline"` (Volume's VolumeSource):
                // its fields appear in the parent's JSON; the table marks it with an
                // empty JSON name.
                let inline = own.is_none()
                    && field.kind == "message"
                    && !field.repeated
                    && names.is_some_and(|n| inlines_into(field, n, &messages, 0));
                if inline {
                    String::new()
                } else {
                    own.or_else(|| global_names.get(&norm))
                        .cloned()
                        .unwrap_or_else(|| lower_camel(&field.rust))
                }
            })
            .collect();
        resolved.insert(name.clone(), jsons);
    }
    let mut messages = messages;
    for (name, fields) in &mut messages {
        for (field, json) in fields.iter_mut().zip(&resolved[name]) {
            field.json = json.clone();
        }
    }

    // Fields and messages newer than k8s-pb, learned from the fixtures.
    messages.insert(
        STRING_LIST.into(),
        vec![ProtoField {
            rust: "items".into(),
            tag: 1,
            kind: "string".into(),
            repeated: true,
            message: None,
            json: "items".into(),
        }],
    );
    let mut learner = Learner {
        messages,
        types: &types,
    };
    for folder in FIXTURE_FOLDERS {
        learner.learn_folder(&fixtures.join(folder), &kinds)?;
    }
    let mut messages = learner.messages;
    for fields in messages.values_mut() {
        fields.sort_by_key(|f| f.tag);
    }
    let messages = messages;

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
        "// from {K8S_PB} (tags, kinds), {K8S_OPENAPI} (JSON names, types) and, for"
    )
    .unwrap();
    writeln!(
        out,
        "// fields newer than k8s-pb, the kubernetes/api fixtures. Do not edit."
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
    let mut shapes: BTreeMap<String, &'static str> = BTreeMap::new();
    for (name, fields) in &messages {
        // A Go named slice (`type ExtraValue []string`): `{repeated string
        // items = 1}` on the wire, a JSON array.
        let shape = match &fields[..] {
            [only]
                if only.tag == 1
                    && only.kind == "string"
                    && only.repeated
                    && only.rust == "items"
                    && !json_names.contains_key(name) =>
            {
                "StringList"
            }
            _ => shape_of(name),
        };
        shapes.insert(name.clone(), shape);
    }
    for (name, fields) in &messages {
        let shape = shapes[name];
        writeln!(out, "    Message {{").unwrap();
        writeln!(out, "        name: {name:?},").unwrap();
        writeln!(out, "        shape: Shape::{shape},").unwrap();
        writeln!(out, "        fields: &[").unwrap();
        for field in fields {
            let json = &field.json;
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
    let direct = crate::protobuf_direct::render(
        &crate::protobuf_direct::Schema {
            messages: &messages,
            index: &index,
            shapes: &shapes,
        },
        &versions,
        &canon,
    )?;
    Ok(Generated {
        schema: out,
        direct,
    })
}

/// Whether `field` is a message whose fields (through further inline
/// messages) all appear among the parent's JSON names `names`.
fn inlines_into(
    field: &ProtoField,
    names: &BTreeMap<String, String>,
    messages: &BTreeMap<String, Vec<ProtoField>>,
    depth: usize,
) -> bool {
    let sub = field.message.as_deref().and_then(|m| messages.get(m));
    depth < 4
        && field.kind == "message"
        && !field.repeated
        && sub.is_some_and(|fields| {
            !fields.is_empty()
                && fields.iter().all(|f| {
                    names.contains_key(&normalise(&f.rust))
                        || inlines_into(f, names, messages, depth + 1)
                })
        })
}

/// The Rust module of a k8s-openapi source file below its version folder
/// (`api/core/v1/pod.rs` → `api::core::v1`).
pub(crate) fn module_of(file: &Path, version: &Path) -> String {
    file.strip_prefix(version)
        .ok()
        .and_then(Path::parent)
        .map(|p| {
            p.iter()
                .map(|c| c.to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("::")
        })
        .unwrap_or_default()
}

/// Every `.rs` file below `dir`.
pub(crate) fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), String> {
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
                .map(|(_, v)| v.trim_end_matches(['>', ',']))
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
        let inner = inner.trim_end_matches(['>', ',']);
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
        json: String::new(),
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

/// A message the generator makes up for a map whose values are string lists
/// (`TokenRequestSpec.attestations`): on the wire each value is
/// `{1: repeated string}`, like Go's named `[]string` types.
const STRING_LIST: &str = "windlass.synthetic.StringList";

/// The fixture folders the generator learns newer fields from.
pub const FIXTURE_FOLDERS: [&str; 2] = ["k8s-api-HEAD", "k8s-api-v1.36.0"];

/// k8s-openapi's field types: what a field newer than k8s-pb holds.
#[derive(Default)]
struct OpenApiTypes {
    /// Proto-style definition name → JSON name → Rust type.
    fields: BTreeMap<String, BTreeMap<String, String>>,
    /// Rust path below `crate::` (`api::core::v1::Pod`) → definition name.
    paths: BTreeMap<String, String>,
}

/// A field's protobuf shape: kind, repeated, message.
type Spec = (String, bool, Option<String>);

impl OpenApiTypes {
    fn parse(&mut self, text: &str, module: &str) {
        let Some(definition) = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("// Generated from definition io.k8s."))
        else {
            return;
        };
        let message = format!("k8s.io.{}", definition.trim().replace('-', "_"));
        let mut rust_types = BTreeMap::new();
        let mut in_struct = false;
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("pub struct ") {
                if let Some(name) = rest.strip_suffix(" {") {
                    self.paths
                        .insert(format!("{module}::{name}"), message.clone());
                    in_struct = true;
                } else if let Some((name, _)) = rest.split_once('(') {
                    // A newtype (`Time`, `Quantity`, `RawExtension`).
                    self.paths
                        .insert(format!("{module}::{name}"), message.clone());
                }
                continue;
            }
            if let Some(name) = line
                .strip_prefix("pub enum ")
                .and_then(|r| r.strip_suffix(" {"))
            {
                // `IntOrString`, `JSONSchemaPropsOr*`.
                self.paths
                    .insert(format!("{module}::{name}"), message.clone());
                continue;
            }
            if in_struct && line == "}" {
                in_struct = false;
            }
            let declaration = line
                .trim()
                .strip_prefix("pub ")
                .and_then(|l| l.strip_suffix(','))
                .and_then(|l| l.split_once(": "));
            if let (true, Some((name, ty))) = (in_struct, declaration) {
                rust_types.insert(name.to_owned(), ty.to_owned());
            }
        }
        let mut by_json = BTreeMap::new();
        for line in text.lines() {
            if let Some((json, rest)) = line
                .trim()
                .strip_prefix('"')
                .and_then(|l| l.split_once("\" => Field::Key_"))
            {
                let rust = rest.trim_end_matches(',');
                if let Some(ty) = rust_types.get(rust) {
                    by_json.insert(json.to_owned(), ty.clone());
                }
            }
        }
        self.fields.entry(message).or_default().extend(by_json);
    }

    /// The protobuf shape of a k8s-openapi field type, `None` for one with no
    /// protobuf equivalent the generator can name.
    fn spec(&self, ty: &str) -> Option<Spec> {
        let ty = ty
            .strip_prefix("Option<")
            .and_then(|t| t.strip_suffix('>'))
            .unwrap_or(ty);
        if let Some(inner) = ty
            .strip_prefix("std::vec::Vec<")
            .and_then(|t| t.strip_suffix('>'))
        {
            let (kind, _, message) = self.scalar(inner)?;
            return Some((kind, true, message));
        }
        if let Some(inner) = ty
            .strip_prefix("std::collections::BTreeMap<std::string::String, ")
            .and_then(|t| t.strip_suffix('>'))
        {
            if inner == "std::vec::Vec<std::string::String>" {
                return Some(("map:message".into(), false, Some(STRING_LIST.into())));
            }
            let (kind, _, message) = self.scalar(inner)?;
            return match kind.as_str() {
                "string" | "bytes" | "message" => Some((format!("map:{kind}"), false, message)),
                _ => None,
            };
        }
        self.scalar(ty)
    }

    fn scalar(&self, ty: &str) -> Option<Spec> {
        let kind = match ty {
            "std::string::String" => "string",
            "bool" => "bool",
            "i32" => "int32",
            "i64" => "int64",
            "f64" => "double",
            "crate::ByteString" => "bytes",
            _ => {
                let path = ty.strip_prefix("crate::")?;
                let message = self.paths.get(path)?.clone();
                return Some(("message".into(), false, Some(message)));
            }
        };
        Some((kind.into(), false, None))
    }
}

/// A JSON value that keeps its object keys in file order (Go struct order,
/// which follows field numbers): the tie-breaker when values alone cannot
/// say which new field a field number is.
enum Ordered {
    Object(Vec<(String, Ordered)>),
    Array(Vec<Ordered>),
    Other(serde_json::Value),
}

impl Ordered {
    fn get(&self, key: &str) -> Option<&Ordered> {
        match self {
            Ordered::Object(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }
}

impl<'de> serde::Deserialize<'de> for Ordered {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Ordered;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("JSON")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Ordered, A::Error> {
                let mut entries = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, Ordered>()? {
                    entries.push((k, v));
                }
                Ok(Ordered::Object(entries))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Ordered, A::Error> {
                let mut items = Vec::new();
                while let Some(v) = seq.next_element::<Ordered>()? {
                    items.push(v);
                }
                Ok(Ordered::Array(items))
            }
            fn visit_str<E>(self, v: &str) -> Result<Ordered, E> {
                Ok(Ordered::Other(v.into()))
            }
            fn visit_bool<E>(self, v: bool) -> Result<Ordered, E> {
                Ok(Ordered::Other(v.into()))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Ordered, E> {
                Ok(Ordered::Other(v.into()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Ordered, E> {
                Ok(Ordered::Other(v.into()))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Ordered, E> {
                Ok(Ordered::Other(v.into()))
            }
            fn visit_unit<E>(self) -> Result<Ordered, E> {
                Ok(Ordered::Other(serde_json::Value::Null))
            }
        }
        d.deserialize_any(V)
    }
}

/// A field value on the wire, as the generator reads it.
#[derive(Clone, Copy)]
enum Wire<'a> {
    Varint(u64),
    Fixed64(u64),
    Len(&'a [u8]),
    Fixed32,
}

/// The fields of one message, or `None` when the bytes are not a message.
fn wire_fields(mut b: &[u8]) -> Option<Vec<(u32, Wire<'_>)>> {
    fn varint(b: &mut &[u8]) -> Option<u64> {
        let mut v = 0u64;
        for i in 0..10 {
            let byte = *b.get(i)?;
            v |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                *b = &b[i + 1..];
                return Some(v);
            }
        }
        None
    }
    let mut out = Vec::new();
    while !b.is_empty() {
        let key = varint(&mut b)?;
        let tag = u32::try_from(key >> 3).ok().filter(|t| *t > 0)?;
        let value = match key & 7 {
            0 => Wire::Varint(varint(&mut b)?),
            1 => {
                let v = u64::from_le_bytes(b.get(..8)?.try_into().ok()?);
                b = &b[8..];
                Wire::Fixed64(v)
            }
            2 => {
                let len = usize::try_from(varint(&mut b)?).ok()?;
                let v = b.get(..len)?;
                b = &b[len..];
                Wire::Len(v)
            }
            5 => {
                b = b.get(4..)?;
                Wire::Fixed32
            }
            _ => return None,
        };
        out.push((tag, value));
    }
    Some(out)
}

fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in bytes.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            out.push(if i <= c.len() {
                A[((n >> (18 - 6 * i)) & 63) as usize] as char
            } else {
                '='
            });
        }
    }
    out
}

/// Learns the fields k8s-pb lacks from fixture pairs: walking a `.pb` with
/// the schema known so far beside its `.json` twin, a field number the
/// schema lacks is matched to the JSON key (of a field k8s-openapi knows and
/// the schema does not) whose k8s-openapi type fits the wire value and whose
/// JSON value equals it; ties go by Go field order.
struct Learner<'a> {
    messages: BTreeMap<String, Vec<ProtoField>>,
    types: &'a OpenApiTypes,
}

impl Learner<'_> {
    fn learn_folder(
        &mut self,
        dir: &Path,
        kinds: &BTreeMap<(String, String), String>,
    ) -> Result<(), String> {
        let mut stems: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| format!("{}: {e}", dir.display()))?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "pb"))
            .collect();
        stems.sort();
        for pb_path in stems {
            let (Ok(pb), Ok(json)) = (
                std::fs::read(&pb_path),
                std::fs::read(pb_path.with_extension("json")),
            ) else {
                continue;
            };
            let Ok(json) = serde_json::from_slice::<Ordered>(&json) else {
                continue;
            };
            let Some(envelope) = pb.strip_prefix(b"k8s\0").and_then(wire_fields) else {
                continue;
            };
            let field = |tag| {
                envelope.iter().find_map(|(t, v)| match v {
                    Wire::Len(b) if *t == tag => Some(*b),
                    _ => None,
                })
            };
            let (Some(type_meta), Some(raw)) = (field(1).and_then(wire_fields), field(2)) else {
                continue;
            };
            let text = |tag| {
                type_meta.iter().find_map(|(t, v)| match v {
                    Wire::Len(b) if *t == tag => std::str::from_utf8(b).ok().map(str::to_owned),
                    _ => None,
                })
            };
            let (Some(api_version), Some(kind)) = (text(1), text(2)) else {
                continue;
            };
            let Some(message) = kinds.get(&(api_version, kind)).cloned() else {
                continue;
            };
            if !self.messages.contains_key(&message) && self.types.fields.contains_key(&message) {
                self.messages.insert(message.clone(), Vec::new());
            }
            self.walk(&message, raw, &json, 0);
        }
        Ok(())
    }

    fn walk(&mut self, message: &str, bytes: &[u8], json: &Ordered, depth: usize) {
        if depth > 64 || shape_of(message) != "Struct" {
            return;
        }
        let (Some(fields), Ordered::Object(entries)) = (wire_fields(bytes), json) else {
            return;
        };
        let mut groups: BTreeMap<u32, Vec<Wire<'_>>> = BTreeMap::new();
        for (tag, value) in fields {
            groups.entry(tag).or_default().push(value);
        }
        let known: Vec<Spec2> = self
            .messages
            .get(message)
            .map(|fs| fs.iter().map(Spec2::of).collect())
            .unwrap_or_default();
        let mut unknown = Vec::new();
        for (tag, values) in &groups {
            match known.iter().find(|f| f.tag == *tag) {
                Some(field) => self.descend(field, values, json, depth),
                None => unknown.push((*tag, values)),
            }
        }
        if unknown.is_empty() {
            return;
        }
        let Some(api) = self.types.fields.get(message) else {
            return;
        };
        let mut claimed: BTreeSet<String> = known.iter().map(|f| f.json.clone()).collect();
        for f in known.iter().filter(|f| f.json.is_empty()) {
            if let Some(sub) = f.message.as_ref().and_then(|m| self.messages.get(m)) {
                claimed.extend(sub.iter().map(|s| s.json.clone()));
            }
        }
        let mut candidates: Vec<(String, Spec, &Ordered)> = entries
            .iter()
            .filter(|(k, _)| {
                // At the top, apiVersion and kind are the envelope's.
                !claimed.contains(k) && (depth > 0 || (k != "apiVersion" && k != "kind"))
            })
            .filter_map(|(k, v)| Some((k.clone(), self.types.spec(api.get(k)?)?, v)))
            .collect();
        // Exact value matches first, then shape matches; ties by order.
        let mut learned = Vec::new();
        for exact in [true, false] {
            unknown.retain(|(tag, values)| {
                let Some(at) = candidates
                    .iter()
                    .position(|(_, spec, v)| fits(spec, values, v, exact))
                else {
                    return true;
                };
                let (json, spec, _) = candidates.remove(at);
                learned.push((*tag, json, spec));
                false
            });
        }
        for (tag, name, (kind, repeated, target)) in learned {
            if let Some(target) = &target {
                if !self.messages.contains_key(target) && shape_of(target) == "Struct" {
                    self.messages.insert(target.clone(), Vec::new());
                }
                if !self.messages.contains_key(target) {
                    continue;
                }
            }
            let field = ProtoField {
                rust: name.clone(),
                tag,
                kind,
                repeated,
                message: target,
                json: name,
            };
            let spec = Spec2::of(&field);
            self.messages
                .entry(message.to_owned())
                .or_default()
                .push(field);
            if let Some(values) = groups.get(&tag) {
                self.descend(&spec, values, json, depth);
            }
        }
    }

    fn descend(&mut self, field: &Spec2, values: &[Wire<'_>], json: &Ordered, depth: usize) {
        let Some(target) = field.message.as_deref() else {
            return;
        };
        if field.json.is_empty() {
            for value in values {
                if let Wire::Len(b) = value {
                    self.walk(target, b, json, depth + 1);
                }
            }
            return;
        }
        let Some(value) = json.get(&field.json) else {
            return;
        };
        match (field.kind.as_str(), field.repeated, value) {
            ("message", true, Ordered::Array(items)) => {
                for (wire, item) in values.iter().zip(items) {
                    if let Wire::Len(b) = wire {
                        self.walk(target, b, item, depth + 1);
                    }
                }
            }
            ("message", false, _) => {
                if let Some(Wire::Len(b)) = values.last() {
                    self.walk(target, b, value, depth + 1);
                }
            }
            ("map:message", _, _) => {
                for wire in values {
                    let Wire::Len(entry) = wire else { continue };
                    let Some(entry) = wire_fields(entry) else {
                        continue;
                    };
                    let key = entry.iter().find_map(|(t, v)| match v {
                        Wire::Len(k) if *t == 1 => std::str::from_utf8(k).ok(),
                        _ => None,
                    });
                    let val = entry.iter().find_map(|(t, v)| match v {
                        Wire::Len(b) if *t == 2 => Some(*b),
                        _ => None,
                    });
                    if let (Some(key), Some(val), Some(item)) =
                        (key, val, key.and_then(|k| value.get(k)))
                    {
                        let _ = key;
                        self.walk(target, val, item, depth + 1);
                    }
                }
            }
            _ => {}
        }
    }
}

/// A known field, detached from the learner's tables.
struct Spec2 {
    tag: u32,
    json: String,
    kind: String,
    repeated: bool,
    message: Option<String>,
}

impl Spec2 {
    fn of(f: &ProtoField) -> Self {
        Spec2 {
            tag: f.tag,
            json: f.json.clone(),
            kind: f.kind.clone(),
            repeated: f.repeated,
            message: f.message.clone(),
        }
    }
}

/// Whether a wire value fits a field of this shape holding this JSON value:
/// `exact` asks for an equal scalar; otherwise an object, array or map of the
/// right size is enough.
fn fits(spec: &Spec, values: &[Wire<'_>], json: &Ordered, exact: bool) -> bool {
    let (kind, repeated, message) = spec;
    let scalar = |wire: &Wire<'_>, json: &Ordered| -> bool {
        let Ordered::Other(v) = json else {
            return false;
        };
        match (kind.as_str(), wire) {
            ("string", Wire::Len(b)) => std::str::from_utf8(b).is_ok_and(|s| v.as_str() == Some(s)),
            ("bytes", Wire::Len(b)) => v.as_str() == Some(base64(b).as_str()),
            ("int32", Wire::Varint(n)) => v.as_i64() == Some(i64::from(*n as i32)),
            ("int64", Wire::Varint(n)) => v.as_i64() == Some(*n as i64),
            ("bool", Wire::Varint(n)) => v.as_bool() == Some(*n != 0),
            ("double", Wire::Fixed64(n)) => v.as_f64() == Some(f64::from_bits(*n)),
            _ => false,
        }
    };
    let shaped = |wire: &Wire<'_>, json: &Ordered| -> bool {
        let Wire::Len(_) = wire else { return false };
        match (message.as_deref().map(shape_of), json) {
            (Some("Struct"), Ordered::Object(_)) => true,
            (Some("Time" | "MicroTime" | "Quantity"), Ordered::Other(v)) => v.is_string(),
            (Some("IntOrString"), Ordered::Other(v)) => v.is_string() || v.is_number(),
            (Some("RawJson"), _) => true,
            _ => false,
        }
    };
    match (kind.as_str(), repeated, json) {
        ("message", false, _) if !exact => values.len() == 1 && shaped(&values[0], json),
        ("message", true, Ordered::Array(items)) if !exact => {
            items.len() == values.len() && values.iter().zip(items).all(|(w, j)| shaped(w, j))
        }
        ("map:string" | "map:bytes" | "map:message", _, Ordered::Object(entries)) if !exact => values.iter().all(|w| {
            let Wire::Len(b) = w else { return false };
            wire_fields(b).is_some_and(|e| {
                e.iter().any(|(t, v)| {
                    *t == 1 && matches!(v, Wire::Len(k) if std::str::from_utf8(k).is_ok_and(|k| entries.iter().any(|(key, _)| key == k)))
                })
            })
        }),
        ("message" | "map:string" | "map:bytes" | "map:message", _, _) => false,
        (_, false, _) if exact => values.len() == 1 && scalar(&values[0], json),
        (_, true, Ordered::Array(items)) if exact => {
            items.len() == values.len() && values.iter().zip(items).all(|(w, j)| scalar(w, j))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    /// Both generated files: the table and the direct encoders beside it.
    fn protobuf_schema_generated_file_is_current() {
        let Some(fixtures) = crate::fixtures::dir() else {
            return;
        };
        let generated = super::generate_from_registry(&fixtures).expect("generate the schema");
        let path = super::repo_root().join(super::OUTPUT);
        let committed = std::fs::read_to_string(&path).expect("read the committed schema");
        assert!(
            generated.schema == committed,
            "{} is stale: run `WINDLASS_FIXTURES=… cargo run -p windlass-testkit --bin gen-protobuf-schema`",
            path.display()
        );
        let path = super::repo_root().join(crate::protobuf_direct::OUTPUT);
        let committed = std::fs::read_to_string(&path).expect("read the committed encoders");
        assert!(
            generated.direct == committed,
            "{} is stale: run `WINDLASS_FIXTURES=… cargo run -p windlass-testkit --bin gen-protobuf-schema`",
            path.display()
        );
    }

    #[test]
    fn protobuf_schema_matches_prost_fields_to_json_names() {
        assert_eq!(super::normalise("volume_id"), super::normalise("volumeID"));
        assert_eq!(
            super::normalise("x_kubernetes_list_type"),
            super::normalise("x-kubernetes-list-type")
        );
        assert_eq!(super::normalise("r#ref"), super::normalise("$ref"));
        assert_eq!(super::lower_camel("host_ip"), "hostIp");
    }
}
