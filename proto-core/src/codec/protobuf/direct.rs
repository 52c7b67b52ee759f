//! Encoding k8s-openapi types without serde: each type's fields written
//! straight from the struct by code generated per type (`direct_gen.rs`,
//! written by `windlass-testkit`'s `gen-protobuf-schema` beside the schema
//! table).
//!
//! The serde path ([`super::ser`]) sees a type only through its `Serialize`
//! impl: every field a key to look up, every `Time` a string jiff formats
//! and the encoder parses back. Here a field is a call with its number
//! fixed at compile time, and a `Time` is its seconds. The output is byte
//! for byte the serde path's — the same field order (the type's
//! `Serialize` order, inline messages last), the same lengths — which the
//! conformance tests check over every fixture.
//!
//! What the generated code does not write itself goes through the serde
//! path for that one field: messages held as JSON (`FieldsV1`,
//! `RawExtension`, `JSON`), the `JSONSchemaProps` family (recursive, and
//! its `…Or…` enums), and fields of types the generator could not read.
//! [`encoder`] says, by `TypeId`, whether a type has generated code; those
//! without it (a `DynamicObject`, a `serde_json::Value`) use the serde path.

use std::any::{Any, TypeId};
use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::OnceLock;

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, Time};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::ser::{SerError, serde_field};
use super::table;
use super::wire::{
    WireType, close_len, close_len_wide, open_len, open_len_wide, put_bytes, put_key, put_time,
    put_varint, varint_len,
};

/// A type with generated code: its message and how to write its fields.
pub(crate) trait Direct: 'static {
    /// The index of its message in the schema table.
    const MESSAGE: u16;

    /// Append the message's fields to `out`. `depth` is the message's
    /// nesting depth, as the serde path counts it (the fields it hands to
    /// that path are checked against [`super::MAX_DEPTH`] there).
    fn write(&self, out: &mut Vec<u8>, depth: usize) -> Result<(), SerError>;
}

/// A field's value written with its key: scalars, strings, the special
/// messages, repeated fields and maps, and (through [`Direct`]) messages.
pub(crate) trait Put {
    fn put(&self, out: &mut Vec<u8>, tag: u32, depth: usize) -> Result<(), SerError>;
}

impl<T: Direct> Put for T {
    /// A message field written in place: a length placeholder as wide as
    /// this message's last length needed, filled in at the end (the serde
    /// path's `StructSer` does the same; the bytes are the same).
    #[inline]
    fn put(&self, out: &mut Vec<u8>, tag: u32, depth: usize) -> Result<(), SerError> {
        let index = table::message(T::MESSAGE).index();
        let wide = index.is_long();
        let start = if wide {
            open_len_wide(out, tag)
        } else {
            open_len(out, tag)
        };
        self.write(out, depth + 1)?;
        index.set_long(out.len() - start >= 0x80);
        if wide {
            close_len_wide(out, start);
        } else {
            close_len(out, start);
        }
        Ok(())
    }
}

impl Put for String {
    #[inline]
    fn put(&self, out: &mut Vec<u8>, tag: u32, _: usize) -> Result<(), SerError> {
        put_bytes(out, tag, self.as_bytes());
        Ok(())
    }
}

impl Put for bool {
    #[inline]
    fn put(&self, out: &mut Vec<u8>, tag: u32, _: usize) -> Result<(), SerError> {
        put_key(out, tag, WireType::Varint);
        out.push(u8::from(*self));
        Ok(())
    }
}

impl Put for i32 {
    #[inline]
    fn put(&self, out: &mut Vec<u8>, tag: u32, _: usize) -> Result<(), SerError> {
        put_key(out, tag, WireType::Varint);
        put_varint(out, i64::from(*self) as u64);
        Ok(())
    }
}

impl Put for i64 {
    #[inline]
    fn put(&self, out: &mut Vec<u8>, tag: u32, _: usize) -> Result<(), SerError> {
        put_key(out, tag, WireType::Varint);
        put_varint(out, *self as u64);
        Ok(())
    }
}

impl Put for f64 {
    #[inline]
    fn put(&self, out: &mut Vec<u8>, tag: u32, _: usize) -> Result<(), SerError> {
        put_key(out, tag, WireType::Fixed64);
        out.extend_from_slice(&self.to_bits().to_le_bytes());
        Ok(())
    }
}

/// A repeated field: each element with the field's key (proto2, unpacked).
impl<T: Put> Put for Vec<T> {
    #[inline]
    fn put(&self, out: &mut Vec<u8>, tag: u32, depth: usize) -> Result<(), SerError> {
        for item in self {
            item.put(out, tag, depth)?;
        }
        Ok(())
    }
}

/// A proto map: one `{1: key, 2: value}` entry per key, in key order.
impl<V: Put> Put for BTreeMap<String, V> {
    fn put(&self, out: &mut Vec<u8>, tag: u32, depth: usize) -> Result<(), SerError> {
        for (key, value) in self {
            let start = open_len(out, tag);
            put_bytes(out, 1, key.as_bytes());
            value.put(out, 2, depth)?;
            close_len(out, start);
        }
        Ok(())
    }
}

/// A timestamp's whole seconds and nanoseconds, the nanoseconds in
/// `0..1e9` (jiff counts both toward zero; RFC 3339 text, like Go's
/// `Timestamp`, counts seconds down and nanoseconds up).
fn seconds_nanos(at: k8s_openapi::jiff::Timestamp) -> (i64, i32) {
    let (seconds, nanos) = (at.as_second(), at.subsec_nanosecond());
    if nanos < 0 {
        (seconds - 1, nanos + 1_000_000_000)
    } else {
        (seconds, nanos)
    }
}

/// `Time` in whole seconds, as its JSON form (`%Y-%m-%dT%H:%M:%SZ`) holds it.
impl Put for Time {
    #[inline]
    fn put(&self, out: &mut Vec<u8>, tag: u32, _: usize) -> Result<(), SerError> {
        let (seconds, _) = seconds_nanos(self.0);
        put_time(out, tag, seconds, 0);
        Ok(())
    }
}

/// `MicroTime` in whole microseconds, as its JSON form (`%.6f`) holds it.
impl Put for MicroTime {
    #[inline]
    fn put(&self, out: &mut Vec<u8>, tag: u32, _: usize) -> Result<(), SerError> {
        let (seconds, nanos) = seconds_nanos(self.0);
        put_time(out, tag, seconds, nanos - nanos % 1000);
        Ok(())
    }
}

/// `{1: string}`.
impl Put for Quantity {
    #[inline]
    fn put(&self, out: &mut Vec<u8>, tag: u32, _: usize) -> Result<(), SerError> {
        let text = self.0.as_bytes();
        put_key(out, tag, WireType::Len);
        put_varint(out, (1 + varint_len(text.len() as u64) + text.len()) as u64);
        put_bytes(out, 1, text);
        Ok(())
    }
}

/// `{1: type, 2: intVal, 3: strVal}`, every field written, as Go does.
impl Put for IntOrString {
    fn put(&self, out: &mut Vec<u8>, tag: u32, _: usize) -> Result<(), SerError> {
        let start = open_len(out, tag);
        match self {
            IntOrString::Int(v) => {
                out.extend_from_slice(&[0x08, 0x00, 0x10]);
                put_varint(out, i64::from(*v) as u64);
                out.extend_from_slice(&[0x1a, 0x00]);
            }
            IntOrString::String(s) => {
                out.extend_from_slice(&[0x08, 0x01, 0x10, 0x00]);
                put_bytes(out, 3, s.as_bytes());
            }
        }
        close_len(out, start);
        Ok(())
    }
}

/// A field the generated code hands to the serde path: field `field` of
/// message `message`, written as the serde path writes it.
#[inline(never)]
pub(crate) fn serde<T: serde::Serialize + ?Sized>(
    out: &mut Vec<u8>,
    value: &T,
    message: u16,
    field: usize,
    depth: usize,
) -> Result<(), SerError> {
    serde_field(out, value, table::message(message), field, depth)
}

/// Write a type-erased value of type `T` as a bare message.
type Encoder = fn(&dyn Any, &mut Vec<u8>) -> Result<(), SerError>;

fn encode_any<T: Direct>(value: &dyn Any, out: &mut Vec<u8>) -> Result<(), SerError> {
    match value.downcast_ref::<T>() {
        Some(value) => value.write(out, 0),
        None => Err(Box::new(super::Error::Custom(
            "a value of another type than its encoder's".into(),
        ))),
    }
}

/// The generated code for a type, by `TypeId`: its message's index and
/// its encoder. `None` for a type without (custom resources, dynamic
/// objects), which the serde path encodes.
pub(crate) fn encoder(id: TypeId) -> Option<(u16, Encoder)> {
    static TABLE: OnceLock<HashMap<TypeId, (u16, Encoder), BuildHasherDefault<IdHasher>>> =
        OnceLock::new();
    TABLE
        .get_or_init(|| {
            let mut table = Vec::new();
            super::direct_gen::register(&mut Registry(&mut table));
            table.into_iter().map(|(id, m, e)| (id, (m, e))).collect()
        })
        .get(&id)
        .copied()
}

/// A `TypeId` is a hash already: its hash is its bits, mixed once.
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
        }
    }

    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0 ^ v).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

/// What the generated `register` fills: one entry per type it has code for.
pub(crate) struct Registry<'a>(&'a mut Vec<(TypeId, u16, Encoder)>);

impl Registry<'_> {
    pub(crate) fn add<T: Direct>(&mut self) {
        self.0
            .push((TypeId::of::<T>(), T::MESSAGE, encode_any::<T>));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protobuf_direct_time_counts_seconds_down_before_1970() {
        let at = |s: &str| s.parse::<k8s_openapi::jiff::Timestamp>().unwrap();
        assert_eq!(
            seconds_nanos(at("1970-01-01T00:00:01.25Z")),
            (1, 250_000_000)
        );
        assert_eq!(
            seconds_nanos(at("1969-12-31T23:59:59.75Z")),
            (-1, 750_000_000)
        );
        assert_eq!(seconds_nanos(at("1969-12-31T23:59:59Z")), (-1, 0));
    }
}
