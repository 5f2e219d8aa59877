//! `workers`: one document per CML worker, with its capacity, utilisation and last figures.
//!
//! `utilisation` is computed here, from the last metrics and the declared capacity: CPU, memory
//! and disk as CML reports them, nodes as running nodes over the declared `max_nodes`.
//! `allocations` holds what each lablet instance placed on the worker holds (capacity and
//! ports); `allocated_capacity`, `available_capacity`, `ports_in_use` and `free_ports` follow.

use crate::projector::{decode, existing, Patch, ProjectionError, Projector};
use chrono::{DateTime, Utc};
use lablet_application::envelope::EventEnvelope;
use lablet_application::ports::CollectionSpec;
use lablet_application::read_model_queries::WORKERS;
use lablet_domain::worker::{
    Activity, Allocation, Capacity, PortRange, ServiceStatus, WorkerEvent, WorkerMetrics, WorkerStatus,
};
use lablet_domain::AggregateKind;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// The shape of a worker document (plus `version` and `updated_at`, stamped by the runner).
#[derive(Debug, Clone, Serialize)]
pub struct WorkerView {
    pub id: String,
    pub name: String,
    pub region: String,
    pub endpoint: Option<String>,
    pub template_name: Option<String>,
    pub instance_id: Option<String>,
    pub status: WorkerStatus,
    pub service_status: ServiceStatus,
    pub cml_version: Option<String>,
    pub license: Option<Value>,
    pub declared_capacity: Capacity,
    pub allocated_capacity: Capacity,
    pub available_capacity: Capacity,
    /// Lablet instance id → what it holds here.
    pub allocations: BTreeMap<String, Allocation>,
    pub port_range: PortRange,
    pub ports_in_use: usize,
    pub free_ports: usize,
    pub metrics: Option<WorkerMetrics>,
    pub utilisation: Option<Utilisation>,
    pub insecure_tls: bool,
    pub idle_detection_enabled: bool,
    pub last_activity_at: Option<DateTime<Utc>>,
    pub recent_activity: Vec<Activity>,
    pub idle_detected_at: Option<DateTime<Utc>>,
    pub last_synced_at: Option<DateTime<Utc>>,
    pub last_sync: Option<Value>,
    /// When credentials were last replaced (clients made before use the old ones no more).
    pub credentials_changed_at: Option<DateTime<Utc>>,
    /// CML refused the current credentials at its last word on them (Lablet stops trying them
    /// for the login backoff; replacing them clears this).
    pub credentials_refused: bool,
    pub status_changed_at: Option<DateTime<Utc>>,
    pub registered_by: String,
    pub registered_at: DateTime<Utc>,
    pub terminated_by: Option<String>,
    pub terminated_at: Option<DateTime<Utc>>,
}

/// How full a worker is, in percent.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Utilisation {
    pub cpu_percent: f64,
    pub memory_percent: f64,
    pub disk_percent: f64,
    /// Running nodes over the declared `max_nodes` (None when none are declared).
    pub nodes_percent: Option<f64>,
}

fn utilisation(metrics: &WorkerMetrics, capacity: &Capacity) -> Utilisation {
    Utilisation {
        cpu_percent: metrics.cpu_percent,
        memory_percent: metrics.memory_percent,
        disk_percent: metrics.disk_percent,
        nodes_percent: (capacity.max_nodes > 0)
            .then(|| (f64::from(metrics.running_nodes) / f64::from(capacity.max_nodes) * 1000.0).round() / 10.0),
    }
}

/// A field of the current document, or its default when absent.
fn field<T: DeserializeOwned + Default>(current: &Map<String, Value>, name: &str) -> T {
    current
        .get(name)
        .and_then(|value| serde_json::from_value(value.clone()).ok())
        .unwrap_or_default()
}

fn declared_capacity(current: &Map<String, Value>) -> Capacity {
    field(current, "declared_capacity")
}

/// Sets the allocations and every figure that follows from them and the declared capacity.
fn set_allocations(
    patch: &mut Patch,
    current: &Map<String, Value>,
    declared: Capacity,
    allocations: BTreeMap<String, Allocation>,
) -> Result<(), ProjectionError> {
    let allocated = allocations
        .values()
        .fold(Capacity::default(), |sum, allocation| sum.plus(allocation.capacity));
    let ports_in_use: usize = allocations.values().map(|allocation| allocation.ports.len()).sum();
    let range: PortRange = field(current, "port_range");
    patch
        .set("allocated_capacity", allocated)?
        .set("available_capacity", declared.minus(allocated))?
        .set("ports_in_use", ports_in_use)?
        .set("free_ports", range.len().saturating_sub(ports_in_use))?
        .set("allocations", allocations)?;
    Ok(())
}

pub struct WorkersProjector;

impl Projector for WorkersProjector {
    fn collection(&self) -> CollectionSpec {
        WORKERS
    }

    fn kind(&self) -> AggregateKind {
        AggregateKind::Worker
    }

    fn project(
        &self,
        current: Option<&Map<String, Value>>,
        envelope: &EventEnvelope,
    ) -> Result<Patch, ProjectionError> {
        let mut patch = Patch::default();
        let event: WorkerEvent = decode(envelope)?;
        if let WorkerEvent::Registered {
            name,
            region,
            endpoint,
            template_name,
            instance_id,
            declared_capacity,
            status,
            insecure_tls,
            idle_detection_enabled,
            registered_by,
            registered_at,
        } = event
        {
            patch.set_all(&WorkerView {
                id: envelope.aggregate_id().to_owned(),
                name,
                region,
                endpoint,
                template_name,
                instance_id,
                status,
                service_status: ServiceStatus::default(),
                cml_version: None,
                license: None,
                declared_capacity,
                allocated_capacity: Capacity::default(),
                available_capacity: declared_capacity,
                allocations: BTreeMap::new(),
                port_range: PortRange::default(),
                ports_in_use: 0,
                free_ports: PortRange::default().len(),
                metrics: None,
                utilisation: None,
                insecure_tls,
                idle_detection_enabled,
                last_activity_at: None,
                recent_activity: Vec::new(),
                idle_detected_at: None,
                last_synced_at: None,
                last_sync: None,
                credentials_changed_at: None,
                credentials_refused: false,
                status_changed_at: None,
                registered_by,
                registered_at,
                terminated_by: None,
                terminated_at: None,
            })?;
            return Ok(patch);
        }
        let current = existing(current, envelope)?;
        match event {
            WorkerEvent::Registered { .. } => unreachable!("handled above"),
            WorkerEvent::StatusChanged {
                new,
                changed_by,
                changed_at,
                ..
            } => {
                patch.set("status", new)?.set("status_changed_at", changed_at)?;
                if new == WorkerStatus::Terminated {
                    patch
                        .set("terminated_by", changed_by)?
                        .set("terminated_at", changed_at)?;
                }
            }
            WorkerEvent::ServiceStatusChanged { new, .. } => {
                patch.set("service_status", new)?;
            }
            WorkerEvent::MetricsRecorded {
                cml_version,
                license,
                metrics,
                ..
            } => {
                if let Some(version) = cml_version {
                    patch.set("cml_version", version)?;
                }
                if let Some(license) = license {
                    patch.set("license", license)?;
                }
                if let Some(metrics) = metrics {
                    patch
                        .set("metrics", metrics)?
                        .set("utilisation", utilisation(&metrics, &declared_capacity(current)))?;
                }
            }
            WorkerEvent::LabsSynced { counts, synced_at } => {
                patch.set("last_synced_at", synced_at)?.set("last_sync", counts)?;
            }
            WorkerEvent::CredentialsChanged { changed_at, .. } => {
                patch.set("credentials_changed_at", changed_at)?;
                patch.set("credentials_refused", false)?;
            }
            WorkerEvent::CredentialsRefused { .. } => {
                patch.set("credentials_refused", true)?;
            }
            WorkerEvent::CredentialsAccepted { .. } => {
                patch.set("credentials_refused", false)?;
            }
            WorkerEvent::IdleDetectionChanged { enabled, .. } => {
                patch.set("idle_detection_enabled", enabled)?;
            }
            WorkerEvent::ActivityRecorded {
                last_activity_at,
                recent,
            } => {
                patch
                    .set("last_activity_at", last_activity_at)?
                    .set("recent_activity", recent)?;
            }
            WorkerEvent::IdleDetected { detected_at, .. } => {
                patch.set("idle_detected_at", detected_at)?;
            }
            WorkerEvent::CapacityAllocated {
                instance_id,
                capacity,
                ports,
                ..
            } => {
                let mut allocations: BTreeMap<String, Allocation> = field(current, "allocations");
                allocations.insert(instance_id.to_string(), Allocation { capacity, ports });
                set_allocations(&mut patch, current, declared_capacity(current), allocations)?;
            }
            WorkerEvent::CapacityReleased { instance_id, .. } => {
                let mut allocations: BTreeMap<String, Allocation> = field(current, "allocations");
                allocations.remove(&instance_id.to_string());
                set_allocations(&mut patch, current, declared_capacity(current), allocations)?;
            }
            WorkerEvent::CapacityDeclared { new, .. } => {
                patch.set("declared_capacity", new)?;
                set_allocations(&mut patch, current, new, field(current, "allocations"))?;
            }
        }
        Ok(patch)
    }
}
