//! Query strings as client-go writes them: Go's `url.Values.Encode`, i.e.
//! keys in sorted order, every byte but letters, digits and `-._~`
//! percent-encoded, a space written as `+`. Selectors carry `=`, `,`, `!`,
//! spaces and parentheses, so none of them may reach the URI raw.
//!
//! [`decode`] is the inverse, for tests and for the in-memory server model.

use std::fmt::Write as _;

/// The query parameters of one request, collected before encoding.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Query {
    pairs: Vec<(&'static str, String)>,
}

impl Query {
    /// An empty query.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `key=value`.
    pub fn push(&mut self, key: &'static str, value: impl Into<String>) {
        self.pairs.push((key, value.into()));
    }

    /// Adds `key=value` when `value` is `Some`.
    pub fn push_opt(&mut self, key: &'static str, value: Option<impl ToString>) {
        if let Some(value) = value {
            self.pairs.push((key, value.to_string()));
        }
    }

    /// Whether no parameter was added.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// `path`, followed by `?` and the encoded query when there is one.
    /// Keys are sorted (stably, so repeated keys keep their order), as Go does.
    pub fn to_path_and_query(&self, path: &str) -> String {
        let mut pairs: Vec<&(&str, String)> = self.pairs.iter().collect();
        pairs.sort_by_key(|(key, _)| *key);
        let mut out = String::with_capacity(path.len() + 16 * pairs.len());
        out.push_str(path);
        for (i, (key, value)) in pairs.into_iter().enumerate() {
            out.push(if i == 0 { '?' } else { '&' });
            encode_component_into(&mut out, key);
            out.push('=');
            encode_component_into(&mut out, value);
        }
        out
    }
}

/// Go's `url.QueryEscape`: letters, digits and `-._~` stay, a space becomes
/// `+`, every other byte becomes `%XX`.
pub fn encode_component(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    encode_component_into(&mut out, value);
    out
}

fn encode_component_into(out: &mut String, value: &str) {
    for byte in value.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(char::from(byte));
            }
            b' ' => out.push('+'),
            _ => {
                let _ = write!(out, "%{byte:02X}");
            }
        }
    }
}

/// A query string that cannot be decoded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    /// A `%` not followed by two hex digits.
    #[error("invalid percent-escape at byte {offset} of the query")]
    BadEscape {
        /// Where the `%` is.
        offset: usize,
    },
    /// Escapes that decode to bytes that are not UTF-8.
    #[error("query parameter {key:?} is not UTF-8 once decoded")]
    NotUtf8 {
        /// The (possibly partial) key.
        key: String,
    },
}

/// Decodes a query string (without the leading `?`) into its pairs, in order,
/// as Go's `url.ParseQuery` does: `+` is a space, `%XX` a byte, a pair with no
/// `=` has an empty value, empty pairs are skipped.
pub fn decode(query: &str) -> Result<Vec<(String, String)>, QueryError> {
    let mut pairs = Vec::new();
    let mut offset = 0;
    for part in query.split('&') {
        if !part.is_empty() {
            let (key, value, value_offset) = match part.split_once('=') {
                Some((k, v)) => (k, v, offset + k.len() + 1),
                None => (part, "", offset + part.len()),
            };
            let key = decode_component(key, offset)?;
            let value = decode_component(value, value_offset).map_err(|e| match e {
                QueryError::NotUtf8 { .. } => QueryError::NotUtf8 { key: key.clone() },
                other => other,
            })?;
            pairs.push((key, value));
        }
        offset += part.len() + 1;
    }
    Ok(pairs)
}

fn decode_component(raw: &str, base: usize) -> Result<String, QueryError> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let digit = |at: usize| bytes.get(at).and_then(|b| char::from(*b).to_digit(16));
                let (Some(high), Some(low)) = (digit(i + 1), digit(i + 2)) else {
                    return Err(QueryError::BadEscape { offset: base + i });
                };
                // Two hex digits make at most 0xff.
                let hex = (high * 16 + low) as u8;
                out.push(hex);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| QueryError::NotUtf8 {
        key: raw.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn request_query_encodes_selectors_like_go() {
        let mut q = Query::new();
        q.push("labelSelector", "app=web,tier!=db,env in (a, b),!legacy");
        q.push("fieldSelector", "metadata.name=x");
        assert_eq!(
            q.to_path_and_query("/api/v1/pods"),
            "/api/v1/pods?fieldSelector=metadata.name%3Dx\
             &labelSelector=app%3Dweb%2Ctier%21%3Ddb%2Cenv+in+%28a%2C+b%29%2C%21legacy"
        );
        assert_eq!(Query::new().to_path_and_query("/p"), "/p");
        assert_eq!(encode_component("ü/%+"), "%C3%BC%2F%25%2B");
    }

    #[test]
    fn request_query_decode_rejects_bad_escapes() {
        assert_eq!(decode("a=%2"), Err(QueryError::BadEscape { offset: 2 }));
        assert_eq!(decode("a=%zz"), Err(QueryError::BadEscape { offset: 2 }));
        assert_eq!(decode("k=%+1"), Err(QueryError::BadEscape { offset: 2 }));
        assert!(matches!(decode("a=%ff"), Err(QueryError::NotUtf8 { .. })));
        assert_eq!(
            decode("watch&&a=1+2").unwrap(),
            vec![("watch".into(), String::new()), ("a".into(), "1 2".into())]
        );
    }

    proptest! {
        #[test]
        fn request_query_round_trips_arbitrary_selectors(
            label in any::<String>(),
            field in "[a-z.=!, ()~%+&?#]{0,40}",
        ) {
            let mut q = Query::new();
            q.push("labelSelector", label.clone());
            q.push("fieldSelector", field.clone());
            let encoded = q.to_path_and_query("/api/v1/pods");
            // Every encoded query is a valid URI.
            prop_assert!(encoded.parse::<http::Uri>().is_ok(), "{}", encoded);
            let (_, query) = encoded.split_once('?').unwrap();
            let pairs = decode(query).unwrap();
            prop_assert_eq!(pairs, vec![
                ("fieldSelector".to_owned(), field),
                ("labelSelector".to_owned(), label),
            ]);
        }
    }
}
