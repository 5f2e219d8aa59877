//! The SQLite read-model store: one table per collection (JSON body plus generated, indexed
//! filter columns), one `operation_history` table trimmed to the 50 newest entries per
//! document, and `projection_checkpoints`, all written in one transaction per projection batch.
//!
//! Read models run with `synchronous=NORMAL`: a power cut may lose the newest batches, but the
//! documents and the checkpoint are lost together, so the projection simply replays them.

use super::connection::{open_connection, require_table, SqliteError};
use async_trait::async_trait;
use chrono::Utc;
use lablet_application::ports::read_models::{Filter, OPERATION_HISTORY_LIMIT};
use lablet_application::ports::{DocumentWrite, ListPage, ListQuery, ReadModelError, ReadModelStore, StoredDocument};
use lablet_application::read_model_queries::COLLECTIONS;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension, TransactionBehavior};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

const LOAD_DOCUMENT: &str = include_str!("sql/load_document.sql");
const UPSERT_DOCUMENT: &str = include_str!("sql/upsert_document.sql");
const INSERT_HISTORY: &str = include_str!("sql/insert_history.sql");
const TRIM_HISTORY: &str = include_str!("sql/trim_history.sql");
const SELECT_HISTORY: &str = include_str!("sql/select_history.sql");
const SAVE_CHECKPOINT: &str = include_str!("sql/save_checkpoint.sql");
const LOAD_CHECKPOINT: &str = include_str!("sql/load_checkpoint.sql");

/// Ids per `IN (…)` lookup.
const LOAD_CHUNK: usize = 400;
const MAX_IDLE_READERS: usize = 8;

#[derive(Clone)]
pub struct SqliteReadModelStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
}

fn unavailable(err: impl std::fmt::Display) -> ReadModelError {
    ReadModelError::Unavailable(err.to_string())
}

fn corrupt(err: impl std::fmt::Display) -> ReadModelError {
    ReadModelError::Corrupt(err.to_string())
}

/// The table of a known collection; never builds SQL from an unknown name.
fn table(collection: &str) -> Result<&'static str, ReadModelError> {
    COLLECTIONS
        .iter()
        .find(|spec| spec.name == collection)
        .map(|spec| spec.name)
        .ok_or_else(|| ReadModelError::UnknownCollection(collection.to_owned()))
}

fn parse_body(text: &str) -> Result<Map<String, Value>, ReadModelError> {
    match serde_json::from_str(text).map_err(corrupt)? {
        Value::Object(map) => Ok(map),
        other => Err(corrupt(format!("a document must be an object, not {other}"))),
    }
}

impl SqliteReadModelStore {
    /// Opens the read models at `path`, which migrations must have created.
    pub fn open(path: &Path) -> Result<Self, SqliteError> {
        let writer = open_connection(path)?;
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

fn history(conn: &Connection, collection: &str, id: &str) -> Result<Vec<Value>, ReadModelError> {
    let mut statement = conn.prepare_cached(SELECT_HISTORY).map_err(unavailable)?;
    let rows = statement
        .query_map(params![collection, id], |row| row.get::<_, String>(0))
        .map_err(unavailable)?;
    let mut entries = Vec::new();
    for row in rows {
        entries.push(serde_json::from_str(&row.map_err(unavailable)?).map_err(corrupt)?);
    }
    Ok(entries)
}

fn write_batch(
    conn: &mut Connection,
    projection: &str,
    checkpoint: u64,
    writes: &[DocumentWrite],
) -> rusqlite::Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    {
        let mut insert_history = tx.prepare_cached(INSERT_HISTORY)?;
        let mut trim_history = tx.prepare_cached(TRIM_HISTORY)?;
        for write in writes {
            let upsert = UPSERT_DOCUMENT.replace("{collection}", write.collection);
            let body =
                serde_json::to_string(&write.body).map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
            tx.prepare_cached(&upsert)?
                .execute(params![write.id, body, write.last_position as i64])?;
            // Only the newest entries can survive the trim; skip writing the rest.
            let keep_from = write.new_history.len().saturating_sub(OPERATION_HISTORY_LIMIT);
            for entry in &write.new_history[keep_from..] {
                let text =
                    serde_json::to_string(entry).map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
                insert_history.execute(params![write.collection, write.id, entry.position as i64, text])?;
            }
            trim_history.execute(params![write.collection, write.id, OPERATION_HISTORY_LIMIT as i64])?;
        }
        tx.prepare_cached(SAVE_CHECKPOINT)?
            .execute(params![projection, checkpoint as i64, Utc::now().to_rfc3339()])?;
    }
    tx.commit()
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
                let sql = format!("SELECT id, body, last_position FROM {table} WHERE id IN ({placeholders})");
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
            write_batch(&mut conn, &projection, checkpoint, &writes).map_err(unavailable)
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

    async fn get(&self, collection: &'static str, id: &str) -> Result<Option<Value>, ReadModelError> {
        let table = table(collection)?;
        let id = id.to_owned();
        self.read(move |conn| {
            let sql = LOAD_DOCUMENT.replace("{collection}", table);
            let body: Option<String> = conn
                .prepare_cached(&sql)
                .and_then(|mut s| s.query_row([&id], |row| row.get(0)).optional())
                .map_err(unavailable)?;
            let Some(body) = body else { return Ok(None) };
            let mut document = parse_body(&body)?;
            document.insert("operation_history".into(), Value::Array(history(conn, table, &id)?));
            Ok(Some(Value::Object(document)))
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
            let sql = format!(
                "SELECT id, body FROM {table} {filter} ORDER BY id LIMIT {}",
                query.limit + 1
            );
            let mut statement = conn.prepare_cached(&sql).map_err(unavailable)?;
            let rows = statement
                .query_map(params_from_iter(values.iter()), |row| {
                    Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
                })
                .map_err(unavailable)?;
            let mut items = Vec::with_capacity(query.limit);
            let mut next_cursor = None;
            for row in rows {
                let (id, body) = row.map_err(unavailable)?;
                if items.len() == query.limit {
                    next_cursor = items
                        .last()
                        .and_then(|item: &Value| item.get("id"))
                        .and_then(Value::as_str)
                        .map(str::to_owned);
                    break;
                }
                let mut document = parse_body(&body)?;
                if query.include_history {
                    document.insert("operation_history".into(), Value::Array(history(conn, table, &id)?));
                }
                items.push(Value::Object(document));
            }
            Ok(ListPage { items, next_cursor })
        })
        .await
    }
}
