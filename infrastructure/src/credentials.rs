//! The credential vault: CML credentials sealed with the [`SecretBox`] and kept in a table of
//! sealed secrets beside the read models (SQLite, PostgreSQL or MongoDB).
//!
//! Each secret is sealed bound to its name (`cml_worker/<id>/credentials`), so a sealed value
//! copied onto another worker's row does not open.

use crate::secrets::SecretBox;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use lablet_application::ports::{Clock, SystemClock};
use lablet_application::ports::{CmlCredentials, CredentialVault, VaultError};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use uuid::Uuid;

/// Where sealed secrets are kept: text in, the same text out.
#[async_trait]
pub trait SealedSecretTable: Send + Sync + 'static {
    /// Stores `sealed` under `name`, replacing what was there.
    async fn put(&self, name: &str, sealed: &str, at: DateTime<Utc>) -> Result<(), String>;
    async fn get(&self, name: &str) -> Result<Option<String>, String>;
}

#[derive(Serialize, Deserialize)]
struct StoredCredentials {
    username: String,
    password: String,
}

pub struct SealingVault {
    secret_box: Arc<SecretBox>,
    table: Arc<dyn SealedSecretTable>,
}

impl SealingVault {
    pub fn new(secret_box: Arc<SecretBox>, table: Arc<dyn SealedSecretTable>) -> Self {
        SealingVault { secret_box, table }
    }
}

fn secret_name(worker_id: Uuid) -> String {
    format!("cml_worker/{worker_id}/credentials")
}

#[async_trait]
impl CredentialVault for SealingVault {
    async fn store(&self, worker_id: Uuid, credentials: &CmlCredentials) -> Result<(), VaultError> {
        let name = secret_name(worker_id);
        let plaintext = serde_json::to_string(&StoredCredentials {
            username: credentials.username.clone(),
            password: credentials.password.clone(),
        })
        .map_err(|e| VaultError::Sealed(e.to_string()))?;
        let sealed = self
            .secret_box
            .seal(&plaintext, &name)
            .map_err(|e| VaultError::Sealed(e.to_string()))?;
        self.table
            .put(&name, &sealed, SystemClock.now())
            .await
            .map_err(VaultError::Unavailable)
    }

    async fn load(&self, worker_id: Uuid) -> Result<Option<CmlCredentials>, VaultError> {
        let name = secret_name(worker_id);
        let Some(sealed) = self.table.get(&name).await.map_err(VaultError::Unavailable)? else {
            return Ok(None);
        };
        let plaintext = self
            .secret_box
            .open(&sealed, &name)
            .map_err(|e| VaultError::Sealed(e.to_string()))?;
        let stored: StoredCredentials =
            serde_json::from_str(&plaintext).map_err(|e| VaultError::Sealed(e.to_string()))?;
        Ok(Some(CmlCredentials {
            username: stored.username,
            password: stored.password,
        }))
    }
}

/// A table in memory, for tests and tools that need no persistence.
#[derive(Default)]
pub struct MemorySecretTable(std::sync::Mutex<std::collections::HashMap<String, String>>);

#[async_trait]
impl SealedSecretTable for MemorySecretTable {
    async fn put(&self, name: &str, sealed: &str, _: DateTime<Utc>) -> Result<(), String> {
        self.0
            .lock()
            .map_err(|e| e.to_string())?
            .insert(name.to_owned(), sealed.to_owned());
        Ok(())
    }

    async fn get(&self, name: &str) -> Result<Option<String>, String> {
        Ok(self.0.lock().map_err(|e| e.to_string())?.get(name).cloned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secrets::SecretKeyText;

    fn vault(table: Arc<MemorySecretTable>) -> SealingVault {
        use base64::Engine;
        let key = SecretKeyText::parse(&base64::engine::general_purpose::URL_SAFE_NO_PAD.encode([7u8; 32])).unwrap();
        let dir = std::env::temp_dir();
        let secret_box = SecretBox::open_or_create(Some(&key), &dir).unwrap();
        SealingVault::new(Arc::new(secret_box), table)
    }

    #[tokio::test]
    async fn credentials_are_stored_sealed_and_open_only_for_their_worker() {
        let table = Arc::new(MemorySecretTable::default());
        let vault = vault(table.clone());
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let credentials = CmlCredentials {
            username: "admin".into(),
            password: "s3cret-pw".into(),
        };
        vault.store(a, &credentials).await.unwrap();
        assert_eq!(vault.load(a).await.unwrap(), Some(credentials));
        assert_eq!(vault.load(b).await.unwrap(), None);
        let sealed = table.get(&secret_name(a)).await.unwrap().unwrap();
        assert!(!sealed.contains("s3cret-pw") && !sealed.contains("admin"));
        // A sealed value moved onto another worker's row does not open.
        table.put(&secret_name(b), &sealed, SystemClock.now()).await.unwrap();
        assert!(matches!(vault.load(b).await, Err(VaultError::Sealed(_))));
    }
}
