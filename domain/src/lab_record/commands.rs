//! What can be asked of a LabRecord.

use super::events::{LabDetails, LabState, RemovalReason};
use crate::kernel::Command;
use crate::values::LabId;
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// One look at a lab on a worker, as the refresh job or an operator reports it; the moment it
/// was seen is the decision's.
#[derive(Debug, Clone, PartialEq)]
pub struct LabObservation {
    pub worker_id: Uuid,
    pub lab_id: LabId,
    pub details: LabDetails,
    pub state: LabState,
    pub cml_created_at: Option<DateTime<Utc>>,
    pub cml_modified_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::large_enum_variant)] // commands live briefly on the stack; boxing buys nothing
pub enum LabRecordCommand {
    Observe(LabObservation),
    Remove { reason: RemovalReason },
}

impl Command for LabRecordCommand {
    fn name(&self) -> &'static str {
        match self {
            LabRecordCommand::Observe(_) => "lab_record.observe",
            LabRecordCommand::Remove { .. } => "lab_record.remove",
        }
    }
}
