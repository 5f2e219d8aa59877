//! What serde's derive lets through and Lablet refuses, checked on request bodies before they
//! are deserialised:
//!
//! - a JSON array where the body's schema wants an object (serde accepts `[1, 2]` for a struct
//!   `{cpu_cores, memory_gb}`, filling the fields in order);
//! - a NUL character in any string (PostgreSQL text cannot hold it, nothing legitimate sends it).
//!
//! Both checks walk a parsed `serde_json::Value`, so they run only when the raw body could hold
//! what they look for: a `[` inside a body whose schema has nested objects, or a `\u0000`
//! escape (JSON cannot carry a raw NUL). A body without either costs one byte scan.

use lablet_application::FieldError;
use schemars::JsonSchema;
use serde_json::Value;
use std::any::TypeId;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

/// A body type's JSON schema, and whether it has an object below its top level.
type BodySchema = (Arc<Value>, bool);

/// The [`BodySchema`] of `T`, made once per type.
fn schema_of<T: JsonSchema + 'static>() -> BodySchema {
    static SCHEMAS: OnceLock<Mutex<HashMap<TypeId, BodySchema>>> = OnceLock::new();
    let schemas = SCHEMAS.get_or_init(Mutex::default);
    let mut schemas = match schemas.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    };
    schemas
        .entry(TypeId::of::<T>())
        .or_insert_with(|| {
            let schema = schemars::schema_for!(T).to_value();
            let nested = schema
                .get("properties")
                .and_then(Value::as_object)
                .is_some_and(|properties| properties.values().any(|p| types_of(&schema, p).object));
            (Arc::new(schema), nested)
        })
        .clone()
}

/// The checks of this module on `bytes`, a body to be read as `T`; `Ok` when they pass or
/// when the body is not JSON at all (the deserialiser explains that).
pub fn check<T: JsonSchema + 'static>(bytes: &[u8]) -> Result<(), FieldError> {
    let may_hold_nul = bytes.windows(6).any(|w| w == b"\\u0000");
    let schema = bytes.contains(&b'[').then(schema_of::<T>).filter(|(_, nested)| *nested);
    let may_hold_array = schema.is_some();
    if !may_hold_nul && !may_hold_array {
        return Ok(());
    }
    let Ok(value) = serde_json::from_slice::<Value>(bytes) else {
        return Ok(());
    };
    if may_hold_nul {
        no_nul(&value, "")?;
    }
    if let Some((schema, _)) = schema {
        objects_where_expected(&schema, &value, &schema, "")?;
    }
    Ok(())
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

fn field(path: &str) -> String {
    if path.is_empty() {
        "body".into()
    } else {
        path.to_owned()
    }
}

fn no_nul(value: &Value, path: &str) -> Result<(), FieldError> {
    match value {
        Value::String(text) if text.contains('\0') => {
            Err(FieldError::new(field(path), "must not contain NUL characters"))
        }
        Value::Array(items) => items
            .iter()
            .enumerate()
            .try_for_each(|(i, item)| no_nul(item, &format!("{path}[{i}]"))),
        Value::Object(fields) => fields.iter().try_for_each(|(key, item)| {
            if key.contains('\0') {
                return Err(FieldError::new(field(path), "must not have a key with a NUL character"));
            }
            no_nul(item, &join(path, key))
        }),
        _ => Ok(()),
    }
}

/// What JSON types a schema admits.
#[derive(Debug, Default, Clone, Copy)]
struct Types {
    any: bool,
    object: bool,
    array: bool,
}

/// The schema a `$ref` names within `root` (`#/$defs/Name`).
fn resolve<'a>(root: &'a Value, schema: &'a Value) -> &'a Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(reference) => reference
            .strip_prefix('#')
            .and_then(|pointer| root.pointer(pointer))
            .unwrap_or(schema),
        None => schema,
    }
}

/// The schemas a value may match: the schema itself, its `$ref`, and its `anyOf` / `oneOf` /
/// `allOf` branches, flattened.
fn branches<'a>(root: &'a Value, schema: &'a Value, out: &mut Vec<&'a Value>) {
    let schema = resolve(root, schema);
    let mut combined = false;
    for key in ["anyOf", "oneOf", "allOf"] {
        if let Some(list) = schema.get(key).and_then(Value::as_array) {
            combined = true;
            list.iter().for_each(|branch| branches(root, branch, out));
        }
    }
    if !combined || schema.get("type").is_some() || schema.get("properties").is_some() {
        out.push(schema);
    }
}

fn types_of(root: &Value, schema: &Value) -> Types {
    let mut found = Vec::new();
    branches(root, schema, &mut found);
    let mut types = Types::default();
    for branch in found {
        match branch.get("type") {
            Some(Value::String(name)) => mark(&mut types, name),
            Some(Value::Array(names)) => names.iter().filter_map(Value::as_str).for_each(|n| mark(&mut types, n)),
            _ if branch.get("properties").is_some() => types.object = true,
            _ => types.any = true,
        }
    }
    types
}

fn mark(types: &mut Types, name: &str) {
    match name {
        "object" => types.object = true,
        "array" => types.array = true,
        _ => {}
    }
}

/// The schema of `key` in an object matching `schema`, if one says.
fn property<'a>(root: &'a Value, schema: &'a Value, key: &str) -> Option<&'a Value> {
    let mut found = Vec::new();
    branches(root, schema, &mut found);
    found.into_iter().find_map(|branch| {
        branch
            .get("properties")
            .and_then(|properties| properties.get(key))
            .or_else(|| branch.get("additionalProperties").filter(|a| a.is_object()))
    })
}

/// The schema of the items of an array matching `schema`, if one says.
fn items<'a>(root: &'a Value, schema: &'a Value) -> Option<&'a Value> {
    let mut found = Vec::new();
    branches(root, schema, &mut found);
    found
        .into_iter()
        .find_map(|branch| branch.get("items").filter(|i| i.is_object()))
}

fn objects_where_expected(root: &Value, value: &Value, schema: &Value, path: &str) -> Result<(), FieldError> {
    match value {
        Value::Array(list) => {
            let types = types_of(root, schema);
            if types.object && !types.array && !types.any {
                return Err(FieldError::new(field(path), "must be an object, not an array"));
            }
            if let Some(item_schema) = items(root, schema) {
                for (i, item) in list.iter().enumerate() {
                    objects_where_expected(root, item, item_schema, &format!("{path}[{i}]"))?;
                }
            }
            Ok(())
        }
        Value::Object(fields) => fields
            .iter()
            .try_for_each(|(key, item)| match property(root, schema, key) {
                Some(item_schema) => objects_where_expected(root, item, item_schema, &join(path, key)),
                None => Ok(()),
            }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[allow(dead_code)]
    #[derive(Deserialize, JsonSchema)]
    struct Needs {
        cpu_cores: u32,
        memory_gb: u32,
    }

    #[allow(dead_code)]
    #[derive(Deserialize, JsonSchema)]
    struct Body {
        kind: String,
        resources: Option<Needs>,
        tags: Vec<String>,
        steps: Vec<Needs>,
    }

    fn refusal(body: &str) -> Option<(String, String)> {
        check::<Body>(body.as_bytes()).err().map(|e| (e.field, e.message))
    }

    #[test]
    fn an_array_where_an_object_belongs_is_refused_and_named() {
        assert_eq!(
            refusal(r#"{"kind":"x","resources":[1,2],"tags":[],"steps":[]}"#),
            Some(("resources".into(), "must be an object, not an array".into()))
        );
        assert_eq!(
            refusal(r#"{"kind":"x","tags":["a"],"steps":[{"cpu_cores":1,"memory_gb":2},[3,4]]}"#),
            Some(("steps[1]".into(), "must be an object, not an array".into()))
        );
        assert_eq!(
            refusal(r#"{"kind":"x","resources":{"cpu_cores":1,"memory_gb":2},"tags":["a"],"steps":[]}"#),
            None
        );
    }

    #[test]
    fn a_nul_anywhere_is_refused_and_named() {
        assert_eq!(
            refusal(r#"{"kind":"a\u0000b","tags":[],"steps":[]}"#),
            Some(("kind".into(), "must not contain NUL characters".into()))
        );
        assert_eq!(
            refusal(r#"{"kind":"x","tags":["ok","\u0000"],"steps":[]}"#).map(|(f, _)| f),
            Some("tags[1]".into())
        );
        assert_eq!(
            refusal(r#"{"kind":"a\\u0000b","tags":[],"steps":[]}"#),
            None,
            "an escaped backslash"
        );
    }
}
