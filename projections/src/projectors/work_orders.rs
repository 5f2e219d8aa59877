//! `work_orders`: one document per unit of work.

use crate::projector::{decode, document, existing_view, ProjectionError, Projector};
use chrono::{DateTime, Utc};
use lablet_application::envelope::EventEnvelope;
use lablet_application::ports::CollectionSpec;
use lablet_application::read_model_queries::WORK_ORDERS;
use lablet_domain::work_order::{Lease, ResourceNeeds, WorkOrderEvent, WorkOrderState};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// One failed attempt.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AttemptError {
    pub attempt: u32,
    pub error: String,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkOrderView {
    pub id: String,
    pub kind: String,
    pub payload: Value,
    pub priority: i32,
    pub resources: ResourceNeeds,
    pub state: WorkOrderState,
    pub attempt: u32,
    pub max_attempts: u32,
    pub lease: Option<Lease>,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub result: Option<Value>,
    pub errors: Vec<AttemptError>,
    pub cancel_reason: Option<String>,
    pub submitted_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub version: u64,
    pub updated_at: DateTime<Utc>,
}

pub struct WorkOrdersProjector;

impl Projector for WorkOrdersProjector {
    fn collection(&self) -> CollectionSpec {
        WORK_ORDERS
    }

    fn handles(&self, event_type: &str) -> bool {
        event_type.starts_with("work_order.")
    }

    fn project(
        &self,
        current: Option<&Map<String, Value>>,
        envelope: &EventEnvelope,
    ) -> Result<Map<String, Value>, ProjectionError> {
        let event: WorkOrderEvent = decode(envelope)?;
        let mut view = if let WorkOrderEvent::Submitted {
            kind,
            payload,
            priority,
            max_attempts,
            resources,
            submitted_at,
        } = &event
        {
            WorkOrderView {
                id: envelope.aggregate_id().to_owned(),
                kind: kind.clone(),
                payload: payload.clone(),
                priority: *priority,
                resources: *resources,
                state: WorkOrderState::Pending,
                attempt: 0,
                max_attempts: *max_attempts,
                lease: None,
                next_attempt_at: None,
                result: None,
                errors: Vec::new(),
                cancel_reason: None,
                submitted_at: *submitted_at,
                started_at: None,
                finished_at: None,
                version: 0,
                updated_at: *submitted_at,
            }
        } else {
            existing_view(current, envelope)?
        };
        match &event {
            WorkOrderEvent::Submitted { .. } => {}
            WorkOrderEvent::Leased { lease, attempt, .. } => {
                view.lease = Some(lease.clone());
                view.attempt = *attempt;
                view.next_attempt_at = None;
            }
            WorkOrderEvent::Started { at, .. } => {
                view.started_at.get_or_insert(*at);
            }
            WorkOrderEvent::Completed { result, at } => {
                view.result = Some(result.clone());
                view.lease = None;
                view.finished_at = Some(*at);
            }
            WorkOrderEvent::AttemptFailed {
                attempt,
                error,
                next_attempt_at,
                at,
            } => {
                view.errors.push(AttemptError {
                    attempt: *attempt,
                    error: error.clone(),
                    at: *at,
                });
                view.next_attempt_at = Some(*next_attempt_at);
                view.lease = None;
            }
            WorkOrderEvent::Failed { attempt, error, at, .. } => {
                view.errors.push(AttemptError {
                    attempt: *attempt,
                    error: error.clone(),
                    at: *at,
                });
                view.lease = None;
                view.finished_at = Some(*at);
            }
            WorkOrderEvent::Requeued { .. } => view.next_attempt_at = None,
            WorkOrderEvent::Cancelled { reason, at, .. } => {
                view.cancel_reason = reason.clone();
                view.lease = None;
                view.finished_at = Some(*at);
            }
        }
        view.state = event.target_state();
        view.version = envelope.version;
        view.updated_at = envelope.occurred_at;
        document(&view)
    }
}
