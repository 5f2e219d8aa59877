//! Worker state, decisions and the fold of its events.

use super::allocation::{Allocation, Allocations, PortRange};
use super::commands::{Registration, ServiceObservation, WorkerCommand};
use super::events::{Activity, Capacity, License, SyncCounts, WorkerEvent, WorkerMetrics};
use super::idle::{IdlePolicy, IdleStatus, RECENT_ACTIVITY_LIMIT};
use super::state::{takes_work, ServiceStatus, WorkerStatus};
use crate::kernel::{Aggregate, DecisionContext, DomainError};
use chrono::{DateTime, Utc};

/// A utilisation percentage must move by more than this many points to be recorded again.
pub const PERCENT_POINTS_THRESHOLD: f64 = 5.0;
/// A count must move by more than this fraction of its last value to be recorded again.
pub const COUNT_FRACTION_THRESHOLD: f64 = 0.05;

#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Worker {
    pub exists: bool,
    pub name: String,
    pub region: String,
    pub endpoint: Option<String>,
    pub template_name: Option<String>,
    pub instance_id: Option<String>,
    pub declared_capacity: Capacity,
    /// Held by the lablet instances placed on the worker (the sum of `allocations`).
    pub allocated_capacity: Capacity,
    /// What each lablet instance placed here holds.
    pub allocations: Allocations,
    /// The ports it hands out.
    pub port_range: PortRange,
    pub status: Option<WorkerStatus>,
    pub service_status: ServiceStatus,
    pub cml_version: Option<String>,
    pub license: Option<License>,
    pub metrics: Option<WorkerMetrics>,
    pub insecure_tls: bool,
    pub idle_detection_enabled: bool,
    pub last_activity_at: Option<DateTime<Utc>>,
    /// Newest first.
    pub recent_activity: Vec<Activity>,
    pub registered_at: Option<DateTime<Utc>>,
    /// When the worker last came back to running after starting again.
    pub resumed_at: Option<DateTime<Utc>>,
    /// The quiet period (its start) already reported idle.
    pub idle_reported_for: Option<DateTime<Utc>>,
    pub last_synced_at: Option<DateTime<Utc>>,
    pub credentials_changed_at: Option<DateTime<Utc>>,
    /// CML refused the current credentials at its last word on them.
    pub credentials_refused: bool,
    pub terminated_at: Option<DateTime<Utc>>,
}

impl Worker {
    /// Whether new work may be placed here: running, CML available and an endpoint known.
    pub fn can_take_work(&self) -> bool {
        self.status
            .is_some_and(|status| takes_work(status, self.service_status, self.endpoint.is_some()))
    }

    /// Declared minus allocated capacity, never below zero.
    pub fn available_capacity(&self) -> Capacity {
        self.declared_capacity.minus(self.allocated_capacity)
    }

    /// Whether the worker is idle at `now` under `policy`, and why.
    pub fn idle_status(&self, now: DateTime<Utc>, policy: IdlePolicy) -> IdleStatus {
        let quiet_since = [self.last_activity_at, self.resumed_at, self.registered_at]
            .into_iter()
            .flatten()
            .max();
        let quiet_for = quiet_since.map_or(chrono::Duration::zero(), |since| {
            (now - since).max(chrono::Duration::zero())
        });
        let idle_minutes = quiet_for.num_minutes();
        let snoozed_until = self
            .resumed_at
            .map(|resumed| resumed + policy.snooze_after_resume)
            .filter(|until| *until > now);
        let reason = if !self.idle_detection_enabled {
            "idle detection is off".to_owned()
        } else if self.status != Some(WorkerStatus::Running) {
            format!(
                "the worker is {}, not running",
                self.status.map_or("unknown", |s| s.as_str())
            )
        } else if let Some(until) = snoozed_until {
            format!("snoozed after a resume until {}", until.to_rfc3339())
        } else if quiet_for < policy.timeout {
            format!(
                "active {idle_minutes} minutes ago (timeout {})",
                policy.timeout.num_minutes()
            )
        } else {
            format!(
                "no activity for {idle_minutes} minutes (timeout {})",
                policy.timeout.num_minutes()
            )
        };
        let idle = self.idle_detection_enabled
            && self.status == Some(WorkerStatus::Running)
            && snoozed_until.is_none()
            && quiet_since.is_some()
            && quiet_for >= policy.timeout;
        IdleStatus {
            idle,
            reason,
            idle_detection_enabled: self.idle_detection_enabled,
            last_activity_at: self.last_activity_at,
            quiet_since,
            idle_minutes,
            timeout_minutes: policy.timeout.num_minutes(),
            snoozed_until,
        }
    }

    fn require_exists(&self) -> Result<(), DomainError> {
        if self.exists {
            Ok(())
        } else {
            Err(DomainError::NotFound {
                aggregate: Self::KIND.name(),
            })
        }
    }

    fn require_not_terminated(&self) -> Result<(), DomainError> {
        self.require_exists()?;
        if self.status == Some(WorkerStatus::Terminated) {
            return Err(DomainError::RuleViolated("the worker is terminated".into()));
        }
        Ok(())
    }

    fn register(
        &self,
        registration: &Registration,
        context: &DecisionContext,
    ) -> Result<Vec<WorkerEvent>, DomainError> {
        if self.exists {
            return Err(DomainError::AlreadyExists {
                aggregate: Self::KIND.name(),
            });
        }
        // A server that already exists (it has an endpoint) runs; one without waits to be made.
        let status = if registration.endpoint.is_some() {
            WorkerStatus::Running
        } else {
            WorkerStatus::Pending
        };
        Ok(vec![WorkerEvent::Registered {
            name: registration.name.trim().to_owned(),
            region: registration.region.trim().to_owned(),
            endpoint: registration.endpoint.as_ref().map(|e| e.as_str().to_owned()),
            template_name: registration.template_name.as_ref().map(ToString::to_string),
            instance_id: registration.instance_id.as_ref().map(ToString::to_string),
            declared_capacity: registration.declared_capacity,
            status,
            insecure_tls: registration.insecure_tls,
            idle_detection_enabled: true,
            registered_by: context.actor.clone(),
            registered_at: context.now,
        }])
    }

    fn observe(&self, seen: &ServiceObservation, observed_at: DateTime<Utc>) -> Vec<WorkerEvent> {
        let mut events = Vec::new();
        if seen.service_status != self.service_status {
            events.push(WorkerEvent::ServiceStatusChanged {
                previous: self.service_status,
                new: seen.service_status,
                changed_at: observed_at,
            });
        }
        let version_changed = seen.cml_version.is_some() && seen.cml_version != self.cml_version;
        let license_changed = seen.license.is_some() && seen.license != self.license;
        let metrics_moved = match (&self.metrics, &seen.metrics) {
            (_, None) => false,
            (None, Some(_)) => true,
            (Some(old), Some(new)) => figures_moved(old, new),
        };
        match seen.credentials_refused {
            Some(true) if !self.credentials_refused => events.push(WorkerEvent::CredentialsRefused {
                refused_at: observed_at,
            }),
            Some(false) if self.credentials_refused => events.push(WorkerEvent::CredentialsAccepted {
                accepted_at: observed_at,
            }),
            _ => {}
        }
        let status_changed = events
            .iter()
            .any(|e| matches!(e, WorkerEvent::ServiceStatusChanged { .. }));
        if version_changed || license_changed || metrics_moved || status_changed {
            events.push(WorkerEvent::MetricsRecorded {
                cml_version: seen.cml_version.clone(),
                license: seen.license.clone(),
                metrics: seen.metrics,
                recorded_at: observed_at,
            });
        }
        events
    }

    fn record_activity(&self, activities: &[Activity]) -> Vec<WorkerEvent> {
        let newer: Vec<&Activity> = activities
            .iter()
            .filter(|a| self.last_activity_at.is_none_or(|last| a.at > last))
            .collect();
        let Some(last_activity_at) = newer.iter().map(|a| a.at).max() else {
            return Vec::new();
        };
        let mut recent: Vec<Activity> = newer.into_iter().cloned().collect();
        recent.extend(self.recent_activity.iter().cloned());
        recent.sort_by_key(|a| std::cmp::Reverse(a.at));
        recent.dedup();
        recent.truncate(RECENT_ACTIVITY_LIMIT);
        vec![WorkerEvent::ActivityRecorded {
            last_activity_at,
            recent,
        }]
    }

    fn detect_idle(&self, policy: IdlePolicy, now: DateTime<Utc>) -> Vec<WorkerEvent> {
        let status = self.idle_status(now, policy);
        match status.quiet_since {
            Some(since) if status.idle && self.idle_reported_for != Some(since) => vec![WorkerEvent::IdleDetected {
                idle_since: since,
                idle_minutes: status.idle_minutes,
                detected_at: now,
            }],
            _ => Vec::new(),
        }
    }
}

/// Whether a figure moved enough to be worth an event: a utilisation by more than
/// [`PERCENT_POINTS_THRESHOLD`] points, a count by more than [`COUNT_FRACTION_THRESHOLD`] of its
/// last value.
pub fn figures_moved(old: &WorkerMetrics, new: &WorkerMetrics) -> bool {
    let percent = |a: f64, b: f64| (a - b).abs() > PERCENT_POINTS_THRESHOLD;
    let count = |a: u32, b: u32| f64::from(a.abs_diff(b)) > COUNT_FRACTION_THRESHOLD * f64::from(a.max(1));
    percent(old.cpu_percent, new.cpu_percent)
        || percent(old.memory_percent, new.memory_percent)
        || percent(old.disk_percent, new.disk_percent)
        || count(old.labs_count, new.labs_count)
        || count(old.running_nodes, new.running_nodes)
}

impl Aggregate for Worker {
    const KIND: crate::AggregateKind = crate::AggregateKind::Worker;
    type Event = WorkerEvent;
    type Command = WorkerCommand;

    fn decide(&self, command: &WorkerCommand, context: &DecisionContext) -> Result<Vec<WorkerEvent>, DomainError> {
        let at = context.now;
        if !matches!(command, WorkerCommand::Register(_) | WorkerCommand::ChangeStatus { .. }) {
            self.require_not_terminated()?;
        }
        match command {
            WorkerCommand::Register(registration) => self.register(registration, context),
            WorkerCommand::ChangeStatus { to, reason } => {
                self.require_exists()?;
                let from = self.status.unwrap_or(WorkerStatus::Pending);
                if from == *to {
                    return Ok(Vec::new());
                }
                if !from.can_move_to(*to) {
                    return Err(DomainError::InvalidTransition {
                        aggregate: Self::KIND.name(),
                        from: from.to_string(),
                        to: to.to_string(),
                    });
                }
                Ok(vec![WorkerEvent::StatusChanged {
                    previous: from,
                    new: *to,
                    reason: reason.as_str().to_owned(),
                    changed_by: context.actor.clone(),
                    changed_at: at,
                }])
            }
            WorkerCommand::RecordObservation(seen) => Ok(self.observe(seen, at)),
            WorkerCommand::RecordLabsSynced { counts } => Ok(vec![WorkerEvent::LabsSynced {
                counts: *counts,
                synced_at: at,
            }]),
            WorkerCommand::RecordCredentialsChanged => Ok(vec![WorkerEvent::CredentialsChanged {
                changed_by: context.actor.clone(),
                changed_at: at,
            }]),
            WorkerCommand::SetIdleDetection { enabled } => {
                if *enabled == self.idle_detection_enabled {
                    return Ok(Vec::new());
                }
                Ok(vec![WorkerEvent::IdleDetectionChanged {
                    enabled: *enabled,
                    changed_by: context.actor.clone(),
                    changed_at: at,
                }])
            }
            WorkerCommand::RecordActivity { activities } => Ok(self.record_activity(activities)),
            WorkerCommand::DetectIdle { policy } => Ok(self.detect_idle(*policy, at)),
            WorkerCommand::Allocate(request) => self.allocate(request, at),
            WorkerCommand::AllocateAll(requests) => Ok(self.allocate_all(requests, at)),
            WorkerCommand::Release { instance_id, reason } => Ok(self.release(*instance_id, reason.as_str(), at)),
            WorkerCommand::DeclareCapacity { capacity } => {
                if *capacity == self.declared_capacity {
                    return Ok(Vec::new());
                }
                Ok(vec![WorkerEvent::CapacityDeclared {
                    previous: self.declared_capacity,
                    new: *capacity,
                    declared_by: context.actor.clone(),
                    declared_at: at,
                }])
            }
        }
    }

    fn apply(&mut self, event: &WorkerEvent) {
        match event {
            WorkerEvent::Registered {
                name,
                region,
                endpoint,
                template_name,
                instance_id,
                declared_capacity,
                status,
                insecure_tls,
                idle_detection_enabled,
                registered_at,
                ..
            } => {
                self.exists = true;
                self.name = name.clone();
                self.region = region.clone();
                self.endpoint = endpoint.clone();
                self.template_name = template_name.clone();
                self.instance_id = instance_id.clone();
                self.declared_capacity = *declared_capacity;
                self.status = Some(*status);
                self.insecure_tls = *insecure_tls;
                self.idle_detection_enabled = *idle_detection_enabled;
                self.registered_at = Some(*registered_at);
            }
            WorkerEvent::StatusChanged {
                previous,
                new,
                changed_at,
                ..
            } => {
                if *previous == WorkerStatus::Starting && *new == WorkerStatus::Running {
                    self.resumed_at = Some(*changed_at);
                }
                if *new == WorkerStatus::Terminated {
                    self.terminated_at = Some(*changed_at);
                }
                self.status = Some(*new);
            }
            WorkerEvent::ServiceStatusChanged { new, .. } => self.service_status = *new,
            WorkerEvent::MetricsRecorded {
                cml_version,
                license,
                metrics,
                ..
            } => {
                if cml_version.is_some() {
                    self.cml_version = cml_version.clone();
                }
                if license.is_some() {
                    self.license = license.clone();
                }
                if metrics.is_some() {
                    self.metrics = *metrics;
                }
            }
            WorkerEvent::LabsSynced { synced_at, .. } => self.last_synced_at = Some(*synced_at),
            WorkerEvent::CredentialsChanged { changed_at, .. } => {
                self.credentials_changed_at = Some(*changed_at);
                // New credentials are untried until CML says otherwise.
                self.credentials_refused = false;
            }
            WorkerEvent::CredentialsRefused { .. } => self.credentials_refused = true,
            WorkerEvent::CredentialsAccepted { .. } => self.credentials_refused = false,
            WorkerEvent::IdleDetectionChanged { enabled, .. } => self.idle_detection_enabled = *enabled,
            WorkerEvent::ActivityRecorded {
                last_activity_at,
                recent,
            } => {
                self.last_activity_at = Some(*last_activity_at);
                self.recent_activity = recent.clone();
            }
            WorkerEvent::IdleDetected { idle_since, .. } => self.idle_reported_for = Some(*idle_since),
            WorkerEvent::CapacityAllocated {
                instance_id,
                capacity,
                ports,
                ..
            } => {
                self.allocated_capacity = self.allocated_capacity.plus(*capacity);
                let allocation = Allocation {
                    capacity: *capacity,
                    ports: ports.clone(),
                };
                self.allocations.add(*instance_id, allocation);
            }
            WorkerEvent::CapacityReleased {
                instance_id, capacity, ..
            } => {
                self.allocated_capacity = self.allocated_capacity.minus(*capacity);
                self.allocations.remove(*instance_id);
            }
            WorkerEvent::CapacityDeclared { new, .. } => self.declared_capacity = *new,
        }
    }
}

/// The counts of a sync, for callers that build them up.
impl SyncCounts {
    pub fn changed_anything(&self) -> bool {
        self.created + self.updated + self.removed > 0
    }
}
