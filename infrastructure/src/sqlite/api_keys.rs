//! The SQLite API key store, in the read-model file. Keys are few and looked up by primary
//! key, so one shared connection serves them; writes are durable (`synchronous=FULL`): a
//! revocation must survive a power cut.

use super::connection::{parse_utc, SharedConnection, SqliteError};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use lablet_application::ports::{ApiKeyRecord, ApiKeyStore, ApiKeyStoreError};
use rusqlite::{params, OptionalExtension, Row};
use std::path::Path;

const INSERT_KEY: &str = include_str!("sql/api_keys_insert.sql");
const FIND_KEY: &str = include_str!("sql/api_keys_find.sql");
const LIST_KEYS: &str = include_str!("sql/api_keys_list.sql");
const REVOKE_KEY: &str = include_str!("sql/api_keys_revoke.sql");

#[derive(Clone)]
pub struct SqliteApiKeyStore {
    conn: SharedConnection,
}

fn unavailable(err: impl std::fmt::Display) -> ApiKeyStoreError {
    ApiKeyStoreError::Unavailable(err.to_string())
}

fn corrupt(err: impl std::fmt::Display) -> ApiKeyStoreError {
    ApiKeyStoreError::Corrupt(err.to_string())
}

impl SqliteApiKeyStore {
    /// Opens the key table in the read-model file at `path`, which migrations created.
    pub fn open(path: &Path) -> Result<Self, SqliteError> {
        Ok(SqliteApiKeyStore {
            conn: SharedConnection::open(path, "api_keys", "FULL")?,
        })
    }
}

type KeyRow = (String, String, String, String, String, String, Option<String>);

fn read_row(row: &Row<'_>) -> rusqlite::Result<KeyRow> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
        row.get(5)?,
        row.get(6)?,
    ))
}

fn parse_time(text: &str) -> Result<DateTime<Utc>, ApiKeyStoreError> {
    parse_utc(text).map_err(corrupt)
}

fn to_record(row: KeyRow) -> Result<ApiKeyRecord, ApiKeyStoreError> {
    let (id, name, roles, secret_sha256, created_at, created_by, revoked_at) = row;
    Ok(ApiKeyRecord {
        id,
        name,
        roles: serde_json::from_str(&roles).map_err(corrupt)?,
        secret_sha256,
        created_at: parse_time(&created_at)?,
        created_by,
        revoked_at: revoked_at.as_deref().map(parse_time).transpose()?,
    })
}

#[async_trait]
impl ApiKeyStore for SqliteApiKeyStore {
    async fn insert(&self, key: ApiKeyRecord) -> Result<(), ApiKeyStoreError> {
        let roles = serde_json::to_string(&key.roles).map_err(corrupt)?;
        self.conn
            .run(ApiKeyStoreError::Unavailable, move |conn| {
                conn.execute(
                    INSERT_KEY,
                    params![
                        key.id,
                        key.name,
                        roles,
                        key.secret_sha256,
                        key.created_at.to_rfc3339(),
                        key.created_by
                    ],
                )
                .map(|_| ())
                .map_err(unavailable)
            })
            .await
    }

    async fn find(&self, id: &str) -> Result<Option<ApiKeyRecord>, ApiKeyStoreError> {
        let id = id.to_owned();
        self.conn
            .run(ApiKeyStoreError::Unavailable, move |conn| {
                let sql = FIND_KEY;
                let row = conn
                    .prepare_cached(sql)
                    .and_then(|mut statement| statement.query_row([id], read_row).optional())
                    .map_err(unavailable)?;
                row.map(to_record).transpose()
            })
            .await
    }

    async fn list(&self) -> Result<Vec<ApiKeyRecord>, ApiKeyStoreError> {
        self.conn
            .run(ApiKeyStoreError::Unavailable, move |conn| {
                let sql = LIST_KEYS;
                let mut statement = conn.prepare_cached(sql).map_err(unavailable)?;
                let rows = statement
                    .query_map([], read_row)
                    .map_err(unavailable)?
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(unavailable)?;
                rows.into_iter().map(to_record).collect()
            })
            .await
    }

    async fn revoke(&self, id: &str, at: DateTime<Utc>) -> Result<bool, ApiKeyStoreError> {
        let id = id.to_owned();
        self.conn
            .run(ApiKeyStoreError::Unavailable, move |conn| {
                conn.execute(REVOKE_KEY, params![id, at.to_rfc3339()])
                    .map(|changed| changed == 1)
                    .map_err(unavailable)
            })
            .await
    }
}
