//! A reader for exactly one protobuf message: a `Status` error body
//! (`k8s\0` + `runtime.Unknown{typeMeta{v1, Status}, raw}`), so that a
//! client asking for protobuf still gets the server's whole `Status` when a
//! request fails. Field numbers are wire-formats.md §4.
//!
//! This module reads nothing else; objects, lists and watch frames in
//! protobuf belong to the protobuf codec. Malformed input is `None`, never a
//! panic, and nothing is allocated beyond the strings the body holds.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    ListMeta, Status, StatusCause, StatusDetails,
};

use crate::codec::PROTOBUF_MAGIC;

/// The `Status` in a protobuf body, if the body is one: `k8s\0`, an
/// `Unknown` whose typeMeta names `v1` `Status`, and a well-formed message.
pub fn decode(body: &[u8]) -> Option<Status> {
    let mut unknown = Reader(body.strip_prefix(PROTOBUF_MAGIC.as_slice())?);
    let mut kind = None;
    let mut raw = None;
    while let Some((field, value)) = unknown.next()? {
        match (field, value) {
            (1, Wire::Bytes(type_meta)) => {
                let mut type_meta = Reader(type_meta);
                while let Some((field, value)) = type_meta.next()? {
                    if let (2, Wire::Bytes(k)) = (field, value) {
                        kind = Some(k);
                    }
                }
            }
            (2, Wire::Bytes(bytes)) => raw = Some(bytes),
            // contentEncoding / contentType: anything but empty means raw is not protobuf.
            (3 | 4, Wire::Bytes(b)) if !b.is_empty() => return None,
            _ => {}
        }
    }
    if kind? != b"Status" {
        return None;
    }
    status(raw?)
}

fn status(bytes: &[u8]) -> Option<Status> {
    let mut status = Status::default();
    let mut reader = Reader(bytes);
    while let Some((field, value)) = reader.next()? {
        match (field, value) {
            (1, Wire::Bytes(b)) => status.metadata = list_meta(b)?,
            (2, Wire::Bytes(b)) => status.status = Some(text(b)?),
            (3, Wire::Bytes(b)) => status.message = Some(text(b)?),
            (4, Wire::Bytes(b)) => status.reason = Some(text(b)?),
            (5, Wire::Bytes(b)) => status.details = Some(details(b)?),
            (6, Wire::Varint(v)) => status.code = Some(int32(v)),
            _ => {}
        }
    }
    Some(status)
}

fn list_meta(bytes: &[u8]) -> Option<ListMeta> {
    let mut meta = ListMeta::default();
    let mut reader = Reader(bytes);
    while let Some((field, value)) = reader.next()? {
        match (field, value) {
            (1, Wire::Bytes(b)) => meta.self_link = Some(text(b)?),
            (2, Wire::Bytes(b)) => meta.resource_version = Some(text(b)?),
            (3, Wire::Bytes(b)) => meta.continue_ = Some(text(b)?),
            // int64 on the wire: the varint's bits are the two's complement.
            (4, Wire::Varint(v)) => meta.remaining_item_count = Some(v as i64),
            _ => {}
        }
    }
    Some(meta)
}

fn details(bytes: &[u8]) -> Option<StatusDetails> {
    let mut details = StatusDetails::default();
    let mut reader = Reader(bytes);
    while let Some((field, value)) = reader.next()? {
        match (field, value) {
            (1, Wire::Bytes(b)) => details.name = Some(text(b)?),
            (2, Wire::Bytes(b)) => details.group = Some(text(b)?),
            (3, Wire::Bytes(b)) => details.kind = Some(text(b)?),
            (4, Wire::Bytes(b)) => details.causes.get_or_insert_with(Vec::new).push(cause(b)?),
            (5, Wire::Varint(v)) => details.retry_after_seconds = Some(int32(v)),
            (6, Wire::Bytes(b)) => details.uid = Some(text(b)?),
            _ => {}
        }
    }
    Some(details)
}

fn cause(bytes: &[u8]) -> Option<StatusCause> {
    let mut cause = StatusCause::default();
    let mut reader = Reader(bytes);
    while let Some((field, value)) = reader.next()? {
        match (field, value) {
            (1, Wire::Bytes(b)) => cause.reason = Some(text(b)?),
            (2, Wire::Bytes(b)) => cause.message = Some(text(b)?),
            (3, Wire::Bytes(b)) => cause.field = Some(text(b)?),
            _ => {}
        }
    }
    Some(cause)
}

fn text(bytes: &[u8]) -> Option<String> {
    std::str::from_utf8(bytes).ok().map(str::to_owned)
}

/// int32 on the wire: negative values are sign-extended to 64 bits, so the
/// low 32 bits are the value.
fn int32(v: u64) -> i32 {
    v as u32 as i32
}

/// One field's value, by wire type.
enum Wire<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Fixed,
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    /// The next field: `Some(None)` at the end, `None` when malformed.
    fn next(&mut self) -> Option<Option<(u64, Wire<'a>)>> {
        if self.0.is_empty() {
            return Some(None);
        }
        let key = self.varint()?;
        let value = match key & 7 {
            0 => Wire::Varint(self.varint()?),
            1 => {
                self.0 = self.0.get(8..)?;
                Wire::Fixed
            }
            2 => {
                let len = usize::try_from(self.varint()?).ok()?;
                let bytes = self.0.get(..len)?;
                self.0 = &self.0[len..];
                Wire::Bytes(bytes)
            }
            5 => {
                self.0 = self.0.get(4..)?;
                Wire::Fixed
            }
            _ => return None, // groups (3, 4) and invalid types
        };
        Some(Some((key >> 3, value)))
    }

    fn varint(&mut self) -> Option<u64> {
        let mut value = 0u64;
        for i in 0..10 {
            let (&byte, rest) = self.0.split_first()?;
            self.0 = rest;
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                return Some(value);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `k8s\0` + Unknown{v1/Status, raw=Status{status: Failure, message,
    /// reason: Expired, code: 410}}, as the server writes it (empty
    /// contentEncoding/contentType at the end).
    fn expired() -> Vec<u8> {
        let mut raw = vec![0x0a, 0x00]; // metadata {}
        raw.extend([0x12, 7]);
        raw.extend(b"Failure");
        raw.extend([0x1a, 4]);
        raw.extend(b"gone");
        raw.extend([0x22, 7]);
        raw.extend(b"Expired");
        raw.extend([0x30, 0x9a, 0x03]); // code 410
        let mut body = b"k8s\0".to_vec();
        body.extend([0x0a, 12, 0x0a, 2]);
        body.extend(b"v1");
        body.extend([0x12, 6]);
        body.extend(b"Status");
        body.extend([0x12, raw.len() as u8]);
        body.extend(&raw);
        body.extend([0x1a, 0x00, 0x22, 0x00]);
        body
    }

    #[test]
    fn response_protobuf_status_decodes() {
        let status = decode(&expired()).unwrap();
        assert_eq!(status.code, Some(410));
        assert_eq!(status.reason.as_deref(), Some("Expired"));
        assert_eq!(status.message.as_deref(), Some("gone"));
        assert_eq!(status.status.as_deref(), Some("Failure"));
    }

    #[test]
    fn response_protobuf_status_rejects_truncations_and_other_kinds() {
        let body = expired();
        // Every strict prefix that ends inside a field is malformed; none panics.
        for end in 0..body.len() {
            let _ = decode(&body[..end]);
        }
        assert!(decode(&body[..body.len() - 10]).is_none());
        let mut pod = body.clone();
        pod[12..18].copy_from_slice(b"Pod\0\0\0");
        assert!(decode(&pod).is_none());
        assert!(decode(b"{\"kind\":\"Status\"}").is_none());
        // A 10-byte varint that never ends.
        let mut endless = b"k8s\0".to_vec();
        endless.extend([0xff; 11]);
        assert!(decode(&endless).is_none());
        // Negative int32 (sign-extended) comes back negative.
        assert_eq!(int32(u64::MAX), -1);
    }

    proptest::proptest! {
        #[test]
        fn response_protobuf_status_never_panics_on_garbage(
            tail in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512),
            flip in proptest::prelude::any::<(usize, u8)>(),
        ) {
            let mut body = b"k8s\0".to_vec();
            body.extend(&tail);
            let _ = decode(&body);
            // And a corrupted valid body.
            let mut valid = expired();
            let at = flip.0 % valid.len();
            valid[at] ^= flip.1;
            let _ = decode(&valid);
        }
    }
}
