//! Sealed secrets in the SQLite read-model file (`sealed_secrets`), written durably.

use super::connection::{SharedConnection, SqliteError};
use crate::credentials::SealedSecretTable;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension};
use std::path::Path;

const PUT_SECRET: &str = include_str!("sql/sealed_secrets_put.sql");
const GET_SECRET: &str = include_str!("sql/sealed_secrets_get.sql");

pub struct SqliteSecretTable {
    conn: SharedConnection,
}

impl SqliteSecretTable {
    /// Opens the table in the read-model file at `path`, which migrations created.
    pub fn open(path: &Path) -> Result<Self, SqliteError> {
        Ok(SqliteSecretTable {
            conn: SharedConnection::open(path, "sealed_secrets", "FULL")?,
        })
    }
}

#[async_trait]
impl SealedSecretTable for SqliteSecretTable {
    async fn put(&self, name: &str, sealed: &str, at: DateTime<Utc>) -> Result<(), String> {
        let (name, sealed) = (name.to_owned(), sealed.to_owned());
        self.conn
            .run(std::convert::identity, move |conn| {
                conn.execute(PUT_SECRET, params![name, sealed, at.to_rfc3339()])
                    .map(drop)
                    .map_err(|e| e.to_string())
            })
            .await
    }

    async fn get(&self, name: &str) -> Result<Option<String>, String> {
        let name = name.to_owned();
        self.conn
            .run(std::convert::identity, move |conn| {
                conn.query_row(GET_SECRET, [name], |row| row.get(0))
                    .optional()
                    .map_err(|e| e.to_string())
            })
            .await
    }
}
