//! The lablet instance state machine.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum InstanceState {
    Pending,
    Scheduled,
    Instantiating,
    Running,
    Collecting,
    Grading,
    Stopping,
    Stopped,
    Archived,
    Terminated,
}

impl InstanceState {
    pub const ALL: [InstanceState; 10] = [
        InstanceState::Pending,
        InstanceState::Scheduled,
        InstanceState::Instantiating,
        InstanceState::Running,
        InstanceState::Collecting,
        InstanceState::Grading,
        InstanceState::Stopping,
        InstanceState::Stopped,
        InstanceState::Archived,
        InstanceState::Terminated,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            InstanceState::Pending => "pending",
            InstanceState::Scheduled => "scheduled",
            InstanceState::Instantiating => "instantiating",
            InstanceState::Running => "running",
            InstanceState::Collecting => "collecting",
            InstanceState::Grading => "grading",
            InstanceState::Stopping => "stopping",
            InstanceState::Stopped => "stopped",
            InstanceState::Archived => "archived",
            InstanceState::Terminated => "terminated",
        }
    }

    pub fn is_final(self) -> bool {
        self == InstanceState::Terminated
    }

    /// Whether the state machine allows `self → to`. Any non-final state may be terminated.
    pub fn can_move_to(self, to: InstanceState) -> bool {
        use InstanceState::*;
        if to == Terminated {
            return !self.is_final();
        }
        matches!(
            (self, to),
            (Pending, Scheduled)
                | (Scheduled, Instantiating)
                | (Instantiating, Running)
                | (Running, Collecting)
                | (Running, Stopping)
                | (Collecting, Grading)
                | (Collecting, Stopping)
                | (Grading, Stopping)
                | (Stopping, Stopped)
                | (Stopped, Archived)
                | (Stopped, Running)
                | (Archived, Terminated)
        )
    }
}

impl fmt::Display for InstanceState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for InstanceState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        InstanceState::ALL
            .into_iter()
            .find(|state| state.as_str() == s)
            .ok_or_else(|| format!("unknown instance state `{s}`"))
    }
}
