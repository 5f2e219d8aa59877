//! `lab_records`: one document per lab seen on a worker.

use crate::projector::{decode, document, existing_view, ProjectionError, Projector};
use chrono::{DateTime, Utc};
use lablet_application::envelope::EventEnvelope;
use lablet_application::ports::CollectionSpec;
use lablet_application::read_model_queries::LAB_RECORDS;
use lablet_domain::lab_record::{LabDetails, LabRecordEvent, LabState, RemovalReason};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LabRecordView {
    pub id: String,
    pub worker_id: Uuid,
    pub lab_id: String,
    #[serde(flatten)]
    pub details: LabDetails,
    pub state: LabState,
    pub cml_created_at: Option<DateTime<Utc>>,
    pub cml_modified_at: Option<DateTime<Utc>>,
    pub first_seen_at: DateTime<Utc>,
    pub state_changed_at: Option<DateTime<Utc>>,
    pub removed_at: Option<DateTime<Utc>>,
    pub removal_reason: Option<RemovalReason>,
    pub version: u64,
    pub updated_at: DateTime<Utc>,
}

pub struct LabRecordsProjector;

impl Projector for LabRecordsProjector {
    fn collection(&self) -> CollectionSpec {
        LAB_RECORDS
    }

    fn handles(&self, event_type: &str) -> bool {
        event_type.starts_with("lab_record.")
    }

    fn project(
        &self,
        current: Option<&Map<String, Value>>,
        envelope: &EventEnvelope,
    ) -> Result<Map<String, Value>, ProjectionError> {
        let event: LabRecordEvent = decode(envelope)?;
        let view = match event {
            LabRecordEvent::Discovered {
                worker_id,
                lab_id,
                details,
                state,
                cml_created_at,
                cml_modified_at,
                discovered_at,
            } => {
                let first_seen_at = current
                    .and_then(|c| c.get("first_seen_at"))
                    .and_then(|v| serde_json::from_value(v.clone()).ok())
                    .unwrap_or(discovered_at);
                LabRecordView {
                    id: envelope.aggregate_id().to_owned(),
                    worker_id,
                    lab_id,
                    details,
                    state,
                    cml_created_at,
                    cml_modified_at,
                    first_seen_at,
                    state_changed_at: None,
                    removed_at: None,
                    removal_reason: None,
                    version: envelope.version,
                    updated_at: envelope.occurred_at,
                }
            }
            LabRecordEvent::DetailsChanged {
                details,
                cml_modified_at,
                ..
            } => {
                let mut view: LabRecordView = existing_view(current, envelope)?;
                view.details = details;
                view.cml_modified_at = cml_modified_at;
                view
            }
            LabRecordEvent::StateChanged { new, changed_at, .. } => {
                let mut view: LabRecordView = existing_view(current, envelope)?;
                view.state = new;
                view.state_changed_at = Some(changed_at);
                view
            }
            LabRecordEvent::Removed { reason, removed_at } => {
                let mut view: LabRecordView = existing_view(current, envelope)?;
                view.removed_at = Some(removed_at);
                view.removal_reason = Some(reason);
                view
            }
        };
        let mut view = view;
        view.version = envelope.version;
        view.updated_at = envelope.occurred_at;
        document(&view)
    }
}
