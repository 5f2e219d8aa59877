//! Sealed secrets on PostgreSQL, beside the read models (`lablet_sealed_secrets`).

use super::{pool, PostgresError, PostgresTarget};
use crate::credentials::SealedSecretTable;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use deadpool_postgres::Pool;

const POOL_SIZE: usize = 1;

pub struct PostgresSecretTable {
    pool: Pool,
}

impl PostgresSecretTable {
    /// Connects to the table at `target`, which migrations must have created.
    pub async fn open(target: &PostgresTarget) -> Result<Self, PostgresError> {
        let client = target.connect().await?;
        target.require_table(&client, "lablet_sealed_secrets").await?;
        Ok(PostgresSecretTable {
            pool: pool(target, POOL_SIZE)?,
        })
    }
}

fn failed(err: impl std::fmt::Display) -> String {
    format!("PostgreSQL: {err}")
}

#[async_trait]
impl SealedSecretTable for PostgresSecretTable {
    async fn put(&self, name: &str, sealed: &str, at: DateTime<Utc>) -> Result<(), String> {
        self.pool
            .get()
            .await
            .map_err(failed)?
            .execute(
                "INSERT INTO lablet_sealed_secrets (name, sealed, updated_at) VALUES ($1, $2, $3)
                 ON CONFLICT (name) DO UPDATE SET sealed = excluded.sealed, updated_at = excluded.updated_at",
                &[&name, &sealed, &at],
            )
            .await
            .map(drop)
            .map_err(failed)
    }

    async fn get(&self, name: &str) -> Result<Option<String>, String> {
        let row = self
            .pool
            .get()
            .await
            .map_err(failed)?
            .query_opt("SELECT sealed FROM lablet_sealed_secrets WHERE name = $1", &[&name])
            .await
            .map_err(failed)?;
        row.map(|row| row.try_get(0).map_err(failed)).transpose()
    }
}
