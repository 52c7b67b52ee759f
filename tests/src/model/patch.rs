//! Patches: JSON merge patch (RFC 7386) and JSON patch (RFC 6902) applied to
//! an object's JSON, and the hook through which strategic merge patch and
//! server-side apply plug in (the HTTP front owns those; without a hook the
//! model answers 415 as a server that does not take them does).

use serde_json::{Map, Value};

use super::resource::Resource;
use super::status::{self, StatusError};

/// A PATCH body, by content type.
#[derive(Clone, Debug, PartialEq)]
pub enum Patch {
    /// `application/json-patch+json`: an array of operations.
    Json(Value),
    /// `application/merge-patch+json`.
    Merge(Value),
    /// `application/strategic-merge-patch+json` (needs a [`PatchHook`]).
    StrategicMerge(Value),
    /// `application/apply-patch+yaml` (server-side apply; needs a [`PatchHook`]).
    Apply {
        /// The applied configuration, as JSON.
        body: Value,
        /// `fieldManager`.
        field_manager: String,
        /// `force`.
        force: bool,
    },
}

/// Strategic merge patch and server-side apply, supplied by whoever
/// implements them (the HTTP front). The model calls them inside its own
/// optimistic-concurrency and bookkeeping, so they only compute the new object.
pub trait PatchHook: Send {
    /// The object after a strategic merge `patch` of `current`.
    fn strategic_merge(
        &self,
        resource: &Resource,
        current: &Value,
        patch: &Value,
    ) -> Result<Value, StatusError>;

    /// The object after applying `body` as `field_manager`; `current` is
    /// `None` when the object does not exist yet (apply then creates it).
    fn apply(
        &self,
        resource: &Resource,
        current: Option<&Value>,
        body: &Value,
        field_manager: &str,
        force: bool,
    ) -> Result<Value, StatusError>;
}

/// The media types the model takes without a hook, in the server's order.
pub const ACCEPTED_WITHOUT_HOOK: &[&str] = &[
    "application/json-patch+json",
    "application/merge-patch+json",
];

/// RFC 7386: merge `patch` into `target`.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Value::Object(target) = target else {
        return;
    };
    for (key, value) in patch {
        if value.is_null() {
            target.remove(key);
        } else {
            merge_patch(target.entry(key.clone()).or_insert(Value::Null), value);
        }
    }
}

/// RFC 6902: apply the operations in `patch` to `doc`, all or nothing.
///
/// A body that is not an array of operations is a 400; an operation that
/// does not apply is a 422, as the server's patch handler answers.
pub fn json_patch(doc: &Value, patch: &Value) -> Result<Value, StatusError> {
    let Value::Array(ops) = patch else {
        return Err(status::bad_request(format!(
            "json: cannot unmarshal {} into Go value of type jsonpatch.Patch",
            json_type(patch)
        )));
    };
    let mut doc = doc.clone();
    for op in ops {
        apply_op(&mut doc, op).map_err(status::unprocessable)?;
    }
    Ok(doc)
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn apply_op(doc: &mut Value, op: &Value) -> Result<(), String> {
    let kind = op["op"].as_str().unwrap_or_default();
    let path = op["path"]
        .as_str()
        .ok_or_else(|| format!("{kind} operation is missing path"))?;
    let tokens = parse_pointer(path)?;
    match kind {
        "add" => {
            let value = op
                .get("value")
                .ok_or("add operation is missing value")?
                .clone();
            add(doc, &tokens, value).map_err(|_| {
                format!(
                    "add operation does not apply: doc is missing path: {path:?}: missing value"
                )
            })
        }
        "remove" => remove(doc, &tokens).map(drop).map_err(|_| {
            format!("remove operation does not apply: doc is missing path: {path:?}: missing value")
        }),
        "replace" => {
            let value = op
                .get("value")
                .ok_or("replace operation is missing value")?
                .clone();
            let slot = pointer_mut(doc, &tokens).ok_or_else(|| {
                format!(
                    "replace operation does not apply: doc is missing key: {path}: missing value"
                )
            })?;
            *slot = value;
            Ok(())
        }
        "move" | "copy" => {
            let from = op["from"]
                .as_str()
                .ok_or_else(|| format!("{kind} operation is missing from"))?;
            let from_tokens = parse_pointer(from)?;
            let value = if kind == "move" {
                remove(doc, &from_tokens)
            } else {
                pointer_mut(doc, &from_tokens).map(|v| v.clone()).ok_or(())
            }
            .map_err(|_| {
                format!("{kind} operation does not apply: doc is missing from path: {from}: missing value")
            })?;
            add(doc, &tokens, value).map_err(|_| {
                format!("{kind} operation does not apply: doc is missing destination path: {path}: missing value")
            })
        }
        "test" => {
            let want = op.get("value").unwrap_or(&Value::Null);
            match pointer_mut(doc, &tokens) {
                Some(have) if have == want => Ok(()),
                _ => Err(format!("testing value {path} failed: test failed")),
            }
        }
        other => Err(format!("Unexpected kind: {other}")),
    }
}

fn parse_pointer(path: &str) -> Result<Vec<String>, String> {
    if path.is_empty() {
        return Ok(Vec::new());
    }
    let Some(rest) = path.strip_prefix('/') else {
        return Err(format!("JSON pointer {path:?} does not start with '/'"));
    };
    Ok(rest
        .split('/')
        .map(|t| t.replace("~1", "/").replace("~0", "~"))
        .collect())
}

fn pointer_mut<'a>(mut doc: &'a mut Value, tokens: &[String]) -> Option<&'a mut Value> {
    for t in tokens {
        doc = match doc {
            Value::Object(m) => m.get_mut(t)?,
            Value::Array(a) => {
                let i = array_index(t, a.len())?;
                a.get_mut(i)?
            }
            _ => return None,
        };
    }
    Some(doc)
}

fn array_index(token: &str, len: usize) -> Option<usize> {
    if token.len() > 1 && token.starts_with('0') {
        return None;
    }
    token.parse::<usize>().ok().filter(|i| *i < len)
}

fn add(doc: &mut Value, tokens: &[String], value: Value) -> Result<(), ()> {
    let Some((last, parent)) = tokens.split_last() else {
        *doc = value;
        return Ok(());
    };
    match pointer_mut(doc, parent).ok_or(())? {
        Value::Object(m) => {
            m.insert(last.clone(), value);
            Ok(())
        }
        Value::Array(a) => {
            let at = if last == "-" {
                a.len()
            } else {
                array_index(last, a.len() + 1).ok_or(())?
            };
            a.insert(at, value);
            Ok(())
        }
        _ => Err(()),
    }
}

fn remove(doc: &mut Value, tokens: &[String]) -> Result<Value, ()> {
    let (last, parent) = tokens.split_last().ok_or(())?;
    match pointer_mut(doc, parent).ok_or(())? {
        Value::Object(m) => m.remove(last).ok_or(()),
        Value::Array(a) => {
            let at = array_index(last, a.len()).ok_or(())?;
            Ok(a.remove(at))
        }
        _ => Err(()),
    }
}
