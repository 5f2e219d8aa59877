//! The read-model store on PostgreSQL: one table per collection (`lablet_rm_<collection>`: the
//! body as the JSON text it is served as, plus the filter fields copied from it), history
//! segments in `lablet_rm_history` (one row per document per commit, holding the operations that
//! commit added, as in the SQLite store), and `lablet_rm_checkpoints`. A projection batch, its
//! history and its checkpoint commit in one transaction, after a check (under a row lock) that
//! the projection is still at the generation the runner started from. Each document also keeps
//! the last position applied to it and an upsert never replaces a newer one with an older one.

use super::{pool, PostgresError, PostgresTarget};
use crate::documents::{column_value, parse_body, with_history};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use deadpool_postgres::{Object, Pool};
use lablet_application::ports::read_models::{Filter, ProjectionFault, ProjectionStatus, OPERATION_HISTORY_LIMIT};
use lablet_application::ports::{
    CollectionSpec, CommitFence, DocumentWrite, HistoryRecord, ListPage, ListQuery, ReadModelError, ReadModelStore,
    StoredDocument,
};
use lablet_application::read_model_queries::COLLECTIONS;
use serde_json::value::RawValue;
use std::collections::{BTreeMap, HashMap};
use tokio_postgres::types::ToSql;
use tokio_postgres::Transaction;

const CHECKPOINT: &str = include_str!("sql/rm_checkpoint.sql");
const GENERATION: &str = include_str!("sql/rm_generation.sql");
const RECORD_ERROR: &str = include_str!("sql/rm_record_error.sql");
const STATUS: &str = include_str!("sql/rm_status.sql");

/// Connections at most.
const POOL_SIZE: usize = 8;
/// Operations kept per document, as the statements take it.
const HISTORY_LIMIT: i64 = OPERATION_HISTORY_LIMIT as i64;
/// Operations a document may gather beyond the limit before its old segments are deleted.
const TRIM_SLACK: i32 = 25;

/// The history segments of some documents, oldest first.
const SEGMENTS_OF: &str = include_str!("sql/rm_segments_of.sql");
const INSERT_SEGMENTS: &str = include_str!("sql/rm_insert_segments.sql");
/// Deletes the segments that newer ones make redundant (they already hold $3 operations).
const TRIM_SEGMENTS: &str = include_str!("sql/rm_trim_segments.sql");
const SAVE_CHECKPOINT: &str = include_str!("sql/rm_save_checkpoint.sql");
pub(super) const ENSURE_CHECKPOINT: &str = include_str!("sql/rm_ensure_checkpoint.sql");
pub(super) const LOCK_CHECKPOINT: &str = include_str!("sql/rm_lock_checkpoint.sql");
const UPSERT: &str = include_str!("sql/rm_upsert.sql");
const RECOUNT_HISTORY: &str = include_str!("sql/rm_recount_history.sql");
const LOAD_DOCUMENTS: &str = include_str!("sql/rm_load_documents.sql");
const GET: &str = include_str!("sql/rm_get.sql");
const LIST: &str = include_str!("sql/rm_list.sql");

#[derive(Clone)]
pub struct PostgresReadModelStore {
    pool: Pool,
    pub(super) target: PostgresTarget,
}

pub(super) fn unavailable(err: impl std::fmt::Display) -> ReadModelError {
    ReadModelError::Unavailable(format!("PostgreSQL: {err}"))
}

/// The spec of a known collection; SQL is never built from an unknown name.
pub(super) fn spec(collection: &str) -> Result<CollectionSpec, ReadModelError> {
    COLLECTIONS
        .iter()
        .find(|spec| spec.name == collection)
        .copied()
        .ok_or_else(|| ReadModelError::UnknownCollection(collection.to_owned()))
}

pub(super) fn table(spec: CollectionSpec) -> String {
    format!("lablet_rm_{}", spec.name)
}

/// The upsert of a batch of documents of one collection, by arrays, with its filter columns;
/// it adds the operations each write brings to the document's count. A document that already
/// applied a later position is left alone and not returned; the others come back with their
/// operation count.
fn upsert_sql(spec: CollectionSpec) -> String {
    let fields = spec.filter_fields;
    let columns: String = fields.iter().map(|f| format!(", {f}")).collect();
    let arrays: String = (0..fields.len()).map(|i| format!(", ${}::text[]", i + 5)).collect();
    let updates: String = fields.iter().map(|f| format!(", {f} = excluded.{f}")).collect();
    UPSERT
        .replace("{table}", &table(spec))
        .replace("{filter_columns}", &columns)
        .replace("{filter_arrays}", &arrays)
        .replace("{filter_updates}", &updates)
}

/// One document's new operations as a segment: a JSON array, oldest first.
fn segment_of(entries: &[HistoryRecord]) -> String {
    let mut segment = String::with_capacity(entries.iter().map(|e| e.json.get().len() + 1).sum::<usize>() + 2);
    segment.push('[');
    for (i, entry) in entries.iter().enumerate() {
        if i > 0 {
            segment.push(',');
        }
        segment.push_str(entry.json.get());
    }
    segment.push(']');
    segment
}

impl PostgresReadModelStore {
    /// Connects to the read models at `target`, which migrations must have created.
    pub async fn open(target: &PostgresTarget) -> Result<Self, PostgresError> {
        let client = target.connect().await?;
        target.require_table(&client, "lablet_rm_checkpoints").await?;
        Ok(PostgresReadModelStore {
            pool: pool(target, POOL_SIZE)?,
            target: target.clone(),
        })
    }

    pub(super) async fn client(&self) -> Result<Object, ReadModelError> {
        self.pool.get().await.map_err(unavailable)
    }
}

/// The newest 50 operations of each of `ids`, oldest first.
async fn histories(
    client: &Object,
    collection: &str,
    ids: &[String],
) -> Result<HashMap<String, Vec<Box<RawValue>>>, ReadModelError> {
    let mut found: HashMap<String, Vec<Box<RawValue>>> = HashMap::new();
    if ids.is_empty() {
        return Ok(found);
    }
    for row in client
        .query(SEGMENTS_OF, &[&collection, &ids])
        .await
        .map_err(unavailable)?
    {
        let segment: String = row.get(1);
        let entries: Vec<Box<RawValue>> =
            serde_json::from_str(&segment).map_err(|e| ReadModelError::Corrupt(e.to_string()))?;
        found.entry(row.get(0)).or_default().extend(entries);
    }
    for entries in found.values_mut() {
        let excess = entries.len().saturating_sub(OPERATION_HISTORY_LIMIT);
        entries.drain(..excess);
    }
    Ok(found)
}

/// Writes the documents, operations and checkpoint of one batch inside `tx`.
async fn write_batch(
    tx: &Transaction<'_>,
    projection: &str,
    generation: u64,
    checkpoint: u64,
    writes: &[DocumentWrite],
) -> Result<(), ReadModelError> {
    let mut by_collection: BTreeMap<&'static str, Vec<&DocumentWrite>> = BTreeMap::new();
    for write in writes {
        by_collection.entry(write.collection).or_default().push(write);
    }
    for (collection, writes) in by_collection {
        let spec = spec(collection)?;
        // Only the newest entries can survive the trim; skip writing the rest.
        let kept: Vec<&[HistoryRecord]> = writes
            .iter()
            .map(|w| &w.new_history[w.new_history.len().saturating_sub(OPERATION_HISTORY_LIMIT)..])
            .collect();
        let ids: Vec<&str> = writes.iter().map(|w| w.id.as_str()).collect();
        let bodies: Vec<String> = writes
            .iter()
            .map(|w| serde_json::to_string(&w.body))
            .collect::<Result<_, _>>()
            .map_err(|e| ReadModelError::Corrupt(e.to_string()))?;
        let positions: Vec<i64> = writes.iter().map(|w| w.last_position as i64).collect();
        let counts: Vec<i32> = kept.iter().map(|entries| entries.len() as i32).collect();
        let filters: Vec<Vec<Option<String>>> = spec
            .filter_fields
            .iter()
            .map(|field| writes.iter().map(|w| column_value(&w.body, field)).collect())
            .collect();
        let mut params: Vec<&(dyn ToSql + Sync)> = vec![&ids, &bodies, &positions, &counts];
        params.extend(filters.iter().map(|column| column as &(dyn ToSql + Sync)));
        let written = tx.query(&upsert_sql(spec), &params).await.map_err(unavailable)?;
        // Segments only for the documents the upsert took (none for one that was ahead).
        let taken: HashMap<String, i32> = written.iter().map(|row| (row.get(0), row.get(1))).collect();
        let (mut segment_ids, mut firsts, mut entries, mut segments) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (write, kept) in writes.iter().zip(&kept) {
            if let (true, Some(first)) = (taken.contains_key(&write.id), kept.first()) {
                segment_ids.push(write.id.as_str());
                firsts.push(first.position as i64);
                entries.push(kept.len() as i32);
                segments.push(segment_of(kept));
            }
        }
        if !segment_ids.is_empty() {
            let collections = vec![collection; segment_ids.len()];
            tx.execute(
                INSERT_SEGMENTS,
                &[&collections, &segment_ids, &firsts, &entries, &segments],
            )
            .await
            .map_err(unavailable)?;
        }
        let crowded: Vec<&str> = taken
            .iter()
            .filter(|(_, count)| **count > OPERATION_HISTORY_LIMIT as i32 + TRIM_SLACK)
            .map(|(id, _)| id.as_str())
            .collect();
        if !crowded.is_empty() {
            let table = table(spec);
            tx.execute(TRIM_SEGMENTS, &[&collection, &crowded, &HISTORY_LIMIT])
                .await
                .map_err(unavailable)?;
            tx.execute(&RECOUNT_HISTORY.replace("{table}", &table), &[&collection, &crowded])
                .await
                .map_err(unavailable)?;
        }
    }
    tx.execute(
        SAVE_CHECKPOINT,
        &[&projection, &(checkpoint as i64), &(generation as i64)],
    )
    .await
    .map_err(unavailable)?;
    Ok(())
}

#[async_trait]
impl ReadModelStore for PostgresReadModelStore {
    async fn load_documents(
        &self,
        collection: &'static str,
        ids: &[String],
    ) -> Result<HashMap<String, StoredDocument>, ReadModelError> {
        let table = table(spec(collection)?);
        let client = self.client().await?;
        let sql = LOAD_DOCUMENTS.replace("{table}", &table);
        let mut found = HashMap::with_capacity(ids.len());
        for row in client.query(&sql, &[&ids]).await.map_err(unavailable)? {
            let body: String = row.get(1);
            let document = StoredDocument {
                body: parse_body(&body)?,
                last_position: row.get::<_, i64>(2) as u64,
            };
            found.insert(row.get(0), document);
        }
        Ok(found)
    }

    async fn commit(
        &self,
        projection: &str,
        fence: CommitFence,
        checkpoint: u64,
        writes: Vec<DocumentWrite>,
    ) -> Result<(), ReadModelError> {
        for write in &writes {
            spec(write.collection)?;
        }
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(unavailable)?;
        tx.execute(ENSURE_CHECKPOINT, &[&projection])
            .await
            .map_err(unavailable)?;
        let (current, found) = tx
            .query_opt(LOCK_CHECKPOINT, &[&projection])
            .await
            .map_err(unavailable)?
            .map_or((0, 0), |row| (row.get::<_, i64>(0) as u64, row.get::<_, i64>(1) as u64));
        if current != fence.generation {
            return Err(ReadModelError::Superseded {
                projection: projection.to_owned(),
                current,
            });
        }
        if found != fence.from {
            return Err(ReadModelError::Fenced {
                projection: projection.to_owned(),
                expected: fence.from,
                found,
            });
        }
        write_batch(&tx, projection, fence.generation, checkpoint, &writes).await?;
        tx.commit().await.map_err(unavailable)
    }

    async fn checkpoint(&self, projection: &str) -> Result<Option<u64>, ReadModelError> {
        let client = self.client().await?;
        let row = client
            .query_opt(CHECKPOINT, &[&projection])
            .await
            .map_err(unavailable)?;
        Ok(row.map(|row| row.get::<_, i64>(0) as u64))
    }

    async fn generation(&self, projection: &str) -> Result<u64, ReadModelError> {
        let client = self.client().await?;
        let row = client
            .query_opt(GENERATION, &[&projection])
            .await
            .map_err(unavailable)?;
        Ok(row.map_or(0, |row| row.get::<_, i64>(0) as u64))
    }

    async fn record_error(&self, projection: &str, position: Option<u64>, message: &str) -> Result<(), ReadModelError> {
        let client = self.client().await?;
        let position = position.map(|p| p as i64);
        client
            .execute(RECORD_ERROR, &[&projection, &message, &position])
            .await
            .map(|_| ())
            .map_err(unavailable)
    }

    async fn status(&self, projection: &str) -> Result<Option<ProjectionStatus>, ReadModelError> {
        let client = self.client().await?;
        let Some(row) = client.query_opt(STATUS, &[&projection]).await.map_err(unavailable)? else {
            return Ok(None);
        };
        let error = match (row.get::<_, Option<String>>(1), row.get::<_, Option<DateTime<Utc>>>(3)) {
            (Some(message), Some(at)) => Some(ProjectionFault {
                message,
                position: row.get::<_, Option<i64>>(2).map(|p| p as u64),
                at,
            }),
            _ => None,
        };
        Ok(Some(ProjectionStatus {
            position: row.get::<_, i64>(0) as u64,
            error,
        }))
    }

    async fn get(&self, collection: &'static str, id: &str) -> Result<Option<Box<RawValue>>, ReadModelError> {
        let table = table(spec(collection)?);
        let client = self.client().await?;
        let row = client
            .query_opt(&GET.replace("{table}", &table), &[&id])
            .await
            .map_err(unavailable)?;
        let Some(row) = row else { return Ok(None) };
        let mut history = histories(&client, collection, &[id.to_owned()]).await?;
        let body: String = row.get(0);
        with_history(&body, &history.remove(id).unwrap_or_default()).map(Some)
    }

    async fn list(&self, collection: &'static str, query: &ListQuery) -> Result<ListPage, ReadModelError> {
        let table = table(spec(collection)?);
        let mut clauses = Vec::new();
        let mut values: Vec<&String> = Vec::new();
        for filter in &query.filters {
            match filter {
                // Field names come from the collection spec, never from input.
                Filter::Equals { field, value } => {
                    values.push(value);
                    clauses.push(format!("{field} = ${}", values.len()));
                }
                Filter::IsNull { field } => clauses.push(format!("{field} IS NULL")),
            }
        }
        if let Some(after) = &query.after_id {
            values.push(after);
            clauses.push(format!("id > ${}", values.len()));
        }
        let filter = if clauses.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", clauses.join(" AND "))
        };
        let sql = LIST
            .replace("{table}", &table)
            .replace("{where}", &filter)
            .replace("{limit}", &(query.limit + 1).to_string());
        let params: Vec<&(dyn ToSql + Sync)> = values.iter().map(|v| *v as &(dyn ToSql + Sync)).collect();
        let client = self.client().await?;
        let mut rows: Vec<(String, String)> = client
            .query(&sql, &params)
            .await
            .map_err(unavailable)?
            .into_iter()
            .map(|row| (row.get(0), row.get(1)))
            .collect();
        let next_cursor = if rows.len() > query.limit {
            rows.truncate(query.limit);
            rows.last().map(|(id, _)| id.clone())
        } else {
            None
        };
        let mut history = if query.include_history {
            let ids: Vec<String> = rows.iter().map(|(id, _)| id.clone()).collect();
            histories(&client, collection, &ids).await?
        } else {
            HashMap::new()
        };
        let items = rows
            .into_iter()
            .map(|(id, body)| {
                if query.include_history {
                    with_history(&body, &history.remove(&id).unwrap_or_default())
                } else {
                    RawValue::from_string(body).map_err(|e| ReadModelError::Corrupt(e.to_string()))
                }
            })
            .collect::<Result<_, _>>()?;
        Ok(ListPage { items, next_cursor })
    }
}
