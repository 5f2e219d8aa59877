//! The instance's side of its lifecycle pipeline: each step's outcome recorded once (the lab id
//! with the import), and the request to collect the lab for grading.

use super::aggregate::LabletInstance;
use super::events::{LabletInstanceEvent, StepOutcome};
use super::state::InstanceState;
use crate::kernel::DomainError;
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// The step that removes the lab from its worker; once it completed, nothing is left behind.
pub const LAB_DELETE_STEP: &str = "lab.delete";

/// A step's outcome as the lifecycle reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct StepReport<'a> {
    pub step: &'a str,
    pub work_order_id: Uuid,
    pub outcome: StepOutcome,
    pub detail: Option<&'a str>,
    pub lab_id: Option<&'a str>,
}

impl LabletInstance {
    /// Records a step once per work order; a lab id other than the one recorded is refused.
    pub(super) fn record_step(
        &self,
        report: StepReport<'_>,
        at: DateTime<Utc>,
    ) -> Result<Vec<LabletInstanceEvent>, DomainError> {
        self.current()?;
        if self.recorded_steps.contains(&report.work_order_id) {
            return Ok(Vec::new());
        }
        if let (Some(recorded), Some(new)) = (self.lab_id.as_deref(), report.lab_id) {
            if recorded != new {
                return Err(DomainError::RuleViolated(format!(
                    "the instance's lab is {recorded}, not {new}"
                )));
            }
        }
        Ok(vec![LabletInstanceEvent::StepRecorded {
            step: report.step.to_owned(),
            work_order_id: report.work_order_id,
            outcome: report.outcome,
            detail: report.detail.map(str::to_owned),
            lab_id: report.lab_id.map(str::to_owned),
            at,
        }])
    }

    /// The collection request for the grading system, once per collection.
    pub(super) fn request_assessment(&self, at: DateTime<Utc>) -> Result<Vec<LabletInstanceEvent>, DomainError> {
        let state = self.current()?;
        if state != InstanceState::Collecting {
            return Err(DomainError::RuleViolated(format!(
                "a lab is collected while the instance is collecting, not {state}"
            )));
        }
        if self.assessment_requested {
            return Ok(Vec::new());
        }
        let (Some(lab_id), Some(worker_id)) = (&self.lab_id, self.worker_id) else {
            return Err(DomainError::RuleViolated("the instance has no lab to collect".into()));
        };
        Ok(vec![LabletInstanceEvent::AssessmentRequested {
            lab_id: lab_id.clone(),
            worker_id,
            definition_id: self.definition_id.unwrap_or_default(),
            definition_version: self.definition_version.clone().unwrap_or_default(),
            reservation_id: self.reservation_id.clone().unwrap_or_default(),
            at,
        }])
    }

    /// What a pipeline event changes of the instance.
    pub(super) fn apply_pipeline(&mut self, event: &LabletInstanceEvent) {
        match event {
            LabletInstanceEvent::StepRecorded {
                step,
                work_order_id,
                outcome,
                lab_id,
                ..
            } => {
                self.recorded_steps.insert(*work_order_id);
                if let Some(lab_id) = lab_id {
                    self.lab_id = Some(lab_id.clone());
                }
                if step == LAB_DELETE_STEP && *outcome == StepOutcome::Completed {
                    self.lab_removed = true;
                }
            }
            LabletInstanceEvent::AssessmentRequested { .. } => self.assessment_requested = true,
            LabletInstanceEvent::CollectionStarted(_) => self.assessment_requested = false,
            _ => {}
        }
    }
}
