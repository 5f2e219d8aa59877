//! `lablet_instances`: one document per reservation of a lablet definition.

use crate::projector::{decode, existing, Patch, ProjectionError, Projector};
use chrono::{DateTime, Utc};
use lablet_application::envelope::EventEnvelope;
use lablet_application::ports::CollectionSpec;
use lablet_application::read_model_queries::LABLET_INSTANCES;
use lablet_domain::lablet_instance::{
    GradingScore, InstanceState, LabletInstanceEvent, PlacementSummary, StepOutcome, LAB_DELETE_STEP,
};
use lablet_domain::AggregateKind;
use serde::Serialize;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use uuid::Uuid;

/// The shape of an instance document (plus `version` and `updated_at`, stamped by the runner).
#[derive(Debug, Clone, Serialize)]
pub struct LabletInstanceView {
    pub id: String,
    pub definition_id: Uuid,
    pub definition_version: String,
    pub owner_id: String,
    pub reservation_id: String,
    pub timeslot_start: DateTime<Utc>,
    pub timeslot_end: DateTime<Utc>,
    pub state: InstanceState,
    pub state_reason: Option<String>,
    pub worker_id: Option<Uuid>,
    /// Port name → port on the worker, once placed.
    pub ports: BTreeMap<String, u16>,
    /// The last placement decision: the one that placed it, or why nothing could yet.
    pub placement: Option<PlacementSummary>,
    /// Why it is still pending, when the scheduler found no worker for it.
    pub placement_reason: Option<String>,
    pub capacity_requested_at: Option<DateTime<Utc>>,
    pub score: Option<GradingScore>,
    /// The lab on its worker, once imported; `lab_removed` once deleted.
    pub lab_id: Option<String>,
    pub lab_removed: bool,
    /// The last lifecycle step recorded: `{step, outcome, detail, work_order_id, at}`.
    pub last_step: Option<Value>,
    pub assessment_requested_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub stopped_at: Option<DateTime<Utc>>,
    pub terminated_at: Option<DateTime<Utc>>,
}

pub struct LabletInstancesProjector;

impl Projector for LabletInstancesProjector {
    fn collection(&self) -> CollectionSpec {
        LABLET_INSTANCES
    }

    fn kind(&self) -> AggregateKind {
        AggregateKind::LabletInstance
    }

    fn project(
        &self,
        current: Option<&Map<String, Value>>,
        envelope: &EventEnvelope,
    ) -> Result<Patch, ProjectionError> {
        let event: LabletInstanceEvent = decode(envelope)?;
        let mut patch = Patch::default();
        if let LabletInstanceEvent::Requested {
            definition_id,
            definition_version,
            owner_id,
            reservation_id,
            timeslot_start,
            timeslot_end,
            requested_at,
        } = event
        {
            patch.set_all(&LabletInstanceView {
                id: envelope.aggregate_id().to_owned(),
                definition_id,
                definition_version,
                owner_id,
                reservation_id,
                timeslot_start,
                timeslot_end,
                state: InstanceState::Pending,
                state_reason: None,
                worker_id: None,
                ports: BTreeMap::new(),
                placement: None,
                placement_reason: None,
                capacity_requested_at: None,
                score: None,
                lab_id: None,
                lab_removed: false,
                last_step: None,
                assessment_requested_at: None,
                created_at: requested_at,
                started_at: None,
                stopped_at: None,
                terminated_at: None,
            })?;
            return Ok(patch);
        }
        let document = existing(current, envelope)?;
        match &event {
            LabletInstanceEvent::Requested { .. } => {}
            LabletInstanceEvent::Scheduled {
                change,
                worker_id,
                ports,
                placement,
            } => {
                patch
                    .set("worker_id", worker_id)?
                    .set("state_reason", &change.reason)?
                    .set("ports", ports)?
                    .set("placement_reason", Value::Null)?;
                if placement.is_some() {
                    patch.set("placement", placement)?;
                }
            }
            LabletInstanceEvent::CapacityRequested {
                reason, placement, at, ..
            } => {
                patch
                    .set("placement_reason", reason)?
                    .set("placement", placement)?
                    .set("capacity_requested_at", at)?;
            }
            LabletInstanceEvent::Started(change) => {
                if document.get("started_at").is_none_or(Value::is_null) {
                    patch.set("started_at", change.at)?;
                }
                patch.set("state_reason", &change.reason)?;
            }
            LabletInstanceEvent::Stopped(change) => {
                patch
                    .set("stopped_at", change.at)?
                    .set("state_reason", &change.reason)?;
            }
            LabletInstanceEvent::Terminated(change) => {
                patch
                    .set("terminated_at", change.at)?
                    .set("state_reason", &change.reason)?;
            }
            LabletInstanceEvent::InstantiationStarted(change)
            | LabletInstanceEvent::CollectionStarted(change)
            | LabletInstanceEvent::GradingStarted(change)
            | LabletInstanceEvent::Stopping(change)
            | LabletInstanceEvent::Archived(change) => {
                patch.set("state_reason", &change.reason)?;
            }
            LabletInstanceEvent::TimeslotExtended { new_end, .. } => {
                patch.set("timeslot_end", new_end)?;
            }
            LabletInstanceEvent::ScoreRecorded { score, .. } => {
                patch.set("score", score)?;
            }
            LabletInstanceEvent::StepRecorded {
                step,
                work_order_id,
                outcome,
                detail,
                lab_id,
                at,
            } => {
                let last = json!({"step": step, "outcome": outcome, "detail": detail,
                                  "work_order_id": work_order_id, "at": at});
                patch.set("last_step", last)?;
                if lab_id.is_some() {
                    patch.set("lab_id", lab_id)?;
                }
                if step == LAB_DELETE_STEP && *outcome == StepOutcome::Completed {
                    patch.set("lab_removed", true)?;
                }
            }
            LabletInstanceEvent::AssessmentRequested { at, .. } => {
                patch.set("assessment_requested_at", at)?;
            }
        }
        if let Some(state) = event.target_state() {
            patch.set("state", state)?;
        }
        Ok(patch)
    }
}
