//! Rebuilds on SQLite: the staging area is a scratch file next to the live read models, given
//! the live file's schema; the swap attaches it and copies one projection's documents, history
//! and checkpoint across in one `BEGIN IMMEDIATE` transaction.

use super::connection::{open_connection, SqliteError};
use super::read_models::{current_generation, table, unavailable, SqliteReadModelStore};
use async_trait::async_trait;
use lablet_application::ports::{Clock, IdSource, SystemClock, UuidV7Ids};
use lablet_application::ports::{ReadModelError, ReadModelRebuilds, Staging, SwapOutcome};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The statements that made the live file's tables and indexes, tables first.
const SCHEMA: &str = include_str!("sql/rebuild_schema.sql");
const CHECKPOINT_IN: &str = include_str!("sql/rebuild_checkpoint_in.sql");
const CLEAR_LIVE: &str = include_str!("sql/rebuild_clear_live.sql");
const COPY_DOCUMENTS: &str = include_str!("sql/rebuild_copy_documents.sql");
const DELETE_HISTORY_OF: &str = include_str!("sql/rebuild_delete_history.sql");
const COPY_HISTORY: &str = include_str!("sql/rebuild_copy_history.sql");
const SWAP_CHECKPOINT: &str = include_str!("sql/rebuild_swap_checkpoint.sql");

/// Scratch files start with this, in the live file's directory.
pub const SCRATCH_PREFIX: &str = "rebuild-";

impl SqliteReadModelStore {
    /// Runs `work` on the writing connection off the async runtime.
    async fn with_writer<T, F>(&self, work: F) -> Result<T, ReadModelError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, ReadModelError> + Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = inner
                .writer
                .lock()
                .map_err(|_| unavailable("read-model writer lock poisoned"))?;
            work(&mut conn)
        })
        .await
        .map_err(unavailable)?
    }
}

/// Creates `scratch` with the schema of the live file `conn` has open.
fn create_scratch(conn: &Connection, scratch: &Path) -> Result<(), ReadModelError> {
    let statements: Vec<String> = conn
        .prepare(SCHEMA)
        .and_then(|mut statement| statement.query_map([], |row| row.get(0))?.collect())
        .map_err(unavailable)?;
    let fresh = open_connection(scratch).map_err(|e: SqliteError| unavailable(e))?;
    fresh.pragma_update(None, "synchronous", "OFF").map_err(unavailable)?;
    for statement in statements {
        fresh.execute_batch(&statement).map_err(unavailable)?;
    }
    Ok(())
}

fn remove_scratch(path: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}

#[async_trait]
impl ReadModelRebuilds for SqliteReadModelStore {
    async fn stage(&self, _collection: &'static str) -> Result<Staging, ReadModelError> {
        let directory = self.inner.path.parent().map(Path::to_owned).unwrap_or_default();
        let scratch = directory.join(format!("{SCRATCH_PREFIX}{}.db", UuidV7Ids.new_id()));
        let path = scratch.clone();
        let created = self.with_writer(move |conn| create_scratch(conn, &path)).await;
        let opened = created.and_then(|()| SqliteReadModelStore::open(&scratch).map_err(unavailable));
        match opened {
            Ok(store) => Ok(Staging {
                name: scratch.display().to_string(),
                store: Arc::new(store),
            }),
            Err(err) => {
                remove_scratch(&scratch);
                Err(err)
            }
        }
    }

    async fn swap_in(&self, staging: &Staging, collection: &'static str) -> Result<SwapOutcome, ReadModelError> {
        let table = table(collection)?;
        let rebuilt = staging.name.clone();
        self.with_writer(move |conn| {
            conn.execute("ATTACH DATABASE ?1 AS rebuilt", [&rebuilt])
                .map_err(unavailable)?;
            let outcome = swap_tables(conn, table).map_err(unavailable);
            let detached = conn.execute("DETACH DATABASE rebuilt", []).map_err(unavailable);
            let outcome = outcome?;
            detached?;
            Ok(outcome)
        })
        .await
    }

    async fn discard(&self, staging: Staging) -> Result<(), ReadModelError> {
        let path = PathBuf::from(&staging.name);
        drop(staging);
        tokio::task::spawn_blocking(move || remove_scratch(&path))
            .await
            .map_err(unavailable)
    }
}

/// The swap itself, with the rebuilt file attached as `rebuilt`.
fn swap_tables(conn: &mut Connection, table: &'static str) -> rusqlite::Result<SwapOutcome> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let position_in = |schema: &str| -> rusqlite::Result<Option<i64>> {
        tx.query_row(&CHECKPOINT_IN.replace("{schema}", schema), [table], |row| row.get(0))
            .optional()
    };
    let Some(rebuilt) = position_in("rebuilt")? else {
        return Ok(SwapOutcome::NothingRebuilt);
    };
    let live = position_in("main")?.unwrap_or(0);
    if rebuilt < live {
        return Ok(SwapOutcome::Behind {
            live: live as u64,
            rebuilt: rebuilt as u64,
        });
    }
    tx.execute(&CLEAR_LIVE.replace("{table}", table), [])?;
    let documents = tx.execute(&COPY_DOCUMENTS.replace("{table}", table), [])?;
    tx.execute(DELETE_HISTORY_OF, [table])?;
    tx.execute(COPY_HISTORY, [table])?;
    tx.execute(SWAP_CHECKPOINT, params![table, rebuilt, SystemClock.now().to_rfc3339()])?;
    let generation = current_generation(&tx, table)?;
    tx.commit()?;
    Ok(SwapOutcome::Swapped {
        position: rebuilt as u64,
        generation,
        documents: documents as u64,
    })
}
