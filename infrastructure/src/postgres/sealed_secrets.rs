//! Sealed secrets on PostgreSQL, beside the read models (`lablet_sealed_secrets`).

use super::{pool, PostgresError, PostgresTarget};
use crate::credentials::SealedSecretTable;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use deadpool_postgres::Pool;

const PUT_SECRET: &str = include_str!("sql/sealed_secrets_put.sql");
const GET_SECRET: &str = include_str!("sql/sealed_secrets_get.sql");

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
            .execute(PUT_SECRET, &[&name, &sealed, &at])
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
            .query_opt(GET_SECRET, &[&name])
            .await
            .map_err(failed)?;
        row.map(|row| row.try_get(0).map_err(failed)).transpose()
    }
}
