//! The event store port over KurrentDB / EventStoreDB (`kurrentdb://…`, `esdb://…`), with the
//! official client.
//!
//! How Lablet's guarantees map onto the server's:
//!
//! - **Versions** are revision + 1. Every append first reads the stream's newest events, judges
//!   the caller's expectation against them, chains the hashes from the head's, and appends with
//!   the exact revision it read as the server's expectation. A writer that moved the head in
//!   between makes the server refuse; the adapter reads again and judges again, so the chain
//!   never forks and a lost race is reported with the version that won.
//! - **Idempotency**: event ids are the server's event ids. A retried append is recognised by
//!   finding its ids among the stream's recent events (UUID v7 ids bound how far back to look,
//!   with [`store`]'s clock allowance) and answered with the first outcome. An id reused in
//!   *another* stream is not detected: the server keeps no index of event ids across streams.
//! - **Positions** are commit positions in `$all`: strictly increasing, unique per event (the
//!   adapter never writes explicit transactions), but sparse byte offsets. Lags are counted
//!   through [`lablet_application::ports::EventStore::count_after`].
//! - **Metadata and the hash chain** ride in each event's JSON metadata (see [`mapping`]).
//! - **The head** follows a subscription to `$all`, so commits by other processes wake
//!   subscribers too.
//!
//! [`log::KurrentLog`] is the seam between these rules and the client.

pub mod client_log;
pub mod log;
pub mod mapping;
pub mod store;
pub mod target;

pub use store::KurrentDbEventStore;
pub use target::{KurrentTarget, Namespace};

use client_log::ClientLog;
use lablet_application::ports::EventStoreError;
use std::sync::Arc;
use std::time::Duration;

/// How long opening waits for the server before it fails.
const OPEN_TIMEOUT: Duration = Duration::from_secs(15);

impl KurrentDbEventStore {
    /// Connects to the log at `url` and reads its head; an unreachable server fails here.
    pub async fn open(url: &str) -> Result<Self, String> {
        crate::tls::install_crypto_provider();
        let target = KurrentTarget::parse(url)?;
        let log = ClientLog::new(&target.connection)?;
        match tokio::time::timeout(OPEN_TIMEOUT, Self::over(Arc::new(log), target.namespace)).await {
            Ok(Ok(store)) => Ok(store),
            Ok(Err(EventStoreError::Unavailable(reason))) => Err(format!("KurrentDB is unreachable: {reason}")),
            Ok(Err(other)) => Err(other.to_string()),
            Err(_) => Err(format!("KurrentDB did not answer within {} s", OPEN_TIMEOUT.as_secs())),
        }
    }
}
