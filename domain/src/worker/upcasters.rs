//! Worker events brought up from older schema versions (policy in `docs/events.md`).
//!
//! Version 2 of `registered`, `status_changed`, `credentials_changed` and
//! `idle_detection_changed` names who acted as a namespaced actor (`user:<sub>`,
//! `apikey:<id>`, `system`), so that a person whose subject is `system` cannot be mistaken for
//! Lablet itself. Version 1 stored a token's subject bare; everything that was not Lablet
//! (`system`), an API key (`apikey:…`) or an unauthenticated caller (`anonymous`) was a person.

use crate::upcast::Upcaster;
use serde_json::Value;

/// The version 2 name of an actor stored by version 1.
pub fn namespaced_actor(stored: &str) -> String {
    if stored == "system" || stored == "anonymous" || stored.starts_with("apikey:") {
        stored.to_owned()
    } else {
        format!("user:{stored}")
    }
}

fn namespace(mut payload: Value, field: &str) -> Result<Value, String> {
    let stored = payload
        .get(field)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("no text {field}"))?;
    payload[field] = Value::String(namespaced_actor(stored));
    Ok(payload)
}

fn registered_v1(payload: Value) -> Result<Value, String> {
    namespace(payload, "registered_by")
}

fn changed_by_v1(payload: Value) -> Result<Value, String> {
    namespace(payload, "changed_by")
}

pub const UPCASTERS: &[Upcaster] = &[
    Upcaster {
        event_type: "cml_worker.registered",
        from_version: 1,
        transform: registered_v1,
    },
    Upcaster {
        event_type: "cml_worker.status_changed",
        from_version: 1,
        transform: changed_by_v1,
    },
    Upcaster {
        event_type: "cml_worker.credentials_changed",
        from_version: 1,
        transform: changed_by_v1,
    },
    Upcaster {
        event_type: "cml_worker.idle_detection_changed",
        from_version: 1,
        transform: changed_by_v1,
    },
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::decode_event;
    use crate::worker::WorkerEvent;
    use crate::DomainEvent;

    #[test]
    fn version_1_actors_are_read_as_namespaced_ones() {
        assert_eq!(namespaced_actor("alice"), "user:alice");
        assert_eq!(namespaced_actor("system"), "system");
        assert_eq!(namespaced_actor("apikey:0191abc"), "apikey:0191abc");
        let stored = r#"{"changed_by":"alice","changed_at":"2026-03-02T09:30:00Z"}"#;
        let event: WorkerEvent = decode_event("cml_worker.credentials_changed", 1, stored).unwrap();
        assert_eq!(event.schema_version(), 2);
        let WorkerEvent::CredentialsChanged { changed_by, .. } = event else {
            panic!("decoded {event:?}");
        };
        assert_eq!(changed_by, "user:alice");
        let current = r#"{"changed_by":"user:system","changed_at":"2026-03-02T09:30:00Z"}"#;
        let event: WorkerEvent = decode_event("cml_worker.credentials_changed", 2, current).unwrap();
        assert!(matches!(event, WorkerEvent::CredentialsChanged { changed_by, .. } if changed_by == "user:system"));
    }
}
