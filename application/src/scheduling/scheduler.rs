//! The scheduler: a singleton job (`scheduler`) that, every pass, takes the pending instances
//! whose timeslot starts within the lead time (35 minutes by default), oldest start first, and
//! for each:
//!
//! 1. expires it (terminated, reason `expired`) when it is still pending `expire_after` past
//!    its start;
//! 2. places it ([`place`]) on a snapshot of the fleet, read once per pass and updated with
//!    every allocation the pass makes;
//! 3. allocates its capacity and ports on the chosen worker (a worker command, decided on the
//!    worker's own stream, so a stale snapshot is refused there, never over-allocated);
//! 4. records it `scheduled` there with its ports and the decision's summary. If that step
//!    fails (the instance was terminated meanwhile), the allocation is released again: the
//!    compensation of this two-step process.
//!
//! An instance nothing can take stays pending; `capacity_requested` records what it needs and
//! why nothing fits (once per distinct reason), for the resource controller. A running
//! instance is never moved. Each pass also releases the allocations of instances that ended
//! (terminated), and any allocation whose instance was scheduled elsewhere, so capacity and
//! ports return to the fleet.

use super::fleet_view::{self, DefinitionEntry, PendingInstance, WorkerEntry};
use crate::commands::Execute;
use crate::context::RequestContext;
use crate::error::AppError;
use crate::mediator::Mediator;
use crate::ports::{Clock, LeaseFence};
use crate::read_model_queries::{GetDocuments, LABLET_INSTANCES};
use crate::repository::AggregateRepository;
use crate::shutdown::stopped;
use chrono::{DateTime, Utc};
use lablet_domain::lablet_instance::{InstanceState, LabletInstance, LabletInstanceCommand, PlacementSummary};
use lablet_domain::placement::{place, Demand, WorkerSnapshot};
use lablet_domain::values::{FreeText, Name};
use lablet_domain::worker::{AllocationRequest, Capacity, Worker, WorkerCommand};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinSet;
use uuid::Uuid;

/// The singleton role (lease) the scheduler runs under.
pub const SCHEDULER: &str = "scheduler";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SchedulerSettings {
    /// How often a pass runs.
    pub every: Duration,
    /// How long before its timeslot starts an instance is placed.
    pub lead_time: Duration,
    /// How long after its start a still-pending instance is expired.
    pub expire_after: Duration,
}

impl Default for SchedulerSettings {
    fn default() -> Self {
        SchedulerSettings {
            every: Duration::from_secs(5),
            lead_time: Duration::from_secs(35 * 60),
            expire_after: Duration::from_secs(5 * 60),
        }
    }
}

/// What one pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SchedulerPass {
    pub placed: usize,
    /// Pending with no worker that can take them (capacity requested).
    pub unplaced: usize,
    pub expired: usize,
    /// Allocations of ended instances given back.
    pub released: usize,
}

pub struct Scheduler {
    mediator: Arc<Mediator>,
    repository: Arc<AggregateRepository>,
    clock: Arc<dyn Clock>,
    settings: SchedulerSettings,
}

/// `at` plus `duration` (the latest instant for a duration beyond it).
pub(crate) fn after(at: DateTime<Utc>, duration: Duration) -> DateTime<Utc> {
    at + chrono::Duration::from_std(duration).unwrap_or(chrono::TimeDelta::MAX)
}

/// `at` minus `duration` (the earliest instant for a duration beyond it).
pub(crate) fn before(at: DateTime<Utc>, duration: Duration) -> DateTime<Utc> {
    at - chrono::Duration::from_std(duration).unwrap_or(chrono::TimeDelta::MAX)
}

/// What an instance of a definition version needs, and its port names.
fn demand_of(definition: &DefinitionEntry, version: &str) -> Result<(Demand, Vec<Name<64>>), String> {
    let entry = definition
        .versions
        .iter()
        .find(|v| v.version == version)
        .ok_or_else(|| format!("{} has no version {version}", definition.name))?;
    if !matches!(entry.status.as_str(), "active" | "deprecated") {
        return Err(format!("version {version} of {} is {}", definition.name, entry.status));
    }
    let content = &entry.content;
    let names = content.ports.iter().map(|p| p.name.clone()).collect::<Vec<_>>();
    let demand = Demand {
        capacity: Capacity {
            cpu_cores: content.resources.cpu_cores,
            memory_gb: content.resources.memory_gb,
            storage_gb: content.resources.storage_gb,
            max_nodes: content.node_count,
        },
        license_affinity: content.license_affinity.clone(),
        ports: names.len(),
    };
    Ok((demand, names))
}

impl Scheduler {
    pub fn new(
        mediator: Arc<Mediator>,
        repository: Arc<AggregateRepository>,
        clock: Arc<dyn Clock>,
        settings: SchedulerSettings,
    ) -> Self {
        Scheduler {
            mediator,
            repository,
            clock,
            settings,
        }
    }

    /// Runs a pass every `every` until `stop` turns true, its commands carrying `fence`.
    pub async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>, fence: LeaseFence) {
        loop {
            if let Err(err) = self.pass(&RequestContext::system_under(&fence)).await {
                tracing::warn!(error = %err, "the scheduler pass failed; trying again next time");
            }
            tokio::select! {
                () = self.clock.sleep(self.settings.every) => {}
                () = stopped(&mut stop) => return,
            }
        }
    }

    /// One pass: releases what ended instances hold, then decides for every due pending
    /// instance on the fleet snapshot (placed, deferred or expired), allocates each worker's
    /// share in one command per worker, and records the instances scheduled; the commands of
    /// one step run a few at a time, so the log commits them in groups.
    pub async fn pass(&self, context: &RequestContext) -> Result<SchedulerPass, AppError> {
        let now = self.clock.now();
        let mut report = SchedulerPass::default();
        let workers = fleet_view::workers(&self.mediator, context).await?;
        report.released = self.release_ended(&workers, context).await?;
        let mut fleet: Vec<WorkerSnapshot> = workers.iter().map(WorkerEntry::snapshot).collect();
        let mut due: Vec<PendingInstance> = fleet_view::pending_instances(&self.mediator, context)
            .await?
            .into_iter()
            .filter(|i| now >= before(i.timeslot_start, self.settings.lead_time))
            .collect();
        due.sort_by_key(|i| (i.timeslot_start, i.id));
        let mut definitions: HashMap<Uuid, Option<DefinitionEntry>> = HashMap::new();
        let mut shares: BTreeMap<Uuid, Vec<Placed>> = BTreeMap::new();
        let mut later: Vec<(Uuid, LabletInstanceCommand)> = Vec::new();
        for instance in due {
            if now >= after(instance.timeslot_start, self.settings.expire_after) {
                later.push((instance.id, self.expiry()?));
                report.expired += 1;
                continue;
            }
            if let std::collections::hash_map::Entry::Vacant(entry) = definitions.entry(instance.definition_id) {
                entry.insert(fleet_view::definition(&self.mediator, instance.definition_id, context).await?);
            }
            let demand = match &definitions[&instance.definition_id] {
                None => Err("its definition does not exist".to_owned()),
                Some(definition) => demand_of(definition, &instance.definition_version),
            };
            let (demand, port_names) = match demand {
                Ok(found) => found,
                Err(reason) => {
                    later.push((
                        instance.id,
                        capacity_request(reason, Capacity::default(), Default::default()),
                    ));
                    report.unplaced += 1;
                    continue;
                }
            };
            let decision = place(&demand, &fleet);
            let summary = decision.summary();
            let Some(worker_id) = decision.chosen else {
                later.push((
                    instance.id,
                    capacity_request(decision.why_none(), demand.capacity, summary),
                ));
                report.unplaced += 1;
                continue;
            };
            if let Some(taken) = fleet.iter_mut().find(|w| w.id == worker_id) {
                taken.take(&demand);
            }
            let request = AllocationRequest {
                instance_id: instance.id,
                capacity: demand.capacity,
                license_affinity: demand.license_affinity.clone(),
                port_names,
            };
            shares.entry(worker_id).or_default().push(Placed { request, summary });
        }
        let allocations: Vec<(Uuid, Vec<Placed>)> = shares.into_iter().collect();
        let allocated = self.allocate_shares(allocations, context).await?;
        report.placed = self.schedule(allocated, context).await?;
        self.send_all(later, context).await?;
        Ok(report)
    }

    /// Allocates each worker's share (one command per worker); answers, per worker, what it
    /// took, with the ports it gave.
    async fn allocate_shares(
        &self,
        shares: Vec<(Uuid, Vec<Placed>)>,
        context: &RequestContext,
    ) -> Result<Vec<(Uuid, Placed, BTreeMap<String, u16>)>, AppError> {
        let mut taken = Vec::new();
        for chunk in shares.chunks(IN_FLIGHT) {
            let mut tasks = JoinSet::new();
            for (worker_id, placed) in chunk.iter().cloned() {
                let (mediator, repository, context) = (self.mediator.clone(), self.repository.clone(), context.clone());
                tasks.spawn(async move {
                    let requests = placed.iter().map(|p| p.request.clone()).collect();
                    let command = Execute::<Worker>::on(worker_id, WorkerCommand::AllocateAll(requests));
                    match mediator.send(command, &context).await {
                        Ok(_) => {}
                        // The worker kept moving under another writer: the next pass tries again.
                        Err(err @ (AppError::Rule(_) | AppError::Conflict(_))) => {
                            tracing::info!(worker = %worker_id, error = %err, "the worker did not take its share");
                            return Ok(Vec::new());
                        }
                        Err(err) => return Err(err),
                    }
                    let worker = repository.load::<Worker>(worker_id).await?.state;
                    Ok(placed
                        .into_iter()
                        .filter_map(|p| {
                            let ports = worker
                                .allocations
                                .by_instance
                                .get(&p.request.instance_id)?
                                .ports
                                .clone();
                            Some((worker_id, p, ports))
                        })
                        .collect())
                });
            }
            while let Some(done) = tasks.join_next().await {
                let share: Result<Vec<_>, AppError> = done.map_err(|e| AppError::Internal(e.to_string()))?;
                taken.extend(share?);
            }
        }
        Ok(taken)
    }

    /// Records each allocated instance scheduled; gives back the allocation of one that cannot
    /// be (the compensation). Answers how many were scheduled.
    async fn schedule(
        &self,
        allocated: Vec<(Uuid, Placed, BTreeMap<String, u16>)>,
        context: &RequestContext,
    ) -> Result<usize, AppError> {
        let mut scheduled = 0;
        for chunk in allocated.chunks(IN_FLIGHT) {
            let mut tasks = JoinSet::new();
            for (worker_id, placed, ports) in chunk.iter().cloned() {
                let (mediator, repository, context) = (self.mediator.clone(), self.repository.clone(), context.clone());
                tasks.spawn(async move {
                    let instance_id = placed.request.instance_id;
                    let command = LabletInstanceCommand::Place {
                        worker_id,
                        ports,
                        placement: placed.summary,
                    };
                    let Err(err) = mediator.send(Execute::<LabletInstance>::on(instance_id, command), &context).await
                    else {
                        return Ok(true);
                    };
                    // Another scheduler placed it on this very worker first (its allocation is
                    // the one found again): it is that placement's, not ours to give back.
                    if repository.load::<LabletInstance>(instance_id).await?.state.worker_id == Some(worker_id) {
                        return Ok(false);
                    }
                    // Compensation: the instance did not take the allocation, so give it back.
                    // Should that fail too, the next pass finds the stray allocation.
                    tracing::warn!(instance = %instance_id, error = %err, "scheduling failed; releasing its allocation");
                    let reason = format!("placement abandoned: {err}");
                    if let Err(err) = release(&mediator, worker_id, instance_id, &reason, &context).await {
                        tracing::warn!(instance = %instance_id, error = %err, "the allocation stays until the next pass");
                    }
                    Ok::<bool, AppError>(false)
                });
            }
            while let Some(done) = tasks.join_next().await {
                if done.map_err(|e| AppError::Internal(e.to_string()))?? {
                    scheduled += 1;
                }
            }
        }
        Ok(scheduled)
    }

    /// Sends capacity requests and expiries; one whose instance left pending meanwhile is
    /// simply not needed.
    async fn send_all(
        &self,
        commands: Vec<(Uuid, LabletInstanceCommand)>,
        context: &RequestContext,
    ) -> Result<(), AppError> {
        for chunk in commands.chunks(IN_FLIGHT) {
            let mut tasks = JoinSet::new();
            for (instance_id, command) in chunk.iter().cloned() {
                let (mediator, context) = (self.mediator.clone(), context.clone());
                tasks.spawn(async move {
                    match mediator
                        .send(Execute::<LabletInstance>::on(instance_id, command), &context)
                        .await
                    {
                        Ok(_) | Err(AppError::Rule(_)) => Ok(()),
                        Err(err) => Err(err),
                    }
                });
            }
            while let Some(done) = tasks.join_next().await {
                done.map_err(|e| AppError::Internal(e.to_string()))??;
            }
        }
        Ok(())
    }

    /// The command that expires an instance still pending past its start.
    fn expiry(&self) -> Result<LabletInstanceCommand, AppError> {
        let minutes = self.settings.expire_after.as_secs() / 60;
        let reason = FreeText::parse(format!(
            "expired: still pending {minutes} minutes after its timeslot started"
        ))
        .map_err(AppError::Internal)?;
        Ok(LabletInstanceCommand::Transition {
            to: InstanceState::Terminated,
            reason: Some(reason),
            worker_id: None,
        })
    }

    /// Gives back what terminated instances still hold, and allocations whose instance was
    /// scheduled on another worker (left by a compensation that failed, or by a scheduler that
    /// lost a race); answers how many allocations. The instances are read in one lookup.
    async fn release_ended(&self, workers: &[WorkerEntry], context: &RequestContext) -> Result<usize, AppError> {
        let ids: Vec<String> = workers
            .iter()
            .flat_map(|w| w.allocations.keys().map(Uuid::to_string))
            .collect();
        if ids.is_empty() {
            return Ok(0);
        }
        let query = GetDocuments {
            collection: LABLET_INSTANCES,
            ids,
        };
        let instances = self.mediator.send(query, context).await?;
        let mut released = 0;
        for worker in workers {
            for instance_id in worker.allocations.keys() {
                let Some(instance) = instances.get(&instance_id.to_string()) else {
                    continue;
                };
                let state = instance.body.get("state").and_then(|v| v.as_str());
                let placed_on = instance
                    .body
                    .get("worker_id")
                    .and_then(|v| v.as_str())
                    .and_then(|id| id.parse::<Uuid>().ok());
                let reason = if state == Some("terminated") {
                    "the instance ended"
                } else if placed_on.is_some_and(|placed| placed != worker.id) {
                    "the instance was scheduled on another worker"
                } else {
                    continue;
                };
                match release(&self.mediator, worker.id, *instance_id, reason, context).await {
                    Ok(()) => released += 1,
                    // The worker kept moving under another writer: the next pass tries again.
                    Err(AppError::Conflict(_)) => {}
                    Err(err) => return Err(err),
                }
            }
        }
        Ok(released)
    }
}

/// An instance placed on the snapshot, waiting for its worker to take it.
#[derive(Debug, Clone)]
struct Placed {
    request: AllocationRequest,
    summary: PlacementSummary,
}

/// Commands of one step in flight at once.
const IN_FLIGHT: usize = 64;

fn capacity_request(reason: String, needs: Capacity, placement: PlacementSummary) -> LabletInstanceCommand {
    LabletInstanceCommand::RequestCapacity {
        reason,
        needs,
        placement,
    }
}

async fn release(
    mediator: &Mediator,
    worker_id: Uuid,
    instance_id: Uuid,
    reason: &str,
    context: &RequestContext,
) -> Result<(), AppError> {
    let reason = FreeText::parse(reason.chars().take(1000).collect::<String>()).map_err(AppError::Internal)?;
    let command = WorkerCommand::Release { instance_id, reason };
    mediator
        .send(Execute::<Worker>::on(worker_id, command), context)
        .await
        .map(drop)
}
