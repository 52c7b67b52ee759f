//! Finding frames in a watch body, incrementally: bytes come in any
//! chunking, each complete frame comes out once, and a partial frame is
//! scanned only once however many chunks it arrives in (the scanners keep
//! their cursor and state between chunks, so decoding is O(n)).
//!
//! | framing | media type | a frame is |
//! |---|---|---|
//! | [`Framing::JsonStream`] | `application/json` | one top-level JSON object, any whitespace around it, no reliance on newlines |
//! | [`Framing::LengthPrefixed`] | `application/vnd.kubernetes.protobuf;stream=watch` | a 4-byte big-endian length, then that many bytes |
//! | [`Framing::CborSequence`] | `application/cbor-seq` | one complete CBOR data item (RFC 8742) |
//!
//! A frame longer than [`Limits::max_frame`] is an error as soon as its
//! length is known (a length prefix, a CBOR string head) or as soon as that
//! many bytes have been scanned without the frame ending — never after
//! buffering it.

use std::ops::Range;

use super::DecodeError;

/// Bounds on what a watch decoder buffers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// The longest frame accepted, in bytes (client-go: 16 MiB).
    pub max_frame: usize,
}

impl Limits {
    /// client-go's frame limit, 16 MiB.
    pub const DEFAULT_MAX_FRAME: usize = 16 << 20;
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_frame: Self::DEFAULT_MAX_FRAME,
        }
    }
}

/// How a watch body is cut into events.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Framing {
    /// Concatenated JSON objects (`application/json`).
    JsonStream,
    /// 4-byte big-endian length-prefixed frames (`application/vnd.kubernetes.protobuf;stream=watch`).
    LengthPrefixed,
    /// A CBOR sequence (`application/cbor-seq`).
    CborSequence,
}

/// Cuts a byte stream into frames. Feed with [`FrameDecoder::push`], drain
/// with [`FrameDecoder::next_frame`] after every push, then
/// [`FrameDecoder::compact`].
#[derive(Debug)]
pub(crate) struct FrameDecoder {
    framing: Framing,
    limits: Limits,
    buf: Vec<u8>,
    /// The scan cursor.
    pos: usize,
    /// Where the frame being scanned starts (its first byte or, for
    /// length-prefixed frames, its prefix).
    start: Option<usize>,
    /// Bytes dropped from the front of `buf` so far (for offsets in errors).
    dropped: u64,
    json: JsonScan,
    cbor: CborScan,
}

#[derive(Debug, Default)]
struct JsonScan {
    depth: usize,
    in_string: bool,
    escaped: bool,
    /// What the event object's top level expects next.
    member: Member,
    /// Where the top-level key or value being read starts, from the frame's start.
    mark: usize,
    /// Which top-level key the value being read belongs to.
    key: Key,
    /// What the frame's top level holds so far.
    fields: JsonFields,
}

/// The top level of a JSON watch event, `{"type": T, "object": {...}}`, as
/// the frame scanner finds it: the raw `type` and `object` values, and what
/// is wrong with the frame, if anything. Ranges are from the frame's start.
///
/// The scan also checks UTF-8 as it goes: only bytes from 0x80 up are
/// looked at, so a frame is read once before serde_json parses its object.
#[derive(Debug, Default, Clone)]
pub(crate) struct JsonFields {
    /// The raw value of the last `type` key.
    pub event_type: Option<Range<usize>>,
    /// The raw value of the last `object` key.
    pub object: Option<Range<usize>>,
    /// Where the first invalid UTF-8 byte sits.
    pub invalid_utf8: Option<usize>,
    /// The first place the top level is not `{"key": value, ...}`.
    pub malformed: Option<&'static str>,
}

/// The top level's grammar, one state per token expected.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Member {
    /// After `{`: a key or `}`.
    #[default]
    KeyOrEnd,
    /// After `,`: a key.
    Key,
    /// Inside a key string.
    InKey,
    /// After a key: `:`.
    Colon,
    /// After `:`: a value.
    Value,
    /// Inside a string value.
    InString,
    /// Inside an object or array value (depth above 1).
    InNested,
    /// Inside a number, `true`, `false` or `null`.
    InLiteral,
    /// After a value: `,` or `}`.
    AfterValue,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Key {
    #[default]
    Other,
    Type,
    Object,
}

impl JsonScan {
    fn open_frame(&mut self) {
        self.depth = 1;
        self.member = Member::KeyOrEnd;
        self.fields = JsonFields::default();
    }

    fn malformed(&mut self, what: &'static str) {
        self.fields.malformed.get_or_insert(what);
    }

    /// A top-level value ended just before `end`.
    fn value_done(&mut self, end: usize) {
        let range = self.mark..end;
        match self.key {
            Key::Type => self.fields.event_type = Some(range),
            Key::Object => self.fields.object = Some(range),
            Key::Other => {}
        }
        self.member = Member::AfterValue;
    }

    /// One byte at the top level, outside strings (`rel` is its offset in
    /// the frame); brackets, quotes and depth are the caller's.
    fn top_level(&mut self, b: u8, rel: usize) {
        let ws = matches!(b, b' ' | b'\t' | b'\r' | b'\n');
        match (self.member, b) {
            (Member::InLiteral, _) if ws => self.value_done(rel),
            (Member::InLiteral, b',') => {
                self.value_done(rel);
                self.member = Member::Key;
            }
            (Member::InLiteral, b'}') => self.value_done(rel),
            (Member::InLiteral, b'"' | b'{' | b'[' | b']' | b':') => {
                self.malformed("malformed value")
            }
            (Member::InLiteral, _) | (_, b' ' | b'\t' | b'\r' | b'\n') => {}
            (Member::KeyOrEnd | Member::Key, b'"') => {
                self.member = Member::InKey;
                self.mark = rel + 1;
            }
            (Member::KeyOrEnd | Member::AfterValue, b'}') => {}
            (Member::KeyOrEnd | Member::Key, _) => self.malformed("expected a key"),
            (Member::Colon, b':') => self.member = Member::Value,
            (Member::Colon, _) => self.malformed("expected ':' after a key"),
            (Member::Value, b'"') => {
                self.member = Member::InString;
                self.mark = rel;
            }
            (Member::Value, b'{' | b'[') => {
                self.member = Member::InNested;
                self.mark = rel;
            }
            (Member::Value, b',' | b'}' | b']' | b':') => self.malformed("malformed value"),
            (Member::Value, _) => {
                self.member = Member::InLiteral;
                self.mark = rel;
            }
            (Member::AfterValue, b',') => self.member = Member::Key,
            (Member::AfterValue, _) => self.malformed("expected ',' or '}' after a value"),
            // Strings and nested values are followed by the caller.
            (Member::InKey | Member::InString | Member::InNested, _) => {}
        }
    }
}

/// What the bytes from a byte at or above 0x80 hold.
enum Utf8Char {
    /// A whole character of this many bytes.
    Valid(usize),
    /// The start of a valid character the buffer does not hold all of yet.
    Incomplete,
    Invalid,
}

fn utf8_char(bytes: &[u8]) -> Utf8Char {
    let len = match bytes[0] {
        0xc2..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xf4 => 4,
        _ => return Utf8Char::Invalid,
    };
    match std::str::from_utf8(&bytes[..len.min(bytes.len())]) {
        Ok(_) if bytes.len() >= len => Utf8Char::Valid(len),
        Err(e) if e.error_len().is_none() => Utf8Char::Incomplete,
        _ => Utf8Char::Invalid,
    }
}

/// The index of the first `"`, `\\` or non-ASCII byte, or `s.len()`: eight
/// bytes at a time (the lowest byte flagged by each zero-byte test is exact).
fn string_stop(s: &[u8]) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let zero = |x: u64| x.wrapping_sub(ONES) & !x;
    let mut chunks = s.chunks_exact(8);
    let mut at = 0;
    for chunk in chunks.by_ref() {
        let v = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
        let hits =
            (zero(v ^ (ONES * u64::from(b'"'))) | zero(v ^ (ONES * u64::from(b'\\'))) | v) & HIGH;
        if hits != 0 {
            return at + (hits.trailing_zeros() / 8) as usize;
        }
        at += 8;
    }
    at + chunks
        .remainder()
        .iter()
        .position(|&b| b == b'"' || b == b'\\' || b >= 0x80)
        .unwrap_or(chunks.remainder().len())
}

/// An incremental CBOR item skipper: a stack of what each open container
/// still expects.
#[derive(Debug, Default)]
struct CborScan {
    open: Vec<Open>,
    /// String bytes still to skip.
    skip: u64,
}

#[derive(Debug, Clone, Copy)]
enum Open {
    /// A definite array, map or tag: items still expected.
    Items(u64),
    /// An indefinite array or map, ended by a break.
    Indefinite,
    /// An indefinite string of this major type, made of definite chunks.
    Chunks(u8),
}

/// How deep a CBOR item may nest before framing gives up (the item decoder
/// has its own, equal limit).
const CBOR_MAX_OPEN: usize = crate::codec::cbor::MAX_DEPTH + 1;

impl FrameDecoder {
    pub(crate) fn new(framing: Framing, limits: Limits) -> Self {
        Self {
            framing,
            limits,
            buf: Vec::new(),
            pos: 0,
            start: None,
            dropped: 0,
            json: JsonScan::default(),
            cbor: CborScan::default(),
        }
    }

    pub(crate) fn framing(&self) -> Framing {
        self.framing
    }

    /// Appends bytes. Callers keep chunks small relative to the frame
    /// limit (the watch decoder feeds at most 64 KiB at a time).
    pub(crate) fn push(&mut self, chunk: &[u8]) {
        self.buf.extend_from_slice(chunk);
    }

    /// Bytes held: the frame being scanned and any not scanned yet.
    pub(crate) fn buffered(&self) -> usize {
        self.buf.len() - self.start.unwrap_or(self.pos).min(self.buf.len())
    }

    /// The bytes of a frame returned by [`Self::next_frame`].
    pub(crate) fn bytes(&self, range: Range<usize>) -> &[u8] {
        &self.buf[range]
    }

    /// The next complete frame, if the buffer holds one.
    pub(crate) fn next_frame(&mut self) -> Result<Option<Range<usize>>, DecodeError> {
        match self.framing {
            Framing::JsonStream => self.next_json(),
            Framing::LengthPrefixed => self.next_length_prefixed(),
            Framing::CborSequence => self.next_cbor(),
        }
    }

    /// Drops the bytes of frames already returned (and whitespace between
    /// them) from the buffer's front. Call once every returned frame has
    /// been used.
    pub(crate) fn compact(&mut self) {
        let keep_from = self.start.unwrap_or(self.pos);
        if keep_from == 0 {
            return;
        }
        self.buf.drain(..keep_from);
        self.dropped += keep_from as u64;
        self.pos -= keep_from;
        if let Some(start) = &mut self.start {
            *start -= keep_from;
        }
    }

    /// The bytes not scanned yet while no frame is open (empty while one
    /// is): for a caller that reads a container's head itself and frames
    /// only what follows it (the informer's CBOR list decoder).
    pub(crate) fn unscanned(&self) -> &[u8] {
        match self.start {
            Some(_) => &[],
            None => &self.buf[self.pos..],
        }
    }

    /// Consumes `n` bytes of [`Self::unscanned`].
    pub(crate) fn consume(&mut self, n: usize) {
        debug_assert!(self.start.is_none() && n <= self.buf.len() - self.pos);
        self.pos += n;
    }

    /// At the end of the body: an error if a frame was left unfinished.
    pub(crate) fn finish(&self) -> Result<(), DecodeError> {
        let partial = match self.start {
            Some(start) => self.buf.len() - start,
            // Unscanned bytes (protobuf prefix shorter than 4 bytes).
            None => self.buf.len() - self.pos,
        };
        if partial > 0 {
            return Err(DecodeError::TruncatedAtEof { buffered: partial });
        }
        Ok(())
    }

    fn too_large(&self, len: u64) -> DecodeError {
        DecodeError::FrameTooLarge {
            len,
            limit: self.limits.max_frame,
        }
    }

    /// The top level of the JSON frame [`Self::next_frame`] returned last.
    pub(crate) fn take_json_fields(&mut self) -> JsonFields {
        std::mem::take(&mut self.json.fields)
    }

    fn next_json(&mut self) -> Result<Option<Range<usize>>, DecodeError> {
        let buf = &self.buf;
        let mut pos = self.pos;
        let scan = &mut self.json;
        while pos < buf.len() {
            let Some(start) = self.start else {
                match buf[pos] {
                    b' ' | b'\t' | b'\r' | b'\n' => pos += 1,
                    b'{' => {
                        self.start = Some(pos);
                        scan.open_frame();
                        pos += 1;
                    }
                    other => {
                        return Err(DecodeError::Framing {
                            offset: self.dropped + pos as u64,
                            what: format!(
                                "expected '{{' to open a watch event, found byte 0x{other:02x}"
                            ),
                        });
                    }
                }
                continue;
            };
            if scan.escaped {
                scan.escaped = false;
                pos += 1;
                continue;
            }
            let b = buf[pos];
            if b >= 0x80 {
                if scan.depth == 1 && !scan.in_string {
                    // Not JSON outside a string; a literal's bytes, say.
                    scan.top_level(b'x', pos - start);
                }
                match utf8_char(&buf[pos..]) {
                    Utf8Char::Valid(len) => pos += len,
                    Utf8Char::Incomplete => break,
                    Utf8Char::Invalid => {
                        scan.fields.invalid_utf8.get_or_insert(pos - start);
                        pos += 1;
                    }
                }
                continue;
            }
            if scan.in_string {
                match b {
                    b'"' => {
                        scan.in_string = false;
                        if scan.depth == 1 {
                            match scan.member {
                                Member::InKey => {
                                    scan.key = match &buf[start + scan.mark..pos] {
                                        b"type" => Key::Type,
                                        b"object" => Key::Object,
                                        _ => Key::Other,
                                    };
                                    scan.member = Member::Colon;
                                }
                                _ => scan.value_done(pos + 1 - start),
                            }
                        }
                        pos += 1;
                    }
                    b'\\' => {
                        scan.escaped = true;
                        pos += 1;
                    }
                    // Jump to the next quote, backslash or non-ASCII byte.
                    _ => pos += string_stop(&buf[pos..]),
                }
                continue;
            }
            if scan.depth == 1 {
                scan.top_level(b, pos - start);
            }
            match b {
                b'"' => scan.in_string = true,
                b'{' | b'[' => scan.depth += 1,
                b'}' | b']' => {
                    scan.depth -= 1;
                    match scan.depth {
                        0 => {
                            let end = pos + 1;
                            if end - start > self.limits.max_frame {
                                return Err(self.too_large((end - start) as u64));
                            }
                            self.pos = end;
                            self.start = None;
                            return Ok(Some(start..end));
                        }
                        1 => scan.value_done(pos + 1 - start),
                        _ => {}
                    }
                }
                _ => {}
            }
            pos += 1;
        }
        self.pos = pos;
        match self.start {
            Some(start) if pos - start > self.limits.max_frame => {
                Err(self.too_large((pos - start) as u64))
            }
            _ => Ok(None),
        }
    }

    fn next_length_prefixed(&mut self) -> Result<Option<Range<usize>>, DecodeError> {
        let start = self.pos;
        let Some(prefix) = self.buf.get(start..start + 4) else {
            return Ok(None);
        };
        let len = u32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]);
        if len as usize > self.limits.max_frame {
            return Err(self.too_large(len.into()));
        }
        self.start = Some(start);
        let end = start + 4 + len as usize;
        if self.buf.len() < end {
            return Ok(None);
        }
        self.pos = end;
        self.start = None;
        Ok(Some(start + 4..end))
    }

    fn next_cbor(&mut self) -> Result<Option<Range<usize>>, DecodeError> {
        loop {
            let start = *self.start.get_or_insert(self.pos);
            if self.cbor.skip > 0 {
                let available = (self.buf.len() - self.pos) as u64;
                let step = self.cbor.skip.min(available);
                self.pos += step as usize;
                self.cbor.skip -= step;
                if self.cbor.skip > 0 {
                    return Ok(None);
                }
                if let Some(end) = self.cbor_item_done() {
                    self.start = None;
                    return Ok(Some(start..end));
                }
                continue;
            }
            let Some((major, info, arg, head_len)) = cbor_head(&self.buf[self.pos..]) else {
                if self.pos == start {
                    // Nothing of this item yet: no frame is open.
                    self.start = None;
                }
                return Ok(None);
            };
            let offset = self.dropped + self.pos as u64;
            let malformed = |what: &str| DecodeError::Framing {
                offset,
                what: format!("malformed CBOR item: {what}"),
            };
            if (28..=30).contains(&info) {
                return Err(malformed("reserved additional information"));
            }
            self.pos += head_len;
            let indefinite = info == 31;
            if let Some(Open::Chunks(string_major)) = self.cbor.open.last()
                && !(major == 7 && indefinite)
                && (major != *string_major || indefinite)
            {
                return Err(malformed("bad chunk in an indefinite-length string"));
            }
            let done = match (major, indefinite) {
                (0 | 1, false) | (7, false) => true,
                (2 | 3, false) => {
                    let room =
                        (self.limits.max_frame as u64).saturating_sub((self.pos - start) as u64);
                    if arg > room {
                        return Err(self.too_large(((self.pos - start) as u64).saturating_add(arg)));
                    }
                    self.cbor.skip = arg;
                    arg == 0
                }
                (2 | 3, true) => self.cbor_open(Open::Chunks(major), offset)?,
                (4, false) => arg == 0 || self.cbor_open(Open::Items(arg), offset)?,
                (5, false) => {
                    let items = arg
                        .checked_mul(2)
                        .ok_or_else(|| malformed("map length overflows"))?;
                    items == 0 || self.cbor_open(Open::Items(items), offset)?
                }
                (4 | 5, true) => self.cbor_open(Open::Indefinite, offset)?,
                (6, false) => self.cbor_open(Open::Items(1), offset)?,
                (7, true) => match self.cbor.open.pop() {
                    Some(Open::Indefinite | Open::Chunks(_)) => true,
                    _ => return Err(malformed("break outside an indefinite-length item")),
                },
                _ => return Err(malformed("indefinite length on an integer or tag")),
            };
            if self.pos - start > self.limits.max_frame {
                return Err(self.too_large((self.pos - start) as u64));
            }
            if done
                && self.cbor.skip == 0
                && let Some(end) = self.cbor_item_done()
            {
                self.start = None;
                return Ok(Some(start..end));
            }
        }
    }

    /// Opens a container; never completes an item, so returns `false`.
    fn cbor_open(&mut self, open: Open, offset: u64) -> Result<bool, DecodeError> {
        if self.cbor.open.len() >= CBOR_MAX_OPEN {
            return Err(DecodeError::Framing {
                offset,
                what: format!("CBOR item nests deeper than {CBOR_MAX_OPEN} levels"),
            });
        }
        self.cbor.open.push(open);
        Ok(false)
    }

    /// One item ended at `pos`: count it against the open containers, and
    /// return the frame end when the top-level item is complete.
    fn cbor_item_done(&mut self) -> Option<usize> {
        loop {
            match self.cbor.open.last_mut() {
                None => return Some(self.pos),
                Some(Open::Items(n)) => {
                    *n -= 1;
                    if *n > 0 {
                        return None;
                    }
                    self.cbor.open.pop();
                }
                Some(Open::Indefinite | Open::Chunks(_)) => return None,
            }
        }
    }
}

/// A CBOR head: major type, additional information, argument, head length;
/// `None` when the bytes do not hold a whole head yet.
pub(crate) fn cbor_head(bytes: &[u8]) -> Option<(u8, u8, u64, usize)> {
    let initial = *bytes.first()?;
    let major = initial >> 5;
    let info = initial & 0x1f;
    let extra = match info {
        24 => 1,
        25 => 2,
        26 => 4,
        27 => 8,
        _ => 0,
    };
    let arg_bytes = bytes.get(1..1 + extra)?;
    let arg = if extra == 0 {
        u64::from(info)
    } else {
        arg_bytes.iter().fold(0u64, |n, b| n << 8 | u64::from(*b))
    };
    Some((major, info, arg, 1 + extra))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn frames(body: &[u8], cuts: &[usize]) -> Vec<(Vec<u8>, JsonFields)> {
        let mut decoder = FrameDecoder::new(Framing::JsonStream, Limits::default());
        let mut out = Vec::new();
        let mut at = 0;
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (body.len() + 1)).collect();
        cuts.sort_unstable();
        cuts.push(body.len());
        for cut in cuts {
            decoder.push(&body[at..cut]);
            at = cut;
            while let Some(range) = decoder.next_frame().unwrap() {
                let fields = decoder.take_json_fields();
                out.push((decoder.bytes(range).to_vec(), fields));
            }
            decoder.compact();
        }
        decoder.finish().unwrap();
        out
    }

    #[test]
    fn watch_json_scan_finds_type_and_object_and_checks_utf8() {
        let body = "{ \"object\" : {\"a\":[1,\"}\\\"é\"]} , \"x\":-1.5e3,\"type\":\"ADDED\" }\n{\"type\":\"b\\u00e9\"}";
        let found = frames(body.as_bytes(), &[]);
        assert_eq!(found.len(), 2);
        let (frame, fields) = &found[0];
        assert_eq!(&frame[fields.event_type.clone().unwrap()], b"\"ADDED\"");
        assert_eq!(
            &frame[fields.object.clone().unwrap()],
            "{\"a\":[1,\"}\\\"é\"]}".as_bytes()
        );
        assert_eq!((fields.invalid_utf8, fields.malformed), (None, None));
        assert!(found[1].1.object.is_none());

        for (bad, what) in [
            (&b"{\"type\" \"ADDED\"}"[..], "expected ':' after a key"),
            (
                b"{\"type\":\"ADDED\" \"object\":{}}",
                "expected ',' or '}' after a value",
            ),
            (b"{7:1}", "expected a key"),
            (b"{\"a\":tr ue}", "expected ',' or '}' after a value"),
            (b"{\"a\":,}", "malformed value"),
            (b"{\"a\":1]", "malformed value"),
        ] {
            let found = frames(bad, &[]);
            assert_eq!(
                found[0].1.malformed,
                Some(what),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        let found = frames(b"{\"a\":\"\xc3(\", \"b\":\xff}", &[]);
        assert_eq!(found[0].1.invalid_utf8, Some(6));
    }

    proptest! {
        #[test]
        fn watch_json_scan_split_anywhere_yields_same_fields(cuts in prop::collection::vec(any::<usize>(), 0..8)) {
            let body = [
                "{\"type\":\"MODIFIED\",\"object\":{\"n\":\"€𝄞é\",\"q\":\"\\\\\\\"\"}}{\"type\":\"x\",\"object\":null}\n".as_bytes(),
                b"{\"object\":\"\xe2\x82\"}",
            ]
            .concat();
            let whole = frames(&body, &[]);
            let split = frames(&body, &cuts);
            prop_assert_eq!(whole.len(), split.len());
            for ((a, fa), (b, fb)) in whole.iter().zip(&split) {
                prop_assert_eq!(a, b);
                prop_assert_eq!((&fa.event_type, &fa.object, fa.invalid_utf8, fa.malformed), (&fb.event_type, &fb.object, fb.invalid_utf8, fb.malformed));
            }
        }

        #[test]
        fn watch_json_string_stop_matches_a_byte_loop(bytes in prop::collection::vec(prop::sample::select(vec![b'a', b'"', b'\\', 0x80, 0xff, 0x7f, 0x00, 0x22 ^ 0x80, b'\\' ^ 0x80]), 0..40)) {
            let naive = bytes.iter().position(|&b| b == b'"' || b == b'\\' || b >= 0x80).unwrap_or(bytes.len());
            prop_assert_eq!(string_stop(&bytes), naive);
        }
    }
}
