//! Rebuilds on MongoDB: the staging area is a set of collections of the same database whose
//! names carry a prefix of their own (`rebuild_<id>_`), given the live collection's indexes.
//!
//! MongoDB (without a replica set) has no transaction across collections, so the swap is three
//! steps, each safe to stop after:
//! 1. the live checkpoint moves to the next generation, on the condition that it is still where
//!    the swap read it: from here on every commit of the old generation is refused
//!    (`Superseded`), and the swap gives up (`Behind`) if a runner committed in between;
//! 2. the staged collection is renamed over the live one (`renameCollection` with
//!    `dropTarget`, atomic for readers: they see the old documents or the new ones);
//! 3. the live checkpoint takes the staged position.
//!
//! Stopped after 1 or 2, the projection follows the log from the old checkpoint, and the
//! documents, guarded by the last position applied to each, skip what they already hold.

use super::read_models::{generation_of, now_text, unavailable, MongoReadModelStore, CHECKPOINTS};
use super::shapes::is_duplicate_key;
use async_trait::async_trait;
use futures_util::TryStreamExt;
use lablet_application::ports::{IdSource, UuidV7Ids};
use lablet_application::ports::{ReadModelError, ReadModelRebuilds, ReadModelStore, Staging, SwapOutcome};
use mongodb::bson::doc;
use mongodb::error::ErrorKind;
use mongodb::IndexModel;
use std::sync::Arc;

/// Staging collections start with this.
pub const STAGING_PREFIX: &str = "rebuild_";

/// The index every collection has, which cannot be created.
const ID_INDEX: &str = "_id_";

/// The server's code for a collection that does not exist (yet).
const NAMESPACE_NOT_FOUND: i32 = 26;

fn is_namespace_not_found(err: &mongodb::error::Error) -> bool {
    matches!(err.kind.as_ref(), ErrorKind::Command(command) if command.code == NAMESPACE_NOT_FOUND)
}

#[async_trait]
impl ReadModelRebuilds for MongoReadModelStore {
    async fn stage(&self, collection: &'static str) -> Result<Staging, ReadModelError> {
        let prefix = format!("{STAGING_PREFIX}{}_", UuidV7Ids.new_id().simple());
        let staged = MongoReadModelStore::staged(self.database.clone(), prefix.clone());
        let indexes: Vec<IndexModel> = match self.collection(collection)?.list_indexes().await {
            Ok(cursor) => cursor.try_collect().await.map_err(unavailable)?,
            Err(err) if is_namespace_not_found(&err) => Vec::new(),
            Err(err) => return Err(unavailable(err)),
        };
        let indexes: Vec<IndexModel> = indexes
            .into_iter()
            .filter(|index| index.options.as_ref().and_then(|o| o.name.as_deref()) != Some(ID_INDEX))
            .collect();
        let target = staged.collection(collection)?;
        if indexes.is_empty() {
            self.database
                .create_collection(target.name())
                .await
                .map_err(unavailable)?;
        } else {
            target.create_indexes(indexes).await.map_err(unavailable)?;
        }
        Ok(Staging {
            name: prefix,
            store: Arc::new(staged),
        })
    }

    async fn swap_in(&self, staging: &Staging, collection: &'static str) -> Result<SwapOutcome, ReadModelError> {
        let staged = MongoReadModelStore::staged(self.database.clone(), staging.name.clone());
        let Some(rebuilt) = staged
            .checkpoint_document(collection)
            .await?
            .and_then(|c| c.get_i64("position").ok())
        else {
            return Ok(SwapOutcome::NothingRebuilt);
        };
        let live = self.checkpoint_document(collection).await?;
        let live_position = live.as_ref().and_then(|c| c.get_i64("position").ok()).unwrap_or(0);
        let generation = generation_of(live.as_ref()) as i64;
        if rebuilt < live_position {
            return Ok(SwapOutcome::Behind {
                live: live_position as u64,
                rebuilt: rebuilt as u64,
            });
        }
        // 1. The next generation, if no runner committed since the checkpoint was read.
        let fenced = self
            .checkpoints()
            .update_one(
                doc! {
                    "_id": collection,
                    "position": live_position,
                    "$or": [{ "generation": generation }, { "generation": { "$exists": false } }],
                },
                doc! { "$set": { "generation": generation + 1, "updated_at": now_text() } },
            )
            .upsert(true)
            .await;
        match fenced {
            Ok(_) => {}
            Err(err) if is_duplicate_key(&err) => {
                let moved = self.checkpoint(collection).await?.unwrap_or(0);
                return Ok(SwapOutcome::Behind {
                    live: moved,
                    rebuilt: rebuilt as u64,
                });
            }
            Err(err) => return Err(unavailable(err)),
        }
        // 2. The staged documents over the live ones.
        let database = self.database.name();
        let from = staged.collection(collection)?;
        let to = self.collection(collection)?;
        self.database
            .client()
            .database("admin")
            .run_command(doc! {
                "renameCollection": format!("{database}.{}", from.name()),
                "to": format!("{database}.{}", to.name()),
                "dropTarget": true,
            })
            .await
            .map_err(unavailable)?;
        // 3. The staged checkpoint.
        self.checkpoints()
            .update_one(
                doc! { "_id": collection, "generation": generation + 1 },
                doc! {
                    "$set": { "position": rebuilt, "updated_at": now_text() },
                    "$unset": { "last_error": "", "error_position": "", "error_at": "" },
                },
            )
            .await
            .map_err(unavailable)?;
        let documents = to.estimated_document_count().await.map_err(unavailable)?;
        Ok(SwapOutcome::Swapped {
            position: rebuilt as u64,
            generation: generation as u64 + 1,
            documents,
        })
    }

    async fn discard(&self, staging: Staging) -> Result<(), ReadModelError> {
        let prefix = staging.name;
        if !prefix.starts_with(STAGING_PREFIX) {
            return Err(unavailable(format!("{prefix} is not a staging prefix")));
        }
        let names = self
            .database
            .list_collection_names()
            .filter(doc! { "name": { "$regex": format!("^{prefix}") } })
            .await
            .map_err(unavailable)?;
        for name in names.into_iter().chain([format!("{prefix}{CHECKPOINTS}")]) {
            self.database
                .collection::<mongodb::bson::Document>(&name)
                .drop()
                .await
                .map_err(unavailable)?;
        }
        Ok(())
    }
}
