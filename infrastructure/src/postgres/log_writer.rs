//! Appends to the PostgreSQL event log: group commit through one writer task per process.
//!
//! Appends arrive on a channel; the writer takes every request waiting (up to [`MAX_BATCH`]) and
//! runs them in one transaction with [`append_batch`]. That transaction first locks the log's
//! head row (`UPDATE lablet_log_head … RETURNING position`) and holds it until it commits, so
//! appends from every process commit one after another and positions increase strictly in
//! commit order, without gaps: a rolled-back transaction gives its positions back. A reader
//! that has seen position N has therefore seen every committed event below N, whatever other
//! writers did or undid meanwhile.
//!
//! Under that lock the stream heads read are exact, so expected versions are decided before
//! anything is written; the unique `(stream, version)` backs that up. Event ids already stored
//! make a retry answer the first outcome again (or `EventIdReused`). The insert is one
//! `INSERT … SELECT FROM UNNEST(…)`; no `ON CONFLICT` can hide a conflict, and the statement
//! that moves the head checks, inside the transaction, that exactly the batch's rows were
//! stored. A batch that fails as a whole is rerun append by append, so one bad append fails
//! alone.
//!
//! A batch costs three round trips and one commit: BEGIN with the lock, the lookups (stream
//! heads and stored ids together), then the rows, the head and the COMMIT together.

use super::rows::unavailable;
use super::{PostgresTarget, EVENTS_CHANNEL};
use crate::append_rules::{invalid_append, judge_stored, StoredAt};
use chrono::{DateTime, Utc};
use lablet_application::envelope::{chain_hash, truncate_to_micros, HashedFields, NewEvent};
use lablet_application::ports::{AppendOutcome, EventStoreError, ExpectedVersion};
use std::collections::HashMap;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, GenericClient, Statement};
use uuid::Uuid;

/// Appends per transaction at most.
pub const MAX_BATCH: usize = 512;

const LOCK_HEAD: &str = "UPDATE lablet_log_head SET position = position RETURNING position";
/// Moves the head to $1 and notifies channel $2, after checking that exactly the rows between
/// the old head $3 and $1 are stored: a mismatch divides by zero, which aborts the transaction,
/// so that the COMMIT sent behind it rolls everything back.
const SET_HEAD_AND_NOTIFY: &str = "WITH moved AS (UPDATE lablet_log_head SET position = $1) \
                                   SELECT pg_notify($2, $1::text) \
                                   FROM (SELECT count(*) AS stored FROM lablet_events WHERE position > $3) AS written \
                                   WHERE 1 / (CASE WHEN written.stored = $1 - $3 THEN 1 ELSE 0 END) = 1";
/// One backward index probe per stream (`LIMIT 1`), however long the streams are.
const STREAM_HEADS: &str = "SELECT s.stream, e.version, e.hash FROM unnest($1::text[]) AS s(stream) \
                            CROSS JOIN LATERAL (SELECT version, hash FROM lablet_events \
                            WHERE stream = s.stream ORDER BY version DESC LIMIT 1) AS e";
const STORED_IDS: &str = "SELECT event_id, stream, version, position FROM lablet_events WHERE event_id = ANY($1)";
const INSERT: &str = "INSERT INTO lablet_events (position, event_id, stream, version, event_type, schema_version, \
                      occurred_at, recorded_at, correlation_id, causation_id, actor, traceparent, payload, hash) \
                      SELECT * FROM UNNEST($1::bigint[], $2::uuid[], $3::text[], $4::bigint[], $5::text[], \
                      $6::integer[], $7::timestamptz[], $8::timestamptz[], $9::text[], $10::text[], $11::text[], \
                      $12::text[], $13::text[], $14::text[])";

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

/// One append, as the writer and [`append_batch`] see it.
pub struct Append {
    pub stream: String,
    pub expected: ExpectedVersion,
    pub events: Vec<NewEvent>,
}

pub struct AppendRequest {
    pub append: Append,
    pub reply: oneshot::Sender<Result<AppendOutcome, EventStoreError>>,
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
/// transaction ends. In [`TransactionMode::Own`] an error leaves nothing stored.
pub async fn append_batch<C: GenericClient + Sync>(
    client: &C,
    statements: &LogStatements,
    appends: &[Append],
    mode: TransactionMode,
) -> Result<BatchOutcome, BatchError> {
    let outcome = stage_and_write(client, statements, appends, mode).await;
    if outcome.is_err() && mode == TransactionMode::Own {
        let _ = client.batch_execute("ROLLBACK").await;
    }
    outcome
}

async fn stage_and_write<C: GenericClient + Sync>(
    client: &C,
    statements: &LogStatements,
    appends: &[Append],
    mode: TransactionMode,
) -> Result<BatchOutcome, BatchError> {
    let start: i64 = match mode {
        TransactionMode::Own => {
            // BEGIN and the lock leave together: `biased` polls them in this order, and each
            // request is sent when first polled.
            let (began, locked) = tokio::join!(
                biased;
                client.batch_execute("BEGIN"),
                client.query_one(&statements.lock_head, &[])
            );
            began?;
            locked?.get(0)
        }
        TransactionMode::Callers => client.query_one(&statements.lock_head, &[]).await?.get(0),
    };
    let start = start as u64;
    let invalid: Vec<Option<EventStoreError>> = appends.iter().map(|a| invalid_append(&a.stream, &a.events)).collect();
    let valid = || {
        appends
            .iter()
            .zip(&invalid)
            .filter(|(_, bad)| bad.is_none())
            .map(|(a, _)| a)
    };

    let mut streams: Vec<&str> = valid().map(|a| a.stream.as_str()).collect();
    streams.sort_unstable();
    streams.dedup();
    let ids: Vec<Uuid> = valid().flat_map(|a| a.events.iter().map(|e| e.event_id)).collect();
    // Both lookups go out together (the connection pipelines them): one round trip.
    let (head_params, id_params): ([&(dyn ToSql + Sync); 1], [&(dyn ToSql + Sync); 1]) = ([&streams], [&ids]);
    let (head_rows, stored_rows) = tokio::try_join!(
        client.query(&statements.stream_heads, &head_params),
        client.query(&statements.stored_ids, &id_params)
    )?;
    let mut heads: HashMap<String, (u64, String)> = HashMap::new();
    for row in head_rows {
        heads.insert(row.get(0), (row.get::<_, i64>(1) as u64, row.get(2)));
    }
    let mut stored: HashMap<Uuid, StoredAt> = HashMap::new();
    for row in stored_rows {
        let at = StoredAt {
            stream: row.get(1),
            version: row.get::<_, i64>(2) as u64,
            position: row.get::<_, i64>(3) as u64,
        };
        stored.insert(row.get(0), at);
    }

    let recorded_at = truncate_to_micros(Utc::now());
    let mut rows = Rows::default();
    let mut head = start;
    let mut answers = Vec::with_capacity(appends.len());
    for (append, invalid) in appends.iter().zip(invalid) {
        if let Some(invalid) = invalid {
            answers.push(Err(invalid));
            continue;
        }
        let found: Vec<(Uuid, Option<StoredAt>)> = append
            .events
            .iter()
            .map(|e| (e.event_id, stored.get(&e.event_id).cloned()))
            .collect();
        if let Some(answer) = judge_stored(&append.stream, &found) {
            answers.push(answer);
            continue;
        }
        let current = heads.get(&append.stream);
        let actual = current.map(|(version, _)| *version);
        if !append.expected.accepts(actual) {
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
            stored.insert(
                event.event_id,
                StoredAt {
                    stream: append.stream.clone(),
                    version,
                    position: head,
                },
            );
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
    // The rows, the new head and (in its own transaction) the COMMIT leave together. Should a
    // statement fail, the COMMIT of the aborted transaction rolls it back.
    let (new_head, old_head) = (head as i64, start as i64);
    let head_params: [&(dyn ToSql + Sync); 3] = [&new_head, &EVENTS_CHANNEL, &old_head];
    let commit = async {
        match mode {
            TransactionMode::Own => client.batch_execute("COMMIT").await,
            TransactionMode::Callers => Ok(()),
        }
    };
    if head > start {
        let (inserted, moved, committed) = tokio::join!(
            biased;
            rows.insert(client, &statements.insert),
            client.query_one(&statements.set_head_and_notify, &head_params),
            commit
        );
        inserted?;
        moved?;
        committed?;
    } else {
        commit.await?;
    }
    Ok(BatchOutcome { answers, head })
}

/// Runs `appends` in one transaction and commits it.
async fn commit(client: &Client, statements: &LogStatements, appends: &[Append]) -> Result<BatchOutcome, BatchError> {
    append_batch(client, statements, appends, TransactionMode::Own).await
}

/// The writer task: batches what waits on `requests`, commits, answers, announces the head.
pub async fn run(target: PostgresTarget, mut requests: mpsc::Receiver<AppendRequest>, head: watch::Sender<u64>) {
    let mut connection: Option<(Client, LogStatements)> = None;
    while let Some(first) = requests.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match requests.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        if connection.as_ref().is_none_or(|(client, _)| client.is_closed()) {
            connection = match connect(&target).await {
                Ok(connected) => Some(connected),
                Err(err) => {
                    tracing::error!(error = %err, "the event log writer cannot connect");
                    answer_all(batch, &unavailable(&err));
                    continue;
                }
            };
        }
        let Some((connected, statements)) = connection.as_mut() else {
            continue;
        };
        let (appends, replies): (Vec<Append>, Vec<_>) = batch.into_iter().map(|r| (r.append, r.reply)).unzip();
        let answers = match commit(connected, statements, &appends).await {
            Ok(outcome) => {
                announce(&head, outcome.head);
                outcome.answers
            }
            Err(err) if appends.len() > 1 => {
                tracing::warn!(error = %err, appends = appends.len(), "an event log batch failed; rerunning its appends one by one");
                let mut answers = Vec::with_capacity(appends.len());
                for append in appends {
                    answers.push(
                        match commit(connected, statements, std::slice::from_ref(&append)).await {
                            Ok(outcome) => {
                                announce(&head, outcome.head);
                                outcome
                                    .answers
                                    .into_iter()
                                    .next()
                                    .unwrap_or_else(|| Err(unavailable("no answer")))
                            }
                            Err(err) => Err(unavailable(err)),
                        },
                    );
                }
                answers
            }
            Err(err) => {
                tracing::error!(error = %err, "an event log append failed; nothing of it was committed");
                vec![Err(unavailable(err))]
            }
        };
        for (reply, answer) in replies.into_iter().zip(answers) {
            let _ = reply.send(answer);
        }
    }
}

/// A writer connection with its statements prepared.
async fn connect(target: &PostgresTarget) -> Result<(Client, LogStatements), String> {
    let client = target.connect().await.map_err(|e| e.to_string())?;
    // A generic plan cannot see how many streams and ids a batch brings; plan each execution.
    client
        .batch_execute("SET plan_cache_mode = force_custom_plan")
        .await
        .map_err(|e| e.to_string())?;
    let statements = LogStatements::prepare(&client).await.map_err(|e| e.to_string())?;
    Ok((client, statements))
}

fn answer_all(batch: Vec<AppendRequest>, error: &EventStoreError) {
    for request in batch {
        let _ = request.reply.send(Err(error.clone()));
    }
}

/// Moves the watched head forward (never back).
pub fn announce(head: &watch::Sender<u64>, position: u64) {
    head.send_if_modified(|current| {
        let moved = position > *current;
        *current = (*current).max(position);
        moved
    });
}
