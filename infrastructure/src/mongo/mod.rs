//! The MongoDB adapters (`mongodb://…`): read models, the outbox relays' state and API keys,
//! with the official driver. The database is the URL's path (`mongodb://host/lablet`), `lablet`
//! when it names none. Indexes are created by `lablet migrate` (see `lablet-migrations`).
//!
//! No MongoDB server runs where Lablet is built and tested: the BSON these adapters send is
//! unit-tested ([`shapes`]), and the contract suites run against a real server when
//! `LABLET_TEST_MONGODB_URL` names one (see `docs/operations.md` for a compose file).

mod api_keys;
mod leases;
mod outbox;
mod read_models;
mod rebuilds;
mod sealed_secrets;
pub mod shapes;

pub use api_keys::MongoApiKeyStore;
pub use leases::MongoLeaseStore;
pub use outbox::MongoOutboxStore;
pub use read_models::MongoReadModelStore;
pub use sealed_secrets::MongoSecretTable;

use mongodb::bson::doc;
use mongodb::options::{ClientOptions, ConnectionString};
use mongodb::{Client, Database};
use std::time::Duration;

/// The database a URL names when its path is empty.
const DEFAULT_DATABASE: &str = "lablet";

#[derive(Debug, thiserror::Error)]
pub enum MongoError {
    #[error("`{url}` is not a MongoDB URL: {reason}")]
    BadUrl { url: String, reason: String },
    #[error("MongoDB at {target} does not answer: {reason}")]
    Unreachable { target: String, reason: String },
}

/// Checks `url` without connecting: a `mongodb://` connection string (`mongodb+srv://` needs a
/// DNS resolver this build leaves out).
pub fn check_url(url: &str) -> Result<(), MongoError> {
    let bad = |reason: String| MongoError::BadUrl {
        url: url.split('@').next_back().unwrap_or(url).to_owned(),
        reason,
    };
    if url.starts_with("mongodb+srv://") {
        return Err(bad(
            "mongodb+srv:// is not supported: list the hosts in a mongodb:// URL".into(),
        ));
    }
    ConnectionString::parse(url).map(|_| ()).map_err(|e| bad(e.to_string()))
}

/// A connected database, checked with a `ping`.
pub async fn connect(url: &str) -> Result<Database, MongoError> {
    crate::tls::install_crypto_provider();
    check_url(url)?;
    let mut options = ClientOptions::parse(url).await.map_err(|e| MongoError::BadUrl {
        url: url.to_owned(),
        reason: e.to_string(),
    })?;
    options.server_selection_timeout.get_or_insert(Duration::from_secs(5));
    options.app_name.get_or_insert_with(|| "lablet".into());
    let target = options
        .hosts
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let client = Client::with_options(options).map_err(|e| MongoError::Unreachable {
        target: target.clone(),
        reason: e.to_string(),
    })?;
    let database = client
        .default_database()
        .unwrap_or_else(|| client.database(DEFAULT_DATABASE));
    database
        .run_command(doc! { "ping": 1 })
        .await
        .map_err(|e| MongoError::Unreachable {
            target,
            reason: e.to_string(),
        })?;
    Ok(database)
}
