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
//! address alone: one load of one word and a compare, no hash of its text,
//! no comparison of bytes.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};

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
    /// The keys [`Index::by_static_json`] found by text, by [`address_hash`]
    /// of the key's address: each word a [`KeyEntry`] (0 when empty), two
    /// ways a hash (the slot and its neighbour, in one cache line). Shared
    /// by every thread; a word may be overwritten by another key at any time.
    key_cache: Box<[AtomicU64]>,
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
    /// this key was looked up before — one load of one word and a compare.
    ///
    /// Sound under any interleaving of threads: a word of `key_cache` is
    /// written whole (one atomic store), and only after the text of the key
    /// it names (address and length) was looked up by text, with the answer
    /// that lookup gave (the names never change). Static bytes never change
    /// either, so any later key with that same address and length has that
    /// same text and that same answer. A word read is always one some
    /// thread wrote whole (atomic loads do not tear), so a stale or
    /// overwritten word can only name another key, which the compare of
    /// address and length rejects: a race costs a miss (the slow path, by
    /// text), never a wrong field.
    #[inline]
    pub fn by_static_json(&self, json: &'static str) -> Option<(usize, bool)> {
        let key = KeyEntry::key(json);
        let hash = address_hash(json.as_ptr() as usize);
        let word = self.key_cache[hash & (self.key_cache.len() - 1)].load(Relaxed);
        if word & KeyEntry::KEY_MASK == key {
            return KeyEntry::found(word);
        }
        self.by_static_json_slow(json, key, hash)
    }

    /// [`Index::by_static_json`] after its first way: the second (another
    /// part of the hash), then by text, remembering the answer (found or
    /// not, such as `apiVersion`) when the key can be.
    #[inline(never)]
    fn by_static_json_slow(
        &self,
        json: &'static str,
        key: u64,
        hash: usize,
    ) -> Option<(usize, bool)> {
        let mask = self.key_cache.len() - 1;
        let (first, second) = (hash & mask, (hash >> 12) & mask);
        let other = self.key_cache[second].load(Relaxed);
        if other & KeyEntry::KEY_MASK == key {
            return KeyEntry::found(other);
        }
        let found = self.entry_by_json(json).map(|entry| {
            let (_, field, direct) = self.names[entry];
            (usize::from(field), direct)
        });
        if key != KeyEntry::UNCACHED {
            // Into the first way unless it holds another key and the
            // second is free.
            let way = if self.key_cache[first].load(Relaxed) != 0 && other == 0 {
                second
            } else {
                first
            };
            self.key_cache[way].store(key | KeyEntry::value(found), Relaxed);
        }
        found
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

/// The packing of one word of [`Index::key_cache`]: bits 0–46 the key's
/// address, 47–54 its length, 55–60 the field's index, 61 whether the
/// field holds the name itself, 62 whether the message has the name at all.
/// A key that does not fit (an address of 2^47 or more, a length of 256 or
/// more) is not remembered: its key part is [`KeyEntry::UNCACHED`], which
/// no stored word holds. An empty word (0) matches no key, whose address is
/// never 0.
struct KeyEntry;

impl KeyEntry {
    const ADDRESS_BITS: u32 = 47;
    const KEY_MASK: u64 = (1 << (Self::ADDRESS_BITS + 8)) - 1;
    /// The key part of a key that is not remembered (never stored).
    const UNCACHED: u64 = Self::KEY_MASK;
    const DIRECT: u64 = 1 << 61;
    const FOUND: u64 = 1 << 62;

    /// The key part of the word for `json`, [`KeyEntry::UNCACHED`] when it
    /// cannot be remembered.
    #[inline(always)]
    fn key(json: &'static str) -> u64 {
        let (address, len) = (json.as_ptr() as u64, json.len() as u64);
        if address >> Self::ADDRESS_BITS != 0 || len > 0xff {
            return Self::UNCACHED;
        }
        address | (len << Self::ADDRESS_BITS)
    }

    /// The value part of a word: the field index (under 64, which
    /// `build_index` asserts) and whether it is direct, or none.
    #[inline]
    fn value(found: Option<(usize, bool)>) -> u64 {
        match found {
            Some((field, direct)) => {
                Self::FOUND | ((field as u64 & 0x3f) << 55) | if direct { Self::DIRECT } else { 0 }
            }
            None => 0,
        }
    }

    /// The answer a word holds.
    #[inline(always)]
    fn found(word: u64) -> Option<(usize, bool)> {
        (word & Self::FOUND != 0)
            .then_some((((word >> 55) & 0x3f) as usize, word & Self::DIRECT != 0))
    }
}

/// A hash of a static key's address, for [`Index::key_cache`].
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
    // Two words a name, two ways a key: collisions of one message's keys
    // are rare (and one name may come from several keys, one literal of
    // each copy of a `Serialize` impl). Four words a name find a few more
    // keys at the first try but take twice the memory (~196 KB in all) and
    // cache lines: on a Pod encode the two come out even (callgrind, pod-2k:
    // 0.4 M fewer instructions of 42.8 M, 19 k more D1 misses).
    let key_cache = (names.len() * 2).next_power_of_two().max(8);
    Index {
        by_tag: by_tag.into(),
        name_slots: name_slots.into(),
        key_cache: (0..key_cache).map(|_| AtomicU64::new(0)).collect(),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn object_meta() -> &'static Message {
        message_by_name("k8s.io.apimachinery.pkg.apis.meta.v1.ObjectMeta").expect("ObjectMeta")
    }

    /// A `&'static str` with `text` at an address of its own.
    fn leaked(text: &str) -> &'static str {
        Box::leak(text.to_owned().into_boxed_str())
    }

    #[test]
    fn protobuf_key_cache_finds_keys_by_address_and_length() {
        let index = object_meta().index();
        let name = index.by_json("name").expect("name");
        let namespace = index.by_json("namespace").expect("namespace");
        assert_ne!(name, namespace);
        // Twice each: the first by text, the second by address.
        for _ in 0..2 {
            assert_eq!(index.by_static_json("name"), Some(name));
            assert_eq!(index.by_static_json("namespace"), Some(namespace));
        }
        // The same address as a remembered key but another length is
        // another key: "name" is the start of "namespace".
        let long: &'static str = leaked("namespace");
        for _ in 0..3 {
            assert_eq!(index.by_static_json(long), Some(namespace));
            assert_eq!(index.by_static_json(&long[..4]), Some(name));
            assert_eq!(index.by_static_json(&long[..5]), None);
        }
        // Unknown keys stay unknown, found or not by address.
        let unknown = leaked("nonsense");
        assert_eq!(index.by_static_json(unknown), None);
        assert_eq!(index.by_static_json(unknown), None);
    }

    #[test]
    fn protobuf_key_cache_skips_keys_longer_than_255_bytes() {
        let index = object_meta().index();
        let long = leaked(&"n".repeat(300));
        assert_eq!(KeyEntry::key(long), KeyEntry::UNCACHED);
        assert_eq!(index.by_static_json(long), None);
        assert_eq!(index.by_static_json(long), None);
        // A key of 255 bytes is remembered (and still not a field).
        let edge = leaked(&"n".repeat(255));
        assert_ne!(KeyEntry::key(edge), KeyEntry::UNCACHED);
        assert_eq!(index.by_static_json(edge), None);
        // Known keys are unaffected.
        assert_eq!(index.by_static_json("name"), index.by_json("name"));
    }

    #[test]
    fn protobuf_key_cache_packs_every_field_index() {
        for field in [0, 1, 31, 62, 63] {
            for direct in [false, true] {
                let found = Some((field, direct));
                let word = KeyEntry::key("labels") | KeyEntry::value(found);
                assert_eq!(word & KeyEntry::KEY_MASK, KeyEntry::key("labels"));
                assert_eq!(KeyEntry::found(word), found);
            }
        }
        let word = KeyEntry::key("kind") | KeyEntry::value(None);
        assert_eq!(word & KeyEntry::KEY_MASK, KeyEntry::key("kind"));
        assert_eq!(KeyEntry::found(word), None);
    }

    #[test]
    fn protobuf_key_cache_is_right_under_threads_that_evict_each_other() {
        // A small message (few words of cache) and many keys of its names at
        // addresses of their own, looked up from several threads at once:
        // words are overwritten all the time, and every answer must still
        // be the one found by text.
        let message = message_by_name("k8s.io.api.core.v1.ObjectReference").expect("message");
        let index = message.index();
        let names: Vec<&'static str> = message.fields.iter().map(|f| f.json).collect();
        let keys: Vec<&'static str> = (0..16)
            .flat_map(|_| names.iter().map(|n| leaked(n)))
            .chain(["bogus", "nam", "names"].map(leaked))
            .collect();
        let expected: Vec<_> = keys.iter().map(|k| index.by_json(k)).collect();
        std::thread::scope(|scope| {
            for t in 0..4 {
                let (keys, expected) = (&keys, &expected);
                scope.spawn(move || {
                    for round in 0..2_000 {
                        let k = (round * (2 * t + 1) + t) % keys.len();
                        assert_eq!(index.by_static_json(keys[k]), expected[k], "{:?}", keys[k]);
                    }
                });
            }
        });
    }
}
