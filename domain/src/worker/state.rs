//! The worker status machine and the service status CML reports.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Where a worker (its VM) is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum WorkerStatus {
    Pending,
    Provisioning,
    Starting,
    Running,
    Draining,
    Stopping,
    Stopped,
    Terminating,
    Terminated,
    Failed,
}

impl WorkerStatus {
    pub const ALL: [WorkerStatus; 10] = [
        WorkerStatus::Pending,
        WorkerStatus::Provisioning,
        WorkerStatus::Starting,
        WorkerStatus::Running,
        WorkerStatus::Draining,
        WorkerStatus::Stopping,
        WorkerStatus::Stopped,
        WorkerStatus::Terminating,
        WorkerStatus::Terminated,
        WorkerStatus::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            WorkerStatus::Pending => "pending",
            WorkerStatus::Provisioning => "provisioning",
            WorkerStatus::Starting => "starting",
            WorkerStatus::Running => "running",
            WorkerStatus::Draining => "draining",
            WorkerStatus::Stopping => "stopping",
            WorkerStatus::Stopped => "stopped",
            WorkerStatus::Terminating => "terminating",
            WorkerStatus::Terminated => "terminated",
            WorkerStatus::Failed => "failed",
        }
    }

    /// Whether the status machine allows `self → to`.
    pub fn can_move_to(self, to: WorkerStatus) -> bool {
        use WorkerStatus::*;
        match self {
            Pending => matches!(to, Provisioning | Failed | Terminated),
            Provisioning => matches!(to, Starting | Running | Failed | Terminated),
            Starting => matches!(to, Running | Failed | Stopping | Terminated),
            Running => matches!(to, Draining | Stopping | Terminating | Failed | Terminated),
            Draining => matches!(to, Running | Stopping | Terminating | Failed | Terminated),
            Stopping => matches!(to, Stopped | Failed | Terminated),
            Stopped => matches!(to, Starting | Terminating | Terminated),
            Terminating => matches!(to, Terminated),
            Failed => matches!(to, Pending | Terminated),
            Terminated => false,
        }
    }
}

impl fmt::Display for WorkerStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for WorkerStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        WorkerStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = WorkerStatus::ALL.iter().map(|s| s.as_str()).collect();
                format!("must be one of {}", names.join(", "))
            })
    }
}

/// The domain's rule: a worker takes new work only when running, with its CML service
/// available and an endpoint known.
pub fn takes_work(status: WorkerStatus, service: ServiceStatus, has_endpoint: bool) -> bool {
    status == WorkerStatus::Running && service == ServiceStatus::Available && has_endpoint
}

/// Whether the CML service on a worker answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ServiceStatus {
    #[default]
    Unavailable,
    Starting,
    Available,
    Error,
}

impl ServiceStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceStatus::Unavailable => "unavailable",
            ServiceStatus::Starting => "starting",
            ServiceStatus::Available => "available",
            ServiceStatus::Error => "error",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminated_is_final_and_every_status_reaches_it_or_terminating() {
        for from in WorkerStatus::ALL {
            assert!(!WorkerStatus::Terminated.can_move_to(from));
            if from != WorkerStatus::Terminated {
                assert!(from.can_move_to(WorkerStatus::Terminated), "{from} → terminated");
            }
        }
    }

    #[test]
    fn drain_and_cancel_are_allowed_only_from_their_sources() {
        assert!(WorkerStatus::Running.can_move_to(WorkerStatus::Draining));
        assert!(WorkerStatus::Draining.can_move_to(WorkerStatus::Running));
        assert!(!WorkerStatus::Stopped.can_move_to(WorkerStatus::Draining));
        assert!(!WorkerStatus::Pending.can_move_to(WorkerStatus::Running));
        assert!(!WorkerStatus::Stopping.can_move_to(WorkerStatus::Running));
    }

    #[test]
    fn names_round_trip() {
        for status in WorkerStatus::ALL {
            assert_eq!(status.as_str().parse::<WorkerStatus>(), Ok(status));
            assert_eq!(serde_json::to_value(status).unwrap(), status.as_str());
        }
        assert!("paused".parse::<WorkerStatus>().unwrap_err().contains("running"));
    }
}
