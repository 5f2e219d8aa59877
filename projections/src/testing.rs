//! The projector harness: events in, document and operation history out, exactly as the
//! runner would build them (the same patch application and history entries), with no store.
//!
//! ```ignore
//! let (document, history) = project(&LabRecordsProjector, &stream("lab_record-…", &events))?;
//! ```

use crate::history::apply_patch;
use crate::projector::{ProjectionError, Projector};
use lablet_application::envelope::EventEnvelope;
use lablet_application::ports::read_models::OPERATION_HISTORY_LIMIT;
use lablet_application::ports::HistoryEntry;
use lablet_domain::{encode_event, DomainEvent};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

/// `events` as the store would envelope them in `stream`: versions and positions from 1, one
/// minute apart from 2026-03-02 09:00 UTC, actor `user:tester`.
pub fn stream<E: DomainEvent>(stream: &str, events: &[E]) -> Vec<EventEnvelope> {
    let start = chrono::DateTime::from_timestamp(1_772_442_000, 0).unwrap_or_default();
    events
        .iter()
        .enumerate()
        .map(|(i, event)| {
            let n = i as u64 + 1;
            let at = start + chrono::Duration::minutes(i as i64);
            let payload = encode_event(event).unwrap_or_else(|_| "null".into());
            EventEnvelope {
                event_id: uuid::Uuid::from_u128(u128::from(n)),
                stream: stream.to_owned(),
                version: n,
                position: n,
                event_type: event.event_type().to_owned(),
                schema_version: event.schema_version(),
                occurred_at: at,
                recorded_at: at,
                correlation_id: Some("correlation-1".into()),
                causation_id: None,
                actor: "user:tester".into(),
                traceparent: None,
                payload: RawValue::from_string(payload).unwrap_or_else(|_| RawValue::NULL.to_owned()),
                hash: String::new(),
            }
        })
        .collect()
}

/// The document `projector` builds from `events` of one aggregate, and its operation history
/// (oldest first, the newest 50).
pub fn project(
    projector: &dyn Projector,
    events: &[EventEnvelope],
) -> Result<(Map<String, Value>, Vec<HistoryEntry>), ProjectionError> {
    let mut document = Map::new();
    let mut history: Vec<HistoryEntry> = Vec::new();
    for (i, event) in events.iter().enumerate() {
        let is_new = i == 0;
        let patch = projector.project((!is_new).then_some(&document), event)?;
        history.push(apply_patch(&mut document, is_new, patch, event));
    }
    let keep = history.len().saturating_sub(OPERATION_HISTORY_LIMIT);
    history.drain(..keep);
    Ok((document, history))
}
