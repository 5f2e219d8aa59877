//! Commands on lablet instances: request one, move it through its state machine, extend its
//! timeslot, record its score.

use crate::context::RequestContext;
use crate::error::{check_name, AppError, FieldError};
use crate::mediator::{Handler, Request, RequestKind};
use crate::repository::{AggregateRepository, CommandOutcome};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use lablet_domain::lablet_instance::{
    instance_id_for_reservation, GradingScore, InstanceRequest, InstanceState, LabletInstance, LabletInstanceCommand,
};
use std::sync::Arc;
use uuid::Uuid;

/// The longest version, owner or reservation id accepted.
const MAX_ID_CHARS: usize = 256;

#[derive(Debug, Clone)]
pub struct RequestInstance {
    pub definition_id: Uuid,
    pub definition_version: String,
    pub owner_id: String,
    pub reservation_id: String,
    pub timeslot_start: DateTime<Utc>,
    pub timeslot_end: DateTime<Utc>,
}

impl Request for RequestInstance {
    type Output = CommandOutcome;
    const NAME: &'static str = "lablet_instance.request";
    const KIND: RequestKind = RequestKind::Command;

    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        if self.definition_id.is_nil() {
            errors.push(FieldError::new("definition_id", "must not be the nil UUID"));
        }
        check_name(
            &mut errors,
            "definition_version",
            &self.definition_version,
            MAX_ID_CHARS,
        );
        check_name(&mut errors, "owner_id", &self.owner_id, MAX_ID_CHARS);
        check_name(&mut errors, "reservation_id", &self.reservation_id, MAX_ID_CHARS);
        if self.timeslot_end <= self.timeslot_start {
            errors.push(FieldError::new("timeslot_end", "must be after timeslot_start"));
        }
        errors.is_empty().then_some(()).ok_or(errors)
    }
}

#[derive(Debug, Clone)]
pub struct TransitionInstance {
    pub id: Uuid,
    pub to: InstanceState,
    pub reason: Option<String>,
    pub worker_id: Option<Uuid>,
}

impl Request for TransitionInstance {
    type Output = CommandOutcome;
    const NAME: &'static str = "lablet_instance.transition";
    const KIND: RequestKind = RequestKind::Command;
}

#[derive(Debug, Clone)]
pub struct ExtendTimeslot {
    pub id: Uuid,
    pub timeslot_end: DateTime<Utc>,
}

impl Request for ExtendTimeslot {
    type Output = CommandOutcome;
    const NAME: &'static str = "lablet_instance.extend_timeslot";
    const KIND: RequestKind = RequestKind::Command;
}

#[derive(Debug, Clone)]
pub struct RecordScore {
    pub id: Uuid,
    pub score: GradingScore,
}

impl Request for RecordScore {
    type Output = CommandOutcome;
    const NAME: &'static str = "lablet_instance.record_score";
    const KIND: RequestKind = RequestKind::Command;

    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        let score = &self.score;
        if !score.max.is_finite() || score.max <= 0.0 {
            errors.push(FieldError::new("max", "must be a positive number"));
        }
        if !score.total.is_finite() || score.total < 0.0 {
            errors.push(FieldError::new("total", "must not be negative"));
        } else if score.total > score.max {
            errors.push(FieldError::new("total", "must not exceed max"));
        }
        for (name, points) in &score.breakdown {
            if !points.is_finite() || *points < 0.0 {
                errors.push(FieldError::new(format!("breakdown.{name}"), "must not be negative"));
            }
        }
        errors.is_empty().then_some(()).ok_or(errors)
    }
}

/// A caller limited to their own instances may only act as `owner_id`.
fn require_owner(caller: &str, owner_id: &str) -> Result<(), AppError> {
    if caller == owner_id {
        Ok(())
    } else {
        Err(AppError::Forbidden(format!(
            "this instance belongs to another owner; `{caller}` may only manage its own instances"
        )))
    }
}

pub struct InstanceHandlers {
    repository: Arc<AggregateRepository>,
}

impl InstanceHandlers {
    pub fn new(repository: Arc<AggregateRepository>) -> Self {
        InstanceHandlers { repository }
    }

    /// Runs `command` on instance `id`, first checking that a caller limited to their own
    /// instances owns it (the owner never changes, so the check cannot race the command).
    async fn run(
        &self,
        id: Uuid,
        command: LabletInstanceCommand,
        context: &RequestContext,
    ) -> Result<CommandOutcome, AppError> {
        if let Some(caller) = &context.owner_scope {
            let loaded = self.repository.load::<LabletInstance>(id).await?;
            match &loaded.state.request {
                None => {
                    return Err(AppError::NotFound(
                        <LabletInstance as lablet_domain::Aggregate>::KIND.to_string(),
                    ))
                }
                Some(request) => require_owner(caller, &request.owner_id)?,
            }
        }
        self.repository.execute::<LabletInstance>(id, &command, context).await
    }
}

#[async_trait]
impl Handler<RequestInstance> for InstanceHandlers {
    async fn handle(&self, request: &RequestInstance, context: &RequestContext) -> Result<CommandOutcome, AppError> {
        if let Some(caller) = &context.owner_scope {
            require_owner(caller, &request.owner_id)?;
        }
        let id = instance_id_for_reservation(&request.reservation_id);
        let command = LabletInstanceCommand::Request(InstanceRequest {
            definition_id: request.definition_id,
            definition_version: request.definition_version.clone(),
            owner_id: request.owner_id.clone(),
            reservation_id: request.reservation_id.clone(),
            timeslot_start: request.timeslot_start,
            timeslot_end: request.timeslot_end,
            requested_at: self.repository.clock().now(),
        });
        // A new instance: its owner was checked above, there is nothing to load.
        self.repository.execute::<LabletInstance>(id, &command, context).await
    }
}

#[async_trait]
impl Handler<TransitionInstance> for InstanceHandlers {
    async fn handle(&self, request: &TransitionInstance, context: &RequestContext) -> Result<CommandOutcome, AppError> {
        let command = LabletInstanceCommand::Transition {
            to: request.to,
            reason: request.reason.clone(),
            worker_id: request.worker_id,
            at: self.repository.clock().now(),
        };
        self.run(request.id, command, context).await
    }
}

#[async_trait]
impl Handler<ExtendTimeslot> for InstanceHandlers {
    async fn handle(&self, request: &ExtendTimeslot, context: &RequestContext) -> Result<CommandOutcome, AppError> {
        let command = LabletInstanceCommand::ExtendTimeslot {
            new_end: request.timeslot_end,
            at: self.repository.clock().now(),
        };
        self.run(request.id, command, context).await
    }
}

#[async_trait]
impl Handler<RecordScore> for InstanceHandlers {
    async fn handle(&self, request: &RecordScore, context: &RequestContext) -> Result<CommandOutcome, AppError> {
        let command = LabletInstanceCommand::RecordScore {
            score: request.score.clone(),
            at: self.repository.clock().now(),
        };
        self.run(request.id, command, context).await
    }
}
