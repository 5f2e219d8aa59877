//! Monitoring: each worker's CML service, version, license and figures, and its user activity.
//!
//! The four calls (system information, health, stats, licensing) and the labs list go out
//! together and independently: one failing hides nothing the others say. The service is
//! `available` if any of them answered. The worker aggregate records only a changed status or
//! a figure that moved, so a quiet fleet writes almost no events. For workers with idle
//! detection on, the telemetry's lab, node and user actions (not automation's) are recorded as
//! activity and the worker is checked for idleness.

use super::roster::{list_workers, RosterEntry};
use crate::commands::Execute;
use crate::context::RequestContext;
use crate::error::AppError;
use crate::mediator::Mediator;
use crate::metrics::Metrics;
use crate::ports::cml::{CmlLicensing, CmlTelemetryEvent};
use crate::ports::{CmlClient, CmlConnector};
use crate::workers::RecordActivityAndDetectIdle;
use lablet_domain::worker::{
    counts_as_activity, Activity, License, LicenseType, ServiceObservation, ServiceStatus, Worker, WorkerCommand,
    WorkerMetrics, WorkerStatus,
};
use std::sync::Arc;

const JOB: &str = "monitoring";

/// Workers observed at once: monitoring hundreds of workers opens at most five times this many
/// connections.
pub const MONITORING_CONCURRENCY: usize = 20;

/// The statuses in which a worker's CML is expected to answer.
const MONITORED: [WorkerStatus; 3] = [WorkerStatus::Starting, WorkerStatus::Running, WorkerStatus::Draining];

pub struct Monitoring {
    mediator: Arc<Mediator>,
    connector: Arc<dyn CmlConnector>,
    metrics: Arc<Metrics>,
}

/// The license type a CML product license name stands for.
pub fn license_type(product_license: &str) -> Option<LicenseType> {
    let name = product_license.to_ascii_lowercase();
    if name.contains("personal") {
        Some(LicenseType::Personal)
    } else if name.contains("eval") {
        Some(LicenseType::Evaluation)
    } else if name.contains("enterprise") || name.contains("education") {
        Some(LicenseType::Enterprise)
    } else {
        None
    }
}

fn license(licensing: CmlLicensing) -> License {
    let status = if licensing.authorization_status.is_empty() {
        licensing.registration_status
    } else {
        licensing.authorization_status
    };
    License {
        status,
        license_type: licensing.product_license.as_deref().and_then(license_type),
        expires_at: licensing.expires_at,
    }
}

/// The telemetry events that count as activity, as activities.
pub fn activities(events: Vec<CmlTelemetryEvent>) -> Vec<Activity> {
    events
        .into_iter()
        .filter(|e| counts_as_activity(&e.category, e.user_id.as_deref()))
        .map(|e| Activity {
            at: e.timestamp,
            category: e.category,
            user_id: e.user_id,
            lab_id: e.lab_id,
        })
        .collect()
}

/// Asks the five questions at once; the service is available if any was answered.
async fn observe(client: &dyn CmlClient) -> ServiceObservation {
    let (information, health, stats, licensing, labs) = tokio::join!(
        client.system_information(),
        client.system_health(),
        client.system_stats(),
        client.licensing(),
        client.lab_ids(),
    );
    let answered = information.is_ok() || health.is_ok() || stats.is_ok() || licensing.is_ok() || labs.is_ok();
    // The calls after the first one that needs a login: one accepted login clears a refusal,
    // a refused one (now or within the client's login backoff) sets it.
    let logins = [
        health.as_ref().err(),
        stats.as_ref().err(),
        licensing.as_ref().err(),
        labs.as_ref().err(),
    ];
    let credentials_refused = if health.is_ok() || stats.is_ok() || licensing.is_ok() || labs.is_ok() {
        Some(false)
    } else if logins.iter().flatten().any(|e| e.is_refused_login()) {
        Some(true)
    } else {
        None
    };
    let metrics = match (stats, labs) {
        (Ok(stats), Ok(labs)) => Some(WorkerMetrics {
            cpu_percent: stats.cpu_percent,
            memory_percent: stats.memory_percent,
            disk_percent: stats.disk_percent,
            labs_count: labs.len() as u32,
            running_nodes: stats.running_nodes,
        }),
        _ => None,
    };
    ServiceObservation {
        service_status: if answered {
            ServiceStatus::Available
        } else {
            ServiceStatus::Unavailable
        },
        cml_version: information.ok().map(|i| i.version),
        license: licensing.ok().map(license),
        metrics,
        credentials_refused,
    }
}

impl Monitoring {
    pub fn new(mediator: Arc<Mediator>, connector: Arc<dyn CmlConnector>, metrics: Arc<Metrics>) -> Self {
        Monitoring {
            mediator,
            connector,
            metrics,
        }
    }

    /// The workers whose CML should answer: starting, running or draining, with an endpoint.
    pub async fn roster(&self, context: &RequestContext) -> Result<Vec<RosterEntry>, AppError> {
        let workers = list_workers(&self.mediator, &MONITORED, None, context).await?;
        Ok(workers.into_iter().filter(|w| w.endpoint.is_some()).collect())
    }

    /// Monitors one worker and counts the outcome in the fleet job metrics; a failure is
    /// logged and counted, never passed on (it concerns this worker alone).
    pub async fn run_one(&self, worker: &RosterEntry, context: &RequestContext) {
        match self.monitor_worker(worker, context).await {
            Ok((status, changed)) => {
                let outcome = if status == ServiceStatus::Available {
                    "available"
                } else {
                    "unavailable"
                };
                self.metrics.count_fleet(JOB, outcome, 1);
                self.metrics.count_fleet(JOB, "changed", u64::from(changed));
                tracing::debug!(worker = %worker.id, name = %worker.name, ?status, changed, "worker monitored");
            }
            Err(err) => {
                self.metrics.count_fleet(JOB, "failed", 1);
                tracing::warn!(worker = %worker.id, name = %worker.name, error = %err, "monitoring of a worker failed");
            }
        }
    }

    /// Observes one worker; answers its service status and whether anything was recorded.
    pub async fn monitor_worker(
        &self,
        worker: &RosterEntry,
        context: &RequestContext,
    ) -> Result<(ServiceStatus, bool), AppError> {
        let Some(target) = worker.target() else {
            return Ok((worker.service_status, false));
        };
        let observation = match self.connector.client(&target).await {
            Ok(client) => {
                let observation = observe(client.as_ref()).await;
                (observation, Some(client))
            }
            Err(err) => {
                tracing::warn!(worker = %worker.id, error = %err, "no CML client for the worker");
                let unavailable = ServiceObservation {
                    service_status: ServiceStatus::Unavailable,
                    cml_version: None,
                    license: None,
                    metrics: None,
                    credentials_refused: None,
                };
                (unavailable, None)
            }
        };
        let (observation, client) = observation;
        let status = observation.service_status;
        let recorded = self
            .mediator
            .send(
                Execute::<Worker>::on(worker.id, WorkerCommand::RecordObservation(observation)),
                context,
            )
            .await?;
        let mut changed = recorded.changed;
        if let (Some(client), true, ServiceStatus::Available) = (client, worker.idle_detection_enabled, status) {
            match client.telemetry_events().await {
                Ok(events) => {
                    let request = RecordActivityAndDetectIdle {
                        id: worker.id,
                        activities: activities(events),
                    };
                    changed |= self.mediator.send(request, context).await?.changed;
                }
                Err(err) => tracing::warn!(worker = %worker.id, error = %err, "telemetry could not be read"),
            }
        }
        Ok((status, changed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::{Clock, SystemClock};

    #[test]
    fn product_licenses_map_to_license_types() {
        assert_eq!(license_type("CML_Personal"), Some(LicenseType::Personal));
        assert_eq!(license_type("CML_Personal40"), Some(LicenseType::Personal));
        assert_eq!(license_type("CML_Enterprise"), Some(LicenseType::Enterprise));
        assert_eq!(license_type("CML_Education"), Some(LicenseType::Enterprise));
        assert_eq!(license_type("CML_Eval"), Some(LicenseType::Evaluation));
        assert_eq!(license_type("something"), None);
    }

    #[test]
    fn only_people_acting_on_labs_and_nodes_count_as_activity() {
        let event = |category: &str, user: &str| CmlTelemetryEvent {
            category: category.into(),
            timestamp: SystemClock.now(),
            user_id: Some(user.into()),
            lab_id: None,
        };
        let kept = activities(vec![
            event("start_lab", "8f3c0a52-1111-4c8e-9d5e-000000000001"),
            event("start_lab", "00000000-0000-4000-a000-000000000001"),
            event("system_stats", "8f3c0a52-1111-4c8e-9d5e-000000000001"),
            event("user_activity", "8f3c0a52-1111-4c8e-9d5e-000000000002"),
        ]);
        assert_eq!(kept.len(), 2);
        assert_eq!(kept[1].category, "user_activity");
    }
}
