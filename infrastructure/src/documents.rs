//! Document handling shared by the read-model adapters: the filter value a document holds for a
//! field, and the document text served with its `operation_history`.

use lablet_application::ports::ReadModelError;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

fn corrupt(err: impl std::fmt::Display) -> ReadModelError {
    ReadModelError::Corrupt(err.to_string())
}

/// The text a filter column holds for `field` of `body` (strings as they are, other values as
/// JSON, absent and null as NULL).
pub fn column_value(body: &Map<String, Value>, field: &str) -> Option<String> {
    match body.get(field) {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) => Some(text.clone()),
        Some(other) => Some(other.to_string()),
    }
}

/// `body` (a JSON object's text) with `operation_history` added.
pub fn with_history(body: &str, history: &[Box<RawValue>]) -> Result<Box<RawValue>, ReadModelError> {
    let body = body.trim_end();
    let open = body
        .strip_suffix('}')
        .ok_or_else(|| corrupt("a document must be a JSON object"))?;
    let separator = if open.trim_end().ends_with('{') { "" } else { "," };
    let mut text = String::with_capacity(body.len() + history.iter().map(|h| h.get().len() + 1).sum::<usize>() + 24);
    text.push_str(open);
    text.push_str(separator);
    text.push_str("\"operation_history\":[");
    for (i, entry) in history.iter().enumerate() {
        if i > 0 {
            text.push(',');
        }
        text.push_str(entry.get());
    }
    text.push_str("]}");
    RawValue::from_string(text).map_err(corrupt)
}

pub fn parse_body(text: &str) -> Result<Map<String, Value>, ReadModelError> {
    match serde_json::from_str(text).map_err(corrupt)? {
        Value::Object(map) => Ok(map),
        other => Err(corrupt(format!("a document must be an object, not {other}"))),
    }
}
