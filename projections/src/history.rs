//! The operation history entry of one event: what the document looked like before and after.
//!
//! `changed_fields` is the difference of the two documents, field by field, so it is right for
//! every projector without each one describing its own changes. Bookkeeping fields that change
//! on every event (version, updated_at) are left out.

use lablet_application::envelope::EventEnvelope;
use lablet_application::ports::HistoryEntry;
use lablet_domain::FieldChange;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Fields every document updates on every event; not worth a line in the history.
const BOOKKEEPING: [&str; 2] = ["version", "updated_at"];

pub fn history_entry(
    event: &EventEnvelope,
    before: Option<&Map<String, Value>>,
    after: &Map<String, Value>,
) -> HistoryEntry {
    let mut changed_fields = BTreeMap::new();
    for (field, new) in after {
        if BOOKKEEPING.contains(&field.as_str()) {
            continue;
        }
        let old = before.and_then(|b| b.get(field)).unwrap_or(&Value::Null);
        if old != new {
            changed_fields.insert(
                field.clone(),
                FieldChange {
                    old: old.clone(),
                    new: new.clone(),
                },
            );
        }
    }
    if let Some(before) = before {
        for (field, old) in before {
            if !after.contains_key(field) && !old.is_null() {
                changed_fields.insert(
                    field.clone(),
                    FieldChange {
                        old: old.clone(),
                        new: Value::Null,
                    },
                );
            }
        }
    }
    HistoryEntry {
        position: event.position,
        event_id: event.event_id,
        event_type: event.event_type.clone(),
        occurred_at: event.occurred_at,
        actor: event.actor.clone(),
        previous_state: before.and_then(|b| b.get("state")).cloned(),
        new_state: after.get("state").cloned(),
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

    fn map(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn records_states_and_only_the_fields_that_changed() {
        let before = map(json!({"state": "STOPPED", "title": "a", "version": 1, "notes": "n"}));
        let after = map(json!({"state": "STARTED", "title": "a", "version": 2, "notes": "n"}));
        let entry = history_entry(&event(), Some(&before), &after);
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
    }

    #[test]
    fn creation_lists_every_field_from_null() {
        let after = map(json!({"state": "pending", "owner_id": "bob"}));
        let entry = history_entry(&event(), None, &after);
        assert_eq!(entry.previous_state, None);
        assert_eq!(
            entry.changed_fields["owner_id"],
            FieldChange {
                old: Value::Null,
                new: json!("bob")
            }
        );
    }
}
