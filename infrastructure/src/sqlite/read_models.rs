//! The SQLite read-model store: one table per collection (JSON body plus the indexed columns
//! queries filter on, copied from the body on every write), one `operation_history` table, and
//! `projection_checkpoints`, all written in one transaction per projection batch.
//!
//! History is kept in segments, one row per document per commit holding the operations that
//! commit added. Each document counts its operations; once it holds [`TRIM_SLACK`] more than the
//! 50 it keeps, the oldest segments that the newer ones make redundant are deleted. Reads take
//! the newest 50, so trimming is invisible to them. Documents are stored and served as JSON text:
//! queries never parse them.
//!
//! Read models run with `synchronous=NORMAL`: a power cut may lose the newest batches, but the
//! documents and the checkpoint are lost together, so the projection simply replays them.

use super::connection::{open_connection, require_table, with_writer_cache, SqliteError};
use crate::documents::{column_value, parse_body, with_history};
use async_trait::async_trait;
use lablet_application::ports::read_models::{Filter, OPERATION_HISTORY_LIMIT};
use lablet_application::ports::read_models::{ProjectionFault, ProjectionStatus};
use lablet_application::ports::{Clock, SystemClock};
use lablet_application::ports::{CollectionSpec, CommitFence};
use lablet_application::ports::{DocumentWrite, ListPage, ListQuery, ReadModelError, ReadModelStore, StoredDocument};
use lablet_application::read_model_queries::COLLECTIONS;
use rusqlite::types::Value as SqlValue;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension, TransactionBehavior};
use serde_json::value::RawValue;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

const GENERATION: &str = include_str!("sql/generation.sql");
const FENCE: &str = include_str!("sql/fence.sql");

const LOAD_DOCUMENT: &str = include_str!("sql/load_document.sql");
const UPSERT_DOCUMENT: &str = include_str!("sql/upsert_document.sql");
const INSERT_HISTORY: &str = include_str!("sql/insert_history.sql");
const DELETE_HISTORY_SEGMENT: &str = include_str!("sql/delete_history_segment.sql");
const RESET_HISTORY_COUNT: &str = include_str!("sql/reset_history_count.sql");
const SELECT_HISTORY: &str = include_str!("sql/select_history.sql");
const SAVE_CHECKPOINT: &str = include_str!("sql/save_checkpoint.sql");
const LOAD_CHECKPOINT: &str = include_str!("sql/load_checkpoint.sql");
const RECORD_PROJECTION_ERROR: &str = include_str!("sql/record_projection_error.sql");
const PROJECTION_STATUS: &str = include_str!("sql/projection_status.sql");
const LOAD_DOCUMENTS_IN: &str = include_str!("sql/load_documents_in.sql");
const LIST_DOCUMENTS: &str = include_str!("sql/list_documents.sql");

/// History rows a document may gather beyond the limit before they are trimmed.
const TRIM_SLACK: i64 = 25;
/// Ids per `IN (…)` lookup.
const LOAD_CHUNK: usize = 400;
const MAX_IDLE_READERS: usize = 8;

#[derive(Clone)]
pub struct SqliteReadModelStore {
    pub(super) inner: Arc<Inner>,
}

pub(super) struct Inner {
    pub(super) path: PathBuf,
    pub(super) writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
}

pub(super) fn unavailable(err: impl std::fmt::Display) -> ReadModelError {
    ReadModelError::Unavailable(err.to_string())
}

fn corrupt(err: impl std::fmt::Display) -> ReadModelError {
    ReadModelError::Corrupt(err.to_string())
}

/// The spec of a known collection; SQL is never built from an unknown name.
fn spec(collection: &str) -> Result<CollectionSpec, ReadModelError> {
    COLLECTIONS
        .iter()
        .find(|spec| spec.name == collection)
        .copied()
        .ok_or_else(|| ReadModelError::UnknownCollection(collection.to_owned()))
}

pub(super) fn table(collection: &str) -> Result<&'static str, ReadModelError> {
    spec(collection).map(|spec| spec.name)
}

/// The upsert of a collection, with its filter columns.
fn upsert_sql(spec: CollectionSpec) -> String {
    let fields = spec.filter_fields;
    let columns: String = fields.iter().map(|f| format!(", {f}")).collect();
    let values: String = (0..fields.len()).map(|i| format!(", ?{}", i + 5)).collect();
    let updates: String = fields.iter().map(|f| format!(",\n    {f} = excluded.{f}")).collect();
    UPSERT_DOCUMENT
        .replace("{collection}", spec.name)
        .replace("{filter_columns}", &columns)
        .replace("{filter_values}", &values)
        .replace("{filter_updates}", &updates)
}

impl SqliteReadModelStore {
    /// Opens the read models at `path`, which migrations must have created.
    pub fn open(path: &Path) -> Result<Self, SqliteError> {
        let writer = with_writer_cache(open_connection(path)?)?;
        require_table(&writer, path, "projection_checkpoints")?;
        writer.pragma_update(None, "synchronous", "NORMAL")?;
        Ok(SqliteReadModelStore {
            inner: Arc::new(Inner {
                path: path.to_owned(),
                writer: Mutex::new(writer),
                readers: Mutex::new(Vec::new()),
            }),
        })
    }

    async fn read<T, F>(&self, read: F) -> Result<T, ReadModelError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, ReadModelError> + Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let pooled = inner.readers.lock().ok().and_then(|mut pool| pool.pop());
            let conn = match pooled {
                Some(conn) => conn,
                None => open_connection(&inner.path).map_err(unavailable)?,
            };
            let result = read(&conn);
            if let Ok(mut pool) = inner.readers.lock() {
                if pool.len() < MAX_IDLE_READERS {
                    pool.push(conn);
                }
            }
            result
        })
        .await
        .map_err(unavailable)?
    }
}

/// The newest 50 operations of a document, oldest first, as JSON text.
fn history(conn: &Connection, collection: &str, id: &str) -> Result<Vec<Box<RawValue>>, ReadModelError> {
    let mut statement = conn.prepare_cached(SELECT_HISTORY).map_err(unavailable)?;
    let mut rows = statement.query(params![collection, id]).map_err(unavailable)?;
    // Newest segment first; each segment's entries oldest first.
    let mut segments: Vec<Vec<Box<RawValue>>> = Vec::new();
    let mut gathered = 0;
    while gathered < OPERATION_HISTORY_LIMIT {
        let Some(row) = rows.next().map_err(unavailable)? else {
            break;
        };
        let body: String = row.get(2).map_err(unavailable)?;
        let entries: Vec<Box<RawValue>> = serde_json::from_str(&body).map_err(corrupt)?;
        gathered += entries.len();
        segments.push(entries);
    }
    let mut entries: Vec<Box<RawValue>> = segments.into_iter().rev().flatten().collect();
    let excess = entries.len().saturating_sub(OPERATION_HISTORY_LIMIT);
    entries.drain(..excess);
    Ok(entries)
}

/// Deletes the oldest segments of a document that its newer segments make redundant; answers
/// how many operations remain.
fn trim_history(tx: &Connection, collection: &str, id: &str, mut count: i64) -> rusqlite::Result<i64> {
    let mut segments: Vec<(i64, i64)> = tx
        .prepare_cached(SELECT_HISTORY)?
        .query_map(params![collection, id], |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect::<Result<_, _>>()?;
    segments.reverse(); // oldest first
    let mut delete = tx.prepare_cached(DELETE_HISTORY_SEGMENT)?;
    for (first_position, entries) in segments {
        if count - entries < OPERATION_HISTORY_LIMIT as i64 {
            break;
        }
        delete.execute(params![collection, id, first_position])?;
        count -= entries;
    }
    Ok(count)
}

/// Why a fenced commit wrote nothing.
enum Refused {
    Superseded { current: u64 },
    Fenced { found: u64 },
}

/// Writes a batch under the fence, in one `BEGIN IMMEDIATE` transaction: the check and the
/// writes hold the database's write lock together, across processes too.
fn write_batch(
    conn: &mut Connection,
    projection: &str,
    fence: CommitFence,
    checkpoint: u64,
    writes: &[DocumentWrite],
) -> rusqlite::Result<Result<(), Refused>> {
    let to_sql = |e: serde_json::Error| rusqlite::Error::ToSqlConversionFailure(Box::new(e));
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let (current, found) = tx
        .prepare_cached(FENCE)?
        .query_row([projection], |row| {
            Ok((row.get::<_, i64>(0)? as u64, row.get::<_, i64>(1)? as u64))
        })
        .optional()?
        .unwrap_or((0, 0));
    if current != fence.generation {
        return Ok(Err(Refused::Superseded { current }));
    }
    if found != fence.from {
        return Ok(Err(Refused::Fenced { found }));
    }
    {
        let mut insert_history = tx.prepare_cached(INSERT_HISTORY)?;
        for write in writes {
            let spec = spec(write.collection).map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
            let body = serde_json::to_string(&write.body).map_err(to_sql)?;
            // Only the newest entries can survive the trim; skip writing the rest.
            let keep_from = write.new_history.len().saturating_sub(OPERATION_HISTORY_LIMIT);
            let new_entries = &write.new_history[keep_from..];
            let mut values: Vec<SqlValue> = Vec::with_capacity(4 + spec.filter_fields.len());
            values.push(SqlValue::Text(write.id.clone()));
            values.push(SqlValue::Text(body));
            values.push(SqlValue::Integer(write.last_position as i64));
            values.push(SqlValue::Integer(new_entries.len() as i64));
            values.extend(
                spec.filter_fields
                    .iter()
                    .map(|f| column_value(&write.body, f).map_or(SqlValue::Null, SqlValue::Text)),
            );
            let history_count: i64 = tx
                .prepare_cached(&upsert_sql(spec))?
                .query_row(params_from_iter(values.iter()), |row| row.get(0))?;
            if let Some(first) = new_entries.first() {
                let mut segment =
                    String::with_capacity(new_entries.iter().map(|e| e.json.get().len() + 1).sum::<usize>() + 2);
                segment.push('[');
                for (i, entry) in new_entries.iter().enumerate() {
                    if i > 0 {
                        segment.push(',');
                    }
                    segment.push_str(entry.json.get());
                }
                segment.push(']');
                insert_history.execute(params![
                    write.collection,
                    write.id,
                    first.position as i64,
                    new_entries.len() as i64,
                    segment
                ])?;
            }
            if history_count > OPERATION_HISTORY_LIMIT as i64 + TRIM_SLACK {
                let remaining = trim_history(&tx, write.collection, &write.id, history_count)?;
                tx.prepare_cached(&RESET_HISTORY_COUNT.replace("{collection}", spec.name))?
                    .execute(params![write.id, remaining])?;
            }
        }
        tx.prepare_cached(SAVE_CHECKPOINT)?.execute(params![
            projection,
            checkpoint as i64,
            SystemClock.now().to_rfc3339()
        ])?;
    }
    tx.commit().map(Ok)
}

pub(super) fn current_generation(conn: &Connection, projection: &str) -> rusqlite::Result<u64> {
    conn.prepare_cached(GENERATION)?
        .query_row([projection], |row| row.get::<_, i64>(0))
        .optional()
        .map(|generation| generation.map_or(0, |g| g as u64))
}

#[async_trait]
impl ReadModelStore for SqliteReadModelStore {
    async fn load_documents(
        &self,
        collection: &'static str,
        ids: &[String],
    ) -> Result<HashMap<String, StoredDocument>, ReadModelError> {
        let table = table(collection)?;
        let ids = ids.to_vec();
        self.read(move |conn| {
            let mut found = HashMap::with_capacity(ids.len());
            for chunk in ids.chunks(LOAD_CHUNK) {
                let placeholders = vec!["?"; chunk.len()].join(",");
                let sql = LOAD_DOCUMENTS_IN
                    .replace("{table}", table)
                    .replace("{placeholders}", &placeholders);
                let mut statement = conn.prepare(&sql).map_err(unavailable)?;
                let rows = statement
                    .query_map(params_from_iter(chunk.iter()), |row| {
                        Ok((
                            row.get::<_, String>(0)?,
                            row.get::<_, String>(1)?,
                            row.get::<_, i64>(2)?,
                        ))
                    })
                    .map_err(unavailable)?;
                for row in rows {
                    let (id, body, last_position) = row.map_err(unavailable)?;
                    found.insert(
                        id,
                        StoredDocument {
                            body: parse_body(&body)?,
                            last_position: last_position as u64,
                        },
                    );
                }
            }
            Ok(found)
        })
        .await
    }

    async fn commit(
        &self,
        projection: &str,
        fence: CommitFence,
        checkpoint: u64,
        writes: Vec<DocumentWrite>,
    ) -> Result<(), ReadModelError> {
        for write in &writes {
            table(write.collection)?;
        }
        let inner = self.inner.clone();
        let projection = projection.to_owned();
        tokio::task::spawn_blocking(move || {
            let mut conn = inner
                .writer
                .lock()
                .map_err(|_| unavailable("read-model writer lock poisoned"))?;
            match write_batch(&mut conn, &projection, fence, checkpoint, &writes).map_err(unavailable)? {
                Ok(()) => Ok(()),
                Err(Refused::Superseded { current }) => Err(ReadModelError::Superseded { projection, current }),
                Err(Refused::Fenced { found }) => Err(ReadModelError::Fenced {
                    projection,
                    expected: fence.from,
                    found,
                }),
            }
        })
        .await
        .map_err(unavailable)?
    }

    async fn checkpoint(&self, projection: &str) -> Result<Option<u64>, ReadModelError> {
        let projection = projection.to_owned();
        self.read(move |conn| {
            conn.query_row(LOAD_CHECKPOINT, [projection], |row| row.get::<_, i64>(0))
                .optional()
                .map(|p| p.map(|p| p as u64))
                .map_err(unavailable)
        })
        .await
    }

    async fn generation(&self, projection: &str) -> Result<u64, ReadModelError> {
        let projection = projection.to_owned();
        self.read(move |conn| current_generation(conn, &projection).map_err(unavailable))
            .await
    }

    async fn record_error(&self, projection: &str, position: Option<u64>, message: &str) -> Result<(), ReadModelError> {
        let inner = self.inner.clone();
        let (projection, message) = (projection.to_owned(), message.to_owned());
        tokio::task::spawn_blocking(move || {
            let conn = inner
                .writer
                .lock()
                .map_err(|_| unavailable("read-model writer lock poisoned"))?;
            conn.execute(
                RECORD_PROJECTION_ERROR,
                params![
                    projection,
                    message,
                    position.map(|p| p as i64),
                    SystemClock.now().to_rfc3339()
                ],
            )
            .map(|_| ())
            .map_err(unavailable)
        })
        .await
        .map_err(unavailable)?
    }

    async fn status(&self, projection: &str) -> Result<Option<ProjectionStatus>, ReadModelError> {
        let projection = projection.to_owned();
        self.read(move |conn| {
            let row = conn
                .query_row(PROJECTION_STATUS, [projection], |row| {
                    Ok((
                        row.get::<_, i64>(0)?,
                        row.get::<_, Option<String>>(2)?,
                        row.get::<_, Option<i64>>(3)?,
                        row.get::<_, Option<String>>(4)?,
                    ))
                })
                .optional()
                .map_err(unavailable)?;
            let Some((position, message, error_position, error_at)) = row else {
                return Ok(None);
            };
            let error = match (message, error_at) {
                (Some(message), Some(at)) => Some(ProjectionFault {
                    message,
                    position: error_position.map(|p| p as u64),
                    at: super::connection::parse_utc(&at).map_err(corrupt)?,
                }),
                _ => None,
            };
            Ok(Some(ProjectionStatus {
                position: position as u64,
                error,
            }))
        })
        .await
    }

    async fn get(&self, collection: &'static str, id: &str) -> Result<Option<Box<RawValue>>, ReadModelError> {
        let table = table(collection)?;
        let id = id.to_owned();
        self.read(move |conn| {
            let sql = LOAD_DOCUMENT.replace("{collection}", table);
            let body: Option<String> = conn
                .prepare_cached(&sql)
                .and_then(|mut s| s.query_row([&id], |row| row.get(0)).optional())
                .map_err(unavailable)?;
            match body {
                Some(body) => with_history(&body, &history(conn, table, &id)?).map(Some),
                None => Ok(None),
            }
        })
        .await
    }

    async fn list(&self, collection: &'static str, query: &ListQuery) -> Result<ListPage, ReadModelError> {
        let table = table(collection)?;
        let query = query.clone();
        self.read(move |conn| {
            let mut clauses = Vec::new();
            let mut values: Vec<String> = Vec::new();
            for filter in &query.filters {
                match filter {
                    // Field names come from the collection spec, never from input.
                    Filter::Equals { field, value } => {
                        values.push(value.clone());
                        clauses.push(format!("{field} = ?{}", values.len()));
                    }
                    Filter::IsNull { field } => clauses.push(format!("{field} IS NULL")),
                }
            }
            if let Some(after) = &query.after_id {
                values.push(after.clone());
                clauses.push(format!("id > ?{}", values.len()));
            }
            let filter = if clauses.is_empty() {
                String::new()
            } else {
                format!("WHERE {}", clauses.join(" AND "))
            };
            let sql = LIST_DOCUMENTS
                .replace("{table}", table)
                .replace("{where}", &filter)
                .replace("{limit}", &(query.limit + 1).to_string());
            let mut statement = conn.prepare_cached(&sql).map_err(unavailable)?;
            let rows = statement
                .query_map(params_from_iter(values.iter()), |row| {
                    Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
                })
                .map_err(unavailable)?;
            let mut items = Vec::with_capacity(query.limit);
            let mut last_id = None;
            let mut next_cursor = None;
            for row in rows {
                let (id, body) = row.map_err(unavailable)?;
                if items.len() == query.limit {
                    next_cursor = last_id;
                    break;
                }
                let item = if query.include_history {
                    with_history(&body, &history(conn, table, &id)?)?
                } else {
                    RawValue::from_string(body).map_err(corrupt)?
                };
                items.push(item);
                last_id = Some(id);
            }
            Ok(ListPage { items, next_cursor })
        })
        .await
    }
}
