//! Commands on lab records: observe a lab on a worker, remove a record.

use crate::context::RequestContext;
use crate::error::{AppError, FieldError};
use crate::mediator::{Handler, Request, RequestKind};
use crate::repository::{AggregateRepository, CommandOutcome};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use lablet_domain::lab_record::{
    lab_record_id, LabDetails, LabObservation, LabRecord, LabRecordCommand, LabState, RemovalReason,
};
use std::sync::Arc;
use uuid::Uuid;

/// Longest lab id accepted (CML ids are short; this only stops abuse).
const MAX_LAB_ID_LEN: usize = 256;

/// Records what a worker reports about one of its labs.
#[derive(Debug, Clone)]
pub struct ObserveLab {
    pub worker_id: Uuid,
    pub lab_id: String,
    pub details: LabDetails,
    pub state: LabState,
    pub cml_created_at: Option<DateTime<Utc>>,
    pub cml_modified_at: Option<DateTime<Utc>>,
}

impl Request for ObserveLab {
    type Output = CommandOutcome;
    const NAME: &'static str = "lab_record.observe";
    const KIND: RequestKind = RequestKind::Command;

    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        if self.worker_id.is_nil() {
            errors.push(FieldError::new("worker_id", "must not be the nil UUID"));
        }
        if self.lab_id.trim().is_empty() {
            errors.push(FieldError::new("lab_id", "must not be empty"));
        } else if self.lab_id.len() > MAX_LAB_ID_LEN {
            errors.push(FieldError::new(
                "lab_id",
                format!("must be at most {MAX_LAB_ID_LEN} characters"),
            ));
        }
        errors.is_empty().then_some(()).ok_or(errors)
    }
}

/// Marks a lab record removed.
#[derive(Debug, Clone)]
pub struct RemoveLabRecord {
    pub id: Uuid,
    pub reason: RemovalReason,
}

impl Request for RemoveLabRecord {
    type Output = CommandOutcome;
    const NAME: &'static str = "lab_record.remove";
    const KIND: RequestKind = RequestKind::Command;
}

pub struct LabRecordHandlers {
    repository: Arc<AggregateRepository>,
}

impl LabRecordHandlers {
    pub fn new(repository: Arc<AggregateRepository>) -> Self {
        LabRecordHandlers { repository }
    }
}

#[async_trait]
impl Handler<ObserveLab> for LabRecordHandlers {
    async fn handle(&self, request: &ObserveLab, context: &RequestContext) -> Result<CommandOutcome, AppError> {
        let id = lab_record_id(request.worker_id, &request.lab_id);
        let command = LabRecordCommand::Observe(LabObservation {
            worker_id: request.worker_id,
            lab_id: request.lab_id.clone(),
            details: request.details.clone(),
            state: request.state,
            cml_created_at: request.cml_created_at,
            cml_modified_at: request.cml_modified_at,
            observed_at: self.repository.clock().now(),
        });
        self.repository.execute::<LabRecord>(id, &command, context).await
    }
}

#[async_trait]
impl Handler<RemoveLabRecord> for LabRecordHandlers {
    async fn handle(&self, request: &RemoveLabRecord, context: &RequestContext) -> Result<CommandOutcome, AppError> {
        let command = LabRecordCommand::Remove {
            reason: request.reason,
            removed_at: self.repository.clock().now(),
        };
        self.repository
            .execute::<LabRecord>(request.id, &command, context)
            .await
    }
}
