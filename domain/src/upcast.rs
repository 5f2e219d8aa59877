//! The upcaster seam: stored payloads of an older schema version are brought to the current
//! one before they are decoded, so the Rust types only ever know the newest shape and stored
//! events are never rewritten.
//!
//! Each event enum lists its upcasters (`DomainEvent::UPCASTERS`), one per
//! `(event_type, from_version)`, each taking the payload one version up. Decoding a payload
//! stored at version `v` applies the step from `v`, then from `v + 1`, and so on while a step
//! exists; a payload already at the current version is decoded from its text untouched. The
//! policy (when a version goes up, how to test it) is in `docs/events.md`.

use serde::de::Error as _;
use serde_json::Value;

/// One step up the schema versions of one event type.
#[derive(Debug, Clone, Copy)]
pub struct Upcaster {
    pub event_type: &'static str,
    /// The version this step reads; it writes `from_version + 1`.
    pub from_version: u32,
    /// The payload at `from_version` → the payload at `from_version + 1`, or why it cannot be.
    pub transform: fn(Value) -> Result<Value, String>,
}

/// The payload brought up from `schema_version` through every step that applies, or `None`
/// when no step applies (the payload is current).
pub fn upcast(
    upcasters: &[Upcaster],
    event_type: &str,
    schema_version: u32,
    payload: &str,
) -> Result<Option<Value>, serde_json::Error> {
    let mut version = schema_version;
    let mut upcasted: Option<Value> = None;
    while let Some(step) = upcasters
        .iter()
        .find(|step| step.event_type == event_type && step.from_version == version)
    {
        let current = match upcasted.take() {
            Some(value) => value,
            None => serde_json::from_str(payload)?,
        };
        let next = (step.transform)(current).map_err(|reason| {
            serde_json::Error::custom(format!("{event_type} v{version} cannot be upcast: {reason}"))
        })?;
        upcasted = Some(next);
        version += 1;
    }
    Ok(upcasted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rename_name_to_title(mut value: Value) -> Result<Value, String> {
        let object = value.as_object_mut().ok_or("not an object")?;
        let name = object.remove("name").ok_or("no name")?;
        object.insert("title".into(), name);
        Ok(value)
    }

    fn add_count(mut value: Value) -> Result<Value, String> {
        value["count"] = json!(0);
        Ok(value)
    }

    const STEPS: &[Upcaster] = &[
        Upcaster {
            event_type: "thing.made",
            from_version: 1,
            transform: rename_name_to_title,
        },
        Upcaster {
            event_type: "thing.made",
            from_version: 2,
            transform: add_count,
        },
    ];

    #[test]
    fn steps_chain_from_the_stored_version_and_skip_current_payloads() {
        let from_v1 = upcast(STEPS, "thing.made", 1, r#"{"name":"x"}"#).unwrap();
        assert_eq!(from_v1, Some(json!({"title": "x", "count": 0})));
        let from_v2 = upcast(STEPS, "thing.made", 2, r#"{"title":"x"}"#).unwrap();
        assert_eq!(from_v2, Some(json!({"title": "x", "count": 0})));
        assert_eq!(
            upcast(STEPS, "thing.made", 3, r#"{"title":"x","count":1}"#).unwrap(),
            None
        );
        assert_eq!(upcast(STEPS, "other.made", 1, r#"{"name":"x"}"#).unwrap(), None);
    }

    #[test]
    fn a_step_that_cannot_apply_is_a_decoding_error_naming_the_event() {
        let err = upcast(STEPS, "thing.made", 1, r#"{"title":"x"}"#).unwrap_err();
        assert!(
            err.to_string().contains("thing.made v1 cannot be upcast: no name"),
            "{err}"
        );
    }
}
