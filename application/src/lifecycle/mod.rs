//! The timeslot lifecycle: a process manager (the singleton `lablet_lifecycle`) that moves each
//! placed instance through its life by itself, on the clock port.
//!
//! | the instance is | when | the manager |
//! |---|---|---|
//! | `scheduled` | at `timeslot_start − lead time` | moves it to `instantiating` |
//! | `instantiating` | | runs `lab.import` (the lab id is recorded), then `lab.start`; `running` once CML says the lab is started |
//! | `running` | at `timeslot_end` (an extension moves it) | moves it to `collecting` |
//! | `collecting` | | runs `assessment.collect` (a CloudEvent for the grading system); the inbox moves it to `grading` and, with the result, to `stopping` |
//! | `collecting`, `grading` | no result by `timeslot_end + grading timeout` | moves it to `stopping` |
//! | `stopping` | | runs `lab.stop`; then `stopped` |
//! | `stopped` | | moves it to `archived` |
//! | `archived` | | runs `lab.wipe` and `lab.delete`; then `terminated` |
//! | `terminated` (from anywhere) with a lab left | | runs `lab.stop`, `lab.wipe`, `lab.delete` |
//!
//! Each step is a work order submitted under a key of the instance and the kind, and its
//! outcome is recorded on the instance (the history shows the pipeline). The manager keeps no
//! state of its own beyond which instances to look at (every instance the log has requested,
//! dropped once it is terminated with nothing left behind): after a crash it reads the log
//! again and each step is found where it was, never run twice. A step that fails for good
//! (its order's attempts, with backoff, ran out) ends the instance with the error as reason;
//! the scheduler's sweep gives its capacity and ports back.

mod steps;

pub use steps::{step_key, StepState, Steps, STEP_ATTEMPTS};

use crate::commands::Execute;
use crate::context::RequestContext;
use crate::error::AppError;
use crate::executors::{ASSESSMENT_COLLECT, LAB_DELETE, LAB_IMPORT, LAB_START, LAB_STOP, LAB_WIPE};
use crate::mediator::Mediator;
use crate::ports::{Clock, EventStore, LeaseFence};
use crate::repository::AggregateRepository;
use crate::scheduling::{after, before};
use crate::shutdown::stopped;
use crate::subscription::Subscription;
use lablet_domain::lablet_instance::{InstanceState, LabletInstance, LabletInstanceCommand};
use lablet_domain::values::FreeText;
use lablet_domain::AggregateKind;
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use uuid::Uuid;

/// The singleton role (lease) the manager runs under.
pub const LIFECYCLE: &str = "lablet_lifecycle";

/// Moves of one instance in one pass at most (each waits for nothing but the stores).
const MOVES_PER_PASS: usize = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LifecycleSettings {
    /// Off, instances move only by hand (their transitions).
    pub enabled: bool,
    pub every: Duration,
    /// How long before its timeslot an instance is instantiated (`lablet serve` gives it the
    /// scheduler's lead time).
    pub lead_time: Duration,
    /// How long after the timeslot's end the grading result is waited for.
    pub grading_timeout: Duration,
}

impl Default for LifecycleSettings {
    fn default() -> Self {
        LifecycleSettings {
            enabled: true,
            every: Duration::from_secs(1),
            lead_time: Duration::from_secs(35 * 60),
            grading_timeout: Duration::from_secs(30 * 60),
        }
    }
}

/// What the manager did to one instance in one look.
#[derive(Debug, Clone, PartialEq)]
enum Move {
    /// Nothing to do until a step ends or time passes.
    Wait,
    /// It moved on; look again.
    Again,
    /// Terminated with nothing left behind: no need to look again.
    Done,
}

pub struct LifecycleManager {
    mediator: Arc<Mediator>,
    repository: Arc<AggregateRepository>,
    events: Arc<dyn EventStore>,
    clock: Arc<dyn Clock>,
    steps: Steps,
    settings: LifecycleSettings,
    /// Instances to look at.
    watched: Mutex<BTreeSet<Uuid>>,
}

impl LifecycleManager {
    pub fn new(
        mediator: Arc<Mediator>,
        repository: Arc<AggregateRepository>,
        events: Arc<dyn EventStore>,
        clock: Arc<dyn Clock>,
        settings: LifecycleSettings,
    ) -> Self {
        LifecycleManager {
            steps: Steps::new(mediator.clone(), repository.clone()),
            mediator,
            repository,
            events,
            clock,
            settings,
            watched: Mutex::default(),
        }
    }

    fn watched(&self) -> std::sync::MutexGuard<'_, BTreeSet<Uuid>> {
        self.watched.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs a pass every `every` until `stop` turns true, its commands carrying `fence`; the
    /// instances to look at are read from the log from its start, then as it grows.
    pub async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>, fence: LeaseFence) {
        let context = RequestContext::system_under(&fence);
        let mut subscription = Subscription::new(self.events.clone(), 0, 1000);
        loop {
            if let Err(err) = self.read_new(&mut subscription).await {
                tracing::warn!(error = %err, "the lifecycle could not read the log; trying again");
            }
            if let Err(err) = self.pass(&context).await {
                tracing::warn!(error = %err, "the lifecycle pass failed; trying again next time");
            }
            tokio::select! {
                () = self.clock.sleep(self.settings.every) => {}
                () = stopped(&mut stop) => return,
            }
        }
    }

    /// Adds every instance requested in the log since the last read.
    async fn read_new(&self, subscription: &mut Subscription) -> Result<(), AppError> {
        loop {
            let batch = subscription.try_next_batch().await?;
            if batch.is_empty() {
                return Ok(());
            }
            let mut watched = self.watched();
            for envelope in &batch {
                if envelope.aggregate_kind() == Some(AggregateKind::LabletInstance) && envelope.version == 1 {
                    if let Ok(id) = envelope.aggregate_id().parse() {
                        watched.insert(id);
                    }
                }
            }
        }
    }

    /// One look at every watched instance.
    pub async fn pass(&self, context: &RequestContext) -> Result<(), AppError> {
        let ids: Vec<Uuid> = self.watched().iter().copied().collect();
        for id in ids {
            match self.advance(id, context).await {
                Ok(true) => {
                    self.watched().remove(&id);
                }
                Ok(false) => {}
                Err(err @ AppError::Fenced { .. }) => return Err(err),
                Err(err) => tracing::warn!(instance = %id, error = %err, "an instance could not be moved on"),
            }
        }
        Ok(())
    }

    /// Moves one instance on as far as it can go now; answers whether it is done for good.
    async fn advance(&self, id: Uuid, context: &RequestContext) -> Result<bool, AppError> {
        for _ in 0..MOVES_PER_PASS {
            let instance = self.repository.load::<LabletInstance>(id).await?.state;
            match self.next_move(id, &instance, context).await? {
                Move::Wait => return Ok(false),
                Move::Done => return Ok(true),
                Move::Again => {}
            }
        }
        Ok(false)
    }

    async fn next_move(&self, id: Uuid, instance: &LabletInstance, context: &RequestContext) -> Result<Move, AppError> {
        let now = self.clock.now();
        let Some(state) = instance.state else {
            return Ok(Move::Done);
        };
        let ends = instance.timeslot_end.unwrap_or(now);
        match state {
            InstanceState::Pending => Ok(Move::Wait),
            InstanceState::Scheduled => {
                let starts = instance.timeslot_start.unwrap_or(now);
                if now < before(starts, self.settings.lead_time) {
                    return Ok(Move::Wait);
                }
                self.moved(
                    id,
                    InstanceState::Instantiating,
                    "its timeslot is about to start",
                    context,
                )
                .await
            }
            InstanceState::Instantiating => {
                let kind = if instance.lab_id.is_none() {
                    LAB_IMPORT
                } else {
                    LAB_START
                };
                match self.steps.ensure(kind, id, instance, context).await? {
                    StepState::Running => Ok(Move::Wait),
                    StepState::Completed(_) if kind == LAB_IMPORT => Ok(Move::Again),
                    StepState::Completed(_) => {
                        self.moved(id, InstanceState::Running, "CML says the lab is started", context)
                            .await
                    }
                    StepState::Failed(error) => self.ended(id, kind, &error, context).await,
                }
            }
            InstanceState::Running if now >= ends => {
                self.moved(id, InstanceState::Collecting, "the timeslot ended", context)
                    .await
            }
            InstanceState::Running => Ok(Move::Wait),
            InstanceState::Collecting | InstanceState::Grading => {
                if now >= after(ends, self.settings.grading_timeout) {
                    let reason = "no grading result came in time";
                    return self.moved(id, InstanceState::Stopping, reason, context).await;
                }
                if state == InstanceState::Collecting {
                    if let StepState::Failed(error) =
                        self.steps.ensure(ASSESSMENT_COLLECT, id, instance, context).await?
                    {
                        let reason = format!("the lab could not be collected: {error}");
                        return self.moved(id, InstanceState::Stopping, &reason, context).await;
                    }
                } else {
                    // The grading system may answer before the collection's outcome is read.
                    self.steps.look(ASSESSMENT_COLLECT, id, instance, context).await?;
                }
                Ok(Move::Wait)
            }
            InstanceState::Stopping => {
                // The result may have come in before the collection's outcome was read: it is
                // recorded (waited for while it runs) before the lab stops.
                match self.steps.look(ASSESSMENT_COLLECT, id, instance, context).await? {
                    Some(StepState::Running) => Ok(Move::Wait),
                    _ => self.stop(id, instance, context).await,
                }
            }
            InstanceState::Stopped => {
                self.moved(id, InstanceState::Archived, "the timeslot is over", context)
                    .await
            }
            InstanceState::Archived => match self.remove_lab(id, instance, context).await? {
                Some(Ok(())) => {
                    self.moved(id, InstanceState::Terminated, "the lab is wiped and deleted", context)
                        .await
                }
                Some(Err(error)) => self.ended(id, LAB_DELETE, &error, context).await,
                None => Ok(Move::Wait),
            },
            InstanceState::Terminated => match self.remove_lab(id, instance, context).await? {
                None => Ok(Move::Wait),
                // Done, or given up (the failure is recorded on the instance).
                Some(_) => Ok(Move::Done),
            },
        }
    }

    async fn stop(&self, id: Uuid, instance: &LabletInstance, context: &RequestContext) -> Result<Move, AppError> {
        match self.steps.ensure(LAB_STOP, id, instance, context).await? {
            StepState::Running => Ok(Move::Wait),
            StepState::Completed(_) => {
                self.moved(id, InstanceState::Stopped, "the lab is stopped", context)
                    .await
            }
            StepState::Failed(error) => self.ended(id, LAB_STOP, &error, context).await,
        }
    }

    /// Stops, wipes and deletes the instance's lab, a step at a time: `None` while a step runs,
    /// then whether it is gone.
    async fn remove_lab(
        &self,
        id: Uuid,
        instance: &LabletInstance,
        context: &RequestContext,
    ) -> Result<Option<Result<(), String>>, AppError> {
        if instance.lab_id.is_none() || instance.lab_removed {
            return Ok(Some(Ok(())));
        }
        for kind in [LAB_STOP, LAB_WIPE, LAB_DELETE] {
            match self.steps.ensure(kind, id, instance, context).await? {
                StepState::Completed(_) => {}
                StepState::Running => return Ok(None),
                StepState::Failed(error) => return Ok(Some(Err(format!("{kind} failed: {error}")))),
            }
        }
        Ok(Some(Ok(())))
    }

    async fn moved(
        &self,
        id: Uuid,
        to: InstanceState,
        reason: &str,
        context: &RequestContext,
    ) -> Result<Move, AppError> {
        let command = LabletInstanceCommand::Transition {
            to,
            reason: FreeText::parse(reason.chars().take(1000).collect::<String>()).ok(),
            worker_id: None,
        };
        match self
            .mediator
            .send(Execute::<LabletInstance>::on(id, command), context)
            .await
        {
            // Moved by someone else meanwhile (a user's termination, the inbox): look again.
            Ok(_) | Err(AppError::Rule(_)) => Ok(Move::Again),
            Err(err) => Err(err),
        }
    }

    /// A step failed for good: the instance ends with the error as its reason.
    async fn ended(&self, id: Uuid, kind: &str, error: &str, context: &RequestContext) -> Result<Move, AppError> {
        let reason = format!("{kind} failed: {error}");
        self.moved(id, InstanceState::Terminated, &reason, context).await
    }
}
