//! A serde `Serializer` writing CBOR the way the Kubernetes encoder does
//! (`modes/encode.go`): strings and map keys as byte strings, integers as
//! integers, floats in their shortest exact width, definite lengths only,
//! NaN and infinities refused, `serialize_bytes` as tag 22 around a byte
//! string (Go's `[]byte`).

use serde::ser::{self, Serialize};

use super::Error;

/// Writes one item into `out`.
pub(crate) struct Encoder<'o> {
    pub(crate) out: &'o mut Vec<u8>,
}

/// Writes a head: major type and argument in the shortest form.
pub(crate) fn head(out: &mut Vec<u8>, major: u8, arg: u64) {
    let major = major << 5;
    match arg {
        0..=23 => out.push(major | arg as u8),
        24..=0xff => out.extend_from_slice(&[major | 24, arg as u8]),
        0x100..=0xffff => {
            out.push(major | 25);
            out.extend_from_slice(&(arg as u16).to_be_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            out.push(major | 26);
            out.extend_from_slice(&(arg as u32).to_be_bytes());
        }
        _ => {
            out.push(major | 27);
            out.extend_from_slice(&arg.to_be_bytes());
        }
    }
}

fn head_bytes(major: u8, arg: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(9);
    head(&mut out, major, arg);
    out
}

impl<'o> Encoder<'o> {
    fn int(&mut self, value: i64) {
        if value >= 0 {
            head(self.out, 0, value as u64);
        } else {
            head(self.out, 1, (-1 - value) as u64);
        }
    }

    fn float(&mut self, value: f64) -> Result<(), Error> {
        if !value.is_finite() {
            return Err(Error::Unsupported("NaN or infinite float"));
        }
        if let Some(half) = f64_to_f16_exact(value) {
            self.out.push(0xf9);
            self.out.extend_from_slice(&half.to_be_bytes());
        } else if f64::from(value as f32) == value {
            self.out.push(0xfa);
            self.out
                .extend_from_slice(&(value as f32).to_bits().to_be_bytes());
        } else {
            self.out.push(0xfb);
            self.out.extend_from_slice(&value.to_bits().to_be_bytes());
        }
        Ok(())
    }

    fn byte_string(&mut self, bytes: &[u8]) {
        head(self.out, 2, bytes.len() as u64);
        self.out.extend_from_slice(bytes);
    }

    fn container(self, major: u8, len: Option<usize>) -> Compound<'o> {
        let start = self.out.len();
        let declared = len.unwrap_or(0);
        head(self.out, major, declared as u64);
        Compound {
            out: self.out,
            major,
            start,
            declared,
            count: 0,
        }
    }

    /// `{variant: …}` around a tuple or struct variant.
    fn variant_container(self, variant: &str, major: u8, len: usize) -> Compound<'o> {
        head(self.out, 5, 1);
        head(self.out, 2, variant.len() as u64);
        self.out.extend_from_slice(variant.as_bytes());
        Encoder { out: self.out }.container(major, Some(len))
    }
}

/// A value whose float is exactly representable in half precision, as its bits.
pub(crate) fn f64_to_f16_exact(value: f64) -> Option<u16> {
    let sign = if value.is_sign_negative() {
        0x8000u16
    } else {
        0
    };
    let magnitude = value.abs();
    let half = if magnitude == 0.0 {
        sign
    } else {
        let exponent = magnitude.log2().floor() as i32;
        if exponent > 15 {
            return None;
        }
        if exponent >= -14 {
            let mantissa = (magnitude / 2f64.powi(exponent) - 1.0) * 1024.0;
            if mantissa.fract() != 0.0 || !(0.0..1024.0).contains(&mantissa) {
                return None;
            }
            sign | ((exponent + 15) as u16) << 10 | mantissa as u16
        } else {
            let steps = magnitude * 2f64.powi(24);
            if steps.fract() != 0.0 || steps >= 1024.0 {
                return None;
            }
            sign | steps as u16
        }
    };
    // `log2().floor()` can be off by one at a power of two: check the result.
    (super::read::f16_to_f64(half) == value).then_some(half)
}

/// An array or map being written; its head is fixed up at the end if the
/// number of elements differs from what was declared (or nothing was).
pub(crate) struct Compound<'o> {
    out: &'o mut Vec<u8>,
    major: u8,
    start: usize,
    declared: usize,
    count: usize,
}

impl Compound<'_> {
    fn element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        value.serialize(Encoder { out: self.out })
    }

    fn finish(self) -> Result<(), Error> {
        if self.count != self.declared {
            let old = head_bytes(self.major, self.declared as u64).len();
            let new = head_bytes(self.major, self.count as u64);
            self.out.splice(self.start..self.start + old, new);
        }
        Ok(())
    }
}

impl<'o> ser::Serializer for Encoder<'o> {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = Compound<'o>;
    type SerializeTuple = Compound<'o>;
    type SerializeTupleStruct = Compound<'o>;
    type SerializeTupleVariant = Compound<'o>;
    type SerializeMap = Compound<'o>;
    type SerializeStruct = Compound<'o>;
    type SerializeStructVariant = Compound<'o>;

    fn serialize_bool(self, v: bool) -> Result<(), Error> {
        self.out.push(if v { 0xf5 } else { 0xf4 });
        Ok(())
    }
    fn serialize_i8(mut self, v: i8) -> Result<(), Error> {
        self.int(v.into());
        Ok(())
    }
    fn serialize_i16(mut self, v: i16) -> Result<(), Error> {
        self.int(v.into());
        Ok(())
    }
    fn serialize_i32(mut self, v: i32) -> Result<(), Error> {
        self.int(v.into());
        Ok(())
    }
    fn serialize_i64(mut self, v: i64) -> Result<(), Error> {
        self.int(v);
        Ok(())
    }
    fn serialize_u8(mut self, v: u8) -> Result<(), Error> {
        self.int(v.into());
        Ok(())
    }
    fn serialize_u16(mut self, v: u16) -> Result<(), Error> {
        self.int(v.into());
        Ok(())
    }
    fn serialize_u32(mut self, v: u32) -> Result<(), Error> {
        self.int(v.into());
        Ok(())
    }
    fn serialize_u64(mut self, v: u64) -> Result<(), Error> {
        let v = i64::try_from(v).map_err(|_| Error::Unsupported("integer above i64::MAX"))?;
        self.int(v);
        Ok(())
    }
    fn serialize_f32(mut self, v: f32) -> Result<(), Error> {
        self.float(v.into())
    }
    fn serialize_f64(mut self, v: f64) -> Result<(), Error> {
        self.float(v)
    }
    fn serialize_char(mut self, v: char) -> Result<(), Error> {
        self.byte_string(v.encode_utf8(&mut [0; 4]).as_bytes());
        Ok(())
    }
    fn serialize_str(mut self, v: &str) -> Result<(), Error> {
        self.byte_string(v.as_bytes());
        Ok(())
    }
    fn serialize_bytes(mut self, v: &[u8]) -> Result<(), Error> {
        self.out.push(0xd6);
        self.byte_string(v);
        Ok(())
    }
    fn serialize_none(self) -> Result<(), Error> {
        self.out.push(0xf6);
        Ok(())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), Error> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), Error> {
        self.serialize_none()
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), Error> {
        self.serialize_none()
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<(), Error> {
        self.serialize_str(variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        mut self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        head(self.out, 5, 1);
        self.byte_string(variant.as_bytes());
        value.serialize(self)
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<Compound<'o>, Error> {
        Ok(self.container(4, len))
    }
    fn serialize_tuple(self, len: usize) -> Result<Compound<'o>, Error> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        len: usize,
    ) -> Result<Compound<'o>, Error> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Compound<'o>, Error> {
        Ok(self.variant_container(variant, 4, len))
    }
    fn serialize_map(self, len: Option<usize>) -> Result<Compound<'o>, Error> {
        Ok(self.container(5, len))
    }
    fn serialize_struct(self, _name: &'static str, len: usize) -> Result<Compound<'o>, Error> {
        self.serialize_map(Some(len))
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Compound<'o>, Error> {
        Ok(self.variant_container(variant, 5, len))
    }
    fn is_human_readable(&self) -> bool {
        true
    }
}

impl ser::SerializeSeq for Compound<'_> {
    type Ok = ();
    type Error = Error;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.count += 1;
        self.element(value)
    }
    fn end(self) -> Result<(), Error> {
        self.finish()
    }
}

impl ser::SerializeTuple for Compound<'_> {
    type Ok = ();
    type Error = Error;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        ser::SerializeSeq::serialize_element(self, value)
    }
    fn end(self) -> Result<(), Error> {
        self.finish()
    }
}

impl ser::SerializeTupleStruct for Compound<'_> {
    type Ok = ();
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        ser::SerializeSeq::serialize_element(self, value)
    }
    fn end(self) -> Result<(), Error> {
        self.finish()
    }
}

impl ser::SerializeTupleVariant for Compound<'_> {
    type Ok = ();
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        ser::SerializeSeq::serialize_element(self, value)
    }
    fn end(self) -> Result<(), Error> {
        self.finish()
    }
}

impl ser::SerializeMap for Compound<'_> {
    type Ok = ();
    type Error = Error;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Error> {
        self.count += 1;
        self.element(key)
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.element(value)
    }
    fn end(self) -> Result<(), Error> {
        self.finish()
    }
}

impl ser::SerializeStruct for Compound<'_> {
    type Ok = ();
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        self.count += 1;
        Encoder { out: self.out }.byte_string(key.as_bytes());
        self.element(value)
    }
    fn end(self) -> Result<(), Error> {
        self.finish()
    }
}

impl ser::SerializeStructVariant for Compound<'_> {
    type Ok = ();
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        ser::SerializeStruct::serialize_field(self, key, value)
    }
    fn end(self) -> Result<(), Error> {
        self.finish()
    }
}
