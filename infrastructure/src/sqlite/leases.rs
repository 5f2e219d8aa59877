//! Leases and the replicas' heartbeats in the SQLite read-model file (`leases`, `replicas`).
//! Every statement runs under SQLite's write lock, so replicas on one data directory (other
//! processes included) agree on who holds what.

use super::connection::{SharedConnection, SqliteError};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use lablet_application::ports::{Lease, LeaseError, LeaseFence, LeaseStore, ReplicaSeen};
use rusqlite::{params, OptionalExtension, Row};
use std::path::Path;

const ACQUIRE: &str = include_str!("sql/lease_acquire.sql");
const RELEASE: &str = include_str!("sql/lease_release.sql");
const LIST: &str = include_str!("sql/lease_list.sql");
const HEARTBEAT: &str = include_str!("sql/replica_heartbeat.sql");
const REPLICAS: &str = include_str!("sql/replicas_seen.sql");
const TOKEN: &str = include_str!("sql/lease_token.sql");

/// The newer token that fences out a write made under `fence`, if another replica took the
/// role since; run inside the write's `BEGIN IMMEDIATE` transaction, so no acquire can come
/// between the check and the write.
pub(super) fn newer_token(conn: &rusqlite::Connection, fence: &LeaseFence) -> rusqlite::Result<Option<u64>> {
    let current: Option<i64> = conn.query_row(TOKEN, [&fence.role], |row| row.get(0)).optional()?;
    Ok(current.map(|t| t as u64).filter(|current| *current > fence.token))
}

pub struct SqliteLeaseStore {
    conn: SharedConnection,
}

impl SqliteLeaseStore {
    /// Opens the leases in the read-model file at `path`, which migrations made.
    pub fn open(path: &Path) -> Result<Self, SqliteError> {
        Ok(SqliteLeaseStore {
            conn: SharedConnection::open(path, "leases", "NORMAL")?,
        })
    }
}

fn unavailable(message: String) -> LeaseError {
    LeaseError::Unavailable(message)
}

fn moment(millis: i64) -> Result<DateTime<Utc>, rusqlite::Error> {
    DateTime::from_timestamp_millis(millis).ok_or(rusqlite::Error::IntegralValueOutOfRange(0, millis))
}

fn lease(row: &Row<'_>) -> Result<Lease, rusqlite::Error> {
    Ok(Lease {
        role: row.get(0)?,
        holder: row.get(1)?,
        token: row.get::<_, i64>(2)? as u64,
        expires_at: moment(row.get(3)?)?,
    })
}

#[async_trait]
impl LeaseStore for SqliteLeaseStore {
    async fn acquire(
        &self,
        role: &str,
        holder: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Option<Lease>, LeaseError> {
        let (role, holder) = (role.to_owned(), holder.to_owned());
        self.conn
            .run(unavailable, move |conn| {
                conn.query_row(
                    ACQUIRE,
                    params![role, holder, now.timestamp_millis(), until.timestamp_millis()],
                    lease,
                )
                .optional()
                .map_err(|e| unavailable(e.to_string()))
            })
            .await
    }

    async fn token(&self, role: &str) -> Result<Option<u64>, LeaseError> {
        let role = role.to_owned();
        self.conn
            .run(unavailable, move |conn| {
                conn.query_row(TOKEN, [&role], |row| row.get::<_, i64>(0))
                    .optional()
                    .map(|token| token.map(|t| t as u64))
                    .map_err(|e| unavailable(e.to_string()))
            })
            .await
    }

    async fn release(&self, role: &str, holder: &str) -> Result<(), LeaseError> {
        let (role, holder) = (role.to_owned(), holder.to_owned());
        self.conn
            .run(unavailable, move |conn| {
                conn.execute(RELEASE, params![role, holder])
                    .map(drop)
                    .map_err(|e| unavailable(e.to_string()))
            })
            .await
    }

    async fn leases(&self) -> Result<Vec<Lease>, LeaseError> {
        self.conn
            .run(unavailable, |conn| {
                let mut statement = conn.prepare_cached(LIST).map_err(|e| unavailable(e.to_string()))?;
                let rows = statement.query_map([], lease).map_err(|e| unavailable(e.to_string()))?;
                rows.collect::<Result<Vec<_>, _>>()
                    .map_err(|e| LeaseError::Corrupt(e.to_string()))
            })
            .await
    }

    async fn heartbeat(&self, replica: &str, started_at: DateTime<Utc>, now: DateTime<Utc>) -> Result<(), LeaseError> {
        let replica = replica.to_owned();
        self.conn
            .run(unavailable, move |conn| {
                conn.execute(
                    HEARTBEAT,
                    params![replica, started_at.timestamp_millis(), now.timestamp_millis()],
                )
                .map(drop)
                .map_err(|e| unavailable(e.to_string()))
            })
            .await
    }

    async fn replicas(&self, since: DateTime<Utc>) -> Result<Vec<ReplicaSeen>, LeaseError> {
        self.conn
            .run(unavailable, move |conn| {
                let mut statement = conn.prepare_cached(REPLICAS).map_err(|e| unavailable(e.to_string()))?;
                let rows = statement
                    .query_map([since.timestamp_millis()], |row| {
                        Ok(ReplicaSeen {
                            id: row.get(0)?,
                            started_at: moment(row.get(1)?)?,
                            seen_at: moment(row.get(2)?)?,
                        })
                    })
                    .map_err(|e| unavailable(e.to_string()))?;
                rows.collect::<Result<Vec<_>, _>>()
                    .map_err(|e| LeaseError::Corrupt(e.to_string()))
            })
            .await
    }
}
