//! Leases and the replicas' heartbeats on PostgreSQL, beside the read models (`lablet_leases`,
//! `lablet_replicas`). The acquire is one `INSERT … ON CONFLICT DO UPDATE … WHERE`, which the
//! row lock makes atomic between replicas.

use super::{pool, PostgresError, PostgresTarget};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use deadpool_postgres::Pool;
use lablet_application::ports::{Lease, LeaseError, LeaseFence, LeaseStore, ReplicaSeen};
use tokio_postgres::Row;

const ACQUIRE: &str = include_str!("sql/lease_acquire.sql");
const RELEASE: &str = include_str!("sql/lease_release.sql");
const LIST: &str = include_str!("sql/lease_list.sql");
const HEARTBEAT: &str = include_str!("sql/replica_heartbeat.sql");
const REPLICAS: &str = include_str!("sql/replicas_seen.sql");
const TOKEN: &str = include_str!("sql/lease_token.sql");
const CURRENT_TOKEN: &str = include_str!("sql/lease_current_token.sql");

/// The newer token that fences out a write made under `fence`, if another replica took the
/// role since. Run first in the write's transaction: the shared lock it takes on the lease row
/// holds a new holder's acquire off until the write has committed.
pub(super) async fn newer_token(
    tx: &deadpool_postgres::Transaction<'_>,
    fence: &LeaseFence,
) -> Result<Option<u64>, tokio_postgres::Error> {
    let current = tx.query_opt(TOKEN, &[&fence.role]).await?;
    Ok(current
        .map(|row| row.get::<_, i64>(0) as u64)
        .filter(|current| *current > fence.token))
}

const POOL_SIZE: usize = 2;

pub struct PostgresLeaseStore {
    pool: Pool,
}

impl PostgresLeaseStore {
    /// Connects to the leases at `target`, which migrations must have created.
    pub async fn open(target: &PostgresTarget) -> Result<Self, PostgresError> {
        let client = target.connect().await?;
        target.require_table(&client, "lablet_leases").await?;
        Ok(PostgresLeaseStore {
            pool: pool(target, POOL_SIZE)?,
        })
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, LeaseError> {
        self.pool.get().await.map_err(unavailable)
    }
}

fn unavailable(err: impl std::fmt::Display) -> LeaseError {
    LeaseError::Unavailable(format!("PostgreSQL: {err}"))
}

fn lease(row: &Row) -> Result<Lease, LeaseError> {
    let corrupt = |e: tokio_postgres::Error| LeaseError::Corrupt(e.to_string());
    Ok(Lease {
        role: row.try_get(0).map_err(corrupt)?,
        holder: row.try_get(1).map_err(corrupt)?,
        token: row.try_get::<_, i64>(2).map_err(corrupt)? as u64,
        expires_at: row.try_get(3).map_err(corrupt)?,
    })
}

#[async_trait]
impl LeaseStore for PostgresLeaseStore {
    async fn acquire(
        &self,
        role: &str,
        holder: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Option<Lease>, LeaseError> {
        let row = self
            .client()
            .await?
            .query_opt(ACQUIRE, &[&role, &holder, &now, &until])
            .await
            .map_err(unavailable)?;
        row.as_ref().map(lease).transpose()
    }

    async fn token(&self, role: &str) -> Result<Option<u64>, LeaseError> {
        let row = self
            .client()
            .await?
            .query_opt(CURRENT_TOKEN, &[&role])
            .await
            .map_err(unavailable)?;
        Ok(row.map(|row| row.get::<_, i64>(0) as u64))
    }

    async fn release(&self, role: &str, holder: &str) -> Result<(), LeaseError> {
        self.client()
            .await?
            .execute(RELEASE, &[&role, &holder])
            .await
            .map(drop)
            .map_err(unavailable)
    }

    async fn leases(&self) -> Result<Vec<Lease>, LeaseError> {
        let rows = self.client().await?.query(LIST, &[]).await.map_err(unavailable)?;
        rows.iter().map(lease).collect()
    }

    async fn heartbeat(&self, replica: &str, started_at: DateTime<Utc>, now: DateTime<Utc>) -> Result<(), LeaseError> {
        self.client()
            .await?
            .execute(HEARTBEAT, &[&replica, &started_at, &now])
            .await
            .map(drop)
            .map_err(unavailable)
    }

    async fn replicas(&self, since: DateTime<Utc>) -> Result<Vec<ReplicaSeen>, LeaseError> {
        let rows = self
            .client()
            .await?
            .query(REPLICAS, &[&since])
            .await
            .map_err(unavailable)?;
        let corrupt = |e: tokio_postgres::Error| LeaseError::Corrupt(e.to_string());
        rows.iter()
            .map(|row| {
                Ok(ReplicaSeen {
                    id: row.try_get(0).map_err(corrupt)?,
                    started_at: row.try_get(1).map_err(corrupt)?,
                    seen_at: row.try_get(2).map_err(corrupt)?,
                })
            })
            .collect()
    }
}
