//! `/api/v1/worker-templates`: what workers are made from. Everyone signed in reads; admins
//! define, change, enable and disable. Templates are also seeded at start from
//! `LABLET_WORKER_TEMPLATES` (created if missing, never overwritten).

use super::{command_answer, created_answer, document, page, present, AppState, Paging};
use crate::extract::{parse_id, Context, JsonBody, MinPosition, QueryParams};
use crate::problem::ApiResult;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use lablet_application::ports::read_models::Filter;
use lablet_application::ports::ListPage;
use lablet_application::read_model_queries::WORKER_TEMPLATES;
use lablet_application::{Execute, RequestContext};
use lablet_domain::values::Name;
use lablet_domain::worker_template::{template_id, TemplateSpec, WorkerTemplate, WorkerTemplateCommand};
use serde::Deserialize;
use serde_json::value::RawValue;

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DefineBody {
    name: Name<128>,
    spec: TemplateSpec,
}

/// A template's id is the UUIDv5 of its name: defining a name twice answers 409.
pub async fn define(
    State(state): State<AppState>,
    Context(ctx): Context,
    JsonBody(body): JsonBody<DefineBody>,
) -> ApiResult<Response> {
    let id = template_id(body.name.as_str());
    let command = WorkerTemplateCommand::Define {
        name: body.name,
        spec: body.spec,
    };
    let outcome = state
        .mediator
        .send(Execute::<WorkerTemplate>::on(id, command), &ctx)
        .await?;
    Ok(created_answer("/api/v1/worker-templates", outcome))
}

async fn act(state: &AppState, ctx: &RequestContext, id: &str, command: WorkerTemplateCommand) -> ApiResult<Response> {
    let command = Execute::<WorkerTemplate>::on(parse_id("id", id)?, command);
    Ok(command_answer(StatusCode::OK, state.mediator.send(command, ctx).await?))
}

pub async fn change(
    State(state): State<AppState>,
    Context(ctx): Context,
    Path(id): Path<String>,
    JsonBody(spec): JsonBody<TemplateSpec>,
) -> ApiResult<Response> {
    act(&state, &ctx, &id, WorkerTemplateCommand::Change(spec)).await
}

pub async fn enable(
    State(state): State<AppState>,
    Context(ctx): Context,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    act(&state, &ctx, &id, WorkerTemplateCommand::Enable).await
}

pub async fn disable(
    State(state): State<AppState>,
    Context(ctx): Context,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    act(&state, &ctx, &id, WorkerTemplateCommand::Disable).await
}

pub async fn get_one(
    State(state): State<AppState>,
    Context(ctx): Context,
    MinPosition(min): MinPosition,
    Path(id): Path<String>,
) -> ApiResult<Json<Box<RawValue>>> {
    document(&state, &ctx, WORKER_TEMPLATES, &id, min).await
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    name: Option<String>,
    license_type: Option<String>,
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
    for (field, value) in [("name", params.name), ("license_type", params.license_type)] {
        if let Some(value) = present(value) {
            filters.push(Filter::Equals { field, value });
        }
    }
    let paging = Paging {
        limit: params.limit,
        cursor: params.cursor,
        include_history: params.include_history,
    };
    page(&state, &ctx, WORKER_TEMPLATES, paging, filters, min).await
}
