//! The generator of windlass-proto's direct protobuf encoders
//! (`proto-core/src/codec/protobuf/direct_gen.rs`): for each k8s-openapi
//! struct with a proto message, a `Direct` impl that writes its fields
//! straight from the struct, in the order its `Serialize` impl writes them
//! and with the lengths the serde path gives, so that both paths agree
//! byte for byte.
//!
//! It reads each k8s-openapi version folder's `Serialize` impls as text
//! (`serialize_field(&mut state, "key", &self.field)`, or `value` inside
//! `if let Some(value) = &self.field`) and places each key in the schema
//! table: a field of the message, or of an inline message in it (written
//! last, as the serde path does). A type whose impl takes another shape or
//! names a key the message lacks gets no code (the serde path encodes it);
//! so do types on a cycle (the `JSONSchemaProps` family), whose depth only
//! the serde path limits. Code that differs between Kubernetes versions is
//! wrapped in k8s-openapi's `k8s_if_*` macros.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::protobuf_schema::{ProtoField, collect_files, module_of};

/// Where the generated encoders live, relative to the repository root.
pub const OUTPUT: &str = "proto-core/src/codec/protobuf/direct_gen.rs";

/// The schema as the table generator settled it.
pub struct Schema<'a> {
    /// Every message by full proto name, fields sorted by tag.
    pub messages: &'a BTreeMap<String, Vec<ProtoField>>,
    /// Each message's index in the table.
    pub index: &'a BTreeMap<&'a str, usize>,
    /// Each message's shape (`Struct`, `Time`, …).
    pub shapes: &'a BTreeMap<String, &'static str>,
}

/// One key a type's `Serialize` impl writes.
struct Key {
    json: String,
    field: String,
    optional: bool,
}

/// One k8s-openapi struct in one version.
struct Parsed {
    path: String,
    message: String,
    keys: Vec<Key>,
}

/// Where a key goes: the inline fields leading to its message, and the
/// index of the field in that message.
struct Place {
    inline: Vec<usize>,
    field: usize,
}

/// Read one version folder's structs.
fn parse_version(
    dir: &Path,
    canon: &dyn Fn(&str) -> String,
    out: &mut Vec<Parsed>,
) -> Result<(), String> {
    let mut files = Vec::new();
    collect_files(dir, &mut files)?;
    files.sort();
    for file in files {
        let text =
            std::fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
        let Some(definition) = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("// Generated from definition io.k8s."))
        else {
            continue;
        };
        let module = module_of(&file, dir);
        let message = canon(&format!("k8s.io.{}", definition.trim().replace('-', "_")));
        if let Some((name, keys)) = parse_serialize(&text) {
            out.push(Parsed {
                path: format!("k8s_openapi::{module}::{name}"),
                message,
                keys,
            });
        }
    }
    Ok(())
}

/// The keys of a struct's `Serialize` impl in order, `None` when it takes
/// any other shape than the plain one.
fn parse_serialize(text: &str) -> Option<(String, Vec<Key>)> {
    let mut lines = text.lines();
    let name = lines.by_ref().find_map(|l| {
        l.strip_prefix("impl crate::serde::Serialize for ")
            .and_then(|r| r.strip_suffix(" {"))
    })?;
    let mut keys = Vec::new();
    let mut pending: Option<&str> = None;
    let mut saw_struct = false;
    for line in lines {
        if line == "}" {
            break;
        }
        let line = line.trim();
        if line.contains("serialize_struct(") {
            saw_struct = true;
        }
        if let Some(field) = line
            .strip_prefix("if let Some(value) = &self.")
            .and_then(|r| r.strip_suffix(" {"))
        {
            pending = Some(field);
            continue;
        }
        let Some(rest) =
            line.strip_prefix("crate::serde::ser::SerializeStruct::serialize_field(&mut state, \"")
        else {
            continue;
        };
        let (json, value) = rest.split_once("\", ")?;
        let value = value.strip_suffix(")?;")?;
        if value.starts_with("<Self as crate::Resource>::") {
            continue;
        }
        let (field, optional) = match value {
            "value" => (pending.take()?, true),
            _ => (value.strip_prefix("&self.")?, false),
        };
        keys.push(Key {
            json: json.to_owned(),
            field: field.to_owned(),
            optional,
        });
    }
    saw_struct.then(|| (name.to_owned(), keys))
}

impl Schema<'_> {
    fn shape(&self, message: &str) -> &str {
        self.shapes.get(message).copied().unwrap_or("Struct")
    }

    /// Where `json` goes in `message`: its own field first, then one
    /// reached through its inline fields (tag order), as the table's
    /// index looks names up.
    fn place(&self, message: &str, json: &str, depth: usize) -> Option<Place> {
        let fields = self.messages.get(message)?;
        if let Some(i) = fields.iter().position(|f| f.json == json) {
            return Some(Place {
                inline: Vec::new(),
                field: i,
            });
        }
        if depth > 4 {
            return None;
        }
        fields.iter().enumerate().find_map(|(i, f)| {
            if !f.json.is_empty() {
                return None;
            }
            let inner = f.message.as_deref()?;
            let mut place = self.place(inner, json, depth + 1)?;
            place.inline.insert(0, i);
            Some(place)
        })
    }

    /// The message a field of `message` is written in after `inline`.
    fn holder<'m>(&'m self, message: &'m str, inline: &[usize]) -> &'m str {
        inline.iter().fold(message, |m, &i| {
            self.messages[m][i]
                .message
                .as_deref()
                .expect("an inline field is a message")
        })
    }

    /// Whether the generated code writes field `f` itself (`Put`), given
    /// the messages with code; else the serde path does.
    fn direct(&self, f: &ProtoField, with_code: &BTreeSet<String>) -> bool {
        let target = f.message.as_deref().unwrap_or("");
        match f.kind.as_str() {
            "string" | "bool" | "int32" | "int64" | "double" => true,
            "message" => match self.shape(target) {
                "Time" | "MicroTime" | "Quantity" | "IntOrString" => true,
                "Struct" => with_code.contains(target),
                _ => false,
            },
            "map:string" => true,
            "map:message" => match self.shape(target) {
                "Quantity" => true,
                "Struct" => with_code.contains(target),
                _ => false,
            },
            _ => false,
        }
    }
}

/// The generated source.
pub fn render(
    schema: &Schema<'_>,
    versions: &[PathBuf],
    canon: &dyn Fn(&str) -> String,
) -> Result<String, String> {
    // Type path -> version -> body.
    let mut bodies: BTreeMap<String, BTreeMap<u32, String>> = BTreeMap::new();
    // Type path -> why it has no code (in some version).
    let mut skipped: BTreeMap<String, BTreeSet<&str>> = BTreeMap::new();
    let mut numbers = Vec::new();
    for dir in versions {
        let number: u32 = dir
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_prefix("v1_"))
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| format!("{}: not a version folder", dir.display()))?;
        numbers.push(number);
        let mut parsed = Vec::new();
        parse_version(dir, canon, &mut parsed)?;
        // The types whose every key has a place in a struct-shaped message.
        let mut placed: BTreeMap<String, (&Parsed, Vec<Place>)> = BTreeMap::new();
        for p in &parsed {
            if !schema.messages.contains_key(&p.message) || schema.shape(&p.message) != "Struct" {
                continue;
            }
            let places: Option<Vec<Place>> = p
                .keys
                .iter()
                .map(|k| schema.place(&p.message, &k.json, 0))
                .collect();
            if let Some(places) = places {
                placed.insert(p.message.clone(), (p, places));
            }
        }
        for p in &parsed {
            if schema.messages.contains_key(&p.message)
                && schema.shape(&p.message) == "Struct"
                && !placed.contains_key(&p.message)
            {
                skipped
                    .entry(p.path.clone())
                    .or_default()
                    .insert("a key the message lacks");
            }
        }
        // Drop the messages on a cycle of directly written fields.
        let mut with_code: BTreeSet<String> = placed.keys().cloned().collect();
        let edges: BTreeMap<&str, Vec<&str>> = placed
            .iter()
            .map(|(m, (_, places))| {
                let targets = places
                    .iter()
                    .filter_map(|place| {
                        let f = &schema.messages[schema.holder(m, &place.inline)][place.field];
                        let t = f.message.as_deref()?;
                        (schema.direct(f, &with_code) && placed.contains_key(t)).then_some(t)
                    })
                    .collect();
                (m.as_str(), targets)
            })
            .collect();
        let cyclic: Vec<String> = edges
            .keys()
            .filter(|m| reaches(&edges, m, m))
            .map(|m| m.to_string())
            .collect();
        for m in &cyclic {
            with_code.remove(m);
            skipped
                .entry(placed[m].0.path.clone())
                .or_default()
                .insert("on a cycle");
        }
        for (message, (p, places)) in &placed {
            if !with_code.contains(message) {
                continue;
            }
            let body = render_body(schema, message, p, places, &with_code)?;
            bodies
                .entry(p.path.clone())
                .or_default()
                .insert(number, body);
        }
    }
    numbers.sort();

    let mut out = String::new();
    out.push_str(
        "// @generated by `cargo run -p windlass-testkit --bin gen-protobuf-schema`\n\
         // from k8s-openapi-0.29.0's `Serialize` impls (every version folder) and the\n\
         // schema table. Do not edit. The test `protobuf_schema_generated_file_is_current`\n\
         // checks it is current.\n\n\
         use super::direct::{Direct, Put, Registry, serde};\n\
         use super::ser::SerError;\n\
         use super::wire::{close_len, open_len};\n",
    );
    let mut register = String::new();
    for (path, by_version) in &bodies {
        // Versions with the same code share one impl.
        let mut groups: BTreeMap<&str, Vec<u32>> = BTreeMap::new();
        for (v, body) in by_version {
            groups.entry(body.as_str()).or_default().push(*v);
        }
        let mut groups: Vec<(Vec<u32>, &str)> = groups.into_iter().map(|(b, v)| (v, b)).collect();
        groups.sort();
        for (versions, body) in groups {
            let item = format!("impl Direct for {path} {{\n{body}}}\n");
            out.push('\n');
            out.push_str(&gate(&versions, &numbers, &item, ""));
            register.push_str(&gate(
                &versions,
                &numbers,
                &format!("r.add::<{path}>();\n"),
                "    ",
            ));
        }
    }
    out.push_str(
        "\n// Structs with a message but no code here (the serde path encodes them),\n\
         // in at least one version:\n",
    );
    for (path, why) in &skipped {
        let why: Vec<&str> = why.iter().copied().collect();
        writeln!(out, "// - {path}: {}", why.join(", ")).unwrap();
    }
    out.push_str("\n/// Every type above, for [`super::direct::encoder`].\n");
    out.push_str("pub(super) fn register(r: &mut Registry<'_>) {\n");
    out.push_str(&register);
    out.push_str("}\n");
    Ok(out)
}

/// Whether `to` is reachable from `from` in one step or more.
fn reaches(edges: &BTreeMap<&str, Vec<&str>>, from: &str, to: &str) -> bool {
    let mut seen = BTreeSet::new();
    let mut stack: Vec<&str> = edges.get(from).cloned().unwrap_or_default();
    while let Some(m) = stack.pop() {
        if m == to {
            return true;
        }
        if seen.insert(m) {
            stack.extend(edges.get(m).into_iter().flatten());
        }
    }
    false
}

/// `item` for the versions `versions` of all `numbers`: bare when all,
/// else inside k8s-openapi's `k8s_if_*` macros.
fn gate(versions: &[u32], numbers: &[u32], item: &str, indent: &str) -> String {
    let indented = |text: &str, by: &str| -> String {
        text.lines()
            .map(|l| {
                if l.is_empty() {
                    "\n".to_owned()
                } else {
                    format!("{by}{l}\n")
                }
            })
            .collect()
    };
    if versions == numbers {
        return indented(item, indent);
    }
    let (first, last) = (numbers[0], numbers[numbers.len() - 1]);
    let contiguous = versions.windows(2).all(|w| w[1] == w[0] + 1);
    let macros: Vec<String> = if contiguous && versions.last() == Some(&last) {
        vec![format!("k8s_if_ge_1_{}", versions[0])]
    } else if contiguous && versions.first() == Some(&first) {
        vec![format!("k8s_if_le_1_{}", versions[versions.len() - 1])]
    } else {
        versions.iter().map(|v| format!("k8s_if_1_{v}")).collect()
    };
    macros
        .iter()
        .map(|m| {
            format!(
                "{indent}k8s_openapi::{m}! {{\n{}{indent}}}\n",
                indented(item, &format!("{indent}    "))
            )
        })
        .collect()
}

/// The `Direct` impl's body for one type in one version.
fn render_body(
    schema: &Schema<'_>,
    message: &str,
    parsed: &Parsed,
    places: &[Place],
    with_code: &BTreeSet<String>,
) -> Result<String, String> {
    let mut body = String::new();
    writeln!(body, "    const MESSAGE: u16 = {};", schema.index[message]).unwrap();
    writeln!(body).unwrap();
    writeln!(
        body,
        "    fn write(&self, out: &mut Vec<u8>, depth: usize) -> Result<(), SerError> {{"
    )
    .unwrap();
    write_fields(
        schema,
        message,
        &[],
        parsed,
        places,
        with_code,
        2,
        &mut body,
    )?;
    if parsed.keys.is_empty() && schema.messages[message].iter().all(|f| !f.json.is_empty()) {
        writeln!(body, "        let _ = (out, depth);").unwrap();
    }
    writeln!(body, "        Ok(())").unwrap();
    writeln!(body, "    }}").unwrap();
    Ok(body)
}

/// The keys placed in the message at `inline` (below `message`), in
/// `Serialize` order, then that message's inline fields, each opened,
/// written and closed.
#[allow(clippy::too_many_arguments)]
fn write_fields(
    schema: &Schema<'_>,
    message: &str,
    inline: &[usize],
    parsed: &Parsed,
    places: &[Place],
    with_code: &BTreeSet<String>,
    level: usize,
    body: &mut String,
) -> Result<(), String> {
    let pad = "    ".repeat(level);
    let holder = schema.holder(message, inline);
    let holder_index = schema.index[holder];
    let depth = match inline.len() {
        0 => "depth".to_owned(),
        n => format!("depth + {n}"),
    };
    for (key, place) in parsed.keys.iter().zip(places) {
        if place.inline != inline {
            continue;
        }
        let f = &schema.messages[holder][place.field];
        let value = if key.optional {
            "v".to_owned()
        } else {
            format!("&self.{}", key.field)
        };
        let call = if schema.direct(f, with_code) {
            format!("Put::put({value}, out, {}, {depth})?;", f.tag)
        } else {
            format!(
                "serde(out, {value}, {holder_index}, {}, {depth})?;",
                place.field
            )
        };
        if key.optional {
            writeln!(body, "{pad}if let Some(v) = &self.{} {{", key.field).unwrap();
            writeln!(body, "{pad}    {call}").unwrap();
            writeln!(body, "{pad}}}").unwrap();
        } else {
            writeln!(body, "{pad}{call}").unwrap();
        }
    }
    for (i, f) in schema.messages[holder].iter().enumerate() {
        if !f.json.is_empty() {
            continue;
        }
        if f.kind != "message" || f.repeated {
            return Err(format!("{holder}: inline field {} is not a message", f.tag));
        }
        let mut path = inline.to_vec();
        path.push(i);
        let var = format!("inline{}", path.len());
        writeln!(body, "{pad}let {var} = open_len(out, {});", f.tag).unwrap();
        write_fields(
            schema, message, &path, parsed, places, with_code, level, body,
        )?;
        writeln!(body, "{pad}close_len(out, {var});").unwrap();
    }
    Ok(())
}
