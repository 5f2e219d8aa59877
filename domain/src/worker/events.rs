//! The facts a worker stream holds, and the values they carry.

use super::state::{ServiceStatus, WorkerStatus};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use uuid::Uuid;

/// What a worker can hold, per dimension.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Capacity {
    pub cpu_cores: u32,
    pub memory_gb: u32,
    pub storage_gb: u32,
    pub max_nodes: u32,
}

impl Capacity {
    /// `self − used` per dimension, never below zero.
    pub fn minus(self, used: Capacity) -> Capacity {
        Capacity {
            cpu_cores: self.cpu_cores.saturating_sub(used.cpu_cores),
            memory_gb: self.memory_gb.saturating_sub(used.memory_gb),
            storage_gb: self.storage_gb.saturating_sub(used.storage_gb),
            max_nodes: self.max_nodes.saturating_sub(used.max_nodes),
        }
    }

    /// `self + more` per dimension (saturating).
    pub fn plus(self, more: Capacity) -> Capacity {
        Capacity {
            cpu_cores: self.cpu_cores.saturating_add(more.cpu_cores),
            memory_gb: self.memory_gb.saturating_add(more.memory_gb),
            storage_gb: self.storage_gb.saturating_add(more.storage_gb),
            max_nodes: self.max_nodes.saturating_add(more.max_nodes),
        }
    }
}

/// The kind of CML license a worker runs under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LicenseType {
    Personal,
    Enterprise,
    Evaluation,
}

/// A worker's CML license as its licensing endpoint reports it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct License {
    /// CML's registration/authorisation status text (`COMPLETED`, `AUTHORIZED`, …).
    pub status: String,
    pub license_type: Option<LicenseType>,
    pub expires_at: Option<DateTime<Utc>>,
}

/// A snapshot of what a worker is doing, as its statistics report it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct WorkerMetrics {
    /// Percentages, 0–100.
    pub cpu_percent: f64,
    pub memory_percent: f64,
    pub disk_percent: f64,
    pub labs_count: u32,
    pub running_nodes: u32,
}

/// One user action on a worker that counts as activity for idle detection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Activity {
    pub at: DateTime<Utc>,
    /// The CML telemetry category (`start_lab`, `user_activity`, …).
    pub category: String,
    pub user_id: Option<String>,
    pub lab_id: Option<String>,
}

/// Counts of one labs refresh of a worker.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SyncCounts {
    /// Labs the worker listed.
    pub labs: u32,
    pub created: u32,
    pub updated: u32,
    pub removed: u32,
    pub failed: u32,
}

crate::domain_events! {
    #[derive(Debug, Clone, PartialEq)]
    pub enum WorkerEvent {
        "cml_worker.registered" @ 2 => Registered {
            name: String,
            region: String,
            endpoint: Option<String>,
            template_name: Option<String>,
            instance_id: Option<String>,
            declared_capacity: Capacity,
            status: WorkerStatus,
            /// TLS certificates of this worker are not verified (self-signed CML servers).
            insecure_tls: bool,
            idle_detection_enabled: bool,
            registered_by: String,
            registered_at: DateTime<Utc>,
        },
        "cml_worker.status_changed" @ 2 => StatusChanged {
            previous: WorkerStatus,
            new: WorkerStatus,
            reason: String,
            changed_by: String,
            changed_at: DateTime<Utc>,
        },
        "cml_worker.service_status_changed" => ServiceStatusChanged {
            previous: ServiceStatus,
            new: ServiceStatus,
            changed_at: DateTime<Utc>,
        },
        "cml_worker.metrics_recorded" => MetricsRecorded {
            cml_version: Option<String>,
            license: Option<License>,
            metrics: Option<WorkerMetrics>,
            recorded_at: DateTime<Utc>,
        },
        "cml_worker.labs_synced" => LabsSynced {
            #[serde(flatten)]
            counts: SyncCounts,
            synced_at: DateTime<Utc>,
        },
        /// New CML credentials were sealed for the worker (they are never in the event).
        "cml_worker.credentials_changed" @ 2 => CredentialsChanged {
            changed_by: String,
            changed_at: DateTime<Utc>,
        },
        "cml_worker.idle_detection_changed" @ 2 => IdleDetectionChanged {
            enabled: bool,
            changed_by: String,
            changed_at: DateTime<Utc>,
        },
        "cml_worker.activity_recorded" => ActivityRecorded {
            last_activity_at: DateTime<Utc>,
            /// The most recent activities, newest first (at most ten).
            recent: Vec<Activity>,
        },
        "cml_worker.credentials_refused" => CredentialsRefused {
            refused_at: DateTime<Utc>,
        },
        "cml_worker.credentials_accepted" => CredentialsAccepted {
            accepted_at: DateTime<Utc>,
        },
        "cml_worker.idle_detected" => IdleDetected {
            idle_since: DateTime<Utc>,
            idle_minutes: i64,
            detected_at: DateTime<Utc>,
        },
        /// A lablet instance took capacity and ports on the worker.
        "cml_worker.capacity_allocated" => CapacityAllocated {
            instance_id: Uuid,
            capacity: Capacity,
            /// Port name → port.
            ports: BTreeMap<String, u16>,
            allocated_at: DateTime<Utc>,
        },
        /// A lablet instance gave its capacity and ports back.
        "cml_worker.capacity_released" => CapacityReleased {
            instance_id: Uuid,
            capacity: Capacity,
            ports: BTreeMap<String, u16>,
            reason: String,
            released_at: DateTime<Utc>,
        },
        /// An admin changed what the worker declares it can hold.
        "cml_worker.capacity_declared" => CapacityDeclared {
            previous: Capacity,
            new: Capacity,
            declared_by: String,
            declared_at: DateTime<Utc>,
        },
    }
    upcasters: super::upcasters::UPCASTERS;
}
