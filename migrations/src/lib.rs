//! Versioned schema migrations for every store Lablet writes.
//!
//! Each store keeps a `schema_migrations` table; a migration runs once, in its own transaction,
//! in version order. The SQL lives in `sql/<engine>/` beside this crate. Migrations only ever
//! add: a released migration is never edited, a later one changes what it made.

pub mod sqlite;

use lablet_infrastructure::config::{Settings, StoreLocation};

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
pub fn migrate_all(settings: &Settings) -> Result<Vec<MigrationReport>, MigrationError> {
    let mut reports = Vec::new();
    match &settings.event_store {
        StoreLocation::Sqlite(path) => reports.push(MigrationReport {
            store: "event_store",
            applied: sqlite::migrate_file(path, sqlite::EVENT_STORE).map_err(|e| MigrationError::Store {
                setting: "LABLET_EVENT_STORE_URL",
                message: e.to_string(),
            })?,
        }),
    }
    match &settings.read_models {
        StoreLocation::Sqlite(path) => reports.push(MigrationReport {
            store: "read_models",
            applied: sqlite::migrate_file(path, sqlite::READ_MODELS).map_err(|e| MigrationError::Store {
                setting: "LABLET_READ_MODEL_URL",
                message: e.to_string(),
            })?,
        }),
    }
    Ok(reports)
}
