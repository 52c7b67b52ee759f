//! The CBOR item reader: bytes to an [`Item`] tree, with every rule of the
//! Kubernetes decoder applied while reading (`modes/decode.go`): no
//! duplicate map keys, UTF-8 text, integers within int64, only the simple
//! values false, true and null, nesting at most [`MAX_DEPTH`] deep, and
//! every length checked against the input that is left before anything is
//! allocated.

use std::borrow::Cow;
use std::collections::HashSet;

use super::Error;

/// How deep arrays, maps and tags may nest (serde_json's recursion limit).
pub const MAX_DEPTH: usize = 128;

/// One decoded CBOR data item. Strings borrow from the input unless they
/// were sent in indefinite-length chunks.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Item<'a> {
    /// Major types 0 and 1, within the int64 range.
    Int(i64),
    /// Major type 2.
    Bytes(Cow<'a, [u8]>),
    /// Major type 3, valid UTF-8.
    Text(Cow<'a, str>),
    /// Major type 4.
    Array(Vec<Item<'a>>),
    /// Major type 5, keys unique.
    Map(Vec<(Item<'a>, Item<'a>)>),
    /// Major type 6 (tag number, tagged item).
    Tag(u64, Box<Item<'a>>),
    /// Major type 7 floats (half, single, double).
    Float(f64),
    /// `false` / `true`.
    Bool(bool),
    /// `null`.
    Null,
}

/// Reads exactly one item from `input`, which must hold nothing after it.
pub(crate) fn read_item(input: &[u8]) -> Result<Item<'_>, Error> {
    let mut reader = Reader { input, pos: 0 };
    let item = reader.item(0)?;
    if reader.pos != input.len() {
        return Err(Error::TrailingBytes {
            count: input.len() - reader.pos,
        });
    }
    Ok(item)
}

/// Where a head's argument says the item is.
enum Arg {
    Value(u64),
    Indefinite,
}

struct Reader<'a> {
    input: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn remaining(&self) -> usize {
        self.input.len() - self.pos
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], Error> {
        if n > self.remaining() {
            return Err(Error::Truncated {
                offset: self.input.len(),
            });
        }
        let bytes = &self.input[self.pos..self.pos + n];
        self.pos += n;
        Ok(bytes)
    }

    /// The initial byte's major type and its argument.
    fn head(&mut self) -> Result<(u8, u8, Arg), Error> {
        let initial = self.take(1)?[0];
        let major = initial >> 5;
        let info = initial & 0x1f;
        let arg = match info {
            0..=23 => Arg::Value(u64::from(info)),
            24 => Arg::Value(u64::from(self.take(1)?[0])),
            25 => Arg::Value(u64::from(u16::from_be_bytes(self.array()?))),
            26 => Arg::Value(u64::from(u32::from_be_bytes(self.array()?))),
            27 => Arg::Value(u64::from_be_bytes(self.array()?)),
            31 => Arg::Indefinite,
            _ => {
                return Err(self.malformed(self.pos - 1, "reserved additional information 28-30"));
            }
        };
        Ok((major, info, arg))
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], Error> {
        let bytes = self.take(N)?;
        let mut out = [0; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    fn malformed(&self, offset: usize, what: &'static str) -> Error {
        Error::Malformed { offset, what }
    }

    /// A definite length, checked against the input left: no item can be
    /// longer than the bytes that remain.
    fn length(&self, offset: usize, len: u64, min_bytes_each: usize) -> Result<usize, Error> {
        let fits = usize::try_from(len)
            .ok()
            .and_then(|n| n.checked_mul(min_bytes_each))
            .is_some_and(|bytes| bytes <= self.remaining());
        if !fits {
            return Err(Error::LengthExceedsInput {
                offset,
                len,
                remaining: self.remaining(),
            });
        }
        Ok(len as usize)
    }

    fn item(&mut self, depth: usize) -> Result<Item<'a>, Error> {
        let start = self.pos;
        if depth > MAX_DEPTH {
            return Err(Error::TooDeep {
                offset: start,
                limit: MAX_DEPTH,
            });
        }
        let (major, info, arg) = self.head()?;
        match (major, arg) {
            (0, Arg::Value(n)) => i64::try_from(n)
                .map(Item::Int)
                .map_err(|_| Error::IntegerOutOfRange { offset: start }),
            (1, Arg::Value(n)) => i64::try_from(n)
                .map(|n| Item::Int(-1 - n))
                .map_err(|_| Error::IntegerOutOfRange { offset: start }),
            (2, Arg::Value(n)) => {
                let len = self.length(start, n, 1)?;
                Ok(Item::Bytes(Cow::Borrowed(self.take(len)?)))
            }
            (2, Arg::Indefinite) => Ok(Item::Bytes(Cow::Owned(self.chunks(2)?))),
            (3, Arg::Value(n)) => {
                let len = self.length(start, n, 1)?;
                let bytes = self.take(len)?;
                let text =
                    std::str::from_utf8(bytes).map_err(|_| Error::InvalidUtf8 { offset: start })?;
                Ok(Item::Text(Cow::Borrowed(text)))
            }
            (3, Arg::Indefinite) => {
                let bytes = self.chunks(3)?;
                let text =
                    String::from_utf8(bytes).map_err(|_| Error::InvalidUtf8 { offset: start })?;
                Ok(Item::Text(Cow::Owned(text)))
            }
            (4, Arg::Value(n)) => {
                let len = self.length(start, n, 1)?;
                let mut items = Vec::with_capacity(len);
                for _ in 0..len {
                    items.push(self.item(depth + 1)?);
                }
                Ok(Item::Array(items))
            }
            (4, Arg::Indefinite) => {
                let mut items = Vec::new();
                while !self.at_break()? {
                    items.push(self.item(depth + 1)?);
                }
                Ok(Item::Array(items))
            }
            (5, Arg::Value(n)) => {
                let len = self.length(start, n, 2)?;
                let mut entries = Vec::with_capacity(len);
                for _ in 0..len {
                    entries.push(self.entry(depth)?);
                }
                check_unique_keys(&entries, start)?;
                Ok(Item::Map(entries))
            }
            (5, Arg::Indefinite) => {
                let mut entries = Vec::new();
                while !self.at_break()? {
                    entries.push(self.entry(depth)?);
                }
                check_unique_keys(&entries, start)?;
                Ok(Item::Map(entries))
            }
            (6, Arg::Value(tag)) => Ok(Item::Tag(tag, Box::new(self.item(depth + 1)?))),
            (7, arg) => self.simple(start, info, arg),
            (_, Arg::Indefinite) => {
                Err(self.malformed(start, "indefinite length on an integer or tag"))
            }
            _ => Err(self.malformed(start, "unknown major type")),
        }
    }

    fn entry(&mut self, depth: usize) -> Result<(Item<'a>, Item<'a>), Error> {
        let key = self.item(depth + 1)?;
        let value = self.item(depth + 1)?;
        Ok((key, value))
    }

    /// Consumes a break byte (`0xff`) if one is next.
    fn at_break(&mut self) -> Result<bool, Error> {
        match self.input.get(self.pos) {
            Some(0xff) => {
                self.pos += 1;
                Ok(true)
            }
            Some(_) => Ok(false),
            None => Err(Error::Truncated {
                offset: self.input.len(),
            }),
        }
    }

    /// The chunks of an indefinite-length string, each a definite string of
    /// the same major type.
    fn chunks(&mut self, major: u8) -> Result<Vec<u8>, Error> {
        let mut out = Vec::new();
        while !self.at_break()? {
            let start = self.pos;
            let (chunk_major, _, arg) = self.head()?;
            let Arg::Value(n) = arg else {
                return Err(self.malformed(start, "nested indefinite-length string chunk"));
            };
            if chunk_major != major {
                return Err(self.malformed(start, "string chunk of another major type"));
            }
            let len = self.length(start, n, 1)?;
            let chunk = self.take(len)?;
            if major == 3 && std::str::from_utf8(chunk).is_err() {
                return Err(Error::InvalidUtf8 { offset: start });
            }
            out.extend_from_slice(chunk);
        }
        Ok(out)
    }

    fn simple(&mut self, start: usize, info: u8, arg: Arg) -> Result<Item<'a>, Error> {
        let Arg::Value(bits) = arg else {
            return Err(self.malformed(start, "break outside an indefinite-length item"));
        };
        match info {
            20 => Ok(Item::Bool(false)),
            21 => Ok(Item::Bool(true)),
            22 => Ok(Item::Null),
            25..=27 => {
                let value = match info {
                    25 => f16_to_f64(bits as u16),
                    26 => f64::from(f32::from_bits(bits as u32)),
                    _ => f64::from_bits(bits),
                };
                if !value.is_finite() {
                    return Err(Error::NonFiniteFloat { offset: start });
                }
                Ok(Item::Float(value))
            }
            _ => Err(Error::SimpleValue {
                offset: start,
                value: bits,
            }),
        }
    }
}

/// Kubernetes' decoder rejects a map that repeats a key. A text key and a
/// byte-string key with the same bytes name the same field, so they clash.
fn check_unique_keys(entries: &[(Item<'_>, Item<'_>)], offset: usize) -> Result<(), Error> {
    #[derive(PartialEq, Eq, Hash)]
    enum KeyId<'k> {
        Str(&'k [u8]),
        Int(i64),
        Other(String),
    }
    fn id<'k>(key: &'k Item<'_>) -> KeyId<'k> {
        match key {
            Item::Bytes(b) => KeyId::Str(b),
            Item::Text(t) => KeyId::Str(t.as_bytes()),
            Item::Int(i) => KeyId::Int(*i),
            other => KeyId::Other(format!("{other:?}")),
        }
    }
    let duplicate = if entries.len() <= 16 {
        entries
            .iter()
            .enumerate()
            .any(|(i, (k, _))| entries[..i].iter().any(|(prev, _)| id(prev) == id(k)))
    } else {
        let mut seen = HashSet::with_capacity(entries.len());
        !entries.iter().all(|(k, _)| seen.insert(id(k)))
    };
    if duplicate {
        return Err(Error::DuplicateKey { offset });
    }
    Ok(())
}

/// IEEE 754 half precision to double.
pub(crate) fn f16_to_f64(half: u16) -> f64 {
    let sign = if half & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exponent = i32::from((half >> 10) & 0x1f);
    let mantissa = f64::from(half & 0x3ff);
    let magnitude = match exponent {
        0 => mantissa * 2f64.powi(-24),
        31 if mantissa == 0.0 => f64::INFINITY,
        31 => f64::NAN,
        _ => (1.0 + mantissa / 1024.0) * 2f64.powi(exponent - 15),
    };
    sign * magnitude
}
