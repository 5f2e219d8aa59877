//! The work order state machine.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkOrderState {
    Pending,
    /// An executor holds the order; written `preparing` on the wire.
    #[serde(rename = "preparing")]
    Leased,
    Running,
    WaitingRetry,
    Completed,
    Failed,
    Cancelled,
}

impl WorkOrderState {
    pub const ALL: [WorkOrderState; 7] = [
        WorkOrderState::Pending,
        WorkOrderState::Leased,
        WorkOrderState::Running,
        WorkOrderState::WaitingRetry,
        WorkOrderState::Completed,
        WorkOrderState::Failed,
        WorkOrderState::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            WorkOrderState::Pending => "pending",
            WorkOrderState::Leased => "preparing",
            WorkOrderState::Running => "running",
            WorkOrderState::WaitingRetry => "waiting_retry",
            WorkOrderState::Completed => "completed",
            WorkOrderState::Failed => "failed",
            WorkOrderState::Cancelled => "cancelled",
        }
    }

    pub fn is_final(self) -> bool {
        matches!(
            self,
            WorkOrderState::Completed | WorkOrderState::Failed | WorkOrderState::Cancelled
        )
    }

    pub fn can_move_to(self, to: WorkOrderState) -> bool {
        use WorkOrderState::*;
        matches!(
            (self, to),
            (Pending, Leased)
                | (Pending, Cancelled)
                | (Leased, Running)
                | (Leased, WaitingRetry)
                | (Leased, Failed)
                | (Leased, Cancelled)
                | (Running, Completed)
                | (Running, WaitingRetry)
                | (Running, Failed)
                | (Running, Cancelled)
                | (WaitingRetry, Pending)
                | (WaitingRetry, Cancelled)
        )
    }
}

impl fmt::Display for WorkOrderState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for WorkOrderState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        WorkOrderState::ALL
            .into_iter()
            .find(|state| state.as_str() == s)
            .ok_or_else(|| format!("unknown work order state `{s}`"))
    }
}
