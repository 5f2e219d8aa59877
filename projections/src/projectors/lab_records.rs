//! `lab_records`: one document per lab seen on a worker.

use crate::projector::{decode, existing, Patch, ProjectionError, Projector};
use chrono::{DateTime, Utc};
use lablet_application::envelope::EventEnvelope;
use lablet_application::ports::CollectionSpec;
use lablet_application::read_model_queries::LAB_RECORDS;
use lablet_domain::lab_record::{LabDetails, LabRecordEvent, LabState, RemovalReason};
use lablet_domain::AggregateKind;
use serde::Serialize;
use serde_json::{Map, Value};
use uuid::Uuid;

/// The shape of a lab record document (plus `version` and `updated_at`, stamped by the runner).
#[derive(Debug, Clone, Serialize)]
pub struct LabRecordView {
    pub id: String,
    pub worker_id: Uuid,
    pub lab_id: String,
    #[serde(flatten)]
    pub details: LabDetails,
    pub state: LabState,
    pub cml_created_at: Option<DateTime<Utc>>,
    pub cml_modified_at: Option<DateTime<Utc>>,
    pub first_seen_at: Value,
    pub state_changed_at: Option<DateTime<Utc>>,
    pub removed_at: Option<DateTime<Utc>>,
    pub removal_reason: Option<RemovalReason>,
}

pub struct LabRecordsProjector;

impl Projector for LabRecordsProjector {
    fn collection(&self) -> CollectionSpec {
        LAB_RECORDS
    }

    fn kind(&self) -> AggregateKind {
        AggregateKind::LabRecord
    }

    fn project(
        &self,
        current: Option<&Map<String, Value>>,
        envelope: &EventEnvelope,
    ) -> Result<Patch, ProjectionError> {
        let mut patch = Patch::default();
        match decode(envelope)? {
            LabRecordEvent::Discovered {
                worker_id,
                lab_id,
                details,
                state,
                cml_created_at,
                cml_modified_at,
                discovered_at,
            } => {
                // A lab seen again after its removal keeps the time it was first seen.
                let first_seen_at = current
                    .and_then(|c| c.get("first_seen_at"))
                    .filter(|v| !v.is_null())
                    .cloned()
                    .unwrap_or_else(|| serde_json::json!(discovered_at));
                patch.set_all(&LabRecordView {
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
                })?;
            }
            LabRecordEvent::DetailsChanged {
                details,
                cml_modified_at,
                ..
            } => {
                existing(current, envelope)?;
                patch.set_all(&details)?.set("cml_modified_at", cml_modified_at)?;
            }
            LabRecordEvent::StateChanged { new, changed_at, .. } => {
                existing(current, envelope)?;
                patch.set("state", new)?.set("state_changed_at", changed_at)?;
            }
            LabRecordEvent::Removed { reason, removed_at } => {
                existing(current, envelope)?;
                patch.set("removed_at", removed_at)?.set("removal_reason", reason)?;
            }
        }
        Ok(patch)
    }
}
