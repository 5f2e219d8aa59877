//! MongoDB "migrations": the indexes of the read models, the outbox state and the API keys.
//! Creating an index that exists is a no-op, so this runs at every start; each applied set is
//! recorded in `lablet_migrations` like the SQL engines' versions.

use lablet_application::ports::{Clock, SystemClock};
use lablet_application::read_model_queries::COLLECTIONS;
use lablet_infrastructure::mongo::{connect, MongoError};
use mongodb::bson::{doc, Document};
use mongodb::options::IndexOptions;
use mongodb::{Database, IndexModel};

#[derive(Debug, thiserror::Error)]
pub enum MongoMigrationError {
    #[error(transparent)]
    Connect(#[from] MongoError),
    #[error("MongoDB: {0}")]
    Driver(#[from] mongodb::error::Error),
}

/// One index: the collection, the keys, whether unique.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexSpec {
    pub collection: &'static str,
    pub keys: Document,
    pub unique: bool,
}

/// Every index Lablet needs: each read-model filter field (with `_id`, the order of every page),
/// a lab's unique `(worker_id, lab_id)`, and the outbox and key lookups.
pub fn indexes() -> Vec<IndexSpec> {
    let mut all = Vec::new();
    for spec in COLLECTIONS {
        for field in spec.filter_fields {
            all.push(IndexSpec {
                collection: spec.name,
                keys: doc! { format!("body.{field}"): 1, "_id": 1 },
                unique: false,
            });
        }
    }
    all.push(IndexSpec {
        collection: "lab_records",
        keys: doc! { "body.worker_id": 1, "body.lab_id": 1 },
        unique: true,
    });
    all.push(IndexSpec {
        collection: "outbox_parked",
        keys: doc! { "sink": 1, "subject": 1, "position": 1 },
        unique: false,
    });
    all.push(IndexSpec {
        collection: "outbox_parked",
        keys: doc! { "position": 1, "sink": 1 },
        unique: false,
    });
    all.push(IndexSpec {
        collection: "outbox_delivered",
        keys: doc! { "sink": 1, "position": 1 },
        unique: false,
    });
    all.push(IndexSpec {
        collection: "api_keys",
        keys: doc! { "created_at": -1, "_id": -1 },
        unique: false,
    });
    all
}

/// The version of [`indexes`]; raised whenever they change.
pub const INDEXES_VERSION: u32 = 2;

/// Creates every index of [`indexes`] in the database of `url`; answers the versions applied.
pub async fn migrate(url: &str) -> Result<Vec<u32>, MongoMigrationError> {
    let database = connect(url).await?;
    create_indexes(&database).await
}

async fn create_indexes(database: &Database) -> Result<Vec<u32>, MongoMigrationError> {
    let record = database.collection::<Document>("lablet_migrations");
    let done = record.find_one(doc! { "_id": INDEXES_VERSION as i64 }).await?.is_some();
    for index in indexes() {
        let model = IndexModel::builder()
            .keys(index.keys)
            .options(IndexOptions::builder().unique(index.unique).build())
            .build();
        database
            .collection::<Document>(index.collection)
            .create_index(model)
            .await?;
    }
    if done {
        return Ok(Vec::new());
    }
    record
        .update_one(
            doc! { "_id": INDEXES_VERSION as i64 },
            doc! { "$set": { "name": "indexes", "applied_at": SystemClock.now().to_rfc3339() } },
        )
        .upsert(true)
        .await?;
    Ok(vec![INDEXES_VERSION])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labs_are_unique_per_worker_and_every_filter_field_is_indexed() {
        let all = indexes();
        assert!(all.contains(&IndexSpec {
            collection: "lab_records",
            keys: doc! { "body.worker_id": 1, "body.lab_id": 1 },
            unique: true,
        }));
        for spec in COLLECTIONS {
            for field in spec.filter_fields {
                let key = format!("body.{field}");
                assert!(
                    all.iter()
                        .any(|i| i.collection == spec.name && i.keys.contains_key(&key)),
                    "{} {key}",
                    spec.name
                );
            }
        }
        let state = all
            .iter()
            .find(|i| i.collection == "lab_records" && i.keys.contains_key("body.state"));
        assert!(state.is_some_and(|i| !i.unique));
    }
}
