//! Mapping `events` rows to envelopes.

use chrono::{DateTime, Utc};
use lablet_application::envelope::EventEnvelope;
use lablet_application::ports::EventStoreError;
use rusqlite::Row;
use serde_json::value::RawValue;
use uuid::Uuid;

pub const SELECT_COLUMNS: &str = include_str!("sql/select_columns.sql");

fn corrupt(what: &str, err: impl std::fmt::Display) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, format!("{what}: {err}").into())
}

fn timestamp(text: &str) -> rusqlite::Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| corrupt("timestamp", e))
}

/// One row of [`SELECT_COLUMNS`] as an envelope.
pub fn envelope(row: &Row<'_>) -> rusqlite::Result<EventEnvelope> {
    let event_id: String = row.get(1)?;
    let occurred_at: String = row.get(6)?;
    let recorded_at: String = row.get(7)?;
    let payload: String = row.get(12)?;
    Ok(EventEnvelope {
        position: row.get::<_, i64>(0)? as u64,
        event_id: Uuid::parse_str(&event_id).map_err(|e| corrupt("event_id", e))?,
        stream: row.get(2)?,
        version: row.get::<_, i64>(3)? as u64,
        event_type: row.get(4)?,
        schema_version: row.get::<_, i64>(5)? as u32,
        occurred_at: timestamp(&occurred_at)?,
        recorded_at: timestamp(&recorded_at)?,
        correlation_id: row.get(8)?,
        causation_id: row.get(9)?,
        actor: row.get(10)?,
        traceparent: row.get(11)?,
        payload: RawValue::from_string(payload).map_err(|e| corrupt("payload", e))?,
        hash: row.get(13)?,
    })
}

pub fn store_error(err: rusqlite::Error) -> EventStoreError {
    match err {
        rusqlite::Error::FromSqlConversionFailure(_, _, message) => EventStoreError::Corrupt(message.to_string()),
        other => EventStoreError::Unavailable(other.to_string()),
    }
}
