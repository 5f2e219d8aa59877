//! `/api/v1/workers`: register CML servers, move them along their status machine, read the
//! fleet, refresh a worker's labs now, and ask whether a worker is idle.
//!
//! Credentials come in with the registration and never come out: they are sealed in the vault,
//! and no answer, event or read model carries them.

use super::{command_answer, created_answer, document, page, parsed_equals, present, AppState, Paging};
use crate::extract::{parse_id, Context, JsonBody, MinPosition, OptionalJsonBody, QueryParams};
use crate::problem::{ApiResult, Problem};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use lablet_application::ports::read_models::Filter;
use lablet_application::ports::ListPage;
use lablet_application::read_model_queries::WORKERS;
use lablet_application::workers::{
    credentials, ChangeWorkerCredentials, GetIdleStatus, RegisterWorker, WorkerIdleStatus,
};
use lablet_application::{Execute, FieldError, RequestContext};
use lablet_domain::values::{FreeText, Name};
use lablet_domain::worker::{Capacity, Endpoint, Registration, SyncCounts, Worker, WorkerCommand, WorkerStatus};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::fmt;

/// A password that never prints.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(transparent)]
pub struct Password(String);

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterBody {
    name: Name<128>,
    region: Name<64>,
    /// The CML server's base URL (`https://cml-1.example.net`); absent for a worker to provision.
    #[serde(default)]
    endpoint: Option<Endpoint>,
    /// The CML user Lablet acts as; required with an endpoint.
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<Password>,
    #[serde(default)]
    capacity: Capacity,
    #[serde(default)]
    template_name: Option<Name<128>>,
    #[serde(default)]
    instance_id: Option<Name<128>>,
    /// Do not verify the server's TLS certificate (self-signed CML servers).
    #[serde(default)]
    insecure_tls: bool,
}

pub async fn register(
    State(state): State<AppState>,
    Context(ctx): Context,
    JsonBody(body): JsonBody<RegisterBody>,
) -> ApiResult<Response> {
    let credentials = credentials(body.username, body.password.map(|p| p.0)).map_err(Problem::invalid)?;
    let command = RegisterWorker {
        registration: Registration {
            name: body.name,
            region: body.region,
            endpoint: body.endpoint,
            template_name: body.template_name,
            instance_id: body.instance_id,
            declared_capacity: body.capacity,
            insecure_tls: body.insecure_tls,
        },
        credentials,
    };
    let outcome = state.mediator.send(command, &ctx).await?;
    Ok(created_answer("/api/v1/workers", outcome))
}

#[derive(Deserialize, Default, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReasonBody {
    #[serde(default)]
    reason: Option<FreeText<1024>>,
}

async fn change_status(
    state: &AppState,
    ctx: &RequestContext,
    id: &str,
    to: WorkerStatus,
    default_reason: &str,
    reason: Option<FreeText<1024>>,
) -> ApiResult<Response> {
    let reason = match reason.filter(|r| !r.as_str().trim().is_empty()) {
        Some(reason) => reason,
        None => {
            FreeText::parse(default_reason).map_err(|why| Problem::invalid(vec![FieldError::new("reason", why)]))?
        }
    };
    let command = Execute::<Worker>::on(parse_id("id", id)?, WorkerCommand::ChangeStatus { to, reason });
    Ok(command_answer(StatusCode::OK, state.mediator.send(command, ctx).await?))
}

pub async fn drain(
    State(state): State<AppState>,
    Context(ctx): Context,
    Path(id): Path<String>,
    OptionalJsonBody(body): OptionalJsonBody<ReasonBody>,
) -> ApiResult<Response> {
    change_status(
        &state,
        &ctx,
        &id,
        WorkerStatus::Draining,
        "drain requested",
        body.reason,
    )
    .await
}

pub async fn cancel_drain(
    State(state): State<AppState>,
    Context(ctx): Context,
    Path(id): Path<String>,
    OptionalJsonBody(body): OptionalJsonBody<ReasonBody>,
) -> ApiResult<Response> {
    change_status(&state, &ctx, &id, WorkerStatus::Running, "drain cancelled", body.reason).await
}

pub async fn stop(
    State(state): State<AppState>,
    Context(ctx): Context,
    Path(id): Path<String>,
    OptionalJsonBody(body): OptionalJsonBody<ReasonBody>,
) -> ApiResult<Response> {
    change_status(&state, &ctx, &id, WorkerStatus::Stopping, "stop requested", body.reason).await
}

/// Terminates the worker, then removes the records of its labs (`worker_terminated`).
pub async fn terminate(
    State(state): State<AppState>,
    Context(ctx): Context,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let answer = change_status(&state, &ctx, &id, WorkerStatus::Terminated, "terminated", None).await?;
    state
        .labs_refresh
        .remove_labs_of_terminated(parse_id("id", &id)?, &ctx)
        .await?;
    Ok(answer)
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusBody {
    status: WorkerStatus,
    #[serde(default)]
    reason: Option<FreeText<1024>>,
}

pub async fn set_status(
    State(state): State<AppState>,
    Context(ctx): Context,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<StatusBody>,
) -> ApiResult<Response> {
    change_status(&state, &ctx, &id, body.status, "status set by an operator", body.reason).await
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CredentialsBody {
    username: String,
    password: Password,
}

/// Replaces the worker's CML credentials; the next call to the worker authenticates with them.
pub async fn change_credentials(
    State(state): State<AppState>,
    Context(ctx): Context,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<CredentialsBody>,
) -> ApiResult<Response> {
    let id = parse_id("id", &id)?;
    let credentials = credentials(Some(body.username), Some(body.password.0)).map_err(Problem::invalid)?;
    let Some(credentials) = credentials else {
        return Err(Problem::invalid(vec![FieldError::new("username", "is required")]));
    };
    let command = ChangeWorkerCredentials { id, credentials };
    Ok(command_answer(
        StatusCode::OK,
        state.mediator.send(command, &ctx).await?,
    ))
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IdleDetectionBody {
    enabled: bool,
}

pub async fn idle_detection(
    State(state): State<AppState>,
    Context(ctx): Context,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<IdleDetectionBody>,
) -> ApiResult<Response> {
    let command = Execute::<Worker>::on(
        parse_id("id", &id)?,
        WorkerCommand::SetIdleDetection { enabled: body.enabled },
    );
    Ok(command_answer(
        StatusCode::OK,
        state.mediator.send(command, &ctx).await?,
    ))
}

/// What a worker declares it can hold, as an admin corrects it.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CapacityBody {
    declared_capacity: Capacity,
}

pub async fn declare_capacity(
    State(state): State<AppState>,
    Context(ctx): Context,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<CapacityBody>,
) -> ApiResult<Response> {
    let command = Execute::<Worker>::on(
        parse_id("id", &id)?,
        WorkerCommand::DeclareCapacity {
            capacity: body.declared_capacity,
        },
    );
    Ok(command_answer(
        StatusCode::OK,
        state.mediator.send(command, &ctx).await?,
    ))
}

pub async fn idle_status(
    State(state): State<AppState>,
    Context(ctx): Context,
    Path(id): Path<String>,
) -> ApiResult<Json<WorkerIdleStatus>> {
    let query = GetIdleStatus {
        id: parse_id("id", &id)?,
    };
    Ok(Json(state.mediator.send(query, &ctx).await?))
}

/// What a refresh of one worker did.
#[derive(Serialize, schemars::JsonSchema)]
pub struct RefreshAnswer {
    pub worker_id: uuid::Uuid,
    #[serde(flatten)]
    pub counts: SyncCounts,
}

pub async fn refresh_labs(
    State(state): State<AppState>,
    Context(ctx): Context,
    Path(id): Path<String>,
) -> ApiResult<Json<RefreshAnswer>> {
    let worker_id = parse_id("id", &id)?;
    let counts = state.labs_refresh.refresh_now(worker_id, &ctx).await?;
    Ok(Json(RefreshAnswer { worker_id, counts }))
}

pub async fn get_one(
    State(state): State<AppState>,
    Context(ctx): Context,
    MinPosition(min): MinPosition,
    Path(id): Path<String>,
) -> ApiResult<Json<Box<RawValue>>> {
    document(&state, &ctx, WORKERS, &id, min).await
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    status: Option<String>,
    region: Option<String>,
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
    if let Some(text) = present(params.status) {
        filters.push(parsed_equals("status", &text, WorkerStatus::as_str)?);
    }
    if let Some(region) = present(params.region) {
        filters.push(Filter::Equals {
            field: "region",
            value: region,
        });
    }
    let paging = Paging {
        limit: params.limit,
        cursor: params.cursor,
        include_history: params.include_history,
    };
    page(&state, &ctx, WORKERS, paging, filters, min).await
}
