//! The outbox relays' state on PostgreSQL, beside the read models: each sink's checkpoint
//! (`lablet_outbox_checkpoints`) and the events it parked (`lablet_outbox_parked`).

use super::leases::newer_token;
use super::{pool, PostgresError, PostgresTarget};
use async_trait::async_trait;
use deadpool_postgres::{Object, Pool, Transaction};
use lablet_application::ports::{LeaseFence, OutboxStore, OutboxStoreError, ParkedEvent, RelayMark, SinkProgress};
use tokio_postgres::Row;
use uuid::Uuid;

const CHECKPOINT: &str = include_str!("sql/outbox_checkpoint.sql");
const CLEAR_REDRIVE: &str = include_str!("sql/outbox_clear_redrive.sql");
const PARK: &str = include_str!("sql/outbox_park.sql");
const PARKED: &str = include_str!("sql/outbox_parked.sql");
const PARKED_SUBJECTS: &str = include_str!("sql/outbox_parked_subjects.sql");
const REDRIVE_REQUESTED: &str = include_str!("sql/outbox_redrive_requested.sql");
const REQUEST_REDRIVE: &str = include_str!("sql/outbox_request_redrive.sql");
const UNPARK: &str = include_str!("sql/outbox_unpark.sql");

const POOL_SIZE: usize = 4;
const SAVE_MARK: &str = include_str!("sql/outbox_save_mark.sql");
const PRUNE_DELIVERED: &str = include_str!("sql/outbox_prune_delivered.sql");
const RECORD_DELIVERED: &str = include_str!("sql/outbox_record_delivered.sql");
const DELIVERED_BEYOND: &str = include_str!("sql/outbox_delivered_beyond.sql");
const PROGRESS: &str = include_str!("sql/outbox_progress.sql");

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

/// Begins the transaction of a write made under `fence`: refused (`Fenced`, nothing written)
/// if another replica took the lease since.
async fn begin_fenced<'a>(client: &'a mut Object, fence: &LeaseFence) -> Result<Transaction<'a>, OutboxStoreError> {
    let tx = client.transaction().await.map_err(unavailable)?;
    match newer_token(&tx, fence).await.map_err(unavailable)? {
        Some(current) => Err(OutboxStoreError::Fenced {
            role: fence.role.clone(),
            token: fence.token,
            current,
        }),
        None => Ok(tx),
    }
}

#[async_trait]
impl OutboxStore for PostgresOutboxStore {
    async fn checkpoint(&self, sink: &str) -> Result<u64, OutboxStoreError> {
        let row = self
            .client()
            .await?
            .query_opt(CHECKPOINT, &[&sink])
            .await
            .map_err(unavailable)?;
        Ok(row.map_or(0, |row| row.get::<_, i64>(0) as u64))
    }

    async fn save_checkpoint(&self, sink: &str, mark: RelayMark, fence: &LeaseFence) -> Result<(), OutboxStoreError> {
        let mut client = self.client().await?;
        let tx = begin_fenced(&mut client, fence).await?;
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

    async fn record_delivered(
        &self,
        sink: &str,
        subject: &str,
        position: u64,
        fence: &LeaseFence,
    ) -> Result<(), OutboxStoreError> {
        let mut client = self.client().await?;
        let tx = begin_fenced(&mut client, fence).await?;
        tx.execute(RECORD_DELIVERED, &[&sink, &subject, &(position as i64)])
            .await
            .map_err(unavailable)?;
        tx.commit().await.map_err(unavailable)
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

    async fn park(&self, events: Vec<ParkedEvent>, fence: &LeaseFence) -> Result<(), OutboxStoreError> {
        let mut client = self.client().await?;
        let tx = begin_fenced(&mut client, fence).await?;
        for event in &events {
            tx.execute(
                PARK,
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

    async fn unpark(&self, sink: &str, event_id: Uuid, fence: &LeaseFence) -> Result<(), OutboxStoreError> {
        let mut client = self.client().await?;
        let tx = begin_fenced(&mut client, fence).await?;
        tx.execute(UNPARK, &[&sink, &event_id]).await.map_err(unavailable)?;
        tx.commit().await.map_err(unavailable)
    }

    async fn parked(&self, sink: Option<&str>, limit: usize) -> Result<Vec<ParkedEvent>, OutboxStoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self
            .client()
            .await?
            .query(PARKED, &[&sink, &limit])
            .await
            .map_err(unavailable)?;
        rows.iter().map(parked_of).collect()
    }

    async fn parked_subjects(&self, sink: &str) -> Result<Vec<(String, Uuid)>, OutboxStoreError> {
        let rows = self
            .client()
            .await?
            .query(PARKED_SUBJECTS, &[&sink])
            .await
            .map_err(unavailable)?;
        Ok(rows.iter().map(|row| (row.get(0), row.get(1))).collect())
    }

    async fn request_redrive(&self, event_id: Option<Uuid>) -> Result<u64, OutboxStoreError> {
        self.client()
            .await?
            .execute(REQUEST_REDRIVE, &[&event_id])
            .await
            .map_err(unavailable)
    }

    async fn take_redrive_requests(
        &self,
        sink: &str,
        fence: &LeaseFence,
    ) -> Result<Vec<ParkedEvent>, OutboxStoreError> {
        let mut client = self.client().await?;
        let tx = begin_fenced(&mut client, fence).await?;
        let parked: Vec<ParkedEvent> = tx
            .query(REDRIVE_REQUESTED, &[&sink])
            .await
            .map_err(unavailable)?
            .iter()
            .map(parked_of)
            .collect::<Result<_, _>>()?;
        if !parked.is_empty() {
            tx.execute(CLEAR_REDRIVE, &[&sink]).await.map_err(unavailable)?;
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
