//! The embedded default: SQLite files in the data directory, no server needed.
//!
//! The event store has one writer thread that batches concurrent appends into one transaction
//! (group commit) so that `synchronous=FULL` durability costs one fsync per batch, not per
//! command. Readers use their own connections and, thanks to WAL, never wait for the writer.

mod api_keys;
mod connection;
mod event_store;
mod leases;
mod outbox;
mod read_models;
mod rebuilds;
mod rows;
mod sealed_secrets;
mod writer;

pub use api_keys::SqliteApiKeyStore;
pub use connection::{open_connection, SqliteError};
pub use event_store::SqliteEventStore;
pub use leases::SqliteLeaseStore;
pub use outbox::SqliteOutboxStore;
pub use read_models::SqliteReadModelStore;
pub use rebuilds::SCRATCH_PREFIX;
pub use sealed_secrets::SqliteSecretTable;

/// A short checkpoint of the write-ahead log (the writer between batches, a background thread
/// for the bulk).
const WAL_CHECKPOINT: &str = include_str!("sql/wal_checkpoint.sql");
