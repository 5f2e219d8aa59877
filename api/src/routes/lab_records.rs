//! `/api/v1/lab-records` and `/api/v1/workers/{worker_id}/labs`.

use super::{command_answer, document, page, present, AppState, Paging};
use crate::extract::{parse_id, Context, JsonBody, MinPosition, QueryParams};
use crate::problem::{ApiResult, Problem};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use chrono::{DateTime, Utc};
use lablet_application::ports::read_models::Filter;
use lablet_application::ports::ListPage;
use lablet_application::read_model_queries::LAB_RECORDS;
use lablet_application::Execute;
use lablet_domain::lab_record::{
    lab_record_id, LabDetails, LabObservation, LabRecord, LabRecordCommand, LabState, RemovalReason,
};
use lablet_domain::values::LabId;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;
use uuid::Uuid;

/// A lab as a worker reports it. Text fields CML may leave out or null default to empty.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ObservationBody {
    worker_id: Uuid,
    lab_id: LabId,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    notes: Option<String>,
    state: LabState,
    #[serde(default)]
    owner_username: Option<String>,
    #[serde(default)]
    owner_fullname: Option<String>,
    #[serde(default)]
    node_count: u32,
    #[serde(default)]
    link_count: u32,
    #[serde(default)]
    groups: Vec<String>,
    #[serde(default)]
    cml_created_at: Option<DateTime<Utc>>,
    #[serde(default)]
    cml_modified_at: Option<DateTime<Utc>>,
}

pub async fn observe(
    State(state): State<AppState>,
    Context(ctx): Context,
    JsonBody(body): JsonBody<ObservationBody>,
) -> ApiResult<Response> {
    if body.worker_id.is_nil() {
        return Err(Problem::invalid(vec![lablet_application::FieldError::new(
            "worker_id",
            "must not be the nil UUID",
        )]));
    }
    let id = lab_record_id(body.worker_id, &body.lab_id);
    let seen = LabObservation {
        worker_id: body.worker_id,
        lab_id: body.lab_id,
        details: LabDetails {
            title: body.title.unwrap_or_default(),
            description: body.description.unwrap_or_default(),
            notes: body.notes.unwrap_or_default(),
            owner_username: body.owner_username.unwrap_or_default(),
            owner_fullname: body.owner_fullname.unwrap_or_default(),
            node_count: body.node_count,
            link_count: body.link_count,
            groups: body.groups,
        },
        state: body.state,
        cml_created_at: body.cml_created_at,
        cml_modified_at: body.cml_modified_at,
    };
    let command = Execute::<LabRecord>::on(id, LabRecordCommand::Observe(seen));
    let outcome = state.mediator.send(command, &ctx).await?;
    Ok(command_answer(StatusCode::OK, outcome))
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RemoveBody {
    reason: RemovalReason,
}

pub async fn remove(
    State(state): State<AppState>,
    Context(ctx): Context,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<RemoveBody>,
) -> ApiResult<Response> {
    let command = Execute::<LabRecord>::on(parse_id("id", &id)?, LabRecordCommand::Remove { reason: body.reason });
    let outcome = state.mediator.send(command, &ctx).await?;
    Ok(command_answer(StatusCode::OK, outcome))
}

pub async fn get_one(
    State(state): State<AppState>,
    Context(ctx): Context,
    MinPosition(min): MinPosition,
    Path(id): Path<String>,
) -> ApiResult<Json<Box<RawValue>>> {
    document(&state, &ctx, LAB_RECORDS, &id, min).await
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    worker_id: Option<String>,
    state: Option<String>,
    include_removed: Option<bool>,
    limit: Option<usize>,
    cursor: Option<String>,
    include_history: Option<bool>,
}

fn lab_state(text: &str) -> ApiResult<LabState> {
    serde_json::from_value(Value::String(text.to_owned())).map_err(|_| {
        Problem::bad_request(
            "state",
            "must be one of DEFINED_ON_CORE, STOPPED, STARTED, QUEUED, BOOTED",
        )
    })
}

async fn list_with(
    state: AppState,
    ctx: lablet_application::RequestContext,
    min: Option<u64>,
    worker_id: Option<String>,
    params: ListParams,
) -> ApiResult<Json<ListPage>> {
    let mut filters = Vec::new();
    if let Some(worker_id) = present(worker_id) {
        filters.push(Filter::Equals {
            field: "worker_id",
            value: parse_id("worker_id", &worker_id)?.to_string(),
        });
    }
    if let Some(text) = present(params.state) {
        filters.push(Filter::Equals {
            field: "state",
            value: lab_state(&text)?.as_str().to_owned(),
        });
    }
    if !params.include_removed.unwrap_or(false) {
        filters.push(Filter::IsNull { field: "removed_at" });
    }
    let paging = Paging {
        limit: params.limit,
        cursor: params.cursor,
        include_history: params.include_history,
    };
    page(&state, &ctx, LAB_RECORDS, paging, filters, min).await
}

pub async fn list(
    State(state): State<AppState>,
    Context(ctx): Context,
    MinPosition(min): MinPosition,
    QueryParams(params): QueryParams<ListParams>,
) -> ApiResult<Json<ListPage>> {
    let worker_id = params.worker_id.clone();
    list_with(state, ctx, min, worker_id, params).await
}

pub async fn list_for_worker(
    State(state): State<AppState>,
    Context(ctx): Context,
    MinPosition(min): MinPosition,
    Path(worker_id): Path<String>,
    QueryParams(params): QueryParams<ListParams>,
) -> ApiResult<Json<ListPage>> {
    if present(params.worker_id.clone()).is_some() {
        return Err(Problem::bad_request("worker_id", "is given by the path here"));
    }
    list_with(state, ctx, min, Some(worker_id), params).await
}
