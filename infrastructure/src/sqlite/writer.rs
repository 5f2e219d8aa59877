//! The single writer of the SQLite event log: group commit.
//!
//! Appends arrive on a channel. The writer takes every request waiting (up to a bound), runs
//! them in one `BEGIN IMMEDIATE` transaction, commits once (one fsync), then answers each caller and announces the
//! new head. Positions are rowids handed out in this one thread, so they increase strictly in
//! commit order and readers never see a gap.
//!
//! The happy path does no extra lookups and no savepoints: the expected version is checked
//! against a cache of stream heads before anything is written, and only a refused check or a
//! unique-key violation leads to asking whether the append is a retry of one already stored
//! (idempotency by event id). A violation reruns the batch with one savepoint per append, so a
//! refused append never spoils the others.

use crate::sqlite::rows::store_error;
use chrono::Utc;
use lablet_application::envelope::{chain_hash, format_timestamp, HashedFields, NewEvent};
use lablet_application::ports::{AppendOutcome, EventStoreError, ExpectedVersion};
use rusqlite::{params, Connection, ErrorCode, OptionalExtension, TransactionBehavior};
use std::collections::HashMap;
use std::sync::mpsc;
use tokio::sync::{oneshot, watch};
use uuid::Uuid;

const INSERT_EVENT: &str = include_str!("sql/insert_event.sql");
const STREAM_HEAD: &str = include_str!("sql/stream_head.sql");
const FIND_EVENT: &str = include_str!("sql/find_event.sql");
const HEAD_POSITION: &str = include_str!("sql/head_position.sql");

/// Appends per transaction at most; bounds the latency a batch adds to its first caller.
const MAX_BATCH: usize = 1024;
/// Streams whose head the writer remembers before it forgets them all.
const MAX_CACHED_HEADS: usize = 200_000;
/// How often the writer checkpoints between batches so that the WAL can restart from its
/// beginning instead of growing for as long as appends keep coming.
const WRITER_CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(200);

pub struct AppendRequest {
    pub stream: String,
    pub expected: ExpectedVersion,
    pub events: Vec<NewEvent>,
    pub reply: oneshot::Sender<Result<AppendOutcome, EventStoreError>>,
}

#[derive(Clone)]
struct StreamHead {
    version: u64,
    hash: String,
}

pub struct Writer {
    conn: Connection,
    heads: HashMap<String, StreamHead>,
    head_position: watch::Sender<u64>,
}

/// How one append in a batch ended before the batch commits.
enum Staged {
    Appended(AppendOutcome, String, StreamHead),
    Answered(Result<AppendOutcome, EventStoreError>),
}

impl Writer {
    pub fn new(conn: Connection, head_position: watch::Sender<u64>) -> Self {
        Writer {
            conn,
            heads: HashMap::new(),
            head_position,
        }
    }

    /// Serves the channel until every sender is gone.
    pub fn run(mut self, requests: mpsc::Receiver<AppendRequest>) {
        let mut last_checkpoint = std::time::Instant::now();
        while let Ok(first) = requests.recv() {
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match requests.try_recv() {
                    Ok(request) => batch.push(request),
                    Err(_) => break,
                }
            }
            self.commit_batch(batch);
            if last_checkpoint.elapsed() >= WRITER_CHECKPOINT_EVERY {
                // Between batches no write is in flight: once this catches up with the last
                // frame, the next transaction starts the WAL again from its beginning.
                if let Err(err) = self.conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                    tracing::warn!(error = %err, "WAL checkpoint failed");
                }
                last_checkpoint = std::time::Instant::now();
            }
        }
    }

    fn commit_batch(&mut self, batch: Vec<AppendRequest>) {
        // Fast path: no savepoints. A unique-key collision (a retried append, a reused id,
        // another process) is rare; it rolls the whole batch back and reruns it carefully,
        // each append in its own savepoint.
        let mut staged = Vec::with_capacity(batch.len());
        let mut outcome = self.stage_all(&batch, &mut staged, false);
        if let Err(StageError::Collision) = outcome {
            staged.clear();
            outcome = self.stage_all(&batch, &mut staged, true);
        }
        let committed = match outcome {
            Ok(()) => true,
            Err(err) => {
                let failure = match err {
                    StageError::Sql(err) => store_error(err),
                    StageError::Collision => EventStoreError::Unavailable("unexpected key collision".into()),
                };
                tracing::error!(error = %failure, appends = batch.len(), "event store batch failed; nothing of it was committed");
                // The database may have moved in ways the cache does not know; start afresh.
                self.heads.clear();
                staged.clear();
                staged.resize_with(batch.len(), || Staged::Answered(Err(failure.clone())));
                false
            }
        };
        let mut last_position = None;
        for (request, staged) in batch.into_iter().zip(staged) {
            let answer = match staged {
                Staged::Appended(outcome, stream, head) => {
                    if self.heads.len() >= MAX_CACHED_HEADS {
                        self.heads.clear();
                    }
                    self.heads.insert(stream, head);
                    last_position = Some(outcome.last_position);
                    Ok(outcome)
                }
                Staged::Answered(answer) => answer,
            };
            let _ = request.reply.send(answer);
        }
        if let (true, Some(position)) = (committed, last_position) {
            self.head_position.send_if_modified(|head| {
                let moved = position > *head;
                *head = (*head).max(position);
                moved
            });
        }
    }

    /// Runs every append of the batch in one transaction; an `Err` means nothing committed.
    /// Without `careful`, a collision aborts the batch; with it, each append has a savepoint
    /// and a collision is answered by looking the events up after rolling that append back.
    fn stage_all(
        &mut self,
        batch: &[AppendRequest],
        staged: &mut Vec<Staged>,
        careful: bool,
    ) -> Result<(), StageError> {
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let recorded_at = format_timestamp(Utc::now());
        // Heads changed earlier in this batch, not yet committed.
        let mut batch_heads: HashMap<&str, StreamHead> = HashMap::new();
        for request in batch {
            let cached = batch_heads
                .get(request.stream.as_str())
                .or_else(|| self.heads.get(&request.stream))
                .cloned();
            if careful {
                tx.execute_batch("SAVEPOINT append")?;
            }
            let result = stage_one(&tx, request, cached, &recorded_at)?;
            match result {
                Some(Staged::Appended(outcome, stream, head)) => {
                    if careful {
                        tx.execute_batch("RELEASE append")?;
                    }
                    batch_heads.insert(request.stream.as_str(), head.clone());
                    staged.push(Staged::Appended(outcome, stream, head));
                }
                Some(answered) => {
                    // Refused before any insert: nothing to roll back.
                    if careful {
                        tx.execute_batch("RELEASE append")?;
                    }
                    if let Staged::Answered(Err(EventStoreError::WrongExpectedVersion { .. })) = &answered {
                        // The cached head was stale or the caller was: either way, ask the file next time.
                        batch_heads.remove(request.stream.as_str());
                        self.heads.remove(&request.stream);
                    }
                    staged.push(answered);
                }
                None if !careful => return Err(StageError::Collision),
                None => {
                    // A unique key was taken. Decided after the rollback of this append alone,
                    // so its own rows are gone from what the lookup sees.
                    tx.execute_batch("ROLLBACK TO append; RELEASE append")?;
                    let answer = find_stored(&tx, request)?.unwrap_or_else(|| {
                        // A version taken behind the cache's back (another process): a conflict.
                        Err(EventStoreError::WrongExpectedVersion {
                            stream: request.stream.clone(),
                            expected: request.expected,
                            actual: None,
                        })
                    });
                    batch_heads.remove(request.stream.as_str());
                    self.heads.remove(&request.stream);
                    staged.push(Staged::Answered(answer));
                }
            }
        }
        tx.commit()?;
        Ok(())
    }
}

/// Why a batch could not be staged.
enum StageError {
    /// A unique key collided on the fast path: rerun the batch carefully.
    Collision,
    Sql(rusqlite::Error),
}

impl From<rusqlite::Error> for StageError {
    fn from(err: rusqlite::Error) -> Self {
        StageError::Sql(err)
    }
}

/// Appends one request, or says why not; `None` when a unique key was already taken (the
/// caller rolls back what this append wrote). SQLite errors other than a unique-key violation abort the whole batch.
fn stage_one(
    conn: &Connection,
    request: &AppendRequest,
    cached: Option<StreamHead>,
    recorded_at: &str,
) -> rusqlite::Result<Option<Staged>> {
    if let Some(invalid) = invalid_request(request) {
        return Ok(Some(Staged::Answered(Err(invalid))));
    }
    let head = match cached {
        Some(head) => Some(head),
        None => conn
            .prepare_cached(STREAM_HEAD)?
            .query_row([&request.stream], |row| {
                Ok(StreamHead {
                    version: row.get::<_, i64>(0)? as u64,
                    hash: row.get(1)?,
                })
            })
            .optional()?,
    };
    let actual = head.as_ref().map(|h| h.version);
    if !request.expected.accepts(actual) {
        if let Some(stored) = find_stored(conn, request)? {
            return Ok(Some(Staged::Answered(stored)));
        }
        return Ok(Some(Staged::Answered(Err(EventStoreError::WrongExpectedVersion {
            stream: request.stream.clone(),
            expected: request.expected,
            actual,
        }))));
    }
    let mut version = actual.unwrap_or(0);
    let mut hash = head.map(|h| h.hash);
    let mut first_position = 0;
    let mut last_position = 0;
    let mut insert = conn.prepare_cached(INSERT_EVENT)?;
    for event in &request.events {
        version += 1;
        let link = chain_hash(hash.as_deref(), &HashedFields::of(&request.stream, version, event));
        let inserted = insert.execute(params![
            event.event_id.to_string(),
            request.stream,
            version as i64,
            event.event_type,
            event.schema_version,
            format_timestamp(event.occurred_at),
            recorded_at,
            event.metadata.correlation_id,
            event.metadata.causation_id,
            event.metadata.actor,
            event.metadata.traceparent,
            event.payload.get(),
            link,
        ]);
        match inserted {
            Ok(_) => {}
            Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == ErrorCode::ConstraintViolation => {
                return Ok(None);
            }
            Err(other) => return Err(other),
        }
        last_position = conn.last_insert_rowid() as u64;
        if first_position == 0 {
            first_position = last_position;
        }
        hash = Some(link);
    }
    let outcome = AppendOutcome {
        version,
        first_position,
        last_position,
        deduplicated: false,
    };
    let head = StreamHead {
        version,
        hash: hash.unwrap_or_default(),
    };
    Ok(Some(Staged::Appended(outcome, request.stream.clone(), head)))
}

fn invalid_request(request: &AppendRequest) -> Option<EventStoreError> {
    if request.events.is_empty() {
        return Some(EventStoreError::InvalidAppend(
            "an append needs at least one event".into(),
        ));
    }
    if request.stream.is_empty() {
        return Some(EventStoreError::InvalidAppend(
            "the stream name must not be empty".into(),
        ));
    }
    let mut ids: Vec<Uuid> = request.events.iter().map(|e| e.event_id).collect();
    ids.sort_unstable();
    ids.dedup();
    (ids.len() != request.events.len())
        .then(|| EventStoreError::InvalidAppend("event ids repeat within one append".into()))
}

/// If these exact events are stored already (a retried append), the first outcome again; if
/// only some of their ids are stored, or elsewhere, an error; None if none is stored.
fn find_stored(
    conn: &Connection,
    request: &AppendRequest,
) -> rusqlite::Result<Option<Result<AppendOutcome, EventStoreError>>> {
    let mut find = conn.prepare_cached(FIND_EVENT)?;
    let mut found = Vec::with_capacity(request.events.len());
    for event in &request.events {
        let row = find
            .query_row([event.event_id.to_string()], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, i64>(1)? as u64,
                    row.get::<_, i64>(2)? as u64,
                ))
            })
            .optional()?;
        found.push((event.event_id, row));
    }
    if found.iter().all(|(_, row)| row.is_none()) {
        return Ok(None);
    }
    let consistent = found
        .iter()
        .all(|(_, row)| matches!(row, Some((stream, _, _)) if *stream == request.stream))
        && found.windows(2).all(|pair| match (&pair[0].1, &pair[1].1) {
            (Some((_, v1, _)), Some((_, v2, _))) => *v2 == v1 + 1,
            _ => false,
        });
    if !consistent {
        let reused = found
            .iter()
            .find(|(_, row)| row.is_some())
            .map_or(Uuid::nil(), |(id, _)| *id);
        return Ok(Some(Err(EventStoreError::EventIdReused { event_id: reused })));
    }
    let first = found.first().and_then(|(_, row)| row.clone());
    let last = found.last().and_then(|(_, row)| row.clone());
    Ok(match (first, last) {
        (Some((_, _, first_position)), Some((_, version, last_position))) => Some(Ok(AppendOutcome {
            version,
            first_position,
            last_position,
            deduplicated: true,
        })),
        _ => None,
    })
}

/// The position of the last committed event in `conn`'s file.
pub fn head_position(conn: &Connection) -> rusqlite::Result<u64> {
    conn.query_row(HEAD_POSITION, [], |row| row.get::<_, i64>(0))
        .map(|p| p as u64)
}
