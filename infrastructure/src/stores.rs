//! Opening the configured stores behind their ports.

use crate::config::{ConfigError, Settings, StoreLocation};
use crate::credentials::SealedSecretTable;
use crate::mongo::{MongoApiKeyStore, MongoLeaseStore, MongoOutboxStore, MongoReadModelStore, MongoSecretTable};
use crate::postgres::{
    PostgresApiKeyStore, PostgresEventStore, PostgresLeaseStore, PostgresOutboxStore, PostgresReadModelStore,
    PostgresSecretTable, PostgresTarget,
};
use crate::sqlite::{
    SqliteApiKeyStore, SqliteEventStore, SqliteLeaseStore, SqliteOutboxStore, SqliteReadModelStore, SqliteSecretTable,
};
use lablet_application::ports::{ApiKeyStore, EventStore, LeaseStore, OutboxStore, ReadModelRebuilds, ReadModelStore};
use std::sync::Arc;

/// The stores a Lablet process works with.
#[derive(Clone)]
pub struct Stores {
    pub events: Arc<dyn EventStore>,
    pub read_models: Arc<dyn ReadModelStore>,
    /// Staging areas and swaps for rebuilding the read models.
    pub rebuilds: Arc<dyn ReadModelRebuilds>,
    /// The relays' checkpoints and parked events, beside the read models.
    pub outbox: Arc<dyn OutboxStore>,
    /// API keys for machine callers, beside the read models.
    pub api_keys: Arc<dyn ApiKeyStore>,
    /// Sealed secrets (CML credentials), beside the read models.
    pub secrets: Arc<dyn SealedSecretTable>,
    /// Which replica runs each singleton role, beside the read models.
    pub leases: Arc<dyn LeaseStore>,
}

/// Opens both stores; a failure names the setting whose store could not be opened.
pub async fn open_stores(settings: &Settings) -> Result<Stores, ConfigError> {
    let event_store_error = |message: String| ConfigError {
        setting: "LABLET_EVENT_STORE_URL",
        message,
    };
    let events: Arc<dyn EventStore> = match &settings.event_store {
        StoreLocation::Sqlite(path) => {
            Arc::new(SqliteEventStore::open(path).map_err(|e| event_store_error(e.to_string()))?)
        }
        StoreLocation::Postgres(url) => {
            let target = PostgresTarget::parse(url).map_err(|e| event_store_error(e.to_string()))?;
            Arc::new(
                PostgresEventStore::open(&target)
                    .await
                    .map_err(|e| event_store_error(e.to_string()))?,
            )
        }
        StoreLocation::Kurrent(url) => Arc::new(
            crate::kurrentdb::KurrentDbEventStore::open(url)
                .await
                .map_err(event_store_error)?,
        ),
        StoreLocation::Mongo(_) => {
            return Err(event_store_error("MongoDB keeps read models, not the event log".into()))
        }
    };
    let read_model_error = |e: crate::sqlite::SqliteError| ConfigError {
        setting: "LABLET_READ_MODEL_URL",
        message: e.to_string(),
    };
    type Beside = (
        Arc<dyn ReadModelStore>,
        Arc<dyn ReadModelRebuilds>,
        Arc<dyn OutboxStore>,
        Arc<dyn ApiKeyStore>,
        Arc<dyn SealedSecretTable>,
        Arc<dyn LeaseStore>,
    );
    let (read_models, rebuilds, outbox, api_keys, secrets, leases): Beside = match &settings.read_models {
        StoreLocation::Sqlite(path) => {
            let read_models = Arc::new(SqliteReadModelStore::open(path).map_err(read_model_error)?);
            (
                read_models.clone(),
                read_models,
                Arc::new(SqliteOutboxStore::open(path).map_err(read_model_error)?),
                Arc::new(SqliteApiKeyStore::open(path).map_err(read_model_error)?),
                Arc::new(SqliteSecretTable::open(path).map_err(read_model_error)?),
                Arc::new(SqliteLeaseStore::open(path).map_err(read_model_error)?),
            )
        }
        StoreLocation::Postgres(url) => {
            let failed = |e: crate::postgres::PostgresError| ConfigError {
                setting: "LABLET_READ_MODEL_URL",
                message: e.to_string(),
            };
            let target = PostgresTarget::parse(url).map_err(failed)?;
            let read_models = Arc::new(PostgresReadModelStore::open(&target).await.map_err(failed)?);
            (
                read_models.clone(),
                read_models,
                Arc::new(PostgresOutboxStore::open(&target).await.map_err(failed)?),
                Arc::new(PostgresApiKeyStore::open(&target).await.map_err(failed)?),
                Arc::new(PostgresSecretTable::open(&target).await.map_err(failed)?),
                Arc::new(PostgresLeaseStore::open(&target).await.map_err(failed)?),
            )
        }
        StoreLocation::Kurrent(_) => {
            return Err(ConfigError {
                setting: "LABLET_READ_MODEL_URL",
                message: "KurrentDB keeps the event log, not read models".into(),
            })
        }
        StoreLocation::Mongo(url) => {
            let database = crate::mongo::connect(url).await.map_err(|e| ConfigError {
                setting: "LABLET_READ_MODEL_URL",
                message: e.to_string(),
            })?;
            let read_models = Arc::new(MongoReadModelStore::new(database.clone()));
            (
                read_models.clone(),
                read_models,
                Arc::new(MongoOutboxStore::new(database.clone())),
                Arc::new(MongoApiKeyStore::new(database.clone())),
                Arc::new(MongoSecretTable::new(database.clone())),
                Arc::new(MongoLeaseStore::new(database)),
            )
        }
    };
    Ok(Stores {
        events,
        read_models,
        rebuilds,
        outbox,
        api_keys,
        secrets,
        leases,
    })
}
