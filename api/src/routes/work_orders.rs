//! `/api/v1/work-orders`: submission and queries, plus the executor's lease/start/complete/fail
//! and the operator's cancel and requeue.

use super::{command_answer, document, page, parsed_equals, present, AppState, Paging};
use crate::extract::{parse_id, Context, JsonBody, MinPosition, OptionalJsonBody, QueryParams};
use crate::problem::ApiResult;
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use axum::Json;
use lablet_application::ports::read_models::Filter;
use lablet_application::ports::ListPage;
use lablet_application::read_model_queries::WORK_ORDERS;
use lablet_application::work_orders::{ActOnWorkOrder, SubmitWorkOrder, WorkOrderAction};
use lablet_application::RequestContext;
use lablet_domain::work_order::{ResourceNeeds, WorkOrderState};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

fn default_max_attempts() -> u32 {
    3
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SubmitBody {
    kind: String,
    #[serde(default)]
    payload: Value,
    #[serde(default)]
    priority: i32,
    #[serde(default = "default_max_attempts")]
    max_attempts: u32,
    #[serde(default)]
    resources: ResourceNeeds,
}

pub async fn submit(
    State(state): State<AppState>,
    Context(ctx): Context,
    JsonBody(body): JsonBody<SubmitBody>,
) -> ApiResult<Response> {
    let command = SubmitWorkOrder {
        kind: body.kind,
        payload: body.payload,
        priority: body.priority,
        max_attempts: body.max_attempts,
        resources: body.resources,
    };
    let outcome = state.mediator.send(command, &ctx).await?;
    let location = HeaderValue::try_from(format!("/api/v1/work-orders/{}", outcome.id)).ok();
    let mut response = command_answer(StatusCode::CREATED, outcome);
    if let Some(location) = location {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

async fn act(state: &AppState, ctx: &RequestContext, id: &str, action: WorkOrderAction) -> ApiResult<Response> {
    let command = ActOnWorkOrder {
        id: parse_id("id", id)?,
        action,
    };
    Ok(command_answer(StatusCode::OK, state.mediator.send(command, ctx).await?))
}

#[derive(Deserialize, Default, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelBody {
    #[serde(default)]
    reason: Option<String>,
}

pub async fn cancel(
    State(state): State<AppState>,
    Context(ctx): Context,
    Path(id): Path<String>,
    OptionalJsonBody(body): OptionalJsonBody<CancelBody>,
) -> ApiResult<Response> {
    act(&state, &ctx, &id, WorkOrderAction::Cancel { reason: body.reason }).await
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LeaseBody {
    executor: String,
    #[serde(default = "default_lease_seconds")]
    lease_seconds: u32,
}

fn default_lease_seconds() -> u32 {
    300
}

pub async fn lease(
    State(state): State<AppState>,
    Context(ctx): Context,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<LeaseBody>,
) -> ApiResult<Response> {
    act(
        &state,
        &ctx,
        &id,
        WorkOrderAction::Lease {
            executor: body.executor,
            lease_seconds: body.lease_seconds,
        },
    )
    .await
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StartBody {
    executor: String,
}

pub async fn start(
    State(state): State<AppState>,
    Context(ctx): Context,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<StartBody>,
) -> ApiResult<Response> {
    act(
        &state,
        &ctx,
        &id,
        WorkOrderAction::Start {
            executor: body.executor,
        },
    )
    .await
}

#[derive(Deserialize, Default, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CompleteBody {
    #[serde(default)]
    result: Value,
}

pub async fn complete(
    State(state): State<AppState>,
    Context(ctx): Context,
    Path(id): Path<String>,
    OptionalJsonBody(body): OptionalJsonBody<CompleteBody>,
) -> ApiResult<Response> {
    act(&state, &ctx, &id, WorkOrderAction::Complete { result: body.result }).await
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FailBody {
    error: String,
    #[serde(default = "retryable_by_default")]
    retryable: bool,
}

fn retryable_by_default() -> bool {
    true
}

pub async fn fail(
    State(state): State<AppState>,
    Context(ctx): Context,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<FailBody>,
) -> ApiResult<Response> {
    act(
        &state,
        &ctx,
        &id,
        WorkOrderAction::Fail {
            error: body.error,
            retryable: body.retryable,
        },
    )
    .await
}

pub async fn requeue(
    State(state): State<AppState>,
    Context(ctx): Context,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    act(&state, &ctx, &id, WorkOrderAction::Requeue).await
}

pub async fn get_one(
    State(state): State<AppState>,
    Context(ctx): Context,
    MinPosition(min): MinPosition,
    Path(id): Path<String>,
) -> ApiResult<Json<Box<RawValue>>> {
    document(&state, &ctx, WORK_ORDERS, &id, min).await
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    state: Option<String>,
    kind: Option<String>,
    limit: Option<usize>,
    cursor: Option<String>,
    include_history: Option<bool>,
}

pub async fn list(
    State(state): State<AppState>,
    Context(ctx): Context,
    MinPosition(min): MinPosition,
    QueryParams(params): QueryParams<ListParams>,
) -> ApiResult<Json<ListPage>> {
    let mut filters = Vec::new();
    if let Some(text) = present(params.state) {
        filters.push(parsed_equals("state", &text, WorkOrderState::as_str)?);
    }
    if let Some(kind) = present(params.kind) {
        filters.push(Filter::Equals {
            field: "kind",
            value: kind,
        });
    }
    let paging = Paging {
        limit: params.limit,
        cursor: params.cursor,
        include_history: params.include_history,
    };
    page(&state, &ctx, WORK_ORDERS, paging, filters, min).await
}
