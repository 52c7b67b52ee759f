//! The few protobuf messages a watch frame needs, read straight off the
//! wire: `meta.v1.WatchEvent{1:type, 2:RawExtension{1:raw}}`, the
//! `runtime.Unknown` envelope inside `raw`, and — so that bookmarks and
//! ERROR events decode without the full protobuf codec — `ObjectMeta`'s
//! resourceVersion and annotations, and `meta.v1.Status`. Objects of ADDED,
//! MODIFIED and DELETED go to the protobuf codec.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Status, StatusCause, StatusDetails};

use super::Bookmark;

/// A field value as the wire carries it.
enum Value<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Fixed,
}

/// Iterates over the fields of one message.
struct Fields<'a> {
    buf: &'a [u8],
    pos: usize,
}

fn fields(buf: &[u8]) -> Fields<'_> {
    Fields { buf, pos: 0 }
}

impl<'a> Fields<'a> {
    fn varint(&mut self) -> Result<u64, String> {
        let mut value = 0u64;
        for shift in (0..70).step_by(7) {
            let Some(&byte) = self.buf.get(self.pos) else {
                return Err(format!("varint truncated at byte {}", self.pos));
            };
            self.pos += 1;
            if shift == 63 && byte > 1 {
                return Err(format!("varint overflows at byte {}", self.pos - 1));
            }
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(format!("varint longer than 10 bytes at byte {}", self.pos))
    }

    fn skip(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|end| *end <= self.buf.len())
            .ok_or_else(|| {
                format!(
                    "field of {n} bytes at byte {} overruns the {}-byte message",
                    self.pos,
                    self.buf.len()
                )
            })?;
        let bytes = &self.buf[self.pos..end];
        self.pos = end;
        Ok(bytes)
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = Result<(u64, Value<'a>), String>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.buf.len() {
            return None;
        }
        let field = (|| {
            let key = self.varint()?;
            let value = match key & 7 {
                0 => Value::Varint(self.varint()?),
                1 => {
                    self.skip(8)?;
                    Value::Fixed
                }
                2 => {
                    let len = self.varint()?;
                    let len = usize::try_from(len).map_err(|_| "length overflows".to_string())?;
                    Value::Bytes(self.skip(len)?)
                }
                5 => {
                    self.skip(4)?;
                    Value::Fixed
                }
                wire => {
                    return Err(format!(
                        "unsupported wire type {wire} for field {}",
                        key >> 3
                    ));
                }
            };
            Ok((key >> 3, value))
        })();
        if field.is_err() {
            self.pos = self.buf.len();
        }
        Some(field)
    }
}

fn text<'a>(bytes: &'a [u8], what: &str) -> Result<&'a str, String> {
    std::str::from_utf8(bytes).map_err(|e| {
        format!(
            "{what} is not valid UTF-8 (at byte {} of the string)",
            e.valid_up_to()
        )
    })
}

/// A `meta.v1.WatchEvent`: its type and `object.raw`.
pub(crate) fn watch_event(frame: &[u8]) -> Result<(&[u8], &[u8]), String> {
    let mut event_type: &[u8] = &[];
    let mut raw: &[u8] = &[];
    for field in fields(frame) {
        match field? {
            (1, Value::Bytes(b)) => event_type = b,
            (2, Value::Bytes(extension)) => {
                for field in fields(extension) {
                    if let (1, Value::Bytes(b)) = field? {
                        raw = b;
                    }
                }
            }
            _ => {}
        }
    }
    Ok((event_type, raw))
}

/// A `runtime.Unknown` (after the `k8s\0` magic): its `contentType` and `raw`.
pub(crate) fn unknown(body: &[u8]) -> Result<(&str, &[u8]), String> {
    let mut content_type = "";
    let mut raw: &[u8] = &[];
    for field in fields(body) {
        match field? {
            (2, Value::Bytes(b)) => raw = b,
            (3, Value::Bytes(b)) if !b.is_empty() => {
                return Err(format!(
                    "runtime.Unknown has contentEncoding {:?}, which is not supported",
                    String::from_utf8_lossy(b)
                ));
            }
            (4, Value::Bytes(b)) => content_type = text(b, "runtime.Unknown contentType")?,
            _ => {}
        }
    }
    Ok((content_type, raw))
}

/// A bookmark from any object message whose field 1 is `ObjectMeta`
/// (resourceVersion 6, annotations 12).
pub(crate) fn bookmark(object: &[u8]) -> Result<Bookmark, String> {
    let mut bookmark = Bookmark::default();
    for field in fields(object) {
        let (1, Value::Bytes(meta)) = field? else {
            continue;
        };
        for field in fields(meta) {
            match field? {
                (6, Value::Bytes(b)) => {
                    bookmark.resource_version = text(b, "metadata.resourceVersion")?.to_owned();
                }
                (12, Value::Bytes(entry)) => {
                    let (key, value) = string_pair(entry)?;
                    bookmark.annotations.insert(key, value);
                }
                _ => {}
            }
        }
    }
    Ok(bookmark)
}

/// A `map<string,string>` entry: key 1, value 2.
fn string_pair(entry: &[u8]) -> Result<(String, String), String> {
    let (mut key, mut value) = ("", "");
    for field in fields(entry) {
        match field? {
            (1, Value::Bytes(b)) => key = text(b, "map key")?,
            (2, Value::Bytes(b)) => value = text(b, "map value")?,
            _ => {}
        }
    }
    Ok((key.to_owned(), value.to_owned()))
}

/// A `meta.v1.Status`: status 2, message 3, reason 4, details 5, code 6.
pub(crate) fn status(body: &[u8]) -> Result<Status, String> {
    let mut status = Status::default();
    for field in fields(body) {
        match field? {
            (2, Value::Bytes(b)) => status.status = Some(text(b, "status")?.to_owned()),
            (3, Value::Bytes(b)) => status.message = Some(text(b, "message")?.to_owned()),
            (4, Value::Bytes(b)) => status.reason = Some(text(b, "reason")?.to_owned()),
            (5, Value::Bytes(b)) => status.details = Some(status_details(b)?),
            (6, Value::Varint(code)) => status.code = Some(code as i32),
            _ => {}
        }
    }
    Ok(status)
}

/// `StatusDetails`: name 1, group 2, kind 3, causes 4, retryAfterSeconds 5, uid 6.
fn status_details(body: &[u8]) -> Result<StatusDetails, String> {
    let mut details = StatusDetails::default();
    for field in fields(body) {
        match field? {
            (1, Value::Bytes(b)) => details.name = Some(text(b, "details.name")?.to_owned()),
            (2, Value::Bytes(b)) => details.group = Some(text(b, "details.group")?.to_owned()),
            (3, Value::Bytes(b)) => details.kind = Some(text(b, "details.kind")?.to_owned()),
            (4, Value::Bytes(b)) => {
                let mut cause = StatusCause::default();
                for field in fields(b) {
                    match field? {
                        (1, Value::Bytes(b)) => {
                            cause.reason = Some(text(b, "cause.reason")?.to_owned())
                        }
                        (2, Value::Bytes(b)) => {
                            cause.message = Some(text(b, "cause.message")?.to_owned());
                        }
                        (3, Value::Bytes(b)) => {
                            cause.field = Some(text(b, "cause.field")?.to_owned())
                        }
                        _ => {}
                    }
                }
                details.causes.get_or_insert_with(Vec::new).push(cause);
            }
            (5, Value::Varint(secs)) => details.retry_after_seconds = Some(secs as i32),
            (6, Value::Bytes(b)) => details.uid = Some(text(b, "details.uid")?.to_owned()),
            _ => {}
        }
    }
    Ok(details)
}
