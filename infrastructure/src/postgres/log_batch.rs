//! One batch of appends to the PostgreSQL event log, in one transaction.
//!
//! The transaction first locks the log's head row (`UPDATE lablet_log_head … RETURNING
//! position`) and holds it until it commits, so appends from every process commit one after
//! another and positions increase strictly in commit order, without gaps: a rolled-back
//! transaction gives its positions back. A reader that has seen position N has therefore seen
//! every committed event below N, whatever other writers did or undid meanwhile.
//!
//! Under that lock the stream heads are exact, so expected versions are decided before anything
//! is written; the unique `(stream, version)` backs that up. Event ids already stored make a
//! retry answer the first outcome again (or `EventIdReused`). The insert is one
//! `INSERT … SELECT FROM UNNEST(…)`; no `ON CONFLICT` can hide a conflict, and the statement
//! that moves the head checks, inside the transaction, that exactly the batch's rows were
//! stored.
//!
//! Round trips: BEGIN with the lock; the lookups; the rows with the head and the COMMIT. With a
//! [`HeadCache`] that is still exact (no other process appended since this one's last commit)
//! the lookups are skipped: heads come from the cache and ids are not looked up, so a reused id
//! shows as a unique violation ([`BatchError::Collision`]; the caller reruns the batch without
//! the cache, which then judges it). An expected version that fails on cached heads is looked up
//! too, since the append may be a retry of one that succeeded.

use super::EVENTS_CHANNEL;
use crate::append_rules::{invalid_append, judge_stored, StoredAt};
use chrono::{DateTime, Utc};
use lablet_application::envelope::{chain_hash, truncate_to_micros, HashedFields, NewEvent};
use lablet_application::ports::{AppendOutcome, EventStoreError, ExpectedVersion};
use lablet_application::ports::{Clock, SystemClock};
use std::collections::HashMap;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, GenericClient, Statement};
use uuid::Uuid;

const BEGIN: &str = include_str!("sql/begin.sql");
const COMMIT: &str = include_str!("sql/commit.sql");

const LOCK_HEAD: &str = include_str!("sql/log_lock_head.sql");
/// Moves the head to $1 and notifies channel $2, after checking that exactly the rows between
/// the old head $3 and $1 are stored: a mismatch divides by zero, which aborts the transaction,
/// so that the COMMIT sent behind it rolls everything back.
const SET_HEAD_AND_NOTIFY: &str = include_str!("sql/log_set_head_and_notify.sql");
/// One backward index probe per stream (`LIMIT 1`), however long the streams are.
const STREAM_HEADS: &str = include_str!("sql/log_stream_heads.sql");
const STORED_IDS: &str = include_str!("sql/log_stored_ids.sql");
const INSERT: &str = include_str!("sql/log_insert.sql");

/// The statements of an append, prepared once per connection (a statement sent as text would
/// cost a round trip of its own to be parsed every time).
pub struct LogStatements {
    lock_head: Statement,
    stream_heads: Statement,
    stored_ids: Statement,
    insert: Statement,
    set_head_and_notify: Statement,
}

impl LogStatements {
    pub async fn prepare(client: &Client) -> Result<LogStatements, tokio_postgres::Error> {
        let (lock_head, stream_heads, stored_ids, insert, set_head_and_notify) = tokio::try_join!(
            client.prepare(LOCK_HEAD),
            client.prepare(STREAM_HEADS),
            client.prepare(STORED_IDS),
            client.prepare(INSERT),
            client.prepare(SET_HEAD_AND_NOTIFY),
        )?;
        Ok(LogStatements {
            lock_head,
            stream_heads,
            stored_ids,
            insert,
            set_head_and_notify,
        })
    }
}

/// One append of a batch.
pub struct Append {
    pub stream: String,
    pub expected: ExpectedVersion,
    pub events: Vec<NewEvent>,
}

/// The columns of the rows one batch inserts.
#[derive(Default)]
struct Rows {
    position: Vec<i64>,
    event_id: Vec<Uuid>,
    stream: Vec<String>,
    version: Vec<i64>,
    event_type: Vec<String>,
    schema_version: Vec<i32>,
    occurred_at: Vec<DateTime<Utc>>,
    recorded_at: Vec<DateTime<Utc>>,
    correlation_id: Vec<Option<String>>,
    causation_id: Vec<Option<String>>,
    actor: Vec<String>,
    traceparent: Vec<Option<String>>,
    payload: Vec<String>,
    hash: Vec<String>,
}

impl Rows {
    fn push(&mut self, stream: &str, version: u64, position: u64, event: &NewEvent, hash: String, at: DateTime<Utc>) {
        self.position.push(position as i64);
        self.event_id.push(event.event_id);
        self.stream.push(stream.to_owned());
        self.version.push(version as i64);
        self.event_type.push(event.event_type.clone());
        self.schema_version.push(event.schema_version as i32);
        self.occurred_at.push(event.occurred_at);
        self.recorded_at.push(at);
        self.correlation_id.push(event.metadata.correlation_id.clone());
        self.causation_id.push(event.metadata.causation_id.clone());
        self.actor.push(event.metadata.actor.clone());
        self.traceparent.push(event.metadata.traceparent.clone());
        self.payload.push(event.payload.get().to_owned());
        self.hash.push(hash);
    }

    async fn insert<C: GenericClient + Sync>(&self, client: &C, insert: &Statement) -> Result<(), BatchError> {
        let inserted = client
            .execute(
                insert,
                &[
                    &self.position,
                    &self.event_id,
                    &self.stream,
                    &self.version,
                    &self.event_type,
                    &self.schema_version,
                    &self.occurred_at,
                    &self.recorded_at,
                    &self.correlation_id,
                    &self.causation_id,
                    &self.actor,
                    &self.traceparent,
                    &self.payload,
                    &self.hash,
                ],
            )
            .await?;
        if inserted as usize != self.position.len() {
            return Err(BatchError::RowCount {
                expected: self.position.len(),
                inserted,
            });
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    #[error(transparent)]
    Sql(#[from] tokio_postgres::Error),
    #[error("{expected} events were to be inserted but {inserted} rows were")]
    RowCount { expected: usize, inserted: u64 },
    #[error("an event id of the batch is stored already; the batch must be judged with lookups")]
    Collision,
}

/// The stream heads a writer knows, exact as of log position `as_of` (the head after its own
/// last commit). Bounded: past [`HeadCache::CAPACITY`] streams it starts afresh.
#[derive(Default)]
pub struct HeadCache {
    as_of: u64,
    heads: HashMap<String, (u64, String)>,
}

impl HeadCache {
    pub const CAPACITY: usize = 200_000;

    pub fn clear(&mut self) {
        self.as_of = 0;
        self.heads.clear();
    }
}

/// What a batch decided: each append's answer, and the head after it (unchanged if nothing
/// was appended).
pub struct BatchOutcome {
    pub answers: Vec<Result<AppendOutcome, EventStoreError>>,
    pub head: u64,
}

/// How [`append_batch`] runs: in a transaction of its own, begun and committed in the same
/// round trips as its first and last statements, or in the caller's (who commits or rolls back;
/// then nothing of the batch is stored).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransactionMode {
    Own,
    Callers,
}

/// Decides and writes `appends` on `client`, holding the lock on the log head until the
/// transaction ends. In [`TransactionMode::Own`] an error leaves nothing stored. `cache`, when
/// given, saves the lookups while it is exact and learns the heads this batch writes; it is
/// emptied on any error.
pub async fn append_batch<C: GenericClient + Sync>(
    client: &C,
    statements: &LogStatements,
    appends: &[Append],
    mode: TransactionMode,
    mut cache: Option<&mut HeadCache>,
) -> Result<BatchOutcome, BatchError> {
    let outcome = stage_and_write(client, statements, appends, mode, cache.as_deref_mut()).await;
    if outcome.is_err() {
        if mode == TransactionMode::Own {
            let _ = client.batch_execute("ROLLBACK").await;
        }
        if let Some(cache) = cache {
            cache.clear();
        }
    }
    outcome
}

/// Stream heads (version and hash) by stream.
type Heads = HashMap<String, (u64, String)>;

async fn lock_head<C: GenericClient + Sync>(
    client: &C,
    statements: &LogStatements,
    mode: TransactionMode,
) -> Result<u64, BatchError> {
    let start: i64 = match mode {
        TransactionMode::Own => {
            // BEGIN and the lock leave together: `biased` polls them in this order, and each
            // request is sent when first polled.
            let (began, locked) = tokio::join!(
                biased;
                client.batch_execute(BEGIN),
                client.query_one(&statements.lock_head, &[])
            );
            began?;
            locked?.get(0)
        }
        TransactionMode::Callers => client.query_one(&statements.lock_head, &[]).await?.get(0),
    };
    Ok(start as u64)
}

async fn stream_heads<C: GenericClient + Sync>(
    client: &C,
    statements: &LogStatements,
    streams: &[&str],
) -> Result<Heads, BatchError> {
    let mut heads = Heads::new();
    if !streams.is_empty() {
        for row in client.query(&statements.stream_heads, &[&streams]).await? {
            heads.insert(row.get(0), (row.get::<_, i64>(1) as u64, row.get(2)));
        }
    }
    Ok(heads)
}

async fn stored_ids<C: GenericClient + Sync>(
    client: &C,
    statements: &LogStatements,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, StoredAt>, BatchError> {
    let mut stored = HashMap::new();
    for row in client.query(&statements.stored_ids, &[&ids]).await? {
        let at = StoredAt {
            stream: row.get(1),
            version: row.get::<_, i64>(2) as u64,
            position: row.get::<_, i64>(3) as u64,
        };
        stored.insert(row.get(0), at);
    }
    Ok(stored)
}

/// What deciding a batch produced: the answers, the rows to insert, the new head, and the heads
/// of the streams written.
struct Decided {
    answers: Vec<Result<AppendOutcome, EventStoreError>>,
    rows: Rows,
    head: u64,
    heads: Heads,
}

/// Decides every append against `heads` (exact) and, when looked up, the `stored` ids. Without
/// `stored`, answers `None` as soon as an expected version fails: that append may be a retry.
fn decide(
    appends: &[Append],
    mut heads: Heads,
    mut stored: Option<HashMap<Uuid, StoredAt>>,
    start: u64,
) -> Option<Decided> {
    let recorded_at = truncate_to_micros(SystemClock.now());
    let mut rows = Rows::default();
    let mut head = start;
    let mut answers = Vec::with_capacity(appends.len());
    for append in appends {
        if let Some(invalid) = invalid_append(&append.stream, &append.events) {
            answers.push(Err(invalid));
            continue;
        }
        if let Some(stored) = &stored {
            let found: Vec<(Uuid, Option<StoredAt>)> = append
                .events
                .iter()
                .map(|e| (e.event_id, stored.get(&e.event_id).cloned()))
                .collect();
            if let Some(answer) = judge_stored(&append.stream, &found) {
                answers.push(answer);
                continue;
            }
        }
        let current = heads.get(&append.stream);
        let actual = current.map(|(version, _)| *version);
        if !append.expected.accepts(actual) {
            stored.as_ref()?;
            answers.push(Err(EventStoreError::WrongExpectedVersion {
                stream: append.stream.clone(),
                expected: append.expected,
                actual,
            }));
            continue;
        }
        let mut version = actual.unwrap_or(0);
        let mut hash = current.map(|(_, hash)| hash.clone());
        let first_position = head + 1;
        for event in &append.events {
            version += 1;
            head += 1;
            let link = chain_hash(hash.as_deref(), &HashedFields::of(&append.stream, version, event));
            rows.push(&append.stream, version, head, event, link.clone(), recorded_at);
            if let Some(stored) = stored.as_mut() {
                let at = StoredAt {
                    stream: append.stream.clone(),
                    version,
                    position: head,
                };
                stored.insert(event.event_id, at);
            }
            hash = Some(link);
        }
        heads.insert(append.stream.clone(), (version, hash.unwrap_or_default()));
        answers.push(Ok(AppendOutcome {
            version,
            first_position,
            last_position: head,
            deduplicated: false,
        }));
    }
    Some(Decided {
        answers,
        rows,
        head,
        heads,
    })
}

async fn stage_and_write<C: GenericClient + Sync>(
    client: &C,
    statements: &LogStatements,
    appends: &[Append],
    mode: TransactionMode,
    mut cache: Option<&mut HeadCache>,
) -> Result<BatchOutcome, BatchError> {
    let start = lock_head(client, statements, mode).await?;
    let mut streams: Vec<&str> = appends.iter().map(|a| a.stream.as_str()).collect();
    streams.sort_unstable();
    streams.dedup();
    let ids: Vec<Uuid> = appends
        .iter()
        .flat_map(|a| a.events.iter().map(|e| e.event_id))
        .collect();

    let exact_cache = cache.as_deref_mut().filter(|cache| cache.as_of == start);
    let optimistic = exact_cache.is_some();
    let decided = match exact_cache {
        Some(cache) => {
            let uncached: Vec<&str> = streams
                .iter()
                .copied()
                .filter(|s| !cache.heads.contains_key(*s))
                .collect();
            let mut heads = stream_heads(client, statements, &uncached).await?;
            for stream in &streams {
                if let Some(known) = cache.heads.get(*stream) {
                    heads.insert((*stream).to_owned(), known.clone());
                }
            }
            match decide(appends, heads.clone(), None, start) {
                Some(decided) => decided,
                None => {
                    let stored = stored_ids(client, statements, &ids).await?;
                    decide(appends, heads, Some(stored), start).unwrap_or_else(|| unreachable!("decided with lookups"))
                }
            }
        }
        None => {
            // Both lookups go out together (the connection pipelines them): one round trip.
            let (heads, stored) = tokio::try_join!(
                stream_heads(client, statements, &streams),
                stored_ids(client, statements, &ids)
            )?;
            decide(appends, heads, Some(stored), start).unwrap_or_else(|| unreachable!("decided with lookups"))
        }
    };

    // The rows, the new head and (in its own transaction) the COMMIT leave together. Should a
    // statement fail, the COMMIT of the aborted transaction rolls it back.
    let (new_head, old_head) = (decided.head as i64, start as i64);
    let head_params: [&(dyn ToSql + Sync); 3] = [&new_head, &EVENTS_CHANNEL, &old_head];
    let commit = async {
        match mode {
            TransactionMode::Own => client.batch_execute(COMMIT).await,
            TransactionMode::Callers => Ok(()),
        }
    };
    if decided.head > start {
        let (inserted, moved, committed) = tokio::join!(
            biased;
            decided.rows.insert(client, &statements.insert),
            client.query_one(&statements.set_head_and_notify, &head_params),
            commit
        );
        match inserted {
            Err(BatchError::Sql(err)) if optimistic && err.code() == Some(&SqlState::UNIQUE_VIOLATION) => {
                return Err(BatchError::Collision)
            }
            other => other?,
        }
        moved?;
        committed?;
    } else {
        commit.await?;
    }
    if let Some(cache) = cache {
        if cache.as_of != start || cache.heads.len() > HeadCache::CAPACITY {
            cache.clear();
        }
        cache.as_of = decided.head;
        cache.heads.extend(decided.heads);
    }
    Ok(BatchOutcome {
        answers: decided.answers,
        head: decided.head,
    })
}
