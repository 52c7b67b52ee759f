//! The shape of the generated schema table (`schema.rs`) and lookups in it.

use super::schema::{KINDS, MESSAGES, PACKAGES};

/// One protobuf message: its fields and how it looks in JSON.
#[derive(Debug)]
pub(crate) struct Message {
    /// The full proto name, e.g. `k8s.io.api.core.v1.Pod`.
    pub name: &'static str,
    /// How the message appears in JSON.
    pub shape: Shape,
    /// The fields, sorted by tag.
    pub fields: &'static [Field],
}

/// How a message appears in JSON.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Shape {
    /// An object with one key per field.
    Struct,
    /// `{1: int64 seconds, 2: int32 nanos}`, an RFC 3339 string with seconds.
    Time,
    /// Like `Time`, with microseconds.
    MicroTime,
    /// `{1: string}`, the string.
    Quantity,
    /// `{1: int64 type, 2: int32 intVal, 3: string strVal}`, a number or a string.
    IntOrString,
    /// `{1: bytes raw}` holding JSON (or, for a RawExtension, a `k8s\0` body).
    RawJson,
    /// `{1: bool allows, 2: JSONSchemaProps schema}`: the schema, or the bool.
    SchemaOrBool,
    /// `{1: JSONSchemaProps schema, 2: repeated JSONSchemaProps}`: the array, or the schema.
    SchemaOrArray,
    /// `{1: JSONSchemaProps schema, 2: repeated string}`: the array, or the schema.
    SchemaOrStringArray,
}

/// One field of a message.
#[derive(Debug)]
pub(crate) struct Field {
    /// The field number.
    pub tag: u32,
    /// The JSON name.
    pub json: &'static str,
    /// What the field holds.
    pub ty: Type,
    /// `repeated` (a JSON array).
    pub repeated: bool,
}

/// What a field holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Type {
    String,
    /// Bytes, base64 in JSON (k8s-openapi's `ByteString`).
    Bytes,
    Bool,
    Int32,
    Int64,
    #[allow(
        dead_code,
        reason = "k8s-pb 0.9 has no uint32 field; the generator still emits it when one appears"
    )]
    Uint32,
    Uint64,
    Double,
    #[allow(
        dead_code,
        reason = "k8s-pb 0.9 has no float field; the generator still emits it when one appears"
    )]
    Float,
    /// A message, by index into the table.
    Message(u16),
    /// `map<string, string>`.
    MapString,
    /// `map<string, bytes>`.
    MapBytes,
    /// `map<string, Message>`.
    MapMessage(u16),
}

impl Message {
    /// The field with this tag, and its index in [`Message::fields`].
    pub fn field_by_tag(&self, tag: u32) -> Option<(usize, &'static Field)> {
        let fields = self.fields;
        fields
            .binary_search_by_key(&tag, |f| f.tag)
            .ok()
            .map(|i| (i, &fields[i]))
    }

    /// The field with this JSON name.
    pub fn field_by_json(&self, json: &str) -> Option<&'static Field> {
        self.fields.iter().find(|f| f.json == json)
    }
}

/// The message at an index the table itself holds.
pub(crate) fn message(index: u16) -> &'static Message {
    &MESSAGES[usize::from(index)]
}

/// The message with this full proto name.
pub(crate) fn message_by_name(name: &str) -> Option<&'static Message> {
    MESSAGES
        .binary_search_by(|m| m.name.cmp(name))
        .ok()
        .map(|i| &MESSAGES[i])
}

/// The message that carries `kind` of `apiVersion`: the table's own list of
/// kinds first, then `<package>.<kind>` in each package serving `apiVersion`.
pub(crate) fn message_for_kind(api_version: &str, kind: &str) -> Option<&'static Message> {
    if let Ok(i) = KINDS.binary_search_by(|(a, k, _)| (*a, *k).cmp(&(api_version, kind))) {
        return Some(message(KINDS[i].2));
    }
    PACKAGES
        .iter()
        .filter(|(a, _)| *a == api_version)
        .find_map(|(_, package)| {
            let mut name = String::with_capacity(package.len() + 1 + kind.len());
            name.push_str(package);
            name.push('.');
            name.push_str(kind);
            message_by_name(&name)
        })
}
