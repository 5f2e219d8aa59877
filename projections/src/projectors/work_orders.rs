//! `work_orders`: one document per unit of work.

use crate::projector::{decode, existing, Patch, ProjectionError, Projector};
use chrono::{DateTime, Utc};
use lablet_application::envelope::EventEnvelope;
use lablet_application::ports::CollectionSpec;
use lablet_application::read_model_queries::WORK_ORDERS;
use lablet_domain::work_order::{Lease, ResourceNeeds, WorkOrderEvent, WorkOrderState};
use lablet_domain::AggregateKind;
use serde::Serialize;
use serde_json::{json, Map, Value};

/// The shape of a work order document (plus `version` and `updated_at`, stamped by the runner).
#[derive(Debug, Clone, Serialize)]
pub struct WorkOrderView {
    pub id: String,
    pub kind: String,
    pub payload: Value,
    pub priority: i32,
    pub resources: ResourceNeeds,
    pub unique_key: Option<String>,
    pub state: WorkOrderState,
    pub attempt: u32,
    pub max_attempts: u32,
    pub lease: Option<Lease>,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub result: Option<Value>,
    /// Each failed attempt: `{attempt, error, at}`.
    pub errors: Vec<Value>,
    pub cancel_reason: Option<String>,
    pub submitted_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

pub struct WorkOrdersProjector;

/// The errors list of `document` with one more failed attempt.
fn with_error(document: &Map<String, Value>, attempt: u32, error: &str, at: DateTime<Utc>) -> Vec<Value> {
    let mut errors = document
        .get("errors")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    errors.push(json!({"attempt": attempt, "error": error, "at": at}));
    errors
}

impl Projector for WorkOrdersProjector {
    fn collection(&self) -> CollectionSpec {
        WORK_ORDERS
    }

    fn kind(&self) -> AggregateKind {
        AggregateKind::WorkOrder
    }

    fn project(
        &self,
        current: Option<&Map<String, Value>>,
        envelope: &EventEnvelope,
    ) -> Result<Patch, ProjectionError> {
        let event: WorkOrderEvent = decode(envelope)?;
        let mut patch = Patch::default();
        if let WorkOrderEvent::Submitted {
            kind,
            payload,
            priority,
            max_attempts,
            resources,
            submitted_at,
            unique_key,
        } = event
        {
            patch.set_all(&WorkOrderView {
                id: envelope.aggregate_id().to_owned(),
                kind,
                payload,
                priority,
                resources,
                unique_key,
                state: WorkOrderState::Pending,
                attempt: 0,
                max_attempts,
                lease: None,
                next_attempt_at: None,
                result: None,
                errors: Vec::new(),
                cancel_reason: None,
                submitted_at,
                started_at: None,
                finished_at: None,
            })?;
            return Ok(patch);
        }
        let document = existing(current, envelope)?;
        match &event {
            WorkOrderEvent::Submitted { .. } => {}
            WorkOrderEvent::Leased { lease, attempt, .. } => {
                patch
                    .set("lease", lease)?
                    .set("attempt", attempt)?
                    .set("next_attempt_at", Value::Null)?;
            }
            WorkOrderEvent::LeaseRenewed { expires_at, .. } => {
                let mut lease = document.get("lease").cloned().unwrap_or(Value::Null);
                if let Value::Object(fields) = &mut lease {
                    fields.insert("expires_at".into(), json!(expires_at));
                }
                patch.set("lease", lease)?;
            }
            WorkOrderEvent::Started { at, .. } => {
                if document.get("started_at").is_none_or(Value::is_null) {
                    patch.set("started_at", at)?;
                }
            }
            WorkOrderEvent::Completed { result, at } => {
                patch
                    .set("result", result)?
                    .set("lease", Value::Null)?
                    .set("finished_at", at)?;
            }
            WorkOrderEvent::AttemptFailed {
                attempt,
                error,
                next_attempt_at,
                at,
            } => {
                patch
                    .set("errors", with_error(document, *attempt, error, *at))?
                    .set("next_attempt_at", next_attempt_at)?
                    .set("lease", Value::Null)?;
            }
            WorkOrderEvent::Failed { attempt, error, at, .. } => {
                patch
                    .set("errors", with_error(document, *attempt, error, *at))?
                    .set("lease", Value::Null)?
                    .set("finished_at", at)?;
            }
            WorkOrderEvent::Requeued { .. } => {
                patch.set("next_attempt_at", Value::Null)?;
            }
            WorkOrderEvent::Cancelled { reason, at, .. } => {
                patch
                    .set("cancel_reason", reason)?
                    .set("lease", Value::Null)?
                    .set("finished_at", at)?;
            }
        }
        if let Some(state) = event.target_state() {
            patch.set("state", state)?;
        }
        Ok(patch)
    }
}
