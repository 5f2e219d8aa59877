//! Lablet's envelopes as KurrentDB events and back.
//!
//! - The event id is the KurrentDB event id (the server's idempotency key), the event type its
//!   type, the payload its JSON data, byte for byte.
//! - Versions are 1-based, revisions 0-based: version = revision + 1.
//! - Everything else goes in the JSON user metadata: correlation and causation under
//!   KurrentDB's own `$correlationId` and `$causationId` (so the server's projections by
//!   correlation work), actor, `traceparent`, schema version, when it occurred, and the link of
//!   the stream's hash chain.
//! - The global position is the commit position in `$all`; the recorded time is the server's.

use super::log::{LogEvent, ProposedEvent};
use chrono::{DateTime, Utc};
use lablet_application::envelope::{
    chain_hash, format_timestamp, truncate_to_micros, EventEnvelope, HashedFields, NewEvent,
};
use lablet_application::ports::EventStoreError;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// The user metadata of every event Lablet appends.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct StoredMetadata {
    #[serde(rename = "$correlationId", default, skip_serializing_if = "Option::is_none")]
    correlation_id: Option<String>,
    #[serde(rename = "$causationId", default, skip_serializing_if = "Option::is_none")]
    causation_id: Option<String>,
    actor: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    traceparent: Option<String>,
    schema_version: u32,
    occurred_at: String,
    hash: String,
}

/// The position servers before 22.10 give events read from a stream (they only knew it in `$all`).
pub const NO_POSITION: u64 = u64::MAX;

/// The revision a stream at `version` (≥ 1) has.
pub fn revision_of(version: u64) -> u64 {
    version - 1
}

/// The version of the event at `revision`.
pub fn version_of(revision: u64) -> u64 {
    revision + 1
}

/// `event` as appended at `version` of `stream` after the link `previous_hash`; answers the
/// event and its own link.
pub fn proposed(
    stream: &str,
    version: u64,
    previous_hash: Option<&str>,
    event: &NewEvent,
) -> Result<(ProposedEvent, String), EventStoreError> {
    let hash = chain_hash(previous_hash, &HashedFields::of(stream, version, event));
    let metadata = StoredMetadata {
        correlation_id: event.metadata.correlation_id.clone(),
        causation_id: event.metadata.causation_id.clone(),
        actor: event.metadata.actor.clone(),
        traceparent: event.metadata.traceparent.clone(),
        schema_version: event.schema_version,
        occurred_at: format_timestamp(event.occurred_at),
        hash: hash.clone(),
    };
    let metadata = serde_json::to_vec(&metadata).map_err(|e| EventStoreError::InvalidAppend(e.to_string()))?;
    Ok((
        ProposedEvent {
            id: event.event_id,
            event_type: event.event_type.clone(),
            data: event.payload.get().to_owned(),
            metadata,
        },
        hash,
    ))
}

fn metadata_of(event: &LogEvent) -> Result<StoredMetadata, EventStoreError> {
    serde_json::from_slice(&event.metadata).map_err(|e| {
        EventStoreError::Corrupt(format!(
            "event {} of {} has no Lablet metadata: {e}",
            event.id, event.stream
        ))
    })
}

/// The hash-chain link stored with `event`.
pub fn stored_hash(event: &LogEvent) -> Result<String, EventStoreError> {
    Ok(metadata_of(event)?.hash)
}

/// `event` as Lablet's envelope, in the Lablet stream `stream` (the server's name without the
/// namespace).
pub fn envelope(event: LogEvent, stream: String) -> Result<EventEnvelope, EventStoreError> {
    if event.position == NO_POSITION {
        return Err(EventStoreError::Corrupt(
            "the server gives no $all position with stream reads; KurrentDB (or EventStoreDB 22.10 or later) is needed"
                .into(),
        ));
    }
    let metadata = metadata_of(&event)?;
    let corrupt = |what: &str, e: String| EventStoreError::Corrupt(format!("event {} {what}: {e}", event.id));
    let occurred_at = DateTime::parse_from_rfc3339(&metadata.occurred_at)
        .map_err(|e| corrupt("has no valid occurrence time", e.to_string()))?
        .with_timezone(&Utc);
    let payload = RawValue::from_string(event.data).map_err(|e| corrupt("has no JSON payload", e.to_string()))?;
    Ok(EventEnvelope {
        event_id: event.id,
        stream,
        version: version_of(event.revision),
        position: event.position,
        event_type: event.event_type,
        schema_version: metadata.schema_version,
        occurred_at,
        recorded_at: truncate_to_micros(event.created),
        correlation_id: metadata.correlation_id,
        causation_id: metadata.causation_id,
        actor: metadata.actor,
        traceparent: metadata.traceparent,
        payload,
        hash: metadata.hash,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use lablet_application::envelope::EventMetadata;
    use lablet_application::ports::{IdSource, UuidV7Ids};

    fn new_event() -> NewEvent {
        NewEvent {
            event_id: UuidV7Ids.new_id(),
            event_type: "lab_record.discovered".into(),
            schema_version: 2,
            occurred_at: DateTime::from_timestamp(1_700_000_000, 123_456_000).unwrap(),
            payload: RawValue::from_string(r#"{"lab_id": "x",  "n":1}"#.into()).unwrap(),
            metadata: EventMetadata {
                correlation_id: Some("corr-1".into()),
                causation_id: Some("cause-1".into()),
                actor: "system".into(),
                traceparent: Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into()),
            },
        }
    }

    fn as_stored(proposed: ProposedEvent, stream: &str, revision: u64) -> LogEvent {
        LogEvent {
            stream: stream.into(),
            id: proposed.id,
            revision,
            event_type: proposed.event_type,
            data: proposed.data,
            metadata: proposed.metadata,
            position: 4_096,
            created: DateTime::from_timestamp(1_700_000_001, 987_654_321).unwrap(),
        }
    }

    #[test]
    fn an_event_goes_to_kurrentdb_and_comes_back_whole() {
        let event = new_event();
        let (stored, hash) = proposed("lab_record-1", 3, Some("previous"), &event).unwrap();
        assert_eq!(
            stored.id, event.event_id,
            "the event id is the server's idempotency key"
        );
        assert_eq!(stored.data, r#"{"lab_id": "x",  "n":1}"#, "the payload byte for byte");
        let metadata: serde_json::Value = serde_json::from_slice(&stored.metadata).unwrap();
        assert_eq!(metadata["$correlationId"], "corr-1");
        assert_eq!(metadata["$causationId"], "cause-1");
        assert_eq!(metadata["actor"], "system");
        assert_eq!(metadata["hash"], hash.as_str());

        let back = envelope(
            as_stored(stored, "ns:lab_record-1", revision_of(3)),
            "lab_record-1".into(),
        )
        .unwrap();
        assert_eq!((back.version, back.position), (3, 4_096));
        assert_eq!(back.stream, "lab_record-1");
        assert_eq!(back.occurred_at, event.occurred_at);
        assert_eq!(
            back.recorded_at.timestamp_subsec_micros(),
            987_654,
            "recorded time cut to microseconds"
        );
        assert_eq!(back.correlation_id.as_deref(), Some("corr-1"));
        assert_eq!(back.causation_id.as_deref(), Some("cause-1"));
        assert_eq!(back.traceparent, event.metadata.traceparent);
        assert_eq!(back.schema_version, 2);
        assert_eq!(back.hash, hash);
        assert_eq!(
            back.expected_hash(Some("previous")),
            hash,
            "the chain verifies after the trip"
        );
    }

    #[test]
    fn absent_optional_metadata_stays_absent() {
        let mut event = new_event();
        event.metadata.correlation_id = None;
        event.metadata.causation_id = None;
        event.metadata.traceparent = None;
        let (stored, _) = proposed("s-1", 1, None, &event).unwrap();
        let text = String::from_utf8(stored.metadata.clone()).unwrap();
        assert!(
            !text.contains("$correlationId") && !text.contains("traceparent"),
            "{text}"
        );
        let back = envelope(as_stored(stored, "s-1", 0), "s-1".into()).unwrap();
        assert_eq!(
            (back.correlation_id, back.causation_id, back.traceparent),
            (None, None, None)
        );
        assert_eq!(back.version, 1);
    }

    #[test]
    fn events_not_written_by_lablet_are_refused_as_corrupt() {
        let (event, _) = proposed("s-1", 1, None, &new_event()).unwrap();
        let mut foreign = as_stored(event, "s-1", 0);
        foreign.metadata = b"{}".to_vec();
        assert!(matches!(
            envelope(foreign.clone(), "s-1".into()),
            Err(EventStoreError::Corrupt(_))
        ));
        assert!(matches!(stored_hash(&foreign), Err(EventStoreError::Corrupt(_))));
        let (event, _) = proposed("s-1", 1, None, &new_event()).unwrap();
        let mut not_json = as_stored(event, "s-1", 0);
        not_json.data = "not json".into();
        assert!(matches!(
            envelope(not_json, "s-1".into()),
            Err(EventStoreError::Corrupt(_))
        ));
    }

    #[test]
    fn a_server_without_positions_on_stream_reads_is_named() {
        let (event, _) = proposed("s-1", 1, None, &new_event()).unwrap();
        let mut old = as_stored(event, "s-1", 0);
        old.position = NO_POSITION;
        let Err(EventStoreError::Corrupt(message)) = envelope(old, "s-1".into()) else {
            panic!("an event without a position must be refused");
        };
        assert!(message.contains("22.10"), "{message}");
    }

    #[test]
    fn versions_and_revisions_are_one_apart() {
        assert_eq!((revision_of(1), version_of(0)), (0, 1));
        assert_eq!(version_of(revision_of(42)), 42);
    }
}
