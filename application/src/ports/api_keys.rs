//! The API key store port: keys for machine callers, kept hashed.
//!
//! A key is shown once, when it is created; the store keeps only its id, a SHA-256 hash of its
//! secret part, the roles it grants and who made or revoked it.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;

/// One API key, without its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct ApiKeyRecord {
    /// The public part of the key, sent with it; the actor of every command it makes is
    /// `apikey:<id>`.
    pub id: String,
    pub name: String,
    pub roles: Vec<String>,
    /// Hex SHA-256 of the secret part (never serialised into answers).
    #[serde(skip)]
    pub secret_sha256: String,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    pub revoked_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ApiKeyStoreError {
    #[error("API key store unavailable: {0}")]
    Unavailable(String),
    #[error("API key record cannot be read: {0}")]
    Corrupt(String),
}

#[async_trait]
pub trait ApiKeyStore: Send + Sync + 'static {
    /// Stores a new key.
    async fn insert(&self, key: ApiKeyRecord) -> Result<(), ApiKeyStoreError>;

    /// The key with this id, revoked or not.
    async fn find(&self, id: &str) -> Result<Option<ApiKeyRecord>, ApiKeyStoreError>;

    /// Every key, newest first.
    async fn list(&self) -> Result<Vec<ApiKeyRecord>, ApiKeyStoreError>;

    /// Revokes the key; false when there is no such key. Revoking twice keeps the first time.
    async fn revoke(&self, id: &str, at: DateTime<Utc>) -> Result<bool, ApiKeyStoreError>;
}
