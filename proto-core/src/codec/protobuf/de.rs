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
pub(crate) enum DeError {
    Failed(Box<Error>),
    /// A repeated or map field occurs in more than one run in a message
    /// decoded on the assumption that each sits in one run (as Go writes
    /// them): decode again with [`Depth::top`]`(true)`.
    Scattered,
}

impl DeError {
    /// The error, once a decode with `Depth::top(true)` has failed.
    pub fn into_error(self) -> Error {
        match self {
            DeError::Failed(e) => *e,
            DeError::Scattered => {
                Error::Custom("a repeated field occurs in more than one run".into())
            }
        }
    }
}

impl From<Error> for DeError {
    fn from(e: Error) -> Self {
        DeError::Failed(Box::new(e))
    }
}

impl std::fmt::Display for DeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DeError::Failed(e) => e.fmt(f),
            DeError::Scattered => f.write_str("a repeated field occurs in more than one run"),
        }
    }
}

impl std::error::Error for DeError {}

/// How deep a message sits, and how its repeated and map fields are read.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Depth {
    level: usize,
    /// `false`: each repeated or map field is taken to sit in one run and is
    /// read in one pass; meeting one again fails with [`DeError::Scattered`].
    /// `true`: each message with such fields is checked first, and a field
    /// in several runs is gathered from the whole message.
    scattered: bool,
}

impl Depth {
    /// A top-level message.
    pub fn top(scattered: bool) -> Self {
        Self {
            level: 0,
            scattered,
        }
    }

    fn deeper(self) -> Self {
        Self {
            level: self.level + 1,
            ..self
        }
    }
}

use super::json_text::{base64_encode, format_time};
use super::table::{self, Field, Index, Message, Shape, Type};
use super::wire::{Raw, Reader, WireError};

/// The deepest nesting of messages decoded; deeper input is an error.
pub const MAX_DEPTH: usize = 100;

#[cold]
#[inline(never)]
fn wire_error(message: &'static Message, field: &'static str, e: WireError) -> DeError {
    Error::Malformed {
        message: message.name,
        field,
        what: e.to_string(),
    }
    .into()
}

#[cold]
#[inline(never)]
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
#[cold]
#[inline(never)]
fn in_field(mut e: DeError, message: &'static Message, field: &'static str) -> DeError {
    if let DeError::Failed(e) = &mut e
        && let Error::Custom(what) = &mut **e
    {
        let what = std::mem::take(what);
        **e = Error::Malformed {
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
    pub depth: Depth,
    /// `apiVersion` and `kind` to present first (from the envelope).
    pub type_meta: Option<(&'de str, &'de str)>,
}

impl<'de> MessageDe<'de> {
    pub fn new(bytes: &'de [u8], message: &'static Message, depth: Depth) -> Self {
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

impl<'de> MessageDe<'de> {
    #[cold]
    #[inline(never)]
    fn too_deep(&self) -> DeError {
        Error::TooDeep {
            message: self.message.name,
            limit: MAX_DEPTH,
        }
        .into()
    }

    /// The messages that are not JSON objects (other than times), kept out
    /// of line: every target type's `deserialize_any` stays small on the
    /// hot path (a struct) instead of carrying these shapes and an embedded
    /// JSON parser.
    #[inline(never)]
    fn special<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
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
                    let mut inner = MessageDe::new(envelope.raw, message, self.depth.deeper());
                    inner.type_meta = Some((envelope.api_version, envelope.kind));
                    return de::Deserializer::deserialize_any(inner, visitor);
                }
                // One validation of the whole text (long runs of ASCII go by
                // words), then no per-string check in serde_json: what
                // `from_slice` would do for each string.
                let text = std::str::from_utf8(bytes)
                    .map_err(|e| malformed(self.message, "raw", format!("embedded JSON: {e}")))?;
                let mut json = serde_json::Deserializer::from_str(text);
                let value = de::Deserializer::deserialize_any(&mut json, visitor)
                    .and_then(|v| json.end().map(|()| v))
                    .map_err(|e| malformed(self.message, "raw", format!("embedded JSON: {e}")))?;
                Ok(value)
            }
            Shape::SchemaOrBool => {
                let [allows, schema] = self.scalars([1, 2])?;
                match (schema, allows) {
                    (Some(Raw::Len(b)), _) => de::Deserializer::deserialize_any(
                        MessageDe::new(b, self.child(2)?, self.depth.deeper()),
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
                let mut reader = Reader::new(self.bytes);
                visitor.visit_seq(SeqDe::new(
                    &mut reader,
                    false,
                    self.message,
                    items,
                    self.depth,
                ))
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
                    let mut reader = Reader::new(self.bytes);
                    return visitor.visit_seq(SeqDe::new(
                        &mut reader,
                        false,
                        self.message,
                        items,
                        self.depth,
                    ));
                }
                match self.scalars([1])? {
                    [Some(Raw::Len(b))] => de::Deserializer::deserialize_any(
                        MessageDe::new(b, self.child(1)?, self.depth.deeper()),
                        visitor,
                    ),
                    [None] => visitor.visit_unit(),
                    _ => Err(malformed(self.message, "schema", "wrong wire type")),
                }
            }
        }
    }
}

impl<'de> de::Deserializer<'de> for MessageDe<'de> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        if self.depth.level > MAX_DEPTH {
            return Err(self.too_deep());
        }
        match self.message.shape {
            Shape::Struct => visitor.visit_map(FieldsAccess::new(self)),
            Shape::Time => self.time(visitor, false),
            Shape::MicroTime => self.time(visitor, true),
            _ => self.special(visitor),
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
    index: &'static Index,
    depth: Depth,
    type_meta: Option<(&'de str, &'de str)>,
    type_meta_done: u8,
    /// Repeated and map fields already handed over, one bit per field index.
    seen: u64,
    /// Whether, from the first repeated or map field on, each such field
    /// sits in one contiguous run (as Go writes them), so gathering one
    /// reads just its run and the message goes on after it. `None` until the
    /// first such field is met (a message without any is never checked).
    contiguous: Option<bool>,
    pending: Pending<'de>,
}

/// The value of the key just handed over.
enum Pending<'de> {
    None,
    /// `apiVersion` or `kind` from the envelope.
    Str(&'de str),
    Field {
        field: &'static Field,
        raw: Raw<'de>,
        /// The message bytes from this field's key on, for gathering a
        /// repeated or map field.
        from: Reader<'de>,
    },
    /// The inline message's pending value.
    Inline,
}

impl<'de> FieldsAccess<'de> {
    fn new(de: MessageDe<'de>) -> Self {
        Self {
            reader: Reader::new(de.bytes),
            inline: None,
            message: de.message,
            index: de.message.index(),
            depth: de.depth,
            type_meta: de.type_meta.filter(|(a, k)| !a.is_empty() || !k.is_empty()),
            type_meta_done: 0,
            seen: 0,
            contiguous: if de.depth.scattered { None } else { Some(true) },
            pending: Pending::None,
        }
    }

    /// Move to the next field to hand over (skipping unknown fields and
    /// later occurrences of gathered ones, stepping into inline messages);
    /// leave it in `pending` and return it (its JSON name is the key).
    ///
    /// The field comes back as one pointer (the result fits in two
    /// registers); an inline message's fields are its own.
    fn advance(&mut self) -> Result<Option<&'static Field>, DeError> {
        if let Some(inline) = self.inline.as_mut() {
            if let Some(field) = inline.advance()? {
                self.pending = Pending::Inline;
                return Ok(Some(field));
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
            let Some(i) = self.index.field(tag) else {
                continue;
            };
            let field = &self.message.fields[i];
            if field.json.is_empty() {
                return self.enter_inline(field, tag, raw);
            }
            if self.index.is_gathered(i) {
                let bit = 1u64 << i;
                if self.seen & bit != 0 {
                    if !self.depth.scattered {
                        return Err(DeError::Scattered);
                    }
                    continue;
                }
                self.seen |= bit;
                if self.contiguous.is_none() {
                    self.contiguous = Some(runs_are_contiguous(from, self.index));
                }
            }
            self.pending = Pending::Field { field, raw, from };
            return Ok(Some(field));
        }
    }

    /// Step into inline message field `field` and hand over its first field
    /// (or go on after it when it has none).
    #[cold]
    #[inline(never)]
    fn enter_inline(
        &mut self,
        field: &'static Field,
        tag: u32,
        raw: Raw<'de>,
    ) -> Result<Option<&'static Field>, DeError> {
        let (Type::Message(m), Raw::Len(bytes)) = (field.ty, raw) else {
            return Err(malformed(
                self.message,
                "",
                format!("inline field {tag} is not a message"),
            ));
        };
        self.inline = Some(Box::new(FieldsAccess::new(MessageDe::new(
            bytes,
            table::message(m),
            self.depth.deeper(),
        ))));
        self.advance()
    }
}

/// Whether each repeated or map field occurs in one run in the bytes
/// `reader` holds. One pass over the keys; malformed bytes answer `false`
/// (the full read reports the error).
fn runs_are_contiguous(mut reader: Reader<'_>, index: &Index) -> bool {
    let mut ended = 0u64;
    let mut last: Option<usize> = None;
    loop {
        let tag = match reader.field() {
            Ok(Some((tag, _))) => tag,
            Ok(None) => return true,
            Err(_) => return false,
        };
        let field = index.field(tag);
        if field == last {
            continue;
        }
        if let Some(prev) = last {
            ended |= 1 << prev;
        }
        if let Some(i) = field
            && ended & (1 << i) & index.gathered != 0
        {
            return false;
        }
        last = field;
    }
}

impl<'de> de::MapAccess<'de> for FieldsAccess<'de> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        if let Some((api_version, kind)) = self.type_meta
            && self.type_meta_done < 2
        {
            let (key, value) = if self.type_meta_done == 0 {
                ("apiVersion", api_version)
            } else {
                ("kind", kind)
            };
            self.type_meta_done += 1;
            self.pending = Pending::Str(value);
            return seed
                .deserialize(BorrowedStrDeserializer::new(key))
                .map(Some);
        }
        match self.advance()? {
            None => Ok(None),
            Some(field) => seed
                .deserialize(BorrowedStrDeserializer::new(field.json))
                .map(Some),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        let (field, raw, from) = match std::mem::replace(&mut self.pending, Pending::None) {
            Pending::Field { field, raw, from } => (field, raw, from),
            Pending::Str(s) => return seed.deserialize(TypeMetaStr(s)),
            Pending::Inline => {
                return match self.inline.as_mut() {
                    Some(inline) => inline.next_value_seed(seed),
                    None => Err(Error::Custom("value requested before key".into()).into()),
                };
            }
            Pending::None => return Err(Error::Custom("value requested before key".into()).into()),
        };
        let (message, depth) = (self.message, self.depth);
        let gathered = matches!(
            field.ty,
            Type::MapString | Type::MapBytes | Type::MapMessage(_)
        ) || field.repeated;
        if !gathered {
            return seed
                .deserialize(ValueDe {
                    raw,
                    ty: field.ty,
                    parent: message,
                    field: field.json,
                    depth,
                })
                .map_err(|e| in_field(e, message, field.json));
        }
        // A contiguous run is read from the message's own reader, which then
        // goes on after it; otherwise the rest of the message is searched.
        let contiguous = self.contiguous == Some(true);
        let mut scattered = from;
        let reader = if contiguous {
            self.reader = from;
            &mut self.reader
        } else {
            &mut scattered
        };
        let result = if field.repeated {
            seed.deserialize(SeqDe::new(reader, contiguous, message, field, depth))
        } else {
            seed.deserialize(MapDe {
                reader,
                contiguous,
                parent: message,
                field,
                depth,
                value: None,
            })
        };
        result.map_err(|e| in_field(e, message, field.json))
    }
}

/// `bytes` as text, checked to be UTF-8. Nearly every string in a
/// Kubernetes object is short ASCII, which `is_ascii` checks a word at a
/// time inline, where `from_utf8` would go byte by byte behind a call.
#[inline(always)]
fn utf8(bytes: &[u8]) -> Result<&str, std::str::Utf8Error> {
    if bytes.is_ascii() {
        // SAFETY: ASCII bytes are valid UTF-8.
        #[allow(unsafe_code)]
        return Ok(unsafe { std::str::from_utf8_unchecked(bytes) });
    }
    std::str::from_utf8(bytes)
}

/// One value of a scalar or message type.
struct ValueDe<'de> {
    raw: Raw<'de>,
    ty: Type,
    parent: &'static Message,
    field: &'static str,
    depth: Depth,
}

impl<'de> ValueDe<'de> {
    #[cold]
    #[inline(never)]
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
            (Type::String, Raw::Len(b)) => match utf8(b) {
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
                MessageDe::new(b, table::message(i), self.depth.deeper()),
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
            (Type::Message(i), Raw::Len(b)) => {
                MessageDe::new(b, table::message(i), self.depth.deeper())
                    .deserialize_newtype_struct(name, visitor)
            }
            _ => visitor.visit_newtype_struct(self),
        }
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct seq tuple
        tuple_struct map struct enum identifier ignored_any
    }
}

/// Whether a repeated field of this type may be packed on the wire.
fn is_packable(ty: Type) -> bool {
    !matches!(
        ty,
        Type::String
            | Type::Bytes
            | Type::Message(_)
            | Type::MapString
            | Type::MapBytes
            | Type::MapMessage(_)
    )
}

/// A repeated field, gathered from the message bytes at and after its first
/// occurrence; packed and unpacked scalars alike.
struct SeqDe<'a, 'de> {
    reader: &'a mut Reader<'de>,
    packed: Reader<'de>,
    /// Stop at the first other field: the message holds one run of this one.
    contiguous: bool,
    /// The elements not handed over yet, when known (a contiguous run is
    /// counted first, so the target `Vec` is allocated once, at its length).
    remaining: Option<usize>,
    parent: &'static Message,
    field: &'static Field,
    depth: Depth,
}

impl<'a, 'de> SeqDe<'a, 'de> {
    fn new(
        reader: &'a mut Reader<'de>,
        contiguous: bool,
        parent: &'static Message,
        field: &'static Field,
        depth: Depth,
    ) -> Self {
        let remaining = if contiguous {
            count_run(*reader, field)
        } else {
            None
        };
        Self {
            reader,
            packed: Reader::new(&[]),
            contiguous,
            remaining,
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

impl<'de> SeqDe<'_, 'de> {
    /// The next element's value on the wire.
    fn next_raw(&mut self) -> Result<Option<Raw<'de>>, DeError> {
        let wire = |e| wire_error(self.parent, self.field.json, e);
        loop {
            if !self.packed.is_empty() {
                let raw = match self.field.ty {
                    Type::Double => self.packed.fixed64().map(Raw::Fixed64),
                    Type::Float => self.packed.fixed32().map(Raw::Fixed32),
                    _ => self.packed.varint().map(Raw::Varint),
                };
                return raw.map(Some).map_err(wire);
            }
            let mut ahead = *self.reader;
            let Some((tag, raw)) = ahead.field().map_err(wire)? else {
                return Ok(None);
            };
            if tag != self.field.tag && self.contiguous {
                // The run ends here; the message goes on from this field.
                return Ok(None);
            }
            *self.reader = ahead;
            if tag != self.field.tag {
                continue;
            }
            match raw {
                Raw::Len(b) if is_packable(self.field.ty) => self.packed = Reader::new(b),
                raw => return Ok(Some(raw)),
            }
        }
    }
}

/// The number of elements in the run of `field` that `reader` starts at;
/// `None` when the bytes are malformed (reading them reports it).
fn count_run(mut reader: Reader<'_>, field: &Field) -> Option<usize> {
    let packable = is_packable(field.ty);
    let mut count = 0usize;
    loop {
        match reader.field() {
            Ok(Some((tag, raw))) if tag == field.tag => {
                count += match (packable, raw) {
                    (true, Raw::Len(b)) => match field.ty {
                        Type::Double => b.len() / 8,
                        Type::Float => b.len() / 4,
                        _ => b.iter().filter(|&&byte| byte < 0x80).count(),
                    },
                    _ => 1,
                }
            }
            Ok(_) => return Some(count),
            Err(_) => return None,
        }
    }
}

impl<'de> de::Deserializer<'de> for SeqDe<'_, 'de> {
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

impl<'de> de::SeqAccess<'de> for SeqDe<'_, 'de> {
    type Error = DeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        let Some(raw) = self.next_raw()? else {
            return Ok(None);
        };
        if let Some(n) = self.remaining.as_mut() {
            *n = n.saturating_sub(1);
        }
        seed.deserialize(self.value(raw)).map(Some)
    }

    fn size_hint(&self) -> Option<usize> {
        self.remaining
    }
}

/// A proto map (`repeated Entry {1: key, 2: value}`) as a JSON object.
struct MapDe<'a, 'de> {
    reader: &'a mut Reader<'de>,
    /// Stop at the first other field: the message holds one run of entries.
    contiguous: bool,
    parent: &'static Message,
    field: &'static Field,
    depth: Depth,
    value: Option<Option<Raw<'de>>>,
}

impl<'de> de::Deserializer<'de> for MapDe<'_, 'de> {
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

impl<'de> de::MapAccess<'de> for MapDe<'_, 'de> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        let json = self.field.json;
        loop {
            let mut ahead = *self.reader;
            let Some((tag, raw)) = ahead
                .field()
                .map_err(|e| wire_error(self.parent, json, e))?
            else {
                return Ok(None);
            };
            if tag != self.field.tag {
                if self.contiguous {
                    return Ok(None);
                }
                *self.reader = ahead;
                continue;
            }
            *self.reader = ahead;
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
            let key =
                utf8(key).map_err(|e| malformed(self.parent, json, format!("map key: {e}")))?;
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
