//! Commands on lablet instances, with the rules the domain cannot know about callers: a caller
//! limited to their own instances (a student) acts only on instances they own, and only to
//! request, extend or terminate them; the lifecycle moves (`scheduled`, `running`, …) and scores
//! are for the system, managers and admins. A request is checked against its definition: the
//! version must exist and be active, and the timeslot no longer than the version allows.

use crate::commands::Execute;
use crate::context::RequestContext;
use crate::error::AppError;
use crate::error::FieldError;
use crate::mediator::Handler;
use crate::repository::{AggregateRepository, CommandOutcome};
use async_trait::async_trait;
use lablet_domain::lablet_definition::{LabletDefinition, SemVer, VersionStatus};
use lablet_domain::lablet_instance::{InstanceRequest, InstanceState, LabletInstance, LabletInstanceCommand};
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
        LabletInstanceCommand::Transition { .. }
        | LabletInstanceCommand::RecordScore { .. }
        | LabletInstanceCommand::Place { .. }
        | LabletInstanceCommand::RequestCapacity { .. }
        | LabletInstanceCommand::RecordStep { .. }
        | LabletInstanceCommand::RequestAssessment => {
            Err(AppError::Forbidden(
                "an owner may request, extend and terminate an instance; its lifecycle is moved by the system, managers and admins"
                    .into(),
            ))
        }
    }
}

/// A request names a definition version that takes new instances, for no longer than that
/// version allows; else a 422 naming the field.
fn check_request(definition: &LabletDefinition, request: &InstanceRequest) -> Result<(), AppError> {
    let invalid = |field: &str, message: String| AppError::Validation(vec![FieldError::new(field, message)]);
    if !definition.exists {
        return Err(invalid("definition_id", "no lablet definition has this id".into()));
    }
    let version =
        SemVer::parse(request.definition_version.as_str()).map_err(|why| invalid("definition_version", why))?;
    let Some(state) = definition.versions.get(&version) else {
        return Err(invalid(
            "definition_version",
            format!("{} has no version {version}", definition.name),
        ));
    };
    if state.status != VersionStatus::Active {
        return Err(invalid(
            "definition_version",
            format!(
                "version {version} of {} is {}: it takes no new instances",
                definition.name,
                state.status.as_str()
            ),
        ));
    }
    let minutes = request.timeslot.duration().num_minutes();
    let allowed = i64::from(state.content.max_duration_minutes);
    if minutes > allowed {
        return Err(invalid(
            "timeslot_end",
            format!(
                "the timeslot lasts {minutes} minutes, more than the {allowed} {} allows",
                definition.name
            ),
        ));
    }
    Ok(())
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
        if let LabletInstanceCommand::Request(new) = &request.command {
            let definition = self.repository.load::<LabletDefinition>(new.definition_id).await?;
            check_request(&definition.state, new)?;
        }
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
