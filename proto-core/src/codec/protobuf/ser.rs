//! Encoding: a `serde::Serializer` that takes the JSON-shaped output of a
//! type's own `Serialize` impl and writes protobuf by the schema table.
//!
//! JSON-only shapes are turned back into their messages: RFC 3339 strings
//! into `Time`/`MicroTime` `{seconds, nanos}`, base64 strings into bytes,
//! numbers or strings into `IntOrString`, embedded JSON values into the raw
//! bytes of `FieldsV1`/`RawExtension`/`JSON`. Fields are written in the order
//! the type serializes them; like Go, non-pointer scalars of the special
//! messages are always written. A field the schema lacks is an error (it
//! would be lost), except `apiVersion` and `kind`, which the envelope carries.

use serde::ser::{self, Impossible, Serialize};

use super::Error;
use super::de::MAX_DEPTH;
use super::json_text::{base64_decode, parse_time};
use super::table::{self, Index, Message, Shape, Type};
use super::wire::{
    WireType, close_len, close_len_wide, open_len, open_len_wide, put_bytes, put_key, put_time,
    put_varint,
};

/// The serializer's error: [`Error`] boxed, so that `Result<(), SerError>`
/// is one pointer returned in a register. Every value the walk writes
/// returns one, and a 64-byte `Result` made each of the many monomorphized
/// callers copy and test it through memory.
pub(crate) type SerError = Box<Error>;

/// Where a finished message goes: appended bare, or as a length-delimited field.
pub(crate) enum Sink<'o> {
    Bare(&'o mut Vec<u8>),
    Field(&'o mut Vec<u8>, u32),
}

impl<'o> Sink<'o> {
    fn write(self, bytes: &[u8]) {
        match self {
            Sink::Bare(out) => out.extend_from_slice(bytes),
            Sink::Field(out, tag) => put_bytes(out, tag, bytes),
        }
    }

    /// Start writing a message in place: for a field, its key and a length
    /// placeholder that [`close`] fills in once the message is written. No
    /// message is built in a buffer of its own and copied into its parent.
    fn open(self) -> (&'o mut Vec<u8>, Option<usize>) {
        match self {
            Sink::Bare(out) => (out, None),
            Sink::Field(out, tag) => {
                let start = open_len(out, tag);
                (out, Some(start))
            }
        }
    }
}

/// Finish a message [`Sink::open`] started.
fn close(out: &mut Vec<u8>, start: Option<usize>) {
    if let Some(start) = start {
        close_len(out, start);
    }
}

#[cold]
fn unsupported(message: &'static Message, field: &'static str, what: &str) -> SerError {
    Box::new(Error::Malformed {
        message: message.name,
        field,
        what: format!("cannot encode {what} here"),
    })
}

/// One message-typed value.
pub(crate) struct MessageSer<'o> {
    pub sink: Sink<'o>,
    pub message: &'static Message,
    pub depth: usize,
}

impl<'o> MessageSer<'o> {
    fn int(self, v: i64) -> Result<(), SerError> {
        if self.message.shape == Shape::RawJson {
            return self.raw_json(&v);
        }
        if self.message.shape != Shape::IntOrString {
            return Err(unsupported(self.message, "", "a number"));
        }
        let (out, start) = self.sink.open();
        put_key(out, 1, WireType::Varint);
        put_varint(out, 0);
        put_key(out, 2, WireType::Varint);
        put_varint(out, i64::from(v as i32) as u64);
        put_bytes(out, 3, b"");
        close(out, start);
        Ok(())
    }

    fn child(&self, tag: u32) -> Result<&'static Message, SerError> {
        match self.message.field_by_tag(tag).map(|(_, f)| f.ty) {
            Some(Type::Message(i)) => Ok(table::message(i)),
            _ => Err(unsupported(self.message, "", "a schema")),
        }
    }

    /// Any value, for a `RawJson` message: through `serde_json::Value`.
    fn raw_json<T: ?Sized + Serialize>(self, value: &T) -> Result<(), SerError> {
        let value = serde_json::to_value(value).map_err(|e| Error::Malformed {
            message: self.message.name,
            field: "raw",
            what: e.to_string(),
        })?;
        write_raw_json(self.sink, self.message, &value)
    }

    fn object(self) -> Result<Compound<'o>, SerError> {
        if self.depth > MAX_DEPTH {
            return Err(Box::new(Error::TooDeep {
                message: self.message.name,
                limit: MAX_DEPTH,
            }));
        }
        let (message, wrap) = match self.message.shape {
            Shape::RawJson => {
                let map = ser::Serializer::serialize_map(serde_json::value::Serializer, None)
                    .map_err(json_error)?;
                return Ok(Compound::JsonMap(Box::new((self.sink, map, self.message))));
            }
            Shape::Struct => {
                let (out, tag) = match self.sink {
                    Sink::Bare(out) => (out, None),
                    Sink::Field(out, tag) => (out, Some(tag)),
                };
                return Ok(Compound::Struct(StructSer::open(
                    out,
                    tag,
                    self.message,
                    self.depth,
                )));
            }
            Shape::SchemaOrBool => (self.child(2)?, 2),
            Shape::SchemaOrArray | Shape::SchemaOrStringArray => (self.child(1)?, 1),
            _ => return Err(unsupported(self.message, "", "an object")),
        };
        // A schema inside its `JSONSchemaPropsOr*` wrapper: two messages open.
        let (out, start) = self.sink.open();
        let wrapped = open_len(out, wrap);
        Ok(Compound::Struct(StructSer {
            out,
            start: start.unwrap_or(0),
            wide: false,
            wrapped,
            message,
            index: message.index(),
            depth: self.depth,
            rare: None,
            key: "",
        }))
    }
}

macro_rules! ints_via {
    ($via:ident: $($name:ident($ty:ty)),*) => {
        $(fn $name(self, v: $ty) -> Result<(), SerError> {
            self.$via(v as i64)
        })*
    };
}

impl<'o> ser::Serializer for MessageSer<'o> {
    type Ok = ();
    type Error = SerError;
    type SerializeSeq = Compound<'o>;
    type SerializeTuple = Impossible<(), SerError>;
    type SerializeTupleStruct = Impossible<(), SerError>;
    type SerializeTupleVariant = Impossible<(), SerError>;
    type SerializeMap = Compound<'o>;
    type SerializeStruct = Compound<'o>;
    type SerializeStructVariant = Impossible<(), SerError>;

    ints_via!(int: serialize_i8(i8), serialize_i16(i16), serialize_i32(i32), serialize_i64(i64),
        serialize_u8(u8), serialize_u16(u16), serialize_u32(u32), serialize_u64(u64));

    fn serialize_bool(self, v: bool) -> Result<(), SerError> {
        if self.message.shape == Shape::RawJson {
            return self.raw_json(&v);
        }
        if self.message.shape != Shape::SchemaOrBool {
            return Err(unsupported(self.message, "", "a bool"));
        }
        let (out, start) = self.sink.open();
        put_key(out, 1, WireType::Varint);
        put_varint(out, u64::from(v));
        close(out, start);
        Ok(())
    }

    fn serialize_f32(self, _: f32) -> Result<(), SerError> {
        Err(unsupported(self.message, "", "a number"))
    }

    fn serialize_f64(self, v: f64) -> Result<(), SerError> {
        if self.message.shape == Shape::RawJson {
            return self.raw_json(&v);
        }
        Err(unsupported(self.message, "", "a number"))
    }

    fn serialize_char(self, v: char) -> Result<(), SerError> {
        self.serialize_str(v.encode_utf8(&mut [0; 4]))
    }

    fn serialize_str(self, v: &str) -> Result<(), SerError> {
        let message = self.message;
        match message.shape {
            Shape::Time | Shape::MicroTime => {
                let (seconds, nanos) = parse_time(v).map_err(|what| Error::Malformed {
                    message: message.name,
                    field: "",
                    what,
                })?;
                let (out, start) = self.sink.open();
                put_key(out, 1, WireType::Varint);
                put_varint(out, seconds as u64);
                put_key(out, 2, WireType::Varint);
                put_varint(out, i64::from(nanos) as u64);
                close(out, start);
            }
            Shape::Quantity => {
                let (out, start) = self.sink.open();
                put_bytes(out, 1, v.as_bytes());
                close(out, start);
            }
            Shape::RawJson => return self.raw_json(v),
            Shape::IntOrString => {
                let (out, start) = self.sink.open();
                put_key(out, 1, WireType::Varint);
                put_varint(out, 1);
                put_key(out, 2, WireType::Varint);
                put_varint(out, 0);
                put_bytes(out, 3, v.as_bytes());
                close(out, start);
            }
            _ => return Err(unsupported(message, "", "a string")),
        }
        Ok(())
    }

    fn serialize_bytes(self, _: &[u8]) -> Result<(), SerError> {
        Err(unsupported(self.message, "", "bytes"))
    }

    fn serialize_none(self) -> Result<(), SerError> {
        self.serialize_unit()
    }

    fn serialize_some<T: ?Sized + Serialize>(self, value: &T) -> Result<(), SerError> {
        value.serialize(self)
    }

    fn serialize_unit(self) -> Result<(), SerError> {
        self.sink.write(&[]);
        Ok(())
    }

    fn serialize_unit_struct(self, _: &'static str) -> Result<(), SerError> {
        self.serialize_unit()
    }

    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<(), SerError> {
        self.serialize_str(variant)
    }

    fn serialize_newtype_struct<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<(), SerError> {
        if self.message.shape != Shape::RawJson {
            return value.serialize(self);
        }
        // The JSON text written in place as field 1 (`raw`), no buffer of
        // its own; `null` is no field at all.
        let (out, outer) = match self.sink {
            Sink::Bare(out) => (out, None),
            Sink::Field(out, tag) => {
                let start = open_len_wide(out, tag);
                (out, Some(start))
            }
        };
        let raw = open_len_wide(out, 1);
        serde_json::to_writer(&mut *out, value).map_err(|e| Error::Malformed {
            message: self.message.name,
            field: "raw",
            what: e.to_string(),
        })?;
        if out[raw..] == *b"null" {
            // The key (one byte) and the placeholder go too.
            out.truncate(raw - 3);
        } else {
            close_len_wide(out, raw);
        }
        if let Some(outer) = outer {
            close_len_wide(out, outer);
        }
        Ok(())
    }

    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<(), SerError> {
        Err(unsupported(self.message, "", "an enum"))
    }

    fn serialize_seq(self, _: Option<usize>) -> Result<Compound<'o>, SerError> {
        if self.message.shape == Shape::RawJson {
            let seq = ser::Serializer::serialize_seq(serde_json::value::Serializer, None)
                .map_err(json_error)?;
            return Ok(Compound::JsonSeq(Box::new((self.sink, seq, self.message))));
        }
        let (_, items) = match self.message.shape {
            Shape::SchemaOrArray | Shape::SchemaOrStringArray => self.message.field_by_tag(2),
            Shape::StringList => self.message.field_by_tag(1),
            _ => None,
        }
        .ok_or_else(|| unsupported(self.message, "", "an array"))?;
        let (out, start) = self.sink.open();
        Ok(Compound::Seq(SeqSer {
            out,
            start: start.unwrap_or(0),
            tag: items.tag,
            ty: items.ty,
            json: items.json,
            parent: self.message,
            depth: self.depth,
        }))
    }

    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, SerError> {
        Err(unsupported(self.message, "", "a tuple"))
    }

    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, SerError> {
        Err(unsupported(self.message, "", "a tuple"))
    }

    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, SerError> {
        Err(unsupported(self.message, "", "an enum"))
    }

    fn serialize_map(self, _: Option<usize>) -> Result<Compound<'o>, SerError> {
        self.object()
    }

    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Compound<'o>, SerError> {
        self.object()
    }

    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, SerError> {
        Err(unsupported(self.message, "", "an enum"))
    }
}

/// Field `i` of `parent` holding `value`, written as a message's field is
/// (nothing for `None`): the generated direct code's way into this path.
pub(crate) fn serde_field<T: Serialize + ?Sized>(
    out: &mut Vec<u8>,
    value: &T,
    parent: &'static Message,
    i: usize,
    depth: usize,
) -> Result<(), SerError> {
    value.serialize(FieldSer::of(out, parent, i, depth))
}

/// One field's value, written with its key into `out` (nothing for `None`).
struct FieldSer<'o> {
    out: &'o mut Vec<u8>,
    tag: u32,
    ty: Type,
    json: &'static str,
    repeated: bool,
    parent: &'static Message,
    depth: usize,
}

impl<'o> FieldSer<'o> {
    /// Field `i` of `parent`, written into `out`.
    #[inline]
    fn of(out: &'o mut Vec<u8>, parent: &'static Message, i: usize, depth: usize) -> Self {
        let field = &parent.fields[i];
        FieldSer {
            out,
            tag: field.tag,
            ty: field.ty,
            json: field.json,
            repeated: field.repeated,
            parent,
            depth,
        }
    }

    fn nested(self) -> Result<MessageSer<'o>, SerError> {
        match self.ty {
            Type::Message(i) => Ok(MessageSer {
                sink: Sink::Field(self.out, self.tag),
                message: table::message(i),
                depth: self.depth + 1,
            }),
            ty => Err(unsupported(
                self.parent,
                self.json,
                &format!("an object for a {ty:?} field"),
            )),
        }
    }

    fn int(self, v: i64) -> Result<(), SerError> {
        match self.ty {
            Type::Int32 | Type::Int64 | Type::Uint32 | Type::Uint64 => {
                put_key(self.out, self.tag, WireType::Varint);
                put_varint(self.out, v as u64);
                Ok(())
            }
            Type::Double => self.float(v as f64),
            Type::Message(_) => ser::Serializer::serialize_i64(self.nested()?, v),
            ty => Err(unsupported(
                self.parent,
                self.json,
                &format!("a number for a {ty:?} field"),
            )),
        }
    }

    /// A `Time` or `MicroTime` field from its RFC 3339 text: `{1: seconds,
    /// 2: nanos}`, at most 22 bytes, so its length is one byte.
    fn time(self, text: &str) -> Result<(), SerError> {
        let (seconds, nanos) = parse_time(text).map_err(|what| Error::Malformed {
            message: self.parent.name,
            field: self.json,
            what,
        })?;
        put_time(self.out, self.tag, seconds, nanos);
        Ok(())
    }

    /// A newtype holding a message other than `Time`, `MicroTime` and
    /// `Quantity`: out of line, since the `RawJson` case writes the value
    /// with `serde_json`, a large body for each value type.
    #[inline(never)]
    fn newtype_message<T: ?Sized + Serialize>(
        self,
        name: &'static str,
        value: &T,
    ) -> Result<(), SerError> {
        ser::Serializer::serialize_newtype_struct(self.nested()?, name, value)
    }

    fn float(self, v: f64) -> Result<(), SerError> {
        match self.ty {
            Type::Double => {
                put_key(self.out, self.tag, WireType::Fixed64);
                self.out.extend_from_slice(&v.to_bits().to_le_bytes());
                Ok(())
            }
            Type::Float => {
                put_key(self.out, self.tag, WireType::Fixed32);
                self.out
                    .extend_from_slice(&(v as f32).to_bits().to_le_bytes());
                Ok(())
            }
            ty => Err(unsupported(
                self.parent,
                self.json,
                &format!("a float for a {ty:?} field"),
            )),
        }
    }
}

impl<'o> ser::Serializer for FieldSer<'o> {
    type Ok = ();
    type Error = SerError;
    type SerializeSeq = Compound<'o>;
    type SerializeTuple = Impossible<(), SerError>;
    type SerializeTupleStruct = Impossible<(), SerError>;
    type SerializeTupleVariant = Impossible<(), SerError>;
    type SerializeMap = Compound<'o>;
    type SerializeStruct = Compound<'o>;
    type SerializeStructVariant = Impossible<(), SerError>;

    ints_via!(int: serialize_i8(i8), serialize_i16(i16), serialize_i32(i32), serialize_i64(i64),
        serialize_u8(u8), serialize_u16(u16), serialize_u32(u32));

    fn serialize_u64(self, v: u64) -> Result<(), SerError> {
        if self.ty == Type::Uint64 {
            put_key(self.out, self.tag, WireType::Varint);
            put_varint(self.out, v);
            return Ok(());
        }
        let v = i64::try_from(v)
            .map_err(|_| unsupported(self.parent, self.json, "a number above i64::MAX"))?;
        self.int(v)
    }

    fn serialize_bool(self, v: bool) -> Result<(), SerError> {
        match self.ty {
            Type::Bool => {
                put_key(self.out, self.tag, WireType::Varint);
                put_varint(self.out, u64::from(v));
                Ok(())
            }
            Type::Message(_) => self.nested()?.serialize_bool(v),
            ty => Err(unsupported(
                self.parent,
                self.json,
                &format!("a bool for a {ty:?} field"),
            )),
        }
    }

    fn serialize_f32(self, v: f32) -> Result<(), SerError> {
        self.float(f64::from(v))
    }

    fn serialize_f64(self, v: f64) -> Result<(), SerError> {
        self.float(v)
    }

    fn serialize_char(self, v: char) -> Result<(), SerError> {
        self.serialize_str(v.encode_utf8(&mut [0; 4]))
    }

    fn serialize_str(self, v: &str) -> Result<(), SerError> {
        match self.ty {
            Type::String => {
                put_bytes(self.out, self.tag, v.as_bytes());
                Ok(())
            }
            Type::Bytes => {
                let bytes = base64_decode(v).map_err(|what| Error::Malformed {
                    message: self.parent.name,
                    field: self.json,
                    what,
                })?;
                put_bytes(self.out, self.tag, &bytes);
                Ok(())
            }
            Type::Message(i) => {
                let message = table::message(i);
                match message.shape {
                    Shape::Time | Shape::MicroTime => return self.time(v),
                    Shape::Quantity if v.len() < 0x7e => {
                        // `{1: string}` of under 128 bytes: lengths of one byte.
                        put_key(self.out, self.tag, WireType::Len);
                        self.out.reserve(v.len() + 3);
                        self.out
                            .extend_from_slice(&[v.len() as u8 + 2, 0x0a, v.len() as u8]);
                        self.out.extend_from_slice(v.as_bytes());
                        return Ok(());
                    }
                    _ => {}
                }
                let (parent, json) = (self.parent.name, self.json);
                self.nested()?.serialize_str(v).map_err(|e| match *e {
                    Error::Malformed {
                        field: "", what, ..
                    } => Box::new(Error::Malformed {
                        message: parent,
                        field: json,
                        what,
                    }),
                    other => Box::new(other),
                })
            }
            ty => Err(unsupported(
                self.parent,
                self.json,
                &format!("a string for a {ty:?} field"),
            )),
        }
    }

    fn serialize_bytes(self, v: &[u8]) -> Result<(), SerError> {
        match self.ty {
            Type::Bytes => {
                put_bytes(self.out, self.tag, v);
                Ok(())
            }
            ty => Err(unsupported(
                self.parent,
                self.json,
                &format!("bytes for a {ty:?} field"),
            )),
        }
    }

    fn serialize_none(self) -> Result<(), SerError> {
        Ok(())
    }

    fn serialize_some<T: ?Sized + Serialize>(self, value: &T) -> Result<(), SerError> {
        value.serialize(self)
    }

    fn serialize_unit(self) -> Result<(), SerError> {
        Ok(())
    }

    fn serialize_unit_struct(self, _: &'static str) -> Result<(), SerError> {
        Ok(())
    }

    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<(), SerError> {
        self.serialize_str(variant)
    }

    fn serialize_newtype_struct<T: ?Sized + Serialize>(
        self,
        name: &'static str,
        value: &T,
    ) -> Result<(), SerError> {
        match self.ty {
            // `Time`, `MicroTime` and `Quantity` hold a string, written by
            // `serialize_str` below without going through `MessageSer`.
            Type::Message(i)
                if !self.repeated
                    && !matches!(
                        table::message(i).shape,
                        Shape::Time | Shape::MicroTime | Shape::Quantity
                    ) =>
            {
                self.newtype_message(name, value)
            }
            _ => value.serialize(self),
        }
    }

    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<(), SerError> {
        Err(unsupported(self.parent, self.json, "an enum"))
    }

    fn serialize_seq(self, _: Option<usize>) -> Result<Compound<'o>, SerError> {
        if self.repeated {
            return Ok(Compound::Seq(SeqSer {
                out: self.out,
                start: 0,
                tag: self.tag,
                ty: self.ty,
                json: self.json,
                parent: self.parent,
                depth: self.depth,
            }));
        }
        self.nested()?.serialize_seq(None)
    }

    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, SerError> {
        Err(unsupported(self.parent, self.json, "a tuple"))
    }

    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, SerError> {
        Err(unsupported(self.parent, self.json, "a tuple"))
    }

    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, SerError> {
        Err(unsupported(self.parent, self.json, "an enum"))
    }

    fn serialize_map(self, _: Option<usize>) -> Result<Compound<'o>, SerError> {
        let value = match self.ty {
            Type::MapString => Type::String,
            Type::MapBytes => Type::Bytes,
            Type::MapMessage(i) => Type::Message(i),
            _ => return self.nested()?.serialize_map(None),
        };
        Ok(Compound::Map(MapSer {
            out: self.out,
            tag: self.tag,
            value,
            json: self.json,
            parent: self.parent,
            depth: self.depth,
            entry: 0,
        }))
    }

    fn serialize_struct(self, name: &'static str, len: usize) -> Result<Compound<'o>, SerError> {
        // The common case, a plain message field, without the steps through
        // `MessageSer` that the special shapes need.
        if let Type::Message(i) = self.ty {
            let message = table::message(i);
            if message.shape == Shape::Struct && self.depth < MAX_DEPTH {
                return Ok(Compound::Struct(StructSer::open(
                    self.out,
                    Some(self.tag),
                    message,
                    self.depth + 1,
                )));
            }
        }
        self.nested()?.serialize_struct(name, len)
    }

    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, SerError> {
        Err(unsupported(self.parent, self.json, "an enum"))
    }
}

/// The value of a message's field [`StructSer::key`], looked up only once
/// the value's serializer is called. One word, so that the code
/// monomorphized per value type — hundreds of copies for the k8s-openapi
/// types, `serialize_field` and each type's `Serialize` — holds a store of
/// the key and a call, and no lookup: the lookup and the write are in a few
/// shared copies ([`Slot::text`], [`Slot::scalar`], [`Slot::open`]), which
/// stay in the instruction cache.
pub(crate) struct Slot<'a, 'o>(&'a mut StructSer<'o>);

/// The value of the next element of a repeated field: as [`Slot`], one word.
pub(crate) struct Element<'a, 'o>(&'a mut SeqSer<'o>);

/// A scalar value, as [`Slot`] and [`Element`] hand it to their shared writer.
enum Scalar<'v> {
    Str(&'v str),
    Bool(bool),
    Int(i64),
    Uint(u64),
    Float(f64),
    Bytes(&'v [u8]),
    /// `None` or a unit: nothing to write.
    Nothing,
}

impl Scalar<'_> {
    #[inline(always)]
    fn write(self, field: FieldSer<'_>) -> Result<(), SerError> {
        match self {
            // The common case without a call.
            Scalar::Str(v) if field.ty == Type::String => {
                put_bytes(field.out, field.tag, v.as_bytes());
                Ok(())
            }
            Scalar::Str(v) => ser::Serializer::serialize_str(field, v),
            Scalar::Bool(v) => ser::Serializer::serialize_bool(field, v),
            Scalar::Int(v) => field.int(v),
            Scalar::Uint(v) => ser::Serializer::serialize_u64(field, v),
            Scalar::Float(v) => field.float(v),
            Scalar::Bytes(v) => ser::Serializer::serialize_bytes(field, v),
            Scalar::Nothing => Ok(()),
        }
    }
}

/// The start of a compound value.
#[derive(Clone, Copy)]
enum Open {
    Seq,
    Map,
    Struct(&'static str, usize),
}

impl Open {
    #[inline(always)]
    fn start(self, field: FieldSer<'_>) -> Result<Compound<'_>, SerError> {
        match self {
            Open::Seq => ser::Serializer::serialize_seq(field, None),
            Open::Map => ser::Serializer::serialize_map(field, None),
            Open::Struct(name, len) => ser::Serializer::serialize_struct(field, name, len),
        }
    }
}

/// A compound value for a key to skip (`apiVersion` and `kind`, strings).
#[cold]
fn not_skippable() -> SerError {
    Error::Custom("apiVersion or kind that is not a string".into()).into()
}

impl<'a> Slot<'a, '_> {
    #[inline]
    fn field(self) -> Result<Option<FieldSer<'a>>, SerError> {
        self.0.resolve()
    }

    #[inline]
    fn int(self, v: i64) -> Result<(), SerError> {
        self.scalar(Scalar::Int(v))
    }

    /// A string: the most common value, so its own copy.
    #[inline(never)]
    fn text(self, v: &str) -> Result<(), SerError> {
        match self.0.resolve()? {
            Some(field) => Scalar::Str(v).write(field),
            None => Ok(()),
        }
    }

    #[inline(never)]
    fn scalar(self, v: Scalar<'_>) -> Result<(), SerError> {
        match self.0.resolve()? {
            Some(field) => v.write(field),
            None => Ok(()),
        }
    }

    #[inline(never)]
    fn open(self, open: Open) -> Result<Compound<'a>, SerError> {
        match self.0.resolve()? {
            Some(field) => open.start(field),
            None => Err(not_skippable()),
        }
    }
}

impl<'a> Element<'a, '_> {
    #[inline]
    fn field(self) -> Result<Option<FieldSer<'a>>, SerError> {
        Ok(Some(self.0.element()))
    }

    #[inline]
    fn int(self, v: i64) -> Result<(), SerError> {
        self.scalar(Scalar::Int(v))
    }

    #[inline(never)]
    fn text(self, v: &str) -> Result<(), SerError> {
        Scalar::Str(v).write(self.0.element())
    }

    #[inline(never)]
    fn scalar(self, v: Scalar<'_>) -> Result<(), SerError> {
        v.write(self.0.element())
    }

    #[inline(never)]
    fn open(self, open: Open) -> Result<Compound<'a>, SerError> {
        open.start(self.0.element())
    }
}

/// `Serializer` methods of [`Slot`] and [`Element`] that are errors for
/// every field (tuples, enum variants with data): as [`FieldSer`]'s.
macro_rules! via_field {
    ($($name:ident($($arg:ident: $ty:ty),*);)*) => {
        $(#[cold]
        fn $name(self, $($arg: $ty),*) -> Result<Impossible<(), SerError>, SerError> {
            match self.field()? {
                Some(field) => ser::Serializer::$name(field, $($arg),*),
                None => Err(not_skippable()),
            }
        })*
    };
}

/// The `Serializer` impl of [`Slot`] and [`Element`]: each method a small
/// call into their shared `text`, `scalar` or `open`.
macro_rules! lazy_field_serializer {
    ($name:ident) => {
        impl<'a> ser::Serializer for $name<'a, '_> {
            type Ok = ();
            type Error = SerError;
            type SerializeSeq = Compound<'a>;
            type SerializeTuple = Impossible<(), SerError>;
            type SerializeTupleStruct = Impossible<(), SerError>;
            type SerializeTupleVariant = Impossible<(), SerError>;
            type SerializeMap = Compound<'a>;
            type SerializeStruct = Compound<'a>;
            type SerializeStructVariant = Impossible<(), SerError>;

            ints_via!(int: serialize_i8(i8), serialize_i16(i16), serialize_i32(i32),
                serialize_i64(i64), serialize_u8(u8), serialize_u16(u16), serialize_u32(u32));

            #[inline]
            fn serialize_u64(self, v: u64) -> Result<(), SerError> {
                self.scalar(Scalar::Uint(v))
            }

            #[inline]
            fn serialize_bool(self, v: bool) -> Result<(), SerError> {
                self.scalar(Scalar::Bool(v))
            }

            #[inline]
            fn serialize_f32(self, v: f32) -> Result<(), SerError> {
                self.scalar(Scalar::Float(f64::from(v)))
            }

            #[inline]
            fn serialize_f64(self, v: f64) -> Result<(), SerError> {
                self.scalar(Scalar::Float(v))
            }

            #[inline]
            fn serialize_char(self, v: char) -> Result<(), SerError> {
                self.text(v.encode_utf8(&mut [0; 4]))
            }

            #[inline]
            fn serialize_str(self, v: &str) -> Result<(), SerError> {
                self.text(v)
            }

            #[inline]
            fn serialize_bytes(self, v: &[u8]) -> Result<(), SerError> {
                self.scalar(Scalar::Bytes(v))
            }

            #[inline]
            fn serialize_none(self) -> Result<(), SerError> {
                self.scalar(Scalar::Nothing)
            }

            #[inline]
            fn serialize_some<T: ?Sized + Serialize>(self, value: &T) -> Result<(), SerError> {
                value.serialize(self)
            }

            #[inline]
            fn serialize_unit(self) -> Result<(), SerError> {
                self.scalar(Scalar::Nothing)
            }

            #[inline]
            fn serialize_unit_struct(self, _: &'static str) -> Result<(), SerError> {
                self.scalar(Scalar::Nothing)
            }

            #[inline]
            fn serialize_unit_variant(
                self,
                _: &'static str,
                _: u32,
                variant: &'static str,
            ) -> Result<(), SerError> {
                self.text(variant)
            }

            fn serialize_newtype_struct<T: ?Sized + Serialize>(
                self,
                name: &'static str,
                value: &T,
            ) -> Result<(), SerError> {
                match self.field()? {
                    Some(field) => ser::Serializer::serialize_newtype_struct(field, name, value),
                    None => Ok(()),
                }
            }

            #[cold]
            fn serialize_newtype_variant<T: ?Sized + Serialize>(
                self,
                name: &'static str,
                index: u32,
                variant: &'static str,
                value: &T,
            ) -> Result<(), SerError> {
                match self.field()? {
                    Some(field) => {
                        ser::Serializer::serialize_newtype_variant(field, name, index, variant, value)
                    }
                    None => Err(not_skippable()),
                }
            }

            #[inline]
            fn serialize_seq(self, _: Option<usize>) -> Result<Compound<'a>, SerError> {
                self.open(Open::Seq)
            }

            #[inline]
            fn serialize_map(self, _: Option<usize>) -> Result<Compound<'a>, SerError> {
                self.open(Open::Map)
            }

            #[inline]
            fn serialize_struct(
                self,
                name: &'static str,
                len: usize,
            ) -> Result<Compound<'a>, SerError> {
                self.open(Open::Struct(name, len))
            }

            via_field! {
                serialize_tuple(len: usize);
                serialize_tuple_struct(name: &'static str, len: usize);
                serialize_tuple_variant(name: &'static str, index: u32, variant: &'static str, len: usize);
                serialize_struct_variant(name: &'static str, index: u32, variant: &'static str, len: usize);
            }
        }
    };
}

lazy_field_serializer!(Slot);
lazy_field_serializer!(Element);

/// The compound values: a message's fields, a repeated field, a proto map.
pub(crate) enum Compound<'o> {
    Struct(StructSer<'o>),
    Seq(SeqSer<'o>),
    Map(MapSer<'o>),
    /// A JSON object or array held in a `RawJson` message's bytes (boxed:
    /// rare, and larger than the others).
    JsonMap(Box<(Sink<'o>, JsonMapSer, &'static Message)>),
    JsonSeq(Box<(Sink<'o>, JsonSeqSer, &'static Message)>),
}

type JsonMapSer = <serde_json::value::Serializer as ser::Serializer>::SerializeMap;
type JsonSeqSer = <serde_json::value::Serializer as ser::Serializer>::SerializeSeq;

/// Write a JSON value as the bytes of a `RawJson` message.
fn write_raw_json(
    sink: Sink<'_>,
    message: &'static Message,
    value: &serde_json::Value,
) -> Result<(), SerError> {
    let json = serde_json::to_vec(value).map_err(|e| Error::Malformed {
        message: message.name,
        field: "raw",
        what: e.to_string(),
    })?;
    let mut buf = Vec::with_capacity(json.len() + 6);
    if !value.is_null() {
        put_bytes(&mut buf, 1, &json);
    }
    sink.write(&buf);
    Ok(())
}

/// A message written in place into its parent's bytes.
pub(crate) struct StructSer<'o> {
    out: &'o mut Vec<u8>,
    /// Where the message's bytes start, when it is a length-delimited field
    /// (0 for a bare message: a field's bytes never start at 0).
    start: usize,
    /// The length placeholder before `start` is two bytes, not one.
    wide: bool,
    /// Where the message's bytes start inside a wrapper message
    /// (`JSONSchemaPropsOr*`) that holds it as a field (0: no wrapper).
    wrapped: usize,
    message: &'static Message,
    index: &'static Index,
    depth: usize,
    /// What few messages need, kept out of line.
    rare: Option<Box<RareState>>,
    /// The name of the field whose value is being written (see [`Slot`]).
    key: &'static str,
}

/// The state of a message written from a map (`serialize_key` then
/// `serialize_value`) or holding inline messages.
#[derive(Default)]
pub(crate) struct RareState {
    /// The key whose value comes next.
    key: Option<String>,
    /// The inline messages (Go structs embedded with `json:",inline"`) being written.
    inline: Vec<InlineBuf>,
}

/// The bytes of an inline message (a Go struct embedded with
/// `json:",inline"`, such as Volume's VolumeSource) being written.
pub(crate) struct InlineBuf {
    tag: u32,
    message: &'static Message,
    buf: Vec<u8>,
    inline: Vec<InlineBuf>,
}

impl<'o> StructSer<'o> {
    /// Start message `message`, bare or as field `tag` of the message
    /// being written in `out`. Its length placeholder is two bytes when the
    /// message took 128 bytes or more the last time one was written, so
    /// that most lengths are filled in without moving the bytes.
    #[inline]
    fn open(
        out: &'o mut Vec<u8>,
        tag: Option<u32>,
        message: &'static Message,
        depth: usize,
    ) -> Self {
        let index = message.index();
        let (start, wide) = match tag {
            None => (0, false),
            Some(tag) if index.is_long() => (open_len_wide(out, tag), true),
            Some(tag) => (open_len(out, tag), false),
        };
        StructSer {
            out,
            start,
            wide,
            wrapped: 0,
            message,
            index,
            depth,
            rare: None,
            key: "",
        }
    }

    /// The serializer of field [`StructSer::key`] (a name a `Serialize`
    /// impl passes), found by its address: one of this message's own
    /// fields or a field of an inline message in it; `None` for
    /// `apiVersion` and `kind`, which the envelope carries.
    ///
    /// Inline: each of [`Slot`]'s methods (one shared copy each) holds its
    /// own, so that the [`FieldSer`] it yields stays in registers.
    #[inline(always)]
    fn resolve(&mut self) -> Result<Option<FieldSer<'_>>, SerError> {
        let key = self.key;
        let found = self.index.by_static_json(key);
        self.resolve_found(Key::Static(key), found)
    }

    /// [`StructSer::resolve`] for a key found at `found` (its index, and
    /// whether it is the field itself rather than an inline message holding it).
    #[inline(always)]
    fn resolve_found(
        &mut self,
        key: Key<'_>,
        found: Option<(usize, bool)>,
    ) -> Result<Option<FieldSer<'_>>, SerError> {
        match found {
            Some((i, true)) => Ok(Some(FieldSer::of(self.out, self.message, i, self.depth))),
            Some((i, false)) => self.resolve_inline(key, i).map(Some),
            None if matches!(key.text(), "apiVersion" | "kind") => Ok(None),
            None => Err(no_field_number(self.message, key.text())),
        }
    }

    /// [`StructSer::resolve_found`] for a field of inline message field `i`.
    #[inline(never)]
    fn resolve_inline(&mut self, key: Key<'_>, i: usize) -> Result<FieldSer<'_>, SerError> {
        let message = self.message;
        let rare = self.rare.get_or_insert_with(Box::default);
        inline_field(message, i, &mut rare.inline, key, self.depth)
            .ok_or_else(|| no_field_number(message, key.text()))
    }

    fn finish(self) {
        let StructSer {
            out,
            start,
            wide,
            wrapped,
            message,
            index,
            rare,
            ..
        } = self;
        // Inline messages and map-written state, out of line: most
        // messages have neither (and then nothing is dropped here).
        if rare.is_some() || !index.inline.is_empty() {
            finish_rare(message, out, rare);
        }
        if wrapped != 0 {
            close_len(out, wrapped);
        }
        if start == 0 {
            return;
        }
        index.set_long(out.len() - start >= 0x80);
        if wide {
            close_len_wide(out, start);
        } else {
            close_len(out, start);
        }
    }
}

/// [`StructSer::finish`] for a message with inline fields or [`RareState`].
#[inline(never)]
fn finish_rare(message: &'static Message, out: &mut Vec<u8>, rare: Option<Box<RareState>>) {
    if !message.index().inline.is_empty() {
        let inline = rare.map(|rare| rare.inline).unwrap_or_default();
        flush_inline(message, out, inline);
    }
}

#[cold]
fn no_field_number(message: &'static Message, key: &str) -> SerError {
    Box::new(Error::Malformed {
        message: message.name,
        field: "",
        what: format!("field {key:?} has no protobuf field number"),
    })
}

/// An error of `serde_json` writing a `RawJson` message's value.
#[cold]
fn json_error(e: serde_json::Error) -> SerError {
    Box::new(Error::Custom(e.to_string()))
}

/// A field name a `Serialize` impl passed: a literal (found by its
/// address), or text (a key written through `SerializeMap`).
#[derive(Clone, Copy)]
enum Key<'k> {
    Static(&'static str),
    Text(&'k str),
}

impl<'k> Key<'k> {
    fn text(self) -> &'k str {
        match self {
            Key::Static(key) => key,
            Key::Text(key) => key,
        }
    }

    fn find(self, message: &'static Message) -> Option<(usize, bool)> {
        match self {
            Key::Static(key) => message.index().by_static_json(key),
            Key::Text(key) => message.index().by_json(key),
        }
    }
}

/// The serializer of field `key` in inline message field `i` of `message`
/// (a Go struct embedded with `json:",inline"`), or in an inline message
/// in that one, writing into the inline message's own bytes. `None` when
/// none has it.
fn inline_field<'b>(
    message: &'static Message,
    i: usize,
    inline: &'b mut Vec<InlineBuf>,
    key: Key<'_>,
    depth: usize,
) -> Option<FieldSer<'b>> {
    let field = &message.fields[i];
    let Type::Message(m) = field.ty else {
        return None;
    };
    let at = match inline.iter().position(|b| b.tag == field.tag) {
        Some(at) => at,
        None => {
            inline.push(InlineBuf {
                tag: field.tag,
                message: table::message(m),
                // Most inline messages are small volume sources.
                buf: Vec::with_capacity(128),
                inline: Vec::new(),
            });
            inline.len() - 1
        }
    };
    let entry = &mut inline[at];
    let inner = entry.message;
    match key.find(inner)? {
        (j, true) => Some(FieldSer::of(&mut entry.buf, inner, j, depth + 1)),
        (j, false) => inline_field(inner, j, &mut entry.inline, key, depth + 1),
    }
}

/// Append `message`'s inline fields to `buf`. Go writes an embedded struct
/// even when it is empty.
fn flush_inline(message: &'static Message, buf: &mut Vec<u8>, mut inline: Vec<InlineBuf>) {
    for &i in message.index().inline.iter() {
        let field = &message.fields[usize::from(i)];
        match inline.iter().position(|b| b.tag == field.tag) {
            Some(at) => {
                let mut entry = inline.swap_remove(at);
                flush_inline(
                    entry.message,
                    &mut entry.buf,
                    std::mem::take(&mut entry.inline),
                );
                put_bytes(buf, field.tag, &entry.buf);
            }
            None => put_bytes(buf, field.tag, &[]),
        }
    }
}

/// A repeated field (its elements written in place), or a message holding one.
pub(crate) struct SeqSer<'o> {
    out: &'o mut Vec<u8>,
    /// Where the holding message's bytes start, if there is one (else 0).
    start: usize,
    tag: u32,
    ty: Type,
    json: &'static str,
    parent: &'static Message,
    depth: usize,
}

impl SeqSer<'_> {
    /// The serializer of the next element.
    #[inline]
    fn element(&mut self) -> FieldSer<'_> {
        FieldSer {
            out: self.out,
            tag: self.tag,
            ty: self.ty,
            json: self.json,
            repeated: false,
            parent: self.parent,
            depth: self.depth,
        }
    }
}

pub(crate) struct MapSer<'o> {
    out: &'o mut Vec<u8>,
    tag: u32,
    value: Type,
    json: &'static str,
    parent: &'static Message,
    depth: usize,
    /// Where the bytes of the entry whose key is written start (0: none).
    entry: usize,
}

impl MapSer<'_> {
    /// Open an entry and write its key (field 1) in place.
    fn key<T: ?Sized + Serialize>(&mut self, key: &T) -> Result<(), SerError> {
        let start = open_len(self.out, self.tag);
        key.serialize(MapKeySer {
            out: self.out,
            parent: self.parent,
            json: self.json,
        })?;
        self.entry = start;
        Ok(())
    }

    /// Write the value of the open entry (field 2) and close it.
    fn value<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), SerError> {
        let start = std::mem::take(&mut self.entry);
        if start == 0 {
            return Err(Error::Custom("map value before its key".into()).into());
        }
        value.serialize(FieldSer {
            out: self.out,
            tag: 2,
            ty: self.value,
            json: self.json,
            repeated: false,
            parent: self.parent,
            depth: self.depth,
        })?;
        close_len(self.out, start);
        Ok(())
    }
}

/// The rest of a serializer that takes only a string (a map key): a
/// `char` or a unit variant as its text, a newtype as its value, anything
/// else an error from `self.not_a_string()`. The impl writes `serialize_str`.
macro_rules! only_a_string {
    () => {
        type Ok = ();
        type Error = SerError;
        type SerializeSeq = Impossible<(), SerError>;
        type SerializeTuple = Impossible<(), SerError>;
        type SerializeTupleStruct = Impossible<(), SerError>;
        type SerializeTupleVariant = Impossible<(), SerError>;
        type SerializeMap = Impossible<(), SerError>;
        type SerializeStruct = Impossible<(), SerError>;
        type SerializeStructVariant = Impossible<(), SerError>;

        fn serialize_char(self, v: char) -> Result<(), SerError> {
            self.serialize_str(v.encode_utf8(&mut [0; 4]))
        }

        fn serialize_unit_variant(
            self,
            _: &'static str,
            _: u32,
            variant: &'static str,
        ) -> Result<(), SerError> {
            self.serialize_str(variant)
        }

        fn serialize_newtype_struct<T: ?Sized + Serialize>(
            self,
            _: &'static str,
            value: &T,
        ) -> Result<(), SerError> {
            value.serialize(self)
        }

        key_not_string!(
            serialize_bool(bool),
            serialize_i8(i8),
            serialize_i16(i16),
            serialize_i32(i32),
            serialize_i64(i64),
            serialize_u8(u8),
            serialize_u16(u16),
            serialize_u32(u32),
            serialize_u64(u64),
            serialize_f32(f32),
            serialize_f64(f64),
            serialize_bytes(&[u8])
        );

        fn serialize_none(self) -> Result<(), SerError> {
            Err(self.not_a_string())
        }

        fn serialize_some<T: ?Sized + Serialize>(self, _: &T) -> Result<(), SerError> {
            Err(self.not_a_string())
        }

        fn serialize_unit(self) -> Result<(), SerError> {
            Err(self.not_a_string())
        }

        fn serialize_unit_struct(self, _: &'static str) -> Result<(), SerError> {
            Err(self.not_a_string())
        }

        fn serialize_newtype_variant<T: ?Sized + Serialize>(
            self,
            _: &'static str,
            _: u32,
            _: &'static str,
            _: &T,
        ) -> Result<(), SerError> {
            Err(self.not_a_string())
        }

        fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, SerError> {
            Err(self.not_a_string())
        }

        fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, SerError> {
            Err(self.not_a_string())
        }

        fn serialize_tuple_struct(
            self,
            _: &'static str,
            _: usize,
        ) -> Result<Self::SerializeTupleStruct, SerError> {
            Err(self.not_a_string())
        }

        fn serialize_tuple_variant(
            self,
            _: &'static str,
            _: u32,
            _: &'static str,
            _: usize,
        ) -> Result<Self::SerializeTupleVariant, SerError> {
            Err(self.not_a_string())
        }

        fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, SerError> {
            Err(self.not_a_string())
        }

        fn serialize_struct(
            self,
            _: &'static str,
            _: usize,
        ) -> Result<Self::SerializeStruct, SerError> {
            Err(self.not_a_string())
        }

        fn serialize_struct_variant(
            self,
            _: &'static str,
            _: u32,
            _: &'static str,
            _: usize,
        ) -> Result<Self::SerializeStructVariant, SerError> {
            Err(self.not_a_string())
        }
    };
}

macro_rules! key_not_string {
    ($($name:ident($ty:ty)),*) => {
        $(fn $name(self, _: $ty) -> Result<(), SerError> {
            Err(self.not_a_string())
        })*
    };
}

impl<'o> MapSer<'o> {
    /// One whole entry. A `map<string, string>` entry (labels, annotations,
    /// selectors) goes through [`EntryKeySer`] and [`EntryValueSer`], which
    /// hold the key's text until the value's is known: then the entry is
    /// written length first, in one reservation.
    #[inline]
    fn entry<K: ?Sized + Serialize, V: ?Sized + Serialize>(
        &mut self,
        key: &K,
        value: &V,
    ) -> Result<(), SerError> {
        if self.value == Type::String && self.entry == 0 {
            return key.serialize(EntryKeySer { map: self, value });
        }
        self.key(key)?;
        self.value(value)
    }
}

/// The key of a `map<string, string>` entry: as [`MapKeySer`], but the
/// key's text goes on to the value's serializer instead of being written.
struct EntryKeySer<'m, 'o, V: ?Sized> {
    map: &'m mut MapSer<'o>,
    value: &'m V,
}

impl<V: ?Sized> EntryKeySer<'_, '_, V> {
    fn not_a_string(&self) -> SerError {
        unsupported(
            self.map.parent,
            self.map.json,
            "a map key that is not a string",
        )
    }
}

/// The value of a `map<string, string>` entry whose key is `key`.
struct EntryValueSer<'m, 'o, 'k> {
    map: &'m mut MapSer<'o>,
    key: &'k str,
}

impl EntryValueSer<'_, '_, '_> {
    /// Any value but a short string: the entry opened, its key written,
    /// the value written as any string field's would be, the entry closed.
    #[inline(never)]
    fn general(
        self,
        value: impl FnOnce(FieldSer<'_>) -> Result<(), SerError>,
    ) -> Result<(), SerError> {
        let map = self.map;
        let start = open_len(map.out, map.tag);
        put_bytes(map.out, 1, self.key.as_bytes());
        value(FieldSer {
            out: map.out,
            tag: 2,
            ty: Type::String,
            json: map.json,
            repeated: false,
            parent: map.parent,
            depth: map.depth,
        })?;
        close_len(map.out, start);
        Ok(())
    }

    #[cold]
    fn not_a_string(&self, what: &str) -> SerError {
        unsupported(
            self.map.parent,
            self.map.json,
            &format!("{what} for a String field"),
        )
    }
}

macro_rules! entry_value_via_field {
    ($($name:ident($ty:ty)),*) => {
        $(fn $name(self, v: $ty) -> Result<(), SerError> {
            self.general(|field| ser::Serializer::$name(field, v))
        })*
    };
}

macro_rules! entry_value_compound_is_error {
    ($($name:ident($($ty:ty),*) -> $ret:ident: $what:literal),*) => {
        $(fn $name(self, $(_: $ty),*) -> Result<Self::$ret, SerError> {
            Err(self.not_a_string($what))
        })*
    };
}

impl ser::Serializer for EntryValueSer<'_, '_, '_> {
    type Ok = ();
    type Error = SerError;
    type SerializeSeq = Impossible<(), SerError>;
    type SerializeTuple = Impossible<(), SerError>;
    type SerializeTupleStruct = Impossible<(), SerError>;
    type SerializeTupleVariant = Impossible<(), SerError>;
    type SerializeMap = Impossible<(), SerError>;
    type SerializeStruct = Impossible<(), SerError>;
    type SerializeStructVariant = Impossible<(), SerError>;

    #[inline]
    fn serialize_str(self, v: &str) -> Result<(), SerError> {
        let (key, value) = (self.key.as_bytes(), v.as_bytes());
        let tag = (self.map.tag << 3) | 2;
        // `{1: key, 2: value}`: 4 bytes of keys and lengths, one byte each
        // when the entry is under 128 bytes.
        let len = key.len() + value.len() + 4;
        if len < 0x80 && tag < 0x80 {
            let out = &mut *self.map.out;
            out.reserve(len + 2);
            out.extend_from_slice(&[tag as u8, len as u8, 0x0a, key.len() as u8]);
            out.extend_from_slice(key);
            out.extend_from_slice(&[0x12, value.len() as u8]);
            out.extend_from_slice(value);
            return Ok(());
        }
        self.general(|field| ser::Serializer::serialize_str(field, v))
    }

    fn serialize_char(self, v: char) -> Result<(), SerError> {
        self.serialize_str(v.encode_utf8(&mut [0; 4]))
    }

    entry_value_via_field!(
        serialize_bool(bool),
        serialize_i8(i8),
        serialize_i16(i16),
        serialize_i32(i32),
        serialize_i64(i64),
        serialize_u8(u8),
        serialize_u16(u16),
        serialize_u32(u32),
        serialize_u64(u64),
        serialize_f32(f32),
        serialize_f64(f64),
        serialize_bytes(&[u8]),
        serialize_unit_struct(&'static str)
    );

    fn serialize_none(self) -> Result<(), SerError> {
        self.general(|field| ser::Serializer::serialize_none(field))
    }

    fn serialize_some<T: ?Sized + Serialize>(self, value: &T) -> Result<(), SerError> {
        value.serialize(self)
    }

    fn serialize_unit(self) -> Result<(), SerError> {
        self.general(|field| ser::Serializer::serialize_unit(field))
    }

    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<(), SerError> {
        self.serialize_str(variant)
    }

    fn serialize_newtype_struct<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<(), SerError> {
        // As a string field's: the value itself.
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<(), SerError> {
        Err(self.not_a_string("an enum"))
    }

    entry_value_compound_is_error!(
        serialize_seq(Option<usize>) -> SerializeSeq: "an array",
        serialize_tuple(usize) -> SerializeTuple: "a tuple",
        serialize_tuple_struct(&'static str, usize) -> SerializeTupleStruct: "a tuple",
        serialize_tuple_variant(&'static str, u32, &'static str, usize) -> SerializeTupleVariant: "an enum",
        serialize_map(Option<usize>) -> SerializeMap: "an object",
        serialize_struct(&'static str, usize) -> SerializeStruct: "an object",
        serialize_struct_variant(&'static str, u32, &'static str, usize) -> SerializeStructVariant: "an enum"
    );
}

impl<V: ?Sized + Serialize> ser::Serializer for EntryKeySer<'_, '_, V> {
    #[inline]
    fn serialize_str(self, v: &str) -> Result<(), SerError> {
        self.value.serialize(EntryValueSer {
            map: self.map,
            key: v,
        })
    }

    only_a_string!();
}

/// A proto map's key, written as field 1 of its entry: a string (or
/// anything serde writes as one, such as a unit enum variant).
struct MapKeySer<'o> {
    out: &'o mut Vec<u8>,
    parent: &'static Message,
    json: &'static str,
}

impl MapKeySer<'_> {
    fn not_a_string(&self) -> SerError {
        unsupported(self.parent, self.json, "a map key that is not a string")
    }
}

impl ser::Serializer for MapKeySer<'_> {
    fn serialize_str(self, v: &str) -> Result<(), SerError> {
        put_bytes(self.out, 1, v.as_bytes());
        Ok(())
    }

    only_a_string!();
}

fn key_string<T: ?Sized + Serialize>(
    key: &T,
    message: &'static Message,
    field: &'static str,
) -> Result<String, SerError> {
    match key.serialize(serde_json::value::Serializer) {
        Ok(serde_json::Value::String(s)) => Ok(s),
        _ => Err(unsupported(
            message,
            field,
            "a map key that is not a string",
        )),
    }
}

// The `Compound` methods below are generic over the value and so
// monomorphized once per field type of every k8s-openapi struct (hundreds
// of copies in a program that encodes Pods). Each keeps only its common
// case inline — a message's field, a repeated field's element, a proto map
// entry — and leaves every other variant to an out-of-line function: with
// every arm inline, each copy held the value's serialization three or four
// times over (2.6 KB a copy, 0.8 MB in all), and the walk ran out of the
// instruction cache (callgrind: 4x JSON's I1 misses). A message's field is
// a store of its key and a call through [`Slot`], which looks it up in
// shared code: looking it up here put the lookup and a 7-word `FieldSer`
// into each of this method's copies (~370 bytes each), and a Pod's hot
// code was 80 KB against JSON's 41 KB; now 62 KB (BENCHMARKS.md, session 7).

impl ser::SerializeStruct for Compound<'_> {
    type Ok = ();
    type Error = SerError;

    #[inline]
    fn serialize_field<T: ?Sized + Serialize>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), SerError> {
        if let Compound::Struct(s) = self {
            s.key = key;
            return value.serialize(Slot(s));
        }
        self.other_field(key, value)
    }

    fn end(self) -> Result<(), SerError> {
        ser::SerializeSeq::end(self)
    }
}

impl Compound<'_> {
    /// [`ser::SerializeStruct::serialize_field`] but for a message's own field.
    #[cold]
    #[inline(never)]
    fn other_field<T: ?Sized + Serialize>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), SerError> {
        match self {
            Compound::Struct(s) => {
                s.key = key;
                value.serialize(Slot(s))
            }
            Compound::Map(m) => {
                m.key(key)?;
                m.value(value)
            }
            Compound::JsonMap(j) => {
                ser::SerializeStruct::serialize_field(&mut j.1, key, value).map_err(json_error)
            }
            Compound::Seq(s) => Err(unsupported(s.parent, s.json, "an object")),
            Compound::JsonSeq(..) => {
                Err(Error::Custom("an object field in a JSON array".into()).into())
            }
        }
    }

    /// [`ser::SerializeMap::serialize_key`] but for a proto map's.
    #[cold]
    #[inline(never)]
    fn other_key<T: ?Sized + Serialize>(&mut self, key: &T) -> Result<(), SerError> {
        match self {
            Compound::Struct(s) => {
                let key = key_string(key, s.message, "")?;
                s.rare.get_or_insert_with(Box::default).key = Some(key);
            }
            Compound::Map(m) => m.key(key)?,
            Compound::JsonMap(j) => {
                ser::SerializeMap::serialize_key(&mut j.1, key).map_err(json_error)?
            }
            Compound::Seq(s) => return Err(unsupported(s.parent, s.json, "an object")),
            Compound::JsonSeq(..) => {
                return Err(Error::Custom("a key in a JSON array".into()).into());
            }
        }
        Ok(())
    }

    /// [`ser::SerializeMap::serialize_value`] but for a proto map's.
    #[cold]
    #[inline(never)]
    fn other_value<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), SerError> {
        match self {
            Compound::Struct(s) => {
                let key = s
                    .rare
                    .as_mut()
                    .and_then(|r| r.key.take())
                    .unwrap_or_default();
                let found = s.index.by_json(&key);
                match s.resolve_found(Key::Text(&key), found)? {
                    Some(field) => value.serialize(field),
                    None => Ok(()),
                }
            }
            Compound::Map(m) => m.value(value),
            Compound::JsonMap(j) => {
                ser::SerializeMap::serialize_value(&mut j.1, value).map_err(json_error)
            }
            Compound::Seq(s) => Err(unsupported(s.parent, s.json, "an object")),
            Compound::JsonSeq(..) => Err(Error::Custom("a value in a JSON array".into()).into()),
        }
    }

    /// [`ser::SerializeSeq::serialize_element`] but for a repeated field's.
    #[cold]
    #[inline(never)]
    fn other_element<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), SerError> {
        match self {
            Compound::Seq(s) => value.serialize(s.element()),
            Compound::JsonSeq(j) => {
                ser::SerializeSeq::serialize_element(&mut j.1, value).map_err(json_error)
            }
            Compound::Struct(s) => Err(unsupported(s.message, "", "an array")),
            Compound::Map(m) => Err(unsupported(m.parent, m.json, "an array")),
            Compound::JsonMap(..) => {
                Err(Error::Custom("an element in a JSON object".into()).into())
            }
        }
    }
}

impl ser::SerializeMap for Compound<'_> {
    type Ok = ();
    type Error = SerError;

    #[inline]
    fn serialize_key<T: ?Sized + Serialize>(&mut self, key: &T) -> Result<(), SerError> {
        if let Compound::Map(m) = self {
            return m.key(key);
        }
        self.other_key(key)
    }

    #[inline]
    fn serialize_value<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), SerError> {
        if let Compound::Map(m) = self {
            return m.value(value);
        }
        self.other_value(value)
    }

    #[inline]
    fn serialize_entry<K: ?Sized + Serialize, V: ?Sized + Serialize>(
        &mut self,
        key: &K,
        value: &V,
    ) -> Result<(), SerError> {
        if let Compound::Map(m) = self {
            return m.entry(key, value);
        }
        self.other_key(key)?;
        self.other_value(value)
    }

    fn end(self) -> Result<(), SerError> {
        ser::SerializeSeq::end(self)
    }
}

impl ser::SerializeSeq for Compound<'_> {
    type Ok = ();
    type Error = SerError;

    #[inline]
    fn serialize_element<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), SerError> {
        if let Compound::Seq(s) = self {
            return value.serialize(Element(s));
        }
        self.other_element(value)
    }

    fn end(self) -> Result<(), SerError> {
        match self {
            Compound::Struct(s) => s.finish(),
            Compound::Seq(s) => {
                if s.start != 0 {
                    close_len(s.out, s.start);
                }
            }
            Compound::Map(_) => {}
            Compound::JsonMap(j) => {
                let (sink, m, message) = *j;
                let value = ser::SerializeMap::end(m).map_err(json_error)?;
                write_raw_json(sink, message, &value)?;
            }
            Compound::JsonSeq(j) => {
                let (sink, seq, message) = *j;
                let value = ser::SerializeSeq::end(seq).map_err(json_error)?;
                write_raw_json(sink, message, &value)?;
            }
        }
        Ok(())
    }
}

impl ser::Error for Error {
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        Error::Custom(msg.to_string())
    }
}

impl ser::Error for SerError {
    #[cold]
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        Box::new(Error::Custom(msg.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::Pod;
    use serde_json::json;

    use super::super::wire::put_bytes;
    use super::super::{MAGIC, decode, encode, encode_message};

    /// Pods of different sizes and shapes, so that the encoder's shared
    /// caches (field addresses, each message kind's long-length guess, the
    /// body size) see alike and unlike objects in turn: short and long
    /// names, inline volume sources, managedFields (`FieldsV1`), maps,
    /// times, quantities, numbers and strings for `IntOrString`.
    fn pods() -> Vec<Pod> {
        (0..23)
            .map(|i| {
                let long = "x".repeat(if i % 3 == 0 { 300 } else { i });
                let containers: Vec<_> = (0..1 + i % 4)
                    .map(|c| {
                        json!({
                            "name": format!("c{c}-{long}"),
                            "image": format!("registry.example/app:{i}.{c}"),
                            "ports": [{"containerPort": 8000 + c, "protocol": "TCP"}],
                            "resources": {"limits": {"cpu": format!("{}m", 100 * (c + 1)), "memory": "64Mi"}},
                            "readinessProbe": {"httpGet": {"path": "/healthz", "port": if c % 2 == 0 { json!(8080) } else { json!("http") }}},
                        })
                    })
                    .collect();
                let mut volumes = vec![json!({"name": "config", "configMap": {"name": format!("cm-{long}")}})];
                if i % 2 == 0 {
                    volumes.push(json!({"name": "token", "projected": {"sources": [
                        {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                        {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                    ]}}));
                }
                let mut pod = json!({
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "metadata": {
                        "name": format!("pod-{i}-{long}"),
                        "namespace": "default",
                        "labels": {"app": "web", "index": i.to_string()},
                        "creationTimestamp": "2024-05-06T07:08:09Z",
                    },
                    "spec": {"containers": containers, "volumes": volumes, "nodeName": format!("node-{}", i % 5)},
                    "status": {
                        "phase": "Running",
                        "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2024-05-06T07:08:10Z"}],
                    },
                });
                if i % 4 != 1 {
                    pod["metadata"]["managedFields"] = json!([{
                        "manager": "kubectl",
                        "operation": "Update",
                        "apiVersion": "v1",
                        "time": "2024-05-06T07:08:09Z",
                        "fieldsType": "FieldsV1",
                        "fieldsV1": {"f:metadata": {"f:labels": {".": {}, "f:app": {}}}, "f:spec": {"f:nodeName": {}, "f:note": long}},
                    }]);
                }
                serde_json::from_value(pod).expect("a Pod")
            })
            .collect()
    }

    #[test]
    fn protobuf_encode_from_many_threads_matches_one_thread() {
        let pods = pods();
        let expected: Vec<Vec<u8>> = pods.iter().map(|pod| encode(pod).unwrap()).collect();
        for (pod, body) in pods.iter().zip(&expected) {
            assert_eq!(&decode::<Pod>(body).unwrap(), pod, "round trip");
        }
        std::thread::scope(|scope| {
            for t in 0..4 {
                let (pods, expected) = (&pods, &expected);
                scope.spawn(move || {
                    // Each thread walks the Pods in its own order, so the
                    // caches are written by unlike objects at once.
                    for round in 0..50 {
                        for k in 0..pods.len() {
                            let i = (k * (2 * t + 1) + round) % pods.len();
                            assert_eq!(
                                encode(&pods[i]).unwrap(),
                                expected[i],
                                "thread {t}, round {round}, Pod {i}"
                            );
                        }
                    }
                });
            }
        });
        // And alone again, after the threads left the caches as they did.
        for (pod, body) in pods.iter().zip(&expected).rev() {
            assert_eq!(&encode(pod).unwrap(), body);
        }
    }

    /// The whole body as Go writes it, each length before its bytes: the
    /// bare message (which no guess of the body's size touches) wrapped in
    /// the envelope.
    fn length_first(pod: &Pod) -> Vec<u8> {
        let raw = encode_message("k8s.io.api.core.v1.Pod", pod).unwrap();
        let mut type_meta = Vec::new();
        put_bytes(&mut type_meta, 1, b"v1");
        put_bytes(&mut type_meta, 2, b"Pod");
        let mut body = MAGIC.to_vec();
        put_bytes(&mut body, 1, &type_meta);
        put_bytes(&mut body, 2, &raw);
        put_bytes(&mut body, 3, b"");
        put_bytes(&mut body, 4, b"");
        body
    }

    #[test]
    fn protobuf_encode_envelope_is_length_first_whatever_the_last_size() {
        // Bodies whose `raw` length takes one, two and three bytes, in an
        // order that makes every guess (from the body before) wrong in
        // each direction, and right.
        let sizes = [
            0usize, 20_000, 20_000, 200, 0, 200, 200, 20_000, 0, 0, 100, 16_300,
        ];
        for (n, size) in sizes.into_iter().enumerate() {
            let pod: Pod = serde_json::from_value(json!({
                "metadata": {"name": "web", "annotations": {"note": "x".repeat(size)}},
            }))
            .unwrap();
            let body = encode(&pod).unwrap();
            assert_eq!(body, length_first(&pod), "body {n}, {size}-byte annotation");
            assert_eq!(decode::<Pod>(&body).unwrap(), pod);
        }
    }

    /// `ObjectMeta` holding only these labels, as written length first.
    fn labels_length_first(labels: &[(&str, Option<&str>)]) -> Vec<u8> {
        let mut expected = Vec::new();
        for (key, value) in labels {
            let mut entry = Vec::new();
            put_bytes(&mut entry, 1, key.as_bytes());
            if let Some(value) = value {
                put_bytes(&mut entry, 2, value.as_bytes());
            }
            put_bytes(&mut expected, 11, &entry);
        }
        expected
    }

    #[test]
    fn protobuf_map_string_entries_match_length_first() {
        // Entries under 128 bytes take the one-piece path; from 128 bytes
        // (key + value + 4) on, the general one.
        let (k60, v60, k62, v62) = (
            "k".repeat(60),
            "v".repeat(60),
            "K".repeat(62),
            "V".repeat(62),
        );
        let (k200, v300) = ("l".repeat(200), "w".repeat(300));
        let labels = [
            ("", Some("")),
            ("a", Some("b")),
            (k60.as_str(), Some(v60.as_str())),
            (k62.as_str(), Some(v62.as_str())),
            (k200.as_str(), Some("x")),
            ("y", Some(v300.as_str())),
        ];
        let mut sorted = labels.to_vec();
        sorted.sort();
        let meta: serde_json::Value = json!({
            "labels": sorted.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>(),
        });
        let typed: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta =
            serde_json::from_value(meta.clone()).unwrap();
        let name = "k8s.io.apimachinery.pkg.apis.meta.v1.ObjectMeta";
        let expected = labels_length_first(&sorted);
        assert_eq!(
            encode_message(name, &typed).unwrap(),
            expected,
            "BTreeMap<String, String>"
        );
        assert_eq!(
            encode_message(name, &meta).unwrap(),
            expected,
            "a JSON object"
        );
    }

    #[test]
    fn protobuf_map_string_entries_of_other_values_take_the_general_path() {
        let name = "k8s.io.apimachinery.pkg.apis.meta.v1.ObjectMeta";
        // `null` is no value (the entry holds its key only), as a string
        // field's `None` is no field.
        let meta = json!({"labels": {"a": null, "b": "c"}});
        assert_eq!(
            encode_message(name, &meta).unwrap(),
            labels_length_first(&[("a", None), ("b", Some("c"))])
        );
        // A number is no string: an error naming the field, not a panic.
        let err = encode_message(name, &json!({"labels": {"a": 1}})).unwrap_err();
        assert!(err.to_string().contains("labels"), "{err}");
        let err = encode_message(name, &json!({"labels": {"a": ["b"]}})).unwrap_err();
        assert!(err.to_string().contains("labels"), "{err}");
    }

    /// A struct of its own fields, as a `Serialize` impl passes them: by
    /// `serialize_field` with `&'static str` keys (the [`super::Slot`] path).
    #[derive(serde::Serialize)]
    struct Meta<K> {
        name: &'static str,
        kind: K,
        #[serde(rename = "generateName")]
        generate_name: Option<&'static str>,
    }

    #[test]
    fn protobuf_encode_skips_a_string_kind_and_refuses_any_other() {
        let meta = "k8s.io.apimachinery.pkg.apis.meta.v1.ObjectMeta";
        let bare = encode_message(meta, &json!({"name": "a"})).unwrap();
        let with_kind = Meta {
            name: "a",
            kind: "Pod",
            generate_name: None,
        };
        assert_eq!(encode_message(meta, &with_kind).unwrap(), bare);
        let kinds = std::collections::BTreeMap::from([("a", "b")]);
        let err = encode_message(
            meta,
            &Meta {
                name: "a",
                kind: kinds,
                generate_name: None,
            },
        )
        .unwrap_err();
        assert!(err.to_string().contains("not a string"), "{err}");
    }

    #[test]
    fn protobuf_encode_a_field_the_schema_lacks_is_an_error_even_when_none() {
        #[derive(serde::Serialize)]
        struct Stray {
            name: &'static str,
            stray: Option<&'static str>,
        }
        let meta = "k8s.io.apimachinery.pkg.apis.meta.v1.ObjectMeta";
        for stray in [None, Some("x")] {
            let err = encode_message(meta, &Stray { name: "a", stray }).unwrap_err();
            assert!(err.to_string().contains("\"stray\""), "{err}");
        }
        // A field it has, given as `None`, writes nothing.
        let none = Meta {
            name: "a",
            kind: "Pod",
            generate_name: None,
        };
        let some = Meta {
            generate_name: Some("g-"),
            ..none
        };
        let (none, some) = (
            encode_message(meta, &none).unwrap(),
            encode_message(meta, &some).unwrap(),
        );
        assert_eq!(some.len(), none.len() + 4, "{some:?} {none:?}");
    }

    #[test]
    fn protobuf_encode_inline_fields_alike_by_struct_keys_and_map_keys() {
        use k8s_openapi::api::core::v1::Volume;
        let volume = json!({
            "name": "v",
            "configMap": {"name": "c", "defaultMode": 420},
        });
        let typed: Volume = serde_json::from_value(volume.clone()).unwrap();
        let name = "k8s.io.api.core.v1.Volume";
        // `Volume`'s own `Serialize` (static keys) and a JSON object (keys
        // as text, through `SerializeMap`) reach `VolumeSource` alike.
        let by_struct = encode_message(name, &typed).unwrap();
        assert_eq!(encode_message(name, &volume).unwrap(), by_struct);
        let back: Volume = super::super::decode_message(name, &by_struct).unwrap();
        assert_eq!(back, typed);
        let err = encode_message(name, &json!({"name": "v", "nowhere": 1})).unwrap_err();
        assert!(err.to_string().contains("nowhere"), "{err}");
    }
}
