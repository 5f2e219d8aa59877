//! The credential vault port: CML credentials kept sealed, apart from events and read models.

use async_trait::async_trait;
use uuid::Uuid;

/// A CML user and password. Its `Debug` never shows the password.
#[derive(Clone, PartialEq, Eq)]
pub struct CmlCredentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for CmlCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CmlCredentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum VaultError {
    #[error("credential vault unavailable: {0}")]
    Unavailable(String),
    /// The stored secret cannot be opened (another key, or tampered with).
    #[error("stored credentials cannot be opened: {0}")]
    Sealed(String),
}

/// Keeps each worker's credentials encrypted at rest.
#[async_trait]
pub trait CredentialVault: Send + Sync {
    async fn store(&self, worker_id: Uuid, credentials: &CmlCredentials) -> Result<(), VaultError>;
    async fn load(&self, worker_id: Uuid) -> Result<Option<CmlCredentials>, VaultError>;
}
