//! The SQLite event store: the port over one file, with a group-committing writer thread and a
//! small pool of reader connections.

use super::connection::{open_connection, require_table, with_writer_cache, SqliteError};
use super::rows::{envelope, store_error, SELECT_COLUMNS};
use super::writer::{head_position, stream_key, AppendRequest, SharedTailStreams, Writer, INDEX_PROGRESS};
use async_trait::async_trait;
use lablet_application::envelope::{EventEnvelope, NewEvent};
use lablet_application::ports::{AppendOutcome, EventStore, EventStoreError, ExpectedVersion};
use rusqlite::Connection;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;
use tokio::sync::{oneshot, watch};

const READ_STREAM_INDEXED: &str = include_str!("sql/read_stream_indexed.sql");

/// Reader connections kept open between reads.
const MAX_IDLE_READERS: usize = 8;
/// How often the WAL is copied back into the database file, off the writer's path.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(100);

#[derive(Clone)]
pub struct SqliteEventStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    writer: Mutex<Option<mpsc::Sender<AppendRequest>>>,
    readers: Mutex<Vec<Connection>>,
    head: watch::Sender<u64>,
    tail: SharedTailStreams,
}

impl SqliteEventStore {
    /// Opens the event log at `path`, which migrations must have created.
    pub fn open(path: &Path) -> Result<Self, SqliteError> {
        let conn = with_writer_cache(open_connection(path)?)?;
        require_table(&conn, path, "events")?;
        // The writer does not checkpoint after every commit (that would stall the commits behind
        // it); see the writer's own periodic, mostly-backfilled checkpoint instead.
        conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        let head = watch::channel(head_position(&conn)?).0;
        let (sender, receiver) = mpsc::channel();
        let tail = SharedTailStreams::default();
        let writer = Writer::new(conn, head.clone(), tail.clone());
        std::thread::Builder::new()
            .name("lablet-event-writer".into())
            .spawn(move || writer.run(receiver))
            .map_err(|e| SqliteError::Open {
                path: path.display().to_string(),
                source: rusqlite::Error::ToSqlConversionFailure(Box::new(e)),
            })?;
        let inner = Arc::new(Inner {
            path: path.to_owned(),
            writer: Mutex::new(Some(sender)),
            readers: Mutex::new(Vec::new()),
            head,
            tail,
        });
        spawn_checkpointer(Arc::downgrade(&inner), open_connection(path)?);
        Ok(SqliteEventStore { inner })
    }

    /// Runs `read` on a pooled reader connection on the blocking pool.
    async fn read<T, F>(&self, read: F) -> Result<T, EventStoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let pooled = inner.readers.lock().ok().and_then(|mut pool| pool.pop());
            let conn = match pooled {
                Some(conn) => conn,
                None => open_connection(&inner.path).map_err(|e| EventStoreError::Unavailable(e.to_string()))?,
            };
            let result = read(&conn).map_err(store_error);
            if let Ok(mut pool) = inner.readers.lock() {
                if pool.len() < MAX_IDLE_READERS {
                    pool.push(conn);
                }
            }
            result
        })
        .await
        .map_err(|e| EventStoreError::Unavailable(format!("reader task failed: {e}")))?
    }

    /// Stops accepting appends; the writer finishes what it has and exits.
    pub fn close(&self) {
        if let Ok(mut writer) = self.inner.writer.lock() {
            writer.take();
        }
    }
}

/// Copies the WAL into the main file every [`CHECKPOINT_EVERY`] until the store is dropped.
/// While appends keep coming this alone never lets the WAL restart (the writer always has
/// newer frames); it does the bulk of the copying so that the writer's own checkpoint is short.
fn spawn_checkpointer(inner: std::sync::Weak<Inner>, conn: Connection) {
    let _ = std::thread::Builder::new()
        .name("lablet-wal-checkpoint".into())
        .spawn(move || loop {
            std::thread::sleep(CHECKPOINT_EVERY);
            if inner.upgrade().is_none() {
                return;
            }
            if let Err(err) = conn.query_row(super::WAL_CHECKPOINT, [], |_| Ok(())) {
                tracing::warn!(error = %err, "WAL checkpoint failed");
            }
        });
}

#[async_trait]
impl EventStore for SqliteEventStore {
    async fn append(
        &self,
        stream: &str,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendOutcome, EventStoreError> {
        let (reply, answer) = oneshot::channel();
        let request = AppendRequest {
            stream: stream.to_owned(),
            expected,
            events,
            reply,
        };
        let sender = self
            .inner
            .writer
            .lock()
            .ok()
            .and_then(|writer| writer.clone())
            .ok_or_else(|| EventStoreError::Unavailable("the event store is closed".into()))?;
        sender
            .send(request)
            .map_err(|_| EventStoreError::Unavailable("the event writer has stopped".into()))?;
        answer
            .await
            .map_err(|_| EventStoreError::Unavailable("the event writer stopped before answering".into()))?
    }

    async fn read_stream(
        &self,
        stream: &str,
        from_version: u64,
        limit: usize,
    ) -> Result<Vec<EventEnvelope>, EventStoreError> {
        let stream = stream.to_owned();
        // Asked before the snapshot opens (see `TailStreams`).
        let (in_tail, complete_to) = self
            .inner
            .tail
            .lock()
            .map(|tail| tail.lookup(&stream))
            .unwrap_or((true, 0));
        self.read(move |conn| {
            // One snapshot: the indexed events, then the tail after the index's progress.
            let snapshot = conn.unchecked_transaction()?;
            let indexed: i64 = snapshot.query_row(INDEX_PROGRESS, [], |row| row.get(0))?;
            let scan_tail = in_tail || head_position(&snapshot)? > complete_to;
            let mut events: Vec<EventEnvelope> = snapshot
                .prepare_cached(READ_STREAM_INDEXED)?
                .query_map(
                    rusqlite::params![stream_key(&stream), stream, from_version as i64, limit as i64],
                    envelope,
                )?
                .collect::<rusqlite::Result<_>>()?;
            if scan_tail && events.len() < limit {
                let from = events.last().map_or(from_version, |e| e.version + 1);
                let sql = format!(
                    "{SELECT_COLUMNS} WHERE position > ?1 AND stream = ?2 AND version >= ?3 ORDER BY position LIMIT ?4"
                );
                let tail = snapshot
                    .prepare_cached(&sql)?
                    .query_map(
                        rusqlite::params![indexed, stream, from as i64, (limit - events.len()) as i64],
                        envelope,
                    )?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                events.extend(tail);
            }
            Ok(events)
        })
        .await
    }

    async fn read_all(&self, after_position: u64, limit: usize) -> Result<Vec<EventEnvelope>, EventStoreError> {
        self.read(move |conn| {
            let sql = format!("{SELECT_COLUMNS} WHERE position > ?1 ORDER BY position LIMIT ?2");
            let mut statement = conn.prepare_cached(&sql)?;
            let rows = statement.query_map(rusqlite::params![after_position as i64, limit as i64], envelope)?;
            rows.collect()
        })
        .await
    }

    async fn head_position(&self) -> Result<u64, EventStoreError> {
        self.read(head_position).await
    }

    async fn count_after(&self, after_position: u64, at_most: u64) -> Result<u64, EventStoreError> {
        // Positions here are dense: one per event, without gaps.
        Ok(self.head_position().await?.saturating_sub(after_position).min(at_most))
    }

    fn watch_head(&self) -> watch::Receiver<u64> {
        self.inner.head.subscribe()
    }
}
