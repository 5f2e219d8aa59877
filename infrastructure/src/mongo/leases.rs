//! Leases and the replicas' heartbeats on MongoDB (`leases`, `_id` = the role; `replicas`,
//! `_id` = the replica). An acquire is one conditional upsert: it matches a lease that is free,
//! expired or the caller's, and a lease held by another replica makes the upsert collide on
//! `_id`, which answers "held elsewhere". Times are Unix milliseconds.

use super::shapes::is_duplicate_key;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures_util::TryStreamExt;
use lablet_application::ports::{Lease, LeaseError, LeaseStore, ReplicaSeen};
use mongodb::bson::{doc, Document};
use mongodb::options::ReturnDocument;
use mongodb::{Collection, Database};

pub struct MongoLeaseStore {
    leases: Collection<Document>,
    replicas: Collection<Document>,
}

impl MongoLeaseStore {
    pub fn new(database: Database) -> Self {
        MongoLeaseStore {
            leases: database.collection("leases"),
            replicas: database.collection("replicas"),
        }
    }
}

/// A role's current fencing token, if it was ever taken.
pub(super) async fn current_token(database: &Database, role: &str) -> Result<Option<u64>, mongodb::error::Error> {
    token_in(&database.collection::<Document>("leases"), role).await
}

async fn token_in(leases: &Collection<Document>, role: &str) -> Result<Option<u64>, mongodb::error::Error> {
    let lease = leases.find_one(doc! { "_id": role }).await?;
    Ok(lease
        .and_then(|lease| lease.get_i64("token").ok())
        .map(|token| token as u64))
}

fn unavailable(err: impl std::fmt::Display) -> LeaseError {
    LeaseError::Unavailable(format!("MongoDB: {err}"))
}

fn moment(document: &Document, field: &str) -> Result<DateTime<Utc>, LeaseError> {
    document
        .get_i64(field)
        .ok()
        .and_then(DateTime::from_timestamp_millis)
        .ok_or_else(|| LeaseError::Corrupt(format!("{field} of {document}")))
}

fn lease(document: &Document) -> Result<Lease, LeaseError> {
    let text = |field: &str| {
        document
            .get_str(field)
            .map(str::to_owned)
            .map_err(|e| LeaseError::Corrupt(e.to_string()))
    };
    Ok(Lease {
        role: text("_id")?,
        holder: text("holder")?,
        token: document
            .get_i64("token")
            .map_err(|e| LeaseError::Corrupt(e.to_string()))? as u64,
        expires_at: moment(document, "expires_ms")?,
    })
}

#[async_trait]
impl LeaseStore for MongoLeaseStore {
    async fn acquire(
        &self,
        role: &str,
        holder: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Option<Lease>, LeaseError> {
        let filter = doc! {
            "_id": role,
            "$or": [{ "holder": holder }, { "expires_ms": { "$lte": now.timestamp_millis() } }],
        };
        let update = vec![doc! { "$set": {
            "token": { "$cond": [
                { "$eq": ["$holder", holder] },
                "$token",
                { "$add": [{ "$ifNull": ["$token", 0_i64] }, 1_i64] },
            ] },
            "holder": holder,
            "expires_ms": until.timestamp_millis(),
        } }];
        let taken = self
            .leases
            .find_one_and_update(filter, update)
            .upsert(true)
            .return_document(ReturnDocument::After)
            .await;
        match taken {
            Ok(document) => document.as_ref().map(lease).transpose(),
            Err(err) if is_duplicate_key(&err) => Ok(None),
            Err(err) => Err(unavailable(err)),
        }
    }

    async fn token(&self, role: &str) -> Result<Option<u64>, LeaseError> {
        token_in(&self.leases, role).await.map_err(unavailable)
    }

    async fn release(&self, role: &str, holder: &str) -> Result<(), LeaseError> {
        self.leases
            .update_one(
                doc! { "_id": role, "holder": holder },
                doc! { "$set": { "expires_ms": 0_i64 } },
            )
            .await
            .map(drop)
            .map_err(unavailable)
    }

    async fn leases(&self) -> Result<Vec<Lease>, LeaseError> {
        let documents: Vec<Document> = self
            .leases
            .find(doc! {})
            .sort(doc! { "_id": 1 })
            .await
            .map_err(unavailable)?
            .try_collect()
            .await
            .map_err(unavailable)?;
        documents.iter().map(lease).collect()
    }

    async fn heartbeat(&self, replica: &str, started_at: DateTime<Utc>, now: DateTime<Utc>) -> Result<(), LeaseError> {
        self.replicas
            .update_one(
                doc! { "_id": replica },
                doc! {
                    "$set": { "seen_ms": now.timestamp_millis() },
                    "$setOnInsert": { "started_ms": started_at.timestamp_millis() },
                },
            )
            .upsert(true)
            .await
            .map(drop)
            .map_err(unavailable)
    }

    async fn replicas(&self, since: DateTime<Utc>) -> Result<Vec<ReplicaSeen>, LeaseError> {
        let documents: Vec<Document> = self
            .replicas
            .find(doc! { "seen_ms": { "$gte": since.timestamp_millis() } })
            .sort(doc! { "_id": 1 })
            .await
            .map_err(unavailable)?
            .try_collect()
            .await
            .map_err(unavailable)?;
        documents
            .iter()
            .map(|document| {
                Ok(ReplicaSeen {
                    id: document
                        .get_str("_id")
                        .map(str::to_owned)
                        .map_err(|e| LeaseError::Corrupt(e.to_string()))?,
                    started_at: moment(document, "started_ms")?,
                    seen_at: moment(document, "seen_ms")?,
                })
            })
            .collect()
    }
}
