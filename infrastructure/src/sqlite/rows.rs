//! Mapping `events` rows to envelopes.

use chrono::{DateTime, Utc};
use lablet_application::envelope::EventEnvelope;
use lablet_application::ports::EventStoreError;
use rusqlite::Row;
use serde_json::value::RawValue;
use uuid::Uuid;

pub const SELECT_COLUMNS: &str = include_str!("sql/select_columns.sql");

/// A row whose place in the log was read but whose content was not.
#[derive(Debug, thiserror::Error)]
#[error("{reason}")]
struct Unreadable {
    stream: String,
    version: u64,
    position: u64,
    hash: String,
    reason: String,
}

/// One row of [`SELECT_COLUMNS`] as an envelope.
pub fn envelope(row: &Row<'_>) -> rusqlite::Result<EventEnvelope> {
    let position = row.get::<_, i64>(0)? as u64;
    let stream: String = row.get(2)?;
    let version = row.get::<_, i64>(3)? as u64;
    let hash: String = row.get(13)?;
    let content = || -> Result<EventEnvelope, String> {
        let text = |i: usize| row.get::<_, String>(i).map_err(|e| e.to_string());
        let time = |i: usize, what: &str| {
            DateTime::parse_from_rfc3339(&text(i)?)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|e| format!("{what}: {e}"))
        };
        let optional = |i: usize| row.get::<_, Option<String>>(i).map_err(|e| e.to_string());
        Ok(EventEnvelope {
            position,
            event_id: Uuid::parse_str(&text(1)?).map_err(|e| format!("event_id: {e}"))?,
            stream: stream.clone(),
            version,
            event_type: text(4)?,
            schema_version: row.get::<_, i64>(5).map_err(|e| e.to_string())? as u32,
            occurred_at: time(6, "occurred_at")?,
            recorded_at: time(7, "recorded_at")?,
            correlation_id: optional(8)?,
            causation_id: optional(9)?,
            actor: text(10)?,
            traceparent: optional(11)?,
            payload: RawValue::from_string(text(12)?).map_err(|e| format!("payload is not JSON: {e}"))?,
            hash: hash.clone(),
        })
    };
    content().map_err(|reason| {
        rusqlite::Error::FromSqlConversionFailure(
            0,
            rusqlite::types::Type::Text,
            Box::new(Unreadable {
                stream: stream.clone(),
                version,
                position,
                hash: hash.clone(),
                reason,
            }),
        )
    })
}

pub fn store_error(err: rusqlite::Error) -> EventStoreError {
    match err {
        rusqlite::Error::FromSqlConversionFailure(_, _, cause) => match cause.downcast::<Unreadable>() {
            Ok(unreadable) => {
                let Unreadable {
                    stream,
                    version,
                    position,
                    hash,
                    reason,
                } = *unreadable;
                EventStoreError::UnreadableEvent {
                    stream,
                    version,
                    position,
                    hash,
                    reason,
                }
            }
            Err(other) => EventStoreError::Corrupt(other.to_string()),
        },
        other => EventStoreError::Unavailable(other.to_string()),
    }
}
