//! Versioned schema migrations for every store Lablet writes.
//!
//! Each store keeps a `schema_migrations` table; a migration runs once, in its own transaction,
//! in version order. The SQL lives in `sql/<engine>/` beside this crate. Migrations only ever
//! add: a released migration is never edited, a later one changes what it made.

pub mod mongo;
pub mod postgres;
pub mod sqlite;

use lablet_infrastructure::config::{Settings, StoreLocation};
use lablet_infrastructure::postgres::PostgresTarget;

#[derive(Debug, thiserror::Error)]
pub enum MigrationError {
    #[error("{setting}: {message}")]
    Store { setting: &'static str, message: String },
}

/// What a migration run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationReport {
    pub store: &'static str,
    pub applied: Vec<u32>,
}

/// Brings every configured store to the newest schema.
pub async fn migrate_all(settings: &Settings) -> Result<Vec<MigrationReport>, MigrationError> {
    let mut reports = Vec::new();
    let event_store_error = |message: String| MigrationError::Store {
        setting: "LABLET_EVENT_STORE_URL",
        message,
    };
    let applied = match &settings.event_store {
        StoreLocation::Sqlite(path) => {
            sqlite::migrate_file(path, sqlite::EVENT_STORE).map_err(|e| event_store_error(e.to_string()))?
        }
        StoreLocation::Postgres(url) => {
            let target = PostgresTarget::parse(url).map_err(|e| event_store_error(e.to_string()))?;
            postgres::migrate(&target, postgres::EVENT_STORE_TABLE, postgres::EVENT_STORE)
                .await
                .map_err(|e| event_store_error(e.to_string()))?
        }
        // KurrentDB streams need no schema: nothing to migrate.
        StoreLocation::Kurrent(_) => Default::default(),
        StoreLocation::Mongo(_) => {
            return Err(event_store_error("MongoDB keeps read models, not the event log".into()))
        }
    };
    reports.push(MigrationReport {
        store: "event_store",
        applied,
    });
    match &settings.read_models {
        StoreLocation::Sqlite(path) => reports.push(MigrationReport {
            store: "read_models",
            applied: sqlite::migrate_file(path, sqlite::READ_MODELS).map_err(|e| MigrationError::Store {
                setting: "LABLET_READ_MODEL_URL",
                message: e.to_string(),
            })?,
        }),
        StoreLocation::Postgres(url) => {
            let failed = |message: String| MigrationError::Store {
                setting: "LABLET_READ_MODEL_URL",
                message,
            };
            let target = PostgresTarget::parse(url).map_err(|e| failed(e.to_string()))?;
            reports.push(MigrationReport {
                store: "read_models",
                applied: postgres::migrate(&target, postgres::READ_MODELS_TABLE, postgres::READ_MODELS)
                    .await
                    .map_err(|e| failed(e.to_string()))?,
            });
        }
        StoreLocation::Kurrent(_) => {
            return Err(MigrationError::Store {
                setting: "LABLET_READ_MODEL_URL",
                message: "KurrentDB keeps the event log, not read models".into(),
            })
        }
        StoreLocation::Mongo(url) => reports.push(MigrationReport {
            store: "read_models",
            applied: mongo::migrate(url).await.map_err(|e| MigrationError::Store {
                setting: "LABLET_READ_MODEL_URL",
                message: e.to_string(),
            })?,
        }),
    }
    Ok(reports)
}
