//! Mapping `lablet_events` rows to envelopes.

use lablet_application::envelope::EventEnvelope;
use lablet_application::ports::EventStoreError;
use serde_json::value::RawValue;
use tokio_postgres::Row;

/// The columns of [`envelope`], in its order.
pub const COLUMNS: &str = "position, event_id, stream, version, event_type, schema_version, occurred_at, \
                           recorded_at, correlation_id, causation_id, actor, traceparent, payload, hash";

/// One row of [`COLUMNS`] as an envelope.
pub fn envelope(row: &Row) -> Result<EventEnvelope, EventStoreError> {
    let corrupt = |err: &dyn std::fmt::Display| EventStoreError::Corrupt(err.to_string());
    let payload: String = row.try_get(12).map_err(|e| corrupt(&e))?;
    Ok(EventEnvelope {
        position: row.try_get::<_, i64>(0).map_err(|e| corrupt(&e))? as u64,
        event_id: row.try_get(1).map_err(|e| corrupt(&e))?,
        stream: row.try_get(2).map_err(|e| corrupt(&e))?,
        version: row.try_get::<_, i64>(3).map_err(|e| corrupt(&e))? as u64,
        event_type: row.try_get(4).map_err(|e| corrupt(&e))?,
        schema_version: row.try_get::<_, i32>(5).map_err(|e| corrupt(&e))? as u32,
        occurred_at: row.try_get(6).map_err(|e| corrupt(&e))?,
        recorded_at: row.try_get(7).map_err(|e| corrupt(&e))?,
        correlation_id: row.try_get(8).map_err(|e| corrupt(&e))?,
        causation_id: row.try_get(9).map_err(|e| corrupt(&e))?,
        actor: row.try_get(10).map_err(|e| corrupt(&e))?,
        traceparent: row.try_get(11).map_err(|e| corrupt(&e))?,
        payload: RawValue::from_string(payload).map_err(|e| corrupt(&e))?,
        hash: row.try_get(13).map_err(|e| corrupt(&e))?,
    })
}

/// A driver or pool failure as the port's error.
pub fn unavailable(err: impl std::fmt::Display) -> EventStoreError {
    EventStoreError::Unavailable(format!("PostgreSQL: {err}"))
}
