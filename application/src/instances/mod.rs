//! Commands on lablet instances, with the rules the domain cannot know about callers: a caller
//! limited to their own instances (a student) acts only on instances they own, and only to
//! request, extend or terminate them; the lifecycle moves (`scheduled`, `running`, …) and scores
//! are for the system, managers and admins.

use crate::commands::Execute;
use crate::context::RequestContext;
use crate::error::AppError;
use crate::mediator::Handler;
use crate::repository::{AggregateRepository, CommandOutcome};
use async_trait::async_trait;
use lablet_domain::lablet_instance::{InstanceState, LabletInstance, LabletInstanceCommand};
use lablet_domain::Aggregate;
use std::sync::Arc;

/// What a caller limited to their own instances may ask: a request, an extension, or the end.
fn owner_may(command: &LabletInstanceCommand) -> Result<(), AppError> {
    match command {
        LabletInstanceCommand::Request(_)
        | LabletInstanceCommand::ExtendTimeslot { .. }
        | LabletInstanceCommand::Transition {
            to: InstanceState::Terminated,
            ..
        } => Ok(()),
        LabletInstanceCommand::Transition { .. } | LabletInstanceCommand::RecordScore { .. } => {
            Err(AppError::Forbidden(
                "an owner may request, extend and terminate an instance; its lifecycle is moved by the system, managers and admins"
                    .into(),
            ))
        }
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
}

#[async_trait]
impl Handler<Execute<LabletInstance>> for InstanceHandlers {
    /// Runs the command, first checking that a caller limited to their own instances owns the
    /// instance (the owner never changes, so the check cannot race the command).
    async fn handle(
        &self,
        request: &Execute<LabletInstance>,
        context: &RequestContext,
    ) -> Result<CommandOutcome, AppError> {
        let id = request.target(&self.repository);
        if let Some(caller) = &context.owner_scope {
            owner_may(&request.command)?;
            match &request.command {
                // A new instance: its owner is in the request, there is nothing to load.
                LabletInstanceCommand::Request(new) => require_owner(caller, new.owner_id.as_str())?,
                _ => {
                    let loaded = self.repository.load::<LabletInstance>(id).await?;
                    match &loaded.state.owner_id {
                        None => return Err(AppError::NotFound(LabletInstance::KIND.to_string())),
                        Some(owner_id) => require_owner(caller, owner_id)?,
                    }
                }
            }
        }
        self.repository
            .execute::<LabletInstance>(id, &request.command, context)
            .await
    }
}
