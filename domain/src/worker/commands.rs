//! What can be asked of a worker.

use super::events::{Activity, Capacity, License, SyncCounts, WorkerMetrics};
use super::idle::IdlePolicy;
use super::state::{ServiceStatus, WorkerStatus};
use chrono::{DateTime, Utc};

/// A new worker: an existing CML server (with an endpoint) or one still to be provisioned.
#[derive(Debug, Clone, PartialEq)]
pub struct Registration {
    pub name: String,
    pub region: String,
    pub endpoint: Option<String>,
    pub template_name: Option<String>,
    pub instance_id: Option<String>,
    pub declared_capacity: Capacity,
    pub insecure_tls: bool,
    pub registered_by: String,
    pub registered_at: DateTime<Utc>,
}

/// What one monitoring pass saw on a worker; `None` where the call that reports it failed.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceObservation {
    pub service_status: ServiceStatus,
    pub cml_version: Option<String>,
    pub license: Option<License>,
    pub metrics: Option<WorkerMetrics>,
    /// Whether CML refused the worker's credentials (`Some(false)`: a call that needed them
    /// succeeded; `None`: no such call got an answer).
    pub credentials_refused: Option<bool>,
    pub observed_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum WorkerCommand {
    Register(Registration),
    /// Moves the worker along its status machine (drain, cancel drain, stop, terminate … are
    /// all this command with their target).
    ChangeStatus {
        to: WorkerStatus,
        reason: String,
        by: String,
        at: DateTime<Utc>,
    },
    /// Records a monitoring pass; only a changed status or a figure that moved is recorded.
    RecordObservation(ServiceObservation),
    RecordLabsSynced {
        counts: SyncCounts,
        at: DateTime<Utc>,
    },
    /// Records that new credentials were sealed for the worker.
    RecordCredentialsChanged {
        by: String,
        at: DateTime<Utc>,
    },
    SetIdleDetection {
        enabled: bool,
        by: String,
        at: DateTime<Utc>,
    },
    /// Activities read from the worker's telemetry, in any order; only newer ones count.
    RecordActivity {
        activities: Vec<Activity>,
    },
    /// Records that the worker is idle, if it is under `policy` at `now` and was not reported
    /// idle already for the same quiet period.
    DetectIdle {
        policy: IdlePolicy,
        now: DateTime<Utc>,
    },
}
