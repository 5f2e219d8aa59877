//! `worker_templates`: one document per template, with its content and whether it is enabled.

use crate::projector::{decode, existing, Patch, ProjectionError, Projector};
use chrono::{DateTime, Utc};
use lablet_application::envelope::EventEnvelope;
use lablet_application::ports::CollectionSpec;
use lablet_application::read_model_queries::WORKER_TEMPLATES;
use lablet_domain::worker_template::{TemplateContent, WorkerTemplateEvent};
use lablet_domain::AggregateKind;
use serde::Serialize;
use serde_json::{Map, Value};

/// The shape of a template document (plus `version` and `updated_at`, stamped by the runner).
#[derive(Debug, Clone, Serialize)]
pub struct WorkerTemplateView {
    pub id: String,
    pub name: String,
    #[serde(flatten)]
    pub content: TemplateContent,
    pub enabled: bool,
    pub defined_by: String,
    pub defined_at: DateTime<Utc>,
    pub changed_at: Option<DateTime<Utc>>,
}

pub struct WorkerTemplatesProjector;

impl Projector for WorkerTemplatesProjector {
    fn collection(&self) -> CollectionSpec {
        WORKER_TEMPLATES
    }

    fn kind(&self) -> AggregateKind {
        AggregateKind::WorkerTemplate
    }

    fn project(
        &self,
        current: Option<&Map<String, Value>>,
        envelope: &EventEnvelope,
    ) -> Result<Patch, ProjectionError> {
        let event: WorkerTemplateEvent = decode(envelope)?;
        let mut patch = Patch::default();
        if let WorkerTemplateEvent::Defined {
            name,
            content,
            enabled,
            defined_by,
            defined_at,
        } = event
        {
            patch.set_all(&WorkerTemplateView {
                id: envelope.aggregate_id().to_owned(),
                name,
                content,
                enabled,
                defined_by,
                defined_at,
                changed_at: None,
            })?;
            return Ok(patch);
        }
        existing(current, envelope)?;
        match event {
            WorkerTemplateEvent::Defined { .. } => unreachable!("handled above"),
            WorkerTemplateEvent::Changed {
                content, changed_at, ..
            } => {
                patch.set_all(&content)?;
                patch.set("changed_at", changed_at)?;
            }
            WorkerTemplateEvent::Enabled { .. } => {
                patch.set("enabled", true)?;
            }
            WorkerTemplateEvent::Disabled { .. } => {
                patch.set("enabled", false)?;
            }
        }
        Ok(patch)
    }
}
