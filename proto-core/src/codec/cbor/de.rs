//! A serde `Deserializer` over an [`Item`] tree, lenient where Kubernetes
//! is: a byte string is accepted wherever a string is expected, tag 22 around
//! a byte string reads as the base64 text k8s-openapi's `ByteString`
//! expects, tag 1 (epoch time) reads as an RFC 3339 string, and every other
//! tag (55799, 0, unknown ones) is unwrapped.

use serde::de::{
    self, DeserializeSeed, EnumAccess, IntoDeserializer, MapAccess, SeqAccess, VariantAccess,
    Visitor,
};

use super::Error;
use super::read::Item;

/// Tag 22: "expected conversion to base64" around a Go `[]byte`.
const TAG_BASE64: u64 = 22;
/// Tag 1: epoch-based date/time.
const TAG_EPOCH: u64 = 1;

/// Deserializes one item.
pub(crate) struct ItemDeserializer<'i, 'a>(pub(crate) &'i Item<'a>);

/// The item under any tags that carry no meaning for serde, and what a
/// meaningful tag (22, 1) turns it into, if anything.
enum Peeled<'i, 'a> {
    Item(&'i Item<'a>),
    /// A tagged item that reads as a string (base64 of tag 22, RFC 3339 of tag 1).
    Text(String),
}

fn peel<'i, 'a>(mut item: &'i Item<'a>) -> Result<Peeled<'i, 'a>, Error> {
    loop {
        match item {
            Item::Tag(TAG_BASE64, inner) => match &**inner {
                Item::Bytes(b) => return Ok(Peeled::Text(base64(b))),
                other => item = other,
            },
            Item::Tag(TAG_EPOCH, inner) => match &**inner {
                Item::Int(secs) => return epoch_text(*secs as f64).map(Peeled::Text),
                Item::Float(secs) => return epoch_text(*secs).map(Peeled::Text),
                other => item = other,
            },
            Item::Tag(_, inner) => item = inner,
            other => return Ok(Peeled::Item(other)),
        }
    }
}

impl<'de> de::Deserializer<'de> for ItemDeserializer<'_, '_> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let item = match peel(self.0)? {
            Peeled::Text(text) => return visitor.visit_string(text),
            Peeled::Item(item) => item,
        };
        match item {
            Item::Int(i) if *i >= 0 => visitor.visit_u64(*i as u64),
            Item::Int(i) => visitor.visit_i64(*i),
            Item::Bytes(b) => match std::str::from_utf8(b) {
                Ok(s) => visitor.visit_str(s),
                Err(_) => visitor.visit_bytes(b),
            },
            Item::Text(t) => visitor.visit_str(t),
            Item::Array(items) => visitor.visit_seq(Seq(items.iter())),
            Item::Map(entries) => visitor.visit_map(Map {
                entries: entries.iter(),
                value: None,
            }),
            Item::Float(f) => visitor.visit_f64(*f),
            Item::Bool(b) => visitor.visit_bool(*b),
            Item::Null => visitor.visit_unit(),
            Item::Tag(..) => unreachable!("peel removes every tag"),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match peel(self.0)? {
            Peeled::Item(Item::Null) => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match peel(self.0)? {
            Peeled::Text(text) => visitor.visit_string(text),
            Peeled::Item(Item::Text(t)) => visitor.visit_str(t),
            Peeled::Item(Item::Bytes(b)) => match std::str::from_utf8(b) {
                Ok(s) => visitor.visit_str(s),
                Err(_) => Err(Error::Message(
                    "byte string where a string is expected is not valid UTF-8".into(),
                )),
            },
            Peeled::Item(_) => self.deserialize_any(visitor),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let mut item = self.0;
        while let Item::Tag(_, inner) = item {
            item = inner;
        }
        match item {
            Item::Bytes(b) => visitor.visit_bytes(b),
            Item::Text(t) => visitor.visit_bytes(t.as_bytes()),
            _ => self.deserialize_any(visitor),
        }
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_bytes(visitor)
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match peel(self.0)? {
            Peeled::Item(Item::Null) => visitor.visit_unit(),
            _ => self.deserialize_any(visitor),
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match peel(self.0)? {
            Peeled::Text(text) => visitor.visit_enum(text.into_deserializer()),
            Peeled::Item(Item::Map(entries)) if entries.len() == 1 => {
                let (key, value) = &entries[0];
                visitor.visit_enum(Enum { key, value })
            }
            Peeled::Item(Item::Text(_) | Item::Bytes(_)) => visitor.visit_enum(UnitEnum(self.0)),
            Peeled::Item(_) => Err(Error::Message(
                "expected a string or a single-entry map for an enum".into(),
            )),
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_unit()
    }

    fn is_human_readable(&self) -> bool {
        true
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64
        seq tuple tuple_struct map struct
    }
}

struct Seq<'i, 'a>(std::slice::Iter<'i, Item<'a>>);

impl<'de> SeqAccess<'de> for Seq<'_, '_> {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        self.0
            .next()
            .map(|item| seed.deserialize(ItemDeserializer(item)))
            .transpose()
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.0.len())
    }
}

struct Map<'i, 'a> {
    entries: std::slice::Iter<'i, (Item<'a>, Item<'a>)>,
    value: Option<&'i Item<'a>>,
}

impl<'de> MapAccess<'de> for Map<'_, '_> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        let Some((key, value)) = self.entries.next() else {
            return Ok(None);
        };
        self.value = Some(value);
        seed.deserialize(ItemDeserializer(key)).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        let value = self
            .value
            .take()
            .ok_or_else(|| Error::Message("map value requested before its key".into()))?;
        seed.deserialize(ItemDeserializer(value))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

/// An enum sent as `{variant: value}`.
struct Enum<'i, 'a> {
    key: &'i Item<'a>,
    value: &'i Item<'a>,
}

impl<'de, 'i, 'a> EnumAccess<'de> for Enum<'i, 'a> {
    type Error = Error;
    type Variant = ItemDeserializer<'i, 'a>;

    fn variant_seed<V: DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, Self::Variant), Error> {
        let variant = seed.deserialize(ItemDeserializer(self.key))?;
        Ok((variant, ItemDeserializer(self.value)))
    }
}

impl<'de> VariantAccess<'de> for ItemDeserializer<'_, '_> {
    type Error = Error;

    fn unit_variant(self) -> Result<(), Error> {
        de::Deserialize::deserialize(self)
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, Error> {
        seed.deserialize(self)
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, Error> {
        de::Deserializer::deserialize_seq(self, visitor)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        de::Deserializer::deserialize_map(self, visitor)
    }
}

/// An enum sent as its variant name alone.
struct UnitEnum<'i, 'a>(&'i Item<'a>);

impl<'de, 'i, 'a> EnumAccess<'de> for UnitEnum<'i, 'a> {
    type Error = Error;
    type Variant = UnitOnly;

    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, UnitOnly), Error> {
        Ok((seed.deserialize(ItemDeserializer(self.0))?, UnitOnly))
    }
}

struct UnitOnly;

impl<'de> VariantAccess<'de> for UnitOnly {
    type Error = Error;

    fn unit_variant(self) -> Result<(), Error> {
        Ok(())
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, _seed: T) -> Result<T::Value, Error> {
        Err(Error::Message("expected a unit variant".into()))
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, _visitor: V) -> Result<V::Value, Error> {
        Err(Error::Message("expected a unit variant".into()))
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Error> {
        Err(Error::Message("expected a unit variant".into()))
    }
}

/// Standard base64 with padding, as Go's `encoding/json` writes `[]byte`.
pub(crate) fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 0x3f) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Seconds since the Unix epoch as RFC 3339 UTC, with fractional seconds
/// only when there are any.
fn epoch_text(secs: f64) -> Result<String, Error> {
    // Years 0001 to 9999, the range RFC 3339 can write.
    if !(-62_135_596_800.0..253_402_300_800.0).contains(&secs) {
        return Err(Error::Message(format!(
            "epoch time {secs} is outside the years 0001-9999"
        )));
    }
    let whole = secs.floor();
    let nanos = ((secs - whole) * 1e9).round() as u32;
    let whole = whole as i64;
    let days = whole.div_euclid(86_400);
    let of_day = whole.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let mut text = format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
        of_day / 3600,
        of_day / 60 % 60,
        of_day % 60
    );
    if nanos > 0 && nanos < 1_000_000_000 {
        let fraction = format!("{nanos:09}");
        text.push('.');
        text.push_str(fraction.trim_end_matches('0'));
    }
    text.push('Z');
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cbor_base64_matches_rfc4648_vectors() {
        for (raw, text) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(raw.as_bytes()), text);
        }
    }

    #[test]
    fn cbor_epoch_time_reads_as_rfc3339() {
        assert_eq!(epoch_text(0.0).unwrap(), "1970-01-01T00:00:00Z");
        assert_eq!(epoch_text(1_199_149_261.0).unwrap(), "2008-01-01T01:01:01Z");
        assert_eq!(
            epoch_text(1_199_149_261.5).unwrap(),
            "2008-01-01T01:01:01.5Z"
        );
        assert_eq!(epoch_text(951_782_400.0).unwrap(), "2000-02-29T00:00:00Z");
        assert!(epoch_text(1e300).is_err());
    }
}
