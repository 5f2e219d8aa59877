//! Sealed secrets on MongoDB (`sealed_secrets`, `_id` = the secret's name).

use crate::credentials::SealedSecretTable;
use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use mongodb::bson::{doc, Document};
use mongodb::options::ReplaceOptions;
use mongodb::{Collection, Database};

pub struct MongoSecretTable {
    collection: Collection<Document>,
}

impl MongoSecretTable {
    pub fn new(database: Database) -> Self {
        MongoSecretTable {
            collection: database.collection("sealed_secrets"),
        }
    }
}

fn failed(err: impl std::fmt::Display) -> String {
    format!("MongoDB: {err}")
}

#[async_trait]
impl SealedSecretTable for MongoSecretTable {
    async fn put(&self, name: &str, sealed: &str, at: DateTime<Utc>) -> Result<(), String> {
        let document = doc! {
            "_id": name,
            "sealed": sealed,
            "updated_at": at.to_rfc3339_opts(SecondsFormat::Micros, true),
        };
        self.collection
            .replace_one(doc! {"_id": name}, document)
            .with_options(ReplaceOptions::builder().upsert(true).build())
            .await
            .map(drop)
            .map_err(failed)
    }

    async fn get(&self, name: &str) -> Result<Option<String>, String> {
        let found = self.collection.find_one(doc! {"_id": name}).await.map_err(failed)?;
        found
            .map(|document| document.get_str("sealed").map(str::to_owned).map_err(failed))
            .transpose()
    }
}
