//! What can be asked of a worker.

use super::allocation::AllocationRequest;
use super::endpoint::Endpoint;
use super::events::{Activity, Capacity, License, SyncCounts, WorkerMetrics};
use super::idle::IdlePolicy;
use super::state::{ServiceStatus, WorkerStatus};
use crate::kernel::Command;
use crate::values::{FreeText, Name};
use uuid::Uuid;

/// A new worker: an existing CML server (with an endpoint) or one still to be provisioned.
#[derive(Debug, Clone, PartialEq)]
pub struct Registration {
    pub name: Name<128>,
    pub region: Name<64>,
    pub endpoint: Option<Endpoint>,
    pub template_name: Option<Name<128>>,
    pub instance_id: Option<Name<128>>,
    pub declared_capacity: Capacity,
    pub insecure_tls: bool,
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
}

#[derive(Debug, Clone, PartialEq)]
pub enum WorkerCommand {
    Register(Registration),
    /// Moves the worker along its status machine (drain, cancel drain, stop, terminate … are
    /// all this command with their target).
    ChangeStatus {
        to: WorkerStatus,
        reason: FreeText<1024>,
    },
    /// Records a monitoring pass; only a changed status or a figure that moved is recorded.
    RecordObservation(ServiceObservation),
    RecordLabsSynced {
        counts: SyncCounts,
    },
    /// Records that new credentials were sealed for the worker.
    RecordCredentialsChanged,
    SetIdleDetection {
        enabled: bool,
    },
    /// Activities read from the worker's telemetry, in any order; only newer ones count.
    RecordActivity {
        activities: Vec<Activity>,
    },
    /// Records that the worker is idle, if it is under `policy` now and was not reported idle
    /// already for the same quiet period.
    DetectIdle {
        policy: IdlePolicy,
    },
    /// Gives a lablet instance capacity and ports (nothing if it holds the same already).
    Allocate(AllocationRequest),
    /// Gives several instances capacity and ports in one decision, each checked against what
    /// the ones before it took; those that no longer fit are left out (the caller reads the
    /// worker's allocations to see which were taken).
    AllocateAll(Vec<AllocationRequest>),
    /// Takes an instance's capacity and ports back (nothing if it holds none).
    Release {
        instance_id: Uuid,
        reason: FreeText<1024>,
    },
    /// Changes what the worker declares it can hold (an admin's correction).
    DeclareCapacity {
        capacity: Capacity,
    },
}

impl Command for WorkerCommand {
    fn name(&self) -> &'static str {
        match self {
            WorkerCommand::Register(_) => "cml_worker.register",
            WorkerCommand::ChangeStatus { .. } => "cml_worker.change_status",
            WorkerCommand::RecordObservation(_) => "cml_worker.record_observation",
            WorkerCommand::RecordLabsSynced { .. } => "cml_worker.record_labs_synced",
            WorkerCommand::RecordCredentialsChanged => "cml_worker.change_credentials",
            WorkerCommand::SetIdleDetection { .. } => "cml_worker.set_idle_detection",
            WorkerCommand::RecordActivity { .. } => "cml_worker.record_activity",
            WorkerCommand::DetectIdle { .. } => "cml_worker.detect_idle",
            WorkerCommand::Allocate(_) => "cml_worker.allocate",
            WorkerCommand::AllocateAll(_) => "cml_worker.allocate_all",
            WorkerCommand::Release { .. } => "cml_worker.release",
            WorkerCommand::DeclareCapacity { .. } => "cml_worker.declare_capacity",
        }
    }
}
