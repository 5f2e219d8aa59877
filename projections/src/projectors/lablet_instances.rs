//! `lablet_instances`: one document per reservation of a lablet definition.

use crate::projector::{decode, document, existing_view, ProjectionError, Projector};
use chrono::{DateTime, Utc};
use lablet_application::envelope::EventEnvelope;
use lablet_application::ports::CollectionSpec;
use lablet_application::read_model_queries::LABLET_INSTANCES;
use lablet_domain::lablet_instance::{GradingScore, InstanceState, LabletInstanceEvent};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

#[derive(Debug, Clone, Serialize, Deserialize)]
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
    pub score: Option<GradingScore>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub stopped_at: Option<DateTime<Utc>>,
    pub terminated_at: Option<DateTime<Utc>>,
    pub version: u64,
    pub updated_at: DateTime<Utc>,
}

pub struct LabletInstancesProjector;

impl Projector for LabletInstancesProjector {
    fn collection(&self) -> CollectionSpec {
        LABLET_INSTANCES
    }

    fn handles(&self, event_type: &str) -> bool {
        event_type.starts_with("lablet_instance.")
    }

    fn project(
        &self,
        current: Option<&Map<String, Value>>,
        envelope: &EventEnvelope,
    ) -> Result<Map<String, Value>, ProjectionError> {
        let event: LabletInstanceEvent = decode(envelope)?;
        let mut view = if let LabletInstanceEvent::Requested {
            definition_id,
            definition_version,
            owner_id,
            reservation_id,
            timeslot_start,
            timeslot_end,
            requested_at,
        } = &event
        {
            LabletInstanceView {
                id: envelope.aggregate_id().to_owned(),
                definition_id: *definition_id,
                definition_version: definition_version.clone(),
                owner_id: owner_id.clone(),
                reservation_id: reservation_id.clone(),
                timeslot_start: *timeslot_start,
                timeslot_end: *timeslot_end,
                state: InstanceState::Pending,
                state_reason: None,
                worker_id: None,
                score: None,
                created_at: *requested_at,
                started_at: None,
                stopped_at: None,
                terminated_at: None,
                version: 0,
                updated_at: *requested_at,
            }
        } else {
            existing_view(current, envelope)?
        };
        match &event {
            LabletInstanceEvent::Requested { .. } => {}
            LabletInstanceEvent::Scheduled { change, worker_id } => {
                view.worker_id = *worker_id;
                view.state_reason = change.reason.clone();
            }
            LabletInstanceEvent::InstantiationStarted(change)
            | LabletInstanceEvent::CollectionStarted(change)
            | LabletInstanceEvent::GradingStarted(change)
            | LabletInstanceEvent::Stopping(change)
            | LabletInstanceEvent::Archived(change) => view.state_reason = change.reason.clone(),
            LabletInstanceEvent::Started(change) => {
                view.started_at.get_or_insert(change.at);
                view.state_reason = change.reason.clone();
            }
            LabletInstanceEvent::Stopped(change) => {
                view.stopped_at = Some(change.at);
                view.state_reason = change.reason.clone();
            }
            LabletInstanceEvent::Terminated(change) => {
                view.terminated_at = Some(change.at);
                view.state_reason = change.reason.clone();
            }
            LabletInstanceEvent::TimeslotExtended { new_end, .. } => view.timeslot_end = *new_end,
            LabletInstanceEvent::ScoreRecorded { score, .. } => view.score = Some(score.clone()),
        }
        if let Some(state) = event.target_state() {
            view.state = state;
        }
        view.version = envelope.version;
        view.updated_at = envelope.occurred_at;
        document(&view)
    }
}
