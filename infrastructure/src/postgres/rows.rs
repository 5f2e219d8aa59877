//! Mapping `lablet_events` rows to envelopes.

use lablet_application::envelope::EventEnvelope;
use lablet_application::ports::EventStoreError;
use serde_json::value::RawValue;
use tokio_postgres::Row;

/// The columns [`envelope`] reads, in its order (the statements in `sql/` select them).
#[cfg(test)]
const COLUMNS: &str = "position, event_id, stream, version, event_type, schema_version, occurred_at, \
                       recorded_at, correlation_id, causation_id, actor, traceparent, payload, hash";

/// One row of [`COLUMNS`] as an envelope. A row whose place in the log can be read but whose
/// content cannot is [`EventStoreError::UnreadableEvent`], naming that place.
pub fn envelope(row: &Row) -> Result<EventEnvelope, EventStoreError> {
    let corrupt = |err: &dyn std::fmt::Display| EventStoreError::Corrupt(err.to_string());
    let position = row.try_get::<_, i64>(0).map_err(|e| corrupt(&e))? as u64;
    let stream: String = row.try_get(2).map_err(|e| corrupt(&e))?;
    let version = row.try_get::<_, i64>(3).map_err(|e| corrupt(&e))? as u64;
    let hash: String = row.try_get(13).map_err(|e| corrupt(&e))?;
    let content = || -> Result<EventEnvelope, String> {
        let text = |e: tokio_postgres::Error| e.to_string();
        let payload: String = row.try_get(12).map_err(text)?;
        Ok(EventEnvelope {
            position,
            event_id: row.try_get(1).map_err(text)?,
            stream: stream.clone(),
            version,
            event_type: row.try_get(4).map_err(text)?,
            schema_version: row.try_get::<_, i32>(5).map_err(text)? as u32,
            occurred_at: row.try_get(6).map_err(text)?,
            recorded_at: row.try_get(7).map_err(text)?,
            correlation_id: row.try_get(8).map_err(text)?,
            causation_id: row.try_get(9).map_err(text)?,
            actor: row.try_get(10).map_err(text)?,
            traceparent: row.try_get(11).map_err(text)?,
            payload: RawValue::from_string(payload).map_err(|e| format!("payload is not JSON: {e}"))?,
            hash: hash.clone(),
        })
    };
    content().map_err(|reason| EventStoreError::UnreadableEvent {
        stream: stream.clone(),
        version,
        position,
        hash: hash.clone(),
        reason,
    })
}

/// A driver or pool failure as the port's error.
pub fn unavailable(err: impl std::fmt::Display) -> EventStoreError {
    EventStoreError::Unavailable(format!("PostgreSQL: {err}"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_event_statement_selects_the_columns_envelope_reads() {
        for sql in [include_str!("sql/read_stream.sql"), include_str!("sql/read_all.sql")] {
            assert!(sql.contains(super::COLUMNS), "{sql}");
        }
    }
}
