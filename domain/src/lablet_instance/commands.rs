//! What can be asked of a LabletInstance.

use super::events::{GradingScore, PlacementSummary, StepOutcome};
use super::state::InstanceState;
use crate::kernel::Command;
use crate::values::{FreeText, Name, Timeslot};
use crate::worker::Capacity;
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use uuid::Uuid;

/// A reservation of a lablet definition's version, for one owner, in one timeslot.
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceRequest {
    pub definition_id: Uuid,
    pub definition_version: Name<256>,
    pub owner_id: Name<256>,
    pub reservation_id: Name<256>,
    pub timeslot: Timeslot,
}

/// A grading result that makes sense: a positive finite maximum, a total from zero to it, no
/// negative or infinite part.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckedScore(GradingScore);

impl CheckedScore {
    /// The score, or each field that is wrong with why.
    pub fn parse(score: GradingScore) -> Result<Self, Vec<(String, &'static str)>> {
        let mut problems = Vec::new();
        if !score.max.is_finite() || score.max <= 0.0 {
            problems.push(("max".to_owned(), "must be a positive number"));
        }
        if !score.total.is_finite() || score.total < 0.0 {
            problems.push(("total".to_owned(), "must not be negative"));
        } else if score.total > score.max {
            problems.push(("total".to_owned(), "must not exceed max"));
        }
        for (name, points) in &score.breakdown {
            if !points.is_finite() || *points < 0.0 {
                problems.push((format!("breakdown.{name}"), "must not be negative"));
            }
        }
        if problems.is_empty() {
            Ok(CheckedScore(score))
        } else {
            Err(problems)
        }
    }

    pub fn score(&self) -> &GradingScore {
        &self.0
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum LabletInstanceCommand {
    Request(InstanceRequest),
    /// Any move of the state machine, `terminated` included.
    Transition {
        to: InstanceState,
        reason: Option<FreeText<1024>>,
        worker_id: Option<Uuid>,
    },
    ExtendTimeslot {
        new_end: DateTime<Utc>,
    },
    RecordScore {
        score: CheckedScore,
    },
    /// The scheduler placed the pending instance: `scheduled` on `worker_id` with its ports.
    Place {
        worker_id: Uuid,
        ports: BTreeMap<String, u16>,
        placement: PlacementSummary,
    },
    /// A lifecycle step (the work order `work_order_id`) ended; recorded once per order.
    RecordStep {
        step: String,
        work_order_id: Uuid,
        outcome: StepOutcome,
        detail: Option<String>,
        lab_id: Option<String>,
    },
    /// Ask the grading system to collect the lab (once per collection).
    RequestAssessment,
    /// The scheduler found no worker for the pending instance; recorded when the reason is new.
    RequestCapacity {
        reason: String,
        needs: Capacity,
        placement: PlacementSummary,
    },
}

impl Command for LabletInstanceCommand {
    fn name(&self) -> &'static str {
        match self {
            LabletInstanceCommand::Request(_) => "lablet_instance.request",
            LabletInstanceCommand::Transition { .. } => "lablet_instance.transition",
            LabletInstanceCommand::ExtendTimeslot { .. } => "lablet_instance.extend_timeslot",
            LabletInstanceCommand::RecordScore { .. } => "lablet_instance.record_score",
            LabletInstanceCommand::Place { .. } => "lablet_instance.place",
            LabletInstanceCommand::RecordStep { .. } => "lablet_instance.record_step",
            LabletInstanceCommand::RequestAssessment => "lablet_instance.request_assessment",
            LabletInstanceCommand::RequestCapacity { .. } => "lablet_instance.request_capacity",
        }
    }
}
