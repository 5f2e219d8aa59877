//! What the built-in executors do for each kind of order, on the worker's CML through the CML
//! port. Every step is idempotent: run again after a crash, it finds what an earlier attempt
//! did (the lab it imported, by its title; a lab already started, stopped, wiped or gone)
//! instead of doing it twice.
//!
//! | kind | payload | does | result |
//! |---|---|---|---|
//! | `lab.import` | `{instance_id, worker_id, definition_id, definition_version}` | fetches the version's artifact, checks its SHA-256, imports it titled `lablet-<instance_id>` | `{lab_id}` |
//! | `lab.start` | `{instance_id, worker_id, lab_id}` | starts the lab, waits until CML says `STARTED` | `{lab_id, state}` |
//! | `lab.stop` | same | stops it | `{lab_id, state}` |
//! | `lab.wipe` | same | wipes it (after a stop) | `{lab_id, state}` |
//! | `lab.delete` | same | deletes it (gone already counts as done) | `{lab_id}` |
//! | `assessment.collect` | `{instance_id}` | records the collection request, published as a CloudEvent for the grading system | `{requested: true}` |

use crate::commands::Execute;
use crate::context::RequestContext;
use crate::error::AppError;
use crate::mediator::Mediator;
use crate::ports::cml::LabAction;
use crate::ports::{ArtifactSource, CmlClient, CmlConnector, CmlError, CmlTarget};
use crate::repository::AggregateRepository;
use lablet_domain::lablet_definition::{LabletDefinition, SemVer};
use lablet_domain::lablet_instance::{LabletInstance, LabletInstanceCommand};
use lablet_domain::worker::Worker;
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// The kinds the built-in executors run.
pub const LAB_IMPORT: &str = "lab.import";
pub const LAB_START: &str = "lab.start";
pub const LAB_STOP: &str = "lab.stop";
pub const LAB_WIPE: &str = "lab.wipe";
pub const LAB_DELETE: &str = "lab.delete";
pub const ASSESSMENT_COLLECT: &str = "assessment.collect";
pub const BUILTIN_KINDS: [&str; 6] = [
    LAB_IMPORT,
    LAB_START,
    LAB_STOP,
    LAB_WIPE,
    LAB_DELETE,
    ASSESSMENT_COLLECT,
];

/// How often, and how many times, `lab.start` asks CML whether the lab has started.
const START_POLL: Duration = Duration::from_millis(250);
const START_POLLS: u32 = 120;

/// Why a step did not succeed, and whether another attempt may.
#[derive(Debug, Clone, PartialEq)]
pub struct StepError {
    pub message: String,
    pub retryable: bool,
}

impl StepError {
    fn retryable(message: impl Into<String>) -> Self {
        StepError {
            message: message.into(),
            retryable: true,
        }
    }

    fn permanent(message: impl Into<String>) -> Self {
        StepError {
            message: message.into(),
            retryable: false,
        }
    }
}

impl From<CmlError> for StepError {
    /// CML refusing the request itself (a 4xx) will refuse it again; anything else may pass.
    fn from(err: CmlError) -> Self {
        StepError {
            retryable: !err.is_answer(),
            message: err.to_string(),
        }
    }
}

impl From<AppError> for StepError {
    fn from(err: AppError) -> Self {
        let retryable = matches!(
            err,
            AppError::Unavailable(_) | AppError::Conflict(_) | AppError::ProjectionLagging { .. }
        );
        StepError {
            message: err.to_string(),
            retryable,
        }
    }
}

/// The payload of the lab kinds.
#[derive(Debug, Clone, Deserialize)]
pub struct LabOrder {
    pub instance_id: Uuid,
    #[serde(default)]
    pub worker_id: Option<Uuid>,
    #[serde(default)]
    pub definition_id: Option<Uuid>,
    #[serde(default)]
    pub definition_version: Option<String>,
    #[serde(default)]
    pub lab_id: Option<String>,
}

/// The title a lablet's lab has on its worker: how a rerun finds the lab it imported.
pub fn lab_title(instance_id: Uuid) -> String {
    format!("lablet-{instance_id}")
}

pub struct LabSteps {
    repository: Arc<AggregateRepository>,
    mediator: Arc<Mediator>,
    connector: Arc<dyn CmlConnector>,
    artifacts: Arc<dyn ArtifactSource>,
}

impl LabSteps {
    pub fn new(
        repository: Arc<AggregateRepository>,
        mediator: Arc<Mediator>,
        connector: Arc<dyn CmlConnector>,
        artifacts: Arc<dyn ArtifactSource>,
    ) -> Self {
        LabSteps {
            repository,
            mediator,
            connector,
            artifacts,
        }
    }

    /// Runs one order of `kind`.
    pub async fn run(&self, kind: &str, payload: &Value, context: &RequestContext) -> Result<Value, StepError> {
        let order: LabOrder = serde_json::from_value(payload.clone())
            .map_err(|e| StepError::permanent(format!("the payload does not fit {kind}: {e}")))?;
        match kind {
            LAB_IMPORT => self.import(&order).await,
            LAB_START => self.start(&order).await,
            LAB_STOP => self.act(&order, LabAction::Stop, &["STOPPED", "DEFINED_ON_CORE"]).await,
            LAB_WIPE => self.act(&order, LabAction::Wipe, &["DEFINED_ON_CORE"]).await,
            LAB_DELETE => self.delete(&order).await,
            ASSESSMENT_COLLECT => self.collect(&order, context).await,
            other => Err(StepError::permanent(format!("no built-in executor runs `{other}`"))),
        }
    }

    async fn client(&self, order: &LabOrder) -> Result<Arc<dyn CmlClient>, StepError> {
        let worker_id = order
            .worker_id
            .ok_or_else(|| StepError::permanent("the payload names no worker_id"))?;
        let worker = self.repository.load::<Worker>(worker_id).await?.state;
        let endpoint = worker
            .endpoint
            .ok_or_else(|| StepError::permanent(format!("worker {worker_id} has no endpoint")))?;
        let target = CmlTarget {
            worker_id,
            endpoint,
            insecure_tls: worker.insecure_tls,
            credentials_changed_at: worker.credentials_changed_at,
        };
        Ok(self.connector.client(&target).await?)
    }

    fn lab_id(order: &LabOrder) -> Result<&str, StepError> {
        order
            .lab_id
            .as_deref()
            .ok_or_else(|| StepError::permanent("the payload names no lab_id"))
    }

    /// The lab an earlier attempt imported for this instance, if any.
    async fn imported(&self, client: &dyn CmlClient, title: &str) -> Result<Option<String>, StepError> {
        for id in client.lab_ids().await? {
            match client.lab(&id).await {
                Ok(lab) if lab.title == title => return Ok(Some(id)),
                Ok(_) | Err(CmlError::Status { status: 404, .. }) => {}
                Err(err) => return Err(err.into()),
            }
        }
        Ok(None)
    }

    async fn import(&self, order: &LabOrder) -> Result<Value, StepError> {
        let client = self.client(order).await?;
        let title = lab_title(order.instance_id);
        if let Some(lab_id) = self.imported(client.as_ref(), &title).await? {
            return Ok(json!({"lab_id": lab_id, "found": true}));
        }
        let (Some(definition_id), Some(version)) = (order.definition_id, order.definition_version.as_deref()) else {
            return Err(StepError::permanent(
                "the payload names no definition_id and definition_version",
            ));
        };
        let version = SemVer::parse(version).map_err(StepError::permanent)?;
        let definition = self.repository.load::<LabletDefinition>(definition_id).await?.state;
        let content = definition
            .versions
            .get(&version)
            .map(|state| state.content.clone())
            .ok_or_else(|| StepError::permanent(format!("definition {definition_id} has no version {version}")))?;
        let artifact = self
            .artifacts
            .fetch(&content.artifact_uri)
            .await
            .map_err(|e| StepError::retryable(e.to_string()))?;
        if !artifact.facts.sha256.eq_ignore_ascii_case(&content.topology_sha256) {
            return Err(StepError::permanent(format!(
                "the artifact's SHA-256 is {}, not the {} its version declares",
                artifact.facts.sha256, content.topology_sha256
            )));
        }
        let imported = client.import_lab(&artifact.topology, Some(&title)).await?;
        Ok(json!({"lab_id": imported.id, "found": false}))
    }

    async fn start(&self, order: &LabOrder) -> Result<Value, StepError> {
        let client = self.client(order).await?;
        let lab_id = Self::lab_id(order)?;
        if client.lab(lab_id).await?.state != "STARTED" {
            client.lab_action(lab_id, LabAction::Start).await?;
        }
        for _ in 0..START_POLLS {
            let state = client.lab(lab_id).await?.state;
            if state == "STARTED" {
                return Ok(json!({"lab_id": lab_id, "state": state}));
            }
            tokio::time::sleep(START_POLL).await;
        }
        Err(StepError::retryable(format!("lab {lab_id} has not started yet")))
    }

    /// `action` on the lab unless it is in one of `done` already.
    async fn act(&self, order: &LabOrder, action: LabAction, done: &[&str]) -> Result<Value, StepError> {
        let client = self.client(order).await?;
        let lab_id = Self::lab_id(order)?;
        let state = client.lab(lab_id).await?.state;
        if !done.contains(&state.as_str()) {
            client.lab_action(lab_id, action).await?;
        }
        let state = client.lab(lab_id).await?.state;
        Ok(json!({"lab_id": lab_id, "state": state}))
    }

    async fn delete(&self, order: &LabOrder) -> Result<Value, StepError> {
        let client = self.client(order).await?;
        let lab_id = Self::lab_id(order)?;
        match client.delete_lab(lab_id).await {
            Ok(()) | Err(CmlError::Status { status: 404, .. }) => Ok(json!({"lab_id": lab_id})),
            Err(err) => Err(err.into()),
        }
    }

    async fn collect(&self, order: &LabOrder, context: &RequestContext) -> Result<Value, StepError> {
        let command = Execute::<LabletInstance>::on(order.instance_id, LabletInstanceCommand::RequestAssessment);
        self.mediator.send(command, context).await?;
        Ok(json!({"requested": true}))
    }
}
