//! The single writer of the SQLite event log: group commit.
//!
//! Appends arrive on a channel. The writer takes every request waiting (up to a bound), runs
//! them in one `BEGIN IMMEDIATE` transaction, commits once (one fsync), then answers each caller and announces the
//! new head. Positions are rowids handed out in this one thread, so they increase strictly in
//! commit order and readers never see a gap.
//!
//! The happy path does no extra lookups and no savepoints: the expected version is checked
//! against the writer's stream heads before anything is written, and only a refused check or
//! an event-id violation leads to asking whether the append is a retry of one already stored
//! (idempotency by event id). A violation reruns the batch with one savepoint per append, so a
//! refused append never spoils the others.
//!
//! `(stream, version)` is unique because only the holder of SQLite's write lock appends, and it
//! checks every expected version against heads that are exact as of the log's end: at the start
//! of each transaction it reads the events other processes committed since its own last commit.
//! The stream index is written behind the log (see the `stream_index` migration): every
//! [`INDEX_EVERY`] events, and whenever the writer is idle, the tail is indexed in a
//! transaction of its own. Until then the writer knows the heads of the tail's streams itself,
//! and readers scan the tail. A crash between the two only leaves a longer tail, indexed at the
//! next start.

use crate::append_rules::{invalid_append, judge_stored, StoredAt};
use crate::sqlite::rows::store_error;
use lablet_application::envelope::{chain_hash, format_timestamp, HashedFields, NewEvent};
use lablet_application::ports::{AppendOutcome, EventStoreError, ExpectedVersion};
use lablet_application::ports::{Clock, SystemClock};
use rusqlite::{params, Connection, ErrorCode, OptionalExtension, TransactionBehavior};
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use tokio::sync::{oneshot, watch};

const INSERT_EVENT: &str = include_str!("sql/insert_event.sql");
const STREAM_HEAD: &str = include_str!("sql/stream_head.sql");
const FIND_EVENT: &str = include_str!("sql/find_event.sql");
const HEAD_POSITION: &str = include_str!("sql/head_position.sql");
const EVENTS_AFTER: &str = include_str!("sql/events_after.sql");
const EVENTS_BETWEEN: &str = include_str!("sql/events_between.sql");
const INDEX_TAIL: &str = include_str!("sql/index_tail.sql");
pub const INDEX_PROGRESS: &str = include_str!("sql/index_progress.sql");
const SAVE_INDEX_PROGRESS: &str = include_str!("sql/save_index_progress.sql");

/// Appends per transaction at most; bounds the latency a batch adds to its first caller.
const MAX_BATCH: usize = 1024;
/// Streams whose head the writer remembers before it forgets them all.
const MAX_CACHED_HEADS: usize = 200_000;
/// How often the writer checkpoints between batches so that the WAL can restart from its
/// beginning instead of growing for as long as appends keep coming.
const WRITER_CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(200);
/// Unindexed events at most before the writer indexes them between two batches.
pub const INDEX_EVERY: u64 = 16384;
/// How long the writer waits for an append before it indexes the tail.
const IDLE_INDEX_AFTER: std::time::Duration = std::time::Duration::from_millis(20);

pub struct AppendRequest {
    pub stream: String,
    pub expected: ExpectedVersion,
    pub events: Vec<NewEvent>,
    pub reply: oneshot::Sender<Result<AppendOutcome, EventStoreError>>,
}

/// What readers learn from the writer so that a stream read skips the tail scan when the
/// stream has nothing in the tail: the streams with unindexed events, complete for every event
/// up to `last_seen`. The writer adds a stream after its commit and before answering, and
/// removes streams only after their events are indexed; a reader looks before it opens its
/// snapshot, and scans anyway if the snapshot reaches past `last_seen` (another process's
/// appends).
#[derive(Default)]
pub struct TailStreams {
    streams: HashSet<String>,
    last_seen: u64,
}

impl TailStreams {
    /// Whether a read of `stream` may need the tail, and up to which position that answer
    /// is complete.
    pub fn lookup(&self, stream: &str) -> (bool, u64) {
        (self.streams.contains(stream), self.last_seen)
    }
}

pub type SharedTailStreams = Arc<Mutex<TailStreams>>;

#[derive(Clone)]
struct StreamHead {
    version: u64,
    hash: String,
}

pub struct Writer {
    conn: Connection,
    /// Heads of recently used streams; may be forgotten at any time.
    heads: HashMap<String, StreamHead>,
    /// Heads of the streams with events after `indexed`: never forgotten until indexed, since
    /// the stream index cannot answer for them.
    tail: HashMap<String, StreamHead>,
    /// Every event up to this position is in the stream index.
    indexed: u64,
    /// The last position this writer knows of (its own commits and others' it has read).
    last_seen: u64,
    /// `tail`'s streams and `last_seen`, for readers.
    shared: SharedTailStreams,
    head_position: watch::Sender<u64>,
}

/// How one append in a batch ended before the batch commits.
enum Staged {
    Appended(AppendOutcome, String, StreamHead),
    Answered(Result<AppendOutcome, EventStoreError>),
}

impl Writer {
    pub fn new(conn: Connection, head_position: watch::Sender<u64>, shared: SharedTailStreams) -> Self {
        Writer {
            conn,
            heads: HashMap::new(),
            tail: HashMap::new(),
            indexed: 0,
            last_seen: 0,
            shared,
            head_position,
        }
    }

    /// Tells readers about the tail's streams (after a commit, before any answer).
    fn publish_tail(&self, streams: impl Iterator<Item = String>) {
        publish_tail(&self.shared, self.last_seen, streams);
    }

    /// Serves the channel until every sender is gone.
    pub fn run(mut self, requests: mpsc::Receiver<AppendRequest>) {
        if let Err(err) = self.start() {
            tracing::error!(error = %err, "the event writer cannot read the stream index; refusing appends");
            while let Ok(request) = requests.recv() {
                let _ = request.reply.send(Err(store_error_of(&err)));
            }
            return;
        }
        let mut last_checkpoint = std::time::Instant::now();
        loop {
            let first = match requests.recv_timeout(IDLE_INDEX_AFTER) {
                Ok(first) => first,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    self.index_tail();
                    continue;
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    self.index_tail();
                    return;
                }
            };
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match requests.try_recv() {
                    Ok(request) => batch.push(request),
                    Err(_) => break,
                }
            }
            self.commit_batch(batch);
            if self.last_seen.saturating_sub(self.indexed) >= INDEX_EVERY {
                self.index_tail();
            }
            if last_checkpoint.elapsed() >= WRITER_CHECKPOINT_EVERY {
                // Between batches no write is in flight: once this catches up with the last
                // frame, the next transaction starts the WAL again from its beginning.
                if let Err(err) = self.conn.query_row(super::WAL_CHECKPOINT, [], |_| Ok(())) {
                    tracing::warn!(error = %err, "WAL checkpoint failed");
                }
                last_checkpoint = std::time::Instant::now();
            }
        }
    }

    /// Learns where the index and the log end, and the heads of the unindexed tail; then
    /// indexes it.
    fn start(&mut self) -> rusqlite::Result<()> {
        self.indexed = self.conn.query_row(INDEX_PROGRESS, [], |row| row.get::<_, i64>(0))? as u64;
        self.last_seen = self.indexed;
        read_others_commits(&self.conn, &mut self.last_seen, &mut self.tail, &mut self.heads)?;
        self.publish_tail(self.tail.keys().cloned());
        self.index_tail();
        Ok(())
    }

    /// Indexes every event after the index's progress, a chunk per transaction; on success the
    /// tail is empty and its heads become ordinary cached heads.
    fn index_tail(&mut self) {
        if self.last_seen <= self.indexed {
            return;
        }
        // The index is derived from the log: its transactions need not wait for the disk (WAL
        // stays consistent), the next append's commit makes them durable.
        if let Err(err) = self.conn.pragma_update(None, "synchronous", "NORMAL") {
            tracing::warn!(error = %err, "indexing with full durability");
        }
        let indexed = index_chunks(&mut self.conn);
        while let Err(err) = self.conn.pragma_update(None, "synchronous", "FULL") {
            // Appends must never be acknowledged without their fsync: wait rather than go on.
            tracing::error!(error = %err, "cannot restore synchronous=FULL; retrying");
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        match indexed {
            Ok(position) => {
                self.indexed = position;
                if self.heads.len() + self.tail.len() > MAX_CACHED_HEADS {
                    self.heads.clear();
                }
                self.heads.extend(self.tail.drain());
                if let Ok(mut shared) = self.shared.lock() {
                    shared.streams.clear();
                }
            }
            Err(err) => {
                // Reads and appends stay correct with a longer tail; the next attempt retries.
                tracing::error!(error = %err, "indexing the newest events failed");
            }
        }
    }

    fn commit_batch(&mut self, batch: Vec<AppendRequest>) {
        // Fast path: no savepoints. An event-id collision (a retried append, a reused id) is
        // rare; it rolls the whole batch back and reruns it carefully, each append in its own
        // savepoint.
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
        let mut appended_streams = Vec::new();
        for staged in &staged {
            if let Staged::Appended(outcome, stream, head) = staged {
                self.heads.remove(stream);
                self.tail.insert(stream.clone(), head.clone());
                self.last_seen = self.last_seen.max(outcome.last_position);
                last_position = Some(outcome.last_position);
                appended_streams.push(stream.clone());
            }
        }
        // Readers must know of the new tail events before anyone learns they were appended.
        self.publish_tail(appended_streams.into_iter());
        for (request, staged) in batch.into_iter().zip(staged) {
            let answer = match staged {
                Staged::Appended(outcome, _, _) => Ok(outcome),
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
        // Under the write lock: what other processes appended since is read before deciding.
        let seen = self.last_seen;
        read_others_commits(&tx, &mut self.last_seen, &mut self.tail, &mut self.heads)?;
        if self.last_seen > seen {
            publish_tail(&self.shared, self.last_seen, self.tail.keys().cloned());
        }
        let recorded_at = format_timestamp(SystemClock.now());
        // Heads changed earlier in this batch, not yet committed.
        let mut batch_heads: HashMap<&str, StreamHead> = HashMap::new();
        for request in batch {
            let cached = batch_heads
                .get(request.stream.as_str())
                .or_else(|| self.tail.get(&request.stream))
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
                    // The heads are exact (refreshed under the write lock, and this batch's own
                    // appends are in `batch_heads`): a refusal means the caller was behind.
                    staged.push(answered);
                }
                None if !careful => return Err(StageError::Collision),
                None => {
                    // A unique key was taken. Decided after the rollback of this append alone,
                    // so its own rows are gone from what the lookup sees.
                    tx.execute_batch("ROLLBACK TO append; RELEASE append")?;
                    // The only unique key is the event id, so the lookup finds the owner.
                    let answer = find_stored(&tx, request)?.unwrap_or_else(|| {
                        Err(EventStoreError::Unavailable(
                            "an event id collided but no stored event has it".into(),
                        ))
                    });
                    staged.push(Staged::Answered(answer));
                }
            }
        }
        tx.commit()?;
        Ok(())
    }
}

/// Reads the events committed after `last_seen` (by other processes: this writer's own
/// commits move `last_seen`) and takes their streams' heads into `tail`.
fn read_others_commits(
    conn: &Connection,
    last_seen: &mut u64,
    tail: &mut HashMap<String, StreamHead>,
    heads: &mut HashMap<String, StreamHead>,
) -> rusqlite::Result<()> {
    let end = conn.query_row(HEAD_POSITION, [], |row| row.get::<_, i64>(0))? as u64;
    if end <= *last_seen {
        return Ok(());
    }
    let mut statement = conn.prepare_cached(EVENTS_AFTER)?;
    let mut rows = statement.query([*last_seen as i64])?;
    while let Some(row) = rows.next()? {
        let stream: String = row.get(1)?;
        let head = StreamHead {
            version: row.get::<_, i64>(2)? as u64,
            hash: row.get(3)?,
        };
        heads.remove(&stream);
        tail.insert(stream, head);
        *last_seen = (*last_seen).max(row.get::<_, i64>(0)? as u64);
    }
    Ok(())
}

/// Adds `streams` to what readers know has unindexed events, complete up to `last_seen`.
fn publish_tail(shared: &SharedTailStreams, last_seen: u64, streams: impl Iterator<Item = String>) {
    if let Ok(mut shared) = shared.lock() {
        shared.streams.extend(streams);
        shared.last_seen = shared.last_seen.max(last_seen);
    }
}

/// Events indexed per transaction, so that indexing a long tail (a first start on an existing
/// log) never holds everything in memory or the write lock for long.
const INDEX_CHUNK: i64 = 50_000;

/// Indexes every event after the index's progress, a chunk per transaction; answers the
/// position indexed up to.
fn index_chunks(conn: &mut Connection) -> rusqlite::Result<u64> {
    loop {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let from = tx.query_row(INDEX_PROGRESS, [], |row| row.get::<_, i64>(0))?;
        let end = tx.query_row(HEAD_POSITION, [], |row| row.get::<_, i64>(0))?;
        let to = end.min(from + INDEX_CHUNK);
        if to > from {
            let mut insert = tx.prepare_cached(INDEX_TAIL)?;
            let mut select = tx.prepare_cached(EVENTS_BETWEEN)?;
            let mut rows = select.query([from, to])?;
            while let Some(row) = rows.next()? {
                let stream: String = row.get(1)?;
                let version: i64 = row.get(2)?;
                insert.execute(params![stream_key(&stream), version, row.get::<_, i64>(0)?])?;
            }
            drop(rows);
            drop((select, insert));
            tx.prepare_cached(SAVE_INDEX_PROGRESS)?.execute([to])?;
        }
        tx.commit()?;
        if to >= end {
            return Ok(to.max(from) as u64);
        }
    }
}

/// The stream index's key of a stream: the first 8 bytes of the SHA-256 of its name.
pub fn stream_key(stream: &str) -> i64 {
    let digest = Sha256::digest(stream.as_bytes());
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    i64::from_le_bytes(bytes)
}

fn store_error_of(err: &rusqlite::Error) -> EventStoreError {
    EventStoreError::Unavailable(err.to_string())
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
    if let Some(invalid) = invalid_append(&request.stream, &request.events) {
        return Ok(Some(Staged::Answered(Err(invalid))));
    }
    let head = match cached {
        Some(head) => Some(head),
        None => conn
            .prepare_cached(STREAM_HEAD)?
            .query_row(params![stream_key(&request.stream), request.stream], |row| {
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

/// If these exact events are stored already (a retried append), the first outcome again; if
/// only some of their ids are stored, or elsewhere, an error; None if none is stored.
fn find_stored(
    conn: &Connection,
    request: &AppendRequest,
) -> rusqlite::Result<Option<Result<AppendOutcome, EventStoreError>>> {
    let mut find = conn.prepare_cached(FIND_EVENT)?;
    let mut found = Vec::with_capacity(request.events.len());
    for event in &request.events {
        let at = find
            .query_row([event.event_id.to_string()], |row| {
                Ok(StoredAt {
                    stream: row.get(0)?,
                    version: row.get::<_, i64>(1)? as u64,
                    position: row.get::<_, i64>(2)? as u64,
                })
            })
            .optional()?;
        found.push((event.event_id, at));
    }
    Ok(judge_stored(&request.stream, &found))
}

/// The position of the last committed event in `conn`'s file.
pub fn head_position(conn: &Connection) -> rusqlite::Result<u64> {
    conn.query_row(HEAD_POSITION, [], |row| row.get::<_, i64>(0))
        .map(|p| p as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use lablet_application::envelope::{truncate_to_micros, EventMetadata};
    use lablet_application::ports::{Clock, IdSource, SystemClock, UuidV7Ids};
    use serde_json::value::RawValue;

    fn migrated(path: &std::path::Path) -> Connection {
        let conn = crate::sqlite::open_connection(path).unwrap();
        conn.execute_batch(include_str!(
            "../../../migrations/sql/sqlite/event_store_0001_events.sql"
        ))
        .unwrap();
        conn.execute_batch(include_str!(
            "../../../migrations/sql/sqlite/event_store_0002_stream_index.sql"
        ))
        .unwrap();
        conn
    }

    fn request(
        stream: &str,
        expected: ExpectedVersion,
    ) -> (AppendRequest, oneshot::Receiver<Result<AppendOutcome, EventStoreError>>) {
        let (reply, answer) = oneshot::channel();
        let event = NewEvent {
            event_id: UuidV7Ids.new_id(),
            event_type: "test.happened".into(),
            schema_version: 1,
            occurred_at: truncate_to_micros(SystemClock.now()),
            payload: RawValue::from_string("{}".into()).unwrap(),
            metadata: EventMetadata::default(),
        };
        let request = AppendRequest {
            stream: stream.into(),
            expected,
            events: vec![event],
            reply,
        };
        (request, answer)
    }

    /// Appends sent before the writer starts land in one batch; answers each reply.
    fn run_one_batch(path: &std::path::Path, requests: Vec<(&str, ExpectedVersion)>) -> Vec<Result<u64, String>> {
        let (sender, receiver) = mpsc::channel();
        let mut answers = Vec::new();
        for (stream, expected) in requests {
            let (request, answer) = request(stream, expected);
            sender.send(request).unwrap();
            answers.push(answer);
        }
        drop(sender);
        Writer::new(
            migrated_or_open(path),
            watch::channel(0).0,
            SharedTailStreams::default(),
        )
        .run(receiver);
        answers
            .into_iter()
            .map(|mut answer| match answer.try_recv().unwrap() {
                Ok(outcome) => Ok(outcome.version),
                Err(err) => Err(err.to_string()),
            })
            .collect()
    }

    fn migrated_or_open(path: &std::path::Path) -> Connection {
        if path.exists() {
            crate::sqlite::open_connection(path).unwrap()
        } else {
            migrated(path)
        }
    }

    fn versions(path: &std::path::Path, table: &str) -> Vec<i64> {
        let conn = crate::sqlite::open_connection(path).unwrap();
        let sql = match table {
            "events" => "SELECT version FROM events WHERE stream = 's' ORDER BY version".to_owned(),
            _ => "SELECT i.version FROM stream_index i JOIN events e ON e.position = i.position
                  WHERE e.stream = 's' ORDER BY i.version"
                .to_owned(),
        };
        let mut statement = conn.prepare(&sql).unwrap();
        let rows = statement.query_map([], |row| row.get(0)).unwrap();
        rows.collect::<Result<_, _>>().unwrap()
    }

    #[test]
    fn a_refused_append_in_a_batch_does_not_hide_an_earlier_append_of_its_stream() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.db");
        let answers = run_one_batch(
            &path,
            vec![
                ("s", ExpectedVersion::NoStream),
                ("s", ExpectedVersion::NoStream),
                ("s", ExpectedVersion::Exact(0)),
                ("s", ExpectedVersion::Exact(1)),
                ("s", ExpectedVersion::Exact(1)),
            ],
        );
        assert_eq!(answers[0], Ok(1));
        assert!(answers[1].is_err() && answers[2].is_err(), "{answers:?}");
        assert_eq!(answers[3], Ok(2));
        assert!(answers[4].is_err(), "version 2 is taken within the same batch");
        assert_eq!(versions(&path, "events"), vec![1, 2]);
        assert_eq!(
            versions(&path, "stream_index"),
            vec![1, 2],
            "indexed when the writer stops"
        );
    }

    #[test]
    fn a_second_writer_on_the_same_file_sees_the_first_ones_appends_before_deciding() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.db");
        assert_eq!(
            run_one_batch(&path, vec![("s", ExpectedVersion::NoStream)]),
            vec![Ok(1)]
        );
        // A writer that never saw the file: its heads come from the index and the tail.
        let answers = run_one_batch(
            &path,
            vec![("s", ExpectedVersion::NoStream), ("s", ExpectedVersion::Exact(1))],
        );
        assert!(answers[0].is_err());
        assert_eq!(answers[1], Ok(2));

        // Two live writers taking turns: each reads the other's commits under the write lock.
        let (first_sender, first_receiver) = mpsc::channel();
        let (second_sender, second_receiver) = mpsc::channel();
        let first = std::thread::spawn({
            let conn = crate::sqlite::open_connection(&path).unwrap();
            move || Writer::new(conn, watch::channel(0).0, SharedTailStreams::default()).run(first_receiver)
        });
        let second = std::thread::spawn({
            let conn = crate::sqlite::open_connection(&path).unwrap();
            move || Writer::new(conn, watch::channel(0).0, SharedTailStreams::default()).run(second_receiver)
        });
        let mut head = 2;
        for turn in 0..6u64 {
            let sender = if turn % 2 == 0 { &first_sender } else { &second_sender };
            // The other writer appended last: this one must know, or it would accept this.
            let (stale, stale_answer) = request("s", ExpectedVersion::Exact(head - 1));
            sender.send(stale).unwrap();
            assert!(stale_answer.blocking_recv().unwrap().is_err(), "turn {turn}");
            let (fresh, fresh_answer) = request("s", ExpectedVersion::Exact(head));
            sender.send(fresh).unwrap();
            let appended = fresh_answer.blocking_recv().unwrap().map(|o| o.version);
            assert_eq!(appended, Ok(head + 1), "turn {turn}");
            head += 1;
        }
        drop((first_sender, second_sender));
        first.join().unwrap();
        second.join().unwrap();
        let stored = versions(&path, "events");
        assert_eq!(
            stored,
            (1..=head as i64).collect::<Vec<_>>(),
            "no version twice, none skipped"
        );
        assert_eq!(versions(&path, "stream_index"), stored);
    }
}
