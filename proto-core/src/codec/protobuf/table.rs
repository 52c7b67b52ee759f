//! The shape of the generated schema table (`schema.rs`) and lookups in it.
//!
//! The lookups the codec makes for every field — a field by its number when
//! decoding, by its JSON name when encoding — go through an [`Index`] per
//! message, built once from the generated table the first time protobuf is
//! used: a direct table by field number, a small hash table by JSON name
//! (names of inline messages included), and bit sets of the repeated, map
//! and inline fields.
//!
//! Encoding looks fields up by the `&'static str` keys a type's `Serialize`
//! impl passes (`SerializeStruct::serialize_field`), the same few literals
//! over and over. [`Index::by_static_json`] remembers each literal's address
//! once its text has matched a name, so a repeated key is found by its
//! address alone: no hash of its text, no comparison of bytes.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering::Relaxed};

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
    /// By [`address_hash`] of a `&'static str` key, two slots a key (two
    /// choices, no chains): an index into `names` + 1, 0 when empty. Shared
    /// by every thread; a slot may be overwritten by another key at any time.
    address_slots: Box<[AtomicU8]>,
    /// For each of `names`: the address of a `&'static str` whose text is
    /// that name, 0 when none has been seen. Written only after the text
    /// matched, so an address read here is always one of such a key.
    seen: Box<[AtomicUsize]>,
    /// The last message of this kind written as a field took 128 bytes or
    /// more (a two-byte length): the encoder's guess for the next one.
    long: AtomicBool,
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
        let (_, field, direct) = self.names[self.entry_by_json(json)?];
        Some((usize::from(field), direct))
    }

    /// The index into `names` of name `json`.
    #[inline]
    fn entry_by_json(&self, json: &str) -> Option<usize> {
        let mask = self.name_slots.len() - 1;
        let mut slot = name_hash(json) & mask;
        loop {
            let entry = usize::from(self.name_slots[slot].checked_sub(1)?);
            if self.names[entry].0 == json {
                return Some(entry);
            }
            slot = (slot + 1) & mask;
        }
    }

    /// [`Index::by_json`] for a key that lives for the whole program, such
    /// as a field name `Serialize` impls pass: found by its address when
    /// this key was looked up before.
    ///
    /// Sound under any interleaving of threads: `seen[e]` only ever holds
    /// the address of a static key whose bytes equal name `e`, and static
    /// bytes never change, so a key at that address with that length has
    /// those bytes. A race can only cost a miss (the slow path, by text).
    #[inline]
    pub fn by_static_json(&self, json: &'static str) -> Option<(usize, bool)> {
        let address = json.as_ptr() as usize;
        let hash = address_hash(address);
        let slot = hash & (self.address_slots.len() - 1);
        if let Some(found) = self.at_slot(slot, json) {
            return Some(found);
        }
        self.by_static_json_slow(json, hash)
    }

    /// The name in address slot `slot`, if `json` is the key remembered for it.
    #[inline(always)]
    fn at_slot(&self, slot: usize, json: &'static str) -> Option<(usize, bool)> {
        let entry = usize::from(self.address_slots[slot].load(Relaxed)).checked_sub(1)?;
        let (name, field, direct) = self.names[entry];
        (self.seen[entry].load(Relaxed) == json.as_ptr() as usize && name.len() == json.len())
            .then_some((usize::from(field), direct))
    }

    /// [`Index::by_static_json`] after its first slot: the second, then by text.
    #[inline(never)]
    fn by_static_json_slow(&self, json: &'static str, hash: usize) -> Option<(usize, bool)> {
        let second = (hash >> 12) & (self.address_slots.len() - 1);
        self.at_slot(second, json)
            .or_else(|| self.remember(json, hash))
    }

    /// The slow path of [`Index::by_static_json`]: by text, then remember
    /// the key's address in the first of its two slots that is free (or
    /// the first).
    #[inline(never)]
    fn remember(&self, json: &'static str, hash: usize) -> Option<(usize, bool)> {
        let entry = self.entry_by_json(json)?;
        self.seen[entry].store(json.as_ptr() as usize, Relaxed);
        let mask = self.address_slots.len() - 1;
        let (first, second) = (hash & mask, (hash >> 12) & mask);
        let slot = if self.address_slots[first].load(Relaxed) != 0
            && self.address_slots[second].load(Relaxed) == 0
        {
            second
        } else {
            first
        };
        self.address_slots[slot].store(entry as u8 + 1, Relaxed);
        let (_, field, direct) = self.names[entry];
        Some((usize::from(field), direct))
    }

    /// Whether the last such message written took 128 bytes or more.
    #[inline]
    pub fn is_long(&self) -> bool {
        self.long.load(Relaxed)
    }

    /// Remember whether the message just written took 128 bytes or more
    /// (written only when that changes, so a stream of alike messages
    /// leaves the cache line shared).
    #[inline]
    pub fn set_long(&self, long: bool) {
        if self.long.load(Relaxed) != long {
            self.long.store(long, Relaxed);
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

/// A hash of a static key's address, for [`Index::address_slots`].
#[inline]
fn address_hash(address: usize) -> usize {
    ((address as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 40) as usize
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
    // Four slots a name keeps address collisions of one message's keys rare.
    let address_slots = (names.len() * 4).next_power_of_two().max(4);
    Index {
        by_tag: by_tag.into(),
        name_slots: name_slots.into(),
        address_slots: (0..address_slots).map(|_| AtomicU8::new(0)).collect(),
        seen: names.iter().map(|_| AtomicUsize::new(0)).collect(),
        long: AtomicBool::new(false),
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
/// A stream of one kind asks again and again: the last kind found (its
/// index in `KINDS` + 1) is checked first.
pub(crate) fn message_for_kind(api_version: &str, kind: &str) -> Option<&'static Message> {
    static LAST: AtomicUsize = AtomicUsize::new(0);
    if let Some(&(a, k, m)) = LAST.load(Relaxed).checked_sub(1).and_then(|i| KINDS.get(i))
        && k == kind
        && a == api_version
    {
        return Some(message(m));
    }
    if let Ok(i) = KINDS.binary_search_by(|(a, k, _)| (*a, *k).cmp(&(api_version, kind))) {
        LAST.store(i + 1, Relaxed);
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
