//! The worker requests that are more than a domain command: registering (the CML credentials
//! are sealed into the [`CredentialVault`] before the worker's first event is appended; the
//! events never hold them), changing credentials, recording activity then detecting idleness,
//! and asking whether a worker is idle now. Every other worker command is an
//! [`Execute<Worker>`](crate::commands::Execute).

use crate::context::RequestContext;
use crate::error::{AppError, FieldError};
use crate::mediator::{Handler, Request, RequestKind};
use crate::ports::{CmlCredentials, CredentialVault};
use crate::repository::{AggregateRepository, CommandOutcome};
use async_trait::async_trait;
use lablet_domain::values::Name;
use lablet_domain::worker::{Activity, IdlePolicy, IdleStatus, Registration, Worker, WorkerCommand};
use lablet_domain::Aggregate;
use serde::Serialize;
use std::sync::Arc;
use uuid::Uuid;

/// CML's own limit on user names.
pub type CmlUsername = Name<32>;
/// The longest password accepted, in characters.
const MAX_PASSWORD_CHARS: usize = 1024;

/// CML credentials from their parts, or each part that is wrong (a username without a
/// password, or the reverse, names the missing one).
pub fn credentials(
    username: Option<String>,
    password: Option<String>,
) -> Result<Option<CmlCredentials>, Vec<FieldError>> {
    let (username, password) = match (username, password) {
        (None, None) => return Ok(None),
        (Some(_), None) => return Err(vec![FieldError::new("password", "is required with username")]),
        (None, Some(_)) => return Err(vec![FieldError::new("username", "is required with password")]),
        (Some(username), Some(password)) => (username, password),
    };
    let mut errors = Vec::new();
    if let Err(why) = CmlUsername::parse(username.as_str()) {
        errors.push(FieldError::new("username", why));
    }
    if password.is_empty() {
        errors.push(FieldError::new("password", "must not be empty"));
    } else if password.chars().count() > MAX_PASSWORD_CHARS {
        errors.push(FieldError::new(
            "password",
            format!("must be at most {MAX_PASSWORD_CHARS} characters"),
        ));
    }
    if errors.is_empty() {
        Ok(Some(CmlCredentials { username, password }))
    } else {
        Err(errors)
    }
}

/// Registers a CML server (with an endpoint and credentials) or a worker still to provision.
#[derive(Debug, Clone)]
pub struct RegisterWorker {
    pub registration: Registration,
    pub credentials: Option<CmlCredentials>,
}

impl Request for RegisterWorker {
    type Output = CommandOutcome;
    const NAME: &'static str = "cml_worker.register";
    const KIND: RequestKind = RequestKind::Command;

    fn validate(&self) -> Result<(), Vec<FieldError>> {
        match (&self.registration.endpoint, &self.credentials) {
            (Some(_), None) => Err(vec![FieldError::new(
                "username",
                "is required with an endpoint (with password)",
            )]),
            _ => Ok(()),
        }
    }
}

/// Replaces a worker's CML credentials (a password rotation on the server).
#[derive(Debug, Clone)]
pub struct ChangeWorkerCredentials {
    pub id: Uuid,
    pub credentials: CmlCredentials,
}

impl Request for ChangeWorkerCredentials {
    type Output = CommandOutcome;
    const NAME: &'static str = "cml_worker.change_credentials";
    const KIND: RequestKind = RequestKind::Command;
}

/// Activity read from a worker's telemetry, then an idle check (sent by the monitoring job).
#[derive(Debug, Clone)]
pub struct RecordActivityAndDetectIdle {
    pub id: Uuid,
    pub activities: Vec<Activity>,
}

impl Request for RecordActivityAndDetectIdle {
    type Output = CommandOutcome;
    const NAME: &'static str = "cml_worker.record_activity";
    const KIND: RequestKind = RequestKind::Command;
}

/// Whether a worker is idle now, from its aggregate (not a read model: the answer is computed
/// at the moment it is asked).
#[derive(Debug, Clone)]
pub struct GetIdleStatus {
    pub id: Uuid,
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct WorkerIdleStatus {
    pub worker_id: Uuid,
    #[serde(flatten)]
    pub status: IdleStatus,
    /// Newest first, at most ten.
    pub recent_activity: Vec<Activity>,
}

impl Request for GetIdleStatus {
    type Output = WorkerIdleStatus;
    const NAME: &'static str = "cml_worker.idle_status";
    const KIND: RequestKind = RequestKind::Query;
}

pub struct WorkerHandlers {
    repository: Arc<AggregateRepository>,
    vault: Arc<dyn CredentialVault>,
    idle_policy: IdlePolicy,
}

impl WorkerHandlers {
    pub fn new(repository: Arc<AggregateRepository>, vault: Arc<dyn CredentialVault>, idle_policy: IdlePolicy) -> Self {
        WorkerHandlers {
            repository,
            vault,
            idle_policy,
        }
    }

    async fn execute(
        &self,
        id: Uuid,
        command: WorkerCommand,
        context: &RequestContext,
    ) -> Result<CommandOutcome, AppError> {
        self.repository.execute::<Worker>(id, &command, context).await
    }
}

#[async_trait]
impl Handler<RegisterWorker> for WorkerHandlers {
    async fn handle(&self, request: &RegisterWorker, context: &RequestContext) -> Result<CommandOutcome, AppError> {
        let id = self.repository.ids().new_id();
        if let Some(credentials) = &request.credentials {
            // Sealed first: a worker whose event exists must be able to find its credentials.
            self.vault
                .store(id, credentials)
                .await
                .map_err(|e| AppError::Unavailable(e.to_string()))?;
        }
        let command = WorkerCommand::Register(request.registration.clone());
        self.execute(id, command, context).await
    }
}

#[async_trait]
impl Handler<ChangeWorkerCredentials> for WorkerHandlers {
    async fn handle(
        &self,
        request: &ChangeWorkerCredentials,
        context: &RequestContext,
    ) -> Result<CommandOutcome, AppError> {
        // Decided first, so that an unknown or terminated worker stores nothing.
        let loaded = self.repository.load::<Worker>(request.id).await?;
        let decision = self.repository.decision_context(context);
        let events = loaded
            .state
            .decide(&WorkerCommand::RecordCredentialsChanged, &decision)?;
        self.vault
            .store(request.id, &request.credentials)
            .await
            .map_err(|e| AppError::Unavailable(e.to_string()))?;
        self.repository
            .save::<Worker>(request.id, loaded, events, context)
            .await
    }
}

#[async_trait]
impl Handler<RecordActivityAndDetectIdle> for WorkerHandlers {
    async fn handle(
        &self,
        request: &RecordActivityAndDetectIdle,
        context: &RequestContext,
    ) -> Result<CommandOutcome, AppError> {
        let recorded = WorkerCommand::RecordActivity {
            activities: request.activities.clone(),
        };
        let first = self.execute(request.id, recorded, context).await?;
        let detect = WorkerCommand::DetectIdle {
            policy: self.idle_policy,
        };
        let second = self.execute(request.id, detect, context).await?;
        Ok(CommandOutcome {
            changed: first.changed || second.changed,
            ..second
        })
    }
}

#[async_trait]
impl Handler<GetIdleStatus> for WorkerHandlers {
    async fn handle(&self, request: &GetIdleStatus, _: &RequestContext) -> Result<WorkerIdleStatus, AppError> {
        let loaded = self.repository.load::<Worker>(request.id).await?;
        if !loaded.state.exists {
            return Err(AppError::NotFound(format!("cml_worker {}", request.id)));
        }
        Ok(WorkerIdleStatus {
            worker_id: request.id,
            status: loaded
                .state
                .idle_status(self.repository.clock().now(), self.idle_policy),
            recent_activity: loaded.state.recent_activity.clone(),
        })
    }
}
