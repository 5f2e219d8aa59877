//! The facts a LabRecord stream holds.

use crate::kernel::ChangedFields;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The state of a lab as CML reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum LabState {
    DefinedOnCore,
    Stopped,
    Started,
    Queued,
    Booted,
}

impl LabState {
    pub fn as_str(self) -> &'static str {
        match self {
            LabState::DefinedOnCore => "DEFINED_ON_CORE",
            LabState::Stopped => "STOPPED",
            LabState::Started => "STARTED",
            LabState::Queued => "QUEUED",
            LabState::Booted => "BOOTED",
        }
    }
}

/// The descriptive fields of a lab whose changes are recorded as `details_changed`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LabDetails {
    pub title: String,
    pub description: String,
    pub notes: String,
    pub owner_username: String,
    pub owner_fullname: String,
    pub node_count: u32,
    pub link_count: u32,
    pub groups: Vec<String>,
}

/// Why a lab record was removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RemovalReason {
    /// The lab is no longer listed by its worker.
    VanishedFromCml,
    /// The worker that held the lab was terminated.
    WorkerTerminated,
    /// An operator removed the record.
    Operator,
}

crate::domain_events! {
    #[derive(Debug, Clone, PartialEq)]
    pub enum LabRecordEvent {
        "lab_record.discovered" => Discovered {
            worker_id: Uuid,
            lab_id: String,
            #[serde(flatten)]
            details: LabDetails,
            state: LabState,
            cml_created_at: Option<DateTime<Utc>>,
            cml_modified_at: Option<DateTime<Utc>>,
            discovered_at: DateTime<Utc>,
        },
        "lab_record.details_changed" => DetailsChanged {
            changed_fields: ChangedFields,
            #[serde(flatten)]
            details: LabDetails,
            cml_modified_at: Option<DateTime<Utc>>,
            changed_at: DateTime<Utc>,
        },
        "lab_record.state_changed" => StateChanged {
            previous: LabState,
            new: LabState,
            changed_at: DateTime<Utc>,
        },
        "lab_record.removed" => Removed {
            reason: RemovalReason,
            removed_at: DateTime<Utc>,
        },
    }
}
