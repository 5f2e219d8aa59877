//! The facts a LabletInstance stream holds.

use super::state::InstanceState;
use crate::worker::Capacity;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use uuid::Uuid;

/// The common body of every state-machine move.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StateChange {
    pub from: InstanceState,
    pub reason: Option<String>,
    pub at: DateTime<Utc>,
}

/// A grading result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GradingScore {
    pub total: f64,
    pub max: f64,
    pub passed: bool,
    #[serde(default)]
    pub breakdown: BTreeMap<String, f64>,
}

/// What a placement decision said, kept with the instance: how many workers could take it,
/// how many were turned down for each reason, and a few of them with the reason in words.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PlacementSummary {
    pub candidates: u32,
    /// Rejection reason (`capacity`, `license`, `not_taking_work`, `ports`, `personal_limit`,
    /// `less_full`) → workers.
    pub rejected: BTreeMap<String, u32>,
    /// The first rejected workers by id, at most [`PlacementSummary::EXAMPLES`].
    pub examples: Vec<RejectedWorker>,
}

/// One worker turned down, and why, in words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RejectedWorker {
    pub worker_id: Uuid,
    pub reason: String,
}

impl PlacementSummary {
    /// Rejected workers named one by one.
    pub const EXAMPLES: usize = 10;
}

/// How a step of the lifecycle (a work order) ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum StepOutcome {
    Completed,
    Failed,
}

crate::domain_events! {
    #[derive(Debug, Clone, PartialEq)]
    pub enum LabletInstanceEvent {
        "lablet_instance.requested" => Requested {
            definition_id: Uuid,
            definition_version: String,
            owner_id: String,
            reservation_id: String,
            timeslot_start: DateTime<Utc>,
            timeslot_end: DateTime<Utc>,
            requested_at: DateTime<Utc>,
        },
        "lablet_instance.scheduled" => Scheduled {
            #[serde(flatten)]
            change: StateChange,
            worker_id: Option<Uuid>,
            /// Port name → port on the worker (placed by the scheduler; none when moved by hand).
            #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
            ports: BTreeMap<String, u16>,
            /// The decision that placed it (the scheduler's; none when moved by hand).
            #[serde(default, skip_serializing_if = "Option::is_none")]
            placement: Option<PlacementSummary>,
        },
        "lablet_instance.instantiation_started" => InstantiationStarted(StateChange),
        "lablet_instance.started" => Started(StateChange),
        "lablet_instance.collection_started" => CollectionStarted(StateChange),
        "lablet_instance.grading_started" => GradingStarted(StateChange),
        "lablet_instance.stopping" => Stopping(StateChange),
        "lablet_instance.stopped" => Stopped(StateChange),
        "lablet_instance.archived" => Archived(StateChange),
        "lablet_instance.terminated" => Terminated(StateChange),
        "lablet_instance.timeslot_extended" => TimeslotExtended {
            previous_end: DateTime<Utc>,
            new_end: DateTime<Utc>,
            at: DateTime<Utc>,
        },
        "lablet_instance.score_recorded" => ScoreRecorded { score: GradingScore, at: DateTime<Utc> },
        /// No worker can take the instance now: it stays pending, and the fleet is asked for
        /// capacity (what it needs, and why nothing fits).
        /// A step of the lifecycle ended: the work order that ran it, and how it ended. A step
        /// that imported the lab names it.
        "lablet_instance.step_recorded" => StepRecorded {
            step: String,
            work_order_id: Uuid,
            outcome: StepOutcome,
            #[serde(default, skip_serializing_if = "Option::is_none")]
            detail: Option<String>,
            #[serde(default, skip_serializing_if = "Option::is_none")]
            lab_id: Option<String>,
            at: DateTime<Utc>,
        },
        /// The lab is to be collected for grading: published for the grading system.
        "lablet_instance.assessment_requested" => AssessmentRequested {
            lab_id: String,
            worker_id: Uuid,
            definition_id: Uuid,
            definition_version: String,
            reservation_id: String,
            at: DateTime<Utc>,
        },
        "lablet_instance.capacity_requested" => CapacityRequested {
            reason: String,
            needs: Capacity,
            placement: PlacementSummary,
            at: DateTime<Utc>,
        },
    }
}

impl LabletInstanceEvent {
    /// The event that moves an instance into `to`.
    pub fn entering(to: InstanceState, change: StateChange, worker_id: Option<Uuid>) -> Option<Self> {
        use InstanceState::*;
        Some(match to {
            Pending => return None,
            Scheduled => LabletInstanceEvent::Scheduled {
                change,
                worker_id,
                ports: BTreeMap::new(),
                placement: None,
            },
            Instantiating => LabletInstanceEvent::InstantiationStarted(change),
            Running => LabletInstanceEvent::Started(change),
            Collecting => LabletInstanceEvent::CollectionStarted(change),
            Grading => LabletInstanceEvent::GradingStarted(change),
            Stopping => LabletInstanceEvent::Stopping(change),
            Stopped => LabletInstanceEvent::Stopped(change),
            Archived => LabletInstanceEvent::Archived(change),
            Terminated => LabletInstanceEvent::Terminated(change),
        })
    }

    /// The state this event leaves the instance in, if it is a state-machine move.
    pub fn target_state(&self) -> Option<InstanceState> {
        use LabletInstanceEvent::*;
        Some(match self {
            Requested { .. } => InstanceState::Pending,
            Scheduled { .. } => InstanceState::Scheduled,
            InstantiationStarted(_) => InstanceState::Instantiating,
            Started(_) => InstanceState::Running,
            CollectionStarted(_) => InstanceState::Collecting,
            GradingStarted(_) => InstanceState::Grading,
            Stopping(_) => InstanceState::Stopping,
            Stopped(_) => InstanceState::Stopped,
            Archived(_) => InstanceState::Archived,
            Terminated(_) => InstanceState::Terminated,
            TimeslotExtended { .. }
            | ScoreRecorded { .. }
            | CapacityRequested { .. }
            | StepRecorded { .. }
            | AssessmentRequested { .. } => return None,
        })
    }
}
