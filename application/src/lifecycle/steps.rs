//! One step of an instance's lifecycle as a work order: submitted once under a key of the
//! instance and the kind (so a pass repeated after a crash finds the order it submitted), then
//! read back from the order itself until it ends, and its outcome recorded on the instance once.

use crate::commands::Execute;
use crate::context::RequestContext;
use crate::error::AppError;
use crate::executors::{LAB_IMPORT, LAB_START};
use crate::mediator::Mediator;
use crate::repository::AggregateRepository;
use lablet_domain::lablet_instance::{LabletInstance, LabletInstanceCommand, StepOutcome};
use lablet_domain::values::{Bounded, Name};
use lablet_domain::work_order::{
    unique_order_id, ResourceNeeds, Submission, WorkOrder, WorkOrderCommand, WorkOrderState,
};
use serde_json::{json, Value};
use std::sync::Arc;
use uuid::Uuid;

/// Attempts a lifecycle step gets before the instance ends with its error.
pub const STEP_ATTEMPTS: u32 = 5;

/// Where a step stands.
#[derive(Debug, Clone, PartialEq)]
pub enum StepState {
    /// Submitted (now or before) and not ended yet.
    Running,
    Completed(Value),
    /// Failed for good (or cancelled): the last error.
    Failed(String),
}

/// The key a step of `instance_id` is submitted under.
pub fn step_key(kind: &str, instance_id: Uuid) -> String {
    format!("{kind}:{instance_id}")
}

pub struct Steps {
    mediator: Arc<Mediator>,
    repository: Arc<AggregateRepository>,
}

impl Steps {
    pub fn new(mediator: Arc<Mediator>, repository: Arc<AggregateRepository>) -> Self {
        Steps { mediator, repository }
    }

    /// Makes sure the step `kind` of `instance` runs, and answers where it stands; an ended
    /// step is recorded on the instance (once).
    pub async fn ensure(
        &self,
        kind: &str,
        instance_id: Uuid,
        instance: &LabletInstance,
        context: &RequestContext,
    ) -> Result<StepState, AppError> {
        match self.look(kind, instance_id, instance, context).await? {
            Some(step) => Ok(step),
            None => {
                let key = step_key(kind, instance_id);
                self.submit(kind, &key, instance_id, instance, context).await?;
                Ok(StepState::Running)
            }
        }
    }

    /// Where the step `kind` of `instance` stands, if it was ever submitted; an ended step is
    /// recorded on the instance (once).
    pub async fn look(
        &self,
        kind: &str,
        instance_id: Uuid,
        instance: &LabletInstance,
        context: &RequestContext,
    ) -> Result<Option<StepState>, AppError> {
        let order_id = unique_order_id(&step_key(kind, instance_id));
        let order = self.repository.load::<WorkOrder>(order_id).await?.state;
        let Some(state) = order.state else {
            return Ok(None);
        };
        let step = match state {
            WorkOrderState::Completed => StepState::Completed(order.result.clone().unwrap_or(Value::Null)),
            WorkOrderState::Failed | WorkOrderState::Cancelled => StepState::Failed(
                order
                    .errors
                    .last()
                    .cloned()
                    .unwrap_or_else(|| format!("the {kind} order was {state}")),
            ),
            _ => return Ok(Some(StepState::Running)),
        };
        if !instance.recorded_steps.contains(&order_id) {
            self.record(kind, order_id, &step, instance_id, context).await?;
        }
        Ok(Some(step))
    }

    async fn submit(
        &self,
        kind: &str,
        key: &str,
        instance_id: Uuid,
        instance: &LabletInstance,
        context: &RequestContext,
    ) -> Result<(), AppError> {
        let invalid = |why: String| AppError::Internal(format!("a lifecycle order cannot be made: {why}"));
        let submission = Submission {
            kind: Name::parse(kind).map_err(invalid)?,
            payload: json!({
                "instance_id": instance_id,
                "worker_id": instance.worker_id,
                "definition_id": instance.definition_id,
                "definition_version": instance.definition_version,
                "lab_id": instance.lab_id,
            }),
            // Ending a lab frees a worker: it goes before starting one.
            priority: if kind == LAB_IMPORT || kind == LAB_START { 0 } else { 10 },
            max_attempts: Bounded::parse(STEP_ATTEMPTS).map_err(invalid)?,
            resources: ResourceNeeds::default(),
            unique_key: Some(Name::parse(key).map_err(invalid)?),
        };
        let command = Execute::<WorkOrder>::on(unique_order_id(key), WorkOrderCommand::Submit(submission));
        self.mediator.send(command, context).await.map(|_| ())
    }

    async fn record(
        &self,
        kind: &str,
        order_id: Uuid,
        step: &StepState,
        instance_id: Uuid,
        context: &RequestContext,
    ) -> Result<(), AppError> {
        let (outcome, detail, lab_id) = match step {
            StepState::Completed(result) => (
                StepOutcome::Completed,
                None,
                (kind == LAB_IMPORT)
                    .then(|| result.get("lab_id").and_then(Value::as_str).map(str::to_owned))
                    .flatten(),
            ),
            StepState::Failed(error) => (StepOutcome::Failed, Some(error.clone()), None),
            StepState::Running => return Ok(()),
        };
        let command = LabletInstanceCommand::RecordStep {
            step: kind.to_owned(),
            work_order_id: order_id,
            outcome,
            detail,
            lab_id,
        };
        self.mediator
            .send(Execute::<LabletInstance>::on(instance_id, command), context)
            .await
            .map(|_| ())
    }
}
