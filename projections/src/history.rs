//! Applying a patch to a document, and the operation history entry that records it.
//!
//! `changed_fields` holds the old and new value of every field the patch actually changed,
//! so it is right for every projector without each one describing its own changes.
//! `previous_state` and `new_state` are the document's `state` (or, for workers, `status`)
//! before and after.

use crate::projector::Patch;
use lablet_application::envelope::EventEnvelope;
use lablet_application::ports::HistoryEntry;
use lablet_domain::FieldChange;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// The field that holds where the entity is in its life.
fn state_of(document: &Map<String, Value>) -> Option<Value> {
    document.get("state").or_else(|| document.get("status")).cloned()
}

/// Applies `patch` to `document` (empty when new), stamps `version` and `updated_at`, and
/// answers the history entry of the change.
pub fn apply_patch(
    document: &mut Map<String, Value>,
    is_new: bool,
    patch: Patch,
    event: &EventEnvelope,
) -> HistoryEntry {
    let previous_state = if is_new { None } else { state_of(document) };
    let mut changed_fields = BTreeMap::new();
    for (field, new) in patch.0 {
        let old = document.get(&field).cloned().unwrap_or(Value::Null);
        if old != new || is_new {
            changed_fields.insert(field.clone(), FieldChange { old, new: new.clone() });
            document.insert(field, new);
        }
    }
    document.insert("version".into(), Value::from(event.version));
    document.insert(
        "updated_at".into(),
        Value::String(lablet_application::envelope::format_timestamp(event.occurred_at)),
    );
    HistoryEntry {
        position: event.position,
        event_id: event.event_id,
        event_type: event.event_type.clone(),
        occurred_at: event.occurred_at,
        actor: event.actor.clone(),
        previous_state,
        new_state: state_of(document),
        changed_fields,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event() -> EventEnvelope {
        EventEnvelope {
            event_id: uuid::Uuid::from_u128(3),
            stream: "x-1".into(),
            version: 2,
            position: 7,
            event_type: "x.changed".into(),
            schema_version: 1,
            occurred_at: chrono::DateTime::from_timestamp(0, 0).unwrap(),
            recorded_at: chrono::DateTime::from_timestamp(0, 0).unwrap(),
            correlation_id: None,
            causation_id: None,
            actor: "alice".into(),
            traceparent: None,
            payload: serde_json::value::RawValue::from_string("{}".into()).unwrap(),
            hash: String::new(),
        }
    }

    fn patch(fields: Value) -> Patch {
        Patch(fields.as_object().unwrap().clone().into_iter().collect())
    }

    #[test]
    fn records_states_and_only_the_fields_that_changed() {
        let mut doc = json!({"state": "STOPPED", "title": "a", "version": 1})
            .as_object()
            .unwrap()
            .clone();
        let entry = apply_patch(
            &mut doc,
            false,
            patch(json!({"state": "STARTED", "title": "a"})),
            &event(),
        );
        assert_eq!(entry.previous_state, Some(json!("STOPPED")));
        assert_eq!(entry.new_state, Some(json!("STARTED")));
        assert_eq!(entry.changed_fields.len(), 1);
        assert_eq!(
            entry.changed_fields["state"],
            FieldChange {
                old: json!("STOPPED"),
                new: json!("STARTED")
            }
        );
        assert_eq!((entry.position, entry.actor.as_str()), (7, "alice"));
        assert_eq!(doc["version"], 2);
        assert_eq!(doc["state"], "STARTED");
    }

    #[test]
    fn creation_lists_every_field_from_null() {
        let mut doc = Map::new();
        let entry = apply_patch(
            &mut doc,
            true,
            patch(json!({"state": "pending", "owner_id": "bob", "score": null})),
            &event(),
        );
        assert_eq!(entry.previous_state, None);
        assert_eq!(
            entry.changed_fields["owner_id"],
            FieldChange {
                old: Value::Null,
                new: json!("bob")
            }
        );
        assert!(
            doc.contains_key("score"),
            "null fields are part of the document's shape"
        );
    }
}
