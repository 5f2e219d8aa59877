//! What can be asked of a LabletInstance.

use super::events::GradingScore;
use super::state::InstanceState;
use chrono::{DateTime, Utc};
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct InstanceRequest {
    pub definition_id: Uuid,
    pub definition_version: String,
    pub owner_id: String,
    pub reservation_id: String,
    pub timeslot_start: DateTime<Utc>,
    pub timeslot_end: DateTime<Utc>,
    pub requested_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum LabletInstanceCommand {
    Request(InstanceRequest),
    /// Any move of the state machine, `terminated` included.
    Transition {
        to: InstanceState,
        reason: Option<String>,
        worker_id: Option<Uuid>,
        at: DateTime<Utc>,
    },
    ExtendTimeslot {
        new_end: DateTime<Utc>,
        at: DateTime<Utc>,
    },
    RecordScore {
        score: GradingScore,
        at: DateTime<Utc>,
    },
}
