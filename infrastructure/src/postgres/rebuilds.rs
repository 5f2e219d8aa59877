//! Rebuilds on PostgreSQL: the staging area is a schema of the same database
//! (`lablet_rebuild_<id>`) with empty tables shaped like the live ones (`LIKE … INCLUDING ALL`),
//! reached through connections whose `search_path` is that schema. The swap replaces the live
//! documents, history and checkpoint of one projection with the staged ones in one
//! transaction, under the lock on the live checkpoint row that every commit takes: readers see
//! the old read model or the new one, and a runner's commit waits for the swap, then finds the
//! next generation.

use super::read_models::{spec, table, unavailable, PostgresReadModelStore, ENSURE_CHECKPOINT, LOCK_CHECKPOINT};
use super::PostgresTarget;
use async_trait::async_trait;
use lablet_application::ports::{IdSource, UuidV7Ids};
use lablet_application::ports::{ReadModelError, ReadModelRebuilds, Staging, SwapOutcome};
use std::sync::Arc;

const STAGE: &str = include_str!("sql/rebuild_stage.sql");
const STAGED_CHECKPOINT: &str = include_str!("sql/rebuild_staged_checkpoint.sql");
const CLEAR_LIVE: &str = include_str!("sql/rebuild_clear_live.sql");
const COPY_DOCUMENTS: &str = include_str!("sql/rebuild_copy_documents.sql");
const DELETE_HISTORY: &str = include_str!("sql/rebuild_delete_history.sql");
const COPY_HISTORY: &str = include_str!("sql/rebuild_copy_history.sql");
const SWAP_CHECKPOINT: &str = include_str!("sql/rebuild_swap_checkpoint.sql");
const DISCARD: &str = include_str!("sql/rebuild_discard.sql");

/// Staging schemas start with this.
pub const STAGING_SCHEMA_PREFIX: &str = "lablet_rebuild_";

/// The staging schema named `name`, checked: SQL is only ever built from a name this module made.
fn schema(name: &str) -> Result<&str, ReadModelError> {
    let suffix = name.strip_prefix(STAGING_SCHEMA_PREFIX).unwrap_or_default();
    if suffix.is_empty() || !suffix.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(unavailable(format!("{name} is not a staging schema")));
    }
    Ok(name)
}

/// `target` with every connection's `search_path` set to `schema`.
fn in_schema(target: &PostgresTarget, schema: &str) -> PostgresTarget {
    let mut config = target.config.clone();
    config.options(format!("-c search_path={schema}"));
    PostgresTarget {
        config,
        name: format!("{} (schema {schema})", target.name),
    }
}

/// `sql` with the staging schema and the collection's table filled in.
fn fill(sql: &str, schema: &str, table: &str) -> String {
    sql.replace("{schema}", schema).replace("{table}", table)
}

#[async_trait]
impl ReadModelRebuilds for PostgresReadModelStore {
    async fn stage(&self, collection: &'static str) -> Result<Staging, ReadModelError> {
        let table = table(spec(collection)?);
        let schema = format!("{STAGING_SCHEMA_PREFIX}{}", UuidV7Ids.new_id().simple());
        let client = self.client().await?;
        client
            .batch_execute(&fill(STAGE, &schema, &table))
            .await
            .map_err(unavailable)?;
        let staging = Staging {
            store: Arc::new(
                PostgresReadModelStore::open(&in_schema(&self.target, &schema))
                    .await
                    .map_err(unavailable)?,
            ),
            name: schema,
        };
        Ok(staging)
    }

    async fn swap_in(&self, staging: &Staging, collection: &'static str) -> Result<SwapOutcome, ReadModelError> {
        let schema = schema(&staging.name)?;
        let table = table(spec(collection)?);
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(unavailable)?;
        let rebuilt = tx
            .query_opt(&fill(STAGED_CHECKPOINT, schema, &table), &[&collection])
            .await
            .map_err(unavailable)?;
        let Some(rebuilt) = rebuilt.map(|row| row.get::<_, i64>(0)) else {
            return Ok(SwapOutcome::NothingRebuilt);
        };
        tx.execute(ENSURE_CHECKPOINT, &[&collection])
            .await
            .map_err(unavailable)?;
        let live: i64 = tx
            .query_one(LOCK_CHECKPOINT, &[&collection])
            .await
            .map_err(unavailable)?
            .get(1);
        if rebuilt < live {
            return Ok(SwapOutcome::Behind {
                live: live as u64,
                rebuilt: rebuilt as u64,
            });
        }
        tx.execute(&fill(CLEAR_LIVE, schema, &table), &[])
            .await
            .map_err(unavailable)?;
        let documents = tx
            .execute(&fill(COPY_DOCUMENTS, schema, &table), &[])
            .await
            .map_err(unavailable)?;
        tx.execute(DELETE_HISTORY, &[&collection]).await.map_err(unavailable)?;
        tx.execute(&fill(COPY_HISTORY, schema, &table), &[&collection])
            .await
            .map_err(unavailable)?;
        let generation: i64 = tx
            .query_one(SWAP_CHECKPOINT, &[&collection, &rebuilt])
            .await
            .map_err(unavailable)?
            .get(0);
        tx.commit().await.map_err(unavailable)?;
        Ok(SwapOutcome::Swapped {
            position: rebuilt as u64,
            generation: generation as u64,
            documents,
        })
    }

    async fn discard(&self, staging: Staging) -> Result<(), ReadModelError> {
        let schema = schema(&staging.name)?.to_owned();
        drop(staging);
        let client = self.client().await?;
        client
            .batch_execute(&DISCARD.replace("{schema}", &schema))
            .await
            .map_err(unavailable)
    }
}
