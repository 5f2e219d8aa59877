//! The PostgreSQL baseline: raw batched `INSERT`s of rows shaped like the command path's into
//! the same `lablet_events` table, one transaction per batch, on one connection. No lock on the
//! log head, no lookups, no writer task: what the server alone does with those rows.

use chrono::Utc;
use lablet_application::envelope::{chain_hash, truncate_to_micros, EventMetadata, HashedFields, NewEvent};
use lablet_infrastructure::postgres::PostgresTarget;
use lablet_migrations::postgres::{migrate, EVENT_STORE, EVENT_STORE_TABLE};
use serde_json::value::RawValue;
use std::time::Instant;
use uuid::Uuid;

const INSERT: &str = "INSERT INTO lablet_events (position, event_id, stream, version, event_type, schema_version, \
                      occurred_at, recorded_at, correlation_id, causation_id, actor, traceparent, payload, hash) \
                      SELECT p, id, s, v, 'lab_record.state_changed', 1, now(), now(), c, NULL, 'bench', NULL, pl, h \
                      FROM UNNEST($1::bigint[], $2::uuid[], $3::text[], $4::bigint[], $5::text[], $6::text[], $7::text[]) \
                      AS t(p, id, s, v, c, pl, h)";

/// One prepared row of the baseline.
struct BaselineRow {
    position: i64,
    event_id: Uuid,
    stream: String,
    version: i64,
    correlation_id: String,
    payload: String,
    hash: String,
}

/// Inserts `rows` events (a state change each, spread over `labs` streams) in transactions of
/// `batch` rows into the migrated database `target`; answers rows per second.
pub async fn raw_inserts_per_second(target: &PostgresTarget, rows: usize, labs: usize, batch: usize) -> f64 {
    migrate(target, EVENT_STORE_TABLE, EVENT_STORE)
        .await
        .expect("baseline schema");
    let mut client = target.connect().await.expect("baseline connection");
    let streams: Vec<String> = (0..labs).map(|_| format!("lab_record-{}", Uuid::now_v7())).collect();
    let mut versions = vec![0i64; labs];
    // Prepare every row first: only the inserts are timed.
    let prepared: Vec<BaselineRow> = (0..rows)
        .map(|i| {
            let lab = i % labs;
            versions[lab] += 1;
            let payload = format!(
                r#"{{"previous":"STOPPED","new":"STARTED","changed_at":"{}"}}"#,
                Utc::now().to_rfc3339()
            );
            let event = NewEvent {
                event_id: Uuid::now_v7(),
                event_type: "lab_record.state_changed".into(),
                schema_version: 1,
                occurred_at: truncate_to_micros(Utc::now()),
                payload: RawValue::from_string(payload.clone()).expect("json"),
                metadata: EventMetadata {
                    correlation_id: Some(Uuid::now_v7().to_string()),
                    causation_id: None,
                    actor: "bench".into(),
                    traceparent: None,
                },
            };
            let hash = chain_hash(None, &HashedFields::of(&streams[lab], versions[lab] as u64, &event));
            BaselineRow {
                position: i as i64 + 1,
                event_id: event.event_id,
                stream: streams[lab].clone(),
                version: versions[lab],
                correlation_id: event.metadata.correlation_id.clone().unwrap_or_default(),
                payload,
                hash,
            }
        })
        .collect();
    let statement = client.prepare(INSERT).await.expect("prepare");
    let started = Instant::now();
    for chunk in prepared.chunks(batch) {
        let text =
            |pick: fn(&BaselineRow) -> &String| -> Vec<String> { chunk.iter().map(|r| pick(r).clone()).collect() };
        let positions: Vec<i64> = chunk.iter().map(|r| r.position).collect();
        let ids: Vec<Uuid> = chunk.iter().map(|r| r.event_id).collect();
        let versions: Vec<i64> = chunk.iter().map(|r| r.version).collect();
        let (streams, correlations) = (text(|r| &r.stream), text(|r| &r.correlation_id));
        let (payloads, hashes) = (text(|r| &r.payload), text(|r| &r.hash));
        let tx = client.transaction().await.expect("begin");
        let inserted = tx
            .execute(
                &statement,
                &[&positions, &ids, &streams, &versions, &correlations, &payloads, &hashes],
            )
            .await
            .expect("insert");
        assert_eq!(inserted as usize, chunk.len());
        tx.commit().await.expect("commit");
    }
    rows as f64 / started.elapsed().as_secs_f64()
}
