//! The event store port over PostgreSQL: appends through the process's writer task, reads over
//! a small connection pool, the head followed by `LISTEN/NOTIFY` (see [`super::follower`]).

use super::log_batch::Append;
use super::log_writer::{self, AppendRequest};
use super::rows::{envelope, unavailable};
use super::{follower, pool, PostgresError, PostgresTarget};
use async_trait::async_trait;
use deadpool_postgres::Pool;
use lablet_application::envelope::{EventEnvelope, NewEvent};
use lablet_application::ports::{AppendOutcome, EventStore, EventStoreError, ExpectedVersion};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::AbortHandle;

const HEAD: &str = include_str!("sql/log_head.sql");
const READ_STREAM: &str = include_str!("sql/read_stream.sql");
const READ_ALL: &str = include_str!("sql/read_all.sql");

/// Reader connections at most.
const POOL_SIZE: usize = 8;
/// Appends waiting for the writer before callers wait for room.
const QUEUE: usize = 4096;

#[derive(Clone)]
pub struct PostgresEventStore {
    inner: Arc<Inner>,
}

struct Inner {
    pool: Pool,
    writer: mpsc::Sender<AppendRequest>,
    head: watch::Sender<u64>,
    tasks: Vec<AbortHandle>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.tasks.iter().for_each(AbortHandle::abort);
    }
}

impl PostgresEventStore {
    /// Connects to the log at `target`, which migrations must have created, and starts the
    /// writer and the follower.
    pub async fn open(target: &PostgresTarget) -> Result<Self, PostgresError> {
        let client = target.connect().await?;
        target.require_table(&client, "lablet_events").await?;
        let position: i64 = client.query_one(HEAD, &[]).await.map_err(|e| target.sql(e))?.get(0);
        drop(client);
        let pool = pool(target, POOL_SIZE)?;
        let head = watch::channel(position as u64).0;
        let (writer, requests) = mpsc::channel(QUEUE);
        let tasks = vec![
            tokio::spawn(log_writer::run(target.clone(), requests, head.clone())).abort_handle(),
            tokio::spawn(follower::run(target.clone(), head.clone())).abort_handle(),
        ];
        Ok(PostgresEventStore {
            inner: Arc::new(Inner {
                pool,
                writer,
                head,
                tasks,
            }),
        })
    }

    async fn query(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Vec<EventEnvelope>, EventStoreError> {
        let client = self.inner.pool.get().await.map_err(unavailable)?;
        let statement = client.prepare_cached(sql).await.map_err(unavailable)?;
        let rows = client.query(&statement, params).await.map_err(unavailable)?;
        rows.iter().map(envelope).collect()
    }
}

fn limit_of(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

fn position_of(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

#[async_trait]
impl EventStore for PostgresEventStore {
    async fn append(
        &self,
        stream: &str,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendOutcome, EventStoreError> {
        let (reply, answer) = oneshot::channel();
        let request = AppendRequest {
            append: Append {
                stream: stream.to_owned(),
                expected,
                events,
            },
            reply,
        };
        self.inner
            .writer
            .send(request)
            .await
            .map_err(|_| EventStoreError::Unavailable("the event log writer has stopped".into()))?;
        answer
            .await
            .map_err(|_| EventStoreError::Unavailable("the event log writer dropped the append".into()))?
    }

    async fn read_stream(
        &self,
        stream: &str,
        from_version: u64,
        limit: usize,
    ) -> Result<Vec<EventEnvelope>, EventStoreError> {
        self.query(READ_STREAM, &[&stream, &position_of(from_version), &limit_of(limit)])
            .await
    }

    async fn read_all(&self, after_position: u64, limit: usize) -> Result<Vec<EventEnvelope>, EventStoreError> {
        self.query(READ_ALL, &[&position_of(after_position), &limit_of(limit)])
            .await
    }

    async fn head_position(&self) -> Result<u64, EventStoreError> {
        let client = self.inner.pool.get().await.map_err(unavailable)?;
        let row = client.query_one(HEAD, &[]).await.map_err(unavailable)?;
        let position = row.get::<_, i64>(0) as u64;
        log_writer::announce(&self.inner.head, position);
        Ok(position)
    }

    async fn count_after(&self, after_position: u64, at_most: u64) -> Result<u64, EventStoreError> {
        // Positions here are dense: one per event, without gaps.
        Ok(self.head_position().await?.saturating_sub(after_position).min(at_most))
    }

    fn watch_head(&self) -> watch::Receiver<u64> {
        self.inner.head.subscribe()
    }
}
