//! The protobuf wire format: varints, keys, length-delimited payloads.
//! Every read is checked against the bytes that remain.

/// A protobuf wire type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum WireType {
    Varint,
    Fixed64,
    Len,
    Fixed32,
}

/// A field's value as it sits on the wire.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Raw<'a> {
    Varint(u64),
    Fixed64(u64),
    Len(&'a [u8]),
    Fixed32(u32),
}

impl Raw<'_> {
    pub fn wire_type(&self) -> WireType {
        match self {
            Raw::Varint(_) => WireType::Varint,
            Raw::Fixed64(_) => WireType::Fixed64,
            Raw::Len(_) => WireType::Len,
            Raw::Fixed32(_) => WireType::Fixed32,
        }
    }
}

/// What went wrong reading the wire format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum WireError {
    /// The input ends inside a value.
    Truncated,
    /// A varint longer than 10 bytes.
    VarintTooLong,
    /// A wire type windlass does not read (groups, 6, 7).
    BadWireType(u8),
    /// Field number 0.
    ZeroTag,
}

impl std::fmt::Display for WireError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WireError::Truncated => f.write_str("input ends inside a value"),
            WireError::VarintTooLong => f.write_str("varint longer than 10 bytes"),
            WireError::BadWireType(t) => write!(f, "unsupported wire type {t}"),
            WireError::ZeroTag => f.write_str("field number 0"),
        }
    }
}

/// A cursor over the bytes of one message.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf }
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// One varint. One- and two-byte varints (every key and most lengths)
    /// take the short path.
    #[inline(always)]
    pub fn varint(&mut self) -> Result<u64, WireError> {
        match *self.buf {
            [b0, ref rest @ ..] if b0 < 0x80 => {
                self.buf = rest;
                Ok(u64::from(b0))
            }
            [b0, b1, ref rest @ ..] if b1 < 0x80 => {
                self.buf = rest;
                Ok(u64::from(b0 & 0x7f) | (u64::from(b1) << 7))
            }
            _ => self.varint_long(),
        }
    }

    #[inline(never)]
    fn varint_long(&mut self) -> Result<u64, WireError> {
        let mut value = 0u64;
        for (i, &byte) in self.buf.iter().enumerate().take(10) {
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                self.buf = &self.buf[i + 1..];
                return Ok(value);
            }
        }
        if self.buf.len() >= 10 {
            Err(WireError::VarintTooLong)
        } else {
            Err(WireError::Truncated)
        }
    }

    pub fn fixed64(&mut self) -> Result<u64, WireError> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }

    pub fn fixed32(&mut self) -> Result<u32, WireError> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }

    fn take(&mut self, len: usize) -> Result<&'a [u8], WireError> {
        if len > self.buf.len() {
            return Err(WireError::Truncated);
        }
        let (head, tail) = self.buf.split_at(len);
        self.buf = tail;
        Ok(head)
    }

    /// The next field: its number and value. `None` at the end of the message.
    /// Inlined into each caller: the field's parts then stay in registers
    /// instead of coming back through memory.
    #[inline(always)]
    pub fn field(&mut self) -> Result<Option<(u32, Raw<'a>)>, WireError> {
        if self.buf.is_empty() {
            return Ok(None);
        }
        let key = self.varint()?;
        let tag = u32::try_from(key >> 3).unwrap_or(u32::MAX);
        if tag == 0 {
            return Err(WireError::ZeroTag);
        }
        // Length-delimited first, then varints: nearly every field is one
        // of the two (tested in that order rather than through a jump table).
        let wire_type = key & 7;
        let raw = if wire_type == 2 {
            let len = self.varint()?;
            if len > self.buf.len() as u64 {
                return Err(WireError::Truncated);
            }
            let (head, tail) = self.buf.split_at(len as usize);
            self.buf = tail;
            Raw::Len(head)
        } else if wire_type == 0 {
            Raw::Varint(self.varint()?)
        } else {
            match wire_type {
                1 => Raw::Fixed64(self.fixed64()?),
                5 => Raw::Fixed32(self.fixed32()?),
                t => return Err(WireError::BadWireType(t as u8)),
            }
        };
        Ok(Some((tag, raw)))
    }
}

/// Append a varint.
#[inline]
pub(crate) fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    if value < 0x80 {
        out.push(value as u8);
        return;
    }
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Write a varint at the start of `out` (at least 10 bytes long); returns
/// its length.
#[inline]
pub(crate) fn put_varint_at(out: &mut [u8], mut value: u64) -> usize {
    let mut n = 0;
    while value >= 0x80 {
        out[n] = (value as u8) | 0x80;
        value >>= 7;
        n += 1;
    }
    out[n] = value as u8;
    n + 1
}

/// Append a field key.
#[inline]
pub(crate) fn put_key(out: &mut Vec<u8>, tag: u32, wire_type: WireType) {
    let wt = match wire_type {
        WireType::Varint => 0,
        WireType::Fixed64 => 1,
        WireType::Len => 2,
        WireType::Fixed32 => 5,
    };
    put_varint(out, (u64::from(tag) << 3) | wt);
}

/// Start a length-delimited field written in place: its key and a one-byte
/// length placeholder. Returns where the field's bytes start, for
/// [`close_len`].
#[inline]
pub(crate) fn open_len(out: &mut Vec<u8>, tag: u32) -> usize {
    put_key(out, tag, WireType::Len);
    out.push(0);
    out.len()
}

/// [`open_len`] for a field expected to reach 128 bytes: a two-byte length
/// placeholder, for [`close_len_wide`].
#[inline]
pub(crate) fn open_len_wide(out: &mut Vec<u8>, tag: u32) -> usize {
    put_key(out, tag, WireType::Len);
    out.extend_from_slice(&[0x80, 0]);
    out.len()
}

/// [`open_len`] with a length placeholder of `width` bytes (1 to 3): for
/// a field whose length is guessed to take that many, such as a whole
/// object like the last one written. [`close_len_width`] fills it in.
#[inline]
pub(crate) fn open_len_width(out: &mut Vec<u8>, tag: u32, width: usize) -> usize {
    put_key(out, tag, WireType::Len);
    let width = width.clamp(1, 3);
    out.extend_from_slice(&[0x80, 0x80, 0][3 - width..]);
    out.len()
}

/// Fill in the length of the field [`open_len_width`] started at `start`
/// with a placeholder of `width` bytes: no move when the length takes that
/// many, else the bytes move down or up.
pub(crate) fn close_len_width(out: &mut Vec<u8>, start: usize, width: usize) {
    let len = out.len() - start;
    resize_len(out, start, width.clamp(1, 3), len);
}

/// The length of `value` as a varint.
#[inline]
pub(crate) fn varint_len(value: u64) -> usize {
    // One byte for each 7 bits, at least one.
    (64 - (value | 1).leading_zeros() as usize).div_ceil(7)
}

/// Fill in the length of the field [`open_len`] started at `start`, now that
/// its bytes run to the end of `out`. A length of 128 or more needs a longer
/// varint: the bytes move up to make room (once per such field), so the
/// output is byte for byte what writing the length first would give, as
/// Go's encoder does.
#[inline]
pub(crate) fn close_len(out: &mut Vec<u8>, start: usize) {
    let len = out.len() - start;
    if len < 0x80 {
        out[start - 1] = len as u8;
        return;
    }
    resize_len(out, start, 1, len);
}

/// [`close_len`] for a field [`open_len_wide`] started: no move when the
/// length takes two bytes (128 to 16,383), else the bytes move down or up.
#[inline]
pub(crate) fn close_len_wide(out: &mut Vec<u8>, start: usize) {
    let len = out.len() - start;
    if (0x80..0x4000).contains(&len) {
        out[start - 2] = len as u8 | 0x80;
        out[start - 1] = (len >> 7) as u8;
        return;
    }
    resize_len(out, start, 2, len);
}

/// Write `len` as the length of the field whose bytes start at `start`
/// after a placeholder of `placeholder` bytes, moving the bytes to fit.
#[inline(never)]
fn resize_len(out: &mut Vec<u8>, start: usize, placeholder: usize, len: usize) {
    let (mut varint, mut n, mut rest) = ([0u8; 10], 0, len as u64);
    while rest >= 0x80 {
        varint[n] = (rest as u8) | 0x80;
        rest >>= 7;
        n += 1;
    }
    varint[n] = rest as u8;
    n += 1;
    if n > placeholder {
        let extra = n - placeholder;
        out.resize(out.len() + extra, 0);
        out.copy_within(start..start + len, start + extra);
    } else if n < placeholder {
        let less = placeholder - n;
        out.copy_within(start..start + len, start - less);
        out.truncate(out.len() - less);
    }
    let at = start - placeholder;
    out[at..at + n].copy_from_slice(&varint[..n]);
}

/// Append a `Time`/`MicroTime` field, `{1: seconds, 2: nanos}` (both
/// written, as Go does): at most 22 bytes, so its length is one byte.
#[inline]
pub(crate) fn put_time(out: &mut Vec<u8>, tag: u32, seconds: i64, nanos: i32) {
    let mut body = [0u8; 23];
    let mut len = 1;
    body[len] = 0x08;
    len += 1 + put_varint_at(&mut body[len + 1..], seconds as u64);
    body[len] = 0x10;
    len += 1 + put_varint_at(&mut body[len + 1..], i64::from(nanos) as u64);
    body[0] = (len - 1) as u8;
    put_key(out, tag, WireType::Len);
    out.extend_from_slice(&body[..len]);
}

/// Append a length-delimited field.
#[inline]
pub(crate) fn put_bytes(out: &mut Vec<u8>, tag: u32, bytes: &[u8]) {
    // The common cases in one piece: a key of one or two bytes (fields 1
    // to 2047) and a one-byte length, one reservation for all of it.
    let key = (tag << 3) | 2;
    if bytes.len() < 0x80 && key < 0x4000 {
        out.reserve(bytes.len() + 3);
        if key < 0x80 {
            out.extend_from_slice(&[key as u8, bytes.len() as u8]);
        } else {
            out.extend_from_slice(&[key as u8 | 0x80, (key >> 7) as u8, bytes.len() as u8]);
        }
        out.extend_from_slice(bytes);
        return;
    }
    put_bytes_long(out, tag, bytes);
}

#[inline(never)]
fn put_bytes_long(out: &mut Vec<u8>, tag: u32, bytes: &[u8]) {
    out.reserve(bytes.len() + 15);
    put_key(out, tag, WireType::Len);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protobuf_wire_varint_round_trips_and_rejects_overlong() {
        for v in [0u64, 1, 127, 128, 300, u32::MAX as u64, u64::MAX] {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            assert_eq!(Reader::new(&out).varint(), Ok(v));
            assert_eq!(
                Reader::new(&out[..out.len() - 1]).varint(),
                Err(WireError::Truncated)
            );
        }
        assert_eq!(
            Reader::new(&[0xff; 11]).varint(),
            Err(WireError::VarintTooLong)
        );
    }

    #[test]
    fn protobuf_wire_fields_written_in_place_match_length_first() {
        for len in [0usize, 1, 127, 128, 300, 16_383, 16_384, 70_000, 2_097_152] {
            let payload: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let mut expected = vec![7];
            put_bytes(&mut expected, 5, &payload);
            let mut out = vec![7];
            let start = open_len(&mut out, 5);
            out.extend_from_slice(&payload);
            close_len(&mut out, start);
            assert_eq!(out, expected, "length {len}");
            let mut out = vec![7];
            let start = open_len_wide(&mut out, 5);
            out.extend_from_slice(&payload);
            close_len_wide(&mut out, start);
            assert_eq!(out, expected, "length {len}, two-byte placeholder");
        }
    }

    #[test]
    fn protobuf_wire_varint_len_matches_put_varint() {
        for v in [
            0u64,
            1,
            127,
            128,
            16_383,
            16_384,
            2_097_151,
            2_097_152,
            u64::MAX,
        ] {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            assert_eq!(varint_len(v), out.len(), "{v}");
        }
    }

    #[test]
    fn protobuf_wire_length_beyond_input_is_truncated() {
        // field 1, wire type 2, length 2^32: no allocation, an error.
        let mut out = Vec::new();
        put_key(&mut out, 1, WireType::Len);
        put_varint(&mut out, 1 << 32);
        out.extend_from_slice(b"abc");
        assert_eq!(Reader::new(&out).field().unwrap_err(), WireError::Truncated);
    }
}
