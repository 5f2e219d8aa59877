//! The baseline: raw SQLite inserts of rows shaped like the command path's, into the same
//! table, in batches, with the same durability (WAL, `synchronous=FULL`). No mediator, no
//! aggregate, no channel: what the disk and SQLite alone can do.

use lablet_application::envelope::{
    chain_hash, format_timestamp, truncate_to_micros, EventMetadata, HashedFields, NewEvent,
};
use lablet_infrastructure::sqlite::open_connection;
use lablet_migrations::sqlite::{migrate_file, EVENT_STORE};
use rusqlite::params;
use serde_json::value::RawValue;
use std::path::Path;
use std::time::Instant;
use uuid::Uuid;

/// Inserts `rows` events (a state change each, spread over `labs` streams) in transactions of
/// `batch` rows; answers rows per second.
pub fn raw_inserts_per_second(path: &Path, rows: usize, labs: usize, batch: usize) -> f64 {
    migrate_file(path, EVENT_STORE).expect("baseline schema");
    let mut conn = open_connection(path).expect("baseline file");
    let streams: Vec<String> = (0..labs).map(|_| format!("lab_record-{}", Uuid::now_v7())).collect();
    let mut versions = vec![0u64; labs];
    let recorded_at = format_timestamp(chrono::Utc::now());
    // Prepare every row first: only the inserts are timed.
    let prepared: Vec<(String, String, u64, String, String)> = (0..rows)
        .map(|i| {
            let lab = i % labs;
            versions[lab] += 1;
            let payload = format!(
                r#"{{"previous":"STOPPED","new":"STARTED","changed_at":"{}"}}"#,
                format_timestamp(chrono::Utc::now())
            );
            let event = NewEvent {
                event_id: Uuid::now_v7(),
                event_type: "lab_record.state_changed".into(),
                schema_version: 1,
                occurred_at: truncate_to_micros(chrono::Utc::now()),
                payload: RawValue::from_string(payload.clone()).expect("json"),
                metadata: EventMetadata {
                    correlation_id: Some(Uuid::now_v7().to_string()),
                    causation_id: None,
                    actor: "bench".into(),
                    traceparent: None,
                },
            };
            let hash = chain_hash(None, &HashedFields::of(&streams[lab], versions[lab], &event));
            (
                event.event_id.to_string(),
                streams[lab].clone(),
                versions[lab],
                payload,
                hash,
            )
        })
        .collect();
    let started = Instant::now();
    for chunk in prepared.chunks(batch) {
        let tx = conn.transaction().expect("begin");
        {
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO events (event_id, stream, version, event_type, schema_version, occurred_at, recorded_at,
                     correlation_id, causation_id, actor, traceparent, payload, hash)
                     VALUES (?1, ?2, ?3, 'lab_record.state_changed', 1, ?4, ?4, ?5, NULL, 'bench', NULL, ?6, ?7)",
                )
                .expect("prepare");
            for (event_id, stream, version, payload, hash) in chunk {
                insert
                    .execute(params![
                        event_id,
                        stream,
                        *version as i64,
                        recorded_at,
                        event_id,
                        payload,
                        hash
                    ])
                    .expect("insert");
            }
        }
        tx.commit().expect("commit");
    }
    rows as f64 / started.elapsed().as_secs_f64()
}
