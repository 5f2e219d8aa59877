//! The outbox relays' state on PostgreSQL, beside the read models: each sink's checkpoint
//! (`lablet_outbox_checkpoints`) and the events it parked (`lablet_outbox_parked`).

use super::{pool, PostgresError, PostgresTarget};
use async_trait::async_trait;
use deadpool_postgres::{Object, Pool};
use lablet_application::ports::{OutboxStore, OutboxStoreError, ParkedEvent, RelayMark, SinkProgress};
use tokio_postgres::Row;
use uuid::Uuid;

const POOL_SIZE: usize = 4;
const SAVE_MARK: &str = include_str!("sql/outbox_save_mark.sql");
const PRUNE_DELIVERED: &str = include_str!("sql/outbox_prune_delivered.sql");
const RECORD_DELIVERED: &str = include_str!("sql/outbox_record_delivered.sql");
const DELIVERED_BEYOND: &str = include_str!("sql/outbox_delivered_beyond.sql");
const PROGRESS: &str = include_str!("sql/outbox_progress.sql");
const PARKED_COLUMNS: &str = "sink, event_id, position, subject, event_type, attempts, last_error, held_behind, \
                              parked_at, redrive_requested_at";

#[derive(Clone)]
pub struct PostgresOutboxStore {
    pool: Pool,
}

fn unavailable(err: impl std::fmt::Display) -> OutboxStoreError {
    OutboxStoreError::Unavailable(format!("PostgreSQL: {err}"))
}

fn parked_of(row: &Row) -> Result<ParkedEvent, OutboxStoreError> {
    let corrupt = |e: tokio_postgres::Error| OutboxStoreError::Corrupt(e.to_string());
    Ok(ParkedEvent {
        sink: row.try_get(0).map_err(corrupt)?,
        event_id: row.try_get(1).map_err(corrupt)?,
        position: row.try_get::<_, i64>(2).map_err(corrupt)? as u64,
        subject: row.try_get(3).map_err(corrupt)?,
        event_type: row.try_get(4).map_err(corrupt)?,
        attempts: row.try_get::<_, i32>(5).map_err(corrupt)? as u32,
        last_error: row.try_get(6).map_err(corrupt)?,
        held_behind: row.try_get(7).map_err(corrupt)?,
        parked_at: row.try_get(8).map_err(corrupt)?,
        redrive_requested_at: row.try_get(9).map_err(corrupt)?,
    })
}

impl PostgresOutboxStore {
    /// Connects to the outbox tables at `target`, which migrations must have created.
    pub async fn open(target: &PostgresTarget) -> Result<Self, PostgresError> {
        let client = target.connect().await?;
        target.require_table(&client, "lablet_outbox_parked").await?;
        Ok(PostgresOutboxStore {
            pool: pool(target, POOL_SIZE)?,
        })
    }

    async fn client(&self) -> Result<Object, OutboxStoreError> {
        self.pool.get().await.map_err(unavailable)
    }
}

#[async_trait]
impl OutboxStore for PostgresOutboxStore {
    async fn checkpoint(&self, sink: &str) -> Result<u64, OutboxStoreError> {
        let row = self
            .client()
            .await?
            .query_opt(
                "SELECT position FROM lablet_outbox_checkpoints WHERE sink = $1",
                &[&sink],
            )
            .await
            .map_err(unavailable)?;
        Ok(row.map_or(0, |row| row.get::<_, i64>(0) as u64))
    }

    async fn save_checkpoint(&self, sink: &str, mark: RelayMark) -> Result<(), OutboxStoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(unavailable)?;
        tx.execute(
            SAVE_MARK,
            &[
                &sink,
                &(mark.checkpoint as i64),
                &(mark.read_position as i64),
                &(mark.outstanding as i64),
            ],
        )
        .await
        .map_err(unavailable)?;
        tx.execute(PRUNE_DELIVERED, &[&sink]).await.map_err(unavailable)?;
        tx.commit().await.map_err(unavailable)
    }

    async fn record_delivered(&self, sink: &str, subject: &str, position: u64) -> Result<(), OutboxStoreError> {
        self.client()
            .await?
            .execute(RECORD_DELIVERED, &[&sink, &subject, &(position as i64)])
            .await
            .map(|_| ())
            .map_err(unavailable)
    }

    async fn delivered_beyond_checkpoint(&self, sink: &str) -> Result<Vec<(String, u64)>, OutboxStoreError> {
        let rows = self
            .client()
            .await?
            .query(DELIVERED_BEYOND, &[&sink])
            .await
            .map_err(unavailable)?;
        Ok(rows
            .iter()
            .map(|row| (row.get::<_, String>(0), row.get::<_, i64>(1) as u64))
            .collect())
    }

    async fn park(&self, events: Vec<ParkedEvent>) -> Result<(), OutboxStoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(unavailable)?;
        for event in &events {
            tx.execute(
                "INSERT INTO lablet_outbox_parked (sink, event_id, position, subject, event_type, attempts,
                                                   last_error, held_behind, parked_at, redrive_requested_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, NULL)
                 ON CONFLICT (sink, event_id) DO UPDATE SET
                     attempts = lablet_outbox_parked.attempts + excluded.attempts,
                     last_error = excluded.last_error,
                     held_behind = excluded.held_behind,
                     parked_at = excluded.parked_at",
                &[
                    &event.sink,
                    &event.event_id,
                    &(event.position as i64),
                    &event.subject,
                    &event.event_type,
                    &(event.attempts as i32),
                    &event.last_error,
                    &event.held_behind,
                    &event.parked_at,
                ],
            )
            .await
            .map_err(unavailable)?;
        }
        tx.commit().await.map_err(unavailable)
    }

    async fn unpark(&self, sink: &str, event_id: Uuid) -> Result<(), OutboxStoreError> {
        self.client()
            .await?
            .execute(
                "DELETE FROM lablet_outbox_parked WHERE sink = $1 AND event_id = $2",
                &[&sink, &event_id],
            )
            .await
            .map(|_| ())
            .map_err(unavailable)
    }

    async fn parked(&self, sink: Option<&str>, limit: usize) -> Result<Vec<ParkedEvent>, OutboxStoreError> {
        let sql = format!(
            "SELECT {PARKED_COLUMNS} FROM lablet_outbox_parked WHERE $1::text IS NULL OR sink = $1
             ORDER BY position, sink LIMIT $2"
        );
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self
            .client()
            .await?
            .query(&sql, &[&sink, &limit])
            .await
            .map_err(unavailable)?;
        rows.iter().map(parked_of).collect()
    }

    async fn parked_subjects(&self, sink: &str) -> Result<Vec<(String, Uuid)>, OutboxStoreError> {
        let rows = self
            .client()
            .await?
            .query(
                "SELECT DISTINCT ON (subject) subject, event_id FROM lablet_outbox_parked
                 WHERE sink = $1 ORDER BY subject, position",
                &[&sink],
            )
            .await
            .map_err(unavailable)?;
        Ok(rows.iter().map(|row| (row.get(0), row.get(1))).collect())
    }

    async fn request_redrive(&self, event_id: Option<Uuid>) -> Result<u64, OutboxStoreError> {
        self.client()
            .await?
            .execute(
                "UPDATE lablet_outbox_parked SET redrive_requested_at = now() WHERE $1::uuid IS NULL OR event_id = $1",
                &[&event_id],
            )
            .await
            .map_err(unavailable)
    }

    async fn take_redrive_requests(&self, sink: &str) -> Result<Vec<ParkedEvent>, OutboxStoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(unavailable)?;
        let sql = format!(
            "SELECT {PARKED_COLUMNS} FROM lablet_outbox_parked
             WHERE sink = $1 AND subject IN (
                 SELECT subject FROM lablet_outbox_parked WHERE sink = $1 AND redrive_requested_at IS NOT NULL)
             ORDER BY position FOR UPDATE"
        );
        let parked: Vec<ParkedEvent> = tx
            .query(&sql, &[&sink])
            .await
            .map_err(unavailable)?
            .iter()
            .map(parked_of)
            .collect::<Result<_, _>>()?;
        if !parked.is_empty() {
            tx.execute(
                "UPDATE lablet_outbox_parked SET redrive_requested_at = NULL
                 WHERE sink = $1 AND redrive_requested_at IS NOT NULL",
                &[&sink],
            )
            .await
            .map_err(unavailable)?;
        }
        tx.commit().await.map_err(unavailable)?;
        Ok(parked)
    }

    async fn progress(&self) -> Result<Vec<SinkProgress>, OutboxStoreError> {
        let rows = self.client().await?.query(PROGRESS, &[]).await.map_err(unavailable)?;
        Ok(rows
            .iter()
            .map(|row| SinkProgress {
                sink: row.get(0),
                checkpoint: row.get::<_, i64>(1) as u64,
                read_position: row.get::<_, i64>(2) as u64,
                outstanding: row.get::<_, i64>(3) as u64,
                parked: row.get::<_, i64>(4) as u64,
            })
            .collect())
    }
}
