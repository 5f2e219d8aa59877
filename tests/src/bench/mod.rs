//! Pieces of the benchmark commands (`lablet-bench`, `lablet-placement-bench`): latency
//! statistics, memory readings, the raw SQLite baseline, and the placement inputs and peers.

pub mod baseline;
pub mod durable_placement;
pub mod placement;
pub mod postgres_baseline;
pub mod stats;
pub mod work_orders;

/// Puts the log and the read models of `settings` in a fresh database on the PostgreSQL
/// `server` when one is named (else they stay on the embedded SQLite default); answers the
/// database, to drop after the run.
pub async fn stores_on(
    settings: &mut lablet_infrastructure::Settings,
    server: Option<&str>,
) -> Option<crate::postgres::TestDatabase> {
    let database = crate::postgres::TestDatabase::create_on(server?).await;
    settings.event_store = lablet_infrastructure::config::StoreLocation::Postgres(database.url.clone());
    settings.read_models = lablet_infrastructure::config::StoreLocation::Postgres(database.url.clone());
    Some(database)
}
