//! `/api/v1/instances`.

use super::{command_answer, created_answer, document, page, parsed_equals, present, AppState, Paging};
use crate::auth::Principal;
use crate::extract::{parse_id, Context, JsonBody, MinPosition, QueryParams};
use crate::problem::{ApiResult, Problem};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Extension;
use axum::Json;
use chrono::{DateTime, Utc};
use lablet_application::ports::read_models::Filter;
use lablet_application::ports::ListPage;
use lablet_application::read_model_queries::LABLET_INSTANCES;
use lablet_application::{AppError, Execute, FieldError};
use lablet_domain::lablet_instance::{
    instance_id_for_reservation, CheckedScore, GradingScore, InstanceRequest, InstanceState, LabletInstance,
    LabletInstanceCommand,
};
use lablet_domain::values::{FreeText, Name, Timeslot};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::collections::BTreeMap;
use uuid::Uuid;

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestBody {
    definition_id: Uuid,
    definition_version: Name<256>,
    owner_id: Name<256>,
    reservation_id: Name<256>,
    timeslot_start: DateTime<Utc>,
    timeslot_end: DateTime<Utc>,
}

pub async fn request(
    State(state): State<AppState>,
    Context(ctx): Context,
    JsonBody(body): JsonBody<RequestBody>,
) -> ApiResult<Response> {
    if body.definition_id.is_nil() {
        return Err(Problem::invalid(vec![FieldError::new(
            "definition_id",
            "must not be the nil UUID",
        )]));
    }
    let timeslot = Timeslot::new(body.timeslot_start, body.timeslot_end)
        .map_err(|why| Problem::invalid(vec![FieldError::new("timeslot_end", why)]))?;
    let id = instance_id_for_reservation(&body.reservation_id);
    let request = InstanceRequest {
        definition_id: body.definition_id,
        definition_version: body.definition_version,
        owner_id: body.owner_id,
        reservation_id: body.reservation_id,
        timeslot,
    };
    let command = Execute::<LabletInstance>::on(id, LabletInstanceCommand::Request(request));
    let outcome = state.mediator.send(command, &ctx).await?;
    Ok(created_answer("/api/v1/instances", outcome))
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TransitionBody {
    to: InstanceState,
    #[serde(default)]
    reason: Option<FreeText<1024>>,
    /// The worker an instance is placed on, when moving to `scheduled`.
    #[serde(default)]
    worker_id: Option<Uuid>,
}

pub async fn transition(
    State(state): State<AppState>,
    Context(ctx): Context,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<TransitionBody>,
) -> ApiResult<Response> {
    if body.worker_id.is_some() && body.to != InstanceState::Scheduled {
        return Err(Problem::invalid(vec![FieldError::new(
            "worker_id",
            "is only accepted when moving to scheduled",
        )]));
    }
    let transition = LabletInstanceCommand::Transition {
        to: body.to,
        reason: body.reason,
        worker_id: body.worker_id,
    };
    let command = Execute::<LabletInstance>::on(parse_id("id", &id)?, transition);
    Ok(command_answer(
        StatusCode::OK,
        state.mediator.send(command, &ctx).await?,
    ))
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TimeslotBody {
    timeslot_end: DateTime<Utc>,
}

pub async fn extend_timeslot(
    State(state): State<AppState>,
    Context(ctx): Context,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<TimeslotBody>,
) -> ApiResult<Response> {
    let extend = LabletInstanceCommand::ExtendTimeslot {
        new_end: body.timeslot_end,
    };
    let command = Execute::<LabletInstance>::on(parse_id("id", &id)?, extend);
    Ok(command_answer(
        StatusCode::OK,
        state.mediator.send(command, &ctx).await?,
    ))
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScoreBody {
    total: f64,
    max: f64,
    passed: bool,
    #[serde(default)]
    breakdown: BTreeMap<String, f64>,
}

pub async fn record_score(
    State(state): State<AppState>,
    Context(ctx): Context,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<ScoreBody>,
) -> ApiResult<Response> {
    let id = parse_id("id", &id)?;
    let score = CheckedScore::parse(GradingScore {
        total: body.total,
        max: body.max,
        passed: body.passed,
        breakdown: body.breakdown,
    })
    .map_err(|problems| {
        Problem::invalid(
            problems
                .into_iter()
                .map(|(field, why)| FieldError::new(field, why))
                .collect(),
        )
    })?;
    let command = Execute::<LabletInstance>::on(id, LabletInstanceCommand::RecordScore { score });
    Ok(command_answer(
        StatusCode::OK,
        state.mediator.send(command, &ctx).await?,
    ))
}

/// The one field of an instance document that decides who may read it.
#[derive(Deserialize)]
struct Owner {
    owner_id: String,
}

pub async fn get_one(
    State(state): State<AppState>,
    Context(ctx): Context,
    Extension(caller): Extension<Principal>,
    MinPosition(min): MinPosition,
    Path(id): Path<String>,
) -> ApiResult<Json<Box<RawValue>>> {
    let found = document(&state, &ctx, LABLET_INSTANCES, &id, min).await?;
    if let Some(reader) = caller.reader_scope() {
        // Another owner's instance is answered as absent: its existence is not the caller's.
        let owner: Owner = serde_json::from_str(found.get())
            .map_err(|e| Problem::from(AppError::Internal(format!("an instance document cannot be read: {e}"))))?;
        if owner.owner_id != reader {
            return Err(Problem::not_found("lablet_instance does not exist"));
        }
    }
    Ok(found)
}

/// Where an instance went and why: the scheduler's last decision about it.
#[derive(Serialize, Deserialize, schemars::JsonSchema)]
pub struct PlacementView {
    pub state: String,
    pub worker_id: Option<uuid::Uuid>,
    #[serde(default)]
    pub ports: std::collections::BTreeMap<String, u16>,
    /// Why it is still pending, when nothing could take it.
    pub placement_reason: Option<String>,
    /// Candidates, rejections per reason, and the first rejected workers in words.
    pub placement: Option<lablet_domain::lablet_instance::PlacementSummary>,
}

/// The last placement decision of an instance (404 until the scheduler has decided).
pub async fn placement(
    state: State<AppState>,
    ctx: Context,
    caller: Extension<Principal>,
    min: MinPosition,
    id: Path<String>,
) -> ApiResult<Json<PlacementView>> {
    let Json(found) = get_one(state, ctx, caller, min, id).await?;
    let view: PlacementView = serde_json::from_str(found.get())
        .map_err(|e| Problem::from(AppError::Internal(format!("an instance document cannot be read: {e}"))))?;
    if view.placement.is_none() {
        return Err(Problem::not_found("no placement decision yet"));
    }
    Ok(Json(view))
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    state: Option<String>,
    owner_id: Option<String>,
    worker_id: Option<String>,
    limit: Option<usize>,
    cursor: Option<String>,
    include_history: Option<bool>,
}

pub async fn list(
    State(state): State<AppState>,
    Context(ctx): Context,
    Extension(caller): Extension<Principal>,
    MinPosition(min): MinPosition,
    QueryParams(params): QueryParams<ListParams>,
) -> ApiResult<Json<ListPage>> {
    let mut filters = Vec::new();
    if let Some(text) = present(params.state) {
        filters.push(parsed_equals("state", &text, InstanceState::as_str)?);
    }
    let mut owner_id = present(params.owner_id);
    if let Some(reader) = caller.reader_scope() {
        if owner_id.as_deref().is_some_and(|owner| owner != reader) {
            return Err(Problem::forbidden("a user lists only their own instances"));
        }
        owner_id = Some(reader.to_owned());
    }
    if let Some(owner) = owner_id {
        filters.push(Filter::Equals {
            field: "owner_id",
            value: owner,
        });
    }
    if let Some(worker) = present(params.worker_id) {
        filters.push(Filter::Equals {
            field: "worker_id",
            value: parse_id("worker_id", &worker)?.to_string(),
        });
    }
    let paging = Paging {
        limit: params.limit,
        cursor: params.cursor,
        include_history: params.include_history,
    };
    page(&state, &ctx, LABLET_INSTANCES, paging, filters, min).await
}
