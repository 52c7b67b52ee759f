//! The shape of the generated schema table (`schema.rs`) and lookups in it.
//!
//! The lookups the codec makes for every field — a field by its number when
//! decoding, by its JSON name when encoding — go through an [`Index`] per
//! message, built once from the generated table the first time protobuf is
//! used: a direct table by field number, a small hash table by JSON name
//! (names of inline messages included), and bit sets of the repeated, map
//! and inline fields.

use std::sync::OnceLock;

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
    /// `{1: repeated string items}` (a Go named slice such as `ExtraValue`): an array.
    StringList,
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
    #[inline]
    pub fn field_by_tag(&'static self, tag: u32) -> Option<(usize, &'static Field)> {
        let i = self.index().field(tag)?;
        Some((i, &self.fields[i]))
    }

    /// The field with this JSON name.
    pub fn field_by_json(&'static self, json: &str) -> Option<&'static Field> {
        match self.index().by_json(json)? {
            (i, true) => Some(&self.fields[i]),
            (_, false) => None,
        }
    }

    /// This message's lookup tables.
    #[inline]
    pub fn index(&'static self) -> &'static Index {
        let at = (self as *const Message as usize - MESSAGES.as_ptr() as usize)
            / std::mem::size_of::<Message>();
        &indexes()[at]
    }
}

/// The lookups of one message (see the module doc).
#[derive(Debug)]
pub(crate) struct Index {
    /// By field number, from 0 to the largest: the field's index + 1, 0 when none.
    by_tag: Box<[u8]>,
    /// Open addressing by [`name_hash`]: an index into `names` + 1, 0 when empty.
    name_slots: Box<[u8]>,
    /// JSON names: each with the index of the field that holds it, and
    /// whether that is the field itself (`false`: an inline message field
    /// whose message, or an inline message in it, has the name).
    names: Box<[(&'static str, u8, bool)]>,
    /// Bit `i` set: field `i` is repeated or a map (gathered when decoding).
    pub gathered: u64,
    /// The indexes of the inline fields (empty JSON name), in tag order.
    pub inline: Box<[u8]>,
}

impl Index {
    /// The index of the field with number `tag`.
    #[inline]
    pub fn field(&self, tag: u32) -> Option<usize> {
        let slot = *self.by_tag.get(usize::try_from(tag).ok()?)?;
        Some(usize::from(slot.checked_sub(1)?))
    }

    /// The field that holds JSON name `json`: its index, and whether it is
    /// the field itself rather than an inline message holding it.
    #[inline]
    pub fn by_json(&self, json: &str) -> Option<(usize, bool)> {
        let mask = self.name_slots.len() - 1;
        let mut slot = name_hash(json) & mask;
        loop {
            let entry = usize::from(self.name_slots[slot].checked_sub(1)?);
            let (name, field, direct) = self.names[entry];
            if name == json {
                return Some((usize::from(field), direct));
            }
            slot = (slot + 1) & mask;
        }
    }

    /// Whether field `i` is repeated or a map.
    #[inline]
    pub fn is_gathered(&self, i: usize) -> bool {
        self.gathered
            .checked_shr(i as u32)
            .is_some_and(|bits| bits & 1 != 0)
    }
}

/// A cheap hash of a JSON field name: its length and three of its bytes.
#[inline]
fn name_hash(name: &str) -> usize {
    let b = name.as_bytes();
    let (first, mid, last) = match b {
        [] => (0, 0, 0),
        _ => (b[0], b[b.len() / 2], b[b.len() - 1]),
    };
    let h = (b.len() as u64)
        | (u64::from(first) << 8)
        | (u64::from(mid) << 16)
        | (u64::from(last) << 24);
    (h.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 40) as usize
}

/// Every message's [`Index`], in table order, built on first use.
fn indexes() -> &'static [Index] {
    static INDEXES: OnceLock<Box<[Index]>> = OnceLock::new();
    INDEXES.get_or_init(|| MESSAGES.iter().map(build_index).collect())
}

fn build_index(message: &'static Message) -> Index {
    let fields = message.fields;
    assert!(
        fields.len() < 64,
        "{} has {} fields; the codec's bit sets hold 63",
        message.name,
        fields.len()
    );
    let max_tag = fields.iter().map(|f| f.tag).max().unwrap_or(0);
    let mut by_tag = vec![0u8; max_tag as usize + 1];
    let mut gathered = 0u64;
    let mut inline = Vec::new();
    for (i, field) in fields.iter().enumerate() {
        by_tag[field.tag as usize] = i as u8 + 1;
        if field.repeated
            || matches!(
                field.ty,
                Type::MapString | Type::MapBytes | Type::MapMessage(_)
            )
        {
            gathered |= 1 << i;
        }
        if field.json.is_empty() {
            inline.push(i as u8);
        }
    }
    // Names: the fields' own first, then those reached through inline
    // messages, in tag order; the first holder of a name wins.
    let mut names: Vec<(&'static str, u8, bool)> = Vec::new();
    for (i, field) in fields.iter().enumerate() {
        if !field.json.is_empty() && !names.iter().any(|n| n.0 == field.json) {
            names.push((field.json, i as u8, true));
        }
    }
    for &i in &inline {
        let mut reached = Vec::new();
        if let Type::Message(m) = fields[usize::from(i)].ty {
            inline_names(message_at(m), &mut reached, 0);
        }
        for name in reached {
            if !names.iter().any(|n| n.0 == name) {
                names.push((name, i, false));
            }
        }
    }
    let slots = (names.len() * 2).next_power_of_two().max(4);
    let mut name_slots = vec![0u8; slots];
    for (entry, (name, _, _)) in names.iter().enumerate() {
        let mut slot = name_hash(name) & (slots - 1);
        while name_slots[slot] != 0 {
            slot = (slot + 1) & (slots - 1);
        }
        name_slots[slot] = u8::try_from(entry + 1).expect("under 255 names");
    }
    Index {
        by_tag: by_tag.into(),
        name_slots: name_slots.into(),
        names: names.into(),
        gathered,
        inline: inline.into(),
    }
}

/// The JSON names of `message`'s fields and of its inline messages' fields.
fn inline_names(message: &'static Message, out: &mut Vec<&'static str>, depth: usize) {
    if depth > 8 {
        return;
    }
    for field in message.fields {
        match (field.json.is_empty(), field.ty) {
            (false, _) => out.push(field.json),
            (true, Type::Message(m)) => inline_names(message_at(m), out, depth + 1),
            (true, _) => {}
        }
    }
}

/// [`message`] before the indexes exist (the builder's own use).
fn message_at(index: u16) -> &'static Message {
    &MESSAGES[usize::from(index)]
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
