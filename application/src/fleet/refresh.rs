//! The labs refresh: what labs each worker holds, observed into lab records.
//!
//! For each worker that can take work (at most [`FleetSettings::refresh_concurrency`] at once,
//! each on its own schedule: see [`super::scheduler`]):
//! list its lab ids, fetch each lab and observe it (a discovery, a change, or nothing), remove
//! the records of labs it no longer lists, and record `labs synced` on the worker. A lab that
//! cannot be fetched counts as failed and is kept; a worker that cannot be listed fails alone.

use super::roster::{list_workers, RosterEntry};
use super::FleetSettings;
use crate::commands::Execute;
use crate::context::RequestContext;
use crate::error::AppError;
use crate::mediator::Mediator;
use crate::metrics::Metrics;
use crate::ports::cml::CmlLab;
use crate::ports::read_models::{Filter, ListQuery};
use crate::ports::{CmlConnector, CmlError, EventStore};
use crate::read_model_queries::{GetDocument, ListDocuments, LAB_RECORDS, MAX_PAGE, WORKERS};
use lablet_domain::lab_record::{
    lab_record_id, LabDetails, LabObservation, LabRecord, LabRecordCommand, LabState, RemovalReason,
};
use lablet_domain::values::LabId;
use lablet_domain::worker::{SyncCounts, Worker, WorkerCommand, WorkerStatus};
use lablet_domain::DomainError;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use uuid::Uuid;

const JOB: &str = "labs_refresh";

pub struct LabsRefresh {
    mediator: Arc<Mediator>,
    connector: Arc<dyn CmlConnector>,
    events: Arc<dyn EventStore>,
    metrics: Arc<Metrics>,
    settings: FleetSettings,
    last_manual: Mutex<HashMap<Uuid, Instant>>,
}

fn upstream(worker: &RosterEntry, err: CmlError) -> AppError {
    AppError::Upstream(format!("worker {} ({}): {err}", worker.name, worker.id))
}

/// The lab record observation of what CML answered, or why it cannot be one.
fn observation(worker_id: Uuid, lab: CmlLab) -> Result<Execute<LabRecord>, String> {
    let state: LabState = serde_json::from_value(serde_json::Value::String(lab.state.clone()))
        .map_err(|_| format!("lab {} has an unknown state {:?}", lab.id, lab.state))?;
    let lab_id = LabId::parse(lab.id.as_str()).map_err(|why| format!("lab id {:?} {why}", lab.id))?;
    let id = lab_record_id(worker_id, &lab_id);
    let seen = LabObservation {
        worker_id,
        lab_id,
        details: LabDetails {
            title: lab.title,
            description: lab.description,
            notes: lab.notes,
            owner_username: lab.owner_username,
            owner_fullname: lab.owner_fullname,
            node_count: lab.node_count,
            link_count: lab.link_count,
            groups: lab.groups,
        },
        state,
        cml_created_at: lab.created,
        cml_modified_at: lab.modified,
    };
    Ok(Execute::on(id, LabRecordCommand::Observe(seen)))
}

impl LabsRefresh {
    pub fn new(
        mediator: Arc<Mediator>,
        connector: Arc<dyn CmlConnector>,
        events: Arc<dyn EventStore>,
        metrics: Arc<Metrics>,
        settings: FleetSettings,
    ) -> Self {
        LabsRefresh {
            mediator,
            connector,
            events,
            metrics,
            settings,
            last_manual: Mutex::default(),
        }
    }

    /// Refreshes one worker's labs and counts the outcome in the fleet job metrics; a failure is
    /// logged and counted, never passed on (it concerns this worker alone).
    pub async fn run_one(&self, worker: &RosterEntry, context: &RequestContext) {
        match self.refresh_worker(worker, context).await {
            Ok(counts) => {
                for (outcome, n) in [
                    ("workers_synced", 1),
                    ("labs_created", counts.created),
                    ("labs_updated", counts.updated),
                    ("labs_removed", counts.removed),
                    ("labs_failed", counts.failed),
                ] {
                    self.metrics.count_fleet(JOB, outcome, u64::from(n));
                }
                tracing::debug!(worker = %worker.id, name = %worker.name, ?counts, "labs refreshed");
            }
            Err(err) => {
                self.metrics.count_fleet(JOB, "workers_failed", 1);
                tracing::warn!(worker = %worker.id, name = %worker.name, error = %err, "labs refresh of a worker failed");
            }
        }
    }

    /// Removes the lab records of terminated workers that their termination left behind, and
    /// counts them.
    pub async fn sweep(&self, context: &RequestContext) {
        match self.sweep_terminated(context).await {
            Ok(removed) => self.metrics.count_fleet(JOB, "labs_removed", u64::from(removed)),
            Err(err) => tracing::warn!(error = %err, "labs of terminated workers could not be removed"),
        }
    }

    /// Refreshes one worker now, unless it was refreshed on demand within the throttle gap.
    pub async fn refresh_now(&self, worker_id: Uuid, context: &RequestContext) -> Result<SyncCounts, AppError> {
        self.throttle(worker_id)?;
        let head = self.events.head_position().await?;
        let workers = list_workers(
            &self.mediator,
            &[WorkerStatus::Running, WorkerStatus::Draining],
            Some(head),
            context,
        )
        .await?;
        let Some(worker) = workers.into_iter().find(|w| w.id == worker_id) else {
            let known = GetDocument {
                collection: WORKERS,
                id: worker_id.to_string(),
                min_position: Some(head),
            };
            self.mediator.send(known, context).await?;
            return Err(AppError::Rule(DomainError::RuleViolated(
                "only a running or draining worker can be refreshed".into(),
            )));
        };
        self.refresh_worker(&worker, context).await
    }

    /// Removes the lab records of a terminated worker (reason `worker_terminated`); answers how
    /// many were removed.
    pub async fn remove_labs_of_terminated(&self, worker_id: Uuid, context: &RequestContext) -> Result<u32, AppError> {
        let head = self.events.head_position().await?;
        let labs = self.live_labs(Some(worker_id), head, context).await?;
        self.remove_worker_terminated(labs, context).await
    }

    /// Removes the lab records still listed for any terminated worker: those a terminating
    /// request did not get to (the process stopped between the two, or the worker was moved to
    /// `terminated` through `/status`).
    pub async fn sweep_terminated(&self, context: &RequestContext) -> Result<u32, AppError> {
        let terminated: HashSet<Uuid> = list_workers(&self.mediator, &[WorkerStatus::Terminated], None, context)
            .await?
            .into_iter()
            .map(|worker| worker.id)
            .collect();
        if terminated.is_empty() {
            return Ok(0);
        }
        let head = self.events.head_position().await?;
        let mut labs = self.live_labs(None, head, context).await?;
        labs.retain(|(worker, _)| terminated.contains(worker));
        self.remove_worker_terminated(labs, context).await
    }

    async fn remove_worker_terminated(
        &self,
        labs: Vec<(Uuid, String)>,
        context: &RequestContext,
    ) -> Result<u32, AppError> {
        let mut removed = 0;
        for (worker_id, lab_id) in labs {
            let remove = Execute::<LabRecord>::on(
                lab_record_id(worker_id, &lab_id),
                LabRecordCommand::Remove {
                    reason: RemovalReason::WorkerTerminated,
                },
            );
            match self.mediator.send(remove, context).await {
                Ok(_) => removed += 1,
                // Removed meanwhile: nothing left to do.
                Err(AppError::Rule(_)) => {}
                Err(err) => return Err(err),
            }
        }
        Ok(removed)
    }

    fn throttle(&self, worker_id: Uuid) -> Result<(), AppError> {
        let mut last = self.last_manual.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if let Some(previous) = last.get(&worker_id) {
            let since = now.duration_since(*previous);
            if since < self.settings.manual_refresh_gap {
                let wait = (self.settings.manual_refresh_gap - since).as_secs_f64().ceil() as u64;
                return Err(AppError::TooSoon {
                    detail: format!(
                        "worker {worker_id} was refreshed less than {} s ago",
                        self.settings.manual_refresh_gap.as_secs()
                    ),
                    retry_after_secs: wait.max(1),
                });
            }
        }
        last.insert(worker_id, now);
        Ok(())
    }

    /// The ids of the labs the read model holds for `worker_id`, not removed, as of `position`.
    /// The labs the read model holds as not removed, as `(worker, lab id)`, as of `position`;
    /// only `worker_id`'s when given.
    async fn live_labs(
        &self,
        worker_id: Option<Uuid>,
        position: u64,
        context: &RequestContext,
    ) -> Result<Vec<(Uuid, String)>, AppError> {
        #[derive(serde::Deserialize)]
        struct Live {
            worker_id: Uuid,
            lab_id: String,
        }
        let mut filters = vec![Filter::IsNull { field: "removed_at" }];
        if let Some(worker_id) = worker_id {
            filters.push(Filter::Equals {
                field: "worker_id",
                value: worker_id.to_string(),
            });
        }
        let mut live = Vec::new();
        let mut after_id = None;
        loop {
            let query = ListDocuments {
                collection: LAB_RECORDS,
                query: ListQuery {
                    filters: filters.clone(),
                    limit: MAX_PAGE,
                    after_id: after_id.take(),
                    include_history: false,
                },
                min_position: Some(position),
            };
            let page = self.mediator.send(query, context).await?;
            for item in &page.items {
                let lab: Live = serde_json::from_str(item.get())
                    .map_err(|e| AppError::Internal(format!("a lab record cannot be read: {e}")))?;
                live.push((lab.worker_id, lab.lab_id));
            }
            match page.next_cursor {
                Some(cursor) => after_id = Some(cursor),
                None => return Ok(live),
            }
        }
    }

    /// The ids of `worker_id`'s labs the read model holds as not removed, as of `position`.
    async fn known_labs(
        &self,
        worker_id: Uuid,
        position: u64,
        context: &RequestContext,
    ) -> Result<HashSet<String>, AppError> {
        let live = self.live_labs(Some(worker_id), position, context).await?;
        Ok(live.into_iter().map(|(_, lab_id)| lab_id).collect())
    }

    async fn refresh_worker(&self, worker: &RosterEntry, context: &RequestContext) -> Result<SyncCounts, AppError> {
        let target = worker
            .target()
            .ok_or_else(|| AppError::Rule(DomainError::RuleViolated("the worker has no endpoint".into())))?;
        let client = self.connector.client(&target).await.map_err(|e| upstream(worker, e))?;
        let ids = client.lab_ids().await.map_err(|e| upstream(worker, e))?;
        let head = self.events.head_position().await?;
        let known = self.known_labs(worker.id, head, context).await?;
        let mut counts = SyncCounts {
            labs: ids.len() as u32,
            ..SyncCounts::default()
        };
        let mut present = HashSet::new();
        for lab_id in ids {
            let lab = match client.lab(&lab_id).await {
                Ok(lab) => lab,
                // Deleted between the list and the fetch: it has vanished.
                Err(CmlError::Status { status: 404, .. }) => continue,
                Err(err) => {
                    tracing::warn!(worker = %worker.id, lab = %lab_id, error = %err, "a lab could not be fetched");
                    counts.failed += 1;
                    present.insert(lab_id);
                    continue;
                }
            };
            present.insert(lab_id.clone());
            let observed = match observation(worker.id, lab) {
                Ok(command) => self.mediator.send(command, context).await,
                Err(why) => Err(AppError::Upstream(why)),
            };
            match observed {
                Ok(outcome) if outcome.changed && known.contains(&lab_id) => counts.updated += 1,
                Ok(outcome) if outcome.changed => counts.created += 1,
                Ok(_) => {}
                Err(err) => {
                    tracing::warn!(worker = %worker.id, lab = %lab_id, error = %err, "a lab could not be observed");
                    counts.failed += 1;
                }
            }
        }
        for lab_id in known.difference(&present) {
            let remove = Execute::<LabRecord>::on(
                lab_record_id(worker.id, lab_id),
                LabRecordCommand::Remove {
                    reason: RemovalReason::VanishedFromCml,
                },
            );
            match self.mediator.send(remove, context).await {
                Ok(_) => counts.removed += 1,
                // Removed meanwhile by another refresh: nothing left to do.
                Err(AppError::Rule(_)) => {}
                Err(err) => {
                    tracing::warn!(worker = %worker.id, lab = %lab_id, error = %err, "a vanished lab could not be removed");
                    counts.failed += 1;
                }
            }
        }
        self.mediator
            .send(
                Execute::<Worker>::on(worker.id, WorkerCommand::RecordLabsSynced { counts }),
                context,
            )
            .await?;
        Ok(counts)
    }
}
