//! `/api/v1/outbox`: how far each sink's relay got, what it parked, and redrive.

use super::AppState;
use crate::extract::{parse_id, Context, QueryParams};
use crate::problem::ApiResult;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use lablet_application::outbox::{GetOutbox, OutboxOverview, RedriveParked};
use serde::{Deserialize, Serialize};

/// Parked events listed when no limit is asked for.
const DEFAULT_PARKED_PAGE: usize = 100;

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OverviewParams {
    limit: Option<usize>,
}

pub async fn overview(
    State(state): State<AppState>,
    Context(ctx): Context,
    QueryParams(params): QueryParams<OverviewParams>,
) -> ApiResult<Json<OutboxOverview>> {
    let query = GetOutbox {
        limit: params.limit.unwrap_or(DEFAULT_PARKED_PAGE),
    };
    Ok(Json(state.mediator.send(query, &ctx).await?))
}

#[derive(Serialize, schemars::JsonSchema)]
pub struct RedriveAnswer {
    /// Parked records marked for redrive (one per sink that parked the event, plus the events
    /// of its subject parked before it are redriven with it).
    marked: u64,
}

pub async fn redrive(
    State(state): State<AppState>,
    Context(ctx): Context,
    Path(event_id): Path<String>,
) -> ApiResult<(StatusCode, Json<RedriveAnswer>)> {
    let command = RedriveParked {
        event_id: Some(parse_id("event_id", &event_id)?),
    };
    let marked = state.mediator.send(command, &ctx).await?;
    Ok((StatusCode::ACCEPTED, Json(RedriveAnswer { marked })))
}
