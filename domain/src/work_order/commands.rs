//! What can be asked of a WorkOrder.

use super::events::ResourceNeeds;
use chrono::{DateTime, Utc};

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Submission {
    pub kind: String,
    pub payload: serde_json::Value,
    pub priority: i32,
    pub max_attempts: u32,
    pub resources: ResourceNeeds,
    pub submitted_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum WorkOrderCommand {
    Submit(Submission),
    /// An executor takes the order until `expires_at` (pending → preparing).
    Prepare {
        executor: String,
        expires_at: DateTime<Utc>,
        at: DateTime<Utc>,
    },
    Start {
        executor: String,
        at: DateTime<Utc>,
    },
    Complete {
        result: serde_json::Value,
        at: DateTime<Utc>,
    },
    /// The current attempt failed. `jitter ∈ [0, 1]` spreads the retry time.
    Fail {
        error: String,
        retryable: bool,
        jitter: f64,
        at: DateTime<Utc>,
    },
    /// The lease ran out without an outcome: a retryable failure.
    ExpireLease {
        jitter: f64,
        at: DateTime<Utc>,
    },
    /// Offer a waiting order again once its backoff has passed.
    Requeue {
        at: DateTime<Utc>,
    },
    Cancel {
        reason: Option<String>,
        at: DateTime<Utc>,
    },
}
