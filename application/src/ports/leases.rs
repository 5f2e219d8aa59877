//! The lease port: which replica runs each background role that must run once per deployment.
//!
//! A lease names a role (`projection:lab_records`, `outbox:nats` …), its holder (a replica id),
//! a fencing token and an expiry. Taking a free or expired lease gives a new token, one more
//! than the last; renewing keeps it. The store holding the read models holds the leases, so a
//! deployment's replicas agree on them wherever the log lives. Replicas also say they are alive
//! here, for `GET /api/v1/cluster`.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;

/// One role's lease as the store holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Lease {
    pub role: String,
    pub holder: String,
    /// Grows with every new holder; writes made under the lease carry it.
    pub token: u64,
    pub expires_at: DateTime<Utc>,
}

/// The lease a write is made under: a store refuses the write, changing nothing, once the
/// role's stored token is newer than this one (another replica took the role since).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseFence {
    pub role: String,
    pub token: u64,
}

impl From<&Lease> for LeaseFence {
    fn from(lease: &Lease) -> Self {
        LeaseFence {
            role: lease.role.clone(),
            token: lease.token,
        }
    }
}

/// A replica that said it is alive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct ReplicaSeen {
    pub id: String,
    pub started_at: DateTime<Utc>,
    pub seen_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LeaseError {
    #[error("lease store unavailable: {0}")]
    Unavailable(String),
    #[error("a stored lease cannot be read: {0}")]
    Corrupt(String),
}

#[async_trait]
pub trait LeaseStore: Send + Sync + 'static {
    /// Takes `role` for `holder` until `until` if it is free, expired at `now`, or `holder`'s
    /// already (a renewal, same token); answers the lease held, or None if another replica
    /// holds it.
    async fn acquire(
        &self,
        role: &str,
        holder: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Option<Lease>, LeaseError>;

    /// The current fencing token of `role`, if it was ever taken.
    async fn token(&self, role: &str) -> Result<Option<u64>, LeaseError>;

    /// Gives `role` up at once if `holder` holds it (its token stays, the next holder's grows).
    async fn release(&self, role: &str, holder: &str) -> Result<(), LeaseError>;

    /// Every lease, by role.
    async fn leases(&self) -> Result<Vec<Lease>, LeaseError>;

    /// Records that `replica`, started at `started_at`, is alive at `now`.
    async fn heartbeat(&self, replica: &str, started_at: DateTime<Utc>, now: DateTime<Utc>) -> Result<(), LeaseError>;

    /// The replicas seen since `since`, by id.
    async fn replicas(&self, since: DateTime<Utc>) -> Result<Vec<ReplicaSeen>, LeaseError>;
}
