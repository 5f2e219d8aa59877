//! `/api/v1/work-orders`: submission and queries; the executor's claim (a long poll), start,
//! renew, complete and fail, each after the claim naming the lease's token; the operator's
//! lease by id, cancel and requeue.

use super::{command_answer, created_answer, document, page, parsed_equals, present, AppState, Paging};
use crate::extract::{parse_id, Context, JsonBody, MinPosition, OptionalJsonBody, QueryParams};
use crate::problem::ApiResult;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use lablet_application::ports::read_models::Filter;
use lablet_application::ports::ListPage;
use lablet_application::read_model_queries::WORK_ORDERS;
use lablet_application::work_orders::{ClaimWorkOrder, ClaimedOrder};
use lablet_application::{Execute, RequestContext};
use lablet_domain::values::{ExecutorName, FreeText};
use lablet_domain::work_order::{
    unique_order_id, Failure, LeaseSeconds, LeaseTerms, LeaseToken, Submission, WorkOrder, WorkOrderCommand,
    WorkOrderState,
};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

pub async fn submit(
    State(state): State<AppState>,
    Context(ctx): Context,
    JsonBody(submission): JsonBody<Submission>,
) -> ApiResult<Response> {
    // With a unique key the order's id is the key's: a second submission finds the first order
    // and answers it (200, nothing changed) instead of making another.
    let command = match &submission.unique_key {
        Some(key) => Execute::<WorkOrder>::on(unique_order_id(key.as_str()), WorkOrderCommand::Submit(submission)),
        None => Execute::<WorkOrder>::create(WorkOrderCommand::Submit(submission)),
    };
    let outcome = state.mediator.send(command, &ctx).await?;
    if outcome.changed {
        Ok(created_answer("/api/v1/work-orders", outcome))
    } else {
        Ok(command_answer(StatusCode::OK, outcome))
    }
}

/// The answer to a claim: the order now held, or none when nothing fit before the wait ended.
#[derive(serde::Serialize, schemars::JsonSchema)]
pub struct ClaimAnswer {
    order: Option<ClaimedOrder>,
}

pub async fn claim(
    State(state): State<AppState>,
    Context(ctx): Context,
    JsonBody(request): JsonBody<ClaimWorkOrder>,
) -> ApiResult<Json<ClaimAnswer>> {
    let order = state.mediator.send(request, &ctx).await?;
    Ok(Json(ClaimAnswer { order }))
}

async fn act(state: &AppState, ctx: &RequestContext, id: &str, command: WorkOrderCommand) -> ApiResult<Response> {
    let command = Execute::<WorkOrder>::on(parse_id("id", id)?, command);
    Ok(command_answer(StatusCode::OK, state.mediator.send(command, ctx).await?))
}

#[derive(Deserialize, Default, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelBody {
    #[serde(default)]
    reason: Option<FreeText<1024>>,
}

pub async fn cancel(
    State(state): State<AppState>,
    Context(ctx): Context,
    Path(id): Path<String>,
    OptionalJsonBody(body): OptionalJsonBody<CancelBody>,
) -> ApiResult<Response> {
    act(&state, &ctx, &id, WorkOrderCommand::Cancel { reason: body.reason }).await
}

pub async fn lease(
    State(state): State<AppState>,
    Context(ctx): Context,
    Path(id): Path<String>,
    JsonBody(terms): JsonBody<LeaseTerms>,
) -> ApiResult<Response> {
    act(&state, &ctx, &id, WorkOrderCommand::Lease(terms)).await
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StartBody {
    executor: ExecutorName,
    token: LeaseToken,
}

pub async fn start(
    State(state): State<AppState>,
    Context(ctx): Context,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<StartBody>,
) -> ApiResult<Response> {
    let command = WorkOrderCommand::Start {
        executor: body.executor,
        token: body.token,
    };
    act(&state, &ctx, &id, command).await
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RenewBody {
    token: LeaseToken,
    #[serde(default = "default_renewal")]
    lease_seconds: LeaseSeconds,
}

fn default_renewal() -> LeaseSeconds {
    lablet_domain::values::Bounded::new_const(300)
}

pub async fn renew(
    State(state): State<AppState>,
    Context(ctx): Context,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<RenewBody>,
) -> ApiResult<Response> {
    let command = WorkOrderCommand::Renew {
        token: body.token,
        lease_seconds: body.lease_seconds,
    };
    act(&state, &ctx, &id, command).await
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CompleteBody {
    token: LeaseToken,
    #[serde(default)]
    result: Value,
}

pub async fn complete(
    State(state): State<AppState>,
    Context(ctx): Context,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<CompleteBody>,
) -> ApiResult<Response> {
    let command = WorkOrderCommand::Complete {
        token: body.token,
        result: body.result,
    };
    act(&state, &ctx, &id, command).await
}

pub async fn fail(
    State(state): State<AppState>,
    Context(ctx): Context,
    Path(id): Path<String>,
    JsonBody(failure): JsonBody<Failure>,
) -> ApiResult<Response> {
    act(&state, &ctx, &id, WorkOrderCommand::Fail(failure)).await
}

pub async fn requeue(
    State(state): State<AppState>,
    Context(ctx): Context,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    act(&state, &ctx, &id, WorkOrderCommand::Requeue).await
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
