//! The work order state machine.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkOrderState {
    Pending,
    Preparing,
    Running,
    WaitingRetry,
    Completed,
    Failed,
    Cancelled,
}

impl WorkOrderState {
    pub const ALL: [WorkOrderState; 7] = [
        WorkOrderState::Pending,
        WorkOrderState::Preparing,
        WorkOrderState::Running,
        WorkOrderState::WaitingRetry,
        WorkOrderState::Completed,
        WorkOrderState::Failed,
        WorkOrderState::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            WorkOrderState::Pending => "pending",
            WorkOrderState::Preparing => "preparing",
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
            (Pending, Preparing)
                | (Pending, Cancelled)
                | (Preparing, Running)
                | (Preparing, WaitingRetry)
                | (Preparing, Failed)
                | (Preparing, Cancelled)
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
