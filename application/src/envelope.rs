//! The event envelope: what the store keeps around every domain event, and the per-stream hash
//! chain that lets auditors prove nothing inside a stream was altered, inserted or removed.
//!
//! `hash = sha256(previous hash ‖ canonical envelope)` where the canonical envelope is every
//! stream-level field, each written as its length (8 bytes, little endian) followed by its
//! bytes, then the payload exactly as stored. The global position and the recorded time are
//! left out: they are the store's, not the stream's, so the same stream hashes the same in every
//! engine.

use chrono::{DateTime, SecondsFormat, Utc};
use lablet_domain::{decode_event, AggregateKind, DomainEvent};
use serde::Serialize;
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// The metadata a command gives every event it causes.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct EventMetadata {
    pub correlation_id: Option<String>,
    pub causation_id: Option<String>,
    pub actor: String,
    pub traceparent: Option<String>,
}

/// An event about to be appended.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub event_id: Uuid,
    pub event_type: String,
    pub schema_version: u32,
    /// Truncated to whole microseconds so every engine stores it unchanged.
    pub occurred_at: DateTime<Utc>,
    pub payload: Box<RawValue>,
    pub metadata: EventMetadata,
}

/// An event as stored, with everything the store assigned.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct EventEnvelope {
    pub event_id: Uuid,
    pub stream: String,
    pub version: u64,
    pub position: u64,
    pub event_type: String,
    pub schema_version: u32,
    pub occurred_at: DateTime<Utc>,
    pub recorded_at: DateTime<Utc>,
    pub correlation_id: Option<String>,
    pub causation_id: Option<String>,
    pub actor: String,
    pub traceparent: Option<String>,
    pub payload: Box<RawValue>,
    /// Hex SHA-256 of the previous hash and this envelope.
    pub hash: String,
}

impl EventEnvelope {
    /// The aggregate id: the part of the stream name after the first `-`.
    pub fn aggregate_id(&self) -> &str {
        self.stream.split_once('-').map_or("", |(_, id)| id)
    }

    /// The kind of aggregate the stream holds, if it is one of the domain's.
    pub fn aggregate_kind(&self) -> Option<AggregateKind> {
        AggregateKind::of_stream(&self.stream)
    }

    /// The domain event inside, upcast from its stored schema version.
    pub fn decode<E: DomainEvent>(&self) -> Result<E, serde_json::Error> {
        decode_event(&self.event_type, self.schema_version, self.payload.get())
    }

    /// Recomputes this envelope's hash from `previous_hash`; equal to `hash` unless altered.
    pub fn expected_hash(&self, previous_hash: Option<&str>) -> String {
        chain_hash(
            previous_hash,
            &HashedFields {
                stream: &self.stream,
                version: self.version,
                event_id: self.event_id,
                event_type: &self.event_type,
                schema_version: self.schema_version,
                occurred_at: self.occurred_at,
                correlation_id: self.correlation_id.as_deref(),
                causation_id: self.causation_id.as_deref(),
                actor: &self.actor,
                traceparent: self.traceparent.as_deref(),
                payload: self.payload.get(),
            },
        )
    }
}

/// The fields the hash covers, borrowed from wherever they live.
pub struct HashedFields<'a> {
    pub stream: &'a str,
    pub version: u64,
    pub event_id: Uuid,
    pub event_type: &'a str,
    pub schema_version: u32,
    pub occurred_at: DateTime<Utc>,
    pub correlation_id: Option<&'a str>,
    pub causation_id: Option<&'a str>,
    pub actor: &'a str,
    pub traceparent: Option<&'a str>,
    pub payload: &'a str,
}

impl<'a> HashedFields<'a> {
    /// The hashed fields of `event` when stored at `version` of `stream`.
    pub fn of(stream: &'a str, version: u64, event: &'a NewEvent) -> Self {
        HashedFields {
            stream,
            version,
            event_id: event.event_id,
            event_type: &event.event_type,
            schema_version: event.schema_version,
            occurred_at: event.occurred_at,
            correlation_id: event.metadata.correlation_id.as_deref(),
            causation_id: event.metadata.causation_id.as_deref(),
            actor: &event.metadata.actor,
            traceparent: event.metadata.traceparent.as_deref(),
            payload: event.payload.get(),
        }
    }
}

/// The canonical text of a timestamp in envelopes: RFC 3339, UTC, microseconds.
pub fn format_timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// The next link of a stream's hash chain.
pub fn chain_hash(previous_hash: Option<&str>, fields: &HashedFields<'_>) -> String {
    fn put(hasher: &mut Sha256, bytes: &[u8]) {
        hasher.update((bytes.len() as u64).to_le_bytes());
        hasher.update(bytes);
    }
    let mut hasher = Sha256::new();
    put(&mut hasher, previous_hash.unwrap_or("").as_bytes());
    put(&mut hasher, fields.stream.as_bytes());
    put(&mut hasher, &fields.version.to_le_bytes());
    put(&mut hasher, fields.event_id.as_bytes());
    put(&mut hasher, fields.event_type.as_bytes());
    put(&mut hasher, &fields.schema_version.to_le_bytes());
    put(&mut hasher, format_timestamp(fields.occurred_at).as_bytes());
    for optional in [fields.correlation_id, fields.causation_id] {
        put(&mut hasher, optional.unwrap_or("").as_bytes());
    }
    put(&mut hasher, fields.actor.as_bytes());
    put(&mut hasher, fields.traceparent.unwrap_or("").as_bytes());
    put(&mut hasher, fields.payload.as_bytes());
    hex(&hasher.finalize())
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(DIGITS[(byte >> 4) as usize] as char);
        out.push(DIGITS[(byte & 0x0f) as usize] as char);
    }
    out
}

/// `at` cut to whole microseconds, the precision every engine keeps.
pub fn truncate_to_micros(at: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(at.timestamp_micros()).unwrap_or(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope(payload: &str) -> EventEnvelope {
        EventEnvelope {
            event_id: Uuid::from_u128(1),
            stream: "lab_record-00000000-0000-0000-0000-000000000001".into(),
            version: 1,
            position: 10,
            event_type: "lab_record.discovered".into(),
            schema_version: 1,
            occurred_at: DateTime::from_timestamp(1_700_000_000, 123_456_000).unwrap(),
            recorded_at: DateTime::from_timestamp(1_700_000_001, 0).unwrap(),
            correlation_id: Some("c".into()),
            causation_id: None,
            actor: "alice".into(),
            traceparent: None,
            payload: RawValue::from_string(payload.into()).unwrap(),
            hash: String::new(),
        }
    }

    #[test]
    fn hash_depends_on_previous_link_and_every_field() {
        let base = envelope(r#"{"a":1}"#);
        let h = base.expected_hash(None);
        assert_eq!(h.len(), 64);
        assert_eq!(h, base.expected_hash(None));
        assert_ne!(h, base.expected_hash(Some("00")));
        assert_ne!(h, envelope(r#"{"a":2}"#).expected_hash(None));
        let mut other_actor = envelope(r#"{"a":1}"#);
        other_actor.actor = "mallory".into();
        assert_ne!(h, other_actor.expected_hash(None));
        let mut moved = envelope(r#"{"a":1}"#);
        moved.position = 99;
        assert_eq!(h, moved.expected_hash(None), "position is the store's, not hashed");
    }

    #[test]
    fn aggregate_id_and_kind_come_from_the_stream() {
        let e = envelope("{}");
        assert_eq!(e.aggregate_kind(), Some(AggregateKind::LabRecord));
        assert_eq!(e.aggregate_id(), "00000000-0000-0000-0000-000000000001");
    }
}
