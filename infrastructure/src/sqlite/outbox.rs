//! The SQLite outbox store: relay marks, the subjects delivered beyond a checkpoint, and
//! parked events, in the read-model file.
//!
//! The volume is small (a mark per tick, a row per delivered run, a row per parked event), so one connection
//! serves reads and writes. Like the read models it runs with `synchronous=NORMAL`: a power cut
//! may move a checkpoint back, which only means some events are delivered again.

use super::connection::{parse_utc, SharedConnection, SqliteError};
use super::leases::newer_token;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use lablet_application::ports::{Clock, SystemClock};
use lablet_application::ports::{LeaseFence, OutboxStore, OutboxStoreError, ParkedEvent, RelayMark, SinkProgress};
use rusqlite::{params, Connection, OptionalExtension, Row, TransactionBehavior};
use std::path::Path;
use uuid::Uuid;

const CHECKPOINT: &str = include_str!("sql/outbox_checkpoint.sql");
const CLEAR_REDRIVE: &str = include_str!("sql/outbox_clear_redrive.sql");
const PARK: &str = include_str!("sql/outbox_park.sql");
const PARKED: &str = include_str!("sql/outbox_parked.sql");
const PARKED_SUBJECTS: &str = include_str!("sql/outbox_parked_subjects.sql");
const REDRIVE_REQUESTED: &str = include_str!("sql/outbox_redrive_requested.sql");
const REQUEST_REDRIVE: &str = include_str!("sql/outbox_request_redrive.sql");
const UNPARK: &str = include_str!("sql/outbox_unpark.sql");

const SAVE_MARK: &str = include_str!("sql/outbox_save_mark.sql");
const PRUNE_DELIVERED: &str = include_str!("sql/outbox_prune_delivered.sql");
const RECORD_DELIVERED: &str = include_str!("sql/outbox_record_delivered.sql");
const DELIVERED_BEYOND: &str = include_str!("sql/outbox_delivered_beyond.sql");
const PROGRESS: &str = include_str!("sql/outbox_progress.sql");

#[derive(Clone)]
pub struct SqliteOutboxStore {
    conn: SharedConnection,
}

fn unavailable(err: impl std::fmt::Display) -> OutboxStoreError {
    OutboxStoreError::Unavailable(err.to_string())
}

fn corrupt(err: impl std::fmt::Display) -> OutboxStoreError {
    OutboxStoreError::Corrupt(err.to_string())
}

impl SqliteOutboxStore {
    /// Opens the outbox tables in the read-model file at `path`, which migrations created.
    pub fn open(path: &Path) -> Result<Self, SqliteError> {
        Ok(SqliteOutboxStore {
            conn: SharedConnection::open(path, "outbox_parked", "NORMAL")?,
        })
    }

    async fn with<T, F>(&self, work: F) -> Result<T, OutboxStoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, OutboxStoreError> + Send + 'static,
    {
        self.conn.run(OutboxStoreError::Unavailable, work).await
    }

    /// Runs `write` in one `BEGIN IMMEDIATE` transaction, after checking that no replica took
    /// the lease it is made under (else `Fenced`, and nothing is written).
    async fn fenced<T, F>(&self, fence: &LeaseFence, write: F) -> Result<T, OutboxStoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, OutboxStoreError> + Send + 'static,
    {
        let fence = fence.clone();
        self.with(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(unavailable)?;
            if let Some(current) = newer_token(&tx, &fence).map_err(unavailable)? {
                return Err(OutboxStoreError::Fenced {
                    role: fence.role,
                    token: fence.token,
                    current,
                });
            }
            let written = write(&tx)?;
            tx.commit().map_err(unavailable)?;
            Ok(written)
        })
        .await
    }
}

fn parse_time(text: &str) -> Result<DateTime<Utc>, OutboxStoreError> {
    parse_utc(text).map_err(corrupt)
}

fn parse_id(text: &str) -> Result<Uuid, OutboxStoreError> {
    Uuid::parse_str(text).map_err(corrupt)
}

/// The columns of a parked event, as the statements in `sql/` select them: text and integers.
type ParkedRow = (
    String,
    String,
    i64,
    String,
    String,
    i64,
    String,
    Option<String>,
    String,
    Option<String>,
);

fn read_row(row: &Row<'_>) -> rusqlite::Result<ParkedRow> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
        row.get(5)?,
        row.get(6)?,
        row.get(7)?,
        row.get(8)?,
        row.get(9)?,
    ))
}

fn to_parked(row: ParkedRow) -> Result<ParkedEvent, OutboxStoreError> {
    let (sink, event_id, position, subject, event_type, attempts, last_error, held_behind, parked_at, requested) = row;
    Ok(ParkedEvent {
        sink,
        event_id: parse_id(&event_id)?,
        position: position as u64,
        subject,
        event_type,
        attempts: attempts as u32,
        last_error,
        held_behind: held_behind.as_deref().map(parse_id).transpose()?,
        parked_at: parse_time(&parked_at)?,
        redrive_requested_at: requested.as_deref().map(parse_time).transpose()?,
    })
}

fn query_parked(
    conn: &Connection,
    sql: &str,
    args: impl rusqlite::Params,
) -> Result<Vec<ParkedEvent>, OutboxStoreError> {
    let mut statement = conn.prepare_cached(sql).map_err(unavailable)?;
    let rows = statement
        .query_map(args, read_row)
        .map_err(unavailable)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(unavailable)?;
    rows.into_iter().map(to_parked).collect()
}

#[async_trait]
impl OutboxStore for SqliteOutboxStore {
    async fn checkpoint(&self, sink: &str) -> Result<u64, OutboxStoreError> {
        let sink = sink.to_owned();
        self.with(move |conn| {
            conn.query_row(CHECKPOINT, [sink], |row| row.get::<_, i64>(0))
                .optional()
                .map(|p| p.map_or(0, |p| p as u64))
                .map_err(unavailable)
        })
        .await
    }

    async fn save_checkpoint(&self, sink: &str, mark: RelayMark, fence: &LeaseFence) -> Result<(), OutboxStoreError> {
        let sink = sink.to_owned();
        self.fenced(fence, move |tx| {
            tx.execute(
                SAVE_MARK,
                params![
                    sink,
                    mark.checkpoint as i64,
                    mark.read_position as i64,
                    mark.outstanding as i64,
                    SystemClock.now().to_rfc3339()
                ],
            )
            .map_err(unavailable)?;
            tx.execute(PRUNE_DELIVERED, [&sink]).map_err(unavailable)?;
            Ok(())
        })
        .await
    }

    async fn record_delivered(
        &self,
        sink: &str,
        subject: &str,
        position: u64,
        fence: &LeaseFence,
    ) -> Result<(), OutboxStoreError> {
        let (sink, subject) = (sink.to_owned(), subject.to_owned());
        self.fenced(fence, move |conn| {
            conn.prepare_cached(RECORD_DELIVERED)
                .and_then(|mut statement| statement.execute(params![sink, subject, position as i64]))
                .map(|_| ())
                .map_err(unavailable)
        })
        .await
    }

    async fn delivered_beyond_checkpoint(&self, sink: &str) -> Result<Vec<(String, u64)>, OutboxStoreError> {
        let sink = sink.to_owned();
        self.with(move |conn| {
            let mut statement = conn.prepare_cached(DELIVERED_BEYOND).map_err(unavailable)?;
            let rows = statement
                .query_map([sink], |row| {
                    Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)? as u64))
                })
                .map_err(unavailable)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(unavailable)?;
            Ok(rows)
        })
        .await
    }

    async fn park(&self, events: Vec<ParkedEvent>, fence: &LeaseFence) -> Result<(), OutboxStoreError> {
        self.fenced(fence, move |tx| {
            {
                let mut insert = tx.prepare_cached(PARK).map_err(unavailable)?;
                for event in &events {
                    insert
                        .execute(params![
                            event.sink,
                            event.event_id.to_string(),
                            event.position as i64,
                            event.subject,
                            event.event_type,
                            event.attempts as i64,
                            event.last_error,
                            event.held_behind.map(|id| id.to_string()),
                            event.parked_at.to_rfc3339(),
                        ])
                        .map_err(unavailable)?;
                }
            }
            Ok(())
        })
        .await
    }

    async fn unpark(&self, sink: &str, event_id: Uuid, fence: &LeaseFence) -> Result<(), OutboxStoreError> {
        let sink = sink.to_owned();
        self.fenced(fence, move |conn| {
            conn.execute(UNPARK, params![sink, event_id.to_string()])
                .map(|_| ())
                .map_err(unavailable)
        })
        .await
    }

    async fn parked(&self, sink: Option<&str>, limit: usize) -> Result<Vec<ParkedEvent>, OutboxStoreError> {
        let sink = sink.map(str::to_owned);
        self.with(move |conn| query_parked(conn, PARKED, params![sink, limit as i64]))
            .await
    }

    async fn parked_subjects(&self, sink: &str) -> Result<Vec<(String, Uuid)>, OutboxStoreError> {
        let sink = sink.to_owned();
        self.with(move |conn| {
            // SQLite takes the bare `event_id` from the row holding the `min(position)`.
            let mut statement = conn.prepare_cached(PARKED_SUBJECTS).map_err(unavailable)?;
            let rows = statement
                .query_map([sink], |row| Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?)))
                .map_err(unavailable)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(unavailable)?;
            rows.into_iter()
                .map(|(subject, head)| Ok((subject, parse_id(&head)?)))
                .collect()
        })
        .await
    }

    async fn request_redrive(&self, event_id: Option<Uuid>) -> Result<u64, OutboxStoreError> {
        self.with(move |conn| {
            conn.execute(
                REQUEST_REDRIVE,
                params![SystemClock.now().to_rfc3339(), event_id.map(|id| id.to_string())],
            )
            .map(|marked| marked as u64)
            .map_err(unavailable)
        })
        .await
    }

    async fn take_redrive_requests(
        &self,
        sink: &str,
        fence: &LeaseFence,
    ) -> Result<Vec<ParkedEvent>, OutboxStoreError> {
        let sink = sink.to_owned();
        self.fenced(fence, move |tx| {
            let parked = query_parked(tx, REDRIVE_REQUESTED, [&sink])?;
            if !parked.is_empty() {
                tx.execute(CLEAR_REDRIVE, [&sink]).map_err(unavailable)?;
            }
            Ok(parked)
        })
        .await
    }

    async fn progress(&self) -> Result<Vec<SinkProgress>, OutboxStoreError> {
        self.with(move |conn| {
            let mut statement = conn.prepare_cached(PROGRESS).map_err(unavailable)?;
            let rows = statement
                .query_map([], |row| {
                    Ok(SinkProgress {
                        sink: row.get(0)?,
                        checkpoint: row.get::<_, i64>(1)? as u64,
                        read_position: row.get::<_, i64>(2)? as u64,
                        outstanding: row.get::<_, i64>(3)? as u64,
                        parked: row.get::<_, i64>(4)? as u64,
                    })
                })
                .map_err(unavailable)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(unavailable)?;
            Ok(rows)
        })
        .await
    }
}
