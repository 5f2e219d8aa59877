//! API keys on PostgreSQL, beside the read models (`lablet_api_keys`; secrets only as SHA-256).

use super::{pool, PostgresError, PostgresTarget};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use deadpool_postgres::{Object, Pool};
use lablet_application::ports::{ApiKeyRecord, ApiKeyStore, ApiKeyStoreError};
use tokio_postgres::Row;

const INSERT_KEY: &str = include_str!("sql/api_keys_insert.sql");
const FIND_KEY: &str = include_str!("sql/api_keys_find.sql");
const LIST_KEYS: &str = include_str!("sql/api_keys_list.sql");
const REVOKE_KEY: &str = include_str!("sql/api_keys_revoke.sql");

const POOL_SIZE: usize = 2;

#[derive(Clone)]
pub struct PostgresApiKeyStore {
    pool: Pool,
}

fn unavailable(err: impl std::fmt::Display) -> ApiKeyStoreError {
    ApiKeyStoreError::Unavailable(format!("PostgreSQL: {err}"))
}

fn record_of(row: &Row) -> Result<ApiKeyRecord, ApiKeyStoreError> {
    let corrupt = |e: tokio_postgres::Error| ApiKeyStoreError::Corrupt(e.to_string());
    Ok(ApiKeyRecord {
        id: row.try_get(0).map_err(corrupt)?,
        name: row.try_get(1).map_err(corrupt)?,
        roles: row.try_get(2).map_err(corrupt)?,
        secret_sha256: row.try_get(3).map_err(corrupt)?,
        created_at: row.try_get(4).map_err(corrupt)?,
        created_by: row.try_get(5).map_err(corrupt)?,
        revoked_at: row.try_get(6).map_err(corrupt)?,
    })
}

impl PostgresApiKeyStore {
    /// Connects to the key table at `target`, which migrations must have created.
    pub async fn open(target: &PostgresTarget) -> Result<Self, PostgresError> {
        let client = target.connect().await?;
        target.require_table(&client, "lablet_api_keys").await?;
        Ok(PostgresApiKeyStore {
            pool: pool(target, POOL_SIZE)?,
        })
    }

    async fn client(&self) -> Result<Object, ApiKeyStoreError> {
        self.pool.get().await.map_err(unavailable)
    }
}

#[async_trait]
impl ApiKeyStore for PostgresApiKeyStore {
    async fn insert(&self, key: ApiKeyRecord) -> Result<(), ApiKeyStoreError> {
        self.client()
            .await?
            .execute(
                INSERT_KEY,
                &[
                    &key.id,
                    &key.name,
                    &key.roles,
                    &key.secret_sha256,
                    &key.created_at,
                    &key.created_by,
                ],
            )
            .await
            .map(|_| ())
            .map_err(unavailable)
    }

    async fn find(&self, id: &str) -> Result<Option<ApiKeyRecord>, ApiKeyStoreError> {
        let sql = FIND_KEY;
        let row = self.client().await?.query_opt(sql, &[&id]).await.map_err(unavailable)?;
        row.as_ref().map(record_of).transpose()
    }

    async fn list(&self) -> Result<Vec<ApiKeyRecord>, ApiKeyStoreError> {
        let sql = LIST_KEYS;
        let rows = self.client().await?.query(sql, &[]).await.map_err(unavailable)?;
        rows.iter().map(record_of).collect()
    }

    async fn revoke(&self, id: &str, at: DateTime<Utc>) -> Result<bool, ApiKeyStoreError> {
        self.client()
            .await?
            .execute(REVOKE_KEY, &[&id, &at])
            .await
            .map(|changed| changed == 1)
            .map_err(unavailable)
    }
}
