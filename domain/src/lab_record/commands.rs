//! What can be asked of a LabRecord.

use super::events::{LabDetails, LabState, RemovalReason};
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// One look at a lab on a worker, as the refresh job or an operator reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct LabObservation {
    pub worker_id: Uuid,
    pub lab_id: String,
    pub details: LabDetails,
    pub state: LabState,
    pub cml_created_at: Option<DateTime<Utc>>,
    pub cml_modified_at: Option<DateTime<Utc>>,
    pub observed_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::large_enum_variant)] // commands live briefly on the stack; boxing buys nothing
pub enum LabRecordCommand {
    Observe(LabObservation),
    Remove {
        reason: RemovalReason,
        removed_at: DateTime<Utc>,
    },
}
