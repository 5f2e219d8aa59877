//! Monitoring: each worker's CML service, version, license and figures, and its user activity.
//!
//! The four calls (system information, health, stats, licensing) and the labs list go out
//! together and independently: one failing hides nothing the others say. The service is
//! `available` if any of them answered. The worker aggregate records only a changed status or
//! a figure that moved, so a quiet fleet writes almost no events. For workers with idle
//! detection on, the telemetry's lab, node and user actions (not automation's) are recorded as
//! activity and the worker is checked for idleness.

use super::roster::{list_workers, RosterEntry};
use crate::context::RequestContext;
use crate::error::AppError;
use crate::mediator::Mediator;
use crate::metrics::Metrics;
use crate::ports::cml::{CmlLicensing, CmlTelemetryEvent};
use crate::ports::{CmlClient, CmlConnector};
use crate::workers::{RecordActivityAndDetectIdle, RecordWorkerObservation};
use chrono::Utc;
use lablet_domain::worker::{
    counts_as_activity, Activity, License, LicenseType, ServiceObservation, ServiceStatus, WorkerMetrics, WorkerStatus,
};
use serde::Serialize;
use std::sync::Arc;

const JOB: &str = "monitoring";

/// Workers observed at once: a pass over hundreds of workers opens at most five times this many
/// connections.
pub const MONITORING_CONCURRENCY: usize = 20;

/// The statuses in which a worker's CML is expected to answer.
const MONITORED: [WorkerStatus; 3] = [WorkerStatus::Starting, WorkerStatus::Running, WorkerStatus::Draining];

/// What one monitoring pass over the fleet did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct MonitoringRun {
    pub workers: u32,
    pub available: u32,
    pub unavailable: u32,
    /// Workers whose pass appended events.
    pub changed: u32,
    pub failed: u32,
}

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
        observed_at: Utc::now(),
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

    /// One pass over every worker whose CML should answer.
    pub async fn run_all(self: &Arc<Self>) -> Result<MonitoringRun, AppError> {
        let context = RequestContext::system();
        let workers = list_workers(&self.mediator, &MONITORED, None, &context).await?;
        let permits = Arc::new(tokio::sync::Semaphore::new(MONITORING_CONCURRENCY));
        let mut tasks = tokio::task::JoinSet::new();
        for worker in workers.into_iter().filter(|w| w.endpoint.is_some()) {
            let (job, permits, context) = (self.clone(), permits.clone(), context.clone());
            tasks.spawn(async move {
                let _permit = permits.acquire_owned().await;
                let result = job.monitor_worker(&worker, &context).await;
                (worker, result)
            });
        }
        let mut run = MonitoringRun::default();
        while let Some(joined) = tasks.join_next().await {
            run.workers += 1;
            match joined {
                Ok((_, Ok((status, changed)))) => {
                    if status == ServiceStatus::Available {
                        run.available += 1;
                    } else {
                        run.unavailable += 1;
                    }
                    run.changed += u32::from(changed);
                }
                Ok((worker, Err(err))) => {
                    run.failed += 1;
                    tracing::warn!(worker = %worker.id, name = %worker.name, error = %err, "monitoring of a worker failed");
                }
                Err(panicked) => {
                    run.failed += 1;
                    tracing::error!(error = %panicked, "monitoring task ended abnormally");
                }
            }
        }
        for (outcome, n) in [
            ("available", run.available),
            ("unavailable", run.unavailable),
            ("changed", run.changed),
            ("failed", run.failed),
        ] {
            self.metrics.count_fleet(JOB, outcome, u64::from(n));
        }
        tracing::info!(
            workers = run.workers,
            available = run.available,
            unavailable = run.unavailable,
            changed = run.changed,
            failed = run.failed,
            "monitoring pass finished"
        );
        Ok(run)
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
                    observed_at: Utc::now(),
                };
                (unavailable, None)
            }
        };
        let (observation, client) = observation;
        let status = observation.service_status;
        let recorded = self
            .mediator
            .send(
                RecordWorkerObservation {
                    id: worker.id,
                    observation,
                },
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
            timestamp: Utc::now(),
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
