//! `/api/v1/api-keys`: keys for machine callers, made and revoked by admins.

use super::AppState;
use crate::auth::api_keys::mint;
use crate::auth::{Principal, Role};
use crate::extract::JsonBody;
use crate::problem::{ApiResult, Problem};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use lablet_application::ports::ApiKeyRecord;
use lablet_application::ports::{Clock, SystemClock};
use lablet_application::FieldError;
use serde::{Deserialize, Serialize};

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    /// What the key is for: `grading-engine`, `ci`.
    name: String,
    /// The roles the key grants (at least one).
    roles: Vec<Role>,
}

/// A new key: shown in this answer only.
#[derive(Serialize, schemars::JsonSchema)]
pub struct CreatedKey {
    /// Send it as `X-API-Key`; it cannot be shown again.
    pub key: String,
    #[serde(flatten)]
    pub record: ApiKeyRecord,
}

/// Checks a key request: a name of 1 to 128 characters and at least one role.
pub fn validate(name: &str, roles: &[Role]) -> Result<(), Vec<FieldError>> {
    let mut errors = Vec::new();
    if name.trim().is_empty() || name.len() > 128 {
        errors.push(FieldError::new("name", "must be 1 to 128 characters"));
    }
    if roles.is_empty() {
        errors.push(FieldError::new("roles", "must name at least one role"));
    }
    errors.is_empty().then_some(()).ok_or(errors)
}

pub async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Principal>,
    JsonBody(body): JsonBody<CreateBody>,
) -> ApiResult<(StatusCode, Json<CreatedKey>)> {
    validate(&body.name, &body.roles).map_err(Problem::invalid)?;
    let minted = mint(body.name.trim(), &body.roles, &caller.actor, SystemClock.now())?;
    state.api_keys.insert(minted.record.clone()).await?;
    tracing::info!(key = %minted.record.id, by = %caller.actor, "API key created");
    Ok((
        StatusCode::CREATED,
        Json(CreatedKey {
            key: minted.key,
            record: minted.record,
        }),
    ))
}

#[derive(Serialize, schemars::JsonSchema)]
pub struct KeyList {
    pub items: Vec<ApiKeyRecord>,
}

pub async fn list(State(state): State<AppState>) -> ApiResult<Json<KeyList>> {
    Ok(Json(KeyList {
        items: state.api_keys.list().await?,
    }))
}

pub async fn revoke(
    State(state): State<AppState>,
    Extension(caller): Extension<Principal>,
    Path(id): Path<String>,
) -> ApiResult<Json<ApiKeyRecord>> {
    if !state.api_keys.revoke(&id, SystemClock.now()).await? {
        return Err(Problem::not_found(format!("API key {id} does not exist")));
    }
    tracing::info!(key = %id, by = %caller.actor, "API key revoked");
    let record = state.api_keys.find(&id).await?;
    record
        .map(Json)
        .ok_or_else(|| Problem::not_found(format!("API key {id} does not exist")))
}
