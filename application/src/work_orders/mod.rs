//! Commands on work orders: submit one, and the executor's and operator's actions on it.

use crate::context::RequestContext;
use crate::error::{check_name, AppError, FieldError};
use crate::mediator::{Handler, Request, RequestKind};
use crate::ports::ids::random_unit;
use crate::repository::{AggregateRepository, CommandOutcome};
use async_trait::async_trait;
use chrono::Duration;
use lablet_domain::work_order::{ResourceNeeds, Submission, WorkOrder, WorkOrderCommand};
use std::sync::Arc;
use uuid::Uuid;

/// The longest work-order kind accepted.
const MAX_KIND_CHARS: usize = 128;

/// The longest lease an executor may take at once; it renews by leasing again.
pub const MAX_LEASE_SECONDS: u32 = 3600;

#[derive(Debug, Clone)]
pub struct SubmitWorkOrder {
    pub kind: String,
    pub payload: serde_json::Value,
    pub priority: i32,
    pub max_attempts: u32,
    pub resources: ResourceNeeds,
}

impl Request for SubmitWorkOrder {
    type Output = CommandOutcome;
    const NAME: &'static str = "work_order.submit";
    const KIND: RequestKind = RequestKind::Command;

    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        check_name(&mut errors, "kind", &self.kind, MAX_KIND_CHARS);
        if self.max_attempts == 0 || self.max_attempts > lablet_domain::work_order::MAX_ATTEMPTS {
            errors.push(FieldError::new(
                "max_attempts",
                format!("must be between 1 and {}", lablet_domain::work_order::MAX_ATTEMPTS),
            ));
        }
        errors.is_empty().then_some(()).ok_or(errors)
    }
}

/// What an executor or operator does to an existing order.
#[derive(Debug, Clone, PartialEq)]
pub enum WorkOrderAction {
    Lease { executor: String, lease_seconds: u32 },
    Start { executor: String },
    Complete { result: serde_json::Value },
    Fail { error: String, retryable: bool },
    ExpireLease,
    Requeue,
    Cancel { reason: Option<String> },
}

#[derive(Debug, Clone)]
pub struct ActOnWorkOrder {
    pub id: Uuid,
    pub action: WorkOrderAction,
}

impl Request for ActOnWorkOrder {
    type Output = CommandOutcome;
    const NAME: &'static str = "work_order.act";
    const KIND: RequestKind = RequestKind::Command;

    fn validate(&self) -> Result<(), Vec<FieldError>> {
        match &self.action {
            WorkOrderAction::Lease { lease_seconds, .. }
                if *lease_seconds == 0 || *lease_seconds > MAX_LEASE_SECONDS =>
            {
                Err(vec![FieldError::new(
                    "lease_seconds",
                    format!("must be between 1 and {MAX_LEASE_SECONDS}"),
                )])
            }
            WorkOrderAction::Lease { executor, .. } | WorkOrderAction::Start { executor }
                if executor.trim().is_empty() =>
            {
                Err(vec![FieldError::new("executor", "must not be empty")])
            }
            WorkOrderAction::Fail { error, .. } if error.trim().is_empty() => {
                Err(vec![FieldError::new("error", "must not be empty")])
            }
            _ => Ok(()),
        }
    }
}

pub struct WorkOrderHandlers {
    repository: Arc<AggregateRepository>,
}

impl WorkOrderHandlers {
    pub fn new(repository: Arc<AggregateRepository>) -> Self {
        WorkOrderHandlers { repository }
    }
}

#[async_trait]
impl Handler<SubmitWorkOrder> for WorkOrderHandlers {
    async fn handle(&self, request: &SubmitWorkOrder, context: &RequestContext) -> Result<CommandOutcome, AppError> {
        let command = WorkOrderCommand::Submit(Submission {
            kind: request.kind.clone(),
            payload: request.payload.clone(),
            priority: request.priority,
            max_attempts: request.max_attempts,
            resources: request.resources,
            submitted_at: self.repository.clock().now(),
        });
        self.repository
            .execute::<WorkOrder>(self.repository.ids().new_id(), &command, context)
            .await
    }
}

#[async_trait]
impl Handler<ActOnWorkOrder> for WorkOrderHandlers {
    async fn handle(&self, request: &ActOnWorkOrder, context: &RequestContext) -> Result<CommandOutcome, AppError> {
        let at = self.repository.clock().now();
        let command = match &request.action {
            WorkOrderAction::Lease {
                executor,
                lease_seconds,
            } => WorkOrderCommand::Prepare {
                executor: executor.clone(),
                expires_at: at + Duration::seconds(i64::from(*lease_seconds)),
                at,
            },
            WorkOrderAction::Start { executor } => WorkOrderCommand::Start {
                executor: executor.clone(),
                at,
            },
            WorkOrderAction::Complete { result } => WorkOrderCommand::Complete {
                result: result.clone(),
                at,
            },
            WorkOrderAction::Fail { error, retryable } => WorkOrderCommand::Fail {
                error: error.clone(),
                retryable: *retryable,
                jitter: random_unit(),
                at,
            },
            WorkOrderAction::ExpireLease => WorkOrderCommand::ExpireLease {
                jitter: random_unit(),
                at,
            },
            WorkOrderAction::Requeue => WorkOrderCommand::Requeue { at },
            WorkOrderAction::Cancel { reason } => WorkOrderCommand::Cancel {
                reason: reason.clone(),
                at,
            },
        };
        self.repository
            .execute::<WorkOrder>(request.id, &command, context)
            .await
    }
}
