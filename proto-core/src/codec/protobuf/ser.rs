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
use super::table::{self, Message, Shape, Type};
use super::wire::{WireType, put_bytes, put_key, put_varint};

/// Where a finished message goes: appended bare, or as a length-delimited field.
pub(crate) enum Sink<'o> {
    Bare(&'o mut Vec<u8>),
    Field(&'o mut Vec<u8>, u32),
}

impl Sink<'_> {
    fn write(self, bytes: &[u8]) {
        match self {
            Sink::Bare(out) => out.extend_from_slice(bytes),
            Sink::Field(out, tag) => put_bytes(out, tag, bytes),
        }
    }
}

fn unsupported(message: &'static Message, field: &'static str, what: &str) -> Error {
    Error::Malformed {
        message: message.name,
        field,
        what: format!("cannot encode {what} here"),
    }
}

/// One message-typed value.
pub(crate) struct MessageSer<'o> {
    pub sink: Sink<'o>,
    pub message: &'static Message,
    pub depth: usize,
}

impl<'o> MessageSer<'o> {
    fn int(self, v: i64) -> Result<(), Error> {
        if self.message.shape != Shape::IntOrString {
            return Err(unsupported(self.message, "", "a number"));
        }
        let mut buf = Vec::with_capacity(8);
        put_key(&mut buf, 1, WireType::Varint);
        put_varint(&mut buf, 0);
        put_key(&mut buf, 2, WireType::Varint);
        put_varint(&mut buf, i64::from(v as i32) as u64);
        put_bytes(&mut buf, 3, b"");
        self.sink.write(&buf);
        Ok(())
    }

    fn child(&self, tag: u32) -> Result<&'static Message, Error> {
        match self.message.field_by_tag(tag).map(|(_, f)| f.ty) {
            Some(Type::Message(i)) => Ok(table::message(i)),
            _ => Err(unsupported(self.message, "", "a schema")),
        }
    }

    fn object(self) -> Result<Compound<'o>, Error> {
        if self.depth > MAX_DEPTH {
            return Err(Error::TooDeep {
                message: self.message.name,
                limit: MAX_DEPTH,
            });
        }
        let (message, wrap) = match self.message.shape {
            Shape::Struct => (self.message, None),
            Shape::SchemaOrBool => (self.child(2)?, Some(2)),
            Shape::SchemaOrArray | Shape::SchemaOrStringArray => (self.child(1)?, Some(1)),
            _ => return Err(unsupported(self.message, "", "an object")),
        };
        Ok(Compound::Struct(StructSer {
            sink: self.sink,
            buf: Vec::new(),
            message,
            depth: self.depth,
            wrap,
            key: None,
            inline: Vec::new(),
        }))
    }
}

macro_rules! ints_via {
    ($via:ident: $($name:ident($ty:ty)),*) => {
        $(fn $name(self, v: $ty) -> Result<(), Error> {
            self.$via(v as i64)
        })*
    };
}

impl<'o> ser::Serializer for MessageSer<'o> {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = Compound<'o>;
    type SerializeTuple = Impossible<(), Error>;
    type SerializeTupleStruct = Impossible<(), Error>;
    type SerializeTupleVariant = Impossible<(), Error>;
    type SerializeMap = Compound<'o>;
    type SerializeStruct = Compound<'o>;
    type SerializeStructVariant = Impossible<(), Error>;

    ints_via!(int: serialize_i8(i8), serialize_i16(i16), serialize_i32(i32), serialize_i64(i64),
        serialize_u8(u8), serialize_u16(u16), serialize_u32(u32), serialize_u64(u64));

    fn serialize_bool(self, v: bool) -> Result<(), Error> {
        if self.message.shape != Shape::SchemaOrBool {
            return Err(unsupported(self.message, "", "a bool"));
        }
        let mut buf = Vec::with_capacity(2);
        put_key(&mut buf, 1, WireType::Varint);
        put_varint(&mut buf, u64::from(v));
        self.sink.write(&buf);
        Ok(())
    }

    fn serialize_f32(self, _: f32) -> Result<(), Error> {
        Err(unsupported(self.message, "", "a number"))
    }

    fn serialize_f64(self, _: f64) -> Result<(), Error> {
        Err(unsupported(self.message, "", "a number"))
    }

    fn serialize_char(self, v: char) -> Result<(), Error> {
        self.serialize_str(v.encode_utf8(&mut [0; 4]))
    }

    fn serialize_str(self, v: &str) -> Result<(), Error> {
        let mut buf = Vec::with_capacity(v.len() + 8);
        match self.message.shape {
            Shape::Time | Shape::MicroTime => {
                let (seconds, nanos) = parse_time(v).map_err(|what| Error::Malformed {
                    message: self.message.name,
                    field: "",
                    what,
                })?;
                put_key(&mut buf, 1, WireType::Varint);
                put_varint(&mut buf, seconds as u64);
                put_key(&mut buf, 2, WireType::Varint);
                put_varint(&mut buf, i64::from(nanos) as u64);
            }
            Shape::Quantity => put_bytes(&mut buf, 1, v.as_bytes()),
            Shape::IntOrString => {
                put_key(&mut buf, 1, WireType::Varint);
                put_varint(&mut buf, 1);
                put_key(&mut buf, 2, WireType::Varint);
                put_varint(&mut buf, 0);
                put_bytes(&mut buf, 3, v.as_bytes());
            }
            _ => return Err(unsupported(self.message, "", "a string")),
        }
        self.sink.write(&buf);
        Ok(())
    }

    fn serialize_bytes(self, _: &[u8]) -> Result<(), Error> {
        Err(unsupported(self.message, "", "bytes"))
    }

    fn serialize_none(self) -> Result<(), Error> {
        self.serialize_unit()
    }

    fn serialize_some<T: ?Sized + Serialize>(self, value: &T) -> Result<(), Error> {
        value.serialize(self)
    }

    fn serialize_unit(self) -> Result<(), Error> {
        self.sink.write(&[]);
        Ok(())
    }

    fn serialize_unit_struct(self, _: &'static str) -> Result<(), Error> {
        self.serialize_unit()
    }

    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<(), Error> {
        self.serialize_str(variant)
    }

    fn serialize_newtype_struct<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        if self.message.shape != Shape::RawJson {
            return value.serialize(self);
        }
        let json = serde_json::to_vec(value).map_err(|e| Error::Malformed {
            message: self.message.name,
            field: "raw",
            what: e.to_string(),
        })?;
        let mut buf = Vec::with_capacity(json.len() + 6);
        if json != b"null" {
            put_bytes(&mut buf, 1, &json);
        }
        self.sink.write(&buf);
        Ok(())
    }

    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<(), Error> {
        Err(unsupported(self.message, "", "an enum"))
    }

    fn serialize_seq(self, _: Option<usize>) -> Result<Compound<'o>, Error> {
        let (_, items) = match self.message.shape {
            Shape::SchemaOrArray | Shape::SchemaOrStringArray => self.message.field_by_tag(2),
            _ => None,
        }
        .ok_or_else(|| unsupported(self.message, "", "an array"))?;
        Ok(Compound::Seq(SeqSer {
            sink: self.sink,
            buf: Vec::new(),
            tag: 2,
            ty: items.ty,
            json: items.json,
            parent: self.message,
            depth: self.depth,
        }))
    }

    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, Error> {
        Err(unsupported(self.message, "", "a tuple"))
    }

    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, Error> {
        Err(unsupported(self.message, "", "a tuple"))
    }

    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, Error> {
        Err(unsupported(self.message, "", "an enum"))
    }

    fn serialize_map(self, _: Option<usize>) -> Result<Compound<'o>, Error> {
        self.object()
    }

    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Compound<'o>, Error> {
        self.object()
    }

    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, Error> {
        Err(unsupported(self.message, "", "an enum"))
    }
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
    fn nested(self) -> Result<MessageSer<'o>, Error> {
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

    fn int(self, v: i64) -> Result<(), Error> {
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

    fn float(self, v: f64) -> Result<(), Error> {
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
    type Error = Error;
    type SerializeSeq = Compound<'o>;
    type SerializeTuple = Impossible<(), Error>;
    type SerializeTupleStruct = Impossible<(), Error>;
    type SerializeTupleVariant = Impossible<(), Error>;
    type SerializeMap = Compound<'o>;
    type SerializeStruct = Compound<'o>;
    type SerializeStructVariant = Impossible<(), Error>;

    ints_via!(int: serialize_i8(i8), serialize_i16(i16), serialize_i32(i32), serialize_i64(i64),
        serialize_u8(u8), serialize_u16(u16), serialize_u32(u32));

    fn serialize_u64(self, v: u64) -> Result<(), Error> {
        if self.ty == Type::Uint64 {
            put_key(self.out, self.tag, WireType::Varint);
            put_varint(self.out, v);
            return Ok(());
        }
        let v = i64::try_from(v)
            .map_err(|_| unsupported(self.parent, self.json, "a number above i64::MAX"))?;
        self.int(v)
    }

    fn serialize_bool(self, v: bool) -> Result<(), Error> {
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

    fn serialize_f32(self, v: f32) -> Result<(), Error> {
        self.float(f64::from(v))
    }

    fn serialize_f64(self, v: f64) -> Result<(), Error> {
        self.float(v)
    }

    fn serialize_char(self, v: char) -> Result<(), Error> {
        self.serialize_str(v.encode_utf8(&mut [0; 4]))
    }

    fn serialize_str(self, v: &str) -> Result<(), Error> {
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
            Type::Message(_) => {
                let (parent, json) = (self.parent.name, self.json);
                self.nested()?.serialize_str(v).map_err(|e| match e {
                    Error::Malformed {
                        field: "", what, ..
                    } => Error::Malformed {
                        message: parent,
                        field: json,
                        what,
                    },
                    other => other,
                })
            }
            ty => Err(unsupported(
                self.parent,
                self.json,
                &format!("a string for a {ty:?} field"),
            )),
        }
    }

    fn serialize_bytes(self, v: &[u8]) -> Result<(), Error> {
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

    fn serialize_none(self) -> Result<(), Error> {
        Ok(())
    }

    fn serialize_some<T: ?Sized + Serialize>(self, value: &T) -> Result<(), Error> {
        value.serialize(self)
    }

    fn serialize_unit(self) -> Result<(), Error> {
        Ok(())
    }

    fn serialize_unit_struct(self, _: &'static str) -> Result<(), Error> {
        Ok(())
    }

    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<(), Error> {
        self.serialize_str(variant)
    }

    fn serialize_newtype_struct<T: ?Sized + Serialize>(
        self,
        name: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        match self.ty {
            Type::Message(_) if !self.repeated => {
                self.nested()?.serialize_newtype_struct(name, value)
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
    ) -> Result<(), Error> {
        Err(unsupported(self.parent, self.json, "an enum"))
    }

    fn serialize_seq(self, _: Option<usize>) -> Result<Compound<'o>, Error> {
        if self.repeated {
            return Ok(Compound::Seq(SeqSer {
                sink: Sink::Bare(self.out),
                buf: Vec::new(),
                tag: self.tag,
                ty: self.ty,
                json: self.json,
                parent: self.parent,
                depth: self.depth,
            }));
        }
        self.nested()?.serialize_seq(None)
    }

    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, Error> {
        Err(unsupported(self.parent, self.json, "a tuple"))
    }

    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, Error> {
        Err(unsupported(self.parent, self.json, "a tuple"))
    }

    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, Error> {
        Err(unsupported(self.parent, self.json, "an enum"))
    }

    fn serialize_map(self, _: Option<usize>) -> Result<Compound<'o>, Error> {
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
            key: None,
        }))
    }

    fn serialize_struct(self, name: &'static str, len: usize) -> Result<Compound<'o>, Error> {
        self.nested()?.serialize_struct(name, len)
    }

    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, Error> {
        Err(unsupported(self.parent, self.json, "an enum"))
    }
}

/// The compound values: a message's fields, a repeated field, a proto map.
pub(crate) enum Compound<'o> {
    Struct(StructSer<'o>),
    Seq(SeqSer<'o>),
    Map(MapSer<'o>),
}

pub(crate) struct StructSer<'o> {
    sink: Sink<'o>,
    buf: Vec<u8>,
    message: &'static Message,
    depth: usize,
    /// Write the finished message as this field of a wrapper message
    /// (`JSONSchemaPropsOr*`).
    wrap: Option<u32>,
    key: Option<String>,
    /// The bytes of inline messages (Go structs embedded with `json:",inline"`), by tag.
    inline: Vec<(u32, Vec<u8>)>,
}

/// The field with JSON name `key` in one of `message`'s inline messages:
/// the inline field's tag, the inline message, the field.
fn inline_field(
    message: &'static Message,
    key: &str,
) -> Option<(u32, &'static Message, &'static table::Field)> {
    message
        .fields
        .iter()
        .filter(|f| f.json.is_empty())
        .find_map(|f| {
            let Type::Message(i) = f.ty else { return None };
            let inner = table::message(i);
            inner.field_by_json(key).map(|field| (f.tag, inner, field))
        })
}

impl StructSer<'_> {
    fn field<T: ?Sized + Serialize>(&mut self, key: &str, value: &T) -> Result<(), Error> {
        let (out, parent, field) = match self.message.field_by_json(key) {
            Some(field) => (&mut self.buf, self.message, field),
            None => {
                let Some((tag, parent, field)) = inline_field(self.message, key) else {
                    if key == "apiVersion" || key == "kind" {
                        return Ok(());
                    }
                    return Err(Error::Malformed {
                        message: self.message.name,
                        field: "",
                        what: format!("field {key:?} has no protobuf field number"),
                    });
                };
                let at = match self.inline.iter().position(|(t, _)| *t == tag) {
                    Some(at) => at,
                    None => {
                        self.inline.push((tag, Vec::new()));
                        self.inline.len() - 1
                    }
                };
                (&mut self.inline[at].1, parent, field)
            }
        };
        value.serialize(FieldSer {
            out,
            tag: field.tag,
            ty: field.ty,
            json: field.json,
            repeated: field.repeated,
            parent,
            depth: self.depth,
        })
    }

    fn finish(mut self) {
        // Go writes an embedded (inline) struct even when it is empty.
        for field in self.message.fields.iter().filter(|f| f.json.is_empty()) {
            let bytes = self
                .inline
                .iter()
                .find(|(t, _)| *t == field.tag)
                .map_or(&[][..], |(_, b)| b.as_slice());
            put_bytes(&mut self.buf, field.tag, bytes);
        }
        match self.wrap {
            None => self.sink.write(&self.buf),
            Some(tag) => {
                let mut outer = Vec::with_capacity(self.buf.len() + 6);
                put_bytes(&mut outer, tag, &self.buf);
                self.sink.write(&outer);
            }
        }
    }
}

pub(crate) struct SeqSer<'o> {
    sink: Sink<'o>,
    buf: Vec<u8>,
    tag: u32,
    ty: Type,
    json: &'static str,
    parent: &'static Message,
    depth: usize,
}

pub(crate) struct MapSer<'o> {
    out: &'o mut Vec<u8>,
    tag: u32,
    value: Type,
    json: &'static str,
    parent: &'static Message,
    depth: usize,
    key: Option<String>,
}

fn key_string<T: ?Sized + Serialize>(
    key: &T,
    message: &'static Message,
    field: &'static str,
) -> Result<String, Error> {
    match key.serialize(serde_json::value::Serializer) {
        Ok(serde_json::Value::String(s)) => Ok(s),
        _ => Err(unsupported(
            message,
            field,
            "a map key that is not a string",
        )),
    }
}

impl ser::SerializeStruct for Compound<'_> {
    type Ok = ();
    type Error = Error;

    fn serialize_field<T: ?Sized + Serialize>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        match self {
            Compound::Struct(s) => s.field(key, value),
            Compound::Map(m) => {
                m.key = Some(key.to_owned());
                ser::SerializeMap::serialize_value(self, value)
            }
            Compound::Seq(s) => Err(unsupported(s.parent, s.json, "an object")),
        }
    }

    fn end(self) -> Result<(), Error> {
        ser::SerializeSeq::end(self)
    }
}

impl ser::SerializeMap for Compound<'_> {
    type Ok = ();
    type Error = Error;

    fn serialize_key<T: ?Sized + Serialize>(&mut self, key: &T) -> Result<(), Error> {
        match self {
            Compound::Struct(s) => s.key = Some(key_string(key, s.message, "")?),
            Compound::Map(m) => m.key = Some(key_string(key, m.parent, m.json)?),
            Compound::Seq(s) => return Err(unsupported(s.parent, s.json, "an object")),
        }
        Ok(())
    }

    fn serialize_value<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), Error> {
        match self {
            Compound::Struct(s) => {
                let key = s.key.take().unwrap_or_default();
                s.field(&key, value)
            }
            Compound::Map(m) => {
                let key = m.key.take().unwrap_or_default();
                let mut entry = Vec::with_capacity(key.len() + 16);
                put_bytes(&mut entry, 1, key.as_bytes());
                value.serialize(FieldSer {
                    out: &mut entry,
                    tag: 2,
                    ty: m.value,
                    json: m.json,
                    repeated: false,
                    parent: m.parent,
                    depth: m.depth,
                })?;
                put_bytes(m.out, m.tag, &entry);
                Ok(())
            }
            Compound::Seq(s) => Err(unsupported(s.parent, s.json, "an object")),
        }
    }

    fn end(self) -> Result<(), Error> {
        ser::SerializeSeq::end(self)
    }
}

impl ser::SerializeSeq for Compound<'_> {
    type Ok = ();
    type Error = Error;

    fn serialize_element<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), Error> {
        match self {
            Compound::Seq(s) => value.serialize(FieldSer {
                out: &mut s.buf,
                tag: s.tag,
                ty: s.ty,
                json: s.json,
                repeated: false,
                parent: s.parent,
                depth: s.depth,
            }),
            Compound::Struct(s) => Err(unsupported(s.message, "", "an array")),
            Compound::Map(m) => Err(unsupported(m.parent, m.json, "an array")),
        }
    }

    fn end(self) -> Result<(), Error> {
        match self {
            Compound::Struct(s) => s.finish(),
            Compound::Seq(s) => s.sink.write(&s.buf),
            Compound::Map(_) => {}
        }
        Ok(())
    }
}

impl ser::Error for Error {
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        Error::Custom(msg.to_string())
    }
}
