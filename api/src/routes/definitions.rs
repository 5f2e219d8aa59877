//! `/api/v1/definitions`: lablet definitions and their versions. Admins and managers create a
//! definition, add versions, deprecate and archive them; everyone signed in reads. A version
//! becomes active only once its artifact is synced (see `docs/definitions.md`).

use super::{command_answer, created_answer, document, page, parsed_equals, present, AppState, Paging};
use crate::extract::{parse_id, Context, JsonBody, MinPosition, OptionalJsonBody, QueryParams};
use crate::problem::{ApiResult, Problem};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use lablet_application::ports::read_models::Filter;
use lablet_application::ports::ListPage;
use lablet_application::read_model_queries::LABLET_DEFINITIONS;
use lablet_application::{Execute, FieldError, RequestContext};
use lablet_domain::lablet_definition::{definition_id, LabletDefinition, LabletDefinitionCommand};
use lablet_domain::lablet_definition::{SemVer, VersionSpec, VersionStatus};
use lablet_domain::values::{FreeText, Name};
use serde::Deserialize;
use serde_json::value::RawValue;

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    name: Name<128>,
    version: SemVer,
    spec: VersionSpec,
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VersionBody {
    version: SemVer,
    spec: VersionSpec,
}

#[derive(Deserialize, Default, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeprecateBody {
    #[serde(default)]
    reason: Option<FreeText<1024>>,
}

/// A definition's id is the UUIDv5 of its name: creating a name twice answers 409.
pub async fn create(
    State(state): State<AppState>,
    Context(ctx): Context,
    JsonBody(body): JsonBody<CreateBody>,
) -> ApiResult<Response> {
    let id = definition_id(body.name.as_str());
    let command = LabletDefinitionCommand::Create {
        name: body.name,
        version: body.version,
        spec: body.spec,
    };
    let outcome = state
        .mediator
        .send(Execute::<LabletDefinition>::on(id, command), &ctx)
        .await?;
    Ok(created_answer("/api/v1/definitions", outcome))
}

async fn act(
    state: &AppState,
    ctx: &RequestContext,
    id: &str,
    command: LabletDefinitionCommand,
) -> ApiResult<Response> {
    let command = Execute::<LabletDefinition>::on(parse_id("id", id)?, command);
    Ok(command_answer(StatusCode::OK, state.mediator.send(command, ctx).await?))
}

/// The version named in a path.
fn version(text: &str) -> ApiResult<SemVer> {
    SemVer::parse(text).map_err(|message| Problem::invalid(vec![FieldError::new("version", message)]))
}

pub async fn add_version(
    State(state): State<AppState>,
    Context(ctx): Context,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<VersionBody>,
) -> ApiResult<Response> {
    let command = LabletDefinitionCommand::AddVersion {
        version: body.version,
        spec: body.spec,
    };
    act(&state, &ctx, &id, command).await
}

pub async fn deprecate(
    State(state): State<AppState>,
    Context(ctx): Context,
    Path((id, text)): Path<(String, String)>,
    OptionalJsonBody(body): OptionalJsonBody<DeprecateBody>,
) -> ApiResult<Response> {
    let command = LabletDefinitionCommand::Deprecate {
        version: version(&text)?,
        reason: body.reason.unwrap_or_default(),
    };
    act(&state, &ctx, &id, command).await
}

pub async fn archive(
    State(state): State<AppState>,
    Context(ctx): Context,
    Path((id, text)): Path<(String, String)>,
) -> ApiResult<Response> {
    let command = LabletDefinitionCommand::Archive {
        version: version(&text)?,
    };
    act(&state, &ctx, &id, command).await
}

pub async fn deactivate(
    State(state): State<AppState>,
    Context(ctx): Context,
    Path((id, text)): Path<(String, String)>,
) -> ApiResult<Response> {
    let command = LabletDefinitionCommand::Deactivate {
        version: version(&text)?,
    };
    act(&state, &ctx, &id, command).await
}

pub async fn reactivate(
    State(state): State<AppState>,
    Context(ctx): Context,
    Path((id, text)): Path<(String, String)>,
) -> ApiResult<Response> {
    let command = LabletDefinitionCommand::Reactivate {
        version: version(&text)?,
    };
    act(&state, &ctx, &id, command).await
}

pub async fn get_one(
    State(state): State<AppState>,
    Context(ctx): Context,
    MinPosition(min): MinPosition,
    Path(id): Path<String>,
) -> ApiResult<Json<Box<RawValue>>> {
    document(&state, &ctx, LABLET_DEFINITIONS, &id, min).await
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    name: Option<String>,
    /// The newest version's status.
    status: Option<String>,
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
    if let Some(name) = present(params.name) {
        filters.push(Filter::Equals {
            field: "name",
            value: name,
        });
    }
    if let Some(text) = present(params.status) {
        filters.push(parsed_equals("status", &text, VersionStatus::as_str)?);
    }
    let paging = Paging {
        limit: params.limit,
        cursor: params.cursor,
        include_history: params.include_history,
    };
    page(&state, &ctx, LABLET_DEFINITIONS, paging, filters, min).await
}
