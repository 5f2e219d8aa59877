//! API keys on MongoDB (`api_keys`, `_id` = key id; secrets only as SHA-256). Times are
//! RFC 3339 text with microseconds, so that they sort as they read.

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use futures_util::TryStreamExt;
use lablet_application::ports::{ApiKeyRecord, ApiKeyStore, ApiKeyStoreError};
use mongodb::bson::{doc, Bson, Document};
use mongodb::{Collection, Database};

#[derive(Clone)]
pub struct MongoApiKeyStore {
    database: Database,
}

fn unavailable(err: impl std::fmt::Display) -> ApiKeyStoreError {
    ApiKeyStoreError::Unavailable(format!("MongoDB: {err}"))
}

fn corrupt(err: impl std::fmt::Display) -> ApiKeyStoreError {
    ApiKeyStoreError::Corrupt(err.to_string())
}

fn text_of(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

fn time_of(text: &str) -> Result<DateTime<Utc>, ApiKeyStoreError> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(corrupt)
}

/// The stored form of a key.
pub fn key_document(key: &ApiKeyRecord) -> Document {
    doc! {
        "_id": &key.id,
        "name": &key.name,
        "roles": &key.roles,
        "secret_sha256": &key.secret_sha256,
        "created_at": text_of(key.created_at),
        "created_by": &key.created_by,
        "revoked_at": key.revoked_at.map(text_of),
    }
}

fn key_of(document: &Document) -> Result<ApiKeyRecord, ApiKeyStoreError> {
    let text = |key: &str| document.get_str(key).map(str::to_owned).map_err(corrupt);
    let roles = document
        .get_array("roles")
        .map_err(corrupt)?
        .iter()
        .map(|role| {
            role.as_str()
                .map(str::to_owned)
                .ok_or_else(|| corrupt("a role must be text"))
        })
        .collect::<Result<_, _>>()?;
    Ok(ApiKeyRecord {
        id: text("_id")?,
        name: text("name")?,
        roles,
        secret_sha256: text("secret_sha256")?,
        created_at: time_of(&text("created_at")?)?,
        created_by: text("created_by")?,
        revoked_at: match document.get("revoked_at") {
            Some(Bson::String(at)) => Some(time_of(at)?),
            _ => None,
        },
    })
}

impl MongoApiKeyStore {
    pub fn new(database: Database) -> Self {
        MongoApiKeyStore { database }
    }

    fn keys(&self) -> Collection<Document> {
        self.database.collection("api_keys")
    }
}

#[async_trait]
impl ApiKeyStore for MongoApiKeyStore {
    async fn insert(&self, key: ApiKeyRecord) -> Result<(), ApiKeyStoreError> {
        self.keys()
            .insert_one(key_document(&key))
            .await
            .map(|_| ())
            .map_err(unavailable)
    }

    async fn find(&self, id: &str) -> Result<Option<ApiKeyRecord>, ApiKeyStoreError> {
        let found = self.keys().find_one(doc! { "_id": id }).await.map_err(unavailable)?;
        found.as_ref().map(key_of).transpose()
    }

    async fn list(&self) -> Result<Vec<ApiKeyRecord>, ApiKeyStoreError> {
        let documents: Vec<Document> = self
            .keys()
            .find(doc! {})
            .sort(doc! { "created_at": -1, "_id": -1 })
            .await
            .map_err(unavailable)?
            .try_collect()
            .await
            .map_err(unavailable)?;
        documents.iter().map(key_of).collect()
    }

    async fn revoke(&self, id: &str, at: DateTime<Utc>) -> Result<bool, ApiKeyStoreError> {
        // Only a key not revoked yet takes the time: revoking twice keeps the first.
        let revoked = self
            .keys()
            .update_one(
                doc! { "_id": id, "revoked_at": Bson::Null },
                doc! { "$set": { "revoked_at": text_of(at) } },
            )
            .await
            .map_err(unavailable)?;
        if revoked.matched_count == 1 {
            return Ok(true);
        }
        Ok(self.find(id).await?.is_some())
    }
}
