//! Opening the configured stores behind their ports.

use crate::config::{ConfigError, Settings, StoreLocation};
use crate::sqlite::{SqliteEventStore, SqliteReadModelStore};
use lablet_application::ports::{EventStore, ReadModelStore};
use std::sync::Arc;

/// The stores a Lablet process works with.
#[derive(Clone)]
pub struct Stores {
    pub events: Arc<dyn EventStore>,
    pub read_models: Arc<dyn ReadModelStore>,
}

/// Opens both stores; a failure names the setting whose store could not be opened.
pub fn open_stores(settings: &Settings) -> Result<Stores, ConfigError> {
    let events: Arc<dyn EventStore> = match &settings.event_store {
        StoreLocation::Sqlite(path) => Arc::new(SqliteEventStore::open(path).map_err(|e| ConfigError {
            setting: "LABLET_EVENT_STORE_URL",
            message: e.to_string(),
        })?),
    };
    let read_models: Arc<dyn ReadModelStore> = match &settings.read_models {
        StoreLocation::Sqlite(path) => Arc::new(SqliteReadModelStore::open(path).map_err(|e| ConfigError {
            setting: "LABLET_READ_MODEL_URL",
            message: e.to_string(),
        })?),
    };
    Ok(Stores { events, read_models })
}
