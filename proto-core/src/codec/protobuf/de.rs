//! Decoding: a `serde::Deserializer` that walks protobuf bytes with the
//! schema table and drives the target type's own `Deserialize` impl with
//! JSON field names. No intermediate JSON, no intermediate structs.
//!
//! A message is a JSON object (`visit_map`); its repeated fields and maps are
//! gathered from wherever they occur in the message (they need not be
//! contiguous) and handed over once, at their first occurrence. Unknown
//! fields are skipped. Nesting is limited to [`MAX_DEPTH`] messages.

use serde::de::value::BorrowedStrDeserializer;
use serde::de::{self, DeserializeSeed, Visitor};

use super::Error;

/// The decoder's error: boxed, so that every `Result` on the hot path stays
/// one word wide (as serde_json's does).
#[derive(Debug)]
pub(crate) struct DeError(pub Box<Error>);

impl From<Error> for DeError {
    fn from(e: Error) -> Self {
        DeError(Box::new(e))
    }
}

impl std::fmt::Display for DeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for DeError {}

use super::json_text::{base64_encode, format_time};
use super::table::{self, Field, Message, Shape, Type};
use super::wire::{Raw, Reader, WireError};

/// The deepest nesting of messages decoded; deeper input is an error.
pub const MAX_DEPTH: usize = 100;

fn wire_error(message: &'static Message, field: &'static str, e: WireError) -> DeError {
    Error::Malformed {
        message: message.name,
        field,
        what: e.to_string(),
    }
    .into()
}

fn malformed(message: &'static Message, field: &'static str, what: impl Into<String>) -> DeError {
    Error::Malformed {
        message: message.name,
        field,
        what: what.into(),
    }
    .into()
}

/// Give an error from a field's value the message and field it came from,
/// unless it already names a deeper one.
fn in_field(mut e: DeError, message: &'static Message, field: &'static str) -> DeError {
    if let Error::Custom(what) = &mut *e.0 {
        let what = std::mem::take(what);
        *e.0 = Error::Malformed {
            message: message.name,
            field,
            what,
        };
    }
    e
}

/// One message's bytes, read as the target type.
pub(crate) struct MessageDe<'de> {
    pub bytes: &'de [u8],
    pub message: &'static Message,
    pub depth: usize,
    /// `apiVersion` and `kind` to present first (from the envelope).
    pub type_meta: Option<(&'de str, &'de str)>,
}

impl<'de> MessageDe<'de> {
    pub fn new(bytes: &'de [u8], message: &'static Message, depth: usize) -> Self {
        Self {
            bytes,
            message,
            depth,
            type_meta: None,
        }
    }

    /// The singular fields with these tags (last occurrence wins).
    fn scalars<const N: usize>(&self, tags: [u32; N]) -> Result<[Option<Raw<'de>>; N], DeError> {
        let mut out = [None; N];
        let mut reader = Reader::new(self.bytes);
        while let Some((tag, raw)) = reader
            .field()
            .map_err(|e| wire_error(self.message, "", e))?
        {
            if let Some(i) = tags.iter().position(|t| *t == tag) {
                out[i] = Some(raw);
            }
        }
        Ok(out)
    }

    fn child(&self, tag: u32) -> Result<&'static Message, DeError> {
        match self.message.field_by_tag(tag).map(|(_, f)| f.ty) {
            Some(Type::Message(i)) => Ok(table::message(i)),
            _ => Err(malformed(
                self.message,
                "",
                format!("schema has no message field {tag}"),
            )),
        }
    }

    fn time<V: Visitor<'de>>(self, visitor: V, micro: bool) -> Result<V::Value, DeError> {
        let [seconds, nanos] = self.scalars([1, 2])?;
        let seconds = match seconds {
            None => 0,
            Some(Raw::Varint(v)) => v as i64,
            Some(_) => return Err(malformed(self.message, "seconds", "wrong wire type")),
        };
        let nanos = match nanos {
            None => 0,
            Some(Raw::Varint(v)) => v as i32,
            Some(_) => return Err(malformed(self.message, "nanos", "wrong wire type")),
        };
        let text = format_time(seconds, nanos, micro)
            .map_err(|e| malformed(self.message, "seconds", e))?;
        visitor.visit_str(text.as_str())
    }

    fn string_field(
        &self,
        raw: Option<Raw<'de>>,
        field: &'static str,
    ) -> Result<&'de str, DeError> {
        match raw {
            None => Ok(""),
            Some(Raw::Len(b)) => {
                std::str::from_utf8(b).map_err(|e| malformed(self.message, field, e.to_string()))
            }
            Some(_) => Err(malformed(self.message, field, "wrong wire type")),
        }
    }
}

impl<'de> de::Deserializer<'de> for MessageDe<'de> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        if self.depth > MAX_DEPTH {
            return Err(Error::TooDeep {
                message: self.message.name,
                limit: MAX_DEPTH,
            }
            .into());
        }
        match self.message.shape {
            Shape::Struct => visitor.visit_map(FieldsAccess::new(self)),
            Shape::Time => self.time(visitor, false),
            Shape::MicroTime => self.time(visitor, true),
            Shape::Quantity => {
                let [string] = self.scalars([1])?;
                visitor.visit_borrowed_str(self.string_field(string, "string")?)
            }
            Shape::IntOrString => {
                let [ty, int_val, str_val] = self.scalars([1, 2, 3])?;
                match ty {
                    None | Some(Raw::Varint(0)) => match int_val {
                        None => visitor.visit_i32(0),
                        Some(Raw::Varint(v)) => visitor.visit_i32(v as i32),
                        Some(_) => Err(malformed(self.message, "intVal", "wrong wire type")),
                    },
                    Some(Raw::Varint(1)) => {
                        visitor.visit_borrowed_str(self.string_field(str_val, "strVal")?)
                    }
                    Some(other) => Err(malformed(
                        self.message,
                        "type",
                        format!("unknown type {other:?}"),
                    )),
                }
            }
            Shape::RawJson => {
                let [raw] = self.scalars([1])?;
                let bytes = match raw {
                    None => return visitor.visit_unit(),
                    Some(Raw::Len(b)) => b,
                    Some(_) => return Err(malformed(self.message, "raw", "wrong wire type")),
                };
                if bytes.is_empty() {
                    return visitor.visit_unit();
                }
                if bytes.starts_with(super::MAGIC) {
                    let (envelope, message) = super::open_envelope(bytes).map_err(DeError::from)?;
                    let mut inner = MessageDe::new(envelope.raw, message, self.depth + 1);
                    inner.type_meta = Some((envelope.api_version, envelope.kind));
                    return de::Deserializer::deserialize_any(inner, visitor);
                }
                let mut json = serde_json::Deserializer::from_slice(bytes);
                let value = de::Deserializer::deserialize_any(&mut json, visitor)
                    .and_then(|v| json.end().map(|()| v))
                    .map_err(|e| malformed(self.message, "raw", format!("embedded JSON: {e}")))?;
                Ok(value)
            }
            Shape::SchemaOrBool => {
                let [allows, schema] = self.scalars([1, 2])?;
                match (schema, allows) {
                    (Some(Raw::Len(b)), _) => de::Deserializer::deserialize_any(
                        MessageDe::new(b, self.child(2)?, self.depth + 1),
                        visitor,
                    ),
                    (None, Some(Raw::Varint(v))) => visitor.visit_bool(v != 0),
                    (None, None) => visitor.visit_bool(false),
                    _ => Err(malformed(self.message, "schema", "wrong wire type")),
                }
            }
            Shape::StringList => {
                let (_, items) = self
                    .message
                    .field_by_tag(1)
                    .ok_or_else(|| malformed(self.message, "", "schema has no field 1"))?;
                visitor.visit_seq(SeqDe::new(self.bytes, self.message, items, self.depth))
            }
            Shape::SchemaOrArray | Shape::SchemaOrStringArray => {
                let (_, items) = self
                    .message
                    .field_by_tag(2)
                    .ok_or_else(|| malformed(self.message, "", "schema has no field 2"))?;
                let mut reader = Reader::new(self.bytes);
                let mut has_items = false;
                while let Some((tag, _)) = reader
                    .field()
                    .map_err(|e| wire_error(self.message, "", e))?
                {
                    has_items |= tag == 2;
                }
                if has_items {
                    return visitor.visit_seq(SeqDe::new(
                        self.bytes,
                        self.message,
                        items,
                        self.depth,
                    ));
                }
                match self.scalars([1])? {
                    [Some(Raw::Len(b))] => de::Deserializer::deserialize_any(
                        MessageDe::new(b, self.child(1)?, self.depth + 1),
                        visitor,
                    ),
                    [None] => visitor.visit_unit(),
                    _ => Err(malformed(self.message, "schema", "wrong wire type")),
                }
            }
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_newtype_struct(self)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct seq tuple
        tuple_struct map struct enum identifier ignored_any
    }
}

/// The fields of a `Struct` message as a JSON object's entries.
struct FieldsAccess<'de> {
    reader: Reader<'de>,
    /// The fields of an inline message (a Go struct embedded with
    /// `json:",inline"`, such as Volume's VolumeSource) being read in place.
    inline: Option<Box<FieldsAccess<'de>>>,
    message: &'static Message,
    depth: usize,
    type_meta: Option<(&'de str, &'de str)>,
    type_meta_done: u8,
    /// Repeated and map fields already handed over, by index in the message.
    seen: [u64; 4],
    /// Every repeated and map field sits in one contiguous run (as Go writes
    /// them), so gathering one stops at the end of its run.
    contiguous: bool,
    pending: Option<Pending<'de>>,
}

enum Pending<'de> {
    Str(&'de str),
    Field {
        message: &'static Message,
        field: &'static Field,
        raw: Raw<'de>,
        /// The message bytes from this field's key on, for gathering a repeated field.
        from: &'de [u8],
    },
}

impl<'de> FieldsAccess<'de> {
    fn new(de: MessageDe<'de>) -> Self {
        Self {
            reader: Reader::new(de.bytes),
            inline: None,
            message: de.message,
            depth: de.depth,
            type_meta: de.type_meta.filter(|(a, k)| !a.is_empty() || !k.is_empty()),
            type_meta_done: 0,
            seen: [0; 4],
            contiguous: runs_are_contiguous(de.bytes, de.message),
            pending: None,
        }
    }
}

impl<'de> FieldsAccess<'de> {
    /// Move to the next field to hand over (skipping unknown fields and
    /// later occurrences of gathered ones, stepping into inline messages);
    /// leave it in `pending` and return its JSON name.
    fn advance(&mut self) -> Result<Option<&'static str>, DeError> {
        if let Some(inline) = self.inline.as_mut() {
            if let Some(json) = inline.advance()? {
                self.pending = inline.pending.take();
                return Ok(Some(json));
            }
            self.inline = None;
        }
        loop {
            let from = self.reader;
            let Some((tag, raw)) = self
                .reader
                .field()
                .map_err(|e| wire_error(self.message, "", e))?
            else {
                return Ok(None);
            };
            let Some((index, field)) = self.message.field_by_tag(tag) else {
                continue;
            };
            if field.json.is_empty() {
                let (Type::Message(i), Raw::Len(bytes)) = (field.ty, raw) else {
                    return Err(malformed(
                        self.message,
                        "",
                        format!("inline field {tag} is not a message"),
                    ));
                };
                self.inline = Some(Box::new(FieldsAccess::new(MessageDe::new(
                    bytes,
                    table::message(i),
                    self.depth + 1,
                ))));
                return self.advance();
            }
            if is_gathered(field) && index < 256 {
                let (word, bit) = (index / 64, 1u64 << (index % 64));
                if self.seen[word] & bit != 0 {
                    continue;
                }
                self.seen[word] |= bit;
            }
            self.pending = Some(Pending::Field {
                message: self.message,
                field,
                raw,
                from: from.rest(),
            });
            return Ok(Some(field.json));
        }
    }
}

/// Whether each repeated or map field of `message` occurs in one run. One
/// pass over the keys, made only for messages that have such fields; a
/// malformed message answers `false` (the full scan reports the error).
fn runs_are_contiguous(bytes: &[u8], message: &'static Message) -> bool {
    if !message.fields.iter().any(is_gathered) {
        return true;
    }
    let mut ended = [0u64; 4];
    let mut last: Option<usize> = None;
    let mut reader = Reader::new(bytes);
    loop {
        let tag = match reader.field() {
            Ok(Some((tag, _))) => tag,
            Ok(None) => return true,
            Err(_) => return false,
        };
        let index = message.field_by_tag(tag).map(|(i, _)| i);
        if index == last {
            continue;
        }
        if let Some(prev) = last.filter(|&i| i < 256) {
            ended[prev / 64] |= 1 << (prev % 64);
        }
        let reopened = index.filter(|&i| i < 256).is_some_and(|i| {
            ended[i / 64] & (1 << (i % 64)) != 0 && is_gathered(&message.fields[i])
        });
        if reopened {
            return false;
        }
        last = index;
    }
}

fn is_gathered(field: &Field) -> bool {
    field.repeated
        || matches!(
            field.ty,
            Type::MapString | Type::MapBytes | Type::MapMessage(_)
        )
}

impl<'de> de::MapAccess<'de> for FieldsAccess<'de> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        if let Some((api_version, kind)) = self.type_meta {
            let (key, value) = match self.type_meta_done {
                0 => ("apiVersion", api_version),
                1 => ("kind", kind),
                _ => ("", ""),
            };
            if !key.is_empty() {
                self.type_meta_done += 1;
                self.pending = Some(Pending::Str(value));
                return seed
                    .deserialize(BorrowedStrDeserializer::new(key))
                    .map(Some);
            }
        }
        match self.advance()? {
            None => Ok(None),
            Some(json) => seed
                .deserialize(BorrowedStrDeserializer::new(json))
                .map(Some),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        let (message, field, raw, from) = match self.pending.take() {
            Some(Pending::Str(s)) => return seed.deserialize(TypeMetaStr(s)),
            Some(Pending::Field {
                message,
                field,
                raw,
                from,
            }) => (message, field, raw, from),
            None => return Err(Error::Custom("value requested before key".into()).into()),
        };
        let result = if matches!(
            field.ty,
            Type::MapString | Type::MapBytes | Type::MapMessage(_)
        ) {
            seed.deserialize(MapDe {
                reader: Reader::new(from),
                parent: message,
                field,
                depth: self.depth,
                value: None,
                contiguous: self.contiguous,
            })
        } else if field.repeated {
            let mut seq = SeqDe::new(from, message, field, self.depth);
            seq.contiguous = self.contiguous;
            seed.deserialize(seq)
        } else {
            seed.deserialize(ValueDe {
                raw,
                ty: field.ty,
                parent: message,
                field: field.json,
                depth: self.depth,
            })
        };
        result.map_err(|e| in_field(e, message, field.json))
    }
}

/// One value of a scalar or message type.
struct ValueDe<'de> {
    raw: Raw<'de>,
    ty: Type,
    parent: &'static Message,
    field: &'static str,
    depth: usize,
}

impl<'de> ValueDe<'de> {
    fn wrong(&self) -> DeError {
        malformed(
            self.parent,
            self.field,
            format!(
                "{:?} value on the wire for a {:?} field",
                self.raw.wire_type(),
                self.ty
            ),
        )
    }
}

impl<'de> de::Deserializer<'de> for ValueDe<'de> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match (self.ty, self.raw) {
            (Type::String, Raw::Len(b)) => match std::str::from_utf8(b) {
                Ok(s) => visitor.visit_borrowed_str(s),
                Err(e) => Err(malformed(self.parent, self.field, e.to_string())),
            },
            (Type::Bytes, Raw::Len(b)) => visitor.visit_string(base64_encode(b)),
            (Type::Bool, Raw::Varint(v)) => visitor.visit_bool(v != 0),
            (Type::Int32, Raw::Varint(v)) => visitor.visit_i32(v as i32),
            (Type::Int64, Raw::Varint(v)) => visitor.visit_i64(v as i64),
            (Type::Uint32, Raw::Varint(v)) => visitor.visit_u32(v as u32),
            (Type::Uint64, Raw::Varint(v)) => visitor.visit_u64(v),
            (Type::Double, Raw::Fixed64(v)) => visitor.visit_f64(f64::from_bits(v)),
            (Type::Float, Raw::Fixed32(v)) => visitor.visit_f32(f32::from_bits(v)),
            (Type::Message(i), Raw::Len(b)) => de::Deserializer::deserialize_any(
                MessageDe::new(b, table::message(i), self.depth + 1),
                visitor,
            ),
            _ => Err(self.wrong()),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        match (self.ty, self.raw) {
            (Type::Message(i), Raw::Len(b)) => MessageDe::new(b, table::message(i), self.depth + 1)
                .deserialize_newtype_struct(name, visitor),
            _ => visitor.visit_newtype_struct(self),
        }
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct seq tuple
        tuple_struct map struct enum identifier ignored_any
    }
}

/// A repeated field, gathered from the message bytes at and after its first
/// occurrence; packed and unpacked scalars alike.
struct SeqDe<'de> {
    reader: Reader<'de>,
    packed: Reader<'de>,
    /// Stop at the first other field: the message holds one run of this one.
    contiguous: bool,
    parent: &'static Message,
    field: &'static Field,
    depth: usize,
}

impl<'de> SeqDe<'de> {
    fn new(from: &'de [u8], parent: &'static Message, field: &'static Field, depth: usize) -> Self {
        Self {
            reader: Reader::new(from),
            packed: Reader::new(&[]),
            contiguous: false,
            parent,
            field,
            depth,
        }
    }

    fn value(&self, raw: Raw<'de>) -> ValueDe<'de> {
        ValueDe {
            raw,
            ty: self.field.ty,
            parent: self.parent,
            field: self.field.json,
            depth: self.depth,
        }
    }
}

impl<'de> de::Deserializer<'de> for SeqDe<'de> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_seq(self)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_some(self)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct newtype_struct seq tuple
        tuple_struct map struct enum identifier ignored_any
    }
}

impl<'de> de::SeqAccess<'de> for SeqDe<'de> {
    type Error = DeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        let packable = !matches!(self.field.ty, Type::String | Type::Bytes | Type::Message(_));
        if !self.packed.is_empty() {
            let raw = match self.field.ty {
                Type::Double => self.packed.fixed64().map(Raw::Fixed64),
                Type::Float => self.packed.fixed32().map(Raw::Fixed32),
                _ => self.packed.varint().map(Raw::Varint),
            }
            .map_err(|e| wire_error(self.parent, self.field.json, e))?;
            return seed.deserialize(self.value(raw)).map(Some);
        }
        loop {
            let Some((tag, raw)) = self
                .reader
                .field()
                .map_err(|e| wire_error(self.parent, self.field.json, e))?
            else {
                return Ok(None);
            };
            if tag != self.field.tag {
                if self.contiguous {
                    self.reader = Reader::new(&[]);
                    return Ok(None);
                }
                continue;
            }
            if let (true, Raw::Len(b)) = (packable, raw) {
                self.packed = Reader::new(b);
                if b.is_empty() {
                    continue;
                }
                return self.next_element_seed(seed);
            }
            return seed.deserialize(self.value(raw)).map(Some);
        }
    }
}

/// A proto map (`repeated Entry {1: key, 2: value}`) as a JSON object.
struct MapDe<'de> {
    reader: Reader<'de>,
    parent: &'static Message,
    field: &'static Field,
    depth: usize,
    value: Option<Option<Raw<'de>>>,
    /// Stop at the first other field: the message holds one run of entries.
    contiguous: bool,
}

impl<'de> de::Deserializer<'de> for MapDe<'de> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_map(self)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_some(self)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct newtype_struct seq tuple
        tuple_struct map struct enum identifier ignored_any
    }
}

impl<'de> de::MapAccess<'de> for MapDe<'de> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        let json = self.field.json;
        loop {
            let Some((tag, raw)) = self
                .reader
                .field()
                .map_err(|e| wire_error(self.parent, json, e))?
            else {
                return Ok(None);
            };
            if tag != self.field.tag {
                if self.contiguous {
                    self.reader = Reader::new(&[]);
                    return Ok(None);
                }
                continue;
            }
            let Raw::Len(entry) = raw else {
                return Err(malformed(
                    self.parent,
                    json,
                    "map entry is not length-delimited",
                ));
            };
            let mut entry = Reader::new(entry);
            let mut key: &'de [u8] = &[];
            let mut value = None;
            while let Some((tag, raw)) = entry
                .field()
                .map_err(|e| wire_error(self.parent, json, e))?
            {
                match (tag, raw) {
                    (1, Raw::Len(k)) => key = k,
                    (1, _) => return Err(malformed(self.parent, json, "map key is not a string")),
                    (2, v) => value = Some(v),
                    _ => {}
                }
            }
            let key = std::str::from_utf8(key)
                .map_err(|e| malformed(self.parent, json, format!("map key: {e}")))?;
            self.value = Some(value);
            return seed
                .deserialize(BorrowedStrDeserializer::new(key))
                .map(Some);
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        let value = self.value.take().flatten();
        let (ty, raw) = match (self.field.ty, value) {
            (Type::MapString, v) => (Type::String, v.unwrap_or(Raw::Len(&[]))),
            (Type::MapBytes, v) => (Type::Bytes, v.unwrap_or(Raw::Len(&[]))),
            (Type::MapMessage(i), v) => (Type::Message(i), v.unwrap_or(Raw::Len(&[]))),
            (other, _) => {
                return Err(malformed(
                    self.parent,
                    self.field.json,
                    format!("{other:?} is not a map"),
                ));
            }
        };
        seed.deserialize(ValueDe {
            raw,
            ty,
            parent: self.parent,
            field: self.field.json,
            depth: self.depth,
        })
    }
}

impl de::Error for DeError {
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        Error::Custom(msg.to_string()).into()
    }
}

/// `apiVersion` or `kind` from the envelope: a string that also reads as
/// `Some(string)`, for types that keep them optional (`ObjectList`'s).
struct TypeMetaStr<'de>(&'de str);

impl<'de> de::Deserializer<'de> for TypeMetaStr<'de> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_borrowed_str(self.0)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_some(self)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct newtype_struct seq tuple
        tuple_struct map struct enum identifier ignored_any
    }
}
