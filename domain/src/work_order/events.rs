//! The facts a WorkOrder stream holds.

use super::state::WorkOrderState;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The capacity an order needs from the executor that runs it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ResourceNeeds {
    #[serde(default)]
    pub cpu_cores: u32,
    #[serde(default)]
    pub memory_gb: u32,
    #[serde(default)]
    pub storage_gb: u32,
    #[serde(default)]
    pub max_nodes: u32,
}

/// Who holds an order and until when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    pub executor: String,
    pub expires_at: DateTime<Utc>,
}

crate::domain_events! {
    #[derive(Debug, Clone, PartialEq)]
    pub enum WorkOrderEvent {
        "work_order.submitted" => Submitted {
            kind: String,
            payload: serde_json::Value,
            priority: i32,
            max_attempts: u32,
            resources: ResourceNeeds,
            submitted_at: DateTime<Utc>,
            #[serde(default, skip_serializing_if = "Option::is_none")]
            unique_key: Option<String>,
        },
        "work_order.leased" => Leased {
            lease: Lease,
            attempt: u32,
            at: DateTime<Utc>,
        },
        "work_order.started" => Started { executor: String, at: DateTime<Utc> },
        "work_order.lease_renewed" => LeaseRenewed {
            attempt: u32,
            expires_at: DateTime<Utc>,
            at: DateTime<Utc>,
        },
        "work_order.completed" => Completed {
            result: serde_json::Value,
            at: DateTime<Utc>,
        },
        "work_order.attempt_failed" => AttemptFailed {
            attempt: u32,
            error: String,
            next_attempt_at: DateTime<Utc>,
            at: DateTime<Utc>,
        },
        "work_order.failed" => Failed {
            attempt: u32,
            error: String,
            retryable: bool,
            at: DateTime<Utc>,
        },
        "work_order.requeued" => Requeued { at: DateTime<Utc> },
        "work_order.cancelled" => Cancelled {
            from: WorkOrderState,
            reason: Option<String>,
            at: DateTime<Utc>,
        },
    }
}

impl WorkOrderEvent {
    /// The state this event moves the order to; `None` when it stays where it is.
    pub fn target_state(&self) -> Option<WorkOrderState> {
        Some(match self {
            WorkOrderEvent::Submitted { .. } | WorkOrderEvent::Requeued { .. } => WorkOrderState::Pending,
            WorkOrderEvent::Leased { .. } => WorkOrderState::Leased,
            WorkOrderEvent::Started { .. } => WorkOrderState::Running,
            WorkOrderEvent::LeaseRenewed { .. } => return None,
            WorkOrderEvent::Completed { .. } => WorkOrderState::Completed,
            WorkOrderEvent::AttemptFailed { .. } => WorkOrderState::WaitingRetry,
            WorkOrderEvent::Failed { .. } => WorkOrderState::Failed,
            WorkOrderEvent::Cancelled { .. } => WorkOrderState::Cancelled,
        })
    }
}
