//! The read-model store on MongoDB: one collection per read model, plus
//! `projection_checkpoints`. MongoDB commits document by document, so every document is guarded
//! by the last position applied to it ([`shapes::guarded_filter`]): a batch replayed after a
//! crash between its documents and its checkpoint skips what it applied before. The checkpoint
//! is written last, and only while the projection is still at the generation the runner
//! started from.

use super::shapes::{self, corrupt, document_update, guarded_filter, is_duplicate_key, list_filter, served};
use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use futures_util::TryStreamExt;
use lablet_application::ports::read_models::{ProjectionFault, ProjectionStatus};
use lablet_application::ports::{Clock, CommitFence, SystemClock};
use lablet_application::ports::{DocumentWrite, ListPage, ListQuery, ReadModelError, ReadModelStore, StoredDocument};
use lablet_application::read_model_queries::COLLECTIONS;
use mongodb::bson::{doc, Bson, Document};
use mongodb::{Collection, Database};
use serde_json::value::RawValue;
use std::collections::HashMap;

pub(super) const CHECKPOINTS: &str = "projection_checkpoints";

#[derive(Clone)]
pub struct MongoReadModelStore {
    pub(super) database: Database,
    /// Put before every collection name: empty for the live read models, a rebuild's own
    /// prefix for its staging area.
    pub(super) prefix: String,
}

pub(super) fn unavailable(err: impl std::fmt::Display) -> ReadModelError {
    ReadModelError::Unavailable(format!("MongoDB: {err}"))
}

pub(super) fn now_text() -> String {
    SystemClock.now().to_rfc3339_opts(SecondsFormat::Micros, true)
}

impl MongoReadModelStore {
    pub fn new(database: Database) -> Self {
        MongoReadModelStore {
            database,
            prefix: String::new(),
        }
    }

    /// The staging area of a rebuild: the collections of `database` whose names start with
    /// `prefix`.
    pub(super) fn staged(database: Database, prefix: String) -> Self {
        MongoReadModelStore { database, prefix }
    }

    /// The collection of a known read model; never one named by input.
    pub(super) fn collection(&self, name: &str) -> Result<Collection<Document>, ReadModelError> {
        COLLECTIONS
            .iter()
            .find(|spec| spec.name == name)
            .map(|spec| self.database.collection(&format!("{}{}", self.prefix, spec.name)))
            .ok_or_else(|| ReadModelError::UnknownCollection(name.to_owned()))
    }

    pub(super) fn checkpoints(&self) -> Collection<Document> {
        self.database.collection(&format!("{}{CHECKPOINTS}", self.prefix))
    }

    pub(super) async fn checkpoint_document(&self, projection: &str) -> Result<Option<Document>, ReadModelError> {
        self.checkpoints()
            .find_one(doc! { "_id": projection })
            .await
            .map_err(unavailable)
    }

    /// Applies one write unless the stored document already has it.
    async fn apply(&self, write: &DocumentWrite) -> Result<(), ReadModelError> {
        let collection = self.collection(write.collection)?;
        match collection
            .update_one(guarded_filter(&write.id, write.last_position), document_update(write)?)
            .upsert(true)
            .await
        {
            Ok(_) => Ok(()),
            Err(err) if is_duplicate_key(&err) => Ok(()), // a newer version is stored
            Err(err) => Err(unavailable(err)),
        }
    }
}

pub(super) fn generation_of(checkpoint: Option<&Document>) -> u64 {
    checkpoint
        .and_then(|c| c.get_i64("generation").ok())
        .map_or(0, |g| g as u64)
}

#[async_trait]
impl ReadModelStore for MongoReadModelStore {
    async fn load_documents(
        &self,
        collection: &'static str,
        ids: &[String],
    ) -> Result<HashMap<String, StoredDocument>, ReadModelError> {
        let stored: Vec<Document> = self
            .collection(collection)?
            .find(doc! { "_id": { "$in": ids } })
            .projection(doc! { "body": 1, "last_position": 1 })
            .await
            .map_err(unavailable)?
            .try_collect()
            .await
            .map_err(unavailable)?;
        let mut found = HashMap::with_capacity(stored.len());
        for mut document in stored {
            let id = document.get_str("_id").map_err(corrupt)?.to_owned();
            let last_position = document.get_i64("last_position").map_err(corrupt)? as u64;
            let body = match document.remove("body") {
                Some(Bson::Document(body)) => shapes::to_json_object(body)?,
                _ => return Err(corrupt(format!("document {id} has no body"))),
            };
            found.insert(id, StoredDocument { body, last_position });
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
            self.collection(write.collection)?;
        }
        let stored = self.checkpoint_document(projection).await?;
        let current = generation_of(stored.as_ref());
        let generation = fence.generation;
        if current != generation {
            return Err(ReadModelError::Superseded {
                projection: projection.to_owned(),
                current,
            });
        }
        let found = stored.as_ref().and_then(|c| c.get_i64("position").ok()).unwrap_or(0) as u64;
        if found != fence.from {
            return Err(ReadModelError::Fenced {
                projection: projection.to_owned(),
                expected: fence.from,
                found,
            });
        }
        for write in &writes {
            self.apply(write).await?;
        }
        let saved = self
            .checkpoints()
            .update_one(
                // Documents are guarded by their last position; the checkpoint moves only from
                // where this batch began, so of two runners only one ever advances it.
                doc! {
                    "_id": projection,
                    "$or": [{ "generation": generation as i64 }, { "generation": { "$exists": false } }],
                    "position": fence.from as i64,
                },
                doc! {
                    "$set": { "position": checkpoint as i64, "generation": generation as i64, "updated_at": now_text() },
                    "$unset": { "last_error": "", "error_position": "", "error_at": "" },
                },
            )
            .upsert(true)
            .await;
        match saved {
            Ok(_) => Ok(()),
            // The filter missed an existing checkpoint, so the upsert collided with it: a
            // rebuild swapped a generation in, or another runner moved the checkpoint.
            Err(err) if is_duplicate_key(&err) => {
                let stored = self.checkpoint_document(projection).await?;
                let current = generation_of(stored.as_ref());
                if current != generation {
                    return Err(ReadModelError::Superseded {
                        projection: projection.to_owned(),
                        current,
                    });
                }
                Err(ReadModelError::Fenced {
                    projection: projection.to_owned(),
                    expected: fence.from,
                    found: stored.as_ref().and_then(|c| c.get_i64("position").ok()).unwrap_or(0) as u64,
                })
            }
            Err(err) => Err(unavailable(err)),
        }
    }

    async fn checkpoint(&self, projection: &str) -> Result<Option<u64>, ReadModelError> {
        Ok(self
            .checkpoint_document(projection)
            .await?
            .and_then(|c| c.get_i64("position").ok())
            .map(|p| p as u64))
    }

    async fn generation(&self, projection: &str) -> Result<u64, ReadModelError> {
        Ok(generation_of(self.checkpoint_document(projection).await?.as_ref()))
    }

    async fn record_error(&self, projection: &str, position: Option<u64>, message: &str) -> Result<(), ReadModelError> {
        self.checkpoints()
            .update_one(
                doc! { "_id": projection },
                doc! {
                    "$set": {
                        "last_error": message,
                        "error_position": position.map(|p| p as i64),
                        "error_at": now_text(),
                    },
                    "$setOnInsert": { "position": 0_i64, "generation": 0_i64, "updated_at": now_text() },
                },
            )
            .upsert(true)
            .await
            .map(|_| ())
            .map_err(unavailable)
    }

    async fn status(&self, projection: &str) -> Result<Option<ProjectionStatus>, ReadModelError> {
        let Some(checkpoint) = self.checkpoint_document(projection).await? else {
            return Ok(None);
        };
        let error = match (checkpoint.get_str("last_error"), checkpoint.get_str("error_at")) {
            (Ok(message), Ok(at)) => Some(ProjectionFault {
                message: message.to_owned(),
                position: checkpoint.get_i64("error_position").ok().map(|p| p as u64),
                at: DateTime::parse_from_rfc3339(at).map_err(corrupt)?.with_timezone(&Utc),
            }),
            _ => None,
        };
        Ok(Some(ProjectionStatus {
            position: checkpoint.get_i64("position").map_or(0, |p| p as u64),
            error,
        }))
    }

    async fn get(&self, collection: &'static str, id: &str) -> Result<Option<Box<RawValue>>, ReadModelError> {
        let stored = self
            .collection(collection)?
            .find_one(doc! { "_id": id })
            .await
            .map_err(unavailable)?;
        stored.map(|document| served(document, true)).transpose()
    }

    async fn list(&self, collection: &'static str, query: &ListQuery) -> Result<ListPage, ReadModelError> {
        let projection = if query.include_history {
            doc! {}
        } else {
            doc! { "operation_history": 0 }
        };
        let mut stored: Vec<Document> = self
            .collection(collection)?
            .find(list_filter(query))
            .sort(doc! { "_id": 1 })
            .limit(i64::try_from(query.limit + 1).unwrap_or(i64::MAX))
            .projection(projection)
            .await
            .map_err(unavailable)?
            .try_collect()
            .await
            .map_err(unavailable)?;
        let next_cursor = if stored.len() > query.limit {
            stored.truncate(query.limit);
            stored.last().and_then(|d| d.get_str("_id").ok()).map(str::to_owned)
        } else {
            None
        };
        let items = stored
            .into_iter()
            .map(|document| served(document, query.include_history))
            .collect::<Result<_, _>>()?;
        Ok(ListPage { items, next_cursor })
    }
}
