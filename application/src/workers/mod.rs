//! Commands and queries on workers: register, move along the status machine, record what the
//! fleet jobs observe, and answer whether a worker is idle.
//!
//! Registration seals the CML credentials into the [`CredentialVault`] before the worker's
//! first event is appended; the events never hold them.

mod endpoint;

pub use endpoint::check_endpoint;

use crate::context::RequestContext;
use crate::error::{check_free_text, check_name, AppError, FieldError};
use crate::mediator::{Handler, Request, RequestKind};
use crate::ports::{CmlCredentials, CredentialVault};
use crate::repository::{AggregateRepository, CommandOutcome};
use async_trait::async_trait;
use lablet_domain::worker::{
    Activity, Capacity, IdlePolicy, IdleStatus, Registration, ServiceObservation, SyncCounts, Worker, WorkerCommand,
    WorkerStatus,
};
use lablet_domain::Aggregate;
use serde::Serialize;
use std::sync::Arc;
use uuid::Uuid;

const MAX_NAME_LEN: usize = 128;
const MAX_REGION_LEN: usize = 64;
/// CML's own limit on user names.
const MAX_USERNAME_LEN: usize = 32;
const MAX_PASSWORD_LEN: usize = 1024;

fn check_credentials(errors: &mut Vec<FieldError>, credentials: &CmlCredentials) {
    check_name(errors, "username", &credentials.username, MAX_USERNAME_LEN);
    if credentials.password.is_empty() {
        errors.push(FieldError::new("password", "must not be empty"));
    } else if credentials.password.len() > MAX_PASSWORD_LEN {
        errors.push(FieldError::new(
            "password",
            format!("must be at most {MAX_PASSWORD_LEN} bytes"),
        ));
    }
}

/// Registers a CML server (with an endpoint and credentials) or a worker still to provision.
#[derive(Debug, Clone)]
pub struct RegisterWorker {
    pub name: String,
    pub region: String,
    pub endpoint: Option<String>,
    pub template_name: Option<String>,
    pub instance_id: Option<String>,
    pub capacity: Capacity,
    pub insecure_tls: bool,
    pub credentials: Option<CmlCredentials>,
}

impl Request for RegisterWorker {
    type Output = CommandOutcome;
    const NAME: &'static str = "cml_worker.register";
    const KIND: RequestKind = RequestKind::Command;

    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        check_name(&mut errors, "name", &self.name, MAX_NAME_LEN);
        check_name(&mut errors, "region", &self.region, MAX_REGION_LEN);
        if let Some(endpoint) = &self.endpoint {
            if let Err(why) = check_endpoint(endpoint) {
                errors.push(FieldError::new("endpoint", why));
            }
        }
        for (field, value) in [
            ("template_name", &self.template_name),
            ("instance_id", &self.instance_id),
        ] {
            if let Some(value) = value {
                check_name(&mut errors, field, value, MAX_NAME_LEN);
            }
        }
        match (&self.endpoint, &self.credentials) {
            (Some(_), None) => errors.push(FieldError::new(
                "username",
                "is required with an endpoint (with password)",
            )),
            (_, Some(credentials)) => check_credentials(&mut errors, credentials),
            (None, None) => {}
        }
        errors.is_empty().then_some(()).ok_or(errors)
    }
}

/// Moves a worker to `to` (drain, cancel drain, stop, terminate, or any allowed status).
#[derive(Debug, Clone)]
pub struct ChangeWorkerStatus {
    pub id: Uuid,
    pub to: WorkerStatus,
    pub reason: String,
}

impl Request for ChangeWorkerStatus {
    type Output = CommandOutcome;
    const NAME: &'static str = "cml_worker.change_status";
    const KIND: RequestKind = RequestKind::Command;

    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        check_free_text(&mut errors, "reason", &self.reason, 1024);
        errors.is_empty().then_some(()).ok_or(errors)
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

    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        check_credentials(&mut errors, &self.credentials);
        errors.is_empty().then_some(()).ok_or(errors)
    }
}

#[derive(Debug, Clone)]
pub struct SetIdleDetection {
    pub id: Uuid,
    pub enabled: bool,
}

impl Request for SetIdleDetection {
    type Output = CommandOutcome;
    const NAME: &'static str = "cml_worker.set_idle_detection";
    const KIND: RequestKind = RequestKind::Command;
}

/// What a monitoring pass saw (sent by the monitoring job).
#[derive(Debug, Clone)]
pub struct RecordWorkerObservation {
    pub id: Uuid,
    pub observation: ServiceObservation,
}

impl Request for RecordWorkerObservation {
    type Output = CommandOutcome;
    const NAME: &'static str = "cml_worker.record_observation";
    const KIND: RequestKind = RequestKind::Command;
}

/// The end of a labs refresh of a worker (sent by the refresh job).
#[derive(Debug, Clone)]
pub struct RecordLabsSynced {
    pub id: Uuid,
    pub counts: SyncCounts,
}

impl Request for RecordLabsSynced {
    type Output = CommandOutcome;
    const NAME: &'static str = "cml_worker.record_labs_synced";
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
        let command = WorkerCommand::Register(Registration {
            name: request.name.trim().to_owned(),
            region: request.region.trim().to_owned(),
            endpoint: request.endpoint.as_ref().map(|e| e.trim_end_matches('/').to_owned()),
            template_name: request.template_name.clone(),
            instance_id: request.instance_id.clone(),
            declared_capacity: request.capacity,
            insecure_tls: request.insecure_tls,
            registered_by: context.actor.clone(),
            registered_at: self.repository.clock().now(),
        });
        self.execute(id, command, context).await
    }
}

#[async_trait]
impl Handler<ChangeWorkerStatus> for WorkerHandlers {
    async fn handle(&self, request: &ChangeWorkerStatus, context: &RequestContext) -> Result<CommandOutcome, AppError> {
        let command = WorkerCommand::ChangeStatus {
            to: request.to,
            reason: request.reason.clone(),
            by: context.actor.clone(),
            at: self.repository.clock().now(),
        };
        self.execute(request.id, command, context).await
    }
}

#[async_trait]
impl Handler<ChangeWorkerCredentials> for WorkerHandlers {
    async fn handle(
        &self,
        request: &ChangeWorkerCredentials,
        context: &RequestContext,
    ) -> Result<CommandOutcome, AppError> {
        let command = WorkerCommand::RecordCredentialsChanged {
            by: context.actor.clone(),
            at: self.repository.clock().now(),
        };
        // Decided first, so that an unknown or terminated worker stores nothing.
        let loaded = self.repository.load::<Worker>(request.id).await?;
        let events = loaded.state.decide(&command)?;
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
impl Handler<SetIdleDetection> for WorkerHandlers {
    async fn handle(&self, request: &SetIdleDetection, context: &RequestContext) -> Result<CommandOutcome, AppError> {
        let command = WorkerCommand::SetIdleDetection {
            enabled: request.enabled,
            by: context.actor.clone(),
            at: self.repository.clock().now(),
        };
        self.execute(request.id, command, context).await
    }
}

#[async_trait]
impl Handler<RecordWorkerObservation> for WorkerHandlers {
    async fn handle(
        &self,
        request: &RecordWorkerObservation,
        context: &RequestContext,
    ) -> Result<CommandOutcome, AppError> {
        let command = WorkerCommand::RecordObservation(request.observation.clone());
        self.execute(request.id, command, context).await
    }
}

#[async_trait]
impl Handler<RecordLabsSynced> for WorkerHandlers {
    async fn handle(&self, request: &RecordLabsSynced, context: &RequestContext) -> Result<CommandOutcome, AppError> {
        let command = WorkerCommand::RecordLabsSynced {
            counts: request.counts,
            at: self.repository.clock().now(),
        };
        self.execute(request.id, command, context).await
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
            now: self.repository.clock().now(),
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
